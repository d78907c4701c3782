"""Kaplan–Meier and Aalen–Johansen: worked by hand on a tiny data set, then cross-checked against lifelines
and statsmodels, and the disclosure-safe (coarsened, rounded) tables checked against their own counts."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import AalenJohansenFitter, KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from lifelines.utils import restricted_mean_survival_time
from scipy.stats import chi2 as chi2_dist
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

import kvarus_research as kr
from kvarus_research.retention import cumulative_incidence, kaplan_meier, time_to_event
from kvarus_research.retention.estimators import (
    aalen_johansen_from_counts,
    coarsened_counts,
    event_counts,
    round_to_base,
)

START = pd.Timestamp("2021-01-01")


def tiny() -> pd.DataFrame:
    """Eight courses, days from start: ties at day 2 (two causes + a censoring), censoring at 5 and 8.

    =====  ====  ================
    course days  ending
    =====  ====  ================
    1      2     interrupted (dropout)
    2      2     mutual agreement
    3      2     active (censored)
    4      4     interrupted
    5      5     active
    6, 7   6     mutual agreement
    8      8     active
    =====  ====  ================
    Active courses are censored at the extract date, so their start is moved back to make the durations.
    """
    days = [2, 2, 2, 4, 5, 6, 6, 8]
    ending = [
        "interrupted",
        "mutual_agreement",
        "active",
        "interrupted",
        "active",
        "mutual_agreement",
        "mutual_agreement",
        "active",
    ]
    extract = START + pd.Timedelta(days=100)
    start = [
        extract - pd.Timedelta(days=d) if e == "active" else START for d, e in zip(days, ending, strict=True)
    ]
    end = [
        pd.NaT if e == "active" else START + pd.Timedelta(days=d) for d, e in zip(days, ending, strict=True)
    ]
    return pd.DataFrame(
        {
            "course_id": [f"c{i}" for i in range(1, 9)],
            "start_date": start,
            "end_date": end,
            "ending_type": ending,
            "grp": list("aabbabab"),
        }
    )


EXTRACT = START + pd.Timedelta(days=100)


def test_kaplan_meier_by_hand() -> None:
    km = kaplan_meier(tiny(), extract_date=EXTRACT, protect=False, horizon=7)
    t = km.table
    # Events (any ending) at 2, 4, 6; censoring after events at tied times (convention).
    # t=2: n=8, d=2 -> S = 1 - 2/8 = 0.75
    # t=4: n=5 (3 left at 2), d=1 -> S = 0.75 * 4/5 = 0.6
    # t=6: n=3 (one censored at 5), d=2 -> S = 0.6 * 1/3 = 0.2
    assert t["time"].tolist() == [2.0, 4.0, 6.0]
    assert t["n_at_risk"].tolist() == [8.0, 5.0, 3.0]
    assert t["estimate"].tolist() == pytest.approx([0.75, 0.6, 0.2])
    s = km.summary.iloc[0]
    assert s["median"] == 6.0  # first time S <= 0.5
    # RMST to 7 = 2*1 + 2*0.75 + 2*0.6 + 1*0.2 = 4.9
    # Var = A(2)^2 2/(8*6) + A(4)^2 1/(5*4) + A(6)^2 2/(3*1) with A(2) = 2.9, A(4) = 1.4, A(6) = 0.2
    #     = 0.350417 + 0.098 + 0.026667 = 0.475083 -> SE 0.689263
    assert s["rmst"] == pytest.approx(4.9)
    assert (s["rmst"] - s["rmst_ci_lower"]) / 1.959964 == pytest.approx(0.689263, abs=1e-5)
    # Greenwood at t=6: S^2 * (2/48 + 1/20 + 2/3) = 0.04 * 0.758333 -> log(-log) CI as lifelines
    kmf = KaplanMeierFitter().fit(tiny_durations(), tiny_events() > 0)
    ci = kmf.confidence_interval_.loc[[2.0, 4.0, 6.0]].to_numpy()
    np.testing.assert_allclose(t[["ci_lower", "ci_upper"]].to_numpy(), ci, rtol=1e-10)
    assert restricted_mean_survival_time(kmf, t=7) == pytest.approx(4.9)


def tiny_durations() -> np.ndarray:
    return np.array([2, 2, 2, 4, 5, 6, 6, 8], dtype=float)


def tiny_events() -> np.ndarray:
    return np.array([1, 2, 0, 1, 0, 2, 2, 0])  # 1 dropout, 2 mutual agreement, 0 censored


def test_aalen_johansen_by_hand() -> None:
    ci = cumulative_incidence(tiny(), extract_date=EXTRACT, protect=False, horizon=7)
    t = ci.table.set_index(["cause", "time"])
    # F_dropout: t=2: S(0)=1 * 1/8 = 0.125; t=4: + S(2) * 1/5 = 0.125 + 0.75*0.2 = 0.275; t=6: + 0 = 0.275
    # F_mutual:  t=2: 1 * 1/8 = 0.125;       t=4: 0.125;                              t=6: + S(4) * 2/3 = 0.525
    assert t.loc["dropout", "estimate"].tolist() == pytest.approx([0.125, 0.275, 0.275])
    assert t.loc["mutual_agreement", "estimate"].tolist() == pytest.approx([0.125, 0.125, 0.525])
    # KM + both incidences = 1 at t=6: 0.2 + 0.275 + 0.525
    assert 0.2 + 0.275 + 0.525 == pytest.approx(1.0)
    # Variance of F_dropout(4) (Collett): j=1 (t=2, n=8, d=2, d_c=1), j=2 (t=4, n=5, d=1, d_c=1)
    #  (0.275-0.125)^2 * 2/(8*6) + 1^2 * 1*7/8^3 - 2*(0.275-0.125)*1*1/8^2     = 0.0009375 + 0.013671875 - 0.0046875
    #  + 0 + 0.75^2 * 1*4/5^3 - 0                                               = 0.018
    #  = 0.027921875
    n = np.array([8.0, 5.0, 3.0])
    (f, var, lo, hi), _ = aalen_johansen_from_counts(n, [np.array([1.0, 1, 0]), np.array([1.0, 0, 2])])
    assert var[1] == pytest.approx(0.027921875)
    assert var[0] == pytest.approx(7 / 512)
    assert ci.summary.set_index("cause").loc["dropout", "cumulative_incidence"] == pytest.approx(0.275)
    assert ci.summary.set_index("cause").loc["transferred", "cumulative_incidence"] == 0.0


def test_aalen_johansen_matches_lifelines_without_ties() -> None:
    rng = np.random.default_rng(3)
    n = 300
    dur = rng.exponential(100, n)
    code = rng.choice([0, 1, 2], size=n, p=[0.3, 0.4, 0.3])
    counts = event_counts(dur, code, 2)
    counts = counts[(counts["d_1"] + counts["d_2"]) > 0]
    ours = aalen_johansen_from_counts(
        counts["n_at_risk"].to_numpy(), [counts["d_1"].to_numpy(), counts["d_2"].to_numpy()]
    )
    for k in (1, 2):
        aj = AalenJohansenFitter(calculate_variance=True).fit(dur, code, event_of_interest=k)
        ref = aj.cumulative_density_.iloc[:, 0].reindex(counts["time"]).to_numpy()
        np.testing.assert_allclose(ours[k - 1][0], ref, rtol=1e-10)
        ev_times = aj.event_table.index.to_numpy()[1:]
        ref_var = pd.Series(aj.variance_.to_numpy()[1:], index=ev_times).reindex(counts["time"]).to_numpy()
        np.testing.assert_allclose(ours[k - 1][1], ref_var, rtol=1e-7, atol=1e-12)
        ref_ci = aj.confidence_interval_.iloc[1:].set_axis(ev_times).reindex(counts["time"])
        # lifelines 0.30 names its two AJ bound columns the wrong way round (its "upper" is exp(-exp(theta + z se)),
        # the smaller one), so compare with the smaller / larger of the two.
        # Before the first event of the cause lifelines gives NaN; we give the degenerate interval [0, 0].
        seen = ours[k - 1][0] > 0
        assert np.all(ours[k - 1][2][~seen] == 0) and np.all(ours[k - 1][3][~seen] == 0)
        np.testing.assert_allclose(ours[k - 1][2][seen], ref_ci.min(axis=1)[seen], rtol=1e-7)
        np.testing.assert_allclose(ours[k - 1][3][seen], ref_ci.max(axis=1)[seen], rtol=1e-7)


@pytest.fixture(scope="module")
def synth() -> kr.Registry:
    return kr.synthetic.generate(n_courses=6000, seed=11)


def test_km_and_aj_on_tied_days_match_lifelines_and_statsmodels(synth: kr.Registry) -> None:
    tte = time_to_event(synth)
    t = tte.table
    km = kaplan_meier(tte, protect=False)
    kmf = KaplanMeierFitter().fit(t["duration"], t["event"])
    ref = kmf.survival_function_.iloc[:, 0].reindex(km.table["time"]).to_numpy()
    np.testing.assert_allclose(km.table["estimate"], ref, rtol=1e-12)
    np.testing.assert_allclose(
        km.table[["ci_lower", "ci_upper"]],
        kmf.confidence_interval_.reindex(km.table["time"]).to_numpy(),
        rtol=1e-9,
    )
    sm = SurvfuncRight(t["duration"].to_numpy(), t["event"].to_numpy())
    np.testing.assert_allclose(km.table["estimate"], sm.surv_prob, rtol=1e-12)
    # Tied event times: lifelines jitters them (by up to ±0.0001). Breaking ties between events leaves the AJ
    # estimate at the end of the day unchanged (the product-limit steps telescope), but an event jittered past a
    # course censored on the same day drops that course from the risk set: differences stay below 1e-4 relative.
    ci = cumulative_incidence(tte, protect=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aj = AalenJohansenFitter(seed=1, calculate_variance=False).fit(
            t["duration"], t["cause_code"], event_of_interest=1
        )
    cif = aj.cumulative_density_.iloc[:, 0]
    ours = ci.table[ci.table["cause"] == "dropout"]
    at = np.searchsorted(cif.index.to_numpy(), ours["time"].to_numpy() + 0.5, side="right") - 1
    np.testing.assert_allclose(ours["estimate"], cif.to_numpy()[at], rtol=1e-4)
    # median with CI equal to lifelines
    s = km.summary.iloc[0]
    assert s["median"] == kmf.median_survival_time_


def test_logrank_matches_lifelines_and_statsmodels(synth: kr.Registry) -> None:
    tte = time_to_event(synth)
    km = kaplan_meier(tte, by="region", protect=False)
    t = tte.table
    ref = multivariate_logrank_test(t["duration"], t["region"], t["event"])
    row = km.tests.iloc[0]
    assert row["statistic"] == pytest.approx(ref.test_statistic)
    assert row["df"] == 3
    chi2, p = survdiff(t["duration"].to_numpy(), t["event"].to_numpy(), t["region"].to_numpy())
    assert row["statistic"] == pytest.approx(chi2, rel=1e-6)
    # statsmodels' p (1 - cdf) underflows to 0 here; the chi-square tail from scipy does not
    assert row["p_value"] == pytest.approx(chi2_dist.sf(chi2, 3), rel=1e-6) and p < 1e-10
    ci = cumulative_incidence(tte, by="setting")
    cs = ci.tests.loc[ci.tests["test"].str.startswith("cause-specific")]
    drop = cs.set_index("cause").loc["dropout"]
    ref = multivariate_logrank_test(t["duration"], t["setting"], (t["cause"] == "dropout").astype(int))
    assert drop["statistic"] == pytest.approx(ref.test_statistic)


def test_protected_table_is_coarse_rounded_and_computed_from_itself(synth: kr.Registry) -> None:
    tte = time_to_event(synth)
    ci = cumulative_incidence(tte, by="setting", step=30, round_to=5, min_at_risk=10)
    t = ci.table
    assert (t["time"] % 30 == 0).all()
    for col in ("n_at_risk", "cum_events"):
        assert (t[col] % 5 == 0).all()
    assert (t["n_at_risk"] >= 10).all()
    assert (t["n_events"] >= 0).all()
    # The curve is the AJ estimator applied to the rounded counts in the table itself:
    for _group, sub in t.groupby("group"):
        wide = sub.pivot(index="time", columns="cause", values="n_events")
        n = sub.drop_duplicates("time").set_index("time")["n_at_risk"]
        causes = list(dict.fromkeys(sub["cause"]))
        again = aalen_johansen_from_counts(n.to_numpy(), [wide[c].to_numpy() for c in causes])
        for c, (f, *_rest) in zip(causes, again, strict=True):
            np.testing.assert_allclose(sub.loc[sub["cause"] == c, "estimate"], f, rtol=1e-12)
    # and close to lifelines on the exact data (rounding error only): within 0.01 at each grid point
    drop = t[(t["group"] == "outpatient") & (t["cause"] == "dropout")]
    sub = tte.table[tte.table["setting"] == "outpatient"]
    exact = cumulative_incidence(
        sub.reset_index(drop=True), extract_date=tte.extract_date, protect=False, step=30
    )
    ex = exact.table[exact.table["cause"] == "dropout"].set_index("time")["estimate"]
    at = ex.reindex(ex.index.union(drop["time"])).ffill().reindex(drop["time"]).to_numpy()
    assert np.max(np.abs(drop["estimate"].to_numpy() - at)) < 0.01
    assert "rounded to 5" in ci.definition.details["disclosure control"]


def test_coarsened_without_rounding_equals_lifelines_on_grid_times() -> None:
    rng = np.random.default_rng(7)
    dur = rng.integers(0, 400, 500).astype(float)
    code = rng.choice([0, 1, 2], size=500)
    c = coarsened_counts(dur, code, 2, step=30, round_to=1, min_at_risk=1)
    grid = np.ceil(dur / 30) * 30
    kmf = KaplanMeierFitter().fit(grid, code > 0)
    from kvarus_research.retention.estimators import kaplan_meier_from_counts

    s, *_ = kaplan_meier_from_counts(c["n_at_risk"], c["d_1"] + c["d_2"])
    np.testing.assert_allclose(s, kmf.survival_function_.iloc[:, 0].reindex(c["time"]), rtol=1e-12)


@given(
    st.lists(st.tuples(st.integers(0, 500), st.integers(0, 2)), min_size=1, max_size=200),
    st.sampled_from([1, 3, 5, 10]),
    st.integers(1, 20),
)
@settings(max_examples=60, deadline=None)
def test_coarsened_counts_never_show_small_or_unrounded_counts(
    rows: list, base: int, min_at_risk: int
) -> None:
    dur = np.array([r[0] for r in rows], dtype=float)
    code = np.array([r[1] for r in rows])
    c = coarsened_counts(dur, code, 2, step=30, round_to=base, min_at_risk=min_at_risk)
    grid = np.ceil(dur / 30) * 30
    for row in c.itertuples():
        true_at_risk = int((grid >= row.time).sum())
        assert true_at_risk >= min_at_risk  # the tail with few at risk is cut
        assert row.n_at_risk % base == 0 and abs(row.n_at_risk - true_at_risk) <= base / 2
    for k in (1, 2):
        cum = np.cumsum(c[f"d_{k}"].to_numpy())
        assert np.all(cum % base == 0) and np.all(c[f"d_{k}"] >= 0)
        true_cum = np.array([((grid <= t) & (code == k)).sum() for t in c["time"]])
        assert np.all(np.abs(cum - true_cum) <= base / 2)
    assert np.all(round_to_base(np.arange(50), base) % base == 0)


def test_vectorised_logrank_equals_lifelines() -> None:
    from kvarus_research.retention.estimators import logrank_from_events

    rng = np.random.default_rng(5)
    n = 3000
    grp = rng.integers(0, 4, n)
    dur = np.ceil(rng.exponential(100 * (1 + 0.1 * grp)))  # integer days: many ties
    ev = rng.random(n) < 0.7
    stat, df = logrank_from_events(dur, ev, grp)
    ref = multivariate_logrank_test(dur, grp, ev)
    assert df == 3 and stat == pytest.approx(ref.test_statistic, rel=1e-9)
    # by hand, two groups, times 1..4 alternating groups, all events:
    # t=1: n=(2,2) d=(1,0) E1=0.5 V=1*3/3*(2/4)(2/4)=0.25; t=2: n=(1,2) d=(0,1) E1=1/3 V=(1/3)(2/3)=2/9;
    # t=3: n=(1,1) d=(1,0) E1=0.5 V=0.25; t=4: n=(0,1): E1=0, V=0. O1-E1 = 2 - 4/3 = 2/3, V = 13/18
    # statistic = (2/3)^2 / (13/18) = 8/13
    s2, _ = logrank_from_events(np.array([1.0, 2, 3, 4]), np.ones(4), np.array([0, 1, 0, 1]))
    assert s2 == pytest.approx(8 / 13)


def test_curve_coarsening_comes_from_the_disclosure_rules() -> None:
    # 40 courses from 1 Jan 2021; course k ends on day 3k + 1 (k < 30, 'interrupted'), 10 still active.
    import pandas as pd

    from kvarus_research.privacy import DisclosureRules
    from kvarus_research.retention import kaplan_meier

    start = pd.Timestamp("2021-01-01")
    ends = [start + pd.Timedelta(days=3 * k + 1) for k in range(30)] + [None] * 10
    c = pd.DataFrame({"start_date": [start] * 40, "end_date": pd.to_datetime(ends),
                      "ending_type": ["interrupted"] * 30 + ["active"] * 10})  # fmt: skip
    rules = DisclosureRules(curve_step=60, curve_round_to=10, curve_min_at_risk=10)
    km = kaplan_meier(c, extract_date="2021-12-31", rules=rules)
    t = km.table
    # grid of 60 days: days 1..88 end 30 courses; by day 60, 20 ended (3k + 1 <= 60: k = 0..19)
    # (the 10 active courses are censored at day 364, moved up to 420; 10 at risk is not below the minimum of 10)
    assert t["time"].tolist() == [60.0, 120.0, 420.0]
    assert t["n_at_risk"].tolist() == [40, 20, 10]
    assert t["cum_events"].tolist() == [20, 30, 30]
    assert t["estimate"].round(6).tolist() == [0.5, 0.25, 0.25]  # 1 - 20/40; 0.5 * (1 - 10/20)
    cut = kaplan_meier(
        c, extract_date="2021-12-31", rules=DisclosureRules(curve_step=60, curve_min_at_risk=11)
    )
    assert cut.table["time"].tolist() == [60.0, 120.0]  # the tail with 10 at risk cut under a minimum of 11
    same = kaplan_meier(c, extract_date="2021-12-31", step=60, round_to=10, min_at_risk=10)
    assert same.table.equals(t)
