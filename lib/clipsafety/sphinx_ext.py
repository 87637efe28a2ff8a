"""A small Sphinx extension for the book (``_config.yml``: ``sphinx.extra_extensions``).

- Every page loads each script once. sphinx-thebe adds its configuration script
  (``const THEBE_JS_URL = ...``) each time Sphinx reads the sources, and Jupyter Book reads
  them twice, so every page declared the constant twice and logged a SyntaxError.
- Every page gets the book's stylesheet (``book/_assets/clipsafety.css``, written by the
  runner): tables that scroll inside the text column, the findings matrix, the rerun box.
- Light first loads: the vega bundle and sphinx-design's files are linked only from pages
  that use them; after the build, the theme's 1.5 MB SVG-icon script (Font Awesome's
  ``fontawesome.js``) is replaced by a stub, since the theme's stylesheet already draws the
  same icons with its webfonts, and the source maps nobody loads are removed.
- Code folds once per section: the hidden code cells of a section (tag ``hide-input``) are
  gathered into one fold at the end of the section's own text, without JavaScript
  (``<details>``); their outputs stay where they are.
- Statements about the book itself are computed: ``{clipsafety-chapters}`` lists the table
  of contents (each chapter with its study's ``ABOUT``), ``{clipsafety-build-times}`` the
  chapters' run times in this copy's build, ``{clipsafety-workshop-timings}`` the measured run
  times of the exercises (``book/workshop_timings.csv``), and a chapter page built with
  parameters other than its defaults says so at its top. The build's record is
  ``book/chapters/provenance.json``, written by the runner (:mod:`clipsafety.book.site`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from sphinx.transforms.post_transforms import SphinxPostTransform

#: the build's record, relative to the book's source folder (clipsafety.book.site writes it)
RECORD = "chapters/provenance.json"
#: the measured run times of the exercises, relative to the book's source folder
WORKSHOP_TIMINGS = "workshop_timings.csv"
#: what replaces the theme's SVG-icon script (its stylesheet draws the icons with webfonts)
ICON_STUB = ("/* clipsafety: Font Awesome's SVG-icon script is left out (1.5 MB); the theme's "
             "stylesheet draws the same icons with its webfonts. */\n")


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        # the copies differ in how they say "no file" (None or ""): compare what the tag says
        key = (str(getattr(js, "filename", js) or ""),
               repr(sorted(getattr(js, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    scripts[:] = kept


def _filename(asset) -> str:
    return str(getattr(asset, "filename", asset) or "")


def _only_where_used(app, pagename, templatename, context, doctree):
    """Drop the vega bundle from pages without a chart, sphinx-design's files from pages
    without a design element."""
    body = context.get("body", "")
    unused = set()
    if 'class="clipsafety-chart"' not in body:
        unused.add("vega-bundle.js")
    if 'class="sd-' not in body and " sd-" not in body:
        unused |= {"sphinx-design.min.css", "design-tabs.js"}
    for key in ("script_files", "css_files"):
        files = context.get(key)
        if files:
            files[:] = [f for f in files
                        if _filename(f).split("?")[0].rsplit("/", 1)[-1] not in unused]


def _trim_theme(app, exception):
    """After a successful HTML build: the SVG-icon script becomes a stub, source maps go."""
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    icons = static / "scripts" / "fontawesome.js"
    if icons.is_file():
        icons.write_text(ICON_STUB)
    for folder in (static / "scripts", static / "styles"):
        for f in folder.glob("*.map"):
            f.unlink()


# --- one code fold per section --------------------------------------------------------------


def _own_section(node):
    parent = node.parent
    while parent is not None and not isinstance(parent, nodes.section):
        parent = parent.parent
    return parent


def fold_section_code(doctree) -> None:
    """Gather each section's hidden code cells (myst-nb's ``hide-input``) into one fold at
    the end of the section's own text (before its first subsection)."""
    try:
        from myst_nb.sphinx_ import HideCodeCellNode
    except ImportError:  # pragma: no cover - myst-nb is part of Jupyter Book
        return
    groups: dict[int, tuple[nodes.Element, list]] = {}
    for cell in list(doctree.findall(nodes.container)):
        if cell.get("nb_element") != "cell_code" or cell.get("hide_mode") != "input":
            continue
        if not cell.children or cell.children[0].get("nb_element") != "cell_code_source":
            continue
        section = _own_section(cell)
        if section is None:
            continue
        groups.setdefault(id(section), (section, []))[1].append(cell)
    for section, cells in groups.values():
        n = len(cells)
        fold = HideCodeCellNode(
            prompt_show=f"Show the code of this section ({n} cell{'s' if n > 1 else ''})",
            prompt_hide="Hide the code of this section")
        fold["classes"] += ["above-input", "clipsafety-section-code"]
        for cell in cells:
            source = cell.children[0]
            cell.remove(source)
            cell["hide_mode"] = ""  # nothing left for myst-nb to hide
            holder = nodes.container(classes=["cell", "clipsafety-section-code-cell"])
            holder.append(source)
            fold.append(holder)
            if not cell.children:
                cell.parent.remove(cell)
        at = next((i for i, child in enumerate(section.children)
                   if isinstance(child, nodes.section)), len(section.children))
        section.insert(at, fold)


class FoldSectionCode(SphinxPostTransform):
    """:func:`fold_section_code`, before myst-nb wraps each hidden input in a fold of its own
    (its ``HideInputCells``, priority 199)."""

    default_priority = 198
    formats = ("html",)

    def run(self, **kwargs):
        fold_section_code(self.document)


# --- statements about the book, computed ----------------------------------------------------


def read_record(srcdir) -> dict | None:
    """The build's record (``book/chapters/provenance.json``), ``None`` when absent."""
    path = Path(srcdir) / RECORD
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _seconds(s: float) -> str:
    s = float(s)
    if s < 90:
        return f"{s:.0f} s"
    return f"{s / 60:.1f} min"


class _Markdown(Directive):
    """A directive whose content is MyST Markdown made by :meth:`markdown`."""

    has_content = False

    def markdown(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def run(self):
        env = self.state.document.settings.env
        self.env = env
        node = nodes.container(classes=[self.name.replace("clipsafety-", "clipsafety-book-")])
        text = self.markdown()
        self.state.nested_parse(StringList(text.splitlines(), source=env.docname),
                                self.content_offset, node)
        return [node]


class ChapterList(_Markdown):
    """``{clipsafety-chapters}``: the pages of the table of contents after the landing page,
    by part, each chapter with its study's one line (``ABOUT``); pages not built are left
    out."""

    def markdown(self) -> str:
        from clipsafety import contents

        found = self.env.found_docs
        lines, caption = [], None
        for part, file in contents.toc_entries()[1:]:  # the landing page leads anyway
            if file not in found or file == self.env.docname:
                continue
            if part != caption:
                lines += ["", f"**{part}**", ""] if part else [""]
                caption = part
            name = file.split("/", 1)[1] if file.startswith("chapters/") else None
            about = contents.about(name) if name else ""
            lines.append(f"- {{doc}}`/{file}`" + (f": {about}" if about else ""))
        return "\n".join(lines).strip() + "\n"


class BuildTimes(_Markdown):
    """``{clipsafety-build-times}``: how long each chapter took in the build of this copy
    (from the build's record), with the machine and the commit; a note where there is no
    record."""

    def markdown(self) -> str:
        self.env.note_dependency(str(Path(self.env.srcdir) / RECORD))
        rec = read_record(self.env.srcdir)
        rows = [c for c in (rec or {}).get("chapters", []) if c.get("seconds") is not None]
        if not rows:
            return ("No chapter was executed in the build of this copy, so there are no run "
                    "times to show here.\n")
        total = sum(c["seconds"] for c in rows)
        slow = max(rows, key=lambda c: c["seconds"])
        hw = rec.get("hardware", {})
        defaults = all(not c.get("changed") for c in rows)
        out = [
            f"In the build of this copy (commit `{rec.get('commit', 'unknown')[:10]}`, built "
            f"{rec.get('built', '')}, on {hw.get('cpu', 'an unknown CPU')} with "
            f"{hw.get('cores', '?')} cores, GPU: {hw.get('gpu', 'none')}), executing the "
            f"{len(rows)} chapters took {_seconds(total)} of chapter time in all"
            f"{' at their default parameters' if defaults else ''}; the longest was "
            f"{{doc}}`/chapters/{slow['name']}` at {_seconds(slow['seconds'])}. A chapter's "
            "time includes scoring the models on its sets unless the prediction store already "
            "held them (a first build on a fresh machine scores every model once), and "
            "training, for the chapters that train.",
            "",
            "| chapter | parameters | run time |",
            "|---|---|---|",
        ]
        for c in rows:
            changed = ", ".join(f"`{k}={v!r}`" for k, v in (c.get("changed") or {}).items())
            out.append(f"| {{doc}}`/chapters/{c['name']}` | {changed or 'defaults'} | "
                       f"{_seconds(c['seconds'])} |")
        return "\n".join(out) + "\n"


class WorkshopTimings(_Markdown):
    """``{clipsafety-workshop-timings}``: the measured run times of exercises
    (``book/workshop_timings.csv``: chapter, task, parameters, seconds, and how they were
    measured)."""

    def markdown(self) -> str:
        path = Path(self.env.srcdir) / WORKSHOP_TIMINGS
        self.env.note_dependency(str(path))
        if not path.is_file():
            return "No exercise has been timed yet.\n"
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        out = [f":::{{admonition}} The {len(rows)} timed exercises (show the table)",
               ":class: dropdown", "",
               "| Chapter | Exercise | Parameters | Run time | Measured |", "|---|---|---|---|---|"]
        for r in rows:
            out.append(f"| {{doc}}`/chapters/{r['chapter']}` | {r['task']} | `{r['params']}` | "
                       f"{_seconds(r['seconds'])} | {r['measured']} |")
        return "\n".join(out) + "\n:::\n"


def _rerun_banner(app, doctree):
    """A chapter page built with parameters other than its defaults says so at its top."""
    docname = app.env.docname
    if not docname.startswith("chapters/"):
        return
    app.env.note_dependency(str(Path(app.env.srcdir) / RECORD))
    rec = read_record(app.env.srcdir) or {}
    name = docname.split("/", 1)[1]
    entry = next((c for c in rec.get("chapters", []) if c.get("name") == name), None)
    changed = (entry or {}).get("changed") or {}
    if not changed:
        return
    note = nodes.admonition(classes=["attention", "clipsafety-rerun-banner"])
    note += nodes.title(text="Built with non-default parameters")
    para = nodes.paragraph(text="This page was built with parameters other than the chapter's "
                                "defaults, so its numbers and verdicts are not the book's: ")
    for i, (k, v) in enumerate(changed.items()):
        para += nodes.literal(text=f"{k}={v!r}")
        para += nodes.Text(", " if i < len(changed) - 1 else ".")
    note += para
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    at = 1 if section.children and isinstance(section.children[0], nodes.title) else 0
    section.insert(at, note)


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("html-page-context", _only_where_used, priority=901)
    app.connect("build-finished", _trim_theme)
    app.connect("doctree-read", _rerun_banner)
    app.add_post_transform(FoldSectionCode)
    app.add_directive("clipsafety-chapters", ChapterList)
    app.add_directive("clipsafety-build-times", BuildTimes)
    app.add_directive("clipsafety-workshop-timings", WorkshopTimings)
    app.add_css_file("clipsafety.css")
    app.setup_extension("clipsafety.sphinx_claims")  # the methods page's list of claims
    return {"parallel_read_safe": True, "parallel_write_safe": True}
