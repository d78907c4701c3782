"""Secondary suppression and the recomputation audit behind :func:`kvarus_research.privacy.protect`.

A table with totals is a set of additive constraints: each total cell equals the sum of its component cells. A
suppressed cell that is the only suppressed cell of a constraint can be recomputed by subtraction; a group of
suppressed cells whose sum is published and small discloses a small count too. :func:`secondary_suppress` adds the
fewest, smallest extra cells it can (preferring cells that close a second constraint at once) until neither
happens, then audits the result with :func:`kvarus_research.privacy.audit.pinned_cells` (the attack a reader could
run: how far each suppressed cell is pinned down by the published cells, the totals, non-negativity and known
bounds) and adds cells until no suppressed cell is pinned to a single value (a hidden zero found to be zero
excepted, unless zeros are secret too). :func:`complement_suppress` does the same for a count and its complement.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from kvarus_research.errors import PrivacyError
from kvarus_research.privacy.audit import Constraint, pinned_cells


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


def partition_constraints(
    table: pd.DataFrame,
    values: np.ndarray,
    totals: np.ndarray,
    categories: Sequence[str],
    dims: Sequence[str],
    start: int,
) -> tuple[list[Constraint], np.ndarray]:
    """Constraints for rows that differ only in ``categories`` and add up to the row total they share.

    Each such group (a distribution over categories, e.g. the reliable-change categories of one outcome and
    group) gets a virtual total cell, numbered from ``start``, holding the shared total. Groups with a missing
    value are left out.

    Returns
    -------
    (list of constraints, ndarray)
        The constraints and the values of the virtual total cells.

    Raises
    ------
    PrivacyError
        When the rows of a group do not share one total, or do not add up to it.

    Examples
    --------
    >>> t = pd.DataFrame({"group": ["a", "a", "a"], "category": ["x", "y", "z"]})
    >>> partition_constraints(t, np.array([3.0, 10, 7]), np.array([20.0] * 3), ["category"], ["group", "category"], 3)
    ([(3, [0, 1, 2])], array([20.]))
    """
    others = [d for d in dims if d not in categories]
    keys = [table[o].astype(str).to_numpy() for o in others] or [np.zeros(len(table), dtype=int)]
    out: list[Constraint] = []
    virtual: list[float] = []
    for label, idx in pd.Series(np.arange(len(table))).groupby(keys, sort=False):
        rows = idx.to_numpy()
        v, t = values[rows], totals[rows]
        if np.isnan(v).any() or np.isnan(t).any():
            continue
        if (t != t[0]).any() or v.sum() != t[0]:
            what = "carry different totals" if (t != t[0]).any() else "do not"
            raise PrivacyError(  # no count in the message: it could be one the rules would hide
                f"protect: the rows of group {label} (rows {rows[0]}-{rows[-1]}) should add up to the total they "
                f"share, but {what}; check the partition (count column, total column, categories)"
            )
        out.append((start + len(virtual), [int(r) for r in rows]))
        virtual.append(float(t[0]))
    return out, np.array(virtual, dtype=float)


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


def secondary_suppress(
    values: np.ndarray,
    primary: np.ndarray,
    constraints: Sequence[Constraint],
    threshold: int,
    upper: np.ndarray | None = None,
    priority: np.ndarray | None = None,
    zeros_secret: bool = False,
    audit_only: np.ndarray | None = None,
) -> np.ndarray:
    """Extend ``primary`` so no suppressed cell can be recomputed and no small suppressed sum is disclosed.

    Parameters
    ----------
    values : ndarray of float
        Cell values (NaN = missing, never chosen).
    primary : ndarray of bool
        Cells suppressed by the primary rule.
    constraints : list of (total, components)
    threshold : int
        Sums of suppressed components below this (with a published total) are themselves disclosive.
    upper : ndarray of float, optional
        An upper bound the reader knows for each cell (``inf``/NaN = none), used in the audit.
    priority : ndarray of int, optional
        Which cells to give up first as partners (lower first); by default all alike.
    zeros_secret : bool
        Whether a hidden zero must not be recomputable either (when the rules suppress zeros); by default a hidden
        zero found to be zero is no disclosure.
    audit_only : ndarray of bool, optional
        The cells the audit keeps from being pinned (e.g. the small counts); by default every suppressed cell.

    Returns
    -------
    ndarray of bool
        All suppressed cells (primary and secondary).

    Examples
    --------
    >>> v = np.array([3.0, 0.0, 10.0, 12.0, 25.0]); p = v == 3
    >>> secondary_suppress(v, p, [(4, [0, 1, 2, 3])], 5).tolist()  # partner: smallest non-zero, 10
    [True, False, True, False, False]
    """
    sup = primary.copy()
    if not constraints:
        return sup
    member_of: dict[int, list[int]] = {}
    for k, (total, comps) in enumerate(constraints):
        for c in [total, *comps]:
            member_of.setdefault(c, []).append(k)
    # with one constraint per cell and no known bounds, the rules above already stop every recomputation
    shared = upper is not None or any(len(ks) > 1 for ks in member_of.values())
    # a hidden zero found to be zero tells what the rules would have shown anyway, and so does a count found to
    # equal its total (a zero complement) when the count itself is not small
    exempt = np.zeros(len(values), dtype=bool)
    if not zeros_secret:
        exempt |= values == 0
        if upper is not None:
            exempt |= (values == np.asarray(upper, dtype=float)) & (values >= threshold)
    if audit_only is not None:
        exempt |= ~np.asarray(audit_only, dtype=bool)
    while True:
        changed = True
        while changed:
            changed = False
            for total, comps in constraints:
                cells = [*comps, total]
                n_sup = int(sup[cells].sum())
                if n_sup == 0:
                    continue
                small_sum = not sup[total] and 0 <= np.nansum(values[comps][sup[comps]]) < threshold
                if n_sup == 1 or small_sum:
                    p, _ = _pick(cells, total, values, sup, member_of, constraints, priority)
                    if p is not None:
                        sup[p] = True
                        changed = True
        if not shared:
            return sup
        pinned = pinned_cells(values, sup, constraints, upper, exempt)
        added = False
        for cell in pinned:
            p = _nearest_partner(int(cell), values, sup, member_of, constraints, priority)
            if p is not None:
                sup[p] = True
                added = True
        if not added:
            return sup


def complement_suppress(
    values: np.ndarray,
    totals: np.ndarray,
    primary: np.ndarray,
    constraints: Sequence[Constraint],
    threshold: int,
    priority: np.ndarray | None = None,
    zeros_secret: bool = False,
) -> np.ndarray:
    """Suppression of a count whose complement in its row (``totals - values``) counts people too.

    With the row total published, hiding the count hides its complement, and the complement could be recomputed
    exactly when the count could. So one pattern serves both: it is extended until it protects the counts and
    the complements alike (each audited with the bound ``count <= total`` the reader knows). ``primary`` already
    holds the cells whose count or complement is small.

    Examples
    --------
    >>> n = np.array([18.0, 30.0, 25.0, 73.0]); d = np.array([20.0, 40.0, 35.0, 95.0])
    >>> p = np.array([True, False, False, False])  # 20 - 18 = 2 without: too few
    >>> complement_suppress(n, d, p, [(3, [0, 1, 2])], 5).tolist()  # the smallest partner, 25, goes with it
    [True, False, True, False]
    >>> n[2], d[2] = 10.0, 12.0; n[3], d[3] = 58.0, 72.0  # now 2 + 2 = 4 without in the two: a third is needed
    >>> complement_suppress(n, d, p | (d - n == 2), [(3, [0, 1, 2])], 5).tolist()
    [True, True, True, False]
    """
    complements = totals - values
    sup = primary.copy()
    while True:
        sup = secondary_suppress(values, sup, constraints, threshold, totals, priority, zeros_secret)
        both = secondary_suppress(complements, sup, constraints, threshold, totals, priority, zeros_secret)
        if (both == sup).all():
            return sup
        sup = both
