"""The curation study: residuals on accuracy against numpy.polyfit, k-centre selection against
a brute-force greedy reference, the selections' claimed properties, bad input, and the
chapter at a tiny budget."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from clipsafety import book
from clipsafety.studies import curation as S
from clipsafety.synth import curation as C
from clipsafety.synth import raw_pool

sys.path.insert(0, str(Path(__file__).parent))
from conftest import needs_zoo  # noqa: E402
from test_chapters_factors_shape import _charts, run_chapter  # noqa: E402


def test_residuals_match_numpy_polyfit():
    rng = np.random.default_rng(0)
    x, y = rng.random(12), rng.random(12)
    ref = y - np.polyval(np.polyfit(x, y, 1), x)
    np.testing.assert_allclose(S.accuracy_residuals(x, y), ref, atol=1e-12)
    assert abs(S.accuracy_residuals(x, y).sum()) < 1e-12


def test_diversity_select_is_greedy_k_centre():
    pool = raw_pool(300)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 5))
    cur = C.diversity_select(pool, X, 40, seed=3)
    # brute-force reference: farthest-point greedy from the same seeded first row
    first = int(np.random.default_rng(3).integers(300))
    chosen = [first]
    for _ in range(39):
        d = np.min(((X[:, None, :] - X[chosen][None]) ** 2).sum(-1), axis=1)
        chosen.append(int(np.argmax(d)))
    assert cur.indices.tolist() == sorted(chosen)
    assert len(set(cur.indices.tolist())) == 40
    with pytest.raises(ValueError, match="features must be"):
        C.diversity_select(pool, X[:10], 5)


@needs_zoo
def test_selections_have_equal_sizes_balance_and_no_duplicates():
    pool = raw_pool(1500)
    sel = S.selections(pool, ["random", "dedup", "balanced", "alignment", "diversity"],
                       [0.5, 0.3], [200, 400], 0, "zoo:clip-convnext-wit-10k")
    names = {c for c, _ in sel}
    assert names == {"random", "dedup", "balanced", "alignment-50", "alignment-30", "diversity"}
    dup_of = pool.attributes()["duplicate_of"].to_numpy()
    root = np.arange(pool.n)
    for i in np.flatnonzero(dup_of >= 0):
        root[i] = root[dup_of[i]]
    cls = C.caption_classes(pool.captions())
    for (c, s), cur in sel.items():
        assert len(cur) == s == len(set(cur.indices.tolist())), (c, s)
        if c == "dedup":
            assert len(set(root[cur.indices])) == s  # no two rows are copies of one image
        if c == "balanced":
            assert np.bincount(cls[cur.indices], minlength=10).tolist() == [s // 10] * 10
    # alignment keeps the top-scored rows: the 30% selection's scores are above the pool median
    scores = C.alignment_scores(pool, __import__("clipsafety.zoo", fromlist=["x"]).alignment_scorer(
        "zoo:clip-convnext-wit-10k"), progress=False)
    assert scores[sel[("alignment-30", 200)].indices].min() >= np.median(scores)


@needs_zoo
@pytest.mark.parametrize("params,fragments", [
    ({"curations": ["random", "magic"]}, ["curations", "'magic'", "dedup"]),
    ({"sizes": [1000, 30000]}, ["sizes", "pool_size 20000"]),
    ({"sizes": [105]}, ["multiples of 10"]),
    ({"keep_fractions": [0.1]}, ["keep fraction 0.1 keeps 2000", "largest size 10000"]),
    ({"budget": 0}, ["budget", "[256, 500000]"]),
    ({"jobs": -1}, ["jobs", "integer >= 0"]),
    ({"reference": "zoo:sup-resnet-labelled-30k"}, ["reference", "not a zero-shot CLIP"]),
    ({"keep_fractions": [0.5, 1.5]}, ["keep_fractions", "(0, 1]"]),
])
def test_bad_input_is_refused_before_work(params, fragments):
    ch = book.get_chapter("curation")
    with pytest.raises(book.ParameterError) as exc:
        book.validate_params(ch, params)
    for f in fragments:
        assert f in str(exc.value), (f, str(exc.value))


@needs_zoo
def test_chapter_runs_at_a_tiny_budget_and_records_claims(tmp_path, monkeypatch):
    out = tmp_path / "outputs"
    monkeypatch.setenv("CLIPSAFETY_OUTPUTS", str(out))
    text = run_chapter("curation", tmp_path, pool_size=800, sizes=[100, 200], budget=256,
                       keep_fractions=[0.5, 0.3],
                       n_eval=40, n_boot=20, reference="zoo:clip-convnext-wit-10k")
    assert "**Finding (synthetic world + zoo).**" in text
    assert "make chapter NAME=curation" in text
    assert _charts(text) >= 3
    rec = json.loads((out / "curation.json").read_text())
    live = {r["claim_id"]: r["verdict"] for r in rec["claims"] if r["source"] == "synthetic world + zoo"}
    assert set(live) == set(S.CLAIMS)
    assert {r["curation"] for r in rec["tables"]["models"]} == {
        "random", "dedup", "balanced", "alignment-50", "alignment-30", "diversity"}
    pub = [r for r in rec["claims"] if r["source"] == "published upstream results"]
    assert pub and all(r["verdict"] == "not testable" for r in pub)


def test_model_table_equals_the_metrics_on_the_logits():
    from clipsafety import metrics
    from clipsafety.studies.finetuning import EvalSets

    rng = np.random.default_rng(4)
    sets = EvalSets("id", ["s1", "s2"], [])
    preds = {}
    for key in (("random", 100), ("dedup", 100)):
        p = {"T": float(rng.uniform(0.5, 2))}
        for n, sub in (("id#eval", None), ("s1", [0, 2, 3]), ("s2", None)):
            p[n] = (rng.normal(size=(80, 5)) * 3, rng.choice([0, 2, 3], 80), sub)
        preds[key] = p
    t = S.model_table(preds, sets).set_index(["curation", "condition"])
    for (c, _), p in preds.items():
        ref_id = S.calibration_of(*p["id#eval"], p["T"])
        ref_sh = [S.calibration_of(*p[n], p["T"]) for n in ("s1", "s2")]
        for k, v in ref_id.items():
            assert t.loc[(c, "id"), k] == pytest.approx(v, abs=1e-12)
            assert t.loc[(c, "shift"), k] == pytest.approx(np.mean([r[k] for r in ref_sh]), abs=1e-12)
        assert ref_id["ece_before"] == metrics.ece_from_logits(p["id#eval"][0], p["id#eval"][1])


def test_claims_are_premise_not_met_when_the_models_are_near_chance():
    import pandas as pd
    from clipsafety import claims

    models = pd.DataFrame({"curation": ["a", "b"], "size": [10, 10], "condition": ["id", "id"],
                           "acc": [0.11, 0.12]})
    res = pd.DataFrame({"metric": "ece", "scaling": "before", "condition": "id",
                        "curation": ["a", "b"], "residual": [0.1, -0.1], "lo": [0.05, -0.2],
                        "hi": [0.2, -0.05]})
    level, corr = claims.bonferroni(2)
    kw = dict(level=level, correction=corr, n_models=2)
    rows = S.assess(res, claims.WORLD, premises=S.premises_of(models), **kw)
    ece = next(r for r in rows if r.claim.claim_id == "cur-ece")
    assert ece.verdict == claims.PREMISE_NOT_MET and "lowest ID accuracy 11.0%" in ece.reason
    assert ece.estimate == 2  # the measured count is kept
    learned = models.assign(acc=[0.4, 0.5])
    ece = next(r for r in S.assess(res, claims.WORLD, premises=S.premises_of(learned), **kw)
               if r.claim.claim_id == "cur-ece")
    # both curations' intervals exclude zero, two-sided; one training run each
    assert ece.verdict == claims.REPRODUCED and "2 of 2" in ece.reason
    assert ece.correction.startswith("Bonferroni over 2")
    assert ece.row()["label"] == "reproduced (single seed, 2 runs per arm)"
    # one interval touching zero: one of two, still at least one
    res2 = res.assign(lo=[0.0, -0.2])
    ece = next(r for r in S.assess(res2, claims.WORLD, **kw) if r.claim.claim_id == "cur-ece")
    assert ece.verdict == claims.REPRODUCED and ece.estimate == 1
    res3 = res.assign(lo=[-0.01, -0.2], hi=[0.2, 0.01])
    ece = next(r for r in S.assess(res3, claims.WORLD, **kw) if r.claim.claim_id == "cur-ece")
    assert ece.verdict == claims.INCONCLUSIVE


@needs_zoo
def test_parallel_workers_give_the_in_process_results():
    """Each CLIP trains single-threaded from its own seed, so 2 worker processes give the same
    logits, bit for bit, as training them one after another in this process."""
    from clipsafety.studies.finetuning import eval_sets

    pool = raw_pool(400)
    sel = {("random", 100): C.random_subset(pool, 100, seed=0),
           ("dedup", 100): C.match_size(C.deduplicate(pool), 100, seed=0, pool=pool)}
    sets = eval_sets(60, 0, ood=[])
    one, _ = S.train_and_score(pool, sel, 256, "convnext", sets, 0, jobs=1, progress=False)
    two, _ = S.train_and_score(pool, sel, 256, "convnext", sets, 0, jobs=2, progress=False)
    assert sorted(one) == sorted(two) == sorted(sel)
    for key in sel:
        assert one[key]["T"] == two[key]["T"]
        for name in set(one[key]) - {"T"}:
            np.testing.assert_array_equal(one[key][name][0], two[key][name][0])
            np.testing.assert_array_equal(one[key][name][1], two[key][name][1])
    # the two selections are different models (the seed and the data differ)
    a, b = (one[k][f"{sets.id_set}#eval"][0] for k in sorted(sel))
    assert not np.array_equal(a, b)


# ----------------------------------------------------------------------------- the chapter's
# tables, on hand-made inputs with the values counted by hand

class _Pool:
    """A six-row pool: rows 4 and 5 copy rows 0 and 1; captions name a category, another
    category or none."""

    n = 6
    targets = np.array([0, 0, 1, 2, 0, 0])

    class cfg:  # noqa: N801
        @staticmethod
        def to_dict():
            return {"p_misaligned": 0.25, "p_class_word": 0.75}

    def attributes(self):
        import pandas as pd

        return pd.DataFrame({"duplicate_of": [-1, -1, -1, -1, 0, 1]})

    def captions(self):
        return ["a circle", "a square here", "a photo", "one triangle", "a circle", "a square here"]


class _Cur:
    def __init__(self, indices):
        self.indices = np.array(indices)


def test_selection_summary_counts_each_selection_by_hand():
    sel = {("dedup", 4): _Cur([0, 1, 2, 3]), ("random", 2): _Cur([4, 5]),
           ("balanced", 2): _Cur([1, 3])}
    t = S.selection_summary(_Pool(), sel).set_index(["curation", "size"])
    assert list(t.index) == [("balanced", 2), ("dedup", 4), ("random", 2)]  # key order
    # rows 0..3: no copies; captions name circle (0), square (1), nothing, triangle (2);
    # labels 0, 0, 1, 2: row 1 names another class than its label, row 2 none;
    # largest class: label 0 twice of 4
    assert t.loc[("dedup", 4)].tolist() == [0.0, 0.25, 0.5, 0.5]
    # rows 4, 5 are copies; captions circle (label 0: agrees) and square (label 0: differs)
    assert t.loc[("random", 2)].tolist() == [1.0, 0.0, 0.5, 1.0]
    # rows 1, 3: square vs label 0, triangle vs label 2; labels 0 and 2
    assert t.loc[("balanced", 2)].tolist() == [0.0, 0.0, 0.5, 0.5]
    built = S.built_in_table(_Pool()).set_index("property")["value"]
    assert built.tolist() == [6, round(2 / 6, 3), 0.25, 0.75]


def test_chart_tables_reshape_the_model_table():
    import pandas as pd

    models = pd.DataFrame({"curation": ["a", "a", "b", "b"], "size": [10, 10, 20, 20],
                           "condition": ["id", "shift", "id", "shift"], "T": [1.5, 1.5, 1000.0, 1000.0],
                           "acc": [0.5, 0.4, 0.11, 0.1], "ece_before": [0.1, 0.2, 0.3, 0.4],
                           "ece_after": [0.05, 0.15, 0.25, 0.35], "nll_before": [1.0, 2.0, 3.0, 4.0],
                           "nll_after": [0.9, 1.9, 2.9, 3.9]})
    long = S.calibration_long(models, "nll")
    assert len(long) == 8 and set(long["scaling"]) == {"before", "after"}
    by = long.set_index(["curation", "condition", "scaling"])["value"]
    assert by[("b", "shift", "before")] == 4.0 and by[("a", "id", "after")] == 0.9
    assert (long.set_index(["curation", "condition"])["acc"].loc[("a", "shift")] == 0.4).all()
    sizes = S.size_long(models)
    assert sorted(sizes["measure"].unique()) == ["acc", "ece_after", "ece_before"]
    assert sizes.set_index(["curation", "measure"])["value"].to_dict() == {
        ("a", "acc"): 0.5, ("a", "ece_before"): 0.1, ("a", "ece_after"): 0.05,
        ("b", "acc"): 0.11, ("b", "ece_before"): 0.3, ("b", "ece_after"): 0.25}
    assert S.mean_temperatures(models).to_dict() == {"a": 1.5, "b": 1000.0}
    # chance is 10%: a (50%) is above twice chance, b (11%) is not; b's T sits at the bound
    learn = S.learning_summary(models)
    assert learn == {"above": 1, "n": 2, "id_min": 0.11, "id_max": 0.5, "at_bound": 1,
                     "learned": False}
    assert S.learning_summary(models.assign(acc=0.1))["learned"] is False


def test_residual_tables_and_text():
    import pandas as pd

    res = pd.DataFrame({"metric": ["ece", "ece", "nll"], "scaling": ["before"] * 3,
                        "condition": ["id"] * 3, "curation": ["a", "b", "a"],
                        "residual": [0.0123, -0.004, 0.5], "lo": [0.01, -0.01, 0.25],
                        "hi": [0.015, 0.002, 0.75]})
    assert S.residual_cells(res)["cell"].tolist() == ["ece before (id)"] * 2 + ["nll before (id)"]
    # ECE in points, NLL as it is
    assert S.residual_text(res, "ece", "before", "id") == "a +1.23 [+1.00, +1.50]; b -0.40 [-1.00, +0.20]"
    assert S.residual_text(res, "nll", "before", "id") == "a +0.50 [+0.25, +0.75]"
    wide = S.residual_wide(res)
    assert wide.loc["b", ("ece", "before", "id")] == -0.004 and np.isnan(wide.loc["b", ("nll", "before", "id")])


def test_published_views_and_untested_rows():
    import pandas as pd

    dc = pd.DataFrame({"model": [f"m{i}" for i in range(8)], "tag": "datacomp", "extra": 1.0,
                       "imagenet": np.linspace(0.1, 0.8, 8)})
    assert S.command_models(dc) == "[" + ",".join(f'"m{i}"' for i in range(6)) + "]"
    assert S.command_models(pd.DataFrame()) == "[]"
    view = S.datacomp_view(dc)
    assert list(view.columns) == ["tag", "imagenet"] and list(view.index) == list(dc["model"])
    rows = S.untested_rows("published upstream results", "why")
    assert [r.claim.claim_id for r in rows] == list(S.CLAIMS)
    assert {(r.verdict, r.source) for r in rows} == {("not testable", "published upstream results")}
