"""Estimated marginal means by timepoint, their differences from the first, and the coefficient table, for
:func:`kvarus_research.outcomes.longitudinal` (t quantiles on per-contrast df when a df function is given)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from kvarus_research.errors import AnalysisError


def _emms(
    model: Any,
    frame: pd.DataFrame,
    beta: np.ndarray,
    vcov: np.ndarray,
    names: list[str],
    timepoints: list[str],
    time: str,
    ci: float,
    df_fn: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    exog = np.asarray(model.exog)[:, : len(names)]
    xbar = exog.mean(axis=0)
    dummies = {n: n[len("C(tp)[T.") : -1] for n in names if n.startswith("C(tp)[T.")}
    time_cols = np.array([n in dummies or n == "t" for n in names])
    if time == "category" and len(dummies) != len(timepoints) - 1:
        raise AnalysisError(
            f"internal: expected {len(timepoints) - 1} timepoint columns, found {sorted(dummies)}"
        )
    mean_t = frame.groupby("tp", observed=False)["t"].mean()
    mean_years = frame.groupby("tp", observed=False)["t_years"].mean()
    n_obs = frame["tp"].value_counts().reindex(timepoints, fill_value=0)
    ls = np.array([np.where(time_cols, [float(dummies.get(n) == tp) if n in dummies else float(mean_t.get(tp, np.nan))
                                        for n in names], xbar) for tp in timepoints])  # fmt: skip
    ds = ls - ls[0]
    eye = np.eye(len(names))
    # one df per contrast (EMMs, differences, coefficients); infinite (normal quantile) without df_fn
    if df_fn is not None:
        dfs = df_fn(np.vstack([ls, ds[1:], eye]))
        df_l, df_d, df_b = (
            dfs[: len(ls)],
            np.r_[np.inf, dfs[len(ls) : 2 * len(ls) - 1]],
            dfs[2 * len(ls) - 1 :],
        )
    else:
        df_l, df_d, df_b = (np.full(len(ls), np.inf), np.full(len(ls), np.inf), np.full(len(names), np.inf))

    def quantile(df: np.ndarray) -> np.ndarray:
        df = np.where(np.isfinite(df) & (df > 0), df, np.inf)
        return stats.t.ppf((1 + ci) / 2, df)

    q_l, q_d, q_b = quantile(df_l), quantile(df_d), quantile(df_b)
    rows = []
    for i, (tp, L, D) in enumerate(zip(timepoints, ls, ds, strict=True)):
        est, se = float(L @ beta), float(np.sqrt(L @ vcov @ L))
        d, se_d = float(D @ beta), float(np.sqrt(max(D @ vcov @ D, 0.0)))
        rows.append({"timepoint": tp, "time": float(mean_t.get(tp, np.nan)),
                     "time_years": float(mean_years.get(tp, np.nan)), "n_obs": int(n_obs[tp]),
                     "emm": est, "se": se, "ci_low": est - q_l[i] * se, "ci_high": est + q_l[i] * se,
                     "diff": d, "diff_ci_low": d - q_d[i] * se_d, "diff_ci_high": d + q_d[i] * se_d})  # fmt: skip
    se_b = np.sqrt(np.diag(vcov))
    tstat = beta / se_b
    df_p = np.where(np.isfinite(df_b) & (df_b > 0), df_b, np.inf)
    coefs = pd.DataFrame(
        {
            "term": [n.replace("C(tp)[T.", "timepoint[").replace("tp", "timepoint") for n in names],
            "estimate": beta,
            "se": se_b,
            "df": df_b,
            "ci_low": beta - q_b * se_b,
            "ci_high": beta + q_b * se_b,
            "p_value": 2 * stats.t.sf(np.abs(tstat), df_p),
        }
    )
    return pd.DataFrame(rows), coefs
