"""Course derivation from behandlingsstatus and course summaries, on hand-made registrations."""

from __future__ import annotations

import pandas as pd
import pytest

from kvarus_research import Registry, RegistryError
from kvarus_research.registry import derive_course_ids, kind_from_status, summarise_courses


def regs(rows: list[tuple[str, str, str, object]]) -> pd.DataFrame:
    """(patient, date, kind, status) rows → a registrations frame for unit 1."""
    df = pd.DataFrame(rows, columns=["patient_id", "date", "kind", "status"])
    df["date"] = pd.to_datetime(df["date"])
    df["status"] = df["status"].astype("Int64")
    df["unit_id"] = 1
    return df


def test_measurement_point_first_without_baseline_opens_a_course() -> None:
    # Inpatient course starting with a målepunkt (status 1), no baseline: one course of 3 registrations.
    r = regs(
        [
            ("a", "2021-01-10", "measurement", 1),
            ("a", "2021-03-01", "measurement", 1),
            ("a", "2021-05-01", "ending", 4),
        ]
    )
    ids, problems = derive_course_ids(r)
    assert ids.tolist() == ["a-1", "a-1", "a-1"]
    assert problems.empty
    c = summarise_courses(r.assign(course_id=ids), "2023-01-01")
    assert c.loc[0, "start_date"] == pd.Timestamp("2021-01-10")
    assert c.loc[0, "end_date"] == pd.Timestamp("2021-05-01")
    assert c.loc[0, "ending_type"] == "mutual_agreement"
    # ending 2021-05-01 + 365 + 90 days = 2022-07-30 < 2023-01-01: due, nothing registered
    assert c.loc[0, "followup_status"] == "not_registered"


def test_interrupted_then_new_course() -> None:
    # baseline, MP, interrupted (3), then a new MP: the MP after the ending opens course 2, still active.
    r = regs(
        [
            ("a", "2021-01-01", "baseline", None),
            ("a", "2021-02-01", "measurement", 1),
            ("a", "2021-03-01", "ending", 3),
            ("a", "2021-09-01", "measurement", 1),
        ]
    )
    ids, problems = derive_course_ids(r)
    assert ids.tolist() == ["a-1", "a-1", "a-1", "a-2"]
    c = summarise_courses(r.assign(course_id=ids), "2022-01-01").set_index("course_id")
    assert c.loc["a-1", "ending_type"] == "interrupted"
    # 2021-03-01 + 455 days = 2022-05-31 > 2022-01-01: follow-up not yet due
    assert c.loc["a-1", "followup_status"] == "not_yet_due"
    assert c.loc["a-2", "ending_type"] == "active"
    assert c.loc["a-2", "followup_status"] == "no_ending"


@pytest.mark.parametrize(("code", "expected"), [(5, "reached"), (6, "not_reached"), (7, "declined")])
def test_followup_statuses(code: int, expected: str) -> None:
    r = regs(
        [
            ("p", "2020-02-01", "baseline", None),
            ("p", "2020-06-01", "ending", 2),
            ("p", "2021-06-15", "followup", code),
        ]
    )
    ids, problems = derive_course_ids(r)
    assert problems.empty and ids.nunique() == 1
    c = summarise_courses(r.assign(course_id=ids), "2024-01-01")
    assert c.loc[0, "ending_type"] == "transferred"
    assert c.loc[0, "followup_status"] == expected
    assert c.loc[0, "followup_date"] == pd.Timestamp("2021-06-15")


def test_two_endings_is_an_error_with_row_numbers_and_no_identifier() -> None:
    r = regs(
        [
            ("secret-guid-1", "2021-01-01", "baseline", None),
            ("secret-guid-1", "2021-02-01", "ending", 4),
            ("secret-guid-1", "2021-03-01", "ending", 3),
        ]
    )
    ids, problems = derive_course_ids(r)
    assert problems[["row", "rule"]].values.tolist() == [[2, "two_endings"]]
    with pytest.raises(RegistryError) as err:
        Registry.from_registrations(r, extract_date="2022-01-01")
    assert "registrations row 3" in str(err.value)
    assert "secret-guid" not in str(err.value)


def test_followup_without_ending_is_an_error() -> None:
    r = regs([("b", "2021-01-01", "measurement", 1), ("b", "2022-02-01", "followup", 5)])
    _, problems = derive_course_ids(r)
    assert problems["rule"].tolist() == ["followup_without_ending"]


def test_baseline_always_opens_a_course_and_patients_are_separate() -> None:
    # Two patients interleaved in the input order; patient b has two baselines → two courses.
    r = regs(
        [
            ("b", "2021-05-01", "baseline", None),
            ("a", "2021-01-01", "baseline", None),
            ("b", "2021-01-01", "baseline", None),
            ("a", "2021-02-01", "measurement", 1),
        ]
    )
    ids, _ = derive_course_ids(r)
    assert ids.tolist() == ["b-2", "a-1", "b-1", "a-1"]


def test_same_day_baseline_sorts_before_measurement() -> None:
    r = regs([("a", "2021-01-01", "measurement", 1), ("a", "2021-01-01", "baseline", None)])
    ids, problems = derive_course_ids(r)
    assert ids.tolist() == ["a-1", "a-1"] and problems.empty


def test_kind_from_status() -> None:
    assert [kind_from_status(c) for c in (0, 1, 2, 3, 4, 5, 6, 7, None)] == [
        "measurement",
        "measurement",
        "ending",
        "ending",
        "ending",
        "followup",
        "followup",
        "followup",
        "measurement",
    ]


def test_age_at_start_is_the_first_recorded_age() -> None:
    r = regs([("a", "2021-01-01", "baseline", None), ("a", "2021-06-01", "measurement", 1)])
    r["age"] = [pd.NA, 41]
    r["course_id"] = "c"
    c = summarise_courses(r, "2022-01-01")
    assert c.loc[0, "age_at_start"] == 41
    assert c.loc[0, "n_registrations"] == 2
