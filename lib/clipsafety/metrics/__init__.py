"""clipsafety.metrics: pure numpy metrics with stated conventions (the book's
"Methods and conventions" page, book/methods.md).

- :mod:`.core`: accuracy, softmax/confidences, ECE (15 equal-width bins, ``(lo, hi]``, first bin
  closed at 0), adaptive ECE, NLL, Brier, temperature fitting, stratified split.
- :mod:`.ood`: MSP, MaxLogit, energy, MCM scores; AUROC (ID positive), FPR at 95% TPR, AUPR.
- :mod:`.trend`: accuracy-on-the-line fits, effective robustness, bootstrap trend bands.
- :mod:`.stats`: bootstrap intervals and Pearson/Spearman correlations with intervals.
- :mod:`.suite`: the whole suite for one (model, dataset).

Accuracies are fractions in [0, 1] everywhere.
"""

from .core import (
    accuracy,
    adaptive_ece,
    apply_temperature,
    brier,
    check_logits,
    check_n_bins,
    confidences,
    ece,
    ece_from_logits,
    fit_temperature,
    nll,
    prepare,
    refuse_probabilities,
    reliability,
    row_stats,
    softmax,
    stratified_split,
)
from .ood import (
    aupr_in,
    aupr_out,
    auroc,
    cosines_from_logits,
    energy,
    fpr_at_tpr,
    max_logit,
    mcm,
    msp,
)
from .stats import bootstrap_ci, check_n_boot, correlation
from .suite import summary, summary_record
from .trend import (
    SCALES,
    Trend,
    effective_robustness,
    effective_robustness_ci,
    fit_trend,
    inverse_transform,
    transform,
    trend_band,
    trend_resamples,
)

__all__ = [
    "SCALES", "Trend", "accuracy", "adaptive_ece", "apply_temperature", "aupr_in", "aupr_out", "auroc",
    "bootstrap_ci", "brier", "check_logits", "check_n_bins", "check_n_boot", "confidences",
    "correlation", "cosines_from_logits", "ece", "ece_from_logits", "effective_robustness", "effective_robustness_ci", "energy",
    "fit_temperature", "fit_trend", "fpr_at_tpr", "inverse_transform", "max_logit", "mcm", "msp",
    "nll", "prepare", "refuse_probabilities", "reliability", "row_stats", "softmax", "stratified_split", "summary",
    "summary_record", "transform", "trend_band", "trend_resamples",
]
