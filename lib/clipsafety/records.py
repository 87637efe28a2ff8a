"""The two records every part of clipsafety agrees on.

``LoadedModel`` is what :func:`clipsafety.load` returns: a module that maps a batch of
preprocessed images to logits over the model's label space, plus everything needed to feed
it and to interpret its logits (transform, class names, logit-scale policy, manifest).

``PredictionRecord`` is what :func:`clipsafety.predict` returns and the store keeps: per-sample
logits over the model's *full* label space, targets as indices into that same label space
(``-1`` for OOD samples), sample ids, an optional per-sample metadata table, and a manifest.
Label subsets (ImageNet-R's 200 classes, ObjectNet's 113, ...) are recorded in
``manifest["label_subset"]`` as the sorted column indices the dataset allows; metrics restrict
logits to those columns before argmax and before softmax.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class LoadedModel:
    """A model ready for inference.

    Attributes
    ----------
    model_id: the id the user typed, e.g. ``openclip:ViT-B-32@laion2b_s34b_b79k``.
    module: ``torch.nn.Module`` mapping images ``[B, 3, H, W]`` to logits ``[B, C]``.
        For zero-shot CLIP the head is part of it: ``logits = scale * img @ W (+ bias)``.
    transform: callable mapping a ``PIL.Image`` (RGB) to a ``[3, H, W]`` float tensor.
    classes: the ``C`` class names of the label space, in logit order.
    logit_policy: how logits were scaled, e.g. ``{"kind": "clip", "scale": 100.0,
        "bias": None}`` for CLIP (cosine = logits / scale when bias is None) or
        ``{"kind": "classifier"}`` for a plain classifier.
    manifest: everything that determines the logits (model id, weights hash,
        preprocessing, head and template hash, logit policy); part of the cache key.
    label_space: name of the label space (``"imagenet-1k"``, ``"synth"``, ...).
    spec: the :class:`clipsafety.models.ModelSpec` the id was parsed into (set by
        :func:`clipsafety.load`; ``None`` for a model built by hand). Not part of the cache key.
    """

    model_id: str
    module: Any
    transform: Callable[[Any], Any]
    classes: list[str]
    logit_policy: dict
    manifest: dict
    label_space: str = "imagenet-1k"
    extra: dict = field(default_factory=dict)
    spec: Any = None

    @property
    def model_meta(self) -> dict | None:
        """The catalog metadata of the model (group, family, source, samples, resolution,
        meta_from, other catalog columns), or ``None`` without a spec."""
        return self.spec.meta() if self.spec is not None else None


#: manifest entries that describe a record but do not determine its logits: never hashed
#: into the store key (:func:`clipsafety.store.manifest_key`), so editing a catalog or a
#: dataset's annotation kind never turns an existing record into a miss
NON_KEY_FIELDS = frozenset({"model_meta", "annotations"})


@dataclass
class PredictionRecord:
    """Per-sample predictions of one model on one dataset with one head.

    logits: float array ``[N, C]`` over the model's full label space.
    targets: int array ``[N]``, indices into the same label space; ``-1`` for OOD samples.
    ids: str array ``[N]``, stable sample ids (file names relative to the dataset root,
        or generator ids for the synthetic world).
    manifest: dict, the cache key's source (see :mod:`clipsafety.store`); includes
        ``label_subset`` (sorted list of allowed columns, or ``None`` for all). Besides the
        key it holds run facts and descriptions that are not hashed (:data:`NON_KEY_FIELDS`):
        ``model_meta`` (the catalog metadata of the model) and ``annotations`` (the dataset's
        annotation kind).
    meta: optional ``pandas.DataFrame`` with one row per sample, aligned with ``ids``
        (factor annotations, texture class of a cue-conflict image, ...).
    """

    logits: np.ndarray
    targets: np.ndarray
    ids: np.ndarray
    manifest: dict
    meta: Any = None

    @property
    def label_subset(self) -> list[int] | None:
        return self.manifest.get("label_subset")

    @property
    def label_space(self) -> str | None:
        """The label space of the logits' columns (``"imagenet-1k"``, ``"synth"``, ...)."""
        return self.manifest.get("label_space")

    @property
    def target_space(self) -> str | None:
        """The space the targets index (the dataset's; ``"cue-conflict-16"``, ...)."""
        return self.manifest.get("target_space") or self.manifest.get("label_space")

    @property
    def model_meta(self) -> dict | None:
        """Catalog metadata of the model: ``group, family, source, samples, resolution,
        meta_from`` and the catalog's other columns; ``None`` for a record without it."""
        return self.manifest.get("model_meta")

    @property
    def annotations(self) -> str | None:
        """The dataset's annotation kind (``"imagenet-x"``, ``"synth-factors"``,
        ``"cue-conflict"``) or ``None``."""
        return self.manifest.get("annotations")

    def check_label_space(self, mapped: bool = False) -> None:
        """Raise :class:`LabelSpaceMismatch` unless the logits' label space is the targets'
        (``mapped=True`` also accepts a ``label_map`` or a :data:`LABEL_SPACE_MAPS` pair)."""
        check_label_spaces(self.label_space, self.target_space,
                           label_map=self.manifest.get("label_map"), mapped=mapped,
                           what=f"{self.manifest.get('model', {}).get('model_id', 'record')} on "
                                f"{self.manifest.get('dataset', {}).get('dataset_id', '?')}")

    def __len__(self) -> int:
        return int(self.logits.shape[0])


class DatasetSpec:
    """An evaluation set, declared separately from how a model classifies (imagenet-testbed).

    Subclasses set the attributes and implement ``__len__``, ``__getitem__`` and
    ``manifest``. The inference code never knows dataset names: it only reads these.

    dataset_id: the id a user typed (``imagenet:val``, ``synth:id-test``, ``folder:/data/x``).
    label_space: the space the targets index (``"imagenet-1k"``, ``"synth"``, ``"cue-conflict-16"``).
    label_subset: sorted allowed columns of that space (ImageNet-R's 200), or ``None`` for all.
    classes: class names of ``label_space`` (all of them, not only the subset).
    annotations: what ``meta()`` annotates: ``"imagenet-x"`` (ImageNet-X's annotations joined
        by file name), ``"synth-factors"`` (the synthetic world's 16 ImageNet-X factor
        columns), ``"cue-conflict"`` (shape and texture class of each stimulus), or ``None``.
    """

    dataset_id: str = ""
    label_space: str = "imagenet-1k"
    label_subset: list[int] | None = None
    classes: list[str] = []
    annotations: str | None = None

    def __len__(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def __getitem__(self, i: int):  # -> (PIL.Image RGB, int target or -1 for OOD, str sample id)
        raise NotImplementedError

    def manifest(self) -> dict:
        """JSON-able description that identifies the data exactly (part of the cache key)."""
        raise NotImplementedError

    def meta(self):
        """Optional ``pandas.DataFrame`` of per-sample annotations, indexed like the samples
        (column ``id`` first; ImageNet-X's 16 factor columns where known)."""
        return None


# ----------------------------------------------------------------------------- label spaces
class LabelSpaceMismatch(ValueError):
    """Logits over one label space met targets of another with no mapping between them."""


#: (logit space, target space) pairs joined by a known mapping besides a dataset's
#: ``label_map``: ImageNet-1k probabilities averaged over each cue-conflict class's members
#: (:func:`clipsafety.shape.imagenet_to_16`)
LABEL_SPACE_MAPS = {("imagenet-1k", "cue-conflict-16"): "clipsafety.shape.imagenet_to_16"}


def _digest_of(space: str | None) -> str | None:
    """``custom-<h>`` and ``folder-<h>`` hash the same class-name list the same way."""
    for prefix in ("custom-", "folder-"):
        if isinstance(space, str) and space.startswith(prefix):
            return space[len(prefix):]
    return None


def label_spaces_match(label_space: str | None, target_space: str | None) -> bool:
    """Whether logits over ``label_space`` can be scored directly against ``target_space``
    targets: the same space, the same list of class names, or an extended space
    ``<target_space>+<k>-<hash>`` (the target space's classes first, then ``k`` extra names,
    e.g. a zoo CLIP's negative labels)."""
    if label_space == target_space:
        return True
    if isinstance(label_space, str) and isinstance(target_space, str) and label_space.startswith(target_space + "+"):
        return True
    d = _digest_of(label_space)
    return d is not None and d == _digest_of(target_space)


def check_label_spaces(label_space: str | None, target_space: str | None, *, label_map=None,
                       what: str = "", mapped: bool = True) -> None:
    """Raise :class:`LabelSpaceMismatch` unless logits over ``label_space`` can meet targets
    in ``target_space``: the same space, a dataset ``label_map`` (ObjectNet), or with
    ``mapped`` a pair of :data:`LABEL_SPACE_MAPS`. The message names both spaces and the fix."""
    if label_spaces_match(label_space, target_space):
        return
    if mapped and (label_map is not None or (label_space, target_space) in LABEL_SPACE_MAPS):
        return
    if mapped is False and (label_map is not None or (label_space, target_space) in LABEL_SPACE_MAPS):
        via = ("the record's label_map (clipsafety.datasets.project_logits)" if label_map is not None
               else LABEL_SPACE_MAPS[(label_space, target_space)])
        fix = f"map the logits to the target space first with {via}, then compute the metric"
    elif str(target_space).startswith("folder-"):
        fix = ("for a CLIP model use classnames='dataset' (the default for folder: datasets) so "
               "its zero-shot head is over the folder's classes; for a classifier, name the "
               "class folders by ImageNet WordNet ids (n01440764/, ...) so the targets index "
               "imagenet-1k")
    elif str(target_space).startswith("imagenet-") and str(label_space).startswith(("imagenet-", "timm-")):
        fix = (f"use a model whose head is over {target_space} (a timm weight with an "
               f"ImageNet-1k head, e.g. a tag ending in _in1k), not one over {label_space}")
    else:
        fix = (f"use a model (or a CLIP head, classnames=...) whose label space is "
               f"{target_space}, or a dataset whose targets index {label_space}")
    who = f"{what}: " if what else ""
    raise LabelSpaceMismatch(
        f"{who}the logits are over label space {label_space!r} but the targets index "
        f"{target_space!r}; no metric is computed across different label spaces. Fix: {fix}.")
