"""The command line of the book runner (``python -m clipsafety.book``; the Makefile's ``make
book`` and ``make chapter`` call it). Every command checks its arguments, and a chapter's
parameters against all of its rules, before any work: a bad one exits with status 2 and the
message, the built pages untouched."""

from __future__ import annotations

import argparse
import sys

from clipsafety.book.executor import build, build_jobs, run_chapter
from clipsafety.book.toc import chapters

USAGE = """Execute the chapters with papermill and build the site with Jupyter Book 1.x.

``python -m clipsafety.book build``            every chapter at its default parameters, then the site
``python -m clipsafety.book chapter NAME -p key value ...``   one chapter with new parameters
``python -m clipsafety.book params [NAME]``    each chapter's parameters
``python -m clipsafety.book publish-check``    refuse to publish with the placeholder repository url

Chapters are jupytext percent-format files ``analyses/<name>.py`` with a cell tagged
``parameters``. Executed notebooks land in ``book/chapters/<name>.ipynb``; Jupyter Book's own
execution is off (``_config.yml``), papermill is the executor.

Execution cache. A chapter re-executes only when its key changes. The key hashes the chapter
source, its parameters, the library code (every file under ``lib/clipsafety``), the input data
(every file under ``data/``) and which published upstream files are reachable. Jupyter Book's
own cache hashes code cells only, which misses library and data changes.

A chapter that fails keeps its previous executed notebook (the new one is written to a
temporary file and moved into place only on success); the site is still built and the
command exits non-zero naming the failed chapters.
"""


def _terminate(signum, frame):
    """SIGTERM ends a run as Ctrl-C does: the chapter's temporary folder is removed and the
    previous page kept (see :func:`main`)."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """The command line; Ctrl-C (or SIGTERM) prints one line and exits 130, the built pages
    kept and no temporary folder left."""
    import signal

    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave the handler alone
        previous = None
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("clipsafety.book: interrupted; the pages built before are kept, and a rerun "
              "re-executes what did not finish.", file=sys.stderr, flush=True)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m clipsafety.book", description=USAGE,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="execute every chapter (cached) and build the site")
    b.add_argument("--force", action="store_true", help="re-execute even cached chapters")
    b.add_argument("--only", nargs="*", help="chapter names to execute")
    b.add_argument("--jobs", type=int, default=1,
                   help="chapters executed at once (0: one per core, at most 4; default 1)")
    c = sub.add_parser("chapter", help="re-execute one chapter with parameters, rebuild site")
    c.add_argument("name")
    c.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                   metavar=("KEY", "VALUE"), help="a parameter (YAML value)")
    sub.add_parser("params", help="list each chapter's parameters").add_argument("name", nargs="?")
    pc = sub.add_parser("publish-check", help="refuse to publish with the placeholder repository "
                        "url or launch buttons that open nothing")
    pc.add_argument("--site", action="store_true",
                    help="also check every launch link of the built site (book/_build/html)")
    pc.add_argument("--branch", action="store_true",
                    help="print the branch the executed notebooks are published on")
    args = ap.parse_args(argv)
    if args.cmd == "publish-check":
        from clipsafety.book import site, toc

        problems = site.publish_problems(toc.BOOK / "_build" / "html" if args.site else None)
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        if not problems:
            print(site.repository().get("branch") or "main" if args.branch else
                  "publish-check: the repository url and the launch buttons are set")
        return 2 if problems else 0
    if args.cmd == "build":
        try:
            jobs = build_jobs(args.jobs)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return build(force=args.force, only=args.only, jobs=jobs)
    if args.cmd == "chapter":
        return run_chapter(args.name, [tuple(p) for p in args.parameter])
    for ch in chapters():
        if args.name and ch.name != args.name:
            continue
        print(ch.name)
        for k, v in ch.parameters().items():
            print(f"  {k} ({v['type']}) = {v['default']!r}  {v['help']}")
    return 0


__all__ = ["USAGE", "main"]
