"""Curation filters over the raw pool, checked against independent constructions."""

import ast
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from clipsafety.synth import CATEGORIES, get_dataset, raw_pool
from clipsafety.synth import curation as C


@pytest.fixture(scope="module")
def pool():
    return get_dataset("train-raw-100k", n=2000)


def test_deduplicate_keeps_one_of_each_distinct_image(pool):
    imgs = pool.images()
    digests = [hashlib.sha256(x.tobytes()).hexdigest() for x in imgs]
    cur = C.deduplicate(pool)
    kept = [digests[i] for i in cur.indices]
    # independent reference: hashing the rendered images
    assert len(set(kept)) == len(kept) == len(set(digests))
    # the first occurrence of every image is the one kept
    first = {}
    for i, d in enumerate(digests):
        first.setdefault(d, i)
    assert sorted(first.values()) == cur.indices.tolist()
    assert cur.manifest["n_out"] == len(cur) < pool.n
    # on a restricted start, duplicates whose original was left out are kept
    some = np.flatnonzero(pool.attributes()["duplicate_of"].to_numpy() >= 0)[:5]
    sub = C.deduplicate(pool, start=some)
    expect = {}
    for i in some:
        expect.setdefault(first[digests[i]], i)
    assert sub.indices.tolist() == sorted(expect.values())


def test_balance_classes_by_caption_and_label(pool):
    caps = pool.captions()
    cur = C.balance_classes(pool, seed=3)
    cls = C.caption_classes([caps[i] for i in cur.indices])
    counts = np.bincount(cls, minlength=10)
    assert (cls >= 0).all() and (counts == counts[0]).all() and counts[0] > 0
    # every kept caption names its class; a hand-written caption parses as expected
    assert all(CATEGORIES[c] in caps[i].split() for c, i in zip(cls, cur.indices))
    assert C.caption_classes(["free star vector", "image", "a photo of a moon."]).tolist() == [3, -1, 7]
    lab = C.balance_classes(pool, per_class=50, by="label", seed=3)
    assert np.bincount(pool.targets[lab.indices], minlength=10).tolist() == [50] * 10
    assert np.array_equal(lab.indices, C.balance_classes(pool, per_class=50, by="label", seed=3).indices)
    with pytest.raises(ValueError, match="caption"):
        C.balance_classes(pool, by="colour")


def test_random_subset_and_match_size(pool):
    a = C.random_subset(pool, 300, seed=1)
    assert len(np.unique(a.indices)) == 300 and np.all(np.diff(a.indices) > 0)
    assert np.array_equal(a.indices, C.random_subset(pool, 300, seed=1).indices)
    assert not np.array_equal(a.indices, C.random_subset(pool, 300, seed=2).indices)
    d = C.deduplicate(pool)
    m = C.match_size(d, 300, seed=0, pool=pool)
    assert len(m) == 300 and set(m.indices) <= set(d.indices)
    assert m.manifest["filter"] == "deduplicate" and m.manifest["matched_size"] == 300
    with pytest.raises(ValueError, match="size"):
        C.random_subset(pool, pool.n + 1)


def test_filter_alignment_keeps_top_scores(pool):
    rng = np.random.default_rng(0)
    scores = rng.random(pool.n)
    cur = C.filter_alignment(pool, model="zoo:none", keep_fraction=0.25, scores=scores)
    ref = np.sort(np.argsort(-scores)[:500])
    assert np.array_equal(cur.indices, ref)
    assert cur.manifest["threshold"] == pytest.approx(np.sort(scores)[-500])
    with pytest.raises(ValueError, match="one value per pool row"):
        C.filter_alignment(pool, model="zoo:none", scores=scores[:10])


def test_alignment_scores_match_manual_cosine(pool, tmp_path, monkeypatch):
    """Scores of a (randomly initialised, saved) CLIP equal sklearn's cosine of its embeddings."""
    import json

    from clipsafety.synth import VOCAB, WordTokenizer
    from clipsafety.zoo import _read, alignment_scorer, array_transform
    from clipsafety.zoo.arch import clip_config
    from clipsafety.zoo.train import build_clip_seeded
    from safetensors.torch import save_file
    from sklearn.metrics.pairwise import cosine_similarity

    torch.set_num_threads(1)
    cfg = clip_config("synth_convnext_xs", vocab_size=len(VOCAB))
    clip = build_clip_seeded(cfg, 0).eval()
    (tmp_path / "weights").mkdir()
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()},
              str(tmp_path / "weights" / "tiny.safetensors"),
              metadata={"clipsafety": json.dumps({"kind": "clip", "arch": "synth_convnext_xs",
                                                  "clip_config": cfg})})
    monkeypatch.setenv("CLIPSAFETY_ZOO", str(tmp_path))
    _read.cache_clear()
    small = get_dataset("train-raw-100k", n=64)
    scorer = alignment_scorer("zoo:tiny")
    s = C.alignment_scores(small, scorer, batch_size=20, progress=False)
    with torch.no_grad():
        fi = clip.encode_image(array_transform(small.images())).numpy()
        ft = clip.encode_text(WordTokenizer(16)(small.captions())).numpy()
    np.testing.assert_allclose(s, np.diag(cosine_similarity(fi, ft)), atol=1e-5)
    # the filter scores with the scorer and records its model and weights hash
    cur = C.filter_alignment(small, scorer, keep_fraction=0.25)
    assert np.array_equal(cur.indices, np.sort(np.argsort(-s, kind="stable")[:16]))
    assert cur.manifest["model"] == "zoo:tiny"
    assert cur.manifest["weights_sha256"] == _read("tiny")[2] == scorer.weights_sha256
    _read.cache_clear()
    with pytest.raises(KeyError, match="not found"):
        alignment_scorer("zoo:missing")


def test_alignment_takes_any_scorer_callable_and_rejects_a_model_name(pool):
    small = get_dataset("train-raw-100k", n=50)
    calls = []

    def by_red(images, captions):  # mean red channel, a stand-in for a CLIP
        calls.append(len(images))
        assert len(captions) == len(images)
        return images[..., 0].mean(axis=(1, 2)) / 255.0

    s = C.alignment_scores(small, by_red, batch_size=20, progress=False)
    assert calls == [20, 20, 10]
    np.testing.assert_allclose(s, small.images()[..., 0].mean(axis=(1, 2)) / 255.0, rtol=1e-6)
    cur = C.filter_alignment(small, by_red, keep_fraction=0.1)
    assert cur.indices.tolist() == sorted(np.argsort(-s, kind="stable")[:5].tolist())
    assert cur.manifest["model"] is None and cur.manifest["weights_sha256"] is None
    with pytest.raises(TypeError, match="alignment_scorer"):
        C.alignment_scores(small, "zoo:clip-convnext-wit-100k")
    with pytest.raises(ValueError, match="scorer="):
        C.filter_alignment(small)


def test_curated_dataset_ids(pool):
    ds = get_dataset("synth:train-raw-100k@dedup+balanced-label", n=2000)
    ref = C.balance_classes(pool, by="label", start=C.deduplicate(pool))
    assert ds.dataset_id == "synth:train-raw-100k@dedup+balanced-label" and len(ds) == len(ref)
    assert list(ds.ids) == [f"train-raw-100k/{i}" for i in ref.indices]
    x, y, ids = ds.arrays()
    np.testing.assert_array_equal(x, pool.images()[ref.indices])
    np.testing.assert_array_equal(y, pool.targets[ref.indices])
    caps = pool.captions()
    assert ds.captions() == [caps[i] for i in ref.indices]
    assert ds[3][2] == ids[3] and ds.manifest()["curation"]["spec"] == "dedup+balanced-label"
    r = get_dataset("train-raw-100k@random-100", n=2000)
    assert len(r) == 100 and set(r.ids) <= set(pool.ids)
    with pytest.raises(ValueError, match="unknown curation filter"):
        get_dataset("train-raw-100k@sharpest", n=2000)


def test_filters_take_datasets_and_never_import_the_dataset_module():
    """The dataset module imports the filters (ids ``<pool>@<filters>``), never the reverse:
    curation.py imports neither clipsafety.synth.datasets nor the package, lazily or not."""
    imported = set()
    for node in ast.walk(ast.parse(Path(C.__file__).read_text())):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert not {"clipsafety.synth", "clipsafety.synth.datasets"} & imported, imported
    with pytest.raises(TypeError, match="raw_pool"):
        C.deduplicate("train-raw-100k")
    with pytest.raises(TypeError, match="dataset"):
        C.curated_arrays(C.Curated(np.arange(3)), None)
    pool = raw_pool(200)
    assert pool is get_dataset("train-raw-100k", n=200)
    ds = get_dataset("train-raw-100k@dedup", n=200)
    assert ds.pool is pool and np.array_equal(ds.curated.indices, C.deduplicate(pool).indices)
    with pytest.raises(ValueError, match="pool size"):
        raw_pool(50)
