"""Statistical process control for an indicator over time: p-chart limits per phase and run rules.

- **p-chart**: per phase (the periods between declared change points) the centre line is p̄ = Σx / Σn over the
  phase, and the limits are p̄ ± 3·√(p̄(1 − p̄)/nₜ), clipped to [0, 1]; a period outside them is a *3-sigma*
  signal.
- **Anhøj's rules** (Anhøj & Olesen 2014, *Run charts revisited*, PLoS ONE 9:e113825; as in qicharts2), per phase,
  over the *useful* periods (shown and not on the centre line), n of them:

  - *longest run*: a run is a sequence of consecutive useful periods on the same side of the centre line; a signal
    when the longest run is longer than ``round(log2(n) + 3)``;
  - *crossings*: the number of times consecutive useful periods switch sides; a signal when fewer than
    ``qbinom(0.05, n − 1, 0.5)`` (the 5th percentile of Bin(n − 1, ½)).

  Either is a sign of non-random variation (a shift), even with every period inside the 3-sigma limits.

Periods whose proportion is missing (hidden by disclosure control) are skipped by the run rules, as if absent.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.indicators.limits import _binom_quantile


def anhoej_thresholds(n_useful: int) -> tuple[int, int]:
    """Anhøj's limits for ``n_useful`` useful periods: (longest run allowed, fewest crossings expected).

    A signal is a longest run *longer* than the first, or *fewer* crossings than the second.

    Examples
    --------
    >>> anhoej_thresholds(24)  # round(log2(24) + 3) = round(7.58) = 8; qbinom(0.05, 23, 0.5) = 8
    (8, 8)
    >>> anhoej_thresholds(10)
    (6, 2)
    """
    if n_useful < 1:
        return 0, 0
    longest = int(round(math.log2(n_useful) + 3))
    crossings = int(_binom_quantile(0.05, np.array([n_useful - 1]), 0.5)[0]) if n_useful > 1 else 0
    return longest, crossings


def phases(periods: Any, change_points: Any = ()) -> np.ndarray:
    """Phase number (1, 2, …) of each period; a change point is the first period of a new phase.

    Examples
    --------
    >>> phases(["2021Q1", "2021Q2", "2021Q3", "2021Q4"], ["2021Q3"]).tolist()
    [1, 1, 2, 2]
    """
    from kvarus_research.errors import AnalysisError

    labels = [str(p) for p in periods]
    out = np.ones(len(labels), dtype=np.int64)
    for cp in change_points:
        if str(cp) not in labels:
            raise AnalysisError(f"change point {cp!r} is not one of the periods {labels[:3]}…{labels[-1:]}")
        out[labels.index(str(cp)) :] += 1
    return out


def p_chart_limits(numerator: Any, denominator: Any, phase: Any) -> pd.DataFrame:
    """Centre line, 3-sigma limits and 3-sigma signals per period, the centre computed within each phase.

    Periods with a missing numerator or denominator do not enter the centre line; a missing denominator gives
    missing limits, a missing numerator a missing signal.

    Returns
    -------
    DataFrame
        ``centre, lcl, ucl, signal`` (signal 1.0 / 0.0, NaN when the proportion is missing).

    Examples
    --------
    >>> p_chart_limits([10, 30], [100, 100], [1, 1]).round(4).to_dict("list")
    {'centre': [0.2, 0.2], 'lcl': [0.08, 0.08], 'ucl': [0.32, 0.32], 'signal': [0.0, 0.0]}
    """
    x = pd.to_numeric(pd.Series(numerator), errors="coerce").to_numpy(dtype=float)
    n = pd.to_numeric(pd.Series(denominator), errors="coerce").to_numpy(dtype=float)
    ph = np.asarray(phase)
    centre = np.full(len(x), np.nan)
    both = ~np.isnan(x) & ~np.isnan(n)
    for k in np.unique(ph):
        m = (ph == k) & both
        if m.any() and n[m].sum() > 0:
            centre[ph == k] = x[m].sum() / n[m].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        half = 3 * np.sqrt(centre * (1 - centre) / n)
        p = x / n
    lcl, ucl = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
    signal = np.where(np.isnan(p) | np.isnan(lcl), np.nan, ((p < lcl) | (p > ucl)).astype(float))
    return pd.DataFrame({"centre": centre, "lcl": lcl, "ucl": ucl, "signal": signal})


def _runs(side: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of equal values in ``side``."""
    runs, start = [], 0
    for i in range(1, len(side) + 1):
        if i == len(side) or side[i] != side[start]:
            runs.append((start, i - start))
            start = i
    return runs


def run_rules(table: pd.DataFrame) -> pd.DataFrame:
    """Anhøj's run rules and the 3-sigma rule per phase of a p-chart table.

    Parameters
    ----------
    table : DataFrame
        ``period, proportion, centre, signal`` and optionally ``phase`` (one phase when absent), e.g. from
        :meth:`IndicatorResult.spc_table` or its protected side table (hidden periods skipped).

    Returns
    -------
    DataFrame
        One row per phase: ``phase, first, last, n_useful, longest_run, longest_run_max, run_signal, crossings,
        crossings_min, crossing_signal, sigma_signals`` (the periods outside the 3-sigma limits, comma-separated).

    Examples
    --------
    Twelve months alternating about the centre line, the last five above it: the longest run (5) is within
    round(log2(12) + 3) = 7, and 7 crossings are not fewer than qbinom(0.05, 11, 0.5) = 3.

    >>> p = [0.1, 0.3, 0.1, 0.3, 0.1, 0.3, 0.1] + [0.3] * 5
    >>> t = pd.DataFrame({"period": range(12), "proportion": p, "centre": 0.2, "signal": 0.0})
    >>> r = run_rules(t).iloc[0]
    >>> int(r["longest_run"]), int(r["longest_run_max"]), int(r["crossings"]), int(r["crossings_min"])
    (5, 7, 7, 3)
    >>> bool(r["run_signal"]), bool(r["crossing_signal"])
    (False, False)
    """
    t = table.reset_index(drop=True)
    ph = t["phase"].to_numpy() if "phase" in t else np.ones(len(t), dtype=np.int64)
    rows = []
    for k in pd.unique(ph):
        part = t[ph == k]
        p = part["proportion"].astype(float).to_numpy()
        c = part["centre"].astype(float).to_numpy()
        useful = ~np.isnan(p) & ~np.isnan(c) & ~np.isclose(p, c, rtol=0, atol=1e-12)
        side = np.sign(p[useful] - c[useful])
        n_useful = int(useful.sum())
        longest = max((length for _, length in _runs(side)), default=0)
        crossings = int((side[1:] != side[:-1]).sum()) if n_useful > 1 else 0
        lmax, cmin = anhoej_thresholds(n_useful)
        sig = pd.to_numeric(part["signal"], errors="coerce").fillna(0).to_numpy(dtype=float) > 0
        rows.append(
            {
                "phase": k,
                "first": str(part["period"].iloc[0]),
                "last": str(part["period"].iloc[-1]),
                "n_useful": n_useful,
                "longest_run": longest,
                "longest_run_max": lmax,
                "run_signal": n_useful > 0 and longest > lmax,
                "crossings": crossings,
                "crossings_min": cmin,
                "crossing_signal": n_useful > 1 and crossings < cmin,
                "sigma_signals": ", ".join(str(v) for v in part["period"][sig]),
            }
        )
    return pd.DataFrame(rows)


def long_run_mask(table: pd.DataFrame) -> np.ndarray:
    """Which periods belong to a run longer than Anhøj's limit of their phase (for marking in the figure).

    Examples
    --------
    >>> p = [0.1, 0.3] + [0.3] * 8
    >>> t = pd.DataFrame({"period": range(10), "proportion": p, "centre": 0.2, "signal": 0.0})
    >>> long_run_mask(t).astype(int).tolist()  # a run of 9 > round(log2(10) + 3) = 6
    [0, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    """
    t = table.reset_index(drop=True)
    ph = t["phase"].to_numpy() if "phase" in t else np.ones(len(t), dtype=np.int64)
    out = np.zeros(len(t), dtype=bool)
    for k in pd.unique(ph):
        idx = np.flatnonzero(ph == k)
        p = t["proportion"].astype(float).to_numpy()[idx]
        c = t["centre"].astype(float).to_numpy()[idx]
        useful = ~np.isnan(p) & ~np.isnan(c) & ~np.isclose(p, c, rtol=0, atol=1e-12)
        where = idx[useful]
        side = np.sign(p[useful] - c[useful])
        lmax, _ = anhoej_thresholds(len(where))
        for start, length in _runs(side):
            if length > lmax:
                out[where[start : start + length]] = True
    return out


def signal_table(table: pd.DataFrame) -> pd.DataFrame:
    """The signals of a p-chart table, one row each: ``phase, rule, periods, value, limit``.

    Rules: ``"3-sigma"`` (one row per period outside the limits, value the proportion and limit the crossed
    limit), ``"longest run"`` and ``"crossings"`` (Anhøj, one row per phase with a signal).

    Examples
    --------
    >>> p = [0.1, 0.3] + [0.3] * 8
    >>> t = pd.DataFrame({"period": range(10), "proportion": p, "centre": 0.2, "lcl": 0.0, "ucl": 0.5,
    ...     "signal": 0.0})
    >>> signal_table(t)[["rule", "periods", "value", "limit"]].values.tolist()
    [['longest run', '1-9', 9.0, 6.0], ['crossings', '0-9', 1.0, 2.0]]
    """
    t = table.reset_index(drop=True)
    ph = t["phase"].to_numpy() if "phase" in t else np.ones(len(t), dtype=np.int64)
    summary = run_rules(t)
    rows: list[dict[str, Any]] = []
    long = long_run_mask(t)
    sig = pd.to_numeric(t["signal"], errors="coerce").fillna(0).to_numpy(dtype=float) > 0
    for _, s in summary.iterrows():
        k = s["phase"]
        in_phase = ph == k
        for i in np.flatnonzero(in_phase & sig):
            p = float(t["proportion"].iloc[i])
            above = p > float(t["ucl"].iloc[i])
            rows.append({"phase": k, "rule": "3-sigma", "periods": str(t["period"].iloc[i]), "value": p,
                         "limit": float(t["ucl" if above else "lcl"].iloc[i])})  # fmt: skip
        if s["run_signal"]:
            idx = np.flatnonzero(in_phase & long)
            rows.append({"phase": k, "rule": "longest run", "periods": f"{t['period'].iloc[idx[0]]}-"
                         f"{t['period'].iloc[idx[-1]]}", "value": float(s["longest_run"]),
                         "limit": float(s["longest_run_max"])})  # fmt: skip
        if s["crossing_signal"]:
            rows.append({"phase": k, "rule": "crossings", "periods": f"{s['first']}-{s['last']}",
                         "value": float(s["crossings"]), "limit": float(s["crossings_min"])})  # fmt: skip
    return pd.DataFrame(rows, columns=["phase", "rule", "periods", "value", "limit"])
