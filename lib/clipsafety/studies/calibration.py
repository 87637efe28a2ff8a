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
from dataclasses import replace

import numpy as np
import pandas as pd

from clipsafety import claims, metrics
from clipsafety import rules as _R
from clipsafety.external import fetch, keys
from clipsafety.groups import BASELINE, CLIP_ZEROSHOT, STANDARD
from clipsafety.rules import Exercise
from clipsafety.summaries import (
    accuracy_controlled_difference,
    bootstrap_difference,
)

__all__ = ["BUILT_INTO_WORLD", "CLAIMS", "CONTROL", "FIT_FRACTION", "IMAGENETX_PREDICTIONS",
           "METRICS", "MIN_ABOVE_CHANCE", "PROMPT_ECES", "SCALINGS", "after_scaling_per_model",
           "assess_after_scaling", "assess_cood", "assess_live_claims", "assess_not_better",
           "assess_prompt_claims", "assess_quantity", "assess_source", "calibration_inputs",
           "calibration_long", "calibration_table", "chance_ok", "chance_premise",
           "collect_sets", "condition_summary", "confidence_gaps", "excess_ece",
           "group_means_wide", "id_temperatures", "imagenetx_confidences", "model_counts",
           "prompt_ece_by_source", "prompt_ece_means", "prompt_ece_span", "published_claims",
           "published_coverage", "published_gaps", "published_imagenetx_table",
           "published_prompt_eces", "regime_premise", "reliability_bins",
           "reliability_model_ids", "reliability_of_record", "reliability_table",
           "settings_text", "temperature_split", "world_source_settings"]

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
    """``(logits, targets, label_subset)`` of a record's ID rows, ready for the metrics:
    :func:`clipsafety.datasets.labelled_inputs` (OOD rows dropped; ObjectNet projected through
    its label map; spaces that differ without one are an error naming the record)."""
    from clipsafety.datasets import labelled_inputs

    return labelled_inputs(record)


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
    dataset, is_id, n_classes (the classes scored: chance is 1 / n_classes), n, accuracy, T_id,
    T_oracle, ``<metric>_<scaling>`` for metric in
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
            row = {"model": mid, "dataset": d, "is_id": d == id_set, "T_id": T,
                   "n_classes": int(np.asarray(Ld).shape[1] if sd is None else len(sd))}
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
    """Reliability-diagram bins (:func:`metrics.reliability`, :func:`metrics.ece`'s binning:
    ``n_bins`` equal-width bins ``(lo, hi]``, the first closed at 0) as a table. Columns: bin,
    lo, hi, n, share (n / N), accuracy, confidence (mean in the bin; NaN for an empty bin),
    gap (accuracy - confidence). ``sum(share * |gap|)`` over non-empty bins is the ECE."""
    r = metrics.reliability(confidence, correct, n_bins)
    return pd.DataFrame({"bin": np.arange(len(r["n"])), "lo": r["lo"], "hi": r["hi"], "n": r["n"],
                         "share": r["n"] / r["n"].sum(), "accuracy": r["accuracy"],
                         "confidence": r["confidence"], "gap": r["accuracy"] - r["confidence"]})


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

#: the book's methods convention: the other groups' line of a value on accuracy, fitted on the
#: comparison group (:func:`summaries.accuracy_controlled_difference`) — the one accuracy
#: control of every claim about training source, quantity or fine-tuning (OOD chapter alike)
CONTROL = ("summaries.accuracy_controlled_difference: the target models' value minus the "
           "comparison group's least-squares line of the value on accuracy at each target "
           "model's accuracy (the line fitted on the comparison group), percentile bootstrap "
           "over the pooled models with their group flags")
#: accuracy at least this multiple of chance for a condition to enter a comparison
MIN_ABOVE_CHANCE = 2.0

CLAIMS = {
    "calib-not-better": claims.Claim(
        "calib-not-better",
        "CLIP models are not consistently more calibrated than other ImageNet models, which "
        "contradicts existing findings", section="abstract", direction="greater",
        compares="zero-shot CLIP vs ImageNet models (the reference group; C-OOD: its ImageNet "
                 "classifiers)",
        conditioned_on="equal accuracy, per test condition",
        test="Per test condition (models at least twice chance), zero-shot CLIP's ECE minus "
             "the ImageNet models' line of ECE on accuracy at each CLIP's accuracy (the line "
             "fitted on the ImageNet models), bootstrap over models, Bonferroni over the "
             "conditions; reproduced when CLIP is worse (interval above 0) on at least one "
             "condition — a positive showing that it is not better everywhere, where an "
             "interval that includes 0 shows nothing —, contradicted when it is better "
             "(interval below 0) on every condition, inconclusive otherwise. On C-OOD (one "
             "condition, ImageNet val) the value is |mean confidence - accuracy|, a lower "
             "bound on ECE.", home="calibration"),
    "calib-source": claims.Claim(
        "calib-source",
        "CLIP models trained on different distributions are not consistently grouped together: "
        "the training distribution changes calibration", section="6", direction="differs",
        compares="zero-shot CLIPs of the two training sources with the most models",
        conditioned_on="equal ID accuracy",
        test="ID ECE of the first source's CLIPs minus the second source's line of ECE on "
             "accuracy (fitted on the second source), bootstrap over models; two-sided: "
             "reproduced when the interval excludes 0.", home="calibration"),
    "calib-quantity": claims.Claim(
        "calib-quantity",
        "CLIP models trained on less data are worse calibrated ('CLIP models trained on "
        "LAION-80M exhibit much lower calibration performance when compared to standard "
        "models')", section="6", direction="greater",
        compares="zero-shot CLIPs trained on less data vs CLIPs of the same source trained on "
                 "the most data",
        conditioned_on="equal ID accuracy, same training source",
        test="ID ECE of the CLIPs below their source's largest training set minus the line of "
             "ECE on accuracy fitted on the CLIPs at their source's largest training set, "
             "bootstrap over models; reproduced when the interval lies above 0 (less data, "
             "worse), contradicted when below.", home="calibration"),
    "calib-after-scaling": claims.Claim(
        "calib-after-scaling",
        "After ID temperature scaling, CLIP models follow their own trend, stay reasonably "
        "calibrated under shift and compare favourably with the other groups", section="6",
        direction="less",
        compares="zero-shot CLIP vs every other group of the run (standard, more data, other "
                 "robust, fine-tuned CLIPs)",
        conditioned_on="equal accuracy under shift, each model's ID temperature",
        test="Per model the mean over the shifts (models at least twice chance) of ECE with "
             "its ID temperature and of accuracy; zero-shot CLIP's value minus the other "
             "groups' line at equal accuracy (fitted on the other groups), bootstrap over "
             "models; reproduced when the interval lies below 0 (CLIP better calibrated), "
             "contradicted when above.", home="calibration"),
}
#: the claims whose world contrast a setting of the world fixes (its training sources)
BUILT_INTO_WORLD = ("calib-source",)


def chance_ok(table: pd.DataFrame, groups: Sequence[str],
              factor: float = MIN_ABOVE_CHANCE) -> pd.DataFrame:
    """Per test condition of a :func:`calibration_table`: chance (1 / classes scored), each of
    ``groups``' mean accuracy and ``ok`` = every group at least ``factor`` x chance."""
    rows = []
    for d, part in table.groupby("dataset", sort=False):
        chance = 1.0 / float(part["n_classes"].iloc[0]) if "n_classes" in part else np.nan
        accs = {g: float(part.loc[part["group"] == g, "accuracy"].mean()) for g in groups}
        ok = bool(np.isfinite(chance) and all(np.isfinite(a) and a >= factor * chance
                                              for a in accs.values()))
        rows.append({"dataset": d, "chance": chance, **{f"acc {g}": a for g, a in accs.items()},
                     "ok": ok})
    return pd.DataFrame(rows)


def chance_premise(ok: pd.DataFrame, factor: float = MIN_ABOVE_CHANCE) -> claims.Premise:
    """The above-chance premise from :func:`chance_ok`: holds when at least one condition is
    left; the conditions left out are named with their accuracies."""
    bad = ok[~ok["ok"]]
    acc_cols = [c for c in ok.columns if c.startswith("acc ")]
    left_out = "; ".join(f"{r['dataset']} (chance {100 * r['chance']:.0f}%: "
                         + ", ".join(f"{c[4:]} {100 * r[c]:.0f}%" for c in acc_cols) + ")"
                         for _, r in bad.iterrows())
    return claims.Premise(
        "models above chance", bool(ok["ok"].any()),
        f"{int(ok['ok'].sum())} of {len(ok)} conditions with every compared group at least "
        f"{factor:g}x chance" + (f"; left out: {left_out}" if left_out else ""),
        f"at least one condition with accuracy >= {factor:g}x chance")


def confidence_gaps(table: pd.DataFrame, per_set: bool = False) -> pd.DataFrame:
    """Per group, on the ID rows of a :func:`calibration_table` (``per_set``: per group and
    test condition, every row): models, mean accuracy, mean confidence before scaling, the
    median, lowest and highest gap ``100 * (confidence - accuracy)`` (points; negative =
    under-confident), the share of over-confident models and, where the table has it, the
    median ID temperature ``T_id``. A published table of per-model ``accuracy`` and
    ``mean_confidence_before`` (``is_id`` True) reads the same way."""
    rows = table if per_set else table[table["is_id"]]
    t = rows.assign(gap=100 * (rows["mean_confidence_before"] - rows["accuracy"]))
    agg = dict(models=("model", "nunique"), accuracy=("accuracy", "mean"),
               confidence=("mean_confidence_before", "mean"), median_gap=("gap", "median"),
               min_gap=("gap", "min"), max_gap=("gap", "max"),
               over_confident=("gap", lambda g: float((g > 0).mean())))
    if "T_id" in t:
        agg["temperature_median"] = ("T_id", "median")
    return t.groupby(["group", "dataset"] if per_set else "group", sort=not per_set).agg(**agg)


def regime_premise(table: pd.DataFrame, real: pd.DataFrame | None,
                   reference: str = BASELINE) -> list[claims.Premise]:
    """The world's confidence regime against the real one, with the book's shared premise
    (:func:`clipsafety.premises.confidence_regime`): per group (zero-shot CLIP and
    ``reference``), the models' ID gap (mean confidence before scaling minus accuracy, points)
    against the real range of the same group in ``real`` (C-OOD,
    :func:`clipsafety.published_models.cood_models`: its zero-shot CLIPs, and its ImageNet
    classifiers for ``reference``). One failing premise when ``real`` is None (the real range
    is not available, so the regime cannot be checked)."""
    from clipsafety import premises

    if real is None or not len(real):
        return [claims.Premise("confidence regime", False, "the published real range (C-OOD) "
                               "is not available here", "C-OOD's file")]
    world = table[table["is_id"]].assign(
        conf_gap=lambda t: 100 * (t["mean_confidence_before"] - t["accuracy"]))
    ranges = premises.real_gap_ranges(real, {CLIP_ZEROSHOT: CLIP_ZEROSHOT, reference: STANDARD})
    return premises.confidence_regime(world, ranges)


def _controlled(df, value, x, target, reference, n_boot, seed, level=0.95):
    return accuracy_controlled_difference(df, x, value, target, list(reference), n_boot=n_boot,
                                          seed=seed, level=level)


def assess_not_better(table: pd.DataFrame, source: str, value: str = "ece_before",
                      reference: str = BASELINE, conditions: Sequence[str] | None = None,
                      n_boot: int = 1000, seed: int = 0) -> claims.Judgement:
    """*Not consistently more calibrated* (the abstract's headline) on a
    :func:`calibration_table`: per condition in ``conditions`` (default all), CLIP's ``value``
    minus the ``reference`` group's line at equal accuracy (:data:`CONTROL`), at the
    Bonferroni level over the conditions; the rule of the claim's ``test``
    (:func:`claims.count` with one claimed; :func:`claims.interval` for one condition)."""
    c = CLAIMS["calib-not-better"]
    conds = list(dict.fromkeys(table["dataset"])) if conditions is None else list(conditions)
    usable = []
    for d in conds:
        part = table[table["dataset"] == d].dropna(subset=[value, "accuracy"])
        if (part["group"] == CLIP_ZEROSHOT).sum() >= 2 and (part["group"] == reference).sum() >= 3:
            usable.append(d)
    if not usable:
        return claims.not_testable(c, source, f"needs at least two zero-shot CLIPs and three "
                                   f"{reference} models on one condition above chance")
    level, corr = claims.bonferroni(len(usable))
    items, n_clip, n_ref = [], 0, 0
    for d in usable:
        part = table[table["dataset"] == d]
        est, lo, hi = _controlled(part, value, "accuracy", CLIP_ZEROSHOT, [reference], n_boot,
                                  seed, level)
        items.append({"item": d, "estimate": 100 * est, "lo": 100 * lo, "hi": 100 * hi})
        n_clip = max(n_clip, int((part["group"] == CLIP_ZEROSHOT).sum()))
        n_ref = max(n_ref, int((part["group"] == reference).sum()))
    items = pd.DataFrame(items)
    kw = dict(effect=f"{value} of zero-shot CLIP minus the {reference} line at equal accuracy"
              + ("" if len(usable) == 1 else ", per condition"),
              scale="points", unit=claims.MODELS, n=(n_clip, n_ref),
              sides=("zero-shot CLIP", reference), data=tuple(dict.fromkeys(table.loc[
                  table["dataset"].isin(usable), "model"])))
    if len(usable) == 1:
        r = items.iloc[0]
        return claims.interval(c, source, r.estimate, r.lo, r.hi, **kw)
    kw["scale"] = ""
    j = claims.count(c, source, items, 1, correction=corr, **kw)
    detail = "; ".join(f"{r.item} {r.estimate:+.1f} [{r.lo:+.1f}, {r.hi:+.1f}]"
                       for r in items.itertuples())
    return replace(j, reason=f"{j.reason}. Per condition (points, {100 * level:.2f}% "
                   f"intervals): {detail}")


def assess_source(df: pd.DataFrame, source: str, value: str = "ece_before", x: str = "accuracy",
                  min_models: int = 3, n_boot: int = 1000, seed: int = 0,
                  where: str = "") -> claims.Judgement:
    """*Training distribution*: ``df`` one row per model (``group``, ``source``, ``value``,
    ``x``); the two zero-shot-CLIP training sources with the most models (at least
    ``min_models`` each): the first's ``value`` minus the second's line at equal ``x``
    (:data:`CONTROL`), two-sided."""
    c = CLAIMS["calib-source"]
    d = df[df["group"] == CLIP_ZEROSHOT].dropna(subset=[value, x])
    counts = d["source"].value_counts()
    counts = counts[counts >= min_models]
    if len(counts) < 2:
        return claims.not_testable(c, source, f"needs two CLIP training sources with at least "
                                   f"{min_models} models each; found "
                                   f"{ {k: int(v) for k, v in d['source'].value_counts().items()} }")
    a, b = sorted(counts.index[:2])
    part = d[d["source"].isin([a, b])].assign(group=lambda t: np.where(t["source"] == a, "A", "B"))
    est, lo, hi = _controlled(part, value, x, "A", ["B"], n_boot, seed)
    return claims.interval(c, source, 100 * est, 100 * lo, 100 * hi,
                           effect=f"{value} of {a} CLIPs minus the {b} CLIPs' line at equal "
                                  f"accuracy" + (f" ({where})" if where else ""),
                           scale="points", unit=claims.MODELS,
                           n=(int(counts[a]), int(counts[b])), sides=(a, b),
                           data=tuple(part["model"]))


def assess_quantity(df: pd.DataFrame, source: str, value: str = "ece_before", x: str = "accuracy",
                    n_boot: int = 1000, seed: int = 0, where: str = "") -> claims.Judgement:
    """*Less data, worse calibrated*: ``df`` one row per model (``group``, ``source``,
    ``samples``, ``value``, ``x``). Zero-shot CLIPs of sources with two or more training-set
    sizes: those below their source's largest size minus the line fitted on those at it
    (:data:`CONTROL`), directional (greater = less data, higher ECE)."""
    c = CLAIMS["calib-quantity"]
    d = df[df["group"] == CLIP_ZEROSHOT].dropna(subset=[value, x, "samples"])
    d = d[d.groupby("source")["samples"].transform("nunique") >= 2]
    if d.empty:
        return claims.not_testable(c, source, "needs zero-shot CLIPs of one training source at "
                                   "two or more training-set sizes")
    top = d.groupby("source")["samples"].transform("max")
    part = d.assign(group=np.where(d["samples"] < top, "less", "most"))
    n_less, n_most = int((part["group"] == "less").sum()), int((part["group"] == "most").sum())
    est, lo, hi = _controlled(part, value, x, "less", ["most"], n_boot, seed)
    return claims.interval(c, source, 100 * est, 100 * lo, 100 * hi,
                           effect=f"{value} of CLIPs trained on less data minus the line of "
                                  "those at their source's largest training set, at equal "
                                  "accuracy" + (f" ({where})" if where else ""),
                           scale="points", unit=claims.MODELS, n=(n_less, n_most),
                           sides=("less data", "most data"), data=tuple(part["model"]))


def after_scaling_per_model(table: pd.DataFrame, conditions: Sequence[str] | None = None,
                            value: str = "ece_after") -> pd.DataFrame:
    """Per model the mean over the shift rows (of ``conditions``, default all) of ``value`` and
    of accuracy, with its group."""
    sh = table[~table["is_id"]]
    if conditions is not None:
        sh = sh[sh["dataset"].isin(list(conditions))]
    return sh.groupby(["model", "group"], as_index=False)[[value, "accuracy"]].mean()


def assess_after_scaling(table: pd.DataFrame, source: str, value: str = "ece_after",
                         conditions: Sequence[str] | None = None, n_boot: int = 1000,
                         seed: int = 0) -> claims.Judgement:
    """*After ID scaling CLIP compares favourably*: per model the mean over the shifts of
    ``value`` and accuracy (:func:`after_scaling_per_model`); CLIP minus every other group's
    line at equal accuracy (:data:`CONTROL`), directional (less)."""
    c = CLAIMS["calib-after-scaling"]
    per = after_scaling_per_model(table, conditions, value)
    others = sorted(g for g in per["group"].dropna().unique() if g != CLIP_ZEROSHOT)
    n_clip = int((per["group"] == CLIP_ZEROSHOT).sum())
    n_ref = int(per["group"].isin(others).sum())
    if n_clip < 2 or n_ref < 3:
        return claims.not_testable(c, source, f"needs at least two zero-shot CLIPs and three other "
                                   f"models on the shifts; found {n_clip} and {n_ref}")
    est, lo, hi = _controlled(per, value, "accuracy", CLIP_ZEROSHOT, others, n_boot, seed)
    return claims.interval(c, source, 100 * est, 100 * lo, 100 * hi,
                           effect=f"{value} (mean over shifts) of zero-shot CLIP minus the line "
                                  f"of the other groups ({', '.join(others)}) at equal accuracy",
                           scale="points", unit=claims.MODELS, n=(n_clip, n_ref),
                           sides=("zero-shot CLIP", "other groups"), data=tuple(per["model"]))


def assess_cood(cood: pd.DataFrame, source: str, n_boot: int = 1000,
                seed: int = 0) -> list[claims.Judgement]:
    """The calibration claims on C-OOD's confidence gaps
    (:func:`clipsafety.published_models.cood_models`): *not consistently more calibrated* from
    ``|conf_gap|`` (a lower bound on ECE, points) of the zero-shot CLIPs against the ImageNet
    classifiers' line at equal accuracy (one condition, ImageNet val; rows without a softmax
    at T = 1, the fine-tuned CLIPs, left out and named); the other claims not testable (one
    training source and size; no temperatures or shifts)."""
    ok = cood[cood["softmax_ok"]].dropna(subset=["conf_gap", "id_acc"])
    flagged = cood.loc[~cood["softmax_ok"], "checkpoint"].tolist()
    d = ok.assign(abs_gap=lambda t: t["conf_gap"].abs(),
                  group=lambda t: np.where(t["group"] == CLIP_ZEROSHOT, CLIP_ZEROSHOT, "imagenet"))
    n_clip, n_ref = int((d["group"] == CLIP_ZEROSHOT).sum()), int((d["group"] == "imagenet").sum())
    est, lo, hi = accuracy_controlled_difference(d, "id_acc", "abs_gap", CLIP_ZEROSHOT,
                                                 ["imagenet"], n_boot=n_boot, seed=seed)
    from clipsafety.published_models import COOD

    clip_keys = tuple(d.loc[d["group"] == CLIP_ZEROSHOT, "checkpoint"])
    data = (COOD, *clip_keys, f"C-OOD ImageNet classifiers ({n_ref})")
    j = claims.interval(CLAIMS["calib-not-better"], source, est, lo, hi,
                        effect="|mean confidence - accuracy| on ImageNet val of zero-shot CLIP "
                               "minus the ImageNet classifiers' line at equal accuracy "
                               "(calibration in the large: a lower bound on ECE, so lower bounds "
                               "are compared, not ECEs; one condition, no shifts); "
                               f"{len(flagged)} fine-tuned CLIP rows left out (their score is not "
                               "a softmax at T = 1)",
                        scale="points", unit=claims.MODELS, n=(n_clip, n_ref),
                        sides=("zero-shot CLIP", "ImageNet classifiers"), data=data)
    one = ("C-OOD's CLIPs are OpenAI's WIT models of one training set: no second source or "
           "size")
    return [j, claims.not_testable(CLAIMS["calib-source"], source, one, data=(COOD,)),
            claims.not_testable(CLAIMS["calib-quantity"], source, one, data=(COOD,)),
            claims.not_testable(CLAIMS["calib-after-scaling"], source,
                                "C-OOD publishes no temperatures and no shifted sets",
                                data=(COOD,))]


def assess_prompt_claims(prompt: pd.DataFrame, source: str, n_boot: int = 1000,
                         seed: int = 0) -> list[claims.Judgement]:
    """The claims on LeVine et al.'s per-prompt ECEs (zero-shot CLIPs only, CIFAR-10/100,
    Food-101, SUN397): per model the mean over prompts and datasets. The file has no
    accuracies, so the comparison at equal accuracy the source and quantity claims need
    (:data:`CONTROL`) cannot be made: *not testable* (the published source cannot speak to a
    claim conditioned on accuracy), with the uncontrolled difference kept as numbers (source: the two sources with most models, two-sided; quantity:
    LAION-400M minus LAION-2B at the architectures both have, less data minus more).
    *Not consistently better* and *after scaling* are not testable (no ImageNet models; no
    temperatures)."""
    per = prompt.groupby(["model", "arch", "source", "samples", "group"], as_index=False)["ece"].mean()
    where = f"mean ECE over prompts on {', '.join(prompt['dataset'].unique())}"
    no_acc = ("LeVine et al. publish no accuracies, so the comparison at equal accuracy this "
              "claim needs cannot be made; the uncontrolled difference is shown, not judged")
    data = (PROMPT_ECES, *per["model"])
    out = [claims.not_testable(CLAIMS["calib-not-better"], source,
                               "LeVine et al. evaluate CLIPs only (no ImageNet models)",
                               data=(PROMPT_ECES,))]
    counts = per["source"].value_counts()
    counts = counts[counts >= 2]
    if len(counts) >= 2:
        a, b = sorted(counts.index[:2])
        est, lo, hi = bootstrap_difference(per.loc[per["source"] == a, "ece"],
                                           per.loc[per["source"] == b, "ece"], n_boot=n_boot,
                                           seed=seed)
        m = claims.interval(CLAIMS["calib-source"], source, 100 * est, 100 * lo, 100 * hi,
                            effect=f"ECE {a} minus {b}, not at equal accuracy ({where})",
                            scale="points", unit=claims.MODELS,
                            n=(int(counts[a]), int(counts[b])), sides=(a, b), data=data)
        out.append(claims.not_testable(CLAIMS["calib-source"], source, no_acc, measured=m))
    else:
        out.append(claims.not_testable(CLAIMS["calib-source"], source,
                                       "fewer than two training sources with two models"))
    big, small = per[per["source"] == "LAION-2B"], per[per["source"] == "LAION-400M"]
    archs = sorted(set(big["arch"]) & set(small["arch"]))
    if len(archs) >= 2:
        a = small[small["arch"].isin(archs)]["ece"]
        b = big[big["arch"].isin(archs)]["ece"]
        est, lo, hi = bootstrap_difference(a, b, n_boot=n_boot, seed=seed)
        m = claims.interval(CLAIMS["calib-quantity"], source, 100 * est, 100 * lo, 100 * hi,
                            effect=f"ECE LAION-400M minus LAION-2B at the architectures both "
                                   f"have ({', '.join(archs)}), not at equal accuracy ({where})",
                            scale="points", unit=claims.MODELS, n=(len(a), len(b)),
                            sides=("LAION-400M", "LAION-2B"), data=data)
        out.append(claims.not_testable(CLAIMS["calib-quantity"], source, no_acc, measured=m))
    else:
        out.append(claims.not_testable(CLAIMS["calib-quantity"], source,
                                       "needs LAION-400M and LAION-2B CLIPs of two shared "
                                       "architectures"))
    out.append(claims.not_testable(CLAIMS["calib-after-scaling"], source,
                                   "LeVine et al. publish no temperatures, shifts or per-sample "
                                   "confidences", data=(PROMPT_ECES,)))
    return out

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

def settings_text(settings: pd.DataFrame) -> str:
    """The world's source settings (:func:`world_source_settings`) in one line."""
    return "; ".join(f"{r.setting}: " + ", ".join(f"{k} {r[k]}" for k in
                                                  ("labelled", "wit-like", "laion-like"))
                     for _, r in settings.iterrows())


def assess_live_claims(table: pd.DataFrame, source: str, id_set: str, reference: str = BASELINE,
                       *, world: bool = False, real: pd.DataFrame | None = None,
                       settings: pd.DataFrame | None = None, n_boot: int = 1000,
                       seed: int = 0) -> list[claims.Judgement]:
    """The four calibration claims on a :func:`calibration_table`, in :data:`CLAIMS` order,
    each on the conditions where zero-shot CLIP and ``reference`` are at least
    :data:`MIN_ABOVE_CHANCE` x chance (:func:`chance_ok`). ``world``: the synthetic world's
    rows, gated (:func:`claims.gated`) by that premise and by the confidence regime
    (:func:`regime_premise` against ``real``, C-OOD's models); the source claim,
    when its premises hold, is built in (the world's ``settings``, :func:`world_source_settings`)."""
    ok = chance_ok(table, [CLIP_ZEROSHOT, reference])
    conds = list(ok.loc[ok["ok"], "dataset"])
    idt = table[table["is_id"] & table["dataset"].isin(conds)]
    where = f"ID ECE before scaling on {id_set}"
    rows = [assess_not_better(table, source, reference=reference, conditions=conds,
                              n_boot=n_boot, seed=seed),
            assess_source(idt, source, n_boot=n_boot, seed=seed, where=where),
            assess_quantity(idt, source, n_boot=n_boot, seed=seed, where=where),
            assess_after_scaling(table, source, conditions=conds, n_boot=n_boot, seed=seed)]
    premises = [chance_premise(ok)]
    if world:
        premises = regime_premise(table, real, reference) + premises
    out = []
    for j in rows:
        g = claims.gated(j, premises)
        if world and g.verdict in claims.TESTED and j.claim.claim_id in BUILT_INTO_WORLD:
            what = settings_text(settings) if settings is not None else "the source settings"
            g = claims.built_in(j.claim, source, "the world's training sources differ by "
                                f"construction (lib/clipsafety/synth/sources.py: {what})",
                                j if j.verdict in claims.TESTED else None)
        out.append(g)
    return out


def published_gaps(coverage: pd.DataFrame) -> tuple[str, list[str]]:
    """``(untestable, missing)`` from :func:`published_coverage`: why no published file can test
    the claim that needs CLIP confidences under shift with temperatures (how many CLIPs the
    per-sample files hold, on which sets the only published CLIP ECEs are), and the
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


def published_claims(source: str, cood: pd.DataFrame | None = None,
                     prompt: pd.DataFrame | None = None, n_boot: int = 1000,
                     seed: int = 0, why: str = "published=False in this run"
                     ) -> list[claims.Judgement]:
    """The judgements of the published evidence, one source per file: C-OOD's confidence
    gaps (:func:`assess_cood`, source ``"<source> (C-OOD)"``) and LeVine et al.'s ECEs
    (:func:`assess_prompt_claims`, ``"<source> (LeVine et al.)"``). With neither, every claim
    is not testable on ``source`` for ``why``."""
    out = []
    if cood is not None and len(cood):
        out += assess_cood(cood, f"{source} (C-OOD)", n_boot=n_boot, seed=seed)
    if prompt is not None and len(prompt):
        out += assess_prompt_claims(prompt, f"{source} (LeVine et al.)", n_boot=n_boot, seed=seed)
    if not out:
        out = [claims.not_testable(c, source, why) for c in CLAIMS.values()]
    return out

# --------------------------------------------------------------------------------------------
# the chapter's parameters and exercises (collected by the book runner and the pages)

ABOUT = "ECE and NLL before and after temperature scaling, in distribution and under shift."

PARAMETER_RULES = {
    **_R.LIVE, "id_dataset": _R.dataset, "shifts": _R.datasets,
    "fit_fraction": _R.open_fraction, "n_bins": _R.N_BINS,
    "reliability_models": _R.optional_models, "reference_group": _R.groups,
    "published": _R.choice(True, False),
}

#: what the calibration exercises compare: each group's mean ECE before and after the ID
#: temperature (over its models and the test conditions), and each claim's verdict
_CALIBRATION_MEASURES = _R.group_means(
    "table", {"ece_before": "ECE before scaling (fraction, mean over the test conditions)",
              "ece_after": "ECE with the ID temperature (fraction, mean over the test conditions)"})

EXERCISES = [
    Exercise("Use fewer bins for ECE and the reliability diagrams.",
             {"n_bins": 10},
             "how much ECE depends on the binning", _CALIBRATION_MEASURES),
    Exercise("Fit the temperature on a fifth of each ID class.",
             {"fit_fraction": 0.2},
             "whether the temperature still transfers to the shifts", _CALIBRATION_MEASURES),
    Exercise("Compare zero-shot CLIP with the ImageNet models trained on more data instead of "
             "the standard ones.",
             {"reference_group": "more-data"},
             "which calibration verdicts depend on the group CLIP is compared with",
             _CALIBRATION_MEASURES),
]
