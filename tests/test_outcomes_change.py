"""Paired change: hand-computed numbers on four courses, cross-checks against scipy, effect-size SEs by
simulation, groups, and coverage of the synthetic registry's true change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kvarus_research.errors import AnalysisError
from kvarus_research.outcomes import change
from kvarus_research.outcomes.change import paired_stats


@pytest.fixture(scope="module")
def synthetic_timepoints():
    import kvarus_research as kr
    from kvarus_research.cohort import align_timepoints

    reg = kr.synthetic.generate(n_courses=20_000, seed=7)
    # baseline="registration": the truth's baseline is the registered baseline, not a stand-in measurement point
    return reg, align_timepoints(reg, baseline="registration")


def tiny_long() -> pd.DataFrame:
    # courses 1-4 have both values; course 5 has baseline only, course 6 ending only
    rows = [
        (1, "baseline", 20, 1),
        (1, "ending", 10, 1),
        (2, "baseline", 15, 2),
        (2, "ending", 12, 2),
        (3, "baseline", 30, 1),
        (3, "ending", 15, 1),
        (4, "baseline", 10, 2),
        (4, "ending", 10, 2),
        (5, "baseline", 25, 1),
        (6, "ending", 5, 2),
    ]
    df = pd.DataFrame(rows, columns=["course_id", "timepoint", "dager_rus_30", "hovedrusmiddel"])
    df["livssituasjon"] = 10 - df["dager_rus_30"] / 5  # higher is better; change = -(days change)/5
    return df


def test_change_by_hand() -> None:
    res = change(tiny_long(), "dager_rus_30", responder=5)
    row = res.table.iloc[0]
    # d = end - start = [-10, -3, -15, 0]; mean -7; deviations -3, 4, -8, 7 -> SS 138, var 46, SD 6.78233
    assert (row["n"], row["n_missing_start"], row["n_missing_end"]) == (4, 1, 1)
    assert row["mean_change"] == pytest.approx(-7.0)
    assert row["sd_change"] == pytest.approx(np.sqrt(46))
    assert row["improvement"] == pytest.approx(7.0)  # lower is better: improvement = -change
    # t interval: -7 +- t(0.975, 3) * SD/2 = -7 +- 3.182446 * 3.391165 = (-17.7922, 3.7922)
    assert row["change_ci_low"] == pytest.approx(-17.7922, abs=1e-4)
    assert row["change_ci_high"] == pytest.approx(3.7922, abs=1e-4)
    assert (row["improvement_ci_low"], row["improvement_ci_high"]) == pytest.approx(
        (-3.7922, 17.7922), abs=1e-4
    )
    # t = -7 / 3.391165 = -2.064187
    assert row["t"] == pytest.approx(-2.064187, abs=1e-6)
    # d_z = -7 / 6.782330 = -1.032094; SE = sqrt(1/4 + 1.065218/6) = 0.653862; CI = d_z +- 1.959964 SE
    assert row["d_z"] == pytest.approx(-1.032094, abs=1e-6)
    assert row["d_z_ci_low"] == pytest.approx(-1.032094 - 1.959964 * 0.653862, abs=1e-5)
    # var(start) = 218.75/3 = 72.9167, var(end) = 16.75/3 = 5.5833; s = sqrt(39.25) = 6.264982
    # d_av = -7/6.264982 = -1.117322; J = 1 - 3/11 = 0.727273; g_av = -0.812598
    assert row["g_av"] == pytest.approx(-0.812598, abs=1e-6)
    # percent change of the means: 100 * (11.75 / 18.75 - 1) = -37.3333 %
    assert row["percent_change"] == pytest.approx(-37.3333, abs=1e-4)
    # responders (improvement >= 5 points): courses 1 and 3 -> 2/4, Wilson 95 % CI (0.1500, 0.8500)
    assert row["n_responders"] == 2 and row["responder_share"] == pytest.approx(0.5)
    assert (row["responder_ci_low"], row["responder_ci_high"]) == pytest.approx(
        (0.150039, 0.849961), abs=1e-6
    )
    # Wilcoxon: zero dropped, ranks of |-10|, |-3|, |-15| = 2, 1, 3 all negative -> W = 0, exact p = 2/8
    assert row["wilcoxon_w"] == 0 and row["p_wilcoxon"] == pytest.approx(0.25)


def test_change_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    x1 = rng.normal(20, 6, 80).round()
    x2 = (x1 - rng.normal(3, 5, 80)).round()
    s = paired_stats(x1, x2, sign=-1)
    tt = stats.ttest_rel(x2, x1)
    w = stats.wilcoxon(x2 - x1)
    assert s["t"] == pytest.approx(tt.statistic) and s["p_t"] == pytest.approx(tt.pvalue)
    assert s["wilcoxon_w"] == pytest.approx(w.statistic) and s["p_wilcoxon"] == pytest.approx(w.pvalue)
    ci = tt.confidence_interval(0.95)
    assert (s["change_ci_low"], s["change_ci_high"]) == pytest.approx((ci.low, ci.high))


def test_percent_responders_and_direction() -> None:
    res = change(tiny_long(), ["dager_rus_30", "livssituasjon"], responder={"percent": 50})
    days, life = res.table.iloc[0], res.table.iloc[1]
    # percent improvement = 100 * 10/20, 3/15, 15/30, 0/10 = 50, 20, 50, 0 -> 2 of 4 reach 50 %
    assert days["n_responders"] == 2 and days["n_responder_base"] == 4
    # livssituasjon = 10 - days/5: change = +7/5 = 1.4, higher is better so improvement = +1.4
    assert life["mean_change"] == pytest.approx(1.4) and life["improvement"] == pytest.approx(1.4)
    assert life["direction"] == "higher" and life["label"] == "Self-rated life situation (0-10)"
    # the standardised effect sizes do not depend on the linear rescaling, only their sign flips
    assert life["d_z"] == pytest.approx(-days["d_z"])


def test_effect_size_standard_errors_by_simulation() -> None:
    # The delta-method SEs of d_z and d_av should match the spread of the estimates over many samples.
    rng = np.random.default_rng(11)
    n, reps, rho = 60, 3000, 0.5
    cov = [[4.0, rho * 2 * 3], [rho * 2 * 3, 9.0]]
    xy = rng.multivariate_normal([10, 8], cov, size=(reps, n))
    x1, x2 = xy[..., 0], xy[..., 1]
    d = x2 - x1
    dz = d.mean(1) / d.std(1, ddof=1)
    dav = d.mean(1) / np.sqrt((x1.var(1, ddof=1) + x2.var(1, ddof=1)) / 2)
    one = paired_stats(x1[0], x2[0], sign=1)
    j = 1 - 3 / (4 * (n - 1) - 1)
    se_dz = (one["d_z_ci_high"] - one["d_z_ci_low"]) / (2 * 1.959964)
    se_dav = (one["g_av_ci_high"] - one["g_av_ci_low"]) / (2 * 1.959964) / j
    assert se_dz == pytest.approx(dz.std(), rel=0.1)
    assert se_dav == pytest.approx(dav.std(), rel=0.1)


def test_by_group_equals_subset() -> None:
    long = tiny_long()
    res = change(long, "dager_rus_30", by="hovedrusmiddel")
    tab = res.table.set_index("group")
    # alcohol (1): courses 1, 3 (and 5, baseline only): d = -10, -15 -> mean -12.5
    assert tab.loc[1, "mean_change"] == pytest.approx(-12.5) and tab.loc[1, "n_missing_end"] == 1
    assert tab.loc[1, "group_label"] == "Alcohol"
    # cannabis (2): courses 2, 4 (6 has no baseline, so no group at baseline -> "(missing)")
    assert tab.loc[2, "mean_change"] == pytest.approx(-1.5)
    assert tab.loc["(missing)", "n_missing_start"] == 1
    assert int(tab.loc[[1, 2, "(missing)"], "n"].sum()) == tab.loc["All", "n"]


def test_errors() -> None:
    with pytest.raises(AnalysisError, match="timepoint"):
        change(tiny_long(), "dager_rus_30", end="followup")
    with pytest.raises(AnalysisError, match="not an outcome"):
        change(tiny_long(), "hovedrusmiddel")
    with pytest.raises(AnalysisError, match="responder"):
        change(tiny_long(), "dager_rus_30", responder={"ratio": 2})
    one = tiny_long().query("course_id in (1, 5)")
    with pytest.raises(AnalysisError, match="need >= 2"):
        change(one, "dager_rus_30")


def test_plot_and_protect(artifacts) -> None:
    res = change(tiny_long(), ["dager_rus_30", "livssituasjon"], by="hovedrusmiddel")
    ax = res.plot()
    # the points are the protected table's improvements: rows whose n is hidden (small groups) have no point
    # and show the neutral marker instead
    prot = res.protected()
    shown = prot.table["improvement"].astype(float).to_numpy()
    xs = np.asarray(ax.lines[0].get_xdata(), dtype=float)
    np.testing.assert_allclose(xs, shown[~np.isnan(shown)])
    markers = [t for t in ax.texts if t.get_gid() == "suppressed"]
    assert len(markers) == int(prot.suppressed["n"].sum()) > 0
    assert {t.get_text() for t in markers} == {prot.rules.marker}
    ax.figure.savefig(artifacts / "outcomes_change_forest.png", bbox_inches="tight")
    assert "mean_change" in res.derived_columns and "n" in res.count_columns


@pytest.mark.slow
def test_synthetic_change_covers_truth(synthetic_timepoints) -> None:
    reg, tp = synthetic_timepoints
    outcomes = sorted(reg.truth["change"])
    res = change(tp, outcomes, start="baseline", end="ending")
    for row in res.table.itertuples():
        truth = reg.truth["change"][row.outcome]["baseline_to_ending"]
        assert row.change_ci_low <= truth <= row.change_ci_high, (row.outcome, truth)


def test_protected_export_suppresses_small_groups(tmp_path) -> None:
    # All (4), alcohol (2) and cannabis (2) have 1-4 paired courses: the counts are suppressed ("<5") and
    # every statistic computed from them goes with them; the "(missing)" group's 0 may stay
    res = change(tiny_long(), "dager_rus_30", by="hovedrusmiddel")
    prot = res.protected()
    assert prot.table["n"].iloc[:3].isna().all() and prot.table["mean_change"].isna().all()
    assert prot.table["n"].iloc[3] == 0
    assert (prot.log["reason"].str.contains("below 5")).any()
    out = res.to_csv(tmp_path / "change.csv")
    assert "-7.0" not in out.read_text()  # the overall mean change of 4 courses does not leave


def test_registry_input_is_refused_with_a_hint() -> None:
    import kvarus_research as kr

    reg = kr.synthetic.generate(n_courses=50, seed=1)
    with pytest.raises(AnalysisError, match="align_timepoints"):
        change(reg, "dager_rus_30")
    with pytest.raises(AnalysisError, match="lacks column"):
        change(pd.DataFrame({"course_id": [1]}), "dager_rus_30")


def test_protected_group_n_is_not_all_minus_the_others() -> None:
    """3 courses in group 1 and 20 in group 2: group 1's n (and its mean) is hidden, and group 2's n with it,
    else 23 - 20 = 3 (the groups add up to "All", declared as a margin); All stays shown."""
    rows = []
    for cid in range(1, 24):
        grp = 1 if cid <= 3 else 2
        rows += [(cid, "baseline", 20, grp), (cid, "ending", 20 - cid % 7, grp)]
    df = pd.DataFrame(rows, columns=["course_id", "timepoint", "dager_rus_30", "hovedrusmiddel"])
    res = change(df, "dager_rus_30", by="hovedrusmiddel")
    assert res.table.set_index("group")["n"].to_dict() == {"All": 23, 1: 3, 2: 20}
    shown = res.protected().table.set_index("group")
    assert shown["n"].isna().to_dict() == {"All": False, 1: True, 2: True}
    assert pd.isna(shown.loc[1, "mean_change"]) and shown.loc["All", "n"] == 23
    assert shown.loc[2, "group_label"] == res.table.set_index("group").loc[2, "group_label"]
