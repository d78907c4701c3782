"""Dates and age: completed years, the keyed per-patient shift, coarsening."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kvarus_research as kr
from kvarus_research.errors import PrivacyError
from kvarus_research.privacy import age_in_years, coarsen_dates, date_shifts, shift_dates

KEY = bytes(range(60, 100))


def test_age_in_years_by_hand():
    birth = pd.to_datetime(["1980-05-17", "1980-05-17", "2000-02-29", "2000-02-29", None])
    at = pd.to_datetime(["2024-05-16", "2024-05-17", "2021-02-28", "2021-03-01", "2024-01-01"])
    # 43 (day before the birthday), 44 (on it), 20 (28 Feb 2021 < 29 Feb), 21 (1 March), NA
    assert age_in_years(birth, at).tolist() == [43, 44, 20, 21, pd.NA]


@settings(max_examples=200, deadline=None)
@given(
    st.dates(dt.date(1900, 1, 1), dt.date(2010, 12, 31)), st.dates(dt.date(2011, 1, 1), dt.date(2040, 12, 31))
)
def test_age_agrees_with_date_arithmetic(birth, at):
    # independent: the largest n with birth + n years (29 Feb -> 1 Mar) <= at
    n = at.year - birth.year
    while True:
        try:
            anniversary = birth.replace(year=birth.year + n)
        except ValueError:
            anniversary = dt.date(birth.year + n, 3, 1)
        if anniversary <= at:
            break
        n -= 1
    assert age_in_years(pd.Series([birth]), pd.Series([at])).iloc[0] == n


def test_shift_is_per_patient_deterministic_and_keyed():
    ids = pd.Series(["a", "b", "a", "c"])
    s1 = date_shifts(ids, KEY, max_days=10)
    assert s1[0] == s1[2] and s1.abs().between(1, 10).all()
    assert date_shifts(ids, KEY, max_days=10).equals(s1)
    many = pd.Series([f"p{i}" for i in range(2000)])
    a, b = date_shifts(many, KEY, max_days=30), date_shifts(many, bytes(range(1, 41)), max_days=30)
    assert (a != b).mean() > 0.9  # a different key gives unrelated shifts (equal by chance 1/60)
    assert set(a) == set(range(-30, 0)) | set(range(1, 31))  # every non-zero shift occurs among 2000 draws


def test_shift_dates_keeps_intervals_within_patient():
    reg = kr.synthetic.generate(n_courses=200, seed=2)
    out = shift_dates(reg, KEY, max_days=60)
    before = reg.registrations.groupby("course_id")["date"].agg(lambda d: (d - d.min()).dt.days.tolist())
    after = out.registrations.groupby("course_id")["date"].agg(lambda d: (d - d.min()).dt.days.tolist())
    assert before.equals(after)
    moved = (out.courses["start_date"] - reg.courses["start_date"]).dt.days.rename("moved")
    reg_moved = out.registrations["date"] - reg.registrations["date"]
    # the same patient moves by the same amount in every table
    per_patient = (
        pd.concat([reg.courses["patient_id"], moved], axis=1).groupby("patient_id")["moved"].nunique()
    )
    assert (per_patient == 1).all() and moved.abs().between(1, 60).all()
    assert (reg_moved.dt.days.abs() >= 1).all()


def test_coarsen_by_hand():
    d = pd.Series(pd.to_datetime(["2023-05-17", "2023-11-02", None]))
    assert coarsen_dates(d, "month").dt.strftime("%Y-%m-%d").tolist()[:2] == ["2023-05-01", "2023-11-01"]
    assert coarsen_dates(d, "quarter").dt.strftime("%Y-%m-%d").tolist()[:2] == ["2023-04-01", "2023-10-01"]
    assert coarsen_dates(d, "year").dt.strftime("%Y-%m-%d").tolist()[:2] == ["2023-01-01", "2023-01-01"]
    assert coarsen_dates(d, "year").isna().tolist() == [False, False, True]
    with pytest.raises(PrivacyError, match="week"):
        coarsen_dates(d, "week")
