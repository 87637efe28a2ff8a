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
    if tag == "random":
        weights = {"source": "random", "seed": 0}
        with hub._fetch_errors(model_id, "openclip", arch, online):  # HF text towers/configs
            model, _, preprocess = hub._seeded(
                lambda: open_clip.create_model_and_transforms(arch, pretrained=None, **kw))
    elif hub._is_path(tag):
        path = hub.checkpoint_path(model_id, tag, "a file saved by open_clip (state dict, "
                                   ".pt/.bin/.safetensors)")
        weights = {"source": "checkpoint", "file": path.name, "sha256": hub.file_sha256(path)}
        with hub._checkpoint_errors(model_id, path, arch), hub._fetch_errors(model_id, "openclip", arch, online):
            model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=str(path), **kw)
        hub.check_loaded_weights(model_id, path, model)
    else:
        if tag not in open_clip.list_pretrained_tags_by_model(arch):
            raise UnknownModel(f"{model_id}: open_clip has no pretrained tag {tag!r} for {arch}."
                               f"{suggest_text(model_id)}")
        cfg = open_clip.get_pretrained_cfg(arch, tag)
        weights = {"source": "open_clip", "tag": tag, "hf_hub": cfg.get("hf_hub", ""),
                   "url": cfg.get("url", "")}
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=tag, **kw)
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
    tmpl, tmpl_name = resolve_templates(templates, loaded.model_id)
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
                       extra={**loaded.extra, "templates": tmpl}, spec=loaded.spec)
