"""Attrition at the one-year follow-up: who answers, and what the change would be had everyone answered.

Population: courses whose follow-up was **due** (ending + one year + grace before the extract date) and that
have the outcome at ``start``. Courses whose follow-up is not yet due, or that have not ended, owe no follow-up:
they are counted and left out, never treated as non-responders. A *responder* has the outcome registered at
``end``.

Three estimates of the mean change (end − start) in that population, side by side:

- **complete case**: responders only, t interval;
- **IPW**: responders weighted by the inverse of their estimated response probability (logistic regression,
  statsmodels GLM Binomial, on the start value and the covariates), stabilised (marginal response rate /
  probability) and trimmed at the chosen percentiles; the weighted mean (Hájek) with a robust sandwich
  variance, SE² = Σ w²(d − μ)² / (Σ w)², treating the weights as known, and a normal CI;
- **MI**: multiple imputation of the end value by chained equations (statsmodels MICEData, predictive mean
  matching) from the start value and the covariates, ``m`` imputations pooled by Rubin's rules, t CI with
  Rubin's (1987) degrees of freedom (see :func:`multiple_imputation`).

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
from statsmodels.imputation.mice import MICEData
from tqdm import tqdm

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
from kvarus_research.results import Definition, Result, draw_marker, hidden

NOT_OWED: tuple[str, ...] = ("not_yet_due", "no_ending")


class AttritionResult(Result):
    """Complete-case, IPW and MI estimates of the change, with the responder/non-responder comparison.

    Attributes
    ----------
    table : DataFrame
        ``method, n, n_due, estimate, se, ci_low, ci_high, improvement, variance`` (one row per method).
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
    derived_columns = {c: "n" for c in ("estimate", "se", "ci_low", "ci_high", "improvement")}

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


def multiple_imputation(
    design: pd.DataFrame,
    y1: np.ndarray,
    *,
    m: int = 20,
    n_burnin: int = 10,
    n_skip: int = 3,
    seed: int = 0,
    progress: bool = False,
) -> tuple[float, float, float]:
    """Mean change ``y1 - y0`` by multiple imputation of the missing ``y1`` (statsmodels MICEData, PMM).

    ``design``'s first column is the start value ``y0`` (never missing); the others are predictors. After
    ``n_burnin`` cycles, each of the ``m`` data sets is taken ``n_skip`` cycles after the previous one. Rubin's
    rules: Q = mean of the m means, U = mean of their variances var(d)/n, B = variance between the means,
    T = U + (1 + 1/m) B, df = (m - 1) (1 + U / ((1 + 1/m) B))^2 (Rubin 1987). Returns (Q, sqrt(T), df).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y0 = rng.normal(10, 2, 200); y1 = y0 - 2 + rng.normal(0, 1, 200); y1[:50] = np.nan
    >>> q, se, df = multiple_imputation(pd.DataFrame({"y0": y0}), y1, m=5)
    >>> bool(abs(q + 2) < 0.4)
    True
    """
    frame = pd.DataFrame(design.to_numpy(), columns=["y0", *[f"x{i}" for i in range(1, design.shape[1])]])
    frame.insert(1, "y1", y1)
    imp = MICEData(frame, rng=np.random.default_rng(seed))
    imp.update_all(n_burnin)
    q, u = [], []
    for _ in tqdm(range(m), desc="multiple imputation", disable=not progress):
        imp.update_all(n_skip)
        d = (imp.data["y1"] - imp.data["y0"]).to_numpy()
        q.append(d.mean())
        u.append(d.var(ddof=1) / len(d))
    qbar, ubar = float(np.mean(q)), float(np.mean(u))
    b = float(np.var(q, ddof=1)) if m > 1 else 0.0
    t = ubar + (1 + 1 / m) * b
    df = (m - 1) * (1 + ubar / ((1 + 1 / m) * b)) ** 2 if b > 0 else np.inf
    return qbar, float(np.sqrt(t)), float(df)


def attrition(
    data: Any,
    outcome: str,
    *,
    start: str = "baseline",
    end: str = "followup",
    covariates: Sequence[str] = (),
    followup: pd.DataFrame | None = None,
    courses: pd.DataFrame | None = None,
    trim: tuple[float, float] = (1.0, 99.0),
    n_imputations: int = 20,
    n_burnin: int = 10,
    include_start: bool = True,
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
    followup : DataFrame, optional
        ``course_id, followup_status`` (``Timepoints.followup`` or ``registry.courses``); by default taken from
        ``data`` (``.followup``, ``.courses`` or ``.registry.courses``) or ``courses``.
    courses : DataFrame, optional
        Course table for course-level covariates (and the follow-up status when ``followup`` is not given).
    trim : (low, high)
        Percentiles of the responders' stabilised weights at which they are truncated.
    n_imputations, n_burnin : int
        Number of imputed data sets (m) and burn-in cycles of the chained equations; ``n_imputations=0`` skips MI.
    include_start : bool
        Include the start value in the response model (it always enters the imputation model).
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
    se_w = float(np.sqrt(np.sum(w**2 * (dr - mu) ** 2)) / np.sum(w))
    rows.append(
        ("IPW", n_r, mu, se_w, mu - z * se_w, mu + z * se_w, "robust sandwich (weights as known), normal CI")
    )
    if n_imputations > 0:
        est, se_mi, df_mi = multiple_imputation(
            design, y1, m=n_imputations, n_burnin=n_burnin, seed=seed, progress=progress
        )
        tq = stats.t.ppf((1 + ci) / 2, df_mi) if np.isfinite(df_mi) else z
        rows.append(("MI", flow["due"], est, se_mi, est - tq * se_mi, est + tq * se_mi,
                     f"Rubin's rules over m = {n_imputations} imputations (PMM), t CI on {df_mi:.0f} df"))  # fmt: skip
    table = pd.DataFrame(rows, columns=["method", "n", "estimate", "se", "ci_low", "ci_high", "variance"])
    table.insert(2, "n_due", flow["due"])
    table["improvement"] = meta.sign * table["estimate"]
    table = table[["method", "n", "n_due", "estimate", "se", "ci_low", "ci_high", "improvement", "variance"]]

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
            f"trimmed at percentiles {lo_p:g}/{hi_p:g}, weighted mean with robust sandwich SE; MI by chained "
            "equations (statsmodels MICEData, predictive mean matching), Rubin's rules"
        ),
        details={
            "timepoints": f"{start} -> {end}",
            "change": "end - start; improvement = change signed by the codebook direction",
            "response model": " + ".join(["1", *resp_design.columns]),
            "ci": f"{ci:.0%}",
            "flow": flow,
            "seed": seed,
        },
    )
    return AttritionResult(table, pd.DataFrame(bal), flow, weights, definition, cb.label(outcome, language))
