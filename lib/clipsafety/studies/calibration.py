"""Study of the calibration chapter (paper section 6): ECE, adaptive ECE, NLL and Brier of every
model on the ID set and its shifts, before and after temperature scaling.

Tables: per (model, test condition) metrics from prediction records (:func:`calibration_table`,
the temperature fitted once per model on a held-out half of the ID set and applied unchanged to
every shift); reliability diagrams (:func:`reliability_bins`); published per-image confidences of
ImageNet models (ImageNet-X, :func:`imagenetx_confidences`, :func:`published_imagenetx_table`)
and LeVine et al.'s per-prompt ECEs of open_clip models (:func:`published_prompt_eces`); what
the registered published files can and cannot test (:func:`published_coverage`). Claims: the
paper's calibration claims (:data:`CLAIMS`) and their rules (the ``assess_*`` functions).

Conventions (the book's "Methods and conventions" page, calibration):

- Metrics are :mod:`clipsafety.metrics`' (ECE: 15 equal-width bins ``(lo, hi]``, the first
  closed at 0; adaptive ECE: 15 equal-mass bins; NLL; multi-class Brier), on the softmax over
  the record's label subset (ImageNet-R/A's 200 columns; ObjectNet's 113 classes, each the max
  of its ImageNet columns), for accuracy and calibration alike.
- Temperature: :func:`metrics.fit_temperature` on the ``fit`` half of a stratified split of the
  ID set (:func:`metrics.stratified_split`, ``frac`` = :data:`FIT_FRACTION` = 0.5, ``seed=0``);
  ID metrics are reported on the other half, shift metrics on all of the shift. The *oracle* temperature of a condition
  is fitted on the very rows it is reported on (a lower bound for any transferred temperature).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from clipsafety import claims, metrics
from clipsafety import rules as _R
from clipsafety.external import fetch, keys
from clipsafety.groups import BASELINE, CLIP_ZEROSHOT
from clipsafety.rules import Exercise
from clipsafety.summaries import (
    accuracy_controlled_difference,
    bootstrap_difference,
    bootstrap_mean,
)

__all__ = ["BUILT_INTO_WORLD", "CLAIMS", "FIT_FRACTION", "IMAGENETX_PREDICTIONS", "METRICS",
           "NEEDS_PER_SAMPLE", "PROMPT_ECES", "SCALINGS", "assess_live_claims",
           "assess_not_better", "assess_own_trend", "assess_prompt_claims", "assess_quantity",
           "assess_source", "assess_transfer", "calibration_inputs", "calibration_long",
           "calibration_table", "collect_sets", "condition_summary", "excess_ece",
           "group_means_wide", "id_temperatures", "imagenetx_confidences", "model_counts",
           "prompt_ece_by_source", "prompt_ece_means", "prompt_ece_span", "published_claims",
           "published_coverage", "published_gaps", "published_imagenetx_table",
           "published_prompt_eces", "reliability_bins", "reliability_model_ids",
           "reliability_of_record", "reliability_table", "temperature_split",
           "with_world_settings", "world_source_settings"]

#: the metrics of the chapter (keys of :func:`metrics.summary`), lower is better for all four
METRICS = ("ece", "adaptive_ece", "nll", "brier")
#: the three readings of every condition: raw softmax, the ID-fitted T, the condition's own T
SCALINGS = {"before": "before scaling", "after": "ID temperature", "oracle": "oracle temperature"}
#: share of each ID class the temperature is fitted on (the rest is the ID evaluation half):
#: the default of :func:`temperature_split`, of the calibration chapter's ``fit_fraction`` and of
#: the prompts chapter's split
FIT_FRACTION = 0.5


# --------------------------------------------------------------------------- records

def collect_sets(run, datasets: Sequence[str], load: Callable | None = None,
                 predict: Callable | None = None, progress: bool = True) -> dict:
    """Records of every model of ``run`` (a :class:`clipsafety.evidence.ChapterRun`) on every
    dataset: ``{dataset: {model: record}}``.

    Each model is loaded once and asked for all datasets (the store answers what it holds,
    inference runs only for what is missing), instead of once per (model, dataset) as
    :meth:`ChapterRun.collect` does: with nine conditions that is nine times fewer model loads
    (zero-shot heads are rebuilt on every load). A failure names the model and the dataset and
    says how to resume (run again; finished records are cache hits).
    """
    from tqdm import tqdm

    if load is None:
        from clipsafety.models import load
    if predict is None:
        from clipsafety.infer import predict
    out = {d: {} for d in datasets}
    kw = dict(data_root=run.data_root or None, store=run.store or None, device=run.device,
              batch_size=run.batch_size, progress=bool(progress and run.real))
    from clipsafety.infer import resolve_device

    for mid in tqdm(run.models, desc=f"predictions on {len(datasets)} sets", disable=not progress):
        try:
            loaded = load(mid, device=resolve_device(run.device), templates=run.templates)
        except Exception as exc:
            raise RuntimeError(f"loading model {mid!r} failed: {exc}. Check the id (e.g. "
                               "'openclip:ViT-B-32@openai', 'timm:resnet50.a1_in1k') and that "
                               "its weights are available, then run again.") from exc
        for d in datasets:
            try:
                out[d][mid] = predict(loaded, d, **kw)
            except Exception as exc:
                done = sum(len(v) for v in out.values())
                raise RuntimeError(
                    f"predicting {d!r} with model {mid!r} failed: {exc}. {done} records are "
                    "finished and cached; fix the data_root / dataset layout and run again "
                    "(cached records are reused).") from exc
        del loaded
    return out


def calibration_inputs(record):
    """``(logits, targets, label_subset)`` of a record's ID rows, ready for the metrics.

    Rows with target -1 (OOD) are dropped. A record whose targets index another space than its
    logits (ObjectNet: 113 classes over ImageNet's 1000 columns) is projected with its
    ``label_map`` (each class the max of its columns, :func:`clipsafety.datasets.project_logits`)
    and the subset is then all classes; otherwise the record's ``label_subset`` is used (the
    metrics restrict the logits to it before the softmax). A record whose spaces differ
    without a label map is an error naming it.
    """
    t = np.asarray(record.targets)
    keep = t >= 0
    L = record.logits if keep.all() else record.logits[keep]
    t = t[keep]
    m = record.manifest
    if record.label_space != record.target_space:
        if m.get("label_map") is None:
            raise ValueError(
                f"record of {m.get('model', {}).get('model_id', '?')!r} on "
                f"{m.get('dataset', {}).get('dataset_id', '?')!r}: targets index "
                f"{record.target_space!r} but the logits are over {record.label_space!r} and the "
                "record has no label_map; expected a dataset whose targets are classes of the "
                "model's label space, or one that declares a label map (as ObjectNet does).")
        from clipsafety.datasets import project_logits

        return project_logits(np.asarray(L), m["label_map"]), t, None
    return L, t, record.label_subset


def temperature_split(targets, frac: float = FIT_FRACTION, seed: int = 0):
    """``(fit_idx, eval_idx)``: the stratified split of the ID rows (:func:`metrics.stratified_split`);
    the temperature is fitted on ``fit_idx`` and ID metrics are reported on ``eval_idx``."""
    return metrics.stratified_split(targets, frac=frac, seed=seed)


def _fit(L, t, sub, where: str, at_bound: list) -> float:
    """:func:`metrics.fit_temperature` of one (model, set). A bound it hits is noted in
    ``at_bound`` (:func:`calibration_table` reports them together, as one warning); input it
    refuses (one class, one column, all ties, probabilities) is re-raised naming ``where``."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            T = metrics.fit_temperature(L, t, sub)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    for w in caught:
        if str(w.message).startswith("fit_temperature hit the bound"):
            at_bound.append(f"{where}: T = {T:g}")
        else:
            warnings.warn(w.message, w.category, stacklevel=3)
    return T


def _warn_bounds(at_bound: list, n_fits: int) -> None:
    import warnings

    if at_bound:
        shown = "; ".join(at_bound[:5]) + (f"; and {len(at_bound) - 5} more" if len(at_bound) > 5 else "")
        warnings.warn(
            f"calibration_table: {len(at_bound)} of {n_fits} temperature fits stopped at a bound of "
            f"metrics.fit_temperature ({shown}). Such a T is the bound, not an estimate: 1000 means "
            "the model ranks the targets no better than chance there (its scaled softmax is near "
            "uniform), 0.001 that every target has the top logit. Read T_id / T_oracle and the "
            "scaled metrics of those rows with that in mind.", stacklevel=3)


def _metrics_of(L, t, sub, T, n_bins):
    s = metrics.summary(L, t, sub, temperature=T, n_bins=n_bins)
    return {k: s[k] for k in (*METRICS, "mean_confidence")}, s["accuracy"], int(s["n"])


def _oracle_metrics(L, t, sub, T, n_bins):
    """ECE, NLL and mean confidence only (the oracle is a yardstick for the transfer claim)."""
    st = metrics.row_stats(L, t, sub, T, need=("confidence", "pred", "log_p_true"))
    return {"ece": metrics.ece(st["confidence"], st["correct"], n_bins),
            "nll": float(-st["log_p_true"].mean()),
            "mean_confidence": float(st["confidence"].mean())}


def calibration_table(records_by_set: dict, id_set: str, frac: float = FIT_FRACTION, seed: int = 0,
                      n_bins: int = 15, oracle: bool = True) -> pd.DataFrame:
    """One row per (model, test condition): accuracy and the four metrics before scaling, with
    the ID-fitted temperature and (``oracle``) with the condition's own temperature.

    ``records_by_set``: ``{dataset: {model: record}}`` (:func:`collect_sets`), ``id_set`` one
    of its keys. Per model the ID rows are split (:func:`temperature_split`); ``T_id`` is fitted
    on the fit half and applied unchanged to the other half and to every shift. Columns: model,
    dataset, is_id, n, accuracy, T_id, T_oracle, ``<metric>_<scaling>`` for metric in
    :data:`METRICS` + mean_confidence and scaling ``before`` / ``after`` (the oracle reading has
    ``ece_oracle``, ``nll_oracle`` and ``mean_confidence_oracle`` only), then the models'
    metadata (group, family, source, samples, ...).

    A temperature fit that stops at a bound of :func:`metrics.fit_temperature` (T = 1000: no
    better than chance; T = 0.001: every target on top) is reported in one warning listing the
    (model, set) pairs. ID rows no temperature can be fitted on (one class, one column, all
    ties) are a ``ValueError`` naming the model; such a shift leaves its oracle reading NaN,
    with a warning.
    """
    if id_set not in records_by_set:
        raise ValueError(f"id_set {id_set!r} is not among the collected sets "
                         f"{list(records_by_set)}; pass the ID set's id.")
    rows, at_bound, n_fits = [], [], 0
    for mid, rec in records_by_set[id_set].items():
        L, t, sub = calibration_inputs(rec)
        fit, ev = temperature_split(t, frac=frac, seed=seed)
        T = _fit(L[fit], t[fit], sub, f"model {mid!r} on {id_set!r} (the ID fit half, T_id)",
                 at_bound)
        n_fits += 1
        for d, recs in records_by_set.items():
            if mid not in recs:
                continue
            if d == id_set:
                Ld, td, sd = L[ev], t[ev], sub
            else:
                Ld, td, sd = calibration_inputs(recs[mid])
            row = {"model": mid, "dataset": d, "is_id": d == id_set, "T_id": T}
            before, acc, n = _metrics_of(Ld, td, sd, 1.0, n_bins)
            after, _, _ = _metrics_of(Ld, td, sd, T, n_bins)
            row.update(n=n, accuracy=acc)
            parts = {"before": before, "after": after}
            if oracle:
                try:
                    To = _fit(Ld, td, sd, f"model {mid!r} on {d!r} (oracle)", at_bound)
                    oracle_vals = _oracle_metrics(Ld, td, sd, To, n_bins)
                except ValueError as exc:  # no temperature means anything on this set
                    import warnings

                    warnings.warn(f"calibration_table: {exc} Its oracle reading is left NaN.",
                                  stacklevel=2)
                    To, oracle_vals = np.nan, dict.fromkeys(("ece", "nll", "mean_confidence"), np.nan)
                n_fits += 1
                row["T_oracle"] = To
                parts["oracle"] = oracle_vals
            for sc, vals in parts.items():
                row.update({f"{k}_{sc}": v for k, v in vals.items()})
            rows.append(row)
    _warn_bounds(at_bound, n_fits)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    from clipsafety.models import model_metadata

    return df.merge(model_metadata(list(dict.fromkeys(df["model"]))), on="model", how="left")


def calibration_long(table: pd.DataFrame, metric_names: Sequence[str] = METRICS) -> pd.DataFrame:
    """:func:`calibration_table` in long form: one row per (model, dataset, metric, scaling)
    with ``value``; ``scaling_label`` names the reading (:data:`SCALINGS`)."""
    keep = [c for c in ("model", "dataset", "is_id", "accuracy", "group", "family", "source",
                        "samples", "T_id", "T_oracle") if c in table]
    parts = []
    for m in metric_names:
        for sc, label in SCALINGS.items():
            col = f"{m}_{sc}"
            if col in table:
                parts.append(table[keep].assign(metric=m, scaling=sc, scaling_label=label,
                                                value=table[col].to_numpy()))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


# --------------------------------------------------------------------------- reliability

def reliability_bins(confidence, correct, n_bins: int = 15) -> pd.DataFrame:
    """Reliability-diagram bins with :func:`metrics.ece`'s binning: ``n_bins`` equal-width bins
    ``(lo, hi]``, the first closed at 0. Columns: bin, lo, hi, n, share (n / N), accuracy,
    confidence (mean in the bin; NaN for an empty bin), gap (accuracy - confidence).
    ``sum(share * |gap|)`` over non-empty bins is the ECE."""
    c = np.asarray(confidence, dtype=np.float64)
    k = np.asarray(correct).astype(np.float64)
    if c.ndim != 1 or c.shape != k.shape or c.size == 0:
        raise ValueError(f"confidence and correct must be non-empty 1-D arrays of equal length, "
                         f"got {c.shape} and {k.shape}.")
    if not np.all(np.isfinite(c)) or c.min() < 0 or c.max() > 1:
        raise ValueError("confidence must hold finite probabilities in [0, 1].")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    b = np.searchsorted(edges[1:-1], c, side="left")
    n = np.bincount(b, minlength=n_bins)
    sc = np.bincount(b, weights=c, minlength=n_bins)
    sk = np.bincount(b, weights=k, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc, conf = sk / n, sc / n
    return pd.DataFrame({"bin": np.arange(n_bins), "lo": edges[:-1], "hi": edges[1:], "n": n,
                         "share": n / c.size, "accuracy": acc, "confidence": conf,
                         "gap": acc - conf})


def reliability_of_record(record, temperature: float = 1.0, n_bins: int = 15,
                          rows=None) -> pd.DataFrame:
    """:func:`reliability_bins` of a record's top-label confidences (softmax of logits / T on
    its label subset, :func:`calibration_inputs`); ``rows`` selects rows (the ID eval half)."""
    L, t, sub = calibration_inputs(record)
    if rows is not None:
        L, t = L[rows], t[rows]
    conf, correct = metrics.confidences(L, t, sub, temperature)
    return reliability_bins(conf, correct, n_bins)


# --------------------------------------------------------------------------- published evidence

IMAGENETX = "facebookresearch/imagenetx/model_predictions/base/"
#: ImageNet-X's per-image predictions of its base models (the four it publishes); the ones not
#: in the registry are reported as missing by :func:`published_coverage`
IMAGENETX_PREDICTIONS = {"ResNet50": "ResNet-50 (supervised)", "ViT": "ViT-B (supervised)",
                         "DINO": "DINO (self-supervised, linear head)",
                         "SimCLR": "SimCLR (self-supervised, linear head)"}
PROMPT_ECES = "Pikus16/CLIP_Calibration/dataset_eces.json"
#: open_clip pretrained tag prefix -> training source, for LeVine et al.'s model names
PROMPT_SOURCES = {"openai": ("WIT", 400e6), "laion2b": ("LAION-2B", 2.3e9),
                  "laion400m": ("LAION-400M", 400e6), "yfcc15m": ("YFCC-15M", 15e6),
                  "cc12m": ("CC12M", 12e6)}


def imagenetx_confidences(model: str) -> pd.DataFrame:
    """ImageNet-X's published top-1 prediction and confidence of ``model`` (a key of
    :data:`IMAGENETX_PREDICTIONS`) for every ImageNet val image, joined with the true label
    from the ``imagenet-x`` package's ``filename_label.csv``. Columns: file_name, label,
    predicted_class, confidence, correct. Raises ``KeyError`` for an unregistered model and
    :class:`clipsafety.external.ExternalUnavailable` when the file cannot be had."""
    from imagenet_x.utils import get_annotation_path

    pred = pd.read_csv(fetch(f"{IMAGENETX}{model}.csv"))
    labels = pd.read_csv(get_annotation_path() / "filename_label.csv")[["file_name", "label"]]
    df = pred.merge(labels, on="file_name", how="inner")
    if len(df) < len(pred):
        raise ValueError(f"{len(pred) - len(df)} of ImageNet-X's {model} predictions name images "
                         "without a label in filename_label.csv; the files do not match.")
    df = df.rename(columns={"predicted_probability": "confidence"})
    df["correct"] = df["predicted_class"].to_numpy() == df["label"].to_numpy()
    return df[["file_name", "label", "predicted_class", "confidence", "correct"]]


def _registered_imagenetx() -> list[str]:
    have = set(keys(IMAGENETX))
    return [m for m in IMAGENETX_PREDICTIONS if f"{IMAGENETX}{m}.csv" in have]


def published_imagenetx_table(n_bins: int = 15) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(table, bins)`` for every registered ImageNet-X prediction file: per model n, accuracy,
    mean confidence, ECE and adaptive ECE (top-label, :func:`metrics.ece`); ``bins`` the
    reliability bins (:func:`reliability_bins`) with a ``model`` column."""
    from clipsafety.groups import imagenetx_group

    rows, bins = [], []
    for m in _registered_imagenetx():
        df = imagenetx_confidences(m)
        c, k = df["confidence"].to_numpy(float), df["correct"].to_numpy()
        g = imagenetx_group(m)[0]
        rows.append({"model": m, "description": IMAGENETX_PREDICTIONS[m], "group": g or "excluded",
                     "n": len(df), "accuracy": float(k.mean()), "mean_confidence": float(c.mean()),
                     "ece": metrics.ece(c, k, n_bins), "adaptive_ece": metrics.adaptive_ece(c, k, n_bins)})
        bins.append(reliability_bins(c, k, n_bins).assign(model=m, group=g or "excluded"))
    cols = ["model", "description", "group", "n", "accuracy", "mean_confidence", "ece", "adaptive_ece"]
    return (pd.DataFrame(rows, columns=cols),
            pd.concat(bins, ignore_index=True) if bins else pd.DataFrame())


def published_prompt_eces() -> pd.DataFrame:
    """LeVine et al.'s published ECE of open_clip zero-shot models, one value per prompt
    (``Pikus16/CLIP_Calibration`` ``dataset_eces.json``), long: dataset, model
    (``openclip:ARCH@TAG``), arch, tag, source, samples (training-set size by source), prompt
    (position), ece. Their ECE convention is their own (not re-derivable here)."""
    raw = json.loads(fetch(PROMPT_ECES).read_text())
    rows = []
    for ds, models in raw.items():
        for name, values in models.items():
            arch, tag = name.split(";", 1)
            src = next((v for k, v in PROMPT_SOURCES.items() if tag.startswith(k)), ("other", np.nan))
            for i, v in enumerate(values):
                rows.append({"dataset": ds, "model": f"openclip:{arch}@{tag}", "arch": arch,
                             "tag": tag, "group": CLIP_ZEROSHOT, "source": src[0],
                             "samples": src[1], "prompt": i, "ece": float(v)})
    return pd.DataFrame(rows)


def published_coverage() -> pd.DataFrame:
    """What the registered published files hold for calibration, read from the registry:
    per file (or missing ImageNet-X file) its models, their groups, the datasets and whether
    it holds per-sample confidences. The chapter says from this table what no published file
    can test."""
    rows = []
    have = set(_registered_imagenetx())
    for m, desc in IMAGENETX_PREDICTIONS.items():
        rows.append({"file": f"{IMAGENETX}{m}.csv", "registered": m in have, "models": desc,
                     "clip_models": 0, "datasets": "ImageNet val" if m in have else "",
                     "per_sample": m in have})
    if PROMPT_ECES in set(keys("Pikus16/")):
        try:
            p = published_prompt_eces()
            rows.append({"file": PROMPT_ECES, "registered": True,
                         "models": f"{p['model'].nunique()} open_clip zero-shot CLIPs",
                         "clip_models": int(p["model"].nunique()),
                         "datasets": ", ".join(p["dataset"].unique()), "per_sample": False})
        except Exception:  # unavailable: reported as registered without data here
            rows.append({"file": PROMPT_ECES, "registered": True, "models": "unavailable here",
                         "clip_models": 0, "datasets": "", "per_sample": False})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- claims

CLAIMS = {
    "calib-not-better": claims.Claim(
        "calib-not-better",
        "Zero-shot CLIP is not consistently better calibrated than ImageNet models", "6"),
    "calib-source": claims.Claim(
        "calib-source", "The training distribution of CLIP changes its calibration", "6"),
    "calib-quantity": claims.Claim(
        "calib-quantity", "The quantity of training data changes CLIP's calibration", "6"),
    "calib-transfer": claims.Claim(
        "calib-transfer",
        "After ID temperature scaling zero-shot CLIP stays reasonably calibrated under shift "
        "(the ID temperature transfers)", "6"),
    "calib-own-trend": claims.Claim(
        "calib-own-trend",
        "After ID temperature scaling zero-shot CLIP follows its own trend of ECE against "
        "accuracy, apart from ImageNet models", "6"),
}


def _fmt(est, lo, hi, scale=100.0, unit=" points"):
    return f"{est * scale:+.2f} [{lo * scale:+.2f}, {hi * scale:+.2f}]{unit}"


def assess_not_better(table: pd.DataFrame, source: str, value: str = "ece_before",
                      reference: str = BASELINE, n_boot: int = 1000, seed: int = 0) -> dict:
    """*Not consistently better*. Per test condition, ``d = mean(value | zero-shot CLIP) -
    mean(value | reference group)`` with a bootstrap interval over models
    (:func:`summaries.bootstrap_difference`). CLIP would be *consistently better* if every
    condition's interval lay entirely below zero. Rule: the claim is reproduced when at least
    one condition's interval does not lie entirely below zero (CLIP is not demonstrably better
    there); the evidence counts the conditions where CLIP is better, worse (interval above zero)
    and inconclusive. Not testable with fewer than two models in either group."""
    c = CLAIMS["calib-not-better"]
    counts = {"better": [], "worse": [], "inconclusive": []}
    parts = []
    for d, part in table.groupby("dataset", sort=False):
        a = part.loc[part["group"] == CLIP_ZEROSHOT, value].dropna()
        b = part.loc[part["group"] == reference, value].dropna()
        if len(a) < 2 or len(b) < 2:
            continue
        est, lo, hi = bootstrap_difference(a, b, n_boot=n_boot, seed=seed)
        kind = "better" if hi < 0 else ("worse" if lo > 0 else "inconclusive")
        counts[kind].append(d)
        parts.append(f"{d} {_fmt(est, lo, hi, unit='')}")
    n = sum(len(v) for v in counts.values())
    if n == 0:
        return claims.not_testable(c, source, f"needs at least two zero-shot CLIP and two {reference} "
                            "models with a value on one test condition")
    ok = len(counts["better"]) < n
    detail = (f"CLIP better on {len(counts['better'])} of {n} conditions, worse on "
              f"{len(counts['worse'])}, inconclusive on {len(counts['inconclusive'])}")
    evidence = (f"{detail}; {value} CLIP minus {reference}, points: " + "; ".join(parts))
    return claims.judgement(c, source, claims.REPRODUCED if ok else claims.NOT_REPRODUCED, detail, evidence)


def assess_source(df: pd.DataFrame, source: str, value: str = "ece_before",
                  min_models: int = 2, n_boot: int = 1000, seed: int = 0,
                  where: str = "") -> dict:
    """*Training distribution*. ``df``: one row per zero-shot CLIP model with ``source`` (its
    training source) and ``value``. Rule: for the two training sources with the most models
    (at least ``min_models`` each), reproduced when the bootstrap interval of the difference
    of their mean ``value`` excludes zero (:func:`summaries.bootstrap_difference`)."""
    c = CLAIMS["calib-source"]
    d = df[df["group"] == CLIP_ZEROSHOT].dropna(subset=[value])
    counts = d["source"].value_counts()
    counts = counts[counts >= min_models]
    if len(counts) < 2:
        return claims.not_testable(c, source, f"needs two CLIP training sources with at least "
                            f"{min_models} models each; found "
                            f"{ {k: int(v) for k, v in d['source'].value_counts().items()} }")
    a, b = counts.index[:2]
    est, lo, hi = bootstrap_difference(d.loc[d["source"] == a, value],
                                       d.loc[d["source"] == b, value], n_boot=n_boot, seed=seed)
    ok = np.isfinite(lo) and (lo > 0 or hi < 0)
    detail = ("the interval excludes zero" if ok else "the interval includes zero (inconclusive)")
    ev = (f"{value} {a} ({counts[a]} models) minus {b} ({counts[b]}): {_fmt(est, lo, hi)}"
          + (f"; {where}" if where else ""))
    return claims.judgement(c, source, claims.REPRODUCED if ok else claims.NOT_REPRODUCED, detail, ev)


def assess_quantity(df: pd.DataFrame, source: str, value: str = "ece_before",
                    min_models: int = 4, n_boot: int = 1000, seed: int = 0,
                    where: str = "") -> dict:
    """*Training quantity*. ``df``: one row per zero-shot CLIP model with ``source``,
    ``samples`` (training-set size) and ``value``. Rule: within each training source with at
    least ``min_models`` models and two sizes, the Spearman correlation of ``value`` with the
    training-set size and its bootstrap interval (:func:`metrics.correlation`); reproduced when
    at least one source's interval excludes zero (the sources are named with their
    correlations)."""
    c = CLAIMS["calib-quantity"]
    d = df[df["group"] == CLIP_ZEROSHOT].dropna(subset=[value, "samples"])
    parts, hits = [], 0
    for src, part in d.groupby("source", sort=True):
        if len(part) < max(3, min_models) or part["samples"].nunique() < 2:
            continue
        r, lo, hi = metrics.correlation(np.log10(part["samples"].to_numpy(float)),
                                        part[value].to_numpy(float), "spearman",
                                        n_boot=n_boot, seed=seed)
        sig = np.isfinite(lo) and (lo > 0 or hi < 0)
        hits += int(sig)
        parts.append(f"{src} ({len(part)} models, {part['samples'].nunique()} sizes): "
                     f"rho {r:+.2f} [{lo:+.2f}, {hi:+.2f}]")
    if not parts:
        return claims.not_testable(c, source, f"needs a CLIP training source with at least "
                            f"{min_models} models of two training-set sizes")
    detail = f"{hits} of {len(parts)} sources with an interval excluding zero"
    ev = f"Spearman correlation of {value} with log training-set size: " + "; ".join(parts) + (
        f"; {where}" if where else "")
    return claims.judgement(c, source, claims.REPRODUCED if hits else claims.NOT_REPRODUCED, detail, ev)


def assess_transfer(table: pd.DataFrame, source: str, margin: float = 0.02,
                    share: float = 0.75, n_boot: int = 1000, seed: int = 0) -> dict:
    """*The ID temperature transfers*. Per shift, over the zero-shot CLIP models: the mean
    excess ECE of the ID temperature over the shift's oracle temperature
    (``ece_after - ece_oracle``) with a bootstrap interval over models
    (:func:`summaries.bootstrap_mean`). A shift counts when the interval's upper end is at most
    ``margin`` (default 2 ECE points). Rule: reproduced when at least ``share`` of the shifts
    count (:func:`claims.verdict_from_count`); the mean ECE before and after scaling is in the
    evidence."""
    c = CLAIMS["calib-transfer"]
    sh = table[(~table["is_id"]) & (table["group"] == CLIP_ZEROSHOT)]
    if sh.empty or "ece_oracle" not in sh:
        return claims.not_testable(c, source, "no zero-shot CLIP model on a shifted set (with oracle "
                            "temperatures)")
    ok, parts = 0, []
    n = 0
    for d, part in sh.groupby("dataset", sort=False):
        ex = (part["ece_after"] - part["ece_oracle"]).to_numpy(float)
        if ex.size < 2:
            continue
        n += 1
        est, lo, hi = bootstrap_mean(ex, n_boot=n_boot, seed=seed)
        good = bool(np.isfinite(hi) and hi <= margin)
        ok += int(good)
        parts.append(f"{d} excess {_fmt(est, lo, hi, unit='')} (ECE {part['ece_before'].mean() * 100:.1f}"
                     f" -> {part['ece_after'].mean() * 100:.1f})")
    if n == 0:
        return claims.not_testable(c, source, "needs at least two zero-shot CLIP models per shift")
    claimed = int(np.ceil(share * n - 1e-9))
    return claims.verdict_from_count(
        c, source, ok, n, claimed,
        evidence=f"{ok} of {n} shifts within {margin * 100:.0f} ECE points of the oracle "
                 f"temperature (needed {claimed}); points: " + "; ".join(parts))


def assess_own_trend(table: pd.DataFrame, source: str, value: str = "ece_after",
                     reference: Sequence[str] = (BASELINE,), n_boot: int = 1000,
                     seed: int = 0) -> dict:
    """*Own trend after scaling*. Per model, the mean over the shifts of ``value`` and of
    accuracy; zero-shot CLIP's mean ``value`` minus the reference groups' least-squares line of
    ``value`` on accuracy at each CLIP model's accuracy
    (:func:`summaries.accuracy_controlled_difference`). Rule: reproduced when the bootstrap
    interval excludes zero (CLIP lies off the ImageNet models' trend; the sign says which
    side)."""
    c = CLAIMS["calib-own-trend"]
    sh = table[~table["is_id"]]
    per = sh.groupby(["model", "group"], as_index=False)[[value, "accuracy"]].mean()
    n_ref = int(per["group"].isin(reference).sum())
    n_clip = int((per["group"] == CLIP_ZEROSHOT).sum())
    if n_ref < 3 or n_clip < 1:
        return claims.not_testable(c, source, f"needs at least three {'/'.join(reference)} models and "
                            f"one zero-shot CLIP on the shifts; found {n_ref} and {n_clip}")
    est, lo, hi = accuracy_controlled_difference(per, "accuracy", value, CLIP_ZEROSHOT,
                                                 list(reference), n_boot=n_boot, seed=seed)
    if not np.all(np.isfinite([est, lo, hi])):
        return claims.not_testable(c, source, "the reference trend could not be fitted")
    ok = lo > 0 or hi < 0
    side = "below (better calibrated)" if est < 0 else "above (worse calibrated)"
    detail = (f"CLIP lies {side} the {'/'.join(reference)} trend" if ok else
              "the interval includes zero (CLIP on the ImageNet models' trend)")
    return claims.judgement(c, source, claims.REPRODUCED if ok else claims.NOT_REPRODUCED, detail,
                     f"{value} (mean over shifts) CLIP minus the {'/'.join(reference)} line at "
                     f"equal accuracy: {_fmt(est, lo, hi)}; {n_clip} CLIP, {n_ref} reference models")


def assess_prompt_claims(prompt: pd.DataFrame, source: str, n_boot: int = 1000,
                         seed: int = 0) -> list[dict]:
    """The training-distribution and training-quantity claims on LeVine et al.'s published
    per-prompt ECEs (CIFAR-10/100, zero-shot CLIPs only): per model the mean ECE over prompts
    and datasets; *source*: :func:`assess_source` on the two sources with most models;
    *quantity*: LAION-400M against LAION-2B (one distribution family at two sizes) at matched
    architectures, :func:`assess_quantity`'s correlation being undefined with two sizes, the
    difference LAION-2B minus LAION-400M with a bootstrap interval excludes zero."""
    per = prompt.groupby(["model", "arch", "source", "samples", "group"], as_index=False)["ece"].mean()
    where = f"mean ECE over prompts on {', '.join(prompt['dataset'].unique())} (LeVine et al.)"
    rows = [assess_source(per, source, value="ece", n_boot=n_boot, seed=seed, where=where)]
    c = CLAIMS["calib-quantity"]
    big, small = per[per["source"] == "LAION-2B"], per[per["source"] == "LAION-400M"]
    archs = sorted(set(big["arch"]) & set(small["arch"]))
    if len(archs) < 2:
        rows.append(claims.not_testable(c, source, "needs LAION-400M and LAION-2B CLIPs of two shared "
                                 "architectures"))
        return rows
    a = big[big["arch"].isin(archs)]["ece"]
    b = small[small["arch"].isin(archs)]["ece"]
    est, lo, hi = bootstrap_difference(a, b, n_boot=n_boot, seed=seed)
    ok = np.isfinite(lo) and (lo > 0 or hi < 0)
    rows.append(claims.judgement(c, source, claims.REPRODUCED if ok else claims.NOT_REPRODUCED,
                          "the interval excludes zero" if ok else
                          "the interval includes zero (inconclusive)",
                          f"LAION-2B minus LAION-400M at matched architectures "
                          f"({', '.join(archs)}): {_fmt(est, lo, hi)}; {where}"))
    return rows


def world_source_settings(fields: Sequence[str] = ("p_misaligned", "p_class_word", "n_filler",
                                                   "cue_strength", "caption_style")) -> pd.DataFrame:
    """What the synthetic world builds into its training sources, read from its configuration
    (:mod:`clipsafety.synth.sources`): one row per setting in ``fields``, one column per source
    (labelled, WIT-like, LAION-like). The training sources differ by construction; the chapter
    says so beside the training-distribution verdict, which measures the consequence for
    calibration, never these settings themselves."""
    from clipsafety.synth import sources as S

    cfg = {"labelled": S.LABELLED.to_dict(), "wit-like": S.WIT.to_dict(),
           "laion-like": S.LAION.to_dict()}
    return pd.DataFrame([{"setting": f, **{k: v.get(f) for k, v in cfg.items()}} for f in fields])


# --------------------------------------------------------------------------- the chapter's tables

def model_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Models per group of a :func:`calibration_table` (one column, ``models``; index group)."""
    return table.drop_duplicates("model").groupby("group").size().rename("models").to_frame()


def group_means_wide(group_means: pd.DataFrame,
                     metric_names: Sequence[str] = ("ece", "nll")) -> pd.DataFrame:
    """Group means of :func:`summaries.group_summary` over :func:`calibration_long` (by dataset,
    metric and scaling) as one row per (dataset, group) and one column per (metric, scaling):
    the ``metric_names`` before scaling and with the ID temperature (the oracle reading left
    out), conditions and groups in their order of appearance."""
    view = group_means[group_means["metric"].isin(list(metric_names))
                       & (group_means["scaling"] != "oracle")]
    return view.pivot_table(index=["dataset", "group"], columns=["metric", "scaling"],
                            values="mean", sort=False)


def excess_ece(table: pd.DataFrame) -> pd.DataFrame:
    """The shift rows of a :func:`calibration_table` with ``excess_ece``: ECE with the ID
    temperature minus ECE with the shift's own (oracle) temperature. Near zero: the ID
    temperature transfers."""
    return table[~table["is_id"]].assign(excess_ece=lambda t: t["ece_after"] - t["ece_oracle"])


def reliability_model_ids(table: pd.DataFrame, requested=None,
                          available: Sequence[str] = ()) -> list[str]:
    """The models whose reliability diagrams are drawn. Rule: the ``requested`` ids
    (:func:`clipsafety.catalog.resolve_models`), each of which must be among ``available``
    (the run's models; an error names the missing ones); when none are requested, the most
    accurate model on the ID set of each group of ``table``, groups in sorted order."""
    if requested:
        from clipsafety.catalog import resolve_models

        ids = resolve_models(requested)
        missing = [m for m in ids if m not in available]
        if missing:
            raise ValueError(f"reliability_models {missing} are not among this run's models "
                             f"({list(available)[:5]}...); pass ids from `models`.")
        return ids
    idt = table[table["is_id"]]
    return list(idt.loc[idt.groupby("group")["accuracy"].idxmax(), "model"])


def reliability_table(id_records: dict, table: pd.DataFrame, models: Sequence[str],
                      frac: float = FIT_FRACTION, seed: int = 0, n_bins: int = 15) -> pd.DataFrame:
    """Reliability bins (:func:`reliability_of_record`) of each of ``models`` on the evaluation
    half of its ID rows (the :func:`temperature_split` of ``frac`` and ``seed`` that
    :func:`calibration_table` used), read twice: before scaling (``reading`` "before
    scaling") and with its ID temperature ``T_id`` from ``table`` (``reading`` "T = 1.23").
    ``id_records``: ``{model: record}`` on the ID set. Columns: those of
    :func:`reliability_bins`, model, panel (the id without its source prefix), reading."""
    rel = []
    for m in models:
        rec = id_records[m]
        _, tt, _ = calibration_inputs(rec)
        _, ev = temperature_split(tt, frac=frac, seed=seed)
        T = float(table.loc[(table["model"] == m) & table["is_id"], "T_id"].iloc[0])
        for label, temp in (("before scaling", 1.0), (f"T = {T:.2f}", T)):
            rel.append(reliability_of_record(rec, temp, n_bins, rows=ev).assign(
                model=m, panel=f"{m.split(':', 1)[-1]}", reading=label))
    return pd.concat(rel, ignore_index=True)


def condition_summary(group_means: pd.DataFrame, conditions: Sequence[str],
                      reference: str = BASELINE) -> pd.DataFrame:
    """Per condition, the group means the chapter's finding quotes (NaN where a group has no
    value): zero-shot CLIP's ECE and NLL before scaling and with the ID temperature
    (``clip_ece_before``, ``clip_ece_after``, ``clip_nll_before``, ``clip_nll_after``) and the
    ``reference`` group's ECE (``ref_ece_before``, ``ref_ece_after``)."""
    gm = group_means.set_index(["dataset", "metric", "scaling", "group"])

    def gmean(d, m, s, g):
        key = (d, m, s, g)
        return gm.loc[key, "mean"] if key in gm.index else np.nan

    return pd.DataFrame([{"dataset": d,
                          "clip_ece_before": gmean(d, "ece", "before", CLIP_ZEROSHOT),
                          "clip_ece_after": gmean(d, "ece", "after", CLIP_ZEROSHOT),
                          "ref_ece_before": gmean(d, "ece", "before", reference),
                          "ref_ece_after": gmean(d, "ece", "after", reference),
                          "clip_nll_before": gmean(d, "nll", "before", CLIP_ZEROSHOT),
                          "clip_nll_after": gmean(d, "nll", "after", CLIP_ZEROSHOT)}
                         for d in conditions])


def id_temperatures(table: pd.DataFrame, group: str) -> pd.Series:
    """The ID temperatures ``T_id`` of the models of ``group`` (one per model, from the ID rows
    of a :func:`calibration_table`)."""
    return table[table["is_id"] & (table["group"] == group)]["T_id"]


def prompt_ece_means(prompt: pd.DataFrame) -> pd.DataFrame:
    """LeVine et al.'s ECEs (:func:`published_prompt_eces`) averaged over prompts, one row per
    (dataset, model), the model labelled with its training source (``"<model> (<source>)"``)."""
    return (prompt.groupby(["dataset", "model", "source", "group"], as_index=False)["ece"].mean()
            .assign(model=lambda t: t["model"] + " (" + t["source"] + ")"))


def prompt_ece_span(prompt: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model, source, group) of LeVine et al.'s ECEs: the ``mean``, ``min`` and
    ``max`` over prompts and ``span`` = max - min (how far the prompt alone moves the ECE)."""
    per_model = prompt.groupby(["dataset", "model", "source", "group"], as_index=False)[
        "ece"].agg(["mean", "min", "max"])
    return per_model.assign(span=lambda t: t["max"] - t["min"])


def prompt_ece_by_source(prompt: pd.DataFrame) -> pd.Series:
    """Mean of LeVine et al.'s ECEs per training source (over models, prompts and datasets),
    lowest first."""
    return prompt.groupby("source")["ece"].mean().sort_values()


# --------------------------------------------------------------------------- the chapter's verdict rows

def assess_live_claims(table: pd.DataFrame, source: str, id_set: str, reference: str = BASELINE,
                       transfer_margin: float = 0.02, transfer_share: float = 0.75,
                       n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """The five calibration claims on a :func:`calibration_table`, in :data:`CLAIMS` order:
    :func:`assess_not_better` (against ``reference``), :func:`assess_source` and
    :func:`assess_quantity` on the ID rows (ECE before scaling on ``id_set``),
    :func:`assess_transfer` (``transfer_margin``, ``transfer_share``) and
    :func:`assess_own_trend` (against ``reference``); each function's docstring states its
    rule."""
    idt = table[table["is_id"]]
    where = f"ID ECE before scaling on {id_set}"
    return [assess_not_better(table, source, reference=reference, n_boot=n_boot, seed=seed),
            assess_source(idt, source, n_boot=n_boot, seed=seed, where=where),
            assess_quantity(idt, source, n_boot=n_boot, seed=seed, where=where),
            assess_transfer(table, source, margin=transfer_margin, share=transfer_share,
                            n_boot=n_boot, seed=seed),
            assess_own_trend(table, source, reference=(reference,), n_boot=n_boot, seed=seed)]


#: the claims whose verdict on the synthetic world measures what the world builds in
BUILT_INTO_WORLD = ("calib-source", "calib-quantity")


def with_world_settings(rows: list[dict], settings: pd.DataFrame) -> list[dict]:
    """Verdict rows of the synthetic world, the claims of :data:`BUILT_INTO_WORLD` with a note
    appended to their evidence: the training sources differ by construction (``settings``,
    :func:`world_source_settings`, one ``setting`` per row with its labelled, WIT-like and
    LAION-like values) and the training sets' sizes are set by the zoo's plan, so the verdict
    measures what that does to calibration. Other rows unchanged, in the same order."""
    built = "; ".join(f"{r.setting}: " + ", ".join(f"{k} {r[k]}" for k in
                                                    ("labelled", "wit-like", "laion-like"))
                      for _, r in settings.iterrows())
    return [{**r, "evidence": f"{r['evidence']}. Built into the world (not a finding): "
             f"the training sources differ by construction ({built}) and the training "
             "sets' sizes are set by the zoo's plan; the verdict measures what that does "
             "to calibration"} if r["claim_id"] in BUILT_INTO_WORLD else r for r in rows]


def published_gaps(coverage: pd.DataFrame) -> tuple[str, list[str]]:
    """``(untestable, missing)`` from :func:`published_coverage`: why no published file can test
    the claims that need per-sample CLIP confidences on ImageNet and its shifts (how many CLIPs
    the per-sample files hold, on which sets the only published CLIP ECEs are), and the
    ImageNet-X files not in the registry."""
    per_sample = coverage[coverage["per_sample"]]
    n_clip_ps = int(per_sample["clip_models"].sum())
    missing = list(coverage.loc[~coverage["registered"], "file"])
    untestable = (f"the registered per-sample confidences ({len(per_sample)} files) hold "
                  f"{n_clip_ps} CLIP models, and the only published CLIP ECEs "
                  f"({int(coverage['clip_models'].sum())} CLIPs, LeVine et al.) are on "
                  f"{coverage.loc[coverage['clip_models'] > 0, 'datasets'].str.cat(sep=', ') or 'no set'}"
                  ", not on ImageNet or its shifts, and without per-sample confidences")
    return untestable, missing


#: the claims no published file can test (they need per-sample CLIP confidences on ImageNet)
NEEDS_PER_SAMPLE = ("calib-not-better", "calib-transfer", "calib-own-trend")


def published_claims(source: str, coverage: pd.DataFrame | None = None,
                     prompt: pd.DataFrame | None = None, n_boot: int = 1000,
                     seed: int = 0) -> list[dict]:
    """The verdict rows of the published evidence. Rule: with no ``coverage`` (the run did not
    ask for published evidence), every claim is not testable; otherwise the claims of
    :data:`NEEDS_PER_SAMPLE` are not testable for the reason :func:`published_gaps` gives, and
    the training-distribution and training-quantity claims are judged on LeVine et al.'s
    ``prompt`` ECEs (:func:`assess_prompt_claims`), not testable when those are empty."""
    if coverage is None:
        return [claims.not_testable(c, source, "published=False in this run")
                for c in CLAIMS.values()]
    untestable, _ = published_gaps(coverage)
    rows = [claims.not_testable(CLAIMS[cid], source, untestable) for cid in NEEDS_PER_SAMPLE]
    if prompt is not None and len(prompt):
        return rows + assess_prompt_claims(prompt, f"{source} (LeVine et al.)", n_boot=n_boot,
                                           seed=seed)
    return rows + [claims.not_testable(CLAIMS[cid], source,
                                       "LeVine et al.'s ECEs are not available here")
                   for cid in ("calib-source", "calib-quantity")]


# --------------------------------------------------------------------------------------------
# the chapter's parameters and exercises (collected by the book runner and the pages)

ABOUT = "ECE and NLL before and after temperature scaling, in distribution and under shift."

PARAMETER_RULES = {
    **_R.LIVE, "id_dataset": _R.dataset, "shifts": _R.datasets,
    "fit_fraction": _R.open_fraction, "n_bins": _R.N_BINS,
    "reliability_models": _R.optional_models, "reference_group": _R.groups,
    "transfer_margin": _R.ECE_MARGIN, "transfer_share": _R.fraction,
    "published": _R.choice(True, False),
}

_FEW = _R.FEW_ZOO_MODELS
EXERCISES = [
    Exercise("Use fewer bins for ECE and the reliability diagrams.",
             {"models": _FEW, "n_bins": 10},
             "how much ECE depends on the binning"),
    Exercise("Fit the temperature on a fifth of each ID class.",
             {"models": _FEW, "fit_fraction": 0.2},
             "whether the temperature still transfers to the shifts"),
    Exercise("Ask for a stricter transfer.",
             {"models": _FEW, "transfer_margin": 0.01},
             "the transfer claim's verdict"),
]
