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

__all__ = ["BADGES", "SECTIONS", "chapter_list", "chapters_status", "findings_html",
           "findings_summary", "findings_table", "per_kind", "premise_table", "read_outputs",
           "section_sentences"]

#: the paper's sections, in order, with what each is about
SECTIONS = {"abstract": "The headline (abstract)", "4.1": "Visual factors (section 4.1)",
            "4.2": "Shape bias (section 4.2)", "5": "Out-of-distribution detection (section 5)",
            "6": "Calibration (section 6)"}


def read_outputs(chapters: Sequence[str] | str | None = None) -> dict:
    """The recorded outputs of ``chapters`` (default: :func:`clipsafety.contents.claim_chapters`,
    every chapter of the table of contents that records claims): ``{chapter: payload or
    None}``, ``None`` for a chapter that has not run."""
    return outputs.read(chapters or contents.claim_chapters())


def findings_table(found: dict) -> pd.DataFrame:
    """All recorded judgements of ``found`` (:func:`read_outputs`) as one tidy table: the
    columns of :data:`clipsafety.claims.COLUMNS` and ``chapter``. Fields are read as recorded,
    never parsed from text."""
    rows = []
    for chapter, payload in found.items():
        for r in (payload or {}).get("claims", []) or []:
            rows.append({"chapter": chapter, **r})
    df = pd.DataFrame(rows, columns=["chapter", *claims.COLUMNS])
    if len(df):
        df["evidence_kind"] = df["source"].map(claims.source_kind)
        df["claim_kind"] = df["claim_kind"].fillna(claims.PAPER)
    return df


def per_kind(table: pd.DataFrame) -> pd.DataFrame:
    """One verdict per claim and kind of evidence over the whole book
    (:func:`clipsafety.claims.by_kind`: only the claim's home chapter counts), with the chapter
    it is judged in."""
    if table is None or not len(table):
        return pd.DataFrame(columns=["chapter", *claims.COLUMNS])
    out = []
    for chapter, part in table.groupby("chapter", sort=False):
        k = claims.by_kind(part)
        if len(k):
            k["chapter"] = chapter
            out.append(k)
    if not out:
        return pd.DataFrame(columns=["chapter", *claims.COLUMNS])
    return pd.concat(out, ignore_index=True)


def chapters_status(found: dict) -> str:
    """Markdown: which chapters have recorded outputs and how many claims each judges."""
    have = [c for c, p in found.items() if p]
    missing = [c for c, p in found.items() if not p]
    parts = []
    for c in have:
        ids = {r["claim_id"] for r in found[c].get("claims") or []}
        parts.append(f"`{c}` ({len(ids)} claim{'s' if len(ids) != 1 else ''})")
    text = f"Chapters with recorded results: {', '.join(parts) or 'none'}."
    if missing:
        text += (f" Not yet run, so not in the table: {', '.join(f'`{c}`' for c in missing)} "
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


#: verdict -> (badge colour, text colour)
BADGES = VERDICT_COLOURS


def _numbers(r) -> str:
    """The effect of a judgement row, from its fields: estimate [interval] scale; n."""
    est, lo, hi = (r.get("estimate"), r.get("lo"), r.get("hi"))
    scale = r.get("scale") or ""
    text = ""
    if est is not None and pd.notna(est):
        text = claims.fmt(est, scale)
        if lo is not None and pd.notna(lo) and hi is not None and pd.notna(hi):
            text += f" [{claims.fmt(lo, scale)}, {claims.fmt(hi, scale)}]"
        text += f" {scale}".rstrip()
    n = r.get("n") or []
    if len(n) and r.get("unit") == claims.RUNS:
        k = max(int(v) for v in n)
        text += ("; " if text else "") + f"{k} training run{'s' if k != 1 else ''} per arm, one seed"
    elif len(n):
        text += ("; " if text else "") + f"n = {' vs '.join(map(str, n))} {r.get('unit') or ''}"
    return text.strip()


def _badge(r) -> str:
    bg, fg = BADGES.get(r["verdict"], ("#fff", "#000"))
    return (f'<span class="clipsafety-verdict" style="background:{bg};color:{fg}">'
            f"{_cell(r.get('label') or r['verdict'])}</span>")


def _has_real_run(kinds: pd.DataFrame) -> bool:
    real = kinds[kinds["evidence_kind"] == claims.REAL]
    return bool(len(real)) and bool(real["verdict"].isin(claims.TESTED).any())


def findings_html(table: pd.DataFrame, page_of: dict | None = None) -> str:
    """The claims table (HTML, wraps to the text column): one row per claim, the paper's
    claims first (by section), then the premise, then the book's extensions; one column per
    kind of evidence, real-model evidence first and the world's last ("under its
    assumptions"); each cell the verdict as shown, the effect with its interval and n, and
    the reason. The real-run column is left out when no real run exists (a note says so).
    ``table``: :func:`findings_table`."""
    kinds = per_kind(table)
    cols = [k for k in claims.DISPLAY if k != claims.REAL or _has_real_run(kinds)]
    head = "".join(f"<th>{_cell(claims.KIND_NAMES[k])}</th>" for k in cols)
    body = []
    for ckind in claims.CLAIM_KINDS:
        part = kinds[kinds["claim_kind"] == ckind]
        if part.empty:
            continue
        body.append(f'<tr class="clipsafety-kind"><th colspan="{len(cols) + 1}">'
                    f"{_cell(claims.CLAIM_KIND_NAMES[ckind][0].upper() + claims.CLAIM_KIND_NAMES[ckind][1:])}"
                    "</th></tr>")
        order = {s: i for i, s in enumerate(SECTIONS)}
        claim_ids = sorted(dict.fromkeys(part["claim_id"]),
                           key=lambda c: order.get(str(part[part["claim_id"] == c]["section"].iloc[0]), 99))
        for cid in claim_ids:
            rows = part[part["claim_id"] == cid]
            r0 = rows.iloc[0]
            link = (page_of or {}).get(r0["chapter"], f"{r0['chapter']}.html")
            cells = []
            for k in cols:
                sub = rows[rows["evidence_kind"] == k]
                if sub.empty:
                    cells.append("<td>—</td>")
                    continue
                r = sub.iloc[0].to_dict()
                why = "" if r["verdict"] in claims.TESTED else r.get("reason") or ""
                nums = _numbers(r)
                cells.append(f"<td>{_badge(r)}<br><small>{_cell(nums)}"
                             f"{'<br>' if nums and why else ''}{_cell(why)}</small></td>")
            sec = f"§{r0['section']} " if r0["section"] and r0["section"] != "abstract" else ""
            body.append(f'<tr><td>{_cell(sec)}{_cell(r0["claim"])} <small>(<a href="{_cell(link)}">'
                        f"{_cell(r0['chapter'])}</a>)</small></td>" + "".join(cells) + "</tr>")
    return ('<table class="table clipsafety-findings"><thead><tr><th>claim (chapter)</th>'
            f"{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def premise_table(table: pd.DataFrame) -> pd.DataFrame:
    """The world's premises, per claim: for every world verdict recorded in its home chapter,
    the verdict as shown and the premises measured before it (those that held, or the ones that
    failed), or a dash when the chapter checks none. Read from the judgements' fields."""
    kinds = per_kind(table)
    w = kinds[kinds["evidence_kind"] == claims.WORLD] if len(kinds) else kinds
    rows = []
    for r in w.itertuples():
        if r.verdict == claims.NOT_TESTABLE:
            continue
        checked = r.premise if isinstance(r.premise, str) and r.premise else ""
        rows.append({"chapter": r.chapter, "claim": r.claim, "verdict": r.label,
                     "premises measured": checked or ("(a world setting decides it) " + r.reason
                                                      if r.verdict == claims.BUILT_IN else "—")})
    return pd.DataFrame(rows, columns=["chapter", "claim", "verdict", "premises measured"])


def real_run_note(table: pd.DataFrame) -> str:
    """Markdown: when no real model ran on real data in this build, one note instead of a
    column of "not testable" cells."""
    kinds = per_kind(table)
    if not len(kinds) or _has_real_run(kinds):
        return ""
    return ("**Real models run here.** No chapter ran real models on real data in this build "
            "(the book's machines have neither pretrained weights nor the datasets), so that "
            "column is left out of the table; each chapter's rerun box gives the command that "
            "fills it.")


def _claim_phrase(rows: pd.DataFrame) -> str:
    """One claim's verdicts in words: real-model evidence first, then the world's."""
    bits = []
    for k in claims.DISPLAY:
        sub = rows[rows["evidence_kind"] == k]
        if sub.empty:
            continue
        r = sub.iloc[0].to_dict()
        if r["verdict"] == claims.NOT_TESTABLE and k != claims.WORLD:
            continue
        nums = _numbers(r)
        where = {claims.PUBLISHED: "published results", claims.REAL: "real models run here",
                 claims.WORLD: "the world"}[k]
        bits.append(f"{where}: {r.get('label') or r['verdict']}" + (f" ({nums})" if nums and
                                                                   r["verdict"] in claims.TESTED
                                                                   else ""))
    if not any(not b.startswith("the world") for b in bits):
        bits.insert(0, "no real-model test")
    return "; ".join(bits)


def section_sentences(table: pd.DataFrame) -> str:
    """Markdown: per section of the paper, then the premise and the extensions, what the
    evidence shows, one computed sentence each (every claim with its per-kind verdicts)."""
    kinds = per_kind(table)
    if not len(kinds):
        return ""
    lines = []
    paper = kinds[kinds["claim_kind"] == claims.PAPER]
    for sec, title in SECTIONS.items():
        part = paper[paper["section"].astype(str) == sec]
        if part.empty:
            continue
        items = [f"*{rows['claim'].iloc[0]}* — {_claim_phrase(rows)}"
                 for _, rows in part.groupby("claim_id", sort=False)]
        lines.append(f"- **{title}.** " + " ".join(f"{i}." for i in items))
    for ckind in (claims.PREMISE, claims.EXTENSION):
        part = kinds[kinds["claim_kind"] == ckind]
        if part.empty:
            continue
        c = claims.tally(part)
        title = claims.CLAIM_KIND_NAMES[ckind]
        lines.append(f"- **{title[0].upper() + title[1:]}.** " + "; ".join(
            f"{claims.KIND_NAMES[k]}: {claims.tally_text(claims.tally(part[part['evidence_kind'] == k]))}"
            for k in claims.DISPLAY if (part["evidence_kind"] == k).any()) + ".")
        _ = c
    return "\n".join(lines)


def findings_summary(table: pd.DataFrame) -> str:
    """Markdown: the landing page's first words, counted from the per-kind verdicts: the
    paper's claims per kind of evidence, kept apart from the premise and the extensions."""
    if table is None or not len(table):
        return ("**No chapter has recorded its results yet**, so there is nothing to report: "
                "`make book` runs every chapter, then this page.")
    kinds = per_kind(table)
    paper = kinds[kinds["claim_kind"] == claims.PAPER]
    n = paper["claim_id"].nunique()
    parts = [f"on {claims.KIND_NAMES[k]}, {claims.tally_text(claims.tally(paper[paper['evidence_kind'] == k]))}"
             for k in claims.DISPLAY if (paper["evidence_kind"] == k).any()]
    ext = kinds[kinds["claim_kind"] == claims.EXTENSION]["claim_id"].nunique()
    return (f"**In short.** The book judges {n} claims of the paper, once each, in "
            f"{kinds[kinds['claim_kind'] == claims.PAPER]['chapter'].nunique()} chapters: "
            + "; ".join(parts) + ". Real-model evidence outranks the world's; a world verdict "
            "holds under the world's assumptions only."
            + (f" The book's own {ext} hypotheses for the open questions are counted apart "
               "(below)." if ext else ""))


PARAMETER_RULES = {"chapters": _R.subset(lambda: ["all", *[n for n in contents.toc_chapters()
                                                           if n not in contents.SUMMARY_CHAPTERS]],
                                         "chapter(s)")}

EXERCISES = [
    Exercise("Show only the claims of the sections of the paper.",
             {"chapters": ["factors", "shape_bias", "ood", "calibration"]},
             "the landscape's premise leaves the matrix; the counts below it change"),
    Exercise("Show only the chapters of the paper's open questions.",
             {"chapters": ["prompts", "finetuning", "curation"]},
             "the book's own hypotheses and how many of them the world reproduces"),
]
