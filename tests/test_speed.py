"""Issue 30 (speed): what the speed-ups must not change, checked against the slow paths.

1. Threads: ``cores // jobs`` per process, a user's OMP_NUM_THREADS kept, the build's
   variables restored.
2. A store hit builds no model: the zoo's described manifest (from the weights' header and
   digest) is the built model's, for every zoo model; a hit never calls ``load``; sample
   tables are stored once (one inode) and a record returned by ``predict`` after a write is
   the record a read gives; a store written before (plain ``samples.parquet``) still reads.
3. Real images decoded once per preprocessing: the cached tensors equal the uncached transform
   bit for bit (JPEG fixture folder, a timm and an open_clip preprocessing), a second model
   with the same preprocessing decodes nothing, and its logits equal an uncached run's.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import needs_zoo
from fixtures_real import make_wnid_dataset

torch.set_num_threads(2)


# ------------------------------------------------------------------ 1. threads
def test_threads_per_job_never_oversubscribe():
    from clipsafety.engines import threads_per_job

    assert [threads_per_job(j, cores=2) for j in (1, 2, 3)] == [2, 1, 1]
    assert [threads_per_job(j, cores=16) for j in (1, 2, 3, 4)] == [16, 8, 5, 4]
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="jobs"):
            threads_per_job(bad, cores=2)


def test_build_sets_chapter_threads_and_keeps_a_users(monkeypatch):
    from clipsafety.book.executor import chapter_threads
    from clipsafety.engines import THREAD_VARS, available_cores

    for var in THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    threads = torch.get_num_threads()
    try:
        with chapter_threads(2):
            want = str(max(1, available_cores() // 2))
            assert [os.environ[v] for v in THREAD_VARS] == [want] * len(THREAD_VARS)
            assert torch.get_num_threads() == int(want)  # torch already imported here
        assert not any(v in os.environ for v in THREAD_VARS)  # restored
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        with chapter_threads(2):
            assert os.environ["OMP_NUM_THREADS"] == "3" and os.environ["MKL_NUM_THREADS"] == "3"
        assert os.environ["OMP_NUM_THREADS"] == "3" and "MKL_NUM_THREADS" not in os.environ
    finally:
        torch.set_num_threads(threads)


# ------------------------------------------------------------------ 2. store hits
@needs_zoo
def test_described_zoo_manifest_is_the_built_models_for_every_zoo_model():
    from clipsafety.synth import CATEGORIES
    from clipsafety.zoo import core

    checked = 0
    for zid in core.list_zoo(include_reference=True)["id"]:
        for names in (None, [*CATEGORIES, "zebra", "kettle"]):
            try:
                built = core.load(zid, classnames=names)
            except ValueError:  # extra names on a classifier: describe refuses it the same way
                with pytest.raises(ValueError, match="zero-shot CLIP"):
                    core.describe(zid, classnames=names)
                continue
            told = core.describe(zid, classnames=names)
            assert told.module is None
            assert (told.manifest, told.label_space, told.classes, told.logit_policy) == (
                built.manifest, built.label_space, built.classes, built.logit_policy), zid
            checked += 1
    assert checked > 60


@needs_zoo
def test_a_store_hit_builds_no_model_and_returns_the_written_record(tmp_path, monkeypatch):
    import clipsafety.models as models
    from clipsafety.infer import predict
    from clipsafety.store import Store

    first = predict("zoo:clip-vit-wit-10k", "synth:id-test", store=tmp_path, progress=False)
    assert first.cache_hit is False

    def no_build(*a, **k):
        raise AssertionError("a store hit built the model")

    monkeypatch.setattr(models, "load", no_build)
    hit = predict("zoo:clip-vit-wit-10k", "synth:id-test", store=tmp_path, progress=False)
    assert hit.cache_hit is True
    read = Store(tmp_path).read(first.manifest["key"])
    for rec in (first, hit):
        assert np.array_equal(rec.logits, read.logits) and np.array_equal(rec.targets, read.targets)
        assert np.array_equal(rec.ids, read.ids) and rec.ids.dtype == read.ids.dtype
        assert (rec.meta is None) == (read.meta is None)
        if rec.meta is not None:
            assert rec.meta.equals(read.meta) and list(rec.meta.dtypes) == list(read.meta.dtypes)
    described = {k: first.manifest[k] for k in ("model_meta", "annotations")}
    assert {**read.manifest, **described} == first.manifest == hit.manifest


def test_timm_ids_are_described_without_weights_and_a_hit_builds_nothing(tmp_path, monkeypatch):
    """timm @random / @checkpoint ids: the described manifest (meta-device architecture) is the
    loaded model's, so a stored record is a hit without building the model."""
    import clipsafety.models as models
    from clipsafety.infer import predict

    for mid, size in (("timm:resnet18@random", 32), ("timm:vit_tiny_patch16_224@random", 32)):
        told, built = models.describe(mid, image_size=size), models.load(mid, image_size=size)
        assert told is not None and told.module is None
        assert (told.manifest, told.label_space, told.classes) == (
            built.manifest, built.label_space, built.classes)
    ckpt = tmp_path / "r18.pth"
    torch.save(models.load("timm:resnet18@random").module.state_dict(), ckpt)
    told, built = models.describe(f"timm:resnet18@{ckpt}"), models.load(f"timm:resnet18@{ckpt}")
    assert told.manifest == built.manifest and told.manifest["weights"]["sha256"]
    folder = make_wnid_dataset(tmp_path, "wnid", [1, 2], per_class=2)
    first = predict("timm:resnet18@random", f"folder:{folder}", store=tmp_path / "s",
                    image_size=32, progress=False)
    monkeypatch.setattr(models, "load", lambda *a, **k: (_ for _ in ()).throw(AssertionError("built")))
    hit = predict("timm:resnet18@random", f"folder:{folder}", store=tmp_path / "s", image_size=32,
                  progress=False)
    assert hit.cache_hit and np.array_equal(hit.logits, first.logits)


@needs_zoo
def test_identical_sample_tables_are_stored_once(tmp_path):
    from clipsafety.infer import predict

    a = predict("zoo:clip-vit-wit-10k", "synth:id-test", store=tmp_path, progress=False)
    b = predict("zoo:sup-vit-labelled-30k", "synth:id-test", store=tmp_path, progress=False)
    pa, pb = (tmp_path / "records" / r.manifest["key"] / "samples.parquet" for r in (a, b))
    assert pa.read_bytes() == pb.read_bytes()
    assert pa.stat().st_ino == pb.stat().st_ino  # one file, hard-linked
    assert len(list((tmp_path / "samples").iterdir())) == 1


def test_a_store_written_before_content_addressing_still_reads(tmp_path):
    """A record folder with its own plain samples.parquet (the old layout) reads as before."""
    import shutil

    from clipsafety.records import PredictionRecord
    from clipsafety.store import Store

    rec = PredictionRecord(logits=np.eye(3, 4, dtype=np.float32), targets=np.array([0, 1, 2]),
                           ids=np.array(["a", "b", "c"]), manifest={"n": 3})
    s = Store(tmp_path)
    s.put("o" * 32, rec)
    f = s.record_dir("o" * 32) / "samples.parquet"
    data = f.read_bytes()
    f.unlink()
    f.write_bytes(data)  # no longer a link: a store of the old layout
    shutil.rmtree(tmp_path / "samples")
    got = Store(tmp_path).get("o" * 32, on_corrupt="raise")
    assert np.array_equal(got.logits, rec.logits) and list(got.ids) == ["a", "b", "c"]


def test_a_damaged_shared_table_is_replaced_not_reused(tmp_path):
    """Truncating one record's samples.parquet damages the shared file (same inode): the
    record is refused, and the next put writes a new shared file instead of linking the bad."""
    import warnings

    from clipsafety.records import PredictionRecord
    from clipsafety.store import Store

    rec = PredictionRecord(logits=np.eye(3, 4, dtype=np.float32), targets=np.array([0, 1, 2]),
                           ids=np.array(["a", "b", "c"]), manifest={"n": 3})
    s = Store(tmp_path)
    s.put("a" * 32, rec)
    f = s.record_dir("a" * 32) / "samples.parquet"
    f.write_bytes(f.read_bytes()[:10])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert s.get("a" * 32) is None
    s.put("b" * 32, rec)
    assert list(s.get("b" * 32, on_corrupt="raise").ids) == ["a", "b", "c"]


# ------------------------------------------------------------------ 3. decoded tensors
def _preprocessings():
    """A timm and an open_clip eval transform (bicubic resize, crop, each its normalisation)."""
    import open_clip
    import timm.data

    timm_t = timm.data.create_transform(input_size=(3, 32, 32), crop_pct=0.875,
                                        interpolation="bicubic")
    clip_t = open_clip.image_transform(32, is_train=False)
    return {"timm": timm_t, "openclip": clip_t}


@pytest.mark.parametrize("which", ["timm", "openclip"])
def test_cached_tensors_equal_the_uncached_transform_exactly(tmp_path, which):
    from clipsafety.datasets import get_dataset
    from clipsafety.datasets.tensor_cache import STATS, TensorCache

    folder = make_wnid_dataset(tmp_path, "wnid", [1, 2, 3], per_class=3)
    (folder.parent / "wnid" / sorted(os.listdir(folder))[0] / "broken.jpg").write_bytes(b"no")
    spec = get_dataset(f"folder:{folder}")
    t = _preprocessings()[which]
    before = STATS["decoded"]
    cache = TensorCache(spec, t, root=tmp_path / "tensors").open()
    assert STATS["decoded"] - before == len(spec) - 1  # every readable image, once
    seen = 0
    for x, y, idx, ids, bad in cache.batches(np.arange(len(spec)), batch_size=4):
        for j, i in enumerate(idx.tolist()):
            img, target, sid = spec[i]
            ref = t(img)
            assert x[j].dtype == ref.dtype and torch.equal(x[j], ref), (which, sid)
            assert int(y[j]) == target and ids[j] == sid
            seen += 1
        for b in bad:
            assert "broken.jpg" in b["id"] and b["reason"]
    assert seen == len(spec) - 1


def test_a_second_model_with_the_same_preprocessing_decodes_nothing(tmp_path, monkeypatch):
    """Two timm models with one preprocessing: the second decodes nothing; both models'
    logits equal runs without the cache; another preprocessing (size) gets another cache."""
    from clipsafety.datasets.tensor_cache import STATS
    from clipsafety.infer import predict

    monkeypatch.setenv("CLIPSAFETY_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CLIPSAFETY_TENSOR_CACHE", raising=False)
    folder = make_wnid_dataset(tmp_path, "wnid", [1, 2], per_class=3)
    ds = f"folder:{folder}"
    kw = dict(image_size=32, progress=False)
    d0 = STATS["decoded"]
    a = predict("timm:resnet18@random", ds, store=tmp_path / "s", **kw)
    d1 = STATS["decoded"]
    b = predict("timm:resnet34@random", ds, store=tmp_path / "s", **kw)
    d2 = STATS["decoded"]
    assert d1 - d0 == 6 and d2 == d1  # the second model decoded nothing
    for mid, rec in (("timm:resnet18@random", a), ("timm:resnet34@random", b)):
        ref = predict(mid, ds, store=tmp_path / f"ref-{mid[5:13]}", tensor_cache=False, **kw)
        assert np.array_equal(rec.logits, ref.logits) and list(rec.ids) == list(ref.ids)
        assert rec.manifest["key"] == ref.manifest["key"]
    predict("timm:resnet18@random", ds, store=tmp_path / "s2", image_size=40, progress=False)
    assert STATS["decoded"] - d2 == 6  # another resolution: decoded once more
    assert len(list((tmp_path / "cache" / "tensors").iterdir())) == 2


def test_a_transform_the_cache_cannot_identify_is_not_cached(tmp_path):
    from clipsafety.datasets import get_dataset
    from clipsafety.datasets.tensor_cache import for_model, transform_description
    from torchvision import transforms as T

    spec = get_dataset(f"folder:{make_wnid_dataset(tmp_path, 'wnid', [1], per_class=1)}")
    assert for_model(spec, lambda img: img) is None
    assert transform_description(T.Compose([T.Lambda(lambda x: x)])) is None
    a = transform_description(T.Compose([T.ToTensor(), T.Normalize([0.5] * 3, [0.25] * 3)]))
    b = transform_description(T.Compose([T.ToTensor(), T.Normalize([0.5000001] * 3, [0.25] * 3)]))
    assert a is not None and a != b  # the normalisation at full precision
    assert Path(tmp_path).exists()
