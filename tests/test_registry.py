"""The model-source registry: one parse per id, metadata from catalog to record, zoo templates."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from clipsafety import models as M
from clipsafety.records import LoadedModel

torch.set_num_threads(2)

ZOO_CLIP = "zoo:clip-resnet-wit-10k"
ZOO_SUP = "zoo:ref-resnet-labelled"


# --------------------------------------------------------------------------- a new source


@pytest.fixture
def fake_source():
    """A source for a new prefix, registered by one class and nothing else; removed after."""
    calls = {"split": 0, "load": []}

    class FakeSource(M.ModelSource):
        prefix = "fake"
        id_forms = ("fake:NAME[@SEED]",)
        names = ("vit-tiny", "cnn-tiny")

        def split(self, rest):
            calls["split"] += 1
            return super().split(rest)

        def candidates(self):
            return [f"fake:{n}" for n in self.names]

        def is_known(self, spec):
            return spec.name in self.names

        def load(self, spec, device="cpu", **head):
            calls["load"].append((spec, device, head))
            return LoadedModel(model_id=spec.id, module=torch.nn.Identity(), transform=None,
                               classes=["a", "b"], logit_policy={"kind": "classifier"},
                               manifest={"model_id": spec.id, "seed": spec.tag},
                               label_space="fake-2")

    assert "fake" not in M.SOURCES
    M.register_source(FakeSource)
    try:
        yield FakeSource, calls
    finally:
        M.unregister_source("fake")


def test_one_registered_class_makes_a_new_prefix_work(fake_source):
    cls, calls = fake_source
    assert M.SOURCES["fake"].__class__ is cls
    assert M.is_known_id("fake:vit-tiny@3") and not M.is_known_id("fake:vit-huge")
    assert M.candidate_ids(sources=["fake"]) == ["fake:vit-tiny", "fake:cnn-tiny"]
    assert "fake:cnn-tiny" in M.candidate_ids()
    assert M.suggest("fake:vit-tny")[0] == "fake:vit-tiny"
    calls["split"] = 0
    m = M.load("fake:vit-tiny@3", templates="simple")
    # parsed once: one split, and the spec the source was handed is the one the model carries
    assert calls["split"] == 1
    spec, device, head = calls["load"][-1]
    assert m.spec is spec and device == "cpu" and head["templates"] == "simple"
    assert (spec.source, spec.name, spec.tag, spec.id) == ("fake", "vit-tiny", "3", "fake:vit-tiny@3")
    # no catalog: the id rules of clipsafety.groups
    assert m.model_meta == {"group": "standard", "family": "ViT", "source": None, "samples": None,
                            "resolution": None, "meta_from": "id rules"}
    assert M.parse_model_id("fake:cnn-tiny") == ("fake", "cnn-tiny", None)
    # a spec can be loaded as it is, without parsing again
    calls["split"] = 0
    assert M.load(spec).spec is spec and calls["split"] == 0


def test_unregistered_prefix_is_unknown_and_names_the_registered_ones(fake_source):
    M.unregister_source("fake")
    assert not M.is_known_id("fake:vit-tiny")
    with pytest.raises(M.UnknownModel, match=r"unknown prefix 'fake'; expected one of openclip:, "
                                             r"timm:, zoo:"):
        M.model_spec("fake:vit-tiny")


def test_a_prefix_cannot_be_registered_twice_by_two_classes(fake_source):
    class Other(M.ModelSource):
        prefix = "fake"

    with pytest.raises(ValueError, match="'fake' is already registered by FakeSource"):
        M.register_source(Other)
    with pytest.raises(ValueError, match="without ':' or '@'"):
        M.register_source(type("Bad", (M.ModelSource,), {"prefix": "a:b"}))


def test_spec_is_frozen_and_hashable():
    spec = M.model_spec(ZOO_CLIP)
    with pytest.raises(AttributeError):
        spec.group = "standard"
    assert {spec: 1}[M.model_spec(ZOO_CLIP)] == 1


# --------------------------------------------------------------------------- metadata


def test_spec_metadata_is_the_catalog_row_or_the_id_rules():
    from clipsafety.catalog import read_catalog

    zoo = read_catalog("zoo").set_index("id")
    spec = M.model_spec(ZOO_CLIP)
    row = zoo.loc[ZOO_CLIP]
    assert (spec.group, spec.family, spec.training_source) == ("clip-zeroshot", "resnet", "wit-like")
    assert (spec.samples, spec.resolution, spec.meta_from) == (10000, 32, "zoo catalog")
    assert (row["group"], row["family"], row["source"]) == (spec.group, spec.family, spec.training_source)
    assert dict(spec.catalog)["matched_pair"] == row["matched_pair"] == "data:wit-vs-laion:resnet:10k"
    real = M.model_spec("openclip:ViT-B-32@openai")
    assert (real.group, real.family, real.training_source, real.samples, real.resolution,
            real.meta_from) == ("clip-zeroshot", "ViT", "WIT", 400000000.0, 224, "real catalog")
    rnd = M.model_spec("openclip:RN50@random")
    assert (rnd.group, rnd.family, rnd.meta_from, rnd.samples) == ("clip-zeroshot", "ResNet",
                                                                  "id rules", None)
    t = M.model_spec("timm:resnet18@random")
    assert (t.group, t.family, t.meta_from) == ("standard", "ResNet", "id rules")


def test_model_metadata_table_is_the_catalog_rows():
    """Every catalogued id: the catalog row's values (zoo first, then real), in the given
    order; ids no catalog lists: the id rules."""
    import pandas as pd
    from clipsafety.catalog import list_models, read_catalog

    ids = list_models("zoo") + list_models("real")[:40] + ["openclip:RN50@random"]
    new = M.model_metadata(ids)
    assert list(new.columns[:7]) == ["model", "group", "family", "source", "samples",
                                     "resolution", "meta_from"]
    assert {"parent", "matched_pair", "pretrained_tag"} <= set(new.columns)
    assert new["model"].tolist() == ids
    ref = pd.concat([read_catalog("zoo").assign(meta_from="zoo catalog"),
                     read_catalog("real").assign(meta_from="real catalog")]).set_index("id")
    cat = new.iloc[:-1].set_index("model")
    for col in ["group", "family", "source", "samples", "resolution", "meta_from", "parent",
                "pretrained_tag"]:
        got = [None if pd.isna(x) else x for x in cat[col]]
        want = [None if pd.isna(x) else x for x in ref.loc[cat.index, col]]
        assert got == want, col
    assert new.loc[new["model"] == ZOO_CLIP, "parent"].isna().all()
    last = new.iloc[-1]
    assert (last["group"], last["family"], last["meta_from"]) == ("clip-zeroshot", "ResNet", "id rules")
    assert pd.isna(last["source"]) and pd.isna(last["samples"])


def test_metadata_travels_from_catalog_to_record_and_stays_out_of_the_key(tmp_path, monkeypatch):
    from clipsafety import catalog, synth
    from clipsafety.catalog import read_catalog
    from clipsafety.infer import key_manifest, predict
    from clipsafety.store import manifest_key

    spec = copy.copy(synth.get_dataset("id-test", n=64))
    spec.annotations = "synth-factors"
    rec = predict(ZOO_CLIP, spec, store=tmp_path / "s", progress=False, device="cpu")
    row = read_catalog("zoo").set_index("id").loc[ZOO_CLIP]
    meta = rec.manifest["model_meta"]
    assert rec.model_meta == meta and len(rec) == 64
    for col in ["group", "family", "source", "samples", "resolution", "matched_pair", "seed"]:
        assert meta[col] == row[col], col
    assert meta["group"] == "clip-zeroshot" and meta["family"] == "resnet"
    assert meta["meta_from"] == "zoo catalog" and meta["parent"] is None
    assert rec.annotations == "synth-factors" and rec.label_space == rec.target_space == "synth"
    # the key is the hash of the key manifest alone: metadata is neither in it nor hashed
    kman = key_manifest(M.load(ZOO_CLIP), spec, "fp32")
    assert "model_meta" not in kman and "model_meta" not in kman["model"]
    assert rec.manifest["key"] == manifest_key(kman)
    assert manifest_key({**kman, "model_meta": {"group": "x"}, "annotations": "y"}) == manifest_key(kman)
    # without annotations: same key, a hit, and the record says so
    bare = copy.copy(synth.get_dataset("id-test", n=64))  # the spec is cached: change a copy
    bare.annotations = None  # a spec that declares no annotation kind
    plain = predict(ZOO_CLIP, bare, store=tmp_path / "s", progress=False, device="cpu")
    assert plain.cache_hit and plain.manifest["key"] == rec.manifest["key"]
    assert plain.annotations is None
    # a catalog edit changes what the record says, never its key: still a hit
    real_row = catalog.catalog_row

    def edited(model_id, name):
        r = real_row(model_id, name)
        return {**r, "group": "clip-ft-direct", "parent": "zoo:clip-resnet-wit-30k"} if r else r

    monkeypatch.setattr(catalog, "catalog_row", edited)
    again = predict(ZOO_CLIP, spec, store=tmp_path / "s", progress=False, device="cpu")
    assert again.cache_hit and again.manifest["key"] == rec.manifest["key"]
    assert again.model_meta["group"] == "clip-ft-direct"
    assert again.model_meta["parent"] == "zoo:clip-resnet-wit-30k"
    np.testing.assert_array_equal(again.logits, rec.logits)


def test_hand_built_model_gets_metadata_from_its_id(tmp_path):
    from dataclasses import replace

    from clipsafety import synth
    from clipsafety.infer import predict

    m = replace(M.load(ZOO_SUP), spec=None)
    assert m.model_meta is None
    rec = predict(m, synth.get_dataset("id-test", n=32), store=tmp_path / "s", progress=False,
                  device="cpu")
    assert rec.model_meta["group"] == "reference" and rec.model_meta["meta_from"] == "zoo catalog"


# --------------------------------------------------------------------------- zoo templates


@pytest.fixture(scope="module")
def images():
    from clipsafety import synth

    return synth.get_dataset("id-test", n=48).arrays()[0]


def _logits(model_id, images, **kw):
    from clipsafety.zoo import predict_arrays

    m = M.load(model_id, **kw)
    return m, predict_arrays(m, images)


def test_zoo_clip_honours_templates(images):
    from clipsafety.synth import TEMPLATES

    m_openai, openai = _logits(ZOO_CLIP, images)  # the chapters' default, "openai"
    m_default, default = _logits(ZOO_CLIP, images, templates="default")
    m_simple, simple = _logits(ZOO_CLIP, images, templates="simple")
    _, single = _logits(ZOO_CLIP, images, templates="single")
    _, listed = _logits(ZOO_CLIP, images, templates=list(TEMPLATES["simple"]))
    # "openai" is the world's default set: the same logits, the same manifest (so the same key)
    np.testing.assert_array_equal(openai, default)
    assert m_openai.manifest == m_default.manifest
    assert m_openai.manifest["head"]["templates"] == "default"
    assert m_simple.manifest["head"]["templates"] == "simple"
    assert m_openai.manifest["head"]["template_hash"] != m_simple.manifest["head"]["template_hash"]
    # other sets are honoured: different heads, different logits
    assert np.abs(simple - openai).max() > 1e-3 and np.abs(single - simple).max() > 1e-3
    np.testing.assert_array_equal(listed, simple)  # a list is used as given


def test_zoo_template_sets_a_model_cannot_use_are_errors():
    with pytest.raises(M.TemplateSetError) as e:
        M.load(ZOO_CLIP, templates="photo")
    msg = str(e.value)
    assert isinstance(e.value, ValueError)
    assert ZOO_CLIP in msg and "'photo'" in msg and "['single', 'simple', 'default', 'openai']" in msg
    with pytest.raises(M.TemplateSetError, match="exactly one '{}'"):
        M.load(ZOO_CLIP, templates=["a photo"])
    # classifiers check the value too (a typo is never silently ignored), then ignore it
    with pytest.raises(M.TemplateSetError, match=ZOO_SUP):
        M.load(ZOO_SUP, templates="simpel")
    assert M.load(ZOO_SUP, templates="simple").manifest == M.load(ZOO_SUP).manifest
    # real CLIPs: their own sets; the zoo's names are errors naming the model and the sets
    with pytest.raises(M.TemplateSetError, match=r"openclip:RN50@random: .*\['openai', 'simple', "
                                                 r"'single'\]"):
        M.load("openclip:RN50@random", templates="default")


def test_zoo_templates_through_predict_change_the_key(tmp_path):
    from clipsafety import synth
    from clipsafety.infer import predict

    spec = synth.get_dataset("id-test", n=32)
    kw = {"store": tmp_path / "s", "progress": False, "device": "cpu"}
    a = predict(ZOO_CLIP, spec, **kw)
    b = predict(ZOO_CLIP, spec, templates="simple", **kw)
    c = predict(ZOO_CLIP, spec, templates="default", **kw)
    assert a.manifest["key"] != b.manifest["key"] and not np.allclose(a.logits, b.logits)
    assert c.cache_hit and c.manifest["key"] == a.manifest["key"]
    assert b.manifest["model"]["head"]["templates"] == "simple"
