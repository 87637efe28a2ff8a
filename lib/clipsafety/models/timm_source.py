"""``timm:`` ids: timm image classifiers (the module is not named ``timm`` so as not to shadow it).

- ``timm:NAME``         timm model with its pretrained weights (``resnet50.a1_in1k``;
  ``resnet50`` means timm's default tag)
- ``timm:NAME@random``  randomly initialised (seed 0)
- ``timm:NAME@/path``   a local checkpoint

Classifiers have no text head: ``classnames``, ``templates`` and ``logit_scale`` are ignored.
Metadata comes from the real catalog (``data/catalog/models.csv``).
"""

from __future__ import annotations

from clipsafety.models import _hub as hub
from clipsafety.models._registry import ModelSource, ModelSpec, UnknownModel, register_source
from clipsafety.models._registry import _suggest_text as suggest_text
from clipsafety.records import LoadedModel


@register_source
class TimmSource(ModelSource):
    """timm models: pretrained weights by name, local checkpoints or seeded random init."""

    prefix = "timm"
    catalog = "real"
    id_forms = ("timm:NAME", "timm:NAME@random", "timm:NAME@/path")

    def candidates(self) -> list[str]:
        import timm

        return [f"timm:{n}" for n in timm.list_models(pretrained=True)]

    def is_known(self, spec: ModelSpec) -> bool:
        import timm

        if spec.tag == "random" or hub._is_path(spec.tag):
            return timm.is_model(spec.name.split(".")[0])
        return spec.tag is None and _timm_pretrained_exists(spec.name)

    def load(self, spec: ModelSpec, device: str = "cpu", *, classnames=None, templates="openai",
             logit_scale=None, image_size=None) -> LoadedModel:
        return _load_timm(spec, device, image_size)

    def describe(self, spec: ModelSpec, *, classnames=None, templates="openai", logit_scale=None,
                 image_size=None) -> LoadedModel | None:
        return _load_timm(spec, "cpu", image_size, describe=True)


def _load_timm(spec: ModelSpec, device, image_size, describe: bool = False):
    """The loaded model; ``describe=True``: the same without weights (``module=None``, for the
    store key: the architecture built on the meta device for its data config and classes,
    nothing downloaded or initialised; ``None`` where that is not possible)."""
    model_id, name, tag = spec.id, spec.name, spec.tag
    online = hub._prepare_hub()
    import timm

    base = name.split(".")[0]
    if not timm.is_model(base):
        raise UnknownModel(f"{model_id}: timm has no model {base!r}.{suggest_text(model_id)}")
    kw = {}
    if image_size and any(k in base for k in ("vit", "deit", "eva", "beit", "swin")):
        kw["img_size"] = image_size
    if describe:
        return _describe_timm(spec, base, kw, image_size)
    if tag == "random":
        weights = {"source": "random", "seed": 0}
        model = hub._seeded(lambda: timm.create_model(name, pretrained=False, **kw))
    elif hub._is_path(tag):
        path = hub.checkpoint_path(model_id, tag, "a timm state dict (.pth/.safetensors)")
        weights = {"source": "checkpoint", "file": path.name, "sha256": hub.file_sha256(path)}
        with hub._checkpoint_errors(model_id, path, base):
            model = build_pretrained(name, pretrained_cfg_overlay={"file": str(path)}, **kw)
        hub.check_loaded_weights(model_id, path, model)
    elif tag is not None:
        raise UnknownModel(f"{model_id}: after '@' expected 'random' or a checkpoint path; timm "
                           f"pretrained tags go after a dot, e.g. timm:{base}.a1_in1k.")
    else:
        if not _timm_pretrained_exists(name):
            raise UnknownModel(f"{model_id}: timm has no pretrained weights {name!r}.{suggest_text(model_id)}")
        pcfg = timm.models.get_pretrained_cfg(name) if "." in name else None
        weights = {"source": "timm", "name": name,
                   "hf_hub_id": getattr(pcfg, "hf_hub_id", None) if pcfg else None}
        try:
            model = build_pretrained(name, **kw)
        except Exception as e:
            raise hub._unavailable(model_id, "timm", name, e, online) from e
        weights["pretrained_cfg"] = {k: v for k, v in model.pretrained_cfg.items()
                                     if k in ("hf_hub_id", "tag", "url", "file")}
    model = model.to(device).eval()
    return _loaded(spec, base, model, weights, image_size)


def build_pretrained(name: str, **kw):
    """``timm.create_model(name, pretrained=True, **kw)`` (timm's pretrained weights, or a file
    through ``pretrained_cfg_overlay``) built without the random initialisation the weights
    replace (:mod:`clipsafety.models._build`); the ordinary build where that leaves a tensor
    unloaded (a classifier of another size than the checkpoint's)."""
    import timm

    from clipsafety.models._build import NotMaterialised, materialised, weights_without_init

    with weights_without_init() as kept:
        model = timm.create_model(name, pretrained=True, **kw)
    try:
        materialised(model, kept)
    except NotMaterialised:
        model = timm.create_model(name, pretrained=True, **kw)
    return model


def _loaded(spec: ModelSpec, base: str, model, weights: dict, image_size) -> LoadedModel:
    from timm.data import create_transform, resolve_data_config

    cfg = resolve_data_config({}, model=model)
    if image_size:
        cfg["input_size"] = (3, image_size, image_size)
    transform = create_transform(**cfg)
    classes, label_space = _timm_classes(model)
    policy = {"kind": "classifier"}
    manifest = {"model_id": spec.id, "family": "timm", "arch": base, "weights": weights,
                "preprocessing": hub.describe_transform(transform),
                "head": {"kind": "classifier", "label_space": label_space,
                         "n_classes": len(classes)},
                "logit_policy": policy}
    return LoadedModel(model_id=spec.id, module=model, transform=transform, classes=classes,
                       logit_policy=policy, manifest=manifest, label_space=label_space,
                       extra={"data_config": cfg}, spec=spec)


def _describe_timm(spec: ModelSpec, base: str, kw: dict, image_size) -> LoadedModel | None:
    """:func:`_load_timm`'s manifest without weights: ``@random`` and ``@/checkpoint`` (its
    digest) ids, the architecture built on the meta device (no memory, no random
    initialisation) for its data config and classes. Pretrained ids (weights named by timm's
    tag, whose resolution needs the hub) return ``None``: they are loaded."""
    import timm
    import torch

    name, tag = spec.name, spec.tag
    if tag == "random":
        weights = {"source": "random", "seed": 0}
        overlay = {}
    elif hub._is_path(tag):
        path = hub.checkpoint_path(spec.id, tag, "a timm state dict (.pth/.safetensors)")
        weights = {"source": "checkpoint", "file": path.name, "sha256": hub.file_sha256(path)}
        overlay = {"pretrained_cfg_overlay": {"file": str(path)}}
    else:
        return None
    try:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False, **overlay, **kw)
    except Exception:  # noqa: BLE001 - an architecture that needs real tensors to build
        return None
    out = _loaded(spec, base, model, weights, image_size)
    out.module = None
    return out


def _timm_pretrained_exists(name: str) -> bool:
    """``resnet50.a1_in1k`` is listed; ``resnet50`` means timm's default tag of that model."""
    import timm

    if "." in name:
        return name in set(timm.list_pretrained(name.split(".")[0] + ".*"))
    return bool(timm.list_pretrained(name + ".*"))


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
