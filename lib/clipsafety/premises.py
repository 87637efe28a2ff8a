"""World premises shared by the chapters: what the synthetic world must have before one of its
verdicts counts (:class:`clipsafety.claims.Premise`, applied by :func:`clipsafety.claims.gated`).

Pure functions of tables; the real ranges they compare against are passed in (read from
published files by :mod:`clipsafety.published_models`), never typed.

- :func:`confidence_regime`: a group's confidence–accuracy gap (mean confidence minus accuracy
  on the ID set, in points; positive = over-confident) against the real range of the same
  group. Real zero-shot CLIPs (C-OOD's 9 OpenAI CLIPs) sit in a narrow band around zero; real
  ImageNet models spread on both sides. A world whose models are all far under-confident tests
  another regime than the paper's, so its calibration verdicts are "premise not met".
- :func:`above_chance`: the compared models are at least ``factor`` times chance on what is
  measured.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from clipsafety.claims import Premise
from clipsafety.groups import group_label

#: share of a group's world models whose gap must lie in the real range
REGIME_SHARE = 0.75


def real_gap_ranges(real: pd.DataFrame, groups: Mapping[str, str]) -> dict:
    """``{world group: (lo, hi, median, n)}`` of the real confidence gaps (``real``: rows with
    ``group`` and ``conf_gap`` in points, e.g. C-OOD's softmax rows); ``groups`` maps each world
    group to the real group it is compared with. The range is the real models' min to max."""
    out = {}
    for g, real_group in groups.items():
        v = real.loc[real["group"] == real_group, "conf_gap"].dropna().to_numpy(float)
        out[g] = ((float(v.min()), float(v.max()), float(np.median(v)), int(v.size)) if v.size
                  else (np.nan, np.nan, np.nan, 0))
    return out


def confidence_regime(world: pd.DataFrame, ranges: Mapping[str, tuple],
                      share: float = REGIME_SHARE) -> list[Premise]:
    """One premise per group of ``world`` (rows: ``group``, ``conf_gap`` in points) with a real
    range in ``ranges`` (:func:`real_gap_ranges`): at least ``share`` of the group's models have
    a gap inside the real range."""
    out = []
    for g, (lo, hi, med, n) in ranges.items():
        v = world.loc[world["group"] == g, "conf_gap"].dropna().to_numpy(float)
        if not v.size:
            continue
        if not n:
            out.append(Premise(f"confidence regime ({group_label(g)})", False,
                               "no real range to compare with", "a published real range"))
            continue
        inside = float(((v >= lo) & (v <= hi)).mean())
        out.append(Premise(
            f"confidence regime ({group_label(g)})", inside >= share,
            f"{100 * inside:.0f}% of {v.size} world models inside the real range; world gap "
            f"median {np.median(v):+.1f} points (range {v.min():+.1f} to {v.max():+.1f}); real "
            f"{lo:+.1f} to {hi:+.1f}, median {med:+.1f} ({n} models)",
            f"at least {100 * share:.0f}% inside"))
    return out


def above_chance(acc: pd.Series, chance: float, what: str, factor: float = 2.0) -> Premise:
    """The models of ``acc`` (accuracy fractions, indexed by model) are all at least ``factor``
    times ``chance`` on ``what``."""
    a = pd.Series(acc, dtype=float).dropna()
    if a.empty:
        return Premise(f"above chance on {what}", False, "no accuracies", "")
    worst = a.idxmin()
    return Premise(f"above chance on {what}", bool(a.min() >= factor * chance),
                   f"lowest {100 * a.min():.1f}% ({worst}), median {100 * a.median():.1f}%",
                   f"at least {100 * factor * chance:.0f}% ({factor:g} times chance "
                   f"{100 * chance:.0f}%)")


__all__ = ["REGIME_SHARE", "above_chance", "confidence_regime", "real_gap_ranges"]
