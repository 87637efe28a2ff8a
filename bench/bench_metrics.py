"""Speed of clipsafety.metrics against the libraries people would otherwise use.

50,000 x 1,000 float32 logits (seeded, CLIP-like: one boosted true class), plus 10,000 OOD rows.
Each timing is the best of ``--repeats`` runs. Both sides get the same number of threads
(``--threads``, default 1: numpy's elementwise kernels are single-threaded, so torch gets one
thread too). Targets: ECE, NLL, fit_temperature, AUROC and FPR95 at least as fast as the
reference (ratio = reference time / our time >= 1), and the whole suite for one (model, dataset)
under 1 s. Exits 1 when a target fails.

    .venv/bin/python bench/bench_metrics.py [--n 50000] [--c 1000] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def best(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--c", type=int, default=1_000)
    ap.add_argument("--n-ood", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch
    from clipsafety import metrics as M
    from scipy import optimize
    from sklearn.metrics import roc_auc_score, roc_curve
    from torchmetrics.classification import MulticlassCalibrationError

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    L = (rng.normal(size=(args.n, args.c)) * 2.0).astype(np.float32)
    t = rng.integers(0, args.c, args.n)
    L[np.arange(args.n), t] += 6.0
    Lo = (rng.normal(size=(args.n_ood, args.c)) * 2.0).astype(np.float32)
    Lt, tt = torch.from_numpy(L), torch.from_numpy(t)
    print(f"logits {L.shape} float32, OOD {Lo.shape}; threads {args.threads}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')!r}; best of {args.repeats}")

    rows, failures = [], []

    def compare(name, ours_fn, ref_fn, check, target=True):
        to, vo = best(ours_fn, args.repeats)
        tr, vr = best(ref_fn, args.repeats)
        ok_val = check(vo, vr)
        ratio = tr / to
        rows.append((name, to, tr, ratio, vo, vr))
        if target and ratio < 1.0:
            failures.append(f"{name}: {ratio:.2f}x (slower than the reference)")
        if not ok_val:
            failures.append(f"{name}: values differ (ours {vo!r}, reference {vr!r})")

    def tm_ece():
        return MulticlassCalibrationError(num_classes=args.c, n_bins=15, norm="l1")(Lt, tt).item()

    compare("ECE (vs torchmetrics)", lambda: M.ece_from_logits(L, t), tm_ece,
            lambda a, b: abs(a - b) < 1e-4)
    compare("NLL (vs torch cross_entropy)", lambda: M.nll(L, t),
            lambda: torch.nn.functional.cross_entropy(Lt, tt).item(), lambda a, b: abs(a - b) < 1e-4 * b)

    def ref_temperature():
        def f(T):
            with torch.no_grad():
                return torch.nn.functional.cross_entropy(Lt / T, tt).item()
        return optimize.minimize_scalar(f, bounds=(0.05, 20.0), method="bounded", options={"xatol": 1e-4}).x

    compare("fit_temperature (vs scipy bounded + torch NLL)", lambda: M.fit_temperature(L, t), ref_temperature,
            lambda a, b: abs(a - b) < 1e-3 * b)

    s_id, s_ood = M.msp(L), M.msp(Lo)
    y = np.r_[np.ones(s_id.size), np.zeros(s_ood.size)]
    s = np.r_[s_id, s_ood]
    compare("AUROC (vs sklearn roc_auc_score)", lambda: M.auroc(s_id, s_ood), lambda: roc_auc_score(y, s),
            lambda a, b: abs(a - b) < 1e-12)

    def ref_fpr95():
        fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
        return float(fpr[np.argmax(tpr >= 0.95)])

    compare("FPR@95TPR (vs sklearn roc_curve)", lambda: M.fpr_at_tpr(s_id, s_ood), ref_fpr95,
            lambda a, b: abs(a - b) < 1e-12)

    print(f"\n{'metric':48s} {'ours s':>9s} {'ref s':>9s} {'ref/ours':>9s}   value")
    for name, to, tr, ratio, vo, _ in rows:
        print(f"{name:48s} {to:9.4f} {tr:9.4f} {ratio:8.2f}x   {vo:.6g}")

    t_suite, out = best(lambda: M.summary(L, t), args.repeats)
    t_suite_ood, out_ood = best(lambda: M.summary(L, t, ood_logits=Lo), args.repeats)
    print(f"\nsuite, ID only ({len(out)} numbers: accuracy, ECE, adaptive ECE, NLL, Brier, confidence): "
          f"{t_suite:.3f} s")
    print(f"suite with {args.n_ood} OOD rows ({len(out_ood)} numbers: + AUROC/FPR95/AUPR-in/out for "
          f"MSP, MaxLogit, energy): {t_suite_ood:.3f} s")
    if t_suite >= 1.0:
        failures.append(f"suite: {t_suite:.3f} s >= 1 s")
    if failures:
        print("\nFAILED targets:\n  " + "\n  ".join(failures))
        return 1
    print("\nall targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
