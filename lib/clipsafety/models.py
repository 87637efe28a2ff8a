"""Load any model the book studies by a string id: ``clipsafety.load("openclip:ViT-B-32@...")``.

Ids (ARCHITECTURE.md):

- ``openclip:ARCH@TAG``     open_clip pretrained tag (``open_clip.list_pretrained()``)
- ``openclip:ARCH@/path``   open_clip architecture with a local checkpoint
- ``openclip:ARCH@random``  randomly initialised (seed 0: the same weights every time)
- ``timm:NAME``             timm model with its pretrained weights (``resnet50.a1_in1k``)
- ``timm:NAME@random`` / ``timm:NAME@/path``  random init (seed 0) / local checkpoint
- ``zoo:ID``                the project's tiny models (:func:`clipsafety.zoo.load`)

The returned :class:`~clipsafety.records.LoadedModel` carries its transform, classes, label
space and logit policy, so inference has no per-family cases. CLIP models get a zero-shot
head (:mod:`clipsafety.heads`) over ``classnames`` (default ImageNet-1k) with ``templates``
(default the 80 OpenAI templates), built lazily on first use.

Offline behaviour: before huggingface_hub is first used we test the hub once per process
(a 2.5 s socket connect to ``huggingface.co:443``; ``CLIPSAFETY_OFFLINE=1``/``0`` overrides,
and ``HF_HUB_OFFLINE=1`` is honoured). When offline, ``HF_HUB_OFFLINE=1`` is set (and
patched into an already imported huggingface_hub), so a missing pretrained file fails at
once with :class:`WeightsUnavailable` instead of retrying for ~46 s. Online, downloads
work as usual.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from clipsafety.external import sha256_file as file_sha256
from clipsafety.records import LoadedModel

HUB_HOST = ("huggingface.co", 443)
_HUB_ONLINE: bool | None = None


class WeightsUnavailable(RuntimeError):
    """Pretrained weights could neither be found in the local cache nor downloaded."""


class UnknownModel(ValueError):
    """A model id that matches no open_clip tag, timm model or zoo entry."""


def _truthy(v: str | None) -> bool:
    return str(v).strip().lower() in {"1", "true", "yes", "on"}


def hub_online(timeout: float = 2.5) -> bool:
    """Whether the Hugging Face hub is reachable; decided once per process.

    ``CLIPSAFETY_OFFLINE`` (1/0) overrides; ``HF_HUB_OFFLINE=1`` means offline.
    """
    global _HUB_ONLINE
    env = os.environ.get("CLIPSAFETY_OFFLINE")
    if env is not None and env.strip() != "":
        return not _truthy(env)
    if _truthy(os.environ.get("HF_HUB_OFFLINE")):
        return False
    if _HUB_ONLINE is None:
        try:
            socket.create_connection(HUB_HOST, timeout=timeout).close()
            _HUB_ONLINE = True
        except OSError:
            _HUB_ONLINE = False
    return _HUB_ONLINE


def _prepare_hub() -> bool:
    """Set offline mode for huggingface_hub when the hub is unreachable; return online-ness."""
    online = hub_online()
    if not online:
        os.environ["HF_HUB_OFFLINE"] = "1"
        if "huggingface_hub" in sys.modules:  # imported before us: patch the read-once constant
            import huggingface_hub.constants as hc

            hc.HF_HUB_OFFLINE = True
    return online


def parse_model_id(model_id: str) -> tuple[str, str, str | None]:
    """``"openclip:ViT-B-32@laion2b_s34b_b79k"`` -> ``("openclip", "ViT-B-32", "laion2b_s34b_b79k")``."""
    if ":" not in model_id:
        raise UnknownModel(
            f"model id {model_id!r} has no prefix; expected 'openclip:ARCH@TAG', 'timm:NAME' "
            f"or 'zoo:ID'.{_suggest_text(model_id)}"
        )
    kind, rest = model_id.split(":", 1)
    if kind not in {"openclip", "timm", "zoo"}:
        raise UnknownModel(
            f"model id {model_id!r}: unknown prefix {kind!r}; expected openclip:, timm: or zoo:."
            f"{_suggest_text(model_id)}"
        )
    name, _, tag = rest.partition("@")
    return kind, name, (tag or None)


def candidate_ids(include_zoo: bool = True) -> list[str]:
    """All ids a user could mean: open_clip tags, timm pretrained models, zoo models."""
    import open_clip
    import timm

    ids = [f"openclip:{a}@{t}" for a, t in open_clip.list_pretrained()]
    ids += [f"timm:{n}" for n in timm.list_models(pretrained=True)]
    if include_zoo:
        try:
            from clipsafety.catalog import list_models

            ids += [m if m.startswith("zoo:") else f"zoo:{m}" for m in list_models("zoo")]
        except (FileNotFoundError, ValueError):  # no zoo catalog (yet): nothing to suggest from it
            pass
    return ids


def suggest(model_id: str, n: int = 5) -> list[str]:
    """The ``n`` valid ids nearest to ``model_id`` (difflib)."""
    cands = candidate_ids()
    near = difflib.get_close_matches(model_id, cands, n=n, cutoff=0.5)
    if not near and ":" in model_id:
        near = difflib.get_close_matches(model_id.split(":", 1)[1],
                                         [c.split(":", 1)[1] for c in cands], n=n, cutoff=0.5)
        near = [c for c in cands if c.split(":", 1)[1] in set(near)][:n]
    return near


def _suggest_text(model_id: str) -> str:
    near = suggest(model_id)
    return f" Did you mean {', '.join(near)}?" if near else ""


def describe_transform(transform) -> str:
    """A stable text form of a transform (memory addresses removed) for the cache key."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(transform))


def _is_path(tag: str | None) -> bool:
    return bool(tag) and (tag.startswith(("/", "./", "../", "~")) or os.sep in tag
                          or tag.endswith((".pt", ".pth", ".bin", ".safetensors", ".ckpt")))


def _unavailable(model_id: str, kind: str, name: str, err: Exception, online: bool) -> WeightsUnavailable:
    why = ("the Hugging Face hub is unreachable (offline mode, HF_HUB_OFFLINE=1)" if not online
           else "the download failed")
    example = (f"clipsafety.load('openclip:{name}@/path/to/open_clip_pytorch_model.bin')"
               if kind == "openclip" else f"clipsafety.load('timm:{name}@/path/to/model.safetensors')")
    return WeightsUnavailable(
        f"{model_id}: pretrained weights are not in the local cache and {why} "
        f"({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}). "
        f"Copy the checkpoint from a machine with network access and pass it as a local "
        f"checkpoint, e.g. {example}, or pre-populate ~/.cache/huggingface."
    )


@contextlib.contextmanager
def _fetch_errors(model_id: str, kind: str, name: str, online: bool, what: str = "weights"):
    """Turn a hub fetch failure (tokenizer, HF text tower, config) into WeightsUnavailable;
    any other error passes through unchanged."""
    try:
        yield
    except Exception as e:
        mod = type(e).__module__ or ""
        fetch = mod.startswith(("huggingface_hub", "requests", "urllib", "httpx")) or (
            isinstance(e, OSError) and not isinstance(e, FileNotFoundError)) or "offline" in str(e).lower()
        if not fetch:
            raise
        err = _unavailable(model_id, kind, name, e, online)
        if what != "weights":
            err = WeightsUnavailable(str(err).replace("pretrained weights are", f"the {what} files are"))
        raise err from e


def load(model_id: str, device: str = "cpu", *, classnames: str | Sequence[str] | None = None,
         templates: str | Sequence[str] = "openai", logit_scale: float | None = None,
         image_size: int | None = None) -> LoadedModel:
    """Load a model by id (see module docstring) onto ``device``.

    classnames, templates, logit_scale: the zero-shot head of CLIP models (ignored by
    classifiers): label space name (``"imagenet-1k"``, ``"cue-conflict-16"``) or a list;
    template set name, list or file; ``None`` = the model's own ``exp(logit_scale)``.
    image_size: override the input resolution (pipeline tests and benchmarks).
    """
    if isinstance(model_id, LoadedModel):
        return model_id
    kind, name, tag = parse_model_id(model_id)
    if kind == "zoo":
        from clipsafety import zoo  # written by the zoo issue; imported lazily

        kw = {}
        if classnames is not None:
            kw["classnames"] = classnames
        if templates != "openai":
            kw["templates"] = templates
        return zoo.load(name, device=device, **kw)
    if kind == "openclip":
        return _load_openclip(model_id, name, tag, device, classnames, templates, logit_scale,
                              image_size)
    return _load_timm(model_id, name, tag, device, image_size)


def _seeded(fn):
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return fn()


def _load_openclip(model_id, arch, tag, device, classnames, templates, logit_scale, image_size):
    online = _prepare_hub()
    import open_clip

    from clipsafety.heads import resolve_classnames, resolve_templates

    if arch not in open_clip.list_models():
        raise UnknownModel(f"{model_id}: open_clip has no architecture {arch!r}.{_suggest_text(model_id)}")
    if tag is None:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise UnknownModel(f"{model_id}: give weights after '@': a pretrained tag {tags[:8]}, "
                           "'random', or a checkpoint path.")
    resolve_classnames(classnames), resolve_templates(templates)  # bad input fails before loading
    kw = {"force_image_size": image_size} if image_size else {}
    if tag == "random":
        weights = {"source": "random", "seed": 0}
        with _fetch_errors(model_id, "openclip", arch, online):  # HF text towers/configs
            model, _, preprocess = _seeded(
                lambda: open_clip.create_model_and_transforms(arch, pretrained=None, **kw))
    elif _is_path(tag):
        path = Path(tag).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{model_id}: checkpoint {str(path)!r} does not exist; expected a "
                                    "file saved by open_clip (state dict, .pt/.bin/.safetensors).")
        weights = {"source": "checkpoint", "file": path.name, "sha256": file_sha256(path)}
        with _fetch_errors(model_id, "openclip", arch, online):
            model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=str(path), **kw)
    else:
        if tag not in open_clip.list_pretrained_tags_by_model(arch):
            raise UnknownModel(f"{model_id}: open_clip has no pretrained tag {tag!r} for {arch}."
                               f"{_suggest_text(model_id)}")
        cfg = open_clip.get_pretrained_cfg(arch, tag)
        weights = {"source": "open_clip", "tag": tag, "hf_hub": cfg.get("hf_hub", ""),
                   "url": cfg.get("url", "")}
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=tag, **kw)
        except Exception as e:
            raise _unavailable(model_id, "openclip", arch, e, online) from e
    model = model.to(device).eval()
    with _fetch_errors(model_id, "openclip", arch, online, what="tokenizer"):
        tokenizer = open_clip.get_tokenizer(arch)
    base = LoadedModel(model_id=model_id, module=None, transform=preprocess, classes=[],
                       logit_policy={}, manifest={"model_id": model_id, "family": "openclip",
                                                  "arch": arch, "weights": weights,
                                                  "preprocessing": describe_transform(preprocess)},
                       extra={"tokenizer": tokenizer, "arch": arch, "clip": model,
                              "image_size": image_size})
    return with_head(base, classnames=classnames, templates=templates, logit_scale=logit_scale)


def with_head(loaded: LoadedModel, classnames: str | Sequence[str] | None = None,
              templates: str | Sequence[str] = "openai", logit_scale: float | None = None) -> LoadedModel:
    """The same open_clip model with another zero-shot head (no reloading of weights).

    For prompt and label-space ablations: ``with_head(m, templates="simple")``. The head is
    built lazily; the manifest (and so the store key) records names, templates and policy."""
    from clipsafety.heads import (
        ZeroShotHead,
        head_cache_key,
        head_spec,
        resolve_classnames,
        resolve_templates,
    )

    clip = loaded.extra.get("clip")
    if clip is None:
        raise TypeError(f"{loaded.model_id}: with_head needs an open_clip model loaded by "
                        "clipsafety.load('openclip:...'); this one has no CLIP text tower.")
    names, label_space = resolve_classnames(classnames)
    tmpl, tmpl_name = resolve_templates(templates)
    tokenizer = loaded.extra["tokenizer"]
    key = head_cache_key(loaded.manifest.get("weights", {}), loaded.extra.get("arch", ""),
                         {**head_spec(names, tmpl), "image_size": loaded.extra.get("image_size")})
    head = ZeroShotHead(clip, tokenizer, names, tmpl, logit_scale=logit_scale, cache_key=key)
    manifest = {k: v for k, v in loaded.manifest.items() if k not in ("head", "logit_policy")}
    manifest["head"] = {"kind": "zero-shot", "label_space": label_space, "templates": tmpl_name,
                        **head_spec(names, tmpl)}
    manifest["logit_policy"] = head.logit_policy
    return LoadedModel(model_id=loaded.model_id, module=head, transform=loaded.transform,
                       classes=names, logit_policy=head.logit_policy, manifest=manifest,
                       label_space=label_space,
                       extra={**loaded.extra, "templates": tmpl})


def _load_timm(model_id, name, tag, device, image_size):
    online = _prepare_hub()
    import timm
    from timm.data import create_transform, resolve_data_config

    base = name.split(".")[0]
    if not timm.is_model(base):
        raise UnknownModel(f"{model_id}: timm has no model {base!r}.{_suggest_text(model_id)}")
    kw = {}
    if image_size and any(k in base for k in ("vit", "deit", "eva", "beit", "swin")):
        kw["img_size"] = image_size
    if tag == "random":
        weights = {"source": "random", "seed": 0}
        model = _seeded(lambda: timm.create_model(name, pretrained=False, **kw))
    elif _is_path(tag):
        path = Path(tag).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{model_id}: checkpoint {str(path)!r} does not exist; expected a "
                                    "timm state dict (.pth/.safetensors).")
        weights = {"source": "checkpoint", "file": path.name, "sha256": file_sha256(path)}
        model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **kw)
    elif tag is not None:
        raise UnknownModel(f"{model_id}: after '@' expected 'random' or a checkpoint path; timm "
                           f"pretrained tags go after a dot, e.g. timm:{base}.a1_in1k.")
    else:
        if not _timm_pretrained_exists(name):
            raise UnknownModel(f"{model_id}: timm has no pretrained weights {name!r}.{_suggest_text(model_id)}")
        pcfg = timm.models.get_pretrained_cfg(name) if "." in name else None
        weights = {"source": "timm", "name": name,
                   "hf_hub_id": getattr(pcfg, "hf_hub_id", None) if pcfg else None}
        try:
            model = timm.create_model(name, pretrained=True, **kw)
        except Exception as e:
            raise _unavailable(model_id, "timm", name, e, online) from e
        weights["pretrained_cfg"] = {k: v for k, v in model.pretrained_cfg.items()
                                     if k in ("hf_hub_id", "tag", "url", "file")}
    model = model.to(device).eval()
    cfg = resolve_data_config({}, model=model)
    if image_size:
        cfg["input_size"] = (3, image_size, image_size)
    transform = create_transform(**cfg)
    classes, label_space = _timm_classes(model)
    policy = {"kind": "classifier"}
    manifest = {"model_id": model_id, "family": "timm", "arch": base, "weights": weights,
                "preprocessing": describe_transform(transform),
                "head": {"kind": "classifier", "label_space": label_space,
                         "n_classes": len(classes)},
                "logit_policy": policy}
    return LoadedModel(model_id=model_id, module=model, transform=transform, classes=classes,
                       logit_policy=policy, manifest=manifest, label_space=label_space,
                       extra={"data_config": cfg})


def _timm_pretrained_exists(name: str) -> bool:
    """``resnet50.a1_in1k`` is listed; ``resnet50`` means timm's default tag of that model."""
    import timm

    if "." in name:
        return name in set(timm.list_pretrained(name.split(".")[0] + ".*"))
    return bool(timm.list_pretrained(name + ".*"))


def is_known_id(model_id: str) -> bool:
    """Whether an id names something that exists (no weights are loaded or fetched)."""
    try:
        kind, name, tag = parse_model_id(model_id)
    except UnknownModel:
        return False
    if kind == "zoo":
        return model_id in set(candidate_ids())
    if kind == "openclip":
        import open_clip

        if name not in open_clip.list_models():
            return False
        return tag == "random" or _is_path(tag) or tag in open_clip.list_pretrained_tags_by_model(name)
    import timm

    if tag == "random" or _is_path(tag):
        return timm.is_model(name.split(".")[0])
    return tag is None and _timm_pretrained_exists(name)


def _timm_classes(model) -> tuple[list[str], str]:
    n = int(getattr(model, "num_classes", 0) or 0)
    if n == 1000:
        from clipsafety.heads import imagenet_classnames

        return imagenet_classnames(), "imagenet-1k"
    from timm.data import ImageNetInfo, infer_imagenet_subset

    subset = infer_imagenet_subset(model)
    if subset:
        info = ImageNetInfo(subset)
        return [info.index_to_description(i) for i in range(info.num_classes())], f"imagenet-{subset}"
    return [str(i) for i in range(n)], f"timm-{n}"


def model_metadata(models: Sequence[str]):
    """Catalog metadata for ``models`` (zoo and real catalogs); ids no catalog lists get their
    group and family from :mod:`clipsafety.groups` and ``meta_from = "id rules"``."""
    import numpy as np
    import pandas as pd

    from clipsafety.catalog import read_catalog
    from clipsafety.groups import family_of_id, group_of_id

    frames = []
    for name in ("zoo", "real"):
        try:
            cat = read_catalog(name).copy()
        except (FileNotFoundError, ValueError):  # a missing catalog: the id rules apply
            continue
        cat = cat.rename(columns={"id": "model"})
        cat["meta_from"] = f"{name} catalog"
        frames.append(cat)
    cat = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["model"])
    cat = cat.drop_duplicates("model")
    out = pd.DataFrame({"model": list(models)}).merge(cat, on="model", how="left")
    for col in ("group", "family", "source", "samples", "resolution"):
        if col not in out:
            out[col] = np.nan
    for col in ("group", "family", "meta_from"):
        out[col] = out[col].astype(object) if col in out else pd.Series([None] * len(out), dtype=object)
    missing = out["group"].isna()
    out.loc[missing, "group"] = out.loc[missing, "model"].map(group_of_id)
    out.loc[missing, "meta_from"] = "id rules"
    fam = out["family"].isna()
    out.loc[fam, "family"] = out.loc[fam, "model"].map(family_of_id)
    return out
