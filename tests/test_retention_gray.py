"""Gray's (1988) test of cumulative incidence against R's cmprsk::cuminc.

Reference values from R 4.2.2 Patched (2022-11-10 r83330) with cmprsk 2.2.11 (Debian r-cran-cmprsk
2.2-11-1), printed with ``options(digits = 17)``:

* hand-made data (``HAND`` below): ``cuminc(t, s, g)$Tests`` and ``cuminc(t, s, g, rho = 1)$Tests``;
* ``tests/data/gray_competing_sim.csv`` (300 simulated courses, three groups, causes 1-3, weekly ties, simulated
  once with numpy and saved): ``d <- read.csv(...)``; ``cuminc(d$time, d$status, d$group)$Tests``,
  ``cuminc(d$time, d$status, d$group, strata = d$stratum)$Tests``, ``cuminc(d$time, d$status, d$stratum)$Tests``
  and ``cuminc(d$time, d$status, d$group, rho = 0.5)$Tests``.

CI does not need R: the numbers are written here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kvarus_research.errors import AnalysisError
from kvarus_research.retention import cumulative_incidence, from_frame, gray_test
from kvarus_research.retention.competing import gray_statistic

DATA = Path(__file__).parent / "data" / "gray_competing_sim.csv"
HAND = {
    "t": [1, 2, 2, 3, 4, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    "s": [1, 2, 1, 0, 1, 1, 2, 0, 1, 2, 0, 1, 2, 0],
    "g": ["a", "b", "a", "b", "b", "a", "a", "b", "a", "b", "b", "a", "b", "a"],
}
#: (rho, cause) -> (stat, pv) from cuminc(t, s, g, rho=)$Tests; df 1.
R_HAND = {
    (0, 1): (2.8379141304293505, 0.092063652880557956),
    (0, 2): (2.2685461296179530, 0.132023703824771355),
    (1, 1): (2.7334574810338452, 0.098266341656010003),
    (1, 2): (1.9757982037356487, 0.159833757964387813),
}
#: call -> {cause: (stat, pv, df)} on gray_competing_sim.csv.
R_SIM = {
    "group": {1: (5.2279575836817953, 0.073242546403875841, 2), 2: (7.4191324909039107, 0.024488142811667002, 2),
              3: (3.4606478513590258, 0.177226992296942720, 2)},
    "group_strata": {1: (5.6115488162928191, 0.060459932374585579, 2),
                     2: (7.4499653147893437, 0.024113518614427010, 2),
                     3: (2.8422987047993371, 0.241436361903964003, 2)},
    "stratum": {1: (0.2420627785121005349, 0.62272022109017588, 1), 2: (0.3388408919571098132, 0.56049904632995795, 1),
                3: (0.0078297988364168757, 0.92949029143205952, 1)},
    "group_rho05": {1: (5.6878278792881982, 0.058197438360133802, 2),
                    2: (8.0251749328023223, 0.018086536334947279, 2),
                    3: (3.3815032334122743, 0.184380888143184651, 2)},
}  # fmt: skip
REL = 1e-6


def _status(s: np.ndarray, cause: int) -> np.ndarray:
    return np.where(s == cause, 1, np.where(s > 0, 2, 0))


@pytest.mark.parametrize(("rho", "cause"), list(R_HAND))
def test_hand_made_data_matches_cmprsk(rho: int, cause: int) -> None:
    stat, df, p = gray_statistic(HAND["t"], _status(np.array(HAND["s"]), cause), HAND["g"], rho=rho)
    assert df == 1
    assert stat == pytest.approx(R_HAND[rho, cause][0], rel=REL)
    assert p == pytest.approx(R_HAND[rho, cause][1], rel=REL)


@pytest.mark.parametrize("call", list(R_SIM))
def test_simulated_data_matches_cmprsk(call: str) -> None:
    d = pd.read_csv(DATA)
    group = d["stratum"] if call == "stratum" else d["group"]
    strata = d["stratum"] if call == "group_strata" else None
    rho = 0.5 if call == "group_rho05" else 0.0
    for cause, (r_stat, r_p, r_df) in R_SIM[call].items():
        stat, df, p = gray_statistic(
            d["time"], _status(d["status"].to_numpy(), cause), group, strata=strata, rho=rho
        )
        assert df == r_df
        assert stat == pytest.approx(r_stat, rel=REL)
        assert p == pytest.approx(r_p, rel=REL)


def test_gray_test_on_a_frame_names_causes_and_matches_cmprsk() -> None:
    d = pd.read_csv(DATA)
    tte = from_frame(d, time="time", event="status", causes={1: "dropout", 2: "completed", 3: "transferred"})
    res = gray_test(tte, by="group", cause=["dropout", "completed", "transferred"])
    table = res.table.set_index("cause")
    for cause, name in [(1, "dropout"), (2, "completed"), (3, "transferred")]:
        assert table.loc[name, "statistic"] == pytest.approx(R_SIM["group"][cause][0], rel=REL)
        assert table.loc[name, "p_value"] == pytest.approx(R_SIM["group"][cause][1], rel=REL)
    assert (table["df"] == 2).all() and (table["groups"] == 3).all()
    assert table["test"].str.startswith("Gray").all()
    # default cause: dropout; stratified test as cuminc(strata=)
    strat = gray_test(tte, by="group", strata="stratum").table
    assert strat["cause"].tolist() == ["dropout"]
    assert strat["statistic"].iloc[0] == pytest.approx(R_SIM["group_strata"][1][0], rel=REL)
    # nothing to suppress, and the protected table keeps the statistics
    assert res.protected().table["statistic"].tolist() == pytest.approx(table["statistic"].tolist())


def test_cumulative_incidence_tests_carry_gray_beside_cause_specific_logrank() -> None:
    d = pd.read_csv(DATA)
    tte = from_frame(d, time="time", event="status", causes={1: "dropout", 2: "completed", 3: "transferred"})
    tests = cumulative_incidence(tte, by="group").tests
    gray = tests.loc[tests["test"].str.startswith("Gray")].set_index("cause")
    assert gray.loc["dropout", "statistic"] == pytest.approx(R_SIM["group"][1][0], rel=REL)
    assert gray.loc["transferred", "p_value"] == pytest.approx(R_SIM["group"][3][1], rel=REL)
    cs = tests.loc[tests["test"].str.startswith("cause-specific")]
    assert sorted(cs["cause"]) == ["completed", "dropout", "transferred"]
    assert set(tests["test"].str.split(" ").str[0]) == {"Gray", "cause-specific"}


def test_registry_path_gets_gray_test_too() -> None:
    """Courses with dates whose durations are the hand-made times (active ones censored at the extract date)."""
    extract = pd.Timestamp("2021-12-31")
    days = pd.to_timedelta(HAND["t"], unit="D")
    active = np.array(HAND["s"]) == 0
    start = np.where(active, extract - days, pd.Timestamp("2021-01-01"))
    c = pd.DataFrame(
        {
            "start_date": pd.to_datetime(start),
            "end_date": pd.to_datetime(np.where(active, pd.NaT, pd.to_datetime(start) + days)),
            "ending_type": pd.Series(HAND["s"]).map({0: "active", 1: "interrupted", 2: "mutual_agreement"}),
            "arm": HAND["g"],
        }
    )
    res = gray_test(c, by="arm", cause=["dropout", "mutual_agreement"], extract_date=extract)
    table = res.table.set_index("cause")
    assert table.loc["dropout", "statistic"] == pytest.approx(R_HAND[0, 1][0], rel=REL)
    assert table.loc["mutual_agreement", "p_value"] == pytest.approx(R_HAND[0, 2][1], rel=REL)
    assert "dropout" in res.definition.details


def test_gray_test_refuses_one_group_and_unknown_cause() -> None:
    tte = from_frame(pd.DataFrame({"t": [1, 2, 3], "s": [1, 0, 1], "g": ["a"] * 3}), time="t", event="s")
    with pytest.raises(AnalysisError, match="two groups"):
        gray_test(tte, by="g")
    with pytest.raises(AnalysisError, match="not one of the causes"):
        gray_test(tte, by="g", cause="nope")
    with pytest.raises(AnalysisError, match="by="):
        gray_test(tte)


#: R 4.2.2 Patched, survival 3.5.3, cmprsk 2.2.11, on survival::mgus2 written to tests/data/mgus2_competing.csv
#: (``m$etime <- ifelse(m$pstat == 0, m$futime, m$ptime); m$event <- ifelse(m$pstat == 0, 2 * m$death, 1)``;
#: columns id, age, sex, etime, event; event 1 progression to plasma-cell malignancy, 2 death):
#: ``r <- cuminc(etime, event, sex)``; ``$Tests``; ``cuminc(etime, event, agegr)$Tests`` with
#: ``agegr <- cut(age, c(0, 60, 70, 80, 200), right = FALSE)``; ``cuminc(etime, event, sex, strata = agegr)$Tests``;
#: ``timepoints(r, c(120, 240))$est``.
MGUS = Path(__file__).parent / "data" / "mgus2_competing.csv"
R_MGUS_SEX = {
    "pcm": (1.1945078250755148, 0.27442215678800419010),
    "death": (11.6512590121277384, 0.00064159097640792417),
}
R_MGUS_AGE = {
    "pcm": (9.410400693492047, 0.024303900812622348),
    "death": (307.515597799701823, None),
}  # R: pv 0
R_MGUS_SEX_STRATA = {"pcm": (1.8653789262729978, 1.7200527654815945e-01),
                     "death": (27.0851683726422969, 1.9468591461180296e-07)}  # fmt: skip
R_MGUS_CIF = {("F", "pcm"): (0.073885664375926224, 0.104940674186136992),
              ("M", "pcm"): (0.055310240648157052, 0.095650755030977475),
              ("F", "death"): (0.480490045774695340, 0.695307803031983362),
              ("M", "death"): (0.575178488879491301, 0.748127889265735257)}  # fmt: skip


def test_mgus2_matches_cmprsk() -> None:
    m = pd.read_csv(MGUS)
    m["agegr"] = pd.cut(m["age"], [0, 60, 70, 80, 200], right=False).astype(str)
    tte = from_frame(m, time="etime", event="event", causes={1: "pcm", 2: "death"}, time_unit="months")
    for by, strata, ref in [
        ("sex", None, R_MGUS_SEX),
        ("agegr", None, R_MGUS_AGE),
        ("sex", "agegr", R_MGUS_SEX_STRATA),
    ]:
        table = gray_test(tte, by=by, strata=strata, cause=["pcm", "death"]).table.set_index("cause")
        for cause, (stat, p) in ref.items():
            assert table.loc[cause, "statistic"] == pytest.approx(stat, rel=REL)
            if p is not None:
                assert table.loc[cause, "p_value"] == pytest.approx(p, rel=REL)
    curves = cumulative_incidence(tte, by="sex", protect=False).table
    for (sex, cause), values in R_MGUS_CIF.items():
        c = curves.loc[(curves["group"] == sex) & (curves["cause"] == cause)]
        for at, value in zip((120, 240), values, strict=True):
            assert c.loc[c["time"] <= at, "estimate"].iloc[-1] == pytest.approx(value, rel=REL)
