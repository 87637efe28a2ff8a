"""``openclip:`` ids: open_clip CLIP models with a zero-shot head.

- ``openclip:ARCH@TAG``     open_clip pretrained tag (``open_clip.list_pretrained()``)
- ``openclip:ARCH@/path``   open_clip architecture with a local checkpoint
- ``openclip:ARCH@random``  randomly initialised (seed 0: the same weights every time)

The head (:mod:`clipsafety.heads`) is built lazily over ``classnames`` (default ImageNet-1k)
with ``templates``: ``"openai"`` (the 80 OpenAI ImageNet templates, the default),
``"simple"`` (7), ``"single"``, a list of strings with one ``{}`` or a text file; anything
else raises :class:`clipsafety.heads.TemplateSetError`. Metadata comes from the real catalog
(``data/catalog/models.csv``).
"""

from __future__ import annotations

from collections.abc import Sequence

from clipsafety.models import _hub as hub
from clipsafety.models._registry import ModelSource, ModelSpec, UnknownModel, register_source
from clipsafety.models._registry import _suggest_text as suggest_text
from clipsafety.records import LoadedModel


@register_source
class OpenCLIPSource(ModelSource):
    """open_clip architectures with pretrained tags, local checkpoints or seeded random init."""

    prefix = "openclip"
    catalog = "real"
    id_forms = ("openclip:ARCH@TAG", "openclip:ARCH@/path", "openclip:ARCH@random")

    def candidates(self) -> list[str]:
        import open_clip

        return [f"openclip:{a}@{t}" for a, t in open_clip.list_pretrained()]

    def is_known(self, spec: ModelSpec) -> bool:
        import open_clip

        if spec.name not in open_clip.list_models():
            return False
        return (spec.tag == "random" or hub._is_path(spec.tag)
                or spec.tag in open_clip.list_pretrained_tags_by_model(spec.name))

    def load(self, spec: ModelSpec, device: str = "cpu", *, classnames=None, templates="openai",
             logit_scale=None, image_size=None) -> LoadedModel:
        return _load_openclip(spec, device, classnames, templates, logit_scale, image_size)

    def describe(self, spec: ModelSpec, *, classnames=None, templates="openai", logit_scale=None,
                 image_size=None) -> LoadedModel | None:
        return _describe_openclip(spec, classnames, templates, logit_scale, image_size)

    def load_for_images(self, spec: ModelSpec, device: str = "cpu", *, classnames=None,
                        templates="openai", logit_scale=None, image_size=None) -> LoadedModel:
        """The image tower alone where the head's text embeddings are on disk and the weights
        can be read tensor by tensor (:func:`_load_image_tower`); else :meth:`load`, whose head
        drops the text tower once it is built (when the first images need it)."""
        got = _load_image_tower(spec, device, classnames, templates, logit_scale, image_size)
        if got is not None:
            return got
        got = self.load(spec, device, classnames=classnames, templates=templates,
                        logit_scale=logit_scale, image_size=image_size)
        got.module.drop_text_after_build = True
        return got


def _load_openclip(spec: ModelSpec, device, classnames, templates, logit_scale, image_size):
    model_id, arch, tag = spec.id, spec.name, spec.tag
    online = hub._prepare_hub()
    import open_clip

    from clipsafety.heads import resolve_classnames, resolve_templates

    if arch not in open_clip.list_models():
        raise UnknownModel(f"{model_id}: open_clip has no architecture {arch!r}.{suggest_text(model_id)}")
    if tag is None:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise UnknownModel(f"{model_id}: give weights after '@': a pretrained tag {tags[:8]}, "
                           "'random', or a checkpoint path.")
    resolve_classnames(classnames), resolve_templates(templates, model_id)  # fail before loading
    kw = {"force_image_size": image_size} if image_size else {}
    weights, path = _weights(spec)
    if tag == "random":
        with hub._fetch_errors(model_id, "openclip", arch, online):  # HF text towers/configs
            model, _, preprocess = hub._seeded(
                lambda: open_clip.create_model_and_transforms(arch, pretrained=None, **kw))
    elif path is not None:
        with hub._checkpoint_errors(model_id, path, arch), hub._fetch_errors(model_id, "openclip", arch, online):
            model, preprocess = build_from_checkpoint(arch, str(path), **kw)
        hub.check_loaded_weights(model_id, path, model)
    else:
        try:
            model, preprocess = build_from_checkpoint(arch, tag, **kw)
        except Exception as e:
            raise hub._unavailable(model_id, "openclip", arch, e, online) from e
    model = model.to(device).eval()
    with hub._fetch_errors(model_id, "openclip", arch, online, what="tokenizer"):
        tokenizer = open_clip.get_tokenizer(arch)
    base = LoadedModel(model_id=model_id, module=None, transform=preprocess, classes=[],
                       logit_policy={}, manifest={"model_id": model_id, "family": "openclip",
                                                  "arch": arch, "weights": weights,
                                                  "preprocessing": hub.describe_transform(preprocess)},
                       extra={"tokenizer": tokenizer, "arch": arch, "clip": model,
                              "image_size": image_size}, spec=spec)
    return with_head(base, classnames=classnames, templates=templates, logit_scale=logit_scale)


def with_head(loaded: LoadedModel, classnames: str | Sequence[str] | None = None,
              templates: str | Sequence[str] = "openai", logit_scale: float | None = None) -> LoadedModel:
    """The same open_clip model with another zero-shot head (no reloading of weights).

    For prompt and label-space ablations: ``with_head(m, templates="simple")``. The head is
    built lazily; the manifest (and so the store key) records names, templates and policy.
    The spec (and so the catalog metadata) is kept."""
    from clipsafety.heads import ZeroShotHead, resolve_classnames, resolve_templates

    clip = loaded.extra.get("clip")
    if clip is None:
        raise TypeError(f"{loaded.model_id}: with_head needs an open_clip model loaded by "
                        "clipsafety.load('openclip:...'); this one has no CLIP text tower.")
    names, label_space = resolve_classnames(classnames)
    tmpl, tmpl_name = resolve_templates(templates, loaded.model_id)
    tokenizer = loaded.extra["tokenizer"]
    key = _head_key(loaded.manifest.get("weights", {}), loaded.extra.get("arch", ""), names, tmpl,
                    loaded.extra.get("image_size"))
    head = ZeroShotHead(clip, tokenizer, names, tmpl, logit_scale=logit_scale, cache_key=key)
    manifest = _head_manifest(loaded.manifest, label_space, tmpl_name, names, tmpl, head.logit_policy)
    return LoadedModel(model_id=loaded.model_id, module=head, transform=loaded.transform,
                       classes=names, logit_policy=head.logit_policy, manifest=manifest,
                       label_space=label_space,
                       extra={**loaded.extra, "templates": tmpl}, spec=loaded.spec)


def _head_key(weights: dict, arch: str, names, tmpl, image_size) -> str | None:
    """The head cache key (:func:`clipsafety.heads.head_cache_key`) of a zero-shot head."""
    from clipsafety.heads import head_cache_key, head_spec

    return head_cache_key(weights, arch, {**head_spec(names, tmpl), "image_size": image_size})


def _head_manifest(model_manifest: dict, label_space: str, tmpl_name: str, names, tmpl, policy: dict) -> dict:
    from clipsafety.heads import head_spec

    manifest = {k: v for k, v in model_manifest.items() if k not in ("head", "logit_policy")}
    manifest["head"] = {"kind": "zero-shot", "label_space": label_space, "templates": tmpl_name,
                        **head_spec(names, tmpl)}
    manifest["logit_policy"] = policy
    return manifest


def _weights(spec: ModelSpec):
    """``(weights entry of the manifest, checkpoint path or None)`` of an id with a tag:
    ``@random`` (seed 0), ``@/checkpoint`` (its sha256) or an open_clip pretrained tag."""
    import open_clip

    model_id, arch, tag = spec.id, spec.name, spec.tag
    if tag == "random":
        return {"source": "random", "seed": 0}, None
    if hub._is_path(tag):
        path = hub.checkpoint_path(model_id, tag, "a file saved by open_clip (state dict, "
                                   ".pt/.bin/.safetensors)")
        return {"source": "checkpoint", "file": path.name, "sha256": hub.file_sha256(path)}, path
    if tag not in open_clip.list_pretrained_tags_by_model(arch):
        raise UnknownModel(f"{model_id}: open_clip has no pretrained tag {tag!r} for {arch}."
                           f"{suggest_text(model_id)}")
    cfg = open_clip.get_pretrained_cfg(arch, tag)
    return {"source": "open_clip", "tag": tag, "hf_hub": cfg.get("hf_hub", ""),
            "url": cfg.get("url", "")}, None


def build_from_checkpoint(arch: str, pretrained: str, **kw):
    """``(model, eval transform)`` of ``open_clip.create_model_and_transforms(arch, pretrained)``
    (a tag or a checkpoint file) built without the random initialisation the checkpoint
    replaces (:mod:`clipsafety.models._build`: parameters on the meta device, the checkpoint's
    tensors assigned); the ordinary build where that leaves a tensor unloaded."""
    import open_clip

    from clipsafety.models._build import NotMaterialised, materialised, weights_without_init

    with weights_without_init() as kept:
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=pretrained,
                                                                     device="meta", **kw)
    try:
        materialised(model, kept)
    except NotMaterialised:
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=pretrained, **kw)
    return model, preprocess


#: image-tower-only builds (:func:`build_image_tower`) by outcome: ``"built"``, ``"declined"``
#: (a checkpoint it cannot read tensor by tensor: the whole model is built)
IMAGE_TOWER_STATS = {"built": 0, "declined": 0}
#: what :func:`clipsafety.heads.drop_text_tower` keeps: all that ``encode_image`` uses
IMAGE_KEYS = ("visual.", "logit_scale", "logit_bias")


def build_image_tower(arch: str, checkpoint, **kw):
    """The model ``open_clip.create_model(arch, pretrained=checkpoint)`` builds, with only its
    image tower and its logit scale and bias (:func:`clipsafety.heads.drop_text_tower`), built
    without initialisation and without reading the text tower's tensors from the file: for
    image inference once the zero-shot head's text embeddings are on disk.

    Only for a ``.safetensors`` file in open_clip's own layout (``visual.*`` keys and a
    ``logit_scale``), read tensor by tensor; the tensors then get what open_clip's
    ``load_checkpoint`` does to them (a scalar logit scale or bias reshaped, a missing bias
    loaded as 0, the image position embedding resized to ``force_image_size``) and a strict
    load. ``None`` for any other file (a ``.pt``/``.bin`` pickle is read whole anyway, a
    third-party layout needs open_clip's conversions): the caller builds the whole model."""
    import open_clip
    import torch
    from open_clip.model import resize_pos_embed

    from clipsafety.heads import drop_text_tower
    from clipsafety.models._build import NotMaterialised, materialised, weights_without_init

    if not str(checkpoint).endswith(".safetensors"):
        IMAGE_TOWER_STATS["declined"] += 1
        return None
    from safetensors import safe_open

    with safe_open(str(checkpoint), "pt") as f:
        names = {k.removeprefix("module."): k for k in f.keys()}
        if "logit_scale" not in names or not any(k.startswith("visual.") for k in names):
            IMAGE_TOWER_STATS["declined"] += 1
            return None
        sd = {k: f.get_tensor(full) for k, full in names.items() if k.startswith(IMAGE_KEYS)}
    with weights_without_init() as kept:
        model = open_clip.create_model(arch, pretrained=None, device="meta", **kw)
    drop_text_tower(model)
    for name in ("logit_scale", "logit_bias"):
        own = getattr(model, name, None)
        if own is not None and name in sd and sd[name].ndim != own.ndim:
            sd[name] = sd[name].reshape(own.shape)
    if getattr(model, "logit_bias", None) is not None and "logit_bias" not in sd:
        sd["logit_bias"] = torch.zeros_like(sd["logit_scale"])
    resize_pos_embed(sd, model)
    model.load_state_dict(sd, strict=True)
    try:
        materialised(model, kept)
    except NotMaterialised:
        IMAGE_TOWER_STATS["declined"] += 1
        return None
    IMAGE_TOWER_STATS["built"] += 1
    return model


def _load_image_tower(spec: ModelSpec, device, classnames, templates, logit_scale, image_size):
    """:func:`_load_openclip`'s model for image inference, its image tower alone
    (:func:`build_image_tower`), where the head's text embeddings are in the head cache
    (:func:`clipsafety.heads.head_cache_path`) and the weights are a ``.safetensors`` file in
    open_clip's layout (a checkpoint, or a pretrained tag in the local Hugging Face cache);
    else ``None``. Manifest, transform and logit policy are :func:`_describe_openclip`'s (the
    whole model's, as the store-key tests check); another head cannot be built on it."""
    import dataclasses

    from clipsafety.heads import ZeroShotHead, head_cache_path

    if spec.tag in (None, "random"):
        return None  # @random: the text tower's initialisation is part of the weights
    path = _weights(spec)[1]
    file = path if path is not None else _cached_pretrained_file(spec.name, spec.tag)
    if file is None or not str(file).endswith(".safetensors"):
        return None  # build_image_tower reads only these
    described = _describe_openclip(spec, classnames, templates, logit_scale, image_size)
    if described is None:
        return None
    names, tmpl = described.classes, described.extra["templates"]
    key = _head_key(described.manifest["weights"], spec.name, names, tmpl, image_size)
    cached = head_cache_path(key)
    if cached is None or not cached.is_file():
        return None
    kw = {"force_image_size": image_size} if image_size else {}
    try:
        clip = build_image_tower(spec.name, file, **kw)
    except Exception:  # noqa: BLE001 - the whole build reads it again and says what is wrong
        return None
    if clip is None:
        return None
    if path is not None:
        hub.check_loaded_weights(spec.id, path, clip)
    clip = clip.to(device).eval()
    head = ZeroShotHead(clip, None, names, tmpl, logit_scale=logit_scale, cache_key=key)
    return dataclasses.replace(described, module=head,
                               extra={**described.extra, "tokenizer": None, "clip": clip})


def preprocess_cfg(arch: str, tag: str | None = None, image_size: int | None = None) -> dict:
    """The eval preprocessing configuration ``open_clip.create_model(arch, tag)`` sets on its
    model (``model.visual.preprocess_cfg``), from the model and pretrained configs alone: the
    defaults, the pretrained tag's entries, the size as the image tower holds it."""
    from dataclasses import asdict

    import open_clip
    from open_clip.model import CLIPVisionCfg
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict
    from open_clip.utils import to_2tuple

    cfg = asdict(PreprocessCfg())
    if tag is not None and not hub._is_path(tag) and tag != "random":
        cfg = merge_preprocess_dict(cfg, open_clip.get_pretrained_cfg(arch, tag))
    vision = dict(open_clip.get_model_config(arch)["vision_cfg"])
    if image_size:
        vision["image_size"] = image_size
    v = CLIPVisionCfg(**vision)
    # ModifiedResNet keeps its size as given; the ViT and timm towers as a pair
    cfg["size"] = v.image_size if (not v.timm_model_name and isinstance(v.layers, (tuple, list))) \
        else to_2tuple(v.image_size)
    return cfg


def _model_class(model_cfg: dict):
    from open_clip.coca_model import CoCa
    from open_clip.model import CLIP, CustomTextCLIP

    if model_cfg.get("custom_text", False) or "hf_model_name" in model_cfg.get("text_cfg", {}):
        return CoCa if "multimodal_cfg" in model_cfg else CustomTextCLIP
    return CLIP


def logit_params(arch: str, path=None, pretrained_file=None):
    """``(logit_scale, logit_bias or None)`` as float32 tensors, the values the built model
    holds, without building it: the initial values of the model's class and config
    (``@random``), or the checkpoint's tensors (read alone, not the whole file), with
    open_clip's rule that a model with a bias loads a checkpoint without one as 0. ``None``
    where the file cannot be read so (a TorchScript or numpy archive): the model is built."""
    import inspect

    import open_clip
    import torch

    model_cfg = open_clip.get_model_config(arch)
    params = inspect.signature(_model_class(model_cfg).__init__).parameters
    init_scale = model_cfg.get("init_logit_scale", params["init_logit_scale"].default)
    init_bias = model_cfg.get("init_logit_bias", params["init_logit_bias"].default)
    file = path or pretrained_file
    if file is None:  # open_clip: torch.ones(shape) * init, a float32 parameter
        scale = torch.ones([]) * init_scale
        return scale, (None if init_bias is None else torch.ones([]) * init_bias)
    found = _read_tensors(file, ("logit_scale", "logit_bias"))
    if found is None or "logit_scale" not in found:
        return None
    bias = found.get("logit_bias")
    if init_bias is None and bias is not None:
        return None  # the strict load refuses it: let the build say so
    if init_bias is not None and bias is None:
        bias = torch.zeros([])
    f32 = lambda t: None if t is None else t.to(torch.float32)
    return f32(found["logit_scale"]), f32(bias)


def _read_tensors(file, names) -> dict | None:
    """Some tensors of a checkpoint by name, as open_clip's ``load_state_dict`` names them (a
    ``state_dict`` entry opened, ``module.`` removed): safetensors reads them alone, torch
    memory-maps the file. ``None`` for a file that cannot be read so."""
    import torch

    file = str(file)
    try:
        if file.endswith(".safetensors"):
            from safetensors import safe_open

            with safe_open(file, "pt") as f:
                keys = set(f.keys())
                out = {}
                for n in names:
                    for k in (n, "module." + n):
                        if k in keys:
                            out[n] = f.get_tensor(k)
                            break
                return out
        if file.endswith((".npz", ".npy")):
            return None
        obj = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - the build reads it and says what is wrong
        return None
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        return None
    out = {}
    for n in names:
        for k in (n, "module." + n):
            if isinstance(obj.get(k), torch.Tensor):
                out[n] = obj[k].clone()
                break
    return out


def _cached_pretrained_file(arch: str, tag: str):
    """The local file of an open_clip pretrained tag when it is in the Hugging Face cache (the
    name open_clip's download would pick: the safetensors alternative first); else ``None``."""
    import os

    import open_clip
    from open_clip.pretrained import HF_WEIGHTS_NAME, _get_safe_alternatives

    cfg = open_clip.get_pretrained_cfg(arch, tag)
    if not cfg.get("hf_hub") or "file" in cfg:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    repo, filename = os.path.split(cfg["hf_hub"])
    filename = filename or HF_WEIGHTS_NAME
    for name in (*_get_safe_alternatives(filename), filename):
        got = try_to_load_from_cache(repo, name)
        if isinstance(got, str):
            return got
    return None


def _describe_openclip(spec: ModelSpec, classnames, templates, logit_scale, image_size):
    """:func:`_load_openclip`'s model without building it (``module=None``): its manifest from
    the id, the configs open_clip ships, the weights' digest and, unless the head's scale is
    fixed, the logit scale and bias (their initial values for ``@random``, else the two
    tensors read from the checkpoint). ``None`` where that is not possible (an unknown
    architecture, no tag, a pretrained file not in the local cache): the model is loaded."""
    import open_clip

    from clipsafety.heads import logit_policy, resolve_classnames, resolve_templates

    model_id, arch, tag = spec.id, spec.name, spec.tag
    if tag is None or arch not in open_clip.list_models():
        return None
    names, label_space = resolve_classnames(classnames)
    tmpl, tmpl_name = resolve_templates(templates, model_id)
    weights, path = _weights(spec)
    pretrained_file = None
    if weights["source"] == "open_clip" and logit_scale is None:
        pretrained_file = _cached_pretrained_file(arch, tag)
        if pretrained_file is None:
            return None
    if logit_scale is None:
        got = logit_params(arch, path=path, pretrained_file=pretrained_file)
        if got is None:
            return None
        policy = logit_policy(*got)
    else:
        policy = logit_policy(None, None, logit_scale)
    from open_clip.transform import PreprocessCfg, image_transform_v2

    preprocess = image_transform_v2(PreprocessCfg(**preprocess_cfg(arch, tag, image_size)), is_train=False)
    base = {"model_id": model_id, "family": "openclip", "arch": arch, "weights": weights,
            "preprocessing": hub.describe_transform(preprocess)}
    manifest = _head_manifest(base, label_space, tmpl_name, names, tmpl, policy)
    return LoadedModel(model_id=model_id, module=None, transform=preprocess, classes=names,
                       logit_policy=policy, manifest=manifest, label_space=label_space,
                       extra={"arch": arch, "image_size": image_size, "templates": tmpl}, spec=spec)
