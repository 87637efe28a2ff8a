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


# ------------------------------------------------------------------ the chapter's tables

def _observers(source="T"):
    return pd.DataFrame({
        "source": source, "observer": ["h1", "clipA", "clipB", "rn50", "rn50-copy", "vit"],
        "group": ["human", "clip-zeroshot", "clip-zeroshot", "standard", "standard", "more-data"],
        "training": ["-", "WIT", "LAION", "ImageNet", "ImageNet", "ImageNet-21k"],
        "shape_bias": [0.96, 0.6, 0.45, 0.2, 0.2, 0.4], "lo": 0.0, "hi": 1.0, "cue_share": 0.8,
        "duplicate_of": ["", "", "", "", "rn50", ""]})


def test_published_network_tables():
    from clipsafety.studies import shape_bias as SS

    nets = SS.published_networks({"T": _observers("T"), "B": _observers("B").iloc[:2]})
    assert "human" not in set(nets["group"]) and len(nets) == 6  # 5 of T, 1 of B
    t = SS.network_table(nets)
    assert list(t.columns) == list(SS.NETWORK_COLUMNS)
    assert t["shape_bias"].tolist() == sorted(nets["shape_bias"], reverse=True)
    assert list(t.index) == list(range(6))
    k = SS.network_kinds(nets)
    # T's non-CLIP networks without the duplicate: rn50 (ImageNet) and vit (ImageNet-21k)
    assert k.loc[("T", "ImageNet")].tolist() == [1, 0.2, 0.2, 0.2]
    assert k.loc[("T", "ImageNet-21k")].tolist() == [1, 0.4, 0.4, 0.4]
    assert ("B", "WIT") not in k.index


def test_observers_with_id_accuracy_from_the_colour_experiment():
    from clipsafety.studies import shape_bias as SS

    colour = pd.DataFrame({"dataset": "colour",
                           "observer": ["clipA"] * 4 + ["rn50"] * 2,
                           "condition": ["cr", "cr", "bw", "cr", "cr", "bw"],
                           "category": ["cat", "dog", "cat", "car", "cat", "dog"],
                           "object_response": ["cat", "cat", "cat", "Car", "dog", "dog"]})
    t = SS.observers_with_id_accuracy(_observers(), colour).set_index("model")
    assert "rn50-copy" not in t.index  # a duplicate
    assert t.loc["clipA", "id_acc"] == pytest.approx(2 / 3)  # cat ok, dog wrong, car ok (case)
    assert t.loc["rn50", "id_acc"] == 0.0 and np.isnan(t.loc["vit", "id_acc"])


def test_live_tables_of_the_chapter():
    from types import SimpleNamespace

    from clipsafety.studies import shape_bias as SS

    shape_t = pd.DataFrame({"model": ["c1", "c2", "s1"],
                            "group": ["clip-zeroshot", "clip-zeroshot", "standard"],
                            "shape_bias": [0.5, 0.7, 0.2], "reading": ["1000-way"] * 3,
                            "hash": ["x", "y", "z"]})
    L = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 1.0], [5.0, 0.0, 9.0]])
    recs = {"c1": SimpleNamespace(logits=L, targets=np.array([0, 1, 1, 0]), label_subset=None),
            # on the label subset [0, 1] row 3 is class 0 (5 > 0), not 2
            "s1": SimpleNamespace(logits=L, targets=np.array([0, 1, 1, 0]), label_subset=[0, 1])}
    t = SS.with_id_accuracy(shape_t, recs)
    assert t["id_acc"].iloc[0] == 0.5 and t["id_acc"].iloc[2] == 0.75 and np.isnan(t["id_acc"].iloc[1])
    assert "id_acc" not in shape_t  # a new table
    assert list(SS.shape_overview(t).columns) == ["model", "group", "reading", "shape_bias", "id_acc"]
    direct = pd.DataFrame({"model": ["c2", "c1"], "shape_bias": [0.9, 0.4], "reading": ["16-way"] * 2})
    d = SS.direct_reading(t, direct)
    assert d.values.tolist() == [["c1", 0.5, "1000-way", 0.4, "16-way"],
                                 ["c2", 0.7, "1000-way", 0.9, "16-way"]]
    s = SS.group_shape_summary(t, n_boot=200, seed=0).set_index("group")
    from clipsafety.groups import group_label

    assert s.loc[group_label("clip-zeroshot"), "mean"] == pytest.approx(0.6)
    assert s.loc[group_label("clip-zeroshot"), "n_models"] == 2
    assert s.loc[group_label("standard"), "mean"] == pytest.approx(0.2)


def test_with_human_mean_replaces_the_humans():
    from clipsafety.studies import shape_bias as SS

    acc = pd.DataFrame({"dataset": "d", "condition": ["a", "a", "b", "a"], "order": [0, 0, 1, 0],
                        "observer": ["h1", "h2", "h1", "net"], "group": ["human"] * 3 + ["standard"],
                        "accuracy": [0.8, 0.6, 0.5, 0.3]})
    out = SS.with_human_mean(acc)
    assert set(out["observer"]) == {"net", "humans (mean)"}
    hm = out[out.observer == "humans (mean)"].set_index("condition")["accuracy"]
    assert hm.to_dict() == pytest.approx({"a": 0.7, "b": 0.5})
    assert set(out.loc[out.observer == "humans (mean)", "group"]) == {"human"}
