"""Dates a person types (cohort criteria, cohort YAML, read_extract / CLI extract date): ISO or day-first
Norwegian, never month-first; anything ambiguous refused with a message naming the accepted formats."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kvarus_research as kr
from kvarus_research.io.dates import user_date

ACCEPTED = "expected a date as YYYY-MM-DD (ISO, e.g. 2021-03-02) or DD.MM.YYYY (day first, e.g. 02.03.2021)"


@given(st.dates(min_value=dt.date(1800, 1, 1), max_value=dt.date(2200, 12, 31)))
def test_iso_and_day_first_mean_the_same_day(d: dt.date) -> None:
    want = pd.Timestamp(d)
    assert user_date(d.strftime("%Y-%m-%d"), "x") == want
    assert user_date(d.strftime("%d.%m.%Y"), "x") == want
    assert user_date(f"{d.day}.{d.month}.{d.year:04d}", "x") == want  # one-digit day and month
    assert user_date(d, "x") == want


@given(st.dates(min_value=dt.date(1800, 1, 1), max_value=dt.date(2200, 12, 31)))
def test_slash_dates_are_refused_never_read_month_first(d: dt.date) -> None:
    with pytest.raises(ValueError, match="ambiguous"):
        user_date(d.strftime("%d/%m/%Y"), "x")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "02/03/2021",
            f"start: '02/03/2021' is not a date the library reads; {ACCEPTED}; a date with '/' is "
            "ambiguous (day or month first?) and refused",
        ),
        ("2021-3-2", f"start: '2021-3-2' is not a date the library reads; {ACCEPTED}"),
        ("March 2, 2021", f"start: 'March 2, 2021' is not a date the library reads; {ACCEPTED}"),
        ("31.02.2021", f"start: '31.02.2021' is not a real date (day 31, month 2, year 2021); {ACCEPTED}"),
        ("01.01.9999", f"start: '01.01.9999' has a year outside 1800-2200; {ACCEPTED}"),
        (20210302, f"start: 20210302 (int) is not a date; {ACCEPTED}"),
        (pd.Timestamp("2021-03-02 10:00"), f"start: 2021-03-02 10:00:00 has a time of day; {ACCEPTED}"),
    ],
)
def test_refused_dates_say_what_is_accepted(value: object, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        user_date(value, "start")
    assert str(exc.value) == message


@pytest.fixture(scope="module")
def reg() -> kr.Registry:
    return kr.synthetic.generate(n_courses=200, seed=3)


def test_cohort_started_between_reads_day_first(reg: kr.Registry) -> None:
    nor = kr.Cohort(reg).started_between("10.02.2021", "31.12.2021")
    iso = kr.Cohort(reg).started_between("2021-02-10", "2021-12-31")
    assert nor.courses["course_id"].tolist() == iso.courses["course_id"].tolist()
    starts = nor.courses["start_date"]
    assert starts.min() >= pd.Timestamp("2021-02-10") and starts.max() <= pd.Timestamp("2021-12-31")
    # month-first (2 October) would have dropped the courses started 10 February to 1 October
    assert (starts < pd.Timestamp("2021-10-02")).sum() > 0


def test_cohort_refuses_an_ambiguous_date(reg: kr.Registry) -> None:
    with pytest.raises(kr.CohortError) as exc:
        kr.Cohort(reg).started_between("02/03/2021", None)
    assert str(exc.value).startswith("started_between start: '02/03/2021' is not a date the library reads;")
    assert ACCEPTED in str(exc.value)


def test_cohort_yaml_with_a_day_first_date(reg: kr.Registry, tmp_path: Path) -> None:
    c = kr.Cohort(reg).started_between("02.03.2021", None)
    p = c.to_yaml(tmp_path / "c.yaml")
    assert "2021-03-02" in p.read_text(encoding="utf-8")  # written as ISO
    assert kr.Cohort.from_yaml(p, reg).flow.equals(c.flow)
    p.write_text(p.read_text(encoding="utf-8").replace("'2021-03-02'", "'02.03.2021'"), encoding="utf-8")
    assert kr.Cohort.from_yaml(p, reg).flow.equals(c.flow)


def test_read_extract_date_day_first_and_ambiguous(tmp_path: Path) -> None:
    for d in ("2022-06-30", "2023-01-31"):
        (tmp_path / d).mkdir()
        (tmp_path / d / f"DataDump_Prod_Målepunkt_{d}_0700.csv").write_bytes(
            "\ufeffPasientGUID;UnitId;dato_mp_beh;behandlingsstatus;\np1;10;01.02.2022;1;\n".encode()
        )
    reg = kr.read_extract(tmp_path, extract_date="30.06.2022")
    assert reg.extract_date == pd.Timestamp("2022-06-30")
    with pytest.raises(kr.ExtractError) as exc:
        kr.read_extract(tmp_path, extract_date="06/30/2022")
    assert str(exc.value).startswith("extract_date: '06/30/2022' is not a date the library reads;")
