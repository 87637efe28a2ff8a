"""The tiny model zoo: ``load("zoo:<id>")`` and ``list_zoo()``.

Weights are float16 safetensors under ``data/zoo/weights``; ``data/zoo/catalog.csv`` holds the
metadata (``id, group, family, source, samples, resolution`` plus extras). Three kinds:

- zero-shot CLIP (``kind=clip``): open_clip ``CLIP`` built from the config stored in the
  file; the head is built with ``open_clip.build_zero_shot_classifier`` over one of the
  world's template sets (:func:`resolve_templates`);
  ``logits = exp(logit_scale) * normalize(img) @ W``, policy ``{"kind": "clip", ...}``.
- supervised (``kind=sup``): a registered timm model with a 10-way head.
- fine-tuned CLIP (``kind=ft``/``ft2``): the CLIP image tower plus a linear head on the
  normalised embedding (``{"kind": "classifier"}``).

Template sets (:func:`resolve_templates`). The chapters name real CLIP template sets; the
world has its own (:data:`clipsafety.synth.TEMPLATES`), and the mapping is explicit:

=====================  ===============================================================
``templates=``         zoo CLIP head built over
=====================  ===============================================================
``"openai"``           the world's ``"default"`` set (its analogue of the 80 ImageNet
                       templates; the chapters' default, so default results are the zoo's)
``"default"``          the same set, by the world's own name
``"simple"``           the world's ``"simple"`` set (7 templates)
``"single"``           the world's ``"single"`` set (``"a photo of a {}."``)
a list of strings      the strings as given (each with one ``{}``)
a text file path       one template per line
=====================  ===============================================================

Any other value is a :class:`clipsafety.heads.TemplateSetError` naming the model, the set
asked for and the valid ones. Models without a text head (``sup``, ``ft``) check the value
the same way and then ignore it.

Images are normalised with mean 0.5 and std 0.25 per channel at 32x32.

The synthetic world gets its reference models from here as arguments
(:func:`reference_scorer` for the A-like filter, :func:`alignment_scorer` for curation;
:mod:`clipsafety.zoo.reference`); it never imports this package.

Layout: the models (weights, modules, heads, :func:`load`) are in :mod:`clipsafety.zoo.core`
and the scorers in :mod:`clipsafety.zoo.reference` (imported on first use); this package
re-exports both, and neither imports it.
"""

from clipsafety.zoo.core import (
    MEAN,
    RESOLUTION,
    STD,
    TEMPLATE_ALIASES,
    ZOO_DIR,
    array_transform,
    build_clip,
    build_module,
    list_zoo,
    load,
    pil_transform,
    predict_arrays,
    resolve_templates,
    template_sets,
    zero_shot_head,
    zoo_dir,
)
from clipsafety.zoo.core import _cached_head as _cached_head
from clipsafety.zoo.core import _modules as _modules
from clipsafety.zoo.core import _read as _read
from clipsafety.zoo.core import _sha256 as _sha256


def __getattr__(name: str):
    # the scorers live in clipsafety.zoo.reference (imported on first use)
    if name in ("alignment_scorer", "reference_scorer"):
        from clipsafety.zoo import reference

        return getattr(reference, name)
    raise AttributeError(f"module 'clipsafety.zoo' has no attribute {name!r}")


__all__ = ["MEAN", "RESOLUTION", "STD", "TEMPLATE_ALIASES", "ZOO_DIR", "alignment_scorer",
           "array_transform", "build_clip", "build_module", "list_zoo", "load", "pil_transform",
           "predict_arrays", "reference_scorer", "resolve_templates", "template_sets",
           "zero_shot_head", "zoo_dir"]
