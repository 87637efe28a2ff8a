"""The zoo's reference models, handed to the synthetic world as scorers.

:mod:`clipsafety.synth` never loads a model; where a set or filter needs one, the model comes
in as an argument and this module builds it from the zoo:

- :func:`reference_scorer` -> :class:`~clipsafety.synth.datasets.ReferenceScorer`, the
  held-out classifier that filters ``synth:shift-adversarial`` (``reference=`` of
  ``synth.get_dataset``);
- :func:`alignment_scorer` -> :class:`~clipsafety.synth.curation.AlignmentScorer`, a zoo
  CLIP's image-caption cosine for :func:`clipsafety.synth.curation.filter_alignment`.

``python -m clipsafety.zoo.reference`` recomputes ``data/synth/shift-adversarial.json``, the
kept candidate positions of ``synth:shift-adversarial`` under the zoo's reference model, and
records the model id and its weights hash (``make zoo`` does it after training the
reference); ``--check`` only compares.
"""

from __future__ import annotations

import argparse
import json
from functools import lru_cache
from pathlib import Path

from clipsafety.zoo.plan import PLAN

#: the held-out model that filters the A-like set (the plan's ``reference`` entry)
REFERENCE_MODEL: str = next(m["id"] for m in PLAN if m["reference"])
#: the CLIP whose image-caption alignment curation filters by default
ALIGNMENT_MODEL = "zoo:clip-convnext-wit-100k"


def reference_scorer(model: str = REFERENCE_MODEL):
    """The zoo model ``model`` as a scorer: ``scorer(uint8 images) -> logits [N, 10]``.

    Cached per (id, weights hash, zoo folder): calling it again after the weights changed
    loads the new ones."""
    from clipsafety.zoo.core import _read, zoo_dir

    zoo_id = model.removeprefix("zoo:")
    sha = _read(zoo_id)[2]
    return _reference_scorer(zoo_id, sha, str(zoo_dir()))


@lru_cache(maxsize=8)
def _reference_scorer(zoo_id: str, sha: str, where: str):
    from clipsafety.synth.datasets import ReferenceScorer
    from clipsafety.zoo.core import load, predict_arrays

    m = load(zoo_id)
    return ReferenceScorer(zoo_id, m.manifest.get("weights_sha256"),
                           lambda images: predict_arrays(m, images))


def alignment_scorer(model: str = ALIGNMENT_MODEL):
    """A contrastive zoo model as an :class:`~clipsafety.synth.curation.AlignmentScorer`.

    Images and captions are encoded with the CLIP's ``encode_image`` / ``encode_text``
    (captions tokenized with the world's :class:`~clipsafety.synth.WordTokenizer` at the
    model's context length) and L2-normalised; the score is their dot product. Raises
    ``KeyError`` for an unknown id and ``ValueError`` for a model that is not a CLIP."""
    import torch

    from clipsafety.synth import WordTokenizer
    from clipsafety.synth.curation import AlignmentScorer
    from clipsafety.zoo.core import _read, array_transform, build_clip

    state, meta, sha = _read(model.removeprefix("zoo:"))
    if meta["kind"] != "clip":
        raise ValueError(f"alignment scores need a contrastive zoo model (kind 'clip'); "
                         f"{model!r} is kind {meta['kind']!r}")
    clip = build_clip(meta["clip_config"])
    clip.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
    clip.eval()
    tok = WordTokenizer(meta["clip_config"]["text_cfg"]["context_length"])
    norm = torch.nn.functional.normalize

    def score(images, captions):
        with torch.no_grad():
            fi = norm(clip.encode_image(array_transform(images)), dim=-1)
            ft = norm(clip.encode_text(tok(captions)), dim=-1)
            return (fi * ft).sum(-1).numpy()

    return AlignmentScorer(model, sha, score)


def adversarial_ids(model: str = REFERENCE_MODEL) -> dict:
    """The kept-ids record of ``synth:shift-adversarial`` under the zoo model ``model``."""
    from clipsafety.synth.datasets import adversarial_record

    return adversarial_record(reference_scorer(model))


def write_adversarial_ids(model: str = REFERENCE_MODEL, path: Path | None = None) -> Path:
    """Recompute the kept candidate ids and write them (default: the committed file)."""
    from clipsafety.synth.datasets import ADVERSARIAL_KEPT

    path = Path(path or ADVERSARIAL_KEPT)
    rec = adversarial_ids(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec, indent=None, separators=(",", ":")) + "\n")
    return path


def main(argv=None) -> int:
    from clipsafety.synth.datasets import ADVERSARIAL_KEPT

    ap = argparse.ArgumentParser(description="Recompute the kept candidate ids of "
                                 "synth:shift-adversarial under the zoo's reference model.")
    ap.add_argument("--model", default=REFERENCE_MODEL)
    ap.add_argument("--out", default=str(ADVERSARIAL_KEPT))
    ap.add_argument("--check", action="store_true",
                    help="compare with the file instead of writing it (exit 1 if different)")
    args = ap.parse_args(argv)
    if args.check:
        rec = adversarial_ids(args.model)
        old = json.loads(Path(args.out).read_text())
        if old != rec:
            diff = sorted(k for k in rec if old.get(k) != rec[k])
            print(f"{args.out} differs from the recomputed ids in {diff}; rerun without --check")
            return 1
        print(f"{args.out} matches {args.model}")
        return 0
    print(f"wrote {write_adversarial_ids(args.model, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
