"""The synthetic world: determinism, factor annotations on constructed cases, dataset specs."""

import numpy as np
import pandas as pd
import pytest
from clipsafety.synth import (
    CATEGORIES,
    FACTORS,
    LABELLED,
    WordTokenizer,
    corrupt,
    factor_flags,
    get_dataset,
    list_datasets,
    render,
    sample_attributes,
)


def test_factor_names_are_imagenet_x():
    from imagenet_x.utils import FACTORS as IX

    assert FACTORS == list(IX)


def test_generator_bit_identical_for_a_seed_and_different_across_seeds():
    a1 = sample_attributes(LABELLED, 64, seed=3)
    a2 = sample_attributes(LABELLED, 64, seed=3)
    pd.testing.assert_frame_equal(a1, a2)
    i1, i2 = render(a1), render(a2)
    assert i1.dtype == np.uint8 and i1.shape == (64, 32, 32, 3)
    assert np.array_equal(i1, i2)
    i3 = render(sample_attributes(LABELLED, 64, seed=4))
    assert (i1 != i3).mean() > 0.5


def test_render_is_independent_of_batch_composition():
    a = sample_attributes(LABELLED.replace(p_multi=0.5, p_person=0.5), 40, seed=1)
    full = render(a)
    part = render(a.iloc[10:20])
    assert np.array_equal(full[10:20], part)


def _canonical(n=1, **over):
    cfg = LABELLED.replace(p_pose=0, p_small=0, p_large=0, p_partial=0, p_deform=0, p_grain=0,
                           background_probs=(1, 0, 0), style_probs=(1, 0, 0, 0), p_dark=0,
                           p_bright=0, p_occluder=0, p_person=0, p_multi=0, cue_strength=1.0,
                           subtype_probs=(1, 0, 0))
    a = sample_attributes(cfg, n, seed=0)
    for k, v in over.items():
        a[k] = v
    return a


def test_canonical_sample_has_no_factor():
    f = factor_flags(_canonical(20))
    assert f.to_numpy().sum() == 0


@pytest.mark.parametrize("over, factor", [
    ({"rotation": 120.0}, "pose"),
    ({"background": "scene"}, "background"),
    ({"pattern": 12}, "pattern"),
    ({"size": 0.3}, "smaller"),
    ({"size": 1.0, "cx": 0.0, "cy": 0.0}, "larger"),
    ({"deform": 0.25}, "shape"),
    ({"cx": 0.95}, "partial_view"),
    ({"subtype": 2}, "subcategory"),
    ({"grain": 0.2}, "texture"),
    ({"light": 0.4}, "darker"),
    ({"light": 1.7}, "brighter"),
    ({"occluder": 1}, "object_blocking"),
    ({"person": 1}, "person_blocking"),
    ({"style": "sketch"}, "style"),
    ({"n_extra": 1}, "multiple_objects"),
])
def test_each_factor_flag_on_a_constructed_case(over, factor):
    a = _canonical(1, **over)
    f = factor_flags(a).iloc[0]
    assert f[factor] == 1
    assert f.drop(factor).sum() == 0, f[f == 1]


def test_color_flag_follows_the_hue_distance():
    a = _canonical(1, category=3, kind="star", pattern=3)
    a["hue"] = 0.3 + 0.05  # within 0.08 of star's characteristic hue 0.3
    assert factor_flags(a)["color"].iloc[0] == 0
    a["hue"] = 0.3 + 0.2
    assert factor_flags(a)["color"].iloc[0] == 1


def test_constructed_pictures_show_the_factor():
    base = _canonical(1, cx=0.0, cy=0.0, size=0.6)
    img = render(base).astype(float)
    dark = render(_canonical(1, cx=0.0, cy=0.0, size=0.6, light=0.4)).astype(float)
    assert dark.mean() < 0.6 * img.mean()
    small = _canonical(2, cx=0.0, cy=0.0, background="plain")
    small["size"] = [0.3, 0.95]
    small["bg_param"] = 0.5
    im = render(small).astype(float)
    bg = im[:, 0, 0, :]
    covered = (np.abs(im - bg[:, None, None, :]).sum(-1) > 60).mean(axis=(1, 2))
    assert covered[0] < 0.5 * covered[1]
    sk = render(_canonical(1, style="sketch")).astype(float)
    assert (sk.mean(-1) > 220).mean() > 0.6  # mostly paper


def test_every_dataset_id_builds_with_contract_fields():
    for name in ["id-test", "shift-v2", "shift-sketch", "shift-rendition", "shift-objectnet",
                 "shift-stylized", "shift-corrupt", "shift-occlusion", "ood-near", "ood-textures",
                 "ood-scenes", "ood-finegrained", "ood-noise", "cue-conflict"]:
        ds = get_dataset(f"synth:{name}", n=16)
        x, y, ids = ds.arrays()
        assert x.shape == (16, 32, 32, 3) and x.dtype == np.uint8
        assert ds.label_space == "synth" and ds.classes == CATEGORIES
        assert ids[0] == f"{ds.name}/0"
        m = ds.meta()
        assert list(m.columns[:2]) == ["id", "file_name"] and set(FACTORS) <= set(m.columns)
        flags = [f for f in FACTORS if name != "cue-conflict" or f not in ("shape", "texture")]
        assert m[flags].isin([0, 1]).all().all()
        man = ds.manifest()
        assert {"generator_version", "config", "seed"} <= set(man)
        img, t, sid = ds[3]
        assert img.mode == "RGB" and img.size == (32, 32) and sid == ids[3] and t == y[3]
        if name.startswith("ood"):
            assert (y == -1).all()
        elif ds.label_subset is not None:
            assert set(y) <= set(ds.label_subset)
    assert "shift-adversarial" in list_datasets() and "train-laion-30k" in list_datasets()


def test_cue_conflict_never_pairs_a_class_with_itself():
    m = get_dataset("cue-conflict", n=300).meta()
    assert (m["shape"] != m["texture"]).all()
    assert (m["attr_pattern"] == m["texture_class"]).all()
    assert (m["shape_class"] == m["category"]).all()


def test_unknown_dataset_error_names_the_choices():
    with pytest.raises(KeyError, match="id-test"):
        get_dataset("synth:nope")


def test_corruptions_grow_with_severity():
    x = get_dataset("id-test", n=32).arrays()[0]
    kinds = np.arange(32) % 4
    d = [np.abs(corrupt(x, kinds, s, 0).astype(float) - x).mean() for s in (1, 3, 5)]
    assert d[0] < d[1] < d[2]


def test_sources_differ_in_caption_style_and_nuisances():
    wit = get_dataset("train-wit-10k", n=400)
    laion = get_dataset("train-laion-10k", n=400)
    fw, fl = wit.meta()[FACTORS].mean(), laion.meta()[FACTORS].mean()
    assert fl["style"] > fw["style"] and fl["background"] > fw["background"]
    cw, cl = wit.captions(), laion.captions()
    names = set(CATEGORIES)
    has = lambda caps, cats: np.mean([c in cap.split() or c + "." in cap.split()  # noqa: E731
                                      for cap, c in zip(caps, cats)])
    kw, kl = wit.attributes()["kind"], laion.attributes()["kind"]
    assert has(cw, kw) > has(cl, kl) + 0.05
    assert cw == wit.captions()  # deterministic
    tok = WordTokenizer(16)
    t = tok(cw[:5])
    assert t.shape == (5, 16) and (t[:, 0] == 1).all() and (t == 2).sum() == 5
    assert names <= set(tok.index)
