"""Command line: ``clipsafety eval --models ... --datasets ... [--catalog NAME]``.

Runs every (model, dataset) pair through :func:`clipsafety.predict` (records already in the
store are read, not recomputed; ``--recompute`` replaces them) and prints a summary table.
Every id and option is checked before any work starts: a bad one stops the run with exit
status 2 and one message naming it, what was expected and what to do (nearest valid ids for
an unknown id). A pair that fails (missing weights, wrong folder layout, label spaces that do
not meet) is reported in the table, its full message below it, and the rest still run; the
exit status is 1 if any pair failed. No traceback reaches the user (``CLIPSAFETY_DEBUG=1``
shows it).

``--engine ray [--address ADDR]`` runs the same tasks on a Ray cluster (one task per model,
dataset and head; :mod:`clipsafety.engines`), writing the same records into a store every
worker sees; ``--engine local`` (the default) runs them here, one after the other.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


class UsageError(ValueError):
    """A command-line value that cannot be right (exit status 2)."""


def _int_at_least(minimum: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; expected an integer >= "
                                             f"{minimum} ({what})") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is not valid; expected an integer >= "
                                             f"{minimum} ({what})")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    from clipsafety.infer import CLASSNAME_CHOICES

    p = argparse.ArgumentParser(prog="clipsafety", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("eval", help="predict a matrix of models x datasets into the store")
    e.add_argument("--models", nargs="*", default=[], help="model ids (openclip:..., timm:..., zoo:...)")
    e.add_argument("--catalog", help="take the models from a catalog: 'real', 'zoo' or a CSV path")
    e.add_argument("--groups", nargs="*", help="with --catalog: only these groups (style.py ids)")
    e.add_argument("--limit", type=_int_at_least(1, "models taken from the catalog"),
                   help="with --catalog: at most this many models")
    e.add_argument("--datasets", nargs="+", required=True, help="dataset ids (imagenet:val, synth:id-test, ...)")
    e.add_argument("--data-root", help="folder holding the datasets (default $CLIPSAFETY_DATA_ROOT)")
    e.add_argument("--store", help="prediction store folder (default $CLIPSAFETY_STORE or .cache/store)")
    e.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    e.add_argument("--batch-size", type=_int_at_least(1, "images per forward pass"))
    e.add_argument("--num-workers", type=_int_at_least(0, "DataLoader worker processes"))
    e.add_argument("--templates", default="openai", help="openai | simple | single | a text file")
    e.add_argument("--classnames", choices=CLASSNAME_CHOICES,
                   help="label space of CLIP heads (default: imagenet-1k; a folder: dataset's own classes)")
    e.add_argument("--image-size", type=_int_at_least(16, "input resolution in pixels"),
                   help="override input resolution (tests, benchmarks)")
    e.add_argument("--recompute", action="store_true",
                   help="ignore stored records of these pairs: compute and replace them")
    e.add_argument("--no-progress", action="store_true")
    e.add_argument("--out", help="also write the summary table to this CSV")
    e.add_argument("--engine", default="local",
                   help="local (this process, the default) | ray (a Ray cluster: one task per pair)")
    e.add_argument("--address", help="with --engine ray: the cluster (auto, HOST:6379, "
                   "ray://HOST:10001); default: start a local Ray on this machine")
    e.add_argument("--retries", type=_int_at_least(0, "retries of a task whose worker died"),
                   default=3, help="with --engine ray: retries of a task whose worker died (default 3)")
    sub.add_parser("datasets", help="list dataset ids")
    m = sub.add_parser("models", help="list model ids of a catalog")
    m.add_argument("--catalog", default="real")
    _add_card_parser(sub)
    return p


def _check_models(ids: list[str]) -> list[str]:
    """Messages for ids that cannot be right, with suggestions (no weights are loaded)."""
    from clipsafety.models import is_known_id, registry_table, suggest

    forms = ", ".join(f for _, _, fs in registry_table() for f in fs)
    errors = []
    for mid in ids:
        if not isinstance(mid, str) or not is_known_id(mid):
            near = suggest(mid) if isinstance(mid, str) else []
            errors.append(f"unknown model id {mid!r}." + (f" Did you mean {', '.join(near)}?" if near else
                          f" Expected one of the registered forms: {forms}."))
    return errors


def _check_datasets(ids: list[str], data_root: str | None = None) -> list[str]:
    """Messages for dataset ids the registry does not know (nearest ids suggested) and for
    ``folder:`` paths that are not folders (checked here, before any work)."""
    from clipsafety.datasets import UnknownDataset, dataset_info

    errors = []
    for d in ids:
        try:
            entry = dataset_info(d)
        except UnknownDataset as exc:
            errors.append(str(exc))
            continue
        if entry.source == "folder":
            path = d.split(":", 1)[1].strip()
            if not path:
                errors.append(f"dataset {d!r} has no path after 'folder:'; expected folder:PATH, "
                              "e.g. folder:/data/my-classes (one sub-folder per class).")
            elif not Path(path).expanduser().is_dir():
                what = "does not exist" if not Path(path).expanduser().exists() else "is not a folder"
                errors.append(f"dataset {d!r}: {path} {what}; expected a folder of class folders "
                              "(PATH/<class>/*.jpg). Check the path after 'folder:'.")
    return errors


def _check_options(args) -> list[str]:
    """Messages for option values that cannot be right (before any work)."""
    from clipsafety.engines import check_engine
    from clipsafety.heads import TEMPLATE_SETS
    from clipsafety.infer import DeviceUnavailable, device_name, resolve_device
    from clipsafety.store import Store, StoreError

    errors = check_engine(args.engine, args.address)
    try:  # with Ray the workers' machines decide whether a GPU is there: only the name here
        (device_name if args.engine == "ray" else resolve_device)(args.device)
    except DeviceUnavailable as exc:
        errors.append(f"--device: {exc}")
    try:
        Store(args.store)
    except StoreError as exc:
        errors.append(f"--store: {exc}")
    if args.data_root is not None and not Path(args.data_root).expanduser().is_dir():
        errors.append(f"--data-root {args.data_root!r} is not a folder; expected the folder that "
                      "holds the datasets (imagenet/val, imagenet-r, ...).")
    t = args.templates
    if t not in TEMPLATE_SETS and not Path(t).expanduser().is_file():
        errors.append(f"--templates {t!r} is neither a named set {list(TEMPLATE_SETS)} nor an existing "
                      "file; pass a name or a text file with one template containing '{}' per line.")
    if args.out is not None:
        out = Path(args.out).expanduser()
        if out.is_dir():
            errors.append(f"--out {args.out!r} is a folder; expected the path of a CSV file to write.")
        elif not out.parent.is_dir():
            errors.append(f"--out {args.out!r}: folder {str(out.parent)!r} does not exist; create it "
                          "or write the CSV elsewhere.")
    if args.groups is not None and not args.catalog:
        errors.append("--groups selects rows of a catalog; pass --catalog NAME with it.")
    if args.groups == []:
        from clipsafety.groups import GROUPS

        errors.append(f"--groups was given without a group id, which would take every model of the "
                      f"catalog; name one or more of {list(GROUPS)} (e.g. --groups clip-zeroshot), "
                      "or leave --groups out to take the whole catalog.")
    if args.limit is not None and not args.catalog:
        errors.append("--limit limits the models of a catalog; pass --catalog NAME with it.")
    if args.groups:
        from clipsafety.groups import GROUPS

        bad = [g for g in args.groups if g not in GROUPS]
        if bad:
            errors.append(f"--groups: unknown group id(s) {bad}; expected some of {list(GROUPS)}.")
    return errors


def _read_catalog(name: str):
    """The catalog ``name``, or a UsageError naming ``--catalog`` and what was wrong."""
    from clipsafety.catalog import read_catalog

    try:
        return read_catalog(name)
    except KeyError as exc:
        raise UsageError(f"--catalog: {exc.args[0]}") from None
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(f"--catalog: {exc}") from None


def _catalog_models(args) -> list[str]:
    cat = _read_catalog(args.catalog)
    if args.groups:
        cat = cat[cat["group"].isin(args.groups)]
    return cat["id"].tolist()[: args.limit]


def run_eval(args) -> int:
    import pandas as pd

    from clipsafety import engines
    from clipsafety.store import Store

    errors = _check_options(args)
    models = list(args.models)
    if args.catalog:
        try:
            models += _catalog_models(args)
        except UsageError as exc:
            errors.append(str(exc))
    if not models and not errors:
        if args.catalog:
            which = f" in groups {list(args.groups)}" if args.groups else ""
            errors.append(f"--catalog {args.catalog!r} lists no models{which}; add rows (columns "
                          "id, group) or pass other --groups, or name models with --models ID ...")
        else:
            errors.append("no models; pass --models ID ... or --catalog NAME (real, zoo or a CSV path)")
    errors += _check_models(models) + _check_datasets(args.datasets, args.data_root)
    if errors:
        print("clipsafety eval: stopped before running anything:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 2
    store = Store(args.store)
    options = engines.EvalOptions(
        data_root=args.data_root, device=args.device, batch_size=args.batch_size,
        num_workers=args.num_workers, templates=args.templates, classnames=args.classnames,
        image_size=args.image_size, recompute=args.recompute)
    result = engines.run_matrix(models, args.datasets, options, engine=args.engine, store=store,
                                address=args.address, progress=not args.no_progress,
                                max_retries=args.retries)
    table = pd.DataFrame(engines.table_rows(result))
    failures = [f"{r['model']} | {r['dataset']}: {r['status'].removeprefix('error: ')}: {r['error']}"
                for r in result.failures]
    shown = table.drop(columns=["error"], errors="ignore")
    with pd.option_context("display.max_colwidth", 200, "display.width", 250):
        print(shown.to_string(index=False))
    if failures:
        print("errors (in full):")
        for f in failures:
            print(f"  {f}")
    if args.out:
        try:
            table.to_csv(args.out, index=False)
        except OSError as exc:  # the table above is printed and the records are stored
            print(f"clipsafety eval: --out {args.out!r}: the table could not be written "
                  f"({type(exc).__name__}: {exc}); it is printed above and every record is in "
                  f"the store ({args.store or 'the default store'}); pass another --out path.",
                  file=sys.stderr)
            return 1
    n_ok = len(table) - len(failures)
    if args.engine == "ray":
        computed = int((table.get("status") == "computed").sum()) if len(table) else 0
        images = sum(r.get("images", 0) for r in result.rows)
        print(f"ray: {len(table)} tasks in {result.seconds:.1f} s ({computed} computed, "
              f"{n_ok - computed} cached, {len(failures)} failed; {images / max(result.seconds, 1e-9):.0f} "
              "images/s computed)")
    print(f"store: {store.root}  ({n_ok} ok, {len(failures)} failed)")
    return 1 if failures else 0


def _one_line_warnings():
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {message}", file=sys.stderr, flush=True)

    warnings.showwarning = show


def _terminate(signum, frame):
    """SIGTERM stops a run as Ctrl-C does (finished records stay in the store)."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import signal

    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread
        previous = None
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import warnings

    with warnings.catch_warnings():
        _one_line_warnings()
        try:
            return _dispatch(args)
        except KeyboardInterrupt:
            print("clipsafety: interrupted; finished records are in the store, a rerun resumes.",
                  file=sys.stderr)
            return 130
        except Exception as exc:  # noqa: BLE001 - one line for the user, never a traceback
            if os.environ.get("CLIPSAFETY_DEBUG"):
                raise
            code = 2 if isinstance(exc, UsageError) else 1
            print(f"clipsafety {args.command}: error: {type(exc).__name__}: {exc} "
                  "(set CLIPSAFETY_DEBUG=1 for the traceback)", file=sys.stderr)
            return code


def _dispatch(args) -> int:
    if args.command == "card":
        return run_card(args)
    if args.command == "eval":
        return run_eval(args)
    if args.command == "datasets":
        from clipsafety.datasets import list_datasets

        print("\n".join(list_datasets()))
        return 0
    if args.command == "models":
        print("\n".join(_read_catalog(args.catalog)["id"].tolist()))
        return 0
    return 2


# --------------------------------------------------------------------------- card

def _add_card_parser(sub) -> None:
    c = sub.add_parser("card", help="a safety card of one model: card.html and card.json")
    c.add_argument("model", help="model id (zoo:..., openclip:ARCH@TAG, timm:NAME)")
    c.add_argument("--data-root", help="folder holding the real datasets (default $CLIPSAFETY_DATA_ROOT)")
    c.add_argument("--store", help="prediction store folder (default $CLIPSAFETY_STORE or .cache/store)")
    c.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    c.add_argument("--out", default="card", help="folder to write card.html and card.json to (default ./card)")
    c.add_argument("--templates", default="openai", help="openai | simple | single | a text file")
    c.add_argument("--batch-size", type=_int_at_least(1, "images per forward pass"),
                   help="default 256 on a GPU, 128 on the CPU")
    c.add_argument("--n-boot", type=_int_at_least(100, "bootstrap resamples of each interval"), default=200)
    c.add_argument("--image-size", type=_int_at_least(16, "input resolution in pixels"),
                   help="override input resolution (tests)")
    c.add_argument("--progress", action="store_true", help="show per-image progress bars")


def run_card(args) -> int:
    """``clipsafety card MODEL``: collect the model's records (store first), measure, place,
    write ``card.html`` and ``card.json`` into ``--out``. A partial card (some data missing) is
    written and its missing sets listed (exit 0); an unknown model or a data folder that is not
    there stops before any work (exit 2)."""
    from clipsafety import card
    from clipsafety.infer import DeviceUnavailable, resolve_device
    from clipsafety.store import Store, StoreError

    errors = []
    try:
        card._check_model(args.model)
    except card.CardError as exc:
        errors.append(str(exc))
    try:
        resolve_device(args.device)
    except DeviceUnavailable as exc:
        errors.append(f"--device: {exc}")
    try:
        Store(args.store)
    except StoreError as exc:
        errors.append(f"--store: {exc}")
    if args.data_root is not None and not Path(args.data_root).expanduser().is_dir():
        errors.append(f"--data-root {args.data_root!r} is not a folder; expected the folder that holds "
                      "the datasets (imagenet/val, imagenet-r, cue-conflict, ...).")
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        errors.append(f"--out {args.out!r} is a file; expected a folder to write card.html and card.json to.")
    if errors:
        print("clipsafety card: stopped before running anything:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 2
    try:
        result = card.build(args.model, out, data_root=args.data_root or "", store=args.store,
                            device=args.device, templates=args.templates, batch_size=args.batch_size,
                            n_boot=args.n_boot, progress=args.progress, image_size=args.image_size)
    except card.CardError as exc:
        raise UsageError(str(exc)) from None
    print("\n".join(f"  {i + 1}. {line}" for i, line in enumerate(result["summary"])))
    for m in result["missing"]:
        print(f"missing {m['dataset']}: {m['reason']}\n  layout: {m['layout']}\n  get it: {m['get']}",
              file=sys.stderr)
    status = {p["id"]: p["status"] for p in result["properties"]}
    print(f"card: {out / 'card.html'} and {out / 'card.json'} ("
          + ", ".join(f"{k} {v}" for k, v in status.items()) + ")")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
