"""Redaction of identity numbers, GUIDs, pseudonyms and registered keys from messages (re-exported).

The implementation lives in :mod:`kvarus_research.redact` (standard library only), so the lowest layer,
:mod:`kvarus_research.errors`, can redact every error message without an import cycle.

Examples
--------
>>> from kvarus_research.privacy.redact import redact
>>> redact("value 3f2b8c1e-9a4d-4e5f-8b6c-7d8e9f0a1b2c in column dager_rus_30")
'value <guid> in column dager_rus_30'
"""

from __future__ import annotations

from kvarus_research.redact import (
    GUID_MARKER,
    ID_MARKER,
    KEY_MARKER,
    PSEUDONYM_MARKER,
    RedactFilter,
    get_logger,
    redact,
    redact_value,
    register_secret,
    warn,
)

__all__ = [
    "GUID_MARKER",
    "ID_MARKER",
    "KEY_MARKER",
    "PSEUDONYM_MARKER",
    "RedactFilter",
    "get_logger",
    "redact",
    "redact_value",
    "register_secret",
    "warn",
]
