"""The chapters' recorded outputs: the one owner of the folder where each chapter saves its
claims table and headline tables, and of reading, locating and digesting them.

A chapter ends by writing ``<folder>/<chapter>.json`` (:func:`record`): its claims table and
the tables a reader or test may want without re-running it. The findings page reads them
(:func:`read`), the book runner keys the findings page's cache on them (:func:`digest`) and
re-executes a chapter whose recorded file is gone (:func:`path`).

The folder is ``$CLIPSAFETY_OUTPUTS`` when set (the book runner sets it), else the book's
``book/chapters/.state/outputs``. :func:`record` writes nothing when the variable is unset, so
a chapter run by hand in Jupyter leaves the book's records alone.
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


def folder() -> Path:
    """Where chapters record their outputs: ``$CLIPSAFETY_OUTPUTS``, else the book's
    ``book/chapters/.state/outputs``."""
    return Path(os.environ.get(OUTPUTS_ENV) or DEFAULT_FOLDER)


def path(chapter: str) -> Path:
    """The recorded outputs file of ``chapter``."""
    return folder() / f"{chapter}.json"


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

    Written atomically to :func:`path` only when ``$CLIPSAFETY_OUTPUTS`` is set (the book
    runner points it at ``book/chapters/.state/outputs``). Returns nothing, so that a
    chapter's last line displays nothing. ``tables``: DataFrames (stored as records) or plain
    JSON values.
    """
    if not os.environ.get(OUTPUTS_ENV):
        return None
    payload = {"chapter": chapter, "claims": _plain(claims_table),
               "tables": {k: _plain(v) for k, v in tables.items()}}
    atomic_write_text(path(chapter), json.dumps(payload, indent=1, default=str))
    return None


def read(chapters: Sequence[str] | str) -> dict:
    """The recorded outputs of ``chapters`` (a list, or a comma-separated string):
    ``{chapter: payload or None}``, ``None`` for a chapter that has not run."""
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


__all__ = ["DEFAULT_FOLDER", "OUTPUTS_ENV", "digest", "folder", "path", "read", "record"]
