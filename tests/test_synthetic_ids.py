"""Synthetic identifiers: GUID layout and Tenor-range national identity numbers (property tests)."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kvarus_research.synthetic.ids import control_digits, guids, tenor_national_ids


def _reference_controls(stem: str) -> tuple[int, int]:
    """domain.md §6 written out digit by digit (independent of the vectorised code)."""
    d = [int(c) for c in stem]
    k1 = 11 - sum(w * x for w, x in zip([3, 7, 6, 1, 8, 9, 4, 5, 2], d, strict=True)) % 11
    k1 = 0 if k1 == 11 else k1
    if k1 == 10:
        return 10, 10
    k2 = 11 - sum(w * x for w, x in zip([5, 4, 3, 2, 7, 6, 5, 4, 3, 2], [*d, k1], strict=True)) % 11
    k2 = 0 if k2 == 11 else k2
    return (10, 10) if k2 == 10 else (k1, k2)


def test_published_example_and_hand_computed_controls() -> None:
    # Published example 02013299997, stem 0 2 0 1 3 2 9 9 9:
    # k1: 0*3 + 2*7 + 0*6 + 1*1 + 3*8 + 2*9 + 9*4 + 9*5 + 9*2 = 156; 156 mod 11 = 2; 11 - 2 = 9
    # k2 over the stem and k1 = 9: 0*5 + 2*4 + 0*3 + 1*2 + 3*7 + 2*6 + 9*5 + 9*4 + 9*3 + 9*2 = 169;
    #     169 mod 11 = 4; 11 - 4 = 7
    k1, k2 = control_digits(np.array([20132999]))
    assert (int(k1[0]), int(k2[0])) == (9, 7)


@given(st.integers(0, 999_999_999))
def test_control_digits_match_the_reference(stem: int) -> None:
    k1, k2 = control_digits(np.array([stem]))
    assert (int(k1[0]), int(k2[0])) == _reference_controls(f"{stem:09d}")


@settings(max_examples=60)
@given(
    st.lists(
        st.tuples(st.dates(dt.date(1930, 1, 1), dt.date(2039, 12, 31)), st.booleans()),
        min_size=1,
        max_size=30,
    ),
    st.integers(0, 2**32 - 1),
)
def test_tenor_numbers_are_valid_and_encode_date_sex_and_century(people: list, seed: int) -> None:
    dates = np.array([p[0].isoformat() for p in people], dtype="datetime64[D]")
    male = np.array([p[1] for p in people])
    ids = tenor_national_ids(np.random.default_rng(seed), dates, male)
    for number, (birth, is_male) in zip(ids, people, strict=True):
        assert re.fullmatch(r"\d{11}", number)
        assert _reference_controls(number[:9]) == (int(number[9]), int(number[10]))
        assert int(number[:2]) == birth.day and int(number[2:4]) == birth.month + 80
        assert int(number[4:6]) == birth.year % 100
        individual = int(number[6:9])
        assert (individual >= 500) == (birth.year >= 2000)  # 000-499: 1900s; 500-999 with YY < 40: 2000s
        assert (int(number[8]) % 2 == 1) == is_male


def test_guids_have_the_version_4_layout_and_are_distinct() -> None:
    g = guids(np.random.default_rng(3), 5000)
    assert len(set(g)) == 5000
    pattern = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    assert all(pattern.fullmatch(x) for x in g)
