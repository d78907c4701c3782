"""Output disclosure control: hand-worked tables, presets, logging, stamping, and the recomputation attack."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvarus_research.errors import PrivacyError
from kvarus_research.privacy import DisclosureRules, attack_intervals, protect, protect_crosstab

NO_POOL = DisclosureRules(name="norway", unit_min_n=None)


def one_d(values: list[int]) -> pd.DataFrame:
    names = [f"U{i}" for i in range(len(values))]
    return pd.DataFrame({"unit": [*names, "Total"], "n": [*values, sum(values)]})


def test_primary_and_secondary_1d_by_hand():
    # 3 < 5 is suppressed; alone it is 35 - 12 - 20 = 3, so the smallest non-zero partner (12) goes too.
    p = protect(one_d([3, 12, 20]), counts="n", margins={"unit": "Total"}, rules=NO_POOL)
    assert p.display()["n"].tolist() == [":", ":", 20, 35]
    assert p.table["n"].isna().tolist() == [True, True, False, False]
    assert p.log[["row", "column", "action"]].values.tolist() == [
        [0, "n", "suppressed"],
        [1, "n", "secondary_suppressed"],
    ]
    assert "3" not in " ".join(p.log["reason"])  # the log never holds the suppressed value


def test_small_suppressed_sum_gets_a_partner():
    # 2 and 1 are both primary, but 53 - 20 - 30 = 3 would disclose their sum (3 < 5): 20 is added.
    p = protect(one_d([2, 1, 20, 30]), counts="n", margins={"unit": "Total"}, rules=NO_POOL)
    assert p.table["n"].isna().tolist() == [True, True, True, False, False]


def test_zero_stays_visible_and_is_not_chosen_as_partner():
    # 0 is shown; partner of 3 is the smallest non-zero cell, 9.
    p = protect(one_d([0, 3, 9, 40]), counts="n", margins={"unit": "Total"}, rules=NO_POOL)
    assert p.display()["n"].tolist() == [0, ":", ":", 40, 52]
    z = protect(
        one_d([0, 3, 9, 40]),
        counts="n",
        margins={"unit": "Total"},
        rules=DisclosureRules(suppress_zeros=True, unit_min_n=None),
    )
    # With zeros suppressed, 0 and 3 are primary; 52 - 9 - 40 = 3 would disclose their sum (< 5), so 9 joins.
    assert z.table["n"].isna().tolist() == [True, True, True, False, False]


def test_without_totals_only_primary():
    t = pd.DataFrame({"unit": ["A", "B"], "n": [4, 50]})
    p = protect(t, counts="n", rules=NO_POOL)
    assert p.table["n"].isna().tolist() == [True, False]


def test_opensafely_preset_by_hand():
    # <= 7 redacted: 3; 8 -> 10, 12 -> 10 (nearest 5), 40 -> 40; total from rounded cells: 10 + 10 + 40 = 60.
    p = protect(one_d([3, 8, 12, 40]), counts="n", margins={"unit": "Total"}, rules="opensafely")
    assert p.display()["n"].tolist() == ["[REDACTED]", 10, 10, 40, 60]
    assert set(p.log["action"]) == {"suppressed", "rounded", "recomputed"}
    assert "1 suppressed cell(s) not included" in p.log.loc[p.log["action"] == "recomputed", "reason"].iloc[0]


def test_custom_threshold_like_statistics_norway():
    # SSB-style: fewer than 3 suppressed.
    p = protect(
        one_d([2, 3, 4, 50]),
        counts="n",
        margins={"unit": "Total"},
        rules=DisclosureRules(min_count=3, unit_min_n=None),
    )
    assert p.display()["n"].tolist() == [":", ":", 4, 50, 59]


def test_units_pooled_and_derived_suppressed():
    t = pd.DataFrame({"unit": ["A", "B", "C", "D"], "n": [3, 8, 40, 50], "k": [1, 6, 20, 30]})
    t["pct"] = 100 * t["k"] / t["n"]
    p = protect(t, counts=["n", "k"], derived={"pct": ["k", "n"]}, unit="unit")
    # A (3) and B (8) have N < 10: pooled into one row, n = 3 + 8 = 11, k = 1 + 6 = 7; pct not recomputed.
    assert p.table["unit"].tolist() == ["pooled units (2)", "C", "D"]
    assert p.table["n"].tolist() == [11, 40, 50]
    assert p.table["k"].tolist() == [7, 20, 30]
    assert p.table["pct"].isna().tolist() == [True, False, False]
    assert (p.log["action"] == "pooled").sum() == 1


def test_pooling_keeps_the_total_row_consistent():
    # A (3) and B (4) have N < 10: pooled into one row of 3 + 4 = 7 (>= 5, so shown); total 97 = 7 + 40 + 50.
    p = protect(one_d([3, 4, 40, 50]), counts="n", unit="unit", margins={"unit": "Total"})
    assert p.table.values.tolist() == [["pooled units (2)", 7], ["U2", 40], ["U3", 50], ["Total", 97]]
    assert p.log["action"].tolist() == ["pooled"]


def test_derived_suppressed_with_its_count():
    t = pd.DataFrame({"unit": ["A", "B"], "n": [20, 30], "k": [2, 15], "mean": [1.5, 2.5]})
    p = protect(t, counts=["n", "k"], derived={"mean": "k"}, rules=NO_POOL)
    assert p.display()["mean"].tolist() == [":", 2.5]
    assert p.log.loc[p.log["column"] == "mean", "action"].tolist() == ["derived_suppressed"]


def test_disabled_is_stamped(tmp_path):
    p = protect(one_d([3, 12]), counts="n", enabled=False)
    assert p.table["n"].tolist() == [3, 12, 15]
    assert "DISABLED" in p.stamp
    path = p.to_csv(tmp_path / "raw.csv")
    assert path.read_text().splitlines()[0].startswith("# DISCLOSURE CONTROL DISABLED")


def test_csv_shows_labels(tmp_path):
    p = protect(one_d([3, 12, 20]), counts="n", margins={"unit": "Total"}, rules=NO_POOL)
    text = p.to_csv(tmp_path / "t.csv").read_text()
    assert text.splitlines() == ["unit,n", "U0,:", "U1,:", "U2,20", "Total,35"]


def test_bad_arguments_are_named():
    with pytest.raises(PrivacyError, match=r"counts column\(s\) \['x'\]"):
        protect(one_d([3]), counts="x")
    with pytest.raises(PrivacyError, match="rules='sweden'"):
        protect(one_d([3]), counts="n", rules="sweden")
    with pytest.raises(PrivacyError, match="negative"):
        protect(pd.DataFrame({"n": [-1]}), counts="n")


def test_declared_derived_columns_missing_from_table_are_noted_not_fatal():
    t = pd.DataFrame({"unit": ["A", "B"], "n": [2, 30], "mean": [1.0, 2.0]})
    p = protect(t, counts="n", derived={"mean": "n", "sd": "n"}, rules=NO_POOL)
    assert p.table["mean"].isna().tolist() == [True, False]
    assert p.log.loc[p.log["column"] == "sd", "action"].tolist() == ["note"]
    with pytest.raises(PrivacyError, match="none of which is a count column"):
        protect(t, counts="n", derived={"mean": "unit"})


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=10))
def test_published_counts_are_never_small_and_never_altered(values):
    p = protect(one_d(values), counts="n", margins={"unit": "Total"}, rules=NO_POOL)
    original = [*values, sum(values)]
    for shown, true in zip(p.table["n"], original):
        if not pd.isna(shown):
            assert shown == true and (shown == 0 or shown >= 5)
        else:
            assert true != 0  # in 1-D a zero is never hidden: a non-zero cell or the total is chosen first
    # every hidden cell is logged once, with its reason
    assert int(p.table["n"].isna().sum()) == len(p.log)


def test_crosstab_by_hand():
    # [[3, 30], [20, 40]]: 3 primary; row x needs a partner (30), column a (20), then column b (40).
    ct = pd.DataFrame({"a": [3, 20, 23], "b": [30, 40, 70], "All": [33, 60, 93]}, index=["x", "y", "All"])
    p = protect_crosstab(ct)
    assert p.suppressed.values.tolist() == [[True, True, False], [True, True, False], [False, False, False]]
    assert p.log[["row", "column", "action"]].values.tolist()[0] == ["x", "a", "suppressed"]


# -- the attack --------------------------------------------------------------------------------------------------


small_or_large = st.one_of(st.integers(0, 6), st.integers(0, 60))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(small_or_large, min_size=2, max_size=8))
def test_attack_on_1d_tables_fails(reader_attack, values):
    attack, equation = reader_attack
    p = protect(one_d(values), counts="n", margins={"unit": "Total"}, rules=NO_POOL)
    n = p.table["n"]
    published = {i: float(v) for i, v in enumerate(n) if not pd.isna(v)}
    unknown = [i for i in range(len(n)) if i not in published]
    if not unknown:
        return
    bounds = attack(unknown, [equation(list(range(len(values))), len(values), published)])
    for cell, (lo, hi) in bounds.items():
        assert hi - lo > 0.5, f"cell {cell} pinned to {lo}"
        true = ([*values, sum(values)])[cell]
        assert lo - 1e-6 <= true <= hi + 1e-6
        if 0 < true < 5:
            assert lo < 5 and hi >= 5  # the interval covers small values and does not reveal smallness alone


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(2, 5), st.integers(2, 5), st.data())
def test_attack_on_2d_tables_with_margins_fails(reader_attack, n_rows, n_cols, data):
    attack, equation = reader_attack
    cells = data.draw(st.lists(small_or_large, min_size=n_rows * n_cols, max_size=n_rows * n_cols))
    body = pd.DataFrame(
        np.array(cells).reshape(n_rows, n_cols),
        index=[f"r{i}" for i in range(n_rows)],
        columns=[f"c{j}" for j in range(n_cols)],
    )
    ct = body.copy()
    ct["All"] = ct.sum(axis=1)
    ct.loc["All"] = ct.sum(axis=0)
    p = protect_crosstab(ct)
    rows, cols = list(ct.index), list(ct.columns)
    published = {
        (r, c): float(p.table.loc[r, c]) for r in rows for c in cols if not pd.isna(p.table.loc[r, c])
    }
    unknown = [(r, c) for r in rows for c in cols if (r, c) not in published]
    if not unknown:
        return
    eqs = [equation([(r, c) for c in cols[:-1]], (r, "All"), published) for r in rows]
    eqs += [equation([(r, c) for r in rows[:-1]], ("All", c), published) for c in cols]
    eqs = [e for e in eqs if e[0]]
    bounds = attack(unknown, eqs)
    for cell, (lo, hi) in bounds.items():
        true = ct.loc[cell]
        assert lo - 1e-6 <= true <= hi + 1e-6
        if 0 < true < 5:  # a small count is never pinned (a cell hidden as a partner may be: it is not small)
            assert hi - lo > 0.5, f"cell {cell} pinned"
            assert lo < 5


# -- complements ("x of n" also tells n - x) and partitions (categories splitting a total) ------------------------


def test_complement_by_hand():
    # A 18 of 20 (2 without: primary), B 30 of 40, C 25 of 35; total 73 of 95. A's partner over the total is the
    # smallest other numerator, C's 25: A + C = 43 and their complements 2 + 10 = 12, neither pinned nor small.
    t = pd.DataFrame({"unit": ["A", "B", "C", "Total"], "x": [18, 30, 25, 73], "n": [20, 40, 35, 95]})
    p = protect(t, counts=["x", "n"], complements={"x": "n"}, margins={"unit": "Total"}, rules=NO_POOL)
    assert p.display()["x"].tolist() == [":", 30, ":", 73]
    assert p.table["n"].tolist() == [20, 40, 35, 95]
    assert p.log[["row", "column", "action"]].values.tolist() == [
        [0, "x", "suppressed"],
        [2, "x", "secondary_suppressed"],
    ]


def test_small_complements_together_are_not_pinned():
    # A 18 of 20 and C 10 of 12: 2 + 2 = 4 without. With B (30 of 40) and the total published, a reader knows
    # x_A + x_C = 58 - 30 = 28 with x_A <= 20 and x_C <= 12: x_A in [16, 20], x_C in [8, 12], so each complement
    # is somewhere in 0-4 (what a "<5" label would say) and neither is pinned: B need not be hidden too.
    t = pd.DataFrame({"unit": ["A", "B", "C", "Total"], "x": [18, 30, 10, 58], "n": [20, 40, 12, 72]})
    p = protect(t, counts=["x", "n"], complements={"x": "n"}, margins={"unit": "Total"}, rules=NO_POOL)
    assert p.table["x"].isna().tolist() == [True, False, True, False]
    values = t["x"].to_numpy(dtype=float)
    bounds = attack_intervals(values, p.suppressed["x"].to_numpy(), [(3, [0, 1, 2])], t["n"].to_numpy(float))
    assert bounds[["lower", "upper"]].values.tolist() == [[16.0, 20.0], [8.0, 12.0]]


def test_complement_and_partition_arguments_are_checked():
    t = pd.DataFrame({"unit": ["A", "B"], "x": [18, 3], "n": [20, 2]})
    with pytest.raises(PrivacyError, match="'x' exceeds its row total 'n' in 1 row"):
        protect(t, counts=["x", "n"], complements={"x": "n"})
    with pytest.raises(PrivacyError, match="two different count columns"):
        protect(t, counts=["x"], complements={"x": "n"})
    bad = pd.DataFrame({"g": ["a", "a"], "k": ["y", "z"], "m": [3, 4], "tot": [8, 8]})
    with pytest.raises(PrivacyError, match="should add up to the total they share"):
        protect(bad, counts=["m", "tot"], partitions={"m": ("tot", "k")})
    with pytest.raises(PrivacyError, match="not dimension columns"):
        protect(bad, counts=["m", "tot"], partitions={"m": ("tot", "category")})


def test_partition_by_hand():
    # One group split over three categories: 3 (primary), 12, 20 of 35. Without the partition 3 = 35 - 12 - 20;
    # with it, the smallest partner (12) goes too. The other group (8, 9 of 17) has nothing small.
    t = pd.DataFrame({"g": ["a"] * 3 + ["b"] * 2, "k": ["x", "y", "z", "x", "y"], "m": [3, 12, 20, 8, 9],
                      "tot": [35, 35, 35, 17, 17]})  # fmt: skip
    plain = protect(t, counts=["m", "tot"], rules=NO_POOL)
    assert plain.table["m"].isna().tolist() == [True, False, False, False, False]  # the leak partitions close
    p = protect(t, counts=["m", "tot"], partitions={"m": ("tot", "k")}, rules=NO_POOL)
    assert p.table["m"].isna().tolist() == [True, True, False, False, False]
    assert p.table["tot"].tolist() == [35, 35, 35, 17, 17]


pair = st.integers(6, 60).flatmap(
    lambda d: st.tuples(
        st.one_of(st.integers(0, 6), st.integers(max(0, d - 6), d), st.integers(0, d)), st.just(d)
    )
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pair, min_size=2, max_size=7))
def test_attack_on_counts_and_complements_fails(reader_attack, pairs):
    attack, equation = reader_attack
    """x of n per unit with a total row: no hidden x (hence no hidden n - x) can be pinned, knowing x <= n."""
    xs, ns = [x for x, _ in pairs], [n for _, n in pairs]
    t = pd.DataFrame({"unit": [f"U{i}" for i in range(len(pairs))] + ["Total"], "x": [*xs, sum(xs)],
                      "n": [*ns, sum(ns)]})  # fmt: skip
    p = protect(t, counts=["x", "n"], complements={"x": "n"}, margins={"unit": "Total"}, rules=NO_POOL)
    shown_x, shown_n = p.table["x"], p.table["n"]
    assert not shown_n.isna().any()  # every denominator is at least 5
    for x, n in zip(shown_x, shown_n):  # nothing published is small, on either side
        if not pd.isna(x):
            assert x == 0 or x >= 5
            assert n - x == 0 or n - x >= 5
    published = {i: float(v) for i, v in enumerate(shown_x) if not pd.isna(v)}
    unknown = [i for i in range(len(t)) if i not in published]
    if not unknown:
        return
    upper = {i: float(shown_n[i]) for i in unknown}
    bounds = attack(unknown, [equation(list(range(len(pairs))), len(pairs), published)], upper)
    truth = [*xs, sum(xs)]
    for cell, (lo, hi) in bounds.items():
        assert lo - 1e-6 <= truth[cell] <= hi + 1e-6
        assert hi - lo > 0.5, f"cell {cell} pinned to {lo} (and its complement with it)"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 4), st.integers(2, 4), st.data())
def test_attack_on_partitioned_groups_fails(reader_attack, n_groups, n_cats, data):
    attack, equation = reader_attack
    """Groups split over categories, each row carrying the group total: no hidden category can be pinned."""
    cells = data.draw(st.lists(small_or_large, min_size=n_groups * n_cats, max_size=n_groups * n_cats))
    m = np.array(cells).reshape(n_groups, n_cats)
    t = pd.DataFrame({"g": np.repeat([f"g{i}" for i in range(n_groups)], n_cats),
                      "k": np.tile([f"k{j}" for j in range(n_cats)], n_groups), "m": m.ravel(),
                      "tot": np.repeat(m.sum(axis=1), n_cats)})  # fmt: skip
    p = protect(t, counts=["m", "tot"], partitions={"m": ("tot", "k")}, rules=NO_POOL)
    shown = p.table["m"]
    published = {i: float(v) for i, v in enumerate(shown) if not pd.isna(v)}
    unknown = [i for i in range(len(t)) if i not in published]
    if not unknown:
        return
    eqs = []
    for g in range(n_groups):
        rows = list(range(g * n_cats, (g + 1) * n_cats))
        total = p.table["tot"].iloc[rows[0]]
        if pd.isna(total):  # the total is hidden too (below 5): only non-negativity is known
            continue
        eqs.append(equation(rows, "T", {**published, "T": float(total)}))
    eqs = [e for e in eqs if e[0]]
    bounds = attack(unknown, eqs)
    for cell, (lo, hi) in bounds.items():
        assert lo - 1e-6 <= t["m"].iloc[cell] <= hi + 1e-6
        assert hi - lo > 0.5, f"cell {cell} pinned"
