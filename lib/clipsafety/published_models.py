"""Real models with published evidence: tidy readers keyed by checkpoint, and one table of them.

Every reader here returns one row per published result with the same descriptive columns:

- ``checkpoint``: a canonical key of the weights, so that one checkpoint found in two files
  (two model-vs-human forks both running OpenAI's ViT-B/16; two ImageNet-X collections of the
  same CLIPs) is counted once. Zero-shot CLIPs are ``<pretrained tag>/<open_clip architecture>``
  (``openai/ViT-B-16``, ``laion400m_e31/ViT-B-16``), timm weights ``timm/<name.tag>``,
  torchvision's ``torchvision/<name>``; a model whose weights cannot be tied to a public name
  is keyed by its source (``cood/...``, ``ninco/...``, ``beyond-inet/...``, ``Thieringer/...``),
  so it is never merged with another by guesswork.
- ``group``: the group id of :mod:`clipsafety.groups` (``clip-zeroshot``, ``clip-ft-direct``
  = CLIP fine-tuned on ImageNet-1k, ``clip-ft-2stage`` = fine-tuned on 12k/21k then 1k,
  ``standard``, ``more-data``, ``other-robust``);
- ``training_source``: the image-text data of a CLIP (``WIT``, ``LAION-400M``, ``LAION-2B``,
  ``DataComp``, ...; :func:`training_source`), ``ImageNet-1k`` / ``ImageNet-21k`` / ... for the
  others where known, ``unknown`` otherwise;
- ``arch``: the architecture as the source names it;
- ``head``: how the answer was read: ``16-way zero-shot`` (text embeddings of the 16
  cue-conflict class names), ``1000-class mapped`` (a 1000-class head, ImageNet's classes
  averaged into the 16 by model-vs-human's mapping), ``1000-class`` (ImageNet itself);
- ``prompt``: the text template of a zero-shot head, ``""`` for a classifier head;
- ``source``: the file's project (``vlm_shapebias``, ``Beyond-INet``, ``Thieringer``,
  ``Burns``, ``C-OOD``, ``NINCO``, ``open_clip``, ``ImageNet-X``, ...).

Units: accuracies, AUROCs, shape bias and cue share are fractions in [0, 1]; the confidence
gap of C-OOD is in accuracy points (``100 * (mean confidence - accuracy)``).

:func:`table` joins everything into one row per checkpoint for a reader choosing a model;
:func:`percentile` and :func:`nearest` place a value among those models.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from clipsafety import external
from clipsafety.factors import PAPER_FACTORS
from clipsafety.groups import (
    CLIP_FT_2STAGE,
    CLIP_FT_DIRECT,
    CLIP_ZEROSHOT,
    GROUPS,
    MORE_DATA,
    STANDARD,
)

__all__ = ["BEYOND_INET", "COOD", "NINCO", "VLM", "beyond_inet_accuracy", "cood_models",
           "factor_models", "ninco_models", "openclip_models", "shape_models", "shape_trials",
           "table", "percentile", "nearest", "training_source", "TABLE_COLUMNS"]

VLM = "paulgavrikov/vlm_shapebias/raw-data/"
BEYOND_INET = "kirill-vish/Beyond-INet/inference/modelvshuman/raw-data/"
COOD = "mdabbah/COOD_benchmarking/paper_results/all_paper_results.csv"
NINCO = "j-cb/NINCO/model_outputs/df.pkl"
KAYBURNS_VAL = ("kayburns/model-vs-human/raw-data/imagenet_validation/"
                "imagenet_validation_clip_session-1.csv")

DESCRIPTIVE = ("checkpoint", "group", "training_source", "arch", "head", "prompt", "source")

# --------------------------------------------------------------------------- naming

_SOURCES = (  # pretrained-tag prefix -> training source (first match wins)
    ("openai", "WIT"), ("laion400m", "LAION-400M"), ("laion2b", "LAION-2B"),
    ("frozen_laion5b", "LAION-5B"), ("laion5b", "LAION-5B"), ("laion_aesthetic", "LAION-Aesthetic"),
    ("datacomp", "DataComp"), ("commonpool", "CommonPool"), ("dfn", "DFN"),
    ("metaclip", "MetaCLIP"), ("webli", "WebLI"), ("merged2b", "Merged-2B"),
    ("yfcc15m", "YFCC-15M"), ("cc12m", "CC12M"), ("mscoco_finetuned_laion2b", "LAION-2B"),
)


def training_source(tag: str) -> str:
    """The image-text data named by an open_clip pretrained tag (``openai`` -> ``WIT``,
    ``laion400m_e31`` -> ``LAION-400M``, ``laion2b_s34b_b79k`` -> ``LAION-2B``,
    ``datacomp_xl_s13b_b90k`` -> ``DataComp``, ``merged2b_s11b_b114k`` -> ``Merged-2B``
    (LAION-2B + COYO-700M, EVA-CLIP's)); ``other`` for a tag it does not know."""
    t = str(tag).lower()
    for prefix, name in _SOURCES:
        if t.startswith(prefix):
            return name
    return "other"


def clip_checkpoint(tag: str, arch: str) -> str:
    """The key of a zero-shot CLIP: ``<tag>/<open_clip architecture>``."""
    return f"{tag}/{arch}"


#: vlm_shapebias's CLIP file stems -> (pretrained tag, open_clip architecture)
VLM_CLIPS = {
    "clip_RN50_openai": ("openai", "RN50"),
    "clip_RN101_openai": ("openai", "RN101"),
    "ViT_L_14_openai": ("openai", "ViT-L-14"),
    "ViT_L_14_336_openai": ("openai", "ViT-L-14-336"),
    "EVA01_g_14_laion400m_s11b_b41k": ("laion400m_s11b_b41k", "EVA01-g-14"),
    "EVA02_E_14_plus_laion2b_s9b_b144k": ("laion2b_s9b_b144k", "EVA02-E-14-plus"),
    "BAAI_EVA_CLIP_8B_448_None": ("merged2b", "EVA-CLIP-8B-448"),
}
#: vlm_shapebias's prompt suffixes -> the template (``{c}`` the class name)
VLM_PROMPTS = {"CLS": "{c}", "a_photo_of_a_CLS.": "a photo of a {c}.",
               "None": "none (upstream 'None')"}
#: vlm_shapebias's ImageNet classifiers -> (checkpoint, group, training source, arch)
VLM_CLASSIFIERS = {
    "resnet50": ("timm/resnet50", STANDARD, "ImageNet-1k", "ResNet-50"),
    "resnet152": ("timm/resnet152", STANDARD, "ImageNet-1k", "ResNet-152"),
    "tv_resnet50": ("torchvision/resnet50", STANDARD, "ImageNet-1k", "ResNet-50"),
    "vit_base_patch16_224.orig_in21k_ft_in1k": (
        "timm/vit_base_patch16_224.orig_in21k_ft_in1k", MORE_DATA, "ImageNet-21k", "ViT-B/16"),
    "vit_large_patch14_clip_224.openai_ft_in1k": (
        "timm/vit_large_patch14_clip_224.openai_ft_in1k", CLIP_FT_DIRECT, "WIT", "ViT-L/14"),
    "vit_large_patch14_clip_224.openai_ft_in12k_in1k": (
        "timm/vit_large_patch14_clip_224.openai_ft_in12k_in1k", CLIP_FT_2STAGE, "WIT", "ViT-L/14"),
    "vit_large_patch14_clip_336.openai_ft_in12k_in1k": (
        "timm/vit_large_patch14_clip_336.openai_ft_in12k_in1k", CLIP_FT_2STAGE, "WIT",
        "ViT-L/14@336"),
}
#: Beyond-INet's observers -> (checkpoint, group, training source, arch). Its CLIPs are
#: open_clip ViT-B-16 ``laion400m_e31`` and convnext_base ``laion400m_s13b_b51k`` with a
#: 1000-class zero-shot head (OpenAI's templates), read by model-vs-human's mapping.
BEYOND_INET_MODELS = {
    "vit-clip": (clip_checkpoint("laion400m_e31", "ViT-B-16"), CLIP_ZEROSHOT, "LAION-400M", "ViT-B/16"),
    "convnext-clip": (clip_checkpoint("laion400m_s13b_b51k", "convnext_base"), CLIP_ZEROSHOT,
                      "LAION-400M", "ConvNeXt-B"),
    "tv-resnet50": ("torchvision/resnet50", STANDARD, "ImageNet-1k", "ResNet-50"),
    "convnext-base": ("beyond-inet/convnext-base", STANDARD, "ImageNet-1k", "ConvNeXt-B"),
    "convnext-base-21k": ("beyond-inet/convnext-base-21k", MORE_DATA, "ImageNet-21k", "ConvNeXt-B"),
    "convnextv2-base": ("beyond-inet/convnextv2-base", STANDARD, "ImageNet-1k", "ConvNeXt-V2-B"),
    "deit3": ("beyond-inet/deit3", STANDARD, "ImageNet-1k", "DeiT3-B"),
    "deit3-21k": ("beyond-inet/deit3-21k", MORE_DATA, "ImageNet-21k", "DeiT3-B"),
    "mae": ("beyond-inet/mae", STANDARD, "ImageNet-1k", "MAE ViT-B"),
}
#: model-vs-human fork observers whose checkpoint has a public name (the rest are keyed
#: ``<fork>/<observer>``): the forks' ``clip`` is ``clip.load("ViT-B/32")`` in Thieringer's and
#: ``clip.load("ViT-B/16")`` in Burns' (their model_zoo.py at the pinned commits); Burns'
#: ``resnet50`` is torchvision's (its decisions agree with Beyond-INet's ``tv-resnet50`` on
#: 1,278 of 1,280 stimuli)
MVH_CHECKPOINTS = {
    ("Thieringer", "clip"): ("openai/ViT-B-32", "ViT-B/32"),
    ("Thieringer", "clip-16"): ("openai/ViT-B-16", "ViT-B/16"),
    ("Thieringer", "clip-14"): ("openai/ViT-L-14", "ViT-L/14"),
    ("Burns", "clip"): ("openai/ViT-B-16", "ViT-B/16"),
    ("Burns", "resnet50"): ("torchvision/resnet50", "ResNet-50"),
}
#: the forks' training descriptions (:data:`clipsafety.studies.shape_bias.MVH_NETWORKS`) as
#: training sources
_MVH_TRAINING = {"supervised (ImageNet-1k)": "ImageNet-1k",
                 "self-supervised (ImageNet-1k)": "ImageNet-1k (self-supervised)",
                 "Stylized-ImageNet-trained": "Stylized-ImageNet", "more training data": "more data",
                 "image-text (OpenAI WIT)": "WIT"}
#: ImageNet-X's CLIPs -> checkpoint: model-vs-human's ``clip`` is OpenAI ViT-B/32
IMAGENETX_CHECKPOINTS = {
    "clip": "openai/ViT-B-32", "clipRN50": "openai/RN50",
    "resnet50_clip_zeroshot": "openai/RN50", "vit_b_32_clip_zeroshot": "openai/ViT-B-32",
}
#: NINCO's CLIPs -> (checkpoint, group, training source). NINCO's fine-tuned ViT-B/16s at 384
#: px are timm's; what NINCO calls ``in21k_in1k`` timm publishes as ``ft_in12k_in1k``
NINCO_CHECKPOINTS = {
    "clip-ViT-B16": ("openai/ViT-B-16", CLIP_ZEROSHOT, "WIT"),
    "clip-ViT-L14-336": ("openai/ViT-L-14-336", CLIP_ZEROSHOT, "WIT"),
    "vit_base_patch16_384_openai_in1k": ("timm/vit_base_patch16_clip_384.openai_ft_in1k",
                                         CLIP_FT_DIRECT, "WIT"),
    "vit_base_patch16_384_openai_in21k_in1k": (
        "timm/vit_base_patch16_clip_384.openai_ft_in12k_in1k", CLIP_FT_2STAGE, "WIT"),
    "vit_base_patch16_384_laion2b_in1k": ("timm/vit_base_patch16_clip_384.laion2b_ft_in1k",
                                          CLIP_FT_DIRECT, "LAION-2B"),
    "vit_base_patch16_384_laion2b_in21k_in1k": (
        "timm/vit_base_patch16_clip_384.laion2b_ft_in12k_in1k", CLIP_FT_2STAGE, "LAION-2B"),
}


def _cood_arch(name: str) -> str:
    """C-OOD's CLIP architecture spelling as open_clip's: ``ViT-B~16`` -> ``ViT-B-16``,
    ``ViT-L~14@336px`` -> ``ViT-L-14-336``."""
    return name.replace("~", "-").replace("@336px", "-336")


# --------------------------------------------------------------------------- cue-conflict

def _trials(dec: pd.DataFrame) -> pd.DataFrame:
    from clipsafety.shape import cue_conflict_trials, stimulus_key

    tr = cue_conflict_trials(dec)
    tr["stimulus"] = [stimulus_key(n).removesuffix(".png") for n in tr["imagename"]]
    return tr


def _vlm_file(stem: str) -> dict:
    if stem in VLM_CLASSIFIERS:
        ck, group, src, arch = VLM_CLASSIFIERS[stem]
        return dict(checkpoint=ck, group=group, training_source=src, arch=arch,
                    head="1000-class mapped", prompt="")
    for model, (tag, arch) in VLM_CLIPS.items():
        if stem.startswith(model + "_") and stem[len(model) + 1:] in VLM_PROMPTS:
            return dict(checkpoint=clip_checkpoint(tag, arch), group=CLIP_ZEROSHOT,
                        training_source=training_source(tag), arch=arch,
                        head="16-way zero-shot", prompt=VLM_PROMPTS[stem[len(model) + 1:]])
    raise KeyError(f"vlm_shapebias file {stem!r} is not described in VLM_CLIPS or "
                   "VLM_CLASSIFIERS; add its checkpoint, group and training source.")


def vlm_trials() -> pd.DataFrame:
    """vlm_shapebias's cue-conflict answers (:func:`clipsafety.shape.read_vlm_answers`), one
    row per model file and stimulus (same-class stimuli dropped)."""
    from clipsafety.shape import read_vlm_answers

    frames = []
    for key in external.keys(VLM):
        stem = key.rsplit("/", 1)[-1].removesuffix(".csv")
        meta = _vlm_file(stem)
        tr = _trials(read_vlm_answers(external.fetch(key)))
        frames.append(tr.assign(**meta, source="vlm_shapebias", observer=stem))
    return pd.concat(frames, ignore_index=True)


def beyond_inet_trials() -> pd.DataFrame:
    """Beyond-INet's cue-conflict decisions (model-vs-human format, read by
    :func:`clipsafety.shape.read_decisions`), one row per model and stimulus."""
    from clipsafety.shape import parse_decision_file_name, read_decisions

    frames = []
    for key in external.keys(BEYOND_INET + "cue-conflict/"):
        who = parse_decision_file_name(key)["observer"]
        if who not in BEYOND_INET_MODELS:
            raise KeyError(f"Beyond-INet has decisions of {who!r}, which BEYOND_INET_MODELS does "
                           "not describe; add its checkpoint, group and training source.")
        ck, group, src, arch = BEYOND_INET_MODELS[who]
        tr = _trials(read_decisions(external.fetch(key), observer=who))
        frames.append(tr.assign(checkpoint=ck, group=group, training_source=src, arch=arch,
                                head="1000-class mapped",
                                prompt="OpenAI's 80 templates" if group == CLIP_ZEROSHOT else "",
                                source="Beyond-INet", observer=who))
    return pd.concat(frames, ignore_index=True)


def beyond_inet_accuracy() -> pd.DataFrame:
    """Beyond-INet's upstream ``performances/`` files: observer (the file's ``subj``), dataset,
    metric, performance (a fraction), read by :func:`clipsafety.shape.read_performances`."""
    from clipsafety.shape import read_performances

    return pd.concat([read_performances(external.fetch(k))
                      for k in external.keys(BEYOND_INET + "performances/")], ignore_index=True)


def mvh_fork_trials(fork_decisions: pd.DataFrame) -> pd.DataFrame:
    """The networks of model-vs-human forks, one row per stimulus, from the decisions the shape
    chapter reads (``fork_decisions``: the shape study's ``mvh_decisions`` of each fork,
    stacked, with its ``source`` (fork short name), ``file_observer``, ``observer``, ``group``
    and ``training`` columns); human observers are left out."""
    need = {"source", "file_observer", "observer", "group", "training", "imagename",
            "object_response"}
    missing = sorted(need - set(fork_decisions.columns))
    if missing:
        raise ValueError(f"fork_decisions lacks columns {missing}; pass the shape study's "
                         "mvh_decisions(repo) of each fork, stacked with pd.concat.")
    frames = []
    dec = fork_decisions[~fork_decisions["file_observer"].astype(str).str.startswith("subject-")]
    for short, part in dec.groupby("source", sort=False):
        tr = _trials(part)
        named = [MVH_CHECKPOINTS.get((short, o)) for o in tr["file_observer"]]
        tr["checkpoint"] = [n[0] if n else f"{short}/{o}" for n, o in zip(named, tr["file_observer"])]
        tr["arch"] = [n[1] if n else lbl.rsplit(" [", 1)[0]
                      for n, lbl in zip(named, tr["observer"])]
        tr["training_source"] = np.where(tr["group"] == CLIP_ZEROSHOT, "WIT",
                                         tr["training"].map(_MVH_TRAINING).fillna("unknown"))
        tr["head"] = "1000-class mapped"
        tr["prompt"] = np.where(tr["group"] == CLIP_ZEROSHOT, "the fork's templates", "")
        tr["observer"] = tr["file_observer"]
        frames.append(tr)
    return pd.concat(frames, ignore_index=True)


#: the columns of :func:`shape_trials`
TRIAL_COLUMNS = (*DESCRIPTIVE, "observer", "stimulus", "shape", "texture", "object_response",
                 "shape_hit", "texture_hit", "confidence")


def shape_trials(fork_decisions: pd.DataFrame | None = None,
                 sources: Sequence[str] = ("Beyond-INet", "vlm_shapebias")) -> pd.DataFrame:
    """Every published model's cue-conflict answer per stimulus (same-class stimuli dropped):
    :data:`TRIAL_COLUMNS`. ``stimulus`` is the short name (``airplane1-bicycle2``), the same in
    every source, so a bootstrap over stimuli can pair models; ``confidence`` is the chosen
    class's probability where the file gives one (vlm_shapebias), NaN otherwise.
    ``fork_decisions`` adds the model-vs-human forks' networks (:func:`mvh_fork_trials`)."""
    frames = []
    if fork_decisions is not None:
        frames.append(mvh_fork_trials(fork_decisions))
    if "Beyond-INet" in sources:
        frames.append(beyond_inet_trials())
    if "vlm_shapebias" in sources:
        frames.append(vlm_trials())
    out = pd.concat(frames, ignore_index=True)
    if "confidence" not in out:
        out["confidence"] = np.nan
    return out[list(TRIAL_COLUMNS)]


#: sources in the order :func:`shape_models` picks a checkpoint's primary row: the
#: model-vs-human protocol (1000-class head mapped to 16) first, then the 16-way heads
SHAPE_SOURCE_ORDER = ("Thieringer", "Burns", "Beyond-INet", "vlm_shapebias")
#: the prompt a 16-way zero-shot row is primary with
PRIMARY_PROMPT = "a photo of a {c}."


def shape_models(trials: pd.DataFrame | None = None) -> pd.DataFrame:
    """Shape bias per published (checkpoint, source, prompt): the descriptive columns, observer,
    shape_hits, texture_hits, trials, shape_bias, cue_share (:func:`clipsafety.shape.bias_ratio`
    conventions) and ``primary`` (True on one row per checkpoint: the first source of
    :data:`SHAPE_SOURCE_ORDER`, with :data:`PRIMARY_PROMPT` among prompts), so a checkpoint
    found in two files counts once."""
    from clipsafety.shape import bias_ratio

    tr = shape_trials() if trials is None else trials
    keys = [*DESCRIPTIVE, "observer"]
    g = tr.groupby(keys, sort=False, dropna=False)
    out = g.agg(shape_hits=("shape_hit", "sum"), texture_hits=("texture_hit", "sum"),
                trials=("stimulus", "size")).reset_index()
    out["shape_bias"] = bias_ratio(out["shape_hits"], out["texture_hits"])
    out["cue_share"] = (out["shape_hits"] + out["texture_hits"]) / out["trials"]
    rank = out["source"].map({s: i for i, s in enumerate(SHAPE_SOURCE_ORDER)}).fillna(99)
    pref = (out["prompt"] != PRIMARY_PROMPT) & (out["head"] == "16-way zero-shot")
    order = out.assign(_r=rank, _p=pref.astype(int)).sort_values(["checkpoint", "_r", "_p"])
    out["primary"] = False
    out.loc[order.drop_duplicates("checkpoint").index, "primary"] = True
    return out


# --------------------------------------------------------------------------- C-OOD

#: why C-OOD's fine-tuned CLIP rows are left out of calibration
COOD_FT_NOTE = ("mean confidence about 0.002 at about 80% accuracy: the score C-OOD records for "
                "its fine-tuned CLIPs is not a softmax at temperature 1, so confidence minus "
                "accuracy says nothing about calibration (their AUROC ranks by that score)")


#: the training source C-OOD's ImageNet models get: the file names them, nothing more (its
#: models count as standard here, as in the OOD chapter, though some saw more data)
COOD_IMAGENET_SOURCE = "ImageNet (more data not stated)"


def cood_models(confidence: str = "softmax") -> pd.DataFrame:
    """Galil et al.'s C-OOD (ICLR 2023), one row per model for one confidence function
    (``softmax`` = maximum softmax probability): the descriptive columns, ``model`` (C-OOD's
    name), ``id_acc`` (ImageNet top-1, fraction), ``id_avg_conf`` (mean confidence on ImageNet
    val), ``conf_gap`` (``100 * (id_avg_conf - id_acc)``, points: positive = over-confident; a
    lower bound on ECE in absolute value), ``auroc_sev0`` ... ``auroc_sev10`` (OOD AUROC per
    severity level, 0 easiest), ``auroc`` (their mean), ``softmax_ok`` and ``softmax_note``
    (False with the reason for the 7 fine-tuned CLIPs, :data:`COOD_FT_NOTE`; the gap is NaN
    there and for every confidence function other than softmax)."""
    df = pd.read_csv(external.fetch(COOD))
    have = sorted(set(df["confidence function"]))
    if confidence not in have:
        raise ValueError(f"confidence={confidence!r} is not in C-OOD; expected one of {have}.")
    d = df[df["confidence function"] == confidence]
    wide = d.pivot_table(index="model name", columns="severity level", values="ood-auroc")
    wide.columns = [f"auroc_sev{int(c)}" for c in wide.columns]
    wide["auroc"] = wide.mean(axis=1)
    first = d.drop_duplicates("model name").set_index("model name")
    out = wide.join(first[["id-acc", "id_avg_conf"]]).reset_index().rename(
        columns={"model name": "model", "id-acc": "id_acc"})
    rows = []
    for m in out["model"]:
        if m.startswith("CLIP_finetuned_"):
            a = _cood_arch(m.removeprefix("CLIP_finetuned_"))
            rows.append((f"cood/{m}", CLIP_FT_DIRECT, "WIT", a, "1000-class", ""))
        elif m.startswith("CLIP_"):
            a = _cood_arch(m.removeprefix("CLIP_"))
            rows.append((clip_checkpoint("openai", a), CLIP_ZEROSHOT, "WIT", a,
                         "1000-class zero-shot", "C-OOD's templates"))
        elif m.endswith("_torchvision"):
            a = m.removesuffix("_torchvision")
            rows.append((f"torchvision/{a}", STANDARD, "ImageNet-1k", a, "1000-class", ""))
        else:
            rows.append((f"cood/{m}", STANDARD, COOD_IMAGENET_SOURCE, m, "1000-class", ""))
    meta = pd.DataFrame(rows, columns=["checkpoint", "group", "training_source", "arch", "head",
                                       "prompt"])
    out = pd.concat([meta, out], axis=1)
    out["source"] = "C-OOD"
    ft = out["group"] == CLIP_FT_DIRECT
    out["softmax_ok"] = (confidence == "softmax") & ~ft
    out["softmax_note"] = np.where(ft, COOD_FT_NOTE, "" if confidence == "softmax"
                                   else f"confidence function {confidence} is not a probability")
    out["conf_gap"] = np.where(out["softmax_ok"], 100 * (out["id_avg_conf"] - out["id_acc"]), np.nan)
    sev = sorted((c for c in out if c.startswith("auroc_sev")), key=lambda c: int(c[9:]))
    return out[[*DESCRIPTIVE, "model", "id_acc", "id_avg_conf", "conf_gap", "softmax_ok",
                "softmax_note", *sev, "auroc"]]


# --------------------------------------------------------------------------- NINCO

#: NINCO's synthetic "unit test" OOD sets (noise images)
NINCO_UNIT_TESTS = ("Gaussian", "Rademacher", "black", "blobs", "grey", "horizontal_stripes",
                    "low_freq", "low_freq_channelfullscale", "low_freq_colorrange",
                    "low_freq_pixel_perm", "monochrome", "pixel_perm", "tricolour",
                    "tricolour_primary", "uni", "vertical_stripes", "white")


def _ninco_meta(name: str) -> tuple[str, str, str]:
    if name in NINCO_CHECKPOINTS:
        return NINCO_CHECKPOINTS[name]
    more = any(t in name for t in ("21k", "22k", "_ns", "BiT_m", "in21ft1k"))
    return f"ninco/{name}", (MORE_DATA if more else STANDARD), ("more data" if more else "ImageNet-1k")


def ninco_models() -> pd.DataFrame:
    """NINCO's published results (Bitterwolf et al. 2023), every score: one row per (model,
    score, OOD set) with the descriptive columns, ``model`` (NINCO's name), ``score`` (NINCO's
    method: MSP, Energy, MaxLogit, ViM, Mahalanobis, ... and the CLIPs' ``mcm-clip`` and
    ``cosine-clip``), ``ood_set``, ``kind`` (``NINCO class``, ``cleaned subset`` (``*_ood``,
    ``*_full``) or ``unit test``), ``auroc`` and ``fpr95`` (FPR at 95% TPR, ImageNet val
    positive; fractions) and ``id_acc`` (ImageNet top-1, fraction). The pickle is read only
    after its sha256 matched (:func:`clipsafety.external.fetch`)."""
    df = pd.read_pickle(external.fetch(NINCO))
    out = df.rename(columns={"method": "score", "dataset": "ood_set", "fpr": "fpr95",
                             "acc": "id_acc"}).reset_index(drop=True)
    meta = [_ninco_meta(m) for m in out["model"]]
    out["checkpoint"] = [m[0] for m in meta]
    out["group"] = [m[1] for m in meta]
    out["training_source"] = [m[2] for m in meta]
    out["arch"] = out["model"]
    out["head"] = np.where(out["group"] == CLIP_ZEROSHOT, "1000-class zero-shot", "1000-class")
    out["prompt"] = np.where(out["group"] == CLIP_ZEROSHOT, "NINCO's templates", "")
    out["source"] = "NINCO"
    out["kind"] = np.where(out["ood_set"].isin(NINCO_UNIT_TESTS), "unit test",
                           np.where(out["ood_set"].str.endswith(("_ood", "_full")),
                                    "cleaned subset", "NINCO class"))
    return out[[*DESCRIPTIVE, "model", "score", "ood_set", "kind", "auroc", "fpr95", "id_acc"]]


def ninco_per_model(ninco: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (checkpoint, score): mean AUROC and FPR@95 over the 46 NINCO OOD classes its results
    file scores (each class's AUROC against ImageNet val, averaged), and ImageNet accuracy."""
    n = ninco_models() if ninco is None else ninco
    cls = n[n["kind"] == "NINCO class"]
    return cls.groupby(["checkpoint", "model", "group", "training_source", "score"],
                       sort=False).agg(auroc=("auroc", "mean"), fpr95=("fpr95", "mean"),
                                       id_acc=("id_acc", "first"),
                                       n_classes=("ood_set", "nunique")).reset_index()


# --------------------------------------------------------------------------- factors

#: the factor study's name of the kayburns decisions' CLIP -> checkpoint
DECISION_FACTOR_CHECKPOINTS = {"CLIP ViT-B/16 (OpenAI, zero-shot) [Burns]": "openai/ViT-B-16"}


def factor_models(factor_tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Per-factor ImageNet-X accuracies of real models, long: the descriptive columns,
    ``model`` (the source's name), ``collection`` (``imagenet_testbed`` or ``modelvshuman``:
    ImageNet-X's published tables; ``kayburns decisions``: CLIP ViT-B/16's 50,000 ImageNet val
    decisions scored with ImageNet-X's annotations), ``factor``, ``factor_acc`` and
    ``overall_acc`` (fractions), ``primary`` (one collection per checkpoint: ImageNet-X's two
    collections hold the same OpenAI RN50 and ViT-B/32). ``factor_tables``: the factors study's
    long tables (``published_factor_table(collection)`` of each ImageNet-X collection and the
    long part of ``published_decision_factors()``), in the order the primary one is chosen."""
    frames = []
    for long in factor_tables:
        long = long.copy()
        ck = []
        for m, coll in zip(long["model"], long["collection"]):
            if coll == "kayburns decisions":
                if m not in DECISION_FACTOR_CHECKPOINTS:
                    raise KeyError(f"factor decisions of {m!r} have no checkpoint; add it to "
                                   "DECISION_FACTOR_CHECKPOINTS.")
                ck.append(DECISION_FACTOR_CHECKPOINTS[m])
            else:
                prefix = "testbed" if coll == "imagenet_testbed" else f"imagenetx-{coll}"
                ck.append(IMAGENETX_CHECKPOINTS.get(m, f"{prefix}/{m}"))
        long["checkpoint"] = ck
        frames.append(long)
    out = pd.concat(frames, ignore_index=True)
    out["training_source"] = out["source"].fillna("unknown")
    out["arch"] = out["family"]
    out["head"] = "1000-class"
    out["prompt"] = np.where(out["group"] == CLIP_ZEROSHOT, "the collection's templates", "")
    out["source"] = np.where(out["collection"] == "kayburns decisions", "Burns", "ImageNet-X")
    first = out.drop_duplicates("checkpoint")[["checkpoint", "collection"]]
    out["primary"] = out.set_index(["checkpoint", "collection"]).index.isin(
        first.set_index(["checkpoint", "collection"]).index)
    return out[[*DESCRIPTIVE, "model", "collection", "factor", "factor_acc", "overall_acc",
                "primary"]]


# --------------------------------------------------------------------------- open_clip

def openclip_models() -> pd.DataFrame:
    """open_clip's results table (``docs/openclip_results.csv``): one row per zero-shot model
    with the descriptive columns (training source from its pretrained tag,
    :func:`training_source`), ``model`` (``openclip:ARCH@TAG``), ``params`` (millions) and its
    accuracies (fractions) on ``imagenet``, ``v2``, ``sketch``, ``r``, ``a``, ``objectnet``."""
    from clipsafety.published import OPENCLIP_COLUMNS, openclip_results

    oc = openclip_results()
    oc["checkpoint"] = [clip_checkpoint(t, a) for t, a in zip(oc["tag"], oc["arch"])]
    oc["training_source"] = oc["tag"].map(training_source)
    oc["head"] = "1000-class zero-shot"
    oc["prompt"] = "OpenAI's 80 templates"
    oc["source"] = "open_clip"
    return oc[[*DESCRIPTIVE, "model", "params", *OPENCLIP_COLUMNS.values()]]


# --------------------------------------------------------------------------- the per-model table

#: column -> (header, unit, description) of :func:`table`, in order
TABLE_COLUMNS: dict[str, tuple[str, str, str]] = {}


def _col(name, header, unit, text):
    TABLE_COLUMNS[name] = (header, unit, text)


for _c, _h, _u, _t in [
    ("checkpoint", "Checkpoint", "", "canonical key of the weights"),
    ("group", "Kind", "", "zero-shot CLIP, fine-tuned CLIP (1k or 12k→1k), standard, more data, other"),
    ("training_source", "Training data", "", "image-text data of a CLIP; labelled data otherwise"),
    ("imagenet", "ImageNet top-1", "%", "from the first source that reports it"),
    ("er_v2", "Eff. robustness ImageNet-V2", "points", "landscape fit (logit), shift accuracy above the standard models' line"),
    ("er_sketch", "Eff. robustness Sketch", "points", "as above"),
    ("er_r", "Eff. robustness ImageNet-R", "points", "as above"),
    ("er_a", "Eff. robustness ImageNet-A", "points", "as above"),
    ("er_objectnet", "Eff. robustness ObjectNet", "points", "as above"),
    ("er_mean", "Eff. robustness, mean of shifts", "points", "mean over the shifts the model has"),
    ("acc_v2", "ImageNet-V2 top-1", "%", "published accuracy on the shift (matched frequency, 1000 classes)"),
    ("acc_sketch", "ImageNet-Sketch top-1", "%", "as above (1000 classes)"),
    ("acc_r", "ImageNet-R top-1", "%", "as above (its 200 classes)"),
    ("acc_a", "ImageNet-A top-1", "%", "as above (its 200 classes)"),
    ("acc_objectnet", "ObjectNet top-1", "%", "as above (its 113 ImageNet classes)"),
    ("shape_bias", "Shape bias", "%", "cue-conflict, shape / (shape + texture)"),
    ("cue_share", "Cue share", "%", "cue-conflict answers naming shape or texture"),
    ("shape_head", "Shape head", "", "16-way zero-shot or 1000-class mapped"),
    ("cood_auroc", "C-OOD AUROC, MSP", "%", "mean over C-OOD's 11 severities"),
    ("conf_gap", "Confidence gap, C-OOD", "points", "mean confidence minus accuracy on ImageNet val; lower bound on |ECE|"),
    ("ninco_auroc", "NINCO AUROC, MSP or MCM", "%", "mean over the 46 NINCO OOD classes of its results file; MCM for zero-shot CLIPs, MSP otherwise"),
    ("ninco_best_score", "NINCO best score", "", "the score with the highest NINCO AUROC for this model"),
    ("ninco_best_auroc", "NINCO AUROC, best score", "%", "that score's AUROC"),
    ("factor_mean", "ImageNet-X factor accuracy, mean", "%", "mean over the 10 ImageNet-X factors the book uses"),
    *[(f"factor_{f}", f"ImageNet-X {f.replace('_', ' ')} accuracy", "%",
       f"top-1 on ImageNet val images whose top factor is {f.replace('_', ' ')}")
      for f in PAPER_FACTORS],
    ("er_mean_pct", "Eff. robustness percentile in kind", "%", "percentile of the mean effective robustness among models of the same kind"),
    ("shape_bias_pct", "Shape bias percentile in kind", "%", ""),
    ("cood_auroc_pct", "C-OOD AUROC percentile in kind", "%", ""),
    ("conf_gap_pct", "Confidence gap percentile in kind", "%", ""),
    ("sources", "Sources", "", "the files the row's numbers come from"),
]:
    _col(_c, _h, _u, _t)

#: the columns of :func:`table` that hold text; every other column is a float
TEXT_COLUMNS = ("checkpoint", "group", "training_source", "shape_head", "ninco_best_score",
                "sources")
#: metrics :func:`table` places each model's percentile of, within its group
PERCENTILE_METRICS = ("er_mean", "shape_bias", "cood_auroc", "conf_gap")


def landscape_models(er: pd.DataFrame) -> pd.DataFrame:
    """:func:`clipsafety.published.effective_robustness_table` (one row per published model:
    source, model, group, imagenet, ``ER <shift>`` and ``ER mean``, and with
    ``accuracies=True`` the raw ``ACC <shift>``, fractions) keyed by checkpoint, in points:
    ``checkpoint, group, imagenet, er_<shift>, er_mean, acc_<shift>, source``
    (``openclip:ARCH@TAG`` -> ``TAG/ARCH``, ``timm:NAME`` -> ``timm/NAME``, imagenet-testbed's
    ``testbed/NAME``, its CLIPs by :data:`IMAGENETX_CHECKPOINTS`); a model listed at several
    image sizes keeps its first row."""
    need = {"source", "model", "group", "imagenet", "ER mean"}
    missing = sorted(need - set(er.columns))
    if missing:
        raise ValueError(f"effective-robustness table lacks columns {missing}; pass the "
                         "clipsafety.published.effective_robustness_table(points).")
    er = er.copy()
    ck = []
    for m in er["model"]:
        kind, _, name = m.partition(":")
        if kind == "openclip":
            arch, _, tag = name.partition("@")
            ck.append(clip_checkpoint(tag, arch))
        elif kind == "testbed":
            ck.append(IMAGENETX_CHECKPOINTS.get(name, f"testbed/{name}"))
        else:
            ck.append(f"{kind}/{name}")
    er["checkpoint"] = ck
    er = er.drop_duplicates("checkpoint")
    er = er.rename(columns={c: "er_" + c.removeprefix("ER ") for c in er if c.startswith("ER ")})
    er = er.rename(columns={c: "acc_" + c.removeprefix("ACC ") for c in er if c.startswith("ACC ")})
    num = [c for c in er if c.startswith(("er_", "acc_"))]
    er[num] = 100 * er[num]
    er["imagenet"] = 100 * er["imagenet"]
    return er[["checkpoint", "group", "imagenet", *num, "source"]].reset_index(drop=True)


def percentile_of(values: Sequence[float], value: float) -> float:
    """Percent of ``values`` below ``value``, ties counted half (NaN values ignored); NaN when
    none are left."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v) or not np.isfinite(value):
        return np.nan
    return float(100 * ((v < value).sum() + 0.5 * (v == value).sum()) / len(v))


def table(effective_robustness: pd.DataFrame | None = None,
          fork_decisions: pd.DataFrame | None = None,
          factor_tables: Sequence[pd.DataFrame] = ()) -> pd.DataFrame:
    """One row per real checkpoint with published evidence, the columns of
    :data:`TABLE_COLUMNS` (their units: ``%`` and ``points`` as stated there; percentiles are
    within the model's group, among the models that have the metric).

    Evidence joined by checkpoint: effective robustness per shift (the landscape study's
    :func:`clipsafety.published.effective_robustness_table`, :func:`landscape_models`), shape bias and cue share from
    the primary cue-conflict row (:func:`shape_models`; vlm_shapebias and Beyond-INet always,
    the model-vs-human forks when ``fork_decisions`` is given), C-OOD's softmax AUROC and
    confidence gap (:func:`cood_models`; the gap empty where ``softmax_ok`` is False), NINCO's
    AUROC (:func:`ninco_per_model`), ImageNet-X factor accuracy (:func:`factor_models` of
    ``factor_tables``, primary collection). The study outputs are passed in, because the
    library sits below the studies: the models chapter (``analyses/models.py``) shows how, and
    records the result as its ``models`` table."""
    land = (landscape_models(effective_robustness) if effective_robustness is not None else
            pd.DataFrame(columns=["checkpoint", "group", "imagenet", "er_mean", "source"]))
    shape = shape_models(shape_trials(fork_decisions))
    prim = shape[shape["primary"]].set_index("checkpoint")
    n_shape = shape.groupby("checkpoint")["source"].agg(lambda s: sorted(set(s)))
    cood = cood_models("softmax").set_index("checkpoint")
    ninco = ninco_per_model()
    mine = np.where(ninco["group"] == CLIP_ZEROSHOT, "mcm-clip", "MSP")
    ni = ninco[ninco["score"] == mine].set_index("checkpoint")
    best = ninco.sort_values("auroc", ascending=False).drop_duplicates("checkpoint").set_index("checkpoint")
    fac = (factor_models(factor_tables) if len(factor_tables) else
           pd.DataFrame(columns=["checkpoint", "factor_acc", "group", "training_source",
                                 "overall_acc", "source", "primary"]))
    fac = fac[fac["primary"].astype(bool)]
    fac_mean = fac.groupby("checkpoint").agg(factor_mean=("factor_acc", "mean"),
                                             fac_group=("group", "first"),
                                             fac_src=("training_source", "first"),
                                             fac_overall=("overall_acc", "first"),
                                             fac_from=("source", "first"))
    oc = openclip_models().drop_duplicates("checkpoint").set_index("checkpoint")

    allk = pd.Index(sorted(set(land["checkpoint"]) | set(prim.index) | set(cood.index)
                           | set(ni.index) | set(fac_mean.index)))
    t = pd.DataFrame(index=allk)
    L = land.set_index("checkpoint").assign(training_source=np.nan)
    # group and training source: the first source that states them
    group = pd.Series(np.nan, index=allk, dtype=object)
    srcs = pd.Series(np.nan, index=allk, dtype=object)
    for g, s in ((prim["group"], prim["training_source"]), (cood["group"], cood["training_source"]),
                 (ni["group"], ni["training_source"]), (fac_mean["fac_group"], fac_mean["fac_src"]),
                 (L["group"], L["training_source"])):
        group = group.fillna(g.reindex(allk))
        srcs = srcs.fillna(s.reindex(allk))
    srcs = srcs.fillna(oc["training_source"].reindex(allk))
    is_clip = group.isin([CLIP_ZEROSHOT])
    srcs = srcs.where(~(is_clip & srcs.isna()), pd.Series(allk.str.split("/").str[0], index=allk)
                      .map(training_source))
    # the rest by kind: a fine-tuned CLIP's image-text data from its timm tag
    # (``.openai_ft_in1k``, ``.clip_laion2b_augreg_ft_in1k``), ImageNet models by their group
    tag = pd.Series([k.partition(".")[2].removeprefix("clip_") for k in allk], index=allk)
    ft = group.isin([CLIP_FT_DIRECT, CLIP_FT_2STAGE]) & srcs.isna()
    srcs = srcs.where(~ft, tag.map(training_source))
    srcs = srcs.fillna(group.map({STANDARD: "ImageNet-1k", MORE_DATA: "more data"}))
    t["group"] = group
    t["training_source"] = srcs.fillna("unknown")
    imagenet = L["imagenet"].reindex(allk)
    for s in (cood["id_acc"] * 100, ni["id_acc"] * 100, fac_mean["fac_overall"] * 100):
        imagenet = imagenet.fillna(s.reindex(allk))
    t["imagenet"] = imagenet
    for c in [c for c in L if c.startswith(("er_", "acc_"))]:
        t[c] = L[c].reindex(allk)
    t["shape_bias"] = 100 * prim["shape_bias"].reindex(allk)
    t["cue_share"] = 100 * prim["cue_share"].reindex(allk)
    t["shape_head"] = prim["head"].reindex(allk)
    t["cood_auroc"] = 100 * cood["auroc"].reindex(allk)
    t["conf_gap"] = cood["conf_gap"].reindex(allk)
    t["ninco_auroc"] = 100 * ni["auroc"].reindex(allk)
    t["ninco_best_score"] = best["score"].reindex(allk)
    t["ninco_best_auroc"] = 100 * best["auroc"].reindex(allk)
    t["factor_mean"] = 100 * fac_mean["factor_mean"].reindex(allk)
    if len(fac):
        per = fac.pivot_table(index="checkpoint", columns="factor", values="factor_acc")
        for f in PAPER_FACTORS:
            if f in per:
                t[f"factor_{f}"] = 100 * per[f].reindex(allk)
    for m in PERCENTILE_METRICS:
        col = t[m]
        t[f"{m}_pct"] = [percentile_of(col[t["group"] == g], v) for g, v in zip(t["group"], col)]
    sources = []
    land_src = L["source"].reindex(allk)
    for k in allk:
        s = []
        if isinstance(land_src.get(k), str):
            s.append(land_src[k])
        s += n_shape.get(k, [])
        s += ["C-OOD"] if k in cood.index else []
        s += ["NINCO"] if k in ni.index else []
        if k in fac_mean.index:
            s.append(fac_mean.loc[k, "fac_from"])
        sources.append("; ".join(dict.fromkeys(s)))
    t["sources"] = sources
    t = t.rename_axis("checkpoint").reset_index()
    for c in t.columns:
        if c not in TEXT_COLUMNS:
            t[c] = pd.to_numeric(t[c], errors="coerce").astype(float)
    return t[[c for c in TABLE_COLUMNS if c in t]]


def readable(t: pd.DataFrame) -> pd.DataFrame:
    """:func:`table` with readable headers (units in brackets) and group labels."""
    out = t.assign(group=t["group"].map(lambda g: GROUPS.get(g, g)))
    return out.rename(columns={c: (f"{h} ({u})" if u else h)
                               for c, (h, u, _) in TABLE_COLUMNS.items()})


def recorded_table() -> pd.DataFrame:
    """The per-model table as the models chapter last recorded it (its ``models`` output,
    :mod:`clipsafety.outputs`), every source joined; when the chapter has not run, the
    :func:`table` of the readers alone (no effective robustness, forks or factors)."""
    from clipsafety import outputs

    rec = outputs.read(["models"]).get("models")
    if rec and rec.get("tables", {}).get("models"):
        return pd.DataFrame(rec["tables"]["models"])
    return table()


def percentile(metric: str, value: float, group: str | None = None,
               models: pd.DataFrame | None = None) -> float:
    """Where ``value`` of ``metric`` (a column of :func:`table`, in its unit) sits among the
    published models of ``group`` (a group id; all models when None): percent of models below,
    ties counted half. ``models``: a :func:`table`; by default :func:`recorded_table`."""
    t = recorded_table() if models is None else models
    if metric not in t:
        raise KeyError(f"{metric!r} is not a column of the per-model table; expected one of "
                       f"{[c for c in t.columns if t[c].dtype.kind == 'f']}.")
    part = t if group is None else t[t["group"] == group]
    return percentile_of(part[metric], value)


def nearest(metric: str, value: float, k: int = 5, group: str | None = None,
            models: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ``k`` published models whose ``metric`` is closest to ``value`` (rows of
    :func:`table`, with ``distance`` = |metric - value| in the metric's unit); ``models`` as in
    :func:`percentile`."""
    t = recorded_table() if models is None else models
    if metric not in t:
        raise KeyError(f"{metric!r} is not a column of the per-model table.")
    if k < 1:
        raise ValueError(f"k={k}; expected at least 1 model.")
    part = t if group is None else t[t["group"] == group]
    part = part[np.isfinite(part[metric].astype(float))]
    d = (part[metric].astype(float) - float(value)).abs()
    return part.assign(distance=d).sort_values(["distance", "checkpoint"]).head(k)

