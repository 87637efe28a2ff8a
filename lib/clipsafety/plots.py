"""Charts: altair, interactive, offline, in the shared group colours (:mod:`clipsafety.style`).

Call :func:`setup` once at the top of a chapter. It registers the ``clipsafety`` altair
renderer, which emits a ``<div>`` plus a small script that calls ``vegaEmbed`` from the
site's own ``_static/vega-bundle.js`` (written once by vl-convert-python at build time), so a
page loads nothing from outside the site. Charts take tidy tables, nothing else.
"""

from __future__ import annotations

import json
import uuid

from clipsafety.groups import group_label
from clipsafety.style import group_colour, group_colour_scale, group_shape_scale

VL_VERSION = "6.4"  # the Vega-Lite version of the bundle; must match altair's schema major


def _render(spec: dict, **_):
    div = f"vis-{uuid.uuid4().hex[:12]}"
    payload = json.dumps(spec, separators=(",", ":"))
    html = (
        f'<div class="clipsafety-chart" id="{div}"></div>'
        "<script>(function(){var s=" + payload + ";"
        "function go(){if(window.vegaEmbed){window.vegaEmbed('#" + div + "',s,"
        "{actions:{export:true,source:false,compiled:false,editor:false}})"
        ".catch(function(e){document.getElementById('" + div + "').innerText='chart error: '+e;});}"
        "else{setTimeout(go,50);}}go();})();</script>"
    )
    return {"text/html": html}


def setup() -> None:
    """Register and enable the offline renderer; no row limit (tables here are small)."""
    import altair as alt

    if "clipsafety" not in alt.renderers.names():
        alt.renderers.register("clipsafety", _render)
    alt.renderers.enable("clipsafety")
    alt.data_transformers.disable_max_rows()


def group_encodings(groups=None):
    """Colour and shape encodings keyed on the ``group_label`` column (shared scales)."""
    import altair as alt

    return {
        "color": alt.Color("group_label:N", title="model group", scale=group_colour_scale(groups)),
        "shape": alt.Shape("group_label:N", title="model group", scale=group_shape_scale(groups)),
    }


def with_group_labels(df, column: str = "group"):
    """A copy of ``df`` with a ``group_label`` column (chart label of each group id)."""
    out = df.copy()
    out["group_label"] = out[column].map(group_label)
    return out


def scatter_by_group(df, x: str, y: str, tooltip: list[str], x_title=None, y_title=None,
                     groups=None, size: int = 60):
    """Points coloured and shaped by model group; tooltips name the model and the values."""
    import altair as alt

    df = with_group_labels(df) if "group_label" not in df else df
    enc = group_encodings(groups if groups is not None else df["group"].unique())
    return (
        alt.Chart(df)
        .mark_point(filled=True, size=size, opacity=0.8)
        .encode(
            x=alt.X(f"{x}:Q", title=x_title or x, scale=alt.Scale(zero=False)),
            y=alt.Y(f"{y}:Q", title=y_title or y, scale=alt.Scale(zero=False)),
            tooltip=tooltip,
            **enc,
        )
    )


def trend_band(grid_df, x: str = "x", lo: str = "lo", mid: str = "mid", hi: str = "hi",
               colour: str = group_colour("standard")):
    """A fitted trend line with its bootstrap band, from a table with x, lo, mid, hi columns."""
    import altair as alt

    base = alt.Chart(grid_df)
    band = base.mark_area(opacity=0.2, color=colour).encode(x=f"{x}:Q", y=f"{lo}:Q", y2=f"{hi}:Q")
    line = base.mark_line(color=colour).encode(x=f"{x}:Q", y=f"{mid}:Q")
    return band + line


def unavailable_note(exc: Exception, what: str = "This panel"):
    """A Markdown note that stands in place of a panel whose published data is unavailable.

    A MyST ``{note}`` admonition; the book runner (:func:`clipsafety.book._hide_code`) marks
    the cell's Markdown as MyST, so Jupyter Book renders it as a note box, not a code block."""
    from IPython.display import Markdown

    text = " ".join(str(exc).split()).replace("`", "'")
    return Markdown(
        f"```{{note}}\n{what} needs published upstream data that is not available here: "
        f"{text}\n```"
    )
