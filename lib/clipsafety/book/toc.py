"""The book's chapters: where they live, the order of the table of contents, and discovery.

A chapter is ``analyses/<name>.py`` (jupytext percent format, a cell tagged ``parameters``)
with its study ``lib/clipsafety/studies/<name>.py``; the table of contents
(``book/_toc.yml``) orders them. Executed notebooks land in ``book/chapters/<name>.ipynb``,
the runner's state beside them in ``book/chapters/.state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clipsafety import contents
from clipsafety.contents import SUMMARY_CHAPTERS, parse_parameters, toc_chapters
from clipsafety.errors import ParameterError
from clipsafety.files import REPO_ROOT as ROOT

ANALYSES = contents.ANALYSES
BOOK = contents.BOOK
CHAPTERS = BOOK / "chapters"
STATE = CHAPTERS / ".state"
# not "_static": Jupyter Book 1 adds a script tag for every .js file found under _static
STATIC = BOOK / "_assets"
#: the library (its files enter every chapter's cache key)
LIB = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


@dataclass
class Chapter:
    name: str
    source: Path

    def notebook(self):
        """The source as a notebook papermill can parameterise."""
        return contents.read_notebook(self.source)

    def parameters(self) -> dict[str, dict]:
        """Declared parameters: name -> {"default": value, "type": type name, "help": str}.

        Read with Python's own parser from the cell tagged ``parameters``
        (:func:`clipsafety.contents.parse_parameters`). The type is the annotation's
        (``n: int = 3``) or the default's; the help is the line's comment.
        """
        return contents.declared_parameters(self.source)

    def defaults(self) -> dict:
        """Each declared parameter's default value (the book's own run)."""
        return {k: v["default"] for k, v in self.parameters().items()}


def chapters() -> list[Chapter]:
    """All chapters: the table of contents' order first, then any other analyses/*.py."""
    found = {p.stem: p for p in sorted(contents.ANALYSES.glob("*.py"))
             if not p.name.startswith("_")}
    order = [n for n in toc_chapters() if n in found]
    order += [n for n in found if n not in order]
    return [Chapter(n, found[n]) for n in order]


def get_chapter(name: str) -> Chapter:
    for ch in chapters():
        if ch.name == name:
            return ch
    valid = ", ".join(c.name for c in chapters())
    raise ParameterError(f"no chapter named {name!r} in analyses/. Valid chapters: {valid}.")


__all__ = ["ANALYSES", "BOOK", "CHAPTERS", "DATA", "LIB", "ROOT", "STATE", "STATIC",
           "SUMMARY_CHAPTERS", "Chapter", "chapters", "get_chapter", "parse_parameters",
           "toc_chapters"]
