"""What every chapter page shares beyond its analysis: the computed summary it opens with, and
the "Try it" section it ends with (workshop exercises and the rerun box).

- :func:`glue_summary` (called by :func:`clipsafety.evidence.chapter_ending`) glues the
  chapter's verdict counts as ``summary``; the chapter's first Markdown cell pastes it with
  ``{glue:md}`` (myst-nb), so the page opens with what the chapter found although the numbers
  are computed at its end.
- :func:`try_it` is the last cell of every chapter: :data:`EXERCISES` of that chapter, each
  with its exact ``make chapter`` command and the parameter it changes, then the rerun box: the
  chapter's parameters as :meth:`clipsafety.book.Chapter.parameters` parses them (name, type,
  default, help) and example commands. A test parses every exercise's command and checks its
  values with :func:`clipsafety.book.validate_params`.
"""

from __future__ import annotations

import html
import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Exercise:
    """A workshop task: what to do, the parameters it changes (Python values, written as
    YAML on the command line), what to look for."""

    task: str
    params: dict
    look_for: str


#: a handful of zoo models spanning the groups (seconds per chapter on a laptop)
_FEW = ["zoo:clip-resnet-wit-100k", "zoo:clip-resnet-laion-100k", "zoo:ft-resnet-wit-100k",
        "zoo:sup-resnet-labelled-10k", "zoo:sup-vit-labelled-100k"]

#: chapter -> its exercises (two or three; a laptop runs each in minutes)
EXERCISES: dict[str, list[Exercise]] = {
    "findings": [
        Exercise("Show only the claims of the sections of the paper.",
                 {"chapters": ["factors", "shape_bias", "ood", "calibration"]},
                 "the landscape's premise leaves the matrix; the counts below it change"),
        Exercise("After one of the exercises of another chapter, rebuild this page alone.",
                 {"chapters": "all"},
                 "which verdicts moved: this page reads the outputs each chapter last recorded"),
    ],
    "landscape": [
        Exercise("Fit the line of the standard models on the probit scale instead of logit.",
                 {"scale": "probit"},
                 "whether zero-shot CLIP's effective robustness depends on the scale"),
        Exercise("Let only timm's models define the line.",
                 {"baseline_sources": ["timm"]},
                 "how much the baseline moves when imagenet-testbed's models leave it"),
        Exercise("Look at the natural shifts only.",
                 {"shifts": ["r", "a", "objectnet"]},
                 "the verdict of each shift in the findings"),
    ],
    "factors": [
        Exercise("Run the chapter on five zoo models, with one prompt template.",
                 {"models": _FEW, "templates": "single"},
                 "which factors keep their sign when the prompts change"),
        Exercise("Use every ImageNet-X factor, not the paper's ten.",
                 {"models": _FEW, "factors": "all"},
                 "the factors the paper left out"),
        Exercise("Fit the trends on a linear scale.",
                 {"models": _FEW, "scale": "linear"},
                 "whether the factor-level effective robustness keeps its sign"),
    ],
    "shape_bias": [
        Exercise("Run the chapter on five zoo models with one prompt template.",
                 {"models": _FEW, "templates": "single"},
                 "whether zero-shot CLIP's shape bias depends on its prompts"),
        Exercise("Resample the intervals with another seed and fewer resamples.",
                 {"models": _FEW, "seed": 1, "n_boot": 200},
                 "how stable each interval is"),
    ],
    "ood": [
        Exercise("Score zero-shot CLIP with the energy score instead of MCM.",
                 {"models": _FEW, "clip_score": "energy"},
                 "whether the OOD claims depend on the score"),
        Exercise("Sharpen MCM's softmax.",
                 {"models": _FEW, "temperature": 0.01},
                 "AUROC and FPR at 95% of zero-shot CLIP against the default temperature"),
        Exercise("Count FPR the way OpenOOD does.",
                 {"models": _FEW, "fpr_convention": "ood-recall"},
                 "which numbers change with the convention, and which verdicts do not"),
    ],
    "calibration": [
        Exercise("Use fewer bins for ECE and the reliability diagrams.",
                 {"models": _FEW, "n_bins": 10},
                 "how much ECE depends on the binning"),
        Exercise("Fit the temperature on a fifth of each ID class.",
                 {"models": _FEW, "fit_fraction": 0.2},
                 "whether the temperature still transfers to the shifts"),
        Exercise("Ask for a stricter transfer.",
                 {"models": _FEW, "transfer_margin": 0.01},
                 "the transfer claim's verdict"),
    ],
    "prompts": [
        Exercise("Tune the prompts longer.", {"budget": 1000},
                 "whether CoOp's ECE gap over the hand-written template grows with the steps"),
        Exercise("Weigh C-TPT's dispersion term more.", {"ctpt_lambda": 1.0},
                 "accuracy and ECE of CoOp + C-TPT (its ATFD rises by construction)"),
        Exercise("Only the single, generic and misleading sets, with more random subsets.",
                 {"template_sets": ["single", "generic", "misleading"], "n_subsets": 50},
                 "how wide the intervals over template choice become"),
    ],
    "finetuning": [
        Exercise("Fine-tune longer.", {"budget": 24000},
                 "whether a longer run changes which recipe keeps detection"),
        Exercise("Start from a parent trained on the LAION-like source.",
                 {"parents": ["zoo:clip-convnext-laion-100k"]},
                 "whether the recipes rank the same for another training source"),
        Exercise("Judge the claims with the energy score.",
                 {"score": "energy", "alphas": [0, 0.1, 0.3, 0.5, 0.7, 1]},
                 "which verdicts depend on the detection score"),
    ],
    "curation": [
        Exercise("A stricter alignment filter, with CLIPs trained long enough to learn.",
                 {"curations": ["random", "alignment"], "keep_fractions": [0.5, 0.3, 0.25],
                  "sizes": [2000, 5000],
                  "budget": 60000},
                 "whether the residuals move with the filter's threshold"),
        Exercise("Train every CLIP longer.", {"budget": 60000},
                 "whether the verdicts hold when every CLIP learns more"),
        Exercise("Train ViT CLIPs on three sizes.",
                 {"arch": "vit", "budget": 60000, "sizes": [2000, 4000, 6000], "pool_size": 30000},
                 "whether the curation effect depends on the image tower"),
    ],
    "appendix_world": [
        Exercise("Show four example images per set.", {"n_examples": 4},
                 "the images of each shift and OOD set"),
        Exercise("Estimate the factor frequencies from fewer samples.",
                 {"n_factor_samples": 500},
                 "how noisy the frequencies become"),
    ],
}


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
    from clipsafety import book

    params = book.get_chapter(chapter).parameters()
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
        '<table class="table clipsafety-params"><thead><tr><th>parameter</th><th>type</th>'
        f"<th>default</th><th>meaning</th></tr></thead><tbody>{rows}</tbody></table>"
        "<p>Example commands:</p><pre>" + _cell("\n".join(cmds)) + "</pre></div>")


def try_it(chapter: str):
    """The "Try it" section that ends ``chapter``: its exercises and its rerun box."""
    from IPython.display import HTML

    items = []
    for ex in EXERCISES.get(chapter, []):
        changed = ", ".join(f"<code>{_cell(k)}</code>" for k in ex.params)
        items.append(f"<li><p>{_cell(ex.task)} Changes {changed}; look at {_cell(ex.look_for)}."
                     f"</p><pre>{_cell(command(chapter, ex.params))}</pre></li>")
    examples = [command(chapter, ex.params) for ex in EXERCISES.get(chapter, [])]
    return HTML('<section class="clipsafety-try-it"><h2>Try it</h2>'
                "<p>Exercises for a laptop (each runs in minutes on the zoo) from the "
                "repository's root; the command re-executes this chapter and rebuilds the site."
                f"</p><ol>{''.join(items)}</ol>" + rerun_box(chapter, examples) + "</section>")


def summary_text(table) -> str:
    """Markdown: what a chapter's claims table says, counted per kind of evidence."""
    from clipsafety import claims

    if table is None or not len(table):
        return "This chapter records no claims."
    n = table["claim_id"].nunique()
    parts = []
    for source in claims.SOURCES:
        rows = table[table["source"] == source]
        tested = rows[~rows["verdict"].isin(claims.UNTESTED)]
        if not len(tested):
            parts.append(f"{source}: not testable here")
            continue
        k = int((tested["verdict"] == claims.REPRODUCED).sum())
        parts.append(f"{source}: {k} of {len(tested)} reproduced")
    return (f"**What this chapter found.** Of the {n} claim{'s' if n != 1 else ''} it tests — "
            + "; ".join(parts) + ". Every verdict, with its effect and interval, is at the end "
            "of the page; the findings page sets them beside the other chapters'.")


def glue_summary(table) -> None:
    """Glue :func:`summary_text` as ``summary`` (pasted at the top of the chapter)."""
    from IPython.display import Markdown
    from myst_nb import glue

    glue("summary", Markdown(summary_text(table)), display=False)


#: verdict -> (badge colour, text colour) of the findings matrix
BADGES = {"reproduced": ("#2ca02c", "white"), "not reproduced": ("#d62728", "white"),
          "not testable": ("#e0e0e0", "#333"), "built in": ("#6b7b8c", "white")}


def _effect(evidence: str, limit: int = 110) -> str:
    """The lead of an evidence text: its first clause (the effect and its interval)."""
    lead = str(evidence).split("; ")[0].split(". Built into")[0]
    return lead if len(lead) <= limit else lead[: limit - 1].rstrip() + "…"


def findings_html(table, page_of: dict | None = None) -> str:
    """The findings matrix as an HTML table that wraps to the text column: one row per claim
    (grouped by chapter, linked to its page), one column per kind of evidence, each cell the
    verdict, the effect with its interval, and the full evidence on hover and unfolded.
    ``table``: :func:`clipsafety.evidence.findings_table`."""
    from clipsafety import claims

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
    """Markdown: the landing page's first words, counted from the findings table."""
    from clipsafety import claims

    if table is None or not len(table):
        return ("**No chapter has recorded its results yet**, so there is nothing to report: "
                "`make book` runs every chapter, then this page.")
    parts = []
    for kind in claims.SOURCES:
        rows = table[(table["source_kind"] == kind) & ~table["verdict"].isin(claims.UNTESTED)]
        if len(rows):
            k = int((rows["verdict"] == claims.REPRODUCED).sum())
            parts.append(f"on {kind}, {k} of {len(rows)} tested claims reproduce")
    n = table.groupby(["chapter", "claim_id"]).ngroups
    return (f"**In short.** {n} claims in {table['chapter'].nunique()} chapters; "
            + "; ".join(parts) + ". Where a claim does not reproduce, its chapter says why.")
