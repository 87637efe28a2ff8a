"""Generic chart builders (altair, interactive, shared styles) for every chapter.

Built on :mod:`clipsafety.plots` (renderer, group colours and markers, trend bands). Every
builder takes a tidy table (from a study module) and returns an altair chart; no builder knows
a chapter; the
legend is clickable (a click on a group highlights it) and tooltips name the model and values.
Accuracies and effective robustness are fractions in the tables and shown in percent points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from clipsafety import plots, style
from clipsafety.groups import CLIP_FT_DIRECT, CLIP_ZEROSHOT, GROUPS, group_label
from clipsafety.plots import words
from clipsafety.style import group_colour

HIGHLIGHT = CLIP_ZEROSHOT

#: the widest a chart may draw (px): the book theme's text column at a 1280 px screen is
#: 688 px; a chart's axes and legends come out of this budget (legends go below the plot,
#: :data:`clipsafety.plots.CONFIG`)
TEXT_WIDTH = 640
#: room for a panel's y axis (labels and title) in a grid of panels
AXIS = 62


def _title(text, width: int):
    """A panel's title, cut with an ellipsis at the panel's width (a long title would widen
    its panel, and with it the grid, past the text column)."""
    return _alt().TitleParams(text=str(text), limit=width, fontSize=11)


def _key(lines: Sequence[str], title: str = ""):
    """A grid's title with a subtitle that explains its encodings, one per line."""
    return _alt().TitleParams(text=title or " ", subtitle=list(lines), anchor="start",
                              limit=TEXT_WIDTH, subtitleFontSize=11)


def panel_width(columns: int, axis: int = AXIS, budget: int = TEXT_WIDTH) -> int:
    """The plot width of each of ``columns`` panels side by side within ``budget``."""
    return max(60, (budget - columns * (axis + 10)) // max(1, columns))


def _alt():
    import altair as alt

    return alt


def _legend_selection():
    alt = _alt()
    return alt.selection_point(fields=["group_label"], bind="legend")


def _groups_in(df: pd.DataFrame) -> list[str]:
    return list(df["group"].dropna().unique())


def _pct(df: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    out = df.copy()
    for c in cols:
        if c in out:
            out[c] = out[c] * 100.0
    return out


def factor_trends(long: pd.DataFrame, grid: pd.DataFrame, factors: Sequence[str] | None = None,
                  columns: int = 3, width: int | None = None, height: int = 130,
                  highlight: str | None = HIGHLIGHT):
    """Factor accuracy against overall accuracy, one small panel per factor, with the baseline
    fit and its bootstrap band (``grid`` from :func:`clipsafety.studies.factors.trend_grid`).

    ``long``: model, group, factor, factor_acc, overall_acc (fractions). Points of the
    ``highlight`` group are drawn larger with a black outline.
    """
    alt = _alt()
    width = width or panel_width(columns)
    factors = list(factors or long["factor"].drop_duplicates())
    data = plots.with_group_labels(_pct(long, ["factor_acc", "overall_acc", "eff_rob",
                                               "expected_acc"]))
    grid = _pct(grid, ["x", "lo", "mid", "hi"])
    sel = _legend_selection()
    groups = _groups_in(long)
    panels = []
    for f in factors:
        d = data[data["factor"] == f]
        if d.empty:
            continue
        tooltip = [alt.Tooltip("model:N"), alt.Tooltip("group_label:N", title="group"),
                   alt.Tooltip("overall_acc:Q", format=".1f", title="overall acc (%)"),
                   alt.Tooltip("factor_acc:Q", format=".1f", title=f"{words(f)} acc (%)")]
        if "eff_rob" in d:
            tooltip.append(alt.Tooltip("eff_rob:Q", format="+.1f", title="eff. robustness (pts)"))
        x_title, y_title = "overall accuracy (%)", f"{words(f)} accuracy (%)"
        pts = plots.scatter_by_group(d, "overall_acc", "factor_acc", tooltip,
                                     x_title=x_title, y_title=y_title, groups=groups, size=45)
        pts = pts.encode(opacity=alt.condition(sel, alt.value(0.85), alt.value(0.1)))
        if not panels:  # define the legend selection once; the other panels use it
            pts = pts.add_params(sel)
        layers = [pts]
        g = grid[grid["factor"] == f] if "factor" in grid else grid.iloc[0:0]
        if not g.empty:
            layers.insert(0, plots.trend_band(g))
        if highlight is not None and (d["group"] == highlight).any():
            hl = d[d["group"] == highlight]
            layers.append(alt.Chart(hl).mark_point(size=140, color="black", filled=False,
                                                   strokeWidth=1.5)
                          .encode(x=alt.X("overall_acc:Q", title=x_title),
                                  y=alt.Y("factor_acc:Q", title=y_title), tooltip=tooltip))
        panels.append(alt.layer(*layers).properties(title=_title(words(f), width), width=width,
                                                    height=height))
    if not panels:
        return alt.Chart(pd.DataFrame()).mark_text().properties(title="no factor data")
    key = ["colour and marker: model group (click the legend to pick one)"]
    if not grid.empty:
        key.append("line and band: the baseline group's fit and its 95% bootstrap band")
    if highlight is not None:
        key.append(f"black ring: {group_label(highlight)}")
    return alt.concat(*panels, columns=columns).resolve_scale(
        color="shared", shape="shared").properties(title=_key(key))


def effective_robustness_by_group(summary: pd.DataFrame, category: str = "factor",
                                  title: str = "factor-level effective robustness",
                                  height: int = 260):
    """Mean effective robustness per group and category with bootstrap intervals (points and
    error bars, percent points); ``summary`` from :func:`clipsafety.summaries.group_summary`."""
    alt = _alt()
    d = plots.with_group_labels(_pct(summary.dropna(subset=["mean"]), ["mean", "lo", "hi"]))
    d[category] = d[category].map(words)
    if d.empty:
        return plots.not_drawn_note(
            f"The chart of {title}", "no group has an effective robustness in this run (the "
            "baseline group needs at least two models of different accuracy for its trend; "
            "see the models per group above)")
    groups = _groups_in(summary)
    enc = plots.group_encodings(groups)
    sel = _legend_selection()
    order = [words(c) for c in summary[category].drop_duplicates()]
    base = alt.Chart(d).encode(
        x=alt.X(f"{category}:N", sort=order, title=words(category), axis=alt.Axis(labelAngle=-40)),
        xOffset=alt.XOffset("group_label:N"),
        color=enc["color"],
        opacity=alt.condition(sel, alt.value(1.0), alt.value(0.15)),
    )
    tooltip = [alt.Tooltip(f"{category}:N"), alt.Tooltip("group_label:N", title="group"),
               alt.Tooltip("n_models:Q", title="models"),
               alt.Tooltip("mean:Q", format="+.2f", title="mean (pts)"),
               alt.Tooltip("lo:Q", format="+.2f", title="95% CI low"),
               alt.Tooltip("hi:Q", format="+.2f", title="95% CI high")]
    bars = base.mark_rule(strokeWidth=2).encode(y=alt.Y("lo:Q", title="effective robustness "
                                                        "(accuracy points)"), y2="hi:Q")
    pts = base.mark_point(filled=True, size=70).encode(y="mean:Q", shape=enc["shape"],
                                                       tooltip=tooltip).add_params(sel)
    zero = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="grey", strokeDash=[4, 4]).encode(
        y="y:Q")
    return alt.layer(zero, bars, pts).properties(title=title, height=height,
                                                 width=TEXT_WIDTH - AXIS - 10)


def effective_robustness_heatmap(long: pd.DataFrame, value: str = "eff_rob",
                                 category: str = "factor",
                                 title: str = "effective robustness of every model"):
    """One row per model (sorted by group), one column per category, colour = value in points
    (diverging around 0); tooltips name model, group and value."""
    alt = _alt()
    d = plots.with_group_labels(_pct(long.dropna(subset=[value]), [value]))
    d[category] = d[category].map(words)
    if d.empty or not (d[value].abs() > 1e-9).any():
        return plots.not_drawn_note(
            f"The heatmap of {title}", "no model has a non-zero effective robustness in this "
            "run (the baseline group needs at least two models of different accuracy for its "
            "trend; see the models per group above)")
    order = [group_label(g) for g in GROUPS]
    d["_g"] = d["group_label"].map({g: i for i, g in enumerate(order)}).fillna(len(order))
    models = list(d.sort_values(["_g", "model"])["model"].drop_duplicates())
    lim = float(max(1e-9, d[value].abs().quantile(0.98)))
    # colours are clamped at the 98th percentile of |value| (the legend's ends mean "this or
    # beyond"); a model without a value for a category leaves its cell empty (white)
    return alt.Chart(d.drop(columns="_g")).mark_rect().encode(
        x=alt.X(f"{category}:N", sort=[words(c) for c in long[category].drop_duplicates()],
                title=words(category)),
        y=alt.Y("model:N", sort=models, title=None, axis=alt.Axis(labelFontSize=8)),
        color=alt.Color(f"{value}:Q", title=f"eff. rob. (pts; clamped at ±{lim:.1f})",
                        scale=alt.Scale(scheme="redblue", domain=[-lim, lim], reverse=True,
                                        clamp=True)),
        tooltip=[alt.Tooltip("model:N"), alt.Tooltip("group_label:N", title="group"),
                 alt.Tooltip(f"{category}:N"), alt.Tooltip(f"{value}:Q", format="+.2f")],
    ).properties(title=title, height=alt.Step(9), width=alt.Step(min(
        28, (TEXT_WIDTH - 230) // max(1, d[category].nunique()))))


def strip_by_group(df: pd.DataFrame, value: str = "shape_bias", title: str = "",
                   band: tuple[float, float, float] | None = None,
                   band_label: str = "human observers (range, mean)",
                   x_title: str = "shape bias (fraction of shape decisions)",
                   tooltip_extra: Sequence[str] = ()):
    """One point per model on a 0..1 axis, one row per group; an optional reference band
    ``(lo, mid, hi)`` (e.g. the human observers) shaded behind. Tooltips name model and value."""
    alt = _alt()
    d = plots.with_group_labels(df.dropna(subset=[value]))
    groups = _groups_in(df)
    enc = plots.group_encodings(groups)
    sel = _legend_selection()
    tooltip = [alt.Tooltip("model:N"), alt.Tooltip("group_label:N", title="group"),
               alt.Tooltip(f"{value}:Q", format=".3f")] + [alt.Tooltip(c) for c in tooltip_extra]
    pts = alt.Chart(d).mark_point(filled=True, size=80).encode(
        x=alt.X(f"{value}:Q", title=x_title, scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("group_label:N", title=None, sort=[group_label(g) for g in GROUPS]),
        yOffset=alt.YOffset("jitter:Q"),
        opacity=alt.condition(sel, alt.value(0.85), alt.value(0.1)),
        tooltip=tooltip, **enc,
    ).transform_calculate(jitter="random()*16-8").add_params(sel)
    layers = [pts]
    if band is not None:
        lo, mid, hi = band
        b = pd.DataFrame({"lo": [lo], "hi": [hi], "mid": [mid], "what": [band_label]})
        rect = alt.Chart(b).mark_rect(opacity=0.18, color=group_colour("human")).encode(
            x="lo:Q", x2="hi:Q", tooltip=[alt.Tooltip("what:N", title=""),
                                          alt.Tooltip("lo:Q", format=".3f"),
                                          alt.Tooltip("mid:Q", format=".3f", title="mean"),
                                          alt.Tooltip("hi:Q", format=".3f")])
        rule = alt.Chart(b).mark_rule(color=group_colour("human"), strokeDash=[4, 3]).encode(x="mid:Q")
        layers = [rect, rule, pts]
    return alt.layer(*layers).properties(title=title, width=TEXT_WIDTH - 180)


def versus_accuracy(df: pd.DataFrame, x: str = "id_acc", y: str = "shape_bias",
                    x_title: str = "ID accuracy (%)", y_title: str = "shape bias",
                    title: str = "", tooltip_extra: Sequence[str] = (), x_pct: bool = True):
    """A per-model scatter of ``y`` against an accuracy, in group colours and markers."""
    alt = _alt()
    d = _pct(df, [x]) if x_pct else df.copy()
    d = plots.with_group_labels(d.dropna(subset=[x, y]))
    sel = _legend_selection()
    tooltip = [alt.Tooltip("model:N"), alt.Tooltip("group_label:N", title="group"),
               alt.Tooltip(f"{x}:Q", format=".1f"), alt.Tooltip(f"{y}:Q", format=".3f")]
    tooltip += [alt.Tooltip(c) for c in tooltip_extra]
    ch = plots.scatter_by_group(d, x, y, tooltip, x_title=x_title, y_title=y_title,
                                groups=_groups_in(df), size=80)
    return ch.encode(opacity=alt.condition(sel, alt.value(0.85), alt.value(0.1))).add_params(
        sel).properties(title=title, width=420, height=300).interactive()


def paired_change(pairs: pd.DataFrame, before: str = "before", after: str = "after",
                  pair: str = "pair", value_title: str = "shape bias",
                  labels: tuple[str, str] = ("zero-shot", "fine-tuned"), title: str = ""):
    """Slope chart: one line per pair from ``before`` to ``after`` (e.g. a zero-shot CLIP and
    the same CLIP fine-tuned); points coloured by the group of each end."""
    alt = _alt()
    rows = []
    for r in pairs.itertuples(index=False):
        r = r._asdict()
        rows.append({pair: r[pair], "stage": labels[0], "value": r[before],
                     "model": r.get("model_before", r[pair]),
                     "group": r.get("group_before", CLIP_ZEROSHOT)})
        rows.append({pair: r[pair], "stage": labels[1], "value": r[after],
                     "model": r.get("model_after", r[pair]),
                     "group": r.get("group_after", CLIP_FT_DIRECT)})
    d = plots.with_group_labels(pd.DataFrame(rows))
    enc = plots.group_encodings(_groups_in(d))
    tooltip = [alt.Tooltip("model:N"), alt.Tooltip("group_label:N", title="group"),
               alt.Tooltip("value:Q", format=".3f", title=value_title)]
    x = alt.X("stage:N", sort=list(labels), title=None)
    lines = alt.Chart(d).mark_line(color="grey", opacity=0.6).encode(
        x=x, y=alt.Y("value:Q", title=value_title), detail=f"{pair}:N")
    pts = alt.Chart(d).mark_point(filled=True, size=80).encode(
        x=x, y="value:Q", tooltip=tooltip, **enc)
    return alt.layer(lines, pts).properties(title=title, width=260, height=300)


def trend_panels(points: pd.DataFrame, bands: pd.DataFrame, panel: str, panels: Sequence[str],
                 x: str, y: str, tooltip: list, titles: dict | None = None,
                 x_title: str = "", y_title=None, columns: int = 2, width: int | None = None,
                 height: int = 240, size: int = 30):
    """A grid of scatter panels (one per value of ``panel``), points by group over a trend
    line with its band (``bands``: panel column, x, lo, mid, hi, in the points' units).
    ``y_title``: a string, or a callable of the panel value. The panels share one table
    (each filters it), so a page carries the points once."""
    alt = _alt()
    width = width or panel_width(columns)
    groups = points["group"].unique()
    points = points[points[panel].isin(list(panels))]
    charts = []
    for value in panels:
        yt = y_title(value) if callable(y_title) else (y_title or words(y))
        scatter = plots.scatter_by_group(points, x, y, size=size, tooltip=tooltip,
                                         x_title=x_title, y_title=yt, groups=groups
                                         ).transform_filter(alt.datum[panel] == value)
        band = plots.trend_band(bands[bands[panel] == value])
        charts.append((band + scatter).properties(width=width, height=height,
                                                   title=_title((titles or {}).get(value, words(value)),
                                                                width)))
    rows = [alt.hconcat(*charts[i:i + columns]) for i in range(0, len(charts), columns)]
    return alt.vconcat(*rows).resolve_scale(color="shared", shape="shared")


def ticks_with_median(points: pd.DataFrame, medians: pd.DataFrame, panel: str,
                      panels: Sequence[str], value: str, median: str, tooltip: list,
                      titles: dict | None = None, x_title: str = "",
                      width: int = TEXT_WIDTH - 190, height: int = 140):
    """One row of ticks per group (one tick per model) with the group median as a thick mark
    and a dashed zero line, one panel per value of ``panel`` (the panels share one table)."""
    alt = _alt()
    enc = plots.group_encodings(points["group"].unique())
    data = plots.with_group_labels(points[points[panel].isin(list(panels))])
    med = alt.Chart(plots.with_group_labels(medians)).mark_tick(
        thickness=4, size=18, color="black").encode(
        x=alt.X(f"{median}:Q", title=x_title), y=alt.Y("group_label:N", title=None),
        tooltip=["group_label", alt.Tooltip(f"{median}:Q", format="+.2f", title="median"), "n"])
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(strokeDash=[4, 4]).encode(x="x:Q")
    layers = []
    for v in panels:
        ticks = alt.Chart(data).mark_tick(opacity=0.4, thickness=1).encode(
            x=alt.X(f"{value}:Q", title=x_title), y=alt.Y("group_label:N", title=None),
            color=enc["color"], tooltip=tooltip).transform_filter(alt.datum[panel] == v)
        layers.append(alt.layer(ticks, med.transform_filter(alt.datum[panel] == v), zero)
                      .properties(width=width, height=height,
                                  title=_title((titles or {}).get(v, words(v)), width)))
    return alt.vconcat(*layers)


def scatter_by_category(df: pd.DataFrame, x: str, y: str, category: str, size: str | None,
                        tooltip: list, x_title: str = "", y_title: str = "",
                        category_title: str = "", size_title: str = "", shapes=None,
                        width: int = TEXT_WIDTH - AXIS - 10,
                        height: int = 320):
    """Points coloured and shaped by a category column (e.g. training source), sized by
    ``size``; ``shapes``: a ``{category: marker}`` mapping (default: circles). One legend for
    the category (colour and marker share its domain). Missing metadata is shown, never
    dropped: a missing category reads "unknown", and a point without ``size`` is drawn hollow
    at the smallest size, its size legend entry "unknown"."""
    alt = _alt()
    d = df.copy()
    d[category] = d[category].fillna("unknown").astype(str)
    domain = list(dict.fromkeys(sorted(d[category])))
    enc = dict(
        x=alt.X(f"{x}:Q", title=x_title, scale=alt.Scale(zero=False)),
        y=alt.Y(f"{y}:Q", title=y_title),
        shape=alt.Shape(f"{category}:N", title=category_title, scale=alt.Scale(
            domain=domain, range=[(shapes or {}).get(c, "circle") for c in domain])),
        color=alt.Color(f"{category}:N", title=category_title,
                        scale=alt.Scale(domain=domain, scheme="tableau10")),
        tooltip=tooltip)
    if not size:
        return alt.Chart(d).mark_point(filled=True, opacity=0.8).encode(**enc).properties(
            width=width, height=height)
    known = d[size].notna()
    smallest = float(d.loc[known, size].min()) if known.any() else 1.0
    size_scale = alt.Scale(domain=[smallest, float(d[size].max()) if known.any() else 1.0])
    filled = alt.Chart(d[known]).mark_point(filled=True, opacity=0.8).encode(
        size=alt.Size(f"{size}:Q", title=size_title or words(size), scale=size_scale), **enc)
    layers = [filled]
    key = f"filled marker: sized by {size_title or size}"
    if (~known).any():
        hollow = alt.Chart(d[~known].assign(**{size: smallest})).mark_point(
            filled=False, strokeWidth=1.5, size=60).encode(**enc)
        layers.append(hollow)
        key += f"; hollow marker: {size_title or size} unknown ({int((~known).sum())} models)"
    return alt.layer(*layers).properties(width=width, height=height,
                                         title=_key([key, f"colour and marker: {category_title or category}"]))


def level_curves(df: pd.DataFrame, panel: str, x: str, y: str, series: str, order: str,
                 highlight: Sequence[str] = (), columns: int = 3, width: int | None = None,
                 height: int = 120, y_title: str = "", title: str = ""):
    """One small panel per value of ``panel``: ``y`` against an ordinal ``x`` (sorted by the
    numeric ``order`` column), one line per ``series`` in its group colour; the ``highlight``
    series drawn thick, the others thin. Tooltips name the series, group and value."""
    alt = _alt()
    width = width or panel_width(columns, axis=40)
    d = plots.with_group_labels(df).assign(_hl=lambda t: t[series].isin(list(highlight)))
    sel = _legend_selection()
    enc = plots.group_encodings(_groups_in(df))
    base = alt.Chart(d).encode(
        x=alt.X(f"{x}:N", sort=alt.EncodingSortField(order, op="min"), title=None,
                axis=alt.Axis(labelAngle=-45, labelFontSize=8)),
        y=alt.Y(f"{y}:Q", title=y_title or words(y), scale=alt.Scale(domain=[0, 1])),
        color=enc["color"], detail=f"{series}:N",
        opacity=alt.condition(sel, alt.value(0.9), alt.value(0.08)),
        strokeWidth=alt.condition(alt.datum._hl, alt.value(2.5), alt.value(0.7)),
        tooltip=[alt.Tooltip(f"{series}:N"), alt.Tooltip("group_label:N", title="group"),
                 alt.Tooltip(f"{x}:N"), alt.Tooltip(f"{y}:Q", format=".3f")])
    lines = base.mark_line(point=False).add_params(sel)
    return lines.properties(width=width, height=height).facet(
        facet=alt.Facet(f"{panel}:N", title=None), columns=columns).properties(title=title)


def points_by_category(df: pd.DataFrame, category: str, value: str, series: str,
                       highlight: Sequence[str] = (), x_title: str = "", title: str = "",
                       width: int = TEXT_WIDTH - AXIS - 10, height: int = 220):
    """One column per ``category``, one point per ``series`` in its group colour and marker
    (``highlight`` series larger, outlined). Tooltips name the series, group and value."""
    alt = _alt()
    d = plots.with_group_labels(df.dropna(subset=[value])).assign(
        _hl=lambda t: t[series].isin(list(highlight)))
    sel = _legend_selection()
    enc = plots.group_encodings(_groups_in(df))
    return alt.Chart(d).mark_point(filled=True).encode(
        x=alt.X(f"{category}:N", title=None, axis=alt.Axis(labelAngle=-45)),
        y=alt.Y(f"{value}:Q", title=x_title or words(value)),
        size=alt.condition(alt.datum._hl, alt.value(120), alt.value(30)),
        opacity=alt.condition(sel, alt.value(0.85), alt.value(0.08)),
        tooltip=[alt.Tooltip(f"{series}:N"), alt.Tooltip("group_label:N", title="group"),
                 alt.Tooltip(f"{category}:N"), alt.Tooltip(f"{value}:Q", format=".3f")],
        **enc).add_params(sel).properties(width=width, height=height, title=title)


def stack(*charts, title: str = ""):
    """Charts one above the other as one chart (shared colour and marker legends)."""
    alt = _alt()
    return alt.vconcat(*charts).resolve_scale(color="shared", shape="shared").properties(
        title=title)


def metric_panels(df: pd.DataFrame, panel: str, panels: Sequence[str], x: str,
                  metrics: Sequence[str], marker: str | None = None, x_title: str = "",
                  titles: dict | None = None, width: int | None = None, height: int = 120,
                  columns: int = 3):
    """A grid: for each metric in ``metrics``, one panel per value of ``panel`` (``columns``
    to a row); per-model points of the metric against ``x`` (a fraction, shown in percent),
    coloured by group and, with ``marker``, shaped by that column (missing values shown as
    "unknown"). Legend click highlights a group."""
    alt = _alt()
    width = width or panel_width(columns)
    d = plots.with_group_labels(_pct(df, [x]))
    if marker:
        d[marker] = d[marker].fillna("unknown").astype(str).map(words)
    keep = ["model", "group", "group_label", panel, x, *metrics] + ([marker] if marker else [])
    d = d[[c for c in dict.fromkeys(keep) if c in d]]
    sel = _legend_selection()
    colour = plots.group_encodings(_groups_in(df))["color"]
    panels = list(panels)
    rows = []
    for m in metrics:
        mt = (titles or {}).get(m, words(m))
        for start in range(0, len(panels), columns):
            cells = []
            for i, v in enumerate(panels[start:start + columns]):
                enc = dict(
                    x=alt.X(f"{x}:Q", title=x_title or words(x), scale=alt.Scale(zero=False)),
                    y=alt.Y(f"{m}:Q", title=mt if i == 0 else None, scale=alt.Scale(zero=False)),
                    color=colour, opacity=alt.condition(sel, alt.value(0.85), alt.value(0.1)),
                    tooltip=[alt.Tooltip("model:N"), alt.Tooltip("group_label:N", title="group"),
                             alt.Tooltip(f"{x}:Q", format=".1f"),
                             alt.Tooltip(f"{m}:Q", format=".3f")]
                    + ([alt.Tooltip(f"{marker}:N")] if marker else []))
                if marker:
                    enc["shape"] = alt.Shape(f"{marker}:N", title=words(marker))
                cells.append(alt.Chart(d[d[panel] == v]).mark_point(filled=True, size=45)
                             .encode(**enc).add_params(sel)
                             .properties(width=width, height=height, title=_title(words(v), width)))
            rows.append(alt.hconcat(*cells))
    return alt.vconcat(*rows).resolve_scale(color="shared", shape="shared")


def interval_points(df: pd.DataFrame, category: str, estimates: Sequence[str], title: str = "",
                    x_title: str = "correlation", width: int = TEXT_WIDTH - 220):
    """Estimates with their intervals (columns ``<e>``, ``<e>_lo``, ``<e>_hi``), one row per
    value of ``category``, one colour per estimate, and a dashed zero line."""
    alt = _alt()
    long = pd.concat([pd.DataFrame({category: df[category].astype(str), "estimate": words(e),
                                    "value": df[e], "lo": df[f"{e}_lo"], "hi": df[f"{e}_hi"]})
                      for e in estimates], ignore_index=True)
    base = alt.Chart(long).encode(y=alt.Y(f"{category}:N", title=None),
                                  yOffset="estimate:N", color=alt.Color("estimate:N", title=None))
    rule = base.mark_rule().encode(x=alt.X("lo:Q", title=x_title), x2="hi:Q")
    pts = base.mark_point(filled=True, size=70).encode(
        x="value:Q", tooltip=[f"{category}:N", "estimate:N",
                              alt.Tooltip("value:Q", format="+.3f"),
                              alt.Tooltip("lo:Q", format="+.3f"), alt.Tooltip("hi:Q", format="+.3f")])
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(strokeDash=[4, 4]).encode(x="x:Q")
    return alt.layer(rule, pts, zero).properties(width=width, title=title)


def score_comparison(df: pd.DataFrame, category: str, value: str, series: str, title: str = "",
                     width: int = TEXT_WIDTH - AXIS - 10, height: int = 240):
    """Per value of ``category``, one point per (model, ``series``) and the series' mean as a
    tick: e.g. two OOD scores of the same models on every OOD set."""
    alt = _alt()
    d = df[["model", category, value, series]].copy()
    d[series] = d[series].map(words)
    base = alt.Chart(d).encode(x=alt.X(f"{category}:N", title=None), xOffset=f"{series}:N",
                               color=alt.Color(f"{series}:N", title="score"))
    pts = base.mark_point(opacity=0.5, size=30).encode(
        y=alt.Y(f"{value}:Q", title=words(value), scale=alt.Scale(zero=False)),
        tooltip=["model:N", f"{series}:N", alt.Tooltip(f"{value}:Q", format=".3f")])
    mean = base.mark_tick(thickness=3, size=16).encode(
        y=alt.Y(f"mean({value}):Q", title=words(value)))
    return alt.layer(pts, mean).properties(width=width, height=height, title=title)


#: verdict -> colour of the findings matrix (:data:`clipsafety.style.VERDICT_COLOURS`)
VERDICT_COLOURS = {v: colour for v, (colour, _text) in style.VERDICT_COLOURS.items()}


def verdict_overview(table: pd.DataFrame, chapters: Sequence[str] | None = None):
    """What the book found, at a glance: for each chapter (rows) and each kind of evidence
    (panels), how many of its claims got each verdict (stacked bars in the verdict colours,
    legend below), one verdict per claim and kind of evidence. ``table``: the per-kind
    verdicts (:func:`clipsafety.claims.by_kind` of the findings table, with ``chapter``)."""
    alt = _alt()
    from clipsafety.claims import DISPLAY, NOT_TESTABLE, PUBLISHED, REAL, WORLD

    d = (table.groupby(["chapter", "evidence_kind", "verdict"]).size().rename("claims")
         .reset_index())
    order = list(chapters or dict.fromkeys(table["chapter"]))
    # a kind whose every verdict is "not testable" (no real run) says nothing: left out
    kinds = [k for k in DISPLAY if k in set(d["evidence_kind"])
             and (d[d["evidence_kind"] == k]["verdict"] != NOT_TESTABLE).any()]
    titles = {PUBLISHED: "published results", REAL: "real models run here",
              WORLD: "synthetic world"}
    width = panel_width(len(kinds), axis=0, budget=TEXT_WIDTH - 110)
    panels = []
    for i, kind in enumerate(kinds):
        panels.append(alt.Chart(d[d["evidence_kind"] == kind]).mark_bar().encode(
            x=alt.X("claims:Q", title="claims", stack="zero", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("chapter:N", sort=order, title=None, axis=alt.Axis(labels=i == 0)),
            color=alt.Color("verdict:N", title="verdict",
                            scale=alt.Scale(domain=list(VERDICT_COLOURS),
                                            range=list(VERDICT_COLOURS.values()))),
            order=alt.Order("verdict:N"),
            tooltip=["chapter:N", alt.Tooltip("evidence_kind:N", title="evidence"), "verdict:N",
                     "claims:Q"],
        ).properties(width=width, height=alt.Step(22), title=titles[kind]))
    return alt.hconcat(*panels, spacing=8).resolve_scale(y="shared").configure_legend(
        orient="bottom", columns=3)


def scatter_panels(df: pd.DataFrame, x: str, y: str, panel: str, panels: Sequence[str] | None = None,
                   titles: dict | None = None, x_title: str = "", y_title: str = "",
                   tooltip_extra: Sequence[str] = (), columns: int = 3, width: int | None = None,
                   height: int = 170, x_pct: bool = True, y_pct: bool = False,
                   highlight: str | None = HIGHLIGHT, title: str = "", ring: str | None = None,
                   ring_label: str = ""):
    """Per-model scatter of ``y`` against ``x``, one small panel per value of ``panel`` (in
    ``panels`` order), points in group colours and markers, the ``highlight`` group outlined
    (or, with ``ring``, the rows whose boolean column ``ring`` is true, described by
    ``ring_label`` in the key).
    The legend is clickable (one selection shared by all panels); tooltips name the model,
    group and values. ``x_pct`` / ``y_pct``: the column is a fraction shown in percent."""
    alt = _alt()
    width = width or panel_width(columns)
    panels = list(panels if panels is not None else df[panel].drop_duplicates())
    d = plots.with_group_labels(_pct(df, [c for c, p in ((x, x_pct), (y, y_pct)) if p]))
    d = d.dropna(subset=[x, y])
    groups = _groups_in(df)
    sel = _legend_selection()
    tooltip = [alt.Tooltip("model:N"), alt.Tooltip("group_label:N", title="group"),
               alt.Tooltip(f"{x}:Q", format=".2f"), alt.Tooltip(f"{y}:Q", format=".3f")]
    tooltip += [alt.Tooltip(c) for c in tooltip_extra]
    charts = []
    for v in panels:
        p = d[d[panel] == v]
        if p.empty:
            continue
        pts = plots.scatter_by_group(p, x, y, tooltip, x_title=x_title or words(x),
                                     y_title=y_title or words(y), groups=groups, size=40)
        pts = pts.encode(opacity=alt.condition(sel, alt.value(0.85), alt.value(0.1)))
        if not charts:
            pts = pts.add_params(sel)
        layers = [pts]
        ringed = p[p[ring].astype(bool)] if ring is not None else (
            p[p["group"] == highlight] if highlight is not None else p.iloc[:0])
        if len(ringed):
            layers.append(alt.Chart(ringed).mark_point(
                size=110, color="black", filled=False, strokeWidth=1.2).encode(
                x=alt.X(f"{x}:Q", title=x_title or words(x)),
                y=alt.Y(f"{y}:Q", title=y_title or words(y)), tooltip=tooltip))
        charts.append(alt.layer(*layers).properties(
            title=_title((titles or {}).get(v, words(v)), width), width=width, height=height))
    if not charts:
        return alt.Chart(pd.DataFrame()).mark_text().properties(title=f"no data ({title})")
    key = ["colour and marker: model group (click the legend to pick one)"]
    if ring is not None and d[ring].astype(bool).any():
        key.append(f"black ring: {ring_label or ring}")
    elif ring is None and highlight is not None and (d["group"] == highlight).any():
        key.append(f"black ring: {group_label(highlight)}")
    return alt.concat(*charts, columns=columns).resolve_scale(
        color="shared", shape="shared").properties(title=_key(key, title))


def reliability_diagram(bins: pd.DataFrame, series: str = "model", panel: str | None = None,
                        columns: int = 3, width: int | None = None, height: int = 160,
                        title: str = ""):
    """Reliability diagrams: accuracy per confidence bin (``bins``: lo, hi, n, share, accuracy,
    confidence, one row per bin and ``series``), one panel per ``series`` (or per ``panel``
    with one line per series), the diagonal of perfect calibration dashed. Bars span their
    bin; the dot is the bin's mean confidence. Tooltips give the bin, its share of samples,
    accuracy and mean confidence. Empty bins are not drawn."""
    alt = _alt()
    width = width or panel_width(columns)
    d = bins.dropna(subset=["accuracy"]).copy()
    facet = panel or series
    diag = alt.Chart(pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]})).mark_line(
        color="grey", strokeDash=[4, 4]).encode(x="x:Q", y="y:Q")
    tooltip = [alt.Tooltip(f"{series}:N"), alt.Tooltip("lo:Q", format=".3f", title="bin from"),
               alt.Tooltip("hi:Q", format=".3f", title="bin to"),
               alt.Tooltip("share:Q", format=".1%", title="share of samples"),
               alt.Tooltip("accuracy:Q", format=".3f"),
               alt.Tooltip("confidence:Q", format=".3f", title="mean confidence")]
    sel = alt.selection_point(fields=[series], bind="legend")
    colour = alt.Color(f"{series}:N", title=words(series))
    charts = []
    for v in d[facet].drop_duplicates():
        p = d[d[facet] == v]
        bars = alt.Chart(p).mark_bar(opacity=0.35).encode(
            # short axis titles: a longer one widens each of the side-by-side panels past the
            # page (the chart's title and tooltips say what confidence and accuracy are)
            x=alt.X("lo:Q", title="confidence", scale=alt.Scale(domain=[0, 1])), x2="hi:Q",
            y=alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])),
            color=colour, tooltip=tooltip,
            opacity=alt.condition(sel, alt.value(0.45), alt.value(0.05)))
        dots = alt.Chart(p).mark_point(filled=True, size=25).encode(
            x="confidence:Q", y="accuracy:Q", color=colour, tooltip=tooltip,
            opacity=alt.condition(sel, alt.value(1.0), alt.value(0.1)))
        if not charts:
            bars = bars.add_params(sel)
        charts.append(alt.layer(diag, bars, dots).properties(title=_title(words(v), width), width=width,
                                                             height=height))
    if not charts:
        return alt.Chart(pd.DataFrame()).mark_text().properties(title="no reliability bins")
    return alt.concat(*charts, columns=columns).properties(
        title=title or "accuracy (fraction correct) against confidence (top-1 softmax probability), per bin")


def image_grid(images: dict, size: int = 64, columns: int | None = None):
    """Example images as a grid of images (``{name: uint8 [K, H, W, 3]}``): one row per name,
    the name above it, each image a PNG scaled to ``size`` px (pixelated, not smoothed). A page
    holds them as small PNGs, not as a chart of one mark per pixel."""
    import base64
    import html
    import io

    from IPython.display import HTML
    from PIL import Image

    rows = []
    for name, arr in images.items():
        cells = []
        for im in list(arr)[:columns]:
            buf = io.BytesIO()
            Image.fromarray(np.asarray(im, dtype=np.uint8)).save(buf, format="PNG", optimize=True)
            src = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
            cells.append(f'<img src="{src}" width="{size}" height="{size}" alt="{html.escape(name)}"'
                         ' style="image-rendering:pixelated;margin:1px">')
        rows.append(f'<div class="clipsafety-image-row"><div><code>{html.escape(name)}</code></div>'
                    f'<div style="display:flex;flex-wrap:wrap">{"".join(cells)}</div></div>')
    return HTML('<div class="clipsafety-image-grid">' + "".join(rows) + "</div>")


def grouped_bars(df: pd.DataFrame, value: str, category: str, series: str,
                 sort: Sequence[str] | None = None, x_title: str = ""):
    """Horizontal bars of ``value`` per ``category``, one bar per ``series`` side by side."""
    alt = _alt()
    df = df.assign(**{series: df[series].map(words)})
    return alt.Chart(df).mark_bar().encode(
        x=alt.X(f"{value}:Q", title=x_title or words(value)),
        y=alt.Y(f"{category}:N", sort=list(sort) if sort is not None else "ascending",
                title=words(category)),
        color=alt.Color(f"{series}:N", title=words(series)), yOffset=f"{series}:N",
        tooltip=[series, category, alt.Tooltip(f"{value}:Q", format=".3f")])


# ----------------------------------------------------------------------------- accuracy on the line
def _on_the_line(points: pd.DataFrame, panel: str, x: str, y: str, value: str,
                 extra: Sequence[str]) -> pd.DataFrame:
    """The rows a chart of accuracy on the line carries (only what it shows: the page embeds
    each chart's data): model, ``extra``, group (and its label), ``panel`` and ``x``, ``y``,
    ``value`` in percent points (``<column>_pct``, two decimals)."""
    d = plots.with_group_labels(points)
    for col in (x, y, value):
        d[f"{col}_pct"] = (100 * d[col]).round(2)
    return d[["model", *extra, "group", "group_label", panel, f"{x}_pct", f"{y}_pct",
              f"{value}_pct"]]


def accuracy_on_the_line(points: pd.DataFrame, bands: pd.DataFrame, panels: Sequence[str],
                         names: dict, panel: str = "shift", x: str = "imagenet",
                         y: str = "shift_acc", value: str = "eff_rob",
                         extra: Sequence[str] = ("source",), x_label: str = "ImageNet",
                         y_label: str = "shift", columns: int = 2):
    """Accuracy under shift against ID accuracy, one panel per value of ``panel`` (in
    ``panels`` order, two to a row within the text width): every model in its group's colour
    and marker over the baseline's trend and its band.

    ``points``: one row per (model, panel value) with ``x``, ``y`` and the effective robustness
    ``value`` as fractions (the columns of :func:`clipsafety.published.landscape_long` plus
    ``eff_rob``); ``bands``: ``panel, x, lo, mid, hi`` as fractions. Both are shown in percent.
    ``names``: panel value -> its name in the y axis title. Tooltips name the model, ``extra``
    columns, group, both accuracies and the effective robustness."""
    alt = _alt()
    b = bands.copy()
    b[["x", "lo", "mid", "hi"]] = 100 * b[["x", "lo", "mid", "hi"]]
    return trend_panels(
        _on_the_line(points, panel, x, y, value, extra), b, panel, panels, f"{x}_pct",
        f"{y}_pct",
        tooltip=["model", *extra, "group_label",
                 alt.Tooltip(f"{x}_pct:Q", title=f"{x_label} %", format=".2f"),
                 alt.Tooltip(f"{y}_pct:Q", title=f"{y_label} %", format=".2f"),
                 alt.Tooltip(f"{value}_pct:Q", title="effective robustness", format="+.2f")],
        x_title=f"{x_label} top-1 (%)", y_title=lambda v: f"{names[v]} top-1 (%)",
        columns=columns)


def effective_robustness_ticks(points: pd.DataFrame, medians: pd.DataFrame,
                               panels: Sequence[str], names: dict, panel: str = "shift",
                               x: str = "imagenet", y: str = "shift_acc", value: str = "eff_rob",
                               median: str = "median", extra: Sequence[str] = ("source",)):
    """Effective robustness of every model, one row of ticks per group and the group's median
    as a thick mark, one panel per value of ``panel`` titled by ``names`` (:func:`ticks_with_median`).

    ``points`` as for :func:`accuracy_on_the_line`; ``medians``: one row per (panel value,
    group) with the ``median`` effective robustness and ``n`` (fractions; shown in points)."""
    alt = _alt()
    return ticks_with_median(
        _on_the_line(points, panel, x, y, value, extra),
        medians.assign(**{f"{median}_pct": lambda d: 100 * d[median]}), panel, panels,
        f"{value}_pct", f"{median}_pct",
        tooltip=["model", *extra, alt.Tooltip(f"{value}_pct:Q", format="+.2f",
                                               title="effective robustness")],
        titles=names, x_title="effective robustness (accuracy points)")


def _slug(column: str) -> str:
    return "_".join(str(column).lower().split())


def effective_robustness_by_category(table: pd.DataFrame, category: str, size: str,
                                     x: str = "imagenet", y: str = "ER mean",
                                     x_label: str = "ImageNet", category_title: str = "",
                                     size_title: str = "", size_label: str = "", shapes=None):
    """Mean effective robustness against ID accuracy, one point per model, coloured and shaped
    by ``category`` and sized by the count ``size`` (:func:`scatter_by_category`: missing
    values shown, never dropped).

    ``table``: one row per model with ``x`` and ``y`` as fractions (e.g.
    :func:`clipsafety.published.effective_robustness_table`), shown in percent points
    (columns ``<x>_pct``, ``<y>_pct``); ``size`` shown in billions (column ``<size>_b``).
    Models without ``y`` are left out. ``size_label``: the size's name in the tooltip."""
    alt = _alt()
    xp, yp, sb = f"{_slug(x)}_pct", f"{_slug(y)}_pct", f"{size}_b"
    d = table.copy()
    d[xp] = 100 * d[x]
    d[yp] = 100 * d[y]
    d[sb] = d[size] / 1e9
    return scatter_by_category(
        d.dropna(subset=[yp]), xp, yp, category, sb, x_title=f"{x_label} top-1 (%)",
        y_title="mean effective robustness (points)", category_title=category_title,
        size_title=size_title, shapes=shapes,
        tooltip=["model", category, alt.Tooltip(f"{sb}:Q", title=size_label or size_title),
                 alt.Tooltip(f"{xp}:Q", format=".2f", title=f"{x_label} %"),
                 alt.Tooltip(f"{yp}:Q", format="+.2f", title="mean ER")])


# ----------------------------------------------------------------------------- series of models
def faceted_scatter(long: pd.DataFrame, x: str, y: str, series: str, row: str, column: str,
                    extra: Sequence[str] = (), x_title: str = "", y_title: str = "",
                    title: str = "", width: int | None = None, height: int = 170):
    """``y`` against ``x`` in a grid of panels (one row per value of ``row``, one column per
    value of ``column``; two columns fit the text width), one point per row of ``long``
    coloured and shaped by ``series``; a legend click on a series highlights it. Tooltips:
    the series, the quantitative ``extra`` columns, the panel and both values."""
    alt = _alt()
    sel = alt.selection_point(fields=[series], bind="legend")
    return alt.Chart(long).mark_point(filled=True, size=70).encode(
        x=alt.X(f"{x}:Q", title=x_title or words(x), scale=alt.Scale(zero=False)),
        y=alt.Y(f"{y}:Q", title=y_title or words(y)),
        color=alt.Color(f"{series}:N", legend=alt.Legend(orient="bottom")),
        shape=alt.Shape(f"{series}:N", legend=alt.Legend(orient="bottom")),
        opacity=alt.condition(sel, alt.value(0.9), alt.value(0.12)),
        tooltip=[f"{series}:N", *(f"{c}:Q" for c in extra), f"{row}:N", f"{column}:N",
                 alt.Tooltip(f"{x}:Q", format=".3f"), alt.Tooltip(f"{y}:Q", format=".4f")]
    ).add_params(sel).properties(width=width or panel_width(2), height=height).facet(
        row=alt.Row(f"{row}:N", title=None), column=alt.Column(f"{column}:N", title=None)
    ).properties(title=title)


def faceted_lines(long: pd.DataFrame, x: str, series: str, facet: str = "measure",
                  value: str = "value", x_title: str = "", log_x: bool = False,
                  x_format: str | None = None, value_format: str = ".3f", faded: float = 0.15,
                  title: str = "", columns: int = 2, width: int | None = None,
                  height: int = 170):
    """``value`` against ``x``, one line (with points) per ``series``, one panel per value of
    ``facet`` (``columns`` to a row, each with its own y scale); a legend click on a series
    highlights it, the others fade to ``faded``. ``log_x``: a log x axis; ``x_format``: the
    x value's format in the tooltip."""
    alt = _alt()
    xenc = alt.X(f"{x}:Q", title=x_title or words(x), scale=alt.Scale(type="log")) if log_x else alt.X(
        f"{x}:Q", title=x_title or words(x))
    sel = alt.selection_point(fields=[series], bind="legend")
    return alt.Chart(long).mark_line(point=True).encode(
        x=xenc, y=alt.Y(f"{value}:Q", title=None, scale=alt.Scale(zero=False)),
        color=alt.Color(f"{series}:N", legend=alt.Legend(orient="bottom")),
        opacity=alt.condition(sel, alt.value(0.9), alt.value(faded)),
        tooltip=[f"{series}:N", alt.Tooltip(f"{x}:Q", format=x_format) if x_format else f"{x}:Q",
                 f"{facet}:N", alt.Tooltip(f"{value}:Q", format=value_format)]
    ).add_params(sel).properties(width=width or panel_width(columns), height=height).facet(
        facet=alt.Facet(f"{facet}:N", title=None), columns=columns).resolve_scale(
        y="independent").properties(title=title)


def interval_facets(table: pd.DataFrame, category: str, value: str, facet: str,
                    x_title: str = "", title: str = "", columns: int = 2,
                    width: int | None = None, height: int = 120):
    """Per value of ``facet`` (one panel each, ``columns`` to a row, own x scales): one row per
    ``category`` with its ``value`` (point) and interval ``lo``..``hi`` (rule), and a dashed
    zero line. The default width leaves each panel room for its category labels."""
    alt = _alt()
    base = alt.Chart(table).encode(y=alt.Y(f"{category}:N", title=None),
                                   color=alt.Color(f"{category}:N", legend=None))
    rule = base.mark_rule().encode(x=alt.X("lo:Q", title=x_title or words(value)), x2="hi:Q")
    pts = base.mark_point(filled=True, size=60).encode(
        x=f"{value}:Q", tooltip=[f"{facet}:N", f"{category}:N",
                                 alt.Tooltip(f"{value}:Q", format="+.4f"),
                                 alt.Tooltip("lo:Q", format="+.4f"),
                                 alt.Tooltip("hi:Q", format="+.4f")])
    zero = alt.Chart(table).mark_rule(strokeDash=[4, 4], color="black").encode(x=alt.datum(0))
    return alt.layer(rule, pts, zero).properties(
        width=width or panel_width(columns) - 60, height=height).facet(
        facet=alt.Facet(f"{facet}:N", title=None), columns=columns).resolve_scale(
        x="independent").properties(title=title)


def path_panels(table: pd.DataFrame, x: str, y: str, series: str, panel: str,
                path: Sequence[str], order: str, series_order: Sequence[str] | None = None,
                label: str = "label", values: Sequence[str] = (), x_title: str = "",
                y_title: str = "", title: str = "", x_pct: bool = True, columns: int = 2,
                width: int | None = None, height: int = 200):
    """``y`` against ``x`` (a fraction shown in percent with ``x_pct``), one panel per value of
    ``panel``: the rows whose ``series`` is in ``path`` joined by a dashed line in ``order``
    (e.g. an interpolation path between two end points), every row a point coloured and shaped
    by ``series`` (legend in ``series_order``; a click highlights a series). Tooltips: the
    panel, ``label``, the ``values`` columns and ``y``."""
    alt = _alt()
    d = table.assign(**{"x": table[x] * 100 if x_pct else table[x], "y": table[y]})
    sel = alt.selection_point(fields=[series], bind="legend")
    sort = list(series_order) if series_order is not None else alt.Undefined
    base = alt.Chart(d).encode(
        x=alt.X("x:Q", title=x_title or words(x), scale=alt.Scale(zero=False)),
        y=alt.Y("y:Q", title=y_title or words(y), scale=alt.Scale(zero=False)),
        tooltip=[f"{panel}:N", f"{label}:N", *(alt.Tooltip(f"{c}:Q", format=".3f")
                                               for c in values),
                 alt.Tooltip("y:Q", format=".3f")])
    line = base.transform_filter(alt.FieldOneOfPredicate(series, list(path))).mark_line(
        color="#999", strokeDash=[3, 2]).encode(order=f"{order}:Q")
    pts = base.mark_point(filled=True, size=90).encode(
        color=alt.Color(f"{series}:N", sort=sort, legend=alt.Legend(orient="bottom")),
        shape=alt.Shape(f"{series}:N", sort=sort, legend=alt.Legend(orient="bottom")),
        opacity=alt.condition(sel, alt.value(0.95), alt.value(0.15))).add_params(sel)
    return alt.layer(line, pts, data=d).properties(
        width=width or panel_width(columns), height=height).facet(
        facet=alt.Facet(f"{panel}:N", title=None), columns=columns).properties(title=title)


def mean_points(long: pd.DataFrame, category: str, value: str, series: str, y_title: str = "",
                title: str = "", width: int = panel_width(1) - 120, height: int = 220):
    """The mean of ``value`` per ``category`` (in the table's order along x), one point per
    ``series`` side by side in its colour; tooltips give the mean."""
    alt = _alt()
    return alt.Chart(long).mark_point(filled=True, size=60).encode(
        x=alt.X(f"{category}:N", title=None, sort=None, axis=alt.Axis(labelAngle=-40)),
        y=alt.Y(f"mean({value}):Q", scale=alt.Scale(zero=False), title=y_title or words(value)),
        color=f"{series}:N", xOffset=f"{series}:N",
        tooltip=[f"{category}:N", f"{series}:N",
                 alt.Tooltip(f"mean({value}):Q", format=".3f")]).properties(
        width=width, height=height, title=title)


def stage_lines(long: pd.DataFrame, x: str, y: str, pair: str, colour: str, stage: str,
                extra: Sequence[str] = (), x_title: str = "", y_title: str = "",
                title: str = "", width: int = panel_width(1) - 160, height: int = 260):
    """One line per ``pair`` through its stages (e.g. a zero-shot model and its fine-tune), in
    (``x``, ``y``), coloured by ``colour``, the marker naming the ``stage``. Tooltips: colour,
    pair, the nominal ``extra`` columns, stage and both values."""
    alt = _alt()
    return alt.Chart(long).mark_line(point=True).encode(
        x=alt.X(f"{x}:Q", title=x_title or words(x), scale=alt.Scale(zero=False)),
        y=alt.Y(f"{y}:Q", title=y_title or words(y), scale=alt.Scale(zero=False)),
        detail=f"{pair}:N", color=f"{colour}:N", shape=f"{stage}:N",
        tooltip=[f"{colour}:N", f"{pair}:N", *(f"{c}:N" for c in extra), f"{stage}:N",
                 alt.Tooltip(f"{x}:Q", format=".1f"), alt.Tooltip(f"{y}:Q", format=".3f")]
    ).properties(width=width, height=height, title=title)


def versus_accuracy_with_line(df: pd.DataFrame, x: str, y: str, reference: Sequence[str],
                              x_title: str = "ID accuracy (%)", y_title: str = "",
                              title: str = "", line_label: str = "",
                              tooltip_extra: Sequence[str] = ()):
    """:func:`versus_accuracy` with the least-squares line of ``y`` on ``x`` fitted on the
    models of the ``reference`` groups (dashed): the line a comparison at equal accuracy
    measures the other models against (:func:`clipsafety.summaries.accuracy_controlled_difference`)."""
    import json

    alt = _alt()
    pts = versus_accuracy(df, x, y, x_title=x_title, y_title=y_title or words(y), title=title,
                          tooltip_extra=tooltip_extra)
    line = alt.Chart(pts.data).transform_filter(  # the points' own data (embedded once)
        alt.FieldOneOfPredicate(field="group", oneOf=list(reference))).transform_regression(
        x, y).transform_calculate(line=json.dumps(line_label or "reference line")).mark_line(
        strokeDash=[6, 4], color="#444").encode(x=alt.X(f"{x}:Q", title=x_title),
                                                 y=alt.Y(f"{y}:Q", title=y_title or words(y)),
                                                 tooltip=["line:N"])
    return alt.layer(pts, line)
