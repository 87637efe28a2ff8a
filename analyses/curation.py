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
# # Data curation and calibration
#
# Tu, Deng & Gedeon (section 6) find that CLIP's training distribution drives its calibration.
# Curated pools (DataComp, CommonPool's filters) change the training distribution on purpose:
# filtering by image-text alignment, balancing classes, removing duplicates, selecting for
# diversity. Does curation change calibration beyond what it does to accuracy? **No published
# study we found measures calibration under curation**: DataComp and open_clip publish the
# filtered models' accuracies, not their calibration.
#
# :::{glue:md} summary
# :format: myst
# :::
#
# **Method.** One raw pool (the world's raw-pool configuration: LAION-like, noisier captions,
# 20% exact duplicates). Each curation selects from it; every selection is trimmed at random to
# each training size, so curations are compared at equal size; one tiny CLIP is trained
# contrastively on each, seeded, for `budget` samples seen. Each is scored zero-shot on seeded
# subsets of the ID test set and the eight shifts: accuracy, ECE (15 bins) and NLL, before and
# after temperature scaling (T fitted on a stratified half of the ID subset, applied unchanged
# to the shifts). Per (metric, scaling, condition) the models' values are regressed on their
# accuracy; a curation's **mean residual** says how much better or worse calibrated its models
# are than their accuracy predicts. Intervals resample the evaluation images.

# %% tags=["parameters"]
curations: list = ["random", "dedup", "balanced", "alignment", "diversity"]  # filters: random, dedup, balanced, alignment, diversity
keep_fractions: list = [0.5]  # alignment filtering: share of the pool kept one model set per fraction (the exercises sweep several)
sizes: list = [5000, 10000]  # training-set sizes every curation is trimmed to
pool_size = 20000  # rows of the raw pool 100 to 100000; 100000: synth:train-raw-100k itself
budget = 32000  # samples seen per CLIP 256 to 500000
arch = "convnext"  # image tower of the tiny CLIPs: convnext, resnet, vit
reference = "zoo:clip-convnext-wit-100k"  # zoo CLIP scoring alignment and giving diversity's features
n_eval = 250  # images drawn from each evaluation set ID and 8 shifts
fit_fraction = 0.5  # share of each ID class the temperature is fitted on
seed = 0  # seed of curation, training, evaluation draws and bootstrap
n_boot = 200  # bootstrap resamples of the evaluation images
published = True  # show open_clip's published DataComp / CommonPool accuracies
jobs = 0  # worker processes training the CLIPs; 0: one per core (at most 4); results do not depend on it

# %%
import time

import pandas as pd
from clipsafety import charts, claims, plots, readable
from clipsafety.external import ExternalUnavailable
from clipsafety.readable import Column
from clipsafety.studies import curation as study
from clipsafety.studies import finetuning as ft_study
from clipsafety.synth import raw_pool
from IPython.display import Markdown, display

plots.setup()
t_start = time.time()
live = claims.WORLD
cur_names = study.check_curations(curations)
size_list = sorted(int(s) for s in sizes)
verdicts = []
display(Markdown(
    f"This run: curations {', '.join(f'`{c}`' for c in cur_names)} (alignment keeping "
    f"{', '.join(f'{f:.0%}' for f in keep_fractions)} of the pool), sizes "
    f"{', '.join(f'{s:,}' for s in size_list)}, a pool of {pool_size:,} raw pairs, {budget:,} "
    f"samples seen per `{arch}` CLIP, {n_eval} images per evaluation set, seed {seed}, "
    f"{n_boot} bootstrap resamples."))

# %% [markdown]
# ## 1. Live evidence: curation in the synthetic world
#
# The selections, each trimmed to every size (the properties the tests check: equal sizes,
# class balance of `balanced`, no duplicates after `dedup`).

# %%
pool = raw_pool(pool_size)
sel = study.selections(pool, cur_names, keep_fractions, size_list, seed, reference)
summary = study.selection_summary(pool, sel)
display(readable.table(
    summary, {"curation": "Curation", "size": ("Training images", "count"),
              **{c: (f"{c[0].upper()}{c[1:]} (%)", "percent") for c in summary.columns
                 if c not in ("curation", "size")}},
    caption="What each curation keeps of the raw pool."))

# %%
sets = ft_study.eval_sets(n_eval, seed, ood=[])
t_train = time.time()
preds, seconds = study.train_and_score(pool, sel, budget, arch, sets, seed, fit_fraction,
                                       jobs=jobs or None)
models = study.model_table(preds, sets)
display(readable.table(
    models, {"curation": "Curation", "size": ("Training images", "count"),
             "condition": "Test condition", "T": ("Temperature", "ratio"),
             "acc": ("Accuracy", "percent"),
             "conf_gap": ("Confidence minus accuracy (points)", "ratio", 1),
             "ece_before": ("ECE before scaling (%)", "percent"),
             "ece_after": ("ECE with the ID temperature (%)", "percent"),
             "nll_before": ("NLL before scaling", "number"),
             "nll_after": ("NLL with the ID temperature", "number")},
    caption="Every curated CLIP on the ID and shifted test sets", download="curation-models"))
n_jobs = jobs or study.default_jobs()
display(Markdown(f"Training and scoring {len(preds)} CLIPs took {time.time() - t_train:.0f} s on "
                 f"{min(n_jobs, len(preds))} worker process(es) ({sum(seconds.values()):.0f} s of "
                 "worker time)."))

# %% [markdown]
# ECE against accuracy, ID and under shift, before and after the ID temperature; click a
# curation in the legend to highlight it.

# %%
display(charts.faceted_scatter(study.calibration_long(models, "ece"), "acc", "value", "curation",
                               "condition", "scaling", extra=["size"], x_title="accuracy",
                               y_title="ECE", title="ECE against accuracy, per curation"))

# %% [markdown]
# The same for NLL.

# %%
display(charts.faceted_scatter(study.calibration_long(models, "nll"), "acc", "value", "curation",
                               "condition", "scaling", extra=["size"], x_title="accuracy",
                               y_title="NLL", title="NLL against accuracy, per curation"))

# %% [markdown]
# Accuracy and ECE against the training-set size.

# %%
measure_words = {"acc": "ID accuracy", "ece_before": "ECE before scaling",
                 "ece_after": "ECE with the ID temperature"}
display(charts.faceted_lines(study.size_long(models).assign(
                                 measure=lambda d: d["measure"].map(measure_words)),
                             "size", "curation", x_title="training images",
                             log_x=True, value_format=".4f", faded=0.12, height=160,
                             title="ID accuracy and ECE against size"))

# %% [markdown]
# **Does curation predict calibration beyond accuracy?** Each curation's mean residual on
# accuracy (positive: worse calibrated than its accuracy predicts), with intervals over
# resampled evaluation images at the Bonferroni level over the curations compared (the claims
# below ask whether *any* curation differs).

# %%
level, correction = claims.bonferroni(len(cur_names))
res = study.curation_residuals(preds, sets, n_boot=n_boot, seed=seed, level=level)
display(charts.interval_facets(study.residual_cells(res), "curation", "residual", "cell",
                               x_title="mean residual on accuracy",
                               title="does curation predict calibration beyond accuracy?"))
resid = study.residual_wide(res)


def _resid_header(metric, scaling, condition):
    when = "before scaling" if scaling == "before" else "with the ID temperature"
    unit = ("points", 2) if metric == "ece" else ("ratio", 3)
    return (f"{metric.upper()} {when}, {condition}", *unit)


headers = {" ".join(c): _resid_header(*c) for c in resid.columns}
resid.columns = list(headers)
display(readable.table(resid, {"curation": "Curation", **headers},
                       caption="Mean residual on accuracy per curation."))

# %%
def _cell(m, sc, cond):
    return study.residual_text(res, m, sc, cond)


mean_T = study.mean_temperatures(models)
display(Markdown(
    f"**Finding ({live}).** Mean ECE residual on accuracy per curation (ECE points), ID before "
    f"scaling: {_cell('ece', 'before', 'id')}. After the ID temperature: "
    f"{_cell('ece', 'after', 'id')}. Under shift before scaling: "
    f"{_cell('ece', 'before', 'shift')}; after: {_cell('ece', 'after', 'shift')}. NLL residuals, "
    f"ID before scaling: {_cell('nll', 'before', 'id')}; after: {_cell('nll', 'after', 'id')}. "
    "Fitted temperatures, mean per curation: "
    + ", ".join(f"{c} {t:.2f}" for c, t in mean_T.items()) + "."))

# %% [markdown]
# **Claim rules** (`clipsafety.studies.curation.assess`; the book's own hypotheses, never
# counted with the paper's claims): for each claim's cell (metric, scaling, condition),
# reproduced when at least one curation's mean residual has a Bonferroni-corrected interval
# that excludes zero, inconclusive otherwise. Premises, measured: every model at twice chance
# on the ID set, and the curated CLIPs' confidence gaps (mean confidence minus accuracy) in the
# range of real zero-shot CLIPs (C-OOD); each model is one training run (single seed), which
# every verdict carries.

# %%
learn = study.learning_summary(models)
display(Markdown(
    f"{learn['above']} of {learn['n']} models reach twice chance ({2 * study.CHANCE:.0%}) on "
    f"the ID set (ID accuracy {learn['id_min']:.1%} to {learn['id_max']:.1%}); "
    f"{learn['at_bound']} fitted temperatures sit "
    "at the fit's upper bound (near-uniform predictions). "
    + ("" if learn["learned"] else
       "**Some CLIPs are near chance at this budget**: the claims below read *premise not "
       "met*, not refuted; rerun with a larger budget (the command at the end).")))
from clipsafety import premises as P  # noqa: E402
from clipsafety import published_models
from clipsafety.groups import CLIP_ZEROSHOT  # noqa: E402

try:
    regime = P.confidence_regime(
        models[models.condition == "id"].assign(group=CLIP_ZEROSHOT),
        P.real_gap_ranges(published_models.cood_models(), {CLIP_ZEROSHOT: CLIP_ZEROSHOT}))
except ExternalUnavailable as exc:
    display(plots.unavailable_note(exc, "The confidence-regime premise"))
    regime = [claims.Premise("confidence regime", False, "the published real range is "
                             "unavailable", "C-OOD's file")]
prem = study.premises_of(models, regime)
display(Markdown("**Premises.** " + "; ".join(p.text() for p in prem) + "."))
live_rows = study.assess(res, live, level=level, correction=correction, n_models=len(preds),
                         premises=prem)
verdicts += live_rows
display(readable.table(claims.claims_table(live_rows),
                       {"claim": "Claim", "label": "Verdict", "evidence": "Evidence"},
                       caption="The claims on the synthetic world."))

# %% [markdown]
# **Built into the synthetic world (not findings).** What the raw pool holds by construction,
# read from its configuration and its rows: the share of duplicates, of captions naming no
# category and of misaligned captions, which the filters then remove.

# %%
display(readable.table(study.built_in_table(pool),
                       {"property": "Property", "value": ("Value", "number")},
                       caption="What the raw pool holds by construction."))

# %% [markdown]
# ## 2. Published evidence
#
# open_clip publishes the zero-shot accuracies of the models DataComp trained on CommonPool's
# filter variants (no filter, basic, LAION-2B-style, CLIP-score, image-based, DataComp-1B).
# Their calibration is not published: it needs the real path (the models' predictions on
# ImageNet and its shifts, which the calibration chapter computes for any `openclip:` id).

# %%
dc = pd.DataFrame()
pub = claims.PUBLISHED
if published:
    try:
        dc = study.published_datacomp()
        view = study.datacomp_view(dc)
        no_acc = "open_clip reports no accuracy on this set for the model"
        display(readable.table(
            view, {"model": "Model", "arch": "Architecture", "tag": "Training data",
                   "samples_seen": Column("Samples seen", "count",
                                          missing="open_clip gives no sample count"),
                   **{c: Column(f"{name} (%)", "percent", missing=no_acc)
                      for c, name in (("imagenet", "ImageNet"), ("imagenet_v2", "ImageNet-V2"),
                                      ("imagenet_r", "ImageNet-R"),
                                      ("imagenet_sketch", "ImageNet-Sketch"),
                                      ("objectnet", "ObjectNet")) if c in view.columns}},
            caption="The DataComp / CommonPool models in open_clip's table",
            download="datacomp-models"))
        display(Markdown(f"**Published (open_clip).** {len(dc)} DataComp / CommonPool models "
                         "with accuracies and no calibration."))
    except ExternalUnavailable as exc:
        display(plots.unavailable_note(exc, "open_clip's published results"))
verdicts += study.untested_rows(pub, "no published study measures calibration under curation; "
                              "open_clip publishes the filtered models' accuracy only")

# %% [markdown]
# ## 3. Real models on real data
#
# The DataComp / CommonPool models are in the real catalog; their ECE and NLL before and after
# temperature scaling, ID and under shift, come from the calibration chapter run on them with
# ImageNet and its shifts on disk.

# %%
ids = study.command_models(dc)
verdicts += study.untested_rows(claims.REAL, "this chapter trains no real CLIPs; run the "
                                "calibration chapter on the DataComp models (command below)")
display(Markdown(
    "No real models ran here. To measure the calibration of the DataComp / CommonPool filter "
    f"variants:\n\n```\nmake chapter NAME=calibration PARAMS='-p models {ids} -p data_root "
    "/data -p device cuda'\n```"))

# %% [markdown]
# ## What this supports, and what it cannot say
#
# The experiment supports statements about tiny CLIPs trained briefly on curated subsets of
# one synthetic pool: whether, at equal size and budget, a curation leaves its models better or
# worse calibrated than their accuracy predicts, with intervals over test images. It cannot say
# how much of a residual is one training seed, nor whether real CLIPs trained on billions of
# curated pairs behave alike: the DataComp models' calibration needs the real path above.

# %%
display(Markdown(
    f"This run took {time.time() - t_start:.0f} s. To rerun it with another budget or sizes, "
    "or on real models:\n\n```\nmake chapter NAME=curation PARAMS='-p budget 100000 -p sizes "
    "[5000,10000] -p pool_size 40000'\n"
    f"make chapter NAME=calibration PARAMS='-p models {ids} -p data_root /data -p device cuda'\n```"))

# %% [markdown]
# ## The claims, per evidence source

# %%
from clipsafety import pages  # noqa: E402

pages.end_chapter("curation", verdicts, models=models, residuals=res, selections=summary,
                  published_datacomp=dc,
                  seconds={f"{c}@{s}": v for (c, s), v in seconds.items()})
