"""Vectorised Kaplan–Meier and Aalen–Johansen estimators working on event counts.

lifelines' ``AalenJohansenFitter`` jitters tied event times and computes its variance in a Python loop over
every event time, which is too slow for a national registry (about a million courses, integer days). These
functions take the counts at each distinct time (at risk, events per cause, censored) and compute the same
estimates and variances with cumulative sums. They are cross-checked against lifelines in the tests.

Formulas (``n_j`` at risk, ``d_j`` events of any cause and ``d_cj`` of cause ``c`` at time ``t_j``):

* Kaplan–Meier ``S(t) = prod_{t_j <= t} (1 - d_j / n_j)``; Greenwood ``V(t) = sum d_j / (n_j (n_j - d_j))``;
  CI on the log(-log) scale: ``exp(-exp(log(-log S) ± z sqrt(V) / |log S|))`` (lifelines' default).
* Aalen–Johansen ``F_c(t) = sum_{t_j <= t} S(t_{j-1}) d_cj / n_j``; variance as in Collett (2015, p. 411)
  and lifelines: ``sum (F_c(t) - F_c(t_j))^2 d_j/(n_j(n_j-d_j)) + S(t_{j-1})^2 d_cj (n_j - d_cj)/n_j^3
  - 2 (F_c(t) - F_c(t_j)) S(t_{j-1}) d_cj / n_j^2``; CI on the log(-log) scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm


def entered_from(times: np.ndarray, entry: np.ndarray | None) -> np.ndarray:
    """How many rows enter at or after each of the sorted ``times`` (``#{entry >= t}``; zeros without entry).

    With delayed entry a row is at risk at ``t`` only when ``entry < t <= exit``, so the risk set is
    ``#{exit >= t} - #{entry >= t}`` (entry is before exit for every row).

    Examples
    --------
    >>> entered_from(np.array([1.0, 2.0, 3.0]), np.array([0.0, 2.0, 2.5])).tolist()
    [2.0, 2.0, 0.0]
    """
    if entry is None:
        return np.zeros(len(times))
    bins = np.searchsorted(times, np.asarray(entry, dtype=float), side="right")  # entry >= t_j  <=>  j < bin
    per = np.bincount(bins, minlength=len(times) + 1)[1:].astype(float)  # entries with bin = j + 1
    return per[::-1].cumsum()[::-1]


def event_counts(
    duration: np.ndarray, cause_code: np.ndarray, n_causes: int, entry: np.ndarray | None = None
) -> pd.DataFrame:
    """Counts at each distinct time: ``time, n_at_risk, n_censored, d_1 .. d_K``.

    ``cause_code`` is 0 for censored and ``1..n_causes`` for the causes; ``entry`` (optional) the time each row
    enters the risk set (delayed entry: at risk at ``t`` when ``entry < t <= duration``).

    Examples
    --------
    >>> c = event_counts(np.array([1.0, 1, 2, 3]), np.array([1, 0, 2, 1]), 2)
    >>> c.values.tolist()
    [[1.0, 4.0, 1.0, 1.0, 0.0], [2.0, 2.0, 0.0, 0.0, 1.0], [3.0, 1.0, 0.0, 1.0, 0.0]]
    >>> event_counts(np.array([1.0, 2, 3]), np.array([1, 1, 1]), 1, entry=np.array([0.0, 1.5, 0]))[
    ...     "n_at_risk"].tolist()  # the second row enters at 1.5: not at risk at 1
    [2.0, 2.0, 1.0]
    """
    duration = np.asarray(duration, dtype=float)
    cause_code = np.asarray(cause_code, dtype=np.int64)
    times, inv = np.unique(duration, return_inverse=True)
    k = len(times)
    counts = np.bincount(inv * (n_causes + 1) + cause_code, minlength=k * (n_causes + 1))
    counts = counts.reshape(k, n_causes + 1).astype(float)
    removed = counts.sum(axis=1)
    at_risk = len(duration) - np.concatenate([[0.0], np.cumsum(removed)[:-1]]) - entered_from(times, entry)
    out = pd.DataFrame({"time": times, "n_at_risk": at_risk, "n_censored": counts[:, 0]})
    for c in range(1, n_causes + 1):
        out[f"d_{c}"] = counts[:, c]
    return out


def _loglog_ci(est: np.ndarray, var_log: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """CI of a probability on the log(-log) scale from the variance of ``log(est)``.

    Degenerate estimates (0 or 1) get the point itself.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        log_est = np.log(est)
        se = np.sqrt(np.maximum(var_log, 0)) / np.abs(log_est)
        centre = np.log(-log_est)
        a = np.exp(-np.exp(centre + z * se))
        b = np.exp(-np.exp(centre - z * se))
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    degenerate = ~np.isfinite(lo) | ~np.isfinite(hi)
    lo = np.where(degenerate, est, lo)
    hi = np.where(degenerate, est, hi)
    return lo, hi


def kaplan_meier_from_counts(
    n_at_risk: np.ndarray, n_events: np.ndarray, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Kaplan–Meier survival, Greenwood variance and log(-log) CI from counts at each time.

    Examples
    --------
    >>> s, v, lo, hi = kaplan_meier_from_counts(np.array([4.0, 2.0]), np.array([1.0, 1.0]))
    >>> s.tolist()  # 1 - 1/4 = 0.75; 0.75 * (1 - 1/2) = 0.375
    [0.75, 0.375]
    """
    n = np.asarray(n_at_risk, dtype=float)
    d = np.asarray(n_events, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(np.where(n > 0, 1 - d / n, 1.0))
        term = np.where((n > d) & (n > 0), d / (n * (n - d)), 0.0)
    var = np.cumsum(term)
    lo, hi = _loglog_ci(surv, var, norm.ppf(1 - alpha / 2))
    return surv, var * surv**2, lo, hi


def aalen_johansen_from_counts(
    n_at_risk: np.ndarray, events: Sequence[np.ndarray], alpha: float = 0.05
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Aalen–Johansen cumulative incidence of each cause, with variance and log(-log) CI.

    Parameters
    ----------
    n_at_risk : array
        At risk just before each time.
    events : sequence of arrays
        Events of each cause at each time.

    Returns
    -------
    list of (cif, variance, ci_lower, ci_upper), one per cause.

    Examples
    --------
    >>> n = np.array([4.0, 2.0])
    >>> out = aalen_johansen_from_counts(n, [np.array([1.0, 0.0]), np.array([0.0, 1.0])])
    >>> [o[0].tolist() for o in out]  # cause 1: 1/4; cause 2: 0.25 + 0.75 * 1/2 = 0.375 at t2
    [[0.25, 0.25], [0.0, 0.375]]
    """
    n = np.asarray(n_at_risk, dtype=float)
    d_all = np.sum([np.asarray(e, dtype=float) for e in events], axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(np.where(n > 0, 1 - d_all / n, 1.0))
        lag_s = np.concatenate([[1.0], surv[:-1]])
        a = np.where((n > d_all) & (n > 0), d_all / (n * (n - d_all)), 0.0)
    z = norm.ppf(1 - alpha / 2)
    out = []
    for e in events:
        dc = np.asarray(e, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            hazard = np.where(n > 0, dc / n, 0.0)
            second = np.where(n > 0, lag_s**2 * dc * (n - dc) / n**3, 0.0)
            b = np.where(n > 0, lag_s * dc / n**2, 0.0)
        cif = np.cumsum(lag_s * hazard)
        # sum_j a_j (F - F_j)^2 = F^2 A0 - 2 F A1 + A2, with A0, A1, A2 running sums of a, a F_j, a F_j^2.
        a0, a1, a2 = np.cumsum(a), np.cumsum(a * cif), np.cumsum(a * cif**2)
        b0, b1 = np.cumsum(b), np.cumsum(b * cif)
        var = cif**2 * a0 - 2 * cif * a1 + a2 + np.cumsum(second) - 2 * (cif * b0 - b1)
        var = np.maximum(var, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            lo, hi = _loglog_ci(cif, var / cif**2, z)  # delta method: Var(log F) = Var(F) / F^2
        out.append((cif, var, lo, hi))
    return out


def round_to_base(x: np.ndarray, base: int) -> np.ndarray:
    """Round counts half up to a multiple of ``base`` (``base`` 1 leaves them as they are).

    Examples
    --------
    >>> round_to_base(np.array([0, 2, 3, 7, 12.5]), 5).tolist()
    [0.0, 0.0, 5.0, 5.0, 15.0]
    """
    x = np.asarray(x, dtype=float)
    if base <= 1:
        return x
    return base * np.floor(x / base + 0.5)


def coarsened_counts(
    duration: np.ndarray,
    cause_code: np.ndarray,
    n_causes: int,
    *,
    step: float,
    round_to: int,
    min_at_risk: int,
    entry: np.ndarray | None = None,
) -> pd.DataFrame:
    """Counts on a fixed time grid, rounded, for disclosure-safe curves and at-risk tables.

    With delayed entry (``entry``), entry times are moved *down* to the grid (a course entering on day 45
    is at risk from the grid point 60 on, with a 30-day step), and no point is dropped: the curve needs every
    grid point, and the column ``shown`` says which have at least ``min_at_risk`` courses truly at risk.

    Every time is moved up to the next multiple of ``step`` (a course ending on day 31 counts at day 60 with a
    30-day step), so each grid point ``t_k`` carries the events in ``(t_{k-1}, t_k]`` and the courses still at
    risk after ``t_{k-1}``. Counts at risk are rounded to ``round_to``; events per cause are rounded as
    cumulative counts (then differenced, so the steps add up to the rounded total). Grid points with fewer
    than ``min_at_risk`` courses truly at risk are dropped: the curve stops there.

    Examples
    --------
    >>> c = coarsened_counts(np.arange(1.0, 41), np.ones(40, int), 1, step=10, round_to=5, min_at_risk=10)
    >>> c[["time", "n_at_risk", "d_1"]].values.tolist()  # 40 at risk, 10 events per 10 days
    [[10.0, 40.0, 10.0], [20.0, 30.0, 10.0], [30.0, 20.0, 10.0], [40.0, 10.0, 10.0]]
    """
    duration = np.asarray(duration, dtype=float)
    grid_time = np.ceil(duration / step) * step
    grid_entry = None if entry is None else np.floor(np.asarray(entry, dtype=float) / step) * step
    counts = event_counts(grid_time, cause_code, n_causes, grid_entry)
    keep = counts["n_at_risk"].to_numpy() >= min_at_risk
    if entry is None:
        counts = counts.loc[keep].reset_index(drop=True)
    else:
        counts["shown"] = keep
    counts["n_at_risk"] = round_to_base(counts["n_at_risk"].to_numpy(), round_to)
    for c in range(1, n_causes + 1):
        cum = round_to_base(np.cumsum(counts[f"d_{c}"].to_numpy()), round_to)
        counts[f"d_{c}"] = np.diff(np.concatenate([[0.0], cum]))
    counts = counts.drop(columns="n_censored")
    return counts


def logrank_from_events(
    duration: np.ndarray, event: np.ndarray, group_codes: np.ndarray, entry: np.ndarray | None = None
) -> tuple[float, int]:
    """K-group log-rank statistic and its degrees of freedom, vectorised over distinct event times.

    At each event time ``t`` with ``n_t`` at risk (``n_gt`` in group g) and ``d_t`` events: expected
    ``E_g = sum n_gt d_t / n_t`` and covariance ``V_gh = sum d_t (n_t - d_t) / (n_t - 1) * n_gt / n_t *
    (delta_gh - n_ht / n_t)``; the statistic is ``(O - E)' V^- (O - E)`` over the first K - 1 groups
    (chi-square with K - 1 df). Used instead of lifelines ``multivariate_logrank_test`` above 100,000 courses
    and with delayed entry (``entry``: at risk at ``t`` when ``entry < t <= duration``).

    Examples
    --------
    >>> s, df = logrank_from_events(np.array([1.0, 2, 3, 4]), np.array([1, 1, 1, 1]), np.array([0, 1, 0, 1]))
    >>> round(s, 4), df  # 8/13, worked out in tests/test_retention_survival.py
    (0.6154, 1)
    """
    duration = np.asarray(duration, dtype=float)
    event = np.asarray(event).astype(bool)
    g = np.asarray(group_codes, dtype=np.int64)
    k = int(g.max()) + 1
    times, inv = np.unique(duration, return_inverse=True)
    m = len(times)
    removed = np.bincount(inv * k + g, minlength=m * k).reshape(m, k).astype(float)
    died = np.bincount(inv[event] * k + g[event], minlength=m * k).reshape(m, k).astype(float)
    at_risk = removed[::-1].cumsum(axis=0)[::-1]  # n_gt: still in follow-up at t
    if entry is not None:  # delayed entry: not yet at risk at t when entry >= t
        entry = np.asarray(entry, dtype=float)
        at_risk -= np.column_stack([entered_from(times, entry[g == i]) for i in range(k)])
    keep = died.sum(axis=1) > 0
    n_gt, d_gt = at_risk[keep], died[keep]
    n_t, d_t = n_gt.sum(axis=1), d_gt.sum(axis=1)
    expected = (n_gt * (d_t / n_t)[:, None]).sum(axis=0)
    observed = d_gt.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(n_t > 1, d_t * (n_t - d_t) / (n_t - 1), 0.0)
    share = n_gt / n_t[:, None]
    cov = np.diag((w[:, None] * share).sum(axis=0)) - (w[:, None] * share).T @ share
    diff = (observed - expected)[:-1]
    stat = float(diff @ np.linalg.pinv(cov[:-1, :-1]) @ diff)
    return stat, k - 1


def _rmst(
    time: np.ndarray, surv: np.ndarray, n: np.ndarray, d: np.ndarray, horizon: float
) -> tuple[float, float]:
    """Restricted mean ∫_0^τ S(u) du of a KM step function and its Greenwood-type standard error.

    Var = sum_{t_j <= τ} A_j^2 d_j / (n_j (n_j - d_j)), A_j = ∫_{t_j}^τ S(u) du (Klein & Moeschberger §4.5).
    """
    inside = time <= horizon
    t, s, nn, dd = time[inside], surv[inside], n[inside], d[inside]
    knots = np.concatenate([[0.0], t, [horizon]])
    levels = np.concatenate([[1.0], s])  # S on [knots[i], knots[i+1])
    pieces = levels * np.diff(knots)
    rmst = float(pieces.sum())
    area_after = np.cumsum(pieces[::-1])[::-1][1:]  # A_j: area from t_j to τ
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(nn > dd, dd / (nn * (nn - dd)), 0.0)
    return rmst, float(np.sqrt(np.sum(area_after**2 * term)))


def _median(time: np.ndarray, est: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[float, float, float]:
    """Median of a step curve (and of its lower/upper CI curves) by R's ``survfit`` convention.

    The first event time at which the curve falls to 0.5 or below; when it is exactly 0.5 there (within
    ``sqrt(eps)``) and there is a later event time, the midpoint of that plateau; NaN when it never falls so far.

    Examples
    --------
    >>> t = np.array([1.0, 2, 3, 4])
    >>> _median(t, np.array([0.75, 0.5, 0.25, 0]), np.array([0.6, 0.4, 0.1, 0]), np.ones(4))
    (2.5, 2.0, nan)
    """
    tol = np.sqrt(np.finfo(float).eps)

    def first(curve: np.ndarray) -> float:
        below = np.flatnonzero(curve <= 0.5 + tol)
        if not len(below):
            return float("nan")
        i = below[0]
        if abs(curve[i] - 0.5) <= tol and i + 1 < len(time):
            return float((time[i] + time[i + 1]) / 2)
        return float(time[i])

    return first(est), first(lo), first(hi)
