"""Confidence intervals for proportions, shared by every module that reports a share.

One implementation of each interval, so indicators, outcome shares and completeness agree to the last digit
(checked against statsmodels' ``proportion_confint`` in the tests).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy import stats

from kvarus_research.errors import AnalysisError

CIMethod = Literal["wilson", "exact"]


def _as_arrays(numerator: Any, denominator: Any) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Broadcast counts and totals to 1-D float arrays, remembering the shape to give back."""
    x, n = np.broadcast_arrays(np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float))
    return np.atleast_1d(x).astype(float).ravel(), np.atleast_1d(n).astype(float).ravel(), x.shape


def wilson_ci(numerator: Any, denominator: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for binomial proportions (vectorised).

    Parameters
    ----------
    numerator, denominator : array-like of int
        Successes and trials; where ``denominator`` is 0 the interval is NaN.
    alpha : float
        1 − confidence level (0.05 gives a 95 % interval).

    Returns
    -------
    low, high : ndarray
        Shaped like the broadcast inputs (0-d arrays for scalars).

    Examples
    --------
    >>> low, high = wilson_ci([8], [10])
    >>> round(float(low[0]), 4), round(float(high[0]), 4)
    (0.4902, 0.9433)
    """
    x, n, shape = _as_arrays(numerator, denominator)
    z = stats.norm.ppf(1 - alpha / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
        low, high = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
    low[x == 0], high[x == n] = 0.0, 1.0  # exact bounds, free of floating-point rounding
    bad = ~(n > 0)
    low[bad], high[bad] = np.nan, np.nan
    return low.reshape(shape), high.reshape(shape)


def exact_ci(numerator: Any, denominator: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Clopper–Pearson ("exact") interval for binomial proportions (vectorised).

    Examples
    --------
    >>> low, high = exact_ci([0, 10], [10, 10])
    >>> float(low[0]), round(float(high[0]), 4), round(float(low[1]), 4), float(high[1])
    (0.0, 0.3085, 0.6915, 1.0)
    """
    x, n, shape = _as_arrays(numerator, denominator)
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(x > 0, stats.beta.ppf(alpha / 2, x, n - x + 1), 0.0)
        high = np.where(x < n, stats.beta.ppf(1 - alpha / 2, x + 1, n - x), 1.0)
    bad = ~(n > 0)
    low[bad], high[bad] = np.nan, np.nan
    return low.reshape(shape), high.reshape(shape)


def proportion_ci(
    numerator: Any, denominator: Any, method: CIMethod = "wilson", alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Confidence interval of proportions by ``method`` (``"wilson"`` or ``"exact"`` Clopper–Pearson).

    Examples
    --------
    >>> [round(float(v[0]), 3) for v in proportion_ci([1], [4], "exact")]
    [0.006, 0.806]
    """
    if method == "wilson":
        return wilson_ci(numerator, denominator, alpha)
    if method == "exact":
        return exact_ci(numerator, denominator, alpha)
    raise AnalysisError(f"confidence-interval method {method!r} is not one of 'wilson', 'exact'")
