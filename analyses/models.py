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
# # Choosing a model: what is published about each one
#
# The other chapters ask whether the paper's claims hold for *groups* of models. A reader
# choosing one model asks something else: what is known about *this* checkpoint, and where
# does it sit among the models like it? This chapter gathers every real model with published
# evidence into one table, one row per checkpoint, from the files the book reads (each pinned
# to an upstream commit and checked by sha256). It judges no claim.
#
# :::{glue:md} summary
# :format: myst
# :::
#
# **How a checkpoint is counted once.** Every row carries a canonical key of its weights: a
# zero-shot CLIP is `<pretrained tag>/<open_clip architecture>` (`openai/ViT-B-16`,
# `laion400m_e31/ViT-B-16`), a timm weight `timm/<name.tag>`, torchvision's
# `torchvision/<name>`. The same checkpoint found in two files (two model-vs-human forks
# running OpenAI's ViT-B/16; two ImageNet-X collections of OpenAI's RN50 and ViT-B/32) is one
# row, with one value per kind of evidence and every source listed. A model whose weights
# cannot be tied to a public name keeps its source in its key (`cood/...`, `ninco/...`), so
# nothing is merged by guesswork.
#
# **Units.** Accuracies, AUROCs, shape bias and cue share in percent; effective robustness
# and the confidence gap in accuracy points. Percentiles are within the model's kind, among
# the models that have the value (ties count half).

# %% tags=["parameters"]
shifts = ["v2", "sketch", "r", "a", "objectnet"]  # shifts of the effective-robustness columns
scale = "logit"  # scale of the landscape line: "logit", "probit" or "linear"
show = 100  # rows drawn before "show all" is pressed

# %%
import pandas as pd
from clipsafety import charts, outputs, plots, readable
from clipsafety import published_models as pm
from clipsafety.external import ExternalUnavailable
from clipsafety.groups import CLIP_FT_DIRECT, CLIP_ZEROSHOT, group_label
from clipsafety.sortable import SortableTable
from clipsafety.studies import factors, landscape, shape_bias
from clipsafety.studies import models as study
from IPython.display import Markdown, display
from myst_nb import glue

plots.setup()

try:
    long = landscape.published_long(landscape.LANDSCAPE_SOURCES, shifts)
    points, _, _ = landscape.fit_landscape(long, scale=scale, n_boot=100, grid_points=2)
    er = landscape.effective_robustness_table(points)
    forks = pd.concat([shape_bias.mvh_decisions(r, humans=False) for r in shape_bias.MVH_SOURCES],
                      ignore_index=True)
    factor_tables = [factors.published_factor_table(c) for c in factors.PUBLISHED_COLLECTIONS]
    factor_tables.append(factors.published_decision_factors()[1])
    table = pm.table(er, forks, factor_tables)
    shape = pm.shape_models(pm.shape_trials(forks))
    cood = pm.cood_models()
    have_data = True
except ExternalUnavailable as exc:
    have_data = False
    display(plots.unavailable_note(exc, "The per-model table"))

# %% [markdown]
# ## The table
#
# Click a header to sort by it (numbers largest first; click again to reverse), type in the
# box to filter by checkpoint or source, or pick a kind of model. Hover a header for what it
# measures. The download holds every row and column, with more decimals.

# %%
if have_data:
    cols = study.shown_columns(table)
    shown = table[cols].assign(group=table["group"].map(group_label))
    shown = shown.sort_values(["er_mean"], ascending=False, na_position="last")
    display(SortableTable(shown, headers=study.headers(), titles=study.titles(),
                          csv_name="clipsafety-published-models.csv", kind_column="group",
                          show=show))

# %%
if have_data:
    cov = study.coverage(table)
    n_clip = int((table["group"] == CLIP_ZEROSHOT).sum())
    rich = table[table[list(study.EVIDENCE.values())].notna().sum(axis=1) >= 4]
    display(Markdown(
        f"The table holds **{len(table):,} checkpoints**, {n_clip} of them zero-shot CLIPs. "
        "Most models have only the landscape's accuracies; "
        f"{len(rich)} have at least four of the six kinds of evidence "
        f"({', '.join(rich['checkpoint'].head(8))}{', ...' if len(rich) > 8 else ''}). "
        "Models per kind with each kind of evidence:"))
    display(readable.table(cov, {c: c for c in cov.reset_index().columns},
                           caption="Models per kind with each kind of evidence."))

# %% [markdown]
# ## Shape bias of every model with cue-conflict decisions
#
# One point per checkpoint (the row the table counts), one row per kind. Hover a point for
# its head (16-way zero-shot or 1000-class mapped) and its source.

# %%
if have_data:
    pts = shape[shape["primary"]].assign(model=lambda d: d["checkpoint"])
    display(charts.strip_by_group(pts, value="shape_bias", tooltip_extra=["head", "source"],
                                  title="Shape bias per published checkpoint"))

# %% [markdown]
# ## One checkpoint, several files
#
# Cue-conflict decisions of the same checkpoint are published in several files and, for
# vlm_shapebias's CLIPs, under three prompts. The table counts each checkpoint once: the
# model-vs-human protocol first (a 1000-class head mapped to the 16 classes by averaging each
# class's ImageNet members), then vlm_shapebias's 16-way zero-shot head with the prompt
# "a photo of a {c}.". The two heads are different readings of a model: where a row's
# shape bias comes from the 16-way head, the table's "Shape head" column says so.

# %%
if have_data:
    dup = study.duplicates(shape)
    b16 = shape[shape["checkpoint"] == "openai/ViT-B-16"].set_index("source")["shape_bias"]
    display(Markdown(
        f"{len(dup)} checkpoints have more than one cue-conflict file. OpenAI's ViT-B/16 reads "
        f"{100 * b16.get('Thieringer', float('nan')):.1f}% in one fork and "
        f"{100 * b16.get('Burns', float('nan')):.1f}% in the other: one model, counted once."))
    display(readable.table(dup, {c: c for c in dup.columns},
                           caption="Checkpoints with more than one cue-conflict file."))

# %% [markdown]
# ## Confidence gap: which rows have one
#
# C-OOD publishes each model's mean confidence beside its accuracy on ImageNet val. Their
# difference is a signed confidence gap (positive: over-confident) and, in absolute value, a
# lower bound on the expected calibration error. Its fine-tuned CLIPs are left out: their
# recorded score is not a softmax at temperature 1.

# %%
if have_data:
    zs = cood.loc[cood["group"] == CLIP_ZEROSHOT, "conf_gap"]
    im = cood.loc[~cood["model"].str.startswith("CLIP_"), "conf_gap"]
    ft = cood[cood["group"] == CLIP_FT_DIRECT]
    display(Markdown(
        f"The {len(zs)} zero-shot CLIPs' gaps lie within {zs.min():+.1f} to {zs.max():+.1f} "
        f"points (median {zs.median():+.1f}); the {len(im)} ImageNet models' within "
        f"{im.min():+.1f} to {im.max():+.1f} (median {im.median():+.1f}). The {len(ft)} "
        f"fine-tuned CLIPs' mean confidence is {ft['id_avg_conf'].min():.4f} to "
        f"{ft['id_avg_conf'].max():.4f} at {100 * ft['id_acc'].min():.0f}–"
        f"{100 * ft['id_acc'].max():.0f}% accuracy; they are flagged, with the reason: "
        f"{pm.COOD_FT_NOTE}."))

# %% [markdown]
# ## Placing a model
#
# `clipsafety.published_models` gives the same table to code: `table(...)` builds it (this
# chapter shows how), `recorded_table()` reads it as this chapter last recorded it,
# `percentile(metric, value, group)` places a value among the published models of a kind and
# `nearest(metric, value, k)` lists the models closest to it.

# %%
if have_data:
    b16 = table.set_index("checkpoint").loc["openai/ViT-B-16"]
    near = pm.nearest("shape_bias", b16["shape_bias"], k=4, group=CLIP_ZEROSHOT, models=table)
    display(Markdown(
        f"For example, OpenAI's ViT-B/16 has a shape bias of {b16['shape_bias']:.1f}%: "
        f"{pm.percentile('shape_bias', b16['shape_bias'], CLIP_ZEROSHOT, models=table):.0f}% "
        "of the zero-shot CLIPs with a published shape bias lie below it (percentile, ties "
        "counted half). The zero-shot CLIPs closest to it, itself first:"))
    cols = ["checkpoint", "training_source", "shape_bias", "shape_head", "sources"]
    display(readable.table(near[cols].rename(columns=study.headers()).round(1),
                           {study.headers().get(c, c): study.headers().get(c, c) for c in cols}))

# %%
if have_data:
    kinds = sum(1 for k, c in study.EVIDENCE.items() if table[c].notna().any())
    glue("summary", Markdown(
        f"**What this chapter found.** {len(table):,} real checkpoints have published evidence "
        f"({n_clip} zero-shot CLIPs); {len(rich)} have at least four of the {kinds} kinds of "
        f"evidence, all OpenAI CLIPs. {len(dup)} checkpoints appear in more than one "
        "cue-conflict file and are counted once. No claim is judged here."), display=False)
else:
    glue("summary", Markdown("**What this chapter found.** The published files are not "
                             "available here, so the table is empty."), display=False)
outputs.record("models", pd.DataFrame(), models=table if have_data else pd.DataFrame())

# %%
from clipsafety import pages  # noqa: E402

display(pages.try_it("models"))
