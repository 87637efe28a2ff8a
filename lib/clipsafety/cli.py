"""Command line: ``clipsafety eval --models ... --datasets ... [--catalog NAME]``.

Runs every (model, dataset) pair through :func:`clipsafety.predict` (records already in the
store are read, not recomputed) and prints a summary table. All ids are checked before any
work starts; an unknown id stops the run with the nearest valid ids. A pair that fails
(missing weights, wrong folder layout) is reported in the table and the rest still run;
the exit status is 1 if any pair failed.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import time


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clipsafety", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("eval", help="predict a matrix of models x datasets into the store")
    e.add_argument("--models", nargs="*", default=[], help="model ids (openclip:..., timm:..., zoo:...)")
    e.add_argument("--catalog", help="take the models from a catalog: 'real', 'zoo' or a CSV path")
    e.add_argument("--groups", nargs="*", help="with --catalog: only these groups (style.py ids)")
    e.add_argument("--limit", type=int, help="with --catalog: at most this many models")
    e.add_argument("--datasets", nargs="+", required=True, help="dataset ids (imagenet:val, synth:id-test, ...)")
    e.add_argument("--data-root", help="folder holding the datasets (default $CLIPSAFETY_DATA_ROOT)")
    e.add_argument("--store", help="prediction store (default $CLIPSAFETY_STORE or .cache/store)")
    e.add_argument("--device", default="auto")
    e.add_argument("--batch-size", type=int)
    e.add_argument("--num-workers", type=int)
    e.add_argument("--templates", default="openai", help="openai | simple | single | a text file")
    e.add_argument("--classnames", help="label space of CLIP heads: imagenet-1k | cue-conflict-16 | dataset")
    e.add_argument("--image-size", type=int, help="override input resolution (tests, benchmarks)")
    e.add_argument("--no-progress", action="store_true")
    e.add_argument("--out", help="also write the summary table to this CSV")
    sub.add_parser("datasets", help="list dataset ids")
    m = sub.add_parser("models", help="list model ids of a catalog")
    m.add_argument("--catalog", default="real")
    return p


def _check_models(ids: list[str]) -> list[str]:
    """Messages for ids that cannot be right, with suggestions (no weights are loaded)."""
    from clipsafety.models import is_known_id, registry_table, suggest

    forms = ", ".join(f for _, _, fs in registry_table() for f in fs)
    errors = []
    for mid in ids:
        if not is_known_id(mid):
            near = suggest(mid)
            errors.append(f"unknown model id {mid!r}." + (f" Did you mean {', '.join(near)}?" if near else
                          f" Expected one of the registered forms: {forms}."))
    return errors


def _check_datasets(ids: list[str]) -> list[str]:
    from clipsafety.datasets import list_datasets

    known = list_datasets()
    errors = []
    for d in ids:
        if d.startswith("folder:") or d in known:
            continue
        near = difflib.get_close_matches(d, known, n=5, cutoff=0.4)
        errors.append(f"unknown dataset id {d!r}." + (f" Did you mean {', '.join(near)}?" if near else
                                                     f" Known: {', '.join(known[:20])} ..."))
    return errors


def _summary(rec) -> dict:
    """Top-1 accuracy for the table (over the label subset; ObjectNet via its label map)."""

    from clipsafety.datasets import project_logits
    from clipsafety.metrics.core import accuracy

    m = rec.manifest
    keep = rec.targets >= 0
    if not keep.any():
        return {"top1": None}
    if m.get("label_map") is not None and m["label_space"] != m["target_space"]:
        return {"top1": accuracy(project_logits(rec.logits[keep], m["label_map"]), rec.targets[keep])}
    if m["label_space"] != m["target_space"]:
        return {"top1": None}
    return {"top1": accuracy(rec.logits[keep], rec.targets[keep], m.get("label_subset"))}


def run_eval(args) -> int:
    import pandas as pd

    from clipsafety.catalog import read_catalog
    from clipsafety.infer import predict
    from clipsafety.store import Store

    models = list(args.models)
    if args.catalog:
        cat = read_catalog(args.catalog)
        if args.groups:
            cat = cat[cat["group"].isin(args.groups)]
        models += cat["id"].tolist()[: args.limit]
    if not models:
        print("clipsafety eval: no models; pass --models ID ... or --catalog NAME", file=sys.stderr)
        return 2
    errors = _check_models(models) + _check_datasets(args.datasets)
    if errors:
        print("clipsafety eval: stopped before running anything:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 2
    store = Store(args.store)
    rows, failed = [], 0
    for mid in models:
        for did in args.datasets:
            t0 = time.perf_counter()
            row = {"model": mid, "dataset": did}
            try:
                rec = predict(mid, did, data_root=args.data_root, store=store, device=args.device,
                              batch_size=args.batch_size, num_workers=args.num_workers,
                              templates=args.templates, classnames=args.classnames,
                              image_size=args.image_size, progress=not args.no_progress)
                cached = getattr(rec, "cache_hit", False)
                row.update(n=len(rec), skipped=rec.manifest.get("n_skipped", 0), **_summary(rec),
                           status="cached" if cached else "computed", key=rec.manifest.get("key", "")[:10])
            except Exception as e:  # noqa: BLE001 - one failing pair must not stop the matrix
                failed += 1
                row.update(status=f"error: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
            row["seconds"] = round(time.perf_counter() - t0, 2)
            rows.append(row)
    table = pd.DataFrame(rows)
    with pd.option_context("display.max_colwidth", 200, "display.width", 250):
        print(table.to_string(index=False))
    if args.out:
        table.to_csv(args.out, index=False)
    print(f"store: {store.root}  ({len(rows) - failed} ok, {failed} failed)")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "eval":
        return run_eval(args)
    if args.command == "datasets":
        from clipsafety.datasets import list_datasets

        print("\n".join(list_datasets()))
        return 0
    if args.command == "models":
        from clipsafety.catalog import list_models

        print("\n".join(list_models(args.catalog)))
        return 0
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
