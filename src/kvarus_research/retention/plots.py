"""Drawing retention results: step curves with CI bands and a number-at-risk table under the axes.

The numbers at risk are read from the result's ``.table`` (rounded and on the coarse grid when the result is
protected), so the figure never shows a count the table does not.
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

    ``None`` past the end of the table (the tail cut by disclosure control, or no events left).

    Examples
    --------
    >>> curve = pd.DataFrame({"time": [30.0, 60.0], "n_at_risk": [40.0, 25.0]})
    >>> at_risk_at(curve, np.array([0.0, 30.0, 60.0, 90.0]))
    [40.0, 40.0, 25.0, None]
    """
    times = curve["time"].to_numpy()
    n = curve["n_at_risk"].to_numpy()
    out: list[float | None] = []
    for x in ticks:
        i = np.searchsorted(times, x - 1e-9)
        out.append(float(n[i]) if i < len(times) else None)
    return out


def plot_curves(
    result: Any, *, ax: Any = None, cause: str | None = None, at_risk: bool = True, ci: bool = True
) -> Any:
    """Draw a :class:`~kvarus_research.retention.survival.SurvivalResult` (see its ``plot`` method)."""
    import matplotlib.pyplot as plt

    table = result.table
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
    start = 1.0 if result.kind == "km" else 0.0
    t_max = float(table["time"].max()) if len(table) else 0.0
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = []
    for i, (g, c) in enumerate(curves):
        sub = table[(table["group"] == g) & (table["cause"] == c)]
        x = np.concatenate([[0.0], sub["time"].to_numpy()])
        name = []
        if len(groups) > 1:
            name.append(str(g))
        if len(causes) > 1 or result.kind != "km":
            name.append(result.cause_labels.get(c, c))
        label = ": ".join(name) or "All courses"
        labels.append(label)
        colour = colours[i % len(colours)]
        ax.step(
            x, np.concatenate([[start], sub["estimate"].to_numpy()]), where="post", color=colour, label=label
        )
        if ci:
            lo = np.concatenate([[start], sub["ci_lower"].to_numpy()])
            hi = np.concatenate([[start], sub["ci_upper"].to_numpy()])
            ax.fill_between(x, lo, hi, step="post", alpha=0.2, color=colour, linewidth=0)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"Time since course start ({result.time_unit})")
    ax.set_ylabel("Still in treatment" if result.kind == "km" else "Cumulative incidence")
    title = "Time in treatment (Kaplan–Meier)" if result.kind == "km" else "Endings (Aalen–Johansen)"
    if result.by:
        title += f" by {result.by_label.lower()}"
    ax.set_title(title)
    ax.legend(fontsize="small", loc="best")
    step = _guess_step(table)
    ticks = _ticks(t_max, step)
    ax.set_xticks(ticks)
    ax.set_xlim(0, max(t_max, step))
    if at_risk:
        _at_risk_table(ax, table, curves, labels, ticks, groups)
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
    ax: Any, table: pd.DataFrame, curves: list, labels: list[str], ticks: np.ndarray, groups: list
) -> None:
    """Rows of numbers at risk under the x axis, one row per group (causes share the group's risk set)."""
    import matplotlib.transforms as mtransforms

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
            if n is not None:
                ax.text(
                    x, y, f"{n:g}", transform=trans, ha="center", va="center", fontsize="small", gid="at_risk"
                )
    ax.figure.subplots_adjust(bottom=min(0.55, 0.2 + 0.07 * len(rows)), left=0.25)
