"""Issue 30 (speed), item 2: open_clip store keys without a build; builds without a throwaway
initialisation; the text tower dropped once a head is built.

1. An open_clip id is described from its spec, the configs open_clip ships and its weights'
   digest (``@random``: the seed; a checkpoint: its sha256 and its logit scale and bias read
   alone): the described manifest is the built model's (random and checkpoint weights, a
   SigLIP-like bias, a fixed scale, an image size, other class names); the preprocessing
   configuration equals what ``open_clip.create_model`` sets for every architecture family;
   a store hit constructs no open_clip model or head; keys differ with the weights and the
   preprocessing and agree across processes.
2. A model from a checkpoint (timm, open_clip) built with its parameters on the meta device
   and the checkpoint assigned is the ordinary build bit for bit (state dict, logits), also
   where the build falls back (a buffer computed from a parameter).
3. The text tower dropped after the head is built leaves the logits unchanged.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_real import make_wnid_dataset

torch.set_num_threads(2)

TINY = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8,
                                        "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}


@pytest.fixture(scope="module")
def tiny_archs(tmp_path_factory):
    """Two tiny open_clip configs: a CLIP and a SigLIP-like one (a logit bias, another scale)."""
    import open_clip

    d = tmp_path_factory.mktemp("configs")
    (d / "cs-tiny-clip.json").write_text(json.dumps(TINY))
    (d / "cs-tiny-biased.json").write_text(json.dumps({**TINY, "init_logit_bias": -10,
                                                       "init_logit_scale": 2.302585}))
    for f in d.iterdir():
        open_clip.add_model_config(f)
    return "cs-tiny-clip", "cs-tiny-biased"


def _checkpoint(path: Path, arch: str, seed: int, half_scale: bool = False) -> str:
    """A random state dict of ``arch`` standing in for pretrained weights (some tensors float16,
    as real checkpoints are), saved as .pt or .safetensors by the name's suffix."""
    import open_clip

    torch.manual_seed(seed)
    sd = open_clip.create_model(arch).state_dict()
    sd = {k: (v.half() if half_scale and (k == "logit_scale" or k.startswith("visual.conv1")) else v)
          for k, v in sd.items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        torch.save(sd, path)
    return str(path)


@contextlib.contextmanager
def no_build():
    """Inside: building an open_clip model (its factory, or any module that registers a
    parameter: a tower, a layer, a zero-shot head) or loading a model raises."""
    import clipsafety.models as models
    import open_clip
    import open_clip.factory as factory
    from torch.nn.modules.module import register_module_parameter_registration_hook

    def refuse(*a, **k):
        raise AssertionError("built a model")

    def on_param(module, name, param):
        raise AssertionError(f"built a {type(module).__name__} (parameter {name})")

    with pytest.MonkeyPatch.context() as m:
        for mod, name in ((open_clip, "create_model"), (open_clip, "create_model_and_transforms"),
                          (factory, "create_model"), (factory, "create_model_and_transforms"),
                          (models, "load")):
            m.setattr(mod, name, refuse)
        handle = register_module_parameter_registration_hook(on_param)
        try:
            yield
        finally:
            handle.remove()


# ------------------------------------------------------------------ 1. keys without a build
def test_described_openclip_manifest_is_the_built_models(tmp_path, tiny_archs, monkeypatch):
    import clipsafety.models as models

    clip, siglip = tiny_archs
    pt = _checkpoint(tmp_path / "a.pt", clip, 1, half_scale=True)
    st = _checkpoint(tmp_path / "b.safetensors", siglip, 2, half_scale=True)
    cases = [(f"openclip:{clip}@random", {}), (f"openclip:{siglip}@random", {}),
             (f"openclip:{clip}@random", {"logit_scale": 100.0}),
             (f"openclip:{clip}@random", {"image_size": 48, "templates": "single"}),
             (f"openclip:{clip}@{pt}", {"classnames": ["cat", "dog"]}),
             (f"openclip:{siglip}@{st}", {}), ("openclip:ViT-B-32@random", {"image_size": 64}),
             ("openclip:RN50@random", {"image_size": 64})]
    told = {}
    with no_build():
        for i, (mid, kw) in enumerate(cases):
            told[i] = models.describe(mid, **kw)
            assert told[i] is not None and told[i].module is None, mid
    for i, (mid, kw) in enumerate(cases):
        built = models.load(mid, **kw)
        assert (told[i].manifest, told[i].label_space, told[i].classes, told[i].logit_policy) == (
            built.manifest, built.label_space, built.classes, built.logit_policy), (mid, kw)
        assert repr(told[i].transform) == repr(built.transform)
    policies = {told[i].manifest["logit_policy"]["bias"] for i in (0, 1)}
    assert policies == {None, -10.0}  # the SigLIP-like config's bias is read from its config
    assert told[5].manifest["logit_policy"]["bias"] == pytest.approx(-10.0)  # and from its file


@pytest.mark.parametrize("arch", ["ViT-B-32", "RN50x4", "ViT-B-16-SigLIP", "convnext_base",
                                  "coca_ViT-B-32", "EVA02-B-16", "ViTamin-S", "MobileCLIP-S1"])
def test_preprocessing_config_is_the_one_create_model_sets(arch):
    """Every architecture family: ours from the configs equals the model's (built on meta)."""
    import open_clip
    from clipsafety.models.openclip import _model_class, logit_params, preprocess_cfg

    built = {}
    for size in (None, 96):
        kw = {"force_image_size": size} if size else {}
        with torch.device("meta"):
            m = open_clip.create_model(arch, device="meta", pretrained_image=False,
                                       pretrained_text=False, **kw)
        assert preprocess_cfg(arch, None, size) == m.visual.preprocess_cfg, (arch, size)
        built[size] = m
    base = built[None]
    cfg = open_clip.get_model_config(arch)
    assert type(m) is _model_class(cfg)
    assert (logit_params(arch)[1] is None) == (m.logit_bias is None)
    for tag in open_clip.list_pretrained_tags_by_model(arch)[:2]:  # a tag's entries merged in
        want = open_clip.transform.merge_preprocess_dict(
            {**base.visual.preprocess_cfg}, open_clip.get_pretrained_cfg(arch, tag))
        assert preprocess_cfg(arch, tag) == {**want, "size": base.visual.preprocess_cfg["size"]}


def _key(mid: str, ds, **kw) -> str:
    from clipsafety.infer import key_manifest, resolve_classnames
    from clipsafety.models import describe
    from clipsafety.store import manifest_key

    told = describe(mid, classnames=resolve_classnames(None, ds), **kw)
    return manifest_key(key_manifest(told, ds, "fp32"))


def test_keys_differ_with_weights_and_preprocessing_and_agree_across_processes(tmp_path, tiny_archs):
    from clipsafety.datasets import get_dataset

    clip, _ = tiny_archs
    ds = get_dataset(f"folder:{make_wnid_dataset(tmp_path, 'wnid', [1, 2], per_class=1)}")
    a = _checkpoint(tmp_path / "a.pt", clip, 1)
    b = _checkpoint(tmp_path / "b.pt", clip, 2)
    keys = {"random": _key(f"openclip:{clip}@random", ds), "a": _key(f"openclip:{clip}@{a}", ds),
            "b": _key(f"openclip:{clip}@{b}", ds),
            "a48": _key(f"openclip:{clip}@{a}", ds, image_size=48),
            "vitb32": _key("openclip:ViT-B-32@random", ds)}
    assert len(set(keys.values())) == len(keys), keys
    assert _key(f"openclip:{clip}@{a}", ds) == keys["a"]
    folder, a_id = f"folder:{tmp_path / 'wnid'}", f"openclip:{clip}@{a}"
    code = ("import json, open_clip, sys; sys.path.insert(0, 'tests');"
            f"[open_clip.add_model_config(p) for p in {[str(p) for p in _config_files()]}];"
            "from clipsafety.datasets import get_dataset; from test_build import _key;"
            f"ds = get_dataset({folder!r});"
            f"print(json.dumps([_key({a_id!r}, ds), _key('openclip:ViT-B-32@random', ds)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[1])
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [keys["a"], keys["vitb32"]]


def _config_files():
    import open_clip.factory as f

    return [p for p in f._MODEL_CONFIG_PATHS if Path(p).is_file()]


def test_an_openclip_store_hit_builds_no_model(tmp_path, tiny_archs, monkeypatch):
    from clipsafety.infer import predict

    monkeypatch.setenv("CLIPSAFETY_CACHE", str(tmp_path / "cache"))
    clip, siglip = tiny_archs
    folder = make_wnid_dataset(tmp_path, "wnid", [1, 2, 3], per_class=2)
    ckpt = _checkpoint(tmp_path / "s.safetensors", siglip, 3, half_scale=True)
    ids = (f"openclip:{clip}@random", f"openclip:{siglip}@{ckpt}")
    kw = dict(store=tmp_path / "s", templates="single", progress=False)  # a 1000-class head, one prompt each
    first = {mid: predict(mid, f"folder:{folder}", **kw) for mid in ids}
    assert not any(r.cache_hit for r in first.values())
    for mid in ids:
        with no_build():
            hit = predict(mid, f"folder:{folder}", **kw)
        assert hit.cache_hit and hit.manifest["key"] == first[mid].manifest["key"]
        assert np.array_equal(hit.logits, first[mid].logits)


# ------------------------------------------------------------------ 2. builds without init
def test_timm_checkpoint_built_without_init_is_the_ordinary_build(tmp_path):
    import timm
    from clipsafety.models._build import STATS
    from clipsafety.models.timm_source import build_pretrained

    x = torch.randn(2, 3, 64, 64)
    for name, path in (("resnet18", "r18.pth"), ("vit_tiny_patch16_224", "vit.safetensors"),
                       ("swin_tiny_patch4_window7_224", "swin.pth")):
        torch.manual_seed(0)
        sd = {k: v.half() if k.endswith("weight") and v.ndim == 4 else v
              for k, v in timm.create_model(name).state_dict().items()}
        f = tmp_path / path
        if f.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in sd.items()}, str(f))
        else:
            torch.save(sd, f)
        kw = {"pretrained_cfg_overlay": {"file": str(f)}}
        if "resnet" not in name:
            kw["img_size"] = 64
        before = dict(STATS)
        fast = build_pretrained(name, **kw).eval()
        slow = timm.create_model(name, pretrained=True, **kw).eval()
        how = "initialised" if STATS["initialised"] > before["initialised"] else "assigned"
        assert how == ("initialised" if name.startswith("swin") else "assigned"), name
        a, b = fast.state_dict(), slow.state_dict()
        assert list(a) == list(b)
        assert all(a[k].dtype == b[k].dtype and a[k].stride() == b[k].stride()
                   and torch.equal(a[k], b[k]) for k in b), name
        with torch.no_grad():
            assert torch.equal(fast(x), slow(x)), name


def test_openclip_checkpoint_built_without_init_is_the_ordinary_build(tmp_path, tiny_archs):
    import open_clip
    from clipsafety.models._build import STATS
    from clipsafety.models.openclip import build_from_checkpoint

    x = torch.randn(2, 3, 32, 32)
    text = open_clip.get_tokenizer(tiny_archs[0])(["a photo of a cat", "a dog"])
    for arch, name in zip(tiny_archs, ("a.pt", "b.safetensors")):
        f = _checkpoint(tmp_path / name, arch, 5, half_scale=True)
        before = STATS["assigned"]
        fast, pf = build_from_checkpoint(arch, f)
        assert STATS["assigned"] == before + 1
        slow, _, ps = open_clip.create_model_and_transforms(arch, pretrained=f)
        fast.eval(), slow.eval()
        assert repr(pf) == repr(ps)
        a, b = fast.state_dict(), slow.state_dict()
        assert all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in b) and list(a) == list(b)
        assert torch.equal(fast.attn_mask, slow.attn_mask)  # a buffer the checkpoint does not hold
        with torch.no_grad():
            assert torch.equal(fast.encode_image(x), slow.encode_image(x))
            assert torch.equal(fast.encode_text(text), slow.encode_text(text))


# ------------------------------------------------------------------ 3. the text tower
def test_dropping_the_text_tower_keeps_the_logits(tmp_path, tiny_archs, monkeypatch):
    import clipsafety.heads as heads
    import clipsafety.models as models
    from clipsafety.infer import predict

    monkeypatch.setenv("CLIPSAFETY_HEAD_CACHE", "0")
    m = models.load(f"openclip:{tiny_archs[0]}@random", classnames=["cat", "dog", "bird"])
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        before = m.module(x)
        n_before = sum(p.numel() for p in m.module.parameters())
        m.module.image_only()
        after = m.module(x)
    assert torch.equal(before, after)
    assert not hasattr(m.module.clip, "transformer") and not hasattr(m.module.clip, "token_embedding")
    assert sum(p.numel() for p in m.module.parameters()) < 0.5 * n_before
    with pytest.raises(RuntimeError, match="text tower was dropped"):
        models.with_head(m, templates="single").module.build()

    dropped = []
    real = heads.drop_text_tower
    monkeypatch.setattr(heads, "drop_text_tower", lambda c: (dropped.append(c), real(c)))
    folder = make_wnid_dataset(tmp_path, "wnid", [1, 2], per_class=1)
    predict(f"openclip:{tiny_archs[0]}@random", f"folder:{folder}", store=tmp_path / "s",
            templates="single", progress=False)
    assert len(dropped) == 1


def _read_keys(monkeypatch) -> list[str]:
    """The names of the tensors read from safetensors files from here on."""
    import safetensors

    read: list[str] = []
    real = safetensors.safe_open

    class Recording:
        def __init__(self, *a, **k):
            self._f = real(*a, **k)

        def __enter__(self):
            self._f.__enter__()
            return self

        def __exit__(self, *exc):
            return self._f.__exit__(*exc)

        def keys(self):
            return self._f.keys()

        def get_tensor(self, name):
            read.append(name)
            return self._f.get_tensor(name)

    monkeypatch.setattr(safetensors, "safe_open", Recording)
    return read


def test_a_cached_head_builds_the_image_tower_alone(tmp_path, tiny_archs, monkeypatch):
    """With the head's text embeddings on disk, a model for images is its image tower alone:
    the text tower's tensors are never read, and manifest, transform and logits are the whole
    model's (a CLIP and a SigLIP-like model, at its own and at another image size). A pickle
    checkpoint, or a head not on disk, builds the whole model."""
    import clipsafety.models as models
    from clipsafety.models.openclip import IMAGE_KEYS, IMAGE_TOWER_STATS

    monkeypatch.setenv("CLIPSAFETY_CACHE", str(tmp_path / "cache"))
    names = ["cat", "dog", "bird"]
    for arch, size in ((tiny_archs[0], None), (tiny_archs[1], 48)):
        ckpt = _checkpoint(tmp_path / f"{arch}.safetensors", arch, 7, half_scale=True)
        kw = dict(classnames=names, templates="simple", image_size=size)
        x = torch.randn(2, 3, size or 32, size or 32)
        mid = f"openclip:{arch}@{ckpt}"
        declined = IMAGE_TOWER_STATS["declined"]
        whole = models.load_for_images(mid, **kw)  # no head on disk yet: the whole model
        assert hasattr(whole.module.clip, "transformer")
        assert IMAGE_TOWER_STATS["declined"] == declined  # not even tried
        with torch.no_grad():
            expected = whole.module(x)  # builds the head and writes it to the cache
        read = _read_keys(monkeypatch)
        built = IMAGE_TOWER_STATS["built"]
        alone = models.load_for_images(mid, **kw)
        monkeypatch.undo()
        monkeypatch.setenv("CLIPSAFETY_CACHE", str(tmp_path / "cache"))
        assert IMAGE_TOWER_STATS["built"] == built + 1
        assert read and all(k.startswith(IMAGE_KEYS) for k in read), read
        clip = alone.module.clip
        assert {n.split(".")[0] for n, _ in clip.named_parameters()} <= {"visual", "logit_scale", "logit_bias"}
        assert alone.manifest == whole.manifest and repr(alone.transform) == repr(whole.transform)
        assert alone.logit_policy == whole.logit_policy
        with torch.no_grad():
            assert torch.equal(alone.module(x), expected), arch
        assert alone.module.clip.visual.state_dict().keys() == whole.module.clip.visual.state_dict().keys()

    pickle = _checkpoint(tmp_path / "c.pt", tiny_archs[0], 7)
    mid = f"openclip:{tiny_archs[0]}@{pickle}"
    with torch.no_grad():
        models.load_for_images(mid, classnames=names, templates="simple").module(torch.randn(1, 3, 32, 32))
    built = IMAGE_TOWER_STATS["built"]
    again = models.load_for_images(mid, classnames=names, templates="simple")
    assert IMAGE_TOWER_STATS["built"] == built and hasattr(again.module.clip, "transformer")


def test_predict_on_a_miss_with_a_cached_head_builds_no_text_tower(tmp_path, tiny_archs, monkeypatch):
    from clipsafety.infer import predict
    from clipsafety.models.openclip import IMAGE_TOWER_STATS

    monkeypatch.setenv("CLIPSAFETY_CACHE", str(tmp_path / "cache"))
    folder = make_wnid_dataset(tmp_path, "wnid", [1, 2, 3], per_class=2)
    ckpt = _checkpoint(tmp_path / "m.safetensors", tiny_archs[0], 9)
    mid, kw = f"openclip:{tiny_archs[0]}@{ckpt}", dict(templates="single", progress=False)
    import clipsafety.files as files

    hashed = []
    real_hash = files._hash_file
    monkeypatch.setattr(files, "_hash_file", lambda p: (hashed.append(p), real_hash(p))[1])
    first = predict(mid, f"folder:{folder}", store=tmp_path / "s1", **kw)  # builds and caches the head
    built = IMAGE_TOWER_STATS["built"]
    other = predict(mid, f"folder:{folder}", store=tmp_path / "s2", **kw)  # a miss in another store
    assert IMAGE_TOWER_STATS["built"] == built + 1 and not other.cache_hit
    assert other.manifest["key"] == first.manifest["key"]
    assert np.array_equal(other.logits, first.logits)
    # described, then built, twice over: the checkpoint is hashed once in the process
    assert [h for h in hashed if str(h).endswith("m.safetensors")] == [Path(ckpt).resolve()]


def test_an_engine_worker_keeps_no_text_tower(tmp_path, tiny_archs, monkeypatch):
    """The local engine's cached model (as each Ray worker's) drops its text tower once the
    head is built, and builds the image tower alone when the head is on disk; same records."""
    from clipsafety import engines
    from clipsafety.models.openclip import IMAGE_TOWER_STATS
    from clipsafety.store import Store

    monkeypatch.setenv("CLIPSAFETY_CACHE", str(tmp_path / "cache"))
    folder = make_wnid_dataset(tmp_path, "wnid", [1, 2], per_class=2)
    ckpt = _checkpoint(tmp_path / "e.safetensors", tiny_archs[0], 11)
    mid, ds = f"openclip:{tiny_archs[0]}@{ckpt}", f"folder:{folder}"
    opts = engines.EvalOptions(templates="single", device="cpu")
    monkeypatch.setattr(engines, "_MODELS", type(engines._MODELS)())
    records = []
    for i in range(2):
        engines._MODELS.clear()
        built = IMAGE_TOWER_STATS["built"]
        run = engines.run_matrix([mid], [ds], opts, engine="local", store=tmp_path / f"s{i}", progress=False)
        assert [r["status"] for r in run.rows] == ["computed"]
        assert IMAGE_TOWER_STATS["built"] == built + i  # the second run finds the head on disk
        (held,) = engines._MODELS.values()
        assert not hasattr(held.module.clip, "transformer") and not hasattr(held.module.clip, "token_embedding")
        store = Store(tmp_path / f"s{i}")
        (key,) = store.keys()
        records.append((key, (store.record_dir(key) / "arrays.safetensors").read_bytes()))
    assert records[0] == records[1]
    # a store hit builds no head, even with nothing on disk to read it from
    import open_clip

    encoded = []
    real = open_clip.build_zero_shot_classifier
    monkeypatch.setattr(open_clip, "build_zero_shot_classifier",
                        lambda *a, **k: (encoded.append(1), real(*a, **k))[1])
    monkeypatch.setenv("CLIPSAFETY_HEAD_CACHE", "0")
    engines._MODELS.clear()
    run = engines.run_matrix([mid], [ds], opts, engine="local", store=tmp_path / "s0", progress=False)
    assert [r["status"] for r in run.rows] == ["cached"] and encoded == []
