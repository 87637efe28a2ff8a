"""The zoo's models: weights files, modules, zero-shot heads, :func:`load` and
:func:`predict_arrays`; the package :mod:`clipsafety.zoo` re-exports them and documents them
(kinds, the template-set table, preprocessing).

They live in this submodule so that the package's other modules import them from here, never
from the package: :mod:`clipsafety.zoo.reference` (which the package imports on first use of
its scorers) builds its scorers from this module, so there is no import circle.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from clipsafety.external import sha256_file as _sha256
from clipsafety.files import REPO_ROOT

ZOO_DIR = REPO_ROOT / "data" / "zoo"
MEAN, STD, RESOLUTION = 0.5, 0.25, 32


def zoo_dir() -> Path:
    """``data/zoo`` of this checkout, or the directory named by ``CLIPSAFETY_ZOO``."""
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


array_transform.elementwise = True  # per image: predict may transform a whole set at once


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


#: the chapters' (real CLIP) template-set names -> the world's set used in their place
TEMPLATE_ALIASES = {"openai": "default"}


def template_sets() -> list[str]:
    """The template-set names a zoo CLIP accepts: the world's sets and :data:`TEMPLATE_ALIASES`."""
    from clipsafety.synth import TEMPLATES

    return [*TEMPLATES, *(a for a in TEMPLATE_ALIASES if a not in TEMPLATES)]


def resolve_templates(templates="openai", model_id: str = "zoo model") -> tuple[list[str], str]:
    """``(templates, name)`` of a zoo CLIP head; the mapping is the table in
    :mod:`clipsafety.zoo`'s docstring.

    ``name`` is the world's set name (``"openai"`` -> ``"default"``), ``"custom"`` for a list
    or ``"file:<name>"`` for a file: what the manifest records. Raises
    :class:`clipsafety.heads.TemplateSetError` for a set the zoo cannot use, naming
    ``model_id``, the set asked for and the valid sets.
    """
    import os

    from clipsafety.heads import TemplateSetError
    from clipsafety.synth import TEMPLATES

    valid = template_sets()
    if isinstance(templates, (str, os.PathLike)):
        key = TEMPLATE_ALIASES.get(str(templates), str(templates))
        if key in TEMPLATES:
            return list(TEMPLATES[key]), key
        path = Path(templates).expanduser()
        if not path.is_file():
            raise TemplateSetError(
                f"{model_id}: template set {str(templates)!r} is not one the zoo world has; "
                f"valid sets: {valid} (\"openai\" means the world's \"default\"), a list of "
                "strings with one '{}', or a text file with one template per line.")
        out, name = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()], f"file:{path.name}"
    else:
        out, name = [str(t) for t in templates], "custom"
    bad = [t for t in out if t.count("{}") != 1]
    if not out or bad:
        raise TemplateSetError(
            f"{model_id}: each template must contain exactly one '{{}}' for the category name; "
            f"got {bad[:3] or out}. Valid named sets: {valid}.")
    return out, name


def zero_shot_head(clip_model, templates="default", classes=None):
    """``[D, C]`` zero-shot weights via ``open_clip.build_zero_shot_classifier``
    (``templates``: see :func:`resolve_templates`)."""
    import open_clip
    import torch

    from clipsafety.synth import CATEGORIES, WordTokenizer

    if isinstance(templates, str):
        templates, _ = resolve_templates(templates)
    tok = WordTokenizer(clip_model.context_length if hasattr(clip_model, "context_length") else 16)
    with torch.no_grad():
        return open_clip.build_zero_shot_classifier(
            clip_model, tok, list(classes or CATEGORIES), list(templates), num_classes_per_batch=None)


class UnknownZooModel(ValueError, KeyError):
    """A zoo id that names no weights file of the zoo (a ``KeyError`` too, as before)."""

    __str__ = BaseException.__str__


def weights_path(zoo_id: str) -> Path:
    """``<zoo>/weights/<zoo_id>.safetensors``. A zoo id is a file name in that folder and
    nothing else: an id with a path separator, a NUL, a leading ``.`` or ``~`` (``../x``,
    ``/abs/path``) is refused with :class:`UnknownZooModel`, so no id reaches a file outside
    the zoo's weights."""
    wdir = zoo_dir() / "weights"
    if (not isinstance(zoo_id, str) or not zoo_id.strip() or zoo_id.startswith((".", "~"))
            or any(c in zoo_id for c in ("/", "\\", "\0", os.sep))):
        raise UnknownZooModel(
            f"zoo:{zoo_id}: not a zoo id; a zoo id is the name of a weights file in {wdir} "
            "(e.g. zoo:clip-resnet-wit-10k), without folders, '..' or a leading '.' or '~'. "
            "List the zoo's ids with clipsafety.zoo.list_zoo() or `python -m clipsafety models "
            "--catalog zoo`; for a weights file elsewhere use a timm: or openclip: id with "
            "@/path/to/checkpoint.")
    path = wdir / f"{zoo_id}.safetensors"
    if os.path.dirname(os.path.normpath(path)) != os.path.normpath(wdir):  # belt and braces
        raise UnknownZooModel(f"zoo:{zoo_id}: resolves outside the zoo's weights folder {wdir}.")
    return path


@lru_cache(maxsize=128)
def _read(zoo_id: str):
    from safetensors import safe_open

    path = weights_path(zoo_id)
    if not path.exists():
        known = sorted(p.stem for p in (zoo_dir() / "weights").glob("*.safetensors"))
        raise UnknownZooModel(f"zoo model {zoo_id!r} not found at {path}; known ids: {known[:60]} "
                              "(run `make zoo` to train the zoo)")
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["clipsafety"])
        state = {k: f.get_tensor(k) for k in f.keys()}
    return state, meta, _sha256(path)


_HEADS: dict[str, object] = {}


def _cached_head(key: str | None, build):
    """The zero-shot head ``build()`` makes, cached under ``key`` in memory and on disk
    (``$CLIPSAFETY_CACHE/zoo-heads``, default ``~/.cache/clipsafety``): building it encodes every
    template with every class name, the cost of a warm read of a zoo CLIP's records."""
    if key is None:
        return build()
    if key in _HEADS:
        return _HEADS[key]
    import os

    import torch
    from safetensors.torch import load_file, save_file

    from clipsafety.files import atomic_write

    path = Path(os.environ.get("CLIPSAFETY_CACHE", "~/.cache/clipsafety")).expanduser() / "zoo-heads" / f"{key}.safetensors"
    W = None
    if path.is_file():
        try:
            W = load_file(str(path))["weights"]
        except Exception:  # a damaged cache file: rebuild and replace it
            W = None
    if W is None:
        W = build()
        try:
            atomic_write(path, lambda tmp: save_file({"weights": W.detach().to(torch.float32).contiguous()},
                                                     str(tmp)), suffix=".safetensors")
        except OSError:  # a read-only cache is no error: the head is rebuilt next time
            pass
    _HEADS[key] = W
    return W


def _visual_tower(cfg: dict):
    """The image tower of an open_clip config alone (``CLIP.__init__``'s own
    ``_build_vision_tower`` call), without the text tower a zoo model's head does not need
    once the head is built."""
    from open_clip.model import _build_vision_tower

    return _build_vision_tower(cfg["embed_dim"], cfg["vision_cfg"], cfg.get("quick_gelu", False))


def build_module(meta: dict, state: dict | None = None, templates="default", classes=None,
                 head_key: str | None = None):
    """The ``nn.Module`` for a weights file's metadata (and state, if given). ``head_key``:
    the cache key of a zero-shot CLIP's head (weights, templates and class names).

    With a state, a CLIP's text tower is built only when its zero-shot head is not cached
    (the head is what it is for); fine-tuned CLIPs never build it. The image tower is built
    as ``open_clip.CLIP`` builds it and loaded with the same weights, so the logits are the
    same. (Building on the meta device to skip the random initialisation was measured slower
    for the zoo's tiny towers, 7-19 ms against 2-3 ms: ``bench/bench_store.py``.)"""
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
    cfg = meta["clip_config"]
    if st is None:  # training builds the whole CLIP, randomly initialised
        clip = build_clip(cfg)
        if kind == "clip":
            clip.eval()
            W = _cached_head(head_key, lambda: zero_shot_head(clip, templates, classes))
            scale = float(clip.logit_scale.detach().exp())
            return ZeroShotCLIP(clip.visual, W, scale).eval(), scale
        return FineTunedCLIP(clip.visual, meta["n_classes"], cfg["embed_dim"]).eval(), None
    if kind == "clip":
        built = {}

        def head():  # only on a head-cache miss: the text tower encodes the templates
            clip = build_clip(cfg)
            clip.load_state_dict(st)
            built["clip"] = clip.eval()
            return zero_shot_head(clip, templates, classes)

        W = _cached_head(head_key, head)
        if "clip" in built:
            visual = built["clip"].visual
        else:
            visual = _visual_tower(cfg)
            visual.load_state_dict({k[len("visual."):]: v for k, v in st.items()
                                    if k.startswith("visual.")})
        scale = float(st["logit_scale"].exp())  # the CLIP's logit_scale parameter, as loaded
        return ZeroShotCLIP(visual.eval(), W, scale).eval(), scale
    m = FineTunedCLIP(_visual_tower(cfg), meta["n_classes"], cfg["embed_dim"])
    m.load_state_dict(st)
    return m.eval(), None


@lru_cache(maxsize=256)
def _header(zoo_id: str, stat: tuple):
    """``(meta, sha256, logit scale or None)`` of a weights file, without reading its other
    tensors (``stat``: the file's identity, so a rewritten file is read again)."""
    import torch
    from safetensors import safe_open

    from clipsafety.files import content_digest

    path = weights_path(zoo_id)
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["clipsafety"])
        scale = (float(f.get_tensor("logit_scale").to(torch.float32).exp())
                 if "logit_scale" in f.keys() else None)
    return meta, content_digest(path), scale


def _describe(zoo_id: str, templates, classnames, meta: dict, sha: str, scale):
    """``(manifest, policy, label space, class names, templates, head key)`` of a zoo model:
    all :func:`load` records about it, from its weights file's metadata and digest."""
    import open_clip

    from clipsafety.synth import CATEGORIES, VOCAB

    tl, tname = resolve_templates(templates, f"zoo:{zoo_id}")
    names = list(CATEGORIES) if classnames in (None, "synth") else [str(c) for c in classnames]
    extended = names != list(CATEGORIES)
    if extended and names[:len(CATEGORIES)] != list(CATEGORIES):
        raise ValueError(f"zoo:{zoo_id}: classnames={classnames!r} is not the zoo's label space; "
                         f"zoo models classify the world's {len(CATEGORIES)} categories {list(CATEGORIES)} "
                         "(pass classnames=None or 'synth'); a zero-shot CLIP also accepts those "
                         "categories followed by extra words (e.g. negative labels).")
    if extended and meta["kind"] != "clip":
        raise ValueError(f"zoo:{zoo_id}: extra class names need a zero-shot CLIP (kind 'clip'); "
                         f"this model is a {meta['kind']!r} classifier with a trained head.")
    head_key = hashlib.sha256(json.dumps([sha, list(tl), names, VOCAB, open_clip.__version__])
                              .encode()).hexdigest()[:32]
    label_space = "synth"
    if meta["kind"] == "clip":
        head = {"kind": "zero-shot", "templates": tname,
                "template_hash": hashlib.sha256("\n".join(tl).encode()).hexdigest()[:16]}
        if extended:
            digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:8]
            label_space = f"synth+{len(names) - len(CATEGORIES)}-{digest}"
            head["classes_hash"] = digest
        policy = {"kind": "clip", "scale": scale, "bias": None}
    else:
        head = {"kind": "trained"}
        policy = {"kind": "classifier"}
    manifest = {"model_id": f"zoo:{zoo_id}", "weights_sha256": sha, "kind": meta["kind"],
                "arch": meta["arch"], "head": head, "logit_policy": policy,
                "preprocess": {"resolution": RESOLUTION, "mean": MEAN, "std": STD}}
    return manifest, policy, label_space, names, tl, head_key


def describe(zoo_id: str, templates="openai", classnames=None):
    """A :class:`~clipsafety.records.LoadedModel` without its module (``module=None``): the
    manifest, classes, label space and logit policy :func:`load` gives, read from the weights
    file's header, its digest and its logit scale alone. :func:`clipsafety.predict` computes
    the store key from it, so a stored record is read without building the model."""
    from clipsafety.records import LoadedModel

    zoo_id = zoo_id.removeprefix("zoo:")
    path = weights_path(zoo_id)
    try:
        st = path.stat()
    except FileNotFoundError:
        _read(zoo_id)  # raises UnknownZooModel with the known ids
        raise
    meta, sha, scale = _header(zoo_id, (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    manifest, policy, label_space, names, _, _ = _describe(zoo_id, templates, classnames, meta,
                                                           sha, scale)
    return LoadedModel(model_id=f"zoo:{zoo_id}", module=None, transform=pil_transform(),
                       classes=names, logit_policy=policy, manifest=manifest,
                       label_space=label_space,
                       extra={"array_transform": array_transform, "meta": meta})


def load(zoo_id: str, device: str = "cpu", templates="openai", classnames=None):
    """A :class:`~clipsafety.records.LoadedModel` for ``zoo:<id>`` (prefix optional).

    ``templates`` builds the head of a zero-shot CLIP (:mod:`clipsafety.zoo`'s table:
    ``"openai"`` and ``"default"`` are the world's default set); other kinds check it and
    ignore it. ``classnames``: ``None``, ``"synth"`` or the world's categories in order; a
    zero-shot CLIP also takes the categories followed by extra words (its head then scores
    those too, label space ``synth+<n>-<hash>``: the negative labels of the OOD chapter).
    """
    from clipsafety.records import LoadedModel

    zoo_id = zoo_id.removeprefix("zoo:")
    resolve_templates(templates, f"zoo:{zoo_id}")  # a bad set is named before any file is read
    state, meta, sha = _read(zoo_id)
    manifest, policy, label_space, names, tl, head_key = _describe(
        zoo_id, templates, classnames, meta, sha, None)
    module, scale = build_module(meta, state, tl, classes=names, head_key=head_key)
    module = module.to(device)
    if meta["kind"] == "clip":
        policy["scale"] = scale
    return LoadedModel(model_id=f"zoo:{zoo_id}", module=module, transform=pil_transform(),
                       classes=names, logit_policy=policy, manifest=manifest,
                       label_space=label_space,
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

