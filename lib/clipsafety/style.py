"""Model groups, their colours and markers: defined once, used by every chapter.

Group ids are the values of the ``group`` column of every catalog
(``data/catalog/models.csv``, ``data/zoo/catalog.csv``) and of every tidy table.
"""

from __future__ import annotations

#: group id -> (label shown in charts, colour, default marker)
GROUPS: dict[str, tuple[str, str, str]] = {
    "clip-zeroshot": ("zero-shot CLIP", "#d62728", "circle"),
    "clip-ft-direct": ("CLIP fine-tuned (1k)", "#ff7f0e", "triangle-up"),
    "clip-ft-2stage": ("CLIP fine-tuned (12k→1k)", "#8c564b", "triangle-down"),
    "standard": ("standard ImageNet", "#1f77b4", "square"),
    "more-data": ("more training data", "#2ca02c", "diamond"),
    "other-robust": ("other robustness interventions", "#9467bd", "cross"),
    "human": ("human observers", "#7f7f7f", "stroke"),
}

GROUP_ORDER = list(GROUPS)

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


def group_label(group: str) -> str:
    """Chart label of a group id (unknown ids are shown as they are)."""
    return GROUPS.get(group, (group, "#bcbd22", "circle"))[0]


def group_colour_scale(groups=None):
    """An ``altair.Scale`` mapping group labels to the shared colours, in the shared order."""
    import altair as alt

    ids = [g for g in GROUP_ORDER if groups is None or g in set(groups)]
    return alt.Scale(domain=[GROUPS[g][0] for g in ids], range=[GROUPS[g][1] for g in ids])


def group_shape_scale(groups=None):
    """An ``altair.Scale`` mapping group labels to the shared markers."""
    import altair as alt

    ids = [g for g in GROUP_ORDER if groups is None or g in set(groups)]
    return alt.Scale(domain=[GROUPS[g][0] for g in ids], range=[GROUPS[g][2] for g in ids])


def source_shape_scale(sources):
    """An ``altair.Scale`` mapping training sources to markers (unknown sources: circle)."""
    import altair as alt

    sources = list(dict.fromkeys(sources))
    return alt.Scale(domain=sources, range=[SOURCE_MARKERS.get(s, "circle") for s in sources])
