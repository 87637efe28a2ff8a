"""Study of the findings page: every chapter's recorded claims read back (never typed) as one
table, the matrix of claims against kinds of evidence, the landing page's computed opening, and
the list of chapters read from the table of contents.

The chapters record their claims tables when they run (:func:`clipsafety.outputs.record`);
:func:`findings_table` reads them (:func:`clipsafety.outputs.read`) for the chapters of
:func:`clipsafety.contents.claim_chapters`, so a chapter added to ``book/_toc.yml`` appears here
without an edit.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd

from clipsafety import claims, contents, outputs
from clipsafety import rules as _R
from clipsafety.rules import Exercise
from clipsafety.style import VERDICT_COLOURS

__all__ = ["BADGES", "chapter_list", "chapters_status", "findings_html", "findings_matrix",
           "findings_summary", "findings_table", "read_outputs"]

#: the three kinds of evidence, by the start of a source's name
SOURCE_KINDS = tuple(claims.SOURCES)


def read_outputs(chapters: Sequence[str] | str | None = None) -> dict:
    """The recorded outputs of ``chapters`` (default: :func:`clipsafety.contents.claim_chapters`,
    every chapter of the table of contents that records claims): ``{chapter: payload or
    None}``, ``None`` for a chapter that has not run."""
    return outputs.read(chapters or contents.claim_chapters())


def findings_table(found: dict) -> pd.DataFrame:
    """All recorded claim rows of ``found`` (:func:`read_outputs`) as one tidy table: chapter,
    claim_id, claim, source, source_kind (one of the three kinds of evidence), verdict,
    detail, evidence."""
    rows = []
    for chapter, payload in found.items():
        for r in (payload or {}).get("claims", []) or []:
            rows.append({"chapter": chapter, **r, "source_kind": claims.source_kind(r["source"])})
    cols = ["chapter", "claim_id", "claim", "source", "source_kind", "verdict", "detail", "evidence"]
    return pd.DataFrame(rows, columns=cols)


def findings_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (chapter, claim), one column per source, cells ``verdict: evidence``."""
    cell = table["verdict"] + ": " + table["evidence"].astype(str)
    wide = table.assign(cell=cell).pivot_table(index=["chapter", "claim"], columns="source",
                                               values="cell", aggfunc="first", sort=False)
    order = sorted(wide.columns, key=lambda c: (next((i for i, k in enumerate(SOURCE_KINDS)
                                                      if str(c).startswith(k)), 9), str(c)))
    return wide[order].fillna("")


def chapters_status(found: dict) -> str:
    """Markdown: which chapters have recorded outputs and how many claims each tests."""
    have = [c for c, p in found.items() if p]
    missing = [c for c, p in found.items() if not p]
    parts = [f"`{c}` ({len(found[c].get('claims') or [])} verdicts)" for c in have]
    text = f"Chapters with recorded results: {', '.join(parts) or 'none'}."
    if missing:
        text += (f" Not yet run, so not in the matrix: {', '.join(f'`{c}`' for c in missing)} "
                 "(`make book` runs them).")
    return text


def chapter_list() -> str:
    """MyST Markdown: every page of the table of contents after the landing page, by part,
    each chapter with what it asks (its study's ``ABOUT``), linked with ``{doc}`` from the
    findings page (``book/chapters/``)."""
    lines, caption = [], None
    for part, file in contents.toc_entries()[1:]:
        if part != caption:
            lines += ["", f"**{part}**", ""] if part else [""]
            caption = part
        name = file.split("/", 1)[1] if file.startswith("chapters/") else None
        target = name if name else f"../{file}"
        about = contents.about(name) if name else ""
        lines.append(f"- {{doc}}`{target}`" + (f": {about}" if about else ""))
    return "\n".join(lines).strip() + "\n"


def _cell(text) -> str:
    return html.escape(str(text))


#: verdict -> (badge colour, text colour) of the findings matrix
BADGES = VERDICT_COLOURS


def _effect(evidence: str, limit: int = 110) -> str:
    """The lead of an evidence text: its first clause (the effect and its interval)."""
    lead = str(evidence).split("; ")[0].split(". Built into")[0]
    return lead if len(lead) <= limit else lead[: limit - 1].rstrip() + "…"


def findings_html(table, page_of: dict | None = None) -> str:
    """The findings matrix as an HTML table that wraps to the text column: one row per claim
    (grouped by chapter, linked to its page), one column per kind of evidence, each cell the
    verdict, the effect with its interval, and the full evidence on hover and unfolded.
    ``table``: :func:`findings_table`."""

    kinds = list(claims.SOURCES)
    head = "".join(f"<th>{_cell(k)}</th>" for k in kinds)
    body = []
    for (chapter, _cid), rows in table.groupby(["chapter", "claim_id"], sort=False):
        link = (page_of or {}).get(chapter, f"{chapter}.html")
        cells = []
        for kind in kinds:
            parts = []
            for r in rows[rows["source_kind"] == kind].itertuples():
                bg, fg = BADGES.get(r.verdict, ("#fff", "#000"))
                src = "" if r.source == kind else f" <small>({_cell(r.source[len(kind):].strip(' ()'))})</small>"
                parts.append(
                    f'<div title="{_cell(r.evidence)}"><span class="clipsafety-verdict" '
                    f'style="background:{bg};color:{fg}">{_cell(r.verdict)}</span>{src} '
                    f"<small>{_cell(_effect(r.evidence))}</small></div>")
            cells.append(f"<td>{''.join(parts) or '—'}</td>")
        claim = rows["claim"].iloc[0]
        body.append(f'<tr><td><a href="{_cell(link)}">{_cell(chapter)}</a>: {_cell(claim)}</td>'
                    + "".join(cells) + "</tr>")
    return ('<table class="table clipsafety-findings"><thead><tr><th>claim (chapter)</th>'
            f"{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def findings_summary(table) -> str:
    """Markdown: the landing page's first words, counted from the findings table
    (:func:`clipsafety.claims.tally` per kind of evidence)."""
    if table is None or not len(table):
        return ("**No chapter has recorded its results yet**, so there is nothing to report: "
                "`make book` runs every chapter, then this page.")
    parts = []
    for kind in claims.SOURCES:
        k, tested = claims.tally(table[table["source_kind"] == kind])
        if tested:
            parts.append(f"on {kind}, {k} of {tested} tested claims reproduce")
    n = table.groupby(["chapter", "claim_id"]).ngroups
    return (f"**In short.** {n} claims in {table['chapter'].nunique()} chapters; "
            + "; ".join(parts) + ". Where a claim does not reproduce, its chapter says why.")


PARAMETER_RULES = {"chapters": _R.subset(lambda: ["all", *[n for n in contents.toc_chapters()
                                                           if n not in contents.SUMMARY_CHAPTERS]],
                                         "chapter(s)")}

EXERCISES = [
    Exercise("Show only the claims of the sections of the paper.",
             {"chapters": ["factors", "shape_bias", "ood", "calibration"]},
             "the landscape's premise leaves the matrix; the counts below it change"),
    Exercise("After one of the exercises of another chapter, rebuild this page alone.",
             {"chapters": "all"},
             "which verdicts moved: this page reads the outputs each chapter last recorded"),
]
