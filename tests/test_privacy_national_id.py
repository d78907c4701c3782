"""Norwegian identity numbers: worked examples for every kind, properties, and a cross-check with python-stdnum."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.no import fodselsnummer

from kvarus_research.errors import PrivacyError
from kvarus_research.privacy.national_id import make_national_ids, national_id

# Hand computation of the control digits of 010180123 (the base of every example below):
#   k1: 3*0 + 7*1 + 6*0 + 1*1 + 8*8 + 9*0 + 4*1 + 5*2 + 2*3 = 92; 92 mod 11 = 4; k1 = 11 - 4 = 7
#   k2: 5*0 + 4*1 + 3*0 + 2*1 + 7*8 + 6*0 + 5*1 + 4*2 + 3*3 + 2*7 = 98; 98 mod 11 = 10; k2 = 11 - 10 = 1
# -> 01018012371. Individual number 123 (< 500) -> 1900s; third individual digit 3 is odd -> male.
EXAMPLES = [
    # value, valid, kind, birth date, sex, reason
    ("01018012371", True, "fnr", "1980-01-01", "male", None),
    ("41018012365", True, "dnr", "1980-01-01", "male", None),  # day 01 + 40
    ("01418012354", True, "hnr", "1980-01-01", "male", None),  # month 01 + 40
    ("01818012337", True, "tenor", "1980-01-01", "male", None),  # month 01 + 80
    ("81018012359", True, "fhnr", None, None, None),  # first digit 8: no birth date, no sex
    ("29020052412", True, "fnr", "2000-02-29", "female", None),  # 524 with YY 00 -> 2000, a leap year; 4 even
    ("15067567800", True, "fnr", "1875-06-15", "female", None),  # 678 with YY 75 >= 54 -> 1800s
    ("01014099944", True, "fnr", "1940-01-01", "male", None),  # 999 with YY 40 -> 1900s
    # Published 2032 example: passes the classic check too, born 2032-01-02; from 2032 sex is not encoded.
    ("02013299997", True, "fnr", "2032-01-02", None, None),
    # 0201321232 + 8: weighted k1 sum leaves remainder 2 -> valid only under the rules from 2032.
    ("02013212328", True, "fnr_2032", None, None, None),
    ("01018012372", False, None, None, None, "control digit 2 does not match"),
    # k1 = 2 instead of 7: 92 + 2 = 94, 94 mod 11 = 6, neither 0 (classic) nor 1-3 (from 2032)
    ("01018012321", False, None, None, None, "control digit 1 does not match"),
    ("31028012384", False, None, None, None, "impossible date"),  # 31 February
    ("29020012380", False, None, None, None, "impossible date"),  # 123 with YY 00 -> 1900: not a leap year
    ("15064080021", False, None, None, None, "no century for this individual number and year"),  # 800, YY 40
    ("0101801237", False, None, None, None, "not 11 digits"),
    ("0101801237x", False, None, None, None, "not 11 digits"),
]


@pytest.mark.parametrize(("value", "valid", "kind", "birth", "sex", "reason"), EXAMPLES)
def test_worked_examples(value, valid, kind, birth, sex, reason):
    row = national_id(value).iloc[0]
    assert row["valid"] == valid
    assert (None if pd.isna(row["kind"]) else row["kind"]) == kind
    assert (None if pd.isna(row["birth_date"]) else str(row["birth_date"].date())) == birth
    assert (None if pd.isna(row["sex"]) else row["sex"]) == sex
    assert (None if pd.isna(row["reason"]) else row["reason"]) == reason


def test_nav_synthetic_collides_with_h_numbers_and_is_chosen_explicitly():
    assert national_id("01418012354")["kind"].iloc[0] == "hnr"
    assert national_id("01418012354", nav_synthetic=True)["kind"].iloc[0] == "nav_synthetic"


def test_series_keeps_index_and_handles_missing_and_integers():
    s = pd.Series(["01018012371", None, 2013299997], index=["a", "b", "c"])  # int lost its leading zero
    r = national_id(s)
    assert list(r.index) == ["a", "b", "c"]
    assert r["valid"].tolist() == [True, False, True]
    assert r.loc["b", "reason"] == "missing"


def test_result_never_contains_the_value():
    r = national_id(["01018012371", "01018012372"])
    assert "01018012371" not in r.to_csv() and "01018012372" not in r.to_csv()


dates = st.dates(min_value=dt.date(1854, 1, 1), max_value=dt.date(2039, 12, 31))


@settings(max_examples=200, deadline=None)
@given(
    birth=st.lists(dates, min_size=1, max_size=20),
    kind=st.sampled_from(["fnr", "dnr", "hnr", "tenor", "nav_synthetic"]),
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_generated_numbers_always_validate(birth, kind, seed, data):
    sex = data.draw(st.lists(st.sampled_from(["male", "female"]), min_size=len(birth), max_size=len(birth)))
    ids = make_national_ids(birth, sex, kind=kind, rng=seed)
    r = national_id(ids, nav_synthetic=kind == "nav_synthetic")
    assert r["valid"].all()
    assert r["kind"].tolist() == [kind] * len(birth)  # classic numbers dated 2032+ keep their kind
    assert [d.date() for d in r["birth_date"]] == birth
    # sex is encoded only in numbers dated before 2032
    assert [s if d < dt.date(2032, 1, 1) else None for s, d in zip(sex, birth)] == [
        None if pd.isna(x) else x for x in r["sex"]
    ]


@settings(max_examples=200, deadline=None)
@given(birth=dates, sex=st.sampled_from(["male", "female"]), pos=st.integers(0, 10), delta=st.integers(1, 9))
def test_any_single_digit_change_is_rejected(birth, sex, pos, delta):
    # Changing digit i by delta changes the k2 sum by w2[i] * delta, never 0 mod 11 (all weights 1..7, 11 prime).
    number = make_national_ids([birth], [sex], kind="fnr", rng=0)[0]
    changed = number[:pos] + str((int(number[pos]) + delta) % 10) + number[pos + 1 :]
    assert not national_id(changed)["valid"].iloc[0]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_agrees_with_python_stdnum_on_classic_numbers(number):
    # stdnum knows fnr, D- and H-numbers (not FH, Tenor or the 2032 rules) and rejects dates after today.
    ours = national_id(number).iloc[0]
    classic = bool(ours["valid"]) and ours["kind"] in ("fnr", "dnr", "hnr")
    if classic:
        classic = ours["birth_date"].date() <= dt.date.today()
    assert classic == fodselsnummer.is_valid(number)
    if classic:
        assert ours["birth_date"].date() == fodselsnummer.get_birth_date(number)
        assert ours["sex"][0].upper() == fodselsnummer.get_gender(number)


def test_stdnum_cross_check_on_generated_numbers():
    rng = np.random.default_rng(4)
    birth = pd.Timestamp("1900-01-01") + pd.to_timedelta(rng.integers(0, 45_000, 2_000), unit="D")
    sex = rng.choice(["male", "female"], 2_000)
    for kind in ("fnr", "dnr", "hnr"):
        ids = make_national_ids(birth, sex, kind=kind, rng=rng)
        assert all(fodselsnummer.is_valid(i) for i in ids)
        assert [fodselsnummer.get_gender(i) for i in ids] == [s[0].upper() for s in sex]  # stdnum: 'M'/'F'


def test_million_values_vectorised_quickly():
    import time

    ids = make_national_ids(pd.Series(pd.Timestamp("1990-01-01"), index=range(1_000_000)), "female", "fnr", 1)
    start = time.perf_counter()
    r = national_id(pd.Series(ids))
    assert time.perf_counter() - start < 10
    assert r["valid"].all() and (r["sex"] == "female").all()


def test_make_national_ids_refuses_bad_input():
    with pytest.raises(PrivacyError, match="1854-2039"):
        make_national_ids(["2045-01-01"], ["male"], kind="fnr")
    with pytest.raises(PrivacyError, match="kind"):
        make_national_ids(["1980-01-01"], ["male"], kind="fhnr")
    with pytest.raises(PrivacyError, match="sex"):
        make_national_ids(["1980-01-01"], ["x"], kind="fnr")
    # codebook PatientGender codes are accepted: 1 Mann, 2 Kvinne
    assert national_id(make_national_ids(["1980-01-01"], [2], kind="fnr", rng=1))["sex"].iloc[0] == "female"
