"""Cohort builder on the hand-made registry of kvarus_research.cohort.examples.flow_registry (table in its
docstring): every step's counts worked out by hand, YAML round trips, errors."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvarus_research import Cohort, CohortError
from kvarus_research.cohort.examples import flow_registry


@pytest.fixture(scope="module")
def reg():
    return flow_registry()


def _ids(cohort: Cohort) -> list[str]:
    return sorted(cohort.courses["course_id"].astype(str))


def test_opt_outs_are_the_first_step(reg):
    c = Cohort(reg)
    # 8 courses, c8 belongs to the opted-out patient p8 -> 7 remain
    assert c.flow.iloc[0][["step", "n_before", "n_after", "n_excluded"]].tolist() == ["opt_outs", 8, 7, 1]
    assert "c8" not in _ids(c)
    assert "p8" not in set(c.registry.patients["patient_id"])


def test_chain_counts_by_hand(reg):
    c = (
        Cohort(reg)
        .started_between("2021-01-01", "2022-12-31")  # c2 (2023) and c5 (2020) out: 7 -> 5
        .age_between(18, 65)  # of c1 25, c3 17, c4 45, c6 33, c7 70: c3 and c7 out: 5 -> 3
        .ended()  # c1, c4, c6 all ended: 3 -> 3
        .has_baseline()  # all three have one: 3 -> 3
        .first_course_per_patient()  # patients p1, p3, p5 differ: 3 -> 3
    )
    expected = [
        ("opt_outs", 8, 7, 1),
        ("started_between", 7, 5, 2),
        ("age_between", 5, 3, 2),
        ("ended", 3, 3, 0),
        ("has_baseline", 3, 3, 0),
        ("first_course_per_patient", 3, 3, 0),
    ]
    got = list(c.flow[["step", "n_before", "n_after", "n_excluded"]].itertuples(index=False, name=None))
    assert got == expected
    assert _ids(c) == ["c1", "c4", "c6"]
    assert c.flow["label"].iloc[2] == "Age 18–65 at course start"
    assert c.flow["reason"].iloc[1] == "course started outside 2021-01-01 to 2022-12-31"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        # p1 has c1 (2021) and c2 (2023): c2 is not the first -> 7 - 1
        (lambda c: c.first_course_per_patient(), ["c1", "c3", "c4", "c5", "c6", "c7"]),
        # female patients p2, p3, p5 (p8 opted out)
        (lambda c: c.sex("Female"), ["c3", "c4", "c6"]),
        (lambda c: c.sex(2), ["c3", "c4", "c6"]),
        (lambda c: c.sex("kvinne"), ["c3", "c4", "c6"]),
        (lambda c: c.setting("inpatient"), ["c3", "c4", "c7"]),  # unit 2
        (lambda c: c.regions(["Helse Vest"]), ["c1", "c2", "c5", "c6"]),  # unit 1
        (lambda c: c.units(["Døgn B"]), ["c3", "c4", "c7"]),
        (lambda c: c.units([1]), ["c1", "c2", "c5", "c6"]),
        # hovedrusmiddel 1 = Alcohol at baseline: c1, c5, c6 (c3 has no baseline registration, no value)
        (lambda c: c.main_substance(["Alcohol"]), ["c1", "c5", "c6"]),
        (lambda c: c.main_substance([1, "Opioids"]), ["c1", "c4", "c5", "c6"]),
        (lambda c: c.has_baseline(), ["c1", "c2", "c4", "c5", "c6", "c7"]),
        (lambda c: c.ended(types=["interrupted"]), ["c3", "c4"]),
        (lambda c: c.ended(), ["c1", "c3", "c4", "c5", "c6", "c7"]),
        # ending + 365 + 90 on or before 2024-01-01: c4 (2023-05-01 -> 2024-07-29) not yet, c2 active
        (lambda c: c.followup_due(grace_days=90), ["c1", "c3", "c5", "c6", "c7"]),
        # with no grace c4 is due 2024-04-30: still not; c6 due 2023-09-01 either way
        (lambda c: c.followup_due(grace_days=0), ["c1", "c3", "c5", "c6", "c7"]),
        # with 150 days' grace c6 (2022-09-01 + 515 = 2024-01-29) is not yet due
        (lambda c: c.followup_due(grace_days=150), ["c1", "c3", "c5", "c7"]),
        (lambda c: c.started_between(None, "2021-06-01"), ["c1", "c3", "c5"]),
        (lambda c: c.age_between(lo=60), ["c5", "c7"]),
        # baseline dager_rus_30: c1 20, c2 10, c3 25 (its first measurement stands in), c4 30, c5 5, c6 12, c7 18
        (lambda c: c.where("dager_rus_30", "baseline", ">= 18"), ["c1", "c3", "c4", "c7"]),
        (lambda c: c.where("dager_rus_30", "baseline", {"between": [10, 20]}), ["c1", "c2", "c6", "c7"]),
        (lambda c: c.where("dager_rus_30", "baseline", [5, 10]), ["c2", "c5"]),
        # ending dager_rus_30: c1 2, c3 missing, c4 20, c5 1, c6 4, c7 10
        (lambda c: c.where("dager_rus_30", "ending", "<= 5"), ["c1", "c5", "c6"]),
        (lambda c: c.where("dager_rus_30", "ending", "isna"), ["c2", "c3"]),  # c2 has no ending at all
        (lambda c: c.where("dager_rus_30", "MP1", lambda s: s < 9), ["c1"]),  # MP1: c1 8, c2 9
        (lambda c: c.where("hovedrusmiddel", "baseline", ["Cannabis"]), ["c2"]),
    ],
)
def test_single_criteria(reg, make, expected):
    c = make(Cohort(reg))
    assert _ids(c) == expected
    last = c.flow.iloc[-1]
    assert (last["n_before"], last["n_after"], last["n_excluded"]) == (7, len(expected), 7 - len(expected))


def test_criteria_do_not_change_the_original(reg):
    base = Cohort(reg)
    narrowed = base.sex(1)
    # male patients p1 (c1, c2), p4 (c5), p6 (c7): 4 courses; the base cohort keeps its 7 and its one-step flow
    assert _ids(narrowed) == ["c1", "c2", "c5", "c7"]
    assert len(base) == 7 and len(base.flow) == 1 and len(narrowed.flow) == 2


def test_first_course_is_within_the_selection(reg):
    # after dropping c1 (started 2021) the first course of p1 in the selection is c2
    c = Cohort(reg).started_between("2022-01-01", None).first_course_per_patient()
    assert _ids(c) == ["c2", "c4", "c6"]


def test_courses_columns_and_baseline_values(reg):
    c = Cohort(reg)
    courses = c.courses.set_index("course_id")
    for col in ("patient_id", "unit_id", "unit_name", "region", "setting", "sex", "age_at_start", "start_date",
                "end_date", "ending_type", "followup_status", "followup_date", "hovedrusmiddel", "dager_rus_30"):  # fmt: skip
        assert col in courses.columns
    assert courses.loc["c4", "hovedrusmiddel"] == 3
    assert courses.loc["c3", "baseline_kind"] == "measurement"  # no baseline registration: first MP stands in
    assert courses.loc["c3", "dager_rus_30"] == 25
    assert courses.loc["c7", "setting"] == "inpatient"
    assert courses.loc["c5", "followup_status"] == "declined"


def test_registry_is_restricted(reg):
    c = Cohort(reg).setting("inpatient")  # c3, c4, c7: 2 + 2 + 3 registrations
    sub = c.registry
    assert sorted(sub.courses["course_id"]) == ["c3", "c4", "c7"]
    assert len(sub.registrations) == 7
    assert sorted(sub.patients["patient_id"]) == ["p2", "p3", "p6"]
    assert sub.meta["cohort"] == c.definition


def test_yaml_round_trip_gives_the_same_cohort(reg, tmp_path):
    c = (
        Cohort(reg)
        .started_between("2021-01-01", "2022-12-31")
        .age_between(18, 80)
        .sex(["Female", 1])
        .regions(["Helse Vest", "Helse Sør-Øst"])
        .setting("inpatient")
        .main_substance(["Opioids", 4])
        .ended(types=["interrupted", "mutual_agreement"])
        .has_baseline()
        .followup_due(grace_days=30)
        .where("dager_rus_30", "ending", "<= 20", label="Few days of use at ending")
        .first_course_per_patient()
    )
    path = c.to_yaml(tmp_path / "cohort.yaml")
    back = Cohort.from_yaml(path, reg)
    pd.testing.assert_frame_equal(back.flow, c.flow)
    pd.testing.assert_frame_equal(back.courses, c.courses)
    assert back.definition == c.definition
    # c4 (inpatient, opioids, interrupted) is not yet due at grace 30 (2023-05-01 + 395 > 2024-01-01); c7 is
    assert _ids(back) == ["c7"]
    assert c.flow["label"].iloc[-2] == "Few days of use at ending"
    text = path.read_text(encoding="utf-8")
    assert "criterion: where" in text and "Helse Sør-Øst" in text


def test_window_timepoint_in_where_round_trips(reg, tmp_path):
    # c1's measurement 2021-05-03 is 91 days after start: in the 3m window (90 +- 45); c2's (92 days) too
    c = Cohort(reg).where("dager_rus_30", "3m", "<= 8", align={"scheme": "window"})
    assert _ids(c) == ["c1"]
    back = Cohort.from_yaml(c.to_yaml(tmp_path / "w.yaml"), reg)
    assert _ids(back) == ["c1"]


def test_callable_cannot_be_saved(reg, tmp_path):
    c = Cohort(reg).where("dager_rus_30", "baseline", lambda s: s > 3)
    with pytest.raises(CohortError, match="YAML cannot store it"):
        c.to_yaml(tmp_path / "x.yaml")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda c: c.setting("day care"), "not one of"),
        (lambda c: c.sex("Unknown sex"), "neither a code nor a label"),
        (lambda c: c.ended(types=["finished"]), "not one of"),
        (lambda c: c.where("no_such_variable", "baseline", [1]), "not a codebook data variable"),
        (lambda c: c.where("dager_rus_30", "baseline", "about 3"), "not understood"),
        (lambda c: c.where("dager_rus_30", "MP9", [1]), "is not one of"),
        (lambda c: c.started_between("2022-01-01", "2021-01-01"), "lies before start"),
        (lambda c: c.started_between("yesterday-ish", None), "is not a date"),
    ],
)
def test_errors_say_what_is_wrong(reg, make, message):
    with pytest.raises(CohortError, match=message):
        make(Cohort(reg))


def test_bad_definitions(reg, tmp_path):
    with pytest.raises(CohortError, match="unknown criterion 'age'"):
        Cohort.from_definition({"criteria": [{"criterion": "age", "lo": 1}]}, reg)
    with pytest.raises(CohortError, match="wrong arguments"):
        Cohort.from_definition({"criteria": [{"criterion": "age_between", "low": 1}]}, reg)
    bad = tmp_path / "bad.yaml"
    bad.write_text("criteria: [\n", encoding="utf-8")
    with pytest.raises(CohortError, match="bad.yaml"):
        Cohort.from_yaml(bad, reg)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.integers(-5, 40)), min_size=1, max_size=30),
    op=st.sampled_from([">=", "<=", "==", "!=", ">", "<"]),
    threshold=st.integers(-5, 40),
)
def test_comparison_condition_matches_python(values, op, threshold):
    from kvarus_research.cohort.criteria import _evaluate

    base = Cohort(flow_registry())._base
    series = pd.Series(pd.array(values, dtype="Int64"))
    keep, text = _evaluate(base, "dager_rus_30", series, f"{op} {threshold}")
    ops = {
        ">=": int.__ge__,
        "<=": int.__le__,
        "==": int.__eq__,
        "!=": int.__ne__,
        ">": int.__gt__,
        "<": int.__lt__,
    }
    expected = [v is not None and ops[op](v, threshold) for v in values]  # missing never meets a comparison
    assert keep.tolist() == expected
    assert text == f"{op} {threshold}"
