"""An independent reader-attack on a folder of published CSVs (written apart from the library).

The attacker knows only what a careful reader of the published files knows: the CSVs themselves and what their
columns mean (read from the files and the definitions that come with them). It imports nothing from
``kvarus_research``: every relation between cells is encoded here, from scratch.

Model
-----
Every suppressed cell of a count column (any non-numeric, non-empty text: ``:``, ``<5``, ``[REDACTED]``) is an
unknown. Counts that are not printed at all but that the published cells are sums of (a unit's count in a year in
which it was pooled, the units that never appear by name) are latent unknowns. All unknowns are non-negative
reals (the integers relaxed). Each relation is a linear equation or inequality; :meth:`Attack.bounds` then
bounds every hidden count with ``scipy.optimize.linprog`` (HiGHS): the smallest and largest value it can take
with every relation holding.

Relations (see the ``add_*`` functions):

- indicator-style tables (``level, group, unit_id, region, year, n_units, numerator, denominator, missing``):
  each unit row, pooled row, region row and national row, per year and over all years, is a sum of per
  unit-year latents (units pooled in a year are unknown parts of the pooled and region rows; units never named
  are one latent per region and year); listed units have a denominator >= the pooling limit, pooled ones one
  below it (per year and over all years); the number of pooled units in a region (``n_units`` minus the units
  listed) bounds the pooled part and makes it zero when no unit of the region was pooled; an absent row has
  denominator 0; numerator <= denominator in every latent; a published proportion gives
  numerator = proportion x denominator; a published Wilson interval beside a published denominator gives the
  numerator back.
- across files, by quantity names shared between tables: a completeness table's "answered" count is the
  denominator of the indicator on that item, same unit and year; its population is the indicator's
  denominator + missing, and the same for every item asked at the first measurement point; exclusion files'
  "in denominator" and "answer missing" are the national all-years denominator and missing.
- coverage: unit rows, regions (units mapped to regions by their names in the indicator tables; units of unknown
  region as slack) and nation per year and all years; coverage = (registered + opted out) / expected and coverage
  after opt-outs = registered / expected; registered courses >= the courses of the completeness table on course
  endings (same unit, same start year).
- network work: per unit and year, meetings = the meeting row's numerator = the denominator of invited, took
  part, not invited and place; answered - meetings = the reason rows' denominator; invited + not invited =
  meetings per role; places and reasons sum to at most their denominator; all years = sum of years.
- report tables: transitions (destinations sum to ``n_from``, shares), reliable change (categories sum to
  ``n_total``, shares), Table 1 (levels + missing = the group's n, groups sum to Overall, percentages of the
  non-missing), the cohort flow (before - excluded = after, one step's after = the next step's before) and the
  registry summary (courses and opted-out courses = the flow's first step).

Example
-------
>>> import pandas as pd
>>> att = Attack()
>>> t = pd.DataFrame({"a": ["2", ":"], "total": ["5", "5"]}, dtype=str)
>>> x = [att.cell("t.csv", i, "a", t.loc[i, "a"]) for i in range(2)]
>>> att.eq(x[0] + x[1], Lin.const(5))
>>> att.bounds()[["lower", "upper"]].values.tolist()
[[3.0, 3.0]]
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linprog
from scipy.sparse.csgraph import connected_components

Z95 = 1.959963984540054
INF = math.inf


# ---------------------------------------------------------------------------------------------- linear algebra
@dataclass
class Lin:
    """A linear expression ``sum(coef * var) + const`` over the attack's unknowns."""

    terms: dict[int, float] = field(default_factory=dict)
    constant: float = 0.0

    @staticmethod
    def const(value: float) -> Lin:
        return Lin({}, float(value))

    @staticmethod
    def var(index: int) -> Lin:
        return Lin({index: 1.0}, 0.0)

    def __add__(self, other: Lin) -> Lin:
        terms = dict(self.terms)
        for k, v in other.terms.items():
            terms[k] = terms.get(k, 0.0) + v
        return Lin(terms, self.constant + other.constant)

    def __sub__(self, other: Lin) -> Lin:
        return self + other * -1.0

    def __mul__(self, s: float) -> Lin:
        return Lin({k: v * s for k, v in self.terms.items()}, self.constant * s)

    @staticmethod
    def total(items: Iterable[Lin]) -> Lin:
        out = Lin()
        for it in items:
            out = out + it
        return out


def parse_count(text: object) -> float | None:
    """A published count as a float, ``None`` when hidden (any non-numeric text), ``nan`` when empty."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return math.nan
    s = str(text).strip()
    if s == "" or s.lower() in ("nan", "<na>", "none"):
        return math.nan
    try:
        return float(s)
    except ValueError:
        return None


def wilson(x: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (written here from the formula, independent of the library)."""
    x, n = np.asarray(x, float), np.asarray(n, float)
    p = x / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


# ---------------------------------------------------------------------------------------------- the attack
class Attack:
    """Unknowns, relations and the LP bounds of every hidden count.

    ``cell(file, row, column, text)`` returns the cell as a :class:`Lin` (a constant when published, a new
    hidden unknown otherwise); ``latent(key)`` an unprinted count; ``eq`` / ``le`` add relations.
    """

    def __init__(self) -> None:
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.keys: dict[tuple, int] = {}
        self.hidden: dict[tuple[str, int, str], int] = {}
        self.eqs: list[Lin] = []
        self.les: list[Lin] = []

    # unknowns
    def _new(self, key: tuple, lo: float = 0.0, hi: float = INF) -> int:
        i = len(self.lo)
        self.lo.append(lo)
        self.hi.append(hi)
        self.keys[key] = i
        return i

    def latent(self, *key: object) -> Lin:
        """The unprinted count named ``key`` (created on first use, >= 0)."""
        k = ("latent", *key)
        i = self.keys.get(k)
        return Lin.var(self._new(k) if i is None else i)

    def cell(self, file: str, row: int, column: str, text: object) -> Lin | None:
        """A count cell: its value when published, a hidden unknown otherwise; ``None`` when empty."""
        v = parse_count(text)
        if v is None:
            k = (file, int(row), column)
            i = self.hidden.get(k)
            if i is None:
                i = self._new(("cell", *k))
                self.hidden[k] = i
            return Lin.var(i)
        if math.isnan(v):
            return None
        return Lin.const(v)

    def bound(self, expr: Lin, lo: float = -INF, hi: float = INF) -> None:
        """``lo <= expr <= hi`` (a variable bound when ``expr`` is one unknown)."""
        if len(expr.terms) == 1 and next(iter(expr.terms.values())) == 1.0:
            (i,) = expr.terms
            self.lo[i] = max(self.lo[i], lo - expr.constant)
            self.hi[i] = min(self.hi[i], hi - expr.constant)
            return
        if hi < INF:
            self.le(expr, Lin.const(hi))
        if lo > -INF:
            self.le(Lin.const(lo), expr)

    def eq(self, a: Lin, b: Lin) -> None:
        """``a == b``."""
        d = a - b
        if d.terms:
            self.eqs.append(d)
        elif abs(d.constant) > 1e-6:
            self.eqs.append(d)  # an inconsistent published pair: keeps the LP infeasible, loudly

    def le(self, a: Lin, b: Lin) -> None:
        """``a <= b``."""
        d = a - b
        if d.terms:
            self.les.append(d)

    # solving
    def _matrix(self, rows: list[Lin]) -> tuple[sparse.csr_matrix, np.ndarray]:
        r, c, v, b = [], [], [], []
        for k, e in enumerate(rows):
            for i, coef in e.terms.items():
                r.append(k)
                c.append(i)
                v.append(coef)
            b.append(-e.constant)
        m = sparse.csr_matrix((v, (r, c)), shape=(len(rows), len(self.lo)))
        return m, np.asarray(b, float)

    def bounds(
        self, *, truth: dict[tuple[str, int, str], float] | None = None, spread: int = 4, seed: int = 0
    ) -> pd.DataFrame:
        """Lower and upper bound of every hidden count, one row per hidden cell.

        The relations split into independent blocks (connected components of unknowns sharing a relation); each
        block is solved on its own. LPs are run only where they can change the verdict: hidden cells in no
        relation keep their variable bounds; every LP's solution widens the range seen for every cell of its
        block (``spread`` random objectives per block first), and a cell for which a value <= 0 or >= 5 has been
        seen can be neither pinned to a small value nor to a range inside 1..4, so it is not solved further (its
        ``lower`` / ``upper`` are then the seen range, ``exact=False``; ``pinned`` is meaningful where ``exact``).
        ``truth`` (hidden cell -> true value) adds ``true`` and checks that the true
        values satisfy every relation (the attacker's relations must be true ones).
        """
        n = len(self.lo)
        a_eq, b_eq = self._matrix(self.eqs)
        a_ub, b_ub = self._matrix(self.les)
        lo_all, hi_all = np.array(self.lo, float), np.array(self.hi, float)
        cells = list(self.hidden.items())
        idx = np.array([i for _, i in cells], dtype=int)
        where = {i: k for k, i in enumerate(idx)}
        both = sparse.vstack([a_eq, a_ub]).tocsr()
        used = np.zeros(n, bool)
        used[np.unique(both.indices)] = True
        pattern = (both != 0).astype(np.int8)
        _, label = connected_components(pattern.T @ pattern, directed=False)
        row_eq = label[a_eq.indices[a_eq.indptr[:-1]]] if a_eq.shape[0] else np.zeros(0, int)
        row_ub = label[a_ub.indices[a_ub.indptr[:-1]]] if a_ub.shape[0] else np.zeros(0, int)
        lower, upper = lo_all[idx].copy(), hi_all[idx].copy()
        seen_lo, seen_hi = np.full(len(idx), INF), np.full(len(idx), -INF)
        done_lo, done_hi = ~used[idx], ~used[idx]
        rng = np.random.default_rng(seed)
        self.lp_count = 0
        truth_hits = [(i, truth[k]) for k, i in cells if k in truth] if truth is not None else []
        for comp in np.unique(label[idx[used[idx]]]):
            cols = np.flatnonzero(label == comp)
            pos = {c: j for j, c in enumerate(cols)}
            eq_rows, ub_rows = np.flatnonzero(row_eq == comp), np.flatnonzero(row_ub == comp)
            kw = {"method": "highs"}
            if len(eq_rows):
                kw |= {"A_eq": a_eq[eq_rows][:, cols], "b_eq": b_eq[eq_rows]}
            if len(ub_rows):
                kw |= {"A_ub": a_ub[ub_rows][:, cols], "b_ub": b_ub[ub_rows]}
            bnds = [(lo_all[c], None if hi_all[c] == INF else hi_all[c]) for c in cols]
            mine = [where[c] for c in cols if c in where]  # positions in idx of this block's hidden cells
            local = np.array([pos[idx[k]] for k in mine], dtype=int)

            def solve(c: np.ndarray, b: list = bnds, kw: dict = kw) -> object:
                self.lp_count += 1
                return linprog(c, bounds=b, **kw)

            def harvest(x: np.ndarray, mine: list = mine, local: np.ndarray = local) -> None:
                seen_lo[mine] = np.minimum(seen_lo[mine], x[local])
                seen_hi[mine] = np.maximum(seen_hi[mine], x[local])

            if truth_hits:  # the true values must be feasible: else a relation here is false
                tb = list(bnds)
                for i, v in truth_hits:
                    if i in pos:
                        tb[pos[i]] = (v, v)
                r = solve(np.zeros(len(cols)), tb)
                if r.status != 0:
                    raise AssertionError(f"the true values violate the attacker's relations: {r.message}")
            r = solve(np.zeros(len(cols)))
            if r.status != 0:
                raise AssertionError(f"the published cells are inconsistent with the relations: {r.message}")
            harvest(r.x)
            objectives = [np.ones(len(local)), -np.ones(len(local))]
            objectives += [rng.choice([-1.0, 1.0], len(local)) for _ in range(spread)]
            for w in objectives:  # hidden counts as small / as large / mixed as they can be together
                c = np.zeros(len(cols))
                c[local] = w
                r = solve(c)
                if r.status == 0:
                    harvest(r.x)

            def safe(k: int) -> bool:  # no LP can make this cell a disclosed small count
                lo = lower[k] if done_lo[k] else seen_lo[k]
                hi = upper[k] if done_hi[k] else seen_hi[k]
                a, b = math.ceil(lo - 1e-6), math.floor(hi + 1e-6) if hi < INF else 10**9
                return a <= 0 or b >= 5

            for k, j in zip(mine, local):
                for sign in (1.0, -1.0):  # the least value first: 0 possible settles the cell
                    if safe(k):
                        break
                    c = np.zeros(len(cols))
                    c[j] = sign
                    r = solve(c)
                    if sign > 0:
                        done_lo[k] = True
                        lower[k] = r.x[j] if r.status == 0 else lower[k]
                    else:
                        done_hi[k] = True
                        upper[k] = INF if r.status == 3 else (r.x[j] if r.status == 0 else upper[k])
                    if r.status == 0:
                        harvest(r.x)
        out = pd.DataFrame(
            [{"file": f, "row": row, "column": col} for (f, row, col), _ in cells],
            columns=["file", "row", "column"],
        )
        out["lower"] = np.where(done_lo, lower, seen_lo)
        out["upper"] = np.where(done_hi, upper, seen_hi)
        out["exact"] = done_lo & done_hi
        out["in_relations"] = used[idx]
        if truth is not None:
            out["true"] = [truth.get(k, math.nan) for k, _ in cells]
        return judge(out)


def judge(b: pd.DataFrame) -> pd.DataFrame:
    """Add ``pinned`` (one integer left in ``[lower, upper]``: the count is recovered), ``small_range`` (every
    integer left is in 1..4) and ``disclosed`` (either, for a small count)."""
    lo = np.ceil(b["lower"].to_numpy(float) - 1e-6)
    hi = np.floor(np.minimum(b["upper"].to_numpy(float), 1e9) + 1e-6)
    exact = b["exact"].to_numpy(bool) if "exact" in b.columns else np.ones(len(b), bool)
    b = b.assign(pinned=((hi - lo) < 1) & exact)  # a range only seen (not solved) holds 0 or >= 5
    b["small_range"] = (lo >= 1) & (hi <= 4) & exact
    value = b["true"] if "true" in b.columns else pd.Series(np.where(b["pinned"], lo, np.nan), index=b.index)
    small = value.between(1, 4).to_numpy()
    b["disclosed"] = (b["pinned"].to_numpy() & small) | b["small_range"].to_numpy()
    return b


# ---------------------------------------------------------------------------------------------- reading
def read_csv(path: Path) -> pd.DataFrame:
    """A published CSV as text (nothing converted, empty cells stay empty)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _num(text: object) -> float | None:
    v = parse_count(text)
    return None if v is None or math.isnan(v) else v


def _year(text: object) -> int | None:
    s = str(text).strip()
    return int(float(s)) if s not in ("", "nan", "<NA>") else None


INDICATOR_COLUMNS = {"level", "group", "unit_id", "region", "year", "n_units", "numerator", "denominator"}


@dataclass
class UnitBook:
    """What the reader learns about units across files: id -> name and region, name -> id."""

    region: dict[str, str] = field(default_factory=dict)
    name: dict[str, str] = field(default_factory=dict)
    by_name: dict[str, str] = field(default_factory=dict)
    regions: set[str] = field(default_factory=set)

    def learn(self, t: pd.DataFrame) -> None:
        for _, r in t.iterrows():
            if r["level"] == "unit" and r["unit_id"] != "":
                self.region[r["unit_id"]] = r["region"]
                self.name[r["unit_id"]] = r["group"]
                self.by_name[r["group"]] = r["unit_id"]
            if r["level"] == "region":
                self.regions.add(r["group"])


# ---------------------------------------------------------------------------------------------- indicator tables
def add_indicator_table(
    att: Attack,
    file: str,
    t: pd.DataFrame,
    quantities: dict[str, str],
    family: str,
    years: list[int],
    book: UnitBook,
) -> None:
    """Relations of one indicator-style table (see the module docstring).

    ``quantities`` maps ``numerator`` / ``denominator`` / ``missing`` to the name of the count they hold (shared
    names link tables: the same name, unit and year is one unknown); ``family`` names the date the years count
    (tables of one family count the same courses in the same years); ``years`` are the family's years.
    """
    m = re.search(r"n < (\d+)", " ".join(t["group"]))
    limit = int(m.group(1)) if m else 10
    q_num, q_den = quantities["numerator"], quantities["denominator"]
    units = sorted(book.region)
    regions = sorted(book.regions)

    def lat(q: str, u: str, y: int) -> Lin:
        return att.latent(family, q, "unit", u, y)

    def rest(q: str, r: str, y: int) -> Lin:
        return att.latent(family, q, "rest", r, y)

    for y in years:  # numerator <= denominator in every latent
        for u in units:
            att.le(lat(q_num, u, y), lat(q_den, u, y))
        for r in regions:
            att.le(rest(q_num, r, y), rest(q_den, r, y))

    rows = {}
    for i, r in t.iterrows():
        rows[(r["level"], r["unit_id"] if r["level"] == "unit" else r["group"], _year(r["year"]))] = (i, r)
    listed = defaultdict(set)
    for lvl, key, y in rows:
        if lvl == "unit":
            listed[y].add(key)

    def region_year(q: str, r: str, y: int) -> Lin:
        return Lin.total(lat(q, u, y) for u in units if book.region[u] == r) + rest(q, r, y)

    def national_year(q: str, y: int) -> Lin:
        return Lin.total(region_year(q, r, y) for r in regions)

    def pooled_year(q: str, y: int) -> Lin:
        return Lin.total(lat(q, u, y) for u in units if u not in listed[y]) + Lin.total(
            rest(q, r, y) for r in regions
        )

    def expr(q: str, lvl: str, key: str, y: int | None) -> Lin:
        ys = years if y is None else [y]
        if lvl == "unit":
            return Lin.total(lat(q, key, yy) for yy in ys)
        if lvl == "region":
            return Lin.total(region_year(q, key, yy) for yy in ys)
        if lvl == "national":
            return Lin.total(national_year(q, yy) for yy in ys)
        if y is not None:
            return pooled_year(q, y)
        return Lin.total(lat(q, u, yy) for u in units if u not in listed[None] for yy in years) + Lin.total(
            rest(q, r, yy) for r in regions for yy in years
        )

    # published and hidden cells
    for (lvl, key, y), (i, r) in rows.items():
        cells = {}
        for col, q in quantities.items():
            c = att.cell(file, i, col, r[col])
            if c is not None:
                att.eq(c, expr(q, lvl, key, y))
                cells[col] = c
        if lvl == "unit":
            att.bound(expr(q_den, lvl, key, y), lo=limit)
        p = _num(r.get("proportion", ""))
        if p is not None and "numerator" in cells:
            att.eq(cells["numerator"], cells["denominator"] * p)
        elif p is None and _num(r.get("ci_low", "")) is not None:
            n = _num(r["denominator"])
            if n is not None and n > 0:  # a Wilson interval beside a published n gives x back
                xs = np.arange(int(n) + 1)
                lo, hi = wilson(xs, np.full(len(xs), n))
                ok = np.abs(lo - float(r["ci_low"])) < 1e-9
                if ok.sum() == 1:
                    att.eq(cells["numerator"], Lin.const(float(xs[ok][0])))
    # rows the table does not print: denominator 0 (or, for units, pooled: denominator below the limit)
    for y in [*years, None]:
        if ("national", "Norway", y) not in rows:
            att.eq(expr(q_den, "national", "Norway", y), Lin.const(0))
        if ("pooled", f"Pooled units (n < {limit})", y) not in rows:
            att.eq(expr(q_den, "pooled", "", y), Lin.const(0))
        for reg in regions:
            if ("region", reg, y) not in rows:
                att.eq(expr(q_den, "region", reg, y), Lin.const(0))
        for u in units:
            if u not in listed[y]:
                att.bound(expr(q_den, "unit", u, y), hi=limit - 1)
    # n_units: how many units of a region were pooled bounds (or zeroes) the pooled part
    for (lvl, key, y), (_, r) in rows.items():
        if lvl != "region" or y is None:
            continue
        k = int(float(r["n_units"])) - sum(1 for u in listed[y] if book.region.get(u) == key)
        pooled_part = {
            q: Lin.total(lat(q, u, y) for u in units if book.region[u] == key and u not in listed[y])
            + rest(q, key, y)
            for q in set(quantities.values())
        }
        if k <= 0:
            for e in pooled_part.values():
                att.eq(e, Lin.const(0))
        else:
            att.le(pooled_part[q_den], Lin.const(k * (limit - 1)))


def link_first_measurement(att: Attack, items: list[str], years: list[int], book: UnitBook) -> None:
    """First-measurement tables: population = answered(item) + missing(item) for every item, unit and year."""
    for y in years:
        for kind, keys in (("unit", sorted(book.region)), ("rest", sorted(book.regions))):
            for k in keys:
                pop = att.latent("mp", "population", kind, k, y)
                for item in items:
                    ans = att.latent("mp", f"answered:{item}", kind, k, y)
                    miss = att.latent("mp", f"missing:{item}", kind, k, y)
                    att.eq(pop, ans + miss)


def add_exclusions(
    att: Attack, file: str, t: pd.DataFrame, family: str, quantities: dict[str, str], years, book
) -> None:
    """An exclusion count file: "in denominator" and "answer missing" are national all-years totals."""
    for i, r in t.iterrows():
        q = {"in denominator": quantities["denominator"], "answer missing": quantities.get("missing")}.get(
            r["reason"]
        )
        c = att.cell(file, i, "n", r["n"])
        if q is None or c is None:
            continue
        total = Lin.total(
            att.latent(family, q, "unit", u, y) for u in sorted(book.region) for y in years
        ) + Lin.total(att.latent(family, q, "rest", g, y) for g in sorted(book.regions) for y in years)
        att.eq(c, total)


# ---------------------------------------------------------------------------------------------- coverage
def add_coverage(att: Attack, file: str, t: pd.DataFrame, book: UnitBook, ending_years: list[int]) -> None:
    """Coverage: units, regions, nation, years; the two coverage ratios; registered >= ending population."""
    qs = ("expected", "registered", "opted_out")
    years = sorted({y for y in map(_year, t["year"]) if y is not None})
    names = sorted(set(t.loc[t["level"] == "unit", "group"]))
    regions = sorted(set(t.loc[t["level"] == "region", "group"]) | book.regions)
    region_of = {nm: book.region.get(book.by_name.get(nm, ""), None) for nm in names}
    listed = {(r["group"], _year(r["year"])) for _, r in t.iterrows() if r["level"] == "unit"}

    def lat(q, nm, y):
        return att.latent("coverage", q, nm, y)

    def unseen(q, reg, y):  # units never printed (expected 0 in every year)
        return att.latent("coverage", q, "unseen", reg, y)

    def assigned(q, reg, y):  # units of unknown region, as far as they count in region reg
        return att.latent("coverage", q, "assigned", reg, y)

    def region_year(q, reg, y):
        own = Lin.total(lat(q, nm, y) for nm in names if region_of[nm] == reg)
        return own + unseen(q, reg, y) + assigned(q, reg, y)

    for y in years:
        for q in qs:
            unknown = Lin.total(lat(q, nm, y) for nm in names if region_of[nm] is None)
            att.eq(Lin.total(assigned(q, reg, y) for reg in regions), unknown)
            for reg in regions:
                if q == "expected":
                    att.eq(unseen(q, reg, y), Lin.const(0))
        for nm in names:
            if (nm, y) not in listed:
                att.eq(lat("expected", nm, y), Lin.const(0))

    def expr(q, lvl, key, y):
        ys = years if y is None else [y]
        if lvl == "unit":
            return Lin.total(lat(q, key, yy) for yy in ys)
        if lvl == "region":
            return Lin.total(region_year(q, key, yy) for yy in ys)
        return Lin.total(region_year(q, reg, yy) for reg in regions for yy in ys)

    for i, r in t.iterrows():
        y = _year(r["year"])
        c = {q: att.cell(file, i, q, r[q]) for q in qs}
        for q in qs:
            att.eq(c[q], expr(q, r["level"], r["group"], y))
        p = _num(r["coverage"])
        if p is not None:
            att.eq(c["registered"] + c["opted_out"], c["expected"] * p)
        p = _num(r["coverage_after_opt_outs"])
        if p is not None:
            att.eq(c["registered"], c["expected"] * p)
    for nm in names:  # registered courses include the ending-completeness population (same start year)
        u = book.by_name.get(nm)
        if u is None:
            continue
        for y in years:
            if y in ending_years:
                att.le(att.latent("start", "population", "unit", u, y), lat("registered", nm, y))


# ---------------------------------------------------------------------------------------------- network work
def add_network(att: Attack, file: str, t: pd.DataFrame) -> None:
    """Network work per unit and year (see the module docstring)."""
    years = sorted({y for y in map(_year, t["year"]) if y is not None})
    units = sorted(set(t["unit_id"]))
    present = defaultdict(set)
    cats = defaultdict(set)
    for _, r in t.iterrows():
        present[(r["unit_id"], _year(r["year"]))].add(r["measure"])
        cats[r["measure"]].add((r["category"], r["key"]))

    def lat(q, u, y):
        return att.latent("network", q, u, y)

    def over(q, u, y):
        return Lin.total(lat(q, u, yy) for yy in (years if y is None else [y]))

    for u in units:
        for y in years:
            answered, meetings = lat("answered", u, y), lat("meetings", u, y)
            att.le(meetings, answered)
            have = present.get((u, y), set())
            if "meeting" not in have:
                att.eq(answered, Lin.const(0))
            if not have & {"invited", "took_part", "not_invited", "place"}:
                att.eq(meetings, Lin.const(0))
            if "reason" not in have:
                att.eq(answered - meetings, Lin.const(0))
            for measure, cs in cats.items():
                den = answered if measure == "meeting" else meetings
                den = answered - meetings if measure == "reason" else den
                for cat, _ in cs:
                    att.le(lat((measure, cat), u, y), den)
            for measure in ("place", "reason"):
                den = meetings if measure == "place" else answered - meetings
                att.le(Lin.total(lat((measure, c), u, y) for c, _ in cats.get(measure, ())), den)
            for cat, key in cats.get("invited", ()):
                other = [c for c, k in cats.get("not_invited", ()) if k == key]
                if other:
                    att.eq(lat(("invited", cat), u, y) + lat(("not_invited", other[0]), u, y), meetings)
    for i, r in t.iterrows():
        u, y, measure = r["unit_id"], _year(r["year"]), r["measure"]
        num = att.cell(file, i, "numerator", r["numerator"])
        den = att.cell(file, i, "denominator", r["denominator"])
        if measure == "meeting":
            att.eq(num, over("meetings", u, y))
            att.eq(den, over("answered", u, y))
        else:
            att.eq(num, over((measure, r["category"]), u, y))
            att.eq(
                den,
                over("meetings", u, y)
                if measure != "reason"
                else over("answered", u, y) - over("meetings", u, y),
            )
        p = _num(r["proportion"])
        if p is not None:
            att.eq(num, den * p)


# ---------------------------------------------------------------------------------------------- report tables
def add_share_table(
    att: Attack,
    file: str,
    t: pd.DataFrame,
    part: str,
    whole: str,
    share: str,
    by: list[str],
    scale: float = 1,
) -> None:
    """Categories (``part``) of one group (``by``) sum to its ``whole``; a published share gives the part."""
    for _, g in t.groupby(by, sort=False):
        parts, wholes = [], []
        for i, r in g.iterrows():
            x, n = att.cell(file, i, part, r[part]), att.cell(file, i, whole, r[whole])
            parts.append(x)
            wholes.append(n)
            att.le(x, n)
            p = _num(r[share])
            if p is not None:
                att.eq(x * scale, n * p)
        for n in wholes[1:]:
            att.eq(n, wholes[0])
        att.eq(Lin.total(parts), wholes[0])


def add_table1(att: Attack, file: str, t: pd.DataFrame) -> None:
    """Table 1: per variable and group, levels + missing = the group's n; groups sum to Overall; percent of the
    non-missing."""
    groups = list(dict.fromkeys(t["group"]))
    size = {}
    for i, r in t[t["variable"] == "n"].iterrows():
        size[r["group"]] = att.cell(file, i, "n", r["n"])
    others = [g for g in groups if g != "Overall"]
    if "Overall" in size and others:
        att.eq(size["Overall"], Lin.total(size[g] for g in others if g in size))
    cells = {}
    for (var, grp), g in t[t["variable"] != "n"].groupby(["variable", "group"], sort=False):
        levels = g[g["level"] != ""]
        miss = None
        for i, r in g.iterrows():
            m = att.cell(file, i, "missing", r["missing"])
            if m is not None:
                miss = m
        if len(levels) == 0 or grp not in size:
            continue
        miss = miss or Lin.const(0)
        xs = []
        for i, r in levels.iterrows():
            x = att.cell(file, i, "n", r["n"])
            if x is None:
                continue
            xs.append(x)
            cells[(var, r["level"], grp)] = x
            p = _num(r["percent"])
            if p is not None:
                att.eq(x * 100.0, (size[grp] - miss) * p)
        att.eq(Lin.total(xs) + miss, size[grp])
        cells[(var, "", grp)] = miss
    for (var, level, grp), x in cells.items():
        if grp != "Overall" or not others:
            continue
        parts = [cells.get((var, level, g)) for g in others]
        if all(p is not None for p in parts):
            att.eq(x, Lin.total(parts))


def add_flow(att: Attack, file: str, t: pd.DataFrame) -> dict[str, Lin]:
    """Cohort flow: before - excluded = after; a step's after = the next step's before."""
    prev = None
    first = {}
    for i, r in t.iterrows():
        b, a, x = (att.cell(file, i, c, r[c]) for c in ("n_before", "n_after", "n_excluded"))
        att.eq(b - x, a)
        if prev is not None:
            att.eq(prev, b)
        prev = a
        if not first:
            first = {"before": b, "after": a, "excluded": x}
    return first


# ---------------------------------------------------------------------------------------------- a folder
FIRST_MP_ITEMS = {"plan_beh": "plan_beh", "plan_krise": "plan_krise", "utbytte": "eval_utbytte"}


def _indicator_spec(stem: str) -> tuple[str, dict[str, str]] | None:
    """(family, quantities) of an indicator-style file, from its name."""
    s = stem.replace("indicator-", "").replace("-", "_")
    if s in FIRST_MP_ITEMS:
        item = FIRST_MP_ITEMS[s]
        return "mp", {
            "numerator": f"yes:{item}",
            "denominator": f"answered:{item}",
            "missing": f"missing:{item}",
        }
    if s.startswith("completeness_answered_"):
        item = s.removeprefix("completeness_answered_")
        return "mp", {
            "numerator": f"answered:{item}",
            "denominator": "population",
            "missing": f"cmiss:{item}",
        }
    if s == "completeness_ending_registered":
        return "start", {"numerator": "ended", "denominator": "population", "missing": "cmiss"}
    if s == "gjensidig":
        return "end", {"numerator": "mutual", "denominator": "ended34", "missing": "missing"}
    return None


def attack_folder(folder: str | Path, *, files: Iterable[str] | None = None) -> Attack:
    """Build the attack over every CSV under ``folder`` (or only the names in ``files``) read together."""
    paths = sorted(Path(folder).rglob("*.csv"))
    if files is not None:
        keep = set(files)
        paths = [p for p in paths if p.name in keep]
    tables = {p.name: read_csv(p) for p in paths}
    att = Attack()
    book = UnitBook()
    ind = {}
    for name, t in tables.items():
        if INDICATOR_COLUMNS <= set(t.columns):
            spec = _indicator_spec(Path(name).stem)
            if spec is not None:
                ind[name] = spec
                book.learn(t)
    years = defaultdict(set)
    for name, (fam, _) in ind.items():
        years[fam] |= {y for y in map(_year, tables[name]["year"]) if y is not None}
    years = {f: sorted(v) for f, v in years.items()}
    for name, (fam, qs) in ind.items():
        add_indicator_table(att, name, tables[name], qs, fam, years[fam], book)
    if "mp" in years:
        link_first_measurement(att, list(FIRST_MP_ITEMS.values()), years["mp"], book)
    first = {}
    for name, t in tables.items():
        stem = Path(name).stem
        if stem.endswith("_exclusions") and _indicator_spec(stem.removesuffix("_exclusions")):
            fam, qs = _indicator_spec(stem.removesuffix("_exclusions"))
            add_exclusions(att, name, t, fam, qs, years.get(fam, []), book)
        elif {"expected", "registered", "opted_out"} <= set(t.columns):
            add_coverage(att, name, t, book, years.get("start", []))
        elif {"measure", "category", "numerator", "denominator"} <= set(t.columns):
            add_network(att, name, t)
        elif {"from_timepoint", "to_timepoint", "n", "n_from"} <= set(t.columns):
            add_share_table(
                att, name, t, "n", "n_from", "share", ["from_timepoint", "to_timepoint", "from_code"]
            )
        elif {"category", "n", "n_total", "share"} <= set(t.columns):
            add_share_table(att, name, t, "n", "n_total", "share", ["outcome", "group"])
        elif {"variable", "level", "group", "n", "percent", "missing"} <= set(t.columns):
            add_table1(att, name, t)
        elif {"n_before", "n_after", "n_excluded"} <= set(t.columns):
            first = add_flow(att, name, t)
        else:  # any other table: its hidden counts enter no relation (they keep their bounds)
            for col in t.columns:
                if col.startswith("n") or col in ("rows", "missing"):
                    for i, v in t[col].items():
                        att.cell(name, i, col, v)
    if first and "registry-tables.csv" in tables:
        t = tables["registry-tables.csv"]
        for i, r in t.iterrows():
            c = att.cell("registry-tables.csv", i, "rows", r["rows"])
            if r["table"] == "courses":
                att.eq(c, first["after"])
            elif r["table"].startswith("opted-out courses"):
                att.eq(c, first["excluded"])
    return att


def truth_of(att: Attack, folder: str | Path) -> dict[tuple[str, int, str], float]:
    """The true values of the hidden cells, read from the same files written without protection."""
    out = {}
    cache = {}
    for f, row, col in att.hidden:
        if f not in cache:
            hits = list(Path(folder).rglob(f))
            cache[f] = read_csv(hits[0]) if hits else None
        t = cache[f]
        if t is not None and col in t.columns and row < len(t):
            v = _num(t.iloc[row][col])
            if v is not None:
                out[(f, row, col)] = v
    return out


def summary(b: pd.DataFrame) -> str:
    """How many hidden, how many small, how many pinned / disclosed, and which files."""
    small = b["true"].between(1, 4) if "true" in b.columns else pd.Series(False, index=b.index)
    lines = [
        f"hidden counts: {len(b)} (in a relation: {int(b['in_relations'].sum())}; true value 1-4: "
        f"{int(small.sum()) if 'true' in b.columns else 'unknown'}); small ones disclosed: "
        f"{int(b['disclosed'].sum())} (pinned {int((b['pinned'] & b['disclosed']).sum())}, "
        f"range within 1-4 {int(b['small_range'].sum())})"
    ]
    d = b[b["disclosed"]]
    if len(d):
        lines.append(
            "disclosed by file: " + ", ".join(f"{k} {v}" for k, v in d["file"].value_counts().items())
        )
    return "\n".join(lines)
