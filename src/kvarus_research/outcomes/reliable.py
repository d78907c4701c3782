"""Reliable and clinically significant change (Jacobson & Truax 1991).

For a course with values x1 (start) and x2 (end) the reliable change index is

    RCI = (x2 - x1) / S_diff,   S_diff = sqrt(2) * S_E,   S_E = SD * sqrt(1 - r)

with SD the standard deviation of the measure at the start (by default the sample SD of the start values of the
paired courses) and r its reliability (from the codebook unless given). Signed by the codebook's direction of
improvement, RCI beyond ``z`` (1.96 for 95 %) is a reliable improvement, below ``-z`` a reliable deterioration.
The clinical cut-off between the dysfunctional and the functional range is

- a: the dysfunctional mean + 2 SD in the direction of improvement,
- b: the functional mean - 2 SD in the direction of improvement,
- c: (SD_f * M_d + SD_d * M_f) / (SD_d + SD_f), or the codebook's cut-off when no functional norms are given.

Categories: *deteriorated* (reliable deterioration), *recovered* (reliable improvement and the end value beyond
the cut-off, on the functional side), *improved* (reliable improvement, not beyond the cut-off), *unchanged*.
"""

from __future__ import annotations

from collections.abc import Sequence
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

CATEGORIES: tuple[str, ...] = ("deteriorated", "unchanged", "improved", "recovered")
COLOURS = {"deteriorated": "#c0392b", "unchanged": "#bdc3c7", "improved": "#5dade2", "recovered": "#1e8449"}


def clinical_cutoff(
    criterion: str,
    *,
    sign: int,
    dysfunctional: tuple[float, float] | None = None,
    functional: tuple[float, float] | None = None,
    codebook_cutoff: float | None = None,
) -> float | None:
    """The Jacobson–Truax cut-off by criterion a, b or c (``None`` when c has neither norms nor a codebook value).

    Examples
    --------
    >>> clinical_cutoff("a", sign=-1, dysfunctional=(20.0, 5.0))   # 20 - 2*5: lower is better
    10.0
    >>> clinical_cutoff("c", sign=-1, dysfunctional=(20.0, 5.0), functional=(6.0, 2.0))  # (2*20 + 5*6)/7
    10.0
    """
    if criterion == "a":
        if dysfunctional is None:
            raise AnalysisError("criterion 'a' needs the dysfunctional mean and SD")
        return float(dysfunctional[0] + sign * 2 * dysfunctional[1])
    if criterion == "b":
        if functional is None:
            raise AnalysisError(
                "criterion 'b' needs functional=(mean, sd) of a functional (non-patient) population"
            )
        return float(functional[0] - sign * 2 * functional[1])
    if criterion == "c":
        if functional is not None and dysfunctional is not None:
            (md, sd_d), (mf, sd_f) = dysfunctional, functional
            return float((sd_f * md + sd_d * mf) / (sd_d + sd_f))
        return None if codebook_cutoff is None else float(codebook_cutoff)
    raise AnalysisError(f"criterion must be 'a', 'b' or 'c', got {criterion!r}")


def classify(
    x1: np.ndarray, x2: np.ndarray, *, s_diff: float, sign: int, z: float, cutoff: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """RCI and category for each pair (see the module docstring).

    Examples
    --------
    >>> rci, cat = classify(np.array([20.0, 10]), np.array([8.0, 18]), s_diff=3.0, sign=-1, z=1.96, cutoff=10)
    >>> [round(float(v), 2) for v in rci], cat.tolist()
    ([-4.0, 2.67], ['recovered', 'deteriorated'])
    """
    rci = (np.asarray(x2, float) - np.asarray(x1, float)) / s_diff
    imp = sign * rci
    cat = np.full(len(rci), "unchanged", dtype=object)
    cat[imp < -z] = "deteriorated"
    better = imp > z
    cat[better] = "improved"
    if cutoff is not None:
        cat[better & (sign * (np.asarray(x2, float) - cutoff) > 0)] = "recovered"
    return rci, cat


class ReliableChangeResult(Result):
    """Reliable change categories: one row per outcome (× group) × category with count, share and Wilson CI.

    Attributes
    ----------
    table : DataFrame
        ``outcome, label, group_variable, group, group_label, category, n, n_total, share, ci_low, ci_high``.
    parameters : DataFrame
        Per outcome: ``sd, reliability, s_diff, threshold_points, cutoff, criterion``.
    courses : DataFrame
        Per course (row level, not for export): ``course_id, outcome, start, end, rci, category``.
    """

    count_columns = ("n", "n_total")
    partition_columns = {"n": ("n_total", "category")}
    group_total = ("group", "All")
    group_label_columns = ("group_variable", "group_label")
    derived_columns = {"share": ["n", "n_total"], "ci_low": ["n", "n_total"], "ci_high": ["n", "n_total"]}

    def __init__(
        self, table: pd.DataFrame, parameters: pd.DataFrame, courses: pd.DataFrame, definition: Definition
    ) -> None:
        self.table = table
        self.parameters = parameters
        self.courses = courses
        self.definition = definition

    @classmethod
    def _draw(cls, protected: Any, ax: Any, definition: Definition, **kwargs: Any) -> Any:
        """Stacked bars of the category shares, one bar per outcome (and group), from the protected table.

        A suppressed share is not drawn (the bar keeps the gap) and the bar carries the rules' marker after 100 %.
        """
        import matplotlib.pyplot as plt

        t = protected.table.reset_index(drop=True).assign(_hidden=hidden(protected, "share"))
        keys = list(dict.fromkeys(zip(t["label"], t["group_label"], strict=True)))
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 0.5 * len(keys) + 1.8))
        names = [lab if grp == "All" else f"{lab}: {grp}" for lab, grp in keys]
        y = np.arange(len(keys))[::-1]
        left = np.zeros(len(keys))
        where = {k: i for i, k in enumerate(keys)}
        row = np.array([where[k] for k in zip(t["label"], t["group_label"], strict=True)])
        for cat in CATEGORIES:
            vals = np.zeros(len(keys))
            mine = (t["category"] == cat).to_numpy()
            share = t["share"].astype(float).to_numpy()
            vals[row[mine]] = np.nan_to_num(np.where(t["_hidden"].to_numpy()[mine], 0.0, share[mine])) * 100
            ax.barh(y, vals, left=left, color=COLOURS[cat], label=cat.capitalize())
            left += vals
        for i in np.unique(row[t["_hidden"].to_numpy()]):
            draw_marker(ax, 101.5, y[i], protected, ha="left")
        ax.set_yticks(y, names)
        ax.set_xlim(0, 112)
        ax.set_xticks([0, 20, 40, 60, 80, 100])
        ax.set_xlabel("Share of courses (%)")
        ax.legend(ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.15), frameon=False)
        ax.set_title(definition.details.get("title", "Reliable change"))
        return ax


def reliable_change(
    data: Any,
    outcome: str | Sequence[str],
    *,
    start: str = "baseline",
    end: str = "ending",
    reliability: float | None = None,
    sd: float | None = None,
    cutoff: float | None = None,
    criterion: str = "c",
    dysfunctional: tuple[float, float] | None = None,
    functional: tuple[float, float] | None = None,
    by: str | None = None,
    ci: float = 0.95,
    codebook: Codebook | None = None,
    direction: str | None = None,
    language: str = "en",
) -> ReliableChangeResult:
    """Reliable and clinically significant change (Jacobson & Truax 1991) between two timepoints.

    Parameters
    ----------
    data : Timepoints or DataFrame
        The timepoint long format.
    outcome : str or sequence of str
        Outcome variable(s) of the codebook.
    start, end : str
        Timepoints compared (paired complete cases, exclusions counted in the parameters table).
    reliability : float, optional
        Reliability r of the measure; the codebook's by default.
    sd : float, optional
        SD used for the standard error of measurement; the sample SD at ``start`` by default.
    cutoff : float, optional
        A clinical cut-off given directly (overrides ``criterion``).
    criterion : {"a", "b", "c"}
        Cut-off criterion (see the module docstring). ``"c"`` without ``functional`` norms uses the codebook's
        cut-off; with none available, *recovered* is not assessed (stated in the parameters).
    dysfunctional, functional : (mean, sd), optional
        Norms of the dysfunctional and functional populations; ``dysfunctional`` defaults to the sample at start.
    by : str, optional
        Grouping variable (long-format column at ``start`` or a course-table column).
    ci : float
        Confidence level: the RCI threshold is its two-sided normal quantile (1.96 for 0.95) and shares get
        Wilson intervals at this level.
    codebook, direction, language
        As in :func:`kvarus_research.outcomes.change`.

    Returns
    -------
    ReliableChangeResult

    Examples
    --------
    >>> import pandas as pd
    >>> long = pd.DataFrame({"course_id": sorted([1, 2, 3, 4] * 2), "timepoint": ["baseline", "ending"] * 4,
    ...                      "dager_rus_30": [20, 8, 18, 17, 10, 18, 25, 12]})
    >>> res = reliable_change(long, "dager_rus_30", sd=5.0, reliability=0.8, cutoff=10)
    >>> res.table.set_index("category")["n"].to_dict()
    {'deteriorated': 1, 'unchanged': 1, 'improved': 1, 'recovered': 1}
    """
    ci = check_ci(ci)
    long = long_frame(data)
    ix = LongIndex(long)
    check_timepoints(ix, [start, end])
    cb = resolve_codebook(data, codebook)
    z = float(stats.norm.ppf((1 + ci) / 2))
    rows, params, per_course = [], [], []
    for name in as_list(outcome):
        meta = outcome_meta(cb, name, direction=direction, reliability=reliability)
        if meta.reliability is None:
            raise AnalysisError(f"outcome {name!r} has no reliability in the codebook; pass reliability=")
        pairs, excl = paired(ix, name, start, end)
        if len(pairs) < 2 and sd is None:
            raise AnalysisError(f"reliable change in {name!r}: {len(pairs)} paired course(s); need >= 2")
        x1, x2 = pairs["start"].to_numpy(), pairs["end"].to_numpy()
        sd_used = float(sd) if sd is not None else float(np.std(x1, ddof=1))
        s_diff = np.sqrt(2) * sd_used * np.sqrt(1 - meta.reliability)
        dys = dysfunctional if dysfunctional is not None else (float(np.mean(x1)), sd_used)
        cut = (
            float(cutoff)
            if cutoff is not None
            else clinical_cutoff(
                criterion,
                sign=meta.sign,
                dysfunctional=dys,
                functional=functional,
                codebook_cutoff=meta.cutoff,
            )
        )
        rci, cat = classify(x1, x2, s_diff=s_diff, sign=meta.sign, z=z, cutoff=cut)
        params.append(
            {
                "outcome": name,
                "label": cb.label(name, language),
                "direction": meta.direction,
                "sd": sd_used,
                "reliability": meta.reliability,
                "s_diff": s_diff,
                "threshold_points": z * s_diff,
                "cutoff": np.nan if cut is None else cut,
                "criterion": "given" if cutoff is not None else (criterion if cut is not None else "none"),
                **excl,
            }
        )
        cats = pd.Series(cat, index=pairs.index)
        per_course.append(
            pd.DataFrame(
                {"outcome": name, "start": x1, "end": x2, "rci": rci, "category": cat}, index=pairs.index
            )
        )
        groups: list[tuple[Any, Any, str, pd.Series]] = [(None, "All", "All", cats)]
        if by is not None:
            g = group_values(course_values(data, ix, [by], at=start)[by].reindex(pairs.index))
            for value in ordered_groups(pd.unique(g)):
                label = value if value == "(missing)" else group_labels(cb, by, [value], language)[0]
                groups.append((by, value, label, cats[g == value]))
        for gv, value, label, sub in groups:
            counts = sub.value_counts().reindex(list(CATEGORIES), fill_value=0)
            total = int(counts.sum())
            lo, hi = wilson(counts.to_numpy(), np.full(len(counts), total), ci)
            for (category, k), l_, h_ in zip(counts.items(), lo, hi):
                rows.append(
                    {
                        "outcome": name,
                        "label": cb.label(name, language),
                        "group_variable": gv,
                        "group": value,
                        "group_label": label,
                        "category": category,
                        "n": int(k),
                        "n_total": total,
                        "share": k / total if total else np.nan,
                        "ci_low": float(l_),
                        "ci_high": float(h_),
                    }
                )
    courses = pd.concat(per_course).reset_index()
    definition = Definition(
        population=f"courses with the outcome registered at both {start!r} and {end!r} (paired complete cases)",
        method=(
            "Jacobson & Truax (1991) reliable change index RCI = (end - start) / S_diff, S_diff = sqrt(2) SD "
            f"sqrt(1 - r); reliable when |RCI| > {z:.2f}; clinical cut-off by criterion a/b/c; categories "
            "deteriorated / unchanged / improved / recovered with the codebook's direction of improvement; "
            "shares with Wilson intervals"
        ),
        details={
            "timepoints": f"{start} -> {end}",
            "ci": f"{ci:.0%}",
            "sd": "given" if sd is not None else f"sample SD at {start}",
            "by": by or "none",
            "title": f"Reliable change {start} \u2192 {end}",
        },
    )
    return ReliableChangeResult(pd.DataFrame(rows), pd.DataFrame(params), courses, definition)
