"""The chapters' recorded outputs: the one owner of the folder where each chapter saves its
claims table and headline tables, and of reading, locating and digesting them.

A chapter ends by writing ``<folder>/<chapter>.json`` (:func:`record`): its claims table and
the tables a reader or test may want without re-running it. The findings page reads them
(:func:`read`), the book runner keys the findings page's cache on them (:func:`digest`) and
re-executes a chapter whose recorded file is gone (:func:`path`).

The folder is ``$CLIPSAFETY_OUTPUTS`` when set (the book runner sets it), else the book's
``book/chapters/.state/outputs``. :func:`record` writes nothing when the variable is unset, so
a chapter run by hand in Jupyter leaves the book's records alone.

Records are keyed by the run's parameters. The book's record of a chapter (``<chapter>.json``:
what the findings page and the summary chapters read, what :func:`digest` hashes) is written
only by a run of the book (``make book``, at the defaults or with a build's overrides) or by a
rerun at the defaults. A rerun with other parameters (an exercise: ``make chapter NAME=x
PARAMS=...``) is recorded beside it, under ``reruns/<chapter>--<hash of its parameters>.json``
(:func:`rerun_path`), and never replaces it; its page compares itself with the book's record
(:func:`clipsafety.pages.comparison`). The runner tells the chapter's kernel which run it is
through ``$CLIPSAFETY_RUN`` (:func:`this_run`): the parameters that differ from the chapter's
defaults, and whether the run is a rerun.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from clipsafety.files import REPO_ROOT, atomic_write_text

#: the environment variable naming the folder
OUTPUTS_ENV = "CLIPSAFETY_OUTPUTS"
#: the folder when the variable is unset
DEFAULT_FOLDER = REPO_ROOT / "book" / "chapters" / ".state" / "outputs"
#: the environment variable through which the runner tells a chapter's kernel which run it is
#: (JSON: ``{"changed": {parameter: value}, "rerun": bool, "defaults": {...}}``, :func:`this_run`)
RUN_ENV = "CLIPSAFETY_RUN"
#: the sub-folder of the reruns' records
RERUNS = "reruns"


def folder() -> Path:
    """Where chapters record their outputs: ``$CLIPSAFETY_OUTPUTS``, else the book's
    ``book/chapters/.state/outputs``."""
    return Path(os.environ.get(OUTPUTS_ENV) or DEFAULT_FOLDER)


def path(chapter: str) -> Path:
    """The recorded outputs file of ``chapter``."""
    return folder() / f"{chapter}.json"


def rerun_path(chapter: str, changed: dict) -> Path:
    """Where a rerun of ``chapter`` with the parameters ``changed`` (those that differ from its
    defaults) is recorded: ``reruns/<chapter>--<hash>.json``, one file per set of values."""
    if not changed:
        raise ValueError(f"rerun_path({chapter!r}, {{}}): a run at the defaults is the book's "
                         f"record ({path(chapter)}), not a rerun")
    key = hashlib.sha256(json.dumps(changed, sort_keys=True, default=str).encode()).hexdigest()
    return folder() / RERUNS / f"{chapter}--{key[:12]}.json"


def this_run() -> dict:
    """Which run the current process is (the runner sets ``$CLIPSAFETY_RUN`` for the chapter's
    kernel): ``{"changed": {parameter: value}, "rerun": bool, "defaults": {parameter:
    value}}``; ``changed`` holds the parameters that differ from the chapter's ``defaults``,
    ``rerun`` is true for a ``make chapter`` run with such parameters. A chapter run by hand
    (no variable) is the book's run at its defaults as far as records go (and :func:`record`
    writes nothing then)."""
    text = os.environ.get(RUN_ENV)
    if not text:
        return {"changed": {}, "rerun": False, "defaults": {}}
    try:
        run = json.loads(text)
        changed, rerun = run["changed"], run["rerun"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"${RUN_ENV} is not the runner's JSON (keys 'changed', a dict, and "
                         f"'rerun', true or false): {text[:200]!r}") from exc
    defaults = run.get("defaults", {})
    if not isinstance(changed, dict) or not isinstance(rerun, bool) or not isinstance(defaults, dict):
        raise ValueError(f"${RUN_ENV}: expected dicts 'changed' and 'defaults' and a bool "
                         f"'rerun'; got {text[:200]!r}")
    return {"changed": changed, "rerun": rerun and bool(changed), "defaults": defaults}


def run_env(changed: dict, rerun: bool, defaults: dict | None = None) -> str:
    """The value of ``$CLIPSAFETY_RUN`` for a run (:func:`this_run` reads it): the parameters
    that differ from the chapter's ``defaults``, and whether it is a rerun."""
    return json.dumps({"changed": changed, "rerun": bool(rerun and changed),
                       "defaults": defaults or {}}, default=str)


def _plain(v):
    import pandas as pd

    if isinstance(v, pd.DataFrame):
        return json.loads(v.to_json(orient="records", double_precision=15))
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def record(chapter: str, claims_table, **tables) -> None:
    """Save a chapter's claims table and headline tables as JSON, for the pages and tests that
    read a chapter's results without re-running it (the landing page's claims matrix, the
    before/after comparison of a refactor).

    Written atomically to :func:`path` (a rerun with non-default parameters: to
    :func:`rerun_path`, the book's record left as it is) only when ``$CLIPSAFETY_OUTPUTS`` is set (the book
    runner points it at ``book/chapters/.state/outputs``). Returns nothing, so that a
    chapter's last line displays nothing. ``tables``: DataFrames (stored as records) or plain
    JSON values.
    """
    if not os.environ.get(OUTPUTS_ENV):
        return None
    run = this_run()
    payload = {"chapter": chapter, "params": run["changed"], "rerun": run["rerun"],
               "claims": _plain(claims_table),
               "tables": {k: _plain(v) for k, v in tables.items()}}
    where = recorded(chapter)
    where.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(where, json.dumps(payload, indent=1, default=str))
    return None


def recorded(chapter: str) -> Path | None:
    """The record the current run of ``chapter`` wrote (:func:`record`), ``None`` when it
    writes none (no folder named)."""
    if not os.environ.get(OUTPUTS_ENV):
        return None
    run = this_run()
    return rerun_path(chapter, run["changed"]) if run["rerun"] else path(chapter)


def read(chapters: Sequence[str] | str) -> dict:
    """The book's recorded outputs of ``chapters`` (a list, or a comma-separated string):
    ``{chapter: payload or None}``, ``None`` for a chapter that has not run (reruns with
    non-default parameters are not the book's record: :func:`rerun_path`)."""
    if isinstance(chapters, str):
        chapters = [c.strip() for c in chapters.split(",") if c.strip()]
    out = {}
    for n in chapters:
        p = path(n)
        out[n] = json.loads(p.read_text()) if p.is_file() else None
    return out


def digest(chapters: Sequence[str] | None = None) -> str:
    """A hash of the recorded outputs files of ``chapters`` (default: every one; names and
    bytes): what the summary chapters' cache key holds, so the findings page and the world
    appendix re-execute when a chapter they read has new outputs (and not when their own do)."""
    h = hashlib.sha256()
    d = folder()
    files = sorted(d.glob("*.json")) if d.is_dir() else []
    if chapters is not None:
        files = [p for p in files if p.stem in set(chapters)]
    for p in files:
        h.update(p.name.encode() + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


__all__ = ["DEFAULT_FOLDER", "OUTPUTS_ENV", "RERUNS", "RUN_ENV", "digest", "folder", "path",
           "read", "record", "recorded", "rerun_path", "run_env", "this_run"]
