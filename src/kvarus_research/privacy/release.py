"""A release: tables published together, protected as one system.

A reader combines every file of a report or an export: a count hidden in one table must not be given back by
another table that counts the same people. :class:`Release` collects tables (each with its counts, derived
columns and structure, see :mod:`kvarus_research.privacy.engine`), the links between them (:class:`Equal`: cells of
two tables that are the same count; :class:`SumOf`: a cell that is the sum of cells of other tables), and solves
the whole system at once, so the audit runs over every table and every link.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.errors import PrivacyError
from kvarus_research.privacy.engine import EXTRA, Builder, TableSpec, add_table, solve
from kvarus_research.privacy.rules import DisclosureRules, ProtectedTable, resolve_rules

#: A cell of a release: (table name, cell reference), the reference ``(row position, count column)`` or
#: ``("extra", j)`` for the table's ``j``-th never-shown cell (see :class:`~kvarus_research.privacy.engine.Linear`).
ReleaseCell = tuple[str, tuple[Any, Any]]

#: The table name of the release's own never-shown cells (:meth:`Release.add_unseen`).
UNSEEN = "(unseen)"


@dataclass(frozen=True)
class Equal:
    """Rows of table ``a`` and table ``b`` that agree on ``on`` hold the same count in ``columns`` (a → b).

    ``on`` maps a key column of ``a`` to a key column of ``b`` (a list means the same name in both).

    Examples
    --------
    >>> Equal("completeness", "indicator", on=["unit", "year"], columns={"answered": "denominator"}).b
    'indicator'
    """

    a: str
    b: str
    on: Sequence[str] | Mapping[str, str]
    columns: Mapping[str, str]


class Release:
    """Tables published together, protected together.

    Parameters
    ----------
    rules : {"norway", "opensafely"} or DisclosureRules

    Examples
    --------
    Two tables counting the same people: a unit's 3 is hidden in the first, and the second would give it back
    as 13 - 10 unless the release hides a partner there too.

    >>> a = pd.DataFrame({"unit": ["A", "B", "All"], "n": [3, 10, 13]})
    >>> b = pd.DataFrame({"unit": ["A", "B"], "n": [3, 10], "answered": [3, 9]})
    >>> from kvarus_research.privacy.engine import Margin
    >>> rel = Release(rules=DisclosureRules(unit_min_n=None))
    >>> rel.add("counts", a, counts="n", structure=[Margin("unit", "All")])
    >>> rel.add("answers", b, counts=["n", "answered"])
    >>> rel.link(Equal("counts", "answers", on=["unit"], columns={"n": "n"}))
    >>> out = rel.protect()
    >>> out["counts"].display()["n"].tolist(), out["answers"].display()["n"].tolist()
    ([':', ':', 13], [':', ':'])
    """

    def __init__(self, rules: str | DisclosureRules = "norway") -> None:
        self.rules = resolve_rules(rules)
        self.specs: dict[str, TableSpec] = {}
        self.links: list[Any] = []
        self._extra_sums: list[tuple[ReleaseCell, list[ReleaseCell]]] = []
        self._at_least: list[tuple[ReleaseCell, list[ReleaseCell]]] = []
        self._unseen: list[float] = []

    def add(
        self,
        name: str,
        table: pd.DataFrame,
        *,
        counts: str | Sequence[str],
        derived: Mapping[str, str | Sequence[str]] | None = None,
        structure: Sequence[Any] = (),
        priority: Sequence[int] | None = None,
    ) -> None:
        """Add a table under ``name`` with its count columns, derived columns and structure."""
        if name in self.specs:
            raise PrivacyError(f"release: a table named {name!r} is in the release already")
        spec = TableSpec(table, counts, dict(derived or {}), list(structure), priority)
        missing = [d for d in spec.derived if d not in spec.table.columns]
        for d in missing:
            spec.derived.pop(d)
        self.specs[name] = spec

    def add_spec(self, name: str, spec: TableSpec) -> None:
        """Add a table already described as a :class:`~kvarus_research.privacy.engine.TableSpec`."""
        if name in self.specs:
            raise PrivacyError(f"release: a table named {name!r} is in the release already")
        self.specs[name] = spec

    def link(self, link: Equal) -> None:
        """Declare cells of two tables that count the same people."""
        for t in (link.a, link.b):
            if t not in self.specs:
                raise PrivacyError(f"release: link to table {t!r}, which is not in the release")
        self.links.append(link)

    def add_sum(self, total: ReleaseCell, parts: Sequence[ReleaseCell]) -> None:
        """Declare that cell ``total`` = the sum of ``parts`` (cells as ``(table, (row, column))`` or
        ``(table, ("extra", j))``)."""
        self._extra_sums.append((total, list(parts)))

    def add_unseen(self, value: float) -> ReleaseCell:
        """A count the release never shows but a reader knows exists (the population several tables share):
        a cell for :meth:`add_sum`, audited like a published one (protected when small), never hidden as a partner.

        Examples
        --------
        Two tables whose rows split the same population of 20, which neither shows:

        >>> a = pd.DataFrame({"group": ["yes", "no"], "n": [3, 17]})
        >>> b = pd.DataFrame({"group": ["yes", "no"], "n": [8, 12]})
        >>> rel = Release(rules=DisclosureRules(unit_min_n=None))
        >>> rel.add("a", a, counts="n"); rel.add("b", b, counts="n")
        >>> pop = rel.add_unseen(20)
        >>> rel.add_sum(pop, [("a", (0, "n")), ("a", (1, "n"))]); rel.add_sum(pop, [("b", (0, "n")), ("b", (1, "n"))])
        >>> out = rel.protect()  # a's 3 alone = 8 + 12 - 17: its 17 goes too, and b says only that they add to 20
        >>> out["a"].display()["n"].tolist(), out["b"].display()["n"].tolist()
        ([':', ':'], [8, 12])
        """
        self._unseen.append(float(value))
        return (UNSEEN, ("extra", len(self._unseen) - 1))

    def add_at_least(self, total: ReleaseCell, parts: Sequence[ReleaseCell]) -> None:
        """Declare that cell ``total`` >= the sum of ``parts``: a reader who knows the relation bounds a hidden
        cell by it. The system gets ``total`` = ``parts`` + a never-shown slack cell (never negative); a relation
        the true values break is left out, as for :meth:`add_sum`.

        Examples
        --------
        Registered courses are at least the courses whose ending is due. Unit A's 3 due courses are hidden, and
        B's 12 with them; but B registered only 12, so B's due count is at most 12 and A's at least 15 - 12 = 3,
        and A's at most its 6 registered: the release hides the total 15 too (without the relation it is shown).

        >>> a = pd.DataFrame({"unit": ["A", "B", "All"], "due": [3, 12, 15]})
        >>> b = pd.DataFrame({"unit": ["A", "B", "All"], "registered": [6, 12, 18]})
        >>> from kvarus_research.privacy.engine import Margin
        >>> rel = Release(rules=DisclosureRules(unit_min_n=None))
        >>> rel.add("due", a, counts="due", structure=[Margin("unit", "All")])
        >>> rel.add("coverage", b, counts="registered", structure=[Margin("unit", "All")])
        >>> for i in range(3):
        ...     rel.add_at_least(("coverage", (i, "registered")), [("due", (i, "due"))])
        >>> out = rel.protect()
        >>> out["due"].display()["due"].tolist(), out["coverage"].display()["registered"].tolist()
        ([':', ':', ':'], [6, 12, 18])
        """
        self._at_least.append((total, list(parts)))

    def protect(self, *, enabled: bool = True) -> dict[str, ProtectedTable]:
        """Every table of the release after disclosure control, solved as one system."""
        from kvarus_research.privacy.disclosure import finish_table, log_hidden, protect

        r = self.rules
        if not enabled or not r.secondary or r.totals_from_rounded or r.rounding:
            # rounding rules publish no exact totals: each table alone (the same count rounds the same way)
            return {
                name: protect(
                    s.table,
                    counts=s.counts,
                    derived=s.derived,
                    structure=s.structure,
                    rules=r,
                    enabled=enabled,
                )  # fmt: skip
                for name, s in self.specs.items()
            }
        b = Builder()
        pos = {name: add_table(b, spec, r) for name, spec in self.specs.items()}
        pos[UNSEEN] = {EXTRA: b.add_cells(self._unseen, shown=False)}
        for link in self.links:
            for pa, pb in self._pairs(link, pos):
                b.add_sum(pa, [pb])
        for total, parts in self._extra_sums:
            b.add_sum(_position(pos, total), [_position(pos, p) for p in parts])
        for total, parts in self._at_least:
            t, ps = _position(pos, total), [_position(pos, p) for p in parts]
            slack = b.values[t] - sum(b.values[p] for p in ps)
            if slack >= 0:  # a relation the data break is no relation (as in add_sum)
                b.add_sum(t, [*ps, int(b.add_cells([slack], shown=False, small_ok=True)[0])])
        system = b.build(r)
        hidden = solve(system, r.min_count)
        out = {}
        for name, spec in self.specs.items():
            entries: list[dict[str, Any]] = []
            log_hidden(entries, spec.table.index, pos[name], system, hidden,
                       "would let a suppressed cell be recomputed from this table or another in the release")  # fmt: skip
            masks = {c: hidden[pos[name][c]] for c in spec.counts}
            stamp = f"disclosure control: {r.describe()} (protected together with {len(self.specs) - 1} other table(s))"
            out[name] = finish_table(spec.table, spec.counts, spec.derived, masks, r, entries, stamp)
        return out

    def _pairs(self, link: Equal, pos: Mapping[str, Mapping[str, np.ndarray]]) -> list[tuple[int, int]]:
        ta, tb = self.specs[link.a].table, self.specs[link.b].table
        on = dict(link.on) if isinstance(link.on, Mapping) else {k: k for k in link.on}
        keys_a = ta[list(on)].astype(str).agg("\x1f".join, axis=1)
        keys_b = tb[list(on.values())].astype(str).agg("\x1f".join, axis=1)
        where_b: dict[str, int] = {}
        for i, k in enumerate(keys_b):
            if k in where_b:
                raise PrivacyError(
                    f"release: link {link.a} -> {link.b}: the key {list(on.values())} is not unique in {link.b}"
                )
            where_b[k] = i
        pairs = []
        for i, k in enumerate(keys_a):
            j = where_b.get(k)
            if j is None:
                continue
            for ca, cb in link.columns.items():
                pairs.append((int(pos[link.a][ca][i]), int(pos[link.b][cb][j])))
        return pairs

    def write(self, folder: str | Path, *, enabled: bool = True) -> list[Path]:
        """Protect the release and write each table as ``<name>.csv`` in ``folder``."""
        folder = Path(folder)
        return [p.to_csv(folder / f"{name}.csv") for name, p in self.protect(enabled=enabled).items()]


def _position(pos: Mapping[str, Mapping[str, np.ndarray]], cell: ReleaseCell) -> int:
    name, (a, b) = cell
    if name not in pos:
        raise PrivacyError(f"release: a sum names table {name!r}, which is not in the release")
    return int(pos[name][EXTRA][b]) if a == "extra" else int(pos[name][b][a])
