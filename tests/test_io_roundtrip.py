"""Round trips: synthetic registry → MRS extract → read_extract gives the same tables; parquet; xlsx dumps."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
import pytest

import kvarus_research as kr
from kvarus_research.codebook.schema import pandas_dtype
from kvarus_research.io import read_extract


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[kr.Registry, kr.Registry, Path]:
    reg = kr.synthetic.generate(n_courses=1500, seed=11)
    folder = kr.synthetic.write_extract(reg, tmp_path_factory.mktemp("extract"))
    return reg, read_extract(folder), folder


def _plain(df: pd.DataFrame) -> list[list[object]]:
    """Values as plain Python objects with None for every kind of missing (dtypes compared separately)."""
    return df.astype(object).where(df.notna(), None).values.tolist()


def test_extract_of_a_synthetic_registry_is_clean(pair: tuple) -> None:
    reg, back, _ = pair
    assert back.validation.is_clean, back.validation.summary()
    rows = back.validation.rows.set_index("form")
    clean = reg.without_opt_outs()  # opted-out patients are not written to an extract
    regs = clean.registrations
    assert rows.loc["Basisopplysninger", "read"] == (regs["kind"] == "baseline").sum()
    assert rows.loc["Målepunkt", "read"] == (regs["kind"] != "baseline").sum()
    assert rows.loc["Nettverksarbeid", "read"] == len(clean.network_work)
    assert (rows["rejected"] == 0).all()


def test_registrations_equal_after_sorting(pair: tuple) -> None:
    reg, back, _ = pair
    clean = reg.without_opt_outs()
    key = ["patient_id", "date", "kind"]
    a = clean.registrations.drop(columns=["registration_id", "sex"]).sort_values(key, ignore_index=True)
    b = back.registrations.drop(columns=["registration_id"])
    assert sorted(a.columns) == sorted(b.columns)
    b = b[a.columns].sort_values(key, ignore_index=True)
    assert _plain(a) == _plain(b)
    cb = back.codebook
    for c in b.columns:  # data variables have the codebook dtype
        if c in cb and cb.variable(c).role is None:
            assert str(b[c].dtype) == pandas_dtype(cb.variable(c)), c
    assert str(b["status"].dtype) == "Int64" and str(b["unit_id"].dtype) == "Int64"
    assert b["patient_id"].dtype == "string" and str(b["date"].dtype) == "datetime64[ns]"


def test_courses_units_coverage_network_equal(pair: tuple) -> None:
    reg, back, _ = pair
    clean = reg.without_opt_outs()
    cols = [c for c in back.courses.columns]
    a = clean.courses[cols].sort_values("course_id", ignore_index=True)
    b = back.courses.sort_values("course_id", ignore_index=True)
    assert _plain(a) == _plain(b)
    ucols = ["unit_id", "unit_name", "region", "setting"]
    assert _plain(clean.units[ucols].sort_values("unit_id", ignore_index=True)) == _plain(back.units[ucols])
    assert _plain(clean.coverage.sort_values(["unit_id", "year"], ignore_index=True)) == _plain(
        back.coverage.sort_values(["unit_id", "year"], ignore_index=True)
    )
    nw_cols = [c for c in back.network_work.columns if c != "case_id"]
    key = ["patient_id", "date"]
    assert _plain(clean.network_work[nw_cols].sort_values(key, ignore_index=True)) == _plain(
        back.network_work[nw_cols].sort_values(key, ignore_index=True)
    )
    assert len(back.patients) == len(clean.patients)
    sex = clean.patients.set_index("patient_id")["sex"]
    expected = sex.reindex(back.patients["patient_id"].astype(object)).tolist()
    assert back.patients["sex"].tolist() == expected


def test_registry_validates_and_meta_records_files(pair: tuple) -> None:
    _, back, folder = pair
    back.validate()
    assert back.meta["codebook"] == "rapport.xlsx" and back.meta["folder"] == str(folder)
    assert {f["file"] for f in back.meta["files"]} == {p.name for p in folder.glob("DataDump_*.csv")}
    assert back.extract_date == pd.Timestamp(folder.name)


def test_parquet_round_trip(pair: tuple, tmp_path: Path) -> None:
    _, back, _ = pair
    again = kr.Registry.from_parquet(back.to_parquet(tmp_path / "pq"))
    for name in ("patients", "courses", "registrations", "units", "coverage", "network_work"):
        pd.testing.assert_frame_equal(getattr(again, name), getattr(back, name), check_dtype=False)
        assert _plain(getattr(again, name)) == _plain(getattr(back, name))
    assert again.extract_date == back.extract_date


def test_xlsx_dump_reads_like_the_csv(pair: tuple, tmp_path: Path) -> None:
    """The Basisopplysninger CSV written as an xlsx data dump (typed cells) gives the same registrations."""
    _, back, folder = pair
    csv = next(folder.glob("DataDump_Prod_Basisopplysninger_*.csv"))
    small = tmp_path / "x"
    small.mkdir()
    lines = csv.read_text(encoding="utf-8-sig").splitlines()[:41]  # header + 40 rows
    wb = openpyxl.Workbook()
    ws = wb.active
    for line in lines:
        cells = line.split(";")[:-1]
        ws.append(
            [
                int(c)
                if c.isdigit() and not c.startswith("0")
                else (
                    pd.Timestamp(c[6:] + "-" + c[3:5] + "-" + c[:2]).to_pydatetime()
                    if len(c) == 10 and c[2] == "."
                    else (c or None)
                )
                for c in cells
            ]
        )
    wb.save(small / csv.name.replace(".csv", ".xlsx"))
    (small / "via_csv").mkdir()
    (small / "via_csv" / csv.name).write_text("\r\n".join(lines) + "\r\n", encoding="utf-8-sig")
    x = read_extract(small, extract_date=None)
    c = read_extract(small / "via_csv")
    assert x.validation.is_clean and len(x.registrations) == 40
    cols = [k for k in c.registrations.columns if k != "registration_id"]
    assert _plain(x.registrations[cols]) == _plain(c.registrations[cols])
