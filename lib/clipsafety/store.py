"""The prediction store: one directory per record, keyed by a hash of its manifest.

Layout under the store root (default ``$CLIPSAFETY_STORE``, else ``.cache/store`` in the
current directory)::

    records/<key>/manifest.json          the full manifest (key manifest + run facts)
    records/<key>/arrays.safetensors     logits float32 [N, C], targets int64 [N]
    records/<key>/samples.parquet        id (+ per-sample meta columns), aligned with rows
    partial/<key>/shard-<start>.safetensors   finished batches of an unfinished run

Conventions:

- ``key = sha256(canonical JSON of the key manifest)[:32]``: model id and weights hash,
  preprocessing, head and template hash, logit policy, label subset, dataset manifest,
  precision, library version. Any change is a miss, never a stale hit. Descriptions that do
  not determine the logits (:data:`clipsafety.records.NON_KEY_FIELDS`: the model's catalog
  metadata ``model_meta``, the dataset's ``annotations``) are left out of the hash.
- Every write is atomic: files are written under a temporary name and ``os.replace``d;
  a record directory is assembled under ``tmp/`` and renamed into ``records/`` in one step,
  so a reader sees a whole record or none, even after ``kill -9``.
- Shards of an unfinished run survive a kill; :func:`clipsafety.predict` resumes from them.
- Integrity: ``manifest.json`` carries the sha256 of ``arrays.safetensors`` and
  ``samples.parquet`` (``checksums``) and of its own canonical JSON (``manifest_sha256``).
  :meth:`Store.get` verifies them (and that every file parses and the row counts agree); a
  record that fails is named with its path, moved aside to ``corrupt/<key>-<stamp>/`` with a
  :class:`CorruptRecordWarning`, and reported as a miss, so the next :func:`clipsafety.predict`
  recomputes it. A shard that does not load is renamed ``*.corrupt`` and its samples recomputed.
- Permissions: directories and files are created with the process umask (no fixed 0600 or
  0700), so with ``umask 002`` a group shares a store (README: "Shared stores").

Many writers (the Ray engine, :mod:`clipsafety.engines`; several hosts on one shared file
system). What the store relies on is plain POSIX, nothing more:

- ``rename(2)`` of a directory onto a name that does not exist is atomic, and onto a
  non-empty directory fails (``ENOTEMPTY``/``EEXIST``) without touching it. ``tmp/`` and
  ``records/`` are siblings under the root, so the rename never crosses a file system. Two
  writers racing on one key both assemble a complete record in their own ``tmp/`` folder;
  one rename wins, the loser sees the error, finds the winner's record and drops its own:
  one valid record (the same bytes when the inputs are the same). No lock is taken to write.
- The data files and the manifest are fsynced before the rename (and the folder after), so
  a rename that another host sees is never of a folder whose files are still in the
  writer's page cache. On NFS, close-to-open consistency then gives a reader on another host
  the whole record once it sees the folder; its attribute cache can at worst delay a hit
  (a miss that recomputes the record, and whose rename then loses), never show half a one.
- Removing a record (:meth:`Store.quarantine` of a corrupt one, :meth:`Store.delete`) takes
  a POSIX advisory lock (``fcntl.lockf``, which NFSv3 serves through lockd/NLM and NFSv4
  natively) on ``locks/<key>.lock``, and a reader that found a record corrupt moves it aside
  only if the folder is still the one it read (same inode and ctime): two readers of one damaged
  record never move a valid record written in between. File systems without POSIX locks
  (some FUSE mounts, object stores) are not supported for many writers.
- Shards under ``partial/<key>`` are written atomically under names of their first index;
  two runs of one key may both save one (the first copy is kept on load). A run whose shards
  were cleaned up by a concurrent run of the same key that finished first returns that run's
  record (:func:`clipsafety.predict`), never a record with missing rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
from pathlib import Path

import numpy as np

from clipsafety.files import atomic_write_bytes
from clipsafety.records import NON_KEY_FIELDS, PredictionRecord

FORMAT = 1
#: the data files of a record, whose sha256 the manifest carries
RECORD_FILES = ("arrays.safetensors", "samples.parquet")


class StoreError(RuntimeError):
    """The store cannot be used as given (its root is a file, ...)."""


class CorruptRecord(StoreError):
    """A stored record or shard whose files do not load or do not match their checksums."""

    def __init__(self, path, why: str):
        self.path = Path(path)
        super().__init__(f"{self.path}: {why}")


class CorruptRecordWarning(UserWarning):
    """A corrupt record was moved aside and will be recomputed."""


def _manifest_digest(manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def canonical_json(obj) -> str:
    """Deterministic JSON (sorted keys, no spaces; numpy scalars as Python numbers)."""
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, (np.ndarray,)):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"manifest value {o!r} of type {type(o).__name__} is not JSON-able")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=default)


def manifest_key(manifest: dict) -> str:
    """The store key of a key manifest: 32 hex digits of its canonical JSON's sha256.

    :data:`~clipsafety.records.NON_KEY_FIELDS` are dropped first (at the top level and in
    ``manifest["model"]``), so they never change a key."""
    hashed = {k: v for k, v in manifest.items() if k not in NON_KEY_FIELDS}
    if isinstance(hashed.get("model"), dict):
        hashed["model"] = {k: v for k, v in hashed["model"].items() if k not in NON_KEY_FIELDS}
    return hashlib.sha256(canonical_json(hashed).encode()).hexdigest()[:32]


def default_root() -> Path:
    return Path(os.environ.get("CLIPSAFETY_STORE") or Path.cwd() / ".cache" / "store")


class Store:
    """A directory of prediction records (see module docstring)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root).expanduser() if root is not None else default_root()
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"prediction store {str(self.root)!r} is a file, not a folder; pass a "
                             "folder for the store (it is created if missing), e.g. --store "
                             f"{self.root.parent / 'store'}.")

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def record_dir(self, key: str) -> Path:
        return self.root / "records" / key

    def has(self, key: str) -> bool:
        return (self.record_dir(key) / "manifest.json").is_file()

    def get(self, key: str, on_corrupt: str = "move") -> PredictionRecord | None:
        """The stored record, or ``None`` on a miss.

        A corrupt record (see the module docstring) is moved aside with a
        :class:`CorruptRecordWarning` naming its path and reported as a miss
        (``on_corrupt="move"``), or raises :class:`CorruptRecord` (``on_corrupt="raise"``)."""
        if on_corrupt not in ("move", "raise"):
            raise ValueError(f"on_corrupt={on_corrupt!r}; expected 'move' or 'raise'.")
        d = self.record_dir(key)
        try:
            ident = _identity(d)
        except FileNotFoundError:
            return None
        if not (d / "manifest.json").is_file():
            return None
        try:
            return self.read(key)
        except CorruptRecord as exc:
            if on_corrupt == "raise":
                raise
            moved = self.quarantine(key, identity=ident)
            if moved is None:  # another reader moved it (or a writer replaced it) first
                return self.get(key)
            warnings.warn(f"corrupt record {exc}; moved aside to {moved}, it will be recomputed.",
                          CorruptRecordWarning, stacklevel=2)
            return None

    def read(self, key: str) -> PredictionRecord:
        """Read and verify the record ``key``; :class:`CorruptRecord` names the bad file."""
        import pyarrow.parquet as pq
        from safetensors.numpy import load_file

        from clipsafety.files import content_digest

        d = self.record_dir(key)
        mpath = d / "manifest.json"
        try:
            manifest = json.loads(mpath.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CorruptRecord(mpath, f"not a readable JSON manifest ({type(e).__name__}: {e}); "
                                "the file is truncated or damaged") from e
        if not isinstance(manifest, dict):
            raise CorruptRecord(mpath, "the manifest is not a JSON object")
        want = manifest.get("manifest_sha256")
        if want is not None and want != _manifest_digest(manifest):
            raise CorruptRecord(mpath, "the manifest does not match its manifest_sha256 (edited or damaged)")
        if manifest.get("key", key) != key:
            raise CorruptRecord(mpath, f"the manifest's key {manifest.get('key')!r} is not its folder's {key!r}")
        for name, digest in (manifest.get("checksums") or {}).items():
            f = d / name
            if not f.is_file():
                raise CorruptRecord(f, "missing")
            if content_digest(f) != digest:
                raise CorruptRecord(f, f"sha256 does not match the manifest's checksum "
                                    f"({digest[:12]}...); the file is truncated or damaged")
        try:
            arrays = load_file(str(d / "arrays.safetensors"))
            logits, targets = arrays["logits"], arrays["targets"]
        except Exception as e:  # noqa: BLE001 - SafetensorError, OSError, KeyError: all corrupt
            raise CorruptRecord(d / "arrays.safetensors", f"does not load ({type(e).__name__}: {e})") from e
        try:
            table = pq.read_table(d / "samples.parquet").to_pandas()
            ids = table["id"].to_numpy(dtype=str)
        except Exception as e:  # noqa: BLE001 - ArrowInvalid, OSError, KeyError: all corrupt
            raise CorruptRecord(d / "samples.parquet", f"does not load ({type(e).__name__}: {e})") from e
        n = manifest.get("n", logits.shape[0])
        if not (logits.ndim == 2 and logits.shape[0] == targets.shape[0] == len(ids) == n):
            raise CorruptRecord(d, f"row counts disagree: logits {logits.shape}, targets "
                                f"{targets.shape}, ids {len(ids)}, manifest n={n}")
        meta = table if table.shape[1] > 1 else None
        return PredictionRecord(logits=logits, targets=targets, ids=ids, manifest=manifest, meta=meta)

    @contextlib.contextmanager
    def key_lock(self, key: str):
        """An exclusive POSIX advisory lock (``fcntl.lockf``) on ``locks/<key>.lock``, held by
        whoever removes the record ``key`` (see the module docstring); works across hosts on
        NFS with locking. Writers do not take it."""
        import fcntl

        path = self.root / "locks" / f"{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+b") as fh:
            fcntl.lockf(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.lockf(fh, fcntl.LOCK_UN)

    def quarantine(self, key: str, identity: tuple | None = None) -> Path | None:
        """Move the record ``key`` to ``corrupt/<key>-<stamp>`` (kept for inspection); its
        key becomes a miss. Returns the new folder (``None`` if there was nothing to move).

        identity: the record folder's ``(inode, ctime)`` when it was found corrupt; if the
        folder is no longer that one (another reader moved it and a writer put a new record),
        nothing is moved. Runs under :meth:`key_lock`."""
        d = self.record_dir(key)
        dest = self.root / "corrupt" / f"{key}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self.key_lock(key):
            try:
                if identity is not None and _identity(d) != identity:
                    return None
                os.replace(d, dest)
            except FileNotFoundError:  # another process moved it first
                return None
        return dest

    def put(self, key: str, record: PredictionRecord) -> Path:
        """Write ``record`` under ``key`` atomically; an existing record is kept as it is."""
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq
        from safetensors.numpy import save

        final = self.record_dir(key)
        if self.has(key):
            return final
        tmp = self.root / "tmp" / f"{key}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            # safetensors' save_file creates its file 0600 whatever the umask: write the bytes
            # ourselves (opened with the umask), so a group can share the store
            data = save({"logits": np.ascontiguousarray(record.logits, dtype=np.float32),
                         "targets": np.ascontiguousarray(record.targets, dtype=np.int64)})
            with open(tmp / "arrays.safetensors", "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            table = pd.DataFrame({"id": np.asarray(record.ids, dtype=str)})
            if record.meta is not None:
                meta = record.meta.reset_index(drop=True)
                table = pd.concat([table, meta.drop(columns=[c for c in ("id",) if c in meta])], axis=1)
            pq.write_table(pa.Table.from_pandas(table, preserve_index=False), tmp / "samples.parquet")
            _fsync(tmp / "samples.parquet")
            sums = {name: _sha256(tmp / name) for name in RECORD_FILES}
            manifest = json.loads(json.dumps({**record.manifest, "key": key, "checksums": sums},
                                             default=str))
            manifest["manifest_sha256"] = _manifest_digest(manifest)
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
            _fsync(tmp / "manifest.json")
            _fsync(tmp)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(tmp, final)  # atomic for directories when `final` does not exist
            except OSError:
                if not self.has(key):  # a concurrent writer won: keep theirs
                    raise
            else:
                _fsync(final.parent)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def delete(self, key: str) -> None:
        """Remove a record: renamed away first (readers see a miss, never half a record),
        under :meth:`key_lock`."""
        d = self.record_dir(key)
        if d.exists():
            trash = self.root / "tmp" / f"{key}-deleted-{uuid.uuid4().hex[:8]}"
            trash.parent.mkdir(parents=True, exist_ok=True)
            with self.key_lock(key):
                try:
                    os.replace(d, trash)
                except FileNotFoundError:  # another process removed it first
                    return
            shutil.rmtree(trash, ignore_errors=True)

    def keys(self) -> list[str]:
        d = self.root / "records"
        return sorted(p.name for p in d.iterdir() if (p / "manifest.json").is_file()) if d.is_dir() else []

    def manifests(self):
        """A ``pandas.DataFrame`` with one row per stored record (key, model, dataset, n)."""
        import pandas as pd

        rows = []
        for k in self.keys():
            path = self.record_dir(k) / "manifest.json"
            try:
                m = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                warnings.warn(f"{path}: not a readable JSON manifest ({e}); left out of the "
                              "listing (the next predict of that pair moves it aside and "
                              "recomputes it).", CorruptRecordWarning, stacklevel=2)
                continue
            rows.append({"key": k, "model_id": m.get("model", {}).get("model_id"),
                         "dataset_id": m.get("dataset", {}).get("dataset_id"),
                         "n": m.get("n"), "n_skipped": m.get("n_skipped")})
        return pd.DataFrame(rows, columns=["key", "model_id", "dataset_id", "n", "n_skipped"])

    def partial(self, key: str, manifest: dict) -> PartialRun:
        return PartialRun(self.root / "partial" / key, manifest)


def _identity(folder: Path) -> tuple:
    """``(inode, ctime_ns)`` of a folder: a record folder put later is another one, even
    where the file system reuses the inode of a removed one."""
    st = folder.stat()
    return st.st_ino, st.st_ctime_ns


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to the storage before a rename."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    from clipsafety.files import _hash_file

    return _hash_file(path)


class PartialRun:
    """Shards of an unfinished run: each holds the logits of a set of dataset indices."""

    def __init__(self, folder: Path, manifest: dict):
        self.folder = folder
        self._manifest = manifest
        self._open()

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        mpath = self.folder / "manifest.json"
        if not mpath.exists():
            atomic_write_bytes(mpath, canonical_json(self._manifest).encode())

    def shards(self) -> list[Path]:
        return sorted(self.folder.glob("shard-*.safetensors"))

    def write_shard(self, indices: np.ndarray, logits: np.ndarray, targets: np.ndarray,
                    ids: list[str], skipped: list[dict]) -> None:
        """Save one shard atomically. ``indices`` are the dataset indices of the rows;
        ``skipped`` lists ``{index, id, reason}`` of samples that could not be read."""
        from safetensors.numpy import save

        start = int(min([*indices.tolist(), *[s["index"] for s in skipped]]))
        data = save({"indices": np.ascontiguousarray(indices, dtype=np.int64),
                     "logits": np.ascontiguousarray(logits, dtype=np.float32),
                     "targets": np.ascontiguousarray(targets, dtype=np.int64)},
                    metadata={"ids": json.dumps(list(ids)), "skipped": json.dumps(skipped)})
        target = self.folder / f"shard-{start:010d}.safetensors"
        try:
            atomic_write_bytes(target, data)
        except FileNotFoundError:
            # another run of the same record finished and removed this folder (cleanup) while
            # this one was writing: open it again and keep the rows; the caller then finds the
            # finished record in the store (clipsafety.infer.predict) instead of failing
            self._open()
            atomic_write_bytes(target, data)

    def load(self):
        """``(indices, logits, targets, ids, skipped)`` concatenated over all shards."""
        from safetensors import safe_open

        idx, lg, tg, ids, skipped = [], [], [], [], []
        for p in self.shards():
            try:
                with safe_open(str(p), framework="numpy") as f:
                    md = f.metadata()
                    i, lo, t = f.get_tensor("indices"), f.get_tensor("logits"), f.get_tensor("targets")
                sid, sk = json.loads(md["ids"]), json.loads(md["skipped"])
                if not (len(i) == lo.shape[0] == len(t) == len(sid)):
                    raise ValueError(f"row counts disagree ({len(i)}, {lo.shape[0]}, {len(t)}, {len(sid)})")
            except Exception as e:  # noqa: BLE001 - a damaged shard: set it aside, redo its rows
                bad = p.with_name(p.name + ".corrupt")
                try:
                    os.replace(p, bad)
                except FileNotFoundError:
                    continue
                warnings.warn(f"corrupt shard {p} ({type(e).__name__}: {e}); moved aside to "
                              f"{bad.name}, its samples will be recomputed.", CorruptRecordWarning,
                              stacklevel=2)
                continue
            idx.append(i)
            lg.append(lo)
            tg.append(t)
            ids += sid
            skipped += sk
        if not idx:
            return np.zeros(0, np.int64), None, np.zeros(0, np.int64), [], []
        idx, lg, tg = np.concatenate(idx), np.concatenate(lg), np.concatenate(tg)
        # two runs of the same key at once may both have saved an index: keep its first copy
        _, first = np.unique(idx, return_index=True)
        if len(first) < len(idx):
            first.sort()
            idx, lg, tg, ids = idx[first], lg[first], tg[first], [ids[i] for i in first]
        seen, uniq = set(idx.tolist()), []
        for s in skipped:
            if s["index"] not in seen:
                seen.add(s["index"])
                uniq.append(s)
        return idx, lg, tg, ids, uniq

    def done_indices(self) -> set[int]:
        idx, _, _, _, skipped = self.load()
        return set(idx.tolist()) | {s["index"] for s in skipped}

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
