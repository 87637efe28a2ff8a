"""Per-factor accuracy on ImageNet-X (Idrissi et al. 2023) and on annotations in its format.

Conventions, identical to ImageNet-X's own ``aggregate.py`` (its published
``results/val/{top,multi}_factor/*/class/accuracies_per_factor.csv``):

- Annotations: the val annotations shipped by the ``imagenet-x`` package, loaded with its own
  ``load_annotations`` (prototype images removed, ``filter_prototypes=True``). ``which="top"``
  flags each image's single top factor, ``which="multi"`` every factor annotators named.
- Predictions are inner-joined to the annotations on ``file_name`` (bare file names such as
  ``ILSVRC2012_val_00000293.JPEG``); an image is correct when ``predicted_class == class``.
- Factor accuracy: accuracy over the images whose factor flag is set. ``worst_factor``: the lowest
  of the 16. ``average``: accuracy over all joined images. ``worst_{k}_classes``: accuracy over all
  images of the ``k`` classes with the lowest per-class accuracy (ImageNet-X uses k = 100).
  These reproduce the published table to floating-point precision (ImageNet-X's own
  ``compute_factor_accuracies`` and ``worst_k_class_acc`` are called).
- Error ratio (ImageNet-X's metric): ``(1 - acc_factor) / (1 - average)``; 1 means the factor
  costs nothing beyond the overall error, 2 means it doubles it.
- Accuracies are fractions in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

FACTORS: tuple[str, ...] = (
    "pose", "background", "pattern", "color", "smaller", "shape", "partial_view", "subcategory",
    "texture", "larger", "darker", "object_blocking", "person_blocking", "style", "brighter",
    "multiple_objects",
)  # ImageNet-X's order (imagenet_x.FACTORS), which is also its table's column order
PAPER_FACTORS: tuple[str, ...] = FACTORS[:10]  # the 10 the CLIP robustness paper reports (unconfirmed)
WORST_K = 100


def resolve_factors(factors: str | Sequence[str] | None) -> list[str]:
    """``None``/``"paper"`` -> the paper's 10 factors, ``"all"`` -> ImageNet-X's 16, or a list
    (or comma-separated string) of ImageNet-X factor names."""
    if factors is None or factors == "paper":
        return list(PAPER_FACTORS)
    if factors == "all":
        return list(FACTORS)
    if isinstance(factors, str):
        factors = [f.strip() for f in factors.split(",") if f.strip()]
    unknown = [f for f in factors if f not in FACTORS]
    if unknown or not factors:
        raise ValueError(f"unknown factor(s) {unknown or factors}; expected names from "
                         f"ImageNet-X's {list(FACTORS)}, or 'paper' (10) / 'all' (16).")
    return list(factors)


@lru_cache(maxsize=4)
def _load(which: str, filter_prototypes: bool) -> pd.DataFrame:
    from imagenet_x import load_annotations

    return load_annotations(which_factor=which, partition="val", filter_prototypes=filter_prototypes)


def imagenet_x_annotations(which: str = "top", filter_prototypes: bool = True) -> pd.DataFrame:
    """ImageNet-X val annotations from the ``imagenet-x`` package (a copy; cached on first load):
    ``file_name``, ``class`` and the 16 factor columns (0/1), prototypes removed by default."""
    if which not in ("top", "multi"):
        raise ValueError(f"which={which!r}; expected 'top' or 'multi' (ImageNet-X's two annotation variants).")
    return _load(which, bool(filter_prototypes)).copy()


def _check_annotations(ann: pd.DataFrame) -> pd.DataFrame:
    need = ["file_name", "class", *FACTORS]
    missing = [c for c in need if c not in ann.columns]
    if missing:
        raise ValueError(
            f"annotations lack columns {missing}; expected 'file_name', 'class' (the true label index) and "
            f"ImageNet-X's 16 factor columns {list(FACTORS)} as 0/1."
        )
    if not ann["file_name"].is_unique:
        dup = ann["file_name"][ann["file_name"].duplicated()].head(3).tolist()
        raise ValueError(f"annotations hold several rows for the same file_name, e.g. {dup}; keep one per image.")
    return ann


def _as_models(predictions) -> dict[str, pd.DataFrame]:
    if isinstance(predictions, Mapping):
        return {str(k): v for k, v in predictions.items()}
    if not isinstance(predictions, pd.DataFrame):
        raise TypeError(
            "predictions must be a DataFrame with columns file_name, predicted_class (optionally model), "
            f"or a dict of model name -> such DataFrame; got {type(predictions).__name__}."
        )
    if "model" in predictions.columns:
        return {str(k): g.drop(columns="model") for k, g in predictions.groupby("model", sort=True)}
    return {"model": predictions}


def factor_table(
    predictions,
    which: str = "top",
    annotations: pd.DataFrame | None = None,
    worst_k: int = WORST_K,
    error_ratio: bool = True,
) -> pd.DataFrame:
    """Per-factor accuracy table, one row per model (index ``model``).

    ``predictions``: DataFrame with ``file_name, predicted_class`` (ImageNet-X's prediction CSV
    format; an optional ``model`` column gives several models), or a dict name -> DataFrame.
    ``annotations``: ``None`` for ImageNet-X's own (``which`` picks top/multi), or any DataFrame with
    ``file_name``, ``class`` and the 16 factor columns (e.g. the synthetic world's).
    Columns: the 16 factors, ``worst_factor``, ``average``, ``worst_{k}_classes`` (ImageNet-X's
    names and order), then ``error_ratio_<factor>`` for the 16 factors when ``error_ratio``.
    A factor with no flagged image gets NaN; one whose flagged images are all misclassified, 0.
    """
    from imagenet_x.aggregate import compute_factor_accuracies, worst_k_class_acc

    ann = imagenet_x_annotations(which) if annotations is None else _check_annotations(annotations)
    models = _as_models(predictions)
    parts = []
    for name, df in models.items():
        for col in ("file_name", "predicted_class"):
            if col not in df.columns:
                raise ValueError(
                    f"predictions of {name!r} lack column {col!r}; expected file_name (e.g. "
                    "'ILSVRC2012_val_00000293.JPEG') and predicted_class (label index)."
                )
        if not df["file_name"].is_unique:
            raise ValueError(f"predictions of {name!r} hold several rows for the same file_name; keep one per image.")
        merged = pd.merge(ann, df[["file_name", "predicted_class"]], on="file_name", how="inner")
        if merged.empty:
            raise ValueError(
                f"none of the {len(df)} predictions of {name!r} match an annotated file_name "
                f"(e.g. {df['file_name'].iloc[0]!r} vs {ann['file_name'].iloc[0]!r}); pass bare file names."
            )
        merged["model"] = name
        parts.append(merged)
    all_df = pd.concat(parts, ignore_index=True)
    all_df["is_correct"] = all_df["predicted_class"].to_numpy() == all_df["class"].to_numpy()
    table = compute_factor_accuracies(all_df, list(FACTORS), "is_correct")
    # ImageNet-X averages over the correct rows only, so a factor whose flagged images are all
    # wrong comes back NaN; its accuracy is 0. NaN stays only where no image is flagged.
    flagged = all_df.groupby("model")[list(FACTORS)].sum().reindex(table.index) > 0
    table[list(FACTORS)] = table[list(FACTORS)].mask(flagged & table[list(FACTORS)].isna(), 0.0)
    table[f"worst_{worst_k}_classes"] = worst_k_class_acc(all_df, k=worst_k, error_type="is_correct")
    table.index.name = "model"
    if error_ratio:
        er = factor_error_ratio(table)
        table = pd.concat([table, er.add_prefix("error_ratio_")], axis=1)
    return table


def factor_error_ratio(table: pd.DataFrame) -> pd.DataFrame:
    """ImageNet-X's error ratio per factor: ``(1 - acc_factor) / (1 - average)``."""
    missing = [c for c in (*FACTORS, "average") if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing}; pass the output of factor_table.")
    return (1 - table[list(FACTORS)]).divide(1 - table["average"], axis=0)


def predictions_from_record(record) -> pd.DataFrame:
    """``file_name, predicted_class`` of a :class:`~clipsafety.records.PredictionRecord`.

    ``file_name`` is the last path component of each sample id; ``predicted_class`` is the argmax
    over the record's label subset, as an index into the full label space.
    """
    from .metrics import prepare

    L, _ = prepare(record.logits, None, record.label_subset)
    pred = L.argmax(1)
    if record.label_subset is not None:
        pred = np.asarray(record.label_subset)[pred]
    names = [str(i).replace("\\", "/").rsplit("/", 1)[-1] for i in np.asarray(record.ids)]
    return pd.DataFrame({"file_name": names, "predicted_class": pred.astype(np.int64)})


def factor_table_from_record(record, which: str = "top", annotations: pd.DataFrame | None = None,
                             name: str | None = None, **kw) -> pd.DataFrame:
    """:func:`factor_table` of one prediction record (``name`` defaults to the manifest's model id)."""
    name = name or str(record.manifest.get("model_id", "model"))
    return factor_table({name: predictions_from_record(record)}, which, annotations, **kw)


def factor_long(table: pd.DataFrame) -> pd.DataFrame:
    """Tidy form of :func:`factor_table`: one row per (model, factor) with ``accuracy``,
    ``average`` and ``error_ratio``."""
    acc = table[list(FACTORS)].reset_index().melt(id_vars="model", var_name="factor", value_name="accuracy")
    acc = acc.merge(table[["average"]].reset_index(), on="model")
    acc["error_ratio"] = (1 - acc["accuracy"]) / (1 - acc["average"])
    return acc
