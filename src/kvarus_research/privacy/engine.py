"""The one disclosure-control engine: tables as cells, their structure declared as data, one solver.

Every count of every table published together is a *cell*. What a reader knows about how cells relate is
declared as *structure*, not coded per table:

- :class:`Margin`: rows whose ``column`` holds the total label are the sums of the other rows (per count column);
- :class:`Complement`: "x of n" also says ``n - x`` did not, a count of people too (a never-shown cell);
- :class:`Partition`: rows that differ only in the category columns split the total they all carry;
- :class:`Linear`: any other sums (a hierarchy unit → region → nation with the pooled units' parts, chains of
  flow steps, years → all years), over the table's cells and never-shown cells of its own;
- :class:`Equal` (in a :class:`~kvarus_research.privacy.release.Release`): cells of two tables that count the same
  people.

:func:`solve` then applies one rule set to the whole system: small cells (published or never shown) are the cells
to protect; primary suppression hides the small published ones (and a count whose complement is small);
secondary suppression adds the fewest, smallest published cells until no protected cell is the only unknown of
a sum, no published total is the sum of hidden cells worth less than the threshold, and the exact audit
(:func:`kvarus_research.privacy.audit.pinned_cells`: linear programming over every sum, with every cell ``>= 0``)
pins no protected cell to a single value. Never-shown cells are always unknown to the reader, so a complement or a
pooled part is audited like a published cell but never picked as a partner.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.errors import PrivacyError
from kvarus_research.privacy.audit import Constraint, holds, pinned_cells
from kvarus_research.privacy.declarations import _check_pair
from kvarus_research.privacy.suppression import _nearest_partner, _pick

#: A cell of a table: (row position, count column); a never-shown cell of a structure: ("extra", j).
CellRef = tuple[Any, Any]


@dataclass(frozen=True)
class Margin:
    """Rows whose ``column`` equals ``total`` are the sums of the rows that differ from them only there.

    Examples
    --------
    >>> Margin("unit", "Total")
    Margin(column='unit', total='Total')
    """

    column: str
    total: Hashable = "All"


@dataclass(frozen=True)
class Complement:
    """``count`` is part of ``total`` on every row ("x of n"): ``total - count`` counts people too.

    Examples
    --------
    >>> Complement("numerator", "denominator").total
    'denominator'
    """

    count: str
    total: str


@dataclass(frozen=True)
class Partition:
    """Rows that differ only in ``categories`` split the value of ``total`` they all carry.

    Examples
    --------
    >>> Partition("n", "n_total", ("category",)).categories
    ('category',)
    """

    count: str
    total: str
    categories: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.categories, str):
            object.__setattr__(self, "categories", (self.categories,))


@dataclass(frozen=True)
class Linear:
    """Sums among the table's cells and never-shown cells of this structure (``extra``).

    ``sums``: a list of (total, parts), each a cell reference: ``(row, column)`` for a cell of the table (``row`` =
    position), ``("extra", j)`` for the ``j``-th never-shown cell, whose value is ``extra[j]``. ``priority``: the
    order in which the table's rows are given up as partners (lower first), one per row; ``extra_small``:
    whether a never-shown cell is protected when it is small (default: all are). ``lone_partners``: whether a
    hidden published cell left as the only unknown of one of these sums gets a partner even when it is not small
    (the default; it keeps patterns small in cross-classified tables). ``False`` leaves that to the exact audit,
    which hides fewer cells where many sums overlap (network work).

    Examples
    --------
    >>> s = Linear(sums=[((2, "n"), [(0, "n"), ("extra", 0)])], extra=[3.0])
    >>> len(s.sums), s.extra
    (1, (3.0,))
    """

    sums: Sequence[tuple[CellRef, Sequence[CellRef]]]
    extra: Sequence[float] = ()
    priority: Sequence[int] | None = None
    extra_small: Sequence[bool] | None = None
    name: str = "linked totals"
    lone_partners: bool = True
    #: what a reader knows of cells beyond ``>= 0``: ``(cell, lower, upper)``, e.g. a listed unit's denominator is
    #: at least the pooling limit, a pooled unit's below it
    bounds: Sequence[tuple[CellRef, float, float]] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", tuple(float(v) for v in self.extra))


@dataclass
class System:
    """Cells, sums and what the solver needs to know of each cell (built by :class:`Builder`)."""

    values: np.ndarray
    shown: np.ndarray
    protected: np.ndarray
    constraints: list[Constraint]
    priority: np.ndarray
    primary: np.ndarray
    reasons: dict[int, str] = field(default_factory=dict)
    #: per constraint: whether a lone hidden published cell that is not small gets a partner
    lone: list[bool] = field(default_factory=list)
    #: what a reader knows of each cell beyond ``>= 0`` (0 and inf: nothing), e.g. from a pooling rule
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None


class Builder:
    """Collects cells and sums; :meth:`build` gives the :class:`System`.

    Examples
    --------
    >>> b = Builder()
    >>> cells = b.add_cells([3.0, 10.0, 13.0])
    >>> b.add_sum(cells[2], cells[:2])
    >>> from kvarus_research.privacy.rules import resolve_rules
    >>> b.build(resolve_rules("norway")).constraints
    [(2, [0, 1])]
    """

    def __init__(self) -> None:
        self.values: list[float] = []
        self.shown: list[bool] = []
        self.small_ok: list[bool] = []  # a never-shown cell that need not be protected
        self.priority: list[int] = []
        self.constraints: list[Constraint] = []
        self.lone: list[bool] = []
        self.forced: dict[int, str] = {}
        self.known_bounds: dict[int, tuple[float, float]] = {}

    def add_cells(
        self, values: Sequence[float], *, shown: bool = True, priority: Any = 0, small_ok: bool = False
    ) -> np.ndarray:
        """Add cells; returns their positions. ``small_ok``: never-shown cells (``shown=False``) whose own small
        value needs no protection, such as the slack of an "at least" relation."""
        start = len(self.values)
        vals = [float(v) for v in values]
        self.values += vals
        self.shown += [shown] * len(vals)
        self.small_ok += [small_ok and not shown] * len(vals)
        pr = np.broadcast_to(np.asarray(priority, dtype=int), (len(vals),))
        self.priority += pr.tolist()
        return np.arange(start, start + len(vals))

    def add_sum(self, total: int, parts: Sequence[int], *, lone_partners: bool = True) -> None:
        """``total`` = the sum of ``parts`` (kept only when every value is known and it holds)."""
        k = (int(total), [int(p) for p in parts])
        if k[1] and holds(np.asarray(self.values, dtype=float), k):
            self.constraints.append(k)
            self.lone.append(lone_partners)

    def bound(self, position: int, lower: float = 0.0, upper: float = np.inf) -> None:
        """Declare what a reader knows of a cell: ``lower <= value <= upper`` (kept only when the value holds)."""
        v = self.values[int(position)]
        if lower - 1e-9 <= v <= upper + 1e-9:
            lo, hi = self.known_bounds.get(int(position), (0.0, np.inf))
            self.known_bounds[int(position)] = (max(lo, float(lower)), min(hi, float(upper)))

    def force(self, position: int, reason: str) -> None:
        """Hide a published cell from the start (a primary rule other than its own smallness)."""
        self.forced.setdefault(int(position), reason)

    def build(self, rules: Any) -> System:
        """The system under ``rules`` (a :class:`~kvarus_research.privacy.rules.DisclosureRules`)."""
        values = np.asarray(self.values, dtype=float)
        shown = np.asarray(self.shown, dtype=bool)
        small = np.asarray(rules.small(values), dtype=bool)
        protected = small & ~np.asarray(self.small_ok, dtype=bool)
        primary = small & shown
        reasons = {int(i): f"count below {rules.min_count} (primary)" for i in np.flatnonzero(primary)}
        for pos, reason in self.forced.items():
            if not primary[pos] and shown[pos]:
                primary[pos] = True
                reasons[pos] = reason
        priority = np.asarray(self.priority, dtype=int)
        lower = np.zeros(len(values))
        upper = np.full(len(values), np.inf)
        for pos, (lo, hi) in self.known_bounds.items():
            lower[pos], upper[pos] = lo, hi
        return System(
            values, shown, protected, list(self.constraints), priority, primary, reasons, list(self.lone),
            lower, upper,
        )  # fmt: skip


def solve(system: System, threshold: int) -> np.ndarray:
    """The published cells to hide (primary and secondary) so that no protected cell can be worked out.

    Parameters
    ----------
    system : System
    threshold : int
        The rules' minimum count: a published total that is the sum of hidden cells worth less than this tells
        each of them is small.

    Returns
    -------
    ndarray of bool
        Over all cells: the published cells to hide. Never-shown cells are always unknown to the reader.

    Examples
    --------
    >>> b = Builder(); c = b.add_cells([3.0, 10.0, 12.0, 25.0]); b.add_sum(c[3], c[:3])
    >>> from kvarus_research.privacy.rules import resolve_rules
    >>> solve(b.build(resolve_rules("norway")), 5).tolist()  # 3, and its smallest partner
    [True, True, False, False]
    """
    v, shown = system.values, system.shown
    sup = system.primary | ~shown  # what the reader does not know
    protected = system.protected & ~np.isnan(v)
    constraints = system.constraints
    if not constraints:
        return sup & shown
    member_of: dict[int, list[int]] = {}
    for k, (total, comps) in enumerate(constraints):
        for c in [total, *comps]:
            member_of.setdefault(c, []).append(k)
    exempt = ~protected
    priority = system.priority
    lone_rule = system.lone or [True] * len(constraints)
    while True:
        changed = True
        while changed:
            changed = False
            for (total, comps), any_lone in zip(constraints, lone_rule):
                cells = [*comps, total]
                hidden = [c for c in cells if sup[c]]
                if not hidden:
                    continue
                # a lone hidden published cell gets a partner whatever its value (patterns stay small that way,
                # unless the structure leaves it to the audit); a never-shown cell only when it is one to protect
                lone = len(hidden) == 1 and (protected[hidden[0]] or (any_lone and shown[hidden[0]]))
                part_sum = v[[c for c in comps if sup[c]]].sum()
                small_sum = not sup[total] and 0 < part_sum < threshold
                if lone or small_sum:
                    p, _ = _pick(cells, total, v, sup, member_of, constraints, priority)
                    if p is not None:
                        sup[p] = True
                        changed = True
        pinned = pinned_cells(
            v, sup, constraints, system.upper, exempt, small_below=threshold, lower=system.lower
        )
        added = False
        for cell in pinned:
            p = _nearest_partner(int(cell), v, sup, member_of, constraints, priority)
            if p is not None:
                sup[p] = True
                added = True
        if not added:
            if len(pinned):
                raise PrivacyError(
                    f"disclosure control: {len(pinned)} small count(s) stay recomputable and no published cell "
                    "is left to hide with them; check the declared structure"
                )
            return sup & shown


@dataclass
class TableSpec:
    """One table as the engine sees it: its counts, derived columns and structure.

    Examples
    --------
    >>> spec = TableSpec(pd.DataFrame({"n": [1, 2]}), counts=["n"])
    >>> spec.counts, spec.structure
    (['n'], [])
    """

    table: pd.DataFrame
    counts: list[str]
    derived: dict[str, list[str]] = field(default_factory=dict)
    structure: list[Any] = field(default_factory=list)
    priority: Sequence[int] | None = None

    def __post_init__(self) -> None:
        self.table = self.table.reset_index(drop=True)
        self.counts = [self.counts] if isinstance(self.counts, str) else list(self.counts)
        self.derived = {d: [s] if isinstance(s, str) else list(s) for d, s in dict(self.derived).items()}
        self.structure = list(self.structure)

    def dims(self) -> list[str]:
        """The columns that identify a row: neither counts, nor derived, nor float."""
        t = self.table
        return [
            c
            for c in t.columns
            if c not in self.counts and c not in self.derived and not pd.api.types.is_float_dtype(t[c])
        ]


def margin_sums(table: pd.DataFrame, column: str, total: Hashable, dims: Sequence[str]) -> list[Constraint]:
    """Row-position sums of a margin: within rows sharing the other dimensions, the total row = the others.

    Examples
    --------
    >>> t = pd.DataFrame({"unit": ["A", "B", "Total"], "n": [3, 10, 13]})
    >>> margin_sums(t, "unit", "Total", ["unit"])
    [(2, [0, 1])]
    """
    from kvarus_research.privacy.suppression import build_constraints

    return build_constraints(table, {column: total}, dims)


#: Key of the positions of a table's never-shown :class:`Linear` cells in what :func:`add_table` returns.
EXTRA = "\x00extra"


def add_table(b: Builder, spec: TableSpec, rules: Any) -> dict[str, np.ndarray]:
    """Add one table's cells and structure to ``b``; returns each count column's cell positions (by row), and
    under :data:`EXTRA` the positions of the never-shown cells of its :class:`Linear` structures, in order.

    Examples
    --------
    >>> from kvarus_research.privacy.rules import resolve_rules
    >>> b = Builder(); spec = TableSpec(pd.DataFrame({"x": [18, 30], "n": [20, 40]}), counts=["x", "n"],
    ...                                structure=[Complement("x", "n")])
    >>> cells = add_table(b, spec, resolve_rules("norway"))
    >>> solve(b.build(resolve_rules("norway")), 5)[cells["x"]].tolist()  # 20 - 18 = 2 did not
    [True, False]
    """
    t = spec.table
    m = len(t)
    dims = spec.dims()
    priority = np.zeros(m, dtype=int) if spec.priority is None else np.asarray(spec.priority, dtype=int)
    raw = {}
    for c in spec.counts:
        if c not in t.columns:
            raise PrivacyError(
                f"protect: count column {c!r} is not in the table (columns: {list(t.columns)})"
            )
        raw[c] = pd.to_numeric(t[c], errors="coerce").to_numpy(dtype=float)
        if (raw[c][~np.isnan(raw[c])] < 0).any():
            raise PrivacyError(f"protect: count column {c!r} holds negative values; counts must be >= 0")
    pos = {c: b.add_cells(raw[c], priority=priority) for c in spec.counts}
    pos[EXTRA] = np.zeros(0, dtype=int)
    for s in spec.structure:
        if isinstance(s, Margin):
            if s.column not in t.columns:
                raise PrivacyError(f"protect: margin column {s.column!r} is not in the table")
            for total, comps in margin_sums(t, s.column, s.total, dims):
                for c in spec.counts:
                    b.add_sum(pos[c][total], pos[c][comps])
        elif isinstance(s, Complement):
            _check_pair("complements", s.count, s.total, spec.counts)
            comp = raw[s.total] - raw[s.count]
            over = np.flatnonzero(comp < 0)
            if len(over):
                raise PrivacyError(
                    f"protect: {s.count!r} exceeds its row total {s.total!r} in {len(over)} row(s), first at row "
                    f"{over[0]}; a count cannot be larger than the total it is part of"
                )
            extra = b.add_cells(comp, shown=False, priority=0)
            small = rules.small(comp)
            for i in range(m):
                if np.isnan(comp[i]):
                    continue
                b.add_sum(pos[s.total][i], [pos[s.count][i], extra[i]])
                if small[i] and not rules.small(raw[s.count][i : i + 1])[0]:
                    b.force(
                        pos[s.count][i], f"complement {s.total} - {s.count} below {rules.min_count} (primary)"
                    )
        elif isinstance(s, Partition):
            _check_pair("partitions", s.count, s.total, spec.counts)
            missing = [c for c in s.categories if c not in dims]
            if missing:
                raise PrivacyError(
                    f"protect: partition categories {missing} are not dimension columns (dims={list(dims)})"
                )
            _add_partition(b, t, s, dims, pos, raw)
        elif isinstance(s, Linear):
            extra = b.add_cells(s.extra, shown=False, priority=0)
            pos[EXTRA] = np.r_[pos[EXTRA], extra]
            if s.extra_small is not None:
                for j, ok in enumerate(s.extra_small):
                    b.small_ok[extra[j]] = not ok
            if s.priority is not None:
                pr = np.asarray(s.priority, dtype=int)
                for c in spec.counts:
                    for i, p in zip(pos[c], pr):
                        b.priority[i] = int(p)

            for total, parts in s.sums:
                b.add_sum(
                    _ref(total, extra, pos),
                    [_ref(p, extra, pos) for p in parts],
                    lone_partners=s.lone_partners,
                )
            for ref, lo, hi in s.bounds:
                b.bound(_ref(ref, extra, pos), lo, hi)
        else:
            raise PrivacyError(
                f"protect: unknown structure {s!r}; use Margin, Complement, Partition or Linear"
            )
    return pos


def _ref(r: CellRef, extra: np.ndarray, pos: dict[str, np.ndarray]) -> int:
    return int(extra[r[1]]) if r[0] == "extra" else int(pos[r[1]][r[0]])


def _add_partition(
    b: Builder,
    t: pd.DataFrame,
    s: Partition,
    dims: Sequence[str],
    pos: dict[str, np.ndarray],
    raw: dict[str, np.ndarray],
) -> None:
    others = [d for d in dims if d not in s.categories]
    keys = [t[o].astype(str).to_numpy() for o in others] or [np.zeros(len(t), dtype=int)]
    for label, idx in pd.Series(np.arange(len(t))).groupby(keys, sort=False):
        rows = idx.to_numpy()
        v, tot = raw[s.count][rows], raw[s.total][rows]
        if np.isnan(v).any() or np.isnan(tot).any():
            continue
        if (tot != tot[0]).any() or v.sum() != tot[0]:
            what = "carry different totals" if (tot != tot[0]).any() else "do not"
            raise PrivacyError(  # no count in the message: it could be one the rules would hide
                f"protect: the rows of group {label} (rows {rows[0]}-{rows[-1]}) should add up to the total they "
                f"share, but {what}; check the partition (count column, total column, categories)"
            )
        first = pos[s.total][rows[0]]
        b.add_sum(first, pos[s.count][rows])
        for r in rows[1:]:
            b.add_sum(pos[s.total][r], [first])
