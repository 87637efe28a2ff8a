"""Build data/catalog/params.csv: parameters and per-image forward FLOPs of the real catalog.

    .venv/bin/python data/catalog/count_params.py [--flops-groups clip-zeroshot clip-ft-direct ...]

What the Ray engine asks of a cluster per task (:func:`clipsafety.engines.task_resources`)
and what bench/bench_ray.py scales the paper matrix with. Columns: ``id``, ``params`` (the
whole model: a CLIP's image and text towers), ``image_gflops`` (one 3 x res x res forward of
the image tower, multiply-adds counted twice), ``params_from``:

- ``timm results-imagenet.csv``: timm's published ``param_count`` (the mirrored
  ``results/results-imagenet.csv`` of pytorch-image-models), for timm models it lists;
- ``counted``: the architecture built on PyTorch's ``meta`` device (no weights, no memory)
  and its parameters summed; FLOPs always come from ``torch.utils.flop_counter`` on it.

FLOPs are counted for the groups in ``--flops-groups`` (default: the CLIP groups; every
row takes tens of minutes on 2 cores), empty elsewhere.
"""

from __future__ import annotations

import argparse
import warnings
from functools import cache
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
CLIP_GROUPS = ("clip-zeroshot", "clip-ft-direct", "clip-ft-2stage")


def _published() -> dict[str, float]:
    from clipsafety.external import fetch

    try:
        path = fetch("huggingface/pytorch-image-models/results/results-imagenet.csv")
    except Exception:  # noqa: BLE001 - no mirror and offline: count everything
        return {}
    df = pd.read_csv(path)
    df["params"] = pd.to_numeric(df["param_count"], errors="coerce") * 1e6
    df = df.dropna(subset=["params"])
    return dict(zip(df["model"], df["params"]))


@cache
def _build(library: str, arch: str):
    import torch

    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        if library == "open_clip":
            import open_clip

            model = open_clip.create_model(arch, pretrained=None, device="meta")
            return model, model.visual
        import timm

        model = timm.create_model(arch, pretrained=False)
        return model, model


def _gflops(image_tower, res: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.empty(1, 3, res, res, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        image_tower.eval()(x)
    return counter.get_total_flops() / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--flops-groups", nargs="*", default=list(CLIP_GROUPS))
    args = p.parse_args()
    cat = pd.read_csv(HERE / "models.csv")
    published = _published()
    rows = []
    for r in cat.itertuples():
        name = r.id.split(":", 1)[1]
        arch = r.arch if r.library == "open_clip" else name.split("@")[0].split(".")[0]
        params, source, gflops = published.get(name.split("@")[0]), "timm results-imagenet.csv", None
        want_flops = r.group in args.flops_groups
        if params is None or r.library == "open_clip" or want_flops:
            try:
                model, tower = _build(r.library, arch)
                if params is None or r.library == "open_clip":
                    params, source = sum(t.numel() for t in model.parameters()), "counted"
                if want_flops:
                    gflops = round(_gflops(tower, int(r.resolution)), 3)
            except Exception as e:  # noqa: BLE001 - an architecture this library cannot build
                print(f"{r.id}: not counted ({type(e).__name__}: {e})")
        rows.append({"id": r.id, "params": None if params is None else int(params),
                     "image_gflops": gflops, "params_from": source if params is not None else None})
    out = pd.DataFrame(rows)
    out["params"] = out["params"].astype("Int64")
    out.to_csv(HERE / "params.csv", index=False)
    print(f"wrote {HERE / 'params.csv'}: {out['params'].notna().sum()} of {len(out)} with params, "
          f"{out['image_gflops'].notna().sum()} with FLOPs")


if __name__ == "__main__":
    main()
