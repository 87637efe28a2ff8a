"""Zero-shot heads: template sets from open_clip, and logits checked by hand."""

from __future__ import annotations

import clipsafety
import pytest
import torch
import torch.nn.functional as F
from clipsafety.heads import (
    ZeroShotHead,
    label_space_classes,
    resolve_classnames,
    resolve_templates,
)
from open_clip.zero_shot_metadata import (
    IMAGENET_CLASSNAMES,
    OPENAI_IMAGENET_TEMPLATES,
    SIMPLE_IMAGENET_TEMPLATES,
)

torch.set_num_threads(2)


def test_named_template_sets_are_open_clips():
    openai, name = resolve_templates("openai")
    assert name == "openai" and len(openai) == 80
    assert openai == [t("{}") for t in OPENAI_IMAGENET_TEMPLATES]
    simple, _ = resolve_templates("simple")
    assert len(simple) == 7 and simple == [t("{}") for t in SIMPLE_IMAGENET_TEMPLATES]
    assert resolve_templates("single") == (["a photo of a {}."], "single")


def test_template_list_and_file(tmp_path):
    p = tmp_path / "mine.txt"
    p.write_text("a sketch of a {}.\n\nitap of a {}.\n")
    t, name = resolve_templates(p)
    assert t == ["a sketch of a {}.", "itap of a {}."] and name.startswith("file:mine.txt-")
    t2, name2 = resolve_templates(["a sketch of a {}.", "itap of a {}."])
    assert t2 == t and name2.startswith("custom-")
    with pytest.raises(ValueError, match="exactly one"):
        resolve_templates(["no placeholder"])
    with pytest.raises(ValueError, match="neither a named set"):
        resolve_templates("opneai")


def test_label_spaces():
    assert label_space_classes("imagenet-1k") == list(IMAGENET_CLASSNAMES)
    assert len(label_space_classes("cue-conflict-16")) == 16
    names, space = resolve_classnames(["cat", "dog"])
    assert names == ["cat", "dog"] and space.startswith("custom-")
    with pytest.raises(KeyError, match="label space"):
        label_space_classes("imagenet-21k")


@pytest.fixture(scope="module")
def clip():
    return clipsafety.load("openclip:ViT-B-32@random", image_size=32, classnames=["cat", "dog", "car"],
                           templates=["a photo of a {}.", "a drawing of a {}."])


def _hand_head(m, names, templates):
    """Prompt ensembling written out: normalise, average over templates, normalise."""
    tok = m.extra["tokenizer"]
    cols = []
    with torch.no_grad():
        for c in names:
            e = F.normalize(m.module.clip.encode_text(tok([t.format(c) for t in templates])), dim=-1)
            cols.append(F.normalize(e.mean(0), dim=-1))
    return torch.stack(cols, dim=1)


@pytest.mark.slow
def test_head_logits_match_hand_computation(clip):
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    W = _hand_head(clip, ["cat", "dog", "car"], ["a photo of a {}.", "a drawing of a {}."])
    with torch.no_grad():
        img = F.normalize(clip.module.clip.encode_image(x), dim=-1)
        ref = clip.module.clip.logit_scale.exp() * img @ W
        out = clip.module(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    assert clip.logit_policy == {"kind": "clip", "scale": pytest.approx(1 / 0.07), "bias": None}
    assert clip.label_space.startswith("custom-") and clip.classes == ["cat", "dog", "car"]


def test_fixed_scale_and_logit_bias(clip):
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    base = clip.module
    with torch.no_grad():
        cos = base(x) / base.logit_policy["scale"]
    fixed = ZeroShotHead(base.clip, base.tokenizer, base.classnames, base.templates, logit_scale=100.0)
    fixed.weights = base.weights
    assert fixed.logit_policy == {"kind": "clip-fixed", "scale": 100.0, "bias": None}
    with torch.no_grad():
        torch.testing.assert_close(fixed(x), 100.0 * cos, rtol=1e-4, atol=1e-4)
        base.clip.logit_bias = torch.nn.Parameter(torch.tensor([-10.0]))
        try:
            biased = ZeroShotHead(base.clip, base.tokenizer, base.classnames, base.templates)
            biased.weights = base.weights
            assert biased.logit_policy["bias"] == -10.0
            torch.testing.assert_close(biased(x), base.logit_policy["scale"] * cos - 10.0,
                                       rtol=1e-4, atol=1e-4)
        finally:
            base.clip.logit_bias = None


def test_head_is_cached_on_disk_and_reused(tmp_path, monkeypatch):
    """A second load builds no text embeddings: the head comes from the disk cache."""
    import clipsafety.heads as heads
    import torch
    from clipsafety.models import load

    monkeypatch.setenv("CLIPSAFETY_CACHE", str(tmp_path))
    names = ["cat", "dog", "car"]
    m1 = load("openclip:RN50@random", classnames=names, templates="single", image_size=64)
    w1 = m1.module.build().clone()
    files = list((tmp_path / "heads").glob("*.safetensors"))
    assert len(files) == 1

    calls = []
    import open_clip

    real = open_clip.build_zero_shot_classifier
    monkeypatch.setattr(open_clip, "build_zero_shot_classifier",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    m2 = load("openclip:RN50@random", classnames=names, templates="single", image_size=64)
    assert torch.equal(m2.module.build(), w1) and not calls
    # other templates: another key, built afresh
    m3 = load("openclip:RN50@random", classnames=names, templates="simple", image_size=64)
    m3.module.build()
    assert calls and len(list((tmp_path / "heads").glob("*.safetensors"))) == 2
    assert heads.head_cache_key({"source": "hub-unknown"}, "RN50", {}) is None
