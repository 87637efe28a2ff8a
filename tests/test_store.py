"""The prediction store: keys, round trip, atomicity, shards."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from clipsafety.records import PredictionRecord
from clipsafety.store import Store, canonical_json, manifest_key


def _rec(n=5, c=7, seed=0):
    rng = np.random.default_rng(seed)
    meta = pd.DataFrame({"id": [f"x/{i}.jpg" for i in range(n)], "pose": rng.integers(0, 2, n),
                         "texture": [f"t{i}" for i in range(n)]})
    return PredictionRecord(logits=rng.normal(size=(n, c)).astype(np.float32),
                            targets=rng.integers(-1, c, n), ids=np.array(meta["id"]),
                            manifest={"model": {"model_id": "m"}, "dataset": {"dataset_id": "d"},
                                      "label_subset": [1, 3], "n": n}, meta=meta)


def test_key_is_sha256_of_canonical_json():
    m = {"b": 1, "a": {"y": [1, 2], "x": np.int64(3)}}
    assert canonical_json(m) == '{"a":{"x":3,"y":[1,2]},"b":1}'
    assert manifest_key(m) == hashlib.sha256(b'{"a":{"x":3,"y":[1,2]},"b":1}').hexdigest()[:32]
    assert manifest_key(m) == manifest_key({"a": {"x": 3, "y": [1, 2]}, "b": 1})
    assert manifest_key(m) != manifest_key({**m, "b": 2})
    with pytest.raises(TypeError, match="not JSON-able"):
        canonical_json({"f": object()})


def test_round_trip(tmp_path):
    s, r = Store(tmp_path), _rec()
    assert s.get("k" * 32) is None
    s.put("k" * 32, r)
    g = s.get("k" * 32)
    np.testing.assert_array_equal(g.logits, r.logits)
    np.testing.assert_array_equal(g.targets, r.targets)
    assert list(g.ids) == list(r.ids) and g.label_subset == [1, 3]
    pd.testing.assert_frame_equal(g.meta[["pose", "texture"]], r.meta[["pose", "texture"]],
                                  check_dtype=False)
    assert g.manifest["key"] == "k" * 32 and s.keys() == ["k" * 32]
    assert s.manifests()["model_id"].tolist() == ["m"]
    assert not list((tmp_path / "tmp").glob("*"))  # no leftovers


def test_put_keeps_an_existing_record(tmp_path):
    s = Store(tmp_path)
    s.put("a" * 32, _rec(seed=1))
    s.put("a" * 32, _rec(seed=2))
    np.testing.assert_array_equal(s.get("a" * 32).logits, _rec(seed=1).logits)


def test_half_written_record_is_invisible(tmp_path):
    s = Store(tmp_path)
    d = tmp_path / "tmp" / ("b" * 32 + "-dead")  # what a killed writer leaves behind
    d.mkdir(parents=True)
    (d / "arrays.safetensors").write_bytes(b"garbage")
    assert s.get("b" * 32) is None and s.keys() == []


def test_shards_round_trip_and_ignore_temporary_files(tmp_path):
    run = Store(tmp_path).partial("c" * 32, {"x": 1})
    run.write_shard(np.array([0, 1]), np.ones((2, 3)), np.array([2, 0]), ["a", "b"], [])
    run.write_shard(np.array([3]), np.zeros((1, 3)), np.array([1]), ["d"],
                    [{"index": 2, "id": "c", "reason": "corrupt"}])
    (run.folder / ".shard-0000000004.safetensors.x.tmp").write_bytes(b"partial")
    idx, lg, tg, ids, skipped = run.load()
    assert idx.tolist() == [0, 1, 3] and ids == ["a", "b", "d"] and tg.tolist() == [2, 0, 1]
    assert lg.shape == (3, 3) and skipped == [{"index": 2, "id": "c", "reason": "corrupt"}]
    assert run.done_indices() == {0, 1, 2, 3}
    assert json.loads((run.folder / "manifest.json").read_text()) == {"x": 1}
    run.cleanup()
    assert not run.folder.exists()


def test_duplicate_shard_rows_are_kept_once(tmp_path):
    run = Store(tmp_path).partial("d" * 32, {"x": 1})
    run.write_shard(np.array([0, 1]), np.array([[1.0], [2.0]]), np.array([0, 0]), ["a", "b"], [])
    run.write_shard(np.array([1, 2]), np.array([[9.0], [3.0]]), np.array([0, 0]), ["b", "c"], [])
    idx, lg, _, ids, _ = run.load()
    assert idx.tolist() == [0, 1, 2] and ids == ["a", "b", "c"] and lg[:, 0].tolist() == [1.0, 2.0, 3.0]


def test_delete_then_put_replaces(tmp_path):
    s = Store(tmp_path)
    s.put("e" * 32, _rec(seed=1))
    s.delete("e" * 32)
    assert s.get("e" * 32) is None
    s.put("e" * 32, _rec(seed=2))
    np.testing.assert_array_equal(s.get("e" * 32).logits, _rec(seed=2).logits)


# --- many writers -------------------------------------------------------------------------------

def _race_writer(root, keys, barrier, seed):
    """One of two processes putting the same records under the same keys at the same moment."""
    store = Store(root)
    for key in keys:
        barrier.wait(timeout=60)
        store.put(key, _rec(n=2000, c=50, seed=int(key[:4], 16)))


def _race_reader(root, keys, stop, found):
    """Polls every key while the writers write: a hit must be a whole, verified record."""
    store = Store(root)
    seen = set()
    while not stop.is_set():
        for key in keys:
            rec = store.get(key, on_corrupt="raise")  # a partial record would raise here
            if rec is not None:
                assert rec.logits.shape == (2000, 50) and len(rec.ids) == 2000
                seen.add(key)
    found.value = len(seen)


def test_two_processes_racing_on_one_key_leave_one_valid_record(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    keys = [hashlib.sha256(str(i).encode()).hexdigest()[:32] for i in range(12)]
    barrier, stop, found = ctx.Barrier(2), ctx.Event(), ctx.Value("i", -1)
    reader = ctx.Process(target=_race_reader, args=(tmp_path, keys, stop, found))
    writers = [ctx.Process(target=_race_writer, args=(tmp_path, keys, barrier, s)) for s in (1, 2)]
    reader.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join(120)
    stop.set()
    reader.join(60)
    assert [w.exitcode for w in writers] == [0, 0] and reader.exitcode == 0
    assert found.value >= 1  # the reader saw records appear, and none of them partial
    store = Store(tmp_path)
    assert store.keys() == sorted(keys)
    for key in keys:  # one record per key, verified, with the bytes one writer wrote
        rec = store.get(key, on_corrupt="raise")
        want = _rec(n=2000, c=50, seed=int(key[:4], 16))
        assert np.array_equal(rec.logits, want.logits) and rec.manifest["key"] == key
    assert not list((tmp_path / "tmp").iterdir())  # the losers cleaned up after themselves
    assert not (tmp_path / "corrupt").exists()


def test_a_corrupt_record_is_moved_aside_only_if_still_the_one_read(tmp_path):
    store = Store(tmp_path)
    key = "ab" * 16
    store.put(key, _rec())
    st = store.record_dir(key).stat()
    store.delete(key)  # another reader removed the damaged one, a writer put a new one
    store.put(key, _rec())
    assert store.quarantine(key, identity=(st.st_ino, st.st_ctime_ns)) is None
    assert store.get(key, on_corrupt="raise") is not None
    st = store.record_dir(key).stat()
    assert store.quarantine(key, identity=(st.st_ino, st.st_ctime_ns)) is not None
    assert store.get(key) is None and (tmp_path / "locks" / f"{key}.lock").is_file()
