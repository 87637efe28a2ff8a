"""Speed of the prompts chapter's template sweep: 50 random template subsets at each of 3 sizes
(1, 7 and 15 of the world's 30 ``default`` templates) over every zoo CLIP: each prompt of the
pool is encoded once per model (``features.template_embeddings``), each subset's head is their
average (what ``build_zero_shot_classifier`` computes; tested), scored on the cached features
(ID accuracy, ECE and NLL before and after an ID temperature, mean shift accuracy, MCM AUROC
over the five OOD sets). Target: at most 60 s from warm features (the feature records read
from the store, inside the timing; loading the models' weights outside it). Exits 1 when the
target fails.

    .venv/bin/python bench/bench_prompts.py [--store PATH] [--subsets 50]
"""

from __future__ import annotations

import argparse
import sys
import time

TARGET_S = 60.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=None, help="prediction/feature store (default: the default store)")
    ap.add_argument("--subsets", type=int, default=50, help="random subsets per size")
    args = ap.parse_args(argv)

    import torch
    from clipsafety import catalog, features, metrics, synth
    from clipsafety.groups import CLIP_ZEROSHOT
    from clipsafety.studies import prompts as study

    torch.set_num_threads(1)
    groups = study.groups_of(catalog.resolve_models("zoo"))
    clips = [m for m, g in groups.items() if g == CLIP_ZEROSHOT]
    sets = ["synth:id-test", *(f"synth:{s}" for s in synth.SHIFTS), *(f"synth:{s}" for s in synth.OOD_SETS)]
    towers = {m: features.clip_towers(m) for m in clips}
    t0 = time.perf_counter()
    for m in clips:  # warm the feature store (outside the timing when it was cold)
        for d in sets:
            features.image_features(towers[m], d, store=args.store)
    warm_up = time.perf_counter() - t0

    subsets = study.random_subsets(study.template_set("openai"), [1, 7, 15], args.subsets, seed=0)
    t0 = time.perf_counter()
    n = 0
    for m in clips:
        f = {d: features.image_features(towers[m], d, store=args.store) for d in sets}
        idr = f["synth:id-test"]
        split = metrics.stratified_split(idr.targets, 0.5, 0)
        E = features.template_embeddings(towers[m], study.template_set("openai"))
        for s in subsets:
            W = features.head_of(E, s["index"])
            study.evaluate_head(W, idr, [f[f"synth:{x}"] for x in synth.SHIFTS],
                                [f[f"synth:{x}"] for x in synth.OOD_SETS], split=split)
            n += 1
    seconds = time.perf_counter() - t0
    ok = seconds <= TARGET_S
    print(f"prompts: {n} template subsets ({args.subsets} x 3 sizes x {len(clips)} zoo CLIPs) "
          f"scored on {len(sets)} sets in {seconds:.1f} s ({1000 * seconds / n:.1f} ms per subset; "
          f"target {TARGET_S:.0f} s: {'ok' if ok else 'FAILED'}); feature warm-up {warm_up:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
