"""SPC: Anhøj's run rules and the 3-sigma rule on hand-made series, limits per phase after a change point."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kvarus_research.errors import AnalysisError
from kvarus_research.indicators.plots import p_chart
from kvarus_research.indicators.spc import (
    anhoej_thresholds,
    long_run_mask,
    p_chart_limits,
    phases,
    run_rules,
    signal_table,
)

matplotlib.use("Agg")


def _series(x: list[int], n: list[int] | int = 100, change_points: tuple = ()) -> pd.DataFrame:
    n = [n] * len(x) if isinstance(n, int) else n
    periods = [f"P{i:02d}" for i in range(1, len(x) + 1)]
    t = pd.DataFrame({"period": periods, "numerator": x, "denominator": n})
    t["phase"] = phases(t["period"], change_points)
    t["proportion"] = t["numerator"] / t["denominator"]
    return pd.concat([t, p_chart_limits(t["numerator"], t["denominator"], t["phase"])], axis=1)


@pytest.mark.parametrize("n", list(range(2, 61)) + [100, 250])
def test_anhoej_thresholds_equal_the_formulas_with_scipy(n: int) -> None:
    longest, crossings = anhoej_thresholds(n)
    assert longest == round(math.log2(n) + 3)
    assert crossings == int(stats.binom.ppf(0.05, n - 1, 0.5))


def test_anhoej_thresholds_from_the_published_table() -> None:
    # Anhøj & Olesen 2014, table 1: n = 10 -> 6 / 2, n = 20 -> 7 / 6, n = 24 -> 8 / 8, n = 30 -> 8 / 10
    assert [anhoej_thresholds(n) for n in (10, 20, 24, 30)] == [(6, 2), (7, 6), (8, 8), (8, 10)]


def test_a_shift_is_caught_by_the_run_rules_not_by_three_sigma() -> None:
    # 20 periods of n = 100: ten at 20 %, ten at 30 %; centre 0.25, limits 0.25 ± 3·√(0.1875/100) = 0.120 - 0.380
    t = _series([20] * 10 + [30] * 10)
    assert t["centre"].iloc[0] == pytest.approx(0.25)
    assert t["ucl"].iloc[0] == pytest.approx(0.25 + 3 * math.sqrt(0.25 * 0.75 / 100))
    assert not (t["signal"] > 0).any()
    r = run_rules(t).iloc[0]
    # two runs of 10; round(log2(20) + 3) = 7; 1 crossing < qbinom(0.05, 19, 0.5) = 6
    assert (r["n_useful"], r["longest_run"], r["longest_run_max"], r["crossings"], r["crossings_min"]) == (
        20, 10, 7, 1, 6,
    )  # fmt: skip
    assert r["run_signal"] and r["crossing_signal"] and r["sigma_signals"] == ""
    sig = signal_table(t)
    # both runs are longer than 7: the marked periods are all twenty
    assert sig[["rule", "periods", "value", "limit"]].values.tolist() == [
        ["longest run", "P01-P20", 10.0, 7.0],
        ["crossings", "P01-P20", 1.0, 6.0],
    ]
    assert long_run_mask(t).all()


def test_random_looking_series_has_no_signal() -> None:
    # alternating 18/22 of 100: centre 0.2, every point crosses (crossings 11 of 12 useful); longest run 1
    t = _series([18, 22] * 6)
    r = run_rules(t).iloc[0]
    assert (r["longest_run"], r["crossings"]) == (1, 11)
    assert not r["run_signal"] and not r["crossing_signal"]
    assert signal_table(t).empty


def test_one_point_outside_three_sigma() -> None:
    # of 100 each: six at 18, five at 28, one at 50, alternating about the centre (no run signal)
    x = [18, 28, 18, 28, 18, 50, 18, 28, 18, 28, 18, 28]
    t = _series(x)
    centre = (6 * 18 + 5 * 28 + 50) / 1200  # 298 / 1200 = 0.24833
    assert t["centre"].iloc[0] == pytest.approx(centre) and centre == pytest.approx(0.248333, abs=1e-6)
    ucl = centre + 3 * math.sqrt(centre * (1 - centre) / 100)  # 0.24833 + 3 * 0.043204 = 0.37795
    assert t["ucl"].iloc[5] == pytest.approx(ucl) and ucl == pytest.approx(0.37795, abs=1e-5)
    assert (t["signal"] > 0).tolist() == [False] * 5 + [True] + [False] * 6
    sig = signal_table(t)
    assert sig[["rule", "periods"]].values.tolist() == [["3-sigma", "P06"]]
    assert sig["value"].iloc[0] == 0.5 and sig["limit"].iloc[0] == pytest.approx(ucl)
    r = run_rules(t).iloc[0]
    assert (r["longest_run"], r["crossings"], r["sigma_signals"]) == (1, 11, "P06")


def test_limits_recomputed_after_a_change_point() -> None:
    # phase 1: 18/22 alternating (centre 0.2), phase 2 from P11: 28/32 (centre 0.3)
    x = [18, 22] * 5 + [28, 32] * 5
    t = _series(x, change_points=("P11",))
    assert t["phase"].tolist() == [1] * 10 + [2] * 10
    assert t["centre"].iloc[0] == pytest.approx(0.2) and t["centre"].iloc[-1] == pytest.approx(0.3)
    assert t["ucl"].iloc[0] == pytest.approx(0.2 + 3 * math.sqrt(0.16 / 100))  # 0.32
    assert t["ucl"].iloc[-1] == pytest.approx(0.3 + 3 * math.sqrt(0.21 / 100))  # 0.4375
    rr = run_rules(t)
    assert rr["phase"].tolist() == [1, 2] and rr["first"].tolist() == ["P01", "P11"]
    assert not rr["run_signal"].any() and not rr["crossing_signal"].any()  # 9 crossings of 10, min 2
    # without the change point the shift is a signal: centre 0.25, all of phase 1 below, all of phase 2 above
    r = run_rules(_series(x)).iloc[0]
    assert r["longest_run"] == 10 and r["run_signal"] and r["crossings"] == 1 and r["crossing_signal"]
    with pytest.raises(AnalysisError, match="change point"):
        phases(["2021Q1"], ["2022Q1"])


def test_points_on_the_centre_line_and_hidden_periods_are_skipped() -> None:
    # centre 0.2 set by hand; four above, one on the line, four above: one run of 8 useful periods
    p = [0.3] * 4 + [0.2] + [0.3] * 4 + [np.nan] + [0.1]
    t = pd.DataFrame({"period": range(11), "proportion": p, "centre": 0.2, "signal": 0.0})
    r = run_rules(t).iloc[0]
    # 9 useful (the point on the line and the hidden one left out): run of 8 > round(log2(9) + 3) = 6
    assert (r["n_useful"], r["longest_run"], r["longest_run_max"], r["crossings"]) == (9, 8, 6, 1)
    assert long_run_mask(t).tolist() == [True] * 4 + [False] + [True] * 4 + [False, False]


def test_p_chart_marks_signals_and_change_points() -> None:
    t = _series([20] * 10 + [30] * 10)
    ax = p_chart(t)
    rings = [c for c in ax.collections if c.get_label() == "run longer than Anhøj's limit"]
    assert len(rings) == 1 and len(rings[0].get_offsets()) == 20
    assert any(line.get_label() == "centre line, too few crossings" for line in ax.lines)
    t = _series([18, 22] * 5 + [28, 32] * 5, change_points=("P11",))
    ax = p_chart(t)
    assert not [c for c in ax.collections if c.get_label() == "run longer than Anhøj's limit"]
    vlines = [ln for ln in ax.lines if list(ln.get_xdata()) == [9.5, 9.5]]
    assert len(vlines) == 1  # the change point, between P10 and P11


def test_indicator_spc_with_change_point_and_protected_centre() -> None:
    import kvarus_research as kr
    from kvarus_research.indicators import MUTUAL_AGREEMENT

    res = MUTUAL_AGREEMENT.compute(kr.synthetic.generate(n_courses=600, seed=2))
    raw = res.spc_table(period="quarter")
    cp = raw["period"].iloc[len(raw) // 2]
    t = res.spc_table(period="quarter", change_points=(cp,))
    later = t["phase"] == 2
    assert t.loc[later, "centre"].iloc[0] == pytest.approx(
        t.loc[later, "numerator"].sum() / t.loc[later, "denominator"].sum()
    )
    # the protected side table's centre line is computed from the published periods only, per phase
    unit = res._flags["unit_id"].iloc[0]
    own = res.spc_table(unit, "quarter")["period"]
    ucp = own.iloc[len(own) // 2]
    side = res.protected().sides[("spc", unit, "quarter", (ucp,))].table
    assert side["phase"].tolist() == [1] * (len(own) // 2) + [2] * (len(own) - len(own) // 2)
    for _, part in side.groupby("phase"):
        shown = part.dropna(subset=["numerator", "denominator"])
        if len(shown):
            expect = shown["numerator"].astype(float).sum() / shown["denominator"].astype(float).sum()
            assert part["centre"].iloc[0] == pytest.approx(expect)
    assert list(res.spc_signals(period="quarter", change_points=(cp,)).columns) == [
        "phase", "rule", "periods", "value", "limit",
    ]  # fmt: skip


def test_protected_chart_does_not_give_back_a_hidden_numerator() -> None:
    from kvarus_research.indicators.result import _protect_spc

    # 3 of 12 is hidden (1-4); a centre over all periods, 25/52, with the denominators shown would give back
    # 25 − 10 − 12 = 3. The protected centre is that of the published periods: 22/40 = 0.55.
    t = _series([3, 10, 12], [12, 20, 20])
    t["signal"] = t["signal"] > 0
    assert t["centre"].iloc[0] == pytest.approx(25 / 52)
    side = _protect_spc(t, "norway").table
    assert pd.isna(side["numerator"].iloc[0]) and pd.isna(side["proportion"].iloc[0])
    assert pd.isna(side["signal"].iloc[0]) and side["denominator"].iloc[0] == 12
    assert side["centre"].tolist() == pytest.approx([0.55] * 3)
    assert side["ucl"].iloc[0] == pytest.approx(min(1.0, 0.55 + 3 * math.sqrt(0.55 * 0.45 / 12)))
