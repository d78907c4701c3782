"""Case-mix adjustment of an indicator: expected counts from a logistic model, O/E with exact CIs, O/E funnel.

A unit that treats more severe patients may score lower on an indicator through no fault of its own. Indirect
standardisation asks how many courses of each unit *would* meet the indicator if its patients were treated as
the nation's are:

1. a logistic model of the indicator (1/0 per course in the denominator) on patient characteristics at the start
   of the course — without the unit — is fitted on all courses;
2. the expected count of a unit is the sum of its courses' fitted probabilities, ``E``; the observed is ``O``;
3. ``O/E`` with an exact CI — Poisson (Garwood: χ² quantiles, the default) or binomial (the Clopper–Pearson CI
   of ``O/n`` divided by ``E/n``), the user's choice — the indirectly standardised share ``O/E · p̄``
   (``p̄`` the national share), and a funnel of ``O/E`` against ``E`` with exact Poisson limits around 1
   (interpolated as for the binomial limits, :mod:`kvarus_research.indicators.limits`).

The crude share and its exact binomial funnel flag are shown beside the adjusted ones, and ``band_moved`` says when
the adjustment moves a unit across a target band.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import special, stats

from kvarus_research.errors import AnalysisError
from kvarus_research.indicators.framework import Target
from kvarus_research.indicators.limits import _level_key, exact_limits
from kvarus_research.results import Definition, Result
from kvarus_research.stats import exact_ci

#: How the O/E CI is computed: ``"poisson"`` (O ~ Poisson(E·θ), Garwood) or ``"binomial"`` (O ~ Binomial(n, p),
#: Clopper–Pearson CI of O/n divided by E/n).
OECIMethod = Literal["poisson", "binomial"]

#: Patient characteristics at the start of the course used by default (columns of the start registration).
DEFAULT_COVARIATES = ("age", "sex", "hovedrusmiddel", "alvorlighet_rus")
#: Covariates entered as categories even when coded as numbers (sex, main substance).
DEFAULT_CATEGORICAL = ("sex", "hovedrusmiddel")


def _poisson_quantile(p: float, mu: np.ndarray) -> np.ndarray:
    """Smallest integer r ≥ 0 with P(X ≤ r) ≥ p, X ~ Poisson(mu), by bisection on scipy.special.pdtr."""
    lo = np.zeros(mu.shape, dtype=np.int64)
    hi = np.ceil(mu + 12 * np.sqrt(mu) + 30).astype(np.int64)
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        ok = special.pdtr(mid, mu) >= p
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid + 1)
    return lo


def poisson_ratio_limits(expected: Any, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact funnel limits for O/E around 1 at ``level``, for expected counts ``expected``.

    For O ~ Poisson(E): lower ``(r − α)/E`` at p = (1 − level)/2 and upper ``(r + 1 − α)/E`` at p = (1 + level)/2,
    with r the Poisson quantile and α = (P(O ≤ r) − p)/P(O = r); an observed count lies outside exactly when the
    exact one-sided Poisson test rejects at (1 − level)/2.

    Examples
    --------
    >>> low, high = poisson_ratio_limits([10.0], 0.95)
    >>> round(float(low[0]), 3), round(float(high[0]), 3)
    (0.378, 1.716)
    """
    e = np.atleast_1d(np.asarray(expected, dtype=float))
    a = (1 - level) / 2
    out = []
    for p, shift in ((a, 0), (1 - a, 1)):
        r = _poisson_quantile(p, e)
        c = special.pdtr(r, e)
        c1 = np.where(r > 0, special.pdtr(np.maximum(r - 1, 0), e), 0.0)
        alpha = (c - p) / (c - c1)
        out.append(np.maximum(r + shift - alpha, 0) / e)
    return out[0], out[1]


def oe_ci(
    observed: Any,
    expected: Any,
    level: float = 0.95,
    *,
    method: OECIMethod = "poisson",
    n: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact CI for O/E.

    ``method="poisson"`` (default): Garwood's interval for O ~ Poisson(θ·E),
    [χ²(a/2; 2O)/2, χ²(1 − a/2; 2O + 2)/2] / E, the lower 0 when O = 0.
    ``method="binomial"``: O ~ Binomial(n, p); the Clopper–Pearson CI of O/n
    (:func:`kvarus_research.stats.exact_ci`) divided by E/n, i.e. [n·low/E, n·high/E]; needs ``n`` (courses per
    unit). The binomial interval is narrower when O/n is not small (it knows that O cannot exceed n), and its upper
    limit is at most n/E.

    Parameters
    ----------
    observed, expected : array-like
        Observed and expected counts per unit.
    level : float
        Confidence level.
    method : {"poisson", "binomial"}
        The exact interval (see above).
    n : array-like, optional
        Courses per unit (the binomial denominator); required for ``method="binomial"``.

    Returns
    -------
    low, high : ndarray
        Lower and upper limits of O/E.

    Examples
    --------
    >>> low, high = oe_ci([10], [10.0])
    >>> round(float(low[0]), 3), round(float(high[0]), 3)
    (0.48, 1.839)
    >>> low, high = oe_ci([10], [10.0], method="binomial", n=[20])
    >>> round(float(low[0]), 3), round(float(high[0]), 3)
    (0.544, 1.456)
    """
    o = np.atleast_1d(np.asarray(observed, dtype=float))
    e = np.atleast_1d(np.asarray(expected, dtype=float))
    a = 1 - level
    if method == "binomial":
        if n is None:
            raise AnalysisError("O/E CI: the binomial method needs n, the number of courses per unit")
        size = np.broadcast_to(np.atleast_1d(np.asarray(n, dtype=float)), o.shape)
        if np.any(o > size) or np.any(o < 0):
            raise AnalysisError("O/E CI: an observed count lies outside 0..n for the binomial method")
        low, high = exact_ci(o, size, a)
        return low * size / e, high * size / e
    if method != "poisson":
        raise AnalysisError(f"O/E CI method {method!r} is not one of 'poisson', 'binomial'")
    low = np.where(o > 0, stats.chi2.ppf(a / 2, 2 * np.maximum(o, 1e-300)) / 2, 0.0) / e
    high = stats.chi2.ppf(1 - a / 2, 2 * o + 2) / 2 / e
    return low, high


def _design(rows: pd.DataFrame, covariates: Sequence[str], categorical: Sequence[str]) -> pd.DataFrame:
    parts = []
    for c in covariates:
        col = rows[c]
        if (
            c not in categorical
            and pd.api.types.is_numeric_dtype(col)
            and not pd.api.types.is_bool_dtype(col)
        ):
            parts.append(col.astype(float).rename(c))
        else:
            parts.append(pd.get_dummies(col.astype("string"), prefix=c, drop_first=True, dtype=float))
    x = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=rows.index)
    x.insert(0, "const", 1.0)
    return x


class CaseMixResult(Result):
    """Crude and case-mix adjusted comparison of units on one indicator.

    Attributes
    ----------
    table : DataFrame
        Per unit (named as the ``unit`` column of the rows) and one ``pooled`` row for the units under the N
        limit: ``level, unit_id, n_units, n, observed, expected, crude_share, oe, oe_low, oe_high, adjusted_share, crude_flag,
        adjusted_flag`` and, with a target, ``crude_level, adjusted_level, band_moved``.
    definition : Definition
        Model (covariates, rows used), CI and limit methods.
    coefficients : DataFrame
        The logistic model's coefficients (log odds) with standard errors.
    """

    count_columns = ("n", "observed")
    derived_columns = {
        "crude_share": ("observed", "n"),
        "oe": "observed",
        "oe_low": "observed",
        "oe_high": "observed",
        "adjusted_share": "observed",
        "crude_flag": ("observed", "n"),
        "adjusted_flag": "observed",
    }

    def __init__(
        self,
        table: pd.DataFrame,
        definition: Definition,
        coefficients: pd.DataFrame,
        target: Target | None = None,
    ) -> None:
        self.table = table
        self.definition = definition
        self.coefficients = coefficients
        self.target = target

    def _draw_context(self) -> dict[str, Any]:
        return {"target": self.target}

    @classmethod
    def _draw(
        cls,
        protected: Any,
        ax: Any,
        definition: Definition,
        kind: str = "funnel",
        *,
        target: Target | None = None,
        **kwargs: Any,
    ) -> Any:
        """Draw from the protected table: ``"funnel"`` (O/E against E, exact Poisson limits around 1) or
        ``"compare"`` (crude and adjusted share per unit side by side, with the target bands).

        Units whose observed count is hidden are not drawn; the legend counts them with the rules' marker.
        """
        import matplotlib.pyplot as plt

        from kvarus_research.indicators.plots import target_bands
        from kvarus_research.results import SUPPRESSED_GID, marker_of

        t = protected.table
        hidden = t["observed"].isna() | t["oe"].isna()
        shown = t[~hidden.to_numpy(dtype=bool)]
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 4.5))
        if kind == "funnel":
            e = shown["expected"].astype(float).to_numpy()
            ax.scatter(e, shown["oe"].astype(float), color=np.where(shown["adjusted_flag"] != "", "#cb181d",
                       "#2171b5"), s=18, zorder=3, label="unit")  # fmt: skip
            grid = np.geomspace(max(0.5, e.min() * 0.8) if len(e) else 0.5, max(10.0, e.max() * 1.2 if len(e) else 10),
                                300)  # fmt: skip
            for level, style in ((0.95, "--"), (0.998, ":")):
                low, high = poisson_ratio_limits(grid, level)
                ax.plot(grid, low, style, color="grey", lw=1, label=f"{level * 100:g} % limits")
                ax.plot(grid, high, style, color="grey", lw=1)
            ax.axhline(1.0, color="black", lw=1, label="O/E = 1")
            ax.set_xlabel("Expected (E)")
            ax.set_ylabel("Observed / expected")
        elif kind == "compare":
            y = np.arange(len(shown))
            target_bands(ax, target)
            crude = shown["crude_share"].astype(float).to_numpy() * 100
            adj = shown["adjusted_share"].astype(float).to_numpy() * 100
            ax.hlines(y, crude, adj, color="grey", lw=1)
            ax.scatter(crude, y, color="white", edgecolors="#2171b5", zorder=3, label="crude")
            ax.scatter(adj, y, color="#2171b5", zorder=3, label="case-mix adjusted")
            labels = [f"pooled, {k} units" if lv == "pooled" else str(u)
                      for lv, u, k in zip(shown["level"], shown.iloc[:, 1], shown["n_units"], strict=True)]  # fmt: skip
            ax.set_yticks(y, labels, fontsize=8)
            ax.set_xlim(0, 100)
            ax.set_xlabel("Percent")
        else:
            raise AnalysisError(f"plot kind {kind!r} is not one of 'funnel', 'compare'")
        if hidden.any():
            (note,) = ax.plot(
                [], [], " ", label=f"{int(hidden.sum())} unit(s) not shown ({marker_of(protected)})"
            )
            note.set_gid(SUPPRESSED_GID)
        ax.legend(fontsize=7)
        return ax


def casemix_adjust(
    rows: pd.DataFrame,
    *,
    outcome: str = "numerator",
    unit: str = "unit_id",
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    categorical: Sequence[str] = DEFAULT_CATEGORICAL,
    level: float = 0.998,
    ci_level: float = 0.95,
    ci_method: OECIMethod = "poisson",
    target: Target | None = None,
    n_limit: int = 10,
) -> CaseMixResult:
    """Observed/expected per unit from a logistic model of ``outcome`` on ``covariates`` (no unit term).

    Parameters
    ----------
    rows : DataFrame
        One row per course in the indicator's denominator: ``unit``, ``outcome`` (1/0 or bool) and the covariates
        (patient characteristics at the start of the course).
    covariates : sequence of str
        Numeric columns enter linearly, others and those in ``categorical`` as categories (first level the
        reference). Default
        :data:`DEFAULT_COVARIATES`: age, sex, main substance (hovedrusmiddel) and severity (alvorlighet_rus) at
        the start. Rows missing any covariate are left out of the model and of the comparison (counted in the
        definition).
    level : float
        Level of the funnel limits used for the crude and adjusted flags (default 99.8 %).
    ci_level : float
        Level of the O/E CI.
    ci_method : {"poisson", "binomial"}
        The exact O/E CI (:func:`oe_ci`): ``"poisson"`` (Garwood, the default) or ``"binomial"`` (Clopper–Pearson
        CI of O/n divided by E/n). The definition names the one used.
    target : Target, optional
        Target bands: the crude and adjusted shares' levels, and whether the adjustment moves a unit across one.
    n_limit : int
        Units with fewer courses than this are pooled into one ``pooled`` row (``n_units`` says how many), as in
        the indicator table.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> rows = pd.DataFrame({"unit_id": np.repeat([1, 2], 200), "age": rng.normal(40, 10, 400)})
    >>> rows["numerator"] = rng.random(400) < 1 / (1 + np.exp(-(rows["age"] - 40) / 10))
    >>> res = casemix_adjust(rows, covariates=["age"])
    >>> round(float(res.table["expected"].sum()), 1) == float(rows["numerator"].sum())
    True
    """
    import statsmodels.api as sm

    missing = [c for c in (unit, outcome, *covariates) if c not in rows]
    if missing:
        raise AnalysisError(
            f"case-mix: columns {missing} are not in the rows (have {list(rows.columns)[:12]})"
        )
    complete = rows[[unit, outcome, *covariates]].dropna()
    n_dropped = len(rows) - len(complete)
    if complete.empty:
        raise AnalysisError("case-mix: no row has every covariate")
    y = complete[outcome].astype(float).to_numpy()
    x = _design(complete, covariates, categorical)
    fit = sm.GLM(y, x, family=sm.families.Binomial()).fit()
    prob = np.asarray(fit.predict(x), dtype=float)
    g = pd.DataFrame({"unit": complete[unit].to_numpy(), "y": y, "p": prob}).groupby("unit", sort=True)
    t = pd.DataFrame({"n": g["y"].size(), "observed": g["y"].sum(), "expected": g["p"].sum()})
    t = t.rename_axis(unit).reset_index()
    t.insert(0, "level", "unit")
    t.insert(2, "n_units", 1)
    small = (t["n"] < n_limit).to_numpy()
    if small.any():  # pooled as in the indicator table: one row for the units under the N limit
        pooled = pd.DataFrame({"level": ["pooled"], unit: [pd.NA], "n_units": [int(small.sum())],
                               "n": [t.loc[small, "n"].sum()], "observed": [t.loc[small, "observed"].sum()],
                               "expected": [t.loc[small, "expected"].sum()]})  # fmt: skip
        t = pd.concat([t[~small], pooled], ignore_index=True)
    t["n"] = t["n"].astype("Int64")
    t["observed"] = t["observed"].round().astype("Int64")
    o, e, n = t["observed"].to_numpy(float), t["expected"].to_numpy(float), t["n"].to_numpy(float)
    p_bar = y.mean()
    t["crude_share"] = o / n
    t["oe"] = o / e
    t["oe_low"], t["oe_high"] = oe_ci(o, e, ci_level, method=ci_method, n=n)
    t["adjusted_share"] = t["oe"] * p_bar
    lo, hi = exact_limits(p_bar, n, level)
    t["crude_flag"] = np.where(o > hi * n + 1e-9, "high", np.where(o < lo * n - 1e-9, "low", ""))
    lo, hi = poisson_ratio_limits(e, level)
    t["adjusted_flag"] = np.where(o > hi * e + 1e-9, "high", np.where(o < lo * e - 1e-9, "low", ""))
    if target is not None:
        t["crude_level"] = [target.level(v) for v in t["crude_share"]]
        t["adjusted_level"] = [target.level(v) for v in t["adjusted_share"]]
        t["band_moved"] = t["crude_level"] != t["adjusted_level"]
    coefficients = pd.DataFrame({"coef": fit.params, "se": fit.bse})
    definition = Definition(
        population=f"{len(complete)} courses in the indicator's denominator with every covariate"
        f" ({n_dropped} left out for a missing covariate)",
        method="indirect standardisation: logistic model of the indicator on patient characteristics at start"
        " (no unit term); expected = sum of fitted probabilities per unit",
        details={
            "covariates": ", ".join(covariates),
            "as categories": ", ".join(
                c for c in covariates if c in categorical or not pd.api.types.is_numeric_dtype(complete[c])
            ),
            "national share p̄": f"{p_bar * 100:.2f} %",
            "small units": f"units with fewer than {n_limit} courses pooled into one row",
            "O/E CI": (
                f"exact Poisson (Garwood: O ~ Poisson(θ·E), χ² quantiles), {ci_level * 100:g} %"
                if ci_method == "poisson"
                else f"exact binomial (O ~ Binomial(n, p): Clopper–Pearson CI of O/n divided by E/n),"
                f" {ci_level * 100:g} %"
            ),
            "adjusted share": "O/E · p̄ (indirectly standardised)",
            "flags": f"crude: exact binomial funnel around p̄; adjusted: exact Poisson funnel of O/E around 1;"
            f" both at {level * 100:g} % (flag_{_level_key(level)})",
        },
    )
    return CaseMixResult(t, definition, coefficients, target)


def start_characteristics(registry: Any, covariates: Sequence[str] = DEFAULT_COVARIATES) -> pd.DataFrame:
    """Patient characteristics at the start of each course: the ``baseline`` registration's values, one row per
    course in the order of ``registry.courses`` (missing where the course has no baseline registration).

    Examples
    --------
    >>> import kvarus_research as kr
    >>> reg = kr.synthetic.generate(n_courses=50, seed=1)
    >>> start_characteristics(reg).shape == (len(reg.courses), 4)
    True
    """
    regs = registry.registrations
    missing = [c for c in covariates if c not in regs]
    if missing:
        raise AnalysisError(
            f"case-mix: {missing} are not registration fields (have e.g. {list(regs.columns)[8:16]})"
        )
    base = regs[regs["kind"] == "baseline"].drop_duplicates("course_id").set_index("course_id")
    return base.reindex(registry.courses["course_id"].to_numpy())[list(covariates)].reset_index(drop=True)


def indicator_casemix(
    result: Any,
    data: Any,
    *,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    level: float = 0.998,
    ci_level: float = 0.95,
    ci_method: OECIMethod = "poisson",
    n_limit: int = 10,
) -> CaseMixResult:
    """Case-mix adjust a per-course indicator: its flags on ``data`` joined with :func:`start_characteristics`.

    The unit of each course is the indicator's (e.g. that of the first measurement point), as in its table.

    Parameters
    ----------
    result : IndicatorResult
        The indicator (its definition and target are used; the flags are recomputed on ``data``).
    data : Registry or Cohort
        The data the indicator was computed on.
    covariates, level, ci_level, ci_method, n_limit
        As in :func:`casemix_adjust`.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> from kvarus_research.indicators import MUTUAL_AGREEMENT
    >>> reg = kr.synthetic.generate(n_courses=600, seed=1)
    >>> cm = indicator_casemix(MUTUAL_AGREEMENT.compute(reg), reg)
    >>> cm.definition.details["as categories"]
    'sex, hovedrusmiddel'
    >>> bool(abs(cm.table["expected"].sum() - cm.table["observed"].sum()) < 1e-6)  # the intercept keeps the total
    True
    """
    from kvarus_research.indicators.framework import as_registry, check_flags

    registry = as_registry(data)
    ind = result.indicator
    flags = check_flags(ind.flags(registry), ind.key)
    courses = registry.courses
    if len(flags) != len(courses) or not flags.index.equals(courses.index):
        raise AnalysisError(
            f"case-mix: indicator {ind.key!r} does not have one flag row per course (in course order); only"
            " per-course indicators can be adjusted for characteristics at the start of the course"
        )
    rows = pd.concat([flags.reset_index(drop=True), start_characteristics(registry, covariates)], axis=1)
    rows = rows[rows["denominator"].to_numpy(dtype=bool)]
    return casemix_adjust(rows.assign(numerator=rows["numerator"].astype(bool)), outcome="numerator",
                          unit="unit_id", covariates=covariates, level=level, ci_level=ci_level, ci_method=ci_method,
                          n_limit=n_limit, target=result.target)  # fmt: skip
