"""The MRS CSV parser and value conversion: hand-made inputs and property-based tests (any bytes in, a Registry or
the library's own error out)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kvarus_research as kr
from kvarus_research.io import read_extract
from kvarus_research.io.convert import convert_column, parse_booleans, parse_dates, parse_numbers
from kvarus_research.io.csv import FileProblem, parse_csv

CB = kr.load_codebook()
MP = "DataDump_Prod_Målepunkt_2023-01-31_0700.csv"


def test_bom_trailing_column_and_line_numbers() -> None:
    data = "\ufeffa;b;\r\n1;x;\r\n2;y;\r\n".encode()
    raw = parse_csv(data, "f.csv")
    assert raw.columns == ["a", "b"]
    assert raw.lines.tolist() == [2, 3]
    assert raw.table.column("b").to_pylist() == ["x", "y"]
    assert raw.n_read == 2 and not raw.bad_rows and not raw.notes


def test_rows_without_trailing_column_are_accepted() -> None:
    # the header has the trailing empty column, one row lacks it: still 2 fields of data, not a bad row
    raw = parse_csv(b"a;b;\n1;x;\n2;y\n", "f.csv")
    assert raw.lines.tolist() == [2, 3] and raw.table.column("a").to_pylist() == ["1", "2"]


def test_blank_lines_are_skipped_but_line_numbers_kept() -> None:
    raw = parse_csv(b"a;b;\n1;x;\n\n2;y;\n", "f.csv")
    assert raw.lines.tolist() == [2, 4]
    assert raw.line_accounting() == {"lines": 4, "header": 1, "blank": 1, "continued": 0, "rows": 2}


def test_unbalanced_quote_in_the_middle_rejects_only_its_line() -> None:
    raw = parse_csv(b'a;b;\n1;"x;\n2;y;\n3;z;\n', "f.csv")
    assert raw.damaged == [
        (
            2,
            "unbalanced_quote",
            "a '\"' opened on this line is not closed where the row ends: the next 2 line(s) would have been "
            "swallowed into one field; this line rejected, the lines after it read on their own",
        )
    ]
    assert raw.lines.tolist() == [3, 4] and raw.table.column("b").to_pylist() == ["y", "z"]
    assert raw.line_accounting() == {"lines": 4, "header": 1, "blank": 0, "continued": 0, "rows": 3}


def test_carriage_return_inside_an_unquoted_field_rejects_that_line() -> None:
    raw = parse_csv(b"a;b;\r\n1;x\ry;\r\n2;z;\r\n", "f.csv")
    assert [d[:2] for d in raw.damaged] == [(2, "unreadable_line")]
    assert raw.lines.tolist() == [3] and raw.line_accounting()["rows"] == 2


def test_extra_fields_are_a_bad_row_with_its_line() -> None:
    raw = parse_csv(b"a;b;\n1;x;\n2;y;z;w\n3;q;\n", "f.csv")
    assert raw.bad_rows == [(3, 4)]  # line 3 has 4 fields, 3 expected (with the trailing one)
    assert raw.line_accounting() == {"lines": 4, "header": 1, "blank": 0, "continued": 0, "rows": 3}
    assert raw.lines.tolist() == [2, 4] and raw.n_read == 3


def test_values_in_the_unnamed_last_column_are_noted() -> None:
    raw = parse_csv(b"a;\n1;oops\n2;\n", "f.csv")
    assert [n[0] for n in raw.notes] == ["unnamed_column_not_empty"]


def test_nul_bytes_are_refused() -> None:
    with pytest.raises(FileProblem) as exc:
        parse_csv(b"a;b;\n1;\x00;\n", "f.csv")
    assert (exc.value.rule, exc.value.line) == ("unreadable", 2)


def test_undecodable_even_as_cp1252() -> None:
    with pytest.raises(FileProblem) as exc:
        parse_csv(b"a;b;\n1;\x81\xff;\n", "f.csv", allow_cp1252=True)  # 0x81 is undefined in cp1252
    assert exc.value.rule == "encoding"


def test_numbers_with_decimal_comma() -> None:
    values, bad = parse_numbers(pa.array(["1", "2,5", "-0,25", "1e2", "abc", "", None, "3.5"]))
    # "" is not a number either: emptiness is handled (as missing) before parse_numbers is called
    assert values[:4].tolist() == [1.0, 2.5, -0.25, 100.0] and values[7] == 3.5
    assert bad.tolist() == [False, False, False, False, True, True, False, False]


def test_dates_and_datetimes() -> None:
    arr = pa.array(
        [
            "29.02.2020",
            "29.02.2021",
            "1.3.2021",
            "01.03.2021 13:45:10",
            "2021-03-01",
            "01.13.2021",
            "01.03.2021 25:00:00",
            "01/03/2021",
            None,
        ]
    )
    d, bad = parse_dates(arr, keep_time=True)
    assert str(d[0])[:10] == "2020-02-29"  # a leap day
    assert bad.tolist() == [False, True, False, False, False, True, True, True, False]
    assert str(d[3]) == "2021-03-01T13:45:10.000000000"
    d2, _ = parse_dates(arr, keep_time=False)
    assert str(d2[3]) == "2021-03-01T00:00:00.000000000"


def test_booleans() -> None:
    b, bad = parse_booleans(pa.array(["-1", "0", "1", "False", "TRUE", "x", None]))
    assert [None if x is pd.NA else x for x in b.tolist()] == [None, False, True, False, True, None, None]
    assert bad.tolist() == [False, False, False, False, False, True, False]


def test_enum_labels_are_mapped_to_codes() -> None:
    c = convert_column(
        pa.array(["Ja", "nei", "3", "Velg verdi", "Kanskje"]), CB.variable("plan_beh"), CB.missing_labels
    )
    assert [None if x is pd.NA else x for x in c.values.tolist()] == [2, 1, 3, None, None]
    assert c.bad.tolist() == [False, False, False, False, True]


# -- properties ------------------------------------------------------------------------------------------------
FIELD = st.one_of(
    st.sampled_from(
        [
            "",
            "1",
            "2",
            "0",
            "-1",
            "99",
            "p1",
            "c1",
            "01.03.2021",
            "31.02.2021",
            "2,5",
            "Velg verdi",
            '"a;b"',
            '"x\ny"',
            '"',
            "True",
            "æøå",
        ]
    ),
    st.text(max_size=6),
)
COLS = [v.name for v in CB.form_variables("Målepunkt")]


@st.composite
def mrs_like(draw: st.DrawFn) -> bytes:
    """Bytes that look like an MRS dump: a (mostly) valid header, then rows of plausible and random fields."""
    cols = draw(st.lists(st.sampled_from(COLS + ["x", ""]), min_size=1, max_size=14))
    if draw(st.booleans()):
        cols = COLS
    rows = draw(st.lists(st.lists(FIELD, min_size=0, max_size=len(cols) + 2), max_size=6))
    sep = draw(st.sampled_from([";", ",", "\t"]))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = sep.join(cols) + ";" + eol + eol.join(sep.join(r) + ";" for r in rows)
    enc = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    data = text.encode(enc, errors="replace")
    if draw(st.booleans()) and data:
        cut = draw(st.integers(0, len(data)))
        data = data[:cut]
    return data


def _read_folder(data: bytes, allow: bool) -> object:
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / MP).write_bytes(data)
        try:
            return read_extract(d, allow_cp1252=allow)
        except kr.ExtractError as exc:
            assert str(exc).strip()
            return exc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300), allow=st.booleans())
def test_any_bytes_give_a_table_or_an_extract_error(data: bytes, allow: bool) -> None:
    try:
        raw = parse_csv(data, "f.csv", allow_cp1252=allow)
    except kr.ExtractError as exc:
        assert str(exc).startswith("f.csv")
        return
    assert raw.n_read == raw.table.num_rows + len(raw.bad_rows) + len(raw.damaged)
    assert len(raw.lines) == raw.table.num_rows and (np.diff(raw.lines) > 0).all()
    body = data.removeprefix(b"\xef\xbb\xbf")
    n = raw.line_accounting()  # raises when header + blank + continued + rows != lines
    assert n["lines"] == body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
    rejected = [b[0] for b in raw.bad_rows] + [d[0] for d in raw.damaged]
    assert len(set(rejected)) == len(rejected) and not set(rejected) & set(raw.lines.tolist())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(mrs_like(), st.binary(max_size=200)), allow=st.booleans())
def test_read_extract_on_any_bytes_gives_registry_or_extract_error(data: bytes, allow: bool) -> None:
    out = _read_folder(data, allow)
    if isinstance(out, kr.Registry):
        rows = out.validation.rows
        assert (rows["read"] == rows["accepted"] + rows["rejected"]).all()
        assert rows["accepted"].sum() == len(out.registrations)
        t = out.validation.table
        id_values = t.loc[t["column"].isin(["PasientGUID", "ForlopsID"]), "value"].dropna()
        assert set(id_values) <= {"<id>"}  # never an identifier in a finding


@settings(max_examples=200)
@given(
    years=st.lists(st.integers(1000, 9999), min_size=1, max_size=6),
    day=st.integers(1, 28),
    month=st.integers(1, 12),
)
def test_dd_mm_yyyy_dates_are_exact_or_bad_never_wrapped(years: list[int], day: int, month: int) -> None:
    # a column of well-formed dd.mm.YYYY texts (the fast path): each is read as that date or, when its year is
    # outside 1800-2200, marked bad; never another date
    texts = [f"{day:02d}.{month:02d}.{y}" for y in years]
    conv = convert_column(pa.array(texts), CB.variable("dato_mp_beh"), CB.missing_labels)
    out_of_range = np.array([not 1800 <= y <= 2200 for y in years])
    assert conv.bad.tolist() == out_of_range.tolist()
    values = pd.DatetimeIndex(conv.values)
    for y, v, bad in zip(years, values, out_of_range):
        assert pd.isna(v) if bad else v == pd.Timestamp(y, month, day)


@settings(max_examples=200)
@given(
    ints=st.lists(st.integers(-(2**70), 2**70), min_size=1, max_size=5),
    with_text=st.booleans(),
)
def test_integer_texts_are_exact_or_bad_never_rounded_or_wrapped(ints: list[int], with_text: bool) -> None:
    # with a text in the column the slow (float) path runs; without, the int64 cast kernel
    texts = [str(n) for n in ints] + (["x"] if with_text else [])
    conv = convert_column(pa.array(texts), CB.variable("UnitId"), CB.missing_labels)
    for n, value, bad in zip(ints, conv.values.tolist(), conv.bad.tolist()):
        if -(2**63) <= n < 2**63:
            assert not bad and value == n
        else:
            assert bad and pd.isna(value)


@given(st.integers(1, 999), st.lists(st.integers(0, 999), min_size=1, max_size=3))
def test_thousands_separated_numbers_are_never_read_as_decimals(head: int, groups: list[int]) -> None:
    text = str(head) + "".join(f".{g:03d}" for g in groups)  # 1.000, 12.500.250 ...
    for var in ("dager_rus_30", "psykiske_plager"):
        conv = convert_column(pa.array([text]), CB.variable(var), CB.missing_labels)
        assert conv.bad.tolist() == [True] and pd.isna(conv.values[0])
