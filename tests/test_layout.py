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


#: the edge above the studies: the command line
ABOVE_STUDIES = {"cli.py", "__main__.py"}


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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(LIB.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """clipsafety module -> the clipsafety modules it imports, at the top of the file or inside
    a function alike (a lazy import is an arrow too), ``from pkg import sub`` resolved to the
    submodule and relative imports to absolute ones."""
    mods = {_module_name(p): p for p in _modules(LIB)}

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rpartition(".")[0]
        out = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Import):
                out |= {resolve(a.name) for a in node.names if a.name.startswith("clipsafety")}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                if not base.startswith("clipsafety"):
                    continue
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    out.add(sub if sub in mods else resolve(base))
        graph[m] = out - {None, m}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_finds_a_planted_cycle():
    """The cycle finder itself: a two-module and a three-module circle are found, a chain is
    not."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"g"}, "g": set()}
    assert sorted(_cycles(graph)) == [["a", "b"], ["c", "d", "e"]]


def test_no_import_circle_in_the_library():
    """No module reaches itself through imports, lazy ones included: data flows one way."""
    graph = _import_graph()
    assert "clipsafety.book.executor" in graph and graph["clipsafety.book.executor"]
    assert _cycles(graph) == []


def test_nothing_outside_the_runner_imports_it():
    """The book runner (clipsafety.book) is the top of the stack: no library module outside its
    package, and no chapter, imports it."""
    graph = _import_graph()
    inside = {m for m in graph if m == "clipsafety.book" or m.startswith("clipsafety.book.")}
    offenders = sorted(m for m, deps in graph.items() if m not in inside and deps & inside)
    assert offenders == []
    chapters = LIB.parents[1] / "analyses"
    assert [p.name for p in sorted(chapters.glob("*.py"))
            if any(m.startswith("clipsafety.book") for m in _imports(p))] == []


def test_shared_error_types_sit_below_their_users():
    """ParameterError and TemplateSetError live in clipsafety.errors, which imports nothing of
    the library; heads no longer reaches into the model registry for its error type."""
    graph = _import_graph()
    assert graph["clipsafety.errors"] == set()
    assert not any(m.startswith("clipsafety.models") for m in graph["clipsafety.heads"])
