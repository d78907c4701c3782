"""The indicator framework: per-row numerator and denominator flags, aggregated per unit, region, nation and year.

Modelled on rapwhale (Rapporteket): an indicator is a function that returns, for each unit of analysis (a course
or a patient), whether it is in the denominator and whether it is in the numerator, so numerator and denominator
always come from the same rows. Rows left out of the denominator carry the reason they were left out, and those
reasons are counted (nothing is dropped silently).

A flags table (what an indicator's ``flags`` function returns) has one row per unit of analysis and the columns

==============  ===========================================================================================
``unit_id``     the unit the row is attributed to
``date``        the date of the registration used (decides the year / period)
``denominator`` bool: the row counts in the denominator
``numerator``   bool: the row counts in the numerator (only where ``denominator`` is true)
``exclusion``   the reason the row is not in the denominator (missing where it is)
==============  ===========================================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from kvarus_research.errors import AnalysisError
from kvarus_research.indicators.result import IndicatorResult
from kvarus_research.indicators.target import Target, unit_names
from kvarus_research.results import Definition
from kvarus_research.stats import CIMethod, proportion_ci

FLAG_COLUMNS: tuple[str, ...] = ("unit_id", "date", "denominator", "numerator", "exclusion")


@dataclass(frozen=True)
class Indicator:
    """A quality indicator: a flags function plus the words that define it.

    Parameters
    ----------
    key : str
        Short name (``"plan_beh"``); also the key of its target levels in a targets config.
    label : str
        Readable name used as plot title.
    flags : callable
        ``flags(registry) -> DataFrame`` with the columns in :data:`FLAG_COLUMNS` (see the module docstring).
    population, numerator, denominator : str
        The definition in words.
    unit_of_analysis : {"course", "patient"}
    registration : str
        Which registration is used (e.g. "the first measurement point of the course").
    target : Target, optional
        Default target levels (a targets config passed to :meth:`compute` overrides them).

    Examples
    --------
    A new indicator is a few lines: satisfaction 4-5 at the first active measurement point.

    >>> from kvarus_research.indicators.kvarus import first_measurement_flags
    >>> satisfied = Indicator(
    ...     key="tilfredshet", label="Satisfied with treatment",
    ...     flags=lambda reg: first_measurement_flags(reg, "tilfredshet", {4, 5}),
    ...     population="courses whose first measurement point has status active",
    ...     numerator="tilfredshet 4-5", denominator="courses answering tilfredshet",
    ...     unit_of_analysis="course", registration="first measurement point of the course")
    >>> satisfied.unit_of_analysis
    'course'
    """

    key: str
    label: str
    flags: Callable[[Any], pd.DataFrame]
    population: str
    numerator: str
    denominator: str
    unit_of_analysis: Literal["course", "patient"]
    registration: str
    target: Target | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def definition(self, *, ci_method: CIMethod = "wilson", n_limit: int = 10) -> Definition:
        """The definition carried by results of this indicator.

        Examples
        --------
        >>> from kvarus_research.indicators import CRISIS_PLAN
        >>> CRISIS_PLAN.definition(ci_method="exact").details["confidence interval"]
        '95 % exact (Clopper–Pearson)'
        """
        ci = "Wilson score" if ci_method == "wilson" else "exact (Clopper–Pearson)"
        details: dict[str, Any] = {
            "numerator": self.numerator,
            "denominator": self.denominator,
            "unit of analysis": self.unit_of_analysis,
            "registration used": self.registration,
            "confidence interval": f"95 % {ci}",
            "small units": f"units with denominator < {n_limit} pooled into one row per year",
        }
        if self.target is not None:
            details["target levels"] = (
                f"high >= {self.target.high:.0%}, moderate {self.target.moderate:.0%}-{self.target.high:.0%}, "
                f"low < {self.target.moderate:.0%}"
            )
        for i, note in enumerate(self.notes, 1):
            details[f"note {i}"] = note
        return Definition(population=self.population, method="proportion with per-row flags", details=details)

    def compute(
        self,
        data: Any,
        *,
        n_limit: int = 10,
        ci_method: CIMethod = "wilson",
        targets: Mapping[str, Target] | None = None,
    ) -> Any:
        """Compute the indicator on a registry or cohort (opted-out patients removed first).

        Returns an :class:`~kvarus_research.indicators.result.IndicatorResult` whose ``.table`` has one row per
        unit, pooled small units, region and the nation, for every year and for all years together.

        Examples
        --------
        >>> import kvarus_research as kr
        >>> from kvarus_research.indicators import TREATMENT_PLAN
        >>> res = TREATMENT_PLAN.compute(kr.synthetic.generate(n_courses=300, seed=1))
        >>> bool((res.table["numerator"] <= res.table["denominator"]).all())
        True
        """
        registry = as_registry(data)
        flags = check_flags(self.flags(registry), self.key)
        target = (targets or {}).get(self.key, self.target)
        table, parts = aggregate_with_parts(
            flags, registry.units, n_limit=n_limit, ci_method=ci_method, target=target
        )
        exclusions = count_exclusions(flags)
        return IndicatorResult(
            indicator=self,
            table=table,
            definition=self.definition(ci_method=ci_method, n_limit=n_limit),
            exclusions=exclusions,
            flags=flags[["unit_id", "date", "denominator", "numerator"]],
            units=registry.units,
            target=target,
            pooled_parts=parts,
            n_limit=n_limit,
            codebook=registry.codebook,
        )


def as_registry(data: Any) -> Any:
    """The registry behind ``data`` (a Registry or a Cohort), with opted-out patients removed.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> reg = kr.synthetic.generate(n_courses=100, seed=1)
    >>> bool(as_registry(reg).patients["reserved"].any())
    False
    """
    registry = getattr(data, "registry", data)
    if not hasattr(registry, "without_opt_outs"):
        raise AnalysisError(f"expected a Registry or a Cohort, got {type(data).__name__}")
    return registry.without_opt_outs()


def check_flags(flags: pd.DataFrame, key: str) -> pd.DataFrame:
    """Check a flags table against the contract; numerator rows outside the denominator are an error.

    Examples
    --------
    >>> f = pd.DataFrame({"unit_id": [1], "date": [pd.Timestamp("2021-01-01")], "denominator": [False],
    ...     "numerator": [False], "exclusion": [None]})
    >>> check_flags(f, "demo")
    Traceback (most recent call last):
    ...
    kvarus_research.errors.AnalysisError: indicator 'demo': 1 row(s) are left out of the denominator without a reason
    """
    missing = [c for c in FLAG_COLUMNS if c not in flags.columns]
    if missing:
        raise AnalysisError(
            f"indicator {key!r}: its flags table lacks column(s) {missing}; expected {FLAG_COLUMNS}"
        )
    num = flags["numerator"].to_numpy(dtype=bool)
    den = flags["denominator"].to_numpy(dtype=bool)
    if (num & ~den).any():
        raise AnalysisError(
            f"indicator {key!r}: {int((num & ~den).sum())} row(s) are in the numerator but not the denominator"
        )
    no_reason = ~den & flags["exclusion"].isna().to_numpy()
    if no_reason.any():
        raise AnalysisError(
            f"indicator {key!r}: {int(no_reason.sum())} row(s) are left out of the denominator without a reason"
        )
    return flags


def count_exclusions(flags: pd.DataFrame) -> pd.DataFrame:
    """Rows left out of the denominator, counted per reason (``reason``, ``n``), plus the rows kept.

    Examples
    --------
    >>> f = pd.DataFrame({"denominator": [True, False, False], "exclusion": [None, "answer missing",
    ...     "answer missing"]})
    >>> count_exclusions(f).to_dict("records")
    [{'reason': 'in denominator', 'n': 1}, {'reason': 'answer missing', 'n': 2}]
    """
    kept = int(flags["denominator"].to_numpy(dtype=bool).sum())
    counts = flags["exclusion"].dropna().astype(str).value_counts(sort=True)
    rows = [{"reason": "in denominator", "n": kept}]
    rows += [{"reason": r, "n": int(n)} for r, n in counts.items() if n > 0]
    return pd.DataFrame(rows, columns=["reason", "n"])


def _sum_by(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return (
        frame.groupby(keys, observed=True, sort=True)[["numerator", "denominator", "missing"]]
        .sum()
        .reset_index()
    )


def aggregate(
    flags: pd.DataFrame,
    units: pd.DataFrame,
    *,
    n_limit: int = 10,
    ci_method: CIMethod = "wilson",
    target: Target | None = None,
    missing_reason: str = "answer missing",
) -> pd.DataFrame:
    """Aggregate a flags table per unit (small units pooled), region and nation, per year and over all years.

    Parameters
    ----------
    flags : DataFrame
        See the module docstring.
    units : DataFrame
        ``unit_id`` with optional ``unit_name`` and ``region``.
    n_limit : int
        Units whose denominator (in that year, or over all years) is below this are pooled into one row whose
        ``n_units`` says how many units it holds (Ngrense, default 10).
    ci_method : {"wilson", "exact"}
    target : Target, optional
        Adds ``target_level`` (high / moderate / low) from the point estimate.
    missing_reason : str
        The exclusion reason counted in the ``missing`` column (answers missing at the registration used).

    Returns
    -------
    DataFrame
        ``level`` (unit / pooled / region / national), ``group``, ``unit_id``, ``region``, ``year`` (``<NA>`` =
        all years), ``n_units``, ``numerator``, ``denominator``, ``missing``, ``proportion``, ``ci_low``,
        ``ci_high``, ``target_level``.

    Examples
    --------
    >>> f = pd.DataFrame({"unit_id": [1] * 12 + [2] * 3, "date": pd.Timestamp("2021-05-01"),
    ...     "denominator": True, "numerator": [True] * 9 + [False] * 3 + [True, False, False],
    ...     "exclusion": None})
    >>> t = aggregate(f, pd.DataFrame({"unit_id": [1, 2], "unit_name": ["A", "B"], "region": ["R", "R"]}))
    >>> t.loc[t["year"].isna(), ["level", "group", "n_units", "numerator", "denominator"]].values.tolist()
    [['unit', 'A', 1, 9, 12], ['pooled', 'Pooled units (n < 10)', 1, 1, 3], ['region', 'R', 2, 10, 15], ['national', 'Norway', 2, 10, 15]]
    """
    return aggregate_with_parts(
        flags, units, n_limit=n_limit, ci_method=ci_method, target=target, missing_reason=missing_reason
    )[0]


def aggregate_with_parts(
    flags: pd.DataFrame,
    units: pd.DataFrame,
    *,
    n_limit: int = 10,
    ci_method: CIMethod = "wilson",
    target: Target | None = None,
    missing_reason: str = "answer missing",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`aggregate`, and the pooled units' own counts (``unit_id, region, year, numerator, denominator,
    missing``) for disclosure control of the linked totals; they are never published.

    Examples
    --------
    >>> f = pd.DataFrame({"unit_id": [1] * 12 + [2] * 3, "date": pd.Timestamp("2021-05-01"),
    ...     "denominator": True, "numerator": [True] * 9 + [False] * 3 + [True, False, False],
    ...     "exclusion": None})
    >>> t, parts = aggregate_with_parts(f, pd.DataFrame({"unit_id": [1, 2], "region": ["R", "R"]}))
    >>> parts[["unit_id", "numerator", "denominator"]].values.tolist()  # unit 2: 1 of 3, in 2021 and overall
    [[2, 1, 3], [2, 1, 3]]
    """
    den = flags["denominator"].to_numpy(dtype=bool)
    frame = pd.DataFrame(
        {
            "unit_id": flags["unit_id"].to_numpy(),
            "year": pd.DatetimeIndex(flags["date"]).year.astype("Int64"),
            "numerator": flags["numerator"].to_numpy(dtype=bool).astype(np.int64),
            "denominator": den.astype(np.int64),
            "missing": (flags["exclusion"].astype(object) == missing_reason)
            .to_numpy(dtype=bool)
            .astype(np.int64),
        }
    )
    frame = frame[frame["year"].notna()]
    regions = units.set_index("unit_id")["region"] if "region" in units.columns else pd.Series(dtype=object)
    names = unit_names(units)
    per_unit_year = _sum_by(frame, ["unit_id", "year"])
    per_unit_all = _sum_by(per_unit_year, ["unit_id"])
    per_unit_all["year"] = pd.array([pd.NA] * len(per_unit_all), dtype="Int64")
    per_unit = pd.concat([per_unit_year, per_unit_all], ignore_index=True)
    per_unit["region"] = per_unit["unit_id"].map(regions)
    per_unit["n_units"] = 1
    small = per_unit["denominator"] < n_limit
    big = per_unit[~small].assign(level="unit", group=lambda d: d["unit_id"].map(names).astype(str))
    big["unit_id"] = big["unit_id"].astype(object)
    big["region"] = big["region"].astype(object)
    pooled = (
        per_unit[small]
        .assign(year_key=lambda d: d["year"].fillna(-1))
        .groupby("year_key", sort=True)[["numerator", "denominator", "missing", "n_units"]]
        .sum()
        .reset_index()
    )
    pooled["year"] = pooled.pop("year_key").replace(-1, pd.NA).astype("Int64")
    pooled = pooled.assign(level="pooled", group=f"Pooled units (n < {n_limit})")
    per_unit["region_key"] = per_unit["region"].astype("string").fillna("(no region)")
    per_unit["year_key"] = per_unit["year"].fillna(-1)
    reg = per_unit.groupby(["region_key", "year_key"], sort=True)[
        ["numerator", "denominator", "missing", "n_units"]
    ].sum()
    reg = reg.reset_index().rename(columns={"region_key": "group"})
    reg["region"] = reg["group"]
    reg = reg.assign(level="region")
    nat = per_unit.groupby("year_key", sort=True)[["numerator", "denominator", "missing", "n_units"]].sum()
    nat = nat.reset_index().assign(level="national", group="Norway")
    for part in (reg, nat):
        part["year"] = part.pop("year_key").replace(-1, pd.NA).astype("Int64")
    parts = [p for p in (big, pooled, reg, nat) if len(p)] or [nat]
    table = pd.concat(parts, ignore_index=True)
    table = table[table["denominator"] > 0] if len(table) else table
    level_order = {"unit": 0, "pooled": 1, "region": 2, "national": 3}
    table = table.assign(_yr=table["year"].fillna(10**6), _lv=table["level"].map(level_order)).sort_values(
        ["_yr", "_lv", "group"], kind="stable"
    )
    table = table.drop(columns=["_yr", "_lv"]).reset_index(drop=True)
    x = table["numerator"].to_numpy(dtype=float)
    n = table["denominator"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["proportion"] = x / n
    table["ci_low"], table["ci_high"] = proportion_ci(x, n, ci_method)
    table["target_level"] = (
        [target.level(p) for p in table["proportion"]] if target is not None else [None] * len(table)
    )
    cols = ["level", "group", "unit_id", "region", "year", "n_units", "numerator", "denominator", "missing",
            "proportion", "ci_low", "ci_high", "target_level"]  # fmt: skip
    out = table.reindex(columns=cols)  # unit_id is absent when every unit was pooled
    for c in ("unit_id", "region"):
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    for c in ("n_units", "numerator", "denominator", "missing"):
        out[c] = out[c].astype(np.int64)
    # the pooled units' own counts, for disclosure control of the linked totals (never published)
    parts = per_unit.loc[small, ["unit_id", "region", "year", "numerator", "denominator", "missing"]]
    return out, parts.reset_index(drop=True)
