"""Confidence intervals and target levels of the indicator framework, cross-checked against statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

from kvarus_research import AnalysisError
from kvarus_research.indicators import Target, aggregate, exact_ci, proportion_ci, wilson_ci


@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_equals_statsmodels(xn: tuple[int, int]) -> None:
    x, n = xn
    low, high = wilson_ci([x], [n])
    sm_low, sm_high = proportion_confint(x, n, alpha=0.05, method="wilson")
    assert low[0] == pytest.approx(sm_low, abs=1e-12) and high[0] == pytest.approx(sm_high, abs=1e-12)


@given(st.integers(1, 2000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_exact_equals_statsmodels_beta(xn: tuple[int, int]) -> None:
    x, n = xn
    low, high = exact_ci([x], [n])
    sm_low, sm_high = proportion_confint(x, n, alpha=0.05, method="beta")
    assert low[0] == pytest.approx(sm_low, abs=1e-10) and high[0] == pytest.approx(sm_high, abs=1e-10)


def test_wilson_by_hand_and_zero_denominator() -> None:
    # x = 8, n = 10, z = 1.959964: centre = (0.8 + z²/20) / (1 + z²/10) = 0.7166; half = 0.2265 -> [0.4902, 0.9433]
    low, high = wilson_ci([8, 0], [10, 0])
    assert round(low[0], 4) == 0.4902 and round(high[0], 4) == 0.9433
    assert np.isnan(low[1]) and np.isnan(high[1])
    with pytest.raises(AnalysisError, match="wilson"):
        proportion_ci([1], [2], method="wald")  # type: ignore[arg-type]


def test_target_boundaries() -> None:
    # "high >= 80 %, moderate 60-80 %": exactly 80 % is high, exactly 60 % moderate.
    t = Target(high=0.8, moderate=0.6)
    assert [t.level(p) for p in (0.8, 0.6, 0.5999, float("nan"))] == ["high", "moderate", "low", None]


def test_aggregate_missing_counted_and_years() -> None:
    # Unit 1: 2020 -> 2 of 3 (1 answer missing), 2021 -> 1 of 1. All years 3 of 4, missing 1.
    f = pd.DataFrame({"unit_id": [1] * 5, "date": pd.to_datetime(["2020-01-01"] * 4 + ["2021-01-01"]),
                      "denominator": [True, True, True, False, True], "numerator": [True, True, False, False, True],
                      "exclusion": [None, None, None, "answer missing", None]})  # fmt: skip
    t = aggregate(f, pd.DataFrame({"unit_id": [1], "region": ["R"]}), n_limit=1)
    u = t[t["level"] == "unit"].set_index("year", drop=False)
    assert u.loc[2020, ["numerator", "denominator", "missing"]].tolist() == [2, 3, 1]
    assert u.loc[2021, ["numerator", "denominator", "missing"]].tolist() == [1, 1, 0]
    every = t[(t["level"] == "unit") & t["year"].isna()].iloc[0]
    assert (every["numerator"], every["denominator"], every["missing"]) == (3, 4, 1)
    assert t.loc[t["level"] == "unit", "group"].unique().tolist() == ["Unit 1"]
