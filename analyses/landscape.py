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
# # The robustness landscape
#
# Before asking how trustworthy CLIP is *beyond* accuracy, this chapter places CLIP on the map
# that made it famous: accuracy under distribution shift against accuracy on ImageNet.
# For models trained on ImageNet, accuracy on a shifted test set is almost a deterministic
# function of ImageNet accuracy ("accuracy on the line", Taori et al. 2020; Miller et al.
# 2021). Zero-shot CLIP models sit above that line: at the same ImageNet accuracy they keep
# more of it under shift. The distance above the line is their **effective robustness**.
#
# :::{glue:md} summary
# :format: myst
# :::
#
# Two kinds of evidence and no inference. The real landscape comes from published tables
# (timm's results tables, open_clip's zero-shot results and imagenet-testbed's model
# collection, each read from a file pinned to an upstream commit and checked by sha256); the
# last section sets the synthetic world's analogue beside it, from the accuracies `make zoo`
# recorded. The claims here are the paper's *premise* (prior work it restates), counted apart
# from the paper's own claims.
#
# **Conventions.** Accuracies are top-1. The x axis is ImageNet accuracy over all 1000
# classes for every source; ImageNet-R and ImageNet-A are accuracies over their 200 classes
# and ObjectNet over its 113 ImageNet-overlapping classes, as each source publishes them.
# Per shift, a straight line is fitted by least squares to the *standard* ImageNet models
# (group rules in `clipsafety.published`) on the chosen scale (default: logit, as Taori et
# al.), with a bootstrap band over models; effective robustness = shift accuracy minus the
# line's prediction at the model's ImageNet accuracy, in accuracy points.

# %% tags=["parameters"]
shifts = ["v2", "sketch", "r", "a", "objectnet"]  # which shifts to show
sources = ["timm", "open_clip", "imagenet-testbed"]  # published tables to read
baseline_sources = ["timm", "imagenet-testbed"]  # whose standard models define the line
scale = "logit"  # "logit", "probit" or "linear"
n_boot = 1000  # bootstrap resamples for the trend band and intervals
seed = 0
top_n = 15  # rows of the per-model table

# %%
import pandas as pd
from clipsafety import charts, claims, plots, published, readable
from clipsafety.external import ExternalUnavailable
from clipsafety.readable import Column
from clipsafety.studies import landscape
from clipsafety.style import SOURCE_MARKERS
from IPython.display import Markdown, display

plots.setup()
shifts = landscape.resolve_shifts(shifts)
verdicts = []  # one row per (claim, evidence source)

# %% [markdown]
# ## The published tables

# %%
try:
    long = landscape.published_long(sources, shifts)
    have_data = True
except ExternalUnavailable as exc:
    have_data = False
    display(plots.unavailable_note(exc, "The whole landscape"))

# %%
if have_data:
    counts = landscape.source_counts(long)
    display(readable.table(counts, {"source": "Published table",
                                    **{c: (c, "count") for c in counts.columns}},
                           caption="Models per published table and group."))

# %% [markdown]
# ## Accuracy on the line, and CLIP above it
#
# Each panel is one shift. Grey-blue: the fitted line of the standard ImageNet models with
# its 95% bootstrap band. Hover a point for the model and its numbers.

# %%
if have_data:
    points, bands, fits = landscape.fit_landscape(
        long, baseline_sources=baseline_sources, scale=scale, n_boot=n_boot, seed=seed)
    display(charts.accuracy_on_the_line(points, bands, shifts, published.SHIFTS))

# %%
if have_data:
    display(readable.table(
        landscape.fit_table(fits).assign(shift=lambda d: d["shift"].map(published.SHIFTS)),
        {"shift": "Shift", "slope": ("Slope", "number"), "intercept": ("Intercept", "number"),
         "n_baseline": ("Standard models fitted", "count"), "scale": "Scale"},
        caption=f"The fitted line per shift ({scale} scale): shift accuracy against ImageNet "
                "accuracy, both transformed."))

# %% [markdown]
# ## Effective robustness by group
#
# One tick per model; the thick mark is the group median. Zero-shot CLIP (red) should sit
# above zero on the natural shifts if the paper's premise holds in these tables.

# %%
if have_data:
    display(charts.effective_robustness_ticks(points, landscape.group_summary(points), shifts,
                                              published.SHIFTS))

# %% [markdown]
# ## Zero-shot CLIP: training source and scale
#
# Mean effective robustness over the shifts against ImageNet accuracy, for the open_clip
# zero-shot models. Colour and marker: training source ("unknown" where open_clip's table
# names none); size: samples seen during training, a hollow marker where the table gives none
# (OpenAI's WIT models, for instance): every model is drawn.

# %%
if have_data and "open_clip" in sources:
    display(charts.effective_robustness_by_category(
        landscape.training_table(points, published.openclip_results()), "train_source",
        "samples_seen", category_title="training source", size_title="samples seen (B)",
        size_label="samples (B)", shapes=SOURCE_MARKERS))

# %% [markdown]
# ## Per-model table
#
# Effective robustness (accuracy points) of the most and least effectively robust CLIP
# models, zero-shot and fine-tuned, in the published tables.

# %%
if have_data:
    per_model = landscape.per_model_table(points, top_n)
    no_shift = "the source reports no accuracy on this shift for the model"
    display(readable.table(
        per_model,
        {"model": "Model", "group": "Group", "source": "Published table",
         "imagenet": ("ImageNet accuracy (%)", "ratio"),
         **{f"ER {s}": Column(f"Effective robustness, {published.SHIFTS[s].split(' (')[0]} "
                              "(points)", "ratio", missing=no_shift) for s in shifts},
         "ER mean": Column("Mean effective robustness (points)", "ratio", missing=no_shift)},
        caption=f"The {top_n} most and the {top_n} least effectively robust CLIP models.",
        note="Accuracy in percent and effective robustness in accuracy points, as computed above.",
        download="landscape-per-model"))

# %% [markdown]
# ## Findings

# %%
if have_data:
    findings = landscape.shift_findings(points, shifts, n_boot=n_boot, seed=seed)
    vitb32 = published.openclip_results().set_index("model").loc["openclip:ViT-B-32@openai"]
    display(Markdown(
        "Effective robustness of zero-shot CLIP against the line of standard ImageNet models "
        f"({scale} scale; intervals: bootstrap over models, {n_boot} resamples):\n\n"
        + "\n".join(landscape.findings_markdown(findings))
        + f"\n\nFor orientation: OpenAI's CLIP ViT-B/32 reads {100 * vitb32['imagenet']:.2f}% on "
        f"ImageNet and {100 * vitb32['r']:.2f}% on ImageNet-R in open_clip's table. ImageNet-V2 is "
        "a re-collection of ImageNet itself, so little effective robustness is expected there for "
        "any model; the interesting shifts are Sketch, R, A and ObjectNet."))
    verdicts += landscape.assess_landscape_claims(
        findings, claims.PUBLISHED, data=tuple(f"{s} results table" for s in sources))

# %% [markdown]
# ## The same premise in the synthetic world
#
# The zoo's zero-shot CLIPs against the line of its standard models, on the world's analogue
# of each shift (V2-like, sketch-like, R-like, A-like, ObjectNet-like; the world appendix
# describes them), from the accuracies `make zoo` recorded (`data/zoo/eval.csv`). The x axis is
# the world's ID test accuracy; a CLIP outside the standard models' ID range extrapolates the
# line (the appendix marks them). What the world puts in by construction, and what emerges,
# is listed in the appendix: the web-like sources' diversity is an assumption; the effective
# robustness is measured.

# %%
from clipsafety.studies import appendix_world as world  # noqa: E402
from clipsafety.zoo import zoo_dir  # noqa: E402

zoo_pts = landscape.named_by_published(
    world.zoo_points(pd.read_csv(zoo_dir() / "catalog.csv"), pd.read_csv(zoo_dir() / "eval.csv"),
                     shifts=landscape.analogues_of(shifts, world.NATURAL_SHIFTS), scale=scale),
    world.NATURAL_SHIFTS)
zoo_findings = landscape.shift_findings(zoo_pts, shifts, n_boot=n_boot, seed=seed)
display(Markdown("Effective robustness of the zoo's zero-shot CLIPs against the line of its "
                 f"standard models ({scale} scale; world analogues of the shifts):\n\n"
                 + "\n".join(landscape.findings_markdown(
                     zoo_findings, landscape.analogue_names(world.NATURAL_SHIFTS)))))
zoo_premise = landscape.world_premises(zoo_pts, shifts)
verdicts += [claims.gated(j, zoo_premise[s]) if s in zoo_premise else j
             for s, j in zip(shifts, landscape.assess_landscape_claims(
                 zoo_findings, claims.WORLD, data=("data/zoo/eval.csv", "data/zoo/catalog.csv"),
                 built_in=landscape.WORLD_SETTINGS))]

# %% [markdown]
# ## The premise, per evidence source
#
# Rule (`clipsafety.studies.landscape`, the same in the world appendix): on each shift, the
# mean effective robustness of zero-shot CLIP minus that of the standard models, with a
# bootstrap interval over both groups' models; reproduced when it lies above zero,
# contradicted below, inconclusive when it includes zero. On the world, a shift whose
# analogue is made of the styles the web-like sources over-sample (sketch, rendition) is
# *built in*, and a shift where the models are not above twice chance is *premise not met*.
# Real-model inference does not run in this chapter.

# %%
verdicts += landscape.untested_rows(shifts, claims.REAL,
                                   "this chapter reads published tables and the zoo's accuracies")
from clipsafety import pages  # noqa: E402

pages.end_chapter("landscape", verdicts, note=False, findings=findings if have_data else None,
                  zoo_findings=zoo_findings)
