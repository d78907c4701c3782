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
        # a b c NaN NaN d e f g h: 9 runs start (NaN != NaN, so each NaN starts one) of 10 rows -> above 0.9
        mixed = pd.Series(["a", "b", "c", np.nan, np.nan, "d", "e", "f", "g", "h"], dtype=object)
        assert keys._run_starts(mixed) is None
        # a a b b b NaN NaN c: 5 runs of 8 rows (0.625 <= 0.9); the NaNs each start one and stay missing
        runs = keys._run_starts(pd.Series(["a", "a", "b", "b", "b", np.nan, np.nan, "c"], dtype=object))
        assert np.flatnonzero(runs).tolist() == [0, 2, 5, 6, 7]
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
    from kvarus_research.privacy.registration_ids import _join_names

    names = np.array(["Cab", "Ccd"], dtype=object)
    codes = np.array([0, 1, -1, 0])
    for rank in (np.array([1, 12, 3, 101]), np.array([1, 12, 3, 10001])):  # byte buffer, then pyarrow path
        from_bytes = list(_join_names(names.astype("S"), codes, rank))
        assert from_bytes == list(_join_names(names, codes, rank))
        assert from_bytes[1] == "Ccd-0012" and from_bytes[2] is pd.NA


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.sampled_from(["c1", "c2", "c3"])), min_size=1, max_size=30),
    st.booleans(),
)
def test_a_column_holding_the_first_columns_values_in_order_takes_its_codes(a, nan_for_none):
    """The aligned shortcut (no hash lookup) gives the standard library's HMAC for every value, and declines
    columns with a missing value (NaN != NaN), so missing values stay missing."""
    missing = np.nan if nan_for_none else None
    first = pd.Series([missing if v is None else v for v in a], dtype=object)
    second = first.copy()
    key = PseudonymKey(KEY)
    (p, q), n = keyed_pseudonyms([first, second], key, domain="course", prefix="C")
    assert n == len({v for v in a if v is not None})
    for v, x, y in zip(a, p.tolist(), q.tolist()):
        assert x == y == (None if v is None else expected("course", v, "C"))
    if None not in a:
        assert keys._same_values(first, second)
        assert not keys._same_values(first, second.iloc[::-1].reset_index(drop=True)) or a == a[::-1]


def test_same_values_declines_other_dtypes_and_lengths():
    ints = pd.Series([1, 2, 3])
    assert keys._same_values(ints, pd.Series([1, 2, 3]))
    assert not keys._same_values(ints, pd.Series([1.0, 2.0, 3.0]))  # equal values, another dtype: hashed
    assert not keys._same_values(ints, pd.Series([1, 2]))
    assert not keys._same_values(pd.Series(["a", pd.NA], dtype=object), pd.Series(["a", pd.NA], dtype=object))
    assert not keys._same_values(pd.Series([], dtype=object), pd.Series([], dtype=object))


KINDS = ["baseline", "measurement", "ending", "followup", "other"]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-1, 3),  # course code (-1: no course)
            st.one_of(st.none(), st.integers(0, 4)),  # day offset (None: no date)
            st.sampled_from(KINDS),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_registration_order_is_course_then_date_then_kind_then_row(rows):
    """The packed-key order (kind looked up only for same-day ties) equals Python's sort on the tuples."""
    from kvarus_research.privacy.registration_ids import _registration_order
    from kvarus_research.registry.constants import KIND_ORDER

    codes = np.array([c for c, _, _ in rows], dtype=np.int64)
    dates = (
        pd.Series(
            [pd.NaT if d is None else pd.Timestamp("2021-03-01") + pd.Timedelta(days=d) for _, d, _ in rows]
        )
        .astype("datetime64[ns]")
        .to_numpy()
    )
    kinds = np.array([k for _, _, k in rows], dtype=object)
    want = sorted(
        range(len(rows)),
        key=lambda i: (
            rows[i][0],
            -1 if rows[i][1] is None else rows[i][1],
            KIND_ORDER.get(rows[i][2], 7),
            i,
        ),
    )
    assert _registration_order(codes, dates, kinds).tolist() == want


def test_registration_ranks_count_within_each_course():
    from kvarus_research.privacy.registration_ids import _registration_pseudonyms

    names = np.array([b"Ca", b"Cb"], dtype="S2")
    codes = np.array([1, 0, 1, 0, -1, 1])
    dates = pd.to_datetime(
        ["2021-01-05", "2021-01-01", "2021-01-02", "2021-01-01", "2021-01-01", "2021-01-02"]
    )
    kinds = np.array(
        ["ending", "measurement", "measurement", "baseline", "baseline", "baseline"], dtype=object
    )
    out = list(_registration_pseudonyms(codes, names, dates.to_numpy(), kinds))
    # course b: 01-02 baseline (row 5) 1, 01-02 measurement (row 2) 2, 01-05 ending (row 0) 3
    # course a: 01-01 baseline (row 3) 1, 01-01 measurement (row 1) 2; row 4 has no course
    assert out == ["Cb-0003", "Ca-0002", "Cb-0002", "Ca-0001", pd.NA, "Cb-0001"]


# -- key strength, key files, keygen ------------------------------------------------------------------------------
import os  # noqa: E402
import secrets  # noqa: E402
import stat  # noqa: E402
import warnings  # noqa: E402

import pytest  # noqa: E402

from kvarus_research.cli import main  # noqa: E402
from kvarus_research.errors import PrivacyError, PrivacyWarning  # noqa: E402
from kvarus_research.privacy.keys import (  # noqa: E402
    PUBLISHED_KEYS,
    estimate_entropy,
    generate_key_file,
    key_problems,
    load_key,
)

DOC_KEY = b"EXAMPLE-ONLY-kvarus-pseudonym-key-do-not-use-0001"
WEAK = [
    (b"abcdefgh" * 4, "too regular: a block of 8"),
    (b"12345678" * 4, "too regular: a block of 8"),
    (b"Password1" * 4, "too regular: a block of 9"),
    (DOC_KEY.lower(), "example key"),
    (DOC_KEY + b"X", "example key"),
    (
        DOC_KEY[:10] + DOC_KEY[11:] + b"!!",
        "example key",
    ),  # one deleted, two added: 3 edits... but contains no 16
    (b"0123456789ABCDEF0123456789ABCDEF", "example key"),
    (b"abcdefghijklmnopqrstuvwxyz0123456789", "consecutive characters"),
    (b"PasswordQwertyuiopLetmein2024Hemmelig", "common words"),
    (b"MyKvarusProject2024!Secure#Key99", "common words"),
    (b"a" * 12 + b"Q" * 12 + b"7" * 12 + b"%" * 12 + b"kWp2", "too predictable"),
]


def _key_file(path, content: bytes, mode: int = 0o600):
    path.write_bytes(content)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize(("key", "why"), WEAK)
def test_weak_keys_are_refused_with_a_reason_never_the_key(tmp_path, key, why, monkeypatch):
    path = _key_file(tmp_path / "k", key)
    with pytest.raises(PrivacyError, match=why) as err:
        load_key(path)
    assert key.decode() not in str(err.value)
    monkeypatch.setenv("KVARUS_PSEUDONYM_KEY", key.decode())
    with pytest.raises(PrivacyError, match=why):
        load_key()
    # on the command line: exit 2, the reason, never the key
    assert main(["pseudonymize", str(tmp_path), "--key-file", str(path), "--out", str(tmp_path / "o")]) == 2


def test_published_keys_refused_in_any_case_and_with_edits():
    for k in PUBLISHED_KEYS:
        for variant in (
            k,
            k.upper(),
            k.lower(),
            k + b"1",
            k[:-1],
            b"x" + k[1:] + b"y",
            k + b" " + b"extra-text" * 2,
        ):
            if len(variant.strip()) >= 32:
                assert key_problems(variant), variant


def test_the_keys_in_the_docs_and_readme_are_refused():
    """Every key-like value printed next to --key-file or KVARUS_PSEUDONYM_KEY= in the docs is refused."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    texts = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    found = set()
    for p in texts:
        for m in re.finditer(r"KVARUS_PSEUDONYM_KEY=[\"']?([^\s\"'`]+)", p.read_text(encoding="utf-8")):
            found.add(m.group(1).encode())
    for k in found:
        assert key_problems(k), "a key published in the docs would be accepted"


def test_generated_and_random_keys_are_accepted(tmp_path):
    for _ in range(20):
        assert key_problems(secrets.token_hex(32).encode()) == []
        assert key_problems(secrets.token_hex(16).encode()) == []  # 128 random bits, 32 hex characters
        assert key_problems(secrets.token_urlsafe(32).encode()) == []
    assert estimate_entropy(secrets.token_hex(32))[0] >= 200
    path = generate_key_file(tmp_path / "new" / "project.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for a file readable by its owner only
        load_key(path, strict=True)
    with pytest.raises(PrivacyError, match="never overwritten"):
        generate_key_file(path)


def test_key_file_readable_by_others_warns_and_is_refused_when_strict(tmp_path, monkeypatch):
    path = generate_key_file(tmp_path / "project.key")
    os.chmod(path, 0o644)
    monkeypatch.delenv("KVARUS_STRICT_KEYS", raising=False)
    with pytest.warns(PrivacyWarning, match="can be read or written by other users .mode 0644.; .*chmod 600"):
        load_key(path)
    with pytest.raises(PrivacyError, match="refused: strict"):
        load_key(path, strict=True)
    monkeypatch.setenv("KVARUS_STRICT_KEYS", "1")
    with pytest.raises(PrivacyError, match="refused: strict"):
        load_key(path)
    monkeypatch.delenv("KVARUS_STRICT_KEYS")
    assert (
        main(
            [
                "pseudonymize",
                str(tmp_path),
                "--key-file",
                str(path),
                "--strict-key",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )


def test_keygen_command(tmp_path, capsys):
    out = tmp_path / "secure" / "project.key"
    assert main(["keygen", "--out", str(out)]) == 0
    text = out.read_text().strip()
    printed = capsys.readouterr()
    assert "wrote a new project key" in printed.out and text not in printed.out + printed.err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and key_problems(text.encode()) == []
    assert main(["keygen", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text().strip() == text
