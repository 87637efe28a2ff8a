"""Published tables read back the published numbers, with the traps handled."""

import csv

import numpy as np
import pytest
from clipsafety import external, published


@pytest.fixture(scope="module", autouse=True)
def need_mirror():
    if not external.available(published.OPENCLIP):
        pytest.skip("published upstream files unavailable (no mirror, no network)")


def test_openai_vit_b32_reads_back():
    oc = published.openclip_results().set_index("model")
    row = oc.loc["openclip:ViT-B-32@openai"]
    assert row["imagenet"] == pytest.approx(0.6332)
    assert row["train_source"] == "WIT"
    assert oc.loc["openclip:ViT-B-32@laion2b_s34b_b79k", "samples_seen"] == pytest.approx(34e9)
    assert oc.loc["openclip:ViT-B-32@laion2b_s34b_b79k", "train_source"] == "LAION-2B"


def test_timm_rows_keyed_by_model_and_size_and_param_count_parsed():
    t = published.timm_results()
    path = external.fetch(published.TIMM.format("imagenet"))
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    assert len(t) == len(rows)  # no row lost or duplicated by the joins
    assert not t.duplicated(["model", "img_size"]).any()
    assert t["model"].duplicated().any()  # the same weight at several image sizes
    eva = t[(t["name"] == "eva_giant_patch14_560.m30m_ft_in22k_in1k")].iloc[0]
    assert eva["param_count"] == pytest.approx(1014.45)  # written "1,014.45" upstream
    assert eva["imagenet"] == pytest.approx(float(next(
        r["top1"] for r in rows if r["model"] == eva["name"] and int(r["img_size"]) == eva["img_size"]
    )) / 100)
    assert t["param_count"].notna().mean() > 0.99


def test_r_and_a_are_joined_per_image_size():
    t = published.timm_results()
    path = external.fetch(published.TIMM.format("imagenet-r"))
    with open(path) as fh:
        r = {(x["model"], int(x["img_size"])): float(x["top1"]) / 100 for x in csv.DictReader(fh)}
    sample = t.dropna(subset=["r"]).sample(50, random_state=0)
    for _, row in sample.iterrows():
        assert row["r"] == pytest.approx(r[(row["name"], row["img_size"])])


@pytest.mark.parametrize("name, group", [
    ("resnet50.a1_in1k", "standard"),
    ("vit_base_patch16_224.augreg2_in21k_ft_in1k", "more-data"),
    ("vit_base_patch16_clip_224.openai_ft_in1k", "clip-ft-direct"),
    ("vit_base_patch16_clip_224.laion2b_ft_in12k_in1k", "clip-ft-2stage"),
    ("convnext_base.clip_laion2b_augreg_ft_in1k", "clip-ft-direct"),
    ("resnet50.fb_swsl_ig1b_ft_in1k", "more-data"),
    ("test_vit.r160_in1k", "excluded"),
])
def test_timm_group_rules(name, group):
    assert published.timm_group(name) == group


@pytest.mark.parametrize("name, group", [
    ("resnet50", "standard"), ("vit_b_32_clip_zeroshot", "clip-zeroshot"),
    ("instagram-resnext101_32x8d", "more-data"), ("resnet50_augmix", "other-robust"),
    ("resnet18_50k_12_epochs", "excluded"), ("BiT-M-R50x1-ILSVRC2012", "more-data"),
])
def test_testbed_group_rules(name, group):
    assert published.testbed_group(name) == group


def test_landscape_long_is_fractions_without_gaps():
    long = published.landscape_long()
    assert set(long["shift"]) == set(published.SHIFTS)
    assert long["imagenet"].between(0, 1).all() and long["shift_acc"].between(0, 1).all()
    assert np.isfinite(long[["imagenet", "shift_acc"]].to_numpy()).all()
    # ObjectNet is published by open_clip and imagenet-testbed, not by timm
    assert set(long.loc[long["shift"] == "objectnet", "source"]) == {"open_clip", "imagenet-testbed"}
