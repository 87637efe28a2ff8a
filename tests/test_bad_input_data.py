"""Bad input to datasets and models (issue 16, the data/model part): a clear error naming the
thing, what was expected and what to do, or, for one bad image, a skip listed by name; never
a silent wrong number (images counted twice, identical head columns, a one-class top-1 of
1.0, all-zero or NaN logits) nor a whole (model, dataset) pair lost to one file.

Each test states the behaviour before the fix in its docstring.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import clipsafety
import numpy as np
import pytest
import torch
from clipsafety import cli
from clipsafety.datasets import (
    InvalidDatasetId,
    LayoutError,
    UnknownDataset,
    dataset_info,
    get_dataset,
)
from clipsafety.models import InvalidCheckpoint, UnknownModel, is_known_id
from conftest import expect_error as _expect
from fixtures_real import synsets
from PIL import Image

torch.set_num_threads(2)
M = "timm:resnet18@random"




def _folder(root: Path, classes=("cat", "dog"), per_class: int = 3) -> Path:
    """<root>/<class>/<k>.bmp"""
    for c, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            a = np.random.default_rng(c * 10 + k).integers(0, 256, (24, 24, 3), dtype=np.uint8)
            Image.fromarray(a).save(d / f"{k}.bmp", format="BMP")
    return root


@pytest.fixture
def tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSAFETY_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CLIPSAFETY_STORE", raising=False)
    return tmp_path


# ------------------------------------------------------------------------ folder: datasets
@pytest.mark.parametrize("target", ["root", "class"])
def test_an_image_under_two_labels_is_refused_naming_both_paths(tmp, target):
    """Before: a class folder linked to the root (or to another class) was listed again:
    n 6 -> 12 (or 9), the same images under another label."""
    root = _folder(tmp / "d")
    os.symlink(root if target == "root" else root / "cat", root / "bird")
    err = _expect(lambda: get_dataset(f"folder:{root}"), LayoutError,
                  ["reachable under two class folders", "symlink", "remove the link"])
    msg = str(err)
    assert f"{root / 'cat' / '0.bmp'} (class 'cat')" in msg
    assert (f"{root / 'bird' / 'cat' / '0.bmp'} (class 'bird')" in msg if target == "root"
            else f"{root / 'bird' / '0.bmp'} (class 'bird')" in msg)


def test_a_class_folder_linked_from_outside_is_still_accepted(tmp):
    """A symlinked class folder whose images are nowhere else in the dataset is fine."""
    root = _folder(tmp / "d")
    _folder(tmp / "elsewhere", ("bird",))
    os.symlink(tmp / "elsewhere" / "bird", root / "bird")
    spec = get_dataset(f"folder:{root}")
    assert len(spec) == 9 and spec.classes == ["bird", "cat", "dog"]


def test_wnid_folder_linked_to_another_class_is_refused(tmp):
    """Before: the wnid branch counted the linked class's images again too."""
    wn = synsets()
    root = _folder(tmp / "w", (wn[1], wn[2]))
    os.symlink(root / wn[1], root / wn[3])
    _expect(lambda: get_dataset(f"folder:{root}"), LayoutError,
            [f"(class {wn[1]!r})", f"(class {wn[3]!r})", "reachable under two class folders"])


@pytest.mark.parametrize("classes,shown", [
    (("cat", "Cat", "dog"), ["'Cat' and 'cat'", "('cat')"]),
    (("ice_cream", "ice cream", "dog"), ["'ice cream' and 'ice_cream'", "('ice cream')"]),
    (("Ice_Cream", "ice  cream"), ["'Ice_Cream' and 'ice  cream'"]),
], ids=["case", "underscore", "both"])
def test_class_names_that_collide_are_refused(tmp, classes, shown):
    """Before: accepted; a CLIP head got two identical columns (classes ['Cat', 'cat'])."""
    root = _folder(tmp / "d", classes)
    _expect(lambda: get_dataset(f"folder:{root}"), LayoutError,
            [*shown, str(root), "same class name", "two identical columns", "merge", "rename"])


def test_a_head_over_a_datasets_colliding_names_is_refused():
    """The head side: a dataset's own class names (NamedClasses) that collide are refused by
    the head however the list was built; distinct names keep their label space."""
    from clipsafety.heads import NamedClasses, resolve_classnames

    _expect(lambda: resolve_classnames(NamedClasses(["cat", "dog", "CAT"], "folder-1234abcd")), ValueError,
            ["0 'cat' and 2 'CAT'", "folder-1234abcd", "two identical columns", "rename"])
    assert resolve_classnames(NamedClasses(["cat", "dog"], "folder-1234abcd")) == (["cat", "dog"], "folder-1234abcd")
    assert resolve_classnames("imagenet-1k")[1] == "imagenet-1k"  # a named space is unchanged


def test_one_plain_class_is_refused(tmp):
    """Before: accepted; a one-column head is right on every image (top-1 1.0, no warning)."""
    root = _folder(tmp / "d", ("cat",))
    _expect(lambda: get_dataset(f"folder:{root}"), LayoutError,
            [str(root), "one class folder ('cat')", "at least two classes", "top-1 would be 1.0",
             "add the other classes"])


def test_one_wordnet_id_class_is_scored_in_all_1000_classes(tmp):
    """Before: its label subset was its one column, so top-1 was 1.0 whatever the model; now
    it declares no subset (top-1 over ImageNet's 1000 classes); two classes keep theirs."""
    from fixtures_real import make_wnid_dataset

    make_wnid_dataset(tmp / "data", "one", [7], per_class=2)
    make_wnid_dataset(tmp / "data", "two", [7, 9], per_class=2)
    assert get_dataset(f"folder:{tmp / 'data' / 'one'}").label_subset is None
    assert get_dataset(f"folder:{tmp / 'data' / 'two'}").label_subset == [7, 9]


def test_valid_folders_are_unchanged(tmp):
    """Good input: same ids, targets, classes and manifest as the documented formula."""
    import hashlib

    root = _folder(tmp / "d", ("cat", "ice_cream"))
    spec = get_dataset(f"folder:{root}")
    assert spec.ids == [f"{c}/{k}.bmp" for c in ("cat", "ice_cream") for k in range(3)]
    assert spec.classes == ["cat", "ice cream"] and spec.targets.tolist() == [0, 0, 0, 1, 1, 1]
    h = hashlib.sha256()
    for rel, t, f in zip(spec.ids, spec.targets.tolist(), spec.files):
        h.update(f"{rel}\t{t}\t{hashlib.sha256(f.read_bytes()).hexdigest()}\n".encode())
    assert spec.manifest()["files_sha256"] == h.hexdigest()


def _bomb_png(path: Path, w: int = 20000, h: int = 20000) -> None:
    """A PNG whose header claims w x h pixels (a decompression bomb to PIL)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b""))


def _bad_file(kind: str, folder: Path, monkeypatch) -> str:
    """Put one bad file of ``kind`` into ``folder``; return its sample-id file name."""
    from clipsafety import files
    from clipsafety.datasets import real

    if kind == "dangling-link":
        os.symlink(folder.parent / "nothing-here.png", folder / "gone.png")
        return "gone.png"
    if kind == "unreadable":  # tests run as root: the loader (and the digest) raise as for mode 000
        target = folder / "locked.bmp"
        target.write_bytes((folder / "0.bmp").read_bytes() + b"\0")
        load, digest = real.load_rgb, files._hash_file

        def refuse(fn):
            def wrapped(path, *a, **kw):
                if Path(path).name == "locked.bmp":
                    raise PermissionError(13, "Permission denied", str(path))
                return fn(path, *a, **kw)
            return wrapped
        monkeypatch.setattr(real, "load_rgb", refuse(load))
        monkeypatch.setattr(files, "_hash_file", refuse(digest))
        return "locked.bmp"
    if kind == "decompression-bomb":
        _bomb_png(folder / "bomb.png")
        return "bomb.png"
    if kind == "non-utf8-name":
        with open(os.path.join(os.fsencode(folder), b"bad\xff.bmp"), "wb") as fh:
            fh.write((folder / "0.bmp").read_bytes())
        return "bad\\xff.bmp"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind,reason", [
    ("dangling-link", "FileNotFoundError"),
    ("unreadable", "PermissionError"),
    ("decompression-bomb", "DecompressionBombError"),
    ("non-utf8-name", "not valid UTF-8"),
])
def test_a_bad_file_is_skipped_and_listed_by_name(tmp, monkeypatch, kind, reason):
    """Before: the whole (model, dataset) pair failed: FileNotFoundError (dangling link, from
    the manifest's digest), PermissionError, DecompressionBombError, UnicodeEncodeError."""
    wn = synsets()
    root = _folder(tmp / "w", (wn[1], wn[2]), per_class=2)
    name = _bad_file(kind, root / wn[1], monkeypatch)
    rec = clipsafety.predict(M, f"folder:{root}", store=tmp / "store", image_size=32, progress=False)
    assert len(rec.ids) == 4 and rec.manifest["n_skipped"] == 1 and np.isfinite(rec.logits).all()
    (skip,) = rec.manifest["skipped"]
    assert skip["id"] == f"{wn[1]}/{name}" and reason in skip["reason"], skip


def test_a_good_image_of_a_dataset_with_a_bad_one_scores_as_without_it(tmp):
    """Skipping one file changes nothing for the others: same logits row for the same image."""
    wn = synsets()
    clean = _folder(tmp / "clean", (wn[1], wn[2]), per_class=2)
    dirty = _folder(tmp / "dirty", (wn[1], wn[2]), per_class=2)
    _bomb_png(dirty / wn[1] / "bomb.png")
    a = clipsafety.predict(M, f"folder:{clean}", store=tmp / "s", image_size=32, progress=False)
    b = clipsafety.predict(M, f"folder:{dirty}", store=tmp / "s", image_size=32, progress=False)
    assert list(a.ids) == list(b.ids)
    np.testing.assert_allclose(a.logits, b.logits, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------ dataset ids
def test_folder_path_with_an_unknown_user_is_named(tmp, capsys):
    """Before: RuntimeError 'Could not determine home directory.' (library and CLI)."""
    fragments = ["folder:~nosuchuser/x", "'~nosuchuser'", "no such user", "full path"]
    _expect(lambda: get_dataset("folder:~nosuchuser/x"), InvalidDatasetId, fragments)
    _expect(lambda: dataset_info("folder:~nosuchuser/x"), UnknownDataset, fragments)
    code = cli.main(["eval", "--models", M, "--datasets", "folder:~nosuchuser/x", "--store", str(tmp / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "stopped before running anything" in err and "'~nosuchuser'" in err
    assert not (tmp / "s").exists()


def test_synth_id_outside_the_curated_form_is_an_unknown_dataset(tmp, capsys):
    """Before: dataset_info (the CLI's check) accepted synth:../../etc/passwd@x and the
    builder then raised a bare KeyError."""
    bad = "synth:../../etc/passwd@x"
    for fn in (lambda: dataset_info(bad), lambda: get_dataset(bad)):
        _expect(fn, UnknownDataset, ["unknown dataset id", bad, "synth:train-raw-100k@<filters>"])
    _expect(lambda: dataset_info("synth:train-raw-100k@dedup+nonsense"), UnknownDataset, ["unknown dataset id"])
    code = cli.main(["eval", "--models", M, "--datasets", bad, "--store", str(tmp / "s")])
    assert code == 2 and "unknown dataset id" in capsys.readouterr().err
    # the curated form itself is unchanged
    for ok in ("synth:train-raw-100k@dedup", "synth:train-raw-100k@dedup+balanced-label",
               "synth:train-raw-100k@random-500+balanced"):
        assert dataset_info(ok).id == "synth:train-raw-100k@<filters>"


# ------------------------------------------------------------------------ checkpoints
@pytest.fixture(scope="module")
def r18_state():
    import timm

    torch.manual_seed(0)
    return timm.create_model("resnet18").state_dict()


def test_integer_weights_are_refused_naming_the_tensor(tmp, r18_state):
    """Before: accepted; every weight truncated to an integer, all-zero logits stored."""
    path = tmp / "int.pt"
    torch.save({k: (v.long() if v.is_floating_point() else v) for k, v in r18_state.items()}, path)
    _expect(lambda: clipsafety.load(f"timm:resnet18@{path}"), InvalidCheckpoint,
            [str(path), "non-floating dtype", "'conv1.weight' is int64 (the model's is float32)",
             "expected floating-point weights", "re-save"])


def test_integer_weights_in_safetensors_are_refused(tmp, r18_state):
    from safetensors.torch import save_file

    path = tmp / "int.safetensors"
    sd = dict(r18_state)
    sd["fc.weight"] = sd["fc.weight"].to(torch.int32)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    _expect(lambda: clipsafety.load(f"timm:resnet18@{path}"), InvalidCheckpoint,
            ["1 weight tensor(s)", "'fc.weight' is int32"])


@pytest.mark.parametrize("value,fragment", [(float("nan"), "1 nan, 0 infinite"), (float("inf"), "0 nan, 1 infinite")])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp, r18_state, value, fragment):
    """Before: accepted; a record of NaN logits was stored."""
    sd = {k: v.clone() for k, v in r18_state.items()}
    sd["layer1.0.conv1.weight"][0, 0, 0, 0] = value
    path = tmp / "bad.pt"
    torch.save({"state_dict": sd}, path)  # a wrapped state dict, as training scripts save it
    _expect(lambda: clipsafety.load(f"timm:resnet18@{path}"), InvalidCheckpoint,
            [str(path), "nan or infinite", "'layer1.0.conv1.weight'", fragment, "finite weights"])


def test_a_valid_checkpoint_loads_unchanged(tmp, r18_state):
    """Good input: the integer BatchNorm counters stay accepted; weights and manifest as before."""
    path = tmp / "ok.pt"
    torch.save(r18_state, path)
    m = clipsafety.load(f"timm:resnet18@{path}")
    assert torch.equal(m.module.state_dict()["fc.weight"], r18_state["fc.weight"])
    assert set(m.manifest["weights"]) == {"source", "file", "sha256"} and m.manifest["weights"]["file"] == "ok.pt"


def test_a_checkpoint_with_another_head_names_the_mismatched_keys(tmp):
    """Before: '... (about 0 missing or mismatched keys)'."""
    import timm

    path = tmp / "ten.pt"
    torch.save(timm.create_model("resnet18", num_classes=10).state_dict(), path)
    _expect(lambda: clipsafety.load(f"timm:resnet18@{path}"), InvalidCheckpoint,
            [str(path), "is not a checkpoint of resnet18", "2 tensor(s) of another shape",
             "'fc.weight' is [10, 512] in the checkpoint, [1000, 512] in the model",
             "'fc.bias' is [10] in the checkpoint, [1000] in the model", "10 outputs",
             "architecture before '@'"])


def test_another_architecture_names_missing_and_unexpected_keys(tmp, r18_state):
    path = tmp / "r18.pt"
    torch.save(r18_state, path)
    err = _expect(lambda: clipsafety.load(f"timm:resnet34@{path}"), InvalidCheckpoint,
                  ["is not a checkpoint of resnet34", "key(s) the model needs are missing",
                   "'layer1.2.conv1.weight'", "architecture before '@'"])
    assert "about 0" not in str(err)


def test_a_folder_named_like_a_checkpoint(tmp, r18_state):
    """Before: '... checkpoint '.../x.pt' does not exist' (it does: a folder)."""
    folder = tmp / "x.pt"
    folder.mkdir()
    torch.save(r18_state, folder / "model.pt")
    _expect(lambda: clipsafety.load(f"timm:resnet18@{folder}"), InvalidCheckpoint,
            [str(folder), "is a folder, not a checkpoint file", "expected a timm state dict",
             "pass the checkpoint file itself", "['model.pt']"])
    _expect(lambda: clipsafety.load(f"timm:resnet18@{tmp}/none.pt"), FileNotFoundError,
            ["none.pt", "does not exist"])
    _expect(lambda: clipsafety.load("timm:resnet18@~nosuchuser/x.pt"), FileNotFoundError,
            ["'~nosuchuser'", "full path"])


@pytest.mark.slow
def test_openclip_checkpoints_with_integer_or_infinite_weights(tmp):
    """The same refusal for open_clip checkpoints (a wrapped, 'module.'-prefixed state dict;
    safetensors with an infinite logit scale)."""
    from safetensors.torch import save_file

    sd = clipsafety.load("openclip:ViT-S-32@random", classnames=["cat", "dog"]).extra["clip"].state_dict()
    ints = tmp / "int.pt"
    torch.save({"state_dict": {"module." + k: (v.to(torch.int32) if v.is_floating_point() else v)
                               for k, v in sd.items()}}, ints)
    _expect(lambda: clipsafety.load(f"openclip:ViT-S-32@{ints}", classnames=["cat", "dog"]),
            InvalidCheckpoint, [str(ints), "non-floating dtype", "int32"])
    inf = tmp / "inf.safetensors"
    save_file({k: (torch.tensor(float("inf")) if k == "logit_scale" else v).contiguous() for k, v in sd.items()},
              str(inf))
    _expect(lambda: clipsafety.load(f"openclip:ViT-S-32@{inf}", classnames=["cat", "dog"]),
            InvalidCheckpoint, [str(inf), "'logit_scale'", "1 infinite"])


# ------------------------------------------------------------------------ model ids
@pytest.mark.parametrize("model_id", ["timm:resnet18@", "openclip:ViT-B-32@", "timm:resnet50.a1_in1k@"])
def test_an_empty_tag_is_an_error(model_id, tmp):
    """Before: 'timm:resnet18@' was read as 'timm:resnet18' (pretrained weights)."""
    _expect(lambda: clipsafety.load(model_id), UnknownModel,
            [repr(model_id), "ends with '@' and nothing after it", "drop the '@'", "random"])
    assert not is_known_id(model_id)
    code = cli.main(["eval", "--models", model_id, "--datasets", "synth:id-test", "--store", str(tmp / "s")])
    assert code == 2 and not (tmp / "s").exists()


@pytest.fixture
def zoo_dir(tmp_path, monkeypatch):
    """A zoo folder with one weights file, and a file planted outside its weights folder."""
    zoo = tmp_path / "zoo"
    (zoo / "weights").mkdir(parents=True)
    (zoo / "weights" / "tiny.safetensors").write_bytes(b"not read here")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "planted.safetensors").write_bytes(b"must never be read")
    monkeypatch.setenv("CLIPSAFETY_ZOO", str(zoo))
    from clipsafety.zoo import core

    core._read.cache_clear()
    yield zoo
    core._read.cache_clear()


@pytest.mark.parametrize("zoo_id", ["../../x/planted", "../x/planted", "/abs/planted", "..", ".hidden",
                                    "~root/x", "sub\\..\\..\\x"])
def test_zoo_ids_resolve_inside_the_zoo_only(zoo_dir, monkeypatch, zoo_id):
    """Before: clipsafety.load('zoo:../../x/planted') opened <zoo>/weights/../../x/planted.safetensors."""
    import safetensors
    from clipsafety import zoo
    from clipsafety.zoo.core import UnknownZooModel

    opened = []
    monkeypatch.setattr(safetensors, "safe_open", lambda *a, **kw: opened.append(a) or 1 / 0)
    for fn in (lambda: clipsafety.load(f"zoo:{zoo_id}"), lambda: zoo.load(zoo_id)):
        err = _expect(fn, UnknownZooModel, [f"zoo:{zoo_id}", "not a zoo id", str(zoo_dir / "weights"),
                                            "without folders", "list_zoo"])
        assert isinstance(err, KeyError) and isinstance(err, ValueError)
    assert opened == []


def test_an_unknown_zoo_id_is_still_a_key_error(zoo_dir):
    from clipsafety import zoo
    from clipsafety.zoo.core import UnknownZooModel, weights_path

    with pytest.raises(KeyError, match="not found at"):
        zoo.load("no-such-model")
    with pytest.raises(UnknownZooModel, match="tiny"):  # the known ids are listed
        zoo.load("no-such-model")
    assert weights_path("tiny") == zoo_dir / "weights" / "tiny.safetensors"
