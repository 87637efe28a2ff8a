"""Throughput of the full pipeline against the bare model forward (same model, batch size).

    .venv/bin/python bench/bench_throughput.py                    # CPU, resnet18@random, 224 px
    .venv/bin/python bench/bench_throughput.py --device cuda --model openclip:ViT-B-32@random --n 4096

pipeline = clipsafety.predict on a folder of JPEGs (decode, transform, DataLoader, forward,
shards and record written to a fresh store); bare = the same module on already-transformed
tensors, batch by batch, with the same autocast / channels_last settings. Prints images/s of
both and their ratio (target >= 0.9); on CPU with in-process loading also the ratio of images
per CPU-second, which other jobs on a shared machine do not disturb. Also prints how long a pretrained load takes to fail
when the hub is unreachable (imports excluded).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_jpegs(folder: Path, n: int, size=(500, 375)) -> None:
    """ImageNet-like JPEGs (average ImageNet size 500x375): smooth colour fields plus noise."""
    from PIL import Image

    rng = np.random.default_rng(0)
    d = folder / "n01440764"
    d.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size[1], 0:size[0]]
    for i in range(n):
        a, b, c = rng.uniform(0.005, 0.05, 3)
        base = np.stack([np.sin(a * xx + i), np.cos(b * yy), np.sin(c * (xx + yy))], -1)
        img = ((base + 1) * 110 + rng.normal(0, 12, base.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(d / f"img_{i:05d}.JPEG", quality=90)


def bare_forward(loaded, spec, batch_size: int, device: str, repeats: int = 1) -> float:
    import torch

    cuda = device.startswith("cuda")
    xs = torch.stack([loaded.transform(spec[i][0]) for i in range(len(spec))])
    module = loaded.module.to(device).eval()
    if cuda:
        module = module.to(memory_format=torch.channels_last)
        xs = xs.pin_memory()
    if hasattr(module, "build"):
        module.build()

    def run():
        for s in range(0, len(xs), batch_size):
            x = xs[s:s + batch_size].to(device, non_blocking=True)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                module(x).float().cpu()

    run()  # warm-up
    if cuda:
        torch.cuda.synchronize()
    t, c = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        run()
    if cuda:
        torch.cuda.synchronize()
    n = repeats * len(xs)
    return n / (time.perf_counter() - t), n / (time.process_time() - c)


def pipeline(loaded, spec, batch_size: int, device: str, num_workers, store: Path) -> float:
    from clipsafety.infer import predict

    t, c = time.perf_counter(), time.process_time()
    rec = predict(loaded, spec, store=store, device=device, batch_size=batch_size,
                  num_workers=num_workers, progress=False, recompute=True)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    assert len(rec) == len(spec)
    return len(spec) / dt, len(spec) / dc


def offline_failure_seconds() -> float | None:
    code = ("import time, open_clip, timm\nfrom clipsafety.models import load\n"
            "t = time.perf_counter()\ntry:\n    load('openclip:ViT-B-32@laion2b_s34b_b79k')\n"
            "except Exception:\n    print(time.perf_counter() - t)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "CLIPSAFETY_OFFLINE")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False).stdout
    try:
        return float(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="timm:resnet18@random")
    p.add_argument("--device", default="cpu")
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-workers", type=int, default=None, help="default: predict's own choice")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-offline-check", action="store_true")
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import clipsafety
    from clipsafety.datasets import get_dataset

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_jpegs(tmp / "data", args.n)
        spec = get_dataset(f"folder:{tmp / 'data'}")
        loaded = clipsafety.load(args.model, device=args.device, image_size=args.image_size)
        rounds = []
        for r in range(args.rounds):  # alternate, so that load drift on a shared machine hits both
            bare = bare_forward(loaded, spec, args.batch_size, args.device)
            pipe = pipeline(loaded, spec, args.batch_size, args.device, args.num_workers,
                            tmp / f"store{r}")
            rounds.append((bare, pipe))
            print(f"round {r}: bare {bare[0]:8.1f} images/s   pipeline {pipe[0]:8.1f} images/s   "
                  f"ratio {pipe[0] / bare[0]:.3f}   (per CPU-second: {bare[1]:.1f} vs {pipe[1]:.1f}, "
                  f"ratio {pipe[1] / bare[1]:.3f})", flush=True)
    bare = float(np.median([b[0] for b, _ in rounds]))
    pipe = float(np.median([p[0] for _, p in rounds]))
    ratio = float(np.median([p[0] / b[0] for b, p in rounds]))
    cpu_ratio = float(np.median([p[1] / b[1] for b, p in rounds]))
    print(f"model {args.model}  device {args.device}  n {args.n}  batch {args.batch_size}  "
          f"threads {args.threads}  workers {args.num_workers if args.num_workers is not None else 'auto'}")
    print(f"bare forward     : {bare:9.1f} images/s (median of {len(rounds)})")
    print(f"full pipeline    : {pipe:9.1f} images/s (median of {len(rounds)})")
    print(f"ratio            : {ratio:9.3f}   (median per-round ratio; target >= 0.9)")
    if args.device == "cpu" and args.num_workers in (None, 0):
        # all work is in this process: CPU time is immune to other jobs on a shared machine
        print(f"ratio (CPU time) : {cpu_ratio:9.3f}   (images per CPU-second, pipeline / bare)")
    if not args.no_offline_check:
        s = offline_failure_seconds()
        print(f"offline load fail: {s:9.3f} s (target < 5)" if s is not None else "offline check: no failure seen")


if __name__ == "__main__":
    main()
