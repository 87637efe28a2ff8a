"""Evaluation sets by id: ``get_dataset("imagenet:r", data_root=...) -> DatasetSpec``.

Each spec declares its label space, target space, label subset, classes and annotation kind
(``annotations``); inference never knows dataset names (records.py). Every id is one entry
of the registry (:data:`REGISTRY`, :func:`dataset_info`): real sets, ``folder:PATH`` and the
synthetic world's ``synth:<name>``, each with its builder, the folder names tried under
data_root, description, kind, label space, target space and annotation kind.
:func:`get_dataset`, :func:`list_datasets` and the "did you mean" suggestions read only it;
a new real dataset is one ``@register(...)`` on its builder (:mod:`clipsafety.datasets.real`),
a new synthetic one a row of :data:`clipsafety.synth.datasets.SYNTH_SETS`. The on-disk
layouts are documented in
``book/appendix_datasets.md``; a wrong layout raises :class:`LayoutError` saying what was
found and what was expected.

Conventions:

- Class index of an ImageNet synset = its position in timm's ``imagenet_synsets.txt``
  (sorted WordNet ids, the standard 1000-way order); ImageNet-R/A subsets come from timm's
  ``imagenet_{r,a}_indices.txt``.
- ``data_root`` (or ``$CLIPSAFETY_DATA_ROOT``) may be the folder that holds the dataset
  folders (``imagenet-r/``, ``objectnet-1.0/``, ...) or the dataset folder itself, when it
  carries one of the dataset's own folder names (``.../imagenet-r``, ``.../NINCO``). A
  data_root of another name is never read as a dataset: a set whose folder is not under it
  is a :class:`DatasetNotFound` naming the set, the folders tried, the layout expected and
  how to get the data.
- Sample ids are POSIX paths relative to the dataset folder.
- OOD sets (ImageNet-O, iNaturalist, SUN, Places, Textures) have target ``-1``.
- ObjectNet: targets index its 113 ImageNet-overlapping classes (``target_space``
  ``"objectnet-113"``); ``label_map[k]`` lists the ImageNet columns of ObjectNet class ``k``
  and ``label_subset`` is their union (:func:`project_logits` maps 1000 -> 113). Images are
  cropped by 2 pixels on each side to remove ObjectNet's 1-pixel red border (the convention
  of the model-soups / WiSE-FT evaluation code).
- Cue-conflict: label space ``"cue-conflict-16"``, target = shape class; ``meta()`` has the
  texture class and a ``same_class`` flag (kept in the data, excluded from shape bias).
- Unreadable images are not this module's concern beyond :func:`load_rgb` and
  :class:`FolderSpec`: they decode grayscale, CMYK, RGBA and palette images to RGB and raise
  :class:`BadImage` for any file that cannot be read or decoded (corrupt, truncated, a
  dangling link, no permission, a header claiming more pixels than PIL decodes safely, a file
  name that is not UTF-8, whose id gets ``\\xNN`` escapes); :func:`clipsafety.predict` skips
  those and lists them in the manifest, and the other images of the set are scored as usual.
- ``folder:PATH`` refuses (:class:`LayoutError`) an image reachable under two class folders
  (a class folder symlinked to the root or to another class; real paths compared), plain
  class names that are the same once case and ``_`` vs space are ignored, and a single
  plain-named class; a ``~user`` that cannot be expanded is an :class:`InvalidDatasetId`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from clipsafety.datasets.real import (
    IMAGE_EXTS,
    OBJECTNET_BORDER,
    BadImage,
    FolderSpec,
    LayoutError,
    imagenet_synsets,
    load_rgb,
    project_logits,
    subset_indices,
    user_folder,
    wnid_to_index,
)
from clipsafety.datasets.registry import (
    ANNOTATIONS,
    KINDS,
    REGISTRY,
    DatasetEntry,
    InvalidDatasetId,
    UnknownDataset,
    add,
    lookup,
    register,
)
from clipsafety.records import DatasetSpec


def _expand(path: str, what: str, example: str = "folder:/home/me/my-classes") -> Path:
    """``Path(path).expanduser()``, or :class:`InvalidDatasetId` naming ``what`` and the path
    when its ``~user`` cannot be expanded (no such user, no home directory)."""
    try:
        return Path(path).expanduser()
    except RuntimeError as e:
        head = str(path).split("/", 1)[0]
        raise InvalidDatasetId(
            f"{what}: cannot expand {head!r} in the path {str(path)!r} ({e}): no such user or no "
            f"home directory on this machine. Write the folder's full path instead, e.g. "
            f"{example}.") from None


def _folder_builder(dataset_id: str) -> DatasetSpec:
    return user_folder(dataset_id, _expand(dataset_id.split(":", 1)[1], dataset_id))


add(DatasetEntry("folder:PATH", _folder_builder,
    "your own folder of class folders (ImageNet wnids or class names)", "custom", None,
    source="folder", pattern=r"folder:.*"))


def _synth_builder(dataset_id: str, **kw) -> DatasetSpec:
    from clipsafety import synth

    ref = kw.get("reference")
    if isinstance(ref, str):  # the zoo supplies the reference model (synth never imports it)
        from clipsafety.zoo import reference_scorer

        kw["reference"] = reference_scorer(ref)
    try:
        return synth.get_dataset(dataset_id.split(":", 1)[1], **kw)
    except UnknownDataset:
        raise
    except KeyError as e:  # synth's own "unknown" error: the registry's kind, naming the id
        raise UnknownDataset(f"{dataset_id}: {e.args[0] if e.args else 'unknown synthetic dataset'}"
                             ) from None


def _curated_pattern(sd) -> str:
    """``synth:<a synthetic set>@<filter>[+<filter>...]``: only ids the curation can read,
    so the registry's check (the CLI's, before any work) refuses what the builder would."""
    from clipsafety.synth.curation import ID_FILTERS

    sets = "|".join(re.escape(r.id) for r in sd.SYNTH_SETS)
    part = "|".join([*(re.escape(f) for f in sorted(ID_FILTERS, key=len, reverse=True)), r"random-\d+"])
    return rf"synth:(?:{sets})@(?:{part})(?:\+(?:{part}))*"


def _register_synth() -> None:
    from clipsafety.synth import datasets as sd

    for row in sd.SYNTH_SETS:
        add(DatasetEntry(f"synth:{row.id}", _synth_builder, row.description, row.kind, "synth",
                         annotations=row.annotations, source="synth"))
    add(DatasetEntry(f"synth:{sd.CURATED_PATTERN}", _synth_builder, sd.CURATED_DESCRIPTION, "train",
                     "synth", annotations="synth-factors", source="synth",
                     pattern=_curated_pattern(sd), listed=False))


_register_synth()


def list_datasets(include_synth: bool = True, kind: str | None = None) -> list[str]:
    """All listed dataset ids in registry order: the real ones, ``folder:PATH``, and (unless
    ``include_synth=False``) the synthetic world's; only those of ``kind`` if given."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return [e.id for e in REGISTRY.values() if e.listed
            and (include_synth or e.source != "synth") and (kind is None or e.kind == kind)]


def dataset_info(dataset_id: str) -> DatasetEntry:
    """The registry entry of ``dataset_id`` (``dataset_info("imagenet:r").kind == "shift"``);
    raises :class:`UnknownDataset` with the nearest ids, and :class:`InvalidDatasetId` for a
    ``folder:~user/...`` path whose ``~user`` cannot be expanded."""
    entry = lookup(dataset_id, list_datasets())
    if entry.source == "folder":
        _expand(dataset_id.split(":", 1)[1], dataset_id)
    return entry


def labelled_inputs(record):
    """``(logits, targets, label_subset)`` of a record's labelled rows, ready for the metrics.

    Rows with target -1 (OOD) are dropped. A record whose targets index another space than its
    logits (ObjectNet: 113 classes over ImageNet's 1000 columns) is projected with its
    ``label_map`` (each class the max of its columns, :func:`project_logits`) and the subset is
    then all classes; otherwise the record's ``label_subset`` is used (the metrics restrict the
    logits to it before the softmax). A record whose spaces differ without a label map is an
    error naming it. The calibration study and the safety card both read records through it.
    """
    import numpy as np

    t = np.asarray(record.targets)
    keep = t >= 0
    L = record.logits if keep.all() else record.logits[keep]
    t = t[keep]
    m = record.manifest
    if record.label_space != record.target_space:
        if m.get("label_map") is None:
            raise ValueError(
                f"record of {m.get('model', {}).get('model_id', '?')!r} on "
                f"{m.get('dataset', {}).get('dataset_id', '?')!r}: targets index "
                f"{record.target_space!r} but the logits are over {record.label_space!r} and the "
                "record has no label_map; expected a dataset whose targets are classes of the "
                "model's label space, or one that declares a label map (as ObjectNet does).")
        return project_logits(np.asarray(L), m["label_map"]), t, None
    return L, t, record.label_subset


DATA_ROOT_ENV = "CLIPSAFETY_DATA_ROOT"


def data_root(given=None) -> str:
    """The folder that holds the real datasets: ``given`` (a chapter's ``data_root``
    parameter, a ``--data-root`` option) when set, else ``$CLIPSAFETY_DATA_ROOT``, else ``""``
    (no real data). The one rule for "is there real data"; chapters and :func:`get_dataset`
    both read it."""
    return str(given or os.environ.get(DATA_ROOT_ENV) or "")


class DatasetNotFound(LayoutError):
    """A real dataset whose folder is not under data_root: the message names the set, the
    folders tried, the layout expected and how to get the data."""


def _own_names(entry: DatasetEntry) -> list[str]:
    """The folder names that make a data_root the dataset's own folder: the last part of each
    folder tried (``imagenet/val`` -> ``val``)."""
    return list(dict.fromkeys(f.rsplit("/", 1)[-1] for f in entry.folders))


def _resolve_root(entry: DatasetEntry, dataset_id: str, data_root_) -> tuple[Path, list[str]]:
    """data_root and the folders to read ``dataset_id`` from: each of its folder names under data_root, and
    data_root itself only when it carries one of those names (a root holding several sets is
    never read as one of them)."""
    base = data_root(data_root_)
    if not base:
        raise LayoutError(f"{dataset_id}: no data_root given; pass data_root=... (the folder that "
                          f"holds {entry.folders[0]}/) or set CLIPSAFETY_DATA_ROOT.")
    base = _expand(base, f"{dataset_id}: data_root", "data_root='/home/me/data'")
    own = [base] if base.name in _own_names(entry) else []
    return base, [str(t) for t in [base / s for s in entry.folders] + own]


def _not_found(entry: DatasetEntry, dataset_id: str, root: str) -> DatasetNotFound:
    folders = ", ".join(f"{root}/{f}" for f in entry.folders)
    return DatasetNotFound(
        f"{dataset_id}: not found under data_root {root}: none of {folders} exists, and "
        f"{root} itself is read as {dataset_id} only when it is named "
        f"{' or '.join(repr(n) for n in _own_names(entry))}. Expected layout: "
        f"DATA_ROOT/{entry.folders[0]} = {entry.layout or 'see the appendix'}. "
        + (f"To get it: {entry.get.replace('DATA_ROOT', root)}. " if entry.get else "")
        + "Or point data_root at the folder that holds it (the book's appendix 'Datasets on "
          "disk' shows each layout).")


def get_dataset(dataset_id: str, data_root: str | os.PathLike | None = None, **kw) -> DatasetSpec:
    """The :class:`DatasetSpec` for ``dataset_id`` (see module docstring and the appendix).

    ``kw`` goes to a synthetic set (``n=``; ``reference="zoo:<id>"`` filters the A-like set
    with that zoo model); real sets and folders take none."""
    if isinstance(dataset_id, DatasetSpec):
        return dataset_id
    entry = dataset_info(dataset_id)
    if entry.source == "synth":
        return entry.builder(dataset_id, **kw)
    if kw:
        raise TypeError(f"{dataset_id}: unexpected keyword(s) {sorted(kw)}; real datasets and "
                        "folders take only data_root")
    if entry.source == "folder":
        spec = entry.builder(dataset_id)
        spec.annotations = entry.annotations
        return spec
    base, tried = _resolve_root(entry, dataset_id, data_root)
    if not any(Path(t).is_dir() for t in tried):
        raise _not_found(entry, dataset_id, str(base))
    errors = []
    for cand in map(Path, tried):
        if cand.is_dir():
            try:
                spec = entry.builder(dataset_id, cand)
            except LayoutError as e:
                errors.append(str(e))
                continue
            spec.annotations = entry.annotations
            return spec
    raise LayoutError(f"{dataset_id}: no folder with the expected layout among {tried}: "
                      f"{'; '.join(errors)}. See the book's appendix 'Datasets on disk' for each "
                      "layout" + (f"; to get the data: {entry.get}." if entry.get else "."))


__all__ = [
    "ANNOTATIONS", "DATA_ROOT_ENV", "IMAGE_EXTS", "KINDS", "OBJECTNET_BORDER", "REGISTRY", "BadImage", "DatasetEntry",
    "DatasetNotFound",
    "FolderSpec", "InvalidDatasetId", "LayoutError", "UnknownDataset", "data_root", "dataset_info", "get_dataset", "imagenet_synsets",
    "labelled_inputs",
    "list_datasets", "load_rgb", "project_logits", "register", "subset_indices", "wnid_to_index",
]
