"""Disclosure control of an indicator table, with the table's additive structure declared.

An indicator table holds units (and pooled small units), regions and the nation, per year and over all years.
With secondary suppression, the table and the parts inside its pooled row are protected as one system of linked
cells (:mod:`kvarus_research.indicators.linked`). With rounding rules (``"opensafely"``), two views are protected
with :func:`kvarus_research.privacy.protect` and their totals declared:

- units + pooled row → nation, within each year; and for each unit whose yearly rows add up exactly to its
  all-years row (it was never pooled), years → all years;
- regions → nation within each year, and years → all years for each region.

Not declared in the views: a unit against its region's total (rounded cells keep such differences inexact).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.indicators.linked import protect_linked_table

COUNTS: tuple[str, ...] = ("numerator", "denominator", "missing")
DERIVED: tuple[str, ...] = ("proportion", "ci_low", "ci_high", "target_level")
NATIONAL_KEY = "\x00national"
ALL_YEARS = "all"


def _additive_units(t: pd.DataFrame) -> set[Any]:
    """Units whose yearly rows add up exactly to their all-years row (never pooled in any year)."""
    units = t[t["level"] == "unit"]
    every = units[units["year"].isna()].set_index("unit_id")[list(COUNTS)]
    yearly = units[units["year"].notna()].groupby("unit_id")[list(COUNTS)].sum()
    both = every.join(yearly, rsuffix="_y", how="inner")
    ok = np.ones(len(both), dtype=bool)
    for c in COUNTS:
        ok &= (both[c] == both[f"{c}_y"]).to_numpy()
    return set(both.index[ok])


def protect_indicator_table(
    table: pd.DataFrame,
    rules: Any = "norway",
    *,
    enabled: bool = True,
    pooled_parts: pd.DataFrame | None = None,
) -> Any:
    """Protect an :class:`IndicatorResult` table (counts < 5 suppressed, secondary suppression over its totals).

    With secondary suppression (the ``"norway"`` preset), the whole table is one system of linked cells (units,
    the pooled row and its parts, regions, nation, years; see :mod:`kvarus_research.indicators.linked`). With
    rules that round and recompute totals instead (``"opensafely"``), two views are protected (see the module
    docstring).

    Parameters
    ----------
    table : DataFrame
        ``IndicatorResult.table``.
    rules : str or DisclosureRules
    enabled : bool
        ``False`` returns the raw table, stamped as unprotected.
    pooled_parts : DataFrame, optional
        The pooled units' own counts (``unit_id, region, year, numerator, denominator, missing``; kept by
        :class:`IndicatorResult`); without them, each region's pooled part is the region minus its units shown.

    Returns
    -------
    ProtectedTable
        Suppressed counts are NA, and the proportion, CI and target level of a row with a suppressed numerator
        or denominator are NA too.

    Examples
    --------
    >>> t = pd.DataFrame({"level": ["unit", "unit", "national"], "group": ["A", "B", "Norway"],
    ...     "unit_id": [1, 2, None], "region": ["R", "R", None], "year": pd.array([pd.NA] * 3, dtype="Int64"),
    ...     "n_units": [1, 1, 2], "numerator": [3, 30, 33], "denominator": [12, 40, 52], "missing": [0, 0, 0],
    ...     "proportion": [0.25, 0.75, 33 / 52], "ci_low": 0.0, "ci_high": 1.0, "target_level": "low"})
    >>> p = protect_indicator_table(t)
    >>> p.table["numerator"].tolist()  # A's 3 is suppressed; B's 30 too, else 33 - 30 = 3 gives it away
    [<NA>, <NA>, 33]
    """
    from kvarus_research.privacy import protect
    from kvarus_research.privacy.rules import resolve_rules

    derived = {d: ("numerator", "denominator") for d in DERIVED if d in table.columns}
    if not enabled:
        return protect(table, counts=list(COUNTS), derived=derived, rules=rules, enabled=False)
    r = resolve_rules(rules)
    if not r.secondary or r.totals_from_rounded or r.rounding:
        return _protect_views(table, rules, derived)
    return protect_linked_table(table, r, derived=derived, parts=pooled_parts)


def _protect_views(table: pd.DataFrame, rules: Any, derived: dict[str, Any]) -> Any:
    """Rounding rules: the units view and the regions view protected with ``protect`` (totals declared)."""
    from kvarus_research.privacy import protect
    from kvarus_research.privacy.rules import ProtectedTable

    t = table.reset_index(drop=True)
    year_key = t["year"].astype("Int64").astype("string").fillna(ALL_YEARS).to_numpy(dtype=object)
    additive = _additive_units(t)
    key = np.empty(len(t), dtype=object)
    for i, (level, group, unit) in enumerate(zip(t["level"], t["group"], t["unit_id"])):
        if level == "national":
            key[i] = NATIONAL_KEY
        elif level == "region":
            key[i] = f"region:{group}"
        elif level == "unit" and unit in additive:
            key[i] = f"unit:{unit}"
        else:  # pooled rows and units pooled in some year: no year constraint (row-unique key)
            key[i] = f"row:{i}"
    views = {
        "units": t["level"].isin(["unit", "pooled", "national"]).to_numpy(),
        "regions": t["level"].isin(["region", "national"]).to_numpy(),
    }
    published = {c: pd.array([pd.NA] * len(t), dtype="Int64") for c in COUNTS}
    suppressed = pd.DataFrame(False, index=t.index, columns=list(COUNTS) + list(derived))
    logs = []
    rules_used, stamp = None, ""
    for name, mask in views.items():
        rows = np.flatnonzero(mask)
        if not len(rows) or not (t["level"].to_numpy()[rows] != "national").any():
            continue
        view = pd.DataFrame({"key": key[rows], "year_key": year_key[rows]})
        for c in COUNTS:
            view[c] = t[c].to_numpy()[rows]
        p = protect(
            view,
            counts=list(COUNTS),
            rules=rules,
            margins={"key": NATIONAL_KEY, "year_key": ALL_YEARS},
            complements={"numerator": "denominator"},
        )
        rules_used, stamp = p.rules, p.stamp
        # The national rows are taken from the units view; the regions view only adds suppression.
        take = rows if name == "units" else rows[t["level"].to_numpy()[rows] != "national"]
        local = np.searchsorted(rows, take)
        for c in COUNTS:
            published[c][take] = p.table[c].to_numpy()[local]
            suppressed.loc[rows, c] |= p.suppressed[c].to_numpy(dtype=bool)
        log = p.log.copy()
        log["row"] = [rows[r] if isinstance(r, int | np.integer) else r for r in log["row"]]
        logs.append(log.assign(view=name))
    out = t.copy()
    for c in COUNTS:
        out[c] = published[c]
        out.loc[suppressed[c].to_numpy(), c] = pd.NA
    hide = (suppressed["numerator"] | suppressed["denominator"]).to_numpy()
    for d in derived:
        out[d] = out[d].astype(object).where(~hide, None) if d == "target_level" else out[d].where(~hide)
        suppressed[d] = hide
    log = (
        pd.concat(logs, ignore_index=True)
        if logs
        else pd.DataFrame(columns=["row", "column", "action", "reason"])
    )
    if rules_used is None:
        return protect(
            table, counts=list(COUNTS), derived=derived, rules=rules, complements={"numerator": "denominator"}
        )
    return ProtectedTable(
        out, log, rules_used, True, suppressed, stamp + " (totals: units/regions -> nation, years)"
    )
