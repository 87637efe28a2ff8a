"""The one table of dataset ids: :data:`REGISTRY` maps every id to a :class:`DatasetEntry`.

Real datasets register where their builder is defined (:func:`register`, a decorator, in
:mod:`clipsafety.datasets.real`); ``folder:PATH`` and the synthetic world's sets
(``synth:<name>``, one entry per row of :data:`clipsafety.synth.datasets.SYNTH_SETS`) are
entries of the same table. :func:`clipsafety.datasets.get_dataset`,
:func:`clipsafety.datasets.list_datasets` and the "did you mean" suggestions read only it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

#: what a set is for: in-distribution test, distribution shift, out-of-distribution,
#: cue-conflict stimuli, a training set (synthetic), or a user's own folder
KINDS = ("id", "shift", "ood", "cue-conflict", "train", "custom")
#: what a set's ``meta()`` annotates: ImageNet-X's annotations joined by file name (ImageNet
#: val), the synthetic world's 16 factor columns, cue-conflict's shape/texture, or nothing
ANNOTATIONS = ("imagenet-x", "synth-factors", "cue-conflict", None)
#: where the data comes from: folders under data_root, the path in the id, the generator
SOURCES = ("real", "folder", "synth")


class UnknownDataset(ValueError, KeyError):
    """A dataset id that matches no known dataset (a ``KeyError`` too, as ``synth`` raises)."""

    __str__ = BaseException.__str__


class InvalidDatasetId(UnknownDataset):
    """An id of a known family that cannot name a dataset: a ``folder:~user/...`` path whose
    ``~user`` cannot be expanded (an :class:`UnknownDataset`, so checks that catch that
    report it before any work)."""


@dataclass(frozen=True)
class DatasetEntry:
    """One registered dataset id.

    id: the id (``imagenet:r``), or for a family its shape (``folder:PATH``). builder: for
    ``source="real"`` ``builder(dataset_id, root) -> DatasetSpec``; otherwise
    ``builder(dataset_id, **kw)``. description: one line. kind: one of :data:`KINDS`.
    label_space: the space the model's logits are read in (``None``: decided by the data, as
    for ``folder:PATH``). target_space: the space the targets index (default: the label
    space). annotations: one of :data:`ANNOTATIONS`. folders: names tried under data_root
    (real sets). source: one of :data:`SOURCES`. pattern: a regular expression for a family
    of ids (``folder:<path>``). listed: shown by ``list_datasets``. layout: the folder's
    layout (``<root>/<wnid>/*.jpg``; the builder's messages and the spec's manifest read it).
    get: how to get the data, as its authors publish it (a download command with
    ``DATA_ROOT`` for the data folder; nothing is downloaded here).
    """

    id: str
    builder: Callable
    description: str
    kind: str
    label_space: str | None
    target_space: str | None = None
    annotations: str | None = None
    folders: tuple[str, ...] = ()
    source: str = "real"
    pattern: str | None = None
    listed: bool = True
    layout: str = ""
    get: str = ""

    def __post_init__(self):
        for name, value, allowed in (("kind", self.kind, KINDS), ("annotations", self.annotations, ANNOTATIONS),
                                     ("source", self.source, SOURCES)):
            if value not in allowed:
                raise ValueError(f"dataset {self.id!r}: {name} {value!r} is not one of {allowed}")
        if self.source == "real" and not self.folders:
            raise ValueError(f"dataset {self.id!r}: a real dataset needs the folder names tried "
                             "under data_root (folders=...)")
        if self.target_space is None:
            object.__setattr__(self, "target_space", self.label_space)

    def matches(self, dataset_id: str) -> bool:
        if self.pattern is None:
            return dataset_id == self.id
        return re.fullmatch(self.pattern, dataset_id) is not None


#: every dataset id, in listing order
REGISTRY: dict[str, DatasetEntry] = {}


def add(entry: DatasetEntry) -> DatasetEntry:
    """Put ``entry`` in :data:`REGISTRY` (an id registered twice is an error)."""
    if entry.id in REGISTRY:
        raise ValueError(f"dataset id {entry.id!r} is registered twice "
                         f"({REGISTRY[entry.id].builder!r} and {entry.builder!r})")
    REGISTRY[entry.id] = entry
    return entry


def register(dataset_id: str, *, folders, description: str, kind: str, label_space: str | None,
             target_space: str | None = None, annotations: str | None = None, layout: str = "",
             get: str = ""):
    """Decorator registering a real dataset's builder ``(dataset_id, root) -> DatasetSpec``::

        @register("imagenet:v2", folders=("imagenet-v2",), description="...", kind="shift",
                  label_space="imagenet-1k")
        def _imagenet_v2(dataset_id, root): ...

    The function is returned unchanged, so one builder can be registered under several ids.
    ``layout`` (the folder's layout, which the builder reads back with :func:`layout_of`) and
    ``get`` (where the data comes from) go into the error of a set that is not there.
    """
    def deco(builder):
        add(DatasetEntry(dataset_id, builder, description, kind, label_space, target_space,
                         annotations, tuple(folders), "real", layout=layout, get=get))
        return builder
    return deco


def layout_of(dataset_id: str) -> str:
    """The registered layout of a real dataset id (its builder's messages read it)."""
    return REGISTRY[dataset_id].layout


def lookup(dataset_id: str, known: list[str]) -> DatasetEntry:
    """The entry of ``dataset_id`` (exact ids first, then families), or :class:`UnknownDataset`
    naming the nearest of ``known``."""
    entry = REGISTRY.get(dataset_id)
    if entry is not None and entry.pattern is None:
        return entry
    for e in REGISTRY.values():
        if e.pattern is not None and e.matches(dataset_id):
            return e
    near = difflib.get_close_matches(dataset_id, known, n=5, cutoff=0.4)
    prefix = str(dataset_id).split(":", 1)[0] + ":"
    families = [f"{e.id} ({e.description})" for e in REGISTRY.values()
                if e.pattern is not None and not e.listed and e.id.startswith(prefix)]
    raise UnknownDataset(f"unknown dataset id {dataset_id!r}."
                         f"{' Did you mean ' + ', '.join(near) + '?' if near else ''} "
                         f"Known ids: {', '.join(known)}"
                         f"{'; and the form(s) ' + '; '.join(families) if families else ''}.")
