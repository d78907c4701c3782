"""Case-mix adjustment: exact Poisson limits and CIs against scipy; crude vs adjusted flags on simulated registries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kvarus_research.errors import AnalysisError
from kvarus_research.indicators.casemix import casemix_adjust, oe_ci, poisson_ratio_limits
from kvarus_research.indicators.framework import Target
from kvarus_research.registry import Registry


@pytest.mark.parametrize("level", [0.95, 0.998])
def test_poisson_ratio_limits_equal_scipy_quantiles_and_the_exact_test(level: float) -> None:
    a = (1 - level) / 2
    e = np.array([0.5, 2.0, 7.3, 20.0, 150.0])
    low, high = poisson_ratio_limits(e, level)
    for ei, lo, hi in zip(e, low, high, strict=True):
        r = stats.poisson.ppf(a, ei)
        c, c1 = stats.poisson.cdf(r, ei), stats.poisson.cdf(r - 1, ei)
        assert lo == pytest.approx(max(r - (c - a) / (c - c1), 0) / ei, abs=1e-10)
        r = stats.poisson.ppf(1 - a, ei)
        c, c1 = stats.poisson.cdf(r, ei), stats.poisson.cdf(r - 1, ei)
        assert hi == pytest.approx((r + 1 - (c - (1 - a)) / (c - c1)) / ei, abs=1e-10)
        o = np.arange(int(ei * 4 + 20))
        assert (o > hi * ei + 1e-9).tolist() == (stats.poisson.sf(o - 1, ei) <= a).tolist()
        assert (o < lo * ei - 1e-9).tolist() == (stats.poisson.cdf(o, ei) < a).tolist()


def test_oe_ci_is_the_exact_poisson_interval() -> None:
    o, e = np.array([0, 3, 25]), np.array([4.0, 5.0, 20.0])
    low, high = oe_ci(o, e, 0.95)
    # the upper mean μ = high·E has P(X ≤ O) = 0.025; the lower has P(X ≥ O) = 0.025; O = 0 gives 0
    assert stats.poisson.cdf(o, high * e) == pytest.approx([0.025] * 3)
    assert low[0] == 0 and stats.poisson.sf(o[1:] - 1, low[1:] * e[1:]) == pytest.approx([0.025] * 2)


def test_oe_ci_binomial_is_clopper_pearson_of_o_over_n_divided_by_e_over_n() -> None:
    o, n, e = np.array([0, 3, 18, 10]), np.array([12, 20, 20, 10]), np.array([1.5, 4.0, 15.0, 8.0])
    low, high = oe_ci(o, e, 0.95, method="binomial", n=n)
    for oi, ni, ei, lo, hi in zip(
        o, n, e, low, high, strict=True
    ):  # scipy's exact (Clopper–Pearson) interval
        ci = stats.binomtest(int(oi), int(ni)).proportion_ci(confidence_level=0.95, method="exact")
        assert (lo, hi) == pytest.approx((ci.low * ni / ei, ci.high * ni / ei), rel=1e-9)
    # by hand: O = 0 of 12, upper 1 − 0.025^(1/12) = 0.264648, times 12/1.5; O = n = 10: lower 0.025^(1/10)
    # = 0.691503 times 10/8 = 0.864379, upper n/E = 1.25
    assert low[0] == 0 and high[0] == pytest.approx(0.264648 * 8, abs=1e-5)
    assert low[3] == pytest.approx(0.864379, abs=1e-6) and high[3] == pytest.approx(1.25)
    # narrower than the Poisson interval when O/n is large (here 18/20)
    p_low, p_high = oe_ci(o, e, 0.95)
    assert high[2] - low[2] < p_high[2] - p_low[2]
    with pytest.raises(AnalysisError, match="needs n"):
        oe_ci(o, e, method="binomial")
    with pytest.raises(AnalysisError, match="not one of"):
        oe_ci(o, e, method="wald")  # type: ignore[arg-type]


def test_casemix_adjust_binomial_ci_and_its_definition() -> None:
    rows = _registry(1)
    res = casemix_adjust(rows, covariates=["severity", "sex"], ci_method="binomial")
    t = res.table
    low, high = oe_ci(t["observed"].to_numpy(float), t["expected"].to_numpy(float), 0.95, method="binomial",
                      n=t["n"].to_numpy(float))  # fmt: skip
    assert t["oe_low"].to_numpy() == pytest.approx(low) and t["oe_high"].to_numpy() == pytest.approx(high)
    assert "Clopper–Pearson CI of O/n divided by E/n" in res.definition.details["O/E CI"]
    assert "Garwood" in casemix_adjust(rows, covariates=["severity", "sex"]).definition.details["O/E CI"]


def _registry(seed: int, *, unit_effect: dict[int, float] | None = None, mixed: bool = True) -> pd.DataFrame:
    """Six units of 1500 courses; severity 0-3 at start. Truth: logit P(indicator) = 1 − 0.9·severity
    (+ a unit effect). ``mixed``: units differ in case mix (unit u's mean severity rises with u)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, 7):
        probs = np.array([6 - u, 3, 2, u], dtype=float) if mixed else np.ones(4)
        sev = rng.choice(4, size=1500, p=probs / probs.sum())
        sex = rng.choice(["K", "M"], size=1500)
        eta = 1.0 - 0.9 * sev + (unit_effect or {}).get(u, 0.0)
        y = rng.random(1500) < 1 / (1 + np.exp(-eta))
        rows.append(pd.DataFrame({"unit_id": u, "severity": sev.astype(str), "sex": sex, "numerator": y}))
    return pd.concat(rows, ignore_index=True)


def test_case_mix_alone_flags_crude_shares_not_adjusted_ratios() -> None:
    rows = _registry(1)
    res = casemix_adjust(rows, covariates=["severity", "sex"])
    t = res.table
    assert (t["crude_flag"] != "").sum() >= 4  # unit 1 (mild) high, unit 6 (severe) low, …
    assert t.loc[t["unit_id"] == 1, "crude_flag"].item() == "high"
    assert t.loc[t["unit_id"] == 6, "crude_flag"].item() == "low"
    assert (t["adjusted_flag"] == "").all()
    # O/E near 1 and E summing to O (a GLM with an intercept reproduces the total)
    assert t["expected"].sum() == pytest.approx(t["observed"].sum())
    assert t["oe"].between(0.9, 1.1).all()


def test_a_built_in_unit_effect_is_flagged_after_adjustment() -> None:
    rows = _registry(2, unit_effect={3: 0.6}, mixed=False)
    t = casemix_adjust(rows, covariates=["severity", "sex"]).table
    assert t.loc[t["unit_id"] == 3, "adjusted_flag"].item() == "high"
    assert t.loc[t["unit_id"] == 3, "crude_flag"].item() == "high"
    assert (t.loc[t["unit_id"] != 3, "adjusted_flag"] != "high").all()


def test_band_moved_and_definition() -> None:
    rows = _registry(1)
    res = casemix_adjust(rows, covariates=["severity", "sex"], target=Target(high=0.5, moderate=0.35))
    t = res.table
    assert (t["band_moved"] == (t["crude_level"] != t["adjusted_level"])).all()
    assert t["band_moved"].any()  # the mildest and most severe units change band once adjusted
    assert res.definition.details["covariates"] == "severity, sex"
    assert "0 left out" in res.definition.population


def test_missing_columns_and_rows() -> None:
    rows = _registry(1).assign(age=np.nan)
    with pytest.raises(AnalysisError, match="not in the rows"):
        casemix_adjust(rows.drop(columns="sex"), covariates=["severity", "sex"])
    with pytest.raises(AnalysisError, match="no row has every covariate"):
        casemix_adjust(rows, covariates=["severity", "age"])


def test_protected_table_hides_small_observed_counts_and_their_ratios() -> None:
    rows = _registry(1)
    small = pd.DataFrame(
        {"unit_id": 9, "severity": ["3"] * 12, "sex": "K", "numerator": [True] * 2 + [False] * 10}
    )
    res = casemix_adjust(pd.concat([rows, small], ignore_index=True), covariates=["severity", "sex"])
    row = res.protected().table.set_index("unit_id").loc[9]
    assert pd.isna(row["observed"]) and pd.isna(row["oe"]) and pd.isna(row["adjusted_share"])


def test_figures_are_drawn_from_the_protected_table() -> None:
    import matplotlib

    matplotlib.use("Agg")
    rows = _registry(1)
    small = pd.DataFrame(
        {"unit_id": 9, "severity": ["3"] * 12, "sex": "K", "numerator": [True] * 2 + [False] * 10}
    )
    res = casemix_adjust(pd.concat([rows, small], ignore_index=True), covariates=["severity", "sex"],
                         target=Target(high=0.5, moderate=0.35))  # fmt: skip
    ax = res.plot(kind="funnel")
    assert len(ax.collections[0].get_offsets()) == 6  # unit 9 hidden
    assert any(t.get_text() == "1 unit(s) not shown (:)" for t in ax.get_legend().get_texts())
    ax = res.plot(kind="compare")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1", "2", "3", "4", "5", "6"]


def test_indicator_casemix_on_the_synthetic_registry() -> None:
    import kvarus_research as kr
    from kvarus_research.indicators import MUTUAL_AGREEMENT
    from kvarus_research.indicators.casemix import indicator_casemix, start_characteristics

    reg = kr.synthetic.generate(n_courses=600, seed=4)
    res = MUTUAL_AGREEMENT.compute(reg)
    cm = indicator_casemix(res, reg)
    clean = reg.without_opt_outs()
    start = start_characteristics(clean)
    # a course's start characteristics are its baseline registration's values
    regs = clean.registrations
    cid = regs.loc[regs["kind"] == "baseline", "course_id"].iloc[5]
    i = int(np.flatnonzero(clean.courses["course_id"].to_numpy() == cid)[0])
    base = regs[(regs["course_id"] == cid) & (regs["kind"] == "baseline")].iloc[0]
    assert start.iloc[i]["alvorlighet_rus"] == base["alvorlighet_rus"] and start.iloc[i]["age"] == base["age"]
    # the comparison counts the denominator courses with every covariate: per unit, n and observed from the flags
    flags = MUTUAL_AGREEMENT.flags(clean).reset_index(drop=True)
    rows = pd.concat([flags, start], axis=1)
    rows = rows[rows["denominator"].astype(bool)].dropna(subset=list(start.columns))
    by = rows.groupby("unit_id")
    n, o = by.size(), by["numerator"].sum().astype(int)
    units = cm.table[cm.table["level"] == "unit"].set_index("unit_id")
    assert units["n"].astype(int).to_dict() == n[n >= 10].to_dict()
    assert units["observed"].astype(int).to_dict() == o[n >= 10].to_dict()
    pooled = cm.table[cm.table["level"] == "pooled"]
    if (n < 10).any():  # units under the N limit are one pooled row
        assert pooled["n_units"].item() == int((n < 10).sum()) and pooled["n"].item() == int(n[n < 10].sum())
    else:
        assert pooled.empty


def test_units_under_the_n_limit_are_pooled() -> None:
    rows = _registry(1)
    tiny = pd.DataFrame({"unit_id": [21] * 6 + [22] * 3, "severity": "1", "sex": "M",
                         "numerator": [True, False, True, True, False, True, True, False, False]})  # fmt: skip
    res = casemix_adjust(pd.concat([rows, tiny], ignore_index=True), covariates=["severity", "sex"])
    t = res.table
    assert 21 not in set(t["unit_id"].dropna()) and 22 not in set(t["unit_id"].dropna())
    pooled = t[t["level"] == "pooled"].iloc[0]
    # 6 + 3 = 9 courses, 4 + 1 = 5 meeting the indicator
    assert (pooled["n_units"], pooled["n"], pooled["observed"]) == (2, 9, 5)
    assert pooled["oe"] == pytest.approx(5 / pooled["expected"])
    assert "fewer than 10" in res.definition.details["small units"]


def _synthetic_rows(reg: Registry) -> pd.DataFrame:
    """Mutual-agreement flags of the courses in the denominator with their start characteristics and the unit's
    setting (the synthetic truth makes inpatient units end more courses by mutual agreement)."""
    from kvarus_research.indicators import MUTUAL_AGREEMENT
    from kvarus_research.indicators.casemix import start_characteristics

    clean = reg.without_opt_outs()
    rows = pd.concat(
        [MUTUAL_AGREEMENT.flags(clean).reset_index(drop=True), start_characteristics(clean)], axis=1
    )
    rows["setting"] = rows["unit_id"].map(clean.units.set_index("unit_id")["setting"])
    rows = rows[rows["denominator"].to_numpy(dtype=bool)]
    return rows.assign(numerator=rows["numerator"].astype(bool))


def test_synthetic_unit_effect_is_flagged_by_adjusted_oe_and_none_without_it() -> None:
    import kvarus_research as kr
    from kvarus_research.indicators.casemix import DEFAULT_COVARIATES

    covariates = [*DEFAULT_COVARIATES, "setting"]
    # truth: log odds of mutual agreement +1 at the unit in position 2, −1 at position 9 (truth["unit_effects"])
    reg = kr.synthetic.generate(20000, seed=5, unit_effects={2: 1.0, 9: -1.0})
    up, down = reg.units["unit_id"].iloc[[2, 9]].tolist()
    assert reg.truth["unit_effects"]["log_odds_shift"] == {up: 1.0, down: -1.0}
    t = casemix_adjust(_synthetic_rows(reg), covariates=covariates).table.set_index("unit_id")
    assert t.loc[up, "adjusted_flag"] == "high" and t.loc[down, "adjusted_flag"] == "low"
    assert (t.drop(index=[up, down])["adjusted_flag"] == "").all()
    # the same seed without the effect: no unit is flagged after adjustment, though crude shares flag one
    plain = casemix_adjust(_synthetic_rows(kr.synthetic.generate(20000, seed=5)), covariates=covariates).table
    assert (plain["adjusted_flag"] == "").all()
    assert (plain["crude_flag"] != "").sum() == 1
