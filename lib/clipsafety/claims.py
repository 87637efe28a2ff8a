"""The paper's claims, each judged per evidence source: reproduced / not reproduced / not testable.

A chapter states every claim of the paper it covers once per evidence source (the synthetic
world with the zoo, published upstream results, real models on real data). Each judgement is
one row of a tidy table with the evidence that decided it, so the verdicts can be shown as a
table and read as sentences. Verdicts are decided by explicit rules on computed numbers:

- :func:`verdict_from_interval`: a directional claim ("A is larger than B") is *reproduced*
  when the bootstrap interval of the difference lies entirely on the claimed side of zero,
  *not reproduced* otherwise (the detail says whether the interval straddles zero or lies
  on the opposite side).
- :func:`verdict_from_count`: a counting claim ("on 6 of the 10 factors") is *reproduced*
  when the observed count reaches the claimed count.
- :func:`not_testable`: the source cannot speak to the claim (no such models, one training
  source only, no data supplied); the reason is recorded.

No metric lives here: intervals and counts come from :mod:`clipsafety.metrics` via the tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_TESTABLE = "not testable"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_TESTABLE)

#: the three evidence sources every chapter shows, in display order
SOURCES = ("synthetic world + zoo", "published upstream results", "real models on real data")

COLUMNS = ["claim_id", "claim", "source", "verdict", "detail", "evidence"]


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: a short id, the claim in the paper's words, where it is made."""

    claim_id: str
    text: str
    section: str = ""


def _row(claim: Claim, source: str, verdict: str, detail: str, evidence: str) -> dict:
    if verdict not in VERDICTS:
        raise ValueError(f"verdict {verdict!r} is not one of {VERDICTS}; use the helpers here.")
    return {
        "claim_id": claim.claim_id,
        "claim": claim.text,
        "source": source,
        "verdict": verdict,
        "detail": detail,
        "evidence": evidence,
    }


def verdict_from_interval(claim: Claim, source: str, estimate: float, lo: float, hi: float,
                          direction: str = "greater", evidence: str = "") -> dict:
    """Judge a directional claim from a difference and its bootstrap interval ``[lo, hi]``.

    ``direction="greater"``: the claim says the difference is positive (``"less"``: negative).
    Reproduced when the whole interval is on the claimed side of 0 (an interval touching 0
    is not enough); NaN estimates make the claim not testable.
    """
    if direction not in ("greater", "less"):
        raise ValueError(f"direction must be 'greater' or 'less', got {direction!r}.")
    if not all(np.isfinite([estimate, lo, hi])):
        return not_testable(claim, source, "the difference could not be computed "
                            "(too few models in a group)", evidence)
    sign = 1.0 if direction == "greater" else -1.0
    lo_s, hi_s = sorted((sign * lo, sign * hi))
    if lo_s > 0:
        verdict, detail = REPRODUCED, "interval on the claimed side of zero"
    elif hi_s < 0:
        verdict, detail = NOT_REPRODUCED, "interval on the opposite side of zero"
    else:
        verdict, detail = NOT_REPRODUCED, "interval includes zero (inconclusive)"
    text = f"{estimate:+.3g} [{lo:+.3g}, {hi:+.3g}]"
    return _row(claim, source, verdict, detail, f"{text}; {evidence}" if evidence else text)


def verdict_from_count(claim: Claim, source: str, observed: int, total: int, claimed: int,
                       evidence: str = "") -> dict:
    """Judge a counting claim ("on ``claimed`` of ``total``"): reproduced when ``observed >= claimed``."""
    if total <= 0:
        return not_testable(claim, source, "nothing to count", evidence)
    verdict = REPRODUCED if observed >= claimed else NOT_REPRODUCED
    detail = f"{observed} of {total} (paper: {claimed} of {total})"
    return _row(claim, source, verdict, detail, evidence or detail)


def not_testable(claim: Claim, source: str, reason: str, evidence: str = "") -> dict:
    """A row saying that ``source`` cannot test ``claim``, and why."""
    return _row(claim, source, NOT_TESTABLE, reason, evidence or reason)


def claims_table(rows: Iterable[dict]) -> pd.DataFrame:
    """Tidy table of judgements: one row per (claim, source), sources in display order."""
    df = pd.DataFrame(list(rows), columns=COLUMNS)
    order = {s: i for i, s in enumerate(SOURCES)}
    df["_o"] = df["source"].map(order).fillna(len(order))
    claim_order = {c: i for i, c in enumerate(dict.fromkeys(df["claim_id"]))}
    df["_c"] = df["claim_id"].map(claim_order)
    return df.sort_values(["_c", "_o"], kind="stable").drop(columns=["_o", "_c"]).reset_index(
        drop=True)


def claims_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """Wide view: one row per claim, one column per evidence source, cells are verdicts."""
    wide = table.pivot_table(index="claim", columns="source", values="verdict",
                             aggfunc="first", sort=False)
    cols = [s for s in SOURCES if s in wide.columns] + [c for c in wide.columns if c not in SOURCES]
    return wide[cols].fillna(NOT_TESTABLE)


def claims_sentences(table: pd.DataFrame) -> str:
    """Markdown: one bullet per claim, naming the verdict of each source and its evidence."""
    lines = []
    for _cid, rows in table.groupby("claim_id", sort=False):
        parts = [f"{r.source}: **{r.verdict}** ({r.evidence})" for r in rows.itertuples()]
        lines.append(f"- *{rows['claim'].iloc[0]}* — " + "; ".join(parts) + ".")
    return "\n".join(lines)


def disagreements(table: pd.DataFrame, source: str = SOURCES[0]) -> pd.DataFrame:
    """Rows where ``source`` tested a claim and did not reproduce it (to be said plainly)."""
    return table[(table["source"] == source) & (table["verdict"] == NOT_REPRODUCED)]


def disagreement_note(table: pd.DataFrame, source: str = SOURCES[0]) -> str:
    """One paragraph saying plainly where ``source`` (default: the synthetic world) disagrees
    with the paper, that it tested nothing, or that it agrees where it tested."""
    dis = disagreements(table, source)
    if len(dis):
        return ("**Where the synthetic world disagrees with the paper.** " + " ".join(
            f"The claim *{r.claim}* does not reproduce on the synthetic world ({r.evidence})."
            for r in dis.itertuples()) + " The synthetic world makes the claims testable, not "
            "true by construction; a disagreement says the zoo's models do not share the "
            "property, not that the paper is wrong.")
    if (table[table["source"] == source]["verdict"] == NOT_TESTABLE).all():
        return ("The synthetic world could not test these claims in this run; the reasons "
                "are in the table above.")
    return "Where the synthetic world tested a claim, it agrees with the paper."


# --------------------------------------------------------------------------- the paper's claims

FACTOR_CLAIMS = {
    "factors-majority": Claim(
        "factors-majority",
        "Zero-shot CLIP is more robust than the other model groups on 6 of the 10 factors", "4.1"),
    "factors-pose": Claim(
        "factors-pose", "Zero-shot CLIP is less robust than the other models on pose", "4.1"),
    "factors-source": Claim(
        "factors-source", "The training source of CLIP changes its factor-robustness pattern", "4.1"),
}

SHAPE_CLAIMS = {
    "shape-clip": Claim(
        "shape-clip", "Zero-shot CLIP is more shape-biased than ImageNet models", "4.2"),
    "shape-ft": Claim(
        "shape-ft", "Fine-tuning CLIP on ImageNet reduces its shape bias", "4.2"),
}

CLIP = "clip-zeroshot"
IMAGENET_GROUPS = ("standard", "more-data")
FT_GROUPS = ("clip-ft-direct", "clip-ft-2stage")


def assess_factor_claims(er: pd.DataFrame, source: str, n_boot: int = 1000, seed: int = 0,
                         claimed_fraction: float = 0.6, min_models: int = 2) -> list[dict]:
    """Judge the three factor claims on one evidence source.

    ``er``: :func:`tables.with_effective_robustness` output (model, group, source, factor,
    eff_rob). Rules: *majority* — count the factors on which zero-shot CLIP's mean effective
    robustness is above every other group's mean (:func:`tables.factor_leaders`); reproduced
    when the count reaches ``claimed_fraction`` of the factors (6 of the paper's 10).
    *pose* — zero-shot CLIP minus all other models on pose, bootstrap interval below zero.
    *source* — for the two CLIP training sources with the most models (at least
    ``min_models`` each), reproduced when the interval of their difference excludes zero on at
    least one factor, with intervals at level ``1 - 0.05 / n_factors`` (Bonferroni over the
    factors); the factor with the largest absolute difference is reported.
    """
    from clipsafety import tables as T

    rows = []
    c = FACTOR_CLAIMS
    d = er.dropna(subset=["eff_rob"])
    factors = list(er["factor"].drop_duplicates())
    n_clip = d.loc[d["group"] == CLIP, "model"].nunique()
    n_other = d.loc[d["group"] != CLIP, "model"].nunique()
    if n_clip == 0 or n_other == 0:
        why = ("no zero-shot CLIP model with an effective robustness" if n_clip == 0 else
               "no other model group with an effective robustness")
        why += " (the fit needs at least two standard models)"
        return [not_testable(cl, source, why) for cl in c.values()]
    summary = T.group_summary(d, "eff_rob", n_boot=n_boot, seed=seed)
    lead = T.factor_leaders(summary)
    n_lead = int(lead["target_leads"].sum()) if len(lead) else 0
    names = ", ".join(lead.loc[lead["target_leads"], "factor"]) if len(lead) else ""
    claimed = int(np.ceil(claimed_fraction * len(factors) - 1e-9))
    rows.append(verdict_from_count(
        c["factors-majority"], source, n_lead, len(lead), claimed,
        evidence=f"CLIP leads on {n_lead} of {len(lead)} factors" + (f" ({names})" if names else "")
        + f"; {n_clip} CLIP models"))
    pose = d[d["factor"] == "pose"]
    if pose.empty:
        rows.append(not_testable(c["factors-pose"], source, "pose is not among the factors"))
    else:
        est, lo, hi = T.bootstrap_difference(pose.loc[pose["group"] == CLIP, "eff_rob"],
                                             pose.loc[pose["group"] != CLIP, "eff_rob"],
                                             n_boot=n_boot, seed=seed)
        rows.append(verdict_from_interval(
            c["factors-pose"], source, est * 100, lo * 100, hi * 100, direction="less",
            evidence="CLIP minus other models, effective robustness on pose in points"))
    clip = d[d["group"] == CLIP]
    counts = clip.drop_duplicates("model")["source"].value_counts() if "source" in clip else None
    counts = counts[counts >= min_models] if counts is not None else []
    if len(counts) < 2:
        rows.append(not_testable(
            c["factors-source"], source,
            f"needs two CLIP training sources with at least {min_models} models each; "
            f"found {({k: int(v) for k, v in clip.drop_duplicates('model')['source'].value_counts().items()} if 'source' in clip else {})}"))
    else:
        a, b = counts.index[:2]
        best = None
        n_sig = 0
        level = 1 - 0.05 / max(1, clip["factor"].nunique())
        for f, part in clip.groupby("factor", sort=False):
            est, lo, hi = T.bootstrap_difference(part.loc[part["source"] == a, "eff_rob"],
                                                 part.loc[part["source"] == b, "eff_rob"],
                                                 n_boot=n_boot, seed=seed, level=level)
            sig = np.isfinite(lo) and (lo > 0 or hi < 0)
            n_sig += int(sig)
            if best is None or abs(est) > abs(best[1]):
                best = (f, est, lo, hi)
        f, est, lo, hi = best
        verdict = REPRODUCED if n_sig else NOT_REPRODUCED
        detail = f"{n_sig} of {clip['factor'].nunique()} factors differ between {a} and {b}"
        rows.append(_row(c["factors-source"], source, verdict, detail,
                         f"{detail}; largest on {f}: {est * 100:+.3g} [{lo * 100:+.3g}, "
                         f"{hi * 100:+.3g}] points ({a} minus {b})"))
    return rows


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
    from clipsafety import tables as T

    c = SHAPE_CLAIMS
    d = shape.dropna(subset=["shape_bias"])
    clip = d.loc[d["group"] == CLIP, "shape_bias"]
    imnet = d.loc[d["group"].isin(IMAGENET_GROUPS), "shape_bias"]
    rows = []
    if clip.empty or imnet.empty:
        rows.append(not_testable(c["shape-clip"], source,
                                 f"needs zero-shot CLIP and ImageNet models; found {len(clip)} "
                                 f"CLIP and {len(imnet)} ImageNet models"))
    else:
        est, lo, hi = T.bootstrap_difference(clip, imnet, n_boot=n_boot, seed=seed)
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
        est, lo, hi = T.bootstrap_mean(pairs["after"] - pairs["before"], n_boot=n_boot, seed=seed)
        ev = f"mean paired change over {len(pairs)} fine-tuned models (fine-tuned minus its parent)"
    else:
        est, lo, hi = T.bootstrap_difference(ft["shape_bias"], clip, n_boot=n_boot, seed=seed)
        ev = f"fine-tuned CLIP ({len(ft)}) minus zero-shot CLIP ({len(clip)}), unpaired"
    rows.append(verdict_from_interval(c["shape-ft"], source, est, lo, hi, "less", evidence=ev))
    return rows


def paired_changes(df: pd.DataFrame, value: str = "shape_bias") -> pd.DataFrame:
    """Fine-tuned models with a known zero-shot parent in ``df``: columns pair, model_before,
    model_after, group_before, group_after, before, after (the ``value`` of each)."""
    if "parent" not in df.columns:
        return pd.DataFrame(columns=["pair", "model_before", "model_after", "group_before",
                                     "group_after", "before", "after"])
    by_id = df.set_index("model")
    rows = []
    for r in df[df["group"].isin(FT_GROUPS)].itertuples(index=False):
        parent = getattr(r, "parent", None)
        if isinstance(parent, str) and parent not in by_id.index and f"zoo:{parent}" in by_id.index:
            parent = f"zoo:{parent}"  # the zoo catalog names parents without the prefix
        if not isinstance(parent, str) or parent not in by_id.index:
            continue
        rows.append({"pair": f"{parent} -> {r.model}", "model_before": parent,
                     "model_after": r.model, "group_before": by_id.loc[parent, "group"],
                     "group_after": r.group, "before": float(by_id.loc[parent, value]),
                     "after": float(getattr(r, value))})
    return pd.DataFrame(rows, columns=["pair", "model_before", "model_after", "group_before",
                                       "group_after", "before", "after"])
