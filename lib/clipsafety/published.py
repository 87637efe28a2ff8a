"""Published accuracy tables of upstream projects, as tidy DataFrames.

Three sources, read through :mod:`clipsafety.external` (pinned commit, checked sha256):

- timm's ``results/results-*.csv``: ImageNet and its shifts for every timm weight. Traps
  handled here: ``param_count`` is written with thousands separators ("1,014.45"); a model
  name can appear at several image sizes, so rows are keyed by ``(model, img_size)``;
  ImageNet-R and ImageNet-A results are accuracies over their 200 classes.
- open_clip's ``docs/openclip_results.csv``: zero-shot accuracies (fractions) of open_clip
  models on 38 datasets, ImageNet and its shifts among them.
- imagenet-testbed's ``robustness_top1s.csv``: ~340 models on ImageNet, V2, Sketch, R, A,
  ObjectNet (percent).

Every accuracy returned here is a fraction in [0, 1]. Groups are assigned by the rules of
:mod:`clipsafety.groups` (:func:`~clipsafety.groups.timm_group`,
:func:`~clipsafety.groups.testbed_group`), the same rules that build the model catalog.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clipsafety import external
from clipsafety.groups import BASELINE, CLIP_ZEROSHOT, testbed_group, timm_group

TIMM = "huggingface/pytorch-image-models/results/results-{}.csv"
TIMM_FILES = {
    "imagenet": "imagenet",
    "v2": "imagenetv2-matched-frequency",
    "sketch": "sketch",
    "r": "imagenet-r",
    "a": "imagenet-a",
}
OPENCLIP = "mlfoundations/open_clip/docs/openclip_results.csv"
OPENCLIP_COLUMNS = {
    "ImageNet 1k": "imagenet",
    "ImageNet v2": "v2",
    "ImageNet Sketch": "sketch",
    "ImageNet-R": "r",
    "ImageNet-A": "a",
    "ObjectNet": "objectnet",
}
TESTBED = "modestyachts/imagenet-testbed/robustness_top1s.csv"
TESTBED_COLUMNS = {
    "val": "imagenet",
    "imagenetv2-matched-frequency-format-val": "v2",
    "imagenet-sketch": "sketch",
    "imagenet-r": "r",
    "imagenet-a": "a",
    "objectnet-1.0-beta": "objectnet",
}

#: the shifts of the landscape, with their label spaces
SHIFTS = {
    "v2": "ImageNet-V2 (matched frequency; 1000 classes)",
    "sketch": "ImageNet-Sketch (1000 classes)",
    "r": "ImageNet-R (200 classes)",
    "a": "ImageNet-A (200 classes)",
    "objectnet": "ObjectNet (113 overlapping classes)",
}

# -------------------------------------------------------------------------------------------
# readers


def _read(key: str) -> pd.DataFrame:
    return pd.read_csv(external.fetch(key), thousands=",")


def timm_results() -> pd.DataFrame:
    """One row per timm weight and image size, with accuracy on ImageNet and each shift.

    Columns: ``source="timm"``, ``model`` (``timm:arch.tag``), ``name``, ``img_size``,
    ``param_count`` (millions, float), ``group``, ``imagenet``, ``v2``, ``sketch``, ``r``, ``a``
    (fractions; NaN where timm has no result).
    """
    base = None
    for short, stem in TIMM_FILES.items():
        df = _read(TIMM.format(stem))
        df["param_count"] = pd.to_numeric(df["param_count"], errors="coerce")
        part = df[["model", "img_size", "top1", "param_count"]].rename(columns={"top1": short})
        part[short] = part[short] / 100.0
        if base is None:
            base = part
        else:
            base = base.merge(part.drop(columns="param_count"), on=["model", "img_size"],
                              how="left")
    base = base.rename(columns={"model": "name"})
    base.insert(0, "model", "timm:" + base["name"])
    base.insert(0, "source", "timm")
    base["group"] = base["name"].map(timm_group)
    return base.reset_index(drop=True)


def openclip_results() -> pd.DataFrame:
    """Zero-shot open_clip models: ``model`` (``openclip:ARCH@TAG``), ``arch``, ``tag``,
    ``train_source``, ``samples_seen``, ``params`` (millions), accuracies (fractions),
    ``group="clip-zeroshot"``. Training source and samples seen come from the model catalog
    (``data/catalog/models.csv``, the one place that metadata is kept); models it does not
    list get ``"other"`` and NaN."""
    df = _read(OPENCLIP)
    out = pd.DataFrame({
        "source": "open_clip",
        "model": "openclip:" + df["name"] + "@" + df["pretrained"],
        "arch": df["name"],
        "tag": df["pretrained"],
        "params": pd.to_numeric(df["params (M)"], errors="coerce"),
        "group": CLIP_ZEROSHOT,
    })
    for col, short in OPENCLIP_COLUMNS.items():
        out[short] = pd.to_numeric(df[col], errors="coerce")
    from clipsafety.catalog import read_catalog

    cat = read_catalog("real").set_index("id")[["source", "samples_seen"]]
    meta = cat.reindex(out["model"])
    out["train_source"] = meta["source"].fillna("other").to_numpy()
    out["samples_seen"] = pd.to_numeric(meta["samples_seen"], errors="coerce").to_numpy()
    return out


def testbed_results() -> pd.DataFrame:
    """imagenet-testbed models: ``model`` (``testbed:NAME``), ``group`` (:func:`testbed_group`),
    accuracies (fractions) on ImageNet, V2, Sketch, R, A, ObjectNet."""
    df = _read(TESTBED)
    out = pd.DataFrame({"source": "imagenet-testbed", "model": "testbed:" + df["model"],
                        "name": df["model"], "group": df["model"].map(testbed_group)})
    for col, short in TESTBED_COLUMNS.items():
        out[short] = pd.to_numeric(df[col], errors="coerce") / 100.0
    return out


def landscape_long(sources=("timm", "open_clip", "imagenet-testbed")) -> pd.DataFrame:
    """All sources stacked in long format: one row per (model, shift).

    Columns: ``source, model, group, imagenet, shift, shift_acc`` plus ``train_source`` and
    ``samples_seen`` for zero-shot CLIP. Rows without both accuracies are dropped.
    """
    readers = {"timm": timm_results, "open_clip": openclip_results,
               "imagenet-testbed": testbed_results}
    unknown = set(sources) - set(readers)
    if unknown:
        raise ValueError(f"unknown published source(s) {sorted(unknown)}; "
                         f"expected some of {sorted(readers)}")
    frames = []
    for s in sources:
        wide = readers[s]()
        keep = [c for c in ("source", "model", "group", "img_size", "train_source",
                            "samples_seen", "imagenet") if c in wide]
        for shift in SHIFTS:
            if shift not in wide:
                continue
            part = wide[keep].copy()
            part["shift"] = shift
            part["shift_acc"] = wide[shift]
            frames.append(part)
    long = pd.concat(frames, ignore_index=True)
    long = long[np.isfinite(long["imagenet"]) & np.isfinite(long["shift_acc"])]
    return long.reset_index(drop=True)


# -------------------------------------------------------------------------------------------
# the landscape's lines (the landscape study and the safety card both read these)

#: the published sources whose standard models define the landscape's line
BASELINE_SOURCES = ("timm", "imagenet-testbed")


def baseline_lines(long: pd.DataFrame, baseline_groups=(BASELINE,),
                   baseline_sources=BASELINE_SOURCES, scale: str = "logit") -> dict:
    """Per shift of ``long`` (:func:`landscape_long`, in its shift order) the baseline line:
    ``{shift: (trend, is_baseline)}``, ``trend`` the :func:`clipsafety.metrics.fit_trend` of the
    shift accuracy on ImageNet accuracy of the models in ``baseline_groups`` from
    ``baseline_sources`` (scale ``scale``), ``is_baseline`` the boolean mask of those rows of
    the shift (in the order of ``long``'s rows of that shift). A shift with fewer than 3
    baseline models is an error naming it and what to add."""
    from clipsafety.metrics import fit_trend

    out = {}
    for shift, df in long.groupby("shift", sort=False):
        base = (df["group"].isin(baseline_groups) & df["source"].isin(baseline_sources)).to_numpy()
        if base.sum() < 3:
            raise ValueError(
                f"shift {shift!r}: only {int(base.sum())} baseline models from "
                f"{list(baseline_sources)} in groups {list(baseline_groups)}; need at least 3. "
                "Add a baseline source that reports this shift.")
        out[shift] = (fit_trend(df["imagenet"].to_numpy()[base], df["shift_acc"].to_numpy()[base],
                                scale), base)
    return out


def effective_robustness_table(points: pd.DataFrame, groups=None,
                               accuracies: bool = False) -> pd.DataFrame:
    """One row per model of ``points`` (``source, model, group, imagenet, shift, eff_rob``
    and ``shift_acc``): ImageNet accuracy and effective robustness per shift (``ER <shift>``)
    and their mean (``ER mean``), fractions, most effectively robust first; ``accuracies``:
    also the raw shift accuracies (``ACC <shift>``). ``groups``: only those groups."""
    df = points if groups is None else points[points["group"].isin(groups)]
    idx = ["source", "model", "group", "imagenet"]
    wide = df.pivot_table(index=idx, columns="shift", values="eff_rob", aggfunc="first")
    wide.columns = [f"ER {c}" for c in wide.columns]
    wide["ER mean"] = wide.mean(axis=1)
    if accuracies:
        acc = df.pivot_table(index=idx, columns="shift", values="shift_acc", aggfunc="first")
        wide = wide.join(acc.rename(columns=lambda c: f"ACC {c}"))
    return wide.reset_index().sort_values("ER mean", ascending=False, ignore_index=True)
