"""Time in treatment: Kaplan–Meier (any ending) and Aalen–Johansen cumulative incidence (each ending type).

Both return a :class:`SurvivalResult` whose ``.table`` is, by default, disclosure-safe: times moved up to a
fixed grid (``step``, 30 days by default), counts at risk and events rounded to ``round_to`` (5), the tail with
fewer than ``min_at_risk`` courses at risk cut off, and the curve and its CI *computed from that rounded table*.
``protect=False`` gives the exact curve at every event time (stamped as unprotected in the definition).
Medians, restricted means and log-rank tests are computed on the exact data (they are aggregates of whole groups).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

from kvarus_research.errors import AnalysisError
from kvarus_research.results import Definition, Result
from kvarus_research.retention.data import ENTRY, TimeToEvent, as_time_to_event
from kvarus_research.retention.estimators import (
    _median,
    _rmst,
    aalen_johansen_from_counts,
    coarsened_counts,
    event_counts,
    kaplan_meier_from_counts,
    logrank_from_events,
)

ANY = "any ending"
#: Above this many courses the log-rank test uses the vectorised implementation instead of lifelines.
LIFELINES_MAX_ROWS = 100_000


class SurvivalResult(Result):
    """Kaplan–Meier or cumulative-incidence curves by group, with their at-risk counts.

    Attributes
    ----------
    table : DataFrame
        ``group, cause, time, n_at_risk, n_events, cum_events, estimate, ci_lower, ci_upper``.
    summary : DataFrame
        Per group (and cause): courses, events, median with CI (Kaplan–Meier), restricted mean time in
        treatment with CI at ``horizon``, or cumulative incidence at ``horizon`` with CI (Aalen–Johansen).
    tests : DataFrame
        Tests between groups (empty without ``by``): ``cause, groups, test, statistic, df, p_value``, the
        ``test`` column naming the method. Kaplan–Meier: the log-rank test. Cumulative incidence: Gray's test of
        each cause's cumulative incidence (the curves drawn) and the cause-specific log-rank test of each cause
        (its hazard, the other endings censored); they answer different questions.
    """

    count_columns = ("n_at_risk", "n_events", "cum_events")
    derived_columns = {"estimate": "n_at_risk", "ci_lower": "n_at_risk", "ci_upper": "n_at_risk"}

    def __init__(
        self,
        table: pd.DataFrame,
        summary: pd.DataFrame,
        tests: pd.DataFrame,
        definition: Definition,
        *,
        kind: str,
        by: str | None,
        by_label: str,
        time_unit: str,
        cause_labels: dict[str, str] | None = None,
    ) -> None:
        self.table = table
        self.summary = summary
        self.tests = tests
        self.definition = definition
        self.kind = kind
        self.by = by
        self.by_label = by_label
        self.time_unit = time_unit
        self.cause_labels = {ANY: "Any ending", **(cause_labels or {})}
        self.group_columns = ("group",) if by else ()

    def _draw_context(self) -> dict[str, Any]:
        return {"kind": self.kind, "by_label": self.by_label if self.by else "", "time_unit": self.time_unit,
                "cause_labels": dict(self.cause_labels)}  # fmt: skip

    @classmethod
    def _draw(cls, protected: Any, ax: Any, definition: Definition, *, kind: str = "km", by_label: str = "",
              time_unit: str = "days", cause_labels: dict[str, str] | None = None, cause: str | None = None,
              at_risk: bool = True, ci: bool = True, **kwargs: Any) -> Any:  # fmt: skip
        """Step curves with CI bands and a number-at-risk table under them, from the protected curve table.

        ``cause`` picks one ending type of a cumulative-incidence result (default: all causes, one colour each;
        with groups, the first cause); ``at_risk`` and ``ci`` switch the at-risk table and the CI bands. See
        :func:`kvarus_research.retention.plots.plot_curves`.
        """
        from kvarus_research.retention.plots import plot_curves

        return plot_curves(protected, kind=kind, time_unit=time_unit, by_label=by_label,
                           cause_labels=cause_labels, ax=ax, cause=cause, at_risk=at_risk, ci=ci)  # fmt: skip


def _coarsening(
    rules: Any, step: float | None, round_to: int | None, min_at_risk: int | None
) -> dict[str, Any]:
    """The curve coarsening of ``rules``, with any value the caller gave instead.

    Examples
    --------
    >>> _coarsening("norway", None, 10, None)
    {'step': 30, 'round_to': 10, 'min_at_risk': 10}
    """
    from kvarus_research.privacy.rules import resolve_rules

    r = resolve_rules(rules)
    return {
        "step": r.curve_step if step is None else step,
        "round_to": r.curve_round_to if round_to is None else round_to,
        "min_at_risk": r.curve_min_at_risk if min_at_risk is None else min_at_risk,
    }


def _groups(tte: TimeToEvent, by: str | None) -> tuple[list[Any], list[np.ndarray]]:
    t = tte.table
    if by is None:
        return ["all"], [np.arange(len(t))]
    if by not in t.columns:
        raise AnalysisError(
            f"by={by!r}: no such column in the course table; available: {sorted(map(str, t.columns))}"
        )
    key = t[by]
    n_missing = int(key.isna().sum())
    codes, uniques = pd.factorize(key, sort=True)
    if n_missing and not len(uniques):
        raise AnalysisError(f"by={by!r}: every course lacks a value")
    return list(uniques), [np.flatnonzero(codes == i) for i in range(len(uniques))]


def _curve_rows(
    counts: pd.DataFrame, causes: Sequence[str], kind: str, alpha: float, group: Any
) -> list[pd.DataFrame]:
    n = counts["n_at_risk"].to_numpy()
    ds = [counts[f"d_{i + 1}"].to_numpy() for i in range(len(causes))]
    base = {"group": group, "time": counts["time"].to_numpy(), "n_at_risk": n}
    if kind == "km":
        d = np.sum(ds, axis=0)
        s, _, lo, hi = kaplan_meier_from_counts(n, d, alpha)
        s = np.clip(s, 0, 1)
        cum = np.cumsum(d)
        return [
            pd.DataFrame(
                {
                    **base,
                    "cause": ANY,
                    "n_events": d,
                    "cum_events": cum,
                    "estimate": s,
                    "ci_lower": lo,
                    "ci_upper": hi,
                }
            )
        ]
    out = []
    for cause, d, (f, _, lo, hi) in zip(causes, ds, aalen_johansen_from_counts(n, ds, alpha), strict=True):
        out.append(
            pd.DataFrame(
                {
                    **base,
                    "cause": cause,
                    "n_events": d,
                    "cum_events": np.cumsum(d),
                    "estimate": np.clip(f, 0, 1),
                    "ci_lower": lo,
                    "ci_upper": hi,
                }
            )
        )
    return out


def _fit(
    data: Any,
    kind: str,
    *,
    by: str | None,
    dropout: Sequence[str],
    extract_date: Any,
    time_unit: str,
    alpha: float,
    horizon: float | None,
    protect: bool,
    step: float,
    round_to: int,
    min_at_risk: int,
) -> SurvivalResult:
    tte = as_time_to_event(
        data, dropout=dropout, extract_date=extract_date, time_unit=time_unit, delayed_entry=True
    )
    by = by if by is not None else tte.by
    t = tte.table
    if len(t) == 0:
        raise AnalysisError("no courses left to analyse after exclusions: " + tte.definition.population)
    causes = list(tte.causes)
    dur = t["duration"].to_numpy(dtype=float)
    code = t["cause_code"].to_numpy()
    entry_t = t[ENTRY].to_numpy(dtype=float) if tte.entry else None
    horizon = float(horizon if horizon is not None else 365 / TIME_SCALE[tte.time_unit])
    z = norm.ppf(1 - alpha / 2)
    values, index = _groups(tte, by)
    rows, summary = [], []
    for value, idx in zip(values, index, strict=True):
        exact = event_counts(dur[idx], code[idx], len(causes), None if entry_t is None else entry_t[idx])
        exact = exact.loc[exact[[f"d_{i + 1}" for i in range(len(causes))]].sum(axis=1) > 0].reset_index(
            drop=True
        )
        exact_rows = _curve_rows(exact, causes, kind, alpha, value)
        if protect:
            grid = coarsened_counts(dur[idx], code[idx], len(causes), step=step, round_to=round_to,
                                    min_at_risk=min_at_risk, entry=None if entry_t is None else entry_t[idx])  # fmt: skip
            curves = _curve_rows(grid, causes, kind, alpha, value)
            if entry_t is not None:  # curves from every grid point; points with few truly at risk not shown
                curves = [c.loc[grid["shown"].to_numpy()] for c in curves]
            rows += curves
        else:
            rows += exact_rows
        n_events = int((code[idx] > 0).sum())
        for r in exact_rows:
            tm, est = r["time"].to_numpy(), r["estimate"].to_numpy()
            entry: dict[str, Any] = {
                "group": value,
                "cause": r["cause"].iloc[0] if len(r) else ANY,
                "n_courses": len(idx),
                "n_events": int(r["n_events"].sum()),
            }
            if kind == "km":
                entry["n_events"] = n_events
                med = _median(tm, est, r["ci_lower"].to_numpy(), r["ci_upper"].to_numpy())
                entry.update(median=med[0], median_ci_lower=med[1], median_ci_upper=med[2])
                m, se = _rmst(tm, est, r["n_at_risk"].to_numpy(), r["n_events"].to_numpy(), horizon)
                entry.update(
                    horizon=horizon, rmst=m, rmst_ci_lower=m - z * se, rmst_ci_upper=min(m + z * se, horizon)
                )
            else:
                at = np.searchsorted(tm, horizon, side="right") - 1
                cols = {"cumulative_incidence": "estimate", "ci_lower": "ci_lower", "ci_upper": "ci_upper"}
                entry["horizon"] = horizon
                entry.update({k: float(r[c].iloc[at]) if at >= 0 else 0.0 for k, c in cols.items()})
            summary.append(entry)
    table = pd.concat(rows, ignore_index=True)
    table = table[
        ["group", "cause", "time", "n_at_risk", "n_events", "cum_events", "estimate", "ci_lower", "ci_upper"]
    ]
    tests = _logrank(tte, by, causes, kind, alpha) if by else pd.DataFrame()
    what = (
        "Kaplan–Meier estimate of still being in treatment"
        if kind == "km"
        else ("Aalen–Johansen cumulative incidence of each ending type (competing risks)")
    )
    if protect:
        disclosure = (
            f"times moved up to a {step:g}-{tte.time_unit} grid; counts at risk and cumulative events "
            f"rounded to {round_to}; tail with fewer than {min_at_risk} at risk cut; curves and CIs "
            "computed from the rounded table"
        )
    else:
        disclosure = "OFF: exact curve at every event time (not for export)"
    details = dict(tte.definition.details)
    details.update(
        {
            "groups": f"by {tte.label(by)}" if by else "all courses",
            "CI": f"{100 * (1 - alpha):g} % pointwise, log(-log) scale"
            + (" (Greenwood)" if kind == "km" else " (delta method, Collett 2015)"),
            "summary": (
                "median: first time S <= 0.5 (the midpoint of a plateau at exactly 0.5, as R's survfit), CI from "
                "the pointwise CI; restricted mean time in treatment "
                f"(RMST) up to {horizon:g} {tte.time_unit}, Greenwood-type SE"
                if kind == "km"
                else f"cumulative incidence at {horizon:g} {tte.time_unit}"
            ),
            "disclosure control": disclosure,
        }
    )
    if entry_t is not None and kind != "km":
        details["tests"] = "with delayed entry: cause-specific log-rank only (Gray's test not supported yet)"
    definition = Definition(population=tte.definition.population, method=what, details=details)
    return SurvivalResult(
        table,
        pd.DataFrame(summary),
        tests,
        definition,
        kind=kind,
        by=by,
        by_label=tte.label(by) if by else "",
        time_unit=tte.time_unit,
        cause_labels={c: tte.cause_label(c) for c in causes},
    )


TIME_SCALE = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25}


def _logrank(tte: TimeToEvent, by: str, causes: Sequence[str], kind: str, alpha: float) -> pd.DataFrame:
    """Log-rank test across groups (lifelines; own with delayed entry); for cumulative incidence Gray's test and
    one cause-specific test per cause (Gray's test not with delayed entry)."""
    from lifelines.statistics import multivariate_logrank_test

    t = tte.table.dropna(subset=[by])
    if t[by].nunique() < 2:
        return pd.DataFrame()
    dur = t["duration"].to_numpy(dtype=float)
    groups = t[by].astype(str).to_numpy()
    targets = (
        [(ANY, t["event"].to_numpy())]
        if kind == "km"
        else [(c, (t["cause"] == c).to_numpy().astype(int)) for c in causes]
    )
    rows = []
    codes = pd.factorize(groups, sort=True)[0]
    entry = t[ENTRY].to_numpy(dtype=float) if tte.entry else None
    for cause, ev in targets:
        if entry is not None:  # lifelines' test has no delayed entry
            stat, df = logrank_from_events(dur, ev, codes, entry)
        elif len(t) <= LIFELINES_MAX_ROWS:
            res = multivariate_logrank_test(dur, groups, ev, alpha=1 - alpha)
            stat, df = float(res.test_statistic), int(res.degrees_of_freedom)
        else:  # lifelines builds per-group survival tables in pandas: too slow for a national registry
            stat, df = logrank_from_events(dur, ev, codes)
        rows.append(
            {
                "cause": cause,
                "groups": t[by].nunique(),
                "test": "log-rank" if kind == "km" else "cause-specific log-rank (other endings censored)",
                "statistic": stat,
                "df": df,
                "p_value": float(chi2.sf(stat, df)),
            }
        )
    out = pd.DataFrame(rows)
    if kind != "km" and entry is None:  # the test of the curves, beside the cause-specific tests of hazards
        from kvarus_research.retention.competing import gray_rows

        out = pd.concat([gray_rows(tte, by, causes), out], ignore_index=True)
    return out


def kaplan_meier(
    data: Any,
    *,
    by: str | None = None,
    dropout: Sequence[str] = ("interrupted",),
    extract_date: Any = None,
    time_unit: str = "days",
    alpha: float = 0.05,
    horizon: float | None = None,
    protect: bool = True,
    rules: Any = "norway",
    step: float | None = None,
    round_to: int | None = None,
    min_at_risk: int | None = None,
) -> SurvivalResult:
    """Kaplan–Meier estimate of still being in treatment (time to any ending), optionally by group.

    Parameters
    ----------
    data : Cohort, Registry, DataFrame or TimeToEvent
        See :func:`kvarus_research.retention.time_to_event`.
    by : str, optional
        Group column: ``unit_name``, ``region``, ``setting``, ``hovedrusmiddel``, ``age_group`` or any other.
    dropout, extract_date, time_unit
        Passed to :func:`time_to_event` when ``data`` is not a TimeToEvent already.
    alpha : float
        1 - confidence level.
    horizon : float, optional
        Horizon of the restricted mean time in treatment (default one year, in ``time_unit``).
    protect : bool
        Disclosure-safe table (grid, rounding, tail cut); ``False`` gives the exact curve.
    rules : {"norway", "opensafely"} or DisclosureRules
        The disclosure rules whose curve coarsening applies (``curve_step``, ``curve_round_to``,
        ``curve_min_at_risk``; 30 days, 5 and 10 in both presets).
    step, round_to, min_at_risk
        Override the rules: grid step (in ``time_unit``), rounding base, and the fewest courses at risk shown.

    Returns
    -------
    SurvivalResult
        ``.table`` (the curve), ``.summary`` (median with CI, RMST with CI), ``.tests`` (log-rank).

    Examples
    --------
    >>> import pandas as pd
    >>> c = pd.DataFrame({"start_date": pd.to_datetime(["2021-01-01"] * 4),
    ...     "end_date": pd.to_datetime(["2021-01-11", "2021-01-11", "2021-01-21", None]),
    ...     "ending_type": ["interrupted", "active", "mutual_agreement", "active"]})
    >>> km = kaplan_meier(c, extract_date="2021-02-01", protect=False)
    >>> km.table["estimate"].round(3).tolist()  # day 10: 1 - 1/4 = 0.75; day 20: 0.75 * (1 - 1/3) = 0.5
    [0.75, 0.5]
    """
    return _fit(
        data,
        "km",
        by=by,
        dropout=dropout,
        extract_date=extract_date,
        time_unit=time_unit,
        alpha=alpha,
        horizon=horizon,
        protect=protect,
        **_coarsening(rules, step, round_to, min_at_risk),
    )


def cumulative_incidence(
    data: Any,
    *,
    by: str | None = None,
    dropout: Sequence[str] = ("interrupted",),
    extract_date: Any = None,
    time_unit: str = "days",
    alpha: float = 0.05,
    horizon: float | None = None,
    protect: bool = True,
    rules: Any = "norway",
    step: float | None = None,
    round_to: int | None = None,
    min_at_risk: int | None = None,
) -> SurvivalResult:
    """Aalen–Johansen cumulative incidence of each ending type (dropout and its competitors), with CIs.

    Not 1 − Kaplan–Meier of one cause: the other endings are competing events, so the incidences of all
    causes plus the Kaplan–Meier probability of still being in treatment add up to 1 at every time.

    Parameters
    ----------
    data, by, dropout, extract_date, time_unit, alpha, protect, rules, step, round_to, min_at_risk
        As in :func:`kaplan_meier`.
    horizon : float, optional
        Time at which ``.summary`` reports each cumulative incidence (default one year).

    Returns
    -------
    SurvivalResult
        ``.table`` (one curve per group and cause), ``.summary`` (incidence at ``horizon``), ``.tests``
        (Gray's test of each cause's cumulative incidence across groups, and the cause-specific log-rank tests,
        named in the ``test`` column; see :func:`kvarus_research.retention.gray_test`).

    Examples
    --------
    >>> import pandas as pd
    >>> c = pd.DataFrame({"start_date": pd.to_datetime(["2021-01-01"] * 4),
    ...     "end_date": pd.to_datetime(["2021-01-11", "2021-01-21", "2021-01-21", None]),
    ...     "ending_type": ["interrupted", "mutual_agreement", "interrupted", "active"]})
    >>> ci = cumulative_incidence(c, extract_date="2021-02-01", protect=False)
    >>> ci.summary.set_index("cause")["cumulative_incidence"].round(3).to_dict()
    {'dropout': 0.5, 'mutual_agreement': 0.25, 'transferred': 0.0}
    """
    return _fit(
        data,
        "cif",
        by=by,
        dropout=dropout,
        extract_date=extract_date,
        time_unit=time_unit,
        alpha=alpha,
        horizon=horizon,
        protect=protect,
        **_coarsening(rules, step, round_to, min_at_risk),
    )
