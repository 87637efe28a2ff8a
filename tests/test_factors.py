"""factor_table reproduces ImageNet-X's published accuracies_per_factor.csv and handles
annotations from elsewhere."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from clipsafety import external, factors
from clipsafety.records import PredictionRecord

REPO = "facebookresearch/imagenetx"


def _fetch(path):
    try:
        return external.fetch(f"{REPO}/{path}")
    except external.ExternalUnavailable as exc:
        pytest.skip(f"ImageNet-X published files unavailable (set CLIPSAFETY_MIRROR): {exc}")


@pytest.fixture(scope="module")
def predictions():
    return {m: pd.read_csv(_fetch(f"model_predictions/base/{m}.csv")) for m in ("ResNet50", "ViT")}


@pytest.mark.parametrize("which", ["top", "multi"])
def test_reproduces_published_table(predictions, which):
    pub = pd.read_csv(_fetch(f"results/val/{which}_factor/base/class/accuracies_per_factor.csv"), index_col=0)
    ours = factors.factor_table(predictions, which)
    published_cols = [*factors.FACTORS, "worst_factor", "average", "worst_100_classes"]
    assert list(pub.columns) == published_cols
    assert list(ours.columns[: len(published_cols)]) == published_cols
    for model in ("ResNet50", "ViT"):
        diff = (ours.loc[model, published_cols] - pub.loc[model, published_cols]).abs().max()
        assert diff < 1e-9, (model, which, diff)
        # error ratio from the published numbers, by ImageNet-X's formula
        er = (1 - pub.loc[model, list(factors.FACTORS)]) / (1 - pub.loc[model, "average"])
        np.testing.assert_allclose(ours.loc[model, [f"error_ratio_{f}" for f in factors.FACTORS]], er, atol=1e-9)


def test_single_frame_with_model_column_matches_dict(predictions):
    df = pd.concat([d.assign(model=m) for m, d in predictions.items()])
    a = factors.factor_table(df, "top")
    b = factors.factor_table(predictions, "top")
    pd.testing.assert_frame_equal(a, b)
    long = factors.factor_long(a)
    assert len(long) == 2 * 16
    row = long[(long.model == "ViT") & (long.factor == "pose")].iloc[0]
    assert row.accuracy == pytest.approx(a.loc["ViT", "pose"])


def _hand_annotations():
    rows = []
    # 6 images, 2 classes; factors: pose on 0,1,2; style on 3; nothing else
    for i in range(6):
        r = {"file_name": f"img{i}.png", "class": i % 2, **{f: 0 for f in factors.FACTORS}}
        rows.append(r)
    for i in (0, 1, 2):
        rows[i]["pose"] = 1
    rows[3]["style"] = 1
    return pd.DataFrame(rows)


def test_custom_annotations_hand_computed():
    ann = _hand_annotations()
    # correct on img0, img1, img3, img4; wrong on img2, img5
    pred = pd.DataFrame({"file_name": [f"img{i}.png" for i in range(6)], "predicted_class": [0, 1, 1, 1, 0, 0]})
    t = factors.factor_table(pred, annotations=ann, worst_k=1)
    assert t.loc["model", "pose"] == pytest.approx(2 / 3)
    assert t.loc["model", "style"] == pytest.approx(1.0)
    assert np.isnan(t.loc["model", "color"])
    assert t.loc["model", "average"] == pytest.approx(4 / 6)
    assert t.loc["model", "worst_factor"] == pytest.approx(2 / 3)
    # class 0: img0 ok, img2 wrong, img4 ok -> 2/3; class 1: img1 ok, img3 ok, img5 wrong -> 2/3
    assert t.loc["model", "worst_1_classes"] == pytest.approx(2 / 3)
    assert t.loc["model", "error_ratio_pose"] == pytest.approx((1 / 3) / (2 / 6))


def test_record_and_errors():
    ann = _hand_annotations()
    logits = np.zeros((6, 4), np.float32)
    logits[np.arange(6), [0, 1, 1, 1, 0, 0]] = 1.0
    logits[:, 3] = 5.0  # column 3 is outside the subset, so it must not win
    rec = PredictionRecord(logits, np.array([0, 1, 0, 1, 0, 1]), np.array([f"val/x/img{i}.png" for i in range(6)]),
                           {"model_id": "zoo:tiny", "label_subset": [0, 1]})
    pred = factors.predictions_from_record(rec)
    assert pred.predicted_class.tolist() == [0, 1, 1, 1, 0, 0] and pred.file_name[0] == "img0.png"
    t = factors.factor_table_from_record(rec, annotations=ann, worst_k=1)
    assert t.index.tolist() == ["zoo:tiny"] and t.loc["zoo:tiny", "average"] == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="lack columns"):
        factors.factor_table(pred, annotations=ann.drop(columns=["pose"]))
    with pytest.raises(ValueError, match="none of the"):
        factors.factor_table(pred.assign(file_name="zzz" + pred.file_name), annotations=ann)
    with pytest.raises(ValueError, match="predicted_class"):
        factors.factor_table(pred.drop(columns="predicted_class"), annotations=ann)


def test_factor_with_every_flagged_image_wrong_is_zero_not_nan():
    import numpy as np
    import pandas as pd
    from clipsafety.factors import FACTORS, factor_table

    n = 40
    ann = pd.DataFrame({"file_name": [f"img{i}.png" for i in range(n)], "class": np.arange(n) % 4})
    for f in FACTORS:
        ann[f] = 0
    ann.loc[:9, "pose"] = 1  # 10 pose images, all predicted wrongly below
    ann.loc[10:, "background"] = 1
    pred = pd.DataFrame({"file_name": ann["file_name"], "predicted_class": ann["class"]})
    pred.loc[:9, "predicted_class"] = (ann.loc[:9, "class"] + 1) % 4
    t = factor_table(pred, annotations=ann, worst_k=2)
    assert t["pose"].iloc[0] == 0.0
    assert t["background"].iloc[0] == 1.0
    assert np.isnan(t["texture"].iloc[0])  # no texture image at all
