"""The model-source registry: one table from id prefix to the class that handles it.

A source (``openclip``, ``timm``, ``zoo``, ...) is a subclass of :class:`ModelSource` that
registers itself with :func:`register_source`; :func:`model_spec` parses an id once into a
frozen :class:`ModelSpec` (prefix, name, tag and the catalog metadata), and :func:`load`,
:func:`is_known_id`, :func:`candidate_ids` and :func:`suggest` dispatch on ``spec.source``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from clipsafety.errors import TemplateSetError
from clipsafety.records import LoadedModel


class WeightsUnavailable(RuntimeError):
    """Pretrained weights could neither be found in the local cache nor downloaded."""


class InvalidCheckpoint(ValueError):
    """A local checkpoint file that is not a loadable state dict of the named architecture."""


class UnknownModel(ValueError):
    """A model id that matches no registered source, or nothing that source knows."""


#: the metadata every spec carries, in the order of :func:`model_metadata`'s columns
META_FIELDS = ("group", "family", "source", "samples", "resolution", "meta_from")


@dataclass(frozen=True)
class ModelSpec:
    """A model id parsed once: what to load and what the catalogs say about it.

    id: the id as typed (``"openclip:ViT-B-32@laion2b_s34b_b79k"``).
    source: the registered prefix (``"openclip"``, ``"timm"``, ``"zoo"``).
    name, tag: the part before ``@`` and the part after it (``None`` without ``@``).
    group, family: the model's group (:mod:`clipsafety.groups` ids) and architecture family.
    training_source, samples, resolution: the catalog's ``source`` (training data), samples
        seen or training-set size, and input resolution; ``None`` when unknown.
    meta_from: where the metadata came from: ``"zoo catalog"``, ``"real catalog"`` or
        ``"id rules"`` (:func:`clipsafety.groups.group_of_id` / ``family_of_id``).
    catalog: the other columns of the catalog row (``parent``, ``matched_pair``, ...) as
        ``(column, value)`` pairs, so the spec stays hashable; :meth:`meta` gives a dict.
    """

    id: str
    source: str
    name: str
    tag: str | None = None
    group: str | None = None
    family: str | None = None
    training_source: str | None = None
    samples: float | None = None
    resolution: int | None = None
    meta_from: str = "id rules"
    catalog: tuple[tuple[str, Any], ...] = ()

    def meta(self) -> dict:
        """The metadata as a JSON-able dict with the catalog's column names (``source`` is the
        training source): what :func:`clipsafety.predict` writes to ``manifest["model_meta"]``."""
        return {"group": self.group, "family": self.family, "source": self.training_source,
                "samples": self.samples, "resolution": self.resolution,
                "meta_from": self.meta_from, **dict(self.catalog)}

    def as_tuple(self) -> tuple[str, str, str | None]:
        """``(source, name, tag)``, the form :func:`parse_model_id` returns."""
        return self.source, self.name, self.tag


class ModelSource:
    """One kind of model id. Subclass, set :attr:`prefix`, implement :meth:`load`,
    :meth:`is_known` and :meth:`candidates`, and decorate with :func:`register_source`.

    prefix: the id prefix before ``:``. catalog: the catalog (:mod:`clipsafety.catalog` name)
    whose rows describe this source's ids, or ``None``. id_forms: the id forms, for messages.
    """

    prefix: ClassVar[str] = ""
    catalog: ClassVar[str | None] = None
    id_forms: ClassVar[tuple[str, ...]] = ()

    def split(self, rest: str) -> tuple[str, str | None]:
        """``"ARCH@TAG"`` -> ``("ARCH", "TAG")``; no ``@`` -> tag ``None`` (an id ending in
        ``@`` is refused before this is called)."""
        name, _, tag = rest.partition("@")
        return name, (tag or None)

    def load(self, spec: ModelSpec, device: str = "cpu", *,
             classnames: str | Sequence[str] | None = None,
             templates: str | Sequence[str] = "openai", logit_scale: float | None = None,
             image_size: int | None = None) -> LoadedModel:  # pragma: no cover - interface
        raise NotImplementedError

    def is_known(self, spec: ModelSpec) -> bool:  # pragma: no cover - interface
        """Whether the spec names something that exists (no weights loaded or fetched)."""
        raise NotImplementedError

    def load_for_images(self, spec: ModelSpec, device: str = "cpu", **head) -> LoadedModel:
        """:meth:`load` for image inference alone, by the model's sole owner
        (:func:`clipsafety.predict`): a source may leave out what images do not use (a CLIP
        text tower once its head is on disk). The default is :meth:`load`."""
        return self.load(spec, device, **head)

    def describe(self, spec: ModelSpec, *, classnames=None, templates="openai",
                 logit_scale: float | None = None, image_size: int | None = None) -> LoadedModel | None:
        """What :meth:`load` would return, without its module (``module=None``): manifest,
        classes, label space, logit policy and transform, from the spec and the weights'
        digest, so that :func:`clipsafety.predict` finds a stored record without building
        the model. ``None`` (the default) where the source cannot tell without loading."""
        return None

    def candidates(self) -> list[str]:  # pragma: no cover - interface
        """Every id of this source a user could mean (for suggestions)."""
        raise NotImplementedError


#: prefix -> source instance; filled by :func:`register_source`
SOURCES: dict[str, ModelSource] = {}


def register_source(cls: type[ModelSource]) -> type[ModelSource]:
    """Class decorator: add a :class:`ModelSource` subclass to the registry under its prefix.

    Registering a prefix twice is an error unless it is the same class (a module reloaded)."""
    if not cls.prefix or ":" in cls.prefix or "@" in cls.prefix:
        raise ValueError(f"model source {cls.__name__}: prefix {cls.prefix!r} must be a non-empty "
                         "word without ':' or '@' (e.g. prefix = 'openclip').")
    old = SOURCES.get(cls.prefix)
    if old is not None and type(old).__qualname__ != cls.__qualname__:
        raise ValueError(f"model source prefix {cls.prefix!r} is already registered by "
                         f"{type(old).__name__}; unregister_source({cls.prefix!r}) first or pick "
                         "another prefix.")
    SOURCES[cls.prefix] = cls()
    return cls


def unregister_source(prefix: str) -> None:
    """Remove a source from the registry (tests; a source being replaced)."""
    SOURCES.pop(prefix, None)


def get_source(prefix: str) -> ModelSource:
    """The registered source of a prefix (:class:`UnknownModel` naming the known ones if none)."""
    try:
        return SOURCES[prefix]
    except KeyError:
        raise UnknownModel(f"no model source is registered for prefix {prefix!r}; registered: "
                           f"{sorted(SOURCES)}.") from None


def _id_forms() -> str:
    forms = [f for src in SOURCES.values() for f in (src.id_forms or (f"{src.prefix}:NAME",))]
    return ", ".join(repr(f) for f in forms)


def _metadata(model_id: str, source: ModelSource) -> dict:
    """Metadata fields of a spec: the source's catalog row; what it leaves empty (or an id no
    catalog lists) from the id rules, :func:`clipsafety.groups.group_of_id` / ``family_of_id``.
    ``meta_from`` names the catalog when it gave the group, else ``"id rules"``."""
    from clipsafety.catalog import catalog_row

    row = (catalog_row(model_id, source.catalog) if source.catalog else None) or {}
    res = row.get("resolution")
    out = {"group": row.get("group"), "family": row.get("family"),
           "training_source": row.get("source"), "samples": row.get("samples"),
           "resolution": int(res) if isinstance(res, float) and res.is_integer() else res,
           "meta_from": f"{source.catalog} catalog",
           "catalog": tuple((k, v) for k, v in row.items() if k not in ("id", *META_FIELDS))}
    if out["group"] is None or out["family"] is None:
        from clipsafety.groups import family_of_id, group_of_id

        if out["group"] is None:
            out["group"], out["meta_from"] = group_of_id(model_id), "id rules"
        if out["family"] is None:
            out["family"] = family_of_id(model_id)
    return out


def _parse(model_id: str, suggestions: bool = True) -> ModelSpec:
    hint = (lambda: _suggest_text(model_id)) if suggestions else (lambda: "")
    if not isinstance(model_id, str) or ":" not in model_id:
        raise UnknownModel(f"model id {model_id!r} has no prefix; expected one of {_id_forms()}."
                           f"{hint()}")
    prefix, rest = model_id.split(":", 1)
    source = SOURCES.get(prefix)
    if source is None:
        raise UnknownModel(f"model id {model_id!r}: unknown prefix {prefix!r}; expected one of "
                           f"{', '.join(p + ':' for p in sorted(SOURCES))} ({_id_forms()}).{hint()}")
    if rest.endswith("@"):
        raise UnknownModel(f"model id {model_id!r} ends with '@' and nothing after it; an empty tag "
                           "is not read as the default weights. Expected one of "
                           f"{', '.join(repr(f) for f in source.id_forms) or repr(prefix + ':NAME')}: "
                           "drop the '@' for the source's default (pretrained) weights where it has "
                           "them, or write the tag, 'random' or a checkpoint path after it.")
    name, tag = source.split(rest)
    return ModelSpec(id=model_id, source=prefix, name=name, tag=tag, **_metadata(model_id, source))


def model_spec(model_id: str | ModelSpec) -> ModelSpec:
    """Parse a model id once into a :class:`ModelSpec` (a spec is returned as it is).

    Raises :class:`UnknownModel` (with the nearest valid ids) for an id without a registered
    prefix. Whether the named weights exist is the source's business (:func:`is_known_id`)."""
    if isinstance(model_id, ModelSpec):
        return model_id
    return _parse(model_id)


def parse_model_id(model_id: str) -> tuple[str, str, str | None]:
    """``"openclip:ViT-B-32@laion2b_s34b_b79k"`` -> ``("openclip", "ViT-B-32", "laion2b_s34b_b79k")``
    (the ``(source, name, tag)`` of :func:`model_spec`)."""
    return model_spec(model_id).as_tuple()


def load(model_id: str | ModelSpec | LoadedModel, device: str = "cpu", *,
         classnames: str | Sequence[str] | None = None, templates: str | Sequence[str] = "openai",
         logit_scale: float | None = None, image_size: int | None = None) -> LoadedModel:
    """Load a model by id onto ``device`` through its registered source.

    classnames, templates, logit_scale: the zero-shot head of CLIP models (classifiers ignore
    them): a label space name (``"imagenet-1k"``, ``"cue-conflict-16"``) or a list; a template
    set (``"openai"`` = the 80 ImageNet templates, or the zoo world's analogue of them,
    ``"simple"``, ``"single"``, a list of strings or a file; each source documents its
    mapping); ``None`` = the model's own ``exp(logit_scale)``.
    image_size: override the input resolution (pipeline tests and benchmarks).

    The returned model carries its spec (``loaded.spec``) and so its catalog metadata
    (``loaded.model_meta``), which :func:`clipsafety.predict` writes into the record.
    """
    if isinstance(model_id, LoadedModel):
        return model_id
    spec = model_spec(model_id)
    loaded = SOURCES[spec.source].load(spec, device, classnames=classnames, templates=templates,
                                       logit_scale=logit_scale, image_size=image_size)
    return _checked(loaded, spec)


def _checked(loaded, spec: ModelSpec) -> LoadedModel:
    if not isinstance(loaded, LoadedModel):
        raise TypeError(f"model source {spec.source!r} returned {type(loaded).__name__} for "
                        f"{spec.id!r}; a source's load must return a clipsafety LoadedModel.")
    loaded.spec = spec
    return loaded


def load_for_images(model_id: str | ModelSpec, device: str = "cpu", **head) -> LoadedModel:
    """:func:`load` for image inference alone (:meth:`ModelSource.load_for_images`): the same
    logits, manifest and store key; another head cannot be built on it."""
    spec = model_spec(model_id)
    loaded = SOURCES[spec.source].load_for_images(spec, device, **head)
    return _checked(loaded, spec)


def describe(model_id: str | ModelSpec, *, classnames: str | Sequence[str] | None = None,
             templates: str | Sequence[str] = "openai", logit_scale: float | None = None,
             image_size: int | None = None) -> LoadedModel | None:
    """The model :func:`load` would give, without building its module (``module`` is
    ``None``), where its source can tell from the spec and the weights' digest (the zoo);
    else ``None``. Its manifest is :func:`load`'s, so its store key is the same."""
    spec = model_spec(model_id)
    out = SOURCES[spec.source].describe(spec, classnames=classnames, templates=templates,
                                        logit_scale=logit_scale, image_size=image_size)
    if out is not None:
        out.spec = spec
    return out


def is_known_id(model_id: str) -> bool:
    """Whether an id names something that exists (no weights are loaded or fetched)."""
    try:
        spec = _parse(model_id, suggestions=False)
    except UnknownModel:
        return False
    return bool(SOURCES[spec.source].is_known(spec))


def candidate_ids(include_zoo: bool = True, sources: Sequence[str] | None = None) -> list[str]:
    """All ids a user could mean, source by source (registration order); ``sources`` limits
    them to some prefixes, ``include_zoo=False`` leaves the zoo out. A source whose list is
    not available (no zoo catalog yet) contributes nothing."""
    ids: list[str] = []
    for prefix, src in list(SOURCES.items()):
        if (sources is not None and prefix not in sources) or (prefix == "zoo" and not include_zoo):
            continue
        try:
            ids += src.candidates()
        except (FileNotFoundError, ValueError, ImportError):
            continue
    return ids


def suggest(model_id: str, n: int = 5) -> list[str]:
    """The ``n`` valid ids nearest to ``model_id`` (difflib)."""
    cands = candidate_ids()
    near = difflib.get_close_matches(model_id, cands, n=n, cutoff=0.5)
    if not near and ":" in model_id:
        near = difflib.get_close_matches(model_id.split(":", 1)[1],
                                         [c.split(":", 1)[1] for c in cands], n=n, cutoff=0.5)
        near = [c for c in cands if c.split(":", 1)[1] in set(near)][:n]
    return near


def _suggest_text(model_id: str) -> str:
    near = suggest(model_id)
    return f" Did you mean {', '.join(near)}?" if near else ""


def model_metadata(ids: Sequence[str]):
    """Metadata of ``ids`` as a ``pandas.DataFrame``, one row per id in the given order.

    Columns: ``model, group, family, source, samples, resolution, meta_from``, then every
    other column of the catalogs of the registered sources (``parent``, ``matched_pair``,
    ``arch``, ...; empty where a row has no value). Each row comes from :func:`model_spec`:
    the source's catalog when it lists the id, else the id rules (``meta_from = "id rules"``).
    """
    import pandas as pd

    from clipsafety.catalog import catalog_columns

    rows = [{"model": mid, **model_spec(mid).meta()} for mid in ids]
    catalogs = list(dict.fromkeys(src.catalog for src in SOURCES.values() if src.catalog))
    cols = ["model", *META_FIELDS]
    for name in catalogs:
        cols += [c for c in catalog_columns(name) if c != "id" and c not in cols]
    for r in rows:
        cols += [c for c in r if c not in cols]
    df = pd.DataFrame(rows, columns=cols)
    # the catalogs' column types (numbers stay numbers, text stays text; an integer column
    # with a gap becomes float), whatever mix of rows was asked for
    for col, dtype in _catalog_dtypes(tuple(catalogs)).items():
        if col in df and col not in ("group", "family", "meta_from"):
            if pd.api.types.is_integer_dtype(dtype) and df[col].isna().any():
                dtype = "float64"
            try:
                df[col] = df[col].astype(dtype)
            except (TypeError, ValueError):
                pass
    for col in ("group", "family", "meta_from"):
        df[col] = df[col].astype(object)
    return df


def _catalog_dtypes(catalogs: tuple[str, ...]) -> dict:
    """Column -> dtype of the catalogs read together (as one concatenated table)."""
    import pandas as pd

    from clipsafety.catalog import read_catalog

    frames = []
    for name in catalogs:
        try:
            frames.append(read_catalog(name))
        except (FileNotFoundError, ValueError):
            continue
    return dict(pd.concat(frames, ignore_index=True).dtypes) if frames else {}


def registry_table() -> list[tuple[str, str, tuple[str, ...]]]:
    """``(prefix, class name, id forms)`` of every registered source (for docs and the CLI)."""
    return [(p, type(s).__name__, s.id_forms) for p, s in SOURCES.items()]


__all__ = ["InvalidCheckpoint", "META_FIELDS", "SOURCES", "ModelSource", "ModelSpec", "TemplateSetError", "UnknownModel",
           "WeightsUnavailable", "candidate_ids", "describe", "get_source", "is_known_id", "load",
           "model_metadata", "model_spec", "parse_model_id", "register_source",
           "registry_table", "suggest", "unregister_source"]
