"""Checks of what a caller declares to :func:`kvarus_research.privacy.protect` (counts, derived values,
complements, partitions, margins), and the log entries it writes. Every message names the columns in the
caller's terms; none holds a cell value that could be a suppressed count.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
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


def _complements_last(counts: Sequence[str], complements: Mapping[str, str]) -> list[str]:
    """The count columns in order, each column with a complement after its row total (which must be a count)."""
    for col, total in complements.items():
        _check_pair("complements", col, total, counts)
        if total in complements:
            raise PrivacyError(f"protect: {total!r} is a row total in complements and cannot have one itself")
    return [c for c in counts if c not in complements] + [c for c in counts if c in complements]


def _check_partition(
    col: str,
    spec: tuple[str, list[str]],
    counts: Sequence[str],
    dims: Sequence[str],
    complements: Mapping[str, str],
) -> tuple[str, list[str]]:
    """Check a ``partitions`` entry: a count column, its row-total count column and category dimension(s)."""
    total, categories = spec
    _check_pair("partitions", col, total, counts)
    if col in complements:
        raise PrivacyError(f"protect: {col!r} is in both complements and partitions; a partition covers both")
    missing = [c for c in categories if c not in dims]
    if missing:
        raise PrivacyError(
            f"protect: partition categories {missing} are not dimension columns (dims={list(dims)})"
        )
    return total, categories


def _small_complements(
    values: np.ndarray, totals: np.ndarray, index: pd.Index, col: str, total: str, rules: Any
) -> np.ndarray:
    """Rows whose complement ``total - col`` is a small count; raises when a count exceeds its row total."""
    comp = totals - values
    over = np.flatnonzero(comp < 0)
    if len(over):
        raise PrivacyError(
            f"protect: {col!r} exceeds its row total {total!r} in {len(over)} row(s), first at row "
            f"{index[over[0]]}; a count cannot be larger than the total it is part of"
        )
    return rules.small(comp)
