"""The CONSORT-style flow diagram of a cohort, drawn with matplotlib.

A column of boxes holds the courses remaining after each step; beside each arrow an exclusion box gives the number
excluded and the reason. Counts pass through disclosure control (:func:`protect_flow`: small counts shown as the
rules' neutral marker, ``":"``, with the rules' footnote, and every count rounded to 5 when a step is suppressed, so
it cannot be recomputed as a difference) unless ``enabled=False``, in which case the figure is stamped as such.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pandas as pd

COUNT_COLUMNS = ["n_before", "n_after", "n_excluded"]
TITLE = "Selection of treatment courses"


def protect_flow(flow: pd.DataFrame, *, rules: Any = "norway") -> Any:
    """Disclosure control for a flow table, closing the chain: ``n_excluded = n_before - n_after``.

    Primary suppression alone is not enough for a flow: a suppressed exclusion (say 3) could be recomputed as the
    difference of the two counts around it. So when any count of the flow is suppressed, every published count
    is also rounded to the nearest 5 (unless the rules round already), and the rules' name says so. An attacker
    then learns only that a suppressed count lies between 1 and 4, not which.

    Returns
    -------
    ProtectedTable
        ``step`` (with ``label`` and ``reason`` when present) and the three counts after disclosure control.

    Examples
    --------
    >>> flow = pd.DataFrame({"step": ["a", "b"], "n_before": [1003, 1000], "n_after": [1000, 988],
    ...     "n_excluded": [3, 12]})
    >>> protect_flow(flow).display()[COUNT_COLUMNS].values.tolist()
    [[1005, 1000, ':'], [1000, 990, 10]]
    """
    from dataclasses import replace

    from kvarus_research.privacy import PRESETS, protect

    base = PRESETS[rules] if isinstance(rules, str) else rules
    text = [c for c in ("step", "label", "reason") if c in flow.columns]
    table = flow[[*text, *COUNT_COLUMNS]].reset_index(drop=True)
    shown = protect(table, counts=COUNT_COLUMNS, rules=base)
    if base.rounding or not bool(shown.suppressed.to_numpy().any()):
        return shown
    chained = replace(
        base, rounding=5, name=f"{base.name} (flow with a suppressed step: counts rounded to 5)"
    )
    return protect(table, counts=COUNT_COLUMNS, rules=chained)


def _protected_flow(flow: pd.DataFrame, rules: Any, enabled: bool) -> Any:
    if enabled:
        return protect_flow(flow, rules=rules)
    from kvarus_research.privacy import protect

    text = [c for c in ("step", "label", "reason") if c in flow.columns]
    return protect(flow[[*text, *COUNT_COLUMNS]].reset_index(drop=True), counts=COUNT_COLUMNS, rules=rules,
                   enabled=False)  # fmt: skip


def displayed_counts(flow: pd.DataFrame, *, rules: Any = "norway", enabled: bool = True) -> pd.DataFrame:
    """The flow's counts as the text drawn on the diagram (after :func:`protect_flow` unless ``enabled=False``).

    Examples
    --------
    >>> flow = pd.DataFrame({"step": ["a"], "label": ["x"], "reason": ["y"],
    ...     "n_before": [20], "n_after": [17], "n_excluded": [3]})
    >>> displayed_counts(flow)[["n_before", "n_after", "n_excluded"]].values.tolist()
    [['20', '15', ':']]
    >>> displayed_counts(flow, enabled=False)[["n_before", "n_after", "n_excluded"]].values.tolist()
    [['20', '17', '3']]
    """
    out = flow.copy()

    def fmt(v: Any) -> str:
        return f"{int(v):,}".replace(",", " ") if not isinstance(v, str) else v

    display = _protected_flow(flow, rules, enabled).display()
    for col in COUNT_COLUMNS:
        out[col] = display[col].map(fmt).to_numpy()
    return out


def _box(ax: Any, x: float, y: float, text: str, *, gid: str, side: bool = False) -> Any:
    style = {"boxstyle": "round,pad=0.5", "fc": "#f3f6fa" if not side else "#fbf3f3", "ec": "#4a5a6a"}
    t = ax.text(x, y, text, ha="left" if side else "center", va="center", fontsize=9, bbox=style)
    t.set_gid(gid)
    return t


def plot_flow(flow: pd.DataFrame, ax: Any = None, *, rules: Any = "norway", enabled: bool = True) -> Any:
    """Draw a cohort flow table (``Cohort.flow``) as a CONSORT-style diagram, from its protected counts.

    Parameters
    ----------
    flow : DataFrame
        ``step, label, reason, n_before, n_after, n_excluded`` as from :attr:`Cohort.flow`.
    ax : matplotlib Axes, optional
        Drawn into a new figure when absent.
    rules : str or DisclosureRules
        Disclosure-control rules (see :func:`protect_flow`). A suppressed count reads as the rules' neutral
        marker and the figure carries the rules' footnote.
    enabled : bool
        ``False`` draws exact counts and stamps the figure with
        :data:`~kvarus_research.privacy.rules.DISABLED_STAMP`.

    Returns
    -------
    matplotlib.axes.Axes
        Each box's text artist carries a ``gid`` ``"<row>:<column>"`` (``"0:n_before"`` for the top box, then
        ``"i:n_excluded"`` and ``"i:n_after"`` per step; step i's ``n_before`` is the box above it) so tests and
        reports can read the numbers back.

    Examples
    --------
    >>> flow = pd.DataFrame({"step": ["opt_outs", "ended"], "label": ["Patients not opted out", "Course ended"],
    ...     "reason": ["patient opted out", "still in treatment"], "n_before": [120, 110],
    ...     "n_after": [110, 80], "n_excluded": [10, 30]})
    >>> ax = plot_flow(flow, enabled=False)
    >>> sorted(t.get_gid() for t in ax.texts if t.get_gid())
    ['0:n_after', '0:n_before', '0:n_excluded', '1:n_after', '1:n_excluded']
    """
    import matplotlib.pyplot as plt

    from kvarus_research.results import mark_figure

    protected = _protected_flow(flow, rules, enabled)
    shown = displayed_counts(flow, rules=rules, enabled=enabled)
    n = len(flow)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 1.5 + 1.6 * n))
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.6, 2 * n + 0.6)
    ax.axis("off")
    ax.set_title(TITLE, fontsize=11, loc="left")
    arrow = {"arrowstyle": "-|>", "color": "#4a5a6a", "lw": 1.2}
    y_top = 2 * n
    _box(ax, 3.2, y_top, f"Courses in the registry\nn = {shown['n_before'].iloc[0]}", gid="0:n_before")
    for i, row in enumerate(shown.itertuples(index=False)):
        y_from, y_to = y_top - 2 * i, y_top - 2 * (i + 1)
        ax.annotate("", xy=(3.2, y_to + 0.45), xytext=(3.2, y_from - 0.45), arrowprops=arrow)
        ax.annotate("", xy=(5.5, y_from - 1), xytext=(3.2, y_from - 1), arrowprops=arrow)
        reason = textwrap.fill(f"Excluded: {row.reason}", 38)
        _box(ax, 5.7, y_from - 1, f"{reason}\nn = {row.n_excluded}", gid=f"{i}:n_excluded", side=True)
        label = textwrap.fill(str(row.label), 40)
        _box(ax, 3.2, y_to, f"{label}\nn = {row.n_after}", gid=f"{i}:n_after")
    if enabled and protected.rules.rounding:
        ax.text(10, -0.5, f"counts rounded to {protected.rules.rounding}", ha="right", fontsize=8,
                color="#555555")  # fmt: skip
    mark_figure(ax, protected, suppressed=bool(protected.suppressed.to_numpy().any()))
    return ax
