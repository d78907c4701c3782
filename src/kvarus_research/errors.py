"""The library's own error types. Messages name the file, row, column and value in the user's terms,
and never contain a row-level identifier."""


class KvarusError(Exception):
    """Base class of every error this library raises on purpose."""


class CodebookError(KvarusError):
    """The codebook is malformed or does not know a variable or form."""


class ExtractError(KvarusError):
    """An extract (or one of its files) cannot be read at all."""


class RegistryError(KvarusError):
    """A registry breaks an invariant of the course model."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class PrivacyError(KvarusError):
    """A privacy rule would be broken (weak key, identifiers in output, protection missing)."""


class CohortError(KvarusError):
    """A cohort definition is invalid."""


class AnalysisError(KvarusError):
    """An analysis cannot be run on the given data (too few rows, missing variables ...)."""
