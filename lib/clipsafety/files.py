"""The repository root, atomic file writes and file content digests: the one place for each.

Every file the project writes where a reader might look at the same time (prediction
records, head caches, downloads, executed chapters, the zoo's rendered training sets) goes
through :func:`atomic_write`: the content is written to a temporary file in the target's own
folder and moved over the target with ``os.replace``, which POSIX makes atomic within one file
system, so a reader sees the old file or the new one, never a partial one. Temporary files are
opened with the process umask (not ``mkstemp``'s fixed 0600), so files in a store shared by a
group are group-readable when the umask allows it.

The repository root (:data:`REPO_ROOT`) is the checkout being worked in, not necessarily the
one the package was imported from: ``$CLIPSAFETY_ROOT`` when set, else the clipsafety
checkout holding the current directory, else the checkout this package lives in. So a second
clone that shares a virtual environment (whose editable install points at the first clone)
builds its own book from its own ``analyses/`` and ``data/``.

:func:`content_digest` is the fast content hash of a data file (sha256 of its bytes), computed
once and cached by ``(path, size, mtime, ctime, inode)`` in memory and in
``$CLIPSAFETY_CACHE/file-digests.sqlite``: a file rewritten with new bytes of the same size
gets a new digest, an unchanged file is never read twice.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

#: the checkout this package lives in (``lib/clipsafety`` -> its repository root)
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def is_checkout(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a clipsafety checkout (``lib/clipsafety``, ``analyses/``, ``book/``)."""
    f = Path(folder)
    return ((f / "lib" / "clipsafety" / "__init__.py").is_file() and (f / "analyses").is_dir()
            and (f / "book").is_dir())


def find_repo_root(cwd: str | os.PathLike | None = None) -> Path:
    """``$CLIPSAFETY_ROOT``, else the checkout holding ``cwd`` (default: the current
    directory), else :data:`PACKAGE_ROOT` (see the module docstring)."""
    env = os.environ.get("CLIPSAFETY_ROOT", "").strip()
    if env:
        root = Path(env).expanduser().resolve()
        if not is_checkout(root):
            raise RuntimeError(f"CLIPSAFETY_ROOT={env!r} is not a clipsafety checkout (expected "
                               "lib/clipsafety/, analyses/ and book/ in it); unset it or point it "
                               "at the repository root.")
        return root
    try:
        here = Path(cwd if cwd is not None else os.getcwd()).resolve()
    except OSError:  # the current directory was removed
        return PACKAGE_ROOT
    for folder in (here, *here.parents):
        if is_checkout(folder):
            return folder
    return PACKAGE_ROOT


#: the checkout being worked in (:func:`find_repo_root`, decided once at import)
REPO_ROOT = find_repo_root()


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


# --------------------------------------------------------------------------------------------
# content digests of data files

_DIGESTS: dict[tuple, str] = {}
_DB_LOCK = threading.Lock()


def _stat_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _digest_db() -> Path | None:
    """The on-disk digest cache (``$CLIPSAFETY_CACHE/file-digests.sqlite``), or ``None`` when
    ``CLIPSAFETY_DIGEST_CACHE=0``."""
    if os.environ.get("CLIPSAFETY_DIGEST_CACHE", "1") == "0":
        return None
    root = Path(os.environ.get("CLIPSAFETY_CACHE", "~/.cache/clipsafety")).expanduser()
    return root / "file-digests.sqlite"


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def content_digests(paths: Iterable[str | os.PathLike]) -> list[str]:
    """sha256 of each file's bytes, computed once per ``(path, size, mtime, ctime, inode)``
    (see the module docstring); in the order given."""
    paths = [Path(p) for p in paths]
    keys = [_stat_key(p) for p in paths]
    missing = [k for k in keys if k not in _DIGESTS]
    db_path = _digest_db()
    con = None
    if missing and db_path is not None:
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(str(db_path), timeout=30)
            con.execute("CREATE TABLE IF NOT EXISTS digests (path TEXT, size INTEGER, "
                        "mtime INTEGER, ctime INTEGER, ino INTEGER, digest TEXT, "
                        "PRIMARY KEY (path, size, mtime, ctime, ino))")
            found = {}
            for i in range(0, len(missing), 500):
                chunk = missing[i:i + 500]
                q = " OR ".join(["(path=? AND size=? AND mtime=? AND ctime=? AND ino=?)"] * len(chunk))
                for row in con.execute(f"SELECT path, size, mtime, ctime, ino, digest FROM digests "
                                       f"WHERE {q}", [v for k in chunk for v in k]):
                    found[tuple(row[:5])] = row[5]
            _DIGESTS.update(found)
        except sqlite3.Error:  # an unwritable or locked cache only costs speed
            con = None
    new = []
    for k, p in zip(keys, paths):
        if k not in _DIGESTS:
            _DIGESTS[k] = _hash_file(p)
            new.append((*k, _DIGESTS[k]))
    if con is not None:
        try:
            if new:
                with _DB_LOCK, con:
                    con.executemany("INSERT OR REPLACE INTO digests VALUES (?,?,?,?,?,?)", new)
            con.close()
        except sqlite3.Error:
            pass
    return [_DIGESTS[k] for k in keys]


def content_digest(path: str | os.PathLike) -> str:
    """sha256 of one file's bytes (cached; see :func:`content_digests`)."""
    return content_digests([path])[0]
