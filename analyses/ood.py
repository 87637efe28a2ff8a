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
# # Out-of-distribution detection (paper section 5)
#
# A classifier deployed in the open meets images of classes it was never taught. A
# trustworthy one says so: its confidence on such an image is lower than on the images it
# knows. Tu, Deng & Gedeon ask how well zero-shot CLIP separates in-distribution (ID) images
# from out-of-distribution (OOD) ones, compared with ImageNet classifiers and with CLIPs
# fine-tuned on ImageNet. They report that within one training source, ID accuracy
# correlates strongly with OOD detection; that the training source and the fine-tuning
# recipe strongly affect it (some fine-tuned CLIPs detect worse than zero-shot ones, and
# fine-tuning on a larger label space first helps).
#
# :::{glue:md} summary
# :format: myst
# :::
#
# **Method.** Each model scores every image; higher means "more in-distribution". Zero-shot
# CLIP uses MCM (maximum softmax of the image-text cosines, Ming et al. 2022), every other
# model its maximum softmax probability (MSP), as the paper does; MaxLogit, energy and MSP
# for CLIP are parameters, and a negative-label score in the style of NegLabel (Jiang et al.
# 2024) shows what a zero-shot score from after the paper adds. Detection is measured per
# OOD set by AUROC (ID as the positive class), FPR@95 (the share of OOD images accepted at the
# threshold that keeps 95% of ID images; OpenOOD's mirror-image convention is a parameter),
# and AUPR with ID or OOD as the positive class, then averaged over the OOD sets. The
# conventions and where the peers' tools differ are on the "Methods and conventions" page.

# %% tags=["parameters"]
models: str | list = "zoo"  # model ids, or a catalog name: zoo (synthetic world) or real
id_dataset = ""  # empty = synth:id-test for zoo models, imagenet:val for real models
ood_sets: str | list = ""  # empty = the world's five OOD sets, or the six real ones for real models
data_root = ""  # folder holding real datasets (imagenet/val, iNaturalist, ...); empty = none
store = ""  # prediction store; empty = the default location
device = "auto"
batch_size = 256
templates: str | list = "openai"  # zero-shot templates for CLIP heads: openai (80), simple (7), single
clip_score = "mcm"  # zero-shot CLIP's score: mcm, msp, maxlogit, energy or neglabel
other_score = "msp"  # every other model's score: msp, maxlogit or energy
temperature = 1.0  # softmax temperature of MCM and MSP
fpr_convention = "id-recall"  # id-recall (OOD accepted at 95% ID kept) or ood-recall (OpenOOD)
aupr_method = "step"  # step (average precision) or trapezoid (OpenOOD)
negative_labels = True  # also score zero-shot CLIPs with the NegLabel-style score
seed = 0
n_boot = 1000  # bootstrap resamples for intervals
published: str | list = ["ninco", "cood"]  # published results to show: ninco, cood

# %%
import pandas as pd
from clipsafety import charts, claims, evidence, plots, readable, summaries
from clipsafety.external import ExternalUnavailable
from clipsafety.groups import CLIP_ZEROSHOT, group_label
from clipsafety.readable import Column
from clipsafety.studies import ood as study
from IPython.display import Markdown, display

plots.setup()
study.resolve_scores(clip_score, other_score)
run = evidence.chapter_run("ood", models, zoo_dataset="synth:id-test", real_dataset="imagenet:val",
                           dataset=id_dataset, data_root=data_root, store=store, device=device,
                           batch_size=batch_size, templates=templates,
                           needs="ImageNet val and the OOD sets")
sets = study.resolve_ood_sets(ood_sets, run.real)
published = [published] if isinstance(published, str) else list(published)
verdicts = run.not_run_rows(study.CLAIMS)  # one row per (claim, evidence source)
display(Markdown(
    f"This run: **{len(run.models)} models** ({run.kind}), ID set `{run.dataset}` against "
    f"{len(sets)} OOD sets ({', '.join(f'`{s}`' for s in sets)}); zero-shot CLIP scored by "
    f"`{clip_score}`, the others by `{other_score}` (T = {temperature}); FPR@95 convention "
    f"`{fpr_convention}`, AUPR `{aupr_method}`; {n_boot} bootstrap resamples."))

# %% [markdown]
# ## 1. Live evidence: the models of this run
#
# Predictions come from the prediction store (computed once per model and dataset, then
# cached). With the default parameters these are the zoo's tiny models on the synthetic
# world: the ID test set against novel categories (near-OOD), texture patches without an
# object, object-free scenes, a novel fine-grained domain and noise.

# %%
live_ok = run.live_ok
if live_ok:
    id_recs = run.collect()
    ood_recs = {s: run.collect(s) for s in sets}
    table = study.detection_table(id_recs, ood_recs, clip_score, other_score, T=temperature,
                                  fpr_convention=fpr_convention, aupr_method=aupr_method)
    avg = study.average_over_sets(table)
    display(readable.table(
        study.group_means(avg).rename(index=group_label),
        {"group": "Group", "auroc": ("Mean AUROC", "percent"),
         "fpr95": (f"Mean FPR@95 ({fpr_convention})", "percent"),
         "aupr_in": ("Mean AUPR, ID positive", "percent"),
         "aupr_out": ("Mean AUPR, OOD positive", "percent"), "id_acc": ("ID accuracy", "percent")},
        caption="Per group: the detection metrics averaged over the OOD sets, and ID accuracy."))
else:
    display(Markdown(run.skipped_note(
        "ImageNet val and the OOD sets under `/data` (see the appendix 'Datasets on disk')")))

# %% [markdown]
# AUROC and FPR@95 against ID accuracy, one panel per OOD set; colour is the model group,
# the marker its training source. Hover a point for the model; click a group in the legend
# to highlight it.

# %%
if live_ok:
    display(charts.metric_panels(table, "ood_set", sets, "id_acc", ["auroc", "fpr95"],
                                 marker="source", x_title="ID accuracy (%)",
                                 titles={"auroc": "AUROC", "fpr95": f"FPR@95 ({fpr_convention})"}))

# %% [markdown]
# Correlation of ID accuracy with the mean AUROC over the OOD sets, per training source of the
# zero-shot CLIPs (Pearson and Spearman, 95% bootstrap intervals over models).

# %%
if live_ok:
    corr = study.correlations(avg, "auroc", n_boot=n_boot, seed=seed)
    if len(corr):
        display(charts.interval_points(corr, "source", ["pearson", "spearman"],
                                       title="ID accuracy vs mean AUROC, zero-shot CLIP"))
    no_interval = "too few models for a bootstrap interval"
    display(readable.table(
        corr, {"source": "Training source", "n_models": ("Models", "count"),
               **{f"{m}{end}": Column(f"{name}{words}", "ratio", missing=no_interval)
                  for m, name in (("pearson", "Pearson r"), ("spearman", "Spearman ρ"))
                  for end, words in (("", ""), ("_lo", ", interval low"),
                                     ("_hi", ", interval high"))}},
        caption="Correlation of ID accuracy with the mean AUROC, zero-shot CLIP per training "
                "source (95% bootstrap intervals over models)."))

# %%
if live_ok:
    pairs = study.fine_tuning_pairs(avg, "auroc")
    if len(pairs):
        display(charts.paired_change(pairs, value_title="mean AUROC",
                                     title="zero-shot CLIP and the same CLIP fine-tuned"))
    if run.real:
        premises, setting = (), ""
    else:  # the world's premises, measured on the zoo; its source contrast is a setting
        from clipsafety.synth import CATEGORIES

        premises = study.world_premises(avg, 1 / len(CATEGORIES), n_boot=n_boot, seed=seed)
        setting = study.world_source_setting()
        display(readable.table(pd.DataFrame([vars(p) for p in premises]),
                               {"name": "Premise", "ok": "Met", "measured": "Measured",
                                "needed": "Needed"},
                               caption="The world's premises, measured on the zoo."))
    live_judgements = study.assess_ood_claims(avg, run.live_source, n_boot=n_boot, seed=seed,
                                              premises=premises, built_in=setting)
    verdicts += live_judgements
    clip_avg = avg[avg.group == CLIP_ZEROSHOT]
    best = avg.loc[avg.auroc.idxmax()] if len(avg) else None
    display(Markdown(
        f"**Finding ({run.live_source}).** Mean AUROC over the {len(sets)} OOD sets ranges from "
        f"{avg.auroc.min():.3f} to {avg.auroc.max():.3f} (best: `{best.model}`, "
        f"{group_label(best.group)}); zero-shot CLIPs average {clip_avg.auroc.mean():.3f} and "
        f"FPR@95 {clip_avg.fpr95.mean():.3f} over {len(clip_avg)} models."
        if best is not None else "No model in this run."))

# %% [markdown]
# ### A zero-shot score from after the paper: negative labels
#
# NegLabel (Jiang et al., ICLR 2024) adds a large vocabulary of *negative* labels to the
# zero-shot head: an image whose text similarity goes to the negatives rather than to the ID
# class names is scored as OOD. Here the negatives are the words of the world's caption
# vocabulary that are neither category names nor template or filler words (for real models:
# ImageNet-21k lemmas outside ImageNet-1k); NegLabel's negative mining and grouping are left
# out, so this is a simplified form of the method.

# %%
if live_ok and negative_labels and any(study.is_zero_shot(r) for r in id_recs.values()):
    clip_ids = [m for m, r in id_recs.items() if study.is_zero_shot(r)]
    names = study.id_classnames(id_recs[clip_ids[0]], run.real)
    negatives = study.negative_vocabulary(run.real)
    neg = {"__id__": run.collect(models=clip_ids, classnames=names + negatives)}
    neg.update({s: run.collect(s, models=clip_ids, classnames=names + negatives) for s in sets})
    base = study.detection_table({m: id_recs[m] for m in clip_ids},
                                 {s: {m: ood_recs[s][m] for m in clip_ids} for s in sets},
                                 clip_score, other_score, T=temperature,
                                 fpr_convention=fpr_convention, aupr_method=aupr_method)
    negl = study.detection_table({m: id_recs[m] for m in clip_ids},
                                 {s: {m: ood_recs[s][m] for m in clip_ids} for s in sets},
                                 "neglabel", other_score, fpr_convention=fpr_convention,
                                 aupr_method=aupr_method, neg_records=neg)
    both = pd.concat([base, negl], ignore_index=True)
    display(charts.score_comparison(both, "ood_set", "auroc", "score",
                                    title=f"zero-shot CLIP: {clip_score} against the "
                                          f"NegLabel-style score ({len(negatives)} negatives)"))
    gain = study.score_gain(base, negl)
    g, g_lo, g_hi = summaries.bootstrap_mean(gain, n_boot=n_boot, seed=seed)
    display(Markdown(
        f"Over {len(gain)} zero-shot CLIPs, the NegLabel-style score changes the mean AUROC by "
        f"{g:+.3f} (95% interval [{g_lo:+.3f}, {g_hi:+.3f}]) against `{clip_score}`; it is "
        f"higher for {int((gain > 0).sum())} of them."))

# %% [markdown]
# ## 2. Published evidence: real models
#
# **NINCO** (Bitterwolf et al., ICML 2023) publishes, per model and score, the AUROC and FPR@95
# of ImageNet models against its 64 hand-cleaned OOD classes, cleaned 400-image subsets of
# ImageNet-O, Textures, Places and iNaturalist species, and synthetic "unit tests". Among its
# models: two zero-shot OpenAI CLIPs (ViT-B/16, ViT-L/14 at 336 px; MCM and cosine scores) and
# four CLIP ViT-B/16s fine-tuned on ImageNet, directly or through ImageNet-12k (OpenAI and
# LAION-2B pretraining). **C-OOD** (Galil et al., ICLR 2023) evaluates ImageNet models, nine
# zero-shot and seven fine-tuned OpenAI CLIPs among them, on OOD classes of 11 difficulty
# levels (MSP for every model). Both are read by checkpoint (`clipsafety.published_models`),
# so that one set of weights counts once.

# %%
pub = {}
if "ninco" in published:
    try:
        pub["ninco"] = study.ninco_avg()
        pub["ninco_scores"] = study.ninco_scores()
    except ExternalUnavailable as exc:
        display(plots.unavailable_note(exc, "The NINCO panel"))
if "cood" in published:
    try:
        pub["cood"] = study.cood_avg()
    except ExternalUnavailable as exc:
        display(plots.unavailable_note(exc, "The C-OOD panel"))

# %% [markdown]
# ### Every NINCO score: which score ranks which model how
#
# NINCO scores every model with twelve post-hoc scores (the zero-shot CLIPs with two of their
# own). The table gives each model's mean AUROC over the 64 OOD classes per score (in %), its
# best score, and per score how often it is a model's best and whether it orders the models
# as MSP does (Spearman's rank correlation over the models).

# %%
if "ninco_scores" in pub:
    wide = pub["ninco_scores"]
    ranks = study.score_ranks(wide)
    shown = wide.set_index(["checkpoint", "group"]).drop(columns=["best score"])
    not_scored = "NINCO does not report this score for this model"
    display(readable.table(
        wide.assign(group=lambda d: d["group"].map(group_label)),
        {"checkpoint": "Checkpoint", "group": "Group",
         "id_acc": Column("ImageNet accuracy (%)", "percent", missing=not_scored),
         **{c: Column(f"{c} (%)", "percent", missing=not_scored) for c in shown.columns
            if c != "id_acc"},
         "best score": "Best score"},
        caption="NINCO: each model's mean AUROC over the OOD classes, per score",
        download="ninco-scores"))
    display(readable.table(
        ranks, {"score": "Score", "models": ("Models", "count"),
                "mean AUROC": ("Mean AUROC", "percent"), "best for": ("Best for", "count"),
                "rank correlation with MSP": Column(
                    "Rank correlation with MSP", "ratio",
                    missing="fewer than three models have both scores")},
        caption="Per NINCO score: how often it is a model's best, and whether it orders the "
                "models as MSP does."))
    top = ranks.iloc[0]
    msp = ranks.set_index("score").loc["MSP"] if "MSP" in set(ranks["score"]) else None
    display(Markdown(
        f"**Finding (NINCO, every score).** `{top.score}` has the highest mean AUROC "
        f"({100 * top['mean AUROC']:.1f}%) over its {int(top.models)} models and is the best "
        f"score of {int(top['best for'])} of {len(wide)}"
        + (f"; MSP, the paper's score for ImageNet models, averages "
           f"{100 * msp['mean AUROC']:.1f}% and is the best score of {int(msp['best for'])}"
           if msp is not None else "")
        + ". The scores do not rank the models alike: their rank correlation with MSP ranges "
        f"from {ranks['rank correlation with MSP'].min():+.2f} to "
        f"{ranks.loc[ranks.score != 'MSP', 'rank correlation with MSP'].max():+.2f}, so which "
        "model detects best depends on the score."))

# %%
if "ninco" in pub:
    nin = pub["ninco"]
    display(charts.versus_accuracy(nin, "id_acc", "auroc", x_title="ImageNet accuracy (%)",
                                   y_title="mean AUROC over NINCO's OOD classes",
                                   title="NINCO: detection against ImageNet accuracy (MCM for "
                                         "zero-shot CLIPs, MSP otherwise)",
                                   tooltip_extra=["score", "source"]))
    nin_j = study.assess_ood_claims(nin, f"{claims.PUBLISHED} (NINCO)", n_boot=n_boot,
                                    seed=seed, file="j-cb/NINCO/model_outputs/df.pkl")
    verdicts += nin_j
    ft = study.fine_tuning_pairs(nin, "auroc")
    zs = nin[nin.group == CLIP_ZEROSHOT]
    display(Markdown(
        f"**Finding (NINCO).** The {len(zs)} zero-shot CLIPs reach a mean AUROC of "
        f"{zs.auroc.mean():.3f} (MCM), against {nin[nin.group == 'standard'].auroc.mean():.3f} "
        f"for the {int((nin.group == 'standard').sum())} standard ImageNet models (MSP); "
        + (f"fine-tuning OpenAI's ViT-B/16 moves it from {ft.before.iloc[0]:.3f} to "
           + ", ".join(f"{a:.3f} ({m})" for m, a in zip(ft.model_after, ft.after)) + ". "
           if len(ft) else "")
        + "With two zero-shot CLIPs and two direct fine-tunes, NINCO has no line at equal "
        "accuracy to compare against: " + "; ".join(
            f"*{j.claim.text}*: {j.reason}" for j in nin_j if j.verdict == claims.NOT_TESTABLE
            and j.claim.claim_id in ("ood-ft-worse", "ood-2stage")) + "."))

# %% [markdown]
# ### C-OOD: fine-tuned CLIPs against the zero-shot CLIPs' line
#
# C-OOD's fine-tuned CLIP rows report a mean confidence of about 0.002 on ImageNet val at
# about 80% accuracy: the score C-OOD recorded for them is not a softmax at temperature 1
# (near-uniform, as if the logits were scaled down by a large factor). AUROC depends only on
# how a score orders the images, but a softmax at another temperature orders them differently
# from MSP at T = 1 (at a very high temperature it approaches an ordering by the gap between
# the top logit and the mean logit). So their AUROC is that of another score than the one the
# zero-shot CLIPs and every ImageNet model are ranked by, and the comparison below carries
# that caveat; the calibration chapter leaves these rows out altogether.

# %%
if "cood" in pub:
    cood = pub["cood"]
    display(charts.versus_accuracy(cood, "id_acc", "auroc", x_title="ImageNet accuracy (%)",
                                   y_title="mean OOD AUROC over 11 severities (MSP)",
                                   title="C-OOD: ImageNet models and OpenAI's CLIPs",
                                   tooltip_extra=["name"]))
    note = (f"{int((~cood.softmax_ok & (cood.group != CLIP_ZEROSHOT)).sum())} fine-tuned CLIP "
            "rows whose score is not a softmax at T = 1")
    cood_j = study.assess_ood_claims(cood, f"{claims.PUBLISHED} (C-OOD)", n_boot=n_boot,
                                     seed=seed, file=study.COOD, note=note)
    verdicts += cood_j
    ftw = next(j for j in cood_j if j.claim.claim_id == "ood-ft-worse")
    display(Markdown(
        f"**Finding (C-OOD).** *{ftw.claim.text}*: **{claims.label(ftw.verdict, ftw.unit, ftw.n)}**"
        f" — {ftw.reason}."))

# %% [markdown]
# ## 3. Real models on real data
#
# The live section runs real models when the reader passes real model ids and a `data_root`
# holding ImageNet val and the OOD sets in their published layouts: iNaturalist, SUN, Places
# and Textures as curated by Huang & Li (2021), ImageNet-O, and NINCO's OOD classes (the
# appendix "Datasets on disk" gives each layout).

# %%
display(Markdown(run.real_section()))

# %% [markdown]
# ## The paper's claims, per evidence source
#
# Each claim's test (`clipsafety.studies.ood.CLAIMS`): the table lists them; every comparison
# of training sources or fine-tuning recipes is made at equal ID accuracy, with the one control
# of the book (`summaries.accuracy_controlled_difference`, the line fitted on the comparison
# group).

# %%
display(readable.table(pd.DataFrame([{"claim": c.text, "test": c.test}
                                     for c in study.CLAIMS.values()]),
                       {"claim": "Claim", "test": "Test"}, caption="The claims and their tests."))

# %%
from clipsafety import pages  # noqa: E402

pages.end_chapter("ood", verdicts, averages=avg if live_ok else None,
                  ninco=pub.get("ninco"), ninco_scores=pub.get("ninco_scores"))
