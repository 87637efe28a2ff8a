"""Tiny architectures of the zoo: timm models at small widths, registered by name.

Three families, each at two widths (``xs``, ``s``), for 32x32 inputs:
``synth_resnet_{xs,s}`` (timm ``ResNet`` with BasicBlocks, deep stride-2 stem, no stem max-pool),
``synth_convnext_{xs,s}`` (timm ``ConvNeXt``, patch-2 stem) and ``synth_vit_{xs,s}``
(timm ``VisionTransformer``, patch 4). The same registered names serve the supervised models
(``timm.create_model(name, num_classes=10)``) and the CLIP image towers (open_clip's
``timm_model_name`` in the CLIP config), so contrastive and supervised models of a matched
pair share the image architecture exactly.
"""

from __future__ import annotations

from timm.models import register_model
from timm.models.convnext import ConvNeXt
from timm.models.resnet import BasicBlock, ResNet
from timm.models.vision_transformer import VisionTransformer
from torch import nn

WIDTHS = {"xs": 12, "s": 16}
FAMILIES = {"resnet": "ResNet", "convnext": "ConvNeXt", "vit": "ViT"}


def _cfg(kw):
    return {"input_size": (3, 32, 32), "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25),
            "num_classes": kw.get("num_classes", 1000), "pool_size": None,
            "interpolation": "bilinear", "crop_pct": 1.0}


def _clean(kw):
    return {k: v for k, v in kw.items()
            if k not in ("pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")}


def _resnet(w: int, **kw) -> nn.Module:
    kw = _clean(kw)
    m = ResNet(BasicBlock, layers=(1, 1, 1, 1), channels=(w, 2 * w, 4 * w, 4 * w),
               stem_width=w // 2, stem_type="deep", **kw)
    m.maxpool = nn.Identity()  # 32x32 inputs: the stride-2 deep stem is the only stem downsampling
    m.pretrained_cfg = m.default_cfg = _cfg(kw)
    return m


def _convnext(w: int, **kw) -> nn.Module:
    kw = _clean(kw)
    m = ConvNeXt(depths=(1, 1, 1, 1), dims=(w, 2 * w, 4 * w, 4 * w), patch_size=2, kernel_sizes=5,
                 ls_init_value=None, **kw)
    m.pretrained_cfg = m.default_cfg = _cfg(kw)
    return m


def _vit(w: int, **kw) -> nn.Module:
    kw = _clean(kw)
    dim = {12: 48, 16: 64}[w]
    m = VisionTransformer(img_size=32, patch_size=4, embed_dim=dim, depth=3, num_heads=dim // 16,
                          mlp_ratio=2.0, global_pool="avg", class_token=False, **kw)
    m.pretrained_cfg = m.default_cfg = _cfg(kw)
    return m


@register_model
def synth_resnet_xs(pretrained=False, **kw):
    return _resnet(WIDTHS["xs"], **kw)


@register_model
def synth_resnet_s(pretrained=False, **kw):
    return _resnet(WIDTHS["s"], **kw)


@register_model
def synth_convnext_xs(pretrained=False, **kw):
    return _convnext(WIDTHS["xs"], **kw)


@register_model
def synth_convnext_s(pretrained=False, **kw):
    return _convnext(WIDTHS["s"], **kw)


@register_model
def synth_vit_xs(pretrained=False, **kw):
    return _vit(WIDTHS["xs"], **kw)


@register_model
def synth_vit_s(pretrained=False, **kw):
    return _vit(WIDTHS["s"], **kw)


def clip_config(arch: str, embed_dim: int = 64, vocab_size: int = 256, context_length: int = 16) -> dict:
    """An open_clip model config (``CLIP(**cfg)``) with a registered timm image tower and a
    2-layer word-level text transformer (pooled at the end token, id 2)."""
    return {
        "embed_dim": embed_dim,
        "vision_cfg": {"timm_model_name": arch, "timm_model_pretrained": False,
                       "timm_pool": "avg", "timm_proj": "linear", "image_size": 32},
        "text_cfg": {"context_length": context_length, "vocab_size": vocab_size, "width": 64,
                     "heads": 4, "layers": 2, "mlp_ratio": 2.0, "pool_type": "eos", "eos_id": 2,
                     "pad_id": 0},
    }
