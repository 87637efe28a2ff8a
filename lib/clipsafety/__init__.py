"""clipsafety: how trustworthy are CLIP models beyond accuracy?

The thin library behind the book. Public entry points (imported lazily so that
``import clipsafety`` stays cheap and torch-free):

- :func:`load` (``clipsafety.models``): ``load("openclip:ViT-B-32@laion2b_s34b_b79k")``,
  ``load("timm:resnet50@random")``, ``load("zoo:<id>")``.
- :func:`predict` (``clipsafety.infer``): cached per-sample logits of a model on a dataset.
- :mod:`clipsafety.metrics`: pure numpy metrics with pinned conventions.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "load": ("clipsafety.models", "load"),
    "predict": ("clipsafety.infer", "predict"),
    "list_models": ("clipsafety.catalog", "list_models"),
    "LoadedModel": ("clipsafety.records", "LoadedModel"),
    "PredictionRecord": ("clipsafety.records", "PredictionRecord"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'clipsafety' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
