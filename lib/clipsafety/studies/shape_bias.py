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

from clipsafety import metrics
from clipsafety import rules as _R
from clipsafety import claims as C
from clipsafety.claims import Claim, not_testable
NOT_REPRODUCED = "not reproduced"
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
    shape_bias_resamples,
    shape_bias_table,
    shape_counts,
    stimulus_bootstrap_difference,
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

__all__ = ["CLAIMS", "COLOUR_ID_CONDITION", "MVH_NETWORKS", "MVH_SOURCES", "NETWORK_COLUMNS",
           "PUBLISHED_SHAPE_FILES", "SHOWN_COLUMNS", "assess_published_shape_claims",
           "assess_shape_claims", "clip_agreement", "direct_reading", "group_shape_summary",
           "human_band", "mvh_decisions", "mvh_other_datasets", "network_kinds", "network_table",
           "observers_with_id_accuracy", "published_networks", "published_shape_decisions",
           "published_shape_observers", "shape_bias_by_observer", "shape_bias_of_record",
           "shape_mechanism", "shape_overview", "shape_reading", "shape_table", "with_human_mean",
           "with_id_accuracy"]


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

#: the paper's shape-bias claims (section 4.2)
CLAIMS = {
    "shape-clip": Claim(
        "shape-clip", "Zero-shot CLIP is more shape-biased than ImageNet models", "4.2"),
    "shape-ft": Claim(
        "shape-ft", "Fine-tuning CLIP on ImageNet reduces its shape bias", "4.2"),
}


def assess_shape_claims(shape: pd.DataFrame, source: str, n_boot: int = 1000,
                        seed: int = 0) -> list[dict]:
    """Judge the two shape-bias claims on one evidence source.

    ``shape``: one row per model with group, shape_bias (and ``parent`` for fine-tuned models,
    the id of the zero-shot CLIP they were fine-tuned from, when known). Rules: *CLIP* —
    mean shape bias of zero-shot CLIP minus that of ImageNet models (standard and more-data),
    interval above zero. *fine-tuning* — with parents known, the mean paired change
    (fine-tuned minus its own zero-shot parent) and its bootstrap interval, below zero;
    otherwise fine-tuned minus zero-shot group means.
    """
    c = CLAIMS
    d = shape.dropna(subset=["shape_bias"])
    clip = d.loc[d["group"] == CLIP_ZEROSHOT, "shape_bias"]
    imnet = d.loc[d["group"].isin(IMAGENET_GROUPS), "shape_bias"]
    rows = []
    if clip.empty or imnet.empty:
        rows.append(not_testable(c["shape-clip"], source,
                                 f"needs zero-shot CLIP and ImageNet models; found {len(clip)} "
                                 f"CLIP and {len(imnet)} ImageNet models"))
    else:
        est, lo, hi = bootstrap_difference(clip, imnet, n_boot=n_boot, seed=seed)
        rows.append(verdict_from_interval(
            c["shape-clip"], source, est, lo, hi, "greater",
            evidence=f"mean shape bias, CLIP ({len(clip)}) minus ImageNet models ({len(imnet)})"))
    ft = d[d["group"].isin(FT_GROUPS)]
    if ft.empty or clip.empty:
        rows.append(not_testable(c["shape-ft"], source,
                                 f"needs zero-shot and fine-tuned CLIP; found {len(clip)} "
                                 f"zero-shot and {len(ft)} fine-tuned"))
        return rows
    pairs = paired_changes(d)
    if len(pairs):
        est, lo, hi = bootstrap_mean(pairs["after"] - pairs["before"], n_boot=n_boot, seed=seed)
        ev = f"mean paired change over {len(pairs)} fine-tuned models (fine-tuned minus its parent)"
    else:
        est, lo, hi = bootstrap_difference(ft["shape_bias"], clip, n_boot=n_boot, seed=seed)
        ev = f"fine-tuned CLIP ({len(ft)}) minus zero-shot CLIP ({len(clip)}), unpaired"
    rows.append(verdict_from_interval(c["shape-ft"], source, est, lo, hi, "less", evidence=ev))
    return rows


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
        "convnext-base": ("ConvNeXt-B", STANDARD, _SUP, "pretraining data not stated upstream"),
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


def assess_published_shape_claims(decisions: pd.DataFrame, observers: pd.DataFrame, source: str,
                                  n_boot: int = 1000, seed: int = 0,
                                  resamples=None) -> list[dict]:
    """Judge the shape claims on one published source's raw decisions.

    Rule (*CLIP*): mean shape bias of the source's zero-shot CLIPs minus that of its ImageNet
    models (standard and more data; duplicates left out), with a percentile interval over
    stimuli (:func:`shape.stimulus_bootstrap_difference`); reproduced when the interval lies
    above zero. The evidence adds the leave-one-out range (every single model dropped in turn:
    does one network carry the difference?). *Fine-tuning*: not testable, no fine-tuned CLIP is
    among the published decisions."""
    obs = observers[observers["duplicate_of"] == ""]
    clip = list(obs.loc[obs["group"] == CLIP_ZEROSHOT, "observer"])
    imnet = list(obs.loc[obs["group"].isin(IMAGENET_GROUPS), "observer"])
    c = CLAIMS
    rows = []
    if not clip or not imnet:
        rows.append(not_testable(c["shape-clip"], source,
                                 f"needs zero-shot CLIP and ImageNet models; found {len(clip)} "
                                 f"CLIP and {len(imnet)} ImageNet models"))
    else:
        resamples = resamples or shape_bias_resamples(decisions, "observer", n_boot, seed)
        est, lo, hi = stimulus_bootstrap_difference(decisions, clip, imnet, resamples=resamples)
        loo = []
        for drop in clip + imnet:
            a = [o for o in clip if o != drop]
            b = [o for o in imnet if o != drop]
            if a and b:
                loo.append((drop, *stimulus_bootstrap_difference(None, a, b,
                                                                 resamples=resamples)))
        flips = [d for d, _, lo_, _ in loo if not lo_ > 0] if lo > 0 else \
                [d for d, _, lo_, _ in loo if lo_ > 0]
        ests = [e for _, e, _, _ in loo]
        ev = (f"mean shape bias, CLIP ({len(clip)}: {', '.join(clip)}) minus ImageNet models "
              f"({len(imnet)}), interval over stimuli; leaving out any one model gives "
              f"{min(ests):+.3f} to {max(ests):+.3f}" if ests else "")
        ev += (f"; the verdict changes without {', '.join(flips)}" if flips else
               "; no single model changes the verdict") if ests else ""
        rows.append(verdict_from_interval(c["shape-clip"], source, est, lo, hi, "greater", evidence=ev))
    rows.append(not_testable(c["shape-ft"], source, "no fine-tuned CLIP among the published decisions"))
    return rows


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


def mechanism_rows(rows: list[dict], text: str) -> list[dict]:
    """``rows`` with ``text`` appended to the evidence of each "not reproduced" row."""
    return [{**r, "evidence": f"{r['evidence']}. Check: {text}"} if r["verdict"] == NOT_REPRODUCED
            else r for r in rows]


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

_FEW = _R.FEW_ZOO_MODELS
EXERCISES = [
    Exercise("Run the chapter on five zoo models with one prompt template.",
             {"models": _FEW, "templates": "single"},
             "whether zero-shot CLIP's shape bias depends on its prompts"),
    Exercise("Resample the intervals with another seed and fewer resamples.",
             {"models": _FEW, "seed": 1, "n_boot": 200},
             "how stable each interval is"),
]
