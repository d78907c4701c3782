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
        0x1f ‖ value, sha256).digest()`` (checked in the tests).
        """
        block = self._key if len(self._key) <= 64 else hashlib.sha256(self._key).digest()
        block = block.ljust(64, b"\0")
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in block) + domain.encode() + b"\x1f")
        outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        inner_copy, outer_copy = inner.copy, outer.copy
        items = values.tolist() if isinstance(values, np.ndarray) else list(values)
        out: list[bytes] = []
        append = out.append
        chunk = 250_000
        with tqdm(
            total=len(items),
            desc=f"pseudonyms ({domain})",
            unit="id",
            leave=False,
            disable=len(items) < 2 * chunk,
        ) as bar:
            for start in range(0, len(items), chunk):
                for v in items[start : start + chunk]:
                    i = inner_copy()
                    i.update(v.encode() if isinstance(v, str) else str(v).encode())
                    o = outer_copy()
                    o.update(i.digest())
                    append(o.digest())
                bar.update(min(chunk, len(items) - start))
        return np.frombuffer(b"".join(out), dtype=np.uint8).reshape(-1, 32)


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


def _hex_names(digests: np.ndarray, prefix: str, n_bytes: int = 8) -> np.ndarray:
    """``prefix`` + the first ``n_bytes`` of each digest as lower-case hexadecimal, vectorised."""
    n = len(digests)
    nib = np.empty((n, 2 * n_bytes), dtype=np.uint8)
    nib[:, 0::2] = digests[:, :n_bytes] >> 4
    nib[:, 1::2] = digests[:, :n_bytes] & 0x0F
    pre = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    chars = np.concatenate([np.broadcast_to(pre, (n, len(pre))), _HEX[nib]], axis=1)
    width = chars.shape[1]
    return np.ascontiguousarray(chars).view(f"S{width}").ravel().astype(str).astype(object)


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
    # Codes into one union of unique values: the first column factorised, the others looked up in it (one hash
    # lookup per row), and what they add factorised together.
    first_codes, first_uniques = pd.factorize(columns[0], use_na_sentinel=True)
    uniques = [np.asarray(first_uniques, dtype=object)]
    index = pd.Index(uniques[0])
    codes_per_col = [np.asarray(first_codes, dtype=np.int64)]
    missing = []
    for col in columns[1:]:
        codes = np.asarray(index.get_indexer(col.to_numpy(dtype=object)), dtype=np.int64)
        miss = codes < 0
        if miss.any():  # not found, or missing (NA stays NA)
            miss[miss] = col.iloc[np.flatnonzero(miss)].notna().to_numpy()
        codes_per_col.append(codes)
        missing.append(miss)
    extra_values = [col.to_numpy(dtype=object)[m] for col, m in zip(columns[1:], missing)]
    if any(len(v) for v in extra_values):
        extra_codes, extra_uniques = pd.factorize(np.concatenate(extra_values), use_na_sentinel=True)
        offset, start = len(uniques[0]), 0
        for codes, miss, vals in zip(codes_per_col[1:], missing, extra_values):
            codes[miss] = offset + extra_codes[start : start + len(vals)]
            start += len(vals)
        uniques.append(np.asarray(extra_uniques, dtype=object))
    all_uniques = np.concatenate(uniques)
    digests = key.digests(all_uniques, domain)
    names = _hex_names(digests, prefix)
    same_text = _check_collisions(digests, all_uniques, domain)
    out = []
    for col, union_codes in zip(columns, codes_per_col):
        values = np.where(union_codes >= 0, names[np.maximum(union_codes, 0)] if len(names) else None, None)
        series = pd.Series(values, index=col.index, name=col.name, dtype=object)
        # kept so derived pseudonyms (registration ids, course rows) need no second hash pass over the strings
        series.attrs["pseudonym_codes"] = (union_codes, names)
        out.append(series)
    return out, len(all_uniques) - same_text


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
