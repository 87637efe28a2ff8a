"""Colours and markers: defined once, used by every chart.

Group ids and labels live in :mod:`clipsafety.groups`; this module only says how each group
and each training source is drawn.
"""

from __future__ import annotations

from clipsafety.groups import GROUP_ORDER, group_label

#: group id -> (colour, default marker)
GROUP_STYLE: dict[str, tuple[str, str]] = {
    "clip-zeroshot": ("#d62728", "circle"),
    "clip-ft-direct": ("#ff7f0e", "triangle-up"),
    "clip-ft-2stage": ("#8c564b", "triangle-down"),
    "standard": ("#1f77b4", "square"),
    "more-data": ("#2ca02c", "diamond"),
    "other-robust": ("#9467bd", "cross"),
    "human": ("#7f7f7f", "stroke"),
}
#: colour of a group without a style of its own
OTHER_COLOUR = "#bcbd22"


def group_colour(group: str) -> str:
    """Colour of a group id."""
    return GROUP_STYLE.get(group, (OTHER_COLOUR, "circle"))[0]


#: training source -> marker, for zero-shot CLIP (marker = source, size = samples seen)
SOURCE_MARKERS: dict[str, str] = {
    "WIT": "circle",
    "LAION-400M": "square",
    "LAION-2B": "diamond",
    "LAION-5B": "diamond",
    "DataComp": "triangle-up",
    "CommonPool": "triangle-down",
    "DFN": "cross",
    "MetaCLIP": "triangle-right",
    "WebLI": "triangle-left",
    "YFCC": "wedge",
    "CC12M": "arrow",
    # synthetic-world sources
    "wit-like": "circle",
    "laion-like": "diamond",
    "labelled": "square",
}


def group_colour_scale(groups=None):
    """An ``altair.Scale`` mapping group labels to the shared colours, in the shared order."""
    import altair as alt

    ids = [g for g in GROUP_ORDER if groups is None or g in set(groups)]
    return alt.Scale(domain=[group_label(g) for g in ids], range=[GROUP_STYLE[g][0] for g in ids])


def group_shape_scale(groups=None):
    """An ``altair.Scale`` mapping group labels to the shared markers."""
    import altair as alt

    ids = [g for g in GROUP_ORDER if groups is None or g in set(groups)]
    return alt.Scale(domain=[group_label(g) for g in ids], range=[GROUP_STYLE[g][1] for g in ids])


#: verdict -> (colour, text colour on it): the findings matrix's badges and the overview chart
VERDICT_COLOURS: dict[str, tuple[str, str]] = {
    "reproduced": ("#2ca02c", "white"),
    "contradicted": ("#d62728", "white"),
    "inconclusive": ("#f2c14e", "#333"),
    "not testable": ("#c7c7c7", "#333"),
    "built in": ("#6b7b8c", "white"),
    "premise not met": ("#9e7bb5", "white"),
}
