"""Published model-vs-human raw decisions (TizianThieringer's and kayburns' forks): the one
reader, shape bias of real CLIPs read back against references computed here from the raw CSV
with the csv module, error consistency, CLIP ViT-B/16's per-factor accuracies, and the
factor-claim helpers (degenerate factors, per-factor agreement), and the published evidence
of both chapters counted once per checkpoint, checked against counts made here."""

from __future__ import annotations

import csv
import re

import numpy as np
import pandas as pd
import pytest
from clipsafety import claims as C
from clipsafety import external, shape, summaries
from clipsafety.studies import factors as FS
from clipsafety.studies import shape_bias as SS

T = "TizianThieringer/model-vs-human/raw-data/"
K = "kayburns/model-vs-human/raw-data/"


def _path(key):
    try:
        return external.fetch(key)
    except external.ExternalUnavailable as exc:
        pytest.skip(f"model-vs-human raw data unavailable (set CLIPSAFETY_MIRROR): {exc}")


def _reference_shape_bias(path) -> float:
    """Shape bias straight from the CSV: the shape class is the part of the stimulus name
    before the first digit, the texture class the part after '-' before its digit."""
    shape_hits = texture_hits = 0
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            stem = row["imagename"].rsplit("_", 1)[-1].rsplit(".", 1)[0]
            a, b = stem.split("-")
            s, t = re.match(r"[a-z]+", a).group(), re.match(r"[a-z]+", b).group()
            if s == t:
                continue
            r = row["object_response"].strip().lower()
            shape_hits += r == s
            texture_hits += r == t
    return shape_hits / (shape_hits + texture_hits)


@pytest.mark.parametrize("key", [
    T + "cue-conflict/cue-conflict_clip_session-1.csv",      # ViT-B/32
    T + "cue-conflict/cue-conflict_clip-16_session-1.csv",   # ViT-B/16
    T + "cue-conflict/cue-conflict_clip-14_session-1.csv",   # ViT-L/14
    K + "cue-conflict/cue-conflict_clip_session-1.csv",      # ViT-B/16 (kayburns)
    K + "cue-conflict/cue-conflict_subject-01_session_1.csv",
])
def test_real_clip_shape_bias_equals_the_raw_csv(key):
    path = _path(key)
    ref = _reference_shape_bias(path)
    got = shape.shape_bias_from_decisions(shape.read_decisions(path))
    assert got == ref, (key, got, ref)


def test_study_tables_carry_the_same_numbers():
    # the raw file first: without a mirror or network the test is skipped, not failed
    ref = _reference_shape_bias(_path(T + "cue-conflict/cue-conflict_clip-14_session-1.csv"))
    d = SS.mvh_decisions("TizianThieringer/model-vs-human")
    obs = SS.published_shape_observers(d, n_boot=200).set_index("observer")
    row = obs.loc["CLIP ViT-L/14 [Thieringer]"]
    assert row["shape_bias"] == ref and row["lo"] < ref < row["hi"]
    assert row["group"] == "clip-zeroshot" and row["trials"] == 1200
    assert row["cue_share"] == pytest.approx((row.shape_hits + row.texture_hits) / 1200)
    # MLP-Mixer and MLP-Mixer-B are the same decisions: flagged, not counted twice
    assert obs.loc["MLP-Mixer [Thieringer]", "duplicate_of"] == "MLP-Mixer-B [Thieringer]"


def test_reader_handles_every_file_name_form(tmp_path):
    assert shape.parse_decision_file_name("cue-conflict_clip-16_session-1.csv") == {
        "dataset": "cue-conflict", "observer": "clip-16", "session": 1}
    assert shape.parse_decision_file_name(
        "a/style-transfer-512-nomask-experiment_subject-01_session_1.csv")["observer"] == "subject-01"
    assert shape.parse_decision_file_name("imagenet_validation_clip_session-1.csv")["dataset"] == \
        "imagenet_validation"
    with pytest.raises(ValueError, match="not a raw-data decision file name"):
        shape.parse_decision_file_name("clip.csv")
    p = tmp_path / "cue-conflict_mynet_session-2.csv"
    p.write_text("Session,trial,object_response,imagename\n1,1,cat,cat1-dog2.png\n1,2,dog,cat1-dog2.png\n")
    d = shape.read_decisions(p)
    assert list(d["subj"]) == ["mynet", "mynet"] and "session" in d and d["observer"].iloc[0] == "mynet"
    assert shape.shape_bias_from_decisions(d) == 0.5


def test_error_consistency_against_sklearn_and_hand():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    a, b = rng.random(200) < 0.6, rng.random(200) < 0.7
    assert shape.error_consistency(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert shape.error_consistency([1, 0, 1, 0], [1, 0, 1, 0]) == pytest.approx(1.0)
    assert np.isnan(shape.error_consistency([1, 1], [1, 1]))
    # the table: two observers identical to a human except one trial
    d = pd.DataFrame({"dataset": "x", "observer": ["h1"] * 4 + ["m"] * 4,
                      "object_response": ["cat", "dog", "cat", "car"] + ["cat", "dog", "cat", "cat"],
                      "category": ["cat"] * 8, "condition": ["0"] * 8,
                      "imagename": [f"000{i}_x_s01_0_cat_00_im{i}.png" for i in range(4)]
                      + [f"im{i}.png" for i in range(4)]})
    tab = shape.error_consistency_table(d, ["h1"]).set_index("observer")
    assert tab.loc["m", "error_consistency"] == pytest.approx(
        cohen_kappa_score([1, 0, 1, 0], [1, 0, 1, 1]))
    assert np.isnan(tab.loc["h1", "error_consistency"])


def test_clip_b16_factor_accuracies_from_its_decisions_match_a_direct_count():
    _path(K + "imagenet_validation/imagenet_validation_clip_session-1.csv")
    table, long = FS.published_decision_factors()
    name = long["model"].iloc[0]
    with open(_path(K + "imagenet_validation/imagenet_validation_clip_session-1.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    correct = {r["imagename"]: r["object_response"] == r["category"] for r in rows}
    ann = FS.imagenet_x_annotations("top")
    ann = ann[ann["file_name"].isin(correct)]
    ok = ann["file_name"].map(correct)
    assert table.loc[name, "average"] == pytest.approx(ok.mean(), abs=1e-12)
    for f in ("pose", "texture", "subcategory"):
        assert table.loc[name, f] == pytest.approx(ok[ann[f] == 1].mean(), abs=1e-12)
    assert len(long) == 10 and (long["group"] == "clip-zeroshot").all()


def _long(color_slope=-1.0):
    rows = []
    for i in range(8):
        acc = 0.5 + 0.04 * i
        for f in ("pose", "color"):
            fa = acc - 0.1 if f == "pose" else max(0.01, 0.3 + color_slope * 0.04 * i)
            rows.append({"model": f"s{i}", "group": "standard", "factor": f,
                         "overall_acc": acc, "factor_acc": fa, "chance": 0.1, "source": "ImageNet"})
    return pd.DataFrame(rows)


def test_degenerate_factors_flag_downward_and_chance_level_trends():
    deg = FS.degenerate_factors(_long()).set_index("factor")
    assert not deg.loc["pose", "degenerate"]
    assert deg.loc["color", "degenerate"] and "does not increase" in deg.loc["color", "reason"]
    at_chance = _long(color_slope=0.0).assign(
        factor_acc=lambda d: np.where(d.factor == "color", 0.05 + 0.001 * d.overall_acc, d.factor_acc))
    deg = FS.degenerate_factors(at_chance).set_index("factor")
    assert deg.loc["color", "degenerate"] and "at or below chance" in deg.loc["color", "reason"]


def test_leader_agreement_reads_the_journal_directions():
    lead = pd.DataFrame({"factor": ["pose", "color", "partial_view"],
                         "target_leads": [True, False, False], "target_last": [False, True, True]})
    ag = FS.leader_agreement(lead).set_index("factor")
    assert ag.loc["pose", "agrees"] == 0.0 and np.isnan(ag.loc["color", "agrees"])
    assert ag.loc["partial_view", "agrees"] == 1.0 and ag.loc["color", "observed"] == -1


IX = "facebookresearch/imagenetx/results/val/top_factor/imagenet_testbed/class/accuracies_per_factor.csv"


def test_published_factor_evidence_counts_each_clip_checkpoint_once():
    path = _path(IX)
    _path(K + "imagenet_validation/imagenet_validation_clip_session-1.csv")
    long, data = FS.published_pooled()
    clips = long[long.group == "clip-zeroshot"]
    # the testbed and model-vs-human collections hold the same RN50 and ViT-B/32; kayburns adds B/16
    assert sorted(clips["model"].unique()) == ["openai/RN50", "openai/ViT-B-16", "openai/ViT-B-32"]
    assert (clips.groupby("model").size() == 10).all()
    assert {"openai/RN50", IX} <= set(data)
    with open(path, newline="") as fh:
        raw = {r["model"]: r for r in csv.DictReader(fh)}
    rn50 = clips[clips.model == "openai/RN50"].set_index("factor")
    assert rn50.loc["pose", "factor_acc"] == float(raw["resnet50_clip_zeroshot"]["pose"])
    assert rn50.loc["pose", "overall_acc"] == float(raw["resnet50_clip_zeroshot"]["average"])
    n_imnet = long[long.group.isin(["standard", "more-data"])]["model"].nunique()
    js = {j.claim.claim_id: j for j in FS.assess_factor_claims(
        FS.with_effective_robustness(long), C.PUBLISHED, n_boot=200, data=data)}
    assert js["factors-differ"].n == (3, n_imnet) and js["factors-differ"].unit == C.MODELS
    assert C.label(js["factors-differ"].verdict, C.MODELS, js["factors-differ"].n).endswith(
        "(n = 3 models)")
    assert js["factors-source"].verdict == C.NOT_TESTABLE  # no LAION CLIP among them


V = "paulgavrikov/vlm_shapebias/raw-data/"


def _vlm_bias(path) -> float:
    """Shape bias straight from a vlm_shapebias answer file with the csv module."""
    sh = tx = 0
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            a, b = row["image"].strip().split("-")
            s, t = re.match(r"[a-z]+", a).group(), re.match(r"[a-z]+", b).group()
            if s == t:
                continue
            r = row["pred_label"].strip().lower()
            sh += r == s
            tx += r == t
    return sh / (sh + tx)


def test_published_shape_evidence_once_per_checkpoint_against_the_raw_files():
    zs = _vlm_bias(_path(V + "clip/ViT_L_14_openai_a_photo_of_a_CLS..csv"))
    ft = [_vlm_bias(_path(V + f"inet_classifier/vit_large_patch14_clip_224.openai_{t}.csv"))
          for t in ("ft_in1k", "ft_in12k_in1k")]
    trials = SS.published_shape_trials()
    models = SS.published_shape_models(trials)
    js, extra = SS.assess_published_shape(trials, models, n_boot=200)
    js = {j.claim.claim_id: j for j in js}
    j = js["shape-ft"]
    assert j.estimate == pytest.approx(np.mean(ft) - zs, abs=1e-12)
    assert j.unit == C.STIMULI and j.n == (1200,) and C.label(j.verdict, j.unit, j.n).endswith(
        "(one checkpoint)")
    assert j.lo < j.estimate < j.hi
    # OpenAI ViT-B/16 is in both forks: counted once
    b16 = models[models.checkpoint == "openai/ViT-B-16"]
    assert len(b16) == 2 and b16["counted"].sum() == 1
    pooled = SS.published_pooled_shape(models)
    assert pooled["model"].is_unique
    clip = js["shape-clip"]
    assert clip.n[0] == (pooled.group == "clip-zeroshot").sum() == 11
    assert clip.correction.startswith("Bonferroni over 3")
    # the same-backbone LAION vs WIT pair: independent counts from the two forks' files
    laion = _reference_shape_bias(_path(
        "kirill-vish/Beyond-INet/inference/modelvshuman/raw-data/cue-conflict/"
        "cue-conflict_vit-clip_session-1.csv"))
    wit = _reference_shape_bias(_path(T + "cue-conflict/cue-conflict_clip-16_session-1.csv"))
    assert js["shape-source"].estimate == pytest.approx(laion - wit, abs=1e-12)


def test_group_outliers_finds_one_model_carrying_a_mean():
    df = pd.DataFrame({"model": list("abcdef"), "group": "more-data",
                       "shape_bias": [0.10, 0.11, 0.09, 0.12, 0.10, 0.779]})
    row = summaries.group_outliers(df, "shape_bias").iloc[0]
    assert row["outlier"] and row["most_influential"] == "f"
    assert row["mean_without"] == pytest.approx(np.mean([0.10, 0.11, 0.09, 0.12, 0.10]))
    calm = df.assign(shape_bias=[0.10, 0.11, 0.09, 0.12, 0.10, 0.13])
    assert not summaries.group_outliers(calm, "shape_bias").iloc[0]["outlier"]
    loo = summaries.leave_one_out(pd.Series([0.6, 0.5], index=["c1", "c2"]),
                                  df.set_index("model")["shape_bias"])
    assert loo.loc[loo.left_out == "f", "estimate"].iloc[0] == pytest.approx(0.55 - 0.104)
