"""Images per second of the synthetic-world generator on one core (prints its figures)."""

import time

import torch

torch.set_num_threads(1)

from clipsafety.synth import LABELLED, LAION, render, sample_attributes  # noqa: E402


def bench(cfg, name, n=4000, repeats=3):
    best_s, best_r = 1e9, 1e9
    for r in range(repeats):
        t = time.perf_counter()
        a = sample_attributes(cfg, n, seed=r)
        t1 = time.perf_counter()
        render(a)
        t2 = time.perf_counter()
        best_s, best_r = min(best_s, t1 - t), min(best_r, t2 - t1)
    print(f"{name:10s} n={n}: sample {n / best_s:9.0f} img/s, render {n / best_r:7.0f} img/s, "
          f"total {n / (best_s + best_r):7.0f} img/s (32x32, best of {repeats})")


if __name__ == "__main__":
    bench(LABELLED, "labelled")
    bench(LAION, "laion")
