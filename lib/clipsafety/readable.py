"""Tables a person reads, and the check that a built page shows only such tables.

:func:`table` turns a DataFrame into the HTML table a chapter shows: headers in words with
their units (from a mapping, never the column names), numbers in the units of the text
(percent, percentage points) at a sensible precision, no index column, a missing value shown
as a dash whose reason is given (in the cell's title and a note under the table), and a long
table folded behind ``<details>`` with the full table as a CSV download. The CSV lands beside
the charts' data files (``$CLIPSAFETY_CHART_DATA``, served as ``_static/data/``); without that
folder (a notebook run by hand) the CSV travels in the link itself (a ``data:`` URL).

:func:`audit_html` reads a built page and names what a reader should not meet there: the
literal NaN in a table cell, an unnamed index column (0, 1, ..., n-1 first), ``snake_case``
headers, a table of more than :data:`FOLD_ROWS` rows shown open, and ``snake_case`` chart titles, axis titles, legends and panel labels (read from the
Vega-Lite specs in the page and their data files). :func:`audit_site` does it for every page
of a built site.

Both are pure: :func:`table` writes nothing but its CSV, and :func:`audit_html` reads only
what it is given (and the data files next to the page, via ``data_file``).
"""

from __future__ import annotations

import base64
import hashlib
import html as html_lib
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd

#: rows shown in the open; a longer table is folded behind <details>
FOLD_ROWS = 15
#: the dash a missing value is shown as
DASH = "–"
#: the units a column can be shown in: how a header names the unit and how a value is written
UNITS = ("percent", "points", "number", "count", "text", "ratio")
#: a name written in snake_case (two or more lower-case words joined by underscores)
SNAKE = re.compile(r"(?<![\w./:-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w./:-])")
#: classes of tables that are a page's content, read row by row (the findings matrix): long
#: by design, never folded
WHOLE = ("clipsafety-findings",)
#: what pandas writes for a missing value
NAN_WORDS = {"nan", "NaN", "<NA>", "NaT", "None", "null"}

# the charts' data folder (clipsafety.plots: CHART_DATA_ENV, CHART_DATA_URL); read here by
# name so that this module imports nothing of the plotting stack
CHART_DATA_ENV = "CLIPSAFETY_CHART_DATA"
CHART_DATA_URL = "../_static/data/"


@dataclass(frozen=True)
class Column:
    """How one column is shown: ``header`` in words; ``unit``: ``percent`` (a fraction shown
    ×100, the header gets "(%)"), ``points`` (a difference of fractions shown ×100 as signed
    percentage points, the header gets "(points)"), ``number`` (3 significant digits),
    ``ratio`` (2 decimals), ``count`` (an integer with thousands separators), ``text`` (as it
    is); ``digits``: decimals for percent/points/ratio, significant digits for number;
    ``missing``: why a cell of this column can be empty (required when one is)."""

    header: str
    unit: str = "text"
    digits: int | None = None
    missing: str | None = None

    def title(self) -> str:
        suffix = {"percent": " (%)", "points": " (points)"}.get(self.unit, "")
        return self.header if self.header.endswith(suffix.strip()) or not suffix else \
            self.header + suffix


def _column(name: str, spec) -> Column:
    if isinstance(spec, Column):
        col = spec
    elif isinstance(spec, str):
        col = Column(spec)
    elif isinstance(spec, tuple | list) and 1 <= len(spec) <= 4:
        col = Column(*spec)
    else:
        raise TypeError(f"readable.table: the header of column {name!r} must be a string, a "
                        f"(header, unit) pair or a readable.Column; got {spec!r}")
    if col.unit not in UNITS:
        raise ValueError(f"readable.table: column {name!r} has the unit {col.unit!r}; expected "
                         f"one of {', '.join(UNITS)}")
    if not col.header.strip() or SNAKE.search(col.header):
        raise ValueError(f"readable.table: the header of column {name!r} is {col.header!r}; "
                         "write it in words a reader knows (e.g. 'ID accuracy'), not a "
                         "variable name")
    return col


def format_value(value, col: Column) -> str:
    """``value`` written in ``col``'s unit (a missing value: ``""``, the caller shows a dash)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA \
            or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if col.unit == "text" or not isinstance(value, int | float) and not hasattr(value, "dtype"):
        return str(value)
    x = float(value)
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if col.unit == "percent":
        return f"{100 * x:.{1 if col.digits is None else col.digits}f}"
    if col.unit == "points":
        s = f"{100 * x:+.{1 if col.digits is None else col.digits}f}"
        return s.replace("-", "−") if s.strip("+-0.") else s.lstrip("+-")
    if col.unit == "ratio":
        return f"{x:.{2 if col.digits is None else col.digits}f}".replace("-", "−")
    if col.unit == "count":
        return f"{round(x):,}"
    if 1000 <= abs(x) < 1e15:
        return f"{round(x):,}".replace("-", "−")
    return f"{x:.{3 if col.digits is None else col.digits}g}".replace("-", "−")


def _is_missing(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


class Table:
    """A readable table: ``html`` (shown by Jupyter), ``frame`` (the cells as shown, strings,
    with readable headers), ``csv`` (the full table, headers in words, values in the shown
    units at full precision) and ``csv_href`` (where the page links it)."""

    def __init__(self, html: str, frame: pd.DataFrame, csv: str, csv_href: str | None):
        self.html, self.frame, self.csv, self.csv_href = html, frame, csv, csv_href

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.frame.to_string(index=False)


def _csv_link(csv: str, name: str) -> str:
    """Where the page links the CSV: a file in the charts' data folder, named by its content,
    or (without that folder) a data: URL."""
    folder = os.environ.get(CHART_DATA_ENV)
    if not folder:
        return "data:text/csv;base64," + base64.b64encode(csv.encode()).decode()
    key = hashlib.sha256(csv.encode()).hexdigest()[:20]
    path = Path(folder) / f"{key}.csv"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(csv)
        os.replace(tmp, path)
    return f"{CHART_DATA_URL}{key}.csv"


def folded(html: str, n_rows: int, summary: str, limit: int = FOLD_ROWS) -> str:
    """``html`` as it is, or behind a fold (``<details>`` opened by ``summary``, HTML) when it
    has more than ``limit`` rows: longer than a reader scans."""
    if n_rows <= limit:
        return html
    return f'<details class="clipsafety-fold"><summary>{summary}</summary>{html}</details>'


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "table"


def table(df: pd.DataFrame, columns: Mapping[str, str | tuple | Column], caption: str = "",
          fold: int = FOLD_ROWS, note: str = "", download: str | None = None) -> Table:
    """``df`` as a table a person reads (see the module's docstring).

    ``columns`` maps each column to show, in order, to its header in words, a ``(header,
    unit[, digits[, missing]])`` tuple or a :class:`Column`; other columns are left out. A
    named index is a column like the others (``reset_index``); a default 0..n-1 index is
    dropped. ``caption``: what the table shows, in a sentence. ``fold``: tables longer than
    this are folded behind ``<details>``, with the CSV download beside the fold (every table
    longer than ``fold`` rows gets one; ``download`` names the CSV file a reader saves).
    A cell that is missing (NaN, None) must have a reason: ``Column(missing=...)``, else a
    ``ValueError`` names the column.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"readable.table expects a pandas DataFrame; got {type(df).__name__}")
    if not isinstance(df.index, pd.RangeIndex) or df.index.name is not None:
        df = df.reset_index()
    else:
        df = df.reset_index(drop=True)
    if not columns:
        raise ValueError("readable.table: `columns` is empty; map each column to show to its "
                         "header in words, e.g. {'id_acc': ('ID accuracy', 'percent')}")
    absent = [c for c in columns if c not in df.columns]
    if absent:
        raise KeyError(f"readable.table: no column {', '.join(map(repr, absent))} in the "
                       f"table (its columns: {', '.join(map(str, df.columns))}); map only "
                       "columns it has")
    cols = {name: _column(name, spec) for name, spec in columns.items()}
    notes: list[str] = []
    shown = {}
    for name, col in cols.items():
        values = df[name]
        empty = values.map(_is_missing)
        if empty.any():
            if not col.missing:
                raise ValueError(f"readable.table: column {name!r} ({col.header}) has "
                                 f"{int(empty.sum())} missing value(s) of {len(df)}; say why "
                                 f"they are missing: Column({col.header!r}, ..., "
                                 "missing='not reported by the paper'), or drop those rows")
            if col.missing not in notes:
                notes.append(col.missing)
        shown[col.title()] = [(DASH, notes.index(col.missing) + 1) if e else
                              (format_value(v, col), 0) for v, e in zip(values, empty)]
    headers = list(shown)
    if len(set(headers)) < len(headers):
        raise ValueError(f"readable.table: two columns share a header: {headers}")
    frame = pd.DataFrame({h: [t for t, _ in cells] for h, cells in shown.items()})
    csv = pd.DataFrame({col.title(): [_csv_value(v, col) for v in df[name]]
                        for name, col in cols.items()}).to_csv(index=False)
    marks = "abcdefghijklmnopqrstuvwxyz"

    def td(text: str, mark: int, col: Column) -> str:
        align = "" if col.unit == "text" else ' style="text-align:right"'
        if mark:
            reason = html_lib.escape(notes[mark - 1], quote=True)
            return (f'<td{align}><span title="{reason}">{DASH}</span>'
                    f"<sup>{marks[(mark - 1) % 26]}</sup></td>")
        return f"<td{align}>{html_lib.escape(text)}</td>"

    head = "".join(f"<th>{html_lib.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(td(*shown[h][i], col) for h, col in zip(headers, cols.values()))
        + "</tr>" for i in range(len(df)))
    cap = f"<caption>{html_lib.escape(caption)}</caption>" if caption else ""
    html = (f'<table class="clipsafety-table">{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")
    foot = [f"<sup>{marks[i % 26]}</sup> {DASH}: {html_lib.escape(r)}" for i, r in enumerate(notes)]
    if note:
        foot.append(html_lib.escape(note))
    href = None
    if len(df) > fold:
        href = _csv_link(csv, download or _slug(caption))
        name = html_lib.escape(f"{_slug(download or caption)}.csv", quote=True)
        what = html_lib.escape(caption.rstrip(".")) if caption else "The table"
        html = folded(html, len(df), f"{what}: {len(df)} rows (show the table)", fold)
        foot.append(f'<a href="{href}" download="{name}">Download the full table (CSV, '
                    f"{len(df)} rows)</a>")
    if foot:
        html += '<p class="clipsafety-table-notes">' + "<br>".join(foot) + "</p>"
    return Table(f'<div class="clipsafety-readable">{html}</div>', frame, csv, href)


def _csv_value(v, col: Column):
    if _is_missing(v):
        return ""
    if isinstance(v, bool | np.bool_) or col.unit in ("text",) or not isinstance(v, int | float) \
            and not hasattr(v, "dtype"):
        return v
    if col.unit in ("percent", "points"):
        return 100 * float(v)
    return v


# --- the check of built pages -------------------------------------------------------------


@dataclass
class Problem:
    """One thing a reader should not meet: where (``where``: "table 3 (first header ...)" or
    "chart 2") and what (``what``)."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


class _Tables(HTMLParser):
    """The tables of a page: for each, its rows of (is-header, cell text)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[tuple[bool, str]]]] = []
        self.folded: list[bool] = []  # each table: inside a <details>
        self._stack: list[list] = []
        self._open: list[bool] = []
        self._details = 0
        self._divs: list[bool] = []  # each open <div>: a collapsed dropdown (a fold) or not
        self._cell: list[str] | None = None
        self._header = False
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "details":
            self._details += 1
        elif tag == "div":
            # a MyST dropdown admonition is collapsed until opened: a fold like <details>
            fold = "dropdown" in (dict(attrs).get("class") or "").split()
            self._divs.append(fold)
            self._details += fold
        elif tag == "table":
            self._stack.append([])
            # a table the page is made of (the findings matrix) counts as folded: it is read
            # row by row, not dumped
            classes = dict(attrs).get("class") or ""
            self._open.append(self._details > 0 or any(c in classes.split() for c in WHOLE))
        elif tag == "tr" and self._stack:
            self._stack[-1].append([])
        elif tag in ("td", "th") and self._stack:
            if not self._stack[-1]:
                self._stack[-1].append([])
            self._cell, self._header = [], tag == "th"

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in ("td", "th") and self._cell is not None and self._stack:
            self._stack[-1][-1].append((self._header, " ".join("".join(self._cell).split())))
            self._cell = None
        elif tag == "details":
            self._details = max(0, self._details - 1)
        elif tag == "div" and self._divs:
            if self._divs.pop():
                self._details = max(0, self._details - 1)
        elif tag == "table" and self._stack:
            self.tables.append([r for r in self._stack.pop() if r])
            self.folded.append(self._open.pop())

    def handle_data(self, data):
        if self._cell is not None and not self._skip:
            self._cell.append(data)


def _table_problems(rows: list[list[tuple[bool, str]]], folded: bool = False) -> list[str]:
    out = []
    head = [t for is_h, t in rows[0]] if rows and all(h for h, _ in rows[0]) else []
    body = rows[1:] if head else rows
    body = [r for r in body if not all(h for h, _ in r)] or body
    # pandas' to_html: a header row then a row naming the index, and <th> index cells
    nans = sorted({t for r in body for _, t in r if t in NAN_WORDS})
    if nans:
        n = sum(t in NAN_WORDS for r in body for _, t in r)
        out.append(f"{n} cell(s) read {' / '.join(nans)} (show a dash and say why)")
    first = [r[0][1] for r in body if r]
    if len(first) >= 2 and all(re.fullmatch(r"\d+", t) for t in first) and \
            [int(t) for t in first] == list(range(int(first[0]), int(first[0]) + len(first))) \
            and int(first[0]) in (0, 1) and (not head or not head[0].strip()
                                             or head[0].strip().lower() == "index"):
        out.append(f"an index column ({first[0]}…{first[-1]}) comes first")
    elif head and not head[0].strip() and len(head) > 1:
        out.append("the first column has no header (an index?)")
    snake = sorted({m for h in (head or []) for m in SNAKE.findall(h)})
    if snake:
        out.append(f"variable names in headers: {', '.join(snake[:8])}")
    if len(body) > FOLD_ROWS and not folded:
        out.append(f"{len(body)} rows shown open (fold a table of more than {FOLD_ROWS} rows, "
                   "with its CSV)")
    return out


def _table_label(rows) -> str:
    head = [t for _, t in rows[0]] if rows else []
    lead = ", ".join(h for h in head[:3] if h)[:60]
    return f"{len(rows) - 1 if rows else 0} rows" + (f", headers {lead!r}" if lead else "")


#: the Vega-Lite channels whose title a reader sees (axes, legends, panel headers)
TITLED = ("x", "y", "x2", "y2", "color", "fill", "stroke", "shape", "size", "opacity",
          "strokeDash", "row", "column", "facet", "theta", "radius")
#: the channels whose values a reader sees as words (legend entries, panel headers)
VALUED = ("color", "fill", "stroke", "shape", "strokeDash", "row", "column", "facet")

_SPEC = re.compile(r'<div class="clipsafety-chart" id="[^"]+"></div>((?:<script src="[^"]+">'
                   r"</script>)*)<script>\(function\(\)\{var s=(\{.*?\});(?:function dec|function go)",
                   re.S)


def _data_rows(value, data_file: Callable[[str], str | None]) -> list[dict]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):  # a data file's key (clipsafety.plots._external)
        text = data_file(value)
        if not text:
            return []
        payload = json.loads(text.split('"]=', 1)[1].rstrip().rstrip(";"))
        cols = payload.get("cols", {})
        return [{k: (v["levels"][v["codes"][i]] if isinstance(v, dict) else v[i])
                 for k, v in cols.items()} for i in range(payload.get("n", 0))]
    return []


def _walk_specs(spec, inherited_data=None):
    """Every (unit or composite) view of a spec with its data (a dataset's name)."""
    if not isinstance(spec, dict):
        return
    data = spec.get("data", {}).get("name") if isinstance(spec.get("data"), dict) else None
    data = data or inherited_data
    yield spec, data
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for sub in spec.get(key, []) or []:
            yield from _walk_specs(sub, data)
    if isinstance(spec.get("spec"), dict):
        yield from _walk_specs(spec["spec"], data)


def _title_text(t) -> list[str]:
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return [x for x in t if isinstance(x, str)]
    if isinstance(t, dict):
        return _title_text(t.get("text"))
    return []


def chart_problems(spec: dict, data_file: Callable[[str], str | None]) -> list[str]:
    """The variable names a reader of the chart ``spec`` sees: in titles, in axis and legend
    titles (a channel without a title shows its field's name), and in legend entries and
    panel headers (the values of a colour, shape or facet field)."""
    found: dict[str, set[str]] = {}

    def add(kind, texts):
        for t in texts:
            for m in SNAKE.findall(str(t)):
                found.setdefault(kind, set()).add(m)

    datasets = spec.get("datasets", {}) or {}
    rows_of: dict[str, list[dict]] = {}
    for view, data in _walk_specs(spec):
        add("title", _title_text(view.get("title")))
        fold = {}
        for tr in view.get("transform", []) or []:
            if "fold" in tr:
                key, val = (tr.get("as") or ["key", "value"])[:2]
                fold[key] = list(tr["fold"])
        enc = dict(view.get("encoding", {}) or {})
        if isinstance(view.get("facet"), dict):
            facet = view["facet"]
            enc.update({k: facet[k] for k in ("row", "column") if k in facet} if
                       ("row" in facet or "column" in facet) else {"facet": facet})
        for channel, e in enc.items():
            if channel not in TITLED or not isinstance(e, dict):
                continue
            field = e.get("field")
            if isinstance(field, dict):
                field = field.get("repeat")
            titled = "title" in e or (isinstance(e.get("axis"), dict) and "title" in e["axis"]) \
                or (isinstance(e.get("legend"), dict) and "title" in e["legend"]) \
                or (isinstance(e.get("header"), dict) and "title" in e["header"]) \
                or e.get("legend", 1) is None or e.get("axis", 1) is None
            kind = "legend" if channel in VALUED[:5] else ("panel" if channel in VALUED
                                                           else "axis")
            if "title" in e:
                add(f"{kind} title", _title_text(e["title"]))
            for holder in ("axis", "legend", "header"):
                if isinstance(e.get(holder), dict):
                    add(f"{kind} title", _title_text(e[holder].get("title")))
            if field and not titled and e.get("aggregate") is None:
                add(f"{kind} title (the field's name)", [field])
            if channel in VALUED and field and e.get("legend", 1) is not None:
                if field in fold:
                    add(f"{kind} labels", fold[field])
                elif data in datasets:
                    if data not in rows_of:
                        rows_of[data] = _data_rows(datasets[data], data_file)
                    add(f"{kind} labels", {r.get(field) for r in rows_of[data]
                                           if isinstance(r.get(field), str)})
    return [f"variable names in {k}: {', '.join(sorted(v)[:8])}" for k, v in sorted(found.items())]


def audit_html(html: str, data_file: Callable[[str], str | None] = lambda key: None
               ) -> list[Problem]:
    """What a reader should not meet on the page ``html``: NaN cells, index columns and
    ``snake_case`` headers in its tables, ``snake_case`` titles, legends and panel labels in
    its charts. ``data_file(key)``: the text of the chart data file ``key`` (for charts whose
    data are not in the page), ``None`` when it is not there."""
    parser = _Tables()
    parser.feed(html)
    problems = []
    for i, (rows, folded) in enumerate(zip(parser.tables, parser.folded), 1):
        for what in _table_problems(rows, folded):
            problems.append(Problem(f"table {i} ({_table_label(rows)})", what))
    for i, m in enumerate(_SPEC.finditer(html), 1):
        try:
            spec = json.loads(m.group(2))
        except json.JSONDecodeError:
            problems.append(Problem(f"chart {i}", "its Vega-Lite spec does not parse"))
            continue
        title = (_title_text(spec.get("title")) or [""])[0][:60]
        for what in chart_problems(spec, data_file):
            problems.append(Problem(f"chart {i}" + (f" ({title!r})" if title else ""), what))
    return problems


def audit_site(site: Path) -> dict[str, list[Problem]]:
    """:func:`audit_html` of every page of the built site ``site`` (``book/_build/html``):
    page (relative path) -> its problems, pages without any left out."""
    site = Path(site)
    data = site / "_static" / "data"

    def data_file(key: str) -> str | None:
        f = data / f"{key}.js"
        return f.read_text() if f.is_file() else None

    out = {}
    for page in sorted(site.rglob("*.html")):
        rel = page.relative_to(site)
        if {"_static", "_sources"} & set(rel.parts) or page.name in ("genindex.html",
                                                                     "search.html"):
            continue
        found = audit_html(page.read_text(errors="replace"), data_file)
        if found:
            out[str(rel)] = found
    return out


__all__ = ["DASH", "FOLD_ROWS", "UNITS", "Column", "Problem", "Table", "audit_html",
           "audit_site", "chart_problems", "format_value", "table"]
