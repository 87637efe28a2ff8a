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
- :func:`built_in`: the claim holds on this source by construction (an assumption of the
  synthetic world, or what a method optimises); the measured effect is kept as evidence, but
  the row is never counted as a reproduced finding.

No metric and no claim of the paper lives here: the claims and the rules that feed these helpers
are in the study modules (:mod:`clipsafety.studies`); intervals and counts come from
:mod:`clipsafety.metrics` and :mod:`clipsafety.summaries`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_TESTABLE = "not testable"
BUILT_IN = "built in"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_TESTABLE, BUILT_IN)
#: verdicts that are no test of the claim (left out of the counts of tested claims)
UNTESTED = (NOT_TESTABLE, BUILT_IN)

#: the three evidence sources every chapter shows, in display order
SOURCES = ("synthetic world + zoo", "published upstream results", "real models on real data")

COLUMNS = ["claim_id", "claim", "source", "verdict", "detail", "evidence"]


def source_kind(source: str) -> str:
    """The kind of evidence (one of :data:`SOURCES`) a source belongs to: its name starts with
    the kind's (``"published upstream results (NINCO)"`` is published evidence)."""
    return next((k for k in SOURCES if str(source).startswith(k)), str(source))


def tally(rows: pd.DataFrame) -> tuple[int, int]:
    """``(reproduced, tested)`` among claim rows: the one count of verdicts (rows whose
    verdict is one of :data:`UNTESTED` are no test of their claim and are left out)."""
    tested = rows[~rows["verdict"].isin(UNTESTED)]
    return int((tested["verdict"] == REPRODUCED).sum()), len(tested)


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: a short id, the claim in the paper's words, where it is made."""

    claim_id: str
    text: str
    section: str = ""


def judgement(claim: Claim, source: str, verdict: str, detail: str, evidence: str) -> dict:
    """One row of the claims table: ``claim`` judged on ``source``. Prefer the rule helpers
    below; use this for a rule of a study's own (its docstring states the rule)."""
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
    return judgement(claim, source, verdict, detail, f"{text}; {evidence}" if evidence else text)


def verdict_from_count(claim: Claim, source: str, observed: int, total: int, claimed: int,
                       evidence: str = "") -> dict:
    """Judge a counting claim ("on ``claimed`` of ``total``"): reproduced when ``observed >= claimed``."""
    if total <= 0:
        return not_testable(claim, source, "nothing to count", evidence)
    verdict = REPRODUCED if observed >= claimed else NOT_REPRODUCED
    detail = f"{observed} of {total} (paper: {claimed} of {total})"
    return judgement(claim, source, verdict, detail, evidence or detail)


def not_testable(claim: Claim, source: str, reason: str, evidence: str = "") -> dict:
    """A row saying that ``source`` cannot test ``claim``, and why."""
    return judgement(claim, source, NOT_TESTABLE, reason, evidence or reason)


def built_in(claim: Claim, source: str, why: str, measured: dict | None = None) -> dict:
    """A row saying that ``claim`` holds on ``source`` by construction (``why``: which
    assumption or objective puts it there). ``measured``: a :func:`verdict_from_interval` /
    :func:`verdict_from_count` row of the same claim, whose evidence is kept (the effect is
    still shown) while the verdict is ``built in``."""
    ev = f"{measured['evidence']}; " if measured else ""
    return judgement(claim, source, BUILT_IN, why, f"{ev}built in: {why}")


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
