"""The execution cache: a chapter re-executes only when its key changes.

The key hashes the chapter source, its parameters, the library code (every file under
``lib/clipsafety`` but the runner and the site's styling), the input data (every file under
``data/``) and which published upstream files are reachable; a summary chapter's key also
holds the digest of every chapter's recorded outputs. Jupyter Book's own cache hashes code
cells only, which misses library and data changes. Each chapter's state (key, parameters,
time, whether it recorded outputs) is ``book/chapters/.state/<name>.json``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

from clipsafety import outputs
from clipsafety.book import toc
from clipsafety.book.toc import Chapter
from clipsafety.files import atomic_write_text

#: what a chapter's computation never depends on: the runner itself, and the site's styling
#: (the Sphinx extension and the stylesheet)
NOT_IN_KEY = (toc.LIB / "book", toc.LIB / "sphinx_ext.py", toc.LIB / "site.css")


def _hash_tree(root: Path, patterns=("*",), skip=()) -> str:
    h = hashlib.sha256()
    if root.exists():
        files = sorted({p for pat in patterns for p in root.rglob(pat) if p.is_file()})
        for p in files:
            if "__pycache__" in p.parts or p.suffix == ".pyc":
                continue
            if any(p == s or s in p.parents for s in skip):
                continue
            h.update(str(p.relative_to(root)).encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def environment_fingerprint() -> dict:
    """The parts of the key shared by all chapters: library code, input data, upstream reach."""
    from clipsafety import external

    mirror = external.mirror_dir()
    return {
        "library": _hash_tree(toc.LIB, skip=NOT_IN_KEY),
        "data": _hash_tree(toc.DATA),
        "mirror": bool(mirror and mirror.is_dir()),
    }


def chapter_key(chapter: Chapter, params: dict, env: dict) -> str:
    payload = {
        "source": hashlib.sha256(chapter.source.read_bytes()).hexdigest(),
        "params": params,
        **env,
    }
    if chapter.name in toc.SUMMARY_CHAPTERS:
        from clipsafety.contents import claim_chapters

        payload["outputs"] = outputs.digest(claim_chapters())
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def state_path(name: str) -> Path:
    return toc.STATE / f"{name}.json"


def read_state(name: str) -> dict | None:
    p = state_path(name)
    return json.loads(p.read_text()) if p.exists() else None


def write_state(chapter: Chapter, key: str, params: dict, seconds: float) -> None:
    """Record a successful execution of ``chapter``."""
    atomic_write_text(state_path(chapter.name), json.dumps({
        "key": key, "params": params, "seconds": seconds,
        "recorded_outputs": outputs.path(chapter.name).exists(),
        "executed_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "defaults": chapter.defaults(),
    }, indent=1, default=str))


_DATA_REF = r"_static/data/([0-9a-f]{20})\.js"


def chart_data_refs(notebook: Path) -> set[str]:
    """The chart data files (:func:`clipsafety.plots._render`) an executed notebook loads."""
    return set(re.findall(_DATA_REF, notebook.read_text(errors="replace")))


def missing_outputs(name: str, state: dict) -> bool:
    """A chapter that recorded outputs (:func:`clipsafety.outputs.record`) whose file is gone
    is stale: the findings page would read nothing of it."""
    return bool(state.get("recorded_outputs")) and not outputs.path(name).exists()


def missing_chart_data(notebook: Path) -> bool:
    return any(not (toc.STATIC / "data" / f"{k}.js").exists() for k in chart_data_refs(notebook))


def is_cached(chapter: Chapter, key: str) -> dict | None:
    """The chapter's state when its executed notebook is current for ``key`` (same key, the
    notebook, its chart data and its recorded outputs all there), else ``None``."""
    out_nb = toc.CHAPTERS / f"{chapter.name}.ipynb"
    state = read_state(chapter.name)
    if (state and state.get("key") == key and out_nb.exists()
            and not missing_chart_data(out_nb) and not missing_outputs(chapter.name, state)):
        return state
    return None


__all__ = ["NOT_IN_KEY", "chapter_key", "chart_data_refs", "environment_fingerprint",
           "is_cached", "missing_chart_data", "missing_outputs", "read_state", "state_path",
           "write_state"]
