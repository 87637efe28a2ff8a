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

ACC = np.linspace(0.3, 0.8, 6)


def _line(acc):
    return 0.25 - 0.2 * np.asarray(acc)


def _acc_table(offsets, n_clip=5, noise=0.0, seed=0, spread=0.0):
    """Per condition (offsets: {dataset: CLIP's ECE above the standard line}): 6 standard
    models on the line ECE = 0.25 - 0.2 acc, ``n_clip`` CLIPs at other accuracies off it."""
    rng = np.random.default_rng(seed)
    rows = []
    for d, off in offsets.items():
        for i, a in enumerate(ACC):
            rows.append({"model": f"s{i}", "dataset": d, "group": BASELINE, "accuracy": a,
                         "ece_before": _line(a) + rng.normal(0, noise)})
        for i, a in enumerate(np.linspace(0.35, 0.75, n_clip)):
            rows.append({"model": f"c{i}", "dataset": d, "group": CLIP_ZEROSHOT, "accuracy": a,
                         "ece_before": _line(a) + off + spread * (-1) ** i
                         + rng.normal(0, noise)})
    t = pd.DataFrame(rows)
    return t.assign(is_id=t["dataset"] == list(offsets)[0], n_classes=10)


def test_not_better_rule_reproduced_contradicted_inconclusive():
    r = CS.assess_not_better(_acc_table({"id": -0.05, "s1": +0.05}), "x", n_boot=200)
    assert r.verdict == claims.REPRODUCED and r.estimate == 1  # worse on one of two
    assert r.correction.startswith("Bonferroni over 2") and r.unit == claims.MODELS
    assert r.n == (5, 6) and r.sides == ("zero-shot CLIP", BASELINE)
    assert "s1 +5.0 [+5.0, +5.0]" in r.reason and "id -5.0" in r.reason
    r = CS.assess_not_better(_acc_table({"id": -0.05, "s1": -0.03}), "x", n_boot=200)
    assert r.verdict == claims.CONTRADICTED  # better (at equal accuracy) on every condition
    r = CS.assess_not_better(_acc_table({"id": 0.0, "s1": 0.0}, n_clip=6, spread=0.03), "x",
                                n_boot=200)
    assert r.verdict == claims.INCONCLUSIVE
    # one condition: the interval rule, no correction; CLIP 5 points above the line
    one = CS.assess_not_better(_acc_table({"id": 0.05}), "x", n_boot=200)
    assert one.verdict == claims.REPRODUCED and one.correction == "none"
    assert one.estimate == pytest.approx(5.0) and one.scale == "points"
    assert CS.assess_not_better(_acc_table({"id": 0.05}, n_clip=1), "x").verdict == claims.NOT_TESTABLE


def test_not_better_compares_at_equal_accuracy():
    """CLIPs on the standard models' line but less accurate have a higher raw mean ECE; at equal
    accuracy they are neither better nor worse, so the rule does not call them worse."""
    t = _acc_table({"id": 0.0}, noise=0.002)
    t.loc[t.group == CLIP_ZEROSHOT, "accuracy"] = np.linspace(0.3, 0.45, 5)
    t.loc[t.group == CLIP_ZEROSHOT, "ece_before"] = _line(np.linspace(0.3, 0.45, 5))
    raw = t[t.group == CLIP_ZEROSHOT].ece_before.mean() - t[t.group == BASELINE].ece_before.mean()
    assert raw > 0.03
    assert CS.assess_not_better(t, "x", n_boot=200).verdict != claims.REPRODUCED


def _clips(offsets, samples=None):
    rows = []
    for src, off in offsets.items():
        for i, a in enumerate(np.linspace(0.3, 0.8, 6)):
            rows.append({"model": f"{src}{i}", "group": CLIP_ZEROSHOT, "source": src,
                         "accuracy": a, "samples": (samples or {}).get((src, i), 1e5),
                         "ece_before": _line(a) + off + 0.002 * (-1) ** i})
    return pd.DataFrame(rows)


def test_source_rule_controls_for_accuracy():
    r = CS.assess_source(_clips({"A": 0.04, "B": 0.0}), "x", n_boot=200)
    assert r.verdict == claims.REPRODUCED and r.estimate == pytest.approx(4.0, abs=0.3)
    assert r.n == (6, 6) and r.sides == ("A", "B") and r.claim.direction == "differs"
    # B only less accurate, on A's line: raw means differ by 4 points, at equal accuracy none
    same = _clips({"A": 0.0, "B": 0.0})
    same.loc[same.source == "B", "accuracy"] -= 0.2
    same.loc[same.source == "B", "ece_before"] = _line(same.loc[same.source == "B", "accuracy"])
    assert CS.assess_source(same, "x", n_boot=200).verdict == claims.INCONCLUSIVE
    assert CS.assess_source(_clips({"A": 0.0}), "x").verdict == claims.NOT_TESTABLE


def test_quantity_rule_is_directional():
    sizes = {("A", i): (1e4 if i % 2 else 1e6) for i in range(6)}
    worse = _clips({"A": 0.0}, sizes)
    worse.loc[worse.samples < 1e6, "ece_before"] += 0.05
    r = CS.assess_quantity(worse, "x", n_boot=200)
    assert r.verdict == claims.REPRODUCED and r.sides == ("less data", "most data")
    assert r.n == (3, 3) and r.estimate == pytest.approx(5.0, abs=0.5)
    better = _clips({"A": 0.0}, sizes)
    better.loc[better.samples < 1e6, "ece_before"] -= 0.05
    assert CS.assess_quantity(better, "x", n_boot=200).verdict == claims.CONTRADICTED
    assert CS.assess_quantity(_clips({"A": 0.0}), "x").verdict == claims.NOT_TESTABLE


def _after(off):
    rows = []
    for d in ("s1", "s2"):
        for g, accs, o in (("standard", np.linspace(0.3, 0.8, 5), 0.0),
                           ("more-data", np.linspace(0.4, 0.9, 4), 0.0),
                           (CLIP_ZEROSHOT, np.linspace(0.35, 0.75, 5), off)):
            for i, a in enumerate(accs):
                rows.append({"model": f"{g}{i}", "group": g, "dataset": d, "is_id": False,
                             "accuracy": a, "ece_after": _line(a) + o + 0.002 * (-1) ** i})
    return pd.DataFrame(rows)


def test_after_scaling_rule_against_the_other_groups():
    r = CS.assess_after_scaling(_after(-0.04), "x", n_boot=200)
    assert r.verdict == claims.REPRODUCED and r.n == (5, 9)
    assert "more-data, standard" in r.effect
    assert CS.assess_after_scaling(_after(+0.04), "x", n_boot=200).verdict == claims.CONTRADICTED
    assert CS.assess_after_scaling(_after(0.0), "x", n_boot=200).verdict == claims.INCONCLUSIVE


def _calib_table(gap_clip, gap_std, acc_shift=None):
    """A calibration table of 5 CLIPs and 6 standard models on an ID set and one shift, with
    each group's mean confidence ``gap`` (fraction) from its accuracy on the ID set."""
    t = _acc_table({"id": 0.02, "s1": 0.02}, n_clip=6)
    t["mean_confidence_before"] = t["accuracy"] + np.where(t.group == CLIP_ZEROSHOT, gap_clip,
                                                           gap_std)
    s1 = t.dataset == "s1"
    t.loc[s1, "accuracy"] = 0.9 * t.loc[s1, "accuracy"] if acc_shift is None else acc_shift
    return t.assign(ece_after=t["ece_before"], source=np.where(t.model.str[-1] < "3", "A", "B"),
                    samples=np.where(t.model.str[-1].isin(["0", "2", "4"]), 1e4, 1e5))


#: a real regime like C-OOD's: zero-shot CLIPs -1 to +5.8 points, ImageNet models -13.6 to +6.2
REAL = pd.DataFrame({"group": [CLIP_ZEROSHOT] * 3 + ["standard"] * 3,
                     "conf_gap": [-1.0, 2.0, 5.8, -13.6, -4.0, 6.2]})


def test_world_rows_are_gated_by_the_measured_regime_and_chance():
    under = _calib_table(-0.17, -0.07)
    clip_p, std_p = CS.regime_premise(under, REAL)
    assert not clip_p.ok and std_p.ok and "world gap median -17.0 points" in clip_p.measured
    rows = CS.assess_live_claims(under, claims.WORLD, "id", world=True, real=REAL,
                                 n_boot=100)
    assert [j.claim.claim_id for j in rows] == list(CS.CLAIMS)
    assert {j.verdict for j in rows} == {claims.PREMISE_NOT_MET}
    assert "confidence regime" in rows[0].premise and np.isfinite(rows[0].estimate)
    # the real regime: the verdicts are the rules', the source claim built into the world
    real = _calib_table(0.02, -0.04)
    assert all(p.ok for p in CS.regime_premise(real, REAL))
    rows = CS.assess_live_claims(real, claims.WORLD, "id", world=True, real=REAL,
                                 settings=CS.world_source_settings(), n_boot=100)
    assert rows[0].verdict == claims.REPRODUCED and rows[1].verdict == claims.BUILT_IN
    assert "p_misaligned" in rows[1].reason
    assert not CS.regime_premise(real, None)[0].ok  # no real range: the regime is unchecked
    # near chance (accuracy 0.15, chance 0.1): the shift is left out, named in the premise
    near = _calib_table(0.02, -0.04, acc_shift=0.15)
    ok = CS.chance_ok(near, [CLIP_ZEROSHOT, BASELINE])
    assert ok.set_index("dataset")["ok"].to_dict() == {"id": True, "s1": False}
    rows = CS.assess_live_claims(near, claims.REAL, "id", n_boot=100)
    assert rows[0].correction == "none"  # one condition left
    assert "left out: s1 (chance 10%" in rows[0].premise


def _cood(clip_gap, n_std=30):
    acc = np.linspace(0.6, 0.85, n_std)
    rows = [{"checkpoint": f"cood/m{i}", "group": "standard", "id_acc": a,
             "conf_gap": -4.0 + 10 * (a - 0.7) + 0.3 * (-1) ** i, "softmax_ok": True}
            for i, a in enumerate(acc)]
    rows += [{"checkpoint": f"openai/c{i}", "group": CLIP_ZEROSHOT, "id_acc": a,
              "conf_gap": -4.0 + 10 * (a - 0.7) + clip_gap, "softmax_ok": True}
             for i, a in enumerate(np.linspace(0.6, 0.76, 9))]
    rows += [{"checkpoint": f"cood/ft{i}", "group": "clip-ft-direct", "id_acc": 0.8,
              "conf_gap": np.nan, "softmax_ok": False} for i in range(7)]
    return pd.DataFrame(rows)


def test_cood_gap_rule_and_flagged_rows():
    j, src, qty, after = CS.assess_cood(_cood(+14.0), "pub (C-OOD)", n_boot=200)
    assert j.verdict == claims.REPRODUCED and j.n == (9, 30)  # the 7 flagged rows left out
    assert "7 fine-tuned CLIP rows left out" in j.effect and "lower bound on ECE" in j.effect
    assert "openai/c0" in j.data and not any("ft" in d for d in j.data)
    assert {src.verdict, qty.verdict, after.verdict} == {claims.NOT_TESTABLE}
    # signed gaps near 0: |gap| of the CLIPs below the line, better calibrated on the one condition
    assert CS.assess_cood(_cood(+4.0), "p", n_boot=200)[0].verdict == claims.CONTRADICTED


def test_prompt_claims_need_accuracies():
    rows = []
    for arch in ("B", "L"):
        for src, tag, v in (("WIT", "openai", 0.08), ("LAION-2B", "laion2b_x", 0.03),
                            ("LAION-400M", "laion400m_x", 0.02)):
            for k in range(3):
                rows.append({"dataset": "D", "model": f"openclip:{arch}@{tag}", "arch": arch,
                             "tag": tag, "group": CLIP_ZEROSHOT, "source": src,
                             "samples": 1.0, "prompt": k, "ece": v + 0.001 * k + (arch == "L") * 0.002})
    nb, src, qty, after = CS.assess_prompt_claims(pd.DataFrame(rows), "pub", n_boot=200)
    assert nb.verdict == after.verdict == claims.NOT_TESTABLE
    assert src.verdict == qty.verdict == claims.NOT_TESTABLE  # a published source: not a world premise
    assert "no accuracies" in qty.reason
    # the measured numbers kept: LAION-400M minus LAION-2B = -1 point (less data, *better*)
    assert qty.estimate == pytest.approx(-1.0) and qty.sides == ("LAION-400M", "LAION-2B")


def test_published_claims_sources_and_off():
    off = CS.published_claims("pub")
    assert [j.verdict for j in off] == [claims.NOT_TESTABLE] * len(CS.CLAIMS)
    rows = CS.published_claims(claims.PUBLISHED, _cood(8.0), None, n_boot=100)
    assert {j.source for j in rows} == {f"{claims.PUBLISHED} (C-OOD)"}
    assert all(j.evidence_kind == claims.PUBLISHED for j in rows)


@needs_mirror
def test_cood_gap_and_real_range_against_the_raw_csv():
    from clipsafety.published_models import cood_models

    path = MIRROR / "mdabbah" / "COOD_benchmarking" / "paper_results" / "all_paper_results.csv"
    first = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            if r["confidence function"] == "softmax":
                first.setdefault(r["model name"], (float(r["id-acc"]), float(r["id_avg_conf"])))
    gaps = {m: 100 * (c - a) for m, (a, c) in first.items()}
    zs = [g for m, g in gaps.items() if m.startswith("CLIP_") and "finetuned" not in m]
    inet = [g for m, g in gaps.items() if not m.startswith("CLIP_")]
    ft_conf = [c for m, (a, c) in first.items() if m.startswith("CLIP_finetuned")]
    assert len(zs) == 9 and len(ft_conf) == 7 and max(ft_conf) < 0.01
    from clipsafety.premises import real_gap_ranges

    rr = real_gap_ranges(cood_models(), {"c": CLIP_ZEROSHOT, "s": "standard"})
    assert rr["c"][:2] == pytest.approx((min(zs), max(zs))) and rr["c"][3] == 9
    assert rr["s"][3] == len(inet) and rr["s"][2] == pytest.approx(float(np.median(inet)))
    j = CS.assess_cood(cood_models(), "pub", n_boot=100)[0]
    assert j.n == (9, len(inet))


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


def _coverage():
    return pd.DataFrame({"file": ["a.csv", "b.csv", "p.json"], "registered": [True, False, True],
                         "models": ["x", "y", "13 CLIPs"], "clip_models": [0, 0, 13],
                         "datasets": ["ImageNet val", "", "C10, C100"],
                         "per_sample": [True, False, False]})


def test_published_gaps():
    text, missing = CS.published_gaps(_coverage())
    assert missing == ["b.csv"]
    assert text.startswith("the registered per-sample confidences (1 files) hold 0 CLIP models, "
                           "and the only published CLIP ECEs (13 CLIPs, LeVine et al.) are on "
                           "C10, C100, not on ImageNet")


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
    assert "Finding (published, C-OOD)" in text and "lower bound on ECE" in text
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
    assert "Built into the synthetic world" in text and "premise not met" in text
    assert "Finding (synthetic world + zoo)" in text


def test_every_judgement_follows_its_rule_and_names_its_fields():
    """The calibration rows pass the book's rule check (claims.problems), name their unit, n per
    side and (counts over conditions) a Bonferroni correction; each claim states its test."""
    rows = (CS.assess_live_claims(_calib_table(0.02, -0.04), claims.WORLD, "id", world=True,
                                  real=REAL, settings=CS.world_source_settings(), n_boot=100)
            + CS.published_claims(claims.PUBLISHED, _cood(14.0), None, n_boot=100))
    table = claims.claims_table(rows)
    assert claims.problems(table, "calibration") == []
    tested = table[table["verdict"].isin(claims.TESTED)]
    assert len(tested) >= 2 and (tested["unit"] == claims.MODELS).all()
    assert all(len(n) == 2 for n in tested["n"])
    assert all(c.test and c.compares and c.conditioned_on and c.home == "calibration"
               for c in CS.CLAIMS.values())
    assert CS.CLAIMS["calib-not-better"].section == "abstract"
    assert CS.CLAIMS["calib-quantity"].direction == "greater"  # less data, worse: directional
    assert CS.CLAIMS["calib-after-scaling"].direction == "less"  # CLIP better than the others
