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
# # Safety card
#
# The chapters before this one compare *groups* of models to judge the paper's claims. This
# one answers the other question a reader brings: how trustworthy is **one** model, next to the
# models I know? It measures, for the model named by the `model` parameter, each property the
# data allows, with the book's own metrics and conventions (the methods page), and places each
# number on the landscape of the same metric: the published real models (open_clip and timm
# results, imagenet-testbed, ImageNet-X, model-vs-human and its forks, vlm_shapebias,
# Beyond-INet, NINCO, C-OOD) for a real model, the zoo for a zoo model. The card judges no
# claim; it says, for every comparison, whether it is like for like.
#
# :::{glue:md} summary
# :format: myst
# :::
#
# **Method.** Accuracy is top-1 on each set's label subset; effective robustness is the shift
# accuracy minus the line of the standard models at the model's ID accuracy (logit scale;
# real models: the published line of timm's and imagenet-testbed's standard models; zoo: the
# zoo's standard models). ImageNet-X factor accuracy and error ratio
# `(1 - acc_factor) / (1 - acc_overall)` on the ID set. Shape bias = shape / (shape + texture)
# hits over cue-conflict trials whose classes differ (ImageNet logits read by model-vs-human's
# 1000→16 mapping; for a zero-shot CLIP also a 16-way head). OOD detection: AUROC with ID
# positive and FPR at 95% ID recall, MCM for zero-shot CLIPs, MSP otherwise, with the other
# scores beside. Calibration: ECE (15 bins) and the confidence gap before and after one
# temperature fitted on a stratified half of the ID set and applied unchanged to the shifts.
# Intervals: 95% bootstrap over images (stimuli for shape bias); effective robustness's is a
# joint bootstrap that also resamples the baseline models defining the line (the published
# standard models, or the zoo's) and refits it, so the line's own uncertainty is in the
# interval (the card keeps the fixed-line interval beside it). Percentiles: percent of the
# landscape's models below, ties counted half.
#
# The same card comes from the command line, as a standalone page and a JSON file with every
# number, its interval and its provenance:
#
# ```
# python -m clipsafety card openclip:ViT-B-32@openai --data-root /data --device cuda --out card/
# ```

# %% tags=["parameters"]
model = "zoo:clip-resnet-wit-100k"  # one model id: zoo:..., openclip:ARCH@TAG, timm:NAME
data_root = ""  # folder holding the real datasets (imagenet/val, imagenet-r, ...); empty = none
store = ""  # prediction store folder; empty = the default store
device = "auto"  # auto | cpu | cuda | cuda:N | mps
templates = "openai"  # zero-shot templates of a CLIP's head
batch_size = 128  # images per forward pass
n_boot = 200  # bootstrap resamples of each interval
seed = 0  # the temperature split and the bootstrap
out = ""  # also write card.html and card.json into this folder; empty = only this page

# %%
from clipsafety import card, card_html, outputs, pages, readable
from clipsafety.studies import card as study
from IPython.display import HTML, Markdown, display
from myst_nb import glue

problem = ""
try:
    collected = card.collect(model, data_root=data_root, store=store or None, device=device,
                             templates=templates, batch_size=batch_size)
    result = card.measure(collected, n_boot=n_boot, seed=seed)
except card.CardError as exc:
    result, problem = None, str(exc)
glue("summary", Markdown(study.summary_markdown(result, problem)), display=False)

# %% [markdown]
# ## What was measured
#
# One row per property: whether the data allowed it, how many numbers it has, how many are
# placed on a landscape and how many of those comparisons are like for like.

# %%
if result is not None:
    status = study.status_table(result)
    display(readable.table(status, {c: c for c in status.columns},
                           caption="What the card measured, per property."))
else:
    display(Markdown(f"No card: {problem}"))

# %% [markdown]
# ## The card
#
# Each number with its 95% interval, its percentile among zero-shot CLIPs, fine-tuned CLIPs
# and ImageNet models of the landscape, the nearest models by name, and whether the comparison
# is like for like (same data, score and head). Under each table, one strip per placed number:
# the landscape's values per kind of model, the card's value as a red line.

# %%
if result is not None:
    display(HTML(card_html.fragment(result, standalone=False)))

# %% [markdown]
# ## Reliability on ID and under shift
#
# Accuracy per confidence bin (15 equal-width bins) on the ID evaluation half and on each
# shift, before scaling and with the ID temperature; the dashed diagonal is perfect
# calibration. Bars below it are over-confidence.

# %%
if result is not None and result["calibration"]:
    from clipsafety import charts, plots

    plots.setup()
    display(charts.reliability_diagram(study.reliability_frame(result), series="scaling",
                                       panel="set", columns=3))

# %% [markdown]
# ## What to supply
#
# A property whose data is missing is listed here with the folder it is looked for under
# `data_root` and where to get it; the rest of the card is still made.

# %%
if result is not None and result["missing"]:
    missing = study.missing_table(result)
    display(readable.table(missing, {
        "dataset": "dataset", "reason": "why it is missing",
        "layout": readable.Column("layout under --data-root", missing="no fixed layout"),
        "get": readable.Column("where to get it", missing="no public download")}))
elif result is not None:
    display(Markdown("Nothing is missing: every property was measured."))

# %%
if result is not None and out:
    from pathlib import Path

    from clipsafety.files import atomic_write_text

    Path(out).expanduser().mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(out).expanduser() / "card.json", card.card_json(result))
    atomic_write_text(Path(out).expanduser() / "card.html", card_html.render(result))
    display(Markdown(f"Written: `{out}/card.html` and `{out}/card.json`."))

# %%
import json  # noqa: E402

outputs.record("card", None, card=json.loads(card.card_json(result)) if result is not None else None)
display(pages.try_it("card"))
