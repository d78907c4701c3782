"""Funnel limits: exact binomial limits against scipy's binomial distribution, overdispersion by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kvarus_research.errors import AnalysisError
from kvarus_research.indicators.limits import (
    estimate_overdispersion,
    exact_limits,
    funnel_limits,
    funnel_table,
)

GRID_P0 = [0.005, 0.02, 0.05, 0.2, 0.5, 0.9]
GRID_N = [1, 2, 5, 10, 20, 30, 57, 200, 1000]
GRID_LEVEL = [0.95, 0.998]


def _reference(p0: float, n: int, level: float) -> tuple[float, float]:
    """Spiegelhalter's interpolated quantiles from scipy.stats.binom (ppf and cdf), the lower on X and the upper on
    the complementary count n − X ~ Bin(n, 1 − p0)."""
    a = (1 - level) / 2

    def lower(q: float) -> float:
        r = stats.binom.ppf(a, n, q)
        c, c1 = stats.binom.cdf(r, n, q), stats.binom.cdf(r - 1, n, q)
        return (r - (c - a) / (c - c1)) / n

    return lower(p0), 1 - lower(1 - p0)


@pytest.mark.parametrize("level", GRID_LEVEL)
@pytest.mark.parametrize("p0", GRID_P0)
def test_exact_limits_equal_scipy_binomial_quantiles(p0: float, level: float) -> None:
    low, high = exact_limits(p0, GRID_N, level)
    for n, lo, hi in zip(GRID_N, low, high, strict=True):
        ref_lo, ref_hi = _reference(p0, n, level)
        assert lo == pytest.approx(max(ref_lo, 0.0), abs=1e-12), (p0, n, level)
        assert hi == pytest.approx(min(ref_hi, 1.0), abs=1e-12), (p0, n, level)
        # each limit lies within one count of scipy's quantile: (r − 1)/n < lower ≤ r/n, r/n ≤ upper < (r + 1)/n
        a = (1 - level) / 2
        r_lo, r_hi = stats.binom.ppf(a, n, p0), stats.binom.ppf(1 - a, n, p0)
        assert (r_lo - 1) / n - 1e-12 <= lo <= r_lo / n + 1e-12
        assert r_hi / n - 1e-12 <= hi <= (r_hi + 1) / n + 1e-12


@pytest.mark.parametrize("level", GRID_LEVEL)
@pytest.mark.parametrize("p0", GRID_P0)
def test_a_count_is_outside_exactly_when_the_exact_binomial_test_rejects(p0: float, level: float) -> None:
    a = (1 - level) / 2
    for n in [5, 12, 20, 30, 111]:
        (lo,), (hi,) = exact_limits(p0, [n], level)
        x = np.arange(n + 1)
        above = stats.binom.sf(x - 1, n, p0) <= a  # P(X ≥ x) ≤ a
        below = stats.binom.cdf(x, n, p0) < a  # P(X ≤ x) < a
        assert ((x / n) > hi + 1e-12).tolist() == above.tolist(), (p0, n)
        assert ((x / n) < lo - 1e-12).tolist() == below.tolist(), (p0, n)


def test_issue_example_three_of_twenty_at_two_percent_is_not_flagged() -> None:
    # P(X ≥ 3 | n = 20, p = 0.02) = 0.0071 > 0.001: not an outlier at 99.8 %; the normal upper limit (0.117) flagged it.
    assert stats.binom.sf(2, 20, 0.02) == pytest.approx(0.00707, abs=1e-5)
    (_,), (high,) = funnel_limits(0.02, [20], 0.998)
    assert 3 / 20 < high
    (_,), (normal_high,) = funnel_limits(0.02, [20], 0.998, method="normal")
    assert normal_high == pytest.approx(0.02 + 3.090232 * np.sqrt(0.02 * 0.98 / 20), abs=1e-6)
    assert 3 / 20 > normal_high
    # 4 of 20: P(X ≥ 4) = 0.0006 ≤ 0.001, flagged
    assert stats.binom.sf(3, 20, 0.02) < 0.001 and 4 / 20 > high


def test_edge_cases() -> None:
    low, high = exact_limits(0.3, [0, 10], 0.95)
    assert np.isnan(low[0]) and np.isnan(high[0]) and 0 <= low[1] < 0.3 < high[1] <= 1
    assert exact_limits(0.0, [10], 0.95)[1][0] == 0.0
    with pytest.raises(AnalysisError, match="0.95, not 95"):
        exact_limits(0.3, [10], 95)
    with pytest.raises(AnalysisError, match="overdispersion"):
        funnel_limits(0.3, [10], 0.95, overdispersion="huge")  # type: ignore[arg-type]


# A small table, p0 = 0.2, worked by hand:
#   unit  x    n    share  s = sqrt(0.16/n)  z = (share − 0.2)/s   w = 1/s²
#   1     10   100  0.10   0.04              −2.5                  625
#   2     30   100  0.30   0.04               2.5                  625
#   3     5    25   0.20   0.08               0.0                  156.25
#   4     9    25   0.36   0.08               2.0                  156.25
#   5     88   400  0.22   0.02               1.0                  2500
# sorted z: −2.5, 0, 1, 2, 2.5; type-7 percentiles: 10 %: h = 4·0.1 = 0.4 → −2.5 + 0.4·(0 + 2.5) = −1.5;
# 90 %: h = 3.6 → 2 + 0.6·(2.5 − 2) = 2.3. Winsorised z: −1.5, 2.3, 0, 2, 1.
X = [10, 30, 5, 9, 88]
N = [100, 100, 25, 25, 400]


def test_phi_and_tau2_by_hand() -> None:
    od = estimate_overdispersion(X, N, 0.2)
    phi = (1.5**2 + 2.3**2 + 0 + 2.0**2 + 1.0**2) / 5  # (2.25 + 5.29 + 0 + 4 + 1)/5 = 2.508
    assert od.phi == pytest.approx(2.508)
    assert od.phi == pytest.approx(phi)
    sw = 625 + 625 + 156.25 + 156.25 + 2500  # 4062.5
    sw2 = 625**2 + 625**2 + 156.25**2 + 156.25**2 + 2500**2  # 7 080 078.125
    tau2 = (5 * 2.508 - 4) / (sw - sw2 / sw)  # 8.54 / 2319.7115 = 0.0036815
    assert od.tau2 == pytest.approx(tau2) and od.tau2 == pytest.approx(0.0036815, abs=1e-7)
    assert od.n_units == 5 and od.p_value == pytest.approx(stats.chi2.sf(12.54, 4))
    # without winsorising: (6.25 + 6.25 + 0 + 4 + 1)/5 = 3.5
    assert estimate_overdispersion(X, N, 0.2, winsorise=0).phi == pytest.approx(3.5)
    # no overdispersion when I·φ ≤ I − 1: τ² = 0
    assert estimate_overdispersion([20, 20, 5], [100, 100, 25], 0.2).tau2 == 0.0


def test_overdispersed_limits_by_hand() -> None:
    z = stats.norm.ppf(0.975)
    (lo,), (hi,) = funnel_limits(0.2, [100], 0.95, overdispersion="multiplicative", phi=2.508)
    assert hi == pytest.approx(0.2 + z * np.sqrt(2.508) * 0.04) and lo == pytest.approx(
        0.2 - z * np.sqrt(2.508) * 0.04
    )
    (_,), (hi,) = funnel_limits(0.2, [100], 0.95, overdispersion="additive", tau2=0.0036815)
    assert hi == pytest.approx(0.2 + z * np.sqrt(0.04**2 + 0.0036815))
    # φ < 1 never narrows the limits below the normal binomial ones
    assert funnel_limits(0.2, [100], 0.95, overdispersion="multiplicative", phi=0.5)[1][0] == pytest.approx(
        0.2 + z * 0.04
    )


def _table(x: list, n: list, national: tuple[int, int]) -> pd.DataFrame:
    k = len(x)
    return pd.DataFrame(
        {
            "level": ["unit"] * k + ["national"],
            "group": [f"U{i}" for i in range(k)] + ["Norway"],
            "numerator": pd.array([*x, national[0]], dtype="Int64"),
            "denominator": pd.array([*n, national[1]], dtype="Int64"),
        }
    ).assign(proportion=lambda t: t["numerator"] / t["denominator"])


def test_funnel_table_flags_and_definition() -> None:
    t = _table([3, 4, 10], [20, 20, 500], (17, 540))
    f = funnel_table(t, p0=0.02)
    assert f.table["group"].tolist() == ["U0", "U1", "U2"]
    assert f.table["flag_998"].tolist() == ["", "high", ""]  # 3/20 inside, 4/20 above (see the issue example)
    assert "exact binomial" in f.definition.method and f.definition.details["target p0"] == "2.00 %"
    # additive: τ² estimated from the three units, stated in the definition
    fa = funnel_table(t, p0=0.02, overdispersion="additive")
    od = estimate_overdispersion([3, 4, 10], [20, 20, 500], 0.02)
    assert fa.overdispersion == od and f"τ² = {od.tau2:.3g}" in fa.definition.details["overdispersion"]


def test_funnel_table_skips_suppressed_units_and_uses_the_national_row() -> None:
    t = _table([3, 4, 10], [20, 20, 500], (17, 540))
    t.loc[0, ["numerator", "proportion"]] = pd.NA
    f = funnel_table(t)
    assert f.p0 == pytest.approx(17 / 540)
    assert f.table["group"].tolist() == ["U1", "U2"] and f.n_hidden == 1
    assert "1 unit" in f.definition.details["units"]


def test_funnel_plot_names_only_units_outside_the_exact_limits() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from kvarus_research.indicators.plots import funnel_plot

    # national 2 %; 3/20 inside the 99.8 % exact limits (the normal ones flagged it), 4/20 outside
    t = _table([3, 4, 10], [20, 20, 500], (17, 850))
    ax = funnel_plot(t.assign(proportion=lambda d: d["numerator"] / d["denominator"]))
    assert [a.get_text() for a in ax.texts if a.get_gid() != "funnel-method"] == ["U1"]
    method = [a.get_text() for a in ax.texts if a.get_gid() == "funnel-method"]
    assert method and method[0].startswith("exact binomial limits")
    ax = funnel_plot(t, overdispersion="additive")
    method = [a.get_text() for a in ax.texts if a.get_gid() == "funnel-method"][0]
    assert "additive random-effects τ²" in method and "τ² = " in method


def test_indicator_result_funnel_uses_the_published_table() -> None:
    import kvarus_research as kr
    from kvarus_research.indicators import MUTUAL_AGREEMENT

    res = MUTUAL_AGREEMENT.compute(kr.synthetic.generate(n_courses=600, seed=3))
    f = res.funnel()
    pub = res.published().table
    pub = pub[pub["year"].isna().to_numpy(dtype=bool)]
    national = pub[pub["level"] == "national"].iloc[0]
    assert f.p0 == pytest.approx(national["numerator"] / national["denominator"])
    units = pub[pub["level"].isin(("unit", "pooled"))]
    assert len(f.table) + f.n_hidden == len(units)
    assert f.n_hidden == int((units["numerator"].isna() | units["denominator"].isna()).sum())
    for _, row in f.table.iterrows():
        ref_lo, ref_hi = _reference(f.p0, int(row["denominator"]), 0.998)
        assert row["upper_998"] == pytest.approx(min(ref_hi, 1.0)) and row["lower_998"] == pytest.approx(
            max(ref_lo, 0)
        )


def test_coverage_beside_the_funnel_from_the_published_coverage_table() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import kvarus_research as kr
    from kvarus_research.indicators import MUTUAL_AGREEMENT, coverage
    from kvarus_research.indicators.limits import published_coverage

    reg = kr.synthetic.generate(n_courses=1500, seed=5)
    res, cov = MUTUAL_AGREEMENT.compute(reg), coverage(reg)
    f = res.funnel(2023, coverage=cov)
    pub = cov.published().table
    pub = pub[(pub["level"] == "unit").to_numpy() & pub["year"].eq(2023).fillna(False).to_numpy(dtype=bool)]
    by_name = dict(
        zip(pub["group"], pub["registered"].astype(float) / pub["expected"].astype(float), strict=True)
    )
    units = f.table[f.table["level"] == "unit"]
    for _, row in units.iterrows():
        expect = by_name.get(row["group"], np.nan)
        assert (np.isnan(row["coverage"]) and np.isnan(expect)) or row["coverage"] == pytest.approx(expect)
        assert row["low_coverage"] == (row["coverage"] < 0.6)
    assert "coverage" in f.definition.details
    ax = res.plot(kind="funnel", year=2023, coverage=cov)
    ringed = [c for c in ax.collections if c.get_label() == "coverage < 60 %"]
    assert units["low_coverage"].any()  # the synthetic registry has under-registering units
    assert len(ringed[0].get_offsets()) == int(f.table["low_coverage"].sum())
    # all years: Σ registered / Σ expected over the published years; none for a unit with a hidden cell
    all_years = published_coverage(cov)
    pub = cov.published().table
    pub = pub[(pub["level"] == "unit").to_numpy() & pub["year"].notna().to_numpy(dtype=bool)]
    for name, part in pub.groupby("group"):
        e, r = part["expected"].astype(float), part["registered"].astype(float)
        if e.isna().any() or r.isna().any():
            assert np.isnan(all_years[name])
        else:
            assert all_years[name] == pytest.approx(r.sum() / e.sum())


def test_indicator_definition_states_the_funnel_and_spc_methods() -> None:
    import kvarus_research as kr
    from kvarus_research.indicators import TREATMENT_PLAN

    d = TREATMENT_PLAN.compute(kr.synthetic.generate(n_courses=200, seed=1)).definition
    assert (
        d.details["funnel limits"].startswith("exact binomial") and "by default" in d.details["funnel limits"]
    )
    assert "Anhøj" in d.details["p-chart"]
    assert d.details["confidence interval"]  # the indicator's own details kept
