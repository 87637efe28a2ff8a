"""claims.py: verdict rules on hand-constructed evidence."""

import math

import pytest

from clipsafety import claims as C

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
        C._row(CLAIM, SRC, "maybe", "", "")


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
