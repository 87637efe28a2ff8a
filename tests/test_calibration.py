"""The calibration study's tables against independent references (numpy by hand, scipy's
optimiser, scikit-learn's split, the csv module on the published files), its claim rules on
hand-built tables, and the chapter executed with papermill."""

import csv
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clipsafety import claims, metrics
from clipsafety.groups import BASELINE, CLIP_ZEROSHOT
from clipsafety.records import PredictionRecord
from clipsafety.studies import calibration as CS
from scipy.optimize import minimize_scalar
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("CLIPSAFETY_MIRROR") or ROOT.parent / "shared" / "external")
needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason="no published-data mirror here")


@pytest.fixture(autouse=True)
def _mirror(monkeypatch):
    if MIRROR.is_dir():
        monkeypatch.setenv("CLIPSAFETY_MIRROR", str(MIRROR))


# ------------------------------------------------------------------ references by hand

def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _ece_by_hand(p, y, n_bins=15):
    conf, pred = p.max(1), p.argmax(1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        m = (conf > lo) & (conf <= hi) if b else (conf >= 0) & (conf <= hi)
        if m.any():
            total += m.sum() / len(y) * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return total


def _fit_T_by_hand(z, y):
    def nll(T):
        p = _softmax(z / T)
        return -np.mean(np.log(p[np.arange(len(y)), y]))
    return minimize_scalar(nll, bounds=(0.05, 20), method="bounded", options={"xatol": 1e-7}).x


def _record(model, dataset, logits, targets, subset=None, label_map=None, target_space=None):
    m = {"model": {"model_id": model}, "dataset": {"dataset_id": dataset},
         "label_space": "synth", "target_space": target_space or "synth", "label_subset": subset}
    if label_map is not None:
        m["label_map"] = label_map
    return PredictionRecord(logits=logits.astype(np.float32), targets=np.asarray(targets),
                            ids=np.array([f"{dataset}/{i}" for i in range(len(targets))]),
                            manifest=m)


def _world(seed=0, n=400, c=6, sharp=2.0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(c), n // c)
    z = rng.normal(size=(len(y), c)) * sharp
    z[np.arange(len(y)), y] += 2.5
    return z, y


MODELS = ["openclip:ViT-B-32@random", "timm:resnet18@random"]


@pytest.fixture(scope="module")
def constructed():
    recs = {"id": {}, "shift": {}, "subset": {}, "mapped": {}}
    for k, mid in enumerate(MODELS):
        z, y = _world(k, sharp=1.0 + k)
        recs["id"][mid] = _record(mid, "id", z, y)
        zs, ys = _world(10 + k, n=300, sharp=2.5 + k)
        recs["shift"][mid] = _record(mid, "shift", zs * 1.3, ys)
        zs2, ys2 = _world(20 + k, n=300, sharp=1.5)
        keep = np.isin(ys2, [1, 3, 4])
        recs["subset"][mid] = _record(mid, "subset", zs2[keep], ys2[keep], subset=[1, 3, 4])
        # a target space of 2 classes over the 6 columns: class 0 = columns {0, 2}, class 1 = {5}
        zm, _ = _world(30 + k, n=300)
        ym = np.random.default_rng(k).integers(0, 2, len(zm))
        recs["mapped"][mid] = _record(mid, "mapped", zm, ym, subset=[0, 2, 5],
                                      label_map=[[0, 2], [5]], target_space="two")
    return recs


def test_calibration_table_matches_numpy_by_hand(constructed):
    tab = CS.calibration_table(constructed, "id").set_index(["model", "dataset"])
    for mid in MODELS:
        z, y = constructed["id"][mid].logits.astype(np.float64), constructed["id"][mid].targets
        fit, ev = train_test_split(np.arange(len(y)), train_size=0.5, stratify=y, random_state=0)
        fit, ev = np.sort(fit), np.sort(ev)
        T = _fit_T_by_hand(z[fit], y[fit])
        row = tab.loc[(mid, "id")]
        assert row["T_id"] == pytest.approx(T, rel=1e-4)
        assert row["n"] == len(ev)
        assert row["ece_before"] == pytest.approx(_ece_by_hand(_softmax(z[ev]), y[ev]), abs=1e-6)
        assert row["ece_after"] == pytest.approx(_ece_by_hand(_softmax(z[ev] / T), y[ev]), abs=1e-5)
        p = _softmax(z[ev] / T)
        assert row["nll_after"] == pytest.approx(-np.log(p[np.arange(len(ev)), y[ev]]).mean(), rel=1e-5)
        onehot = np.eye(z.shape[1])[y[ev]]
        assert row["brier_after"] == pytest.approx(((p - onehot) ** 2).sum(1).mean(), rel=1e-5)
        # the shift: the ID temperature unchanged, on all of the shift's rows
        zs, ys = constructed["shift"][mid].logits.astype(np.float64), constructed["shift"][mid].targets
        r = tab.loc[(mid, "shift")]
        assert r["T_id"] == row["T_id"] and r["n"] == len(ys)
        assert r["ece_after"] == pytest.approx(_ece_by_hand(_softmax(zs / T), ys), abs=1e-5)
        assert r["T_oracle"] == pytest.approx(_fit_T_by_hand(zs, ys), rel=1e-4)
        # a label subset: softmax and accuracy over its columns only
        zb, yb = constructed["subset"][mid].logits.astype(np.float64), constructed["subset"][mid].targets
        sub = [1, 3, 4]
        pos = np.searchsorted(sub, yb)
        r = tab.loc[(mid, "subset")]
        assert r["accuracy"] == pytest.approx((zb[:, sub].argmax(1) == pos).mean())
        assert r["ece_after"] == pytest.approx(_ece_by_hand(_softmax(zb[:, sub] / T), pos), abs=1e-5)
        # a label map (ObjectNet-style): each class the max of its columns, softmax over classes
        zm, ym = constructed["mapped"][mid].logits.astype(np.float64), constructed["mapped"][mid].targets
        proj = np.stack([zm[:, [0, 2]].max(1), zm[:, 5]], 1)
        r = tab.loc[(mid, "mapped")]
        assert r["accuracy"] == pytest.approx((proj.argmax(1) == ym).mean())
        assert r["ece_before"] == pytest.approx(_ece_by_hand(_softmax(proj), ym), abs=1e-5)
    assert set(tab["group"]) == {CLIP_ZEROSHOT, BASELINE}


def test_spaces_without_label_map_are_an_error():
    z, y = _world()
    rec = _record("timm:resnet18@random", "x", z, y, target_space="other")
    with pytest.raises(ValueError, match="no label_map"):
        CS.calibration_inputs(rec)
    with pytest.raises(ValueError, match="id_set 'nope'"):
        CS.calibration_table({"x": {"m": rec}}, "nope")


def test_reliability_bins_reproduce_the_ece():
    rng = np.random.default_rng(3)
    conf = np.r_[rng.uniform(0, 1, 500), [0.0, 1.0, 1 / 15, 2 / 15]]
    correct = rng.uniform(size=conf.size) < conf
    bins = CS.reliability_bins(conf, correct)
    assert bins["n"].sum() == conf.size
    ok = bins["n"] > 0
    assert (bins.loc[ok, "share"] * bins.loc[ok, "gap"].abs()).sum() == pytest.approx(
        metrics.ece(conf, correct), abs=1e-12)
    # an edge value belongs to the bin it closes: (lo, hi]
    assert bins.loc[0, "n"] == int(((conf >= 0) & (conf <= 1 / 15)).sum())


# ------------------------------------------------------------------ published files

@needs_mirror
def test_imagenetx_ece_recomputed_from_the_raw_csv():
    from imagenet_x.utils import get_annotation_path

    with open(get_annotation_path() / "filename_label.csv", newline="") as fh:
        label = {r["file_name"]: int(r["label"]) for r in csv.DictReader(fh)}
    table, bins = CS.published_imagenetx_table()
    assert len(table) >= 2 and set(table["model"]) >= {"ResNet50", "ViT"}
    for r in table.itertuples():
        path = MIRROR / "facebookresearch/imagenetx/model_predictions/base" / f"{r.model}.csv"
        sums = [[0, 0.0, 0] for _ in range(15)]  # n, sum confidence, sum correct
        n = 0
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                c = float(row["predicted_probability"])
                ok = int(row["predicted_class"]) == label[row["file_name"]]
                b = max(0, math.ceil(c * 15) - 1)
                sums[b][0] += 1
                sums[b][1] += c
                sums[b][2] += ok
                n += 1
        ece = sum(abs(s[2] - s[1]) for s in sums) / n
        assert r.n == n
        assert r.ece == pytest.approx(ece, abs=1e-9)
        assert r.accuracy == pytest.approx(sum(s[2] for s in sums) / n)
        got = bins[bins.model == r.model]["n"].tolist()
        assert got == [s[0] for s in sums]


@needs_mirror
def test_prompt_eces_read_from_the_json():
    import json

    raw = json.loads((MIRROR / "Pikus16/CLIP_Calibration/dataset_eces.json").read_text())
    p = CS.published_prompt_eces()
    assert len(p) == sum(len(v) for m in raw.values() for v in m.values())
    row = p[(p.dataset == "CIFAR100") & (p.model == "openclip:ViT-B-16@openai")]
    assert row["ece"].tolist() == raw["CIFAR100"]["ViT-B-16;openai"]
    assert set(row["source"]) == {"WIT"}
    cov = CS.published_coverage()
    assert cov.loc[cov.per_sample, "clip_models"].sum() == 0  # no per-sample CLIP confidences


# ------------------------------------------------------------------ claim rules on hand-built tables

def _table(clip_ece, std_ece, datasets=("id", "s1")):
    rows = []
    for d in datasets:
        for i, v in enumerate(clip_ece):
            rows.append({"model": f"c{i}", "dataset": d, "group": CLIP_ZEROSHOT, "ece_before": v})
        for i, v in enumerate(std_ece):
            rows.append({"model": f"s{i}", "dataset": d, "group": BASELINE, "ece_before": v})
    return pd.DataFrame(rows)


def test_not_better_rule():
    better = _table([0.01, 0.02, 0.015], [0.10, 0.12, 0.11])
    r = CS.assess_not_better(better, "x", n_boot=200)
    assert r["verdict"] == claims.NOT_REPRODUCED and "better on 2 of 2" in r["detail"]
    mixed = pd.concat([better[better.dataset == "id"],
                       _table([0.2, 0.25, 0.22], [0.1, 0.12, 0.11], datasets=("s1",))])
    r = CS.assess_not_better(mixed, "x", n_boot=200)
    assert r["verdict"] == claims.REPRODUCED and "worse on 1" in r["detail"]
    r = CS.assess_not_better(_table([0.1], [0.1, 0.2]), "x")
    assert r["verdict"] == claims.NOT_TESTABLE


def test_source_and_quantity_rules():
    df = pd.DataFrame({"model": [f"m{i}" for i in range(8)], "group": CLIP_ZEROSHOT,
                       "source": ["A"] * 4 + ["B"] * 4,
                       "samples": [1e4, 3e4, 1e5, 3e5] * 2,
                       "ece_before": [0.10, 0.08, 0.06, 0.04, 0.20, 0.19, 0.21, 0.20]})
    r = CS.assess_source(df, "x", n_boot=200)
    assert r["verdict"] == claims.REPRODUCED and "minus" in r["evidence"]
    same = df.assign(ece_before=[0.1, 0.2, 0.15, 0.12] * 2)
    assert CS.assess_source(same, "x", n_boot=200)["verdict"] == claims.NOT_REPRODUCED
    q = CS.assess_quantity(df, "x", n_boot=200)
    assert q["verdict"] == claims.REPRODUCED and "1 of 2 sources" in q["detail"]
    one = df.assign(samples=1e5)
    assert CS.assess_quantity(one, "x")["verdict"] == claims.NOT_TESTABLE
    assert CS.assess_source(df[df.source == "A"], "x")["verdict"] == claims.NOT_TESTABLE


def test_transfer_rule():
    rows = []
    for d, excess in (("s1", 0.001), ("s2", 0.002), ("s3", 0.05)):
        for i in range(4):
            rows.append({"model": f"c{i}", "dataset": d, "is_id": False, "group": CLIP_ZEROSHOT,
                         "ece_before": 0.1, "ece_after": 0.03 + excess + i * 1e-4,
                         "ece_oracle": 0.03 + i * 1e-4})
    t = pd.DataFrame(rows)
    r = CS.assess_transfer(t, "x", margin=0.02, share=0.6, n_boot=200)
    assert r["verdict"] == claims.REPRODUCED and "2 of 3" in r["detail"]
    r = CS.assess_transfer(t, "x", margin=0.02, share=1.0, n_boot=200)
    assert r["verdict"] == claims.NOT_REPRODUCED


def test_own_trend_rule():
    acc = np.linspace(0.3, 0.8, 6)
    std = pd.DataFrame({"model": [f"s{i}" for i in range(6)], "group": BASELINE,
                        "accuracy": acc, "ece_after": 0.2 - 0.2 * acc})
    below = pd.DataFrame({"model": [f"c{i}" for i in range(4)], "group": CLIP_ZEROSHOT,
                          "accuracy": acc[:4], "ece_after": 0.2 - 0.2 * acc[:4] - 0.05})
    t = pd.concat([std, below]).assign(is_id=False, dataset="s1")
    r = CS.assess_own_trend(t, "x", n_boot=200)
    assert r["verdict"] == claims.REPRODUCED and "below" in r["detail"]
    on = t.assign(ece_after=0.2 - 0.2 * t["accuracy"] + np.r_[np.zeros(6), [0.01, -0.01, 0.01, -0.01]])
    assert CS.assess_own_trend(on, "x", n_boot=200)["verdict"] == claims.NOT_REPRODUCED


def test_prompt_claims_rule():
    rows = []
    for arch in ("B", "L"):
        for src, tag, v in (("WIT", "openai", 0.08), ("LAION-2B", "laion2b_x", 0.03),
                            ("LAION-400M", "laion400m_x", 0.02)):
            for k in range(3):
                rows.append({"dataset": "D", "model": f"openclip:{arch}@{tag}", "arch": arch,
                             "tag": tag, "group": CLIP_ZEROSHOT, "source": src,
                             "samples": 1.0, "prompt": k, "ece": v + 0.001 * k + (arch == "L") * 0.002})
    src, qty = CS.assess_prompt_claims(pd.DataFrame(rows), "pub", n_boot=200)
    assert src["claim_id"] == "calib-source" and src["verdict"] == claims.REPRODUCED
    assert qty["claim_id"] == "calib-quantity" and qty["verdict"] == claims.REPRODUCED
    assert "LAION-2B minus LAION-400M at matched architectures (B, L)" in qty["evidence"]


# ------------------------------------------------------------------ the chapter's tables and verdict rows

def test_fit_fraction_is_the_chapters_default_and_the_prompts_split():
    from clipsafety.book import toc

    assert toc.get_chapter("calibration").parameters()["fit_fraction"]["default"] == CS.FIT_FRACTION
    y = np.repeat(np.arange(4), 10)
    fit, ev = CS.temperature_split(y)  # the default fraction: half of every class
    ref_fit, _ = train_test_split(np.arange(len(y)), train_size=0.5, stratify=y, random_state=0)
    assert sorted(fit) == sorted(ref_fit) and len(ev) == 20
    src = (ROOT / "analyses" / "prompts.py").read_text()
    assert "calib_study.FIT_FRACTION" in src and "targets, 0.5" not in src


def _cal_table():
    rows = []
    spec = [("c1", CLIP_ZEROSHOT, 0.6, 1.5), ("c2", CLIP_ZEROSHOT, 0.7, 0.8),
            ("s1", BASELINE, 0.8, 1.2), ("s2", BASELINE, 0.5, 1.1)]
    for m, g, acc, T in spec:
        for d, is_id in (("id", True), ("sh", False)):
            rows.append({"model": m, "dataset": d, "is_id": is_id, "group": g, "T_id": T,
                         "accuracy": acc - (0 if is_id else 0.2), "ece_before": 0.1,
                         "ece_after": 0.05 + 0.01 * (m == "c1"), "ece_oracle": 0.04})
    return pd.DataFrame(rows)


def test_model_counts_excess_and_id_temperatures():
    t = _cal_table()
    assert CS.model_counts(t)["models"].to_dict() == {BASELINE: 2, CLIP_ZEROSHOT: 2}
    ex = CS.excess_ece(t)
    assert list(ex["dataset"].unique()) == ["sh"]
    assert ex.set_index("model")["excess_ece"].to_dict() == pytest.approx(
        {"c1": 0.02, "c2": 0.01, "s1": 0.01, "s2": 0.01})
    assert CS.id_temperatures(t, CLIP_ZEROSHOT).tolist() == [1.5, 0.8]
    assert CS.id_temperatures(t, BASELINE).tolist() == [1.2, 1.1]


def test_reliability_model_ids_pick_the_most_accurate_per_group():
    t = _cal_table()
    # per group (sorted) the model with the highest ID accuracy: c2 (0.7) and s1 (0.8)
    assert CS.reliability_model_ids(t) == ["c2", "s1"]
    with pytest.raises(ValueError, match=r"\['zoo:nope'\] are not among"):
        CS.reliability_model_ids(t, ["zoo:nope"], ["c1", "c2"])
    assert CS.reliability_model_ids(t, ["zoo:clip-resnet-wit-10k"],
                                    ["zoo:clip-resnet-wit-10k"]) == ["zoo:clip-resnet-wit-10k"]


def _group_means():
    rows = []
    for d in ("id", "sh"):
        for m, k in (("ece", 0.1), ("nll", 1.0)):
            for s, f in (("before", 1.0), ("after", 0.5), ("oracle", 0.25)):
                for g, gk in ((CLIP_ZEROSHOT, 1.0), (BASELINE, 2.0)):
                    if d == "sh" and g == BASELINE and m == "ece" and s == "after":
                        continue  # a missing mean: NaN in the summary
                    rows.append({"dataset": d, "metric": m, "scaling": s, "group": g,
                                 "mean": k * f * gk})
    return pd.DataFrame(rows)


def test_group_means_wide_and_condition_summary():
    gm = _group_means()
    w = CS.group_means_wide(gm)
    assert list(w.index) == [("id", CLIP_ZEROSHOT), ("id", BASELINE), ("sh", CLIP_ZEROSHOT),
                             ("sh", BASELINE)]
    assert set(w.columns) == {("ece", "before"), ("ece", "after"), ("nll", "before"),
                              ("nll", "after")}
    assert w.loc[("id", BASELINE), ("nll", "after")] == pytest.approx(1.0)
    assert np.isnan(w.loc[("sh", BASELINE), ("ece", "after")])
    s = CS.condition_summary(gm, ["id", "sh", "nowhere"], BASELINE).set_index("dataset")
    assert s.loc["id"].to_dict() == pytest.approx(
        {"clip_ece_before": 0.1, "clip_ece_after": 0.05, "ref_ece_before": 0.2,
         "ref_ece_after": 0.1, "clip_nll_before": 1.0, "clip_nll_after": 0.5})
    assert np.isnan(s.loc["sh", "ref_ece_after"]) and s.loc["sh", "ref_ece_before"] == 0.2
    assert s.loc["nowhere"].isna().all()


def test_reliability_table_reads_the_eval_half_before_and_after(constructed):
    tab = CS.calibration_table(constructed, "id")
    mid = MODELS[0]
    rel = CS.reliability_table(constructed["id"], tab, [mid], n_bins=10)
    T = float(tab.loc[(tab.model == mid) & tab.is_id, "T_id"].iloc[0])
    assert list(rel["reading"].unique()) == ["before scaling", f"T = {T:.2f}"]
    assert set(rel["panel"]) == {"ViT-B-32@random"} and set(rel["model"]) == {mid}
    z, y = constructed["id"][mid].logits.astype(np.float64), constructed["id"][mid].targets
    _, ev = train_test_split(np.arange(len(y)), train_size=0.5, stratify=y, random_state=0)
    ev = np.sort(ev)
    for reading, temp in (("before scaling", 1.0), (f"T = {T:.2f}", T)):
        part = rel[rel.reading == reading]
        p = _softmax(z[ev] / temp)
        assert part["n"].sum() == len(ev)
        ece = np.nansum(part["share"] * part["gap"].abs())
        assert ece == pytest.approx(_ece_by_hand(p, y[ev], n_bins=10), abs=1e-5)


def test_assess_live_claims_runs_the_five_rules_in_order():
    t = _table([0.01, 0.02, 0.015], [0.10, 0.12, 0.11]).assign(
        is_id=lambda d: d.dataset == "id", accuracy=0.5, ece_after=0.05, ece_oracle=0.04,
        source=lambda d: np.where(d.model.str[-1].isin(["0", "1"]), "A", "B"), samples=1e4)
    rows = CS.assess_live_claims(t, "x", "id", reference=BASELINE, transfer_margin=0.02,
                                 transfer_share=0.75, n_boot=100, seed=3)
    idt = t[t.is_id]
    where = "ID ECE before scaling on id"
    assert rows == [CS.assess_not_better(t, "x", reference=BASELINE, n_boot=100, seed=3),
                    CS.assess_source(idt, "x", n_boot=100, seed=3, where=where),
                    CS.assess_quantity(idt, "x", n_boot=100, seed=3, where=where),
                    CS.assess_transfer(t, "x", margin=0.02, share=0.75, n_boot=100, seed=3),
                    CS.assess_own_trend(t, "x", reference=(BASELINE,), n_boot=100, seed=3)]
    assert [r["claim_id"] for r in rows] == list(CS.CLAIMS)
    # CLIP's ECE is below the standard models' on both conditions: "not better" does not hold
    assert rows[0]["verdict"] == claims.NOT_REPRODUCED
    # the transfer: excess ECE 0.01 on the one shift, below the 0.02 margin
    assert rows[3]["verdict"] == claims.REPRODUCED


def test_with_world_settings_notes_the_built_in_claims_only():
    rows = [{"claim_id": cid, "evidence": "e"} for cid in CS.CLAIMS]
    ws = pd.DataFrame({"setting": ["p_x", "q"], "labelled": [0.0, "a"], "wit-like": [0.5, "b"],
                       "laion-like": [0.9, "c"]})
    out = CS.with_world_settings(rows, ws)
    noted = [r["claim_id"] for r in out if r["evidence"] != "e"]
    assert noted == ["calib-source", "calib-quantity"]
    assert ("(p_x: labelled 0.0, wit-like 0.5, laion-like 0.9; q: labelled a, wit-like b, "
            "laion-like c)") in out[1]["evidence"]
    assert out[1]["evidence"].startswith("e. Built into the world (not a finding): ")


def _coverage():
    return pd.DataFrame({"file": ["a.csv", "b.csv", "p.json"], "registered": [True, False, True],
                         "models": ["x", "y", "13 CLIPs"], "clip_models": [0, 0, 13],
                         "datasets": ["ImageNet val", "", "C10, C100"],
                         "per_sample": [True, False, False]})


def test_published_gaps_and_claims():
    text, missing = CS.published_gaps(_coverage())
    assert missing == ["b.csv"]
    assert text.startswith("the registered per-sample confidences (1 files) hold 0 CLIP models, "
                           "and the only published CLIP ECEs (13 CLIPs, LeVine et al.) are on "
                           "C10, C100, not on ImageNet")
    off = CS.published_claims("pub")
    assert [r["verdict"] for r in off] == [claims.NOT_TESTABLE] * 5
    assert all("published=False" in r["detail"] + r["evidence"] for r in off)
    rows = CS.published_claims("pub", _coverage(), pd.DataFrame())
    assert [r["claim_id"] for r in rows] == ["calib-not-better", "calib-transfer",
                                             "calib-own-trend", "calib-source", "calib-quantity"]
    assert {r["verdict"] for r in rows} == {claims.NOT_TESTABLE}
    assert "LeVine et al.'s ECEs are not available here" in rows[3]["detail"] + rows[3]["evidence"]


def _prompt_eces():
    return pd.DataFrame({"dataset": ["D"] * 4 + ["E"] * 2,
                         "model": ["m1", "m1", "m2", "m2", "m1", "m1"],
                         "source": ["WIT", "WIT", "LAION-2B", "LAION-2B", "WIT", "WIT"],
                         "group": CLIP_ZEROSHOT, "ece": [0.1, 0.3, 0.05, 0.07, 0.2, 0.2]})


def test_prompt_ece_tables_by_hand():
    p = _prompt_eces()
    means = CS.prompt_ece_means(p).set_index(["dataset", "model"])["ece"]
    assert means.to_dict() == pytest.approx({("D", "m1 (WIT)"): 0.2, ("D", "m2 (LAION-2B)"): 0.06,
                                             ("E", "m1 (WIT)"): 0.2})
    span = CS.prompt_ece_span(p).set_index(["dataset", "model"])
    assert span.loc[("D", "m1"), "span"] == pytest.approx(0.2)
    assert span.loc[("D", "m2"), ["mean", "min", "max"]].tolist() == pytest.approx([0.06, 0.05, 0.07])
    assert span.loc[("E", "m1"), "span"] == 0
    by = CS.prompt_ece_by_source(p)
    assert list(by.index) == ["LAION-2B", "WIT"]
    assert by["WIT"] == pytest.approx(0.2) and by["LAION-2B"] == pytest.approx(0.06)


# ------------------------------------------------------------------ the chapter

sys.path.insert(0, str(Path(__file__).parent))


def _run(tmp, **params):
    from test_chapters_factors_shape import _charts, run_chapter

    text = run_chapter("calibration", tmp, **params)
    return text, _charts(text)


@pytest.mark.book
@needs_mirror
def test_chapter_on_published_data_only(tmp_path):
    """Real models without a data_root: no inference, the published sections and the claims."""
    text, n_charts = _run(tmp_path, models=["timm:resnet18@random"], n_boot=100)
    assert "no `data_root` was given" in text and "make chapter NAME=calibration" in text
    assert "Finding (published, ImageNet-X)" in text and "ResNet-50 (supervised)" in text
    assert "What no published data can test" in text and "hold 0 CLIP models" in text
    assert "published upstream results (LeVine et al.)" in text
    assert n_charts >= 2


@pytest.mark.slow
@pytest.mark.book
def test_chapter_real_path_on_fixture_folders(tmp_path):
    import fixtures_real as F

    root = tmp_path / "data"
    F.make_imagenet_val(root, classes=(0, 1, 2, 3), per_class=3)
    F.make_imagenet_v2(root, classes=(0, 1, 2), per_class=2)
    F.make_wnid_dataset(root, "imagenet-r", F.timm_subset("r")[:3])
    F.make_wnid_dataset(root, "imagenet-a", F.timm_subset("a")[:3])
    F.make_wnid_dataset(root, "imagenet-sketch", (0, 1, 2))
    F.make_objectnet(root)
    text, n_charts = _run(tmp_path, models=["timm:resnet18@random"], data_root=str(root),
                          store=str(tmp_path / "store"), device="cpu", batch_size=8, n_boot=50,
                          published=False)
    for d in ("imagenet:val", "imagenet:v2", "imagenet:r", "imagenet:a", "imagenet:sketch",
              "objectnet"):
        assert f"`{d}`" in text
    assert "This run used real models" in text and "real models on real data" in text
    assert n_charts >= 3


@pytest.mark.slow
@pytest.mark.full
@pytest.mark.book
@pytest.mark.skipif(not (ROOT / "data" / "zoo" / "catalog.csv").is_file(), reason="zoo not built")
def test_chapter_at_defaults():
    """The chapter's default run (the zoo on the synthetic world's nine conditions); the store
    is the default one ($CLIPSAFETY_STORE or .cache/store), so a warm store makes it fast."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        text, n_charts = _run(Path(tmp))
    assert "(zoo), ID set `synth:id-test` and 8 shifts" in text
    assert n_charts >= 5
    for c in CS.CLAIMS.values():
        assert c.text in text
    assert text.count("synthetic world + zoo") >= len(CS.CLAIMS)
    assert "Built into the synthetic world" in text
    assert "Finding (synthetic world + zoo)" in text
