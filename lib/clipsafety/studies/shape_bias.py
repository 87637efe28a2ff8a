"""Study of the shape-bias chapter (paper section 4.2): shape vs texture decisions on
cue-conflict stimuli.

Tables: shape bias per observer from published raw decisions (:func:`published_shape_decisions`,
:func:`shape_bias_by_observer`, :func:`human_band`) and per model from prediction records
(:func:`shape_bias_of_record`, :func:`shape_table`). Claims: the paper's two shape claims
(:data:`CLAIMS`) and their rules (:func:`assess_shape_claims`). The arithmetic (the 16 classes,
stimulus names, the 1000 -> 16 mapping, shape bias itself) is :mod:`clipsafety.shape`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from clipsafety import claims as C
from clipsafety import metrics
from clipsafety import rules as _R
from clipsafety.claims import Claim
from clipsafety.external import fetch, keys
from clipsafety.groups import (
    CLIP_ZEROSHOT,
    FT_GROUPS,
    HUMAN,
    IMAGENET_GROUPS,
    MORE_DATA,
    OTHER_ROBUST,
    STANDARD,
    group_label,
    source_side,
)
from clipsafety.models import model_metadata
from clipsafety.rules import Exercise
from clipsafety.shape import (
    CUE_CONFLICT_CLASSES,
    accuracy_by_condition,
    decisions_from_probs,
    error_consistency_table,
    parse_decision_file_name,
    read_decisions,
    shape_bias_intervals,
    shape_bias_table,
    shape_counts,
    stimulus_key,
)
from clipsafety.summaries import (
    accuracy_controlled_difference,
    bootstrap_difference,
    bootstrap_mean,
    group_summary,
    leave_one_out,
    paired_changes,
)

__all__ = ["CLAIMS", "COLOUR_ID_CONDITION", "HOME", "MVH_NETWORKS", "MVH_SOURCES",
           "NETWORK_COLUMNS", "OTHER_GROUPS", "PUBLISHED_SHAPE_FILES", "SAME_BACKBONE",
           "SHOWN_COLUMNS", "SOURCE_PAIR", "assess_published_shape", "assess_shape_claims",
           "clip_agreement", "cue_strength_of", "cue_strength_setting", "direct_reading",
           "group_differences", "group_shape_summary", "human_band", "judge_shape_clip",
           "judge_shape_ft", "judge_shape_source", "mvh_decisions", "mvh_other_datasets",
           "network_kinds", "network_table", "observers_with_id_accuracy", "parent_changes",
           "published_clip_table", "published_networks", "published_pooled_shape",
           "published_shape_decisions", "published_shape_models", "published_shape_trials", "published_shape_observers",
           "shape_bias_by_observer", "shape_bias_of_record", "shape_mechanism", "shape_overview",
           "shape_premises", "shape_reading", "shape_table", "stimulus_contrast",
           "with_human_mean", "with_id_accuracy", "with_shape_only_accuracy"]


# --------------------------------------------------------------------------- published decisions

TEXTURE_VS_SHAPE = "rgeirhos/texture-vs-shape/raw-data/"
#: the published raw-decision files: (registry path under raw-data/, observer, group, note)
PUBLISHED_SHAPE_FILES = [
    *[(f"style-transfer-512-nomask-experiment/style-transfer-512-nomask-experiment_subject-"
       f"{i:02d}_session_1.csv", f"subject-{i:02d}", "human", "human observer")
      for i in range(1, 11)],
    ("style-transfer-512-nomask-experiment/style-transfer-512-nomask-experiment_alexnet_session_1.csv",
     "AlexNet (caffe)", "standard", "ImageNet-trained CNN, Geirhos et al. 2019"),
    ("style-transfer-512-nomask-experiment/style-transfer-512-nomask-experiment_googlenet_session_1.csv",
     "GoogLeNet", "standard", "ImageNet-trained CNN, Geirhos et al. 2019"),
    ("style-transfer-512-nomask-experiment/style-transfer-512-nomask-experiment_vgg_session_1.csv",
     "VGG-19 (caffe)", "standard", "ImageNet-trained CNN, Geirhos et al. 2019"),
    ("style-transfer-512-nomask-experiment-trained-CNNs/style-transfer-512-nomask-experiment_alexnet_session-1.csv",
     "AlexNet (torchvision)", "standard", "ImageNet-trained CNN, torchvision weights"),
    ("style-transfer-512-nomask-experiment-trained-CNNs/style-transfer-512-nomask-experiment_vgg16_session-1.csv",
     "VGG-16 (torchvision)", "standard", "ImageNet-trained CNN, torchvision weights"),
]


def published_shape_decisions() -> pd.DataFrame:
    """The texture-vs-shape raw decisions of humans and CNNs as one table in the published
    format (``subj, session, trial, rt, object_response, category, condition, imagename``)
    plus ``observer``, ``group`` (``human`` / ``standard``) and ``note``.

    Raises :class:`clipsafety.external.ExternalUnavailable` when a file cannot be had.
    """
    frames = []
    for path, observer, group, note in PUBLISHED_SHAPE_FILES:
        raw = read_decisions(fetch(TEXTURE_VS_SHAPE + path), observer=observer)
        raw["group"], raw["note"] = group, note
        frames.append(raw)
    return pd.concat(frames, ignore_index=True)


def shape_bias_by_observer(decisions: pd.DataFrame,
                           by: Sequence[str] = ("observer", "group", "note")) -> pd.DataFrame:
    """Shape bias per observer (:func:`shape.shape_bias_table`): ``by`` columns, shape_hits,
    texture_hits, trials (same-class trials dropped), shape_bias."""
    return shape_bias_table(decisions, by=list(by)).reset_index()


def human_band(observers: pd.DataFrame, value: str = "shape_bias") -> tuple[float, float, float]:
    """``(min, mean, max)`` of ``value`` over the human observers (``group == "human"``)."""
    h = observers.loc[observers["group"] == "human", value].dropna()
    if h.empty:
        return (np.nan, np.nan, np.nan)
    return float(h.min()), float(h.mean()), float(h.max())


def shape_reading(record) -> str:
    """How a cue-conflict record's logits become decisions, from what the record states: its
    annotation kind must be ``"cue-conflict"``; logits in the ``imagenet-1k`` label space ->
    ``"1000->16 mapping"``; in the ``cue-conflict-16`` space (a direct zero-shot head) ->
    ``"direct 16-way head"``; otherwise ``"native label space"`` (the synthetic world, whose
    shape and texture classes are classes of the model's own label space)."""
    if record.annotations != "cue-conflict":
        raise ValueError(
            f"record of {record.manifest.get('model_id', '?')!r} on "
            f"{record.manifest.get('dataset_id', '?')!r} is not a cue-conflict record "
            f"(annotation kind {record.annotations!r}); expected the cue-conflict stimuli "
            "(cue-conflict, synth:cue-conflict).")
    if record.label_space == "imagenet-1k":
        return "1000->16 mapping"
    if record.label_space == "cue-conflict-16":
        return "direct 16-way head"
    return "native label space"


def shape_bias_of_record(record) -> dict:
    """Shape bias of one cue-conflict prediction record, with its reading (:func:`shape_reading`).

    - ImageNet-1k logits: softmax over all 1000 classes (:func:`metrics.softmax`), then the
      model-vs-human 1000->16 mapping (:func:`shape.decisions_from_probs`).
    - 16 logits in :data:`shape.CUE_CONFLICT_CLASSES` order (a direct zero-shot head): argmax.
    - otherwise (synthetic world): argmax over the record's label subset; shape = target,
      texture = ``meta["texture_class"]`` / ``meta["texture_target"]`` (class index) or
      ``meta["texture"]`` (class index, or class name looked up in ``manifest["classes"]``).

    Returns ``{"shape_bias", "shape_hits", "texture_hits", "trials", "reading"}``.
    """
    reading = shape_reading(record)
    names = [str(i).replace("\\", "/").rsplit("/", 1)[-1] for i in np.asarray(record.ids)]
    if reading != "native label space":
        if reading == "1000->16 mapping":
            dec = decisions_from_probs(metrics.softmax(record.logits), names)
        else:
            idx = np.asarray(record.logits).argmax(1)
            dec = pd.DataFrame({"imagename": names,
                                "object_response": [CUE_CONFLICT_CLASSES[i] for i in idx]})
        row = shape_bias_table(dec.assign(_all=0), by="_all").iloc[0]
        return {"shape_bias": float(row["shape_bias"]), "shape_hits": int(row["shape_hits"]),
                "texture_hits": int(row["texture_hits"]), "trials": int(row["trials"]),
                "cue_share": float(row["cue_share"]), "reading": reading}
    L, _ = metrics.prepare(record.logits, None, record.label_subset)
    pred = L.argmax(1)
    if record.label_subset is not None:
        pred = np.asarray(record.label_subset)[pred]
    if record.meta is None or "texture" not in record.meta.columns:
        raise ValueError(
            f"record of {record.manifest.get('model_id', '?')!r} is not a cue-conflict record: "
            "expected cue-conflict stimulus ids, or meta with a 'texture' column (synth:cue-conflict).")
    meta = record.meta
    idx_col = next((c for c in ("texture_class", "texture_target") if c in meta.columns), None)
    texture = (meta[idx_col].to_numpy().astype(np.int64) if idx_col is not None else
               _as_index(meta["texture"], record.manifest.get("classes")))
    return {**shape_counts(pred, np.asarray(record.targets), texture), "reading": reading}


def _as_index(col, classes) -> np.ndarray:
    v = np.asarray(col)
    if v.dtype.kind in "iu":
        return v.astype(np.int64)
    if classes is None:
        raise ValueError("texture classes are names but the record's manifest has no 'classes' "
                         "to map them to indices.")
    pos = {c: i for i, c in enumerate(classes)}
    return np.array([pos.get(str(x), -1) for x in v], dtype=np.int64)


def shape_table(records: dict) -> pd.DataFrame:
    """One row per model: shape bias and hit counts (:func:`shape_bias_of_record`), with the
    catalog metadata joined."""
    rows = [{"model": mid, **shape_bias_of_record(rec)} for mid, rec in records.items()]
    df = pd.DataFrame(rows, columns=["model", "shape_bias", "shape_hits", "texture_hits", "trials",
                                     "cue_share", "reading"])
    return df.merge(model_metadata(list(records)), on="model", how="left")


# --------------------------------------------------------------------------- claims

HOME = "shape_bias"
#: the groups zero-shot CLIP is compared with ("the other three groups"): display name -> group ids
OTHER_GROUPS = {"standard ImageNet models": (STANDARD,), "more-data models": (MORE_DATA,),
                "fine-tuned CLIPs": tuple(FT_GROUPS)}
#: the paper's shape-bias claims (section 4.2) and the book's reading of 4.1's shape-factor
#: claim on cue-conflict stimuli (an extension, never tallied with the paper's)
CLAIMS = {
    "shape-clip": Claim(
        "shape-clip", "CLIP models are more likely to make predictions based on shape compared "
        "to the other three groups", section="4.2", kind=C.PAPER, direction="greater",
        compares="zero-shot CLIP vs each of: standard ImageNet models, models trained on more "
                 "data, fine-tuned CLIPs",
        test="per group present, zero-shot CLIP's mean shape bias minus the group's (percentile "
             "bootstrap over models, intervals Bonferroni-corrected over the groups present); "
             "reproduced when CLIP lies above every group, contradicted when it lies below any",
        home=HOME),
    "shape-ft": Claim(
        "shape-ft", "Shape bias in CLIP weakens after fine-tuning on ImageNet", section="4.2",
        kind=C.PAPER, direction="less",
        compares="CLIP fine-tuned on ImageNet vs its own zero-shot parent",
        conditioned_on="the same backbone (each fine-tuned model against its own parent)",
        test="mean change in shape bias, fine-tuned minus its zero-shot parent: averaged per "
             "parent and resampled over parents where parents are known (the zoo); on published "
             "data the one same-backbone comparison (OpenAI ViT-L/14 zero-shot against its "
             "ImageNet-1k and 12k-then-1k fine-tuned twins), resampled over stimuli; reproduced "
             "when the interval lies below zero",
        home=HOME),
    "shape-source": Claim(
        "shape-source", "CLIPs trained on LAION are more shape-biased than CLIPs trained on WIT "
        "(the book's reading of 4.1's shape-factor claim on cue-conflict stimuli)",
        section="4.1", kind=C.EXTENSION, direction="greater",
        compares="zero-shot CLIPs trained on LAION vs on WIT",
        conditioned_on="equal ID accuracy where accuracies are known (the WIT CLIPs' line, the "
                       "book's one accuracy control); on published data the same architecture",
        test="LAION CLIPs' mean shape bias minus the WIT CLIPs' line at their ID accuracy "
             "(summaries.accuracy_controlled_difference, bootstrap over models); on published "
             "data one checkpoint per side (open_clip ViT-B/16 on LAION-400M against OpenAI's "
             "ViT-B/16), resampled over stimuli; reproduced when the interval lies above zero",
        home=HOME),
}


def group_differences(shape: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95) -> pd.DataFrame:
    """Zero-shot CLIP's mean shape bias minus each group of :data:`OTHER_GROUPS` present in
    ``shape`` (one row per model: group, shape_bias), percentile bootstrap over models at
    ``level``. Columns item, estimate, lo, hi, n_clip, n_other."""
    d = shape.dropna(subset=["shape_bias"])
    clip = d.loc[d["group"] == CLIP_ZEROSHOT, "shape_bias"]
    rows = []
    for name, groups in OTHER_GROUPS.items():
        other = d.loc[d["group"].isin(groups), "shape_bias"]
        if other.empty:
            continue
        est, lo, hi = bootstrap_difference(clip, other, n_boot=n_boot, seed=seed, level=level)
        rows.append({"item": name, "estimate": est, "lo": lo, "hi": hi,
                     "n_clip": int(clip.size), "n_other": int(other.size)})
    return pd.DataFrame(rows, columns=["item", "estimate", "lo", "hi", "n_clip", "n_other"])


def judge_shape_clip(shape: pd.DataFrame, source: str, n_boot: int = 1000, seed: int = 0,
                     data=()) -> C.Judgement:
    """*shape-clip* on one source: :func:`group_differences` at the Bonferroni level over the
    groups present, judged by :func:`claims.count` (every group present must be reproduced)."""
    c = CLAIMS["shape-clip"]
    d = shape.dropna(subset=["shape_bias"])
    n_clip = int((d["group"] == CLIP_ZEROSHOT).sum())
    present = [k for k, g in OTHER_GROUPS.items() if d["group"].isin(g).any()]
    data = tuple(data) or tuple(sorted(map(str, d["model"])))
    if not n_clip or not present:
        return C.not_testable(c, source, f"needs zero-shot CLIP and another group; found {n_clip} "
                              f"zero-shot CLIPs and {len(present)} other groups", data=data)
    level, corr = C.bonferroni(len(present))
    items = group_differences(d, n_boot=n_boot, seed=seed, level=level)
    if not np.isfinite(items["lo"]).all():
        return C.not_testable(c, source, "an interval needs at least two models per side; found "
                              + ", ".join(f"{r.item} {r.n_other}" for r in items.itertuples())
                              + f" against {n_clip} zero-shot CLIPs", data=data)
    if len(items) == 1:
        r = items.iloc[0]
        return C.interval(c, source, r.estimate, r.lo, r.hi,
                          effect=f"mean shape bias, zero-shot CLIP minus {r['item']}",
                          scale="shape bias", unit=C.MODELS, n=(n_clip, int(r.n_other)),
                          sides=("zero-shot CLIP", r["item"]), data=data)
    j = C.count(c, source, items, len(items),
                effect="groups (of those present) below zero-shot CLIP's mean shape bias: "
                       + "; ".join(f"{r.item} {r.estimate:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}]"
                                   for r in items.itertuples()),
                scale=f"of {len(items)}", unit=C.MODELS,
                n=(n_clip, *items["n_other"].astype(int)),
                sides=("zero-shot CLIP", *items["item"]), correction=corr, data=data)
    return j


def parent_changes(shape: pd.DataFrame) -> pd.DataFrame:
    """Paired changes (:func:`summaries.paired_changes`) averaged per parent: columns parent,
    children, change (mean of fine-tuned minus parent)."""
    pairs = paired_changes(shape)
    if pairs.empty:
        return pd.DataFrame(columns=["parent", "children", "change"])
    pairs = pairs.assign(change=pairs["after"] - pairs["before"])
    return pairs.groupby("model_before").agg(children=("model_after", "size"),
                                             change=("change", "mean")).reset_index().rename(
        columns={"model_before": "parent"})


def judge_shape_ft(shape: pd.DataFrame, source: str, n_boot: int = 1000, seed: int = 0,
                   data=()) -> C.Judgement:
    """*shape-ft* where parents are known: the mean per-parent change and its bootstrap interval
    over parents (:func:`parent_changes`)."""
    c = CLAIMS["shape-ft"]
    per = parent_changes(shape.dropna(subset=["shape_bias"]))
    data = tuple(data) or tuple(sorted(map(str, shape["model"])))
    if per.empty:
        n_ft = int(shape["group"].isin(FT_GROUPS).sum())
        return C.not_testable(c, source, f"needs fine-tuned CLIPs with their zero-shot parent; "
                              f"found {n_ft} fine-tuned and no parent among the models", data=data)
    est, lo, hi = bootstrap_mean(per["change"], n_boot=n_boot, seed=seed)
    return C.interval(c, source, est, lo, hi,
                      effect=f"mean change in shape bias, fine-tuned minus its own zero-shot "
                             f"parent ({int(per['children'].sum())} fine-tuned models averaged "
                             "per parent)", scale="shape bias", unit=C.PARENTS,
                      n=(len(per), int(per["children"].sum())),
                      sides=("zero-shot parents", "fine-tuned children"), data=data)


def judge_shape_source(shape: pd.DataFrame, source: str, x: str = "id_acc", n_boot: int = 1000,
                       seed: int = 0, data=()) -> C.Judgement:
    """*shape-source* over models: LAION CLIPs' mean shape bias minus the WIT CLIPs' line at
    equal ``x`` (:func:`summaries.accuracy_controlled_difference`)."""
    c = CLAIMS["shape-source"]
    d = shape[(shape["group"] == CLIP_ZEROSHOT)].dropna(subset=["shape_bias"]).copy()
    d["group"] = d["source"].map(source_side) if "source" in d else None
    d = d[d["group"].notna()]
    n_l, n_w = int((d["group"] == "LAION").sum()), int((d["group"] == "WIT").sum())
    data = tuple(data) or tuple(sorted(map(str, d["model"])))
    if x not in d or n_l < 2 or n_w < 3:
        return C.not_testable(c, source, f"needs LAION CLIPs (at least 2) and WIT CLIPs (at least "
                              f"3, for the line) with {x}; found {n_l} and {n_w}", data=data)
    est, lo, hi = accuracy_controlled_difference(d, x, "shape_bias", "LAION", ["WIT"],
                                                 n_boot=n_boot, seed=seed)
    return C.interval(c, source, est, lo, hi,
                      effect=f"mean shape bias of the LAION CLIPs minus the WIT CLIPs' line at "
                             f"equal {x}", scale="shape bias", unit=C.MODELS, n=(n_l, n_w),
                      sides=("LAION CLIPs", "WIT CLIPs"), data=data)


# --------------------------------------------------------------------------- world premises

#: zoo ``source`` names -> the :data:`clipsafety.synth.sources.SOURCES` key of their training data
ZOO_SOURCE_CONFIG = {"labelled": "labelled", "wit-like": "wit", "laion-like": "laion",
                     "wit-narrow": "narrow", "raw": "raw"}


def cue_strength_of(source: str) -> float:
    """The world's ``cue_strength`` (chance that an object wears its category's characteristic
    colour and pattern, :class:`clipsafety.synth.sources.WorldConfig`) of a zoo training source."""
    from clipsafety.synth import sources as S

    key = ZOO_SOURCE_CONFIG.get(str(source))
    return float(S.SOURCES[key].cue_strength) if key in S.SOURCES else np.nan


def shape_premises(shape: pd.DataFrame, groups: dict, n_classes: int = 10,
                   times_chance: float = 2.0) -> list:
    """The world's premises for a shape claim, measured per compared side (``groups``: name ->
    boolean mask over ``shape``'s rows): the *cue share* (answers naming the shape or the
    texture class at all; chance ``2 / n_classes``) and the *shape-learning check* (accuracy on
    shape-only stimuli, column ``shape_only_acc``: the synthetic world's Stylized-like set, whose
    colours and patterns are never the category's; chance ``1 / n_classes``), each side's mean
    at least ``times_chance`` times chance."""
    cue_ch, acc_ch = 2 / n_classes, 1 / n_classes
    cue = {k: float(shape.loc[m, "cue_share"].mean()) for k, m in groups.items()}
    prem = [C.Premise("cue share", all(v >= times_chance * cue_ch for v in cue.values()),
                      "mean share of answers naming the shape or the texture class: " + ", ".join(
                          f"{k} {v:.0%}" for k, v in cue.items()),
                      f"at least {times_chance:g}x chance ({cue_ch:.0%}) on every side")]
    if "shape_only_acc" in shape:
        acc = {k: float(shape.loc[m, "shape_only_acc"].mean()) for k, m in groups.items()}
        prem.append(C.Premise(
            "shape learning", all(v >= times_chance * acc_ch for v in acc.values()),
            "mean accuracy on shape-only stimuli (characteristic colour and pattern removed): "
            + ", ".join(f"{k} {v:.0%}" for k, v in acc.items()),
            f"at least {times_chance:g}x chance ({acc_ch:.0%}) on every side"))
    else:
        prem.append(C.Premise("shape learning", False, "no accuracy on shape-only stimuli measured",
                              "the zoo's accuracy on synth:shift-stylized"))
    return prem


def cue_strength_setting(a_sources, b_sources, a: str, b: str) -> tuple[bool, str]:
    """Whether the world's ``cue_strength`` setting differs between the training sources of two
    sides (:func:`cue_strength_of`; fixed when most of side ``a``'s models saw a different cue
    strength than every source of side ``b``), and the setting in words."""
    ca = pd.Series([cue_strength_of(s) for s in a_sources]).dropna()
    cb = pd.Series([cue_strength_of(s) for s in b_sources]).dropna()
    if ca.empty or cb.empty:
        return False, ""
    fixed = bool((~ca.isin(set(cb))).mean() > 0.5)
    return fixed, ("the world's cue_strength setting (synth.sources.WorldConfig: chance that an "
                   "object wears its category's colour and pattern) is "
                   + "/".join(f"{v:g}" for v in sorted(set(ca))) + f" in the training data of {a} "
                   f"and " + "/".join(f"{v:g}" for v in sorted(set(cb))) + f" in that of {b}")


def assess_shape_claims(shape: pd.DataFrame, source: str, n_boot: int = 1000, seed: int = 0,
                        world: bool = False, data=()) -> list:
    """The shape claims judged on one live source (one row per model: model, group, source,
    shape_bias, cue_share, ``parent`` for fine-tuned models, ``id_acc``, and on the world
    ``shape_only_acc``). On the synthetic world (``world=True``) each judgement is gated by its
    premises (:func:`shape_premises`) and a contrast that the world's cue strength fixes is
    ``built in`` (:func:`cue_strength_setting`), the measured effect kept."""
    d = shape.dropna(subset=["shape_bias"])
    out = [judge_shape_clip(d, source, n_boot, seed, data),
           judge_shape_ft(d, source, n_boot, seed, data),
           judge_shape_source(d, source, n_boot=n_boot, seed=seed, data=data)]
    if not world:
        return out
    is_clip = d["group"] == CLIP_ZEROSHOT
    ft = d["group"].isin(FT_GROUPS)
    imnet = d["group"].isin([STANDARD, MORE_DATA])
    side = d["source"].map(source_side) if "source" in d else pd.Series(None, index=d.index)
    sides = {
        "shape-clip": ({"zero-shot CLIP": is_clip, "ImageNet models": imnet, "fine-tuned CLIPs": ft},
                       (d.loc[is_clip, "source"],
                        [*d.loc[imnet, "source"], *(["labelled"] * int(ft.sum()))]),
                       ("zero-shot CLIPs", "the ImageNet models and the fine-tuning set")),
        "shape-ft": ({"zero-shot CLIP": is_clip, "fine-tuned CLIPs": ft},
                     (d.loc[is_clip, "source"], ["labelled"]),
                     ("zero-shot CLIPs", "fine-tuning (the labelled set)")),
        "shape-source": ({"LAION CLIPs": is_clip & (side == "LAION"),
                          "WIT CLIPs": is_clip & (side == "WIT")},
                         (d.loc[is_clip & (side == "LAION"), "source"],
                          d.loc[is_clip & (side == "WIT"), "source"]),
                         ("the LAION-like CLIPs", "the WIT-like CLIPs")),
    }
    res = []
    for j in out:
        groups, (sa, sb), (na, nb) = sides[j.claim.claim_id]
        groups = {k: m for k, m in groups.items() if m.any()}
        g = C.gated(j, shape_premises(d, groups)) if groups else j
        fixed, setting = cue_strength_setting(list(sa), list(sb), na, nb)
        if g.verdict in C.TESTED and fixed:
            g = C.built_in(j.claim, source, setting, g)
        res.append(g)
    return res


# --------------------------------------------------------------------------- published evidence, each checkpoint once

#: the published cue-conflict files the pooled evidence reads (besides the checkpoints)
PUBLISHED_SHAPE_DATA = ("TizianThieringer/model-vs-human/raw-data/cue-conflict/",
                        "kayburns/model-vs-human/raw-data/cue-conflict/",
                        "kirill-vish/Beyond-INet/inference/modelvshuman/raw-data/cue-conflict/",
                        "paulgavrikov/vlm_shapebias/raw-data/")
#: the same-backbone fine-tuning comparison in vlm_shapebias: zero-shot parent -> its twins
SAME_BACKBONE = {"openai/ViT-L-14": ("timm/vit_large_patch14_clip_224.openai_ft_in1k",
                                     "timm/vit_large_patch14_clip_224.openai_ft_in12k_in1k"),
                 "openai/ViT-L-14-336": ("timm/vit_large_patch14_clip_336.openai_ft_in12k_in1k",)}
#: the one-checkpoint-per-side training-source comparison: LAION-400M (Beyond-INet) vs WIT
SOURCE_PAIR = ("laion400m_e31/ViT-B-16", "openai/ViT-B-16")


def _key(df: pd.DataFrame) -> pd.Series:
    return df["checkpoint"] + " | " + df["source"] + " | " + df["prompt"].fillna("")


def published_shape_trials() -> pd.DataFrame:
    """Every published model's cue-conflict answer per stimulus
    (:func:`clipsafety.published_models.shape_trials`): the two model-vs-human forks' networks
    (:func:`mvh_decisions`, humans left out), Beyond-INet and vlm_shapebias."""
    from clipsafety import published_models as P

    forks = pd.concat([mvh_decisions(repo, humans=False) for repo in MVH_SOURCES],
                      ignore_index=True)
    return P.shape_trials(forks)


def published_shape_models(trials: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every real model of the published cue-conflict files, one row per (checkpoint, fork,
    prompt) (:func:`clipsafety.published_models.shape_models`), with ``counted``: True on one
    row per checkpoint (its ``primary`` row) unless its decisions are identical, stimulus by
    stimulus, to an earlier counted row's (``identical_to`` names it: the same network published
    under two names, as in the forks' ``mlp-mixer``/``mlp-mixer-b``). ``model`` is the key
    ``checkpoint | fork | prompt``."""
    from clipsafety import published_models as P

    tr = published_shape_trials() if trials is None else trials
    m = P.shape_models(tr)
    m["model"] = _key(m)
    tr = tr.assign(model=_key(tr))
    sig = tr.sort_values("stimulus").groupby("model", sort=False).apply(
        lambda p: hash(tuple(zip(p["stimulus"], p["object_response"].astype(str).str.lower())))
        , include_groups=False)
    seen, ident = {}, {}
    for r in m[m["primary"]].itertuples():
        s = sig.get(r.model)
        if s in seen:
            ident[r.model] = seen[s]
        else:
            seen[s] = r.model
    m["identical_to"] = m["model"].map(ident).fillna("")
    m["counted"] = m["primary"] & (m["identical_to"] == "")
    return m


def published_pooled_shape(models: pd.DataFrame) -> pd.DataFrame:
    """The counted rows of :func:`published_shape_models` as a model table for the group rule:
    ``model`` the checkpoint, group, shape_bias, cue_share, ``source`` the training source,
    head and fork."""
    c = models[models["counted"]]
    return pd.DataFrame({"model": c["checkpoint"], "group": c["group"],
                         "shape_bias": c["shape_bias"], "cue_share": c["cue_share"],
                         "source": c["training_source"], "head": c["head"],
                         "fork": c["source"]}).reset_index(drop=True)


def stimulus_contrast(trials: pd.DataFrame, a: Sequence[str], b: Sequence[str],
                      n_boot: int = 1000, seed: int = 0, level: float = 0.95):
    """Mean shape bias of the models ``a`` minus that of ``b`` (keys of
    :func:`published_shape_models`' ``model``), with a percentile interval over stimuli: the
    stimuli are resampled with replacement, one draw shared by every model. Returns
    ``(estimate, lo, hi, per_model)`` with ``per_model`` each model's shape bias."""
    from clipsafety.shape import bias_ratio

    tr = trials.assign(model=_key(trials))
    tr = tr[tr["model"].isin([*a, *b])]
    sh = tr.pivot_table(index="model", columns="stimulus", values="shape_hit", aggfunc="sum",
                        fill_value=0)
    tx = tr.pivot_table(index="model", columns="stimulus", values="texture_hit", aggfunc="sum",
                        fill_value=0).reindex_like(sh).fillna(0)
    S, T = sh.to_numpy(float), tx.to_numpy(float)
    ia = [list(sh.index).index(k) for k in a]
    ib = [list(sh.index).index(k) for k in b]
    est_m = bias_ratio(S.sum(1), T.sum(1))
    rng = np.random.default_rng(seed)
    n = S.shape[1]
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_boot)])
    bs, bt = counts @ S.T, counts @ T.T
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = np.where(bs + bt > 0, bs / np.where(bs + bt > 0, bs + bt, 1), np.nan)
    diff = np.nanmean(boot[:, ia], 1) - np.nanmean(boot[:, ib], 1)
    q = (1 - level) / 2
    est = float(np.mean(est_m[ia]) - np.mean(est_m[ib]))
    return (est, float(np.nanquantile(diff, q)), float(np.nanquantile(diff, 1 - q)),
            pd.Series(est_m, index=sh.index))


def _row_key(models: pd.DataFrame, checkpoint: str, source: str | None = None) -> str:
    m = models[models["checkpoint"] == checkpoint]
    if source is not None:
        m = m[m["source"] == source]
    pref = m.sort_values("prompt", key=lambda p: p != "a photo of a {c}.")
    if pref.empty:
        raise KeyError(f"no published cue-conflict row of {checkpoint!r}"
                       + (f" in {source}" if source else ""))
    return pref["model"].iloc[0]


def assess_published_shape(trials: pd.DataFrame, models: pd.DataFrame, n_boot: int = 1000,
                           seed: int = 0) -> tuple[list, dict]:
    """The shape claims on the published files, each checkpoint once (one judgement per claim,
    evidence kind :data:`claims.PUBLISHED`). *shape-clip*: :func:`judge_shape_clip` over the
    counted models (:func:`published_pooled_shape`). *shape-ft*: OpenAI ViT-L/14 zero-shot
    (vlm_shapebias, 16-way head, "a photo of a {c}.") against the mean of its ImageNet-1k and
    12k-then-1k fine-tuned twins (1000-class heads mapped to 16), over stimuli
    (:func:`stimulus_contrast`; one checkpoint). *shape-source*: open_clip ViT-B/16 on
    LAION-400M (Beyond-INet) against OpenAI's ViT-B/16 (model-vs-human), both 1000-class heads
    mapped to 16, over stimuli. Returns ``(judgements, extra)`` with the numbers shown beside
    them (the ViT-L/14@336 pair, per-model biases)."""
    pooled = published_pooled_shape(models)
    ck = tuple(sorted(set(pooled["model"])))
    out = [judge_shape_clip(pooled, C.PUBLISHED, n_boot, seed, data=(*PUBLISHED_SHAPE_DATA, *ck))]
    extra = {}
    parent, kids = "openai/ViT-L-14", SAME_BACKBONE["openai/ViT-L-14"]
    try:
        a = [_row_key(models, k, "vlm_shapebias") for k in kids]
        b = [_row_key(models, parent, "vlm_shapebias")]
        est, lo, hi, per = stimulus_contrast(trials, a, b, n_boot, seed)
        extra["ft"] = per
        out.append(C.interval(
            CLAIMS["shape-ft"], C.PUBLISHED, est, lo, hi,
            effect="shape bias of OpenAI ViT-L/14 fine-tuned on ImageNet-1k and on 12k then 1k "
                   "(mean of the two; 1000-class heads mapped to 16) minus the same checkpoint "
                   "zero-shot (16-way head, 'a photo of a {c}.'), vlm_shapebias",
            scale="shape bias", unit=C.STIMULI, n=(int(trials["stimulus"].nunique()),),
            sides=(f"zero-shot ViT-L/14 against its {len(kids)} fine-tuned twins",),
            data=(PUBLISHED_SHAPE_DATA[3], parent, *kids)))
        p336 = "openai/ViT-L-14-336"
        extra["ft336"] = stimulus_contrast(
            trials, [_row_key(models, k, "vlm_shapebias") for k in SAME_BACKBONE[p336]],
            [_row_key(models, p336, "vlm_shapebias")], n_boot, seed)[:3]
    except KeyError as exc:
        out.append(C.not_testable(CLAIMS["shape-ft"], C.PUBLISHED, str(exc)))
    try:
        la, wi = SOURCE_PAIR
        a, b = [_row_key(models, la, "Beyond-INet")], [_row_key(models, wi)]
        est, lo, hi, per = stimulus_contrast(trials, a, b, n_boot, seed)
        extra["source"] = per
        out.append(C.interval(
            CLAIMS["shape-source"], C.PUBLISHED, est, lo, hi,
            effect="shape bias of open_clip ViT-B/16 trained on LAION-400M (Beyond-INet) minus "
                   "OpenAI's ViT-B/16 trained on WIT (model-vs-human), both 1000-class heads "
                   "mapped to 16", scale="shape bias", unit=C.STIMULI,
            n=(int(trials["stimulus"].nunique()),),
            sides=("LAION-400M ViT-B/16 against WIT ViT-B/16",),
            data=(PUBLISHED_SHAPE_DATA[2], PUBLISHED_SHAPE_DATA[0], la, wi)))
    except KeyError as exc:
        out.append(C.not_testable(CLAIMS["shape-source"], C.PUBLISHED, str(exc)))
    return out, extra


def published_clip_table(models: pd.DataFrame) -> pd.DataFrame:
    """Every real zero-shot CLIP of the published cue-conflict files: checkpoint, arch,
    training source, head, prompt, fork, shape bias, cue share, ``counted`` (the one row a
    checkpoint is counted by) and ``identical_to``; highest shape bias first."""
    clip = models[models["group"] == CLIP_ZEROSHOT]
    cols = ["checkpoint", "arch", "training_source", "head", "prompt", "source", "shape_bias",
            "cue_share", "counted", "identical_to"]
    return clip[cols].rename(columns={"source": "fork"}).sort_values(
        ["shape_bias"], ascending=False).reset_index(drop=True)


# --------------------------------------------------------------------------- model-vs-human raw data

#: the two model-vs-human forks whose raw decisions the chapter reads: repo -> short name and
#: what is known of their CLIPs. ``clip`` names a different checkpoint in each fork: the
#: fork's ``modelvshuman/models/pytorch/model_zoo.py`` loads ``clip.load("ViT-B/32")`` in
#: TizianThieringer's and ``clip.load("ViT-B/16")`` in kayburns' (at the pinned commit).
MVH_SOURCES = {
    "TizianThieringer/model-vs-human": "Thieringer",
    "kayburns/model-vs-human": "Burns",
}

_SUP, _SSL, _SIN, _MORE, _IT = ("supervised (ImageNet-1k)", "self-supervised (ImageNet-1k)",
                                "Stylized-ImageNet-trained", "more training data",
                                "image-text (OpenAI WIT)")
#: (repo, file observer) -> (label, group, training, note). Groups follow the methods page:
#: self-supervised pretraining on ImageNet-1k counts as standard, Stylized-ImageNet training as
#: a robustness intervention, ImageNet-21k / JFT / LVD-142M pretraining as more data.
MVH_NETWORKS: dict[tuple[str, str], tuple[str, str, str, str]] = {
    **{("TizianThieringer/model-vs-human", k): v for k, v in {
        "clip": ("CLIP ViT-B/32", CLIP_ZEROSHOT, _IT, "OpenAI CLIP ViT-B/32, zero-shot"),
        "clip-16": ("CLIP ViT-B/16", CLIP_ZEROSHOT, _IT, "OpenAI CLIP ViT-B/16, zero-shot"),
        "clip-14": ("CLIP ViT-L/14", CLIP_ZEROSHOT, _IT, "OpenAI CLIP ViT-L/14, zero-shot"),
        "autoencoder-vit-b": ("autoencoder ViT-B", STANDARD, _SSL, "masked-autoencoder ViT-B"),
        "barlow-twins": ("Barlow Twins ResNet-50", STANDARD, _SSL, "linear probe"),
        "dino-v8": ("DINO ViT-B/8", STANDARD, _SSL, "linear probe"),
        "bagnet9": ("BagNet-9", STANDARD, _SUP, ""),
        "inception-v1": ("Inception-v1", STANDARD, _SUP, ""),
        "shufflenet-test": ("ShuffleNet v2", STANDARD, _SUP, "torchvision shufflenet_v2_x1_0"),
        "mlp-mixer": ("MLP-Mixer", STANDARD, _SUP, ""),
        "mlp-mixer-b": ("MLP-Mixer-B", STANDARD, _SUP, ""),
        "mlp-mixer-l": ("MLP-Mixer-L", STANDARD, _SUP, ""),
        "convnext-base": ("ConvNeXt-B (21k)", MORE_DATA, _MORE,
                          "ImageNet-21k pretraining: its decisions equal Beyond-INet's "
                          "ConvNeXt-B 21k on every stimulus"),
        "convnext-large": ("ConvNeXt-L", STANDARD, _SUP, "pretraining data not stated upstream"),
        "swin-base": ("Swin-B", STANDARD, _SUP, "pretraining data not stated upstream"),
        "swin-large": ("Swin-L", STANDARD, _SUP, "pretraining data not stated upstream"),
        "mlp-mixer-b-in21": ("MLP-Mixer-B (21k)", MORE_DATA, _MORE, "ImageNet-21k pretraining"),
        "mlp-mixer-l-in21": ("MLP-Mixer-L (21k)", MORE_DATA, _MORE, "ImageNet-21k pretraining"),
        "efficientnet-l2-noisy-student-475": ("EfficientNet-L2 NS", MORE_DATA, _MORE,
                                              "Noisy Student, JFT-300M unlabelled images"),
        "resnet50-trained-on-SIN": ("ResNet-50 SIN", OTHER_ROBUST, _SIN, ""),
        "resnet50-trained-on-SIN-and-IN": ("ResNet-50 SIN+IN", OTHER_ROBUST, _SIN, ""),
        "resnet50-trained-on-SIN-and-IN-then-finetuned-on-IN": (
            "ResNet-50 SIN+IN ft IN", OTHER_ROBUST, _SIN, ""),
    }.items()},
    **{("kayburns/model-vs-human", k): v for k, v in {
        "clip": ("CLIP ViT-B/16", CLIP_ZEROSHOT, _IT, "OpenAI CLIP ViT-B/16, zero-shot"),
        "resnet50": ("ResNet-50", STANDARD, _SUP, "torchvision"),
        "resnet50-sup": ("ResNet-50 (sup)", STANDARD, _SUP, "torchvision"),
        "resnet50-insup": ("ResNet-50 (insup)", STANDARD, _SUP, ""),
        "vits-sup": ("DeiT-S", STANDARD, _SUP, ""),
        "deit-insup": ("DeiT-S (insup)", STANDARD, _SUP, ""),
        "resnet50-dino": ("DINO ResNet-50", STANDARD, _SSL, "linear probe"),
        "resnet50-moco": ("MoCo v3 ResNet-50", STANDARD, _SSL, "linear probe"),
        "vits-dino": ("DINO ViT-S/16", STANDARD, _SSL, "linear probe"),
        "vit-dino": ("DINO ViT-S/16 (vit)", STANDARD, _SSL, "linear probe"),
        "vits-moco": ("MoCo v3 ViT-S", STANDARD, _SSL, "linear probe"),
        "vitb-moco": ("MoCo v3 ViT-B", STANDARD, _SSL, "linear probe"),
        "vits-dinov2": ("DINOv2 ViT-S/14", MORE_DATA, _MORE, "LVD-142M, linear probe"),
        "vits-sinsup": ("DeiT-S SIN", OTHER_ROBUST, _SIN, ""),
        "deit-sinsup": ("DeiT-S SIN (deit)", OTHER_ROBUST, _SIN, ""),
    }.items()},
}


def mvh_decisions(repo: str, dataset: str = "cue-conflict", humans: bool = True) -> pd.DataFrame:
    """All registered raw decisions of one model-vs-human fork on ``dataset``, read by
    :func:`shape.read_decisions`. Adds ``source`` (the fork's short name), ``file_observer``,
    ``observer`` (a label unique across sources), ``group``, ``training`` and ``note``.
    A network the study does not know is an error naming it (add it to :data:`MVH_NETWORKS`)."""
    if repo not in MVH_SOURCES:
        raise ValueError(f"{repo!r} is not a model-vs-human source here; expected one of {list(MVH_SOURCES)}.")
    short = MVH_SOURCES[repo]
    frames = []
    for key in keys(f"{repo}/raw-data/{dataset}/"):
        who = parse_decision_file_name(key)["observer"]
        is_human = who.startswith("subject-")
        if is_human and not humans:
            continue
        if is_human:
            label, group, training, note = f"{who} [{short}]", HUMAN, "human", "human observer"
        elif (repo, who) in MVH_NETWORKS:
            label, group, training, note = MVH_NETWORKS[(repo, who)]
            label = f"{label} [{short}]"
        else:
            raise KeyError(f"{repo} raw-data/{dataset} has decisions of {who!r}, which "
                           "MVH_NETWORKS does not describe; add its label, group and training.")
        df = read_decisions(fetch(key), observer=label)
        df["source"], df["file_observer"], df["group"] = short, who, group
        df["training"], df["note"] = training, note
        frames.append(df)
    if not frames:
        raise ValueError(f"no registered decisions of {repo} on {dataset!r}.")
    return pd.concat(frames, ignore_index=True)


def _duplicates(decisions: pd.DataFrame) -> dict[str, str]:
    """observer -> the earlier observer of the same source whose decisions are identical on
    every stimulus (the same network published twice under two names)."""
    seen, dup = {}, {}
    for (src, obs), part in decisions.groupby(["source", "observer"], sort=False):
        sig = tuple(sorted(zip((stimulus_key(n) for n in part["imagename"]),
                               part["object_response"].str.lower())))
        k = (src, sig)
        if k in seen:
            dup[obs] = seen[k]
        else:
            seen[k] = obs
    return dup


def published_shape_observers(decisions: pd.DataFrame, n_boot: int = 1000,
                              seed: int = 0, resamples=None) -> pd.DataFrame:
    """One row per published observer: source, observer, group, training, note, shape_hits,
    texture_hits, trials, shape_bias with its interval over stimuli (lo, hi), cue_share, and
    ``duplicate_of`` (the observer with identical decisions, or empty). Duplicates are shown
    but left out of every group mean."""
    meta = decisions.drop_duplicates("observer").set_index("observer")[
        ["source", "group", "training", "note"]]
    tab = shape_bias_table(decisions, by="observer")
    ci = shape_bias_intervals(decisions, by="observer", n_boot=n_boot, seed=seed,
                              resamples=resamples)
    out = meta.join(tab).join(ci[["lo", "hi"]]).reset_index()
    out["duplicate_of"] = out["observer"].map(_duplicates(decisions)).fillna("")
    return out


def clip_agreement(decisions: pd.DataFrame, a: str, b: str) -> dict:
    """How often two observers give the same answer on the stimuli both saw:
    ``{"stimuli", "same_answer"}`` (a fraction). Used to say whether two sources' CLIPs of one
    architecture behave as the same checkpoint."""
    def answers(o):
        p = decisions[decisions["observer"] == o]
        return pd.Series(p["object_response"].str.lower().to_numpy(),
                         index=[stimulus_key(n) for n in p["imagename"]])
    x, y = answers(a), answers(b)
    common = x.index.intersection(y.index)
    return {"stimuli": int(len(common)),
            "same_answer": float((x[common] == y[common]).mean()) if len(common) else np.nan}


def mvh_other_datasets(repo: str = "TizianThieringer/model-vs-human") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Beyond the paper: every network and human of ``repo`` on model-vs-human's datasets other
    than cue-conflict. Returns ``(accuracy, consistency)``: accuracy per dataset, observer and
    condition (:func:`shape.accuracy_by_condition`, conditions in :func:`shape.condition_order`
    via an ``order`` column), and error consistency with the humans per dataset and observer
    (:func:`shape.error_consistency_table`), with group, training and source joined."""
    datasets = sorted({k.split("/raw-data/")[1].split("/")[0] for k in keys(f"{repo}/raw-data/")}
                      - {"cue-conflict", "performances"})
    from clipsafety.shape import condition_order

    acc_parts, ec_parts = [], []
    for ds in datasets:
        d = mvh_decisions(repo, ds)
        d["dataset"] = ds
        meta = d.drop_duplicates("observer").set_index("observer")[["group", "training", "source"]]
        acc = accuracy_by_condition(d).join(meta, on="observer")
        order = condition_order(acc.loc[acc["group"] == HUMAN, "condition"].unique()
                                if (acc["group"] == HUMAN).any() else acc["condition"].unique())
        acc = acc[acc["condition"].isin(order)]
        acc["order"] = acc["condition"].map({c: i for i, c in enumerate(order)})
        acc_parts.append(acc)
        humans = list(meta.index[meta["group"] == HUMAN])
        ec_parts.append(error_consistency_table(d, humans).join(meta, on="observer"))
    return pd.concat(acc_parts, ignore_index=True), pd.concat(ec_parts, ignore_index=True)


def shape_mechanism(shape: pd.DataFrame, x: str | None = "id_acc", n_boot: int = 1000,
                    seed: int = 0) -> dict:
    """A computed check of what drives the CLIP-vs-ImageNet shape comparison, for a verdict that
    does not reproduce (rather than a sentence of boilerplate).

    Returns ``cue_share`` per side (CLIP, ImageNet models: mean share of answers that are the
    shape or the texture class), the controlled difference (:func:`summaries.
    accuracy_controlled_difference`: CLIP's shape bias minus the ImageNet models' linear trend
    in ``x``, when ``x`` is a column), the leave-one-out range of the group difference, and
    ``text``, one sentence with the numbers."""
    d = shape.dropna(subset=["shape_bias"])
    clip = d[d["group"] == CLIP_ZEROSHOT]
    imnet = d[d["group"].isin(IMAGENET_GROUPS)]
    out = {"cue_share_clip": float(clip["cue_share"].mean()) if "cue_share" in d else np.nan,
           "cue_share_imagenet": float(imnet["cue_share"].mean()) if "cue_share" in d else np.nan}
    parts = []
    if np.isfinite(out["cue_share_clip"]):
        parts.append(f"CLIP's answers name the shape or the texture class on "
                     f"{out['cue_share_clip']:.0%} of trials against "
                     f"{out['cue_share_imagenet']:.0%} for ImageNet models (answers near chance "
                     f"pull shape bias towards 0.5)")
    if x and x in d and d[x].notna().any():
        est, lo, hi = accuracy_controlled_difference(d, x, "shape_bias", CLIP_ZEROSHOT,
                                                     list(IMAGENET_GROUPS), n_boot=n_boot, seed=seed)
        out.update(controlled=est, controlled_lo=lo, controlled_hi=hi)
        parts.append(f"at equal {x}, CLIP minus the ImageNet trend is {est:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    loo = leave_one_out(clip.set_index("model")["shape_bias"], imnet.set_index("model")["shape_bias"])
    if len(loo):
        out["loo"] = loo
        top = loo.iloc[(loo["estimate"] - loo["full"]).abs().argmax()]
        parts.append(f"leaving one model out moves the difference from {top['full']:+.3f} to "
                     f"{loo['estimate'].min():+.3f}..{loo['estimate'].max():+.3f} (largest without "
                     f"{top['left_out']})")
    out["text"] = "; ".join(parts) + "." if parts else "no mechanism check possible here."
    return out


# --------------------------------------------------------------------------------------------
# the chapter's tables

def published_networks(observers: dict) -> pd.DataFrame:
    """The networks (not the humans) of the published observer tables ``{source:
    published_shape_observers table}``, all sources together."""
    allobs = pd.concat(observers.values(), ignore_index=True)
    return allobs[allobs["group"] != HUMAN]


#: the columns of the published networks' table the chapter shows
NETWORK_COLUMNS = ("observer", "group", "training", "shape_bias", "lo", "hi", "cue_share",
                   "duplicate_of")


def network_table(networks: pd.DataFrame) -> pd.DataFrame:
    """:func:`published_networks` with the :data:`NETWORK_COLUMNS`, highest shape bias first."""
    return (networks[list(NETWORK_COLUMNS)].sort_values("shape_bias", ascending=False)
            .reset_index(drop=True))


def network_kinds(networks: pd.DataFrame) -> pd.DataFrame:
    """Shape bias of the published non-CLIP networks (duplicates left out) per (source,
    training): their number (``size``), ``mean``, ``min`` and ``max``."""
    nets = networks[(networks["duplicate_of"] == "") & (networks["group"] != CLIP_ZEROSHOT)]
    return nets.groupby(["source", "training"])["shape_bias"].agg(["size", "mean", "min", "max"])


#: model-vs-human's colour experiment: the condition of unaltered colour images (the ID accuracy
#: of a published observer)
COLOUR_ID_CONDITION = "cr"


def observers_with_id_accuracy(observers: pd.DataFrame, colour: pd.DataFrame) -> pd.DataFrame:
    """A source's published observers (duplicates left out; ``observer`` renamed ``model``) with
    ``id_acc``: each observer's accuracy on the unaltered colour images
    (:data:`COLOUR_ID_CONDITION`) of the ``colour`` experiment's decisions
    (:func:`shape.accuracy_by_condition`), NaN where it has none."""
    col = accuracy_by_condition(colour)
    id_acc = col[col["condition"] == COLOUR_ID_CONDITION].set_index("observer")["accuracy"]
    obs = observers.rename(columns={"observer": "model"})
    return obs[obs["duplicate_of"] == ""].assign(id_acc=lambda d: d["model"].map(id_acc))


def with_id_accuracy(shape: pd.DataFrame, records: dict) -> pd.DataFrame:
    """``shape`` (:func:`shape_table`) with ``id_acc``: each model's top-1 accuracy on its ID
    record (``records``: ``{model: record}``; :func:`metrics.accuracy` on the record's label
    subset), NaN for a model without one."""
    return shape.assign(id_acc=shape["model"].map(
        {m: metrics.accuracy(r.logits, r.targets, r.label_subset) for m, r in records.items()}))


def with_shape_only_accuracy(shape: pd.DataFrame, records: dict) -> pd.DataFrame:
    """``shape`` with ``shape_only_acc``: each model's top-1 accuracy on shape-only stimuli
    (``records``: the synthetic world's Stylized-like set, ``synth:shift-stylized``, whose
    colours and patterns are never the category's), NaN for a model without one: the
    shape-learning premise of :func:`shape_premises`."""
    return shape.assign(shape_only_acc=shape["model"].map(
        {m: metrics.accuracy(r.logits, r.targets, r.label_subset) for m, r in records.items()}))


#: what a reader compares in the live table (the full table, with hashes and training losses,
#: is in the recorded outputs)
SHOWN_COLUMNS = ("model", "group", "source", "samples", "reading", "shape_bias", "shape_hits",
                 "texture_hits", "cue_share", "id_acc")


def shape_overview(shape: pd.DataFrame) -> pd.DataFrame:
    """The :data:`SHOWN_COLUMNS` of ``shape`` that it has."""
    return shape[[c for c in SHOWN_COLUMNS if c in shape]]


def direct_reading(shape: pd.DataFrame, direct: pd.DataFrame) -> pd.DataFrame:
    """Per zero-shot CLIP of ``direct`` (:func:`shape_table` with a head over the 16
    cue-conflict class names): its shape bias and reading in ``shape`` (the 1000-way head and
    the mapping) beside the direct ones (``shape_bias_direct``, ``reading_direct``)."""
    clip_ids = list(shape.loc[shape["group"] == CLIP_ZEROSHOT, "model"])
    return shape[shape["model"].isin(clip_ids)][["model", "shape_bias", "reading"]].merge(
        direct[["model", "shape_bias", "reading"]], on="model", suffixes=("", "_direct"))


def group_shape_summary(shape: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per group of ``shape``: number of models, mean shape bias and its bootstrap interval over
    models (:func:`summaries.group_summary`), the group named by its display label
    (:func:`clipsafety.groups.group_label`)."""
    summary = group_summary(shape.assign(all="all"), "shape_bias", by=["all"], n_boot=n_boot,
                            seed=seed).drop(columns="all")
    summary["group"] = summary["group"].map(group_label)
    return summary


def with_human_mean(accuracy: pd.DataFrame) -> pd.DataFrame:
    """:func:`mvh_other_datasets`' accuracy table with the humans replaced by their mean per
    (dataset, condition, order), as one observer "humans (mean)" of group human."""
    hum = accuracy[accuracy["group"] == HUMAN].groupby(["dataset", "condition", "order"])[
        "accuracy"].mean()
    return pd.concat([accuracy[accuracy["group"] != HUMAN],
                      hum.reset_index().assign(observer="humans (mean)", group=HUMAN)])


# --------------------------------------------------------------------------------------------
# the chapter's parameters and exercises (collected by the book runner and the pages)

ABOUT = "cue-conflict images: does CLIP decide by shape rather than texture?"

PARAMETER_RULES = {**_R.LIVE, "id_dataset": _R.dataset}

#: what the shape-bias exercises compare: each group's mean shape bias, and each claim's
#: verdict and estimate
_SHAPE_MEASURES = _R.group_means("shape", {"shape_bias": "shape bias (fraction of shape decisions)"})

EXERCISES = [
    Exercise("Give zero-shot CLIP one prompt template instead of 80.",
             {"templates": "single"},
             "whether zero-shot CLIP's shape bias depends on its prompts", _SHAPE_MEASURES),
    Exercise("Resample the intervals with another seed.",
             {"seed": 1},
             "how stable each interval is", _SHAPE_MEASURES),
]
