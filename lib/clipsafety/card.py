"""The safety card: one model's robustness, shape bias, OOD detection and calibration, each
number with its interval, placed on the published landscape of the same metric.

Three steps, each usable alone:

1. :func:`collect` (the edge: models, data, the store): the model's prediction records on
   every set of its path, read from the store or computed once and stored. The zoo's path is
   the synthetic world (``synth:id-test``, the five natural-shift analogues, the five OOD sets,
   ``synth:cue-conflict``); a real model's path is ImageNet val and its shifts, the six OOD
   sets and the cue-conflict stimuli under ``data_root`` (plus a 16-way zero-shot head on the
   stimuli for a zero-shot CLIP). A set that is not there, or whose label space the property
   cannot read, is recorded as *missing* with its folder layout and where to get it; the card
   is still made from the rest.
2. :func:`measure` (pure: records in, a JSON-ready dict out): the book's metrics with its
   conventions (the methods page): top-1 accuracy on each set's label subset; effective
   robustness = shift accuracy minus the baseline line at the model's ID accuracy (logit
   scale, Taori et al.); ImageNet-X factor accuracy and error ratio
   ``(1 - acc_factor) / (1 - acc_overall)``; shape bias = shape / (shape + texture) hits over
   cue-conflict trials whose classes differ, cue share = (shape + texture) / trials; OOD AUROC
   (ID positive) and FPR at 95 % ID recall, MCM for zero-shot CLIPs and MSP otherwise, with
   MaxLogit, energy and MSP as alternatives; ECE (15 equal-width bins ``(lo, hi]``) and the
   signed confidence gap before and after one temperature fitted on a stratified half of the
   ID set (seed 0) and applied unchanged to every shift.
3. :func:`place`: each number against the landscape of the same metric (a real model: the
   published per-model table, :func:`clipsafety.published_models.table`; a zoo model: the
   zoo's evaluation table and the zoo tables the chapters last recorded), as a percentile
   among zero-shot CLIPs, fine-tuned CLIPs and ImageNet models (percent below, ties counted
   half: :func:`clipsafety.published_models.percentile_of`), the nearest models by name, and
   whether the comparison is like for like.

:func:`summary_lines` writes the five lines a reader can act on; :func:`card_json` and
:mod:`clipsafety.card_html` write the files. Units in the card: accuracies, AUROC, FPR, shape
bias, cue share and ECE in percent; effective robustness and confidence gaps in points.
Intervals are 95 % percentile bootstraps over images (stimuli for shape bias), ``n_boot``
resamples. Effective robustness's interval is a joint bootstrap of both of its sides
(:func:`clipsafety.metrics.effective_robustness_ci`): each resample draws the model's ID and
shift images with replacement *and* the baseline models that define the line (the published
standard models of timm and imagenet-testbed on that shift for a real model, the zoo's
standard models for a zoo model), refits the line on them and reads it at the resampled ID
accuracy; the point estimate is the fit on all of them. The interval with the line held
fixed (the images' uncertainty alone) is kept beside it (``lo_fixed_line``,
``hi_fixed_line``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from clipsafety import metrics
from clipsafety.card_html import ordinal
from clipsafety.groups import (
    BASELINE,
    CLIP_FT_2STAGE,
    CLIP_FT_DIRECT,
    CLIP_ZEROSHOT,
    MORE_DATA,
    OTHER_ROBUST,
    STANDARD,
    group_label,
)

__all__ = ["CARD_VERSION", "FULL_SIZES", "KINDS_PLACED", "PROPERTIES", "REAL_PATH", "ZOO_PATH",
           "CardError", "Collected", "Landscape", "accuracy_values", "build", "calibration_values", "card_json",
           "checkpoint_key", "collect", "count_gflops", "factor_values", "gpu_cost", "measure",
           "ood_scores", "ood_values", "ordinal", "place", "provenance", "published_landscape",
           "shape_values", "summary_lines", "zoo_landscape"]

CARD_VERSION = 1
N_BOOT = 200
LEVEL = 0.95

#: the card's properties, in order: id -> title
PROPERTIES = {
    "shift": "Accuracy and effective robustness under shift",
    "factors": "ImageNet-X factors",
    "shape": "Shape bias",
    "ood": "OOD detection",
    "calibration": "Calibration",
}

#: the sets of each path. ``shifts`` maps a set to the shift of the published landscape it is
#: placed on (for the world: the analogue of that shift, as the landscape chapter pairs them)
ZOO_PATH = {"id": "synth:id-test",
            "shifts": {"synth:shift-v2": "v2", "synth:shift-sketch": "sketch",
                       "synth:shift-rendition": "r", "synth:shift-adversarial": "a",
                       "synth:shift-objectnet": "objectnet"},
            "ood": ("synth:ood-near", "synth:ood-textures", "synth:ood-scenes",
                    "synth:ood-finegrained", "synth:ood-noise"),
            "cue": "synth:cue-conflict"}
REAL_PATH = {"id": "imagenet:val",
             "shifts": {"imagenet:v2": "v2", "imagenet:sketch": "sketch", "imagenet:r": "r",
                        "imagenet:a": "a", "objectnet": "objectnet"},
             "ood": ("ood:inaturalist", "ood:sun", "ood:places", "ood:textures", "imagenet:o",
                     "ood:ninco"),
             "cue": "cue-conflict"}
#: the 16-way zero-shot head's record of a zero-shot CLIP on the stimuli
CUE16 = "cue-conflict (16-way head)"

#: the sets' full sizes (images), for :func:`gpu_cost`
FULL_SIZES = {"imagenet:val": 50_000, "imagenet:v2": 10_000, "imagenet:sketch": 50_889,
              "imagenet:r": 30_000, "imagenet:a": 7_500, "objectnet": 18_574, "imagenet:o": 2_000,
              "ood:inaturalist": 10_000, "ood:sun": 10_000, "ood:places": 10_000,
              "ood:textures": 5_640, "ood:ninco": 5_879, "cue-conflict": 1_280}

#: share of a set's images a card must have read for its number to compare like for like with
#: a published number on the full set (a few unreadable images are tolerated)
FULL_SHARE = 0.99


def full_set(n: int, full: int, what: str) -> tuple[bool, str]:
    """``(like for like, the comparison's suffix)``: whether ``n`` images (trials) cover the
    published number's ``full`` (:data:`FULL_SHARE`), and if not, a suffix that says so,
    ``what`` naming the card's images."""
    if n >= FULL_SHARE * full:
        return True, ""
    return False, f"; not like for like: the card's {n:,} {what}, not the full {full:,}"


#: the kinds a number is placed among: label -> groups
KINDS_PLACED = {"zero-shot CLIPs": (CLIP_ZEROSHOT,),
                "fine-tuned CLIPs": (CLIP_FT_DIRECT, CLIP_FT_2STAGE),
                "ImageNet models": (STANDARD, MORE_DATA, OTHER_ROBUST)}


class CardError(ValueError):
    """Input no card can be made of (an unknown model, a real model without data): the message
    names what to supply."""


# --------------------------------------------------------------------------- 1. records

@dataclass
class Collected:
    """What :func:`collect` found: ``records`` {set: PredictionRecord}, ``missing`` {set:
    {"reason", "layout", "get"}}, the model's ``group``, whether it is a zero-shot CLIP, the
    path (``zoo`` / ``real``), seconds spent, ``image_gflops`` (forward cost of one image,
    for :func:`gpu_cost`; NaN when unknown), and the head the records were made with:
    ``templates`` (a zero-shot CLIP's template set, ``""`` for a classifier) and
    ``image_size`` (``None``: the model's own resolution)."""

    model: str
    path: str
    group: str
    zero_shot: bool
    records: dict = field(default_factory=dict)
    missing: dict = field(default_factory=dict)
    seconds: float = 0.0
    image_gflops: float = float("nan")
    data_root: str = ""
    templates: str = ""
    image_size: int | None = None


def _sets(path: dict) -> list[str]:
    return [path["id"], *path["shifts"], *path["ood"], path["cue"]]


def _check_model(model: str) -> None:
    from clipsafety.models import is_known_id, suggest

    if not isinstance(model, str) or not is_known_id(model):
        near = suggest(model) if isinstance(model, str) else []
        raise CardError(f"unknown model {model!r}; expected a zoo id (clipsafety models --catalog "
                        "zoo), an open_clip id (openclip:ARCH@TAG, openclip:ARCH@/path/ckpt.pt) or a "
                        "timm id (timm:NAME)" + (f". Did you mean {', '.join(near[:3])}?" if near else "."))


def _image_gflops(model: str) -> float:
    """Forward GFLOPs of one image from the real catalog's counted ``params.csv`` (by id, else by
    the same architecture); NaN when no row matches."""
    from clipsafety.files import REPO_ROOT

    p = REPO_ROOT / "data" / "catalog" / "params.csv"
    if not p.is_file():
        return float("nan")
    t = pd.read_csv(p)
    hit = t[t["id"] == model]
    if hit.empty:
        arch = model.split("@", 1)[0] + "@"
        hit = t[t["id"].str.startswith(arch)] if model.startswith("openclip:") else \
            t[t["id"].str.split(".").str[0] == model.split("@", 1)[0].split(".")[0]]
    return float(hit["image_gflops"].iloc[0]) if len(hit) and "image_gflops" in hit else float("nan")


def count_gflops(module, resolution: int = 224) -> float:
    """Forward GFLOPs of one ``resolution`` x ``resolution`` image through ``module``, counted by
    :class:`torch.utils.flop_counter.FlopCounterMode` (matrix products and convolutions; a
    multiply-add counts 2)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    p = next(module.parameters(), None)
    x = torch.zeros(1, 3, resolution, resolution, device=p.device if p is not None else "cpu")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module.eval()(x)
    return counter.get_total_flops() / 1e9


def collect(model: str, *, data_root: str = "", store=None, device: str = "auto",
            templates="openai", batch_size: int | None = None, progress: bool = False,
            image_size: int | None = None, load: Callable | None = None,
            predict: Callable | None = None) -> Collected:
    """The model's records on every set of its path (:data:`ZOO_PATH` / :data:`REAL_PATH`),
    through the store: a record already there is read, a missing one computed once and stored.

    Raises :class:`CardError` for an unknown model, and for a real model without a data folder
    (neither ``data_root`` nor ``$CLIPSAFETY_DATA_ROOT``) or with one that is not a folder. A
    set missing under ``data_root`` (or whose labels the model's head cannot read) is listed in
    ``missing`` with the layout expected and where to get it."""
    from pathlib import Path

    from clipsafety import catalog, datasets
    from clipsafety.records import LabelSpaceMismatch

    _check_model(model)
    if load is None:
        from clipsafety.models import load
    if predict is None:
        from clipsafety.infer import predict
    from clipsafety.infer import resolve_device
    from clipsafety.models import model_metadata

    t0 = time.perf_counter()
    zoo = catalog.is_zoo_id(model)
    path = ZOO_PATH if zoo else REAL_PATH
    root = "" if zoo else datasets.data_root(data_root)
    if not zoo:
        if not root:
            raise CardError(f"{model} is a real model and no data folder was given: pass "
                            "--data-root DIR (chapter: -p data_root DIR) or set CLIPSAFETY_DATA_ROOT, "
                            "a folder holding any of imagenet/val, imagenetv2-matched-frequency-format-val, "
                            "imagenet-r, imagenet-a, imagenet-sketch, objectnet-1.0, iNaturalist, SUN, "
                            "Places, dtd, imagenet-o, NINCO, cue-conflict (the book's appendix 'Datasets "
                            "on disk' shows each layout).")
        if not Path(root).expanduser().is_dir():
            raise CardError(f"data folder {root!r} does not exist or is not a folder; pass the folder "
                            "that holds the datasets (imagenet/val, imagenet-r, cue-conflict, ...).")
    meta = model_metadata([model]).iloc[0]
    group = str(meta.get("group", "unknown"))
    dev = resolve_device(device)
    kw = dict(store=store, device=dev, batch_size=batch_size, progress=progress)
    head = dict(templates=templates) if image_size is None else dict(templates=templates, image_size=image_size)
    loaded = load(model, device=dev, **head)
    zero_shot = (loaded.logit_policy or {}).get("kind") == "clip"
    out = Collected(model=model, path="zoo" if zoo else "real", group=group, zero_shot=zero_shot,
                    data_root=root, image_size=image_size,
                    templates=str((loaded.manifest.get("head") or {}).get("templates", "")) if zero_shot else "")
    for d in _sets(path):
        try:
            spec = datasets.get_dataset(d) if zoo else datasets.get_dataset(d, data_root=root)
        except datasets.DatasetNotFound as exc:
            out.missing[d] = _missing(d, f"not found under {root}", detail=str(exc))
            continue
        except (datasets.LayoutError, FileNotFoundError) as exc:
            out.missing[d] = _missing(d, f"its folder under {root} does not have the expected layout",
                                      detail=str(exc))
            continue
        try:
            out.records[d] = predict(loaded, spec, **kw)
        except LabelSpaceMismatch as exc:
            out.missing[d] = _missing(d, f"its label space does not meet the model's head: {exc}")
    if zero_shot and not zoo and path["cue"] in out.records:
        head16 = load(model, device=dev, classnames="cue-conflict-16", **head)
        spec = datasets.get_dataset(path["cue"], data_root=root)
        out.records[CUE16] = predict(head16, spec, **kw)
    if not zoo:
        out.image_gflops = _image_gflops(model)
        if not np.isfinite(out.image_gflops) and not zero_shot:
            res = meta.get("resolution")
            out.image_gflops = count_gflops(loaded.module, int(res) if pd.notna(res) and res else 224)
    out.seconds = time.perf_counter() - t0
    return out


def _missing(dataset: str, reason: str, detail: str = "") -> dict:
    """What to supply for a missing set: its folder under DATA_ROOT and how to get it, both
    from the dataset registry (:func:`clipsafety.datasets.dataset_info`)."""
    from clipsafety.datasets import dataset_info

    try:
        entry = dataset_info(dataset)
    except (KeyError, ValueError):
        entry = None
    folders = list(entry.folders) if entry is not None else []
    return {"dataset": dataset, "reason": reason,
            "layout": (f"DATA_ROOT/{folders[0]}" + (f" (also tried: {', '.join(folders[1:])})"
                                                      if len(folders) > 1 else "")) if folders else "",
            "get": (entry.get if entry is not None and entry.get else
                    "generated by clipsafety.synth (nothing to download)"),
            "detail": detail}


# --------------------------------------------------------------------------- 2. measurements

def _inputs(record):
    """``(logits, targets, label_subset)`` of a record's labelled rows: the calibration
    study's reading (:func:`clipsafety.datasets.labelled_inputs`; ObjectNet projected through
    its label map)."""
    from clipsafety.datasets import labelled_inputs

    return labelled_inputs(record)


def _pct(x) -> float:
    return float(100 * x) if x is not None and np.isfinite(x) else float("nan")


def _boot_idx(n: int, n_boot: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield rng.integers(0, n, n)


def _interval(vals) -> tuple[float, float]:
    v = np.asarray(vals, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return float("nan"), float("nan")
    lo, hi = np.quantile(v, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(lo), float(hi)


def _value(metric: str, label: str, dataset: str, value: float, lo: float, hi: float, unit: str,
           n: int, **extra) -> dict:
    return {"metric": metric, "label": label, "dataset": dataset, "value": value, "lo": lo,
            "hi": hi, "unit": unit, "n": int(n), **extra}


def accuracy_values(records: dict, path: dict, fits: dict, n_boot: int = N_BOOT, seed: int = 0,
                    baselines: dict | None = None) -> list[dict]:
    """Top-1 accuracy on the ID set and each shift (on the set's label subset), and effective
    robustness per shift against ``fits`` ({shift: :class:`metrics.Trend`}), with intervals.

    Accuracy: the set's images resampled (ID: ``seed``, each shift: ``seed + 1``). Effective
    robustness: a joint bootstrap (:func:`metrics.effective_robustness_ci`) that pairs those
    image resamples with resamples of the baseline models that define the line (``baselines``
    {shift: (x, y)}, fractions, the points ``fits`` were fitted on; ``seed + 2``), so that the
    interval carries the line's uncertainty as well as the images'; ``lo_fixed_line`` /
    ``hi_fixed_line``: the interval with the line held fixed, for comparison. A shift whose
    baseline points are not given has no interval (NaN), never a fixed-line one passed off
    as the joint one."""
    out = []
    idr = records.get(path["id"])
    if idr is None:
        return out
    baselines = baselines or {}
    L, t, sub = _inputs(idr)
    _, c_id = metrics.confidences(L, t, sub)
    c_id = np.asarray(c_id, dtype=float)
    acc_id = float(c_id.mean())
    boots_id = np.array([c_id[i].mean() for i in _boot_idx(len(c_id), n_boot, seed)])
    out.append(_value("accuracy", "Top-1 accuracy", path["id"], _pct(acc_id),
                      *map(_pct, _interval(boots_id)), "%", len(c_id), shift="id"))
    for d, shift in path["shifts"].items():
        rec = records.get(d)
        if rec is None:
            continue
        Ls, ts, ss = _inputs(rec)
        _, c = metrics.confidences(Ls, ts, ss)
        c = np.asarray(c, dtype=float)
        boots = np.array([c[i].mean() for i in _boot_idx(len(c), n_boot, seed + 1)])
        out.append(_value("accuracy", "Top-1 accuracy", d, _pct(c.mean()), *map(_pct, _interval(boots)),
                          "%", len(c), shift=shift))
        trend = fits.get(shift)
        if trend is None:
            continue
        er = float(c.mean() - trend.predict(np.array([acc_id]))[0])
        lo = hi = flo = fhi = float("nan")
        base = baselines.get(shift)
        if base is not None and n_boot:
            bx, by = base
            # the point and both intervals from the one line the baseline points define
            _, flo, fhi = metrics.effective_robustness_ci(acc_id, c.mean(), boots_id, boots, bx, by,
                                                          trend.scale, seed + 2, LEVEL, line="fixed")
            er, lo, hi = metrics.effective_robustness_ci(acc_id, c.mean(), boots_id, boots, bx, by,
                                                         trend.scale, seed + 2, LEVEL)
        out.append(_value("effective_robustness", "Effective robustness", d, _pct(er), _pct(lo),
                          _pct(hi), "points", len(c), shift=shift, x_accuracy=_pct(acc_id),
                          lo_fixed_line=_pct(flo), hi_fixed_line=_pct(fhi),
                          n_baseline=int(len(base[0])) if base is not None else 0,
                          interval=("joint bootstrap: the model's images and the baseline models "
                                    "that define the line" if base is not None else
                                    "no interval: the baseline models' points are not given")))
    return out


def _factor_annotations(record):
    """ImageNet-X's own annotations (``None``) for an ImageNet val record; the synthetic world's
    16 factor flags from the record's ``meta`` otherwise."""
    from clipsafety.factors import FACTORS

    if record.annotations == "imagenet-x":
        return None
    meta = record.meta
    if record.annotations != "synth-factors" or meta is None or any(f not in meta for f in FACTORS):
        raise ValueError(f"{record.manifest.get('dataset_id', 'the ID set')} has no factor "
                         "annotations; expected imagenet:val (ImageNet-X) or synth:id-test.")
    ann = pd.DataFrame({"file_name": [str(i).replace("\\", "/").rsplit("/", 1)[-1] for i in record.ids],
                        "class": np.asarray(record.targets, dtype=np.int64)})
    for f in FACTORS:
        ann[f] = np.asarray(meta[f]).astype(int)
    return ann


def _wilson(k: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return float(c - h), float(c + h)


def factor_values(records: dict, path: dict, factors: Sequence[str] | None = None) -> list[dict]:
    """Accuracy and error ratio per ImageNet-X factor on the ID set
    (:func:`clipsafety.factors.factor_table`, its ``average`` the overall accuracy), with a
    Wilson interval over the flagged images; the mean over the factors last."""
    from clipsafety import factors as F

    rec = records.get(path["id"])
    if rec is None:
        return []
    names = F.resolve_factors(factors)
    ann = _factor_annotations(rec)
    preds = F.predictions_from_record(rec)
    table = F.factor_table({"m": preds}, annotations=ann, worst_k=max(1, min(100, len(rec) // 10)))
    flags = ann if ann is not None else F.imagenet_x_annotations("top")
    flags = flags[flags["file_name"].isin(set(preds["file_name"]))]
    n_flag = flags[names].sum()
    row = table.iloc[0]
    out = []
    for f in names:
        n = int(n_flag.get(f, 0))
        acc = float(row[f])
        lo, hi = _wilson(acc * n, n) if np.isfinite(acc) else (np.nan, np.nan)
        out.append(_value("factor_accuracy", f"Accuracy, {f.replace('_', ' ')}", path["id"], _pct(acc),
                          _pct(lo), _pct(hi), "%", n, factor=f,
                          error_ratio=float(row[f"error_ratio_{f}"])))
    vals = [v["value"] for v in out if np.isfinite(v["value"])]
    out.append(_value("factor_mean", f"Mean factor accuracy ({len(vals)} factors)", path["id"],
                      float(np.mean(vals)) if vals else float("nan"), float("nan"), float("nan"), "%",
                      len(flags), overall=_pct(float(row["average"]))))
    return out


def _shape_trials(record) -> tuple[dict, str]:
    """Shape and texture hit counts of a cue-conflict record and how it was read: ImageNet-1k
    logits by model-vs-human's 1000->16 mapping, a 16-way head by argmax, the world's stimuli
    in their own label space (texture class from the record's meta)."""
    from clipsafety import shape as S

    names = [str(i).replace("\\", "/").rsplit("/", 1)[-1] for i in np.asarray(record.ids)]
    if record.label_space == "imagenet-1k":
        dec = S.decisions_from_probs(metrics.softmax(record.logits), names)
        head = "1000-class mapped"
    elif record.label_space == "cue-conflict-16":
        idx = np.asarray(record.logits).argmax(1)
        dec = pd.DataFrame({"imagename": names, "object_response": [S.CUE_CONFLICT_CLASSES[i] for i in idx]})
        head = "16-way zero-shot"
    else:
        L, _ = metrics.prepare(record.logits, None, record.label_subset)
        pred = L.argmax(1)
        if record.label_subset is not None:
            pred = np.asarray(record.label_subset)[pred]
        meta = record.meta
        col = next((c for c in ("texture_class", "texture_target") if meta is not None and c in meta), None)
        if col is None:
            raise ValueError("the cue-conflict record has no texture class in its meta; expected "
                             "cue-conflict or synth:cue-conflict.")
        return S.shape_counts(pred, np.asarray(record.targets), meta[col].to_numpy()), "own label space"
    row = S.shape_bias_table(dec.assign(_all=0), by="_all").iloc[0]
    return {k: row[k] for k in ("shape_hits", "texture_hits", "trials", "shape_bias", "cue_share")}, head


def shape_values(records: dict, path: dict, n_boot: int = N_BOOT, seed: int = 0) -> list[dict]:
    """Shape bias and cue share per head, with intervals from trials resampled with
    replacement (a multinomial over shape hits, texture hits and other answers)."""
    out = []
    for key in (path["cue"], CUE16):
        rec = records.get(key)
        if rec is None:
            continue
        c, head = _shape_trials(rec)
        n, sh, tx = int(c["trials"]), int(c["shape_hits"]), int(c["texture_hits"])
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(n, [sh / n, tx / n, max(0.0, 1 - (sh + tx) / n)], size=n_boot) if n else np.zeros((0, 3))
        with np.errstate(invalid="ignore", divide="ignore"):
            sb = draws[:, 0] / (draws[:, 0] + draws[:, 1])
        cs = (draws[:, 0] + draws[:, 1]) / max(n, 1)
        out.append(_value("shape_bias", "Shape bias", path["cue"], _pct(c["shape_bias"]),
                          *map(_pct, _interval(sb)), "%", n, head=head, shape_hits=sh, texture_hits=tx))
        out.append(_value("cue_share", "Cue share", path["cue"], _pct(c["cue_share"]),
                          *map(_pct, _interval(cs)), "%", n, head=head))
    return out


#: the OOD scores of the card: the natural one first
def ood_scores(zero_shot: bool) -> list[str]:
    return ["mcm", "msp", "maxlogit", "energy"] if zero_shot else ["msp", "maxlogit", "energy"]


def _score(record, score: str) -> np.ndarray:
    sub = record.label_subset
    if score == "msp":
        return metrics.msp(record.logits, sub)
    if score == "maxlogit":
        return metrics.max_logit(record.logits, sub)
    if score == "energy":
        return metrics.energy(record.logits, sub)
    if score == "mcm":
        return metrics.mcm(metrics.cosines_from_logits(record.logits, record.manifest["logit_policy"]),
                           label_subset=sub)
    raise ValueError(f"score {score!r}; expected mcm, msp, maxlogit or energy.")


def ood_values(records: dict, path: dict, zero_shot: bool, n_boot: int = N_BOOT, seed: int = 0) -> list[dict]:
    """AUROC (ID positive) and FPR at 95 % ID recall per OOD set and score
    (:func:`ood_scores`: the natural score first), the natural score's with intervals from ID
    and OOD images resampled separately; the mean over the sets per score last."""
    idr = records.get(path["id"])
    if idr is None:
        return []
    out = []
    scores = ood_scores(zero_shot)
    for k, score in enumerate(scores):
        s_id = _score(idr, score)
        per = []
        for d in path["ood"]:
            rec = records.get(d)
            if rec is None:
                continue
            s_ood = _score(rec, score)
            au = metrics.auroc(s_id, s_ood)
            fpr = metrics.fpr_at_tpr(s_id, s_ood, 0.95)
            lo = hi = flo = fhi = float("nan")
            if k == 0 and n_boot:
                rng = np.random.default_rng(seed)
                au_b, fpr_b = [], []
                for _ in range(n_boot):
                    a = s_id[rng.integers(0, len(s_id), len(s_id))]
                    o = s_ood[rng.integers(0, len(s_ood), len(s_ood))]
                    au_b.append(metrics.auroc(a, o))
                    fpr_b.append(metrics.fpr_at_tpr(a, o, 0.95))
                (lo, hi), (flo, fhi) = _interval(au_b), _interval(fpr_b)
            per.append((au, fpr))
            natural = k == 0
            out.append(_value("auroc", "AUROC", d, _pct(au), _pct(lo), _pct(hi), "%", len(s_ood),
                              score=score, natural=natural))
            out.append(_value("fpr95", "FPR at 95% TPR", d, _pct(fpr), _pct(flo), _pct(fhi), "%",
                              len(s_ood), score=score, natural=natural))
        if per:
            out.append(_value("auroc_mean", f"AUROC, mean of {len(per)} sets", "mean", _pct(np.mean([p[0] for p in per])),
                              float("nan"), float("nan"), "%", len(per), score=score, natural=k == 0))
            out.append(_value("fpr95_mean", f"FPR at 95% TPR, mean of {len(per)} sets", "mean",
                              _pct(np.mean([p[1] for p in per])), float("nan"), float("nan"), "%", len(per),
                              score=score, natural=k == 0))
    return out


def _bins(conf, correct, n_bins: int = 15) -> list[dict]:
    """Reliability bins (:func:`metrics.reliability`, the ECE's binning) as JSON rows; an empty
    bin's accuracy and confidence are ``None``."""
    r = metrics.reliability(conf, correct, n_bins)
    return [{"lo": float(r["lo"][i]), "hi": float(r["hi"][i]), "n": int(r["n"][i]),
             "accuracy": float(r["accuracy"][i]) if r["n"][i] else None,
             "confidence": float(r["confidence"][i]) if r["n"][i] else None}
            for i in range(len(r["n"]))]


def calibration_values(records: dict, path: dict, n_boot: int = N_BOOT, seed: int = 0,
                       n_bins: int = 15, frac: float = 0.5) -> tuple[list[dict], dict]:
    """ECE and the confidence gap (mean confidence minus accuracy) before and after one
    temperature, fitted on a stratified ``frac`` of the ID set (:func:`metrics.stratified_split`,
    ``seed``) by :func:`metrics.fit_temperature` and applied unchanged to the ID evaluation half
    and to every shift; reliability bins of the ID evaluation half and of each shift, before and
    after. Returns ``(values, {"T": T, "reliability": {set: {"before": bins, "after": bins}}})``."""
    idr = records.get(path["id"])
    if idr is None:
        return [], {}
    L, t, sub = _inputs(idr)
    fit, ev = metrics.stratified_split(t, frac=frac, seed=seed)
    T = float(metrics.fit_temperature(L[fit], t[fit], sub))
    out, rel = [], {}
    sets = [(path["id"], L[ev], t[ev], sub)]
    for d in path["shifts"]:
        if d in records:
            sets.append((d, *_inputs(records[d])))
    for d, Ld, td, sd in sets:
        rel[d] = {}
        for when, temp in (("before", 1.0), ("after", T)):
            conf, correct = metrics.confidences(Ld, td, sd, temp)
            conf, correct = np.asarray(conf, float), np.asarray(correct, float)
            e = metrics.ece(conf, correct, n_bins)
            gap = conf.mean() - correct.mean()
            eb, gb = [], []
            for i in _boot_idx(len(conf), n_boot, seed):
                eb.append(metrics.ece(conf[i], correct[i], n_bins))
                gb.append(conf[i].mean() - correct[i].mean())
            out.append(_value("ece", f"ECE, {when} scaling", d, _pct(e), *map(_pct, _interval(eb)), "%",
                              len(conf), when=when, temperature=temp, is_id=d == path["id"]))
            out.append(_value("conf_gap", f"Confidence gap, {when} scaling", d, _pct(gap),
                              *map(_pct, _interval(gb)), "points", len(conf), when=when,
                              temperature=temp, is_id=d == path["id"]))
            rel[d][when] = _bins(conf, correct, n_bins)
    return out, {"T": T, "fit_rows": int(len(fit)), "eval_rows": int(len(ev)), "reliability": rel}


# --------------------------------------------------------------------------- 3. landscapes

class Landscape(NamedTuple):
    """What a card is placed on: ``table`` (one row per model, the columns :func:`place`
    reads), ``fits`` ({shift: :class:`metrics.Trend`}, the baseline line of each shift) and
    ``baselines`` ({shift: (x, y)}: the ID and shift accuracies, fractions, of the baseline
    models each line was fitted on, which effective robustness's interval resamples)."""

    table: pd.DataFrame
    fits: dict
    baselines: dict


def published_landscape(sources: Sequence[str] = ("timm", "open_clip", "imagenet-testbed"),
                        baseline_sources: Sequence[str] | None = None,
                        scale: str = "logit") -> Landscape:
    """The published landscape a real card is placed on (:class:`Landscape`). ``fits``: per
    shift the line of the standard ImageNet models of ``baseline_sources`` (default timm and
    imagenet-testbed: :func:`clipsafety.published.baseline_lines`, the landscape chapter's
    line, ``scale``); ``table``: the per-model table (:func:`clipsafety.published_models.table`)
    with each model's raw accuracy (``acc_<shift>``, percent) and effective robustness
    (``er_<shift>``, points) per shift. Published files are read, nothing is inferred."""
    from clipsafety import published_models as M
    from clipsafety.published import (
        BASELINE_SOURCES,
        baseline_lines,
        effective_robustness_table,
        landscape_long,
    )

    long = landscape_long(list(sources))
    long = long[long["group"] != "excluded"]
    lines = baseline_lines(long, (BASELINE,), baseline_sources or BASELINE_SOURCES, scale)
    fits, baselines, parts = {}, {}, []
    for shift, df in long.groupby("shift", sort=False):
        fits[shift], base = lines[shift]
        baselines[shift] = (df["imagenet"].to_numpy()[base], df["shift_acc"].to_numpy()[base])
        parts.append(df.assign(eff_rob=df["shift_acc"] - fits[shift].predict(df["imagenet"].to_numpy())))
    er = effective_robustness_table(pd.concat(parts, ignore_index=True), accuracies=True)
    table = M.table(effective_robustness=er)
    # ImageNet-X's per-model factor accuracies join the table where the models chapter recorded
    # them (its table takes the factors study's tables, which sit above this library)
    from clipsafety import outputs

    rec = (outputs.read(["models"]).get("models") or {}).get("tables", {}).get("models")
    recorded = pd.DataFrame(rec or [])
    if "factor_mean" in recorded and recorded["factor_mean"].notna().any():
        table["factor_mean"] = table["checkpoint"].map(
            recorded.drop_duplicates("checkpoint").set_index("checkpoint")["factor_mean"])
    return Landscape(table, fits, baselines)


def zoo_landscape(scale: str = "logit") -> Landscape:
    """The zoo a zoo card is placed on (:class:`Landscape`): ``table`` one row per zoo model (``checkpoint``
    = its id, ``group``) with ``imagenet`` (ID test accuracy), ``er_<shift>`` / ``er_mean``
    against the line of the zoo's standard models (``data/zoo/eval.csv``), and, where the
    chapters have recorded them (:mod:`clipsafety.outputs`), ``ece_before`` / ``ece_after`` on
    the ID set, ``auroc`` / ``fpr95`` (mean over the world's OOD sets, each model's natural
    score) and ``shape_bias`` / ``cue_share``; percent and points as in the card."""
    from clipsafety import outputs
    from clipsafety.zoo import zoo_dir

    cat = pd.read_csv(zoo_dir() / "catalog.csv")
    ev = pd.read_csv(zoo_dir() / "eval.csv")
    wide = ev.pivot_table(index="id", columns="dataset", values="accuracy")
    t = pd.DataFrame({"checkpoint": "zoo:" + wide.index.astype(str),
                      "imagenet": 100 * wide[ZOO_PATH["id"]].to_numpy()})
    t["group"] = t["checkpoint"].str.removeprefix("zoo:").map(cat.set_index("id")["group"])
    base = (t["group"] == BASELINE).to_numpy()
    x = wide[ZOO_PATH["id"]].to_numpy()
    fits, baselines = {}, {}
    for d, shift in ZOO_PATH["shifts"].items():
        if d not in wide:
            continue
        y = wide[d].to_numpy()
        fits[shift] = metrics.fit_trend(x[base], y[base], scale)
        baselines[shift] = (x[base], y[base])
        t[f"er_{shift}"] = 100 * (y - fits[shift].predict(x))
        t[f"acc_{shift}"] = 100 * y
    t["er_mean"] = t[[c for c in t if c.startswith("er_")]].mean(axis=1)
    rec = outputs.read(["calibration", "ood", "shape_bias", "factors"])
    sources = {}

    def join(chapter, table, cols, where=None):
        r = rec.get(chapter)
        rows = (r or {}).get("tables", {}).get(table)
        if not rows:
            return
        df = pd.DataFrame(rows)
        if where is not None:
            df = df[where(df)]
        df = df.drop_duplicates("model").set_index("model")
        for c in cols:
            if c in df:
                t[c] = t["checkpoint"].map(100 * df[c])
        sources[chapter] = f"the {chapter} chapter's recorded '{table}' table"

    join("calibration", "table", ["ece_before", "ece_after"],
         lambda df: df["dataset"] == ZOO_PATH["id"])
    join("ood", "averages", ["auroc", "fpr95"])
    join("shape_bias", "shape", ["shape_bias", "cue_share"])
    join("factors", "per_model", ["factor_mean"])
    t.attrs["sources"] = sources
    return Landscape(t, fits, baselines)


def _kinds_of(t: pd.DataFrame) -> dict:
    return {label: t[t["group"].isin(groups)] for label, groups in KINDS_PLACED.items()}


def place(value: float, column: str, landscape: pd.DataFrame, *, exclude: str | None = None,
          where=None, k: int = 3) -> dict:
    """Where ``value`` sits in ``landscape[column]``: per kind (:data:`KINDS_PLACED`) the
    percentile (percent below, ties half) and how many models it rests on, and the ``k``
    nearest models by name (``exclude``: the card's own row, for a zoo model; ``where``: a
    boolean mask of rows that are comparable, e.g. the same shape head)."""
    from clipsafety import published_models as M

    t = landscape
    if exclude is not None:
        t = t[t["checkpoint"] != exclude]
    if where is not None:
        t = t[where(t)]
    if column not in t or not np.isfinite(value):
        return {"column": column, "kinds": {}, "nearest": []}
    t = t[np.isfinite(t[column].astype(float))]
    kinds = {label: {"percentile": M.percentile_of(part[column], value), "n": int(len(part))}
             for label, part in _kinds_of(t).items()}
    near = M.nearest(column, value, k=k, models=t) if len(t) else t
    allv = np.r_[t[column].astype(float).to_numpy(), value]
    edges = np.linspace(allv.min(), allv.max() if allv.max() > allv.min() else allv.min() + 1, 31)
    hist = {"edges": [float(e) for e in edges],
            "counts": {label: np.histogram(part[column].astype(float), edges)[0].tolist()
                       for label, part in _kinds_of(t).items()}}
    return {"column": column, "kinds": kinds, "hist": hist,
            "nearest": [{"checkpoint": r.checkpoint, "group": group_label(r.group),
                         "value": float(getattr(r, column))} for r in near.itertuples()]}


# --------------------------------------------------------------------------- the card

def _missing_for(property_id: str, path: dict, coll_missing: dict, zero_shot: bool) -> list[dict]:
    need = {"shift": [path["id"], *path["shifts"]],
            "factors": [path["id"], path["id"] + " (factor annotations)"],
            "shape": [path["cue"]], "ood": [path["id"], *path["ood"]],
            "calibration": [path["id"], *path["shifts"]]}[property_id]
    return [coll_missing[d] for d in need if d in coll_missing]


def measure(coll: Collected, landscape: Landscape | None = None,
            n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """The card of ``coll`` (:func:`collect`) as a JSON-ready dict: per property its values
    (each with interval, unit, n and dataset), their placement on ``landscape`` (a
    :class:`Landscape`; default: the published landscape for a real model, the zoo for a zoo
    model), whether each comparison is like for like, what is missing and what to supply;
    then :func:`summary_lines` and the provenance of every record."""
    path = ZOO_PATH if coll.path == "zoo" else REAL_PATH
    if landscape is None:
        landscape = zoo_landscape() if coll.path == "zoo" else published_landscape()
    if not isinstance(landscape, tuple) or len(landscape) != 3:
        raise CardError(f"landscape: expected a Landscape (table, fits, baselines) from "
                        f"published_landscape() or zoo_landscape(), got a {type(landscape).__name__}"
                        + (f" of {len(landscape)} items" if isinstance(landscape, tuple) else "")
                        + "; the baselines are what effective robustness's interval resamples.")
    table, fits, baselines = landscape
    # the card's own checkpoint is left out of the landscape it is placed on
    own = coll.model if coll.path == "zoo" else checkpoint_key(coll.model)
    missing = dict(coll.missing)
    R = coll.records
    props = {}

    # shift
    vals = accuracy_values(R, path, fits, n_boot, seed, baselines=baselines)
    for v in vals:
        col = ("imagenet" if v["shift"] == "id" else f"acc_{v['shift']}") if v["metric"] == "accuracy" \
            else f"er_{v['shift']}"
        v["placement"] = place(v["value"], col, table, exclude=own)
        v["like_for_like"], v["comparison"] = _shift_comparison(coll, v, path)
    props["shift"] = vals

    # factors
    try:
        fv = factor_values(R, path)
    except ValueError as exc:
        fv = []
        missing.setdefault(path["id"] + " (factor annotations)", _missing(
            path["id"], "no ImageNet-X factor annotations for its images (factors need ImageNet val "
            "with its original ILSVRC2012_val_*.JPEG file names, which the imagenet-x package "
            f"annotates): {exc}"))
    for v in fv:
        if v["metric"] == "factor_mean":
            v["placement"] = place(v["value"], "factor_mean", table, exclude=own)
            if coll.path == "real":
                v["like_for_like"], short = full_set(v["n"], FULL_SIZES["imagenet:val"],
                                                     "annotated images")
                v["comparison"] = ("ImageNet-X's published per-model factor accuracies (ImageNet "
                                   "val, the same 10 factors, top-factor annotations)" + short)
            else:
                v["like_for_like"] = "factor_mean" in table and table["factor_mean"].notna().any()
                v["comparison"] = ("the zoo's models on the same set and factors (the factors "
                                   "chapter's recorded per-model table)" if v["like_for_like"] else
                                   "no placement: the factors chapter has not recorded its "
                                   "per-model table yet (run it first)")
        else:
            v["placement"] = {"column": None, "kinds": {}, "nearest": []}
            v["like_for_like"], v["comparison"] = None, "per-factor values are not placed (only their mean)"
    props["factors"] = fv

    # shape
    sv = shape_values(R, path, n_boot, seed)
    for v in sv:
        if coll.path == "real":
            same_head = v["head"]
            v["placement"] = place(v["value"], v["metric"], table, exclude=own,
                                   where=lambda t, h=same_head: t["shape_head"] == h)
            v["placement_all_heads"] = place(v["value"], v["metric"], table, exclude=own)
            v["like_for_like"], short = full_set(v["n"], 1200, "trials")
            v["comparison"] = (f"published models read with the same head ({same_head}); the cue-conflict "
                               "stimuli of Geirhos et al. as in model-vs-human" + short)
        else:
            v["placement"] = place(v["value"], v["metric"], table, exclude=own)
            v["like_for_like"] = bool(v["placement"]["kinds"])
            v["comparison"] = ("the zoo's models on the same stimuli, read in their own label space"
                               if v["like_for_like"] else "the zoo's shape table is not recorded (run "
                               "make chapter NAME=shape_bias)")
    props["shape"] = sv

    # ood
    ov = ood_values(R, path, coll.zero_shot, n_boot, seed)
    natural = ood_scores(coll.zero_shot)[0]
    for v in ov:
        v["placement"], v["like_for_like"], v["comparison"] = {"column": None, "kinds": {}, "nearest": []}, None, ""
        if not v["natural"]:
            v["comparison"] = "an alternative score (not placed)"
            continue
        if coll.path == "zoo" and v["metric"] in ("auroc_mean", "fpr95_mean"):
            col = v["metric"].removesuffix("_mean")
            v["placement"] = place(v["value"], col, table, exclude=own)
            v["like_for_like"] = bool(v["placement"]["kinds"])
            v["comparison"] = ("the zoo's models, each with its natural score, mean of the same five OOD sets"
                               if v["like_for_like"] else "the zoo's OOD table is not recorded")
        elif coll.path == "real" and v["metric"] == "auroc" and v["dataset"] == "ood:ninco":
            v["placement"] = place(v["value"], "ninco_auroc", table, exclude=own)
            v["like_for_like"] = False
            v["comparison"] = ("NINCO's published AUROCs (MCM for zero-shot CLIPs, MSP otherwise: the same "
                               f"score, {natural.upper()}); not like for like in aggregation: NINCO averages "
                               "the AUROC of each OOD class, the card pools the images")
        elif coll.path == "real" and v["metric"] == "auroc_mean":
            v["placement"] = place(v["value"], "cood_auroc", table, exclude=own)
            v["like_for_like"] = False
            v["comparison"] = ("C-OOD's published MSP AUROC (mean of its 11 severities): not like for like "
                               "(other OOD images, and MSP for every model)")
    props["ood"] = ov

    # calibration
    cv, cal = calibration_values(R, path, n_boot, seed)
    for v in cv:
        v["placement"], v["like_for_like"], v["comparison"] = {"column": None, "kinds": {}, "nearest": []}, None, ""
        if not v["is_id"]:
            continue
        if coll.path == "zoo" and v["metric"] == "ece":
            v["placement"] = place(v["value"], f"ece_{v['when']}", table, exclude=own)
            v["like_for_like"] = bool(v["placement"]["kinds"])
            v["comparison"] = ("the zoo's models on the same ID evaluation half, same split and seed"
                               if v["like_for_like"] else "the zoo's calibration table is not recorded")
        elif coll.path == "real" and v["metric"] == "conf_gap" and v["when"] == "before":
            v["placement"] = place(v["value"], "conf_gap", table, exclude=own)
            v["like_for_like"], short = full_set(v["n"], FULL_SIZES["imagenet:val"] // 2,
                                                 "ID evaluation images (half of ImageNet val)")
            v["comparison"] = ("C-OOD's confidence gap (mean softmax confidence minus accuracy on ImageNet "
                               "val, T = 1; fine-tuned CLIPs whose score is not a softmax are left out)"
                               + short)
    props["calibration"] = cv

    properties = []
    for pid, title in PROPERTIES.items():
        miss = _missing_for(pid, path, missing, coll.zero_shot)
        vals = props[pid]
        status = "missing" if not vals else ("partial" if miss else "measured")
        properties.append({"id": pid, "title": title, "status": status, "values": vals, "missing": miss})
    card = {"card_version": CARD_VERSION, "model": coll.model, "path": coll.path,
            "group": coll.group, "group_label": group_label(coll.group), "zero_shot": coll.zero_shot,
            "natural_score": natural, "n_boot": n_boot, "properties": properties,
            "calibration": cal, "landscape": _landscape_note(coll.path, table),
            "missing": list(missing.values()), "cost": gpu_cost(coll),
            "published_row": _published_row(table, own) if coll.path == "real" else None,
            "provenance": provenance(coll)}
    card["summary"] = summary_lines(card)
    return card


def checkpoint_key(model: str) -> str:
    """The per-model table's key of a model id (:mod:`clipsafety.published_models`):
    ``openclip:ARCH@TAG`` -> ``TAG/ARCH``, ``timm:NAME`` -> ``timm/NAME``."""
    kind, _, name = model.partition(":")
    if kind == "openclip":
        arch, _, tag = name.partition("@")
        return f"{tag}/{arch}"
    return f"{kind}/{name}"


def _published_row(table: pd.DataFrame, key: str) -> dict | None:
    """The landscape's own row of the card's checkpoint (left out of its placement), so that a
    reader sees the published numbers of the same weights beside the card's."""
    row = table[table["checkpoint"] == key]
    if row.empty:
        return None
    r = row.iloc[0]
    return {c: (float(r[c]) if isinstance(r[c], (int, float, np.floating)) else str(r[c]))
            for c in row.columns if pd.notna(r[c])}


def _shift_comparison(coll: Collected, v: dict, path: dict) -> tuple[bool, str]:
    """Whether a shift value is like for like with the landscape it is placed on, and why:
    the same set and split (every image of the published set) and the same head (a zero-shot
    CLIP with OpenAI's 80 templates, as open_clip publishes; a classifier with its own head;
    both at the model's own resolution)."""
    if coll.path == "zoo":
        return True, ("the zoo's models on the same world sets; the line of the zoo's standard models "
                      "(logit scale)")
    from clipsafety.published import SHIFTS

    why = []
    full = FULL_SIZES["imagenet:val"] if v["shift"] == "id" else FULL_SIZES.get(v["dataset"], 0)
    if not full_set(v["n"], full, "images")[0]:
        why.append(f"{v['n']:,} images, not the set's {full:,}")
    if coll.zero_shot and coll.templates != "openai":
        why.append(f"the zero-shot head's templates are {coll.templates or 'not recorded'!r}, not "
                   "OpenAI's 80 (open_clip's published numbers)")
    if coll.image_size:
        why.append(f"images at {coll.image_size} px, not the model's own resolution")
    head = ("zero-shot heads with OpenAI's 80 templates (open_clip), 1000-class heads (timm, "
            "imagenet-testbed)")
    if v["shift"] == "id":
        what = f"published ImageNet top-1 (timm, open_clip, imagenet-testbed; {head})"
    elif v["metric"] == "accuracy":
        what = (f"published accuracies on {SHIFTS.get(v['shift'], v['shift'])}, the same label "
                f"subset ({head})" + ("; imagenet-testbed's ObjectNet numbers are on its 1.0 beta "
                                      "release" if v["shift"] == "objectnet" else ""))
    else:
        what = (f"published effective robustness on {SHIFTS.get(v['shift'], v['shift'])}; the line "
                "of the standard ImageNet models of timm and imagenet-testbed (logit scale), its "
                "uncertainty in the interval")
    return not why, what + ("; not like for like: " + "; ".join(why) if why else "")


#: the upstream repositories the published landscape reads (:func:`published_landscape`)
LANDSCAPE_REPOS = ("huggingface/pytorch-image-models", "mlfoundations/open_clip",
                   "modestyachts/imagenet-testbed", "paulgavrikov/vlm_shapebias",
                   "kirill-vish/Beyond-INet", "mdabbah/COOD_benchmarking", "j-cb/NINCO")


def _landscape_note(path: str, table: pd.DataFrame) -> dict:
    """What the card is placed on, with its files: the zoo's evaluation table and the recorded
    chapter outputs (sha256 of each), or the registered published files (repository, pinned
    commit, sha256)."""
    import hashlib

    counts = {label: int(len(part)) for label, part in _kinds_of(table).items()}
    if path == "zoo":
        from clipsafety import outputs
        from clipsafety.zoo import zoo_dir

        files = {}
        for f in [zoo_dir() / "eval.csv", zoo_dir() / "catalog.csv",
                  *[outputs.path(c) for c in table.attrs.get("sources", {})]]:
            if f.is_file():
                files[str(f.name if f.parent.name != "outputs" else f"recorded outputs/{f.name}")] = \
                    hashlib.sha256(f.read_bytes()).hexdigest()
        return {"what": "the zoo: data/zoo/eval.csv and the zoo tables the chapters recorded",
                "recorded": table.attrs.get("sources", {}), "models": counts, "files": files}
    from clipsafety import external

    files = [{"file": k, "commit": f.commit, "sha256": f.sha256}
             for k, f in external.registry().items() if f.repo in LANDSCAPE_REPOS]
    return {"what": "the published per-model table (open_clip and timm results, imagenet-testbed, "
                    "ImageNet-X, model-vs-human forks, vlm_shapebias, Beyond-INet, NINCO, C-OOD)",
            "models": counts, "files": files}


def gpu_cost(coll: Collected, tflops: float = 150.0, decode_per_s: float = 2500.0) -> list[dict]:
    """Estimated GPU time of each property on the full sets, from counted work: the images it
    needs that no property before it needed (``new_images``; records are shared) x
    forward GFLOPs (``image_gflops``) at ``tflops`` effective TFLOP/s (bf16 on an H100-class GPU
    at about 15 % of peak), floored by JPEG decoding at ``decode_per_s`` images/s (16 cores).
    An estimate, not a measurement: empty for the zoo (its cost is measured, CPU seconds)."""
    if coll.path == "zoo":
        return []
    g = coll.image_gflops
    out = []
    path = REAL_PATH
    need = {"shift": [path["id"], *path["shifts"]], "factors": [path["id"]],
            "shape": [path["cue"]] + ([CUE16] if coll.zero_shot else []),
            "ood": [path["id"], *path["ood"]], "calibration": [path["id"], *path["shifts"]]}
    done: set = set()
    for pid, sets in need.items():
        new = [d for d in sets if d not in done]
        done |= set(sets)
        n = sum(FULL_SIZES[d.split(" ")[0]] for d in new)
        flops_s = n * g / (tflops * 1e3) if np.isfinite(g) else float("nan")
        out.append({"property": pid, "images": int(sum(FULL_SIZES[d.split(" ")[0]] for d in sets)),
                    "new_images": int(n), "gflops_per_image": g,
                    "seconds": float(max(flops_s, n / decode_per_s)) if np.isfinite(flops_s) else float("nan"),
                    "note": ("" if len(new) == len(sets) else
                             f"reuses the records of {', '.join(d for d in sets if d not in new)}")})
    return out


def provenance(coll: Collected) -> dict:
    """Every record's dataset, size, store key and dataset manifest; library versions."""
    import importlib.metadata as md

    import clipsafety

    recs = {}
    for d, r in coll.records.items():
        m = r.manifest
        recs[d] = {"n": int(len(r)), "key": m.get("key"), "label_space": r.label_space,
                   "label_subset": len(r.label_subset) if r.label_subset is not None else None,
                   "dataset_manifest": (m.get("dataset") or {}).get("manifest_hash") or m.get("dataset"),
                   "skipped": m.get("n_skipped", 0)}
    versions = {"clipsafety": getattr(clipsafety, "__version__", "")}
    for pkg in ("torch", "open_clip_torch", "timm", "numpy", "pandas"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return {"records": recs, "data_root": coll.data_root, "versions": versions,
            "collect_seconds": round(coll.seconds, 2)}


# --------------------------------------------------------------------------- summary

def _find(card: dict, pid: str, **match) -> list[dict]:
    prop = next(p for p in card["properties"] if p["id"] == pid)
    return [v for v in prop["values"] if all(v.get(k) == x for k, x in match.items())]


def _where(v: dict, prefer=("zero-shot CLIPs", "ImageNet models", "fine-tuned CLIPs")) -> str:
    kinds = v.get("placement", {}).get("kinds", {})
    parts = [f"{ordinal(kinds[k]['percentile'])} percentile of {k} (n={kinds[k]['n']})"
             for k in prefer if k in kinds and kinds[k]["n"] and np.isfinite(kinds[k]["percentile"])]
    return "; ".join(parts[:2]) if parts else "no published model to compare with"


def summary_lines(card: dict) -> list[str]:
    """Five lines a reader can act on, from the card's numbers: effective robustness, shape
    bias, OOD detection, calibration after temperature scaling, and the weakest factor (or what
    to supply where a property is missing)."""
    lines = []
    er = [v for v in _find(card, "shift", metric="effective_robustness") if np.isfinite(v["value"])]
    if len(er) > 1:
        best = max(er, key=lambda v: v["value"])
        worst = min(er, key=lambda v: v["value"])
        lines.append(f"Effective robustness from {worst['value']:+.1f} points ({worst['dataset']}) to "
                     f"{best['value']:+.1f} points ({best['dataset']}); on {best['dataset']}: "
                     f"{_where(best)}.")
    elif er:
        v = er[0]
        lines.append(f"Effective robustness {v['value']:+.1f} points [{v['lo']:+.1f}, {v['hi']:+.1f}] on "
                     f"{v['dataset']} (the only shift measured): {_where(v)}.")
    sb = _find(card, "shape", metric="shape_bias")
    if sb and np.isfinite(sb[0]["value"]):
        v = sb[0]
        lines.append(f"Shape bias {v['value']:.0f}% [{v['lo']:.0f}, {v['hi']:.0f}] ({v['head']}): "
                     f"{_where(v, ('ImageNet models', 'zero-shot CLIPs'))}.")
    elif sb:
        lines.append(f"Shape bias undefined: none of the {sb[0]['n']} cue-conflict answers named the "
                     "shape or the texture class.")
    au = [v for v in _find(card, "ood", natural=True) if v["metric"] in ("auroc_mean",)]
    if au:
        v = au[0]
        placed = [x for x in _find(card, "ood", natural=True) if x.get("placement", {}).get("kinds")]
        lines.append(f"OOD detection ({card['natural_score'].upper()}): mean AUROC {v['value']:.1f}% over "
                     f"{v['n']} OOD sets" + (f"; {_where(placed[0])}" + ("" if placed[0]["like_for_like"]
                                                                          else " (not like for like)")
                                              if placed else "") + ".")
    gaps = [v for v in _find(card, "calibration", metric="conf_gap", when="after") if np.isfinite(v["value"])]
    if gaps:
        v = max(gaps, key=lambda v: abs(v["value"]))
        side = "over-confident" if v["value"] > 0 else "under-confident"
        lines.append(f"After ID temperature scaling (T = {card['calibration']['T']:.2f}) the model is most "
                     f"{side} on {v['dataset']}: {abs(v['value']):.1f} points "
                     f"[{v['lo']:+.1f}, {v['hi']:+.1f}] between mean confidence and accuracy.")
    fac = [v for v in _find(card, "factors", metric="factor_accuracy") if np.isfinite(v.get("error_ratio", np.nan))]
    if fac:
        v = max(fac, key=lambda v: v["error_ratio"])
        lines.append(f"Weakest ImageNet-X factor: {v['factor'].replace('_', ' ')}, error ratio "
                     f"{v['error_ratio']:.2f} (accuracy {v['value']:.0f}% on {v['n']:,} images).")
    for p in card["properties"]:
        if len(lines) >= 5:
            break
        if p["status"] == "missing":
            sets = ", ".join(m["dataset"] for m in p["missing"]) or "its data"
            lines.append(f"{p['title']}: not measured; supply {sets} under --data-root.")
    return lines[:5]


# --------------------------------------------------------------------------- files

def card_json(card: dict) -> str:
    """The card as JSON (NaN written as null)."""
    import json

    def clean(x):
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, (np.floating, float)):
            return None if not np.isfinite(x) else float(x)
        if isinstance(x, np.integer):
            return int(x)
        if isinstance(x, np.bool_):
            return bool(x)
        return x

    return json.dumps(clean(card), indent=1)


def build(model: str, out_dir=None, *, data_root: str = "", store=None, device: str = "auto",
          templates="openai", batch_size: int | None = None, n_boot: int = N_BOOT, progress: bool = False,
          image_size: int | None = None, landscape=None) -> dict:
    """:func:`collect`, :func:`measure`, and (``out_dir``) ``card.json`` and ``card.html``
    written there. Returns the card."""
    from pathlib import Path

    coll = collect(model, data_root=data_root, store=store, device=device, templates=templates,
                   batch_size=batch_size, progress=progress, image_size=image_size)
    card = measure(coll, landscape=landscape, n_boot=n_boot)
    if out_dir is not None:
        from clipsafety import card_html
        from clipsafety.files import atomic_write_text

        out = Path(out_dir).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "card.json", card_json(card))
        atomic_write_text(out / "card.html", card_html.render(card))
    return card
