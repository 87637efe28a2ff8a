"""claims.py (verdict machinery) and the studies' claim rules, on hand-constructed evidence."""

import math

import pytest
from clipsafety import claims as C
from clipsafety import summaries
from clipsafety.studies import factors as FS
from clipsafety.studies import shape_bias as SS

CLAIM = C.Claim("clip-shape", "zero-shot CLIP is more shape-biased than ImageNet models")
SRC = C.SOURCES[0]


@pytest.mark.parametrize(
    "est, lo, hi, direction, verdict, detail_word",
    [
        (0.2, 0.1, 0.3, "greater", C.REPRODUCED, "claimed side"),
        (0.2, -0.01, 0.3, "greater", C.NOT_REPRODUCED, "includes zero"),
        (0.2, 0.0, 0.3, "greater", C.NOT_REPRODUCED, "includes zero"),  # touching 0 is not enough
        (-0.2, -0.3, -0.1, "greater", C.NOT_REPRODUCED, "opposite"),
        (-0.2, -0.3, -0.1, "less", C.REPRODUCED, "claimed side"),
        (0.2, 0.1, 0.3, "less", C.NOT_REPRODUCED, "opposite"),
    ],
)
def test_interval_verdicts(est, lo, hi, direction, verdict, detail_word):
    row = C.verdict_from_interval(CLAIM, SRC, est, lo, hi, direction=direction)
    assert row["verdict"] == verdict
    assert detail_word in row["detail"]
    assert f"{est:+.3g}" in row["evidence"]


def test_interval_nan_is_not_testable():
    row = C.verdict_from_interval(CLAIM, SRC, math.nan, math.nan, math.nan)
    assert row["verdict"] == C.NOT_TESTABLE


def test_bad_direction_and_verdict_raise():
    with pytest.raises(ValueError, match="direction"):
        C.verdict_from_interval(CLAIM, SRC, 0.1, 0.0, 0.2, direction="up")
    with pytest.raises(ValueError, match="verdict"):
        C.judgement(CLAIM, SRC, "maybe", "", "")


def test_count_verdicts():
    assert C.verdict_from_count(CLAIM, SRC, 6, 10, 6)["verdict"] == C.REPRODUCED
    assert C.verdict_from_count(CLAIM, SRC, 7, 10, 6)["verdict"] == C.REPRODUCED
    r = C.verdict_from_count(CLAIM, SRC, 5, 10, 6)
    assert r["verdict"] == C.NOT_REPRODUCED and "5 of 10" in r["detail"]
    assert C.verdict_from_count(CLAIM, SRC, 0, 0, 6)["verdict"] == C.NOT_TESTABLE


def test_table_matrix_and_sentences_order_sources():
    other = C.Claim("ft", "fine-tuning reduces shape bias")
    rows = [
        C.not_testable(CLAIM, C.SOURCES[2], "no data_root given"),
        C.verdict_from_interval(CLAIM, C.SOURCES[0], 0.2, 0.1, 0.3),
        C.verdict_from_interval(other, C.SOURCES[0], 0.05, -0.02, 0.1, direction="less"),
        C.not_testable(CLAIM, C.SOURCES[1], "no CLIP model in the published files"),
    ]
    t = C.claims_table(rows)
    assert list(t.columns) == C.COLUMNS
    assert list(t["source"][t["claim_id"] == "clip-shape"]) == list(C.SOURCES)
    m = C.claims_matrix(t)
    assert m.loc[CLAIM.text, C.SOURCES[0]] == C.REPRODUCED
    assert m.loc[other.text, C.SOURCES[1]] == C.NOT_TESTABLE  # missing cell filled
    s = C.claims_sentences(t)
    assert s.count("\n") == 1 and "**not testable** (no data_root given)" in s
    d = C.disagreements(t)
    assert list(d["claim_id"]) == ["ft"]


# ------------------------------------------------------------------ the paper's claims

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _er_table(clip_shift, pose_shift=-0.03, sources=("WIT", "LAION"), source_gap=0.0, n=6, seed=0):
    """Hand-built effective-robustness table: CLIP is shifted by clip_shift[factor]."""
    rng = np.random.default_rng(seed)
    rows = []
    for f, shift in clip_shift.items():
        for i in range(n):
            for g in ("standard", "more-data", "clip-zeroshot"):
                src = sources[i % 2] if g == "clip-zeroshot" else "ImageNet"
                v = rng.normal(0, 0.002)
                if g == "clip-zeroshot":
                    v += (pose_shift if f == "pose" else shift) + (source_gap if src == sources[0] else 0)
                rows.append({"model": f"{g}-{i}", "group": g, "source": src, "factor": f, "eff_rob": v})
    return pd.DataFrame(rows)


FACTORS10 = ["pose", "background", "pattern", "color", "smaller", "shape", "partial_view",
             "subcategory", "texture", "larger"]


def test_factor_claims_reproduced_on_constructed_pattern():
    shifts = {f: (0.02 if k < 7 else -0.02) for k, f in enumerate(FACTORS10)}  # leads on 6 + pose below
    rows = FS.assess_factor_claims(_er_table(shifts, source_gap=0.02), "s", n_boot=200)
    by = {r["claim_id"]: r for r in rows}
    assert by["factors-majority"]["verdict"] == C.REPRODUCED
    assert "6 of 10" in by["factors-majority"]["detail"]
    assert by["factors-pose"]["verdict"] == C.REPRODUCED
    assert by["factors-source"]["verdict"] == C.REPRODUCED


def test_factor_claims_not_reproduced_and_not_testable():
    shifts = {f: (0.02 if k < 4 else -0.02) for k, f in enumerate(FACTORS10)}  # leads on 3, plus pose
    rows = FS.assess_factor_claims(_er_table(shifts, pose_shift=0.03, n=12), "s", n_boot=400)
    by = {r["claim_id"]: r for r in rows}
    assert by["factors-majority"]["verdict"] == C.NOT_REPRODUCED and "4 of 10" in by["factors-majority"]["detail"]
    assert by["factors-pose"]["verdict"] == C.NOT_REPRODUCED
    assert by["factors-source"]["verdict"] == C.NOT_REPRODUCED  # no gap between the sources
    one_source = _er_table(shifts, sources=("WIT", "WIT"))
    assert {r["claim_id"]: r for r in FS.assess_factor_claims(one_source, "s", n_boot=50)}[
        "factors-source"]["verdict"] == C.NOT_TESTABLE
    no_clip = _er_table(shifts).query("group != 'clip-zeroshot'")
    assert all(r["verdict"] == C.NOT_TESTABLE for r in FS.assess_factor_claims(no_clip, "s"))


def test_shape_claims_paired_and_group_rules():
    df = pd.DataFrame({
        "model": ["zoo:c1", "zoo:c2", "zoo:c3", "zoo:f1", "zoo:f2", "zoo:f3", "s1", "s2", "s3"],
        "group": ["clip-zeroshot"] * 3 + ["clip-ft-direct"] * 3 + ["standard"] * 3,
        "parent": [None, None, None, "c1", "c2", "zoo:c3", None, None, None],
        "shape_bias": [0.60, 0.65, 0.70, 0.50, 0.52, 0.61, 0.20, 0.25, 0.30],
    })
    pairs = summaries.paired_changes(df)
    assert list(pairs["model_before"]) == ["zoo:c1", "zoo:c2", "zoo:c3"]
    np.testing.assert_allclose(pairs["after"] - pairs["before"], [-0.10, -0.13, -0.09])
    by = {r["claim_id"]: r for r in SS.assess_shape_claims(df, "s", n_boot=200)}
    assert by["shape-clip"]["verdict"] == C.REPRODUCED
    assert by["shape-clip"]["evidence"].startswith(f"{0.65 - 0.25:+.3g}")
    assert by["shape-ft"]["verdict"] == C.REPRODUCED and "paired" in by["shape-ft"]["evidence"]
    flipped = df.assign(shape_bias=[0.1, 0.15, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7])
    by = {r["claim_id"]: r for r in SS.assess_shape_claims(flipped, "s", n_boot=200)}
    assert by["shape-clip"]["verdict"] == C.NOT_REPRODUCED and "opposite" in by["shape-clip"]["detail"]
    assert by["shape-ft"]["verdict"] == C.NOT_REPRODUCED


def test_disagreement_note_says_plainly_what_the_world_found():
    world = C.SOURCES[0]

    def row(verdict, cid="c1"):
        return {"claim_id": cid, "claim": f"claim {cid}", "source": world, "verdict": verdict,
                "detail": "", "evidence": f"evidence {cid}"}

    note = C.disagreement_note(C.claims_table([row(C.NOT_REPRODUCED), row(C.REPRODUCED, "c2")]))
    assert "disagrees" in note and "*claim c1*" in note and "evidence c1" in note
    assert "claim c2" not in note
    assert "could not test" in C.disagreement_note(C.claims_table([row(C.NOT_TESTABLE)]))
    assert "agrees" in C.disagreement_note(C.claims_table([row(C.REPRODUCED)]))
