"""Dataset ids of the synthetic world (``synth:<name>``) as :class:`DatasetSpec` objects.

Every set is ``(WorldConfig, n, seed)`` plus an optional post-processing step (corruptions,
cue-conflict texture swap, the adversarial filter). Sample ids are ``<name>/<index>``.
Images are rendered lazily on first use and kept in memory; :meth:`SynthDataset.arrays` is
the fast batched path (``uint8 [N, H, W, 3]``, targets, ids).

The sets are declared as data: :data:`SYNTH_SETS` holds one :class:`SynthSet` row per set
(id, builder, parameters, description, kind, whether the zoo evaluates on it, annotation
kind). :func:`get_dataset`, :func:`list_datasets`, :data:`DESCRIPTIONS`, :func:`eval_sets`,
:func:`select_sets`, :data:`SHIFTS` and :data:`OOD_SETS` all read that table, and so does
the registry of :mod:`clipsafety.datasets`; a new synthetic set is one row.

The A-like set (``shift-adversarial``) keeps the candidates a reference model misclassifies.
This package never loads a model: by default the kept candidate positions come from
``data/synth/shift-adversarial.json`` (written by ``python -m clipsafety.zoo.reference``,
which records the reference model and its weights hash); a caller with another reference
or size passes ``reference=`` (a callable from images to class scores, e.g.
:func:`clipsafety.zoo.reference_scorer`).

Curated subsets of a pool are datasets too: ``<pool>@<filters>`` (e.g.
``train-raw-100k@dedup+balanced``) is a :class:`CuratedDataset` (:func:`curated_dataset`),
the pool's rows kept by the filters of :mod:`clipsafety.synth.curation`; :func:`raw_pool`
gives the raw pool at a size. This module imports the filters; they never import it.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from clipsafety.records import DatasetSpec
from clipsafety.synth import sources as S
from clipsafety.synth.curation import POOL, Curated, curate
from clipsafety.synth.world import (
    CATEGORIES,
    GENERATOR_VERSION,
    LEAF_CATEGORIES,
    NOVEL_CATEGORIES,
    PATTERNS,
    factor_flags,
    render,
)

SIZE = 32
CORRUPTIONS = ["gaussian_noise", "blur", "contrast", "pixelate"]


def _seed(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


class SynthDataset(DatasetSpec):
    """One synthetic set; see the module notes. ``targets`` are category indices, -1 for OOD.

    ``annotations`` is ``"synth-factors"`` when :meth:`meta` carries ImageNet-X's 16 factor
    columns describing the pictures, ``"cue-conflict"`` for the cue-conflict set (its
    ``shape``/``texture`` columns name the two cues' classes), ``None`` otherwise; the table
    row of a set says which (:data:`SYNTH_SETS`)."""

    label_space = "synth"
    annotations: str | None = "synth-factors"

    def __init__(self, name: str, cfg: S.WorldConfig, n: int, seed: int | None = None,
                 post: Callable | None = None, post_desc: dict | None = None,
                 label_subset: list[int] | None = None, ood: bool = False, size: int = SIZE,
                 attr_fn: Callable | None = None):
        self.name = name
        self.dataset_id = f"synth:{name}"
        self.cfg = cfg
        self.n = int(n)
        self.seed = _seed(name) if seed is None else int(seed)
        self.post = post
        self.post_desc = post_desc or {}
        self.label_subset = label_subset
        self.ood = ood
        self.size = size
        self.attr_fn = attr_fn
        self.classes = list(CATEGORIES)
        self._attrs = None
        self._images = None

    @property
    def target_space(self) -> str:
        """The space the targets index: the label space (``"synth"``)."""
        return self.label_space

    # -- data
    def attributes(self) -> pd.DataFrame:
        """The attribute table (one row per sample; cached)."""
        if self._attrs is None:
            a = S.sample_attributes(self.cfg, self.n, self.seed)
            if self.attr_fn is not None:
                a = self.attr_fn(a, np.random.default_rng(self.seed + 1))
            self._attrs = a.reset_index(drop=True)
        return self._attrs

    def images(self) -> np.ndarray:
        if self._images is None:
            a = self.attributes()
            chunks = [render(a.iloc[i:i + 2048], self.size) for i in range(0, len(a), 2048)]
            img = np.concatenate(chunks) if chunks else np.zeros((0, self.size, self.size, 3), np.uint8)
            if self.post is not None:
                img = self.post(img, a)
            self._images = img
        return self._images

    @property
    def targets(self) -> np.ndarray:
        if self.ood:
            return np.full(self.n, -1, np.int64)
        return self.attributes()["category"].to_numpy().astype(np.int64)

    @property
    def ids(self) -> np.ndarray:
        return np.array([f"{self.name}/{i}" for i in range(self.n)])

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(uint8 [N, H, W, 3], int64 targets [N], str ids [N])``: the batched fast path."""
        return self.images(), self.targets, self.ids

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        from PIL import Image

        if not -self.n <= i < self.n:
            raise IndexError(f"{self.dataset_id} has {self.n} samples; index {i} is out of range")
        i = i % self.n
        return Image.fromarray(self.images()[i], "RGB"), int(self.targets[i]), f"{self.name}/{i}"

    def meta(self) -> pd.DataFrame:
        """``id``, ``file_name`` (= id), ImageNet-X's 16 factors (0/1), then the raw attributes
        (``attr_pattern`` is the fill pattern id; cue-conflict adds ``shape``/``texture`` names)."""
        a = self.attributes()
        ids = self.ids
        out = pd.concat([pd.DataFrame({"id": ids, "file_name": ids}), factor_flags(a)], axis=1)
        # raw attributes whose names are factor names (``pattern``) are kept as ``attr_<name>``
        extra = a.rename(columns={c: f"attr_{c}" for c in a.columns if c in out.columns})
        out = pd.concat([out, extra], axis=1)
        if "texture_class" in a:
            # cue-conflict: ``shape`` and ``texture`` hold the class names of the two cues (as
            # in the real stimuli's tables), replacing ImageNet-X's factor columns of the same
            # names, which the cue-conflict set does not use; indices in *_class columns.
            names = np.array(CATEGORIES)
            out["shape_class"] = a["category"].to_numpy()
            out["shape"] = names[a["category"].to_numpy()]
            out["texture"] = names[a["texture_class"].to_numpy()]
            out["same_class"] = out["shape"] == out["texture"]
        return out

    def manifest(self) -> dict:
        return {
            "dataset_id": self.dataset_id, "generator_version": GENERATOR_VERSION,
            "config": self.cfg.to_dict(), "n": self.n, "seed": self.seed, "size": self.size,
            "post": self.post_desc, "label_space": self.label_space,
            "label_subset": self.label_subset, "ood": self.ood,
        }

    def captions(self) -> list[str]:
        """Training captions in the source's caption style (deterministic)."""
        from clipsafety.synth.text import captions

        c = self.cfg
        return captions(self.attributes(), c.caption_style, c.p_class_word, c.p_attr_word,
                        c.p_misaligned, c.n_filler, self.seed + 2)

    def __repr__(self) -> str:
        return f"SynthDataset({self.dataset_id!r}, n={self.n})"


# ------------------------------------------------------------------ post-processing
def corrupt(images: np.ndarray, kinds: np.ndarray, severity: int, seed: int) -> np.ndarray:
    """C-like corruptions at ``severity`` 1..5: gaussian noise, box blur, contrast, pixelate."""
    if not 1 <= severity <= 5:
        raise ValueError(f"corruption severity must be 1..5, got {severity}")
    rng = np.random.default_rng(seed)
    x = images.astype(np.float32) / 255.0
    out = x.copy()
    s = severity
    m = kinds == 0
    if m.any():
        out[m] = x[m] + rng.standard_normal(x[m].shape).astype(np.float32) * [0.06, 0.1, 0.15, 0.22, 0.3][s - 1]
    m = kinds == 1
    if m.any():
        k = [1, 1, 2, 2, 3][s - 1]
        p = np.pad(x[m], ((0, 0), (k, k), (k, k), (0, 0)), mode="edge")
        acc = np.zeros_like(x[m])
        H = x.shape[1]
        for dy in range(2 * k + 1):
            for dx in range(2 * k + 1):
                acc += p[:, dy:dy + H, dx:dx + H]
        out[m] = acc / (2 * k + 1) ** 2
        if s in (2, 4):  # intermediate severities: a second pass of the same blur
            q = np.pad(out[m], ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
            out[m] = sum(q[:, a:a + H, b:b + H] for a in range(3) for b in range(3)) / 9.0
    m = kinds == 2
    if m.any():
        c = [0.6, 0.45, 0.3, 0.2, 0.12][s - 1]
        mean = x[m].mean(axis=(1, 2, 3), keepdims=True)
        out[m] = (x[m] - mean) * c + mean
    m = kinds == 3
    if m.any():
        f = [2, 2, 4, 4, 8][s - 1]
        H = x.shape[1]
        small = x[m].reshape(-1, H // f, f, H // f, f, 3).mean(axis=(2, 4))
        out[m] = np.repeat(np.repeat(small, f, axis=1), f, axis=2)
        if s in (2, 4):
            out[m] = out[m] + rng.standard_normal(out[m].shape).astype(np.float32) * 0.05
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def _noise_images(images: np.ndarray, attrs: pd.DataFrame, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n, H = images.shape[:2]
    kind = np.arange(n) % 3
    white = rng.random((n, H, H, 3))
    coarse = np.repeat(np.repeat(rng.random((n, H // 4, H // 4, 3)), 4, 1), 4, 2)
    gauss = np.clip(0.5 + 0.2 * rng.standard_normal((n, H, H, 3)), 0, 1)
    x = np.where((kind == 0)[:, None, None, None], white,
                 np.where((kind == 1)[:, None, None, None], coarse, gauss))
    return (x * 255 + 0.5).astype(np.uint8)


# ------------------------------------------------------------- configs and builders
def _canonical() -> S.WorldConfig:
    return S.LABELLED.replace(p_pose=0, p_small=0, p_large=0, p_partial=0, p_deform=0, p_grain=0,
                              background_probs=(1, 0, 0), style_probs=(1, 0, 0, 0), p_dark=0,
                              p_bright=0, p_occluder=0, p_person=0, p_multi=0)


def _cue_conflict_attrs(a: pd.DataFrame, rng) -> pd.DataFrame:
    a = a.copy()
    shape = a["category"].to_numpy()
    tex = (shape + rng.integers(1, 10, len(a))) % 10  # never the shape's own class
    a["texture_class"] = tex
    a["pattern"] = tex
    a["hue"] = np.mod(tex / 10.0 + rng.uniform(-0.03, 0.03, len(a)), 1.0)
    a["pattern_contrast"] = rng.uniform(0.75, 0.9, len(a))
    return a


def _leafy(a: pd.DataFrame, rng) -> pd.DataFrame:
    a = a.copy()
    a["hue"] = rng.uniform(0.05, 0.38, len(a))
    return a


def _harder(cfg: S.WorldConfig, k: float) -> S.WorldConfig:
    f = lambda p: min(0.9, p * k)  # noqa: E731
    return cfg.replace(p_pose=f(cfg.p_pose), p_small=f(cfg.p_small), p_large=f(cfg.p_large),
                       p_partial=f(cfg.p_partial), p_deform=f(cfg.p_deform),
                       p_grain=f(cfg.p_grain), p_dark=f(cfg.p_dark), p_bright=f(cfg.p_bright),
                       p_occluder=f(cfg.p_occluder), p_person=f(cfg.p_person),
                       p_multi=f(cfg.p_multi))


def _dedup_pool(a: pd.DataFrame, rng) -> pd.DataFrame:
    """Make 20% of the raw pool exact duplicates of earlier rows (for de-duplication)."""
    n = len(a)
    dup = np.flatnonzero(rng.random(n) < 0.2)
    dup = dup[dup > 0]
    src = (rng.random(len(dup)) * dup).astype(int)
    # ``src < dup``: resolve chains in ascending order so a copy of a copy holds the same
    # attributes as the row it names (``duplicate_of``); assigned per column (dtypes kept)
    root = np.arange(n)
    for d, s in zip(dup, src):
        root[d] = root[s]
    a = a.iloc[root].reset_index(drop=True)
    a["duplicate_of"] = -1
    a.loc[dup, "duplicate_of"] = src
    return a


def world(name: str, *, n: int, cfg: S.WorldConfig, seed: int | None = None,
          label_subset: list[int] | None = None, ood: bool = False, attr_fn: Callable | None = None,
          post: Callable | None = None, post_desc: dict | None = None) -> SynthDataset:
    """The plain builder: ``n`` samples of ``cfg`` (seed from the name unless given), with an
    optional attribute rewrite ``attr_fn(attrs, rng)`` and image step ``post(images, attrs)``."""
    return SynthDataset(name, cfg, n, seed=seed, post=post, post_desc=post_desc,
                        label_subset=label_subset, ood=ood, attr_fn=attr_fn)


def _corrupt_post(images: np.ndarray, attrs: pd.DataFrame, *, severity: int, seed: int) -> np.ndarray:
    return corrupt(images, np.arange(len(images)) % 4, severity, seed)


def corrupted(name: str, *, n: int, cfg: S.WorldConfig, severity, family: str) -> SynthDataset:
    """C-like set: the four corruptions in turn at ``severity``; named ``<family>-<severity>``,
    seeded from ``family`` (the same clean images at every severity)."""
    sev = int(severity)
    seed_base = _seed(family)
    post = partial(_corrupt_post, severity=sev, seed=seed_base + sev)
    return SynthDataset(f"{family}-{sev}", cfg, n, seed=seed_base, post=post,
                        post_desc={"corruptions": CORRUPTIONS, "severity": sev})


# --------------------------------------------------------- A-like: adversarial filter
#: committed kept candidate positions of ``synth:shift-adversarial`` (see the module notes)
DATA_DIR = Path(__file__).resolve().parents[3] / "data" / "synth"
ADVERSARIAL_KEPT = DATA_DIR / "shift-adversarial.json"
KEPT_GENERATOR = "python -m clipsafety.zoo.reference"


def _candidates(name: str, n: int, cfg: S.WorldConfig, factor: int) -> SynthDataset:
    return SynthDataset(f"{name}-candidates", cfg, factor * n)


def misclassified(images: np.ndarray, targets: np.ndarray, reference: Callable, n: int) -> np.ndarray:
    """Positions (ascending, at most ``n``) of the images ``reference`` misclassifies:
    ``reference(uint8 images [N, H, W, 3]) -> scores [N, C]``, prediction = argmax."""
    scores = np.asarray(reference(images))
    if scores.ndim != 2 or len(scores) != len(images):
        raise ValueError(f"reference must map {len(images)} images to scores [N, C]; got shape "
                         f"{scores.shape}")
    return np.flatnonzero(scores.argmax(1) != targets)[:n]


def adversarial_record(reference: Callable, name: str = "shift-adversarial") -> dict:
    """The content of a kept-ids file for the row ``name``: the candidates ``reference``
    misclassifies (``reference.model_id`` / ``.weights_sha256`` are recorded if present)."""
    row = synth_set(name)
    p = row.params
    cand = _candidates(name, p["n"], p["cfg"], p["factor"])
    imgs, tg, _ = cand.arrays()
    keep = misclassified(imgs, tg, reference, p["n"])
    return {"dataset": f"synth:{name}", "generator": KEPT_GENERATOR,
            "generator_version": GENERATOR_VERSION, "n": p["n"], "candidates": len(imgs),
            "candidates_sha256": hashlib.sha256(np.ascontiguousarray(imgs).tobytes()).hexdigest(),
            "reference": getattr(reference, "model_id", None),
            "reference_sha256": getattr(reference, "weights_sha256", None),
            "candidate_index": keep.tolist()}


def _committed_kept(name: str, n: int, imgs: np.ndarray, path: Path) -> dict:
    regen = (f"run `{KEPT_GENERATOR}` to recompute them from the zoo's reference model, or pass "
             "reference=clipsafety.zoo.reference_scorer()")
    if not Path(path).is_file():
        raise FileNotFoundError(f"synth:{name}: the kept candidate ids {path} are missing; {regen}")
    rec = json.loads(Path(path).read_text())
    want = {"dataset": f"synth:{name}", "generator_version": GENERATOR_VERSION, "n": n,
            "candidates": len(imgs)}
    bad = {k: rec.get(k) for k, v in want.items() if rec.get(k) != v}
    if bad:
        raise ValueError(f"synth:{name}: {path} holds kept ids for {bad}, expected {want}; {regen}")
    if hashlib.sha256(np.ascontiguousarray(imgs).tobytes()).hexdigest() != rec["candidates_sha256"]:
        raise ValueError(f"synth:{name}: the rendered candidates differ from those {path} was "
                         f"computed on (candidates_sha256); {regen}")
    return rec


def adversarial(name: str, *, n: int, cfg: S.WorldConfig, factor: int, kept: Path,
                reference: Callable | None = None) -> SynthDataset:
    """A-like set: ``factor * n`` candidates of ``cfg``, kept in order while the reference
    model errs on them (at most ``n``). ``reference=None`` reads the kept positions from
    ``kept`` (the committed file); else ``reference`` is called on the candidates
    (:func:`misclassified`)."""
    cand = _candidates(name, n, cfg, factor)
    imgs, tg, _ = cand.arrays()
    if reference is None:
        rec = _committed_kept(name, n, imgs, kept)
        keep = np.asarray(rec["candidate_index"], dtype=np.int64)
        ref, sha = rec["reference"], rec["reference_sha256"]
    elif isinstance(reference, str) or not callable(reference):
        raise TypeError(f"synth:{name}: reference must be a callable from images to class scores "
                        f"(e.g. clipsafety.zoo.reference_scorer({reference!r})), got {reference!r}; "
                        "clipsafety.datasets.get_dataset(..., reference='zoo:<id>') accepts an id")
    else:
        keep = misclassified(imgs, tg, reference, n)
        ref, sha = getattr(reference, "model_id", None), getattr(reference, "weights_sha256", None)
    a = cand.attributes().iloc[keep].reset_index(drop=True)
    ds = SynthDataset(name, cfg, len(keep), seed=cand.seed,
                      post_desc={"filter": "misclassified by reference", "reference": ref,
                                 "reference_sha256": sha, "candidates": factor * n})
    ds._attrs = a.assign(candidate_index=keep)
    ds._images = imgs[keep]
    return ds


@dataclass(frozen=True, eq=False)
class ReferenceScorer:
    """A reference model for :func:`adversarial`: ``scorer(images) -> scores [N, C]``.

    ``model_id`` and ``weights_sha256`` go into the dataset's manifest. Equal (and hashing
    alike) when both are equal, so a dataset built with it is cached per model weights."""

    model_id: str
    weights_sha256: str | None
    scores: Callable[[np.ndarray], np.ndarray] = field(repr=False)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.scores(images)

    def __eq__(self, other) -> bool:
        return (isinstance(other, ReferenceScorer) and other.model_id == self.model_id
                and other.weights_sha256 == self.weights_sha256)

    def __hash__(self) -> int:
        return hash((self.model_id, self.weights_sha256))


# ------------------------------------------------------------------ the table of sets
KINDS = ("id", "shift", "ood", "cue-conflict", "train")
ANNOTATIONS = ("synth-factors", "cue-conflict", None)


@dataclass(frozen=True, eq=False)
class SynthSet:
    """One row of :data:`SYNTH_SETS`.

    id: the name (dataset id ``synth:<id>``). builder: ``builder(id, **params)`` returns the
    :class:`SynthDataset`. params: the builder's keyword arguments (``n`` among them).
    description: one line for listings and the dataset card. kind: one of :data:`KINDS`.
    in_zoo_eval: the zoo evaluates every model on it (:func:`eval_sets`). annotations: what
    ``meta()`` annotates (``"synth-factors"``: ImageNet-X's 16 factor columns describe the
    pictures; ``"cue-conflict"``; ``None``). options: the keywords a caller may override in
    :func:`get_dataset`. variant_of: the set this one is a parameter variant of (listed, not
    on the dataset card).
    """

    id: str
    builder: Callable[..., SynthDataset]
    params: Mapping[str, Any]
    description: str
    kind: str
    in_zoo_eval: bool = False
    annotations: str | None = "synth-factors"
    options: tuple[str, ...] = ("n",)
    variant_of: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"synth set {self.id!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.annotations not in ANNOTATIONS:
            raise ValueError(f"synth set {self.id!r}: annotations {self.annotations!r} is not "
                             f"one of {ANNOTATIONS}")
        if "n" not in self.params:
            raise ValueError(f"synth set {self.id!r}: params must give the default size 'n'")
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))


EVAL_N = 2000
SHIFT_N = 1000
OOD_N = 1000
TRAIN_SIZES = {"10k": 10_000, "30k": 30_000, "100k": 100_000}
_L = S.LABELLED
_RENDITION = tuple(CATEGORIES[:8])
_OBJECTNET = ("square", "triangle", "star", "cross", "hexagon", "heart", "arrow")
_CORRUPT = dict(n=SHIFT_N, cfg=_L, family="shift-corrupt")

#: every synthetic set, one row each (order = the order of listings)
SYNTH_SETS: tuple[SynthSet, ...] = (
    SynthSet("id-test", world, dict(n=EVAL_N, cfg=_L),
             "fresh sample of the labelled (ImageNet-like) distribution", "id", True),
    SynthSet("shift-v2", world,
             dict(n=SHIFT_N, cfg=_harder(_L, 2.0).replace(
                 cue_strength=0.65, class_probs=tuple(np.linspace(2.0, 0.5, 10)))),
             "V2-like: a re-sample with a small prior shift (skewed class prior, weaker cue, "
             "twice the nuisance rates)", "shift", True),
    SynthSet("shift-sketch", world, dict(n=SHIFT_N, cfg=_L.replace(style_probs=(0, 1, 0, 0))),
             "Sketch-like: outline drawings on paper", "shift", True),
    SynthSet("shift-rendition", world,
             dict(n=SHIFT_N, cfg=_L.replace(style_probs=(0, 0, 0.4, 0.6), categories=_RENDITION,
                                           background_probs=(0.5, 0.3, 0.2)),
                  label_subset=list(range(8))),
             "R-like: paintings and silhouettes; 8-class label subset", "shift", True),
    SynthSet("shift-adversarial", adversarial,
             dict(n=SHIFT_N, cfg=_harder(S.A_LIKE_BASE, 1.6).replace(cue_strength=0.5), factor=10,
                  kept=ADVERSARIAL_KEPT),
             "A-like: hard samples kept only if the held-out reference model misclassifies them",
             "shift", True, options=("n", "reference")),
    SynthSet("shift-objectnet", world,
             dict(n=SHIFT_N, cfg=_L.replace(p_pose=0.9, background_probs=(0.0, 0.3, 0.7),
                                           p_partial=0.25, p_occluder=0.2, p_small=0.25,
                                           p_large=0.15, cue_strength=0.5, categories=_OBJECTNET,
                                           p_dark=0.15),
                  label_subset=sorted(CATEGORIES.index(c) for c in _OBJECTNET)),
             "ObjectNet-like: extreme poses, scene backgrounds, occlusion and partial views; "
             "7-class label subset", "shift", True),
    SynthSet("shift-stylized", world,
             dict(n=SHIFT_N, cfg=_L.replace(cue_strength=0.0, pattern_pool=(10, 11, 12, 13))),
             "Stylized-like: textures and colours replaced by non-characteristic ones", "shift",
             True),
    SynthSet("shift-corrupt", corrupted, dict(_CORRUPT, severity=3),
             "C-like: noise, blur, contrast and pixelation at a severity (kw severity, or "
             "shift-corrupt-<1..5>; default 3)", "shift", True, options=("n", "severity")),
    SynthSet("shift-occlusion", world,
             dict(n=SHIFT_N, cfg=_L.replace(p_occluder=0.6, p_person=0.4, p_partial=0.35,
                                           p_multi=0.3, background_probs=(0.3, 0.6, 0.1))),
             "occlusion: occluding bars, people in front, partial views, clutter", "shift", True),
    SynthSet("ood-near", world,
             dict(n=OOD_N, cfg=_L.replace(categories=tuple(NOVEL_CATEGORIES), cue_strength=0.0),
                  ood=True),
             "near-OOD: five novel shape categories with in-distribution nuisances", "ood"),
    SynthSet("ood-textures", world,
             dict(n=OOD_N, cfg=_L.replace(categories=("patch",), cue_strength=0.0,
                                         pattern_pool=tuple(range(len(PATTERNS)))), ood=True),
             "texture patches filling the frame, no object", "ood"),
    SynthSet("ood-scenes", world,
             dict(n=OOD_N, cfg=_L.replace(has_object=False, background_probs=(0, 0.4, 0.6)),
                  ood=True),
             "object-free scenes and clutter backgrounds", "ood"),
    SynthSet("ood-finegrained", world,
             dict(n=OOD_N, cfg=_L.replace(categories=tuple(LEAF_CATEGORIES), cue_strength=0.0,
                                         pattern_pool=(9, 13, 3)), ood=True, attr_fn=_leafy),
             "a novel fine-grained domain: leaf shapes", "ood"),
    # the pictures are noise: meta's factor columns describe the object the noise replaced
    SynthSet("ood-noise", world,
             dict(n=OOD_N, cfg=_L, ood=True, post=partial(_noise_images, seed=_seed("ood-noise")),
                  post_desc={"noise": True}),
             "noise images (white, coarse and gaussian)", "ood", annotations=None),
    SynthSet("cue-conflict", world, dict(n=1000, cfg=_canonical(), attr_fn=_cue_conflict_attrs),
             "shape of one category with the characteristic texture and colour of another "
             "(same-class pairs never drawn)", "cue-conflict", annotations="cue-conflict"),
    *(SynthSet(f"shift-corrupt-{s}", corrupted, dict(_CORRUPT, severity=s),
               f"C-like corruptions at severity {s}", "shift", options=("n", "severity"),
               variant_of="shift-corrupt") for s in range(1, 6)),
    *(SynthSet(f"train-{src}-{size}", world, dict(n=n, cfg=S.SOURCES[src]),
               f"training source {src} at {size} samples (targets = category; captions() in "
               "the source's style)", "train")
      for src in ("labelled", "wit", "laion", "narrow") for size, n in TRAIN_SIZES.items()),
    SynthSet("train-raw-100k", world,
             dict(n=TRAIN_SIZES["100k"], cfg=S.RAW_POOL, attr_fn=_dedup_pool),
             "raw pool for curation (LAION-like, noisier captions, 20% duplicates)", "train"),
)
_ROWS: dict[str, SynthSet] = {r.id: r for r in SYNTH_SETS}
if len(_ROWS) != len(SYNTH_SETS):
    raise ValueError("SYNTH_SETS has duplicate ids")

#: a curated subset of a pool, ``<pool>@<filters>`` (:func:`curated_dataset`; the filters of
#: :mod:`clipsafety.synth.curation`)
CURATED_PATTERN = "train-raw-100k@<filters>"
CURATED_DESCRIPTION = ("a curated subset of the raw pool: filters dedup, balanced (class word of "
                       "the caption), balanced-label, random-<n>, joined by '+' "
                       "(clipsafety.synth.curation)")
#: what each set is, for listings and the dataset card (read from :data:`SYNTH_SETS`)
DESCRIPTIONS: dict[str, str] = {**{r.id: r.description for r in SYNTH_SETS},
                                CURATED_PATTERN: CURATED_DESCRIPTION}


def synth_set(name: str) -> SynthSet:
    """The table row of ``synth:<name>`` (prefix optional)."""
    name = name.removeprefix("synth:")
    if name not in _ROWS:
        raise KeyError(f"unknown synthetic dataset {name!r}; expected one of {list(_ROWS)} "
                       "(the rows of clipsafety.synth.datasets.SYNTH_SETS)")
    return _ROWS[name]


def select_sets(kind: str | tuple[str, ...] | None = None, *, zoo_eval: bool | None = None,
                variants: bool = True) -> list[str]:
    """Names of the rows of :data:`SYNTH_SETS` (table order) of ``kind`` (one or a tuple),
    in the zoo's evaluation or not (``zoo_eval``), with or without parameter variants."""
    kinds = (kind,) if isinstance(kind, str) else kind
    return [r.id for r in SYNTH_SETS
            if (kinds is None or r.kind in kinds)
            and (zoo_eval is None or r.in_zoo_eval == zoo_eval)
            and (variants or r.variant_of is None)]


def eval_sets() -> list[str]:
    """The sets every zoo model is evaluated on (``in_zoo_eval`` rows: ID test + 8 shifts)."""
    return select_sets(zoo_eval=True)


def card_sets() -> list[str]:
    """The evaluation sets of the dataset card: every row but training sets and variants."""
    return select_sets(("id", "shift", "ood", "cue-conflict"), variants=False)


def list_datasets() -> list[str]:
    """All dataset names (without the ``synth:`` prefix), in table order."""
    return list(_ROWS)


#: the 8 test conditions used for the zoo's usefulness check
SHIFTS: list[str] = select_sets("shift", variants=False)
OOD_SETS: list[str] = select_sets("ood")


def _build(name: str, **kw) -> SynthDataset:
    if "@" in name:  # a curated subset of a pool: ``train-raw-100k@dedup+balanced``
        return curated_dataset(name, **kw)
    row = _ROWS.get(name)
    if row is None:
        raise KeyError(name)
    extra = sorted(set(kw) - set(row.options))
    if extra:
        raise TypeError(f"synth:{name} takes the keyword(s) {list(row.options)}; got {extra}")
    ds = row.builder(name, **{**row.params, **kw})
    ds.annotations = row.annotations
    return ds


@lru_cache(maxsize=64)
def _cached(name: str, kw_items: tuple) -> SynthDataset:
    return _build(name, **dict(kw_items))


def get_dataset(name: str, **kw) -> SynthDataset:
    """The :class:`DatasetSpec` of ``synth:<name>`` (the prefix is optional; cached per kw).

    ``kw`` overrides the row's parameters named in its ``options`` (``n`` for every set,
    ``severity`` for the C-like sets, ``reference`` for the A-like set)."""
    if name.startswith("synth:"):
        name = name[len("synth:"):]
    try:
        return _cached(name, tuple(sorted(kw.items())))
    except KeyError:
        raise KeyError(
            f"unknown synthetic dataset {name!r}; expected one of {list_datasets()} "
            f"or <pool>@<filters> (see clipsafety.synth.DESCRIPTIONS)") from None


# ------------------------------------------------------------ curated subsets of a pool
class CuratedDataset(SynthDataset):
    """A curated subset of a pool, ``<pool>@<spec>``: the pool's rows at the kept positions
    of ``curated`` (a :class:`~clipsafety.synth.curation.Curated`); sample ids, captions and
    images are the pool's."""

    def __init__(self, name: str, pool: SynthDataset, curated: Curated):
        super().__init__(name, pool.cfg, len(curated), seed=pool.seed, size=pool.size)
        self.pool = pool
        self.curated = curated

    def attributes(self):
        if self._attrs is None:
            self._attrs = self.pool.attributes().iloc[self.curated.indices].reset_index(drop=True)
        return self._attrs

    def images(self):
        if self._images is None:
            self._images = self.pool.images()[self.curated.indices]
        return self._images

    @property
    def ids(self):
        return self.pool.ids[self.curated.indices]

    def captions(self):
        caps = self.pool.captions()
        return [caps[i] for i in self.curated.indices]

    def __getitem__(self, i):
        img, y, _ = super().__getitem__(i)
        return img, y, str(self.ids[i % self.n])

    def manifest(self):
        return {**super().manifest(), "pool": self.pool.dataset_id,
                "curation": self.curated.manifest}


def curated_dataset(name: str, **kw) -> CuratedDataset:
    """The dataset ``<pool>@<spec>`` (e.g. ``train-raw-100k@dedup``): the pool's rows at the
    positions :func:`clipsafety.synth.curation.curate` keeps, with the pool's sample ids,
    captions and images (``kw`` goes to the pool)."""
    base, spec = name.split("@", 1)
    pool = get_dataset(base, **kw)
    return CuratedDataset(name, pool, curate(pool, spec))


def raw_pool(n: int = 100_000) -> SynthDataset:
    """The raw pool at ``n`` rows: ``get_dataset("train-raw-100k", n=n)`` (the same
    configuration, seed and 20% duplicates; the full pool at the default), checked first."""
    if isinstance(n, bool) or not isinstance(n, int) or not 100 <= n <= 100_000:
        raise ValueError(f"pool size must be an integer in [100, 100000], got {n!r}")
    return get_dataset(POOL, n=n)
