"""Study of the landscape chapter: accuracy under shift against ImageNet accuracy.

Tables from the published results (:mod:`clipsafety.published`): per shift, the baseline trend
and every model's effective robustness (:func:`fit_landscape`), per-model and per-group
summaries, and the findings per shift with their verdict (:func:`shift_findings`,
:func:`assess_landscape_claims`).

Convention (Taori et al. 2020; the book's "Methods and conventions" page): per shift, a line is
fitted to the *baseline* models' shift accuracy against their ImageNet accuracy on the chosen
scale (default logit); a model's effective robustness is its shift accuracy minus the line's
prediction at its ImageNet accuracy, in accuracy points (fractions here; charts show percent).
The x axis is ImageNet top-1 over all 1000 classes for every source (the only x every source
publishes), also for the 200-class ImageNet-R/A and the 113-class ObjectNet y axes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clipsafety import claims
from clipsafety import rules as _R
from clipsafety.claims import Claim
from clipsafety.groups import BASELINE, CLIP_ZEROSHOT, FT_GROUPS, group_label
from clipsafety.metrics import bootstrap_ci, trend_band
from clipsafety.published import (
    BASELINE_SOURCES,
    SHIFTS,
    baseline_lines,
    effective_robustness_table,
)
from clipsafety.rules import Exercise

__all__ = ["CLAIMS", "analogue_names", "analogues_of", "assess_landscape_claims",
           "effective_robustness_table", "findings_markdown", "fit_landscape", "fit_table",
           "group_summary", "named_by_published", "per_model_table", "world_premises", "published_long",
           "resolve_shifts", "shift_findings", "source_counts", "training_table", "untested_rows"]


def published_long(sources, shifts) -> pd.DataFrame:
    """The published tables of ``sources`` in long form (:func:`clipsafety.published.landscape_long`)
    on ``shifts``, without the excluded models. Raises
    :class:`~clipsafety.external.ExternalUnavailable` when a table cannot be read."""
    from clipsafety.published import landscape_long

    long = landscape_long(sources)
    return long[long["shift"].isin(shifts) & (long["group"] != "excluded")]


def source_counts(long: pd.DataFrame) -> pd.DataFrame:
    """Models per source (rows) and group (columns, by their labels)."""
    counts = (long.drop_duplicates(["source", "model"]).groupby(["source", "group"]).size()
              .unstack(fill_value=0))
    counts.columns = [group_label(c) for c in counts.columns]
    return counts


def fit_landscape(long: pd.DataFrame, baseline_groups=(BASELINE,),
                  baseline_sources=BASELINE_SOURCES, scale: str = "logit",
                  n_boot: int = 1000, seed: int = 0, grid_points: int = 60):
    """Fit every shift's baseline trend; return ``(points, bands, fits)``.

    points: ``long`` plus ``baseline`` (bool), ``predicted`` and ``eff_rob`` columns.
    bands: per shift a grid of ImageNet accuracies with ``lo, mid, hi`` of the trend.
    fits: per shift ``slope, intercept, n_baseline, scale``.
    """
    pts, bands, fits = [], [], []
    lines = baseline_lines(long, baseline_groups, baseline_sources, scale)
    for shift, df in long.groupby("shift", sort=False):
        df = df.copy()
        trend, base = lines[shift]
        x, y = df["imagenet"].to_numpy(), df["shift_acc"].to_numpy()
        df["baseline"] = base
        df["predicted"] = trend.predict(x)
        df["eff_rob"] = y - df["predicted"].to_numpy()
        pts.append(df)
        lo_x, hi_x = np.quantile(x, [0.0, 1.0])
        grid = np.linspace(max(lo_x, 0.02), min(hi_x, 0.98), grid_points)
        lo, mid, hi = trend_band(x[base], y[base], grid, scale=scale, n_boot=n_boot, seed=seed)
        bands.append(pd.DataFrame({"shift": shift, "x": grid, "lo": lo, "mid": mid, "hi": hi}))
        fits.append({"shift": shift, "slope": trend.slope, "intercept": trend.intercept,
                     "n_baseline": trend.n, "scale": scale})
    return (pd.concat(pts, ignore_index=True), pd.concat(bands, ignore_index=True),
            pd.DataFrame(fits))


def fit_table(fits: pd.DataFrame) -> pd.DataFrame:
    """:func:`fit_landscape`'s fits with the number of baseline models as an integer."""
    return fits.assign(n_baseline=fits["n_baseline"].astype(int))


def per_model_table(points: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """The ``top_n`` most and (after them) up to ``top_n`` least effectively robust CLIP
    models, zero-shot and fine-tuned (:func:`effective_robustness_table`), ImageNet accuracy
    and effective robustness in points (two decimals), groups by their labels."""
    shown = effective_robustness_table(points, groups=[CLIP_ZEROSHOT, *FT_GROUPS]).copy()
    num = [c for c in shown.columns if c.startswith("ER") or c == "imagenet"]
    shown[num] = (100 * shown[num]).round(2)
    shown["group"] = shown["group"].map(group_label)
    return pd.concat([shown.head(top_n), shown.tail(min(top_n, max(len(shown) - top_n, 0)))])


def training_table(points: pd.DataFrame, openclip: pd.DataFrame) -> pd.DataFrame:
    """The zero-shot CLIPs' :func:`effective_robustness_table` with open_clip's metadata of
    each (``openclip``: :func:`clipsafety.published.openclip_results`): train_source,
    samples_seen, params (missing where the table gives none)."""
    er = effective_robustness_table(points, groups=[CLIP_ZEROSHOT])
    return er.merge(openclip[["model", "train_source", "samples_seen", "params"]], on="model",
                    how="left")


def analogues_of(shifts, analogues: dict) -> list[str]:
    """The synthetic world's shifts standing for the published ``shifts`` (``analogues``:
    world shift -> published shift)."""
    to_world = {v: k for k, v in analogues.items()}
    return [to_world[s] for s in shifts]


def named_by_published(points: pd.DataFrame, analogues: dict) -> pd.DataFrame:
    """``points`` of the world's shifts with each shift named by the published shift it
    stands for (``analogues``: world shift -> published shift)."""
    out = points.copy()
    out["shift"] = out["shift"].map(analogues)
    return out


def analogue_names(analogues: dict) -> dict:
    """Display names of the published shifts in the world: "`world shift` (shift analogue)"."""
    return {v: f"`{k}` ({v} analogue)" for k, v in analogues.items()}


def group_summary(points: pd.DataFrame) -> pd.DataFrame:
    """Median effective robustness per (shift, group) with the number of models."""
    return (points.groupby(["shift", "group"])["eff_rob"]
            .agg(median="median", n="size").reset_index())


def resolve_shifts(shifts) -> list[str]:
    """The shifts of a run, checked against :data:`clipsafety.published.SHIFTS`."""
    shifts = [shifts] if isinstance(shifts, str) else list(shifts)
    unknown = sorted(set(shifts) - set(SHIFTS))
    if unknown or not shifts:
        raise ValueError(f"unknown shift(s) {unknown or shifts}; valid shifts: {list(SHIFTS)}")
    return shifts


# --------------------------------------------------------------------------- findings and claims

#: the landscape's premise (Radford et al. 2021, Taori et al. 2020, restated by the paper), one
#: claim per shift: zero-shot CLIP lies further above the standard models' line than they do
CLAIMS = {s: Claim(
    f"landscape-{s}", f"Zero-shot CLIP is more effectively robust than standard ImageNet models "
    f"on {SHIFTS[s].split(' (')[0]}", "premise", kind=claims.PREMISE, direction="greater",
    compares="zero-shot CLIP vs standard ImageNet models",
    conditioned_on="ImageNet accuracy (effective robustness: distance to the standard models' line)",
    test="mean effective robustness of zero-shot CLIP minus that of the standard models, in "
         "points, with a percentile bootstrap interval resampling both groups' models jointly; "
         "reproduced when the interval lies above zero", home="landscape")
    for s in SHIFTS}

#: the world settings that put zero-shot CLIP above the line on a shift's analogue: the web-like
#: sources' style mix (sketches, silhouettes and paintings 10-15% each against 2% in the
#: labelled set: ``clipsafety.synth.sources``); the world appendix's narrow-source ablation
#: measures it (the same recipe on the labelled set's pictures loses the effect)
WORLD_SETTINGS = {
    "sketch": "the web-like sources' style mix (sketches 10-15% against 2% in the labelled set, "
              "a setting of the world); the narrow-source ablation removes it",
    "r": "the web-like sources' style mix (sketches, silhouettes and paintings 10-15% each "
         "against 2% in the labelled set, a setting of the world)",
}


def _mean_difference(values: np.ndarray, in_a: np.ndarray) -> float:
    a, b = values[in_a], values[~in_a]
    return float(a.mean() - b.mean()) if a.size and b.size else np.nan


def shift_findings(points: pd.DataFrame, shifts, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per shift: the mean effective robustness of zero-shot CLIP and of the standard models,
    the difference (CLIP minus standard) with a percentile bootstrap interval resampling both
    groups' models jointly, the share of CLIP models above the line, and the verdict of the
    premise by :func:`clipsafety.claims.decide` (the one rule of the landscape chapter and the
    world appendix). Shifts with fewer than two models in a group: not testable."""
    rows = []
    for shift in shifts:
        p = points[points["shift"] == shift]
        zs = p.loc[p["group"] == CLIP_ZEROSHOT, "eff_rob"].dropna().to_numpy(float)
        st = p.loc[p["group"] == BASELINE, "eff_rob"].dropna().to_numpy(float)
        row = {"shift": shift, "n_clip": len(zs), "n_standard": len(st)}
        if len(zs) < 2 or len(st) < 2:
            rows.append({**row, "reading": claims.NOT_TESTABLE})
            continue
        values = np.concatenate([zs, st])
        in_a = np.concatenate([np.ones(len(zs), bool), np.zeros(len(st), bool)])
        d, lo, hi = bootstrap_ci(_mean_difference, values, in_a, n_boot=n_boot, seed=seed)
        reading, _ = claims.decide(d, lo, hi, "greater")
        rows.append({**row, "clip_mean": float(zs.mean()), "standard_mean": float(st.mean()),
                     "diff": d, "lo": lo, "hi": hi, "share_above": float((zs > 0).mean()),
                     "reading": reading})
    return pd.DataFrame(rows)


def findings_markdown(findings: pd.DataFrame, names: dict | None = None) -> list[str]:
    """One Markdown bullet per shift of :func:`shift_findings` (numbers in points); ``names``:
    the shifts' display names (default :data:`clipsafety.published.SHIFTS`)."""
    names = SHIFTS if names is None else names
    lines = []
    for r in findings.itertuples(index=False):
        if r.reading == claims.NOT_TESTABLE:
            lines.append(f"- **{names[r.shift]}**: fewer than two models in a group; not testable.")
            continue
        lines.append(
            f"- **{names[r.shift]}**: mean effective robustness of {r.n_clip} zero-shot CLIP "
            f"models {100 * r.clip_mean:+.1f} points against {100 * r.standard_mean:+.1f} for "
            f"{r.n_standard} standard models: a difference of {100 * r.diff:+.1f} points (95% "
            f"interval {100 * r.lo:+.1f} to {100 * r.hi:+.1f}); {100 * r.share_above:.0f}% of "
            f"the CLIP models lie above the line. Premise: **{r.reading}**.")
    return lines


def assess_landscape_claims(findings: pd.DataFrame, source: str = claims.PUBLISHED,
                            data: tuple = (), built_in: dict | None = None) -> list:
    """Judgements of the landscape's per-shift premise on one evidence source, from
    :func:`shift_findings`. ``built_in``: ``{shift: setting}`` for the shifts where a setting
    of the synthetic world puts the effect there (:data:`WORLD_SETTINGS`): built in, the
    measured effect kept."""
    out = []
    for r in findings.itertuples(index=False):
        claim = CLAIMS[r.shift]
        if r.reading == claims.NOT_TESTABLE:
            out.append(claims.not_testable(claim, source, f"fewer than two models in a group "
                                           f"({r.n_clip} zero-shot CLIP, {r.n_standard} standard)",
                                           data=data))
            continue
        j = claims.interval(claim, source, 100 * r.diff, 100 * r.lo, 100 * r.hi,
                            effect="mean effective robustness, zero-shot CLIP minus standard models",
                            scale="points", unit=claims.MODELS, n=(r.n_clip, r.n_standard),
                            sides=("zero-shot CLIP", "standard"), data=data)
        if built_in and r.shift in built_in:
            j = claims.built_in(claim, source, built_in[r.shift], j)
        out.append(j)
    return out


def world_premises(points: pd.DataFrame, shifts, chance: float = 0.1,
                   factor: float = 2.0) -> dict:
    """Per shift of the world's points (``shift``, ``group``, ``shift_acc``): the premise that
    the compared groups are above ``factor`` times chance on the shift's analogue (their mean
    accuracy), as :class:`clipsafety.claims.Premise` lists for :func:`clipsafety.claims.gated`."""
    out = {}
    for s in shifts:
        p = points[points["shift"] == s]
        accs = {g: p.loc[p["group"] == g, "shift_acc"].mean() for g in (CLIP_ZEROSHOT, BASELINE)}
        low = {g: a for g, a in accs.items() if not (a >= factor * chance)}
        out[s] = [claims.Premise(
            "above chance", not low,
            ", ".join(f"{group_label(g)} mean accuracy {100 * a:.1f}%" for g, a in accs.items()),
            f"at least {100 * factor * chance:.0f}% ({factor:g} times chance)")]
    return out


def untested_rows(shifts, source: str, why: str) -> list:
    """``not testable`` judgements of the claims of ``shifts`` on ``source``."""
    return [claims.not_testable(CLAIMS[s], source, why) for s in shifts]


# --------------------------------------------------------------------------------------------
# the chapter's parameters and exercises (collected by the book runner and the pages)

ABOUT = "accuracy under shift against ImageNet accuracy, and CLIP's effective robustness (published tables and the zoo)."

#: the published tables of the landscape (the readers of clipsafety.published.landscape_long)
LANDSCAPE_SOURCES = ("timm", "open_clip", "imagenet-testbed")


def _baseline_sources(v, params):
    err = _R.subset(LANDSCAPE_SOURCES, "source(s)")(v, params)
    if err:
        return err
    missing = [x for x in _R.as_list(v) if x not in _R.as_list(params.get("sources", LANDSCAPE_SOURCES))]
    if missing:
        return f"{missing} {'is' if len(missing) == 1 else 'are'} not among sources; add them to sources"
    return None


PARAMETER_RULES = {
    "shifts": _R.subset(lambda: tuple(SHIFTS), "shift(s)"),
    "sources": _R.subset(LANDSCAPE_SOURCES, "source(s)"),
    "baseline_sources": _baseline_sources, "scale": _R.SCALES,
    "n_boot": _R.N_BOOT, "seed": _R.SEED,
    "top_n": _R.ints(1, "rows of the per-model table", hi=1000),
}

EXERCISES = [
    Exercise("Fit the line of the standard models on the probit scale instead of logit.",
             {"scale": "probit"},
             "whether zero-shot CLIP's effective robustness depends on the scale"),
    Exercise("Let only imagenet-testbed's models define the line (timm reports no ObjectNet).",
             {"baseline_sources": ["imagenet-testbed"]},
             "how much the baseline moves when timm's models leave it"),
    Exercise("Look at the natural shifts only.",
             {"shifts": ["r", "a", "objectnet"]},
             "the verdict of each shift in the findings"),
]
