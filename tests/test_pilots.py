"""The confidence-regime pilots (issue 28): their measures against independent references
(scipy's softmax, open_clip's ClipLoss, a brute-force grid), the recipe knobs they turn, and
the appendix's reading of their tables."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from clipsafety.zoo import pilots as P
from scipy.special import softmax


def _cosines(n=400, c=10, seed=0, signal=0.15):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    C = rng.normal(0, 0.05, (n, c))
    C[np.arange(n), y] += signal * rng.random(n)
    return np.clip(C, -1, 1), y


def test_confidence_gap_matches_scipy():
    C, y = _cosines()
    L = 20 * C
    acc, conf, gap = P.confidence_gap(L, y)
    assert acc == pytest.approx(float((L.argmax(1) == y).mean()))
    assert conf == pytest.approx(float(softmax(L, 1).max(1).mean()), rel=1e-12)
    assert gap == pytest.approx(100 * (conf - acc))


@pytest.mark.parametrize("target", [-5.0, 0.0, 4.0])
def test_scale_for_gap_hits_the_target_and_the_gap_rises_with_scale(target):
    C, y = _cosines(seed=1)
    s = P.scale_for_gap(C, y, target)
    acc = (C.argmax(1) == y).mean()
    assert 100 * (softmax(s * C, 1).max(1).mean() - acc) == pytest.approx(target, abs=1e-4)
    gaps = [100 * (softmax(t * C, 1).max(1).mean() - acc) for t in np.geomspace(1, 500, 30)]
    assert np.all(np.diff(gaps) > 0)
    assert math.isnan(P.scale_for_gap(C, y, 200.0))  # a gap above 100 - accuracy is unreachable


def test_contrastive_loss_equals_open_clip_and_the_masked_torch_loss():
    from clipsafety.zoo.train import same_class_masked_loss
    from open_clip.loss import ClipLoss

    g = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(32, 16, generator=g, dtype=torch.float64), dim=1)
    txt = torch.nn.functional.normalize(img + 0.8 * torch.randn(32, 16, generator=g, dtype=torch.float64), dim=1)
    sim = (img @ txt.T).numpy()
    ref = float(ClipLoss()(img, txt, torch.tensor(17.0, dtype=torch.float64)))
    assert P.contrastive_loss(sim, 17.0) == pytest.approx(ref, rel=1e-10)
    labels = torch.randint(0, 4, (32,), generator=g)
    same = (labels[:, None] == labels[None, :]).numpy()
    masked = float(same_class_masked_loss(img, txt, torch.tensor(17.0, dtype=torch.float64), labels))
    assert P.contrastive_loss(sim, 17.0, same) == pytest.approx(masked, rel=1e-10)
    # by hand: each row's (and column's) cross-entropy over its positive and its negatives of
    # another category only
    from scipy.special import logsumexp

    L = 17.0 * sim
    keep = ~same | np.eye(32, dtype=bool)
    rows = np.mean([logsumexp(L[i][keep[i]]) - L[i, i] for i in range(32)])
    cols = np.mean([logsumexp(L[:, i][keep[:, i]]) - L[i, i] for i in range(32)])
    assert masked == pytest.approx((rows + cols) / 2, rel=1e-10)
    assert P.contrastive_loss(sim, 17.0, same) < P.contrastive_loss(sim, 17.0)  # fewer negatives


def test_contrastive_optimal_scale_is_the_grid_minimum():
    rng = np.random.default_rng(3)
    sims = []
    for _ in range(4):
        a = rng.normal(size=(24, 8))
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        b = a + 0.9 * rng.normal(size=a.shape)
        b /= np.linalg.norm(b, axis=1, keepdims=True)
        sims.append(a @ b.T)
    s = P.contrastive_optimal_scale(sims)
    grid = np.geomspace(1, 1000, 4000)
    losses = [np.mean([P.contrastive_loss(S, t) for S in sims]) for t in grid]
    assert s == pytest.approx(grid[int(np.argmin(losses))], rel=0.01)
    assert 1 < s < 1000


def _tiny_clip_run(**knobs):
    from clipsafety.synth import VOCAB, WordTokenizer, get_dataset
    from clipsafety.zoo.arch import clip_config
    from clipsafety.zoo.train import build_clip_seeded, train_clip

    torch.set_num_threads(1)
    ds = get_dataset("train-wit-10k", n=512)
    x, y, _ = ds.arrays()
    clip = build_clip_seeded(clip_config("synth_convnext_xs", vocab_size=len(VOCAB)), 0)
    labels = y if knobs.pop("masked", False) else None
    train_clip(clip, x, WordTokenizer(16)(ds.captions()), samples_seen=640, seed=0, batch=64,
               progress=False, labels=labels, **knobs)
    return clip


@pytest.mark.slow
def test_recipe_knobs_of_the_pilots_change_what_they_name():
    base = _tiny_clip_run()
    fixed = _tiny_clip_run(scale_init=100.0, scale_fixed=True)
    fast = _tiny_clip_run(scale_lr_mult=10.0)
    start = math.log(1 / 0.07)
    assert float(fixed.logit_scale.detach()) == pytest.approx(math.log(100.0))  # frozen: not moved
    # ten times the learning rate moves the scale further from its start than the recipe does
    assert abs(float(fast.logit_scale.detach()) - start) > 3 * abs(float(base.logit_scale.detach()) - start)
    masked = _tiny_clip_run(masked=True)
    assert not torch.equal(masked.logit_scale, base.logit_scale)
    # that the knobs' defaults are the zoo's recipe is checked against the committed zoo:
    # test_each_pilots_control_reproduces_the_committed_model


def test_appendix_reads_the_pilot_tables():
    from clipsafety.studies import appendix_world as W

    committed = pd.DataFrame({
        "model": ["c1", "c2", "s1", "s2"], "group": ["clip-zeroshot"] * 2 + ["standard"] * 2,
        "gap_points": [-10.0, 2.0, -3.0, 4.0], "id_temperature": [0.8, 1.0, 1.1, 0.9],
        "logit_scale": [14.0, 15.0, np.nan, np.nan],
        "contrastive_optimal_scale": [14.5, 15.2, np.nan, np.nan],
        "contrastive_optimal_scale_no_same_category": [16.0, 17.0, np.nan, np.nan],
        "same_category_negative_share": [0.1, 0.1, np.nan, np.nan],
        "scale_for_zero_gap": [25.0, 14.0, np.nan, np.nan]})
    ranges = {"clip-zeroshot": (-1.0, 5.8, 0.8, 9), "standard": (-20.0, 20.0, -4.0, 500)}
    g = W.regime_by_group(committed, ranges).set_index("group")
    assert g.loc["clip-zeroshot", "inside_real"] == 0.5
    assert g.loc["standard", "over_confident"] == 0.5
    assert g.loc["clip-zeroshot", "gap_median"] == -4.0
    trained = pd.DataFrame({"model": ["m", "m"], "variant": ["base", "x"],
                            "id_accuracy": [0.5, 0.55], "gap_points": [-10.0, -4.0],
                            "logit_scale": [14.0, 30.0]})
    eff = W.pilot_effects(trained)
    assert eff.loc[0, "gap_change"] == 6.0 and eff.loc[0, "accuracy_change"] == pytest.approx(5.0)
    text = " ".join(W.regime_sentences(committed, None, trained))
    assert "100% of them sit within 15%" in text and "gap -10.0 → -4.0" in text
    assert "*x* moves the gap most (a median +6.0 points)" in text
    # a pilot that breaks the model (accuracy -30 points) is not named as the lever
    broke = trained.assign(id_accuracy=[0.5, 0.2])
    assert "moves the gap most" not in " ".join(W.regime_sentences(committed, None, broke))
    miss = " ".join(W.regime_sentences(committed, None, trained, clip_range=(-1, 3)))
    assert "no CLIP pilot (0 of 1; 0 inside the range at all)" in miss
    assert "No recipe change puts at least 75%" in miss
    # the committed CLIPs' gaps are -10 and +2: half of them in (-1, 3), so premise not met
    assert "Of the committed zoo's 2 zero-shot CLIPs, 50% lie in the range, so" in miss
    kept = trained.assign(id_accuracy=[0.5, 0.51])  # +1 point: kept
    hit = " ".join(W.regime_sentences(committed, None, kept, clip_range=(-5, 3)))
    assert "m with *x* (1 of 1; 1 inside the range at all)" in hit
    assert "The recipe change(s) *x* put" in hit and "a retrained zoo with it is the next step" in hit
    # a change of accuracy beyond the allowance, up (+5) or down (-10), is not a zoo kept
    for acc in (0.55, 0.40):
        moved = " ".join(W.regime_sentences(committed, None, trained.assign(id_accuracy=[0.5, acc]),
                                            clip_range=(-5, 3)))
        assert "no CLIP pilot (0 of 1; 1 inside the range at all)" in moved
    # a committed zoo inside the range is not called premise-not-met
    inside = " ".join(W.regime_sentences(committed.assign(gap_points=[1.0, 2.0, -3.0, 4.0]), None,
                                         trained, clip_range=(-1, 3)))
    assert "100% lie in the range." in inside and "premise not met" not in inside


def _pilot_table(name):
    path = P.pilot_dir() / name
    if not path.exists():
        pytest.skip(f"{path} not measured (make zoo-pilots)")
    return pd.read_csv(path)


def test_committed_pilot_table_matches_the_zoo_it_measured():
    """The regime table is of the committed zoo: every model but the reference, each ID
    accuracy equal to the one ``make zoo`` recorded in eval.csv (a retrained zoo makes it stale)."""
    committed = _pilot_table("committed.csv")
    cat = pd.read_csv(P.zoo_dir() / "catalog.csv")
    ev = pd.read_csv(P.zoo_dir() / "eval.csv")
    acc = ev[ev["dataset"] == "synth:id-test"].set_index("id")["accuracy"]
    assert set(committed["model"]) == set(cat.loc[cat["group"] != "reference", "id"])
    assert np.allclose(committed["id_accuracy"], committed["model"].map(acc), atol=1e-9)
    clips = committed[committed["kind"] == "clip"]
    assert len(clips) == (cat["kind"] == "clip").sum()
    assert clips[["logit_scale", "contrastive_optimal_scale", "scale_for_zero_gap"]].notna().all().all()


def test_each_pilots_control_reproduces_the_committed_model():
    """The ``base`` pilot retrains the zoo's own recipe: its accuracy equals the committed
    model's, so each pilot's change is measured against the zoo, not a drifted baseline."""
    trained = _pilot_table("trained.csv")
    ev = pd.read_csv(P.zoo_dir() / "eval.csv")
    acc = ev[ev["dataset"] == "synth:id-test"].set_index("id")["accuracy"]
    base = trained[trained["variant"] == "base"]
    assert set(base["model"]) == (set(P.CLIP_PILOT_MODELS) | set(P.SUP_PILOT_MODELS)
                                  | set(P.BUDGET_PILOT_MODELS))
    assert np.allclose(base["id_accuracy"], base["model"].map(acc), atol=0.005)


def test_best_single_scale_is_the_brute_force_maximum():
    rng = np.random.default_rng(7)
    lo = rng.uniform(10, 60, 30)
    hi = lo * rng.uniform(1.05, 1.6, 30)
    s, n = P.best_single_scale(lo, hi)
    grid = np.geomspace(5, 200, 20000)
    brute = max(int(((lo <= g) & (g <= hi)).sum()) for g in grid)
    assert n == brute and ((lo <= s) & (s <= hi)).sum() == n
    assert P.best_single_scale([np.nan], [np.nan]) [1] == 0


def test_retrain_cost_counts_the_clips_budget_and_their_fine_tunes():
    from clipsafety.studies import appendix_world as W

    cat = pd.DataFrame({"kind": ["clip", "clip", "ft", "ft2", "sup"],
                        "train_seconds": [10.0, 20.0, 5.0, 7.0, 100.0]})
    assert W.retrain_seconds(cat, 4) == 4 * 30 + 12


def test_the_budget_response_orders_each_towers_gap_by_samples_seen():
    from clipsafety.studies import appendix_world as W

    trained = pd.DataFrame({
        "model": ["a"] * 3 + ["b"] * 3, "variant": ["4x samples seen", "base", "2x samples seen"] * 2,
        "gap_points": [5.0, -10.0, -3.0, -1.0, -8.0, -9.0], "id_accuracy": [0.5] * 6,
        "logit_scale": [14.0] * 6})
    d = W.budget_response(trained)
    assert d[d["model"] == "a"]["gap_points"].tolist() == [-10.0, -3.0, 5.0]
    committed = pd.DataFrame({"model": ["a"], "group": ["clip-zeroshot"], "gap_points": [-10.0],
                              "id_temperature": [0.8], "logit_scale": [np.nan]})
    text = " ".join(W.regime_sentences(committed, None, trained))
    assert "a: -10.0 → -3.0 → +5.0; b: -8.0 → -9.0 → -1.0" in text
    # both rise from 1x to 4x (+15, +7), b not at every step
    assert "rises on all 2 models, by +7.0 to +15.0 points" in text and "(not at every step: b)" in text
    flat = " ".join(W.regime_sentences(committed, None, trained.assign(
        gap_points=[5.0, -10.0, -3.0, -9.0, -8.0, -9.5])))
    assert "does not rise with training length on every model (b)" in flat


def test_a_rule_per_tower_needs_one_recipe_inside_the_range_on_all_its_models():
    from clipsafety.studies import appendix_world as W

    trained = pd.DataFrame({
        "model": ["clip-vit-wit-10k"] * 3 + ["clip-vit-wit-30k"] * 3 + ["clip-resnet-wit-10k"] * 2,
        "variant": ["base", "x", "y", "base", "x", "y", "base", "x"],
        "gap_points": [-10.0, 1.0, 2.0, -12.0, 3.0, -8.0, -5.0, 9.0],
        "id_accuracy": [0.5, 0.6, 0.52, 0.5, 0.55, 0.5, 0.4, 0.4],
        "logit_scale": [14.0] * 8})
    r = W.recipes_in_range(trained, -1.0, 5.8)
    assert r["inside"].tolist() == [False, True, True, False, True, False, False, False]
    assert r.loc[1, "accuracy_change"] == pytest.approx(10.0) and r.loc[7, "tower"] == "resnet"
    text = W.tower_rule_sentence(r, -1.0, 5.8)
    assert "vit: a rule, *x*" in text  # x puts both ViTs in range, y only one
    assert "resnet: no recipe for all its models (in range: clip-resnet-wit-10k: none)" in text
    assert "The 3 pilots inside the range changed their model's ID accuracy by +2.0 to +10.0" in text
    # a recipe piloted on only some of a tower's models is no rule for the tower
    part = W.recipes_in_range(trained.drop(index=4), -1.0, 5.8)
    assert "vit: no recipe for all its models" in W.tower_rule_sentence(part, -1.0, 5.8)


def test_gap_per_group_and_set_by_hand():
    from clipsafety.studies import calibration as C

    cal = pd.DataFrame({"model": ["a", "b", "a", "b", "c"], "group": ["g", "g", "g", "g", "h"],
                        "dataset": ["id", "id", "s", "s", "id"], "is_id": [1, 1, 0, 0, 1],
                        "accuracy": [0.5, 0.6, 0.2, 0.3, 0.9],
                        "mean_confidence_before": [0.4, 0.65, 0.3, 0.25, 0.8],
                        "T_id": [0.8, 1.2, 0.8, 1.2, 2.0]}).astype({"is_id": bool})
    t = C.confidence_gaps(cal, per_set=True)
    assert t.loc[("g", "id"), "median_gap"] == pytest.approx(np.median([-10.0, 5.0]))
    assert t.loc[("g", "s"), "min_gap"] == pytest.approx(-5.0) and t.loc[("g", "s"), "max_gap"] == pytest.approx(10.0)
    assert t.loc[("g", "id"), "over_confident"] == 0.5 and t.loc[("h", "id"), "temperature_median"] == 2.0
    idonly = C.confidence_gaps(cal)  # the ID rows per group, as the calibration chapter shows
    assert list(idonly.index) == ["g", "h"] and idonly.loc["g", "median_gap"] == pytest.approx(-2.5)



def test_a_pilot_run_replaces_only_the_rows_it_trains():
    old = [{"model": "clip-vit-wit-10k", "variant": "base", "gap_points": "1"},
           {"model": "clip-vit-wit-10k", "variant": "4x samples seen", "gap_points": "2"},
           {"model": "clip-resnet-wit-10k", "variant": "base", "gap_points": "3"}]
    new = [{"model": "clip-vit-wit-10k", "variant": "4x samples seen", "gap_points": "9"}]
    rows = P.merged_rows(old, new)
    assert [(r["model"], r["variant"], r["gap_points"]) for r in rows] == [
        ("clip-vit-wit-10k", "base", "1"), ("clip-vit-wit-10k", "4x samples seen", "9"),
        ("clip-resnet-wit-10k", "base", "3")]
    assert P.merged_rows(old, []) == P._ordered(old)  # a run stopped before its first model


def test_the_pilots_command_names_an_unknown_measure(capsys):
    with pytest.raises(SystemExit) as e:
        P.main(["trianed"])
    assert e.value.code == 2 and "unknown measure(s) ['trianed']" in capsys.readouterr().err
