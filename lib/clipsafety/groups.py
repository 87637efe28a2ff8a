"""Model groups and families: the ids, their order and labels, and every rule that assigns them.

This is the one home of the group vocabulary. Catalogs (``data/catalog/models.csv``, built by
``data/catalog/build_catalog.py`` with these rules; ``data/zoo/catalog.csv``), the published
tables (timm, imagenet-testbed, ImageNet-X) and ids that no catalog lists all get their group
from the functions here, so one model never has two groups. Colours and markers live in
:mod:`clipsafety.style`.

Groups (the paper's, plus two for the book's own bookkeeping):

============================  ========================================================
``clip-zeroshot``             zero-shot CLIP (an image-text model with a text head)
``clip-ft-direct``            CLIP image tower fine-tuned on ImageNet-1k
``clip-ft-2stage``            CLIP fine-tuned on ImageNet-12k/22k, then ImageNet-1k
``standard``                  supervised on ImageNet-1k only (the baseline group)
``more-data``                 supervised or self-supervised pretraining on more data
``other-robust``              robustness interventions (adversarial training, ...)
``human``                     human observers (cue-conflict)
``reference`` / ``excluded``  the zoo's reference models / models left out of a study
============================  ========================================================
"""

from __future__ import annotations

import re

CLIP_ZEROSHOT = "clip-zeroshot"
CLIP_FT_DIRECT = "clip-ft-direct"
CLIP_FT_2STAGE = "clip-ft-2stage"
STANDARD = "standard"
MORE_DATA = "more-data"
OTHER_ROBUST = "other-robust"
HUMAN = "human"
REFERENCE = "reference"
EXCLUDED = "excluded"

#: group id -> label shown in tables and charts, in display order
GROUPS: dict[str, str] = {
    CLIP_ZEROSHOT: "zero-shot CLIP",
    CLIP_FT_DIRECT: "CLIP fine-tuned (1k)",
    CLIP_FT_2STAGE: "CLIP fine-tuned (12k→1k)",
    STANDARD: "standard ImageNet",
    MORE_DATA: "more training data",
    OTHER_ROBUST: "other robustness interventions",
    HUMAN: "human observers",
}
GROUP_ORDER: list[str] = list(GROUPS)
#: the model groups a study runs (``models="zoo"`` / ``"real"`` keep these)
MODEL_GROUPS: tuple[str, ...] = (CLIP_ZEROSHOT, CLIP_FT_DIRECT, CLIP_FT_2STAGE, STANDARD,
                                 MORE_DATA, OTHER_ROBUST)
#: the group whose trend defines effective robustness
BASELINE = STANDARD
#: models trained on ImageNet labels without image-text pretraining
IMAGENET_GROUPS: tuple[str, ...] = (STANDARD, MORE_DATA)
#: zero-shot CLIPs fine-tuned on ImageNet
FT_GROUPS: tuple[str, ...] = (CLIP_FT_DIRECT, CLIP_FT_2STAGE)


def group_label(group: str) -> str:
    """Label of a group id (unknown ids are shown as they are)."""
    return GROUPS.get(group, group)


# --------------------------------------------------------------------------- timm weights

#: a timm pretrained tag (or architecture) that names image-text (CLIP-style) pretraining
IMAGE_TEXT = re.compile(
    r"(^|_)(clip|openai|laion\w*|dfn\w*|metaclip\w*|datacomp\w*|webli|siglip)")
#: a tag that names adversarial training: ``adv_in1k``, ``ens_adv_in1k``, AdvProp's ``ap_in1k``
ADVERSARIAL = re.compile(r"(^|_)(adv|ens_adv|ap)_in1k")
#: a tag that names pretraining on more data than ImageNet-1k (labelled, weakly labelled or
#: unlabelled extra images). Self-supervised pretraining on ImageNet-1k itself (``fcmae``,
#: ``mae_in1k``), timm's own recipes (``sw_``, ``bt_``, ``c2ns``, ``cvnets``) and
#: distillation are ImageNet-1k only, so not more data.
MORE_DATA_TAG = re.compile(
    r"in21k|in22k|inw21k|in22ft1k|in12k|ig1b|wsl|swsl|ssl_yfcc|yfcc100m|jft|lvd|m38m|m30m"
    r"|seer|swag|sa1b|bamboo|ssld_6m|ssld_stage|ogvl|laion|webli|merged2b")


def is_image_text(arch: str, tag: str) -> bool:
    """Whether a timm weight ``arch.tag`` is image-text (CLIP-style) pretrained."""
    return bool(IMAGE_TEXT.search(tag)) or "siglip" in arch or "_clip_" in arch


def timm_group(name: str) -> str:
    """Group of a timm weight ``arch.tag`` (``timm:`` prefix allowed), from its name.

    Rules, in order:

    1. timm's tiny ``test_*`` networks: ``excluded``;
    2. image-text pretraining (:func:`is_image_text`: clip, openai, laion*, dfn*, metaclip*,
       datacomp*, webli, siglip): fine-tuned on ImageNet-1k after ImageNet-12k/22k
       (``ft_in12k``, ``in12k_in1k``, ``in22k_in1k``) -> ``clip-ft-2stage``; fine-tuned on
       ImageNet-1k (``ft_in1k``) -> ``clip-ft-direct``; otherwise ``more-data``;
    3. adversarial training (:data:`ADVERSARIAL`: ``adv_in1k``, ``ens_adv_in1k``, AdvProp's
       ``ap_in1k``) -> ``other-robust``;
    4. extra pretraining data or self-supervised pretraining (:data:`MORE_DATA_TAG`: in21k,
       in22k, in12k, IG, JFT, SWSL/SSL, SEER, LVD, SWAG, YFCC, MAE, DINO, ...) -> ``more-data``;
    5. otherwise (ImageNet-1k only: ``in1k``, ``tv_in1k``, ``a1_in1k``, ``ra2_in1k``, no tag)
       -> ``standard``. Distillation from a teacher trained on more data counts as standard.
    """
    name = name.removeprefix("timm:")
    arch, _, tag = name.partition(".")
    if arch.startswith("test_"):
        return EXCLUDED
    if is_image_text(arch, tag):
        if "in1k" in tag and re.search(r"ft_in12k|in12k_in1k|in22k_in1k", tag):
            return CLIP_FT_2STAGE
        if "ft_in1k" in tag:
            return CLIP_FT_DIRECT
        return MORE_DATA
    if ADVERSARIAL.search(tag):
        return OTHER_ROBUST
    if MORE_DATA_TAG.search(tag):
        return MORE_DATA
    return STANDARD


def group_of_id(model_id: str) -> str:
    """Group of a model id that no catalog lists: ``openclip:*`` -> ``clip-zeroshot``;
    ``timm:NAME`` -> :func:`timm_group`; anything else -> ``standard``."""
    source, _, name = model_id.partition(":")
    if source == "openclip":
        return CLIP_ZEROSHOT
    if source == "timm":
        return timm_group(name.split("@", 1)[0])
    return STANDARD


# --------------------------------------------------------------------------- published tables

_TESTBED_ZEROSHOT = re.compile(r"_clip_zeroshot$")
_TESTBED_MORE_DATA = re.compile(
    r"^instagram-|^FixResNeXt101_32x48d|^BiT-M-.*-ILSVRC2012$|^vit_|noisystudent|_swsl$|_ssl$|"
    r"jft-300M|tencent-ml-images|imagenet11k|imagenet21k"
)
_TESTBED_ROBUST = re.compile(
    r"adv|eps|robust|smoothing|denoise|augmix|deepaugment|SIN|cutmix|mixup|cutout|_lpf\d|"
    r"_aws$|rotation|greyscale"
)
_TESTBED_EXCLUDED = re.compile(
    r"subsample|_epochs$|identity32|lstsq|linear_probe|nonfinetuned|vtab|swav|simsiam|"
    r"simclr|random_forests|one_nn|FixResNet50_no_adaptation|resnet18_100k"
)


#: imagenet-testbed name rules, in order: the first pattern that matches decides
_TESTBED_RULES = [(_TESTBED_ZEROSHOT, CLIP_ZEROSHOT), (_TESTBED_EXCLUDED, EXCLUDED),
                  (_TESTBED_MORE_DATA, MORE_DATA), (_TESTBED_ROBUST, OTHER_ROBUST)]


def testbed_group(model: str) -> str:
    """Group of an imagenet-testbed model name (the testbed CSV carries no metadata).

    ``clip-zeroshot`` for ``*_clip_zeroshot``; ``excluded`` for training-curve checkpoints,
    subsampled ImageNet, linear probes of self-supervised models and non-neural baselines;
    ``more-data`` for Instagram, BiT-M (21k), ViT (21k), Noisy Student (JFT), SWSL/SSL,
    JFT-300M, Tencent ML-Images, ImageNet-11k/21k models; ``other-robust`` for adversarial
    training, randomized smoothing, augmentation interventions (AugMix, DeepAugment,
    Stylized-ImageNet, CutMix, Mixup, Cutout, corruption-trained ``*_aws``, rotation) and
    anti-aliasing (lpf); ``standard`` otherwise.
    """
    for pattern, group in _TESTBED_RULES:
        if pattern.search(model):
            return group
    return STANDARD


#: zero-shot CLIP models in ImageNet-X's published tables: name -> (family, training source);
#: all are OpenAI CLIP trained on WIT (model-vs-human's ``clip`` is ViT-B/32)
IMAGENETX_CLIP: dict[str, tuple[str, str]] = {
    "resnet50_clip_zeroshot": ("ResNet", "WIT"),
    "vit_b_32_clip_zeroshot": ("ViT", "WIT"),
    "clip": ("ViT", "WIT"),
    "clipRN50": ("ResNet", "WIT"),
}

_IMAGENETX_TYPES = {
    "STANDARD": STANDARD,
    "MORE_DATA": MORE_DATA,
    "ROBUST_INTV": OTHER_ROBUST,
    "LP_ADV": OTHER_ROBUST,
}


def imagenetx_group(name: str) -> tuple[str | None, str]:
    """Group of a model named in ImageNet-X's published tables, and the rule that decided it.

    1. the zero-shot CLIP models (:data:`IMAGENETX_CLIP`) -> ``clip-zeroshot``;
    2. ImageNet-X's own model types (``imagenet_x.model_types.model_types_map``): supervised
       on ImageNet-1K -> ``standard``, on more data -> ``more-data``, robustness interventions
       and Lp-adversarial training -> ``other-robust``; self-supervised, low-accuracy,
       random-feature, pixel and nearest-neighbour models -> excluded (``None``);
    3. model-vs-human names the map lacks: ``*_l2_eps*``, ``*SIN*`` and ``*_clip_*_labels``
       (a ResNet-50 trained on ImageNet with CLIP-made labels, not zero-shot CLIP) ->
       ``other-robust``; ``BiTM*``, ``*swsl*``, ``*ssl*``, ``*noisy_student*`` and timm's
       ``vit_*`` (ImageNet-21k pretraining) -> ``more-data``; self-supervised names (SimCLR,
       MoCo, InsDis, PIRL, InfoMin) -> excluded; every other name -> ``standard``.
    """
    from imagenet_x.model_types import SELFSUPERVISED_MODELS, model_types_map

    if name in IMAGENETX_CLIP:
        return CLIP_ZEROSHOT, "zero-shot CLIP (rule 1)"
    if name in model_types_map:
        t = model_types_map[name].name
        return _IMAGENETX_TYPES.get(t), f"ImageNet-X model type {t} (rule 2)"
    low = name.lower()
    if name in SELFSUPERVISED_MODELS or re.search(r"simclr|moco|insdis|pirl|infomin", low):
        return None, "self-supervised (rule 3)"
    if "_l2_eps" in low or "sin" in low.split("_") or "clip" in low:
        return OTHER_ROBUST, "robustness intervention (rule 3)"
    if re.search(r"bitm|swsl|ssl|noisy_student|^vit_", low):
        return MORE_DATA, "more training data (rule 3)"
    return STANDARD, "ImageNet-1K supervised (rule 3)"


# --------------------------------------------------------------------------- families

#: architecture-name pattern (matched at the start) -> family; first match wins
FAMILIES: list[tuple[str, str]] = [
    ((r"^(RN|resnet|resnext|wide_resnet|seresnet|seresnext|ecaresnet|resnetrs|resnetv2|skresnet|"
      r"gcresnet|resnest|res2net|ig_resnext|ssl_resnext|swsl_resnext|legacy_seresnet|"
      r"inception_resnet)"), "ResNet"),
    (r"^convnext", "ConvNeXt"),
    ((r"^(ViT|vit|deit|beit|eva|EVA|coca_ViT|PE-Core|roberta-ViT|xlm-roberta|nllb|flexivit|cait|"
      r"xcit|vitamin|ViTamin)"), "ViT"),
    (r"^swin", "Swin"),
    ((r"^(efficientnet|tf_efficientnet|mobilenet|tf_mobilenet|mnasnet|fbnet|mixnet|tf_mixnet|"
      r"efficientnetv2|tinynet|lcnet|ghostnet)"), "EfficientNet/MobileNet"),
    (r"^(regnet|nf_regnet|nfnet|dm_nfnet|nf_resnet)", "RegNet/NFNet"),
    (r"^(MobileCLIP|mobileclip|fastvit)", "MobileCLIP/FastViT"),
    ((r"^(densenet|vgg|alexnet|inception|googlenet|dpn|xception|dla|hrnet|cspnet|cs3|darknet|"
      r"csp|rexnet|repvgg|mobileone|hgnet)"), "other CNN"),
    (r"^(mixer|gmlp|resmlp)", "MLP"),
]


def source_side(source) -> str | None:
    """``"LAION"`` or ``"WIT"`` for a CLIP training source name (``LAION-400M``,
    ``laion-like``; ``WIT``, ``wit-like``, ``openai``), None for any other (``wit-narrow``:
    WIT-like captions on the labelled set's pictures, not WIT-like data). The two sides of the
    paper's LAION-vs-WIT claims (factors and shape bias)."""
    s = str(source).lower()
    if s.startswith("laion"):
        return "LAION"
    if s in ("wit", "wit-like", "openai"):
        return "WIT"
    return None


def family_of(name: str) -> str:
    """Architecture family of a model: an id (``timm:convnext_tiny.fb_in1k``), an open_clip or
    timm architecture, or a name in a published table.

    Rules, in order: the architecture (prefix and tag removed) matches a pattern of
    :data:`FAMILIES` at its start; otherwise its leading word (``other`` if none).
    """
    arch = name.split(":", 1)[-1].split("@", 1)[0].split(".", 1)[0]
    for pat, fam in FAMILIES:
        if re.match(pat, arch):
            return fam
    m = re.match(r"[A-Za-z]+", arch)
    return m.group(0) if m else "other"


def family_of_id(model_id: str) -> str:
    """Family of a model id that no catalog lists (:func:`family_of`)."""
    return family_of(model_id)
