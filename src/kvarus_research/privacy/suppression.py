"""The pieces of secondary suppression that :mod:`kvarus_research.privacy.engine` builds on.

A table with totals is a set of additive constraints: each total cell equals the sum of its component cells
(:func:`build_constraints` reads them from a long table's total rows). A suppressed cell that is the only
suppressed cell of a constraint can be recomputed by subtraction; the engine hides partners for it, chosen here:
the fewest, smallest cells, preferring ones that close a second constraint at once (``_pick``), or, for a cell the
audit (:func:`kvarus_research.privacy.audit.pinned_cells`) finds pinned through a chain of totals, the nearest
total that still has a published cell (``_nearest_partner``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from kvarus_research.privacy.audit import Constraint


def build_constraints(
    table: pd.DataFrame, margins: Mapping[str, Hashable], dims: Sequence[str]
) -> list[Constraint]:
    """The additive constraints of a long table with total rows.

    For each margin column ``m`` with total label ``T``: within each group of rows sharing the values of the other
    dimension columns, the row with ``m == T`` is the sum of the rows with ``m != T``.

    Examples
    --------
    >>> t = pd.DataFrame({"unit": ["A", "B", "Total"], "n": [3, 10, 13]})
    >>> build_constraints(t, {"unit": "Total"}, ["unit"])
    [(2, [0, 1])]
    """
    out: list[Constraint] = []
    pos = pd.Series(np.arange(len(table)), index=table.index)
    for col, label in margins.items():
        others = [d for d in dims if d != col]
        is_total = (table[col] == label).to_numpy()
        keys = [table[o].astype(str).to_numpy() for o in others] or [np.zeros(len(table), dtype=int)]
        groups = pd.Series(pos.to_numpy()).groupby(keys, sort=False)
        for _, idx in groups:
            members = idx.to_numpy()
            totals = members[is_total[members]]
            comps = members[~is_total[members]]
            if len(totals) == 1 and len(comps) > 0:
                out.append((int(totals[0]), [int(c) for c in comps]))
    return out


def _pick(
    cells: list[int],
    total: int,
    values: np.ndarray,
    sup: np.ndarray,
    member_of: dict[int, list[int]],
    constraints: Sequence[Constraint],
    priority: np.ndarray | None = None,
) -> tuple[int | None, tuple | None]:
    """The best extra cell to suppress among ``cells`` and its sort key: the lowest ``priority`` first (e.g. units
    before regions before the nation), then a non-zero component (smallest first, preferring one that also fixes
    another constraint), then the total, then a zero."""
    best, best_key = None, None
    for c in cells:
        if sup[c] or np.isnan(values[c]):
            continue
        fixes = sum(1 for k in member_of[c] if _n_suppressed(constraints[k], sup) == 1)
        klass = 1 if c == total else (2 if values[c] == 0 else 0)
        key = (0 if priority is None else priority[c], klass, -fixes, values[c], c)
        if best_key is None or key < best_key:
            best, best_key = c, key
    return best, best_key


def _n_suppressed(constraint: Constraint, sup: np.ndarray) -> int:
    total, comps = constraint
    return int(sup[total]) + int(sup[comps].sum())


def _nearest_partner(
    cell: int,
    values: np.ndarray,
    sup: np.ndarray,
    member_of: dict[int, list[int]],
    constraints: Sequence[Constraint],
    priority: np.ndarray | None,
) -> int | None:
    """A published cell to hide for a pinned one: the best candidate in the pinned cell's own constraints, or,
    when all their cells are hidden already (the cell is pinned through a chain of totals), in the constraints
    of the hidden cells it is linked to, nearest first."""
    frontier, seen_cells, seen = [cell], {cell}, set()
    while frontier:
        picks, nxt = [], []
        for c in frontier:
            for k in member_of.get(c, []):
                if k in seen:
                    continue
                seen.add(k)
                total, comps = constraints[k]
                p, key = _pick([*comps, total], total, values, sup, member_of, constraints, priority)
                if p is not None:
                    picks.append((key, p))
                for x in (total, *comps):
                    if sup[x] and x not in seen_cells:
                        seen_cells.add(x)
                        nxt.append(x)
        if picks:
            return min(picks)[1]
        frontier = nxt
    return None
