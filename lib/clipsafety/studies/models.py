"""Study of the models chapter: every real model with published evidence, one row each.

The chapter gathers what the published files say about each checkpoint
(:mod:`clipsafety.published_models`): effective robustness per shift from the landscape
chapter's fit, shape bias and cue share on cue-conflict, OOD AUROC on C-OOD and NINCO, the
confidence gap of C-OOD and ImageNet-X factor accuracy, with the percentile each model sits
at among the published models of its kind. It records the table (``models``) for other pages
and judges no claim of the paper: the other chapters do, on the same readers.
"""

from __future__ import annotations

import pandas as pd

from clipsafety import rules as _R
from clipsafety.groups import GROUP_ORDER, group_label
from clipsafety.published import SHIFTS
from clipsafety.published_models import TABLE_COLUMNS
from clipsafety.rules import Exercise

__all__ = ["ABOUT", "EVIDENCE", "EXERCISES", "PARAMETER_RULES", "coverage", "duplicates",
           "headers", "model_measures", "shown_columns", "titles"]

#: kinds of evidence, the table's column that says a model has it
EVIDENCE = {
    "effective robustness": "er_mean",
    "shape bias": "shape_bias",
    "C-OOD AUROC": "cood_auroc",
    "confidence gap": "conf_gap",
    "NINCO AUROC": "ninco_auroc",
    "ImageNet-X factors": "factor_mean",
}


def coverage(t: pd.DataFrame) -> pd.DataFrame:
    """Models per kind (rows, by label, in the book's group order) with each kind of evidence
    (columns, :data:`EVIDENCE`), and all models of the kind."""
    rows = []
    for g in [g for g in GROUP_ORDER if g in set(t["group"])]:
        part = t[t["group"] == g]
        rows.append({"kind": group_label(g), "models": len(part),
                     **{k: int(part[c].notna().sum()) for k, c in EVIDENCE.items() if c in part}})
    return pd.DataFrame(rows).set_index("kind")


def duplicates(shape: pd.DataFrame) -> pd.DataFrame:
    """Checkpoints whose cue-conflict decisions are published in more than one file or under
    more than one prompt: checkpoint, rows, sources, shape bias range (percent) and the source
    counted (``primary``)."""
    g = shape.groupby("checkpoint")
    many = g.size()[g.size() > 1].index
    rows = []
    for ck in many:
        part = shape[shape["checkpoint"] == ck]
        p = part[part["primary"]].iloc[0]
        rows.append({"checkpoint": ck, "files": len(part),
                     "sources": ", ".join(sorted(set(part["source"]))),
                     "shape bias, lowest (%)": round(100 * part["shape_bias"].min(), 1),
                     "shape bias, highest (%)": round(100 * part["shape_bias"].max(), 1),
                     "counted": f"{p['source']} ({p['head']}"
                                + (f", prompt {p['prompt']})" if p["prompt"] else ")")})
    return pd.DataFrame(rows)


def shown_columns(t: pd.DataFrame) -> list[str]:
    """The table's columns a reader sees: every column of :data:`TABLE_COLUMNS` present in
    ``t`` that holds at least one value."""
    return [c for c in TABLE_COLUMNS if c in t and t[c].notna().any()]


def headers() -> dict:
    """Column -> readable header with its unit (``Shape bias (%)``)."""
    return {c: (f"{h} ({u})" if u else h) for c, (h, u, _) in TABLE_COLUMNS.items()}


def titles() -> dict:
    """Column -> the description shown when hovering its header."""
    return {c: t for c, (_, _, t) in TABLE_COLUMNS.items()}


# --------------------------------------------------------------------------- parameters

ABOUT = ("every real model with published evidence, one row each: effective robustness, shape "
         "bias, OOD detection, confidence gap and factor accuracy, with its percentile.")

PARAMETER_RULES = {
    "shifts": _R.subset(lambda: tuple(SHIFTS), "shift(s)"),
    "scale": _R.SCALES,
    "show": _R.ints(10, "rows drawn before 'show all' is pressed", hi=5000),
}

def model_measures(payload: dict) -> dict:
    """What the models exercises compare (:attr:`clipsafety.rules.Exercise.measures`): each
    kind's mean effective robustness over the shifts, and the three zero-shot CLIPs that lead
    on it (the recorded ``models`` table)."""
    from clipsafety.groups import CLIP_ZEROSHOT

    out = _R.group_means("models", {"er_mean": "effective robustness, mean of the shifts (points)"},
                         claims=False)(payload)
    t = pd.DataFrame((payload.get("tables") or {}).get("models") or [])
    if len(t) and {"group", "er_mean", "checkpoint"} <= set(t.columns):
        zs = t[t["group"] == CLIP_ZEROSHOT].dropna(subset=["er_mean"])
        top = zs.sort_values("er_mean", ascending=False, kind="stable").head(3)
        if len(top):
            out["the zero-shot CLIPs leading on mean effective robustness"] = ", ".join(
                top["checkpoint"].astype(str))
    return out


EXERCISES = [
    Exercise("Fit the landscape line on the probit scale.", {"scale": "probit"},
             "how each model's effective robustness and its percentile move", model_measures),
    Exercise("Keep only the natural shifts in the effective-robustness columns.",
             {"shifts": ["r", "a", "objectnet"]},
             "which CLIPs lead on the mean of the natural shifts", model_measures),
]
