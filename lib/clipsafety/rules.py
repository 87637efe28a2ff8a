"""What a chapter's study declares beside its claims: a value rule for each parameter of the
chapter, and the chapter's workshop exercises.

A *rule* maps a value (and all the run's values, for rules that look at two parameters) to an
error text (what is wrong, what was expected, what to do) or ``None``. Each study holds
``PARAMETER_RULES = {name: rule}`` with a rule for every parameter its chapter declares; the
book runner checks every value against them before anything runs (a test checks that no
parameter is without a rule and that every default passes). This module is the kit the
studies build their rules from: integer ranges, choices, subsets, model and dataset ids,
folders, devices, template sets.

An :class:`Exercise` is a workshop task of a chapter's "Try it" section: what to do, the
parameters it changes and what to look for; a study holds ``EXERCISES = [...]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Rule = Callable[[object, dict], "str | None"]


@dataclass(frozen=True)
class Exercise:
    """A workshop task: what to do, the one parameter it changes against the chapter's
    defaults (Python values, written as YAML on the command line), what to look for.

    An exercise is a controlled experiment: ``params`` holds exactly one parameter (a test
    checks it differs from the default), and its page compares itself with the book's run at
    the defaults (:func:`clipsafety.pages.comparison`). ``measures``: what the exercise asks
    about, as a function of a chapter's recorded outputs (the JSON payload of
    :func:`clipsafety.outputs.record`) returning ``{quantity in words: value}``; computed on
    both runs for the before/after table. Without it, a chapter that judges claims compares
    each claim's verdict and estimate."""

    task: str
    params: dict
    look_for: str
    measures: Callable[[dict], dict] | None = None


def group_means(table: str, columns: dict, *, claims: bool = True) -> Callable:
    """An :attr:`Exercise.measures`: the mean of each column of the recorded table ``table``
    (``columns``: ``{column: what it is, in words with its unit}``) per model group, and with
    ``claims`` each claim's verdict and estimate
    (:func:`clipsafety.pages.claim_measures`). A table that was not recorded gives nothing."""
    def measure(payload: dict) -> dict:
        import pandas as pd

        from clipsafety.groups import group_label
        from clipsafety.pages import claim_measures

        rows = (payload.get("tables") or {}).get(table) or []
        df = pd.DataFrame(rows)
        out = {}
        if len(df) and "group" in df:
            for g, part in df.groupby("group", sort=False):
                for col, label in columns.items():
                    if col in part and part[col].notna().any():
                        have = part[part[col].notna()]
                        n = int(have["model"].nunique()) if "model" in have else len(have)
                        out[f"{label}: {group_label(g)}, mean of {n} model{'s' if n != 1 else ''}"] = \
                            float(pd.to_numeric(part[col], errors="coerce").mean())
        return {**out, **(claim_measures(payload) if claims else {})}
    return measure


def table_values(table: str, keys: tuple, columns: dict, *, factor: float = 1.0) -> Callable:
    """An :attr:`Exercise.measures`: each row's ``columns`` of the recorded table ``table``
    (``{column: what it is, in words with its unit}``), named by the row's ``keys`` (a
    snake_case value read as words), times ``factor`` (100: a fraction shown in percent)."""
    def measure(payload: dict) -> dict:
        from clipsafety.plots import words

        out = {}
        for r in (payload.get("tables") or {}).get(table) or []:
            name = ", ".join(words(r.get(k)) for k in keys)
            for col, label in columns.items():
                v = r.get(col)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out[f"{label}: {name}"] = factor * float(v)
        return out
    return measure


#: characters of a value a message echoes (the rest is cut with an ellipsis)
SHOWN_CHARS = 200


def shown(v, limit: int = SHOWN_CHARS) -> str:
    """``repr(v)`` for a message, at most ``limit`` characters (cut with an ellipsis). Nested
    and long containers are abbreviated before ``repr`` builds them, so a huge value costs no
    more than a short one."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother, r.maxlong = 3, limit, limit, limit
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = r.maxfrozenset = r.maxdeque = r.maxarray = 20
    text = r.repr(v)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def ints(lo: int, what: str, hi: int | None = None) -> Rule:
    """An integer >= ``lo`` (and <= ``hi`` when given; ``what`` says what it counts and why
    the bounds). Every chapter parameter's rule gives ``hi``, so that no value makes a
    chapter's memory or time unbounded."""
    bounds = f">= {lo}" if hi is None else f">= {lo} and <= {hi}"

    def rule(v, params):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
            return f"expected an integer {bounds} ({what})"
        return None
    return rule


def int_range(lo: int, hi: int, what: str) -> Rule:
    """An integer in ``[lo, hi]`` (``what`` says what it counts and why the bounds)."""
    def rule(v, params):
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            return f"expected an integer in [{lo}, {hi}]{' ' + what if what else ''}"
        return None
    return rule


def number_range(lo: float, hi: float, what: str, *, lo_open: bool = False,
                 hi_open: bool = False) -> Rule:
    """A finite number in ``[lo, hi]`` (``lo_open`` / ``hi_open``: the end excluded); ``what``
    says what it is and why the bounds."""
    text = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def rule(v, params):
        ok = (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
              and (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi))
        return None if ok else f"expected a number in {text} ({what})"
    return rule


def choice(*choices) -> Rule:
    """One of ``choices``."""
    def rule(v, params):
        return None if v in choices else f"expected one of {list(choices)}"
    return rule


def as_list(v) -> list:
    """A list parameter's items (a comma-separated string is split)."""
    if isinstance(v, str):
        return [x.strip() for x in v.split(",") if x.strip()]
    return list(v)


def subset(valid: tuple[str, ...] | Callable, what: str) -> Rule:
    """A non-empty list of items of ``valid`` (a tuple, or a function returning one)."""
    def rule(v, params):
        allowed = tuple(valid()) if callable(valid) else valid
        items = as_list(v)
        bad = [x for x in items if x not in allowed]
        if bad or not items:
            return (f"{'unknown ' + what + ' ' + shown(bad) if bad else 'an empty list'}; expected a "
                    f"non-empty list of {list(allowed)}")
        return None
    return rule


def models(v, params):
    """Model ids (zoo, open_clip, timm), or the catalog name ``zoo`` / ``real``."""
    from clipsafety.catalog import REAL, ZOO, resolve_models
    from clipsafety.models import is_known_id, suggest

    if isinstance(v, str) and v in (ZOO, REAL):
        return None
    items = as_list(v)
    if not items:
        return "an empty list; expected model ids, or the catalog name 'zoo' or 'real'"
    not_str = [x for x in items if not isinstance(x, str)]
    if not_str:
        return (f"{shown(not_str)} {'is' if len(not_str) == 1 else 'are'} not model ids; expected strings "
                "such as 'zoo:clip-resnet-wit-10k', 'openclip:ViT-B-32@openai' or "
                "'timm:resnet50.a1_in1k', or the catalog name 'zoo' or 'real'")
    unknown = [x for x in items if not is_known_id(x)]
    if unknown:
        hints = "; ".join(f"{shown(x, 80)}: did you mean {', '.join(suggest(x)[:3]) or 'no close id'}?"
                          for x in unknown[:3])
        return (f"unknown model id(s) {shown(unknown)}; expected ids of the zoo (python -m clipsafety.cli "
                f"models --catalog zoo), open_clip or timm ({hints})")
    try:
        resolve_models(items)
    except ValueError as exc:
        return str(exc).rstrip(".")
    return None


def optional_models(v, params):
    """``""`` / ``[]`` (none), or :func:`models`."""
    return None if v in ("", []) else models(v, params)


def real_models(v, params):
    """``""`` / ``[]`` (none), or real (open_clip / timm) model ids."""
    from clipsafety.catalog import is_zoo_id

    if v in ([], ""):
        return None
    err = models(v, params)
    if err:
        return err
    if any(is_zoo_id(x) for x in as_list(v)):
        return "expected real (openclip:/timm:) ids; the zoo path is the parents parameter"
    return None


def clip_models(v, params):
    """:func:`models`, and at least one named id a zero-shot CLIP (zoo group clip-zeroshot or
    an open_clip id): a chapter that builds heads from a text tower (other models of the list
    only serve as the effective-robustness baseline)."""
    from clipsafety.catalog import REAL, ZOO, is_zero_shot_clip
    from clipsafety.models import model_metadata

    err = models(v, params)
    if err or (isinstance(v, str) and v in (ZOO, REAL)):
        return err
    meta = model_metadata(as_list(v))
    if not any(is_zero_shot_clip(m, g) for m, g in zip(meta["model"], meta["group"], strict=True)):
        return (f"{list(meta['model'])} holds no zero-shot CLIP; expected zoo CLIPs (group "
                "clip-zeroshot, e.g. 'zoo:clip-resnet-wit-10k') or openclip: ids, whose text "
                "towers the template sets are built with")
    return None


def zoo_clip(what: str = "parent") -> Rule:
    """A zero-shot zoo CLIP id that can be fine-tuned or serve as a reference
    (:func:`clipsafety.finetune.check_parent`); ``what`` names its role in the message."""
    def rule(v, params):
        from clipsafety import finetune

        try:
            finetune.check_parent(v)
        except (ValueError, FileNotFoundError) as exc:
            msg = str(exc).rstrip(".")
            return msg if what == "parent" else msg.replace("parent ", f"{what} ", 1)
        return None
    return rule


def dataset(v, params):
    """``""`` (the chapter's default) or a dataset id (``folder:PATH`` an existing folder)."""
    if v == "":
        return None
    from clipsafety.datasets import UnknownDataset, dataset_info

    try:
        entry = dataset_info(v)
    except UnknownDataset as exc:
        return f"{exc} Expected '' (the chapter's default) or a dataset id"
    if entry.source == "folder" and not Path(v.split(":", 1)[1].strip() or "/nonexistent").expanduser().is_dir():
        return "expected folder:PATH with PATH an existing folder of class folders"
    return None


def datasets(v, params):
    """``""`` / ``[]`` (the chapter's default), or a list of dataset ids (:func:`dataset`)."""
    if v in ("", []):
        return None
    for d in as_list(v):
        err = dataset(d, params) if isinstance(d, str) else "expected dataset ids"
        if err:
            return f"{shown(d, 80)}: {err}"
    return None


def folder(kind: str) -> Rule:
    """A folder parameter: ``data_root`` (must exist) or ``store`` (created if missing)."""
    def rule(v, params):
        if not isinstance(v, str):
            return "expected a folder path or ''"
        if v == "":
            return None
        p = Path(v).expanduser()
        if kind == "data_root" and not p.is_dir():
            return f"{v} is not a folder; expected '' (none) or the folder that holds the datasets"
        if kind == "store" and p.exists() and not p.is_dir():
            return f"{v} is a file; expected '' (the default store) or a folder (created if missing)"
        return None
    return rule


def device(v, params):
    """A device this machine has (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
    from clipsafety.infer import DeviceUnavailable, resolve_device

    try:
        resolve_device(v)
    except DeviceUnavailable as exc:
        return str(exc).rstrip(".")
    return None


def templates(v, params):
    """A template set name, a template file, or a list of templates with one ``{}`` each."""
    from clipsafety.heads import TEMPLATE_SETS

    if isinstance(v, str):
        if v in TEMPLATE_SETS or Path(v).expanduser().is_file():
            return None
        return f"expected one of {list(TEMPLATE_SETS)}, a list of templates or a template file"
    bad = [t for t in v if not isinstance(t, str) or t.count("{}") != 1]
    if bad or not v:
        return f"each template needs exactly one '{{}}' for the class name; got {shown(bad[:3] or v)}"
    return None


def groups(v, params):
    """One of the model groups of :mod:`clipsafety.groups`."""
    from clipsafety.groups import MODEL_GROUPS

    return choice(*MODEL_GROUPS)(v, params)


def positive_float(v, params):
    """A positive finite number."""
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
    return None if ok else "expected a positive finite number"


def fraction(v, params):
    """A number in (0, 1]."""
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 < v <= 1
    return None if ok else "expected a number in (0, 1]"


def open_fraction(v, params):
    """A number in (0, 1)."""
    return None if fraction(v, params) is None and v < 1 else "expected a number in (0, 1)"


def max_items(n: int, what: str, rule: Rule) -> Rule:
    """``rule``, and a list of at most ``n`` distinct items (``what`` says what each costs)."""
    def check(v, params):
        err = rule(v, params)
        if err or isinstance(v, str) or not isinstance(v, (list, tuple)):
            return err
        try:
            k = len(set(v))
        except TypeError:
            k = len(v)
        return None if k <= n else f"{k} items; expected at most {n} ({what})"
    return check


def from_check(check: Callable) -> Rule:
    """A rule from a study's checking function that raises ``ValueError`` with its message."""
    def rule(v, params):
        try:
            check(v)
        except ValueError as exc:
            return str(exc).rstrip(".")
        return None
    return rule


#: the fitting scales of an effective-robustness trend
SCALES = choice("logit", "probit", "linear")

#: bootstrap resamples of a chapter: at least 100, so that the 2.5% and 97.5% quantiles of a
#: 95% interval rest on more than a resample or two (with 1 the "interval" is one resample and
#: need not even hold its own estimate); at most 10000, 5x the largest default, which keeps
#: memory (resample indices of up to 1280 cue-conflict stimuli) and time bounded
N_BOOT = ints(100, "bootstrap resamples: at least 100 for a 95% interval to rest on more than a "
              "couple of resamples, at most 10000 to keep memory and time bounded", hi=10_000)
#: seeds go to numpy, scikit-learn and torch; scikit-learn takes 32-bit seeds
SEED = ints(0, "the random seed; scikit-learn's splits take 32-bit seeds", hi=2**32 - 1)
#: images per forward pass (memory grows with it)
BATCH_SIZE = ints(1, "images per forward pass; memory grows with it", hi=4096)
#: bins of ECE and the reliability diagrams
N_BINS = ints(2, "confidence bins; with more than 100 most bins hold a handful of samples", hi=100)
#: an ECE margin (ECE is a fraction in [0, 1]: 0.01 is one point)
ECE_MARGIN = number_range(0, 1, "a positive ECE difference as a fraction: 0.01 is one point",
                          lo_open=True)

#: the parameters every chapter that runs models shares
LIVE = {
    "models": models, "dataset": dataset, "data_root": folder("data_root"),
    "store": folder("store"), "device": device,
    "batch_size": BATCH_SIZE, "templates": templates, "seed": SEED, "n_boot": N_BOOT,
}

__all__ = ["BATCH_SIZE", "ECE_MARGIN", "LIVE", "N_BINS", "N_BOOT", "SCALES",
           "SEED", "SHOWN_CHARS", "Exercise", "Rule", "as_list", "choice", "clip_models", "group_means", "table_values",
           "dataset", "datasets", "device", "folder", "fraction", "from_check", "groups",
           "int_range", "ints", "max_items", "models", "number_range", "open_fraction", "optional_models",
           "positive_float", "real_models", "shown", "subset", "templates", "zoo_clip"]
