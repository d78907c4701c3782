"""Drawing retention results: step curves with CI bands and a number-at-risk table under the axes.

Everything drawn is read from the result's *protected* table (:meth:`SurvivalResult.protected`: rounded and on the
coarse grid by default, then disclosure control with the chosen rules), so the figure never shows a count the
table hides: a suppressed number at risk is shown as the rules' marker, a suppressed estimate breaks the curve.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _ticks(t_max: float, step: float) -> np.ndarray:
    """Tick positions: multiples of ``step`` (at most about 8 of them), from 0 to ``t_max``."""
    if t_max <= 0:
        return np.array([0.0])
    per = max(1, int(np.ceil(t_max / step / 7)))
    return np.arange(0, t_max + 1e-9, per * step)


def at_risk_at(curve: pd.DataFrame, ticks: np.ndarray) -> list[float | None]:
    """Number at risk at each tick: the at-risk count of the first table row at or after the tick.

    ``None`` past the end of the table (the tail cut by disclosure control, or no events left); NaN when that
    row's count is suppressed.

    Examples
    --------
    >>> curve = pd.DataFrame({"time": [30.0, 60.0], "n_at_risk": [40.0, 25.0]})
    >>> at_risk_at(curve, np.array([0.0, 30.0, 60.0, 90.0]))
    [40.0, 40.0, 25.0, None]
    """
    times = curve["time"].to_numpy()
    n = curve["n_at_risk"].to_numpy(dtype=object)
    out: list[float | None] = []
    for x in ticks:
        i = np.searchsorted(times, x - 1e-9)
        out.append((float("nan") if pd.isna(n[i]) else float(n[i])) if i < len(times) else None)
    return out


def plot_curves(
    protected: Any,
    *,
    kind: str,
    time_unit: str,
    by_label: str = "",
    cause_labels: dict[str, str] | None = None,
    ax: Any = None,
    cause: str | None = None,
    at_risk: bool = True,
    ci: bool = True,
) -> Any:
    """Draw the protected table of a :class:`~kvarus_research.retention.survival.SurvivalResult`.

    Parameters
    ----------
    protected : ProtectedTable
        ``SurvivalResult.protected(rules)``: ``group, cause, time, n_at_risk, ..., estimate, ci_lower, ci_upper``.
    kind : {"km", "cif"}
    time_unit : str
    by_label, cause_labels
        Labels of the grouping column and of the causes.
    ax, cause, at_risk, ci
        See :meth:`SurvivalResult.plot`.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from kvarus_research.privacy import protect
    >>> t = pd.DataFrame({"group": "all", "cause": "any ending", "time": [30.0, 60.0], "n_at_risk": [40, 3],
    ...     "n_events": [10, 1], "cum_events": [10, 11], "estimate": [0.75, 0.5], "ci_lower": [0.6, 0.2],
    ...     "ci_upper": [0.85, 0.8]})
    >>> p = protect(t, counts=["n_at_risk", "n_events", "cum_events"], derived={"estimate": "n_at_risk"})
    >>> ax = plot_curves(p, kind="km", time_unit="days", ci=False)
    >>> [t.get_text() for t in ax.texts if t.get_gid() in ("at_risk", "suppressed")]
    ['40', '40', ':']
    """
    import matplotlib.pyplot as plt

    from kvarus_research.results import draw_marker

    table = protected.table
    cause_labels = cause_labels or {}
    causes = list(dict.fromkeys(table["cause"]))
    groups = list(dict.fromkeys(table["group"]))
    if cause is not None:
        causes = [cause]
    elif len(groups) > 1:
        causes = causes[:1]
    curves = [(g, c) for g in groups for c in causes]
    if ax is None:
        height = 4.2 + (0.28 * len(curves) if at_risk else 0)
        _, ax = plt.subplots(figsize=(8, height))
    start = 1.0 if kind == "km" else 0.0
    t_max = float(table["time"].max()) if len(table) else 0.0
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = []
    for i, (g, c) in enumerate(curves):
        sub = table[(table["group"] == g) & (table["cause"] == c)]
        x = np.concatenate([[0.0], sub["time"].to_numpy(dtype=float)])
        name = []
        if len(groups) > 1:
            name.append(str(g))
        if len(causes) > 1 or kind != "km":
            name.append(cause_labels.get(c, c))
        label = ": ".join(name) or "All courses"
        labels.append(label)
        colour = colours[i % len(colours)]
        est = sub["estimate"].astype(float).to_numpy()  # a suppressed estimate (NaN) breaks the curve
        ax.step(x, np.concatenate([[start], est]), where="post", color=colour, label=label)
        if ci:
            lo = np.concatenate([[start], sub["ci_lower"].astype(float).to_numpy()])
            hi = np.concatenate([[start], sub["ci_upper"].astype(float).to_numpy()])
            ax.fill_between(x, lo, hi, step="post", alpha=0.2, color=colour, linewidth=0)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"Time since course start ({time_unit})")
    ax.set_ylabel("Still in treatment" if kind == "km" else "Cumulative incidence")
    title = "Time in treatment (Kaplan–Meier)" if kind == "km" else "Endings (Aalen–Johansen)"
    if by_label:
        title += f" by {by_label.lower()}"
    ax.set_title(title)
    ax.legend(fontsize="small", loc="best")
    step = _guess_step(table)
    ticks = _ticks(t_max, step)
    ax.set_xticks(ticks)
    ax.set_xlim(0, max(t_max, step))
    if at_risk:
        _at_risk_table(ax, protected, curves, ticks, groups, draw_marker)
    return ax


def _guess_step(table: pd.DataFrame) -> float:
    times = np.unique(table["time"].to_numpy())
    if len(times) > 1:
        gaps = np.diff(times)
        g = float(np.min(gaps[gaps > 0]))
        if np.allclose(times / g, np.round(times / g)) and g >= 7:
            return g
    return 30.0


def _at_risk_table(
    ax: Any, protected: Any, curves: list, ticks: np.ndarray, groups: list, draw_marker: Any
) -> None:
    """Rows of numbers at risk under the x axis, one row per group (causes share the group's risk set)."""
    import matplotlib.transforms as mtransforms

    table = protected.table
    trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    rows = []
    for g in groups:
        c = next(c for gg, c in curves if gg == g)
        rows.append(
            (str(g) if len(groups) > 1 else "At risk", table[(table["group"] == g) & (table["cause"] == c)])
        )
    y0 = -0.2
    ax.text(
        -0.07,
        y0 + 0.01,
        "Number at risk",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize="small",
        fontweight="bold",
    )
    for r, (name, sub) in enumerate(rows):
        y = y0 - 0.07 * (r + 1)
        ax.text(-0.07, y, name, transform=ax.transAxes, ha="right", va="center", fontsize="small")
        for x, n in zip(ticks, at_risk_at(sub, ticks), strict=True):
            if n is None:
                continue
            if np.isnan(n):  # suppressed: the marker, never the count
                draw_marker(ax, x, y, protected, transform=trans, fontsize="small", fontweight="normal")
            else:
                ax.text(
                    x, y, f"{n:g}", transform=trans, ha="center", va="center", fontsize="small", gid="at_risk"
                )
    ax.figure.subplots_adjust(bottom=min(0.55, 0.2 + 0.07 * len(rows)), left=0.25)
