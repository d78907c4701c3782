"""The report writer refuses unprotected tables, writes every figure twice and embeds it once."""

from __future__ import annotations

import base64

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from kvarus_research.privacy import protect
from kvarus_research.report.provenance import hash_files, hash_tables
from kvarus_research.report.writer import ReportWriter, format_numbers, slug


def test_plain_dataframe_is_refused(tmp_path) -> None:
    w = ReportWriter(tmp_path, title="t")
    with pytest.raises(TypeError, match="every table in the report goes through disclosure control"):
        w.table("raw", pd.DataFrame({"n": [1, 2]}))


def test_protected_table_is_shown_suppressed_and_written(tmp_path) -> None:
    w = ReportWriter(tmp_path, title="t")
    w.section("S")
    t = pd.DataFrame({"unit": ["A", "B", "C"], "n": [3, 40, 50]})
    path = w.table("counts", protect(t, counts="n", rules="norway"), caption="Counts")
    html = w.write().read_text(encoding="utf-8")
    # 3 < 5 is suppressed in the page and in the CSV, shown with the neutral marker; 40 and 50 stay
    assert ">:<" in html and "&lt;5" not in html and ">40<" in html and ">3<" not in html
    csv = path.read_text(encoding="utf-8")
    assert "40" in csv and ",3\n" not in csv and "A,:" in csv


def test_figure_written_as_png_and_svg_and_embedded(tmp_path) -> None:
    w = ReportWriter(tmp_path, title="t")
    fig, ax = plt.subplots()
    ax.bar(["a", "b"], [1, 2])
    png = w.figure("Bars", fig, caption="two bars")
    html = w.write().read_text(encoding="utf-8")
    assert png.exists() and png.with_suffix(".svg").exists()
    embedded = html.split('src="data:image/png;base64,')[1].split('"')[0]
    assert base64.b64decode(embedded) == png.read_bytes()


def test_names_are_unique_and_safe(tmp_path) -> None:
    w = ReportWriter(tmp_path, title="t")
    assert slug("Change: baseline → ending") == "change-baseline-ending"
    assert w._unique("x y") == "x-y" and w._unique("x y") == "x-y-2"


def test_number_formatting() -> None:
    df = pd.DataFrame({"p": [0.1234567, 250.55, 3.0], "label": ["a", "<5", "c"]})
    assert format_numbers(df).values.tolist() == [["0.123", "a"], ["250.6", "<5"], ["3", "c"]]


def test_hashes_change_with_content(tmp_path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    h1 = hash_files(tmp_path)
    (tmp_path / "a.csv").write_text("x\n2\n")
    assert hash_files(tmp_path) != h1
    df = pd.DataFrame({"a": [1, 2]})
    assert hash_tables(df) == hash_tables(df.copy()) != hash_tables(df.iloc[::-1])
