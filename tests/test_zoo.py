"""The tiny zoo: a short training run converges; every catalogued model loads and predicts."""

import numpy as np
import pandas as pd
import pytest
import torch
from clipsafety.synth import CATEGORIES, get_dataset


def test_small_supervised_run_loss_falls():
    import clipsafety.zoo.arch  # noqa: F401
    import timm
    from clipsafety.zoo.train import train_classifier

    torch.set_num_threads(1)
    ds = get_dataset("train-labelled-10k", n=1024)
    x, y, _ = ds.arrays()
    torch.manual_seed(0)
    m = timm.create_model("synth_convnext_xs", num_classes=10)
    losses = train_classifier(m, x, y, samples_seen=2048, seed=0, lr=3e-3, progress=False)
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.2


def test_small_contrastive_run_loss_falls_and_zero_shot_head_is_normalised():
    from clipsafety.synth import VOCAB, WordTokenizer
    from clipsafety.zoo import zero_shot_head
    from clipsafety.zoo.arch import clip_config
    from clipsafety.zoo.train import build_clip_seeded, train_clip

    torch.set_num_threads(1)
    ds = get_dataset("train-wit-10k", n=1024)
    x = ds.arrays()[0]
    tok = WordTokenizer(16)(ds.captions())
    clip = build_clip_seeded(clip_config("synth_convnext_xs", vocab_size=len(VOCAB)), 0)
    losses = train_clip(clip, x, tok, samples_seen=2048, seed=0, batch=64, progress=False)
    assert np.mean(losses[-4:]) < np.mean(losses[:4]) - 0.1
    W = zero_shot_head(clip, "simple")
    assert W.shape == (64, len(CATEGORIES))
    assert torch.allclose(W.norm(dim=0), torch.ones(len(CATEGORIES)), atol=1e-5)


def test_training_is_deterministic():
    import clipsafety.zoo.arch  # noqa: F401
    import timm
    from clipsafety.zoo.train import train_classifier

    x, y, _ = get_dataset("train-labelled-10k", n=256).arrays()
    out = []
    for _ in range(2):
        torch.manual_seed(5)
        m = timm.create_model("synth_resnet_xs", num_classes=10)
        train_classifier(m, x, y, samples_seen=256, seed=5, progress=False)
        out.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
    assert torch.equal(out[0], out[1])


def _catalog():
    from clipsafety.zoo import list_zoo

    return list_zoo(include_reference=True)


def test_catalog_columns_and_groups():
    from clipsafety.groups import GROUPS

    cat = _catalog()
    assert list(cat.columns[:6]) == ["id", "group", "family", "source", "samples", "resolution"]
    groups = set(cat.loc[cat["reference"] == 0, "group"])
    assert groups <= set(GROUPS)
    assert set(cat["family"]) <= {"resnet", "convnext", "vit"}


@pytest.mark.slow
def test_every_zoo_model_loads_and_predicts_on_id_test():
    from clipsafety.zoo import load, predict_arrays

    ds = get_dataset("synth:id-test")
    x, y, _ = ds.arrays()
    x, y = x[:300], y[:300]
    cat = _catalog()
    ev = pd.read_csv(__import__("clipsafety.zoo", fromlist=["zoo_dir"]).zoo_dir() / "eval.csv")
    for row in cat.itertuples():
        m = load(f"zoo:{row.id}")
        assert m.label_space == "synth" and m.classes == CATEGORIES
        logits = predict_arrays(m, x)
        assert logits.shape == (300, 10) and np.isfinite(logits).all()
        acc = float((logits.argmax(1) == y).mean())
        full = ev.loc[(ev["id"] == row.id) & (ev["dataset"] == "synth:id-test"), "accuracy"].item()
        assert abs(acc - full) < 0.12, (row.id, acc, full)  # 300-sample estimate of the table
        # the PIL path agrees with the batched path
        img, _, _ = ds[0]
        with torch.no_grad():
            one = m.module(m.transform(img)[None]).numpy()
        np.testing.assert_allclose(one[0], logits[0], rtol=1e-3, atol=1e-3)
        if row.kind == "clip":
            assert m.logit_policy["kind"] == "clip" and 1.0 <= m.logit_policy["scale"] <= 100.0


def test_plan_meets_the_zoo_contract():
    """>= 40 models in the paper's groups, 3 families, parents are CLIPs trained earlier in the
    plan, unique seeds, and every matched pair names exactly two models."""
    from collections import Counter

    from clipsafety.groups import GROUPS
    from clipsafety.zoo.plan import PLAN

    models = [m for m in PLAN if not m["reference"]]
    assert len(models) >= 60
    assert {m["group"] for m in models} == {"clip-zeroshot", "clip-ft-direct", "clip-ft-2stage",
                                            "standard", "more-data"} <= set(GROUPS)
    assert {m["family"] for m in models} == {"resnet", "convnext", "vit"}
    assert len({m["seed"] for m in PLAN}) == len(PLAN)
    ids = [m["id"] for m in PLAN]
    for m in PLAN:
        if m["parent"]:
            parent = PLAN[ids.index(m["parent"])]
            assert parent["kind"] == "clip" and ids.index(m["parent"]) < ids.index(m["id"])
    pairs = Counter(k for m in PLAN for k in m["matched_pair"].split(";") if k)
    assert pairs and set(pairs.values()) == {2}, pairs


def test_every_fine_tuned_clip_can_be_interpolated_with_its_zero_shot_parent():
    """WiSE-FT needs both ends in one weight space: the child's image tower has its parent's
    keys and shapes, and its head maps the parent's embedding to the 10 categories."""
    from clipsafety.zoo import _read

    cat = _catalog()
    children = cat[cat["parent"].fillna("").astype(str) != ""]
    assert len(children) >= 12
    for row in children.itertuples():
        child, _, _ = _read(row.id)
        parent, pmeta, _ = _read(row.parent)
        tower = {k[len("visual."):]: v.shape for k, v in parent.items() if k.startswith("visual.")}
        mine = {k[len("visual."):]: v.shape for k, v in child.items() if k.startswith("visual.")}
        assert mine == tower, row.id
        assert tuple(child["head.weight"].shape) == (10, pmeta["clip_config"]["embed_dim"])


def test_weights_fit_the_size_budget_and_match_the_catalog():
    from clipsafety.zoo import _sha256, zoo_dir

    cat = _catalog()
    files = sorted((zoo_dir() / "weights").glob("*.safetensors"))
    assert sorted(p.stem for p in files) == sorted(cat["id"])
    assert sum(p.stat().st_size for p in files) <= 60 * 2**20
    row = cat.iloc[-1]
    assert _sha256(zoo_dir() / "weights" / f"{row['id']}.safetensors") == row["weights_sha256"]


@pytest.mark.slow
def test_training_data_cache_round_trips(tmp_path, monkeypatch):
    """A training set read back from the on-disk cache equals a fresh render."""
    from clipsafety.synth import WordTokenizer
    from clipsafety.zoo.train import _Data

    monkeypatch.setenv("CLIPSAFETY_ZOO_DATA", str(tmp_path))
    name = "train-wit-10k"
    first = _Data()
    first.get(name)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    _, x1, y1, s1 = _Data().get(name)
    ds = get_dataset(name)
    np.testing.assert_array_equal(x1, ds.images())
    np.testing.assert_array_equal(y1, ds.targets)
    np.testing.assert_array_equal(s1, ds.attributes()["subtype"].to_numpy())
    assert torch.equal(_Data().tokens(name), WordTokenizer(16)(ds.captions()))


def test_committed_adversarial_ids_name_the_zoo_reference_and_its_weights():
    import json

    from clipsafety.external import sha256_file
    from clipsafety.synth.datasets import ADVERSARIAL_KEPT
    from clipsafety.zoo import zoo_dir
    from clipsafety.zoo.reference import REFERENCE_MODEL

    rec = json.loads(ADVERSARIAL_KEPT.read_text())
    assert REFERENCE_MODEL == "ref-resnet-labelled" == rec["reference"]
    assert rec["reference_sha256"] == sha256_file(zoo_dir() / "weights" / f"{REFERENCE_MODEL}.safetensors")
    assert rec["generator"] == "python -m clipsafety.zoo.reference"
    idx = rec["candidate_index"]
    assert len(idx) == rec["n"] == 1000 and idx == sorted(set(idx)) and idx[-1] < rec["candidates"]
    cat = _catalog().set_index("id")
    assert cat.loc[REFERENCE_MODEL, "reference"] == 1


@pytest.mark.slow
def test_committed_adversarial_ids_equal_the_reference_models_errors():
    import json

    from clipsafety.synth.datasets import ADVERSARIAL_KEPT
    from clipsafety.zoo import reference_scorer
    from clipsafety.zoo.reference import adversarial_ids

    assert adversarial_ids() == json.loads(ADVERSARIAL_KEPT.read_text())
    # the live filter (the zoo's evaluation path) gives the same data as the committed ids
    live = get_dataset("shift-adversarial", reference=reference_scorer())
    committed = get_dataset("shift-adversarial")
    np.testing.assert_array_equal(live.images(), committed.images())
    assert live.manifest() == committed.manifest()
    pd.testing.assert_frame_equal(live.meta(), committed.meta())


def test_saved_weights_honour_the_umask_and_match_safetensors_bytes(tmp_path):
    """zoo.train._save writes the bytes safetensors' own save_file writes, atomically, with the
    process umask's permissions (save_file alone gives 0600 whatever the umask)."""
    import os

    import torch
    from clipsafety.zoo.train import _save
    from safetensors.torch import load_file, save_file

    module = torch.nn.Linear(3, 2)
    old = os.umask(0o022)
    try:
        _save("tiny", module, {"id": "tiny", "train_seconds": 1.0}, tmp_path)
    finally:
        os.umask(old)
    path = tmp_path / "weights" / "tiny.safetensors"
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    ref = tmp_path / "ref.safetensors"
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(ref), metadata={"clipsafety": '{"id": "tiny"}'})
    assert path.read_bytes() == ref.read_bytes()
    assert torch.equal(load_file(str(path))["weight"], state["weight"])


def test_zoo_modules_import_core_not_the_package():
    """The package imports core (and reference on first use of a scorer); reference imports
    core, never the package, so there is no import circle. The package re-exports core."""
    import ast
    from pathlib import Path

    import clipsafety.zoo as Z
    from clipsafety.zoo import core, reference

    for mod in (core, reference):
        for node in ast.walk(ast.parse(Path(mod.__file__).read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) else [])
            assert "clipsafety.zoo" not in names, f"{mod.__name__}:{node.lineno}"
    assert Z.load is core.load and Z._read is core._read and Z.zoo_dir is core.zoo_dir
    assert Z.alignment_scorer is reference.alignment_scorer
    assert Z.reference_scorer is reference.reference_scorer
