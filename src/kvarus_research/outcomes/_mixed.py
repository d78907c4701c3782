"""Linear mixed model helpers: lme4's model-based fixed-effect covariance, and fast start values.

Used by :func:`kvarus_research.outcomes.longitudinal`; checked against R's lme4 on sleepstudy
(``tests/test_outcomes_longitudinal_lme4.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from statsmodels.regression.mixed_linear_model import MixedLMParams

__all__ = ["model_based_cov"]


def model_based_cov(model: Any, fit: Any) -> np.ndarray:
    """``(X' V^-1 X)^-1`` at the fitted variance parameters, as lme4's ``vcov()`` reports it.

    With ``q`` random effects per course, ``G`` their covariance and ``sigma^2`` the residual variance,
    ``V_i^-1 = (I - Z_i (sigma^2 G^-1 + Z_i'Z_i)^-1 Z_i') / sigma^2`` (Woodbury), so only the per-course sums
    ``X_i'X_i``, ``X_i'Z_i`` and ``Z_i'Z_i`` are needed (vectorised over courses). A singular ``G`` (a variance at
    zero) is handled through ``(sigma^2 I + G Z_i'Z_i)^-1 G`` instead of ``G^-1``.

    Parameters
    ----------
    model : statsmodels MixedLM
    fit : statsmodels MixedLMResults
        Its ``scale`` (sigma^2) and ``cov_re`` (G).

    Returns
    -------
    ndarray
        The fixed effects' covariance matrix.

    Examples
    --------
    Random intercept, intercept only, k courses of n values: Var(mean) = (g + sigma^2 / n) / k.

    >>> import statsmodels.formula.api as smf
    >>> rng = np.random.default_rng(0)
    >>> d = pd.DataFrame({"g": np.repeat(np.arange(30), 4), "y": np.repeat(rng.normal(0, 2, 30), 4)
    ...                   + rng.normal(0, 1, 120)})
    >>> model = smf.mixedlm("y ~ 1", d, groups=d["g"])
    >>> fit = model.fit(reml=True)
    >>> v = model_based_cov(model, fit)
    >>> bool(np.isclose(v[0, 0], (fit.cov_re.iloc[0, 0] + fit.scale / 4) / 30))
    True
    """
    X = np.asarray(model.exog, dtype=float)
    Z = np.asarray(model.exog_re, dtype=float)
    codes, _ = pd.factorize(np.asarray(model.groups))
    k, p, q = int(codes.max()) + 1, X.shape[1], Z.shape[1]
    sigma2 = float(fit.scale)
    G = np.asarray(fit.cov_re, dtype=float).reshape(q, q)
    xz = np.zeros((k, p * q))
    zz = np.zeros((k, q * q))
    np.add.at(xz, codes, (X[:, :, None] * Z[:, None, :]).reshape(len(X), p * q))
    np.add.at(zz, codes, (Z[:, :, None] * Z[:, None, :]).reshape(len(Z), q * q))
    xz, zz = xz.reshape(k, p, q), zz.reshape(k, q, q)
    # (sigma^2 G^-1 + Z'Z)^-1 = (sigma^2 I + G Z'Z)^-1 G
    inner = np.linalg.solve(sigma2 * np.eye(q) + G[None] @ zz, np.broadcast_to(G, (k, q, q)))
    info = (X.T @ X - np.einsum("gpq,gqr,gsr->ps", xz, inner, xz)) / sigma2
    return np.linalg.inv(info)


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
