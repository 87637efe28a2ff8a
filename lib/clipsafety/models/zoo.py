"""``zoo:ID`` ids: the project's tiny models (:func:`clipsafety.zoo.load`).

Metadata comes from the zoo catalog (``data/zoo/catalog.csv``). Zero-shot CLIPs of the zoo
build their head over the synthetic world's template sets; ``templates`` maps onto them as
:func:`clipsafety.zoo.resolve_templates` documents (``"openai"``, the chapters' default, is
the world's ``"default"`` set, its analogue of the 80 ImageNet templates).
"""

from __future__ import annotations

from clipsafety.models._registry import ModelSource, ModelSpec, register_source
from clipsafety.records import LoadedModel


@register_source
class ZooSource(ModelSource):
    """The tiny zoo: float16 safetensors under ``data/zoo/weights``, listed in its catalog."""

    prefix = "zoo"
    catalog = "zoo"
    id_forms = ("zoo:ID",)

    def split(self, rest: str) -> tuple[str, str | None]:
        return rest, None  # zoo ids have no tag: the whole rest is the id

    def candidates(self) -> list[str]:
        from clipsafety.catalog import list_models

        return [m if m.startswith("zoo:") else f"zoo:{m}" for m in list_models("zoo")]

    def is_known(self, spec: ModelSpec) -> bool:
        try:
            return spec.id in set(self.candidates())
        except (FileNotFoundError, ValueError):
            return False

    def load(self, spec: ModelSpec, device: str = "cpu", *, classnames=None, templates="openai",
             logit_scale=None, image_size=None) -> LoadedModel:
        from clipsafety import zoo  # imported lazily: torch and the world only when needed

        kw = {"classnames": classnames} if classnames is not None else {}
        return zoo.load(spec.name, device=device, templates=templates, **kw)

    def describe(self, spec: ModelSpec, *, classnames=None, templates="openai", logit_scale=None,
                 image_size=None) -> LoadedModel:
        from clipsafety.zoo.core import describe

        kw = {"classnames": classnames} if classnames is not None else {}
        return describe(spec.name, templates=templates, **kw)
