"""Chart builders and the renderer: what a chart page carries (the browser test of the site
checks how the charts fit)."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from clipsafety import charts, plots


@pytest.fixture
def table():
    return pd.DataFrame({
        "model": ["a", "b", "c", "d"], "group": ["clip-zeroshot", "standard"] * 2,
        "id_acc": [0.5, 0.6, 0.7, 0.8], "shape_bias": [0.3, 0.2, 0.4, 0.1],
        "weights_sha256": ["x" * 64] * 4, "loss_first": [5.0] * 4, "unused_nan": [np.nan] * 4})


def _spec(html: str) -> dict:
    return json.loads(re.search(r"var s=(\{.*?\});(?:function dec|var d=|function go)", html).group(1))


def test_a_chart_page_carries_only_the_columns_the_chart_encodes(table, monkeypatch):
    monkeypatch.delenv(plots.CHART_DATA_ENV, raising=False)
    plots.setup()
    html = plots._render(charts.versus_accuracy(table, "id_acc", "shape_bias").to_dict())["text/html"]
    rows = [r for rows in _spec(html)["datasets"].values() for r in rows]
    cols = set().union(*rows)
    assert {"model", "id_acc", "shape_bias", "group_label"} <= cols
    assert not {"weights_sha256", "loss_first", "unused_nan"} & cols


def test_large_tables_are_written_once_as_data_files(table, tmp_path, monkeypatch):
    monkeypatch.setenv(plots.CHART_DATA_ENV, str(tmp_path))
    monkeypatch.setattr(plots, "INLINE_BYTES", 10)
    chart = charts.strip_by_group(table)
    first = plots._render(chart.to_dict())["text/html"]
    second = plots._render(chart.to_dict())["text/html"]
    files = list(tmp_path.glob("*.js"))
    assert len(files) == 1  # the same table twice is one file
    key = files[0].stem
    for html in (first, second):
        assert f'<script src="{plots.CHART_DATA_URL}{key}.js"></script>' in html
        assert key in _spec(html)["datasets"].values()
    text = files[0].read_text()
    data = json.loads(text.split("]=", 1)[1].rstrip().rstrip(";"))
    assert data["n"] == len(table) and data["cols"]["model"] == list(table["model"])
    assert data["cols"]["group_label"]["levels"] == ["zero-shot CLIP", "standard ImageNet"]
    assert "function dec(" in first  # the page turns the columns back into rows


def test_columnar_round_trip_and_short_floats():
    rows = [{"a": "x", "b": 1 / 3, "c": None}, {"a": "x", "b": 2.0, "c": "y"},
            {"a": "x", "b": 0.1, "c": "y"}]
    col = plots.columnar(rows)
    assert col["cols"]["a"] == {"levels": ["x"], "codes": [0, 0, 0]}
    assert col["cols"]["b"] == [0.333333, 2.0, 0.1]
    assert col["cols"]["c"] == [None, "y", "y"]  # not all strings: kept as values


def test_training_source_chart_keeps_models_without_metadata_and_has_one_legend():
    df = pd.DataFrame({"model": ["wit-a", "wit-b", "laion"], "x": [60.0, 70.0, 65.0],
                       "y": [5.0, 6.0, 4.0], "source": ["WIT", None, "LAION-2B"],
                       "seen": [np.nan, np.nan, 34.0]})
    spec = charts.scatter_by_category(df, "x", "y", "source", "seen", tooltip=["model"],
                                      shapes={"WIT": "circle"}).to_dict()
    filled, hollow = spec["layer"]
    rows = {name: spec["datasets"][layer["data"]["name"]] for name, layer in
            (("filled", filled), ("hollow", hollow))}
    assert [r["model"] for r in rows["filled"]] == ["laion"]
    assert [r["model"] for r in rows["hollow"]] == ["wit-a", "wit-b"]  # none dropped
    assert {r["source"] for r in rows["hollow"]} == {"WIT", "unknown"}
    assert hollow["mark"]["filled"] is False and "size" not in hollow["encoding"]
    domains = [layer["encoding"][ch]["scale"]["domain"] for layer in (filled, hollow)
               for ch in ("color", "shape")]
    assert all(d == ["LAION-2B", "WIT", "unknown"] for d in domains)  # one legend
    assert "hollow marker: seen unknown (2 models)" in " ".join(spec["title"]["subtitle"])


def test_panel_grids_fit_the_text_width():
    for columns in (1, 2, 3):
        w = charts.panel_width(columns)
        assert columns * (w + charts.AXIS + 10) <= charts.TEXT_WIDTH


def test_image_grid_is_images_not_a_chart():
    images = {"synth:id-test": np.zeros((3, 8, 8, 3), dtype=np.uint8)}
    html = charts.image_grid(images, size=32).data
    assert html.count("<img ") == 3 and "data:image/png;base64," in html
    assert "synth:id-test" in html and len(html) < 3000
