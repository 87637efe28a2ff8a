"""Published upstream files: a registry pinned by commit and sha256.

Every file the book reads from an upstream project is listed in ``external_registry.tsv``
(``owner/repo``, pinned commit, path, size, sha256). :func:`fetch` returns a local path to
the verified bytes:

1. from a mirror directory laid out as ``<owner>/<repo>/<path>`` when the environment
   variable ``CLIPSAFETY_MIRROR`` names one (``make book`` and ``.ci/run`` point it at
   ``../shared/external`` when that folder exists);
2. otherwise from the download cache (``CLIPSAFETY_CACHE``, default ``~/.cache/clipsafety``),
   downloading ``https://raw.githubusercontent.com/<owner>/<repo>/<commit>/<path>`` on a miss.

Either way the sha256 is checked; a mismatch is an error, never a silent use. With neither
mirror nor network, :class:`ExternalUnavailable` is raised, which chapters turn into a note
in place of the panel (see :func:`available`).
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from clipsafety.files import atomic_write

REGISTRY = Path(__file__).with_name("external_registry.tsv")
URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"


class ExternalUnavailable(RuntimeError):
    """A published file could be found neither in the mirror nor by download."""


class ChecksumMismatch(RuntimeError):
    """A published file's bytes do not match the pinned sha256."""


@dataclass(frozen=True)
class ExternalFile:
    repo: str
    commit: str
    path: str
    size: int
    sha256: str

    @property
    def key(self) -> str:
        return f"{self.repo}/{self.path}"

    @property
    def url(self) -> str:
        return URL.format(repo=self.repo, commit=self.commit, path=self.path)


@lru_cache(maxsize=1)
def registry() -> dict[str, ExternalFile]:
    """All registered files, keyed by ``owner/repo/path``."""
    out = {}
    with open(REGISTRY, newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            f = ExternalFile(row["owner/repo"], row["commit"], row["path"], int(row["bytes"]),
                             row["sha256"])
            out[f.key] = f
    return out


def lookup(key: str) -> ExternalFile:
    """The registry entry for ``key`` (``owner/repo/path``); a clear error otherwise."""
    reg = registry()
    if key in reg:
        return reg[key]
    near = [k for k in reg if key.split("/")[-1] in k][:5]
    raise KeyError(
        f"{key!r} is not in the external registry ({REGISTRY.name}). "
        f"Expected 'owner/repo/path' of a registered file{'; did you mean ' + repr(near) if near else ''}. "
        "To use a new upstream file, add a row with its pinned commit and sha256."
    )


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, streamed (the one helper the package uses for this)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def mirror_dir() -> Path | None:
    m = os.environ.get("CLIPSAFETY_MIRROR", "").strip()
    return Path(m).expanduser() if m else None


def cache_dir() -> Path:
    return Path(os.environ.get("CLIPSAFETY_CACHE", "~/.cache/clipsafety")).expanduser() / "external"


def _verified(path: Path, f: ExternalFile) -> Path:
    digest = sha256_file(path)
    if digest != f.sha256:
        raise ChecksumMismatch(
            f"{path} does not match the pinned sha256 of {f.key} at {f.commit[:10]} "
            f"(expected {f.sha256[:12]}..., found {digest[:12]}...). Delete it and fetch again, "
            "or fix the mirror."
        )
    return path


def fetch(key: str, timeout: float = 20.0) -> Path:
    """Local, checksum-verified path of the published file ``key`` (``owner/repo/path``)."""
    f = lookup(key)
    mirror = mirror_dir()
    if mirror is not None:
        p = mirror / f.repo / f.path
        if p.is_file():
            return _verified(p, f)
    cached = cache_dir() / f.repo / f.commit / f.path
    if cached.is_file():
        return _verified(cached, f)

    def download(tmp: Path) -> None:
        try:
            with urllib.request.urlopen(f.url, timeout=timeout) as resp, open(tmp, "xb") as out:
                shutil.copyfileobj(resp, out)
        except Exception as exc:  # network down, DNS failure, HTTP error
            where = f"mirror {mirror}" if mirror else "no mirror (set CLIPSAFETY_MIRROR)"
            raise ExternalUnavailable(
                f"{f.key} is not available: {where}, and downloading {f.url} failed ({exc}). "
                "Point CLIPSAFETY_MIRROR at a folder laid out as <owner>/<repo>/<path>, or connect."
            ) from exc
        _verified(tmp, f)  # a mismatch raises; atomic_write removes the download

    return atomic_write(cached, download)


def available(key: str) -> bool:
    """True when :func:`fetch` would succeed without raising ``ExternalUnavailable``."""
    try:
        fetch(key)
        return True
    except ExternalUnavailable:
        return False


def keys(prefix: str = "") -> list[str]:
    """Registered keys that start with ``prefix``."""
    return sorted(k for k in registry() if k.startswith(prefix))
