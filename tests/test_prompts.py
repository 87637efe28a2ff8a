"""Test-time prompts: the image-feature cache, CoOp / C-TPT, the study's metrics against
independent references, bad input, published values against the raw file, and the chapter."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_chapters_factors_shape import MIRROR, ROOT, _charts, run_chapter  # noqa: E402

CLIP = "zoo:clip-resnet-wit-10k"
needs_zoo = pytest.mark.skipif(not (ROOT / "data" / "zoo" / "catalog.csv").is_file(),
                               reason="zoo not built")


@pytest.fixture(scope="module")
def towers():
    from clipsafety import features

    return features.clip_towers(CLIP)


@needs_zoo
def test_cached_features_give_the_logits_of_predict(towers, tmp_path):
    from clipsafety import features, infer
    from clipsafety.synth import TEMPLATES

    rec = features.image_features(towers, "synth:ood-noise", store=tmp_path)
    assert not rec.cache_hit and rec.features.shape[1] == 64
    np.testing.assert_allclose(np.linalg.norm(rec.features, axis=1), 1.0, atol=1e-5)
    again = features.image_features(towers, "synth:ood-noise", store=tmp_path)
    assert again.cache_hit and np.array_equal(again.features, rec.features)
    assert len(list((tmp_path / "features").glob("*.safetensors"))) == 1
    for name in ("simple", "single"):
        W = features.zero_shot_weights(towers, TEMPLATES[name])
        ref = infer.predict(CLIP, "synth:ood-noise", templates=name, store=tmp_path, progress=False)
        assert np.array_equal(ref.ids, rec.ids)
        np.testing.assert_allclose(features.logits(rec.features, W, rec.scale), ref.logits,
                                   rtol=1e-5, atol=1e-4)


@needs_zoo
def test_a_subset_head_from_the_pool_embeddings_is_the_builders_head(towers):
    from clipsafety import features
    from clipsafety.studies import prompts as study

    pool = study.template_set("openai")
    E = features.template_embeddings(towers, pool)
    assert E.shape == (len(pool), 10, 64)
    for s in study.random_subsets(pool, [1, 7, 15], 2, seed=4):
        torch.testing.assert_close(features.head_of(E, s["index"]),
                                   features.zero_shot_weights(towers, s["templates"]),
                                   rtol=1e-5, atol=1e-6)


@needs_zoo
def test_a_damaged_feature_file_is_recomputed(towers, tmp_path):
    from clipsafety import features

    rec = features.image_features(towers, "synth:ood-noise", store=tmp_path)
    path = next((tmp_path / "features").glob("*.safetensors"))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(UserWarning, match="does not load"):
        again = features.image_features(towers, "synth:ood-noise", store=tmp_path)
    assert not again.cache_hit and np.array_equal(again.features, rec.features)


@needs_zoo
def test_coop_at_initialisation_is_the_single_template_head(towers):
    from clipsafety import zoo
    from clipsafety.prompt_tuning import PromptLearner

    learner = PromptLearner(towers.clip, towers.tokenizer, towers.classes, init="a photo of a")
    assert learner.n_ctx == 4
    W_ref = zoo.zero_shot_head(towers.clip, "single")  # open_clip's builder, the zoo's own path
    torch.testing.assert_close(learner.weights(), W_ref.float(), rtol=1e-5, atol=1e-6)
    # random init: a different head, same shape, deterministic for the seed
    r1 = PromptLearner(towers.clip, towers.tokenizer, towers.classes, init=None, n_ctx=4, seed=3)
    r2 = PromptLearner(towers.clip, towers.tokenizer, towers.classes, init=None, n_ctx=4, seed=3)
    assert torch.equal(r1.weights(), r2.weights()) and not torch.allclose(r1.weights(), W_ref)


def test_atfd_is_the_mean_distance_to_the_centroid():
    from clipsafety.prompt_tuning import atfd

    rng = np.random.default_rng(0)
    T = rng.normal(size=(10, 64))
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    want = np.mean([np.sqrt(((t - T.mean(0)) ** 2).sum()) for t in T])
    assert abs(float(atfd(torch.tensor(T))) - want) < 1e-12


@needs_zoo
def test_training_is_deterministic_and_lowers_the_loss(towers, tmp_path):
    from clipsafety import features
    from clipsafety.prompt_tuning import train_prompts

    rec = features.image_features(towers, "synth:id-test", store=tmp_path)
    kw = dict(steps=40, lr=5e-3, seed=1, log_every=39)
    a = train_prompts(towers.clip, towers.tokenizer, towers.classes, rec.features, rec.targets,
                      towers.scale, **kw)
    b = train_prompts(towers.clip, towers.tokenizer, towers.classes, rec.features, rec.targets,
                      towers.scale, **kw)
    assert torch.equal(a.learner.ctx, b.learner.ctx)
    assert a.history[-1]["ce"] < a.history[0]["ce"]
    c = train_prompts(towers.clip, towers.tokenizer, towers.classes, rec.features, rec.targets,
                      towers.scale, lam=1.0, **kw)
    assert c.history[-1]["atfd"] > a.history[-1]["atfd"]  # the term does what it says
    # the text tower stays frozen
    assert not any(p.requires_grad for p in towers.clip.parameters())


def _softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _ece(conf, correct, n_bins=15):
    edges = np.linspace(0, 1, n_bins + 1)
    out = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            out += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return out


@needs_zoo
def test_evaluate_head_against_numpy_and_sklearn(towers, tmp_path):
    from clipsafety import features, metrics
    from clipsafety.studies import prompts as study
    from clipsafety.synth import TEMPLATES
    from sklearn.metrics import roc_auc_score

    idr = features.image_features(towers, "synth:id-test", store=tmp_path)
    sh = features.image_features(towers, "synth:shift-rendition", store=tmp_path)
    ood = features.image_features(towers, "synth:ood-noise", store=tmp_path)
    W = features.zero_shot_weights(towers, TEMPLATES["simple"]).numpy()
    split = metrics.stratified_split(idr.targets, 0.5, 0)
    row = study.evaluate_head(W, idr, [sh], [ood], split=split)
    L = idr.scale * idr.features.astype(np.float64) @ W
    fit, ev = split
    assert abs(row["acc_id"] - (L.argmax(1) == idr.targets).mean()) < 1e-12
    for T, key in ((1.0, "ece_before"), (row["T"], "ece_after")):
        p = _softmax(L[ev] / T)
        assert abs(row[key] - _ece(p.max(1), p.argmax(1) == idr.targets[ev])) < 1e-4
        nll = -np.log(p[np.arange(len(ev)), idr.targets[ev]]).mean()
        assert abs(row[key.replace("ece", "nll")] - nll) < 1e-4
    # T minimises the fit half's NLL
    nll_fit = lambda T: -np.log(_softmax(L[fit] / T)[np.arange(len(fit)), idr.targets[fit]]).mean()
    assert nll_fit(row["T"]) <= min(nll_fit(row["T"] * 1.05), nll_fit(row["T"] / 1.05))
    # the shift is scored on its 8-class label subset
    sub = np.asarray(sh.label_subset)
    Ls = sh.features @ W
    assert abs(row["acc_shift"] - (sub[Ls[:, sub].argmax(1)] == sh.targets).mean()) < 1e-12
    mcm = lambda F: _softmax(F @ W).max(1)
    auc = roc_auc_score(np.r_[np.ones(len(idr.targets)), np.zeros(len(ood.targets))],
                        np.r_[mcm(idr.features), mcm(ood.features)])
    assert abs(row["auroc"] - auc) < 1e-5  # float32 features: near-ties


def test_effective_robustness_against_a_logit_fit():
    import pandas as pd
    from clipsafety.studies import prompts as study
    from scipy.special import logit

    std = pd.DataFrame({"acc_id": [0.5, 0.6, 0.7], "acc_shift": [0.3, 0.35, 0.5]})
    tab = pd.DataFrame({"acc_id": [0.55, 0.65], "acc_shift": [0.4, 0.4]})
    b, a = np.polyfit(logit(std.acc_id), logit(std.acc_shift), 1)
    pred = 1 / (1 + np.exp(-(a + b * logit(tab.acc_id))))
    got = study.with_effective_robustness(tab, std)["eff_rob"].to_numpy()
    np.testing.assert_allclose(got, tab.acc_shift - pred, atol=1e-10)


def test_template_sets_subsets_and_vocabulary():
    from clipsafety.studies import prompts as study
    from clipsafety.synth import TEMPLATES

    for name, ts in study.KINDS.items():
        assert study.check_vocabulary(ts) == [], name
        assert all(t.count("{}") == 1 for t in ts)
    assert study.check_vocabulary(["a fluffy {}."]) == ["fluffy"]
    sets = study.resolve_template_sets("openai,simple,single")
    assert [len(v) for v in sets.values()] == [len(TEMPLATES["default"]), 7, 1]
    real = study.resolve_template_sets(["openai", "simple"], real=True)
    assert [len(v) for v in real.values()] == [80, 7]
    s1 = study.random_subsets(TEMPLATES["default"], [1, 7, 30], 5, seed=2)
    assert s1 == study.random_subsets(TEMPLATES["default"], [1, 7, 30], 5, seed=2)
    assert [s["size"] for s in s1] == [1] * 5 + [7] * 5 + [30]
    assert all(len(set(s["templates"])) == s["size"] for s in s1)
    with pytest.raises(ValueError, match="template_sets.*'fancy'"):
        study.resolve_template_sets(["openai", "fancy"])


@pytest.mark.skipif(not MIRROR.is_dir(), reason="no published-data mirror here")
def test_published_spread_against_the_raw_file():
    import os

    from clipsafety.studies import calibration
    from clipsafety.studies import prompts as study

    os.environ.setdefault("CLIPSAFETY_MIRROR", str(MIRROR))
    raw = json.loads((MIRROR / "Pikus16" / "CLIP_Calibration" / "dataset_eces.json").read_text())
    spread = study.prompt_ece_spread(calibration.published_prompt_eces()).set_index(["dataset", "model"])
    assert len(spread) == sum(len(v) for v in raw.values())
    for ds in raw:
        for name in list(raw[ds])[:3]:
            arch, tag = name.split(";", 1)
            v = np.asarray(raw[ds][name], float)
            r = spread.loc[(ds, f"openclip:{arch}@{tag}")]
            assert r.prompts == len(v) and abs(r.spread - (v.max() - v.min())) < 1e-12
            assert abs(r["median"] - np.median(v)) < 1e-12


@needs_zoo
def test_bad_input_is_refused_before_work():
    from clipsafety import book, features

    params = {"template_sets": ["openai", "fancy"], "budget": 99999,
              "models": ["zoo:sup-resnet-labelled-30k"]}
    with pytest.raises(book.ParameterError) as err:
        book.check_values("prompts", params)
    text = str(err.value)
    assert "'fancy'" in text and "descriptive" in text
    assert "budget" in text and "[0, 5000]" in text
    assert "zoo:sup-resnet-labelled-30k" in text and "holds no zero-shot CLIP" in text
    book.check_values("prompts", {"models": [CLIP, "zoo:sup-resnet-labelled-30k"], "budget": 0,
                                  "template_sets": "single"})
    with pytest.raises(features.NotAZeroShotCLIP, match="sup-resnet-labelled-30k.*classifier"):
        features.clip_towers("zoo:sup-resnet-labelled-30k")
    with pytest.raises(features.NotAZeroShotCLIP, match="timm:resnet18"):
        features.clip_towers("timm:resnet18@random")


@pytest.mark.full  # 86 s; the site build executes the chapter in make test
@pytest.mark.book
@needs_zoo
def test_chapter_at_a_tiny_budget_records_claims_with_verdicts(tmp_path, monkeypatch):
    from clipsafety.studies import prompts as study

    out = tmp_path / "outputs"
    monkeypatch.setenv("CLIPSAFETY_OUTPUTS", str(out))
    text = run_chapter("prompts", tmp_path, models=[CLIP, "zoo:clip-vit-laion-100k"],
                       tune_models=[CLIP, "zoo:clip-vit-laion-100k"], n_subsets=2,
                       subset_sizes=[1, 7], budget=10, n_boot=50)
    assert "**2 zero-shot CLIPs** (zoo)" in text and "Finding (prompt tuning" in text
    assert "Finding (random subsets" in text and "make chapter NAME=prompts" in text
    assert _charts(text) >= 3
    rec = json.loads((out / "prompts.json").read_text())
    live = {r["claim_id"]: r for r in rec["claims"] if r["source"] == "synthetic world + zoo"}
    assert set(live) == set(study.CLAIMS)
    assert all(r["verdict"] in ("reproduced", "not reproduced") for c, r in live.items()
               if c != "ctpt-atfd")
    # what C-TPT's loss maximises is built in, never counted as a finding
    assert live["ctpt-atfd"]["verdict"] == "built in"
    assert "built in: C-TPT's dispersion term maximises ATFD" in live["ctpt-atfd"]["evidence"]
    assert len(rec["tables"]["named"]) == 2 * 6 and len(rec["tables"]["tuned"]) == 2 * 2


@pytest.mark.slow
@pytest.mark.full  # 1000-class heads of a random ViT-B-32 on the CPU: over 9 min on the busy machine
@pytest.mark.book
def test_chapter_real_path_with_a_random_open_clip_model(tmp_path):
    import fixtures_real as F

    root = tmp_path / "data"
    F.make_imagenet_val(root, classes=(0, 1, 2, 3), per_class=3)
    text = run_chapter("prompts", tmp_path, models=["openclip:ViT-B-32@random"],
                       data_root=str(root), template_sets=["single", "generic"],
                       subset_sizes=[1], n_subsets=1, store=str(tmp_path / "store"),
                       device="cpu", batch_size=8, n_boot=20, published=False)
    assert "**1 zero-shot CLIPs** (real), ID set `imagenet:val`" in text
    assert "This run used real models" in text and "No prompt tuning in this run" in text
