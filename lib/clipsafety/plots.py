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


#: where the book runner has charts write their data (one file per table, shared by every
#: chart and page that shows it); unset (a notebook run by hand), data stays in the page
CHART_DATA_ENV = "CLIPSAFETY_CHART_DATA"
#: the data files as the chapter pages (book/chapters/*.html) reach them
CHART_DATA_URL = "../_static/data/"
#: tables smaller than this stay in the page (a file costs a request)
INLINE_BYTES = 8_000


def _fields(spec) -> set[str]:
    """Every name a spec could use as a data column: its strings, and the names its
    expressions read (``datum.x``, ``datum['x']``), outside its datasets."""
    import re

    out: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k != "datasets":
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str):
            out.add(node)
            out.update(m.group(1) or m.group(2)
                       for m in re.finditer(r"datum\.(\w+)|datum\[['\"]([^'\"]+)['\"]\]", node))

    walk(spec)
    return out


def slim_spec(spec: dict) -> dict:
    """``spec`` whose datasets keep only the columns the spec refers to (a chart page embeds
    its tables: a column no encoding, tooltip, transform or selection names is dead weight)."""
    datasets = spec.get("datasets")
    if not datasets:
        return spec
    used = _fields(spec)
    slim = {name: [{k: v for k, v in row.items() if k in used} if isinstance(row, dict) else row
                   for row in rows] for name, rows in datasets.items()}
    return {**spec, "datasets": slim}


def _short(v):
    """A float with 6 significant digits (a chart shows 2 to 4; JSON would carry 17)."""
    return float(f"{v:.6g}") if isinstance(v, float) else v


def columnar(rows: list[dict]) -> dict:
    """Rows as columns, a column of repeated strings as its levels and one code per row:
    ``{"n": rows, "cols": {name: [values] | {"levels": [...], "codes": [...]}}}``. The
    renderer's script turns it back into rows (:data:`DECODE`)."""
    names = list(dict.fromkeys(k for r in rows for k in r))
    cols = {}
    for c in names:
        values = [_short(r.get(c)) for r in rows]
        strings = [v for v in values if isinstance(v, str)]
        if strings and len(strings) == len(values) and len(set(strings)) <= len(values) / 2:
            levels = list(dict.fromkeys(values))
            index = {v: i for i, v in enumerate(levels)}
            cols[c] = {"levels": levels, "codes": [index[v] for v in values]}
        else:
            cols[c] = values
    return {"n": len(rows), "cols": cols}


#: JavaScript that turns :func:`columnar` back into rows
DECODE = ("function dec(t){var r=[],c=t.cols;for(var i=0;i<t.n;i++){var o={};for(var k in c)"
          "{var v=c[k];o[k]=v.levels?v.levels[v.codes[i]]:v[i];}r.push(o);}return r;}")


def _external(spec: dict) -> tuple[dict, list[str]]:
    """Move the spec's large datasets into data files under ``$CLIPSAFETY_CHART_DATA``, named
    by their content; returns the spec (those datasets emptied) and the files' names."""
    import hashlib
    import os
    from pathlib import Path

    folder = os.environ.get(CHART_DATA_ENV)
    if not folder or not spec.get("datasets"):
        return spec, []
    datasets, files = dict(spec["datasets"]), []
    for name, rows in spec["datasets"].items():
        if len(json.dumps(rows, separators=(",", ":"))) < INLINE_BYTES:
            continue
        text = json.dumps(columnar(rows), separators=(",", ":"))
        key = hashlib.sha256(text.encode()).hexdigest()[:20]
        path = Path(folder) / f"{key}.js"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(f'(window.clipsafetyData=window.clipsafetyData||{{}})["{key}"]={text};\n')
            os.replace(tmp, path)
        datasets[name] = key
        files.append(key)
    return {**spec, "datasets": datasets}, files


#: chart settings every chart shares: legends below the plot in columns (a legend on the
#: right widens a chart past the text column), long labels cut with an ellipsis
CONFIG = {
    "legend": {"orient": "bottom", "symbolDirection": "vertical", "gradientDirection": "horizontal",
               "gradientLength": 240, "columns": 3, "labelLimit": 190,
               "titleLimit": 400, "symbolLimit": 40},
    "axis": {"labelLimit": 160, "titleLimit": 300},
    "title": {"limit": 600},
}


def _with_config(spec: dict) -> dict:
    config = dict(spec.get("config", {}))
    for key, value in CONFIG.items():
        config[key] = {**value, **config.get(key, {})}
    return {**spec, "config": config}


def _render(spec: dict, **_):
    div = f"vis-{uuid.uuid4().hex[:12]}"
    spec, files = _external(slim_spec(_with_config(spec)))
    payload = json.dumps(spec, separators=(",", ":"))
    loads = "".join(f'<script src="{CHART_DATA_URL}{k}.js"></script>' for k in files)
    # a dataset named by a key is filled from its data file before the chart is embedded
    fill = (DECODE + "var d=window.clipsafetyData||{};for(var n in s.datasets){"
            "if(typeof s.datasets[n]==='string'){s.datasets[n]=dec(d[s.datasets[n]]);}}"
            ) if files else ""
    html = (
        f'<div class="clipsafety-chart" id="{div}"></div>{loads}'
        "<script>(function(){var s=" + payload + ";" + fill +
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


def words(name) -> str:
    """A name of the data (a factor, a set, a column) as a reader reads it: ``partial_view``
    -> ``partial view``. The fallback of a chart's title where its caller gives none; a
    caller gives words with units."""
    return str(name).replace("_", " ")


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
            x=alt.X(f"{x}:Q", title=x_title or words(x), scale=alt.Scale(zero=False)),
            y=alt.Y(f"{y}:Q", title=y_title or words(y), scale=alt.Scale(zero=False)),
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


def not_drawn_note(what: str, why: str):
    """A Markdown note that stands in place of a chart with nothing to draw (a rerun on too
    few models of a group, a statistic that is undefined): ``what`` is not drawn, ``why``
    says why in words; never an empty chart or a legend of a zero-width range."""
    from IPython.display import Markdown

    text = " ".join(f"{what} is not drawn: {why}".split()).replace("`", "'")
    return Markdown(f"```{{note}}\n{text[0].upper() + text[1:]}\n```")


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
