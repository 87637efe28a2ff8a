"""Speed of the calibration chapter's numbers: every calibration metric (accuracy, ECE, adaptive
ECE, NLL, Brier, mean confidence; before scaling, with the ID temperature and with each
condition's oracle temperature; the temperatures themselves) for the whole zoo over the ID set
and every shift, read from a warm prediction store. Target: at most 10 s in all (reading the
records plus computing the table). Exits 1 when the target fails or records are missing.

Records are chosen from the store's manifests: a zoo model of the catalog on one of the
world's evaluation sets (:func:`clipsafety.synth.eval_sets`), with the catalog's weights hash
(so records of an older zoo are never read). Only ``manifest.json`` and
``arrays.safetensors`` of a record are read (the store's documented layout): the sample table
(``samples.parquet``) is not needed for calibration, and :meth:`Store.get` reads it always
(``--full-read`` times that path too).

    .venv/bin/python bench/bench_calibration.py --store /path/to/warm/store [--full-read]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def zoo_selection():
    """``(models, {model: weights sha256}, {stated dataset id: eval set id})``: what to read.
    Set-up, outside the timing (building the sets' specs imports torch for the A-like set)."""
    from clipsafety import catalog, synth
    from clipsafety.catalog import read_catalog
    from clipsafety.datasets import get_dataset

    models = catalog.resolve_models("zoo")
    cat = read_catalog("zoo").set_index("id")
    sets = [f"synth:{s}" for s in synth.eval_sets()]
    # the id a record states (a set with a default parameter names it: shift-corrupt-3)
    return models, {m: cat.loc[m, "weights_sha256"] for m in models}, {
        get_dataset(d).dataset_id: d for d in sets}


def zoo_records(store_root: str, selection, full_read: bool = False):
    """``({dataset: {model: record}}, seconds, missing)`` read from the store."""
    from clipsafety.records import PredictionRecord
    from clipsafety.store import Store
    from safetensors.numpy import load_file

    models, want_sha, stated = selection
    t0 = time.perf_counter()
    st = Store(store_root)
    out = {d: {} for d in stated.values()}
    for key in st.keys():
        d = st.record_dir(key)
        man = json.loads((d / "manifest.json").read_text())
        mid = man.get("model", {}).get("model_id")
        ds = stated.get(man.get("dataset", {}).get("dataset_id"))
        if ds is None or mid not in want_sha:
            continue
        if man["model"].get("weights_sha256") != want_sha[mid] or man.get("precision") != "fp32":
            continue
        if man.get("label_space", "synth") != "synth":
            continue  # another head of the same model (the OOD chapter's negative labels)
        if full_read:
            rec = st.get(key)
        else:
            arr = load_file(str(d / "arrays.safetensors"))
            rec = PredictionRecord(logits=arr["logits"], targets=arr["targets"],
                                   ids=np.arange(len(arr["targets"])), manifest=man)
        out[ds][mid] = rec
    missing = [(m, d) for d in out for m in models if m not in out[d]]
    return out, time.perf_counter() - t0, missing


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default="", help="a warm store (default: $CLIPSAFETY_STORE or .cache/store)")
    ap.add_argument("--target", type=float, default=10.0)
    ap.add_argument("--full-read", action="store_true", help="read records with Store.get as well")
    args = ap.parse_args(argv)

    from clipsafety.store import default_root
    from clipsafety.studies import calibration as study

    root = args.store or str(default_root())
    # imports and one-off set-up (scikit-learn for the split) outside the timing
    study.temperature_split(np.repeat([0, 1], 4))
    selection = zoo_selection()
    recs, t_read, missing = zoo_records(root, selection)
    n = sum(len(v) for v in recs.values())
    if missing:
        print(f"{len(missing)} (model, dataset) records are missing from {root}, e.g. "
              f"{missing[:3]}; warm the store first (run the calibration chapter once with "
              f"store={root!r}).")
        return 1
    t0 = time.perf_counter()
    table = study.calibration_table(recs, "synth:id-test")
    t_table = time.perf_counter() - t0
    n_numbers = int(table.select_dtypes("number").notna().sum().sum())
    total = t_read + t_table
    print(f"{n} records ({len(recs['synth:id-test'])} zoo models x {len(recs)} sets) from {root}")
    print(f"read (manifest + arrays)      {t_read:7.2f} s")
    print(f"calibration table             {t_table:7.2f} s  ({len(table)} rows, {n_numbers} numbers)")
    print(f"total                         {total:7.2f} s  (target {args.target:g} s)")
    if args.full_read:
        _, t_full, _ = zoo_records(root, selection, full_read=True)
        print(f"read with Store.get (+ samples.parquet) {t_full:7.2f} s (for comparison)")
    if total > args.target:
        print(f"FAILED: {total:.2f} s > {args.target:g} s")
        return 1
    print("target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
