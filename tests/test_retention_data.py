"""Tests of the time-to-event table: durations, censoring, dropout definitions and counted exclusions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kvarus_research as kr
from kvarus_research.errors import AnalysisError
from kvarus_research.retention import time_to_event

D = pd.Timestamp


def _courses() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "course_id": ["a", "b", "c", "d", "e", "f", "g", "h", "i"],
            "start_date": [D("2021-01-01")] * 6 + [pd.NaT, D("2021-03-01"), D("2022-02-01")],
            "end_date": [
                D("2021-01-11"),
                D("2021-02-01"),
                D("2021-03-02"),
                pd.NaT,
                D("2021-01-01"),
                pd.NaT,
                D("2021-05-01"),
                D("2021-02-01"),
                pd.NaT,
            ],
            "ending_type": [
                "interrupted",
                "mutual_agreement",
                "transferred",
                "active",
                "unknown",
                "interrupted",
                "interrupted",
                "interrupted",
                "active",
            ],
            "age_at_start": [19, 25, 34, 35, 60, 40, 30, 30, 30],
        }
    )


def test_durations_censoring_and_exclusions_by_hand() -> None:
    tte = time_to_event(_courses(), extract_date="2021-12-31")
    t = tte.table.set_index("course_id")
    # a: 1 Jan -> 11 Jan = 10 days; b: -> 1 Feb = 31; c: -> 2 Mar = 31 + 28 + 1 = 60;
    # d: active, censored at 31 Dec 2021 = 364 days; e: ends on its start day = 0 days (kept).
    assert t["duration"].to_dict() == {"a": 10.0, "b": 31.0, "c": 60.0, "d": 364.0, "e": 0.0}
    assert t["cause"].to_dict() == {
        "a": "dropout",
        "b": "mutual_agreement",
        "c": "transferred",
        "d": "censored",
        "e": "unknown",
    }
    assert t["event"].tolist() == [1, 1, 1, 0, 1]
    # causes in order: dropout, mutual_agreement, transferred, unknown (present) -> codes 1..4, censored 0
    assert tte.causes == ("dropout", "mutual_agreement", "transferred", "unknown")
    assert t["cause_code"].tolist() == [1, 2, 3, 0, 4]
    # f: interrupted without end date; g: missing start; h: ends before it starts;
    # i: starts 2022-02-01, after the extract date.
    assert tte.exclusions.values.tolist() == [
        ["missing start date", 1],
        ["ended without end date", 1],
        ["start after extract date", 1],
        ["end before start", 1],
    ]
    assert tte.n_input == 9 and len(tte.table) + tte.exclusions["n"].sum() == 9
    # age groups: 19 -> <25, 25 -> 25–34, 34 -> 25–34, 35 -> 35–44, 60 -> 55+
    assert t["age_group"].astype(str).tolist() == ["<25", "25–34", "25–34", "35–44", "55+"]
    assert "4 of 9" not in tte.definition.population and "5 of 9 courses" in tte.definition.population


def test_dropout_definition_is_configurable() -> None:
    wide = time_to_event(_courses(), dropout=("interrupted", "transferred"), extract_date="2021-12-31")
    assert wide.causes == ("dropout", "mutual_agreement", "unknown")
    assert (wide.table["cause"] == "dropout").sum() == 2  # a (interrupted) and c (transferred)
    assert wide.cause_label("dropout") == "Dropout (Interrupted, Transferred to another legal entity)"
    none = time_to_event(_courses(), dropout=(), extract_date="2021-12-31")
    assert none.causes == ("mutual_agreement", "interrupted", "transferred", "unknown")
    weeks = time_to_event(_courses(), extract_date="2021-12-31", time_unit="weeks")
    assert weeks.table["duration"].iloc[0] == pytest.approx(10 / 7)


def test_errors_name_the_problem() -> None:
    with pytest.raises(AnalysisError, match="extract_date"):
        time_to_event(_courses())
    with pytest.raises(AnalysisError, match="dropout"):
        time_to_event(_courses(), dropout=("avbrutt",), extract_date="2021-12-31")
    with pytest.raises(AnalysisError, match="lacks column"):
        time_to_event(_courses().drop(columns="end_date"), extract_date="2021-12-31")


def test_registry_and_cohort_input_drop_opted_out_patients() -> None:
    reg = kr.synthetic.generate(n_courses=1500, seed=5)
    tte = time_to_event(reg)
    reserved = reg.patients.loc[reg.patients["reserved"], "patient_id"]
    n_kept = int((~reg.courses["patient_id"].isin(reserved)).sum())
    assert len(tte.table) + int(tte.exclusions["n"].sum()) == n_kept
    assert not tte.table["patient_id"].isin(reserved).any()
    assert tte.opted_out_courses == len(reg.courses) - n_kept
    assert tte.extract_date == reg.extract_date
    # main substance from the baseline registration, labelled from the codebook
    assert set(tte.table["hovedrusmiddel"].dropna()) <= set(
        reg.codebook.value_labels("hovedrusmiddel").values()
    )
    # censoring: an active course's duration is extract date - start
    act = tte.table[tte.table["ending_type"] == "active"].iloc[0]
    assert act["duration"] == (reg.extract_date - act["start_date"]).days
    cohort = kr.Cohort(reg).setting("inpatient")
    tc = time_to_event(cohort)
    assert set(tc.table["setting"]) == {"inpatient"}
    assert len(tc.table) + int(tc.exclusions["n"].sum()) == len(cohort.courses)
    assert np.isin(tc.table["course_id"], tte.table["course_id"]).all()
