"""Load any model the book studies by a string id: ``clipsafety.load("openclip:ViT-B-32@...")``.

Ids have the form ``PREFIX:NAME[@TAG]``; each prefix is a *model source* registered in one
table (:data:`SOURCES`), one module per source:

==============  ======================  ================================================
prefix          module                  ids
==============  ======================  ================================================
``openclip``    :mod:`.openclip`        ``openclip:ARCH@TAG``, ``@/path``, ``@random``
``timm``        :mod:`.timm_source`     ``timm:NAME``, ``timm:NAME@random``, ``@/path``
``zoo``         :mod:`.zoo`             ``zoo:ID`` (the project's tiny models)
==============  ======================  ================================================

An id is parsed once, by :func:`model_spec`, into a frozen :class:`ModelSpec`: the prefix,
name and tag plus the model's catalog metadata (group, family, training source, samples,
resolution, and ``meta_from``: ``"zoo catalog"``, ``"real catalog"`` or ``"id rules"`` for
ids no catalog lists). :func:`load`, :func:`is_known_id`, :func:`candidate_ids` and
:func:`suggest` dispatch on the spec's source; the loaded model carries the spec, so its
metadata travels into the prediction record (``record.model_meta``), outside the store key.

A new source is one module in this package with one registration, and nothing else::

    from clipsafety.models import ModelSource, register_source

    @register_source
    class HubSource(ModelSource):
        prefix = "hub"
        catalog = None                       # or a clipsafety.catalog name
        id_forms = ("hub:NAME",)
        def load(self, spec, device="cpu", **head): ...   # -> LoadedModel
        def is_known(self, spec): ...
        def candidates(self): ...

Every public module of this package is imported when the package is, so its registration
runs. The returned :class:`~clipsafety.records.LoadedModel` carries its transform, classes,
label space and logit policy, so inference has no per-source cases. CLIP models get a
zero-shot head (:mod:`clipsafety.heads`; the zoo's in :func:`clipsafety.zoo.resolve_templates`)
over ``classnames`` with ``templates`` (default ``"openai"``: the 80 OpenAI ImageNet templates,
or for zoo CLIPs the synthetic world's analogue of them, its ``"default"`` set). Conventions
are those of the book's page "Methods and conventions" (``book/methods.md``).

Offline behaviour of the downloading sources: see :mod:`clipsafety.models._hub`.
"""

from __future__ import annotations

import importlib
import pkgutil

from clipsafety.models._hub import _fetch_errors as _fetch_errors
from clipsafety.models._hub import _is_path as _is_path
from clipsafety.models._hub import _prepare_hub as _prepare_hub
from clipsafety.models._hub import _unavailable as _unavailable
from clipsafety.models._hub import describe_transform, file_sha256, hub_online
from clipsafety.models._registry import (
    META_FIELDS,
    SOURCES,
    InvalidCheckpoint,
    ModelSource,
    ModelSpec,
    TemplateSetError,
    UnknownModel,
    WeightsUnavailable,
    candidate_ids,
    describe,
    get_source,
    is_known_id,
    load,
    load_for_images,
    model_metadata,
    model_spec,
    parse_model_id,
    register_source,
    registry_table,
    suggest,
    unregister_source,
)


def _discover() -> None:
    """Import every public module of this package: each registers its source."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_discover()

from clipsafety.models.openclip import with_head  # noqa: E402  (after the sources registered)

__all__ = ["META_FIELDS", "InvalidCheckpoint", "SOURCES", "ModelSource", "ModelSpec", "TemplateSetError",
           "UnknownModel", "WeightsUnavailable", "candidate_ids", "describe", "describe_transform",
           "file_sha256", "get_source", "hub_online", "is_known_id", "load", "load_for_images", "model_metadata",
           "model_spec", "parse_model_id", "register_source", "registry_table", "suggest",
           "unregister_source", "with_head"]
