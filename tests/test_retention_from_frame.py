"""from_frame: a plain data frame with a time and an event column as time-to-event data.

Values worked out by hand on eight rows (times 2, 3, 3, 5, 6, 8, 8, 9; event 1, 0, 2, 1, 0, 1, 2, 0):

* Kaplan–Meier of any ending: t=2 8 at risk, 1 ending: 7/8 = 0.875; t=3 7 at risk (the course censored at 3 is
  still at risk), 1 ending: 0.875 * 6/7 = 0.75; t=5 5 at risk: 0.75 * 4/5 = 0.6; t=8 3 at risk, 2 endings:
  0.6 * 1/3 = 0.2. Median: the first time S <= 0.5, 8.
* Aalen–Johansen: cause 1 = 1/8 + 0.75 * 1/5 + 0.6 * 1/3 = 0.125 + 0.15 + 0.2 = 0.475; cause 2 = 0.875 * 1/7 +
  0.6 * 1/3 = 0.125 + 0.2 = 0.325; with S(8) = 0.2 they add up to 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kvarus_research.errors import AnalysisError
from kvarus_research.retention import TimeToEvent, cox, cumulative_incidence, from_frame, kaplan_meier

T = [2, 3, 3, 5, 6, 8, 8, 9]
E = [1, 0, 2, 1, 0, 1, 2, 0]
G = ["a", "b", "a", "b", "a", "b", "a", "b"]


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"t": T, "status": E, "arm": G, "x": [0.1, 1.2, -0.3, 0.8, 0.0, 1.5, -1.0, 0.4]})


def _courses() -> pd.DataFrame:
    """The same rows as registry courses: endings dated, censored ones active until the extract date."""
    extract = pd.Timestamp("2022-12-31")
    days = pd.to_timedelta(T, unit="D")
    active = np.array(E) == 0
    start = pd.to_datetime(np.where(active, extract - days, pd.Timestamp("2022-01-01")))
    end = pd.Series(start + days).where(~active)
    ending = pd.Series(E).map({0: "active", 1: "interrupted", 2: "mutual_agreement"})
    return pd.DataFrame({"start_date": start, "end_date": end, "ending_type": ending, "arm": G,
                         "x": _frame()["x"]})  # fmt: skip


def test_kaplan_meier_by_hand() -> None:
    tte = from_frame(_frame(), time="t", event="status")
    assert isinstance(tte, TimeToEvent)
    km = kaplan_meier(tte, protect=False)
    assert km.table["time"].tolist() == [2, 3, 5, 8]
    assert km.table["estimate"].tolist() == pytest.approx([0.875, 0.75, 0.6, 0.2], abs=1e-12)
    assert km.table["n_at_risk"].tolist() == [8, 7, 5, 3]
    assert km.summary.loc[0, "median"] == 8
    assert km.summary.loc[0, "n_courses"] == 8 and km.summary.loc[0, "n_events"] == 5


def test_cumulative_incidence_by_hand() -> None:
    tte = from_frame(_frame(), time="t", event="status", causes={1: "dropout", 2: "completed"})
    assert tte.causes == ("dropout", "completed")
    ci = cumulative_incidence(tte, protect=False, horizon=10)
    inc = ci.summary.set_index("cause")["cumulative_incidence"]
    assert inc["dropout"] == pytest.approx(0.475, abs=1e-12)
    assert inc["completed"] == pytest.approx(0.325, abs=1e-12)


def test_agrees_with_the_registry_path() -> None:
    frame = from_frame(_frame(), time="t", event="status", causes={1: "dropout", 2: "mutual_agreement"})
    reg = kaplan_meier(_courses(), by="arm", extract_date="2022-12-31", protect=False)
    own = kaplan_meier(frame, by="arm", protect=False)
    cols = ["group", "time", "n_at_risk", "n_events", "estimate", "ci_lower", "ci_upper"]
    pd.testing.assert_frame_equal(own.table[cols], reg.table[cols])
    num = ["statistic", "df", "p_value"]
    pd.testing.assert_frame_equal(own.tests[num], reg.tests[num])
    reg_ci = cumulative_incidence(_courses(), by="arm", extract_date="2022-12-31", protect=False)
    own_ci = cumulative_incidence(frame, by="arm", protect=False)
    for cause in ("dropout", "mutual_agreement"):
        a = own_ci.table.loc[own_ci.table["cause"] == cause, cols].reset_index(drop=True)
        b = reg_ci.table.loc[reg_ci.table["cause"] == cause, cols].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
    # Gray's and the cause-specific tests (the registry path also tests 'transferred', which has no events)
    ga = own_ci.tests.set_index(["test", "cause"]).loc[:, num]
    gb = reg_ci.tests.set_index(["test", "cause"]).loc[ga.index, num]
    pd.testing.assert_frame_equal(ga, gb)


def test_cox_agrees_with_the_registry_path() -> None:
    """Cause-specific Cox for dropout on the 300 simulated rows, as a frame and as dated courses."""
    d = pd.read_csv(Path(__file__).parent / "data" / "gray_competing_sim.csv")
    d["group_b"] = (d["group"] == "B").astype(float)
    extract = pd.Timestamp("2022-12-31")
    days = pd.to_timedelta(d["time"], unit="D")
    active = (d["status"] == 0).to_numpy()
    start = pd.Series(np.where(active, extract - days, pd.Timestamp("2021-01-01")))
    courses = pd.DataFrame(
        {
            "start_date": pd.to_datetime(start),
            "end_date": (pd.to_datetime(start) + days).where(~active),
            "ending_type": d["status"].map(
                {0: "active", 1: "interrupted", 2: "mutual_agreement", 3: "transferred"}
            ),
            "group_b": d["group_b"],
        }
    )
    causes = {1: "dropout", 2: "mutual_agreement", 3: "transferred"}
    c_own = cox(
        from_frame(d, time="time", event="status", causes=causes), covariates=["group_b"], ph_test=False
    )
    c_reg = cox(courses, covariates=["group_b"], extract_date=extract, ph_test=False)
    assert c_own.table.loc[0, "log_hr"] == pytest.approx(c_reg.table.loc[0, "log_hr"], rel=1e-9)
    assert c_own.table.loc[0, "se"] == pytest.approx(c_reg.table.loc[0, "se"], rel=1e-9)


def test_default_by_labels_exclusions_and_cluster() -> None:
    df = _frame()
    df.loc[len(df)] = {"t": np.nan, "status": 1, "arm": "a", "x": 0.0}
    df.loc[len(df)] = {"t": -1, "status": 1, "arm": "a", "x": 0.0}
    df["patient"] = ["p1", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"]
    tte = from_frame(df, time="t", event="status", by="arm", cluster="patient")
    assert tte.exclusions.values.tolist() == [["missing time", 1], ["negative time", 1]]
    assert tte.causes == ("1", "2") and tte.cluster == "patient"
    km = kaplan_meier(tte, protect=False)
    assert sorted(km.table["group"].unique()) == ["a", "b"]  # the default by= of from_frame
    assert "8 of 10 rows" in km.definition.population
    assert tte.table["course_id"].tolist() == list(range(8))


def test_labels_booleans_and_cause_order() -> None:
    df = pd.DataFrame({"t": [1.0, 2.0, 3.0], "status": ["0", "dropout", "transfer"]})
    tte = from_frame(df, time="t", event="status", causes=["transfer", "dropout"])
    assert tte.causes == ("transfer", "dropout")
    assert tte.table["cause_code"].tolist() == [0, 2, 1]
    assert tte.table["event"].tolist() == [0, 1, 1]
    b = from_frame(pd.DataFrame({"t": [1, 2], "d": [True, False]}), time="t", event="d")
    assert b.causes == ("1",) and b.table["event"].tolist() == [1, 0]


def test_refuses_what_it_cannot_do() -> None:
    df = _frame()
    with pytest.raises(AnalysisError, match="delayed entry"):
        from_frame(df.assign(e=0), time="t", event="status", entry="e")
    with pytest.raises(AnalysisError, match=r"neither 0 \(censored\) nor one of the causes"):
        from_frame(df, time="t", event="status", causes=[1])
    with pytest.raises(AnalysisError, match="no column"):
        from_frame(df, time="time", event="status")
    with pytest.raises(AnalysisError, match="time_unit"):
        from_frame(df, time="t", event="status", time_unit="fortnights")
