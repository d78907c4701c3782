"""Funnel-plot control limits: exact binomial, normal approximation, and overdispersion-adjusted.

A funnel plot compares each unit's share ``x/n`` with a target ``p0`` (the national rate). The limits at level
``L`` (95 %, 99.8 %) mark where ``x/n`` would fall with probability ``(1 − L)/2`` in each tail if the unit's true
rate were ``p0``.

- **exact** (the default): binomial quantiles with Spiegelhalter's interpolation (Spiegelhalter 2005, *Funnel plots
  for comparing institutional performance*, Stat Med 24:1185, appendix A.1.1). With ``r_p`` the smallest count
  with ``P(X ≤ r_p) ≥ p`` for ``X ~ Bin(n, p0)`` and ``α = (P(X ≤ r_p) − p) / P(X = r_p)``, the lower limit is
  ``(r_p − α)/n`` at ``p = (1 − L)/2``. The upper limit is the same construction applied to the count *not*
  meeting the indicator (``n − X ~ Bin(n, 1 − p0)``), which works out to ``(r_p + 1 − α)/n`` at ``p = (1 + L)/2``.
  Both limits then agree with the exact one-sided binomial test: a count ``x`` lies above the upper limit exactly
  when ``P(X ≥ x) ≤ (1 − L)/2`` and below the lower limit exactly when ``P(X ≤ x) < (1 − L)/2``. (Applying
  ``(r_p − α)/n`` to the upper tail as well would put the 99.8 % upper limit for ``p0 = 0.02, n = 20`` at
  0.147 and flag 3 of 20, although ``P(X ≥ 3) = 0.007`` is above 0.001.)
- **normal**: ``p0 ± z·√(p0(1 − p0)/n)``, clipped to [0, 1]; far off for rare indicators and small units.
- **overdispersion** (Spiegelhalter 2005, section 6; Spiegelhalter et al. 2012, *Statistical methods for
  healthcare regulation*, JRSS A 175:1): z-scores ``zᵢ = (yᵢ − p0)/sᵢ`` with ``sᵢ = √(p0(1 − p0)/nᵢ)`` are
  winsorised (10 % in each tail by default), ``φ̂ = Σ zᵢ² / I`` over the ``I`` units, and

  - *multiplicative*: limits ``p0 ± z·√φ̂·sᵢ`` (``φ̂`` below 1 is taken as 1: never narrower than binomial);
  - *additive* random effects (DerSimonian–Laird): ``τ̂² = (I·φ̂ − (I − 1)) / (Σwᵢ − Σwᵢ²/Σwᵢ)`` with
    ``wᵢ = 1/sᵢ²`` (0 when ``I·φ̂ ≤ I − 1``), limits ``p0 ± z·√(sᵢ² + τ̂²)``.

  ``I·φ̂`` is compared with χ² on ``I − 1`` degrees of freedom as the test of overdispersion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import special, stats

LimitMethod = Literal["exact", "normal"]
OverdispersionMethod = Literal["none", "multiplicative", "additive"]
DEFAULT_LEVELS = (0.95, 0.998)


def _binom_quantile(p: float, n: np.ndarray, p0: float) -> np.ndarray:
    """Smallest integer r in [0, n] with P(X ≤ r) ≥ p, X ~ Bin(n, p0), by bisection on the binomial CDF."""
    lo = np.zeros(n.shape, dtype=np.int64)  # invariant: answer in [lo, hi]
    hi = n.astype(np.int64)
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        ok = special.bdtr(mid, n, p0) >= p
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid + 1)
    return lo


def _cdf(r: np.ndarray, n: np.ndarray, p0: float) -> np.ndarray:
    return np.where(r < 0, 0.0, special.bdtr(np.maximum(r, 0), n, p0))


def exact_limits(p0: float, n: Any, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial funnel limits (interpolated quantiles) around ``p0`` at ``level`` for denominators ``n``.

    Parameters
    ----------
    p0 : float
        Target proportion (national rate), in [0, 1].
    n : array-like of int
        Denominators; non-integer values are rounded to the nearest integer, 0 gives NaN.
    level : float
        Two-sided level, e.g. 0.95 or 0.998.

    Returns
    -------
    (ndarray, ndarray)
        Lower and upper limits as proportions.

    Examples
    --------
    The issue's example: 3 of 20 is inside the 99.8 % limits around 2 % (P(X ≥ 3) = 0.007 > 0.001), 4 of 20 is not.

    >>> low, high = exact_limits(0.02, [20], 0.998)
    >>> round(float(high[0]), 4), bool(3 / 20 > high[0]), bool(4 / 20 > high[0])
    (0.1969, False, True)
    """
    _check(p0, level)
    n = np.rint(np.atleast_1d(np.asarray(n, dtype=float)))
    out_lo, out_hi = np.full(n.shape, np.nan), np.full(n.shape, np.nan)
    ok = n > 0
    if not ok.any():
        return out_lo, out_hi
    m = n[ok].astype(np.int64)
    if p0 in (0.0, 1.0):
        out_lo[ok] = out_hi[ok] = p0
        return out_lo, out_hi
    tail = (1 - level) / 2
    # lower: Spiegelhalter's interpolation on X
    r = _binom_quantile(tail, m, p0)
    c, c1 = _cdf(r, m, p0), _cdf(r - 1, m, p0)
    alpha = (c - tail) / (c - c1)
    out_lo[ok] = (r - alpha) / m
    # upper: the same on n − X ~ Bin(n, 1 − p0), mirrored
    r = _binom_quantile(tail, m, 1 - p0)
    c, c1 = _cdf(r, m, 1 - p0), _cdf(r - 1, m, 1 - p0)
    alpha = (c - tail) / (c - c1)
    out_hi[ok] = 1 - (r - alpha) / m
    return np.clip(out_lo, 0, 1), np.clip(out_hi, 0, 1)


def _check(p0: float, level: float) -> None:
    from kvarus_research.errors import AnalysisError

    if not 0 <= p0 <= 1 or np.isnan(p0):
        raise AnalysisError(f"funnel limits: target proportion p0 = {p0} is not in [0, 1]")
    if not 0 < level < 1:
        raise AnalysisError(f"funnel limits: level = {level} is not in (0, 1) (write 0.95, not 95)")


@dataclass(frozen=True)
class Overdispersion:
    """Overdispersion of unit shares around a target, estimated from winsorised z-scores (Spiegelhalter 2005).

    Attributes
    ----------
    phi : float
        Multiplicative overdispersion φ̂ = Σ zᵢ²/I (winsorised z-scores).
    tau2 : float
        Additive between-unit variance τ̂² (DerSimonian–Laird), 0 when I·φ̂ ≤ I − 1.
    n_units : int
        Units used (I).
    p_value : float
        P(χ²_{I−1} ≥ I·φ̂): the test of no overdispersion.
    winsorise : float
        Share winsorised in each tail.
    """

    phi: float
    tau2: float
    n_units: int
    p_value: float
    winsorise: float

    def describe(self) -> str:
        """One line for a definition or a legend.

        Examples
        --------
        >>> Overdispersion(phi=2.5, tau2=0.004, n_units=12, p_value=0.003, winsorise=0.1).describe()
        'φ = 2.50, τ² = 0.004 from 12 units (10 % winsorised in each tail); test of no overdispersion p = 0.003'
        """
        return (
            f"φ = {self.phi:.2f}, τ² = {self.tau2:.3g} from {self.n_units} units ({self.winsorise * 100:g} % winsorised in"
            f" each tail); test of no overdispersion p = {self.p_value:.2g}"
        )


def estimate_overdispersion(
    numerator: Any, denominator: Any, p0: float, *, winsorise: float = 0.1
) -> Overdispersion:
    """Estimate φ and τ² from unit counts around ``p0`` (Spiegelhalter 2005; Spiegelhalter et al. 2012).

    z-scores ``zᵢ = (xᵢ/nᵢ − p0)/√(p0(1 − p0)/nᵢ)`` are winsorised at the ``winsorise`` and ``1 − winsorise``
    percentiles (linear interpolation between order statistics, R's type 7); units with a missing count or
    ``n = 0`` are left out.

    Parameters
    ----------
    numerator, denominator : array-like
        Counts per unit.
    p0 : float
        Target proportion, strictly between 0 and 1.
    winsorise : float
        Share of z-scores pulled in at each tail (0 for none).

    Examples
    --------
    >>> od = estimate_overdispersion([10, 30, 50], [100, 100, 100], 0.3, winsorise=0.0)
    >>> round(od.phi, 3), od.n_units
    (12.698, 3)
    """
    from kvarus_research.errors import AnalysisError

    x = np.asarray(numerator, dtype=float)
    n = np.asarray(denominator, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(n)) & (n > 0)
    x, n = x[keep], n[keep]
    if not 0 < p0 < 1:
        raise AnalysisError(f"overdispersion: target proportion p0 = {p0} must lie strictly between 0 and 1")
    if len(n) < 2:
        raise AnalysisError(f"overdispersion: {len(n)} unit(s) with counts; at least 2 are needed")
    s2 = p0 * (1 - p0) / n
    z = (x / n - p0) / np.sqrt(s2)
    if winsorise > 0:
        lo, hi = np.percentile(z, [100 * winsorise, 100 * (1 - winsorise)])
        z = np.clip(z, lo, hi)
    k = len(z)
    phi = float(np.mean(z**2))
    w = 1 / s2
    tau2 = max(0.0, (k * phi - (k - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    p_value = float(stats.chi2.sf(k * phi, k - 1))
    return Overdispersion(phi=phi, tau2=float(tau2), n_units=k, p_value=p_value, winsorise=winsorise)


def funnel_limits(
    p0: float,
    n: Any,
    level: float,
    *,
    method: LimitMethod = "exact",
    overdispersion: OverdispersionMethod = "none",
    phi: float = 1.0,
    tau2: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Funnel-plot control limits around ``p0`` at ``level`` for denominators ``n``, clipped to [0, 1].

    Parameters
    ----------
    p0 : float
        Target proportion (national rate).
    n : array-like
        Denominators.
    level : float
        Two-sided level (0.95, 0.998).
    method : {"exact", "normal"}
        Without overdispersion: interpolated binomial quantiles (default) or the normal approximation.
    overdispersion : {"none", "multiplicative", "additive"}
        ``"multiplicative"``: ``p0 ± z·√max(φ, 1)·s``; ``"additive"``: ``p0 ± z·√(s² + τ²)``, with
        ``s = √(p0(1 − p0)/n)`` (normal, as in Spiegelhalter 2005); ``method`` is then ignored.
    phi, tau2 : float
        From :func:`estimate_overdispersion`.

    Examples
    --------
    >>> low, high = funnel_limits(0.5, [100], 0.95, method="normal")
    >>> round(float(low[0]), 4), round(float(high[0]), 4)
    (0.402, 0.598)
    >>> low, high = funnel_limits(0.5, [100], 0.95, overdispersion="additive", tau2=0.01)
    >>> round(float(high[0]), 4)  # 0.5 + 1.96 * sqrt(0.0025 + 0.01)
    0.7191
    """
    from kvarus_research.errors import AnalysisError

    _check(p0, level)
    n = np.atleast_1d(np.asarray(n, dtype=float))
    if overdispersion == "none" and method == "exact":
        return exact_limits(p0, n, level)
    z = stats.norm.ppf(1 - (1 - level) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = np.where(n > 0, p0 * (1 - p0) / n, np.nan)
    if overdispersion == "none":
        if method != "normal":
            raise AnalysisError(f"funnel limits: method {method!r} is not one of 'exact', 'normal'")
        half = z * np.sqrt(s2)
    elif overdispersion == "multiplicative":
        half = z * np.sqrt(max(phi, 1.0) * s2)
    elif overdispersion == "additive":
        half = z * np.sqrt(s2 + max(tau2, 0.0))
    else:
        raise AnalysisError(
            f"funnel limits: overdispersion {overdispersion!r} is not one of 'none', 'multiplicative', 'additive'"
        )
    return np.clip(p0 - half, 0, 1), np.clip(p0 + half, 0, 1)


def describe_limits(
    method: LimitMethod = "exact",
    overdispersion: OverdispersionMethod = "none",
    estimate: Overdispersion | None = None,
    levels: tuple[float, ...] = DEFAULT_LEVELS,
) -> str:
    """The limits' method in words, for a definition or a figure note.

    Examples
    --------
    >>> describe_limits()
    'exact binomial limits (interpolated quantiles, Spiegelhalter 2005) at 95 % and 99.8 %; no overdispersion adjustment'
    """
    at = " and ".join(f"{lv * 100:g} %" for lv in levels)
    if overdispersion == "none":
        base = (
            "exact binomial limits (interpolated quantiles, Spiegelhalter 2005)"
            if method == "exact"
            else "normal-approximation limits p0 ± z·√(p0(1 − p0)/n)"
        )
        text = f"{base} at {at}; no overdispersion adjustment"
    else:
        kind = "multiplicative φ" if overdispersion == "multiplicative" else "additive random-effects τ²"
        text = f"overdispersion-adjusted limits ({kind}, Spiegelhalter 2005) at {at}"
    if estimate is not None:
        text += f"; {estimate.describe()}"
    return text


def _level_key(level: float) -> str:
    return f"{level * 100:g}".replace(".", "")


@dataclass(frozen=True)
class Funnel:
    """A funnel comparison of units with the national rate: limits and flags per unit, and how they were made.

    Attributes
    ----------
    table : DataFrame
        ``level, group, numerator, denominator, proportion`` and per level ``L`` (``95``, ``998``):
        ``lower_L, upper_L, flag_L`` (``"high"``, ``"low"`` or ``""``).
    definition : Definition
        Method (limits and overdispersion, with φ and τ²), target, the units used.
    p0 : float
        Target proportion.
    overdispersion : Overdispersion or None
        The estimate (None when it could not be estimated: fewer than 2 units or p0 at 0 or 1).
    n_hidden : int
        Units whose counts the table hides (not drawn, not used).
    """

    table: Any
    definition: Any
    p0: float
    overdispersion: Overdispersion | None
    n_hidden: int


def funnel_table(
    table: Any,
    *,
    p0: float | None = None,
    method: LimitMethod = "exact",
    overdispersion: OverdispersionMethod = "none",
    levels: tuple[float, ...] = DEFAULT_LEVELS,
    winsorise: float = 0.1,
    coverage: Any = None,
) -> Funnel:
    """Limits and flags for the units of a (protected) indicator table of one year.

    Units are the ``unit`` and ``pooled`` rows whose counts are shown; rows with a hidden numerator or denominator
    are counted in ``n_hidden`` and neither drawn nor used to estimate φ/τ² (an estimate over hidden cells could be
    solved for them). φ and τ² are always estimated and stated; they change the limits only when
    ``overdispersion`` asks for it.

    Parameters
    ----------
    table : DataFrame
        ``level, group, numerator, denominator, proportion`` (e.g. a year of ``IndicatorResult.protected().table``).
    p0 : float, optional
        Target; the ``national`` row's proportion by default.
    method : {"exact", "normal"}
        Limits without overdispersion (default exact binomial).
    overdispersion : {"none", "multiplicative", "additive"}
        Default ``"none"``: the binomial limits; see :func:`funnel_limits`.
    levels : tuple of float
        Levels of the limits (default 95 % and 99.8 %).
    winsorise : float
        Share winsorised in each tail when estimating φ.
    coverage : Series, optional
        Coverage by unit name (:func:`published_coverage`): adds ``coverage`` and ``low_coverage`` (below
        :data:`LOW_COVERAGE`, 60 %) per unit.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"level": ["unit", "unit", "national"], "group": ["A", "B", "Norway"],
    ...     "numerator": [3, 4, 7], "denominator": [20, 20, 40], "proportion": [0.15, 0.2, 7 / 40]})
    >>> f = funnel_table(t, p0=0.02)
    >>> f.table["flag_998"].tolist()
    ['', 'high']
    >>> f.definition.method
    'exact binomial limits (interpolated quantiles, Spiegelhalter 2005) at 95 % and 99.8 %; no overdispersion adjustment'
    """
    import pandas as pd

    from kvarus_research.errors import AnalysisError
    from kvarus_research.results import Definition

    if p0 is None:
        national = table[table["level"] == "national"]
        if national.empty or pd.isna(national["proportion"].iloc[0]):
            raise AnalysisError("funnel: the table has no (unsuppressed) national row to compare against")
        p0 = float(national["proportion"].iloc[0])
    units = table[table["level"].isin(("unit", "pooled"))]
    hidden = units["numerator"].isna() | units["denominator"].isna()
    shown = units[~hidden.to_numpy(dtype=bool)]
    out = shown[[c for c in ("level", "group", "unit_id", "numerator", "denominator") if c in shown]].copy()
    out = out.reset_index(drop=True)
    x = out["numerator"].astype(float).to_numpy()
    n = out["denominator"].astype(float).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["proportion"] = x / n
    estimate = None
    if 0 < p0 < 1 and len(out) >= 2:
        estimate = estimate_overdispersion(x, n, p0, winsorise=winsorise)
    elif overdispersion != "none":
        raise AnalysisError(
            f"funnel: overdispersion {overdispersion!r} needs at least 2 shown units and 0 < p0 < 1"
            f" ({len(out)} unit(s), p0 = {p0})"
        )
    phi = estimate.phi if estimate else 1.0
    tau2 = estimate.tau2 if estimate else 0.0
    for level in levels:
        lo, hi = funnel_limits(p0, n, level, method=method, overdispersion=overdispersion, phi=phi, tau2=tau2)
        key = _level_key(level)
        out[f"lower_{key}"], out[f"upper_{key}"] = lo, hi
        # compared in counts, so a count on a limit is inside
        out[f"flag_{key}"] = np.where(x > hi * n + 1e-9, "high", np.where(x < lo * n - 1e-9, "low", ""))
    if coverage is not None:
        out["coverage"] = out["group"].map(coverage).astype(float).to_numpy()
        out["low_coverage"] = (out["coverage"] < LOW_COVERAGE).to_numpy()
    details = {
        "target p0": f"{p0 * 100:.2f} %",
        "units": f"{len(out)} unit(s) with published counts; {int(hidden.sum())} unit(s) hidden by disclosure"
        " control, not drawn and not used",
        "overdispersion": estimate.describe()
        if estimate
        else "not estimated (fewer than 2 units or p0 at 0 or 1)",
        "flag": "a unit is flagged when its count lies outside the limits (a count on a limit is inside)",
        "default": "exact binomial limits without overdispersion adjustment",
    }
    if coverage is not None:
        details["coverage"] = (
            f"coverage (dekningsgrad) of the same period beside each unit; below {LOW_COVERAGE:.0%} flagged as not"
            " comparable (missing where a coverage cell is hidden)"
        )
    definition = Definition(
        population="units and pooled small units of the indicator table",
        method=describe_limits(method, overdispersion, None, levels),
        details=details,
    )
    return Funnel(
        table=out, definition=definition, p0=p0, overdispersion=estimate, n_hidden=int(hidden.sum())
    )


#: Coverage (dekningsgrad) below which a unit's share is flagged as not comparable (as other Norwegian registers do).
LOW_COVERAGE = 0.6


def published_coverage(coverage: Any, year: int | None = None, *, rules: Any = "norway") -> Any:
    """Each unit's coverage (dekningsgrad) for ``year`` from a coverage result's *published* table.

    For all years (``year=None``): Σ registered / Σ expected over the unit's years, missing when any of those
    cells is hidden (a ratio over hidden cells could be solved for them).

    Parameters
    ----------
    coverage : CoverageResult or DataFrame
        :func:`kvarus_research.indicators.coverage`'s result (published under ``rules``), or a table with
        ``level, group, year, expected, registered``.

    Returns
    -------
    Series
        Coverage share by unit name (``group``).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"level": "unit", "group": ["A", "A", "B", "B"], "year": [2022, 2023] * 2,
    ...     "expected": [20, 20, 10, pd.NA], "registered": [18, 10, 5, pd.NA]})
    >>> published_coverage(t).round(2).to_dict()
    {'A': 0.7, 'B': nan}
    >>> published_coverage(t, 2022).to_dict()
    {'A': 0.9, 'B': 0.5}
    """
    import pandas as pd

    t = coverage if isinstance(coverage, pd.DataFrame) else coverage.published(rules).table
    t = t[(t["level"] == "unit").to_numpy(dtype=bool)]
    if year is not None:
        t = t[t["year"].eq(year).fillna(False).to_numpy(dtype=bool)]
    else:
        t = t[t["year"].notna().to_numpy(dtype=bool)]
    e = pd.to_numeric(t["expected"], errors="coerce").astype(float)
    r = pd.to_numeric(t["registered"], errors="coerce").astype(float)
    g = pd.DataFrame({"group": t["group"].to_numpy(), "e": e.to_numpy(), "r": r.to_numpy()}).groupby("group")
    # a unit with any hidden cell gets no coverage
    hidden = g["e"].apply(lambda s: s.isna().any()) | g["r"].apply(lambda s: s.isna().any())
    out = g["r"].sum() / g["e"].sum()
    out[hidden] = np.nan
    out.index.name = None
    return out
