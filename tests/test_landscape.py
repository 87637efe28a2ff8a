"""The landscape fit recovers known lines and measures distance above them."""

import numpy as np
import pandas as pd
import pytest
from clipsafety.studies import landscape
from scipy import special


def _constructed(slope=1.3, intercept=-0.7, n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.3, 0.9, n)
    y = special.expit(slope * special.logit(x) + intercept)
    df = pd.DataFrame({"source": "timm", "model": [f"m{i}" for i in range(n)],
                       "group": "standard", "imagenet": x, "shift": "r", "shift_acc": y})
    # CLIP models 5 points above the line
    xc = rng.uniform(0.5, 0.8, 20)
    yc = special.expit(slope * special.logit(xc) + intercept) + 0.05
    clip = pd.DataFrame({"source": "open_clip", "model": [f"c{i}" for i in range(20)],
                         "group": "clip-zeroshot", "imagenet": xc, "shift": "r", "shift_acc": yc})
    return pd.concat([df, clip], ignore_index=True)


def test_fit_recovers_known_slope_and_effective_robustness():
    points, bands, fits = landscape.fit_landscape(_constructed(), n_boot=200)
    assert fits.loc[0, "slope"] == pytest.approx(1.3, abs=1e-9)
    assert fits.loc[0, "intercept"] == pytest.approx(-0.7, abs=1e-9)
    assert fits.loc[0, "n_baseline"] == 200
    er = points.set_index("model")["eff_rob"]
    assert np.allclose(er[[f"m{i}" for i in range(200)]], 0, atol=1e-12)
    assert np.allclose(er[[f"c{i}" for i in range(20)]], 0.05, atol=1e-12)
    # a noiseless line has a band of zero width
    assert np.allclose(bands["lo"], bands["hi"], atol=1e-9)
    table = landscape.effective_robustness_table(points, groups=["clip-zeroshot"])
    assert len(table) == 20 and np.allclose(table["ER mean"], 0.05)


def test_band_widens_with_noise_and_contains_the_line():
    df = _constructed()
    rng = np.random.default_rng(1)
    std = df["group"] == "standard"
    df.loc[std, "shift_acc"] = np.clip(df.loc[std, "shift_acc"] + rng.normal(0, 0.03, std.sum()), 0.01, 0.99)
    _, bands, fits = landscape.fit_landscape(df, n_boot=300)
    assert (bands["hi"] - bands["lo"] > 0).all()
    assert ((bands["lo"] <= bands["mid"]) & (bands["mid"] <= bands["hi"])).all()
    assert fits.loc[0, "slope"] == pytest.approx(1.3, abs=0.15)


def test_too_few_baseline_models_is_a_clear_error():
    df = _constructed().query("group == 'clip-zeroshot'")
    with pytest.raises(ValueError, match="baseline models"):
        landscape.fit_landscape(df)


# ----------------------------------------------------------------------------- the chapter's
# tables, on hand-made inputs with the values worked out by hand

def _points():
    return pd.DataFrame({
        "source": ["timm", "timm", "open_clip", "open_clip", "open_clip"] * 2,
        "model": ["r50", "vit", "clip-a", "clip-b", "clip-ft"] * 2,
        "group": ["standard", "standard", "clip-zeroshot", "clip-zeroshot", "clip-ft-direct"] * 2,
        "imagenet": [0.76, 0.81, 0.63, 0.75, 0.85] * 2,
        "shift": ["r"] * 5 + ["a"] * 5,
        "eff_rob": [0.0, 0.01, 0.2, 0.1, 0.05, 0.0, -0.01, 0.4, 0.3, -0.05]})


def test_source_counts_and_fit_table():
    long = _points()
    counts = landscape.source_counts(long)  # each model once, though it has two shifts
    assert counts.to_dict("index") == {
        "open_clip": {"CLIP fine-tuned (1k)": 1, "zero-shot CLIP": 2, "standard ImageNet": 0},
        "timm": {"CLIP fine-tuned (1k)": 0, "zero-shot CLIP": 0, "standard ImageNet": 2}}
    fits = pd.DataFrame({"shift": ["r"], "slope": [1.2], "intercept": [0.1], "n_baseline": [7.0],
                         "scale": ["logit"]})
    t = landscape.fit_table(fits)
    assert t["n_baseline"].tolist() == [7] and t["n_baseline"].dtype.kind == "i"


def test_per_model_table_ranks_clip_models_in_points():
    shown = landscape.per_model_table(_points(), top_n=2)
    # CLIP models only; ER mean: clip-a (0.2 + 0.4) / 2 = 0.3, clip-b 0.2, clip-ft 0.0
    assert shown["model"].tolist() == ["clip-a", "clip-b", "clip-ft"]
    assert shown["ER mean"].tolist() == [30.0, 20.0, 0.0]
    assert shown["ER r"].tolist() == [20.0, 10.0, 5.0] and shown["imagenet"].tolist() == [63.0, 75.0, 85.0]
    assert shown["group"].tolist()[:2] == ["zero-shot CLIP"] * 2
    # the top 1 and then the bottom 1 (no row twice when there are few)
    assert landscape.per_model_table(_points(), top_n=1)["model"].tolist() == ["clip-a", "clip-ft"]
    assert landscape.per_model_table(_points(), top_n=5)["model"].tolist() == [
        "clip-a", "clip-b", "clip-ft"]


def test_training_table_keeps_models_without_metadata():
    oc = pd.DataFrame({"model": ["clip-a", "other"], "train_source": ["WIT", "LAION-2B"],
                       "samples_seen": [12.8e9, 34e9], "params": [1.5e8, 4e8], "imagenet": [0.6, 0.7]})
    t = landscape.training_table(_points(), oc).set_index("model")
    assert list(t.index) == ["clip-a", "clip-b"]  # zero-shot only, ranked by ER mean
    assert t.loc["clip-a", "train_source"] == "WIT" and pd.isna(t.loc["clip-b", "samples_seen"])
    assert t.loc["clip-b", "ER mean"] == pytest.approx(0.2)


def test_world_analogues_and_untested_rows():
    analogues = {"synth:shift-r": "r", "synth:shift-a": "a", "synth:shift-v2": "v2"}
    assert landscape.analogues_of(["a", "r"], analogues) == ["synth:shift-a", "synth:shift-r"]
    pts = pd.DataFrame({"shift": ["synth:shift-a", "synth:shift-r"], "eff_rob": [0.1, 0.2]})
    named = landscape.named_by_published(pts, analogues)
    assert named["shift"].tolist() == ["a", "r"] and pts["shift"].tolist()[0] == "synth:shift-a"
    assert landscape.analogue_names(analogues)["r"] == "`synth:shift-r` (r analogue)"
    rows = landscape.untested_rows(["r", "a"], "real models on real data", "why")
    assert [r.claim.claim_id for r in rows] == ["landscape-r", "landscape-a"]
    assert {r.verdict for r in rows} == {"not testable"} and rows[0].claim.kind == "premise"


def test_published_long_keeps_the_shifts_asked_for(monkeypatch):
    from clipsafety import published

    long = pd.DataFrame({"model": ["a", "b", "c", "d"], "group": ["standard", "excluded", "standard",
                                                                   "clip-zeroshot"],
                         "shift": ["r", "r", "v2", "a"]})
    monkeypatch.setattr(published, "landscape_long", lambda sources: long)
    assert landscape.published_long(["timm"], ["r", "a"])["model"].tolist() == ["a", "d"]


def test_premise_rule_is_the_mean_difference_with_a_joint_interval():
    """The landscape's one rule: CLIP's mean effective robustness minus the standard models',
    interval from resampling both groups jointly; checked against a direct numpy bootstrap."""
    import numpy as np
    from clipsafety import claims

    rng = np.random.default_rng(1)
    clip, std = rng.normal(0.05, 0.02, 12), rng.normal(0.0, 0.02, 20)
    pts = pd.DataFrame({"shift": "r", "group": ["clip-zeroshot"] * 12 + ["standard"] * 20,
                        "eff_rob": np.concatenate([clip, std])})
    f = landscape.shift_findings(pts, ["r"], n_boot=400, seed=0).iloc[0]
    assert f["diff"] == pytest.approx(clip.mean() - std.mean())
    assert f["lo"] > 0 and f["reading"] == claims.REPRODUCED
    j = landscape.assess_landscape_claims(pd.DataFrame([f]), claims.WORLD,
                                          built_in={"r": "style mix"})[0]
    assert j.verdict == claims.BUILT_IN and j.estimate == pytest.approx(100 * f["diff"])
    # the same clouds swapped: contradicted, not merely "not reproduced"
    pts2 = pts.assign(group=["standard"] * 12 + ["clip-zeroshot"] * 20)
    f2 = landscape.shift_findings(pts2, ["r"], n_boot=400, seed=0).iloc[0]
    assert f2["reading"] == claims.CONTRADICTED
    # premise: below twice chance on the shift is premise not met
    pts3 = pts.assign(shift_acc=0.15)
    prem = landscape.world_premises(pts3, ["r"])["r"]
    j3 = claims.gated(landscape.assess_landscape_claims(pd.DataFrame([f]), claims.WORLD)[0], prem)
    assert j3.verdict == claims.PREMISE_NOT_MET and "15.0%" in j3.reason
