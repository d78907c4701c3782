"""Indicator plots: bars per unit with target bands, funnel plot, p-chart (SPC).

Every function draws what it is given: pass the *protected* table (suppressed cells missing) and its rules, and a
suppressed bar is drawn blank (zero length, no interval) and labelled with the rules' neutral marker (``":"``, or
``"[REDACTED]"`` in the OpenSAFELY preset), never with a bound such as "N<5": a cell hidden to protect another cell
may hold any value. :meth:`kvarus_research.results.Result.plot` adds the rules' footnote.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.indicators.limits import (
    DEFAULT_LEVELS,
    LimitMethod,
    OverdispersionMethod,
    _level_key,
    funnel_limits,
    funnel_table,
)
from kvarus_research.indicators.target import Target
from kvarus_research.results import SUPPRESSED_GID, draw_marker, marker_of

BAND_COLOURS = {"high": "#2ca25f", "moderate": "#fec44f", "low": "#de2d26"}


def _axes(ax: Any, n_rows: int = 6) -> Any:
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, max(2.5, 0.38 * n_rows + 1.4)))
    return ax


def target_bands(ax: Any, target: Target | None, *, scale: float = 100.0, vertical: bool = True) -> None:
    """Shade the low / moderate / high ranges of ``target`` (red / yellow / green) on ``ax``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> _, ax = plt.subplots()
    >>> target_bands(ax, Target(high=0.8, moderate=0.6))
    >>> len(ax.patches)
    3
    """
    if target is None:
        return
    span = ax.axvspan if vertical else ax.axhspan
    for lo, hi, level in ((0, target.moderate, "low"), (target.moderate, target.high, "moderate"),
                          (target.high, 1.0, "high")):  # fmt: skip
        if hi > lo:
            span(lo * scale, hi * scale, color=BAND_COLOURS[level], alpha=0.15, zorder=0, lw=0)


def _bar_label(row: pd.Series) -> str:
    if row["level"] == "pooled":
        k = row["n_units"]
        return f"{row['group']}, {int(k)} unit{'s' if k != 1 else ''}" if pd.notna(k) else str(row["group"])
    return str(row["group"])


def indicator_bars(
    table: pd.DataFrame,
    *,
    ax: Any = None,
    target: Target | None = None,
    title: str = "",
    levels: tuple[str, ...] = ("unit", "pooled", "national"),
    rules: Any = "norway",
) -> Any:
    """Horizontal bars (percent) per unit, the pooled small units and the nation, with Wilson CIs.

    Each bar is labelled "x av n"; bars whose counts are suppressed (missing) have zero length and are labelled
    with the rules' marker. The background shows the target bands (green high, yellow moderate, red low).

    Parameters
    ----------
    table : DataFrame
        Rows of :attr:`IndicatorResult.table` for one year (protected).
    rules : str, DisclosureRules or ProtectedTable
        Whose marker labels the suppressed bars.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> t = pd.DataFrame({"level": ["unit", "national"], "group": ["A", "Norway"], "n_units": [1, 2],
    ...     "numerator": [8, 9], "denominator": [10, 14], "proportion": [0.8, 9 / 14],
    ...     "ci_low": [0.49, 0.39], "ci_high": [0.94, 0.84]})
    >>> ax = indicator_bars(t, target=Target(0.8, 0.6))
    >>> [round(float(bar.get_width()), 1) for bar in ax.containers[0]]
    [80.0, 64.3]
    """
    rows = table[table["level"].isin(levels)].copy()
    suppressed = rows["denominator"].isna() | rows["numerator"].isna() | rows["proportion"].isna()
    rows["_supp"] = suppressed.to_numpy()
    rows["_nat"] = (rows["level"] == "national").to_numpy()
    rows["_pool"] = (rows["level"] == "pooled").to_numpy()
    rows["_p"] = rows["proportion"].astype(float).fillna(-1.0)
    # bottom-to-top drawing order: suppressed, pooled, units by proportion, nation on top
    rows = rows.sort_values(
        ["_nat", "_supp", "_pool", "_p"], ascending=[True, False, False, True], kind="stable"
    )
    own = ax is None
    ax = _axes(ax, len(rows))
    target_bands(ax, target)
    y = np.arange(len(rows))
    width = np.where(rows["_supp"], 0.0, rows["_p"].clip(lower=0) * 100)
    colours = np.where(rows["_nat"], "#08306b", np.where(rows["_pool"], "#9ecae1", "#4292c6"))
    ax.barh(y, width, color=colours, height=0.7, zorder=2)
    ok = ~rows["_supp"].to_numpy()
    lo = np.clip(
        (rows["_p"] - rows["ci_low"].astype(float)).to_numpy() * 100, 0, None
    )  # rounding at p = 0, 1
    hi = np.clip((rows["ci_high"].astype(float) - rows["_p"]).to_numpy() * 100, 0, None)
    if ok.any():
        ax.errorbar(width[ok], y[ok], xerr=[lo[ok], hi[ok]], fmt="none", ecolor="black", lw=0.8, capsize=2,
                    zorder=3)  # fmt: skip
    for yi, (_, row) in zip(y, rows.iterrows(), strict=True):
        if row["_supp"]:
            draw_marker(ax, 101, yi, rules, ha="left", fontsize=8, fontweight="normal")
        else:
            ax.text(101, yi, f"{int(row['numerator'])} av {int(row['denominator'])}", va="center", ha="left",
                    fontsize=8)  # fmt: skip
    ax.set_yticks(y, [_bar_label(r) for _, r in rows.iterrows()], fontsize=8)
    ax.set_xlim(0, 118)
    ax.set_xticks([0, 20, 40, 60, 80, 100])
    ax.set_xlabel("Percent (95 % CI)")
    if title:
        ax.set_title(title, fontsize=10)
    if own:
        ax.figure.tight_layout()
    return ax


def funnel_plot(
    table: pd.DataFrame,
    *,
    ax: Any = None,
    title: str = "",
    rules: Any = "norway",
    method: LimitMethod = "exact",
    overdispersion: OverdispersionMethod = "none",
    levels: tuple[float, ...] = DEFAULT_LEVELS,
    coverage: Any = None,
) -> Any:
    """Funnel plot: each unit's proportion against its denominator, with limits around the national rate (the
    ``national`` row); see :func:`kvarus_research.indicators.limits.funnel_table`.

    The limits are exact binomial by default (``method="normal"`` for the normal approximation,
    ``overdispersion="multiplicative"`` or ``"additive"`` to widen them by φ or τ² estimated from the shown units).
    Units outside the outermost limits are drawn in red and named. Suppressed units are not drawn; the legend says
    how many, with the rules' marker. The method (with φ/τ²) is written under the axes. With ``coverage`` (by
    unit name, see :func:`~kvarus_research.indicators.limits.published_coverage`), units whose coverage is below
    60 % are ringed in orange.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> t = pd.DataFrame({"level": ["unit", "unit", "national"], "group": ["A", "B", "Norway"],
    ...     "numerator": [30, 10, 40], "denominator": [40, 20, 60], "proportion": [0.75, 0.5, 40 / 60]})
    >>> ax = funnel_plot(t)
    >>> ax.collections[0].get_offsets().tolist()
    [[40.0, 75.0], [20.0, 50.0]]
    """
    funnel = funnel_table(
        table, method=method, overdispersion=overdispersion, levels=levels, coverage=coverage
    )
    p0, shown = funnel.p0, funnel.table
    own = ax is None
    ax = _axes(ax, n_rows=10)
    n = shown["denominator"].astype(float).to_numpy()
    p = shown["proportion"].astype(float).to_numpy()
    outer = f"flag_{_level_key(max(levels))}"
    flagged = (shown[outer] != "").to_numpy(dtype=bool) if len(shown) else np.zeros(0, dtype=bool)
    ax.scatter(n, p * 100, color=np.where(flagged, "#cb181d", "#2171b5"), zorder=3, s=18, label="unit")
    if "low_coverage" in shown and shown["low_coverage"].any():
        low_cov = shown["low_coverage"].to_numpy(dtype=bool)
        ax.scatter(n[low_cov], p[low_cov] * 100, facecolors="none", edgecolors="#fd8d3c", s=60, lw=1.4, zorder=4,
                   label="coverage < 60 %")  # fmt: skip
    top = max(10.0, n.max() * 1.1 if len(n) else 10.0)
    grid = np.unique(np.rint(np.geomspace(1, top, 400)))  # whole denominators: the exact limits are per count
    styles = ("--", ":", "-.")
    est = funnel.overdispersion
    for i, level in enumerate(sorted(levels)):
        low, high = funnel_limits(p0, grid, level, method=method, overdispersion=overdispersion,
                                  phi=est.phi if est else 1.0, tau2=est.tau2 if est else 0.0)  # fmt: skip
        style = styles[i % len(styles)]
        ax.plot(grid, low * 100, style, color="grey", lw=1, label=f"{level * 100:g} % limits")
        ax.plot(grid, high * 100, style, color="grey", lw=1)
    ax.axhline(p0 * 100, color="black", lw=1, label=f"national {p0:.1%}")
    for ni, pi, name, hit in zip(n, p, shown["group"], flagged, strict=True):
        if hit:
            ax.annotate(str(name), (ni, pi * 100), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if funnel.n_hidden:
        (note,) = ax.plot([], [], " ", label=f"{funnel.n_hidden} unit(s) not shown ({marker_of(rules)})")
        note.set_gid(SUPPRESSED_GID)
    ax.set_xlabel("Denominator (n)")
    ax.set_ylabel("Percent")
    ax.set_ylim(0, 100)
    ax.set_xlim(0, top)
    ax.legend(fontsize=7, loc="lower right")
    note = funnel.definition.method + (f"; {est.describe()}" if est and overdispersion != "none" else "")
    ax.text(0, -0.16, note, transform=ax.transAxes, fontsize=6, va="top", wrap=True, gid="funnel-method")
    if title:
        ax.set_title(title, fontsize=10)
    if own:
        ax.figure.tight_layout()
    return ax


def p_chart(table: pd.DataFrame, *, ax: Any = None, title: str = "", rules: Any = "norway") -> Any:
    """p-chart (SPC): proportion per period with the centre line and 3-sigma limits of each phase; signals marked;
    suppressed periods left as gaps labelled with the rules' marker.

    Marks: a period outside the 3-sigma limits in red; the periods of a run longer than Anhøj's limit ringed in
    orange; the centre line of a phase with too few crossings dashed in orange (as in qicharts2); a dotted
    vertical line at each change point. The signals are listed by
    :func:`kvarus_research.indicators.spc.signal_table`.

    Parameters
    ----------
    table : DataFrame
        From :meth:`IndicatorResult.spc_table` (optionally protected).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> t = pd.DataFrame({"period": ["2021", "2022"], "numerator": [40, 60], "denominator": [100, 100],
    ...     "proportion": [0.4, 0.6], "centre": 0.5, "lcl": 0.35, "ucl": 0.65, "signal": False})
    >>> p_chart(t).lines[0].get_ydata().tolist()
    [40.0, 60.0]
    """
    from kvarus_research.indicators.spc import long_run_mask, run_rules

    own = ax is None
    ax = _axes(ax)
    x = np.arange(len(table))
    p = table["proportion"].astype(float).to_numpy() * 100
    phase = table["phase"].to_numpy() if "phase" in table else np.ones(len(table), dtype=np.int64)
    ax.plot(x, p, "o-", color="#2171b5", ms=4, zorder=3, label="proportion")
    ucl = table["ucl"].astype(float).to_numpy() * 100
    lcl = table["lcl"].astype(float).to_numpy() * 100
    centre = table["centre"].astype(float).to_numpy() * 100
    summary = run_rules(table) if len(table) else pd.DataFrame()
    for i, k in enumerate(pd.unique(phase)):
        idx = np.flatnonzero(phase == k)
        lab = i == 0
        ax.step(idx, ucl[idx], where="mid", color="grey", ls="--", lw=1, label="3σ limits" if lab else None)
        ax.step(idx, lcl[idx], where="mid", color="grey", ls="--", lw=1)
        few = bool(summary["crossing_signal"].iloc[i]) if len(summary) else False
        ax.plot([idx[0] - 0.5, idx[-1] + 0.5], [centre[idx[0]]] * 2, color="#fd8d3c" if few else "black",
                ls="--" if few else "-", lw=1.2 if few else 1,
                label=("centre line, too few crossings" if few else ("centre line" if lab else None)))  # fmt: skip
        if i:
            ax.axvline(idx[0] - 0.5, color="black", ls=":", lw=1)
    sig = (pd.to_numeric(table["signal"], errors="coerce").fillna(0).to_numpy(dtype=float) > 0) & ~np.isnan(p)
    if sig.any():
        ax.scatter(x[sig], p[sig], color="red", zorder=4, s=30, label="3-sigma signal")
    long = long_run_mask(table) if len(table) else np.zeros(0, dtype=bool)
    if long.any():
        ax.scatter(x[long], p[long], facecolors="none", edgecolors="#fd8d3c", zorder=5, s=70, lw=1.5,
                   label="run longer than Anhøj's limit")  # fmt: skip
    for xi in x[np.isnan(p)]:
        draw_marker(ax, xi, 3, rules, fontsize=7, fontweight="normal")
    step = max(1, len(x) // 12)
    ax.set_xticks(x[::step], table["period"].iloc[::step], rotation=45, fontsize=7)
    ax.set_ylim(0, 100)
    ax.set_ylabel("Percent")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=10)
    if own:
        ax.figure.tight_layout()
    return ax


YEAR_COLOURS = ("#c6dbef", "#6baed6", "#08519c")


def three_year_bars(
    table: pd.DataFrame,
    years: tuple[int, ...] | None = None,
    *,
    ax: Any = None,
    target: Target | None = None,
    title: str = "",
    rules: Any = "norway",
) -> Any:
    """Unit shares for (up to) three years side by side with 95 % CIs: the layout of the registers' annual reports.

    One group of bars per unit (the pooled small units and the nation last), one bar per year, lightest the
    earliest; units sorted by the latest year's share. A suppressed bar is blank and labelled with the rules'
    marker. Units pooled in a year appear in that year's pooled bar, not under their own name.

    Parameters
    ----------
    table : DataFrame
        The protected indicator table (all years).
    years : tuple of int, optional
        The years to show; the last three years in the table by default.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> t = pd.DataFrame({"level": ["unit"] * 2 + ["national"] * 2, "group": ["A", "A", "Norway", "Norway"],
    ...     "year": [2022, 2023] * 2, "n_units": 1, "numerator": [8, 6] * 2, "denominator": 10,
    ...     "proportion": [0.8, 0.6] * 2, "ci_low": [0.49, 0.31] * 2, "ci_high": [0.94, 0.83] * 2})
    >>> ax = three_year_bars(t)
    >>> [round(float(b.get_width()), 1) for b in ax.patches]  # 2022 for A and Norway, then 2023
    [80.0, 80.0, 60.0, 60.0]
    """
    t = table[table["year"].notna().to_numpy(dtype=bool)]
    all_years = sorted(int(y) for y in pd.unique(t["year"]))
    years = tuple(years) if years is not None else tuple(all_years[-3:])
    t = t[t["year"].isin(years).to_numpy(dtype=bool)]
    t = t[t["level"].isin(("unit", "pooled", "national")).to_numpy(dtype=bool)]
    latest = t[t["year"] == years[-1]].set_index("group")["proportion"].astype(float)
    order_key = {"pooled": 0, "unit": 1, "national": 2}  # bottom to top: pooled, units, the nation
    groups = (
        t[["group", "level"]].drop_duplicates("group")
        .assign(_o=lambda d: d["level"].map(order_key), _p=lambda d: d["group"].map(latest).fillna(-1))
        .sort_values(["_o", "_p"], kind="stable")["group"].tolist()
    )  # fmt: skip
    own = ax is None
    ax = _axes(ax, len(groups) * 1.6)
    target_bands(ax, target)
    height = 0.8 / len(years)
    for j, year in enumerate(years):
        rows = t[t["year"] == year].set_index("group")
        colour = YEAR_COLOURS[-len(years) + j] if len(years) <= 3 else None
        for i, g in enumerate(groups):
            y = i + (j - (len(years) - 1) / 2) * height
            row = rows.loc[g] if g in rows.index else None
            hidden = row is None or pd.isna(row["proportion"]) or pd.isna(row["denominator"])
            p = 0.0 if hidden else float(row["proportion"]) * 100
            ax.barh(y, p, height=height * 0.95, color=colour, zorder=2, label=str(year) if i == 0 else None)
            if row is None:
                continue
            if hidden:
                draw_marker(ax, 101, y, rules, ha="left", fontsize=6, fontweight="normal")
                continue
            lo, hi = float(row["ci_low"]) * 100, float(row["ci_high"]) * 100
            ax.errorbar(p, y, xerr=[[max(p - lo, 0)], [max(hi - p, 0)]], fmt="none", ecolor="black", lw=0.6,
                        capsize=1.5, zorder=3)  # fmt: skip
            ax.text(101, y, f"{int(row['numerator'])} av {int(row['denominator'])}", va="center", ha="left",
                    fontsize=6)  # fmt: skip
    ax.set_yticks(np.arange(len(groups)), groups, fontsize=8)
    ax.set_xlim(0, 118)
    ax.set_xticks([0, 20, 40, 60, 80, 100])
    ax.set_xlabel("Percent (95 % CI)")
    ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title, fontsize=10)
    if own:
        ax.figure.tight_layout()
    return ax
