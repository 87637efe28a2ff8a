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


# ------------------------------------------------------------- the table of sets
def test_lists_derive_from_the_table_in_the_old_order():
    from clipsafety.synth import OOD_SETS, SHIFTS, SYNTH_SETS, card_sets, eval_sets, synth_set
    from clipsafety.zoo.train import EVAL_SETS

    shifts = ["shift-v2", "shift-sketch", "shift-rendition", "shift-adversarial",
              "shift-objectnet", "shift-stylized", "shift-corrupt", "shift-occlusion"]
    oods = ["ood-near", "ood-textures", "ood-scenes", "ood-finegrained", "ood-noise"]
    assert SHIFTS == shifts and OOD_SETS == oods
    assert eval_sets() == EVAL_SETS == ["id-test", *shifts]
    assert card_sets() == ["id-test", *shifts, *oods, "cue-conflict"]
    assert list_datasets() == [r.id for r in SYNTH_SETS]
    assert list_datasets()[15:20] == [f"shift-corrupt-{s}" for s in range(1, 6)]
    assert synth_set("synth:shift-corrupt-4").variant_of == "shift-corrupt"
    assert synth_set("train-wit-30k").kind == "train" and synth_set("train-wit-30k").params["n"] == 30_000
    kinds = {r.id: r.kind for r in SYNTH_SETS}
    assert kinds["id-test"] == "id" and kinds["cue-conflict"] == "cue-conflict"
    assert [k for k, v in kinds.items() if v == "ood"] == oods


def test_annotations_and_target_space_of_each_set():
    assert get_dataset("id-test", n=8).annotations == "synth-factors"
    assert get_dataset("shift-corrupt-2", n=8).annotations == "synth-factors"
    assert get_dataset("cue-conflict", n=8).annotations == "cue-conflict"
    assert get_dataset("ood-noise", n=8).annotations is None  # the pictures are noise
    assert get_dataset("train-raw-100k@dedup", n=200).annotations == "synth-factors"
    ds = get_dataset("shift-rendition", n=8)
    assert ds.target_space == ds.label_space == "synth" and ds.label_subset == list(range(8))


def test_a_new_set_is_one_row(monkeypatch):
    from clipsafety.synth import datasets as sd

    row = sd.SynthSet("shift-night", sd.world, dict(n=50, cfg=LABELLED.replace(p_dark=0.9)),
                      "night-time", "shift", in_zoo_eval=True)
    monkeypatch.setattr(sd, "SYNTH_SETS", (*sd.SYNTH_SETS, row))
    monkeypatch.setitem(sd._ROWS, "shift-night", row)
    ds = get_dataset("shift-night")
    assert len(ds) == 50 and ds.dataset_id == "synth:shift-night"
    assert ds.meta()["darker"].mean() > 0.6
    assert sd.eval_sets()[-1] == "shift-night" and "shift-night" in sd.card_sets()


def test_rows_are_validated_and_keywords_checked():
    from clipsafety.synth import datasets as sd

    with pytest.raises(ValueError, match="kind 'weird'"):
        sd.SynthSet("x", sd.world, dict(n=1, cfg=LABELLED), "x", "weird")
    with pytest.raises(ValueError, match="default size 'n'"):
        sd.SynthSet("x", sd.world, dict(cfg=LABELLED), "x", "shift")
    with pytest.raises(TypeError, match="severity"):
        get_dataset("id-test", severity=2)
    assert get_dataset("shift-corrupt", severity=5, n=8).dataset_id == "synth:shift-corrupt-5"


# ------------------------------------------------------- A-like set without a model
def test_adversarial_default_reads_the_committed_kept_ids():
    import json

    from clipsafety.synth import datasets as sd

    rec = json.loads(sd.ADVERSARIAL_KEPT.read_text())
    assert rec["reference"] == "ref-resnet-labelled" and rec["candidates"] == 10_000
    ds = get_dataset("shift-adversarial")
    assert len(ds) == len(rec["candidate_index"]) == 1000
    assert ds.attributes()["candidate_index"].tolist() == rec["candidate_index"]
    man = ds.manifest()["post"]
    assert man["reference"] == "ref-resnet-labelled"
    assert man["reference_sha256"] == rec["reference_sha256"]


def test_adversarial_with_a_reference_callable():
    from clipsafety.synth import ReferenceScorer

    def always_zero(images):
        s = np.zeros((len(images), 10))
        s[:, 0] = 1.0
        return s

    ref = ReferenceScorer("always-zero", "abc", always_zero)
    ds = get_dataset("shift-adversarial", n=20, reference=ref)
    cand = ds.attributes()["candidate_index"].to_numpy()
    from clipsafety.synth.datasets import SYNTH_SETS, SynthDataset

    cfg = next(r for r in SYNTH_SETS if r.id == "shift-adversarial").params["cfg"]
    all_t = SynthDataset("shift-adversarial-candidates", cfg, 200).targets
    assert cand.tolist() == np.flatnonzero(all_t != 0)[:20].tolist()
    assert (ds.targets != 0).all() and len(ds) == 20
    assert ds.manifest()["post"] == {"filter": "misclassified by reference",
                                     "reference": "always-zero", "reference_sha256": "abc",
                                     "candidates": 200}
    with pytest.raises(TypeError, match="reference_scorer"):
        get_dataset("shift-adversarial", n=20, reference="ref-resnet-labelled")


def test_adversarial_stale_or_missing_kept_ids_say_how_to_regenerate(tmp_path, monkeypatch):
    import json

    from clipsafety.synth import datasets as sd

    with pytest.raises(ValueError, match="python -m clipsafety.zoo.reference"):
        get_dataset("shift-adversarial", n=20)  # the committed ids are for n=1000
    rec = json.loads(sd.ADVERSARIAL_KEPT.read_text())
    bad = tmp_path / "kept.json"
    bad.write_text(json.dumps({**rec, "candidates_sha256": "0" * 64}))
    row = sd.synth_set("shift-adversarial")
    monkeypatch.setitem(sd._ROWS, "shift-adversarial",
                        sd.SynthSet(row.id, row.builder, {**row.params, "kept": bad}, row.description,
                                    row.kind, row.in_zoo_eval, options=row.options))
    sd._cached.cache_clear()
    with pytest.raises(ValueError, match="candidates_sha256"):
        sd._build("shift-adversarial")
    bad.unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        sd._build("shift-adversarial")


def test_synth_imports_nothing_from_zoo():
    import ast
    from pathlib import Path

    import clipsafety.synth

    offenders = []
    for path in sorted(Path(clipsafety.synth.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                names = [mod] + [f"{mod}.{a.name}" for a in node.names]
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names
                          if n == "clipsafety.zoo" or n.startswith("clipsafety.zoo.")]
    assert len(list(Path(clipsafety.synth.__file__).parent.glob("*.py"))) == 6
    assert offenders == []
