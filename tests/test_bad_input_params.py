"""Bad input to the metrics and the chapter parameters (the metrics/parameters part of the
bad-input issue): a clear error or a surfaced warning, never a number from meaningless input,
an unbounded run or an unbounded message.

1. Metrics: ``n_bins`` of 0, 0 rows, one row to bootstrap, probabilities passed as logits,
   temperature fits on one class, one column or all ties (``calibration_table`` used to hide
   the bound it then returned).
2. Ranges: every numeric chapter parameter has a lower and an upper bound (``n_boot`` at least
   100 so that an interval means something, at most 10000 so that memory stays bounded);
   ``clipsafety eval --groups`` without a group id.
3. Bounded input: ``-p`` values are read without YAML anchors/aliases and at most 20000
   characters long; messages echo at most a few hundred characters of a value; a value YAML
   misreads (``[a photo of a {}.]``) earns a hint to quote its items.

Only names that existed before these fixes are imported at module level, so that the file
also runs against an older checkout (``PYTHONPATH=<old>/lib``) to give the "before" column.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from clipsafety import book, cli, metrics
from conftest import expect_error as _expect

M = "timm:resnet18@random"
RNG = np.random.default_rng(7)
L = RNG.normal(size=(40, 5)) * 2
T = np.tile(np.arange(5), 8)
P = np.exp(L - L.max(1, keepdims=True))
P /= P.sum(1, keepdims=True)




# ------------------------------------------------------------------------- 1. the metrics
PROB = ["look like probabilities", "np.log(probabilities)"]
METRIC_CASES = [
    # id, call, fragments of the ValueError
    ("ece-n-bins-0", lambda: metrics.ece([0.5, 0.9], [1, 0], n_bins=0), ["n_bins", ">= 1", "got 0"]),
    ("ece-n-bins-negative", lambda: metrics.ece([0.5, 0.9], [1, 0], n_bins=-3), ["n_bins", "got -3"]),
    ("ece-n-bins-float", lambda: metrics.ece([0.5, 0.9], [1, 0], n_bins=2.5), ["n_bins", "integer"]),
    ("ece-n-bins-huge", lambda: metrics.ece([0.5, 0.9], [1, 0], n_bins=10**12), ["n_bins", "<= 1000000"]),
    ("adaptive-ece-n-bins-0", lambda: metrics.adaptive_ece([0.5, 0.9], [1, 0], n_bins=0), ["n_bins", ">= 1"]),
    ("ece-from-logits-n-bins-0", lambda: metrics.ece_from_logits(L, T, n_bins=0), ["n_bins", ">= 1"]),
    ("summary-n-bins-0", lambda: metrics.summary(L, T, n_bins=0), ["n_bins", ">= 1"]),
    ("nll-0-rows", lambda: metrics.nll(np.zeros((0, 3)), np.zeros(0, int)), ["nll", "empty", "0 samples"]),
    ("brier-0-rows", lambda: metrics.brier(np.zeros((0, 3)), np.zeros(0, int)), ["brier", "empty"]),
    ("nll-probabilities", lambda: metrics.nll(P, T), PROB),
    ("nll-probabilities-float32", lambda: metrics.nll(P.astype(np.float32), T), PROB),
    ("nll-probabilities-subset", lambda: metrics.nll(P, np.full(40, 2), label_subset=[1, 2, 3]), PROB),
    ("brier-probabilities", lambda: metrics.brier(P, T), PROB),
    ("ece-from-logits-probabilities", lambda: metrics.ece_from_logits(P, T), PROB),
    ("confidences-probabilities", lambda: metrics.confidences(P, T), PROB),
    ("summary-probabilities", lambda: metrics.summary(P, T), PROB),
    ("msp-probabilities", lambda: metrics.msp(P), PROB),
    ("softmax-probabilities", lambda: metrics.softmax(P), PROB),
    ("fit-temperature-probabilities", lambda: metrics.fit_temperature(P, T), PROB),
    ("fit-temperature-one-column", lambda: metrics.fit_temperature(L[:, :1], np.zeros(40, int)),
     ["1 class column", "label subset"]),
    ("fit-temperature-one-column-subset", lambda: metrics.fit_temperature(L, np.full(40, 3), [3]),
     ["1 class column"]),
    ("fit-temperature-one-class", lambda: metrics.fit_temperature(L, np.zeros(40, int)),
     ["one class", "at least 2 classes"]),
    ("fit-temperature-all-ties", lambda: metrics.fit_temperature(np.zeros((40, 5)), T),
     ["equal across every row", "ties", "does not depend"]),
    ("fit-temperature-bad-bounds", lambda: metrics.fit_temperature(L, T, bounds=(10, 1)), ["bounds", "low < high"]),
    ("bootstrap-n-boot-huge", lambda: metrics.bootstrap_ci(np.mean, [1.0, 2.0], n_boot=10**9),
     ["n_boot", "<= 1000000", "1000000000"]),
    ("bootstrap-n-boot-bool", lambda: metrics.bootstrap_ci(np.mean, [1.0, 2.0], n_boot=True), ["n_boot", "integer"]),
    ("correlation-n-boot-0", lambda: metrics.correlation([1, 2, 3, 4], [2, 1, 4, 3], n_boot=0), ["n_boot", ">= 1"]),
    ("correlation-n-boot-huge", lambda: metrics.correlation([1, 2, 3, 4], [2, 1, 4, 3], n_boot=10**9),
     ["n_boot", "<= 1000000"]),
    ("correlation-level-1", lambda: metrics.correlation([1, 2, 3, 4], [2, 1, 4, 3], level=1.0), ["level", "(0, 1)"]),
    ("trend-band-n-boot-0", lambda: metrics.trend_band([0.5, 0.6, 0.7], [0.4, 0.5, 0.6], [0.5], n_boot=0),
     ["n_boot", ">= 1"]),
    ("trend-band-n-boot-huge", lambda: metrics.trend_band([0.5, 0.6, 0.7], [0.4, 0.5, 0.6], [0.5], n_boot=10**9),
     ["n_boot", "<= 1000000"]),
]


@pytest.mark.parametrize("case", METRIC_CASES, ids=[c[0] for c in METRIC_CASES])
def test_metrics_refuse_meaningless_input(case):
    _, fn, fragments = case
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning and a number is not the outcome asked for
        _expect(fn, ValueError, fragments)


def test_bootstrap_of_one_value_has_no_interval():
    """(0.7, 0.7, 0.7) claimed a zero-width interval; one row has none: NaN, with a warning."""
    with pytest.warns(UserWarning, match="1 row"):
        est, lo, hi = metrics.bootstrap_ci(np.mean, [0.7])
    assert est == 0.7 and np.isnan(lo) and np.isnan(hi)


def test_genuine_logits_are_not_taken_for_probabilities():
    """The check fires only when every row is in [0, 1] and sums to 1."""
    y = T
    unit = RNG.uniform(0, 1, size=(40, 5))  # all in [0, 1], rows do not sum to 1
    centred = L - L.mean(1, keepdims=True) + 0.2  # rows sum to 1, values outside [0, 1]
    mixed = np.vstack([P[:1], L[1:]])  # one probability-like row among logits
    cos = RNG.uniform(-0.2, 0.4, size=(40, 5))  # CLIP cosines (MCM)
    for logits in (L, unit, centred, mixed, L.astype(np.float16)):
        assert np.isfinite(metrics.nll(logits, y)) and np.isfinite(metrics.brier(logits, y))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # random logits fit T at its bound
            assert np.isfinite(metrics.fit_temperature(logits, y))
    assert np.all(np.isfinite(metrics.mcm(cos, T=0.01)))
    # probabilities as log-probabilities are logits whose softmax is the probabilities
    expected = -np.mean(np.log(P[np.arange(40), y]))
    assert metrics.nll(np.log(P), y) == pytest.approx(expected, rel=1e-9)
    # accuracy needs no softmax: the argmax of probabilities is the argmax of the logits
    assert metrics.accuracy(P, y) == metrics.accuracy(L, y)


def test_fit_temperature_bound_with_ties_says_so():
    z = np.zeros((40, 5))
    z[np.arange(40), T] = 1.0
    z[:5, (T[:5] + 1) % 5] = 1.0  # five rows tie the target with another class
    with pytest.warns(UserWarning, match=r"hit the bound T=0.001.*5 of them tied.*not an estimate"):
        assert metrics.fit_temperature(z, T) == pytest.approx(1e-3)


def _record(logits, targets, subset=None):
    from clipsafety.records import PredictionRecord

    man = {"model": {"model_id": M}, "dataset": {"dataset_id": "d"}, "label_space": "s",
           "target_space": "s", "label_subset": subset}
    return PredictionRecord(logits=np.asarray(logits, np.float32), targets=np.asarray(targets),
                            ids=np.arange(len(targets)).astype(str), manifest=man)


def _good_id():
    y = np.repeat(np.arange(5), 20)
    z = RNG.normal(size=(100, 5))
    z[np.arange(100), y] += 2.0
    return z, y


CALIBRATION_CASES = [
    # id, ID record, fragments: no temperature means anything on it
    ("one-class", lambda: _record(RNG.normal(size=(40, 5)), np.zeros(40, int)),
     ["'timm:resnet18@random'", "'id'", "one class"]),
    ("all-ties", lambda: _record(np.zeros((40, 5)), T), ["'timm:resnet18@random'", "ties"]),
    ("one-column", lambda: _record(L, np.full(40, 2), subset=[2]),
     ["'timm:resnet18@random'", "1 class column"]),
    ("probabilities", lambda: _record(P, T), ["'timm:resnet18@random'", "probabilities"]),
]


@pytest.mark.parametrize("case", CALIBRATION_CASES, ids=[c[0] for c in CALIBRATION_CASES])
def test_calibration_table_refuses_an_id_set_no_temperature_fits(case):
    """It used to fit T = 1000 (one class) or T = 0.001 (ties, one column) and hide the
    bound's warning."""
    from clipsafety.studies import calibration as CS

    _, make, fragments = case
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _expect(lambda: CS.calibration_table({"id": {M: make()}}, "id"), ValueError, fragments)


def test_calibration_table_surfaces_temperature_bounds():
    """A shift at chance fits T = 1000, a bound and no estimate: one warning lists it. A shift
    of one class gets no oracle temperature: NaN, with a warning."""
    from clipsafety.studies import calibration as CS

    z, y = _good_id()
    chance_y = np.repeat(np.arange(5), 20)
    chance = RNG.normal(size=(100, 5)) - 3 * np.eye(5)[chance_y]  # ranks the target last
    recs = {"id": {M: _record(z, y)}, "chance": {M: _record(chance, chance_y)},
            "one": {M: _record(RNG.normal(size=(10, 5)), np.zeros(10, int))}}
    with pytest.warns(UserWarning) as caught:
        tab = CS.calibration_table(recs, "id").set_index("dataset")
    text = " | ".join(str(w.message) for w in caught)
    assert "stopped at a bound" in text and "'chance' (oracle): T = 1000" in text, text
    assert "not an estimate" in text
    assert "'one' (oracle)" in text and "one class" in text and "left NaN" in text, text
    assert tab.loc["chance", "T_oracle"] == 1000.0
    assert np.isnan(tab.loc["one", "T_oracle"]) and np.isnan(tab.loc["one", "ece_oracle"])
    assert 0.1 < tab.loc["id", "T_id"] < 10 and np.isfinite(tab.loc["one", "ece_after"])


def test_metric_values_unchanged_for_valid_input(monkeypatch):
    """Bounded blocks of resamples draw the same indices as one (n_boot, n) array: the
    intervals equal the one-shot computation, whatever the block size."""
    from clipsafety.metrics import stats as S

    v = RNG.normal(size=300)
    idx = np.random.default_rng(3).integers(0, v.size, size=(500, v.size))
    vals = np.array([np.mean(v[i]) for i in idx])
    lo, hi = np.quantile(vals, [(1 - 0.95) / 2, (1 + 0.95) / 2])
    assert metrics.bootstrap_ci(np.mean, v, n_boot=500, seed=3) == (float(np.mean(v)), lo, hi)
    x = RNG.uniform(0.3, 0.9, 40)
    y = 0.8 * x + RNG.normal(0, 0.03, 40)
    grid = np.linspace(0.3, 0.9, 7)
    before = (metrics.correlation(x, y, "spearman", n_boot=300), metrics.correlation(x, y, n_boot=300),
              np.array(metrics.trend_band(x, y, grid, n_boot=300)))
    monkeypatch.setattr(S, "BLOCK", 7)  # a handful of resamples per block
    after = (metrics.correlation(x, y, "spearman", n_boot=300), metrics.correlation(x, y, n_boot=300),
             np.array(metrics.trend_band(x, y, grid, n_boot=300)))
    assert before[:2] == after[:2] and np.array_equal(before[2], after[2])
    assert metrics.bootstrap_ci(np.mean, v, n_boot=500, seed=3) == (float(np.mean(v)), lo, hi)
    # temperature, NLL and ECE of ordinary logits are untouched by the new checks
    assert np.isfinite(metrics.fit_temperature(L, T))
    assert metrics.ece(np.array([0.5, 0.9]), np.array([1, 0]), n_bins=1) == pytest.approx(0.2)


# ------------------------------------------------------------------------- 2. ranges


def _snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _chapter(name, pairs, pages, capsys):
    chapters, ran = pages
    before = _snapshot(chapters)
    t0 = time.perf_counter()
    try:
        rc = book.main(["chapter", name, *[x for kv in pairs for x in ("-p", *kv)]])
    except SystemExit as e:
        rc = e.code
    seconds = time.perf_counter() - t0
    out, err = capsys.readouterr()
    return rc, out, err, seconds, ran == [] and _snapshot(chapters) == before


BOMB3 = "[&a [x, x, x, x, x, x, x, x, x], &b [*a, *a, *a, *a, *a, *a, *a, *a, *a], [*b, *b, *b, *b, *b, *b, *b, *b, *b]]"
BOMB9 = ("- &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
         + "".join(f"- &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")))
TOO_BIG = "[" + ", ".join(f"zoo:model-{k}" for k in range(2000)) + "]"
CHAPTER_CASES = [
    # chapter, [(key, value)], fragments of the message
    ("landscape", [("n_boot", "1")], ["'n_boot'", "integer >= 100 and <= 10000", "95% interval"]),
    ("landscape", [("n_boot", "99")], ["'n_boot'", ">= 100"]),
    ("landscape", [("n_boot", "1000000000")], ["'n_boot'", "<= 10000", "memory"]),
    ("shape_bias", [("n_boot", "1000000000")], ["'n_boot'", "<= 10000"]),
    ("appendix_world", [("n_boot", "50")], ["'n_boot'", ">= 100"]),
    ("factors", [("seed", "4294967296")], ["'seed'", "<= 4294967295", "32-bit"]),
    ("factors", [("batch_size", "1000000000")], ["'batch_size'", "<= 4096"]),
    ("landscape", [("top_n", "1000000000")], ["'top_n'", "<= 1000"]),
    ("calibration", [("n_bins", "1000000")], ["'n_bins'", "<= 100"]),
    ("prompts", [("n_subsets", "100000")], ["'n_subsets'", "<= 500"]),
    ("prompts", [("ece_margin", "1e9")], ["'ece_margin'", "(0, 1]"]),
    ("prompts", [("ctpt_lambda", "1.0e+300")], ["'ctpt_lambda'", "[0, 100]"]),
    ("prompts", [("subset_sizes", "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]")], ["'subset_sizes'", "at most 10"]),
    ("ood", [("temperature", "1e-300")], ["'temperature'", "[0.001, 1000]", "positive"]),
    ("finetuning", [("n_eval", "100000000")], ["'n_eval'", "<= 2000"]),
    ("finetuning", [("alphas", str([k / 100 for k in range(101)]))], ["'alphas'", "at most 21"]),
    ("curation", [("jobs", "100000")], ["'jobs'", "<= 64"]),
    ("curation", [("sizes", str(list(range(10, 200, 10))))], ["'sizes'", "at most 10"]),
    ("appendix_world", [("n_examples", "100000")], ["'n_examples'", "<= 64"]),
    ("appendix_world", [("n_factor_samples", "1000000000")], ["'n_factor_samples'", "<= 10000"]),
    # 3. bounded input
    ("factors", [("models", BOMB3)], ["'models'", "anchors and aliases", "write the value out in full"]),
    ("factors", [("models", BOMB9)], ["'models'", "anchors and aliases"]),
    ("factors", [("templates", "&x single")], ["'templates'", "anchors and aliases", "quote"]),
    ("factors", [("models", TOO_BIG)], ["'models'", "characters long", "at most 20000", "catalog name"]),
    ("factors", [("templates", "[a photo of a {}.]")],
     ["'templates'", "quote each item", "-p templates \"['a photo of a {}.']\""]),
    ("factors", [("templates", "[a photo of a {}., a sketch of a {}.]")],
     ["'templates'", "\"['a photo of a {}.', 'a sketch of a {}.']\""]),
    ("factors", [("models", "[zoo:clip-resnet-wit-10k: x]")],
     ["'models'", "not model ids", "yaml read", "quote each item"]),
    ("landscape", [("shifts", "[v2, {}]")], ["'shifts'", "quote each item"]),
]


@pytest.mark.parametrize("case", CHAPTER_CASES, ids=[f"{c[0]}-{c[1][0][0]}-{k}" for k, c in
                                                      enumerate(CHAPTER_CASES)])
def test_chapter_refuses_unbounded_or_misread_values(case, pages, capsys):
    name, pairs, fragments = case
    rc, out, err, seconds, kept = _chapter(name, pairs, pages, capsys)
    assert rc == 2, (rc, out[-2000:], err[-2000:])
    for f in fragments:
        assert f.lower() in err.lower(), (f, err[:3000])
    assert "Traceback" not in out + err
    assert kept  # nothing ran, the built page is kept
    # a message echoes a value in at most a few hundred characters (the listing of the
    # chapter's parameters follows it)
    assert len(err.split("Valid parameters of")[0]) < 2500, len(err)
    assert seconds < 30, seconds


def test_every_numeric_chapter_parameter_is_bounded():
    """A huge value of any int or float parameter is refused before anything runs, as is a
    negative one; the defaults and every exercise's values still pass (tests/test_pages.py)."""
    for ch in book.chapters():
        declared = ch.parameters()
        defaults = {k: v["default"] for k, v in declared.items()}
        book.check_values(ch.name, defaults)
        for key, spec in declared.items():
            d = spec["default"]
            if isinstance(d, bool) or not isinstance(d, (int, float)):
                continue
            for bad in (10**12, -1):
                value = float(bad) if isinstance(d, float) else bad
                with pytest.raises(book.ParameterError, match=f"'{key}'"):
                    book.validate_params(ch, {key: value})


def test_every_n_boot_allows_100_to_10000_and_nothing_else():
    for ch in book.chapters():
        if "n_boot" not in ch.parameters():
            continue
        for ok in (100, 1000, 10_000):
            assert book.validate_params(ch, {"n_boot": ok}) == {"n_boot": ok}
        for bad in (1, 99, 10_001):
            with pytest.raises(book.ParameterError, match="integer >= 100 and <= 10000"):
                book.validate_params(ch, {"n_boot": bad})


def test_messages_echo_at_most_a_few_hundred_characters_of_a_value():
    ch = book.get_chapter("factors")
    cases = [{"models": [f"zoo:nope-{k}" for k in range(20000)]},  # a rule's message
             {"n_boot": "9" * 15000 + "x"},  # the type check
             {"x" * 15000: 1},  # an unknown name
             {"templates": ["no braces " * 50] * 500}]
    for params in cases:
        with pytest.raises(book.ParameterError) as info:
            book.validate_params(ch, params)
        head = str(info.value).split("Valid parameters of")[0]
        assert len(head) < 2500, (len(head), head[:300])
        assert "\u2026" in head or "..." in head, head[:500]


def test_yaml_is_read_without_aliases_and_long_values_refused_quickly():
    t0 = time.perf_counter()
    for raw in (BOMB3, BOMB9, "&anchor 5", "[*undefined]"):
        with pytest.raises(book.ParameterError, match="anchors and aliases"):
            book.parse_cli_params([("models", raw)])
    with pytest.raises(book.ParameterError, match="at most 20000"):
        book.parse_cli_params([("models", "x" * 20001)])
    assert time.perf_counter() - t0 < 5
    # quoted, the characters are text
    assert book.parse_cli_params([("label", "'&anchor *x'")]) == {"label": "&anchor *x"}


def test_quoted_items_and_strings_yaml_cannot_read_still_pass():
    # YAML 1.1 reads an exponent without a dot as a string: a float parameter takes it
    ood = book.get_chapter("ood")
    assert book.validate_params(ood, book.parse_cli_params([("temperature", "1e-2")])) == {
        "temperature": 0.01}
    with pytest.raises(book.ParameterError, match="expects float"):
        book.validate_params(ood, book.parse_cli_params([("temperature", "warm")]))
    ch = book.get_chapter("factors")
    given = book.validate_params(ch, book.parse_cli_params([("templates", "['a photo of a {}.']")]))
    assert given == {"templates": ["a photo of a {}."]}
    # a string YAML cannot read is kept as given and needs no hint where its rule accepts it
    given = book.validate_params(ch, book.parse_cli_params([("store", "a: b: c")]))
    assert given == {"store": "a: b: c"}


def test_cli_groups_without_a_value_is_an_error(tmp_path, capsys, monkeypatch):
    """``--groups`` with no id used to take every model of the catalog (61 of the zoo)."""
    from clipsafety import engines

    asked = []

    def fake_run_matrix(models, *args, **kwargs):
        asked.append(list(models))
        raise RuntimeError("run_matrix reached")

    monkeypatch.setattr(engines, "run_matrix", fake_run_matrix)
    try:
        rc = cli.main(["eval", "--catalog", "zoo", "--groups", "--datasets", "synth:id-test",
                       "--store", str(tmp_path / "store"), "--no-progress"])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    assert asked == [] and rc == 2, (asked[:1], rc)
    for f in ("--groups", "without a group id", "clip-zeroshot", "leave --groups out"):
        assert f in err, (f, err)
    assert "Traceback" not in out + err
