"""Tests on the cumulative incidence itself: Gray's (1988) K-sample test.

The log-rank test of one ending type with the other endings censored compares *cause-specific hazards*. With
competing endings that is a different question from whether the *cumulative incidence* (the share of courses
that has ended that way by time t) differs between groups: a group can have a higher dropout hazard and still
the same cumulative incidence of dropout, because its courses also end for other reasons sooner. Gray's test
compares the subdistribution hazards, i.e. the cumulative incidence curves.

The statistic is Gray's (1988, Ann. Stat. 16:1141–1154) score ``s_k = sum_t w(t) (d_1k(t) - R_k(t) (1 -
F_1k(t-)) / S_k(t-) * d_1(t) / Q(t))`` over the first K - 1 groups, with ``R_k`` at risk, ``S_k`` the
Kaplan–Meier estimate of still being event-free and ``F_1k`` the cumulative incidence of the cause in group k,
``Q = sum_k R_k (1 - F_1k(t-)) / S_k(t-)``, weight ``w = (1 - F_1(t-))^rho`` (``rho = 0`` by default), and the
variance estimator of the paper as computed by R's ``cmprsk::cuminc``; ``s' V^-1 s`` is chi-square with K - 1
df. Strata add their scores and variances. Cross-checked against ``cmprsk::cuminc`` in
``tests/test_retention_gray.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2

from kvarus_research.errors import AnalysisError
from kvarus_research.results import Definition, Result
from kvarus_research.retention.data import DROPOUT, TimeToEvent, as_time_to_event

GRAY = "Gray (1988), cumulative incidence"


def _gray_stratum(
    time: np.ndarray, status: np.ndarray, group: np.ndarray, ng: int, rho: float
) -> tuple[np.ndarray, np.ndarray]:
    """Score (first ng - 1 groups) and its covariance in one stratum.

    ``status`` is 0 censored, 1 the cause tested, 2 any other ending; ``group`` is coded ``0..ng-1``.
    """
    times, inv = np.unique(time, return_inverse=True)
    m = len(times)
    counts = np.zeros((m, ng, 3))
    np.add.at(counts, (inv, group, status), 1.0)
    at_risk = counts.sum(axis=2)[::-1].cumsum(axis=0)[::-1]  # courses with time >= t, per group
    k1 = ng - 1
    score = np.zeros(k1)
    var = np.zeros((k1, k1))
    s_prev = np.ones(ng)  # Kaplan–Meier (any ending) just before t, per group
    f_prev = np.zeros(ng)  # cumulative incidence of the cause just before t, per group
    pooled_prev = 0.0  # pooled (weighted) cumulative incidence just before t
    c = np.zeros((ng, ng))  # running sum of a(t) d_1(t) / (sum_k h_k (1 - F_1(t-)))
    v2 = np.zeros((k1, ng))
    v3 = np.zeros(ng)
    for j in range(m):
        d1, d2, r = counts[j, :, 1], counts[j, :, 2], at_risk[j]
        n1, n2 = d1.sum(), d2.sum()
        if n1 == 0 and n2 == 0:
            continue
        pos = r > 0
        safe_r = np.where(pos, r, 1.0)
        s_now = np.where(pos, s_prev * (r - d1 - d2) / safe_r, s_prev)
        f_now = np.where(pos, f_prev + s_prev * d1 / safe_r, f_prev)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = np.where(pos, r / s_prev, 0.0)
        tr = h.sum()
        tq = (h * (1 - f_prev)).sum()
        pooled = pooled_prev + n1 / tr
        w = (1 - pooled_prev) ** rho
        a = w * (np.diag(h) - np.outer(h, h) / tr)
        if n1 > 0:
            c += a * n1 / (tr * (1 - pooled_prev))
            score += w * (d1 - n1 * h * (1 - f_prev) / tq)[:k1]
            with np.errstate(divide="ignore", invalid="ignore"):
                t4 = np.where(s_now > 0, 1 - (1 - pooled) / s_now, 1.0)
                t5 = 1 - (n1 - 1) / (tr * s_prev - 1) if n1 > 1 else np.ones(ng)
                t3 = np.where(pos, t5 * s_prev * n1 / (tr * safe_r), 0.0)
            v3 += t4**2 * t3
            b = (a - c * t4[None, :])[:k1]
            v2 += b * (t4 * t3)[None, :]
            var += (b * t3[None, :]) @ b.T
        if n2 > 0:
            other = (s_now > 0) & (d2 > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                t4 = np.where(other, (1 - pooled) / s_now, 0.0)
                t5 = np.where(d2 > 1, 1 - (d2 - 1) / (safe_r - 1), 1.0)
                t3 = np.where(other, t5 * s_prev**2 * d2 / safe_r**2, 0.0)
            v3 += t4**2 * t3
            b = (c * t4[None, :])[:k1]
            v2 -= b * (t4 * t3)[None, :]
            var += (b * t3[None, :]) @ b.T
        s_prev, f_prev, pooled_prev = s_now, f_now, pooled
    ck = c[:k1]
    var += (ck * v3[None, :]) @ ck.T + ck @ v2.T + v2 @ ck.T
    return score, var


def gray_statistic(
    time: Any,
    status: Any,
    group: Any,
    *,
    strata: Any = None,
    rho: float = 0.0,
) -> tuple[float, int, float]:
    """Gray's K-sample test of cumulative incidence from plain arrays: ``(statistic, df, p_value)``.

    Parameters
    ----------
    time : array of float
        Time to the ending or to censoring.
    status : array of int
        0 censored, 1 the cause tested, 2 any competing ending.
    group : array
        Group of each row (any values; rows with a missing group are left out, as in ``cmprsk``).
    strata : array, optional
        Strata of a stratified test (scores and variances summed over strata).
    rho : float
        Power of the weight ``(1 - F(t-))^rho``; 0 (the default of ``cmprsk``) weights all times equally.

    Returns
    -------
    tuple
        Statistic (NaN when its covariance is singular), degrees of freedom K - 1, and the chi-square p-value.

    Examples
    --------
    >>> t = [1, 2, 3, 4, 5, 6, 7, 8]
    >>> stat, df, p = gray_statistic(t, [1, 1, 2, 0, 2, 1, 0, 1], ["a", "b"] * 4)
    >>> df, bool(0 <= p <= 1)
    (1, True)
    """
    time = np.asarray(time, dtype=float)
    status = np.asarray(status, dtype=np.int64)
    groups = pd.Series(np.asarray(group, dtype=object))
    strata_s = pd.Series(np.zeros(len(time)) if strata is None else np.asarray(strata, dtype=object))
    keep = groups.notna().to_numpy() & strata_s.notna().to_numpy() & np.isfinite(time)
    codes, uniques = pd.factorize(groups[keep], sort=True)
    ng = len(uniques)
    if ng < 2:
        raise AnalysisError("Gray's test needs at least two groups with courses")
    if not set(np.unique(status[keep])) <= {0, 1, 2}:
        raise AnalysisError("status must be 0 (censored), 1 (the cause tested) or 2 (a competing ending)")
    t, st, sc = time[keep], status[keep], strata_s[keep].to_numpy()
    score, var = np.zeros(ng - 1), np.zeros((ng - 1, ng - 1))
    for s in pd.unique(sc):
        rows = sc == s
        sk, vk = _gray_stratum(t[rows], st[rows], codes[rows], ng, rho)
        score += sk
        var += vk
    if np.linalg.matrix_rank(var) < ng - 1:
        return float("nan"), ng - 1, float("nan")
    stat = float(score @ np.linalg.solve(var, score))
    return stat, ng - 1, float(chi2.sf(stat, ng - 1))


class GrayTestResult(Result):
    """Gray's test of cumulative incidence between groups, one row per cause tested.

    Attributes
    ----------
    table : DataFrame
        ``cause, groups, test, statistic, df, p_value`` (no counts of courses: nothing to suppress).
    """

    count_columns = ()

    def __init__(self, table: pd.DataFrame, definition: Definition) -> None:
        self.table = table
        self.definition = definition


def gray_rows(tte: TimeToEvent, by: str, causes: Sequence[str], *, strata: str | None = None,
              rho: float = 0.0) -> pd.DataFrame:  # fmt: skip
    """Gray's test of each of ``causes`` across the groups of ``by`` (the other causes competing)."""
    t = tte.table
    for col in (by, strata):
        if col is not None and col not in t.columns:
            raise AnalysisError(f"{col!r}: no such column; available: {sorted(map(str, t.columns))}")
    rows = []
    for cause in causes:
        if cause not in tte.causes:
            raise AnalysisError(f"cause {cause!r} is not one of the causes {list(tte.causes)}")
        code = tte.causes.index(cause) + 1
        cc = t["cause_code"].to_numpy()
        status = np.where(cc == code, 1, np.where(cc > 0, 2, 0))
        stat, df, p = gray_statistic(
            t["duration"].to_numpy(dtype=float),
            status,
            t[by].to_numpy(dtype=object),
            strata=None if strata is None else t[strata].to_numpy(dtype=object),
            rho=rho,
        )
        label = GRAY + (f", stratified by {strata}" if strata else "") + (f", rho={rho:g}" if rho else "")
        rows.append({"cause": cause, "groups": df + 1, "test": label, "statistic": stat, "df": df,
                     "p_value": p})  # fmt: skip
    return pd.DataFrame(rows, columns=["cause", "groups", "test", "statistic", "df", "p_value"])


def gray_test(
    data: Any,
    *,
    by: str | None = None,
    cause: str | Sequence[str] | None = None,
    strata: str | None = None,
    rho: float = 0.0,
    dropout: Sequence[str] = ("interrupted",),
    extract_date: Any = None,
    time_unit: str = "days",
) -> GrayTestResult:
    """Gray's (1988) test for a difference in the cumulative incidence of one ending type between groups.

    The other ending types are competing events (not censored): this tests the curves
    :func:`cumulative_incidence` draws, unlike the cause-specific log-rank test, which compares hazards.

    Parameters
    ----------
    data : Cohort, Registry, DataFrame or TimeToEvent
        See :func:`kvarus_research.retention.time_to_event` and :func:`kvarus_research.retention.from_frame`.
    by : str
        Group column (default: the ``by`` given to :func:`from_frame`).
    cause : str or sequence of str, optional
        The cause(s) tested, each with all others competing: default ``"dropout"`` when it is a cause, else the
        first cause.
    strata : str, optional
        Column of a stratified test.
    rho : float
        Weight power, as ``cmprsk::cuminc(rho=)``; 0 by default.
    dropout, extract_date, time_unit
        Passed to :func:`time_to_event` when ``data`` is not a TimeToEvent already.

    Returns
    -------
    GrayTestResult
        ``.table``: ``cause, groups, test, statistic, df, p_value``.

    Examples
    --------
    >>> import pandas as pd
    >>> from kvarus_research.retention import from_frame
    >>> df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6, 7, 8], "status": [1, 1, 2, 0, 2, 1, 0, 1],
    ...                    "arm": ["a", "b"] * 4})
    >>> res = gray_test(from_frame(df, time="t", event="status", causes={1: "dropout", 2: "other"}), by="arm")
    >>> res.table[["cause", "df"]].values.tolist()
    [['dropout', 1]]
    """
    tte = as_time_to_event(data, dropout=dropout, extract_date=extract_date, time_unit=time_unit)
    by = by if by is not None else getattr(tte, "by", None)
    if by is None:
        raise AnalysisError("gray_test needs by= (the column whose groups are compared)")
    if cause is None:
        causes = [DROPOUT if DROPOUT in tte.causes else tte.causes[0]]
    else:
        causes = [cause] if isinstance(cause, str) else list(cause)
    table = gray_rows(tte, by, causes, strata=strata, rho=rho)
    details = dict(tte.definition.details)
    details.update(
        {
            "groups": f"by {tte.label(by)}",
            "test": "Gray's K-sample test of cumulative incidence (subdistribution hazards); the other "
            "ending types compete (not censored); chi-square with K - 1 df; as R cmprsk::cuminc",
            "weight": f"(1 - F(t-))^{rho:g}",
            **({"strata": strata} if strata else {}),
        }
    )
    return GrayTestResult(
        table, Definition(population=tte.definition.population, method=GRAY, details=details)
    )
