"""The repository root and atomic file writes: the one place for both.

Every file the project writes where a reader might look at the same time (prediction
records, head caches, downloads, executed chapters, the zoo's rendered training sets) goes
through :func:`atomic_write`: the content is written to a temporary file in the target's own
folder and moved over the target with ``os.replace``, which POSIX makes atomic within one file
system, so a reader sees the old file or the new one, never a partial one. Temporary files are
opened with the process umask (not ``mkstemp``'s fixed 0600), so files in a store shared by a
group are group-readable when the umask allows it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

#: the checkout this package lives in (``lib/clipsafety`` -> the repository root)
REPO_ROOT = Path(__file__).resolve().parents[2]


def temporary_sibling(path: str | os.PathLike, suffix: str = ".tmp") -> Path:
    """A fresh temporary path next to ``path`` (same folder, so ``os.replace`` is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{suffix}")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object],
                 suffix: str = ".tmp") -> Path:
    """Call ``write(tmp)`` to fill a temporary sibling of ``path``, then move it over ``path``.

    ``suffix`` is the temporary file's suffix (some writers, e.g. ``numpy.savez``, append
    their own unless the name already ends with it). On any error the temporary file is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path, suffix)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (flushed and fsynced before the rename)."""
    def write(tmp: Path) -> None:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    return atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))
