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
# # Appendix: the synthetic world and the tiny model zoo
#
# Every chapter runs by default on a synthetic world whose visual factors are known, and on
# a zoo of tiny models trained on it by `make zoo`. This appendix is the dataset card (what
# each set looks like, how often each ImageNet-X factor occurs per training source) and the
# zoo's model cards (with their accuracy on the ID test set).
#
# :::{glue:md} summary
# :format: myst
# :::

# %% tags=["parameters"]
n_examples = 8  # example images per set
n_factor_samples = 2000  # samples per source for the factor frequencies

# %%
import pandas as pd
from clipsafety import charts, plots
from clipsafety.synth import DESCRIPTIONS, FACTORS, GENERATOR_VERSION, get_dataset
from clipsafety.zoo import list_zoo, zoo_dir
from IPython.display import Markdown, display
from myst_nb import glue

plots.setup()

# %% [markdown]
# ## The sets
# One row per dataset id (`synth:<name>`): what it is and how many samples it has.

# %%
from clipsafety.synth import card_sets

SETS = card_sets()  # the evaluation rows of clipsafety.synth.datasets.SYNTH_SETS
rows = []
for name in SETS:
    try:
        ds = get_dataset(name)
        rows.append({"dataset": f"synth:{name}", "samples": len(ds),
                     "label subset": ds.label_subset, "description": DESCRIPTIONS[name]})
    except Exception as err:  # the A-like set needs the reference model of the zoo
        rows.append({"dataset": f"synth:{name}", "samples": None, "label subset": None,
                     "description": f"unavailable here: {err}"})
card = pd.DataFrame(rows)
display(Markdown(f"Generator version {GENERATOR_VERSION}; {len(card)} evaluation sets."))
card

# %% [markdown]
# ## The raw pool and its curation filters
# `synth:train-raw-100k` is a LAION-like pool with noisier captions and exact duplicates. The
# curation filters of `clipsafety.synth.curation` select from it; the deterministic ones also
# have dataset ids (`synth:train-raw-100k@dedup+balanced`). Sizes after each filter:

# %%
from clipsafety.synth import curation

raw = get_dataset("train-raw-100k")
dedup = curation.deduplicate(raw)
steps = {"raw pool": raw.n, "de-duplicated": len(dedup),
         "class-balanced (caption word)": len(curation.balance_classes(raw)),
         "de-duplicated, then class-balanced": len(curation.balance_classes(raw, start=dedup))}
named = (curation.caption_classes(raw.captions()) >= 0).mean()
display(Markdown(f"{named:.1%} of the pool's captions name a category; "
                 f"{1 - len(dedup) / raw.n:.1%} of its rows are duplicates."))
pd.DataFrame({"selection": list(steps), "samples": list(steps.values())})

# %% [markdown]
# ## Example images of every set

# %%
charts.image_grid({n: get_dataset(n).arrays()[0][:n_examples] for n in SETS
                   if card.set_index("dataset").loc[f"synth:{n}", "samples"]})

# %% [markdown]
# ## Factor frequencies per training source
# Share of samples carrying each ImageNet-X factor, for the labelled (ImageNet-like),
# WIT-like and LAION-like sources: the sources differ in their nuisance distributions.

# %%
freq = pd.concat([
    get_dataset(f"train-{src}-10k").meta()[FACTORS].iloc[:n_factor_samples].mean()
    .rename("share").rename_axis("factor").reset_index().assign(source=src)
    for src in ("labelled", "wit", "laion")])
charts.grouped_bars(freq, "share", "factor", "source", sort=FACTORS, x_title="share of samples")

# %% [markdown]
# ## The zoo

# %%
cat = list_zoo()
acc = pd.read_csv(zoo_dir() / "eval.csv")
zoo_line = (f"{len(cat)} models in {cat['group'].nunique()} groups and "
            f"{cat['family'].nunique()} architecture families; ID test accuracy from "
            f"{cat['id_acc'].min():.1%} to {cat['id_acc'].max():.1%} (median "
            f"{cat['id_acc'].median():.1%}).")
display(Markdown(zoo_line))
glue("summary", Markdown(f"**What this appendix shows.** {len(card)} evaluation sets of "
                         f"the synthetic world (generator version {GENERATOR_VERSION}), and the "
                         f"zoo: {zoo_line}"), display=False)
cat[["id", "group", "family", "source", "samples", "objective", "train_set", "id_acc",
     "matched_pair", "parent"]]

# %% [markdown]
# ID test accuracy per group: range and median.

# %%
cat.groupby("group")["id_acc"].agg(["count", "min", "median", "max"]).round(3)

# %% [markdown]
# ID test accuracy of every model, by group.

# %%
plots.scatter_by_group(cat.assign(rank=cat["id_acc"].rank(method="first")), "rank", "id_acc",
                       tooltip=["id", "group", "train_set", "id_acc"],
                       x_title="model (sorted by ID accuracy)", y_title="ID test accuracy")

# %% [markdown]
# Mean accuracy of the zoo on each test condition, and its drop against the ID test set.

# %%
ev = acc[acc["id"].isin(cat["id"])]
mean = ev.groupby("dataset")["accuracy"].mean()
tab = pd.DataFrame({"mean accuracy": mean, "drop vs ID": mean["synth:id-test"] - mean}).round(3)
display(Markdown(
    f"{int((tab['drop vs ID'].drop('synth:id-test') >= 0.05).sum())} of "
    f"{len(tab) - 1} test conditions lower the zoo's mean accuracy by at least 5 points."))
tab

# %% [markdown]
# ## Model cards
# One card per model (architecture, training set, seed, weights hash, accuracy per set); click a
# model to unfold its card.

# %%
def card_body(model_id):  # the card without its title line (the fold names the model)
    text = (zoo_dir() / "cards" / f"{model_id}.md").read_text()
    return text.split("\n", 1)[1] if text.startswith("# ") else text


display(Markdown("\n\n".join(f":::{{admonition}} {i}\n:class: dropdown\n{card_body(i)}\n:::"
                               for i in cat["id"])))

# %%
from clipsafety import pages  # noqa: E402

display(pages.try_it("appendix_world"))
