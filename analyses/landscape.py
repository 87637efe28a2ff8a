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
# Everything here is published evidence (no inference): timm's results tables, open_clip's
# zero-shot results, and imagenet-testbed's model collection, each read from a file pinned to an
# upstream commit and checked by sha256.
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
import altair as alt
import numpy as np
import pandas as pd
from clipsafety import landscape, plots, published
from clipsafety.external import ExternalUnavailable
from clipsafety.metrics import bootstrap_ci
from clipsafety.style import group_label
from IPython.display import Markdown, display

plots.setup()
unknown = sorted(set(shifts) - set(published.SHIFTS))
if unknown:
    raise ValueError(f"unknown shift(s) {unknown}; valid shifts: {list(published.SHIFTS)}")

# %% [markdown]
# ## The published tables

# %%
try:
    long = published.landscape_long(sources)
    long = long[long["shift"].isin(shifts) & (long["group"] != "excluded")]
    have_data = True
except ExternalUnavailable as exc:
    have_data = False
    display(plots.unavailable_note(exc, "The whole landscape"))

# %%
if have_data:
    counts = (long.drop_duplicates(["source", "model"]).groupby(["source", "group"]).size()
              .unstack(fill_value=0))
    counts.columns = [group_label(c) for c in counts.columns]
    display(counts)

# %% [markdown]
# ## Accuracy on the line, and CLIP above it
#
# Each panel is one shift. Grey-blue: the fitted line of the standard ImageNet models with
# its 95% bootstrap band. Hover a point for the model and its numbers.

# %%
if have_data:
    points, bands, fits = landscape.fit_landscape(
        long, baseline_sources=baseline_sources, scale=scale, n_boot=n_boot, seed=seed)
    points = plots.with_group_labels(points)
    for col in ("imagenet", "shift_acc", "predicted", "eff_rob"):
        points[col + "_pct"] = (100 * points[col]).round(2)
    # charts carry only what they show (the page embeds each chart's data)
    chart_cols = ["model", "source", "group", "group_label", "shift", "imagenet_pct",
                  "shift_acc_pct", "eff_rob_pct"]
    bands[["x", "lo", "mid", "hi"]] = 100 * bands[["x", "lo", "mid", "hi"]]
    panels = []
    for shift in shifts:
        p = points.loc[points["shift"] == shift, chart_cols]
        scatter = plots.scatter_by_group(
            p, "imagenet_pct", "shift_acc_pct", size=30,
            tooltip=["model", "source", "group_label",
                     alt.Tooltip("imagenet_pct:Q", title="ImageNet %", format=".2f"),
                     alt.Tooltip("shift_acc_pct:Q", title=f"{shift} %", format=".2f"),
                     alt.Tooltip("eff_rob_pct:Q", title="effective robustness", format="+.2f")],
            x_title="ImageNet top-1 (%)", y_title=f"{published.SHIFTS[shift]} top-1 (%)",
            groups=points["group"].unique())
        band = plots.trend_band(bands[bands["shift"] == shift])
        panels.append((band + scatter).properties(width=330, height=280, title=shift))
    rows = [alt.hconcat(*panels[i:i + 2]) for i in range(0, len(panels), 2)]
    display(alt.vconcat(*rows).resolve_scale(color="shared", shape="shared"))

# %%
if have_data:
    fits_shown = fits.assign(n_baseline=fits["n_baseline"].astype(int))
    display(fits_shown.round(3))

# %% [markdown]
# ## Effective robustness by group
#
# One tick per model; the thick mark is the group median. Zero-shot CLIP (red) should sit
# above zero on the natural shifts if the paper's premise holds in these tables.

# %%
if have_data:
    summ = landscape.group_summary(points)
    def ticks(data):
        return alt.Chart(data).mark_tick(opacity=0.4, thickness=1).encode(
            x=alt.X("eff_rob_pct:Q", title="effective robustness (accuracy points)"),
            y=alt.Y("group_label:N", title=None),
            color=plots.group_encodings(points["group"].unique())["color"],
            tooltip=["model", "source", alt.Tooltip("eff_rob_pct:Q", format="+.2f",
                                                    title="effective robustness")],
        )
    summ = plots.with_group_labels(summ).assign(median_pct=lambda d: 100 * d["median"])
    med = alt.Chart(summ).mark_tick(thickness=4, size=18, color="black").encode(
        x="median_pct:Q", y="group_label:N",
        tooltip=["group_label", alt.Tooltip("median_pct:Q", format="+.2f", title="median"), "n"])
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(strokeDash=[4, 4]).encode(x="x:Q")
    display(alt.vconcat(*[
        alt.layer(ticks(points.loc[points["shift"] == s, chart_cols]),
                  med.transform_filter(alt.datum.shift == s), zero)
        .properties(width=520, height=140, title=published.SHIFTS[s])
        for s in shifts]))

# %% [markdown]
# ## Zero-shot CLIP: training source and scale
#
# Mean effective robustness over the shifts against ImageNet accuracy, for the open_clip
# zero-shot models. Marker: training source; size: samples seen during training.

# %%
if have_data and "open_clip" in sources:
    er = landscape.effective_robustness_table(points, groups=["clip-zeroshot"])
    oc = published.openclip_results()[["model", "train_source", "samples_seen", "params"]]
    er = er.merge(oc, on="model", how="left")
    er["imagenet_pct"] = 100 * er["imagenet"]
    er["er_mean_pct"] = 100 * er["ER mean"]
    er["samples_seen_b"] = er["samples_seen"] / 1e9
    from clipsafety.style import source_shape_scale

    chart = alt.Chart(er.dropna(subset=["er_mean_pct"])).mark_point(filled=True, opacity=0.8).encode(
        x=alt.X("imagenet_pct:Q", title="ImageNet top-1 (%)", scale=alt.Scale(zero=False)),
        y=alt.Y("er_mean_pct:Q", title="mean effective robustness (points)"),
        shape=alt.Shape("train_source:N", title="training source",
                        scale=source_shape_scale(er["train_source"].fillna("other"))),
        color=alt.Color("train_source:N", title="training source"),
        size=alt.Size("samples_seen_b:Q", title="samples seen (B)"),
        tooltip=["model", "train_source", alt.Tooltip("samples_seen_b:Q", title="samples (B)"),
                 alt.Tooltip("imagenet_pct:Q", format=".2f", title="ImageNet %"),
                 alt.Tooltip("er_mean_pct:Q", format="+.2f", title="mean ER")],
    ).properties(width=560, height=340)
    display(chart)

# %% [markdown]
# ## Per-model table
#
# Effective robustness (accuracy points) of the most and least effectively robust CLIP
# models, zero-shot and fine-tuned, in the published tables.

# %%
if have_data:
    table = landscape.effective_robustness_table(
        points, groups=["clip-zeroshot", "clip-ft-direct", "clip-ft-2stage"])
    shown = table.copy()
    num = [c for c in shown.columns if c.startswith("ER") or c == "imagenet"]
    shown[num] = (100 * shown[num]).round(2)
    shown["group"] = shown["group"].map(group_label)
    display(pd.concat([shown.head(top_n), shown.tail(min(top_n, max(len(shown) - top_n, 0)))]))

# %% [markdown]
# ## Findings

# %%
if have_data:
    def median_ci(values):
        return bootstrap_ci(np.median, np.asarray(values), n_boot=n_boot, seed=seed)

    lines = []
    for shift in shifts:
        p = points[points["shift"] == shift]
        zs = p.loc[p["group"] == "clip-zeroshot", "eff_rob"]
        st = p.loc[p["group"] == "standard", "eff_rob"]
        if len(zs) < 2:
            lines.append(f"- **{shift}**: fewer than two zero-shot CLIP models; not testable.")
            continue
        m, lo, hi = median_ci(zs)
        ms, los, his = median_ci(st)
        above = (zs > 0).mean()
        verdict = "reproduced" if lo > his else ("not reproduced" if hi <= his else "unclear")
        lines.append(
            f"- **{published.SHIFTS[shift]}**: median effective robustness of {len(zs)} zero-shot "
            f"CLIP models {100 * m:+.1f} points (95% CI {100 * lo:+.1f} to {100 * hi:+.1f}) vs "
            f"{100 * ms:+.1f} ({100 * los:+.1f} to {100 * his:+.1f}) for {len(st)} standard models; "
            f"{100 * above:.0f}% of the CLIP models lie above the line. "
            f"CLIP more effectively robust than standard models: **{verdict}**.")
    vitb32 = published.openclip_results().set_index("model").loc["openclip:ViT-B-32@openai"]
    display(Markdown(
        "Effective robustness of zero-shot CLIP against the line of standard ImageNet models "
        f"({scale} scale; intervals: bootstrap over models, {n_boot} resamples):\n\n"
        + "\n".join(lines)
        + f"\n\nFor orientation: OpenAI's CLIP ViT-B/32 reads {100 * vitb32['imagenet']:.2f}% on "
        f"ImageNet and {100 * vitb32['r']:.2f}% on ImageNet-R in open_clip's table. ImageNet-V2 is "
        "a re-collection of ImageNet itself, so little effective robustness is expected there for "
        "any model; the interesting shifts are Sketch, R, A and ObjectNet."))
