"""Curation filters over the raw pool ``synth:train-raw-100k`` (the data-curation question).

Each filter takes the pool (a :class:`~clipsafety.synth.SynthDataset`, e.g.
:func:`clipsafety.synth.raw_pool` or ``clipsafety.synth.get_dataset("train-raw-100k")``) and
returns a :class:`Curated`: the kept row positions in the pool (sorted, ``int64``) and a
manifest (filter, parameters, pool id, sizes, seed, reference model and its weights hash), so
a chapter can train on ``curated_arrays(c, pool)`` and cite exactly what was kept.

This module is a layer of filters below the dataset module: it takes datasets, never
resolves dataset names, and never imports :mod:`clipsafety.synth.datasets` or the
:mod:`clipsafety.synth` package. The dataset module owns the curated sets: an id
``synth:<pool>@<filters>`` (a :func:`curate` spec) is
:func:`clipsafety.synth.datasets.curated_dataset`, and the raw pool at a size is
:func:`clipsafety.synth.datasets.raw_pool` (both also exported by :mod:`clipsafety.synth`).

Filters:

- :func:`deduplicate`: drop exact duplicates (the pool marks them in ``duplicate_of``; the
  first occurrence is kept);
- :func:`balance_classes`: cap every class at the same count, the class read from the
  caption's category word (as metadata-matching curation does; captions naming no category
  are dropped) or, with ``by="label"``, from the ground-truth category;
- :func:`filter_alignment`: keep the top fraction of image-caption pairs by cosine
  similarity under a reference CLIP (:func:`alignment_scores`); the CLIP comes in as a
  scorer argument (:func:`clipsafety.zoo.alignment_scorer` for a zoo model), so this
  module never loads a model;
- :func:`random_subset` and :func:`match_size`: random subsets of a given size, the baseline
  every filter is compared with at equal size.

Conventions: positions index the pool's rows (``pool.ids[positions]`` are the sample ids);
randomness comes from ``numpy.random.default_rng(seed)``; ties in scores are broken by
position (stable sort), so every filter is deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from clipsafety.synth.world import CATEGORIES

POOL = "train-raw-100k"


@dataclass(frozen=True)
class Curated:
    """Kept positions in the pool (sorted ``int64``) and the manifest describing them."""

    indices: np.ndarray
    manifest: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.indices)


def _pool(pool):
    """``pool`` itself, checked to be a dataset: names are resolved by the dataset module."""
    if pool is None or isinstance(pool, str):
        raise TypeError(f"pool must be a dataset (e.g. clipsafety.synth.raw_pool() or "
                        f"clipsafety.synth.get_dataset({POOL!r})), not {pool!r}; this module "
                        "does not resolve dataset names")
    return pool


def _result(pool, kept: np.ndarray, name: str, start: np.ndarray | None = None, **params) -> Curated:
    kept = np.sort(np.asarray(kept, dtype=np.int64))
    n_in = pool.n if start is None else len(start)
    manifest = {"filter": name, "pool": pool.dataset_id, "pool_n": pool.n, "n_in": int(n_in),
                "n_out": len(kept), **params}
    return Curated(kept, manifest)


def _check_start(pool, start) -> np.ndarray:
    if start is None:
        return np.arange(pool.n, dtype=np.int64)
    idx = np.asarray(start.indices if isinstance(start, Curated) else start, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= pool.n):
        raise IndexError(f"positions must lie in [0, {pool.n}) for {pool.dataset_id}; "
                         f"got min {idx.min()}, max {idx.max()}")
    return idx


def deduplicate(pool, start=None) -> Curated:
    """Drop exact duplicates: keep rows whose ``duplicate_of`` is -1 (first occurrences).

    ``start`` (positions or a :class:`Curated`) restricts the filter to an earlier selection;
    a duplicate whose original is not in ``start`` is then kept (it is the first seen).
    """
    pool = _pool(pool)
    a = pool.attributes()
    if "duplicate_of" not in a:
        raise KeyError(f"{pool.dataset_id} has no 'duplicate_of' column; de-duplication needs "
                       f"the raw pool ({POOL!r})")
    idx = _check_start(pool, start)
    dup_of = a["duplicate_of"].to_numpy()
    # the root (first occurrence) of every row; duplicates always point to earlier rows
    root = np.arange(pool.n)
    for i in np.flatnonzero(dup_of >= 0):
        root[i] = root[dup_of[i]]
    _, first = np.unique(root[idx], return_index=True)
    return _result(pool, idx[first], "deduplicate", start=idx)


def caption_classes(captions: list[str]) -> np.ndarray:
    """Category index named by each caption (first category word in it), -1 if none."""
    index = {c: i for i, c in enumerate(CATEGORIES)}
    out = np.full(len(captions), -1, np.int64)
    for k, text in enumerate(captions):
        for w in re.findall(r"[a-z]+", text.lower()):
            if w in index:
                out[k] = index[w]
                break
    return out


def balance_classes(pool, per_class: int | None = None, by: str = "caption", seed: int = 0,
                    start=None) -> Curated:
    """Keep at most ``per_class`` samples of every class (default: the rarest class's count).

    ``by="caption"`` reads the class from the caption (rows without a category word are
    dropped), ``by="label"`` from the ground-truth category. Which rows of a larger class are
    kept is a seeded random draw.
    """
    pool = _pool(pool)
    idx = _check_start(pool, start)
    if by == "caption":
        cls = caption_classes(pool.captions())[idx]
    elif by == "label":
        cls = pool.targets[idx]
    else:
        raise ValueError(f"by must be 'caption' or 'label', got {by!r}")
    counts = np.bincount(cls[cls >= 0], minlength=len(CATEGORIES))
    cap = int(counts.min()) if per_class is None else int(per_class)
    if cap < 0:
        raise ValueError(f"per_class must be >= 0, got {per_class}")
    rng = np.random.default_rng(seed)
    kept = []
    for c in range(len(CATEGORIES)):
        members = idx[cls == c]
        if len(members) > cap:
            members = rng.choice(members, size=cap, replace=False)
        kept.append(members)
    return _result(pool, np.concatenate(kept), "balance_classes", start=idx, by=by,
                   per_class=cap, seed=seed)


@dataclass(frozen=True, eq=False)
class AlignmentScorer:
    """A reference CLIP for :func:`alignment_scores`: ``scorer(images, captions) -> float32
    [B]``, the cosine similarity of each image with its caption.

    ``model_id`` and ``weights_sha256`` go into the filter's manifest. The zoo supplies one
    (:func:`clipsafety.zoo.alignment_scorer`); any callable with that signature works."""

    model_id: str
    weights_sha256: str | None
    score: Callable[[np.ndarray, list[str]], np.ndarray] = field(repr=False)

    def __call__(self, images: np.ndarray, captions: list[str]) -> np.ndarray:
        return self.score(images, captions)


def _check_scorer(scorer) -> None:
    if isinstance(scorer, str) or not callable(scorer):
        raise TypeError(f"scorer must be a callable (images, captions) -> cosine similarities, "
                        f"e.g. clipsafety.zoo.alignment_scorer({scorer!r}); got {scorer!r}")


def alignment_scores(pool, scorer=None, batch_size: int = 500,
                     progress: bool = True) -> np.ndarray:
    """Cosine similarity ``float32 [N]`` of each image with its own caption under ``scorer``.

    ``scorer(uint8 images [B, H, W, 3], captions list[B]) -> [B]`` is called on batches of
    ``batch_size`` rows in order; :func:`clipsafety.zoo.alignment_scorer` gives one for a zoo
    CLIP (images and captions encoded, L2-normalised, dot product).
    """
    from tqdm import tqdm

    _check_scorer(scorer)
    pool = _pool(pool)
    imgs = pool.images()
    caps = pool.captions()
    out = np.empty(pool.n, np.float32)
    for i in tqdm(range(0, pool.n, batch_size), desc=f"alignment {pool.name}", disable=not progress,
                  mininterval=5):
        s = np.asarray(scorer(imgs[i:i + batch_size], caps[i:i + batch_size]), dtype=np.float32)
        if s.shape != (min(batch_size, pool.n - i),):
            raise ValueError(f"scorer returned shape {s.shape} for a batch of "
                             f"{min(batch_size, pool.n - i)} pairs; expected one score per pair")
        out[i:i + batch_size] = s
    return out


def filter_alignment(pool, scorer=None, keep_fraction: float = 0.5,
                     scores: np.ndarray | None = None, start=None, model: str | None = None) -> Curated:
    """Keep the ``keep_fraction`` of pairs with the highest alignment score.

    ``scorer`` (e.g. :func:`clipsafety.zoo.alignment_scorer`) scores the pool with
    :func:`alignment_scores`; ``scores`` (one per pool row) skips the scoring. The manifest
    names the model: ``model`` if given, else ``scorer.model_id``, and ``scorer``'s weights
    hash. The threshold is the lowest kept score.
    """
    pool = _pool(pool)
    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    idx = _check_start(pool, start)
    if scores is None:
        if scorer is None:
            raise ValueError("filter_alignment needs scorer= (e.g. clipsafety.zoo.alignment_scorer"
                             "('zoo:clip-convnext-wit-100k')) or precomputed scores=")
        scores = alignment_scores(pool, scorer)
    elif scorer is not None:
        _check_scorer(scorer)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (pool.n,):
        raise ValueError(f"scores must have one value per pool row ({pool.n}); got shape {scores.shape}")
    k = round(keep_fraction * len(idx))
    order = np.argsort(-scores[idx], kind="stable")[:k]
    kept = idx[order]
    return _result(pool, kept, "filter_alignment", start=idx,
                   model=model or getattr(scorer, "model_id", None),
                   weights_sha256=getattr(scorer, "weights_sha256", None),
                   keep_fraction=keep_fraction,
                   threshold=float(scores[kept].min()) if k else None)


def random_subset(pool, size: int = 10_000, seed: int = 0, start=None) -> Curated:
    """A seeded uniform random subset of ``size`` rows (of ``start`` if given)."""
    pool = _pool(pool)
    idx = _check_start(pool, start)
    if not 0 <= size <= len(idx):
        raise ValueError(f"size must be in [0, {len(idx)}] for this selection, got {size}")
    rng = np.random.default_rng(seed)
    return _result(pool, rng.choice(idx, size=size, replace=False), "random_subset", start=idx,
                   size=size, seed=seed)


def match_size(curated: Curated, size: int, seed: int = 0, *, pool) -> Curated:
    """Randomly trim a curated selection to ``size`` rows (to compare filters at equal size)."""
    pool = _pool(pool)
    sub = random_subset(pool, size, seed, start=curated)
    return Curated(sub.indices, {**curated.manifest, "matched_size": size, "match_seed": seed,
                                 "n_out": int(size)})


def curated_arrays(curated: Curated, pool):
    """``(uint8 images [K, H, W, 3], int64 targets [K], captions list[K])`` of a selection,
    captions as in the pool (the same text a model trained on the pool would see)."""
    pool = _pool(pool)
    idx = curated.indices
    caps = pool.captions()
    return pool.images()[idx], pool.targets[idx], [caps[i] for i in idx]


# ------------------------------------------------------------ registered dataset ids
#: filters usable in a dataset id ``synth:<pool>@<f1>+<f2>...`` (applied left to right by
#: :func:`curate`; the dataset is :func:`clipsafety.synth.datasets.curated_dataset`);
#: ``random-<n>`` draws ``n`` rows with seed 0. Alignment filtering needs a model, so it is a
#: function only (:func:`filter_alignment`).
ID_FILTERS = {
    "dedup": lambda pool, start: deduplicate(pool, start=start),
    "balanced": lambda pool, start: balance_classes(pool, by="caption", start=start),
    "balanced-label": lambda pool, start: balance_classes(pool, by="label", start=start),
}


def curate(pool, spec: str) -> Curated:
    """Apply the ``+``-separated filters of ``spec`` (``"dedup+balanced"``) in order."""
    pool = _pool(pool)
    cur, steps = None, []
    for part in spec.split("+"):
        if part in ID_FILTERS:
            cur = ID_FILTERS[part](pool, cur)
        elif re.fullmatch(r"random-\d+", part):
            cur = random_subset(pool, int(part.split("-")[1]), seed=0, start=cur)
        else:
            raise ValueError(f"unknown curation filter {part!r} in {spec!r}; expected "
                           f"{sorted(ID_FILTERS)} or random-<n>, joined by '+'")
        steps.append(cur.manifest)
    return Curated(cur.indices, {"spec": spec, "steps": steps, "n_out": len(cur)})


def diversity_select(pool, features=None, size: int = 10_000, seed: int = 0,
                     start=None) -> Curated:
    """Diversity-based selection: greedy k-centre on ``features`` (one row per pool row, e.g.
    a reference CLIP's normalised image embeddings; this module never computes them).

    Starts from one seeded random row and repeatedly adds the row farthest (Euclidean) from
    everything chosen so far, so the kept rows cover the feature space; exact duplicates have
    distance 0 to their twin and are picked last. Ties go to the lowest position.
    """
    pool = _pool(pool)
    idx = _check_start(pool, start)
    if features is None:
        raise ValueError("diversity_select needs features= (one row per pool row), e.g. a "
                         "reference CLIP's image embeddings of the pool")
    X = np.asarray(features, dtype=np.float64)
    if X.ndim != 2 or len(X) != pool.n:
        raise ValueError(f"features must be [{pool.n}, D] (one row per pool row); got {X.shape}")
    if not 0 <= size <= len(idx):
        raise ValueError(f"size must be in [0, {len(idx)}] for this selection, got {size}")
    Xs = X[idx]
    sq = np.einsum("ij,ij->i", Xs, Xs)
    rng = np.random.default_rng(seed)
    chosen = np.empty(size, np.int64)

    def sqdist(c):  # ||x - x_c||^2 as ||x||^2 - 2 x.x_c + ||x_c||^2: one matrix-vector product
        return np.maximum(sq - 2.0 * (Xs @ Xs[c]) + sq[c], 0.0)

    if size:
        first = int(rng.integers(len(idx)))
        chosen[0] = first
        dist = sqdist(first)
        for k in range(1, size):
            nxt = int(np.argmax(dist))
            chosen[k] = nxt
            dist = np.minimum(dist, sqdist(nxt))
    return _result(pool, idx[chosen], "diversity_select", start=idx, size=size, seed=seed,
                   method="k-centre greedy")


__all__ = [
    "AlignmentScorer",
    "ID_FILTERS",
    "POOL",
    "Curated",
    "alignment_scores",
    "balance_classes",
    "caption_classes",
    "curate",
    "curated_arrays",
    "deduplicate",
    "diversity_select",
    "filter_alignment",
    "match_size",
    "random_subset",
]
