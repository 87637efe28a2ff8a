"""The prediction store: one directory per record, keyed by a hash of its manifest.

Layout under the store root (default ``$CLIPSAFETY_STORE``, else ``.cache/store`` in the
current directory)::

    records/<key>/manifest.json          the full manifest (key manifest + run facts)
    records/<key>/arrays.safetensors     logits float32 [N, C], targets int64 [N]
    records/<key>/samples.parquet        id (+ per-sample meta columns), aligned with rows: a
                                         hard link to samples/<sha256>.parquet (one file per
                                         distinct table; old stores with plain files still read)
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
  ``samples.parquet`` (``checksums``), its folder's ``key`` and the sha256 of its own canonical
  JSON (``manifest_sha256``). :meth:`Store.get` verifies them all (and that every file parses
  and the row counts agree): a manifest without them is not a record's (every record is put
  with them), so a record is never served without a matching checksum. Given the key
  manifest it was asked for (``expect``, as :func:`clipsafety.predict` does), it also checks
  that the record's key fields are those, i.e. that they hash to its folder's key. A record
  that fails (a folder without a manifest included) is named with its path, moved aside to
  ``corrupt/<key>-<stamp>/`` with a :class:`CorruptRecordWarning`, and reported as a miss, so
  the next :func:`clipsafety.predict` recomputes it. A shard that does not load is renamed
  ``*.corrupt`` and its samples recomputed.
- Faults of the file system (a full disk or quota, a read-only mount, a file another user's
  umask keeps from this one, a folder removed underneath) raise :class:`StoreIOError` naming
  the path, the ``OSError`` and what to do; never a record moved aside for them. A failed
  shard write loses that batch only (the shards already written are kept; a rerun resumes),
  a failed record write loses nothing computed (its shards stay until the record is stored);
  a corrupt record that cannot be moved aside is named with its checksum failure.
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


class StoreIOError(StoreError):
    """The file system refused a read or a write of the store: a full disk or quota, a
    read-only mount, a file another user's umask keeps from this one, a folder removed
    underneath. The message names the path, what happened and what to do; ``path`` and
    ``errno`` are kept as attributes, the ``OSError`` as ``__cause__``."""

    def __init__(self, message: str, path, errno: int | None = None):
        self.path = Path(path)
        self.errno = errno
        super().__init__(message)

    def with_note(self, note: str) -> StoreIOError:
        """The same error with ``note`` (what is kept, what a rerun does) appended."""
        return StoreIOError(f"{self} {note}", self.path, self.errno)


#: how to share a store between the users of a group (README.md, "Shared stores")
SHARED_STORE_ADVICE = (
    "Records are created with their writer's umask: a store is shared by a group when every "
    "writer runs `umask 002` (files 664, folders 775) in a group-owned store folder with the "
    "setgid bit (chmod 2775; README.md, 'Shared stores'). The owner of these files runs "
    "`chmod -R g+rwX {root}` and writes with `umask 002` from now on; or use a store of your "
    "own (--store DIR, $CLIPSAFETY_STORE or store=).")


def _owner(path) -> str:
    """``owner <user>, group <group>, mode 0600`` of ``path`` (as far as stat tells)."""
    try:
        st = os.stat(path)
    except OSError:
        return ""
    try:
        import grp
        import pwd

        user = pwd.getpwuid(st.st_uid).pw_name
        group = grp.getgrgid(st.st_gid).gr_name
    except (ImportError, KeyError):
        user, group = f"uid {st.st_uid}", f"gid {st.st_gid}"
    return f" (owner {user}, group {group}, mode {st.st_mode & 0o777:04o})"


def _fault(path, doing: str, exc: OSError, root, *, reading: bool = False,
           kept: str = "") -> StoreIOError:
    """A :class:`StoreIOError` for ``exc``, raised while ``doing`` ``path`` in the store at
    ``root``: the path, the ``OSError``, what it means and what to do, then ``kept``."""
    told, what = _explain(path, exc, root, reading=reading)
    msg = f"{path}: could not {doing}: {told}. {what}"
    return StoreIOError(f"{msg} {kept}" if kept else msg, path, getattr(exc, "errno", None))


def _explain(path, exc: OSError, root, *, reading: bool = False) -> tuple[str, str]:
    """``(the OSError as told, what it means and what to do)`` for :func:`_fault`."""
    import errno as E

    code = getattr(exc, "errno", None)
    told = f"[Errno {code}] {exc.strerror}" if code is not None and exc.strerror else str(exc)
    if exc.filename is not None and str(exc.filename) != str(path):
        told += f": {exc.filename}"
    where = "--store DIR, $CLIPSAFETY_STORE or store="
    if code in (E.ENOSPC, getattr(E, "EDQUOT", -1)):
        what = (f"The file system holding the store is full (or this user's disk quota is "
                f"used up). Free space there (records moved aside under {root}/corrupt/ can "
                f"go), or point the store at a file system with room ({where}).")
    elif code == E.EROFS:
        what = ("The store is on a read-only file system. Remount it read-write, or point the "
                f"store at a writable folder ({where}); the records of a read-only store are "
                "still read.")
    elif code in (E.EACCES, E.EPERM) and reading:
        what = ("This user may not read it" + _owner(path) + ": it was written under a umask "
                "that keeps it from other users (umask 077 makes files 0600). "
                + SHARED_STORE_ADVICE.format(root=root))
    elif code in (E.EACCES, E.EPERM):
        what = ("This user may not write there" + _owner(Path(exc.filename or path).parent) + ". "
                + SHARED_STORE_ADVICE.format(root=root))
    elif code == E.ENOENT:
        what = ("The folder was removed while this process was using it (a concurrent delete "
                "of the store or of this folder). Run it again.")
    else:
        what = f"Check the file system that holds the store ({root})."
    return told, what


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
    return hashlib.sha256(canonical_json(_key_fields(manifest)).encode()).hexdigest()[:32]


def _key_fields(manifest: dict) -> dict:
    """``manifest`` without :data:`~clipsafety.records.NON_KEY_FIELDS` (at the top level and
    in ``manifest["model"]``): what its key hashes."""
    hashed = {k: v for k, v in manifest.items() if k not in NON_KEY_FIELDS}
    if isinstance(hashed.get("model"), dict):
        hashed["model"] = {k: v for k, v in hashed["model"].items() if k not in NON_KEY_FIELDS}
    return hashed


def _as_stored(obj):
    """``obj`` as :meth:`Store.put` writes it into a manifest (JSON, ``str`` of the rest)."""
    return json.loads(json.dumps(obj, default=str))


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

    def get(self, key: str, on_corrupt: str = "move", expect: dict | None = None) -> PredictionRecord | None:
        """The stored record, or ``None`` on a miss.

        A corrupt record (see the module docstring) is moved aside with a
        :class:`CorruptRecordWarning` naming its path and reported as a miss
        (``on_corrupt="move"``), or raises :class:`CorruptRecord` (``on_corrupt="raise"``).
        expect: the key manifest the record is asked for (:func:`clipsafety.infer.key_manifest`);
        a record whose key fields differ from it is corrupt. A record removed (or replaced)
        while it is read is looked up again: a miss or the new record, never an error. A
        fault of the file system raises :class:`StoreIOError`."""
        if on_corrupt not in ("move", "raise"):
            raise ValueError(f"on_corrupt={on_corrupt!r}; expected 'move' or 'raise'.")
        d = self.record_dir(key)
        for _ in range(5):
            try:
                ident = _identity(d)
            except FileNotFoundError:
                return None
            except OSError as e:
                raise _fault(d, "look up a record", e, self.root, reading=True) from e
            try:
                return self.read(key, expect=expect)
            except CorruptRecord as exc:
                if _identity_or_none(d) != ident:
                    continue  # removed or replaced while it was read: not corrupt, look again
                if on_corrupt == "raise":
                    raise
                try:
                    moved = self.quarantine(key, identity=ident)
                except StoreIOError as e:  # name the damage, not only the write that failed
                    told, what = _explain(d, e.__cause__, self.root)
                    raise StoreIOError(
                        f"corrupt record {exc}; it could not be moved aside to "
                        f"{self.root / 'corrupt'}: {told}. {what} Once the store is writable "
                        f"the next run moves it aside and it is recomputed (or remove {d} by "
                        "hand).", d, e.errno) from e.__cause__
                if moved is None:  # another reader moved it (or a writer replaced it) first
                    continue
                warnings.warn(f"corrupt record {exc}; moved aside to {moved}, it will be recomputed.",
                              CorruptRecordWarning, stacklevel=2)
                return None
        return None  # removed and put again over and over while this process read it: a miss

    def read(self, key: str, expect: dict | None = None) -> PredictionRecord:
        """Read and verify the record ``key``; :class:`CorruptRecord` names the bad file (one
        that is missing included), :class:`StoreIOError` a file this user may not read.

        expect: the key manifest the record must have been put with (see :meth:`get`)."""
        d = self.record_dir(key)
        mpath = d / "manifest.json"
        try:
            manifest = json.loads(mpath.read_text())
        except FileNotFoundError as e:
            raise CorruptRecord(mpath, "missing; a record folder always holds its manifest") from e
        except PermissionError as e:
            raise _fault(mpath, "read a record's manifest", e, self.root, reading=True) from e
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CorruptRecord(mpath, f"not a readable JSON manifest ({type(e).__name__}: {e}); "
                                "the file is truncated or damaged") from e
        if not isinstance(manifest, dict):
            raise CorruptRecord(mpath, "the manifest is not a JSON object")
        want = manifest.get("manifest_sha256")
        if not isinstance(want, str):
            raise CorruptRecord(mpath, "the manifest carries no manifest_sha256 (every record is "
                                "stored with one): it was rewritten or damaged")
        if want != _manifest_digest(manifest):
            raise CorruptRecord(mpath, "the manifest does not match its manifest_sha256 (edited or damaged)")
        if manifest.get("key") != key:
            raise CorruptRecord(mpath, f"the manifest's key {manifest.get('key')!r} is not its folder's {key!r}")
        sums = manifest.get("checksums")
        if not isinstance(sums, dict) or not set(RECORD_FILES) <= set(sums):
            raise CorruptRecord(mpath, "the manifest does not carry the sha256 of each of "
                                f"{', '.join(RECORD_FILES)} (checksums): the record's numbers "
                                "cannot be checked; it was rewritten or damaged")
        if expect is not None:
            asked = _as_stored(_key_fields(expect))
            found = _key_fields({k: manifest[k] for k in asked if k in manifest})
            bad = [k for k in asked if k not in found or canonical_json(found[k]) != canonical_json(asked[k])]
            if bad:
                raise CorruptRecord(mpath, f"its {', '.join(bad)} {'is' if len(bad) == 1 else 'are'} "
                                    "not that of the model and data asked for, whose key is its "
                                    "folder's: it was copied from another record or edited")
        logits, targets = self._read_arrays(d / "arrays.safetensors", sums["arrays.safetensors"])
        ids, table = self._read_samples(d / "samples.parquet", sums["samples.parquet"])
        n = manifest.get("n", logits.shape[0])
        if not (logits.ndim == 2 and logits.shape[0] == targets.shape[0] == len(ids) == n):
            raise CorruptRecord(d, f"row counts disagree: logits {logits.shape}, targets "
                                f"{targets.shape}, ids {len(ids)}, manifest n={n}")
        meta = table if table.shape[1] > 1 else None
        return PredictionRecord(logits=logits, targets=targets, ids=ids, manifest=manifest, meta=meta)

    def _read_arrays(self, path: Path, digest: str):
        """``(logits, targets)`` of a record: the file read once, its sha256 checked on the
        bytes read, then parsed from them (no second read)."""
        from safetensors.numpy import load

        data = self._read_bytes(path)
        if hashlib.sha256(data).hexdigest() != digest:
            raise CorruptRecord(path, f"sha256 does not match the manifest's checksum "
                                f"({str(digest)[:12]}...); the file is truncated or damaged")
        try:
            arrays = load(data)
            return arrays["logits"], arrays["targets"]
        except Exception as e:  # noqa: BLE001 - SafetensorError, KeyError: all corrupt
            raise CorruptRecord(path, f"does not load ({type(e).__name__}: {e})") from e

    def _read_bytes(self, path: Path) -> bytes:
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except FileNotFoundError as e:
            raise CorruptRecord(path, "missing") from e
        except PermissionError as e:
            raise _fault(path, "read a record's file", e, self.root, reading=True) from e
        except OSError as e:
            raise CorruptRecord(path, f"does not read ({type(e).__name__}: {e})") from e

    def _read_samples(self, path: Path, digest: str):
        """``(ids, table)`` of a record's sample table. Identical tables are one file (a hard
        link to ``samples/<sha256>.parquet``, see :meth:`put`), read and checked once per
        process: a file whose ``(device, inode, size, mtime, ctime)`` was checked against
        ``digest`` is served from memory (a copy), any change to it is read and checked again."""
        try:
            st = os.stat(path)
        except FileNotFoundError as e:
            raise CorruptRecord(path, "missing") from e
        except PermissionError as e:
            raise _fault(path, "read a record's file", e, self.root, reading=True) from e
        ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if _CHECKED.get(ident) != digest or digest not in _TABLES:
            data = self._read_bytes(path)
            if hashlib.sha256(data).hexdigest() != digest:
                raise CorruptRecord(path, f"sha256 does not match the manifest's checksum "
                                    f"({str(digest)[:12]}...); the file is truncated or damaged")
            try:
                _remember_table(digest, _parse_table(data))
            except Exception as e:  # noqa: BLE001 - ArrowInvalid, KeyError: all corrupt
                raise CorruptRecord(path, f"does not load ({type(e).__name__}: {e})") from e
            _CHECKED[ident] = digest
        ids, table = _TABLES[digest]
        return ids.copy(), table.copy()

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
        nothing is moved. Runs under :meth:`key_lock`. A write the file system refuses raises
        :class:`StoreIOError`."""
        d = self.record_dir(key)
        dest = self.root / "corrupt" / f"{key}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with self.key_lock(key):
                try:
                    if identity is not None and _identity(d) != identity:
                        return None
                    os.replace(d, dest)
                except FileNotFoundError:  # another process moved it first
                    return None
        except OSError as e:
            raise _fault(d, "move the record aside", e, self.root) from e
        return dest

    def put(self, key: str, record: PredictionRecord) -> Path:
        """Write ``record`` under ``key`` atomically; an existing record is kept as it is.

        The record's sample table is stored once per content: ``samples/<sha256>.parquet``,
        hard-linked as the record's ``samples.parquet`` (a copy where the file system has no
        hard links); records of one dataset share it. A write the file system refuses raises
        :class:`StoreIOError` naming the file; the half-written copy is removed, the store is
        left as it was."""
        return self._write(key, record)[0]

    def put_record(self, key: str, record: PredictionRecord) -> PredictionRecord:
        """:meth:`put`, returning the record as :meth:`get` would read it back (the stored
        manifest, the sample table parsed from the bytes written) without reading it back."""
        final, manifest, data = self._write(key, record)
        if data is None:  # already stored (by another writer): read it
            return self.get(key) or record
        ids, table = _parse_table(data)
        return PredictionRecord(logits=np.ascontiguousarray(record.logits, dtype=np.float32),
                                targets=np.ascontiguousarray(record.targets, dtype=np.int64),
                                ids=ids, manifest=manifest,
                                meta=table if table.shape[1] > 1 else None)

    def _write(self, key: str, record: PredictionRecord):
        """``(folder, manifest, sample-table bytes)``; manifest and bytes are ``None`` when the
        record was already there."""
        from safetensors.numpy import save

        final = self.record_dir(key)
        tmp = self.root / "tmp" / f"{key}-{uuid.uuid4().hex[:8]}"
        at = tmp
        try:
            if self.has(key):
                return final, None, None
            tmp.mkdir(parents=True)
            # safetensors' save_file creates its file 0600 whatever the umask: write the bytes
            # ourselves (opened with the umask), so a group can share the store
            data = save({"logits": np.ascontiguousarray(record.logits, dtype=np.float32),
                         "targets": np.ascontiguousarray(record.targets, dtype=np.int64)})
            at = tmp / "arrays.safetensors"
            with open(at, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            table = _table_bytes(record)
            sums = {"arrays.safetensors": hashlib.sha256(data).hexdigest(),
                    "samples.parquet": hashlib.sha256(table).hexdigest()}
            at = self._table_path(sums["samples.parquet"])
            self._shared_table(sums["samples.parquet"], table)
            at = tmp / "samples.parquet"
            try:
                os.link(self._table_path(sums["samples.parquet"]), at)
            except OSError:  # no hard links here (some FUSE / object-store mounts): a copy
                at.unlink(missing_ok=True)
                with open(at, "xb") as fh:
                    fh.write(table)
                    fh.flush()
                    os.fsync(fh.fileno())
            manifest = json.loads(json.dumps({**record.manifest, "key": key, "checksums": sums},
                                             default=str))
            manifest["manifest_sha256"] = _manifest_digest(manifest)
            at = tmp / "manifest.json"
            at.write_text(json.dumps(manifest, indent=1))
            _fsync(at)
            _fsync(tmp)
            at = final
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(tmp, final)  # atomic for directories when `final` does not exist
            except OSError:
                if not self.has(key):  # a concurrent writer won: keep theirs
                    raise
            else:
                _fsync(final.parent)
        except OSError as e:
            why = "write a record"
            if at == final and _is_dir(final) and not self.has(key):
                why += (" (a folder without a manifest.json is in its place: a damaged record, "
                        "which the next read moves aside to corrupt/)")
            raise _fault(at, why, e, self.root) from e
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final, manifest, table

    def _table_path(self, digest: str) -> Path:
        return self.root / "samples" / f"{digest}.parquet"

    def _shared_table(self, digest: str, data: bytes) -> Path:
        """``samples/<digest>.parquet`` holding ``data``: kept when its bytes check, else
        written (atomically, fsynced) — a damaged one (its inode shared with a damaged record)
        is replaced by a new file, never repaired in place."""
        path = self._table_path(digest)
        try:
            st = os.stat(path)
            ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            if _CHECKED.get(ident) == digest:
                return path
            with open(path, "rb") as fh:
                if hashlib.sha256(fh.read()).hexdigest() == digest:
                    _CHECKED[ident] = digest
                    return path
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
        try:
            with open(tmp, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync(path.parent)
        return path

    def delete(self, key: str) -> None:
        """Remove a record: renamed away first (readers see a miss, never half a record),
        under :meth:`key_lock`. A write the file system refuses raises :class:`StoreIOError`."""
        d = self.record_dir(key)
        if d.exists():
            trash = self.root / "tmp" / f"{key}-deleted-{uuid.uuid4().hex[:8]}"
            try:
                trash.parent.mkdir(parents=True, exist_ok=True)
                with self.key_lock(key):
                    try:
                        os.replace(d, trash)
                    except FileNotFoundError:  # another process removed it first
                        return
            except OSError as e:
                raise _fault(d, "remove the record", e, self.root) from e
            shutil.rmtree(trash, ignore_errors=True)

    def keys(self) -> list[str]:
        """The keys of the stored records (a folder this user may not look into included)."""
        d = self.root / "records"
        if not d.is_dir():
            return []
        out = []
        for p in d.iterdir():
            try:
                if (p / "manifest.json").is_file():
                    out.append(p.name)
            except PermissionError:  # another user's umask: get() names it and what to do
                out.append(p.name)
        return sorted(out)

    def manifests(self):
        """A ``pandas.DataFrame`` with one row per stored record (key, model, dataset, n)."""
        import pandas as pd

        rows = []
        for k in self.keys():
            path = self.record_dir(k) / "manifest.json"
            try:
                m = json.loads(path.read_text())
            except FileNotFoundError:  # removed since it was listed
                continue
            except PermissionError as e:
                warnings.warn(f"{_fault(path, 'read a manifest', e, self.root, reading=True)} "
                              "Left out of the listing.", stacklevel=2)
                continue
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


#: sample tables read in this process, by sha256: ``(ids, table)`` (see Store._read_samples)
_TABLES: dict[str, tuple] = {}
#: ``(device, inode, size, mtime, ctime)`` of sample-table files checked in this process -> sha256
_CHECKED: dict[tuple, str] = {}
#: distinct sample tables kept in memory (a zoo's chapter reads about 15)
TABLE_CACHE_SIZE = 64


def _remember_table(digest: str, parsed: tuple) -> None:
    _TABLES.pop(digest, None)
    _TABLES[digest] = parsed
    while len(_TABLES) > TABLE_CACHE_SIZE:
        _TABLES.pop(next(iter(_TABLES)))


def _table_bytes(record: PredictionRecord) -> bytes:
    """The record's sample table (``id`` and its per-sample meta columns) as parquet bytes."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pd.DataFrame({"id": np.asarray(record.ids, dtype=str)})
    if record.meta is not None:
        meta = record.meta.reset_index(drop=True)
        table = pd.concat([table, meta.drop(columns=[c for c in ("id",) if c in meta])], axis=1)
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), sink)
    return sink.getvalue().to_pybytes()


def _parse_table(data: bytes) -> tuple:
    """``(ids, table)`` of parquet bytes (``KeyError`` without an ``id`` column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(data)).to_pandas()
    return table["id"].to_numpy(dtype=str), table


def _identity(folder: Path) -> tuple:
    """``(inode, ctime_ns)`` of a folder: a record folder put later is another one, even
    where the file system reuses the inode of a removed one."""
    st = folder.stat()
    return st.st_ino, st.st_ctime_ns


def _identity_or_none(folder: Path) -> tuple | None:
    try:
        return _identity(folder)
    except OSError:
        return None


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


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
    """Shards of an unfinished run: each holds the logits of a set of dataset indices.

    A write the file system refuses raises :class:`StoreIOError` naming the folder and what
    is kept; a folder removed underneath (a finished twin's :meth:`cleanup`) is opened again."""

    #: attempts to open the folder again when a concurrent cleanup removes it between steps
    ATTEMPTS = 5

    def __init__(self, folder: Path, manifest: dict):
        self.folder = folder
        self._manifest = manifest
        self._open(kept="Nothing was computed yet.")

    @property
    def root(self) -> Path:
        """The store root (``<root>/partial/<key>``)."""
        return self.folder.parent.parent

    def _open(self, kept: str = "") -> None:
        mpath = self.folder / "manifest.json"
        for attempt in range(self.ATTEMPTS):
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                if not mpath.exists():
                    atomic_write_bytes(mpath, canonical_json(self._manifest).encode())
                return
            except FileNotFoundError as e:  # a twin's cleanup removed the folder: again
                if attempt == self.ATTEMPTS - 1:
                    raise _fault(self.folder, "create the folder of this run's shards", e,
                                 self.root, kept=kept) from e
            except OSError as e:
                raise _fault(self.folder, "create the folder of this run's shards", e,
                             self.root, kept=kept) from e

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
        for attempt in range(self.ATTEMPTS):
            try:
                atomic_write_bytes(target, data)
                return
            except FileNotFoundError as e:
                # another run of the same record finished and removed this folder (cleanup)
                # while this one was writing: open it again and keep the rows; the caller then
                # finds the finished record in the store (clipsafety.infer.predict)
                if attempt == self.ATTEMPTS - 1:
                    raise self._lost_batch(target, e, len(indices) + len(skipped)) from e
                self._open(kept=self._kept(len(indices) + len(skipped)))
            except OSError as e:
                raise self._lost_batch(target, e, len(indices) + len(skipped)) from e

    def _kept(self, n: int) -> str:
        k = len(self.shards())
        return (f"The {n} samples of this batch were not saved; the {k} shard{'s' * (k != 1)} "
                f"already written in {self.folder} are kept, and a rerun resumes from them.")

    def _lost_batch(self, target: Path, exc: OSError, n: int) -> StoreIOError:
        return _fault(target, "save a shard of this run", exc, self.root, kept=self._kept(n))

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
            except FileNotFoundError:  # removed by a finished twin's cleanup
                continue
            except PermissionError as e:
                raise _fault(p, "read a shard of this run", e, self.root, reading=True) from e
            except Exception as e:  # noqa: BLE001 - a damaged shard: set it aside, redo its rows
                bad = p.with_name(p.name + ".corrupt")
                try:
                    os.replace(p, bad)
                except FileNotFoundError:
                    continue
                except OSError as e2:
                    raise _fault(p, f"move a corrupt shard aside ({type(e).__name__}: {e})", e2,
                                 self.root) from e2
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
