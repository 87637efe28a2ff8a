"""The dataset registry refactor left every dataset's data unchanged.

``tests/data/dataset_golden.json`` holds sha256 fingerprints (images, targets, ids, meta,
manifest, captions) computed by the code before the registry (``python
tests/dataset_golden.py`` at commit d1ea5cb); these tests recompute them through today's
``get_dataset`` and compare.
"""

import json

import pytest
from dataset_golden import (
    GOLDEN,
    REAL_CASES,
    REDRAWN,
    SYNTH_CASES,
    case_key,
    real_fingerprint,
    synth_fingerprint,
)

GOLD = json.loads(GOLDEN.read_text())


def test_golden_file_covers_every_listed_synthetic_set():
    from clipsafety.synth import list_datasets

    assert GOLD["commit"].startswith("d1ea5cb")
    assert set(list_datasets()) <= set(GOLD["synth"])
    assert len(GOLD["synth"]) == len(SYNTH_CASES) == 60 and len(GOLD["real"]) == 15
    # every entry is d1ea5cb's except the sets redrawn on purpose, each with its reason
    assert set(GOLD.get("redrawn", {})) == set(REDRAWN)


@pytest.mark.parametrize("name,kw", [(n, kw) for n, kw, slow in SYNTH_CASES if not slow],
                         ids=[case_key(n, kw) for n, kw, slow in SYNTH_CASES if not slow])
def test_synthetic_set_is_byte_identical(name, kw):
    assert synth_fingerprint(name, kw) == GOLD["synth"][case_key(name, kw)]


@pytest.mark.slow
@pytest.mark.full  # the full-size training sets: about nine minutes (make test-full)
@pytest.mark.parametrize("name,kw", [(n, kw) for n, kw, slow in SYNTH_CASES if slow],
                         ids=[case_key(n, kw) for n, kw, slow in SYNTH_CASES if slow])
def test_full_size_training_set_is_byte_identical(name, kw):
    assert synth_fingerprint(name, kw) == GOLD["synth"][case_key(name, kw)]


@pytest.mark.parametrize("case", REAL_CASES)
def test_real_dataset_spec_is_identical(case, tmp_path):
    assert real_fingerprint(case, tmp_path) == GOLD["real"][case]
