"""Generators of tiny fixture folders in each real dataset's on-disk layout.

Each ``make_*`` writes into a folder (usually pytest's ``tmp_path``) and returns the dataset
folder plus what a correct reader must find, computed independently of
:mod:`clipsafety.datasets` (from timm's and imagenet-x's shipped files).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 24


def _img(seed: int, size: int = SIZE) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


def _save(path: Path, seed: int, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    _img(seed).save(path, format=fmt)
    return path


def synsets() -> list[str]:
    import timm.data

    p = Path(timm.data.__file__).parent / "_info" / "imagenet_synsets.txt"
    return p.read_text().split()


def timm_subset(which: str) -> list[int]:
    import timm.data

    p = Path(timm.data.__file__).parent / "_info" / f"imagenet_{which}_indices.txt"
    return sorted(int(x) for x in p.read_text().split())


def make_imagenet_val(root: Path, classes=(0, 1, 2), per_class: int = 2, flat: bool = False):
    """ImageNet val in class folders (or flat) with REAL val file names of those classes, so the
    ImageNet-X join can be checked. Returns (folder, {file_name: class})."""
    import pandas as pd
    from imagenet_x.utils import get_annotation_path

    labels = pd.read_csv(get_annotation_path() / "filename_label.csv")
    folder = root / "imagenet" / "val"
    wn = synsets()
    truth = {}
    for c in classes:
        names = sorted(labels.loc[labels.label == c, "file_name"])[:per_class]
        for k, name in enumerate(names):
            sub = folder if flat else folder / wn[c]
            _save(sub / name, seed=c * 100 + k, fmt="JPEG")
            truth[name] = c
    return folder, truth


def make_imagenet_v2(root: Path, classes=(0, 7, 999), per_class: int = 2):
    folder = root / "imagenetv2-matched-frequency-format-val"
    for c in classes:
        for k in range(per_class):
            _save(folder / str(c) / f"{c:04d}{k:02d}abcdef.jpeg", seed=c + k, fmt="JPEG")
    return folder


def make_wnid_dataset(root: Path, name: str, indices, per_class: int = 2, ext: str = "jpg"):
    """<root>/<name>/<wnid>/*.jpg for the given ImageNet indices (Sketch, R, A, O layouts)."""
    folder = root / name
    wn = synsets()
    for c in indices:
        for k in range(per_class):
            _save(folder / wn[c] / f"img_{k}.{ext}", seed=1000 + c * 10 + k,
                  fmt="JPEG" if ext in ("jpg", "JPEG") else "PNG")
    return folder


#: The ObjectNet fixture: 3 folders, one without an ImageNet counterpart.
OBJECTNET_FOLDERS = {"alarm_clock": "Alarm clock", "banana": "Banana", "air_freshener": "Air freshener"}
OBJECTNET_TO_IMAGENET = {"Alarm clock": "analog clock; digital clock", "Banana": "banana"}
#: expected ImageNet (pytorch) columns per ObjectNet class, sorted by ObjectNet class name
OBJECTNET_EXPECTED = {"Alarm clock": [409, 530], "Banana": [954]}


def make_objectnet(root: Path, per_class: int = 2):
    """objectnet-1.0/{images/<folder>/*.png, mappings/...} in the real release's formats.

    ``imagenet_to_label_2012_v2`` lists names in a permuted (ILSVRC-id) order and
    ``pytorch_to_imagenet_2012_id.json`` maps pytorch index -> line, as in the release.
    Images are blue with a 1-pixel red border."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    folder = root / "objectnet-1.0"
    m = folder / "mappings"
    m.mkdir(parents=True)
    perm = np.random.default_rng(0).permutation(1000)  # line l holds pytorch class perm[l]
    wanted = {409, 530, 954}
    lines = [IMAGENET_CLASSNAMES[p] if p in wanted else f"imagenet class {p}" for p in perm]
    (m / "imagenet_to_label_2012_v2").write_text("\n".join(lines) + "\n")
    (m / "pytorch_to_imagenet_2012_id.json").write_text(
        json.dumps({str(int(p)): int(line) for line, p in enumerate(perm)}))
    (m / "folder_to_objectnet_label.json").write_text(json.dumps(OBJECTNET_FOLDERS))
    (m / "objectnet_to_imagenet_1k.json").write_text(json.dumps(OBJECTNET_TO_IMAGENET))
    for f in OBJECTNET_FOLDERS:
        for k in range(per_class):
            a = np.zeros((20, 30, 3), np.uint8)
            a[..., 2] = 255
            a[0, :] = a[-1, :] = a[:, 0] = a[:, -1] = (255, 0, 0)
            p = folder / "images" / f / f"{k:03d}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(a).save(p)
    return folder


def make_ood(root: Path, name: str, n: int = 3, subclasses=None):
    """<root>/<name>/images/(<subclass>/)*.jpg (MCM's curated OOD layout; dtd has subclasses)."""
    folder = root / name
    subs = subclasses or [None]
    for s in subs:
        for k in range(n):
            p = folder / "images" / (s or "") / f"{name}_{k}.jpg"
            _save(p, seed=k + 7, fmt="JPEG")
    return folder


CUE_FILES = ["airplane/airplane1-bicycle2.png", "airplane/airplane2-airplane3.png",
             "cat/cat1-elephant1.png", "cat/cat3-clock2.png", "truck/truck10-knife4.png"]


def make_cue_conflict(root: Path):
    folder = root / "cue-conflict"
    for k, rel in enumerate(CUE_FILES):
        _save(folder / rel, seed=k, fmt="PNG")
    return folder


def make_bad_images(folder: Path) -> dict[str, str]:
    """Images of every awkward kind in one class folder; returns {file name: 'ok'|'skip'}."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    _img(1).convert("L").save(folder / "gray.jpg", "JPEG"); out["gray.jpg"] = "ok"
    _img(2).convert("CMYK").save(folder / "cmyk.jpg", "JPEG"); out["cmyk.jpg"] = "ok"
    _img(3).convert("RGBA").save(folder / "rgba.png", "PNG"); out["rgba.png"] = "ok"
    _img(4).convert("P").save(folder / "palette.png", "PNG"); out["palette.png"] = "ok"
    (folder / "corrupt.jpg").write_bytes(b"this is not an image at all" * 10); out["corrupt.jpg"] = "skip"
    buf = io.BytesIO()
    _img(5, size=64).save(buf, "JPEG", quality=95)
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2]); out["truncated.jpg"] = "skip"
    _img(6).save(folder / "fine.jpg", "JPEG"); out["fine.jpg"] = "ok"
    return out
