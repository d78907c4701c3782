"""Typing the text fields of an MRS dump by the codebook, reporting every value that does not fit.

Each column becomes the pandas dtype of its codebook type (:func:`kvarus_research.codebook.schema.pandas_dtype`).
Empty fields, the codebook's ``missing_labels`` (``---``, ``Velg verdi`` ...) and each variable's
``missing_codes`` become missing (NA) without a finding: that is how MRS writes "no answer". Values that cannot be
read as their type (text in a number, an impossible date, an unknown boolean) become NA *with* a finding.

Parsing uses pyarrow compute kernels on whole columns (fast path) and falls back to a per-value check only to
locate the values that fail.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kvarus_research.codebook.model import Variable

NUMBER_RE = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
#: A '.' between groups of three digits: a Norwegian thousands separator (1.000 = 1000), never read as 1.
THOUSANDS_RE = r"^[+-]?[1-9]\d{0,2}(\.\d{3})+$"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INTEGER_EXPECTED = "a whole number (no thousands separator, within the 64-bit integer range)"
DMY_RE = (
    r"^(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4})(?:[ T](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?$"
)
ISO_RE = r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?:[ T](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?$"
TRUE_TEXT = ("1", "true", "sann", "ja", "yes")
FALSE_TEXT = ("0", "false", "usann", "nei", "no")
BOOL_MISSING = ("-1",)
#: Years a date may have: outside them a date is a finding with its text as written (a typo such as 2610 for
#: 2016 must not wrap around the datetime64[ns] range, which ends in 2262, into an invented date).
YEAR_MIN, YEAR_MAX = 1800, 2200
DATE_EXPECTED = f"a date dd.mm.YYYY (or dd.mm.YYYY HH:MM:SS) with a year from {YEAR_MIN} to {YEAR_MAX}"


class Converted:
    """One converted column: the typed values and the rows (positions) whose text did not fit the type."""

    __slots__ = ("values", "bad", "rule", "expected")

    def __init__(
        self, values: pd.api.extensions.ExtensionArray | np.ndarray, bad: np.ndarray, rule: str, expected: str
    ) -> None:
        self.values, self.bad, self.rule, self.expected = values, bad, rule, expected


def clean_text(arr: pa.ChunkedArray | pa.Array, missing_labels: tuple[str, ...]) -> pa.Array:
    """Trim whitespace and turn empty fields and missing labels into nulls."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], type=pa.string())
    trimmed = pc.utf8_trim_whitespace(arr)
    missing = pc.is_in(trimmed, value_set=pa.array(["", *missing_labels], type=pa.string()))
    return pc.if_else(missing, pa.scalar(None, type=pa.string()), trimmed)


def _is_bad(clean: pa.Array, parsed_valid: np.ndarray) -> np.ndarray:
    """Positions with text that did not parse."""
    has_text = np.asarray(clean.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return has_text & ~parsed_valid


def to_text(clean: pa.Array) -> pd.api.extensions.ExtensionArray:
    """Text as a pandas ``string`` array (pyarrow storage)."""
    return pd.array(
        pd.arrays.ArrowStringArray(clean.cast(pa.large_string())), dtype=pd.StringDtype("pyarrow")
    )


def parse_numbers(clean: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Numbers with a decimal point or comma; returns floats (NaN when missing or bad) and the bad mask.

    Examples
    --------
    >>> v, bad = parse_numbers(pa.array(["3", "2,5", "x", None]))
    >>> v.tolist()[:2], bad.tolist()
    ([3.0, 2.5], [False, False, True, False])
    """
    s = pc.replace_substring(clean, ",", ".")
    try:
        values = pc.cast(s, pa.float64()).to_numpy(zero_copy_only=False)
        if not np.isfinite(values[~np.isnan(values)]).all():
            raise pa.ArrowInvalid("non-finite")
    except pa.ArrowInvalid:
        ok = pc.fill_null(pc.match_substring_regex(s, NUMBER_RE), False)
        values = pc.cast(pc.if_else(ok, s, pa.scalar(None, type=pa.string())), pa.float64())
        values = values.to_numpy(zero_copy_only=False)
    values = np.array(values, dtype=np.float64)  # a writable copy
    return values, _is_bad(clean, ~np.isnan(values))


def _int_array(values: np.ndarray) -> pd.arrays.IntegerArray:
    mask = np.isnan(values)
    return pd.arrays.IntegerArray(np.where(mask, 0, values).astype(np.int64), mask)


def _fast_integers(arr: pa.Array, v: Variable) -> Converted | None:
    """Every present value a plain integer: one cast kernel, missing codes masked; else None."""
    try:
        ints = pc.cast(arr, pa.int64())
    except pa.ArrowInvalid:
        return None
    mask = np.asarray(ints.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if v.missing_codes:
        codes = pa.array([int(c) for c in v.missing_codes if float(c).is_integer()], type=pa.int64())
        mask |= np.asarray(
            pc.fill_null(pc.is_in(ints, value_set=codes), False).to_numpy(zero_copy_only=False)
        )
    values = np.asarray(ints.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    expected = INTEGER_EXPECTED if v.type == "integer" else "a code"
    return Converted(
        pd.arrays.IntegerArray(values, mask), np.zeros(len(arr), dtype=bool), "not_a_number", expected
    )


def convert_number(arr: pa.Array, v: Variable, missing_labels: tuple[str, ...] = ()) -> Converted:
    """An integer, enum or float column; missing codes become NA; enum labels are mapped to their codes.

    ``arr`` holds the raw text (empty fields already null); a fast path casts whole integer columns at once.
    """
    if v.type != "float":
        fast = _fast_integers(arr, v)
        if fast is not None:
            return fast
    clean = clean_text(arr, missing_labels)
    values, bad = parse_numbers(clean)
    if v.type == "enum" and bad.any():
        labels = {str(lab).strip().lower(): c for c, d in v.codes.items() for lab in d.values()}
        texts = clean.to_pylist()
        for i in np.flatnonzero(bad):
            code = labels.get(str(texts[i]).lower())
            if code is not None:
                values[i], bad[i] = float(code), False
    if v.missing_codes:
        values[np.isin(values, np.asarray(v.missing_codes, dtype=np.float64))] = np.nan
    # "1.000" is a thousand to a Norwegian, 1.0 to a machine: a '.' between groups of three digits is refused
    thousands = np.asarray(
        pc.fill_null(pc.match_substring_regex(clean, THOUSANDS_RE), False).to_numpy(zero_copy_only=False),
        dtype=bool,
    )
    if v.type == "float":
        values[thousands] = np.nan
        return Converted(
            pd.arrays.FloatingArray(np.nan_to_num(values), np.isnan(values)),
            bad | thousands,
            "not_a_number",
            "a number (decimal comma allowed; no thousands separator)",
        )
    frac = ~np.isnan(values) & ((values != np.round(values)) | thousands)
    exact = np.zeros(len(values), dtype=np.int64)
    big = np.flatnonzero(~np.isnan(values) & ~frac & (np.abs(np.nan_to_num(values)) >= 2.0**53))
    texts = clean.take(pa.array(big, type=pa.int64())).to_pylist() if len(big) else []
    for i, text in zip(big, texts):  # beyond 2**53 a float is not exact: the digits themselves, or a finding
        n = int(text) if re.fullmatch(r"[+-]?\d+", text) else None
        if n is not None and INT64_MIN <= n <= INT64_MAX:
            exact[i], values[i] = n, 0.0
        else:
            frac[i] = True
    values[frac] = np.nan
    ints = _int_array(values)
    if len(big):
        ints = pd.arrays.IntegerArray(np.where(exact != 0, exact, ints._data), ints._mask)
    expected = INTEGER_EXPECTED if v.type == "integer" else "a code"
    return Converted(ints, bad | frac, "not_a_number", expected if not frac.any() else INTEGER_EXPECTED)


def _components(clean: pa.Array, pattern: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    st = pc.extract_regex(clean, pattern)
    ok = np.asarray(st.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    parts = {}
    for f in ("y", "m", "d", "H", "M", "S"):
        col = pc.fill_null(pc.struct_field(st, f), "0")
        col = pc.if_else(pc.equal(col, ""), "0", col)
        parts[f] = np.asarray(pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False))
    return ok, parts


def _fast_dates(clean: pa.Array) -> np.ndarray | None:
    """All present values exactly ``dd.mm.YYYY`` and real dates: parsed in one kernel call; else None.

    Arrow's strptime rolls impossible dates over (31.02 -> 03.03), so the parsed day and month are compared
    with the digits of the text; the years are checked against ``YEAR_MIN``-``YEAR_MAX`` *before* the seconds
    are cast to nanoseconds (a year of 2262 or later would wrap around silently).
    """
    present = clean.drop_null()
    if len(present) == 0:
        return None
    lengths = pc.utf8_length(present)
    if pc.min(lengths).as_py() != 10 or pc.max(lengths).as_py() != 10:
        return None
    try:
        ts = pc.strptime(clean, format="%d.%m.%Y", unit="s")
    except pa.ArrowInvalid:
        return None
    day = pc.cast(pc.utf8_slice_codeunits(clean, 0, 2), pa.int64())
    month = pc.cast(pc.utf8_slice_codeunits(clean, 3, 5), pa.int64())
    same = pc.and_(pc.equal(pc.day(ts), day), pc.equal(pc.month(ts), month))
    if not pc.all(same).as_py():
        return None
    year = pc.year(ts)
    if pc.min(year).as_py() < YEAR_MIN or pc.max(year).as_py() > YEAR_MAX:
        return None
    out = ts.to_numpy(zero_copy_only=False)
    return np.asarray(out, dtype="datetime64[ns]")


def parse_dates(clean: pa.Array, *, keep_time: bool) -> tuple[np.ndarray, np.ndarray]:
    """``dd.mm.YYYY`` or ``dd.mm.YYYY HH:MM:SS`` (also ISO ``YYYY-MM-DD``); impossible dates are bad.

    Returns datetime64[ns] values (NaT when missing or bad) and the bad mask.

    Examples
    --------
    >>> d, bad = parse_dates(pa.array(["01.03.2021", "31.02.2021", "2021-03-02 10:00:00", None]),
    ...                      keep_time=False)
    >>> [str(x)[:10] for x in d], bad.tolist()
    (['2021-03-01', 'NaT', '2021-03-02', 'NaT'], [False, True, False, False])
    """
    ok1, p1 = _components(clean, DMY_RE)
    ok2, p2 = _components(clean, ISO_RE)
    ok = ok1 | ok2
    y, m, d, hh, mm, ss = (np.where(ok1, p1[k], p2[k]) for k in ("y", "m", "d", "H", "M", "S"))
    y, m, d = np.where(ok, y, 1970), np.where(ok, m, 1), np.where(ok, d, 1)
    month_start = (y - 1970) * 12 + (m - 1)
    valid = ok & (m >= 1) & (m <= 12) & (d >= 1) & (y >= YEAR_MIN) & (y <= YEAR_MAX)
    month_start = np.where(valid, month_start, 0)
    first = month_start.astype("datetime64[M]").astype("datetime64[D]")
    days_in_month = ((month_start + 1).astype("datetime64[M]").astype("datetime64[D]") - first).astype(
        np.int64
    )
    valid &= d <= days_in_month
    valid &= (hh < 24) & (mm < 60) & (ss < 60)
    out = (first + (np.where(valid, d, 1) - 1).astype("timedelta64[D]")).astype("datetime64[ns]")
    if keep_time:
        out = out + (hh * 3600 + mm * 60 + ss).astype("timedelta64[s]").astype("timedelta64[ns]")
    out = np.where(valid, out, np.datetime64("NaT", "ns"))
    return out, _is_bad(clean, valid)


def parse_booleans(clean: pa.Array) -> tuple[pd.arrays.BooleanArray, np.ndarray]:
    """``1``/``0``/``-1`` (−1 = missing) or ``True``/``False`` (also Ja/Nei); returns the values and the bad mask.

    Examples
    --------
    >>> b, bad = parse_booleans(pa.array(["1", "False", "-1", "kanskje", None]))
    >>> b.tolist(), bad.tolist()
    ([True, False, <NA>, <NA>, <NA>], [False, False, False, True, False])
    """
    low = pc.utf8_lower(clean)
    is_true = np.asarray(
        pc.fill_null(pc.is_in(low, value_set=pa.array(TRUE_TEXT)), False).to_numpy(zero_copy_only=False)
    )
    is_false = np.asarray(
        pc.fill_null(pc.is_in(low, value_set=pa.array(FALSE_TEXT)), False).to_numpy(zero_copy_only=False)
    )
    is_missing = np.asarray(
        pc.fill_null(pc.is_in(low, value_set=pa.array(BOOL_MISSING)), False).to_numpy(zero_copy_only=False)
    )
    known = is_true | is_false
    return pd.arrays.BooleanArray(is_true, ~known), _is_bad(clean, known | is_missing)


def convert_column(
    arr: pa.ChunkedArray | pa.Array, v: Variable | None, missing_labels: tuple[str, ...]
) -> Converted:
    """Convert one text column by its codebook variable (``None``: keep as text).

    Examples
    --------
    >>> import kvarus_research as kr
    >>> cb = kr.load_codebook()
    >>> c = convert_column(pa.array(["2", "Velg verdi", "0", "sju"]), cb.variable("plan_beh"), cb.missing_labels)
    >>> c.values.tolist(), c.bad.tolist(), c.rule
    ([2, <NA>, <NA>, <NA>], [False, False, False, True], 'not_a_number')
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], type=pa.string())
    if v is not None and v.type in ("integer", "enum", "float"):
        return convert_number(arr, v, missing_labels)
    if v is not None and v.type == "date":
        fast = _fast_dates(arr)
        if fast is not None:
            return Converted(fast, np.zeros(len(arr), dtype=bool), "invalid_date", DATE_EXPECTED)
    clean = clean_text(arr, missing_labels)
    if v is None or v.type in ("id", "text"):
        return Converted(to_text(clean), np.zeros(len(clean), dtype=bool), "", "text")
    if v.type in ("date", "datetime"):
        values, bad = parse_dates(clean, keep_time=v.type == "datetime")
        return Converted(values, bad, "invalid_date", DATE_EXPECTED)
    values, bad = parse_booleans(clean)
    return Converted(values, bad, "invalid_boolean", "a boolean (-1/0/1 or False/True)")
