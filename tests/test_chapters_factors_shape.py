"""The factor and shape-bias chapters, executed with papermill as the book does.

The real path runs with randomly initialised models on fixture folders in the datasets' real
layouts (tests/fixtures_real.py): every number is chance level, but the tables, the label-space
handling and the claims table must come out. Outputs are checked by reading the executed
notebook back.
"""

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("CLIPSAFETY_MIRROR") or ROOT.parent / "shared" / "external")
sys.path.insert(0, str(Path(__file__).parent))
import fixtures_real as F  # noqa: E402

pytestmark = pytest.mark.book


def run_chapter(name: str, tmp: Path, **params) -> str:
    """Execute analyses/<name>.py with ``params``; return all text/markdown/html outputs joined."""
    import jupytext
    import papermill as pm

    nb = jupytext.read(ROOT / "analyses" / f"{name}.py")
    src, out = tmp / f"{name}.ipynb", tmp / f"{name}.out.ipynb"
    jupytext.write(nb, src)
    env_backup = dict(os.environ)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if MIRROR.is_dir():
        os.environ["CLIPSAFETY_MIRROR"] = str(MIRROR)
    try:
        pm.execute_notebook(str(src), str(out), parameters=params, kernel_name="python3",
                            progress_bar=False, cwd=str(ROOT))
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    cells = json.loads(out.read_text())["cells"]
    texts = []
    for c in cells:
        for o in c.get("outputs", []):
            data = o.get("data", {})
            for k in ("text/markdown", "text/plain", "text/html"):
                if k in data:
                    texts.append("".join(data[k]))
            if "text" in o:
                texts.append("".join(o["text"]))
    return "\n".join(texts)


def _charts(text: str) -> int:
    return text.count('class="clipsafety-chart"')


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    F.make_imagenet_val(root, classes=(0, 1, 2, 3), per_class=3)
    F.make_cue_conflict(root)
    return root


@pytest.mark.skipif(not MIRROR.is_dir(), reason="no published-data mirror here")
def test_factors_chapter_published_and_note_without_data_root(tmp_path):
    text = run_chapter("factors", tmp_path, models=["timm:resnet18@random"], n_boot=100)
    assert "no `data_root` was given" in text
    assert "make chapter NAME=factors" in text
    # published evidence: both collections, with CLIP found and the claims judged
    assert "ImageNet-X on imagenet-testbed models" in text and "ImageNet-X on model-vs-human" in text
    assert "zero-shot CLIP models lead every other group on 7 of 10 factors" in text
    assert _charts(text) >= 3
    # the pooled published verdicts: each CLIP checkpoint once, n stated
    assert "Zero-shot CLIP (3 checkpoints) minus the ImageNet models" in text
    assert "Bonferroni over 10" in text and "reproduced (n = 3 models)" in text
    assert "not testable" in text


@pytest.mark.skipif(not MIRROR.is_dir(), reason="no published-data mirror here")
def test_shape_chapter_published_and_note_without_data_root(tmp_path):
    text = run_chapter("shape_bias", tmp_path, models=["timm:resnet18@random"], n_boot=100)
    assert "spans 0.919 to 0.987 (mean 0.958)" in text
    assert "no `data_root` was given" in text and "make chapter NAME=shape_bias" in text
    assert _charts(text) >= 2
    # every real CLIP once; the texture-leaning OpenAI ResNets shown; one-checkpoint labels
    assert "11 zero-shot CLIP checkpoints** are counted" in text
    assert "openai/RN50 0.210" in text and "openai/RN101 0.252" in text
    assert "reproduced (one checkpoint)" in text and "Bonferroni over 3" in text


@pytest.mark.slow
def test_factors_chapter_real_path_timm(tmp_path, fixture_root):
    text = run_chapter("factors", tmp_path, models=["timm:resnet18@random"],
                       data_root=str(fixture_root), store=str(tmp_path / "store"),
                       device="cpu", batch_size=8, n_boot=50, published=[])
    assert "on `imagenet:val`" in text
    assert "this run has too few" in text  # one standard model: no fit, tables still shown
    assert "This run used real models" in text
    assert "real models on real data" in text


@pytest.mark.slow
def test_shape_chapter_real_path_timm(tmp_path, fixture_root):
    text = run_chapter("shape_bias", tmp_path, models=["timm:resnet18@random"],
                       data_root=str(fixture_root), store=str(tmp_path / "store"),
                       device="cpu", batch_size=8, n_boot=50)
    assert "1000-&gt;16 mapping" in text or "1000->16 mapping" in text
    assert "This run used real models" in text


@pytest.mark.full  # 71 s; the timm real paths of both chapters stay in make test
def test_both_chapters_real_path_with_random_clip(tmp_path, fixture_root):
    """openclip:ViT-B-32@random builds its 1000-class head on the CPU (single template)."""
    store = str(tmp_path / "store")
    models = ["openclip:ViT-B-32@random", "timm:resnet18@random"]
    text = run_chapter("shape_bias", tmp_path, models=models, data_root=str(fixture_root),
                       store=store, device="cpu", batch_size=8, n_boot=50, templates="single")
    assert "direct 16-way head" in text and ("1000-&gt;16 mapping" in text or "1000->16 mapping" in text)
    text = run_chapter("factors", tmp_path, models=models, data_root=str(fixture_root),
                       store=store, device="cpu", batch_size=8, n_boot=50, templates="single",
                       published=[])
    assert "zero-shot CLIP" in text and "on `imagenet:val`" in text


# the chapters at default parameters on the zoo: tests/test_chapter_equivalence.py
