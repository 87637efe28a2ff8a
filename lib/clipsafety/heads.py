"""Zero-shot heads for CLIP models: label spaces, template sets, and the head module.

Conventions (the book's page "Methods and conventions", ``book/methods.md``):

- A head embeds every template filled with every class name, L2-normalises each text
  embedding, averages over templates and L2-normalises again (open_clip's
  ``build_zero_shot_classifier`` does exactly this; we call it, we do not re-implement it).
- Logits are ``scale * normalize(image_embedding) @ W + bias``. ``scale`` is the model's
  own ``exp(logit_scale)`` and ``bias`` its ``logit_bias`` (SigLIP) unless a fixed scale is
  asked for; the policy is recorded in :attr:`ZeroShotHead.logit_policy`.
- Class names and template sets come from ``open_clip.zero_shot_metadata``: ``"openai"``
  (80 templates), ``"simple"`` (7), ``"single"`` (``"a photo of a {}."``), a list of
  strings containing ``{}``, or the path of a text file with one such template per line.
  A set a model cannot use raises :class:`TemplateSetError` naming the model, the set asked
  for and the valid ones (the zoo world's sets are in :func:`clipsafety.zoo.resolve_templates`).
- The head is built lazily (on the first forward or :meth:`ZeroShotHead.build`) so that a
  cache hit in the store never pays for encoding 1000 x 80 prompts.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from clipsafety.errors import TemplateSetError
from clipsafety.shape import CUE_CONFLICT_CLASSES

#: The 16 cue-conflict categories of Geirhos et al. (2019), in their (alphabetical) order
#: (defined once, in :mod:`clipsafety.shape`)
CUE_CONFLICT_16 = list(CUE_CONFLICT_CLASSES)


#: the named template sets of real CLIP heads (:func:`resolve_templates`)
TEMPLATE_SETS = ("openai", "simple", "single")


def imagenet_classnames() -> list[str]:
    """The 1000 ImageNet class names open_clip ships (``IMAGENET_CLASSNAMES``), in index order."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    return list(IMAGENET_CLASSNAMES)


def label_space_classes(name: str) -> list[str]:
    """Class names of a named label space: ``"imagenet-1k"`` or ``"cue-conflict-16"``."""
    if name == "imagenet-1k":
        return imagenet_classnames()
    if name == "cue-conflict-16":
        return list(CUE_CONFLICT_16)
    raise KeyError(
        f"unknown label space {name!r}; expected one of ['imagenet-1k', 'cue-conflict-16'] "
        "or pass the class names as a list (classnames=[...])."
    )


class NamedClasses(list):
    """A list of class names that carries the name of its label space (a ``folder:``
    dataset's ``folder-<hash>``), so a head over a dataset's classes is in the dataset's space."""

    def __init__(self, names, label_space: str):
        super().__init__(names)
        self.label_space = label_space


def normalized_classname(name: str) -> str:
    """A class name as a CLIP text tower reads it: case, ``_`` vs space and repeated spaces
    ignored (``"Ice_Cream"`` and ``"ice  cream"`` give the same prompts' embeddings)."""
    return " ".join(str(name).replace("_", " ").split()).casefold()


def _refuse_colliding_names(names: Sequence[str], label_space: str) -> None:
    """ValueError when two of a dataset's class names are the same once normalised
    (:func:`normalized_classname`): the head would get two identical columns and split each
    image's score between them."""
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        j = seen.setdefault(normalized_classname(n), i)
        if j != i:
            raise ValueError(
                f"class names {j} {names[j]!r} and {i} {n!r} of label space {label_space!r} are the "
                f"same name once case and '_' vs space are ignored ({normalized_classname(n)!r}): a "
                "zero-shot head built from them would have two identical columns. Merge the two "
                "classes (for a folder: dataset, their folders) or rename one.")


def resolve_classnames(classnames: str | Sequence[str] | None) -> tuple[list[str], str]:
    """``(class names, label-space name)``; ``None`` means ImageNet-1k.

    A list of names gets the label space ``"custom-<8 hex of its sha256>"`` (a
    :class:`NamedClasses` list keeps its own name). A dataset's own names (a
    :class:`NamedClasses` list) that collide after normalisation (:func:`normalized_classname`:
    ``cat``/``Cat``, ``ice_cream``/``ice cream``) are refused with a ``ValueError``. Other lists
    are taken as given (open_clip's ImageNet names themselves repeat ``missile`` and
    ``sunglasses``).
    """
    if classnames is None:
        classnames = "imagenet-1k"
    if isinstance(classnames, str):
        return label_space_classes(classnames), classnames
    names = [str(c) for c in classnames]
    if not names:
        raise ValueError("classnames is empty; expected at least one class name")
    if getattr(classnames, "label_space", None):
        _refuse_colliding_names(names, classnames.label_space)
        return names, classnames.label_space
    digest = hashlib.sha256(json.dumps(names).encode()).hexdigest()[:8]
    return names, f"custom-{digest}"


def resolve_templates(templates: str | Sequence[str | Callable] | os.PathLike = "openai",
                      model_id: str | None = None) -> tuple[list[str], str]:
    """``(templates as format strings with one '{}', name)``.

    Names: ``"openai"`` (80), ``"simple"`` (7), ``"single"``; a list of strings or callables
    (callables are rendered with ``"{}"`` to get their string form); or a text file path.
    Anything else raises :class:`TemplateSetError` (a ``ValueError``); ``model_id`` names the
    model in that message.
    """
    who = f"{model_id}: " if model_id else ""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES

    named = {
        "openai": OPENAI_IMAGENET_TEMPLATES,
        "simple": SIMPLE_IMAGENET_TEMPLATES,
        "single": ("a photo of a {}.",),
    }
    if isinstance(templates, (str, os.PathLike)) and str(templates) in named:
        name = str(templates)
        raw = named[name]
    elif isinstance(templates, (str, os.PathLike)):
        path = Path(templates)
        if not path.is_file():
            raise TemplateSetError(
                f"{who}templates={str(templates)!r} is neither a named set {sorted(named)} nor a "
                "file; pass a name, a list of strings with '{}', or a text file with one "
                "template per line."
            )
        raw = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        name = f"file:{path.name}"
    else:
        raw = list(templates)
        name = "custom"
    out = [t("{}") if callable(t) else str(t) for t in raw]
    bad = [t for t in out if t.count("{}") != 1]
    if not out or bad:
        raise TemplateSetError(
            f"{who}each template must contain exactly one '{{}}' for the class name; got "
            f"{bad[:3] or out}; valid named sets: {sorted(named)}."
        )
    if name == "custom" or name.startswith("file:"):
        name = f"{name}-{hashlib.sha256(json.dumps(out).encode()).hexdigest()[:8]}"
    return out, name


def head_spec(classnames: Sequence[str], templates: Sequence[str]) -> dict:
    """What determines a head's weights besides the model: hashes of names and templates."""
    h = lambda x: hashlib.sha256(json.dumps(list(x)).encode()).hexdigest()
    return {"n_classes": len(classnames), "classnames_sha256": h(classnames),
            "n_templates": len(templates), "templates_sha256": h(templates)}


def head_cache_key(weights: dict, arch: str, spec: dict) -> str | None:
    """Key of a head's text-embedding matrix on disk: the model's weights (pretrained tag,
    checkpoint sha256, or seeded random init), its architecture, the class names and
    templates (hashes) and the open_clip version. ``None`` when the weights are not identified."""
    import open_clip

    if weights.get("source") not in ("open_clip", "checkpoint", "random"):
        return None
    payload = {"weights": weights, "arch": arch, "head": spec,
               "open_clip": getattr(open_clip, "__version__", "")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def head_cache_path(key: str | None):
    """``$CLIPSAFETY_CACHE/heads/<key>.safetensors`` (default ``~/.cache/clipsafety``);
    ``CLIPSAFETY_HEAD_CACHE=0`` turns the cache off."""
    from pathlib import Path

    if key is None or os.environ.get("CLIPSAFETY_HEAD_CACHE", "1") == "0":
        return None
    root = Path(os.environ.get("CLIPSAFETY_CACHE", "~/.cache/clipsafety")).expanduser()
    return root / "heads" / f"{key}.safetensors"


def _save_atomic(path, weights: torch.Tensor) -> None:
    # safetensors' save_file creates files 0600 whatever the umask; write the bytes ourselves
    from safetensors.torch import save

    from clipsafety.files import atomic_write_bytes

    atomic_write_bytes(path, save({"weights": weights}))


def _trimmed_text(clip, tokenizer):
    """``(model, tokenizer)`` for :func:`open_clip.build_zero_shot_classifier` that encode each
    batch of prompts at its own length instead of the 77-token context.

    Exact for open_clip's ``CLIP`` text tower with a causal attention mask and ``argmax``
    (end-of-text) pooling: the pooled feature at the end-of-text token attends only to the
    tokens before it, so the padding after it never changes it (only the float summation
    order of the shorter matmuls differs, ~1e-7). Prompts are ~10-20 tokens, so a head costs
    a fraction of the full-context one. Other towers (HF, SigLIP, CoCa, ...) are used as they are.
    """
    import open_clip.model as ocm

    mask = getattr(clip, "attn_mask", None)
    pe = getattr(clip, "positional_embedding", None)
    if (type(clip) is not ocm.CLIP or getattr(clip, "text_pool_type", None) != "argmax"
            or mask is None or pe is None or mask.ndim != 2
            or not bool(torch.isinf(torch.triu(mask, 1)[torch.triu(torch.ones_like(mask, dtype=torch.bool), 1)]).all())
            or bool((torch.tril(mask) != 0).any())):
        return clip, tokenizer

    def tok(texts):
        t = tokenizer(texts)
        n = int(t.argmax(dim=-1).max()) + 1  # end-of-text is each row's largest id
        return t[:, :n]

    class _Text:
        def encode_text(self, text, normalize: bool = False):
            n = text.shape[1]
            cast = clip.transformer.get_cast_dtype()
            x = clip.token_embedding(text).to(cast) + clip.positional_embedding[:n].to(cast)
            x = clip.ln_final(clip.transformer(x, attn_mask=clip.attn_mask[:n, :n]))
            x = ocm.text_global_pool(x, text, "argmax")
            if clip.text_projection is not None:
                x = clip.text_projection(x) if isinstance(clip.text_projection, nn.Linear) else x @ clip.text_projection
            return torch.nn.functional.normalize(x, dim=-1) if normalize else x

    return _Text(), tok


def logit_policy(model_scale: torch.Tensor, model_bias: torch.Tensor | None,
                 logit_scale: float | None = None) -> dict:
    """A head's logit policy: ``logit_scale=None``: the model's own ``exp(logit_scale)``
    (``model_scale``, a float32 tensor of one value as the model holds it) and its
    ``logit_bias`` (``None`` where it has none); a float: that fixed scale and no bias."""
    if logit_scale is not None:
        return {"kind": "clip-fixed", "scale": float(logit_scale), "bias": None}
    scale = float(model_scale.detach().exp().reshape(-1)[0].item())
    bias = None if model_bias is None else float(model_bias.detach().reshape(-1)[0].item())
    return {"kind": "clip", "scale": scale, "bias": bias}


def drop_text_tower(clip: nn.Module) -> None:
    """Remove from an open_clip model everything but its image tower (``visual``) and its logit
    scale and bias: what ``encode_image`` of ``CLIP``, ``CustomTextCLIP`` and ``CoCa`` uses.
    For image inference once a head's text embeddings are built (the text tower of
    ViT-B-32 is 40% of its weights)."""
    keep = {"visual", "logit_scale", "logit_bias"}
    for name in [*clip._modules, *clip._parameters, *clip._buffers]:
        if name not in keep:
            delattr(clip, name)
    clip.text_tower_dropped = True


class ZeroShotHead(nn.Module):
    """A CLIP image tower plus a zero-shot text head: images ``[B,3,H,W]`` -> logits ``[B,C]``.

    The text-embedding matrix is built once and, when ``cache_key`` identifies it (see
    :func:`head_cache_key`), kept on disk: an 80-template, 1000-class head costs minutes on a
    CPU, and every dataset of a model needs the same one.

    ``logit_scale=None`` uses the model's own ``exp(logit_scale)`` and ``logit_bias``;
    a float uses that fixed scale and no bias (the "x100" convention of other tools).
    """

    def __init__(self, clip_model: nn.Module, tokenizer, classnames: Sequence[str],
                 templates: Sequence[str], logit_scale: float | None = None,
                 cache_key: str | None = None):
        super().__init__()
        self.cache_key = cache_key
        self.clip = clip_model
        self.tokenizer = tokenizer
        self.classnames = list(classnames)
        self.templates = list(templates)
        self.logit_policy = logit_policy(clip_model.logit_scale, getattr(clip_model, "logit_bias", None),
                                         logit_scale)
        self.register_buffer("weights", torch.empty(0), persistent=False)
        #: drop the CLIP's text tower once the head's embeddings are built or read: set by a
        #: loader for image inference alone (:meth:`OpenCLIPSource.load_for_images`), so the
        #: tower goes when the head is first needed and a model read from the store never
        #: builds a head
        self.drop_text_after_build = False

    @torch.no_grad()
    def build(self, progress: bool = False) -> torch.Tensor:
        """Encode the prompts (once) with ``open_clip.build_zero_shot_classifier``."""
        if self.weights.numel() == 0:
            cached = head_cache_path(self.cache_key)
            if cached is not None and cached.is_file():
                from safetensors.torch import load_file

                self.weights = load_file(cached)["weights"]
                return self._built()
            if getattr(self.clip, "text_tower_dropped", False):
                raise RuntimeError("this CLIP model's text tower was dropped after its head was "
                                   "built; load the model again to build another head.")
            from open_clip import build_zero_shot_classifier

            if progress:
                import sys

                print(f"building the zero-shot head: {len(self.classnames)} classes x "
                      f"{len(self.templates)} templates (once; cached afterwards)",
                      file=sys.stderr, flush=True)
            device = next(self.clip.parameters()).device
            model, tokenizer = _trimmed_text(self.clip, self.tokenizer)
            w = build_zero_shot_classifier(
                model, tokenizer=tokenizer, classnames=self.classnames,
                templates=self.templates, num_classes_per_batch=10, device=device,
                use_tqdm=progress,
            )
            self.weights = w.float()
            if cached is not None:
                _save_atomic(cached, self.weights.cpu().contiguous())
            return self._built()
        return self.weights

    def _built(self) -> torch.Tensor:
        if self.drop_text_after_build and not getattr(self.clip, "text_tower_dropped", False):
            drop_text_tower(self.clip)
        return self.weights

    def image_only(self, progress: bool = False) -> ZeroShotHead:
        """Build the head (or read it from the cache), then drop the text tower of the CLIP
        model (:func:`drop_text_tower`): for image inference by the model's sole owner
        (:func:`clipsafety.predict` on a model it loaded); another head cannot be built on it."""
        self.build(progress=progress)
        drop_text_tower(self.clip)
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        w = self.build()
        feats = self.clip.encode_image(images, normalize=True)
        logits = self.logit_policy["scale"] * (feats.float() @ w.to(feats.device))
        if self.logit_policy["bias"] is not None:
            logits = logits + self.logit_policy["bias"]
        return logits
