"""Disclosure control of an indicator table as one system of linked cells.

Every row of an indicator table is a cell, and so is every part hidden inside the pooled row: a small unit's
counts in one year (or over all years). The cells are linked by what a reader knows:

- in each year (and over all years) the nation is the sum of the units shown and the pooled row, and also the
  sum of the regions;
- the pooled row is the sum of its parts;
- a region is the sum of its units shown and of its units' parts in the pooled row;
- a unit's, a region's and the nation's years add up to their all-years row (a unit pooled in some year
  through its part).

Primary suppression (counts 1-4, and numerators whose complement ``denominator - numerator`` is 1-4) applies to
the parts as to the rows; secondary suppression then hides the fewest, smallest extra cells until no hidden cell,
shown or pooled, can be recomputed or summed to a small number, audited by the linear-programming attack of
:func:`kvarus_research.privacy.audit.pinned_cells`. The parts never appear in the output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.privacy.audit import Constraint
from kvarus_research.privacy.engine import CellRef, Complement, Linear, TableSpec

COUNTS: tuple[str, ...] = ("numerator", "denominator", "missing")
ALL_YEARS = "all"
NO_REGION = "(no region)"


def _year_keys(years: pd.Series) -> np.ndarray:
    return years.astype("Int64").astype("string").fillna(ALL_YEARS).to_numpy(dtype=object)


def _region_keys(regions: pd.Series) -> np.ndarray:
    return regions.astype(object).where(regions.notna(), NO_REGION).astype(str).to_numpy(dtype=object)


def pooled_parts_from_table(t: pd.DataFrame, counts: Sequence[str] = COUNTS) -> pd.DataFrame:
    """Without the pooled units' own counts: one part per region and year, the region minus its units shown.

    Examples
    --------
    >>> t = pd.DataFrame({"level": ["unit", "pooled", "region", "national"], "group": ["A", "Pooled", "R", "Norway"],
    ...     "unit_id": [1, None, None, None], "region": ["R", None, "R", None],
    ...     "year": pd.array([2021] * 4, dtype="Int64"), "numerator": [9, 1, 10, 10], "denominator": [12, 3, 15, 15],
    ...     "missing": [0, 0, 0, 0]})
    >>> pooled_parts_from_table(t)[["region", "numerator", "denominator"]].values.tolist()
    [['R', 1, 3]]
    """
    yk, lv = _year_keys(t["year"]), t["level"].to_numpy()
    unit_region = _region_keys(t["region"])
    rows = []
    for i in np.flatnonzero(lv == "region"):
        shown = (lv == "unit") & (yk == yk[i]) & (unit_region == str(t["group"].iloc[i]))
        rest = {c: int(t[c].iloc[i]) - int(t[c].to_numpy()[shown].sum()) for c in counts}
        if any(rest.values()):
            rows.append({"unit_id": None, "region": t["group"].iloc[i], "year": t["year"].iloc[i], **rest})
    return pd.DataFrame(rows, columns=["unit_id", "region", "year", *counts])


def linked_constraints(t: pd.DataFrame, parts: pd.DataFrame) -> list[Constraint]:
    """The additive constraints among the rows of ``t`` (positions 0..len(t)-1) and the pooled parts (after).

    Each constraint is (position of the total, positions of its components).

    Examples
    --------
    >>> t = pd.DataFrame({"level": ["unit", "pooled", "region", "national"], "group": ["A", "Pooled", "R", "Norway"],
    ...     "unit_id": [1, None, None, None], "region": ["R", None, "R", None],
    ...     "year": pd.array([2021] * 4, dtype="Int64")})
    >>> parts = pd.DataFrame({"unit_id": [2], "region": ["R"], "year": pd.array([2021], dtype="Int64")})
    >>> linked_constraints(t, parts)  # nation = A + pooled = R; pooled = part; R = A + part
    [(3, [0, 1]), (3, [2]), (1, [4]), (2, [0, 4])]
    """
    m = len(t)
    yk, lv = _year_keys(t["year"]), t["level"].to_numpy()
    unit_region, unit_id = _region_keys(t["region"]), t["unit_id"].to_numpy(dtype=object)
    groups = t["group"].astype(str).to_numpy(dtype=object)
    p_yk, p_region = _year_keys(parts["year"]), _region_keys(parts["region"])
    p_unit = parts["unit_id"].to_numpy(dtype=object)
    p_pos = m + np.arange(len(parts))
    out: list[Constraint] = []
    for y in dict.fromkeys(yk):
        at = yk == y
        nat = np.flatnonzero(at & (lv == "national"))
        units = np.flatnonzero(at & (lv == "unit"))
        pooled = np.flatnonzero(at & (lv == "pooled"))
        regions = np.flatnonzero(at & (lv == "region"))
        inside = p_pos[p_yk == y]
        if len(nat):
            out.append(
                (int(nat[0]), [*units.tolist(), *(pooled.tolist() if len(pooled) else inside.tolist())])
            )
            out.append((int(nat[0]), regions.tolist()))
        if len(pooled):
            out.append((int(pooled[0]), inside.tolist()))
        for r in regions:
            mine = units[unit_region[units] == groups[r]].tolist()
            mine += p_pos[(p_yk == y) & (p_region == groups[r])].tolist()
            out.append((int(r), mine))
    # years -> all years: units (shown or pooled, through their parts), regions and the nation
    cells: dict[tuple[str, Any], dict[str, int]] = {}
    for i in np.flatnonzero(lv == "unit"):
        cells.setdefault(("unit", unit_id[i]), {})[yk[i]] = int(i)
    for j, pos in enumerate(p_pos):
        if p_unit[j] is not None and not pd.isna(p_unit[j]):
            cells.setdefault(("unit", p_unit[j]), {})[p_yk[j]] = int(pos)
    for i in np.flatnonzero((lv == "region") | (lv == "national")):
        cells.setdefault((lv[i], groups[i]), {})[yk[i]] = int(i)
    for by_year in cells.values():
        years = [pos for y, pos in by_year.items() if y != ALL_YEARS]
        if ALL_YEARS in by_year and years:
            out.append((by_year[ALL_YEARS], years))
    return [(total, comps) for total, comps in out if comps]


def linked_spec(
    table: pd.DataFrame,
    parts: pd.DataFrame | None,
    counts: Sequence[str] = COUNTS,
    complements: Mapping[str, str] | None = None,
    derived: Mapping[str, Sequence[str]] | None = None,
    n_limit: int | None = None,
) -> tuple[TableSpec, dict[tuple[Any, ...], dict[str, CellRef]]]:
    """The table as the disclosure engine sees it, and where each unit, region and nation count lies.

    The table's rows are cells, the pooled units' parts never-shown cells (:class:`~kvarus_research.privacy.engine.
    Linear`), linked by :func:`linked_constraints`; each count with a complement (by default the numerator, of
    the denominator) is declared for the rows and the parts alike. Partners are given up units first, then the
    pooled row, the regions and the nation last. With ``n_limit`` (the pooling limit, which the pooled row's label
    tells, and from which it is read when not given), the reader knows that a listed unit's denominator is at least ``n_limit`` and a pooled unit's below it.

    Returns
    -------
    (TableSpec, dict)
        The spec, and for each ``("unit", unit_id, year)``, ``("region", name, year)`` and ``("national", year)``
        (year ``"all"`` = all years) the cell of each count: ``(row, column)`` or ``("extra", j)`` for a part.

    Examples
    --------
    >>> t = pd.DataFrame({"level": ["unit", "pooled", "region", "national"], "group": ["A", "Pooled", "R", "Norway"],
    ...     "unit_id": [1, None, None, None], "region": ["R", None, "R", None],
    ...     "year": pd.array([2021] * 4, dtype="Int64"), "numerator": [9, 1, 10, 10], "denominator": [12, 3, 15, 15],
    ...     "missing": [0, 0, 0, 0]})
    >>> parts = pd.DataFrame({"unit_id": [2], "region": ["R"], "year": pd.array([2021], dtype="Int64"),
    ...     "numerator": [1], "denominator": [3], "missing": [0]})
    >>> spec, cells = linked_spec(t, parts)
    >>> cells[("unit", 2, "2021")]["numerator"], cells[("national", "2021")]["denominator"]
    (('extra', 0), (3, 'denominator'))
    """
    complements = {"numerator": "denominator"} if complements is None else dict(complements)
    t = table.reset_index(drop=True)
    if parts is None:
        parts = pooled_parts_from_table(t, counts)
    parts = parts.reset_index(drop=True)
    m, k = len(t), len(parts)
    constraints = linked_constraints(t, parts)
    offset = {c: i * k for i, c in enumerate(counts)}
    extra = [float(v) for c in counts for v in parts[c].to_numpy(dtype=float)]

    def ref(p: int, c: str) -> CellRef:
        return (p, c) if p < m else ("extra", offset[c] + p - m)

    sums = [(ref(total, c), [ref(p, c) for p in comps]) for total, comps in constraints for c in counts]
    for count, total in complements.items():  # the parts' complements, never shown either
        for j in range(k):
            extra.append(float(parts[total].iloc[j]) - float(parts[count].iloc[j]))
            sums.append(
                (("extra", offset[total] + j), [("extra", offset[count] + j), ("extra", len(extra) - 1)])
            )
    rank = {"unit": 1, "pooled": 2, "region": 3, "national": 4}
    priority = t["level"].map(rank).fillna(1).to_numpy(dtype=int)
    if n_limit is None:  # the pooled row's label tells the reader the limit: "Pooled units (n < 10)"
        labels = t.loc[t["level"] == "pooled", "group"].astype(str) if "group" in t.columns else []
        found = {int(g) for lab in labels for g in re.findall(r"\(n < (\d+)\)", lab)}
        n_limit = found.pop() if len(found) == 1 else None
    bounds: list[tuple[CellRef, float, float]] = []
    if n_limit is not None and "denominator" in counts:
        bounds += [((i, "denominator"), float(n_limit), np.inf) for i in np.flatnonzero(t["level"] == "unit")]
        bounds += [(("extra", offset["denominator"] + j), 0.0, float(n_limit - 1)) for j in range(k)]
    structure: list[Any] = [
        Linear(
            sums, extra, priority=priority, name="units, pooled parts, regions, nation, years", bounds=bounds
        )
    ]
    structure += [Complement(c, tot) for c, tot in complements.items()]
    spec = TableSpec(t, list(counts), dict(derived or {}), structure, priority)
    cells: dict[tuple[Any, ...], dict[str, CellRef]] = {}
    yk, lv = _year_keys(t["year"]), t["level"].to_numpy()
    for i in range(m):
        key = {"unit": ("unit", t["unit_id"].iloc[i], yk[i]), "region": ("region", str(t["group"].iloc[i]), yk[i]),
               "national": ("national", yk[i])}.get(lv[i])  # fmt: skip
        if key is not None:
            cells[key] = {c: (i, c) for c in counts}
    p_yk = _year_keys(parts["year"]) if k else np.array([], dtype=object)
    for j in range(k):
        unit = parts["unit_id"].iloc[j]
        if unit is not None and not pd.isna(unit):
            cells[("unit", unit, p_yk[j])] = {c: ("extra", offset[c] + j) for c in counts}
    return spec, cells


def protect_linked_table(
    table: pd.DataFrame,
    rules: Any,
    *,
    counts: Sequence[str] = COUNTS,
    derived: Mapping[str, Sequence[str]] | None = None,
    complements: Mapping[str, str] | None = None,
    parts: pd.DataFrame | None = None,
) -> Any:
    """A table of units, pooled row, regions and nation by year, protected as linked cells.

    The table needs ``level`` (unit / pooled / region / national), ``group``, ``unit_id``, ``region``, ``year``
    (``<NA>`` = all years) and the ``counts``; ``derived`` columns (column → its count sources) are hidden with
    any of their sources. Returns a :class:`~kvarus_research.privacy.rules.ProtectedTable`.

    Examples
    --------
    >>> t = pd.DataFrame({"level": ["unit", "unit", "unit", "region", "region", "national"],
    ...     "group": ["A", "B", "C", "R", "S", "Norway"], "unit_id": [1, 2, 3, None, None, None],
    ...     "region": ["R", "R", "S", "R", "S", None], "year": pd.array([pd.NA] * 6, dtype="Int64"),
    ...     "expected": [40, 50, 30, 90, 30, 120], "opted_out": [2, 9, 6, 11, 6, 17]})
    >>> p = protect_linked_table(t, "norway", counts=["expected", "opted_out"], complements={})
    >>> p.table["opted_out"].tolist()  # A's 2, and B's 9 with it, else 2 = 11 - 9 in region R
    [<NA>, <NA>, 6, 11, 6, 17]
    """
    from kvarus_research.privacy import protect

    spec, _ = linked_spec(table, parts, counts, complements, derived)
    p = protect(spec.table, counts=spec.counts, derived=spec.derived, structure=spec.structure, rules=rules)
    p.stamp += " (linked totals: units, pooled parts, regions, nation, years)"
    return p
