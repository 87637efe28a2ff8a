"""The models chapter's sortable table and its data: what the page and the CSV hold is the
table, the chapter judges no claim, and its study declares what every chapter declares."""

import json

import numpy as np
import pandas as pd
import pytest
from clipsafety import contents, sortable
from clipsafety.plots import CHART_DATA_ENV


def frame():
    return pd.DataFrame({"checkpoint": ["openai/ViT-B-16", "timm/a.b", "x/y, \"z\""],
                         "group": ["zero-shot CLIP", "standard", "standard"],
                         "shape_bias": [47.4595, np.nan, -3.25], "n": [1, 2, 3]})


def test_encode_round_trips_to_the_shown_decimals():
    df = frame()
    back = sortable.decode(json.loads(json.dumps(sortable.encode(df, decimals=2))))
    assert list(back.columns) == list(df.columns)
    assert list(back["checkpoint"]) == list(df["checkpoint"])
    assert back["shape_bias"].tolist()[0] == 47.46 and np.isnan(back["shape_bias"][1])
    assert back["shape_bias"].tolist()[2] == -3.25 and back["n"].tolist() == [1.0, 2.0, 3.0]


def test_published_table_writes_payload_and_csv_under_one_key(tmp_path, monkeypatch):
    monkeypatch.setenv(CHART_DATA_ENV, str(tmp_path))
    html = sortable.sortable_table(frame(), headers={"shape_bias": "Shape bias (%)"},
                                   kind_column="group", csv_name="t.csv")["text/html"]
    js, csv = sorted(tmp_path.glob("*.js")), sorted(tmp_path.glob("*.csv"))
    assert len(js) == len(csv) == 1 and js[0].stem == csv[0].stem
    assert f"../_static/data/{js[0].stem}.js" in html and f"{csv[0].stem}.csv" in html
    back = pd.read_csv(csv[0])
    assert list(back.columns) == ["checkpoint", "group", "Shape bias (%)", "n"]
    assert back["checkpoint"].tolist() == frame()["checkpoint"].tolist()
    assert back["Shape bias (%)"].tolist()[0] == 47.4595
    assert "http" not in html.replace("https://", "")  # nothing remote
    text = js[0].read_text()
    payload = json.loads(text[text.index("]=") + 2:].rstrip().rstrip(";"))
    assert sortable.decode(payload)["Shape bias (%)"].tolist()[0] == 47.5


def test_unpublished_table_stays_in_the_page(monkeypatch):
    monkeypatch.delenv(CHART_DATA_ENV, raising=False)
    html = sortable.sortable_table(frame())["text/html"]
    assert "_static/data" not in html and "openai/ViT-B-16" in html


def test_kind_column_must_exist():
    with pytest.raises(KeyError, match="kind_column 'kind'"):
        sortable.sortable_table(frame(), kind_column="kind")


def test_models_chapter_declares_no_claims_and_is_in_the_contents():
    assert "models" in contents.toc_chapters()
    assert "models" not in contents.claim_chapters()
    st = contents.study("models")
    assert set(st.PARAMETER_RULES) == set(contents.parameters("models"))
    assert st.EXERCISES and contents.about("models")
    for ex in st.EXERCISES:
        for k, v in ex.params.items():
            assert st.PARAMETER_RULES[k](v, ex.params) is None
