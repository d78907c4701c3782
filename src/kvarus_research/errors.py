"""The library's own error and warning types. Messages name the file, row, column and value in the user's terms,
and never contain an identifier, a pseudonym or a key: every message passes through
:func:`kvarus_research.redact.redact` (in ``__init__`` and again in ``__str__``, so no subclass can forget and a
key registered later is hidden too).

Examples
--------
>>> str(ExtractError("DataDump 01018012371.csv: the file is empty"))
'DataDump <id>.csv: the file is empty'
"""

from __future__ import annotations

from typing import Any

from kvarus_research.redact import redact


def _redacted(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(redact(a) if isinstance(a, str) else a for a in args)


class KvarusError(Exception):
    """Base class of every error this library raises on purpose; its message is always redacted."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*_redacted(args))

    def __str__(self) -> str:
        return redact(super().__str__())


class CodebookError(KvarusError):
    """The codebook is malformed or does not know a variable or form."""


class ExtractError(KvarusError):
    """An extract (or one of its files) cannot be read at all."""


class RegistryError(KvarusError):
    """A registry breaks an invariant of the course model."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = [redact(p) if isinstance(p, str) else p for p in (problems or [])]


class PrivacyError(KvarusError):
    """A privacy rule would be broken (weak key, identifiers in output, protection missing)."""


class CohortError(KvarusError):
    """A cohort definition is invalid."""


class AnalysisError(KvarusError):
    """An analysis cannot be run on the given data (too few rows, missing variables ...)."""


class KvarusWarning(UserWarning):
    """Base class of the library's warnings; its message is always redacted."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*_redacted(args))

    def __str__(self) -> str:
        return redact(super().__str__())


class PrivacyWarning(KvarusWarning):
    """Something weakens privacy but is allowed (e.g. a key file readable by other users)."""
