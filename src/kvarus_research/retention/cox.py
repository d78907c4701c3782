"""Cause-specific Cox proportional-hazards models for one kind of ending (e.g. dropout), with a PH check.

The cause-specific hazard of dropout is modelled with the other endings censored at their time (lifelines
``CoxPHFitter``, Efron ties). Its hazard ratios describe the *rate* of dropout among courses still in treatment;
they are not effects on the cumulative incidence (which also depends on the competing endings). The
proportional-hazards assumption is checked with the scaled Schoenfeld-residual test (lifelines
``proportional_hazard_test``, rank time transform) and reported beside each hazard ratio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.errors import AnalysisError
from kvarus_research.results import Definition, Result, draw_marker, hidden
from kvarus_research.retention.data import DROPOUT, ENDINGS, TimeToEvent, as_time_to_event


class CoxResult(Result):
    """Hazard ratios of a cause-specific Cox model with their CIs and the PH test.

    ``table``: ``term, label, hr, ci_lower, ci_upper, log_hr, se, p_value, ph_statistic, ph_p_value,
    n_courses, n_events`` (counts per level for categorical covariates). ``model`` is the fitted lifelines
    ``CoxPHFitter``.
    """

    count_columns = ("n_courses", "n_events")
    derived_columns = {"hr": "n_events", "ci_lower": "n_events", "ci_upper": "n_events", "log_hr": "n_events"}

    def __init__(
        self, table: pd.DataFrame, definition: Definition, model: Any, exclusions: pd.DataFrame
    ) -> None:
        self.table = table
        self.definition = definition
        self.model = model
        self.exclusions = exclusions

    @classmethod
    def _draw(cls, protected: Any, ax: Any, definition: Definition, **kwargs: Any) -> Any:
        """Forest plot of the hazard ratios (log scale); terms failing the PH test (p < 0.05) marked with †.

        A term whose ``n_events`` is suppressed has no point and no "HR (CI)" text (its estimate is derived from
        the hidden count): the rules' marker stands at HR = 1.
        """
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FormatStrFormatter

        t = protected.table.iloc[::-1].reset_index(drop=True)
        gone = hidden(protected, "n_events")[::-1] | hidden(protected, "hr")[::-1]
        if ax is None:
            _, ax = plt.subplots(figsize=(10, 1.4 + 0.45 * len(t)))
        y = np.arange(len(t))
        hr = t["hr"].astype(float).to_numpy()
        lo, hi = t["ci_lower"].astype(float).to_numpy(), t["ci_upper"].astype(float).to_numpy()
        ok = ~gone & ~np.isnan(hr)
        ax.errorbar(hr[ok], y[ok], xerr=[hr[ok] - lo[ok], hi[ok] - hr[ok]], fmt="s", color="k", capsize=3)
        ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(FormatStrFormatter("%g"))
        marks = ["†" if p < 0.05 else "" for p in t["ph_p_value"].astype(float)]
        ax.set_yticks(y, [f"{lab}{m}" for lab, m in zip(t["label"], marks, strict=True)])
        ax.set_ylim(-0.7, len(t) - 0.3)
        for yi, row, g in zip(y, t.itertuples(), gone, strict=True):
            if g or pd.isna(row.hr):
                draw_marker(ax, 1.0, yi, protected)
                text = protected.rules.marker
            else:
                text = f"{row.hr:.2f} ({row.ci_lower:.2f}–{row.ci_upper:.2f})"
            note = ax.annotate(text, xy=(1.02, yi), xycoords=("axes fraction", "data"), va="center",
                               fontsize="small")  # fmt: skip
            if g:
                note.set_gid("suppressed")
        ax.set_xlabel("Cause-specific hazard ratio (95 % CI, log scale)")
        ax.set_title(
            f"Hazard of {definition.details['event']}" + ("  († PH test p < 0.05)" if any(marks) else "")
        )
        ax.figure.subplots_adjust(left=0.38, right=0.78)
        return ax


def _design(
    tte: TimeToEvent, covariates: Sequence[str], scale: Mapping[str, float], reference: Mapping[str, Any]
) -> tuple[pd.DataFrame, list[dict[str, Any]], pd.DataFrame, np.ndarray]:
    """Model matrix (dummy-coded categoricals, scaled numerics), term descriptions and excluded rows."""
    t = tte.table
    cb = tte.codebook
    missing_cols = [c for c in covariates if c not in t.columns]
    if missing_cols:
        raise AnalysisError(f"cox: covariate column(s) {missing_cols} not in the course table")
    columns: dict[str, np.ndarray] = {}
    terms: list[dict[str, Any]] = []
    miss = np.zeros(len(t), dtype=bool)
    exclusions = []
    for col in covariates:
        s = t[col]
        label = tte.label(col)
        var = cb.by_role("sex") if col == "sex" else (cb.variable(col) if col in cb else None)
        if var is not None and var.type == "enum" and pd.api.types.is_numeric_dtype(s):
            labels = var.value_labels("en")
            s = pd.Categorical(
                pd.to_numeric(s, errors="coerce").map(labels), categories=list(labels.values())
            )
            s = pd.Series(s, index=t.index)
        na = s.isna().to_numpy()
        new = na & ~miss
        if new.any():
            exclusions.append((f"missing {label}", int(new.sum())))
        miss |= na
        if (
            pd.api.types.is_bool_dtype(s)
            or isinstance(s.dtype, pd.CategoricalDtype)
            or not pd.api.types.is_numeric_dtype(s)
        ):
            if isinstance(s.dtype, pd.CategoricalDtype):
                levels = [lv for lv in s.cat.categories if (s == lv).any()]
                ref = reference.get(col, levels[0] if levels else None)
            else:
                counts = s.value_counts()
                levels = list(counts.index)
                ref = reference.get(col, levels[0] if levels else None)
            if ref not in levels:
                raise AnalysisError(f"cox: reference {ref!r} of {col!r} not among its values {levels}")
            for lv in levels:
                if lv == ref:
                    continue
                name = f"{col}={lv}"
                columns[name] = (s == lv).to_numpy(dtype=float)
                terms.append({"term": name, "label": f"{label}: {lv} (vs {ref})", "column": col, "level": lv})
        else:
            per = float(scale.get(col, 1.0))
            columns[col] = pd.to_numeric(s).to_numpy(dtype=float) / per
            unit = f" (per {per:g}{' years' if col == 'age_at_start' else ''})" if per != 1 else ""
            terms.append({"term": col, "label": f"{label}{unit}", "column": col, "level": None})
    return (
        pd.DataFrame(columns, index=t.index),
        terms,
        pd.DataFrame(exclusions, columns=["reason", "n"]),
        miss,
    )


def cox(
    data: Any,
    *,
    covariates: Sequence[str],
    event: str | Sequence[str] = DROPOUT,
    dropout: Sequence[str] = ("interrupted",),
    extract_date: Any = None,
    time_unit: str = "days",
    scale: Mapping[str, float] | None = None,
    reference: Mapping[str, Any] | None = None,
    strata: Sequence[str] | None = None,
    alpha: float = 0.05,
    ph_test: bool = True,
    ph_sample: int = 20_000,
) -> CoxResult:
    """Cause-specific Cox model: hazard of one kind of ending, the other endings censored.

    Parameters
    ----------
    data : Cohort, Registry, DataFrame or TimeToEvent
        See :func:`kvarus_research.retention.time_to_event`.
    covariates : sequence of str
        Baseline columns. Codebook enum variables and text/categorical/boolean columns are dummy-coded (reference:
        ``reference[col]``, else the first category of a categorical, else the most common value); numeric
        columns enter linearly, divided by ``scale[col]`` (e.g. ``{"age_at_start": 10}`` for per 10 years).
    event : str or sequence of str
        ``"dropout"`` (the ending types of ``dropout``), one ending type, or several ending types.
    dropout, extract_date, time_unit
        Passed to :func:`time_to_event` when ``data`` is not a TimeToEvent already.
    scale, reference : mapping, optional
    strata : sequence of str, optional
        Columns to stratify the baseline hazard by (e.g. ``["unit_name"]``).
    alpha : float
        1 - confidence level of the hazard-ratio CIs.
    ph_test : bool
        Run the Schoenfeld-residual test of proportional hazards.
    ph_sample : int
        Above this many courses the PH test is run on the model refitted to a random sample of this size
        (seed 0), because lifelines computes Schoenfeld residuals course by course; stated in the definition.

    Returns
    -------
    CoxResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> x = rng.integers(0, 2, 400)
    >>> days = np.ceil(rng.exponential(100 / np.exp(0.7 * x))).astype(int)
    >>> c = pd.DataFrame({"start_date": pd.Timestamp("2021-01-01"), "ending_type": "interrupted",
    ...     "end_date": pd.Timestamp("2021-01-01") + pd.to_timedelta(days, "D"), "x": x})
    >>> res = cox(c, covariates=["x"], extract_date="2030-01-01", ph_test=False)
    >>> bool(res.table.loc[0, "ci_lower"] < np.exp(0.7) < res.table.loc[0, "ci_upper"])
    True
    """
    from lifelines import CoxPHFitter

    tte = as_time_to_event(data, dropout=dropout, extract_date=extract_date, time_unit=time_unit)
    t = tte.table
    if isinstance(event, str):
        if event == DROPOUT:
            if not tte.dropout:
                raise AnalysisError("event='dropout' but the dropout definition is empty")
            ev = (t["cause"] == DROPOUT).to_numpy()
            event_text = f"dropout ({', '.join(tte.dropout)})"
        elif event in ENDINGS:
            ev, event_text = (t["ending_type"] == event).to_numpy(), event
        else:
            raise AnalysisError(f"event {event!r} is neither 'dropout' nor an ending type {list(ENDINGS)}")
    else:
        bad = [e for e in event if e not in ENDINGS]
        if bad:
            raise AnalysisError(f"event: ending type(s) {bad} unknown; expected some of {list(ENDINGS)}")
        ev, event_text = t["ending_type"].isin(list(event)).to_numpy(), " or ".join(event)
    x, terms, exclusions, miss = _design(tte, covariates, scale or {}, reference or {})
    df = x.assign(_duration=t["duration"].to_numpy(dtype=float), _event=ev.astype(int))
    for s in strata or []:
        df[s] = t[s].to_numpy()
        na = t[s].isna().to_numpy() & ~miss
        if na.any():
            exclusions = pd.concat(
                [exclusions, pd.DataFrame({"reason": [f"missing {s}"], "n": [int(na.sum())]})]
            )
        miss |= t[s].isna().to_numpy()
    df = df.loc[~miss]
    # a course ending on its start day has duration 0: lifelines needs positive durations, so count it at day 0.5
    df["_duration"] = df["_duration"].clip(lower=0.5 / (1 if time_unit == "days" else 365.25))
    n_events = int(df["_event"].sum())
    if n_events < 10 * max(1, len(terms)):
        raise AnalysisError(
            f"cox: {n_events} {event_text} events for {len(terms)} terms; need at least 10 events per term"
        )
    cph = CoxPHFitter(alpha=alpha)
    # batch mode: lifelines loops over distinct times (a few thousand days) instead of over every course
    cph.fit(
        df,
        duration_col="_duration",
        event_col="_event",
        strata=list(strata) if strata else None,
        batch_mode=True,
    )
    summ = cph.summary
    lo_col = [c for c in summ.columns if c.startswith("exp(coef) lower")][0]
    hi_col = [c for c in summ.columns if c.startswith("exp(coef) upper")][0]
    ph = pd.DataFrame(index=summ.index, data={"test_statistic": np.nan, "p": np.nan})
    if ph_test:
        from lifelines.statistics import proportional_hazard_test

        fitted, sample = cph, df
        if len(df) > ph_sample:  # Schoenfeld residuals are computed course by course: refit on a sample
            sample = df.sample(n=ph_sample, random_state=0)
            fitted = CoxPHFitter(alpha=alpha).fit(
                sample,
                duration_col="_duration",
                event_col="_event",
                strata=list(strata) if strata else None,
                batch_mode=True,
            )
        ph = proportional_hazard_test(fitted, sample, time_transform="rank").summary
    rows = []
    for term in terms:
        name = term["term"]
        col = df[name]
        level = col > 0 if term["level"] is not None else np.ones(len(df), dtype=bool)
        rows.append(
            {
                "term": name,
                "label": term["label"],
                "hr": float(summ.loc[name, "exp(coef)"]),
                "ci_lower": float(summ.loc[name, lo_col]),
                "ci_upper": float(summ.loc[name, hi_col]),
                "log_hr": float(summ.loc[name, "coef"]),
                "se": float(summ.loc[name, "se(coef)"]),
                "p_value": float(summ.loc[name, "p"]),
                "ph_statistic": float(ph.loc[name, "test_statistic"]) if name in ph.index else np.nan,
                "ph_p_value": float(ph.loc[name, "p"]) if name in ph.index else np.nan,
                "n_courses": int(level.sum()),
                "n_events": int(df.loc[level, "_event"].sum()),
            }
        )
    table = pd.DataFrame(rows)
    all_excl = pd.concat([tte.exclusions, exclusions], ignore_index=True)
    excl_text = "; ".join(f"{r.reason}: {r.n}" for r in all_excl.itertuples()) or "none"
    details = dict(tte.definition.details)
    details.update(
        {
            "event": event_text,
            "censoring": "active courses at the extract date; other ending types at their ending (cause-specific)",
            "covariates": ", ".join(t["label"] for t in terms),
            "ties": "Efron",
            "strata": ", ".join(strata) if strata else "none",
            "CI": f"{100 * (1 - alpha):g} % Wald",
            "courses / events": f"{len(df)} / {n_events}",
            "PH check": (
                "scaled Schoenfeld residuals vs rank of time (lifelines proportional_hazard_test), "
                "per term in ph_statistic / ph_p_value"
                + (
                    f"; on the model refitted to a random sample of {ph_sample} courses (seed 0)"
                    if len(df) > ph_sample
                    else ""
                )
            )
            if ph_test
            else "not run",
        }
    )
    definition = Definition(
        population=f"{len(df)} courses with complete covariates (excluded: {excl_text})",
        method=f"cause-specific Cox proportional-hazards model of {event_text} (lifelines CoxPHFitter)",
        details=details,
    )
    return CoxResult(table, definition, cph, all_excl)
