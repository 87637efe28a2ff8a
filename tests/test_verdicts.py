"""The verdict machinery (clipsafety.claims) on hand-constructed judgements: the rules, the
labels of thin evidence, one verdict per claim and kind of evidence, and the pages that count
them (a chapter's summary, the findings page)."""

import json
import math

import pandas as pd
import pytest
from clipsafety import claims as C
from clipsafety import pages
from clipsafety.studies import findings as F

UP = C.Claim("up", "A is larger than B", "4.2", direction="greater", home="x")
DOWN = C.Claim("down", "fine-tuning lowers A", "4.2", direction="less", home="x")
DIFF = C.Claim("diff", "A differs from B", "4.1", direction="differs", home="x")


def _j(claim, est, lo, hi, source=C.WORLD, n=(10, 10), unit=C.MODELS, **kw):
    return C.interval(claim, source, est, lo, hi, effect="A minus B", scale="points",
                      unit=unit, n=n, **kw)


@pytest.mark.parametrize("claim, est, lo, hi, verdict", [
    (UP, 2, 1, 3, C.REPRODUCED),
    (UP, 1, -0.5, 3, C.INCONCLUSIVE),
    (UP, 1, 0.0, 3, C.INCONCLUSIVE),        # touching zero is not enough
    (UP, -2, -3, -1, C.CONTRADICTED),
    (DOWN, -2, -3, -1, C.REPRODUCED),
    (DOWN, 2, 1, 3, C.CONTRADICTED),
    (DIFF, -2, -3, -1, C.REPRODUCED),
    (DIFF, 2, 1, 3, C.REPRODUCED),
    (DIFF, 0.1, -1, 1, C.INCONCLUSIVE),      # equality is never shown by an interval
])
def test_interval_rule_is_directional(claim, est, lo, hi, verdict):
    j = _j(claim, est, lo, hi)
    assert j.verdict == verdict
    r = j.row()
    # the numbers are fields; the direction is the claim's
    assert (r["estimate"], r["lo"], r["hi"], r["direction"]) == (est, lo, hi, claim.direction)
    assert r["n"] == [10, 10] and r["unit"] == C.MODELS and r["evidence_kind"] == C.WORLD


def test_threshold_and_missing_numbers():
    assert _j(UP, 0.6, 0.55, 0.7, threshold=0.5).verdict == C.REPRODUCED
    assert _j(UP, 0.6, 0.45, 0.7, threshold=0.5).verdict == C.INCONCLUSIVE
    assert _j(UP, math.nan, math.nan, math.nan).verdict == C.NOT_TESTABLE
    assert _j(UP, 1.0, math.nan, math.nan).verdict == C.NOT_TESTABLE


def test_a_tested_verdict_needs_its_unit_and_n_and_a_known_verdict():
    with pytest.raises(ValueError, match="unit and n"):
        C.interval(UP, C.WORLD, 1, 0.5, 2, effect="e", scale="s", unit="", n=())
    with pytest.raises(ValueError, match="verdict"):
        C.Judgement(UP, C.WORLD, "not reproduced")
    with pytest.raises(ValueError, match="direction"):
        C.Claim("c", "t", direction="up")
    with pytest.raises(ValueError, match="kind"):
        C.Claim("c", "t", kind="hypothesis")


@pytest.mark.parametrize("n, unit, label", [
    ((10, 12), C.MODELS, "reproduced"),
    ((2, 9), C.MODELS, "reproduced (n = 2 models)"),
    ((4,), C.PAIRS, "reproduced (n = 4 model pairs)"),
    ((1200,), C.STIMULI, "reproduced (one checkpoint)"),
])
def test_thin_evidence_is_never_a_plain_reproduced(n, unit, label):
    j = _j(UP, 2, 1, 3, n=n, unit=unit)
    assert j.row()["label"] == label
    assert j.small == (label != "reproduced")


def _items(vals):
    return pd.DataFrame([{"item": f"f{i}", "estimate": e, "lo": lo, "hi": hi}
                         for i, (e, lo, hi) in enumerate(vals)])


def test_count_rule_counts_corrected_items_and_can_contradict():
    kw = dict(effect="factors", scale="", unit=C.MODELS, n=(10, 10), correction="Bonferroni over 4")
    up, flat, down = (1, 0.5, 2), (0, -1, 1), (-1, -2, -0.5)
    assert C.count(UP, C.WORLD, _items([up, up, up, flat]), 3, **kw).verdict == C.REPRODUCED
    j = C.count(UP, C.WORLD, _items([up, up, flat, flat]), 3, **kw)
    assert j.verdict == C.INCONCLUSIVE and j.estimate == 2 and "2 of 4" in j.reason
    # 2 of 4 on the opposite side: at most 2 could be on the claimed side, 3 were claimed
    assert C.count(UP, C.WORLD, _items([up, down, down, flat]), 3, **kw).verdict == C.CONTRADICTED
    # a two-sided count is never contradicted
    assert C.count(DIFF, C.WORLD, _items([down, down, flat, flat]), 3, **kw).verdict == C.INCONCLUSIVE
    assert C.count(DIFF, C.WORLD, _items([down, down, up, flat]), 3, **kw).verdict == C.REPRODUCED
    with pytest.raises(ValueError, match="correction"):
        C.count(UP, C.WORLD, _items([up]), 1, **{**kw, "correction": "none"})


def test_bonferroni_level():
    assert C.bonferroni(1) == (0.95, "none")
    level, text = C.bonferroni(10)
    assert level == pytest.approx(0.995) and "Bonferroni over 10" in text


def test_premises_gate_a_world_verdict_and_keep_its_numbers():
    j = _j(UP, 2, 1, 3)
    ok = C.Premise("above chance", True, "accuracy 0.42 (chance 0.10)", "at least twice chance")
    bad = C.Premise("confidence regime", False, "gap -17 points", "within the real range")
    g = C.gated(j, [ok])
    assert g.verdict == C.REPRODUCED and "above chance" in g.premise
    g = C.gated(j, [ok, bad])
    assert g.verdict == C.PREMISE_NOT_MET and g.estimate == 2 and "confidence regime" in g.reason
    assert "above chance" not in g.reason
    b = C.built_in(UP, C.WORLD, "style mix of the web-like sources", j)
    assert b.verdict == C.BUILT_IN and (b.estimate, b.lo, b.hi) == (2, 1, 3)


def _table(chapter_home="x"):
    up = C.Claim("up", "A is larger than B", "4.2", home=chapter_home)
    ext = C.Claim("e1", "a prompt set helps", "", kind=C.EXTENSION, home=chapter_home)
    return C.claims_table([
        _j(up, 2, 1, 3, source=f"{C.PUBLISHED} (fork 1)", n=(3, 9)),
        _j(up, 2, 1, 3, source=f"{C.PUBLISHED} (fork 2)", n=(12, 9)),
        _j(up, 1, -1, 3),
        C.not_testable(up, C.REAL, "no real models and data in this run"),
        _j(ext, -2, -3, -1),
        C.not_testable(ext, C.PUBLISHED, "no published study"),
    ])


def test_one_verdict_per_claim_and_kind_by_the_intersection_rule():
    t = _table()
    per = C.by_kind(t)
    assert len(per) == 5  # up x 3 kinds, e1 x 2 kinds
    pub = per[(per.claim_id == "up") & (per.evidence_kind == C.PUBLISHED)].iloc[0]
    assert pub["verdict"] == C.REPRODUCED and "every source" in pub["reason"]
    # one source inconclusive: the kind's verdict is inconclusive (sources disagree)
    t2 = C.claims_table([_j(UP, 2, 1, 3, source=f"{C.PUBLISHED} (a)"),
                         _j(UP, 1, -1, 3, source=f"{C.PUBLISHED} (b)")])
    assert C.by_kind(t2)["verdict"].tolist() == [C.INCONCLUSIVE]
    assert C.tally(t) == {C.REPRODUCED: 1, C.CONTRADICTED: 1, C.INCONCLUSIVE: 1,
                          C.NOT_TESTABLE: 2, C.BUILT_IN: 0, C.PREMISE_NOT_MET: 0}


def test_chapter_summary_counts_per_kind_and_claim_kind():
    text = pages.summary_text(_table())
    assert "1 of the paper claim" in text and "1 of the book's own hypotheses" in text
    assert f"{C.KIND_NAMES[C.PUBLISHED]}: 1 reproduced (and 1 not testable)" in text
    assert f"{C.KIND_NAMES[C.WORLD]}: 1 contradicted, 1 inconclusive" in text
    assert f"{C.KIND_NAMES[C.REAL]}: not testable here (1 not testable)" in text


def _found(tables):
    return {ch: {"claims": json.loads(t.to_json(orient="records"))} for ch, t in tables.items()}


def test_findings_page_from_a_small_set_of_judgements():
    found = _found({"x": _table("x"),
                    # a chapter that shows x's claim must not count it again
                    "y": C.claims_table([_j(C.Claim("up", "A is larger than B", "4.2", home="x"),
                                            -2, -3, -1)])})
    t = F.findings_table(found)
    per = F.per_kind(t)
    assert set(per["chapter"]) == {"x"}
    lead = F.findings_summary(t)
    assert "judges 1 claims of the paper" in lead
    assert f"on {C.KIND_NAMES[C.PUBLISHED]}, 1 reproduced" in lead
    assert f"on {C.KIND_NAMES[C.WORLD]}, 1 inconclusive" in lead
    sent = F.section_sentences(t)
    assert "**Shape bias (section 4.2).**" in sent
    assert "published results: reproduced (+2.0 [+1.0, +3.0] points; n = 3 vs 9 models)" in sent
    assert "the world: inconclusive" in sent
    assert "extensions" in sent and "1 contradicted" in sent
    html = F.findings_html(t)
    # the real-run column is folded into a note when no real run exists
    assert C.KIND_NAMES[C.REAL] not in html and F.real_run_note(t)
    assert html.index(C.KIND_NAMES[C.PUBLISHED]) < html.index(C.KIND_NAMES[C.WORLD])
    assert html.index("A is larger than B") < html.index("a prompt set helps")  # paper first
    assert "+2.0 [+1.0, +3.0] points" in html  # never cut mid-interval


def test_problems_catch_judgements_that_break_their_rules():
    ok = C.claims_table([_j(UP, 2, 1, 3), _j(DOWN, -2, -3, -1),
                         C.built_in(UP, f"{C.PUBLISHED} (a)", "a setting", _j(UP, 1, 0.5, 2))])
    assert C.problems(ok, "x") == []
    bad = ok.copy()
    bad.loc[0, "verdict"] = C.REPRODUCED
    bad.loc[0, "lo"] = -1.0  # a reproduced whose interval includes zero
    bad.loc[1, "verdict"] = C.CONTRADICTED  # interval on the claimed side
    found = C.problems(bad, "x")
    assert len(found) == 2 and "gives 'inconclusive'" in found[0] and "gives 'reproduced'" in found[1]
    # recorded outside its home, and twice
    assert any("its home is 'x'" in p for p in C.problems(ok, "y"))
    assert any("2 rows" in p for p in C.problems(pd.concat([ok, ok.iloc[:1]]), "x"))
    # a count without a correction, a premise without its text
    cnt = C.count(UP, C.WORLD, pd.DataFrame([{"item": "a", "estimate": 1, "lo": 0.5, "hi": 2}]), 1,
                  effect="e", scale="", unit=C.MODELS, n=(6, 6), correction="Bonferroni over 1")
    t = C.claims_table([cnt])
    assert C.problems(t, "x") == []
    t.loc[0, "correction"] = "none"
    assert "without a named correction" in C.problems(t, "x")[0]


def test_end_chapter_refuses_to_record_a_broken_judgement(monkeypatch, tmp_path):
    from clipsafety import outputs

    monkeypatch.setenv(outputs.OUTPUTS_ENV, str(tmp_path))
    j = _j(UP, 2, 1, 3)
    broken = {**j.row(), "verdict": C.CONTRADICTED}
    with pytest.raises(ValueError, match="break their rules"):
        pages.end_chapter("x", [broken])
    assert not (tmp_path / "x.json").exists()


def test_recorded_book_outputs_follow_their_rules():
    """After `make book`: every chapter's recorded judgements follow their rules, each claim id
    is recorded by one chapter only, and each chapter's summary counts equal its judgements'."""
    from clipsafety import contents, outputs

    found = {c: p for c, p in outputs.read(contents.claim_chapters()).items() if p}
    if not found:
        pytest.skip("no recorded chapter outputs (run `make book`)")
    homes = {}
    for chapter, payload in found.items():
        t = pd.DataFrame(payload["claims"])
        assert C.problems(t, chapter) == [], chapter
        for cid in set(t["claim_id"]):
            assert cid not in homes, f"{cid} recorded by {homes.get(cid)} and {chapter}"
            homes[cid] = chapter
        counts = C.tally(t)
        text = pages.summary_text(t)
        for kind in C.DISPLAY:
            sub = t[t["source"].map(C.source_kind) == kind]
            if len(sub):
                assert C.tally_text(C.tally(sub)) in text, (chapter, kind)
        assert sum(counts.values()) == len(C.by_kind(t))
