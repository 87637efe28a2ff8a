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
# # Calibration (paper section 6)
#
# A classifier is **calibrated** when its confidence matches its accuracy: of the images it
# labels with 80% confidence, 80% are right. Earlier work reported zero-shot CLIP to be well
# calibrated. Tu, Deng & Gedeon report that CLIP is *not consistently* better calibrated than
# ImageNet models, that its training distribution and the quantity of training data drive its
# calibration, and that after temperature scaling on ImageNet, CLIP models follow their own
# trend and stay reasonably calibrated under distribution shift (Tu et al., ICML 2024, found
# that the temperature transfers across shifts).
#
# :::{glue:md} summary
# :format: myst
# :::
#
# **Method.** For every model and test condition (the ID test set and every shift): top-label
# **ECE** (15 equal-width bins), **adaptive ECE** (15 equal-mass bins), **NLL** and **Brier**,
# on the softmax over the condition's label subset. Each model gets one **temperature** `T`,
# fitted (minimum NLL) on a stratified, seeded half of the ID set; ID metrics are reported on
# the other half, and the same `T` is applied unchanged to every shift. As a yardstick, each
# condition also gets its own *oracle* temperature, fitted on the very rows it is reported on.
# Groups are compared with percentile bootstrap intervals over models.

# %% tags=["parameters"]
models: str | list = "zoo"  # model ids, or a catalog name: zoo (synthetic world) or real
id_dataset = ""  # empty = synth:id-test for zoo models, imagenet:val for real models
shifts: str | list = ""  # empty = every shift of the registry for the run's kind (8 synthetic, 5 real)
data_root = ""  # folder holding real datasets (imagenet/val, imagenet-r, ...); empty = none
store = ""  # prediction store; empty = the default location
device = "auto"
batch_size = 256
templates: str | list = "openai"  # zero-shot templates for CLIP heads: openai (80), simple (7), single
seed = 0  # seed of the ID split and of the bootstrap
n_boot = 1000  # bootstrap resamples for intervals
fit_fraction = 0.5  # share of each ID class the temperature is fitted on
n_bins = 15  # bins of ECE, adaptive ECE and the reliability diagrams
reliability_models: str | list = ""  # models whose reliability diagrams are drawn; empty = the most accurate of each group
reference_group = "standard"  # the ImageNet group CLIP is compared with
published = True  # show the published evidence (C-OOD confidence gaps, ImageNet-X confidences, LeVine et al.'s ECEs)

# %%
import pandas as pd
from clipsafety import charts, claims, datasets, evidence, plots, readable, summaries, synth
from clipsafety.external import ExternalUnavailable
from clipsafety.groups import CLIP_ZEROSHOT, group_label
from clipsafety.readable import Column
from clipsafety.studies import calibration as study
from IPython.display import Markdown, display

plots.setup()
run = evidence.chapter_run("calibration", models, zoo_dataset="synth:id-test",
                           real_dataset="imagenet:val", dataset=id_dataset, data_root=data_root,
                           store=store, device=device, batch_size=batch_size,
                           templates=templates,
                           needs="ImageNet val, V2, R, A, Sketch and ObjectNet")
live_source, id_set = run.live_source, run.dataset
if shifts:
    shift_list = [shifts] if isinstance(shifts, str) else list(shifts)
elif run.real:
    shift_list = datasets.list_datasets(include_synth=False, kind="shift")
else:
    shift_list = [f"synth:{s}" for s in synth.eval_sets()
                  if datasets.dataset_info(f"synth:{s}").kind == "shift"]
conditions = [id_set, *shift_list]
verdicts = run.not_run_rows(study.CLAIMS)  # one row per (claim, evidence source)
display(Markdown(
    f"This run: **{len(run.models)} models** ({run.kind}), ID set `{id_set}` and "
    f"{len(shift_list)} shifts ({', '.join(f'`{s}`' for s in shift_list)}); temperature fitted "
    f"on {fit_fraction:.0%} of each ID class (seed {seed}), {n_bins} bins, {n_boot} bootstrap "
    "resamples."))

# %% [markdown]
# ## 1. Live evidence: the models of this run
#
# Predictions come from the prediction store: each model is loaded once and asked for every
# condition; the store answers what it holds and inference runs only for what is missing.
# With the default parameters these are the zoo's tiny models on the synthetic world's ID test
# set and its eight shifts; with real model ids and a `data_root`, ImageNet val and its shifts.

# %%
live_ok = run.live_ok
table = pd.DataFrame()
if live_ok:
    records = study.collect_sets(run, conditions)
    table = study.calibration_table(records, id_set, frac=fit_fraction, seed=seed,
                                    n_bins=n_bins)
    long = study.calibration_long(table)
    display(readable.table(study.model_counts(table).rename(index=group_label),
                           {"group": "Group", "models": ("Models", "count")},
                           caption=f"Models per group ({live_source})."))
else:
    display(Markdown(run.skipped_note(
        "ImageNet val under `/data/imagenet/val` and its shifts under `/data/imagenetv2-"
        "matched-frequency-format-val`, `/data/imagenet-r`, `/data/imagenet-a`, "
        "`/data/imagenet-sketch`, `/data/objectnet-1.0`")))

# %% [markdown]
# Mean ECE and NLL per group and condition, before scaling and with the ID temperature
# (95% bootstrap intervals over models in the full table below the chart).

# %%
group_means = pd.DataFrame()
if live_ok:
    group_means = summaries.group_summary(long, "value", by=("dataset", "metric", "scaling"),
                                          n_boot=n_boot, seed=seed)
    wide = study.group_means_wide(group_means).rename(index=group_label, level="group")
    wide.columns = [f"{m} {sc}" for m, sc in wide.columns]
    scaled = {"before": "before scaling", "after": "with the ID temperature"}
    display(readable.table(
        wide, {"dataset": "Test condition", "group": "Group",
               **{c: (f"Mean ECE {scaled[c.split()[1]]} (%)", "percent", 2)
                  for c in wide.columns if c.startswith("ece ")},
               **{c: (f"Mean NLL {scaled[c.split()[1]]}", "number")
                  for c in wide.columns if c.startswith("nll ")}},
        caption="Mean ECE and NLL per test condition and group, before scaling and with each "
                "model's ID temperature.", download="calibration-group-means"))

# %% [markdown]
# ECE against accuracy, one panel per test condition, **before** temperature scaling. Zero-shot
# CLIP models are circled; click a group in the legend to highlight it.

# %%
titles = {d: f"{d}{' (ID, eval half)' if d == id_set else ''}" for d in conditions}
if live_ok:
    display(charts.scatter_panels(table, "accuracy", "ece_before", "dataset", conditions,
                                  titles=titles, x_title="accuracy (%)",
                                  y_title="ECE before scaling", tooltip_extra=["T_id"],
                                  title="ECE before temperature scaling"))

# %% [markdown]
# The same panels **after** scaling with each model's ID temperature (the shifts never see
# their own labels).

# %%
if live_ok:
    display(charts.scatter_panels(table, "accuracy", "ece_after", "dataset", conditions,
                                  titles=titles, x_title="accuracy (%)",
                                  y_title="ECE with the ID temperature",
                                  tooltip_extra=["T_id", "T_oracle"],
                                  title="ECE after ID temperature scaling"))

# %% [markdown]
# How much of the possible gain the ID temperature gets: per model and shift, the ECE with the
# ID temperature minus the ECE with the shift's own (oracle) temperature. Near zero: the
# temperature transfers. (The oracle minimises NLL, not ECE, so the difference can be negative.)

# %%
if live_ok:
    excess = study.excess_ece(table)
    display(charts.points_by_category(excess, "dataset", "excess_ece", "model",
                                      highlight=list(excess.loc[excess.group == CLIP_ZEROSHOT,
                                                                "model"]),
                                      x_title="ECE (ID temperature) - ECE (oracle temperature)",
                                      title="does the ID temperature transfer?"))

# %% [markdown]
# Reliability diagrams on the ID evaluation half, before and after scaling: accuracy per
# confidence bin (the bins of the ECE), the dashed diagonal is perfect calibration. The models
# are a parameter (`reliability_models`); by default the most accurate model of each group.

# %%
rel_models = []
if live_ok:
    rel_models = study.reliability_model_ids(table, reliability_models, list(records[id_set]))
    rel = study.reliability_table(records[id_set], table, rel_models, frac=fit_fraction,
                                  seed=seed, n_bins=n_bins)
    display(charts.reliability_diagram(rel, series="reading", panel="panel",
                                       title=f"reliability on {id_set} (evaluation half)"))

# %% [markdown]
# **Findings.** Computed from the table above: zero-shot CLIP against the reference group per
# condition, and what the ID temperature does under shift.

# %%
if live_ok:
    lines = [f"- `{r.dataset}`: zero-shot CLIP ECE {r.clip_ece_before * 100:.1f} -> "
             f"{r.clip_ece_after * 100:.1f} points (NLL {r.clip_nll_before:.3f} -> "
             f"{r.clip_nll_after:.3f}); {group_label(reference_group)} "
             f"{r.ref_ece_before * 100:.1f} -> {r.ref_ece_after * 100:.1f}."
             for r in study.condition_summary(group_means, conditions,
                                              reference_group).itertuples()]
    clip_T = study.id_temperatures(table, CLIP_ZEROSHOT)
    ref_T = study.id_temperatures(table, reference_group)
    display(Markdown(
        f"**Finding ({live_source}).** Mean ECE before -> after the ID temperature:\n\n"
        + "\n".join(lines) + "\n\n"
        + (f"The ID temperatures of the {len(clip_T)} zero-shot CLIPs have median "
           f"{clip_T.median():.2f} (range {clip_T.min():.2f} to {clip_T.max():.2f}); those of "
           f"the {len(ref_T)} {group_label(reference_group)} models median {ref_T.median():.2f}. "
           if len(clip_T) and len(ref_T) else "")
        + "A temperature below 1 sharpens the softmax (the model was under-confident), above 1 "
        "softens it."))

# %% [markdown]
# **The world's premises.** A world verdict on calibration needs the world's models to be in
# the confidence regime of real ones, and above chance where they are compared. The real
# regime is read from C-OOD (Galil et al.): each ImageNet model's mean confidence on ImageNet
# val minus its accuracy. Below, each group's gap on this run's ID set against that range,
# and the conditions on which the compared groups are at least twice chance.

# %%
cood_cal = pd.DataFrame()
try:
    from clipsafety.published_models import cood_models

    cood_cal = cood_models("softmax")
except ExternalUnavailable as exc:
    display(plots.unavailable_note(exc, "The real confidence range (C-OOD)"))
if live_ok:
    display(readable.table(
        study.confidence_gaps(table).rename(index=group_label),
        {"group": "Group", "models": ("Models", "count"), "accuracy": ("Mean accuracy", "percent"),
         "confidence": ("Mean confidence", "percent"),
         "median_gap": ("Median confidence minus accuracy (points)", "ratio", 1),
         "min_gap": ("Lowest gap (points)", "ratio", 1),
         "max_gap": ("Highest gap (points)", "ratio", 1)},
        caption="Confidence against accuracy on the ID test set, before scaling."))
    chance = study.chance_ok(table, [CLIP_ZEROSHOT, reference_group])
    display(readable.table(
        chance, {"dataset": "Test condition",
                 "chance": Column("Chance", "percent", missing="the number of classes is not "
                                  "recorded"),
                 **{c: Column(f"Mean accuracy, {group_label(c[4:])}", "percent",
                              missing="no model of the group on this condition")
                    for c in chance.columns if c.startswith("acc ")},
                 "ok": "Every group well above chance"},
        caption="Chance per test condition, and the groups' mean accuracy."))
    if not run.real:
        regime = study.regime_premise(table, cood_cal if len(cood_cal) else None,
                                      reference_group)
        display(Markdown("**Premises.** " + "; ".join(p.text() for p in regime) + "."))

# %% [markdown]
# **The claims and their tests** (`clipsafety.studies.calibration.CLAIMS`). Every comparison
# of groups, training sources or quantities is made at equal accuracy with the one control of
# the book (`summaries.accuracy_controlled_difference`, the line fitted on the comparison
# group).

# %%
display(readable.table(pd.DataFrame([{"claim": c.text, "test": c.test}
                                     for c in study.CLAIMS.values()]),
                       {"claim": "Claim", "test": "Test"}, caption="The claims and their tests."))
if live_ok:
    ws = study.world_source_settings() if not run.real else None
    live_rows = study.assess_live_claims(table, live_source, id_set, reference=reference_group,
                                         world=not run.real,
                                         real=cood_cal if len(cood_cal) else None,
                                         settings=ws, n_boot=n_boot, seed=seed)
    if ws is not None:
        display(Markdown("**Built into the synthetic world.** The world's training sources "
                         "differ by construction, read from its configuration:"))
        setting_words = {
            "p_misaligned": "Share of captions that describe another image",
            "p_class_word": "Share of captions that name the class",
            "n_filler": "Filler words per caption",
            "cue_strength": "Chance the object wears its class's colour and pattern",
            "caption_style": "Caption style"}
        display(readable.table(
            ws.assign(setting=lambda d: d["setting"].map(lambda k: setting_words.get(
                k, k.replace("_", " ")))),
            {"setting": "Setting", **{c: c for c in ws.columns if c != "setting"}},
            caption="The world's training sources, from its configuration."))
    verdicts += live_rows
    display(readable.table(claims.claims_table(live_rows),
                           {"claim": "Claim", "label": "Verdict", "evidence": "Evidence"},
                           caption=f"The claims on {live_source}."))

# %% [markdown]
# ## 2. Published evidence
#
# ### ImageNet models: ImageNet-X's per-image confidences
#
# ImageNet-X (Idrissi et al. 2023) publishes, for its base models, the top-1 prediction and its
# softmax probability on every ImageNet val image. Joined with the true labels (the
# `imagenet-x` package), they give each model's top-label ECE and reliability diagram on
# ImageNet val with the book's own metrics. These are ImageNet models only.

# %%
pub_table, pub_bins, coverage = pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
if published:
    try:
        pub_table, pub_bins = study.published_imagenetx_table(n_bins)
        display(readable.table(
            pub_table.assign(group=lambda d: d["group"].map(group_label)),
            {"model": "Model", "description": "Description", "group": "Group",
             "n": ("Images", "count"), "accuracy": ("Accuracy", "percent"),
             "mean_confidence": ("Mean confidence", "percent"), "ece": ("ECE (%)", "percent", 2),
             "adaptive_ece": ("Adaptive ECE (%)", "percent", 2)},
            caption="ImageNet val, from ImageNet-X's published confidences."))
        display(charts.reliability_diagram(pub_bins, series="model",
                                           title="ImageNet val, ImageNet-X's published confidences"))
        display(Markdown("**Finding (published, ImageNet-X).** " + "; ".join(
            f"{r.description}: accuracy {r.accuracy:.1%}, mean confidence "
            f"{r.mean_confidence:.1%}, ECE {r.ece * 100:.2f} points (adaptive "
            f"{r.adaptive_ece * 100:.2f})" for r in pub_table.itertuples()) + "."))
    except ExternalUnavailable as exc:
        display(plots.unavailable_note(exc, "The ImageNet-X confidence panel"))

# %% [markdown]
# ### Zero-shot CLIPs against ImageNet models: C-OOD's confidence gaps
#
# C-OOD publishes for every model its ImageNet accuracy and its mean confidence (maximum
# softmax probability) on ImageNet val. Their difference is a signed **confidence gap**:
# positive when the model is over-confident on average. Its absolute value is a lower bound on
# ECE (ECE averages |accuracy - confidence| within bins; the gap averages before taking the
# absolute value), so a small gap does not prove a model calibrated, but a large one proves it
# miscalibrated. C-OOD's seven fine-tuned CLIP rows report a mean confidence of about 0.002 at
# about 80% accuracy: their score is not a softmax at T = 1, so they are flagged and left out.

# %%
if published and len(cood_cal):
    gap = cood_cal[cood_cal.softmax_ok].rename(columns={"model": "name"}).assign(
        model=lambda t: t["checkpoint"])[["model", "name", "group", "id_acc", "conf_gap"]]
    flagged = cood_cal[~cood_cal.softmax_ok]
    display(charts.versus_accuracy(gap, "id_acc", "conf_gap", x_title="ImageNet accuracy (%)",
                                   y_title="mean confidence - accuracy (points)",
                                   title="C-OOD: confidence gap on ImageNet val, zero-shot "
                                         "CLIPs and ImageNet models", tooltip_extra=["name"]))
    display(charts.versus_accuracy_with_line(
        gap.assign(abs_gap=gap["conf_gap"].abs()), "id_acc", "abs_gap",
        [g for g in gap.group.unique() if g != CLIP_ZEROSHOT], x_title="ImageNet accuracy (%)",
        y_title="|mean confidence - accuracy| (points, a lower bound on ECE)",
        line_label="ImageNet models' line", title="the comparison at equal accuracy: zero-shot "
        "CLIPs against the ImageNet models' line", tooltip_extra=["name"]))
    display(readable.table(flagged, {"checkpoint": "Checkpoint",
                                     "id_acc": ("ImageNet accuracy", "percent"),
                                     "id_avg_conf": ("Mean confidence", "percent", 2)},
                           caption="Fine-tuned rows left out of the comparison."))
    cood_rows = study.assess_cood(cood_cal, f"{claims.PUBLISHED} (C-OOD)", n_boot=n_boot,
                                  seed=seed)
    head = cood_rows[0]
    zs_gap = gap.loc[gap.group == CLIP_ZEROSHOT, "conf_gap"]
    display(Markdown(
        f"**Finding (published, C-OOD).** The {len(zs_gap)} zero-shot CLIPs' gap runs from "
        f"{zs_gap.min():+.1f} to {zs_gap.max():+.1f} points; the other models' median is "
        f"{gap.loc[gap.group != CLIP_ZEROSHOT, 'conf_gap'].median():+.1f}. At equal accuracy, "
        f"zero-shot CLIP's |gap| minus the ImageNet models' line is {head.estimate:+.1f} points "
        f"[{head.lo:+.1f}, {head.hi:+.1f}]: *{head.claim.text}* is "
        f"**{claims.label(head.verdict, head.unit, head.n)}** on this evidence. It is one "
        f"condition (ImageNet val, no shifts) and a comparison of lower bounds on ECE "
        f"(calibration in the large), not of ECEs; {len(flagged)} fine-tuned rows left out."))

# %% [markdown]
# ### Zero-shot CLIPs: LeVine et al.'s per-prompt ECEs
#
# LeVine et al. ("Enabling calibration in the zero-shot inference of large vision-language
# models", `Pikus16/CLIP_Calibration`) publish the ECE of 13 open_clip zero-shot models on
# CIFAR-10/100, Food-101 and SUN397, one value per prompt template. Their ECE is computed by
# their own code; no per-sample confidences are published, so it cannot be recomputed here.

# %%
prompt = pd.DataFrame()
if published:
    try:
        prompt = study.published_prompt_eces()
        display(charts.points_by_category(
            study.prompt_ece_means(prompt), "dataset", "ece", "model",
            x_title="ECE, mean over prompts", title="published zero-shot CLIP ECE (LeVine et al.)"))
        span = study.prompt_ece_span(prompt)
        by_src = study.prompt_ece_by_source(prompt)
        display(Markdown(
            f"**Finding (published, LeVine et al.).** Across prompts, one model's ECE spans up "
            f"to {span['span'].max() * 100:.1f} points ({span.loc[span['span'].idxmax(), 'model']}"
            f" on {span.loc[span['span'].idxmax(), 'dataset']}). Mean ECE by training source: "
            + ", ".join(f"{s} {v * 100:.1f}" for s, v in by_src.items()) + " points."))
    except ExternalUnavailable as exc:
        display(plots.unavailable_note(exc, "The LeVine et al. panel"))

# %% [markdown]
# ### What no published data can test
#
# Read from the external registry (`clipsafety.external`): which published files hold
# calibration evidence, for which models and sets.

# %%
if published:
    coverage = study.published_coverage()
    display(readable.table(coverage, {"file": "File", "registered": "Registered",
                                      "models": "Models", "clip_models": ("CLIP models", "count"),
                                      "datasets": "Data sets", "per_sample": "Per image"},
                           caption="Published files with calibration evidence."))
    untestable, missing = study.published_gaps(coverage)
    display(Markdown(
        f"**What no published data can test.** {untestable[0].upper() + untestable[1:]}. No "
        "repository we found publishes per-sample CLIP confidences on ImageNet or its shifts, so "
        "temperature scaling, its transfer across shifts and CLIP's trend after scaling cannot "
        "be tested on published data; C-OOD's confidence gaps test CLIP against ImageNet models "
        "on ImageNet val only, and LeVine et al.'s ECEs come without accuracies, so no "
        "comparison at equal accuracy can be made on them."
        + (f" Not available here (not in the mirror, so not registered): {', '.join(missing)}."
           if missing else "")))
verdicts += study.published_claims(claims.PUBLISHED, cood_cal if published else None,
                                   prompt if published else None, n_boot=n_boot, seed=seed)

# %% [markdown]
# ## 3. Real models on real data
#
# The live section runs real models when the reader passes real model ids and a `data_root`
# holding ImageNet val and the shifts in their documented layouts (appendix "Datasets on
# disk"). ImageNet-R and -A are scored over their 200 classes and ObjectNet over its 113
# (each the max of its ImageNet columns), for the softmax and accuracy alike.

# %%
display(Markdown(run.real_section()))

# %% [markdown]
# ## The paper's claims, per evidence source

# %%
from clipsafety import pages  # noqa: E402

pages.end_chapter("calibration", verdicts, table=table if live_ok else None,
                  group_means=group_means if live_ok else None,
                  published_imagenetx=pub_table, published_coverage=coverage,
                  cood_gaps=cood_cal[["checkpoint", "group", "id_acc", "id_avg_conf", "conf_gap",
                                      "softmax_ok"]] if len(cood_cal) else None)
