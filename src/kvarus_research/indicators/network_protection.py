"""Disclosure control of the network-work table, closing the paths by which one number gives another away.

The table has more structure than margins can say:

the number of meetings is the denominator of invited / took part / not invited / place; cases answering =
meetings + cases without a meeting (the denominator of the reasons); "invited" and "not invited" for the same
role add up to the meetings; places and reasons each split their denominator; years add up to all years. All of
it is declared to the disclosure engine (:func:`network_spec`), which hides partners until no small count and no
small complement (a denominator minus its numerator) can be pinned through any of these links.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

BASE = {"meeting": "answered", "invited": "meeting", "took_part": "meeting", "not_invited": "meeting",
        "place": "meeting", "reason": "no_meeting"}  # fmt: skip
ALL_YEARS = "all"


def network_constraints(
    t: pd.DataFrame, yk: np.ndarray, base: np.ndarray, key: np.ndarray
) -> tuple[np.ndarray, list[tuple[int, list[int]]]]:
    """The network-work table as linked cells, for the audit: values and additive constraints.

    Cells: each row's numerator (positions ``0..m-1``) and denominator (``m..2m-1``); each row's complement,
    denominator − numerator (``2m..3m-1``, never shown); and per unit and year the meetings without a place and
    the cases without a meeting and without a reason (slack cells, never shown). Constraints: every denominator
    equals its numerator plus its complement; the meetings are the denominator of invited, took part, not invited
    and place; answered cases = meetings + cases without a meeting (the reasons' denominator); invited + not invited
    = meetings per role; places + slack = meetings; reasons + slack = cases without a meeting; and years add up to
    all years, for numerators, denominators and complements.

    Examples
    --------
    >>> t = pd.DataFrame({"group": "A", "measure": ["meeting", "invited", "not_invited"],
    ...     "category": ["held", "Family invited", "Family not invited"], "numerator": [8, 3, 5],
    ...     "denominator": [10, 8, 8]})
    >>> values, links = network_constraints(t, np.array(["2021"] * 3), np.array(["answered", "meeting", "meeting"]),
    ...                                     np.array(["", "familie", "familie"]))
    >>> (4, [0]) in links and (0, [1, 2]) in links  # invited's denominator = meetings = invited + not invited
    True
    """
    m = len(t)
    measure = t["measure"].to_numpy(dtype=object)
    group = t["group"].astype(str).to_numpy(dtype=object)
    cat = t["category"].to_numpy(dtype=object)
    num = t["numerator"].to_numpy(dtype=float)
    den = t["denominator"].to_numpy(dtype=float)
    values = [*num, *den, *(den - num)]
    links: list[tuple[int, list[int]]] = [(m + i, [i, 2 * m + i]) for i in range(m)]
    frame = pd.DataFrame({"g": group, "y": yk, "row": np.arange(m)})
    for (_, _), rows in frame.groupby(["g", "y"], sort=False)["row"]:
        rows = rows.to_numpy()
        meet = rows[measure[rows] == "meeting"]
        if len(meet) != 1:
            continue
        mt = int(meet[0])
        for r in rows[(base[rows] == "meeting")]:
            links.append((m + int(r), [mt]))  # a denominator that is the number of meetings
        reasons = rows[measure[rows] == "reason"]
        for r in reasons:
            links.append((m + mt, [mt, m + int(r)]))  # answered = meetings + cases without a meeting
        for r in rows[measure[rows] == "invited"]:
            partner = rows[(measure[rows] == "not_invited") & (key[rows] == key[r])]
            if len(partner) == 1:
                links.append((mt, [int(r), int(partner[0])]))
        for split, total in (("place", mt), ("reason", m + int(reasons[0]) if len(reasons) else None)):
            cells = rows[measure[rows] == split]
            if total is None or not len(cells):
                continue
            values.append(values[total] - num[cells].sum())  # slack: no place, or no reason given
            links.append((total, [*map(int, cells), len(values) - 1]))
    year_rows = pd.DataFrame({"g": group, "m": measure, "c": cat, "y": yk, "row": np.arange(m)})
    for _, rows in year_rows.groupby(["g", "m", "c"], sort=False)["row"]:
        rows = rows.to_numpy()
        total = rows[yk[rows] == ALL_YEARS]
        years = rows[yk[rows] != ALL_YEARS]
        if len(total) == 1 and len(years):
            for offset in (0, m, 2 * m):
                links.append((int(total[0]) + offset, [int(r) + offset for r in years]))
    return np.array(values, dtype=float), links


def network_spec(table: pd.DataFrame) -> Any:
    """The network-work table as the disclosure engine sees it (a :class:`~kvarus_research.privacy.engine.TableSpec`).

    Its cells are the rows' numerators and denominators, with every link of :func:`network_constraints` declared
    (:class:`~kvarus_research.privacy.engine.Linear`; the slack cells are never shown and are not statistics) and
    each numerator a part of its denominator (:class:`~kvarus_research.privacy.engine.Complement`). Partners are
    given up from the yearly rows before the all-years rows.

    Examples
    --------
    >>> t = pd.DataFrame({"group": ["A", "A"], "year": pd.array([2014, 2014], dtype="Int64"),
    ...     "measure": ["invited", "not_invited"], "category": ["Family invited", "Family not invited"],
    ...     "key": ["familie", "familie"], "numerator": [3, 17], "denominator": [20, 20]})
    >>> [type(s).__name__ for s in network_spec(t).structure]
    ['Linear', 'Complement']
    """
    from kvarus_research.privacy.engine import Complement, Linear, TableSpec

    t = table.reset_index(drop=True)
    m = len(t)
    yk = t["year"].astype("Int64").astype("string").fillna(ALL_YEARS).to_numpy(dtype=object)
    measure = t["measure"].to_numpy(dtype=object)
    base = np.array([BASE.get(x, x) for x in measure], dtype=object)
    key = (
        t["key"].astype(str).to_numpy(dtype=object) if "key" in t.columns else t["category"].to_numpy(object)
    )
    values, links = network_constraints(t, yk, base, key)

    def ref(p: int) -> Any:
        if p < m:
            return (p, "numerator")
        if p < 2 * m:
            return (p - m, "denominator")
        return ("extra", p - 3 * m)

    # the complements (2m..3m-1) are declared by Complement; their year sums follow from the counts'
    keep = [(tot, parts) for tot, parts in links if not any(2 * m <= q < 3 * m for q in (tot, *parts))]
    sums = [(ref(tot), [ref(q) for q in parts]) for tot, parts in keep]
    extra = values[3 * m :]
    priority = np.where(yk == ALL_YEARS, 2, 1)
    derived = {c: ["numerator", "denominator"] for c in ("proportion", "ci_low", "ci_high") if c in t.columns}
    structure = [
        Linear(
            sums,
            extra,
            priority=priority,
            extra_small=[False] * len(extra),
            name="network-work links",
            lone_partners=False,
        ),
        Complement("numerator", "denominator"),
    ]
    return TableSpec(t, ["numerator", "denominator"], derived, structure, priority)


def protect_network_table(table: pd.DataFrame, rules: Any = "norway", *, enabled: bool = True) -> Any:
    """Protect a :class:`NetworkWorkResult` table; returns a ``ProtectedTable`` whose log says why each cell went.

    With secondary suppression, the table is one system (:func:`network_spec`) solved by the disclosure engine;
    with rounding rules, the counts are protected with the years declared as a margin.

    Examples
    --------
    >>> t = pd.DataFrame({"group": ["A", "A"], "year": pd.array([2014, 2014], dtype="Int64"),
    ...     "measure": ["invited", "not_invited"], "category": ["Family invited", "Family not invited"],
    ...     "key": ["familie", "familie"], "numerator": [3, 17], "denominator": [20, 20],
    ...     "proportion": [0.15, 0.85], "ci_low": 0.0, "ci_high": 1.0})
    >>> protect_network_table(t).table["numerator"].tolist()  # 3 suppressed, and 17 = 20 - 3 with it
    [<NA>, <NA>]
    """
    from kvarus_research.privacy import protect
    from kvarus_research.privacy.rules import resolve_rules

    r = resolve_rules(rules)
    spec = network_spec(table)
    if not enabled or not r.secondary or r.totals_from_rounded or r.rounding:
        t = spec.table.assign(_yk=spec.table["year"].astype("Int64").astype("string").fillna(ALL_YEARS))
        t["_group"] = t["group"].astype(str)
        p = protect(t.drop(columns=["year", "group", "unit_id"], errors="ignore"), counts=spec.counts,
                    derived=spec.derived, rules=r, margins={"_yk": ALL_YEARS},
                    complements={"numerator": "denominator"}, enabled=enabled)  # fmt: skip
        out = spec.table.copy()
        for c in [*spec.counts, *spec.derived]:
            out[c] = p.table[c].to_numpy() if enabled else out[c]
        p.table = out
        return p
    p = protect(spec.table, counts=spec.counts, derived=spec.derived, structure=spec.structure, rules=r)
    p.stamp += " (network-work links)"
    return p
