"""What every chapter page shares beyond its analysis: the computed summary it opens with, the
ending (claims, recorded outputs) and the "Try it" section it closes with.

- :func:`end_chapter` is the one call that ends every chapter: the claims matrix, the verdicts
  as sentences, the note on where the synthetic world disagrees, the recorded outputs
  (:func:`clipsafety.outputs.record`) and the "Try it" section. It glues the chapter's verdict
  counts as ``summary`` (:func:`glue_summary`); the chapter's first Markdown cell pastes it
  with ``{glue:md}`` (myst-nb), so the page opens with what the chapter found although the
  numbers are computed at its end.
- :func:`try_it`: the chapter's exercises (its study's ``EXERCISES``), each with its exact
  ``make chapter`` command and the parameter it changes, then the rerun box: the chapter's
  parameters as :func:`clipsafety.contents.parameters` parses them (name, type, default, help)
  and example commands. A test parses every exercise's command and checks its values against
  the chapter's rules.
- :func:`comparison`: on a page rerun with non-default parameters (an exercise), the
  before/after table: what the exercise asks about (its ``measures``, else each claim's
  verdict and estimate) computed from the book's recorded run and from this run's record,
  with the parameters that differ between the two. :func:`try_it` shows it first, so it sits
  right after the verdicts.
"""

from __future__ import annotations

import html
import shlex


def _value(v) -> str:
    """A parameter value as the command line writes it (YAML, quoted for the shell)."""
    if isinstance(v, str):
        text = v
    elif isinstance(v, bool):
        text = "true" if v else "false"
    elif isinstance(v, (list, tuple)):
        text = "[" + ", ".join(map(str, v)) + "]"
    else:
        text = str(v)
    return shlex.quote(text) if not text.startswith("[") else f'"{text}"'


def command(chapter: str, params: dict) -> str:
    """The ``make chapter`` command that reruns ``chapter`` with ``params``."""
    pairs = " ".join(f"-p {k} {_value(v)}" for k, v in params.items())
    return f"make chapter NAME={chapter} PARAMS='{pairs}'" if pairs else f"make chapter NAME={chapter}"


def command_pairs(cmd: str) -> tuple[str, list[tuple[str, str]]]:
    """The chapter and ``(key, value)`` pairs of a ``make chapter`` command (the inverse of
    :func:`command`, as make and the shell would pass them to ``python -m clipsafety.book``)."""
    words = shlex.split(cmd)
    if words[:2] != ["make", "chapter"]:
        raise ValueError(f"not a 'make chapter' command: {cmd!r}")
    args = dict(w.split("=", 1) for w in words[2:])
    params = shlex.split(args.get("PARAMS", ""))
    if len(params) % 3 or any(params[i] != "-p" for i in range(0, len(params), 3)):
        raise ValueError(f"PARAMS of {cmd!r} is not a list of '-p key value'")
    return args["NAME"], [(params[i + 1], params[i + 2]) for i in range(0, len(params), 3)]


def _cell(text) -> str:
    return html.escape(str(text))


def rerun_box(chapter: str, examples: list[str] = ()) -> str:
    """The rerun box of ``chapter`` (HTML): every parameter with its type, default and help,
    as parsed from the chapter's parameters cell, and example commands."""
    from clipsafety import contents, readable

    params = contents.parameters(chapter)
    rows = "".join(
        f"<tr><td><code>{_cell(k)}</code></td><td><code>{_cell(v['type'])}</code></td>"
        f"<td><code>{_cell(repr(v['default']))}</code></td><td>{_cell(v['help'])}</td></tr>"
        for k, v in params.items())
    cmds = [f"python -m clipsafety.book params {chapter}", *examples[:1],
            f"make chapter NAME={chapter}   # back to the defaults"]
    return (
        '<div class="admonition clipsafety-rerun"><p class="admonition-title">Rerun this chapter'
        "</p><p>Parameters (values are YAML: <code>3</code>, <code>0.5</code>, <code>true</code>, "
        "<code>[a, b]</code>); a wrong name or value stops before anything runs, and the page "
        "you see is kept.</p>"
        + readable.folded(
            '<table class="table clipsafety-params"><thead><tr><th>parameter</th><th>type</th>'
            f"<th>default</th><th>meaning</th></tr></thead><tbody>{rows}</tbody></table>",
            len(params), f"All {len(params)} parameters") +
        "<p>Example commands:</p><pre>" + _cell("\n".join(cmds)) + "</pre></div>")


def _shown(v) -> str:
    """A measured value as the before/after table shows it."""
    from clipsafety.readable import Column, format_value

    if v is None or (isinstance(v, float) and v != v):
        return "–"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return format_value(v, Column("", "number", digits=4))
    return str(v)


def claim_measures(payload: dict) -> dict:
    """Each claim's verdict and estimate per kind of evidence, from a recorded payload
    (:func:`clipsafety.outputs.record`): ``{"<claim> (<evidence>)": "<verdict>, <estimate>
    <scale>"}``, one verdict per claim and kind (:func:`clipsafety.claims.by_kind`)."""
    import pandas as pd

    from clipsafety import claims

    rows = payload.get("claims") or []
    if not rows:
        return {}
    per = claims.by_kind(pd.DataFrame(rows))
    short = {claims.PUBLISHED: "published results", claims.REAL: "real models run here",
             claims.WORLD: "synthetic world"}
    out = {}
    for r in per.itertuples():
        scale = str(r.scale or "")
        est, lo, hi = (claims.fmt(v, scale) for v in (r.estimate, r.lo, r.hi))
        if est != "–":
            est += (f" [{lo}, {hi}]" if "–" not in (lo, hi) else "") + (f" {scale}" if scale else "")
        out[f"{r.claim} ({short.get(r.evidence_kind, r.evidence_kind)})"] = (
            f"{r.label}, {est}" if est != "–" else str(r.label))
    return out


def scalar_measures(payload: dict) -> dict:
    """The recorded tables that are single numbers or words (``{name: value}``): what a
    rerun compares when its chapter judges no claims and its exercise names no measures."""
    return {k: v for k, v in (payload.get("tables") or {}).items()
            if isinstance(v, (int, float, str)) and not isinstance(v, bool)}


def _exercise_for(chapter: str, changed: dict):
    from clipsafety import contents

    # a chapter without a study (a test's tiny book) has no exercises
    return next((ex for ex in contents.exercises(chapter) if ex.params == changed), None)


def _defaults(chapter: str) -> dict:
    from clipsafety import contents

    try:
        return {k: v["default"] for k, v in contents.parameters(chapter).items()}
    except KeyError:  # a chapter outside the book's analyses (a test's tiny book)
        return {}


#: what the before/after table's "changed" column says
CHANGED, SAME, ONLY_BEFORE, ONLY_AFTER = "yes", "no", "only in the book's run", "only in this run"


def comparison_table(before: dict, after: dict, measures=None):
    """``DataFrame`` (quantity, before, after, changed): ``measures`` (a function of a
    recorded payload, default: :func:`claim_measures`, else :func:`scalar_measures`) computed
    on the book's recorded payload (``before``) and this run's (``after``). Quantities that
    changed come first; a claim not testable in either run is left out (it says nothing about
    the knob)."""
    import pandas as pd

    from clipsafety.claims import NOT_TESTABLE

    if measures is None:
        measures = claim_measures if (before.get("claims") or after.get("claims")) \
            else scalar_measures
    b, a = measures(before), measures(after)
    keys = list(b) + [k for k in a if k not in b]
    rows = []
    for k in keys:
        x, y = _shown(b.get(k)), _shown(a.get(k))
        if x == y == NOT_TESTABLE:
            continue
        changed = (ONLY_AFTER if k not in b else ONLY_BEFORE if k not in a
                   else CHANGED if x != y else SAME)
        rows.append({"quantity": k, "before": x, "after": y, "changed": changed})
    rows.sort(key=lambda r: r["changed"] == SAME)
    return pd.DataFrame(rows, columns=["quantity", "before", "after", "changed"])


def comparison(chapter: str) -> str:
    """HTML: on a rerun with non-default parameters (:func:`clipsafety.outputs.this_run`),
    this run against the book's recorded run of ``chapter``: the parameters that differ and
    the before/after table (:func:`comparison_table`, with the matching exercise's
    ``measures``) of this run's record (:func:`clipsafety.outputs.recorded`) and the book's
    (:func:`clipsafety.outputs.read`).
    ``""`` on the book's own run, or when nothing was recorded (a chapter run by hand)."""
    import json

    from clipsafety import outputs, readable

    run = outputs.this_run()
    if not run["rerun"]:
        return ""
    where = outputs.recorded(chapter)
    if where is None or not where.is_file():
        return ""
    after = json.loads(where.read_text())
    before = outputs.read([chapter])[chapter]
    ex = _exercise_for(chapter, run["changed"])
    head = ('<div class="admonition clipsafety-comparison"><p class="admonition-title">'
            "This run against the book's run</p>")
    what = (f"<p>Exercise: {_cell(ex.task)} What to look at: {_cell(ex.look_for)}.</p>"
            if ex else "")
    if before is None:
        return (head + what + "<p>No record of the book's run of this chapter to compare with: "
                f"run <code>make chapter NAME={_cell(chapter)}</code> (its defaults) first, then "
                "this command again.</p></div>")
    defaults = run["defaults"] or _defaults(chapter)
    b_params, a_params = before.get("params") or {}, after.get("params") or {}
    keys = list(a_params) + [k for k in b_params if k not in a_params]
    diff = [(k, b_params.get(k, defaults.get(k, "its default")),
             a_params.get(k, defaults.get(k, "its default")))
            for k in keys if b_params.get(k, defaults.get(k)) != a_params.get(k, defaults.get(k))]
    differs = "; ".join(f"<code>{_cell(k)}</code>: <code>{_cell(repr(x))}</code> → "
                        f"<code>{_cell(repr(y))}</code>" for k, x, y in diff) or "nothing"
    table = comparison_table(before, after, ex.measures if ex else None)
    if table.empty:
        body = "<p>Neither run recorded a quantity to compare.</p>"
    else:
        moved = int((table["changed"] != SAME).sum())
        body = readable.table(
            table, {"quantity": "Quantity", "before": "The book's run",
                    "after": "This run", "changed": "Changed"},
            caption=f"{moved} of {len(table)} quantities changed.").html
    return (head + what + f"<p>This run differs from the book's recorded run in: {differs}. "
            "Every number below is computed from the two runs' recorded outputs; the book's "
            "record is left as it is.</p>" + body + "</div>")


def try_it(chapter: str):
    """The "Try it" section that ends ``chapter``: its exercises and its rerun box, preceded
    on a rerun with non-default parameters by :func:`comparison`."""
    from IPython.display import HTML

    from clipsafety import contents

    compared = comparison(chapter)
    exercises = contents.exercises(chapter)
    items = []
    for ex in exercises:
        changed = ", ".join(f"<code>{_cell(k)}</code>" for k in ex.params)
        items.append(f"<li><p>{_cell(ex.task)} Changes {changed}; look at {_cell(ex.look_for)}."
                     f"</p><pre>{_cell(command(chapter, ex.params))}</pre></li>")
    examples = [command(chapter, ex.params) for ex in exercises]
    return HTML(compared + '<section class="clipsafety-try-it"><h2>Try it</h2>'
                "<p>Exercises for a laptop, run from the repository's root. Each changes one "
                "parameter against this chapter's defaults, on the same models; the command "
                "re-executes the chapter and rebuilds the site, and the rerun's page compares "
                "itself with the book's run (the book's record is kept)."
                f"</p><ol>{''.join(items)}</ol>" + rerun_box(chapter, examples) + "</section>")


def summary_text(table) -> str:
    """Markdown: what a chapter's claims table says: how many claims of each kind it judges
    and, per kind of evidence, the count of each verdict (:func:`clipsafety.claims.tally`, one
    verdict per claim and kind; claims whose home is another chapter are not counted)."""
    from clipsafety import claims

    if table is None or not len(table):
        return "This chapter records no claims."
    per_kind = table.drop_duplicates("claim_id")["claim_kind"].fillna(claims.PAPER).value_counts()
    kinds = [f"{per_kind[k]} {'of the paper' if k == claims.PAPER else k}"
             f" claim{'s' if per_kind[k] != 1 else ''}" if k != claims.EXTENSION else
             f"{per_kind[k]} of the book's own hypotheses (extensions)"
             for k in claims.CLAIM_KINDS if per_kind.get(k)]
    parts = []
    for kind in claims.DISPLAY:
        sub = table[table["source"].map(claims.source_kind) == kind]
        parts.append(f"{claims.KIND_NAMES[kind]}: {claims.tally_text(claims.tally(sub))}"
                     if len(sub) else f"{claims.KIND_NAMES[kind]}: none")
    return (f"**What this chapter found.** It judges {' and '.join(kinds)}. "
            + "; ".join(parts) + ". Every verdict, with its effect, interval and n, is at the "
            "end of the page; the findings page sets them beside the other chapters'.")


def glue_summary(table) -> None:
    """Glue :func:`summary_text` as ``summary`` (pasted at the top of the chapter)."""
    from IPython.display import Markdown
    from myst_nb import glue

    glue("summary", Markdown(summary_text(table)), display=False)


def chapter_ending(verdicts):
    """The claims of a chapter, from its verdict rows: ``(table, shown)``, the tidy claims table
    (:func:`clipsafety.claims.claims_table`) and the objects to display in order: the claims
    matrix (claims x evidence sources), the verdicts as sentences with their evidence, and the
    note on where the synthetic world disagrees with the paper. Also glues the chapter's
    summary (:func:`glue_summary`), which the chapter's first cell pastes."""
    from IPython.display import Markdown

    from clipsafety import claims

    table = claims.claims_table(verdicts)
    glue_summary(table)
    from clipsafety import readable

    matrix = claims.claims_matrix(table)
    shown = [readable.table(matrix, {"claim": "claim", **{c: c for c in matrix.columns}},
                            caption="One verdict per claim and kind of evidence (the rows "
                            "below give each source's effect, interval and n).")
             if len(matrix) else matrix,
             Markdown(claims.claims_sentences(table)), Markdown(claims.world_note(table))]
    return table, shown


def end_chapter(chapter: str, verdicts, *, note: bool = True, **tables) -> None:
    """The one call that ends a chapter: its claims (:func:`chapter_ending`; ``note=False``
    leaves out the note on where the world disagrees), its recorded outputs (the claims table
    and ``tables``, :func:`clipsafety.outputs.record`) and its "Try it" section
    (:func:`try_it`). Returns nothing, so the cell shows only what it displays."""
    from IPython.display import display

    from clipsafety import claims, outputs

    table, shown = chapter_ending(verdicts)
    wrong = claims.problems(table, chapter)
    if wrong:
        raise ValueError(f"chapter {chapter!r} records judgements that break their rules (nothing "
                         "was recorded): " + "; ".join(wrong))
    for obj in shown if note else shown[:2]:
        display(obj)
    outputs.record(chapter, table, **tables)
    display(try_it(chapter))
