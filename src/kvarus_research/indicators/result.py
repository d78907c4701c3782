"""The result of an indicator: its table per unit/region/nation and year, exclusions, and its plots."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from kvarus_research.errors import AnalysisError
from kvarus_research.indicators.target import Target, unit_names
from kvarus_research.results import Definition, Result

if TYPE_CHECKING:
    from kvarus_research.indicators.framework import Indicator

PlotKind = Literal["bar", "funnel", "pchart", "years"]

#: How the funnel and the p-chart are made, stated in every indicator's definition.
FIGURE_METHODS = {
    "funnel limits": "exact binomial (interpolated quantiles, Spiegelhalter 2005) at 95 % and 99.8 % by default;"
    " normal approximation or overdispersion-adjusted (multiplicative φ, additive τ²) on request, φ and τ² stated"
    " in funnel().definition",
    "p-chart": "centre p̄ = Σx/Σn and 3-sigma limits per phase (recomputed after declared change points);"
    " signals: 3-sigma, Anhøj's longest run and crossings",
}


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
        n_limit: int | None = None,
    ) -> None:
        self.indicator = indicator
        #: units with a denominator below this were pooled (a reader knows it from the pooled row's label)
        self.n_limit = n_limit
        # the pooled units' own counts: used by disclosure control only, never shown
        self._pooled_parts = pooled_parts
        self.table = table
        self.definition = Definition(
            population=definition.population,
            method=definition.method,
            details={**dict(definition.details), **FIGURE_METHODS},
        )
        self.exclusions = exclusions
        self.target = target
        self.codebook = codebook
        self._flags = flags  # unit, date and the two flags only: no identifiers
        self._units = units

    def protected(self, rules: Any = "norway", *, enabled: bool = True) -> Any:
        """The table after disclosure control, with its totals declared for secondary suppression.

        See :func:`kvarus_research.indicators.protection.protect_indicator_table`. The result also carries the
        p-chart tables as protected side tables: ``.sides[("spc", unit_id, period)]``, or
        ``("spc", unit_id, period, change_points)`` (see :meth:`spc_table`). A period's proportion and signal are
        hidden with its counts, its limits with its denominator, and the centre line and limits are recomputed
        from the published periods only (a centre over all periods, with the denominators shown, would give back
        a hidden numerator).
        """
        from kvarus_research.indicators.protection import protect_indicator_table
        from kvarus_research.results import ProtectedResult

        cache = self.__dict__.setdefault("_protected_cache", {})
        parts = self.__dict__.get("_pooled_parts")

        def build() -> Any:
            main = protect_indicator_table(self.table, rules, enabled=enabled, pooled_parts=parts)
            return ProtectedResult.of(main, self.side_tables(rules, enabled=enabled))

        try:
            key = (rules, enabled)
            hash(key)
        except TypeError:
            return build()
        if key not in cache:  # the table never changes after construction: protect it once per rules
            cache[key] = build()
        return cache[key]

    def side_tables(self, rules: Any = "norway", *, enabled: bool = True) -> Any:
        """The p-chart tables, each protected when first asked for (the ``sides`` of :meth:`protected`; a release
        that protects the main table adopts them beside its own).

        Examples
        --------
        >>> import kvarus_research as kr
        >>> from kvarus_research.indicators import TREATMENT_PLAN
        >>> res = TREATMENT_PLAN.compute(kr.synthetic.generate(n_courses=300, seed=1))
        >>> side = res.side_tables()[("spc", None, "year")]
        >>> bool(side.suppressed.to_numpy().sum() >= res.spc_table(None, "year")["numerator"].between(1, 4).sum())
        True
        """
        from kvarus_research.results import ProtectedSides

        return ProtectedSides(
            lambda key: _protect_spc(
                self.spc_table(key[1], key[2], change_points=tuple(key[3]) if len(key) > 3 else ()),
                rules,
                enabled,
            )
        )

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
        self,
        unit_id: Any = None,
        period: Literal["year", "quarter", "month"] = "quarter",
        *,
        change_points: tuple[str, ...] = (),
    ) -> pd.DataFrame:
        """p-chart (SPC) numbers over time for one unit or nationally (``unit_id=None``).

        Centre line p̄ = Σx / Σn within each phase (the periods between declared ``change_points``: limits are
        recomputed after each); limits p̄ ± 3·√(p̄(1 − p̄)/nₜ) clipped to [0, 1]; a period is flagged ``signal``
        when its proportion lies outside the limits (the 3-sigma rule). Anhøj's run rules:
        :meth:`spc_signals` and :func:`kvarus_research.indicators.spc.run_rules`.

        Parameters
        ----------
        change_points : tuple of str
            Periods (as labelled in the table, e.g. ``"2022Q3"``) that start a new phase.

        Returns
        -------
        DataFrame
            ``period, numerator, denominator, phase, proportion, centre, lcl, ucl, signal``.

        Examples
        --------
        >>> import kvarus_research as kr
        >>> from kvarus_research.indicators import MUTUAL_AGREEMENT
        >>> res = MUTUAL_AGREEMENT.compute(kr.synthetic.generate(n_courses=300, seed=1))
        >>> spc = res.spc_table(period="year")
        >>> int(spc["numerator"].sum()) == int(res.for_year(None).query("level == 'national'")["numerator"].iloc[0])
        True
        """
        from kvarus_research.indicators.spc import p_chart_limits, phases

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
        out["phase"] = phases(out["period"], change_points)
        out["proportion"] = out["numerator"].to_numpy(float) / out["denominator"].to_numpy(float)
        lim = p_chart_limits(out["numerator"], out["denominator"], out["phase"])
        out[["centre", "lcl", "ucl"]] = lim[["centre", "lcl", "ucl"]].to_numpy()
        out["signal"] = lim["signal"].to_numpy() > 0
        return out

    def spc_signals(
        self,
        unit_id: Any = None,
        period: Literal["year", "quarter", "month"] = "quarter",
        *,
        change_points: tuple[str, ...] = (),
        rules: Any = "norway",
    ) -> pd.DataFrame:
        """The SPC signals of a unit's (or the nation's) p-chart, from its protected side table.

        One row per signal: the 3-sigma rule per period, Anhøj's longest-run and crossings rules per phase (see
        :mod:`kvarus_research.indicators.spc`). Periods hidden by disclosure control are skipped by the run
        rules, and the centre line and limits are those of the published periods.

        Returns
        -------
        DataFrame
            ``phase, rule, periods, value, limit``.

        Examples
        --------
        >>> import kvarus_research as kr
        >>> from kvarus_research.indicators import MUTUAL_AGREEMENT
        >>> res = MUTUAL_AGREEMENT.compute(kr.synthetic.generate(n_courses=300, seed=1))
        >>> list(res.spc_signals(period="quarter").columns)
        ['phase', 'rule', 'periods', 'value', 'limit']
        """
        from kvarus_research.indicators.spc import signal_table

        key = ("spc", unit_id, period, tuple(change_points)) if change_points else ("spc", unit_id, period)
        return signal_table(self.published(rules).sides[key].table)

    def funnel(
        self,
        year: int | None = None,
        *,
        rules: Any = "norway",
        method: Literal["exact", "normal"] = "exact",
        overdispersion: Literal["none", "multiplicative", "additive"] = "none",
        levels: tuple[float, ...] = (0.95, 0.998),
        coverage: Any = None,
    ) -> Any:
        """Funnel limits and flags per unit against the national rate, from the published (protected) table.

        The same numbers as ``plot(kind="funnel")``: units hidden by disclosure control are neither shown nor used
        to estimate overdispersion. Default: exact binomial limits at 95 % and 99.8 % without overdispersion
        adjustment (φ and τ² are estimated and stated in the definition either way). With ``coverage`` (a
        :class:`~kvarus_research.indicators.coverage.CoverageResult`), each unit's published coverage for the same
        period is added, flagged below 60 %.

        Returns
        -------
        Funnel
            ``.table`` (limits and ``flag_95`` / ``flag_998`` per unit), ``.definition``, ``.p0``,
            ``.overdispersion``; see :func:`kvarus_research.indicators.limits.funnel_table`.

        Examples
        --------
        >>> import kvarus_research as kr
        >>> from kvarus_research.indicators import MUTUAL_AGREEMENT
        >>> res = MUTUAL_AGREEMENT.compute(kr.synthetic.generate(n_courses=600, seed=1))
        >>> f = res.funnel(overdispersion="additive")
        >>> f.definition.method.startswith("overdispersion-adjusted limits (additive")
        True
        """
        from kvarus_research.indicators.limits import funnel_table

        t = self.published(rules).table
        mask = t["year"].isna() if year is None else t["year"].eq(year).fillna(False)
        shown = t[mask.to_numpy(dtype=bool)].reset_index(drop=True)
        from kvarus_research.indicators.limits import published_coverage

        cov = None if coverage is None else published_coverage(coverage, year, rules=rules)
        return funnel_table(shown, method=method, overdispersion=overdispersion, levels=levels, coverage=cov)

    # -- plots -------------------------------------------------------------------------------------------
    def _draw_context(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "label": self.indicator.label,
            "unit_names": dict(unit_names(self._units)),
        }

    @classmethod
    def _draw(
        cls,
        protected: Any,
        ax: Any,
        definition: Definition,
        kind: PlotKind = "bar",
        *,
        year: int | None = None,
        unit_id: Any = None,
        period: Literal["year", "quarter", "month"] = "quarter",
        target: Target | None = None,
        label: str = "",
        unit_names: dict[Any, str] | None = None,
        method: str = "exact",
        overdispersion: str = "none",
        levels: tuple[float, ...] = (0.95, 0.998),
        change_points: tuple[str, ...] = (),
        years: tuple[int, ...] | None = None,
        coverage: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Draw the indicator from its protected table (suppressed bars blank, labelled with the rules' marker).

        Parameters
        ----------
        kind : {"bar", "funnel", "pchart", "years"}
            Bars per unit with target bands, "x av n" labels and CIs; a funnel plot against the national rate;
            or a p-chart over time (``unit_id`` or national, from the protected side table of that unit and
            ``period``, with limits recomputed after each of ``change_points``; 3-sigma and Anhøj signals marked).
        year : int, optional
            The year to show in bar and funnel plots (all years together by default).
        years : tuple of int, optional
            ``kind="years"``: unit shares for these years side by side with CIs (the last three by default), the
            layout of the registers' annual reports.
        method, overdispersion, levels
            Funnel limits (default exact binomial at 95 % and 99.8 %, no overdispersion adjustment); see
            :func:`kvarus_research.indicators.limits.funnel_table`.
        coverage : CoverageResult, optional
            Funnel: ring the units whose published coverage for the same period is below 60 %.
        """
        from kvarus_research.indicators import plots

        if kind == "pchart":
            key = (
                ("spc", unit_id, period, tuple(change_points)) if change_points else ("spc", unit_id, period)
            )
            table = protected.sides[key].table
            where = "Norway" if unit_id is None else (unit_names or {}).get(unit_id, f"Unit {unit_id}")
            return plots.p_chart(table, ax=ax, title=f"{label}: {where}", rules=protected)
        if kind == "years":
            return plots.three_year_bars(
                protected.table, years, ax=ax, target=target, title=label, rules=protected
            )
        when = "all years" if year is None else str(year)
        title = f"{label}, {when}"
        t = protected.table
        mask = t["year"].isna() if year is None else t["year"].eq(year).fillna(False)
        shown = t[mask.to_numpy(dtype=bool)].reset_index(drop=True)
        if kind == "bar":
            return plots.indicator_bars(shown, ax=ax, target=target, title=title, rules=protected)
        if kind == "funnel":
            from kvarus_research.indicators.limits import published_coverage

            cov = None if coverage is None else published_coverage(coverage, year, rules=protected.rules)
            return plots.funnel_plot(
                shown, ax=ax, title=title, rules=protected, method=method, overdispersion=overdispersion,
                levels=levels, coverage=cov,
            )  # fmt: skip
        raise AnalysisError(f"plot kind {kind!r} is not one of 'bar', 'funnel', 'pchart', 'years'")


def _protect_spc(table: pd.DataFrame, rules: Any, enabled: bool = True) -> Any:
    """A p-chart table after disclosure control: a period's proportion and signal go with its counts, its limits
    with its denominator; the centre line, limits and signals are then recomputed from the published periods."""
    import dataclasses

    from kvarus_research.indicators.spc import p_chart_limits
    from kvarus_research.privacy import protect

    pt = protect(
        table.assign(signal=table["signal"].astype(float)),  # 1.0 / 0.0, so a hidden signal can be NaN
        counts=["numerator", "denominator"],
        derived={
            "proportion": ("numerator", "denominator"),
            "lcl": "denominator",
            "ucl": "denominator",
            "signal": ("numerator", "denominator"),
        },  # fmt: skip
        complements={"numerator": "denominator"},
        rules=rules,
        enabled=enabled,
    )
    t = pt.table.copy()
    lim = p_chart_limits(t["numerator"], t["denominator"], t["phase"] if "phase" in t else np.ones(len(t)))
    for col in ("centre", "lcl", "ucl", "signal"):
        hidden = t[col].isna().to_numpy() if col != "centre" else np.zeros(len(t), dtype=bool)
        t[col] = np.where(hidden, np.nan, lim[col].to_numpy())
    return dataclasses.replace(pt, table=t)
