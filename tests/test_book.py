"""The chapter runner: parameter checks, the execution cache key, failure keeps the old page."""

import json

import pytest
from clipsafety import book
from clipsafety.book import cache, executor, toc
from conftest import use_book_folders

CHAPTER = '''# %% [markdown]
# # A tiny chapter

# %% tags=["parameters"]
n = 3  # how many
scale = 0.5
label = "x"
models: list | str = ["zoo:a", "zoo:b"]  # ids or a catalog name
root = ""  # "" = none, or a "folder"
fail = False

# %%
assert not fail, "asked to fail"
import sys
print("progress 50%", file=sys.stderr)
print(label * n, scale * n, len(models))
'''


@pytest.fixture
def tiny_book(tmp_path, monkeypatch):
    analyses = tmp_path / "analyses"
    bk = tmp_path / "book"
    analyses.mkdir()
    bk.mkdir()
    (analyses / "tiny.py").write_text(CHAPTER)
    (bk / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapters/tiny\n")
    use_book_folders(monkeypatch, analyses, bk)
    return tmp_path


def test_parameters_are_read_with_types(tiny_book):
    ch = book.get_chapter("tiny")
    params = ch.parameters()
    assert list(params) == ["n", "scale", "label", "models", "root", "fail"]
    assert params["n"] == {"default": 3, "type": "int", "help": "how many"}
    assert params["models"]["type"] == "list | str"
    assert params["models"]["default"] == ["zoo:a", "zoo:b"]
    # a line papermill's own inspection cannot parse
    assert params["root"] == {"default": "", "type": "str", "help": '"" = none, or a "folder"'}


def test_cli_values_parse_as_yaml():
    got = book.parse_cli_params([("n", "5"), ("scale", "0.25"), ("label", "abc"),
                                 ("models", "[zoo:c, zoo:d]"), ("fail", "true")])
    assert got == {"n": 5, "scale": 0.25, "label": "abc", "models": ["zoo:c", "zoo:d"],
                   "fail": True}


def test_unknown_parameter_names_it_and_lists_valid_ones(tiny_book):
    ch = book.get_chapter("tiny")
    with pytest.raises(book.ParameterError) as err:
        book.validate_params(ch, {"nn": 3})
    msg = str(err.value)
    assert "'nn'" in msg and "Did you mean 'n'" in msg
    for name in ("n (int", "scale (float", "label (str", "models (list | str", "root (str"):
        assert name in msg


def test_wrong_type_is_rejected_and_safe_coercions_accepted(tiny_book):
    ch = book.get_chapter("tiny")
    with pytest.raises(book.ParameterError, match="'n' of chapter 'tiny' expects int"):
        book.validate_params(ch, {"n": "three"})
    with pytest.raises(book.ParameterError, match="expects int"):
        book.validate_params(ch, {"n": True})
    assert book.validate_params(ch, {"scale": 2}) == {"scale": 2.0}
    assert book.validate_params(ch, {"models": "zoo"}) == {"models": "zoo"}  # a catalog name
    assert book.validate_params(ch, {"models": ["timm:x"]}) == {"models": ["timm:x"]}
    with pytest.raises(book.ParameterError, match="expects list | str"):
        book.validate_params(ch, {"models": 3})
    with pytest.raises(book.ParameterError, match="expects str"):
        book.validate_params(ch, {"label": ["a"]})


def test_unknown_chapter_lists_chapters(tiny_book):
    with pytest.raises(book.ParameterError, match="Valid chapters: tiny"):
        book.get_chapter("tinny")


def test_key_depends_on_source_params_library_and_data(tiny_book):
    ch = book.get_chapter("tiny")
    env = {"library": "L", "data": "D", "mirror": True}
    k = book.chapter_key(ch, {"n": 3}, env)
    assert k == book.chapter_key(ch, {"n": 3}, dict(env))
    assert k != book.chapter_key(ch, {"n": 4}, env)
    assert k != book.chapter_key(ch, {"n": 3}, {**env, "library": "L2"})
    assert k != book.chapter_key(ch, {"n": 3}, {**env, "data": "D2"})
    assert k != book.chapter_key(ch, {"n": 3}, {**env, "mirror": False})
    ch.source.write_text(CHAPTER.replace("label * n", "label * (n + 1)"))
    assert k != book.chapter_key(ch, {"n": 3}, env)


def test_library_and_data_hashes_see_content_changes(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    h1 = cache._hash_tree(tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert cache._hash_tree(tmp_path) != h1


@pytest.mark.slow
def test_execute_cache_and_failure_keeps_previous_page(tiny_book):
    ch = book.get_chapter("tiny")
    env = {"library": "L", "data": "D", "mirror": True}
    defaults = {k: v["default"] for k, v in ch.parameters().items()}
    status, _ = book.execute(ch, defaults, env)
    assert status == "executed"
    out = toc.CHAPTERS / "tiny.ipynb"
    nb = json.loads(out.read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "xxx 1.5 2" in text
    assert "progress 50%" not in text  # stderr (progress bars, warnings) stays off the site
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for c in code:  # parameters cells give way to the rerun box; other code folds
        params = {"parameters", "injected-parameters"} & set(c["metadata"]["tags"])
        assert ("remove-cell" if params else "hide-input") in c["metadata"]["tags"]
    assert book.execute(ch, defaults, env)[0] == "cached"
    before = out.read_bytes()
    status, _ = book.execute(ch, {**defaults, "fail": True}, env)
    assert status == "failed"
    assert out.read_bytes() == before  # the previous page survives a failed run
    assert (toc.STATE / "tiny.failed.ipynb").exists()
    state = book.read_state("tiny")
    assert state["params"]["fail"] is False


def test_bad_parameter_on_the_command_line_exits_2_and_builds_nothing(tiny_book, capsys):
    rc = book.main(["chapter", "tiny", "-p", "n", "many"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "expects int" in err and "Valid parameters of tiny" in err
    assert not (toc.CHAPTERS / "tiny.ipynb").exists()


#: what papermill and ipykernel print on every run unless the runner prevents it
NOISE = ("Unable to parse line", "Passed unknown parameter", "running over TCP",
         "without encryption", "CurveZMQ")


@pytest.mark.slow
def test_a_chapter_run_prints_no_papermill_or_kernel_noise(tiny_book, capfd):
    ch = book.get_chapter("tiny")
    env = {"library": "L", "data": "D", "mirror": True}
    # annotated and commented parameters, all passed: what misled papermill's own inference
    params = {**{k: v["default"] for k, v in ch.parameters().items()},
              "models": ["zoo:c"], "root": "", "n": 2}
    status, _ = book.execute(ch, params, env)
    assert status == "executed"
    out, err = capfd.readouterr()
    for text in NOISE:
        assert text not in out + err, f"{text!r} printed by a chapter run:\n{out}{err}"
    nb = json.loads((toc.CHAPTERS / "tiny.ipynb").read_text())
    shown = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "xx 1.0 1" in shown  # the parameters reached the kernel


def test_parallel_build_executes_every_chapter_and_reports_a_failure(tiny_book, monkeypatch):
    """``build(jobs=2)``: both chapters execute (in two worker processes), a failing one is
    reported by name and keeps no page, the other's page and state are written; a rerun is
    all cache hits. ``jobs`` is checked before any work."""
    (tiny_book / "analyses" / "tiny2.py").write_text(CHAPTER.replace("fail = False", "fail = True"))
    (tiny_book / "book" / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: chapters/tiny\n  - file: chapters/tiny2\n")
    monkeypatch.setattr(executor, "build_site", lambda: 0)
    assert book.build(jobs=2) == 1
    state = json.loads((toc.STATE / "tiny.json").read_text())
    assert state["params"]["n"] == 3 and (toc.CHAPTERS / "tiny.ipynb").exists()
    assert not (toc.CHAPTERS / "tiny2.ipynb").exists()
    assert (toc.STATE / "tiny2.failed.ipynb").exists()
    (tiny_book / "analyses" / "tiny2.py").write_text(CHAPTER)
    assert book.build(jobs=2) == 0
    assert (toc.CHAPTERS / "tiny2.ipynb").exists()
    assert book.execute(book.get_chapter("tiny"), {k: v["default"] for k, v in
                        book.get_chapter("tiny").parameters().items()},
                        book.environment_fingerprint())[0] == "cached"
    for bad in (-1, True, 1.5):
        with pytest.raises(ValueError, match="jobs"):
            book.build_jobs(bad)
    assert book.build_jobs(0) >= 1


def test_a_chapter_whose_recorded_outputs_are_gone_re_executes(tiny_book, monkeypatch):
    """The findings page reads the chapters' recorded outputs: a cached chapter whose outputs
    file was deleted must run again, or the landing page would silently lose its claims."""
    outputs = tiny_book / "outputs"
    monkeypatch.setenv("CLIPSAFETY_OUTPUTS", str(outputs))
    (tiny_book / "analyses" / "tiny.py").write_text(CHAPTER + (
        "from clipsafety import outputs\n"
        "outputs.record('tiny', None, n=n)\n"))
    ch = book.get_chapter("tiny")
    params = {k: v["default"] for k, v in ch.parameters().items()}
    env = {"library": "L", "data": "D", "mirror": True}
    assert book.execute(ch, params, env)[0] == "executed"
    assert book.read_state("tiny")["recorded_outputs"] is True
    assert book.execute(ch, params, env)[0] == "cached"
    (outputs / "tiny.json").unlink()
    assert book.execute(ch, params, env)[0] == "executed"
    assert json.loads((outputs / "tiny.json").read_text())["tables"]["n"] == 3


@pytest.mark.parametrize("chapter,key,value", [
    ("curation", "pool_size", "5"),
    ("prompts", "budget", "-1"),
    ("finetuning", "alphas", "[2]"),
    ("landscape", "n_boot", "0"),
])
def test_the_command_line_checks_every_chapters_rules_before_any_work(chapter, key, value,
                                                                      tmp_path):
    """``python -m clipsafety.book chapter`` (what ``make chapter`` runs) applies the value
    rules of every chapter, the prompts, fine-tuning and curation ones included: exit 2 with
    the message, nothing executed, nothing written."""
    import os
    import subprocess
    import sys

    from clipsafety.files import REPO_ROOT

    out = tmp_path / "outputs"
    env = {**os.environ, "CLIPSAFETY_OUTPUTS": str(out), "CLIPSAFETY_STORE": str(tmp_path / "s")}
    run = subprocess.run([sys.executable, "-m", "clipsafety.book", "chapter", chapter, "-p", key,
                          value], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"parameter {key!r} of chapter {chapter!r} = " in run.stderr
    assert "Nothing was run" in run.stderr and "Traceback" not in run.stderr
    assert "executing" not in run.stdout and not out.exists()


def test_every_chapter_of_the_book_has_its_rules_from_its_study():
    """The runner's rule table is collected from the studies: one entry per chapter in
    analyses/, each the study's own PARAMETER_RULES."""
    from clipsafety import contents

    assert set(book.CHAPTER_RULES) == {c.name for c in book.chapters()}
    for name in book.CHAPTER_RULES:
        assert book.CHAPTER_RULES[name] == contents.study(name).PARAMETER_RULES, name


def test_the_findings_page_lists_the_chapters_of_the_table_of_contents(tmp_path, monkeypatch):
    """The chapter list is read from _toc.yml: a chapter added there appears, with its
    study's one-line description, and a removed one disappears."""
    from clipsafety import contents
    from clipsafety.studies import findings

    bk = tmp_path / "book"
    bk.mkdir()
    (bk / "_toc.yml").write_text(
        "format: jb-book\nroot: chapters/findings\nparts:\n"
        "  - caption: Part one\n    chapters:\n      - file: chapters/ood\n"
        "      - file: intro\n  - caption: Part two\n    chapters:\n"
        "      - file: chapters/curation\n")
    monkeypatch.setattr(contents, "BOOK", bk)
    text = findings.chapter_list()
    assert "{doc}`ood`: " + contents.about("ood") in text
    assert "{doc}`curation`: " + contents.about("curation") in text
    assert "{doc}`../intro`" in text and "**Part one**" in text and "**Part two**" in text
    assert "factors" not in text and "findings`" not in text
    assert contents.toc_chapters() == ["findings", "ood", "curation"]
    assert contents.claim_chapters() == ["ood", "curation"]


def test_ctrl_c_during_a_chapter_prints_one_line_keeps_the_page_and_its_temp_folder_goes(
        tiny_book, monkeypatch, capsys):
    """An interrupted chapter: exit 130 with one line, the previous page byte for byte, and no
    ``clipsafety-<chapter>-*`` folder left in the temporary directory."""
    import tempfile

    import papermill

    monkeypatch.setattr(tempfile, "tempdir", str(tiny_book / "tmp"))
    (tiny_book / "tmp").mkdir()
    monkeypatch.setattr(executor, "build_site", lambda: 0)
    assert book.main(["chapter", "tiny"]) == 0
    page = (toc.CHAPTERS / "tiny.ipynb").read_bytes()
    capsys.readouterr()

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    assert book.main(["chapter", "tiny", "-p", "n", "4"]) == 130
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and len(err.strip().splitlines()) == 1
    assert "interrupted" in err and "kept" in out
    assert (toc.CHAPTERS / "tiny.ipynb").read_bytes() == page
    assert list((tiny_book / "tmp").iterdir()) == []


def test_make_chapter_on_a_fresh_clone_runs_the_chapter_and_says_to_build_the_book(
        tiny_book, monkeypatch, capsys):
    """Before `make book`, the other chapters have no page, so the strict site build would
    fail on their links: the chapter runs, the site is left alone, the message says what to do,
    and the exit status is 0."""
    (tiny_book / "analyses" / "tiny2.py").write_text(CHAPTER)
    built = []
    monkeypatch.setattr(executor, "build_site", lambda: built.append(1) or 0)
    assert book.main(["chapter", "tiny"]) == 0
    out = capsys.readouterr().out
    assert (toc.CHAPTERS / "tiny.ipynb").exists() and built == []
    assert "run `make book` once" in out and "tiny2" in out
    assert book.main(["chapter", "tiny2"]) == 0 and built == [1]  # now every chapter has a page
