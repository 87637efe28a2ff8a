"""Study of the "Safety card" chapter: one model, its robustness, shape bias, OOD detection and
calibration, placed on the published landscape (or, for a zoo model, on the zoo).

The measurements, placements and summary are :mod:`clipsafety.card`'s (pure functions of
prediction records and tables); the page is :mod:`clipsafety.card_html`'s. This module holds
what the chapter declares (``PARAMETER_RULES``, ``EXERCISES``, ``ABOUT``; no ``CLAIMS``: the
card judges no claim of the paper) and the few tables the chapter shows beside the card.
"""

from __future__ import annotations

import pandas as pd

from clipsafety import rules as _R
from clipsafety.rules import Exercise

__all__ = ["ABOUT", "DEFAULT_MODEL", "EXERCISES", "card_measures", "PARAMETER_RULES", "missing_table",
           "reliability_frame", "status_table", "summary_markdown"]

ABOUT = ("one model's safety card: effective robustness, factors, shape bias, OOD detection and "
         "calibration, each placed on the published landscape (or the zoo).")
#: the chapter's default: a zoo CLIP, so that the book renders a real card on the world
DEFAULT_MODEL = "zoo:clip-resnet-wit-100k"


def _one_model(v, params):
    if not isinstance(v, str):
        return "expected one model id (a string such as 'zoo:clip-resnet-wit-100k' or 'openclip:ViT-B-32@openai')"
    if v in ("zoo", "real"):
        return "expected one model id, not a catalog name; the card is of a single model"
    return _R.models(v, params)


PARAMETER_RULES = {
    "model": _one_model, "data_root": _R.folder("data_root"), "store": _R.folder("store"),
    "device": _R.device, "templates": _R.templates, "batch_size": _R.BATCH_SIZE,
    "n_boot": _R.N_BOOT, "seed": _R.SEED, "out": _R.folder("store"),
}

def card_measures(payload: dict) -> dict:
    """What the card exercises compare (:attr:`clipsafety.rules.Exercise.measures`), read
    from the recorded card: the model, each measured value with its interval and unit, and its
    percentile among the zoo models of each kind it is placed on."""
    card = (payload.get("tables") or {}).get("card") or {}
    out = {"model": card["model"]} if card.get("model") else {}

    def num(x) -> str:
        return f"{x:.4g}".replace("-", "−")

    for prop in card.get("properties") or []:
        for v in prop.get("values") or []:
            value = v.get("value")
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            name = f"{prop.get('title') or prop.get('id')}: {v.get('label')} ({v.get('dataset')})"
            lo, hi = v.get("lo"), v.get("hi")
            text = num(value) + (f" [{num(lo)}, {num(hi)}]" if isinstance(lo, (int, float))
                                 and isinstance(hi, (int, float)) else "")
            out[name] = f"{text} {v.get('unit') or ''}".strip()
            for kind, place in ((v.get("placement") or {}).get("kinds") or {}).items():
                pct = place.get("percentile") if isinstance(place, dict) else None
                if isinstance(pct, (int, float)):
                    out[f"{name}: percentile among {place.get('n')} {kind}"] = float(pct)
    return out


EXERCISES = [
    Exercise("Make the card of this CLIP's fine-tuned twin.", {"model": "zoo:ft-resnet-wit-100k"},
             "its shape bias and OOD detection percentiles against the zero-shot CLIP's",
             card_measures),
    Exercise("Make the card of a supervised zoo model.", {"model": "zoo:sup-resnet-labelled-10k"},
             "the natural OOD score (MSP instead of MCM) and where its calibration sits",
             card_measures),
    Exercise("Halve the bootstrap resamples.", {"n_boot": 100},
             "how much the intervals move", card_measures),
]


def summary_markdown(card: dict | None, problem: str = "") -> str:
    """The chapter's opening: the card's five lines, or why there is no card."""
    if card is None:
        return f"**What this chapter found.** No card was made: {problem}"
    lines = "\n".join(f"{i + 1}. {s}" for i, s in enumerate(card["summary"]))
    return (f"**What this chapter found.** The safety card of `{card['model']}` "
            f"({card['group_label']}), placed on {card['landscape']['what']}:\n\n{lines}")


def status_table(card: dict) -> pd.DataFrame:
    """One row per property: its status, how many numbers it has and how many are placed."""
    rows = []
    for p in card["properties"]:
        vals = p["values"]
        rows.append({"property": p["title"], "status": p["status"], "numbers": len(vals),
                     "placed": sum(bool(v.get("placement", {}).get("kinds")) for v in vals),
                     "like for like": sum(v.get("like_for_like") is True for v in vals),
                     "missing sets": ", ".join(m["dataset"] for m in p["missing"]) or "none"})
    return pd.DataFrame(rows)


def missing_table(card: dict) -> pd.DataFrame:
    """What to supply: one row per missing set with the reason, the layout and where to get it."""
    return pd.DataFrame(card["missing"], columns=["dataset", "reason", "layout", "get"])


def reliability_frame(card: dict) -> pd.DataFrame:
    """The card's reliability bins, one row per (set, scaling, bin): ``set``, ``scaling``
    (before scaling / after ID temperature), lo, hi, n, share, accuracy, confidence; for
    :func:`clipsafety.charts.reliability_diagram` (one panel per set)."""
    rows = []
    for d, by in (card.get("calibration") or {}).get("reliability", {}).items():
        for when, bins in by.items():
            total = sum(b["n"] for b in bins) or 1
            label = "before scaling" if when == "before" else "after ID temperature"
            rows += [{"set": d, "scaling": label, **b, "share": b["n"] / total} for b in bins]
    return pd.DataFrame(rows, columns=["set", "scaling", "lo", "hi", "n", "accuracy", "confidence",
                                       "share"])
