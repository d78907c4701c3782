"""Disclosure-control rules (the "norway" and "opensafely" presets) and the protected table they produce."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.errors import PrivacyError

LOG_COLUMNS = ["row", "column", "action", "reason"]
DISABLED_STAMP = "DISCLOSURE CONTROL DISABLED (protect(enabled=False)): raw counts, not for publication"


@dataclass(frozen=True)
class DisclosureRules:
    """Rules for :func:`protect`.

    Parameters
    ----------
    name : str
        Shown in the stamp and the log.
    min_count : int
        Counts ``0 < n < min_count`` are suppressed (5 = the Norwegian norm "n < 5"; 8 = OpenSAFELY's "≤ 7").
    suppress_zeros : bool
        Suppress zeros as well (by default a zero stays visible).
    unit_min_n : int or None
        Units whose N (the first count column, summed over the unit's rows) is below this are pooled.
    rounding : int or None
        Round published counts to the nearest multiple of this (halves up).
    totals_from_rounded : bool
        Recompute total rows from the rounded published cells (suppressed cells are left out), so totals carry no
        information about suppressed cells and no secondary suppression is needed.
    secondary : bool
        Apply secondary suppression (ignored when ``totals_from_rounded``).
    marker : str
        How every suppressed cell is shown, whatever the reason it was hidden: one neutral marker that states no
        bound (a cell hidden to protect another cell may hold any value). The default ``":"`` is Statistics
        Norway's symbol for "not shown for reasons of confidentiality"; ``"-"`` is not used, since it means zero.
    footnote : str
        The footnote printed under every published table and figure that holds the marker.
    curve_step : float
        Survival and cumulative-incidence curves: event times are moved up to a grid of this step (in the curve's
        time unit), so no step of a curve marks one course's ending.
    curve_round_to : int
        Curves: counts at risk and cumulative events rounded to this base before the curve and its CI are
        computed from them.
    curve_min_at_risk : int
        Curves: the tail with fewer courses at risk than this is cut off.

    Examples
    --------
    >>> DisclosureRules(min_count=10).describe()
    'custom: counts 1-9 suppressed, units with N < 10 pooled, secondary suppression'
    """

    name: str = "custom"
    min_count: int = 5
    suppress_zeros: bool = False
    unit_min_n: int | None = 10
    rounding: int | None = None
    totals_from_rounded: bool = False
    secondary: bool = True
    marker: str = ":"
    footnote: str = ": not shown for confidentiality (few people, or to protect another cell)"
    curve_step: float = 30
    curve_round_to: int = 5
    curve_min_at_risk: int = 10

    def small(self, counts: np.ndarray) -> np.ndarray:
        """Which counts the rules hide: ``0 < n < min_count`` (and zeros with ``suppress_zeros``); NaN is never.

        Examples
        --------
        >>> DisclosureRules().small(np.array([0, 3, 5, np.nan])).tolist()
        [False, True, False, False]
        """
        counts = np.asarray(counts, dtype=float)
        small = (counts > 0) & (counts < self.min_count)
        return small | (counts == 0) if self.suppress_zeros else small

    def describe(self) -> str:
        """One line saying what the rules do."""
        parts = [f"counts {'0' if self.suppress_zeros else '1'}-{self.min_count - 1} suppressed"]
        if self.unit_min_n:
            parts.append(f"units with N < {self.unit_min_n} pooled")
        if self.rounding:
            parts.append(f"rounded to {self.rounding}")
        if self.totals_from_rounded:
            parts.append("totals from rounded cells")
        elif self.secondary:
            parts.append("secondary suppression")
        return f"{self.name}: " + ", ".join(parts)


PRESETS: dict[str, DisclosureRules] = {
    "norway": DisclosureRules(name="norway", min_count=5, unit_min_n=10),
    "opensafely": DisclosureRules(
        name="opensafely",
        min_count=8,
        unit_min_n=None,
        rounding=5,
        totals_from_rounded=True,
        secondary=False,
        marker="[REDACTED]",
        footnote="[REDACTED]: not shown for confidentiality (7 people or fewer, or to protect another cell)",
    ),
}


def resolve_rules(rules: str | DisclosureRules) -> DisclosureRules:
    """A preset name or a :class:`DisclosureRules` → the rules.

    Examples
    --------
    >>> resolve_rules("opensafely").min_count
    8
    """
    if isinstance(rules, DisclosureRules):
        return rules
    if isinstance(rules, str) and rules in PRESETS:
        return PRESETS[rules]
    raise PrivacyError(f"rules={rules!r}: expected one of {sorted(PRESETS)} or a DisclosureRules")


@dataclass
class ProtectedTable:
    """A table after disclosure control.

    Attributes
    ----------
    table : DataFrame
        Suppressed cells are NA; counts are nullable integers.
    log : DataFrame
        One row per action: ``row`` (index label), ``column``, ``action``, ``reason``.
    rules : DisclosureRules
    enabled : bool
    suppressed : DataFrame of bool
        Which cells of ``table`` were suppressed (shown with ``rules.marker``).
    stamp : str
        What was applied; says so loudly when protection was switched off.
    """

    table: pd.DataFrame
    log: pd.DataFrame
    rules: DisclosureRules
    enabled: bool = True
    suppressed: pd.DataFrame = field(default_factory=pd.DataFrame)
    stamp: str = ""

    def display(self) -> pd.DataFrame:
        """The table as shown to readers: suppressed cells replaced by the rules' neutral marker (``":"``)."""
        out = self.table.astype(object).copy()
        for col in self.suppressed.columns:
            mask = self.suppressed[col].to_numpy(dtype=bool)
            out.loc[mask, col] = self.rules.marker
        return out

    def to_csv(self, path: str | Path, **kwargs: Any) -> Path:
        """Write :meth:`display` as CSV; an unprotected table gets the stamp as its first line (``# ...``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as fh:
            if not self.enabled:
                fh.write(f"# {self.stamp}\n")
            self.display().to_csv(fh, index=kwargs.pop("index", False), **kwargs)
        return path

    def __repr__(self) -> str:
        return f"ProtectedTable({self.stamp})\n{self.display().to_string(max_rows=30)}"
