"""Data curation and calibration: tiny CLIPs trained on one raw pool under different curation.

A pool of raw image-caption pairs (:func:`clipsafety.synth.datasets.raw_pool`: the raw pool's
configuration, 20% exact duplicates, noisy captions) is curated by each filter of
:mod:`clipsafety.synth.curation` (alignment-score filtering at several keep fractions, class
balancing, de-duplication, k-centre diversity selection, a random subset), every selection
is trimmed to each training size (:func:`~clipsafety.synth.curation.match_size`), and one tiny
CLIP is trained contrastively on each, seeded, for the same number of samples seen. Each is
evaluated zero-shot on seeded subsets of the ID test set and the shifts: accuracy, ECE and
NLL before and after temperature scaling (T fitted on a stratified half of the ID subset and
applied unchanged to the shifts).

The question is whether curation predicts calibration *beyond* accuracy: per (metric,
scaling, condition), the models' calibration values are regressed on their accuracy (ordinary
least squares, :func:`accuracy_residuals`) and each curation's mean residual gets a
percentile bootstrap interval over evaluation images (every resample recomputes every
model's accuracy and calibration, refits the line and the residuals). The interval says what
the finite test sets allow, not what other training seeds would do.
"""

from __future__ import annotations

import inspect
import time

import numpy as np
import pandas as pd

from clipsafety import claims, metrics
from clipsafety import rules as _R
from clipsafety.rules import Exercise
from clipsafety.synth.world import CATEGORIES

CURATIONS = ("random", "dedup", "balanced", "alignment", "diversity")
ARCHS = {"convnext": "synth_convnext_xs", "resnet": "synth_resnet_xs", "vit": "synth_vit_xs"}
#: AdamW learning rate at :data:`BATCH` 64: the zoo's CLIP sweep (batch 32-256, lr 5e-4 to
#: 1e-2) found batch 64 at lr 1e-3 best for every family at equal samples seen
LR = {"convnext": 1e-3, "resnet": 1e-3, "vit": 1e-3}
BUDGET_RANGE = (256, 500_000)
BATCH = 64  # contrastive batch: small, so that short budgets still take many steps
CHANCE = 1 / len(CATEGORIES)

def _ext(cid, text, test):
    return claims.Claim(
        cid, text, "", kind=claims.EXTENSION, direction="differs",
        compares="CLIPs of one architecture trained on differently curated subsets of one raw pool",
        conditioned_on="accuracy (each model's residual on the accuracy line of all curations)",
        test=test + "; per curation the mean residual with a percentile bootstrap interval over "
        "the evaluation images at the Bonferroni level over the curations compared; reproduced "
        "when at least one curation's interval excludes zero (two-sided: equality is never shown)",
        home="curation")


#: the book's hypotheses for the open question on data curation (extensions)
CLAIMS = {
    "cur-ece": _ext("cur-ece", "The training data's curation affects CLIP's calibration beyond "
                    "what accuracy explains (ID ECE before scaling)", "ID ECE before scaling"),
    "cur-ece-shift": _ext("cur-ece-shift", "Curation affects calibration beyond accuracy under "
                          "distribution shift (mean shift ECE before scaling)",
                          "mean ECE over the shifts before scaling"),
    "cur-nll": _ext("cur-nll", "Curation affects NLL beyond accuracy (ID, before scaling)",
                    "ID NLL before scaling"),
    "cur-after-ts": _ext("cur-after-ts", "Curation still affects calibration beyond accuracy "
                         "after temperature scaling (ID ECE with the fitted T)",
                         "ID ECE after the fitted temperature"),
}
#: claim id -> (metric, scaling, condition) of its residual
CLAIM_CELLS = {"cur-ece": ("ece", "before", "id"), "cur-ece-shift": ("ece", "before", "shift"),
               "cur-nll": ("nll", "before", "id"), "cur-after-ts": ("ece", "after", "id")}


def check_curations(curations) -> list[str]:
    items = [curations] if isinstance(curations, str) else list(curations)
    bad = [c for c in items if c not in CURATIONS]
    if bad or not items:
        raise ValueError(f"curations: {bad or 'empty'} unknown; expected a non-empty list of "
                         f"{list(CURATIONS)}")
    return items


def check_budget(budget) -> int:
    """``budget`` if it is an integer in :data:`BUDGET_RANGE`, else a ``ValueError`` saying so."""
    from clipsafety.infer import check_positive_int

    lo, hi = BUDGET_RANGE
    return check_positive_int("budget", budget, lo, allow_none=False, maximum=hi,
                              what="samples seen per CLIP; the chapter's cost grows with it")


# ----------------------------------------------------------------------------- pure pieces
def accuracy_residuals(acc, value) -> np.ndarray:
    """Residuals of ``value`` after an ordinary least-squares line on ``acc`` (closed form;
    equal to ``value - np.polyval(np.polyfit(acc, value, 1), acc)``)."""
    x = np.asarray(acc, np.float64)
    y = np.asarray(value, np.float64)
    xm, ym = x.mean(), y.mean()
    sxx = np.sum((x - xm) ** 2)
    slope = np.sum((x - xm) * (y - ym)) / sxx if sxx > 0 else 0.0
    return y - (ym + slope * (x - xm))


def calibration_of(logits: np.ndarray, y: np.ndarray, subset, T: float) -> dict:
    """accuracy, ECE and NLL before scaling and with temperature ``T`` (15 bins)."""
    return {"acc": metrics.accuracy(logits, y, subset),
            "ece_before": metrics.ece_from_logits(logits, y, subset),
            "ece_after": metrics.ece_from_logits(logits, y, subset, temperature=T),
            "nll_before": metrics.nll(logits, y, subset),
            "nll_after": metrics.nll(logits, y, subset, temperature=T)}


# ----------------------------------------------------------------------------- selections
def reference_features(model: str, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Normalised image embeddings of a zoo CLIP (the diversity filter's feature space)."""
    import torch

    from clipsafety.zoo import _read, array_transform, build_clip

    state, meta, _ = _read(model.removeprefix("zoo:"))
    clip = build_clip(meta["clip_config"])
    clip.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
    clip.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            out.append(torch.nn.functional.normalize(
                clip.encode_image(array_transform(images[i:i + batch_size])), dim=-1).numpy())
    return np.concatenate(out)


def selections(pool, curations, keep_fractions, sizes, seed: int, reference: str) -> dict:
    """``{(curation, size): Curated}``: every curation's selection trimmed to every size
    (alignment filtering once per keep fraction, named ``alignment-<pct>``; ``balanced``
    re-balanced at ``size // 10`` per class, the others trimmed at random). Raises a
    ValueError naming the curation when a selection is smaller than a requested size."""
    from clipsafety.synth import curation as C
    from clipsafety.zoo import alignment_scorer

    base = {}
    for c in check_curations(curations):
        if c == "random":
            base[c] = C.random_subset(pool, max(sizes), seed=seed)
        elif c == "dedup":
            base[c] = C.deduplicate(pool)
        elif c == "balanced":
            base[c] = C.balance_classes(pool, by="caption", seed=seed)
        elif c == "alignment":
            scores = C.alignment_scores(pool, alignment_scorer(reference), progress=False)
            for f in keep_fractions:
                base[f"alignment-{round(f * 100)}"] = C.filter_alignment(pool, scores=scores,
                                                                         keep_fraction=f,
                                                                         model=reference)
        elif c == "diversity":
            feats = reference_features(reference, pool.images())
            base[c] = C.diversity_select(pool, feats, max(sizes), seed=seed)
    out = {}
    for name, cur in base.items():
        for s in sorted(sizes):
            if len(cur) < s:
                raise ValueError(f"curation {name!r} keeps {len(cur)} of the pool's {pool.n} rows, "
                                 f"fewer than the training size {s}; use smaller sizes, a larger "
                                 "pool_size or a larger keep fraction")
            if name == "balanced":  # trimmed class by class, so it stays balanced at every size
                out[(name, s)] = C.balance_classes(pool, per_class=s // len(CATEGORIES),
                                                   by="caption", seed=seed, start=cur)
            else:
                out[(name, s)] = C.match_size(cur, s, seed=seed, pool=pool)
    return out


# ----------------------------------------------------------------------------- training
def _train_score_job(job: tuple) -> tuple:
    """Train one seeded CLIP on a curated selection and score it zero-shot on every evaluation
    set (one worker task; single-threaded, so its weights do not depend on how many run at
    once). ``job = (key, images, captions, arch, budget, seed, {set: images})``; returns
    ``(key, {set: logits}, seconds)``."""
    import torch

    from clipsafety.synth import VOCAB, WordTokenizer
    from clipsafety.zoo import array_transform, zero_shot_head
    from clipsafety.zoo.arch import clip_config
    from clipsafety.zoo.train import build_clip_seeded, train_clip

    key, imgs, caps, arch, budget, seed, eval_images = job
    t0 = time.time()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        clip = build_clip_seeded(clip_config(ARCHS[arch], vocab_size=len(VOCAB)), seed)
        train_clip(clip, imgs, WordTokenizer(16)(caps), budget, seed, lr=LR[arch], batch=BATCH,
                   progress=False)
        clip.eval()
        W = zero_shot_head(clip, "default")
        scale = float(clip.logit_scale.detach().exp())
        logits = {}
        with torch.no_grad():
            for name, x in eval_images.items():
                f = torch.nn.functional.normalize(clip.visual(array_transform(x)), dim=-1)
                logits[name] = (scale * f @ W).numpy().astype(np.float64)
    finally:
        torch.set_num_threads(threads)
    return key, logits, time.time() - t0


def default_jobs() -> int:
    """Worker processes for :func:`train_and_score`: one per core, at most 4."""
    import os

    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1))


def train_and_score(pool, sel: dict, budget: int, arch: str, sets, seed: int,
                    fit_fraction: float = 0.5, jobs: int | None = None,
                    progress: bool = True) -> tuple[dict, dict]:
    """Train one CLIP per selection and score it zero-shot. Returns ``(preds, seconds)``:
    ``preds[(curation, size)] = {"T": T, set name: (logits, targets, label subset)}`` with the ID
    set split into ``"<id>#fit"`` and ``"<id>#eval"``.

    The CLIPs train in ``jobs`` worker processes (default :func:`default_jobs`; ``1`` trains
    in this process), each single-threaded and seeded by its selection's position in the
    sorted keys (``seed + k``), so the results are the same for any ``jobs``."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    from clipsafety.infer import check_positive_int
    from clipsafety.synth.curation import curated_arrays

    check_budget(budget)
    if arch not in ARCHS:
        raise ValueError(f"arch={arch!r}; expected one of {list(ARCHS)}")
    jobs = default_jobs() if jobs is None else check_positive_int("jobs", jobs, 1,
                                                                  allow_none=False, maximum=64)
    id_name = sets.id_set
    names = [id_name, *sets.shifts]
    eval_images = {name: sets.data[name][0] for name in names}
    work = []
    for k, (key, cur) in enumerate(sorted(sel.items())):
        imgs, _, caps = curated_arrays(cur, pool)
        work.append((key, imgs, list(caps), arch, budget, seed + k, eval_images))
    results = {}
    bar = tqdm(total=len(work), desc=f"training {len(work)} CLIPs on {jobs} worker(s)",
               disable=not progress, leave=False)
    if jobs == 1:
        for job in work:
            key, logits, secs = _train_score_job(job)
            results[key] = (logits, secs)
            bar.update()
    else:
        import multiprocessing as mp

        from clipsafety.zoo import zoo_dir
        from clipsafety.zoo.train import _worker_init

        with ProcessPoolExecutor(max_workers=min(jobs, len(work)), mp_context=mp.get_context("spawn"),
                                 initializer=_worker_init, initargs=(1, str(zoo_dir()))) as ex:
            for fut in as_completed([ex.submit(_train_score_job, job) for job in work]):
                key, logits, secs = fut.result()
                results[key] = (logits, secs)
                bar.update()
    bar.close()
    fit, ev = metrics.stratified_split(sets.data[id_name][1], frac=fit_fraction, seed=seed)
    preds, seconds = {}, {}
    for key, _cur in sorted(sel.items()):
        logits, secs = results[key]
        out = {name: (logits[name], sets.data[name][1], sets.data[name][2]) for name in names}
        L, y, _ = out.pop(id_name)
        out[f"{id_name}#fit"] = (L[fit], y[fit], None)
        out[f"{id_name}#eval"] = (L[ev], y[ev], None)
        out["T"] = metrics.fit_temperature(L[fit], y[fit])
        preds[key] = out
        seconds[key] = secs
    return preds, seconds


def row_stats(preds: dict, sets) -> dict:
    """Per (model, set): correct, and confidence and log p(true) before and after the model's
    ID temperature (:func:`clipsafety.metrics.row_stats`), computed once so that bootstrap
    resamples only re-index them."""
    out = {}
    names = [f"{sets.id_set}#eval", *sets.shifts]
    for key, p in preds.items():
        for n in names:
            L, y, sub = p[n]
            b = metrics.row_stats(L, y, sub, 1.0, need=("confidence", "pred", "log_p_true"))
            a = metrics.row_stats(L, y, sub, p["T"], need=("confidence", "pred", "log_p_true"))
            out[key, n] = {"correct": b["correct"], "conf_before": b["confidence"],
                           "conf_after": a["confidence"], "lpt_before": b["log_p_true"],
                           "lpt_after": a["log_p_true"]}
    return out


def _cal(st: dict, rows=None) -> dict:
    if rows is not None:
        st = {k: v[rows] for k, v in st.items()}
    return {"acc": float(st["correct"].mean()),
            "conf_gap": 100.0 * float(st["conf_before"].mean() - st["correct"].mean()),
            "ece_before": metrics.ece(st["conf_before"], st["correct"]),
            "ece_after": metrics.ece(st["conf_after"], st["correct"]),
            "nll_before": float(-st["lpt_before"].mean()),
            "nll_after": float(-st["lpt_after"].mean())}


def model_table(preds: dict, sets, idx=None, stats: dict | None = None) -> pd.DataFrame:
    """One row per (curation, size, condition in id/shift): accuracy, ECE and NLL before and
    after the ID temperature (shift: mean over the shifts); the same values as
    :func:`calibration_of` on the logits. ``idx``: a bootstrap draw ``{set name: row
    indices}``; ``stats``: :func:`row_stats` of ``preds`` (computed when not given)."""
    stats = row_stats(preds, sets) if stats is None else stats
    rows = []
    id_eval = f"{sets.id_set}#eval"
    for (c, s), p in preds.items():
        for cond, names in (("id", [id_eval]), ("shift", list(sets.shifts))):
            vals = [_cal(stats[(c, s), n], None if idx is None else idx[n]) for n in names]
            row = {k: float(np.mean([v[k] for v in vals])) for k in vals[0]}
            rows.append({"curation": c, "size": s, "condition": cond, "T": p["T"], **row})
    return pd.DataFrame(rows)


def residual_table(models: pd.DataFrame) -> pd.DataFrame:
    """Per (metric, scaling, condition): each model's residual on accuracy (same condition)."""
    out = []
    for cond, part in models.groupby("condition", sort=False):
        for m in ("ece", "nll"):
            for sc in ("before", "after"):
                r = accuracy_residuals(part["acc"], part[f"{m}_{sc}"])
                out.append(part[["curation", "size"]].assign(metric=m, scaling=sc, condition=cond,
                                                             residual=r))
    return pd.concat(out, ignore_index=True)


def curation_residuals(preds: dict, sets, n_boot: int = 200, seed: int = 0,
                       level: float = 0.95) -> pd.DataFrame:
    """Mean residual per curation and (metric, scaling, condition), with a percentile bootstrap
    interval over evaluation images at ``level`` (the module docstring)."""
    keys = ["metric", "scaling", "condition", "curation"]
    stats = row_stats(preds, sets)
    point = residual_table(model_table(preds, sets, stats=stats)).groupby(
        keys, sort=False)["residual"].mean()
    rng = np.random.default_rng(seed)
    any_p = next(iter(preds.values()))
    sizes = {n: len(any_p[n][1]) for n in [f"{sets.id_set}#eval", *sets.shifts]}
    boots = []
    for _ in range(n_boot):
        idx = {n: rng.integers(0, k, k) for n, k in sizes.items()}
        boots.append(residual_table(model_table(preds, sets, idx, stats)).groupby(
            keys, sort=False)["residual"].mean())
    B = pd.concat(boots, axis=1)
    tail = (1 - level) / 2
    return pd.DataFrame({"residual": point, "lo": B.quantile(tail, axis=1),
                         "hi": B.quantile(1 - tail, axis=1)}).reset_index()


def above_chance(models: pd.DataFrame, factor: float = 2.0) -> pd.Series:
    """Per (curation, size): whether the model's ID accuracy is at least ``factor`` times
    chance (a model near chance predicts near-uniformly: its calibration says nothing about its
    data)."""
    idt = models[models.condition == "id"].set_index(["curation", "size"])
    return idt["acc"] >= factor * CHANCE


def premises_of(models: pd.DataFrame, regime: list | None = None) -> list:
    """The premises of the world's curation verdicts: every model at twice chance on the ID
    set (:func:`above_chance`), and the world's confidence regime (``regime``:
    :func:`clipsafety.premises.confidence_regime` of these models' gaps)."""
    ok = above_chance(models)
    idt = models[models.condition == "id"]
    low = idt.loc[idt["acc"].idxmin()] if len(idt) else None
    chance = claims.Premise(
        "above chance", bool(ok.all()),
        f"{int(ok.sum())} of {len(ok)} models at twice chance; lowest ID accuracy "
        + (f"{100 * low['acc']:.1f}% ({low['curation']}, {low['size']})" if low is not None else "–"),
        f"every model at least {200 * CHANCE:.0f}% (twice chance)")
    return [chance, *(regime or [])]


def assess(res: pd.DataFrame, source: str, *, level: float, correction: str,
           n_models: int, premises: list | None = None) -> list:
    """Per claim (:data:`CLAIM_CELLS`), the count rule of :func:`clipsafety.claims.count` over
    the curations (two-sided, at least one): ``res`` from :func:`curation_residuals` at
    ``level`` (Bonferroni over the curations, named in ``correction``). ``premises``
    (:func:`premises_of`) gate each verdict; the unit is one training run per model."""
    rows = []
    for cid, (m, sc, cond) in CLAIM_CELLS.items():
        part = res[(res.metric == m) & (res.scaling == sc) & (res.condition == cond)]
        if part.empty or part["lo"].isna().all():
            rows.append(claims.not_testable(CLAIMS[cid], source, "no residuals computed"))
            continue
        items = part.rename(columns={"curation": "item", "residual": "estimate"})
        what = "NLL" if m == "nll" else "ECE (points)"
        k = 100.0 if m == "ece" else 1.0
        items = items.assign(estimate=k * items["estimate"], lo=k * items["lo"], hi=k * items["hi"])
        j = claims.count(CLAIMS[cid], source, items[["item", "estimate", "lo", "hi"]], 1,
                         effect=f"curations whose mean {what} residual on accuracy differs from "
                         "zero: " + "; ".join(f"{r.item} {r.estimate:+.2f} [{r.lo:+.2f}, "
                                             f"{r.hi:+.2f}]" for r in items.itertuples()),
                         scale=f"of {len(items)} curations", unit=claims.RUNS, n=(n_models,),
                         correction=correction)
        rows.append(claims.gated(j, premises) if premises else j)
    return rows


def published_datacomp() -> pd.DataFrame:
    """open_clip's published zero-shot accuracies of the DataComp / CommonPool filter variants
    (tags starting ``datacomp`` or ``commonpool``)."""
    from clipsafety.published import openclip_results

    oc = openclip_results()
    return oc[oc["tag"].str.startswith(("datacomp", "commonpool"))].reset_index(drop=True)


# ----------------------------------------------------------------------------- tables of the chapter
def selection_summary(pool, sel: dict) -> pd.DataFrame:
    """One row per selection (:func:`selections`), in key order: curation, size, and the
    shares of its rows that are exact duplicates, whose caption names no category, whose
    caption names another category than the label, and of its largest class (the properties
    the filters are meant to change)."""
    from clipsafety.synth import curation as C

    dup = pool.attributes()["duplicate_of"].to_numpy() >= 0
    caption_cls = C.caption_classes(pool.captions())
    return pd.DataFrame([{
        "curation": c, "size": s, "duplicates": float(dup[cur.indices].mean()),
        "caption names no class": float((caption_cls[cur.indices] < 0).mean()),
        "caption class differs from label": float(
            (caption_cls[cur.indices] != pool.targets[cur.indices]).mean()),
        "largest class share": float(
            np.bincount(pool.targets[cur.indices], minlength=len(CATEGORIES)).max() / s)}
        for (c, s), cur in sorted(sel.items())])


def built_in_table(pool) -> pd.DataFrame:
    """What the raw pool holds by construction (read from its configuration and rows): its
    rows, the share of exact duplicates, and the configured shares of misaligned captions and
    of captions naming the class."""
    cfg = pool.cfg.to_dict()
    dup = pool.attributes()["duplicate_of"].to_numpy() >= 0
    return pd.DataFrame([
        {"property": "pool rows", "value": pool.n},
        {"property": "exact duplicates (share of rows)", "value": round(float(dup.mean()), 3)},
        {"property": "p_misaligned (configured)", "value": cfg.get("p_misaligned")},
        {"property": "p_class_word (configured)", "value": cfg.get("p_class_word")},
    ])


def calibration_long(models: pd.DataFrame, metric: str = "ece") -> pd.DataFrame:
    """:func:`model_table` in long form for one metric: curation, size, condition, acc,
    scaling (before / after), value."""
    long = models.melt(id_vars=["curation", "size", "condition", "acc"],
                       value_vars=[f"{metric}_before", f"{metric}_after"], var_name="scaling",
                       value_name="value")
    long["scaling"] = long["scaling"].str.removeprefix(f"{metric}_")
    return long


def size_long(models: pd.DataFrame) -> pd.DataFrame:
    """The ID rows of :func:`model_table` in long form: curation, size, measure (acc,
    ece_before, ece_after), value."""
    return models[models.condition == "id"].melt(id_vars=["curation", "size"],
                                                 value_vars=["acc", "ece_before", "ece_after"],
                                                 var_name="measure", value_name="value")


def residual_cells(res: pd.DataFrame) -> pd.DataFrame:
    """:func:`curation_residuals` with ``cell``: "metric scaling (condition)"."""
    return res.assign(cell=res.metric + " " + res.scaling + " (" + res.condition + ")")


def residual_wide(res: pd.DataFrame) -> pd.DataFrame:
    """The mean residuals of :func:`curation_residuals`, one row per curation, one column per
    (metric, scaling, condition)."""
    return res.pivot_table(index="curation", columns=["metric", "scaling", "condition"],
                           values="residual", sort=False)


def residual_text(res: pd.DataFrame, metric: str, scaling: str, condition: str) -> str:
    """Each curation's mean residual with its interval in one cell of :func:`curation_residuals`,
    as text ("name +r [lo, hi]; ..."), ECE in points (x 100), NLL as it is."""
    part = res[(res.metric == metric) & (res.scaling == scaling) & (res.condition == condition)]
    k = 100 if metric == "ece" else 1
    return "; ".join(f"{r.curation} {r.residual * k:+.2f} [{r.lo * k:+.2f}, {r.hi * k:+.2f}]"
                     for r in part.itertuples())


def mean_temperatures(models: pd.DataFrame) -> pd.Series:
    """The fitted temperature of each model (:func:`model_table`), averaged per curation."""
    return models.drop_duplicates(["curation", "size"]).groupby("curation")["T"].mean()


#: a fitted temperature at or above this sits at :func:`clipsafety.metrics.fit_temperature`'s
#: upper bound (less a margin): the model's predictions are near uniform
T_AT_BOUND = inspect.signature(metrics.fit_temperature).parameters["bounds"].default[1] - 1


def learning_summary(models: pd.DataFrame) -> dict:
    """Whether the CLIPs learned (:func:`model_table`): ``above`` of ``n`` models above chance
    (:func:`above_chance`), the range of ID accuracy (``id_min``, ``id_max``), how many fitted
    temperatures sit at the fit's upper bound (``at_bound``), and ``learned``: every model at
    twice chance (the premise of :func:`premises_of`)."""
    ok = above_chance(models)
    idt = models[models.condition == "id"]
    return {"above": int(ok.sum()), "n": len(ok), "id_min": idt.acc.min(), "id_max": idt.acc.max(),
            "at_bound": int((models.drop_duplicates(["curation", "size"])["T"] >= T_AT_BOUND).sum()),
            "learned": bool(ok.all())}


#: the published columns shown of the DataComp / CommonPool models
DATACOMP_COLUMNS = ("model", "arch", "tag", "samples_seen", "imagenet", "imagenet_v2",
                    "imagenet_r", "imagenet_sketch", "objectnet")
#: how many DataComp models the suggested calibration command names
COMMAND_MODELS = 6


def datacomp_view(dc: pd.DataFrame) -> pd.DataFrame:
    """:func:`published_datacomp`'s models by id, with the :data:`DATACOMP_COLUMNS` it has."""
    return dc[[c for c in DATACOMP_COLUMNS if c in dc.columns]].set_index("model")


def command_models(dc: pd.DataFrame) -> str:
    """The first :data:`COMMAND_MODELS` DataComp ids as a ``-p models`` value (a JSON list)."""
    ids = list(dc["model"]) if len(dc) else []
    return "[" + ",".join(f'"{m}"' for m in ids[:COMMAND_MODELS]) + "]"


def untested_rows(source: str, why: str) -> list[dict]:
    """``not testable`` rows of every claim (:data:`CLAIMS`) on ``source``."""
    return [claims.not_testable(c, source, why) for c in CLAIMS.values()]


__all__ = ["ARCHS", "CLAIMS", "CURATIONS", "DATACOMP_COLUMNS", "T_AT_BOUND", "above_chance",
           "accuracy_residuals", "assess", "built_in_table", "calibration_long", "calibration_of",
           "check_budget", "check_curations", "command_models", "curation_residuals",
           "datacomp_view", "learning_summary", "mean_temperatures", "model_table",
           "published_datacomp", "reference_features", "residual_cells", "residual_table",
           "residual_text", "residual_wide", "row_stats", "selection_summary", "selections",
           "size_long", "train_and_score", "untested_rows"]


# --------------------------------------------------------------------------------------------
# the chapter's parameters and exercises (collected by the book runner and the pages)

ABOUT = ("how filtering, balancing and selecting a CLIP's training data moves its calibration "
         "(an open question).")


def _fractions_rule(v, params):
    items = _R.as_list(v)
    bad = [x for x in items if _R.fraction(x, params)]
    if bad or not items:
        return f"{bad or 'an empty list'}: expected a non-empty list of numbers in (0, 1] (share of the pool kept)"
    return _alignment_fit(params)


def _sizes_rule(v, params):
    items = _R.as_list(v)
    bad = [x for x in items if isinstance(x, bool) or not isinstance(x, int) or x < 10 or x % 10]
    if bad or not items:
        return (f"{bad or 'an empty list'}: expected a non-empty list of multiples of 10 (training "
                "images; class balancing keeps size / 10 per class)")
    pool = params.get("pool_size")
    if isinstance(pool, int) and max(items) > pool:
        return f"the largest size {max(items)} exceeds pool_size {pool}; lower sizes or raise pool_size"
    return _alignment_fit(params)


def _alignment_fit(params):
    """Alignment filtering at the smallest keep fraction must leave the largest size."""
    pool, fr, sizes = params.get("pool_size"), params.get("keep_fractions"), params.get("sizes")
    try:
        f, big = min(float(x) for x in _R.as_list(fr)), max(int(x) for x in _R.as_list(sizes))
    except (TypeError, ValueError):
        return None
    if (isinstance(pool, int) and "alignment" in _R.as_list(params.get("curations", []))
            and round(f * pool) < big):
        return (f"alignment filtering at keep fraction {f:g} keeps {round(f * pool)} of "
                f"pool_size {pool} rows, fewer than the largest size {big}; lower sizes, raise "
                "pool_size or the keep fractions")
    return None


PARAMETER_RULES = {
    "curations": _R.subset(CURATIONS, "curation(s)"),
    "keep_fractions": _R.max_items(10, "each fraction trains one more CLIP per curation",
                                   _fractions_rule),
    "sizes": _R.max_items(10, "each size trains one more CLIP per curation", _sizes_rule),
    "pool_size": _R.int_range(100, 100_000, "(rows of the raw pool)"),
    "budget": _R.from_check(check_budget),
    "arch": _R.choice("convnext", "resnet", "vit"), "reference": _R.zoo_clip("reference"),
    "n_eval": _R.ints(20, "images per evaluation set; the largest set holds 2000", hi=2000),
    "fit_fraction": _R.open_fraction, "seed": _R.SEED, "n_boot": _R.N_BOOT,
    "published": _R.choice(True, False),
    "jobs": _R.ints(0, "worker processes (0: one per core)", hi=64),
}

EXERCISES = [
    Exercise("Sweep the alignment filter's threshold: keep half, then three quarters of the pool.",
             {"keep_fractions": [0.5, 0.75]},
             "whether the residuals move with the filter's threshold"),
    Exercise("Train every CLIP longer.", {"budget": 60000},
             "whether the verdicts hold when every CLIP learns more"),
    Exercise("Train ViT CLIPs instead of ConvNeXt ones.",
             {"arch": "vit"},
             "whether the curation effect depends on the image tower"),
]
