"""clipsafety.metrics against independent references (scikit-learn, scipy, torch, torchmetrics)
and hand constructions."""

from __future__ import annotations

import numpy as np
import pytest
from clipsafety import metrics as M
from scipy import optimize, special, stats
from sklearn import metrics as skm


def _logits(n=2000, c=10, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    L = (rng.normal(size=(n, c)) * scale).astype(np.float32)
    t = rng.integers(0, c, n)
    L[np.arange(n), t] += 1.5
    return L, t


# ----------------------------------------------------------------------------- accuracy & subsets
def test_accuracy_hand_and_ties():
    L = np.array([[1.0, 2.0, 0.0], [3.0, 3.0, 0.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])
    t = np.array([1, 0, 2, 2])
    assert M.accuracy(L, t) == pytest.approx(0.75)  # tie in row 1 goes to column 0
    assert M.accuracy(L, np.array([1, 1, 2, 0])) == pytest.approx(0.75)


def test_label_subset_two_labels_restricts_argmax_and_softmax():
    L = np.array([[0.0, 9.0, 1.0, 2.0], [5.0, 9.0, 1.0, 0.0], [0.0, 0.0, 3.0, 3.0]])
    t = np.array([3, 0, 2])
    sub = [0, 3]
    with pytest.raises(ValueError, match="not in label_subset"):
        M.accuracy(L, t, sub)
    t_ok = np.array([3, 0, 0])
    # argmax over columns {0, 3}: row0 -> 3, row1 -> 0, row2 -> 3
    assert M.accuracy(L, t_ok, sub) == pytest.approx(2 / 3)
    P = M.softmax(L, sub)
    np.testing.assert_allclose(P, special.softmax(L[:, sub], axis=1), rtol=1e-6)
    np.testing.assert_allclose(M.nll(L, t_ok, sub), -np.mean(special.log_softmax(L[:, sub], 1)[[0, 1, 2], [1, 0, 0]]))


def test_ood_targets_and_bad_targets_are_errors():
    L, t = _logits(10, 4)
    t = t.copy()
    t[3] = -1
    with pytest.raises(ValueError, match=r"OOD samples \(-1\), first at rows \[3\]"):
        M.accuracy(L, t)
    t[3] = 7
    with pytest.raises(ValueError, match="outside the label space"):
        M.nll(L, t)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_logits_name_rows(bad):
    L, t = _logits(50, 5)
    L[7, 2] = bad
    L[31, 0] = bad
    for fn in (lambda: M.accuracy(L, t), lambda: M.ece_from_logits(L, t), lambda: M.msp(L),
               lambda: M.fit_temperature(L, t), lambda: M.summary(L, t)):
        with pytest.raises(ValueError, match=r"2 row\(s\), first rows \[7, 31\]"):
            fn()


def test_large_finite_logits_are_not_flagged():
    L = np.full((3, 4), 3e38, dtype=np.float32)  # row sums overflow, values are finite
    L[:, 1] = 0
    assert M.accuracy(L, np.array([0, 0, 0])) == 1.0


# ----------------------------------------------------------------------------- calibration
def test_nll_brier_against_torch_and_hand():
    import torch

    L, t = _logits(3000, 20, seed=1)
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(L).double(), torch.from_numpy(t)).item()
    assert M.nll(L, t) == pytest.approx(ref, rel=1e-6)
    P = special.softmax(L.astype(np.float64), 1)
    onehot = np.eye(20)[t]
    assert M.brier(L, t) == pytest.approx(np.mean(np.sum((P - onehot) ** 2, 1)), rel=1e-6)
    ref_T = torch.nn.functional.cross_entropy(torch.from_numpy(L).double() / 2.5, torch.from_numpy(t)).item()
    assert M.nll(L, t, temperature=2.5) == pytest.approx(ref_T, rel=1e-6)


def test_ece_matches_torchmetrics_off_the_edges():
    import torch
    from torchmetrics.classification import MulticlassCalibrationError

    L, t = _logits(5000, 10, seed=2)
    P = special.softmax(L.astype(np.float64), 1)
    conf = P.max(1)
    edges = np.linspace(0, 1, 16)
    assert np.min(np.abs(conf[:, None] - edges[None, :])) > 1e-9  # no confidence on an edge
    tm = MulticlassCalibrationError(num_classes=10, n_bins=15, norm="l1")
    ref = tm(torch.from_numpy(P), torch.from_numpy(t)).item()
    ours = M.ece_from_logits(L, t)
    assert ours == pytest.approx(ref, abs=1e-6)
    assert ours == pytest.approx(M.ece(conf, P.argmax(1) == t), abs=1e-9)


def test_ece_documented_difference_at_confidence_one():
    import torch
    from torchmetrics.functional.classification import binary_calibration_error

    # Our bins are (lo, hi] with the first closed at 0: 1.0 joins the top bin with 0.95;
    # torchmetrics puts 1.0 in a bin of its own.
    conf = np.array([1.0, 0.95])
    correct = np.array([0, 1])
    ours = M.ece(conf, correct)
    assert ours == pytest.approx(abs(1 / 2 - (1.0 + 0.95) / 2))  # one bin: |0.5 - 0.975| = 0.475
    # torchmetrics' binary form compares mean(target) with mean(preds) per bin, as ours does
    tm = binary_calibration_error(torch.tensor(conf), torch.tensor(correct), n_bins=15).item()
    assert tm == pytest.approx(0.5 * abs(0 - 1.0) + 0.5 * abs(1 - 0.95))  # two bins: 0.525
    assert M.ece(np.array([0.99, 0.95]), correct) == pytest.approx(
        binary_calibration_error(torch.tensor([0.99, 0.95]), torch.tensor(correct), n_bins=15).item())


def test_ece_hand_cases():
    assert M.ece(np.array([0.0, 1.0]), np.array([0, 1])) == 0.0  # 0 and 1 counted, perfectly
    assert M.ece(np.array([0.0, 0.0]), np.array([1, 1])) == 1.0
    # an inner edge belongs to the lower bin: 2/15 sits with 0.1 (bin (1/15, 2/15])
    c = np.array([2 / 15, 0.1])
    assert M.ece(c, np.array([1, 0])) == pytest.approx(abs(0.5 - (2 / 15 + 0.1) / 2))
    assert M.ece(np.full(7, 1.0), np.ones(7)) == 0.0  # all correct, fully confident
    assert M.ece(np.full(7, 0.6), np.zeros(7)) == pytest.approx(0.6)  # all wrong


def test_adaptive_ece_hand():
    conf = np.array([0.1, 0.2, 0.8, 0.9])
    correct = np.array([0, 1, 1, 1])
    # 2 equal-mass bins: {0.1, 0.2} acc 0.5 conf 0.15; {0.8, 0.9} acc 1 conf 0.85
    assert M.adaptive_ece(conf, correct, n_bins=2) == pytest.approx(0.5 * 0.35 + 0.5 * 0.15)


def test_fit_temperature_recovers_known_temperature():
    rng = np.random.default_rng(3)
    n, c, T_true = 20000, 50, 1.7
    z = rng.normal(size=(n, c)) * 2.0
    u = rng.random((n, 1))
    t = (np.cumsum(special.softmax(z, 1), 1) < u).sum(1)  # labels drawn from softmax(z)
    L = (z * T_true).astype(np.float32)  # over-confident logits; calibrated by T = 1.7
    T = M.fit_temperature(L, t)
    assert T == pytest.approx(T_true, rel=0.01)
    # and equals the NLL minimiser found by a generic scalar optimiser
    Ld = L.astype(np.float64)
    f = lambda T_: np.mean(special.logsumexp(Ld / T_, 1) - Ld[np.arange(n), t] / T_)
    ref = optimize.minimize_scalar(f, bounds=(0.05, 20), method="bounded", options={"xatol": 1e-8}).x
    assert T == pytest.approx(ref, rel=1e-4)
    assert M.nll(L, t, temperature=T) <= M.nll(L, t) + 1e-12


def test_fit_temperature_all_correct_hits_bound_with_warning():
    L = np.array([[5.0, 0.0], [0.0, 5.0], [4.0, 1.0]])
    t = np.array([0, 1, 0])
    with pytest.warns(UserWarning, match="hit the bound"):
        T = M.fit_temperature(L, t)
    assert T == pytest.approx(1e-3)


def test_fit_temperature_with_subset_and_single_class():
    L, t = _logits(1000, 6, seed=4)
    sub = [1, 4]
    keep = np.isin(t, sub)
    T = M.fit_temperature(L[keep], t[keep], sub)
    assert T == pytest.approx(M.fit_temperature(L[keep][:, sub], np.searchsorted(sub, t[keep])), rel=1e-9)
    # one class column only: the softmax is 1 for every T, so no temperature is fitted (the
    # bound T = 0.001 it used to return was no estimate; tests/test_bad_input_params.py)
    with pytest.raises(ValueError, match="1 class column"):
        M.fit_temperature(np.zeros((5, 1)), np.zeros(5, int))


def test_stratified_split_is_stratified_and_disjoint():
    t = np.repeat(np.arange(10), 50)
    a, b = M.stratified_split(t, 0.5, seed=0)
    assert len(np.intersect1d(a, b)) == 0 and len(a) + len(b) == t.size
    np.testing.assert_array_equal(np.bincount(t[a]), np.full(10, 25))
    a2, _ = M.stratified_split(t, 0.5, seed=0)
    np.testing.assert_array_equal(a, a2)


# ----------------------------------------------------------------------------- OOD
def test_scores_against_scipy():
    L, _ = _logits(300, 8, seed=5)
    Ld = L.astype(np.float64)
    np.testing.assert_allclose(M.msp(L), special.softmax(Ld, 1).max(1), rtol=1e-6)
    np.testing.assert_allclose(M.max_logit(L), Ld.max(1))
    np.testing.assert_allclose(M.energy(L, temperature=2.0), 2.0 * special.logsumexp(Ld / 2.0, 1), rtol=1e-6)
    cos = np.random.default_rng(0).uniform(-0.2, 0.4, size=(20, 8))
    np.testing.assert_allclose(M.mcm(cos, T=1.0), special.softmax(cos, 1).max(1), rtol=1e-12)
    np.testing.assert_allclose(M.mcm(cos * 100, scale=100.0), special.softmax(cos, 1).max(1), rtol=1e-9)
    rec = M.cosines_from_logits(cos * 50, {"kind": "clip", "scale": 50.0, "bias": None})
    np.testing.assert_allclose(rec, cos, rtol=1e-12)
    with pytest.raises(ValueError, match="bias"):
        M.cosines_from_logits(cos, {"kind": "clip", "scale": 10.0, "bias": -10.0})
    with pytest.raises(ValueError, match="CLIP logits"):
        M.cosines_from_logits(cos, {"kind": "classifier"})


@pytest.mark.parametrize("seed,ties", [(0, False), (1, True), (2, True)])
def test_detection_metrics_against_sklearn(seed, ties):
    rng = np.random.default_rng(seed)
    a = rng.normal(1.0, 1.0, 997)
    b = rng.normal(0.0, 1.2, 613)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    y = np.r_[np.ones(a.size), np.zeros(b.size)]
    s = np.r_[a, b]
    assert M.auroc(a, b) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert M.aupr_in(a, b) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    assert M.aupr_out(a, b) == pytest.approx(skm.average_precision_score(1 - y, -s), abs=1e-12)
    fpr, tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    for level in (0.95, 0.9, 0.5, 1.0):
        ref = fpr[np.argmax(tpr >= level)]
        assert M.fpr_at_tpr(a, b, level) == pytest.approx(ref, abs=1e-12), level


def test_detection_edge_cases():
    assert M.auroc([1, 2, 3], [0, -1]) == 1.0
    assert M.auroc([0, -1], [1, 2, 3]) == 0.0
    assert M.auroc([1, 1], [1, 1, 1]) == 0.5
    # 20 ID scores 1..20; keeping 95% of them keeps 19 -> threshold 2; OOD at 1.5 and 2 and 3
    assert M.fpr_at_tpr(np.arange(1, 21), [1.5, 2.0, 3.0, 0.0]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="need ID and OOD"):
        M.auroc([], [1.0])


# ----------------------------------------------------------------------------- trends
def test_fit_trend_matches_linregress_on_each_scale():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 0.85, 30)
    y = np.clip(x * 0.7 + rng.normal(0, 0.02, 30), 0, 1)
    for scale, f in (("linear", lambda a: a), ("logit", special.logit), ("probit", special.ndtri)):
        tr = M.fit_trend(x, y, scale)
        ref = stats.linregress(f(x), f(y))
        assert tr.slope == pytest.approx(ref.slope, rel=1e-10)
        assert tr.intercept == pytest.approx(ref.intercept, rel=1e-10, abs=1e-12)
        er = M.effective_robustness(x, y, scale=scale)
        inv = {"linear": lambda z: z, "logit": special.expit, "probit": special.ndtr}[scale]
        np.testing.assert_allclose(er, y - inv(ref.slope * f(x) + ref.intercept), atol=1e-12)


def test_effective_robustness_baseline_mask_hand():
    x = np.array([0.6, 0.7, 0.8, 0.7])
    y = np.array([0.3, 0.4, 0.5, 0.6])  # last model is 0.2 above the linear trend y = x - 0.3
    er = M.effective_robustness(x, y, baseline_mask=[True, True, True, False], scale="linear")
    np.testing.assert_allclose(er, [0, 0, 0, 0.2], atol=1e-12)


def test_trend_clips_and_rejects_percentages():
    tr = M.fit_trend([0.0, 0.5, 1.0], [0.1, 0.5, 0.9])
    assert np.all(np.isfinite(tr.predict([0.0, 1.0])))
    assert float(tr.predict(1.0)) < 1.0
    with pytest.raises(ValueError, match="fractions"):
        M.fit_trend([50, 60], [40, 50])
    with pytest.raises(ValueError, match="same x accuracy"):
        M.fit_trend([0.5, 0.5], [0.4, 0.6])


def test_trend_band_brackets_fit():
    rng = np.random.default_rng(1)
    x = rng.uniform(0.5, 0.85, 25)
    y = np.clip(x * 0.8 - 0.05 + rng.normal(0, 0.02, 25), 0, 1)
    grid = np.linspace(0.5, 0.85, 8)
    lo, mid, hi = M.trend_band(x, y, grid, n_boot=500)
    np.testing.assert_allclose(mid, M.fit_trend(x, y).predict(grid))
    assert np.all(lo <= mid + 1e-12) and np.all(mid <= hi + 1e-12) and np.all(hi - lo < 0.05)
    lo2, _, hi2 = M.trend_band(x, y, grid, n_boot=500)
    np.testing.assert_array_equal(lo, lo2)
    np.testing.assert_array_equal(hi, hi2)  # seeded: reproducible


def test_trend_resamples_refit_numpy_on_the_same_draws():
    """Each resample's line is numpy's least squares on the logit of the models drawn by
    ``default_rng(seed).integers(0, n, (n_boot, n))``; the band is built on those lines."""
    rng = np.random.default_rng(2)
    x = rng.uniform(0.5, 0.85, 12)
    y = np.clip(x * 0.8 - 0.05 + rng.normal(0, 0.02, 12), 0, 1)
    slopes, inters = M.trend_resamples(x, y, n_boot=50, seed=3)
    draws = np.random.default_rng(3).integers(0, 12, (50, 12))
    ref = np.array([np.polyfit(special.logit(x[i]), special.logit(y[i]), 1) for i in draws])
    np.testing.assert_allclose(slopes, ref[:, 0], rtol=1e-9)
    np.testing.assert_allclose(inters, ref[:, 1], rtol=1e-9, atol=1e-12)
    grid = np.array([0.6, 0.7])
    lo, _, hi = M.trend_band(x, y, grid, n_boot=50, seed=3)
    pred = special.expit(ref[:, :1] * special.logit(grid) + ref[:, 1:])
    np.testing.assert_allclose(lo, np.quantile(pred, 0.025, axis=0), rtol=1e-9)
    np.testing.assert_allclose(hi, np.quantile(pred, 0.975, axis=0), rtol=1e-9)


def _er_world(rng, nb=20, n_img=2000, n_boot=300, sd=0.25, p=0.85, er_true=0.06):
    """A model above a known line: baseline models scattered (sd, logit) around
    ``logit(y) = 0.9 logit(x) - 0.8``, the model's ID and shift images drawn as coin flips of
    its true accuracies, and the image resamples of both."""
    bx = special.expit(rng.uniform(-0.5, 1.0, nb))
    by = special.expit(0.9 * special.logit(bx) - 0.8 + rng.normal(0, sd, nb))
    q = special.expit(0.9 * special.logit(p) - 0.8) + er_true
    cid, cs = rng.random(n_img) < p, rng.random(n_img) < q
    xb = cid[rng.integers(0, n_img, (n_boot, n_img))].mean(1)
    yb = cs[rng.integers(0, n_img, (n_boot, n_img))].mean(1)
    return cid.mean(), cs.mean(), xb, yb, bx, by


def test_effective_robustness_ci_joint_widens_the_fixed_line_and_keeps_the_point():
    x, y, xb, yb, bx, by = _er_world(np.random.default_rng(0))
    er, lo, hi = M.effective_robustness_ci(x, y, xb, yb, bx, by, seed=5)
    er_f, flo, fhi = M.effective_robustness_ci(x, y, xb, yb, bx, by, seed=5, line="fixed")
    # the point: shift accuracy minus numpy's logit line at the ID accuracy, whatever the line mode
    s, i = np.polyfit(special.logit(bx), special.logit(by), 1)
    assert er == er_f == pytest.approx(y - special.expit(s * special.logit(x) + i), abs=1e-12)
    # fixed line: the images' resamples against that one line
    fixed = yb - special.expit(s * special.logit(xb) + i)
    assert (flo, fhi) == pytest.approx(tuple(np.quantile(fixed, [0.025, 0.975])), abs=1e-12)
    # joint: resample b refits the line on draw b of the baseline models
    draws = np.random.default_rng(5).integers(0, len(bx), (len(xb), len(bx)))
    lines = np.array([np.polyfit(special.logit(bx[d]), special.logit(by[d]), 1) for d in draws])
    joint = yb - special.expit(lines[:, 0] * special.logit(xb) + lines[:, 1])
    assert (lo, hi) == pytest.approx(tuple(np.quantile(joint, [0.025, 0.975])), abs=1e-12)
    assert hi - lo > 1.5 * (fhi - flo) and lo < flo and hi > fhi
    with pytest.raises(ValueError, match="line='sideways'"):
        M.effective_robustness_ci(x, y, xb, yb, bx, by, line="sideways")
    with pytest.raises(ValueError, match="one pair per resample"):
        M.effective_robustness_ci(x, y, xb, yb[:-1], bx, by)


def test_effective_robustness_ci_covers_a_known_effective_robustness():
    """400 worlds whose true effective robustness is 6 points above the population line: the
    joint interval covers it about 95% of the time; holding the line fixed covers it less than
    70% of the time (the line's own uncertainty is most of the error here)."""
    rng = np.random.default_rng(0)
    hits = {"resampled": 0, "fixed": 0}
    for r in range(400):
        x, y, xb, yb, bx, by = _er_world(rng)
        for line in hits:
            _, lo, hi = M.effective_robustness_ci(x, y, xb, yb, bx, by, seed=r, line=line)
            hits[line] += lo <= 0.06 <= hi
    assert 0.90 <= hits["resampled"] / 400 <= 0.985, hits
    assert hits["fixed"] / 400 < 0.70, hits


def test_reliability_bins_by_hand_and_their_ece():
    rng = np.random.default_rng(4)
    conf = np.r_[rng.uniform(0, 1, 300), [0.0, 1.0, 0.2, 0.4]]
    correct = rng.uniform(size=conf.size) < conf
    r = M.reliability(conf, correct, n_bins=5)
    for b in range(5):
        lo, hi = b / 5, (b + 1) / 5
        m = (conf > lo) & (conf <= hi) if b else (conf >= 0) & (conf <= hi)
        assert r["n"][b] == m.sum() and (r["lo"][b], r["hi"][b]) == pytest.approx((lo, hi))
        assert r["accuracy"][b] == pytest.approx(correct[m].mean())
        assert r["confidence"][b] == pytest.approx(conf[m].mean())
    gap = np.abs(r["accuracy"] - r["confidence"])
    assert np.sum(r["n"] * gap) / conf.size == pytest.approx(M.ece(conf, correct, 5), abs=1e-12)
    empty = M.reliability([0.95, 0.99], [1, 0], n_bins=5)
    assert empty["n"].tolist() == [0, 0, 0, 0, 2] and np.isnan(empty["accuracy"][0])


# ----------------------------------------------------------------------------- statistics
def test_bootstrap_ci_close_to_scipy_bootstrap():
    rng = np.random.default_rng(0)
    v = rng.normal(0.3, 1.0, 400)
    est, lo, hi = M.bootstrap_ci(np.mean, v, n_boot=2000, seed=0)
    ref = stats.bootstrap((v,), np.mean, n_resamples=4000, method="percentile", random_state=1)
    assert est == pytest.approx(v.mean())
    assert lo == pytest.approx(ref.confidence_interval.low, abs=0.015)
    assert hi == pytest.approx(ref.confidence_interval.high, abs=0.015)
    # joint resampling of several arrays with a metric of them
    c = rng.random(400)
    k = rng.random(400) < c
    e, l2, h2 = M.bootstrap_ci(M.ece, c, k, n_boot=200)
    assert e == M.ece(c, k) and l2 <= e <= h2


def test_correlation_against_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    y = 0.6 * x + rng.normal(size=60) * 0.8
    r, lo, hi = M.correlation(x, y, "pearson", n_boot=1000)
    assert r == pytest.approx(stats.pearsonr(x, y)[0], rel=1e-12)
    ci = stats.pearsonr(x, y).confidence_interval(0.95)  # Fisher z, an independent interval
    assert lo == pytest.approx(ci.low, abs=0.08) and hi == pytest.approx(ci.high, abs=0.08)
    rs, lo_s, hi_s = M.correlation(x, y, "spearman", n_boot=500)
    assert rs == pytest.approx(stats.spearmanr(x, y)[0], rel=1e-12) and lo_s < rs < hi_s


# ----------------------------------------------------------------------------- suite
def test_summary_equals_individual_metrics():
    L, t = _logits(2000, 30, seed=6)
    Lo, _ = _logits(700, 30, seed=7, scale=1.0)
    s = M.summary(L, t, ood_logits=Lo, fit_T=True)
    assert s["accuracy"] == pytest.approx(M.accuracy(L, t))
    assert s["ece"] == pytest.approx(M.ece_from_logits(L, t))
    assert s["nll"] == pytest.approx(M.nll(L, t))
    assert s["brier"] == pytest.approx(M.brier(L, t))
    assert s["T_fit"] == pytest.approx(M.fit_temperature(L, t))
    assert s["auroc_msp"] == pytest.approx(M.auroc(M.msp(L), M.msp(Lo)))
    assert s["fpr95_energy"] == pytest.approx(M.fpr_at_tpr(M.energy(L), M.energy(Lo)))


def test_many_chunks_match_references_and_name_rows_across_chunks():
    import torch

    L, t = _logits(1500, 1000, seed=8)  # ~524 rows per internal chunk: three chunks
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(L).double(), torch.from_numpy(t)).item()
    assert M.nll(L, t) == pytest.approx(ref, rel=1e-6)
    P = special.softmax(L.astype(np.float64), 1)
    np.testing.assert_allclose(M.msp(L), P.max(1), rtol=1e-5)
    assert M.accuracy(L, t) == pytest.approx(np.mean(P.argmax(1) == t))
    L16 = L.astype(np.float16)
    assert M.accuracy(L16, t) == pytest.approx(np.mean(L16.astype(np.float32).argmax(1) == t))
    L[[5, 900, 1400], [0, 1, 2]] = [np.nan, -np.inf, np.inf]
    with pytest.raises(ValueError, match=r"3 row\(s\), first rows \[5, 900, 1400\]"):
        M.nll(L, t)
