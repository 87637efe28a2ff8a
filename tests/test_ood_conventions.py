"""FPR@95 and AUPR in the conventions peers use, reproduced on the same scores.

The peers' code is restated here from its published source, on scikit-learn as they use it:
OpenOOD's ``openood/evaluators/metrics.py::auc_and_fpr_recall`` (OOD positive, FPR = ID
rejected at 95% OOD recall, AUPR by trapezoid) and Hendrycks et al.'s
``fpr_and_fdr_at_recall`` (ID positive, FPR at the recall nearest 0.95), which MCM copies.
"""

import numpy as np
import pytest
from clipsafety import metrics as M
from sklearn import metrics as skm


def openood(id_s, ood_s, tpr_th=0.95):
    conf = np.r_[id_s, ood_s]
    ood_indicator = np.r_[np.zeros(len(id_s)), np.ones(len(ood_s))]
    fpr_list, tpr_list, _ = skm.roc_curve(ood_indicator, -conf)
    fpr = fpr_list[np.argmax(tpr_list >= tpr_th)]
    p_in, r_in, _ = skm.precision_recall_curve(1 - ood_indicator, conf)
    p_out, r_out, _ = skm.precision_recall_curve(ood_indicator, -conf)
    return (skm.auc(fpr_list, tpr_list), skm.auc(r_in, p_in), skm.auc(r_out, p_out), fpr)


def hendrycks_fpr(id_s, ood_s, recall_level=0.95):
    y_score = np.r_[id_s, ood_s]
    y_true = np.r_[np.ones(len(id_s)), np.zeros(len(ood_s))] == 1
    desc = np.argsort(y_score, kind="mergesort")[::-1]
    y_score, y_true = y_score[desc], y_true[desc]
    distinct = np.where(np.diff(y_score))[0]
    idxs = np.r_[distinct, y_true.size - 1]
    tps = np.cumsum(y_true, dtype=np.float64)[idxs]
    fps = 1 + idxs - tps
    recall = tps / tps[-1]
    last = tps.searchsorted(tps[-1])
    sl = slice(last, None, -1)
    recall, fps = np.r_[recall[sl], 1], np.r_[fps[sl], 0]
    cutoff = np.argmin(np.abs(recall - recall_level))
    return fps[cutoff] / np.sum(np.logical_not(y_true))


@pytest.mark.parametrize("seed", range(5))
def test_continuous_scores_match_every_peer(seed):
    rng = np.random.default_rng(seed)
    id_s, ood_s = rng.normal(1.0, 1.0, 700), rng.normal(0.0, 1.2, 450)
    auroc, aupr_in, aupr_out, fpr_ood = openood(id_s, ood_s)
    assert M.auroc(id_s, ood_s) == pytest.approx(auroc, abs=1e-12)
    assert M.fpr_at_tpr(id_s, ood_s, convention="ood-recall") == pytest.approx(fpr_ood, abs=1e-15)
    assert M.aupr_in(id_s, ood_s, method="trapezoid") == pytest.approx(aupr_in, abs=1e-12)
    assert M.aupr_out(id_s, ood_s, method="trapezoid") == pytest.approx(aupr_out, abs=1e-12)
    # Hendrycks' rule: the lowest threshold whose ID recall is nearest 0.95, so it also counts
    # the OOD samples between the k-th and the (k+1)-th largest ID score; ours the highest
    k = int(np.ceil(0.95 * id_s.size - 1e-9))
    srt = np.sort(id_s)[::-1]
    nearest_k = min((k - 1, k, k + 1), key=lambda j: abs(j / id_s.size - 0.95))
    hi, lo = srt[nearest_k - 1], srt[nearest_k] if nearest_k < id_s.size else -np.inf
    gap = np.count_nonzero((ood_s < hi) & (ood_s > lo)) / ood_s.size
    ours_at_nearest = np.count_nonzero(ood_s >= hi) / ood_s.size
    assert hendrycks_fpr(id_s, ood_s) == pytest.approx(ours_at_nearest + gap, abs=1e-15)
    if nearest_k == k:
        assert M.fpr_at_tpr(id_s, ood_s) == pytest.approx(ours_at_nearest, abs=1e-15)
    y = np.r_[np.ones(id_s.size), np.zeros(ood_s.size)]
    s = np.r_[id_s, ood_s]
    assert M.aupr_in(id_s, ood_s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    assert M.aupr_out(id_s, ood_s) == pytest.approx(skm.average_precision_score(1 - y, -s), abs=1e-12)
    # the two FPR conventions answer different questions
    assert M.fpr_at_tpr(id_s, ood_s) != pytest.approx(fpr_ood, abs=1e-3)


def test_ties_the_exact_rule_against_the_nearest_recall_rule():
    """Five score levels: the exact rule counts every sample at the threshold; Hendrycks' rule
    takes the recall nearest 0.95 and lands on another level."""
    id_s = np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], [8, 4, 30, 30, 28])  # 8% of ID at the lowest level
    ood_s = np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], [40, 30, 20, 5, 5])
    exact = M.fpr_at_tpr(id_s, ood_s)
    # at least 95% of ID kept: the threshold must be 1.0 (keeping 2.0 keeps only 92%)
    assert exact == pytest.approx(1.0)
    assert hendrycks_fpr(id_s, ood_s) == pytest.approx((30 + 20 + 5 + 5) / 100)  # recall 0.92
    # OpenOOD on the same ties: 95% of OOD rejected needs threshold 4.0 on the negated score
    assert M.fpr_at_tpr(id_s, ood_s, convention="ood-recall") == pytest.approx(openood(id_s, ood_s)[3])


def test_aupr_methods_differ_on_saturated_scores():
    """MSP-like scores saturated at 1.0: the step and trapezoid areas differ, each matching
    its peer."""
    rng = np.random.default_rng(0)
    id_s = np.r_[np.ones(300), rng.uniform(0.5, 1.0, 200)]
    ood_s = np.r_[np.ones(60), rng.uniform(0.2, 0.9, 240)]
    y = np.r_[np.ones(id_s.size), np.zeros(ood_s.size)]
    step = M.aupr_in(id_s, ood_s)
    trap = M.aupr_in(id_s, ood_s, method="trapezoid")
    assert step == pytest.approx(skm.average_precision_score(y, np.r_[id_s, ood_s]), abs=1e-12)
    assert trap == pytest.approx(openood(id_s, ood_s)[1], abs=1e-12)
    assert abs(step - trap) > 1e-3


def test_bad_conventions_are_named():
    with pytest.raises(ValueError, match="ood-recall"):
        M.fpr_at_tpr([1.0], [0.0], convention="openood")
    with pytest.raises(ValueError, match="trapezoid"):
        M.aupr_in([1.0], [0.0], method="trap")
