"""Shape vs texture bias on cue-conflict stimuli (Geirhos et al. 2019).

Conventions
-----------
- The 16 classes are model-vs-human's, sorted alphabetically (:data:`CUE_CONFLICT_CLASSES`).
- A stimulus name encodes its shape and texture class: ``airplane1-bicycle2.png`` (shape airplane,
  texture bicycle), also in the long form of the raw-data files
  ``0001_s5n_dnn_0_airplane_00_airplane1-bicycle2.png``.
- Trials whose shape class equals their texture class are dropped (80 of the 1,280 stimuli).
- Shape bias = shape hits / (shape hits + texture hits); a response that is neither (another
  class, or no response) counts in neither. NaN when there are no hits at all.
- Its denominator is reported with it: ``cue_share`` = (shape hits + texture hits) / trials, the
  share of answers that name either cue. Near-random answers give a low cue share and pull the
  ratio towards 0.5, so a shape bias is read together with its cue share.
- Intervals over stimuli (:func:`shape_bias_intervals`, :func:`stimulus_bootstrap_difference`)
  resample the stimuli with replacement, the same resample for every observer, so observers
  stay paired by stimulus.
- Published decision files (model-vs-human's ``raw-data`` format, also texture-vs-shape's) are
  read by :func:`read_decisions`, the one reader for all of them; their names are
  ``<dataset>_<observer>_session_<n>.csv`` or ``..._session-<n>.csv``.
- 1000-way ImageNet probabilities become 16-way decisions by averaging the probabilities of
  each class's ImageNet members (:data:`IMAGENET_INDICES_16`) and taking the argmax, as
  model-vs-human's ``ImageNetProbabilitiesTo16ClassesMapping`` (aggregation "mean") does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

CUE_CONFLICT_CLASSES: tuple[str, ...] = (
    "airplane", "bear", "bicycle", "bird", "boat", "bottle", "car", "cat", "chair", "clock", "dog",
    "elephant", "keyboard", "knife", "oven", "truck",
)

# ImageNet-1k class indices (0-based, the standard sorted-WNID order) of each of the 16 classes.
# Source: bethgelab/model-vs-human, modelvshuman/helper/human_categories.py, the
# ``<category>_indices`` attributes of ``HumanCategories`` (checked on 2025 copy at commit
# 292163431f5c); these are the ILSVRC-2012 members of the WNID lists given there.
IMAGENET_INDICES_16: dict[str, tuple[int, ...]] = {
    "airplane": (404,),
    "bear": (294, 295, 296, 297),
    "bicycle": (444, 671),
    "bird": (8, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 23, 24, 80, 81, 82, 83, 87, 88, 89, 90,
             91, 92, 93, 94, 95, 96, 98, 99, 100, 127, 128, 129, 130, 131, 132, 133, 135, 136, 137,
             138, 139, 140, 141, 142, 143, 144, 145),
    "boat": (472, 554, 625, 814, 914),
    "bottle": (440, 720, 737, 898, 899, 901, 907),
    "car": (436, 511, 817),
    "cat": (281, 282, 283, 284, 285, 286),
    "chair": (423, 559, 765, 857),
    "clock": (409, 530, 892),
    "dog": (
        152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169,
        170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187,
        188, 189, 190, 191, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 205, 206, 207,
        208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223, 224, 225,
        226, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240, 241, 243, 244, 245,
        246, 247, 248, 249, 250, 252, 253, 254, 255, 256, 257, 259, 261, 262, 263, 265, 266, 267,
        268,
    ),
    "elephant": (385, 386),
    "keyboard": (508, 878),
    "knife": (499,),
    "oven": (766,),
    "truck": (555, 569, 656, 675, 717, 734, 864, 867),
}

_NAME = re.compile(r"^([a-z]+)\d*-([a-z]+)\d*$")


def parse_cue_conflict_name(name: str) -> tuple[str, str]:
    """``(shape, texture)`` from a stimulus name, short or long form, with or without folders."""
    stem = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    stem = stem.rsplit("_", 1)[-1]
    m = _NAME.match(stem)
    if not m or m.group(1) not in CUE_CONFLICT_CLASSES or m.group(2) not in CUE_CONFLICT_CLASSES:
        raise ValueError(
            f"{name!r} is not a cue-conflict stimulus name; expected '<shape><n>-<texture><m>.png' such as "
            "'airplane1-bicycle2.png' (optionally prefixed '0001_s5n_dnn_0_airplane_00_') with both classes "
            f"among {CUE_CONFLICT_CLASSES}."
        )
    return m.group(1), m.group(2)


def bias_ratio(shape_hits, texture_hits):
    """Shape bias from hit counts: ``shape / (shape + texture)``, NaN where both are 0.

    The one place the ratio is computed; scalars give a float, arrays and Series elementwise."""
    sh = np.asarray(shape_hits, dtype=np.float64)
    tot = sh + np.asarray(texture_hits, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(tot > 0, sh / np.where(tot > 0, tot, 1.0), np.nan)
    if isinstance(shape_hits, pd.Series):
        return pd.Series(r, index=shape_hits.index)
    return float(r) if r.ndim == 0 else r


def shape_counts(shape_pred, shape_target, texture_target) -> dict:
    """``{"shape_hits", "texture_hits", "trials", "shape_bias"}`` over the trials whose shape
    and texture classes differ. The three arrays align per trial and hold class names or class
    indices (any consistent labels)."""
    p, s, t = (np.asarray(a) for a in (shape_pred, shape_target, texture_target))
    if not (p.shape == s.shape == t.shape) or p.ndim != 1:
        raise ValueError(f"shape_pred, shape_target, texture_target must be 1-D of equal length, got {p.shape}, {s.shape}, {t.shape}.")
    keep = s != t
    sh = int(np.count_nonzero(p[keep] == s[keep]))
    tx = int(np.count_nonzero(p[keep] == t[keep]))
    n = int(keep.sum())
    return {"shape_hits": sh, "texture_hits": tx, "trials": n,
            "shape_bias": bias_ratio(sh, tx), "cue_share": (sh + tx) / n if n else np.nan}


def shape_bias(shape_pred, shape_target, texture_target) -> float:
    """Shape hits / (shape hits + texture hits) over trials whose shape and texture differ
    (:func:`shape_counts`)."""
    return shape_counts(shape_pred, shape_target, texture_target)["shape_bias"]


def cue_conflict_trials(decisions: pd.DataFrame) -> pd.DataFrame:
    """The published decision table with ``shape``, ``texture``, ``shape_hit`` and ``texture_hit``
    added and same-class trials dropped (``imagename`` and ``object_response`` are required)."""
    missing = [c for c in ("imagename", "object_response") if c not in decisions.columns]
    if missing:
        raise ValueError(
            f"decisions lack columns {missing}; expected the cue-conflict raw-data format "
            "(subj, session, trial, rt, object_response, category, condition, imagename)."
        )
    parsed = [parse_cue_conflict_name(n) for n in decisions["imagename"]]
    out = decisions.copy()
    out["shape"] = [a for a, _ in parsed]
    out["texture"] = [b for _, b in parsed]
    out = out[out["shape"] != out["texture"]].copy()
    resp = out["object_response"].astype(str).str.strip().str.lower()
    out["shape_hit"] = resp == out["shape"]
    out["texture_hit"] = resp == out["texture"]
    return out


def shape_bias_from_decisions(decisions: pd.DataFrame) -> float:
    """Shape bias of one observer from a decision table in the published cue-conflict format."""
    return float(shape_bias_table(decisions.assign(_all=0), by="_all")["shape_bias"].iloc[0])


def shape_bias_table(decisions: pd.DataFrame, by: str | Sequence[str] = "subj") -> pd.DataFrame:
    """Shape bias per group (``by="subj"`` per observer, ``"shape"`` per shape class, ...):
    columns ``shape_hits``, ``texture_hits``, ``trials``, ``shape_bias`` and ``cue_share``
    (the share of trials answered with the shape or the texture class)."""
    tr = cue_conflict_trials(decisions)
    g = tr.groupby(by, sort=True)
    out = pd.DataFrame({"shape_hits": g["shape_hit"].sum(), "texture_hits": g["texture_hit"].sum(),
                        "trials": g.size()})
    out["shape_bias"] = bias_ratio(out["shape_hits"], out["texture_hits"])
    out["cue_share"] = (out["shape_hits"] + out["texture_hits"]) / out["trials"]
    return out


def imagenet_to_16(probs_1000) -> np.ndarray:
    """``[N, 16]`` class scores: the mean of each cue-conflict class's ImageNet member probabilities
    (columns in :data:`CUE_CONFLICT_CLASSES` order). Pass softmax probabilities over all 1000 classes."""
    P = np.asarray(probs_1000, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] != 1000:
        raise ValueError(f"expected probabilities over the 1000 ImageNet classes [N, 1000], got shape {P.shape}.")
    return np.stack([P[:, list(IMAGENET_INDICES_16[c])].mean(1) for c in CUE_CONFLICT_CLASSES], axis=1)


def decisions_from_probs(probs_1000, imagenames: Sequence[str]) -> pd.DataFrame:
    """A decision table (``imagename``, ``object_response``) from 1000-way probabilities."""
    idx = imagenet_to_16(probs_1000).argmax(1)
    return pd.DataFrame({"imagename": list(imagenames),
                         "object_response": [CUE_CONFLICT_CLASSES[i] for i in idx]})


# --------------------------------------------------------------------------- published decision files

#: the columns of a model-vs-human / texture-vs-shape decision file (``Session`` is lower-cased)
DECISION_COLUMNS: tuple[str, ...] = ("subj", "session", "trial", "rt", "object_response",
                                     "category", "condition", "imagename")
_DECISION_FILE = re.compile(r"^(?P<dataset>.+)_(?P<observer>[^_]+)_session[_-](?P<session>\d+)\.csv$")


def parse_decision_file_name(name: str) -> dict:
    """``{"dataset", "observer", "session"}`` of a raw-data file name.

    Both spellings of the session are read: texture-vs-shape's and the human files'
    ``cue-conflict_subject-01_session_1.csv``, model-vs-human's model files
    ``cue-conflict_clip-16_session-1.csv``. The observer is the last ``_``-free field before the
    session (``subject-01``, ``clip-16``, ``resnet50-trained-on-SIN``), the dataset everything
    before it (``imagenet_validation``, ``style-transfer-512-nomask-experiment``)."""
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    m = _DECISION_FILE.match(base)
    if not m:
        raise ValueError(
            f"{name!r} is not a raw-data decision file name; expected "
            "'<dataset>_<observer>_session_<n>.csv' or '<dataset>_<observer>_session-<n>.csv', "
            "e.g. 'cue-conflict_clip-16_session-1.csv'.")
    return {"dataset": m["dataset"], "observer": m["observer"], "session": int(m["session"])}


def read_decisions(path, observer: str | None = None) -> pd.DataFrame:
    """One published decision file as a table in :data:`DECISION_COLUMNS` plus ``dataset`` and
    ``observer`` (the file's, from :func:`parse_decision_file_name`).

    The one reader for every raw-data file: column names are lower-cased (rotation's human files
    write ``Session``); a file without a ``subj`` column, or with empty ``subj`` cells, gets the
    observer from its name (or ``observer``); ``object_response`` is stripped and lower-cased
    except for WordNet ids (``n01440764``), which stay as written."""
    info = parse_decision_file_name(path)
    df = pd.read_csv(path)
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in ("object_response", "imagename") if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: lacks columns {missing}; expected the raw-data format "
                         f"{list(DECISION_COLUMNS)} (subj optional).")
    who = observer or info["observer"]
    if "subj" not in df.columns:
        df.insert(0, "subj", who)
    else:
        df["subj"] = df["subj"].where(df["subj"].notna() & (df["subj"].astype(str).str.strip() != ""), who)
    if "session" not in df.columns:
        df["session"] = info["session"]
    df["object_response"] = df["object_response"].astype(str).str.strip()
    df["dataset"], df["observer"] = info["dataset"], who
    return df


def stimulus_key(imagename: str) -> str:
    """The stimulus an image name shows, without the observer-specific prefix.

    ``0001_cl_s01_cr_oven_40_n04111531_14126.png`` (a human's trial) and
    ``0001_cl_dnn_cr_oven_40_n04111531_14126.png`` (a model's) both give
    ``n04111531_14126.png``; ``0001_s5n_dnn_0_airplane_00_airplane1-bicycle2.png`` and
    ``airplane1-bicycle2.png`` both give ``airplane1-bicycle2.png``."""
    base = str(imagename).replace("\\", "/").rsplit("/", 1)[-1]
    m = _LONG_NAME.match(base)
    return m["stimulus"] if m else base


_LONG_NAME = re.compile(r"^\d+_[^_]+_[^_]+_[^_]+_[^_]+_\d+_(?P<stimulus>.+)$")


def _hit_matrices(decisions: pd.DataFrame, by: str):
    """Observers x stimuli matrices of shape hits and texture hits (stimuli an observer did not
    see, or same-class trials, count as neither) and the observer order."""
    tr = cue_conflict_trials(decisions)
    tr = tr.assign(_stim=[stimulus_key(n) for n in tr["imagename"]])
    sh = tr.pivot_table(index=by, columns="_stim", values="shape_hit", aggfunc="sum", fill_value=0)
    tx = tr.pivot_table(index=by, columns="_stim", values="texture_hit", aggfunc="sum",
                        fill_value=0).reindex_like(sh).fillna(0)
    return sh.to_numpy(float), tx.to_numpy(float), list(sh.index)


def _resampled_ratios(sh: np.ndarray, tx: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, observers] shape bias over stimuli resampled with replacement (shared draws)."""
    rng = np.random.default_rng(seed)
    n = sh.shape[1]
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_boot)])
    s, t = counts @ sh.T, counts @ tx.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s + t > 0, s / np.where(s + t > 0, s + t, 1), np.nan)


def shape_bias_resamples(decisions: pd.DataFrame, by: str = "observer", n_boot: int = 1000,
                         seed: int = 0) -> tuple[list, np.ndarray, np.ndarray]:
    """``(observers, estimate, boot)``: each observer's shape bias on the original trials and
    ``[n_boot, observers]`` shape biases over stimuli resampled with replacement, one draw of
    stimuli shared by all observers. Compute once, then read intervals and differences from it."""
    sh, tx, obs = _hit_matrices(decisions, by)
    return obs, bias_ratio(sh.sum(1), tx.sum(1)), _resampled_ratios(sh, tx, n_boot, seed)


def shape_bias_intervals(decisions: pd.DataFrame, by: str = "observer", n_boot: int = 1000,
                         seed: int = 0, level: float = 0.95, resamples=None) -> pd.DataFrame:
    """Shape bias per observer with a percentile bootstrap interval over stimuli: columns
    ``shape_bias``, ``lo``, ``hi`` (index ``by``). The point estimate is on the original trials."""
    obs, est, boot = resamples or shape_bias_resamples(decisions, by, n_boot, seed)
    a = (1 - level) / 2
    return pd.DataFrame({"shape_bias": est, "lo": np.nanquantile(boot, a, axis=0),
                         "hi": np.nanquantile(boot, 1 - a, axis=0)}, index=pd.Index(obs, name=by))


def stimulus_bootstrap_difference(decisions: pd.DataFrame | None, in_a, in_b, by: str = "observer",
                                  n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                                  resamples=None) -> tuple[float, float, float]:
    """Mean shape bias of the observers ``in_a`` minus that of ``in_b`` (lists of ``by``
    values), with a percentile interval over stimuli (every observer's trials resampled by the
    same stimulus draw, :func:`shape_bias_resamples`; pass ``resamples`` to reuse one)."""
    obs, est_r, boot = resamples or shape_bias_resamples(decisions, by, n_boot, seed)
    ia = [obs.index(o) for o in in_a if o in obs]
    ib = [obs.index(o) for o in in_b if o in obs]
    if not ia or not ib:
        return np.nan, np.nan, np.nan
    est = float(np.nanmean(est_r[ia]) - np.nanmean(est_r[ib]))
    d = np.nanmean(boot[:, ia], axis=1) - np.nanmean(boot[:, ib], axis=1)
    a = (1 - level) / 2
    return est, float(np.nanquantile(d, a)), float(np.nanquantile(d, 1 - a))


# --------------------------------------------------------------------------- model-vs-human datasets

_NUMBER = re.compile(r"[-+]?\d*\.?\d+")


def condition_order(conditions) -> list[str]:
    """Conditions of a model-vs-human dataset in the order of their distortion level: by the
    first number in each (``c50`` -> 50, ``1-10-10`` -> 1, ``0.03``), names without a number
    after, alphabetically."""
    vals = sorted({str(c) for c in conditions})

    def key(c):
        m = _NUMBER.search(c)
        return (0, float(m.group()), c) if m else (1, 0.0, c)

    return sorted(vals, key=key)


def accuracy_by_condition(decisions: pd.DataFrame, by: Sequence[str] = ("dataset", "observer")) -> pd.DataFrame:
    """Accuracy (``object_response == category``) per ``by`` and ``condition``; columns ``by``,
    condition, accuracy, trials. Missing conditions (NaN, as model files of single-condition
    datasets write) become ``"0"``."""
    d = decisions.assign(condition=_conditions(decisions),
                         correct=decisions["object_response"].astype(str).str.strip().str.lower()
                         == decisions["category"].astype(str).str.strip().str.lower())
    g = d.groupby([*by, "condition"], sort=False)["correct"]
    return g.agg(accuracy="mean", trials="size").reset_index()


def _conditions(decisions: pd.DataFrame) -> pd.Series:
    c = decisions["condition"] if "condition" in decisions else pd.Series("0", index=decisions.index)
    return c.astype(object).where(c.notna(), "0").astype(str).str.replace(r"\.0$", "", regex=True)


def error_consistency(correct_a, correct_b) -> float:
    """Cohen's kappa between two observers' trial-by-trial correctness (Geirhos et al. 2020,
    model-vs-human's error consistency): ``(c_obs - c_exp) / (1 - c_exp)`` with ``c_obs`` the
    share of trials both got right or both got wrong and ``c_exp = p_a p_b + (1-p_a)(1-p_b)``.
    NaN when ``c_exp`` is 1 (both observers always right, or always wrong)."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"correct_a and correct_b must be non-empty and aligned, got {a.shape}, {b.shape}.")
    obs = float(np.mean(a == b))
    pa, pb = a.mean(), b.mean()
    exp = float(pa * pb + (1 - pa) * (1 - pb))
    return (obs - exp) / (1 - exp) if exp < 1 else np.nan


def error_consistency_table(decisions: pd.DataFrame, humans, by: str = "observer") -> pd.DataFrame:
    """Error consistency of every observer with every human of ``humans`` (a list of ``by``
    values), per dataset: kappa per (condition, pair) on the stimuli both saw, averaged over
    conditions, then over the humans (a human is not paired with itself). Columns: dataset,
    ``by``, error_consistency, pairs."""
    d = decisions.assign(condition=_conditions(decisions),
                         stim=[stimulus_key(n) for n in decisions["imagename"]],
                         correct=decisions["object_response"].astype(str).str.strip().str.lower()
                         == decisions["category"].astype(str).str.strip().str.lower())
    rows = []
    for ds, part in d.groupby("dataset", sort=False):
        # single-condition datasets: model files write NaN, human files 0; read as one level
        if part.loc[part[by].isin(humans), "condition"].nunique() <= 1:
            part = part.assign(condition="0")
        wide = part.pivot_table(index=["condition", "stim"], columns=by, values="correct",
                                aggfunc="first").astype(float)
        cols = list(wide.columns)
        hs = [h for h in humans if h in cols]
        conds = wide.index.get_level_values("condition").to_numpy()
        # kappa[h, condition, observer]
        kap = np.full((len(hs), len(np.unique(conds)), len(cols)), np.nan)
        for ci, c in enumerate(np.unique(conds)):
            M = wide.to_numpy()[conds == c]  # stimuli x observers, NaN where unseen
            for hi, h in enumerate(hs):
                hv = M[:, cols.index(h)][:, None]
                ok = ~np.isnan(M) & ~np.isnan(hv)
                n = ok.sum(0)
                a = np.where(ok, M, 0.0)
                b = np.where(ok, hv, 0.0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    pa, pb = a.sum(0) / n, b.sum(0) / n
                    obs = ((a == b) & ok).sum(0) / n
                    exp = pa * pb + (1 - pa) * (1 - pb)
                    k = np.where((n >= 2) & (exp < 1), (obs - exp) / (1 - exp), np.nan)
                k[cols.index(h)] = np.nan  # a human is not paired with itself
                kap[hi, ci] = k
        with np.errstate(invalid="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                per_pair = np.nanmean(kap, axis=1)  # humans x observers
                ec = np.nanmean(per_pair, axis=0)
        pairs = np.isfinite(per_pair).sum(0)
        rows += [{"dataset": ds, by: o, "error_consistency": float(ec[i]), "pairs": int(pairs[i])}
                 for i, o in enumerate(cols)]
    return pd.DataFrame(rows, columns=["dataset", by, "error_consistency", "pairs"])


# --------------------------------------------------------------------------- other published formats

#: the columns of vlm_shapebias's per-image answer files (``raw-data/clip/*.csv`` and
#: ``raw-data/inet_classifier/*.csv``; ``response`` and ``pred_conf`` are absent in some)
VLM_ANSWER_COLUMNS: tuple[str, ...] = ("image", "response", "pred_label", "pred_conf")


def read_vlm_answers(path, observer: str | None = None) -> pd.DataFrame:
    """One vlm_shapebias answer file (Gavrikov et al. 2024, ``raw-data/clip`` or
    ``raw-data/inet_classifier``) in the decision-table columns :func:`cue_conflict_trials`
    reads: ``imagename`` (the stimulus, ``bicycle1-chair1`` written without ``.png``),
    ``object_response`` (the file's ``pred_label``, stripped and lower-cased: the class the
    model chose), ``confidence`` (``pred_conf``, the chosen class's probability in [0, 1]; NaN
    where the file has none) and ``observer`` (``observer`` or the file's stem).

    The CLIP files' head is 16-way zero-shot over the cue-conflict class names, not a 1000-class
    head mapped to 16 classes; say so wherever these rows sit beside model-vs-human ones."""
    df = pd.read_csv(path)
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in ("image", "pred_label") if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: lacks columns {missing}; expected vlm_shapebias's answer "
                         f"format {list(VLM_ANSWER_COLUMNS)} (response and pred_conf optional).")
    stem = str(path).replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".csv")
    conf = pd.to_numeric(df["pred_conf"], errors="coerce") if "pred_conf" in df else np.nan
    return pd.DataFrame({"imagename": df["image"].astype(str).str.strip(),
                         "object_response": df["pred_label"].astype(str).str.strip().str.lower(),
                         "confidence": conf, "observer": observer or stem})


#: the columns of a model-vs-human ``raw-data/performances/*.csv`` file
PERFORMANCE_COLUMNS: tuple[str, ...] = ("subj", "dataset_name", "metric_name", "performance")


def read_performances(path) -> pd.DataFrame:
    """A model-vs-human ``performances`` file (``subj, dataset_name, metric_name,
    performance``; one row per observer, dataset and metric) as a table with those columns,
    ``performance`` a float (``accuracy (top-1)`` is a fraction of all trials of the dataset,
    same-class cue-conflict stimuli included, with ``object_response == category``)."""
    df = pd.read_csv(path)
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in PERFORMANCE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: lacks columns {missing}; expected model-vs-human's "
                         f"performances format {list(PERFORMANCE_COLUMNS)}.")
    df["performance"] = pd.to_numeric(df["performance"], errors="coerce")
    return df[list(PERFORMANCE_COLUMNS)]
