"""The synthetic world: generator, sources, captions and dataset ids ``synth:<name>``.

``get_dataset("id-test")`` returns a :class:`~clipsafety.records.DatasetSpec`;
``list_datasets()`` names them all; every set is one row of :data:`SYNTH_SETS`
(``synth_set(name).kind``, ``eval_sets()``, ``card_sets()``); curated subsets of the raw
pool are ids ``<pool>@<filters>`` (:func:`curated_dataset`, the filters of
:mod:`clipsafety.synth.curation`), and :func:`raw_pool` gives the pool at a size. See the
appendix chapter for the card. This package imports nothing from :mod:`clipsafety.zoo`: models come in as
arguments (``reference=`` of the A-like set, ``scorer=`` of the alignment filter).
"""

from clipsafety.synth.datasets import (
    DESCRIPTIONS,
    OOD_SETS,
    SHIFTS,
    SYNTH_SETS,
    CuratedDataset,
    ReferenceScorer,
    SynthDataset,
    SynthSet,
    card_sets,
    corrupt,
    curated_dataset,
    eval_sets,
    get_dataset,
    list_datasets,
    raw_pool,
    select_sets,
    synth_set,
)
from clipsafety.synth.sources import (
    LABELLED,
    LAION,
    RAW_POOL,
    SOURCES,
    WIT,
    WorldConfig,
    sample_attributes,
)
from clipsafety.synth.text import TEMPLATES, VOCAB, WordTokenizer, captions
from clipsafety.synth.world import (
    CATEGORIES,
    FACTORS,
    GENERATOR_VERSION,
    SUBTYPES,
    THRESHOLDS,
    factor_flags,
    render,
)

__all__ = [
    "CATEGORIES", "DESCRIPTIONS", "FACTORS", "GENERATOR_VERSION", "LABELLED", "LAION", "OOD_SETS",
    "RAW_POOL", "CuratedDataset", "ReferenceScorer", "SHIFTS", "SOURCES", "SUBTYPES",
    "SYNTH_SETS", "SynthDataset", "SynthSet", "TEMPLATES", "THRESHOLDS", "VOCAB", "WIT",
    "WordTokenizer", "WorldConfig", "captions", "card_sets", "corrupt", "curated_dataset",
    "eval_sets", "factor_flags", "get_dataset", "list_datasets", "raw_pool", "render",
    "sample_attributes", "select_sets", "synth_set",
]
