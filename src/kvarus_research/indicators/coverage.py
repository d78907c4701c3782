"""Coverage (dekningsgrad) against expected courses, before and after opt-outs, and completeness.

Coverage = registered courses / expected courses per unit and year (expected from the ``coverage`` table, e.g.
from the patient administrative systems). "Coverage after opt-outs" (dekningsgrad etter reservasjon) counts only
courses of patients who have not opted out, which is what analyses can use; coverage before opt-outs adds the
opted-out courses back (as a count only). Completeness indicators use the indicator framework.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.errors import AnalysisError
from kvarus_research.indicators.framework import Indicator, Target, unit_names
from kvarus_research.indicators.kvarus import DEFAULT_TARGETS, REASON_ANSWER_MISSING, first_measurement_flags
from kvarus_research.results import Definition, Result


class CoverageResult(Result):
    """Coverage per unit, region and nation, per year (``year`` ``<NA>`` = all years).

    ``table``: ``level, group, year, expected, registered, opted_out, coverage, coverage_after_opt_outs,
    target_level`` (the level of coverage after opt-outs against the coverage target, default 60 / 80 %).
    """

    count_columns = ("expected", "registered", "opted_out")
    derived_columns = {"coverage": ("registered", "opted_out", "expected"),
                       "coverage_after_opt_outs": ("registered", "expected"),
                       "target_level": ("registered", "expected")}  # fmt: skip

    def __init__(
        self, table: pd.DataFrame, definition: Definition, target: Target, unit_regions: dict | None = None
    ) -> None:
        self.table = table
        self.definition = definition
        self.target = target
        self._unit_regions = unit_regions or {}  # unit name -> region, for the linked totals

    def protected(self, rules: Any = "norway", *, enabled: bool = True) -> Any:
        """The table after disclosure control, with units, regions, nation and years as linked totals (a unit's
        small opted-out count is not the region's minus the other units'); rounding rules protect it as one
        table (see :func:`kvarus_research.indicators.linked.protect_linked_table`)."""
        from kvarus_research.indicators.linked import protect_linked_table
        from kvarus_research.privacy.rules import resolve_rules

        r = resolve_rules(rules)
        if not enabled or not r.secondary or r.totals_from_rounded or r.rounding:
            return Result.protected(self, rules, enabled=enabled)
        p = protect_linked_table(self.linked_view(), r, counts=list(self.count_columns),
                                 derived=self.derived_columns, complements={})  # fmt: skip
        p.table = p.table[list(self.table.columns)]
        return p

    def linked_view(self) -> pd.DataFrame:
        """The table with the columns the linked protection reads: ``unit_id`` (here the unit's name, on unit
        rows) and ``region`` (on unit and region rows).

        Examples
        --------
        >>> import kvarus_research as kr
        >>> v = coverage(kr.synthetic.generate(n_courses=300, seed=1)).linked_view()
        >>> bool((v["unit_id"].notna() == (v["level"] == "unit")).all())
        True
        """
        t = self.table
        unit = (t["level"] == "unit").to_numpy()
        region = t["group"].where(t["level"] == "region", t["group"].map(self._unit_regions))
        return t.assign(
            unit_id=t["group"].where(unit, None), region=region.where(t["level"] != "national", None)
        )

    def _draw_context(self) -> dict[str, Any]:
        return {"target": self.target}

    @classmethod
    def _draw(cls, protected: Any, ax: Any, definition: Definition, *, year: int | None = None,
              target: Target | None = None, **kwargs: Any) -> Any:  # fmt: skip
        """Bars of coverage after opt-outs per unit with the target bands ("x av n" = registered of expected);
        a row with a suppressed count is blank and labelled with the rules' marker. ``year``: one year (default:
        all years together)."""
        from kvarus_research.indicators.plots import indicator_bars

        t = protected.table
        mask = t["year"].isna() if year is None else t["year"].eq(year).fillna(False)
        t = t[mask.to_numpy(dtype=bool)]
        bars = pd.DataFrame({"level": t["level"], "group": t["group"], "n_units": 1, "numerator": t["registered"],
                             "denominator": t["expected"], "proportion": t["coverage_after_opt_outs"]})  # fmt: skip
        bars["ci_low"] = bars["ci_high"] = bars["proportion"]  # a census ratio: no sampling interval drawn
        title = f"Coverage after opt-outs (dekningsgrad), {'all years' if year is None else year}"
        return indicator_bars(bars, ax=ax, target=target, title=title, rules=protected)


def coverage(data: Any, *, target: Target | None = None) -> CoverageResult:
    """Coverage (dekningsgrad) per unit, region and nation and year.

    Registered courses are counted by the year the course started. Opted-out courses come from the ``coverage``
    table's ``reserved_courses`` when present, else from the registry's opted-out patients (counted only).

    Examples
    --------
    >>> import kvarus_research as kr
    >>> res = coverage(kr.synthetic.generate(n_courses=500, seed=1))
    >>> bool((res.table["coverage_after_opt_outs"] <= res.table["coverage"]).all())
    True
    """
    full = getattr(data, "registry", data)
    if full.coverage is None or full.coverage.empty:
        raise AnalysisError(
            "coverage needs the expected number of courses per unit and year (table coverage)"
        )
    registry = full.without_opt_outs()
    exp = full.coverage.copy()
    exp["year"] = exp["year"].astype("int64")
    courses = registry.courses
    reg = courses.groupby(
        [courses["unit_id"], pd.DatetimeIndex(courses["start_date"]).year.rename("year")]
    ).size()
    if "reserved_courses" in exp.columns:
        out_n = exp.set_index(["unit_id", "year"])["reserved_courses"]
    else:
        c = full.courses[full.courses["patient_id"].isin(full.reserved_patients())]
        out_n = c.groupby([c["unit_id"], pd.DatetimeIndex(c["start_date"]).year.rename("year")]).size()
    base = exp.set_index(["unit_id", "year"])[["expected_courses"]].rename(
        columns={"expected_courses": "expected"}
    )
    base["registered"] = reg.reindex(base.index, fill_value=0)
    base["opted_out"] = out_n.reindex(base.index, fill_value=0).fillna(0)
    base = base.reset_index()
    regions = registry.units.set_index("unit_id")["region"] if "region" in registry.units.columns else {}
    base["region"] = base["unit_id"].map(regions).astype("string").fillna("(no region)")
    base["group"] = base["unit_id"].map(unit_names(registry.units))
    parts = []
    for level, key in (("unit", "group"), ("region", "region"), ("national", None)):
        keys = [key] if key else []
        per_year = base.groupby([*keys, "year"], sort=True)[["expected", "registered", "opted_out"]].sum()
        per_year = per_year.reset_index()
        total = per_year.groupby(keys, sort=True)[["expected", "registered", "opted_out"]].sum().reset_index() \
            if keys else per_year[["expected", "registered", "opted_out"]].sum().to_frame().T  # fmt: skip
        total["year"] = pd.NA
        both = pd.concat([per_year, total], ignore_index=True).assign(level=level)
        both["group"] = both[key] if key else "Norway"
        parts.append(both)
    table = pd.concat(parts, ignore_index=True)
    table["year"] = table["year"].astype("Int64")
    table = table[table["expected"] > 0]
    for c in ("expected", "registered", "opted_out"):
        table[c] = table[c].astype(np.int64)
    table["coverage"] = (table["registered"] + table["opted_out"]) / table["expected"]
    table["coverage_after_opt_outs"] = table["registered"] / table["expected"]
    target = target or DEFAULT_TARGETS["coverage"]
    table["target_level"] = [target.level(p) for p in table["coverage_after_opt_outs"]]
    cols = ["level", "group", "year", "expected", "registered", "opted_out", "coverage", "coverage_after_opt_outs",
            "target_level"]  # fmt: skip
    definition = Definition(
        population="courses registered in Kvarus against expected courses per unit and year of course start",
        method="ratio of counts (a census, no sampling interval)",
        details={
            "coverage": "(registered + opted-out courses) / expected courses",
            "coverage after opt-outs": "registered courses of patients who have not opted out / expected courses",
            "target levels": f"high >= {target.high:.0%}, moderate >= {target.moderate:.0%}",
        },
    )
    unit_regions = dict(zip(base["group"], base["region"]))
    return CoverageResult(table[cols].reset_index(drop=True), definition, target, unit_regions)


def _answered_flags(registry: Any, variable: str) -> pd.DataFrame:
    f = first_measurement_flags(registry, variable, registry.codebook.variable(variable).valid_codes)
    answer_missing = (f["exclusion"].astype(object) == REASON_ANSWER_MISSING).to_numpy()
    den = f["denominator"].to_numpy() | answer_missing
    return f.assign(denominator=den, numerator=f["denominator"].to_numpy(),
                    exclusion=f["exclusion"].astype(object).where(~den, None))  # fmt: skip


def _ending_flags(registry: Any, min_days: int) -> pd.DataFrame:
    c = registry.courses
    due = (registry.extract_date - pd.DatetimeIndex(c["start_date"])).days >= min_days
    due = np.asarray(due)
    has_end = c["end_date"].notna().to_numpy()
    return pd.DataFrame({"unit_id": c["unit_id"].to_numpy(), "date": c["start_date"].to_numpy(),
                         "denominator": due, "numerator": due & has_end,
                         "exclusion": np.where(due, None, f"started < {min_days} days before the extract")})  # fmt: skip


def completeness(
    data: Any, *, variables: Iterable[str] = ("plan_beh", "plan_krise", "eval_utbytte"), min_days: int = 365,
    n_limit: int = 10,
) -> dict[str, Any]:  # fmt: skip
    """Completeness indicators per unit, region, nation and year.

    - ``ending_registered`` (forløpskompletthet): courses with an ending registration among courses that
      started at least ``min_days`` before the extract date (year = year of course start).
    - ``answered_<variable>``: courses with a valid answer to ``variable`` at their first measurement point, among
      courses whose first measurement point has status aktiv.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> res = completeness(kr.synthetic.generate(n_courses=300, seed=1))
    >>> sorted(res)
    ['answered_eval_utbytte', 'answered_plan_beh', 'answered_plan_krise', 'ending_registered']
    """
    out = {
        "ending_registered": Indicator(
            key="ending_registered", label="Course has an ending registration (forløpskompletthet)",
            flags=lambda reg: _ending_flags(reg, min_days),
            population=f"courses started at least {min_days} days before the extract date",
            numerator="courses with an ending registration", denominator="courses in the population",
            unit_of_analysis="course", registration="the ending registration"),
    }  # fmt: skip
    for v in variables:
        out[f"answered_{v}"] = Indicator(
            key=f"answered_{v}", label=f"Answered: {v}", flags=lambda reg, v=v: _answered_flags(reg, v),
            population="courses whose first measurement point has status aktiv",
            numerator=f"courses with a valid answer to {v}", denominator="courses in the population",
            unit_of_analysis="course", registration="first measurement point of the course")  # fmt: skip
    return {k: ind.compute(data, n_limit=n_limit) for k, ind in out.items()}
