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
# # Robustness to visual factors (paper section 4.1)
#
# ImageNet-X (Idrissi et al. 2023) annotates each ImageNet validation image with the visual
# factors that make it unusual: an odd **pose**, a busy **background**, an unusual
# **pattern** or **colour**, an object that is **smaller** or **larger** than usual, a
# **partial view**, a rare **subcategory**, ... Tu, Deng & Gedeon ask whether zero-shot
# CLIP is more robust to these factors than ImageNet classifiers once its overall accuracy is
# taken into account. They report that CLIP is more robust on 6 of 10 factors, less robust on
# pose, and that the training source changes the pattern.
#
# **Method.** For each factor, factor accuracy is plotted against overall accuracy. A line is
# fitted over the *standard* ImageNet models (default: least squares on logit-transformed
# accuracies, Taori et al.'s convention; the paper does not say which scale it used). A
# model's **factor-level effective robustness** is its factor accuracy minus the line's
# prediction at its overall accuracy, in accuracy points. Groups are compared by their mean
# effective robustness with percentile bootstrap intervals over models.
#
# The same analysis runs on three kinds of evidence: the synthetic world with the project's
# model zoo, ImageNet-X's published per-factor tables of real networks, and real models on
# real ImageNet when the reader supplies the data.

# %% tags=["parameters"]
models: str | list = "zoo"  # model ids, or a catalog name: zoo (synthetic world) or real
dataset = ""  # empty = synth:id-test for zoo models, imagenet:val for real models
data_root = ""  # folder holding real datasets (imagenet/val, ...); empty = none
store = ""  # prediction store; empty = the default location
device = "auto"
batch_size = 256
templates: str | list = "openai"  # zero-shot templates for CLIP heads: openai (80), simple (7), single
seed = 0
n_boot = 1000  # bootstrap resamples for bands and intervals
factors: str | list = "paper"  # paper (the 10), all (the 16 of ImageNet-X) or a list of factor names
scale = "logit"  # fitting scale: logit, probit or linear
which = "top"  # ImageNet-X annotations: top (one factor per image) or multi
baseline_group = "standard"  # the group whose trend defines effective robustness
published = ["imagenet_testbed", "modelvshuman"]  # published ImageNet-X collections

# %%
import pandas as pd
from clipsafety import charts, claims, evidence, plots, summaries
from clipsafety.external import ExternalUnavailable
from clipsafety.groups import CLIP_ZEROSHOT, group_label
from clipsafety.studies import factors as study
from IPython.display import Markdown, display

plots.setup()
factor_list = study.resolve_factors(factors)
run = evidence.chapter_run("factors", models, zoo_dataset="synth:id-test",
                           real_dataset="imagenet:val", dataset=dataset, data_root=data_root,
                           store=store, device=device, batch_size=batch_size,
                           templates=templates, needs="ImageNet val")
live_source = run.live_source
verdicts = run.not_run_rows(study.CLAIMS)  # one row per (claim, evidence source)
display(Markdown(
    f"This run: **{len(run.models)} models** ({run.kind}) on `{run.dataset}`, "
    f"{len(factor_list)} factors ({', '.join(factor_list)}), ImageNet-X `{which}` annotations, "
    f"{scale} scale, baseline group *{group_label(baseline_group)}*, {n_boot} bootstrap resamples."))

# %% [markdown]
# ## 1. Live evidence: the models of this run
#
# Predictions come from the prediction store (computed once per model and dataset, then
# cached). With the default parameters these are the zoo's tiny models on the synthetic
# world, whose images carry ImageNet-X's factor annotations computed from the rendering
# parameters. With real model ids and a `data_root`, the same cells run on ImageNet val with
# ImageNet-X's own annotations.

# %%
live_ok = run.live_ok
if live_ok:
    live = study.with_effective_robustness(
        study.factor_long(run.collect(), factor_list, which=which), baseline_group, scale)
    live_grid = study.trend_grid(live, baseline_group, scale, n_boot=n_boot, seed=seed)
    display(live.drop_duplicates("model").groupby("group").size().rename("models")
            .to_frame().rename(index=group_label))
else:
    display(Markdown(run.skipped_note("ImageNet val under `/data/imagenet/val`")))

# %% [markdown]
# Factor accuracy against overall accuracy, one panel per factor. The blue line and band are
# the fit over the standard models and its bootstrap band; zero-shot CLIP models are circled.
# Click a group in the legend to highlight it.

# %%
if live_ok:
    display(charts.factor_trends(live, live_grid, factor_list))

# %% [markdown]
# Mean factor-level effective robustness per group, with 95% bootstrap intervals over models.
# Above zero: more robust to the factor than a standard model of the same overall accuracy.

# %%
if live_ok:
    live_summary = summaries.group_summary(live.dropna(subset=["eff_rob"]), "eff_rob",
                                        n_boot=n_boot, seed=seed)
    display(charts.effective_robustness_by_group(
        live_summary, title=f"effective robustness by group ({live_source})"))

# %%
if live_ok:
    display(charts.effective_robustness_heatmap(live))

# %%
if live_ok:
    verdicts += study.assess_factor_claims(live, live_source, n_boot=n_boot, seed=seed)
    lead = study.factor_leaders(live_summary) if len(live_summary) else pd.DataFrame()
    if len(lead):
        pose = live_summary[(live_summary.factor == "pose") & (live_summary.group == CLIP_ZEROSHOT)]
        pose_txt = (f"On pose, zero-shot CLIP's mean effective robustness is "
                    f"{pose['mean'].iloc[0] * 100:+.2f} points [{pose['lo'].iloc[0] * 100:+.2f}, "
                    f"{pose['hi'].iloc[0] * 100:+.2f}]." if len(pose) else "")
        display(Markdown(
            f"**Finding ({live_source}).** Zero-shot CLIP's mean effective robustness is above "
            f"every other group's on {int(lead.target_leads.sum())} of {len(lead)} factors "
            f"({', '.join(lead.loc[lead.target_leads, 'factor']) or 'none'}) and below every "
            f"other group's on {int(lead.target_last.sum())} "
            f"({', '.join(lead.loc[lead.target_last, 'factor']) or 'none'}). {pose_txt}"))
    else:
        display(Markdown(f"**Finding ({live_source}).** Effective robustness needs at least two "
                         f"*{group_label(baseline_group)}* models and one zero-shot CLIP model; "
                         "this run has too few, so only the tables above are shown."))

# %% [markdown]
# ## 2. Published evidence: ImageNet-X's per-factor tables
#
# ImageNet-X publishes per-factor accuracies for the imagenet-testbed models and the
# model-vs-human models, among them zero-shot CLIP models (OpenAI's ResNet-50 and
# ViT-B/32, trained on WIT). Groups are assigned by explicit rules
# (`clipsafety.groups.imagenetx_group`): the CLIP models by name, then ImageNet-X's own
# model types (standard, more data, robustness interventions), self-supervised and
# low-accuracy models excluded. The same effective-robustness analysis runs on these real
# numbers.

# %%
pub = {}
for coll in published:
    try:
        pub[coll] = study.with_effective_robustness(
            study.published_factor_table(coll, which=which, factors=factor_list),
            baseline_group, scale)
    except ExternalUnavailable as exc:
        display(plots.unavailable_note(exc, f"The published panel for {coll}"))
if pub:
    counts = pd.concat(pub.values()).drop_duplicates(["collection", "model"]).groupby(
        ["collection", "group"]).size().unstack(fill_value=0).rename(columns=group_label)
    display(counts)

# %%
if "imagenet_testbed" in pub:
    tb = pub["imagenet_testbed"]
    display(charts.factor_trends(tb, study.trend_grid(tb, baseline_group, scale, n_boot=n_boot,
                                                      seed=seed), factor_list))

# %%
pub_summaries = {}
for coll, er in pub.items():
    pub_summaries[coll] = summaries.group_summary(er, "eff_rob", n_boot=n_boot, seed=seed)
    display(charts.effective_robustness_by_group(
        pub_summaries[coll], title=f"effective robustness by group: "
                                   f"{study.PUBLISHED_COLLECTIONS[coll]}"))

# %%
for coll, er in pub.items():
    src = f"{claims.SOURCES[1]} ({coll})"
    verdicts += study.assess_factor_claims(er, src, n_boot=n_boot, seed=seed)
    lead = study.factor_leaders(pub_summaries[coll])
    cmp = summaries.compare_to_groups(er, "eff_rob", n_boot=n_boot, seed=seed)
    std = cmp[cmp.group == baseline_group].set_index("factor")
    parts = [f"{f} {std.loc[f, 'diff'] * 100:+.1f} [{std.loc[f, 'lo'] * 100:+.1f}, "
             f"{std.loc[f, 'hi'] * 100:+.1f}]" for f in factor_list if f in std.index]
    display(Markdown(
        f"**Finding ({study.PUBLISHED_COLLECTIONS[coll]}).** The "
        f"{er.loc[er.group == CLIP_ZEROSHOT, 'model'].nunique()} zero-shot CLIP models lead "
        f"every other group on {int(lead.target_leads.sum())} of {len(lead)} factors and trail "
        f"every group on {', '.join(lead.loc[lead.target_last, 'factor']) or 'none'}. CLIP minus "
        f"standard models, points [95% interval]: {'; '.join(parts)}. With only "
        f"{er.loc[er.group == CLIP_ZEROSHOT, 'model'].nunique()} CLIP models the intervals "
        "reflect the spread of the comparison groups more than that of CLIP."))

# %% [markdown]
# ## 3. Real models on real data
#
# The live section above runs real models when the reader passes real model ids and a
# `data_root` holding ImageNet val (`<data_root>/imagenet/val/<wnid>/*.JPEG` or the flat
# layout); the factor annotations are ImageNet-X's own, read from the `imagenet-x` package.

# %%
display(Markdown(run.real_section()))

# %% [markdown]
# ## The paper's claims, per evidence source
#
# Rules (`clipsafety.studies.factors`): *6 of 10* is reproduced when zero-shot CLIP's mean effective
# robustness is above every other group's on at least 6 of the 10 factors; *pose* when the
# bootstrap interval of CLIP minus all other models on pose lies below zero; *training
# source* when two CLIP training sources with at least two models each differ on at least
# one factor (interval excluding zero).

# %%
claims_tab, ending = evidence.chapter_ending(verdicts)
for obj in ending:
    display(obj)
evidence.record_outputs("factors", claims_tab, live_summary=live_summary if live_ok else None,
                        published_summaries=pub_summaries)
