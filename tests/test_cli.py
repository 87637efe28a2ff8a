"""The eval command: runs the matrix, reads the cache, stops on unknown ids, reports failures."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
from clipsafety.cli import main
from clipsafety.infer import predict
from fixtures_real import make_wnid_dataset, timm_subset

M = "timm:resnet18@random"


def test_eval_matrix_then_cached(tmp_path, capsys):
    sub = timm_subset("r")
    make_wnid_dataset(tmp_path / "data", "imagenet-r", [sub[3], sub[4]], per_class=2)
    make_wnid_dataset(tmp_path / "data", "mine", [7], per_class=3)
    args = ["eval", "--models", M, "--datasets", "imagenet:r", f"folder:{tmp_path / 'data' / 'mine'}",
            "--data-root", str(tmp_path / "data"), "--store", str(tmp_path / "s"), "--image-size", "32",
            "--no-progress", "--out", str(tmp_path / "t.csv")]
    assert main(args) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "t.csv")
    assert table["status"].tolist() == ["computed", "computed"] and "2 ok, 0 failed" in out
    # the table's top-1 equals the record's accuracy over the 200-class subset, computed here
    rec = predict(M, "imagenet:r", data_root=tmp_path / "data", store=tmp_path / "s", image_size=32,
                  progress=False)
    cols = np.array(rec.label_subset)
    top1 = float(np.mean(cols[rec.logits[:, cols].argmax(1)] == rec.targets))
    assert table["top1"].iloc[0] == top1 and table["n"].tolist() == [4, 3]
    assert main(args) == 0
    assert pd.read_csv(tmp_path / "t.csv")["status"].tolist() == ["cached", "cached"]


def test_unknown_ids_stop_with_suggestions(tmp_path, capsys):
    code = main(["eval", "--models", "openclip:ViT-B-32@laion2b_s34b_b97k", "--datasets", "imagenet:skecth",
                 "--store", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "openclip:ViT-B-32@laion2b_s34b_b79k" in err and "imagenet:sketch" in err
    assert not (tmp_path / "s").exists()  # nothing ran


def test_catalog_csv_and_failing_pair(tmp_path, capsys):
    cat = tmp_path / "mine.csv"
    cat.write_text("id,group\ntimm:resnet18@random,standard\n")
    make_wnid_dataset(tmp_path / "data", "mine", [1], per_class=2)
    (tmp_path / "data" / "imagenet-a" / "wrong").mkdir(parents=True)
    code = main(["eval", "--catalog", str(cat), "--datasets", f"folder:{tmp_path / 'data' / 'mine'}",
                 "imagenet:a", "--data-root", str(tmp_path / "data"), "--store", str(tmp_path / "s"),
                 "--image-size", "32", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1 and "computed" in out and "error: LayoutError" in out and "1 ok, 1 failed" in out


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "clipsafety", "datasets"], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0 and "imagenet:r" in r.stdout and "objectnet" in r.stdout


def test_a_header_only_catalog_is_named_as_empty(tmp_path, capsys):
    """Before: "no models; pass ... --catalog" although a catalog was passed."""
    cat = tmp_path / "empty.csv"
    cat.write_text("id,group\n")
    code = main(["eval", "--catalog", str(cat), "--datasets", "synth:id-test",
                 "--store", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and f"--catalog {str(cat)!r} lists no models" in err and "add rows" in err


def test_an_unwritable_out_names_out_after_the_table(tmp_path, capsys):
    """``--out /dev/full``: the table is printed and the records stored; the error names --out
    and what to do, instead of an [Errno 28] with no option named."""
    import os

    if not os.path.exists("/dev/full"):
        import pytest

        pytest.skip("no /dev/full here")
    make_wnid_dataset(tmp_path / "data", "mine", [1, 2], per_class=2)
    code = main(["eval", "--models", M, "--datasets", f"folder:{tmp_path / 'data' / 'mine'}",
                 "--store", str(tmp_path / "s"), "--image-size", "32", "--no-progress",
                 "--out", "/dev/full"])
    out, err = capsys.readouterr()
    assert code == 1 and "computed" in out
    assert "--out '/dev/full': the table could not be written" in err and "another --out" in err
