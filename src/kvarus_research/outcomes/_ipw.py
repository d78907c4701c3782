"""IPW helpers of :func:`kvarus_research.outcomes.attrition`: a fast logistic fit and the bootstrap SE."""

from __future__ import annotations

import numpy as np


def _logistic(y: np.ndarray, x: np.ndarray, n_iter: int = 50) -> np.ndarray:
    """Fitted probabilities of a logistic regression by Newton-Raphson (for the bootstrap's many refits)."""
    beta = np.zeros(x.shape[1])
    for _ in range(n_iter):
        p = 1 / (1 + np.exp(-(x @ beta)))
        step = np.linalg.lstsq((x * (p * (1 - p))[:, None]).T @ x, x.T @ (y - p), rcond=None)[0]
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return 1 / (1 + np.exp(-(x @ beta)))


def _ipw_bootstrap(resp: np.ndarray, exog: np.ndarray, d: np.ndarray, trim: tuple[float, float], n_boot: int,
                   seed: int) -> float:  # fmt: skip
    """SE of the weighted mean from ``n_boot`` nonparametric bootstrap resamples of the due courses, refitting the
    response model and re-trimming the weights in each."""
    rng = np.random.default_rng([seed, 14])
    n, est = len(resp), []
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        r = resp[i]
        if r.sum() < 2 or r.all():
            continue
        w = r.mean() / _logistic(r.astype(float), exog[i])[r]
        w = np.clip(w, *np.percentile(w, trim))
        est.append(np.sum(w * d[i][r]) / np.sum(w))
    return float(np.std(est, ddof=1))
