"""Model catalogs: which models a study runs, with their metadata (group, family, source, ...).

- ``"real"``: ``data/catalog/models.csv`` (built by ``data/catalog/build_catalog.py`` from
  ``open_clip.list_pretrained()`` and ``timm.list_models(pretrained=True)``).
- ``"zoo"``: ``data/zoo/catalog.csv`` (the project's tiny models, written by the zoo code).
- any other value: the path of a CSV with at least the columns ``id`` and ``group``.

Group ids are those of :mod:`clipsafety.groups`. :func:`catalog_row` is the cached id lookup
that :mod:`clipsafety.models` uses to attach a catalog row to a parsed model id.

A run's models: :func:`resolve_models` turns a chapter's ``models`` parameter (a catalog name
or ids) into ids, :func:`is_real` / :func:`is_zoo_id` is the one rule for zoo-or-real, and
:func:`is_zero_shot_clip` the one rule for "has a text tower".
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path

import pandas as pd

from clipsafety.files import REPO_ROOT as REPO

CATALOGS = {"real": REPO / "data" / "catalog" / "models.csv", "zoo": REPO / "data" / "zoo" / "catalog.csv"}
REQUIRED = ["id", "group"]


def catalog_path(name: str) -> Path:
    """The CSV behind a catalog name (``"real"``, ``"zoo"``) or a path."""
    if name in CATALOGS:
        return CATALOGS[name]
    p = Path(os.path.expanduser(name))
    if p.suffix == ".csv":
        return p
    raise KeyError(f"unknown catalog {name!r}; expected one of {sorted(CATALOGS)} or the path of a .csv "
                   "with columns id, group.")


def read_catalog(name: str = "real") -> pd.DataFrame:
    """The catalog as a DataFrame, one row per model (``id`` unique)."""
    path = catalog_path(name)
    if not path.is_file():
        hint = " (run `make zoo`, or pull the committed zoo)" if name == "zoo" else ""
        raise FileNotFoundError(f"catalog {name!r}: {path} does not exist{hint}.")
    df = pd.read_csv(path, keep_default_na=True)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"catalog {name!r} ({path}) lacks columns {missing}; found {list(df.columns)}.")
    if name == "zoo":
        df["id"] = [i if str(i).startswith("zoo:") else f"zoo:{i}" for i in df["id"]]
    return df


def list_models(catalog: str = "real", group: str | list[str] | None = None) -> list[str]:
    """Model ids of a catalog, optionally only those of some groups."""
    df = read_catalog(catalog)
    if group is not None:
        groups = [group] if isinstance(group, str) else list(group)
        df = df[df["group"].isin(groups)]
    return df["id"].tolist()


def _plain(v):
    """A CSV cell as a JSON-able Python value: NaN -> None, numpy scalars -> int/float/str."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


@lru_cache(maxsize=16)
def _rows(path: str, mtime_ns: int, name: str) -> dict[str, dict]:
    df = read_catalog(name)
    return {str(r["id"]): {k: _plain(v) for k, v in r.items()} for r in df.to_dict("records")}


def catalog_row(model_id: str, name: str) -> dict | None:
    """The row of ``model_id`` in catalog ``name`` as a dict of plain values (NaN -> None), or
    ``None`` when the catalog does not list it or does not exist. Cached per file version
    (path and modification time), so an edited catalog is read again."""
    path = catalog_path(name)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return None
    return _rows(str(path), mtime, name).get(model_id)


def catalog_columns(name: str) -> list[str]:
    """Column names of catalog ``name`` (``[]`` when it does not exist)."""
    path = catalog_path(name)
    try:
        rows = _rows(str(path), path.stat().st_mtime_ns, name)
    except (OSError, ValueError):
        return []
    return list(next(iter(rows.values())).keys()) if rows else []


# --------------------------------------------------------------------------------------------
# a run's models: ids from a parameter, and which kind of models they are

#: the catalog names a chapter's ``models`` parameter accepts besides a list of ids
ZOO, REAL = "zoo", "real"


def is_zoo_id(model_id) -> bool:
    """Whether ``model_id`` names a model of the project's zoo (``zoo:<name>``): the one rule
    for zoo-or-real; every other id (``openclip:``, ``timm:``) is a real model."""
    return str(model_id).startswith("zoo:")


def is_real(models) -> bool:
    """True when a run's models are real (open_clip / timm ids) rather than zoo models."""
    return any(not is_zoo_id(m) for m in models)


def resolve_models(models) -> list[str]:
    """Model ids from a parameter: a catalog name (``"zoo"``, ``"real"``: its models whose group
    is one of :data:`clipsafety.groups.MODEL_GROUPS`, so the zoo's reference models are left
    out), a comma-separated string, or a list of ids (returned unchanged, duplicates dropped).

    Every id must be a string with a source prefix (``zoo:``, ``openclip:``, ``timm:``), and one
    run uses either zoo models or real ones: a mixed list is an error naming the ids.
    """
    from clipsafety.groups import MODEL_GROUPS

    if isinstance(models, str):
        if models in (ZOO, REAL):
            cat = read_catalog(models)
            return list(dict.fromkeys(cat.loc[cat["group"].isin(MODEL_GROUPS), "id"].astype(str)))
        models = [m.strip() for m in models.split(",") if m.strip()]
    models = list(models)
    if not models:
        raise ValueError("models is empty; pass model ids, or 'zoo' / 'real' for a catalog.")
    bad = [m for m in models if not isinstance(m, str) or ":" not in m]
    if bad:
        raise ValueError(f"models: {bad} are not model ids; expected strings such as "
                         "'zoo:clip-resnet-wit-10k', 'openclip:ViT-B-32@openai' or "
                         "'timm:resnet50.a1_in1k', or a catalog name 'zoo' / 'real'.")
    zoo = [m for m in models if is_zoo_id(m)]
    if zoo and len(zoo) < len(models):
        raise ValueError(f"models mixes zoo models ({zoo[:3]}) with real ones "
                         f"({[m for m in models if m not in zoo][:3]}); a run uses one or the "
                         "other, since they are evaluated on different datasets.")
    return list(dict.fromkeys(models))


def is_zero_shot_clip(model_id, group) -> bool:
    """Whether a model has a text tower to build zero-shot heads with: an open_clip id, or a
    zoo model of group ``clip-zeroshot`` (the one rule; its group comes from the catalog)."""
    from clipsafety.groups import CLIP_ZEROSHOT

    return str(model_id).startswith("openclip:") or group == CLIP_ZEROSHOT
