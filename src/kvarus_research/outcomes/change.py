"""Change in continuous outcomes between two timepoints (endring mellom basis, målepunkt, avslutning, oppfølging).

Paired complete cases: a course counts when the outcome is registered at both timepoints; courses without a
value at the start, or with a start value but none at the end, are counted in the table (``n_missing_start``,
``n_missing_end``). The change is **end − start**; ``improvement`` is the same change signed by the codebook's
direction of improvement (positive = better), so it reads the same for "lower is better" and "higher is better"
measures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from kvarus_research.codebook import Codebook
from kvarus_research.errors import AnalysisError
from kvarus_research.outcomes._data import (
    LongIndex,
    as_list,
    check_ci,
    check_timepoints,
    course_values,
    group_labels,
    group_values,
    long_frame,
    ordered_groups,
    outcome_meta,
    paired,
    resolve_codebook,
    wilson,
)
from kvarus_research.results import Definition, Result, draw_marker, hidden

STAT_COLUMNS: tuple[str, ...] = (
    "mean_start",
    "sd_start",
    "mean_end",
    "sd_end",
    "mean_change",
    "change_ci_low",
    "change_ci_high",
    "sd_change",
    "improvement",
    "improvement_ci_low",
    "improvement_ci_high",
    "t",
    "df",
    "p_t",
    "wilcoxon_w",
    "p_wilcoxon",
    "d_z",
    "d_z_ci_low",
    "d_z_ci_high",
    "g_av",
    "g_av_ci_low",
    "g_av_ci_high",
    "percent_change",
    "percent_ci_low",
    "percent_ci_high",
)
RESPONDER_COLUMNS: tuple[str, ...] = ("responder_share", "responder_ci_low", "responder_ci_high")

METHOD = (
    "paired complete cases; change = end - start; mean change with a t interval; paired t-test and Wilcoxon "
    "signed-rank test (scipy, zero differences dropped, normal approximation for n > 50); Cohen's d_z = mean "
    "change / SD of change with the normal approximation SE = sqrt(1/n + d_z^2 / (2(n-1))); Hedges' g_av = J * "
    "mean change / sqrt((SD_start^2 + SD_end^2)/2), J = 1 - 3/(4(n-1)-1), CI = J * (d_av +- z SE) with the "
    "delta-method SE of Bonett (2008): SE^2 = d_av^2 (s1^4 + s2^4 + 2 s12^2) / (8 (n-1) s^4) + SD_change^2 / "
    "((n-1) s^2), s^2 = (s1^2 + s2^2)/2; percent change = 100 (mean_end / mean_start - 1) with a delta-method CI; "
    "responder shares with Wilson intervals"
)


def _responder_rule(responder: Any) -> tuple[str, float] | None:
    if responder is None:
        return None
    if isinstance(responder, int | float) and not isinstance(responder, bool):
        return ("points", float(responder))
    if isinstance(responder, Mapping) and len(responder) == 1:
        ((kind, value),) = responder.items()
        if kind in ("points", "percent"):
            return (str(kind), float(value))
    raise AnalysisError(
        f"responder must be a number of points, {{'points': x}} or {{'percent': x}}, got {responder!r}"
    )


def paired_stats(
    x1: np.ndarray, x2: np.ndarray, *, sign: int, ci: float = 0.95, responder: tuple[str, float] | None = None
) -> dict[str, float]:
    """All change statistics for paired values ``x1`` (start) and ``x2`` (end) (see :data:`METHOD`).

    Examples
    --------
    >>> s = paired_stats(np.array([10.0, 12, 8]), np.array([7.0, 9, 8]), sign=-1)
    >>> round(s["mean_change"], 3), round(s["improvement"], 3), round(s["d_z"], 3)
    (-2.0, 2.0, -1.155)
    """
    x1 = np.asarray(x1, dtype=float)
    x2 = np.asarray(x2, dtype=float)
    n = len(x1)
    out: dict[str, float] = dict.fromkeys(STAT_COLUMNS, np.nan)
    out["n"] = n
    if responder is not None:
        out.update(
            {"n_responders": np.nan, "n_responder_base": np.nan, **dict.fromkeys(RESPONDER_COLUMNS, np.nan)}
        )
    if n < 2:
        return out
    d = x2 - x1
    m1, m2, md = x1.mean(), x2.mean(), d.mean()
    v1, v2, vd = x1.var(ddof=1), x2.var(ddof=1), d.var(ddof=1)
    cov = (v1 + v2 - vd) / 2
    sd_d = np.sqrt(vd)
    df = n - 1
    tcrit = stats.t.ppf((1 + ci) / 2, df)
    z = stats.norm.ppf((1 + ci) / 2)
    se = sd_d / np.sqrt(n)
    lo, hi = md - tcrit * se, md + tcrit * se
    imp_lo, imp_hi = sorted((sign * lo, sign * hi))
    out.update(
        mean_start=m1,
        sd_start=np.sqrt(v1),
        mean_end=m2,
        sd_end=np.sqrt(v2),
        mean_change=md,
        change_ci_low=lo,
        change_ci_high=hi,
        sd_change=sd_d,
        improvement=sign * md,
        improvement_ci_low=imp_lo,
        improvement_ci_high=imp_hi,
        df=df,
    )
    if sd_d > 0:
        t = md / se
        dz = md / sd_d
        se_dz = np.sqrt(1 / n + dz**2 / (2 * df))
        out.update(
            t=t, p_t=2 * stats.t.sf(abs(t), df), d_z=dz, d_z_ci_low=dz - z * se_dz, d_z_ci_high=dz + z * se_dz
        )
    if np.any(d != 0):
        w = stats.wilcoxon(d, zero_method="wilcox")
        out.update(wilcoxon_w=float(w.statistic), p_wilcoxon=float(w.pvalue))
    s2 = (v1 + v2) / 2
    if s2 > 0:
        d_av = md / np.sqrt(s2)
        j = 1 - 3 / (4 * df - 1) if df > 1 else np.nan
        se_av = np.sqrt(d_av**2 * (v1**2 + v2**2 + 2 * cov**2) / (8 * df * s2**2) + vd / (df * s2))
        out.update(g_av=j * d_av, g_av_ci_low=j * (d_av - z * se_av), g_av_ci_high=j * (d_av + z * se_av))
    if m1 != 0:
        r = m2 / m1
        se_r = np.sqrt(max(v2 + r**2 * v1 - 2 * r * cov, 0.0) / n) / abs(m1)
        out.update(
            percent_change=100 * (r - 1),
            percent_ci_low=100 * (r - z * se_r - 1),
            percent_ci_high=100 * (r + z * se_r - 1),
        )
    if responder is not None:
        kind, threshold = responder
        imp = sign * d
        if kind == "points":
            base = np.ones(n, dtype=bool)
            hit = imp >= threshold
        else:
            base = x1 != 0
            with np.errstate(divide="ignore", invalid="ignore"):
                hit = base & (100 * imp / np.abs(np.where(base, x1, 1.0)) >= threshold)
        k, nb = int(hit.sum()), int(base.sum())
        rlo, rhi = wilson(k, nb, ci)
        out.update(
            n_responders=k,
            n_responder_base=nb,
            responder_share=k / nb if nb else np.nan,
            responder_ci_low=float(rlo),
            responder_ci_high=float(rhi),
        )
    return {k: v if isinstance(v, int) else float(v) for k, v in out.items()}


class ChangeResult(Result):
    """Change between two timepoints: one row per outcome (and group) with counts, effect sizes and tests.

    Attributes
    ----------
    table : DataFrame
        ``outcome, label, direction, start, end, group_variable, group, group_label, n, n_missing_start,
        n_missing_end`` then the statistics of :data:`STAT_COLUMNS` (and the responder columns when asked).
    definition : Definition
    """

    count_columns = ("n", "n_missing_start", "n_missing_end")
    group_total = ("group", "All")
    group_label_columns = ("group_variable", "group_label")

    def __init__(self, table: pd.DataFrame, definition: Definition, responder: bool) -> None:
        self.table = table
        self.definition = definition
        derived: dict[str, Any] = dict.fromkeys(STAT_COLUMNS, "n")
        if responder:
            self.count_columns = (*self.count_columns, "n_responders", "n_responder_base")
            derived.update(dict.fromkeys(RESPONDER_COLUMNS, ["n_responders", "n_responder_base"]))
            self.complement_columns = {"n_responders": "n_responder_base"}
        self.derived_columns = derived

    @classmethod
    def _draw(cls, protected: Any, ax: Any, definition: Definition, **kwargs: Any) -> Any:
        """Forest plot of the improvement (change signed so that right = better) with its CI, one row per line.

        A row whose ``n`` is suppressed has no point (its estimate is derived from the hidden count) and shows the
        rules' marker at 0. ``color`` sets the colour of the points.
        """
        import matplotlib.pyplot as plt

        tab = protected.table.reset_index(drop=True)
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 0.5 * len(tab) + 1.5))
        y = np.arange(len(tab))[::-1]
        gone = hidden(protected, "n") | hidden(protected, "improvement")
        est = tab["improvement"].astype(float).to_numpy()
        lo, hi = (
            tab["improvement_ci_low"].astype(float).to_numpy(),
            tab["improvement_ci_high"].astype(float).to_numpy(),
        )
        ok = ~gone & ~np.isnan(est)
        ax.errorbar(est[ok], y[ok], xerr=np.vstack([est[ok] - lo[ok], hi[ok] - est[ok]]), fmt="o",
                    color=kwargs.get("color", "C0"), capsize=3)  # fmt: skip
        for yi in y[gone]:
            draw_marker(ax, 0.0, yi, protected)
        names = [
            lab if gv in (None, "") or pd.isna(gv) else f"{lab}: {gl}"
            for lab, gv, gl in zip(tab["label"], tab["group_variable"], tab["group_label"], strict=True)
        ]
        ax.set_yticks(y, names)
        ax.set_ylim(-0.7, len(tab) - 0.3)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_xlabel(
            f"Improvement {tab['start'].iloc[0]} \u2192 {tab['end'].iloc[0]} (points, right = better)"
        )
        ax.set_title(definition.details.get("title", "Change"))
        return ax


def change(
    data: Any,
    outcome: str | Sequence[str],
    *,
    start: str = "baseline",
    end: str = "ending",
    by: str | None = None,
    responder: float | Mapping[str, float] | None = None,
    ci: float = 0.95,
    codebook: Codebook | None = None,
    direction: str | None = None,
    language: str = "en",
) -> ChangeResult:
    """Change in one or more continuous outcomes between two timepoints, overall and by group.

    Parameters
    ----------
    data : Timepoints or DataFrame
        The timepoint long format (``align_timepoints(...)`` or its ``.long`` frame).
    outcome : str or sequence of str
        Codebook outcome variable(s), e.g. ``"dager_rus_30"``.
    start, end : str
        Timepoint names (``baseline``, ``MP1``.., ``ending``, ``followup``); change is ``end - start``.
    by : str, optional
        A grouping variable: a long-format column taken at ``start`` (e.g. ``"unit_id"``, ``"hovedrusmiddel"``),
        or a course-table column (e.g. ``"ending_type"``). Courses with no group value form a group "(missing)".
    responder : float or {"points": x} or {"percent": x}, optional
        A responder improves by at least ``x`` points (or ``x`` percent of the start value; start 0 is then
        excluded from that share's denominator, ``n_responder_base``).
    ci : float
        Confidence level of every interval.
    codebook : Codebook, optional
        Directions and labels; by default the data's codebook or the bundled one.
    direction : {"lower", "higher"}, optional
        Overrides the codebook's direction of improvement.
    language : str
        Label language ("en" or "nb").

    Returns
    -------
    ChangeResult

    Raises
    ------
    AnalysisError
        Unknown outcome or timepoint, or fewer than two paired courses overall.

    Examples
    --------
    >>> import pandas as pd
    >>> long = pd.DataFrame({"course_id": [1, 1, 2, 2, 3, 3], "timepoint": ["baseline", "ending"] * 3,
    ...                      "dager_rus_30": [20, 10, 15, 12, 30, 15]})
    >>> res = change(long, "dager_rus_30")
    >>> res.table[["n", "mean_change", "improvement"]].round(2).to_dict("records")
    [{'n': 3, 'mean_change': -9.33, 'improvement': 9.33}]
    """
    ci = check_ci(ci)
    long = long_frame(data)
    ix = LongIndex(long)
    check_timepoints(ix, [start, end])
    cb = resolve_codebook(data, codebook)
    rule = _responder_rule(responder)
    rows = []
    for name in as_list(outcome):
        meta = outcome_meta(cb, name, direction=direction)
        pairs, excl = paired(ix, name, start, end)
        if len(pairs) < 2:
            raise AnalysisError(
                f"change in {name!r} from {start!r} to {end!r}: {len(pairs)} course(s) have both values; need >= 2"
            )
        base = {
            "outcome": name,
            "label": cb.label(name, language),
            "direction": meta.direction,
            "start": start,
            "end": end,
        }
        stats_all = paired_stats(
            pairs["start"].to_numpy(), pairs["end"].to_numpy(), sign=meta.sign, ci=ci, responder=rule
        )
        rows.append(
            {**base, "group_variable": None, "group": "All", "group_label": "All", **excl, **stats_all}
        )
        if by is None:
            continue
        g_all = group_values(course_values(data, ix, [by], at=start)[by])
        for value in ordered_groups(pd.unique(g_all)):
            sub, ex = paired(ix, name, start, end, mask=(g_all == value).to_numpy())
            st = paired_stats(
                sub["start"].to_numpy(), sub["end"].to_numpy(), sign=meta.sign, ci=ci, responder=rule
            )
            label = value if value == "(missing)" else group_labels(cb, by, [value], language)[0]
            rows.append({**base, "group_variable": by, "group": value, "group_label": label, **ex, **st})
    table = pd.DataFrame(rows)
    table = table.drop(columns=["n_courses"])
    lead = ["outcome", "label", "direction", "start", "end", "group_variable", "group", "group_label", "n"]
    table = table[lead + [c for c in table.columns if c not in lead]]
    rtxt = "none" if rule is None else f"improvement >= {rule[1]:g} {rule[0]}"
    definition = Definition(
        population=f"courses with the outcome registered at both {start!r} and {end!r} (paired complete cases)",
        method=METHOD,
        details={
            "timepoints": f"{start} -> {end}",
            "change": "end - start; improvement = change signed by the codebook direction (positive = better)",
            "ci": f"{ci:.0%}",
            "responder": rtxt,
            "by": by or "none",
            "title": f"Change {start} \u2192 {end}",
        },
    )
    return ChangeResult(table, definition, responder=rule is not None)
