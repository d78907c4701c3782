"""Registration pseudonyms: the course pseudonym + ``-`` + the registration's 4-digit position in its course.

The position orders a course's registrations by date, then kind (baseline, measurement, ending, follow-up), then
their order in the extract, so the same registration keeps its pseudonym in every delivery with the same key.
Built without Python strings (registrations run to millions): one packed sort key, and the names laid out in
one byte buffer for an Arrow string array.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kvarus_research.errors import PrivacyError
from kvarus_research.registry.constants import KIND_ORDER


def _registration_order(codes: np.ndarray, dates: np.ndarray | None, kinds: np.ndarray | None) -> np.ndarray:
    """The registrations' order by course code, then day of the date (missing first), then kind, then row.

    One int64 key, built in place (registrations run to millions of rows): bits 24 and up hold the course code
    + 1, bits 3-23 the day counted from the first date + 1 (0 = no date), bits 0-2 the kind's rank. The kind
    only decides between registrations of one course on one day, so it is looked up for those rows only, and
    the few of them are sorted again (the same order as with the kind in every key: it never outweighs a day).
    """
    key = np.add(codes, 1, dtype=np.int64)
    key <<= 24
    if dates is not None:
        per_day = int(np.timedelta64(1, "D") // np.timedelta64(1, np.datetime_data(dates.dtype)[0]))
        ticks = dates.view(np.int64)
        known = ticks != np.iinfo(np.int64).min  # NaT
        days = np.floor_divide(ticks, per_day)
        if known.any():
            days -= days[known].min() - 1
        np.putmask(days, ~known, 0)
        np.clip(days, 0, 2**20, out=days)
        days <<= 3
        key += days
        del days, known
    order = np.argsort(key, kind="stable")  # stable: ties keep the original order
    if kinds is not None and len(key) > 1:
        ordered = key[order]
        tie = np.flatnonzero(ordered[1:] == ordered[:-1])
        del ordered
        if len(tie):
            rows = np.unique(np.r_[order[tie], order[tie + 1]])
            kcodes, kuniq = pd.factorize(kinds[rows])
            rank = np.array([KIND_ORDER.get(k, 7) for k in kuniq] + [7], dtype=np.int64)
            key[rows] += rank[kcodes]
            order = np.argsort(key, kind="stable")
    return order


def _registration_pseudonyms(
    codes: np.ndarray,
    names: np.ndarray,
    dates: np.ndarray | None = None,
    kinds: np.ndarray | None = None,
) -> pd.arrays.ArrowStringArray:
    """Course pseudonym + '-' + order within the course by (date, kind, original order), one per registration.

    ``codes`` index ``names`` (the course pseudonyms; -1 = no course), ``dates`` are datetime64 values and
    ``kinds`` the registration kinds (plain arrays: safe to use outside the DataFrame).
    """
    codes = np.asarray(codes, dtype=np.int64)
    n = len(codes)
    order = _registration_order(codes, dates, kinds)
    # a registration's rank is its position in the sorted order minus the position its course's run starts at
    ordered = codes[order]
    change = np.empty(n, dtype=bool)
    if n:
        change[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=change[1:])
    del ordered
    run_start = np.arange(n, dtype=np.int64)
    run_start *= change
    np.maximum.accumulate(run_start, out=run_start)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1, dtype=np.int64) - run_start
    del order, run_start
    return _join_names(names, codes, rank)


def _join_names(names: np.ndarray, codes: np.ndarray, rank: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``names[codes] + "-" + rank`` as an Arrow string array (null where ``codes < 0``), built without Python
    strings: names of one width and ranks zero-padded to one width are laid out in one byte buffer."""
    n = len(codes)
    valid = codes >= 0
    digits = 4  # fixed, so the same registration keeps the same pseudonym in every delivery
    if names.dtype.kind == "S":  # fixed-width bytes, as kept by keyed_pseudonyms: all of one width
        fixed = names
        uniform = bool(len(names))
    else:
        fixed = np.array(names, dtype="S") if len(names) else np.zeros(0, dtype="S1")
        uniform = (
            len(names) and len({len(x) for x in names[:1000]}) == 1 and fixed.dtype.itemsize == len(names[0])
        )
    if uniform and (not n or rank.max() < 10**digits):
        width = fixed.dtype.itemsize
        buf = np.empty((n, width + 1 + digits), dtype=np.uint8)
        if len(names):  # gather whole fixed-width names straight into the buffer (code -1 clips to 0: null)
            np.take(fixed.view(np.uint8).reshape(-1, width), codes, axis=0, out=buf[:, :width], mode="clip")
        else:
            buf[:, :width] = 0
        buf[:, width] = ord("-")
        r = rank.astype(np.uint16)  # rank < 10**4 here: 16-bit division is cheaper
        for i in range(digits - 1, -1, -1):
            r, rem = np.divmod(r, np.uint16(10))
            buf[:, width + 1 + i] = rem + 48
        row = width + 1 + digits
        offsets = pa.py_buffer(np.arange(0, (n + 1) * row, row, dtype=np.int32).tobytes())
        validity = pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
        arr = pa.Array.from_buffers(pa.string(), n, [validity, offsets, pa.py_buffer(buf)])
        return pd.arrays.ArrowStringArray(arr)
    if names.dtype.kind == "S":
        names = names.astype(str).astype(object)
    dictionary = pa.array(np.asarray(names, dtype=object), pa.string())
    prefix = pa.DictionaryArray.from_arrays(pa.array(codes, mask=~valid), dictionary).cast(pa.string())
    ranks = pc.utf8_lpad(pc.cast(pa.array(rank), pa.string()), digits, "0")
    joined = pc.binary_join_element_wise(prefix, ranks, "-")
    return pd.arrays.ArrowStringArray(joined)


def submit_registration_ids(
    pool: ThreadPoolExecutor, regs: pd.DataFrame | None, codes: dict[tuple[str, str], Any]
) -> Future | None:
    """Start building the registration pseudonyms in ``pool`` (None when the registrations have no id).

    The dates and kinds are taken out of the DataFrame here, so the worker never reads a table that the caller
    goes on changing. ``codes[("registrations", "course_id")]`` holds the registrations' course codes and the
    course pseudonyms they index.

    Examples
    --------
    >>> regs = pd.DataFrame({"registration_id": [7, 8], "date": pd.to_datetime(["2021-03-01", "2021-01-01"]),
    ...                      "kind": ["measurement", "baseline"]})
    >>> codes = {("registrations", "course_id"): (np.array([0, 0]), np.array([b"Cab"]))}
    >>> with ThreadPoolExecutor(1) as pool:
    ...     list(submit_registration_ids(pool, regs, codes).result())
    ['Cab-0002', 'Cab-0001']
    """
    if regs is None or "registration_id" not in regs.columns:
        return None
    if ("registrations", "course_id") not in codes:
        raise PrivacyError(
            "registrations have a registration_id but no course_id to derive its pseudonym from"
        )
    dates = None
    if "date" in regs.columns:
        dates = regs["date"].to_numpy()
        if dates.dtype.kind != "M":
            dates = pd.to_datetime(regs["date"]).to_numpy()
    kinds = regs["kind"].to_numpy() if "kind" in regs.columns else None
    course_codes, course_names = codes[("registrations", "course_id")]
    return pool.submit(_registration_pseudonyms, course_codes, course_names, dates, kinds)
