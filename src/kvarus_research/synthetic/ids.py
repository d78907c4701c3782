"""Identifiers for synthetic data: GUID-like patient ids and Tenor-range synthetic national identity numbers."""

from __future__ import annotations

import numpy as np

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DASH_AFTER = (8, 12, 16, 20)  # hex digits before each dash in 8-4-4-4-12

K1_WEIGHTS = np.array([3, 7, 6, 1, 8, 9, 4, 5, 2])
K2_WEIGHTS = np.array([5, 4, 3, 2, 7, 6, 5, 4, 3, 2])


def guids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random GUID-like strings (version-4 layout, lower-case hex), as a numpy object array.

    Examples
    --------
    >>> g = guids(np.random.default_rng(0), 2)
    >>> [len(x) for x in g], g[0][8], g[0][14]
    ([36, 36], '-', '4')
    """
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2] = raw >> 4
    nibbles[:, 1::2] = raw & 0x0F
    chars = _HEX[nibbles]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    src = 0
    dst = 0
    for stop in (*_DASH_AFTER, 32):
        width = stop - src
        out[:, dst : dst + width] = chars[:, src:stop]
        src, dst = stop, dst + width + 1
    return out.view("S36").ravel().astype(str).astype(object)


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Decimal digits of non-negative integers as an (n, width) array, most significant first."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values.astype(np.int64)[:, None] // powers) % 10


def control_digits(first9: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Control digits k1, k2 of 9-digit stems (DDMMYYIII) as integer arrays; 10 marks an invalid stem.

    k1 = 11 - (sum(w1 * d) mod 11) with w1 = 3,7,6,1,8,9,4,5,2 and k2 = 11 - (sum(w2 * d) mod 11) with
    w2 = 5,4,3,2,7,6,5,4,3,2 over the first ten digits; 11 becomes 0 and 10 makes the number invalid.

    Examples
    --------
    >>> k1, k2 = control_digits(np.array([20132999]))  # stem 020132999 of the published 02013299997
    >>> int(k1[0]), int(k2[0])
    (9, 7)
    """
    d = _digits(np.asarray(first9), 9)
    k1 = (11 - (d @ K1_WEIGHTS) % 11) % 11
    d10 = np.concatenate([d, k1[:, None] % 10], axis=1)
    k2 = (11 - (d10 @ K2_WEIGHTS) % 11) % 11
    bad = (k1 == 10) | (k2 == 10)
    return np.where(bad, 10, k1), np.where(bad, 10, k2)


def tenor_national_ids(rng: np.random.Generator, birth_dates: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Synthetic national identity numbers in Skatteetaten's Tenor test range (month + 80): never a real person's.

    Individual numbers follow the century rules (000-499 for the 1900s, 500-999 for the 2000s) and the sex rule
    (third individual digit odd = male); stems whose control digit would be 10 draw another individual number.

    Parameters
    ----------
    rng : numpy.random.Generator
    birth_dates : array of datetime64
    male : array of bool

    Returns
    -------
    numpy object array of 11-character strings.

    Examples
    --------
    >>> ids = tenor_national_ids(np.random.default_rng(1), np.array(["1990-05-17"], dtype="datetime64[D]"),
    ...                          np.array([True]))
    >>> ids[0][:6], int(ids[0][2:4]) - 80, int(ids[0][8]) % 2
    ('178590', 5, 1)
    """
    dates = np.asarray(birth_dates, dtype="datetime64[D]")
    n = len(dates)
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    stem6 = days * 10000 + (months + 80) * 100 + years % 100
    low = np.where(years >= 2000, 500, 0)
    out = np.zeros(n, dtype=np.int64)
    todo = np.arange(n)
    while len(todo):
        # individual number: century block, then force the sex digit (last of the three) odd/even
        indiv = low[todo] + rng.integers(0, 250, size=len(todo)) * 2
        indiv = indiv - indiv % 2 + male[todo].astype(np.int64)
        stem = stem6[todo] * 1000 + indiv
        k1, k2 = control_digits(stem)
        ok = k1 < 10
        out[todo[ok]] = stem[ok] * 100 + k1[ok] * 10 + k2[ok]
        todo = todo[~ok]
    return np.char.zfill(out.astype(str), 11).astype(object)
