"""The result of an indicator: its table per unit/region/nation and year, exclusions, and its plots."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from kvarus_research.errors import AnalysisError
from kvarus_research.indicators.framework import Indicator, Target, unit_names
from kvarus_research.results import Definition, Result

PlotKind = Literal["bar", "funnel", "pchart"]


class IndicatorResult(Result):
    """One indicator computed per unit (small units pooled), region and nation, per year and over all years.

    Attributes
    ----------
    table : DataFrame
        ``level, group, unit_id, region, year (<NA> = all years), n_units, numerator, denominator, missing,
        proportion, ci_low, ci_high, target_level``.
    definition : Definition
        Population, numerator, denominator, unit of analysis, registration used, CI method, target levels.
    exclusions : DataFrame
        ``reason, n``: how many rows were kept in the denominator and how many left out, per reason.
    indicator : Indicator
    target : Target or None
    """

    count_columns = ("numerator", "denominator", "missing")
    derived_columns = {
        "proportion": ("numerator", "denominator"),
        "ci_low": ("numerator", "denominator"),
        "ci_high": ("numerator", "denominator"),
        "target_level": ("numerator", "denominator"),
    }

    def __init__(
        self,
        *,
        indicator: Indicator,
        table: pd.DataFrame,
        definition: Definition,
        exclusions: pd.DataFrame,
        flags: pd.DataFrame,
        units: pd.DataFrame,
        target: Target | None,
        codebook: Any = None,
        pooled_parts: pd.DataFrame | None = None,
    ) -> None:
        self.indicator = indicator
        # the pooled units' own counts: used by disclosure control only, never shown
        self._pooled_parts = pooled_parts
        self.table = table
        self.definition = definition
        self.exclusions = exclusions
        self.target = target
        self.codebook = codebook
        self._flags = flags  # unit, date and the two flags only: no identifiers
        self._units = units

    def protected(self, rules: Any = "norway", *, enabled: bool = True) -> Any:
        """The table after disclosure control, with its totals declared for secondary suppression.

        See :func:`kvarus_research.indicators.protection.protect_indicator_table`.
        """
        from kvarus_research.indicators.protection import protect_indicator_table

        cache = self.__dict__.setdefault("_protected_cache", {})
        parts = self.__dict__.get("_pooled_parts")
        try:
            key = (rules, enabled)
            hash(key)
        except TypeError:
            return protect_indicator_table(self.table, rules, enabled=enabled, pooled_parts=parts)
        if key not in cache:  # the table never changes after construction: protect it once per rules
            cache[key] = protect_indicator_table(self.table, rules, enabled=enabled, pooled_parts=parts)
        return cache[key]

    # -- views -------------------------------------------------------------------------------------------
    def for_year(self, year: int | None = None) -> pd.DataFrame:
        """Rows of one year (``None``: all years together).

        Examples
        --------
        >>> import kvarus_research as kr
        >>> from kvarus_research.indicators import TREATMENT_PLAN
        >>> res = TREATMENT_PLAN.compute(kr.synthetic.generate(n_courses=300, seed=1))
        >>> bool(res.for_year(None)["year"].isna().all())
        True
        """
        mask = self.table["year"].isna() if year is None else self.table["year"].eq(year).fillna(False)
        return self.table[mask.to_numpy(dtype=bool)].reset_index(drop=True)

    def spc_table(
        self, unit_id: Any = None, period: Literal["year", "quarter", "month"] = "quarter"
    ) -> pd.DataFrame:
        """p-chart (SPC) numbers over time for one unit or nationally (``unit_id=None``).

        Centre line p̄ = Σx / Σn over all periods; limits p̄ ± 3·√(p̄(1 − p̄)/nₜ) clipped to [0, 1]; a period
        is flagged ``signal`` when its proportion lies outside the limits.

        Returns
        -------
        DataFrame
            ``period, numerator, denominator, proportion, centre, lcl, ucl, signal``.

        Examples
        --------
        >>> import kvarus_research as kr
        >>> from kvarus_research.indicators import MUTUAL_AGREEMENT
        >>> res = MUTUAL_AGREEMENT.compute(kr.synthetic.generate(n_courses=300, seed=1))
        >>> spc = res.spc_table(period="year")
        >>> int(spc["numerator"].sum()) == int(res.for_year(None).query("level == 'national'")["numerator"].iloc[0])
        True
        """
        f = self._flags
        if unit_id is not None:
            f = f[f["unit_id"].to_numpy() == unit_id]
            if not len(f):
                raise AnalysisError(f"indicator {self.indicator.key!r}: no rows for unit {unit_id!r}")
        f = f[f["denominator"].to_numpy(dtype=bool)]
        freq = {"year": "Y", "quarter": "Q", "month": "M"}.get(period)
        if freq is None:
            raise AnalysisError(f"period {period!r} is not one of 'year', 'quarter', 'month'")
        per = pd.DatetimeIndex(f["date"]).to_period(freq)
        g = pd.DataFrame({"period": per, "x": f["numerator"].to_numpy(dtype=np.int64)}).groupby("period")
        out = pd.DataFrame({"numerator": g["x"].sum(), "denominator": g["x"].size()}).reset_index()
        out["period"] = out["period"].astype(str)
        x, n = out["numerator"].to_numpy(float), out["denominator"].to_numpy(float)
        centre = x.sum() / n.sum() if n.sum() else np.nan
        half = 3 * np.sqrt(centre * (1 - centre) / n)
        out["proportion"] = x / n
        out["centre"] = centre
        out["lcl"] = np.clip(centre - half, 0, 1)
        out["ucl"] = np.clip(centre + half, 0, 1)
        out["signal"] = (out["proportion"] < out["lcl"]) | (out["proportion"] > out["ucl"])
        return out

    # -- plots -------------------------------------------------------------------------------------------
    def plot(
        self,
        ax: Any = None,
        kind: PlotKind = "bar",
        *,
        year: int | None = None,
        unit_id: Any = None,
        period: Literal["year", "quarter", "month"] = "quarter",
        rules: Any = "norway",
        protect: bool = True,
    ) -> Any:
        """Draw the indicator; numbers come from the protected table (suppressed bars blank, labelled "N<5").

        Parameters
        ----------
        kind : {"bar", "funnel", "pchart"}
            Bars per unit with target bands, "x av n" labels and CIs; a funnel plot against the national rate;
            or a p-chart over time (``unit_id`` or national).
        year : int, optional
            The year to show in bar and funnel plots (all years together by default).
        """
        from kvarus_research.indicators import plots

        if kind == "pchart":
            table = self.spc_table(unit_id, period)
            if protect:
                table = _protect_spc(table, rules)
            where = "Norway" if unit_id is None else unit_names(self._units).get(unit_id, f"Unit {unit_id}")
            return plots.p_chart(table, ax=ax, title=f"{self.indicator.label}: {where}")
        when = "all years" if year is None else str(year)
        title = f"{self.indicator.label}, {when}"
        if kind == "bar":
            shown = _protected_for_year(self, year, rules, protect)
            return plots.indicator_bars(shown, ax=ax, target=self.target, title=title)
        if kind == "funnel":
            shown = _protected_for_year(self, year, rules, protect)
            return plots.funnel_plot(shown, ax=ax, title=title)
        raise AnalysisError(f"plot kind {kind!r} is not one of 'bar', 'funnel', 'pchart'")


def _protected_for_year(result: IndicatorResult, year: int | None, rules: Any, protect: bool) -> pd.DataFrame:
    """The protected table restricted to one year (protection applied to the whole table first)."""
    if protect:
        table = result.protected(rules, enabled=True).table
    else:
        table = result.table
    mask = result.table["year"].isna() if year is None else result.table["year"].eq(year).fillna(False)
    return table[mask.to_numpy(dtype=bool)].reset_index(drop=True)


def _protect_spc(table: pd.DataFrame, rules: Any) -> pd.DataFrame:
    from kvarus_research.privacy import protect

    shown = protect(
        table,
        counts=["numerator", "denominator"],
        derived={"proportion": ("numerator", "denominator")},
        complements={"numerator": "denominator"},
        rules=rules,
    ).table
    return shown
