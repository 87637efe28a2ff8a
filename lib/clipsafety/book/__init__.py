"""The book runner: execute the chapters with papermill and build the site with Jupyter Book
1.x (``python -m clipsafety.book``, :mod:`clipsafety.book.cli`).

One reason to change per module:

- :mod:`~clipsafety.book.toc`: where chapters live, the table of contents' order, discovery;
- :mod:`~clipsafety.book.params`: parameter typing and checking (the value rules come from
  each chapter's study, ``PARAMETER_RULES``);
- :mod:`~clipsafety.book.cache`: the execution cache's keys and each chapter's state;
- :mod:`~clipsafety.book.executor`: executing chapters (one, all in worker processes, or one
  with new parameters);
- :mod:`~clipsafety.book.site`: static assets and the strict Jupyter Book build;
- :mod:`~clipsafety.book.provenance`: the provenance page;
- :mod:`~clipsafety.book.cli` and ``__main__``: the command line.

The runner sits at the top of the library: nothing in ``clipsafety`` outside this package
imports it (a test checks the source's imports). Its public names are importable from here.
"""

from clipsafety.book.cache import (
    chapter_key,
    environment_fingerprint,
    read_state,
)
from clipsafety.book.cli import main
from clipsafety.book.executor import build, build_jobs, check_chapter_params, execute, run_chapter
from clipsafety.book.params import (
    CHAPTER_RULES,
    ParameterError,
    check_values,
    parse_cli_params,
    validate_params,
)
from clipsafety.book.provenance import PACKAGES, hardware, write_provenance
from clipsafety.book.site import (
    MATHJAX_PARTS,
    build_site,
    effective_toc,
    prune_chart_data,
    write_mathjax,
    write_static_assets,
)
from clipsafety.book.toc import (
    ANALYSES,
    BOOK,
    CHAPTERS,
    DATA,
    LIB,
    ROOT,
    STATE,
    STATIC,
    SUMMARY_CHAPTERS,
    Chapter,
    chapters,
    get_chapter,
    parse_parameters,
    toc_chapters,
)

__all__ = [
    "ANALYSES", "BOOK", "CHAPTERS", "CHAPTER_RULES", "DATA", "LIB", "MATHJAX_PARTS", "PACKAGES",
    "ROOT", "STATE", "STATIC", "SUMMARY_CHAPTERS", "Chapter", "ParameterError", "build",
    "build_jobs", "build_site", "chapter_key", "chapters", "check_chapter_params",
    "check_values", "effective_toc", "environment_fingerprint", "execute", "get_chapter",
    "hardware", "main", "parse_cli_params", "parse_parameters", "prune_chart_data",
    "read_state", "run_chapter", "toc_chapters", "validate_params", "write_mathjax",
    "write_provenance", "write_static_assets",
]
