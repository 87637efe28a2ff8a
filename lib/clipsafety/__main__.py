"""``python -m clipsafety eval ...`` (same as the ``clipsafety`` command)."""

import sys

from clipsafety.cli import main

sys.exit(main())
