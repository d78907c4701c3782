"""Completeness (kompletthet) and course completeness (forløpskompletthet) on hand-made registries."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

import kvarus_research as kr
from kvarus_research.io import completeness, course_completeness


def _registry() -> kr.Registry:
    # Patient a: baseline (dager_rus_30 = 5), measurement (missing), ending (4).
    # Patient b: baseline (missing), measurement (3).
    # Patient c: baseline (7), then nothing: last registration 01.01.2021, extract 01.01.2022 -> 365 days ago.
    # Patient d: measurement 01.12.2021 only: 31 days before the extract -> still running.
    regs = pd.DataFrame(
        {
            "patient_id": ["a", "a", "a", "b", "b", "c", "d"],
            "unit_id": [1, 1, 1, 2, 2, 2, 1],
            "kind": [
                "baseline",
                "measurement",
                "ending",
                "baseline",
                "measurement",
                "baseline",
                "measurement",
            ],
            "status": pd.array([None, 1, 4, None, 1, None, 1], dtype="Int64"),
            "date": pd.to_datetime(
                [
                    "2021-01-01",
                    "2021-03-01",
                    "2021-05-01",
                    "2021-02-01",
                    "2021-11-15",
                    "2021-01-01",
                    "2021-12-01",
                ]
            ),
            "dager_rus_30": pd.array([5, None, 2, None, 3, 7, 1], dtype="Int64"),
        }
    )
    return kr.Registry.from_registrations(regs, extract_date="2022-01-01")


def test_completeness_per_form_and_kind() -> None:
    t = completeness(_registry())
    t = t[t["variable"] == "dager_rus_30"].set_index("kind")
    # baseline rows: a=5, b=NA, c=7 -> 2 of 3; measurement rows: a=NA, b=3, d=1 -> 2 of 3; ending: a=2 -> 1 of 1
    assert t.loc["baseline", ["applicable", "present"]].tolist() == [3, 2]
    assert t.loc["measurement", ["applicable", "present"]].tolist() == [3, 2]
    assert t.loc["ending", ["applicable", "present"]].tolist() == [1, 1]
    assert t.loc["baseline", "form"] == "Basisopplysninger" and t.loc["ending", "form"] == "Målepunkt"
    assert np.isclose(t.loc["baseline", "completeness"], 2 / 3)
    lo, hi = proportion_confint(2, 3, alpha=0.05, method="wilson")
    assert np.isclose(t.loc["baseline", "ci_low"], lo) and np.isclose(t.loc["baseline", "ci_high"], hi)
    assert t.loc["baseline", "label"] == "Days of substance use in the last 30 days"


def test_course_completeness_overall_and_by_unit() -> None:
    reg = _registry()
    # courses: a ended; b last registration 15.11.2021 (47 days ago) -> running; c last 01.01.2021
    # (365 days > 182) -> overdue; d running. Denominator = ended 1 + overdue 1 = 2; completeness 1/2.
    t = course_completeness(reg)
    assert t[["courses", "ended", "overdue", "denominator"]].iloc[0].tolist() == [4, 1, 1, 2]
    assert t["completeness"].iloc[0] == 0.5
    lo, hi = proportion_confint(1, 2, alpha=0.05, method="wilson")
    assert np.isclose(t["ci_low"].iloc[0], lo) and np.isclose(t["ci_high"].iloc[0], hi)
    by = course_completeness(reg, by="unit_id").set_index("unit_id")
    # unit 1: a (ended), d (running) -> 1/1; unit 2: b (running), c (overdue) -> 0/1
    assert by.loc[1, ["ended", "denominator"]].tolist() == [1, 1] and by.loc[1, "completeness"] == 1.0
    assert by.loc[2, ["ended", "denominator"]].tolist() == [0, 1] and by.loc[2, "completeness"] == 0.0
    # a 30-day inactivity limit makes b (47 days) and d (31 days) overdue too: denominator 1 + 3 = 4
    assert course_completeness(reg, inactive_days=30)["denominator"].iloc[0] == 4
    assert course_completeness(reg, inactive_days=40)["denominator"].iloc[0] == 3  # d (31 days) is running


def test_opted_out_patients_are_left_out() -> None:
    reg = _registry()
    reg.patients.loc[reg.patients["patient_id"] == "a", "reserved"] = True
    t = completeness(reg)
    assert "ending" not in set(t["kind"])  # a's ending was the only one
    assert course_completeness(reg)[["courses", "ended"]].iloc[0].tolist() == [3, 0]
