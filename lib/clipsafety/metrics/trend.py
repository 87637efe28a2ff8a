"""Accuracy-on-the-line trends and effective robustness (Taori et al. 2020 convention).

Conventions
-----------
- Accuracies are fractions in [0, 1].
- ``scale`` is ``"linear"``, ``"logit"`` (default) or ``"probit"``. Before the logit or probit
  transform, accuracies are clipped to ``[1e-4, 1 - 1e-4]`` so that 0 and 1 stay finite
  (the linear scale is not clipped).
- A trend is an ordinary least-squares line of ``T(y)`` on ``T(x)`` where ``T`` is the scale's
  transform; predictions are mapped back to accuracy with ``T``'s inverse, so residuals such
  as effective robustness are in accuracy units (fractions; multiply by 100 for points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

SCALES = ("linear", "logit", "probit")
CLIP_EPS = 1e-4


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale={scale!r} is not known; expected one of {SCALES}.")


def _as_acc(a, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr[None]
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr))[:5].tolist()
        raise ValueError(f"{name} has non-finite accuracies at positions {bad}; drop those models first.")
    if np.any((arr < 0) | (arr > 1)):
        bad = np.flatnonzero((arr < 0) | (arr > 1))[:5].tolist()
        raise ValueError(
            f"{name} must be accuracies as fractions in [0, 1]; positions {bad} are outside "
            f"(e.g. {arr[bad[0]]!r}). Divide percentages by 100."
        )
    return arr


def transform(acc, scale: str = "logit") -> np.ndarray:
    """Map accuracies (fractions) to the fitting scale; logit/probit clip to [1e-4, 1-1e-4]."""
    _check_scale(scale)
    a = np.asarray(acc, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        out = (a < 0) | (a > 1)
    if np.any(out):
        bad = np.flatnonzero(out)[:5].tolist()
        raise ValueError(f"transform expects accuracies as fractions in [0, 1]; positions {bad} "
                         f"are outside (e.g. {a.ravel()[bad[0]]!r}). Divide percentages by 100.")
    if scale == "linear":
        return a
    a = np.clip(a, CLIP_EPS, 1 - CLIP_EPS)
    return special.logit(a) if scale == "logit" else special.ndtri(a)


def inverse_transform(z, scale: str = "logit") -> np.ndarray:
    """Inverse of :func:`transform` (back to accuracy fractions)."""
    _check_scale(scale)
    z = np.asarray(z, dtype=np.float64)
    if scale == "linear":
        return z
    return special.expit(z) if scale == "logit" else special.ndtr(z)


@dataclass(frozen=True)
class Trend:
    """A fitted line ``T(y) = slope * T(x) + intercept`` on the scale ``scale``."""

    slope: float
    intercept: float
    scale: str = "logit"
    n: int = 0

    def predict(self, x_acc) -> np.ndarray:
        """Predicted y accuracy (fraction) at x accuracies (fractions)."""
        z = self.slope * transform(x_acc, self.scale) + self.intercept
        return inverse_transform(z, self.scale)


def _ols(tx: np.ndarray, ty: np.ndarray) -> tuple[float, float]:
    xm, ym = tx.mean(), ty.mean()
    sxx = np.sum((tx - xm) ** 2)
    if sxx <= 0:
        raise ValueError(
            "cannot fit a trend: all baseline models have the same x accuracy; "
            "use at least two models with different accuracies."
        )
    slope = float(np.sum((tx - xm) * (ty - ym)) / sxx)
    return slope, float(ym - slope * xm)


def _models(x_acc, y_acc, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The x and y accuracies of at least 2 models, checked (``what``: "fit" / "resample")."""
    x, y = _as_acc(x_acc, "x_acc"), _as_acc(y_acc, "y_acc")
    if x.shape != y.shape:
        raise ValueError(f"x_acc and y_acc must have the same shape, got {x.shape} and {y.shape}.")
    if x.size < 2:
        raise ValueError(f"cannot {what} a trend on {x.size} model(s); need at least 2.")
    return x, y


def fit_trend(x_acc, y_acc, scale: str = "logit") -> Trend:
    """Least-squares trend of y accuracy on x accuracy on the given scale (see module notes)."""
    _check_scale(scale)
    x, y = _models(x_acc, y_acc, "fit")
    slope, intercept = _ols(transform(x, scale), transform(y, scale))
    return Trend(slope, intercept, scale, int(x.size))


def effective_robustness(x_acc, y_acc, baseline_mask=None, scale: str = "logit") -> np.ndarray:
    """Effective robustness of every model: ``y - trend(x)`` as a fraction of accuracy.

    The trend is fitted on the models selected by the boolean ``baseline_mask`` (all models when
    ``None``), e.g. the standard ImageNet models, and evaluated at every model's x accuracy.
    """
    x, y = _as_acc(x_acc, "x_acc"), _as_acc(y_acc, "y_acc")
    if x.shape != y.shape:
        raise ValueError(f"x_acc and y_acc must have the same shape, got {x.shape} and {y.shape}.")
    mask = np.ones(x.shape, bool) if baseline_mask is None else np.asarray(baseline_mask, bool)
    if mask.shape != x.shape:
        raise ValueError(f"baseline_mask must have shape {x.shape} (one flag per model), got {mask.shape}.")
    trend = fit_trend(x[mask], y[mask], scale)
    return y - trend.predict(x)


def trend_resamples(x_acc, y_acc, scale: str = "logit", n_boot: int = 1000,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(slopes, intercepts)`` of the line refitted on ``n_boot`` resamples of the models
    (rows drawn with replacement, ``numpy.random.default_rng(seed)`` in bounded blocks as
    :func:`clipsafety.metrics.stats.resample_blocks`), on the scale ``scale``. Resamples whose
    x accuracies are all equal have no line and are left out, so fewer than ``n_boot`` pairs
    can come back (in draw order). The one resampling of a trend: :func:`trend_band` and
    :func:`effective_robustness_ci` read it."""
    from .stats import check_n_boot, resample_blocks

    n_boot = check_n_boot(n_boot)
    x, y = _models(x_acc, y_acc, "resample")
    tx, ty = transform(x, scale), transform(y, scale)
    floor = 1e-12 * max(1.0, float(np.var(tx)) * x.size)
    slopes, inters = [], []
    for idx in resample_blocks(x.size, n_boot, seed):
        bx, by = tx[idx], ty[idx]
        xm, ym = bx.mean(1, keepdims=True), by.mean(1, keepdims=True)
        sxx = np.sum((bx - xm) ** 2, 1)
        ok = sxx > floor
        slope = np.sum((bx - xm) * (by - ym), 1)[ok] / sxx[ok]
        slopes.append(slope)
        inters.append(ym[ok, 0] - slope * xm[ok, 0])
    return np.concatenate(slopes), np.concatenate(inters)


def trend_band(
    x_acc, y_acc, grid, scale: str = "logit", n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trend line on ``grid`` (``mid``, the fit on all models) and a percentile bootstrap band.

    Models are resampled with replacement ``n_boot`` times (:func:`trend_resamples`;
    resamples whose x accuracies are all equal are skipped, ``n_boot`` in [1, 1000000]).
    ``lo``/``hi`` are the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the
    predicted accuracy per grid point.
    """
    from .stats import check_level

    level = check_level(level)
    g = np.asarray(grid, dtype=np.float64)
    mid = fit_trend(x_acc, y_acc, scale).predict(g)
    slope, inter = trend_resamples(x_acc, y_acc, scale, n_boot, seed)
    pred = inverse_transform(slope[:, None] * transform(g, scale)[None, :] + inter[:, None], scale)
    q = [(1 - level) / 2, (1 + level) / 2]
    lo, hi = np.quantile(pred, q, axis=0)
    return lo, mid, hi


#: how :func:`effective_robustness_ci` treats the baseline line
LINE_MODES = ("resampled", "fixed")


def effective_robustness_ci(x_acc: float, y_acc: float, x_boot, y_boot, base_x, base_y,
                            scale: str = "logit", seed: int = 0, level: float = 0.95,
                            line: str = "resampled") -> tuple[float, float, float]:
    """``(er, lo, hi)``: one model's effective robustness ``y_acc - line(x_acc)`` (fractions)
    and a percentile bootstrap interval that carries the uncertainty of both sides.

    ``x_acc``, ``y_acc``: the model's ID and shift accuracies; ``x_boot``, ``y_boot``: the
    same accuracies on resamples of the model's own evaluation images (drawn by the caller, one
    pair per resample). ``base_x``, ``base_y``: the accuracies of the models that define the
    line (the baseline). ``line="resampled"`` (the convention): resample ``b`` also refits the
    line on a resample of the baseline models (:func:`trend_resamples`, ``seed``), so the
    interval is the joint bootstrap ``y_boot[b] - line_b(x_boot[b])``; ``line="fixed"``
    holds the line at its fit on all baseline models (the images' uncertainty only). The
    point estimate is the same for both. Resamples whose baseline has no line (all x equal)
    are dropped, and as many image resamples with them (the last ones: the draws are
    independent, so which ones does not matter)."""
    from .stats import check_level

    if line not in LINE_MODES:
        raise ValueError(f"line={line!r}; expected one of {LINE_MODES}.")
    level = check_level(level)
    xb, yb = _as_acc(x_boot, "x_boot"), _as_acc(y_boot, "y_boot")
    if xb.shape != yb.shape or xb.ndim != 1 or xb.size < 1:
        raise ValueError(f"x_boot and y_boot must be 1-D, non-empty and of equal length (one pair "
                         f"per resample of the images), got {xb.shape} and {yb.shape}.")
    fit = fit_trend(base_x, base_y, scale)
    er = float(_as_acc(y_acc, "y_acc")[0] - fit.predict(_as_acc(x_acc, "x_acc"))[0])
    if line == "fixed":
        vals = yb - fit.predict(xb)
    else:
        slope, inter = trend_resamples(base_x, base_y, scale, xb.size, seed)
        k = slope.size
        vals = yb[:k] - inverse_transform(slope * transform(xb[:k], scale) + inter, scale)
    lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2])
    return er, float(lo), float(hi)
