"""The project key for keyed pseudonyms: loading, refusing weak keys, and HMAC-SHA-256 over unique values.

The key is read from a file or from the environment variable ``KVARUS_PSEUDONYM_KEY``
(``kvarus-research keygen --out project.key`` writes a good one, readable by its owner only). It is refused when

* missing, or shorter than 32 bytes;
* equal, in any case or within 2 edits, to a key published in this project's documentation or tests
  (:data:`PUBLISHED_KEYS`), or built around one (16 characters in a row of it);
* too regular: fewer than 8 distinct bytes, or a block repeated (``abcdefgh`` four times);
* made mostly of common words, passwords or keyboard patterns (:data:`COMMON_WORDS`), or of runs of consecutive
  characters (``12345678``, ``abcdefgh``);
* estimated below :data:`MIN_ENTROPY_BITS` bits of entropy (:func:`estimate_entropy`).

A key file readable or writable by group or others gives a :class:`~kvarus_research.errors.PrivacyWarning`, and is
refused under ``strict=True`` or the environment variable ``KVARUS_STRICT_KEYS=1``. The key never appears in a
repr, an error message or any output: its text is registered with :func:`kvarus_research.redact.register_secret`
as it is read, and a ``key_file`` argument that names no file is never echoed (it may be the key itself).

Keys passed as ``bytes`` in code (tests, scripts) are checked for length, distinct bytes, repeated blocks and
published keys; the entropy estimate, words and sequences apply to keys read from a file or the environment, the
way a project key is supplied.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import stat
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kvarus_research.errors import PrivacyError, PrivacyWarning
from kvarus_research.redact import register_secret

ENV_VAR = "KVARUS_PSEUDONYM_KEY"
#: Environment variable: ``1`` refuses key files readable by group or others (as ``strict=True`` does).
STRICT_ENV_VAR = "KVARUS_STRICT_KEYS"
MIN_KEY_BYTES = 32
MIN_DISTINCT_BYTES = 8
#: Least estimated entropy of a key read from a file or the environment. 112 bits is the least security strength
#: NIST SP 800-57 accepts for HMAC keys; a random key of 32 hexadecimal characters (128 bits by construction) must
#: pass a model that discounts the short runs chance puts in any random text. ``keygen`` writes 256 bits.
MIN_ENTROPY_BITS = 112
#: Keys shown in the documentation or used in the tests as text: never accepted, nor within 2 edits of one.
PUBLISHED_KEYS: frozenset[bytes] = frozenset(
    {
        b"EXAMPLE-ONLY-kvarus-pseudonym-key-do-not-use-0001",
        b"0123456789abcdef0123456789abcdef",
        b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        b"short-key-0123456789",
    }
)
#: Kept for older code: the published keys.
EXAMPLE_KEYS = PUBLISHED_KEYS
#: Common passwords, words and names a person puts into a key (bundled: no network). Matched case-insensitively,
#: also with digits for letters (``p4ssw0rd``).
COMMON_WORDS: frozenset[str] = frozenset(
    """
    password passwort passord passwd pass1234 secret hemmelig hemmelighet letmein welcome velkommen admin
    administrator root login changeme default master shadow dragon monkey football fotball baseball soccer
    hockey iloveyou sunshine princess qwerty qwertz azerty trustno1 superman batman starwars whatever freedom
    computer internet server database test testing example eksempel sample demo temp guest user bruker
    kvarus korfor pseudonym pseudonymisering pseudonymize pseudonymise project prosjekt prosjektnokkel
    nokkel noekkel nøkkel key keys keyfile secure sikker sikkert private privat register registeret
    kvalitetsregister helse health patient pasient forskning research norway norge noreg oslo bergen
    trondheim stavanger tromso tromsø kristiansand drammen sommer vinter winter summer spring autumn
    january february march april june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday mandag tirsdag onsdag torsdag fredag lordag
    lørdag sondag søndag hello hallo love lovely flower blomst summer2024 winter2024 correct horse
    battery staple random tilfeldig generated kode code codes access tilgang token
    abc123 qazwsx zaq12wsx asdfgh asdfghjkl zxcvbn zxcvbnm qwertyuiop 1q2w3e4r 1qaz2wsx
    michael jennifer thomas daniel charlie jordan hunter ranger buster killer harley maggie ginger
    anders ola kari nordmann hansen johansen olsen larsen andersen pedersen nilsen
    only use this that with from your kvarusresearch research
    """.split()
)
_KEYBOARD_ROWS = ("1234567890+", "qwertyuiopå", "asdfghjkløæ", "zxcvbnm,.-", "qazwsxedcrfvtgbyhnujmik,ol.")
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)
_WORD_LENGTHS = sorted({len(w) for w in COMMON_WORDS if len(w) >= 4}, reverse=True)


def _strict_default() -> bool:
    return os.environ.get(STRICT_ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on")


def _smallest_period(key: bytes) -> int:
    """The smallest ``p`` with ``key[i] == key[i - p]`` for every ``i >= p`` (prefix function), ``len(key)`` if
    none is shorter."""
    n = len(key)
    pi = [0] * n
    for i in range(1, n):
        k = pi[i - 1]
        while k and key[i] != key[k]:
            k = pi[k - 1]
        if key[i] == key[k]:
            k += 1
        pi[i] = k
    return n - pi[-1] if n else 0


def _within_edits(a: str, b: str, limit: int) -> bool:
    """Whether the edit (Levenshtein) distance of ``a`` and ``b`` is at most ``limit`` (banded, early exit)."""
    if abs(len(a) - len(b)) > limit:
        return False
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        if min(cur) > limit:
            return False
        prev = cur
    return prev[-1] <= limit


_SHARED = 16


def _published(text: str) -> bool:
    folded = text.casefold()
    for known in PUBLISHED_KEYS:
        k = known.decode("utf-8").casefold()
        if folded == k or _within_edits(folded, k, 2):
            return True
        # built around one: shares 16 characters in a row with it (a random key does so with odds ~ 2^-64)
        if any(k[j : j + _SHARED] in folded for j in range(len(k) - _SHARED + 1)):
            return True
    return False


def _alphabet(text: str) -> int:
    """Size of the character classes the key draws from (a key of hexadecimal digits only: 16)."""
    chars = set(text)
    if chars <= set("0123456789abcdef") or chars <= set("0123456789ABCDEF"):
        return 16
    size = 0
    size += 10 if any(c.isdigit() and c.isascii() for c in chars) else 0
    size += 26 if any("a" <= c <= "z" for c in chars) else 0
    size += 26 if any("A" <= c <= "Z" for c in chars) else 0
    size += 33 if any(c.isascii() and not c.isalnum() for c in chars) else 0
    size += 128 if any(not c.isascii() for c in chars) else 0
    return max(size, 2)


def _char_class(c: str) -> int:
    return 0 if c.isdigit() else 1 if c.islower() else 2 if c.isupper() else 3


def _tokens(text: str, i: int, bits: float, n_words: float) -> list[tuple[int, float, str]]:
    """The patterns starting at ``text[i]``: (length, cost in bits, kind)."""
    n = len(text)
    out = [(1, bits, "char")]
    j = i + 1
    while j < n and text[j] == text[i]:
        j += 1
    for length in range(3, j - i + 1):  # a run of one character
        out.append((length, bits + math.log2(length), "repeat"))
    if i + 3 < n:  # a run of consecutive characters (step 1 or 2, up or down, one character class)
        step = ord(text[i + 1]) - ord(text[i])
        if step in (-2, -1, 1, 2):
            j = i + 1
            while (
                j < n
                and ord(text[j]) - ord(text[j - 1]) == step
                and _char_class(text[j]) == _char_class(text[i])
            ):
                j += 1
            for length in range(4, j - i + 1):
                out.append((length, bits + math.log2(length) + 1, "sequence"))
    low = text[i : i + max(_WORD_LENGTHS, default=0)].casefold()
    for length in _WORD_LENGTHS:  # a common word or password, maybe capitalised or with digits for letters
        part = low[:length]
        if len(part) == length:
            plain = part.translate(_LEET)
            if part in COMMON_WORDS or plain in COMMON_WORDS:
                extra = (text[i : i + length] != part) + (plain != part)
                out.append((length, math.log2(n_words) + extra, "word"))
    for row in _KEYBOARD_ROWS:  # keyboard patterns (a part of a row of keys), either direction
        for r in (row, row[::-1]):
            length = 0
            while length < len(low) and low[: length + 1] in r:
                length += 1
            if length >= 4:
                out.append((length, math.log2(len(_KEYBOARD_ROWS) * 2 * 11 * 11), "word"))
    for length in range(4, min(i, n - i, 64) + 1):  # a copy of an earlier part
        if text[i : i + length] in text[:i]:
            out.append((length, math.log2(i) + math.log2(length), "repeat"))
        else:
            break
    return out


def estimate_entropy(key: str | bytes) -> tuple[float, dict[str, int]]:
    """Estimated entropy of a key in bits, and how many characters each kind of pattern covers.

    A simple model in the spirit of zxcvbn: each character costs log2 of the size of the character classes the
    key uses (16 for a hexadecimal key, 62 for letters and digits, 95 with symbols); a run of one character, a
    run of consecutive characters (``12345678``, ``abcdefgh``), a common word or password (:data:`COMMON_WORDS`,
    capitalised or with digits for letters), a keyboard pattern and a copy of an earlier part of the key each
    count as one token. The estimate is the cheapest way to spell the key with these tokens (the first 512
    characters). Keys that are not UTF-8 text count 8 bits per byte.

    Returns
    -------
    (float, dict)
        Bits, and characters covered per kind: ``char``, ``repeat``, ``sequence``, ``word``.

    Examples
    --------
    >>> bits, kinds = estimate_entropy("12345678" * 4)
    >>> bits < 40, kinds["repeat"] + kinds["sequence"]
    (True, 32)
    >>> round(estimate_entropy(secrets.token_hex(32))[0]) > 200
    True
    """
    if isinstance(key, bytes | bytearray):
        try:
            text = bytes(key).decode("utf-8")
        except UnicodeDecodeError:
            text = bytes(key).decode("latin-1")
            return 8.0 * len(text), {"char": len(text), "repeat": 0, "sequence": 0, "word": 0}
    else:
        text = key
    text = text[:512]
    n = len(text)
    bits = math.log2(_alphabet(text))
    n_words = len(COMMON_WORDS) + len(_KEYBOARD_ROWS) * 2 * 11 * 11
    best = [0.0] + [math.inf] * n
    back: list[tuple[int, str]] = [(0, "char")] * (n + 1)
    for i in range(n):
        for length, cost, kind in _tokens(text, i, bits, n_words):
            if best[i] + cost < best[i + length]:
                best[i + length] = best[i] + cost
                back[i + length] = (length, kind)
    covered = {"char": 0, "repeat": 0, "sequence": 0, "word": 0}
    j = n
    while j > 0:
        length, kind = back[j]
        covered[kind] += length
        j -= length
    return best[n], covered


def key_problems(key: bytes, *, estimate: bool = True) -> list[str]:
    """Why ``key`` is refused (empty list: accepted). The reasons never quote the key.

    ``estimate=False`` skips the entropy estimate, words and sequences (keys given as bytes in code).

    Examples
    --------
    >>> key_problems(b"Password1" * 4)
    ['pseudonym key is too regular: a block of 9 characters repeated; generate a random key (kvarus-research keygen)']
    >>> key_problems(secrets.token_hex(32).encode())
    []
    """
    hint = "; generate a random key (kvarus-research keygen)"
    key = bytes(key).strip()
    if len(key) < MIN_KEY_BYTES:
        return [f"pseudonym key is too short: {len(key)} bytes, at least {MIN_KEY_BYTES} are needed"]
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and _published(text):
        return [
            "pseudonym key is an example key from the documentation or tests (or within 2 characters of one, "
            "or built around one, in any case): a published key protects nothing" + hint
        ]
    if len(set(key)) < MIN_DISTINCT_BYTES:
        return [f"pseudonym key is too regular: fewer than {MIN_DISTINCT_BYTES} distinct bytes" + hint]
    period = _smallest_period(key)
    if period <= len(key) // 2:
        return [f"pseudonym key is too regular: a block of {period} characters repeated" + hint]
    if not estimate:
        return []
    bits, covered = estimate_entropy(key)
    n = sum(covered.values())
    problems = []
    if covered["word"] * 2 >= n:
        problems.append("pseudonym key is made mostly of common words, passwords or keyboard patterns")
    if covered["sequence"] * 2 >= n:
        problems.append("pseudonym key is made mostly of runs of consecutive characters (like 12345678)")
    if bits < MIN_ENTROPY_BITS:
        problems.append(
            f"pseudonym key is too predictable: about {bits:.0f} bits of entropy, at least {MIN_ENTROPY_BITS} "
            "are needed (characters from a small set, repeats, sequences or words)"
        )
    return [p + hint for p in problems]


class PseudonymKey:
    """A validated project key. Its repr and str never show the key.

    ``estimate=True`` applies every check of :func:`key_problems` (as :func:`load_key` does); by default a key
    given as bytes is checked for length, published keys, distinct bytes and repeated blocks.

    Examples
    --------
    >>> k = PseudonymKey(bytes(range(40)))
    >>> k
    PseudonymKey(<hidden>)
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes, *, estimate: bool = False) -> None:
        if not isinstance(key, bytes | bytearray):
            raise PrivacyError("pseudonym key: expected bytes")
        key = bytes(key).strip()
        register_secret(key)
        problems = key_problems(key, estimate=estimate)
        if problems:
            raise PrivacyError(problems[0])
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


def _check_permissions(path: Path, strict: bool) -> None:
    """Warn (or refuse, when ``strict``) when the key file can be read or written by group or others (POSIX)."""
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return
    message = (
        f"the key file {path} can be read or written by other users (mode {mode:04o}); "
        f"restrict it to its owner: chmod 600 {path}"
    )
    if strict:
        raise PrivacyError(message + f" (refused: strict key checks, {STRICT_ENV_VAR}=1 or strict=True)")
    warnings.warn(message, PrivacyWarning, stacklevel=3)


def load_key(
    key_file: str | Path | None = None, *, env_var: str = ENV_VAR, strict: bool | None = None
) -> PseudonymKey:
    """Read the project key from ``key_file`` or, when not given, from the environment variable.

    Parameters
    ----------
    key_file : str or Path, optional
        The key file (e.g. written by ``kvarus-research keygen``). An argument that names no file is never shown
        in the error: it may be the key itself.
    env_var : str
        The environment variable read when ``key_file`` is not given.
    strict : bool, optional
        Refuse a key file readable or writable by group or others instead of warning. Default: true when the
        environment variable ``KVARUS_STRICT_KEYS`` is ``1``.

    Raises
    ------
    PrivacyError
        When no key is found, or it is weak (see :func:`key_problems`; the message says why and never shows the
        key), or, with ``strict``, the key file is open to other users.

    Warns
    -----
    PrivacyWarning
        When the key file is readable or writable by group or others (and ``strict`` is false).

    Examples
    --------
    >>> import os
    >>> os.environ["KVARUS_PSEUDONYM_KEY"] = "ab" * 20
    >>> load_key()
    Traceback (most recent call last):
    ...
    kvarus_research.errors.PrivacyError: pseudonym key is too regular: fewer than 8 distinct bytes; generate a random key (kvarus-research keygen)
    >>> del os.environ["KVARUS_PSEUDONYM_KEY"]
    >>> load_key("no such file")
    Traceback (most recent call last):
    ...
    kvarus_research.errors.PrivacyError: the key file argument (--key-file) does not name an existing file (the value is not shown, since it may be the key itself); pass the path of a key file, e.g. one written by `kvarus-research keygen --out project.key`
    """
    strict = _strict_default() if strict is None else strict
    if key_file is not None:
        path = Path(key_file)
        if not path.is_file():
            if len(str(key_file).strip()) >= 16:  # it may be the key, typed where its file name belongs
                register_secret(str(key_file))
            what = "names a folder, not a key file" if _is_dir(path) else "does not name an existing file"
            raise PrivacyError(
                f"the key file argument (--key-file) {what} (the value is not shown, since it may be the key "
                "itself); pass the path of a key file, e.g. one written by `kvarus-research keygen --out "
                "project.key`"
            )
        key = PseudonymKey(path.read_bytes(), estimate=True)
        _check_permissions(path, strict)  # after the strength checks: a refused key needs no second message
        return key
    value = os.environ.get(env_var)
    if not value:
        raise PrivacyError(f"no pseudonym key: pass a key file or set the environment variable {env_var}")
    return PseudonymKey(value.encode(), estimate=True)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def as_key(key: PseudonymKey | bytes | str | Path | None, *, strict: bool | None = None) -> PseudonymKey:
    """A :class:`PseudonymKey` from a key, raw key bytes, a key-file path (str or Path) or ``None`` (environment).

    A ``str`` is always a path, never key text: a key typed in its place is refused without being shown.

    Examples
    --------
    >>> as_key(bytes(range(40)))
    PseudonymKey(<hidden>)
    """
    if isinstance(key, PseudonymKey):
        return key
    if isinstance(key, bytes | bytearray):
        return PseudonymKey(bytes(key))
    return load_key(key, strict=strict)


def generate_key_file(path: str | Path) -> Path:
    """Write a new random key (64 hexadecimal characters, 256 bits) to ``path``, readable by the owner only.

    The file is created with mode 0600 (a new parent folder with 0700) and never overwritten.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = generate_key_file(pathlib.Path(tempfile.mkdtemp()) / "project.key")
    >>> load_key(p), oct(p.stat().st_mode & 0o777)
    (PseudonymKey(<hidden>), '0o600')
    """
    path = Path(path)
    if path.exists():
        raise PrivacyError(f"key file {path} already exists; it is never overwritten")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    while key_problems(key.encode()):  # pragma: no cover - 256 random bits always pass
        key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # whatever the umask
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
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
