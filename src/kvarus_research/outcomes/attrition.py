"""Attrition at the one-year follow-up: who answers, and what the change would be had everyone answered.

Population: courses whose follow-up was **due** (ending + one year + grace before the extract date) and that
have the outcome at ``start``. Courses whose follow-up is not yet due, or that have not ended, owe no follow-up:
they are counted and left out, never treated as non-responders. A *responder* has the outcome registered at
``end``.

Three estimates of the mean change (end − start) in that population, side by side:

- **complete case**: responders only, t interval;
- **IPW**: responders weighted by the inverse of their estimated response probability (logistic regression,
  statsmodels GLM Binomial, on the start value and the covariates), stabilised (marginal response rate /
  probability) and optionally trimmed at chosen percentiles (none by default); the weighted mean (Hájek) with
  the sandwich variance of the stacked estimating equations (response model and weighted mean), which accounts
  for the weights being estimated, and a normal CI (``ipw_se`` chooses the known-weights sandwich or a
  bootstrap instead);
- **MI**: proper multiple imputation of the end value (parameters drawn before each imputation; Bayesian linear
  regression ``"norm"`` by default, or predictive mean matching ``"pmm"`` with 5 donors) from the start value, the
  covariates and the auxiliary variables, ``m`` imputations pooled by Rubin's rules, t CI on the Barnard–Rubin
  degrees of freedom, with the fraction of missing information (see
  :mod:`kvarus_research.outcomes.imputation`).

All three assume the end value is missing at random given what enters the models; add post-baseline
predictors of response (e.g. ``"<outcome>@ending"``, ``"ending_type"``) to make that more plausible.
Covariates with missing values enter the response model as mean-filled columns plus a missing indicator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from kvarus_research.codebook import Codebook
from kvarus_research.errors import AnalysisError
from kvarus_research.outcomes._data import (
    LongIndex,
    check_ci,
    check_timepoints,
    course_table,
    course_values,
    long_frame,
    outcome_meta,
    resolve_codebook,
)
from kvarus_research.outcomes._ipw import _ipw_bootstrap
from kvarus_research.outcomes.imputation import METHODS, multiple_imputation
from kvarus_research.results import Definition, Result, draw_marker, hidden

__all__ = ["NOT_OWED", "AttritionResult", "attrition", "multiple_imputation"]

NOT_OWED: tuple[str, ...] = ("not_yet_due", "no_ending")


class AttritionResult(Result):
    """Complete-case, IPW and MI estimates of the change, with the responder/non-responder comparison.

    Attributes
    ----------
    table : DataFrame
        ``method, n, n_due, estimate, se, ci_low, ci_high, improvement, df, fmi, variance`` (one row per method;
        ``df`` of the t interval, ``fmi`` the fraction of missing information, MI only).
    balance : DataFrame
        Per covariate column: means among responders and non-responders, their SMD, the due population's mean
        and the SMD of the weighted responders against it.
    flow : dict
        Courses at each step: in the data, not owed a follow-up (by reason), no start value, due, responders.
    weights : dict
        Summary of the stabilised weights (min, max, mean, percentiles used, number trimmed).
    """

    count_columns = ("n", "n_due")
    complement_columns = {"n": "n_due"}
    derived_columns = {c: "n" for c in ("estimate", "se", "ci_low", "ci_high", "improvement", "df", "fmi")}

    def __init__(
        self,
        table: pd.DataFrame,
        balance: pd.DataFrame,
        flow: dict[str, int],
        weights: dict[str, float],
        definition: Definition,
        label: str,
    ) -> None:
        self.table = table
        self.balance = balance
        self.flow = flow
        self.weights = weights
        self.definition = definition
        self.label = label

    def _draw_context(self) -> dict[str, Any]:
        return {"label": self.label}

    @classmethod
    def _draw(cls, protected: Any, ax: Any, definition: Definition, *, label: str = "",
              reference: float | None = None, **kwargs: Any) -> Any:  # fmt: skip
        """The three estimates with CIs; ``reference`` draws a known value (e.g. a synthetic truth).

        A method whose ``n`` is suppressed has no point (its estimate is derived from the hidden count) and shows
        the rules' marker.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3))
        tab = protected.table.reset_index(drop=True)
        y = np.arange(len(tab))[::-1]
        gone = hidden(protected, "n") | hidden(protected, "estimate")
        est = tab["estimate"].astype(float).to_numpy()
        lo, hi = tab["ci_low"].astype(float).to_numpy(), tab["ci_high"].astype(float).to_numpy()
        ok = ~gone & ~np.isnan(est)
        ax.errorbar(est[ok], y[ok], xerr=np.vstack([est[ok] - lo[ok], hi[ok] - est[ok]]), fmt="o", capsize=4,
                    color=kwargs.get("color", "C0"))  # fmt: skip
        centre = float(np.nanmean(est[ok])) if ok.any() else 0.0
        for yi in y[gone]:
            draw_marker(ax, centre, yi, protected)
        ax.set_yticks(y, tab["method"])
        ax.set_ylim(-0.7, len(tab) - 0.3)
        if reference is not None:
            ax.axvline(reference, color="C3", ls="--", label="reference")
            ax.legend(frameon=False)
        ax.set_xlabel(f"Mean change in {label} ({definition.details['timepoints']})")
        ax.set_title("Attrition: complete case, IPW and multiple imputation")
        return ax

    def plot_balance(self, ax: Any = None) -> Any:
        """Love plot: absolute SMD of each covariate before (responders vs non-responders) and after weighting."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.4 * len(self.balance) + 1.5))
        b = self.balance
        y = np.arange(len(b))[::-1]
        ax.scatter(b["smd"].abs(), y, label="responders vs non-responders", color="C3")
        ax.scatter(b["smd_weighted"].abs(), y, label="weighted responders vs all due", color="C0", marker="s")
        ax.axvline(0.1, color="grey", ls=":")
        ax.set_yticks(y, b["covariate"])
        ax.set_xlabel("|standardised mean difference|")
        ax.legend(frameon=False, fontsize=8)
        return ax


def _followup_status(data: Any, followup: pd.DataFrame | None, courses: pd.DataFrame | None) -> pd.Series:
    candidates = [followup, getattr(data, "followup", None), course_table(data, courses)]
    for tab in candidates:
        if isinstance(tab, pd.DataFrame) and {"course_id", "followup_status"} <= set(tab.columns):
            return tab.drop_duplicates("course_id").set_index("course_id")["followup_status"].astype(str)
    raise AnalysisError(
        "attrition needs each course's follow-up status: pass followup= (a table with course_id and "
        "followup_status, e.g. Timepoints.followup or registry.courses) or a Timepoints object"
    )


def _design(x: pd.DataFrame, cb: Codebook) -> pd.DataFrame:
    """Numeric design columns: enums as dummies (first level dropped), missing values mean-filled + indicator."""
    cols = {}
    for name in x.columns:
        var = name.partition("@")[0]
        v = x[name]
        if (var in cb and cb.variable(var).type == "enum") or not pd.api.types.is_numeric_dtype(v):
            if var in cb and cb.variable(var).type == "enum":
                v = v.where(~v.isin(list(cb.variable(var).missing_codes)))
            levels = sorted(pd.unique(v.dropna()), key=str)
            for lev in levels[1:]:
                cols[f"{name}={lev}"] = (v == lev).astype(float).where(v.notna())
            if v.isna().any():
                cols[f"{name} missing"] = v.isna().astype(float)
            continue
        num = pd.to_numeric(v, errors="coerce").astype(float)
        cols[name] = num
        if num.isna().any():
            cols[f"{name} missing"] = num.isna().astype(float)
    out = pd.DataFrame(cols, index=x.index)
    return out.fillna(out.mean())


def attrition(
    data: Any,
    outcome: str,
    *,
    start: str = "baseline",
    end: str = "followup",
    covariates: Sequence[str] = (),
    auxiliary: Sequence[str] = (),
    followup: pd.DataFrame | None = None,
    courses: pd.DataFrame | None = None,
    trim: tuple[float, float] = (0.0, 100.0),
    n_imputations: int = 20,
    n_burnin: int = 10,
    include_start: bool = True,
    imputation: str = "norm",
    donors: int = 5,
    delta: float = 0.0,
    ipw_se: str = "estimated",
    n_boot: int = 200,
    ci: float = 0.95,
    seed: int = 0,
    progress: bool = False,
    codebook: Codebook | None = None,
    language: str = "en",
) -> AttritionResult:
    """Responders vs non-responders at follow-up, and the change by complete case, IPW and MI side by side.

    Parameters
    ----------
    data : Timepoints or DataFrame
        The timepoint long format.
    outcome : str
        A continuous outcome of the codebook.
    start, end : str
        Timepoints of the change (``end`` is where non-response happens).
    covariates : sequence of str
        Predictors of response besides the start value: long-format columns at ``start``, ``"x@timepoint"``
        (e.g. ``"dager_rus_30@ending"``) or course-table columns (e.g. ``"ending_type"``, ``"age_at_start"``).
        They enter both the response model and the imputation model.
    auxiliary : sequence of str
        Further variables (same forms as ``covariates``) that enter the imputation model only: predictors of the
        follow-up value such as the ending value, unit, age or sex.
    followup : DataFrame, optional
        ``course_id, followup_status`` (``Timepoints.followup`` or ``registry.courses``); by default taken from
        ``data`` (``.followup``, ``.courses`` or ``.registry.courses``) or ``courses``.
    courses : DataFrame, optional
        Course table for course-level covariates (and the follow-up status when ``followup`` is not given).
    trim : (low, high)
        Percentiles of the responders' stabilised weights at which they are truncated; none by default (in the
        benchmark simulation, trimming at 1/99 biased IPW by 0.4 empirical SDs).
    n_imputations : int
        Number of imputed data sets (m); ``n_imputations=0`` skips MI.
    n_burnin : int
        Ignored (kept for compatibility: only the follow-up value is imputed, so there is no chain to burn in).
    include_start : bool
        Include the start value in the response model (it always enters the imputation model).
    imputation : {"norm", "pmm"}
        Bayesian linear regression, or predictive mean matching with parameter draws and ``donors`` donors
        (:mod:`kvarus_research.outcomes.imputation`).
    donors : int
        Donor pool of ``"pmm"``.
    delta : float
        Added to every imputed follow-up value (not to observed ones): a delta-adjusted, missing-not-at-random
        sensitivity analysis; 0 is MAR. See :func:`kvarus_research.outcomes.tipping_point`.
    ipw_se : {"estimated", "known", "bootstrap"}
        IPW standard error from the sandwich of the stacked estimating equations (response model and weighted
        mean), which accounts for the weights being estimated; the sandwich that treats them as known
        (WLS HC0, the earlier default); or the nonparametric bootstrap (``n_boot`` resamples of the due courses,
        the response model refitted and the weights re-trimmed in each, seeded by ``seed``).
    n_boot : int
        Bootstrap resamples for ``ipw_se="bootstrap"``.
    ci : float
    seed : int
        Seed of the imputations.
    progress : bool
        Show a progress bar over the imputations (tqdm).
    codebook : Codebook, optional
    language : str

    Returns
    -------
    AttritionResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> n = 400
    >>> y0 = rng.normal(20, 5, n); y1 = y0 - 5 + 0.3 * (y0 - 20) + rng.normal(0, 3, n)
    >>> answered = rng.uniform(size=n) < 1 / (1 + np.exp(-(y0 - 20) / 3))   # sicker patients answer more
    >>> long = pd.DataFrame({"course_id": np.r_[np.arange(n), np.arange(n)[answered]],
    ...     "timepoint": ["baseline"] * n + ["followup"] * int(answered.sum()),
    ...     "dager_rus_30": np.r_[y0, y1[answered]]})
    >>> status = pd.DataFrame({"course_id": np.arange(n), "followup_status": "reached"})
    >>> res = attrition(long, "dager_rus_30", followup=status, n_imputations=5)
    >>> res.table["method"].tolist()
    ['complete case', 'IPW', 'MI']
    >>> res.flow["responders"] + res.flow["non_responders"] == n
    True
    """
    ci = check_ci(ci)
    lo_p, hi_p = trim
    if not 0 <= lo_p < hi_p <= 100:
        raise AnalysisError(f"trim must be two percentiles 0 <= low < high <= 100, got {trim!r}")
    long = long_frame(data)
    check_timepoints(long, [start, end])
    cb = resolve_codebook(data, codebook)
    meta = outcome_meta(cb, outcome)
    status = _followup_status(data, followup, courses)
    ix = LongIndex(long)
    ids = ix.courses
    st = status.reindex(ids)
    flow: dict[str, int] = {"courses": len(ids), "no_followup_status": int(st.isna().sum())}
    for reason in NOT_OWED:
        flow[reason] = int((st == reason).sum())
    owed = (st.notna() & ~st.isin(NOT_OWED)).to_numpy()
    y0_all, y1_all = ix.at(outcome, start).to_numpy(), ix.at(outcome, end).to_numpy()
    flow["due_missing_start_value"] = int((owed & np.isnan(y0_all)).sum())
    in_pop = owed & ~np.isnan(y0_all)
    y0, y1 = y0_all[in_pop], y1_all[in_pop]
    flow["due"] = int(in_pop.sum())
    resp = ~np.isnan(y1)
    flow["responders"], flow["non_responders"] = int(resp.sum()), int((~resp).sum())
    if flow["responders"] < 2 or flow["non_responders"] < 1:
        raise AnalysisError(
            f"attrition for {outcome!r}: {flow['responders']} responder(s) and {flow['non_responders']} "
            "non-responder(s) among courses due a follow-up; need at least 2 and 1"
        )
    x = course_values(data, ix, list(covariates), at=start, courses=courses)[in_pop] if covariates else None
    start_col = pd.Series(y0, index=ids[in_pop], name=f"{outcome}@{start}")
    design = _design(pd.concat([start_col, x], axis=1), cb)
    if imputation not in METHODS:
        raise AnalysisError(f"imputation must be one of {METHODS}, got {imputation!r}")
    if ipw_se not in ("estimated", "known", "bootstrap"):
        raise AnalysisError(f"ipw_se must be 'estimated', 'known' or 'bootstrap', got {ipw_se!r}")
    aux = course_values(data, ix, list(auxiliary), at=start, courses=courses)[in_pop] if auxiliary else None
    imp_design = _design(pd.concat([start_col, x, aux], axis=1), cb) if auxiliary else design
    d = y1 - y0
    z = stats.norm.ppf((1 + ci) / 2)

    # response model and stabilised, trimmed weights
    resp_design = design if include_start else design.iloc[:, 1:]
    exog = sm.add_constant(resp_design.to_numpy(), has_constant="add")
    glm = sm.GLM(resp.astype(float), exog, family=sm.families.Binomial()).fit()
    p_hat = glm.fittedvalues
    w_all = resp.mean() / p_hat
    w = w_all[resp]
    lo_w, hi_w = np.percentile(w, [lo_p, hi_p])
    n_trim = int(((w < lo_w) | (w > hi_w)).sum())
    w = np.clip(w, lo_w, hi_w)
    weights = {"min": float(w.min()), "max": float(w.max()), "mean": float(w.mean()), "trim_low": float(lo_w),
               "trim_high": float(hi_w), "n_trimmed": n_trim}  # fmt: skip

    rows = []
    dr = d[resp]
    n_r = len(dr)
    m, se = dr.mean(), dr.std(ddof=1) / np.sqrt(n_r)
    tcrit = stats.t.ppf((1 + ci) / 2, n_r - 1)
    rows.append(("complete case", n_r, m, se, m - tcrit * se, m + tcrit * se, "t interval, responders only"))
    mu = float(np.sum(w * dr) / np.sum(w))
    psi = np.zeros(flow["due"])
    psi[resp] = w * (dr - mu)
    if ipw_se == "estimated":
        # stacked M-estimation: psi_beta = X (r - p), psi_mu = r w (d - mu) with w = c / p (trimmed weights held
        # fixed); the influence of mu is psi_mu - A_mu,beta A_beta,beta^-1 psi_beta (Lunceford & Davidian 2004)
        untrimmed = np.zeros(flow["due"], dtype=bool)
        untrimmed[resp] = (w_all[resp] >= lo_w) & (w_all[resp] <= hi_w)
        a_bb = (exog * (p_hat * (1 - p_hat))[:, None]).T @ exog
        a_mb = (psi * (1 - p_hat) * untrimmed) @ exog
        psi = psi - (resp - p_hat) * (exog @ np.linalg.solve(a_bb, a_mb))
        how = "sandwich of the stacked estimating equations (accounts for the estimated weights), normal CI"
    elif ipw_se == "known":
        how = "robust sandwich (weights treated as known, WLS HC0), normal CI"
    se_w = float(np.sqrt(np.sum(psi**2)) / np.sum(w))
    if ipw_se == "bootstrap":
        se_w = _ipw_bootstrap(resp, exog, np.where(resp, d, 0.0), trim, n_boot, seed)
        how = f"nonparametric bootstrap SE ({n_boot} resamples, response model refitted in each), normal CI"
    rows.append(("IPW", n_r, mu, se_w, mu - z * se_w, mu + z * se_w, how, np.inf, np.nan))
    rows[0] = (*rows[0], float(n_r - 1), np.nan)
    fmi = np.nan
    if n_imputations > 0:
        pool = multiple_imputation(imp_design, y1, m=n_imputations, seed=seed, progress=progress,
                                   method=imputation, donors=donors, delta=delta)  # fmt: skip
        (lo_mi, hi_mi), fmi = pool.ci(ci), pool.fmi
        name = "Bayesian linear regression (norm)" if imputation == "norm" else f"PMM ({donors} donors)"
        shift = f", imputed values shifted by delta = {delta:g}" if delta else ""
        rows.append(("MI", flow["due"], pool.estimate, pool.se, lo_mi, hi_mi,
                     f"Rubin's rules over m = {n_imputations} imputations ({name}{shift}), t CI on "
                     f"{pool.df:.0f} Barnard-Rubin df, fraction of missing information {pool.fmi:.2f}",
                     pool.df, pool.fmi))  # fmt: skip
    cols = ["method", "n", "estimate", "se", "ci_low", "ci_high", "variance", "df", "fmi"]
    table = pd.DataFrame(rows, columns=cols)
    table.insert(2, "n_due", flow["due"])
    table["improvement"] = meta.sign * table["estimate"]
    table = table[["method", "n", "n_due", "estimate", "se", "ci_low", "ci_high", "improvement", "df", "fmi",
                   "variance"]]  # fmt: skip

    bal = []
    wfull = np.zeros(flow["due"])
    wfull[resp] = w
    for col in design.columns:
        v = design[col].to_numpy()
        binary = bool(np.isin(v, (0.0, 1.0)).all())
        a, b = v[resp], v[~resp]
        mean_w = float(np.sum(wfull * v) / np.sum(wfull))
        va, vb = (
            (a.mean() * (1 - a.mean()), b.mean() * (1 - b.mean()))
            if binary
            else (a.var(ddof=1), b.var(ddof=1))
        )
        pooled = np.sqrt((va + vb) / 2)
        bal.append({"covariate": col, "mean_responders": a.mean(), "mean_non_responders": b.mean(),
                    "smd": (a.mean() - b.mean()) / pooled if pooled > 0 else 0.0, "mean_due": v.mean(),
                    "mean_responders_weighted": mean_w,
                    "smd_weighted": (mean_w - v.mean()) / pooled if pooled > 0 else 0.0})  # fmt: skip
    definition = Definition(
        population=(
            f"courses due a follow-up with {outcome!r} registered at {start!r}; responders have it at {end!r} "
            f"(not yet due and not ended courses excluded and counted)"
        ),
        method=(
            "complete case (t interval); IPW with a logistic response model (GLM Binomial), stabilised weights "
            + ("(untrimmed)" if (lo_p, hi_p) == (0, 100) else f"trimmed at percentiles {lo_p:g}/{hi_p:g}")
            + ", weighted mean with SE "
            + {
                "estimated": "by the sandwich accounting for the estimated weights",
                "known": "by the sandwich with the weights treated as known",
                "bootstrap": f"by the bootstrap ({n_boot} resamples)",
            }[ipw_se]
            + (
                f"; proper MI ({'Bayesian linear regression, norm' if imputation == 'norm' else f'PMM with parameter draws, {donors} donors'}"
                f"{f', delta-adjusted by {delta:g}' if delta else ''}), Rubin's rules with Barnard-Rubin df"
                if n_imputations > 0
                else ""
            )
        ),
        details={
            "timepoints": f"{start} -> {end}",
            "change": "end - start; improvement = change signed by the codebook direction",
            "response model": " + ".join(["1", *resp_design.columns]),
            "imputation model": " + ".join(["1", *imp_design.columns]) if n_imputations > 0 else "none",
            "imputation": imputation if n_imputations > 0 else "none",
            "fraction of missing information": None if np.isnan(fmi) else round(float(fmi), 4),
            "ci": f"{ci:.0%}",
            "flow": flow,
            "seed": seed,
        },
    )
    return AttritionResult(table, pd.DataFrame(bal), flow, weights, definition, cb.label(outcome, language))
