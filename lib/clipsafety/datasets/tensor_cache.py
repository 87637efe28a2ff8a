"""Real image sets decoded once per preprocessing: a memory-mapped cache of decoded,
preprocessed images, shared by every model with the same preprocessing.

Decoding a JPEG and resizing it costs more than a small model's forward pass (4.2 ms per
ImageNet image here against under 1 ms of forward for a ResNet-18 batch share), and the 233
CLIP-group models of the paper's matrix use 38 distinct preprocessings. So a dataset is
decoded and transformed once per preprocessing; every model with that preprocessing reads
the result from a memory-mapped file.

Key: sha256 of the dataset's manifest (ids, targets and every file's content digest:
:meth:`clipsafety.datasets.FolderSpec.manifest`) and an exact description of the transform
(:func:`transform_description`: each step's class and its settings, the normalisation's mean
and std at full precision), plus the versions of torchvision, Pillow and this format. Any
change is another key, never a stale tensor.

What is stored. A torchvision ``Compose`` ending in ``ToTensor`` (or timm's
``MaybeToTensor``) and an optional ``Normalize`` is split there: the images after the steps
before ``ToTensor`` (resize, crop, mode conversion) are stored as ``uint8 [N, H, W, 3]``, and
``ToTensor`` + ``Normalize`` are applied to each batch as tensor operations, element by
element the same operations torchvision applies to one image, so the tensors are exactly
equal to the uncached transform's (a test checks it bit for bit). Any other Compose of
torchvision/timm steps is stored as the final ``float32 [N, C, H, W]`` tensors. A transform
that is not such a Compose (a function, a lambda) is not cached: its description would not
identify it.

Layout: ``$CLIPSAFETY_TENSOR_CACHE`` (default ``$CLIPSAFETY_CACHE/tensors``, else
``~/.cache/clipsafety/tensors``)``/<key>/`` holding ``images.npy`` (opened with
``mmap_mode="r"``) and ``index.json`` (ids, targets, the rows of good images, the unreadable
ones with their reasons, the transform's description). A cache is built in a temporary folder
and renamed into place in one step (two builders of one key: one rename wins, the other's
copy is dropped). Disk: ``N * H * W * 3`` bytes for the uint8 form (7.5 GB for ImageNet's
50,000 validation images at 224 px), four times that for the float form.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

FORMAT = 1
#: what this process decoded and read (tests and benchmarks read it)
STATS = {"decoded": 0, "built": 0, "opened": 0}


def cache_root() -> Path:
    """Where the caches live (see the module docstring)."""
    if os.environ.get("CLIPSAFETY_TENSOR_CACHE"):
        return Path(os.environ["CLIPSAFETY_TENSOR_CACHE"]).expanduser()
    base = Path(os.environ.get("CLIPSAFETY_CACHE", "~/.cache/clipsafety")).expanduser()
    return base / "tensors"


def enabled() -> bool:
    """``CLIPSAFETY_TENSOR_CACHE=0`` turns the cache off (every model decodes for itself)."""
    return os.environ.get("CLIPSAFETY_TENSOR_CACHE", "").strip() != "0"


_TO_TENSOR = {"ToTensor", "MaybeToTensor"}


def _plain(value):
    """A JSON form of a transform setting that identifies it exactly, or raise TypeError."""
    import enum

    import torch

    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return repr(value)  # every bit of the float
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, torch.Tensor):
        return [repr(float(v)) for v in value.detach().flatten().tolist()] + [list(value.shape)]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} setting")


def _steps(transform):
    """The steps of a torchvision ``Compose`` of torchvision/timm transforms, else ``None``."""
    from torchvision import transforms as T

    if not isinstance(transform, T.Compose):
        return None
    for t in transform.transforms:
        mod = type(t).__module__ or ""
        if not mod.startswith(("torchvision.transforms", "timm.data", "open_clip.transform")):
            return None
    return list(transform.transforms)


def transform_description(transform) -> list | None:
    """Each step's ``module.class`` and its public settings (floats and tensors at full
    precision), or ``None`` for a transform the cache cannot identify (not a Compose of
    torchvision/timm/open_clip steps, or a step holding a function)."""
    steps = _steps(transform)
    if steps is None:
        return None
    out = []
    for t in steps:
        attrs = {k: v for k, v in vars(t).items() if not k.startswith("_") and k != "training"}
        try:
            out.append({"class": f"{type(t).__module__}.{type(t).__qualname__}",
                        "settings": {k: _plain(v) for k, v in sorted(attrs.items())}})
        except TypeError:
            return None
    return out


def _split(transform):
    """``(steps before ToTensor, Normalize or None)`` when the Compose ends in ToTensor and an
    optional (not in-place) Normalize; else ``None``."""
    from torchvision import transforms as T

    steps = _steps(transform)
    if not steps:
        return None
    names = [type(t).__name__ for t in steps]
    k = next((i for i, n in enumerate(names) if n in _TO_TENSOR), None)
    if k is None:
        return None
    rest = steps[k + 1:]
    if not rest:
        return steps[:k], None
    if len(rest) == 1 and isinstance(rest[0], T.Normalize) and not rest[0].inplace:
        return steps[:k], rest[0]
    return None


def cache_key(dataset_manifest: dict, description: list) -> str:
    import PIL
    import torchvision

    body = {"format": FORMAT, "dataset": dataset_manifest, "transform": description,
            "torchvision": torchvision.__version__, "pillow": PIL.__version__}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:32]


class TensorCache:
    """The decoded, preprocessed images of one dataset under one transform (see the module
    docstring). :meth:`open` builds it when missing; :meth:`batches` serves batches."""

    def __init__(self, spec, transform, root: str | os.PathLike | None = None):
        description = transform_description(transform)
        if description is None:
            raise ValueError(f"transform {transform!r} cannot be cached: expected a torchvision "
                             "Compose of torchvision/timm/open_clip steps (a function's "
                             "behaviour is not identified by its name); predict then decodes "
                             "without the cache.")
        self.spec, self.transform = spec, transform
        self.description = description
        self.key = cache_key(spec.manifest(), description)
        self.folder = Path(root).expanduser() if root is not None else cache_root()
        self.folder = self.folder / self.key
        split = _split(transform)
        self.uint8 = split is not None
        self.prefix, self.normalize = split if split is not None else (None, None)
        self._images = self._index = None

    def exists(self) -> bool:
        return (self.folder / "index.json").is_file()

    def open(self, num_workers: int = 0, progress: bool = False) -> TensorCache:
        """Build the cache when it is missing (or damaged), then map it; returns ``self``."""
        if self._images is None:
            if not self.exists() or not self._load():
                self.build(num_workers=num_workers, progress=progress)
                if not self._load():
                    raise RuntimeError(f"{self.folder}: the tensor cache just built does not load.")
            STATS["opened"] += 1
        return self

    def _load(self) -> bool:
        try:
            index = json.loads((self.folder / "index.json").read_text())
            images = np.load(self.folder / "images.npy", mmap_mode="r")
        except (OSError, ValueError):
            return False
        if (index.get("key") != self.key or len(index["ids"]) != len(self.spec)
                or images.shape[0] != sum(r >= 0 for r in index["row"])):
            return False
        self._images, self._index = images, index
        self._rows = np.asarray(index["row"], dtype=np.int64)
        self._targets = np.asarray(index["targets"], dtype=np.int64)
        self._bad = {int(s["index"]): s["reason"] for s in index["skipped"]}
        return True

    def _prepare(self, img):
        """One image as stored: uint8 ``[H, W, 3]`` (steps before ToTensor) or the final tensor."""
        if not self.uint8:
            return self.transform(img).numpy()
        for t in self.prefix:
            img = t(img)
        arr = np.asarray(img, dtype=np.uint8)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"expected an RGB image after {self.prefix}, got shape {arr.shape}")
        return arr

    def build(self, num_workers: int = 0, progress: bool = False) -> None:
        """Decode and transform every image of the dataset once, into a temporary folder
        renamed into place. Unreadable images are listed with their reasons."""
        import torch
        from tqdm.auto import tqdm

        from clipsafety.datasets import BadImage

        spec, n = self.spec, len(self.spec)

        class _Decode(torch.utils.data.Dataset):
            def __len__(self_):
                return n

            def __getitem__(self_, i):
                try:
                    img, target, sid = spec[i]
                    return i, self._prepare(img), int(target), str(sid), None
                except BadImage as e:
                    ids = getattr(spec, "ids", None)
                    return i, None, -1, str(ids[i]) if ids is not None else str(i), str(e)

        tmp = self.folder.parent / f".tmp-{self.key}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            loader = torch.utils.data.DataLoader(_Decode(), batch_size=None, shuffle=False,
                                                 num_workers=num_workers, collate_fn=_as_is)
            ids, targets, rows, skipped, out, k = [""] * n, [-1] * n, [-1] * n, [], None, 0
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # per-image ops: one thread (clipsafety.infer)
            try:
                for i, arr, target, sid, err in tqdm(loader, total=n, disable=not progress,
                                                     desc=f"decoding {spec.dataset_id}", unit="img"):
                    ids[i], targets[i] = sid, target
                    if arr is None:
                        skipped.append({"index": i, "id": sid, "reason": err})
                        continue
                    if out is None:
                        shape = (n, *arr.shape)
                        out = np.lib.format.open_memmap(tmp / "images.npy", mode="w+",
                                                        dtype=arr.dtype, shape=shape)
                    if arr.shape != out.shape[1:]:
                        raise ValueError(f"{sid}: transformed to shape {arr.shape}, other images "
                                         f"to {out.shape[1:]}; the transform has no fixed size "
                                         "(no crop), so its images cannot be stacked.")
                    out[k] = arr
                    rows[i] = k
                    k += 1
                    STATS["decoded"] += 1
            finally:
                torch.set_num_threads(threads)
            if out is None:  # every image unreadable
                out = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8,
                                                shape=(0, 1, 1, 3))
            out.flush()
            del out
            index = {"key": self.key, "format": FORMAT, "dataset_id": spec.dataset_id,
                     "ids": ids, "targets": targets, "row": rows, "skipped": skipped,
                     "uint8": self.uint8, "transform": self.description}
            (tmp / "index.json").write_text(json.dumps(index))
            if k < n:  # rows of unreadable images are never read: shrink the file to k rows
                full = np.load(tmp / "images.npy", mmap_mode="r")
                kept = np.lib.format.open_memmap(tmp / "images.k.npy", mode="w+",
                                                 dtype=full.dtype, shape=(k, *full.shape[1:]))
                kept[:] = full[:k]
                kept.flush()
                del kept, full
                os.replace(tmp / "images.k.npy", tmp / "images.npy")
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            if self.folder.exists():  # a damaged one: replaced
                shutil.rmtree(self.folder, ignore_errors=True)
            try:
                os.replace(tmp, self.folder)
            except OSError:
                if not self.exists():
                    raise
            STATS["built"] += 1
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def to_tensor(self, stored: np.ndarray):
        """Stored images ``[B, ...]`` -> the model's input ``float [B, 3, H, W]``: ToTensor and
        Normalize as torchvision applies them to each image (the same element-wise
        operations), or the stored float tensors as they are."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(stored))
        if not self.uint8:
            return x
        x = x.permute(0, 3, 1, 2).contiguous().to(dtype=torch.get_default_dtype()).div(255)
        if self.normalize is not None:
            mean = torch.as_tensor(self.normalize.mean, dtype=x.dtype).view(1, -1, 1, 1)
            std = torch.as_tensor(self.normalize.std, dtype=x.dtype).view(1, -1, 1, 1)
            x = x.sub_(mean).div_(std)
        return x

    def batches(self, indices: np.ndarray, batch_size: int):
        """``(x, targets, indices, ids, skipped)`` batches over dataset ``indices`` (as
        :func:`clipsafety.predict`'s loader yields them), read from the memory map."""
        ids = self._index["ids"]
        for chunk in np.array_split(indices, max(1, -(-len(indices) // batch_size))):
            if not len(chunk):
                continue
            good = np.array([i for i in chunk.tolist() if i not in self._bad], dtype=np.int64)
            bad = [{"index": int(i), "id": ids[i], "reason": self._bad[i]}
                   for i in chunk.tolist() if i in self._bad]
            x = self.to_tensor(self._images[self._rows[good]]) if len(good) else None
            yield x, self._targets[good], good, [ids[i] for i in good.tolist()], bad


def _as_is(item):
    return item


def for_model(spec, transform, root=None) -> TensorCache | None:
    """The tensor cache of ``spec`` under ``transform``, or ``None`` where there is none to
    have: the cache is off, the dataset has no content manifest of image files, or the
    transform cannot be identified (see :func:`transform_description`)."""
    if not enabled() or not hasattr(spec, "files") or transform_description(transform) is None:
        return None
    return TensorCache(spec, transform, root)


__all__ = ["FORMAT", "STATS", "TensorCache", "cache_key", "cache_root", "enabled", "for_model",
           "transform_description"]
