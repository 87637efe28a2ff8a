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
# **What each section of the paper found**, one computed sentence per section (real-model
# evidence first; the world's verdicts hold under its assumptions only):
#
# :::{glue:md} section_sentences
# :format: myst
# :::
#
# **Reading guide.** Each row of the table below is a claim — the paper's, in its words; the
# premise it starts from; or, apart, one of the book's own hypotheses for the open questions —
# judged once, in its home chapter. Each column is a kind of evidence: *published results* of
# real models (timm, open_clip, imagenet-testbed, ImageNet-X, model-vs-human and its forks,
# NINCO, C-OOD, LeVine et al.), *real models run here* when a reader supplies weights and data,
# and the *synthetic world* (images with known visual factors and the project's tiny model
# zoo), whose verdicts are conditional on its settings. A verdict follows its chapter's rule on
# the numbers shown: **reproduced** (the interval lies on the claimed side), **contradicted**
# (on the opposite side), **inconclusive** (it includes zero), **not testable** (this evidence
# cannot speak to the claim, and why), **built in** (a world setting or a method's objective
# puts the effect there) or **premise not met** (the world lacks what the claim needs, with
# the measured premise). A verdict resting on fewer than five models on a side, or on one
# checkpoint resampled over its stimuli, carries its size ("n = 2 models"). The methods page
# lists every claim with its test. Nothing here is typed: every cell is read from the fields
# the chapters recorded when they last ran.

# %% tags=["parameters"]
chapters: str | list = "all"  # which chapters' claims to show: all, or a list of chapter names

# %%
from clipsafety import charts, claims, outputs, pages, plots
from clipsafety.studies import findings as study
from IPython.display import HTML, Markdown, display
from myst_nb import glue

plots.setup()
found = study.read_outputs(None if chapters == "all" else chapters)
claims_all = study.findings_table(found)
glue("findings_summary", Markdown(study.findings_summary(claims_all)), display=False)
glue("section_sentences", Markdown(study.section_sentences(claims_all)), display=False)
glue("chapter_list", Markdown(study.chapter_list()), display=False)

# %% [markdown]
# ## At a glance
#
# Per chapter and kind of evidence, how many claims each verdict got (one verdict per claim
# and kind of evidence, counted in the claim's home chapter).

# %%
if len(claims_all):
    display(charts.verdict_overview(study.per_kind(claims_all), chapters=list(found)))

# %% [markdown]
# ## Every claim against every kind of evidence

# %%
if len(claims_all):
    display(HTML(study.findings_html(claims_all)))
    display(Markdown(study.real_run_note(claims_all)))
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
counts = claims.tally(claims_all)
outputs.record("findings", None, **{"chapters shown": len(found),
                                    "claims shown": int(claims_all["claim_id"].nunique())},
               **{f"verdicts {v}": n for v, n in counts.items()})
display(pages.try_it("findings"))
