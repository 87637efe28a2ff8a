"""Group-level summaries shared by the studies: means, differences and paired changes of a
per-model value, each with a percentile bootstrap interval over models.

Pure functions of tidy tables (one row per model, or per model and factor, with a ``group``
column); the resampling itself is :func:`clipsafety.metrics.bootstrap_ci`. Conventions are on
the book's "Methods and conventions" page: intervals are percentile bootstrap intervals over
models (95% unless ``level`` says otherwise); a group difference resamples the two groups'
models jointly with their group flags; NaNs are dropped first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from clipsafety.groups import CLIP_ZEROSHOT, FT_GROUPS


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


def compare_to_groups(df: pd.DataFrame, value: str, target: str = CLIP_ZEROSHOT,
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


def paired_changes(df: pd.DataFrame, value: str = "shape_bias") -> pd.DataFrame:
    """Fine-tuned models with a known zero-shot parent in ``df``: columns pair, model_before,
    model_after, group_before, group_after, before, after (the ``value`` of each)."""
    if "parent" not in df.columns:
        return pd.DataFrame(columns=["pair", "model_before", "model_after", "group_before",
                                     "group_after", "before", "after"])
    by_id = df.set_index("model")
    rows = []
    for r in df[df["group"].isin(FT_GROUPS)].itertuples(index=False):
        parent = getattr(r, "parent", None)
        if isinstance(parent, str) and parent not in by_id.index and f"zoo:{parent}" in by_id.index:
            parent = f"zoo:{parent}"  # the zoo catalog names parents without the prefix
        if not isinstance(parent, str) or parent not in by_id.index:
            continue
        rows.append({"pair": f"{parent} -> {r.model}", "model_before": parent,
                     "model_after": r.model, "group_before": by_id.loc[parent, "group"],
                     "group_after": r.group, "before": float(by_id.loc[parent, value]),
                     "after": float(getattr(r, value))})
    return pd.DataFrame(rows, columns=["pair", "model_before", "model_after", "group_before",
                                       "group_after", "before", "after"])


def _controlled(values: np.ndarray, xs: np.ndarray, is_target: np.ndarray) -> float:
    ref = ~is_target
    if is_target.sum() == 0 or ref.sum() < 3 or np.unique(xs[ref]).size < 2:
        return np.nan
    slope, icpt = np.polyfit(xs[ref], values[ref], 1)
    return float(np.mean(values[is_target] - (icpt + slope * xs[is_target])))


def accuracy_controlled_difference(df: pd.DataFrame, x: str, value: str, target: str,
                                   reference: Sequence[str], n_boot: int = 1000, seed: int = 0,
                                   level: float = 0.95) -> tuple[float, float, float]:
    """The ``target`` group's mean ``value`` minus the ``reference`` groups' least-squares line
    of ``value`` on ``x`` at each target model's ``x`` (a comparison at equal accuracy), with a
    percentile bootstrap interval resampling the pooled models jointly with their group flags.
    NaN when the reference has fewer than three models or one x."""
    from clipsafety import metrics

    d = df[df["group"].isin([target, *reference])].dropna(subset=[x, value])
    if d.empty:
        return np.nan, np.nan, np.nan
    return metrics.bootstrap_ci(_controlled, d[value].to_numpy(float), d[x].to_numpy(float),
                                (d["group"] == target).to_numpy(), n_boot=n_boot, seed=seed,
                                level=level)


def leave_one_out(a: pd.Series, b: pd.Series) -> pd.DataFrame:
    """``mean(a) - mean(b)`` with each single model (index value) of either side left out in
    turn: columns left_out, side, estimate, full. Shows whether one model carries a group
    difference (a single-model outlier)."""
    a, b = a.dropna(), b.dropna()
    if a.empty or b.empty:
        return pd.DataFrame(columns=["left_out", "side", "estimate", "full"])
    full = float(a.mean() - b.mean())
    rows = []
    for side, s, other in (("a", a, b), ("b", b, a)):
        if len(s) < 2:
            continue
        for m in s.index:
            rest = s.drop(m).mean()
            est = rest - other.mean() if side == "a" else other.mean() - rest
            rows.append({"left_out": m, "side": side, "estimate": float(est), "full": full})
    return pd.DataFrame(rows, columns=["left_out", "side", "estimate", "full"])


def group_outliers(df: pd.DataFrame, value: str, by: Sequence[str] = (), model: str = "model",
                   threshold: float = 5.0) -> pd.DataFrame:
    """Single-model outliers in group means. Per (``by``, group): the mean, the median, the
    model whose removal moves the mean most, the mean without it, and ``outlier`` = True when
    that model lies more than ``threshold`` scaled median absolute deviations (MAD x 1.4826, of
    the other models) from the other models' median. Groups of fewer than three models are not
    checked."""
    rows = []
    keys = list(by) + ["group"]
    for key, part in df.dropna(subset=[value]).groupby(keys, sort=False):
        v = part.set_index(model)[value]
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)), n_models=len(v),
                   mean=float(v.mean()), median=float(v.median()), most_influential=None,
                   value_of_it=np.nan, mean_without=np.nan, robust_z=np.nan, outlier=False)
        if len(v) >= 3:
            top = (v - v.mean()).abs().idxmax()
            rest = v.drop(top)
            mad = 1.4826 * float((rest - rest.median()).abs().median())
            z = abs(float(v[top]) - float(rest.median())) / max(mad, 1e-9)
            row.update(most_influential=top, value_of_it=float(v[top]),
                       mean_without=float(rest.mean()), robust_z=z, outlier=bool(z > threshold))
        rows.append(row)
    return pd.DataFrame(rows, columns=keys + ["n_models", "mean", "median", "most_influential",
                                              "value_of_it", "mean_without", "robust_z", "outlier"])
