"""The synthetic world: generator, sources, captions and dataset ids ``synth:<name>``.

``get_dataset("id-test")`` returns a :class:`~clipsafety.records.DatasetSpec`;
``list_datasets()`` names them all. See ``/data/synth`` and the appendix chapter for the card.
"""

from clipsafety.synth.datasets import (
    DESCRIPTIONS,
    OOD_SETS,
    SHIFTS,
    SynthDataset,
    corrupt,
    get_dataset,
    list_datasets,
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
    "RAW_POOL", "SHIFTS", "SOURCES", "SUBTYPES", "SynthDataset", "TEMPLATES", "THRESHOLDS", "VOCAB",
    "WIT", "WordTokenizer", "WorldConfig", "captions", "corrupt", "factor_flags", "get_dataset",
    "list_datasets", "render", "sample_attributes",
]
