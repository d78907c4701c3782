"""SPSS/Stata export with codebook labels (read back with pyreadstat) and the single-table readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

import kvarus_research as kr
from kvarus_research.io import export_table, read_table

CB = kr.load_codebook()


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": pd.array(["a", "b", None], dtype="string"),
            "status": pd.array([1, 4, None], dtype="Int64"),
            "plan_beh": pd.array([2, None, 3], dtype="Int64"),
            "psykiske_plager": pd.array([12.5, None, 30.0], dtype="Float64"),
            "invitert_familie": pd.array([True, False, None], dtype="boolean"),
            "date": pd.to_datetime(["2021-01-05", "2021-02-01", None]),
        }
    )


@pytest.mark.parametrize("suffix", [".sav", ".dta"])
def test_export_labels_and_values_round_trip(tmp_path: Path, suffix: str) -> None:
    path = export_table(_table(), tmp_path / f"t{suffix}", CB)
    reader = pyreadstat.read_sav if suffix == ".sav" else pyreadstat.read_dta
    df, meta = reader(str(path))
    labels = meta.column_names_to_labels
    assert labels["plan_beh"] == "Treatment plan in place"
    assert labels["status"] == "Treatment status" and labels["patient_id"] == "Patient id"
    vl = meta.variable_value_labels
    assert vl["plan_beh"] == {1: "No", 2: "Yes", 3: "Don't know"}  # code 0 (velg verdi) is a missing code
    assert vl["status"][4] == "Completed by mutual agreement" and len(vl["status"]) == 7
    assert df["plan_beh"].tolist()[0] == 2 and np.isnan(df["plan_beh"].tolist()[1])
    assert df["psykiske_plager"].tolist()[0] == 12.5
    assert df["invitert_familie"].tolist()[:2] == [1.0, 0.0]
    assert pd.Timestamp(df["date"].iloc[0]) == pd.Timestamp("2021-01-05")
    assert df["patient_id"].tolist()[:2] == ["a", "b"]


def test_export_in_norwegian(tmp_path: Path) -> None:
    path = export_table(_table()[["plan_beh"]], tmp_path / "t.sav", CB, language="nb")
    _, meta = pyreadstat.read_sav(str(path))
    assert meta.column_names_to_labels["plan_beh"] == "Behandlingsplan"
    assert meta.variable_value_labels["plan_beh"][2] == "Ja"


def test_export_refuses_other_formats(tmp_path: Path) -> None:
    with pytest.raises(kr.ExtractError, match=r"\.sav \(SPSS\) or \.dta"):
        export_table(_table(), tmp_path / "t.xlsx", CB)


@pytest.mark.parametrize("suffix", [".sav", ".dta", ".parquet"])
def test_read_table_formats(tmp_path: Path, suffix: str) -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["a", "b", "c"]})
    path = tmp_path / f"t{suffix}"
    if suffix == ".parquet":
        df.to_parquet(path)
    else:
        (pyreadstat.write_sav if suffix == ".sav" else pyreadstat.write_dta)(df, str(path))
    back = read_table(path)
    assert back["x"].tolist() == [1.0, 2.0, 3.0] and back["y"].tolist() == ["a", "b", "c"]


def test_read_table_csv_keeps_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffa;b;\r\n1;x;\r\n2,5;y;\r\n".encode())
    t = read_table(path)
    assert t.index.tolist() == [2, 3] and t["a"].tolist() == ["1", "2,5"]


def test_read_table_errors(tmp_path: Path) -> None:
    with pytest.raises(kr.ExtractError, match="does not exist"):
        read_table(tmp_path / "none.sav")
    bad = tmp_path / "broken.sav"
    bad.write_bytes(b"not spss")
    with pytest.raises(kr.ExtractError, match="broken.sav: cannot be read as .sav"):
        read_table(bad)
    (tmp_path / "t.json").write_text("{}")
    with pytest.raises(kr.ExtractError, match="unknown table format"):
        read_table(tmp_path / "t.json")


@pytest.mark.parametrize(
    ("data", "line", "rule", "message"),
    [
        (b"a;b;\n1;x;\n2;y;z;w\n", 3, "wrong_field_count", "t.csv line 3: 4 fields, expected 3"),
        (
            b'a;b;\n1;"x;\n2;y;\n',
            2,
            "unbalanced_quote",
            "t.csv line 2: a '\"' opened on this line is not closed where the row ends: the next 1 line(s) would "
            "have been swallowed into one field",
        ),
        (
            b"a;b;\n1;x;\n2;",
            3,
            "truncated_line",
            "t.csv line 3: the file ends in this line without a line break and the line lacks its last field: "
            "the file was cut",
        ),
    ],
)
def test_read_table_csv_refuses_damaged_lines(
    tmp_path: Path, data: bytes, line: int, rule: str, message: str
) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(data)
    with pytest.raises(kr.io.FileProblem) as exc:
        read_table(path)
    assert (exc.value.file, exc.value.line, exc.value.rule, str(exc.value)) == ("t.csv", line, rule, message)
