"""predict(): batched inference into the store, with subsets, skips, misses and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import clipsafety
import numpy as np
import pytest
import torch
from clipsafety import datasets as D
from clipsafety.infer import normalize_batch_transform, predict
from clipsafety.store import Store
from fixtures_real import (
    make_bad_images,
    make_cue_conflict,
    make_imagenet_val,
    make_objectnet,
    make_wnid_dataset,
    timm_subset,
)

torch.set_num_threads(2)
RESNET = "timm:resnet18@random"


@pytest.fixture(scope="module")
def resnet():
    return clipsafety.load(RESNET, image_size=32)


@pytest.fixture(scope="module")
def clip():
    return clipsafety.load("openclip:ViT-B-32@random", image_size=32)


def _reference_logits(loaded, spec, indices=None):
    """Plain per-image forward, independent of predict's batching and store."""
    idx = range(len(spec)) if indices is None else indices
    x = torch.stack([loaded.transform(spec[i][0]) for i in idx])
    with torch.no_grad():
        return loaded.module(x).numpy()


def test_round_trip_with_subset_and_meta(tmp_path, resnet):
    sub = timm_subset("r")
    make_wnid_dataset(tmp_path / "data", "imagenet-r", [sub[0], sub[1]], per_class=2)
    spec = D.get_dataset("imagenet:r", data_root=tmp_path / "data")
    rec = predict(resnet, spec, store=tmp_path / "store", progress=False, batch_size=3)
    assert rec.logits.shape == (4, 1000) and rec.logits.dtype == np.float32
    np.testing.assert_allclose(rec.logits, _reference_logits(resnet, spec), rtol=1e-4, atol=1e-4)
    assert rec.targets.tolist() == spec.targets.tolist() and list(rec.ids) == spec.ids
    assert rec.label_subset == sub and rec.manifest["label_space"] == "imagenet-1k"
    assert rec.manifest["model"]["weights"] == {"source": "random", "seed": 0}
    again = predict(resnet, spec, store=tmp_path / "store", progress=False)
    np.testing.assert_array_equal(again.logits, rec.logits)
    assert len(Store(tmp_path / "store").keys()) == 1
    assert not list((tmp_path / "store").glob("partial/*"))  # shards removed after success


def test_imagenet_x_meta_travels_with_the_record(tmp_path, resnet):
    make_imagenet_val(tmp_path / "data", classes=(0, 1), per_class=2)
    rec = predict(resnet, "imagenet:val", data_root=tmp_path / "data", store=tmp_path / "s",
                  progress=False)
    from imagenet_x.utils import load_annotations

    ref = load_annotations("multi", filter_prototypes=False).set_index("file_name")
    names = [i.split("/")[-1] for i in rec.ids]
    assert rec.meta["pose"].tolist() == ref.loc[names, "pose"].tolist()


def test_objectnet_targets_in_their_own_space(tmp_path, resnet):
    make_objectnet(tmp_path / "data")
    rec = predict(resnet, "objectnet", data_root=tmp_path / "data", store=tmp_path / "s",
                  progress=False)
    assert rec.manifest["target_space"] == "objectnet-2"
    assert rec.manifest["label_map"] == [[409, 530], [954]]
    assert rec.label_subset == [409, 530, 954] and rec.targets.tolist() == [0, 0, 1, 1]


def test_corrupt_images_are_skipped_and_listed(tmp_path, resnet):
    kinds = make_bad_images(tmp_path / "mine" / "n01440764")
    rec = predict(resnet, f"folder:{tmp_path / 'mine'}", store=tmp_path / "s", progress=False)
    skipped = {Path(s["id"]).name for s in rec.manifest["skipped"]}
    assert skipped == {k for k, v in kinds.items() if v == "skip"}
    assert sorted(Path(i).name for i in rec.ids) == sorted(k for k, v in kinds.items() if v == "ok")
    assert rec.manifest["n_skipped"] == 2 and len(rec) == 5
    assert all("cannot decode" in s["reason"] for s in rec.manifest["skipped"])


def test_template_change_is_a_miss_and_same_templates_a_hit(tmp_path, clip):
    from clipsafety.models import with_head

    make_cue_conflict(tmp_path / "data")
    kw = {"data_root": tmp_path / "data", "store": tmp_path / "s", "progress": False}
    names = ["airplane", "cat", "truck"]
    a = predict(with_head(clip, names, ["a photo of a {}."]), "cue-conflict", **kw)
    assert a.logits.shape == (5, 3) and a.manifest["logit_policy"]["kind"] == "clip"
    assert a.manifest["target_space"] == "cue-conflict-16" != a.manifest["label_space"]
    scale = a.manifest["logit_policy"]["scale"]
    assert scale == pytest.approx(1 / 0.07, rel=1e-5)  # open_clip's init: exp(log(1/0.07))
    b = predict(with_head(clip, names, ["a drawing of a {}."]), "cue-conflict", **kw)
    assert b.manifest["key"] != a.manifest["key"] and not np.allclose(a.logits, b.logits)
    c = predict(with_head(clip, names, "single"), "cue-conflict", **kw)  # same strings as `a`
    np.testing.assert_allclose(c.logits, a.logits, rtol=1e-5, atol=1e-5)
    a2 = predict(with_head(clip, names, ["a photo of a {}."]), "cue-conflict", **kw)
    assert a2.cache_hit and a2.manifest["key"] == a.manifest["key"]
    np.testing.assert_array_equal(a2.logits, a.logits)
    # a fixed x100 scale is another policy, hence another record, with logits = 100 * cosine
    d = predict(with_head(clip, names, ["a photo of a {}."], logit_scale=100.0), "cue-conflict", **kw)
    assert d.manifest["key"] != a.manifest["key"]
    np.testing.assert_allclose(d.logits, a.logits * 100.0 / scale, rtol=1e-4, atol=1e-4)
    assert len(Store(tmp_path / "s").keys()) == 4


def test_clip_id_through_predict_with_named_label_space(tmp_path):
    make_cue_conflict(tmp_path / "data")
    rec = predict("openclip:ViT-B-32@random", "cue-conflict", data_root=tmp_path / "data",
                  store=tmp_path / "s", progress=False, image_size=32, classnames="dataset",
                  templates="single")
    assert rec.manifest["label_space"] == rec.manifest["target_space"] == "cue-conflict-16"
    assert rec.logits.shape == (5, 16) and rec.manifest["model"]["head"]["templates"] == "single"


class _ArraySpec(D.DatasetSpec):
    """An in-memory spec with the optional fast path (like the synthetic world's)."""

    def __init__(self, n=10, size=32):
        from PIL import Image

        rng = np.random.default_rng(0)
        self.X = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        self.y = rng.integers(0, 1000, n)
        self.dataset_id, self.label_space, self.classes = "arrays:test", "imagenet-1k", []
        self._img = lambda i: Image.fromarray(self.X[i])

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self._img(i), int(self.y[i]), f"s{i}"

    def manifest(self):
        return {"dataset_id": self.dataset_id, "n": len(self)}

    def arrays(self):
        return self.X, self.y, [f"s{i}" for i in range(len(self))]


def test_fast_array_path_matches_pil_path(tmp_path):
    from dataclasses import replace

    import torchvision.transforms as T

    m = clipsafety.load(RESNET)
    mean, std = m.extra["data_config"]["mean"], m.extra["data_config"]["std"]
    plain = replace(m, transform=T.Compose([T.ToTensor(), T.Normalize(mean, std)]),
                    manifest={**m.manifest, "preprocessing": "totensor-normalize"})
    fast = replace(plain, extra={"batch_transform": normalize_batch_transform(mean, std)})
    spec = _ArraySpec()
    a = predict(plain, spec, store=tmp_path / "a", progress=False, batch_size=4)
    b = predict(fast, spec, store=tmp_path / "b", progress=False, batch_size=4)
    np.testing.assert_allclose(a.logits, b.logits, rtol=1e-5, atol=1e-5)
    assert list(a.ids) == list(b.ids) and a.targets.tolist() == b.targets.tolist()


KILL_SCRIPT = textwrap.dedent("""
    import sys, time, torch
    torch.set_num_threads(1)
    import clipsafety
    from clipsafety import datasets as D
    from clipsafety.infer import predict

    class Slow(D.DatasetSpec):
        def __init__(self, spec):
            self.s = spec
            for a in ("dataset_id", "label_space", "label_subset", "classes", "ids"):
                setattr(self, a, getattr(spec, a))
        def __len__(self): return len(self.s)
        def __getitem__(self, i):
            time.sleep(0.15)
            return self.s[i]
        def manifest(self): return self.s.manifest()

    spec = Slow(D.get_dataset(sys.argv[1]))
    predict("timm:resnet18@random", spec, store=sys.argv[2], image_size=32, batch_size=2,
            shard_size=2, progress=False)
    print("FINISHED")
""")


@pytest.mark.slow
def test_resume_after_kill_9(tmp_path):
    make_wnid_dataset(tmp_path / "data", "mine", [1, 2, 3, 4, 5], per_class=4)  # 20 images
    ds = f"folder:{tmp_path / 'data' / 'mine'}"
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    store = tmp_path / "store"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, str(script), ds, str(store)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while time.time() < deadline and len(list(store.glob("partial/*/shard-*.safetensors"))) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    shards = list(store.glob("partial/*/shard-*.safetensors"))
    assert 2 <= len(shards) < 10 and not Store(store).keys()  # killed mid-run, no record yet
    rec = predict(RESNET, ds, store=store, image_size=32, batch_size=2, shard_size=2,
                  progress=False)
    assert rec.manifest["resumed_samples"] >= 4 and len(rec) == 20
    ref = predict(RESNET, ds, store=tmp_path / "fresh", image_size=32, progress=False)
    np.testing.assert_allclose(rec.logits, ref.logits, rtol=1e-4, atol=1e-4)
    assert list(rec.ids) == list(ref.ids) and rec.targets.tolist() == ref.targets.tolist()
    assert rec.manifest["key"] == ref.manifest["key"]


@pytest.mark.slow
def test_zoo_model_on_synthetic_world_takes_the_array_path(tmp_path):
    """Integration with the zoo and synthetic-world code: same logits as the zoo's own batched
    helper, without PIL (arrays() + the model's array transform)."""
    zoo = pytest.importorskip("clipsafety.zoo")
    synth = pytest.importorskip("clipsafety.synth")
    from clipsafety.catalog import list_models

    try:
        zid = list_models("zoo")[0]
        clipsafety.load(zid)
    except (FileNotFoundError, KeyError, IndexError) as e:
        pytest.skip(f"no zoo model on disk yet ({e})")
    spec = synth.get_dataset("id-test")
    rec = predict(zid, spec, store=tmp_path / "s", progress=False)
    ref = zoo.predict_arrays(clipsafety.load(zid), spec.arrays()[0])
    np.testing.assert_allclose(rec.logits, ref, rtol=1e-4, atol=1e-4)
    assert rec.manifest["label_space"] == "synth" and list(rec.ids) == list(spec.ids)


def test_a_run_whose_partial_folder_is_removed_by_a_twin_returns_the_twins_record(tmp_path,
                                                                                  monkeypatch):
    """Two runs of one (model, dataset) at once: the first to finish stores the record and
    removes the pair's partial folder while the other is still writing shards. The other
    must get that record, not '[Errno 2] No such file or directory' (a cold `make book` with
    two chapters at once died of it), and leave no partial folder behind."""
    from clipsafety import store as store_mod

    store = tmp_path / "store"
    model, data = "zoo:clip-resnet-wit-10k", "synth:id-test"
    real_write = store_mod.PartialRun.write_shard
    calls = {"n": 0, "twin": None}

    def write_then_twin_finishes(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 2 and calls["twin"] is None:  # the twin runs start to finish now
            monkeypatch.setattr(store_mod.PartialRun, "write_shard", real_write)
            calls["twin"] = predict(model, data, store=store, progress=False, recompute=False,
                                    batch_size=512, shard_size=512)
            monkeypatch.setattr(store_mod.PartialRun, "write_shard", write_then_twin_finishes)
            assert not any((store / "partial").iterdir())  # the twin cleaned up
        return real_write(self, *a, **kw)

    monkeypatch.setattr(store_mod.PartialRun, "write_shard", write_then_twin_finishes)
    rec = predict(model, data, store=store, progress=False, batch_size=256, shard_size=256)
    twin = calls["twin"]
    assert twin is not None and calls["n"] >= 3
    np.testing.assert_array_equal(rec.logits, twin.logits)
    np.testing.assert_array_equal(rec.ids, twin.ids)
    assert list((store / "partial").iterdir()) == []


def test_tied_and_non_finite_logits_are_counted_or_refused():
    """Ties are counted (argmax credits the first tied column); a record where most rows tie,
    or any row is NaN/inf, is refused as a broken model."""
    import warnings

    from clipsafety.infer import BrokenModel, check_logits, tied_rows

    x = np.array([[1.0, 2.0, 0.0], [3.0, 3.0, 1.0], [0.0, 0.0, 0.0], [5.0, 1.0, 5.0]])
    assert tied_rows(x) == 3 and tied_rows(x[:1]) == 0 and tied_rows(np.zeros((0, 3))) == 0
    with pytest.raises(BrokenModel, match="3 of 4 rows have their top logits tied"):
        check_logits(x, "m on d")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert check_logits(x[[0, 0, 0, 1]], "m on d") == 1
    assert any("1 of 4 rows have tied top logits" in str(w.message) for w in caught)
    with pytest.raises(BrokenModel, match="1 of 2 rows have NaN or infinite logits"):
        check_logits(np.array([[1.0, np.nan], [1.0, 2.0]]), "m on d")


def test_a_model_with_constant_outputs_is_refused_and_nothing_is_stored(tmp_path):
    """All-zero logits (what integer or zeroed weights give) used to be stored and scored as
    top-1 = the share of class 0; now predict refuses, and no record or shard is kept."""
    import dataclasses

    import clipsafety
    import torch
    from clipsafety.infer import BrokenModel

    real = clipsafety.load("zoo:sup-resnet-labelled-10k")

    class Zeros(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(len(x), len(real.classes))

    broken = dataclasses.replace(real, module=Zeros())
    store = tmp_path / "store"
    with pytest.raises(BrokenModel, match="top logits tied"):
        predict(broken, "synth:id-test", store=store, progress=False)
    records = store / "records"
    assert not records.exists() or not any(records.iterdir())
    assert not any((store / "partial").iterdir())


def test_an_in_memory_set_is_transformed_once_for_the_models_that_share_its_transform(tmp_path, monkeypatch):
    """The zoo's models share one array transform: predict transforms a synthetic set once per
    process and reads views of it; the logits are those of the batch-by-batch path, bit for
    bit, and a set too large for the cache is transformed batch by batch."""
    from clipsafety import infer
    from clipsafety.datasets import get_dataset
    from clipsafety.zoo import core

    spec = get_dataset("synth:id-test")
    calls = []
    real = core.array_transform

    def counted(x):
        calls.append(len(x))
        return real(x)

    counted.elementwise = real.elementwise
    monkeypatch.setattr(core, "array_transform", counted)
    infer._ARRAY_CACHE.clear()
    a = [infer.predict(f"zoo:{m}", spec, store=tmp_path / m, progress=False, batch_size=128)
         for m in ("clip-convnext-wit-10k", "sup-vit-labelled-10k")]
    n = len(a[0].logits)
    assert calls == [n]  # once, for both models
    monkeypatch.setattr(infer, "ARRAY_CACHE_BYTES", 0)
    calls.clear()
    b = infer.predict("zoo:clip-convnext-wit-10k", spec, store=tmp_path / "uncached",
                      progress=False, batch_size=128)
    assert len(calls) == -(-n // 128) and sum(calls) == n  # batch by batch
    assert np.array_equal(a[0].logits, b.logits)
    # a transform not marked elementwise (an image's output may depend on its batch) is never
    # applied to the whole set at once
    monkeypatch.undo()
    counted.elementwise = False
    monkeypatch.setattr(core, "array_transform", counted)
    calls.clear()
    infer._ARRAY_CACHE.clear()
    infer.predict("zoo:clip-convnext-wit-10k", spec, store=tmp_path / "batchwise", progress=False,
                  batch_size=128)
    assert len(calls) == -(-n // 128)
