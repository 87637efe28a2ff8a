"""Dataset ids of the synthetic world (``synth:<name>``) as :class:`DatasetSpec` objects.

Every set is ``(WorldConfig, n, seed)`` plus an optional post-processing step (corruptions,
cue-conflict texture swap, the adversarial filter). Sample ids are ``<name>/<index>``.
Images are rendered lazily on first use and kept in memory; :meth:`SynthDataset.arrays` is
the fast batched path (``uint8 [N, H, W, 3]``, targets, ids).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pandas as pd

from clipsafety.records import DatasetSpec
from clipsafety.synth import sources as S
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
    """One synthetic set; see the module notes. ``targets`` are category indices, -1 for OOD."""

    label_space = "synth"

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


# -------------------------------------------------------------- the registry of sets
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


def _harder(cfg: S.WorldConfig, k: float) -> S.WorldConfig:
    f = lambda p: min(0.9, p * k)  # noqa: E731
    return cfg.replace(p_pose=f(cfg.p_pose), p_small=f(cfg.p_small), p_large=f(cfg.p_large),
                       p_partial=f(cfg.p_partial), p_deform=f(cfg.p_deform),
                       p_grain=f(cfg.p_grain), p_dark=f(cfg.p_dark), p_bright=f(cfg.p_bright),
                       p_occluder=f(cfg.p_occluder), p_person=f(cfg.p_person),
                       p_multi=f(cfg.p_multi))


EVAL_N = 2000
SHIFT_N = 1000
OOD_N = 1000
TRAIN_SIZES = {"10k": 10_000, "30k": 30_000, "100k": 100_000}
#: what each set is, for list_datasets() and the dataset card
DESCRIPTIONS: dict[str, str] = {
    "id-test": "fresh sample of the labelled (ImageNet-like) distribution",
    "shift-v2": "V2-like: a re-sample with a small prior shift (skewed class prior, "
                "weaker cue, twice the nuisance rates)",
    "shift-sketch": "Sketch-like: outline drawings on paper",
    "shift-rendition": "R-like: paintings and silhouettes; 8-class label subset",
    "shift-adversarial": "A-like: hard samples kept only if the held-out reference model "
                         "misclassifies them",
    "shift-objectnet": "ObjectNet-like: extreme poses, scene backgrounds, occlusion and "
                       "partial views; 7-class label subset",
    "shift-stylized": "Stylized-like: textures and colours replaced by non-characteristic ones",
    "shift-corrupt": "C-like: noise, blur, contrast and pixelation at a severity (kw severity, "
                     "or shift-corrupt-<1..5>; default 3)",
    "shift-occlusion": "occlusion: occluding bars, people in front, partial views, clutter",
    "ood-near": "near-OOD: five novel shape categories with in-distribution nuisances",
    "ood-textures": "texture patches filling the frame, no object",
    "ood-scenes": "object-free scenes and clutter backgrounds",
    "ood-finegrained": "a novel fine-grained domain: leaf shapes",
    "ood-noise": "noise images (white, coarse and gaussian)",
    "cue-conflict": "shape of one category with the characteristic texture and colour of "
                    "another (same-class pairs never drawn)",
    "train-<source>-<size>": "training sources labelled / wit / laion at 10k, 30k, 100k "
                             "(targets = category; captions() in the source's style)",
    "train-raw-100k": "raw pool for curation (LAION-like, noisier captions, 20% duplicates)",
    "train-raw-100k@<filters>": "a curated subset of the raw pool: filters dedup, balanced "
                                "(class word of the caption), balanced-label, random-<n>, "
                                "joined by '+' (clipsafety.synth.curation)",
}


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


def _build(name: str, **kw) -> SynthDataset:
    if "@" in name:  # a curated subset of a pool: ``train-raw-100k@dedup+balanced``
        from clipsafety.synth.curation import curated_dataset

        return curated_dataset(name, **kw)
    L = S.LABELLED
    if name == "id-test":
        return SynthDataset(name, L, kw.get("n", EVAL_N))
    if name == "shift-v2":
        prior = tuple(np.linspace(2.0, 0.5, 10))
        cfg = _harder(L, 2.0).replace(cue_strength=0.65, class_probs=prior)
        return SynthDataset(name, cfg, kw.get("n", SHIFT_N))
    if name == "shift-sketch":
        return SynthDataset(name, L.replace(style_probs=(0, 1, 0, 0)), kw.get("n", SHIFT_N))
    if name == "shift-rendition":
        cats = tuple(CATEGORIES[:8])
        cfg = L.replace(style_probs=(0, 0, 0.4, 0.6), categories=cats, background_probs=(0.5, 0.3, 0.2))
        return SynthDataset(name, cfg, kw.get("n", SHIFT_N), label_subset=list(range(8)))
    if name == "shift-objectnet":
        cats = ("square", "triangle", "star", "cross", "hexagon", "heart", "arrow")
        cfg = L.replace(p_pose=0.9, background_probs=(0.0, 0.3, 0.7), p_partial=0.25,
                        p_occluder=0.2, p_small=0.25, p_large=0.15, cue_strength=0.5,
                        categories=cats, p_dark=0.15)
        return SynthDataset(name, cfg, kw.get("n", SHIFT_N),
                            label_subset=sorted(CATEGORIES.index(c) for c in cats))
    if name == "shift-stylized":
        cfg = L.replace(cue_strength=0.0, pattern_pool=(10, 11, 12, 13))
        return SynthDataset(name, cfg, kw.get("n", SHIFT_N))
    if name.startswith("shift-corrupt"):
        sev = int(kw.get("severity", name.rsplit("-", 1)[1] if name.count("-") == 2 else 3))
        base = L
        nm = f"shift-corrupt-{sev}"
        seed_base = _seed("shift-corrupt")

        def post(img, a, sev=sev):
            return corrupt(img, np.arange(len(img)) % 4, sev, seed_base + sev)

        return SynthDataset(nm, base, kw.get("n", SHIFT_N), seed=seed_base, post=post,
                            post_desc={"corruptions": CORRUPTIONS, "severity": sev})
    if name == "shift-occlusion":
        cfg = L.replace(p_occluder=0.6, p_person=0.4, p_partial=0.35, p_multi=0.3,
                        background_probs=(0.3, 0.6, 0.1))
        return SynthDataset(name, cfg, kw.get("n", SHIFT_N))
    if name == "shift-adversarial":
        return _adversarial(kw.get("n", SHIFT_N), kw.get("reference"))
    if name == "ood-near":
        cfg = L.replace(categories=tuple(NOVEL_CATEGORIES), cue_strength=0.0)
        return SynthDataset(name, cfg, kw.get("n", OOD_N), ood=True)
    if name == "ood-textures":
        cfg = L.replace(categories=("patch",), cue_strength=0.0, pattern_pool=tuple(range(len(PATTERNS))))
        return SynthDataset(name, cfg, kw.get("n", OOD_N), ood=True)
    if name == "ood-scenes":
        cfg = L.replace(has_object=False, background_probs=(0, 0.4, 0.6))
        return SynthDataset(name, cfg, kw.get("n", OOD_N), ood=True)
    if name == "ood-finegrained":
        cfg = L.replace(categories=tuple(LEAF_CATEGORIES), cue_strength=0.0,
                        pattern_pool=(9, 13, 3))
        def leafy(a, rng):
            a = a.copy()
            a["hue"] = rng.uniform(0.05, 0.38, len(a))
            return a
        return SynthDataset(name, cfg, kw.get("n", OOD_N), ood=True, attr_fn=leafy)
    if name == "ood-noise":
        s = _seed(name)
        return SynthDataset(name, L, kw.get("n", OOD_N), ood=True,
                            post=lambda img, a: _noise_images(img, a, s), post_desc={"noise": True})
    if name == "cue-conflict":
        return SynthDataset(name, _canonical(), kw.get("n", 1000), attr_fn=_cue_conflict_attrs)
    if name.startswith("train-"):
        parts = name.split("-")
        if len(parts) != 3 or parts[1] not in S.SOURCES or parts[2] not in TRAIN_SIZES:
            raise KeyError(name)
        src = S.SOURCES[parts[1]]
        n = kw.get("n", TRAIN_SIZES[parts[2]])
        if parts[1] == "raw":
            return SynthDataset(name, src, n, attr_fn=_dedup_pool)
        return SynthDataset(name, src, n)
    raise KeyError(name)


def list_datasets() -> list[str]:
    """All dataset names (without the ``synth:`` prefix)."""
    names = [k for k in DESCRIPTIONS if "<" not in k and k != "train-raw-100k"]
    names += [f"shift-corrupt-{s}" for s in range(1, 6)]
    names += [f"train-{src}-{sz}" for src in ("labelled", "wit", "laion") for sz in TRAIN_SIZES]
    names += ["train-raw-100k"]
    return names


#: the 8 test conditions used for the zoo's usefulness check
SHIFTS: list[str] = ["shift-v2", "shift-sketch", "shift-rendition", "shift-adversarial",
                     "shift-objectnet", "shift-stylized", "shift-corrupt", "shift-occlusion"]
OOD_SETS: list[str] = ["ood-near", "ood-textures", "ood-scenes", "ood-finegrained", "ood-noise"]


@lru_cache(maxsize=64)
def _cached(name: str, kw_items: tuple) -> SynthDataset:
    return _build(name, **dict(kw_items))


def get_dataset(name: str, **kw) -> SynthDataset:
    """The :class:`DatasetSpec` of ``synth:<name>`` (the prefix is optional; cached per kw)."""
    if name.startswith("synth:"):
        name = name[len("synth:"):]
    try:
        return _cached(name, tuple(sorted(kw.items())))
    except KeyError:
        raise KeyError(
            f"unknown synthetic dataset {name!r}; expected one of {list_datasets()} "
            f"(see clipsafety.synth.DESCRIPTIONS)") from None


# --------------------------------------------------------- A-like: adversarial filter
REFERENCE_MODEL = "ref-resnet-labelled"


def _adversarial(n: int, reference: str | None) -> SynthDataset:
    """Candidates from a hard mix; kept in order while the reference model errs on them."""
    ref = reference or REFERENCE_MODEL
    cfg = _harder(S.WIT, 1.6).replace(cue_strength=0.5)
    cand = SynthDataset("shift-adversarial-candidates", cfg, 10 * n)
    imgs, tg, _ = cand.arrays()
    from clipsafety.zoo import load, predict_arrays

    m = load(ref)
    pred = predict_arrays(m, imgs).argmax(1)
    keep = np.flatnonzero(pred != tg)[:n]
    a = cand.attributes().iloc[keep].reset_index(drop=True)
    ds = SynthDataset("shift-adversarial", cfg, len(keep), seed=cand.seed,
                      post_desc={"filter": "misclassified by reference", "reference": ref,
                                 "reference_sha256": m.manifest.get("weights_sha256"),
                                 "candidates": 10 * n})
    ds._attrs = a.assign(candidate_index=keep)
    ds._images = imgs[keep]
    return ds
