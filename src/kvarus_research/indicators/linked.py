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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.privacy.audit import Constraint, holds
from kvarus_research.privacy.declarations import _complements_last
from kvarus_research.privacy.suppression import complement_suppress, secondary_suppress

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


def protect_linked(
    table: pd.DataFrame,
    rules: Any,
    parts: pd.DataFrame | None,
    counts: Sequence[str] = COUNTS,
    complements: Mapping[str, str] | None = None,
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Suppression masks of the rows of ``table`` (per count column) and the log of why each cell went.

    ``parts``: the pooled units' counts (``unit_id, region, year`` and the count columns), or ``None`` to use one
    part per region and year (the region minus its units shown). ``complements``: count → its row total (by
    default ``{"numerator": "denominator"}``).

    Examples
    --------
    >>> from kvarus_research.privacy.rules import resolve_rules
    >>> t = pd.DataFrame({"level": ["unit", "unit", "national"], "group": ["A", "B", "Norway"],
    ...     "unit_id": [1, 2, None], "region": ["R", "R", None], "year": pd.array([pd.NA] * 3, dtype="Int64"),
    ...     "numerator": [3, 30, 33], "denominator": [12, 40, 52], "missing": [0, 0, 0]})
    >>> masks, log = protect_linked(t, resolve_rules("norway"), None)
    >>> masks["numerator"].tolist(), [e["action"] for e in log]
    ([True, True, False], ['suppressed', 'secondary_suppressed'])
    """
    complements = {"numerator": "denominator"} if complements is None else dict(complements)
    t = table.reset_index(drop=True)
    if parts is None:
        parts = pooled_parts_from_table(t, counts)
    parts = parts.reset_index(drop=True)
    m = len(t)
    constraints = linked_constraints(t, parts)
    values = {c: np.r_[t[c].to_numpy(dtype=float), parts[c].to_numpy(dtype=float)] for c in counts}
    # partners are taken from the pooled parts and the units first, the nation last
    rank = {"unit": 1, "pooled": 2, "region": 3, "national": 4}
    priority = np.r_[t["level"].map(rank).fillna(1).to_numpy(dtype=int), np.zeros(len(parts), dtype=int)]
    log: list[dict[str, Any]] = []
    masks: dict[str, np.ndarray] = {}
    for col in _complements_last(counts, complements):
        v = values[col]
        own = [k for k in constraints if holds(v, k)]  # e.g. a missing count left out with a zero denominator
        primary = rules.small(v)
        reasons = {int(i): f"count below {rules.min_count} (primary)" for i in np.flatnonzero(primary[:m])}
        total = complements.get(col)
        if total is not None:
            small = (
                rules.small(values[total] - v) & ~primary
            )  # also where the total is hidden (audit: count <= total)
            reasons |= {
                int(i): f"complement {total} - {col} below {rules.min_count} (primary)"
                for i in np.flatnonzero(small[:m])
            }
            primary |= small
            sup = complement_suppress(
                v, values[total], primary, own, rules.min_count, priority, rules.suppress_zeros
            )
        else:
            sup = secondary_suppress(
                v, primary, own, rules.min_count, priority=priority, zeros_secret=rules.suppress_zeros
            )
        for i in np.flatnonzero(sup[:m]):
            action = "suppressed" if int(i) in reasons else "secondary_suppressed"
            reason = reasons.get(int(i), "would let a suppressed cell be recomputed from linked totals")
            log.append({"row": int(i), "column": col, "action": action, "reason": reason})
        masks[col] = sup
    return {c: s[:m] for c, s in masks.items()}, log


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
    from kvarus_research.privacy.rules import LOG_COLUMNS, ProtectedTable, resolve_rules

    r = resolve_rules(rules)
    t = table.reset_index(drop=True)
    masks, entries = protect_linked(t, r, parts, counts, complements)
    out = t.copy()
    suppressed = pd.DataFrame({c: masks[c] for c in counts}, index=t.index)
    for c in counts:
        out[c] = pd.array(t[c], dtype="Int64")
        out.loc[masks[c], c] = pd.NA
    for d, sources in (derived or {}).items():
        hide = np.logical_or.reduce([masks[c] for c in sources])
        out[d] = out[d].astype(object).where(~hide, None) if out[d].dtype == object else out[d].where(~hide)
        suppressed[d] = hide
        entries += [{"row": int(i), "column": d, "action": "derived_suppressed",
                     "reason": f"computed from suppressed count {tuple(sources)}"}
                    for i in np.flatnonzero(hide & t[d].notna().to_numpy())]  # fmt: skip
    log = pd.DataFrame(entries, columns=LOG_COLUMNS)
    stamp = f"disclosure control: {r.describe()} (linked totals: units, pooled parts, regions, nation, years)"
    return ProtectedTable(out, log, r, True, suppressed, stamp)
