"""The tiny model zoo: ``load("zoo:<id>")`` and ``list_zoo()``.

Weights are float16 safetensors under ``data/zoo/weights``; ``data/zoo/catalog.csv`` holds the
metadata (``id, group, family, source, samples, resolution`` plus extras). Three kinds:

- zero-shot CLIP (``kind=clip``): open_clip ``CLIP`` built from the config stored in the
  file; the head is built with ``open_clip.build_zero_shot_classifier`` over the world's
  templates (``"default"``, ``"simple"``, ``"single"`` or a list of strings);
  ``logits = exp(logit_scale) * normalize(img) @ W``, policy ``{"kind": "clip", ...}``.
- supervised (``kind=sup``): a registered timm model with a 10-way head.
- fine-tuned CLIP (``kind=ft``/``ft2``): the CLIP image tower plus a linear head on the
  normalised embedding (``{"kind": "classifier"}``).

Images are normalised with mean 0.5 and std 0.25 per channel at 32x32.

The synthetic world gets its reference models from here as arguments
(:func:`reference_scorer` for the A-like filter, :func:`alignment_scorer` for curation;
:mod:`clipsafety.zoo.reference`); it never imports this package.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from clipsafety.external import sha256_file as _sha256

ZOO_DIR = Path(__file__).resolve().parents[3] / "data" / "zoo"
MEAN, STD, RESOLUTION = 0.5, 0.25, 32


def zoo_dir() -> Path:
    """``data/zoo`` of this checkout, or the directory named by ``CLIPSAFETY_ZOO``."""
    import os

    return Path(os.environ["CLIPSAFETY_ZOO"]) if os.environ.get("CLIPSAFETY_ZOO") else ZOO_DIR


def list_zoo(include_reference: bool = False):
    """The catalog as a DataFrame (reference models excluded unless asked)."""
    import pandas as pd

    path = zoo_dir() / "catalog.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run `make zoo` to train the zoo")
    cat = pd.read_csv(path)
    if not include_reference:
        cat = cat[cat["reference"] == 0].reset_index(drop=True)
    return cat


def array_transform(images: np.ndarray):
    """``uint8 [N, H, W, 3]`` -> normalised float tensor ``[N, 3, 32, 32]`` (batched path)."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-1] != RESOLUTION or x.shape[-2] != RESOLUTION:
        x = F.interpolate(x, size=(RESOLUTION, RESOLUTION), mode="bilinear", antialias=True,
                          align_corners=False)
    return (x - MEAN) / STD


def pil_transform():
    """PIL RGB -> normalised ``[3, 32, 32]`` tensor (torchvision)."""
    from torchvision import transforms as T

    return T.Compose([T.Resize((RESOLUTION, RESOLUTION)), T.ToTensor(),
                      T.Normalize([MEAN] * 3, [STD] * 3)])


def _modules():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class ZeroShotCLIP(nn.Module):
        """Image tower + fixed zero-shot head: ``scale * normalize(visual(x)) @ W``."""

        def __init__(self, visual, weights, scale: float):
            super().__init__()
            self.visual = visual
            self.register_buffer("head", weights)
            self.scale = float(scale)

        def forward(self, x):
            return self.scale * F.normalize(self.visual(x), dim=-1) @ self.head

    class FineTunedCLIP(nn.Module):
        """Image tower + linear head on the normalised embedding."""

        def __init__(self, visual, n_classes: int, embed_dim: int):
            super().__init__()
            self.visual = visual
            self.head = nn.Linear(embed_dim, n_classes)

        def forward(self, x):
            return self.head(F.normalize(self.visual(x), dim=-1))

    return torch, ZeroShotCLIP, FineTunedCLIP


def build_clip(cfg: dict):
    import open_clip

    import clipsafety.zoo.arch  # noqa: F401  (registers the timm models)

    return open_clip.CLIP(**cfg)


def zero_shot_head(clip_model, templates="default", classes=None):
    """``[D, C]`` zero-shot weights via ``open_clip.build_zero_shot_classifier``."""
    import open_clip
    import torch

    from clipsafety.synth import CATEGORIES, TEMPLATES, WordTokenizer

    if isinstance(templates, str):
        if templates not in TEMPLATES:
            raise KeyError(f"unknown template set {templates!r}; expected one of "
                           f"{list(TEMPLATES)} or a list of strings with '{{}}'")
        templates = TEMPLATES[templates]
    tok = WordTokenizer(clip_model.context_length if hasattr(clip_model, "context_length") else 16)
    with torch.no_grad():
        return open_clip.build_zero_shot_classifier(
            clip_model, tok, list(classes or CATEGORIES), list(templates), num_classes_per_batch=None)


@lru_cache(maxsize=128)
def _read(zoo_id: str):
    from safetensors import safe_open

    path = zoo_dir() / "weights" / f"{zoo_id}.safetensors"
    if not path.exists():
        known = sorted(p.stem for p in (zoo_dir() / "weights").glob("*.safetensors"))
        raise KeyError(f"zoo model {zoo_id!r} not found at {path}; known ids: {known[:60]} "
                       "(run `make zoo` to train the zoo)")
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["clipsafety"])
        state = {k: f.get_tensor(k) for k in f.keys()}
    return state, meta, _sha256(path)


def build_module(meta: dict, state: dict | None = None, templates="default"):
    """The ``nn.Module`` for a weights file's metadata (and state, if given)."""
    import timm

    import clipsafety.zoo.arch  # noqa: F401

    _, ZeroShotCLIP, FineTunedCLIP = _modules()
    kind = meta["kind"]
    st = None if state is None else {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    if kind == "sup":
        m = timm.create_model(meta["arch"], num_classes=meta["n_classes"])
        if st is not None:
            m.load_state_dict(st)
        return m.eval(), None
    clip = build_clip(meta["clip_config"])
    if kind == "clip":
        if st is not None:
            clip.load_state_dict(st)
        clip.eval()
        W = zero_shot_head(clip, templates)
        scale = float(clip.logit_scale.detach().exp())
        return ZeroShotCLIP(clip.visual, W, scale).eval(), scale
    m = FineTunedCLIP(clip.visual, meta["n_classes"], meta["clip_config"]["embed_dim"])
    if st is not None:
        m.load_state_dict(st)
    return m.eval(), None


def load(zoo_id: str, device: str = "cpu", templates="default"):
    """A :class:`~clipsafety.records.LoadedModel` for ``zoo:<id>`` (prefix optional).

    ``templates`` only matters for zero-shot CLIP: a set name or a list of strings.
    """
    from clipsafety.records import LoadedModel
    from clipsafety.synth import CATEGORIES, TEMPLATES

    zoo_id = zoo_id.removeprefix("zoo:")
    state, meta, sha = _read(zoo_id)
    module, scale = build_module(meta, state, templates)
    module = module.to(device)
    if meta["kind"] == "clip":
        tl = TEMPLATES[templates] if isinstance(templates, str) else list(templates)
        head = {"kind": "zero-shot", "templates": templates if isinstance(templates, str) else "custom",
                "template_hash": hashlib.sha256("\n".join(tl).encode()).hexdigest()[:16]}
        policy = {"kind": "clip", "scale": scale, "bias": None}
    else:
        head = {"kind": "trained"}
        policy = {"kind": "classifier"}
    manifest = {"model_id": f"zoo:{zoo_id}", "weights_sha256": sha, "kind": meta["kind"],
                "arch": meta["arch"], "head": head, "logit_policy": policy,
                "preprocess": {"resolution": RESOLUTION, "mean": MEAN, "std": STD}}
    return LoadedModel(model_id=f"zoo:{zoo_id}", module=module, transform=pil_transform(),
                       classes=list(CATEGORIES), logit_policy=policy, manifest=manifest,
                       label_space="synth",
                       extra={"array_transform": array_transform, "meta": meta})


def predict_arrays(model, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Logits ``float32 [N, C]`` of a loaded zoo model on ``uint8`` images (no cache)."""
    import torch

    mod = model.module if hasattr(model, "module") else model
    mod.eval()
    dev = next(mod.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            out.append(mod(array_transform(images[i:i + batch_size]).to(dev)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 10), np.float32)


def __getattr__(name: str):
    # the scorers live in clipsafety.zoo.reference (imported on first use)
    if name in ("alignment_scorer", "reference_scorer"):
        from clipsafety.zoo import reference

        return getattr(reference, name)
    raise AttributeError(f"module 'clipsafety.zoo' has no attribute {name!r}")


__all__ = ["alignment_scorer", "array_transform", "list_zoo", "load", "predict_arrays",
           "reference_scorer", "zero_shot_head", "zoo_dir"]
