"""Cost of a safety card (``clipsafety card MODEL``).

Zoo: a card of a zoo model whose predictions are not in the store (a fresh, empty store: 12
predictions on the synthetic world, then the measurements and the placement on the zoo), and
a second card of the same model (every record read from the store). Target: the first under
60 s on 2 cores. Wall time depends on what else runs on the machine: the load average and the
process's CPU seconds are printed beside it. ``--cold-world`` also empties the world's image
cache (``CLIPSAFETY_CACHE``), so the synthetic images are generated again.

Real path: the estimated GPU time of each property on the full sets, from counted work
(images x forward GFLOPs of one image, :func:`clipsafety.card.gpu_cost`), for a few catalog
models. An estimate, not a measurement.

    .venv/bin/python bench/bench_card.py [--model zoo:clip-resnet-wit-100k] [--cold-world]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def _timed(fn):
    t0, c0, l0 = time.perf_counter(), _cpu(), os.getloadavg()[0]
    out = fn()
    return out, time.perf_counter() - t0, _cpu() - c0, (l0 + os.getloadavg()[0]) / 2


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="zoo:clip-resnet-wit-100k")
    ap.add_argument("--target", type=float, default=60.0)
    ap.add_argument("--cold-world", action="store_true")
    ap.add_argument("--real", nargs="*", default=["openclip:ViT-B-32@openai", "openclip:ViT-L-14@openai",
                                                   "timm:resnet50.a1_in1k"])
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-card-"))
    if args.cold_world:
        os.environ["CLIPSAFETY_CACHE"] = str(tmp / "cache")
    from clipsafety import card

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    first, wall, cpu, load = _timed(lambda: card.build(args.model, tmp / "out1", store=tmp / "store",
                                                      device="cpu"))
    ok = wall < args.target
    print(f"first card (empty store{', cold world cache' if args.cold_world else ''}): {wall:.1f} s wall, "
          f"{cpu:.1f} CPU-s, load {load:.1f}  [target < {args.target:.0f} s: {'met' if ok else 'NOT met'}]")
    print(f"  of which collecting records: {first['provenance']['collect_seconds']:.1f} s")
    second, wall2, cpu2, load2 = _timed(lambda: card.build(args.model, tmp / "out2", store=tmp / "store",
                                                        device="cpu"))
    print(f"second card (store hits): {wall2:.1f} s wall, {cpu2:.1f} CPU-s, load {load2:.1f}; "
          f"collecting {second['provenance']['collect_seconds']:.1f} s")
    size = (tmp / "out1" / "card.html").stat().st_size
    print(f"card.html {size / 1e3:.0f} kB, card.json {(tmp / 'out1' / 'card.json').stat().st_size / 1e3:.0f} kB")

    print("\nreal path, estimated GPU time per property on the full sets (counted work):")
    for m in args.real:
        g = card._image_gflops(m)
        if g != g and m.startswith("timm:"):  # not in the catalog's counts: count it here
            import timm

            g = card.count_gflops(timm.create_model(m.removeprefix("timm:").split(".")[0], pretrained=False))
        coll = card.Collected(model=m, path="real", group="", zero_shot=m.startswith("openclip:"),
                              image_gflops=g)
        rows = card.gpu_cost(coll)
        total = sum(r["seconds"] for r in rows)
        print(f"  {m} ({coll.image_gflops:.2f} GFLOPs/image): " + ", ".join(
            f"{r['property']} {r['new_images']:,} new images {r['seconds'] / 60:.1f} min" for r in rows)
            + f"; total {total / 60:.1f} min")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
