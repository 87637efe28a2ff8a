"""Sources: distributions over attributes, configured in the same terms for every source.

A :class:`WorldConfig` says how often each nuisance takes an unusual value, how strong the
categories' characteristic colour and pattern are (the spurious cue), and how captions are
written. The labelled set (the ImageNet analogue) and the caption sources (the WIT / LAION
analogues) are all ``WorldConfig`` objects, so the zoo can cross objective x data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from clipsafety.synth.world import (
    ATTRIBUTE_COLUMNS,
    BACKGROUNDS,
    CATEGORIES,
    PATTERNS,
    STYLES,
)


@dataclass(frozen=True)
class WorldConfig:
    """Attribute distribution of one source / evaluation condition.

    Probabilities ``p_*`` are per-sample chances of the unusual value of a nuisance;
    ``cue_strength`` is the chance that the object wears its category's characteristic
    colour (and, independently, its characteristic pattern). ``categories`` lists the shape
    kinds drawn (default: the 10 categories).
    """

    cue_strength: float = 0.8
    subtype_probs: tuple = (0.6, 0.25, 0.15)
    p_pose: float = 0.1
    p_small: float = 0.08
    p_large: float = 0.08
    p_partial: float = 0.05
    p_deform: float = 0.08
    p_grain: float = 0.08
    background_probs: tuple = (0.7, 0.2, 0.1)  # plain, clutter, scene
    style_probs: tuple = (0.94, 0.02, 0.02, 0.02)  # photo, sketch, silhouette, painting
    p_dark: float = 0.07
    p_bright: float = 0.07
    p_occluder: float = 0.05
    p_person: float = 0.03
    p_multi: float = 0.06
    pattern_pool: tuple = tuple(range(10))  # patterns used when not characteristic
    class_probs: tuple | None = None  # prior over categories (None: uniform)
    categories: tuple = tuple(CATEGORIES)
    has_object: bool = True
    # captions
    caption_style: str = "descriptive"  # descriptive | web | label
    p_class_word: float = 0.9
    p_attr_word: float = 0.5
    p_misaligned: float = 0.05
    n_filler: int = 0

    def replace(self, **kw) -> WorldConfig:
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


#: the labelled set, the ImageNet analogue: curated, mostly canonical, strong cue
LABELLED = WorldConfig(caption_style="label", p_class_word=1.0, p_attr_word=0.3, p_misaligned=0.0)
#: WIT-like: descriptive captions, little noise, and the diversity of web pictures: unusual
#: poses 3.5x and scene backgrounds 3x as often as in the labelled set, five times the
#: sketches, silhouettes and paintings (10% each; an assumption of the world, as Fang et al.
#: 2022 found of real web data; the ``narrow`` source is the same captions on the labelled
#: set's distribution)
WIT = WorldConfig(
    cue_strength=0.7, p_pose=0.35, p_small=0.12, p_large=0.12, p_partial=0.1, p_deform=0.12,
    p_grain=0.12, background_probs=(0.4, 0.3, 0.3), style_probs=(0.7, 0.1, 0.1, 0.1),
    p_dark=0.1, p_bright=0.1, p_occluder=0.08, p_person=0.06, p_multi=0.1,
    caption_style="descriptive", p_class_word=0.85, p_attr_word=0.6, p_misaligned=0.05,
)
#: the controlled ablation of the diversity knob: WIT-like captions on the labelled set's
#: picture distribution (its nuisance rates, styles, backgrounds and cue strength)
NARROW = LABELLED.replace(caption_style="descriptive", p_class_word=0.85, p_attr_word=0.6,
                          p_misaligned=0.05)
#: the base of the A-like set: the web-like distribution of zoo v2 (kept when the web sources
#: became more diverse, so the A-like pictures and their committed kept ids do not change)
A_LIKE_BASE = WIT.replace(p_pose=0.2, background_probs=(0.5, 0.3, 0.2),
                          style_probs=(0.82, 0.06, 0.06, 0.06))
#: LAION-like: web captions (fillers, class word often missing, misaligned pairs) and the
#: broadest nuisance distribution (more styles, backgrounds and poses), weaker cue
LAION = WorldConfig(
    cue_strength=0.55, p_pose=0.45, p_small=0.15, p_large=0.15, p_partial=0.15, p_deform=0.15,
    p_grain=0.15, background_probs=(0.3, 0.35, 0.35), style_probs=(0.55, 0.15, 0.15, 0.15),
    p_dark=0.12, p_bright=0.12, p_occluder=0.1, p_person=0.08, p_multi=0.15,
    pattern_pool=tuple(range(13)),
    caption_style="web", p_class_word=0.7, p_attr_word=0.4, p_misaligned=0.15, n_filler=3,
)
#: the raw pool for curation: LAION-like with more web noise (at zoo v2's pose and background
#: rates, so the curation chapter's pool did not change when the web sources grew more diverse)
RAW_POOL = LAION.replace(p_misaligned=0.3, p_class_word=0.6, p_pose=0.3,
                         background_probs=(0.35, 0.35, 0.3), style_probs=(0.7, 0.1, 0.1, 0.1))

SOURCES: dict[str, WorldConfig] = {"labelled": LABELLED, "wit": WIT, "laion": LAION, "narrow": NARROW,
                                   "raw": RAW_POOL}


def _choice(rng, n, probs):
    p = np.asarray(probs, float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def sample_attributes(cfg: WorldConfig, n: int, seed: int) -> pd.DataFrame:
    """Draw ``n`` attribute rows from ``cfg`` with ``numpy.random.default_rng(seed)``.

    Every column is drawn for every sample in a fixed order, so the table is bit-identical for
    the same ``(cfg, n, seed)`` and row ``i`` of a longer draw does not equal row ``i`` of a
    shorter one (draw once, slice afterwards).
    """
    rng = np.random.default_rng(seed)
    kinds = list(cfg.categories)
    cat_idx = _choice(rng, n, cfg.class_probs or [1.0] * len(kinds))
    kind = np.array(kinds, dtype=object)[cat_idx]
    category = np.array([CATEGORIES.index(k) if k in CATEGORIES else -1 for k in kinds])[cat_idx]
    subtype = _choice(rng, n, cfg.subtype_probs)
    subtype = np.where(category >= 0, subtype, 0)

    u = lambda: rng.random(n)  # noqa: E731
    pose_unusual = u() < cfg.p_pose
    rot_usual = rng.uniform(-25, 25, n)
    rot_extreme = rng.uniform(50, 180, n) * np.where(u() < 0.5, -1, 1)
    rotation = np.where(pose_unusual, rot_extreme, rot_usual)

    r = u()
    size = rng.uniform(0.45, 0.78, n)
    size = np.where(r < cfg.p_small, rng.uniform(0.24, 0.36, n), size)
    size = np.where((r >= cfg.p_small) & (r < cfg.p_small + cfg.p_large), rng.uniform(0.88, 1.1, n), size)
    partial = u() < cfg.p_partial
    # usual: the whole object inside (centre within 1 - 0.7 size - margin); partial: pushed out
    lim = np.maximum(0.0, 0.95 - 0.7 * size)
    cx = rng.uniform(-1, 1, n) * lim
    cy = rng.uniform(-1, 1, n) * lim
    side = rng.integers(0, 4, n)
    push = 1.0 - 0.7 * size + rng.uniform(0.12, 0.45, n) * size
    cx = np.where(partial & (side == 0), push, np.where(partial & (side == 1), -push, cx))
    cy = np.where(partial & (side == 2), push, np.where(partial & (side == 3), -push, cy))

    deform = np.where(u() < cfg.p_deform, rng.uniform(0.16, 0.32, n), rng.uniform(0.0, 0.06, n))
    deform_phase = rng.uniform(0, 2 * np.pi, n)

    char_col = u() < cfg.cue_strength
    safe_cat = np.where(category >= 0, category, 0)
    hue_char = safe_cat / 10.0 + rng.uniform(-0.03, 0.03, n)
    hue_rand = rng.random(n)
    hue = np.mod(np.where(char_col & (category >= 0), hue_char, hue_rand), 1.0)
    sat = rng.uniform(0.55, 0.9, n)
    val = rng.uniform(0.7, 0.95, n)
    char_pat = u() < cfg.cue_strength
    pool = np.asarray(cfg.pattern_pool)
    pat_rand = pool[rng.integers(0, len(pool), n)]
    pattern = np.where(char_pat & (category >= 0), safe_cat, pat_rand)
    pattern_contrast = rng.uniform(0.55, 0.85, n)
    pattern_scale = rng.uniform(0.9, 1.2, n)
    grain = np.where(u() < cfg.p_grain, rng.uniform(0.16, 0.3, n), rng.uniform(0.0, 0.05, n))

    background = np.array(BACKGROUNDS, dtype=object)[_choice(rng, n, cfg.background_probs)]
    bg_hue, bg_hue2, bg_param = rng.random(n), rng.random(n), rng.random(n)
    style = np.array(STYLES, dtype=object)[_choice(rng, n, cfg.style_probs)]
    r = u()
    light = rng.uniform(0.8, 1.2, n)
    light = np.where(r < cfg.p_dark, rng.uniform(0.35, 0.58, n), light)
    light = np.where((r >= cfg.p_dark) & (r < cfg.p_dark + cfg.p_bright), rng.uniform(1.5, 1.9, n), light)
    occluder = (u() < cfg.p_occluder).astype(np.int8)
    occ_angle = rng.uniform(0, 180, n)
    occ_offset = rng.uniform(-0.3, 0.3, n)
    occ_hue = rng.random(n)
    person = (u() < cfg.p_person).astype(np.int8)
    person_dx = rng.uniform(-0.5, 0.5, n)
    n_extra = (u() < cfg.p_multi).astype(np.int8)
    extra_kind = np.array(CATEGORIES, dtype=object)[rng.integers(0, 10, n)]
    # extra object opposite the main one
    ang = rng.uniform(0, 2 * np.pi, n)
    extra_x = np.clip(-np.sign(cx + 1e-9) * 0.55 + 0.2 * np.cos(ang), -0.85, 0.85)
    extra_y = np.clip(-np.sign(cy + 1e-9) * 0.55 + 0.2 * np.sin(ang), -0.85, 0.85)
    extra_rotation = rng.uniform(-180, 180, n)
    extra_hue = rng.random(n)
    noise_id = rng.integers(0, 1 << 30, n)
    has_object = np.full(n, 1 if cfg.has_object else 0, np.int8)
    if not cfg.has_object:
        occluder[:] = 0
        person[:] = 0
        n_extra[:] = 0
    df = pd.DataFrame({
        "kind": kind, "category": category, "subtype": subtype, "rotation": rotation, "size": size,
        "cx": cx, "cy": cy, "deform": deform, "deform_phase": deform_phase, "hue": hue, "sat": sat,
        "val": val, "pattern": pattern, "pattern_contrast": pattern_contrast,
        "pattern_scale": pattern_scale, "grain": grain, "background": background,
        "bg_hue": bg_hue, "bg_hue2": bg_hue2, "bg_param": bg_param, "style": style, "light": light,
        "occluder": occluder, "occ_angle": occ_angle, "occ_offset": occ_offset, "occ_hue": occ_hue,
        "person": person, "person_dx": person_dx, "n_extra": n_extra, "extra_kind": extra_kind,
        "extra_x": extra_x, "extra_y": extra_y, "extra_rotation": extra_rotation,
        "extra_hue": extra_hue, "noise_id": noise_id, "has_object": has_object,
    })
    assert list(df.columns) == ATTRIBUTE_COLUMNS
    return df


def pattern_name(pid: int) -> str:
    return PATTERNS[int(pid)]


__all__ = ["WorldConfig", "SOURCES", "LABELLED", "WIT", "LAION", "NARROW", "A_LIKE_BASE", "RAW_POOL", "sample_attributes",
           "field"]
