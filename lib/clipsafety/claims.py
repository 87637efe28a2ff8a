"""Claims and typed judgements: each claim stated as its author states it, judged once per
evidence source by an explicit rule on numbers carried as fields.

A :class:`Claim` is one claim: the paper's (``kind="paper"``, with its section), the premise the
paper starts from (``kind="premise"``, prior work it restates), or one of the book's own
hypotheses for the open questions (``kind="extension"``, never tallied with the paper's). It
states its direction (``"greater"``, ``"less"`` or ``"differs"``), the groups it compares,
what it is conditioned on, the test, and its home chapter: a claim is judged in one chapter
only; another chapter may show the home's judgement but never records one of its own.

A :class:`Judgement` is the claim judged on one evidence source. It carries its numbers as
fields — estimate, interval and level, direction, the effect and its scale (units), the
resampling unit (models, model pairs, images, stimuli of one checkpoint, ...), n per side, the
multiplicity correction, the evidence kind and the data it read (files and checkpoints, so that
duplicates can be found) — and pages read those fields; nothing parses evidence text back.

Verdicts (:data:`VERDICTS`), decided by the rule helpers here:

- :func:`interval`: *reproduced* when the interval lies wholly on the claimed side of the
  threshold (0 by default), *contradicted* when it lies wholly on the opposite side,
  *inconclusive* when it includes the threshold. A two-sided claim (``"differs"``) is
  reproduced when the interval excludes the threshold and inconclusive otherwise (equality
  cannot be shown by an interval, so it is never contradicted).
- :func:`count`: a claim about how many items (factors, sources, ...) show an effect, each
  item's interval already at the corrected level (Bonferroni or Holm, named in
  ``correction``): reproduced when at least the claimed number lie on the claimed side;
  contradicted when so many lie on the opposite side that the claimed number cannot be
  reached; inconclusive otherwise.
- :func:`not_testable` (the source cannot speak to the claim, and why), :func:`built_in` (a
  setting of the synthetic world or a method's objective puts the effect there; the measured
  effect is kept, the row is never counted as a finding), :func:`premise_not_met` (the world
  lacks what the claim needs, with the measured premise).

A judgement over models with fewer than :data:`MIN_MODELS` on a side, or over the images or
stimuli of a single checkpoint, keeps its verdict but is always shown with that label
(``"reproduced (n = 2 models)"``, :func:`label`), never as a plain reproduced.

Several sources of one kind of evidence (two published files, say) give one verdict per kind
(:func:`by_kind`) by the intersection rule: reproduced only when every source that tested the
claim reproduced it (valid at the sources' level without a correction), contradicted only when
every one contradicted it, inconclusive when they disagree.

No metric and no claim of the paper lives here: the claims and the numbers that feed these
rules are in the study modules (:mod:`clipsafety.studies`); intervals come from
:mod:`clipsafety.summaries` and :mod:`clipsafety.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import pandas as pd

REPRODUCED = "reproduced"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
NOT_TESTABLE = "not testable"
BUILT_IN = "built in"
PREMISE_NOT_MET = "premise not met"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE, BUILT_IN, PREMISE_NOT_MET)
#: verdicts that test the claim (counted); the others say why it was not tested
TESTED = (REPRODUCED, CONTRADICTED, INCONCLUSIVE)
UNTESTED = (NOT_TESTABLE, BUILT_IN, PREMISE_NOT_MET)

#: kinds of claim, in display order
PAPER, PREMISE, EXTENSION = "paper", "premise", "extension"
CLAIM_KINDS = (PAPER, PREMISE, EXTENSION)
CLAIM_KIND_NAMES = {PAPER: "the paper's claims", PREMISE: "the paper's premise (prior work)",
                    EXTENSION: "the book's extensions (open questions)"}

#: the three kinds of evidence, in display order: real-model evidence first
PUBLISHED = "published upstream results"
REAL = "real models on real data"
WORLD = "synthetic world + zoo"
#: the kinds in their historical order (``SOURCES[0]`` is the world, ``[1]`` published,
#: ``[2]`` real); pages show them in :data:`DISPLAY` order
SOURCES = (WORLD, PUBLISHED, REAL)
DISPLAY = (PUBLISHED, REAL, WORLD)
REAL_KINDS = (PUBLISHED, REAL)
KIND_NAMES = {PUBLISHED: "published results of real models", REAL: "real models run here",
              WORLD: "the synthetic world (under its assumptions)"}

#: resampling units
MODELS, PAIRS, PARENTS = "models", "model pairs", "parents"
IMAGES, STIMULI = "images of the checkpoints measured", "stimuli of one checkpoint"
#: a training study's contrast over evaluation images, one training run (seed) per parent
RUNS = "evaluation images, one training run per parent"
#: fewer parents or seeds than this in a training study is labelled single-seed / few parents
MIN_RUNS = 3
MODEL_UNITS = (MODELS, PAIRS, PARENTS)
#: fewer models than this on a side of a model-level claim is always labelled
MIN_MODELS = 5

DIRECTIONS = ("greater", "less", "differs")

COLUMNS = ["claim_id", "claim", "claim_kind", "section", "home", "source", "evidence_kind",
           "verdict", "label", "estimate", "lo", "hi", "level", "threshold", "direction",
           "effect", "scale", "unit", "n", "sides", "correction", "data", "reason", "premise",
           "rule", "evidence"]


def source_kind(source: str) -> str:
    """The kind of evidence (one of :data:`SOURCES`) a source belongs to: its name starts with
    the kind's (``"published upstream results (NINCO)"`` is published evidence)."""
    return next((k for k in SOURCES if str(source).startswith(k)), str(source))


@dataclass(frozen=True)
class Claim:
    """One claim: ``text`` in its author's words, where it is made (``section``), its ``kind``
    (:data:`CLAIM_KINDS`), ``direction`` (:data:`DIRECTIONS`), the groups it ``compares``, what
    it is ``conditioned_on``, the ``test`` that judges it (for the methods page) and its
    ``home`` chapter (the one chapter that records its judgement)."""

    claim_id: str
    text: str
    section: str = ""
    kind: str = PAPER
    direction: str = "greater"
    compares: str = ""
    conditioned_on: str = ""
    test: str = ""
    home: str = ""

    def __post_init__(self):
        if self.kind not in CLAIM_KINDS:
            raise ValueError(f"claim {self.claim_id!r}: kind {self.kind!r} is not one of {CLAIM_KINDS}.")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"claim {self.claim_id!r}: direction {self.direction!r} is not one of "
                             f"{DIRECTIONS}.")


def _f(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def fmt(x: float, scale: str = "") -> str:
    """A number at the precision its scale reads at (points: 1 decimal; AUROC, correlations,
    shape bias: 3)."""
    if not math.isfinite(_f(x)):
        return "–"
    x = float(x)
    if scale.startswith("of "):  # a count ("3 of 7")
        return f"{x:.0f}"
    if "point" in scale or scale.endswith("%"):
        return f"{x:+.1f}"
    return f"{x:+.3f}"


@dataclass(frozen=True)
class Judgement:
    """A claim judged on one evidence source; every number a field (see the module doc)."""

    claim: Claim
    source: str
    verdict: str
    reason: str = ""
    estimate: float = float("nan")
    lo: float = float("nan")
    hi: float = float("nan")
    level: float = 0.95
    threshold: float = 0.0
    effect: str = ""
    scale: str = ""
    unit: str = ""
    n: tuple = ()
    sides: tuple = ()
    correction: str = "none"
    data: tuple = ()
    premise: str = ""
    rule: str = "interval"

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}; use the rule "
                             "helpers of clipsafety.claims.")
        if self.verdict in TESTED and (not self.unit or not self.n):
            raise ValueError(f"claim {self.claim.claim_id!r} on {self.source!r}: a tested verdict "
                             "needs its resampling unit and n per side.")

    @property
    def evidence_kind(self) -> str:
        return source_kind(self.source)

    @property
    def small(self) -> bool:
        """True when the evidence is thin at the level of models: fewer than :data:`MIN_MODELS`
        models on a side, or one checkpoint resampled over its images or stimuli."""
        if self.unit in MODEL_UNITS:
            return bool(self.n) and min(int(v) for v in self.n) < MIN_MODELS
        return self.unit in (IMAGES, STIMULI, RUNS)

    def evidence(self) -> str:
        """The judgement in words, from its fields (shown on pages; never parsed back)."""
        parts = []
        if math.isfinite(_f(self.estimate)):
            num = fmt(self.estimate, self.scale)
            if math.isfinite(_f(self.lo)) and math.isfinite(_f(self.hi)):
                num += f" [{fmt(self.lo, self.scale)}, {fmt(self.hi, self.scale)}]"
            parts.append(f"{num} {self.scale}".strip())
        if self.effect:
            parts.append(self.effect)
        if self.n and self.unit == RUNS:
            k = max(int(v) for v in self.n)
            parts.append(f"{k} training run{'s' if k != 1 else ''} per arm ({' vs '.join(self.sides)}), "
                         "one seed; the interval resamples evaluation images")
        elif self.n:
            per = " vs ".join(f"{v}" for v in self.n)
            sides = f" ({' vs '.join(self.sides)})" if self.sides else ""
            parts.append(f"n = {per} {self.unit}{sides}")
        if self.correction and self.correction != "none":
            parts.append(self.correction)
        if self.reason and self.verdict not in TESTED:
            parts.append(self.reason)
        return "; ".join(parts)

    def row(self) -> dict:
        """The judgement as one flat row (the tidy claims table; recorded as JSON)."""
        c = self.claim
        return {"claim_id": c.claim_id, "claim": c.text, "claim_kind": c.kind,
                "section": c.section, "home": c.home, "source": self.source,
                "evidence_kind": self.evidence_kind, "verdict": self.verdict,
                "label": label(self.verdict, self.unit, self.n),
                "estimate": _f(self.estimate), "lo": _f(self.lo), "hi": _f(self.hi),
                "level": float(self.level), "threshold": float(self.threshold),
                "direction": c.direction, "effect": self.effect, "scale": self.scale,
                "unit": self.unit, "n": [int(v) for v in self.n], "sides": list(self.sides),
                "correction": self.correction, "data": sorted(map(str, self.data)),
                "reason": self.reason, "premise": self.premise, "rule": self.rule,
                "evidence": self.evidence()}


def label(verdict: str, unit: str = "", n: Sequence = ()) -> str:
    """The verdict as shown: a tested verdict on thin evidence carries its size
    (``"reproduced (n = 2 models)"``, ``"reproduced (one checkpoint)"``)."""
    if verdict not in TESTED:
        return verdict
    if unit in MODEL_UNITS and len(n) and min(int(v) for v in n) < MIN_MODELS:
        return f"{verdict} (n = {min(int(v) for v in n)} {unit})"
    if unit == STIMULI:
        return f"{verdict} (one checkpoint)"
    if unit == RUNS:
        k = max(int(v) for v in n) if len(n) else 0
        return f"{verdict} (single seed, {k} run{'s' if k != 1 else ''} per arm)"
    if unit == IMAGES:
        return f"{verdict} ({max(int(v) for v in n) if len(n) else '?'} checkpoints, over images)"
    return verdict


def decide(estimate: float, lo: float, hi: float, direction: str,
           threshold: float = 0.0) -> tuple[str, str]:
    """``(verdict, reason)`` of an interval against ``threshold`` for a claim in ``direction``
    (the rule of :func:`interval`); ``(not testable, why)`` when a number is missing."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}.")
    if not all(math.isfinite(_f(v)) for v in (estimate, lo, hi)):
        return NOT_TESTABLE, "no interval could be computed (too few models on a side)"
    lo, hi = sorted((float(lo), float(hi)))
    if direction == "differs":
        if lo > threshold or hi < threshold:
            return REPRODUCED, "interval excludes " + ("zero" if threshold == 0 else f"{threshold:g}")
        return INCONCLUSIVE, "interval includes " + ("zero" if threshold == 0 else f"{threshold:g}")
    above, below = lo > threshold, hi < threshold
    if (direction == "greater" and above) or (direction == "less" and below):
        return REPRODUCED, "interval on the claimed side"
    if (direction == "greater" and below) or (direction == "less" and above):
        return CONTRADICTED, "interval on the opposite side"
    return INCONCLUSIVE, "interval includes " + ("zero" if threshold == 0 else f"{threshold:g}")


def interval(claim: Claim, source: str, estimate: float, lo: float, hi: float, *, effect: str,
             scale: str, unit: str, n: Sequence[int], sides: Sequence[str] = (),
             data: Iterable[str] = (), correction: str = "none", level: float = 0.95,
             threshold: float = 0.0, premise: str = "") -> Judgement:
    """Judge ``claim`` on ``source`` from an effect and its interval (the rule of
    :func:`decide`, in the claim's direction). ``effect``: what the estimate is, in words
    (``"mean shape bias, zero-shot CLIP minus ImageNet models"``); ``scale``: its units;
    ``unit``: what the interval resamples; ``n``: its count per side; ``data``: the files and
    checkpoints read; ``correction``: the multiplicity correction behind ``level``."""
    verdict, reason = decide(estimate, lo, hi, claim.direction, threshold)
    if verdict == NOT_TESTABLE:
        return Judgement(claim, source, NOT_TESTABLE, reason, _f(estimate), effect=effect,
                         scale=scale, unit=unit, n=tuple(n), sides=tuple(sides),
                         data=tuple(data), premise=premise)
    return Judgement(claim, source, verdict, reason, _f(estimate), _f(lo), _f(hi), level,
                     threshold, effect, scale, unit, tuple(int(v) for v in n), tuple(sides),
                     correction, tuple(data), premise)


def count(claim: Claim, source: str, items: pd.DataFrame, claimed: int, *, effect: str,
          scale: str, unit: str, n: Sequence[int], correction: str, sides: Sequence[str] = (),
          data: Iterable[str] = (), threshold: float = 0.0, premise: str = "") -> Judgement:
    """Judge a counting claim ("on ``claimed`` of the items"). ``items``: one row per item
    (``item``, ``estimate``, ``lo``, ``hi``), each interval already at the level the
    ``correction`` names. Each item is decided by :func:`decide` in the claim's direction;
    reproduced when at least ``claimed`` are reproduced; contradicted (directional claims only)
    when more than ``len(items) - claimed`` lie on the opposite side; inconclusive otherwise.
    The estimate is the count; which items went which way is in ``reason``."""
    if not len(items):
        return not_testable(claim, source, "nothing to count", data=data)
    if not correction or correction == "none":
        raise ValueError(f"claim {claim.claim_id!r}: a count over {len(items)} items needs a "
                         "multiplicity correction (Holm or Bonferroni), named in `correction`.")
    decided = [decide(r.estimate, r.lo, r.hi, claim.direction, threshold)[0]
               for r in items.itertuples()]
    names = list(items["item"].astype(str))
    yes = [i for i, v in zip(names, decided) if v == REPRODUCED]
    no = [i for i, v in zip(names, decided) if v == CONTRADICTED]
    total = len(items)
    if len(yes) >= claimed:
        verdict = REPRODUCED
    elif len(no) > total - claimed:
        verdict = CONTRADICTED
    else:
        verdict = INCONCLUSIVE
    side = "differ" if claim.direction == "differs" else "on the claimed side"
    reason = (f"{len(yes)} of {total} {side} (claimed: {claimed})"
              + (f": {', '.join(yes)}" if yes else "")
              + (f"; {len(no)} on the opposite side: {', '.join(no)}" if no else ""))
    return Judgement(claim, source, verdict, reason, float(len(yes)), effect=effect,
                     scale=scale or f"of {total}", unit=unit, n=tuple(int(v) for v in n),
                     sides=tuple(sides), correction=correction, data=tuple(data),
                     threshold=threshold, premise=premise, rule="count")


def not_testable(claim: Claim, source: str, reason: str, *, data: Iterable[str] = (),
                 measured: Judgement | None = None) -> Judgement:
    """``source`` cannot test ``claim``, and why. ``measured``: numbers the source does give
    (an uncontrolled difference, say), kept as fields and shown, never judged."""
    if measured is None:
        return Judgement(claim, source, NOT_TESTABLE, reason, data=tuple(data))
    return Judgement(claim, source, NOT_TESTABLE, reason, measured.estimate, measured.lo,
                     measured.hi, measured.level, measured.threshold, measured.effect,
                     measured.scale, measured.unit, measured.n, measured.sides,
                     measured.correction, measured.data or tuple(data), measured.premise,
                     measured.rule)


def built_in(claim: Claim, source: str, setting: str, measured: Judgement | None = None) -> Judgement:
    """The effect is put there by construction: ``setting`` names the world setting or the
    method's objective. The measured effect (a judgement of the same claim) is kept as
    numbers; the verdict is ``built in`` and never counted as a finding."""
    if measured is None:
        return Judgement(claim, source, BUILT_IN, setting)
    return Judgement(claim, source, BUILT_IN, setting, measured.estimate, measured.lo,
                     measured.hi, measured.level, measured.threshold, measured.effect,
                     measured.scale, measured.unit, measured.n, measured.sides,
                     measured.correction, measured.data, measured.premise, measured.rule)


def premise_not_met(claim: Claim, source: str, premise: str,
                    measured: Judgement | None = None) -> Judgement:
    """The source lacks what the claim needs: ``premise`` says which premise failed and its
    measured value. A measured effect, if any, is kept as numbers; it is not a finding."""
    if measured is None:
        return Judgement(claim, source, PREMISE_NOT_MET, premise, premise=premise)
    if measured.rule == "count" and measured.reason:  # keep which items went which way
        premise_text = f"{premise} (measured: {measured.reason})"
    else:
        premise_text = premise
    return Judgement(claim, source, PREMISE_NOT_MET, premise_text, measured.estimate, measured.lo,
                     measured.hi, measured.level, measured.threshold, measured.effect,
                     measured.scale, measured.unit, measured.n, measured.sides,
                     measured.correction, measured.data, premise, measured.rule)


@dataclass(frozen=True)
class Premise:
    """One premise a world verdict needs, measured: ``ok`` and the measurement in words."""

    name: str
    ok: bool
    measured: str
    needed: str = ""

    def text(self) -> str:
        return f"{self.name}: {self.measured}" + (f" (needs {self.needed})" if self.needed else "")


def gated(judgement: Judgement, premises: Sequence[Premise]) -> Judgement:
    """``judgement`` if every premise holds (each named in its ``premise`` field), else
    :func:`premise_not_met` with the failed premises and the measured effect kept."""
    text = "; ".join(p.text() for p in premises)
    failed = [p for p in premises if not p.ok]
    if judgement.verdict == NOT_TESTABLE:  # nothing to gate: the source cannot test it anyway
        return judgement
    if not failed:
        return replace(judgement, premise=text)
    measured = judgement if math.isfinite(_f(judgement.estimate)) else None
    return premise_not_met(judgement.claim, judgement.source,
                           "; ".join(p.text() for p in failed), measured)


def bonferroni(k: int, level: float = 0.95) -> tuple[float, str]:
    """``(level, correction)`` for ``k`` simultaneous intervals, Bonferroni-corrected."""
    k = max(int(k), 1)
    if k == 1:
        return level, "none"
    return 1 - (1 - level) / k, f"Bonferroni over {k} ({100 * (1 - (1 - level) / k):.2f}% intervals)"


def problems(table: pd.DataFrame, chapter: str | None = None) -> list[str]:
    """What is wrong with recorded judgements (flat rows), as sentences; empty when every row
    follows its rule: a reproduced / contradicted / inconclusive interval lies on the claimed /
    opposite side of its threshold / includes it; a tested verdict has its unit and n per side;
    a count names its correction (Bonferroni or Holm); premise not met says which premise; built
    in names its setting; a claim is recorded only by its home chapter (``chapter``); one claim
    and source has one row."""
    out = []
    if table is None or not len(table):
        return out
    for r in table.to_dict("records"):
        where = f"{r.get('claim_id')} on {r.get('source')!r}"
        v = r.get("verdict")
        if v not in VERDICTS:
            out.append(f"{where}: unknown verdict {v!r}")
            continue
        if chapter and r.get("home") and r["home"] != chapter:
            out.append(f"{where}: recorded by {chapter!r}, but its home is {r['home']!r}")
        if v in TESTED:
            if not r.get("unit") or not len(r.get("n") or []):
                out.append(f"{where}: {v} without its resampling unit and n per side")
            if r.get("rule") == "count":
                corr = str(r.get("correction") or "")
                if "Bonferroni" not in corr and "Holm" not in corr:
                    out.append(f"{where}: a count over items without a named correction")
                continue
            lo, hi, t, d = _f(r.get("lo")), _f(r.get("hi")), _f(r.get("threshold")), r.get("direction")
            if not (math.isfinite(lo) and math.isfinite(hi)):
                out.append(f"{where}: {v} without an interval")
                continue
            want, _ = decide(_f(r.get("estimate")), lo, hi, d or "greater", t if math.isfinite(t) else 0.0)
            if want != v:
                out.append(f"{where}: recorded {v!r} but the interval [{lo:+.4g}, {hi:+.4g}] "
                           f"against {t:g} ({d}) gives {want!r}")
        if v == PREMISE_NOT_MET and not (r.get("premise") or r.get("reason")):
            out.append(f"{where}: premise not met without the premise")
        if v == BUILT_IN and not r.get("reason"):
            out.append(f"{where}: built in without the setting that builds it")
    dup = table.groupby(["claim_id", "source"]).size()
    out += [f"{c} on {s!r}: {k} rows" for (c, s), k in dup[dup > 1].items()]
    return out


# --------------------------------------------------------------------------- tables


def rows(judgements: Iterable) -> list[dict]:
    """Flat rows of judgements (a :class:`Judgement` or an already-flat row)."""
    return [j.row() if isinstance(j, Judgement) else dict(j) for j in judgements]


def claims_table(judgements: Iterable) -> pd.DataFrame:
    """Tidy table of judgements: one row per (claim, source), claims in the order given,
    sources in display order (:data:`DISPLAY`)."""
    df = pd.DataFrame(rows(judgements))
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = pd.Series(dtype=object)
    df = df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]
    if df.empty:
        return df
    order = {s: i for i, s in enumerate(DISPLAY)}
    kind = df["source"].map(source_kind)
    df["_o"] = kind.map(order).fillna(len(order))
    claim_order = {c: i for i, c in enumerate(dict.fromkeys(df["claim_id"]))}
    df["_c"] = df["claim_id"].map(claim_order)
    return df.sort_values(["_c", "_o", "source"], kind="stable").drop(
        columns=["_o", "_c"]).reset_index(drop=True)


def _combine(part: pd.DataFrame) -> dict:
    """One verdict for one claim on one kind of evidence from its sources' rows."""
    first = part.iloc[0].to_dict()
    if len(part) == 1:
        return first
    tested = part[part["verdict"].isin(TESTED)]
    if tested.empty:
        # nothing tested: the most informative reason (premise, built in, not testable)
        for v in (PREMISE_NOT_MET, BUILT_IN, NOT_TESTABLE):
            sub = part[part["verdict"] == v]
            if len(sub):
                out = sub.iloc[0].to_dict()
                out["reason"] = "; ".join(f"{s}: {r}" for s, r in zip(sub["source"], sub["reason"]))
                return out
    verdicts = set(tested["verdict"])
    if verdicts == {REPRODUCED}:
        verdict, why = REPRODUCED, "every source that tested it reproduced it"
    elif verdicts == {CONTRADICTED}:
        verdict, why = CONTRADICTED, "every source that tested it contradicted it"
    else:
        verdict, why = INCONCLUSIVE, "the sources disagree"
    best = tested.iloc[0].to_dict()
    best.update(verdict=verdict, reason=why + ": " + "; ".join(
        f"{s} {lab} ({e})" for s, lab, e in zip(tested["source"], tested["label"],
                                                tested["evidence"])),
        source=source_kind(best["source"]),
        data=sorted({d for ds in tested["data"] for d in (ds or [])}))
    small = all(lab != v for lab, v in zip(tested["label"], tested["verdict"]))
    best["label"] = f"{verdict} (thin evidence)" if small and verdict in TESTED else verdict
    best["evidence"] = best["reason"]
    return best


def by_kind(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (claim, kind of evidence) of a claims table (home rows only when a ``home``
    is set: a claim shown in another chapter is not counted there), several sources of one
    kind combined by the intersection rule (module doc)."""
    if table is None or not len(table):
        return pd.DataFrame(columns=COLUMNS)
    t = table.copy()
    t["evidence_kind"] = t["source"].map(source_kind)
    if "chapter" in t.columns and "home" in t.columns:
        own = (t["home"].fillna("") == "") | (t["home"] == t["chapter"])
        t = t[own]
    out = [_combine(part) for _, part in t.groupby(["claim_id", "evidence_kind"], sort=False)]
    if not out:
        return pd.DataFrame(columns=list(t.columns))
    df = pd.DataFrame(out)
    df["evidence_kind"] = df["source"].map(source_kind)
    return df.reset_index(drop=True)


def tally(table: pd.DataFrame) -> dict:
    """Counts of each verdict among the per-kind verdicts (:func:`by_kind`) of ``table``."""
    per = by_kind(table)
    return {v: int((per["verdict"] == v).sum()) for v in VERDICTS} if len(per) else \
        dict.fromkeys(VERDICTS, 0)


def tally_text(counts: dict, empty: str = "not testable here") -> str:
    """``"2 reproduced, 1 inconclusive; 3 not tested"`` from :func:`tally`'s counts."""
    tested = [f"{counts[v]} {v}" for v in TESTED if counts.get(v)]
    other = [f"{counts[v]} {v}" for v in UNTESTED if counts.get(v)]
    if not tested:
        return empty + (f" ({', '.join(other)})" if other else "")
    return ", ".join(tested) + (f" (and {', '.join(other)})" if other else "")


def claims_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """Wide view: one row per claim, one column per kind of evidence (:data:`DISPLAY`), cells
    the per-kind verdict as shown (:func:`label`)."""
    per = by_kind(table)
    if per.empty:
        return pd.DataFrame()
    wide = per.pivot_table(index="claim", columns="evidence_kind", values="label",
                           aggfunc="first", sort=False)
    cols = [s for s in DISPLAY if s in wide.columns]
    wide = wide[cols].fillna(NOT_TESTABLE)
    wide.columns = [KIND_NAMES[c] for c in cols]
    wide.index.name = "claim"
    return wide


def claims_sentences(table: pd.DataFrame) -> str:
    """Markdown: one bullet per claim, each source's verdict with its evidence."""
    lines = []
    for _cid, part in table.groupby("claim_id", sort=False):
        bits = [f"{r.source}: **{r.label}** ({r.evidence})" for r in part.itertuples()]
        lines.append(f"- *{part['claim'].iloc[0]}* — " + "; ".join(bits) + ".")
    return "\n".join(lines)


def world_note(table: pd.DataFrame) -> str:
    """One paragraph on the world's verdicts: where it contradicts the paper, where it is
    inconclusive, where its premises fail or a setting decides the row — said plainly."""
    per = by_kind(table)
    w = per[per["evidence_kind"] == WORLD] if len(per) else per
    if w.empty:
        return ""
    bits = []
    for verdict, what in ((CONTRADICTED, "contradicts"), (INCONCLUSIVE, "is inconclusive on"),
                          (PREMISE_NOT_MET, "cannot test (a premise fails)"),
                          (BUILT_IN, "has by construction")):
        sub = w[w["verdict"] == verdict]
        if len(sub):
            bits.append(f"it {what}: " + "; ".join(f"*{r.claim}* ({r.evidence})"
                                                  for r in sub.itertuples()))
    if not bits:
        if (w["verdict"] == NOT_TESTABLE).all():
            return "The synthetic world could not test these claims in this run (reasons above)."
        return "Where the synthetic world tested a claim, it agrees with the paper."
    return ("**The synthetic world, under its assumptions.** " + " ".join(
        b[0].upper() + b[1:] + "." for b in bits) + " A world verdict says what the zoo's "
        "models do under the world's settings; real-model evidence outranks it.")


def disagreement_note(table: pd.DataFrame, source: str = WORLD) -> str:
    """Backward-compatible name of :func:`world_note`."""
    return world_note(table)


__all__ = ["BUILT_IN", "CLAIM_KINDS", "CONTRADICTED", "Claim", "DISPLAY", "EXTENSION", "IMAGES",
           "INCONCLUSIVE", "Judgement", "MIN_MODELS", "MODELS", "NOT_TESTABLE", "PAIRS",
           "PAPER", "PARENTS", "PREMISE", "PREMISE_NOT_MET", "PUBLISHED", "Premise", "REAL",
           "REPRODUCED", "RUNS", "SOURCES", "STIMULI", "TESTED", "UNTESTED", "VERDICTS", "WORLD",
           "bonferroni", "built_in", "by_kind", "claims_matrix", "claims_sentences",
           "claims_table", "count", "decide", "gated", "interval", "label", "not_testable",
           "premise_not_met", "problems", "rows", "source_kind", "tally", "tally_text", "world_note"]

