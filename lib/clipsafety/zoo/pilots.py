"""The zoo's confidence regime, diagnosed: ``python -m clipsafety.zoo.pilots`` (issue 28).

Real zero-shot CLIPs are about as confident as they are accurate on their ID set (C-OOD's nine
OpenAI CLIPs: confidence minus accuracy within about -1 to +6 points); the zoo's are far
under-confident. This module measures why, and writes what it measured as data under
``data/zoo/pilots/`` (read by the world appendix):

- ``committed.csv``: every committed zoo model on ``synth:id-test``: accuracy, mean confidence,
  the gap ``100 * (confidence - accuracy)`` (points; negative = under-confident) and the fitted
  ID temperature. For a zero-shot CLIP also its learned logit scale, the scale that minimises
  its own contrastive loss on batches of its training set (:func:`contrastive_optimal_scale`,
  with and without the negatives that share the positive's category) and the zero-shot scale at
  which its ID gap would be zero (:func:`scale_for_gap`).
- ``batch.csv``: the contrastive-optimal scale of three committed CLIPs at batch sizes 16 to 1024.
- ``trained.csv``: small training pilots, each one recipe change against the zoo's recipe on
  one plan entry per tower (:data:`CLIP_VARIANTS`, :data:`SUP_VARIANTS`), with the model's ID
  accuracy, confidence, gap and (CLIPs) final logit scale. Slow (tens of minutes on 2 cores).

Conventions: the gap uses the top-1 softmax probability of the model's own logits on all 10
categories (a zero-shot CLIP: its learned scale times the cosine with the default templates'
class embeddings), as the calibration chapter's "before scaling" column does.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

from clipsafety.zoo.core import zoo_dir


def pilot_dir() -> Path:
    """``pilots/`` of the zoo this process reads (:func:`clipsafety.zoo.core.zoo_dir`)."""
    return zoo_dir() / "pilots"


#: the batch of OpenAI's CLIP training (Radford et al. 2021, section 2.5)
REAL_CLIP_BATCH = 32_768


def open_clip_init_scale() -> float:
    """open_clip's initial logit scale (``CLIP(init_logit_scale=log(1/0.07))``), read from
    its signature."""
    import inspect

    from open_clip.model import CLIP

    return math.exp(inspect.signature(CLIP.__init__).parameters["init_logit_scale"].default)
ID_SET = "id-test"
#: the pilots' plan entries: one per tower, on the 10k sets (the cheapest to train)
CLIP_PILOT_MODELS = ("clip-convnext-wit-10k", "clip-vit-wit-10k", "clip-resnet-wit-10k")
SUP_PILOT_MODELS = ("sup-convnext-labelled-10k", "sup-vit-labelled-10k", "sup-resnet-labelled-10k")
#: the training-length pilots on the 30k sets (fewer epochs at the zoo's budget than on 10k)
BUDGET_PILOT_MODELS = ("clip-convnext-wit-30k", "clip-vit-wit-30k", "clip-resnet-wit-30k")
BUDGET_VARIANTS = ("base", "2x samples seen", "4x samples seen", "no same-category negatives",
                   "no same-category negatives, 2x samples seen",
                   "no same-category negatives, 4x samples seen")
#: one recipe change each (``base`` is the zoo's recipe, retrained as a control)
CLIP_VARIANTS = {
    "base": {},
    "scale lr x10": {"scale_lr_mult": 10.0},
    "scale starts at 100": {"scale_init": 100.0},
    "scale fixed at 100": {"scale_init": 100.0, "scale_fixed": True},
    "scale fixed at 30": {"scale_init": 30.0, "scale_fixed": True},
    "no same-category negatives": {"masked": True},
    "2x samples seen": {"budget": 2},
    "4x samples seen": {"budget": 4},
    # the two levers that moved the gap most, together
    "no same-category negatives, 2x samples seen": {"masked": True, "budget": 2},
    "no same-category negatives, 4x samples seen": {"masked": True, "budget": 4},
}
SUP_VARIANTS = {"base": {}, "4x samples seen": {"budget": 4}, "label smoothing 0.1": {"smoothing": 0.1}}


# ---------------------------------------------------------------------------- pure measures
def best_single_scale(lo_scales, hi_scales) -> tuple[float, int]:
    """The one zero-shot scale that puts the most models inside a range, given each model's
    interval of scales ``[lo_scales[i], hi_scales[i]]`` that does so: ``(scale, count)`` (an
    interval endpoint, where the count of covering intervals is largest)."""
    lo, hi = np.asarray(lo_scales, float), np.asarray(hi_scales, float)
    ok = np.isfinite(lo) & np.isfinite(hi)
    lo, hi = lo[ok], hi[ok]
    if not lo.size:
        return float("nan"), 0
    counts = [(int(((lo <= c) & (c <= hi)).sum()), c) for c in np.concatenate([lo, hi])]
    n, c = max(counts)
    return float(c), n


def confidence_gap(logits: np.ndarray, targets: np.ndarray) -> tuple[float, float, float]:
    """``(accuracy, mean top-1 softmax confidence, gap in points)`` of ``logits [N, C]``
    (:func:`clipsafety.metrics.confidences`)."""
    from clipsafety import metrics

    conf, correct = metrics.confidences(np.asarray(logits, np.float64), np.asarray(targets))
    acc, conf = float(np.mean(correct)), float(np.mean(conf))
    return acc, conf, 100.0 * (conf - acc)


def scale_for_gap(cosines: np.ndarray, targets: np.ndarray, gap: float = 0.0,
                  lo: float = 0.1, hi: float = 1e4) -> float:
    """The zero-shot scale ``s`` at which ``softmax(s * cosines)`` has ID gap ``gap`` (points).
    The mean top-1 confidence rises monotonically with ``s`` (each row's top probability is
    ``1 / sum_j exp(s (c_j - c_max))``), so the root is unique; ``nan`` when it lies outside
    ``[lo, hi]``."""
    from scipy.optimize import brentq

    C = np.asarray(cosines, np.float64)

    def f(log_s):
        return confidence_gap(math.exp(log_s) * C, targets)[2] - gap

    a, b = math.log(lo), math.log(hi)
    if f(a) * f(b) > 0:
        return float("nan")
    return math.exp(brentq(f, a, b, xtol=1e-6))


def contrastive_loss(sim: np.ndarray, scale: float, same: np.ndarray | None = None) -> float:
    """The zoo's contrastive loss (:func:`clipsafety.zoo.train.symmetric_contrastive`, open_clip's
    ``ClipLoss``) of one batch from its cosine matrix ``sim [B, B]`` at logit scale ``scale``;
    ``same`` (``[B, B]`` bool) drops those off-diagonal negatives."""
    import torch

    from clipsafety.zoo.train import symmetric_contrastive

    L = torch.as_tensor(scale * np.asarray(sim, np.float64))
    return float(symmetric_contrastive(L, None if same is None else torch.as_tensor(same)))


def contrastive_optimal_scale(sims: list[np.ndarray], sames: list[np.ndarray] | None = None,
                              lo: float = 1.0, hi: float = 1000.0) -> float:
    """The logit scale that minimises the mean :func:`contrastive_loss` over batches ``sims``
    (bounded search on the log scale)."""
    from scipy.optimize import minimize_scalar

    sames = sames or [None] * len(sims)

    def f(log_s):
        s = math.exp(log_s)
        return float(np.mean([contrastive_loss(S, s, m) for S, m in zip(sims, sames)]))

    r = minimize_scalar(f, bounds=(math.log(lo), math.log(hi)), method="bounded",
                        options={"xatol": 1e-4})
    return float(math.exp(r.x))


# ---------------------------------------------------------------------------- model access
def _id_set():
    from clipsafety.synth import get_dataset

    ds = get_dataset(ID_SET)
    return ds.images(), np.asarray(ds.targets)


def _logits(module, images: np.ndarray) -> np.ndarray:
    from clipsafety.zoo.core import predict_arrays

    return predict_arrays(module, images).astype(np.float64)


def _clip_of(zoo_id: str):
    from clipsafety.zoo.core import _read
    from clipsafety.zoo.train import _clip_from

    state, meta, _ = _read(zoo_id)
    return _clip_from(meta, state)[0]


def _zero_shot_module(clip):
    from clipsafety.zoo.core import _modules, zero_shot_head

    _, Z, _ = _modules()
    return Z(clip.visual, zero_shot_head(clip, "default"), float(clip.logit_scale.detach().exp()))


def _batch_sims(clip, images, tokens, labels, batch: int, n_batches: int, seed: int = 0):
    import torch

    from clipsafety.zoo.core import array_transform

    rng = np.random.default_rng(seed)
    sims, sames = [], []
    with torch.no_grad():
        for _ in range(n_batches):
            idx = rng.choice(len(images), batch, replace=False)
            i, t, _ = clip(array_transform(images[idx]), tokens[idx])[:3]
            sims.append((i @ t.T).double().numpy())
            sames.append(labels[idx][:, None] == labels[idx][None, :])
    return sims, sames


def _temperature(logits, targets) -> float:
    from clipsafety import metrics

    return float(metrics.fit_temperature(logits, targets))


def real_clip_range() -> tuple[float, float] | None:
    """The real zero-shot CLIPs' ID gap range (points), from C-OOD's published file
    (:func:`clipsafety.premises.real_gap_ranges`); ``None`` where the file is unavailable."""
    try:
        from clipsafety import premises
        from clipsafety.groups import CLIP_ZEROSHOT
        from clipsafety.published_models import cood_models

        lo, hi = premises.real_gap_ranges(cood_models("softmax"),
                                          {CLIP_ZEROSHOT: CLIP_ZEROSHOT})[CLIP_ZEROSHOT][:2]
        return float(lo), float(hi)
    except Exception:  # noqa: BLE001 - offline without a mirror: the columns are left out
        return None


def committed(ids=None, n_batches: int = 20, data=None, real_range=None) -> list[dict]:
    """One row per committed zoo model (``ids``: default all but the reference): the ID regime
    and, for a zero-shot CLIP, its scales (module docstring). With ``real_range`` (``(lo, hi)``
    points), also the zero-shot scales at which its gap would equal ``lo`` and ``hi``: any
    scale between them puts the model inside the real range."""
    from clipsafety.zoo import train as T
    from clipsafety.zoo.core import load
    from clipsafety.zoo.plan import CLIP_RECIPE

    data = data or T._Data()
    X, y = _id_set()
    rows = []
    cat = {r["id"]: r for r in csv.DictReader(open(zoo_dir() / "catalog.csv"))}
    for zid in ids or [i for i, r in cat.items() if r["group"] != "reference"]:
        zid = zid.removeprefix("zoo:")
        r = cat[zid]
        m = load(zid)
        L = _logits(m, X)
        acc, conf, gap = confidence_gap(L, y)
        row = {"model": zid, "group": r["group"], "kind": r["kind"], "train_set": r["train_set"],
               "samples_seen": int(r["samples_seen"]), "id_accuracy": acc, "id_confidence": conf,
               "gap_points": gap, "id_temperature": _temperature(L, y)}
        if r["kind"] == "clip":
            clip = _clip_of(zid)
            s = float(clip.logit_scale.detach().exp())
            _, imgs, lab, _ = data.get(r["train_set"])
            sims, sames = _batch_sims(clip, imgs, data.tokens(r["train_set"]), lab,
                                      CLIP_RECIPE["batch"], n_batches)
            row.update(logit_scale=s,
                       contrastive_optimal_scale=contrastive_optimal_scale(sims),
                       contrastive_optimal_scale_no_same_category=contrastive_optimal_scale(sims, sames),
                       same_category_negative_share=float(np.mean(
                           [(m & ~np.eye(len(m), dtype=bool)).sum() / (len(m) * (len(m) - 1))
                            for m in sames])),
                       scale_for_zero_gap=scale_for_gap(L / s, y))
            if real_range is not None:
                row.update(real_lo=real_range[0], real_hi=real_range[1],
                           scale_for_real_lo=scale_for_gap(L / s, y, real_range[0]),
                           scale_for_real_hi=scale_for_gap(L / s, y, real_range[1]))
        rows.append(row)
        print(f"   {zid}: gap {gap:+.1f} points", flush=True)
    return rows


def batch_sizes(ids=CLIP_PILOT_MODELS, sizes=(16, 64, 256, 1024), images_per_size: int = 2048,
                data=None) -> list[dict]:
    """The contrastive-optimal scale of committed CLIPs at several batch sizes."""
    from clipsafety.zoo import train as T

    data = data or T._Data()
    rows = []
    for zid in ids:
        clip = _clip_of(zid)
        ts = T.PLAN_BY_ID[zid]["train_set"]
        _, imgs, lab, _ = data.get(ts)
        for b in sizes:
            sims, _ = _batch_sims(clip, imgs, data.tokens(ts), lab, b, max(2, images_per_size // b))
            rows.append({"model": zid, "batch": b, "logit_scale": float(clip.logit_scale.exp()),
                         "contrastive_optimal_scale": contrastive_optimal_scale(sims)})
            print(f"   {zid} batch {b}: {rows[-1]['contrastive_optimal_scale']:.1f}", flush=True)
    return rows


def train_variant(zid: str, variant: str, data=None) -> dict:
    """Retrain plan entry ``zid`` with one recipe change (:data:`CLIP_VARIANTS` or
    :data:`SUP_VARIANTS`) and measure its ID regime; the weights are not kept."""
    import timm
    import torch

    import clipsafety.zoo.arch  # noqa: F401
    from clipsafety.synth import VOCAB
    from clipsafety.zoo import train as T
    from clipsafety.zoo.arch import clip_config

    data = data or T._Data()
    spec = T.PLAN_BY_ID[zid]
    X, y = _id_set()
    t0 = time.time()
    if spec["kind"] == "clip":
        knobs = dict(CLIP_VARIANTS[variant])
        _, imgs, lab, _ = data.get(spec["train_set"])
        clip = T.build_clip_seeded(clip_config(spec["arch"], vocab_size=len(VOCAB)), spec["seed"])
        masked = knobs.pop("masked", False)
        seen = spec["samples_seen"] * knobs.pop("budget", 1)
        T.train_clip(clip, imgs, data.tokens(spec["train_set"]), seen, spec["seed"],
                     lr=spec["lr"], batch=spec["batch"], progress=False,
                     labels=lab if masked else None, **knobs)
        clip.eval()
        L = _logits(_zero_shot_module(clip), X)
        extra = {"logit_scale": float(clip.logit_scale.detach().exp())}
    else:
        knobs = SUP_VARIANTS[variant]
        _, imgs, lab, _ = data.get(spec["train_set"])
        torch.manual_seed(spec["seed"])
        m = timm.create_model(spec["arch"], num_classes=10)
        seen = spec["samples_seen"] * knobs.get("budget", 1)
        T.train_classifier(m, imgs, lab, seen, spec["seed"],
                           lr=spec.get("lr", 1e-3 if "vit" in spec["arch"] else 3e-3),
                           progress=False, label_smoothing=knobs.get("smoothing", 0.0))
        m.eval()
        L = _logits(m, X)
        extra = {"logit_scale": float("nan")}
    acc, conf, gap = confidence_gap(L, y)
    row = {"model": zid, "variant": variant, "samples_seen": seen, "id_accuracy": acc,
           "id_confidence": conf, "gap_points": gap, **extra,
           "train_seconds": round(time.time() - t0, 1)}
    print(f"   {zid} [{variant}]: accuracy {acc:.3f}, gap {gap:+.1f} points", flush=True)
    return row


def _write(rows: list[dict], path: Path) -> None:
    from clipsafety.files import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    cols = list(dict.fromkeys(k for r in rows for k in r))

    def w(tmp):
        with open(tmp, "w", newline="") as f:
            wr = csv.DictWriter(f, cols)
            wr.writeheader()
            for r in rows:
                wr.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})

    atomic_write(path, w, suffix=".csv")


def _ordered(rows: list[dict]) -> list[dict]:
    """Pilot rows in the order of the pilot tables (model, then variant)."""
    models = [*CLIP_PILOT_MODELS, *BUDGET_PILOT_MODELS, *SUP_PILOT_MODELS]
    variants = [*CLIP_VARIANTS, *SUP_VARIANTS]
    return sorted(rows, key=lambda r: (models.index(r["model"]) if r["model"] in models else 99,
                                       variants.index(r["variant"]) if r["variant"] in variants else 99))


def merged_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """The pilot table after a run: every ``new`` row, and each ``old`` row that no new row
    replaces (same model and variant), in the pilot tables' order."""
    fresh = {(r["model"], r["variant"]) for r in new}
    return _ordered([r for r in old if (r["model"], r["variant"]) not in fresh] + list(new))


def provenance() -> dict:
    import torch

    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "machine": platform.machine(), "load_average": os.getloadavg()[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Measure the zoo's confidence regime (issue 28).")
    # no ``choices``: Python 3.11's argparse refuses an empty ``nargs="*"`` list against them
    ap.add_argument("what", nargs="*", help="committed, batch and/or trained (default: committed batch)")
    ap.add_argument("--out", default=None, help="default: the zoo's pilots/ folder")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variants", nargs="*", default=None,
                    help="train only these pilots (names of CLIP_VARIANTS / SUP_VARIANTS); their "
                         "rows replace the same (model, variant) rows of trained.csv")
    ap.add_argument("--models", nargs="*", default=None,
                    help="train pilots only of these plan entries (default: every pilot model)")
    a = ap.parse_args(argv)
    import torch

    from clipsafety.zoo import train as T

    torch.set_num_threads(a.threads)
    out = Path(a.out) if a.out else pilot_dir()
    what = a.what or ["committed", "batch"]
    if set(what) - {"committed", "batch", "trained"}:
        ap.error(f"unknown measure(s) {sorted(set(what) - {'committed', 'batch', 'trained'})}; "
                 "expected committed, batch or trained")
    data = T._Data()
    if "committed" in what:
        _write(committed(data=data, real_range=real_clip_range()), out / "committed.csv")
    if "batch" in what:
        _write(batch_sizes(data=data), out / "batch.csv")
    if "trained" in what:
        known = {**CLIP_VARIANTS, **SUP_VARIANTS}
        bad = sorted(set(a.variants or ()) - set(known))
        if bad:
            ap.error(f"unknown pilot(s) {bad}; expected some of {sorted(known)}")
        path = out / "trained.csv"
        old = list(csv.DictReader(open(path))) if path.exists() else []
        rows = []
        for models, variants in ((CLIP_PILOT_MODELS, CLIP_VARIANTS), (SUP_PILOT_MODELS, SUP_VARIANTS),
                                 (BUDGET_PILOT_MODELS, BUDGET_VARIANTS)):
            for zid in models:
                if a.models and zid not in a.models:
                    continue
                rows += [train_variant(zid, v, data) for v in variants
                         if a.variants is None or v in a.variants]
                _write(merged_rows(old, rows), path)  # after each model: a stopped run keeps the rest
    print(f"wrote {out} ({provenance()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
