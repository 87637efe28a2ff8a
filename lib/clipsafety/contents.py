"""What the book holds: its table of contents, each chapter's declared parameters, and what
each chapter's study declares beside its claims (value rules for the parameters, exercises).

A chapter is two files and one line:

- ``analyses/<name>.py``: the notebook (jupytext percent format) with a cell tagged
  ``parameters``; it orchestrates and explains;
- ``lib/clipsafety/studies/<name>.py``: its tables, claims and assessment, and

  - ``PARAMETER_RULES``: parameter name -> rule (:mod:`clipsafety.rules`), one for every
    declared parameter;
  - ``EXERCISES``: the "Try it" exercises (:class:`clipsafety.rules.Exercise`);
  - ``ABOUT``: one line on what the chapter asks, for the findings page's chapter list;
- ``book/_toc.yml``: the line ``- file: chapters/<name>``.

The book runner (:mod:`clipsafety.book`) and the pages (:mod:`clipsafety.pages`) collect
rules and exercises from here; nothing else lists chapters. This module sits below both and
reads the studies by name (``importlib``), so neither the runner nor the pages import a study.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from clipsafety.files import REPO_ROOT

ANALYSES = REPO_ROOT / "analyses"
BOOK = REPO_ROOT / "book"
TOC = BOOK / "_toc.yml"

#: chapters that read the other chapters' recorded outputs: executed last, and re-executed
#: whenever those outputs change
SUMMARY_CHAPTERS = ("findings", "appendix_world", "card")
#: pages of the table of contents that are written by the runner, not executed
GENERATED_PAGES = ("provenance",)


def _toc() -> dict:
    import yaml

    return yaml.safe_load((BOOK / "_toc.yml").read_text())


def toc_entries() -> list[tuple[str, str]]:
    """``(part caption, file)`` of every entry of ``book/_toc.yml`` in order; the landing
    page (``root``) first, with the caption ``""``."""
    toc = _toc()
    out = [("", toc["root"])] if toc.get("root") else []

    def walk(node, caption):
        if isinstance(node, dict):
            caption = node.get("caption", caption)
            if isinstance(node.get("file"), str):
                out.append((caption, node["file"]))
            for k, v in node.items():
                if k not in ("file", "caption"):
                    walk(v, caption)
        elif isinstance(node, list):
            for v in node:
                walk(v, caption)

    walk(toc.get("parts", toc.get("chapters", [])), "")
    return out


def toc_chapters() -> list[str]:
    """Chapter names in the order of ``book/_toc.yml`` (entries ``chapters/<name>``, the
    landing page included; the generated provenance page left out)."""
    names = [f.split("/", 1)[1] for _, f in toc_entries() if f.startswith("chapters/")]
    return [n for n in names if n not in GENERATED_PAGES]


def claim_chapters() -> list[str]:
    """The chapters whose claims the findings page reads, in table-of-contents order: every
    chapter whose study declares ``CLAIMS`` (the summary chapters read, never judge)."""
    return [n for n in toc_chapters()
            if n not in SUMMARY_CHAPTERS and getattr(study(n), "CLAIMS", None) is not None]


def all_claims():
    """Every claim the book judges, from the studies' ``CLAIMS`` (never typed twice): one row
    per claim with its chapter, kind, section, direction, the groups it compares, what it is
    conditioned on, its test and its home. A claim id declared by two chapters, or whose home is
    not the chapter declaring it, is an error (one claim, one home)."""
    import pandas as pd

    rows, seen = [], {}
    for ch in claim_chapters():
        for c in study(ch).CLAIMS.values():
            if c.claim_id in seen:
                raise ValueError(f"claim {c.claim_id!r} is declared by {seen[c.claim_id]!r} and "
                                 f"{ch!r}; a claim has one home (show it in the other chapter).")
            if c.home != ch:
                raise ValueError(f"claim {c.claim_id!r} of chapter {ch!r} names home {c.home!r}.")
            seen[c.claim_id] = ch
            rows.append({"chapter": ch, "claim_id": c.claim_id, "kind": c.kind,
                         "section": c.section, "claim": c.text, "direction": c.direction,
                         "compares": c.compares, "conditioned_on": c.conditioned_on,
                         "test": c.test})
    return pd.DataFrame(rows)


def claims_markdown() -> str:
    """MyST Markdown for the methods page: every claim with its test, by kind (the paper's by
    section, then the premise, then the book's extensions), read from :func:`all_claims`."""
    from clipsafety import claims as C

    t = all_claims()
    order = {"abstract": 0, "4.1": 1, "4.2": 2, "5": 3, "6": 4}
    lines = []
    for kind in C.CLAIM_KINDS:
        part = t[t["kind"] == kind]
        if part.empty:
            continue
        part = part.assign(_o=part["section"].map(order).fillna(9)).sort_values("_o", kind="stable")
        name = C.CLAIM_KIND_NAMES[kind]
        lines += [f"**{name[0].upper() + name[1:]}**", ""]
        for r in part.itertuples():
            where = f"§{r.section}, " if r.section and r.section not in ("premise",) else ""
            sides = {"greater": "directional (larger)", "less": "directional (smaller)",
                     "differs": "two-sided"}[r.direction]
            lines.append(f"- *{r.claim}* ({where}{{doc}}`chapters/{r.chapter}`; {sides}"
                         + (f"; compares {r.compares}" if r.compares else "")
                         + (f"; conditioned on {r.conditioned_on}" if r.conditioned_on else "")
                         + f"). Test: {(r.test or 'stated in the chapter').rstrip('.')}.")
        lines.append("")
    return "\n".join(lines)


def study(name: str) -> ModuleType | None:
    """The study module of chapter ``name`` (``clipsafety.studies.<name>``), or ``None``."""
    if not (Path(__file__).parent / "studies" / f"{name}.py").is_file():
        return None
    return importlib.import_module(f"clipsafety.studies.{name}")


def parameter_rules(name: str) -> dict:
    """Parameter name -> rule of chapter ``name`` (its study's ``PARAMETER_RULES``)."""
    return dict(getattr(study(name), "PARAMETER_RULES", {}) or {})


def exercises(name: str) -> list:
    """The "Try it" exercises of chapter ``name`` (its study's ``EXERCISES``)."""
    return list(getattr(study(name), "EXERCISES", []) or [])


def about(name: str) -> str:
    """One line on what chapter ``name`` asks (its study's ``ABOUT``), ``""`` if none."""
    return str(getattr(study(name), "ABOUT", "") or "")


def source(name: str) -> Path:
    """The notebook source of chapter ``name``."""
    return ANALYSES / f"{name}.py"



def parse_parameters(source: str) -> dict[str, dict]:
    """Parameters declared in a parameters cell's source: name -> {"default": value, "type":
    type name, "help": str}.

    Read with Python's own parser (papermill's regex-based inspection misreads lines such as
    ``x = ""  # "" = none``). The type is the annotation's (``n: int = 3``) or the default's;
    the help is the line's comment.
    """
    import ast
    import io
    import tokenize

    comments = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, annotation = node.targets[0], None
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, annotation = node.target, node.annotation
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        try:
            default = ast.literal_eval(node.value)
        except ValueError:
            default = ast.get_source_segment(source, node.value)
        if annotation is not None:
            tname = ast.get_source_segment(source, annotation)
        else:
            tname = type(default).__name__ if default is not None else "None"
        help_ = comments.get(node.end_lineno, "")
        out[target.id] = {"default": default, "type": tname, "help": help_}
    return out


def read_notebook(path: Path):
    """A chapter source as a notebook that papermill can parameterise (jupytext)."""
    import jupytext

    nb = jupytext.read(path)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3",
                                          "language": "python"})
    nb.metadata.setdefault("papermill", {})  # papermill's parameterize_notebook writes here
    for cell in nb.cells:  # papermill expects every cell to carry a tags list
        cell.metadata.setdefault("tags", [])
    return nb


def declared_parameters(path: Path) -> dict[str, dict]:
    """The parameters declared in the cell tagged ``parameters`` of the chapter at ``path``."""
    nb = read_notebook(path)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    return parse_parameters(cells[0].source) if cells else {}


def parameters(name: str) -> dict[str, dict]:
    """The declared parameters of chapter ``name`` (``analyses/<name>.py``)."""
    p = source(name)
    if not p.is_file():
        raise KeyError(f"no chapter named {name!r}: {p} does not exist")
    return declared_parameters(p)


__all__ = ["ANALYSES", "BOOK", "GENERATED_PAGES", "SUMMARY_CHAPTERS", "TOC", "about",
           "claim_chapters", "declared_parameters", "exercises", "parameter_rules", "parameters",
           "parse_parameters", "read_notebook", "source", "study", "toc_chapters", "toc_entries"]
