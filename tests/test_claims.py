"""The studies' claim rules on hand-constructed evidence (the verdict machinery itself:
test_verdicts.py)."""

import math

import pytest
from clipsafety import claims as C
from clipsafety import summaries
from clipsafety.studies import factors as FS
from clipsafety.studies import shape_bias as SS

CLAIM = C.Claim("clip-shape", "zero-shot CLIP is more shape-biased than ImageNet models")
SRC = C.SOURCES[0]


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
