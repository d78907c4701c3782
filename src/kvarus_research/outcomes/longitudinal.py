"""Longitudinal models over all timepoints: linear mixed model (statsmodels MixedLM) or GEE.

Every registered value of the outcome at the chosen timepoints enters (no complete-case restriction: the mixed
model is valid when values are missing at random given the observed ones). Time is a category (one mean per
timepoint, the first as reference) or continuous (time since course start in the unit chosen by ``time_unit``:
days, weeks, months (default, ``days_since_start / 30.4375``) or years (``/ 365.25``)); random slopes are on the
same scale.
Baseline covariates are course-level values taken at the first timepoint (or from the course table).

Estimated marginal means (EMMs) per timepoint are ``L beta`` with ``L`` the design row of that timepoint and every
covariate column at its mean over the analysed observations (so categorical covariates are averaged over their
observed distribution); their variance is ``L V L'`` with ``V`` the fixed effects' covariance (model-based for
MixedLM, robust sandwich for GEE). For REML mixed models the CIs and p-values are t on Satterthwaite degrees of
freedom (as R's lmerTest; ``ddf="normal"`` for Wald ones); for GEE they are normal (Wald).

Mixed-model standard errors are by default the standard model-based ones that lme4, nlme and SAS report:
``Cov(beta) = (X' V^-1 X)^-1`` with ``V`` block-diagonal, ``V_i = Z_i G Z_i' + sigma^2 I`` at the (RE)ML estimates
(computed per course by the Woodbury identity). ``se="hessian"`` gives statsmodels' inverse of the full observed
information including the variance parameters, as before.
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
from kvarus_research.outcomes._emm import _emms
from kvarus_research.outcomes._mixed import _start_params, model_based_cov, satterthwaite_df
from kvarus_research.results import Definition, Result, draw_marker, hidden

TIME_UNITS: dict[str, float] = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25}


class LongitudinalResult(Result):
    """Estimated marginal means by timepoint from a mixed model or GEE.

    Attributes
    ----------
    table : DataFrame
        ``timepoint, time, time_years, n_obs, emm, se, ci_low, ci_high, diff, diff_ci_low, diff_ci_high``
        (``time`` = mean time since start in ``time_unit``, ``diff`` = EMM minus the first timepoint's EMM).
    coefficients : DataFrame
        Fixed effects: ``term, estimate, se, df, ci_low, ci_high, p_value`` (``df`` Satterthwaite, or ``inf``
        for normal intervals).
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
        tcol = "time" if "time" in tab.columns else "time_years"
        xpos = tab[tcol].astype(float).to_numpy() if continuous else np.arange(len(tab), dtype=float)
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
            unit = definition.details.get("time unit", "years") if tcol == "time" else "years"
            ax.set_xlabel(f"{str(unit).capitalize()} since course start")
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
    days_per_unit: float = TIME_UNITS["months"],
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
            "t": days / days_per_unit,
            "t_years": days / 365.25,
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
    time_unit: str = "months",
    se: str = "model",
    ddf: str | None = None,
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
        Time as one mean per timepoint, or linear in time since course start (in ``time_unit``).
    timepoints : sequence of str, optional
        Timepoints to model, in order; by default all, ordered by ``timepoint_order``.
    covariates : sequence of str
        Baseline covariates (long-format columns at the first timepoint, ``"x@timepoint"``, or course-table
        columns such as ``age_at_start``); codebook enums enter as categories. Courses missing one are counted
        and left out.
    random_slope : bool
        MixedLM only: a random slope on time since start (in ``time_unit``), correlated with the intercept.
    method : {"mixed", "gee"}
        statsmodels MixedLM (REML by default) or GEE with exchangeable working correlation and robust SEs.
    ci : float
    reml : bool
    time_unit : {"days", "weeks", "months", "years"}
        Unit of continuous time and of random slopes: the slope is the change per unit (a month is
        365.25 / 12 days).
    se : {"model", "hessian"}
        MixedLM fixed-effect covariance: model-based ``(X' V^-1 X)^-1`` as lme4 reports it (default), or
        statsmodels' inverse of the full Hessian including the variance parameters.
    ddf : {"satterthwaite", "normal"}, optional
        MixedLM (REML) only: t intervals and p-values on Satterthwaite degrees of freedom for every coefficient,
        EMM and difference (as R's lmerTest), or normal (Wald) ones. By default Satterthwaite for REML mixed
        models and normal otherwise (ML fits, GEE).
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
    if time_unit not in TIME_UNITS:
        raise AnalysisError(f"time_unit must be one of {sorted(TIME_UNITS)}, got {time_unit!r}")
    if se not in ("model", "hessian"):
        raise AnalysisError(f"se must be 'model' or 'hessian', got {se!r}")
    if ddf is None:
        ddf = "satterthwaite" if method == "mixed" and reml else "normal"
    if ddf not in ("satterthwaite", "normal"):
        raise AnalysisError(f"ddf must be 'satterthwaite' or 'normal', got {ddf!r}")
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
    frame, terms, excl = _design(
        data, long, outcome, timepoints, covariates, cb, courses, TIME_UNITS[time_unit]
    )
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
            desc += f" and random slope on {time_unit} since start" if random_slope else ""
        else:
            model = smf.gee(formula, groups="course_id", data=frame, cov_struct=sm.cov_struct.Exchangeable())
            fit = model.fit()
            fe = fit.params
            desc = "GEE (statsmodels), Gaussian, exchangeable working correlation, robust sandwich SEs"
        caught = sorted({str(x.message).splitlines()[0] for x in w})
    names = list(fe.index)
    if method == "mixed" and se == "model":
        vcov = model_based_cov(model, fit)
        se_desc = "model-based SEs (X'V^-1 X)^-1 as in lme4"
    elif method == "mixed":
        vcov = fit.cov_params().loc[names, names].to_numpy()
        se_desc = "SEs from statsmodels' full-Hessian inverse (including the variance parameters)"
    else:
        vcov = fit.cov_params().loc[names, names].to_numpy()
        se_desc = "robust sandwich SEs"
    if method == "mixed":
        desc += "; " + se_desc
    beta = fe.to_numpy()
    df_fn = None
    if method == "mixed" and ddf == "satterthwaite":
        if not reml:
            raise AnalysisError(
                "ddf='satterthwaite' is implemented for REML fits: pass reml=True or ddf='normal'"
            )
        df_fn = lambda L: satterthwaite_df(model, fit, L)  # noqa: E731
    table, coefs = _emms(model, frame, beta, vcov, names, timepoints, time, ci, df_fn)
    if df_fn is not None and not np.isfinite(coefs["df"]).all():
        caught.append("Satterthwaite df not available (a variance on the boundary): normal quantiles used")
    cov_names = {f"c{i}": name for i, name in enumerate(covariates)}
    coefs["term"] = coefs["term"].str.replace(r"\bc(\d+)\b", lambda m: cov_names[m.group(0)], regex=True)
    meta_label = cb.label(outcome, language)
    definition = Definition(
        population=f"registered values of {outcome!r} at {', '.join(timepoints)} (all observed values, MAR)",
        method=desc
        + "; estimated marginal means with covariates at their means, "
        + ("t CIs on Satterthwaite df" if df_fn is not None else "normal (Wald) CIs"),
        details={
            "formula": _readable(formula, covariates),
            "covariates": ", ".join(covariates) or "none",
            "time": time,
            "time unit": time_unit if (time == "continuous" or random_slope) else "none",
            "standard errors": se_desc,
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
