"""Shape vs texture bias on cue-conflict stimuli (Geirhos et al. 2019).

Conventions
-----------
- The 16 classes are model-vs-human's, sorted alphabetically (:data:`CUE_CONFLICT_CLASSES`).
- A stimulus name encodes its shape and texture class: ``airplane1-bicycle2.png`` (shape airplane,
  texture bicycle), also in the long form of the raw-data files
  ``0001_s5n_dnn_0_airplane_00_airplane1-bicycle2.png``.
- Trials whose shape class equals their texture class are dropped (80 of the 1,280 stimuli).
- Shape bias = shape hits / (shape hits + texture hits); a response that is neither (another
  class, or no response) counts in neither. NaN when there are no hits at all.
- 1000-way ImageNet probabilities become 16-way decisions by averaging the probabilities of
  each class's ImageNet members (:data:`IMAGENET_INDICES_16`) and taking the argmax, as
  model-vs-human's ``ImageNetProbabilitiesTo16ClassesMapping`` (aggregation "mean") does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

CUE_CONFLICT_CLASSES: tuple[str, ...] = (
    "airplane", "bear", "bicycle", "bird", "boat", "bottle", "car", "cat", "chair", "clock", "dog",
    "elephant", "keyboard", "knife", "oven", "truck",
)

# ImageNet-1k class indices (0-based, the standard sorted-WNID order) of each of the 16 classes.
# Source: bethgelab/model-vs-human, modelvshuman/helper/human_categories.py, the
# ``<category>_indices`` attributes of ``HumanCategories`` (checked on 2025 copy at commit
# 292163431f5c); these are the ILSVRC-2012 members of the WNID lists given there.
IMAGENET_INDICES_16: dict[str, tuple[int, ...]] = {
    "airplane": (404,),
    "bear": (294, 295, 296, 297),
    "bicycle": (444, 671),
    "bird": (8, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 23, 24, 80, 81, 82, 83, 87, 88, 89, 90,
             91, 92, 93, 94, 95, 96, 98, 99, 100, 127, 128, 129, 130, 131, 132, 133, 135, 136, 137,
             138, 139, 140, 141, 142, 143, 144, 145),
    "boat": (472, 554, 625, 814, 914),
    "bottle": (440, 720, 737, 898, 899, 901, 907),
    "car": (436, 511, 817),
    "cat": (281, 282, 283, 284, 285, 286),
    "chair": (423, 559, 765, 857),
    "clock": (409, 530, 892),
    "dog": (
        152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169,
        170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187,
        188, 189, 190, 191, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 205, 206, 207,
        208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223, 224, 225,
        226, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240, 241, 243, 244, 245,
        246, 247, 248, 249, 250, 252, 253, 254, 255, 256, 257, 259, 261, 262, 263, 265, 266, 267,
        268,
    ),
    "elephant": (385, 386),
    "keyboard": (508, 878),
    "knife": (499,),
    "oven": (766,),
    "truck": (555, 569, 656, 675, 717, 734, 864, 867),
}

_NAME = re.compile(r"^([a-z]+)\d*-([a-z]+)\d*$")


def parse_cue_conflict_name(name: str) -> tuple[str, str]:
    """``(shape, texture)`` from a stimulus name, short or long form, with or without folders."""
    stem = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    stem = stem.rsplit("_", 1)[-1]
    m = _NAME.match(stem)
    if not m or m.group(1) not in CUE_CONFLICT_CLASSES or m.group(2) not in CUE_CONFLICT_CLASSES:
        raise ValueError(
            f"{name!r} is not a cue-conflict stimulus name; expected '<shape><n>-<texture><m>.png' such as "
            "'airplane1-bicycle2.png' (optionally prefixed '0001_s5n_dnn_0_airplane_00_') with both classes "
            f"among {CUE_CONFLICT_CLASSES}."
        )
    return m.group(1), m.group(2)


def bias_ratio(shape_hits, texture_hits):
    """Shape bias from hit counts: ``shape / (shape + texture)``, NaN where both are 0.

    The one place the ratio is computed; scalars give a float, arrays and Series elementwise."""
    sh = np.asarray(shape_hits, dtype=np.float64)
    tot = sh + np.asarray(texture_hits, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(tot > 0, sh / np.where(tot > 0, tot, 1.0), np.nan)
    if isinstance(shape_hits, pd.Series):
        return pd.Series(r, index=shape_hits.index)
    return float(r) if r.ndim == 0 else r


def shape_counts(shape_pred, shape_target, texture_target) -> dict:
    """``{"shape_hits", "texture_hits", "trials", "shape_bias"}`` over the trials whose shape
    and texture classes differ. The three arrays align per trial and hold class names or class
    indices (any consistent labels)."""
    p, s, t = (np.asarray(a) for a in (shape_pred, shape_target, texture_target))
    if not (p.shape == s.shape == t.shape) or p.ndim != 1:
        raise ValueError(f"shape_pred, shape_target, texture_target must be 1-D of equal length, got {p.shape}, {s.shape}, {t.shape}.")
    keep = s != t
    sh = int(np.count_nonzero(p[keep] == s[keep]))
    tx = int(np.count_nonzero(p[keep] == t[keep]))
    return {"shape_hits": sh, "texture_hits": tx, "trials": int(keep.sum()),
            "shape_bias": bias_ratio(sh, tx)}


def shape_bias(shape_pred, shape_target, texture_target) -> float:
    """Shape hits / (shape hits + texture hits) over trials whose shape and texture differ
    (:func:`shape_counts`)."""
    return shape_counts(shape_pred, shape_target, texture_target)["shape_bias"]


def cue_conflict_trials(decisions: pd.DataFrame) -> pd.DataFrame:
    """The published decision table with ``shape``, ``texture``, ``shape_hit`` and ``texture_hit``
    added and same-class trials dropped (``imagename`` and ``object_response`` are required)."""
    missing = [c for c in ("imagename", "object_response") if c not in decisions.columns]
    if missing:
        raise ValueError(
            f"decisions lack columns {missing}; expected the cue-conflict raw-data format "
            "(subj, session, trial, rt, object_response, category, condition, imagename)."
        )
    parsed = [parse_cue_conflict_name(n) for n in decisions["imagename"]]
    out = decisions.copy()
    out["shape"] = [a for a, _ in parsed]
    out["texture"] = [b for _, b in parsed]
    out = out[out["shape"] != out["texture"]].copy()
    resp = out["object_response"].astype(str).str.strip().str.lower()
    out["shape_hit"] = resp == out["shape"]
    out["texture_hit"] = resp == out["texture"]
    return out


def shape_bias_from_decisions(decisions: pd.DataFrame) -> float:
    """Shape bias of one observer from a decision table in the published cue-conflict format."""
    return float(shape_bias_table(decisions.assign(_all=0), by="_all")["shape_bias"].iloc[0])


def shape_bias_table(decisions: pd.DataFrame, by: str | Sequence[str] = "subj") -> pd.DataFrame:
    """Shape bias per group (``by="subj"`` per observer, ``"shape"`` per shape class, ...):
    columns ``shape_hits``, ``texture_hits``, ``trials`` and ``shape_bias``."""
    tr = cue_conflict_trials(decisions)
    g = tr.groupby(by, sort=True)
    out = pd.DataFrame({"shape_hits": g["shape_hit"].sum(), "texture_hits": g["texture_hit"].sum(),
                        "trials": g.size()})
    out["shape_bias"] = bias_ratio(out["shape_hits"], out["texture_hits"])
    return out


def imagenet_to_16(probs_1000) -> np.ndarray:
    """``[N, 16]`` class scores: the mean of each cue-conflict class's ImageNet member probabilities
    (columns in :data:`CUE_CONFLICT_CLASSES` order). Pass softmax probabilities over all 1000 classes."""
    P = np.asarray(probs_1000, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] != 1000:
        raise ValueError(f"expected probabilities over the 1000 ImageNet classes [N, 1000], got shape {P.shape}.")
    return np.stack([P[:, list(IMAGENET_INDICES_16[c])].mean(1) for c in CUE_CONFLICT_CLASSES], axis=1)


def decisions_from_probs(probs_1000, imagenames: Sequence[str]) -> pd.DataFrame:
    """A decision table (``imagename``, ``object_response``) from 1000-way probabilities."""
    idx = imagenet_to_16(probs_1000).argmax(1)
    return pd.DataFrame({"imagename": list(imagenames),
                         "object_response": [CUE_CONFLICT_CLASSES[i] for i in idx]})
