"""The whole metric suite for one (model, dataset), from one pass over the logits."""

from __future__ import annotations

import numpy as np

from .core import adaptive_ece, ece, fit_temperature, row_stats
from .ood import aupr_in, aupr_out, auroc, fpr_at_tpr


def summary(
    logits,
    targets,
    label_subset=None,
    *,
    temperature: float = 1.0,
    ood_logits=None,
    n_bins: int = 15,
    fit_T: bool = False,
) -> dict[str, float]:
    """Accuracy, ECE, adaptive ECE, NLL, Brier and mean confidence of ``softmax(logits / T)``
    on ``label_subset``; with ``ood_logits`` (samples of an OOD set, same columns) also AUROC,
    FPR@95%TPR, AUPR-in and AUPR-out for the MSP, MaxLogit and energy scores; with ``fit_T``
    also the NLL-optimal temperature on these samples (``T_fit``). Keys are flat strings
    such as ``"ece"`` or ``"auroc_msp"``; values are plain floats. Conventions as in
    :mod:`clipsafety.metrics.core` and :mod:`clipsafety.metrics.ood`.
    """
    st = row_stats(logits, targets, label_subset, temperature)
    out = {
        "n": float(st["confidence"].size),
        "accuracy": float(st["correct"].mean()),
        "mean_confidence": float(st["confidence"].mean()),
        "ece": ece(st["confidence"], st["correct"], n_bins),
        "adaptive_ece": adaptive_ece(st["confidence"], st["correct"], n_bins),
        "nll": float(-st["log_p_true"].mean()),
        "brier": float(st["brier"].mean()),
    }
    if fit_T:
        out["T_fit"] = fit_temperature(logits, targets, label_subset)
    if ood_logits is not None:
        so = row_stats(ood_logits, None, label_subset, temperature, need=("confidence", "max_logit", "logsumexp"))
        id_sc = {"msp": st["confidence"], "maxlogit": st["max_logit"], "energy": temperature * st["logsumexp"]}
        od_sc = {"msp": so["confidence"], "maxlogit": so["max_logit"], "energy": temperature * so["logsumexp"]}
        for k, a in id_sc.items():
            b = od_sc[k]
            out[f"auroc_{k}"] = auroc(a, b)
            out[f"fpr95_{k}"] = fpr_at_tpr(a, b, 0.95)
            out[f"aupr_in_{k}"] = aupr_in(a, b)
            out[f"aupr_out_{k}"] = aupr_out(a, b)
    return out


def summary_record(record, ood_record=None, *, temperature: float = 1.0, n_bins: int = 15) -> dict[str, float]:
    """:func:`summary` of a :class:`clipsafety.records.PredictionRecord` (ID rows: targets >= 0),
    using the record's ``label_subset``; OOD scores from ``ood_record`` (all its rows)."""
    check = getattr(record, "check_label_space", None)
    if check is not None:  # logits must be in the targets' own space (LabelSpaceMismatch)
        check(mapped=False)
    if ood_record is not None and getattr(ood_record, "label_space", None) != getattr(record, "label_space", None):
        raise ValueError(f"the OOD record's logits are over {ood_record.label_space!r} but "
                                 f"the ID record's over {record.label_space!r}; score both with the "
                                 "same model and head.")
    t = np.asarray(record.targets)
    keep = t >= 0
    logits = record.logits if keep.all() else record.logits[keep]
    ood = None if ood_record is None else ood_record.logits
    return summary(logits, t[keep], record.label_subset, temperature=temperature, ood_logits=ood, n_bins=n_bins)
