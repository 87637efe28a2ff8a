"""Study of the world appendix: does the synthetic world show what the paper studies?

The zoo is the book's controlled laboratory, so the appendix measures it against the real
landscape's signature (Taori et al. 2020; Radford et al. 2021; Fang et al. 2022):

- :func:`zoo_points`: per model and natural-shift analogue, the effective robustness against the
  standard models' trend (fitted on the logit scale, as the landscape chapter does), with a flag
  for models whose ID accuracy lies outside the baseline's range (``extrapolated``).
- :func:`accuracy_ranges`: the ID accuracy range per group and the zero-shot CLIPs inside the
  baseline's range.
- :func:`signature`: the mean effective robustness of a group per shift with a percentile
  bootstrap interval over its models.
- :func:`pair_differences`: effective robustness of one model minus another's (fine-tuned child
  minus its zero-shot parent; the WIT-like CLIP minus the same recipe on the narrow source),
  with a paired bootstrap over evaluation images when per-image correctness is given
  (:func:`paired_er_difference`), over the pairs otherwise (:func:`pair_summary`).
- :func:`false_negative_share`: how often two captions of a contrastive batch are identical, or
  name the same category (the negatives the loss wrongly pushes apart).

All functions take tables or arrays (the zoo's ``catalog.csv`` / ``eval.csv``, records' logits)
and return tables; the appendix notebook reads the files and draws. Conventions: accuracies and
effective robustness are fractions here (the page shows points); intervals are 95% percentile
bootstrap intervals (:func:`clipsafety.metrics.bootstrap_ci`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from clipsafety import rules as _R
from clipsafety.groups import BASELINE, CLIP_ZEROSHOT
from clipsafety.metrics import bootstrap_ci, fit_trend
from clipsafety.rules import Exercise

__all__ = ["ID_SET", "NATURAL_SHIFTS", "NOTABLE_DROP", "OTHER_SHIFTS", "TRAINING_SOURCES",
           "RAW_POOL", "WORLD_KNOBS", "accuracy_ranges", "calibration_medians", "condition_drops",
           "contract", "curation_steps", "dataset_card", "factor_frequencies", "KEPT_ACCURACY_POINTS", "false_negative_share", "false_negative_table", "matched_pairs",
           "notable_drops", "ood_medians", "pair_differences", "pair_summary", "pair_table",
           "paired_er_difference", "real_signature", "signature", "signature_table",
           "regime_by_group", "budget_response", "pilot_effects", "recipes_in_range", "regime_sentences",
           "retrain_seconds", "source_knobs", "tower_of", "tower_rule_sentence", "zoo_points"]

ID_SET = "synth:id-test"
#: the natural-shift analogues of the world and the real shift each stands for
#: (the keys of :data:`clipsafety.published.SHIFTS`)
NATURAL_SHIFTS = {"synth:shift-v2": "v2", "synth:shift-sketch": "sketch",
                  "synth:shift-rendition": "r", "synth:shift-adversarial": "a",
                  "synth:shift-objectnet": "objectnet"}
#: the synthetic conditions without a natural-shift counterpart
OTHER_SHIFTS = ("synth:shift-stylized", "synth:shift-corrupt", "synth:shift-occlusion")


def _check_tables(catalog: pd.DataFrame, evals: pd.DataFrame) -> None:
    need_c = {"id", "group"}
    need_e = {"id", "dataset", "accuracy"}
    for name, df, need in (("catalog", catalog, need_c), ("eval", evals, need_e)):
        missing = sorted(need - set(df.columns))
        if missing:
            raise ValueError(f"the zoo's {name} table lacks the column(s) {missing}; expected "
                             f"data/zoo/{name}.csv as `make zoo` writes it (columns "
                             f"{sorted(need)} at least).")


def _models(catalog: pd.DataFrame) -> pd.DataFrame:
    """The catalog without its reference model (``reference == 1``), which is in no group."""
    return catalog[catalog["reference"] != 1] if "reference" in catalog else catalog


def zoo_points(catalog: pd.DataFrame, evals: pd.DataFrame, shifts: Sequence[str] = tuple(NATURAL_SHIFTS),
               baseline: str = BASELINE, scale: str = "logit") -> pd.DataFrame:
    """One row per (model, shift): ``id_acc``, ``shift_acc``, the baseline trend's prediction,
    ``eff_rob`` (shift accuracy minus prediction) and ``extrapolated`` (the model's ID accuracy
    lies outside the baseline models' ID range, so its ER extrapolates the trend).

    ``catalog``: the zoo's catalog (``id, group`` and the metadata kept); reference models
    (``reference == 1``) are dropped. ``evals``: long table ``id, dataset, accuracy`` with
    :data:`ID_SET` and every shift for every model.
    """
    _check_tables(catalog, evals)
    cat = _models(catalog)
    acc = evals.pivot_table(index="id", columns="dataset", values="accuracy", aggfunc="first")
    missing = [s for s in (ID_SET, *shifts) if s not in acc.columns]
    if missing:
        raise ValueError(f"the eval table has no accuracies on {missing}; expected every model "
                         f"evaluated on {ID_SET} and {list(shifts)} (retrain or re-evaluate the zoo "
                         "with `make zoo`).")
    absent = sorted(set(cat["id"]) - set(acc.index))
    if absent:
        raise ValueError(f"{len(absent)} catalog models have no accuracies in the eval table "
                         f"(e.g. {absent[:3]}); the two files must come from the same `make zoo`.")
    acc = acc.loc[cat["id"]]
    base = (cat["group"] == baseline).to_numpy()
    if base.sum() < 3:
        raise ValueError(f"only {int(base.sum())} models of the baseline group {baseline!r}; "
                         "the trend needs at least 3.")
    x = acc[ID_SET].to_numpy(float)
    lo, hi = x[base].min(), x[base].max()
    keep = [c for c in cat.columns if c not in ("id",)]
    rows = []
    for s in shifts:
        y = acc[s].to_numpy(float)
        trend = fit_trend(x[base], y[base], scale)
        pred = trend.predict(x)
        rows.append(pd.DataFrame({"id": cat["id"].to_numpy(), "shift": s, "id_acc": x,
                                  "shift_acc": y, "predicted": pred, "eff_rob": y - pred,
                                  "baseline": base, "extrapolated": (x < lo) | (x > hi),
                                  "slope": trend.slope, "intercept": trend.intercept}))
    out = pd.concat(rows, ignore_index=True)
    keep = [c for c in keep if c not in out.columns]  # the catalog's own id_acc is the eval's
    return out.merge(cat[["id", *keep]], on="id", how="left")


def accuracy_ranges(catalog: pd.DataFrame, evals: pd.DataFrame, baseline: str = BASELINE,
                    group: str = CLIP_ZEROSHOT) -> tuple[pd.DataFrame, dict]:
    """ID accuracy per group (``n, min, median, max``) and a summary dict: the baseline's range,
    the range of ``group``, how many of its models lie inside the baseline's range, its best."""
    _check_tables(catalog, evals)
    cat = _models(catalog)
    idacc = evals[evals["dataset"] == ID_SET].set_index("id")["accuracy"]
    df = cat[["id", "group"]].assign(id_acc=cat["id"].map(idacc))
    tab = (df.groupby("group")["id_acc"].agg(n="size", min="min", median="median", max="max")
           .reset_index())
    b = df.loc[df["group"] == baseline, "id_acc"]
    g = df.loc[df["group"] == group, "id_acc"]
    inside = g[(g >= b.min()) & (g <= b.max())]
    best = df.loc[df["group"] == group].sort_values("id_acc").iloc[-1] if len(g) else None
    summary = {"baseline_min": float(b.min()), "baseline_max": float(b.max()),
               "group_min": float(g.min()) if len(g) else np.nan,
               "group_max": float(g.max()) if len(g) else np.nan,
               "n_group": int(len(g)), "n_inside": int(len(inside)),
               "best": None if best is None else str(best["id"])}
    return tab, summary


def signature(points: pd.DataFrame, group: str = CLIP_ZEROSHOT, n_boot: int = 2000,
              seed: int = 0, inside_only: bool = False) -> pd.DataFrame:
    """Per shift: the mean effective robustness of ``group``'s models with a 95% percentile
    bootstrap interval over the models, the share above the line and how many are
    extrapolated. ``inside_only`` keeps only the models inside the baseline's ID range."""
    rows = []
    for s, p in points[points["group"] == group].groupby("shift", sort=False):
        if inside_only:
            p = p[~p["extrapolated"]]
        er = p["eff_rob"].to_numpy(float)
        row = {"shift": s, "n": len(er), "n_extrapolated": int(p["extrapolated"].sum())}
        if len(er) < 2:
            rows.append({**row, "mean": np.nan, "lo": np.nan, "hi": np.nan, "share_above": np.nan})
            continue
        m, lo, hi = bootstrap_ci(np.mean, er, n_boot=n_boot, seed=seed)
        rows.append({**row, "mean": m, "lo": lo, "hi": hi, "share_above": float((er > 0).mean())})
    return pd.DataFrame(rows)


def matched_pairs(catalog: pd.DataFrame, kind: str) -> pd.DataFrame:
    """``(a, b)`` pairs of the catalog: ``kind="finetune"``: every fine-tuned child (``parent``
    set) and its zero-shot parent; ``kind="diversity"``: the models sharing a
    ``diversity:<tag>`` matched pair, ``a`` the one on the diverse (WIT-like) source and ``b``
    the one on the narrow source; ``kind="objective"``: the models sharing an
    ``objective:<tag>`` pair (same data and image tower), ``a`` the contrastive one (id
    ``clip-*``) and ``b`` the supervised one."""
    if kind == "finetune":
        ch = catalog[catalog["parent"].fillna("").astype(str) != ""]
        return pd.DataFrame({"a": ch["id"].to_numpy(), "b": ch["parent"].to_numpy(),
                             "group": ch["group"].to_numpy(), "tag": ch["id"].to_numpy()})
    if kind not in ("diversity", "objective"):
        raise ValueError(f"kind {kind!r}: expected 'finetune', 'diversity' or 'objective'.")
    rows = []
    mp = catalog["matched_pair"].fillna("").astype(str)
    tags = sorted({t for v in mp for t in v.split(";") if t.startswith(f"{kind}:")})
    for t in tags:
        ids = catalog.loc[mp.str.split(";").apply(lambda v, t=t: t in v), ["id", "train_set"]]
        if kind == "diversity":
            first = ~ids["train_set"].str.contains("narrow")
        else:
            first = ids["id"].str.startswith("clip-")
        a, b = ids[first], ids[~first]
        if len(a) == 1 and len(b) == 1:
            rows.append({"a": a["id"].iloc[0], "b": b["id"].iloc[0], "group": kind, "tag": t})
    return pd.DataFrame(rows, columns=["a", "b", "group", "tag"])


def paired_er_difference(id_a, id_b, shift_a, shift_b, slope: float, intercept: float,
                         scale: str = "logit", n_boot: int = 2000, seed: int = 0,
                         level: float = 0.95) -> tuple[float, float, float]:
    """``(estimate, lo, hi)`` of ER(a) − ER(b) from per-image correctness, resampling the ID
    images and the shift images (each set jointly for both models: the same pictures) with the
    baseline trend held fixed.

    ``id_a, id_b``: boolean correctness of models a and b on the same ID images; ``shift_a,
    shift_b`` the same on the shift's images. ER(m) = acc_shift(m) − trend(acc_id(m)) with the
    trend ``inverse(slope * transform(x) + intercept)`` on ``scale``.
    """
    from clipsafety.metrics import Trend

    ia, ib, sa, sb = (np.asarray(v, bool) for v in (id_a, id_b, shift_a, shift_b))
    if ia.shape != ib.shape or sa.shape != sb.shape or ia.ndim != 1 or sa.ndim != 1:
        raise ValueError("paired_er_difference: id_a/id_b and shift_a/shift_b must be 1-d "
                         f"correctness arrays of equal length, got {ia.shape}, {ib.shape}, "
                         f"{sa.shape}, {sb.shape}.")
    trend = Trend(slope, intercept, scale, 0)

    def diff(i_a, i_b, s_a, s_b):
        pa, pb = trend.predict(np.array([i_a.mean(), i_b.mean()]))
        return float((s_a.mean() - pa) - (s_b.mean() - pb))

    est = diff(ia, ib, sa, sb)
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    for k in range(n_boot):
        u = rng.integers(0, len(ia), len(ia))
        v = rng.integers(0, len(sa), len(sa))
        boots[k] = diff(ia[u], ib[u], sa[v], sb[v])
    a = (1 - level) / 2
    return est, float(np.quantile(boots, a)), float(np.quantile(boots, 1 - a))


def pair_differences(points: pd.DataFrame, pairs: pd.DataFrame,
                     correct: Mapping | None = None, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per pair and shift: ``er_a``, ``er_b`` and ``diff`` = ER(a) − ER(b); with ``correct``
    (``{(model, dataset): bool array}`` over the same images per dataset, :data:`ID_SET`
    included) also ``lo, hi`` from :func:`paired_er_difference`."""
    er = points.set_index(["id", "shift"])
    rows = []
    cols = ["a", "b", "group", "tag", "shift", "er_a", "er_b", "diff"]
    for p in pairs.itertuples(index=False):
        for s in points["shift"].unique():
            if (p.a, s) not in er.index or (p.b, s) not in er.index:
                continue
            ra, rb = er.loc[(p.a, s)], er.loc[(p.b, s)]
            row = {"a": p.a, "b": p.b, "group": p.group, "tag": p.tag, "shift": s,
                   "er_a": ra["eff_rob"], "er_b": rb["eff_rob"], "diff": ra["eff_rob"] - rb["eff_rob"]}
            keys = [(p.a, ID_SET), (p.b, ID_SET), (p.a, s), (p.b, s)]
            if correct is not None and all(k in correct for k in keys):
                _, lo, hi = paired_er_difference(*(correct[k] for k in keys), ra["slope"],
                                                 ra["intercept"], n_boot=n_boot, seed=seed)
                row.update(lo=lo, hi=hi)
            rows.append(row)
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=cols)


def pair_summary(diffs: pd.DataFrame, by: Sequence[str] = ("shift",), n_boot: int = 2000,
                 seed: int = 0) -> pd.DataFrame:
    """Mean of ``diff`` per ``by`` with a 95% percentile bootstrap interval over the pairs."""
    rows = []
    for key, d in diffs.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        v = d["diff"].to_numpy(float)
        m, lo, hi = bootstrap_ci(np.mean, v, n_boot=n_boot, seed=seed) if len(v) > 1 \
            else (float(v.mean()), np.nan, np.nan)
        rows.append({**dict(zip(by, key)), "n_pairs": len(v), "mean": m, "lo": lo, "hi": hi,
                     "share_negative": float((v < 0).mean())})
    return pd.DataFrame(rows, columns=[*by, "n_pairs", "mean", "lo", "hi", "share_negative"])


def false_negative_share(targets, captions: Sequence[str], batch: int = 64, n_batches: int = 200,
                         seed: int = 0) -> dict:
    """How often the contrastive loss meets false negatives in random batches of ``batch``.

    Over ``n_batches`` batches drawn without replacement (seeded), the share of off-diagonal
    (image, caption) pairs whose captions are identical strings (``identical``: the loss pushes
    apart two copies of the same text) and whose images share the category (``same_class``:
    negatives that are semantically positives), with the mean number of distinct captions per
    batch (``distinct_per_batch``) and of distinct captions overall (``distinct_share``).
    """
    t = np.asarray(targets)
    caps = np.asarray(list(captions), dtype=object)
    if len(t) != len(caps):
        raise ValueError(f"false_negative_share: {len(t)} targets but {len(caps)} captions; "
                         "expected one caption per image.")
    if batch < 2 or batch > len(t):
        raise ValueError(f"batch {batch}: expected 2 <= batch <= {len(t)} (the set's size).")
    _, cap_id = np.unique(caps, return_inverse=True)
    rng = np.random.default_rng(seed)
    ident, same, distinct = [], [], []
    off = ~np.eye(batch, dtype=bool)
    for _ in range(n_batches):
        idx = rng.choice(len(t), batch, replace=False)
        c, y = cap_id[idx], t[idx]
        ident.append((c[:, None] == c[None, :])[off].mean())
        same.append((y[:, None] == y[None, :])[off].mean())
        distinct.append(len(np.unique(c)))
    return {"batch": batch, "identical": float(np.mean(ident)), "same_class": float(np.mean(same)),
            "distinct_per_batch": float(np.mean(distinct)),
            "distinct_share": float(len(np.unique(cap_id)) / len(caps))}


def contract(ranges: dict, sig: pd.DataFrame, erosion: pd.DataFrame, ablation: pd.DataFrame,
             premise: pd.DataFrame, shifts: Mapping[str, str] = NATURAL_SHIFTS) -> pd.DataFrame:
    """The world's contract (what the appendix promises of the zoo), one row per requirement
    with the measured value and whether it holds.

    ``ranges``: :func:`accuracy_ranges`'s summary; ``sig``: :func:`signature` of the zero-shot
    CLIPs; ``erosion``: :func:`pair_summary` of fine-tuned minus parent; ``ablation``: of diverse
    minus narrow source; ``premise``: the landscape chapter's rule on the world's points
    (:func:`clipsafety.studies.landscape.shift_findings`), so that the appendix and the
    landscape chapter read the premise the same way.
    """
    s = sig.set_index("shift")
    pr = premise.set_index("shift")
    pos = [k for k in shifts if k in pr.index and pr.loc[k, "reading"] == "reproduced"]
    r = ranges
    sk = [k for k in ("synth:shift-sketch", "synth:shift-rendition") if k in s.index]
    v2 = s.loc["synth:shift-v2", "mean"] if "synth:shift-v2" in s.index else np.nan
    er_, ab = erosion.set_index("shift"), ablation.set_index("shift")
    shape = [k for k in sk if k in er_.index]
    rows = [
        ("baseline spans at least 0.45-0.85 ID accuracy",
         f"{r['baseline_min']:.3f}-{r['baseline_max']:.3f}",
         r["baseline_min"] <= 0.45 and r["baseline_max"] >= 0.85),
        ("zero-shot CLIPs span at least 0.40-0.75",
         f"{r['group_min']:.3f}-{r['group_max']:.3f}", r["group_min"] <= 0.40 and r["group_max"] >= 0.75),
        ("at least 8 zero-shot CLIPs inside the baseline's range",
         f"{r['n_inside']} of {r['n_group']}", r["n_inside"] >= 8),
        ("the best zero-shot CLIP reaches 0.75", f"{r['group_max']:.3f} ({r['best']})",
         r["group_max"] >= 0.75),
        ("zero-shot CLIPs more effectively robust than the standard models (the landscape "
         "chapter's rule: mean ER difference, interval above 0) on at least 4 of the 5 natural "
         "shifts", f"{len(pos)} of {len(shifts)}: " + ", ".join(shifts[k] for k in pos),
         len(pos) >= 4),
        ("ER larger on sketch and rendition than on V2-like",
         ", ".join(f"{shifts[k]} {s.loc[k, 'mean'] * 100:+.1f}" for k in sk) + f" vs v2 {v2 * 100:+.1f}",
         bool(sk) and all(s.loc[k, "mean"] > v2 for k in sk)),
        ("fine-tuned CLIPs keep less ER than their parents (sketch, rendition: interval below 0)",
         ", ".join(f"{shifts[k]} {er_.loc[k, 'mean'] * 100:+.1f} [{er_.loc[k, 'lo'] * 100:+.1f}, "
                   f"{er_.loc[k, 'hi'] * 100:+.1f}]" for k in shape),
         bool(shape) and all(er_.loc[k, "hi"] < 0 for k in shape)),
        ("the same recipe on the narrow source loses ER (ER of WIT-like minus narrow above 0 on "
         "sketch and rendition, mean over the families)",
         ", ".join(f"{shifts[k]} {ab.loc[k, 'mean'] * 100:+.1f}" for k in sk if k in ab.index),
         bool(sk) and all(k in ab.index and ab.loc[k, "mean"] > 0 for k in sk)),
    ]
    return pd.DataFrame(rows, columns=["requirement", "measured", "holds"])


# --------------------------------------------------------------------------------------------
# the appendix's tables

def dataset_card(sets: Sequence[str]) -> pd.DataFrame:
    """One row per evaluation set of the world (``sets``: names without ``synth:``): dataset id,
    samples, label subset and description (:data:`clipsafety.synth.DESCRIPTIONS`). A set that
    cannot be built here (the A-like set needs the zoo's reference model) gets no samples and
    says why in its description."""
    from clipsafety.synth import DESCRIPTIONS, get_dataset

    rows = []
    for name in sets:
        try:
            ds = get_dataset(name)
            rows.append({"dataset": f"synth:{name}", "samples": len(ds),
                         "label subset": ds.label_subset, "description": DESCRIPTIONS[name]})
        except Exception as err:  # noqa: BLE001 (reported in the card)
            rows.append({"dataset": f"synth:{name}", "samples": None, "label subset": None,
                         "description": f"unavailable here: {err}"})
    return pd.DataFrame(rows)


#: the raw pool the curation filters select from
RAW_POOL = "train-raw-100k"


def curation_steps(pool: str = RAW_POOL) -> tuple[pd.DataFrame, float, float]:
    """``(steps, named, duplicates)`` of the raw ``pool``: its size after each deterministic
    curation filter of :mod:`clipsafety.synth.curation` (columns selection, samples), the share
    of its captions that name a category and the share of its rows that are duplicates."""
    from clipsafety.synth import curation, get_dataset

    raw = get_dataset(pool)
    dedup = curation.deduplicate(raw)
    steps = {"raw pool": raw.n, "de-duplicated": len(dedup),
             "class-balanced (caption word)": len(curation.balance_classes(raw)),
             "de-duplicated, then class-balanced": len(curation.balance_classes(raw, start=dedup))}
    named = (curation.caption_classes(raw.captions()) >= 0).mean()
    return (pd.DataFrame({"selection": list(steps), "samples": list(steps.values())}), named,
            1 - len(dedup) / raw.n)


#: a test condition "lowers the zoo's mean accuracy" when its mean accuracy lies at least this
#: far below the ID test set's (a fraction: 0.05 = 5 points of accuracy)
NOTABLE_DROP = 0.05


def condition_drops(evals: pd.DataFrame, models: Sequence[str],
                    id_set: str = ID_SET) -> pd.DataFrame:
    """Per dataset of the zoo's ``eval.csv`` (over the ``models``' rows): ``mean accuracy`` and
    ``drop vs ID`` (the ``id_set``'s mean minus the dataset's), rounded to 3 decimals as the
    appendix shows them; index dataset, sorted."""
    ev = evals[evals["id"].isin(models)]
    mean = ev.groupby("dataset")["accuracy"].mean()
    return pd.DataFrame({"mean accuracy": mean, "drop vs ID": mean[id_set] - mean}).round(3)


def notable_drops(drops: pd.DataFrame, id_set: str = ID_SET,
                  threshold: float = NOTABLE_DROP) -> int:
    """How many test conditions of :func:`condition_drops` (the ``id_set`` left out) lower the
    mean accuracy by at least ``threshold`` (:data:`NOTABLE_DROP`), read on the rounded drops
    the appendix shows."""
    return int((drops["drop vs ID"].drop(id_set) >= threshold).sum())


#: the training sources the appendix compares, in display order
TRAINING_SOURCES = ("labelled", "wit", "laion", "narrow")


def factor_frequencies(n_samples: int, sources: Sequence[str] = TRAINING_SOURCES) -> pd.DataFrame:
    """Share of the first ``n_samples`` samples of each source's 10k training set
    (``train-<source>-10k``) carrying each ImageNet-X factor: one row per (factor, source),
    columns factor, share, source."""
    from clipsafety.synth import FACTORS, get_dataset

    return pd.concat([
        get_dataset(f"train-{src}-10k").meta()[FACTORS].iloc[:n_samples].mean()
        .rename("share").rename_axis("factor").reset_index().assign(source=src)
        for src in sources])


#: the diversity, cue and caption parameters of a source shown by the appendix (fields of
#: :class:`clipsafety.synth.sources.WorldConfig`)
WORLD_KNOBS = ("cue_strength", "p_pose", "background_probs", "style_probs", "p_partial",
               "p_occluder", "p_multi", "caption_style", "p_class_word", "p_attr_word",
               "p_misaligned", "n_filler")


def source_knobs(knobs: Sequence[str] = WORLD_KNOBS) -> pd.DataFrame:
    """The ``knobs`` of every training source of the world (:data:`clipsafety.synth.sources.SOURCES`),
    read from its configuration: one row per source (column ``source``), one column per knob."""
    from clipsafety.synth import sources as S

    return pd.DataFrame({name: {k: cfg.to_dict()[k] for k in knobs}
                         for name, cfg in S.SOURCES.items()}).T.rename_axis("source").reset_index()


def false_negative_table(sources: Sequence[str] = TRAINING_SOURCES, batch: int = 64,
                         seed: int = 0) -> pd.DataFrame:
    """:func:`false_negative_share` of each source's 30k training set (``train-<source>-30k``:
    its categories and captions) on random batches of ``batch``, one row per source."""
    from clipsafety.synth import get_dataset

    rows = []
    for src in sources:
        ds = get_dataset(f"train-{src}-30k")
        rows.append({"source": src, **false_negative_share(
            ds.attributes()["category"].to_numpy(), ds.captions(), batch=batch, seed=seed)})
    return pd.DataFrame(rows)


def real_signature(points: pd.DataFrame, group: str = CLIP_ZEROSHOT) -> pd.DataFrame:
    """Per real shift of a landscape fit's points (``shift``, ``group``, ``eff_rob``): the
    ``mean`` effective robustness of the ``group`` models and their number (``size``)."""
    return points[points["group"] == group].groupby("shift")["eff_rob"].agg(["mean", "size"])


def signature_table(sig: pd.DataFrame, sig_inside: pd.DataFrame,
                    real: pd.DataFrame | None = None) -> pd.DataFrame:
    """The appendix's signature table: :func:`signature` with ``shift_real`` (the real shift each
    analogue stands for, :data:`NATURAL_SHIFTS`), when ``real`` (:func:`real_signature` of the
    published landscape) is given its ``real_mean`` and ``real_n`` on that shift, and
    ``mean_inside`` (the signature of the models inside the baseline's ID range only)."""
    table = sig.assign(shift_real=sig["shift"].map(NATURAL_SHIFTS))
    if real is not None:
        table["real_mean"] = table["shift_real"].map(real["mean"])
        table["real_n"] = table["shift_real"].map(real["size"])
    table["mean_inside"] = table["shift"].map(sig_inside.set_index("shift")["mean"])
    return table


def pair_table(diffs: pd.DataFrame) -> pd.DataFrame:
    """:func:`pair_differences` as one row per pair (``tag``) and one column per shift: the
    difference in points, rounded to 0.1."""
    return diffs.pivot(index="tag", columns="shift", values="diff").mul(100).round(1)


def ood_medians(detection: pd.DataFrame, detection_msp: pd.DataFrame) -> pd.DataFrame:
    """Median AUROC per (group, OOD set): ``auroc`` of ``detection`` (each model's own score,
    :func:`clipsafety.studies.ood.detection_table`) and ``auroc_msp`` of ``detection_msp``
    (MSP for every model), the two joined per (model, OOD set)."""
    det = detection.merge(detection_msp[["model", "ood_set", "auroc"]]
                          .rename(columns={"auroc": "auroc_msp"}), on=["model", "ood_set"])
    return det.groupby(["group", "ood_set"])[["auroc", "auroc_msp"]].median().reset_index()


def calibration_medians(table: pd.DataFrame) -> pd.DataFrame:
    """Median accuracy, ECE and NLL before scaling per (group, kind) of a calibration table
    (:func:`clipsafety.studies.calibration.calibration_table`), ``kind`` "ID" for the ID rows
    and "shifts" for every shift row together."""
    return (table.assign(kind=np.where(table["is_id"], "ID", "shifts"))
            .groupby(["group", "kind"])[["accuracy", "ece_before", "nll_before"]].median()
            .reset_index())


def regime_by_group(committed: pd.DataFrame, ranges: Mapping[str, tuple]) -> pd.DataFrame:
    """Per zoo group of the confidence pilots' ``committed`` table
    (:mod:`clipsafety.zoo.pilots`): models, median and range of the ID gap (points), the share
    inside the real range of that group (``ranges``: :func:`clipsafety.premises.real_gap_ranges`,
    ``nan`` where no real range applies), the median fitted ID temperature and, for the CLIPs,
    the median learned logit scale, contrastive-optimal scale and zero-gap scale."""
    rows = []
    for g, part in committed.groupby("group", sort=False):
        gap = part["gap_points"].to_numpy(float)
        lo, hi = ranges.get(g, (np.nan, np.nan, np.nan, 0))[:2]
        inside = float(((gap >= lo) & (gap <= hi)).mean()) if np.isfinite(lo) else np.nan
        row = {"group": g, "models": len(part), "gap_median": float(np.median(gap)),
               "gap_min": float(gap.min()), "gap_max": float(gap.max()),
               "over_confident": float((gap > 0).mean()), "real_lo": lo, "real_hi": hi,
               "inside_real": inside,
               "temperature_median": float(part["id_temperature"].median())}
        for c in ("logit_scale", "contrastive_optimal_scale", "scale_for_zero_gap"):
            row[c] = float(part[c].median()) if c in part and part[c].notna().any() else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def pilot_effects(trained: pd.DataFrame) -> pd.DataFrame:
    """Each training pilot against its own ``base`` retrain (the zoo's recipe): the change in
    ID accuracy and in the gap (points), per model and variant."""
    base = trained[trained["variant"] == "base"].set_index("model")
    out = trained[trained["variant"] != "base"].copy()
    out["accuracy_change"] = 100 * (out["id_accuracy"] - out["model"].map(base["id_accuracy"]))
    out["gap_change"] = out["gap_points"] - out["model"].map(base["gap_points"])
    out["base_gap"] = out["model"].map(base["gap_points"])
    return out.reset_index(drop=True)


def budget_response(trained: pd.DataFrame) -> pd.DataFrame:
    """The CLIP pilots' ID gap against their training budget: the ``base`` run (factor 1) and
    each pilot of :data:`CLIP_BUDGET_FACTORS`, per model, in order of the factor."""
    d = trained[trained["logit_scale"].notna()]
    factor = d["variant"].map({"base": 1, **CLIP_BUDGET_FACTORS})
    d = d.assign(factor=factor).dropna(subset=["factor"])
    return d.sort_values(["model", "factor"], kind="stable")[["model", "factor", "gap_points",
                                                              "id_accuracy"]]


#: the CLIP pilots that multiply a CLIP's training budget, and by how much
CLIP_BUDGET_FACTORS = {"2x samples seen": 2, "4x samples seen": 4}


#: a retrained zoo keeps a model's ID accuracy when it moves by at most this many points
KEPT_ACCURACY_POINTS = 2.0


def tower_of(model_id: str) -> str:
    """The tower family of a zoo plan entry (``clip-vit-wit-10k`` -> ``vit``); an id the plan
    does not hold is its own tower."""
    from clipsafety.zoo.plan import PLAN

    return next((m["family"] for m in PLAN if m["id"] == model_id), model_id)


def recipes_in_range(trained: pd.DataFrame, lo: float, hi: float) -> pd.DataFrame:
    """Per CLIP pilot model and recipe (the zoo's own, ``base``, included): whether its ID gap
    lies inside ``[lo, hi]`` (points) and its ID accuracy change against ``base`` (points);
    with the model's tower. The question behind it: is there a recipe, per tower, that puts
    every piloted model of the tower in range (a rule), and at what cost to accuracy."""
    d = trained[trained["logit_scale"].notna()].copy()
    base = d[d["variant"] == "base"].set_index("model")["id_accuracy"]
    d["tower"] = d["model"].map(tower_of)
    d["inside"] = (d["gap_points"] >= lo) & (d["gap_points"] <= hi)
    d["accuracy_change"] = 100 * (d["id_accuracy"] - d["model"].map(base))
    return d[["tower", "model", "variant", "gap_points", "inside", "accuracy_change"]].reset_index(drop=True)


def tower_rule_sentence(table: pd.DataFrame, lo: float, hi: float,
                        kept_accuracy: float = KEPT_ACCURACY_POINTS) -> str:
    """In words, from :func:`recipes_in_range`: per tower, the recipes (of those piloted on all
    its models) that put every piloted model in range, else which model each recipe misses;
    and the accuracy change of the pilots inside the range."""
    parts = []
    for tower, part in table.groupby("tower", sort=False):
        models = list(dict.fromkeys(part["model"]))
        common = [v for v, g in part.groupby("variant", sort=False) if set(g["model"]) == set(models)]
        rules = [v for v in common if part[part["variant"] == v]["inside"].all()]
        per_model = "; ".join(
            f"{m}: " + (", ".join(f"*{v}* ({g:+.1f})" for v, g in
                                  part[(part["model"] == m) & part["inside"]][["variant", "gap_points"]]
                                  .itertuples(index=False)) or "none")
            for m in models)
        parts.append(f"{tower}: " + (("a rule, " + ", ".join(f"*{v}*" for v in rules)) if rules
                                     else "no recipe for all its models") + f" (in range: {per_model})")
    inside = table[table["inside"] & (table["variant"] != "base")]
    acc = ("" if inside.empty else
           f" The {len(inside)} pilots inside the range changed their model's ID accuracy by "
           f"{inside['accuracy_change'].min():+.1f} to {inside['accuracy_change'].max():+.1f} "
           f"points (median {inside['accuracy_change'].median():+.1f}); "
           f"{int((inside['accuracy_change'].abs() <= kept_accuracy).sum())} of them kept it "
           f"within {kept_accuracy:g} points, as a retrained zoo must.")
    return (f"Per tower, the recipes that put each piloted CLIP inside the real zero-shot range "
            f"({lo:+.1f} to {hi:+.1f} points; its gap in brackets): " + "; ".join(parts) + "." + acc)


def retrain_seconds(catalog: pd.DataFrame, clip_factor: float) -> float:
    """Single-core seconds to retrain every zero-shot CLIP of ``catalog`` (its measured
    ``train_seconds``) with ``clip_factor`` times its budget, plus the fine-tunes built on them
    (a changed parent changes their spec) at their own measured times."""
    t = catalog["train_seconds"].astype(float)
    return float(clip_factor * t[catalog["kind"] == "clip"].sum()
                 + t[catalog["kind"].isin(["ft", "ft2"])].sum())


def regime_sentences(committed: pd.DataFrame, batch: pd.DataFrame | None,
                     trained: pd.DataFrame | None, tolerance: float = 0.15,
                     clip_range: tuple | None = None, max_accuracy_loss: float = 5.0,
                     catalog: pd.DataFrame | None = None,
                     kept_accuracy: float = KEPT_ACCURACY_POINTS) -> list[str]:
    """What the confidence pilots show, in words computed from their tables: whether the CLIPs'
    learned scale sits at its contrastive optimum (within ``tolerance``, relative), how batch
    size and same-category negatives move that optimum, the scale a zero gap would need, and
    each training pilot's effect on the gap. With ``clip_range`` (the real zero-shot range,
    ``(lo, hi, ...)`` in points), the last sentences say per tower which recipes put each
    piloted CLIP inside it, and name the CLIP pilots that do so while keeping their model's ID
    accuracy (within ``kept_accuracy`` points either way, as a retrained zoo must); whether the
    world's calibration rows read *premise not met* is read from the committed zoo's CLIPs.
    ``max_accuracy_loss`` (median, points) bounds the pilots considered as levers at all."""
    from clipsafety.zoo.plan import CLIP_RECIPE

    out = []
    clips = committed.dropna(subset=["logit_scale"])
    if len(clips):
        ratio = clips["logit_scale"] / clips["contrastive_optimal_scale"]
        at_opt = float((ratio.sub(1).abs() <= tolerance).mean())
        from clipsafety.zoo.pilots import best_single_scale, open_clip_init_scale

        out.append(
            f"The {len(clips)} zero-shot CLIPs learned logit scales of "
            f"{clips['logit_scale'].min():.1f} to {clips['logit_scale'].max():.1f} (open_clip starts "
            f"at {open_clip_init_scale():.1f}). Their own contrastive loss, on batches of "
            f"{CLIP_RECIPE['batch']} (the zoo's recipe) from their training "
            f"set, is lowest at {clips['contrastive_optimal_scale'].min():.1f} to "
            f"{clips['contrastive_optimal_scale'].max():.1f}: {at_opt:.0%} of them sit within "
            f"{tolerance:.0%} of that optimum (median ratio {ratio.median():.2f}). "
            + ("The scale is learned to that optimum: the contrastive objective on this world "
               "sets it, not too short a training." if at_opt >= 0.75 else
               "The scale has not reached its contrastive optimum."))
        out.append(
            f"Without the negatives that share the positive's category "
            f"({clips['same_category_negative_share'].median():.0%} of a batch's pairs), the "
            f"optimum moves from a median {clips['contrastive_optimal_scale'].median():.1f} to "
            f"{clips['contrastive_optimal_scale_no_same_category'].median():.1f}. "
            f"A zero ID gap would need a zero-shot scale of {clips['scale_for_zero_gap'].min():.0f} "
            f"to {clips['scale_for_zero_gap'].max():.0f} (median "
            f"{clips['scale_for_zero_gap'].median():.0f}), {clips['scale_for_zero_gap'].median() / clips['logit_scale'].median():.1f} "
            "times the learned one" + (
                "." if "scale_for_real_lo" not in clips else
                "; the best single scale, {:.0f}, would put {} of {} inside the real range "
                "({:+.1f} to {:+.1f} points) (a fixed scale chosen after training, so a "
                "world setting, not a finding).".format(
                    *best_single_scale(clips["scale_for_real_lo"], clips["scale_for_real_hi"]),
                    len(clips), clips["real_lo"].iloc[0], clips["real_hi"].iloc[0])))
    if batch is not None and len(batch):
        w = batch.groupby("batch")["contrastive_optimal_scale"].median()
        from clipsafety.zoo.pilots import REAL_CLIP_BATCH
        from clipsafety.zoo.train import LOGIT_SCALE_CAP

        rel = w.iloc[-1] / w.iloc[0] - 1
        out.append(f"Batch size {'barely moves' if abs(rel) < 0.2 else 'moves'} the optimum "
                   f"({rel:+.0%}): a median {w.iloc[0]:.1f} at batch "
                   f"{w.index[0]} and {w.iloc[-1]:.1f} at batch {w.index[-1]} (real CLIP trains "
                   f"at {REAL_CLIP_BATCH:,} and its scale reaches the cap of {LOGIT_SCALE_CAP:g}).")
    if trained is not None and len(trained):
        eff = pilot_effects(trained)
        kind = np.where(eff["logit_scale"].notna(), "CLIP", "Supervised")
        for (k, v), part in eff.groupby([kind, eff["variant"]], sort=False):
            scale = (f"; final scale {part['logit_scale'].min():.1f} to {part['logit_scale'].max():.1f}"
                     if part["logit_scale"].notna().any() else "")
            out.append(f"{k} pilot *{v}* ({len(part)} models): gap "
                       f"{part['base_gap'].median():+.1f} → "
                       f"{part['gap_points'].median():+.1f} points (medians; pilots "
                       f"{part['gap_points'].min():+.1f} to {part['gap_points'].max():+.1f}; change "
                       f"{part['gap_change'].median():+.1f}), accuracy change "
                       f"{part['accuracy_change'].median():+.1f} points{scale}.")
        clip_eff = eff[eff["logit_scale"].notna()]
        dose = budget_response(trained)
        if len(dose) and dose["factor"].nunique() > 2:
            per = "; ".join(
                f"{m}: " + " → ".join(f"{g:+.1f}" for g in part["gap_points"])
                for m, part in dose.groupby("model", sort=False))
            g = {m: part["gap_points"].to_numpy() for m, part in dose.groupby("model", sort=False)}
            rise = {m: v[-1] - v[0] for m, v in g.items()}
            dips = [m for m, v in g.items() if np.any(np.diff(v) <= 0)]
            factors = ", ".join(f"{f:g}x" for f in sorted(dose["factor"].unique()))
            top = max(dose["factor"])
            out.append(
                f"Samples seen against the ID gap (points, at {factors} the zoo's budget): {per}. "
                + (f"From the zoo's budget to {top:g}x the gap rises on all {len(g)} models, by "
                   f"{min(rise.values()):+.1f} to {max(rise.values()):+.1f} points: training length "
                   "moves the regime, at a rate that depends on the tower and the training set"
                   + (f" (not at every step: {', '.join(dips)})." if dips else ".")
                   if all(r > 0 for r in rise.values()) else
                   f"The gap does not rise with training length on every model "
                   f"({', '.join(m for m, r in rise.items() if r <= 0)})."))
        keeps = clip_eff.groupby("variant", sort=False)["accuracy_change"].median() \
            >= -max_accuracy_loss
        usable = clip_eff[clip_eff["variant"].map(keeps)]
        if len(usable):
            moves = usable.groupby("variant", sort=False)["gap_change"].median()
            top = moves.idxmax()
            part = usable[usable["variant"] == top]
            out.append(f"Among the CLIP pilots that lose at most {max_accuracy_loss:g} points of "
                       f"accuracy (median), *{top}* moves the gap most (a median "
                       f"{moves.max():+.1f} points), but by {part['gap_change'].min():+.1f} to "
                       f"{part['gap_change'].max():+.1f} points across its "
                       f"{len(part)} models, to gaps of {part['gap_points'].min():+.1f} to "
                       f"{part['gap_points'].max():+.1f}.")
        if clip_range is not None and len(clip_eff):
            from clipsafety.premises import REGIME_SHARE

            lo, hi = clip_range[:2]
            out.append(tower_rule_sentence(recipes_in_range(trained, lo, hi), lo, hi, kept_accuracy))
            inside = (clip_eff["gap_points"] >= lo) & (clip_eff["gap_points"] <= hi)
            ok = clip_eff.assign(inside=inside & (clip_eff["accuracy_change"].abs() <= kept_accuracy))
            share = ok.groupby("variant", sort=False)["inside"].mean()
            hits = ok[ok["inside"]]
            reached = share[share >= REGIME_SHARE]
            gaps = committed.loc[committed["logit_scale"].notna(), "gap_points"]
            zoo_share = float(((gaps >= lo) & (gaps <= hi)).mean()) if len(gaps) else float("nan")
            out.append(
                f"Inside the real zero-shot range ({lo:+.1f} to {hi:+.1f} points) with the model's "
                f"ID accuracy kept (within {kept_accuracy:g} points): "
                + ("no CLIP pilot" if hits.empty else
                   "; ".join(f"{r.model} with *{r.variant}*" for r in hits.itertuples()))
                + f" ({len(hits)} of {len(clip_eff)}; {int(inside.sum())} inside the range at all). "
                + ("No recipe change puts " if reached.empty else
                   "The recipe change(s) " + ", ".join(f"*{v}*" for v in reached.index) + " put ")
                + f"at least {REGIME_SHARE:.0%} of its pilot CLIPs there with their accuracy "
                  "kept (the share the calibration premise asks of the zoo)"
                + ("; a retrained zoo with it is the next step" if not reached.empty else
                   ", so the zoo keeps its recipe")
                + f". Of the committed zoo's {len(gaps)} zero-shot CLIPs, {zoo_share:.0%} lie in "
                  "the range"
                + (", so the calibration, prompt and curation chapters' world rows read "
                   "*premise not met*." if zoo_share < REGIME_SHARE else "."))
            if catalog is not None and not reached.empty:
                for v in reached.index:
                    factor = CLIP_BUDGET_FACTORS.get(v)
                    if factor:
                        sec = retrain_seconds(catalog, factor)
                        out.append(
                            f"*{v}* for every zoo CLIP (and a retrain of the fine-tunes built on "
                            f"them) costs about {sec / 60:.0f} minutes of one core at the "
                            f"committed zoo's measured training times, {sec / 120:.0f} minutes with "
                            "`make zoo`'s 2 workers.")
    return out


# --------------------------------------------------------------------------------------------
# the chapter's parameters and exercises (collected by the book runner and the pages)

ABOUT = "what the synthetic world puts in, what emerges from it, and a card per zoo model."

PARAMETER_RULES = {
    "n_examples": _R.ints(1, "example images per set, all drawn on the page", hi=64),
    "n_factor_samples": _R.ints(100, "samples per source: at least 100 for a share to be more "
                                "than a few images' factors; the sources' training sets hold "
                                "10000", hi=10_000),
    "n_boot": _R.N_BOOT, "seed": _R.SEED,
    "scale": _R.SCALES, "store": _R.folder("store"), "models": _R.models,
}

EXERCISES = [
    Exercise("Fit the standard models' trend on the probit scale instead of logit.",
             {"scale": "probit"},
             "whether zero-shot CLIP's effective robustness on each natural-shift analogue "
             "depends on the scale",
             _R.table_values("signature", ("shift",), {
                 "mean": "zero-shot CLIP's mean effective robustness (points)",
                 "mean_inside": "the same, models inside the standard models' range (points)"},
                 factor=100)),
    Exercise("Estimate the factor frequencies from fewer samples.",
             {"n_factor_samples": 500},
             "how noisy the frequencies become",
             _R.table_values("frequencies", ("factor", "source"),
                             {"share": "share of samples with the factor (%)"}, factor=100)),
]
