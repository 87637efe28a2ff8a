"""Shape bias against the texture-vs-shape raw data (Geirhos et al. 2019) and hand constructions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from clipsafety import external, shape

RAW = "rgeirhos/texture-vs-shape/raw-data/"
CNN = RAW + "style-transfer-512-nomask-experiment-trained-CNNs/style-transfer-512-nomask-experiment_{}_session-1.csv"
HUMAN = RAW + "style-transfer-512-nomask-experiment/style-transfer-512-nomask-experiment_subject-{:02d}_session_1.csv"


def _read(key):
    try:
        return pd.read_csv(external.fetch(key))
    except external.ExternalUnavailable as exc:
        pytest.skip(f"texture-vs-shape raw data unavailable (set CLIPSAFETY_MIRROR): {exc}")


def test_parse_both_name_forms():
    assert shape.parse_cue_conflict_name("airplane1-bicycle2.png") == ("airplane", "bicycle")
    assert shape.parse_cue_conflict_name("0001_s5n_dnn_0_airplane_00_airplane1-bicycle2.png") == ("airplane", "bicycle")
    assert shape.parse_cue_conflict_name("stimuli/cat/cat10-elephant1.png") == ("cat", "elephant")
    with pytest.raises(ValueError, match="not a cue-conflict stimulus name"):
        shape.parse_cue_conflict_name("zebra1-cat2.png")


@pytest.mark.parametrize("net,expected", [("alexnet", 0.2531), ("vgg16", 0.0921)])
def test_published_cnn_shape_bias(net, expected):
    df = _read(CNN.format(net))
    assert len(shape.cue_conflict_trials(df)) == 1200  # 80 same-class trials dropped
    assert shape.shape_bias_from_decisions(df) == pytest.approx(expected, abs=5e-5)


def test_human_observers():
    vals = np.array([shape.shape_bias_from_decisions(_read(HUMAN.format(i))) for i in range(1, 11)])
    print("human shape bias per subject:", np.round(vals, 4).tolist(), "mean", round(vals.mean(), 4))
    assert np.all((vals >= 0.919) & (vals <= 0.987))
    assert vals.mean() == pytest.approx(0.958, abs=0.001)
    both = pd.concat([_read(HUMAN.format(1)), _read(HUMAN.format(2))])
    tab = shape.shape_bias_table(both)
    np.testing.assert_allclose(tab.shape_bias.to_numpy(), vals[:2])


def test_shape_bias_arrays_hand():
    # trials: (pred, shape, texture)
    pred = ["cat", "dog", "car", "cat", "oven"]
    sh = ["cat", "cat", "car", "cat", "bear"]
    tx = ["dog", "dog", "car", "bird", "clock"]
    # trial 3 dropped (same class); shape hits: 0, 3; texture hits: 1; trial 4 neither
    assert shape.shape_bias(pred, sh, tx) == pytest.approx(2 / 3)
    assert np.isnan(shape.shape_bias(["oven"], ["cat"], ["dog"]))


def test_imagenet_to_16_mapping():
    idx = shape.IMAGENET_INDICES_16
    assert tuple(sorted(idx)) == shape.CUE_CONFLICT_CLASSES == tuple(sorted(shape.CUE_CONFLICT_CLASSES))
    members = [i for c in shape.CUE_CONFLICT_CLASSES for i in idx[c]]
    assert len(members) == len(set(members)) == 207 and min(members) >= 0 and max(members) < 1000
    assert idx["airplane"] == (404,) and idx["knife"] == (499,) and len(idx["dog"]) == 109
    P = np.full((2, 1000), 0.0)
    P[0, list(idx["bear"])] = [0.1, 0.2, 0.3, 0.0]  # mean 0.15
    P[0, 404] = 0.14
    P[1, 152] = 1.0  # one dog of 109: mean 1/109 still beats zero elsewhere
    out = shape.imagenet_to_16(P)
    assert out.shape == (2, 16)
    assert out[0, shape.CUE_CONFLICT_CLASSES.index("bear")] == pytest.approx(0.15)
    dec = shape.decisions_from_probs(P, ["bear1-airplane2.png", "dog1-cat2.png"])
    assert dec.object_response.tolist() == ["bear", "dog"]
    assert shape.shape_bias_from_decisions(dec) == 1.0
    with pytest.raises(ValueError, match="1000 ImageNet classes"):
        shape.imagenet_to_16(np.zeros((2, 16)))
