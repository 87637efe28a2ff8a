"""Study of the shape-bias chapter (paper section 4.2): shape vs texture decisions on
cue-conflict stimuli.

Tables: shape bias per observer from published raw decisions (:func:`published_shape_decisions`,
:func:`shape_bias_by_observer`, :func:`human_band`) and per model from prediction records
(:func:`shape_bias_of_record`, :func:`shape_table`). Claims: the paper's two shape claims
(:data:`CLAIMS`) and their rules (:func:`assess_shape_claims`). The arithmetic (the 16 classes,
stimulus names, the 1000 -> 16 mapping, shape bias itself) is :mod:`clipsafety.shape`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from clipsafety import metrics
from clipsafety.claims import Claim, not_testable, verdict_from_interval
from clipsafety.external import fetch
from clipsafety.groups import CLIP_ZEROSHOT, FT_GROUPS, IMAGENET_GROUPS
from clipsafety.models import model_metadata
from clipsafety.shape import (
    CUE_CONFLICT_CLASSES,
    decisions_from_probs,
    parse_cue_conflict_name,
    shape_bias_table,
    shape_counts,
)
from clipsafety.summaries import bootstrap_difference, bootstrap_mean, paired_changes

__all__ = ["CLAIMS", "PUBLISHED_SHAPE_FILES", "assess_shape_claims", "human_band",
           "published_shape_decisions", "shape_bias_by_observer", "shape_bias_of_record",
           "shape_reading", "shape_table"]


# --------------------------------------------------------------------------- published decisions

TEXTURE_VS_SHAPE = "rgeirhos/texture-vs-shape/raw-data/"
#: the published raw-decision files: (registry path under raw-data/, observer, group, note)
PUBLISHED_SHAPE_FILES = [
    *[(f"style-transfer-512-nomask-experiment/style-transfer-512-nomask-experiment_subject-"
       f"{i:02d}_session_1.csv", f"subject-{i:02d}", "human", "human observer")
      for i in range(1, 11)],
    ("style-transfer-512-nomask-experiment/style-transfer-512-nomask-experiment_alexnet_session_1.csv",
     "AlexNet (caffe)", "standard", "ImageNet-trained CNN, Geirhos et al. 2019"),
    ("style-transfer-512-nomask-experiment/style-transfer-512-nomask-experiment_googlenet_session_1.csv",
     "GoogLeNet", "standard", "ImageNet-trained CNN, Geirhos et al. 2019"),
    ("style-transfer-512-nomask-experiment/style-transfer-512-nomask-experiment_vgg_session_1.csv",
     "VGG-19 (caffe)", "standard", "ImageNet-trained CNN, Geirhos et al. 2019"),
    ("style-transfer-512-nomask-experiment-trained-CNNs/style-transfer-512-nomask-experiment_alexnet_session-1.csv",
     "AlexNet (torchvision)", "standard", "ImageNet-trained CNN, torchvision weights"),
    ("style-transfer-512-nomask-experiment-trained-CNNs/style-transfer-512-nomask-experiment_vgg16_session-1.csv",
     "VGG-16 (torchvision)", "standard", "ImageNet-trained CNN, torchvision weights"),
]


def published_shape_decisions() -> pd.DataFrame:
    """The texture-vs-shape raw decisions of humans and CNNs as one table in the published
    format (``subj, session, trial, rt, object_response, category, condition, imagename``)
    plus ``observer``, ``group`` (``human`` / ``standard``) and ``note``.

    Raises :class:`clipsafety.external.ExternalUnavailable` when a file cannot be had.
    """
    frames = []
    for path, observer, group, note in PUBLISHED_SHAPE_FILES:
        raw = pd.read_csv(fetch(TEXTURE_VS_SHAPE + path))
        raw["observer"], raw["group"], raw["note"] = observer, group, note
        frames.append(raw)
    return pd.concat(frames, ignore_index=True)


def shape_bias_by_observer(decisions: pd.DataFrame,
                           by: Sequence[str] = ("observer", "group", "note")) -> pd.DataFrame:
    """Shape bias per observer (:func:`shape.shape_bias_table`): ``by`` columns, shape_hits,
    texture_hits, trials (same-class trials dropped), shape_bias."""
    return shape_bias_table(decisions, by=list(by)).reset_index()


def human_band(observers: pd.DataFrame, value: str = "shape_bias") -> tuple[float, float, float]:
    """``(min, mean, max)`` of ``value`` over the human observers (``group == "human"``)."""
    h = observers.loc[observers["group"] == "human", value].dropna()
    if h.empty:
        return (np.nan, np.nan, np.nan)
    return float(h.min()), float(h.mean()), float(h.max())


def shape_reading(record) -> str:
    """How a cue-conflict record's logits become decisions: ``"1000->16 mapping"`` for
    ImageNet-1k logits, ``"direct 16-way head"`` for 16 logits on the cue-conflict stimuli,
    ``"native label space"`` otherwise (the synthetic world, whose shape and texture classes
    are classes of the model's own label space)."""
    n = record.logits.shape[1]
    if n == 1000:
        return "1000->16 mapping"
    if n == 16 and _is_cue_conflict(record):
        return "direct 16-way head"
    return "native label space"


def _is_cue_conflict(record) -> bool:
    try:
        parse_cue_conflict_name(str(np.asarray(record.ids)[0]))
        return True
    except ValueError:
        return False


def shape_bias_of_record(record) -> dict:
    """Shape bias of one cue-conflict prediction record, with its reading (:func:`shape_reading`).

    - ImageNet-1k logits: softmax over all 1000 classes (:func:`metrics.softmax`), then the
      model-vs-human 1000->16 mapping (:func:`shape.decisions_from_probs`).
    - 16 logits in :data:`shape.CUE_CONFLICT_CLASSES` order (a direct zero-shot head): argmax.
    - otherwise (synthetic world): argmax over the record's label subset; shape = target,
      texture = ``meta["texture_class"]`` / ``meta["texture_target"]`` (class index) or
      ``meta["texture"]`` (class index, or class name looked up in ``manifest["classes"]``).

    Returns ``{"shape_bias", "shape_hits", "texture_hits", "trials", "reading"}``.
    """
    reading = shape_reading(record)
    names = [str(i).replace("\\", "/").rsplit("/", 1)[-1] for i in np.asarray(record.ids)]
    if reading != "native label space":
        if reading == "1000->16 mapping":
            dec = decisions_from_probs(metrics.softmax(record.logits), names)
        else:
            idx = np.asarray(record.logits).argmax(1)
            dec = pd.DataFrame({"imagename": names,
                                "object_response": [CUE_CONFLICT_CLASSES[i] for i in idx]})
        row = shape_bias_table(dec.assign(_all=0), by="_all").iloc[0]
        return {"shape_bias": float(row["shape_bias"]), "shape_hits": int(row["shape_hits"]),
                "texture_hits": int(row["texture_hits"]), "trials": int(row["trials"]),
                "reading": reading}
    L, _ = metrics.prepare(record.logits, None, record.label_subset)
    pred = L.argmax(1)
    if record.label_subset is not None:
        pred = np.asarray(record.label_subset)[pred]
    if record.meta is None or "texture" not in record.meta.columns:
        raise ValueError(
            f"record of {record.manifest.get('model_id', '?')!r} is not a cue-conflict record: "
            "expected cue-conflict stimulus ids, or meta with a 'texture' column (synth:cue-conflict).")
    meta = record.meta
    idx_col = next((c for c in ("texture_class", "texture_target") if c in meta.columns), None)
    texture = (meta[idx_col].to_numpy().astype(np.int64) if idx_col is not None else
               _as_index(meta["texture"], record.manifest.get("classes")))
    return {**shape_counts(pred, np.asarray(record.targets), texture), "reading": reading}


def _as_index(col, classes) -> np.ndarray:
    v = np.asarray(col)
    if v.dtype.kind in "iu":
        return v.astype(np.int64)
    if classes is None:
        raise ValueError("texture classes are names but the record's manifest has no 'classes' "
                         "to map them to indices.")
    pos = {c: i for i, c in enumerate(classes)}
    return np.array([pos.get(str(x), -1) for x in v], dtype=np.int64)


def shape_table(records: dict) -> pd.DataFrame:
    """One row per model: shape bias and hit counts (:func:`shape_bias_of_record`), with the
    catalog metadata joined."""
    rows = [{"model": mid, **shape_bias_of_record(rec)} for mid, rec in records.items()]
    df = pd.DataFrame(rows, columns=["model", "shape_bias", "shape_hits", "texture_hits", "trials",
                                     "reading"])
    return df.merge(model_metadata(list(records)), on="model", how="left")


# --------------------------------------------------------------------------- claims

#: the paper's shape-bias claims (section 4.2)
CLAIMS = {
    "shape-clip": Claim(
        "shape-clip", "Zero-shot CLIP is more shape-biased than ImageNet models", "4.2"),
    "shape-ft": Claim(
        "shape-ft", "Fine-tuning CLIP on ImageNet reduces its shape bias", "4.2"),
}


def assess_shape_claims(shape: pd.DataFrame, source: str, n_boot: int = 1000,
                        seed: int = 0) -> list[dict]:
    """Judge the two shape-bias claims on one evidence source.

    ``shape``: one row per model with group, shape_bias (and ``parent`` for fine-tuned models,
    the id of the zero-shot CLIP they were fine-tuned from, when known). Rules: *CLIP* —
    mean shape bias of zero-shot CLIP minus that of ImageNet models (standard and more-data),
    interval above zero. *fine-tuning* — with parents known, the mean paired change
    (fine-tuned minus its own zero-shot parent) and its bootstrap interval, below zero;
    otherwise fine-tuned minus zero-shot group means.
    """
    c = CLAIMS
    d = shape.dropna(subset=["shape_bias"])
    clip = d.loc[d["group"] == CLIP_ZEROSHOT, "shape_bias"]
    imnet = d.loc[d["group"].isin(IMAGENET_GROUPS), "shape_bias"]
    rows = []
    if clip.empty or imnet.empty:
        rows.append(not_testable(c["shape-clip"], source,
                                 f"needs zero-shot CLIP and ImageNet models; found {len(clip)} "
                                 f"CLIP and {len(imnet)} ImageNet models"))
    else:
        est, lo, hi = bootstrap_difference(clip, imnet, n_boot=n_boot, seed=seed)
        rows.append(verdict_from_interval(
            c["shape-clip"], source, est, lo, hi, "greater",
            evidence=f"mean shape bias, CLIP ({len(clip)}) minus ImageNet models ({len(imnet)})"))
    ft = d[d["group"].isin(FT_GROUPS)]
    if ft.empty or clip.empty:
        rows.append(not_testable(c["shape-ft"], source,
                                 f"needs zero-shot and fine-tuned CLIP; found {len(clip)} "
                                 f"zero-shot and {len(ft)} fine-tuned"))
        return rows
    pairs = paired_changes(d)
    if len(pairs):
        est, lo, hi = bootstrap_mean(pairs["after"] - pairs["before"], n_boot=n_boot, seed=seed)
        ev = f"mean paired change over {len(pairs)} fine-tuned models (fine-tuned minus its parent)"
    else:
        est, lo, hi = bootstrap_difference(ft["shape_bias"], clip, n_boot=n_boot, seed=seed)
        ev = f"fine-tuned CLIP ({len(ft)}) minus zero-shot CLIP ({len(clip)}), unpaired"
    rows.append(verdict_from_interval(c["shape-ft"], source, est, lo, hi, "less", evidence=ev))
    return rows
