"""Registry invariants: each broken rule gives a clear error naming the row, never an identifier."""

from __future__ import annotations

import pandas as pd
import pytest

from kvarus_research import Registry, RegistryError


def small_registry() -> Registry:
    regs = pd.DataFrame(
        {
            "patient_id": ["p1", "p1", "p1", "p2", "p2"],
            "unit_id": [1, 1, 1, 2, 2],
            "kind": ["baseline", "measurement", "ending", "baseline", "measurement"],
            "status": pd.array([pd.NA, 1, 4, pd.NA, 1], dtype="Int64"),
            "date": pd.to_datetime(["2021-01-01", "2021-02-01", "2021-04-01", "2021-03-01", "2021-05-01"]),
        }
    )
    return Registry.from_registrations(regs, extract_date="2022-12-31")


def test_valid_registry_passes_and_counts() -> None:
    reg = small_registry().validate()
    assert reg.n_courses == 2
    assert reg.courses.set_index("course_id")["ending_type"].to_dict() == {
        "p1-1": "mutual_agreement",
        "p2-1": "active",
    }
    assert reg.summary().set_index("table").loc["registrations", "rows"] == 5


def test_orphan_registration_is_reported() -> None:
    reg = small_registry()
    reg.registrations.loc[4, "course_id"] = "nope"
    with pytest.raises(RegistryError, match="registrations row 5: belongs to no course"):
        reg.validate()


def test_registration_of_another_patients_course() -> None:
    reg = small_registry()
    reg.registrations.loc[3, "course_id"] = "p1-1"
    problems = reg.problems()
    assert "registrations row 4: its course belongs to another patient" in problems
    assert not any("p2" in p for p in problems)


def test_two_endings_and_followup_without_ending() -> None:
    reg = small_registry()
    reg.registrations.loc[1, "kind"] = "ending"  # p1-1 now has two endings
    reg.registrations.loc[4, "kind"] = "followup"  # p2-1 has a follow-up but no ending
    problems = reg.problems()
    assert "1 course(s) have more than one of: endings" in problems
    assert "1 course(s) have a one-year follow-up but no ending" in problems


def test_out_of_order_dates() -> None:
    reg = small_registry()
    reg.registrations.loc[1, "date"] = pd.Timestamp("2021-05-01")  # measurement after the ending (2021-04-01)
    problems = reg.problems()
    assert any(p.startswith("registrations row 2: dated out of order") for p in problems)


def test_missing_column_is_named() -> None:
    reg = small_registry()
    reg.courses = reg.courses.drop(columns=["ending_type"])
    with pytest.raises(RegistryError, match=r"table 'courses' lacks required column\(s\) \['ending_type'\]"):
        reg.validate()


def test_without_opt_outs_removes_every_trace_but_the_count() -> None:
    reg = small_registry()
    reg.patients.loc[reg.patients["patient_id"] == "p2", "reserved"] = True
    clean = reg.without_opt_outs()
    for table in (clean.patients, clean.courses, clean.registrations):
        assert "p2" not in set(table["patient_id"])
    assert clean.meta["opted_out_courses"] == 1
    assert len(clean.registrations) == 3


def test_parquet_round_trip(tmp_path) -> None:
    reg = small_registry()
    back = Registry.from_parquet(reg.to_parquet(tmp_path / "reg"))
    pd.testing.assert_frame_equal(back.courses, reg.courses)
    pd.testing.assert_frame_equal(back.registrations, reg.registrations)
    assert back.extract_date == reg.extract_date
    assert [v.name for v in back.codebook.variables] == [v.name for v in reg.codebook.variables]
