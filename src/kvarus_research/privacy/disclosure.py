"""Output disclosure control: the one function every exported table and every figure's data goes through.

:func:`protect` applies, in this order: pooling of small units (``unit=``), primary suppression of small counts,
secondary suppression (so no suppressed cell can be recomputed from the published cells and totals), optional
rounding (with totals recomputed from the rounded cells in the OpenSAFELY preset), and suppression of the
proportions, means and rates computed from a suppressed count. Every action is logged with its reason; the log never
holds the suppressed value.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.errors import PrivacyError
from kvarus_research.privacy.declarations import _check_columns, _log
from kvarus_research.privacy.engine import (
    EXTRA,
    Builder,
    Complement,
    Margin,
    Partition,
    System,
    TableSpec,
    add_table,
    solve,
)
from kvarus_research.privacy.rules import (  # noqa: F401  (re-exported from here too)
    DISABLED_STAMP,
    LOG_COLUMNS,
    PRESETS,
    DisclosureRules,
    ProtectedTable,
    resolve_rules,
)
from kvarus_research.privacy.suppression import build_constraints


def _pool_units(
    df: pd.DataFrame,
    counts: list[str],
    derived: list[str],
    unit: str,
    dims: list[str],
    margins: Mapping[str, Hashable],
    rules: DisclosureRules,
    log: list[dict[str, Any]],
) -> pd.DataFrame:
    """Pool units whose N (first count column over their non-total rows) is below ``rules.unit_min_n``."""
    is_total = np.zeros(len(df), dtype=bool)
    for col, label in margins.items():
        is_total |= (df[col] == label).to_numpy()
    base = df[~is_total]
    n_per_unit = base.groupby(unit, sort=False, dropna=False)[counts[0]].sum(min_count=1).fillna(0)
    small = n_per_unit.index[n_per_unit < rules.unit_min_n]
    if len(small) == 0:
        return df
    df = df.assign(_order=np.arange(len(df), dtype=float))
    take = (~is_total) & df[unit].isin(small).to_numpy()
    label = f"pooled units ({len(small)})"
    others = [d for d in dims if d != unit]
    pooled_rows = df[take]
    agg = {c: (lambda s: s.sum(min_count=1)) for c in counts}
    agg["_order"] = "min"
    if others:
        pooled = pooled_rows.groupby(others, sort=False, dropna=False).agg(agg).reset_index()
    else:
        pooled = pooled_rows.agg(agg).to_frame().T
    pooled[unit] = label
    for c in derived:
        pooled[c] = np.nan
    for c in df.columns:
        if c not in pooled.columns:
            pooled[c] = np.nan
    out = pd.concat([df[~take].astype({unit: object}), pooled[df.columns]], ignore_index=True)
    out = out.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)
    reason = f"{len(small)} unit(s) with N < {rules.unit_min_n} pooled into one row"
    for pos in np.flatnonzero((out[unit] == label).to_numpy()):
        _log(log, out.index[pos], unit, "pooled", reason)
        for c in derived:
            _log(log, out.index[pos], c, "derived_suppressed", "not recomputable for pooled units")
    return out


def protect(
    table: pd.DataFrame,
    *,
    counts: str | Sequence[str],
    derived: Mapping[str, str | Sequence[str]] | None = None,
    rules: str | DisclosureRules = "norway",
    unit: str | None = None,
    margins: Mapping[str, Hashable] | None = None,
    complements: Mapping[str, str] | None = None,
    partitions: Mapping[str, tuple[str, str | Sequence[str]]] | None = None,
    structure: Sequence[Any] = (),
    enabled: bool = True,
) -> ProtectedTable:
    """Apply disclosure control to a table before it leaves the secure environment.

    Parameters
    ----------
    table : DataFrame
        A tidy table: one row per cell group, count columns holding counts of people or courses.
    counts : str or list of str
        Columns with counts. The first is the unit's N for pooling.
    derived : dict, optional
        Column → the count column(s) it was computed from (proportions, means, rates); suppressed with them.
    rules : {"norway", "opensafely"} or DisclosureRules
        ``"norway"``: counts 1-4 suppressed (shown ``<5``), units with N < 10 pooled, secondary suppression.
        ``"opensafely"``: counts 1-7 redacted, the rest rounded to 5, totals recomputed from rounded cells.
    unit : str, optional
        Column naming the unit (behandlingsenhet) for pooling small units into one ``"pooled units (k)"`` row.
    margins : dict, optional
        Total rows: column → the label marking its total rows (e.g. ``{"unit": "Total"}`` for a 1-D table with a
        total row; ``{"unit": "Total", "year": "All"}`` for a 2-D table in long form with row and column totals).
        Every column that is neither a count, nor derived, nor float is a dimension of the table.
    complements : dict, optional
        Count column → the count column holding its row total (e.g. ``{"numerator": "denominator"}``): the
        difference counts people too ("x of n" also says n - x did not), so a count is suppressed when its
        complement is small as well, and its secondary suppression protects the complements too.
    partitions : dict, optional
        Count column → (its row-total column, the category column(s)): rows that differ only in the category
        columns split the total they share (e.g. ``{"n": ("n_total", "category")}`` for a distribution over
        categories per group), so a suppressed category cannot be recomputed as the total minus the others.
    structure : list, optional
        The table's structure as data (:class:`~kvarus_research.privacy.engine.Margin`,
        :class:`~kvarus_research.privacy.engine.Complement`, :class:`~kvarus_research.privacy.engine.Partition`,
        :class:`~kvarus_research.privacy.engine.Linear`); ``margins``, ``complements`` and ``partitions`` are
        shorthands for the first three. All of it is solved as one system (:func:`~kvarus_research.privacy.engine.solve`).
    enabled : bool
        ``False`` returns the raw table, stamped as unprotected (never for publication).

    Returns
    -------
    ProtectedTable

    Examples
    --------
    >>> t = pd.DataFrame({"unit": ["A", "B", "C", "Total"], "n": [3, 12, 20, 35]})
    >>> p = protect(t, counts="n", margins={"unit": "Total"}, rules=DisclosureRules(unit_min_n=None))
    >>> p.display()["n"].tolist()  # 3 is primary; 12 (the smallest partner) secondary: 35 - 20 = 15 = 3 + 12
    [':', ':', 20, 35]
    >>> p.log[["row", "action"]].values.tolist()
    [[0, 'suppressed'], [1, 'secondary_suppressed']]
    >>> q = protect(pd.DataFrame({"unit": ["A", "B"], "x": [18, 30], "n": [20, 40]}), counts=["x", "n"],
    ...             complements={"x": "n"}, rules=DisclosureRules(unit_min_n=None))
    >>> q.display()["x"].tolist()  # 20 - 18 = 2 without: too few to show
    [':', 30]
    """
    counts = [counts] if isinstance(counts, str) else list(counts)
    derived = dict(derived or {})
    margins = dict(margins or {})
    structure = [
        *structure,
        *(Margin(c, label) for c, label in margins.items()),
        *(Complement(c, t) for c, t in (complements or {}).items()),
        *(
            Partition(c, t, tuple([k] if isinstance(k, str) else k))
            for c, (t, k) in (partitions or {}).items()
        ),
    ]
    r = resolve_rules(rules)
    if not enabled:
        log = pd.DataFrame([{"row": "all", "column": "all", "action": "disabled", "reason": "enabled=False"}])
        return ProtectedTable(table.copy(), log, r, False, pd.DataFrame(index=table.index), DISABLED_STAMP)

    df = table.copy()
    restore_index = not isinstance(df.index, pd.RangeIndex)
    index_names = [n if n is not None else "index" for n in df.index.names]
    if restore_index:
        df = df.reset_index()
    df = df.reset_index(drop=True)
    entries: list[dict[str, Any]] = []
    margins = {s.column: s.total for s in structure if isinstance(s, Margin)}
    sources = _check_columns(df, counts, derived, unit, margins, entries)
    derived = {d: s for d, s in derived.items() if d in sources}
    _check_declared(structure, counts)
    dims = [
        c
        for c in df.columns
        if c not in counts and c not in derived and not pd.api.types.is_float_dtype(df[c])
    ]
    if unit and r.unit_min_n:
        df = _pool_units(df, counts, list(derived), unit, dims, margins, r, entries)
    spec = TableSpec(df, counts, sources, structure)
    b = Builder()
    pos = add_table(b, spec, r)
    system = b.build(r)
    rounding = r.totals_from_rounded or not r.secondary or r.rounding
    hidden = system.primary & system.shown if rounding else solve(system, r.min_count)
    masks = {c: hidden[pos[c]] for c in counts}
    log_hidden(entries, df.index, pos, system, hidden)
    if rounding:
        constraints = build_constraints(df, margins, dims) if margins else []
        for col in counts:
            masks[col] = _round(df, col, masks[col], r, constraints, entries)
    prot = finish_table(df, counts, sources, masks, r, entries, f"disclosure control: {r.describe()}")
    if restore_index:
        prot.table = prot.table.set_index(index_names)
        prot.suppressed.index = prot.table.index
        prot.log["row"] = [
            prot.table.index[x] if isinstance(x, int | np.integer) else x for x in prot.log["row"]
        ]
    return prot


def _check_declared(structure: Sequence[Any], counts: Sequence[str]) -> None:
    """A count with a complement cannot be a row total in another complement, nor be in a partition too."""
    comps = {s.count: s.total for s in structure if isinstance(s, Complement)}
    parts = {s.count for s in structure if isinstance(s, Partition)}
    for col, total in comps.items():
        if total in comps:
            raise PrivacyError(f"protect: {total!r} is a row total in complements and cannot have one itself")
        if col in parts:
            raise PrivacyError(
                f"protect: {col!r} is in both complements and partitions; a partition covers both"
            )


def log_hidden(
    entries: list[dict[str, Any]],
    index: pd.Index,
    pos: Mapping[str, np.ndarray],
    system: System,
    hidden: np.ndarray,
    secondary_reason: str = "would let a suppressed cell be recomputed from totals",
) -> None:
    """One log entry per hidden cell of a table: primary with its reason, or secondary."""
    for col, cells in pos.items():
        if col == EXTRA:
            continue
        for row, cell in enumerate(cells):
            if not hidden[cell]:
                continue
            if cell in system.reasons:
                _log(entries, index[row], col, "suppressed", system.reasons[cell])
            else:
                _log(entries, index[row], col, "secondary_suppressed", secondary_reason)


def finish_table(
    df: pd.DataFrame,
    counts: Sequence[str],
    sources: Mapping[str, Sequence[str]],
    masks: Mapping[str, np.ndarray],
    r: DisclosureRules,
    entries: list[dict[str, Any]],
    stamp: str,
) -> ProtectedTable:
    """Hide the masked counts and every derived value computed from one of them; the :class:`ProtectedTable`."""
    df = df.copy()
    suppressed = pd.DataFrame(False, index=df.index, columns=list(counts) + list(sources))
    for col in counts:
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float).copy()
        values[masks[col]] = np.nan
        df[col] = pd.array(np.where(np.isnan(values), None, values), dtype="Float64").round().astype("Int64")
        suppressed[col] = masks[col]
    for dcol, srcs in sources.items():
        mask = suppressed[list(srcs)].any(axis=1).to_numpy()
        already = df[dcol].isna().to_numpy()
        for pos in np.flatnonzero(mask & ~already):
            _log(
                entries,
                df.index[pos],
                dcol,
                "derived_suppressed",
                f"computed from suppressed count {list(srcs)}",
            )
        if pd.api.types.is_integer_dtype(df[dcol]) and mask.any():  # stays an integer column, with NA
            df[dcol] = df[dcol].astype("Int64")
        if df[dcol].dtype == object:
            df[dcol] = df[dcol].where(~mask, None)
        else:
            df.loc[mask, dcol] = pd.NA if isinstance(df[dcol].dtype, pd.Int64Dtype) else np.nan
        suppressed[dcol] = mask
    log = pd.DataFrame(entries, columns=LOG_COLUMNS)
    return ProtectedTable(df, log, r, True, suppressed, stamp)


def _round(
    df: pd.DataFrame,
    col: str,
    sup: np.ndarray,
    r: DisclosureRules,
    constraints: list,
    entries: list[dict[str, Any]],
) -> np.ndarray:
    """Rounding rules: round the published counts (in place) and, with ``totals_from_rounded``, recompute totals."""
    published = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float).copy()
    published[sup] = np.nan
    if r.rounding:
        published = np.floor(published / r.rounding + 0.5) * r.rounding
        _log(entries, "all", col, "rounded", f"published counts rounded to the nearest {r.rounding}")
    if r.totals_from_rounded and constraints:
        total_pos = {t for t, _ in constraints}
        published, sup = _totals_from_rounded(published, sup, constraints, total_pos, df.index, col, entries)
    df[col] = published
    return sup


def _totals_from_rounded(
    published: np.ndarray,
    sup: np.ndarray,
    constraints: list,
    total_pos: set[int],
    index: pd.Index,
    col: str,
    entries: list[dict[str, Any]],
) -> tuple[np.ndarray, np.ndarray]:
    """Recompute total cells bottom-up as sums of the published (rounded) components, suppressed ones left out."""
    out, sup = published.copy(), sup.copy()
    by_total: dict[int, list[int]] = {}
    for t, comps in constraints:
        by_total.setdefault(t, comps)
    done: set[int] = set()

    def value(t: int) -> float:
        if t in done or t not in by_total:
            return out[t]
        comps = by_total[t]
        vals = [value(c) if c in total_pos else out[c] for c in comps]
        shown = [v for v in vals if not np.isnan(v)]
        out[t] = float(np.sum(shown)) if shown else np.nan
        sup[t] = not shown
        done.add(t)
        left_out = len(vals) - len(shown)
        reason = "total recomputed from rounded published cells"
        if left_out:
            reason += f"; {left_out} suppressed cell(s) not included"
        _log(
            entries,
            index[t],
            col,
            "recomputed" if shown else "suppressed",
            reason if shown else "every component suppressed",
        )
        return out[t]

    for t in by_total:
        value(t)
    return out, sup


def protect_crosstab(
    crosstab: pd.DataFrame,
    *,
    rules: str | DisclosureRules = "norway",
    margins_name: str = "All",
    enabled: bool = True,
) -> ProtectedTable:
    """Protect a wide 2-D count table with row and column totals (as from ``pd.crosstab(..., margins=True)``).

    Examples
    --------
    >>> ct = pd.DataFrame({"a": [3, 20, 23], "b": [30, 40, 70], "All": [33, 60, 93]}, index=["x", "y", "All"])
    >>> protect_crosstab(ct).display().values.tolist()  # 3 and its row, column and diagonal partners
    [[':', ':', 33], [':', ':', 60], [23, 70, 93]]
    """
    row_name = crosstab.index.name or "row"
    col_name = crosstab.columns.name or "column"
    long = crosstab.rename_axis(index=row_name, columns=col_name).stack().rename("n").reset_index()
    long[row_name] = long[row_name].astype(object)
    long[col_name] = long[col_name].astype(object)
    prot = protect(
        long,
        counts="n",
        rules=rules,
        margins={row_name: margins_name, col_name: margins_name},
        enabled=enabled,
    )
    if not enabled:
        return ProtectedTable(
            crosstab.copy(), prot.log, prot.rules, False, pd.DataFrame(index=crosstab.index), prot.stamp
        )
    order = dict(index=crosstab.index, columns=crosstab.columns)
    wide = prot.table.pivot(index=row_name, columns=col_name, values="n").reindex(**order)
    sup = (
        prot.suppressed.assign(**{row_name: long[row_name], col_name: long[col_name]})
        .pivot(index=row_name, columns=col_name, values="n")
        .reindex(**order)
        .astype(bool)
    )
    wide.columns.name, sup.columns.name = crosstab.columns.name, crosstab.columns.name
    wide.index.name, sup.index.name = crosstab.index.name, crosstab.index.name
    log = prot.log.copy()
    rows = log["row"].map(
        lambda r: (long.loc[r, row_name], long.loc[r, col_name]) if isinstance(r, int | np.integer) else r
    )
    log["row"], log["column"] = (
        rows.map(lambda x: x[0] if isinstance(x, tuple) else x),
        rows.map(lambda x: x[1] if isinstance(x, tuple) else "all"),
    )
    return ProtectedTable(wide, log, prot.rules, True, sup, prot.stamp)
