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
# # What the book found
#
# This book asks how far CLIP can be trusted *beyond* accuracy: does zero-shot CLIP keep its
# accuracy under distribution shift, resist the visual factors of ImageNet-X, decide by shape
# rather than texture, notice inputs that belong to none of its classes, and say how sure it
# is in a way that can be believed? It reproduces and extends Tu, Deng & Gedeon, *A Closer
# Look at the Robustness of Contrastive Language-Image Pre-Training (CLIP)* (NeurIPS 2023).
#
# :::{glue:md} findings_summary
# :format: myst
# :::
#
# **Reading guide.** Each row below is a claim, in the paper's words or, for the open
# questions, the book's; each column a kind of evidence: the *synthetic world* (images with
# known visual factors and the project's own tiny model zoo, on a laptop CPU), *published
# results* of real models (timm, open_clip, imagenet-testbed, ImageNet-X, texture-vs-shape,
# LeVine et al.), and *real models on real data* when a reader supplies them. A cell gives the
# verdict by the rule its chapter states — **reproduced** (the interval lies on the claimed
# side), **not reproduced** (it does not; the chapter checks why), **not testable** (this
# evidence cannot speak to the claim, and why) — then the effect with its 95% interval. Hover
# a cell for the whole evidence; the chapter's name links to its page. Nothing here is typed:
# every cell is read from the outputs the chapters recorded when they last ran.

# %% tags=["parameters"]
chapters: str | list = "all"  # which chapters' claims to show: all, or a list of chapter names

# %%
from clipsafety import charts, pages, plots
from clipsafety.studies import findings as study
from IPython.display import HTML, Markdown, display
from myst_nb import glue

plots.setup()
found = study.read_outputs(None if chapters == "all" else chapters)
claims_all = study.findings_table(found)
glue("findings_summary", Markdown(study.findings_summary(claims_all)), display=False)
glue("chapter_list", Markdown(study.chapter_list()), display=False)

# %% [markdown]
# ## At a glance
#
# Per chapter and kind of evidence, how many claims each verdict got.

# %%
if len(claims_all):
    display(charts.verdict_overview(claims_all, chapters=list(found)))

# %% [markdown]
# ## Every claim against every kind of evidence

# %%
if len(claims_all):
    display(HTML(study.findings_html(claims_all)))
display(Markdown(study.chapters_status(found)))

# %% [markdown]
# ## The chapters
#
# Read from the book's table of contents:
#
# :::{glue:md} chapter_list
# :format: myst
# :::
#
# {doc}`../intro` says how the book is made and how to rerun it. Every chapter opens with
# what it found and ends with **Try it**: exercises for a laptop and the command that reruns
# it with other parameters.

# %%
display(pages.try_it("findings"))
