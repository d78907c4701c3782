"""The attack a reader could run on a protected table: how far each hidden cell can be pinned down.

A table with totals is a set of additive constraints (each total cell equals the sum of its component cells).
:func:`attack_intervals` gives, for every hidden cell, the minimum and maximum a reader can work out from the
published cells, the totals, non-negativity and any upper bound they know (a numerator is at most its
denominator), by linear programming. :func:`pinned_cells` answers only whether a hidden cell is pinned to one
value, with far fewer linear programs; secondary suppression audits its result with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linprog

#: A constraint: (position of the total cell, positions of its component cells).
Constraint = tuple[int, list[int]]


def holds(values: np.ndarray, constraint: Constraint) -> bool:
    """Whether the total of ``constraint`` equals the sum of its components in ``values`` (none missing).

    Examples
    --------
    >>> holds(np.array([3.0, 10.0, 13.0]), (2, [0, 1])), holds(np.array([3.0, np.nan, 13.0]), (2, [0, 1]))
    (True, False)
    """
    total, comps = constraint
    if np.isnan(values[[total, *comps]]).any():
        return False
    return bool(values[total] == values[comps].sum())


def _system(
    values: np.ndarray, suppressed: np.ndarray, constraints: Sequence[Constraint], upper: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The reader's equations over the suppressed cells: (positions, A, b, upper bounds) with ``A x = b``."""
    unknown = np.flatnonzero(suppressed)
    col = {p: j for j, p in enumerate(unknown)}
    rows, rhs = [], []
    for total, comps in constraints:
        a = np.zeros(len(unknown))
        b = 0.0
        for c, sign in [(total, -1.0)] + [(c, 1.0) for c in comps]:
            if c in col:
                a[col[c]] += sign
            else:
                b -= sign * values[c]
        if a.any() and not np.isnan(b):
            rows.append(a)
            rhs.append(b)
    cap = np.full(len(unknown), np.inf) if upper is None else np.asarray(upper, dtype=float)[unknown]
    cap = np.where(np.isnan(cap), np.inf, cap)
    a_eq = np.array(rows) if rows else np.zeros((0, len(unknown)))
    return unknown, a_eq, np.array(rhs), cap


def pinned_cells(
    values: np.ndarray,
    suppressed: np.ndarray,
    constraints: Sequence[Constraint],
    upper: np.ndarray | None = None,
    exempt: np.ndarray | None = None,
) -> np.ndarray:
    """Positions of the suppressed cells a reader can pin to one value: the cells whose
    :func:`attack_intervals` are narrower than 0.5, found with far fewer linear programs.

    A cell strictly inside its bounds that some solution of the equations over such cells can move is not pinned
    (the null space of those equations, from one SVD, shows which); only the others are solved for, first its
    maximum and, when that does not clear it, its minimum. Cells marked ``exempt`` are not looked at.

    Examples
    --------
    >>> v = np.array([3.0, 10.0, 13.0, 6.0, 9.0]); links = [(2, [0, 1]), (4, [3, 0])]
    >>> pinned_cells(v, np.array([True, False, False, True, False]), links).tolist()  # 13 - 10, then 9 - 3
    [0, 3]
    >>> pinned_cells(v, np.array([True, True, False, True, False]), links).tolist()  # 3 + 10 = 13: 3, 6 move
    []
    """
    unknown, a_eq, b_eq, cap = _system(values, suppressed, constraints, upper)
    if not len(unknown):
        return unknown
    x = values[unknown]
    interior = (x > 0.5) & (x < cap - 0.5)
    free = np.zeros(len(unknown), dtype=bool)
    if interior.any():
        sub = a_eq[:, interior]
        if len(sub):
            _, sv, vt = np.linalg.svd(sub, full_matrices=True)
            rank = int((sv > 1e-9 * max(1.0, sv.max(initial=0.0))).sum())
            null = vt[rank:]
        else:
            null = np.eye(int(interior.sum()))
        free[np.flatnonzero(interior)] = np.abs(null).max(axis=0, initial=0.0) > 1e-9
    bounds = [(0.0, None if np.isinf(u) else float(u)) for u in cap]
    pinned = []
    skip = free if exempt is None else free | np.asarray(exempt, dtype=bool)[unknown]
    for j in np.flatnonzero(~skip):
        if not len(a_eq) or not a_eq[:, j].any():
            if cap[j] < 0.5:
                pinned.append(unknown[j])
            continue
        c = np.zeros(len(unknown))
        c[j] = 1.0
        hi = linprog(-c, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        if hi.status != 0 or -hi.fun - x[j] >= 0.5:
            continue
        lo = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        if lo.status == 0 and -hi.fun - lo.fun < 0.5:
            pinned.append(unknown[j])
    return np.array(pinned, dtype=int)


def attack_intervals(
    values: np.ndarray,
    suppressed: np.ndarray,
    constraints: Sequence[Constraint],
    upper: np.ndarray | None = None,
) -> pd.DataFrame:
    """Bounds an attacker can compute for each suppressed cell from the published cells and the totals.

    Solves ``min x_i`` and ``max x_i`` by linear programming (``scipy.optimize.linprog``, HiGHS) subject to every
    constraint, with published cells fixed at their values and suppressed cells ``>= 0`` (and ``<= upper``
    where ``upper`` is given and finite: e.g. a numerator is at most its published denominator).

    Returns
    -------
    DataFrame
        ``position``, ``lower``, ``upper`` (``inf`` when unbounded), one row per suppressed cell.

    Examples
    --------
    >>> v = np.array([3.0, 10.0, 13.0]); s = np.array([True, False, False])
    >>> attack_intervals(v, s, [(2, [0, 1])]).values.tolist()  # 13 - 10 = 3: recomputable
    [[0.0, 3.0, 3.0]]
    """
    unknown, a_eq, b_eq, cap = _system(values, suppressed, constraints, upper)
    bounds = [(0.0, None if np.isinf(u) else float(u)) for u in cap]
    lower = np.zeros(len(unknown))
    high = cap.copy()
    if len(a_eq):
        for j in range(len(unknown)):
            if not a_eq[:, j].any():
                continue
            c = np.zeros(len(unknown))
            c[j] = 1.0
            lo = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
            hi = linprog(-c, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
            lower[j] = lo.fun if lo.status == 0 else 0.0
            high[j] = -hi.fun if hi.status == 0 else cap[j]
    return pd.DataFrame({"position": unknown, "lower": lower, "upper": high})
