"""Evidence collection for the chapters: which models a run uses, where its live evidence comes
from, the prediction records it reads, and the ending every chapter shares.

A chapter builds one :class:`ChapterRun` from its parameters (:func:`chapter_run`): the model
ids (a catalog name or a list), whether they are real (open_clip / timm) or the zoo's, the live
evidence source that implies, the dataset the run defaults to, and whether live evidence can
run at all (real models need a ``data_root``). :meth:`ChapterRun.collect` reads prediction
records from the store (running inference only for what is missing), and
:func:`chapter_ending` closes a chapter: claims matrix, verdict sentences, the note on where
the synthetic world disagrees, and the command that reruns the chapter on real models.

Nothing here knows a chapter's claims or tables; those live in :mod:`clipsafety.studies`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from clipsafety import claims
from clipsafety.groups import MODEL_GROUPS

if TYPE_CHECKING:
    import pandas as pd

#: real models a reader would start with (two zero-shot CLIPs, an ImageNet model, a fine-tuned CLIP)
REAL_EXAMPLE = ["openclip:ViT-B-32@openai", "openclip:ViT-B-32@laion2b_s34b_b79k",
                "timm:resnet50.a1_in1k", "timm:vit_base_patch16_clip_224.openai_ft_in1k"]

ZOO, REAL = "zoo", "real"


def resolve_models(models: str | Sequence[str]) -> list[str]:
    """Model ids from a parameter: a catalog name (``"zoo"``, ``"real"``: its models whose group
    is one of :data:`clipsafety.groups.MODEL_GROUPS`, so the zoo's reference models are left
    out), a comma-separated string, or a list of ids (returned unchanged, duplicates dropped).

    Every id must be a string with a source prefix (``zoo:``, ``openclip:``, ``timm:``), and one
    run uses either zoo models or real ones: a mixed list is an error naming the ids.
    """
    if isinstance(models, str):
        if models in (ZOO, REAL):
            from clipsafety.catalog import read_catalog

            cat = read_catalog(models)
            return list(dict.fromkeys(cat.loc[cat["group"].isin(MODEL_GROUPS), "id"].astype(str)))
        models = [m.strip() for m in models.split(",") if m.strip()]
    models = list(models)
    if not models:
        raise ValueError("models is empty; pass model ids, or 'zoo' / 'real' for a catalog.")
    bad = [m for m in models if not isinstance(m, str) or ":" not in m]
    if bad:
        raise ValueError(f"models: {bad} are not model ids; expected strings such as "
                         "'zoo:clip-resnet-wit-10k', 'openclip:ViT-B-32@openai' or "
                         "'timm:resnet50.a1_in1k', or a catalog name 'zoo' / 'real'.")
    zoo = [m for m in models if m.startswith("zoo:")]
    if zoo and len(zoo) < len(models):
        raise ValueError(f"models mixes zoo models ({zoo[:3]}) with real ones "
                         f"({[m for m in models if m not in zoo][:3]}); a run uses one or the "
                         "other, since they are evaluated on different datasets.")
    return list(dict.fromkeys(models))


def is_real_path(models: Sequence[str]) -> bool:
    """True when the models are real (open_clip / timm ids) rather than zoo models."""
    return any(not str(m).startswith("zoo:") for m in models)


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
    kwargs.setdefault("progress", bool(progress and is_real_path(list(models))))
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
    speak for. ``live_ok`` is False when real models were named without a ``data_root``.
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
        return REAL if self.real else ZOO

    @property
    def live_source(self) -> str:
        return claims.SOURCES[2] if self.real else claims.SOURCES[0]

    @property
    def other_source(self) -> str:
        return claims.SOURCES[0] if self.real else claims.SOURCES[2]

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
    """The :class:`ChapterRun` of a chapter's parameters: ids resolved and checked once, and
    the default dataset chosen by the kind of models (``zoo_dataset`` / ``real_dataset``)."""
    ids = resolve_models(models)
    real = is_real_path(ids)
    return ChapterRun(chapter=chapter, models=ids, real=real,
                      dataset=dataset or (real_dataset if real else zoo_dataset),
                      data_root=data_root, store=store, device=device, batch_size=batch_size,
                      templates=templates, needs=needs)


OUTPUTS_ENV = "CLIPSAFETY_OUTPUTS"


def record_outputs(chapter: str, claims_table, **tables) -> None:
    """Save a chapter's claims table and headline tables as JSON, for the pages and tests that
    read a chapter's results without re-running it (the landing page's claims matrix, the
    before/after comparison of a refactor).

    Written to ``$CLIPSAFETY_OUTPUTS/<chapter>.json`` (the book runner points it at
    ``book/chapters/.state/outputs``); nothing is written when the variable is unset. Returns
    nothing, so that a chapter's last line displays nothing.
    ``tables``: DataFrames (stored as records) or plain JSON values.
    """
    import json
    import os

    import pandas as pd

    from clipsafety.files import atomic_write_text

    folder = os.environ.get(OUTPUTS_ENV)
    if not folder:
        return None

    def plain(v):
        if isinstance(v, pd.DataFrame):
            return json.loads(v.to_json(orient="records", double_precision=15))
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        return v

    payload = {"chapter": chapter, "claims": plain(claims_table),
               "tables": {k: plain(v) for k, v in tables.items()}}
    atomic_write_text(Path(folder) / f"{chapter}.json", json.dumps(payload, indent=1, default=str))


def outputs_folder() -> Path:
    """Where chapters record their outputs: ``$CLIPSAFETY_OUTPUTS``, else the book's
    ``book/chapters/.state/outputs``."""
    import os

    from clipsafety.files import REPO_ROOT

    return Path(os.environ.get(OUTPUTS_ENV) or REPO_ROOT / "book" / "chapters" / ".state" / "outputs")


def read_outputs(chapters: Sequence[str] | str | None = None) -> dict:
    """The recorded outputs (:func:`record_outputs`) of ``chapters`` (default: every chapter
    of the book's table of contents that records claims): ``{chapter: payload or None}``,
    ``None`` for a chapter that has not run."""
    import json

    from clipsafety import book

    if isinstance(chapters, str):
        chapters = [c.strip() for c in chapters.split(",") if c.strip()]
    names = list(chapters or [n for n in book.toc_chapters() if n not in book.SUMMARY_CHAPTERS
                              and n != "appendix_world"])
    folder = outputs_folder()
    out = {}
    for n in names:
        p = folder / f"{n}.json"
        out[n] = json.loads(p.read_text()) if p.is_file() else None
    return out


#: the three kinds of evidence, by the start of a source's name
SOURCE_KINDS = tuple(claims.SOURCES)


def findings_table(outputs: dict) -> pd.DataFrame:
    """All recorded claim rows of ``outputs`` (:func:`read_outputs`) as one tidy table: chapter,
    claim_id, claim, source, source_kind (one of the three kinds of evidence), verdict,
    detail, evidence."""
    import pandas as pd

    rows = []
    for chapter, payload in outputs.items():
        for r in (payload or {}).get("claims", []) or []:
            kind = next((k for k in SOURCE_KINDS if str(r["source"]).startswith(k)), r["source"])
            rows.append({"chapter": chapter, **r, "source_kind": kind})
    cols = ["chapter", "claim_id", "claim", "source", "source_kind", "verdict", "detail", "evidence"]
    return pd.DataFrame(rows, columns=cols)


def findings_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (chapter, claim), one column per source, cells ``verdict: evidence``."""
    cell = table["verdict"] + ": " + table["evidence"].astype(str)
    wide = table.assign(cell=cell).pivot_table(index=["chapter", "claim"], columns="source",
                                               values="cell", aggfunc="first", sort=False)
    order = sorted(wide.columns, key=lambda c: (next((i for i, k in enumerate(SOURCE_KINDS)
                                                      if str(c).startswith(k)), 9), str(c)))
    return wide[order].fillna("")


def chapters_status(outputs: dict) -> str:
    """Markdown: which chapters have recorded outputs and how many claims each tests."""
    have = [c for c, p in outputs.items() if p]
    missing = [c for c, p in outputs.items() if not p]
    parts = [f"`{c}` ({len(outputs[c].get('claims') or [])} verdicts)" for c in have]
    text = f"Chapters with recorded results: {', '.join(parts) or 'none'}."
    if missing:
        text += (f" Not yet run, so not in the matrix: {', '.join(f'`{c}`' for c in missing)} "
                 "(`make book` runs them).")
    return text


def chapter_ending(verdicts: Sequence[dict]):
    """The shared end of a chapter, from its verdict rows.

    Returns ``(table, shown)``: the tidy claims table (:func:`clipsafety.claims.claims_table`)
    and the objects to display in order: the claims matrix (claims x evidence sources), the
    verdicts as sentences with their evidence, and the note on where the synthetic world
    disagrees with the paper. Also glues the chapter's summary (:func:`clipsafety.pages.glue_summary`),
    which the chapter's first cell pastes.
    """
    from IPython.display import Markdown

    from clipsafety import pages

    table = claims.claims_table(verdicts)
    pages.glue_summary(table)
    shown = [claims.claims_matrix(table), Markdown(claims.claims_sentences(table)),
             Markdown(claims.disagreement_note(table))]
    return table, shown
