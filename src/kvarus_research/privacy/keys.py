"""The project key for keyed pseudonyms: loading, refusing weak keys, and HMAC-SHA-256 over unique values.

The key is read from a file or from the environment variable ``KVARUS_PSEUDONYM_KEY``. It is refused when
missing, shorter than 32 bytes, one of the example keys printed in the documentation, or made of fewer than 8
distinct bytes (e.g. all the same byte). The key never appears in a repr, an error message or any output.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kvarus_research.errors import PrivacyError

ENV_VAR = "KVARUS_PSEUDONYM_KEY"
MIN_KEY_BYTES = 32
MIN_DISTINCT_BYTES = 8
#: Keys shown in the documentation: never accepted.
EXAMPLE_KEYS: frozenset[bytes] = frozenset(
    {
        b"EXAMPLE-ONLY-kvarus-pseudonym-key-do-not-use-0001",
        b"0123456789abcdef0123456789abcdef",
        b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    }
)


class PseudonymKey:
    """A validated project key. Its repr and str never show the key.

    Examples
    --------
    >>> k = PseudonymKey(bytes(range(40)))
    >>> k
    PseudonymKey(<hidden>)
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray):
            raise PrivacyError("pseudonym key: expected bytes")
        key = bytes(key).strip()
        if len(key) < MIN_KEY_BYTES:
            raise PrivacyError(
                f"pseudonym key is too short: {len(key)} bytes, at least {MIN_KEY_BYTES} are needed"
            )
        if key in EXAMPLE_KEYS:
            raise PrivacyError("pseudonym key is an example key from the documentation; generate a new one")
        if len(set(key)) < MIN_DISTINCT_BYTES:
            raise PrivacyError(
                f"pseudonym key is too regular: fewer than {MIN_DISTINCT_BYTES} distinct bytes; generate a random key"
            )
        self._key = key

    def __repr__(self) -> str:
        return "PseudonymKey(<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> None:  # never pickled into an output
        raise PrivacyError("a pseudonym key cannot be pickled")

    def digests(self, values: np.ndarray, domain: str) -> np.ndarray:
        """HMAC-SHA-256 of ``domain`` + separator + each value, as an (n, 32) uint8 array.

        The HMAC of RFC 2104 written out with two precomputed SHA-256 states (inner: key ⊕ ipad ‖ domain, outer:
        key ⊕ opad), so each value costs two state copies and two digests; equal to ``hmac.new(key, domain ‖
        0x1f ‖ value, sha256).digest()`` (checked in the tests). Single-process on purpose: a forked helper was
        measured slower on the benchmark machine (page faults after the fork) and forking a threaded process
        (a Jupyter kernel) can deadlock.

        Examples
        --------
        >>> import hashlib, hmac
        >>> k = PseudonymKey(bytes(range(40)))
        >>> d = k.digests(np.array(["a", 7], dtype=object), "patient")
        >>> d.shape, d[1].tobytes() == hmac.new(bytes(range(40)), b"patient\x1f7", hashlib.sha256).digest()
        ((2, 32), True)
        """
        block = self._key if len(self._key) <= 64 else hashlib.sha256(self._key).digest()
        block = block.ljust(64, b"\0")
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in block) + domain.encode() + b"\x1f")
        outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        items = values.tolist() if isinstance(values, np.ndarray) else list(values)
        n = len(items)
        with tqdm(total=n, desc=f"pseudonyms ({domain})", unit="id", leave=False, disable=n < 500_000) as bar:
            data = _hmac_range(items, 0, n, inner, outer, bar)
        return np.frombuffer(data, dtype=np.uint8).reshape(-1, 32)


_CHUNK = 50_000


def _hmac_range(items: list, start: int, stop: int, inner: Any, outer: Any, bar: Any = None) -> bytes:
    """The 32-byte HMAC digests of ``items[start:stop]`` joined, from the precomputed inner/outer states.

    Joined chunk by chunk, so the memory of one chunk's digest objects is reused by the next.
    """
    inner_copy, outer_copy = inner.copy, outer.copy
    parts: list[bytes] = []
    for lo in range(start, stop, _CHUNK):
        hi = min(lo + _CHUNK, stop)
        out: list[bytes] = []
        append = out.append
        for v in items[lo:hi]:
            i = inner_copy()
            i.update(v.encode() if isinstance(v, str) else str(v).encode())
            o = outer_copy()
            o.update(i.digest())
            append(o.digest())
        parts.append(b"".join(out))
        if bar is not None:
            bar.update(hi - lo)
    return b"".join(parts)


def load_key(key_file: str | Path | None = None, *, env_var: str = ENV_VAR) -> PseudonymKey:
    """Read the project key from ``key_file`` or, when not given, from the environment variable.

    Raises
    ------
    PrivacyError
        When no key is found, or it is short, an example key or too regular (the message never shows the key).

    Examples
    --------
    >>> import os
    >>> os.environ["KVARUS_PSEUDONYM_KEY"] = "x" * 40
    >>> load_key()
    Traceback (most recent call last):
    ...
    kvarus_research.errors.PrivacyError: pseudonym key is too regular: fewer than 8 distinct bytes; generate a random key
    >>> del os.environ["KVARUS_PSEUDONYM_KEY"]
    """
    if key_file is not None:
        path = Path(key_file)
        if not path.is_file():
            raise PrivacyError(f"pseudonym key file {path} does not exist")
        return PseudonymKey(path.read_bytes())
    value = os.environ.get(env_var)
    if not value:
        raise PrivacyError(f"no pseudonym key: pass a key file or set the environment variable {env_var}")
    return PseudonymKey(value.encode())


def as_key(key: PseudonymKey | bytes | str | Path | None) -> PseudonymKey:
    """A :class:`PseudonymKey` from a key, raw key bytes, a key-file path (str or Path) or ``None`` (environment)."""
    if isinstance(key, PseudonymKey):
        return key
    if isinstance(key, bytes | bytearray):
        return PseudonymKey(bytes(key))
    return load_key(key)


def generate_key_file(path: str | Path) -> Path:
    """Write a new random key (64 hexadecimal characters) to ``path``, readable by the owner only.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = generate_key_file(pathlib.Path(tempfile.mkdtemp()) / "project.key")
    >>> load_key(p)
    PseudonymKey(<hidden>)
    """
    path = Path(path)
    if path.exists():
        raise PrivacyError(f"key file {path} already exists; it is never overwritten")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return path


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex_bytes(digests: np.ndarray, prefix: str, n_bytes: int = 8) -> np.ndarray:
    """``prefix`` + the first ``n_bytes`` of each digest as lower-case hexadecimal, as a fixed-width bytes array."""
    n = len(digests)
    pre = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    chars = np.empty((n, len(pre) + 2 * n_bytes), dtype=np.uint8)
    chars[:, : len(pre)] = pre
    chars[:, len(pre) :: 2] = _HEX[digests[:, :n_bytes] >> 4]
    chars[:, len(pre) + 1 :: 2] = _HEX[digests[:, :n_bytes] & 0x0F]
    return chars.view(f"S{chars.shape[1]}").ravel()


def _as_str(fixed: np.ndarray) -> np.ndarray:
    """A fixed-width ASCII bytes array as an object array of ``str``."""
    if not len(fixed):
        return np.empty(0, dtype=object)
    return fixed.astype(f"U{fixed.dtype.itemsize}").astype(object)


def keyed_pseudonyms(
    columns: Sequence[pd.Series], key: PseudonymKey, *, domain: str, prefix: str = ""
) -> tuple[list[pd.Series], int]:
    """Pseudonyms for one kind of id in several columns: HMAC-SHA-256 once per unique value, first 64 bits in hex.

    The same value gets the same pseudonym in every column (and in every delivery with the same key). Missing
    values stay missing. Raises :class:`PrivacyError` on a pseudonym collision (probability about n² / 2⁶⁵,
    3·10⁻⁸ for a million ids).

    Returns
    -------
    (list of Series, int)
        The pseudonymised columns (object dtype, same index) and the number of unique ids.

    Examples
    --------
    >>> k = PseudonymKey(bytes(range(40)))
    >>> (p, q), n = keyed_pseudonyms([pd.Series(["a", "b", None]), pd.Series(["b", "a"])], k, domain="patient",
    ...                              prefix="P")
    >>> n, p[0] == q[1], p[1] == q[0], p[0] != p[1], len(p[0]), pd.isna(p[2])
    (2, True, True, True, 17, True)
    """
    if not columns:
        return [], 0
    # One factorisation of all columns together: codes into the union of unique values, NA -> -1. A long column
    # sorted by its id (registrations by course) enters with one value per run of equal values.
    starts = [_run_starts(c) for c in columns]
    parts = [
        pd.Series(c.array if m is None else c.to_numpy()[m], copy=False) for c, m in zip(columns, starts)
    ]
    # A part holding, in order, exactly the values of the first part (e.g. the run values of registrations
    # sorted by course, against the course table sorted the same way) takes the first part's codes: no lookup.
    aligned = [i > 0 and _same_values(parts[0], p) for i, p in enumerate(parts)]
    hashed = [p for p, a in zip(parts, aligned) if not a]
    together = pd.concat(hashed, ignore_index=True) if len(hashed) > 1 else hashed[0]
    all_codes, uniques = pd.factorize(together, use_na_sentinel=True)
    hashed_codes = iter(
        np.split(np.asarray(all_codes, dtype=np.int64), np.cumsum([len(p) for p in hashed])[:-1])
    )
    first = next(hashed_codes)  # the first part is always hashed
    part_codes = [first, *(first if a else next(hashed_codes) for a in aligned[1:])]
    all_uniques = np.asarray(uniques, dtype=object)
    digests = key.digests(all_uniques, domain)
    fixed = _hex_bytes(digests, prefix)
    # one spare None at the end: code -1 (missing) picks it
    names = np.append(_as_str(fixed), None)
    same_text = _check_collisions(digests, all_uniques, domain)
    out = []
    for col, union_codes, m in zip(columns, part_codes, starts):
        if m is not None:
            union_codes = union_codes[np.cumsum(m) - 1]
        series = pd.Series(names[union_codes], index=col.index, name=col.name, dtype=object)
        # kept so derived pseudonyms (registration ids, course rows) need no second hash pass over the strings:
        # the codes and the pseudonyms as a fixed-width bytes array
        series.attrs["pseudonym_codes"] = (union_codes, fixed)
        out.append(series)
    return out, len(all_uniques) - same_text


def _same_values(first: pd.Series, other: pd.Series) -> bool:
    """Whether ``other`` holds exactly the values of ``first`` in the same order (NumPy dtypes, no missing value:
    NaN != NaN, and pd.NA gives no boolean, so either declines)."""
    if len(first) != len(other) or not len(first):
        return False
    if not (isinstance(first.dtype, np.dtype) and first.dtype == other.dtype):
        return False
    try:
        equal = first.to_numpy() == other.to_numpy()
    except (TypeError, ValueError):
        return False
    return isinstance(equal, np.ndarray) and equal.dtype == bool and bool(equal.all())


#: Columns at least this long are checked for runs of equal adjacent values (see :func:`_run_starts`).
RUNS_MIN_VALUES = 100_000
#: ... and used when at most this share of their rows start a run.
RUNS_MAX_SHARE = 0.9


def _run_starts(column: pd.Series) -> np.ndarray | None:
    """Mask of the rows starting a run of equal adjacent values, when ``column`` is long, has a NumPy dtype and
    at most :data:`RUNS_MAX_SHARE` of its rows start a run (e.g. registrations sorted by course, or courses sorted
    by patient); else ``None``.

    Runs use ``!=`` (Python equality, as the factorisation does: 7 and 7.0 are one id, 7 and "7" are not); a
    missing value (NaN, None) starts its own run or joins one of missing values, and stays missing.
    """
    n = len(column)
    if n < RUNS_MIN_VALUES or not isinstance(column.dtype, np.dtype):
        return None
    values = column.to_numpy()
    change = np.empty(n, dtype=bool)
    change[0] = True
    try:
        np.not_equal(values[1:], values[:-1], out=change[1:])
    except (TypeError, ValueError):  # e.g. pd.NA, which has no truth value
        return None
    return change if np.count_nonzero(change) <= RUNS_MAX_SHARE * n else None


def _check_collisions(digests: np.ndarray, values: np.ndarray, domain: str) -> int:
    """Raise when two different ids share the first 64 bits of their HMAC; returns how many values repeat another
    one's text (e.g. 7 and "7": the same id, the same pseudonym)."""
    first64 = digests[:, :8].copy().view(np.uint64).ravel()
    ordered = np.sort(first64)
    if not (ordered[1:] == ordered[:-1]).any():
        return 0
    order = np.argsort(first64, kind="stable")
    same = np.flatnonzero(first64[order][1:] == first64[order][:-1])
    for i in same:
        if str(values[order[i]]) != str(values[order[i + 1]]):
            raise PrivacyError(
                f"pseudonym collision among {len(values)} {domain} ids; use a longer pseudonym"
            )
    return len(same)
