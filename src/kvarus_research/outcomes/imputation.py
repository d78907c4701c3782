"""Multiple imputation of one incomplete continuous variable, proper in Rubin's sense, and Rubin's rules.

*Proper* (Rubin 1987, ch. 4): each of the ``m`` imputations first draws the imputation model's parameters from
their posterior, then imputes from the predictive distribution given those parameters, so that the
between-imputation variance carries the uncertainty of the model and not only the residual noise.

Methods (the names are those of R's mice, van Buuren 2018, section 3.2 and 3.4):

- ``"norm"`` (default): Bayesian linear regression of the incomplete variable on the complete predictors, with
  the non-informative prior. With ``n_obs`` complete rows, ``p`` columns (a constant included), least-squares
  ``beta_hat`` and residual sum of squares ``rss``: draw ``sigma*^2 = rss / g`` with ``g ~ chi^2(n_obs - p)``,
  then ``beta* ~ N(beta_hat, sigma*^2 (X'X)^-1)``, and impute ``x_mis beta* + sigma* e`` with ``e ~ N(0, 1)``.
- ``"pmm"``: predictive mean matching with the same parameter draw (type-1 matching): the predicted value of each
  incomplete row under ``beta*`` is matched to the ``donors`` (default 5) complete rows whose predicted values under
  ``beta_hat`` are closest, and one of their observed values is taken at random.

Pooling (:func:`rubin_pool`): Q = mean of the m estimates, U = mean of their variances, B = variance between
them, T = U + (1 + 1/m) B; degrees of freedom of Barnard and Rubin (1999) from the complete-data df; the relative
increase in variance r = (1 + 1/m) B / U, lambda = (1 + 1/m) B / T and the fraction of missing information
fmi = (r + 2 / (df + 3)) / (r + 1) (as R's ``mice::pool`` reports it).

A delta adjustment (``delta=``) adds a fixed shift to every imputed value (not to observed ones): the
pattern-mixture sensitivity analysis for data missing not at random (:func:`kvarus_research.outcomes.attrition`
uses it over a grid of shifts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from tqdm import tqdm

from kvarus_research.errors import AnalysisError

METHODS: tuple[str, ...] = ("norm", "pmm")


@dataclass(frozen=True)
class Pooled:
    """A scalar estimate pooled over ``m`` imputations by Rubin's rules.

    Attributes
    ----------
    estimate, se, df : float
        Q, sqrt(T) and the Barnard–Rubin degrees of freedom.
    within, between : float
        U (mean within-imputation variance) and B (between-imputation variance).
    riv, lambda_, fmi : float
        Relative increase in variance due to non-response, proportion of the total variance due to missingness,
        and the fraction of missing information.
    m : int
        Number of imputations.
    """

    estimate: float
    se: float
    df: float
    within: float
    between: float
    riv: float
    lambda_: float
    fmi: float
    m: int

    def __iter__(self):  # noqa: ANN204 - tuple unpacking ``q, se, df = ...`` of the earlier API
        return iter((self.estimate, self.se, self.df))

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        """t interval on the Barnard–Rubin df."""
        q = stats.t.ppf((1 + level) / 2, self.df) if np.isfinite(self.df) else stats.norm.ppf((1 + level) / 2)
        return self.estimate - q * self.se, self.estimate + q * self.se


def rubin_pool(estimates: np.ndarray, variances: np.ndarray, df_complete: float = np.inf) -> Pooled:
    """Pool m complete-data estimates and their variances by Rubin's rules (Barnard–Rubin df).

    Parameters
    ----------
    estimates, variances : array of shape (m,)
        The estimate and its squared standard error in each completed data set.
    df_complete : float
        Degrees of freedom of the complete-data analysis (``n - 1`` for a mean); ``inf`` gives Rubin's (1987) df.

    Returns
    -------
    Pooled

    Examples
    --------
    >>> p = rubin_pool(np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.5, 0.5]), df_complete=99)
    >>> round(p.se ** 2, 4)   # 0.5 + (1 + 1/3) * 1
    1.8333
    >>> round(p.df, 2)   # Barnard-Rubin: 3.78 (Rubin 1987) combined with 26.47 observed-data df
    3.31
    """
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    m = len(q)
    if m < 1 or u.shape != q.shape:
        raise AnalysisError("rubin_pool needs m >= 1 estimates and as many variances")
    qbar, ubar = float(q.mean()), float(u.mean())
    b = float(q.var(ddof=1)) if m > 1 else 0.0
    t = ubar + (1 + 1 / m) * b
    riv = (1 + 1 / m) * b / ubar if ubar > 0 else np.inf
    lam = (1 + 1 / m) * b / t if t > 0 else 0.0
    df_old = (m - 1) / lam**2 if lam > 0 else np.inf
    if np.isfinite(df_complete):
        df_obs = (df_complete + 1) / (df_complete + 3) * df_complete * (1 - lam)
        df = df_old * df_obs / (df_old + df_obs) if np.isfinite(df_old) else df_obs
    else:
        df = df_old
    fmi = (riv + 2 / (df + 3)) / (riv + 1) if np.isfinite(riv) else 1.0
    return Pooled(qbar, float(np.sqrt(t)), float(df), ubar, b, float(riv), float(lam), float(fmi), m)


def draw_parameters(
    x_obs: np.ndarray, y_obs: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, float]:
    """One posterior draw of a normal linear regression's parameters (non-informative prior).

    Returns ``(beta_hat, beta_draw, sigma_draw)``; ``x_obs`` includes the constant column.
    """
    n, p = x_obs.shape
    if n <= p:
        raise AnalysisError(f"imputation model: {n} complete rows for {p} parameters; need more rows")
    q, r = np.linalg.qr(x_obs)
    beta_hat = np.linalg.solve(r, q.T @ y_obs)
    rss = float(np.sum((y_obs - x_obs @ beta_hat) ** 2))
    sigma = np.sqrt(rss / rng.chisquare(n - p))
    # (X'X)^-1 = R^-1 R^-T, so beta_hat + sigma R^-1 z has covariance sigma^2 (X'X)^-1
    beta = beta_hat + sigma * np.linalg.solve(r, rng.standard_normal(p))
    return beta_hat, beta, float(sigma)


def impute_once(
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    *,
    method: str = "norm",
    donors: int = 5,
    delta: float = 0.0,
) -> np.ndarray:
    """One proper imputation of the missing values of ``y`` from the complete predictors ``x``.

    ``x`` has no constant column (one is added). Returns a copy of ``y`` with its NaNs filled; ``delta`` is added
    to the imputed values only.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(100, 1)); y = 2 * x[:, 0] + rng.normal(size=100); y[:20] = np.nan
    >>> filled = impute_once(x, y, np.random.default_rng(1))
    >>> bool(np.isnan(filled).any()), bool(np.array_equal(filled[20:], y[20:]))
    (False, True)
    """
    if method not in METHODS:
        raise AnalysisError(f"imputation method must be one of {METHODS}, got {method!r}")
    if donors < 1:
        raise AnalysisError(f"donors must be at least 1, got {donors}")
    xc = np.column_stack([np.ones(len(y)), np.asarray(x, dtype=float).reshape(len(y), -1)])
    mis = np.isnan(y)
    out = y.astype(float).copy()
    if not mis.any():
        return out
    beta_hat, beta, sigma = draw_parameters(xc[~mis], y[~mis], rng)
    if method == "norm":
        out[mis] = xc[mis] @ beta + sigma * rng.standard_normal(int(mis.sum()))
    else:
        pred_obs = xc[~mis] @ beta_hat
        pred_mis = xc[mis] @ beta
        k = min(donors, len(pred_obs))
        dist = np.abs(pred_mis[:, None] - pred_obs[None, :])
        nearest = (
            np.argpartition(dist, k - 1, axis=1)[:, :k]
            if k < len(pred_obs)
            else np.tile(np.arange(len(pred_obs)), (len(pred_mis), 1))
        )
        pick = nearest[np.arange(len(pred_mis)), rng.integers(0, k, len(pred_mis))]
        out[mis] = y[~mis][pick]
    out[mis] += delta
    return out


def multiple_imputation(
    design: pd.DataFrame,
    y1: np.ndarray,
    *,
    m: int = 20,
    n_burnin: int = 10,
    n_skip: int = 3,
    seed: int = 0,
    progress: bool = False,
    method: str = "norm",
    donors: int = 5,
    delta: float = 0.0,
) -> Pooled:
    """Mean change ``y1 - y0`` by proper multiple imputation of the missing ``y1``, pooled by Rubin's rules.

    ``design``'s first column is the start value ``y0`` (never missing); the others are complete predictors
    (auxiliary variables). Each of the ``m`` imputations draws the parameters of the regression of ``y1`` on the
    design and imputes from it (:func:`impute_once`, ``method="norm"`` or ``"pmm"`` with ``donors`` donors); the
    per-imputation estimate is mean(d) with variance var(d) / n, d = y1 - y0, pooled on n - 1 complete-data df
    (:func:`rubin_pool`). Only ``y1`` is incomplete, so no chained equations are needed: ``n_burnin`` and
    ``n_skip`` (of the earlier MICEData implementation) are accepted and ignored.

    Returns
    -------
    Pooled
        Unpacks as ``(estimate, se, df)``; also carries ``fmi``, ``riv``, ``within`` and ``between``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y0 = rng.normal(10, 2, 200); y1 = y0 - 2 + rng.normal(0, 1, 200); y1[:50] = np.nan
    >>> q, se, df = multiple_imputation(pd.DataFrame({"y0": y0}), y1, m=5)
    >>> bool(abs(q + 2) < 0.4)
    True
    """
    del n_burnin, n_skip
    if m < 2:
        raise AnalysisError(f"multiple imputation needs m >= 2 imputations, got {m}")
    x = np.asarray(design, dtype=float)
    y1 = np.asarray(y1, dtype=float)
    if np.isnan(x).any():
        raise AnalysisError(
            "multiple_imputation: the design must be complete (fill or drop missing predictors)"
        )
    y0 = x[:, 0]
    rng = np.random.default_rng(seed)
    n = len(y1)
    q, u = np.empty(m), np.empty(m)
    for i in tqdm(range(m), desc="multiple imputation", disable=not progress):
        d = impute_once(x, y1, rng, method=method, donors=donors, delta=delta) - y0
        q[i], u[i] = d.mean(), d.var(ddof=1) / n
    return rubin_pool(q, u, df_complete=n - 1)
