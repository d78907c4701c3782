"""Checks of what a caller declares to :func:`kvarus_research.privacy.protect` (counts, derived values,
complements, partitions, margins), and the log entries it writes. Every message names the columns in the
caller's terms; none holds a cell value that could be a suppressed count.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import pandas as pd

from kvarus_research.errors import PrivacyError


def _log(entries: list[dict[str, Any]], row: Any, column: str, action: str, reason: str) -> None:
    entries.append({"row": row, "column": column, "action": action, "reason": reason})


def _check_columns(
    table: pd.DataFrame,
    counts: Sequence[str],
    derived: Mapping[str, Any],
    unit: str | None,
    margins: Mapping[str, Hashable],
    entries: list[dict[str, Any]],
) -> dict[str, list[str]]:
    """Check the named columns; returns derived column -> its count sources (derived columns absent from the
    table are skipped with a log note; a derived column none of whose sources is a count is an error)."""
    wanted = {"counts": list(counts), "unit": [unit] if unit else [], "margins": list(margins)}
    for what, cols in wanted.items():
        missing = [c for c in cols if c not in table.columns]
        if missing:
            raise PrivacyError(
                f"protect: {what} column(s) {missing} are not in the table (columns: {list(table.columns)})"
            )
    sources: dict[str, list[str]] = {}
    for dcol, src in derived.items():
        if dcol not in table.columns:
            _log(entries, "all", dcol, "note", "declared derived column is not in the table")
            continue
        srcs = [src] if isinstance(src, str) else list(src)
        usable = [s for s in srcs if s in counts]
        if not usable:
            raise PrivacyError(
                f"protect: derived column {dcol!r} comes from {srcs}, none of which is a count column "
                f"(counts={list(counts)}); it could never be suppressed with its count"
            )
        if len(usable) < len(srcs):
            _log(
                entries,
                "all",
                dcol,
                "note",
                f"sources {sorted(set(srcs) - set(usable))} are not count columns",
            )
        sources[dcol] = usable
    return sources


def _check_pair(argument: str, col: str, total: str, counts: Sequence[str]) -> None:
    """A count column and its row total must be two different count columns."""
    if col not in counts or total not in counts or col == total:
        raise PrivacyError(
            f"protect: {argument}={{{col!r}: {total!r} ...}} must name two different count columns "
            f"(counts={list(counts)})"
        )
