"""OOD scores and detection metrics.

Conventions (the book's "Methods and conventions" page, book/methods.md: OOD detection)
---------------------------------------------------------------------------------------
- Every score is "higher = more in-distribution".
- ID is the positive class: ``auroc`` is the probability that a random ID sample scores above a
  random OOD sample (ties count one half), equal to ``sklearn.metrics.roc_auc_score`` with ID
  labelled 1.
- ``fpr_at_tpr(id, ood, tpr=0.95)`` is the fraction of OOD samples accepted (score >= threshold)
  at the highest threshold that accepts at least ``tpr`` of the ID samples. OpenOOD reports the
  mirror-image convention (OOD as positive); numbers are not interchangeable.
- ``aupr_in``: average precision with ID positive and the score as is; ``aupr_out``: OOD positive
  with the negated score (both as ``sklearn.metrics.average_precision_score``).
"""

from __future__ import annotations

import numpy as np

from .core import check_logits, prepare, row_stats


def msp(logits, label_subset=None, temperature: float = 1.0) -> np.ndarray:
    """Maximum softmax probability of ``logits / temperature`` over the subset's columns."""
    return row_stats(logits, None, label_subset, temperature, need=("confidence",))["confidence"]


def max_logit(logits, label_subset=None) -> np.ndarray:
    """Maximum logit over the subset's columns."""
    L, _ = prepare(logits, None, label_subset)
    return L.max(1).astype(np.float64)


def energy(logits, label_subset=None, temperature: float = 1.0) -> np.ndarray:
    """Negative free energy ``T * logsumexp(logits / T)`` (Liu et al. 2020), higher = ID."""
    return float(temperature) * row_stats(logits, None, label_subset, temperature, need=("logsumexp",))["logsumexp"]


def cosines_from_logits(logits, logit_policy: dict) -> np.ndarray:
    """Recover cosine similarities from CLIP logits as ``logits / scale``.

    Only valid when the record's logit policy is ``{"kind": "clip", "scale": s, "bias": None}``;
    a logit bias (SigLIP) or a plain classifier has no cosine to recover.
    """
    if not isinstance(logit_policy, dict) or logit_policy.get("kind") != "clip":
        raise ValueError(
            f"cosines can only be recovered from CLIP logits (logit_policy kind 'clip'), got {logit_policy!r}; "
            "use MSP or MaxLogit for plain classifiers."
        )
    if logit_policy.get("bias") not in (None, 0, 0.0):
        raise ValueError(
            f"the logit policy has a bias ({logit_policy.get('bias')!r}); cosines cannot be recovered as "
            "logits / scale. Cache the features or raw cosines instead."
        )
    scale = float(logit_policy.get("scale", 0.0))
    if not scale > 0:
        raise ValueError(f"logit_policy scale must be positive, got {logit_policy.get('scale')!r}.")
    return check_logits(logits).astype(np.float64) / scale


def mcm(cosines, T: float = 1.0, scale: float | None = None, label_subset=None) -> np.ndarray:
    """Maximum Concept Matching score (Ming et al. 2022): ``max softmax(cos / T)``.

    ``cosines`` are image-text cosine similarities ``[N, C]``; when you only have CLIP logits
    without bias, pass them with ``scale`` (e.g. 100) and they are divided by it first.
    """
    C = check_logits(cosines, "cosines").astype(np.float64)
    if scale is not None:
        C = C / float(scale)
    return row_stats(C, None, label_subset, T, need=("confidence",))["confidence"]


# ----------------------------------------------------------------------------- detection metrics
def _scores(id_scores, ood_scores) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(id_scores, dtype=np.float64)
    b = np.asarray(ood_scores, dtype=np.float64)
    for name, x in (("id_scores", a), ("ood_scores", b)):
        if x.ndim != 1:
            raise ValueError(f"{name} must be 1-D (one score per sample), got shape {x.shape}; "
                             "reduce logits to a score first (msp, max_logit, energy or mcm).")
    if a.size == 0 or b.size == 0:
        raise ValueError(f"need ID and OOD scores, got {a.size} ID and {b.size} OOD.")
    for name, x in (("id_scores", a), ("ood_scores", b)):
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} hold non-finite values at {np.flatnonzero(~np.isfinite(x))[:5].tolist()}.")
    return a, b


def auroc(id_scores, ood_scores) -> float:
    """Area under the ROC curve with ID positive (Mann-Whitney with ties counted 1/2).

    Computed from one sort of the OOD scores and two binary searches per ID score, which is
    faster than ``roc_auc_score`` and gives the same value.
    """
    a, b = _scores(id_scores, ood_scores)
    bs = np.sort(b)
    lt = np.searchsorted(bs, a, side="left")
    le = np.searchsorted(bs, a, side="right")
    return float((lt.sum() + 0.5 * (le - lt).sum()) / (a.size * b.size))


def _min_count(n: int, tpr: float) -> int:
    """Smallest integer k with k / n >= tpr in floating point (as roc_curve's tpr compares)."""
    k = int(np.ceil(tpr * n))
    while k > 0 and (k - 1) / n >= tpr:
        k -= 1
    while k < n and k / n < tpr:
        k += 1
    return k


#: FPR@95 conventions (:func:`fpr_at_tpr`)
FPR_CONVENTIONS = ("id-recall", "ood-recall")


def _kth_largest(x: np.ndarray, k: int) -> float:
    return float(np.partition(x, x.size - k)[x.size - k])


def fpr_at_tpr(id_scores, ood_scores, tpr: float = 0.95, convention: str = "id-recall") -> float:
    """False-positive rate at ``tpr`` recall, in one of the two conventions peers use.

    - ``"id-recall"`` (default; MCM's and Hendrycks et al.'s convention, ID positive): the
      fraction of OOD samples accepted (score >= t), where t is the highest threshold that
      keeps at least ``tpr`` of the ID samples. Exact on ties: every sample at the threshold
      counts (Hendrycks' widely copied ``fpr_and_fdr_at_recall`` instead takes the recall
      *nearest* ``tpr``, which differs where scores tie).
    - ``"ood-recall"`` (OpenOOD's current ``auc_and_fpr_recall``, OOD positive): the fraction
      of ID samples rejected (score <= t), where t is the lowest threshold that rejects at
      least ``tpr`` of the OOD samples.

    Numbers of the two conventions are not interchangeable.
    """
    if not 0 < tpr <= 1:
        raise ValueError(f"tpr must be in (0, 1], got {tpr}.")
    if convention not in FPR_CONVENTIONS:
        raise ValueError(f"convention={convention!r}; expected one of {FPR_CONVENTIONS} "
                         "('id-recall': OOD accepted at 95% ID kept, the default; 'ood-recall': "
                         "ID rejected at 95% OOD caught, OpenOOD's).")
    a, b = _scores(id_scores, ood_scores)
    if convention == "ood-recall":
        a, b = -b, -a  # OOD becomes the positive class of the negated score
    thr = _kth_largest(a, max(_min_count(a.size, tpr), 1))  # k-th largest positive score
    return float(np.count_nonzero(b >= thr) / b.size)


def _average_precision(pos: np.ndarray, neg: np.ndarray) -> float:
    s = np.concatenate([pos, neg])
    y = np.concatenate([np.ones(pos.size), np.zeros(neg.size)])
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last index of each distinct score
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    precision = tps / (tps + fps)
    recall = tps / pos.size
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


#: AUPR integration rules (:func:`aupr_in`, :func:`aupr_out`)
AUPR_METHODS = ("step", "trapezoid")


def _trapezoid_pr(pos: np.ndarray, neg: np.ndarray) -> float:
    """Trapezoid area under the precision-recall curve, as OpenOOD computes it
    (``sklearn.metrics.auc`` over ``precision_recall_curve``: the curve's distinct-score points
    plus the end point (recall 0, precision 1))."""
    s = np.concatenate([pos, neg])
    y = np.concatenate([np.ones(pos.size), np.zeros(neg.size)])
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    precision = tps / (tps + fps)
    recall = tps / pos.size
    # sklearn stops the curve once full recall is reached
    stop = int(np.searchsorted(tps, tps[-1])) + 1
    precision = np.r_[1.0, precision[:stop]]
    recall = np.r_[0.0, recall[:stop]]
    return float(np.trapezoid(precision, recall))


def _aupr(pos, neg, method: str) -> float:
    if method not in AUPR_METHODS:
        raise ValueError(f"method={method!r}; expected one of {AUPR_METHODS} ('step': average "
                         "precision, the default; 'trapezoid': OpenOOD's area).")
    return _average_precision(pos, neg) if method == "step" else _trapezoid_pr(pos, neg)


def aupr_in(id_scores, ood_scores, method: str = "step") -> float:
    """Area under the precision-recall curve with ID as the positive class (score as is).

    ``method="step"`` (default): step-wise average precision, as
    ``sklearn.metrics.average_precision_score``; ``"trapezoid"``: the trapezoid area OpenOOD
    reports (they differ where scores tie or saturate)."""
    a, b = _scores(id_scores, ood_scores)
    return _aupr(a, b, method)


def aupr_out(id_scores, ood_scores, method: str = "step") -> float:
    """Area under the precision-recall curve with OOD as the positive class (negated score);
    ``method`` as :func:`aupr_in`."""
    a, b = _scores(id_scores, ood_scores)
    return _aupr(-b, -a, method)


__all__ = [
    "AUPR_METHODS",
    "FPR_CONVENTIONS",
    "aupr_in",
    "aupr_out",
    "auroc",
    "cosines_from_logits",
    "energy",
    "fpr_at_tpr",
    "max_logit",
    "mcm",
    "msp",
]
