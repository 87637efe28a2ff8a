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
# # Shape bias (paper section 4.2)
#
# Geirhos et al. (2019) showed ImageNet-trained CNNs images whose **shape** belongs to one
# class and whose **texture** belongs to another (a cat silhouette filled with elephant
# skin). Humans answer by shape almost always; ImageNet CNNs mostly by texture. Tu, Deng &
# Gedeon report that "CLIP models are more likely to make predictions based on shape compared
# to the other three groups" (standard ImageNet models, models trained on more data, fine-tuned
# CLIPs) and that "shape bias in CLIP weakens after fine-tuning on ImageNet".
#
# :::{glue:md} summary
# :format: myst
# :::
#
# **Method.** Shape bias = shape decisions / (shape decisions + texture decisions), over the
# cue-conflict images whose shape and texture classes differ; answers that are neither do
# not count. Real ImageNet models answer in 1000 classes, mapped to the 16 cue-conflict
# classes by averaging the probabilities of each class's ImageNet members (model-vs-human's
# mapping); zero-shot CLIP can also answer directly with a 16-way head (a second reading).
# Groups are compared by mean shape bias with percentile bootstrap intervals over models;
# fine-tuning by the paired change from each fine-tuned model's own zero-shot parent. An
# interval over the stimuli of one checkpoint speaks for that checkpoint only, and says so.

# %% tags=["parameters"]
models: str | list = "zoo"  # model ids, or a catalog name: zoo (synthetic world) or real
dataset = ""  # empty = synth:cue-conflict for zoo models, cue-conflict for real models
id_dataset = ""  # ID accuracy set: empty = synth:id-test for zoo models, none for real models
data_root = ""  # folder holding real datasets (cue-conflict/<class>/*.png, ...); empty = none
store = ""  # prediction store; empty = the default location
device = "auto"
batch_size = 256
templates: str | list = "openai"  # zero-shot templates for CLIP heads: openai (80), simple (7), single
seed = 0
n_boot = 1000  # bootstrap resamples for intervals

# %%
import pandas as pd
from clipsafety import charts, claims, evidence, plots, readable, shape, summaries
from clipsafety.external import ExternalUnavailable
from clipsafety.groups import CLIP_ZEROSHOT, group_label
from clipsafety.readable import Column
from clipsafety.studies import shape_bias as study
from IPython.display import Markdown, display

plots.setup()

# the tables' headers in words (shape bias and its interval as fractions, as in the text)
HEADERS = {
    "observer": "Model", "model": "Model", "group": "Group", "training": "Training",
    "source": "Source", "note": "Note", "samples": ("Training samples", "count"),
    "reading": "Reading", "arch": "Architecture", "training_source": "Training source",
    "head": "Head", "prompt": "Prompt", "fork": "Fork",
    "shape_bias": ("Shape bias", "ratio", 3), "lo": ("Interval low", "ratio", 3),
    "hi": ("Interval high", "ratio", 3), "shape_bias_direct": ("Shape bias, 16-way head", "ratio", 3),
    "reading_direct": "Reading, 16-way head", "cue_share": ("Cue share", "percent"),
    "shape_hits": ("Shape answers", "count"), "texture_hits": ("Texture answers", "count"),
    "id_acc": ("ID accuracy", "percent"), "duplicate_of": "Duplicate of",
    "counted": "Counted", "identical_to": "Identical to", "size": ("Networks", "count"),
    "mean": ("Mean", "ratio", 3), "median": ("Median", "ratio", 3), "min": ("Lowest", "ratio", 3),
    "max": ("Highest", "ratio", 3), "n_models": ("Models", "count"),
    "most_influential": "Most influential model", "value_of_it": ("Its shape bias", "ratio", 3),
    "mean_without": ("Mean without it", "ratio", 3), "robust_z": ("Robust z-score", "ratio"),
    "outlier": "Outlier",
}


def shown(df, caption, **kw):
    """``df`` as a readable table: every column (and named index) under its header in words."""
    names = [n for n in df.index.names if n] + list(df.columns)
    cols = {}
    for c in names:
        spec = HEADERS.get(c, (str(c).replace("_", " ").capitalize(), "number"))
        spec = spec if isinstance(spec, tuple) else (spec,)
        cols[c] = Column(*spec, missing="not given for this row")
    return readable.table(df, cols, caption=caption, **kw)
run = evidence.chapter_run("shape_bias", models, zoo_dataset="synth:cue-conflict",
                           real_dataset="cue-conflict", dataset=dataset, data_root=data_root,
                           store=store, device=device, batch_size=batch_size,
                           templates=templates, needs="the cue-conflict stimuli")
live_source, real, cue_id = run.live_source, run.real, run.dataset
acc_id = id_dataset or ("" if real else "synth:id-test")
verdicts = run.not_run_rows(study.CLAIMS)  # one row per (claim, evidence source)
display(Markdown(
    f"This run: **{len(run.models)} models** ({run.kind}) on `{cue_id}`"
    + (f", ID accuracy on `{acc_id}`" if acc_id else "") + f", {n_boot} bootstrap resamples."))

# %% [markdown]
# ## 1. Published evidence: humans and ImageNet CNNs
#
# The raw decisions of Geirhos et al.'s ten human observers and of ImageNet-trained CNNs
# (AlexNet, GoogLeNet, VGG; Caffe models of the original study and torchvision's AlexNet and
# VGG-16), read from the texture-vs-shape repository at a pinned commit. No CLIP model is
# among them: this panel sets the reference band (humans) and the ImageNet range. Every
# shape bias is read with its denominator, the *cue share*: the share of trials answered
# with the shape or the texture class (answers near chance pull the ratio towards 0.5).

# %%
try:
    observers = study.shape_bias_by_observer(study.published_shape_decisions())
    band = study.human_band(observers)
    have_pub = True
except ExternalUnavailable as exc:
    have_pub, band = False, None
    display(plots.unavailable_note(exc, "The published shape-bias panel"))

# %%
if have_pub:
    display(charts.strip_by_group(observers.rename(columns={"observer": "model"}), band=band,
                                  title="published cue-conflict decisions",
                                  tooltip_extra=["trials", "note"]))
    cnn = observers[observers.group != "human"]
    display(Markdown(
        f"The ten humans' shape bias spans {band[0]:.3f} to {band[2]:.3f} (mean {band[1]:.3f}); "
        f"the {len(cnn)} ImageNet CNNs span {cnn.shape_bias.min():.3f} "
        f"({cnn.loc[cnn.shape_bias.idxmin(), 'observer']}) to {cnn.shape_bias.max():.3f} "
        f"({cnn.loc[cnn.shape_bias.idxmax(), 'observer']})."))

# %% [markdown]
# ### Real CLIPs in published decisions
#
# Two forks of model-vs-human publish cue-conflict decisions of OpenAI's zero-shot CLIPs,
# read with the same reader and the same arithmetic: TizianThieringer's (CLIP ViT-B/32, B/16
# and L/14 beside supervised, self-supervised, Stylized-ImageNet-trained and more-data
# networks) and kayburns' (CLIP ViT-B/16 beside ResNet-50 and ViT variants). The name `clip`
# is a different checkpoint in each fork: ViT-B/32 in TizianThieringer's model zoo, ViT-B/16
# in kayburns'. Intervals are percentile bootstrap intervals over the 1,200 stimuli (every
# observer resampled with the same stimuli). Networks published twice under two names
# (identical decisions on every stimulus) are shown once in group means.

# %%
mvh, mvh_obs = {}, {}
for repo, short in study.MVH_SOURCES.items():
    try:
        mvh[short] = study.mvh_decisions(repo)
    except ExternalUnavailable as exc:
        display(plots.unavailable_note(exc, f"The {repo} panel"))
        continue
    res = shape.shape_bias_resamples(mvh[short], "observer", n_boot, seed)
    mvh_obs[short] = study.published_shape_observers(mvh[short], resamples=res)
if mvh_obs:
    nets = study.published_networks(mvh_obs)
    display(charts.strip_by_group(nets[nets.duplicate_of == ""].rename(columns={"observer": "model"}),
                                  band=band, title="published cue-conflict decisions, model-vs-human forks",
                                  tooltip_extra=["training", "lo", "hi", "cue_share"]))
    display(shown(study.network_table(nets).assign(group=lambda d: d["group"].map(group_label)),
                  "Shape bias of the published networks of the model-vs-human forks, highest "
                  "first", download="shape-bias-published-networks"))

# %% [markdown]
# CLIP by model size, and each CLIP against the kinds of network beside it (mean shape bias
# of each kind, duplicates left out).

# %%
if mvh_obs:
    clips = nets[nets.group == CLIP_ZEROSHOT].set_index("observer")
    display(shown(clips[["source", "note", "shape_bias", "lo", "hi", "cue_share"]],
                  "The published zero-shot CLIPs."))
    display(shown(study.network_kinds(nets), "Shape bias of the other published networks, per "
                  "source and training."))
    txt = "; ".join(f"{o} {r.shape_bias:.3f} [{r.lo:.3f}, {r.hi:.3f}], cue share {r.cue_share:.0%}"
                    for o, r in clips.iterrows())
    same = ""
    if {"Thieringer", "Burns"} <= set(mvh):
        both = pd.concat([mvh["Thieringer"], mvh["Burns"]])
        ag = study.clip_agreement(both, "CLIP ViT-B/16 [Thieringer]", "CLIP ViT-B/16 [Burns]")
        same = (f" The two forks' ViT-B/16 runs give the same answer on {ag['same_answer']:.1%} of "
                f"{ag['stimuli']} stimuli, so they are the same architecture but not identical "
                "runs (preprocessing, prompts or checkpoint differ)." if ag["same_answer"] < 1 else
                f" The two forks' ViT-B/16 runs agree on all {ag['stimuli']} stimuli.")
    cnn = observers[observers.group != "human"] if have_pub else nets
    display(Markdown(
        f"**Real CLIPs.** {txt}. Humans span {band[0]:.3f} to {band[2]:.3f}; the ImageNet CNNs "
        f"of texture-vs-shape {cnn.shape_bias.min():.3f} to {cnn.shape_bias.max():.3f}. By size "
        f"within TizianThieringer's fork: " + ", ".join(
            f"{o.split(' [')[0]} {clips.loc[o, 'shape_bias']:.3f}" for o in clips.index
            if o.endswith("[Thieringer]")) + "." + same if band else txt))

# %% [markdown]
# **At equal in-distribution accuracy, and single-model outliers.** TizianThieringer's fork
# also publishes every network's accuracy on model-vs-human's *colour* set; its `cr`
# condition (colour photographs, 16 classes) serves as the networks' in-distribution
# accuracy. CLIP's shape bias is compared with the line of the ImageNet models' shape bias
# on that accuracy, and each group mean is checked for one model that carries it.

# %%
if "Thieringer" in mvh_obs:
    t_obs = study.observers_with_id_accuracy(
        mvh_obs["Thieringer"], study.mvh_decisions("TizianThieringer/model-vs-human", "colour"))
    mech_pub = study.shape_mechanism(t_obs, "id_acc", n_boot=n_boot, seed=seed)
    display(Markdown(f"**Check (TizianThieringer).** {mech_pub['text']}"))
    display(shown(summaries.group_outliers(t_obs[t_obs.group != "human"], "shape_bias")
                  .assign(group=lambda d: d["group"].map(group_label)),
                  "Per group: the model that moves the mean most, and whether it is an outlier."))

# %% [markdown]
# ### Every real CLIP in the published files, each checkpoint once
#
# Four projects publish cue-conflict answers of real CLIPs: the two model-vs-human forks
# (OpenAI CLIPs, 1000-class zero-shot heads mapped to the 16 classes), Beyond-INet (open_clip
# CLIPs trained on LAION-400M, the same mapping) and vlm_shapebias (OpenAI RN50, RN101,
# ViT-L/14 and ViT-L/14@336, EVA-CLIPs trained on LAION-400M, LAION-2B and Merged-2B, with a
# 16-way zero-shot head over the 16 class names under three prompts; and ImageNet classifiers,
# among them OpenAI's ViT-L/14 fine-tuned on ImageNet). Every CLIP row is listed with its
# architecture, training source, head, prompt and fork; a checkpoint is counted once (`counted`:
# the model-vs-human protocol first, then the 16-way head with "a photo of a {c}."), and a
# network whose decisions equal another's on every stimulus is counted once too.

# %%
try:
    pub_trials = study.published_shape_trials()
    pub_models = study.published_shape_models(pub_trials)
    have_models = True
except ExternalUnavailable as exc:
    have_models = False
    display(plots.unavailable_note(exc, "The published CLIP panel"))

# %%
if have_models:
    clip_table = study.published_clip_table(pub_models)
    display(shown(clip_table, "Every zero-shot CLIP of the published cue-conflict files, "
                  "highest shape bias first", download="shape-bias-published-clips"))
    pooled = study.published_pooled_shape(pub_models)
    judged_pub, extra = study.assess_published_shape(pub_trials, pub_models, n_boot=n_boot,
                                                     seed=seed)
    verdicts += judged_pub
    counted = clip_table[clip_table.counted]
    texture = counted[counted.shape_bias < 0.5]
    dups = pub_models[pub_models.identical_to != ""]
    display(charts.strip_by_group(pooled, band=band, title="published cue-conflict answers, "
                                  "each checkpoint once", tooltip_extra=["source", "head", "fork"]))
    display(Markdown(
        f"**{len(counted)} zero-shot CLIP checkpoints** are counted (from {len(clip_table)} rows); "
        f"{len(pooled) - len(counted)} other networks beside them. Texture-leaning CLIPs (shape "
        f"bias below 0.5), shown rather than averaged away: " + (", ".join(
            f"{r.checkpoint} {r.shape_bias:.3f} ({r.head})" for r in texture.itertuples())
            or "none") + ". Networks published twice with identical decisions, counted once: "
        + "; ".join(f"{r.model.split(' | ')[0]} = {r.identical_to.split(' | ')[0]}"
                    for r in dups.itertuples()) + "."))
    ft, (e336, lo336, hi336) = extra.get("ft"), extra.get("ft336", (float("nan"),) * 3)
    if ft is not None:
        display(Markdown(
            "**Same backbone, fine-tuned (vlm_shapebias).** Shape bias of OpenAI ViT-L/14: "
            + ", ".join(f"{k.split(' | ')[0]} {v:.3f}" for k, v in ft.items())
            + f". ViT-L/14@336 fine-tuned on 12k then 1k minus its zero-shot self: {e336:+.3f} "
            f"[{lo336:+.3f}, {hi336:+.3f}] (over stimuli). The zero-shot rows use a 16-way head, "
            "the fine-tuned ones a 1000-class head mapped to 16; one checkpoint, so this speaks "
            "for these weights, not for CLIPs in general."))
    if extra.get("source") is not None:
        display(Markdown(
            "**LAION against WIT, one checkpoint per side.** " + ", ".join(
                f"{k.split(' | ')[0]} ({k.split(' | ')[1]}) {v:.3f}"
                for k, v in extra["source"].items()) + "."))

# %% [markdown]
# ## 2. Live evidence: the models of this run
#
# With the default parameters: the zoo's models on the synthetic cue-conflict set (the shape
# of one category filled with another category's characteristic texture and colour), with
# their accuracy on the synthetic ID test set. With real model ids and a `data_root`: the
# real cue-conflict stimuli, 1000 -> 16 mapping, and for CLIP a direct 16-way head as well.

# %%
live_ok = run.live_ok
if live_ok:
    shape = study.shape_table(run.collect())
    if acc_id:
        shape = study.with_id_accuracy(shape, run.collect(acc_id))
    if not real:  # the shape-learning premise: accuracy on shape-only stimuli
        shape = study.with_shape_only_accuracy(shape, run.collect("synth:shift-stylized"))
    display(shown(study.shape_overview(shape).assign(group=lambda d: d["group"].map(group_label)),
                  f"Shape bias per model ({live_source})", download="shape-bias-per-model"))
else:
    display(Markdown(run.skipped_note(
        "the stimuli under `/data/cue-conflict/<class>/<shape><n>-<texture><m>.png`")))

# %%
second = ("A second reading for zero-shot CLIP on the real stimuli: a head over the 16 "
          "cue-conflict class names instead of the 1000 ImageNet names and the mapping")
if live_ok and real and (shape.group == CLIP_ZEROSHOT).any():
    display(Markdown(second + ":"))
    clip_ids = list(shape.loc[shape.group == CLIP_ZEROSHOT, "model"])
    direct = study.shape_table(run.collect(models=clip_ids, classnames="cue-conflict-16"))
    display(shown(study.direct_reading(shape, direct), "Zero-shot CLIP read two ways."))
else:
    display(Markdown(f"{second} needs real zero-shot CLIPs on real stimuli; this run has "
                     f"{'none' if not live_ok else 'zoo models, whose heads are the 16 classes already'}."))

# %%
if live_ok:
    display(charts.strip_by_group(shape, band=band, title=f"shape bias ({live_source})",
                                  tooltip_extra=["reading", "trials"]))

# %%
if live_ok and "id_acc" in shape:
    display(charts.versus_accuracy(shape, "id_acc", "shape_bias", x_title="ID accuracy (%)",
                                   title="shape bias against ID accuracy",
                                   tooltip_extra=["family", "source"]))

# %% [markdown]
# Zero-shot CLIP against the same CLIP fine-tuned: one line per fine-tuned model, from its
# zero-shot parent (the zoo catalog's `parent` column) to the fine-tuned model.

# %%
pairs = summaries.paired_changes(shape) if live_ok else pd.DataFrame()
if len(pairs):
    display(charts.paired_change(pairs, title="fine-tuning and shape bias"))
    per_parent = study.parent_changes(shape)
    d_mean, d_lo, d_hi = summaries.bootstrap_mean(per_parent["change"], n_boot=n_boot, seed=seed)
    display(Markdown(
        f"Over {len(pairs)} fine-tuned models from {len(per_parent)} parents, fine-tuning "
        f"changes shape bias by {d_mean:+.3f} on average per parent (95% interval over parents "
        f"[{d_lo:+.3f}, {d_hi:+.3f}]); {int((pairs.after < pairs.before).sum())} of {len(pairs)} "
        "decrease."))
elif live_ok:
    display(Markdown("No fine-tuned model with its zero-shot parent in this run, so there is "
                     "no paired comparison."))

# %%
if live_ok:
    display(shown(study.group_shape_summary(shape, n_boot=n_boot, seed=seed),
                  "Mean shape bias per group, with its 95% bootstrap interval over models."))
    outl = summaries.group_outliers(shape, "shape_bias")
    display(shown(outl.assign(group=lambda d: d["group"].map(group_label)),
                  "Per group: the model that moves the mean most, and whether it is an outlier."))
    mech = study.shape_mechanism(shape, "id_acc" if "id_acc" in shape else None,
                                 n_boot=n_boot, seed=seed)
    flagged = outl[outl.outlier]
    display(Markdown(
        f"**Check ({live_source}).** {mech['text']} " + " ".join(
            f"In *{group_label(r.group)}*, {r.most_influential} ({r.value_of_it:.3f}) carries the "
            f"mean: {r['mean']:.3f} with it, {r.mean_without:.3f} without it."
            for _, r in flagged.iterrows())))
    judged_live = study.assess_shape_claims(shape, live_source, n_boot=n_boot, seed=seed,
                                            world=not real, data=(cue_id, *run.models))
    verdicts += judged_live
    if not real:
        prem = study.shape_premises(shape, {
            "zero-shot CLIP": shape.group == CLIP_ZEROSHOT,
            "ImageNet models": shape.group.isin(["standard", "more-data"]),
            "fine-tuned CLIPs": shape.group.isin(["clip-ft-direct", "clip-ft-2stage"])})
        display(Markdown(
            "**The world's premises for the shape claims** (measured on the zoo): "
            + "; ".join(f"{p.name} — {p.measured} (needs {p.needed}): "
                        f"{'met' if p.ok else 'not met'}" for p in prem) + ". "
            + " ".join(f"*{j.claim.text}* — **{j.verdict}** on the synthetic world: {j.reason}."
                       for j in judged_live if j.verdict not in claims.TESTED)))

# %% [markdown]
# ## Beyond the paper: model-vs-human's other datasets
#
# TizianThieringer's fork publishes the same networks' and humans' decisions on
# model-vs-human's 16 other datasets (sketches, edges, silhouettes, stylised images, and
# graded distortions: contrast, noise, blur, eidolon, rotation, ...). Top: accuracy per
# distortion level (the three CLIPs thick). Bottom: error consistency with the humans
# (Cohen's kappa of trial-by-trial correctness, per condition, averaged over conditions and
# over humans; for humans, with the other humans).

# %%
try:
    mvh_acc, mvh_ec = study.mvh_other_datasets()
    clip_names = list(mvh_acc.loc[mvh_acc.group == CLIP_ZEROSHOT, "observer"].unique())
    acc_plot = study.with_human_mean(mvh_acc)
    display(charts.stack(
        charts.level_curves(acc_plot, "dataset", "condition", "accuracy", "observer", "order",
                            highlight=clip_names + ["humans (mean)"], y_title="accuracy"),
        charts.points_by_category(mvh_ec, "dataset", "error_consistency", "observer",
                                  highlight=clip_names, x_title="error consistency with humans"),
        title="CLIP, other networks and humans on model-vs-human's other datasets"))
    ec = mvh_ec.groupby("group").error_consistency.mean()
    display(Markdown(
        f"Averaged over the {mvh_ec.dataset.nunique()} datasets, error consistency with humans "
        f"is {ec.get(CLIP_ZEROSHOT, float('nan')):.3f} for the zero-shot CLIPs, "
        f"{ec.get('standard', float('nan')):.3f} for the standard networks and "
        f"{ec.get('human', float('nan')):.3f} between humans."))
except ExternalUnavailable as exc:
    display(plots.unavailable_note(exc, "The model-vs-human datasets panel"))

# %% [markdown]
# ## 3. Real models on real data
#
# Run the chapter with real model ids and a `data_root` holding the 1,280 cue-conflict
# stimuli in their published layout (`cue-conflict/<shape class>/<shape><n>-<texture><m>.png`,
# as in texture-vs-shape's `stimuli/style-transfer-preprocessed-512`).

# %%
display(Markdown(run.real_section()))

# %% [markdown]
# ## The paper's claims, per evidence source
#
# Rules (`clipsafety.studies.shape_bias`, each claim's `test`): *CLIP more shape-biased than
# the other three groups* — zero-shot CLIP's mean shape bias minus each group present
# (standard, more data, fine-tuned CLIPs), bootstrap over models, Bonferroni over the groups
# present; reproduced when CLIP lies above every group, contradicted when below any. On
# published data every checkpoint counts once. *Fine-tuning weakens it* — on the zoo the mean
# change from each fine-tuned model's own parent, averaged per parent and resampled over
# parents; on published data the same-backbone ViT-L/14 comparison over stimuli (one
# checkpoint). *LAION above WIT* (the book's extension) — at equal ID accuracy on the zoo, one
# checkpoint per side on published data. On the synthetic world each verdict is gated by the
# cue-share and shape-learning premises, and a contrast fixed by the world's cue strength is
# *built in*.

# %%
from clipsafety import pages  # noqa: E402

pages.end_chapter("shape_bias", verdicts, observers=observers if have_pub else None,
                  shape=shape if live_ok else None,
                  mvh_observers=pd.concat(mvh_obs.values()) if mvh_obs else None)
