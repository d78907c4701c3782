"""Longitudinal models over all timepoints: linear mixed model (statsmodels MixedLM) or GEE.

Every registered value of the outcome at the chosen timepoints enters (no complete-case restriction: the mixed
model is valid when values are missing at random given the observed ones). Time is a category (one mean per
timepoint, the first as reference) or continuous (years since course start, ``days_since_start / 365.25``).
Baseline covariates are course-level values taken at the first timepoint (or from the course table).

Estimated marginal means (EMMs) per timepoint are ``L beta`` with ``L`` the design row of that timepoint and every
covariate column at its mean over the analysed observations (so categorical covariates are averaged over their
observed distribution); their variance is ``L V L'`` with ``V`` the fixed effects' covariance (model-based for
MixedLM, robust sandwich for GEE), and the CI is normal (Wald).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.regression.mixed_linear_model import MixedLMParams

from kvarus_research.codebook import Codebook
from kvarus_research.errors import AnalysisError
from kvarus_research.outcomes._data import (
    check_ci,
    check_columns,
    check_timepoints,
    course_values,
    long_frame,
    numeric,
    resolve_codebook,
)
from kvarus_research.results import Definition, Result, draw_marker, hidden


class LongitudinalResult(Result):
    """Estimated marginal means by timepoint from a mixed model or GEE.

    Attributes
    ----------
    table : DataFrame
        ``timepoint, time_years, n_obs, emm, se, ci_low, ci_high, diff, diff_ci_low, diff_ci_high`` (``diff`` =
        EMM minus the first timepoint's EMM).
    coefficients : DataFrame
        Fixed effects: ``term, estimate, se, ci_low, ci_high, p_value``.
    model : statsmodels results
        The fitted model (MixedLMResults or GEEResults).
    data : DataFrame
        The analysed observations (row level: for plotting, never exported).
    exclusions : dict
        Counts of observations and courses left out, by reason.
    """

    count_columns = ("n_obs",)
    derived_columns = {
        c: "n_obs" for c in ("emm", "se", "ci_low", "ci_high", "diff", "diff_ci_low", "diff_ci_high")
    }

    def __init__(
        self,
        table: pd.DataFrame,
        coefficients: pd.DataFrame,
        model: Any,
        data: pd.DataFrame,
        exclusions: dict[str, int],
        definition: Definition,
        label: str,
    ) -> None:
        self.table = table
        self.coefficients = coefficients
        self.model = model
        self.data = data
        self.exclusions = exclusions
        self.definition = definition
        self.label = label

    def _draw_context(self) -> dict[str, Any]:
        return {"label": self.label}

    @classmethod
    def _draw(cls, protected: Any, ax: Any, definition: Definition, *, label: str = "", spaghetti: int = 0,
              **kwargs: Any) -> Any:  # fmt: skip
        """Trajectory plot: EMMs with CIs by timepoint, from the protected table.

        A timepoint whose ``n_obs`` is suppressed has no point (its mean is derived from the hidden count) and
        shows the rules' marker. Individual trajectories (the former ``spaghetti=``) are row-level data that no
        disclosure control covers: they are not drawn (a warning says so). ``color`` sets the line colour.
        """
        import warnings

        import matplotlib.pyplot as plt

        if spaghetti:
            warnings.warn("spaghetti= is ignored: individual trajectories are row-level data and are not drawn",
                          UserWarning, stacklevel=3)  # fmt: skip
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4.5))
        tab = protected.table.reset_index(drop=True)
        continuous = definition.details.get("time") == "continuous"
        xpos = tab["time_years"].astype(float).to_numpy() if continuous else np.arange(len(tab), dtype=float)
        gone = hidden(protected, "n_obs") | hidden(protected, "emm")
        emm = tab["emm"].astype(float).to_numpy()
        lo, hi = tab["ci_low"].astype(float).to_numpy(), tab["ci_high"].astype(float).to_numpy()
        shown = np.where(gone, np.nan, emm)  # a hidden timepoint breaks the line
        ok = ~np.isnan(shown)
        ax.errorbar(xpos[ok], shown[ok], yerr=np.vstack([shown[ok] - lo[ok], hi[ok] - shown[ok]]), fmt="o",
                    color=kwargs.get("color", "C0"), capsize=4)  # fmt: skip
        ax.plot(xpos, shown, "-", color=kwargs.get("color", "C0"), lw=2)
        if gone.any():
            y_mid = float(np.nanmean(shown)) if ok.any() else 0.5
            for x in xpos[gone]:
                draw_marker(ax, x, y_mid, protected)
        if continuous:
            ax.set_xlabel("Years since course start")
            for x, name in zip(xpos, tab["timepoint"], strict=True):
                ax.annotate(str(name), (x, ax.get_ylim()[0]), fontsize=8, ha="center", va="bottom")
        else:
            ax.set_xticks(xpos, tab["timepoint"])
            ax.set_xlabel("Timepoint")
        ax.set_ylabel(label)
        model, level = definition.details.get("model", ""), definition.details.get("ci", "")
        ax.set_title(f"{label}\nestimated marginal means ({model}, {level} CI)", fontsize=10)
        return ax


def _design(
    data: Any,
    long: pd.DataFrame,
    outcome: str,
    timepoints: list[str],
    covariates: Sequence[str],
    cb: Codebook,
    courses: pd.DataFrame | None,
) -> tuple[pd.DataFrame, list[str], dict[str, int]]:
    rows = long[long["timepoint"].astype(str).isin(timepoints)]
    y = numeric(rows[outcome])
    days = (
        numeric(rows["days_since_start"])
        if "days_since_start" in rows.columns
        else np.full(len(rows), np.nan)
    )
    frame = pd.DataFrame(
        {
            "course_id": rows["course_id"].to_numpy(),
            "tp": pd.Categorical(rows["timepoint"].astype(str), categories=timepoints),
            "t": days / 365.25,
            "y": y,
        }
    )
    excl = {"observations_missing_outcome": int(np.isnan(y).sum())}
    frame = frame[~np.isnan(y)]
    terms = []
    if covariates:
        cov = course_values(data, long, list(covariates), at=timepoints[0], courses=courses)
        for i, name in enumerate(covariates):
            col = f"c{i}"
            var = name.partition("@")[0]
            is_enum = var in cb and cb.variable(var).type == "enum"
            vals = cov[name]
            if is_enum or not pd.api.types.is_numeric_dtype(vals):
                if is_enum:
                    vals = vals.where(~vals.isin(list(cb.variable(var).missing_codes)))
                frame[col] = vals.reindex(frame["course_id"]).astype(object).to_numpy()
                terms.append(f"C({col})")
            else:
                frame[col] = numeric(vals.reindex(frame["course_id"]))
                terms.append(col)
        cols = [f"c{i}" for i in range(len(covariates))]
        bad = frame[cols].isna().any(axis=1)
        excl["courses_missing_covariate"] = int(frame.loc[bad, "course_id"].nunique())
        excl["observations_missing_covariate"] = int(bad.sum())
        frame = frame[~bad]
    return frame.reset_index(drop=True), terms, excl


def _start_params(model: Any, groups: np.ndarray, reml: bool) -> MixedLMParams:
    """Start values for a random-intercept model at the (RE)ML optimum, found by a fast vectorised search.

    With ``V_i = sigma^2 (I + g J)`` for a course with ``n_i`` values, ``V_i^-1 = (I - g/(1 + n_i g) J) / sigma^2``,
    so ``X'V^-1 X``, ``X'V^-1 y`` and ``y'V^-1 y`` need only per-course column sums. The profile log-likelihood in
    ``g`` (REML: ``-(N-p)/2 log r'Wr - 1/2 sum log(1 + n_i g) - 1/2 log|X'WX|``) is maximised over ``log g``;
    statsmodels then starts at the optimum, so its optimiser only confirms it (one or two likelihood passes over
    the courses instead of many) before computing the Hessian for the standard errors.
    """
    y = np.asarray(model.endog, dtype=float)
    X = np.asarray(model.exog, dtype=float)
    codes, _ = pd.factorize(groups)
    n_g = np.bincount(codes).astype(float)
    sx = np.zeros((len(n_g), X.shape[1]))
    np.add.at(sx, codes, X)
    sy = np.bincount(codes, weights=y)
    xtx, xty, yty = X.T @ X, X.T @ y, y @ y
    n, p = X.shape
    dof = n - p if reml else n

    def parts(g: float) -> tuple[float, np.ndarray]:
        c = g / (1 + n_g * g)
        a = xtx - (sx * c[:, None]).T @ sx
        b = xty - (sx * c[:, None]).T @ sy
        beta = np.linalg.solve(a, b)
        rss = yty - np.sum(c * sy**2) - beta @ b
        ll = -0.5 * dof * np.log(rss) - 0.5 * np.sum(np.log1p(n_g * g))
        if reml:
            ll -= 0.5 * np.linalg.slogdet(a)[1]
        return float(ll), beta

    from scipy.optimize import minimize_scalar

    opt = minimize_scalar(lambda lg: -parts(float(np.exp(lg)))[0], bounds=(-12, 8), method="bounded",
                          options={"xatol": 1e-9})  # fmt: skip
    g = float(np.exp(opt.x))
    return MixedLMParams.from_components(fe_params=parts(g)[1], cov_re=np.array([[g]]))


def longitudinal(
    data: Any,
    outcome: str,
    *,
    time: str = "category",
    timepoints: Sequence[str] | None = None,
    covariates: Sequence[str] = (),
    random_slope: bool = False,
    method: str = "mixed",
    ci: float = 0.95,
    reml: bool = True,
    courses: pd.DataFrame | None = None,
    codebook: Codebook | None = None,
    language: str = "en",
) -> LongitudinalResult:
    """Fit a linear mixed model (random intercept per course, optional random slope) or a GEE over timepoints.

    Parameters
    ----------
    data : Timepoints or DataFrame
        The timepoint long format (needs ``days_since_start`` for continuous time or random slopes).
    outcome : str
        A continuous outcome of the codebook.
    time : {"category", "continuous"}
        Time as one mean per timepoint, or linear in years since course start.
    timepoints : sequence of str, optional
        Timepoints to model, in order; by default all, ordered by ``timepoint_order``.
    covariates : sequence of str
        Baseline covariates (long-format columns at the first timepoint, ``"x@timepoint"``, or course-table
        columns such as ``age_at_start``); codebook enums enter as categories. Courses missing one are counted
        and left out.
    random_slope : bool
        MixedLM only: a random slope on years since start, correlated with the intercept.
    method : {"mixed", "gee"}
        statsmodels MixedLM (REML by default) or GEE with exchangeable working correlation and robust SEs.
    ci : float
    reml : bool
    courses : DataFrame, optional
        Course table for course-level covariates.
    codebook : Codebook, optional
    language : str

    Returns
    -------
    LongitudinalResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> u = np.repeat(rng.normal(0, 2, 40), 3)
    >>> long = pd.DataFrame({"course_id": np.repeat(np.arange(40), 3),
    ...     "timepoint": ["baseline", "MP1", "ending"] * 40, "timepoint_order": [0, 1, 2] * 40,
    ...     "dager_rus_30": 15 + u - np.tile([0, 3, 6], 40) + rng.normal(0, 1, 120)})
    >>> res = longitudinal(long, "dager_rus_30", method="gee")
    >>> res.table["timepoint"].tolist()
    ['baseline', 'MP1', 'ending']
    >>> bool(res.table["diff"].iloc[-1] < -4)
    True
    """
    ci = check_ci(ci)
    if time not in ("category", "continuous"):
        raise AnalysisError(f"time must be 'category' or 'continuous', got {time!r}")
    if method not in ("mixed", "gee"):
        raise AnalysisError(f"method must be 'mixed' or 'gee', got {method!r}")
    long = long_frame(data)
    check_columns(long, [outcome])
    cb = resolve_codebook(data, codebook)
    if timepoints is None:
        order = (
            long.groupby("timepoint", sort=False)["timepoint_order"].min()
            if "timepoint_order" in long
            else None
        )
        timepoints = (
            list(order.sort_values().index.astype(str))
            if order is not None
            else list(pd.unique(long["timepoint"]))
        )
    timepoints = list(timepoints)
    check_timepoints(long, timepoints)
    if (time == "continuous" or random_slope) and "days_since_start" not in long.columns:
        raise AnalysisError("continuous time and random slopes need the column 'days_since_start'")
    frame, terms, excl = _design(data, long, outcome, timepoints, covariates, cb, courses)
    if time == "continuous" or random_slope:
        bad = frame["t"].isna()
        excl["observations_missing_days_since_start"] = int(bad.sum())
        frame = frame[~bad].reset_index(drop=True)
    if frame["course_id"].nunique() < 3:
        raise AnalysisError(f"longitudinal model of {outcome!r}: fewer than 3 courses with values")
    rhs = ["tp" if time == "category" else "t", *terms]
    if time == "category":
        rhs[0] = "C(tp)"
    formula = "y ~ " + " + ".join(rhs)
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        if method == "mixed":
            model = smf.mixedlm(
                formula, frame, groups=frame["course_id"], re_formula="~t" if random_slope else None
            )
            start = None if random_slope else _start_params(model, frame["course_id"].to_numpy(), reml)
            fit = model.fit(reml=reml, method=["lbfgs"], start_params=start)
            fe = fit.fe_params
            desc = f"linear mixed model (statsmodels MixedLM, {'REML' if reml else 'ML'}), random intercept per course"
            desc += " and random slope on years since start" if random_slope else ""
        else:
            model = smf.gee(formula, groups="course_id", data=frame, cov_struct=sm.cov_struct.Exchangeable())
            fit = model.fit()
            fe = fit.params
            desc = "GEE (statsmodels), Gaussian, exchangeable working correlation, robust sandwich SEs"
        caught = sorted({str(x.message).splitlines()[0] for x in w})
    names = list(fe.index)
    vcov = fit.cov_params().loc[names, names].to_numpy()
    beta = fe.to_numpy()
    table, coefs = _emms(model, frame, beta, vcov, names, timepoints, time, ci)
    cov_names = {f"c{i}": name for i, name in enumerate(covariates)}
    coefs["term"] = coefs["term"].str.replace(r"\bc(\d+)\b", lambda m: cov_names[m.group(0)], regex=True)
    meta_label = cb.label(outcome, language)
    definition = Definition(
        population=f"registered values of {outcome!r} at {', '.join(timepoints)} (all observed values, MAR)",
        method=desc + "; estimated marginal means with covariates at their means, normal (Wald) CIs",
        details={
            "formula": _readable(formula, covariates),
            "covariates": ", ".join(covariates) or "none",
            "time": time,
            "model": "MixedLM" if method == "mixed" else "GEE",
            "ci": f"{ci:.0%}",
            "courses": int(frame["course_id"].nunique()),
            "observations": len(frame),
            "exclusions": excl,
            "warnings": "; ".join(caught) or "none",
        },
    )
    return LongitudinalResult(table, coefs, fit, frame, excl, definition, meta_label)


def _readable(formula: str, covariates: Sequence[str]) -> str:
    """The model formula with the outcome, timepoint and covariate names a reader knows."""
    names = {f"c{i}": name for i, name in enumerate(covariates)}
    out = re.sub(r"\bc(\d+)\b", lambda m: names.get(m.group(0), m.group(0)), formula)
    return out.replace("C(tp)", "C(timepoint)").replace("y ~", "outcome ~")


def _emms(
    model: Any,
    frame: pd.DataFrame,
    beta: np.ndarray,
    vcov: np.ndarray,
    names: list[str],
    timepoints: list[str],
    time: str,
    ci: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    exog = np.asarray(model.exog)[:, : len(names)]
    xbar = exog.mean(axis=0)
    dummies = {n: n[len("C(tp)[T.") : -1] for n in names if n.startswith("C(tp)[T.")}
    time_cols = np.array([n in dummies or n == "t" for n in names])
    if time == "category" and len(dummies) != len(timepoints) - 1:
        raise AnalysisError(
            f"internal: expected {len(timepoints) - 1} timepoint columns, found {sorted(dummies)}"
        )
    z = stats.norm.ppf((1 + ci) / 2)
    mean_t = frame.groupby("tp", observed=False)["t"].mean()
    n_obs = frame["tp"].value_counts().reindex(timepoints, fill_value=0)
    rows, ls = [], []
    for tp in timepoints:
        row = np.array(
            [float(dummies.get(n) == tp) if n in dummies else float(mean_t.get(tp, np.nan)) for n in names]
        )
        L = np.where(time_cols, row, xbar)
        ls.append(L)
        est, se = float(L @ beta), float(np.sqrt(L @ vcov @ L))
        rows.append({"timepoint": tp, "time_years": float(mean_t.get(tp, np.nan)), "n_obs": int(n_obs[tp]),
                     "emm": est, "se": se, "ci_low": est - z * se, "ci_high": est + z * se})  # fmt: skip
    for r, L in zip(rows, ls):
        D = L - ls[0]
        d, se = float(D @ beta), float(np.sqrt(max(D @ vcov @ D, 0.0)))
        r.update(diff=d, diff_ci_low=d - z * se, diff_ci_high=d + z * se)
    se_b = np.sqrt(np.diag(vcov))
    coefs = pd.DataFrame(
        {
            "term": [n.replace("C(tp)[T.", "timepoint[").replace("tp", "timepoint") for n in names],
            "estimate": beta,
            "se": se_b,
            "ci_low": beta - z * se_b,
            "ci_high": beta + z * se_b,
            "p_value": 2 * stats.norm.sf(np.abs(beta / se_b)),
        }
    )
    return pd.DataFrame(rows), coefs
