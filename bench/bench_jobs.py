"""How many chapters at once on this machine: one after the other with all the cores' threads,
or several at once with ``cores // jobs`` threads each (and, with ``--oversubscribed``, several
at once with all the cores' threads each, as before issue 30). The fastest layout is the
default of ``make book`` (``BOOK_JOBS``, :func:`clipsafety.book.build_jobs`).

Each run executes the chapter's notebook cold (papermill, its own empty prediction store and cache, its
recorded outputs and chart data in a temporary folder: the book's pages and outputs are not
touched), in a fresh process whose OpenMP/MKL threads are set before torch starts.

    .venv/bin/python bench/bench_jobs.py                       # two OOD runs, 1x2 and 2x1 threads
    .venv/bin/python bench/bench_jobs.py --chapter prompts --copies 2 --oversubscribed

Prints one row per layout (wall seconds for all copies, each copy's seconds) and the fastest.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_copies(chapter: str, copies: int, at_once: int, threads: int, tmp: Path,
               params: list | None = None) -> dict:
    """``copies`` cold runs of ``chapter``, ``at_once`` at a time, each with ``threads`` threads."""
    import nbformat
    from clipsafety.book.toc import ROOT, get_chapter
    from clipsafety.engines import THREAD_VARS

    src = tmp / f"{chapter}.ipynb"
    nbformat.write(get_chapter(chapter).notebook(), src)
    procs, seconds, t_all = [], [], time.perf_counter()
    todo = list(range(copies))
    while todo or procs:
        while todo and len(procs) < at_once:
            i = todo.pop(0)
            run = tmp / f"run-{at_once}x{threads}-{i}"
            run.mkdir()
            env = {**os.environ, **{v: str(threads) for v in THREAD_VARS},
                   "CLIPSAFETY_STORE": str(run / "store"), "CLIPSAFETY_CACHE": str(run / "cache"),
                   "CLIPSAFETY_OUTPUTS": str(run / "outputs"),
                   "CLIPSAFETY_CHART_DATA": str(run / "charts")}
            cmd = [sys.executable, "-m", "papermill", str(src), str(run / "out.ipynb"), "--cwd",
                   str(ROOT), "-k", "python3", "--no-progress-bar", "--no-log-output"]
            for key, value in params or []:
                cmd += ["-y", f"{key}: {value}"]
            procs.append((subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.PIPE, text=True), time.perf_counter()))
        p, t0 = procs[0]
        for q, tq in procs:  # whichever finishes first
            if q.poll() is not None:
                p, t0 = q, tq
                break
        else:
            time.sleep(0.5)
            continue
        procs.remove((p, t0))
        err = p.stderr.read()
        if p.returncode:
            raise SystemExit(f"{chapter} failed (rc {p.returncode}):\n{err[-2000:]}")
        seconds.append(round(time.perf_counter() - t0, 1))
    return {"layout": f"{at_once} at once x {threads} thread(s)", "at_once": at_once,
            "threads": threads, "wall_s": round(time.perf_counter() - t_all, 1), "runs_s": seconds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chapter", default="ood")
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--oversubscribed", action="store_true",
                    help="also run the copies at once with all the cores' threads each")
    ap.add_argument("--json", default="", help="write the table here too")
    ap.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                    help="a chapter parameter (YAML value), e.g. -p models '[zoo:clip-vit-wit-10k]' "
                         "for shorter runs on a busy machine")
    args = ap.parse_args(argv)

    from clipsafety.engines import available_cores, threads_per_job

    cores = available_cores()
    layouts = [(1, cores), (args.copies, threads_per_job(args.copies, cores))]
    if args.oversubscribed:
        layouts.append((args.copies, cores))
    print(f"{args.copies} cold runs of the {args.chapter} chapter"
          f"{' with ' + ', '.join(f'{k}={v}' for k, v in args.param) if args.param else ''} on {cores} cores "
          f"(load average before: {os.getloadavg()[0]:.2f})")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        for at_once, threads in layouts:
            row = run_copies(args.chapter, args.copies, at_once, threads, Path(tmp), args.param)
            row["load_after"] = round(os.getloadavg()[0], 2)
            rows.append(row)
            print(f"  {row['layout']:<28} {row['wall_s']:>7.1f} s in all  (each: "
                  f"{', '.join(f'{s:.1f}' for s in row['runs_s'])} s; load {row['load_after']})",
                  flush=True)
    best = min(rows, key=lambda r: r["wall_s"])
    print(f"fastest: {best['layout']} -> make book's default runs {best['at_once']} chapter(s) "
          f"at once with {best['threads']} thread(s) each on {cores} cores")
    if args.json:
        Path(args.json).write_text(json.dumps({"cores": cores, "chapter": args.chapter,
                                               "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
