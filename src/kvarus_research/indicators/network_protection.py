"""Disclosure control of the network-work table, closing the paths by which one number gives another away.

:func:`kvarus_research.privacy.protect` suppresses counts under the threshold and, with the years declared as a
margin (all years = the sum of the years), adds secondary suppression over years. The network-work table has more
structure than that, so suppression is then closed under these rules, repeated until nothing changes:

1. rows that share a denominator (same unit, year and base population) are suppressed together;
2. the number of meetings is the denominator of invited / took part / not invited / place, and cases without a
   meeting (the denominator of the reasons) = cases answering − meetings: suppressing one suppresses the others;
3. "invited" and "not invited" for the same role add up to the number of meetings: suppressed together;
4. places and reasons each split their denominator: one suppressed category suppresses the whole split;
5. over years: a cell that is the only suppressed one among a row's years and its all-years total gets a partner
   (the smallest published year, or the total);
6. an audit over all these links at once (:func:`network_constraints`): partners are added until no small count
   and no small complement (a denominator minus its numerator) can be pinned by linear programming.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

BASE = {"meeting": "answered", "invited": "meeting", "took_part": "meeting", "not_invited": "meeting",
        "place": "meeting", "reason": "no_meeting"}  # fmt: skip
ALL_YEARS = "all"


def _spread(sup: np.ndarray, keys: list[np.ndarray], rows: np.ndarray | None = None) -> np.ndarray:
    """Within each group of ``keys`` (among ``rows``), if any cell is suppressed, suppress all of them."""
    mask = np.ones(len(sup), dtype=bool) if rows is None else rows
    frame = pd.DataFrame({f"k{i}": k for i, k in enumerate(keys)})
    frame["s"] = sup & mask
    any_sup = frame.groupby([f"k{i}" for i in range(len(keys))], sort=False)["s"].transform("any").to_numpy()
    return sup | (any_sup & mask)


def _year_partners(
    sup: np.ndarray, values: np.ndarray, keys: list[np.ndarray], year: np.ndarray
) -> np.ndarray:
    """Rule 5: give a lone suppressed cell among a row's years and its total a partner."""
    out = sup.copy()
    frame = pd.DataFrame({f"k{i}": k for i, k in enumerate(keys)})
    for _, idx in frame.groupby([f"k{i}" for i in range(len(keys))], sort=False).indices.items():
        s = out[idx]
        if s.sum() != 1 or len(idx) < 2:
            continue
        years = idx[(year[idx] != ALL_YEARS) & ~out[idx]]
        if len(years):
            out[years[np.argmin(values[years])]] = True
        else:
            out[idx] = True
    return out


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


def _audit_links(
    t: pd.DataFrame,
    yk: np.ndarray,
    base: np.ndarray,
    key: np.ndarray,
    num_s: np.ndarray,
    den_s: np.ndarray,
    rules: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Extend the rules' suppression until no small count (or complement) can be pinned through the links."""
    from kvarus_research.privacy.audit import holds
    from kvarus_research.privacy.suppression import secondary_suppress

    m = len(t)
    values, links = network_constraints(t, yk, base, key)
    consistent = [k for k in links if holds(values, k)]
    # The small counts and complements are what must stay hidden; the rules' other hidden cells are taken as
    # known to the reader here (the safe side), so partners are added only where a small count needs them.
    small = rules.small(values)
    small[3 * m :] = False  # slack cells (no place, no reason given): never shown, not a statistic
    # partners: never-shown complements first, then yearly rows, all-years rows last
    year_rank = np.where(yk == ALL_YEARS, 2, 1)
    priority = np.r_[year_rank, year_rank, np.zeros(len(values) - 2 * m, dtype=int)]
    sup = secondary_suppress(
        values, small, consistent, rules.min_count, priority=priority, zeros_secret=rules.suppress_zeros,
        audit_only=small,
    )  # fmt: skip
    return num_s | sup[:m], den_s | sup[m : 2 * m]


def protect_network_table(table: pd.DataFrame, rules: Any = "norway", *, enabled: bool = True) -> Any:
    """Protect a :class:`NetworkWorkResult` table; returns a ``ProtectedTable`` whose log says why each cell went.

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
    from kvarus_research.privacy.disclosure import ProtectedTable

    derived = {
        c: ("numerator", "denominator") for c in ("proportion", "ci_low", "ci_high") if c in table.columns
    }
    if not enabled:
        return protect(
            table, counts=["numerator", "denominator"], derived=derived, rules=rules, enabled=False
        )
    t = table.reset_index(drop=True)
    yk = t["year"].astype("Int64").astype("string").fillna(ALL_YEARS).to_numpy(dtype=object)
    view = pd.DataFrame({"group": t["group"].astype(str), "measure": t["measure"], "category": t["category"],
                         "yk": yk, "numerator": t["numerator"], "denominator": t["denominator"]})  # fmt: skip
    p = protect(
        view,
        counts=["numerator", "denominator"],
        rules=rules,
        margins={"yk": ALL_YEARS},
        complements={"numerator": "denominator"},
    )
    num_s = p.suppressed["numerator"].to_numpy(dtype=bool).copy()
    den_s = p.suppressed["denominator"].to_numpy(dtype=bool).copy()
    group, measure = view["group"].to_numpy(dtype=object), view["measure"].to_numpy(dtype=object)
    base = np.array([BASE.get(m, m) for m in measure], dtype=object)
    key = (
        t["key"].astype(str).to_numpy(dtype=object)
        if "key" in t.columns
        else view["category"].to_numpy(object)
    )
    cat = view["category"].to_numpy(dtype=object)
    num_v, den_v = t["numerator"].to_numpy(dtype=float), t["denominator"].to_numpy(dtype=float)
    is_meeting = measure == "meeting"
    start_num, start_den = num_s.copy(), den_s.copy()
    for _ in range(50):
        before = (num_s.copy(), den_s.copy())
        num_s, den_s = _audit_links(t, yk, base, key, num_s, den_s, p.rules)
        den_s = _spread(den_s, [group, yk, base])  # rule 1
        # rule 2: meetings (numerator of "meeting") <-> denominators based on meetings or on no meeting
        linked = pd.DataFrame(
            {"g": group, "y": yk, "s": (is_meeting & (num_s | den_s)) | ((base != "answered") & den_s)}
        )
        hit = linked.groupby(["g", "y"], sort=False)["s"].transform("any").to_numpy()
        num_s |= hit & is_meeting
        den_s |= hit & (base != "answered")
        pair = np.isin(measure, ["invited", "not_invited"])  # rule 3
        num_s = _spread(num_s, [group, yk, key], pair)
        split = np.isin(measure, ["place", "reason"])  # rule 4
        num_s = _spread(num_s, [group, yk, measure], split)
        num_s = _year_partners(num_s, num_v, [group, measure, cat], yk)  # rule 5
        den_s = _year_partners(den_s, den_v, [group, measure, cat], yk)
        if (num_s == before[0]).all() and (den_s == before[1]).all():
            break
    log = [p.log]
    for col, now, was in (("numerator", num_s, start_num), ("denominator", den_s, start_den)):
        added = np.flatnonzero(now & ~was)
        if len(added):
            log.append(pd.DataFrame({"row": added, "column": col, "action": "secondary_suppressed",
                                     "reason": "would follow from a linked published cell (network-work rules)"}))  # fmt: skip
    out = t.copy()
    out["numerator"] = pd.array(p.table["numerator"], dtype="Int64")
    out["denominator"] = pd.array(p.table["denominator"], dtype="Int64")
    out.loc[num_s, "numerator"] = pd.NA
    out.loc[den_s, "denominator"] = pd.NA
    hide = num_s | den_s
    for d in derived:
        out[d] = out[d].where(~hide)
    suppressed = pd.DataFrame({"numerator": num_s, "denominator": den_s, **{d: hide for d in derived}})
    return ProtectedTable(out, pd.concat(log, ignore_index=True), p.rules, True, suppressed,
                          p.stamp + " (network-work links closed)")  # fmt: skip
