"""A sortable, filterable HTML table for a chapter page, with its CSV download.

Light and offline: the table's data is a compact columnar payload (numbers as scaled integers
joined in one string per column, repeated strings as levels and codes), rendered by a few
lines of vanilla JavaScript; nothing is loaded from outside the site. Under the book runner
(``$CLIPSAFETY_CHART_DATA`` set, as for the charts of :mod:`clipsafety.plots`) the payload is
written to ``<key>.js`` and the table as ``<key>.csv`` in the charts' data folder, both named
by the payload's content and reached from the page as ``../_static/data/``; a notebook run by
hand keeps the payload in the page and builds the CSV in the browser.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from pathlib import Path

import pandas as pd

from clipsafety.plots import CHART_DATA_ENV, CHART_DATA_URL

#: the unit separator joining the strings of a column that is not stored as levels
SEP = "\u001f"


def encode(df: pd.DataFrame, decimals: int = 1) -> dict:
    """``{"n": rows, "cols": [...]}``: per column ``{"name", "num": true, "scale", "data"}``
    (numbers times ``10**decimals`` rounded to integers, comma-joined, empty for NaN) or
    ``{"name", "levels", "codes"}`` (codes comma-joined) for strings."""
    scale = 10 ** decimals
    cols = []
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            data = ",".join("" if not math.isfinite(v) else str(int(round(v * scale)))
                            for v in s.astype(float))
            cols.append({"name": str(c), "num": True, "scale": scale, "data": data})
        else:
            vals = ["" if (v is None or (isinstance(v, float) and math.isnan(v))) else str(v)
                    for v in s]
            levels = list(dict.fromkeys(vals))
            if len(levels) <= len(vals) / 2:
                idx = {v: i for i, v in enumerate(levels)}
                cols.append({"name": str(c), "levels": levels,
                             "codes": ",".join(str(idx[v]) for v in vals)})
            else:
                cols.append({"name": str(c), "strings": SEP.join(vals)})
    return {"n": int(len(df)), "cols": cols}


def decode(payload: dict) -> pd.DataFrame:
    """The table :func:`encode` wrote (numbers rounded to its decimals), for tests and readers
    of the data file."""
    out = {}
    for c in payload["cols"]:
        if c.get("num"):
            out[c["name"]] = [float(v) / c["scale"] if v != "" else float("nan")
                              for v in c["data"].split(",")] if payload["n"] else []
        elif "levels" in c:
            out[c["name"]] = [c["levels"][int(i)] for i in c["codes"].split(",")] if payload["n"] else []
        else:
            out[c["name"]] = c["strings"].split(SEP) if payload["n"] else []
    return pd.DataFrame(out)


_JS = r"""
(function(){
var P=%(payload)s,id='%(id)s',csvName='%(csv)s',csvUrl=%(csvurl)s,show=%(show)d;
function dec(t){var cols=[];t.cols.forEach(function(c){var v;
 if(c.num){v=t.n?c.data.split(',').map(function(x){return x===''?null:(+x)/c.scale;}):[];}
 else if(c.levels){v=t.n?c.codes.split(',').map(function(x){return c.levels[+x];}):[];}
 else{v=t.n?c.strings.split('\u001f'):[];}
 cols.push({name:c.name,num:!!c.num,v:v});});return cols;}
function run(){var t=typeof P==='string'?(window.clipsafetyData||{})[P]:P;
 if(!t){setTimeout(run,50);return;}
 var cols=dec(t),n=t.n,root=document.getElementById(id),order=[],i;
 for(i=0;i<n;i++)order.push(i);
 var q=root.querySelector('input'),sel=root.querySelector('select'),body=root.querySelector('tbody'),
  info=root.querySelector('.cs-info'),more=root.querySelector('.cs-more'),ths=root.querySelectorAll('th'),
  kind=cols.map(function(c){return c.name;}).indexOf(root.getAttribute('data-kind')),limit=show,key=-1,dir=1;
 if(kind>=0){var seen={};cols[kind].v.forEach(function(x){if(!seen[x]){seen[x]=1;var o=document.createElement('option');o.textContent=x;sel.appendChild(o);}});}
 function fmt(c,x){if(x===null||x===undefined||x==='')return '';return c.num?x.toFixed(%(decimals)d):x;}
 function rows(){var s=q.value.toLowerCase(),k=sel.value;return order.filter(function(r){
  if(k&&cols[kind].v[r]!==k)return false;if(!s)return true;
  for(var j=0;j<cols.length;j++){if(!cols[j].num&&String(cols[j].v[r]).toLowerCase().indexOf(s)>=0)return true;}return false;});}
 function draw(){var rs=rows(),h=[],m=Math.min(rs.length,limit);
  for(var a=0;a<m;a++){var r=rs[a];h.push('<tr>'+cols.map(function(c){var x=fmt(c,c.v[r]);
   return '<td'+(c.num?' class="cs-num"':'')+'>'+String(x).replace(/&/g,'&amp;').replace(/</g,'&lt;')+'</td>';}).join('')+'</tr>');}
  body.innerHTML=h.join('');info.textContent=rs.length+' of '+n+' models'+(m<rs.length?', first '+m+' shown':'');
  more.style.display=m<rs.length?'':'none';}
 ths.forEach(function(th,j){th.addEventListener('click',function(){dir=key===j?-dir:(cols[j].num?-1:1);key=j;
  var v=cols[j].v;order.sort(function(a,b){var x=v[a],y=v[b];if(x===null||x==='')return 1;if(y===null||y==='')return -1;
   return (x<y?-1:x>y?1:0)*dir;});
  ths.forEach(function(o){o.removeAttribute('aria-sort');});th.setAttribute('aria-sort',dir>0?'ascending':'descending');draw();});});
 q.addEventListener('input',function(){limit=show;draw();});sel.addEventListener('change',function(){limit=show;draw();});
 more.addEventListener('click',function(){limit=n;draw();});
 var dl=root.querySelector('.cs-csv');
 if(!csvUrl){dl.addEventListener('click',function(e){e.preventDefault();
  var esc=function(x){x=x===null?'':String(x);return /[",\n]/.test(x)?'"'+x.replace(/"/g,'""')+'"':x;};
  var lines=[Array.prototype.map.call(ths,function(th){return esc(th.textContent);}).join(',')];
  for(var r=0;r<n;r++)lines.push(cols.map(function(c){return esc(c.v[r]);}).join(','));
  var b=new Blob([lines.join('\n')+'\n'],{type:'text/csv'}),a=document.createElement('a');
  a.href=URL.createObjectURL(b);a.download=csvName;a.click();});}
 draw();}
run();})();
"""

_CSS = ("<style>.cs-table{max-height:70vh;overflow:auto;font-size:0.8em}"
        ".cs-table table{border-collapse:collapse}.cs-table th{position:sticky;top:0;"
        "background:#f4f4f4;cursor:pointer;vertical-align:bottom;min-width:4em}"
        ".cs-table td,.cs-table th{padding:2px 6px;border-bottom:1px solid #ddd}"
        ".cs-num{text-align:right;font-variant-numeric:tabular-nums}"
        "th[aria-sort=ascending]::after{content:' \\25B2'}"
        "th[aria-sort=descending]::after{content:' \\25BC'}</style>")


def _publish(payload_text: str, csv_text: str) -> str | None:
    """Write the payload (``<key>.js``) and the CSV (``<key>.csv``) into the charts' data
    folder when the book runner names one; returns the key, or None."""
    folder = os.environ.get(CHART_DATA_ENV)
    if not folder:
        return None
    key = hashlib.sha256((payload_text + csv_text).encode()).hexdigest()[:20]
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    for name, text in ((f"{key}.js", f'(window.clipsafetyData=window.clipsafetyData||{{}})'
                        f'["{key}"]={payload_text};\n'), (f"{key}.csv", csv_text)):
        path = d / name
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
    return key


def sortable_table(df: pd.DataFrame, headers: dict | None = None, titles: dict | None = None,
                   csv_name: str = "table.csv", kind_column: str | None = None,
                   decimals: int = 1, show: int = 100, csv_decimals: int = 4) -> dict:
    """``{"text/html": ...}`` of ``df`` as a sortable table: click a header to sort (numbers
    descending first), a text box filters the string columns, ``kind_column`` (a column of
    ``df``) gets a drop-down filter, ``show`` rows are drawn until "show all" is pressed.
    ``headers``: column -> header text; ``titles``: column -> tooltip (units, conventions).
    Numbers are shown with ``decimals`` and written to the CSV with ``csv_decimals``."""
    if kind_column is not None and kind_column not in df:
        raise KeyError(f"kind_column {kind_column!r} is not a column of the table; expected one "
                       f"of {list(df.columns)}.")
    headers, titles = headers or {}, titles or {}
    shown = df.rename(columns={c: headers.get(c, c) for c in df.columns})
    payload = json.dumps(encode(shown, decimals), separators=(",", ":"), ensure_ascii=False)
    csv_text = shown.round(csv_decimals).to_csv(index=False)
    key = _publish(payload, csv_text)
    div = f"cs-{uuid.uuid4().hex[:10]}"
    heads = "".join(f'<th title="{titles.get(c, "")}">{headers.get(c, c)}</th>'
                    for c in df.columns)
    link = (f'<a class="cs-csv" href="{CHART_DATA_URL}{key}.csv" download="{csv_name}">'
            f"Download the table (CSV)</a>" if key else
            '<a class="cs-csv" href="#">Download the table (CSV)</a>')
    js = _JS % {"payload": json.dumps(key) if key else payload, "id": div, "csv": csv_name,
                "csvurl": json.dumps(f"{CHART_DATA_URL}{key}.csv" if key else ""),
                "show": show, "decimals": decimals}
    kind = headers.get(kind_column, kind_column) if kind_column else ""
    html = (f'{_CSS}<div class="cs-table" id="{div}" data-kind="{kind}">'
            f'<p><input type="search" placeholder="filter by name or source" '
            f'aria-label="filter rows"> <select aria-label="kind of model"><option value="">'
            f'all kinds</option></select> <span class="cs-info"></span> · {link}</p>'
            f"<table><thead><tr>{heads}</tr></thead><tbody></tbody></table>"
            f'<p><button type="button" class="cs-more">show all rows</button></p></div>'
            + (f'<script src="{CHART_DATA_URL}{key}.js"></script>' if key else "")
            + f"<script>{js}</script>")
    return {"text/html": html}


class SortableTable:
    """A displayable wrapper: ``display(SortableTable(df, ...))`` in a notebook."""

    def __init__(self, df: pd.DataFrame, **kwargs):
        self._bundle = sortable_table(df, **kwargs)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self._bundle


__all__ = ["SortableTable", "decode", "encode", "sortable_table"]
