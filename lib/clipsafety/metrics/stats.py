"""Bootstrap intervals and correlations.

Conventions: percentile bootstrap; rows of all arrays are resampled jointly with
``numpy.random.default_rng(seed).integers``; ``level`` is the central coverage (0.95 gives the
2.5% and 97.5% quantiles). The point estimate is the metric on the original data.

Bounds: ``n_boot`` is an integer in [1, :data:`MAX_N_BOOT`]; the resample indices are drawn in
blocks of at most :data:`BLOCK` numbers (the same draws as one ``(n_boot, n)`` array, so the
values do not depend on the block size) and memory stays bounded whatever ``n_boot`` is. A
bootstrap needs at least 2 rows: every resample of one row is that row, and its "interval" would
be the value itself; :func:`bootstrap_ci` of one row warns and returns ``(estimate, nan, nan)``
(the convention of :func:`clipsafety.summaries.bootstrap_mean`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

#: most resamples a bootstrap accepts (time grows with them; the chapters allow far fewer)
MAX_N_BOOT = 1_000_000
#: resample indices drawn at once (32 MB of int64)
BLOCK = 1 << 22


def check_n_boot(n_boot) -> int:
    """``n_boot`` as an int; a ``ValueError`` unless it is an integer in [1, :data:`MAX_N_BOOT`]."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or not 1 <= n_boot <= MAX_N_BOOT:
        raise ValueError(f"n_boot must be an integer >= 1 and <= {MAX_N_BOOT} (bootstrap resamples; "
                         f"1000 is usual), got {n_boot!r:.80}.")
    return int(n_boot)


def check_level(level) -> float:
    """``level`` as a float; a ``ValueError`` unless it is in (0, 1)."""
    try:
        ok = 0 < float(level) < 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"level must be in (0, 1) (0.95 for a 95% interval), got {level!r:.80}.")
    return float(level)


def resample_blocks(n: int, n_boot: int, seed: int):
    """Index arrays ``[k, n]`` of rows resampled with replacement, ``n_boot`` rows in all, in
    blocks of at most :data:`BLOCK` indices: the same draws as
    ``default_rng(seed).integers(0, n, size=(n_boot, n))``."""
    if n < 1:
        raise ValueError("cannot bootstrap an empty sample.")
    n_boot = check_n_boot(n_boot)
    rng = np.random.default_rng(seed)
    step = max(1, BLOCK // n)
    for s in range(0, n_boot, step):
        yield rng.integers(0, n, size=(min(step, n_boot - s), n))


def _one_row_warning(what: str) -> None:
    import warnings

    warnings.warn(f"{what} got 1 row: every resample of one row is that row, so there is no "
                  "interval (it would be the value itself whatever its uncertainty); the interval "
                  "is returned as (nan, nan). Collect at least 2 rows for an interval.",
                  stacklevel=3)


def bootstrap_ci(
    metric_fn: Callable[..., float], *arrays, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """``(estimate, lo, hi)`` of ``metric_fn(*arrays)`` by resampling rows of the arrays jointly.

    Resamples on which ``metric_fn`` returns NaN (e.g. a single class) are ignored; when none
    is left, or there is only 1 row (with a warning), the interval is ``(nan, nan)``.
    ``n_boot`` is an integer in [1, :data:`MAX_N_BOOT`].
    """
    if not callable(metric_fn):
        raise ValueError(f"bootstrap_ci's first argument must be the metric function (e.g. "
                         f"np.mean), got {type(metric_fn).__name__}; call bootstrap_ci(fn, values).")
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array to resample: bootstrap_ci(fn, values).")
    n_boot = check_n_boot(n_boot)
    level = check_level(level)
    arrs = [np.asarray(a) for a in arrays]
    for i, a in enumerate(arrs):
        if a.ndim == 0:
            raise ValueError(f"array {i} is a scalar; bootstrap_ci resamples rows of arrays.")
    n = arrs[0].shape[0]
    if n < 1:
        raise ValueError("cannot bootstrap an empty sample (0 rows); pass at least one value.")
    for i, a in enumerate(arrs):
        if a.shape[0] != n:
            raise ValueError(f"array {i} has {a.shape[0]} rows, expected {n} like array 0.")
    est = float(metric_fn(*arrs))
    if n == 1:
        _one_row_warning("bootstrap_ci")
        return est, float("nan"), float("nan")
    vals = np.array([float(metric_fn(*[a[ix] for a in arrs]))
                     for block in resample_blocks(n, n_boot, seed) for ix in block])
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return est, float("nan"), float("nan")
    lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2])
    return est, float(lo), float(hi)


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc = x - x.mean(-1, keepdims=True)
    yc = y - y.mean(-1, keepdims=True)
    den = np.sqrt(np.sum(xc * xc, -1) * np.sum(yc * yc, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(xc * yc, -1) / den


def correlation(
    x, y, method: str = "pearson", n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """``(r, lo, hi)``: Pearson or Spearman correlation with a percentile bootstrap interval.

    ``r`` equals ``scipy.stats.pearsonr`` / ``spearmanr`` (average ranks for ties); pairs are
    resampled jointly; degenerate resamples (constant x or y) are ignored.
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method={method!r:.80}; expected 'pearson' or 'spearman'.")
    n_boot = check_n_boot(n_boot)
    level = check_level(level)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length, got {x.shape} and {y.shape}.")
    if x.size < 3:
        raise ValueError(f"need at least 3 pairs for a correlation, got {x.size}.")
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.all():
        raise ValueError(f"x or y is not finite at positions {np.flatnonzero(~ok)[:5].tolist()}; drop them first.")
    if method == "pearson":
        r = float(stats.pearsonr(x, y)[0])
    else:
        r = float(stats.spearmanr(x, y)[0])
    parts = []
    for idx in resample_blocks(x.size, n_boot, seed):
        bx, by = x[idx], y[idx]
        if method == "spearman":
            bx, by = stats.rankdata(bx, axis=1), stats.rankdata(by, axis=1)
        parts.append(_pearson_rows(bx, by))
    vals = np.concatenate(parts)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return r, float("nan"), float("nan")
    lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2])
    return r, float(lo), float(hi)
