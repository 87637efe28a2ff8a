"""The shared pieces one rule each: real data, zoo-or-real, verdict colours, the count of
verdicts, the recorded outputs' folder."""

import json
from pathlib import Path

import pandas as pd
import pytest
from clipsafety import catalog, charts, claims, datasets, evidence, outputs, pages, style
from clipsafety.studies import findings


def test_real_data_is_the_parameter_or_the_environment_variable(tmp_path, monkeypatch):
    """A reader who sets only $CLIPSAFETY_DATA_ROOT gets the live section on real models,
    exactly as one who passes data_root; the parameter wins over the variable."""
    monkeypatch.delenv(datasets.DATA_ROOT_ENV, raising=False)
    ids = ["timm:resnet50.a1_in1k"]
    kw = dict(zoo_dataset="synth:id-test", real_dataset="imagenet:val")
    assert not evidence.chapter_run("factors", ids, **kw).live_ok
    monkeypatch.setenv(datasets.DATA_ROOT_ENV, str(tmp_path))
    run = evidence.chapter_run("factors", ids, **kw)
    assert run.live_ok and run.data_root == str(tmp_path)
    assert evidence.chapter_run("factors", ids, data_root="/elsewhere", **kw).data_root == "/elsewhere"
    assert datasets.data_root("") == str(tmp_path) and datasets.data_root("/x") == "/x"
    # the dataset registry resolves the same folder (it lists it among the folders it tried)
    with pytest.raises(datasets.LayoutError, match=str(tmp_path)):
        datasets.get_dataset("imagenet:val")


def test_zoo_or_real_is_one_rule():
    assert catalog.is_zoo_id("zoo:clip-resnet-wit-10k") and not catalog.is_zoo_id("timm:x")
    assert catalog.is_real(["timm:a", "openclip:b@c"]) and not catalog.is_real(["zoo:a"])
    assert catalog.is_zero_shot_clip("openclip:ViT-B-32@openai", None)
    assert catalog.is_zero_shot_clip("zoo:x", "clip-zeroshot")
    assert not catalog.is_zero_shot_clip("zoo:x", "clip-ft-direct")
    assert not catalog.is_zero_shot_clip("timm:vit_base_patch16_clip_224.openai_ft_in1k", None)
    with pytest.raises(ValueError, match="mixes zoo models"):
        catalog.resolve_models(["zoo:a", "timm:b"])
    assert catalog.resolve_models("a:x, b:y,a:x") == ["a:x", "b:y"]


def test_one_verdict_colour_table():
    """The findings matrix's badges and the overview chart read the same colours."""
    assert set(style.VERDICT_COLOURS) == set(claims.VERDICTS)
    assert charts.VERDICT_COLOURS == {v: c for v, (c, _t) in style.VERDICT_COLOURS.items()}
    assert findings.BADGES is style.VERDICT_COLOURS


def _rows():
    c1, c2, c3 = (claims.Claim(f"c{i}", f"claim {i}") for i in (1, 2, 3))
    kw = dict(effect="e", scale="points", unit=claims.MODELS, n=(6, 6))
    return claims.claims_table([
        claims.interval(c1, claims.WORLD, 1.0, 0.5, 1.5, **kw),
        claims.interval(c2, claims.WORLD, 0.1, -0.2, 0.4, **kw),
        claims.not_testable(c3, claims.WORLD, "no data"),
        # published evidence under a named source counts as published evidence
        claims.interval(c1, f"{claims.PUBLISHED} (NINCO)", 0.2, 0.1, 0.3, **kw),
        claims.interval(c2, f"{claims.PUBLISHED} (C-OOD)", -0.2, -0.3, -0.1, **kw),
        claims.not_testable(c3, claims.REAL, "no real models"),
    ])


def test_the_count_of_verdicts_is_one_function_read_by_both_pages():
    """A chapter's summary and the findings page count the same way, per kind of evidence:
    a source named after a kind ("published upstream results (NINCO)") is of that kind."""
    table = _rows()
    kinds = table["source"].map(claims.source_kind)
    assert kinds.value_counts().to_dict() == {claims.WORLD: 3, claims.PUBLISHED: 2,
                                              claims.REAL: 1}
    world = claims.tally(table[kinds == claims.WORLD])
    assert (world[claims.REPRODUCED], world[claims.INCONCLUSIVE], world[claims.NOT_TESTABLE]) == (1, 1, 1)
    pub = claims.tally(table[kinds == claims.PUBLISHED])
    assert (pub[claims.REPRODUCED], pub[claims.CONTRADICTED]) == (1, 1)
    summary = pages.summary_text(table)
    assert f"{claims.KIND_NAMES[claims.WORLD]}: 1 reproduced, 1 inconclusive (and 1 not testable)" in summary
    assert f"{claims.KIND_NAMES[claims.PUBLISHED]}: 1 reproduced, 1 contradicted" in summary
    found = findings.findings_table({"x": {"claims": json.loads(table.to_json(orient="records"))}})
    lead = findings.findings_summary(found)
    assert f"on {claims.KIND_NAMES[claims.PUBLISHED]}, 1 reproduced, 1 contradicted" in lead


def test_recorded_outputs_have_one_owner(tmp_path, monkeypatch):
    """record writes only when the folder is named, read returns None for a chapter that has
    not run, digest moves when a file changes, path is where record wrote."""
    monkeypatch.delenv(outputs.OUTPUTS_ENV, raising=False)
    outputs.record("a", None, n=1)
    assert outputs.folder() == outputs.DEFAULT_FOLDER
    monkeypatch.setenv(outputs.OUTPUTS_ENV, str(tmp_path))
    assert not (tmp_path / "a.json").exists()
    d0 = outputs.digest()
    outputs.record("a", _rows(), t=pd.DataFrame({"x": [1.5, 2.0]}))
    assert outputs.path("a") == tmp_path / "a.json" and outputs.path("a").is_file()
    got = outputs.read(["a", "b"])
    assert got["b"] is None and got["a"]["tables"]["t"] == [{"x": 1.5}, {"x": 2.0}]
    assert len(got["a"]["claims"]) == len(_rows())
    assert outputs.digest() != d0
    assert outputs.read("a, b") == got


def test_every_claim_has_one_home_a_kind_and_a_test():
    """The studies declare each claim once, in its home chapter, with its test; the paper's
    sections are covered; the methods page's list is built from the same declarations."""
    from clipsafety import claims as C
    from clipsafety import contents

    t = contents.all_claims()
    assert t["claim_id"].is_unique and (t["test"].str.len() > 40).all()
    paper = t[t["kind"] == C.PAPER]
    assert set(paper["section"]) == {"abstract", "4.1", "4.2", "5", "6"}
    assert set(t[t["kind"] == C.PREMISE]["chapter"]) == {"landscape"}
    # the paper's fine-tuning claims live in the OOD chapter only
    assert set(t.loc[t["claim_id"].isin(["ood-ft-worse", "ood-2stage"]), "chapter"]) == {"ood"}
    md = contents.claims_markdown()
    assert all(c in md for c in t["claim"]) and md.index("The paper's claims") < md.index("extensions")


def test_every_declared_parameter_is_read_by_its_chapter():
    """A parameter a chapter declares but never reads is a dead knob in its rerun box (the
    calibration chapter's transfer_margin was one): each name occurs outside the parameters
    cell: each name is loaded as a variable in a code cell (not only mentioned in prose or as a
    keyword argument's name)."""
    import ast

    from clipsafety import contents

    dead = {}
    for name in contents.toc_chapters():
        nb = contents.read_notebook(contents.source(name))
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code"
                         and "parameters" not in c.metadata.get("tags", []))
        code = "\n".join(ln for ln in code.splitlines() if not ln.lstrip().startswith(("%", "!")))
        loaded = {n.id for n in ast.walk(ast.parse(code))
                  if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        unread = [p for p in contents.parameters(name) if p not in loaded]
        if unread:
            dead[name] = unread
    assert not dead, f"declared but never read: {dead}"


def test_the_workshop_timings_are_of_the_exercises_the_chapters_declare():
    """``book/workshop_timings.csv`` (read by the intro page) times every exercise, and only
    those: an exercise added, changed or removed without being timed again fails here."""
    from clipsafety import contents
    from clipsafety.sphinx_ext import WORKSHOP_TIMINGS

    timed = pd.read_csv(Path(__file__).resolve().parents[1] / "book" / WORKSHOP_TIMINGS)
    declared = {(name, ex.task) for name in contents.toc_chapters() for ex in contents.exercises(name)}
    assert set(zip(timed["chapter"], timed["task"])) == declared
    assert len(timed) == len(declared) and (timed["seconds"] > 0).all()
