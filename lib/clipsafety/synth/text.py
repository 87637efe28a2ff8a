"""Captions (alt-text analogues), zero-shot templates and a word-level tokenizer.

Captions are generated from the attribute table with the source's caption style:
``label`` ("a photo of a star."), ``descriptive`` (WIT-like: category word plus attribute words)
and ``web`` (LAION-like: shuffled keywords and filler words, the category word sometimes
missing, a rate of captions taken from another sample). The tokenizer maps words to ids over
a fixed vocabulary: 0 pad, 1 start, 2 end (pooled token, ``eos_id=2``), 3 unknown.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import torch

from clipsafety.synth.world import CATEGORIES, HUE_WORDS, PATTERNS, SUBTYPES

FILLER = ["free", "stock", "hd", "image", "download", "best", "new", "cheap", "sale", "online",
          "wallpaper", "vector", "icon", "design", "art", "cool"]
STYLE_WORDS = {"photo": "photo", "sketch": "sketch", "silhouette": "silhouette", "painting": "painting"}
TEMPLATE_WORDS = ["a", "an", "the", "of", "photo", "picture", "drawing", "sketch", "painting",
                  "silhouette", "small", "big", "large", "tiny", "dark", "bright", "shape", "with",
                  "on", "in", "pattern", "background", "rotated", "cropped", "blurry", "noisy",
                  "scene", "cluttered", "plain", "object", "and", "person", "behind", "bar",
                  "several", "objects", "my", "this", "good", "bad", "close", "up", "view",
                  "rendition", "toy", "cartoon", "pixelated", "there", "is", "it", "look", "at"]

#: zero-shot template sets; the ``{}`` is the category name
TEMPLATES: dict[str, list[str]] = {
    "single": ["a photo of a {}."],
    "simple": ["a photo of a {}.", "a {}.", "a picture of the {}.", "a {} shape.",
               "a drawing of a {}.", "a big {}.", "a small {}."],
    "default": [
        "a photo of a {}.", "a {}.", "a picture of the {}.", "a {} shape.", "a drawing of a {}.",
        "a sketch of a {}.", "a painting of a {}.", "a silhouette of a {}.", "a big {}.",
        "a small {}.", "a dark photo of a {}.", "a bright photo of a {}.",
        "a rotated {}.", "a cropped photo of the {}.", "a {} on a cluttered background.",
        "a {} in a scene.", "a blurry photo of a {}.", "a noisy photo of a {}.",
        "a close up photo of the {}.", "a cartoon {}.", "a rendition of a {}.",
        "a toy {}.", "a pixelated photo of a {}.", "this is a {}.", "a photo of my {}.",
        "a good photo of the {}.", "a bad photo of the {}.", "a tiny {}.", "a large {}.",
        "a {} with a pattern.",
    ],
}


def _vocab() -> list[str]:
    words = ["<pad>", "<start>", "<end>", "<unk>"]
    pool = (CATEGORIES + [s for v in SUBTYPES.values() for s in v] + HUE_WORDS + PATTERNS
            + list(STYLE_WORDS.values()) + TEMPLATE_WORDS + FILLER)
    for w in pool:
        if w not in words:
            words.append(w)
    return words


VOCAB: list[str] = _vocab()


class WordTokenizer:
    """Lower-case word tokenizer over :data:`VOCAB`; ``tok(texts) -> LongTensor [N, L]``.

    Layout: ``<start> w1 ... wk <end> <pad>...``; texts longer than ``context_length - 2``
    words are cut. Unknown words map to ``<unk>`` (id 3).
    """

    pad_id, sot_id, eot_id, unk_id = 0, 1, 2, 3

    def __init__(self, context_length: int = 16):
        self.context_length = context_length
        self.index = {w: i for i, w in enumerate(VOCAB)}

    @property
    def vocab_size(self) -> int:
        return len(VOCAB)

    def encode(self, text: str) -> list[int]:
        words = re.findall(r"[a-z]+", text.lower())
        ids = [self.index.get(w, self.unk_id) for w in words][: self.context_length - 2]
        return [self.sot_id, *ids, self.eot_id]

    def __call__(self, texts, context_length: int | None = None) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        L = context_length or self.context_length
        out = torch.zeros(len(texts), L, dtype=torch.long)
        for i, t in enumerate(texts):
            ids = self.encode(t)[:L]
            ids[-1] = self.eot_id
            out[i, : len(ids)] = torch.tensor(ids)
        return out


def captions(attrs: pd.DataFrame, style: str, p_class_word: float, p_attr_word: float,
             p_misaligned: float, n_filler: int, seed: int) -> list[str]:
    """One caption per attribute row (deterministic for ``seed``); see module notes."""
    rng = np.random.default_rng(seed)
    n = len(attrs)
    cls = attrs["kind"].to_numpy()
    sub = attrs["subtype"].to_numpy()
    hue_w = np.array(HUE_WORDS)[(np.mod(attrs["hue"].to_numpy() + 0.05, 1.0) * 10).astype(int) % 10]
    pat_w = np.array(PATTERNS)[attrs["pattern"].to_numpy()]
    sty = attrs["style"].to_numpy()
    bg = attrs["background"].to_numpy()
    size = attrs["size"].to_numpy()
    u = rng.random((n, 8))
    perm = rng.permutation(n)
    mis = rng.random(n) < p_misaligned
    fill_idx = rng.integers(0, len(FILLER), (n, max(n_filler, 1)))
    out = []
    for i in range(n):
        j = perm[i] if mis[i] else i
        has_cls = u[i, 0] < p_class_word
        c = cls[j]
        words_attr = []
        if u[i, 1] < p_attr_word:
            words_attr.append(hue_w[j])
        if u[i, 2] < p_attr_word and pat_w[j] != "plain":
            words_attr.append(pat_w[j])
        if u[i, 3] < p_attr_word and c in SUBTYPES:
            words_attr.append(SUBTYPES[c][sub[j]])
        if style == "label":
            kind = STYLE_WORDS[sty[j]] if u[i, 4] < p_attr_word else "photo"
            out.append(f"a {kind} of a {' '.join(words_attr[:1] + [c])}.")
            continue
        if style == "descriptive":
            noun = c if has_cls else "object"
            head = f"a {STYLE_WORDS[sty[j]]} of a " if u[i, 4] < 0.6 else "a "
            sz = "small " if size[j] < 0.38 else ("big " if size[j] > 0.85 else "")
            tail = ""
            if u[i, 5] < p_attr_word and bg[j] != "plain":
                tail = " on a cluttered background" if bg[j] == "clutter" else " in a scene"
            out.append(f"{head}{sz}{' '.join(words_attr)} {noun}{tail}.".replace("  ", " "))
            continue
        # web
        toks = list(words_attr)
        if has_cls:
            toks.append(c)
        if u[i, 4] < 0.5:
            toks.append(STYLE_WORDS[sty[j]])
        toks += [FILLER[k] for k in fill_idx[i, :n_filler]]
        order = rng.permutation(len(toks)) if toks else []
        out.append(" ".join(toks[k] for k in order) if toks else "image")
    return out
