"""The OOD study: scores, detection tables, published results and claim rules, against
independent references (scikit-learn, hand computations, the raw published files)."""

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clipsafety.records import PredictionRecord
from clipsafety.studies import ood
from sklearn.metrics import average_precision_score, roc_auc_score

MIRROR = Path(os.environ.get("CLIPSAFETY_MIRROR")
              or Path(__file__).resolve().parents[2] / "shared" / "external")
needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason="no published-data mirror here")


@pytest.fixture(autouse=True)
def _mirror(monkeypatch):
    if MIRROR.is_dir():
        monkeypatch.setenv("CLIPSAFETY_MIRROR", str(MIRROR))


def _rec(logits, model="zoo:m", clip_scale=None, targets=None):
    policy = {"kind": "clip", "scale": clip_scale, "bias": None} if clip_scale else {"kind": "classifier"}
    n = len(logits)
    return PredictionRecord(logits=np.asarray(logits, np.float32),
                            targets=np.asarray(targets if targets is not None else [-1] * n),
                            ids=np.array([f"{model}/{i}" for i in range(n)]),
                            manifest={"model_id": model, "logit_policy": policy, "label_subset": None})


def _softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def test_scores_by_hand():
    rng = np.random.default_rng(0)
    cos = rng.uniform(-0.2, 0.4, (50, 6))
    rec = _rec(cos * 50.0, clip_scale=50.0)
    np.testing.assert_allclose(ood.record_scores(rec, "mcm"), _softmax(cos).max(1), rtol=1e-6)
    np.testing.assert_allclose(ood.record_scores(rec, "msp"), _softmax(cos * 50).max(1), rtol=1e-5)
    np.testing.assert_allclose(ood.record_scores(rec, "maxlogit"), (cos * 50).max(1), rtol=1e-6)
    np.testing.assert_allclose(ood.record_scores(rec, "energy"),
                               np.log(np.exp(cos * 50).sum(1)), rtol=1e-5)
    ext = np.c_[cos, rng.uniform(-0.2, 0.4, (50, 4))]
    e = np.exp(ext / 0.01)
    np.testing.assert_allclose(ood.neglabel(ext, 6), e[:, :6].sum(1) / e.sum(1), rtol=1e-9)
    np.testing.assert_allclose(ood.record_scores(rec, "neglabel", neg_record=_rec(ext * 50, clip_scale=50.0)),
                               e[:, :6].sum(1) / e.sum(1), rtol=1e-4)
    with pytest.raises(ValueError, match="zero-shot CLIP"):
        ood.record_scores(_rec(cos), "mcm")
    with pytest.raises(ValueError, match="negative label"):
        ood.neglabel(cos, 6)


def test_detection_table_matches_sklearn():
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 4, 300)
    id_logits = rng.normal(0, 1, (300, 4))
    id_logits[np.arange(300), targets] += 2.0
    ood_logits = rng.normal(0, 1, (200, 4))
    recs_id = {"timm:resnet18@random": _rec(id_logits, "timm:resnet18@random", targets=targets)}
    recs_ood = {"set-a": {"timm:resnet18@random": _rec(ood_logits, "timm:resnet18@random")}}
    t = ood.detection_table(recs_id, recs_ood)
    row = t.iloc[0]
    s_id, s_ood = _softmax(id_logits).max(1), _softmax(ood_logits).max(1)
    y = np.r_[np.ones(300), np.zeros(200)]
    s = np.r_[s_id, s_ood]
    assert row.score == "msp" and row.group == "standard"
    assert row.auroc == pytest.approx(roc_auc_score(y, s), abs=1e-9)
    assert row.aupr_in == pytest.approx(average_precision_score(y, s), abs=1e-9)
    assert row.aupr_out == pytest.approx(average_precision_score(1 - y, -s), abs=1e-9)
    thr = np.sort(s_id)[::-1][int(np.ceil(0.95 * 300)) - 1]
    assert row.fpr95 == pytest.approx((s_ood >= thr).mean())
    assert row.id_acc == pytest.approx((id_logits.argmax(1) == targets).mean())
    avg = ood.average_over_sets(pd.concat([t, t.assign(ood_set="set-b", auroc=0.5)]))
    assert avg.auroc.iloc[0] == pytest.approx((row.auroc + 0.5) / 2) and avg.n_sets.iloc[0] == 2


def _avg_table():
    rng = np.random.default_rng(3)
    rows = []
    for src in ("wit-like", "laion-like"):
        for k in range(6):
            acc = 0.4 + 0.06 * k
            rows.append({"model": f"zoo:clip-{src}-{k}", "group": "clip-zeroshot", "source": src,
                         "id_acc": acc, "parent": None,
                         "auroc": 0.5 + 0.6 * (acc - 0.4) + (0.08 if src == "wit-like" else 0)
                         + rng.normal(0, 0.005)})
    for k, (g, delta) in enumerate([("clip-ft-direct", -0.05), ("clip-ft-2stage", -0.01)] * 3):
        parent = f"clip-wit-like-{k // 2}"
        before = [r for r in rows if r["model"] == f"zoo:{parent}"][0]
        rows.append({"model": f"zoo:ft-{k}", "group": g, "source": "wit-like", "parent": parent,
                     "id_acc": before["id_acc"] + 0.1, "auroc": before["auroc"] + delta})
    return pd.DataFrame(rows)


def test_claim_rules_on_a_constructed_table():
    from clipsafety import claims

    by = {j.claim.claim_id: j for j in ood.assess_ood_claims(_avg_table(), "s", n_boot=300)}
    acc = by["ood-accuracy"]
    assert acc.verdict == claims.REPRODUCED and acc.estimate == 2  # both sources above r = 0.5
    assert acc.correction.startswith("Bonferroni over 2") and acc.threshold == ood.STRONG
    assert acc.n == (6, 6) and acc.unit == claims.MODELS and "Spearman" in acc.effect
    src = by["ood-source"]  # laion-like minus the wit-like line: -0.08 at equal accuracy
    assert src.verdict == claims.REPRODUCED and src.estimate == pytest.approx(-0.08, abs=0.005)
    assert src.sides == ("laion-like", "wit-like")
    ft = by["ood-ft-worse"]  # the direct fine-tunes 0.07 below the zero-shot line at their accuracy
    assert ft.verdict == claims.REPRODUCED and ft.n == (6, 12)
    assert ft.estimate >= 3 and all(f"zoo:ft-{k}" in ft.reason.split(". Per")[0] for k in (0, 2, 4))
    assert ft.correction.startswith("Bonferroni over 6")
    two = by["ood-2stage"]  # two-stage loses 0.01, direct 0.05, at the same accuracy: +0.04
    assert two.verdict == claims.REPRODUCED and two.estimate == pytest.approx(0.04, abs=0.003)
    assert two.n == (3, 3) and "zoo:ft-0" in two.data
    # contradicted: fine-tunes far above the line; two-stage worse than direct; r strongly < 0.5
    t = _avg_table()
    t.loc[t.group.isin(["clip-ft-direct", "clip-ft-2stage"]), "auroc"] += 0.3
    t.loc[t.group == "clip-ft-2stage", "auroc"] -= 0.1
    neg = t.group == "clip-zeroshot"
    t.loc[neg, "auroc"] = 1.2 - t.loc[neg, "auroc"]
    by = {j.claim.claim_id: j for j in ood.assess_ood_claims(t, "s", n_boot=300)}
    assert by["ood-ft-worse"].verdict == claims.CONTRADICTED
    assert by["ood-2stage"].verdict == claims.CONTRADICTED
    assert by["ood-accuracy"].verdict == claims.CONTRADICTED
    # inconclusive: no relation to accuracy, fine-tunes scattered around the line
    flat = _avg_table().assign(auroc=0.7 + 0.02 * (-1) ** np.arange(len(_avg_table())))
    flat.loc[flat.group != "clip-zeroshot", "auroc"] = 0.7  # the fine-tunes on the flat line
    by = {j.claim.claim_id: j for j in ood.assess_ood_claims(flat, "s", n_boot=300)}
    assert by["ood-accuracy"].verdict == claims.INCONCLUSIVE
    assert by["ood-ft-worse"].verdict == claims.INCONCLUSIVE
    few = _avg_table().query("source == 'wit-like'").head(3)
    by = {j.claim.claim_id: j for j in ood.assess_ood_claims(few, "s", n_boot=100)}
    assert by["ood-accuracy"].verdict == claims.NOT_TESTABLE
    assert by["ood-source"].verdict == claims.NOT_TESTABLE


def test_world_rows_gated_and_the_source_built_in():
    from clipsafety import claims

    avg = _avg_table()
    ok = ood.world_premises(avg, chance=0.1, n_boot=200)
    assert all(p.ok for p in ok)
    rows = ood.assess_ood_claims(avg, claims.WORLD, n_boot=200, premises=ok,
                                 built_in=ood.world_source_setting())
    by = {j.claim.claim_id: j for j in rows}
    assert by["ood-source"].verdict == claims.BUILT_IN and "p_misaligned" in by["ood-source"].reason
    assert np.isfinite(by["ood-source"].estimate)  # the measured effect is kept
    assert by["ood-accuracy"].verdict == claims.REPRODUCED and "models above chance" in by[
        "ood-accuracy"].premise
    # chance 0.3: the zero-shot CLIPs' median accuracy (0.55) is below twice chance
    low = ood.world_premises(avg, chance=0.3, n_boot=200)
    assert not low[0].ok and "clip-zeroshot 55%" in low[0].measured
    rows = ood.assess_ood_claims(avg, claims.WORLD, n_boot=200, premises=low,
                                 built_in=ood.world_source_setting())
    assert {j.verdict for j in rows} == {claims.PREMISE_NOT_MET}


@needs_mirror
def test_published_tables_by_checkpoint_against_the_raw_files():
    raw = pd.read_pickle(MIRROR / "j-cb" / "NINCO" / "model_outputs" / "df.pkl")
    nin = ood.ninco_avg().set_index("model")
    cls = raw[(raw.model == "resnet50") & (raw.method == "MSP")
              & ~raw.dataset.isin(ood.NINCO_UNIT_TESTS) & ~raw.dataset.str.endswith(("_ood", "_full"))]
    assert nin.loc["ninco/resnet50", "auroc"] == pytest.approx(cls.auroc.mean())
    zs = raw[(raw.model == "clip-ViT-B16") & (raw.method == "mcm-clip")
             & ~raw.dataset.isin(ood.NINCO_UNIT_TESTS) & ~raw.dataset.str.endswith(("_ood", "_full"))]
    assert nin.loc["openai/ViT-B-16", "auroc"] == pytest.approx(zs.auroc.mean())
    assert nin.index.is_unique and len(nin) == raw.model.nunique()
    wide = ood.ninco_scores().set_index("checkpoint")
    n_methods = raw[raw.model == "resnet50"].method.nunique()
    scores = [c for c in wide.columns if c not in ("group", "id_acc", "best score")]
    assert wide.loc["ninco/resnet50", scores].notna().sum() == n_methods
    best = raw[(raw.model == "resnet50") & raw.dataset.isin(cls.dataset.unique())].groupby(
        "method").auroc.mean().idxmax()
    assert wide.loc["ninco/resnet50", "best score"] == best
    ranks = ood.score_ranks(ood.ninco_scores()).set_index("score")
    assert ranks["best for"].sum() == len(wide) and ranks.loc["MSP", "rank correlation with MSP"] == 1
    path = MIRROR / "mdabbah" / "COOD_benchmarking" / "paper_results" / "all_paper_results.csv"
    with open(path, newline="") as fh:
        names = {r["model name"] for r in csv.DictReader(fh) if r["confidence function"] == "softmax"}
    cood = ood.cood_avg()
    assert len(cood) == len(names) and cood.model.is_unique
    assert (cood.group == "clip-zeroshot").sum() == sum(
        n.startswith("CLIP_") and "finetuned" not in n for n in names) == 9
    ft = cood[cood.group == "clip-ft-direct"]
    assert len(ft) == 7 and not ft.softmax_ok.any()
    assert set(ft.parent) <= set(cood.model)  # each fine-tune's zero-shot parent is in C-OOD


def test_ood_sets_are_checked_against_the_registry():
    assert ood.resolve_ood_sets("", real=False) == list(ood.ZOO_OOD_SETS)
    assert ood.resolve_ood_sets("", real=True)[-1] == "ood:ninco"
    with pytest.raises(ValueError, match="synth:id-test .kind 'id'."):
        ood.resolve_ood_sets(["synth:id-test"], real=False)
    with pytest.raises(ValueError, match="unknown"):
        ood.resolve_ood_sets("ood:nowhere", real=True)


@needs_mirror
def test_ninco_results_read_back_the_raw_file():
    raw = pd.read_pickle(MIRROR / "j-cb" / "NINCO" / "model_outputs" / "df.pkl")
    t = ood.ninco_results()
    r = t[(t.model == "clip-ViT-B16") & (t.ood_set == "textures_400_ood")].iloc[0]
    ref = raw[(raw.model == "clip-ViT-B16") & (raw.method == "mcm-clip") & (raw.dataset == "textures_400_ood")]
    assert r.auroc == ref.auroc.iloc[0] and r.kind == "cleaned subset" and r.group == "clip-zeroshot"
    s = ood.ninco_summary(t).set_index("model")
    cls = raw[(raw.model == "resnet50") & (raw.method == "MSP")
              & ~raw.dataset.isin(ood.NINCO_UNIT_TESTS) & ~raw.dataset.str.endswith(("_ood", "_full"))]
    assert s.loc["resnet50", "auroc"] == pytest.approx(cls.auroc.mean())
    assert s.loc["resnet50", "n_classes"] == cls.dataset.nunique()
    assert s.loc["vit_base_patch16_384_openai_in1k", "parent"] == "clip-ViT-B16"


@needs_mirror
def test_cood_results_read_back_the_raw_csv():
    path = MIRROR / "mdabbah" / "COOD_benchmarking" / "paper_results" / "all_paper_results.csv"
    with open(path, newline="") as fh:
        vals = [float(r["ood-auroc"]) for r in csv.DictReader(fh)
                if r["model name"] == "CLIP_ViT-B~16" and r["confidence function"] == "softmax"]
    t = ood.cood_results().set_index("model")
    assert len(vals) == 11
    assert t.loc["CLIP_ViT-B~16", "auroc"] == pytest.approx(np.mean(vals), abs=1e-12)
    assert t.loc["CLIP_ViT-B~16", "group"] == "clip-zeroshot"
    assert t.loc["CLIP_finetuned_ViT-B~16", "parent"] == "CLIP_ViT-B~16"
    assert (t.group == "clip-zeroshot").sum() == 9 and (t.group == "clip-ft-direct").sum() == 7


@pytest.mark.skipif(not (Path(__file__).resolve().parents[1] / "data" / "zoo" / "catalog.csv").is_file(),
                    reason="zoo not built")
def test_zoo_clip_head_with_negative_labels(tmp_path):
    """A zoo CLIP takes the world's categories followed by negative words: the first columns
    are the ordinary head's, the record is keyed apart, and a classifier refuses."""
    from clipsafety import synth
    from clipsafety.infer import predict
    from clipsafety.zoo import list_zoo

    cat = list_zoo()
    clip = "zoo:" + cat.loc[cat.kind == "clip", "id"].iloc[0]
    sup = "zoo:" + cat.loc[cat.kind == "sup", "id"].iloc[0]
    ds = synth.get_dataset("id-test", n=64)
    neg = ood.negative_vocabulary()
    assert neg and not set(neg) & set(synth.CATEGORIES)
    a = predict(clip, ds, store=tmp_path, progress=False, device="cpu")
    b = predict(clip, ds, store=tmp_path, progress=False, device="cpu",
                classnames=list(synth.CATEGORIES) + neg)
    assert b.logits.shape == (64, len(synth.CATEGORIES) + len(neg))
    np.testing.assert_allclose(b.logits[:, :len(synth.CATEGORIES)], a.logits, atol=1e-4)
    assert b.manifest["key"] != a.manifest["key"] and b.label_space.startswith("synth+")
    with pytest.raises(Exception, match="zero-shot CLIP"):
        predict(sup, ds, store=tmp_path, progress=False, device="cpu",
                classnames=list(synth.CATEGORIES) + neg)


def test_group_means_score_gain_and_cood_groups():
    avg = pd.DataFrame({"model": ["a", "b", "c"], "group": ["g", "g", "h"],
                        "auroc": [0.6, 0.8, 0.5], "fpr95": [0.5, 0.3, 0.9], "aupr_in": 0.5,
                        "aupr_out": 0.4, "id_acc": [0.7, 0.9, 0.6]})
    m = ood.group_means(avg)
    assert list(m.columns) == list(ood.GROUP_MEAN_COLUMNS) and list(m.index) == ["g", "h"]
    assert m.loc["g", "auroc"] == pytest.approx(0.7) and m.loc["g", "id_acc"] == pytest.approx(0.8)
    base = pd.DataFrame({"model": ["a", "a", "b", "b"], "ood_set": ["o1", "o2"] * 2,
                         "auroc": [0.6, 0.8, 0.5, 0.5]})
    other = base.assign(auroc=[0.9, 0.9, 0.4, 0.5])
    assert ood.score_gain(base, other).to_dict() == pytest.approx({"a": 0.2, "b": -0.05})
    cood = pd.DataFrame({"model": ["CLIP_x", "rn50"], "group": ["clip-zeroshot", ood.COOD_IMAGENET]})
    assert ood.cood_as_standard(cood)["group"].tolist() == ["clip-zeroshot", "standard"]
    assert cood["group"].tolist() == ["clip-zeroshot", "imagenet"]  # the published table unchanged


def test_every_judgement_follows_its_rule_and_names_its_fields():
    """The recorded rows of the OOD claims pass the book's rule check (claims.problems): every
    tested verdict on its side of the threshold, with unit and n per side, counts corrected."""
    from clipsafety import claims

    rows = ood.assess_ood_claims(_avg_table(), claims.WORLD, n_boot=200,
                                 premises=ood.world_premises(_avg_table(), 0.1, n_boot=200),
                                 built_in=ood.world_source_setting())
    table = claims.claims_table(rows)
    assert claims.problems(table, "ood") == []
    assert set(table["home"]) == {"ood"} and table["claim_id"].is_unique
    tested = table[table["verdict"].isin(claims.TESTED)]
    assert len(tested) >= 3 and all(len(n) >= 1 for n in tested["n"])
    counts = tested[tested["rule"] == "count"]
    assert len(counts) and counts["correction"].str.startswith("Bonferroni").all()
    assert all(c.test and c.compares and c.conditioned_on and c.home == "ood"
               for c in ood.CLAIMS.values())
