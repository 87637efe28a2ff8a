"""Real datasets on disk: the builders, each registered where it is defined.

A builder maps ``(dataset_id, root)`` to a :class:`FolderSpec`; ``@register(...)`` puts it in
:data:`clipsafety.datasets.registry.REGISTRY` with its folder names, description, kind, label
space and annotation kind. See :mod:`clipsafety.datasets` for the conventions.
"""


from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from clipsafety.datasets.registry import layout_of, register
from clipsafety.heads import imagenet_classnames, normalized_classname
from clipsafety.records import DatasetSpec
from clipsafety.shape import CUE_CONFLICT_CLASSES, parse_cue_conflict_name

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm"}
OBJECTNET_BORDER = 2

class LayoutError(FileNotFoundError):
    """A dataset folder does not have the expected layout."""


class BadImage(OSError):
    """An image file that cannot be read or decoded (corrupt, truncated, not an image, too
    large to decode safely, unreadable, a dangling link, a file name that is not UTF-8):
    :func:`clipsafety.predict` skips it and lists it in the record's ``manifest["skipped"]``."""


# ----------------------------------------------------------------------------- helpers
@cache
def _timm_info(name: str) -> list[str]:
    import timm.data

    path = Path(timm.data.__file__).parent / "_info" / name
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def imagenet_synsets() -> list[str]:
    """The 1000 ImageNet WordNet ids in class-index order (timm's ``imagenet_synsets.txt``)."""
    return _timm_info("imagenet_synsets.txt")


def wnid_to_index() -> dict[str, int]:
    return {w: i for i, w in enumerate(imagenet_synsets())}


def subset_indices(which: str) -> list[int]:
    """Sorted ImageNet indices of ImageNet-R (``"r"``) or ImageNet-A (``"a"``) (timm's lists)."""
    return sorted(int(x) for x in _timm_info(f"imagenet_{which}_indices.txt"))


def load_rgb(path: str | os.PathLike, crop: int = 0):
    """Decode an image file to an RGB ``PIL.Image`` (grayscale/CMYK/RGBA/palette converted;
    transparency dropped). ``crop`` removes that many pixels from every side.
    Raises :class:`BadImage` for corrupt, truncated or unreadable files and for images whose
    header claims more pixels than PIL decodes safely (``DecompressionBombError``)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode == "P" and "transparency" in im.info:
                im = im.convert("RGBA")
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                im = im.point(lambda v: v / 256).convert("L")
            rgb = im.convert("RGB") if im.mode != "RGB" else im.copy()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise BadImage(f"{path}: cannot decode image ({type(e).__name__}: {e})") from e
    if crop:
        w, h = rgb.size
        if w > 2 * crop and h > 2 * crop:
            rgb = rgb.crop((crop, crop, w - crop, h - crop))
    return rgb


def _list_images(folder: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        out += [Path(dirpath) / f for f in sorted(filenames)
                if Path(f).suffix.lower() in IMAGE_EXTS and not f.startswith(".")]
    return out


def _sample_id(path: Path, root: Path) -> str:
    """The sample id of ``path``: its POSIX path relative to ``root``. A file name that is not
    valid UTF-8 (read by Python as lone surrogates) gets its bytes written as ``\\xNN`` escapes,
    so the id is text a record can hold; :class:`FolderSpec` skips such a file by name."""
    rel = path.relative_to(root).as_posix()
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(rel).decode("utf-8", "backslashreplace")
    return rel


def _utf8_name(path: Path) -> bool:
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _subdirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _describe(folder: Path, n: int = 8) -> str:
    if not folder.exists():
        return f"{folder} does not exist"
    items = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    more = f" ... ({len(items)} entries)" if len(items) > n else ""
    return f"{folder} contains {items[:n]}{more}"


# ----------------------------------------------------------------------------- the spec
class FolderSpec(DatasetSpec):
    """A list of image files under ``root`` with integer targets; the one concrete spec."""

    def __init__(self, dataset_id: str, root: Path, files: Sequence[Path], targets: Sequence[int],
                 *, label_space: str, classes: list[str], label_subset: list[int] | None = None,
                 layout: str = "", crop: int = 0, meta=None, target_space: str | None = None,
                 label_map: list[list[int]] | None = None, extra_manifest: dict | None = None):
        self.dataset_id = dataset_id
        self.root = Path(root)
        self.files = [Path(f) for f in files]
        self.ids = [_sample_id(f, self.root) for f in self.files]
        #: positions of files whose names are not valid UTF-8: skipped as unreadable
        self._bad_names = {i for i, f in enumerate(self.files) if not _utf8_name(f)}
        if not _utf8_name(self.root):
            raise LayoutError(f"{os.fsencode(self.root)!r}: the dataset folder's path is not valid "
                              "UTF-8; sample ids and records are text. Rename the folder (or link "
                              "it from a UTF-8 path) and use that path.")
        self.targets = np.asarray(targets, dtype=np.int64)
        self.label_space = label_space
        self.classes = classes
        self.label_subset = None if label_subset is None else sorted(int(i) for i in label_subset)
        self.layout = layout
        self.crop = crop
        self.target_space = target_space or label_space
        self.label_map = label_map
        self._meta = meta
        self._extra = extra_manifest or {}
        if not self.files:
            raise LayoutError(f"{dataset_id}: no images found under {self.root} "
                              f"(expected layout: {layout}). {_describe(self.root)}")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        """``(RGB image, target, id)``; raises :class:`BadImage` (which
        :func:`clipsafety.predict` skips and lists) for any file that cannot be read or
        decoded, whatever the reason."""
        from PIL import Image

        if i in self._bad_names:
            raise BadImage(f"{self.ids[i]}: the file name is not valid UTF-8 (bytes "
                           f"{os.fsencode(self.files[i].name)!r}); sample ids are text, so the file "
                           "is skipped. Rename it to a UTF-8 name to include it.")
        try:
            img = load_rgb(self.files[i], crop=self.crop)
        except BadImage:
            raise
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise BadImage(f"{self.files[i]}: cannot read image ({type(e).__name__}: {e})") from e
        return img, int(self.targets[i]), self.ids[i]

    def _digests(self) -> list[str]:
        """Content digest of each file (:func:`clipsafety.files.content_digests`); a file that
        cannot be read (a dangling link, no permission) or whose name is not UTF-8 gets
        ``"unreadable:<reason>"`` instead, so the manifest still identifies the data and the
        image is skipped at inference rather than failing the whole dataset."""
        from clipsafety.files import content_digests

        good = [f for i, f in enumerate(self.files) if i not in self._bad_names]
        try:
            digests = content_digests(good)
        except OSError:
            digests = []
            for f in good:
                try:
                    digests += content_digests([f])
                except OSError as e:
                    digests.append(f"unreadable:{type(e).__name__}")
        it = iter(digests)
        return ["unreadable:file-name-not-utf-8" if i in self._bad_names else next(it)
                for i in range(len(self.files))]

    def manifest(self) -> dict:
        """Identifies the data exactly: ids, targets and each file's content digest (sha256 of
        its bytes, :func:`clipsafety.files.content_digests`: computed once per file and cached
        by path, size, mtime, ctime and inode), label space, crop. An image whose bytes change,
        even at the same size, changes the manifest and so the store key."""
        h = hashlib.sha256()
        for rel, t, d in zip(self.ids, self.targets.tolist(), self._digests()):
            h.update(f"{rel}\t{t}\t{d}\n".encode())
        return {"dataset_id": self.dataset_id, "layout": self.layout, "n": len(self),
                "label_space": self.label_space, "target_space": self.target_space,
                "label_subset": self.label_subset, "crop": self.crop,
                "label_map_sha256": None if self.label_map is None else
                hashlib.sha256(json.dumps(self.label_map).encode()).hexdigest(),
                "files_sha256": h.hexdigest(), "files_digest": "sha256-content", **self._extra}

    def meta(self):
        import pandas as pd

        if self._meta is None:
            return None
        return self._meta if isinstance(self._meta, pd.DataFrame) else self._meta()


def project_logits(logits: np.ndarray, label_map: Sequence[Sequence[int]], reduce: str = "max") -> np.ndarray:
    """Map ``[N, C]`` logits to ``[N, K]`` target classes, ``label_map[k]`` = columns of class k.

    ``reduce="max"``: the largest logit among the members (ObjectNet convention: a prediction
    of any member class counts). ``"mean"``: their mean."""
    fn = {"max": np.max, "mean": np.mean}[reduce]
    return np.stack([fn(logits[:, list(cols)], axis=1) for cols in label_map], axis=1)


# ----------------------------------------------------------------------------- builders
def _wnid_folders(dataset_id: str, root: Path, allowed: set[str] | None, layout: str) -> tuple[list, list]:
    w2i = wnid_to_index()
    subs = _subdirs(root)
    bad = [s for s in subs if s not in w2i or (allowed is not None and s not in allowed)]
    if not subs or bad:
        raise LayoutError(
            f"{dataset_id}: expected {layout} with ImageNet WordNet-id folders"
            f"{' of its ' + str(len(allowed)) + ' classes' if allowed else ''} (e.g. n01443537/); "
            f"found {'no class folders' if not subs else 'unexpected folders ' + str(bad[:5])}. "
            f"{_describe(root)}")
    files, targets = [], []
    for s in subs:
        imgs = _list_images(root / s)
        files += imgs
        targets += [w2i[s]] * len(imgs)
    return files, targets


def _imagenet_x_meta(ids: list[str]):
    """ImageNet-X factor annotations joined by file name (multi-factor flags + top factor)."""
    import pandas as pd
    from imagenet_x.utils import get_annotation_path

    ann = get_annotation_path()
    multi = pd.read_json(ann / "imagenet_x_val_multi_factor.jsonl", lines=True)
    top = pd.read_json(ann / "imagenet_x_val_top_factor.jsonl", lines=True)
    factors = [c for c in multi.columns if c not in ("file_name", "class", "justification", "one_word")]
    top_factor = top.set_index("file_name")[factors].idxmax(axis=1).rename("top_factor")
    protos = set(pd.read_csv(ann / "prototypical_paths.csv")["file_name"])
    df = pd.DataFrame({"id": ids, "file_name": [Path(i).name for i in ids]})
    df = df.merge(multi[["file_name", *factors]], on="file_name", how="left")
    df = df.merge(top_factor, left_on="file_name", right_index=True, how="left")
    df["annotated"] = df[factors[0]].notna()
    df["is_prototype"] = df["file_name"].isin(protos)
    return df


@register("imagenet:val", folders=("imagenet/val", "ILSVRC2012_img_val", "val"),
          description="ImageNet-1k validation (50,000)", kind="id", label_space="imagenet-1k",
          annotations="imagenet-x",
          layout="<root>/<wnid>/ILSVRC2012_val_XXXXXXXX.JPEG (or all files flat in <root>)",
          get=("ILSVRC2012_img_val.tar from https://image-net.org/download-images (free account); "
               "tar -xf it into DATA_ROOT/imagenet/val (flat is accepted)"))
def _imagenet_val(dataset_id: str, root: Path) -> FolderSpec:
    layout = layout_of(dataset_id)
    if any(p.is_dir() for p in root.iterdir()):
        files, targets = _wnid_folders(dataset_id, root, None, layout)
    else:
        import pandas as pd
        from imagenet_x.utils import get_annotation_path

        labels = pd.read_csv(get_annotation_path() / "filename_label.csv").set_index("file_name")["label"]
        files = [f for f in _list_images(root) if f.name in labels.index]
        if not files:
            raise LayoutError(f"{dataset_id}: expected {layout}; found no ILSVRC2012_val_*.JPEG files. "
                              f"{_describe(root)}")
        targets = [int(labels[f.name]) for f in files]
    ids = [_sample_id(f, root) for f in files]
    return FolderSpec(dataset_id, root, files, targets, label_space="imagenet-1k",
                      classes=imagenet_classnames(), layout=layout,
                      meta=lambda: _imagenet_x_meta(ids))


@register("imagenet:v2", folders=("imagenetv2-matched-frequency-format-val", "imagenet-v2"),
          description="ImageNet-V2 matched-frequency (10,000)", kind="shift",
          label_space="imagenet-1k", layout="<root>/<class index 0..999>/<hash>.jpeg",
          get=("wget https://huggingface.co/datasets/vaishaal/ImageNetV2/resolve/main/"
               "imagenetv2-matched-frequency.tar.gz && tar -xzf imagenetv2-matched-frequency.tar.gz -C DATA_ROOT"))
def _imagenet_v2(dataset_id: str, root: Path) -> FolderSpec:
    layout = layout_of(dataset_id)
    subs = _subdirs(root)
    bad = [s for s in subs if not (s.isdigit() and 0 <= int(s) < 1000)]
    if not subs or bad:
        raise LayoutError(f"{dataset_id}: expected {layout}; found "
                          f"{'no class folders' if not subs else 'non-numeric folders ' + str(bad[:5])}. "
                          f"{_describe(root)}")
    files, targets = [], []
    for s in sorted(subs, key=int):
        imgs = _list_images(root / s)
        files += imgs
        targets += [int(s)] * len(imgs)
    return FolderSpec(dataset_id, root, files, targets, label_space="imagenet-1k",
                      classes=imagenet_classnames(), layout=layout)


def _wnid_dataset(which: str | None):
    def build(dataset_id: str, root: Path) -> FolderSpec:
        layout = layout_of(dataset_id)
        subset = subset_indices(which) if which else None
        allowed = {imagenet_synsets()[i] for i in subset} if subset else None
        files, targets = _wnid_folders(dataset_id, root, allowed, layout)
        return FolderSpec(dataset_id, root, files, targets, label_space="imagenet-1k",
                          classes=imagenet_classnames(), label_subset=subset, layout=layout)
    return build


register("imagenet:sketch", folders=("imagenet-sketch/sketch", "sketch", "imagenet-sketch"),
         description="ImageNet-Sketch (50,889)", kind="shift", label_space="imagenet-1k",
         layout="<root>/<wnid>/*.JPEG",
         get=("kaggle datasets download -d wanghaohan/imagenetsketch (or the Google Drive link of "
               "github.com/HaohanWang/ImageNet-Sketch); unpack to DATA_ROOT/imagenet-sketch"))(_wnid_dataset(None))
register("imagenet:r", folders=("imagenet-r",), description="ImageNet-R, 200 classes (30,000)",
         kind="shift", label_space="imagenet-1k",
         layout="<root>/<wnid of the 200 ImageNet-R classes>/*.jpg",
         get="wget https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar && tar -xf imagenet-r.tar -C DATA_ROOT")(_wnid_dataset("r"))
register("imagenet:a", folders=("imagenet-a",), description="ImageNet-A, 200 classes (7,500)",
         kind="shift", label_space="imagenet-1k",
         layout="<root>/<wnid of the 200 ImageNet-A classes>/*.jpg",
         get="wget https://people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar && tar -xf imagenet-a.tar -C DATA_ROOT")(_wnid_dataset("a"))


@register("objectnet", folders=("objectnet-1.0",),
          description="ObjectNet, 113 ImageNet-overlapping classes", kind="shift",
          label_space="imagenet-1k", target_space="objectnet-113",
          layout=("<root>/images/<objectnet folder>/*.png and <root>/mappings/{folder_to_objectnet_label.json,"
                  " objectnet_to_imagenet_1k.json, pytorch_to_imagenet_2012_id.json, imagenet_to_label_2012_v2}"),
          get="objectnet-1.0.zip from https://objectnet.dev/download.html (licence form); unzip into DATA_ROOT")
def _objectnet(dataset_id: str, root: Path) -> FolderSpec:
    import pandas as pd

    layout = layout_of(dataset_id)
    m = root / "mappings"
    need = ["folder_to_objectnet_label.json", "objectnet_to_imagenet_1k.json",
            "pytorch_to_imagenet_2012_id.json", "imagenet_to_label_2012_v2"]
    missing = [n for n in need if not (m / n).is_file()]
    if missing or not (root / "images").is_dir():
        raise LayoutError(f"{dataset_id}: expected {layout}; missing "
                          f"{missing + ([] if (root / 'images').is_dir() else ['images/'])}. {_describe(root)}")
    folder_to_label = json.loads((m / "folder_to_objectnet_label.json").read_text())
    on_to_in = json.loads((m / "objectnet_to_imagenet_1k.json").read_text())
    pt_to_line = json.loads((m / "pytorch_to_imagenet_2012_id.json").read_text())
    lines = [ln.strip() for ln in (m / "imagenet_to_label_2012_v2").read_text().splitlines()]
    line_to_pt = {int(line): int(pt) for pt, line in pt_to_line.items()}
    name_to_pt = {name: line_to_pt[i] for i, name in enumerate(lines) if i in line_to_pt}
    on_classes = sorted(on_to_in)
    label_map = []
    for c in on_classes:
        names = [n.strip() for n in on_to_in[c].split(";") if n.strip()]
        unknown = [n for n in names if n not in name_to_pt]
        if unknown:
            raise LayoutError(f"{dataset_id}: objectnet_to_imagenet_1k.json maps {c!r} to "
                              f"{unknown}, not found in mappings/imagenet_to_label_2012_v2.")
        label_map.append(sorted(name_to_pt[n] for n in names))
    cls_index = {c: k for k, c in enumerate(on_classes)}
    files, targets, folders = [], [], []
    for folder in _subdirs(root / "images"):
        label = folder_to_label.get(folder)
        if label not in cls_index:  # one of ObjectNet's classes without an ImageNet counterpart
            continue
        imgs = _list_images(root / "images" / folder)
        files += imgs
        targets += [cls_index[label]] * len(imgs)
        folders += [folder] * len(imgs)
    meta = pd.DataFrame({"id": [_sample_id(f, root) for f in files], "folder": folders})
    subset = sorted({i for cols in label_map for i in cols})
    return FolderSpec(dataset_id, root, files, targets, label_space="imagenet-1k",
                      classes=imagenet_classnames(), label_subset=subset, layout=layout,
                      crop=OBJECTNET_BORDER, meta=meta, target_space=f"objectnet-{len(on_classes)}",
                      label_map=label_map, extra_manifest={"objectnet_classes": on_classes})


@register("imagenet:o", folders=("imagenet-o",), description="ImageNet-O (OOD, 2,000)",
          kind="ood", label_space="imagenet-1k",
          layout="<root>/<wnid>/*.jpg (all samples are OOD: target -1)",
          get="wget https://people.eecs.berkeley.edu/~hendrycks/imagenet-o.tar && tar -xf imagenet-o.tar -C DATA_ROOT")
def _imagenet_o(dataset_id: str, root: Path) -> FolderSpec:
    import pandas as pd

    layout = layout_of(dataset_id)
    files, wn = _wnid_folders(dataset_id, root, None, layout)
    meta = pd.DataFrame({"id": [_sample_id(f, root) for f in files],
                         "nearest_class": wn})
    return FolderSpec(dataset_id, root, files, [-1] * len(files), label_space="imagenet-1k",
                      classes=imagenet_classnames(), layout=layout, meta=meta)


def _ood_images(dataset_id: str, root: Path) -> FolderSpec:
    import pandas as pd

    layout = layout_of(dataset_id)
    img_dir = root / "images"
    if img_dir.is_dir():
        files = _list_images(img_dir)
    else:
        files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise LayoutError(f"{dataset_id}: expected {layout}; found neither. {_describe(root)}")
    rel = [f.relative_to(root) for f in files]
    meta = pd.DataFrame({"id": [_sample_id(f, root) for f in files],
                         "subclass": [r.parts[1] if len(r.parts) > 2 else "" for r in rel]})
    return FolderSpec(dataset_id, root, files, [-1] * len(files), label_space="imagenet-1k",
                      classes=imagenet_classnames(), layout=layout, meta=meta)


#: the curated OOD sets of MCM (Huang & Li 2021's iNaturalist, SUN, Places; DTD)
_MOS = "http://pages.cs.wisc.edu/~huangrui/imagenet_ood_dataset/"
for _id, _folders, _desc, _get in (
        ("ood:inaturalist", ("iNaturalist",), "iNaturalist OOD subset of Huang & Li 2021 (10,000)",
         f"wget {_MOS}iNaturalist.tar.gz && tar -xzf iNaturalist.tar.gz -C DATA_ROOT"),
        ("ood:sun", ("SUN",), "SUN OOD subset of Huang & Li 2021 (10,000)",
         f"wget {_MOS}SUN.tar.gz && tar -xzf SUN.tar.gz -C DATA_ROOT"),
        ("ood:places", ("Places",), "Places OOD subset of Huang & Li 2021 (10,000)",
         f"wget {_MOS}Places.tar.gz && tar -xzf Places.tar.gz -C DATA_ROOT"),
        ("ood:textures", ("dtd", "Textures"), "Describable Textures (5,640)",
         "wget https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz && "
         "tar -xzf dtd-r1.0.1.tar.gz -C DATA_ROOT")):
    register(_id, folders=_folders, description=_desc, kind="ood", label_space="imagenet-1k",
             layout="<root>/images/**/*.jpg, or *.jpg directly in <root> (all samples are OOD: target -1)",
             get=_get)(_ood_images)




@register("ood:ninco", folders=("NINCO/NINCO_OOD_classes", "NINCO_OOD_classes", "NINCO"),
          description="NINCO, 64 OOD classes without ImageNet-1k objects (Bitterwolf et al. 2023, 5,879)",
          kind="ood", label_space="imagenet-1k",
          layout="<root>/<NINCO class>/*.jpg (the release's NINCO_OOD_classes folder)",
          get="wget https://zenodo.org/record/8013288/files/NINCO_all.tar.gz && tar -xzf NINCO_all.tar.gz -C DATA_ROOT")
def _ninco(dataset_id: str, root: Path) -> FolderSpec:
    """NINCO's OOD classes: ``<root>/<class>/*.jpg`` (the release's ``NINCO_OOD_classes``
    folder); every sample is OOD (target -1) and ``meta.subclass`` names its NINCO class."""
    import pandas as pd

    layout = layout_of(dataset_id)
    subs = _subdirs(root)
    files = [f for s in subs for f in _list_images(root / s)]
    if not files:
        raise LayoutError(f"{dataset_id}: expected {layout}; found no images in class folders. "
                          f"{_describe(root)}")
    rel = [f.relative_to(root) for f in files]
    meta = pd.DataFrame({"id": [_sample_id(f, root) for f in files], "subclass": [r.parts[0] for r in rel]})
    return FolderSpec(dataset_id, root, files, [-1] * len(files), label_space="imagenet-1k",
                      classes=imagenet_classnames(), layout=layout, meta=meta)


@register("cue-conflict", folders=("cue-conflict", "style-transfer-preprocessed-512"),
          description="Geirhos et al. cue-conflict stimuli (1,280)", kind="cue-conflict",
          label_space="cue-conflict-16", annotations="cue-conflict",
          layout="<root>/<shape class>/<shape><n>-<texture><m>.png (16 class folders)",
          get=("git clone https://github.com/rgeirhos/texture-vs-shape && cp -r "
               "texture-vs-shape/stimuli/style-transfer-preprocessed-512 DATA_ROOT/cue-conflict"))
def _cue_conflict(dataset_id: str, root: Path) -> FolderSpec:
    import pandas as pd

    layout = layout_of(dataset_id)
    subs = _subdirs(root)
    bad = [s for s in subs if s not in CUE_CONFLICT_CLASSES]
    if not subs or bad:
        raise LayoutError(f"{dataset_id}: expected {layout} with folders from {list(CUE_CONFLICT_CLASSES)}; "
                          f"found {'no folders' if not subs else 'unexpected ' + str(bad[:5])}. {_describe(root)}")
    idx = {c: i for i, c in enumerate(CUE_CONFLICT_CLASSES)}
    files, rows = [], []
    for s in subs:
        for f in _list_images(root / s):
            try:  # the one parser of stimulus names (clipsafety.shape)
                shape, texture = parse_cue_conflict_name(f.name)
            except ValueError as e:
                raise LayoutError(f"{dataset_id}: {e}") from e
            files.append(f)
            rows.append({"id": _sample_id(f, root), "shape": shape,
                         "texture": texture, "texture_target": idx[texture],
                         "same_class": shape == texture})
    meta = pd.DataFrame(rows)
    return FolderSpec(dataset_id, root, files, [idx[r["shape"]] for r in rows],
                      label_space="cue-conflict-16", classes=list(CUE_CONFLICT_CLASSES), layout=layout,
                      meta=meta)


def _refuse_aliases(dataset_id: str, root: Path, files: list[Path], labels: list[str]) -> None:
    """A LayoutError when one image (its real path, symlinks resolved) is reached under two
    class folders: a class folder linked to the root or to another class would count its
    images again under another label."""
    first: dict[str, tuple[Path, str]] = {}
    clashes = []
    for f, lab in zip(files, labels):
        real = os.path.realpath(f)
        seen = first.setdefault(real, (f, lab))
        if seen[1] != lab:
            clashes.append(f"{seen[0]} (class {seen[1]!r}) and {f} (class {lab!r})")
    if clashes:
        raise LayoutError(
            f"{dataset_id}: {len(clashes)} image(s) are reachable under two class folders, e.g. "
            f"{'; '.join(clashes[:3])}: the same file (symlinks resolved) would count once per "
            "label. A class folder is probably a symlink to the root or to another class "
            f"folder. Remove the link (or the copy) so that each image sits under one class "
            f"folder of {root}.")


def user_folder(dataset_id: str, root: Path) -> FolderSpec:
    """``folder:PATH``: class folders named by ImageNet wnids (label space ``imagenet-1k``,
    subset = those classes) or by plain class names (label space ``folder-<hash>``).

    Refused with a :class:`LayoutError`: no or empty class folders; an image reachable under
    two class folders (a symlinked class folder, real paths compared); plain class names that
    are the same once case and ``_`` vs space are ignored (``cat``/``Cat``,
    ``ice_cream``/``ice cream``: a zero-shot head would get two identical columns); fewer
    than two plain-named classes (a one-column head is right on every image). Unreadable
    files are kept and skipped at inference (:class:`BadImage`)."""
    layout = "<PATH>/<class name or ImageNet wnid>/*.jpg"
    if not str(dataset_id).split(":", 1)[-1].strip():
        raise LayoutError(f"{dataset_id!r}: no path after 'folder:'; expected folder:PATH with "
                          f"{layout}, e.g. folder:/data/my-classes.")
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is a file, not a folder"
        raise LayoutError(f"{dataset_id}: {root} {what}; expected a folder laid out as {layout}. "
                          "Check the path after 'folder:'.")
    subs = _subdirs(root)
    if not subs:
        raise LayoutError(f"{dataset_id}: expected {layout}; found no class folders. {_describe(root)}")
    empty = [s for s in subs if not _list_images(root / s)]
    if empty:
        raise LayoutError(f"{dataset_id}: class folder(s) {empty[:5]} under {root} hold no images "
                          f"(extensions {sorted(IMAGE_EXTS)}); an empty folder would still be a "
                          "class of the label space. Add images to them or remove them.")
    w2i = wnid_to_index()
    if all(s in w2i for s in subs):
        files, targets = _wnid_folders(dataset_id, root, None, layout)
        labels = [imagenet_synsets()[t] for t in targets]
        _refuse_aliases(dataset_id, root, files, labels)
        # one WordNet-id class is scored in all 1000 classes: restricted to its own column,
        # top-1 would be 1.0 whatever the model
        return FolderSpec(dataset_id, root, files, targets, label_space="imagenet-1k",
                          classes=imagenet_classnames(),
                          label_subset=[w2i[s] for s in subs] if len(subs) > 1 else None,
                          layout=layout)
    if len(subs) < 2:
        raise LayoutError(
            f"{dataset_id}: {root} has one class folder ({subs[0]!r}); a dataset of plain class "
            "names needs at least two classes: a head over one name predicts it for every "
            "image, so top-1 would be 1.0 whatever the model. Add the other classes' folders "
            "(or name the folder by its ImageNet WordNet id to score it in ImageNet's 1000 classes).")
    groups: dict[str, list[str]] = {}
    for s in subs:
        groups.setdefault(normalized_classname(s), []).append(s)
    same = [g for g in groups.values() if len(g) > 1]
    if same:
        raise LayoutError(
            f"{dataset_id}: class folders {' and '.join(repr(x) for x in same[0])}"
            f"{f' (and {len(same) - 1} more group(s): {same[1:4]})' if len(same) > 1 else ''} under "
            f"{root} are the same class name once case and '_' vs space are ignored "
            f"({normalized_classname(same[0][0])!r}): a zero-shot head built from the names would have two "
            "identical columns. Merge them into one folder or rename one.")
    names = [s.replace("_", " ") for s in subs]
    space = "folder-" + hashlib.sha256(json.dumps(names).encode()).hexdigest()[:8]
    files, targets = [], []
    for k, s in enumerate(subs):
        imgs = _list_images(root / s)
        files += imgs
        targets += [k] * len(imgs)
    _refuse_aliases(dataset_id, root, files, [subs[t] for t in targets])
    return FolderSpec(dataset_id, root, files, targets, label_space=space, classes=names, layout=layout)
