"""Study of the OOD-detection chapter (paper section 5): does a model tell in-distribution
images from images of other classes, and what decides how well?

Tables: per (model, OOD set, score) the detection metrics computed from prediction records
(:func:`detection_table`: AUROC, FPR@95, AUPR-in, AUPR-out from :mod:`clipsafety.metrics`),
their averages over OOD sets with the model's ID accuracy (:func:`average_over_sets`), and the
correlation of detection with ID accuracy per training source (:func:`correlations`);
published real-model results of NINCO (:func:`ninco_results`) and of Galil et al.'s C-OOD
benchmark (:func:`cood_results`). Claims: the paper's four OOD claims (:data:`CLAIMS`) and
their rules (:func:`assess_ood_claims`).

Scores (every score: higher = more in-distribution; the book's "Methods and conventions"):

- ``mcm``: Maximum Concept Matching, ``max softmax(cos / T)`` over the image-text cosines
  (zero-shot CLIP's default);
- ``msp``: maximum softmax probability of the logits (every other model's default; as an
  option for zero-shot CLIP it is MSP over CLIP's own scaled logits);
- ``maxlogit``, ``energy`` (``T logsumexp(z / T)``);
- ``neglabel``: negative-label scoring in the style of NegLabel (Jiang et al., ICLR 2024):
  the image's softmax mass on the ID class names against a vocabulary of negative labels,
  ``sum_id exp(cos/tau) / (sum_id exp(cos/tau) + sum_neg exp(cos/tau))`` with ``tau = 0.01``.
  The negatives are the words of the synthetic world's caption vocabulary that are neither
  category names nor template or filler words (zoo), or ImageNet-21k lemmas outside
  ImageNet-1k (real path, from timm's lemma list). NegLabel's negative mining and grouping
  are not done here (a simplification, stated in the chapter).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from clipsafety import claims, metrics
from clipsafety import rules as _R
from clipsafety.external import fetch
from clipsafety.groups import CLIP_FT_2STAGE, CLIP_FT_DIRECT, CLIP_ZEROSHOT, FT_GROUPS, STANDARD
from clipsafety.models import model_metadata
from clipsafety.rules import Exercise
from clipsafety.summaries import accuracy_controlled_difference, bootstrap_mean, paired_changes

__all__ = ["BUILT_INTO_WORLD", "CLAIMS", "COOD_IMAGENET", "GROUP_MEAN_COLUMNS", "METRICS",
           "MIN_ABOVE_CHANCE", "SCORES", "STRONG", "assess_ood_claims", "average_over_sets",
           "cood_as_standard", "cood_avg", "cood_results", "correlations", "detection_table",
           "fine_tuning_pairs", "group_means", "id_classnames", "negative_vocabulary",
           "neglabel", "ninco_avg", "ninco_results", "ninco_scores", "ninco_summary",
           "record_scores", "resolve_ood_sets", "resolve_scores", "score_gain", "score_ranks",
           "two_stage_pairs", "world_premises", "world_source_setting"]

SCORES = ("mcm", "msp", "maxlogit", "energy", "neglabel")
METRICS = ("auroc", "fpr95", "aupr_in", "aupr_out")
NEGLABEL_TAU = 0.01


def resolve_scores(clip_score: str = "mcm", other_score: str = "msp") -> tuple[str, str]:
    """Check the two score parameters: zero-shot CLIP's (any of :data:`SCORES`) and every other
    model's (``msp``, ``maxlogit`` or ``energy``; MCM and NegLabel need a text head)."""
    if clip_score not in SCORES:
        raise ValueError(f"clip_score={clip_score!r}; expected one of {list(SCORES)}.")
    if other_score not in ("msp", "maxlogit", "energy"):
        raise ValueError(f"other_score={other_score!r}; expected 'msp', 'maxlogit' or 'energy' "
                         "(MCM and NegLabel need the text head of a zero-shot CLIP).")
    return clip_score, other_score


#: the OOD sets of each path, in display order
ZOO_OOD_SETS = ("synth:ood-near", "synth:ood-textures", "synth:ood-scenes", "synth:ood-finegrained",
                "synth:ood-noise")
REAL_OOD_SETS = ("ood:inaturalist", "ood:sun", "ood:places", "ood:textures", "imagenet:o",
                 "ood:ninco")


def resolve_ood_sets(ood_sets, real: bool) -> list[str]:
    """The OOD sets of a run: the default set of its path (the world's five, or the six real
    ones), or a list / comma-separated string of dataset ids whose registry kind is ``ood``."""
    from clipsafety.datasets import dataset_info

    if not ood_sets:
        return list(REAL_OOD_SETS if real else ZOO_OOD_SETS)
    sets = [s.strip() for s in ood_sets.split(",")] if isinstance(ood_sets, str) else list(ood_sets)
    bad = []
    for s in sets:
        try:
            if dataset_info(s).kind != "ood":
                bad.append(f"{s} (kind {dataset_info(s).kind!r})")
        except (KeyError, ValueError):
            bad.append(f"{s} (unknown)")
    if bad:
        raise ValueError(f"ood_sets: {bad} are not OOD sets; expected ids of kind 'ood' such as "
                         f"{list(ZOO_OOD_SETS[:2])} or {list(REAL_OOD_SETS[:2])}, or empty for the "
                         "default sets.")
    return sets


def id_classnames(record, real: bool) -> list[str]:
    """The ID class names of a record's zero-shot head, the columns a negative-label head
    starts with: ImageNet's names (real path) or the world's categories (zoo)."""
    if real:
        from clipsafety.heads import imagenet_classnames

        return list(imagenet_classnames())
    from clipsafety.synth import CATEGORIES

    return list(CATEGORIES)


def fine_tuning_pairs(avg: pd.DataFrame, metric: str = "auroc") -> pd.DataFrame:
    """Fine-tuned CLIPs with their zero-shot parent in ``avg``, with ``metric`` before and
    after (:func:`clipsafety.summaries.paired_changes`)."""
    return paired_changes(avg, metric)


def is_zero_shot(record) -> bool:
    """Whether a record's logits come from a zero-shot (text-head) CLIP: its logit policy."""
    return (record.manifest.get("logit_policy") or {}).get("kind") == "clip"


# --------------------------------------------------------------------------- scores

def neglabel(cosines, n_id: int, tau: float = NEGLABEL_TAU) -> np.ndarray:
    """NegLabel-style score from cosines ``[N, n_id + n_neg]`` whose first ``n_id`` columns are
    the ID class names: ``sum_id exp(c/tau) / sum_all exp(c/tau)``, higher = ID."""
    C = np.asarray(cosines, dtype=np.float64)
    if C.ndim != 2 or not 0 < n_id < C.shape[1]:
        raise ValueError(f"cosines must be [N, n_id + n_neg] with n_id={n_id} ID columns and at "
                         f"least one negative label; got shape {C.shape}.")
    z = C / float(tau)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e[:, :n_id].sum(1) / e.sum(1)


def record_scores(record, score: str, T: float = 1.0, neg_record=None) -> np.ndarray:
    """Per-sample OOD scores of one record (higher = ID). ``neg_record``: for ``neglabel``,
    the same model and images with a head over the ID class names followed by the negative
    labels (its first columns are the record's classes)."""
    sub = record.label_subset
    if score == "msp":
        return metrics.msp(record.logits, sub, temperature=T)
    if score == "maxlogit":
        return metrics.max_logit(record.logits, sub)
    if score == "energy":
        return metrics.energy(record.logits, sub, temperature=T)
    if score in ("mcm", "neglabel") and not is_zero_shot(record):
        raise ValueError(f"{score} needs the image-text cosines of a zero-shot CLIP; "
                         f"{record.manifest.get('model_id', '?')!r} is a classifier. Use msp, "
                         "maxlogit or energy for it.")
    if score == "mcm":
        cos = metrics.cosines_from_logits(record.logits, record.manifest["logit_policy"])
        return metrics.mcm(cos, T=T, label_subset=sub)
    if score == "neglabel":
        if neg_record is None:
            raise ValueError("neglabel needs the record with the negative-label head "
                             "(neg_record); the chapter builds it with negative_vocabulary().")
        cos = metrics.cosines_from_logits(neg_record.logits, neg_record.manifest["logit_policy"])
        n_id = record.logits.shape[1]
        if sub is not None:  # keep the dataset's ID classes and every negative
            keep = np.r_[np.asarray(sub), np.arange(n_id, cos.shape[1])]
            cos, n_id = cos[:, keep], len(sub)
        return neglabel(cos, n_id)
    raise ValueError(f"score={score!r}; expected one of {list(SCORES)}.")


def negative_vocabulary(real: bool = False) -> list[str]:
    """The negative labels of the NegLabel-style score (see the module docstring)."""
    if real:
        from timm.data import ImageNetInfo

        from clipsafety.datasets import imagenet_synsets

        info = ImageNetInfo("imagenet-22k")
        in1k = set(imagenet_synsets())
        names = {info.index_to_description(i).split(",")[0].strip().lower()
                 for i in range(info.num_classes()) if info.index_to_label_name(i) not in in1k}
        return sorted(names)
    from clipsafety.synth import CATEGORIES, VOCAB
    from clipsafety.synth import text as T

    skip = set(CATEGORIES) | set(getattr(T, "TEMPLATE_WORDS", [])) | set(getattr(T, "FILLER", []))
    return [w for w in VOCAB if not w.startswith("<") and w not in skip]


# --------------------------------------------------------------------------- tables

def _metric_row(id_s, ood_s, fpr_convention: str, aupr_method: str) -> dict:
    return {"auroc": metrics.auroc(id_s, ood_s),
            "fpr95": metrics.fpr_at_tpr(id_s, ood_s, 0.95, convention=fpr_convention),
            "aupr_in": metrics.aupr_in(id_s, ood_s, method=aupr_method),
            "aupr_out": metrics.aupr_out(id_s, ood_s, method=aupr_method)}


def detection_table(id_records: dict, ood_records: dict, clip_score: str = "mcm",
                    other_score: str = "msp", T: float = 1.0, fpr_convention: str = "id-recall",
                    aupr_method: str = "step", neg_records: dict | None = None) -> pd.DataFrame:
    """Detection metrics per (model, OOD set): the model's ID test records against each OOD
    set's records, with the score of its kind (zero-shot CLIP: ``clip_score``; others:
    ``other_score``).

    ``id_records``: ``{model: record}``; ``ood_records``: ``{ood_set: {model: record}}``;
    ``neg_records``: for ``neglabel``, ``{dataset: {model: record}}`` with the negative head on
    the ID set and on every OOD set. Columns: model, ood_set, score, auroc, fpr95, aupr_in,
    aupr_out, id_acc, then the catalog metadata.
    """
    clip_score, other_score = resolve_scores(clip_score, other_score)
    rows = []
    id_key = "__id__"
    for mid, rid in id_records.items():
        score = clip_score if is_zero_shot(rid) else other_score
        neg = (neg_records or {}).get(id_key, {}).get(mid)
        s_id = record_scores(rid, score, T, neg)
        acc = metrics.accuracy(rid.logits, rid.targets, rid.label_subset)
        for ood_set, recs in ood_records.items():
            if mid not in recs:
                continue
            neg = (neg_records or {}).get(ood_set, {}).get(mid)
            s_ood = record_scores(recs[mid], score, T, neg)
            rows.append({"model": mid, "ood_set": ood_set, "score": score,
                         **_metric_row(s_id, s_ood, fpr_convention, aupr_method),
                         "id_acc": acc})
    df = pd.DataFrame(rows, columns=["model", "ood_set", "score", *METRICS, "id_acc"])
    meta = model_metadata(list(id_records))
    meta = meta.drop(columns=[c for c in meta.columns if c in df.columns and c != "model"])
    return df.merge(meta, on="model", how="left")


def average_over_sets(table: pd.DataFrame) -> pd.DataFrame:
    """One row per model: the mean of each metric over the OOD sets (``n_sets`` of them), with
    the model's ID accuracy and metadata."""
    meta = [c for c in table.columns if c not in (*METRICS, "ood_set")]
    out = table.groupby("model", sort=False)[list(METRICS)].mean().reset_index()
    out["n_sets"] = table.groupby("model", sort=False)["ood_set"].nunique().to_numpy()
    return out.merge(table[meta].drop_duplicates("model"), on="model", how="left")


def correlations(avg: pd.DataFrame, metric: str = "auroc", by: str = "source",
                 groups: Sequence[str] = (CLIP_ZEROSHOT,), min_models: int = 4,
                 n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Pearson and Spearman correlation of ID accuracy with ``metric``, per value of ``by``
    (the training source) among the models of ``groups``, each with a percentile bootstrap
    interval over models (:func:`clipsafety.metrics.correlation`). Values of ``by`` with fewer
    than ``min_models`` models are left out."""
    rows = []
    d = avg[avg["group"].isin(list(groups))].dropna(subset=["id_acc", metric])
    for key, part in d.groupby(by, sort=True):
        if len(part) < min_models or part["id_acc"].nunique() < 3:
            continue
        row = {by: key, "n_models": len(part)}
        for method in ("pearson", "spearman"):
            r, lo, hi = metrics.correlation(part["id_acc"].to_numpy(), part[metric].to_numpy(),
                                            method=method, n_boot=n_boot, seed=seed)
            row.update({method: r, f"{method}_lo": lo, f"{method}_hi": hi})
        rows.append(row)
    return pd.DataFrame(rows, columns=[by, "n_models", "pearson", "pearson_lo", "pearson_hi",
                                       "spearman", "spearman_lo", "spearman_hi"])


def two_stage_pairs(avg: pd.DataFrame, metric: str = "auroc") -> pd.DataFrame:
    """Two-stage and direct fine-tunes of the same zero-shot parent: one row per parent with
    both, columns parent, direct, two_stage, value_direct, value_two_stage, diff."""
    ft = avg[avg["group"].isin(FT_GROUPS)].dropna(subset=["parent"]) if "parent" in avg else avg.iloc[:0]
    rows = []
    for parent, part in ft.groupby("parent", sort=True):
        d = part[part["group"] == CLIP_FT_DIRECT]
        t = part[part["group"] == CLIP_FT_2STAGE]
        if len(d) == 1 and len(t) == 1:
            rows.append({"parent": parent, "direct": d["model"].iloc[0], "two_stage": t["model"].iloc[0],
                         "value_direct": float(d[metric].iloc[0]),
                         "value_two_stage": float(t[metric].iloc[0])})
    out = pd.DataFrame(rows, columns=["parent", "direct", "two_stage", "value_direct",
                                      "value_two_stage"])
    out["diff"] = out["value_two_stage"] - out["value_direct"]
    return out


# --------------------------------------------------------------------------- published results

NINCO = "j-cb/NINCO/model_outputs/df.pkl"
COOD = "mdabbah/COOD_benchmarking/paper_results/all_paper_results.csv"

#: NINCO's "unit tests" (synthetic noise images), kept apart from its real OOD classes
NINCO_UNIT_TESTS = ("Gaussian", "Rademacher", "black", "blobs", "grey", "horizontal_stripes",
                    "low_freq", "low_freq_channelfullscale", "low_freq_colorrange",
                    "low_freq_pixel_perm", "monochrome", "pixel_perm", "tricolour",
                    "tricolour_primary", "uni", "vertical_stripes", "white")

#: NINCO's models, named as in its results: group, training source, zero-shot parent
NINCO_MODELS = {
    "clip-ViT-B16": (CLIP_ZEROSHOT, "WIT", None),
    "clip-ViT-L14-336": (CLIP_ZEROSHOT, "WIT", None),
    "vit_base_patch16_384_openai_in1k": (CLIP_FT_DIRECT, "WIT", "clip-ViT-B16"),
    "vit_base_patch16_384_openai_in21k_in1k": (CLIP_FT_2STAGE, "WIT", "clip-ViT-B16"),
    # their LAION-2B parent is not among NINCO's models: named, so the two fine-tunes pair
    "vit_base_patch16_384_laion2b_in1k": (CLIP_FT_DIRECT, "LAION-2B", "LAION-2B ViT-B/16 (not in NINCO)"),
    "vit_base_patch16_384_laion2b_in21k_in1k": (CLIP_FT_2STAGE, "LAION-2B",
                                                "LAION-2B ViT-B/16 (not in NINCO)"),
}


def _ninco_group(name: str) -> tuple[str, str, str | None]:
    if name in NINCO_MODELS:
        return NINCO_MODELS[name]
    more = any(t in name for t in ("21k", "22k", "_ns", "BiT_m", "in21ft1k"))
    return ("more-data" if more else STANDARD), ("more data" if more else "ImageNet"), None


def ninco_results(score_clip: str = "mcm-clip", score_other: str = "MSP") -> pd.DataFrame:
    """NINCO's published per-model results (Bitterwolf et al. 2023) as a tidy table.

    The pickle is read only after its sha256 matched the registry (:func:`external.fetch`).
    One row per (model, OOD set) with the zero-shot CLIPs' ``score_clip`` and every other
    model's ``score_other``: model, method, ood_set, kind (``NINCO class``, ``cleaned subset``
    or ``unit test``), auroc, fpr95 (NINCO's FPR at 95% TPR, ID positive), id_acc, group,
    source, parent. Groups follow :data:`NINCO_MODELS` and, for the ImageNet models, their
    names (``21k``/``22k``/``_ns``/BiT-M: more data).
    """
    df = pd.read_pickle(fetch(NINCO))
    rows = df[((df["method"] == score_clip) & df["model"].isin(
        [m for m, v in NINCO_MODELS.items() if v[0] == CLIP_ZEROSHOT]))
              | ((df["method"] == score_other) & ~df["model"].isin(
                  [m for m, v in NINCO_MODELS.items() if v[0] == CLIP_ZEROSHOT]))].copy()
    rows = rows.rename(columns={"dataset": "ood_set", "fpr": "fpr95", "acc": "id_acc"})
    rows["kind"] = np.where(rows["ood_set"].isin(NINCO_UNIT_TESTS), "unit test",
                            np.where(rows["ood_set"].str.endswith(("_ood", "_full")),
                                     "cleaned subset", "NINCO class"))
    meta = rows["model"].map(_ninco_group)
    rows["group"] = [m[0] for m in meta]
    rows["source"] = [m[1] for m in meta]
    rows["parent"] = [m[2] for m in meta]
    return rows.reset_index(drop=True)


def ninco_summary(ninco: pd.DataFrame) -> pd.DataFrame:
    """Per model: mean AUROC and FPR@95 over NINCO's OOD classes (each class's AUROC against
    ImageNet val, averaged; not the pooled AUROC), and on each cleaned subset (``*_ood``)."""
    cls = ninco[ninco["kind"] == "NINCO class"].groupby("model").agg(
        auroc=("auroc", "mean"), fpr95=("fpr95", "mean"), n_classes=("ood_set", "nunique"))
    sub = ninco[ninco["ood_set"].str.endswith("_ood")].pivot_table(
        index="model", columns="ood_set", values="auroc")
    sub.columns = [f"auroc {c.removesuffix('_ood')}" for c in sub.columns]
    keep = ["model", "method", "id_acc", "group", "source", "parent"]
    out = ninco[keep].drop_duplicates("model").set_index("model").join(cls).join(sub)
    return out.reset_index()


#: Galil et al.'s CLIPs: ``CLIP_<arch>`` zero-shot (OpenAI, WIT), ``CLIP_finetuned_<arch>``
_COOD_CLIP = "CLIP_"
#: the group :func:`cood_results` gives every other model of C-OOD (ImageNet classifiers)
COOD_IMAGENET = "imagenet"


def cood_results(confidence: str = "softmax") -> pd.DataFrame:
    """Galil et al.'s C-OOD benchmark (ICLR 2023): one row per model, its ID accuracy, the OOD
    AUROC at each of the 11 severity levels and their mean (``auroc``), for one confidence
    function (``softmax`` = MSP). Group: ``CLIP_*`` zero-shot CLIP (WIT), ``CLIP_finetuned_*``
    fine-tuned on ImageNet-1k (parent: the zero-shot model of the same architecture), every
    other model ``imagenet`` (ImageNet classifiers of all kinds; the file has no metadata to
    split them by)."""
    df = pd.read_csv(fetch(COOD))
    if confidence not in set(df["confidence function"]):
        raise ValueError(f"confidence={confidence!r}; C-OOD reports "
                         f"{sorted(set(df['confidence function']))}.")
    d = df[df["confidence function"] == confidence]
    wide = d.pivot_table(index="model name", columns="severity level", values="ood-auroc")
    wide.columns = [f"severity {int(c)}" for c in wide.columns]
    out = wide.assign(auroc=wide.mean(axis=1)).reset_index().rename(columns={"model name": "model"})
    acc = d.drop_duplicates("model name").set_index("model name")["id-acc"]
    out["id_acc"] = out["model"].map(acc)
    ft = out["model"].str.startswith(_COOD_CLIP + "finetuned_")
    zs = out["model"].str.startswith(_COOD_CLIP) & ~ft
    out["group"] = np.where(zs, CLIP_ZEROSHOT, np.where(ft, CLIP_FT_DIRECT, COOD_IMAGENET))
    out["source"] = np.where(zs | ft, "WIT", "ImageNet")
    out["parent"] = np.where(ft, _COOD_CLIP + out["model"].str.removeprefix(_COOD_CLIP + "finetuned_"),
                             None)
    return out


# --------------------------------------------------------------------------- the chapter's tables

#: the columns of :func:`group_means`
GROUP_MEAN_COLUMNS = ("auroc", "fpr95", "aupr_in", "aupr_out", "id_acc")


def group_means(avg: pd.DataFrame, values: Sequence[str] = GROUP_MEAN_COLUMNS) -> pd.DataFrame:
    """Mean over the models of each group of :func:`average_over_sets` (index group, sorted):
    detection metrics averaged over the OOD sets, and ID accuracy."""
    return avg.groupby("group")[list(values)].mean()


def score_gain(base: pd.DataFrame, other: pd.DataFrame, metric: str = "auroc") -> pd.Series:
    """Per model: the mean over OOD sets of ``metric`` with the ``other`` score minus with the
    ``base`` score (two :func:`detection_table` outputs of the same models and sets)."""
    return other.groupby("model")[metric].mean() - base.groupby("model")[metric].mean()


def cood_as_standard(cood: pd.DataFrame) -> pd.DataFrame:
    """:func:`cood_results` for the claims: its ImageNet classifiers (group
    :data:`COOD_IMAGENET`, every non-CLIP model of the file) count as the standard group, the
    comparison group of :func:`assess_ood_claims`."""
    return cood.assign(group=cood["group"].replace(COOD_IMAGENET, STANDARD))


# --------------------------------------------------------------------------- claims

#: "strongly": Pearson's r of ID accuracy with AUROC whose interval lies above this
STRONG = 0.5
#: ID accuracy at least this multiple of chance for a world verdict
MIN_ABOVE_CHANCE = 2.0
_CONTROL = ("summaries.accuracy_controlled_difference, the line fitted on the comparison "
            "group; bootstrap over models")

#: the paper's OOD-detection claims (section 5), home: this chapter
CLAIMS = {
    "ood-accuracy": claims.Claim(
        "ood-accuracy", "Within one training source, ID accuracy correlates strongly with OOD "
        "detection performance", section="5", direction="greater",
        compares="zero-shot CLIPs of one training source (every source with at least 4)",
        conditioned_on="one training source",
        test=f"Per training source, Pearson's r of ID accuracy with mean AUROC (Spearman shown "
             f"beside it), bootstrap over models, Bonferroni over the sources; 'strongly' = "
             f"r > {STRONG}: reproduced when every source's interval lies above {STRONG}, "
             f"contradicted when one lies below it, inconclusive otherwise.", home="ood"),
    "ood-source": claims.Claim(
        "ood-source", "The training source of CLIP affects its OOD detection", section="5",
        direction="differs", compares="zero-shot CLIPs of the two training sources with the "
                                      "most models (at least 3 each)",
        conditioned_on="equal ID accuracy",
        test=f"Mean AUROC of the first source's CLIPs minus the second source's line of AUROC "
             f"on ID accuracy ({_CONTROL}); two-sided: reproduced when the interval excludes "
             "0.", home="ood"),
    "ood-ft-worse": claims.Claim(
        "ood-ft-worse", "Some CLIP-FT models even achieve worse OOD detection performance than "
        "zero-shot CLIP models", section="5", direction="less",
        compares="each CLIP fine-tuned on ImageNet vs the zero-shot CLIPs",
        conditioned_on="equal ID accuracy (the zero-shot CLIPs' accuracy-AUROC line)",
        test=f"Per fine-tuned CLIP, its AUROC minus the zero-shot CLIPs' line at its ID "
             f"accuracy ({_CONTROL}), Bonferroni over the fine-tuned CLIPs; reproduced when at "
             "least one interval lies below 0, contradicted when every one lies above 0, "
             "inconclusive otherwise.", home="ood"),
    "ood-2stage": claims.Claim(
        "ood-2stage", "Additional fine-tuning on ImageNet-12K before ImageNet-1K improves OOD "
        "detection", section="5", direction="greater",
        compares="two-stage (12k/21k then 1k) vs direct (1k) fine-tuned CLIPs",
        conditioned_on="equal ID accuracy",
        test=f"Mean AUROC of the two-stage fine-tunes minus the direct fine-tunes' line of "
             f"AUROC on ID accuracy ({_CONTROL}); reproduced when the interval lies above 0, "
             "contradicted when below.", home="ood"),
}
#: the claims whose world contrast a setting of the world fixes (its training sources)
BUILT_INTO_WORLD = ("ood-source",)


def _data(part: pd.DataFrame, file: str | None) -> tuple:
    keys = tuple(dict.fromkeys(part["model"]))
    return ((file,) if file else ()) + keys


def world_premises(avg: pd.DataFrame, chance: float, metric: str = "auroc", n_boot: int = 1000,
                   seed: int = 0) -> list[claims.Premise]:
    """The premises of a world verdict, measured on the zoo's per-model averages: every group
    of the run has a median ID accuracy at least :data:`MIN_ABOVE_CHANCE` x ``chance``, and the
    zero-shot CLIPs detect above chance (mean ``metric`` interval above 0.5)."""
    med = avg.groupby("group")["id_acc"].median()
    low = med[med < MIN_ABOVE_CHANCE * chance]
    acc = claims.Premise(
        "models above chance", low.empty,
        "median ID accuracy per group " + ", ".join(f"{g} {100 * v:.0f}%" for g, v in med.items()),
        f"every group at least {MIN_ABOVE_CHANCE:g}x chance ({100 * chance:.0f}%)")
    m, lo, hi = bootstrap_mean(avg.loc[avg["group"] == CLIP_ZEROSHOT, metric], n_boot=n_boot,
                               seed=seed)
    det = claims.Premise(
        "detection above chance", bool(np.isfinite(lo) and lo > 0.5),
        f"zero-shot CLIPs' mean {metric} {m:.3f} [{lo:.3f}, {hi:.3f}]", "an interval above 0.5")
    return [acc, det]


def assess_ood_claims(avg: pd.DataFrame, source: str, metric: str = "auroc",
                      min_models: int = 4, n_boot: int = 1000, seed: int = 0, *,
                      file: str | None = None, premises: Sequence[claims.Premise] = (),
                      built_in: str = "", note: str = "") -> list[claims.Judgement]:
    """Judge the four OOD claims (:data:`CLAIMS`, each rule in its ``test``) on one evidence
    source from per-model averages (:func:`average_over_sets`, or a published table in its
    shape: model = checkpoint key, group, source = training source, id_acc, ``metric``).
    ``metric`` must be higher-is-better. ``file``: the published file read (recorded in each
    judgement's data); ``premises``: the world's (:func:`world_premises`), every judgement
    gated by them; ``built_in``: the world setting that fixes the source contrast (the source
    claim is then built in); ``note``: appended to the fine-tuned claim's effect."""
    c = CLAIMS
    out = []
    d = avg.dropna(subset=[metric, "id_acc"])
    clip = d[d["group"] == CLIP_ZEROSHOT]
    # accuracy: every source strongly correlated
    srcs = [s for s, p in clip.groupby("source", sort=True)
            if len(p) >= min_models and p["id_acc"].nunique() >= 3]
    if not srcs:
        out.append(claims.not_testable(c["ood-accuracy"], source, f"no training source with at "
                                       f"least {min_models} zero-shot CLIPs", data=_data(clip, file)))
    else:
        level, corr = claims.bonferroni(len(srcs))
        items, ns, bits = [], [], []
        for s in srcs:
            p = clip[clip["source"] == s]
            r, lo, hi = metrics.correlation(p["id_acc"].to_numpy(), p[metric].to_numpy(),
                                            "pearson", n_boot=n_boot, seed=seed, level=level)
            rho, rlo, rhi = metrics.correlation(p["id_acc"].to_numpy(), p[metric].to_numpy(),
                                                "spearman", n_boot=n_boot, seed=seed, level=level)
            items.append({"item": s, "estimate": r, "lo": lo, "hi": hi})
            ns.append(len(p))
            bits.append(f"{s}: r {r:+.2f} [{lo:+.2f}, {hi:+.2f}], Spearman {rho:+.2f} "
                        f"[{rlo:+.2f}, {rhi:+.2f}] ({len(p)} models)")
        kw = dict(effect=f"Pearson r of ID accuracy with mean {metric} per training source "
                         f"(threshold {STRONG}); " + "; ".join(bits),
                  scale="Pearson r", unit=claims.MODELS, n=tuple(ns), sides=tuple(srcs),
                  data=_data(clip[clip["source"].isin(srcs)], file), threshold=STRONG)
        if len(srcs) == 1:
            r = items[0]
            out.append(claims.interval(c["ood-accuracy"], source, r["estimate"], r["lo"], r["hi"],
                                       **kw))
        else:
            kw["scale"] = ""
            out.append(claims.count(c["ood-accuracy"], source, pd.DataFrame(items), len(srcs),
                                    correction=corr, **kw))
    # source: at equal accuracy
    counts = clip["source"].value_counts()
    counts = counts[counts >= 3]
    if len(counts) < 2:
        out.append(claims.not_testable(c["ood-source"], source,
                                       "needs two CLIP training sources with at least 3 models "
                                       f"each; found {clip['source'].value_counts().to_dict()}",
                                       data=_data(clip, file)))
    else:
        a, b = sorted(counts.index[:2])
        part = clip[clip["source"].isin([a, b])].assign(
            group=lambda t: np.where(t["source"] == a, "A", "B"))
        est, lo, hi = accuracy_controlled_difference(part, "id_acc", metric, "A", ["B"],
                                                     n_boot=n_boot, seed=seed)
        j = claims.interval(c["ood-source"], source, est, lo, hi,
                            effect=f"mean {metric} of {a} CLIPs minus the {b} CLIPs' line at "
                                   "equal ID accuracy", scale=metric.upper(),
                            unit=claims.MODELS, n=(int(counts[a]), int(counts[b])),
                            sides=(a, b), data=_data(part, file))
        out.append(j)
    # fine-tuned worse than zero-shot at equal accuracy
    ft = d[d["group"].isin(FT_GROUPS)]
    if ft.empty or len(clip) < 3:
        out.append(claims.not_testable(
            c["ood-ft-worse"], source, f"needs fine-tuned CLIPs and at least 3 zero-shot CLIPs "
            f"for the accuracy-AUROC line; found {len(ft)} and {len(clip)}",
            data=_data(pd.concat([clip, ft]), file)))
    else:
        level, corr = claims.bonferroni(len(ft))
        items = []
        for r in ft.itertuples():
            part = pd.concat([clip, ft[ft["model"] == r.model]]).assign(
                group=lambda t, m=r.model: np.where(t["model"] == m, "FT", "ZS"))
            est, lo, hi = accuracy_controlled_difference(part, "id_acc", metric, "FT", ["ZS"],
                                                         n_boot=n_boot, seed=seed, level=level)
            items.append({"item": str(r.model), "estimate": est, "lo": lo, "hi": hi})
        items = pd.DataFrame(items)
        kw = dict(effect=f"{metric} of each fine-tuned CLIP minus the zero-shot CLIPs' line at "
                         f"its ID accuracy" + (f"; {note}" if note else ""),
                  scale="", unit=claims.MODELS, n=(len(ft), len(clip)),
                  sides=("fine-tuned CLIPs", "zero-shot CLIPs"),
                  data=_data(pd.concat([clip, ft]), file))
        if len(ft) == 1:
            r = items.iloc[0]
            kw["scale"] = metric.upper()
            j = claims.interval(c["ood-ft-worse"], source, r.estimate, r.lo, r.hi, **kw)
        else:
            j = claims.count(c["ood-ft-worse"], source, items, 1, correction=corr, **kw)
            per = "; ".join(f"{r.item} {r.estimate:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}]"
                            for r in items.itertuples())
            j = replace(j, reason=f"{j.reason}. Per model ({100 * level:.2f}% intervals): {per}")
        out.append(j)
    # two-stage vs direct at equal accuracy
    two = d[d["group"] == CLIP_FT_2STAGE]
    one = d[d["group"] == CLIP_FT_DIRECT]
    if two.empty or len(one) < 3:
        ts = two_stage_pairs(d, metric)
        raw = ("; raw two-stage minus direct of the same parent: "
               + ", ".join(f"{v:+.3f}" for v in ts["diff"]) if len(ts) else "")
        out.append(claims.not_testable(
            c["ood-2stage"], source, f"needs two-stage fine-tunes and at least 3 direct ones for "
            f"the line at equal accuracy; found {len(two)} and {len(one)}" + raw,
            data=_data(pd.concat([two, one]), file)))
    else:
        part = pd.concat([two, one])
        est, lo, hi = accuracy_controlled_difference(part, "id_acc", metric, CLIP_FT_2STAGE,
                                                     [CLIP_FT_DIRECT], n_boot=n_boot, seed=seed)
        out.append(claims.interval(c["ood-2stage"], source, est, lo, hi,
                                   effect=f"mean {metric} of two-stage fine-tunes minus the "
                                          "direct fine-tunes' line at equal ID accuracy",
                                   scale=metric.upper(), unit=claims.MODELS,
                                   n=(len(two), len(one)), sides=("two-stage", "direct"),
                                   data=_data(part, file)))
    if premises:
        out = [claims.gated(j, premises) for j in out]
    if built_in:
        out = [claims.built_in(j.claim, source, built_in, j if j.verdict in claims.TESTED else None)
               if j.claim.claim_id in BUILT_INTO_WORLD and j.verdict in claims.TESTED
               else j for j in out]
    return out


def world_source_setting() -> str:
    """The world's source settings that fix its training-source contrast, in one line."""
    from clipsafety.synth import sources as S

    fields = ("p_misaligned", "p_class_word", "n_filler", "cue_strength", "caption_style",
              "style_probs")
    cfg = {"wit-like": S.WIT.to_dict(), "laion-like": S.LAION.to_dict()}
    return ("the world's training sources differ by construction (lib/clipsafety/synth/"
            "sources.py: " + "; ".join(f"{f}: " + ", ".join(f"{k} {v.get(f)}" for k, v in cfg.items())
                                       for f in fields) + ")")


# --------------------------------------------------------------------------- published, by checkpoint

def cood_avg(confidence: str = "softmax") -> pd.DataFrame:
    """C-OOD (:func:`clipsafety.published_models.cood_models`) in the shape of
    :func:`average_over_sets`: model = the checkpoint key, name = C-OOD's, group, source =
    training source, id_acc, auroc (mean over the 11 severities), parent, softmax_ok."""
    from clipsafety.published_models import cood_models

    c = cood_models(confidence)
    out = c.drop(columns=["source"]).rename(columns={"model": "name", "training_source": "source"}).assign(
        model=c["checkpoint"])
    ft = out["group"] == CLIP_FT_DIRECT
    out["parent"] = np.where(ft, "openai/" + out["arch"], None)
    return out[["model", "name", "group", "source", "arch", "id_acc", "auroc", "softmax_ok",
                "parent"]]


def ninco_scores(per: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every NINCO score of every model (:func:`clipsafety.published_models.ninco_per_model`):
    mean AUROC over NINCO's 64 OOD classes, wide: one row per checkpoint (group, ID accuracy),
    one column per score, and ``best score``."""
    from clipsafety.published_models import ninco_per_model

    per = ninco_per_model() if per is None else per
    wide = per.pivot_table(index=["checkpoint", "group", "id_acc"], columns="score",
                           values="auroc").reset_index()
    scores = [c for c in wide.columns if c not in ("checkpoint", "group", "id_acc")]
    wide["best score"] = wide[scores].idxmax(axis=1)
    return wide.sort_values(["group", "id_acc"]).reset_index(drop=True)


def score_ranks(wide: pd.DataFrame) -> pd.DataFrame:
    """Per NINCO score (columns of :func:`ninco_scores`): models scored, mean AUROC, how often
    it is a model's best score, and its Spearman correlation with MSP over the models both
    have (does the score rank the models as MSP does?)."""
    scores = [c for c in wide.columns if c not in ("checkpoint", "group", "id_acc", "best score")]
    rows = []
    for s in scores:
        v = wide[s].dropna()
        if s == "MSP" or "MSP" not in wide:
            rho = 1.0 if s == "MSP" else np.nan
        else:
            both = wide[[s, "MSP"]].dropna()
            rho = both[s].rank().corr(both["MSP"].rank()) if len(both) >= 3 else np.nan
        rows.append({"score": s, "models": len(v), "mean AUROC": float(v.mean()),
                     "best for": int((wide["best score"] == s).sum()),
                     "rank correlation with MSP": rho})
    return pd.DataFrame(rows).sort_values("mean AUROC", ascending=False).reset_index(drop=True)


def ninco_avg(score_clip: str = "mcm-clip", score_other: str = "MSP",
              per: pd.DataFrame | None = None) -> pd.DataFrame:
    """NINCO in the shape of :func:`average_over_sets`: one row per checkpoint (model), the
    zero-shot CLIPs' ``score_clip`` and every other model's ``score_other``: group, source
    (training source), id_acc, auroc, parent (the fine-tuned CLIPs' zero-shot OpenAI parent
    where NINCO has it)."""
    from clipsafety.published_models import ninco_per_model

    per = ninco_per_model() if per is None else per
    zs = per["group"] == CLIP_ZEROSHOT
    d = per[(zs & (per["score"] == score_clip)) | (~zs & (per["score"] == score_other))]
    out = d.drop(columns=["source"], errors="ignore").rename(
        columns={"model": "name", "training_source": "source"}).assign(
        model=d["checkpoint"])
    out["parent"] = np.where(out["model"].str.contains("openai_ft"), "openai/ViT-B-16",
                             np.where(out["model"].str.contains("laion2b_ft"),
                                      "laion2b (not in NINCO)", None))
    return out[["model", "name", "group", "source", "score", "id_acc", "auroc", "parent"]]

# --------------------------------------------------------------------------------------------
# the chapter's parameters and exercises (collected by the book runner and the pages)

ABOUT = "does CLIP notice inputs that belong to none of its classes (MCM and other scores; NINCO, C-OOD)?"

PARAMETER_RULES = {
    **_R.LIVE, "id_dataset": _R.dataset, "ood_sets": _R.datasets,
    "clip_score": _R.choice("mcm", "msp", "maxlogit", "energy", "neglabel"),
    "other_score": _R.choice("msp", "maxlogit", "energy"),
    "temperature": _R.number_range(1e-3, 1e3, "the softmax temperature of MCM and MSP, "
                                   "positive; 1 is the papers' choice"),
    "fpr_convention": _R.choice("id-recall", "ood-recall"),
    "aupr_method": _R.choice("step", "trapezoid"), "negative_labels": _R.choice(True, False),
    "published": _R.subset(("ninco", "cood"), "published result(s)"),
}

#: what the OOD exercises compare: each group's mean AUROC and FPR at 95% over the OOD sets,
#: and each claim's verdict
_OOD_MEASURES = _R.group_means("averages", {"auroc": "AUROC (mean over the OOD sets)",
                                            "fpr95": "FPR at 95% (fraction, mean over the OOD sets)"})

EXERCISES = [
    Exercise("Score zero-shot CLIP with the energy score instead of MCM.",
             {"clip_score": "energy"},
             "whether the OOD claims depend on the score", _OOD_MEASURES),
    Exercise("Sharpen MCM's softmax.",
             {"temperature": 0.01},
             "AUROC and FPR at 95% of zero-shot CLIP against the default temperature",
             _OOD_MEASURES),
    Exercise("Count FPR the way OpenOOD does.",
             {"fpr_convention": "ood-recall"},
             "which numbers change with the convention, and which verdicts do not",
             _OOD_MEASURES),
]
