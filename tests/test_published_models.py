"""Real-model readers keyed by checkpoint read the published values back, checked against
counts written independently here (the csv module, plain loops), and the per-model table
counts each checkpoint once."""

import csv
import re
from collections import Counter

import numpy as np
import pytest
from clipsafety import external
from clipsafety import published_models as M
from clipsafety.groups import CLIP_FT_2STAGE, CLIP_FT_DIRECT, CLIP_ZEROSHOT


@pytest.fixture(scope="module", autouse=True)
def need_mirror():
    if not (external.available(M.COOD) and external.available(
            M.BEYOND_INET + "performances/vit_clip.csv")):
        pytest.skip("published upstream files unavailable (no mirror, no network)")


def rows(key):
    with open(external.fetch(key), newline="") as fh:
        return list(csv.DictReader(fh))


def count_bias(answers):
    """Shape bias by hand: ``answers`` is [(stimulus name, answer)], same-class stimuli skipped."""
    sh = tx = n = 0
    for name, ans in answers:
        a, b = name.rsplit("/", 1)[-1].removesuffix(".png").rsplit("_", 1)[-1].split("-")
        a, b = re.sub(r"\d+$", "", a), re.sub(r"\d+$", "", b)
        if a == b:
            continue
        n += 1
        sh += ans.strip().lower() == a
        tx += ans.strip().lower() == b
    return sh / (sh + tx), (sh + tx) / n, n


@pytest.fixture(scope="module")
def forks():
    import pandas as pd
    from clipsafety.studies import shape_bias

    return pd.concat([shape_bias.mvh_decisions(r, humans=False) for r in shape_bias.MVH_SOURCES],
                     ignore_index=True)


@pytest.fixture(scope="module")
def factor_tables():
    from clipsafety.studies import factors

    return [factors.published_factor_table(c) for c in ("imagenet_testbed", "modelvshuman")] + [
        factors.published_decision_factors()[1]]


@pytest.fixture(scope="module")
def shape(forks):
    return M.shape_models(M.shape_trials(forks))


@pytest.fixture(scope="module")
def models(forks, factor_tables):
    from clipsafety.published import SHIFTS
    from clipsafety.studies import landscape

    long = landscape.published_long(landscape.LANDSCAPE_SOURCES, list(SHIFTS))
    points, _, _ = landscape.fit_landscape(long, n_boot=20, grid_points=2)
    return M.table(landscape.effective_robustness_table(points), forks, factor_tables)


# --------------------------------------------------------------------------- registry

def test_new_sources_are_registered_at_one_commit_each():
    reg = external.registry()
    vlm = [f for k, f in reg.items() if k.startswith(M.VLM)]
    bi = [f for k, f in reg.items() if k.startswith(M.BEYOND_INET)]
    assert len([f for f in vlm if "/clip/" in f.path]) == 21  # 7 CLIPs x 3 prompts
    assert len([f for f in vlm if "/inet_classifier/" in f.path]) == 7
    assert len(bi) == 18  # 9 decision files, 9 performances files
    assert len({f.commit for f in vlm}) == 1 and len({f.commit for f in bi}) == 1
    for f in vlm + bi:  # every file is there and matches its pinned sha256
        assert external.sha256_file(external.fetch(f.key)) == f.sha256


# --------------------------------------------------------------------------- Beyond-INet

def test_beyond_inet_performances_recomputed_exactly_from_decisions():
    perf = M.beyond_inet_accuracy()
    assert len(perf) == 9 and set(perf["metric_name"]) == {"accuracy (top-1)"}
    from clipsafety.shape import accuracy_by_condition, read_decisions

    for key in external.keys(M.BEYOND_INET + "cue-conflict/"):
        raw = rows(key)
        subj = raw[0]["subj"]
        by_hand = sum(r["object_response"] == r["category"] for r in raw) / len(raw)
        published = float(perf.loc[perf["subj"] == subj, "performance"].iloc[0])
        assert by_hand == published, (key, by_hand, published)
        book = accuracy_by_condition(read_decisions(external.fetch(key)))
        assert float((book["accuracy"] * book["trials"]).sum() / book["trials"].sum()) == published


def test_beyond_inet_laion_vit_b16_shape_bias_by_hand(shape):
    key = M.BEYOND_INET + "cue-conflict/cue-conflict_vit-clip_session-1.csv"
    bias, share, n = count_bias([(r["imagename"], r["object_response"]) for r in rows(key)])
    row = shape[(shape["source"] == "Beyond-INet") & (shape["observer"] == "vit-clip")].iloc[0]
    assert row["checkpoint"] == "laion400m_e31/ViT-B-16" and row["training_source"] == "LAION-400M"
    assert row["head"] == "1000-class mapped" and row["group"] == CLIP_ZEROSHOT
    assert row["shape_bias"] == pytest.approx(bias, abs=1e-12)
    assert row["cue_share"] == pytest.approx(share, abs=1e-12) and row["trials"] == n == 1200


# --------------------------------------------------------------------------- vlm_shapebias

def test_vlm_shapebias_rn50_shape_bias_by_hand(shape):
    key = M.VLM + "clip/clip_RN50_openai_a_photo_of_a_CLS..csv"
    bias, share, n = count_bias([(r["image"], r["pred_label"]) for r in rows(key)])
    row = shape[(shape["observer"] == "clip_RN50_openai_a_photo_of_a_CLS.")].iloc[0]
    assert (row["checkpoint"], row["head"], row["prompt"]) == (
        "openai/RN50", "16-way zero-shot", "a photo of a {c}.")
    assert row["shape_bias"] == pytest.approx(bias, abs=1e-12) and n == 1200
    assert row["cue_share"] == pytest.approx(share, abs=1e-12)


def test_vlm_shapebias_finetuned_twin_by_hand(shape):
    key = M.VLM + "inet_classifier/vit_large_patch14_clip_224.openai_ft_in1k.csv"
    bias, _, _ = count_bias([(r["image"], r["pred_label"]) for r in rows(key)])
    row = shape[shape["observer"] == "vit_large_patch14_clip_224.openai_ft_in1k"].iloc[0]
    assert row["group"] == CLIP_FT_DIRECT and row["shape_bias"] == pytest.approx(bias, abs=1e-12)


def test_openai_resnet_clips_are_texture_leaning_under_every_prompt(shape):
    """The issue's observation, read from the files: OpenAI RN50 and RN101 below 0.5 under
    all three prompts, the OpenAI ViT-L/14s above."""
    v = shape[shape["source"] == "vlm_shapebias"]
    for ck in ("openai/RN50", "openai/RN101"):
        part = v[v["checkpoint"] == ck]
        assert len(part) == 3 and (part["shape_bias"] < 0.3).all()
    for ck in ("openai/ViT-L-14", "openai/ViT-L-14-336"):
        assert (v.loc[v["checkpoint"] == ck, "shape_bias"] > 0.55).all()


def test_same_backbone_twins_are_read_with_their_groups(shape):
    groups = shape.set_index("checkpoint")["group"]
    assert groups["timm/vit_large_patch14_clip_224.openai_ft_in12k_in1k"] == CLIP_FT_2STAGE
    zs = shape[(shape["checkpoint"] == "openai/ViT-L-14") & (shape["source"] == "vlm_shapebias")]
    assert set(zs["prompt"]) == {"{c}", "a photo of a {c}.", "none (upstream 'None')"}


def test_per_stimulus_hits_allow_a_paired_bootstrap():
    tr = M.shape_trials(sources=("vlm_shapebias",))
    per = tr.groupby("observer")["stimulus"].agg(["size", "nunique"])
    assert (per["size"] == 1200).all() and (per["nunique"] == 1200).all()
    assert tr["confidence"].between(0, 1).any() and set(tr.columns) == set(M.TRIAL_COLUMNS)


# --------------------------------------------------------------------------- duplicates

def test_a_checkpoint_in_two_forks_has_one_primary_row(shape):
    b16 = shape[shape["checkpoint"] == "openai/ViT-B-16"]
    assert set(b16["source"]) == {"Thieringer", "Burns"}
    assert b16["primary"].sum() == 1
    assert shape.groupby("checkpoint")["primary"].sum().eq(1).all()
    # the two forks' ViT-B/16 decisions: nearly the same model, read back from the files
    t = {r["imagename"].rsplit("_", 1)[-1]: r["object_response"] for r in rows(
        "TizianThieringer/model-vs-human/raw-data/cue-conflict/cue-conflict_clip-16_session-1.csv")}
    k = {r["imagename"].rsplit("_", 1)[-1]: r["object_response"] for r in rows(
        "kayburns/model-vs-human/raw-data/cue-conflict/cue-conflict_clip_session-1.csv")}
    assert sum(t[s] == k[s] for s in t) / len(t) > 0.99


def test_factor_collections_count_one_checkpoint_once(factor_tables):
    f = M.factor_models(factor_tables)
    rn50 = f[f["checkpoint"] == "openai/RN50"]
    assert set(rn50["collection"]) == {"imagenet_testbed", "modelvshuman"}
    assert rn50.loc[rn50["primary"], "collection"].nunique() == 1
    b16 = f[(f["checkpoint"] == "openai/ViT-B-16") & f["primary"]]
    assert len(b16) == 10 and set(b16["source"]) == {"Burns"}
    clips = f.loc[f["primary"] & (f["group"] == CLIP_ZEROSHOT), "checkpoint"].unique()
    assert sorted(clips) == ["openai/RN50", "openai/ViT-B-16", "openai/ViT-B-32"]


# --------------------------------------------------------------------------- C-OOD

def test_cood_confidence_gap_by_hand_and_the_issue_numbers():
    c = M.cood_models()
    raw = [r for r in rows(M.COOD) if r["confidence function"] == "softmax"]
    first = {}
    for r in raw:
        first.setdefault(r["model name"], r)
    r = first["CLIP_ViT-B~16"]
    row = c.set_index("model").loc["CLIP_ViT-B~16"]
    assert row["checkpoint"] == "openai/ViT-B-16"
    assert row["conf_gap"] == pytest.approx(100 * (float(r["id_avg_conf"]) - float(r["id-acc"])))
    sev = {int(x["severity level"]): float(x["ood-auroc"]) for x in raw
           if x["model name"] == "CLIP_ViT-B~16"}
    assert [row[f"auroc_sev{i}"] for i in range(11)] == pytest.approx([sev[i] for i in range(11)])
    zs = c[c["group"] == CLIP_ZEROSHOT]["conf_gap"]
    assert len(zs) == 9 and round(zs.min(), 1) == -1.0 and round(zs.max(), 1) == 5.8
    assert round(zs.median(), 1) == 0.8
    im = c[~c["model"].str.startswith("CLIP_")]["conf_gap"]
    assert len(im) == 523 and round(im.median(), 1) == -4.0 and (im > 0).any() and (im < 0).any()


def test_cood_finetuned_clips_are_flagged_not_calibrated():
    c = M.cood_models()
    bad = c[~c["softmax_ok"]]
    assert len(bad) == 7 and (bad["group"] == CLIP_FT_DIRECT).all()
    assert (bad["id_avg_conf"] < 0.003).all() and bad["conf_gap"].isna().all()
    assert bad["softmax_note"].str.contains("not a softmax").all()
    assert M.cood_models("entropy")["conf_gap"].isna().all()


def test_cood_unknown_confidence_function_is_named():
    with pytest.raises(ValueError, match="softmax"):
        M.cood_models("msp")


# --------------------------------------------------------------------------- NINCO

def test_ninco_every_score_and_one_mean_by_hand():
    n = M.ninco_models()
    assert n["score"].nunique() == 14
    import pandas as pd  # the pickle holds a DataFrame; read it, then count by hand

    raw = pd.read_pickle(external.fetch(M.NINCO))  # sha256 checked by fetch
    sets = [d for d in set(raw["dataset"]) if d not in M.NINCO_UNIT_TESTS
            and not d.endswith(("_ood", "_full"))]
    assert len(sets) == 46  # the results file scores 46 of the release's 64 classes
    vals = [float(a) for m, s, d, a in zip(raw["model"], raw["method"], raw["dataset"], raw["auroc"])
            if m == "clip-ViT-B16" and s == "mcm-clip" and d in sets]
    per = M.ninco_per_model().set_index(["checkpoint", "score"])
    got = per.loc[("openai/ViT-B-16", "mcm-clip")]
    assert got["n_classes"] == 46 and got["auroc"] == pytest.approx(sum(vals) / len(vals))
    assert per.loc[("timm/vit_base_patch16_clip_384.openai_ft_in1k", "MSP"), "auroc"] > 0.5


# --------------------------------------------------------------------------- open_clip

@pytest.mark.parametrize("tag,source", [("openai", "WIT"), ("laion400m_e31", "LAION-400M"),
                                        ("laion2b_s34b_b79k", "LAION-2B"),
                                        ("datacomp_xl_s13b_b90k", "DataComp"),
                                        ("merged2b_s11b_b114k", "Merged-2B"), ("v1", "other")])
def test_training_source_of_tags(tag, source):
    assert M.training_source(tag) == source


def test_openclip_models_keyed_like_the_other_readers():
    oc = M.openclip_models().set_index("checkpoint")
    assert oc.loc["openai/ViT-B-32", "imagenet"] == pytest.approx(0.6332)
    assert oc.loc["laion400m_e31/ViT-B-16", "training_source"] == "LAION-400M"
    assert oc.index.is_unique


# --------------------------------------------------------------------------- the table

def test_table_has_one_row_per_checkpoint_with_its_sources(models, factor_tables):
    assert models["checkpoint"].is_unique
    row = models.set_index("checkpoint").loc["openai/ViT-B-16"]
    for s in ("open_clip", "Thieringer", "Burns", "C-OOD", "NINCO"):
        assert s in row["sources"]
    assert row["group"] == CLIP_ZEROSHOT and np.isfinite(row["er_r"])
    assert row["shape_bias"] == pytest.approx(100 * 0.474595, abs=1e-3)
    kb = factor_tables[-1].set_index("factor")["factor_acc"]  # the kayburns decisions' row
    for f in ("pose", "background", "texture"):
        assert row[f"factor_{f}"] == pytest.approx(100 * kb[f])
    ft = models.set_index("checkpoint").loc["cood/CLIP_finetuned_ViT-B~16"]
    assert np.isnan(ft["conf_gap"]) and np.isfinite(ft["cood_auroc"])


def test_percentile_matches_scipy(models):
    from scipy.stats import percentileofscore

    zs = models[models["group"] == CLIP_ZEROSHOT]
    for v in (-1.0, 0.2257, 3.0):
        ref = percentileofscore(zs["conf_gap"].dropna(), v, kind="mean")
        assert M.percentile("conf_gap", v, CLIP_ZEROSHOT, models=models) == pytest.approx(ref)
    row = zs.set_index("checkpoint").loc["openai/ViT-B-16"]
    ref = percentileofscore(zs["er_mean"].dropna(), row["er_mean"], kind="mean")
    assert row["er_mean_pct"] == pytest.approx(ref)


def test_nearest_returns_the_closest_models(models):
    near = M.nearest("shape_bias", 60.0, k=3, models=models)
    d = (models["shape_bias"] - 60.0).abs().dropna().sort_values()
    assert list(near["distance"]) == pytest.approx(list(d.iloc[:3]))
    with pytest.raises(KeyError, match="not a column"):
        M.nearest("shape bias", 60.0, models=models)
    with pytest.raises(ValueError, match="at least 1"):
        M.nearest("shape_bias", 60.0, k=0, models=models)


def test_every_table_column_has_a_readable_header(models):
    assert set(models.columns) <= set(M.TABLE_COLUMNS)
    for c in set(models.columns) - set(M.TEXT_COLUMNS):
        assert models[c].dtype == float, c
    heads = M.readable(models.head(3)).columns
    assert not any("_" in h for h in heads)
    assert Counter(models["group"]).keys() <= {CLIP_ZEROSHOT, CLIP_FT_DIRECT, CLIP_FT_2STAGE,
                                               "standard", "more-data", "other-robust"}


# --------------------------------------------------------------------------- bad input

def test_study_inputs_of_the_wrong_kind_are_named():
    import pandas as pd

    with pytest.raises(ValueError, match="mvh_decisions"):
        M.mvh_fork_trials(pd.DataFrame({"imagename": ["a1-b2.png"]}))
    with pytest.raises(ValueError, match="effective_robustness_table"):
        M.landscape_models(pd.DataFrame({"model": ["x"]}))


def test_vlm_reader_names_missing_columns(tmp_path):
    from clipsafety.shape import read_performances, read_vlm_answers

    p = tmp_path / "x.csv"
    p.write_text("img,label\na1-b2,a\n")
    with pytest.raises(ValueError, match="pred_label"):
        read_vlm_answers(p)
    with pytest.raises(ValueError, match="performance"):
        read_performances(p)
