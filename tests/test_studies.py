"""The studies' tables (factors, shape bias), the group summaries and the chapter run: tidy tables checked against independent references (csv module, scikit-learn,
published values, hand constructions)."""

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clipsafety import catalog, evidence, groups, models, summaries
from clipsafety import factors as factor_vocab
from clipsafety.studies import factors as FS
from clipsafety.studies import shape_bias as SS
from scipy.special import expit, logit
from sklearn.linear_model import LinearRegression

MIRROR = Path(os.environ.get("CLIPSAFETY_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "external")
needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason="no published-data mirror here")


@pytest.fixture(autouse=True)
def _mirror(monkeypatch):
    if MIRROR.is_dir():
        monkeypatch.setenv("CLIPSAFETY_MIRROR", str(MIRROR))


def test_resolve_factors():
    assert factor_vocab.resolve_factors(None) == ["pose", "background", "pattern", "color", "smaller",
                                       "shape", "partial_view", "subcategory", "texture", "larger"]
    assert len(factor_vocab.resolve_factors("all")) == 16 and "multiple_objects" in factor_vocab.resolve_factors("all")
    assert factor_vocab.resolve_factors("pose, style") == ["pose", "style"]
    with pytest.raises(ValueError, match="unknown factor"):
        factor_vocab.resolve_factors(["posture"])


def test_resolve_models_lists_and_strings():
    assert catalog.resolve_models("a:x, b:y,a:x") == ["a:x", "b:y"]
    assert catalog.resolve_models(["zoo:1", "zoo:2"]) == ["zoo:1", "zoo:2"]
    with pytest.raises(ValueError, match="empty"):
        catalog.resolve_models([])


@pytest.mark.parametrize("mid, group", [
    ("openclip:ViT-B-32@random", "clip-zeroshot"),
    ("openclip:ViT-B-32@laion2b_s34b_b79k", "clip-zeroshot"),
    ("timm:vit_base_patch16_clip_224.openai_ft_in1k", "clip-ft-direct"),
    ("timm:vit_base_patch16_clip_224.laion2b_ft_in12k_in1k", "clip-ft-2stage"),
    ("timm:vit_base_patch16_224.augreg_in21k_ft_in1k", "more-data"),
    ("timm:resnet50.fb_swsl_ig1b_ft_in1k", "more-data"),
    ("timm:resnet18@random", "standard"),
    ("timm:resnet50.a1_in1k", "standard"),
])
def test_infer_group_rules(mid, group):
    assert groups.group_of_id(mid) == group


def test_model_metadata_falls_back_to_id_rules():
    md = models.model_metadata(["openclip:ViT-B-32@random", "timm:resnet18@random"])
    assert list(md["group"]) == ["clip-zeroshot", "standard"]
    assert list(md["family"]) == ["ViT", "ResNet"]


# ------------------------------------------------------------------ published ImageNet-X tables

def _raw_rows(collection, which="top"):
    p = MIRROR / "facebookresearch/imagenetx/results/val" / f"{which}_factor" / collection / \
        "class/accuracies_per_factor.csv"
    with open(p, newline="") as fh:
        return {r["model"]: r for r in csv.DictReader(fh)}


@needs_mirror
@pytest.mark.parametrize("collection, clip_models", [
    ("imagenet_testbed", {"resnet50_clip_zeroshot", "vit_b_32_clip_zeroshot"}),
    ("modelvshuman", {"clip", "clipRN50"}),
])
def test_published_factor_table_matches_file(collection, clip_models):
    raw = _raw_rows(collection)
    long = FS.published_factor_table(collection, which="top", factors="all")
    assert set(long.loc[long.group == "clip-zeroshot", "model"]) == clip_models
    # self-supervised models are excluded by rule; everything kept has a group
    assert "simclr_resnet50x1" not in set(long["model"]) and long["group"].notna().all()
    assert long.groupby("model").size().eq(16).all()
    for m in list(clip_models) + ["resnet50" if collection == "imagenet_testbed" else "bagnet33"]:
        rows = long[long.model == m].set_index("factor")
        for f in ("pose", "texture", "multiple_objects"):
            assert rows.loc[f, "factor_acc"] == pytest.approx(float(raw[m][f]), abs=1e-12)
        assert rows["overall_acc"].iloc[0] == pytest.approx(float(raw[m]["average"]), abs=1e-12)


@needs_mirror
def test_published_groups_follow_imagenet_x_types():
    assert groups.imagenetx_group("resnet50")[0] == "standard"
    assert groups.imagenetx_group("instagram-resnext101_32x8d")[0] == "more-data"
    assert groups.imagenetx_group("resnet50_augmix")[0] == "other-robust"
    assert groups.imagenetx_group("resnet18_50k_3_epochs")[0] is None  # low-accuracy CNN: excluded
    assert groups.imagenetx_group("MoCoV2")[0] is None
    assert groups.imagenetx_group("resnet50_clip_hard_labels")[0] == "other-robust"  # not zero-shot
    with pytest.raises(ValueError, match="collection"):
        FS.published_factor_table("timm")


# ------------------------------------------------------------------ effective robustness

def _toy_long(seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for f, shift in (("pose", -0.4), ("texture", 0.4)):
        for i in range(12):
            g = ["standard", "clip-zeroshot", "more-data"][i % 3]
            x = rng.uniform(0.4, 0.85)
            y = expit(1.1 * logit(x) - 0.3 + (shift if g == "clip-zeroshot" else 0)
                      + rng.normal(0, 0.03))
            rows.append({"model": f"m{i}", "group": g, "factor": f, "overall_acc": x,
                         "factor_acc": y})
    return pd.DataFrame(rows)


def test_effective_robustness_matches_sklearn_logit_fit():
    long = FS.with_effective_robustness(_toy_long(), scale="logit")
    for _f, part in long.groupby("factor"):
        base = part[part.group == "standard"]
        reg = LinearRegression().fit(logit(base[["overall_acc"]].to_numpy()),
                                     logit(base["factor_acc"].to_numpy()))
        expected = expit(reg.predict(logit(part[["overall_acc"]].to_numpy())))
        np.testing.assert_allclose(part["expected_acc"], expected, atol=1e-10)
        np.testing.assert_allclose(part["eff_rob"], part["factor_acc"] - expected, atol=1e-10)
        # baseline residuals of an OLS fit on the logit scale sum to ~0 there
        resid = logit(base["factor_acc"].to_numpy()) - reg.predict(logit(base[["overall_acc"]].to_numpy()))
        assert abs(resid.sum()) < 1e-9
        # extrapolated: exactly the models outside the standard models' accuracy range
        lo, hi = base["overall_acc"].min(), base["overall_acc"].max()
        want = (part["overall_acc"] < lo) | (part["overall_acc"] > hi)
        assert part["extrapolated"].tolist() == want.tolist() and want.any()


def test_effective_robustness_needs_two_baseline_models():
    long = _toy_long()
    long = long[~((long.group == "standard") & (long.model != "m0"))]
    out = FS.with_effective_robustness(long)
    assert out["eff_rob"].isna().all()


def test_group_summary_and_difference_against_pandas():
    long = FS.with_effective_robustness(_toy_long())
    s = summaries.group_summary(long, "eff_rob", n_boot=200, seed=1)
    ref = long.groupby(["factor", "group"])["eff_rob"].mean()
    for r in s.itertuples():
        assert r.mean == pytest.approx(ref[(r.factor, r.group)], abs=1e-12)
        assert r.lo <= r.mean <= r.hi and r.n_models == 4
    cmp = summaries.compare_to_groups(long, "eff_rob", n_boot=200)
    for r in cmp.itertuples():
        exp = ref[(r.factor, "clip-zeroshot")] - ref[(r.factor, r.group)]
        assert r.diff == pytest.approx(exp, abs=1e-12)
        assert r.lo <= r.diff <= r.hi
    # the constructed shifts are recovered with the right sign on pose and texture
    pose = cmp[(cmp.factor == "pose") & (cmp.group == "standard")].iloc[0]
    tex = cmp[(cmp.factor == "texture") & (cmp.group == "standard")].iloc[0]
    assert pose.hi < 0 < tex.lo


def test_bootstrap_difference_degenerate_cases():
    assert np.isnan(summaries.bootstrap_difference([], [1.0])[0])
    est, lo, hi = summaries.bootstrap_difference([1.0], [0.0, 0.5])
    assert est == pytest.approx(0.75) and np.isnan(lo) and np.isnan(hi)
    est, lo, hi = summaries.bootstrap_difference([2.0, 2.0, 2.0], [1.0, 1.0], n_boot=50)
    assert (est, lo, hi) == pytest.approx((1.0, 1.0, 1.0))


def test_factor_leaders_hand_case():
    s = pd.DataFrame({
        "factor": ["pose"] * 3 + ["texture"] * 3,
        "group": ["clip-zeroshot", "standard", "more-data"] * 2,
        "mean": [-0.02, 0.0, 0.01, 0.05, 0.0, 0.03],
    })
    lead = FS.factor_leaders(s).set_index("factor")
    assert not lead.loc["pose", "target_leads"] and lead.loc["pose", "target_last"]
    assert lead.loc["texture", "target_leads"] and lead.loc["texture", "best_other_group"] == "more-data"


def test_trend_grid_spans_all_models_and_brackets_fit():
    long = _toy_long()
    g = FS.trend_grid(long, n_boot=100, n_points=10)
    assert set(g["factor"]) == {"pose", "texture"}
    for f, part in g.groupby("factor"):
        xs = long.loc[long.factor == f, "overall_acc"]
        assert part["x"].min() == pytest.approx(xs.min()) and part["x"].max() == pytest.approx(xs.max())
        assert (part["lo"] <= part["mid"] + 1e-12).all() and (part["mid"] <= part["hi"] + 1e-12).all()


# ------------------------------------------------------------------ records -> factor table

def _record(ids, targets, preds, n_classes, meta=None, model_id="m", annotations=None,
            label_space=None):
    """A record as infer.predict writes it: the manifest states the annotation kind and the
    label space of the logits (the studies read those, never the ids or the logit width)."""
    from clipsafety.records import PredictionRecord

    logits = np.zeros((len(ids), n_classes), np.float32)
    logits[np.arange(len(ids)), preds] = 5.0
    return PredictionRecord(logits=logits, targets=np.asarray(targets), ids=np.asarray(ids),
                            manifest={"model_id": model_id, "label_subset": None,
                                      "annotations": annotations, "label_space": label_space},
                            meta=meta)


def test_factor_long_on_synthetic_meta_matches_hand_count():
    from clipsafety.factors import FACTORS

    rng = np.random.default_rng(3)
    n = 200
    targets = rng.integers(0, 10, n)
    preds = np.where(rng.random(n) < 0.6, targets, (targets + 1) % 10)
    meta = pd.DataFrame({"id": [f"synth/{i:05d}" for i in range(n)]})
    for f in FACTORS:
        meta[f] = rng.random(n) < 0.3
    recs = {"zoo:a": _record(meta["id"], targets, preds, 10, meta, "zoo:a", "synth-factors", "synth")}
    long = FS.factor_long(recs, factors="all").set_index("factor")
    correct = preds == targets
    assert long["overall_acc"].iloc[0] == pytest.approx(correct.mean())
    for f in FACTORS:
        flag = meta[f].to_numpy()
        assert long.loc[f, "factor_acc"] == pytest.approx(correct[flag].mean())
        assert long.loc[f, "n_flagged"] == flag.sum()
        assert long.loc[f, "error_ratio"] == pytest.approx((1 - correct[flag].mean()) / (1 - correct.mean()))


def test_factor_long_on_imagenet_ids_uses_imagenet_x_annotations():
    from clipsafety.factors import imagenet_x_annotations

    ann = imagenet_x_annotations("top").iloc[:300]
    rng = np.random.default_rng(0)
    targets = ann["class"].to_numpy()
    preds = np.where(rng.random(len(ann)) < 0.5, targets, (targets + 7) % 1000)
    ids = [f"val/{c}/{fn}" for c, fn in zip(targets, ann["file_name"])]
    long = FS.factor_long({"timm:resnet18@random": _record(ids, targets, preds, 1000, annotations="imagenet-x", label_space="imagenet-1k")}, factors=["pose", "background"])
    correct = preds == targets
    for f in ("pose", "background"):
        row = long[long.factor == f].iloc[0]
        flag = ann[f].to_numpy().astype(bool)
        assert row.factor_acc == pytest.approx(correct[flag].mean())
        assert row.group == "standard"


def test_factor_annotations_error_names_the_problem():
    rec = _record(["a.png", "b.png"], [0, 1], [0, 1], 2, meta=pd.DataFrame({"id": ["a.png", "b.png"]}))
    with pytest.raises(ValueError, match="factor annotations"):
        FS.factor_annotations(rec)


def test_records_are_read_by_what_they_state_not_by_their_ids():
    """ImageNet-val-looking ids do not make a record ImageNet-X-annotated, and 1000 logits do
    not make a record a cue-conflict record: the manifest's annotation kind decides."""
    ids = [f"n01440764/ILSVRC2012_val_{i:08d}.JPEG" for i in range(4)]
    rec = _record(ids, [0, 1, 2, 3], [0, 1, 2, 3], 1000, label_space="imagenet-1k")
    with pytest.raises(ValueError, match="annotation kind None"):
        FS.factor_annotations(rec)
    with pytest.raises(ValueError, match="not a cue-conflict record"):
        SS.shape_reading(rec)
    assert FS.factor_annotations(_record(ids, [0] * 4, [0] * 4, 1000,
                                         annotations="imagenet-x")) is None


# ------------------------------------------------------------------ shape bias

@needs_mirror
def test_published_shape_bias_matches_reference_values():
    obs = SS.shape_bias_by_observer(SS.published_shape_decisions()).set_index("observer")
    # METHODS.md section 4 reference values from the published raw decisions
    assert obs.loc["AlexNet (torchvision)", "shape_bias"] == pytest.approx(0.2531, abs=5e-5)
    assert obs.loc["VGG-16 (torchvision)", "shape_bias"] == pytest.approx(0.0921, abs=5e-5)
    lo, mid, hi = SS.human_band(obs.reset_index())
    assert (lo, hi) == pytest.approx((0.919, 0.987), abs=5e-4) and mid == pytest.approx(0.958, abs=1e-3)
    assert (obs["trials"] == 1200).all()


def test_shape_bias_of_record_1000_way_uses_member_mean():
    from clipsafety.shape import IMAGENET_INDICES_16

    names = ["cue/airplane/airplane1-bicycle2.png", "cue/bear/bear1-airplane3.png",
             "cue/car/car1-car2.png", "cue/cat/cat1-airplane1.png"]
    logits = np.zeros((4, 1000), np.float32)
    logits[0, IMAGENET_INDICES_16["airplane"][0]] = 8  # shape hit
    logits[1, IMAGENET_INDICES_16["airplane"][0]] = 8  # texture hit
    logits[2, 0] = 1  # same-class stimulus: dropped
    # cat: one strong "bird" member against one cat member; the mean over 49 bird members is
    # lower than over 6 cat members at equal logits, so the decision is cat (shape)
    logits[3, IMAGENET_INDICES_16["bird"][0]] = 4
    logits[3, IMAGENET_INDICES_16["cat"][0]] = 4
    rec = _record(names, [-1] * 4, [0] * 4, 1000, annotations="cue-conflict", label_space="imagenet-1k")
    rec.logits = logits
    out = SS.shape_bias_of_record(rec)
    assert out["reading"] == "1000->16 mapping"
    assert (out["shape_hits"], out["texture_hits"], out["trials"]) == (2, 1, 3)
    assert out["shape_bias"] == pytest.approx(2 / 3)


def test_shape_bias_of_record_direct_16_and_synthetic():
    from clipsafety.shape import CUE_CONFLICT_CLASSES as C16

    names = ["airplane1-bicycle2.png", "bear1-airplane3.png", "boat1-bear1.png"]
    preds = [C16.index("bicycle"), C16.index("bear"), C16.index("bear")]
    out = SS.shape_bias_of_record(_record(names, [-1] * 3, preds, 16, annotations="cue-conflict",
                                          label_space="cue-conflict-16"))
    assert out["reading"] == "direct 16-way head"
    assert (out["shape_hits"], out["texture_hits"]) == (1, 2)
    # synthetic: targets are shapes, meta texture names in the label space
    classes = ["circle", "square", "star"]
    meta = pd.DataFrame({"id": ["s0", "s1", "s2", "s3"], "texture": ["square", "circle", "circle", "star"]})
    rec = _record(meta["id"], [0, 1, 2, 2], [0, 0, 2, 1], 3, meta, annotations="cue-conflict",
                  label_space="synth")
    rec.manifest["classes"] = classes
    out = SS.shape_bias_of_record(rec)
    assert out["reading"] == "native label space"
    assert (out["shape_hits"], out["texture_hits"], out["trials"]) == (2, 1, 3)
    assert out["shape_bias"] == pytest.approx(2 / 3)


def test_real_path_note_gives_a_command_the_runner_accepts(tmp_path):
    import re

    from clipsafety import book

    note = evidence.real_path_note("factors", "ImageNet val")
    cmd = re.search(r"make chapter NAME=(\w+) PARAMS='(.*)'", note)
    assert cmd and cmd.group(1) == "factors"
    args = cmd.group(2).split(" -p ")
    pairs = [tuple(a.removeprefix("-p ").split(" ", 1)) for a in args]
    assert [k for k, _ in pairs] == ["models", "data_root", "device"]
    given = dict(pairs)
    assert given["data_root"] == "/data" and given["device"] == "cuda"
    # here there is neither /data nor a GPU: with those two swapped for what this machine has,
    # the runner accepts the command as printed
    local = [("models", given["models"]), ("data_root", str(tmp_path)), ("device", "cpu")]
    params = book.validate_params(book.get_chapter("factors"), book.parse_cli_params(local))
    assert params["models"] == evidence.REAL_EXAMPLE


# ------------------------------------------------------------------ the factor chapter's tables and verdict rows

def _er_table():
    """Two standard models, one more-data and two CLIPs on two factors, by hand."""
    rows = []
    spec = [("s1", "standard", False, 0.0, 0.02), ("s2", "standard", True, 0.0, -0.02),
            ("d1", "more-data", False, 0.01, 0.03),
            ("c1", "clip-zeroshot", True, -0.03, 0.05), ("c2", "clip-zeroshot", False, -0.01, 0.07)]
    for m, g, ext, pose, tex in spec:
        for f, v in (("pose", pose), ("texture", tex)):
            rows.append({"model": m, "group": g, "collection": "tb", "factor": f, "eff_rob": v,
                         "extrapolated": ext})
    return pd.DataFrame(rows)


def test_model_counts_count_models_not_rows():
    c = FS.model_counts(_er_table())
    assert c.to_dict("index") == {"clip-zeroshot": {"models": 2, "extrapolated": 1},
                                  "more-data": {"models": 1, "extrapolated": 0},
                                  "standard": {"models": 2, "extrapolated": 1}}


def test_published_counts_fill_missing_groups_with_zero():
    a = _er_table()
    b = a[a.group != "more-data"].assign(collection="mvh")
    c = FS.published_counts({"tb": a, "mvh": b})
    assert c.loc["tb"].to_dict() == {"clip-zeroshot": 2, "more-data": 1, "standard": 2}
    assert c.loc["mvh"].to_dict() == {"clip-zeroshot": 2, "more-data": 0, "standard": 2}


def test_verdicts_by_scale_orders_the_scales():
    t = pd.DataFrame({"claim_id": ["a", "a", "b", "b"], "scale": ["linear", "logit"] * 2,
                      "verdict": ["x", "y", "z", "w"]})
    w = FS.verdicts_by_scale(t)
    assert list(w.columns) == ["logit", "linear"]  # probit not assessed: left out
    assert w.loc["a"].tolist() == ["y", "x"] and w.loc["b"].tolist() == ["w", "z"]


def test_clip_differences_against_pandas_means():
    er = _er_table()
    d = FS.clip_differences(er, "standard", n_boot=200, seed=0)
    assert list(d.index) == ["pose", "texture"] and set(d["group"]) == {"standard"}
    # CLIP (-0.03, -0.01) minus standard (0.0, 0.0) on pose; (0.05, 0.07) - (0.02, -0.02) on texture
    assert d.loc["pose", "diff"] == pytest.approx(-0.02)
    assert d.loc["texture", "diff"] == pytest.approx(0.06)
    assert (d["lo"] <= d["diff"]).all() and (d["diff"] <= d["hi"]).all()
    assert FS.clip_differences(er, "more-data", n_boot=50).loc["pose", "diff"] == pytest.approx(-0.03)


def _leads(leads, lasts, factors=("pose", "texture", "color")):
    return pd.DataFrame({"factor": list(factors), "target_leads": leads, "target_last": lasts})


def test_agreement_table_and_leader_overlap():
    sets = {"live": _leads([True, True, False], [False, False, True]),
            "tb": _leads([False, True, True], [True, False, False])}
    t = FS.agreement_table(sets)
    assert t["live"].to_dict() == {"pose": 1, "texture": 1, "color": -1}
    assert t["tb"].to_dict() == {"pose": -1, "texture": 1, "color": 1}
    assert t.loc["pose", "paper"] == -1 and pd.isna(t.loc["texture", "paper"])
    leads, common = FS.leader_overlap(sets)
    assert leads == {"live": {"pose", "texture"}, "tb": {"texture", "color"}}
    assert common == {"texture"}
    assert FS.leader_overlap({}) == ({}, set())


def test_factor_mechanism_check_in_points():
    long = pd.DataFrame({"model": ["c", "s", "c", "s"], "group": ["clip-zeroshot", "standard"] * 2,
                         "factor": ["pose", "pose", "texture", "texture"],
                         "factor_acc": [0.5, 0.7, 0.9, 0.6], "overall_acc": [0.6, 0.7, 0.6, 0.7]})
    # pose: CLIP 0.5 - 0.6 = -10 points, standard 0.7 - 0.7 = 0 points
    assert FS.factor_mechanism(long, "pose") == ("on pose, accuracy minus overall accuracy is "
                                                 "-10.0 points for zero-shot CLIP and +0.0 for "
                                                 "the baseline models")
    assert FS.factor_mechanism(long, "color") == "color is not among the factors."


def test_decision_side_table_and_its_effective_robustness():
    factors = ["pose", "texture"]
    table = pd.DataFrame({"pose": [0.6], "texture": [0.5], "average": [0.7]},
                         index=pd.Index(["B16"], name="model"))
    base = pd.DataFrame({"model": ["ResNet50", "ViT", "DINO"], "pose": [0.5, 0.55, 0.4],
                         "texture": [0.6, 0.62, 0.5], "average": [0.76, 0.8, 0.7]})
    tb = pd.DataFrame({"model": ["clipA", "clipA", "r18", "r18"],
                       "group": ["clip-zeroshot", "clip-zeroshot", "standard", "standard"],
                       "factor": factors * 2, "factor_acc": [0.3, 0.4, 0.2, 0.1]})
    side = FS.decision_side_table(table, base, tb, factors)
    assert list(side.index) == ["B16", "ResNet50", "ViT", "clipA"]
    assert side.loc["clipA", "pose"] == 0.3 and np.isnan(side.loc["clipA", "average"])
    assert side.loc["ViT"].tolist() == [0.55, 0.62, 0.8]
    assert list(FS.decision_side_table(table, base, None, factors).index) == ["B16", "ResNet50", "ViT"]
    # effective robustness of the added model against the baseline's logit fit (sklearn)
    testbed = _toy_long()
    dec = pd.DataFrame({"model": "B16", "group": "clip-zeroshot", "factor": ["pose", "texture"],
                        "factor_acc": [0.6, 0.5], "overall_acc": 0.7})
    er = FS.decision_effective_robustness(testbed, dec, "standard", "logit")
    for f in ("pose", "texture"):
        base_f = testbed[(testbed.factor == f) & (testbed.group == "standard")]
        reg = LinearRegression().fit(logit(base_f[["overall_acc"]].to_numpy()),
                                     logit(base_f["factor_acc"].to_numpy()))
        want = dec.set_index("factor").loc[f, "factor_acc"] - expit(reg.predict(logit([[0.7]])))[0]
        assert er[f] == pytest.approx(want, abs=1e-10)
