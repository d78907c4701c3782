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
from kvarus_research.retention import (
    TimeToEvent,
    cox,
    cumulative_incidence,
    from_frame,
    gray_test,
    kaplan_meier,
    time_to_event,
)

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
    delayed = from_frame(df.assign(e=0), time="t", event="status", entry="e")
    with pytest.raises(AnalysisError, match="delayed entry"):
        cox(delayed, covariates=["x"], ph_test=False)
    with pytest.raises(AnalysisError, match="delayed entry"):
        gray_test(delayed, by="arm")
    ci_tests = cumulative_incidence(delayed, by="arm").tests  # with delayed entry: no Gray rows (yet)
    assert set(ci_tests["test"]) == {"cause-specific log-rank (other endings censored)"}
    with pytest.raises(AnalysisError, match=r"neither 0 \(censored\) nor one of the causes"):
        from_frame(df, time="t", event="status", causes=[1])
    with pytest.raises(AnalysisError, match="no column"):
        from_frame(df, time="time", event="status")
    with pytest.raises(AnalysisError, match="time_unit"):
        from_frame(df, time="t", event="status", time_unit="fortnights")


def test_delayed_entry_by_hand() -> None:
    """Times 2, 3, 5 (all end); the third enters at 2.5: at risk at 3 and 5 only. S(2) = 1 - 1/2 (two at risk),
    S(3) = 0.5 * (1 - 1/2) (rows 2 and 3 at risk), S(5) = 0.25 * (1 - 1/1) = 0."""
    df = pd.DataFrame({"t": [2, 3, 5], "e": [0, 0, 2.5], "s": [1, 1, 1]})
    km = kaplan_meier(from_frame(df, time="t", event="s", entry="e"), protect=False)
    assert km.table["n_at_risk"].tolist() == [2, 2, 1]
    assert km.table["estimate"].tolist() == pytest.approx([0.5, 0.25, 0.0])


#: R 4.2.2 Patched (2022-11-10 r83330), survival 3.5.3, on tests/data/delayed_entry_sim.csv (the 300 simulated rows
#: with an entry time drawn once for 40 % of them): ``f <- survfit(Surv(entry, time, status > 0) ~ 1, data = d,
#: conf.type = "log-log")``; ``summary(f)`` rows 1, 5, 10, 20, 30, 40: time, n.risk, surv, lower, upper.
R_KM_ENTRY = [
    (7, 219, 0.9132420091324200406, 0.8673585468992838221, 0.943764079972991610),
    (35, 186, 0.6430864396582577358, 0.5799022597179469551, 0.699293120072517427),
    (70, 136, 0.4403544944635279235, 0.3797041584973616102, 0.499241880113264647),
    (140, 56, 0.2172387168319135364, 0.1695698513954597975, 0.268847288701235088),
    (231, 19, 0.0963977816543291760, 0.0618208557884786930, 0.140025639987968797),
    (406, 2, 0.0084348058947538041, 0.0008028808867853568, 0.040779578863612324),
]
#: ``d$cause <- factor(d$status, 0:3, c("censor", "c1", "c2", "c3")); d$id <- seq_len(nrow(d))``;
#: ``a <- survfit(Surv(entry, time, cause) ~ 1, data = d, id = id)``; ``summary(a, times = c(50, 150, 300))$pstate``
#: columns c1, c2, c3 (Aalen–Johansen with delayed entry).
R_AJ_ENTRY = {
    50: (0.21812911462089557, 0.20386384995987478, 0.052513544727053232),
    150: (0.38066232599764177, 0.33747556225117636, 0.085921308334161645),
    300: (0.42986906735007463, 0.40144737064287045, 0.101205114849024363),
}
#: ``summary(survfit(Surv(entry, time, status > 0) ~ group, data = d, conf.type = "log-log"), times = c(100, 200))``
R_KM_ENTRY_GROUP = {("A", 100): (55, 0.463674692865697791, 0.370288189772112253, 0.55179236224763384),
                    ("A", 200): (13, 0.153797530492837842, 0.092665036835891640, 0.22914931325843862),
                    ("B", 100): (25, 0.295472691353153016, 0.201286340763036226, 0.39564257290403393),
                    ("C", 200): (4, 0.089057218122352996, 0.034702540887041569, 0.17546883841361910)}  # fmt: skip


def _entry_data() -> TimeToEvent:
    d = pd.read_csv(Path(__file__).parent / "data" / "delayed_entry_sim.csv")
    return from_frame(d, time="time", event="status", entry="entry", causes={1: "c1", 2: "c2", 3: "c3"})


def _at(table: pd.DataFrame, t: float) -> pd.Series:
    """The step function's row in effect at time t."""
    return table.loc[table["time"] <= t].iloc[-1]


def test_delayed_entry_matches_r_survfit() -> None:
    tte = _entry_data()
    km = kaplan_meier(tte, protect=False).table.set_index("time")
    for time, n_risk, surv, lower, upper in R_KM_ENTRY:
        row = km.loc[time]
        assert row["n_at_risk"] == n_risk
        assert row["estimate"] == pytest.approx(surv, rel=1e-6)
        assert row["ci_lower"] == pytest.approx(lower, rel=1e-6)
        assert row["ci_upper"] == pytest.approx(upper, rel=1e-6)
    by = kaplan_meier(tte, by="group", protect=False).table
    for (group, time), (_n_risk, surv, lower, upper) in R_KM_ENTRY_GROUP.items():
        row = _at(by.loc[by["group"] == group], time)
        assert row["estimate"] == pytest.approx(surv, rel=1e-6)
        assert row["ci_lower"] == pytest.approx(lower, rel=1e-6)
        assert row["ci_upper"] == pytest.approx(upper, rel=1e-6)
    ci = cumulative_incidence(tte, protect=False).table
    for time, expected in R_AJ_ENTRY.items():
        for cause, value in zip(("c1", "c2", "c3"), expected, strict=True):
            assert _at(ci.loc[ci["cause"] == cause], time)["estimate"] == pytest.approx(value, rel=1e-6)


def test_delayed_entry_protected_curve_is_coarse_and_cut_where_few_at_risk() -> None:
    tte = _entry_data()
    prot = kaplan_meier(tte, step=30, round_to=5, min_at_risk=10).table
    assert (prot["time"] % 30 == 0).all() and (prot["n_at_risk"] % 5 == 0).all()
    exact = kaplan_meier(tte, protect=False).table
    # every grid point shown has at least 10 truly at risk: the exact risk set just after the previous grid point
    for t in prot["time"]:
        after = exact.loc[(exact["time"] > t - 30) & (exact["time"] <= t), "n_at_risk"]
        assert after.empty or after.max() >= 10


def test_delayed_entry_logrank_matches_r_coxph_score_test() -> None:
    """Untied times, so the log-rank test is the Cox score test at beta = 0.

    R 4.2.2, survival 3.5.3, on tests/data/delayed_entry_untied.csv (200 rows simulated once, 40 % entering
    late): ``summary(coxph(Surv(entry, time, status > 0) ~ factor(group), data = d, ties = "breslow"))$sctest``
    and the same with ``status == 1`` (cause-specific, cause 2 censored).
    """
    d = pd.read_csv(Path(__file__).parent / "data" / "delayed_entry_untied.csv")
    tte = from_frame(d, time="time", event="status", entry="entry", causes={1: "dropout", 2: "other"})
    km = kaplan_meier(tte, by="group", protect=False).tests.iloc[0]
    assert km["statistic"] == pytest.approx(7.92524549978339987, rel=1e-6)
    assert km["p_value"] == pytest.approx(0.01901318201922176, rel=1e-6) and km["df"] == 2
    cs = cumulative_incidence(tte, by="group", protect=False).tests.set_index("cause").loc["dropout"]
    assert cs["statistic"] == pytest.approx(3.79373562735761327, rel=1e-6)
    assert cs["p_value"] == pytest.approx(0.15003783045073593, rel=1e-6)


def test_median_follows_r_survfit_at_a_plateau_of_one_half() -> None:
    """R 4.2.2, survival 3.5.3, ``summary(survfit(Surv(t, s) ~ 1, conf.type = "log-log"))$table``:
    t = 1..4 all ending: median 2.5 (S = 0.5 on [2, 3): the midpoint), 0.95LCL 1;
    t = 1..10 with 6 censored: median 6 (S = 0.5 on [5, 7), 7 the next ending), 0.95LCL 1, 0.95UCL 9."""
    a = kaplan_meier(
        from_frame(pd.DataFrame({"t": [1, 2, 3, 4], "s": 1}), time="t", event="s"), protect=False
    )
    assert a.summary.loc[0, "median"] == 2.5 and a.summary.loc[0, "median_ci_lower"] == 1
    s = [1, 1, 1, 1, 1, 0, 1, 1, 1, 1]
    b = kaplan_meier(
        from_frame(pd.DataFrame({"t": range(1, 11), "s": s}), time="t", event="s"), protect=False
    )
    assert b.summary.loc[0, ["median", "median_ci_lower", "median_ci_upper"]].tolist() == [6, 1, 9]


def test_registry_path_entry_date_by_hand_and_as_from_frame() -> None:
    """Observation begins 2021-01-11. a (1 Jan - 6 Jan) ended before: excluded. b (1 Jan - 21 Jan, dropout):
    entry 10, time 20. c (15 Jan - 4 Feb, mutual agreement): from its start, time 20. d (1 Jan, active to the
    extract date 1 Mar): entry 10, time 59. e (5 Jan - 13 Jan, dropout): entry 6, time 8.
    t=8: at risk c and e (b, d enter at 10): S = 1 - 1/2 = 0.5. t=20: b, c, d at risk, 2 end: S = 0.5 / 3.
    (Ignoring entry would give 4 at risk at t=8 and S = 0.75.)"""
    d = pd.to_datetime
    courses = pd.DataFrame(
        {
            "start_date": d(["2021-01-01", "2021-01-01", "2021-01-15", "2021-01-01", "2021-01-05"]),
            "end_date": d(["2021-01-06", "2021-01-21", "2021-02-04", None, "2021-01-13"]),
            "ending_type": ["interrupted", "interrupted", "mutual_agreement", "active", "interrupted"],
        }
    )
    tte = time_to_event(courses, extract_date="2021-03-01", entry_date="2021-01-11")
    assert tte.exclusions.values.tolist() == [["ended before observation began", 1]]
    km = kaplan_meier(tte, protect=False)
    assert km.table["n_at_risk"].tolist() == [2, 3]
    assert km.table["estimate"].tolist() == pytest.approx([0.5, 0.5 / 3])
    frame = pd.DataFrame({"t": [20, 20, 59, 8], "e": [10, 0, 10, 6], "s": [1, 2, 0, 1]})
    own = kaplan_meier(from_frame(frame, time="t", event="s", entry="e"), protect=False)
    cols = ["time", "n_at_risk", "estimate", "ci_lower", "ci_upper"]
    pd.testing.assert_frame_equal(own.table[cols], km.table[cols])
    # a per-course date column works the same way; no course before it: no delayed entry at all
    same = time_to_event(
        courses.assign(joined=d("2021-01-11")), extract_date="2021-03-01", entry_date="joined"
    )
    assert kaplan_meier(same, protect=False).table["estimate"].tolist() == pytest.approx([0.5, 0.5 / 3])
    early = time_to_event(courses, extract_date="2021-03-01", entry_date="2020-12-01")
    assert early.entry is None and "delayed entry" not in early.definition.details
