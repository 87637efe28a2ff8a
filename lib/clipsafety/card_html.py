"""The safety card as one standalone, offline HTML page (:func:`render`) or as a fragment for
the book's chapter (:func:`fragment`): plain HTML, inline CSS and inline SVG, no script and no
request to anything outside the file.

Charts: per placed number a strip of the landscape it is placed on (one row per kind of model:
a histogram of the published or zoo values, the card's value as a red line), and the
reliability diagram of the ID evaluation half before and after temperature scaling (and,
folded, of every shift with the ID temperature applied unchanged).
"""

from __future__ import annotations

import html
import math

__all__ = ["fragment", "ordinal", "render", "reliability_svg", "strip_svg"]

CSS = """
.cs-card{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;max-width:1100px;margin:0 auto}
.cs-card h1{font-size:1.6em;margin:.4em 0}.cs-card h2{font-size:1.25em;margin:1.4em 0 .4em;border-bottom:1px solid #ddd}
.cs-card table{border-collapse:collapse;width:100%;margin:.4em 0;font-size:.92em;table-layout:auto}
.cs-card th,.cs-card td{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
.cs-card th{background:#f6f6f6;overflow-wrap:normal}.cs-card .num{text-align:right;white-space:nowrap}
.cs-card .summary{background:#f4f8fb;border-left:4px solid #2a6f97;padding:.5em 1em}
.cs-card .missing{background:#fff6e5;border-left:4px solid #d08c00;padding:.4em 1em;margin:.4em 0}
.cs-card code{font-size:.9em;background:#f3f3f3;padding:0 3px;overflow-wrap:anywhere}
.cs-card .no{color:#a33}.cs-card .yes{color:#2a7a2a}.cs-card svg{max-width:100%;height:auto}
.cs-card .strips{display:flex;flex-wrap:wrap;gap:10px}.cs-card .small{font-size:.85em;color:#555}
"""

KIND_COLOURS = {"zero-shot CLIPs": "#c0392b", "fine-tuned CLIPs": "#e67e22", "ImageNet models": "#2c7fb8"}


def ordinal(p: float) -> str:
    """``91`` -> ``"91st"``, rounding to a whole percentile first."""
    n = int(round(p))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _e(x) -> str:
    return html.escape(str(x))


def _num(x, digits: int = 1) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def strip_svg(value: float, placement: dict, title: str, width: int = 340) -> str:
    """A small SVG: per kind a histogram of the landscape's values, the card's value as a red
    vertical line; empty when there is nothing to draw."""
    hist = placement.get("hist")
    if not hist or value is None or not math.isfinite(value):
        return ""
    edges, counts = hist["edges"], hist["counts"]
    lo, hi = edges[0], edges[-1]
    kinds = [k for k in counts if sum(counts[k])]
    row, left, right = 22, 110, 10
    h = 18 + row * max(len(kinds), 1) + 16
    w_plot = width - left - right

    def x(v):
        return left + (v - lo) / ((hi - lo) or 1) * w_plot

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" '
             f'viewBox="0 0 {width} {h}" role="img"><title>{_e(title)}</title>',
             f'<text x="0" y="12" font-size="11">{_e(title)}</text>']
    bw = w_plot / (len(edges) - 1)
    for r, k in enumerate(kinds):
        y0 = 18 + r * row
        c = counts[k]
        m = max(c) or 1
        parts.append(f'<text x="0" y="{y0 + 14}" font-size="10" fill="#444">{_e(k)}</text>')
        for i, n in enumerate(c):
            if n:
                bh = (row - 4) * n / m
                parts.append(f'<rect x="{left + i * bw:.1f}" y="{y0 + row - 2 - bh:.1f}" '
                             f'width="{max(bw - 0.6, 0.5):.1f}" height="{bh:.1f}" '
                             f'fill="{KIND_COLOURS.get(k, "#888")}" fill-opacity="0.55"/>')
    xv = x(value)
    parts.append(f'<line x1="{xv:.1f}" x2="{xv:.1f}" y1="16" y2="{h - 14}" stroke="#d00" stroke-width="2"/>')
    parts.append(f'<text x="{left}" y="{h - 2}" font-size="10" fill="#555">{lo:.1f}</text>')
    parts.append(f'<text x="{width - right}" y="{h - 2}" font-size="10" fill="#555" '
                 f'text-anchor="end">{hi:.1f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def reliability_svg(bins_before: list, bins_after: list, title: str, size: int = 220) -> str:
    """Two reliability diagrams side by side (before, after temperature scaling): per
    non-empty bin a bar of its accuracy over its confidence range, the diagonal as reference."""
    pad, gap = 30, 30
    w = 2 * size + gap + 2 * pad
    h = size + 2 * pad
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
             f'role="img"><title>{_e(title)}</title>']
    for j, (name, bins) in enumerate((("before scaling", bins_before), ("after ID temperature", bins_after))):
        ox = pad + j * (size + gap)
        oy = pad
        parts.append(f'<rect x="{ox}" y="{oy}" width="{size}" height="{size}" fill="none" stroke="#999"/>')
        parts.append(f'<line x1="{ox}" y1="{oy + size}" x2="{ox + size}" y2="{oy}" stroke="#999" '
                     'stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{ox}" y="{oy - 8}" font-size="11">{_e(name)}</text>')
        parts.append(f'<text x="{ox + size / 2}" y="{oy + size + 20}" font-size="10" '
                     'text-anchor="middle">confidence</text>')
        for b in bins:
            if not b["n"] or b["accuracy"] is None:
                continue
            bx = ox + b["lo"] * size
            bw = (b["hi"] - b["lo"]) * size
            bh = b["accuracy"] * size
            parts.append(f'<rect x="{bx:.1f}" y="{oy + size - bh:.1f}" width="{bw - 1:.1f}" '
                         f'height="{bh:.1f}" fill="#2c7fb8" fill-opacity="0.7"/>')
    parts.append(f'<text x="8" y="{pad + size / 2}" font-size="10" transform="rotate(-90 8 {pad + size / 2})" '
                 'text-anchor="middle">accuracy</text>')
    parts.append("</svg>")
    return "".join(parts)


def _placement_cell(v: dict) -> str:
    kinds = v.get("placement", {}).get("kinds", {})
    if not kinds:
        return '<span class="small">not placed</span>'
    return "<br>".join(f"{_e(k)}: {ordinal(p['percentile'])} percentile (n={p['n']})"
                       for k, p in kinds.items() if p["n"] and math.isfinite(p["percentile"]))


def _nearest_cell(v: dict) -> str:
    near = v.get("placement", {}).get("nearest", [])
    return "<br>".join(f"<code>{_e(n['checkpoint'])}</code> {_num(n['value'])}" for n in near) or "–"


def _like(v: dict) -> str:
    if v.get("like_for_like") is None:
        return ""
    ok = bool(v["like_for_like"])
    return (f'<span class="{"yes" if ok else "no"}">{"like for like" if ok else "not like for like"}</span>'
            f'<br><span class="small">{_e(v.get("comparison", ""))}</span>')


def _folded(table: str, n_rows: int, what: str) -> str:
    """``table`` behind the book's own fold when it has more rows than a reader scans."""
    from clipsafety.readable import folded

    return folded(table, n_rows, f"{_e(what)}: {n_rows} rows (show the table)")


def _value_rows(values: list, placed_only: bool = False) -> str:
    rows = []
    for v in values:
        extra = ""
        for key in ("head", "score", "when", "error_ratio"):
            if key in v:
                extra += f" {key.replace('_', ' ')}: {_e(_num(v[key], 2) if key == 'error_ratio' else v[key])};"
        rows.append(f"<tr><td>{_e(v['label'])}<br><span class='small'>{extra.strip(';')}</span></td>"
                    f"<td><code>{_e(v['dataset'])}</code></td>"
                    f"<td class='num'>{_num(v['value'])} {_e(v['unit'])}</td>"
                    f"<td class='num'>[{_num(v['lo'])}, {_num(v['hi'])}]</td>"
                    f"<td class='num'>{v['n']:,}</td><td>{_placement_cell(v)}</td>"
                    f"<td>{_nearest_cell(v)}</td><td>{_like(v)}</td></tr>")
    return _folded("<table><thead><tr><th>Measure</th><th>Data</th><th>Value</th><th>95% interval</th>"
                   "<th>n</th><th>Percentile among</th><th>Nearest models</th><th>Comparison</th></tr></thead>"
                   "<tbody>" + "".join(rows) + "</tbody></table>", len(rows), "Every measured value")


def _missing_block(missing: list) -> str:
    if not missing:
        return ""
    items = "".join(f"<li><code>{_e(m['dataset'])}</code>: {_e(m['reason'])}<br>"
                    f"layout: <code>{_e(m['layout'])}</code><br>get it: <code>{_e(m['get'])}</code></li>"
                    for m in missing)
    return f'<div class="missing"><b>Missing data</b> (supply it and run the card again):<ul>{items}</ul></div>'


def fragment(card: dict, standalone: bool = True) -> str:
    """The card's body (summary, properties, charts, cost and provenance) as HTML inside one
    ``div.cs-card``, with its style; :func:`render` wraps it (``standalone``: its own title and
    ``h2`` sections); the chapter displays it with ``standalone=False`` (``h3`` sections under
    the chapter's own headings)."""
    out = [f"<style>{CSS}</style><div class='cs-card'>",
           f"<h1>Safety card: <code>{_e(card['model'])}</code></h1>" if standalone else "",
           f"<p>{_e(card['group_label'])} ({'text head: zero-shot' if card['zero_shot'] else 'classifier head'}); "
           f"natural OOD score {_e(card['natural_score'].upper())}; placed on "
           f"{_e(card['landscape']['what'])}.</p>",
           "<div class='summary'><b>Summary</b><ol>"
           + "".join(f"<li>{_e(s)}</li>" for s in card["summary"]) + "</ol></div>"]
    for p in card["properties"]:
        out.append(f"<{{H}}>{_e(p['title'])} <span class='small'>({_e(p['status'])})</span></{{H}}>")
        out.append(_missing_block(p["missing"]))
        vals = p["values"]
        if p["id"] == "ood":
            natural = [v for v in vals if v.get("natural")]
            alt = [v for v in vals if not v.get("natural") and v["metric"].endswith("_mean")]
            vals = natural + alt
        if vals:
            out.append(_value_rows(vals))
            strips = [strip_svg(v["value"], v.get("placement", {}),
                                f"{v['label']} ({v['dataset']}): {_num(v['value'])} {v['unit']}")
                      for v in vals if v.get("placement", {}).get("kinds")]
            strips = [s for s in strips if s]
            if strips:
                out.append("<div class='strips'>" + "".join(strips) + "</div>")
        if p["id"] == "calibration" and card.get("calibration", {}).get("reliability"):
            rel = card["calibration"]["reliability"]
            first = next(iter(rel))
            out.append(f"<p>Temperature fitted on {card['calibration']['fit_rows']:,} ID images: "
                       f"T = {card['calibration']['T']:.3f}; reliability on the other "
                       f"{card['calibration']['eval_rows']:,} (<code>{_e(first)}</code>):</p>")
            out.append(reliability_svg(rel[first]["before"], rel[first]["after"],
                                       f"Reliability diagram, {first}"))
            shifted = [d for d in rel if d != first]
            if shifted:  # every shift, the ID temperature applied unchanged, behind a fold
                out.append(f"<details><summary>Reliability under shift ({len(shifted)} sets, the "
                           "ID temperature applied unchanged)</summary>" + "".join(
                               reliability_svg(rel[d]["before"], rel[d]["after"],
                                               f"Reliability diagram, {d}") for d in shifted)
                           + "</details>")
    pub = card.get("published_row")
    if pub:
        cells = "".join(f"<tr><td>{_e(k)}</td><td>{_e(_num(v, 2) if isinstance(v, float) else v)}</td></tr>"
                        for k, v in pub.items())
        out.append("<{H}>The same weights in the published files</{H}><p class='small'>This checkpoint is "
                   "in the published table; it is left out of the landscape the card places it on. "
                   f"Its published numbers:</p><table><tbody>{cells}</tbody></table>")
    if card.get("cost"):
        rows = "".join(f"<tr><td>{_e(c['property'])}</td><td class='num'>{c['images']:,} "
                       f"({c['new_images']:,} new)</td>"
                       f"<td class='num'>{_num(c['gflops_per_image'], 2)}</td>"
                       f"<td class='num'>{_num(c['seconds'] / 60, 1)}</td><td>{_e(c['note'])}</td></tr>"
                       for c in card["cost"])
        out.append("<{H}>Cost on a GPU (estimate)</{H}><p class='small'>Images of the full sets times the "
                   "forward cost of one image, at 150 effective TFLOP/s, floored by decoding 2,500 JPEGs/s; "
                   "counted work, not a measurement.</p><table><thead><tr><th>Property</th><th>Images</th>"
                   f"<th>GFLOPs / image</th><th>Minutes</th><th></th></tr></thead><tbody>{rows}</tbody></table>")
    if card.get("missing"):
        out.append("<{H}>Everything missing</{H}>" + _missing_block(card["missing"]))
    prov = card["provenance"]
    rows = "".join(f"<tr><td><code>{_e(d)}</code></td><td class='num'>{r['n']:,}</td>"
                   f"<td><code>{_e(r['key'])}</code></td><td>{_e(r['label_space'])}</td></tr>"
                   for d, r in prov["records"].items())
    out.append("<{H}>Provenance</{H}>"
               + _folded("<table><thead><tr><th>Set</th><th>Images</th><th>Store key</th>"
                         f"<th>Label space</th></tr></thead><tbody>{rows}</tbody></table>",
                         len(prov["records"]), "Prediction records read")
               + f"<p class='small'>Versions: {_e(', '.join(f'{k} {v}' for k, v in prov['versions'].items()))}. "
               f"Intervals: 95% bootstrap, {card['n_boot']} resamples over images (stimuli for shape "
               "bias; effective robustness: a joint bootstrap of the model's images and the baseline models "
               "that define the line, so the line's uncertainty is in it; factors: Wilson).</p></div>")
    h = "h2" if standalone else "h3"
    return "".join(out).replace("<{H}>", f"<{h}>").replace("</{H}>", f"</{h}>")


def render(card: dict) -> str:
    """The standalone page: :func:`fragment` in a minimal HTML document (no script, no link)."""
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>Safety card: {_e(card['model'])}</title></head><body><main>{fragment(card)}</main></body></html>")
