"""The Ray engine against the local one on the zoo matrix, and the paper matrix on N GPUs.

    .venv/bin/python bench/bench_ray.py                       # 6 zoo models x 4 synthetic sets
    .venv/bin/python bench/bench_ray.py --models 12 --n 1000 --gpus 8 16 64

Measures, on this machine (each engine writing into a fresh store of its own):

- wall time of the local engine and of the Ray engine on the same matrix (the Ray figure
  without and with starting the local cluster), and of a second Ray run that finds every
  record in the store;
- the scheduling overhead per task: the wall time per no-op Ray task submitted with the
  same options (``num_cpus=1``, ``memory``), waited on with ``ray.wait`` as the engine does;
- the per-image costs the estimate uses: the zoo's CPU forward (from the local run), and the
  decode + transform of a 500x375 JPEG through the project's own pipeline (``load_rgb``, then
  open_clip's 224 px eval transform; one CPU thread): measure it on an idle machine
  (``--decode-only`` skips the Ray part).

Then estimates the paper's matrix (the CLIP groups of the real catalog, ``--groups``, on the
13 real evaluation sets at their published sizes, :data:`PAPER_SETS`) on N GPUs: per image
``max(forward, decode / decoders)``, the forward from the image tower's FLOPs
(``data/catalog/params.csv``, counted by ``data/catalog/count_params.py``) at an assumed
effective GPU throughput (``--gpu-tflops``: an assumption, printed as such; no GPU here),
the decode from the measured cost spread over ``--decoders`` CPU processes per GPU; and the
same with the shared tensor cache (:mod:`clipsafety.datasets.tensor_cache`: each set decoded
once per distinct preprocessing, counted from open_clip's and timm's bundled configs), with
the decodes counted both ways.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

#: the real evaluation sets and their published sizes (images)
PAPER_SETS = {"imagenet:val": 50_000, "imagenet:v2": 10_000, "imagenet:sketch": 50_889,
              "imagenet:r": 30_000, "imagenet:a": 7_500, "objectnet": 18_574, "imagenet:o": 2_000,
              "ood:inaturalist": 10_000, "ood:sun": 10_000, "ood:places": 10_000,
              "ood:textures": 5_640, "ood:ninco": 5_879, "cue-conflict": 1_280}


def noop_overhead(n: int) -> float:
    """Seconds per no-op task through Ray (submit, schedule, run, ``ray.wait`` one by one)."""
    import ray

    @ray.remote(max_retries=3)
    def noop(task):
        return task

    ray.get([noop.options(num_cpus=1).remote(i) for i in range(20)])  # warm the workers
    t = time.perf_counter()
    pending = [noop.options(num_cpus=1, memory=2**20).remote(i) for i in range(n)]
    while pending:
        _, pending = ray.wait(pending, num_returns=1)
    return (time.perf_counter() - t) / n


def decode_ms(n: int = 32) -> tuple[float, float]:
    """Milliseconds of one thread per 500x375 JPEG: ``(decode, decode + transform)``, through
    the pipeline the project uses (``clipsafety.datasets.load_rgb``, then open_clip's 224 px
    eval transform: bicubic resize, centre crop, to tensor, CLIP's normalisation), best of 3."""
    import open_clip
    import torch
    from clipsafety.datasets import load_rgb

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_throughput import make_jpegs

    torch.set_num_threads(1)
    tf = open_clip.image_transform(224, is_train=False)
    with tempfile.TemporaryDirectory() as tmp:
        make_jpegs(Path(tmp), n)
        files = sorted(Path(tmp).rglob("*.JPEG"))
        best_dec = best_all = 1e9
        for _ in range(3):
            t = time.perf_counter()
            imgs = [load_rgb(f) for f in files]
            best_dec = min(best_dec, time.perf_counter() - t)
            t = time.perf_counter()
            for f in files:
                tf(load_rgb(f))
            best_all = min(best_all, time.perf_counter() - t)
        del imgs
    return 1000 * best_dec / n, 1000 * best_all / n


def preprocessing_of(model_id: str) -> tuple | None:
    """What a model's eval transform depends on (resolution, resize mode, crop, interpolation,
    mean, std), from open_clip's and timm's bundled configs (nothing downloaded); ``None``
    where neither knows the model."""
    import open_clip
    import timm

    source, _, rest = model_id.partition(":")
    name, _, tag = rest.partition("@")
    if source == "openclip":
        cfg = open_clip.get_model_config(name) or {}
        pre = open_clip.get_pretrained_cfg(name, tag) if tag else {}
        size = (cfg.get("vision_cfg") or {}).get("image_size")
        if size is None:
            return None
        return ("openclip", str(size), pre.get("interpolation", "bicubic"),
                pre.get("resize_mode", "shortest"),
                tuple(pre.get("mean") or open_clip.OPENAI_DATASET_MEAN),
                tuple(pre.get("std") or open_clip.OPENAI_DATASET_STD))
    if source == "timm":
        try:
            pc = timm.models.get_pretrained_cfg(name)
        except Exception:  # noqa: BLE001 - an unknown name: not counted
            pc = None
        if pc is None:
            return None
        pc = pc.to_dict()
        return ("timm", str(pc.get("input_size")), pc.get("interpolation"), pc.get("crop_mode"),
                pc.get("crop_pct"), tuple(pc.get("mean") or ()), tuple(pc.get("std") or ()))
    return None


def paper_estimate(groups, gpus, gpu_tflops: float, decoders: int, decode: float,
                   overhead: float, decode_from: str = "measured here") -> None:
    """GPU-hours of the paper matrix, without and with the shared tensor cache: per image and
    model ``max(forward, decode / decoders)`` without it; with it, each set is decoded once per
    distinct preprocessing, while that preprocessing's first model runs (at ``max(forward,
    decode / decoders)``), and every other model runs at its forward. The forward comes from
    counted FLOPs at an ASSUMED throughput: an estimate."""
    import pandas as pd
    from clipsafety.catalog import read_catalog
    from clipsafety.files import REPO_ROOT

    cat = read_catalog("real")
    cat = cat[cat["group"].isin(groups)]
    counted = pd.read_csv(REPO_ROOT / "data" / "catalog" / "params.csv")
    df = cat.merge(counted, on="id", how="left")
    have = df["image_gflops"].notna()
    # models whose FLOPs the meta-device count could not get: the median of the others
    gflops = df["image_gflops"].fillna(df["image_gflops"].median())
    images = sum(PAPER_SETS.values())
    forward_s = gflops / (gpu_tflops * 1e3)  # seconds per image
    per_image = forward_s.clip(lower=decode / 1000 / decoders)
    tasks = len(df) * len(PAPER_SETS)
    gpu_hours = float(per_image.sum()) * images / 3600 + tasks * overhead / 3600
    pre = [preprocessing_of(m) for m in df["id"]]
    known = [p for p in pre if p is not None]
    # a model whose preprocessing is unknown counts as one of its own (no sharing assumed)
    distinct = len(set(known)) + (len(pre) - len(known))
    largest = max((known.count(p) for p in set(known)), default=0)
    decodes_without, decodes_with = len(df) * images, distinct * images
    # with the cache, each preprocessing's first model (the slowest forward of its group) runs
    # at the decode's pace while the cache is filled, as every model did without it; the others
    # then read the cache at their forward's pace
    groups_s = 0.0
    keys = [p if p is not None else ("unknown", i) for i, p in enumerate(pre)]
    for k in set(keys):
        fw = forward_s[[i for i, q in enumerate(keys) if q == k]]
        groups_s += max(decode / 1000 / decoders, float(fw.max())) + float(fw.sum() - fw.max())
    shared_hours = (groups_s * images + tasks * overhead) / 3600
    # records: float32 logits over 1000 classes (what the store writes) and in float16
    logit_bytes = len(df) * images * 1000
    print(f"paper matrix: {len(df)} models ({', '.join(groups)}; FLOPs counted for {int(have.sum())}, "
          f"the median for the other {int((~have).sum())}) "
          f"x {len(PAPER_SETS)} sets = {tasks} tasks, {images:,} images per model")
    print(f"  preprocessings: {distinct} distinct ({len(known)} models' from open_clip/timm "
          f"configs, the largest shared by {largest}; {len(pre) - len(known)} unknown, each "
          "counted as its own)")
    print(f"  per image: forward median {1000 * forward_s.median():.2f} ms at the ASSUMED "
          f"{gpu_tflops:g} effective TFLOP/s (image-tower GFLOPs: median "
          f"{df.loc[have, 'image_gflops'].median():.1f}, max {df['image_gflops'].max():.0f}); decode "
          f"+ transform {decode:.2f} ms {decode_from} / {decoders} decoders per GPU")
    print(f"  decodes: {decodes_without:,} without the shared tensor cache "
          f"({decodes_without * decode / 1000 / 3600:,.1f} CPU core-hours), {decodes_with:,} with it "
          f"({decodes_with * decode / 1000 / 3600:,.1f} core-hours)")
    print(f"  ESTIMATE: {gpu_hours:,.1f} GPU-hours without the shared cache, {shared_hours:,.1f} "
          f"with it; store {logit_bytes * 4 / 1e9:,.0f} GB of logits in float32 "
          f"({logit_bytes * 2 / 1e9:,.0f} GB in float16)")
    for n in gpus:
        print(f"  on {n:4d} GPUs: {gpu_hours / n:8.1f} h without, {shared_hours / n:8.1f} h with")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=int, default=6, help="zoo models (catalog order, every 8th)")
    p.add_argument("--datasets", nargs="+", default=["synth:id-test", "synth:shift-v2",
                                                       "synth:shift-sketch", "synth:shift-corrupt"])
    p.add_argument("--n", type=int, default=500, help="samples per synthetic set")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--noop-tasks", type=int, default=300)
    p.add_argument("--groups", nargs="+", default=["clip-zeroshot", "clip-ft-direct", "clip-ft-2stage"])
    p.add_argument("--gpus", type=int, nargs="+", default=[1, 8, 32, 128])
    p.add_argument("--gpu-tflops", type=float, default=100.0,
                   help="ASSUMED effective bf16 TFLOP/s of one GPU on these forwards")
    p.add_argument("--decoders", type=int, default=8, help="CPU decode processes per GPU")
    p.add_argument("--estimate-only", nargs=2, type=float, metavar=("DECODE_MS", "OVERHEAD_MS"),
                   help="skip the measurements: scale the paper matrix with these figures")
    p.add_argument("--decode-only", action="store_true",
                   help="measure the decode + transform only (no Ray), then scale the paper matrix "
                        "with it and OVERHEAD_MS 1.8")
    args = p.parse_args()
    if args.estimate_only:
        decode, overhead = args.estimate_only
        paper_estimate(args.groups, args.gpus, args.gpu_tflops, args.decoders, decode, overhead / 1000,
                       decode_from="(given)")
        return
    if args.decode_only:
        dec, dec_tf = decode_ms()
        print(f"JPEG decode      : {dec:7.2f} ms per 500x375 JPEG; {dec_tf:.2f} ms with open_clip's "
              f"224 px transform (one thread, best of 3; load average {os.getloadavg()[0]:.2f})")
        paper_estimate(args.groups, args.gpus, args.gpu_tflops, args.decoders, dec_tf, 1.8 / 1000)
        return

    import ray
    from clipsafety import engines
    from clipsafety.catalog import list_models

    zoo = list_models("zoo")
    models = zoo[::max(1, len(zoo) // args.models)][:args.models]
    opts = engines.EvalOptions(device="cpu", dataset_kw=(("n", args.n),))
    tmp = Path(tempfile.mkdtemp(prefix="bench_ray-"))
    try:
        t = time.perf_counter()
        local = engines.run_matrix(models, args.datasets, opts, engine="local", store=tmp / "local",
                                   progress=False)
        local_s = time.perf_counter() - t
        print(f"local engine     : {local_s:7.1f} s", flush=True)
        t = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        init_s = time.perf_counter() - t
        remote = engines.run_matrix(models, args.datasets, opts, engine="ray", store=tmp / "ray",
                                    progress=False)
        warm = engines.run_matrix(models, args.datasets, opts, engine="ray", store=tmp / "ray",
                                  progress=False)
        overhead = noop_overhead(args.noop_tasks)
        ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, res in (("local", local), ("ray", remote), ("ray warm", warm)):
        bad = res.failures
        assert not bad, f"{name}: {bad}"
    n_tasks = len(local.rows)
    images = sum(r["images"] for r in local.rows)
    per_image = [r["seconds"] / r["images"] for r in local.rows if r["images"] and r["model_cached"]]
    print(f"zoo matrix: {len(models)} models x {len(args.datasets)} sets at n={args.n} "
          f"= {n_tasks} tasks, {images} images, {args.cpus} CPUs")
    print(f"ray engine       : {remote.seconds:7.1f} s (+ {init_s:.1f} s to start the local cluster; "
          f"speed-up {local_s / remote.seconds:.2f}x, {local_s / (remote.seconds + init_s):.2f}x with it)")
    print(f"ray, all cached  : {warm.seconds:7.1f} s ({1000 * warm.seconds / n_tasks:.0f} ms per task: "
          "the store read; the workers still hold the models)")
    print(f"ray overhead     : {1000 * overhead:7.2f} ms per no-op task ({args.noop_tasks} tasks, "
          f"submit {1000 * remote.extra['submit_seconds'] / n_tasks:.2f} ms per task)")
    cpu_ms = 1000 * statistics.median(per_image) if per_image else float("nan")
    print(f"zoo CPU forward  : {cpu_ms:7.3f} ms per 32 px image (median over tasks whose model "
          "was loaded; local engine, 2 threads)")
    dec, dec_tf = decode_ms()
    print(f"JPEG decode      : {dec:7.2f} ms per 500x375 JPEG; {dec_tf:.2f} ms with open_clip's "
          f"224 px transform (one thread, best of 3; load average {os.getloadavg()[0]:.2f})")
    paper_estimate(args.groups, args.gpus, args.gpu_tflops, args.decoders, dec_tf, overhead)


if __name__ == "__main__":
    main()
