"""The "Try it" exercises are controlled experiments.

Each exercise changes exactly one parameter against its chapter's defaults; a rerun with
non-default parameters is recorded beside the book's record (never over it); its page says
what differs and shows the before/after table computed from the two records; the site's page
of such a rerun says so at its top. ``make test-full`` executes every exercise against the
book's run of its chapter and checks its page.
"""

import html
import json
import re
import time

import pandas as pd
import pytest
from clipsafety import book, claims, contents, outputs, pages, readable
from clipsafety.book import executor, toc
from conftest import use_book_folders


def exercises():
    return [(c.name, i, ex) for c in book.chapters()
            for i, ex in enumerate(contents.exercises(c.name))]


@pytest.mark.parametrize("name", [c.name for c in book.chapters()])
def test_every_exercise_changes_exactly_one_parameter_against_the_defaults(name):
    ch = book.get_chapter(name)
    defaults = {k: v["default"] for k, v in ch.parameters().items()}
    for ex in contents.exercises(name):
        assert len(ex.params) == 1, f"{name}: {ex.task!r} changes {sorted(ex.params)}"
        (key, value), = ex.params.items()
        assert key in defaults, f"{name}: {key!r} is not a parameter"
        given = book.validate_params(ch, {key: value})[key]
        assert given != defaults[key], f"{name}: {ex.task!r} sets {key} to its default"


# -- the before/after table, from two recorded runs ---------------------------------------

def _judged(estimate: float, verdict: str) -> dict:
    claim = claims.Claim("c1", "CLIP is more robust", section="4.1", home="x")
    j = claims.Judgement(claim, claims.WORLD, verdict, "test", estimate, estimate - 1,
                         estimate + 1, effect="mean difference", scale="points",
                         unit=claims.MODELS, n=(8, 9))
    return j.row()


def _payload(estimate, verdict, params=None, **tables):
    table = claims.claims_table([_judged(estimate, verdict)])
    return {"chapter": "x", "params": params or {},
            "claims": json.loads(table.to_json(orient="records")), "tables": tables}


def _other(estimate: float) -> list:
    claim = claims.Claim("c2", "LAION CLIPs are more robust", section="4.1", home="x")
    j = claims.Judgement(claim, claims.WORLD, claims.REPRODUCED, "test", estimate, estimate - 1,
                         estimate + 1, effect="mean difference", scale="points",
                         unit=claims.MODELS, n=(8, 9))
    return json.loads(claims.claims_table([j.row()]).to_json(orient="records"))


def test_the_table_reads_each_claim_from_the_two_records():
    before = _payload(2.5, claims.REPRODUCED)
    after = _payload(-0.75, claims.INCONCLUSIVE, {"scale": "linear"})
    t = pages.comparison_table(before, after)
    assert len(t) == 1
    row = t.iloc[0]
    assert row["quantity"] == "CLIP is more robust (synthetic world)"
    assert row["before"] == "reproduced, +2.5 [+1.5, +3.5] points"
    assert row["after"] == "inconclusive, -0.8 [-1.8, +0.2] points"
    assert row["changed"] == "yes"
    same = pages.comparison_table(before, _payload(2.5, claims.REPRODUCED))
    assert same.iloc[0]["changed"] == "no"
    # changed quantities first; a claim not testable in either run is left out
    untested = _payload(float("nan"), claims.NOT_TESTABLE)
    assert pages.comparison_table(untested, untested).empty
    both = pages.comparison_table(
        {"claims": _payload(2.5, claims.REPRODUCED)["claims"] + _other(1.0)},
        {"claims": _payload(2.5, claims.REPRODUCED)["claims"] + _other(3.0)})
    assert list(both["changed"]) == ["yes", "no"]
    assert both.iloc[0]["before"] == "reproduced, +1.0 [+0.0, +2.0] points"
    assert both.iloc[0]["after"] == "reproduced, +3.0 [+2.0, +4.0] points"


def test_an_exercise_compares_what_it_measures(monkeypatch):
    """The exercise's ``measures`` are computed on both records; a quantity only one run has
    shows a dash on the other side."""
    before = {"claims": [], "tables": {"ece": [{"model": "a", "ece": 0.0412}], "n": 3}}
    after = {"claims": [], "tables": {"ece": [{"model": "a", "ece": 0.0251},
                                              {"model": "b", "ece": 0.5}], "n": 3}}

    def mean_ece(p):
        return {f"ECE of {r['model']}": r["ece"] for r in p["tables"]["ece"]}

    t = pages.comparison_table(before, after, mean_ece).set_index("quantity")
    assert t.loc["ECE of a", "before"] == "0.0412" and t.loc["ECE of a", "after"] == "0.0251"
    assert t.loc["ECE of b", "before"] == "–" and t.loc["ECE of b", "after"] == "0.5"
    assert list(t["changed"]) == ["yes", "only in this run"]
    scalars = pages.comparison_table(before, after)  # no claims, no measures: the scalars
    assert scalars.to_dict("records") == [
        {"quantity": "n", "before": "3", "after": "3", "changed": "no"}]


def test_the_studies_measures_read_the_recorded_tables():
    """The measures the exercises declare (rules.group_means, rules.table_values, the card's)
    compute their numbers from a recorded payload."""
    from clipsafety import rules
    from clipsafety.studies import card as card_study

    payload = {"claims": [], "tables": {
        "averages": [{"model": "a", "group": "clip-zeroshot", "auroc": 0.8},
                     {"model": "b", "group": "clip-zeroshot", "auroc": 0.6},
                     {"model": "c", "group": "standard", "auroc": 0.7}],
        "signature": [{"shift": "synth_r", "mean": 0.0123}]}}
    means = rules.group_means("averages", {"auroc": "AUROC"}, claims=False)(payload)
    assert means == {"AUROC: zero-shot CLIP, mean of 2 models": pytest.approx(0.7),
                     "AUROC: standard ImageNet, mean of 1 model": pytest.approx(0.7)}
    payload["tables"]["averages"][0]["auroc"] = 0.9
    assert rules.group_means("averages", {"auroc": "AUROC"}, claims=False)(payload)[
        "AUROC: zero-shot CLIP, mean of 2 models"] == pytest.approx(0.75)
    values = rules.table_values("signature", ("shift",), {"mean": "ER (points)"}, factor=100)(payload)
    assert values == {"ER (points): synth r": pytest.approx(1.23)}
    assert rules.group_means("missing", {"x": "x"}, claims=False)(payload) == {}
    card = {"tables": {"card": {"model": "zoo:m", "properties": [{"id": "shape", "title": "Shape bias",
            "values": [{"label": "shape bias", "dataset": "synth:cue-conflict", "value": 0.4321,
                        "lo": 0.41, "hi": 0.45, "unit": "fraction",
                        "placement": {"kinds": {"zero-shot CLIP": {"percentile": 62.5, "n": 24}}}}]}]}}}
    assert card_study.card_measures(card) == {
        "model": "zoo:m",
        "Shape bias: shape bias (synth:cue-conflict)": "0.4321 [0.41, 0.45] fraction",
        "Shape bias: shape bias (synth:cue-conflict): percentile among 24 zero-shot CLIP": 62.5}


def test_the_run_the_kernel_is_told_and_bad_values(monkeypatch):
    monkeypatch.delenv(outputs.RUN_ENV, raising=False)
    assert outputs.this_run() == {"changed": {}, "rerun": False, "defaults": {}}
    monkeypatch.setenv(outputs.RUN_ENV, outputs.run_env({"n": 5}, True, {"n": 3}))
    assert outputs.this_run() == {"changed": {"n": 5}, "rerun": True, "defaults": {"n": 3}}
    monkeypatch.setenv(outputs.RUN_ENV, outputs.run_env({}, True))  # the defaults: the book's
    assert outputs.this_run()["rerun"] is False
    monkeypatch.setenv(outputs.RUN_ENV, "{not json")
    with pytest.raises(ValueError, match="CLIPSAFETY_RUN"):
        outputs.this_run()
    with pytest.raises(ValueError, match="book's record"):
        outputs.rerun_path("x", {})


def test_a_book_rerun_page_compares_with_the_record(tmp_path, monkeypatch):
    """:func:`pages.comparison` on a rerun: the parameters that differ, the exercise, and the
    table whose before is the book's recorded estimate and whose after is the rerun's."""
    monkeypatch.setenv(outputs.OUTPUTS_ENV, str(tmp_path))
    monkeypatch.setenv(outputs.RUN_ENV, outputs.run_env({}, False))
    before = _payload(2.5, claims.REPRODUCED)
    outputs.record("factors", pd.DataFrame(before["claims"]))
    assert json.loads(outputs.path("factors").read_text())["params"] == {}
    assert pages.comparison("factors") == ""  # the book's own run compares with nothing
    changed = {"scale": "linear"}
    monkeypatch.setenv(outputs.RUN_ENV, outputs.run_env(changed, True))
    book_bytes = outputs.path("factors").read_bytes()
    outputs.record("factors", pd.DataFrame(_payload(-0.75, claims.INCONCLUSIVE)["claims"]))
    assert outputs.path("factors").read_bytes() == book_bytes  # never over the book's record
    assert outputs.recorded("factors") == outputs.rerun_path("factors", changed)
    assert outputs.recorded("factors").is_file()
    assert outputs.read("factors")["factors"]["params"] == {}
    html = pages.comparison("factors")
    assert "<code>scale</code>: <code>&#x27;logit&#x27;</code> → <code>&#x27;linear&#x27;</code>" in html
    ex = next(e for e in contents.exercises("factors") if e.params == changed)
    assert ex.task in html
    assert ("<td>reproduced, +2.5 [+1.5, +3.5] points</td>"
            "<td>inconclusive, -0.8 [-1.8, +0.2] points</td><td>yes</td>") in html
    assert "1 of 1 quantities changed" in html
    outputs.path("factors").unlink()  # no book record: the page says how to make one
    assert "make chapter NAME=factors" in pages.comparison("factors")


CHAPTER = '''# %% [markdown]
# # A tiny chapter

# %% tags=["parameters"]
n = 3  # how many
scale = 0.5

# %%
from clipsafety import outputs, pages
from IPython.display import HTML, display

outputs.record("tiny", None, n=n, total=n * scale)
display(HTML(pages.comparison("tiny") or "<p>the book's run</p>"))
'''


@pytest.mark.slow
def test_a_rerun_is_recorded_beside_the_books_run_and_its_page_compares(tmp_path, monkeypatch):
    """Two small recorded runs through the runner: the book's run at the defaults, then a
    rerun with n = 5. The rerun's record is its own file; the book's is unchanged; the rerun's
    page shows n 3 -> 5 and total 1.5 -> 2.5, read from the two records."""
    analyses, bk = tmp_path / "analyses", tmp_path / "book"
    analyses.mkdir()
    bk.mkdir()
    (analyses / "tiny.py").write_text(CHAPTER)
    (bk / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapters/tiny\n")
    use_book_folders(monkeypatch, analyses, bk)
    monkeypatch.setenv(outputs.OUTPUTS_ENV, str(tmp_path / "outputs"))
    ch = book.get_chapter("tiny")
    env = {"library": "L", "data": "D", "mirror": True}
    assert book.execute(ch, {"n": 3, "scale": 0.5}, env)[0] == "executed"
    record = tmp_path / "outputs" / "tiny.json"
    first = record.read_bytes()
    assert json.loads(first)["tables"] == {"n": 3, "total": 1.5}
    assert "the book&#x27;s run" in _page(toc.CHAPTERS / "tiny.ipynb") or \
        "the book's run" in _page(toc.CHAPTERS / "tiny.ipynb")
    assert book.execute(ch, {"n": 5, "scale": 0.5}, env)[0] == "executed"
    assert record.read_bytes() == first
    reruns = list((tmp_path / "outputs" / outputs.RERUNS).glob("tiny--*.json"))
    assert len(reruns) == 1 and json.loads(reruns[0].read_text())["tables"]["n"] == 5
    assert json.loads(reruns[0].read_text())["params"] == {"n": 5}
    page = _page(toc.CHAPTERS / "tiny.ipynb")
    assert "<code>n</code>: <code>3</code> → <code>5</code>" in page
    assert "<td>n</td><td>3</td><td>5</td><td>yes</td>" in page
    assert "<td>total</td><td>1.5</td><td>2.5</td><td>yes</td>" in page
    # a whole-book build is the book's run even with overrides: it writes the book's record
    assert executor.execute(ch, {"n": 4, "scale": 0.5}, env, rerun=False)[0] == "executed"
    assert json.loads(record.read_text())["tables"]["n"] == 4


def _page(notebook) -> str:
    nb = json.loads(notebook.read_text())
    return "".join(_text(o) for c in nb["cells"] for o in c.get("outputs", []))


def _text(output) -> str:
    data = output.get("data", {})
    for key in ("text/html", "text/markdown", "text/plain"):
        if key in data:
            v = data[key]
            return "".join(v) if isinstance(v, list) else str(v)
    v = output.get("text", "")
    return "".join(v) if isinstance(v, list) else str(v)


def test_the_sites_page_of_a_rerun_lists_its_parameters_at_its_top(tmp_path):
    """The Sphinx extension puts a notice under the title of a chapter whose build record
    holds parameters other than its defaults, naming each with its value."""
    from types import SimpleNamespace

    from clipsafety import sphinx_ext
    from docutils import nodes
    from docutils.utils import new_document

    (tmp_path / "chapters").mkdir()
    record = {"chapters": [{"name": "factors", "changed": {"scale": "linear"}},
                           {"name": "ood", "changed": {}}]}
    (tmp_path / sphinx_ext.RECORD).write_text(json.dumps(record))

    def page(docname):
        env = SimpleNamespace(docname=docname, srcdir=str(tmp_path), note_dependency=lambda p: None)
        doc = new_document("x")
        section = nodes.section()
        section += nodes.title(text="Robustness to visual factors")
        section += nodes.paragraph(text="Method.")
        doc += section
        sphinx_ext._rerun_banner(SimpleNamespace(env=env), doc)
        return section

    s = page("chapters/factors")
    banner = s.children[1]
    assert "clipsafety-rerun-banner" in banner["classes"]
    assert banner.astext().startswith("Built with non-default parameters")
    assert "scale='linear'" in banner.astext()
    assert len(page("chapters/ood").children) == 2  # at its defaults: no notice


# -- make test-full: every exercise against the book's run -----------------------------------

def _charts(page: str) -> list[dict]:
    return [json.loads(m.group(2)) for m in readable._SPEC.finditer(page)]


def _rows(spec: dict, data_dir) -> int:
    """Data rows a chart draws: inline datasets, or its data files' row counts."""
    n = 0
    for rows in (spec.get("datasets") or {}).values():
        if isinstance(rows, list):
            n += len(rows)
        elif isinstance(rows, str):
            text = (data_dir / f"{rows}.js").read_text()
            n += json.loads(text.split('"]=', 1)[1].rstrip().rstrip(";")).get("n", 0)
    return n


class BookRun:
    """The book's run of each chapter at its defaults, into a temporary book (notebooks,
    state, recorded outputs and chart data of its own; the store is the usual one), executed
    when an exercise of the chapter first needs it (a summary chapter: after every chapter
    whose claims it reads)."""

    def __init__(self, tmp):
        self.tmp, self.env, self.pages = tmp, book.environment_fingerprint(), {}

    def ensure(self, name: str) -> str:
        if name in toc.SUMMARY_CHAPTERS:
            for other in contents.claim_chapters():
                self.ensure(other)
        if name not in self.pages:
            ch = book.get_chapter(name)
            params = {k: v["default"] for k, v in ch.parameters().items()}
            status, _ = executor.execute(ch, params, self.env, force=True, rerun=False)
            assert status == "executed", f"{name} at its defaults failed"
            self.pages[name] = _page(toc.CHAPTERS / f"{name}.ipynb")
        return self.pages[name]


@pytest.fixture(scope="module")
def book_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exercises")
    mp = pytest.MonkeyPatch()
    mp.setattr(toc, "CHAPTERS", tmp / "chapters")
    mp.setattr(toc, "STATE", tmp / "chapters" / ".state")
    mp.setenv(outputs.OUTPUTS_ENV, str(tmp / "outputs"))
    mp.setenv("CLIPSAFETY_CHART_DATA", str(tmp / "data"))
    executor._run_env()
    yield BookRun(tmp)
    mp.undo()


@pytest.mark.full
@pytest.mark.parametrize("name,i", [(n, i) for n, i, _ in exercises()])
def test_every_exercise_runs_and_its_page_shows_charts_and_the_comparison(book_run, name, i):
    ch = book.get_chapter(name)
    ex = contents.exercises(name)[i]
    params = {k: v["default"] for k, v in ch.parameters().items()}
    params.update(book.validate_params(ch, ex.params))
    at_defaults = book_run.ensure(name)
    record = outputs.path(name)
    before_bytes = record.read_bytes()
    t0 = time.time()
    status, _ = executor.execute(ch, params, book_run.env, force=True)
    print(f"{name}: {ex.task} {time.time() - t0:.1f} s")
    assert status == "executed", f"{name}: {ex.task} failed"
    assert record.read_bytes() == before_bytes, "the exercise replaced the book's record"
    changed = {k: v for k, v in params.items() if k in ex.params}
    after = json.loads(outputs.rerun_path(name, changed).read_text())
    before = json.loads(before_bytes)
    page = _page(toc.CHAPTERS / f"{name}.ipynb")
    assert "This run against the book&#x27;s run" in page or "This run against the book's run" in page
    table = pages.comparison_table(before, after, ex.measures)
    assert len(table), f"{name}: {ex.task}: nothing compared"
    for r in table.itertuples():
        cells = [r.quantity, r.before, r.after, r.changed]
        assert "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) in page, cells
    charts = _charts(page)
    if _charts(at_defaults):
        assert charts, f"{name}: {ex.task}: no chart on the page"
    data = book_run.tmp / "data"
    for spec in charts:
        assert _rows(spec, data) > 0, f"{name}: {ex.task}: an empty chart"
    assert not re.search(r"±0\.0+\d", page), "a legend of a zero-width range"
