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
# Every claim of the paper that a chapter tests, against every kind of evidence, with the
# verdict and the effect with its interval. Nothing on this page is typed: the matrix is read
# from the outputs each chapter recorded when it last ran (`book/chapters/.state/outputs`), and
# a chapter that has not run is listed as missing. **Reading guide**: a row is a claim in the
# paper's words; a column is a kind of evidence (the synthetic world with the project's model
# zoo, published results of real models, real models on real data when a reader supplies
# them); *reproduced* means the evidence supports the claim by the rule its chapter states,
# *not reproduced* that it does not (the chapter checks why), *not testable* that this kind of
# evidence cannot speak to it (the reason is in the chapter). Hover a cell for its evidence.

# %% tags=["parameters"]
chapters: str | list = "all"  # which chapters' claims to show: all, or a list of chapter names

# %%
from clipsafety import charts, evidence, plots
from IPython.display import Markdown, display

plots.setup()
found = evidence.read_outputs(None if chapters == "all" else chapters)
claims_all = evidence.findings_table(found)
display(Markdown(evidence.chapters_status(found)))

# %% [markdown]
# ## Every claim against every kind of evidence

# %%
if len(claims_all):
    display(charts.verdict_matrix(claims_all))

# %%
if len(claims_all):
    display(evidence.findings_matrix(claims_all))

# %%
if len(claims_all):
    counts = claims_all.groupby(["source_kind", "verdict"]).size().unstack(fill_value=0)
    display(counts)
    tested = claims_all[claims_all.verdict != "not testable"]
    display(Markdown(
        f"Over {claims_all.claim_id.nunique()} claims in {claims_all.chapter.nunique()} chapters, "
        f"{len(tested)} (claim, evidence) pairs could be tested: "
        f"{int((tested.verdict == 'reproduced').sum())} reproduced and "
        f"{int((tested.verdict == 'not reproduced').sum())} not reproduced. "
        "Each chapter's page gives the rule of every verdict and, where a claim does not "
        "reproduce, the computed check of why."))
