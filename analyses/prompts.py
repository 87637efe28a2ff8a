# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Test-time prompts and the three safety objectives
#
# A zero-shot CLIP classifies with text: each class is the average text feature of a set of
# prompt templates ("a photo of a {}."). Tu, Deng & Gedeon compare CLIPs as they come, with
# OpenAI's 80 ImageNet templates; published work can only *observe* how the prompt changes a
# model (LeVine et al. report ECEs per prompt). The synthetic world can move one knob at a time:
# the image features of every zoo CLIP are computed once, and each template set (or learned
# prompt) is a new head over the same features. The question: what does the prompt do to
# **accuracy and effective robustness**, **calibration** (ECE and NLL before and after
# temperature scaling) and **OOD detection** (MCM AUROC), and does tuning prompts for
# accuracy (CoOp) cost calibration or OOD detection, with or without C-TPT's regulariser?
#
# :::{glue:md} summary
# :format: myst
# :::
#
# **Method.** Per (model, template set): ID top-1, mean top-1 over the shifts, ID-vs-shift
# effective robustness against the standard models' logit-scale linear fit (the simple reading,
# not the factors chapter's factor-level one), ECE (15 bins) and NLL on a stratified half of
# the ID set before and after a temperature fitted on the other half, and MCM AUROC of the ID
# set against each OOD set, averaged. Named sets: the world's analogues of the 80 / 7 / 1
# ImageNet templates (`openai`, `simple`, `single`) and three kinds written in the world's
# vocabulary (`descriptive`, `generic`, `misleading`); random subsets of the `openai` pool at
# several sizes give intervals over template choice. The prompt-tuning arm learns CoOp context
# vectors (4 tokens, started from "a photo of a", text tower frozen) on the labelled training
# source, with and without C-TPT's dispersion term (`loss = CE - lambda * ATFD`).

# %% tags=["parameters"]
models: str | list = "zoo"  # zero-shot CLIP ids, or a catalog name: zoo (its CLIPs) or real
template_sets: str | list = ["openai", "simple", "single", "descriptive", "generic", "misleading"]  # named template sets
subset_sizes: list = [1, 7, 15]  # sizes of the random template subsets of the openai pool
n_subsets = 20  # random subsets per size
budget = 200  # prompt-tuning steps per tuned prompt; 0 turns the tuning arm off
tune_models: str | list = ""  # CLIPs given learned prompts; empty: the 100k CLIPs of the run, else all
ctpt_lambda = 0.3  # weight of C-TPT's dispersion term
id_dataset = ""  # empty = synth:id-test for zoo models, imagenet:val for real models
shifts: str | list = ""  # empty: the eight shifts of the world for zoo models, none for real ones
ood_sets: str | list = ""  # empty: the five OOD sets of the world for zoo models, none for real ones
train_dataset = ""  # labelled set the prompts are tuned on; empty: synth:train-labelled-10k for zoo models
data_root = ""  # folder holding real datasets; empty = none
store = ""  # prediction and feature store; empty = the default location
device = "auto"
batch_size = 256
seed = 0  # seed of the subsets, the ID split, the tuning and the bootstrap
n_boot = 1000  # bootstrap resamples for intervals over models
n_bins = 15  # ECE bins
ece_margin = 0.01  # a spread counts as real above this many ECE or accuracy units
published = True  # show LeVine et al.'s published per-prompt ECEs

# %%
import time

import pandas as pd
import torch
from clipsafety import catalog, charts, claims, evidence, features, plots, readable, synth
from clipsafety.external import ExternalUnavailable
from clipsafety.groups import CLIP_ZEROSHOT, STANDARD
from clipsafety.readable import Column
from clipsafety.studies import calibration as calib_study
from clipsafety.studies import prompts as study
from IPython.display import Markdown, display

# the metrics' names in words, with their units (fractions shown in percent or points)
METRICS = {
    "arm": ("Template set", "text"), "acc_id": ("ID accuracy", "percent"),
    "acc_shift": ("Shift accuracy", "percent"), "eff_rob": ("Effective robustness", "points"),
    "ece_before": ("ECE before scaling (%)", "percent"),
    "ece_after": ("ECE with the fitted temperature (%)", "percent"),
    "nll_before": ("NLL before scaling", "number"),
    "nll_after": ("NLL with the fitted temperature", "number"),
    "auroc": ("AUROC", "percent"), "atfd": ("Text-feature dispersion (ATFD)", "number"),
    "T": ("Temperature", "ratio"),
}


def metric_table(df, caption):
    """``df`` (one row per template set) as a readable table of the :data:`METRICS` it has."""
    have = {*df.columns, *df.index.names}
    return readable.table(df, {k: v for k, v in METRICS.items() if k in have}, caption=caption)

t_start = time.perf_counter()
plots.setup()
run = evidence.chapter_run("prompts", models, zoo_dataset="synth:id-test",
                           real_dataset="imagenet:val", dataset=id_dataset, data_root=data_root,
                           store=store, device=device, batch_size=batch_size,
                           needs="ImageNet val (and, for shifts and OOD sets, their folders)")
groups = study.groups_of(run.models)
clips = [m for m in run.models if catalog.is_zero_shot_clip(m, groups[m])]
if not clips:
    raise ValueError(f"models {run.models[:5]} hold no zero-shot CLIP; pass zoo CLIP ids "
                     "(group clip-zeroshot) or openclip: ids.")
named_sets = study.resolve_template_sets(template_sets, real=run.real)
if not run.real:
    unk = study.check_vocabulary([t for ts in named_sets.values() for t in ts])
    if unk:
        raise ValueError(f"templates use words outside the world's vocabulary: {unk}")
pool = study.template_set("openai", real=run.real)
subsets = study.random_subsets(pool, sorted(set(int(s) for s in subset_sizes)), n_subsets, seed)
if shifts:
    shift_list = [shifts] if isinstance(shifts, str) else list(shifts)
else:
    shift_list = [] if run.real else [f"synth:{s}" for s in synth.SHIFTS]
if ood_sets:
    ood_list = [ood_sets] if isinstance(ood_sets, str) else list(ood_sets)
else:
    ood_list = [] if run.real else [f"synth:{s}" for s in synth.OOD_SETS]
train_set = train_dataset or ("" if run.real else "synth:train-labelled-10k")
if tune_models:
    tuned_ids = catalog.resolve_models(tune_models)
    if set(tuned_ids) - set(clips):
        raise ValueError(f"tune_models {sorted(set(tuned_ids) - set(clips))} are not among this "
                         f"run's CLIPs ({clips[:4]}...); pass ids from `models`.")
else:
    tuned_ids = [m for m in clips if m.endswith("-100k")] or clips
if not (budget and train_set):
    tuned_ids = []
verdicts = run.not_run_rows(study.CLAIMS)
others = [m for m in run.models if m not in clips]
display(Markdown(
    f"This run: **{len(clips)} zero-shot CLIPs** ({run.kind}), ID set `{run.dataset}`, "
    f"{len(shift_list)} shifts, {len(ood_list)} OOD sets; {len(named_sets)} named template sets "
    f"and {len(subsets)} random subsets (sizes {sorted(set(int(s) for s in subset_sizes))}, "
    f"{n_subsets} each, of the {len(pool)}-template pool); prompt tuning on "
    f"{len(tuned_ids)} CLIPs for {budget} steps on `{train_set or 'none'}`."
    + (f" The {len(others)} other models of `models` have no text tower: only the standard "
       "ones among them enter, as the effective-robustness baseline." if others else "")))

# %% [markdown]
# ## 1. Live evidence: one knob at a time
#
# Image features come from the store (`features/` beside the prediction records): computed
# once per (model, dataset), so each template set below costs one text-tower pass and one
# matrix product.

# %%
torch.set_num_threads(1)  # text passes of a few hundred prompts: threads cost more than they save
live_ok = run.live_ok
named, subs, tuned, hist = (pd.DataFrame() for _ in range(4))
feats = {}
if live_ok:
    t0 = time.perf_counter()
    towers = {m: features.clip_towers(m, run.device if run.device != "auto" else "cpu")
              for m in clips}
    sets_needed = [run.dataset, *shift_list, *ood_list]
    for m in clips:
        feats[m] = {d: features.image_features(towers[m], d, store=store or None,
                                               data_root=data_root or None,
                                               batch_size=batch_size) for d in sets_needed}
    t_feat = time.perf_counter() - t0
    # the standard models' trend for effective robustness (prediction records)
    std_ids = [m for m in run.models if groups[m] == STANDARD]  # the run's, else the zoo's
    if len(std_ids) < 2 and not run.real:
        zoo_groups = study.groups_of(catalog.resolve_models("zoo"))
        std_ids = [m for m, g in zoo_groups.items() if g == STANDARD]
    standard = pd.DataFrame(columns=["model", "acc_id", "acc_shift"])
    if std_ids and shift_list:
        recs = {d: run.collect(d, models=std_ids, progress=False) for d in [run.dataset, *shift_list]}
        standard = study.standard_points(recs, run.dataset, shift_list)
    t1 = time.perf_counter()
    split = {m: calib_study.temperature_split(feats[m][run.dataset].targets,
                                              calib_study.FIT_FRACTION, seed) for m in clips}
    evaluate = study.head_evaluator(feats, run.dataset, shift_list, ood_list, split, n_bins)
    named = study.named_heads(towers, named_sets, evaluate, standard, groups)
    subs = study.subset_heads(towers, pool, subsets, evaluate, standard, groups)
    t_heads = time.perf_counter() - t1
    display(Markdown(
        f"Features: {sum(len(v) for v in feats.values())} (model, dataset) records in "
        f"{t_feat:.1f} s; {len(named) + len(subs)} heads evaluated in {t_heads:.1f} s "
        f"({1000 * t_heads / max(1, len(named) + len(subs)):.0f} ms each)."))
    display(metric_table(study.arm_means(named),
                           caption="Per template set: the means over the models."))
else:
    display(Markdown(run.skipped_note("ImageNet val under `/data/imagenet/val`")))

# %% [markdown]
# Per template set, one point per CLIP: ID accuracy, ECE before temperature scaling and MCM
# AUROC. Click a group in a legend to highlight it.

# %%
if live_ok:
    panels = [charts.points_by_category(named, "arm", v, "model", x_title=label, height=160,
                                        width=520)
              for v, label in (("acc_id", "ID accuracy"), ("ece_before", "ECE before scaling"),
                               ("auroc", "MCM AUROC (mean over OOD sets)"))
              if named[v].notna().any()]
    display(charts.stack(*panels, title="the same image features, different template sets"))

# %% [markdown]
# ECE against ID accuracy, one panel per template set, before and after the ID temperature.

# %%
if live_ok:
    both, order = study.ece_before_after(named, named_sets)
    display(charts.scatter_panels(both, "acc_id", "ece", "panel", order, x_title="ID accuracy (%)",
                                  y_title="ECE", tooltip_extra=["T"],
                                  title="ECE before and after temperature scaling, per template set"))

# %% [markdown]
# Random subsets of the `openai` pool: per size, the mean over CLIPs of each draw, with the
# 2.5-97.5% range over draws (the interval over template choice).

# %%
if live_ok:
    summ = study.subset_summary(subs)
    ece_words = {"ece_before": "ECE before scaling", "ece_after": "ECE with the fitted temperature"}
    intervals = study.subset_intervals(summ).rename(columns=lambda c: next(
        (c.replace(k, v) for k, v in ece_words.items() if c.startswith(k)), c))
    display(charts.interval_points(intervals, "size", list(ece_words.values()), x_title="ECE",
                                   title="ECE over random template subsets"))

    def _cell(r):
        unit = METRICS[r.value][1]
        f = [readable.format_value(x, Column("value", unit)) for x in (r.mean, r.lo, r.hi)]
        return f"{f[0]} [{f[1]}, {f[2]}]"

    by_size = (summ.assign(cell=summ.apply(_cell, axis=1))
               .pivot(index="size", columns="value", values="cell"))
    display(readable.table(
        by_size, {"size": ("Templates in the subset", "count"),
                  **{v: METRICS[v][0] + {"percent": " (%)", "points": " (points)"}.get(
                      METRICS[v][1], "").replace(" (%) (%)", " (%)")
                     for v in by_size.columns}},
        caption="Over random template subsets: the mean over models, with the 2.5–97.5% range "
                "over draws in brackets."))
    txt = []
    for v, label, k in (("acc_id", "ID accuracy", 100), ("ece_before", "ECE before scaling", 100),
                        ("ece_after", "ECE after scaling", 100), ("auroc", "MCM AUROC", 100)):
        s = summ[summ.value == v]
        txt.append(f"{label}: " + "; ".join(f"{r.size} templates {r.mean * k:.1f} "
                                            f"[{r.lo * k:.1f}, {r.hi * k:.1f}]"
                                            for r in s.itertuples()))
    display(Markdown("**Finding (random subsets, percent).** " + ". ".join(txt) + "."))

# %% [markdown]
# ### Learned prompts: CoOp, with and without C-TPT
#
# Context vectors are trained on the cached features of the labelled training source
# (Adam, learning rate 0.005, batches of 256, `budget` steps, seeded), starting from the token
# embeddings of "a photo of a" (so at step 0 the head is exactly the `single` template's).
# The hand-written reference is therefore `single`.

# %%
if live_ok and tuned_ids:
    t2 = time.perf_counter()
    tuned, hist = study.tuned_heads(
        towers, tuned_ids, lambda m: features.image_features(
            towers[m], train_set, store=store or None, data_root=data_root or None,
            batch_size=batch_size),
        evaluate, standard, groups, steps=int(budget), ctpt_lambda=ctpt_lambda, seed=seed)
    t_tune = time.perf_counter() - t2
    cmp = study.tuning_comparison(named, tuned)
    cm = study.arm_means(cmp, values=["acc_id", "ece_before", "ece_after", "nll_before",
                                      "auroc", "atfd"])
    display(metric_table(cm,
                           caption="The single template against the tuned prompts: means over "
                                   "the models."))
    long = study.metric_long(cmp, ["acc_id", "ece_before", "auroc"])
    display(charts.score_comparison(long, "metric", "value", "arm",
                                    title="hand-written (single) vs CoOp vs CoOp + C-TPT"))
    display(Markdown(
        f"**Finding (prompt tuning, {len(tuned_ids)} CLIPs, {budget} steps, {t_tune:.0f} s).** "
        f"Mean ID accuracy: single {cm.loc['single', 'acc_id']:.1%}, CoOp "
        f"{cm.loc['coop', 'acc_id']:.1%}, C-TPT {cm.loc['ctpt', 'acc_id']:.1%}. ECE before "
        f"scaling: {cm.loc['single', 'ece_before'] * 100:.2f}, {cm.loc['coop', 'ece_before'] * 100:.2f}"
        f", {cm.loc['ctpt', 'ece_before'] * 100:.2f} points; MCM AUROC "
        f"{cm.loc['single', 'auroc']:.3f}, {cm.loc['coop', 'auroc']:.3f}, "
        f"{cm.loc['ctpt', 'auroc']:.3f}; ATFD {cm.loc['single', 'atfd']:.3f}, "
        f"{cm.loc['coop', 'atfd']:.3f}, {cm.loc['ctpt', 'atfd']:.3f}."))
elif live_ok:
    display(Markdown("No prompt tuning in this run (`budget` 0, or no labelled training set "
                     "on this path: pass `train_dataset`)."))

# %% [markdown]
# **Claim rules** (`clipsafety.studies.prompts.assess_prompt_claims`; each claim's test is on
# the methods page): per-model paired differences in points with percentile bootstrap
# intervals over models; a spread is per model the maximum minus the minimum over the named
# template sets, and counts when its mean's interval clears `ece_margin`. C-TPT raising ATFD
# holds by construction (its loss maximises ATFD), so that verdict is built in and no finding.
# These are the book's own hypotheses (extensions), never counted with the paper's claims.
#
# **The world's confidence regime.** The claims about ECE need the world's CLIPs to be
# confident the way real CLIPs are. The premise compares each zoo CLIP's confidence gap (mean
# confidence minus accuracy on the ID evaluation half, `openai` set) with the published gaps of
# real zero-shot CLIPs (C-OOD's softmax rows); when fewer than three quarters lie in the real
# range, those claims read *premise not met* on the world, with the measured gaps.

# %%
if live_ok:
    from clipsafety import premises, published_models  # noqa: E402

    regime = []
    if not run.real:
        try:
            ranges = premises.real_gap_ranges(published_models.cood_models(),
                                              {CLIP_ZEROSHOT: CLIP_ZEROSHOT})
            arm0 = "openai" if "openai" in set(named.arm) else named.arm.iloc[0]
            regime = premises.confidence_regime(
                named[named.arm == arm0].assign(group=CLIP_ZEROSHOT), ranges)
        except ExternalUnavailable as exc:
            display(plots.unavailable_note(exc, "The confidence-regime premise"))
            regime = [claims.Premise("confidence regime", False, "the published real range is "
                                     "unavailable", "C-OOD's file")]
        display(Markdown("**Premise.** " + "; ".join(p.text() for p in regime) + "."))
    live_rows = study.assess_prompt_claims(named, run.live_source, tuned=tuned,
                                           ece_margin=ece_margin, n_boot=n_boot, seed=seed,
                                           premises=regime)
    verdicts += live_rows
    display(readable.table(claims.claims_table(live_rows),
                           {"claim": "Claim", "label": "Verdict", "evidence": "Evidence"},
                           caption=f"The claims on {run.live_source}."))

# %% [markdown]
# **Mechanism checks** for claims that do not reproduce: the ensemble's accuracy gain per
# training source (the labelled source's captions have the single template's form, "a photo of
# a <name>."), and per arm the mean fitted temperature with the ECE before and after it.

# %%
if live_ok:
    gain = study.ensemble_gain(named)
    if gain is not None:
        display(readable.table(
            gain.rename_axis("source"),
            {"source": "Training source", "mean": ("Mean gain", "points"), "min": ("Lowest gain", "points"),
                   "max": ("Highest gain", "points"), "size": ("Models", "count")},
            caption="ID accuracy with the openai set minus with the single template, per "
                    "training source."))
        display(Markdown("**Check (ensemble).** Mean ID accuracy gain of the `openai` set over "
                         "`single`, per training source, in points: " + ", ".join(
                             f"{k} {v:+.1f}" for k, v in (gain["mean"] * 100).items()) + "."))
    over = study.arm_means(named, tuned, values=["T", "ece_before", "ece_after"])
    display(metric_table(over,
                           caption="Per template set: the mean fitted temperature, and the ECE "
                                   "before and after it."))
    display(Markdown("**Check (calibration).** Mean ID temperature per arm: " + ", ".join(
        f"{a} {t:.2f}" for a, t in over["T"].items()) + " (T > 1: the head was over-confident "
        "and is softened; T < 1: under-confident)."))

# %% [markdown]
# ## 2. Published evidence: LeVine et al.'s ECE per prompt
#
# LeVine et al. (`Pikus16/CLIP_Calibration`) publish the ECE of 13 open_clip / OpenAI CLIPs on
# CIFAR-10/100, Food-101 and SUN397 for each of their prompts: how much ECE moves with the
# prompt alone, on real models (their ECE code, not recomputable here).

# %%
pub_src = claims.PUBLISHED + " (LeVine et al.)"
spread = pd.DataFrame()
if published:
    try:
        prompt_pub = calib_study.published_prompt_eces()
        spread = study.prompt_ece_spread(prompt_pub)
        display(charts.points_by_category(spread.assign(group=CLIP_ZEROSHOT), "dataset", "spread",
                                          "model", x_title="ECE spread over prompts (max - min)",
                                          title="published: how far the prompt moves ECE"))
        display(readable.table(
            spread, {"dataset": "Data set", "model": "Model", "prompts": ("Prompts", "count"),
                     "min": ("Lowest ECE (%)", "percent", 2),
                     "median": ("Median ECE (%)", "percent", 2),
                     "max": ("Highest ECE (%)", "percent", 2),
                     "spread": ("Spread, highest minus lowest", "points", 2)},
            caption="LeVine et al.: each model's ECE over the prompts", download="prompt-ece-spread"))
        top = spread.loc[spread.spread.idxmax()]
        display(Markdown(
            f"**Finding (published, LeVine et al.).** Over {len(spread)} (model, dataset) pairs "
            f"and {int(spread.prompts.median())} prompts each (median), the ECE spread over "
            f"prompts has median {spread.spread.median() * 100:.1f} points and reaches "
            f"{top.spread * 100:.1f} ({top.model} on {top.dataset})."))
    except ExternalUnavailable as exc:
        display(plots.unavailable_note(exc, "The LeVine et al. panel"))
verdicts += study.published_claims(spread, pub_src, ece_margin, n_boot, seed)

# %% [markdown]
# ## 3. Real models on real data
#
# With `openclip:` ids and a `data_root`, the named sets are open_clip's
# (`OPENAI_IMAGENET_TEMPLATES`, 80; `SIMPLE_IMAGENET_TEMPLATES`, 7; one) plus the three kinds
# above, over `IMAGENET_CLASSNAMES`; random subsets come from the 80. Prompt tuning needs a
# labelled training set (`train_dataset`, e.g. a `folder:` of ImageNet training images).

# %%
display(Markdown(run.real_section()))

# %% [markdown]
# ## What the experiment supports, and what it cannot say

# %%
minutes = (time.perf_counter() - t_start) / 60
display(Markdown(
    f"This chapter ran in {minutes:.1f} minutes. The world supports statements about *its* "
    "CLIPs: tiny models whose text towers learned a vocabulary of "
    f"{len(synth.VOCAB)} words from captions the world writes, so how a template's words "
    "match the training captions is set by construction, not learned from the web. It cannot "
    "say how large the effects are on real CLIPs, whose prompts and captions are open-ended; "
    "the published per-prompt ECEs are the only real-model evidence here. To rerun with another "
    "budget: `make chapter NAME=prompts PARAMS='-p budget 500'`; on real models: "
    "`make chapter NAME=prompts PARAMS='-p models [\"openclip:ViT-B-32@openai\"] -p data_root "
    "/data -p device cuda'`."))

# %%
from clipsafety import pages  # noqa: E402

pages.end_chapter("prompts", verdicts, named=named, subsets=subs, tuned=tuned,
                  published_spread=spread)
