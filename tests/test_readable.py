"""Readable tables (clipsafety.readable.table) and the check of built pages (audit_html).

The references are independent of the module: the numbers a cell shows are read back and
compared with the data (and the CSV with pandas' own reading of it); pandas' raw ``to_html``
of the same data is the negative control the page check must catch; charts are rendered by
the book's own renderer (clipsafety.plots) from Altair specs.
"""

import base64
import re

import numpy as np
import pandas as pd
import pytest
from clipsafety import readable
from clipsafety.readable import Column, audit_html, table
from conftest import expect_error


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 40
    return pd.DataFrame({
        "model": [f"zoo:clip-resnet-wit-{i}k" for i in range(n)],
        "id_acc": rng.uniform(0.2, 0.9, n),
        "eff_rob": rng.normal(0, 0.03, n),
        "n_images": rng.integers(500, 50_000, n),
        "paper": np.where(np.arange(n) % 3 == 0, rng.uniform(0, 1, n), np.nan),
        "outlier": np.arange(n) % 7 == 0,
    })


COLUMNS = {"model": "Model", "id_acc": ("ID accuracy", "percent"),
           "eff_rob": ("Effective robustness", "points"), "n_images": ("Images", "count"),
           "paper": Column("Paper", "percent", missing="not reported by the paper"),
           "outlier": "Outlier"}


def _cells(html: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    return [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r)]
            for r in rows]


def _number(text: str) -> float:
    return float(text.replace("−", "-").replace(",", "").replace("+", ""))


def test_cells_are_the_data_in_the_units_of_the_text(frame, monkeypatch):
    monkeypatch.delenv(readable.CHART_DATA_ENV, raising=False)
    t = table(frame, COLUMNS, caption="Every model")
    rows = _cells(t.html)
    assert rows[0] == ["Model", "ID accuracy (%)", "Effective robustness (points)", "Images",
                       "Paper (%)", "Outlier"]
    body = rows[1:]
    assert len(body) == len(frame)
    for cells, r in zip(body, frame.itertuples()):
        assert cells[0] == r.model
        # percent: one decimal, 100 x the fraction; points: signed, one decimal
        assert abs(_number(cells[1]) - 100 * r.id_acc) <= 0.05 + 1e-9
        assert re.fullmatch(r"\d+\.\d", cells[1])
        assert abs(_number(cells[2]) - 100 * r.eff_rob) <= 0.05 + 1e-9
        assert re.fullmatch(r"[+−]\d+\.\d|0\.0", cells[2]), cells[2]
        assert _number(cells[3]) == r.n_images and ("," in cells[3]) == (r.n_images >= 1000)
        assert cells[4] == readable.DASH + "a" if np.isnan(r.paper) else \
            abs(_number(cells[4]) - 100 * r.paper) <= 0.05 + 1e-9
        assert cells[5] == ("yes" if r.outlier else "no")
    # the dash says why: in the cell's title and in the note under the table
    assert 'title="not reported by the paper"' in t.html
    assert "not reported by the paper" in t.html.split("</table>")[1]


def test_csv_is_the_full_table_in_the_shown_units(frame, tmp_path, monkeypatch):
    monkeypatch.setenv(readable.CHART_DATA_ENV, str(tmp_path))
    t = table(frame, COLUMNS, caption="Every model")
    assert t.csv_href.startswith("../_static/data/") and t.csv_href.endswith(".csv")
    saved = tmp_path / t.csv_href.rsplit("/", 1)[1]
    back = pd.read_csv(saved)
    assert list(back.columns) == list(t.frame.columns)
    np.testing.assert_allclose(back["ID accuracy (%)"], 100 * frame["id_acc"], rtol=1e-12)
    np.testing.assert_allclose(back["Effective robustness (points)"], 100 * frame["eff_rob"],
                               rtol=1e-12)
    np.testing.assert_allclose(back["Paper (%)"], 100 * frame["paper"], rtol=1e-12)  # NaN kept
    assert back["Images"].tolist() == frame["n_images"].tolist()
    # the same table writes the same file (named by its content)
    assert table(frame, COLUMNS, caption="Every model").csv_href == t.csv_href


def test_long_tables_fold_and_short_ones_do_not(frame, monkeypatch):
    monkeypatch.delenv(readable.CHART_DATA_ENV, raising=False)
    long = table(frame, COLUMNS, caption="Every model")
    assert long.html.count("<details") == 1 and "40 rows" in long.html
    # without a data folder the CSV travels in the link
    href = re.search(r'<a href="data:text/csv;base64,([^"]+)"', long.html).group(1)
    assert base64.b64decode(href).decode() == long.csv
    short = table(frame.head(readable.FOLD_ROWS), COLUMNS)
    assert "<details" not in short.html and "Download" not in short.html
    assert len(_cells(short.html)) == readable.FOLD_ROWS + 1


def test_index_columns_are_dropped_or_named(frame):
    assert [r[0] for r in _cells(table(frame.head(3), {"model": "Model"}).html)] == \
        ["Model", *frame["model"].head(3)]
    by_model = frame.head(3).set_index("model")
    t = table(by_model, {"model": "Model", "id_acc": ("ID accuracy", "percent")})
    assert _cells(t.html)[0] == ["Model", "ID accuracy (%)"]
    with pytest.raises(KeyError, match="'model'"):
        table(by_model.reset_index(drop=True), {"model": "Model"})


def test_numbers_at_sensible_precision():
    c = Column("Value", "number")
    assert [readable.format_value(x, c) for x in (0.012345, 3.14159, 12345.6, -0.5)] == \
        ["0.0123", "3.14", "12,346", "−0.5"]
    assert readable.format_value(10000.0, Column("Images", "count")) == "10,000"
    assert readable.format_value(0.0, Column("Change", "points")) == "0.0"
    assert readable.format_value(float("inf"), c) == "∞"
    assert readable.format_value(1.23456, Column("Temperature", "ratio")) == "1.23"
    assert readable.format_value(np.bool_(True), Column("Outlier")) == "yes"
    assert readable.format_value(np.int64(12000), Column("Images", "count")) == "12,000"


def test_bad_input_is_named(frame):
    expect_error(lambda: table(frame.values, COLUMNS), TypeError, ["DataFrame", "ndarray"])
    expect_error(lambda: table(frame, {"acc": "Accuracy"}), KeyError, ["acc", "id_acc"])
    expect_error(lambda: table(frame, {"id_acc": "id_acc"}), ValueError,
                 ["id_acc", "words"])
    expect_error(lambda: table(frame, {"id_acc": ("ID accuracy", "pct")}), ValueError,
                 ["pct", "percent, points"])
    expect_error(lambda: table(frame, {"paper": ("Paper", "percent")}), ValueError,
                 ["paper", "missing", "why"])
    expect_error(lambda: table(frame, {}), ValueError, ["empty"])


def test_the_page_check_passes_readable_tables_and_catches_raw_ones(frame, monkeypatch):
    monkeypatch.delenv(readable.CHART_DATA_ENV, raising=False)
    assert audit_html(table(frame, COLUMNS, caption="Every model").html) == []
    raw = [str(p) for p in audit_html(frame.to_html())]
    missing = int(frame["paper"].isna().sum())
    assert any("NaN" in p and f"{missing} cell(s)" in p for p in raw), raw
    assert any("index column (0…39)" in p for p in raw), raw
    assert any("id_acc" in p and "eff_rob" in p and "n_images" in p for p in raw), raw
    assert any("40 rows shown open" in p for p in raw), raw
    assert not any("rows shown open" in p for p in map(str, audit_html(frame.head(15).to_html())))
    # a MyST dropdown admonition is collapsed: a long table inside it is folded, and the
    # dropdown's end closes the fold for a table after it
    long = frame[["model"]].to_html(index=False)
    dropped = (f'<div class="dropdown admonition"><p>t</p><div>{long}</div></div>')
    assert not any("rows shown open" in str(p) for p in audit_html(dropped))
    after = [str(p) for p in audit_html(dropped + long)]
    assert sum("rows shown open" in p for p in after) == 1, after
    matrix = frame[["model"]].to_html(index=False, classes="clipsafety-findings")
    assert audit_html(matrix) == []  # the findings matrix is the page, long by design
    # a named index (pandas writes its name on a second header row): an unnamed first column
    named = [str(p) for p in audit_html(frame.set_index("model").head(3).to_html())]
    assert any("no header" in p for p in named), named
    # a number column of 0..n-1 that is not first is data, not an index
    assert audit_html(table(pd.DataFrame({"name": list("abc"), "rank": [0, 1, 2]}),
                            {"name": "Name", "rank": ("Rank", "count")}).html) == []


def _page(chart) -> str:
    from clipsafety import plots

    return plots._render(chart.to_dict())["text/html"]


def test_the_page_check_reads_chart_titles_legends_and_panels(tmp_path, monkeypatch):
    import altair as alt

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"id_acc": rng.uniform(size=300), "ece_after": rng.uniform(size=300),
                       "metric": rng.choice(["auroc_msp", "fpr95_msp"], 300)})
    monkeypatch.setenv("CLIPSAFETY_CHART_DATA", str(tmp_path))  # the data go to a file
    raw = alt.Chart(df).mark_point().encode(x="id_acc:Q", y="ece_after:Q", color="metric:N")
    html = _page(raw)
    assert '_static/data/' in html  # the labels are only in the data file

    def data_file(key):
        f = tmp_path / f"{key}.js"
        return f.read_text() if f.exists() else None

    found = " | ".join(map(str, audit_html(html, data_file)))
    for name in ("id_acc", "ece_after", "auroc_msp", "fpr95_msp"):
        assert name in found, (name, found)
    # without the data file the legend's entries cannot be read, the titles still can
    assert "auroc_msp" not in " ".join(map(str, audit_html(html)))
    readable_df = df.assign(metric=df["metric"].map({"auroc_msp": "AUROC (MSP)",
                                                    "fpr95_msp": "FPR at 95% TPR (MSP)"}))
    fixed = alt.Chart(readable_df, title="Calibration against accuracy").mark_point().encode(
        x=alt.X("id_acc:Q", title="ID accuracy"), y=alt.Y("ece_after:Q", title="ECE after"),
        color=alt.Color("metric:N", title="Score"))
    assert audit_html(_page(fixed), data_file) == []
    panels = alt.Chart(df).mark_point().encode(
        x=alt.X("id_acc:Q", title="ID accuracy"), y=alt.Y("ece_after:Q", title="ECE")
    ).facet(column=alt.Column("metric:N", title=None))
    found = " | ".join(map(str, audit_html(_page(panels), data_file)))
    assert "panel labels: auroc_msp, fpr95_msp" in found, found
