"""``python -m clipsafety.book``: the runner's command line (:func:`clipsafety.book.cli.main`).

Only the entry point lives here, so every module of the runner, and every chapter's rules,
are loaded before the command runs."""

import sys

from clipsafety.book.cli import main

sys.exit(main())
