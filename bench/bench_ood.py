"""Speed of the OOD chapter's numbers: AUROC, FPR@95 in both conventions and AUPR-in/out by
both rules, every zoo model against the world's five OOD sets, from a warm prediction store.
Target: at most 10 s in all (reading the records plus computing every metric variant).

Records are read as ``bench_calibration.py`` reads them (manifest and arrays of the zoo's
records, chosen by the catalog's weights hash). ``--via-predict`` also times the chapter's own
path (``clipsafety.evidence.collect``: the model is loaded to compute the store key).

    .venv/bin/python bench/bench_ood.py --store /path/to/warm/store [--via-predict]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_calibration import zoo_records  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default="")
    ap.add_argument("--target", type=float, default=10.0)
    ap.add_argument("--via-predict", action="store_true")
    args = ap.parse_args(argv)

    from clipsafety import catalog, evidence
    from clipsafety.catalog import read_catalog
    from clipsafety.store import default_root
    from clipsafety.studies import ood

    root = args.store or str(default_root())
    models = catalog.resolve_models("zoo")
    cat = read_catalog("zoo").set_index("id")
    sets = ["synth:id-test", *ood.ZOO_OOD_SETS]
    selection = (models, {m: cat.loc[m, "weights_sha256"] for m in models}, {s: s for s in sets})
    recs, t_read, missing = zoo_records(root, selection)
    if missing:
        print(f"{len(missing)} records missing from {root}, e.g. {missing[:3]}; run the OOD "
              f"chapter once with store={root!r}.")
        return 1
    t0 = time.perf_counter()
    n = 0
    id_recs = recs.pop("synth:id-test")
    for conv in ("id-recall", "ood-recall"):
        for method in ("step", "trapezoid"):
            n += len(ood.detection_table(id_recs, recs, fpr_convention=conv, aupr_method=method))
    t_metrics = time.perf_counter() - t0
    total = t_read + t_metrics
    print(f"{len(models)} zoo models x {len(recs)} OOD sets from {root}")
    print(f"read (manifest + arrays)   {t_read:7.2f} s")
    print(f"metrics                    {t_metrics:7.2f} s  ({n} rows x 4 metrics, 4 convention variants)")
    print(f"total                      {total:7.2f} s  (target <= {args.target:g} s)")
    if args.via_predict:
        t0 = time.perf_counter()
        for s in sets:
            evidence.collect(models, s, store=root, progress=False)
        print(f"the chapter's path (evidence.collect, models loaded for the key): "
              f"{time.perf_counter() - t0:.1f} s")
    return 0 if total <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
