"""The shape every analysis result shares: a tidy ``.table``, a ``.definition``, ``.plot()`` and a protected export.

Modelled on lifelines' fitted objects: the numbers are in a DataFrame, the exact definition used (population,
method, timepoints, numerator, denominator) travels with them, and every export goes through disclosure control
unless the caller turns it off explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Definition:
    """What an estimate is: its population, method and the details a reader needs to reproduce it.

    Examples
    --------
    >>> d = Definition(population="courses ended 2021-2023", method="paired t-test", details={"ci": "95 %"})
    >>> print(d.to_text())
    Population: courses ended 2021-2023
    Method: paired t-test
    ci: 95 %
    """

    population: str
    method: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The definition as plain data."""
        return {"population": self.population, "method": self.method, **dict(self.details)}

    def to_text(self) -> str:
        """The definition as a few readable lines."""
        lines = [f"Population: {self.population}", f"Method: {self.method}"]
        lines += [f"{k}: {v}" for k, v in self.details.items()]
        return "\n".join(lines)


class Result:
    """Base class of analysis results.

    Subclasses set ``table`` (tidy DataFrame), ``definition`` (:class:`Definition`), ``count_columns`` (columns
    holding counts of people or courses, which disclosure control may suppress) and ``derived_columns``
    (column → the count column(s) it was computed from, suppressed with them), where they apply
    ``complement_columns`` and ``partition_columns`` (see :func:`kvarus_research.privacy.protect`), and implement
    :meth:`plot`.
    """

    table: pd.DataFrame
    definition: Definition
    count_columns: Sequence[str] = ()
    derived_columns: Mapping[str, str | Sequence[str]] = {}
    #: Count column → its row total, when the difference counts people too ("x of n": n - x did not).
    complement_columns: Mapping[str, str] = {}
    #: Count column → (row-total column, category column(s)): rows differing only in the categories split the total.
    partition_columns: Mapping[str, tuple[str, str | Sequence[str]]] = {}
    #: Columns that identify a group (unit, region ...) for pooling small units.
    group_columns: Sequence[str] = ()
    #: (column, label) of the rows that total the groups (e.g. ``("group", "All")``): each count of an "All" row is
    #: the sum of the groups' counts, declared to ``protect`` as a margin.
    group_total: tuple[str, Any] | None = None
    #: Columns that only describe the group (e.g. ``group_variable``, ``group_label``): left out of the dimensions
    #: when the group total is declared, since they differ between the "All" rows and the groups.
    group_label_columns: Sequence[str] = ()

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:  # pragma: no cover - overridden
        """Draw the result with matplotlib and return the Axes (or Figure)."""
        raise NotImplementedError

    def protected(self, rules: Any = "norway", *, enabled: bool = True) -> Any:
        """The table after disclosure control (:func:`kvarus_research.privacy.protect`), with the structure the
        result declares (complements, partitions, the groups' total)."""
        from kvarus_research.privacy import protect

        table, aside = self.table, []
        margins = {}
        if self.group_total is not None and enabled:
            column, label = self.group_total
            groups = table[column]
            if (groups == label).any() and (groups != label).any():
                margins = {column: label}
                aside = [c for c in self.group_label_columns if c in table.columns]
                table = table.drop(columns=aside)
        p = protect(
            table,
            counts=list(self.count_columns),
            derived=dict(self.derived_columns),
            complements=dict(self.complement_columns),
            partitions=dict(self.partition_columns),
            margins=margins,
            rules=rules,
            enabled=enabled,
        )
        if aside:  # the describing columns back in their places
            p.table = pd.concat([p.table, self.table[aside]], axis=1)[list(self.table.columns)]
        return p

    def to_csv(self, path: str | Path, rules: Any = "norway", *, protect: bool = True) -> Path:
        """Write the table as CSV after disclosure control (``protect=False`` writes it raw, stamped as such)."""
        path = Path(path)
        prot = self.protected(rules, enabled=protect)
        prot.to_csv(path)
        return path

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(\n{self.definition.to_text()}\n\n{self.table.to_string(max_rows=20)}\n)"
        )
