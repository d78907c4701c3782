"""The attack a reader could run on a protected table: how far each hidden cell can be pinned down.

A table with totals is a set of additive constraints (each total cell equals the sum of its component cells).
:func:`attack_intervals` gives, for every hidden cell, the minimum and maximum a reader can work out from the
published cells, the totals, non-negativity and any upper bound they know (a numerator is at most its
denominator), by linear programming. :func:`pinned_cells` answers only whether a hidden cell is pinned to one
value, with far fewer linear programs; secondary suppression audits its result with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


def _sparse_system(
    values: np.ndarray, suppressed: np.ndarray, constraints: Sequence[Constraint]
) -> tuple[np.ndarray, Any, np.ndarray]:
    """The reader's equations over the suppressed cells as a sparse matrix: (positions, A, b) with ``A x = b``."""
    from scipy.sparse import csr_matrix

    unknown = np.flatnonzero(suppressed)
    col = np.full(len(values), -1, dtype=np.int64)
    col[unknown] = np.arange(len(unknown))
    rows, cols, data, rhs = [], [], [], []
    for total, comps in constraints:
        entries: dict[int, float] = {}
        b = 0.0
        for c, sign in ((total, -1.0), *((c, 1.0) for c in comps)):
            j = col[c]
            if j >= 0:
                entries[j] = entries.get(j, 0.0) + sign
            else:
                b -= sign * values[c]
        entries = {j: v for j, v in entries.items() if v != 0.0}
        if entries and not np.isnan(b):
            r = len(rhs)
            rows += [r] * len(entries)
            cols += list(entries)
            data += list(entries.values())
            rhs.append(b)
    a = csr_matrix((data, (rows, cols)), shape=(len(rhs), len(unknown)))
    return unknown, a, np.array(rhs, dtype=float)


def pinned_cells(
    values: np.ndarray,
    suppressed: np.ndarray,
    constraints: Sequence[Constraint],
    upper: np.ndarray | None = None,
    exempt: np.ndarray | None = None,
) -> np.ndarray:
    """Positions of the suppressed cells a reader can pin to one value: the cells whose
    :func:`attack_intervals` are narrower than 0.5, found with far fewer linear programs.

    The equations split into independent groups of hidden cells (connected through the sums they share); each
    group with a cell to look at is solved on its own. A cell strictly inside its bounds that some solution of
    its group's equations can move is not pinned (the null space of those equations, from one SVD, shows which);
    only the others are solved for, first its maximum and, when that does not clear it, its minimum. Cells marked
    ``exempt`` are not looked at.

    Examples
    --------
    >>> v = np.array([3.0, 10.0, 13.0, 6.0, 9.0]); links = [(2, [0, 1]), (4, [3, 0])]
    >>> pinned_cells(v, np.array([True, False, False, True, False]), links).tolist()  # 13 - 10, then 9 - 3
    [0, 3]
    >>> pinned_cells(v, np.array([True, True, False, True, False]), links).tolist()  # 3 + 10 = 13: 3, 6 move
    []
    """
    from scipy.sparse import bmat
    from scipy.sparse.csgraph import connected_components

    unknown, a_all, b_all = _sparse_system(values, suppressed, constraints)
    if not len(unknown):
        return unknown
    cap_all = np.full(len(unknown), np.inf) if upper is None else np.asarray(upper, dtype=float)[unknown]
    cap_all = np.where(np.isnan(cap_all), np.inf, cap_all)
    look = np.ones(len(unknown), dtype=bool) if exempt is None else ~np.asarray(exempt, dtype=bool)[unknown]
    n_rows = a_all.shape[0]
    graph = bmat([[None, abs(a_all)], [abs(a_all).T, None]]) if n_rows else None
    if graph is not None:
        _, label = connected_components(graph, directed=False)
        row_label, col_label = label[:n_rows], label[n_rows:]
    else:
        col_label = np.arange(len(unknown))
        row_label = np.zeros(0, dtype=int)
    pinned = []
    for group in np.unique(col_label[look]):
        cols = np.flatnonzero(col_label == group)
        rows = np.flatnonzero(row_label == group)
        a_eq = a_all[rows][:, cols].toarray() if len(rows) else np.zeros((0, len(cols)))
        found = _pinned_in(values[unknown[cols]], a_eq, b_all[rows], cap_all[cols], look[cols])
        pinned += [int(unknown[cols[j]]) for j in found]
    return np.array(sorted(pinned), dtype=int)


def _pinned_in(
    x: np.ndarray, a_eq: np.ndarray, b_eq: np.ndarray, cap: np.ndarray, look: np.ndarray
) -> list[int]:
    """Which of the ``look`` columns of one group of equations are pinned (see :func:`pinned_cells`)."""
    interior = (x > 0.5) & (x < cap - 0.5)
    free = np.zeros(len(x), dtype=bool)
    if interior.any():
        free[np.flatnonzero(interior)] = _movable(a_eq[:, interior])
    from scipy.sparse import csr_matrix

    bounds = [(0.0, None if np.isinf(u) else float(u)) for u in cap]
    sparse_a = csr_matrix(a_eq) if len(a_eq) else None
    pinned = []
    for j in np.flatnonzero(look & ~free):
        if not len(a_eq) or not a_eq[:, j].any():
            if cap[j] < 0.5:
                pinned.append(int(j))
            continue
        c = np.zeros(len(x))
        c[j] = 1.0
        hi = linprog(-c, A_eq=sparse_a, b_eq=b_eq, bounds=bounds, method="highs")
        if hi.status != 0 or -hi.fun - x[j] >= 0.5:
            continue
        lo = linprog(c, A_eq=sparse_a, b_eq=b_eq, bounds=bounds, method="highs")
        if lo.status == 0 and -hi.fun - lo.fun < 0.5:
            pinned.append(int(j))
    return pinned


def _movable(a: np.ndarray) -> np.ndarray:
    """Which columns some solution of ``a x = 0`` moves (not in the row space of ``a``).

    A column that appears in a single row is worked out from that row, which then asks nothing of the other
    columns: the two are set aside (repeatedly) before one economy SVD of what is left, and such a column moves
    exactly when another column of its row does.

    Examples
    --------
    >>> _movable(np.array([[1.0, -1.0, 0.0], [0.0, 1.0, 0.0]])).tolist()  # x1 = 0 then x0 = x1; x2 is free
    [False, False, True]
    >>> _movable(np.array([[1.0, 1.0, 1.0], [0.0, 1.0, -1.0]])).tolist()  # x1 = x2 moves, x0 with them
    [True, True, True]
    """
    nz = a != 0
    rows = np.ones(a.shape[0], dtype=bool)
    cols = np.ones(a.shape[1], dtype=bool)
    eliminated: list[tuple[int, np.ndarray]] = []
    while True:
        per_col = nz[rows][:, cols].sum(axis=0)
        singles = np.flatnonzero(cols)[per_col == 1]
        if not len(singles):
            break
        for c in singles:
            if not cols[c]:
                continue
            r = np.flatnonzero(rows & nz[:, c])
            if len(r) != 1:
                continue
            r = int(r[0])
            others = np.flatnonzero(nz[r] & cols)
            others = others[others != c]
            eliminated.append((int(c), others))
            cols[c] = False
            rows[r] = False
    moves = np.zeros(a.shape[1], dtype=bool)
    keep = np.flatnonzero(cols)
    if len(keep):
        sub = a[np.ix_(rows, cols)]
        if sub.shape[0]:
            _, sv, vt = np.linalg.svd(sub, full_matrices=False)
            rank = int((sv > 1e-9 * max(1.0, sv.max(initial=0.0))).sum())
            in_rows = (vt[:rank] ** 2).sum(axis=0)
            moves[keep] = in_rows < 1.0 - 1e-9
        else:
            moves[keep] = True
    for c, others in reversed(eliminated):
        moves[c] = bool(moves[others].any())
    return moves


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
