"""The studies' claim rules on hand-constructed evidence (the verdict machinery itself:
test_verdicts.py): every rule must be able to give reproduced, contradicted, inconclusive,
not testable, premise not met and built in, with its unit, n per side and correction filled."""

import numpy as np
import pandas as pd
import pytest
from clipsafety import claims as C
from clipsafety.studies import factors as FS
from clipsafety.studies import shape_bias as SS

FACTORS10 = ["pose", "background", "pattern", "color", "smaller", "shape", "partial_view",
             "subcategory", "texture", "larger"]


# ------------------------------------------------------------------ factors (section 4.1)

def _er(clip_shift: dict, n=8, n_clip=8, sources=("wit-like", "laion-like")):
    """Effective-robustness table: zero-shot CLIP shifted by clip_shift[factor] (fraction)."""
    rows = []
    for f in FACTORS10:
        for g, k in (("standard", n), ("more-data", n), ("clip-zeroshot", n_clip),
                     ("clip-ft-direct", n)):
            for i in range(k):
                # alternating +-0.2 points: every group's mean is exactly its shift
                v = 0.002 * (1 if i % 2 else -1) + (clip_shift.get(f, 0.0) if g == "clip-zeroshot" else 0)
                if g == "clip-ft-direct":
                    v += 0.5  # far off: must not enter the comparison (not an ImageNet model)
                rows.append({"model": f"{g}-{i}", "group": g, "factor": f, "eff_rob": v,
                             "source": sources[i % 2] if g.startswith("clip") else "labelled",
                             "factor_acc": 0.5, "overall_acc": 0.6, "chance": 0.1})
    return pd.DataFrame(rows)


def _by(js):
    return {j.claim.claim_id: j for j in js}


def test_factor_claims_reproduced_with_fields():
    shift = {f: 0.03 for f in FACTORS10} | {"pose": -0.03, "partial_view": -0.03, "color": 0.0,
                                           "texture": 0.0}
    by = _by(FS.judge_factor_claims(_er(shift), "s", n_boot=300))
    d, j = by["factors-differ"], by["factors-journal"]
    assert d.verdict == C.REPRODUCED and d.estimate == 8  # 8 of 10 differ (6 above, 2 below)
    assert j.verdict == C.REPRODUCED and j.estimate == 8
    for x in (d, j):
        assert x.unit == C.MODELS and x.n == (8, 16) and x.correction.startswith("Bonferroni over 10")
        assert x.sides == ("zero-shot CLIP", "ImageNet models")
    # the fine-tuned CLIPs (+50 points) are not among the ImageNet models: estimates stay at +3
    items = FS.clip_vs_imagenet(_er(shift), n_boot=100)
    assert items.set_index("item").loc["shape", "estimate"] == pytest.approx(3.0, abs=0.2)
    assert set(items["n_imagenet"]) == {16}


def test_journal_reading_contradicted_and_inconclusive():
    up = {f: 0.03 for f in FACTORS10}
    by = _by(FS.judge_factor_claims(_er(up | {"partial_view": -0.03}), "s", n_boot=300))
    assert by["factors-differ"].verdict == C.REPRODUCED
    assert by["factors-journal"].verdict == C.CONTRADICTED  # pose lies above zero
    assert "pose: contradicted" in by["factors-journal"].reason
    few = {"pose": -0.03, "partial_view": -0.03, "shape": 0.03}
    by = _by(FS.judge_factor_claims(_er(few), "s", n_boot=300))
    assert by["factors-differ"].verdict == C.INCONCLUSIVE and by["factors-differ"].estimate == 3
    # 1 of 8 above and none below: 6 can still be reached in principle, so inconclusive
    assert by["factors-journal"].verdict == C.INCONCLUSIVE
    down = {f: -0.03 for f in FACTORS10}
    assert _by(FS.judge_factor_claims(_er(down), "s", n_boot=300))[
        "factors-journal"].verdict == C.CONTRADICTED  # 8 of 8 below: 6 above cannot be reached


def test_thin_evidence_is_labelled_and_missing_groups_are_not_testable():
    shift = {f: 0.03 for f in FACTORS10}
    d = _by(FS.judge_factor_claims(_er(shift, n_clip=3), "s", n_boot=200))["factors-differ"]
    assert C.label(d.verdict, d.unit, d.n) == "reproduced (n = 3 models)"
    no_clip = _er(shift).query("group != 'clip-zeroshot'")
    assert all(j.verdict == C.NOT_TESTABLE for j in FS.judge_factor_claims(no_clip, "s"))


def _source_table(gap: dict, n_w=6, n_l=6, seed=1):
    """Zero-shot CLIPs on two sources: factor accuracy = overall accuracy + gap for LAION."""
    rng = np.random.default_rng(seed)
    rows = []
    for side, k in (("wit-like", n_w), ("laion-like", n_l)):
        for i in range(k):
            acc = 0.4 + 0.05 * i
            for f in FACTORS10:
                fa = acc - 0.05 + rng.normal(0, 0.002) + (gap.get(f, 0) if side == "laion-like" else 0)
                rows.append({"model": f"{side}-{i}", "group": "clip-zeroshot", "source": side,
                             "factor": f, "factor_acc": fa, "overall_acc": acc, "eff_rob": 0.0,
                             "chance": 0.1})
    for i in range(4):
        for f in FACTORS10:
            rows.append({"model": f"std-{i}", "group": "standard", "source": "labelled", "factor": f,
                         "factor_acc": 0.5, "overall_acc": 0.55, "eff_rob": 0.0, "chance": 0.1})
    return pd.DataFrame(rows)


def test_source_claim_three_directions_at_equal_accuracy():
    claim = {"shape": 0.05, "background": -0.05, "pose": -0.05}
    j = _by(FS.judge_factor_claims(_source_table(claim), "s", n_boot=300))["factors-source"]
    assert j.verdict == C.REPRODUCED and j.estimate == 3
    assert j.n == (6, 6) and j.correction.startswith("Bonferroni over 3")
    raw = FS.source_differences(_source_table(claim), n_boot=100).set_index("factor")
    assert raw.loc["shape", "raw"] == pytest.approx(5.0, abs=0.3)  # points, LAION minus WIT
    assert raw.loc["pose", "raw"] == pytest.approx(-5.0, abs=0.3)
    assert raw.loc["pose", "estimate"] == pytest.approx(5.0, abs=0.3)  # turned to the claim's side
    flipped = claim | {"background": 0.05}
    j = _by(FS.judge_factor_claims(_source_table(flipped), "s", n_boot=300))["factors-source"]
    assert j.verdict == C.CONTRADICTED and "background" in j.reason
    j = _by(FS.judge_factor_claims(_source_table({"shape": 0.05}), "s", n_boot=300))["factors-source"]
    assert j.verdict == C.INCONCLUSIVE
    j = _by(FS.judge_factor_claims(_source_table(claim, n_w=2), "s"))["factors-source"]
    assert j.verdict == C.NOT_TESTABLE and "found 6 and 2" in j.reason


def test_world_factor_premises_gate_and_built_in():
    shift = {f: 0.03 for f in FACTORS10}
    er = _er(shift)
    er.loc[er["group"] == "standard", "factor_acc"] = 0.5  # costs them 10 points everywhere
    js = _by(FS.assess_factor_claims(er, C.WORLD, n_boot=200, world=True))
    # the zoo CLIPs' web-like sources render every factor at other rates than the labelled set
    assert js["factors-differ"].verdict == C.BUILT_IN
    assert "p_pose" in js["factors-differ"].reason and js["factors-differ"].estimate == 10
    low = er.copy()
    low.loc[(low.factor == "color") & (low.model == "clip-zeroshot-0"), "factor_acc"] = 0.12
    j = _by(FS.assess_factor_claims(low, C.WORLD, n_boot=200, world=True))["factors-differ"]
    assert j.verdict == C.PREMISE_NOT_MET and "color (clip-zeroshot-0 12.0%)" in j.premise
    assert j.estimate == 10  # the measured effect is kept
    free = er.copy()
    free.loc[(free.factor == "larger") & (free.group == "standard"), "factor_acc"] = 0.7
    j = _by(FS.assess_factor_claims(free, C.WORLD, n_boot=200, world=True))["factors-journal"]
    assert j.verdict == C.PREMISE_NOT_MET and "no cost on larger" in j.premise
    # the same claims off the world are judged without premises
    assert _by(FS.assess_factor_claims(free, "s", n_boot=200))["factors-journal"].verdict == C.CONTRADICTED


def test_built_in_factors_reads_the_world_settings():
    from clipsafety.synth import sources as S

    fixed, setting = FS.built_in_factors(["laion-like"] * 3, ["pose"], ["wit-like"] * 3)
    assert fixed == ["pose"] and f"{S.LAION.p_pose:.0%} vs {S.WIT.p_pose:.0%}" in setting
    fixed, _ = FS.built_in_factors(["wit-narrow"] * 3, ["pose"])  # narrow = the labelled rates
    assert fixed == []
    # subtype_probs are the same in every source: subcategory is never fixed
    fixed, setting = FS.built_in_factors(["wit-like", "laion-like"], FACTORS10)
    assert "subcategory" not in fixed and len(fixed) == 9 and "free of such a setting: subcategory" in setting


# ------------------------------------------------------------------ shape bias (section 4.2)

def _shape(clip=0.6, std=0.3, more=0.35, ft=0.45, n=6, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for g, mu in (("clip-zeroshot", clip), ("standard", std), ("more-data", more),
                  ("clip-ft-direct", ft)):
        for i in range(n):
            rows.append({"model": f"{g}-{i}", "group": g, "shape_bias": mu + rng.normal(0, 0.01),
                         "cue_share": 0.8, "shape_only_acc": 0.6, "id_acc": 0.5 + 0.02 * i,
                         "source": ("wit-like", "laion-like")[i % 2] if g == "clip-zeroshot"
                         else ("wit-like" if g == "clip-ft-direct" else "labelled"),
                         "parent": f"clip-zeroshot-{i}" if g == "clip-ft-direct" else None})
    return pd.DataFrame(rows)


def test_shape_clip_against_each_group():
    j = SS.judge_shape_clip(_shape(), "s", n_boot=300)
    assert j.verdict == C.REPRODUCED and j.estimate == 3
    assert j.n == (6, 6, 6, 6) and j.correction.startswith("Bonferroni over 3")
    assert j.sides == ("zero-shot CLIP", "standard ImageNet models", "more-data models",
                       "fine-tuned CLIPs")
    assert SS.judge_shape_clip(_shape(more=0.7), "s", n_boot=300).verdict == C.CONTRADICTED
    assert SS.judge_shape_clip(_shape(more=0.6, ft=0.6), "s", n_boot=300).verdict == C.INCONCLUSIVE
    two = _shape().query("group in ['clip-zeroshot', 'standard']")
    j = SS.judge_shape_clip(two, "s", n_boot=300)  # one group present: no correction
    assert j.verdict == C.REPRODUCED and j.correction == "none"
    assert j.estimate == pytest.approx(two.groupby("group").shape_bias.mean().diff().abs().iloc[-1])


def test_shape_ft_per_parent_and_source_at_equal_accuracy():
    j = SS.judge_shape_ft(_shape(), "s", n_boot=300)
    assert j.verdict == C.REPRODUCED and j.unit == C.PARENTS and j.n == (6, 6)
    assert j.estimate == pytest.approx(-0.15, abs=0.02)
    assert SS.judge_shape_ft(_shape(ft=0.8), "s", n_boot=300).verdict == C.CONTRADICTED
    assert SS.judge_shape_ft(_shape().drop(columns="parent"), "s").verdict == C.NOT_TESTABLE
    t = _shape()
    laion = (t.group == "clip-zeroshot") & (t.source == "laion-like")
    t.loc[laion, "shape_bias"] += 0.1
    j = SS.judge_shape_source(t, "s", n_boot=300)
    assert j.verdict == C.REPRODUCED and j.n == (3, 3) and j.sides == ("LAION CLIPs", "WIT CLIPs")
    assert j.estimate == pytest.approx(0.1, abs=0.03)
    j = SS.judge_shape_source(t.drop(index=t.index[(t.source == "wit-like") & (t.group == "clip-zeroshot")][:1]), "s")
    assert j.verdict == C.NOT_TESTABLE and "found 3 and 2" in j.reason  # the line needs 3 WIT CLIPs
    t.loc[laion, "shape_bias"] -= 0.2
    assert SS.judge_shape_source(t, "s", n_boot=300).verdict == C.CONTRADICTED


def test_world_shape_premises_and_cue_strength_built_in():
    from clipsafety.synth import sources as S

    js = _by(SS.assess_shape_claims(_shape(), C.WORLD, n_boot=200, world=True))
    # WIT-like and LAION-like CLIPs saw a weaker characteristic cue than the labelled set
    assert js["shape-clip"].verdict == C.BUILT_IN and f"{S.LABELLED.cue_strength:g}" in js[
        "shape-clip"].reason
    assert js["shape-clip"].estimate == 3 and "cue share" in js["shape-clip"].premise
    low = _shape()
    low.loc[low.group.isin(["standard", "more-data"]), "cue_share"] = 0.2
    j = _by(SS.assess_shape_claims(low, C.WORLD, n_boot=200, world=True))["shape-clip"]
    assert j.verdict == C.PREMISE_NOT_MET and "ImageNet models" in j.premise
    blind = _shape().assign(shape_only_acc=0.12)
    j = _by(SS.assess_shape_claims(blind, C.WORLD, n_boot=200, world=True))["shape-ft"]
    assert j.verdict == C.PREMISE_NOT_MET and "shape learning" in j.premise
    same = _shape().assign(source="labelled")  # no cue-strength contrast: judged
    j = _by(SS.assess_shape_claims(same, C.WORLD, n_boot=200, world=True))["shape-clip"]
    assert j.verdict == C.REPRODUCED


def test_every_claim_has_its_fields_and_one_home():
    for home, claims in (("factors", FS.CLAIMS), ("shape_bias", SS.CLAIMS)):
        for c in claims.values():
            assert c.home == home and c.section and c.compares and c.test and c.text
    assert SS.CLAIMS["shape-source"].kind == C.EXTENSION
    assert {c.kind for c in FS.CLAIMS.values()} == {C.PAPER}
    assert FS.CLAIMS["factors-differ"].direction == "differs"
    assert SS.CLAIMS["shape-ft"].direction == "less"
