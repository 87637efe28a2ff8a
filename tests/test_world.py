"""The world appendix's study (clipsafety.studies.appendix_world) and the zoo's contract.

Two kinds of test. The functions are checked against independent references (scikit-learn's
least squares on scipy's logit, brute-force pair counts, the direct formula). The contract
tests measure the committed zoo (data/zoo/catalog.csv, eval.csv): they fail when the world
stops showing what the book says it shows.
"""

from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from clipsafety.studies import appendix_world as W
from clipsafety.zoo import zoo_dir

# --------------------------------------------------------------------------- small tables


def _tables(seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"s{i}" for i in range(6)] + [f"c{i}" for i in range(4)] + ["r0"]
    group = ["standard"] * 6 + ["clip-zeroshot"] * 4 + ["reference"]
    cat = pd.DataFrame({"id": ids, "group": group, "reference": [0] * 10 + [1],
                        "parent": [""] * 10 + [""], "matched_pair": [""] * 11,
                        "train_set": ["train-labelled-30k"] * 11})
    x = np.r_[np.linspace(0.5, 0.85, 6), [0.45, 0.6, 0.7, 0.9], 0.6]
    rows = []
    for i, m in enumerate(ids):
        rows.append({"id": m, "dataset": W.ID_SET, "accuracy": x[i]})
        for s in W.NATURAL_SHIFTS:
            y = 0.8 * x[i] - 0.2 + (0.1 if m.startswith("c") else 0) + rng.normal(0, 0.02)
            rows.append({"id": m, "dataset": s, "accuracy": float(np.clip(y, 0.02, 0.98))})
    return cat, pd.DataFrame(rows)


def test_effective_robustness_matches_least_squares_on_the_logit_scale():
    from scipy.special import expit, logit
    from sklearn.linear_model import LinearRegression

    cat, ev = _tables()
    pts = W.zoo_points(cat, ev)
    assert "r0" not in set(pts["id"])  # the reference model is no model of the world
    acc = ev.pivot(index="id", columns="dataset", values="accuracy")
    std = [f"s{i}" for i in range(6)]
    for s in W.NATURAL_SHIFTS:
        lr = LinearRegression().fit(logit(acc.loc[std, [W.ID_SET]].to_numpy()),
                                    logit(acc.loc[std, s].to_numpy()))
        p = pts[pts["shift"] == s].set_index("id")
        want = acc.loc[p.index, s] - expit(lr.predict(logit(acc.loc[p.index, [W.ID_SET]].to_numpy())))
        np.testing.assert_allclose(p["eff_rob"], want, atol=1e-12)
    # extrapolated: outside the standard models' ID range [0.5, 0.85]
    ex = pts.drop_duplicates("id").set_index("id")["extrapolated"]
    assert ex[ex].index.tolist() == ["c0", "c3"]


def test_accuracy_ranges_and_signature():
    cat, ev = _tables()
    tab, r = W.accuracy_ranges(cat, ev)
    assert (r["baseline_min"], r["baseline_max"]) == (0.5, 0.85)
    assert (r["n_group"], r["n_inside"], r["best"]) == (4, 2, "c3")
    assert tab.set_index("group").loc["clip-zeroshot", "max"] == 0.9
    pts = W.zoo_points(cat, ev)
    sig = W.signature(pts, n_boot=500).set_index("shift")
    for s in W.NATURAL_SHIFTS:
        er = pts[(pts["group"] == "clip-zeroshot") & (pts["shift"] == s)]["eff_rob"]
        assert sig.loc[s, "mean"] == pytest.approx(er.mean())
        assert sig.loc[s, "lo"] <= er.mean() <= sig.loc[s, "hi"]
        # the CLIPs were drawn 10 points above the line: every interval excludes 0
        assert sig.loc[s, "lo"] > 0.03
    inside = W.signature(pts, n_boot=200, inside_only=True)
    assert (inside["n"] == 2).all()


def test_paired_difference_is_the_direct_formula_with_a_sensible_interval():
    from scipy.special import expit, logit

    rng = np.random.default_rng(1)
    ia, ib = rng.random(2000) < 0.7, rng.random(2000) < 0.6
    sa, sb = rng.random(1000) < 0.5, rng.random(1000) < 0.3
    slope, icpt = 0.9, -0.4
    est, lo, hi = W.paired_er_difference(ia, ib, sa, sb, slope, icpt, n_boot=500)
    f = lambda a: expit(slope * logit(a) + icpt)  # noqa: E731
    want = (sa.mean() - f(ia.mean())) - (sb.mean() - f(ib.mean()))
    assert est == pytest.approx(want, abs=1e-12)
    assert lo < est < hi and hi - lo < 0.15
    # a model against itself: exactly zero, in every resample
    assert W.paired_er_difference(ia, ia, sa, sa, slope, icpt, n_boot=50) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="equal length"):
        W.paired_er_difference(ia, ib[:10], sa, sb, slope, icpt)


def test_false_negative_share_counts_pairs_like_brute_force():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 40)
    caps = [f"a {v}" if rng.random() < 0.5 else f"b {v} {i}" for i, v in enumerate(y)]
    # one batch of the whole set: the batch's order does not matter, so brute force is exact
    r = W.false_negative_share(y, caps, batch=40, n_batches=3)
    pairs = list(combinations(range(40), 2))
    assert r["identical"] == pytest.approx(np.mean([caps[i] == caps[j] for i, j in pairs]))
    assert r["same_class"] == pytest.approx(np.mean([y[i] == y[j] for i, j in pairs]))
    assert r["distinct_per_batch"] == len(set(caps))
    with pytest.raises(ValueError, match="one caption per image"):
        W.false_negative_share(y, caps[:-1])
    with pytest.raises(ValueError, match="batch 1"):
        W.false_negative_share(y, caps, batch=1)


def test_bad_tables_are_refused_by_name():
    cat, ev = _tables()
    with pytest.raises(ValueError, match=r"eval table lacks the column\(s\) \['accuracy'\]"):
        W.zoo_points(cat, ev.drop(columns="accuracy"))
    with pytest.raises(ValueError, match="no accuracies on"):
        W.zoo_points(cat, ev[ev["dataset"] != "synth:shift-sketch"])
    with pytest.raises(ValueError, match="the two files must come from the same"):
        W.zoo_points(cat, ev[ev["id"] != "c1"])
    with pytest.raises(ValueError, match="baseline group"):
        W.zoo_points(cat.assign(group="clip-zeroshot"), ev)


# --------------------------------------------------------------------------- the committed zoo


@pytest.fixture(scope="module")
def zoo():
    cat = pd.read_csv(zoo_dir() / "catalog.csv")
    ev = pd.read_csv(zoo_dir() / "eval.csv")
    pts = W.zoo_points(cat, ev)
    return cat, ev, pts


def test_zoo_accuracies_overlap_as_the_real_testbed_does(zoo):
    cat, ev, _ = zoo
    _, r = W.accuracy_ranges(cat, ev)
    assert r["baseline_min"] <= 0.45 and r["baseline_max"] >= 0.85
    assert r["group_min"] <= 0.40
    assert r["n_inside"] >= 8
    assert r["group_max"] >= 0.75, f"best zero-shot CLIP {r['best']} at {r['group_max']:.3f}"


def test_zero_shot_clips_show_the_real_landscapes_signature(zoo):
    _, _, pts = zoo
    sig = W.signature(pts).set_index("shift")
    above = [s for s in W.NATURAL_SHIFTS if sig.loc[s, "lo"] > 0]
    assert len(above) >= 4, sig[["mean", "lo", "hi"]]
    for s in ("synth:shift-sketch", "synth:shift-rendition"):
        assert sig.loc[s, "mean"] > sig.loc["synth:shift-v2", "mean"]


def test_fine_tuning_on_the_labelled_set_erodes_effective_robustness(zoo):
    cat, _, pts = zoo
    pairs = W.matched_pairs(cat, "finetune")
    assert len(pairs) >= 12 and set(pairs["b"]) <= set(cat["id"])
    ero = W.pair_summary(W.pair_differences(pts, pairs)).set_index("shift")
    for s in ("synth:shift-sketch", "synth:shift-rendition"):
        assert ero.loc[s, "hi"] < 0, ero


def test_the_same_recipe_on_narrow_data_loses_effective_robustness(zoo):
    cat, _, pts = zoo
    pairs = W.matched_pairs(cat, "diversity")
    assert len(pairs) == 3  # one per architecture family
    assert set(pairs["b"].str.replace("narrow", "wit")) == set(pairs["a"])
    obj = W.matched_pairs(cat, "objective")  # CLIP vs cross-entropy on the same data and tower
    assert len(obj) == 6 and obj["a"].str.startswith("clip-").all()
    arch = cat.set_index("id")["arch"]
    assert (arch[obj["a"]].to_numpy() == arch[obj["b"]].to_numpy()).all()
    # ER(WIT-like) - ER(narrow): the narrow source loses effective robustness
    ab = W.pair_summary(W.pair_differences(pts, pairs)).set_index("shift")
    for s in ("synth:shift-sketch", "synth:shift-rendition"):
        assert ab.loc[s, "mean"] > 0, ab


def test_make_zoo_would_retrain_nothing(zoo):
    """Every plan entry's trained model is current: its catalog row records the entry's spec
    hash (plan entry and training data) and its weights' sha256."""
    from clipsafety.zoo.plan import PLAN
    from clipsafety.zoo.train import unchanged

    cat = zoo[0]
    rows = {r["id"]: r for r in cat.to_dict("records")}
    stale = [m["id"] for m in PLAN if not unchanged(m, rows, zoo_dir())]
    assert not stale, f"`make zoo` would retrain {stale}"
    assert len(PLAN) - 1 >= 60  # models besides the reference


def test_spec_hash_follows_the_entry_its_data_and_its_parent(monkeypatch):
    from clipsafety.synth import datasets as D
    from clipsafety.zoo import train as T
    from clipsafety.zoo.plan import PLAN

    by = {m["id"]: m for m in PLAN}
    clip, ft = by["clip-resnet-wit-100k"], by["ft-resnet-wit-100k"]
    h_clip, h_ft, h_sup = T.spec_hash(clip), T.spec_hash(ft), T.spec_hash(by["sup-vit-labelled-10k"])
    assert T.spec_hash(dict(clip, seed=clip["seed"] + 1)) != h_clip
    assert T.spec_hash(dict(clip, group="other")) == h_clip  # the group is not in the weights
    # a changed source redraws its sets: their models and the models fine-tuned from them retrain
    row = D.synth_set("train-wit-100k")
    cfg = row.params["cfg"].replace(p_pose=0.5)
    monkeypatch.setitem(D._ROWS, "train-wit-100k",
                        D.SynthSet(row.id, row.builder, {**row.params, "cfg": cfg},
                                   row.description, row.kind))
    assert T.spec_hash(clip) != h_clip and T.spec_hash(ft) != h_ft
    assert T.spec_hash(by["sup-vit-labelled-10k"]) == h_sup


@pytest.mark.slow
@pytest.mark.book
def test_appendix_records_the_contract_the_study_computes(tmp_path, monkeypatch):
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_chapters_factors_shape import run_chapter

    out = tmp_path / "outputs"
    monkeypatch.setenv("CLIPSAFETY_OUTPUTS", str(out))
    few = ["zoo:sup-resnet-labelled-10k", "zoo:clip-resnet-wit-100k", "zoo:ft-resnet-wit-100k"]
    text = run_chapter("appendix_world", tmp_path, models=few, n_boot=200, n_examples=2,
                       n_factor_samples=200)
    rec = json.loads((out / "appendix_world.json").read_text())["tables"]
    cat = pd.read_csv(zoo_dir() / "catalog.csv")
    ev = pd.read_csv(zoo_dir() / "eval.csv")
    pts = W.zoo_points(cat, ev)
    _, ranges = W.accuracy_ranges(cat, ev)
    sig = W.signature(pts, n_boot=200)
    ero = W.pair_summary(W.pair_differences(pts, W.matched_pairs(cat, "finetune")), n_boot=200)
    pairs = pd.DataFrame(rec["ablation_pairs"])
    assert len(pairs) == 3 * len(W.NATURAL_SHIFTS) and (pairs["lo"] <= pairs["diff"]).all()
    assert (pairs["diff"] <= pairs["hi"]).all()
    from clipsafety.studies import landscape as L

    premise = L.shift_findings(pts, list(W.NATURAL_SHIFTS), n_boot=200, seed=0)
    want = W.contract(ranges, sig, ero, W.pair_summary(pairs, n_boot=200), premise)
    got = pd.DataFrame(rec["contract"])
    pd.testing.assert_frame_equal(got, want)
    held = int(want["holds"].sum())
    assert f"{held} of {len(want)} requirements hold" in text
    # the OOD and calibration tables cover the run's models' groups, AUROC in [0, 1]
    ood = pd.DataFrame(rec["ood_by_group"])
    assert set(ood["group"]) == {"standard", "clip-zeroshot", "clip-ft-direct"}
    assert ood[["auroc", "auroc_msp"]].stack().between(0, 1).all()
    assert len(ood) == 3 * 5
    cal = pd.DataFrame(rec["calibration_by_group"])
    assert set(cal["kind"]) == {"ID", "shifts"} and (cal["ece_before"] >= 0).all()
    fneg = pd.DataFrame(rec["false_negatives"]).set_index("source")
    assert fneg.loc["wit", "identical"] < 0.01 < fneg.loc["labelled", "identical"]


# --------------------------------------------------------------------------- the appendix's tables

def test_condition_drops_and_the_notable_drop_threshold():
    evals = pd.DataFrame({"id": ["a", "b", "x"] * 4,
                          "dataset": [W.ID_SET] * 3 + ["synth:s1"] * 3 + ["synth:s2"] * 3
                          + ["synth:s3"] * 3,
                          "accuracy": [0.8, 0.9, 0.1,    # ID mean over a, b: 0.85
                                       0.8, 0.8, 0.1,    # drop 0.05: counts
                                       0.82, 0.82, 0.1,  # drop 0.03: does not
                                       0.79969, 0.8, 0.1]})  # 0.050155 -> 0.05 as shown: counts
    tab = W.condition_drops(evals, ["a", "b"])
    assert list(tab.index) == [W.ID_SET, "synth:s1", "synth:s2", "synth:s3"]
    assert tab["mean accuracy"].tolist() == [0.85, 0.8, 0.82, 0.8]
    assert tab["drop vs ID"].tolist() == [0.0, 0.05, 0.03, 0.05]
    assert W.NOTABLE_DROP == 0.05 and W.notable_drops(tab) == 2
    assert W.notable_drops(tab, threshold=0.04) == 2 and W.notable_drops(tab, threshold=0.02) == 3


def test_signature_table_with_and_without_the_real_landscape():
    sig = pd.DataFrame({"shift": ["synth:shift-v2", "synth:shift-sketch"], "n": [3, 3],
                        "mean": [0.01, 0.05], "lo": [0.0, 0.03], "hi": [0.02, 0.07]})
    inside = pd.DataFrame({"shift": ["synth:shift-sketch"], "mean": [0.04]})
    pts = pd.DataFrame({"shift": ["v2", "v2", "sketch", "sketch", "sketch"],
                        "group": ["clip-zeroshot", "clip-zeroshot", "clip-zeroshot", "standard",
                                  "clip-zeroshot"], "eff_rob": [0.02, 0.04, 0.1, -0.5, 0.2]})
    real = W.real_signature(pts)
    assert real.loc["v2"].tolist() == pytest.approx([0.03, 2])
    assert real.loc["sketch"].tolist() == pytest.approx([0.15, 2])
    t = W.signature_table(sig, inside, real)
    assert list(t.columns) == ["shift", "n", "mean", "lo", "hi", "shift_real", "real_mean",
                               "real_n", "mean_inside"]
    assert t["shift_real"].tolist() == ["v2", "sketch"]
    assert t["real_mean"].tolist() == pytest.approx([0.03, 0.15])
    assert np.isnan(t["mean_inside"].iloc[0]) and t["mean_inside"].iloc[1] == 0.04
    assert "real_mean" not in W.signature_table(sig, inside)


def test_ood_and_calibration_medians_by_hand():
    det = pd.DataFrame({"model": ["a", "b", "c", "a", "b", "c"], "group": ["g", "g", "h"] * 2,
                        "ood_set": ["o1"] * 3 + ["o2"] * 3, "auroc": [0.6, 0.8, 0.5, 0.7, 0.9, 0.4]})
    msp = det.assign(auroc=det["auroc"] - 0.1, group="ignored")
    m = W.ood_medians(det, msp).set_index(["group", "ood_set"])
    assert m.loc[("g", "o1")].tolist() == pytest.approx([0.7, 0.6])
    assert m.loc[("h", "o2")].tolist() == pytest.approx([0.4, 0.3])
    cal = pd.DataFrame({"group": ["g"] * 4, "is_id": [True, False, False, False],
                        "accuracy": [0.9, 0.5, 0.6, 0.1], "ece_before": [0.1, 0.2, 0.4, 0.3],
                        "nll_before": [1.0, 2.0, 3.0, 9.0]})
    c = W.calibration_medians(cal).set_index(["group", "kind"])
    assert c.loc[("g", "ID")].tolist() == [0.9, 0.1, 1.0]
    assert c.loc[("g", "shifts")].tolist() == pytest.approx([0.5, 0.3, 3.0])


def test_pair_table_in_points():
    diffs = pd.DataFrame({"tag": ["p", "p", "q"], "shift": ["v2", "sketch", "v2"],
                          "diff": [0.01234, -0.056, 0.1]})
    t = W.pair_table(diffs)
    assert t.loc["p", "v2"] == 1.2 and t.loc["p", "sketch"] == -5.6 and np.isnan(t.loc["q", "sketch"])


def test_source_knobs_read_the_world_configuration():
    from clipsafety.synth import sources as S

    k = W.source_knobs()
    assert k["source"].tolist() == list(S.SOURCES)
    assert list(k.columns) == ["source", *W.WORLD_KNOBS]
    for name, cfg in S.SOURCES.items():
        row = k.set_index("source").loc[name]
        assert row["p_pose"] == cfg.p_pose and row["cue_strength"] == cfg.cue_strength


class _FakeSet:
    def __init__(self, name, n=6, meta=None, captions=None, cats=None, dup=None):
        self.dataset_id, self.n, self.label_subset = f"synth:{name}", n, None
        self._meta, self._captions, self._cats, self._dup = meta, captions, cats, dup

    def __len__(self):
        return self.n

    def meta(self):
        return self._meta

    def captions(self):
        return list(self._captions)

    def attributes(self):
        return pd.DataFrame({"category": self._cats, "duplicate_of": self._dup})


def test_dataset_card_reports_a_set_that_cannot_be_built(monkeypatch):
    from clipsafety import synth

    def fake(name):
        if name == "shift-adversarial":
            raise RuntimeError("needs the reference model")
        return _FakeSet(name, n=7)

    monkeypatch.setattr(synth, "get_dataset", fake)
    card = W.dataset_card(["id-test", "shift-adversarial"])
    assert card["samples"].tolist()[0] == 7 and pd.isna(card["samples"].tolist()[1])
    assert card["description"].iloc[0] == synth.DESCRIPTIONS["id-test"]
    assert card["description"].iloc[1] == "unavailable here: needs the reference model"


def test_factor_frequencies_and_false_negatives_per_source(monkeypatch):
    from clipsafety import synth

    shares = {"labelled": 0.0, "wit": 0.5, "laion": 1.0}

    def fake(name):
        src = name.split("-")[1]
        meta = pd.DataFrame({f: [1, 0, 1, 0] if src == "wit" else [int(shares[src])] * 4
                             for f in synth.FACTORS})
        meta.loc[3, "pose"] = 1  # one more pose sample, beyond the first 3 read
        cats = [0, 0, 1, 1, 2, 2] if src != "laion" else [0] * 6
        return _FakeSet(name, meta=meta, cats=cats,
                        captions=["a", "a", "b", "c", "d", "e"] if src == "wit" else list("uvwxyz"))

    monkeypatch.setattr(synth, "get_dataset", fake)
    freq = W.factor_frequencies(3, sources=("labelled", "wit", "laion"))
    f = freq.set_index(["source", "factor"])["share"]
    assert f[("wit", "pose")] == pytest.approx(2 / 3) and f[("labelled", "pose")] == 0.0
    assert f[("laion", "texture")] == 1.0 and len(freq) == 3 * len(synth.FACTORS)
    fn = W.false_negative_table(sources=("wit", "laion"), batch=6, seed=0).set_index("source")
    # one batch of all six rows: 15 pairs; wit: one identical pair, 3 same-category pairs
    assert fn.loc["wit", "identical"] == pytest.approx(1 / 15)
    assert fn.loc["wit", "same_class"] == pytest.approx(3 / 15)
    assert fn.loc["laion", "identical"] == 0 and fn.loc["laion", "same_class"] == 1.0


def test_curation_steps_on_a_small_pool(monkeypatch):
    from clipsafety import synth

    cats = synth.CATEGORIES
    caps, dup = [], []
    for c in cats:  # every category twice, the second an exact duplicate of the first
        caps += [f"a photo of a {c}", f"a photo of a {c}"]
        dup += [-1, len(caps) - 2]
    caps += [f"a big {cats[0]}", "a photo of nothing"]
    dup += [-1, -1]
    pool = _FakeSet("train-raw-100k", n=len(caps), captions=caps, cats=[0] * len(caps), dup=dup)
    monkeypatch.setattr(synth, "get_dataset", lambda name: pool)
    steps, named, duplicates = W.curation_steps()
    assert steps["samples"].tolist() == [22, 12, 20, 10]
    assert steps["selection"].tolist()[0] == "raw pool"
    assert named == pytest.approx(21 / 22) and duplicates == pytest.approx(10 / 22)
