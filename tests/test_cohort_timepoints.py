"""Timepoint alignment on kvarus_research.cohort.examples.timepoint_registry (courses A-D, edge cases in its
docstring): no baseline, two measurement points in one window, a registration outside every window, follow-up
not yet due vs missing."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvarus_research import Cohort, CohortError, Registry
from kvarus_research.cohort import align_timepoints
from kvarus_research.cohort.examples import START_A, flow_registry, timepoint_registry
from kvarus_research.cohort.timepoints import LONG_COLUMNS


@pytest.fixture(scope="module")
def reg():
    return timepoint_registry()


def _course(tp, course: str) -> list[tuple[str, int, int]]:
    rows = tp.long[tp.long["course_id"] == course]
    return list(zip(rows["timepoint"], rows["days_since_start"], rows["dager_rus_30"], strict=True))


def test_window_scheme_edge_cases(reg):
    tp = align_timepoints(reg, scheme="window", windows=(90, 180, 365), tolerance=45)
    # A: day 80 and day 100 are both 10 days from 90: tie, the earlier (80, value 15) wins;
    #    day 300 lies in no window (3m 45-135, 6m 135-225, 12m 320-410); day 350 is 12m
    assert _course(tp, "A") == [("baseline", 0, 20), ("3m", 80, 15), ("12m", 350, 9), ("ending", 400, 6)]
    # B: no baseline registration -> its first measurement point (day 0) is the baseline;
    #    170 (10 from 180) beats 200 (20 from 180) in 6m
    assert _course(tp, "B") == [("baseline", 0, 28), ("6m", 170, 21), ("ending", 250, 17)]
    assert _course(tp, "D") == [("baseline", 0, 16), ("3m", 92, 13)]
    assert tp.long["kind"][tp.long["course_id"] == "B"].tolist() == ["measurement", "measurement", "ending"]
    notes = dict(zip(tp.notes["note"], tp.notes["n"], strict=True))
    # 15 registrations: A 6, B 4, C 3, D 2; 12 placed; dropped: A day 300 (outside), A day 100 and B day 200 (extra)
    assert notes["registrations"] == 15 and notes["aligned"] == 12 == len(tp.long)
    assert notes["outside_windows"] == 1
    assert notes["window_extra"] == 2
    assert notes["window_ties"] == 1  # only A's day 100 was as near as the winner
    assert notes["no_baseline_registration"] == 1 and notes["baseline_from_first_measurement"] == 1
    assert notes["no_baseline"] == 0
    assert list(tp.long.columns[: len(LONG_COLUMNS)]) == LONG_COLUMNS
    assert tp.timepoint_names == ["baseline", "3m", "6m", "12m", "ending", "followup"]
    assert tp.long.groupby("course_id")["timepoint_order"].apply(lambda s: s.is_monotonic_increasing).all()


def test_baseline_registration_only(reg):
    tp = align_timepoints(reg, scheme="window", baseline="registration")
    # B keeps no baseline row; its day-0 measurement is 90 days from the 3m target (> 45): outside every window
    assert _course(tp, "B") == [("6m", 170, 21), ("ending", 250, 17)]
    assert tp.note("no_baseline") == 1
    assert tp.note("outside_windows") == 2  # A day 300 and B day 0
    assert tp.note("baseline_from_first_measurement") == 0


def test_order_scheme_and_max_measurements(reg):
    tp = align_timepoints(reg)
    assert [t for t, _, _ in _course(tp, "A")] == ["baseline", "MP1", "MP2", "MP3", "MP4", "ending"]
    # B: day 0 is the baseline, so its measurement points start at day 170
    assert _course(tp, "B")[1:3] == [("MP1", 170, 21), ("MP2", 200, 19)]
    capped = align_timepoints(reg, max_measurements=2)
    assert [t for t, _, _ in _course(capped, "A")] == ["baseline", "MP1", "MP2", "ending"]
    assert capped.note("beyond_max_measurements") == 2  # A's days 300 and 350
    assert capped.timepoint_names == ["baseline", "MP1", "MP2", "ending", "followup"]
    assert capped.long.loc[capped.long["timepoint"] == "ending", "timepoint_order"].unique().tolist() == [3]


def test_followup_not_yet_due_vs_missing(reg):
    tp = align_timepoints(reg, grace_days=90)
    f = tp.followup.set_index("course_id")
    # A ended 2022-02-05: due 2022-02-05 + 455 days = 2023-05-06, after the extract date 2023-03-01
    assert f.loc["A", "due_date"] == pd.Timestamp("2023-05-06")
    assert f.loc["A", ["followup_status", "due", "missing"]].tolist() == ["not_yet_due", False, False]
    # B ended 2021-11-06: due 2023-02-04, before the extract date, nothing registered -> missing
    assert f.loc["B", "due_date"] == pd.Timestamp("2023-02-04")
    assert f.loc["B", ["followup_status", "due", "missing"]].tolist() == ["not_registered", True, True]
    assert f.loc["C", ["followup_status", "due", "missing"]].tolist() == ["reached", True, False]
    assert f.loc["C", "followup_date"] == pd.Timestamp("2021-06-10")
    assert f.loc["D", ["followup_status", "due", "missing"]].tolist() == ["no_ending", False, False]
    assert _course(tp, "C")[-1][0] == "followup"
    # without grace A is due 2023-02-05 <= 2023-03-01: now it counts as missing
    strict = align_timepoints(reg, grace_days=0).followup.set_index("course_id")
    assert strict.loc["A", ["followup_status", "missing"]].tolist() == ["not_registered", True]


def test_followup_statuses_match_the_registry():
    reg = flow_registry()
    tp = align_timepoints(reg)  # same grace (90) as the registry's course table
    got = tp.followup.set_index("course_id")["followup_status"]
    want = reg.courses.set_index("course_id")["followup_status"].drop("c8")  # c8: opted out
    pd.testing.assert_series_equal(got.sort_index(), want.sort_index(), check_dtype=False, check_names=False)
    # declined (c5) and not reached (c7) are due and count as missing; reached (c1) does not
    f = tp.followup.set_index("course_id")
    assert f.loc[["c1", "c5", "c7"], "missing"].tolist() == [False, True, True]


def test_wide_format(reg):
    tp = align_timepoints(reg, scheme="window")
    w = tp.wide
    assert list(w.index) == ["A", "B", "C", "D"]
    assert w.columns.names == ["variable", "timepoint"]
    assert w.loc["A", ("dager_rus_30", "3m")] == 15
    assert w.loc["B", ("dager_rus_30", "baseline")] == 28
    assert pd.isna(w.loc["B", ("dager_rus_30", "3m")])
    assert (
        w.loc["C", ("days_since_start", "followup")]
        == (pd.Timestamp("2021-06-10") - pd.Timestamp("2020-01-01")).days
    )
    flat = tp.wide_flat
    assert flat.loc["A", "dager_rus_30__12m"] == 9


def test_cohort_input_restricts_courses(reg):
    cohort = Cohort(reg).ended()  # D is active
    tp = align_timepoints(cohort)
    assert sorted(tp.long["course_id"].unique()) == ["A", "B", "C"]
    assert tp.note("courses") == 3 and tp.note("registrations") == 13


def test_opted_out_patients_never_aligned():
    tp = align_timepoints(flow_registry())
    assert "c8" not in set(tp.long["course_id"]) and "p8" not in set(tp.followup["patient_id"])


def test_named_windows_and_errors(reg):
    tp = align_timepoints(reg, scheme="window", windows={"early": 60, "late": 330}, tolerance=40)
    # A: 80 is 20 from 60 (100 is 40, also inside: loses); 350 is 20 from 330 (300 is 30: loses)
    assert _course(tp, "A")[1:3] == [("early", 80, 15), ("late", 350, 9)]
    with pytest.raises(CohortError, match="scheme"):
        align_timepoints(reg, scheme="weeks")
    with pytest.raises(CohortError, match="baseline"):
        align_timepoints(reg, baseline="first")
    with pytest.raises(CohortError, match="windows"):
        align_timepoints(reg, scheme="window", windows=(90, 90))
    with pytest.raises(CohortError, match="Cohort or a Registry"):
        align_timepoints(pd.DataFrame())


def _brute_force_windows(days: list[int], targets: list[int], tolerance: int) -> dict[int, int]:
    """Window index -> winning day, by plain loops: nearest window within tolerance (earlier on equal distance),
    then within a window the nearest day, the earlier on a tie."""
    best: dict[int, int] = {}
    for d in sorted(days):
        dists = [abs(d - t) for t in targets]
        inside = [i for i, x in enumerate(dists) if x <= tolerance]
        if not inside:
            continue
        w = min(inside, key=lambda i: (dists[i], i))
        if w not in best or abs(d - targets[w]) < abs(best[w] - targets[w]):
            best[w] = d
    return best


@settings(max_examples=40, deadline=None)
@given(
    days=st.lists(st.integers(1, 500), min_size=1, max_size=8, unique=True),
    tolerance=st.integers(0, 120),
)
def test_window_assignment_matches_brute_force(days, tolerance):
    ending = max(days) + 10
    rows = [{"course_id": "X", "patient_id": "p", "unit_id": 1, "kind": "baseline", "date": START_A, "status": pd.NA,
             "dager_rus_30": 0}]  # fmt: skip
    rows += [{"course_id": "X", "patient_id": "p", "unit_id": 1, "kind": "measurement",
              "date": START_A + pd.Timedelta(days=d), "status": 1, "dager_rus_30": d % 31} for d in days]  # fmt: skip
    rows.append({"course_id": "X", "patient_id": "p", "unit_id": 1, "kind": "ending",
                 "date": START_A + pd.Timedelta(days=ending), "status": 4, "dager_rus_30": 0})  # fmt: skip
    regs = pd.DataFrame(rows)
    regs["status"] = regs["status"].astype("Int64")
    reg = Registry.from_registrations(regs, extract_date="2030-01-01")
    tp = align_timepoints(reg, scheme="window", windows=(90, 180, 365), tolerance=tolerance)
    got = {
        row.timepoint_order - 1: row.days_since_start
        for row in tp.long.itertuples()
        if row.kind == "measurement"
    }
    assert got == _brute_force_windows(days, [90, 180, 365], tolerance)
    n_dropped = tp.note("outside_windows") + tp.note("window_extra")
    assert len(got) + n_dropped == len(days)
