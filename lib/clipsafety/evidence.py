"""Evidence collection for the chapters: which models a run uses, where its live evidence comes
from, and the prediction records it reads.

A chapter builds one :class:`ChapterRun` from its parameters (:func:`chapter_run`): the model
ids (a catalog name or a list), whether they are real (open_clip / timm) or the zoo's, the live
evidence source that implies, the dataset the run defaults to, and whether live evidence can
run at all (real models need real data). :meth:`ChapterRun.collect` reads prediction
records from the store (running inference only for what is missing). A chapter ends with
:func:`clipsafety.pages.end_chapter`; its recorded outputs are :mod:`clipsafety.outputs`'s.

Nothing here knows a chapter's claims or tables; those live in :mod:`clipsafety.studies`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clipsafety import catalog, claims, datasets

if TYPE_CHECKING:
    pass

#: real models a reader would start with (two zero-shot CLIPs, an ImageNet model, a fine-tuned CLIP)
REAL_EXAMPLE = ["openclip:ViT-B-32@openai", "openclip:ViT-B-32@laion2b_s34b_b79k",
                "timm:resnet50.a1_in1k", "timm:vit_base_patch16_clip_224.openai_ft_in1k"]

def real_path_note(chapter: str, needs: str) -> str:
    """Markdown for a chapter run without real models: what is missing and the exact command."""
    models = "[" + ",".join(f'"{m}"' for m in REAL_EXAMPLE) + "]"
    return (f"No real models ran here (the book's machines have neither pretrained weights nor "
            f"{needs}). To run this chapter on real models:\n\n```\nmake chapter NAME={chapter} "
            f"PARAMS='-p models {models} -p data_root /data -p device cuda'\n```")


def collect(models: Sequence[str], dataset: str, *, data_root: str = "", store: str = "",
            device: str = "auto", batch_size: int = 64, progress: bool = True,
            predict: Callable | None = None, **predict_kwargs) -> dict:
    """Prediction records of every model on ``dataset``, from the store or by inference.

    Returns ``{model_id: PredictionRecord}`` in the order given. Each record is cached by the
    store as soon as it is computed, so a failure on one model loses none of the others: the
    error names the model and says how to resume (run again; finished models are cache hits).
    """
    if predict is None:
        from clipsafety.infer import predict
    from tqdm import tqdm

    out = {}
    kwargs = dict(predict_kwargs)
    # per-image bars only where inference is long (real models); the zoo shows one bar
    kwargs.setdefault("progress", bool(progress and catalog.is_real(list(models))))
    if data_root:
        kwargs["data_root"] = data_root
    if store:
        kwargs["store"] = store
    for mid in tqdm(list(models), desc=f"predictions on {dataset}", disable=not progress):
        try:
            out[mid] = predict(mid, dataset, device=device, batch_size=batch_size, **kwargs)
        except Exception as exc:
            done = ", ".join(out) or "none"
            raise RuntimeError(
                f"predicting {dataset!r} with model {mid!r} failed: {exc}. Finished and cached: "
                f"{done}. Fix the model id / data_root and run again; cached models are reused."
            ) from exc
    return out


@dataclass
class ChapterRun:
    """What one execution of a chapter runs on; built once, by :func:`chapter_run`.

    ``live_source`` is the evidence source the live models speak for (the synthetic world for
    zoo models, real models on real data otherwise); ``other_source`` the one they cannot
    speak for. ``live_ok`` is False when real models were named without real data (neither
    the ``data_root`` parameter nor ``$CLIPSAFETY_DATA_ROOT``: :func:`clipsafety.datasets.data_root`).
    """

    chapter: str
    models: list[str]
    real: bool
    dataset: str
    data_root: str = ""
    store: str = ""
    device: str = "auto"
    batch_size: int = 64
    templates: str | list = "openai"
    needs: str = "the datasets"
    verdicts: list = field(default_factory=list)

    @property
    def kind(self) -> str:
        return catalog.REAL if self.real else catalog.ZOO

    @property
    def live_source(self) -> str:
        return claims.REAL if self.real else claims.WORLD

    @property
    def other_source(self) -> str:
        return claims.WORLD if self.real else claims.REAL

    @property
    def live_ok(self) -> bool:
        return not (self.real and not self.data_root)

    def collect(self, dataset: str | None = None, models: Sequence[str] | None = None,
                **kwargs) -> dict:
        """Records of the run's models (or ``models``) on ``dataset`` (default: the run's)."""
        kw = dict(data_root=self.data_root, store=self.store, device=self.device,
                  batch_size=self.batch_size, templates=self.templates)
        kw.update(kwargs)
        return collect(list(models if models is not None else self.models),
                       dataset or self.dataset, **kw)

    def skipped_note(self, layout: str) -> str:
        """Markdown for the live section when real models were named without a data_root."""
        return ("Real models were named but no `data_root` was given, so this section is "
                f"skipped. To run it: `make chapter NAME={self.chapter} PARAMS='-p models "
                "[\"openclip:ViT-B-32@openai\",\"timm:resnet50.a1_in1k\"] -p data_root /data "
                f"-p device cuda'` with {layout}.")

    def not_run_rows(self, claim_set: dict) -> list[dict]:
        """``not testable`` rows for the sources this run cannot speak for: the other live
        source always, and the live source too when it cannot run (no data_root)."""
        why_other = ("this run uses real models; run with the default models='zoo' for the "
                     "synthetic world" if self.real else
                     "no real models and data in this run (see the command in section 3)")
        rows = [claims.not_testable(c, self.other_source, why_other) for c in claim_set.values()]
        if not self.live_ok:
            rows += [claims.not_testable(c, self.live_source, "no data_root given")
                     for c in claim_set.values()]
        return rows

    def real_section(self) -> str:
        """Markdown for the section on real models: what ran, or the command to run it."""
        if self.real and self.live_ok:
            return (f"This run used real models on `{self.dataset}` under `{self.data_root}` "
                    "(the live section above).")
        return real_path_note(self.chapter, self.needs)


def chapter_run(chapter: str, models: str | Sequence[str], *, zoo_dataset: str,
                real_dataset: str, dataset: str = "", data_root: str = "", store: str = "",
                device: str = "auto", batch_size: int = 64, templates: str | list = "openai",
                needs: str = "the datasets") -> ChapterRun:
    """The :class:`ChapterRun` of a chapter's parameters: ids resolved and checked once
    (:func:`clipsafety.catalog.resolve_models`), the default dataset chosen by the kind of
    models (``zoo_dataset`` / ``real_dataset``), and the real data's folder by the one rule
    (:func:`clipsafety.datasets.data_root`: the parameter, else ``$CLIPSAFETY_DATA_ROOT``)."""
    ids = catalog.resolve_models(models)
    real = catalog.is_real(ids)
    return ChapterRun(chapter=chapter, models=ids, real=real,
                      dataset=dataset or (real_dataset if real else zoo_dataset),
                      data_root=datasets.data_root(data_root), store=store, device=device, batch_size=batch_size,
                      templates=templates, needs=needs)
