"""Norwegian identity numbers (fødselsnummer and its relatives): validation, parsing and test-number generation.

An identity number has 11 digits ``DDMMYY III K1 K2``: birth date, an individual number and two mod-11 control
digits (Skatteetaten). Kinds recognised by :func:`national_id`:

==================  ===========================================================================================
kind                rule
==================  ===========================================================================================
``fnr``             fødselsnummer: a real date, century from the individual number
``dnr``             D-number (D-nummer, foreign nationals): day + 40
``hnr``             H-number (hjelpenummer, health services): month + 40
``nav_synthetic``   NAV/Dolly synthetic test number: month + 40 as well (only with ``nav_synthetic=True``)
``tenor``           Skatteetaten's Tenor synthetic test number: month + 80 (day may also be + 40)
``fhnr``            FH-number (felles hjelpenummer): first digit 8 or 9, no birth date, no sex
``fnr_2032``        ``dnr_2032`` ... a number valid only under the rules from 2032 (k1 remainder 1, 2 or 3)
==================  ===========================================================================================

**H-number / NAV collision.** Both add 40 to the month, so the digits cannot tell them apart. Production data
holds H-numbers, never NAV test numbers, so month + 40 is read as ``hnr`` by default; pass
``nav_synthetic=True`` when reading data from NAV's test environment (Dolly) to read them as ``nav_synthetic``.

**Rules from 2032.** Control digit k1 may make the weighted mod-11 sum leave a remainder of 0, 1, 2 or 3 (not only
0); sex is no longer encoded and the century no longer follows from the individual number. Numbers that pass the
classic check keep their classic reading (existing numbers stay valid; a classic number dated 2032 or later, like
the published example ``02013299997``, has no sex). Numbers that pass only the 2032 check get kind ``<kind>_2032``,
their day and month are checked (29 February allowed), and ``birth_date`` and ``sex`` are left empty because the
century cannot be known.

This module imports nothing from the library except :mod:`kvarus_research.errors`, so the synthetic-data module can
use :func:`make_national_ids`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.errors import PrivacyError

#: Weights of control digit 1 over digits 1-9 (then k1 itself with weight 1).
W1 = np.array([3, 7, 6, 1, 8, 9, 4, 5, 2, 1], dtype=np.int64)
#: Weights of control digit 2 over digits 1-10 (then k2 itself with weight 1).
W2 = np.array([5, 4, 3, 2, 7, 6, 5, 4, 3, 2, 1], dtype=np.int64)
KINDS: tuple[str, ...] = ("fnr", "dnr", "hnr", "nav_synthetic", "tenor", "fhnr")
COLUMNS: tuple[str, ...] = ("valid", "kind", "birth_date", "sex", "reason")


def _as_strings(values: Any) -> pd.Series:
    """Values as stripped strings; integers are zero-padded to 11 digits (a numeric column loses the leading 0)."""
    s = (
        values
        if isinstance(values, pd.Series)
        else pd.Series([values] if np.ndim(values) == 0 else list(values))
    )
    if pd.api.types.is_integer_dtype(s.dtype):
        return s.astype("Int64").astype("string").str.zfill(11)
    out = s.astype("string").str.strip().str.replace(" ", "", regex=False)
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) not in ("string", "empty"):
        is_int = s.map(lambda v: isinstance(v, int | np.integer) and not isinstance(v, bool)).to_numpy(bool)
        out[is_int] = out[is_int].str.zfill(11)
    return out


def _digits(strings: np.ndarray) -> np.ndarray:
    """An (n, 11) uint8 array of digits from n strings of length 11 (non-digits give values > 9)."""
    if len(strings) == 0:
        return np.zeros((0, 11), dtype=np.int64)
    buf = "".join(strings).encode("ascii", errors="replace")
    return (np.frombuffer(buf, dtype=np.uint8).reshape(-1, 11).astype(np.int64)) - 48


def _century(year2: np.ndarray, individual: np.ndarray) -> np.ndarray:
    """Four-digit year from the two-digit year and the individual number; -1 where no century applies."""
    year = np.full(year2.shape, -1, dtype=np.int64)
    year = np.where(individual < 500, 1900 + year2, year)
    year = np.where((individual >= 500) & (individual < 750) & (year2 >= 54), 1800 + year2, year)
    year = np.where((individual >= 500) & (year2 < 40), 2000 + year2, year)
    year = np.where((individual >= 900) & (year2 >= 40), 1900 + year2, year)
    return year


def _dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(datetime64[D] array, ok mask): ok where 1 <= month <= 12 and the day exists in that month and year."""
    ok = (month >= 1) & (month <= 12) & (day >= 1) & (year > 0)
    m0 = np.where(ok, (year - 1970) * 12 + month - 1, 0).astype("datetime64[M]")
    first = m0.astype("datetime64[D]")
    days_in_month = ((m0 + 1).astype("datetime64[D]") - first).astype(np.int64)
    ok &= day <= days_in_month
    return first + np.where(ok, day - 1, 0).astype("timedelta64[D]"), ok


def national_id(values: Any, *, nav_synthetic: bool = False) -> pd.DataFrame:
    """Validate and parse Norwegian identity numbers.

    Parameters
    ----------
    values : str, int or Series (or any sequence)
        Identity numbers. Spaces are ignored; integers are zero-padded to 11 digits.
    nav_synthetic : bool
        Read month + 40 as NAV/Dolly synthetic test numbers instead of H-numbers (see the module docstring).

    Returns
    -------
    DataFrame
        One row per value (same index as a Series input): ``valid`` (bool), ``kind`` (see the module docstring;
        empty when invalid), ``birth_date`` (Timestamp where encoded), ``sex`` (``"male"``/``"female"`` where
        encoded) and ``reason`` (why the value is invalid; empty when valid). The value itself never appears.

    Examples
    --------
    >>> r = national_id(["02013299997", "41018036736", "31028012345", "123"])
    >>> r[["valid", "kind", "sex"]].astype(str).values.tolist()
    [['True', 'fnr', '<NA>'], ['True', 'dnr', 'male'], ['False', '<NA>', '<NA>'], ['False', '<NA>', '<NA>']]
    >>> str(r.loc[0, "birth_date"].date()), r.loc[3, "reason"]
    ('2032-01-02', 'not 11 digits')
    """
    s = _as_strings(values)
    n = len(s)
    index = s.index
    valid = np.zeros(n, dtype=bool)
    kind = np.full(n, None, dtype=object)
    reason = np.full(n, None, dtype=object)
    birth = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    sex = np.full(n, None, dtype=object)

    missing = s.isna().to_numpy()
    reason[missing] = "missing"
    filled = s.fillna("")
    shape_ok = (filled.str.len() == 11).to_numpy() & ~missing
    reason[~shape_ok & ~missing] = "not 11 digits"
    pos = np.flatnonzero(shape_ok)
    d = _digits(filled.to_numpy(dtype=object)[pos])
    digit_ok = ((d >= 0) & (d <= 9)).all(axis=1)
    reason[pos[~digit_ok]] = "not 11 digits"
    pos, d = pos[digit_ok], d[digit_ok]

    r1 = (d[:, :10] @ W1) % 11
    r2 = (d @ W2) % 11
    classic = r1 == 0
    new_rule = (r1 >= 1) & (r1 <= 3)
    ctrl_ok = (classic | new_rule) & (r2 == 0)
    reason[pos[~(classic | new_rule)]] = "control digit 1 does not match"
    reason[pos[(classic | new_rule) & (r2 != 0)]] = "control digit 2 does not match"
    pos, d, classic = pos[ctrl_ok], d[ctrl_ok], classic[ctrl_ok]

    day = d[:, 0] * 10 + d[:, 1]
    month = d[:, 2] * 10 + d[:, 3]
    year2 = d[:, 4] * 10 + d[:, 5]
    individual = d[:, 6] * 100 + d[:, 7] * 10 + d[:, 8]

    fh = d[:, 0] >= 8
    is_d = (day > 40) & ~fh
    day_real = np.where(is_d, day - 40, day)
    k = np.full(len(pos), "fnr", dtype=object)
    k[is_d] = "dnr"
    is_h = (month > 40) & (month <= 52)
    is_t = (month > 80) & (month <= 92)
    month_real = np.where(is_h, month - 40, np.where(is_t, month - 80, month))
    k[is_h] = "nav_synthetic" if nav_synthetic else "hnr"
    k[is_t] = "tenor"
    k[fh] = "fhnr"

    year = _century(year2, individual)
    dates, date_ok = _dates(year, month_real, day_real)
    # 2032-rule numbers: no century; check day and month against a leap year.
    _, date_ok_any_year = _dates(np.full(len(pos), 2000), month_real, day_real)
    no_century = classic & (year < 0) & ~fh
    good_date = np.where(classic, date_ok, date_ok_any_year) | fh
    bad = ~good_date & ~no_century
    reason[pos[no_century]] = "no century for this individual number and year"
    reason[pos[bad]] = "impossible date"
    ok = good_date & ~no_century
    is_2032 = (~classic | (dates >= np.datetime64("2032-01-01"))) & ~fh
    k = np.where(is_2032 & ~classic, k + "_2032", k)

    valid[pos[ok]] = True
    kind[pos[ok]] = k[ok]
    has_date = ok & classic & ~fh
    birth[pos[has_date]] = dates[has_date]
    has_sex = has_date & ~is_2032
    sex[pos[has_sex]] = np.where(d[has_sex, 8] % 2 == 1, "male", "female")

    return pd.DataFrame(
        {
            "valid": valid,
            "kind": pd.array(kind, dtype="string"),
            "birth_date": birth,
            "sex": pd.array(sex, dtype="string"),
            "reason": pd.array(reason, dtype="string"),
        },
        index=index,
    )


def is_valid_national_id(values: Any, *, nav_synthetic: bool = False) -> np.ndarray:
    """Boolean array: which values are valid identity numbers of any kind.

    Examples
    --------
    >>> is_valid_national_id(["02013299997", "02013299998"]).tolist()
    [True, False]
    """
    return national_id(values, nav_synthetic=nav_synthetic)["valid"].to_numpy()


def _sex_is_male(sex: Any, n: int) -> np.ndarray:
    s = pd.Series(sex if np.ndim(sex) else [sex] * n)
    text = s.astype(str).str.strip().str.lower()
    male = text.isin(["male", "m", "mann", "1", "1.0"])
    female = text.isin(["female", "f", "k", "kvinne", "2", "2.0"])
    if not (male | female).all():
        raise PrivacyError(
            f"make_national_ids: sex must be 'male'/'female' or codebook codes 1 (Mann) / 2 (Kvinne); "
            f"{int((~(male | female)).sum())} value(s) are neither"
        )
    return male.to_numpy()


def make_national_ids(
    birth_dates: Sequence[Any] | pd.Series,
    sex: Sequence[Any] | pd.Series | str,
    kind: str = "tenor",
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Generate valid identity numbers (classic rules) for given birth dates and sexes; vectorised.

    Meant for synthetic data: the default ``kind="tenor"`` (month + 80) can never be a real person's number.

    Parameters
    ----------
    birth_dates : sequence of dates
        Birth dates between 1854-01-01 and 2039-12-31 (the range the classic century rules can encode).
    sex : sequence or str
        ``"male"``/``"female"`` or codebook ``PatientGender`` codes 1/2; one value or one per birth date.
    kind : {"tenor", "fnr", "dnr", "hnr", "nav_synthetic"}
    rng : numpy Generator or seed

    Returns
    -------
    ndarray of str
        11-digit numbers; each validates with :func:`national_id` as ``kind`` with the given date and sex.

    Examples
    --------
    >>> ids = make_national_ids(["1980-05-17", "2001-12-31"], ["female", "male"], rng=1)
    >>> national_id(ids)[["valid", "kind", "sex"]].astype(str).values.tolist()
    [['True', 'tenor', 'female'], ['True', 'tenor', 'male']]
    """
    if kind not in ("tenor", "fnr", "dnr", "hnr", "nav_synthetic"):
        raise PrivacyError(
            f"make_national_ids: kind {kind!r} is not one of tenor, fnr, dnr, hnr, nav_synthetic"
        )
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    dates = pd.to_datetime(pd.Series(birth_dates)).reset_index(drop=True)
    n = len(dates)
    if dates.isna().any():
        raise PrivacyError(f"make_national_ids: {int(dates.isna().sum())} birth date(s) are missing")
    year = dates.dt.year.to_numpy(np.int64)
    if ((year < 1854) | (year > 2039)).any():
        raise PrivacyError("make_national_ids: birth years must lie in 1854-2039 (the classic century rules)")
    male = _sex_is_male(sex, n)
    # Individual-number range per century: 1900s 000-499, 2000-2039 500-999, 1854-1899 500-749.
    lo = np.where(year >= 2000, 500, np.where(year >= 1900, 0, 500))
    hi = np.where(year >= 2000, 999, np.where(year >= 1900, 499, 749))
    day = dates.dt.day.to_numpy(np.int64) + (40 if kind == "dnr" else 0)
    month = dates.dt.month.to_numpy(np.int64) + {"hnr": 40, "nav_synthetic": 40, "tenor": 80}.get(kind, 0)
    head = np.stack([day // 10, day % 10, month // 10, month % 10, (year % 100) // 10, year % 10], axis=1)
    out = np.zeros((n, 11), dtype=np.int64)
    out[:, :6] = head
    todo = np.arange(n)
    while len(todo):
        ind = rng.integers(lo[todo] // 2, hi[todo] // 2 + 1) * 2 + male[todo]  # odd = male
        ind = np.minimum(ind, hi[todo])
        out[todo, 6], out[todo, 7], out[todo, 8] = ind // 100, (ind // 10) % 10, ind % 10
        k1 = (11 - (out[todo, :9] @ W1[:9]) % 11) % 11
        out[todo, 9] = k1
        k2 = (11 - (out[todo, :10] @ W2[:10]) % 11) % 11
        out[todo, 10] = k2
        todo = todo[(k1 == 10) | (k2 == 10)]
    return np.frombuffer((out.astype(np.uint8) + 48).tobytes(), dtype="S11").astype(str)
