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


# ----------------------------------------------------------------------------- builders moved
# out of the chapters and studies: each chart carries the table it is given and encodes the
# columns it names, within the text width

def _rows(spec: dict, layer: dict | None = None) -> pd.DataFrame:
    """The rows of a chart's (or one layer's) named dataset as a table."""
    name = (layer or spec)["data"]["name"]
    return pd.DataFrame(spec["datasets"][name])


def _fits(spec: dict, columns: int) -> None:
    """``columns`` panels of the chart's width (and their axes) fit the text column."""
    width = spec.get("spec", spec).get("width") or spec["width"]
    assert columns * (width + charts.AXIS + 10) <= charts.TEXT_WIDTH


@pytest.fixture
def line_points():
    return pd.DataFrame({
        "source": ["timm", "timm", "open_clip", "timm", "timm", "open_clip"],
        "model": ["r50", "vit", "clip", "r50", "vit", "clip"],
        "group": ["standard", "standard", "clip-zeroshot"] * 2,
        "imagenet": [0.761, 0.812, 0.683] * 2,
        "shift": ["r", "r", "r", "a", "a", "a"],
        "shift_acc": [0.363, 0.452, 0.771, 0.0012, 0.1234, 0.5],
        "eff_rob": [0.0, -0.01, 0.25, 0.0, 0.01, 0.3333],
        "predicted": [0.36, 0.46, 0.52, 0.0, 0.11, 0.17]})


def test_accuracy_on_the_line_carries_the_points_in_percent(line_points):
    bands = pd.DataFrame({"shift": ["r", "r", "a", "a"], "x": [0.6, 0.9, 0.6, 0.9],
                          "lo": [0.2, 0.4, 0.0, 0.1], "mid": [0.3, 0.5, 0.05, 0.2],
                          "hi": [0.4, 0.6, 0.1, 0.3]})
    names = {"r": "ImageNet-R", "a": "ImageNet-A"}
    spec = charts.accuracy_on_the_line(line_points, bands, ["r", "a"], names).to_dict()
    panels = [c for row in spec["vconcat"] for c in row["hconcat"]]
    assert len(panels) == 2 and panels[0]["width"] == charts.panel_width(2)
    _fits(panels[0], 2)
    tables = [pd.DataFrame(rows) for rows in spec["datasets"].values()]
    shown = next(t for t in tables if "model" in t)  # the panels share one table of points
    assert list(shown.columns) == ["model", "source", "group", "group_label", "shift",
                                   "imagenet_pct", "shift_acc_pct", "eff_rob_pct"]
    assert shown["model"].tolist() == line_points["model"].tolist()
    assert shown["imagenet_pct"].tolist() == [76.1, 81.2, 68.3] * 2
    assert shown["shift_acc_pct"].tolist() == [36.3, 45.2, 77.1, 0.12, 12.34, 50.0]
    assert shown["eff_rob_pct"].tolist() == [0.0, -1.0, 25.0, 0.0, 1.0, 33.33]
    band_rows = pd.concat([t for t in tables if "mid" in t]).sort_values(["shift", "x"])
    expected = bands.sort_values(["shift", "x"])
    assert band_rows["shift"].tolist() == expected["shift"].tolist()
    for c in ("x", "lo", "mid", "hi"):
        assert np.allclose(band_rows[c], 100 * expected[c])
    for panel, shift, name in zip(panels, ["r", "a"], ["ImageNet-R", "ImageNet-A"]):
        pts = panel["layer"][-1]
        assert pts["transform"][0]["filter"] == f"(datum['shift'] === '{shift}')"
        assert pts["encoding"]["x"]["field"] == "imagenet_pct"
        assert pts["encoding"]["y"]["field"] == "shift_acc_pct"
        assert pts["encoding"]["y"]["title"] == f"{name} top-1 (%)"
    tips = [t["field"] for t in pts["encoding"]["tooltip"]]
    assert tips == ["model", "source", "group_label", "imagenet_pct", "shift_acc_pct",
                    "eff_rob_pct"]


def test_effective_robustness_ticks_show_medians_in_points(line_points):
    medians = pd.DataFrame({"shift": ["r", "r", "a", "a"], "group": ["standard", "clip-zeroshot"] * 2,
                            "median": [-0.005, 0.25, 0.005, 0.3333], "n": [2, 1, 2, 1]})
    spec = charts.effective_robustness_ticks(line_points, medians, ["r", "a"],
                                             {"r": "R", "a": "A"}).to_dict()
    assert [p["title"]["text"] for p in spec["vconcat"]] == ["R", "A"]
    ticks, med, _zero = spec["vconcat"][0]["layer"]
    assert _rows(spec, ticks)["eff_rob_pct"].tolist() == [0.0, -1.0, 25.0, 0.0, 1.0, 33.33]
    assert ticks["encoding"]["x"]["field"] == "eff_rob_pct"
    assert med["encoding"]["x"]["field"] == "median_pct"
    assert np.allclose(_rows(spec, med)["median_pct"], [-0.5, 25.0, 0.5, 33.33])
    assert spec["vconcat"][0]["width"] + 190 <= charts.TEXT_WIDTH


def test_effective_robustness_by_category_keeps_every_model_with_a_value():
    table = pd.DataFrame({"model": ["a", "b", "c", "d"], "imagenet": [0.6, 0.7, 0.8, 0.75],
                          "ER mean": [0.05, np.nan, 0.1, -0.02],
                          "train_source": ["WIT", "LAION-2B", None, "LAION-2B"],
                          "samples_seen": [12.8e9, 34e9, np.nan, 3e9]})
    spec = charts.effective_robustness_by_category(table, "train_source", "samples_seen",
                                                   size_label="samples (B)").to_dict()
    filled, hollow = spec["layer"]
    rows = pd.concat([_rows(spec, filled), _rows(spec, hollow)])
    assert sorted(rows["model"]) == ["a", "c", "d"]  # b has no effective robustness
    by = rows.set_index("model")
    assert np.allclose(by.loc[["a", "c", "d"], "imagenet_pct"], [60.0, 80.0, 75.0])
    assert np.allclose(by.loc[["a", "c", "d"], "er_mean_pct"], [5.0, 10.0, -2.0])
    assert np.isclose(by.loc["a", "samples_seen_b"], 12.8) and by.loc["c", "train_source"] == "unknown"
    assert filled["encoding"]["size"]["field"] == "samples_seen_b"
    assert filled["encoding"]["y"]["field"] == "er_mean_pct"
    assert spec["width"] + charts.AXIS + 10 <= charts.TEXT_WIDTH


def test_faceted_scatter_encodes_the_long_table_it_is_given():
    long = pd.DataFrame({"curation": ["random", "dedup"] * 4, "size": [100] * 8,
                         "condition": ["id"] * 4 + ["shift"] * 4,
                         "scaling": ["before", "before", "after", "after"] * 2,
                         "acc": np.linspace(0.1, 0.8, 8), "value": np.linspace(0.3, 0.01, 8)})
    spec = charts.faceted_scatter(long, "acc", "value", "curation", "condition", "scaling",
                                  extra=["size"], y_title="ECE", title="t").to_dict()
    pd.testing.assert_frame_equal(_rows(spec), long)
    enc = spec["spec"]["encoding"]
    assert (enc["x"]["field"], enc["y"]["field"], enc["color"]["field"]) == ("acc", "value", "curation")
    assert enc["y"]["title"] == "ECE"
    assert (spec["facet"]["row"]["field"], spec["facet"]["column"]["field"]) == ("condition", "scaling")
    assert [(t["field"], t["type"]) for t in enc["tooltip"]][:4] == [
        ("curation", "nominal"), ("size", "quantitative"), ("condition", "nominal"),
        ("scaling", "nominal")]
    _fits(spec, 2)


def test_faceted_lines_one_panel_per_measure():
    long = pd.DataFrame({"parent": ["p", "p", "q", "q"] * 2, "alpha": [0.0, 1.0] * 4,
                         "measure": ["id_acc"] * 4 + ["auroc_msp"] * 4,
                         "value": [0.5, 0.8, 0.4, 0.7, 0.9, 0.85, 0.88, 0.8]})
    spec = charts.faceted_lines(long, "alpha", "parent", x_format=".2f", faded=0.15).to_dict()
    pd.testing.assert_frame_equal(_rows(spec), long)
    enc = spec["spec"]["encoding"]
    assert (enc["x"]["field"], enc["y"]["field"], enc["color"]["field"]) == ("alpha", "value", "parent")
    assert "scale" not in enc["x"] and spec["facet"]["field"] == "measure"
    assert spec["resolve"]["scale"]["y"] == "independent" and spec["columns"] == 2
    assert enc["opacity"]["value"] == 0.15
    log = charts.faceted_lines(long, "alpha", "parent", log_x=True).to_dict()
    assert log["spec"]["encoding"]["x"]["scale"]["type"] == "log"
    _fits(spec, 2)


def test_interval_facets_draw_each_interval():
    res = pd.DataFrame({"curation": ["random", "dedup"], "residual": [0.01, -0.02],
                        "lo": [-0.01, -0.03], "hi": [0.03, -0.01], "cell": ["ece before (id)"] * 2})
    spec = charts.interval_facets(res, "curation", "residual", "cell").to_dict()
    pd.testing.assert_frame_equal(_rows(spec), res)
    rule, pts, zero = spec["spec"]["layer"]
    assert (rule["encoding"]["x"]["field"], rule["encoding"]["x2"]["field"]) == ("lo", "hi")
    assert pts["encoding"]["x"]["field"] == "residual" and zero["encoding"]["x"]["datum"] == 0
    assert spec["facet"]["field"] == "cell"
    _fits(spec, 2)


def test_path_panels_join_only_the_path_and_show_x_in_percent():
    table = pd.DataFrame({"parent": ["p"] * 4, "recipe": ["zero-shot", "WiSE-FT", "full FT", "LP-FT"],
                          "alpha": [0.0, 0.5, 1.0, np.nan], "label": ["zs", "w", "ft", "lpft"],
                          "id_acc": [0.5, 0.6, 0.7, 0.65], "auroc_msp": [0.9, 0.88, 0.8, 0.85]})
    spec = charts.path_panels(table, "id_acc", "auroc_msp", "recipe", "parent",
                              ["zero-shot", "WiSE-FT", "full FT"], "alpha",
                              series_order=["zero-shot", "LP-FT", "WiSE-FT", "full FT"]).to_dict()
    rows = _rows(spec)
    assert np.allclose(rows["x"], [50.0, 60.0, 70.0, 65.0])
    assert rows["y"].tolist() == table["auroc_msp"].tolist()
    line, pts = spec["spec"]["layer"]
    assert line["transform"][0]["filter"]["oneOf"] == ["zero-shot", "WiSE-FT", "full FT"]
    assert line["encoding"]["order"]["field"] == "alpha"
    assert pts["encoding"]["color"]["sort"] == ["zero-shot", "LP-FT", "WiSE-FT", "full FT"]
    assert spec["facet"]["field"] == "parent"
    _fits(spec, 2)


def test_mean_points_and_stage_lines_encode_their_columns():
    long = pd.DataFrame({"label": ["a", "a", "b", "b"], "score": ["msp", "mcm"] * 2,
                         "auroc": [0.8, 0.7, 0.9, 0.6]})
    spec = charts.mean_points(long, "label", "auroc", "score").to_dict()
    pd.testing.assert_frame_equal(_rows(spec), long)
    enc = spec["encoding"]
    assert (enc["y"]["field"], enc["y"]["aggregate"]) == ("auroc", "mean")
    assert enc["xOffset"]["field"] == "score" and spec["width"] + charts.AXIS <= charts.TEXT_WIDTH
    pairs = pd.DataFrame({"model": ["m", "m"], "source": ["NINCO"] * 2, "parent": ["p", "p"],
                          "stage": ["zero-shot", "fine-tuned"], "acc": [70.0, 80.0], "au": [0.9, 0.8]})
    spec = charts.stage_lines(pairs, "acc", "au", "model", "source", "stage", extra=["parent"]).to_dict()
    pd.testing.assert_frame_equal(_rows(spec), pairs)
    enc = spec["encoding"]
    assert (enc["detail"]["field"], enc["shape"]["field"], enc["color"]["field"]) == (
        "model", "stage", "source")
    assert spec["width"] + charts.AXIS <= charts.TEXT_WIDTH


# ----------------------------------------------------------------------------- words, not fields

def _snake_charts(line_points):
    """Every builder the chapters call, fed tables whose columns and values are snake_case
    names (``overall_acc``, ``partial_view``), without titles where a caller may leave one
    out: what a reader sees must still be words."""
    groups = ["standard", "clip-zeroshot", "standard", "clip-zeroshot"]
    long = pd.DataFrame({"model": ["a", "b", "c", "d"] * 2, "group": groups * 2,
                         "factor": ["partial_view"] * 4 + ["pose"] * 4,
                         "factor_acc": [0.4, 0.5, 0.6, 0.7] * 2,
                         "overall_acc": [0.5, 0.6, 0.7, 0.8] * 2,
                         "eff_rob": [0.0, 0.05, -0.01, 0.1] * 2})
    grid = pd.DataFrame({"factor": ["partial_view"] * 2, "x": [0.5, 0.8], "lo": [0.3, 0.6],
                         "mid": [0.4, 0.7], "hi": [0.5, 0.8]})
    summary = pd.DataFrame({"factor": ["partial_view", "pose"] * 2,
                            "group": ["standard", "standard", "clip-zeroshot", "clip-zeroshot"],
                            "n_models": [2] * 4, "mean": [0.0, 0.01, 0.05, 0.1],
                            "lo": [-0.01, 0.0, 0.02, 0.05], "hi": [0.01, 0.02, 0.08, 0.15]})
    medians = pd.DataFrame({"shift": ["r", "r", "a", "a"], "group": ["standard", "clip-zeroshot"] * 2,
                            "median": [-0.005, 0.25, 0.005, 0.3333], "n": [2, 1, 2, 1]})
    bands = pd.DataFrame({"shift": ["r", "r", "a", "a"], "x": [0.6, 0.9, 0.6, 0.9],
                          "lo": [0.2, 0.4, 0.0, 0.1], "mid": [0.3, 0.5, 0.05, 0.2],
                          "hi": [0.4, 0.6, 0.1, 0.3]})
    per_set = pd.DataFrame({"model": ["a", "b", "c", "d"], "group": groups,
                            "ood_set": ["synth_textures", "synth_textures", "open_set", "open_set"],
                            "id_acc": [0.5, 0.6, 0.7, 0.8], "auroc_mcm": [0.7, 0.8, 0.75, 0.9],
                            "fpr_at_95": [0.5, 0.4, 0.45, 0.3],
                            "train_source": ["wit_like", None, "laion_like", "wit_like"],
                            "score_name": ["max_logit", "msp"] * 2,
                            "template_set": ["single_template", "openai"] * 2,
                            "ece_15": [0.02, 0.05, 0.03, 0.08]})
    bins = pd.DataFrame({"model": ["zoo:clip-a"] * 2 + ["zoo:sup-b"] * 2,
                         "shift_name": ["id_test"] * 4, "lo": [0.0, 0.5] * 2, "hi": [0.5, 1.0] * 2,
                         "n": [10, 20] * 2, "share": [0.33, 0.67] * 2,
                         "accuracy": [0.3, 0.8, 0.2, 0.9], "confidence": [0.3, 0.7, 0.4, 0.8]})
    freq = pd.DataFrame({"factor": ["partial_view", "pose"] * 2, "share_of_images": [0.1, 0.2, 0.15, 0.25],
                         "data_source": ["synth_world"] * 2 + ["imagenet_x"] * 2})
    corr = pd.DataFrame({"template_set": ["single_template", "openai"], "spearman_r": [0.3, 0.5],
                         "spearman_r_lo": [0.1, 0.2], "spearman_r_hi": [0.5, 0.7]})
    names = {"r": "ImageNet-R", "a": "ImageNet-A"}
    return {
        "factor_trends": charts.factor_trends(long, grid, ["partial_view", "pose"]),
        "effective_robustness_by_group": charts.effective_robustness_by_group(summary),
        "effective_robustness_heatmap": charts.effective_robustness_heatmap(long),
        "effective_robustness_ticks": charts.effective_robustness_ticks(line_points, medians,
                                                                        ["r", "a"], names),
        "accuracy_on_the_line": charts.accuracy_on_the_line(line_points, bands, ["r", "a"], names),
        "scatter_panels": charts.scatter_panels(per_set, "id_acc", "auroc_mcm", "ood_set"),
        "reliability_diagram": charts.reliability_diagram(bins, panel="shift_name"),
        "grouped_bars": charts.grouped_bars(freq, "share_of_images", "factor", "data_source"),
        "score_comparison": charts.score_comparison(per_set, "ood_set", "auroc_mcm", "score_name"),
        "metric_panels": charts.metric_panels(per_set, "ood_set", ["synth_textures", "open_set"],
                                              "id_acc", ["auroc_mcm", "fpr_at_95"],
                                              marker="train_source"),
        "points_by_category": charts.points_by_category(per_set, "template_set", "ece_15", "model"),
        "versus_accuracy": charts.versus_accuracy(per_set, "id_acc", "ece_15"),
        "strip_by_group": charts.strip_by_group(per_set.assign(shape_bias=0.3)),
        "interval_points": charts.interval_points(corr, "template_set", ["spearman_r"]),
        "versus_accuracy_with_line": charts.versus_accuracy_with_line(
            per_set, "id_acc", "ece_15", ["standard"]),
    }


def test_chart_titles_legends_and_panels_are_words_not_field_names(line_points):
    """The audit of the built site (:func:`clipsafety.readable.chart_problems`) finds no
    snake_case name in any title, axis title, legend or panel header of the chart specs the
    builders produce."""
    from clipsafety import readable

    built = _snake_charts(line_points)
    found = {name: readable.chart_problems(chart.to_dict(), lambda key: None)
             for name, chart in built.items()}
    assert {k: v for k, v in found.items() if v} == {}
    # the audit itself sees a field name where a builder would show one
    bare = charts._alt().Chart(pd.DataFrame({"overall_acc": [1.0]})).mark_point().encode(
        x="overall_acc:Q")
    assert readable.chart_problems(bare.to_dict(), lambda key: None) == [
        "variable names in axis title (the field's name): overall_acc"]


def test_a_chart_with_nothing_to_draw_says_why_in_words():
    """A rerun whose baseline group has too few models leaves every effective robustness
    undefined: the group chart and the heatmap are a note that says so, not an empty chart
    with a legend of a zero-width range (Vega's "infinite extent")."""
    summary = pd.DataFrame({"factor": ["pose", "partial_view"], "group": ["standard"] * 2,
                            "n_models": [1, 1], "mean": [np.nan] * 2, "lo": [np.nan] * 2,
                            "hi": [np.nan] * 2})
    long = pd.DataFrame({"model": ["a", "b"], "group": ["standard", "clip-zeroshot"],
                         "factor": ["pose"] * 2, "eff_rob": [np.nan, np.nan]})
    for note in (charts.effective_robustness_by_group(summary),
                 charts.effective_robustness_heatmap(long),
                 charts.effective_robustness_heatmap(long.assign(eff_rob=0.0))):
        text = note.data
        assert text.startswith("```{note}\nThe ") and "is not drawn" in text
        assert "at least two models" in text and "±" not in text
    drawn = charts.effective_robustness_heatmap(long.assign(eff_rob=[0.02, -0.01])).to_dict()
    assert drawn["encoding"]["color"]["scale"]["domain"] == pytest.approx([-1.98, 1.98])
