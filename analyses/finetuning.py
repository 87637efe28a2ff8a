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
# # Fine-tuning and OOD detection
#
# Tu, Deng & Gedeon (section 5) report that some CLIPs fine-tuned on ImageNet detect
# out-of-distribution inputs worse than zero-shot CLIPs, and that fine-tuning through a larger
# label space first (ImageNet-12k/21k, then 1k) detects better than fine-tuning on 1k directly.
# Two recipes from the robust fine-tuning literature claim to keep what the zero-shot model
# had while gaining accuracy: **LP-FT** (Kumar et al. 2022: a linear probe first, then full
# fine-tuning from it) and **WiSE-FT** (Wortsman et al. 2022: interpolate the zero-shot and the
# fine-tuned weights). Both were judged on accuracy under shift; this chapter asks what they do
# to detection.
#
# :::{glue:md} summary
# :format: myst
# :::
#
# **Method.** From the same zero-shot zoo CLIPs (the *parents*), train live, seeded, each
# full fine-tuning run seeing `budget` training images: the linear probe (frozen tower, head
# from the zero-shot head), full fine-tuning (head from the zero-shot head), LP-FT, two-stage
# fine-tuning (the world's 30 sub-types for half the budget, then the 10 categories) and the
# WiSE-FT path from the zero-shot model (alpha 0) to the fully fine-tuned one (alpha 1).
# Every variant is scored on the same seeded subsets of the ID test set, the eight shifts and
# the five OOD sets: accuracy, and AUROC / FPR@95 of MCM, MSP, MaxLogit and energy (methods
# page). Intervals resample the evaluation images (not the training seed).

# %% tags=["parameters"]
parents: str | list = "default"  # zero-shot zoo CLIPs to fine-tune; default: one ConvNeXt CLIP WIT-like, 100k
budget = 4000  # training images seen per full fine-tuning run 256 to 200000
alphas: list = [0.0, 0.25, 0.5, 0.75, 1.0]  # WiSE-FT mixing coefficients in [0, 1]
train_set = "train-labelled-10k"  # the labelled set every recipe trains on
n_eval = 250  # images drawn from each evaluation set ID, 8 shifts, 5 OOD sets
score = "msp"  # the detection score of the claims: mcm, msp, maxlogit, energy
seed = 0  # seed of training, of the evaluation draws and of the bootstrap
n_boot = 200  # bootstrap resamples of the evaluation images
published: list = ["ninco", "cood"]  # published pairs to show: ninco, cood empty: none
real_models: list = []  # real path: zero-shot / fine-tuned ids of one backbone empty: the chapter ViT-B/16 triple
data_root = ""  # folder holding ImageNet val and the OOD sets for the real path; empty: none
ood_sets: str | list = ""  # OOD sets of the real path; empty: the six real OOD sets
store = ""  # prediction store of the real path; empty: the default location
device = "auto"
batch_size = 64

# %%
import time

import pandas as pd
from clipsafety import charts, claims, evidence, plots, readable
from clipsafety.external import ExternalUnavailable
from clipsafety.groups import group_label
from clipsafety.readable import Column
from clipsafety.studies import finetuning as study
from clipsafety.studies import ood as ood_study
from IPython.display import Markdown, display

# the measures' names in words (fractions shown in percent, differences in points)
SCORE_NAMES = {"mcm": "MCM", "msp": "MSP", "maxlogit": "max logit", "energy": "energy"}
MEASURES = {"id_acc": "ID accuracy", "shift_acc": "shift accuracy",
            **{f"auroc_{k}": f"AUROC, {v}" for k, v in SCORE_NAMES.items()}}

plots.setup()
t_start = time.time()
parent_ids = study.resolve_parents(parents)
grid = study.check_alphas(alphas)
live = claims.WORLD
verdicts = []
display(Markdown(
    f"This run: **{len(parent_ids)} parent(s)** ({', '.join(f'`{p}`' for p in parent_ids)}), "
    f"{budget:,} training images per fine-tuning run on `{train_set}`, WiSE-FT alphas "
    f"{', '.join(f'{a:g}' for a in grid)}, {n_eval} images per evaluation set, detection score "
    f"`{score}` for the claims, seed {seed}, {n_boot} bootstrap resamples."))

# %% [markdown]
# ## 1. Live evidence: fine-tuning paths in the synthetic world

# %%
sets = study.eval_sets(n_eval, seed)
evals = study.run_paths(parent_ids, budget, grid, sets, train_set=train_set, seed=seed,
                        progress=None)
seconds = evals["_seconds"]
table = study.path_table(evals, sets)
overview = study.path_overview(table, score)
display(readable.table(
    overview, {"parent": "Parent", "label": "Recipe",
               **{c: (MEASURES[c][0].upper() + MEASURES[c][1:], "percent")
                  for c in overview.columns if c in MEASURES},
               f"fpr95_{score}": (f"FPR@95, {SCORE_NAMES[score]}", "percent")},
    caption="Every recipe on every parent: accuracy and detection, mean over the OOD sets."))
display(Markdown(f"Training and evaluation took {sum(seconds.values()):.0f} s "
                 f"({', '.join(f'{p}: {s:.0f} s' for p, s in seconds.items())})."))

# %% [markdown]
# Accuracy against detection, one panel per parent. The dashed line is the WiSE-FT path from
# the zero-shot model to the fully fine-tuned one; click a recipe in the legend to highlight it.

# %%
display(charts.path_panels(table, "id_acc", f"auroc_{score}", "recipe", "parent", study.WISE_PATH,
                           "alpha", series_order=study.RECIPES, values=["id_acc", "shift_acc"],
                           x_title="ID accuracy (%)", y_title=f"mean AUROC ({score})",
                           title=f"accuracy against detection along each fine-tuning path ({score})"))

# %% [markdown]
# The same against the mean accuracy over the eight shifts.

# %%
display(charts.path_panels(table, "shift_acc", f"auroc_{score}", "recipe", "parent", study.WISE_PATH,
                           "alpha", series_order=study.RECIPES, values=["id_acc", "shift_acc"],
                           x_title="mean shift accuracy (%)", y_title=f"mean AUROC ({score})",
                           title=f"accuracy against detection along each fine-tuning path ({score})"))

# %% [markdown]
# Along the WiSE-FT path: ID accuracy, shift accuracy and AUROC against the mixing
# coefficient (hover for values, click a parent to highlight it).

# %%
display(charts.faceted_lines(study.wise_long(table, score).assign(
                                 measure=lambda d: d["measure"].map(MEASURES)),
                             "alpha", "parent",
                             x_title="WiSE-FT alpha (0 = zero-shot, 1 = fine-tuned)",
                             x_format=".2f", title="the WiSE-FT path"))

# %% [markdown]
# Does the choice of score change the picture? Mean AUROC of each score per recipe.

# %%
display(charts.mean_points(study.scores_long(table), "label", "auroc", "score",
                           y_title="mean AUROC over parents",
                           title="the four detection scores along each recipe"))

# %% [markdown]
# **Findings.** Computed from the table above: each recipe against zero-shot (mean over
# parents), and which recipe gains ID accuracy without losing detection.

# %%
best = study.best_recipe(table, score)
display(readable.table(
    best, {"label": "Recipe", "d_id_acc": ("ID accuracy gain", "points"),
           "d_shift_acc": ("Shift accuracy gain", "points"),
           f"d_auroc_{score}": (f"AUROC change, {SCORE_NAMES[score]}", "points"),
           "keeps": "Gains accuracy, keeps detection"},
    caption="Each recipe against zero-shot, mean over parents."))
keep = best[best["keeps"]]
zs_row = study.zero_shot_means(table, score)
lines = [f"- {lab}: ID accuracy {r.d_id_acc * 100:+.1f} points, shift accuracy "
         f"{r.d_shift_acc * 100:+.1f} points, mean AUROC ({score}) {getattr(r, f'd_auroc_{score}'):+.3f}"
         for lab, r in best.iterrows()]
display(Markdown(
    f"**Finding ({live}).** Zero-shot: ID accuracy {zs_row.id_acc:.1%}, shift accuracy "
    f"{zs_row.shift_acc:.1%}, mean AUROC ({score}) {zs_row[f'auroc_{score}']:.3f}. Against it:\n\n"
    + "\n".join(lines) + "\n\n"
    + (f"The recipe that gains ID accuracy and keeps detection best is **{keep.index[0]}** "
       f"(AUROC {keep.iloc[0][f'd_auroc_{score}']:+.3f}, ID accuracy "
       f"{keep.iloc[0]['d_id_acc'] * 100:+.1f} points)." if len(keep) else
       "No recipe gains ID accuracy without losing mean AUROC in this run.")
    + " Full fine-tuning minus zero-shot, mean AUROC by score: "
    + ", ".join(f"{s} {d:+.3f}" for s, d in study.score_changes(table).items()) + "."
    + f" These are {len(parent_ids)} parent(s) at one training seed and a budget of "
    f"{budget:,} images; the intervals below resample test images only."))

# %% [markdown]
# **The book's hypotheses** (extensions, `clipsafety.studies.finetuning.assess_live`):
# LP-FT minus full fine-tuning in mean shift accuracy and in mean AUROC; WiSE-FT at the
# interior alpha nearest 0.5 minus the better end in shift accuracy, and minus full
# fine-tuning in AUROC. Each is directional (interval above zero), its interval resamples the
# evaluation images of one training run per parent (so it is labelled single-seed), and it is
# judged only when every variant compared is at least twice chance in ID accuracy.
#
# **The paper's fine-tuning claims** ("some fine-tuned CLIPs detect worse than zero-shot CLIPs",
# "12k before 1k improves detection") have their home in the OOD chapter ({doc}`ood`), which
# judges them once, at equal ID accuracy, on the zoo's fine-tuned CLIPs and on NINCO and
# C-OOD. The live runs here measure them too, as one more description of these runs, not as
# a second verdict:

# %%
live_rows, contrasts = study.assess_live(evals, sets, table, live, score, n_boot, seed)
verdicts += live_rows
display(readable.table(claims.claims_table(live_rows),
                       {"claim": "Claim", "label": "Verdict", "evidence": "Evidence"},
                       caption="The claims on the synthetic world."))
ft_worse = contrasts["ood-ft-worse"]
two = contrasts["ood-2stage"]
display(Markdown(
    f"Full fine-tune minus zero-shot, mean {score} AUROC over the OOD sets: " + "; ".join(
        f"`{p}` {r['est']:+.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}]" for p, r in ft_worse)
    + f". Two-stage minus full fine-tune: {two['est']:+.3f} [{two['lo']:+.3f}, {two['hi']:+.3f}]"
    " (intervals over evaluation images, one run per parent)."))

# **Built into the synthetic world (not findings).** The world has a two-level label
# hierarchy by construction (every category has the same number of sub-types, the
# two-stage recipe's first label space), and the OOD sets are drawn from generators the
# training sources never use. Read from the world's configuration:

# %%
display(readable.table(study.built_in_table(sets),
                       {"property": "Property", "value": ("Value", "number")},
                       caption="What the synthetic world holds by construction."))

# %% [markdown]
# ## 2. Published evidence: zero-shot and fine-tuned CLIP pairs
#
# NINCO (Bitterwolf et al. 2023) and C-OOD (Galil et al. 2023) publish detection results of
# zero-shot CLIPs and of CLIPs fine-tuned on ImageNet: NINCO for OpenAI and LAION-2B ViT-B/16
# fine-tuned directly and through ImageNet-21k, C-OOD for `CLIP_<arch>` against
# `CLIP_finetuned_<arch>`. The rules are the OOD chapter's. No LP-FT or WiSE-FT model is in
# either.

# %%
pairs = pd.DataFrame()
pub_names = [study.PUBLISHED_NAMES[p] for p in published]
if pub_names:
    try:
        readers = {"NINCO": lambda: ood_study.ninco_summary(ood_study.ninco_results()),
                   "C-OOD": ood_study.cood_results}
        pub_avg = {n: readers[n]() for n in pub_names}
        pairs = study.published_pairs(pub_avg)
        no_parent = "the source has no zero-shot parent of this model"
        display(readable.table(
            pairs.assign(group=pairs["group"].map(group_label)),
            {"source": "Source", "model": "Model", "group": "Group", "parent": "Zero-shot parent",
             "id_acc": ("ImageNet accuracy", "percent"), "auroc": ("Mean AUROC", "percent"),
             "parent_id_acc": Column("Parent's ImageNet accuracy", "percent", missing=no_parent),
             "parent_auroc": Column("Parent's mean AUROC", "percent", missing=no_parent)},
            caption="Published zero-shot and fine-tuned CLIP pairs."))
        display(charts.stage_lines(study.published_long(pairs), "acc", "au", "model", "source",
                                   "stage", extra=["parent"], x_title="ID accuracy (%)",
                                   y_title="mean AUROC",
                                   title="published zero-shot -> fine-tuned CLIP pairs"))
        both = study.published_changes(pairs)
        display(Markdown("**Measured (published; judged in the OOD chapter).** " + "; ".join(
            f"{r.source} {r.model}: AUROC {r.parent_auroc:.3f} -> {r.auroc:.3f} ({r.d:+.3f})"
            for r in both.itertuples()) + "."))
        verdicts += study.untested_rows(
            claims.PUBLISHED, f"{' and '.join(pub_names)} publish no LP-FT or WiSE-FT model")
    except ExternalUnavailable as exc:
        display(plots.unavailable_note(exc, "The published pairs"))
        verdicts += study.untested_rows(claims.PUBLISHED, "published files unavailable")
else:
    verdicts += study.untested_rows(claims.PUBLISHED, "published=[] in this run")

# %% [markdown]
# ## 3. Real models on real data
#
# The real counterpart of the live paths is one backbone's zero-shot CLIP and its published
# fine-tunes (by default OpenAI ViT-B/16 zero-shot, fine-tuned on ImageNet-1k, and fine-tuned
# through ImageNet-12k), evaluated through the prediction store on ImageNet val and the OOD
# sets. LP-FT and WiSE-FT need the weights and a training set, which this path does not train.

# %%
real_ids = list(real_models) or list(study.REAL_PATH)
real_run = evidence.chapter_run("finetuning", real_ids, zoo_dataset="synth:id-test",
                                real_dataset="imagenet:val", data_root=data_root, store=store,
                                device=device, batch_size=batch_size,
                                needs="ImageNet val and the OOD sets")
real_avg = pd.DataFrame()
if data_root:
    real_ood = ood_study.resolve_ood_sets(ood_sets, real=True)
    id_recs = real_run.collect()
    ood_recs = {s: real_run.collect(s) for s in real_ood}
    real_tab = ood_study.detection_table(id_recs, ood_recs, clip_score="mcm", other_score="msp")
    real_avg = ood_study.average_over_sets(real_tab)
    display(Markdown(f"Real path: {len(real_ids)} models on `imagenet:val` against "
                     f"{len(real_ood)} OOD sets ({', '.join(real_ood)})."))
    display(real_avg.round(4))
    verdicts += study.untested_rows(claims.REAL, "the real path trains no LP-FT or WiSE-FT model")
else:
    verdicts += study.untested_rows(claims.REAL, "no data_root given")
    models = "[" + ",".join(f'"{m}"' for m in real_ids) + "]"
    display(Markdown(
        "No real models ran here (the book's machines have neither pretrained weights nor "
        "ImageNet). To run the real path:\n\n```\nmake chapter NAME=finetuning "
        f"PARAMS='-p real_models {models} -p data_root /data -p device cuda'\n```"))

# %% [markdown]
# ## What this supports, and what it cannot say
#
# The experiment supports statements about tiny CLIPs fine-tuned for a few thousand images
# on the synthetic world: how each recipe moves ID accuracy, shift accuracy and detection
# from the same parent, with intervals over test images. It cannot say how much of a
# difference is the recipe rather than the one training seed, nor whether real CLIPs
# fine-tuned on ImageNet for many epochs move the same way: the published pairs above and the
# real path speak to that, and neither holds LP-FT or WiSE-FT models.

# %%
display(Markdown(
    f"This run took {time.time() - t_start:.0f} s. To rerun it with another budget, more "
    "parents or on real models:\n\n```\n"
    "make chapter NAME=finetuning PARAMS='-p budget 20000'\n"
    "make chapter NAME=finetuning PARAMS='-p parents [\"zoo:clip-resnet-wit-100k\","
    "\"zoo:clip-convnext-wit-100k\",\"zoo:clip-vit-wit-100k\"]'\n"
    "make chapter NAME=finetuning PARAMS='-p data_root /data -p device cuda'\n```"))

# %% [markdown]
# ## The claims, per evidence source

# %%
from clipsafety import pages  # noqa: E402

pages.end_chapter("finetuning", verdicts, table=table, best=best.reset_index(),
                  published_pairs=pairs, real=real_avg, seconds=seconds)
