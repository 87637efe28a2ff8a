"""Executing chapters with papermill: one chapter (:func:`execute`), every chapter in worker
processes (:func:`build`), or one chapter with new parameters (:func:`run_chapter`).

A chapter that fails keeps its previous executed notebook (the new one is written to a
temporary file and moved into place only on success); the site is still built and the
command exits non-zero naming the failed chapters.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from clipsafety import outputs
from clipsafety.book import cache, toc
from clipsafety.book.params import ParameterError, parse_cli_params, validate_params
from clipsafety.book.site import build_site
from clipsafety.book.toc import Chapter, chapters, get_chapter


def execute(chapter: Chapter, params: dict, env: dict, force: bool = False,
            index: str = "", rerun: bool | None = None) -> tuple[str, float]:
    """Execute one chapter unless its key is cached. Returns (status, seconds).

    ``rerun``: whether this run is a rerun of one chapter (its outputs recorded beside the
    book's record, never over it: :func:`clipsafety.outputs.record`) or the book's run of it;
    ``None``: a rerun exactly when ``params`` differ from the chapter's defaults. A build of the
    whole book (:func:`build`, overrides or not) is the book's run."""
    import nbformat
    import papermill as pm

    key = cache.chapter_key(chapter, params, env)
    out_nb = toc.CHAPTERS / f"{chapter.name}.ipynb"
    state = None if force else cache.is_cached(chapter, key)
    if state:
        print(f"{index} {chapter.name}: cached (executed {state['executed_at']}, "
              f"{state['seconds']:.1f} s)", flush=True)
        return "cached", 0.0
    print(f"{index} {chapter.name}: executing with "
          f"{json.dumps(params) if params else 'default parameters'}", flush=True)
    toc.CHAPTERS.mkdir(parents=True, exist_ok=True)
    toc.STATE.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix=f"clipsafety-{chapter.name}-") as tmp:
        src = Path(tmp) / f"{chapter.name}.ipynb"
        dst = Path(tmp) / f"{chapter.name}.out.ipynb"
        # parameters are injected here, not by execute_notebook: papermill's own inference
        # misreads annotated and commented lines ("Unable to parse line", a false "Passed
        # unknown parameter"); validate_params has already checked names, types and values
        from papermill.parameterize import parameterize_notebook

        nbformat.write(parameterize_notebook(chapter.notebook(), params, kernel_name="python3",
                                             language="python"), src)
        defaults = chapter.defaults()
        changed = {k: v for k, v in params.items() if k not in defaults or defaults[k] != v}
        saved = os.environ.get(outputs.RUN_ENV)
        os.environ[outputs.RUN_ENV] = outputs.run_env(
            changed, bool(changed) if rerun is None else rerun, defaults)
        try:
            pm.execute_notebook(
                str(src), str(dst), parameters=None, kernel_name="python3",
                progress_bar=sys.stderr.isatty() or bool(os.environ.get("CLIPSAFETY_PROGRESS")),
                log_output=False, cwd=str(toc.ROOT), report_mode=False,
                kernel_manager_class=_ipc_kernel_manager(Path(tmp)),
            )
        except KeyboardInterrupt:  # the temporary folder goes with the context; page kept
            kept = "the previous page is kept" if out_nb.exists() else "no page was written"
            print(f"{index} {chapter.name}: interrupted after {time.time() - t0:.1f} s ({kept}).",
                  flush=True)
            raise
        except Exception as exc:  # keep the previous notebook; report and carry on
            seconds = time.time() - t0
            kept = "the previous executed notebook is kept" if out_nb.exists() else "no notebook"
            print(f"{index} {chapter.name}: FAILED after {seconds:.1f} s ({kept}).\n"
                  f"{_short_error(exc)}", flush=True)
            if dst.exists():
                keep = toc.STATE / f"{chapter.name}.failed.ipynb"
                shutil.copyfile(dst, keep)
                print(f"    the failed run is saved as {os.path.relpath(keep)}", flush=True)
            return "failed", seconds
        finally:
            if saved is None:
                os.environ.pop(outputs.RUN_ENV, None)
            else:
                os.environ[outputs.RUN_ENV] = saved
        _hide_code(dst)
        os.replace(dst, out_nb)
    seconds = time.time() - t0
    cache.write_state(chapter, key, params, seconds)
    (toc.STATE / f"{chapter.name}.failed.ipynb").unlink(missing_ok=True)
    print(f"{index} {chapter.name}: done in {seconds:.1f} s", flush=True)
    return "executed", seconds


def _ipc_kernel_manager(folder: Path):
    """A kernel manager class whose kernel talks over IPC sockets in ``folder`` (the run's
    temporary folder), not TCP: ipykernel warns on every start that TCP is unencrypted."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**{"transport": "ipc", "ip": str(folder / "kernel"), **kwargs})

    return IPCKernelManager


def _hide_code(path: Path) -> None:
    """Tidy an executed notebook for the site: code cells collapse (readers see outputs, code
    is one click away) and stderr streams (progress bars, library warnings: console matter)
    are dropped."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            if any(_has_directive(o) for o in cell.outputs):
                # myst-nb renders text/markdown outputs as CommonMark unless a cell asks for
                # MyST: without this a note's ```{note} fence shows as a code block
                cell.metadata.setdefault("mystnb", {})["markdown_format"] = "myst"
            tags = cell.metadata.setdefault("tags", [])
            if {"parameters", "injected-parameters"} & set(tags):
                tags.append("remove-cell")  # the rerun box (clipsafety.pages) shows them
            elif not {"hide-input", "remove-input", "remove-cell", "show-input"} & set(tags):
                tags.append("hide-input")
    nbformat.write(nb, path)


def _has_directive(output) -> bool:
    """Whether a notebook output's Markdown holds a MyST directive (```{note}, :::{note})."""
    text = output.get("data", {}).get("text/markdown", "")
    text = "".join(text) if isinstance(text, list) else str(text)
    return re.search(r"^(```+|:::+)\{[a-z-]+\}", text, flags=re.M) is not None


def _short_error(exc: Exception) -> str:
    """The error's own line first (papermill keeps it as ename/evalue), then the traceback end."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [ln for ln in text.splitlines() if ln.strip()]
    head = ""
    if getattr(exc, "ename", None):
        head = f"    {exc.ename}: {exc.evalue}\n"
    return head + "\n".join("    " + ln for ln in lines[-15:])


def _run_env() -> None:
    """Where the chapters' kernels put what they make: the prediction store, the recorded
    outputs (:func:`clipsafety.outputs.record`) and the charts' data files
    (:data:`clipsafety.plots.CHART_DATA_ENV`)."""
    from clipsafety.plots import CHART_DATA_ENV

    os.environ.setdefault("CLIPSAFETY_STORE", str(toc.ROOT / ".cache" / "store"))
    os.environ.setdefault(outputs.OUTPUTS_ENV, str(outputs.DEFAULT_FOLDER))
    os.environ.setdefault(CHART_DATA_ENV, str(toc.STATIC / "data"))


def _execute_job(job: tuple) -> tuple[str, str]:
    """One chapter of a parallel build (a worker process): ``(name, status)``."""
    ch, params, env, force, index = job
    try:
        return ch.name, execute(ch, params, env, force=force, index=index, rerun=False)[0]
    except KeyboardInterrupt:  # a worker of a parallel build: one line (execute's), no traceback
        return ch.name, "interrupted"


def build_jobs(jobs: int | None) -> int:
    """Chapters executed at once by :func:`build`: ``jobs``, or one per core (at most 4)
    for ``0`` / ``None``; a bool or a negative number is refused."""
    if jobs is None or jobs == 0:
        return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                          else os.cpu_count() or 1))
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0:
        raise ValueError(f"jobs={jobs!r}: expected an integer >= 0 (chapters executed at once; "
                         "0: one per core)")
    return jobs


def build(force: bool = False, only: list[str] | None = None,
          overrides: dict | None = None, jobs: int = 1) -> int:
    """Execute every chapter (cached) and build the site. ``overrides``: parameter values
    applied to every chapter that declares the parameter (the site test builds the book on a
    handful of zoo models this way); a chapter run with overrides is re-executed at its
    defaults by the next plain build, since its cache key holds its parameters.

    ``jobs`` chapters execute at once (:func:`build_jobs`; each in its own kernel, writing
    its notebook, state and outputs atomically, and the store is safe for many writers); the
    summary chapters run after all the others, since they read their outputs."""
    _run_env()
    jobs = build_jobs(jobs)
    with chapter_threads(jobs):
        return _build(force, only, overrides, jobs)


@contextlib.contextmanager
def chapter_threads(jobs: int):
    """While a build runs, each chapter's kernel starts torch with ``cores // jobs`` threads
    (:func:`clipsafety.engines.limit_threads`: OpenMP/MKL variables, inherited by the worker
    processes and their kernels), so ``jobs`` chapters at once never oversubscribe the cores;
    a user's own ``OMP_NUM_THREADS`` is kept. The variables are restored afterwards."""
    from clipsafety.engines import THREAD_VARS, limit_threads

    saved = {var: os.environ.get(var) for var in THREAD_VARS}
    try:
        limit_threads(jobs)
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _build(force: bool, only: list[str] | None, overrides: dict | None, jobs: int) -> int:
    chs = [c for c in chapters() if not only or c.name in only]
    first = [c for c in chs if c.name not in toc.SUMMARY_CHAPTERS]
    last = [c for c in chs if c.name in toc.SUMMARY_CHAPTERS]  # summaries read the others' outputs
    env = cache.environment_fingerprint()
    failed, t0 = [], time.time()
    work = []
    for i, ch in enumerate(first + last, 1):
        declared = ch.parameters()
        params = {k: v["default"] for k, v in declared.items()}
        params.update({k: v for k, v in (overrides or {}).items() if k in declared})
        work.append((ch, params, env, force, f"[{i}/{len(chs)}]"))
    if jobs > 1 and len(first) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # fork where there is one: the workers inherit this process's paths and settings
        # (a worker only drives papermill; each chapter runs in its own kernel process)
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(max_workers=min(jobs, len(first)), mp_context=ctx) as ex:
            done = list(ex.map(_execute_job, work[:len(first)]))
        if any(status == "interrupted" for _, status in done):
            raise KeyboardInterrupt
        failed += [name for name, status in done if status == "failed"]
        work = work[len(first):]
    for job in work:
        name, status = _execute_job(job)
        if status == "failed":
            failed.append(name)
    print(f"chapters: {len(chs) - len(failed)}/{len(chs)} ok in {time.time() - t0:.1f} s"
          + (f" ({jobs} at once)" if jobs > 1 else ""), flush=True)
    rc = build_site()
    if failed:
        print(f"FAILED chapters: {', '.join(failed)} (their previous notebooks, if any, are kept)")
        return 1
    return rc


def check_chapter_params(name: str, pairs: list[tuple[str, str]]) -> tuple[Chapter, dict]:
    """The chapter and its full parameters (defaults updated by ``pairs``), every name, type
    and value checked; raises :class:`~clipsafety.errors.ParameterError` before any work."""
    ch = get_chapter(name)
    given = validate_params(ch, parse_cli_params(pairs))
    params = {**ch.defaults(), **given}
    return ch, params


def unbuilt_chapters() -> list[str]:
    """Chapters of the book without an executed notebook (a fresh clone before ``make book``)."""
    return [c.name for c in chapters() if not (toc.CHAPTERS / f"{c.name}.ipynb").exists()]


def run_chapter(name: str, pairs: list[tuple[str, str]], force: bool = True) -> int:
    """Re-execute one chapter with ``pairs`` (``-p key value``) and rebuild the site; a bad
    parameter prints the error and returns 2 with nothing run. Where other chapters have never
    been executed (a fresh clone), the site is not built (its pages link to each other, so the
    strict build would fail): the chapter's notebook is kept and the message says to run
    ``make book`` once."""
    try:
        ch, params = check_chapter_params(name, pairs)
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _run_env()
    with chapter_threads(1):
        status, _ = execute(ch, params, cache.environment_fingerprint(), force=force, index="[1/1]")
    if status == "failed":
        return 1
    missing = unbuilt_chapters()
    if missing:
        print(f"{name}: executed ({os.path.relpath(toc.CHAPTERS / (name + '.ipynb'))}); the site "
              f"is not built because {len(missing)} chapter(s) never ran here "
              f"({', '.join(missing)}): run `make book` once, then `make chapter` rebuilds it.",
              flush=True)
        return 0
    return build_site()


__all__ = ["build", "build_jobs", "chapter_threads", "check_chapter_params", "execute", "run_chapter",
           "unbuilt_chapters"]
