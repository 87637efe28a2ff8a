"""Study of the test-time prompts chapter: what the zero-shot template set, and learned prompts,
do to accuracy, effective robustness, calibration and OOD detection.

The world lets one knob move at a time: the image features of every CLIP are computed once per
dataset (:mod:`clipsafety.features`) and each template set is a new head over the same
features. Per (model, template set) the row of :func:`evaluate_head` holds:

- ``acc_id``: top-1 on the ID test set; ``acc_shift``: mean top-1 over the shifts (each on its
  label subset); ``eff_rob``: ID-vs-shift effective robustness, ``acc_shift`` minus the
  logit-scale linear fit of the standard models' ``acc_shift`` on their ``acc_id``
  (:func:`with_effective_robustness`; the simpler reading, not the factor-level one);
- ``ece_before`` / ``nll_before`` on the ID evaluation half, ``T`` fitted (minimum NLL) on
  the other, stratified half, ``ece_after`` / ``nll_after`` with it (15-bin top-label ECE);
- ``auroc``: MCM (``max softmax(cos / T_mcm)``) AUROC of the ID test set against each OOD set,
  averaged over the OOD sets.

Template sets (:data:`TEMPLATE_SETS`): the world's analogues of OpenAI's 80 / 7 / 1 ImageNet
templates (``openai`` = the world's 30 ``default``, ``simple``, ``single``) and three
hand-written kinds in the world's vocabulary: ``descriptive`` (words about shape and object),
``generic`` (no description) and ``misleading`` (styles, corruptions and clutter the ID images
do not have). Random subsets of the ``openai`` pool at several sizes give intervals over
template choice (:func:`random_subsets`). On real CLIPs the named sets are open_clip's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from clipsafety import claims, metrics
from clipsafety import rules as _R
from clipsafety.rules import Exercise
from clipsafety.summaries import bootstrap_mean

__all__ = ["CLAIMS", "KINDS", "subset_measures", "tuned_measures", "PUBLISHED_UNTESTABLE", "TEMPLATE_SETS", "TUNED_ARMS", "TUNING_LR",
           "CONFIDENCE_CLAIMS", "VALUES", "arm_means", "assess_prompt_claims", "assess_published_ece",
           "check_vocabulary", "ece_before_after", "ensemble_gain", "evaluate_head", "groups_of",
           "head_evaluator", "metric_long", "named_heads", "prompt_ece_spread",
           "published_claims", "random_subsets", "resolve_template_sets", "standard_points",
           "subset_heads", "subset_intervals", "subset_summary", "subset_table", "template_set",
           "tuned_heads", "tuning_comparison", "with_effective_robustness"]

#: hand-written kinds of the world's templates (every word is in the world's vocabulary)
KINDS: dict[str, list[str]] = {
    "descriptive": ["a {} shape.", "a photo of a {} shape.", "a {} shape on a plain background.",
                    "a photo of a small {} shape.", "a photo of a big {} shape.",
                    "a {} with a pattern.", "a photo of a {} object.",
                    "a picture of the {} shape."],
    "generic": ["a {}.", "the {}.", "this is a {}.", "it is a {}.", "a photo of a {}.",
                "a picture of a {}.", "look at the {}.", "there is a {}."],
    "misleading": ["a sketch of a {}.", "a silhouette of a {}.", "a painting of a {}.",
                   "a blurry noisy pixelated {}.", "a {} behind a bar.",
                   "a person and a {} in a cluttered scene.", "a cartoon toy {}.",
                   "a dark rotated cropped {}."],
}
#: the template sets a run can name; openai/simple/single mean open_clip's on real CLIPs
TEMPLATE_SETS = ("openai", "simple", "single", *KINDS)


def check_vocabulary(templates: Sequence[str]) -> list[str]:
    """The words of ``templates`` outside the world's vocabulary (they would be ``<unk>``)."""
    import re

    from clipsafety.synth import VOCAB

    vocab = set(VOCAB)
    return sorted({w for t in templates for w in re.findall(r"[a-z]+", t.replace("{}", "").lower())
                   if w not in vocab})


def template_set(name: str, real: bool = False) -> list[str]:
    """The templates of a named set (:data:`TEMPLATE_SETS`) for the zoo or real CLIPs."""
    if name not in TEMPLATE_SETS:
        raise ValueError(f"template set {name!r} is unknown; expected one of {list(TEMPLATE_SETS)}.")
    if name in KINDS:
        return list(KINDS[name])
    if real:
        from clipsafety.heads import resolve_templates

        return resolve_templates(name)[0]
    from clipsafety.zoo import resolve_templates

    return resolve_templates(name)[0]


def resolve_template_sets(names, real: bool = False) -> dict[str, list[str]]:
    """``{name: templates}`` of a parameter (a list or comma-separated string of names)."""
    items = [x.strip() for x in names.split(",")] if isinstance(names, str) else list(names)
    bad = [x for x in items if x not in TEMPLATE_SETS]
    if bad or not items:
        raise ValueError(f"template_sets: {bad or 'empty'}; expected a non-empty list of "
                         f"{list(TEMPLATE_SETS)}.")
    return {n: template_set(n, real) for n in items}


def random_subsets(pool: Sequence[str], sizes: Sequence[int], n: int, seed: int = 0) -> list[dict]:
    """``n`` random subsets (without replacement) of ``pool`` per size: ``{size, draw,
    templates}``; deterministic for ``seed``. A size equal to the pool's gives one subset."""
    rng = np.random.default_rng(seed)
    out = []
    for size in sizes:
        if not 1 <= size <= len(pool):
            raise ValueError(f"subset size {size} is not in [1, {len(pool)}] (the pool's size).")
        for d in range(1 if size == len(pool) else n):
            idx = np.sort(rng.choice(len(pool), size, replace=False))
            out.append({"size": int(size), "draw": d, "index": idx.tolist(),
                        "templates": [pool[i] for i in idx]})
    return out


# --------------------------------------------------------------------------------------------
# one head on one model's cached features

def _mcm_auroc(id_cos, ood_cos_list, T: float) -> float:
    s_id = metrics.mcm(id_cos, T=T)
    return float(np.mean([metrics.auroc(s_id, metrics.mcm(c, T=T)) for c in ood_cos_list]))


def evaluate_head(weights, id_rec, shift_recs: Sequence, ood_recs: Sequence, *, split=None,
                  n_bins: int = 15, mcm_T: float = 1.0) -> dict:
    """Metrics of one zero-shot head ``weights`` ``[D, C]`` on feature records (module
    docstring). ``split``: ``(fit_idx, eval_idx)`` of the ID rows for the temperature."""
    import warnings

    from clipsafety.features import logits

    W = weights.detach().cpu().numpy() if hasattr(weights, "detach") else np.asarray(weights)
    s = id_rec.scale
    L, t = logits(id_rec.features, W, s), id_rec.targets
    fit, ev = split if split is not None else metrics.stratified_split(t, 0.5, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        T = metrics.fit_temperature(L[fit], t[fit])
    row = {"acc_id": metrics.accuracy(L, t),
           "ece_before": metrics.ece_from_logits(L[ev], t[ev], n_bins=n_bins),
           "nll_before": metrics.nll(L[ev], t[ev]), "T": T,
           "ece_after": metrics.ece_from_logits(L[ev], t[ev], temperature=T, n_bins=n_bins),
           "nll_after": metrics.nll(L[ev], t[ev], temperature=T)}
    conf, correct = metrics.confidences(L[ev], t[ev])
    # the confidence gap (mean confidence minus accuracy, points; > 0 over-confident), the
    # world's confidence regime against the real one (clipsafety.premises)
    row["conf_gap"] = 100.0 * float(np.mean(conf) - np.mean(correct))
    row["acc_shift"] = (float(np.mean([metrics.accuracy(logits(r.features, W, s), r.targets,
                                                         r.label_subset) for r in shift_recs]))
                        if shift_recs else np.nan)
    row["auroc"] = (_mcm_auroc(logits(id_rec.features, W), [logits(r.features, W) for r in ood_recs],
                               mcm_T)
                    if ood_recs else np.nan)
    return row


def with_effective_robustness(table: pd.DataFrame, standard: pd.DataFrame,
                              scale: str = "logit") -> pd.DataFrame:
    """``table`` with ``eff_rob``: ``acc_shift`` minus the fit of the standard models'
    (``standard``: ``acc_id``, ``acc_shift``, one row per model) trend at ``acc_id``."""
    out = table.copy()
    if len(standard) < 2 or out["acc_shift"].isna().all():
        out["eff_rob"] = np.nan
        return out
    x = np.r_[standard["acc_id"].to_numpy(float), out["acc_id"].to_numpy(float)]
    y = np.r_[standard["acc_shift"].to_numpy(float), out["acc_shift"].to_numpy(float)]
    mask = np.r_[np.ones(len(standard), bool), np.zeros(len(out), bool)]
    out["eff_rob"] = metrics.effective_robustness(x, y, baseline_mask=mask, scale=scale)[len(standard):]
    return out


VALUES = ("acc_id", "acc_shift", "eff_rob", "ece_before", "ece_after", "nll_before",
          "nll_after", "auroc")


def subset_summary(table: pd.DataFrame, values: Sequence[str] = VALUES) -> pd.DataFrame:
    """Random-subset rows (``size``, ``draw``) -> per size and value: the mean over models of
    each draw, summarised over draws by their mean and 2.5% / 97.5% percentiles."""
    per_draw = table.groupby(["size", "draw"])[list(values)].mean().reset_index()
    rows = []
    for size, g in per_draw.groupby("size"):
        for v in values:
            x = g[v].to_numpy(float)
            rows.append({"size": size, "value": v, "mean": float(np.nanmean(x)),
                         "lo": float(np.nanpercentile(x, 2.5)), "hi": float(np.nanpercentile(x, 97.5)),
                         "draws": len(x)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# published evidence: LeVine et al.'s ECE per prompt

def prompt_ece_spread(prompt: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model) of LeVine et al.'s long table (dataset, model, prompt, ece): the
    number of prompts, the min, median, max and spread (max - min) of ECE over prompts."""
    g = prompt.groupby(["dataset", "model"])["ece"]
    out = g.agg(prompts="size", min="min", median="median", max="max").reset_index()
    return out.assign(spread=out["max"] - out["min"])


# --------------------------------------------------------------------------------------------
# claims

def _ext(cid, text, ref, direction, test, compares="template sets of the same zero-shot CLIPs"):
    return claims.Claim(cid, f"{text} ({ref})", "", kind=claims.EXTENSION, direction=direction,
                        compares=compares, conditioned_on="the same models and images",
                        test=test, home="prompts")


#: the book's hypotheses for the open question on test-time prompts (extensions: claims of the
#: prompt literature, tested here, never tallied with the paper's)
CLAIMS = {
    "prompt-ensemble": _ext(
        "prompt-ensemble", "Ensembling many prompt templates raises zero-shot accuracy over a "
        "single template", "Radford et al. 2021, section 3.1.4", "greater",
        "per-model ID accuracy of the ensemble minus the single template, in points; mean over "
        "models with a bootstrap interval over models; reproduced above zero"),
    "prompt-ece": _ext(
        "prompt-ece", "The prompt template alone moves a zero-shot CLIP's ECE by more than one "
        "point", "LeVine et al. 2023", "greater",
        "per model, the spread (max minus min) of ECE over the template sets, in points; mean "
        "over models with a bootstrap interval over models; reproduced above 1 point"),
    "prompt-ts": _ext(
        "prompt-ts", "Temperature scaling removes most of the ECE differences between prompt "
        "templates", "LeVine et al. 2023", "less",
        "per model, the ECE spread after minus before temperature scaling, in points; "
        "reproduced when the interval lies below minus half the mean spread before scaling"),
    "prompt-er": _ext(
        "prompt-er", "The template set does not change effective robustness (it is a property "
        "of the image features)", "Fang et al. 2022", "less",
        "per model, the spread of effective robustness over the template sets, in points; "
        "reproduced when the interval lies below 1 point"),
    "coop-acc": _ext(
        "coop-acc", "Learned context vectors (CoOp) beat hand-written templates on ID accuracy",
        "Zhou et al. 2022", "greater", "per-model ID accuracy, CoOp minus the hand-written "
        "template it starts from, in points; interval over models above zero"),
    "coop-calib": _ext(
        "coop-calib", "Tuning prompts for accuracy costs calibration (higher ECE than the "
        "hand-written template)", "Yoon et al. 2024 (C-TPT), section 3", "greater",
        "per-model ECE, CoOp minus the hand-written template, in points; interval above zero"),
    "coop-ood": _ext(
        "coop-ood", "Tuning prompts for accuracy costs OOD detection (lower MCM AUROC)",
        "this chapter's question", "less", "per-model MCM AUROC, CoOp minus the hand-written "
        "template; interval below zero"),
    "ctpt-ece": _ext(
        "ctpt-ece", "C-TPT's dispersion term lowers the ECE of tuned prompts", "Yoon et al. 2024",
        "less", "per-model ECE, C-TPT minus CoOp, in points; interval below zero"),
    "ctpt-atfd": _ext(
        "ctpt-atfd", "C-TPT's dispersion term raises the text-feature dispersion (ATFD)",
        "Yoon et al. 2024", "greater", "per-model ATFD, C-TPT minus CoOp; built in: the term "
        "maximises ATFD"),
}
#: the claims about confidence: on the world they need its confidence regime (premises)
CONFIDENCE_CLAIMS = ("prompt-ece", "prompt-ts", "coop-calib", "ctpt-ece")
#: values in points on the page (fractions in the tables)
_POINTS = {"acc_id", "acc_shift", "eff_rob", "ece_before", "ece_after"}


def _diff(tab: pd.DataFrame, a: str, b: str, value: str, n_boot: int, seed: int):
    """Paired per-model ``value(a) - value(b)`` over ``arm`` rows, bootstrap over models."""
    w = tab.pivot_table(index="model", columns="arm", values=value)
    if a not in w or b not in w:
        return np.nan, np.nan, np.nan, 0
    d = (w[a] - w[b]).dropna()
    est, lo, hi = bootstrap_mean(d.to_numpy(), n_boot=n_boot, seed=seed)
    return est, lo, hi, len(d)


def _judge(cid, source, est, lo, hi, effect, n, value="", threshold=0.0, data=()):
    k = 100.0 if value in _POINTS or value == "points" else 1.0
    return claims.interval(CLAIMS[cid], source, k * est, k * lo, k * hi, effect=effect,
                           scale="points" if k == 100.0 else ("ATFD" if value == "atfd" else "AUROC"),
                           unit=claims.MODELS, n=(n,), sides=("zero-shot CLIPs",),
                           threshold=threshold, data=data)


def assess_prompt_claims(named: pd.DataFrame, source: str, *, tuned: pd.DataFrame | None = None,
                         ece_margin: float = 0.01, n_boot: int = 1000, seed: int = 0,
                         ensemble: str = "openai", single: str = "single",
                         premises: list | None = None) -> list:
    """Judgements of :data:`CLAIMS` on the rows of the named template sets (``named``: model,
    arm = set name, the :data:`VALUES`) and the tuned arms (``tuned``: arm ``coop`` /
    ``ctpt`` with ``atfd``; the hand-written reference is arm ``single``, the template CoOp
    starts from); each claim's rule is its ``test`` (:data:`CLAIMS`). ``premises``: the world's
    confidence-regime premises (:func:`clipsafety.premises.confidence_regime`), gating the
    claims about confidence (:data:`CONFIDENCE_CLAIMS`)."""
    out = []
    models = tuple(sorted(named["model"].unique()))
    est, lo, hi, n = _diff(named, ensemble, single, "acc_id", n_boot, seed)
    out.append(_judge("prompt-ensemble", source, est, lo, hi,
                      f"ID accuracy, {ensemble} ensemble minus {single} template", n, "acc_id",
                      data=models))

    def spread(v):
        return named.groupby("model")[v].agg(lambda x: x.max() - x.min())

    sets = named.arm.nunique()
    sb = spread("ece_before")
    est, lo, hi = bootstrap_mean(sb.to_numpy(), n_boot=n_boot, seed=seed)
    out.append(_judge("prompt-ece", source, est, lo, hi,
                      f"per-model ECE spread over {sets} template sets (mean over models)",
                      len(sb), "points", threshold=100 * ece_margin, data=models))
    sa = spread("ece_after")
    d = (sa - sb).to_numpy()
    est, lo, hi = bootstrap_mean(d, n_boot=n_boot, seed=seed)
    out.append(_judge("prompt-ts", source, est, lo, hi,
                      f"ECE spread after minus before temperature scaling (before "
                      f"{100 * sb.mean():.1f}, after {100 * sa.mean():.1f} points); threshold: "
                      "minus half the spread before", len(d), "points",
                      threshold=-50 * float(sb.mean()), data=models))
    if named["eff_rob"].notna().any():
        se = spread("eff_rob").dropna()
        est, lo, hi = bootstrap_mean(se.to_numpy(), n_boot=n_boot, seed=seed)
        out.append(_judge("prompt-er", source, est, lo, hi,
                          f"per-model spread of effective robustness over {sets} template sets",
                          len(se), "points", threshold=100 * ece_margin, data=models))
    else:
        out.append(claims.not_testable(CLAIMS["prompt-er"], source,
                                       "no shifts or no standard models in this run"))
    if tuned is None or not len(tuned):
        out += [claims.not_testable(CLAIMS[c], source, "no prompt tuning in this run (no "
                                    "labelled training set on this path, or budget 0)")
                for c in ("coop-acc", "coop-calib", "coop-ood", "ctpt-ece", "ctpt-atfd")]
    else:
        both = pd.concat([named[named.arm == single], tuned], ignore_index=True)
        for cid, a, b, v in (("coop-acc", "coop", single, "acc_id"),
                             ("coop-calib", "coop", single, "ece_before"),
                             ("coop-ood", "coop", single, "auroc"),
                             ("ctpt-ece", "ctpt", "coop", "ece_before"),
                             ("ctpt-atfd", "ctpt", "coop", "atfd")):
            est, lo, hi, n = _diff(both, a, b, v, n_boot, seed)
            what = {"acc_id": "ID accuracy", "ece_before": "ECE", "auroc": "MCM AUROC",
                    "atfd": "ATFD"}[v]
            j = _judge(cid, source, est, lo, hi, f"{what}, {a} minus {b}", n, v,
                       data=tuple(sorted(tuned["model"].unique())))
            if cid == "ctpt-atfd" and j.verdict != claims.NOT_TESTABLE:
                # C-TPT's loss maximises ATFD: a rise is what the method optimises, not a finding
                j = claims.built_in(CLAIMS[cid], source, "C-TPT's dispersion term maximises "
                                    "ATFD, so tuning with it raises ATFD by construction", j)
            out.append(j)
    if premises:
        out = [claims.gated(j, premises) if j.claim.claim_id in CONFIDENCE_CLAIMS else j
               for j in out]
    return out


def assess_published_ece(spread: pd.DataFrame, source: str, ece_margin: float = 0.01,
                         n_boot: int = 1000, seed: int = 0):
    """*ECE* claim on LeVine et al.'s spreads (:func:`prompt_ece_spread`): the mean spread over
    (model, dataset) pairs with two or more prompts, in points, interval above ``ece_margin``.
    The resampling unit is the (model, dataset) pair, so the interval treats one CLIP's four
    datasets as four units: it is labelled with its number of CLIPs."""
    spread = spread[spread["prompts"] >= 2]
    est, lo, hi = bootstrap_mean(spread["spread"].to_numpy(), n_boot=n_boot, seed=seed)
    n_models = spread["model"].nunique()
    return claims.interval(
        CLAIMS["prompt-ece"], source, 100 * est, 100 * lo, 100 * hi,
        effect=f"mean ECE spread over prompts, {len(spread)} (model, dataset) pairs of "
               f"{n_models} CLIPs", scale="points", unit=claims.MODELS, n=(n_models,),
        sides=("CLIPs",), threshold=100 * ece_margin,
        data=("Pikus16/CLIP_Calibration dataset_eces.json",
              *sorted(f"levine/{m}" for m in spread["model"].unique())))


def groups_of(models: Sequence[str]) -> dict:
    """``{model: group}`` from the model metadata (the zoo catalog or the real one)."""
    from clipsafety.models import model_metadata

    meta = model_metadata(list(models))
    return dict(zip(meta["model"], meta["group"], strict=True))


def standard_points(records_by_set: dict, id_set: str, shifts: Sequence[str]) -> pd.DataFrame:
    """``acc_id`` and mean ``acc_shift`` of prediction records (``{set: {model: record}}``)."""
    rows = []
    for m, r in records_by_set[id_set].items():
        acc_s = [metrics.accuracy(records_by_set[s][m].logits, records_by_set[s][m].targets,
                                  records_by_set[s][m].label_subset) for s in shifts]
        rows.append({"model": m, "acc_id": metrics.accuracy(r.logits, r.targets, r.label_subset),
                     "acc_shift": float(np.mean(acc_s)) if acc_s else np.nan})
    return pd.DataFrame(rows, columns=["model", "acc_id", "acc_shift"])


# --------------------------------------------------------------------------------------------
# the chapter's tables: one head per (model, template set, subset or tuned arm)

def head_evaluator(features_by_model: dict, id_set: str, shift_sets: Sequence[str],
                   ood_sets: Sequence[str], splits: dict, n_bins: int = 15):
    """A function ``evaluate(model, weights) -> dict``: :func:`evaluate_head` of a head over the
    model's cached features (``features_by_model``: ``{model: {dataset: feature record}}``) on
    ``id_set``, the ``shift_sets`` and the ``ood_sets``, with the model's ID split from
    ``splits`` (``{model: (fit_idx, eval_idx)}``)."""
    def evaluate(m, W):
        f = features_by_model[m]
        return evaluate_head(W, f[id_set], [f[d] for d in shift_sets], [f[d] for d in ood_sets],
                             split=splits[m], n_bins=n_bins)

    return evaluate


def _with_groups(table: pd.DataFrame, groups: dict) -> pd.DataFrame:
    table["group"] = [groups[m] for m in table["model"]]
    return table


def named_heads(towers: dict, named_sets: dict, evaluate, standard: pd.DataFrame,
                groups: dict) -> pd.DataFrame:
    """One row per (model of ``towers``, named template set): model, arm (the set's name),
    n_templates, atfd (:func:`clipsafety.prompt_tuning.atfd` of the head's class embeddings),
    the ``evaluate`` metrics (:func:`head_evaluator`), ``eff_rob`` against the ``standard``
    models' trend (:func:`with_effective_robustness`) and the model's group (``groups``).
    Models in ``towers`` order, sets in ``named_sets`` order."""
    from clipsafety import features
    from clipsafety.prompt_tuning import atfd

    rows = []
    for m in towers:
        for name, ts in named_sets.items():
            W = features.zero_shot_weights(towers[m], ts)
            rows.append({"model": m, "arm": name, "n_templates": len(ts),
                         "atfd": float(atfd(W.T)), **evaluate(m, W)})
    return _with_groups(with_effective_robustness(pd.DataFrame(rows), standard), groups)


def subset_heads(towers: dict, pool: Sequence[str], subsets: Sequence[dict], evaluate,
                 standard: pd.DataFrame, groups: dict) -> pd.DataFrame:
    """One row per (model of ``towers``, random subset of :func:`random_subsets`): model, size,
    draw, the ``evaluate`` metrics, ``eff_rob`` and group, as :func:`named_heads`. Every
    template of ``pool`` is encoded once per model; a subset's head is the average of its
    templates' embeddings (:func:`clipsafety.features.head_of`)."""
    from clipsafety import features

    rows = []
    for m in towers:
        E = features.template_embeddings(towers[m], pool)
        for s in subsets:
            rows.append({"model": m, "size": s["size"], "draw": s["draw"],
                         **evaluate(m, features.head_of(E, s["index"]))})
    return _with_groups(with_effective_robustness(pd.DataFrame(rows), standard), groups)


#: the tuned arms: CoOp (no dispersion term) and CoOp + C-TPT (the chapter's ``ctpt_lambda``)
TUNED_ARMS = ("coop", "ctpt")
#: Adam's learning rate of the prompt tuning
TUNING_LR = 5e-3


def tuned_heads(towers: dict, models: Sequence[str], train_features, evaluate,
                standard: pd.DataFrame, groups: dict, *, steps: int, ctpt_lambda: float,
                seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(tuned, history)``: per model of ``models`` and arm of :data:`TUNED_ARMS`, CoOp context
    vectors trained (:func:`clipsafety.prompt_tuning.train_prompts`, ``steps`` steps,
    learning rate :data:`TUNING_LR`, ``seed``) on ``train_features(model)`` (the labelled
    training set's feature record), with C-TPT's weight 0 for ``coop`` and ``ctpt_lambda`` for
    ``ctpt``. ``tuned``: one row per (model, arm) with n_templates 0, atfd and the
    ``evaluate`` metrics, ``eff_rob`` and group as :func:`named_heads`; ``history``: the
    training logs with model and arm."""
    from clipsafety.prompt_tuning import atfd, train_prompts

    rows, hist = [], []
    for m in models:
        tr = train_features(m)
        for arm, lam in zip(TUNED_ARMS, (0.0, float(ctpt_lambda)), strict=True):
            res = train_prompts(towers[m].clip, towers[m].tokenizer, towers[m].classes,
                                tr.features, tr.targets, towers[m].scale, steps=int(steps),
                                lam=lam, lr=TUNING_LR, seed=seed)
            W = res.learner.weights()
            rows.append({"model": m, "arm": arm, "n_templates": 0, "atfd": float(atfd(W.T)),
                         **evaluate(m, W)})
            hist += [{**h, "model": m, "arm": arm} for h in res.history]
    tuned = _with_groups(with_effective_robustness(pd.DataFrame(rows), standard), groups)
    return tuned, pd.DataFrame(hist)


def arm_means(*tables: pd.DataFrame, values: Sequence[str] = VALUES) -> pd.DataFrame:
    """Mean of each of ``values`` over models, per ``arm``, over the non-empty ``tables``
    together; arms in their order of appearance."""
    parts = [t for t in tables if len(t)]
    rows = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return rows.groupby("arm", sort=False)[list(values)].mean()


def ece_before_after(named: pd.DataFrame, arms: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """``(both, order)``: the named-set rows twice, with ``scaling`` "before" / "after", ``ece``
    the ECE before scaling / with the ID temperature, and ``panel`` "<arm> (<scaling>)";
    ``order``: the panels, every arm of ``arms`` before scaling, then after."""
    both = pd.concat([named.assign(scaling="before", ece=named["ece_before"]),
                      named.assign(scaling="after", ece=named["ece_after"])], ignore_index=True)
    both["panel"] = both["arm"] + " (" + both["scaling"] + ")"
    return both, [f"{a} ({s})" for s in ("before", "after") for a in arms]


def subset_intervals(summ: pd.DataFrame,
                     values: Sequence[str] = ("ece_before", "ece_after")) -> pd.DataFrame:
    """One row per subset size of :func:`subset_summary` (``size`` "<n> templates"), with
    ``<value>``, ``<value>_lo`` and ``<value>_hi`` (mean and 2.5-97.5% range over draws) for
    each of ``values``."""
    wide = summ.pivot_table(index="size", columns="value", values=["mean", "lo", "hi"])
    iv = pd.DataFrame({"size": [f"{s} templates" for s in wide.index]})
    for v in values:
        for k, suffix in (("mean", ""), ("lo", "_lo"), ("hi", "_hi")):
            iv[f"{v}{suffix}"] = wide[(k, v)].to_numpy()
    return iv


def subset_table(summ: pd.DataFrame) -> pd.DataFrame:
    """:func:`subset_summary` as one row per value and one column per (statistic, size),
    rounded to 4 decimals."""
    return (summ.assign(**{c: summ[c].round(4) for c in ("mean", "lo", "hi")})
            .pivot_table(index="value", columns="size", values=["mean", "lo", "hi"]).round(4))


def tuning_comparison(named: pd.DataFrame, tuned: pd.DataFrame,
                      reference: str = "single") -> pd.DataFrame:
    """The rows of the hand-written ``reference`` set (the template CoOp starts from) for the
    tuned models, followed by the ``tuned`` rows."""
    ref = named[named["model"].isin(tuned["model"]) & (named["arm"] == reference)]
    return pd.concat([ref, tuned], ignore_index=True)


def metric_long(table: pd.DataFrame, values: Sequence[str]) -> pd.DataFrame:
    """``table`` (model, arm, ``values``) in long form: model, arm, metric, value."""
    return table.melt(id_vars=["model", "arm"], value_vars=list(values), var_name="metric",
                      value_name="value")


def ensemble_gain(named: pd.DataFrame, ensemble: str = "openai",
                  single: str = "single") -> pd.DataFrame | None:
    """Per training source of the models (:func:`clipsafety.models.model_metadata`): the
    ``mean``, ``min``, ``max`` and ``size`` over models of ID accuracy with the ``ensemble``
    set minus with the ``single`` template (fractions). ``None`` when either set is missing."""
    from clipsafety.models import model_metadata

    w = named.pivot_table(index="model", columns="arm", values="acc_id")
    if not {ensemble, single} <= set(w.columns):
        return None
    meta = model_metadata(list(dict.fromkeys(named["model"])))
    src = dict(zip(meta["model"], meta["source"], strict=True))
    return (w[ensemble] - w[single]).groupby(pd.Series(src)).agg(["mean", "min", "max", "size"])


#: why LeVine et al.'s file can test the ECE claim only
PUBLISHED_UNTESTABLE = ("LeVine et al. publish ECE per prompt only: no accuracy, no "
                        "temperature-scaled ECE, no OOD scores and no learned prompts")


def published_claims(spread: pd.DataFrame, source: str, ece_margin: float = 0.01,
                     n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """The verdict rows of the published evidence, in :data:`CLAIMS` order with the ECE claim
    first. Rule: the ECE claim is judged on LeVine et al.'s spreads
    (:func:`assess_published_ece`), not testable when ``spread`` is empty (the file is not
    available, or the run did not ask for it); every other claim is not testable
    (:data:`PUBLISHED_UNTESTABLE`)."""
    rows = [assess_published_ece(spread, source, ece_margin, n_boot, seed) if len(spread) else
            claims.not_testable(CLAIMS["prompt-ece"], source,
                                "the published file is not available or published=False")]
    return rows + [claims.not_testable(c, source, PUBLISHED_UNTESTABLE)
                   for k, c in CLAIMS.items() if k != "prompt-ece"]


# --------------------------------------------------------------------------------------------
# the chapter's parameters and exercises (collected by the book runner and the pages)

ABOUT = ("hand-written, random and tuned prompts against calibration, OOD detection and "
         "robustness (an open question).")


def _subset_sizes_rule(v, params):
    items = _R.as_list(v) if not isinstance(v, int) else [v]
    if not items or any(isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= 80
                        for x in items):
        return "expected a non-empty list of integers in [1, 80] (templates per random subset)"
    return None


def _budget_rule(v, params):
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 5000:
        return ("expected an integer in [0, 5000]: prompt-tuning steps per tuned prompt (0 = no "
                "tuning; the default 200 runs in about a minute)")
    return None


PARAMETER_RULES = {
    **_R.LIVE, "models": _R.clip_models,
    "template_sets": _R.subset(TEMPLATE_SETS, "template set(s)"),
    "subset_sizes": _R.max_items(10, "each size builds n_subsets more heads", _subset_sizes_rule),
    "n_subsets": _R.ints(1, "random subsets per size; each is one more head to evaluate", hi=500),
    "budget": _budget_rule, "tune_models": _R.optional_models,
    "ctpt_lambda": _R.number_range(0, 100, "weight of C-TPT's dispersion term; 0 turns it off"),
    "id_dataset": _R.dataset, "shifts": _R.datasets, "ood_sets": _R.datasets,
    "train_dataset": _R.dataset, "n_bins": _R.N_BINS,
    "ece_margin": _R.ECE_MARGIN, "published": _R.choice(True, False),
}

def tuned_measures(payload: dict) -> dict:
    """What the tuning exercises compare (:attr:`clipsafety.rules.Exercise.measures`): per
    tuned arm (CoOp, CoOp + C-TPT), the mean ID accuracy and ECE of its CLIPs in percent (the
    recorded ``tuned`` table), then each claim's verdict and estimate."""
    from clipsafety.pages import claim_measures

    t = pd.DataFrame((payload.get("tables") or {}).get("tuned") or [])
    out = {}
    if len(t) and {"arm", "acc_id", "ece_before"} <= set(t.columns):
        for arm, part in t.groupby("arm", sort=False):
            n = part["model"].nunique() if "model" in part else len(part)
            out[f"{arm}: ID accuracy (%, mean of {n} CLIPs)"] = 100 * part["acc_id"].mean()
            out[f"{arm}: ECE before scaling (%, mean of {n} CLIPs)"] = 100 * part["ece_before"].mean()
    return {**out, **claim_measures(payload)}


def subset_measures(payload: dict) -> dict:
    """What the random-subset exercise compares: per subset size, the width of the middle 95%
    of ECE and of ID accuracy over the random subsets (points, mean over the CLIPs) and the
    draws per CLIP (the recorded ``subsets`` table), then each claim's verdict and estimate."""
    from clipsafety.pages import claim_measures

    t = pd.DataFrame((payload.get("tables") or {}).get("subsets") or [])
    out = {}
    if len(t) and {"size", "model", "ece_before", "acc_id"} <= set(t.columns):
        for size, part in t.groupby("size"):
            tpl = f"{size} template{'s' if size != 1 else ''}"
            by_model = part.groupby("model")
            n = by_model.ngroups
            for col, what in (("ece_before", "ECE before scaling"), ("acc_id", "ID accuracy")):
                width = by_model[col].quantile(0.975) - by_model[col].quantile(0.025)
                out[f"{what}, middle 95% over subsets of {tpl} (points, mean of "
                    f"{n} CLIPs)"] = 100 * float(width.mean())
            out[f"random subsets of {tpl} per CLIP"] = float(by_model.size().median())
    return {**out, **claim_measures(payload)}


EXERCISES = [
    Exercise("Tune the prompts longer.", {"budget": 1000},
             "whether CoOp's ECE gap over the hand-written template grows with the steps",
             tuned_measures),
    Exercise("Weigh C-TPT's dispersion term more.", {"ctpt_lambda": 1.0},
             "accuracy and ECE of CoOp + C-TPT (its ATFD rises by construction)", tuned_measures),
    Exercise("Draw more random template subsets of each size.",
             {"n_subsets": 50},
             "how wide the intervals over template choice become", subset_measures),
]
