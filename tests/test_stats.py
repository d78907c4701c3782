"""The one Wilson and Clopper–Pearson implementation, against statsmodels and a hand computation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

from kvarus_research.errors import AnalysisError
from kvarus_research.stats import exact_ci, proportion_ci, wilson_ci


def test_wilson_by_hand() -> None:
    # x = 8, n = 10, z = 1.959964: centre = (0.8 + z²/20) / (1 + z²/10) = 0.7167, half = 0.2265
    low, high = wilson_ci([8], [10])
    assert low[0] == pytest.approx(0.4902, abs=1e-4) and high[0] == pytest.approx(0.9433, abs=1e-4)


@given(st.lists(st.tuples(st.integers(0, 500), st.integers(1, 500)), min_size=1, max_size=20),
       st.sampled_from([0.05, 0.1, 0.01]))  # fmt: skip
def test_wilson_and_exact_equal_statsmodels(pairs: list[tuple[int, int]], alpha: float) -> None:
    x = np.array([min(a, b) for a, b in pairs])
    n = np.array([b for _, b in pairs])
    for method, sm in (("wilson", "wilson"), ("exact", "beta")):
        low, high = proportion_ci(x, n, method, alpha)
        slo, shi = proportion_confint(x, n, alpha=alpha, method=sm)
        np.testing.assert_allclose(low, np.nan_to_num(slo, nan=0.0), atol=1e-9)
        np.testing.assert_allclose(high, np.nan_to_num(shi, nan=1.0), atol=1e-9)


def test_empty_denominator_gives_nan_and_unknown_method_is_refused() -> None:
    low, high = exact_ci([0], [0])
    assert np.isnan(low[0]) and np.isnan(high[0])
    with pytest.raises(AnalysisError, match="not one of 'wilson', 'exact'"):
        proportion_ci([1], [2], "wald")  # type: ignore[arg-type]
