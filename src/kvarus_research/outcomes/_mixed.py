"""Linear mixed model helpers: lme4's model-based fixed-effect covariance, and fast start values.

Used by :func:`kvarus_research.outcomes.longitudinal`; checked against R's lme4 on sleepstudy
(``tests/test_outcomes_longitudinal_lme4.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from statsmodels.regression.mixed_linear_model import MixedLMParams

__all__ = ["model_based_cov", "satterthwaite_df"]


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
    parts = _pieces(model)
    q = parts[4].shape[1]
    G = np.asarray(fit.cov_re, dtype=float).reshape(q, q)
    return _reml_deviance(np.r_[G[np.tril_indices(q)], float(fit.scale)], parts)[1]


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


def _pieces(model: Any) -> tuple[np.ndarray, ...]:
    """Per-course sums the REML deviance needs: X'X, X'y, y'y overall; X_i'Z_i, Z_i'Z_i, Z_i'y_i, n_i per course."""
    X = np.asarray(model.exog, dtype=float)
    Z = np.asarray(model.exog_re, dtype=float)
    y = np.asarray(model.endog, dtype=float)
    codes, _ = pd.factorize(np.asarray(model.groups))
    k, p, q = int(codes.max()) + 1, X.shape[1], Z.shape[1]
    xz, zz, zy = np.zeros((k, p * q)), np.zeros((k, q * q)), np.zeros((k, q))
    np.add.at(xz, codes, (X[:, :, None] * Z[:, None, :]).reshape(len(X), p * q))
    np.add.at(zz, codes, (Z[:, :, None] * Z[:, None, :]).reshape(len(Z), q * q))
    np.add.at(zy, codes, Z * y[:, None])
    n_i = np.bincount(codes).astype(float)
    return X.T @ X, X.T @ y, float(y @ y), xz.reshape(k, p, q), zz.reshape(k, q, q), zy, n_i


def _unpack(phi: np.ndarray, q: int) -> tuple[np.ndarray, float]:
    G = np.zeros((q, q))
    G[np.tril_indices(q)] = phi[:-1]
    return G + np.tril(G, -1).T, float(phi[-1])


def _reml_deviance(phi: np.ndarray, parts: tuple[np.ndarray, ...]) -> tuple[float, np.ndarray]:
    """-2 REML log-likelihood (up to a constant) at G, sigma^2 = ``phi``, and (X'V^-1 X)^-1."""
    xtx, xty, yty, xz, zz, zy, n_i = parts
    q = zz.shape[1]
    G, s2 = _unpack(phi, q)
    k = len(n_i)
    m_inv = np.linalg.solve(s2 * np.eye(q) + G[None] @ zz, np.broadcast_to(G, (k, q, q)))
    a = (xtx - np.einsum("gpq,gqr,gsr->ps", xz, m_inv, xz)) / s2
    b = (xty - np.einsum("gpq,gqr,gr->p", xz, m_inv, zy)) / s2
    c = (yty - np.einsum("gq,gqr,gr->", zy, m_inv, zy)) / s2
    logdet_v = float(np.sum(n_i) * np.log(s2) + np.sum(np.linalg.slogdet(np.eye(q) + G[None] @ zz / s2)[1]))
    a_inv = np.linalg.inv(a)
    dev = logdet_v + np.linalg.slogdet(a)[1] + c - b @ a_inv @ b
    return float(dev), a_inv


def satterthwaite_df(model: Any, fit: Any, contrasts: np.ndarray) -> np.ndarray:
    """Satterthwaite degrees of freedom of the contrasts ``L beta`` (one row of ``contrasts`` each), REML fits.

    ``df = 2 (L C L')^2 / (g' A g)`` with ``C = (X'V^-1 X)^-1`` as a function of the variance parameters
    ``phi = (G's lower triangle, sigma^2)``, ``g`` its gradient in ``phi`` and ``A = 2 H^-1`` the asymptotic
    covariance of ``phi`` from the Hessian ``H`` of the REML deviance; derivatives by central differences (as
    R's lmerTest does, Kuznetsova et al. 2017; the df does not depend on how ``phi`` is parameterised).

    Parameters
    ----------
    model, fit : statsmodels MixedLM and its REML results
    contrasts : array of shape (k, p)

    Returns
    -------
    ndarray of shape (k,)
        NaN when the Hessian is not positive definite (a variance estimated on the boundary).

    Examples
    --------
    Balanced random intercept: the between-course contrast (the intercept) has about k - 1 df.

    >>> import statsmodels.formula.api as smf
    >>> rng = np.random.default_rng(0)
    >>> d = pd.DataFrame({"g": np.repeat(np.arange(30), 4), "y": np.repeat(rng.normal(0, 2, 30), 4)
    ...                   + rng.normal(0, 1, 120)})
    >>> model = smf.mixedlm("y ~ 1", d, groups=d["g"])
    >>> fit = model.fit(reml=True)
    >>> round(float(satterthwaite_df(model, fit, np.eye(1))[0]), 1)
    29.0
    """
    parts = _pieces(model)
    q = parts[4].shape[1]
    G = np.asarray(fit.cov_re, dtype=float).reshape(q, q)
    phi0 = np.r_[G[np.tril_indices(q)], float(fit.scale)]
    h = 1e-3 * np.maximum(np.abs(phi0), 1e-2 * float(fit.scale))
    n = len(phi0)
    hess = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.eye(n)[i] * h[i], np.eye(n)[j] * h[j]
            f = [
                _reml_deviance(phi0 + si * ei + sj * ej, parts)[0]
                for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1))
            ]
            hess[i, j] = hess[j, i] = (f[0] - f[1] - f[2] + f[3]) / (4 * h[i] * h[j])
    if np.any(np.linalg.eigvalsh(hess) <= 0):  # a variance on the boundary: no Satterthwaite approximation
        return np.full(len(np.atleast_2d(contrasts)), np.nan)
    A = 2 * np.linalg.inv(hess)
    L = np.atleast_2d(np.asarray(contrasts, dtype=float))
    C0 = _reml_deviance(phi0, parts)[1]
    grads = np.empty((len(L), n))
    for i in range(n):
        e = np.eye(n)[i] * h[i]
        Cp, Cm = _reml_deviance(phi0 + e, parts)[1], _reml_deviance(phi0 - e, parts)[1]
        grads[:, i] = np.einsum("kp,pq,kq->k", L, (Cp - Cm) / (2 * h[i]), L)
    var = np.einsum("kp,pq,kq->k", L, C0, L)
    return 2 * var**2 / np.einsum("ki,ij,kj->k", grads, A, grads)
