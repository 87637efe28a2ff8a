"""Image features of CLIP models, cached once per (model, dataset), and zero-shot heads on them.

A zero-shot CLIP's logits are ``scale * normalize(image_tower(x)) @ W(templates)``: the image
side does not depend on the prompts. This module keeps the image side in the prediction store,
beside the logit records, so that a template set (or a learned prompt) costs one text-tower
pass (:func:`zero_shot_weights`, open_clip's ``build_zero_shot_classifier``) and one matrix
product (:func:`logits`), never another pass over the images.

Layout under the store root (:func:`clipsafety.store.default_root`)::

    features/<key>.safetensors   features float32 [N, D] (L2-normalised), targets int64 [N],
                                 ids in the metadata, and the full manifest (JSON)

``key = clipsafety.store.manifest_key(key manifest)``: the model id, its weights hash and
preprocessing (the model manifest without its head: templates do not change image features),
the dataset's manifest, the precision and the library version. Writes are atomic
(:func:`clipsafety.files.atomic_write_bytes`); a file that does not load or whose manifest
does not hash to its key is a miss and is rewritten.

:class:`ClipTowers` gives both towers of a zoo CLIP (``zoo:`` ids of kind ``clip``) or an
open_clip model (``openclip:`` ids); any other model is a :class:`NotAZeroShotCLIP` error.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FEATURE_FORMAT = 1


class NotAZeroShotCLIP(ValueError):
    """A model without a text tower was asked for CLIP features or prompts."""


@dataclass
class FeatureRecord:
    """L2-normalised image features of one model on one dataset, aligned with targets/ids."""

    features: np.ndarray
    targets: np.ndarray
    ids: np.ndarray
    manifest: dict
    cache_hit: bool = False

    @property
    def label_subset(self):
        return self.manifest["dataset"].get("label_subset")

    @property
    def scale(self) -> float:
        return float(self.manifest["logit_policy"]["scale"])


def logits(features: np.ndarray, weights, scale: float = 1.0) -> np.ndarray:
    """Zero-shot logits ``scale * features @ weights`` (``weights`` ``[D, C]``), float32
    (``scale=1``: the cosines). The product runs in torch: with the BLAS threads of numpy on a
    busy machine, this small product was 20 times slower (measured, 16 ms vs 0.8 ms)."""
    import torch

    W = torch.as_tensor(weights.detach().cpu() if hasattr(weights, "detach") else np.asarray(weights),
                        dtype=torch.float32)
    F = torch.as_tensor(np.asarray(features, np.float32))
    return (float(scale) * (F @ W)).numpy()


# --------------------------------------------------------------------------------------------
# the two towers of a CLIP

@dataclass
class ClipTowers:
    """Both towers of a zero-shot CLIP: ``clip`` (an open_clip model with its text tower),
    ``tokenizer``, ``classes`` (the head's class names), ``scale`` (``exp(logit_scale)``),
    ``manifest`` (the model's identity for the feature key, without the head) and what the
    image side needs (``transform`` per PIL image, ``array_transform`` per uint8 batch)."""

    model_id: str
    clip: object
    tokenizer: object
    classes: list[str]
    scale: float
    manifest: dict
    transform: object = None
    array_transform: object = None
    kind: str = "zoo"
    extra: dict = field(default_factory=dict)

    def encode_image(self, x):
        import torch.nn.functional as F

        if self.kind == "zoo":
            return F.normalize(self.clip.visual(x), dim=-1)
        return self.clip.encode_image(x, normalize=True)


def _not_clip(model_id: str, what: str) -> NotAZeroShotCLIP:
    return NotAZeroShotCLIP(
        f"{model_id}: {what}; test-time prompts need a zero-shot CLIP with a text tower: a zoo "
        "CLIP (group 'clip-zeroshot', e.g. 'zoo:clip-resnet-wit-10k'; `python -m clipsafety.cli "
        "models --catalog zoo`) or an open_clip id ('openclip:ARCH@TAG'). Drop this model from "
        "`models`.")


def clip_towers(model_id: str, device: str = "cpu", classnames=None) -> ClipTowers:
    """:class:`ClipTowers` of ``model_id`` (``zoo:`` CLIP or ``openclip:``), on ``device``."""
    if model_id.startswith("zoo:"):
        from clipsafety import zoo
        from clipsafety.synth import CATEGORIES, WordTokenizer

        state, meta, _ = zoo._read(model_id.removeprefix("zoo:"))
        if meta["kind"] != "clip":
            raise _not_clip(model_id, f"it is a zoo model of kind {meta['kind']!r} (a classifier "
                                      "with a trained head)")
        loaded = zoo.load(model_id, device="cpu", templates="single")
        clip = zoo.build_clip(meta["clip_config"])
        clip.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
        clip = clip.to(device).eval()
        man = {k: v for k, v in loaded.manifest.items() if k != "head"}
        return ClipTowers(model_id, clip, WordTokenizer(clip.context_length), list(CATEGORIES),
                          float(clip.logit_scale.detach().exp()), man, loaded.transform,
                          zoo.array_transform, "zoo")
    if model_id.startswith("openclip:"):
        from clipsafety.models import load

        loaded = load(model_id, device=device, classnames=classnames, templates="single")
        mod = loaded.module
        man = {k: v for k, v in loaded.manifest.items() if k not in ("head", "classnames")}
        man["label_space"] = loaded.label_space
        return ClipTowers(model_id, mod.clip.eval(), mod.tokenizer, list(loaded.classes),
                          float(mod.logit_policy["scale"]), man, loaded.transform,
                          (loaded.extra or {}).get("batch_transform"), "openclip",
                          {"label_space": loaded.label_space})
    raise _not_clip(model_id, "it is not a zoo CLIP or an open_clip model")


def zero_shot_weights(towers: ClipTowers, templates, classes=None):
    """``[D, C]`` head over ``templates`` (format strings with one ``{}``), built with
    ``open_clip.build_zero_shot_classifier`` (per-prompt normalised text features averaged
    over templates, renormalised): one text-tower pass."""
    import open_clip
    import torch

    dev = next(towers.clip.parameters()).device
    model, tok = towers.clip, towers.tokenizer
    if towers.kind == "openclip":  # encode at the prompts' own length (exact; clipsafety.heads)
        from clipsafety.heads import _trimmed_text

        model, tok = _trimmed_text(model, tok)
    with torch.no_grad():
        return open_clip.build_zero_shot_classifier(
            model, tok, list(classes or towers.classes), list(templates),
            num_classes_per_batch=None if towers.kind == "zoo" else 10, device=dev).float().cpu()


def template_embeddings(towers: ClipTowers, templates, classes=None, per_batch: int = 10):
    """``[T, C, D]`` L2-normalised text features of every (template, class) prompt, one
    text-tower pass over them: :func:`head_of` averages any subset of the templates into the
    head ``build_zero_shot_classifier`` builds over that subset (the same per-prompt normalise,
    mean over templates, renormalise), so a sweep over template subsets encodes each prompt once."""
    import torch

    templates, classes = list(templates), list(classes or towers.classes)
    dev = next(towers.clip.parameters()).device
    model, tok = towers.clip, towers.tokenizer
    if towers.kind == "openclip":
        from clipsafety.heads import _trimmed_text

        model, tok = _trimmed_text(model, tok)
    out = []
    with torch.no_grad():
        for i in range(0, len(classes), per_batch):
            batch = classes[i:i + per_batch]
            texts = [t.format(c) for c in batch for t in templates]
            e = model.encode_text(tok(texts).to(dev), normalize=True).float().cpu()
            out.append(e.reshape(len(batch), len(templates), -1))
    return torch.cat(out).transpose(0, 1).contiguous()


def head_of(embeddings, index=None):
    """``[D, C]`` head of the templates ``index`` (default: all) of :func:`template_embeddings`."""
    E = embeddings if index is None else embeddings[list(index)]
    m = E.mean(dim=0)
    return (m / m.norm(dim=-1, keepdim=True)).T.contiguous()


# --------------------------------------------------------------------------------------------
# the feature store

def feature_key_manifest(towers: ClipTowers, spec, precision: str = "fp32") -> dict:
    """What determines the image features: model (weights, preprocessing), dataset, precision."""
    import clipsafety

    return {"feature_format": FEATURE_FORMAT, "library_version": clipsafety.__version__,
            "model": towers.manifest, "dataset": spec.manifest(), "precision": precision}


class FeatureStore:
    """Feature records under ``<store root>/features`` (see the module docstring)."""

    def __init__(self, root=None):
        from clipsafety.store import Store

        self.root = (root.root if isinstance(root, Store) else Store(root).root)

    def path(self, key: str) -> Path:
        return self.root / "features" / f"{key}.safetensors"

    def get(self, key: str) -> FeatureRecord | None:
        from safetensors import safe_open

        from clipsafety.store import manifest_key

        p = self.path(key)
        if not p.is_file():
            return None
        try:
            with safe_open(str(p), framework="numpy") as f:
                md = f.metadata()
                feats, targets = f.get_tensor("features"), f.get_tensor("targets")
            manifest, ids = json.loads(md["manifest"]), np.asarray(json.loads(md["ids"]), dtype=str)
            key_part = {k: manifest[k] for k in ("feature_format", "library_version", "model",
                                                 "dataset", "precision")}
            if manifest_key(key_part) != key or not (len(feats) == len(targets) == len(ids)):
                raise ValueError("manifest does not match its key or row counts disagree")
        except Exception as exc:  # noqa: BLE001 - any damage: recompute
            warnings.warn(f"feature record {p} does not load ({type(exc).__name__}: {exc}); it "
                          "will be recomputed.", stacklevel=2)
            return None
        return FeatureRecord(feats, targets, ids, manifest, cache_hit=True)

    def put(self, key: str, rec: FeatureRecord) -> Path:
        from safetensors.numpy import save

        from clipsafety.files import atomic_write_bytes
        from clipsafety.store import canonical_json

        data = save({"features": np.ascontiguousarray(rec.features, np.float32),
                     "targets": np.ascontiguousarray(rec.targets, np.int64)},
                    metadata={"manifest": canonical_json(rec.manifest),
                              "ids": json.dumps([str(i) for i in rec.ids])})
        return atomic_write_bytes(self.path(key), data)


def _batches(towers: ClipTowers, spec, batch_size: int):
    """``(input tensor, targets, ids)`` batches: array fast path, else PIL through a loader."""
    import torch

    arrays = getattr(spec, "arrays", None)
    if arrays is not None and towers.array_transform is not None:
        X, Y, IDS = arrays()
        for s in range(0, len(X), batch_size):
            yield (towers.array_transform(np.ascontiguousarray(X[s:s + batch_size])),
                   np.asarray(Y[s:s + batch_size], np.int64), np.asarray(IDS[s:s + batch_size], str))
        return
    from clipsafety.infer import _collate, _Samples, _single_threaded_fetch

    loader = torch.utils.data.DataLoader(_Samples(spec, towers.transform, np.arange(len(spec))),
                                         batch_size=batch_size, shuffle=False, num_workers=0,
                                         collate_fn=_collate)
    for x, y, _, ids, _bad in _single_threaded_fetch(loader):
        if x is not None:
            yield x, y, np.asarray(ids, str)


def image_features(model, dataset, *, store=None, data_root=None, device: str = "cpu",
                   batch_size: int = 256, towers: ClipTowers | None = None) -> FeatureRecord:
    """The image features of ``model`` (an id or :class:`ClipTowers`) on ``dataset`` (an id or
    spec), from the feature store or computed once and stored."""
    import torch

    from clipsafety.datasets import get_dataset
    from clipsafety.infer import resolve_device
    from clipsafety.store import manifest_key

    device = resolve_device(device)
    towers = towers or (model if isinstance(model, ClipTowers) else clip_towers(model, device))
    spec = get_dataset(dataset, data_root=data_root) if isinstance(dataset, str) else dataset
    kman = feature_key_manifest(towers, spec)
    key = manifest_key(kman)
    fs = FeatureStore(store)
    rec = fs.get(key)
    if rec is not None:
        return rec
    feats, tg, ids = [], [], []
    dev = next(towers.clip.parameters()).device
    with torch.inference_mode():
        for x, y, i in _batches(towers, spec, batch_size):
            feats.append(towers.encode_image(x.to(dev)).float().cpu().numpy())
            tg.append(y)
            ids.append(i)
    D = int(towers.clip.visual.output_dim if hasattr(towers.clip.visual, "output_dim")
            else feats[0].shape[1]) if feats else 0
    rec = FeatureRecord(np.concatenate(feats) if feats else np.zeros((0, D), np.float32),
                        np.concatenate(tg) if tg else np.zeros(0, np.int64),
                        np.concatenate(ids) if ids else np.zeros(0, str),
                        {**kman, "n": int(sum(len(t) for t in tg)), "model_id": towers.model_id,
                         "dataset_id": spec.dataset_id,
                         "logit_policy": {"kind": "clip", "scale": towers.scale, "bias": None}})
    fs.put(key, rec)
    return rec


__all__ = ["ClipTowers", "FeatureRecord", "FeatureStore", "NotAZeroShotCLIP", "clip_towers",
           "feature_key_manifest", "head_of", "image_features", "logits", "template_embeddings",
           "zero_shot_weights"]
