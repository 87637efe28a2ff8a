"""The real-model catalog: every row exists in the library it names; groups follow the rules."""

from __future__ import annotations

import re

import open_clip
import pandas as pd
import pytest
import timm
from clipsafety.catalog import list_models, read_catalog
from clipsafety.groups import GROUPS


@pytest.fixture(scope="module")
def cat():
    return read_catalog("real")


def test_columns_and_unique_ids(cat):
    for c in ("id", "group", "family", "source", "samples", "resolution", "arch", "pretrained_tag"):
        assert c in cat.columns
    assert cat["id"].is_unique and set(cat["group"]) <= set(GROUPS)


def test_every_openclip_row_is_a_pretrained_tag(cat):
    valid = {f"openclip:{a}@{t}" for a, t in open_clip.list_pretrained()}
    rows = cat[cat["id"].str.startswith("openclip:")]
    assert set(rows["id"]) <= valid and len(rows) >= 50
    assert (rows["group"] == "clip-zeroshot").all()
    wit = rows[rows["pretrained_tag"] == "openai"]
    assert (wit["source"] == "WIT").all() and (wit["samples"] == 400e6).all()


def test_every_timm_row_is_a_pretrained_1k_model(cat):
    valid = set(timm.list_models(pretrained=True))
    rows = cat[cat["id"].str.startswith("timm:")]
    names = rows["id"].str.slice(5)
    assert set(names) <= valid
    for n in names.sample(25, random_state=0):
        assert timm.models.get_pretrained_cfg(n).num_classes == 1000


def test_group_sizes_and_rules(cat):
    g = cat.groupby("group").size()
    assert g["clip-ft-direct"] + g["clip-ft-2stage"] >= 25
    assert g["standard"] + g["more-data"] >= 120
    ft = cat[cat["group"].str.startswith("clip-ft")]
    assert ft["pretrained_tag"].str.contains("ft_in1k|ft_in12k_in1k").all()
    two = cat[cat["group"] == "clip-ft-2stage"]["pretrained_tag"]
    assert two.str.contains("in12k_in1k").all()
    assert "timm:vit_base_patch16_clip_224.openai_ft_in12k_in1k" in set(cat.loc[two.index, "id"])
    more = cat[cat["group"] == "more-data"]["pretrained_tag"]
    assert more.str.contains(r"in21k|in22k|in12k|ig1b|jft|yfcc|lvd|m3\dm|ssld|seer|swag").all()
    std = cat[cat["group"] == "standard"]["pretrained_tag"]
    assert not std.str.contains(r"in21k|in22k|in12k|jft|ig1b").any()


def test_samples_seen_parsed_from_tags(cat):
    row = cat.set_index("id").loc["openclip:ViT-B-32@laion2b_s34b_b79k"]
    assert row["samples_seen"] == 34e9 and row["source"] == "LAION-2B" and row["resolution"] == 224


def test_list_models_filters_groups():
    ids = list_models("real", group="clip-ft-direct")
    assert ids and all(i.startswith("timm:") for i in ids)


def test_unknown_catalog_names_the_choices():
    with pytest.raises(KeyError, match="real"):
        read_catalog("nope")


def test_committed_csv_matches_builder(cat):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "data" / "catalog" / "build_catalog.py"
    spec = importlib.util.spec_from_file_location("build_catalog", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fresh = mod.build()
    assert fresh["id"].tolist() == cat["id"].tolist()
    pd.testing.assert_series_equal(fresh["group"], cat["group"])
    assert re.match(r"^[a-z-]+$", cat["group"].iloc[0])
