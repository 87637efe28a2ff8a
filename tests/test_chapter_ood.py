"""The OOD chapter executed with papermill as the book does: the published path (no data_root),
the real path with a random model on fixture folders, and the default zoo path."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_real as F  # noqa: E402
from test_chapters_factors_shape import MIRROR, ROOT, _charts, run_chapter  # noqa: E402

pytestmark = pytest.mark.book


@pytest.mark.skipif(not MIRROR.is_dir(), reason="no published-data mirror here")
def test_ood_chapter_published_evidence_and_note_without_data_root(tmp_path):
    text = run_chapter("ood", tmp_path, models=["timm:resnet18@random"], n_boot=100)
    assert "no `data_root` was given" in text and "make chapter NAME=ood" in text
    assert "**Finding (NINCO).**" in text and "**Finding (C-OOD).**" in text
    assert "published upstream results (NINCO)" in text and "published upstream results (C-OOD)" in text
    assert _charts(text) >= 2
    assert "**Finding (NINCO, every score).**" in text and "Relative Mahalanobis" in text
    # C-OOD has nine zero-shot OpenAI CLIPs: the accuracy claim is testable there
    assert "WIT: r +" in text
    # its fine-tuned rows are not a softmax at T = 1: the chapter says what that means
    assert "not a softmax at T = 1" in text


@pytest.mark.slow
def test_ood_chapter_real_path_with_a_random_model(tmp_path):
    root = tmp_path / "data"
    F.make_imagenet_val(root, classes=(0, 1, 2, 3), per_class=3)
    F.make_ood(root, "iNaturalist", n=4)
    F.make_ood(root, "dtd", n=2, subclasses=["banded", "dotted"])
    text = run_chapter("ood", tmp_path, models=["timm:resnet18@random"], data_root=str(root),
                       ood_sets=["ood:inaturalist", "ood:textures"], store=str(tmp_path / "store"),
                       device="cpu", batch_size=8, n_boot=50, published=[])
    assert "ID set `imagenet:val` against 2 OOD sets" in text
    assert "This run used real models" in text
    assert _charts(text) >= 1


@pytest.mark.slow
@pytest.mark.full
@pytest.mark.skipif(not (ROOT / "data" / "zoo" / "catalog.csv").is_file(), reason="zoo not built")
def test_ood_chapter_default_zoo_path(tmp_path, monkeypatch):
    import json

    out = tmp_path / "outputs"
    monkeypatch.setenv("CLIPSAFETY_OUTPUTS", str(out))
    text = run_chapter("ood", tmp_path, n_boot=200)  # the default store, shared with the book
    assert "(zoo), ID set `synth:id-test` against 5 OOD sets" in text
    assert "NegLabel-style score changes the mean AUROC by" in text
    assert _charts(text) >= 4
    rec = json.loads((out / "ood.json").read_text())
    live = [r for r in rec["claims"] if r["source"] == "synthetic world + zoo"]
    assert {r["claim_id"] for r in live} == {"ood-accuracy", "ood-source", "ood-ft-worse", "ood-2stage"}
    assert len(rec["tables"]["averages"]) >= 40
