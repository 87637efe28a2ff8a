"""Bad input and faults (issue 16): a clear error, never a silent wrong result, a raw
traceback, a lost page or a stale cache.

Table-driven. Each case asserts the exit status (CLI, chapter runner) or the exception
class (library), fragments of the message that name the thing, what was expected and what
to do, that no traceback reached the user, and that nothing already computed or built was
lost. Only names that existed before the issue are imported at module level, so the same
file runs against an older checkout (``PYTHONPATH=<old>/lib``) to give the "before" column.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from clipsafety import book, cli, metrics
from clipsafety.book import executor
from conftest import expect_error as _expect
from fixtures_real import make_wnid_dataset
from PIL import Image

M = "timm:resnet18@random"
RNG = np.random.default_rng(0)


# ------------------------------------------------------------------------------ fixtures
def _named_folder(root: Path, classes=("cat", "dog"), per_class: int = 3, fmt: str = "BMP") -> Path:
    """<root>/<class>/<k>.bmp: plain class names (a folder: dataset's own label space)."""
    for c, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            a = np.random.default_rng(c * 10 + k).integers(0, 256, (24, 24, 3), dtype=np.uint8)
            Image.fromarray(a).save(d / f"{k}.{fmt.lower()}", format=fmt)
    return root


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A tmp cache, a store already holding one record, a wnid folder and a named folder."""
    monkeypatch.setenv("CLIPSAFETY_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CLIPSAFETY_STORE", raising=False)
    from clipsafety.records import PredictionRecord
    from clipsafety.store import Store

    store = Store(tmp_path / "store")
    rec = PredictionRecord(logits=RNG.normal(size=(3, 4)).astype(np.float32),
                           targets=np.array([0, 1, 2]), ids=np.array(["a", "b", "c"]),
                           manifest={"model": {"model_id": "x"}, "dataset": {"dataset_id": "y"},
                                     "label_space": "s", "n": 3})
    store.put("k" * 32, rec)
    make_wnid_dataset(tmp_path / "data", "wnid", [1, 2], per_class=2)
    _named_folder(tmp_path / "named")
    (tmp_path / "afile").write_text("not a folder")
    return tmp_path


def _snapshot(root: Path) -> dict:
    """Every file under ``root`` with its bytes (what must not be lost)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _run_cli(argv, capsys):
    """``(exit status, stdout, stderr)`` of the CLI in-process; an exception escaping main is
    the user seeing a traceback, and fails the case."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def _fmt(argv, tmp: Path):
    return [a.replace("{tmp}", str(tmp)) if isinstance(a, str) else a for a in argv]


# ------------------------------------------------------------------------------ the CLI
_EVAL = ["eval", "--store", "{tmp}/store", "--no-progress"]
CLI_CASES = [
    # id, argv, exit status, fragments (all must appear in stdout+stderr, case-insensitive)
    ("unknown-model", ["--models", "timm:resnet181", "--datasets", "folder:{tmp}/data/wnid"], 2,
     ["unknown model id", "timm:resnet181", "did you mean"]),
    ("unknown-dataset", ["--models", M, "--datasets", "imagenet:skecth"], 2,
     ["unknown dataset id", "imagenet:skecth", "did you mean", "imagenet:sketch"]),
    ("catalog-typo", ["--catalog", "zooo", "--datasets", "folder:{tmp}/data/wnid"], 2,
     ["--catalog", "unknown catalog 'zooo'", "expected one of"]),
    ("catalog-missing-file", ["--catalog", "{tmp}/nope.csv", "--datasets", "folder:{tmp}/data/wnid"], 2,
     ["--catalog", "nope.csv", "does not exist"]),
    ("batch-size-0", ["--models", M, "--datasets", "folder:{tmp}/data/wnid", "--batch-size", "0"], 2,
     ["--batch-size", "0 is not valid", "expected an integer >= 1"]),
    ("batch-size-negative", ["--models", M, "--datasets", "folder:{tmp}/data/wnid", "--batch-size", "-4"], 2,
     ["--batch-size", "-4 is not valid", "expected an integer >= 1"]),
    ("batch-size-text", ["--models", M, "--datasets", "folder:{tmp}/data/wnid", "--batch-size", "many"], 2,
     ["--batch-size", "'many'", "integer"]),
    ("image-size-0", ["--models", M, "--datasets", "folder:{tmp}/data/wnid", "--image-size", "0"], 2,
     ["--image-size", "0 is not valid", "expected an integer >= 16"]),
    ("num-workers-negative", ["--models", M, "--datasets", "folder:{tmp}/data/wnid", "--num-workers", "-1"], 2,
     ["--num-workers", "expected an integer >= 0"]),
    ("limit-0", ["--catalog", "zoo", "--limit", "0", "--datasets", "folder:{tmp}/data/wnid"], 2,
     ["--limit", "expected an integer >= 1"]),
    ("device-unknown", ["--models", M, "--datasets", "folder:{tmp}/data/wnid", "--device", "tpu"], 2,
     ["--device", "'tpu'", "'cpu'", "'cuda'"]),
    ("store-is-a-file", ["--models", M, "--datasets", "folder:{tmp}/data/wnid", "--store", "{tmp}/afile"], 2,
     ["--store", "afile", "is a file", "pass a folder"]),
    ("data-root-missing", ["--models", M, "--datasets", "imagenet:r", "--data-root", "{tmp}/nodata"], 2,
     ["--data-root", "nodata", "is not a folder", "expected the folder"]),
    ("templates-unknown", ["--models", M, "--datasets", "folder:{tmp}/data/wnid", "--templates", "fancy"], 2,
     ["--templates", "'fancy'", "named set", "file"]),
    ("classnames-unknown", ["--models", M, "--datasets", "folder:{tmp}/data/wnid", "--classnames", "imagenet"], 2,
     ["--classnames", "invalid choice", "dataset"]),
    ("out-folder-missing", ["--models", M, "--datasets", "folder:{tmp}/data/wnid", "--out", "{tmp}/no/t.csv"], 2,
     ["--out", "does not exist", "create it"]),
    ("out-is-a-folder", ["--models", M, "--datasets", "folder:{tmp}/data/wnid", "--out", "{tmp}/data"], 2,
     ["--out", "is a folder", "csv"]),
    ("groups-unknown", ["--catalog", "zoo", "--groups", "clip", "--datasets", "folder:{tmp}/data/wnid"], 2,
     ["--groups", "'clip'", "clip-zeroshot"]),
    ("groups-without-catalog", ["--models", M, "--groups", "standard", "--datasets", "folder:{tmp}/data/wnid"], 2,
     ["--groups", "--catalog"]),
    ("folder-empty-path", ["--models", M, "--datasets", "folder:"], 2,
     ["folder:", "no path", "folder:path"]),
    ("folder-missing", ["--models", M, "--datasets", "folder:{tmp}/nowhere"], 2,
     ["nowhere", "does not exist", "class folders"]),
    ("folder-is-a-file", ["--models", M, "--datasets", "folder:{tmp}/afile"], 2,
     ["afile", "is not a folder"]),
    ("no-models", ["--datasets", "folder:{tmp}/data/wnid"], 2, ["no models", "--models", "--catalog"]),
    # a curated synthetic set is a valid id (the registry's family pattern): only the bad
    # model stops the run, the dataset is not reported
    ("curated-synth-id-accepted", ["--models", "zoo:nope", "--datasets", "synth:train-raw-100k@dedup"], 2,
     ["unknown model id 'zoo:nope'"]),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_rejects_before_any_work(case, env, capsys):
    name, argv, code, fragments = case
    before = _snapshot(env / "store")
    got, out, err = _run_cli(_fmt(_EVAL + argv, env), capsys)
    text = (out + err).lower()
    assert got == code, (got, out, err)
    for f in fragments:
        assert f.lower() in text, (f, out, err)
    assert "traceback" not in text
    assert _snapshot(env / "store") == before  # nothing computed is lost, nothing ran
    if name == "curated-synth-id-accepted":
        assert "unknown dataset" not in text


def test_cli_device_cuda_without_a_gpu(env, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    before = _snapshot(env / "store")
    code, out, err = _run_cli(_fmt(_EVAL + ["--models", M, "--datasets", "folder:{tmp}/data/wnid",
                                            "--device", "cuda"], env), capsys)
    assert code == 2 and "--device" in err and "no CUDA GPU" in err and "'cpu'" in err
    assert "Traceback" not in out + err and _snapshot(env / "store") == before


def test_cli_models_command_with_a_bad_catalog(capsys):
    code, out, err = _run_cli(["models", "--catalog", "zooo"], capsys)
    assert code == 2 and "unknown catalog 'zooo'" in err and "expected one of" in err
    assert "Traceback" not in out + err


def test_cli_long_errors_are_never_cut(env, capsys):
    """A failing pair's message reaches the table's notes and --out in full (not 160 chars)."""
    (env / "data" / "imagenet-a" / "wrong").mkdir(parents=True)
    code, out, err = _run_cli(_fmt(_EVAL + ["--models", M, "--datasets", "imagenet:a",
                                            "--data-root", "{tmp}/data", "--image-size", "32",
                                            "--out", "{tmp}/t.csv"], env), capsys)
    assert code == 1 and "error: LayoutError" in out and "Traceback" not in out + err
    from clipsafety.datasets import REGISTRY

    assert "See the book's appendix 'Datasets on disk' for each layout" in out
    tail = f"to get the data: {REGISTRY['imagenet:a'].get}."
    assert tail in out  # the remedy, at the end of a ~600-character message
    import pandas as pd

    row = pd.read_csv(env / "t.csv").iloc[0]
    assert tail in " ".join(str(v) for v in row.tolist())


def test_cli_classifier_on_a_named_folder_is_a_label_space_error(env, capsys):
    """A timm ImageNet-1k model on a folder of plain class names: no accuracy of folder
    indices read as ImageNet columns, but an error naming both spaces and the fix."""
    before = _snapshot(env / "store")
    code, out, err = _run_cli(_fmt(_EVAL + ["--models", M, "--datasets", "folder:{tmp}/named",
                                            "--image-size", "32"], env), capsys)
    assert code == 1 and "LabelSpaceMismatch" in out and "Traceback" not in out + err
    assert "'imagenet-1k'" in out and "'folder-" in out and "Fix:" in out and "wordnet ids" in out.lower()
    header = out.split("errors")[0].splitlines()[0].split()
    # no accuracy in the table: its columns are the task's identity, status and time only
    # (matching "0.0" in the text failed whenever the time was 0.0x s)
    assert header == ["model", "dataset", "status", "seconds"], header
    assert _snapshot(env / "store") == before  # nothing was computed or stored


def test_cli_recompute_and_corrupt_record_recovery(env, capsys):
    args = _fmt(_EVAL + ["--models", M, "--datasets", "folder:{tmp}/data/wnid", "--image-size", "32",
                         "--out", "{tmp}/t.csv"], env)
    import pandas as pd

    assert _run_cli(args, capsys)[0] == 0
    first = pd.read_csv(env / "t.csv")
    assert first["status"].tolist() == ["computed"] and first["top1"].notna().all()
    assert _run_cli(args, capsys)[0] == 0 and pd.read_csv(env / "t.csv")["status"].tolist() == ["cached"]
    code, out, err = _run_cli(args + ["--recompute"], capsys)
    assert code == 0 and pd.read_csv(env / "t.csv")["status"].tolist() == ["computed"]
    key = pd.read_csv(env / "t.csv")["key"].iloc[0]
    rec_dir = next(p for p in (env / "store" / "records").iterdir() if p.name.startswith(str(key)))
    arr = rec_dir / "arrays.safetensors"
    arr.write_bytes(arr.read_bytes()[: arr.stat().st_size // 2])
    code, out, err = _run_cli(args, capsys)
    assert code == 0 and pd.read_csv(env / "t.csv")["status"].tolist() == ["computed"]
    assert "corrupt record" in err and str(arr) in err and "recomputed" in err
    assert "Traceback" not in out + err
    assert pd.read_csv(env / "t.csv")["top1"].iloc[0] == first["top1"].iloc[0]
    assert any((env / "store" / "corrupt").iterdir())  # moved aside, kept for inspection


def test_cli_garbage_checkpoint_is_named_and_never_unpickled(env, capsys):
    bad = env / "garbage.pt"
    bad.write_bytes(b"\x80\x02this is not a checkpoint" * 200)
    code, out, err = _run_cli(_fmt(_EVAL + ["--models", f"timm:resnet18@{bad}", "--datasets",
                                            "folder:{tmp}/data/wnid", "--image-size", "32"], env), capsys)
    assert code == 1 and "not a valid checkpoint" in out and str(bad) in out
    assert "retry with weights_only=False" not in out and "will likely succeed" not in out
    assert "Traceback" not in out + err


# ------------------------------------------------------------------------------ the library


L = RNG.normal(size=(20, 5))
T = RNG.integers(0, 5, 20)
LIB_CASES = [
    # metrics: a ValueError naming the argument, never a number
    ("auroc-2d", lambda: metrics.auroc(np.ones((4, 2)), np.zeros((4, 2))), ValueError, ["id_scores", "1-D", "msp"]),
    ("fpr-2d", lambda: metrics.fpr_at_tpr(np.ones(4), np.zeros((4, 2))), ValueError, ["ood_scores", "1-D"]),
    ("aupr-2d", lambda: metrics.aupr_in(np.ones((3, 3)), np.zeros(3)), ValueError, ["1-D"]),
    ("auroc-empty", lambda: metrics.auroc([], [1.0]), ValueError, ["need id and ood scores"]),
    ("auroc-nan", lambda: metrics.auroc([np.nan, 1.0], [0.0]), ValueError, ["non-finite"]),
    ("softmax-temperature-0", lambda: metrics.softmax(L, temperature=0), ValueError, ["temperature", "positive", "got 0"]),
    ("nll-temperature-0", lambda: metrics.nll(L, T, temperature=0), ValueError, ["temperature", "positive"]),
    ("ece-temperature-negative", lambda: metrics.ece_from_logits(L, T, temperature=-1.0), ValueError, ["temperature", "positive"]),
    ("apply-temperature-0", lambda: metrics.apply_temperature(L, 0), ValueError, ["temperature", "positive"]),
    ("energy-temperature-nan", lambda: metrics.energy(L, temperature=float("nan")), ValueError, ["temperature"]),
    ("transform-percentages", lambda: metrics.transform([75.0, 80.0]), ValueError, ["fractions in [0, 1]", "divide percentages by 100"]),
    ("fit-trend-percentages", lambda: metrics.fit_trend([70.0, 80.0], [60.0, 65.0]), ValueError, ["divide percentages by 100"]),
    ("bootstrap-empty", lambda: metrics.bootstrap_ci(np.mean, []), ValueError, ["empty"]),
    ("bootstrap-no-function", lambda: metrics.bootstrap_ci([]), ValueError, ["metric function", "bootstrap_ci(fn, values)"]),
    ("bootstrap-scalar", lambda: metrics.bootstrap_ci(np.mean, 5.0), ValueError, ["scalar", "rows"]),
    ("bootstrap-n-boot-negative", lambda: metrics.bootstrap_ci(np.mean, [1.0, 2.0], n_boot=-5), ValueError, ["n_boot", ">= 1", "-5"]),
    ("correlation-two-points", lambda: metrics.correlation([1, 2], [2, 3]), ValueError, ["at least 3"]),
    ("accuracy-nan-logits", lambda: metrics.accuracy(np.full((2, 3), np.nan), [0, 1]), ValueError, ["nan or inf", "rows"]),
    ("accuracy-target-outside", lambda: metrics.accuracy(L, np.full(20, 7)), ValueError, ["outside the label space"]),
    ("accuracy-ood-targets", lambda: metrics.accuracy(L, np.full(20, -1)), ValueError, ["ood", "targets >= 0"]),
    ("trend-scale-unknown", lambda: metrics.fit_trend([0.5, 0.6], [0.4, 0.5], scale="cubic"), ValueError, ["'cubic'", "expected one of"]),
]


@pytest.mark.parametrize("case", LIB_CASES, ids=[c[0] for c in LIB_CASES])
def test_library_rejects_bad_values(case):
    _, fn, exc, fragments = case
    _expect(fn, exc, fragments)


def test_metric_values_unchanged_for_valid_input():
    """The checks only reject: valid input gives the same numbers as before."""
    assert metrics.auroc([0.9, 0.8, 0.1], [0.2, 0.05]) == pytest.approx(5 / 6)
    assert metrics.transform([0.5], "logit")[0] == 0.0
    assert np.isnan(metrics.transform([np.nan], "logit")[0])  # NaN still passes through
    np.testing.assert_allclose(metrics.softmax(L, temperature=2.0).sum(1), 1.0, rtol=1e-6)
    est, lo, hi = metrics.bootstrap_ci(np.mean, np.arange(10.0), n_boot=50)
    assert est == 4.5 and lo <= est <= hi


def _record(label_space, target_space, targets, label_map=None, n_cols=1000):
    from clipsafety.records import PredictionRecord

    n = len(targets)
    man = {"model": {"model_id": "m"}, "dataset": {"dataset_id": "d"}, "label_space": label_space,
           "target_space": target_space, "label_subset": None}
    if label_map is not None:
        man["label_map"] = label_map
    return PredictionRecord(logits=RNG.normal(size=(n, n_cols)).astype(np.float32),
                            targets=np.asarray(targets), ids=np.array([str(i) for i in range(n)]), manifest=man)


def test_summary_record_refuses_targets_of_another_space():
    rec = _record("imagenet-1k", "folder-1234abcd", [0, 1, 1, 0])
    _expect(lambda: metrics.summary_record(rec), ValueError,
            ["'imagenet-1k'", "'folder-1234abcd'", "no metric", "fix:", "classnames='dataset'"])


def test_summary_record_asks_to_map_cue_conflict_and_objectnet_first():
    rec = _record("imagenet-1k", "cue-conflict-16", [0, 3, 15])
    _expect(lambda: metrics.summary_record(rec), ValueError,
            ["'cue-conflict-16'", "map the logits", "imagenet_to_16"])
    rec = _record("imagenet-1k", "objectnet-113", [0, 1], label_map=[[1, 2], [3]])
    _expect(lambda: metrics.summary_record(rec), ValueError, ["'objectnet-113'", "project_logits"])


def test_summary_record_same_space_unchanged():
    rec = _record("imagenet-1k", "imagenet-1k", [0, 1, 2, 3], n_cols=4)
    got = metrics.summary_record(rec)
    assert got["accuracy"] == metrics.accuracy(rec.logits, rec.targets)


def test_predict_refuses_a_classifier_on_a_named_folder(env):
    from clipsafety.infer import predict

    before = _snapshot(env / "store")
    _expect(lambda: predict(M, f"folder:{env / 'named'}", store=env / "store", image_size=32, progress=False),
            ValueError, ["'imagenet-1k'", "'folder-", "fix:"])
    assert _snapshot(env / "store") == before


@pytest.mark.parametrize("kw,fragments", [
    ({"batch_size": 0}, ["batch_size=0", "integer >= 1"]),
    ({"batch_size": -4}, ["batch_size=-4", "integer >= 1"]),
    ({"image_size": 0}, ["image_size=0", "integer >= 1"]),
    ({"num_workers": -1}, ["num_workers=-1", "integer >= 0"]),
    ({"device": "gpu0"}, ["'gpu0'", "'cpu'", "'cuda'"]),
    ({"classnames": "imagenet"}, ["classnames='imagenet'", "'dataset'"]),
], ids=["batch-0", "batch-neg", "image-size-0", "workers-neg", "device-unknown", "classnames-unknown"])
def test_predict_rejects_bad_options_before_work(env, kw, fragments):
    from clipsafety.infer import predict

    before = _snapshot(env / "store")
    _expect(lambda: predict(M, f"folder:{env / 'data' / 'wnid'}", store=env / "store", progress=False, **kw),
            ValueError, fragments)
    assert _snapshot(env / "store") == before


def test_store_pointing_at_a_file(env):
    from clipsafety.store import Store

    _expect(lambda: Store(env / "afile"), RuntimeError, ["afile", "is a file", "folder"])
    assert (env / "afile").read_text() == "not a folder"


@pytest.mark.parametrize("path,fragments", [
    ("", ["no path after 'folder:'", "folder:/data"]),
    ("{tmp}/nowhere", ["does not exist", "check the path"]),
    ("{tmp}/afile", ["is a file", "expected a folder"]),
], ids=["empty", "missing", "file"])
def test_folder_paths(env, path, fragments):
    from clipsafety.datasets import get_dataset

    _expect(lambda: get_dataset("folder:" + path.replace("{tmp}", str(env))), FileNotFoundError, fragments)


def test_folder_with_an_empty_class_folder(env):
    from clipsafety.datasets import get_dataset

    (env / "named" / "empty").mkdir()
    _expect(lambda: get_dataset(f"folder:{env / 'named'}"), FileNotFoundError,
            ["['empty']", "hold no images", "add images to them or remove them"])


@pytest.fixture
def checkpoints(tmp_path):
    import torch

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x80\x02this is not a checkpoint" * 200)
    st = tmp_path / "garbage.safetensors"
    st.write_bytes(b"this is not safetensors either" * 200)
    other = tmp_path / "resnet18.pt"
    import timm

    torch.save(timm.create_model("resnet18").state_dict(), other)
    return garbage, st, other


@pytest.mark.parametrize("which,arch,fragments", [
    ("garbage", "timm:resnet18", ["not a valid checkpoint", "weights_only=true", "re-save"]),
    ("safetensors", "timm:resnet18", ["not a valid checkpoint", "safetensors"]),
    ("other", "timm:resnet34", ["is not a checkpoint of resnet34", "architecture before '@'"]),
], ids=["garbage-pt", "garbage-safetensors", "other-architecture"])
def test_bad_checkpoints_are_named(checkpoints, which, arch, fragments):
    import clipsafety

    path = dict(zip(("garbage", "safetensors", "other"), checkpoints))[which]
    err = _expect(lambda: clipsafety.load(f"{arch}@{path}"), ValueError, [str(path), *fragments])
    assert "will likely succeed" not in str(err) and "retry with weights_only=false" not in str(err).lower()


@pytest.mark.slow
def test_garbage_checkpoint_openclip(checkpoints):
    import clipsafety

    garbage = checkpoints[0]
    err = _expect(lambda: clipsafety.load(f"openclip:RN50@{garbage}"), ValueError,
                  [str(garbage), "not a valid checkpoint"])
    assert "will likely succeed" not in str(err)


def test_missing_checkpoint_is_named(tmp_path):
    import clipsafety

    _expect(lambda: clipsafety.load(f"timm:resnet18@{tmp_path}/none.pt"), FileNotFoundError,
            ["none.pt", "does not exist"])


# ------------------------------------------------------------------------------ the store
def test_changed_image_bytes_at_equal_size_is_a_miss(env):
    """A BMP rewritten with other pixels has the same size: the key must still change."""
    from clipsafety.infer import predict
    from fixtures_real import synsets

    folder = env / "data" / "bmp"
    (folder / synsets()[5]).mkdir(parents=True)
    for k in range(3):
        a = np.random.default_rng(k).integers(0, 256, (24, 24, 3), dtype=np.uint8)
        Image.fromarray(a).save(folder / synsets()[5] / f"{k}.bmp", format="BMP")
    kw = dict(store=env / "store", image_size=32, progress=False)
    r1 = predict(M, f"folder:{folder}", **kw)
    img = sorted(folder.rglob("*.bmp"))[0]
    size = img.stat().st_size
    Image.fromarray(np.full((24, 24, 3), 7, np.uint8)).save(img, format="BMP")
    assert img.stat().st_size == size
    r2 = predict(M, f"folder:{folder}", **kw)
    assert r2.cache_hit is False and r2.manifest["key"] != r1.manifest["key"]
    assert not np.array_equal(r1.logits[0], r2.logits[0]) and np.array_equal(r1.logits[1:], r2.logits[1:])
    assert predict(M, f"folder:{folder}", **kw).cache_hit is True  # unchanged now: a hit


@pytest.mark.parametrize("victim", ["arrays.safetensors", "samples.parquet", "manifest.json"])
def test_truncated_record_file_is_named_moved_aside_and_recomputed(env, victim):
    from clipsafety.infer import predict

    kw = dict(store=env / "store", image_size=32, progress=False)
    ds = f"folder:{env / 'data' / 'wnid'}"
    r1 = predict(M, ds, **kw)
    path = env / "store" / "records" / r1.manifest["key"] / victim
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r2 = predict(M, ds, **kw)
    msgs = [str(w.message) for w in caught]
    assert any(str(path) in m and "recomputed" in m for m in msgs), msgs
    assert r2.cache_hit is False and np.array_equal(r1.logits, r2.logits)
    assert predict(M, ds, **kw).cache_hit is True
    moved = list((env / "store" / "corrupt").iterdir())
    assert len(moved) == 1 and (moved[0] / victim).exists()


def test_corrupt_record_raises_when_asked(env):
    from clipsafety.infer import predict
    from clipsafety.store import Store

    r1 = predict(M, f"folder:{env / 'data' / 'wnid'}", store=env / "store", image_size=32, progress=False)
    path = env / "store" / "records" / r1.manifest["key"] / "samples.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    path.write_bytes(bytes(data))
    _expect(lambda: Store(env / "store").get(r1.manifest["key"], on_corrupt="raise"), RuntimeError,
            [str(path), "checksum"])


def test_truncated_shard_is_set_aside_and_its_rows_recomputed(env):
    from clipsafety.infer import predict

    ds = f"folder:{env / 'data' / 'wnid'}"
    full = predict(M, ds, store=env / "full", image_size=32, progress=False)
    key = full.manifest["key"]
    # an unfinished run: shards of 1 sample, the second one truncated
    part = env / "store" / "partial" / key
    part.mkdir(parents=True)
    from clipsafety.store import Store

    run = Store(env / "store").partial(key, {})
    for i in range(2):
        run.write_shard(np.array([i]), full.logits[i:i + 1], full.targets[i:i + 1], [full.ids[i]], [])
    shard = run.shards()[1]
    shard.write_bytes(shard.read_bytes()[:40])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = predict(M, ds, store=env / "store", image_size=32, progress=False)
    assert any(str(shard) in str(w.message) for w in caught)
    assert rec.manifest["resumed_samples"] == 1  # the good shard was kept, the bad one redone
    np.testing.assert_allclose(rec.logits, full.logits, atol=1e-5)  # other batch sizes: float noise


def test_record_files_honour_the_umask(env):
    from clipsafety.infer import predict

    old = os.umask(0o002)
    try:
        rec = predict(M, f"folder:{env / 'data' / 'wnid'}", store=env / "shared", image_size=32,
                      progress=False, shard_size=2)
    finally:
        os.umask(old)
    d = env / "shared" / "records" / rec.manifest["key"]
    heads = list((env / "cache").rglob("*.safetensors"))
    for p in [d, *d.iterdir(), env / "shared" / "records", *heads]:
        mode = p.stat().st_mode & 0o777
        assert mode & 0o060 == 0o060, (p, oct(mode))  # group read + write
    assert json.loads((d / "manifest.json").read_text())["checksums"]


# ------------------------------------------------------------------------------ chapters


CHAPTER_CASES = [
    # chapter, [(key, value)], fragments of the message
    ("factors", [("models", "[zoo:a, 3]")], ["'models'", "3", "not model ids"]),
    ("factors", [("models", "[zoo:nope]")], ["'models'", "unknown model id", "zoo:nope"]),
    ("factors", [("models", "[zoo:clip-resnet-wit-10k, timm:resnet50.a1_in1k]")], ["'models'", "mixes zoo models"]),
    ("factors", [("n_boot", "-5")], ["'n_boot'", "-5", "integer >= 1"]),
    ("factors", [("scale", "cubic")], ["'scale'", "cubic", "'logit'", "'probit'"]),
    ("factors", [("which", "sideways")], ["'which'", "'top'", "'multi'"]),
    ("factors", [("factors", "[pose, glare]")], ["'factors'", "glare", "expected a non-empty list"]),
    ("factors", [("baseline_group", "stanard")], ["'baseline_group'", "'standard'"]),
    ("factors", [("published", "[imagenet_testbed, mine]")], ["'published'", "mine", "modelvshuman"]),
    ("factors", [("device", "tpu")], ["'device'", "'tpu'", "'cpu'"]),
    ("factors", [("batch_size", "0")], ["'batch_size'", "integer >= 1"]),
    ("factors", [("data_root", "/nonexistent/data")], ["'data_root'", "is not a folder"]),
    ("factors", [("dataset", "imagenet:skecth")], ["'dataset'", "unknown dataset id", "imagenet:sketch"]),
    ("factors", [("templates", "fancy")], ["'templates'", "'openai'", "'simple'"]),
    ("factors", [("templates", "[a photo]")], ["'templates'", "exactly one '{}'"]),
    ("factors", [("seed", "-1")], ["'seed'", "integer >= 0"]),
    ("landscape", [("shifts", "[v2, v3]")], ["'shifts'", "v3", "objectnet"]),
    ("landscape", [("sources", "[timm, mine]")], ["'sources'", "mine", "open_clip"]),
    ("landscape", [("sources", "[timm]"), ("baseline_sources", "[imagenet-testbed]")],
     ["'baseline_sources'", "imagenet-testbed", "not among sources"]),
    ("landscape", [("top_n", "0")], ["'top_n'", "integer >= 1"]),
    ("landscape", [("n_boot", "0")], ["'n_boot'", "integer >= 1"]),
    ("shape_bias", [("id_dataset", "synth:id-tset")], ["'id_dataset'", "synth:id-test"]),
    ("shape_bias", [("store", "{afile}")], ["'store'", "is a file"]),
    ("appendix_world", [("n_examples", "0")], ["'n_examples'", "integer >= 1"]),
    ("appendix_world", [("scale", "cubic")], ["'scale'", "'logit'", "'probit'"]),
    ("appendix_world", [("models", "[zoo:clip-resnet-wit-1000k]")],
     ["'models'", "zoo:clip-resnet-wit-1000k"]),
    ("ood", [("clip_score", "mls")], ["'clip_score'", "'mcm'", "'neglabel'"]),
    ("ood", [("temperature", "0")], ["'temperature'", "positive"]),
    ("ood", [("ood_sets", "[ood:sun, ood:moon]")], ["'ood_sets'", "ood:moon", "unknown dataset id"]),
    # checks that held before the issue
    ("factors", [("n_bot", "5")], ["no parameter 'n_bot'", "did you mean 'n_boot'"]),
    ("factors", [("n_boot", "many")], ["'n_boot'", "expects int"]),
    ("nosuch", [], ["no chapter named 'nosuch'", "valid chapters"]),
]


@pytest.mark.parametrize("case", CHAPTER_CASES, ids=[f"{c[0]}-{'-'.join(k for k, _ in c[1]) or 'name'}"
                                                      for c in CHAPTER_CASES])
def test_chapter_rejects_bad_values_and_keeps_the_page(case, pages, capsys, tmp_path):
    chapters, ran = pages
    name, pairs, fragments = case
    (tmp_path / "afile").write_text("x")
    pairs = [(k, v.replace("{afile}", str(tmp_path / "afile"))) for k, v in pairs]
    before = _snapshot(chapters)
    try:
        rc = book.main(["chapter", name, *[x for kv in pairs for x in ("-p", *kv)]])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    assert rc == 2, (rc, out, err)
    for f in fragments:
        assert f.lower() in err.lower(), (f, err)
    if name != "nosuch":  # a bad value lists the valid parameters as an unknown name does
        assert f"valid parameters of {name}" in err.lower(), err
    assert "Traceback" not in out + err
    assert ran == [] and _snapshot(chapters) == before  # nothing ran, the built page is kept


def test_chapter_valid_values_run(pages, capsys):
    chapters, ran = pages
    assert book.main(["chapter", "factors", "-p", "scale", "probit", "-p", "models",
                      "[zoo:clip-resnet-wit-10k]", "-p", "factors", "all"]) == 0
    assert ran and ran[0][1]["scale"] == "probit"


def test_every_chapter_parameter_has_a_rule_and_its_default_passes():
    for ch in book.chapters():
        declared = ch.parameters()
        rules = book.CHAPTER_RULES[ch.name]
        assert set(declared) <= set(rules), (ch.name, set(declared) - set(rules))
        book.check_values(ch.name, {k: v["default"] for k, v in declared.items()})


def test_book_root_is_the_checkout_worked_in(tmp_path, monkeypatch):
    """A second clone sharing a venv (whose editable install points at the first clone)
    builds its own book: the root follows the current directory, not the package path."""
    from clipsafety import files

    clone = tmp_path / "clone2"
    (clone / "lib" / "clipsafety").mkdir(parents=True)
    (clone / "lib" / "clipsafety" / "__init__.py").write_text("")
    (clone / "analyses").mkdir()
    (clone / "book").mkdir()
    (clone / "book" / "sub").mkdir()
    monkeypatch.delenv("CLIPSAFETY_ROOT", raising=False)
    assert files.find_repo_root(clone / "book" / "sub") == clone
    assert files.find_repo_root(tmp_path) == files.PACKAGE_ROOT
    monkeypatch.setenv("CLIPSAFETY_ROOT", str(clone))
    assert files.find_repo_root(tmp_path) == clone
    monkeypatch.setenv("CLIPSAFETY_ROOT", str(tmp_path))
    _expect(lambda: files.find_repo_root(), RuntimeError, ["CLIPSAFETY_ROOT", "not a clipsafety checkout"])


def test_unavailable_note_is_a_myst_admonition(tmp_path):
    """The note is a MyST {note} and the runner marks its cell's Markdown as MyST, so
    Jupyter Book renders an admonition (checked in a built page), not a code block."""
    import nbformat
    from clipsafety.plots import unavailable_note

    md = unavailable_note(RuntimeError("x.csv is not available"))
    assert md.data.startswith("```{note}\n") and md.data.endswith("\n```")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("n", outputs=[nbformat.v4.new_output(
        "display_data", data={"text/markdown": md.data, "text/plain": "<md>"})])]
    path = tmp_path / "p.ipynb"
    nbformat.write(nb, path)
    executor._hide_code(path)
    cell = nbformat.read(path, as_version=4).cells[0]
    assert cell.metadata["mystnb"]["markdown_format"] == "myst"
