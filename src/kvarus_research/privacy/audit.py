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
    *,
    small_below: float | None = None,
    lower: np.ndarray | None = None,
) -> np.ndarray:
    """Positions of the suppressed cells a reader can pin to one integer: the cells whose
    :func:`attack_intervals` hold no other whole number (found with far fewer linear programs), and, with
    ``small_below`` (the rules' threshold), the cells whose interval holds only small counts (every whole number
    in it is 1 .. ``small_below`` - 1: the reader learns that the count is small).

    The equations split into independent groups of hidden cells (connected through the sums they share); each
    group with a cell to look at is solved on its own. Every solution a linear program finds is a table the
    reader cannot rule out: a cell whose value in it is a whole number or more away from the true value is not
    pinned, and a cell that reaches 0 or ``small_below`` in it has no small range. A few programs with random
    objectives clear most cells at once; each cell left is solved for, its maximum and, when that does not clear
    it, its minimum (in between, programs that push every cell left up together, then down, while they clear
    many). Only feasible solutions clear a cell, so no pinned cell is missed (a null-space test from an
    SVD, used before, declared a cell free that its equations fix: see the tests). Cells marked ``exempt`` are not
    looked at. ``upper`` and ``lower`` are what the reader knows of each cell beyond ``>= 0`` (NaN: nothing), e.g.
    a listed unit's denominator is at least the pooling limit.

    Examples
    --------
    >>> v = np.array([3.0, 10.0, 13.0, 6.0, 9.0]); links = [(2, [0, 1]), (4, [3, 0])]
    >>> pinned_cells(v, np.array([True, False, False, True, False]), links).tolist()  # 13 - 10, then 9 - 3
    [0, 3]
    >>> pinned_cells(v, np.array([True, True, False, True, False]), links).tolist()  # 3 + 10 = 13: 3, 6 move
    []

    A reader who knows that two hidden counts of 5 together are each at most 4 (say, numerators of published
    denominators of 4) learns that both are small, without pinning either:

    >>> pinned_cells(np.array([3.0, 2.0, 5.0]), np.array([True, True, False]), [(2, [0, 1])],
    ...              np.array([4.0, 4.0, np.inf])).tolist()  # 3 + 2 = 5, each at most 4: 1..4 both
    []
    >>> pinned_cells(np.array([3.0, 2.0, 5.0]), np.array([True, True, False]), [(2, [0, 1])],
    ...              np.array([4.0, 4.0, np.inf]), small_below=5).tolist()
    [0, 1]
    """
    from scipy.sparse import bmat
    from scipy.sparse.csgraph import connected_components

    unknown, a_all, b_all = _sparse_system(values, suppressed, constraints)
    if not len(unknown):
        return unknown
    cap_all = np.full(len(unknown), np.inf) if upper is None else np.asarray(upper, dtype=float)[unknown]
    cap_all = np.where(np.isnan(cap_all), np.inf, cap_all)
    floor_all = np.zeros(len(unknown)) if lower is None else np.asarray(lower, dtype=float)[unknown]
    floor_all = np.where(np.isnan(floor_all), 0.0, np.maximum(floor_all, 0.0))
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
        found = _pinned_in(
            values[unknown[cols]],
            a_eq,
            b_all[rows],
            cap_all[cols],
            look[cols],
            small_below=small_below,
            floor=floor_all[cols],
        )
        pinned += [int(unknown[cols[j]]) for j in found]
    return np.array(sorted(pinned), dtype=int)


def _pinned_in(
    x: np.ndarray,
    a_eq: np.ndarray,
    b_eq: np.ndarray,
    cap: np.ndarray,
    look: np.ndarray,
    n_random: int = 3,
    small_below: float | None = None,
    floor: np.ndarray | None = None,
) -> list[int]:
    """Which of the ``look`` columns of one group of equations are disclosed (see :func:`pinned_cells`).

    Examples
    --------
    >>> a = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]); b = np.array([5.0, 5.0]); x = np.array([2.0, 3.0, 2.0])
    >>> _pinned_in(x, a, b, np.full(3, np.inf), np.ones(3, dtype=bool))  # x1 = t, x0 = x2 = 5 - t: all move
    []
    >>> a3 = np.vstack([a, [1.0, 0.0, 1.0]])  # and x0 + x2 = 4: one solution
    >>> _pinned_in(x, a3, np.array([5.0, 5.0, 4.0]), np.full(3, np.inf), np.ones(3, dtype=bool))
    [0, 1, 2]
    """
    from scipy.sparse import csr_matrix

    tol = 1e-6
    n = len(x)
    floor = np.zeros(n) if floor is None else floor
    bounds = [(float(lo), None if np.isinf(u) else float(u)) for lo, u in zip(floor, cap)]
    sparse_a = csr_matrix(a_eq) if len(a_eq) else None
    done = ~np.asarray(look, dtype=bool)
    moved = done.copy()  # a solution holds another whole number
    ranged = np.ones(n, dtype=bool)  # the range holds 0 or a count that is not small
    if small_below is not None:
        ranged = done | (x <= tol) | (x >= small_below - tol)

    def run(c: np.ndarray) -> Any:
        res = linprog(c, A_eq=sparse_a, b_eq=b_eq, bounds=bounds, method="highs")
        if res.status == 0:  # a table the reader cannot rule out
            moved[np.abs(res.x - x) >= 1 - tol] = True
            if small_below is not None:
                ranged[(res.x <= tol) | (res.x >= small_below - tol)] = True
            done[moved & ranged] = True
        return res

    if sparse_a is not None:
        rng = np.random.default_rng(0)  # the same audit on every run
        for _ in range(n_random):
            c = rng.standard_normal(n)
            run(c)
            run(-c)
        while (~done).sum() > 8:  # push every cell left up together, then down: each program clears many
            left = int((~done).sum())
            c = np.where(done, 0.0, 1.0) * rng.uniform(0.5, 1.5, n)
            run(-c)
            run(c)
            if (~done).sum() > 0.8 * left:
                break
    pinned = []
    for j in range(n):
        if done[j]:
            continue
        if sparse_a is None or not a_eq[:, j].any():  # in no equation: only its bounds, floor .. cap
            lo_j = floor[j]
            if cap[j] - lo_j < 1 - tol or (
                small_below is not None and lo_j >= 1 - tol and cap[j] < small_below - tol
            ):
                pinned.append(j)
            continue
        c = np.zeros(n)
        c[j] = 1.0
        hi = run(-c)
        if done[j] or hi.status != 0:
            continue
        run(c)
        if not done[j]:
            pinned.append(j)
    return pinned


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
