"""The fast audit (``pinned_cells``) finds exactly the cells that an LP per cell (``attack_intervals``) pins.

``attack_intervals`` is the plain method: the minimum and maximum of every hidden cell by linear programming.
``pinned_cells`` finds the same set with fewer programs (independent groups, random objectives, feasible
solutions clear cells). An earlier version used an SVD null-space test that declared a cell free which its
equations fixed to 2 (a 3308 x 3233 group of the 400-course indicator release); the property below is the check.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kvarus_research.privacy.audit import attack_intervals, pinned_cells


def _pinned_by_intervals(values, suppressed, constraints, upper=None, small_below=None) -> list[int]:
    """The plain criterion on whole numbers: no other integer in [lower, upper], or (with ``small_below``) every
    integer in it is 1 .. small_below - 1."""
    iv = attack_intervals(values, suppressed, constraints, upper)
    lo = np.ceil(iv["lower"].to_numpy(float) - 1e-6)
    hi = np.floor(np.minimum(iv["upper"].to_numpy(float), 1e9) + 1e-6)
    out = hi - lo < 1
    if small_below is not None:
        out |= (lo >= 1) & (hi <= small_below - 1)
    return sorted(int(p) for p, o in zip(iv["position"], out) if o)


def test_hand_made_table_margins_pin_a_lone_cell_and_not_a_pair() -> None:
    # 2 x 2 table with row and column totals: cells 0..3, row totals 4, 5, column totals 6, 7, grand 8.
    v = np.array([3.0, 10.0, 6.0, 9.0, 13.0, 15.0, 9.0, 19.0, 28.0])
    sums = [(4, [0, 1]), (5, [2, 3]), (6, [0, 2]), (7, [1, 3]), (8, [4, 5])]
    one = np.zeros(9, dtype=bool)
    one[0] = True
    assert pinned_cells(v, one, sums).tolist() == [0]  # 13 - 10
    four = np.zeros(9, dtype=bool)
    four[:4] = True  # all four inner cells: x0 = t, x1 = 13 - t, x2 = 9 - t, x3 = 6 + t, t in 0..9
    assert pinned_cells(v, four, sums).tolist() == []
    cap = np.full(9, np.inf)
    cap[0] = (
        3.0  # a reader who knows x0 <= 3 (e.g. a numerator <= a published denominator of 3) and x1 <= 10:
    )
    cap[1] = 10.0  # 13 - t <= 10 gives t >= 3, and t <= 3: every cell fixed
    assert pinned_cells(v, four, sums, upper=cap).tolist() == [0, 1, 2, 3]
    assert _pinned_by_intervals(v, four, sums, cap) == [0, 1, 2, 3]


@st.composite
def systems(draw):
    n_parts = draw(st.integers(2, 7))
    parts = draw(st.lists(st.integers(0, 12), min_size=n_parts, max_size=n_parts))
    values = list(map(float, parts))
    constraints = []
    n_sums = draw(st.integers(1, 5))
    for _ in range(n_sums):
        members = draw(st.lists(st.integers(0, n_parts - 1), min_size=1, max_size=n_parts, unique=True))
        values.append(float(sum(parts[m] for m in members)))
        constraints.append((len(values) - 1, sorted(members)))
    hidden = draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    return np.array(values), np.array(hidden, dtype=bool), constraints


@settings(max_examples=150, deadline=None)
@given(systems())
def test_pinned_cells_equal_the_cells_an_lp_per_cell_pins(system) -> None:
    values, hidden, constraints = system
    assert pinned_cells(values, hidden, constraints).tolist() == _pinned_by_intervals(
        values, hidden, constraints
    )


@settings(max_examples=150, deadline=None)
@given(systems(), st.lists(st.integers(0, 12), min_size=14, max_size=14))
def test_small_ranges_equal_the_plain_criterion(system, caps) -> None:
    values, hidden, constraints = system
    upper = np.array([max(c, v) if c < 6 else np.inf for c, v in zip(caps, values)], dtype=float)
    got = pinned_cells(values, hidden, constraints, upper, small_below=5).tolist()
    assert got == _pinned_by_intervals(values, hidden, constraints, upper, small_below=5)


def test_two_small_counts_with_a_cap_each_are_known_small() -> None:
    # 3 + 2 = 5 with each at most 4: x0 in 1..4 and x1 in 1..4 (5 - 4 = 1): no value pinned, both known small
    v, hidden, sums = np.array([3.0, 2.0, 5.0]), np.array([True, True, False]), [(2, [0, 1])]
    cap = np.array([4.0, 4.0, np.inf])
    assert pinned_cells(v, hidden, sums, cap).tolist() == []
    assert pinned_cells(v, hidden, sums, cap, small_below=5).tolist() == [0, 1]
    assert _pinned_by_intervals(v, hidden, sums, cap, small_below=5) == [0, 1]
