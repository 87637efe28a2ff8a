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

# %% tags=["parameters"]
n_examples = 8  # example images per set
n_factor_samples = 2000  # samples per source for the factor frequencies

# %%
import altair as alt
import pandas as pd
from clipsafety import plots
from clipsafety.synth import DESCRIPTIONS, FACTORS, GENERATOR_VERSION, get_dataset
from clipsafety.zoo import list_zoo, zoo_dir
from IPython.display import Markdown, display

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
def strip(name: str, k: int) -> pd.DataFrame:
    ds = get_dataset(name)
    x = ds.arrays()[0][:k]
    recs = []
    for i, im in enumerate(x):
        for yy in range(im.shape[0]):
            for xx in range(im.shape[1]):
                r, g, b = im[yy, xx]
                recs.append((name, i, xx, yy, f"#{r:02x}{g:02x}{b:02x}"))
    return pd.DataFrame(recs, columns=["set", "image", "x", "y", "colour"])


pix = pd.concat([strip(n, n_examples) for n in SETS if card.set_index("dataset").loc[f"synth:{n}", "samples"]])
(alt.Chart(pix).mark_square(size=9).encode(
    x=alt.X("x:O", axis=None), y=alt.Y("y:O", axis=None),
    color=alt.Color("colour:N", scale=None))
 .properties(width=64, height=64)
 .facet(row=alt.Row("set:N", title=None), column=alt.Column("image:O", title=None), spacing=2))

# %% [markdown]
# ## Factor frequencies per training source
# Share of samples carrying each ImageNet-X factor, for the labelled (ImageNet-like),
# WIT-like and LAION-like sources: the sources differ in their nuisance distributions.

# %%
freq = pd.concat([
    get_dataset(f"train-{src}-10k").meta()[FACTORS].iloc[:n_factor_samples].mean()
    .rename("share").rename_axis("factor").reset_index().assign(source=src)
    for src in ("labelled", "wit", "laion")])
alt.Chart(freq).mark_bar().encode(
    x=alt.X("share:Q", title="share of samples"), y=alt.Y("factor:N", sort=FACTORS),
    color=alt.Color("source:N"), yOffset="source:N",
    tooltip=["source", "factor", alt.Tooltip("share:Q", format=".3f")])

# %% [markdown]
# ## The zoo

# %%
cat = list_zoo()
acc = pd.read_csv(zoo_dir() / "eval.csv")
display(Markdown(
    f"{len(cat)} models in {cat['group'].nunique()} groups and {cat['family'].nunique()} "
    f"architecture families; ID test accuracy from {cat['id_acc'].min():.1%} to "
    f"{cat['id_acc'].max():.1%} (median {cat['id_acc'].median():.1%})."))
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
                       tooltip=["id", "group", "train_set", alt.Tooltip("id_acc:Q", format=".3f")],
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
# One card per model (architecture, training set, seed, weights hash, accuracy per set).

# %%
display(Markdown("\n\n".join((zoo_dir() / "cards" / f"{i}.md").read_text() for i in cat["id"])))
