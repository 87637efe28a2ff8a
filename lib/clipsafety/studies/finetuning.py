"""Fine-tuning and OOD detection: accuracy against detection along each fine-tuning path.

From the same zero-shot zoo CLIPs (the parents), the recipes of :mod:`clipsafety.finetune`
are trained live under one budget (samples seen per full fine-tuning run): the linear probe,
full fine-tuning, LP-FT, two-stage fine-tuning through the 30 sub-types, and WiSE-FT
interpolation between the zero-shot model and the fully fine-tuned one over an ``alpha``
grid. Every variant is evaluated on the same seeded subsets of the world's ID test set,
its shifts and its OOD sets: accuracy (shift sets over their label subsets) and detection
(MCM, MSP, MaxLogit, energy; AUROC and FPR@95, ID positive).

Intervals resample the evaluation images (the ID set, each shift and each OOD set drawn with
replacement, the same draw for every model), so a paired contrast of two recipes of the same
parents says how much of the difference the finite test sets could produce. They say nothing
about other seeds of the training itself (one seed per run).

Published evidence: the zero-shot / fine-tuned CLIP pairs of NINCO and C-OOD, read by the OOD
study (:func:`clipsafety.studies.ood.ninco_results`, :func:`~clipsafety.studies.ood.cood_results`)
and passed in by the chapter (studies never import each other).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from clipsafety import claims, metrics
from clipsafety import rules as _R
from clipsafety.groups import FT_GROUPS
from clipsafety.rules import Exercise

SCORES = ("mcm", "msp", "maxlogit", "energy")
#: recipe names in display order; zero-shot and full FT are the ends of the WiSE-FT path
RECIPES = ("zero-shot", "linear probe", "LP-FT", "full FT", "two-stage FT", "WiSE-FT")
TRAIN_SETS = ("train-labelled-10k", "train-labelled-30k")
DEFAULT_PARENTS = ("zoo:clip-convnext-wit-100k",)
BUDGET_RANGE = (256, 200_000)
PROBE_EPOCHS = 10  # the linear probe sees its training features this many times

#: the paper's two fine-tuning claims (section 5) are judged in the OOD chapter, their home
#: (:data:`clipsafety.studies.ood.CLAIMS`); this chapter shows its live contrasts for them as
#: measurements, never as a second verdict
PAPER_CLAIMS = ("ood-ft-worse", "ood-2stage")


def _ext(cid: str, text: str, test: str) -> claims.Claim:
    return claims.Claim(cid, text, "", kind=claims.EXTENSION, direction="greater",
                        compares="fine-tuning recipes of the same zero-shot parents",
                        conditioned_on="the same parents, budget and training set",
                        test=test + "; the interval resamples the evaluation images (one joint "
                        "draw for every recipe and parent), so it speaks for the runs measured, "
                        "not for other training seeds", home="finetuning")


#: the book's hypotheses from the fine-tuning literature (extensions, not the paper's claims)
CLAIMS = {
    "ft-lpft-shift": _ext("ft-lpft-shift", "LP-FT is more accurate under distribution shift than "
                          "full fine-tuning (Kumar et al. 2022)",
                          "LP-FT minus full fine-tuning in mean shift accuracy, mean over parents"),
    "ft-lpft-detect": _ext("ft-lpft-detect", "LP-FT keeps OOD detection better than full "
                           "fine-tuning", "LP-FT minus full fine-tuning in mean AUROC over the "
                           "OOD sets, mean over parents"),
    "ft-wise-shift": _ext("ft-wise-shift", "Interpolating zero-shot and fine-tuned weights "
                          "(WiSE-FT) is more accurate under shift than either end (Wortsman et "
                          "al. 2022)", "WiSE-FT at the interior alpha nearest 0.5 minus the "
                          "better end (per parent and resample) in mean shift accuracy"),
    "ft-wise-detect": _ext("ft-wise-detect", "WiSE-FT detects OOD better than the fine-tuned end",
                           "WiSE-FT at the interior alpha nearest 0.5 minus full fine-tuning in "
                           "mean AUROC"),
}
#: chance accuracy of the world's 10 categories; a training study needs models at twice it
CHANCE = 0.1


def check_alphas(alphas) -> list[float]:
    """The WiSE-FT grid as sorted floats in [0, 1] including both ends; ValueError otherwise."""
    try:
        a = sorted({float(x) for x in (alphas if not isinstance(alphas, (int, float)) else [alphas])})
    except (TypeError, ValueError):
        raise ValueError(f"alphas={alphas!r}: expected a list of numbers in [0, 1], e.g. "
                         "[0, 0.25, 0.5, 0.75, 1]") from None
    bad = [x for x in a if not 0.0 <= x <= 1.0 or not np.isfinite(x)]
    if bad or not a:
        raise ValueError(f"alphas={alphas!r}: {bad or 'empty'} outside [0, 1]; the mixing "
                         "coefficient runs from 0 (zero-shot) to 1 (fine-tuned), e.g. "
                         "[0, 0.25, 0.5, 0.75, 1]")
    return sorted(set(a) | {0.0, 1.0})


def check_budget(budget) -> int:
    """``budget`` if it is an integer in :data:`BUDGET_RANGE`, else a ``ValueError`` saying so."""
    from clipsafety.infer import check_positive_int

    lo, hi = BUDGET_RANGE
    return check_positive_int("budget", budget, lo, allow_none=False, maximum=hi,
                              what="training samples seen per fine-tuning run; the chapter's cost grows with it")


# ----------------------------------------------------------------------------- evaluation sets
@dataclass
class EvalSets:
    """Seeded subsets of the world's evaluation sets: name -> (images, targets, label subset)."""

    id_set: str
    shifts: list[str]
    ood: list[str]
    data: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [self.id_set, *self.shifts, *self.ood]


def eval_sets(n_eval: int, seed: int, shifts=None, ood=None) -> EvalSets:
    """Up to ``n_eval`` rows of ``synth:id-test``, every shift and every OOD set (a seeded draw
    per set, the same for every model)."""
    from clipsafety import synth

    shifts = list(shifts if shifts is not None else synth.SHIFTS)
    ood = list(ood if ood is not None else synth.OOD_SETS)
    out = EvalSets("id-test", shifts, ood)
    for k, name in enumerate(out.names):
        ds = synth.get_dataset(name)
        imgs, y, _ = ds.arrays()
        rng = np.random.default_rng(seed + 7919 * k)
        idx = np.sort(rng.choice(len(imgs), size=min(n_eval, len(imgs)), replace=False))
        out.data[name] = (imgs[idx], np.asarray(y)[idx], ds.label_subset)
    return out


def _subset_logits(L: np.ndarray, subset) -> np.ndarray:
    if subset is None:
        return L
    mask = np.full(L.shape[1], -np.inf)
    mask[list(subset)] = 0.0
    return L + mask


def score_arrays(feats: np.ndarray, W: np.ndarray, b: np.ndarray) -> dict:
    """Per-sample OOD scores (higher = ID) of a linear head on normalised features: MCM on the
    cosines with the head's rows (T = 1), MSP, MaxLogit and energy on the logits."""
    from clipsafety import finetune

    L = finetune.logits_of(feats, W, b)
    return {"mcm": metrics.mcm(finetune.cosines_of(feats, W)), "msp": metrics.msp(L),
            "maxlogit": metrics.max_logit(L), "energy": metrics.energy(L)}


def evaluate_head(feats_by_set: dict, W: np.ndarray, b: np.ndarray, sets: EvalSets) -> dict:
    """``{"correct": {set: bool [n]}, "scores": {set: {score: [n]}}}`` for one variant: accuracy
    on the ID set and shifts (over each set's label subset), scores on the ID and OOD sets."""
    from clipsafety import finetune

    correct, scores = {}, {}
    for name in [sets.id_set, *sets.shifts]:
        _, y, subset = sets.data[name]
        L = _subset_logits(finetune.logits_of(feats_by_set[name], W, b), subset)
        correct[name] = L.argmax(1) == y
    for name in [sets.id_set, *sets.ood]:
        scores[name] = score_arrays(feats_by_set[name], W, b)
    return {"correct": correct, "scores": scores}


def _tower_features(module, sets: EvalSets) -> dict:
    from clipsafety import finetune

    return {n: finetune.features(module, sets.data[n][0]) for n in sets.names}


# ----------------------------------------------------------------------------- training
def run_paths(parents, budget: int, alphas, sets: EvalSets, train_set: str = TRAIN_SETS[0],
              seed: int = 0, progress=print) -> dict:
    """Train every recipe from every parent and evaluate it. Returns ``{(parent, recipe,
    alpha): evaluation}`` (:func:`evaluate_head`; alpha is NaN off the WiSE-FT path, 0 for
    zero-shot, 1 for full FT) plus ``"_seconds"``: wall-clock seconds per parent."""
    import copy

    import torch

    from clipsafety import finetune
    from clipsafety.zoo.train import _Data

    budget = check_budget(budget)
    grid = check_alphas(alphas)
    parents = [finetune.check_parent(p) for p in parents]
    if train_set not in TRAIN_SETS:
        raise ValueError(f"train_set={train_set!r}; expected one of {list(TRAIN_SETS)}")
    _, imgs, y, sub = _Data(disk=True).get(train_set)
    out, seconds = {}, {}
    for p in parents:
        t0 = time.time()
        torch.manual_seed(seed)
        zs, fam = finetune.zero_shot_module(p)
        lr = finetune.FT_LR[fam]
        zs_feats = _tower_features(zs, sets)
        W0, b0 = finetune.head_arrays(zs)
        out[(p, "zero-shot", 0.0)] = evaluate_head(zs_feats, W0, b0, sets)
        # linear probe on frozen features, head from the zero-shot head
        lp = copy.deepcopy(zs)
        train_f = finetune.features(zs, imgs)
        finetune.linear_probe(lp, train_f, y, PROBE_EPOCHS * len(y), seed)
        Wl, bl = finetune.head_arrays(lp)
        out[(p, "linear probe", np.nan)] = evaluate_head(zs_feats, Wl, bl, sets)
        # LP-FT: full fine-tuning from the probe
        lpft = copy.deepcopy(lp)
        finetune.full_finetune(lpft, imgs, y, budget, seed, lr)
        out[(p, "LP-FT", np.nan)] = evaluate_head(_tower_features(lpft, sets),
                                                  *finetune.head_arrays(lpft), sets)
        # full fine-tuning from the zero-shot head, and the WiSE-FT path to it
        ft = copy.deepcopy(zs)
        finetune.full_finetune(ft, imgs, y, budget, seed, lr)
        for a in grid[1:]:
            m = ft if a == 1.0 else finetune.interpolate(zs, ft, a)
            out[(p, "full FT" if a == 1.0 else "WiSE-FT", a)] = evaluate_head(
                _tower_features(m, sets), *finetune.head_arrays(m), sets)
        # two-stage: sub-types, then categories
        ts = finetune.two_stage(p, imgs, y, sub, budget, seed, lr)
        out[(p, "two-stage FT", np.nan)] = evaluate_head(_tower_features(ts, sets),
                                                         *finetune.head_arrays(ts), sets)
        seconds[p] = time.time() - t0
        if progress:
            progress(f"{p}: {seconds[p]:.0f} s")
    out["_seconds"] = seconds
    return out


# ----------------------------------------------------------------------------- tables
def _variants(evals: dict):
    return [k for k in evals if k != "_seconds"]


def _mean_auroc(ev: dict, sets: EvalSets, score: str, idx=None) -> float:
    """Mean AUROC over the OOD sets; ``idx``: per-set row indices of a bootstrap draw."""
    id_s = ev["scores"][sets.id_set][score]
    if idx is not None:
        id_s = id_s[idx[sets.id_set]]
    vals = []
    for o in sets.ood:
        s = ev["scores"][o][score]
        vals.append(metrics.auroc(id_s, s if idx is None else s[idx[o]]))
    return float(np.mean(vals))


def _acc(ev: dict, names, idx=None) -> float:
    return float(np.mean([(ev["correct"][n] if idx is None else ev["correct"][n][idx[n]]).mean()
                          for n in names]))


def path_table(evals: dict, sets: EvalSets) -> pd.DataFrame:
    """One row per (parent, recipe, alpha): ID accuracy, mean shift accuracy, and per score
    the mean AUROC and FPR@95 over the OOD sets."""
    rows = []
    for (p, r, a) in _variants(evals):
        ev = evals[(p, r, a)]
        row = {"parent": p, "recipe": r, "alpha": a, "id_acc": _acc(ev, [sets.id_set]),
               "shift_acc": _acc(ev, sets.shifts)}
        for s in SCORES:
            id_s = ev["scores"][sets.id_set][s]
            row[f"auroc_{s}"] = float(np.mean([metrics.auroc(id_s, ev["scores"][o][s])
                                               for o in sets.ood]))
            row[f"fpr95_{s}"] = float(np.mean([metrics.fpr_at_tpr(id_s, ev["scores"][o][s])
                                               for o in sets.ood]))
        rows.append(row)
    t = pd.DataFrame(rows)
    t["family"] = t["parent"].str.extract(r"clip-([a-z]+)-")[0]
    t["label"] = np.where(t["recipe"] == "WiSE-FT", "WiSE-FT a=" + t["alpha"].map("{:.2f}".format),
                          t["recipe"])
    return t


def per_set_table(evals: dict, sets: EvalSets, score: str) -> pd.DataFrame:
    """Long table: parent, recipe, alpha, dataset, kind (shift / ood / id), value (accuracy or
    AUROC of ``score``)."""
    rows = []
    for (p, r, a) in _variants(evals):
        ev = evals[(p, r, a)]
        for n in [sets.id_set, *sets.shifts]:
            rows.append({"parent": p, "recipe": r, "alpha": a, "dataset": n,
                         "kind": "id" if n == sets.id_set else "shift",
                         "value": float(ev["correct"][n].mean())})
        for o in sets.ood:
            rows.append({"parent": p, "recipe": r, "alpha": a, "dataset": o, "kind": "ood",
                         "value": metrics.auroc(ev["scores"][sets.id_set][score],
                                                ev["scores"][o][score])})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- contrasts
def _draws(sets: EvalSets, n_boot: int, seed: int):
    rng = np.random.default_rng(seed)
    sizes = {n: len(sets.data[n][1]) for n in sets.names}
    for _ in range(n_boot):
        yield {n: rng.integers(0, k, k) for n, k in sizes.items()}


def _stat(ev, sets, what, score, idx=None):
    if what == "auroc":
        return _mean_auroc(ev, sets, score, idx)
    if what == "shift_acc":
        return _acc(ev, sets.shifts, idx)
    if what == "id_acc":
        return _acc(ev, [sets.id_set], idx)
    raise ValueError(f"what={what!r}; expected 'auroc', 'shift_acc' or 'id_acc'")


def contrast(evals: dict, sets: EvalSets, a, b, what: str = "auroc", score: str = "msp",
             n_boot: int = 200, seed: int = 0) -> dict:
    """Mean over parents of ``stat(a) - stat(b)`` with a percentile bootstrap interval over
    evaluation images (one joint draw per resample, shared by both sides and all parents).

    ``a`` and ``b`` are ``(recipe, alpha)``, or a callable ``parent -> list of (recipe,
    alpha)`` whose best value (highest) is taken per parent in every resample. Returns est, lo,
    hi and per_parent (the parents' point differences)."""
    parents = sorted({k[0] for k in _variants(evals)})

    def side(p, spec, idx):
        keys = spec(p) if callable(spec) else [spec]
        vals = []
        for r, al in keys:
            k = next(k for k in _variants(evals) if k[0] == p and k[1] == r
                     and (np.isnan(al) and np.isnan(k[2]) or k[2] == al))
            vals.append(_stat(evals[k], sets, what, score, idx))
        return max(vals)

    def diff(idx):
        return np.array([side(p, a, idx) - side(p, b, idx) for p in parents])

    point = diff(None)
    boots = np.array([diff(idx).mean() for idx in _draws(sets, n_boot, seed)])
    lo, hi = np.percentile(boots, [2.5, 97.5]) if len(boots) > 1 else (np.nan, np.nan)
    return {"est": float(point.mean()), "lo": float(lo), "hi": float(hi),
            "per_parent": dict(zip(parents, point.tolist()))}


def interior_alpha(table: pd.DataFrame) -> float:
    """The WiSE-FT alpha of the run closest to 0.5 strictly inside (0, 1) (NaN if none)."""
    a = table.loc[table.recipe == "WiSE-FT", "alpha"].dropna().unique()
    return float(a[np.argmin(np.abs(a - 0.5))]) if len(a) else np.nan


def training_premises(table: pd.DataFrame, recipes, chance: float = CHANCE,
                       factor: float = 2.0) -> list:
    """The premises of a training study's verdict, measured on :func:`path_table`: every
    variant of ``recipes`` is at least ``factor`` times chance in ID accuracy, and how many
    parents the contrast rests on (fewer than :data:`clipsafety.claims.MIN_RUNS` parents, or one
    seed, is not a failed premise: the verdict carries the label)."""
    t = table[table["recipe"].isin(list(recipes))]
    low = t[t["id_acc"] < factor * chance]
    worst = t.loc[t["id_acc"].idxmin()] if len(t) else None
    measured = ("lowest ID accuracy " + (f"{100 * worst['id_acc']:.1f}% ({worst['label']}, "
                                         f"{worst['parent']})" if worst is not None else "–"))
    return [claims.Premise("above chance", low.empty, measured,
                           f"every variant at least {100 * factor * chance:.0f}% ID accuracy "
                           f"({factor:g} times chance)")]


def assess_live(evals: dict, sets: EvalSets, table: pd.DataFrame, source: str, score: str,
                n_boot: int, seed: int) -> tuple[list, dict]:
    """Judgements of the chapter's extensions (:data:`CLAIMS`) on the live paths, and the
    contrasts by claim id (also those of the paper's fine-tuning claims, measured here but
    judged in the OOD chapter: ``ood-ft-worse``, full fine-tune minus zero-shot per parent;
    ``ood-2stage``, two-stage minus full fine-tune).

    Rules: *LP-FT shift* / *LP-FT detect* — LP-FT minus full FT in mean shift accuracy / mean
    AUROC; *WiSE shift* — WiSE-FT at the interior alpha nearest 0.5 minus the better end
    (zero-shot or full FT, per parent and resample); *WiSE detect* — that alpha minus full FT
    in AUROC; each directional (above zero), intervals by :func:`contrast`, gated by
    :func:`training_premises` and labelled single-seed."""
    rows, con = [], {}
    ZS, FT, TS, LPFT = ("zero-shot", 0.0), ("full FT", 1.0), ("two-stage FT", np.nan), ("LP-FT", np.nan)
    con["ood-ft-worse"] = [(p, contrast({k: v for k, v in evals.items() if k != "_seconds"
                                         and k[0] == p}, sets, FT, ZS, "auroc", score, n_boot, seed))
                           for p in sorted(table.parent.unique())]
    con["ood-2stage"] = contrast(evals, sets, TS, FT, "auroc", score, n_boot, seed)
    specs = {"ft-lpft-shift": (LPFT, FT, "shift_acc", "LP-FT minus full FT, mean shift accuracy",
                               ("LP-FT", "full FT")),
             "ft-lpft-detect": (LPFT, FT, "auroc", "LP-FT minus full FT, mean AUROC",
                                ("LP-FT", "full FT"))}
    a_mid = interior_alpha(table)
    if np.isfinite(a_mid):
        specs["ft-wise-shift"] = (("WiSE-FT", a_mid), lambda p: [ZS, FT], "shift_acc",
                                  f"WiSE-FT at alpha {a_mid:.2f} minus the better end, mean "
                                  "shift accuracy", ("WiSE-FT", "zero-shot", "full FT"))
        specs["ft-wise-detect"] = (("WiSE-FT", a_mid), FT, "auroc",
                                   f"WiSE-FT at alpha {a_mid:.2f} minus full FT, mean AUROC",
                                   ("WiSE-FT", "full FT"))
    n_parents = int(table.parent.nunique())
    for cid, (a, b, what, text, recipes) in specs.items():
        r = contrast(evals, sets, a, b, what, score, n_boot, seed)
        con[cid] = r
        pts = 100.0 if what == "shift_acc" else 1.0
        j = claims.interval(
            CLAIMS[cid], source, pts * r["est"], pts * r["lo"], pts * r["hi"],
            effect=text + (f" ({score})" if what == "auroc" else ""),
            scale="points" if what == "shift_acc" else "AUROC", unit=claims.RUNS,
            n=(n_parents,), sides=(f"{n_parents} parent{'s' if n_parents != 1 else ''}",),
            data=tuple(sorted(table.parent.unique())))
        rows.append(claims.gated(j, training_premises(table, recipes)))
    for cid in ("ft-wise-shift", "ft-wise-detect"):
        if cid not in specs:
            rows.append(claims.not_testable(CLAIMS[cid], source, "no alpha strictly inside (0, 1) "
                                            "in the grid"))
    return rows, con


def best_recipe(table: pd.DataFrame, score: str) -> pd.DataFrame:
    """Per recipe (mean over parents): gain in ID and shift accuracy and change in AUROC
    against zero-shot; ``keeps`` = gains ID accuracy without losing mean AUROC. Sorted by
    AUROC change among the recipes that gain accuracy."""
    t = table.copy()
    zs = t[t.recipe == "zero-shot"].set_index("parent")
    for col in ("id_acc", "shift_acc", f"auroc_{score}"):
        t[f"d_{col}"] = t[col] - t["parent"].map(zs[col])
    g = t.groupby("label", sort=False)[["d_id_acc", "d_shift_acc", f"d_auroc_{score}"]].mean()
    g["keeps"] = (g["d_id_acc"] > 0) & (g[f"d_auroc_{score}"] >= 0)
    return g.drop(index="zero-shot", errors="ignore").sort_values(
        ["keeps", f"d_auroc_{score}"], ascending=False)


# ----------------------------------------------------------------------------- published
def published_pairs(results: dict) -> pd.DataFrame:
    """Zero-shot / fine-tuned CLIP pairs of published per-model averages (``results``: source
    name -> table with model, group, parent, id_acc, auroc, e.g. NINCO's summary and C-OOD):
    source, model, group, parent, id_acc, auroc, parent_id_acc, parent_auroc."""
    rows = []
    for name, avg in results.items():
        by = avg.set_index("model")
        for r in avg[avg["group"].isin(FT_GROUPS)].itertuples():
            par = r.parent if isinstance(r.parent, str) and r.parent in by.index else None
            rows.append({"source": name, "model": r.model, "group": r.group, "parent": r.parent,
                         "id_acc": r.id_acc, "auroc": r.auroc,
                         "parent_id_acc": by.loc[par, "id_acc"] if par else np.nan,
                         "parent_auroc": by.loc[par, "auroc"] if par else np.nan})
    return pd.DataFrame(rows, columns=["source", "model", "group", "parent", "id_acc", "auroc",
                                       "parent_id_acc", "parent_auroc"])


def untested_rows(source: str, why: str) -> list:
    """``not testable`` judgements of this chapter's extensions (:data:`CLAIMS`) on ``source``."""
    return [claims.not_testable(c, source, why) for c in CLAIMS.values()]


#: the real catalog's zero-shot / fine-tuned pairs of one backbone (ViT-B/16, OpenAI weights)
REAL_PATH = ["openclip:ViT-B-16@openai", "timm:vit_base_patch16_clip_224.openai_ft_in1k",
             "timm:vit_base_patch16_clip_224.openai_ft_in12k_in1k"]


# ----------------------------------------------------------------------------- tables of the chapter
def resolve_parents(parents) -> list[str]:
    """The parent ids of a run: ``"default"`` (:data:`DEFAULT_PARENTS`), a comma-separated
    string or a list."""
    if parents == "default":
        return list(DEFAULT_PARENTS)
    if isinstance(parents, str):
        return [p.strip() for p in parents.split(",") if p.strip()]
    return list(parents)


def path_overview(table: pd.DataFrame, score: str) -> pd.DataFrame:
    """:func:`path_table` by (parent, label): ID and shift accuracy, the mean AUROC of every
    score and the FPR@95 of ``score``."""
    show = (["parent", "label", "id_acc", "shift_acc"] + [f"auroc_{s}" for s in SCORES]
            + [f"fpr95_{score}"])
    return table[show].set_index(["parent", "label"])


def zero_shot_means(table: pd.DataFrame, score: str) -> pd.Series:
    """The zero-shot models' ID accuracy, shift accuracy and mean AUROC of ``score``, averaged
    over the parents."""
    return table[table.recipe == "zero-shot"][["id_acc", "shift_acc", f"auroc_{score}"]].mean()


def score_changes(table: pd.DataFrame, recipe: str = "full FT",
                  against: str = "zero-shot") -> pd.Series:
    """Per score (:data:`SCORES`): ``recipe``'s mean AUROC minus ``against``'s, each averaged
    over the parents."""
    return pd.Series({s: table.loc[table.recipe == recipe, f"auroc_{s}"].mean()
                      - table.loc[table.recipe == against, f"auroc_{s}"].mean() for s in SCORES})


def built_in_table(sets: EvalSets) -> pd.DataFrame:
    """What the synthetic world holds by construction: its categories, the sub-types per
    category and in all (the two-stage recipe's first label space), and the OOD sets."""
    from clipsafety import synth

    return pd.DataFrame([
        {"property": "categories", "value": len(synth.CATEGORIES)},
        {"property": "sub-types per category",
         "value": sorted({len(v) for v in synth.SUBTYPES.values()})},
        {"property": "sub-types (two-stage's first label space)",
         "value": sum(len(v) for v in synth.SUBTYPES.values())},
        {"property": "OOD sets", "value": ", ".join(sets.ood)},
    ])


#: the recipes on the WiSE-FT path, from alpha 0 to 1
WISE_PATH = ("zero-shot", "WiSE-FT", "full FT")


def wise_long(table: pd.DataFrame, score: str) -> pd.DataFrame:
    """The WiSE-FT path (:data:`WISE_PATH`) of :func:`path_table` in long form: parent, alpha,
    measure (id_acc, shift_acc, auroc_<score>), value."""
    w = table[table.recipe.isin(list(WISE_PATH))]
    return w.melt(id_vars=["parent", "alpha"], value_vars=["id_acc", "shift_acc", f"auroc_{score}"],
                  var_name="measure", value_name="value")


def scores_long(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`path_table`'s mean AUROC of every score in long form: parent, label, score,
    auroc."""
    long = table.melt(id_vars=["parent", "label"], value_vars=[f"auroc_{s}" for s in SCORES],
                      var_name="score", value_name="auroc")
    long["score"] = long["score"].str.removeprefix("auroc_")
    return long


#: the published sources of zero-shot / fine-tuned pairs, by parameter value
PUBLISHED_NAMES = {"ninco": "NINCO", "cood": "C-OOD"}


def published_long(pairs: pd.DataFrame) -> pd.DataFrame:
    """The :func:`published_pairs` with a zero-shot parent, two rows each: ``stage``
    (zero-shot, fine-tuned), ``acc`` (ID accuracy in percent; a source giving fractions is
    scaled) and ``au`` (mean AUROC)."""
    d = pairs.dropna(subset=["parent_auroc"])
    long = pd.concat([d.assign(stage="zero-shot", acc=d.parent_id_acc, au=d.parent_auroc),
                      d.assign(stage="fine-tuned", acc=d.id_acc, au=d.auroc)])
    long["acc"] = np.where(long["acc"] <= 1, long["acc"] * 100, long["acc"])
    return long


def published_changes(pairs: pd.DataFrame) -> pd.DataFrame:
    """The :func:`published_pairs` with a zero-shot parent and ``d``: fine-tuned minus parent
    AUROC."""
    return pairs.dropna(subset=["parent_auroc"]).assign(d=lambda t: t.auroc - t.parent_auroc)


__all__ = ["CLAIMS", "DEFAULT_PARENTS", "PUBLISHED_NAMES", "REAL_PATH", "RECIPES", "SCORES",
           "WISE_PATH", "EvalSets", "PAPER_CLAIMS", "assess_live", "best_recipe",
           "built_in_table", "check_alphas", "check_budget", "contrast", "eval_sets",
           "evaluate_head", "interior_alpha", "path_overview", "path_table",
           "per_set_table", "published_changes", "published_long", "published_pairs",
           "resolve_parents", "run_paths", "score_arrays", "score_changes", "scores_long",
           "training_premises", "untested_rows", "wise_long", "zero_shot_means"]


# --------------------------------------------------------------------------------------------
# the chapter's parameters and exercises (collected by the book runner and the pages)

ABOUT = "which fine-tuning recipe keeps zero-shot CLIP's OOD detection (an open question)."


def _parents_rule(v, params):
    if v == "default":
        return None
    items = _R.as_list(v)
    if not items:
        return "an empty list; expected 'default' or zero-shot zoo CLIP ids"
    for x in items:
        err = _R.zoo_clip("parent")(x, params)
        if err:
            return err
    return None


def _published_rule(v, params):
    return None if v in ([], "") else _R.subset(("ninco", "cood"), "published result(s)")(v, params)


PARAMETER_RULES = {
    "parents": _parents_rule, "budget": _R.from_check(check_budget),
    "alphas": _R.max_items(21, "each mixing coefficient is one more model to evaluate",
                           _R.from_check(check_alphas)),
    "train_set": _R.choice("train-labelled-10k", "train-labelled-30k"),
    "n_eval": _R.ints(20, "images per evaluation set; the largest set holds 2000", hi=2000),
    "score": _R.choice("mcm", "msp", "maxlogit", "energy"),
    "seed": _R.SEED, "n_boot": _R.N_BOOT,
    "published": _published_rule, "real_models": _R.real_models,
    "data_root": _R.folder("data_root"), "ood_sets": _R.datasets,
    "store": _R.folder("store"), "device": _R.device,
    "batch_size": _R.BATCH_SIZE,
}

EXERCISES = [
    Exercise("Fine-tune longer.", {"budget": 24000},
             "whether a longer run changes which recipe keeps detection"),
    Exercise("Start from a parent trained on the LAION-like source.",
             {"parents": ["zoo:clip-convnext-laion-100k"]},
             "whether the recipes rank the same for another training source"),
    Exercise("Judge the claims with the energy score.",
             {"score": "energy"},
             "which verdicts depend on the detection score"),
]
