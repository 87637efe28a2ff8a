"""Build data/catalog/models.csv: the paper's study as data.

    .venv/bin/python data/catalog/build_catalog.py

Rows come from the libraries' own registries, never typed in:

- clip-zeroshot: every ``(arch, tag)`` of ``open_clip.list_pretrained()``.
- clip-ft-direct / clip-ft-2stage: timm models whose weights are CLIP (image-text) pretrained
  and then fine-tuned on ImageNet-1k directly (``*_ft_in1k``) or via ImageNet-12k/22k
  (``*_ft_in12k_in1k``).
- standard / more-data / other-robust: timm models with a 1000-class ImageNet head. One row
  per (architecture, group): timm's first listed tag for it.

Groups and families come from :mod:`clipsafety.groups` (``timm_group``, ``family_of``), the
rules every table of the book uses.

``source`` and ``samples`` (number of training images / image-text pairs of the pretraining
set, not samples seen) follow the explicit rules below; where the size is not known to us it
is left empty and the ``notes`` column says so. ``samples_seen`` is parsed from open_clip
tags such as ``s34b`` (34 billion).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from clipsafety.groups import (
    CLIP_ZEROSHOT,
    EXCLUDED,
    MORE_DATA,
    family_of,
    is_image_text,
    timm_group,
)

OUT = Path(__file__).with_name("models.csv")

#: open_clip tag -> (source, dataset size); first matching rule wins
CLIP_SOURCES = [
    (r"^openai$", "WIT", 400e6, ""),
    (r"^laion400m", "LAION-400M", 400e6, ""),
    (r"^(frozen_)?laion5b", "LAION-5B", 5.85e9, ""),
    (r"^mscoco_finetuned_laion2b", "LAION-2B", 2.32e9, "CoCa captioner fine-tuned on MS-COCO"),
    (r"^laion2b", "LAION-2B", 2.32e9, ""),
    (r"^laion_aesthetic", "LAION-2B", None, "LAION-Aesthetics subset of LAION-2B; size not recorded"),
    (r"^datacomp_xl|^datacomp_s34b|^datacomp1b", "DataComp", 1.4e9, "DataComp-1B"),
    (r"^datacomp_l_", "DataComp", 140e6, "DataComp-L filtered"),
    (r"^datacomp_m_", "DataComp", 14e6, "DataComp-M filtered"),
    (r"^datacomp_s_", "DataComp", 1.4e6, "DataComp-S filtered"),
    (r"^commonpool_xl_s", "CommonPool", 12.8e9, "unfiltered pool"),
    (r"^commonpool_l_s", "CommonPool", 1.28e9, "unfiltered pool"),
    (r"^commonpool_m_s", "CommonPool", 128e6, "unfiltered pool"),
    (r"^commonpool_s_s", "CommonPool", 12.8e6, "unfiltered pool"),
    (r"^commonpool_(\w+?)_(basic|text|image|clip|laion)_", "CommonPool", None,
     "filtered subset of the pool; size not recorded"),
    (r"^datacompdr", "DataComp", None, "DataCompDR (reinforced DataComp); size not recorded"),
    (r"^dfn5b", "DFN", 5e9, ""),
    (r"^(dfn2b|dfndr2b)", "DFN", 2e9, ""),
    (r"^metaclip_400m", "MetaCLIP", 400e6, ""),
    (r"^metaclip_fullcc", "MetaCLIP", 2.5e9, ""),
    (r"^metaclip", "MetaCLIP", None, "size not recorded"),
    (r"^merged2b", "Merged-2B", 2e9, "LAION-2B + COYO-700M (EVA-CLIP)"),
    (r"^webli", "WebLI", 10e9, ""),
    (r"^yfcc15m", "YFCC", 15e6, ""),
    (r"^cc12m", "CC12M", 12e6, ""),
    (r".*", "other", None, "training data not recorded by this catalog"),
]

#: timm tag -> (source, dataset size); first match wins (specific before general)
TIMM_SOURCES = [
    (r"openai", "WIT", 400e6),
    (r"^clip_ft_in1k", "LAION-400M", 400e6),  # EVA-CLIP giant (EVA-01), pretrained on LAION-400M
    (r"laiona", "LAION-2B", None),  # LAION-Aesthetics subset
    (r"laion2b|clip_laion", "LAION-2B", 2.32e9),
    (r"laion400m", "LAION-400M", 400e6),
    (r"dfn2b", "DFN", 2e9),
    (r"dfn5b", "DFN", 5e9),
    (r"metaclip_2pt5b", "MetaCLIP", 2.5e9),
    (r"metaclip_400m", "MetaCLIP", 400e6),
    (r"datacomp", "DataComp", 1.4e9),
    (r"webli", "WebLI", 10e9),
    (r"swag", "IG-3.6B", 3.6e9),
    (r"ig1b|seer", "Instagram-1B", 940e6),
    (r"yfcc100m", "YFCC-100M", 100e6),
    (r"jft", "JFT-300M", 300e6),
    (r"lvd1689m", "LVD-1689M", 1.689e9),
    (r"lvd142m", "LVD-142M", 142e6),
    (r"m38m", "Merged-38M", 38e6),
    (r"m30m", "Merged-30M", 30e6),
    (r"in21k|in22k|inw21k", "ImageNet-21k", 14.2e6),
    (r"in12k", "ImageNet-12k", 12e6),
    (r"ssld_6m", "ImageNet-1k + 6M unlabelled", None),
    (r"in1k|^ft_in1k$", "ImageNet-1k", 1.28e6),
    (r".*", "other", None),
]

def samples_seen(tag: str):
    m = re.search(r"(?:^|_)s(\d+)([mb])(?:_|$)", tag)
    return None if not m else float(m.group(1)) * (1e6 if m.group(2) == "m" else 1e9)


def _first(rules, tag):
    for rule in rules:
        if re.search(rule[0], tag):
            return rule[1:]
    raise AssertionError(tag)


def clip_rows() -> list[dict]:
    import open_clip

    rows = []
    for arch, tag in open_clip.list_pretrained():
        source, n, note = _first(CLIP_SOURCES, tag)
        vc = (open_clip.get_model_config(arch) or {}).get("vision_cfg", {})
        res = vc.get("image_size")
        res = res[0] if isinstance(res, (list, tuple)) else res
        rows.append({"id": f"openclip:{arch}@{tag}", "group": CLIP_ZEROSHOT, "family": family_of(arch),
                     "source": source, "samples": n, "resolution": res, "arch": arch,
                     "pretrained_tag": tag, "samples_seen": samples_seen(tag),
                     "loss": "sigmoid" if "SigLIP" in arch else
                     ("contrastive+captioning" if arch.startswith("coca") else "contrastive"),
                     "library": "open_clip", "notes": note})
    return rows


def timm_rows() -> list[dict]:
    import timm
    from timm.models import get_pretrained_cfg

    seen: set[tuple[str, str]] = set()
    rows = []
    for name in timm.list_models(pretrained=True):
        if "." not in name or name.startswith("test_"):
            continue
        arch, tag = name.split(".", 1)
        cfg = get_pretrained_cfg(name)
        if cfg is None or cfg.num_classes != 1000 or "in1k" not in tag:
            continue
        group = timm_group(name)  # clipsafety.groups: the one set of group rules
        if group == EXCLUDED or (group == MORE_DATA and is_image_text(arch, tag)):
            continue  # image-text weights without an ImageNet fine-tune are not classifiers here
        if not group.startswith("clip") and (arch, group) in seen:
            continue  # one classifier per (architecture, group): timm's first listed tag
        seen.add((arch, group))
        source, n = _first(TIMM_SOURCES, tag)
        rows.append({"id": f"timm:{name}", "group": group, "family": family_of(arch), "source": source,
                     "samples": n, "resolution": int(cfg.input_size[-1]), "arch": arch,
                     "pretrained_tag": tag, "samples_seen": None, "loss": "cross-entropy",
                     "library": "timm", "notes": "" if n else "training data size not recorded"})
    return rows


def build() -> pd.DataFrame:
    df = pd.DataFrame(clip_rows() + timm_rows())
    df["samples"] = df["samples"].astype("float64")
    return df


if __name__ == "__main__":
    df = build()
    df.to_csv(OUT, index=False)
    print(f"wrote {OUT} ({len(df)} rows)")
    print(df.groupby("group").size().to_string())
