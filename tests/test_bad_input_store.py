"""Bad input and faults of the prediction store (issue 16, the store part).

1. A record is served only if its manifest carries the checksums of its files and of itself,
   its key is its folder's and its key fields are those of the model and data asked for;
   anything else is corrupt: named in a :class:`CorruptRecordWarning`, moved aside to
   ``corrupt/`` and recomputed by :func:`clipsafety.predict`.
2. Two processes computing the same pairs at once both succeed with the same records, and a
   concurrent deleter makes a reader miss, never fail.
3. Faults of the file system (a full disk, a read-only store, a record another user's umask
   keeps from this one, a deleter) raise a :class:`StoreError` naming the path, what happened
   and what to do, and lose at most the batch being written.

Faults are simulated by patching the functions that write (the tests run as root, where
``chmod`` stops nothing). Each test asserts the outcome; the module docstring of
:mod:`clipsafety.store` describes the design.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import json
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clipsafety import store as store_mod
from clipsafety.infer import predict
from clipsafety.records import PredictionRecord
from clipsafety.store import CorruptRecordWarning, Store, StoreError
from conftest import expect_error as _expect
from conftest import needs_zoo

MODEL = "zoo:clip-resnet-wit-10k"
N = 24  # samples per synthetic set: a prediction takes a fraction of a second


def _spec(name: str = "id-test", n: int = N):
    from clipsafety.synth import get_dataset

    return get_dataset(name, n=n)


def _predict(spec, store, **kw):
    """``(record, messages of the CorruptRecordWarnings raised)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = predict(MODEL, spec, store=store, progress=False, **kw)
    return rec, [str(w.message) for w in caught if issubclass(w.category, CorruptRecordWarning)]




def _top1(rec) -> float:
    return float((rec.logits.argmax(1) == rec.targets).mean())


def _snapshot(root: Path) -> dict:
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _write_manifest(d: Path, m: dict, *, reseal: bool) -> None:
    """Rewrite a record's manifest; ``reseal`` recomputes its manifest_sha256 (an edit that
    knows the format), else the stale one stays or is left out as the test has it."""
    if reseal:
        m["manifest_sha256"] = store_mod._manifest_digest(m)
    (d / "manifest.json").write_text(json.dumps(m, indent=1))


# ------------------------------------------------------------------ 1. checksums and keys
@needs_zoo
@pytest.mark.parametrize("rewrite", ["manifest-is-its-key", "logits-without-checksums",
                                     "logits-without-their-checksum", "no-manifest-sha256",
                                     "no-key"])
def test_a_record_whose_manifest_lacks_its_checksums_is_corrupt_and_recomputed(tmp_path, rewrite):
    """Reviewer: a manifest rewritten to {"key": K}, or logits rewritten with checksums and
    manifest_sha256 deleted, was served as cached with wrong numbers (top-1 0.5 -> 0.0)."""
    from safetensors.numpy import save_file

    spec, root = _spec(), tmp_path / "store"
    r1 = predict(MODEL, spec, store=root, progress=False)
    key = r1.manifest["key"]
    d = Store(root).record_dir(key)
    m = json.loads((d / "manifest.json").read_text())
    wrong = np.zeros_like(r1.logits)
    wrong[np.arange(len(wrong)), (r1.targets + 1) % wrong.shape[1]] = 1.0  # top-1 0.0
    if rewrite == "manifest-is-its-key":
        (d / "manifest.json").write_text(json.dumps({"key": key}))
    elif rewrite == "logits-without-checksums":
        save_file({"logits": wrong, "targets": r1.targets}, str(d / "arrays.safetensors"))
        del m["checksums"], m["manifest_sha256"]
        _write_manifest(d, m, reseal=False)
    elif rewrite == "logits-without-their-checksum":  # a sealed manifest that covers one file
        save_file({"logits": wrong, "targets": r1.targets}, str(d / "arrays.safetensors"))
        del m["checksums"]["arrays.safetensors"]
        _write_manifest(d, m, reseal=True)
    elif rewrite == "no-manifest-sha256":
        del m["manifest_sha256"]
        m["n_skipped"] = 5  # an unsealed edit
        _write_manifest(d, m, reseal=False)
    else:
        del m["key"]
        _write_manifest(d, m, reseal=True)
    r2, warned = _predict(spec, root)
    assert any(str(d / "manifest.json") in w and "recomputed" in w for w in warned), warned
    assert r2.cache_hit is False and np.array_equal(r2.logits, r1.logits)
    assert _top1(r2) == _top1(r1) and r2.manifest["n_skipped"] == 0
    moved = list((root / "corrupt").iterdir())
    assert len(moved) == 1 and moved[0].name.startswith(key)
    r3, warned = _predict(spec, root)
    assert r3.cache_hit is True and not warned and np.array_equal(r3.logits, r1.logits)


@needs_zoo
@pytest.mark.parametrize("how", ["copied-folder", "key-edited-and-resealed"])
def test_a_record_of_another_pair_under_this_pairs_key_is_corrupt(tmp_path, how):
    """A record folder copied under another key (its manifest still naming its own key, or
    edited to name the new one and resealed): its checksums hold, but its key fields are
    not those of the pair asked for; never served as that pair's."""
    a_spec, b_spec = _spec("id-test"), _spec("shift-v2")
    root = tmp_path / "store"
    a = predict(MODEL, a_spec, store=root, progress=False)
    b_ref = predict(MODEL, b_spec, store=tmp_path / "ref", progress=False)
    kb = b_ref.manifest["key"]
    d = Store(root).record_dir(kb)
    shutil.copytree(Store(root).record_dir(a.manifest["key"]), d)
    if how == "key-edited-and-resealed":
        m = json.loads((d / "manifest.json").read_text())
        m["key"] = kb
        _write_manifest(d, m, reseal=True)
    b, warned = _predict(b_spec, root)
    assert any(str(d / "manifest.json") in w for w in warned), warned
    assert b.cache_hit is False and np.array_equal(b.logits, b_ref.logits)
    assert b.manifest["dataset"]["dataset_id"] == "synth:shift-v2"
    assert _predict(a_spec, root)[0].cache_hit is True  # the original is untouched


@needs_zoo
def test_a_record_with_a_key_field_of_another_spec_is_corrupt(tmp_path):
    """The key fields are checked against the spec asked for, so an edited n (same key
    folder, resealed manifest, valid checksums) is not served."""
    spec, root = _spec(), tmp_path / "store"
    r1 = predict(MODEL, spec, store=root, progress=False)
    d = Store(root).record_dir(r1.manifest["key"])
    m = json.loads((d / "manifest.json").read_text())
    m["precision"] = "bf16-autocast"
    _write_manifest(d, m, reseal=True)
    _expect(lambda: Store(root).get(r1.manifest["key"], on_corrupt="raise",
                                    expect=_key_manifest(spec)),
            StoreError, [str(d / "manifest.json"), "precision"])
    r2, warned = _predict(spec, root)
    assert warned and r2.cache_hit is False and r2.manifest["precision"] == "fp32"


def _key_manifest(spec):
    import clipsafety
    from clipsafety.infer import key_manifest

    return key_manifest(clipsafety.load(MODEL), spec, "fp32")


def _golden_record():
    meta = pd.DataFrame({"id": [f"x/{i}.jpg" for i in range(5)], "pose": [0, 1, 0, 1, 1]})
    return PredictionRecord(logits=np.arange(35, dtype=np.float32).reshape(5, 7) / 8,
                            targets=np.array([0, 1, -1, 3, 6]), ids=np.array(meta["id"]),
                            manifest={"model": {"model_id": "m"}, "dataset": {"dataset_id": "d"},
                                      "label_subset": [1, 3], "n": 5}, meta=meta)


def test_records_keep_their_bytes_and_pass_the_checks(tmp_path):
    """Good input is unchanged: the bytes a record is written with (arrays as before the
    checks were added; a manifest of the same form) and it reads back verified."""
    s = Store(tmp_path)
    s.put("g" * 32, _golden_record())
    d = s.record_dir("g" * 32)
    assert hashlib.sha256((d / "arrays.safetensors").read_bytes()).hexdigest() == (
        "8aba8572a6b657613e0d7a473639115b5e1e96ed7bd8320e4a3a50c2c5b4995c")
    m = json.loads((d / "manifest.json").read_text())
    sums = {n: hashlib.sha256((d / n).read_bytes()).hexdigest() for n in store_mod.RECORD_FILES}
    body = {**_golden_record().manifest, "key": "g" * 32, "checksums": sums}
    assert m == {**body, "manifest_sha256": hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()}
    assert (d / "manifest.json").read_text() == json.dumps(m, indent=1)
    assert s.get("g" * 32, on_corrupt="raise").logits.shape == (5, 7)


@needs_zoo
def test_a_predicted_record_passes_the_spec_check_and_is_a_hit(tmp_path):
    spec, root = _spec(), tmp_path / "store"
    r1 = predict(MODEL, spec, store=root, progress=False)
    rec = Store(root).get(r1.manifest["key"], on_corrupt="raise", expect=_key_manifest(spec))
    assert np.array_equal(rec.logits, r1.logits)
    r2, warned = _predict(spec, root)
    assert r2.cache_hit is True and not warned


# ------------------------------------------------------------ 2. many processes at once
PAIRS = [("zoo:clip-resnet-wit-10k", "id-test"), ("zoo:ref-resnet-labelled", "shift-v2"),
         ("zoo:clip-resnet-laion-10k", "shift-sketch"), ("zoo:clip-resnet-wit-10k", "ood-near")]
ROUNDS = 5


def _collector(base, who, barrier, out):
    """One of two processes predicting the same pairs into a cold store, round after round;
    small shards and a random start per pair vary the interleaving."""
    import traceback

    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(who)
    rows = []
    for r in range(ROUNDS):
        barrier.wait(timeout=120)
        for model, name in PAIRS:
            time.sleep(float(rng.uniform(0, 0.15)))
            try:
                rec = predict(model, _spec(name, 32), store=Path(base) / f"round-{r}",
                              progress=False, batch_size=4, shard_size=4)
                rows.append({"round": r, "pair": f"{model}|{name}", "key": rec.manifest["key"],
                             "logits": hashlib.sha256(rec.logits.tobytes()).hexdigest(),
                             "ids": list(map(str, rec.ids)), "hit": bool(rec.cache_hit)})
            except Exception:  # noqa: BLE001 - reported to the test, which fails on it
                rows.append({"round": r, "pair": f"{model}|{name}", "error": traceback.format_exc()})
    Path(out).write_text(json.dumps(rows))


@needs_zoo
@pytest.mark.slow
def test_two_collectors_racing_on_a_cold_store_both_succeed_with_the_same_records(tmp_path):
    import multiprocessing as mp

    for model, name in PAIRS:  # warm the head cache: the race is about the store
        predict(model, _spec(name, 32), store=tmp_path / "warm", progress=False)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    outs = [tmp_path / f"out-{w}.json" for w in (0, 1)]
    procs = [ctx.Process(target=_collector, args=(str(tmp_path / "stores"), w, barrier, str(outs[w])))
             for w in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
    assert [p.exitcode for p in procs] == [0, 0]
    rows = [json.loads(o.read_text()) for o in outs]
    errors = [r["error"] for rs in rows for r in rs if "error" in r]
    assert not errors, errors[0]
    assert len(rows[0]) == len(rows[1]) == ROUNDS * len(PAIRS)
    for a, b in zip(*rows):
        assert (a["round"], a["pair"]) == (b["round"], b["pair"])
        assert (a["key"], a["logits"], a["ids"]) == (b["key"], b["logits"], b["ids"]), a["pair"]
    for r in range(ROUNDS):
        root = tmp_path / "stores" / f"round-{r}"
        store = Store(root)
        assert len(store.keys()) == len(PAIRS)
        for k in store.keys():
            store.get(k, on_corrupt="raise")
        assert not list((root / "partial").iterdir()) and not list((root / "tmp").iterdir())
        assert not (root / "corrupt").exists()


def _deleter(root, key, stop):
    """Puts and deletes one record over and over (``clipsafety`` cleanup, a user's rm)."""
    store = Store(root)
    rec = _big_record()
    while not stop.is_set():
        store.put(key, rec)
        time.sleep(0.001)
        store.delete(key)


def _big_record():
    rng = np.random.default_rng(0)
    return PredictionRecord(logits=rng.normal(size=(3000, 40)).astype(np.float32),
                            targets=rng.integers(0, 40, 3000),
                            ids=np.array([f"s/{i}" for i in range(3000)]),
                            manifest={"model": {"model_id": "m"}, "dataset": {"dataset_id": "d"}})


@pytest.mark.slow
def test_a_concurrent_deleter_makes_a_reader_miss_never_fail(tmp_path):
    """Reviewer: 3 of 24 calls raised a raw FileNotFoundError. A record removed while it is
    read is a miss (or the record put after it), never an error, a warning or a record
    moved aside."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    key, stop = "de" * 16, ctx.Event()
    proc = ctx.Process(target=_deleter, args=(str(tmp_path), key, stop))
    proc.start()
    store, hits, calls = Store(tmp_path), 0, 0
    try:
        deadline = time.time() + 60
        while not (tmp_path / "records").exists() and time.time() < deadline:
            time.sleep(0.01)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            t0 = time.time()
            while time.time() - t0 < 4 or (hits == 0 and time.time() < deadline):
                calls += 1
                rec = store.get(key, on_corrupt="raise")
                if rec is not None:
                    hits += 1
                    assert rec.logits.shape == (3000, 40) and len(rec.ids) == 3000
                store.keys()
                store.manifests()
                store.has(key)
    finally:
        stop.set()
        proc.join(30)
    assert proc.exitcode == 0 and calls > 24 and hits >= 1
    assert not (tmp_path / "corrupt").exists()


def test_a_record_deleted_between_its_manifest_and_its_files_is_a_miss(tmp_path, monkeypatch):
    """The interleaving behind the raw FileNotFoundError, made deterministic: the record is
    removed after its manifest was read and before its files' checksums are."""
    store, key = Store(tmp_path), "df" * 16
    store.put(key, _golden_record())
    real = Store._read_arrays  # the first of the record's files read after its manifest

    def read_after_a_delete(self, path, digest):
        store.delete(key)
        return real(self, path, digest)

    monkeypatch.setattr(Store, "_read_arrays", read_after_a_delete)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.get(key) is None
        store.put(key, _golden_record())
        assert store.get(key, on_corrupt="raise") is None
    assert not (tmp_path / "corrupt").exists()


def test_a_partial_folder_removed_while_it_is_opened_is_opened_again(tmp_path, monkeypatch):
    """A finished twin removes the pair's partial folder between this run's mkdir and its
    manifest write (the other window of the twin race)."""
    folder = tmp_path / "partial" / ("ab" * 16)
    real = store_mod.atomic_write_bytes
    calls = {"n": 0}

    def removed_first(path, data):
        calls["n"] += 1
        if calls["n"] == 1:
            shutil.rmtree(folder)
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
        return real(path, data)

    monkeypatch.setattr(store_mod, "atomic_write_bytes", removed_first)
    run = Store(tmp_path).partial("ab" * 16, {"x": 1})
    run.write_shard(np.array([0]), np.ones((1, 2)), np.array([1]), ["a"], [])
    assert run.done_indices() == {0} and json.loads((folder / "manifest.json").read_text()) == {"x": 1}


def test_a_record_folder_without_a_manifest_is_corrupt_not_a_permanent_failure(tmp_path):
    """records/<key> holding files but no manifest.json (a hand-deleted manifest) was a miss
    whose put then failed on every run (the rename onto a non-empty folder)."""
    store, key = Store(tmp_path), "ef" * 16
    store.put(key, _golden_record())
    (store.record_dir(key) / "manifest.json").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert store.get(key) is None
    assert any(str(store.record_dir(key) / "manifest.json") in str(w.message) for w in caught)
    store.put(key, _golden_record())
    assert store.get(key, on_corrupt="raise") is not None


# ------------------------------------------------------------------ 3. file-system faults
def _under(path, root: Path) -> bool:
    try:
        p = os.path.abspath(os.fspath(path))
    except TypeError:  # a file descriptor
        return False
    return p == str(root) or p.startswith(str(root) + os.sep)


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _read_only(monkeypatch, root: Path) -> None:
    """Every change under ``root`` fails with ``[Errno 30] Read-only file system: <path>``."""
    root = root.resolve()

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    def guard(real, writes=lambda *a, **kw: True, paths=lambda a: a[:1]):
        def f(*a, **kw):
            if writes(*a, **kw):
                for p in paths(a):
                    if _under(p, root):
                        refuse(p)
            return real(*a, **kw)
        return f

    def open_writes(file, mode="r", *a, **kw):
        return any(c in mode for c in "wax+")

    for name in ("mkdir", "unlink", "remove", "rmdir"):
        monkeypatch.setattr(os, name, guard(getattr(os, name)))
    for name in ("replace", "rename"):
        monkeypatch.setattr(os, name, guard(getattr(os, name), paths=lambda a: a[:2]))
    monkeypatch.setattr(os, "open", guard(os.open, lambda path, flags, *a, **kw: flags & _WRITE_FLAGS))
    for mod in (builtins, io):
        monkeypatch.setattr(mod, "open", guard(mod.open, open_writes))


def _disk_full(monkeypatch, root: Path, when) -> list:
    """Files opened for writing under ``root`` whose path satisfies ``when`` fail on write
    with ``[Errno 28] No space left on device`` (no path, as the kernel reports it).
    Returns the paths that failed."""
    root, failed = root.resolve(), []

    class Full:
        def __init__(self, fh, path):
            self.fh, self.path = fh, path

        def write(self, data):
            failed.append(self.path)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    def wrap(real):
        def f(file, mode="r", *a, **kw):
            fh = real(file, mode, *a, **kw)
            if any(c in mode for c in "wax+") and _under(file, root) and when(Path(file)):
                return Full(fh, Path(file))
            return fh
        return f

    for mod in (builtins, io):
        monkeypatch.setattr(mod, "open", wrap(mod.open))
    return failed


@needs_zoo
def test_disk_full_on_a_shard_names_the_folder_and_keeps_the_shards_written(tmp_path, monkeypatch):
    spec, root = _spec(), tmp_path / "store"
    ref = predict(MODEL, spec, store=tmp_path / "ref", progress=False, batch_size=4, shard_size=4)
    state = {"shards": 0}

    def third_shard(p):
        if p.name.startswith(".shard-"):
            state["shards"] += 1
            return state["shards"] >= 3
        return False

    failed = _disk_full(monkeypatch, root, third_shard)
    err = _expect(lambda: predict(MODEL, spec, store=root, progress=False, batch_size=4, shard_size=4),
                  StoreError, ["[errno 28]", str(root / "partial" / ref.manifest["key"]), "full",
                               "free", "$CLIPSAFETY_STORE", "4 samples", "2 shards", "resume"])
    assert failed and err.errno == errno.ENOSPC
    monkeypatch.undo()
    assert len(list((root / "partial").glob("*/shard-*.safetensors"))) == 2
    assert not list((root / "partial").glob("*/.shard-*"))  # no half-written file left
    rec = predict(MODEL, spec, store=root, progress=False, batch_size=4, shard_size=4)
    assert rec.manifest["resumed_samples"] == 8 and np.array_equal(rec.logits, ref.logits)


@needs_zoo
def test_disk_full_on_the_record_keeps_every_shard_and_a_rerun_computes_nothing(tmp_path, monkeypatch):
    spec, root = _spec(), tmp_path / "store"
    failed = _disk_full(monkeypatch, root, lambda p: p.name == "arrays.safetensors")
    _expect(lambda: predict(MODEL, spec, store=root, progress=False, batch_size=4, shard_size=4),
            StoreError, ["[errno 28]", str(root), "full", "free", f"all {N} samples", "shards",
                         "without recomputing"])
    assert failed
    monkeypatch.undo()
    assert not list((root / "tmp").iterdir()) and not (root / "records").exists()
    rec = predict(MODEL, spec, store=root, progress=False)
    assert rec.manifest["resumed_samples"] == N and len(rec) == N


@needs_zoo
def test_disk_full_on_the_record_of_a_one_shard_run_saves_its_rows_as_a_shard(tmp_path, monkeypatch):
    """A run that fits one shard keeps its rows in memory (no shard written and read back);
    when its record cannot be written they are saved as a shard, and a rerun computes nothing."""
    spec, root = _spec(), tmp_path / "store"
    failed = _disk_full(monkeypatch, root, lambda p: p.name == "arrays.safetensors")
    _expect(lambda: predict(MODEL, spec, store=root, progress=False),
            StoreError, ["[errno 28]", str(root), "full", f"all {N} samples", "shards",
                         "without recomputing"])
    assert failed
    monkeypatch.undo()
    assert len(list((root / "partial").glob("*/shard-*.safetensors"))) == 1
    rec = predict(MODEL, spec, store=root, progress=False)
    assert rec.manifest["resumed_samples"] == N and len(rec) == N


@needs_zoo
def test_a_read_only_store_names_the_folder_before_computing_and_still_serves_hits(tmp_path,
                                                                                  monkeypatch):
    spec, other, root = _spec(), _spec("shift-v2"), tmp_path / "store"
    r1 = predict(MODEL, spec, store=root, progress=False)
    before = _snapshot(root)
    _read_only(monkeypatch, root)
    err = _expect(lambda: predict(MODEL, other, store=root, progress=False),
                  StoreError, ["[errno 30]", str(root / "partial"), "read-only",
                               "writable", "--store", "nothing was computed"])
    assert err.errno == errno.EROFS
    rec, warned = _predict(spec, root)
    assert rec.cache_hit is True and not warned and np.array_equal(rec.logits, r1.logits)
    monkeypatch.undo()
    assert _snapshot(root) == before


@needs_zoo
def test_a_corrupt_record_in_a_read_only_store_names_the_checksum_failure(tmp_path, monkeypatch):
    """The record cannot be moved aside: the error names the damaged file and its checksum
    failure (not only the write error that hid it), and what to do."""
    spec, root = _spec(), tmp_path / "store"
    r1 = predict(MODEL, spec, store=root, progress=False)
    path = Store(root).record_dir(r1.manifest["key"]) / "arrays.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    before = _snapshot(root)
    _read_only(monkeypatch, root)
    err = _expect(lambda: predict(MODEL, spec, store=root, progress=False), StoreError,
                  [str(path), "sha256 does not match", "[errno 30]", "read-only",
                   "could not be moved aside", "writable", "recomputed"])
    assert isinstance(err.__cause__, OSError)
    monkeypatch.undo()
    assert _snapshot(root) == before


@needs_zoo
def test_a_record_another_users_umask_keeps_from_this_one_gives_the_umask_advice(tmp_path,
                                                                                monkeypatch):
    """A record written under umask 077 (manifest.json 0600), read by a group-mate: a
    PermissionError. Never called corrupt, never moved aside; the README's advice."""
    spec, root = _spec(), tmp_path / "store"
    r1 = predict(MODEL, spec, store=root, progress=False)
    mpath = Store(root).record_dir(r1.manifest["key"]) / "manifest.json"
    before = _snapshot(root)

    def guard(real):
        def f(file, mode="r", *a, **kw):
            if _under(file, mpath.resolve()):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(file))
            return real(file, mode, *a, **kw)
        return f

    for mod in (builtins, io):
        monkeypatch.setattr(mod, "open", guard(mod.open))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        err = _expect(lambda: predict(MODEL, spec, store=root, progress=False), StoreError,
                      [str(mpath), "permission denied", "umask 002", "chmod -R g+rwX",
                       "Shared stores"])
        _expect(lambda: Store(root).get(r1.manifest["key"]), StoreError, [str(mpath), "umask 002"])
    assert err.errno == errno.EACCES and not isinstance(err, store_mod.CorruptRecord)
    monkeypatch.undo()
    assert _snapshot(root) == before and not (root / "corrupt").exists()


@needs_zoo
def test_a_store_removed_while_a_run_writes_names_the_folder_and_what_to_do(tmp_path, monkeypatch):
    """A concurrent deleter (rm -rf of the store) between two shards: the run ends with a
    StoreError naming the folder and telling to run again (which succeeds), never a raw
    FileNotFoundError."""
    spec, root = _spec(), tmp_path / "store"
    real = store_mod.PartialRun.write_shard
    calls = {"n": 0}

    def deleter_strikes(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            shutil.rmtree(root)
        return real(self, *a, **kw)

    monkeypatch.setattr(store_mod.PartialRun, "write_shard", deleter_strikes)
    _expect(lambda: predict(MODEL, spec, store=root, progress=False, batch_size=4, shard_size=4),
            StoreError, [str(root / "partial"), "removed", "run it again"])
    monkeypatch.undo()
    rec = predict(MODEL, spec, store=root, progress=False)
    assert len(rec) == N and rec.cache_hit is False
