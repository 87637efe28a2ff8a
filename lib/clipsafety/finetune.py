"""Fine-tuning recipes for zoo CLIPs, on arrays: linear probe, full fine-tuning, LP-FT,
two-stage fine-tuning through the world's sub-types, and WiSE-FT weight interpolation.

Every recipe starts from the same zero-shot parent (a ``kind=clip`` zoo model) and ends in a
:class:`clipsafety.zoo` ``FineTunedCLIP`` (image tower + linear head on the normalised
embedding), so all of them are scored the same way. The zero-shot model itself is written in
that form: the head's weight is ``exp(logit_scale) * W0.T`` (``W0`` the zero-shot text head)
and its bias 0, which gives the zero-shot logits ``scale * normalize(f) @ W0``.

- :func:`linear_probe`: the head alone on frozen, pre-computed features;
- :func:`full_finetune`: tower and head together (:func:`clipsafety.zoo.train.train_classifier`);
- LP-FT (Kumar et al. 2022): :func:`full_finetune` of the module whose head is the probe's;
- :func:`two_stage`: full fine-tuning on the 30 sub-types (head from the sub-type names'
  zero-shot weights), then on the 10 categories (head from the zero-shot head), half the
  budget each;
- :func:`interpolate` (WiSE-FT, Wortsman et al. 2022): ``(1 - alpha) * theta_zs + alpha *
  theta_ft`` over every parameter, tower and head.

All training goes through the zoo's one loop (:func:`clipsafety.zoo.train._optimise`):
seeded batches, AdamW, warm-up and cosine schedule. Same machine, library versions and torch
thread count give the same weights.
"""

from __future__ import annotations

import numpy as np

#: learning rate of full fine-tuning per image-tower family (half the zoo's CLIP rate: the
#: chapter's budgets are short)
FT_LR = {"vit": 1e-3 / 2, "resnet": 3e-3 / 2, "convnext": 3e-3 / 2}
PROBE_LR = 1e-2


def _torch():
    import torch

    return torch


def check_parent(zoo_id: str) -> str:
    """``zoo:<id>`` of a zero-shot zoo CLIP, or a ValueError naming the id and the valid ones."""
    from clipsafety.zoo import list_zoo

    cat = list_zoo()
    mid = str(zoo_id).removeprefix("zoo:")
    clips = list(cat.loc[cat["kind"] == "clip", "id"])
    if mid not in set(cat["id"]):
        raise ValueError(f"parent {zoo_id!r} is not a zoo model; expected a zero-shot zoo CLIP "
                         f"such as {['zoo:' + c for c in clips[:3]]} (all: python -m "
                         "clipsafety.cli models --catalog zoo, group clip-zeroshot).")
    if mid not in clips:
        kind = cat.loc[cat["id"] == mid, "kind"].iloc[0]
        raise ValueError(f"parent {zoo_id!r} is a {kind!r} model, not a zero-shot CLIP; "
                         "fine-tuning starts from a CLIP with a text tower (zoo group "
                         f"clip-zeroshot, e.g. {['zoo:' + c for c in clips[:3]]}).")
    return "zoo:" + mid


def zero_shot_module(parent: str, templates="default", classes=None):
    """``(module, family)``: the parent's image tower with its zero-shot head written as a
    linear head (module docstring), in eval mode. ``classes``: class names of the head
    (default the world's categories; the sub-type names for two-stage's first stage)."""
    from clipsafety.zoo import _modules, _read, build_clip, zero_shot_head

    torch = _torch()
    state, meta, _ = _read(check_parent(parent).removeprefix("zoo:"))
    clip = build_clip(meta["clip_config"])
    clip.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
    clip.eval()
    W = zero_shot_head(clip, templates, classes)  # [D, C]
    scale = float(clip.logit_scale.detach().exp())
    _, _, FineTunedCLIP = _modules()
    m = FineTunedCLIP(clip.visual, W.shape[1], meta["clip_config"]["embed_dim"])
    with torch.no_grad():
        m.head.weight.copy_(scale * W.T)
        m.head.bias.zero_()
    return m.eval(), meta["arch"].split("_")[1]


def features(module, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Normalised image embeddings ``float32 [N, D]`` of a module's tower."""
    import torch.nn.functional as F

    from clipsafety.zoo import array_transform

    torch = _torch()
    module.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            out.append(F.normalize(module.visual(array_transform(images[i:i + batch_size])),
                                   dim=-1).numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


def head_arrays(module) -> tuple[np.ndarray, np.ndarray]:
    """``(W [C, D], b [C])`` of a module's linear head, float64."""
    return (module.head.weight.detach().double().numpy().copy(),
            module.head.bias.detach().double().numpy().copy())


def logits_of(feats: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Logits of a linear head on normalised features: ``feats @ W.T + b``."""
    return np.asarray(feats, np.float64) @ np.asarray(W, np.float64).T + np.asarray(b, np.float64)


def cosines_of(feats: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Cosine of each (normalised) feature with each head row: MCM's input for any linear head
    (for the zero-shot head these are the image-text cosines)."""
    Wn = np.asarray(W, np.float64) / np.linalg.norm(W, axis=1, keepdims=True)
    return np.asarray(feats, np.float64) @ Wn.T


def linear_probe(module, train_feats: np.ndarray, labels: np.ndarray, samples_seen: int,
                 seed: int, lr: float = PROBE_LR, batch: int = 256) -> list[float]:
    """Train ``module.head`` in place on frozen features (cross-entropy, the zoo's loop);
    the head starts from its current weights. Returns the per-step losses."""
    import torch.nn.functional as F

    from clipsafety.zoo.train import _optimise

    torch = _torch()
    X = torch.from_numpy(np.ascontiguousarray(train_feats, dtype=np.float32))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    head = module.head
    return _optimise(head, len(X), samples_seen, seed, lr, batch,
                     lambda idx: F.cross_entropy(head(X[idx]), y[idx]), progress=False)


def full_finetune(module, images: np.ndarray, labels: np.ndarray, samples_seen: int, seed: int,
                  lr: float, batch: int = 64) -> list[float]:
    """Fine-tune tower and head in place (:func:`clipsafety.zoo.train.train_classifier`)."""
    from clipsafety.zoo.train import train_classifier

    return train_classifier(module, images, labels, samples_seen, seed, lr=lr, batch=batch,
                            progress=False)


def two_stage(parent: str, images: np.ndarray, labels: np.ndarray, subtypes: np.ndarray,
              samples_seen: int, seed: int, lr: float, templates="default"):
    """Two-stage fine-tuning: the sub-types (``labels * 3 + subtypes``, head from the 30
    sub-type names' zero-shot weights) for half of ``samples_seen``, then the categories (head
    from the zero-shot head on the stage-1 tower) for the rest. Returns the 10-way module."""
    from clipsafety.synth import CATEGORIES, SUBTYPES

    torch = _torch()
    names = [f"{s} {c}" for c in CATEGORIES for s in SUBTYPES[c]]
    m1, _ = zero_shot_module(parent, templates, names)
    n1 = samples_seen // 2
    full_finetune(m1, images, np.asarray(labels) * 3 + np.asarray(subtypes), n1, seed, lr)
    m2, _ = zero_shot_module(parent, templates)
    with torch.no_grad():
        m2.visual.load_state_dict(m1.visual.state_dict())
    full_finetune(m2, images, labels, samples_seen - n1, seed + 1, lr)
    return m2.eval()


def interpolate(zero_shot, fine_tuned, alpha: float):
    """WiSE-FT: a copy of ``zero_shot`` whose every floating parameter and buffer is
    ``(1 - alpha) * zero_shot + alpha * fine_tuned`` (``alpha`` in [0, 1]; 0 gives the
    zero-shot weights and 1 the fine-tuned ones, bit for bit)."""
    import copy

    torch = _torch()
    a = float(alpha)
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (0 = zero-shot, 1 = fine-tuned), got {alpha}")
    s0, s1 = zero_shot.state_dict(), fine_tuned.state_dict()
    if s0.keys() != s1.keys():
        raise ValueError("zero-shot and fine-tuned modules differ in parameters; interpolate "
                         "two modules of the same architecture and head size")
    out = copy.deepcopy(zero_shot)
    mixed = {}
    for k, v in s0.items():
        if not v.is_floating_point():
            mixed[k] = v
        elif a == 0.0:
            mixed[k] = v.clone()
        elif a == 1.0:
            mixed[k] = s1[k].clone()
        else:
            mixed[k] = torch.lerp(v, s1[k], a)
    out.load_state_dict(mixed)
    return out.eval()


__all__ = ["FT_LR", "PROBE_LR", "check_parent", "cosines_of", "features", "full_finetune",
           "head_arrays", "interpolate", "linear_probe", "logits_of", "two_stage",
           "zero_shot_module"]
