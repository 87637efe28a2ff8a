"""Per-model cost of a real image set with and without the shared tensor cache
(:mod:`clipsafety.datasets.tensor_cache`): models that share a preprocessing decode the set
once, the first model building the cache and every other one reading it.

    .venv/bin/python bench/bench_tensor_cache.py                 # 256 JPEGs, 3 timm models, 96 px
    .venv/bin/python bench/bench_tensor_cache.py --n 1024 --image-size 224

A folder of ImageNet-sized JPEGs (500x375, ``bench_throughput.make_jpegs``); each model
predicted cold into a fresh store twice: with ``tensor_cache=False`` (decode + transform for
this model alone) and with the cache (the first model builds it). Prints the seconds per
model, the images decoded, and checks that the logits are the same both ways. resnet18 and
resnet34 share timm's preprocessing; resnet26's differs (its own crop and interpolation), so
it decodes the set again into a cache of its own.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--models", nargs="+",
                    default=["timm:resnet18@random", "timm:resnet34@random", "timm:resnet26@random"])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_throughput import make_jpegs
    from clipsafety.datasets import get_dataset
    from clipsafety.datasets.tensor_cache import STATS
    from clipsafety.infer import predict
    from clipsafety.models import load

    with tempfile.TemporaryDirectory(prefix="bench-tensor-cache-") as tmp:
        tmp = Path(tmp)
        os.environ["CLIPSAFETY_CACHE"] = str(tmp / "cache")
        make_jpegs(tmp / "data", args.n)
        spec = get_dataset(f"folder:{tmp / 'data'}")
        print(f"{args.n} JPEGs of 500x375 -> {args.image_size} px, {args.threads} thread(s), "
              f"load average {os.getloadavg()[0]:.2f}")
        print(f"{'model':<26} {'without (s)':>11} {'with (s)':>9} {'decoded':>8}  same logits")
        tot_without = tot_with = 0.0
        for i, mid in enumerate(args.models):
            loaded = load(mid, image_size=args.image_size)
            t = time.perf_counter()
            a = predict(loaded, spec, store=tmp / f"without-{i}", progress=False, tensor_cache=False)
            without = time.perf_counter() - t
            before = STATS["decoded"]
            t = time.perf_counter()
            b = predict(loaded, spec, store=tmp / f"with-{i}", progress=False)
            with_ = time.perf_counter() - t
            tot_without += without
            tot_with += with_
            print(f"{mid:<26} {without:11.2f} {with_:9.2f} {STATS['decoded'] - before:8d}  "
                  f"{np.array_equal(a.logits, b.logits)}", flush=True)
        print(f"{'all models':<26} {tot_without:11.2f} {tot_with:9.2f}  "
              f"(the first model's 'with' includes building the cache)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
