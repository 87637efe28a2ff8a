"""The robustness landscape: accuracy under shift against ImageNet accuracy.

Pure table-building on top of :mod:`clipsafety.metrics.trend` (fits, bands, effective
robustness) and :mod:`clipsafety.published` (the tidy published tables).
Convention (Taori et al. 2020): per shift, a line is fitted to the *baseline* models' shift
accuracy against their ImageNet accuracy on the chosen scale (default logit); a model's
effective robustness is its shift accuracy minus the line's prediction at its ImageNet
accuracy, in accuracy points (fractions here; charts show percent). The x axis is ImageNet
top-1 over all 1000 classes for every source (the only x every source publishes), also for
the 200-class ImageNet-R/A and the 113-class ObjectNet y axes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clipsafety.metrics import effective_robustness, fit_trend, trend_band


def fit_landscape(long: pd.DataFrame, baseline_groups=("standard",),
                  baseline_sources=("timm", "imagenet-testbed"), scale: str = "logit",
                  n_boot: int = 1000, seed: int = 0, grid_points: int = 60):
    """Fit every shift's baseline trend; return ``(points, bands, fits)``.

    points: ``long`` plus ``baseline`` (bool), ``predicted`` and ``eff_rob`` columns.
    bands: per shift a grid of ImageNet accuracies with ``lo, mid, hi`` of the trend.
    fits: per shift ``slope, intercept, n_baseline, scale``.
    """
    pts, bands, fits = [], [], []
    for shift, df in long.groupby("shift", sort=False):
        df = df.copy()
        base = df["group"].isin(baseline_groups) & df["source"].isin(baseline_sources)
        if base.sum() < 3:
            raise ValueError(
                f"shift {shift!r}: only {int(base.sum())} baseline models from "
                f"{list(baseline_sources)} in groups {list(baseline_groups)}; need at least 3. "
                "Add a baseline source that reports this shift."
            )
        x, y = df["imagenet"].to_numpy(), df["shift_acc"].to_numpy()
        trend = fit_trend(x[base.to_numpy()], y[base.to_numpy()], scale)
        df["baseline"] = base.to_numpy()
        df["predicted"] = trend.predict(x)
        df["eff_rob"] = effective_robustness(x, y, base.to_numpy(), scale)
        pts.append(df)
        lo_x, hi_x = np.quantile(x, [0.0, 1.0])
        grid = np.linspace(max(lo_x, 0.02), min(hi_x, 0.98), grid_points)
        lo, mid, hi = trend_band(x[base.to_numpy()], y[base.to_numpy()], grid, scale=scale,
                                 n_boot=n_boot, seed=seed)
        bands.append(pd.DataFrame({"shift": shift, "x": grid, "lo": lo, "mid": mid, "hi": hi}))
        fits.append({"shift": shift, "slope": trend.slope, "intercept": trend.intercept,
                     "n_baseline": trend.n, "scale": scale})
    return (pd.concat(pts, ignore_index=True), pd.concat(bands, ignore_index=True),
            pd.DataFrame(fits))


def effective_robustness_table(points: pd.DataFrame, groups=None) -> pd.DataFrame:
    """One row per model: ImageNet accuracy and effective robustness per shift (+ mean)."""
    df = points if groups is None else points[points["group"].isin(groups)]
    idx = ["source", "model", "group", "imagenet"]
    wide = df.pivot_table(index=idx, columns="shift", values="eff_rob", aggfunc="first")
    wide.columns = [f"ER {c}" for c in wide.columns]
    wide["ER mean"] = wide.mean(axis=1)
    return wide.reset_index().sort_values("ER mean", ascending=False, ignore_index=True)


def group_summary(points: pd.DataFrame) -> pd.DataFrame:
    """Median effective robustness per (shift, group) with the number of models."""
    return (points.groupby(["shift", "group"])["eff_rob"]
            .agg(median="median", n="size").reset_index())
