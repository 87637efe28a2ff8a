"""Error types shared across layers, kept at the bottom of the stack so that a module raising
one never imports a module above it.

- :class:`ParameterError`: a chapter parameter that the chapter does not declare, of the wrong
  type, or with a value its rule refuses (raised by the book runner before anything runs).
- :class:`TemplateSetError`: a template set a model cannot use (raised by the zero-shot head
  builders of :mod:`clipsafety.heads`, the zoo and open_clip sources); also importable as
  ``clipsafety.heads.TemplateSetError`` and ``clipsafety.models.TemplateSetError``.
"""

from __future__ import annotations


class ParameterError(ValueError):
    """A chapter parameter that the chapter does not declare, or of the wrong type or value."""


class TemplateSetError(ValueError):
    """A template set a model cannot use: an unknown name, or templates without one ``{}``.

    The message names the model, the set asked for and the valid sets."""


__all__ = ["ParameterError", "TemplateSetError"]
