"""Fast paths of the keyed pseudonyms: the run-length factorisation and the fixed-width name building give exactly
the pseudonyms of the standard library's hmac."""

from __future__ import annotations

import contextlib
import hashlib
import hmac

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import kvarus_research.privacy.keys as keys
from kvarus_research.privacy.keys import PseudonymKey, keyed_pseudonyms

KEY = bytes(range(100, 140))


def expected(domain: str, value: object, prefix: str = "") -> str:
    """Independent computation with the standard library's hmac."""
    msg = domain.encode() + b"\x1f" + str(value).encode()
    return prefix + hmac.new(KEY, msg, hashlib.sha256).hexdigest()[:16]


@contextlib.contextmanager
def setting(name: str, value: int):
    """Temporarily change a module constant of kvarus_research.privacy.keys."""
    old = getattr(keys, name)
    setattr(keys, name, value)
    try:
        yield
    finally:
        setattr(keys, name, old)


def test_run_starts_marks_runs_and_declines_unsorted_or_na_columns():
    with setting("RUNS_MIN_VALUES", 4):
        # a a b b b NaN NaN c: 5 runs start (NaN != NaN, so each NaN starts one) of 8 rows -> more than half
        mixed = pd.Series(["a", "a", "b", "b", "b", np.nan, np.nan, "c"], dtype=object)
        assert keys._run_starts(mixed) is None
        # a a a b b b b c: runs start at rows 0, 3, 7 -> 3 of 8
        runs = keys._run_starts(pd.Series(list("aaabbbbc"), dtype=object))
        assert np.flatnonzero(runs).tolist() == [0, 3, 7]
        assert keys._run_starts(pd.Series(["a", "a", pd.NA, pd.NA, "b", "b"], dtype=object)) is None
        assert keys._run_starts(pd.Series(["a", "a", "a", "a"], dtype="string")) is None  # not a NumPy dtype
        assert keys._run_starts(pd.Series(list("aaa"), dtype=object)) is None  # shorter than the minimum


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.integers(0, 5), st.sampled_from(["1", "2", "x"])), min_size=1, max_size=40
    ),
    st.lists(
        st.one_of(st.none(), st.integers(0, 5), st.sampled_from(["1", "2", "x"])), min_size=1, max_size=40
    ),
    st.booleans(),
)
def test_run_length_factorisation_gives_the_same_pseudonyms(a, b, sort_b):
    if sort_b:  # grouped like registrations by course
        b = sorted(b, key=lambda v: (v is None, str(type(v)), v if v is not None else 0))
    cols = [pd.Series(a, dtype=object), pd.Series(b, dtype=object)]
    key = PseudonymKey(KEY)
    with setting("RUNS_MIN_VALUES", 1):
        (pa_, pb_), n_runs = keyed_pseudonyms(cols, key, domain="case", prefix="N")
    with setting("RUNS_MIN_VALUES", 10**12):
        (qa, qb), n_plain = keyed_pseudonyms(cols, key, domain="case", prefix="N")
    assert pa_.tolist() == qa.tolist() and pb_.tolist() == qb.tolist() and n_runs == n_plain
    # 7 and "7" are one id: str() of each value is what is hashed
    assert n_plain == len({str(v) for v in a + b if v is not None})
    for v, p in zip(a + b, pa_.tolist() + pb_.tolist()):
        assert p == (None if v is None else expected("case", v, "N"))
    codes, fixed = pb_.attrs["pseudonym_codes"]
    assert [None if c < 0 else fixed[c].decode() for c in codes] == pb_.tolist()


def test_join_names_from_fixed_width_bytes_equals_from_strings():
    from kvarus_research.privacy.pseudonym import _join_names

    names = np.array(["Cab", "Ccd"], dtype=object)
    codes = np.array([0, 1, -1, 0])
    for rank in (np.array([1, 12, 3, 101]), np.array([1, 12, 3, 10001])):  # byte buffer, then pyarrow path
        from_bytes = list(_join_names(names.astype("S"), codes, rank))
        assert from_bytes == list(_join_names(names, codes, rank))
        assert from_bytes[1] == "Ccd-0012" and from_bytes[2] is pd.NA
