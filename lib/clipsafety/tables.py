"""Tidy tables for the chapters: predictions over models x datasets, catalog metadata, summaries.

Every table here is a pandas DataFrame with one row per (model, dataset/factor, variant) and
the model's catalog metadata (``group``, ``family``, ``source``, ``samples``, ...) joined in.
The functions only orchestrate: predictions come from :func:`clipsafety.infer.predict` (cached
in the store), numbers from :mod:`clipsafety.metrics`, :mod:`clipsafety.factors` and
:mod:`clipsafety.shape`. Nothing here re-implements a metric.

Published upstream results are read through :func:`clipsafety.external.fetch` and put into
the same shapes, so that a chapter runs one analysis on the synthetic world, on published
numbers and on real models alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

#: ImageNet-X's 16 factors, in its own order (the package ships the list)
try:  # imagenet-x is a pinned dependency; keep import errors explicit
    from imagenet_x import FACTORS as ALL_FACTORS
except ImportError as exc:  # pragma: no cover
    raise ImportError("clipsafety.tables needs the pinned package imagenet-x (pip install "
                      "imagenet-x==0.0.7)") from exc

ALL_FACTORS = list(ALL_FACTORS)
#: the paper's 10 factors (METHODS.md section 3; unconfirmed): ImageNet-X's first ten
PAPER_FACTORS = ALL_FACTORS[:10]

BASELINE_GROUP = "standard"
CLIP_GROUP = "clip-zeroshot"


# --------------------------------------------------------------------------- parameters

def resolve_factors(factors: str | Sequence[str] | None) -> list[str]:
    """``None``/``"paper"`` -> the paper's 10 factors, ``"all"`` -> ImageNet-X's 16, or a list."""
    if factors is None or factors == "paper":
        return list(PAPER_FACTORS)
    if factors == "all":
        return list(ALL_FACTORS)
    if isinstance(factors, str):
        factors = [f.strip() for f in factors.split(",") if f.strip()]
    unknown = [f for f in factors if f not in ALL_FACTORS]
    if unknown:
        raise ValueError(f"unknown factor(s) {unknown}; expected names from ImageNet-X's "
                         f"{ALL_FACTORS}, or 'paper' (10) / 'all' (16).")
    return list(factors)


def resolve_models(models: str | Sequence[str]) -> list[str]:
    """Model ids from a parameter: a catalog name (``"zoo"``, ``"real"``: its models whose group
    is one of the paper's, :data:`style.GROUPS`; the zoo's reference models are left out), a
    comma-separated string, or a list of ids (returned unchanged, duplicates dropped)."""
    if isinstance(models, str):
        if models in ("zoo", "real"):
            from clipsafety.catalog import read_catalog
            from clipsafety.style import GROUPS

            cat = read_catalog(models)
            return list(dict.fromkeys(cat.loc[cat["group"].isin(list(GROUPS)), "id"].astype(str)))
        models = [m.strip() for m in models.split(",") if m.strip()]
    if not models:
        raise ValueError("models is empty; pass model ids, or 'zoo' / 'real' for a catalog.")
    return list(dict.fromkeys(models))


def is_real_path(models: Sequence[str]) -> bool:
    """True when the models are real (open_clip / timm ids) rather than zoo models."""
    return any(not str(m).startswith("zoo:") for m in models)


# --------------------------------------------------------------------------- metadata

_META_COLS = ["model", "group", "family", "source", "samples", "resolution"]


#: real models a reader would start with (two zero-shot CLIPs, an ImageNet model, a fine-tuned CLIP)
REAL_EXAMPLE = ["openclip:ViT-B-32@openai", "openclip:ViT-B-32@laion2b_s34b_b79k",
                "timm:resnet50.a1_in1k", "timm:vit_base_patch16_clip_224.openai_ft_in1k"]


def real_path_note(chapter: str, needs: str) -> str:
    """Markdown for a chapter run without real models: what is missing and the exact command."""
    models = "[" + ",".join(f'"{m}"' for m in REAL_EXAMPLE) + "]"
    return (f"No real models ran here (the book's machines have neither pretrained weights nor "
            f"{needs}). To run this chapter on real models:\n\n```\nmake chapter NAME={chapter} "
            f"PARAMS='-p models {models} -p data_root /data -p device cuda'\n```")


def infer_group(model_id: str) -> str:
    """Group of a model that no catalog lists, by explicit id rules.

    ``openclip:*`` -> ``clip-zeroshot``; ``timm:*clip*ft_in12k_in1k*`` (or ``*ft_in12k*``)
    -> ``clip-ft-2stage``; ``timm:*clip*ft_in1k*`` -> ``clip-ft-direct``; ``timm:`` names with an
    ImageNet-21k/12k, JFT, IG or semi-supervised tag (``in21k``, ``in22k``, ``in12k``, ``jft``,
    ``ig``, ``_ssl``, ``_swsl``, ``fb_``) -> ``more-data``; any other ``timm:`` model ->
    ``standard``.
    """
    mid = model_id.lower()
    if mid.startswith("openclip:"):
        return CLIP_GROUP
    name = mid.split(":", 1)[-1]
    if "clip" in name and "ft_in12k" in name:
        return "clip-ft-2stage"
    if "clip" in name and "ft_in1k" in name:
        return "clip-ft-direct"
    if re.search(r"in21k|in22k|in12k|jft|\big\b|\.ig|_ig|_ssl|_swsl|\.fb_|_fb_", name):
        return "more-data"
    return BASELINE_GROUP


def model_metadata(models: Sequence[str]) -> pd.DataFrame:
    """Catalog metadata for ``models`` (zoo and real catalogs); ids no catalog lists get their
    group from :func:`infer_group` and ``meta_from = "id rules"``."""
    frames = []
    for name in ("zoo", "real"):
        try:
            from clipsafety.catalog import read_catalog

            cat = read_catalog(name).copy()
        except Exception:  # a missing catalog is not an error here: the id rules apply
            continue
        cat = cat.rename(columns={"id": "model"})
        cat["meta_from"] = f"{name} catalog"
        frames.append(cat)
    cat = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["model"])
    cat = cat.drop_duplicates("model")
    out = pd.DataFrame({"model": list(models)}).merge(cat, on="model", how="left")
    for col in _META_COLS[1:]:
        if col not in out:
            out[col] = np.nan
    for col in ("group", "family", "meta_from"):
        out[col] = out[col].astype(object) if col in out else pd.Series([None] * len(out), dtype=object)
    missing = out["group"].isna()
    out.loc[missing, "group"] = out.loc[missing, "model"].map(infer_group)
    out.loc[missing, "meta_from"] = "id rules"
    fam = out["family"].isna()
    out.loc[fam, "family"] = out.loc[fam, "model"].map(_family_from_id)
    return out


def _family_from_id(model_id: str) -> str:
    name = model_id.split(":", 1)[-1].lower()
    for key, fam in (("vit", "ViT"), ("convnext", "ConvNeXt"), ("resnet", "ResNet"),
                     ("rn", "ResNet")):
        if key in name:
            return fam
    return "other"


# --------------------------------------------------------------------------- predictions

def collect(models: Sequence[str], dataset: str, *, data_root: str = "", store: str = "",
            device: str = "auto", batch_size: int = 64, progress: bool = True,
            predict: Callable | None = None, **predict_kwargs) -> dict:
    """Prediction records of every model on ``dataset``, from the store or by inference.

    Returns ``{model_id: PredictionRecord}`` in the order given. Each record is cached by the
    store as soon as it is computed, so a failure on one model loses none of the others: the
    error names the model and says how to resume (run again; finished models are cache hits).
    """
    if predict is None:
        from clipsafety.infer import predict
    from tqdm import tqdm

    out = {}
    kwargs = dict(predict_kwargs)
    # per-image bars only where inference is long (real models); the zoo shows one bar
    kwargs.setdefault("progress", bool(progress and is_real_path(list(models))))
    if data_root:
        kwargs["data_root"] = data_root
    if store:
        kwargs["store"] = store
    for mid in tqdm(list(models), desc=f"predictions on {dataset}", disable=not progress):
        try:
            out[mid] = predict(mid, dataset, device=device, batch_size=batch_size, **kwargs)
        except Exception as exc:
            done = ", ".join(out) or "none"
            raise RuntimeError(
                f"predicting {dataset!r} with model {mid!r} failed: {exc}. Finished and cached: "
                f"{done}. Fix the model id / data_root and run again; cached models are reused."
            ) from exc
    return out


# --------------------------------------------------------------------------- summaries

def bootstrap_mean(values, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``values`` and its percentile bootstrap interval (:func:`metrics.bootstrap_ci`).

    NaNs are dropped; with fewer than two values the interval is ``(nan, nan)``.
    """
    from clipsafety import metrics

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.nan, np.nan, np.nan
    if v.size < 2:
        return float(v.mean()), np.nan, np.nan
    return metrics.bootstrap_ci(np.mean, v, n_boot=n_boot, seed=seed)


def _mean_difference(values: np.ndarray, in_a: np.ndarray) -> float:
    a, b = values[in_a], values[~in_a]
    if a.size == 0 or b.size == 0:
        return np.nan
    return float(a.mean() - b.mean())


def bootstrap_difference(a, b, n_boot: int = 1000, seed: int = 0,
                         level: float = 0.95) -> tuple[float, float, float]:
    """``mean(a) - mean(b)`` with a percentile bootstrap interval.

    The two groups' models are pooled and resampled jointly with their group flags
    (:func:`metrics.bootstrap_ci`); resamples that miss a group are ignored. NaNs are dropped;
    with fewer than two models in either group the interval is ``(nan, nan)``.
    """
    from clipsafety import metrics

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return np.nan, np.nan, np.nan
    est = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return est, np.nan, np.nan
    values = np.concatenate([a, b])
    in_a = np.concatenate([np.ones(a.size, bool), np.zeros(b.size, bool)])
    return metrics.bootstrap_ci(_mean_difference, values, in_a, n_boot=n_boot, seed=seed,
                                level=level)


def group_summary(df: pd.DataFrame, value: str, by: Sequence[str] = ("factor",),
                  n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per (``by``, group): number of models, mean of ``value`` and its bootstrap interval."""
    rows = []
    keys = list(by) + ["group"]
    for key, part in df.groupby(keys, sort=False):
        mean, lo, hi = bootstrap_mean(part[value], n_boot=n_boot, seed=seed)
        rows.append(dict(zip(keys, key if isinstance(key, tuple) else (key,)),
                         n_models=int(part[value].notna().sum()), mean=mean, lo=lo, hi=hi))
    return pd.DataFrame(rows, columns=keys + ["n_models", "mean", "lo", "hi"])


def compare_to_groups(df: pd.DataFrame, value: str, target: str = CLIP_GROUP,
                      by: str | None = "factor", n_boot: int = 1000,
                      seed: int = 0) -> pd.DataFrame:
    """``mean(value | target group) - mean(value | other group)`` with bootstrap intervals, for
    every other group present (and per ``by`` level). Columns: [by], group, diff, lo, hi,
    n_target, n_other."""
    rows = []
    levels = [(None, df)] if by is None else list(df.groupby(by, sort=False))
    for level, part in levels:
        tgt = part.loc[part["group"] == target, value]
        for g, other in part[part["group"] != target].groupby("group", sort=False):
            d, lo, hi = bootstrap_difference(tgt, other[value], n_boot=n_boot, seed=seed)
            row = {"group": g, "diff": d, "lo": lo, "hi": hi, "n_target": int(tgt.size),
                   "n_other": int(other[value].size)}
            if by is not None:
                row = {by: level, **row}
            rows.append(row)
    cols = ([by] if by is not None else []) + ["group", "diff", "lo", "hi", "n_target", "n_other"]
    return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------- factors

def with_effective_robustness(long: pd.DataFrame, baseline_group: str = BASELINE_GROUP,
                              scale: str = "logit", x: str = "overall_acc",
                              y: str = "factor_acc", by: str = "factor") -> pd.DataFrame:
    """Add ``expected_acc`` (the baseline fit at the model's overall accuracy) and
    ``eff_rob`` (``y - expected``, fraction of accuracy) per ``by`` level, the fit running over
    the ``baseline_group`` models (:func:`metrics.effective_robustness`, ``scale`` as given).
    Levels with fewer than two baseline models get NaN."""
    from clipsafety import metrics

    parts = []
    for _, part in long.groupby(by, sort=False):
        part = part.copy()
        ok = part[x].notna() & part[y].notna()
        mask = (part["group"] == baseline_group) & ok
        part["eff_rob"] = np.nan
        if mask.sum() >= 2 and part.loc[mask, x].nunique() >= 2:
            er = metrics.effective_robustness(part.loc[ok, x].to_numpy(), part.loc[ok, y].to_numpy(),
                                              mask[ok].to_numpy(), scale=scale)
            part.loc[ok, "eff_rob"] = er
        part["expected_acc"] = part[y] - part["eff_rob"]
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else long.assign(eff_rob=[], expected_acc=[])


def trend_grid(long: pd.DataFrame, baseline_group: str = BASELINE_GROUP, scale: str = "logit",
               n_boot: int = 1000, seed: int = 0, x: str = "overall_acc", y: str = "factor_acc",
               by: str = "factor", n_points: int = 40) -> pd.DataFrame:
    """The baseline trend and its bootstrap band on a grid of x accuracies spanning all models,
    per ``by`` level (:func:`metrics.trend_band`). Columns: [by], x, lo, mid, hi."""
    from clipsafety import metrics

    rows = []
    for level, part in long.groupby(by, sort=False):
        base = part[(part["group"] == baseline_group) & part[x].notna() & part[y].notna()]
        if len(base) < 2 or base[x].nunique() < 2:
            continue
        xs = part[x].dropna()
        grid = np.linspace(xs.min(), xs.max(), n_points)
        lo, mid, hi = metrics.trend_band(base[x].to_numpy(), base[y].to_numpy(), grid,
                                         scale=scale, n_boot=n_boot, seed=seed)
        rows.append(pd.DataFrame({by: level, "x": grid, "lo": lo, "mid": mid, "hi": hi}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=[by, "x", "lo", "mid", "hi"])


def factor_leaders(summary: pd.DataFrame, target: str = CLIP_GROUP,
                   value: str = "mean") -> pd.DataFrame:
    """Per factor: whether ``target``'s mean effective robustness is above every other group's
    (column ``target_leads``), and the best other group. Input: :func:`group_summary` output."""
    rows = []
    for factor, part in summary.groupby("factor", sort=False):
        t = part.loc[part["group"] == target, value]
        others = part[part["group"] != target].dropna(subset=[value])
        if t.empty or others.empty or not np.isfinite(t.iloc[0]):
            continue
        best = others.loc[others[value].idxmax()]
        rows.append({"factor": factor, "target_mean": float(t.iloc[0]),
                     "best_other_group": best["group"], "best_other_mean": float(best[value]),
                     "target_leads": bool(t.iloc[0] > best[value]),
                     "target_last": bool(t.iloc[0] < others[value].min())})
    return pd.DataFrame(rows, columns=["factor", "target_mean", "best_other_group",
                                       "best_other_mean", "target_leads", "target_last"])


# ---- published ImageNet-X per-factor tables

IMAGENETX = "facebookresearch/imagenetx/results/val/{which}_factor/{collection}/class/accuracies_per_factor.csv"
PUBLISHED_COLLECTIONS = {
    "imagenet_testbed": "ImageNet-X on imagenet-testbed models",
    "modelvshuman": "ImageNet-X on model-vs-human models",
}

#: zero-shot CLIP models in ImageNet-X's published tables (all OpenAI CLIP, trained on WIT)
PUBLISHED_CLIP = {
    "resnet50_clip_zeroshot": ("ResNet", "WIT"),
    "vit_b_32_clip_zeroshot": ("ViT", "WIT"),
    "clip": ("ViT", "WIT"),  # model-vs-human's "clip" is OpenAI ViT-B/32 zero-shot
    "clipRN50": ("ResNet", "WIT"),
}

_TYPE_TO_GROUP = {
    "STANDARD": "standard",
    "MORE_DATA": "more-data",
    "ROBUST_INTV": "other-robust",
    "LP_ADV": "other-robust",
}


def published_group(name: str) -> tuple[str | None, str]:
    """Group of a model named in ImageNet-X's published tables, and the rule that decided it.

    Rules, in order:
    1. the zero-shot CLIP models (:data:`PUBLISHED_CLIP`) -> ``clip-zeroshot``;
    2. ImageNet-X's own model types (``imagenet_x.model_types.model_types_map``):
       supervised on ImageNet-1K -> ``standard``, supervised on more data -> ``more-data``,
       robustness interventions and Lp-adversarial training -> ``other-robust``;
       self-supervised, low-accuracy, random-feature, pixel and nearest-neighbour models
       -> excluded (``None``);
    3. model-vs-human names the map lacks: ``*_l2_eps*`` and ``*SIN*`` (adversarial / stylised
       training) and ``*_clip_*_labels`` (ResNet-50 trained on ImageNet with CLIP-made labels,
       not zero-shot CLIP) -> ``other-robust``; ``BiTM*``, ``*swsl*``, ``*ssl*``,
       ``*noisy_student*`` and timm's ``vit_*`` (ImageNet-21k pretraining) -> ``more-data``;
       self-supervised names (SimCLR, MoCo, InsDis, PIRL, InfoMin) -> excluded;
       every other name -> ``standard`` (plain ImageNet-1K training).
    """
    from imagenet_x.model_types import SELFSUPERVISED_MODELS, model_types_map

    if name in PUBLISHED_CLIP:
        return CLIP_GROUP, "zero-shot CLIP (rule 1)"
    if name in model_types_map:
        t = model_types_map[name].name
        return _TYPE_TO_GROUP.get(t), f"ImageNet-X model type {t} (rule 2)"
    low = name.lower()
    if name in SELFSUPERVISED_MODELS or re.search(r"simclr|moco|insdis|pirl|infomin", low):
        return None, "self-supervised (rule 3)"
    if "_l2_eps" in low or "sin" in low.split("_") or "clip" in low:
        return "other-robust", "robustness intervention (rule 3)"
    if re.search(r"bitm|swsl|ssl|noisy_student|^vit_", low):
        return "more-data", "more training data (rule 3)"
    return BASELINE_GROUP, "ImageNet-1K supervised (rule 3)"


def published_factor_table(collection: str = "imagenet_testbed", which: str = "top",
                           factors: Sequence[str] | None = None) -> pd.DataFrame:
    """ImageNet-X's published per-factor accuracies as a long table.

    Columns: model, group, group_rule, family, source, collection, factor, factor_acc,
    overall_acc (ImageNet-X's ``average``: accuracy on the prototype-filtered val set).
    Excluded models (see :func:`published_group`) are dropped. Raises
    :class:`clipsafety.external.ExternalUnavailable` when the file cannot be had.
    """
    from clipsafety.external import fetch

    if collection not in PUBLISHED_COLLECTIONS:
        raise ValueError(f"collection {collection!r} is not published; expected one of "
                         f"{list(PUBLISHED_COLLECTIONS)}.")
    if which not in ("top", "multi"):
        raise ValueError(f"which={which!r}; expected 'top' or 'multi' (ImageNet-X variants).")
    factors = resolve_factors(factors)
    wide = pd.read_csv(fetch(IMAGENETX.format(which=which, collection=collection)))
    groups = wide["model"].map(published_group)
    wide["group"] = [g for g, _ in groups]
    wide["group_rule"] = [r for _, r in groups]
    wide = wide[wide["group"].notna()]
    wide["family"] = wide["model"].map(lambda m: PUBLISHED_CLIP.get(m, (_family_from_id(m),))[0])
    wide["source"] = wide["model"].map(lambda m: PUBLISHED_CLIP.get(m, (None, "ImageNet"))[1])
    wide.loc[wide["group"] == "more-data", "source"] = "more data"
    long = wide.melt(id_vars=["model", "group", "group_rule", "family", "source", "average"],
                     value_vars=factors, var_name="factor", value_name="factor_acc")
    long = long.rename(columns={"average": "overall_acc"})
    long.insert(5, "collection", collection)
    return long.reset_index(drop=True)


# ---- synthetic / real predictions -> per-factor table

def factor_annotations(record) -> pd.DataFrame | None:
    """Annotations for :func:`factors.factor_table` of one record.

    ImageNet val records (sample ids ending in ``ILSVRC2012_val_*.JPEG``) use ImageNet-X's own
    annotations from the package (``None``: ``which`` picks top/multi). Any other record uses
    its own per-sample ``meta`` (the 16 factor columns, as the synthetic world writes them),
    with ``file_name`` = the sample id's last path component and ``class`` = the target.
    """
    ids = [str(i).replace("\\", "/").rsplit("/", 1)[-1] for i in np.asarray(record.ids)]
    if ids and all(i.startswith("ILSVRC2012_val_") for i in ids[:20]):
        return None
    meta = record.meta
    from clipsafety.factors import FACTORS

    if meta is None or any(f not in meta.columns for f in FACTORS):
        have = [] if meta is None else list(meta.columns)
        raise ValueError(
            f"record of {record.manifest.get('model_id', '?')!r} has no factor annotations: "
            f"expected ImageNet val ids or meta with ImageNet-X's 16 factor columns, meta has "
            f"{have}. Use a dataset that annotates factors (imagenet:val, synth:id-test).")
    ann = pd.DataFrame({"file_name": ids, "class": np.asarray(record.targets, dtype=np.int64)})
    for f in FACTORS:
        ann[f] = np.asarray(meta[f]).astype(int)
    return ann


def factor_long(records: dict, factors: Sequence[str] | None = None,
                which: str = "top") -> pd.DataFrame:
    """Per-model per-factor accuracies from prediction records (:func:`factors.factor_table`).

    Columns: model, factor, factor_acc, overall_acc (the table's ``average``), error_ratio,
    n_flagged (images with the factor), then the catalog metadata (:func:`model_metadata`).
    """
    from clipsafety.factors import factor_long as _tidy
    from clipsafety.factors import factor_table, predictions_from_record

    factors = resolve_factors(factors)
    rows = []
    for mid, rec in records.items():
        ann = factor_annotations(rec)
        table = factor_table({mid: predictions_from_record(rec)}, which=which, annotations=ann,
                             worst_k=min(100, max(1, len(rec) // 10)))
        long = _tidy(table).rename(columns={"accuracy": "factor_acc", "average": "overall_acc"})
        flagged = (ann if ann is not None else _imagenet_x_flags(which, rec))[factors].sum()
        long = long[long["factor"].isin(factors)].copy()
        long["n_flagged"] = long["factor"].map(flagged).astype(int)
        rows.append(long)
    if not rows:
        return pd.DataFrame(columns=["model", "factor", "factor_acc", "overall_acc", "error_ratio",
                                     "n_flagged"])
    long = pd.concat(rows, ignore_index=True)
    return long.merge(model_metadata(list(records)), on="model", how="left")


def _imagenet_x_flags(which: str, record) -> pd.DataFrame:
    from clipsafety.factors import imagenet_x_annotations

    ann = imagenet_x_annotations(which)
    ids = {str(i).replace("\\", "/").rsplit("/", 1)[-1] for i in np.asarray(record.ids)}
    return ann[ann["file_name"].isin(ids)]


# --------------------------------------------------------------------------- shape bias

TEXTURE_VS_SHAPE = "rgeirhos/texture-vs-shape/raw-data/"
#: the published raw-decision files: (registry path under raw-data/, observer, group, note)
PUBLISHED_SHAPE_FILES = [
    *[(f"style-transfer-512-nomask-experiment/style-transfer-512-nomask-experiment_subject-"
       f"{i:02d}_session_1.csv", f"subject-{i:02d}", "human", "human observer")
      for i in range(1, 11)],
    ("style-transfer-512-nomask-experiment/style-transfer-512-nomask-experiment_alexnet_session_1.csv",
     "AlexNet (caffe)", "standard", "ImageNet-trained CNN, Geirhos et al. 2019"),
    ("style-transfer-512-nomask-experiment/style-transfer-512-nomask-experiment_googlenet_session_1.csv",
     "GoogLeNet", "standard", "ImageNet-trained CNN, Geirhos et al. 2019"),
    ("style-transfer-512-nomask-experiment/style-transfer-512-nomask-experiment_vgg_session_1.csv",
     "VGG-19 (caffe)", "standard", "ImageNet-trained CNN, Geirhos et al. 2019"),
    ("style-transfer-512-nomask-experiment-trained-CNNs/style-transfer-512-nomask-experiment_alexnet_session-1.csv",
     "AlexNet (torchvision)", "standard", "ImageNet-trained CNN, torchvision weights"),
    ("style-transfer-512-nomask-experiment-trained-CNNs/style-transfer-512-nomask-experiment_vgg16_session-1.csv",
     "VGG-16 (torchvision)", "standard", "ImageNet-trained CNN, torchvision weights"),
]


def published_shape_decisions() -> pd.DataFrame:
    """The texture-vs-shape raw decisions of humans and CNNs as one table in the published
    format (``subj, session, trial, rt, object_response, category, condition, imagename``)
    plus ``observer``, ``group`` (``human`` / ``standard``) and ``note``.

    Raises :class:`clipsafety.external.ExternalUnavailable` when a file cannot be had.
    """
    from clipsafety.external import fetch

    frames = []
    for path, observer, group, note in PUBLISHED_SHAPE_FILES:
        raw = pd.read_csv(fetch(TEXTURE_VS_SHAPE + path))
        raw["observer"], raw["group"], raw["note"] = observer, group, note
        frames.append(raw)
    return pd.concat(frames, ignore_index=True)


def shape_bias_by_observer(decisions: pd.DataFrame,
                           by: Sequence[str] = ("observer", "group", "note")) -> pd.DataFrame:
    """Shape bias per observer (:func:`shape.shape_bias_table`): ``by`` columns, shape_hits,
    texture_hits, trials (same-class trials dropped), shape_bias."""
    from clipsafety.shape import shape_bias_table

    return shape_bias_table(decisions, by=list(by)).reset_index()


def human_band(observers: pd.DataFrame, value: str = "shape_bias") -> tuple[float, float, float]:
    """``(min, mean, max)`` of ``value`` over the human observers (``group == "human"``)."""
    h = observers.loc[observers["group"] == "human", value].dropna()
    if h.empty:
        return (np.nan, np.nan, np.nan)
    return float(h.min()), float(h.mean()), float(h.max())


def shape_reading(record) -> str:
    """How a cue-conflict record's logits become decisions: ``"1000->16 mapping"`` for
    ImageNet-1k logits, ``"direct 16-way head"`` for 16 logits on the cue-conflict stimuli,
    ``"native label space"`` otherwise (the synthetic world, whose shape and texture classes
    are classes of the model's own label space)."""
    n = record.logits.shape[1]
    if n == 1000:
        return "1000->16 mapping"
    if n == 16 and _is_cue_conflict(record):
        return "direct 16-way head"
    return "native label space"


def _is_cue_conflict(record) -> bool:
    from clipsafety.shape import parse_cue_conflict_name

    try:
        parse_cue_conflict_name(str(np.asarray(record.ids)[0]))
        return True
    except ValueError:
        return False


def shape_bias_of_record(record) -> dict:
    """Shape bias of one cue-conflict prediction record, with its reading (:func:`shape_reading`).

    - ImageNet-1k logits: softmax over all 1000 classes (:func:`metrics.softmax`), then the
      model-vs-human 1000->16 mapping (:func:`shape.decisions_from_probs`).
    - 16 logits in :data:`shape.CUE_CONFLICT_CLASSES` order (a direct zero-shot head): argmax.
    - otherwise (synthetic world): argmax over the record's label subset; shape = target,
      texture = ``meta["texture_class"]`` / ``meta["texture_target"]`` (class index) or
      ``meta["texture"]`` (class index, or class name looked up in ``manifest["classes"]``).

    Returns ``{"shape_bias", "shape_hits", "texture_hits", "trials", "reading"}``.
    """
    from clipsafety import metrics
    from clipsafety.shape import CUE_CONFLICT_CLASSES, decisions_from_probs, shape_bias_table

    reading = shape_reading(record)
    names = [str(i).replace("\\", "/").rsplit("/", 1)[-1] for i in np.asarray(record.ids)]
    if reading != "native label space":
        if reading == "1000->16 mapping":
            dec = decisions_from_probs(metrics.softmax(record.logits), names)
        else:
            idx = np.asarray(record.logits).argmax(1)
            dec = pd.DataFrame({"imagename": names,
                                "object_response": [CUE_CONFLICT_CLASSES[i] for i in idx]})
        dec["_all"] = 0
        row = shape_bias_table(dec, by="_all").iloc[0]
        return {"shape_bias": float(row["shape_bias"]), "shape_hits": int(row["shape_hits"]),
                "texture_hits": int(row["texture_hits"]), "trials": int(row["trials"]),
                "reading": reading}
    L, _ = metrics.prepare(record.logits, None, record.label_subset)
    pred = L.argmax(1)
    if record.label_subset is not None:
        pred = np.asarray(record.label_subset)[pred]
    if record.meta is None or "texture" not in record.meta.columns:
        raise ValueError(
            f"record of {record.manifest.get('model_id', '?')!r} is not a cue-conflict record: "
            "expected cue-conflict stimulus ids, or meta with a 'texture' column (synth:cue-conflict).")
    shape = np.asarray(record.targets)
    meta = record.meta
    idx_col = next((c for c in ("texture_class", "texture_target") if c in meta.columns), None)
    texture = (meta[idx_col].to_numpy().astype(np.int64) if idx_col is not None else
               _as_index(meta["texture"], record.manifest.get("classes")))
    keep = shape != texture
    sh = int(np.count_nonzero(pred[keep] == shape[keep]))
    tx = int(np.count_nonzero(pred[keep] == texture[keep]))
    from clipsafety.shape import shape_bias

    return {"shape_bias": shape_bias(pred, shape, texture), "shape_hits": sh, "texture_hits": tx,
            "trials": int(keep.sum()), "reading": reading}


def _as_index(col, classes) -> np.ndarray:
    v = np.asarray(col)
    if v.dtype.kind in "iu":
        return v.astype(np.int64)
    if classes is None:
        raise ValueError("texture classes are names but the record's manifest has no 'classes' "
                         "to map them to indices.")
    pos = {c: i for i, c in enumerate(classes)}
    return np.array([pos.get(str(x), -1) for x in v], dtype=np.int64)


def shape_table(records: dict) -> pd.DataFrame:
    """One row per model: shape bias and hit counts (:func:`shape_bias_of_record`), with the
    catalog metadata joined."""
    rows = [{"model": mid, **shape_bias_of_record(rec)} for mid, rec in records.items()]
    df = pd.DataFrame(rows, columns=["model", "shape_bias", "shape_hits", "texture_hits", "trials",
                                     "reading"])
    return df.merge(model_metadata(list(records)), on="model", how="left")
