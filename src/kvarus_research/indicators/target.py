"""What an indicator is measured against: target levels (måloppnåelse) and unit display names.

The lowest layer of :mod:`kvarus_research.indicators`: the framework, results and figures all read it, and it reads
none of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from kvarus_research.errors import AnalysisError


@dataclass(frozen=True)
class Target:
    """Target levels of an indicator (måloppnåelse): high (green) at or above ``high``, moderate (yellow) at or
    above ``moderate``, low (red) below.

    Examples
    --------
    >>> t = Target(high=0.8, moderate=0.6)
    >>> t.level(0.8), t.level(0.7), t.level(0.59)
    ('high', 'moderate', 'low')
    """

    high: float
    moderate: float

    def __post_init__(self) -> None:
        if not 0 <= self.moderate <= self.high <= 1:
            raise AnalysisError(
                f"target levels must satisfy 0 <= moderate <= high <= 1, got moderate={self.moderate}, high={self.high}"
            )

    def level(self, p: float) -> str | None:
        """``"high"``, ``"moderate"`` or ``"low"`` for a proportion (``None`` when it is missing)."""
        if p is None or pd.isna(p):
            return None
        return "high" if p >= self.high else "moderate" if p >= self.moderate else "low"


def unit_names(units: pd.DataFrame) -> pd.Series:
    """unit_id → display name (``unit_name`` when present, else ``"Unit <id>"``).

    Examples
    --------
    >>> unit_names(pd.DataFrame({"unit_id": [1, 2], "unit_name": ["A", None]})).tolist()
    ['A', 'Unit 2']
    """
    ids = units["unit_id"]
    names = units["unit_name"] if "unit_name" in units.columns else pd.Series(pd.NA, index=units.index)
    fallback = "Unit " + ids.astype(str)
    return pd.Series(names.astype("string").fillna(fallback).to_numpy(), index=ids.to_numpy())
