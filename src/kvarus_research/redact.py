"""The one redaction path: identity numbers, GUIDs, pseudonyms and registered secrets out of every message.

:func:`redact` is applied to every validation finding (all its text columns, whatever the column of the value),
to the message of every :class:`~kvarus_research.errors.KvarusError` and library warning, to log records of the
``kvarus_research`` logger (:class:`RedactFilter`) and to what the command line prints. It lives at the top of the
package and imports only the standard library, so :mod:`kvarus_research.errors` can use it;
:mod:`kvarus_research.privacy.redact` re-exports it.

What is replaced (whole runs only, so ordinary numbers survive: dates such as ``02.03.2021``, counts, years and
unit ids of up to 10 digits):

===============  ==================================================================================  ===============
kind             pattern                                                                             marker
===============  ==================================================================================  ===============
secret           the text of every key loaded in this process (:func:`register_secret`)              ``<key>``
GUID             8-4-4-4-12 hexadecimal digits, any case, with or without braces                     ``<guid>``
pseudonym        a run of 16 or more hexadecimal characters (``P``/``C``/``N`` + 16 hex digits are the  ``<pseudonym>``
                 pseudonyms of :mod:`kvarus_research.privacy.pseudonym`; a 64-hex key, a bare GUID)
identity number  11 or more consecutive digits, or 6 + 5 digits split by a space, dot or dash            ``<id>``
===============  ==================================================================================  ===============
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

ID_MARKER = "<id>"
GUID_MARKER = "<guid>"
PSEUDONYM_MARKER = "<pseudonym>"
KEY_MARKER = "<key>"
#: Secrets shorter than this are not registered (they would blank ordinary words).
MIN_SECRET_CHARS = 8

_HEX = "[0-9a-fA-F]"
_PATTERN = re.compile(
    rf"(?P<guid>\{{?{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}\}}?)"
    rf"|(?P<pseudonym>(?:(?<![0-9A-Za-z])[A-Za-z]|(?<![0-9a-fA-F])){_HEX}{{16,}}(?![0-9a-fA-F]))"
    r"|(?P<id>(?<!\d)(?:\d{11,}|\d{6}[ .\-]\d{5})(?!\d))"
)
_MARKERS = {"guid": GUID_MARKER, "pseudonym": PSEUDONYM_MARKER, "id": ID_MARKER}
_secrets: set[str] = set()
_secret_re: re.Pattern[str] | None = None
_lock = threading.Lock()


def register_secret(text: str | bytes) -> None:
    """Have :func:`redact` replace ``text`` (e.g. the key text just loaded) by ``<key>`` from now on.

    Called by the key loader for every key it reads; texts shorter than :data:`MIN_SECRET_CHARS` are ignored.
    The repr-escaped form (as ``{value!r}`` would print it) is registered too.

    Examples
    --------
    >>> register_secret("not-a-real-key-only-for-this-doctest")
    >>> redact("found 'not-a-real-key-only-for-this-doctest' in the message")
    "found '<key>' in the message"
    """
    global _secret_re
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            text = bytes(text).decode("latin-1")
    variants = {text, text.strip(), repr(text)[1:-1], repr(text.strip())[1:-1]}
    new = {v for v in variants if len(v) >= MIN_SECRET_CHARS} - _secrets
    if not new:
        return
    with _lock:
        _secrets.update(new)
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_re = re.compile("|".join(re.escape(s) for s in ordered))


def _marker(m: re.Match[str]) -> str:
    return _MARKERS[m.lastgroup or "id"]


def redact(text: str) -> str:
    """``text`` with identity numbers, GUIDs, pseudonyms and registered secrets replaced by markers.

    Idempotent (``redact(redact(t)) == redact(t)``); a non-``str`` argument is converted with ``str()`` first.

    Examples
    --------
    >>> redact("line 4, column dager_rus_30: value '01018012371' (expected a number)")
    "line 4, column dager_rus_30: value '<id>' (expected a number)"
    >>> redact("PasientGUID {3F2B8C1E-9A4D-4E5F-8B6C-7D8E9F0A1B2C}, id P0123456789abcdef, 010180 12371")
    'PasientGUID <guid>, id <pseudonym>, <id>'
    >>> redact("02.03.2021: 12 rows, unit 4001234567, year 2024")
    '02.03.2021: 12 rows, unit 4001234567, year 2024'
    """
    if not isinstance(text, str):
        text = str(text)
    # Repeated until nothing changes: a run next to a replaced one may only match once its neighbour is a marker
    # (each pass shortens the text, so this ends).
    while True:
        new = _secret_re.sub(KEY_MARKER, text) if _secret_re is not None else text
        new = _PATTERN.sub(_marker, new)
        if new == text:
            return new
        text = new


def redact_value(value: Any) -> Any:
    """:func:`redact` for a value of a table cell: text is redacted, missing values and numbers pass through.

    Examples
    --------
    >>> redact_value("x 01018012371"), redact_value(None), redact_value(7)
    ('x <id>', None, 7)
    """
    return redact(value) if isinstance(value, str) else value


class RedactFilter(logging.Filter):
    """A logging filter that redacts the formatted message of every record (the arguments are merged in first).

    Installed on the ``kvarus_research`` logger when this module is imported; :func:`get_logger` installs it on
    a child logger too (a logger's filters do not see the records its children propagate).

    Examples
    --------
    >>> import logging
    >>> rec = logging.LogRecord("kvarus_research", logging.INFO, __file__, 1, "id %s", ("01018012371",), None)
    >>> RedactFilter().filter(rec), rec.getMessage()
    (True, 'id <id>')
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record``'s message in place; never drops a record."""
        record.msg = redact(record.getMessage())
        record.args = None
        return True


_FILTER = RedactFilter()
logging.getLogger("kvarus_research").addFilter(_FILTER)


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with :class:`RedactFilter` installed: the logger for every library module.

    Examples
    --------
    >>> log = get_logger("kvarus_research.io.read")
    >>> any(isinstance(f, RedactFilter) for f in log.filters)
    True
    """
    log = logging.getLogger(name)
    if _FILTER not in log.filters:
        log.addFilter(_FILTER)
    return log


def warn(message: str, category: type[Warning] | None = None, stacklevel: int = 2) -> None:
    """``warnings.warn`` with a redacted message (default category :class:`~kvarus_research.errors.KvarusWarning`).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("file 12345678901.csv looks odd")
    >>> str(caught[0].message)
    'file <id>.csv looks odd'
    """
    import warnings

    if category is None:
        from kvarus_research.errors import KvarusWarning

        category = KvarusWarning
    warnings.warn(redact(message), category, stacklevel=stacklevel + 1)


def error_text(exc: BaseException) -> str:
    """The redacted one-line message the command line prints for a user error (no traceback).

    Examples
    --------
    >>> error_text(FileNotFoundError(2, "No such file or directory", "extract/01018012371.csv"))
    'No such file or directory: extract/<id>.csv'
    """
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror + (f": {exc.filename}" if exc.filename is not None else "")
    else:
        text = str(exc) or type(exc).__name__
    return redact(" ".join(text.split()) if "\n" not in text else text)
