"""Retrain the zoo from seeds: ``python -m clipsafety.zoo.train`` (``make zoo``).

Determinism: each model seeds torch and numpy from its plan seed, batches are drawn from a
seeded numpy generator, ``torch.use_deterministic_algorithms(True)`` is on and torch runs
single-threaded by default; on the same machine, library versions and thread count the
weights are bit-identical (across CPUs or thread counts, floating-point order may differ).
``--jobs N`` (default 2) trains N models at a time in worker processes, each model wholly in
one single-threaded worker, so the weights do not depend on N; the reference model trains
first (it filters ``synth:shift-adversarial``, which every evaluation uses) and fine-tuned
models wait for their CLIP parent. Training the reference into ``data/zoo`` rewrites the
committed kept ids of the A-like set (``data/synth/shift-adversarial.json``,
:mod:`clipsafety.zoo.reference`). Rendered training sets are cached under ``.cache/zoo-data``
(:func:`data_cache_dir`), so a rerun skips rendering.
Writes ``data/zoo/weights/<id>.safetensors`` (float16), ``data/zoo/cards/<id>.md``,
``data/zoo/catalog.csv`` and ``data/zoo/eval.csv`` (accuracy of every model on the ID test
set and the 8 test conditions, label subsets applied).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from clipsafety.store import canonical_json
from clipsafety.synth.datasets import eval_sets
from clipsafety.zoo.plan import FT2_BUDGET, PLAN, source_of

#: open_clip's cap on the learned logit scale (its training clamps ``logit_scale`` to log 100)
LOGIT_SCALE_CAP = 100.0
#: the sets every model is evaluated on: the ``in_zoo_eval`` rows of the synthetic table
EVAL_SETS = eval_sets()


def _torch():
    import torch

    return torch


def _batches(n: int, batch: int, steps: int, seed: int):
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    pos = 0
    for _ in range(steps):
        if pos + batch > n:
            perm = rng.permutation(n)
            pos = 0
        yield perm[pos:pos + batch]
        pos += batch


def _lr(step: int, steps: int, base: float) -> float:
    warm = max(1, steps // 20)
    if step < warm:
        return base * (step + 1) / warm
    t = (step - warm) / max(1, steps - warm)
    return base * 0.5 * (1 + math.cos(math.pi * t))


def _param_groups(model, weight_decay: float = 0.05, scale_lr_mult: float = 1.0) -> list[dict]:
    """AdamW groups as in open_clip's training: no weight decay on gains, biases, embeddings
    of rank < 2 and ``logit_scale`` (decaying the temperature keeps it from learning).
    ``scale_lr_mult`` != 1 puts ``logit_scale`` in a group of its own whose learning rate is the
    schedule's times that factor (a recipe knob of the confidence pilots,
    :mod:`clipsafety.zoo.pilots`); a frozen parameter is left out."""
    dec, nodec, scale = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if "logit_scale" in name and scale_lr_mult != 1.0:
            scale.append(p)
        else:
            (dec if p.ndim >= 2 and "logit_scale" not in name else nodec).append(p)
    groups = [{"params": dec, "weight_decay": weight_decay}, {"params": nodec, "weight_decay": 0.0}]
    if scale:
        groups.append({"params": scale, "weight_decay": 0.0, "lr_mult": scale_lr_mult})
    return groups


def _optimise(model, n: int, samples_seen: int, seed: int, lr: float, batch: int,
              loss_of_batch, after_step=None, desc: str = "", progress: bool = True,
              scale_lr_mult: float = 1.0) -> list[float]:
    """The one training loop of the zoo: AdamW (:func:`_param_groups`) with the schedule of
    :func:`_lr` over ``samples_seen // batch`` steps of seeded batches (:func:`_batches`);
    ``loss_of_batch(idx)`` gives the loss of a batch of row indices, ``after_step()`` runs after
    each optimiser step. Returns the per-step losses."""
    from tqdm import tqdm

    torch = _torch()
    torch.manual_seed(seed)
    steps = max(1, samples_seen // batch)
    opt = torch.optim.AdamW(_param_groups(model, scale_lr_mult=scale_lr_mult), lr=lr)
    model.train()
    losses = []
    it = tqdm(_batches(n, batch, steps, seed), total=steps, desc=desc, disable=not progress,
              mininterval=5, leave=False)
    for step, idx in enumerate(it):
        for g in opt.param_groups:
            g["lr"] = _lr(step, steps, lr) * g.get("lr_mult", 1.0)
        loss = loss_of_batch(idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if after_step is not None:
            after_step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def train_classifier(model, images: np.ndarray, labels: np.ndarray, samples_seen: int, seed: int,
                     lr: float = 3e-3, batch: int = 64, desc: str = "", progress: bool = True,
                     label_smoothing: float = 0.0):
    """Cross-entropy training (``label_smoothing`` as in ``torch.nn.functional.cross_entropy``;
    the zoo's recipe uses none); returns the per-step losses (list of floats)."""
    import torch.nn.functional as F

    from clipsafety.zoo import array_transform

    y_all = _torch().from_numpy(labels.astype(np.int64))
    return _optimise(model, len(images), samples_seen, seed, lr, batch,
                     lambda idx: F.cross_entropy(model(array_transform(images[idx])), y_all[idx],
                                                 label_smoothing=label_smoothing),
                     desc=desc, progress=progress)


def symmetric_contrastive(logits, exclude=None):
    """open_clip's symmetric contrastive loss (``ClipLoss``) of one batch from its image-text
    ``logits [B, B]`` (the diagonal are the positives); ``exclude`` (bool ``[B, B]``) leaves
    those off-diagonal negatives out."""
    torch = _torch()
    import torch.nn.functional as F

    if exclude is not None:
        drop = exclude & ~torch.eye(len(logits), dtype=torch.bool)
        logits = logits.masked_fill(drop, torch.finfo(logits.dtype).min / 2)
    target = torch.arange(len(logits))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def same_class_masked_loss(img_f, txt_f, scale, labels):
    """The contrastive loss with the negatives that share the positive's category left out
    (``labels``: the batch's categories): the batch then holds no false negatives, as a
    web-scale batch of distinct captions nearly does."""
    return symmetric_contrastive(scale * img_f @ txt_f.T, labels[:, None] == labels[None, :])


def train_clip(clip, images: np.ndarray, texts, samples_seen: int, seed: int, lr: float = 2e-3,
               batch: int = 128, desc: str = "", progress: bool = True, *,
               scale_init: float | None = None, scale_fixed: bool = False,
               scale_lr_mult: float = 1.0, labels: np.ndarray | None = None):
    """Contrastive training with open_clip's ``ClipLoss``; returns the per-step losses. The
    logit scale is clamped to ``[0, log 100]`` after every step, as open_clip does.

    Recipe knobs (all off in the zoo's plan; the confidence pilots of
    :mod:`clipsafety.zoo.pilots` turn one at a time): ``scale_init`` sets the initial logit
    scale (open_clip's ``init_logit_scale``, as a scale, not its log), ``scale_fixed`` freezes it,
    ``scale_lr_mult`` multiplies its learning rate, and ``labels`` (the images' categories)
    switches to :func:`same_class_masked_loss`."""
    from open_clip.loss import ClipLoss

    from clipsafety.zoo import array_transform

    torch = _torch()
    loss_fn = ClipLoss()
    if scale_init is not None:
        with torch.no_grad():
            clip.logit_scale.fill_(math.log(scale_init))
    if scale_fixed:
        clip.logit_scale.requires_grad_(False)
    y_all = None if labels is None else torch.from_numpy(np.asarray(labels).astype(np.int64))

    def loss_of_batch(idx):
        img_f, txt_f, scale = clip(array_transform(images[idx]), texts[idx])[:3]
        if y_all is not None:
            return same_class_masked_loss(img_f, txt_f, scale, y_all[idx])
        return loss_fn(img_f, txt_f, scale)

    def clamp():
        with torch.no_grad():
            clip.logit_scale.clamp_(0, math.log(LOGIT_SCALE_CAP))

    return _optimise(clip, len(images), samples_seen, seed, lr, batch, loss_of_batch,
                     after_step=clamp, desc=desc, progress=progress, scale_lr_mult=scale_lr_mult)


# ---------------------------------------------------------------------------- driver
def data_cache_dir() -> Path:
    """Where rendered training sets are kept between runs (``.cache/zoo-data``, git-ignored;
    ``CLIPSAFETY_ZOO_DATA`` overrides). Files are named by generator version, so a changed
    generator never reuses stale images."""
    import os

    from clipsafety.zoo import ZOO_DIR

    env = os.environ.get("CLIPSAFETY_ZOO_DATA")
    return Path(env) if env else ZOO_DIR.parents[1] / ".cache" / "zoo-data"


def _canonical(v):
    """A JSON-able, address-free form of a synthetic set's parameters (configs as dicts,
    functions by qualified name), for :func:`clipsafety.store.canonical_json`."""
    import dataclasses
    import functools

    if dataclasses.is_dataclass(v):
        return _canonical(dataclasses.asdict(v))
    if isinstance(v, functools.partial):
        return {"partial": _canonical(v.func), "args": _canonical(list(v.args)),
                "kw": _canonical(dict(v.keywords))}
    if callable(v):
        return f"{v.__module__}.{v.__qualname__}"
    if isinstance(v, dict):
        return {str(k): _canonical(x) for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}
    if isinstance(v, (list, tuple)):
        return [_canonical(x) for x in v]
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    return v


def set_key(name: str) -> str:
    """sha256 of what a training set is: its builder, parameters and the generator version. A
    set whose source changes gets a new key (so no stale cached pictures, and its models
    retrain)."""
    import hashlib

    from clipsafety.synth import GENERATOR_VERSION
    from clipsafety.synth.datasets import synth_set

    row = synth_set(name)
    blob = canonical_json({"builder": _canonical(row.builder), "params": _canonical(dict(row.params)),
                           "generator": GENERATOR_VERSION})
    return hashlib.sha256(blob.encode()).hexdigest()


def spec_hash(spec: dict, plan_by_id: dict | None = None) -> str:
    """sha256 of everything a model's weights are a function of: its plan entry (budget, seed,
    recipe, architecture), the keys of its training sets (:func:`set_key`) and, for a fine-tune,
    its parent's hash. ``make zoo`` retrains exactly the entries whose hash is not the one
    recorded in ``catalog.csv`` (or whose weights file is missing or altered)."""
    import hashlib

    plan_by_id = PLAN_BY_ID if plan_by_id is None else plan_by_id
    keys = {s: set_key(s) for s in _sets_of(spec)}
    parent = spec_hash(plan_by_id[spec["parent"]], plan_by_id) if spec.get("parent") else ""
    fields = {k: v for k, v in spec.items() if k not in ("group", "matched_pair")}
    blob = canonical_json({"spec": _canonical(fields), "sets": keys, "parent": parent})
    return hashlib.sha256(blob.encode()).hexdigest()


def unchanged(spec: dict, rows: dict, out: Path) -> bool:
    """Whether a plan entry's trained model in ``out`` is current: its catalog row records this
    entry's :func:`spec_hash` and its weights file exists with the recorded sha256."""
    from clipsafety.zoo import _sha256

    row = rows.get(spec["id"])
    path = out / "weights" / f"{spec['id']}.safetensors"
    if row is None or not path.exists() or str(row.get("spec_hash", "")) != spec_hash(spec):
        return False
    return _sha256(path) == row.get("weights_sha256")


class _Data:
    """Training sets rendered once (kept in memory, and on disk under :func:`data_cache_dir`)."""

    def __init__(self, disk: bool = True):
        self.cache = {}
        self.disk = disk

    def _path(self, name: str) -> Path:
        from clipsafety.synth import GENERATOR_VERSION

        return data_cache_dir() / f"{name}.v{GENERATOR_VERSION}.{set_key(name)[:12]}.npz"

    def get(self, name: str):
        if name not in self.cache:
            path = self._path(name)
            if self.disk and path.exists():
                with np.load(path) as z:
                    self.cache[name] = (None, z["images"], z["targets"], z["subtype"])
                    self.cache[name + "#tok"] = _torch().from_numpy(z["tokens"].astype(np.int64))
                return self.cache[name]
            from clipsafety.synth import WordTokenizer, get_dataset

            t = time.time()
            ds = get_dataset(name)
            imgs, y, _ = ds.arrays()
            sub = ds.attributes()["subtype"].to_numpy()
            self.cache[name] = (ds, imgs, y, sub)
            self.cache[name + "#tok"] = WordTokenizer(16)(ds.captions())
            print(f"   rendered {name}: {len(imgs)} images in {time.time() - t:.1f}s", flush=True)
            if self.disk:
                from clipsafety.files import atomic_write

                tokens = self.cache[name + "#tok"].numpy().astype(np.int16)
                atomic_write(path, lambda tmp: np.savez(tmp, images=imgs, targets=y, subtype=sub,
                                                        tokens=tokens), suffix=".npz")
        return self.cache[name]

    def tokens(self, name: str):
        self.get(name)
        return self.cache[name + "#tok"]


def _save(model_id: str, module, meta: dict, out: Path) -> str:
    from safetensors.torch import save

    from clipsafety.files import atomic_write_bytes

    torch = _torch()
    state = {k: (v.detach().to(torch.float16) if v.is_floating_point() else v.detach()).contiguous()
             for k, v in module.state_dict().items()}
    path = out / "weights" / f"{model_id}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    # wall-clock seconds live in the catalog, not the file: the file (and its sha256) is a
    # function of the plan entry alone
    file_meta = {k: v for k, v in meta.items() if k != "train_seconds"}
    # safetensors' save_file creates its file 0600 whatever the umask; the same bytes written
    # atomically honour the umask (a group can share a retrained zoo) and a killed run never
    # leaves a torn weights file
    atomic_write_bytes(path, save(state, metadata={"clipsafety": json.dumps(file_meta)}))
    from clipsafety.zoo import _sha256

    return _sha256(path)


def train_one(spec: dict, data: _Data, out: Path, progress: bool = True) -> dict:
    """Train one plan entry, save it, return its catalog row (without accuracies)."""
    import timm

    import clipsafety.zoo.arch  # noqa: F401
    from clipsafety.synth import CATEGORIES, VOCAB
    from clipsafety.zoo import _read, zero_shot_head
    from clipsafety.zoo.arch import clip_config

    torch = _torch()
    torch.manual_seed(spec["seed"])
    kind, arch = spec["kind"], spec["arch"]
    # the supervised recipe (and the fine-tunes' base): 3e-3, 1e-3 for the ViT; CLIPs carry
    # theirs in the plan entry (:data:`clipsafety.zoo.plan.CLIP_RECIPE`)
    lr = spec.get("lr", 1e-3 if "vit" in arch else 3e-3)
    t0 = time.time()
    meta = {"id": spec["id"], "kind": kind, "arch": arch, "n_classes": 10,
            "train_set": spec["train_set"], "seed": spec["seed"], "samples_seen": spec["samples_seen"]}
    losses = []
    if kind == "sup":
        _, imgs, y, _ = data.get(spec["train_set"])
        module = timm.create_model(arch, num_classes=10)
        losses = train_classifier(module, imgs, y, spec["samples_seen"], spec["seed"], lr=lr,
                                  desc=spec["id"], progress=progress)
    elif kind == "clip":
        _, imgs, _, _ = data.get(spec["train_set"])
        cfg = clip_config(arch, vocab_size=len(VOCAB))
        module = build_clip_seeded(cfg, spec["seed"])
        losses = train_clip(module, imgs, data.tokens(spec["train_set"]), spec["samples_seen"],
                            spec["seed"], lr=lr, batch=spec.get("batch", 256), desc=spec["id"],
                            progress=progress)
        meta["clip_config"] = cfg
    else:
        pstate, pmeta, _ = _read(spec["parent"])
        cfg = pmeta["clip_config"]
        meta["clip_config"] = cfg
        meta["parent"] = spec["parent"]
        clip, _ = _clip_from(pmeta, pstate)
        _, FT = _ft_class()
        ft_lr = (1e-3 if "vit" in arch else 3e-3) / 3
        if kind == "ft2":
            from clipsafety.synth import SUBTYPES

            sub_names = [f"{s} {c}" for c in CATEGORIES for s in SUBTYPES[c]]
            _, imgs1, y1, sub1 = data.get("train-labelled-100k")
            m1 = FT(clip.visual, 30, cfg["embed_dim"])
            _init_head(m1, zero_shot_head(clip, "default", sub_names), float(clip.logit_scale.detach().exp()))
            n1 = int(spec["samples_seen"] * FT2_BUDGET[0] / sum(FT2_BUDGET))
            losses = train_classifier(m1, imgs1, y1 * 3 + sub1, n1, spec["seed"], lr=ft_lr,
                                      desc=spec["id"] + " (sub-types)", progress=progress)
        module = FT(clip.visual, 10, cfg["embed_dim"])
        _init_head(module, zero_shot_head(clip, "default"), float(clip.logit_scale.detach().exp()))
        _, imgs, y, _ = data.get("train-labelled-30k")
        n2 = spec["samples_seen"] - (n1 if kind == "ft2" else 0)
        losses += train_classifier(module, imgs, y, n2, spec["seed"] + 1, lr=ft_lr,
                                   desc=spec["id"], progress=progress)
    meta["loss_first"] = float(np.mean(losses[:10]))
    meta["loss_last"] = float(np.mean(losses[-10:]))
    meta["train_seconds"] = round(time.time() - t0, 1)
    sha = _save(spec["id"], module, meta, out)
    params = sum(p.numel() for p in module.parameters())
    print(f"   {spec['id']}: loss {meta['loss_first']:.3f} -> {meta['loss_last']:.3f}, "
          f"{meta['train_seconds']}s", flush=True)
    src = source_of(spec["train_set"]) if kind in ("sup", "clip") else None
    if src is None:
        src = source_of(PLAN_BY_ID[spec["parent"]]["train_set"])
    n_samples = int(_n_of(spec["train_set"]))
    return {"id": spec["id"], "group": spec["group"], "family": spec["family"], "source": src,
            "samples": n_samples, "resolution": 32, "objective": "contrastive" if kind == "clip" else "cross-entropy",
            "kind": kind, "arch": arch, "train_set": spec["train_set"], "samples_seen": spec["samples_seen"],
            "seed": spec["seed"], "matched_pair": spec["matched_pair"], "parent": spec["parent"],
            "reference": spec["reference"], "params": params, "weights_sha256": sha,
            "loss_first": meta["loss_first"], "loss_last": meta["loss_last"],
            "train_seconds": meta["train_seconds"], "spec_hash": spec_hash(spec)}


PLAN_BY_ID = {m["id"]: m for m in PLAN}


def _n_of(train_set: str) -> int:
    from clipsafety.zoo.plan import N_TRAIN

    return sum(N_TRAIN[t.split("-")[-1]] for t in train_set.split(">"))


def build_clip_seeded(cfg: dict, seed: int):
    from clipsafety.zoo import build_clip

    torch = _torch()
    torch.manual_seed(seed)
    return build_clip(cfg)


def _clip_from(meta, state):
    from clipsafety.zoo import build_clip

    clip = build_clip(meta["clip_config"])
    clip.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
    return clip.eval(), None


def _ft_class():
    from clipsafety.zoo import _modules

    _, Z, F = _modules()
    return Z, F


def _init_head(module, W, scale: float):
    torch = _torch()
    with torch.no_grad():
        module.head.weight.copy_(scale * W.T)
        module.head.bias.zero_()


def evaluate(model_id: str, sets=EVAL_SETS) -> dict:
    """Accuracy of a saved zoo model on each set, logits restricted to the set's label subset."""
    from clipsafety.synth import get_dataset
    from clipsafety.synth.datasets import synth_set
    from clipsafety.zoo import load, predict_arrays
    from clipsafety.zoo.reference import reference_scorer

    m = load(model_id)
    out = {}
    for s in sets:
        # a set filtered by a reference model gets this zoo's reference (``--out`` trials
        # filter with their own), not the committed kept ids
        ds = get_dataset(s, reference=reference_scorer()) if "reference" in synth_set(s).options \
            else get_dataset(s)
        imgs, y, _ = ds.arrays()
        logits = predict_arrays(m, imgs)
        if ds.label_subset is not None:
            mask = np.full(logits.shape[1], -np.inf)
            mask[ds.label_subset] = 0
            logits = logits + mask
        out[s] = float((logits.argmax(1) == y).mean())
    return out


def write_card(row: dict, acc: dict, out: Path) -> None:
    lines = [f"# zoo:{row['id']}", "",
             (f"- group: {row['group']}; family: {row['family']}; architecture: `{row['arch']}` "
              f"({row['params']:,} parameters)"),
             (f"- objective: {row['objective']} ({row['kind']}); training set: `{row['train_set']}` "
              f"(source {row['source']}, {row['samples']:,} samples, {row['samples_seen']:,} seen)"),
             f"- seed: {row['seed']}; resolution: 32x32; weights sha256: `{row['weights_sha256']}`"]
    if row["parent"]:
        lines.append(f"- fine-tuned from: zoo:{row['parent']}")
    if row["matched_pair"]:
        lines.append(f"- matched pairs: {row['matched_pair']}")
    if row["reference"]:
        lines.append("- reference model (held out; used to filter synth:shift-adversarial; "
                     "excluded from the groups)")
    lines.append(f"- training loss: {row['loss_first']:.3f} -> {row['loss_last']:.3f} "
                 f"in {row['train_seconds']} s")
    lines += ["", "| set | accuracy |", "|---|---|"]
    lines += [f"| synth:{k} | {v:.3f} |" for k, v in acc.items()]
    (out / "cards").mkdir(parents=True, exist_ok=True)
    (out / "cards" / f"{row['id']}.md").write_text("\n".join(lines) + "\n")


# ------------------------------------------------------------------ parallel workers
_WORKER_DATA: _Data | None = None


def _worker_init(threads: int, zoo: str) -> None:
    import os

    os.environ["CLIPSAFETY_ZOO"] = zoo
    torch = _torch()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def _render_job(name: str) -> str:
    global _WORKER_DATA
    if _WORKER_DATA is None:
        _WORKER_DATA = _Data()
    _WORKER_DATA.get(name)
    _WORKER_DATA.cache.clear()  # the training jobs read it back from disk
    return name


def _train_job(spec: dict, progress: bool) -> tuple[dict, dict]:
    """Train, save and evaluate one model in a worker (single-threaded, seeded per model)."""
    global _WORKER_DATA
    from clipsafety.zoo import ZOO_DIR, _read, zoo_dir

    if _WORKER_DATA is None:
        _WORKER_DATA = _Data()
    row = train_one(spec, _WORKER_DATA, zoo_dir(), progress=progress)
    _read.cache_clear()
    acc = evaluate(spec["id"])
    if spec["reference"] and zoo_dir().resolve() == ZOO_DIR.resolve():
        # the committed kept ids of the A-like set follow the reference model of data/zoo
        # (computed here, with the same threads as the evaluation above)
        from clipsafety.zoo.reference import write_adversarial_ids

        print(f"   wrote {write_adversarial_ids(spec['id'])}", flush=True)
    return row, acc


#: catalog fields that come from the plan entry but not into the weights (no retrain)
_META_FIELDS = ("group", "matched_pair")


def _write_catalog(rows: dict, cat_path: Path) -> None:
    order = [m["id"] for m in PLAN]
    cat = pd.DataFrame([rows[k] for k in order if k in rows])
    first = ["id", "group", "family", "source", "samples", "resolution", "objective", "arch",
             "train_set", "id_acc", "seed", "matched_pair", "parent", "reference"]
    cat = cat[first + [c for c in cat.columns if c not in first]]
    cat.to_csv(cat_path, index=False, float_format="%.4f")


def _refresh_meta(ids, rows: dict, evals: pd.DataFrame, out: Path, cat_path: Path) -> None:
    """Copy the plan's group and matched pairs into the catalog rows and cards of ``ids``."""
    for k in ids:
        rows[k].update({f: PLAN_BY_ID[k][f] for f in _META_FIELDS})
        e = evals[evals["id"] == k]
        acc = dict(zip(e["dataset"].str.removeprefix("synth:"), e["accuracy"]))
        write_card(rows[k], {s: acc[s] for s in EVAL_SETS if s in acc}, out)
    _write_catalog(rows, cat_path)


def _sets_of(spec: dict) -> list[str]:
    if spec["kind"] in ("sup", "clip"):
        return [spec["train_set"]]
    return ["train-labelled-30k"] + (["train-labelled-100k"] if spec["kind"] == "ft2" else [])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Retrain the tiny model zoo from seeds.")
    ap.add_argument("--only", nargs="*", help="train only these ids (others keep their files)")
    ap.add_argument("--out", default=None, help="output directory (default data/zoo)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--jobs", type=int, default=2,
                    help="worker processes (each model is trained by one single-threaded, "
                         "seeded worker, so the weights do not depend on --jobs)")
    ap.add_argument("--all", action="store_true",
                    help="retrain every entry (default: only the entries whose plan entry or "
                         "training data changed since they were trained, or whose weights are "
                         "missing; see spec_hash)")
    ap.add_argument("--skip-existing", action="store_true",
                    help="keep every model that has weights, even if its plan entry changed")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply every training budget (for quick trials; the zoo uses 1)")
    args = ap.parse_args(argv)
    import multiprocessing as mp
    import os
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from clipsafety.zoo import zoo_dir

    if args.out:
        os.environ["CLIPSAFETY_ZOO"] = str(Path(args.out).resolve())
    out = zoo_dir()
    out.mkdir(parents=True, exist_ok=True)
    plan = [dict(m, samples_seen=int(m["samples_seen"] * args.scale)) for m in PLAN
            if not args.only or m["id"] in args.only]
    cat_path, eval_path = out / "catalog.csv", out / "eval.csv"
    # empty text cells read as "" (not NaN): rows compare equal to plan entries and cards
    rows = ({r["id"]: r for r in pd.read_csv(cat_path, keep_default_na=False).to_dict("records")}
            if cat_path.exists() else {})
    evals = pd.read_csv(eval_path) if eval_path.exists() else pd.DataFrame(columns=["id", "dataset", "accuracy"])
    if args.skip_existing:
        plan = [m for m in plan if not ((out / "weights" / f"{m['id']}.safetensors").exists() and m["id"] in rows)]
    elif not args.all and not args.only and args.scale == 1.0:
        kept = [m["id"] for m in plan if unchanged(m, rows, out)]
        plan = [m for m in plan if m["id"] not in kept]
        print(f"== {len(kept)} of {len(kept) + len(plan)} entries are current (plan entry and "
              f"data unchanged); training {len(plan)} (--all retrains every one)", flush=True)
        # what the weights do not depend on (group, matched pairs) follows the plan
        stale = [k for k in kept if any(rows[k].get(f) != PLAN_BY_ID[k][f] for f in _META_FIELDS)]
        if stale:
            _refresh_meta(stale, rows, evals, out, cat_path)
            print(f"== refreshed the catalog rows and cards of {stale} from the plan", flush=True)
    todo = {m["id"]: m for m in plan}
    # the reference model filters synth:shift-adversarial, which every evaluation uses: it
    # trains first; a fine-tuned model waits for its CLIP parent
    ref_ids = [k for k, m in todo.items() if m["reference"]]
    t_all = time.time()
    n_total, n_done = len(plan), 0

    def record(row: dict, acc: dict) -> None:
        nonlocal evals, n_done
        n_done += 1
        row["id_acc"] = acc["id-test"]
        rows[row["id"]] = row
        write_card(row, acc, out)
        evals = evals[evals["id"] != row["id"]]
        evals = pd.concat([evals, pd.DataFrame({"id": row["id"], "dataset": [f"synth:{k}" for k in acc],
                                                "accuracy": list(acc.values())})])
        _write_catalog(rows, cat_path)
        evals.sort_values(["id", "dataset"]).to_csv(eval_path, index=False, float_format="%.4f")
        print(f"[{n_done}/{n_total}] {row['id']}: {row['train_seconds']}s, loss "
              f"{row['loss_first']:.3f} -> {row['loss_last']:.3f}; acc "
              + ", ".join(f"{k}={v:.3f}" for k, v in acc.items())
              + f"  (t={time.time() - t_all:.0f}s)", flush=True)

    failed: list[str] = []
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=ctx, initializer=_worker_init,
                             initargs=(args.threads, str(out))) as pool:
        running = {}
        for k in ref_ids:
            running[pool.submit(_train_job, todo.pop(k), not args.no_progress)] = k
        sets = []
        for m in todo.values():
            sets += [s for s in _sets_of(m) if s not in sets]
        for s in sets:
            running[pool.submit(_render_job, s)] = "render:" + s
        # longest first among the ready ones (CLIP parents early, then supervised, then fine-tunes)
        prio = {"clip": 0, "sup": 1, "ft2": 2, "ft": 3}
        queue = sorted(todo.values(), key=lambda m: (prio[m["kind"]], -m["samples_seen"]))
        while running or queue:
            ready_refs = not any(v in ref_ids for v in running.values())
            while ready_refs and queue and sum(not v.startswith("render:") for v in running.values()) < args.jobs:
                # a spec leaves ``todo`` when recorded: a parent not in ``todo`` is trained
                nxt = next((m for m in queue if not m["parent"] or m["parent"] not in todo), None)
                if nxt is None:
                    break
                queue.remove(nxt)
                print(f"   start {nxt['id']} ({nxt['kind']}, {nxt['arch']}, {nxt['train_set']}, "
                      f"{nxt['samples_seen']} samples seen) t={time.time() - t_all:.0f}s", flush=True)
                running[pool.submit(_train_job, nxt, not args.no_progress)] = nxt["id"]
            if not running:
                raise RuntimeError(f"zoo plan cannot proceed: waiting on {[m['id'] for m in queue]}")
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for f in done:
                name = running.pop(f)
                try:
                    res = f.result()
                except Exception as err:  # noqa: BLE001  (any failure of one model: report, go on)
                    failed.append(name)
                    todo.pop(name, None)
                    queue[:] = [m for m in queue if m["parent"] != name]
                    print(f"   FAILED {name}: {type(err).__name__}: {err}", flush=True)
                    continue
                if name.startswith("render:"):
                    print(f"   cached {name[7:]} t={time.time() - t_all:.0f}s", flush=True)
                    continue
                record(*res)
                todo.pop(name, None)
    summary(out)
    print(f"done in {time.time() - t_all:.0f}s", flush=True)
    if failed:
        print(f"failed: {failed} (rerun with --only {' '.join(failed)})", flush=True)
        return 1
    return 0


def summary(out: Path) -> pd.DataFrame:
    """Print the zoo's mean accuracy per set and the drop against the ID test set."""
    ev = pd.read_csv(out / "eval.csv")
    cat = pd.read_csv(out / "catalog.csv")
    ev = ev[ev["id"].isin(cat.loc[cat["reference"] == 0, "id"])]
    mean = ev.groupby("dataset")["accuracy"].mean()
    idm = mean.get("synth:id-test", np.nan)
    tab = pd.DataFrame({"mean_accuracy": mean, "drop_vs_id": idm - mean})
    print(tab.round(3).to_string(), flush=True)
    return tab


if __name__ == "__main__":
    raise SystemExit(main())
