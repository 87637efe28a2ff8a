"""The library's layout keeps its one-way flow (book page 'How the book is built')."""

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib" / "clipsafety"


def _imports(path: Path) -> set[str]:
    """Every clipsafety module a file imports (absolute, ``from x import y`` as x and x.y)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in out if m.startswith("clipsafety")}


def _modules(folder: Path):
    return sorted(p for p in folder.rglob("*.py"))


#: the edges above the studies: the chapter runner (it validates chapter parameters against
#: the studies' vocabularies) and the command line
ABOVE_STUDIES = {"book.py", "cli.py", "__main__.py"}


def test_nothing_below_the_studies_imports_them():
    offenders = [(p.relative_to(LIB).as_posix(), sorted(m for m in _imports(p)
                                                         if m.startswith("clipsafety.studies")))
                 for p in _modules(LIB) if "studies" not in p.parts
                 and p.relative_to(LIB).as_posix() not in ABOVE_STUDIES]
    assert [o for o in offenders if o[1]] == []


def test_studies_never_import_each_other():
    studies = [p for p in _modules(LIB / "studies") if p.name != "__init__.py"]
    assert {p.stem for p in studies} >= {"landscape", "factors", "shape_bias"}
    for p in studies:
        others = {f"clipsafety.studies.{q.stem}" for q in studies if q != p}
        assert not (_imports(p) & others), (p.name, _imports(p) & others)


def test_claims_module_holds_no_claim_of_the_paper():
    """claims.py is the verdict machinery; every Claim(...) lives in a study module."""
    tree = ast.parse((LIB / "claims.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and getattr(n.func, "id", "") == "Claim"]
    assert calls == []
    assert not (LIB / "tables.py").exists()


def test_group_id_literals_live_in_groups_only():
    """A group id is spelled once: in clipsafety.groups (plus the zoo plan, which is data)."""
    hits = []
    for p in _modules(LIB):
        if p.name in ("groups.py", "style.py") or p.parent.name == "zoo":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Constant) and node.value in ("clip-zeroshot", "clip-ft-direct",
                                                                  "clip-ft-2stage"):
                hits.append((p.relative_to(LIB).as_posix(), node.lineno))
    assert hits == []


def test_no_docstring_cites_design_files_outside_the_repo():
    hits = [p.relative_to(LIB).as_posix() for p in _modules(LIB)
            if "METHODS.md" in p.read_text() or "ARCHITECTURE.md" in p.read_text()]
    assert hits == []
