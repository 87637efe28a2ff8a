"""Accuracy and calibration from logits.

Conventions (the book's "Methods and conventions" page, book/methods.md: calibration)
-------------------------------------------------------------------------------------
- ``logits``: float array ``[N, C]`` over the model's *full* label space (float16 is upcast to
  float32; float32 and float64 are kept).
- ``targets``: int array ``[N]`` indexing the same label space. ``-1`` marks OOD samples and is an
  error here (accuracy and calibration are defined on ID samples only).
- ``label_subset``: ``None`` (all columns) or the sorted column indices a dataset allows
  (ImageNet-R's 200). Logits are restricted to those columns *before* argmax and *before*
  softmax; targets are mapped to their position in the subset, and a target outside the subset
  is an error.
- Non-finite logits (NaN, +inf, -inf) raise ``ValueError`` naming the first offending rows.
- Probabilities are not logits: where a softmax is taken (:func:`softmax`, :func:`row_stats` and
  the metrics built on it, :func:`fit_temperature`), an array whose every row lies in [0, 1] and
  sums to 1 (within :data:`PROB_SUM_TOL` of its dtype) raises ``ValueError`` (the softmax would be
  applied twice). Pass ``np.log(probabilities)`` if probabilities are all you have.
- Empty input (0 rows) raises ``ValueError``: a mean over no samples is not a metric.
- ``temperature``: logits are divided by it before the softmax (1.0 leaves them unchanged).
- Rows are processed in chunks so memory stays at a few tens of MB over the input.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import numpy as np

CHUNK = 4096


# ----------------------------------------------------------------------------- validation
def _check_subset(label_subset, n_cols: int) -> np.ndarray | None:
    if label_subset is None:
        return None
    sub = np.asarray(label_subset)
    if sub.ndim != 1 or sub.size == 0 or not np.issubdtype(sub.dtype, np.integer):
        raise ValueError(
            f"label_subset must be a non-empty 1-D list of integer column indices, got {label_subset!r:.80}."
        )
    if np.any(np.diff(sub) <= 0):
        raise ValueError("label_subset must be sorted and without repeats (e.g. sorted(set(subset))).")
    if sub[0] < 0 or sub[-1] >= n_cols:
        raise ValueError(
            f"label_subset indexes columns {sub[0]}..{sub[-1]} but the logits have {n_cols} columns."
        )
    return sub.astype(np.intp)


def check_logits(logits, name: str = "logits", check: bool = True) -> np.ndarray:
    """Return ``logits`` as a 2-D float32/float64 array; raise on bad shape or non-finite rows."""
    L = np.asarray(logits)
    if L.ndim != 2:
        raise ValueError(f"{name} must be 2-D [samples, classes], got shape {L.shape}.")
    if not np.issubdtype(L.dtype, np.floating) or L.dtype == np.float16:
        L = L.astype(np.float32)
    if not check:
        return L
    # One cheap pass: a row sum is non-finite iff the row holds a NaN/inf (or overflows, which the
    # exact isfinite check on the flagged rows then clears).
    with np.errstate(over="ignore", invalid="ignore"):
        rs = L.sum(axis=1)
    flagged = np.flatnonzero(~np.isfinite(rs))
    if flagged.size:
        bad = flagged[~np.isfinite(L[flagged]).all(axis=1)]
        if bad.size:
            _raise_nonfinite(bad, name)
    return L


def prepare(logits, targets=None, label_subset=None, *, allow_ood: bool = False, check: bool = True):
    """Validated ``(logits_restricted, targets_mapped)``; see the module conventions.

    ``targets_mapped`` is ``None`` when ``targets`` is ``None``. With ``allow_ood`` targets of -1
    are kept as -1 (for OOD scoring), otherwise they are an error. ``check=False`` skips the
    finiteness pass (for callers that detect non-finite rows themselves).
    """
    L = check_logits(logits, check=check)
    sub = _check_subset(label_subset, L.shape[1])
    if sub is not None and sub.size != L.shape[1]:
        L = L[:, sub]
    if targets is None:
        return L, None
    t = np.asarray(targets)
    if t.ndim != 1 or t.shape[0] != L.shape[0]:
        raise ValueError(f"targets must be 1-D with one entry per logits row ({L.shape[0]}), got {t.shape}.")
    if not np.issubdtype(t.dtype, np.integer):
        if np.issubdtype(t.dtype, np.floating) and np.all(t == np.round(t)):
            t = t.astype(np.int64)
        else:
            raise ValueError(f"targets must be integer class indices, got dtype {t.dtype}.")
    ood = t == -1
    if ood.any() and not allow_ood:
        raise ValueError(
            f"targets hold {int(ood.sum())} OOD samples (-1), first at rows {np.flatnonzero(ood)[:5].tolist()}; "
            "accuracy and calibration need ID samples only: select rows with targets >= 0 first."
        )
    if sub is None:
        badm = (~ood) & ((t < 0) | (t >= L.shape[1]))
        if badm.any():
            r = np.flatnonzero(badm)[:5]
            raise ValueError(
                f"targets {t[r].tolist()} at rows {r.tolist()} are outside the label space 0..{L.shape[1] - 1}."
            )
        return L, t.astype(np.intp)
    pos = np.searchsorted(sub, t)
    pos_c = np.minimum(pos, sub.size - 1)
    inside = sub[pos_c] == t
    badm = (~ood) & ~inside
    if badm.any():
        r = np.flatnonzero(badm)[:5]
        raise ValueError(
            f"targets {t[r].tolist()} at rows {r.tolist()} are not in label_subset "
            f"({sub.size} classes, {sub[:3].tolist()}...). Check that the record's label subset "
            "matches the dataset's targets."
        )
    return L, np.where(ood, -1, pos_c).astype(np.intp)


def check_temperature(temperature) -> float:
    """``temperature`` as a float; a ``ValueError`` unless it is a positive finite number."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        t = float("nan")
    if not (np.isfinite(t) and t > 0):
        raise ValueError(f"temperature must be a positive finite number (logits are divided by "
                         f"it; 1.0 leaves them unchanged), got {temperature!r}.")
    return t


#: row-sum tolerance of :func:`refuse_probabilities` per dtype (the rounding of a softmax stored
#: in that dtype; genuine logits are not all in [0, 1] with rows summing to 1)
PROB_SUM_TOL = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-5, np.dtype(np.float16): 1e-2}


def _is_probability_block(x: np.ndarray, tol: float) -> bool:
    if x.size == 0:
        return True
    if x.min() < 0 or x.max() > 1:
        return False
    return bool(np.all(np.abs(x.sum(1, dtype=np.float64) - 1.0) <= tol))


def refuse_probabilities(logits, name: str = "logits") -> None:
    """Raise ``ValueError`` when every row of ``logits`` (at least 2 columns) lies in [0, 1]
    and sums to 1 within :data:`PROB_SUM_TOL`: those are probabilities, and a softmax over
    them gives meaningless confidences, NLL and Brier. One row is checked first, so genuine
    logits cost O(columns)."""
    L = np.asarray(logits)
    if L.ndim != 2 or L.shape[0] == 0 or L.shape[1] < 2 or not np.issubdtype(L.dtype, np.floating):
        return
    tol = PROB_SUM_TOL.get(L.dtype, 1e-6)
    if not _is_probability_block(L[:1], tol):
        return
    for sl in _chunks(L.shape[0]):
        if not _is_probability_block(L[sl], tol):
            return
    raise ValueError(
        f"{name} look like probabilities, not logits: every one of the {L.shape[0]} rows lies in "
        f"[0, 1] and sums to 1 (within {tol:g}), so a softmax would be applied twice and the "
        "confidences, NLL and Brier score would be meaningless. Pass the model's logits "
        "(pre-softmax scores), or np.log(probabilities) if probabilities are all you have.")


#: most confidence bins :func:`ece` and :func:`adaptive_ece` accept (memory grows with them;
#: more bins than samples leave most bins empty)
MAX_BINS = 1_000_000


def check_n_bins(n_bins) -> int:
    """``n_bins`` as an int; a ``ValueError`` unless it is an integer in [1, :data:`MAX_BINS`]."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or not 1 <= n_bins <= MAX_BINS:
        raise ValueError(f"n_bins must be an integer >= 1 and <= {MAX_BINS} (confidence bins of the "
                         f"calibration error; the book uses 15), got {n_bins!r:.80}.")
    return int(n_bins)


def _require_rows(n: int, what: str) -> None:
    if n == 0:
        raise ValueError(f"{what} of an empty set is undefined (0 samples); pass at least one row "
                         "of logits with its target.")


def _chunks(n: int, size: int = CHUNK) -> Iterator[slice]:
    for s in range(0, n, size):
        yield slice(s, min(s + size, n))


# ----------------------------------------------------------------------------- softmax family
def softmax(logits, label_subset=None, temperature: float = 1.0) -> np.ndarray:
    """Row softmax of ``logits / temperature`` over the subset's columns ``[N, len(subset)]``."""
    temperature = check_temperature(temperature)
    L, _ = prepare(logits, None, label_subset)
    refuse_probabilities(logits)
    out = np.empty(L.shape, dtype=L.dtype)
    for sl in _chunks(L.shape[0]):
        z = L[sl] / temperature if temperature != 1.0 else L[sl]
        e = np.exp(z - z.max(1, keepdims=True))
        out[sl] = e / e.sum(1, keepdims=True)
    return out


ALL_STATS = ("max_logit", "logsumexp", "confidence", "pred", "log_p_true", "brier")


def _raise_nonfinite(bad: np.ndarray, name: str = "logits") -> None:
    raise ValueError(
        f"{name} contain NaN or inf in {bad.size} row(s), first rows {bad[:5].tolist()}. "
        "Check the inference run for those samples (overflow in float16? a broken image?) "
        "and re-run or drop them before computing metrics."
    )


def row_stats(logits, targets=None, label_subset=None, temperature: float = 1.0, need=ALL_STATS) -> dict:
    """One chunked pass over the logits: per-row quantities every metric needs.

    Returns float64 arrays ``max_logit``, ``logsumexp`` (of ``logits / T``), ``confidence`` (max
    softmax probability), ``pred`` (argmax position, ties to the lowest index) and, when
    targets are given, ``correct``, ``log_p_true`` and ``brier`` (sum over classes of
    ``(p_k - 1[k = y])**2``). ``need`` limits the work to the named quantities.
    Probabilities passed as logits are an error (:func:`refuse_probabilities`).
    Written by hand rather than with torch/scipy because one fused, cache-sized pass (the row
    max, one exp, float32 pairwise sums) is what makes the suite fit in well under a second.
    """
    check_temperature(temperature)
    L, t = prepare(logits, targets, label_subset, check=False)
    refuse_probabilities(logits)
    n, c = L.shape
    need = set(need)
    if t is None:
        need -= {"log_p_true", "brier"}
    inv_t = 1.0 / float(temperature)
    if not (np.isfinite(inv_t) and inv_t > 0):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}.")
    out = {k: np.empty(n, dtype=np.intp if k == "pred" else np.float64) for k in need}
    chunk = max(1, min(n, (1 << 19) // max(c, 1)))  # ~2 MB of float32 per chunk: stays in cache
    buf = np.empty((chunk, c), dtype=L.dtype)
    bad = []
    rows = np.arange(chunk)
    with np.errstate(over="ignore", invalid="ignore"):
        _row_pass(L, t, need, inv_t, out, buf, rows, bad)
    if bad:
        _raise_nonfinite(np.concatenate(bad))
    if t is not None and "pred" in need:
        out["correct"] = out["pred"] == t
    return out


def _row_pass(L, t, need, inv_t, out, buf, rows, bad) -> None:
    n, chunk = L.shape[0], buf.shape[0]
    for s0 in range(0, n, chunk):
        x = L[s0 : s0 + chunk]
        k = x.shape[0]
        b = buf[:k]
        am = x.argmax(1)
        m = x[rows[:k], am]
        mn = x.min(1)
        np.subtract(x, m[:, None], out=b)
        if inv_t != 1.0:
            b *= L.dtype.type(inv_t)
        if t is not None:
            dy = b[rows[:k], t[s0 : s0 + k]].astype(np.float64)
        np.exp(b, out=b)
        ssum = b.sum(1).astype(np.float64)
        fin = np.isfinite(m) & np.isfinite(mn) & np.isfinite(ssum)
        if not fin.all():
            bad.append(s0 + np.flatnonzero(~fin))
            continue
        logs = np.log(ssum)
        sl = slice(s0, s0 + k)
        if "max_logit" in need:
            out["max_logit"][sl] = m
        if "logsumexp" in need:
            out["logsumexp"][sl] = m * inv_t + logs
        if "confidence" in need:
            out["confidence"][sl] = 1.0 / ssum
        if "pred" in need:
            out["pred"][sl] = am
        if "log_p_true" in need:
            out["log_p_true"][sl] = dy - logs
        if "brier" in need:
            sq = np.einsum("ij,ij->i", b, b).astype(np.float64) / (ssum * ssum)
            out["brier"][sl] = sq - 2.0 * np.exp(dy - logs) + 1.0


def confidences(logits, targets=None, label_subset=None, temperature: float = 1.0):
    """``(confidence, correct)``: max softmax probability and whether argmax equals the target.

    ``correct`` is ``None`` without targets.
    """
    st = row_stats(logits, targets, label_subset, temperature, need=("confidence", "pred"))
    return st["confidence"], st.get("correct")


def accuracy(logits, targets, label_subset=None) -> float:
    """Top-1 accuracy as a fraction in [0, 1] (argmax over the subset's columns; ties go to the
    lowest column index, as ``numpy.argmax``)."""
    L, t = prepare(logits, targets, label_subset)
    if L.shape[0] == 0:
        raise ValueError("accuracy of an empty set is undefined (0 samples).")
    return float(np.mean(L.argmax(1) == t))


def _conf_correct(confidence, correct) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(confidence, dtype=np.float64)
    k = np.asarray(correct).astype(np.float64)
    if c.ndim != 1 or c.shape != k.shape:
        raise ValueError(f"confidence and correct must be 1-D of equal length, got {c.shape} and {k.shape}.")
    if c.size == 0:
        raise ValueError("calibration error of an empty set is undefined (0 samples).")
    if not np.all(np.isfinite(c)) or c.min() < 0 or c.max() > 1:
        raise ValueError("confidence must hold finite probabilities in [0, 1] (the max softmax probability).")
    return c, k


def ece(confidence, correct, n_bins: int = 15) -> float:
    """Top-label expected calibration error with ``n_bins`` equal-width bins.

    Bins are ``(lo, hi]`` with the first bin closed at 0 (``[0, 1/15]``), so confidences of exactly
    0 and exactly 1 are counted. ECE = sum over bins of ``(n_b / N) * |acc_b - conf_b|``.
    torchmetrics' ``MulticlassCalibrationError`` uses ``[lo, hi)`` bins and puts confidence 1.0 in an
    extra bin; the two agree when no confidence lies exactly on an inner edge or at 1.0.
    """
    _, n, sc, sk = _bin_sums(confidence, correct, n_bins)
    return float(np.sum(np.abs(sk - sc)) / n.sum())


def _bin_sums(confidence, correct, n_bins: int) -> tuple[np.ndarray, ...]:
    """``(edges, n, sum of confidence, sum of correct)`` per equal-width bin ``(lo, hi]``, the
    first closed at 0: the one binning of :func:`ece` and :func:`reliability`."""
    n_bins = check_n_bins(n_bins)
    c, k = _conf_correct(confidence, correct)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    b = np.searchsorted(edges[1:-1], c, side="left")
    return (edges, np.bincount(b, minlength=n_bins), np.bincount(b, weights=c, minlength=n_bins),
            np.bincount(b, weights=k, minlength=n_bins))


def reliability(confidence, correct, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Reliability-diagram bins with :func:`ece`'s binning (``n_bins`` equal-width bins
    ``(lo, hi]``, the first closed at 0): arrays ``lo``, ``hi``, ``n``, ``accuracy`` and
    ``confidence`` (means in the bin; NaN for an empty bin). ``sum(n * |accuracy -
    confidence|) / N`` over non-empty bins is the ECE."""
    edges, n, sc, sk = _bin_sums(confidence, correct, n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"lo": edges[:-1], "hi": edges[1:], "n": n, "accuracy": sk / n, "confidence": sc / n}


def adaptive_ece(confidence, correct, n_bins: int = 15) -> float:
    """Equal-mass ECE: samples sorted by confidence (stable) and split into ``n_bins`` groups of
    sizes differing by at most one (``numpy.array_split``); weighted mean of ``|acc_b - conf_b|``."""
    n_bins = check_n_bins(n_bins)
    c, k = _conf_correct(confidence, correct)
    order = np.argsort(c, kind="stable")
    total = 0.0
    for g in np.array_split(order, min(n_bins, c.size)):
        total += abs(k[g].sum() - c[g].sum())
    return float(total / c.size)


def ece_from_logits(logits, targets, label_subset=None, temperature: float = 1.0, n_bins: int = 15) -> float:
    """:func:`ece` of the softmax of ``logits / temperature`` restricted to ``label_subset``."""
    check_n_bins(n_bins)
    st = row_stats(logits, targets, label_subset, temperature, need=("confidence", "pred"))
    return ece(st["confidence"], st["correct"], n_bins)


def nll(logits, targets, label_subset=None, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood ``-log p(y | x)`` (natural log) of softmax(logits / T)."""
    st = row_stats(logits, targets, label_subset, temperature, need=("log_p_true",))
    _require_rows(st["log_p_true"].size, "NLL")
    return float(-np.mean(st["log_p_true"]))


def brier(logits, targets, label_subset=None, temperature: float = 1.0) -> float:
    """Multi-class Brier score: mean over samples of ``sum_k (p_k - 1[k = y])**2`` (range [0, 2])."""
    st = row_stats(logits, targets, label_subset, temperature, need=("brier",))
    _require_rows(st["brier"].size, "the Brier score")
    return float(np.mean(st["brier"]))


def apply_temperature(logits, temperature: float) -> np.ndarray:
    """``logits / temperature`` (the scaled logits to feed any metric)."""
    return np.asarray(logits) / check_temperature(temperature)


# ----------------------------------------------------------------------------- temperature
def _temp_moments(D: np.ndarray, beta: float) -> tuple[float, float]:
    """Mean E_p[d] and mean Var_p[d] under ``softmax(beta * D)`` (D = logits - row max <= 0),
    in cache-sized chunks with float32 pairwise row sums."""
    n, c = D.shape
    e1 = var = 0.0
    b = D.dtype.type(beta)
    chunk = max(1, min(n, (1 << 19) // max(c, 1)))
    e = np.empty((chunk, c), D.dtype)
    ed = np.empty((chunk, c), D.dtype)
    for s0 in range(0, n, chunk):
        d = D[s0 : s0 + chunk]
        k = d.shape[0]
        np.multiply(d, b, out=e[:k])
        np.exp(e[:k], out=e[:k])
        s0_ = e[:k].sum(1).astype(np.float64)
        np.multiply(e[:k], d, out=ed[:k])
        s1 = ed[:k].sum(1).astype(np.float64)
        s2 = np.einsum("ij,ij->i", ed[:k], d).astype(np.float64)
        m1 = s1 / s0_
        e1 += float(m1.sum())
        var += float(np.maximum(s2 / s0_ - m1 * m1, 0.0).sum())
    return e1 / n, var / n


def fit_temperature(
    logits, targets, label_subset=None, *, bounds: tuple[float, float] = (1e-3, 1e3), tol: float = 1e-7
) -> float:
    """The scalar ``T`` minimising the NLL of ``softmax(logits / T)`` on these samples.

    Written for speed rather than calling a generic optimiser: the NLL is convex in ``beta = 1/T``
    with gradient ``mean(E_p[l] - l_y)`` and curvature ``mean(Var_p[l])``, so a safeguarded Newton
    iteration (bisection fallback inside a sign-change bracket) converges in a handful of passes
    over the logits. ``T`` is confined to ``bounds``; hitting a bound (e.g. all samples correct and
    separable, where the NLL keeps falling as ``T -> 0``) warns: the value returned is the bound,
    not an estimate.

    Input on which no temperature means anything is an error: 0 rows, fewer than 2 columns
    (the softmax is 1 for every T), targets of a single class, logits equal across every row
    (the softmax is uniform for every T), probabilities instead of logits.
    """
    lo_b, hi_b = (float(b) for b in bounds)
    if not (np.isfinite(lo_b) and np.isfinite(hi_b) and 0 < lo_b < hi_b):
        raise ValueError(f"bounds must be two positive finite numbers (low, high) with low < high, "
                         f"got {bounds!r:.80}.")
    L, t = prepare(logits, targets, label_subset)
    if L.shape[0] == 0:
        raise ValueError("cannot fit a temperature on 0 samples.")
    refuse_probabilities(logits)
    if L.shape[1] < 2:
        raise ValueError(
            f"cannot fit a temperature over {L.shape[1]} class column: the softmax of one column is 1 "
            "for every T, so the NLL does not depend on it. Check the label subset (it must keep at "
            "least 2 columns).")
    classes = np.unique(t)
    if classes.size < 2:
        raise ValueError(
            f"cannot fit a temperature on targets of one class ({int(classes[0])}, {t.size} samples): "
            "the NLL then only rewards pushing that class's probability up or down, which says "
            "nothing about calibration. Fit on a set with at least 2 classes (a stratified split "
            "of the ID set).")
    m = L.max(1, keepdims=True)
    D = L - m
    if not D.any():
        raise ValueError(
            f"cannot fit a temperature: the logits are equal across every row ({L.shape[0]} rows, "
            "all ties), so the softmax is uniform for every T and the NLL does not depend on it. "
            "Check the model's outputs (a constant head? logits of an unloaded model?).")
    Dy = np.take_along_axis(D, t[:, None], 1)[:, 0].astype(np.float64)
    dy = Dy.mean()
    bounds = (lo_b, hi_b)
    b_lo, b_hi = 1.0 / bounds[1], 1.0 / bounds[0]
    if np.all(Dy == 0):  # every target is a row maximum: the NLL falls monotonically as T -> 0
        n_tied = int(np.sum((D == 0).sum(1) > 1))
        ties = (f" ({n_tied} of them tied with another class, so their probability tends to 1/k, "
                "not 1)" if n_tied else "")
        warnings.warn(
            f"fit_temperature hit the bound T={bounds[0]:g}: every sample's target has the top "
            f"logit{ties}, so the NLL has no interior minimum (it keeps falling as T -> 0); the "
            "returned T is the bound, not an estimate.",
            stacklevel=2,
        )
        return float(bounds[0])
    if float(D.mean(dtype=np.float64)) - dy >= 0:  # gradient at beta = 0 is >= 0: no better than chance
        warnings.warn(
            f"fit_temperature hit the bound T={bounds[1]:g}: the logits rank targets no better than chance, "
            "so the NLL is minimised as T -> infinity; the returned T is the bound, not an estimate.",
            stacklevel=2,
        )
        return float(bounds[1])
    lo, hi = b_lo, b_hi  # bracket for the root of the gradient in beta
    beta = 1.0
    for _ in range(100):
        e1, var = _temp_moments(D, beta)
        g = e1 - dy
        if g > 0:
            hi = beta
        else:
            lo = beta
        step = g / var if var > 0 else np.inf
        new = beta - step
        if not (lo < new < hi) or not np.isfinite(new):
            new = np.sqrt(lo * hi)
        if abs(new - beta) <= tol * beta or hi / lo < 1 + tol or (var > 0 and g * g / var < 1e-16):
            beta = new
            break
        beta = new
    beta = float(np.clip(beta, b_lo, b_hi))
    if beta <= b_lo * (1 + 1e-6) or beta >= b_hi * (1 - 1e-6):
        warnings.warn(
            f"fit_temperature hit the bound T={1 / beta:g} (bounds {bounds}); the NLL has no interior "
            "minimum on these samples (all correct and separable, or worse than chance).",
            stacklevel=2,
        )
    return 1.0 / beta


def stratified_split(targets, frac: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(idx_a, idx_b)``: a stratified random split of sample indices, ``frac`` of each class in
    ``idx_a`` (scikit-learn ``train_test_split(stratify=targets, random_state=seed)``); both sorted.

    The calibration protocol fits the temperature on ``idx_a`` and reports on ``idx_b``.
    Each class needs at least 2 samples.
    """
    from sklearn.model_selection import train_test_split

    t = np.asarray(targets)
    idx = np.arange(t.shape[0])
    a, b = train_test_split(idx, train_size=frac, stratify=t, random_state=seed, shuffle=True)
    return np.sort(a), np.sort(b)


__all__: Sequence[str] = (
    "MAX_BINS", "PROB_SUM_TOL", "accuracy", "adaptive_ece", "apply_temperature", "brier", "check_logits",
    "check_n_bins", "confidences", "ece", "ece_from_logits", "fit_temperature", "nll", "prepare",
    "refuse_probabilities", "reliability", "row_stats", "softmax", "stratified_split",
)
