"""Inference with caching: ``predict(model, dataset) -> PredictionRecord``.

The one place where models meet data. Conventions:

- Logits are stored over the model's full label space (float32). ``manifest["label_subset"]``
  is the dataset's subset when the model's label space is the dataset's (else ``None``).
  Targets stay in the dataset's target space; ``manifest["label_space"]`` (the logits') and
  ``manifest["target_space"]`` (the targets') are both recorded, with ``label_map`` when the
  dataset has one (ObjectNet: target class -> ImageNet columns).
- GPU: DataLoader workers (default ``min(8, cpus)``), pinned memory, channels_last and bf16
  autocast (precision is part of the key). CPU: fp32 and ``num_workers=0``: the forward
  already uses the cores; images are decoded and transformed in-process with one torch
  thread (see :func:`_single_threaded_fetch`), the forward with all of them.
- Unreadable images (:class:`clipsafety.datasets.BadImage`) are skipped and listed in
  ``manifest["skipped"]`` as ``{index, id, reason}``; the record has no row for them.
- Fast path: when the dataset has ``arrays()`` (returning ``uint8 [N,H,W,3]``, targets
  ``[N]``, ids ``[N]``) and the model has ``extra["batch_transform"]`` or
  ``extra["array_transform"]`` (a callable mapping a ``uint8`` numpy array ``[B,H,W,3]`` to
  the model's input, a float tensor ``[B,3,H',W']``, equivalent to applying ``transform`` per
  image), batches are sliced from the arrays without PIL or a DataLoader. :func:`normalize_batch_transform` builds one for plain to-tensor + normalise.
  A transform marked ``elementwise = True`` (each image's output is its own) is applied to a
  small set once per process and shared by every model with that transform.
- Real image sets (folders of files) are decoded and transformed once per preprocessing into
  a memory-mapped cache that every model with that preprocessing reads
  (:mod:`clipsafety.datasets.tensor_cache`); a transform the cache cannot identify is applied
  image by image as above.
- Results are written in shards of ``shard_size`` samples; a killed run resumes from them.
- Descriptions outside the key (:data:`clipsafety.records.NON_KEY_FIELDS`):
  ``manifest["model_meta"]``, the model's catalog metadata (its spec's, see
  :mod:`clipsafety.models`), and ``manifest["annotations"]``, the dataset's annotation kind
  (``spec.annotations``: ``"imagenet-x"``, ``"synth-factors"``, ``"cue-conflict"`` or
  ``None``). Both are written on every call, a cache hit included, from the current catalog
  and dataset spec: editing a catalog changes what a record says, never its key.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np

import clipsafety
from clipsafety.records import DatasetSpec, LoadedModel, PredictionRecord

RECORD_FORMAT = 1


class BrokenModel(ValueError):
    """Logits no metric can read: non-finite values, or most rows' top logits tied (constant
    outputs, as all-zero or integer weights give). Raised before anything is stored."""


#: share of rows with a tied top logit above which a record is refused as a broken model
MAX_TIED_SHARE = 0.5


def tied_rows(logits: np.ndarray) -> int:
    """Rows whose largest logit is shared by another column (argmax would credit the first)."""
    if logits.ndim != 2 or logits.shape[1] < 2 or not len(logits):
        return 0
    top2 = np.sort(logits, axis=1)[:, -2:]
    return int((top2[:, 0] == top2[:, 1]).sum())


def check_logits(logits: np.ndarray, what: str) -> int:
    """Refuse logits no metric can read (:class:`BrokenModel`, naming ``what``); return the
    number of rows whose top logits tie (reported in the record's manifest)."""
    bad = int((~np.isfinite(logits)).any(axis=1).sum()) if logits.size else 0
    if bad:
        raise BrokenModel(f"{what}: {bad} of {len(logits)} rows have NaN or infinite logits; the "
                          "model's weights or its preprocessing are broken (check the checkpoint "
                          "for NaN/inf and the input normalisation). Nothing was stored.")
    tied = tied_rows(logits)
    if len(logits) and tied > MAX_TIED_SHARE * len(logits):
        raise BrokenModel(f"{what}: {tied} of {len(logits)} rows have their top logits tied (e.g. "
                          "all equal): the model's outputs are constant, as all-zero or integer "
                          "weights give, and accuracy would credit column 0. Check the "
                          "checkpoint. Nothing was stored.")
    if tied:
        warnings.warn(f"{what}: {tied} of {len(logits)} rows have tied top logits; argmax "
                      "credits the first of the tied classes (the count is in the record's "
                      "manifest, tied_rows).", stacklevel=3)
    return tied


class DeviceUnavailable(ValueError):
    """A device that is not a torch device name, or one this machine does not have."""


def device_name(device: str = "auto") -> str:
    """``device`` normalised (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``) without
    asking whether this machine has it; another name raises :class:`DeviceUnavailable`."""
    import re

    dev = str(device).strip().lower()
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", dev):
        raise DeviceUnavailable(f"device {device!r} is not one of 'auto', 'cpu', 'cuda', "
                                "'cuda:N' or 'mps'; pass one of those (auto picks CUDA when present).")
    return dev


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or
    ``"mps"``; a device this machine does not have raises :class:`DeviceUnavailable`."""
    import torch

    dev = device_name(device)
    if dev == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if dev.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceUnavailable(f"device {device!r} was asked for but torch finds no CUDA GPU "
                                    "on this machine (torch.cuda.is_available() is False); use "
                                    "device 'cpu' or 'auto', or run on a machine with a GPU.")
        n = torch.cuda.device_count()
        if ":" in dev and int(dev.split(":")[1]) >= n:
            raise DeviceUnavailable(f"device {device!r}: this machine has {n} CUDA device(s) "
                                    f"(cuda:0..cuda:{n - 1}); pass one of those.")
    if dev == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceUnavailable(f"device {device!r}: Apple MPS is not available here; use 'cpu' or 'auto'.")
    return dev


def check_positive_int(name: str, value, minimum: int = 1, allow_none: bool = True,
                       maximum: int | None = None, what: str = ""):
    """``value`` if it is an integer >= ``minimum`` (and <= ``maximum`` when given; or ``None``
    when allowed), else a ``ValueError`` naming the option, what is expected (``what``: what the
    number counts) and what to do."""
    if value is None and allow_none:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum
            or (maximum is not None and value > maximum)):
        expected = (f"an integer in [{minimum}, {maximum}]" if maximum is not None
                    else f"an integer >= {minimum}")
        raise ValueError(f"{name}={value!r} is not valid: expected {expected}"
                         f"{f' ({what})' if what else ''}"
                         f"{' (or leave it unset for the default)' if allow_none else ''}.")
    return int(value)


def normalize_batch_transform(mean: Sequence[float], std: Sequence[float]) -> Callable:
    """``uint8 [B,H,W,3]`` -> ``float [B,3,H,W]``, ``(x/255 - mean)/std``: ToTensor + Normalize."""
    import torch

    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def fn(batch) -> torch.Tensor:
        x = torch.as_tensor(batch).permute(0, 3, 1, 2).float().div_(255.0)
        return (x - m.to(x.device)) / s.to(x.device)

    fn.description = f"uint8->float/255, normalize(mean={list(mean)}, std={list(std)})"
    fn.elementwise = True  # each image's output is its own: a whole set may be transformed at once
    return fn


class _Samples:
    """Map-style dataset over selected indices of a spec: ``(tensor|None, target, index, id, error)``."""

    def __init__(self, spec: DatasetSpec, transform, indices: np.ndarray):
        self.spec, self.transform, self.indices = spec, transform, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int):
        from clipsafety.datasets import BadImage

        i = int(self.indices[j])
        try:
            img, target, sid = self.spec[i]
            return self.transform(img), int(target), i, str(sid), None
        except BadImage as e:
            ids = getattr(self.spec, "ids", None)
            return None, -1, i, str(ids[i]) if ids is not None else str(i), str(e)


def _single_threaded_fetch(loader):
    """Iterate an in-process DataLoader with one torch thread while decoding/transforming.

    Per-image transforms are tiny tensor ops; with several intra-op threads each op pays a
    thread-pool synchronisation that dominates (measured: timm's eval transform of a 500x375
    JPEG, 48 ms of CPU with 2 threads vs 3.2 ms with 1). The forward keeps its threads."""
    import torch

    it = iter(loader)
    while True:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            batch = next(it)
        except StopIteration:
            return
        finally:
            torch.set_num_threads(threads)
        yield batch


def _collate(items):
    import torch

    ok = [it for it in items if it[0] is not None]
    bad = [{"index": it[2], "id": it[3], "reason": it[4]} for it in items if it[0] is None]
    x = torch.stack([it[0] for it in ok]) if ok else None
    return (x, np.array([it[1] for it in ok], np.int64), np.array([it[2] for it in ok], np.int64),
            [it[3] for it in ok], bad)


#: the ``classnames`` a user can name (besides a list of names)
CLASSNAME_CHOICES = ("imagenet-1k", "cue-conflict-16", "dataset")


def _resolve_classnames(classnames, spec: DatasetSpec):
    """The head's classes: ``"dataset"`` = the dataset's label space (its named space, or its
    own class names in its own space); ``None`` = ImageNet-1k, except on a ``folder:`` dataset
    of plain class names, whose default is its own classes."""
    from clipsafety.heads import NamedClasses

    if classnames is None and str(spec.label_space).startswith("folder-"):
        classnames = "dataset"
    if isinstance(classnames, str) and classnames == "dataset":
        if spec.label_space in ("imagenet-1k", "cue-conflict-16"):
            return spec.label_space
        if not list(spec.classes):
            raise ValueError(f"classnames='dataset': {spec.dataset_id} has no class names to "
                             "build a head over; pass classnames='imagenet-1k' or a list.")
        return NamedClasses(list(spec.classes), spec.label_space)
    if isinstance(classnames, str) and classnames not in CLASSNAME_CHOICES:
        raise ValueError(f"classnames={classnames!r} is not a label space; expected one of "
                         f"{list(CLASSNAME_CHOICES)} or a list of class names.")
    return classnames


#: the head's classes of a model on a dataset (what :func:`predict` loads a model with)
resolve_classnames = _resolve_classnames


def key_manifest(loaded: LoadedModel, spec: DatasetSpec, precision: str) -> dict:
    """Everything that determines the logits; its hash is the store key."""
    dman = spec.manifest()
    target_space = getattr(spec, "target_space", None) or spec.label_space
    same = loaded.label_space == spec.label_space
    return {
        "record_format": RECORD_FORMAT,
        "library_version": clipsafety.__version__,
        "model": loaded.manifest,
        "dataset": dman,
        "label_space": loaded.label_space,
        "target_space": target_space,
        "label_subset": spec.label_subset if same else None,
        "precision": precision,
    }


def describe_manifest(loaded: LoadedModel, spec: DatasetSpec) -> dict:
    """The manifest entries that describe a record without determining its logits:
    ``model_meta`` (catalog metadata) and ``annotations`` (the dataset's annotation kind)."""
    meta = getattr(loaded, "model_meta", None)
    if meta is None:  # a LoadedModel built by hand: parse its id if a source knows the prefix
        from clipsafety.models import SOURCES, UnknownModel, model_spec

        if str(loaded.model_id).split(":", 1)[0] in SOURCES:
            try:
                meta = model_spec(loaded.model_id).meta()
            except UnknownModel:
                meta = None
    return {"model_meta": meta, "annotations": getattr(spec, "annotations", None)}


#: the largest transformed in-memory set kept for the next model (float32 bytes); a larger one
#: (the curation pool) is transformed batch by batch as it is read
ARRAY_CACHE_BYTES = 256 * 2 ** 20
_ARRAY_CACHE: dict = {}


def _transformed_arrays(dataset_key: str, X: np.ndarray, batch_transform: Callable):
    """The whole of an in-memory set (``X``, ``uint8 [N,H,W,3]``) through ``batch_transform``,
    once per process for every model that shares that transform (the zoo's models share one
    function, :func:`clipsafety.zoo.core.array_transform`), or ``None``: for a transform not
    marked ``elementwise = True`` (one image's output must not depend on the rest of its batch,
    or the whole set at once would differ from batch by batch), and where the input or the
    result exceeds :data:`ARRAY_CACHE_BYTES`. Keyed by the dataset's store key
    (``dataset_key``) and the transform object (held by the entry, so its id is not reused);
    one set is kept, the chapters evaluate every model on one set after another. The logits
    are the same bit for bit as batch by batch."""
    if not getattr(batch_transform, "elementwise", False) or 4 * X.size > ARRAY_CACHE_BYTES:
        return None
    key = (dataset_key, id(batch_transform))
    if key in _ARRAY_CACHE:
        return _ARRAY_CACHE[key][1]
    _ARRAY_CACHE.clear()
    out = batch_transform(np.ascontiguousarray(X))
    if out.element_size() * out.nelement() <= ARRAY_CACHE_BYTES:
        _ARRAY_CACHE[key] = (batch_transform, out)
    return out


def predict(model: str | LoadedModel, dataset: str | DatasetSpec, *, data_root=None, store=None,
            device: str = "auto", batch_size: int | None = None, num_workers: int | None = None,
            templates="openai", classnames=None, progress: bool = True, shard_size: int | None = None,
            logit_scale: float | None = None, image_size: int | None = None,
            recompute: bool = False, tensor_cache: bool = True) -> PredictionRecord:
    """Per-sample logits of ``model`` on ``dataset``, from the store or computed and stored.

    model / dataset: ids (``clipsafety.load`` / ``clipsafety.datasets.get_dataset``) or objects.
    classnames / templates / logit_scale / image_size: passed to :func:`clipsafety.load` for
    CLIP heads; ``classnames="dataset"`` uses the dataset's classes (``folder:`` data).
    store: a :class:`~clipsafety.store.Store`, a path, or ``None`` (default root).
    recompute: ignore a stored record and earlier shards; compute and replace the record.
    tensor_cache: read a real image set's images decoded and transformed once per
    preprocessing (:mod:`clipsafety.datasets.tensor_cache`; the same tensors, bit for bit);
    ``False`` (or ``CLIPSAFETY_TENSOR_CACHE=0``) decodes them for this model alone.
    A model whose label space cannot meet the dataset's targets raises
    :class:`clipsafety.records.LabelSpaceMismatch` before any inference.
    batch_size: default 256 on GPU, 128 on CPU. num_workers: see the module docstring. shard_size: samples per resumable shard (default ``max(4 * batch, 2048)``).
    """
    import torch
    from tqdm.auto import tqdm

    from clipsafety.datasets import get_dataset
    from clipsafety.models import describe, load_for_images
    from clipsafety.records import check_label_spaces
    from clipsafety.store import Store, manifest_key

    batch_size = check_positive_int("batch_size", batch_size)
    num_workers = check_positive_int("num_workers", num_workers, minimum=0)
    shard_size = check_positive_int("shard_size", shard_size)
    image_size = check_positive_int("image_size", image_size)
    device = resolve_device(device)
    cuda = device.startswith("cuda")
    store = store if isinstance(store, Store) else Store(store)
    spec = get_dataset(dataset, data_root=data_root) if isinstance(dataset, str) else dataset
    head_kw = dict(classnames=_resolve_classnames(classnames, spec), templates=templates,
                   logit_scale=logit_scale, image_size=image_size) if not isinstance(model, LoadedModel) else {}
    if isinstance(model, LoadedModel):
        loaded = model
    else:  # the store key from the spec and the weights' digest where the source can tell it:
        # a stored record is then read without building the model (clipsafety.models.describe)
        loaded = None if recompute else describe(model, **head_kw)
        if loaded is None:
            loaded = load_for_images(model, device=device, **head_kw)
    # a head over some of the dataset's own class names (a prompt or label-set ablation) can be
    # mapped by name later, so it is stored; metrics on it are refused until it is mapped
    ablation = (str(loaded.label_space).startswith("custom-") and bool(loaded.classes)
                and set(loaded.classes) <= set(getattr(spec, "classes", []) or []))
    if not ablation:
        check_label_spaces(loaded.label_space, getattr(spec, "target_space", None) or spec.label_space,
                           label_map=getattr(spec, "label_map", None),
                           what=f"{loaded.model_id} on {spec.dataset_id}")
    precision = "bf16-autocast" if cuda else "fp32"
    kman = key_manifest(loaded, spec, precision)
    key = manifest_key(kman)
    described = describe_manifest(loaded, spec)
    if not recompute:
        rec = store.get(key, expect=kman)
        if rec is not None:
            rec.manifest.update(described)  # today's catalog, even for a record stored before
            rec.cache_hit = True  # not part of the record; tells callers (the CLI) it was read
            return rec

    if loaded.module is None:  # described, not built: a miss, so build it now
        loaded = load_for_images(model, device=device, **head_kw)
        built = key_manifest(loaded, spec, precision)
        if manifest_key(built) != key:
            raise RuntimeError(f"{loaded.model_id}: the store key described from its weights' "
                               f"digest ({key}) is not the built model's ({manifest_key(built)}); "
                               "this is a bug of its model source's describe(). Report it.")
    batch_size = batch_size or (256 if cuda else 128)
    if num_workers is None:  # GPU: decode in parallel; CPU: in-process (the forward owns the cores)
        num_workers = min(8, os.cpu_count() or 1) if cuda else 0
    shard_size = shard_size or max(4 * batch_size, 2048)
    run = store.partial(key, kman)
    if recompute:  # start afresh: no shards of an earlier run
        run.cleanup()
        run = store.partial(key, kman)
    done = run.done_indices()
    n = len(spec)
    todo = np.array([i for i in range(n) if i not in done], dtype=np.int64)

    module = loaded.module.to(device).eval()
    if cuda:
        module = module.to(memory_format=torch.channels_last)
    if hasattr(module, "build"):
        module.build(progress=progress)

    t0 = time.perf_counter()
    bar = tqdm(total=n, initial=n - len(todo), unit="img", unit_scale=True, disable=not progress,
               desc=f"{loaded.model_id} | {spec.dataset_id}", dynamic_ncols=True)
    buf: dict[str, list] = {"idx": [], "logits": [], "targets": [], "ids": [], "skipped": []}

    def flush():
        if buf["idx"] or buf["skipped"]:
            run.write_shard(np.concatenate(buf["idx"]) if buf["idx"] else np.zeros(0, np.int64),
                            np.concatenate(buf["logits"]) if buf["logits"] else
                            np.zeros((0, len(loaded.classes)), np.float32),
                            np.concatenate(buf["targets"]) if buf["targets"] else np.zeros(0, np.int64),
                            buf["ids"], buf["skipped"])
            for v in buf.values():
                v.clear()

    def forward(x):
        x = x.to(device, non_blocking=True)
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            return module(x).float().cpu().numpy()

    arrays = getattr(spec, "arrays", None)
    extra = loaded.extra or {}
    batch_transform = extra.get("batch_transform") or extra.get("array_transform")
    cache = None
    if arrays is None or batch_transform is None:
        from clipsafety.datasets.tensor_cache import for_model

        cache = for_model(spec, loaded.transform) if tensor_cache else None
    if arrays is not None and batch_transform is not None:
        X, Y, IDS = arrays()
        IDS = np.asarray(IDS, dtype=str)
        Xt = _transformed_arrays(manifest_key(kman["dataset"]), X, batch_transform)

        def rows(b):  # a contiguous run of the set is a view of the transformed set
            if Xt is None:
                return batch_transform(np.ascontiguousarray(X[b]))
            if len(b) and b[-1] - b[0] + 1 == len(b):
                return Xt[int(b[0]):int(b[-1]) + 1]
            return Xt[torch.from_numpy(b)]

        batches = ((rows(b), np.asarray(Y[b], np.int64), b, IDS[b].tolist(), [])
                   for b in np.array_split(todo, max(1, -(-len(todo) // batch_size))))
        batches = (b for b in batches if len(b[2]))
    elif cache is not None:  # decoded and transformed once per preprocessing, memory-mapped
        batches = cache.open(num_workers=num_workers, progress=progress).batches(todo, batch_size)
    else:
        loader = torch.utils.data.DataLoader(
            _Samples(spec, loaded.transform, todo), batch_size=batch_size, shuffle=False,
            num_workers=num_workers, collate_fn=_collate, pin_memory=cuda,
            persistent_workers=False, prefetch_factor=4 if num_workers > 0 else None)
        batches = _single_threaded_fetch(loader) if num_workers == 0 else iter(loader)
    pending, flushed = 0, False
    for x, y, idx, ids, bad in batches:
        if x is not None:
            buf["logits"].append(forward(x))
            buf["targets"].append(y)
            buf["idx"].append(idx)
            buf["ids"] += ids
        buf["skipped"] += bad
        k = len(idx) + len(bad)
        pending += k
        bar.update(k)
        if pending >= shard_size:
            flush()
            flushed, pending = True, 0
    bar.close()
    if not flushed and not done:  # one shard's worth, nothing resumed: no shard to write and read
        idx = np.concatenate(buf["idx"]) if buf["idx"] else np.zeros(0, np.int64)
        logits = np.concatenate(buf["logits"]) if buf["logits"] else None
        targets = np.concatenate(buf["targets"]) if buf["targets"] else np.zeros(0, np.int64)
        ids, skipped = list(buf["ids"]), list(buf["skipped"])
        seconds = time.perf_counter() - t0
    else:
        flush()
        seconds = time.perf_counter() - t0
        idx, logits, targets, ids, skipped = run.load()
    if len(idx) + len(skipped) != n:  # a concurrent run of this key finished and cleaned up
        rec = store.get(key, expect=kman)
        if rec is None:
            from clipsafety.store import StoreError

            raise StoreError(f"{loaded.model_id} on {spec.dataset_id}: {n - len(idx) - len(skipped)} "
                             f"of {n} samples' shards vanished from {run.folder} while this run "
                             "was writing (removed by another process: a run of the same record "
                             "that finished, or a deleter of the store) and no record was "
                             "stored; run it again (it resumes from the shards left).")
        run.cleanup()  # the rows this run wrote after the other finished are not needed
        rec.manifest.update(described)
        rec.cache_hit = False
        return rec
    order = np.argsort(idx, kind="stable")
    idx, targets = idx[order], targets[order]
    logits = logits[order] if logits is not None else np.zeros((0, len(loaded.classes)), np.float32)
    ids = np.asarray(ids, dtype=str)[order]
    skipped = sorted(skipped, key=lambda s: s["index"])
    meta = spec.meta()
    if meta is not None:
        meta = meta.iloc[idx].reset_index(drop=True)
    what = f"{loaded.model_id} on {spec.dataset_id}"
    try:
        tied = check_logits(logits, what)
    except BrokenModel:
        run.cleanup()  # a rerun must not resume from these shards
        raise
    manifest = {**kman, "n": len(idx), "n_skipped": len(skipped), "skipped": skipped,
                "resumed_samples": int(n - len(todo)), "device": device,
                "seconds": round(seconds, 3), "logit_policy": loaded.logit_policy,
                "images_per_second": round(len(todo) / seconds, 2) if seconds > 0 else None}
    if tied:
        manifest["tied_rows"] = tied
    if getattr(spec, "label_map", None) is not None:
        manifest["label_map"] = spec.label_map
    manifest.update(described)
    rec = PredictionRecord(logits=logits, targets=targets, ids=ids, manifest=manifest, meta=meta)
    from clipsafety.store import StoreIOError

    try:
        if recompute:
            store.delete(key)
        out = store.put_record(key, rec)  # the record as a read would give it, not read back
    except StoreIOError as e:  # nothing computed is lost: the shards stay until a record is stored
        if any(buf.values()):  # kept in memory (one shard's worth): saved as a shard now
            try:
                flush()
            except StoreIOError:
                raise e.with_note(f"The {n} samples of {loaded.model_id} on {spec.dataset_id} "
                                  "could not be saved as a shard either; a rerun computes "
                                  "them again.") from e.__cause__
        raise e.with_note(f"All {n} samples of {loaded.model_id} on {spec.dataset_id} are saved "
                          f"as shards in {run.folder}: a rerun (without recompute) stores "
                          "the record from them without recomputing.") from e.__cause__
    run.cleanup()
    out.manifest.update(described)
    out.cache_hit = False
    return out
