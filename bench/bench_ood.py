"""Every OOD metric for the whole zoo over the world's five OOD sets, from a warm store.

Target (issue: OOD chapter): at most 10 s for AUROC, FPR@95 in both conventions and AUPR-in /
AUPR-out by both rules, every zoo model against every OOD set, once the prediction store holds
the records (the first pass fills the store and is not timed). Prints the figures.

    .venv/bin/python bench/bench_ood.py [--store DIR]
"""

import argparse
import time

from clipsafety import evidence
from clipsafety.studies import ood


def main(store: str) -> float:
    models = evidence.resolve_models("zoo")
    sets = list(ood.ZOO_OOD_SETS)
    t0 = time.perf_counter()
    id_recs = evidence.collect(models, "synth:id-test", store=store, progress=False)
    ood_recs = {s: evidence.collect(models, s, store=store, progress=False) for s in sets}
    t1 = time.perf_counter()
    # warm: read every record back from the store, then compute every metric variant
    id_recs = evidence.collect(models, "synth:id-test", store=store, progress=False)
    ood_recs = {s: evidence.collect(models, s, store=store, progress=False) for s in sets}
    t2 = time.perf_counter()
    n = 0
    for conv in ("id-recall", "ood-recall"):
        for method in ("step", "trapezoid"):
            n += len(ood.detection_table(id_recs, ood_recs, fpr_convention=conv, aupr_method=method))
    t3 = time.perf_counter()
    print(f"{len(models)} zoo models x {len(sets)} OOD sets; first pass (fills the store) "
          f"{t1 - t0:.1f} s")
    print(f"warm read of {len(models) * (len(sets) + 1)} records {t2 - t1:.2f} s; "
          f"{n} (model, set, convention) rows of 4 metrics {t3 - t2:.2f} s; "
          f"total warm {t3 - t1:.2f} s (target <= 10 s)")
    return t3 - t1


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default="")
    main(ap.parse_args().store)
