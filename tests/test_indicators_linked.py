"""Disclosure control of indicator tables as linked cells: units, the pooled row and its parts, regions, the
nation and years. Hand-worked tables, and an attack written independently over the unit-year counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from kvarus_research.indicators.framework import aggregate_with_parts
from kvarus_research.indicators.protection import protect_indicator_table


def table(rows: list[tuple]) -> pd.DataFrame:
    """An indicator table by hand: (level, group, unit_id, region, numerator, denominator), all years."""
    t = pd.DataFrame(rows, columns=["level", "group", "unit_id", "region", "numerator", "denominator"])
    return t.assign(year=pd.array([pd.NA] * len(t), dtype="Int64"), n_units=1, missing=0, proportion=0.5,
                    ci_low=0.0, ci_high=1.0, target_level="low")  # fmt: skip


def test_a_unit_is_not_recomputed_from_its_region():
    # R = A + B, S = C, nation = A + B + C = R + S. A's 3 is small; over the nation alone C (25) would be its
    # partner, but then A = R - B = 33 - 30. The region's own partner is B, and nothing else is needed:
    # A + B = 33 with A <= 20 and B <= 40 leaves A anywhere in 0..20.
    t = table([("unit", "A", 1, "R", 3, 20), ("unit", "B", 2, "R", 30, 40), ("unit", "C", 3, "S", 25, 35),
               ("region", "R", None, "R", 33, 60), ("region", "S", None, "S", 25, 35),
               ("national", "Norway", None, None, 58, 95)])  # fmt: skip
    p = protect_indicator_table(t)
    assert p.table["numerator"].isna().tolist() == [True, True, False, False, False, False]
    assert p.log.loc[p.log["column"] == "numerator", ["row", "action"]].values.tolist() == [
        [0, "suppressed"],
        [1, "secondary_suppressed"],
    ]


def flags_table(counts: dict[tuple[int, int], tuple[int, int]]) -> pd.DataFrame:
    """Flags from (unit, year) -> (numerator, denominator)."""
    parts = []
    for (unit, year), (x, n) in counts.items():
        parts.append(pd.DataFrame({"unit_id": unit, "date": pd.Timestamp(f"{year}-06-01"), "denominator": True,
                                   "numerator": np.arange(n) < x, "exclusion": None}))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


UNITS = pd.DataFrame({"unit_id": [1, 2, 3, 4], "unit_name": list("ABCD"), "region": ["R", "R", "R", "S"]})


def test_a_pooled_unit_is_not_recomputed_from_its_region():
    # Region R: A 20 of 30, B 15 of 25, and the small unit C 6 of 8 (pooled: 8 < 10). S: D 30 of 40.
    # C's 6 of 8 has 2 without: a part to keep secret, and the pooled row (only C) is hidden for it.
    # Region R (41 of 63) minus A and B would give C's 6 back: B (15, the smaller) is hidden too.
    agg, parts = aggregate_with_parts(
        flags_table({(1, 2021): (20, 30), (2, 2021): (15, 25), (3, 2021): (6, 8), (4, 2021): (30, 40)}), UNITS
    )
    assert parts[["unit_id", "numerator", "denominator"]].values.tolist() == [
        [3, 6, 8],
        [3, 6, 8],
    ]  # 2021, all
    p = protect_indicator_table(agg, pooled_parts=parts)
    shown = p.table.assign(year=p.table["year"].astype("string").fillna("all")).set_index(["group", "year"])
    assert pd.isna(shown.loc[("Pooled units (n < 10)", "2021"), "numerator"])
    assert pd.isna(shown.loc[("B", "2021"), "numerator"]) and shown.loc[("A", "2021"), "numerator"] == 20
    assert shown.loc[("R", "2021"), "numerator"] == 41 and shown.loc[("Norway", "2021"), "numerator"] == 71
    # the same without the parts: the region's remainder stands for them, with the same result
    q = protect_indicator_table(agg)
    assert q.table["numerator"].isna().tolist() == p.table["numerator"].isna().tolist()


def attack_counts(agg: pd.DataFrame, shown: pd.DataFrame, truth: dict, units: pd.DataFrame) -> list[str]:
    """Which small, unpublished counts a reader can pin, knowing every published numerator and denominator, that
    rows are sums of unit-year numerators x[u, y] and denominators n[u, y], and 0 <= x[u, y] <= n[u, y]
    (scipy linprog over the 2K unknowns x then n). A hidden denominator is unknown to the reader too."""
    keys = sorted(truth)
    j = {k: i for i, k in enumerate(keys)}
    nk = len(keys)
    region = units.set_index("unit_id")["region"].to_dict()
    years = sorted({y for _, y in keys})

    def members(row: pd.Series, pooled_sets: dict) -> list[tuple[int, int]]:
        ys = years if pd.isna(row["year"]) else [int(row["year"])]
        yk = "all" if pd.isna(row["year"]) else int(row["year"])
        if row["level"] == "unit":
            return [(row["unit_id"], y) for y in ys if (row["unit_id"], y) in j]
        if row["level"] == "pooled":
            return [(u, y) for u in pooled_sets[yk] for y in ys if (u, y) in j]
        if row["level"] == "region":
            return [(u, y) for (u, y) in keys if y in ys and region[u] == row["group"]]
        return [(u, y) for (u, y) in keys if y in ys]

    shown_units = {
        ("all" if pd.isna(y) else int(y), u)
        for u, y in agg.loc[agg["level"] == "unit", ["unit_id", "year"]].values
    }
    pooled_sets = {yk: [u for u in units["unit_id"] if (yk, u) not in shown_units
                        and any((u, y) in j for y in (years if yk == "all" else [yk]))]
                   for yk in [*years, "all"]}  # fmt: skip
    a, b = [], []
    for i, row in agg.iterrows():
        for offset, col in ((0, "numerator"), (nk, "denominator")):
            if pd.isna(shown.loc[i, col]):
                continue
            coefs = np.zeros(2 * nk)
            for k in members(row, pooled_sets):
                coefs[offset + j[k]] = 1
            a.append(coefs)
            b.append(float(shown.loc[i, col]))
    a_ub = np.hstack([np.eye(nk), -np.eye(nk)])  # x <= n
    bounds = [(0, None)] * (2 * nk)
    targets = []  # hidden rows whose count or complement is small, and small unit-years inside the pool
    for i, row in agg.iterrows():
        x, n = row["numerator"], row["denominator"]
        hidden = pd.isna(shown.loc[i, "numerator"])
        if hidden and 0 < x < 5:
            targets.append((f"row {i}", members(row, pooled_sets), 0))
        if hidden and 0 < n - x < 5:
            targets.append((f"row {i} complement", members(row, pooled_sets), 1))
    for yk, us in pooled_sets.items():
        for u in us:
            cells = [(u, y) for y in (years if yk == "all" else [yk]) if (u, y) in j]
            x = sum(truth[c][0] for c in cells)
            n = sum(truth[c][1] for c in cells)
            if 0 < x < 5:
                targets.append((f"pooled part {u}/{yk}", cells, 0))
            if 0 < n - x < 5:
                targets.append((f"pooled part {u}/{yk} complement", cells, 1))
    pinned = []
    for name, cells, complement in targets:
        c = np.zeros(2 * nk)
        for k in cells:
            if complement:
                c[nk + j[k]], c[j[k]] = 1, -1
            else:
                c[j[k]] = 1
        eq = dict(A_eq=np.array(a) if a else None, b_eq=np.array(b) if b else None)
        lo = linprog(c, A_ub=a_ub, b_ub=np.zeros(nk), bounds=bounds, **eq)
        hi = linprog(-c, A_ub=a_ub, b_ub=np.zeros(nk), bounds=bounds, **eq)
        assert lo.status == 0 and hi.status in (0, 3)
        if hi.status == 0 and -hi.fun - lo.fun < 0.5:
            pinned.append(name)
    return pinned


cell = st.integers(0, 30).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(cell, min_size=8, max_size=8))
def test_attack_on_linked_indicator_tables_fails(cells):
    """Four units in two regions over two years, random counts (small units pooled): no small count that is
    not published can be pinned, shown rows or pooled unit-years alike."""
    truth = {}
    for i, (x, n) in enumerate(cells):
        if n:
            truth[(i % 4 + 1, 2021 + i // 4)] = (x, n)
    if not truth:
        return
    agg, parts = aggregate_with_parts(flags_table(truth), UNITS)
    p = protect_indicator_table(agg, pooled_parts=parts)
    assert attack_counts(agg, p.table, truth, UNITS) == []


def test_a_small_count_equal_to_its_denominator_is_still_protected():
    """Found by a larger random search: unit C in 2023 has 2 of 2, pooled (2 < 10). A count that equals its
    denominator is a zero complement, harmless to reveal, unless the count itself is small, as 2 is."""
    units = pd.DataFrame({"unit_id": [1, 2, 3, 4, 5, 6], "unit_name": list("ABCDEF"),
                          "region": ["R", "R", "S", "S", "T", "R"]})  # fmt: skip
    truth = {(1, 2021): (2, 10), (1, 2023): (0, 5), (2, 2022): (2, 6), (2, 2023): (4, 5), (3, 2022): (5, 8),
             (3, 2023): (2, 2), (4, 2023): (7, 21), (5, 2022): (3, 9), (5, 2023): (36, 38), (6, 2021): (2, 7),
             (6, 2022): (9, 9), (6, 2023): (7, 7)}  # fmt: skip
    agg, parts = aggregate_with_parts(flags_table(truth), units)
    p = protect_indicator_table(agg, pooled_parts=parts)
    assert attack_counts(agg, p.table, truth, units) == []
