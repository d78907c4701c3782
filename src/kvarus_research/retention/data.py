"""The time-to-event table: time from course start to its ending, with the ending type as competing events.

A course (behandlingsforløp) ends in one of three ways: by mutual agreement (avsluttet med gjensidig avtale),
interrupted (avbrutt, brudd) or transferred (overført annen juridisk enhet). Courses still active at the extract
date are censored there. Which ending types count as *dropout* is an explicit argument, because the definition
changes dropout rates materially (domain.md §8): the dropout types are merged into one cause called
``"dropout"``, every other ending type stays its own competing cause.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.codebook import Codebook, load_codebook
from kvarus_research.errors import AnalysisError
from kvarus_research.registry.constants import ENDING_STATUS_CODE, ENDING_TYPES
from kvarus_research.results import Definition

#: Ending types that end a course (``active`` is censoring, ``unknown`` an ending without a status code).
ENDINGS: tuple[str, ...] = tuple(t for t in ENDING_TYPES if t != "active") + ("unknown",)
#: Days per time unit.
TIME_UNITS: dict[str, float] = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25}
#: Default age groups (years at course start): left-closed bins.
AGE_BINS: tuple[float, ...] = (0, 25, 35, 45, 55, np.inf)
#: Group columns researchers ask for, when present.
GROUP_COLUMNS: tuple[str, ...] = ("unit_name", "region", "setting", "hovedrusmiddel", "age_group")
DROPOUT = "dropout"
#: Column of ``TimeToEvent.table`` holding delayed-entry times (left truncation), when there are any.
ENTRY = "entry_time"


@dataclass
class TimeToEvent:
    """Courses as time-to-event data (one row per course kept).

    ``table`` has ``course_id``, ``duration`` (in ``time_unit``), ``ending_type`` (or ``active``), ``cause``
    (``"dropout"`` for the dropout types, else the ending type; ``"censored"`` for active courses), ``event``
    (1 when the course ended), ``cause_code`` (0 censored, 1.. in the order of ``causes``) and every other
    column of the input (unit, region, setting, baseline covariates, ``age_group``). ``exclusions`` counts the
    courses left out with their reason.
    """

    table: pd.DataFrame
    exclusions: pd.DataFrame
    dropout: tuple[str, ...]
    causes: tuple[str, ...]
    extract_date: pd.Timestamp | None
    time_unit: str
    codebook: Codebook = field(default_factory=load_codebook)
    n_input: int = 0
    opted_out_courses: int | None = None
    #: ``"courses"`` (the registry path, :func:`time_to_event`) or ``"frame"`` (:func:`from_frame`).
    source: str = "courses"
    #: Default group column of the curves and tests (``from_frame(by=)``).
    by: str | None = None
    #: Column identifying the cluster of each row (``from_frame(cluster=)``), e.g. the patient.
    cluster: str | None = None
    #: Where delayed entry comes from (``from_frame(entry=)``'s column, or ``time_to_event(entry_date=)``);
    #: the entry times are in ``table["entry_time"]``.
    entry: str | None = None

    @property
    def definition(self) -> Definition:
        """Population and the event definition, in words."""
        excl = "; ".join(f"{r.reason}: {r.n}" for r in self.exclusions.itertuples()) or "none"
        if self.source == "frame":
            return Definition(
                population=f"{len(self.table)} of {self.n_input} rows (excluded: {excl})",
                method="time and ending given per row (from_frame); event 0 is censored",
                details={
                    "competing causes": ", ".join(self.causes),
                    "time unit": self.time_unit,
                    **({"cluster": self.cluster} if self.cluster else {}),
                    **(
                        {"delayed entry": f"at risk from {self.entry} (exclusive) to the time (inclusive)"}
                        if self.entry
                        else {}
                    ),
                },
            )
        return Definition(
            population=f"{len(self.table)} of {self.n_input} courses (excluded: {excl})",
            method="time from course start to ending; active courses censored at the extract date",
            details={
                "dropout": f"ending types {list(self.dropout)} count as dropout",
                "competing causes": ", ".join(self.causes),
                "extract date": self.extract_date.strftime("%Y-%m-%d"),
                "time unit": self.time_unit,
                **(
                    {"opted-out courses removed": self.opted_out_courses}
                    if self.opted_out_courses is not None
                    else {}
                ),
                **(
                    {"delayed entry": f"courses started before {self.entry} at risk from then"}
                    if self.entry
                    else {}
                ),
            },
        )

    def label(self, column: str) -> str:
        """Codebook label of a column (``age_group`` and structural columns get readable names)."""
        if self.source == "frame":
            return column
        own = {
            "age_group": "Age group",
            "unit_name": "Unit",
            "region": "Region",
            "setting": "Setting",
            "age_at_start": "Age at course start",
            "sex": "Sex",
            "latent_severity": "Baseline severity (synthetic latent, SD units)",
        }
        return own.get(column) or self.codebook.label(column, "en")

    def cause_label(self, cause: str) -> str:
        """Readable name of a cause, from the codebook's ``behandlingsstatus`` labels.

        Examples
        --------
        >>> import pandas as pd
        >>> tte = time_to_event(pd.DataFrame({"start_date": [pd.Timestamp("2021-01-01")],
        ...     "end_date": [pd.NaT], "ending_type": ["active"]}), extract_date="2021-02-01")
        >>> tte.cause_label("dropout"), tte.cause_label("transferred")
        ('Dropout (Interrupted)', 'Transferred to another legal entity')
        """
        if self.source == "frame":
            return cause
        status = "behandlingsstatus"

        def one(ending: str) -> str:
            code = ENDING_STATUS_CODE.get(ending)
            return (
                self.codebook.variable(status).code_label(code, "en")
                if code and status in self.codebook
                else ending
            )

        if cause == DROPOUT:
            return "Dropout (" + ", ".join(one(t) for t in self.dropout) + ")"
        return one(cause)


def _course_frame(data: Any) -> tuple[pd.DataFrame, pd.Timestamp | None, Codebook, int | None]:
    """The course table, extract date, codebook and opted-out count from a Cohort, Registry or DataFrame."""
    from kvarus_research.registry import Registry

    if isinstance(data, Registry):
        reg = data.without_opt_outs()
        courses = reg.course_view()
        regs = reg.registrations
        base = regs.loc[regs["kind"] == "baseline"].sort_values(["course_id", "date"], kind="stable")
        names = [v.name for v in reg.codebook.data_variables() if v.name in base.columns]
        names = [n for n in names if n not in courses.columns]
        if names:
            first = base.drop_duplicates("course_id").set_index("course_id")[names]
            courses = courses.join(first, on="course_id")
        return courses, reg.extract_date, reg.codebook, reg.meta.get("opted_out_courses")
    if isinstance(data, pd.DataFrame):
        return data, None, load_codebook(), None
    registry = getattr(data, "registry", None)
    courses = getattr(data, "courses", None)
    if isinstance(courses, pd.DataFrame) and registry is not None:
        return courses, registry.extract_date, registry.codebook, registry.meta.get("opted_out_courses")
    raise AnalysisError(
        f"retention analyses take a Cohort, a Registry or a DataFrame of courses, not {type(data).__name__}"
    )


def _excluded(reasons: Sequence[tuple[str, np.ndarray]], n: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Rows kept, and the table of rows excluded by the first reason that applies to each (reason, n)."""
    dropped = np.zeros(n, dtype=bool)
    rows = []
    for reason, mask in reasons:
        new = mask & ~dropped
        if new.any():
            rows.append((reason, int(new.sum())))
        dropped |= new
    return ~dropped, pd.DataFrame(rows, columns=["reason", "n"])


def _age_groups(age: pd.Series, bins: Sequence[float]) -> pd.Series:
    labels = []
    for lo, hi in zip(bins[:-1], bins[1:], strict=True):
        if lo <= 0:
            labels.append(f"<{hi:g}")
        elif np.isinf(hi):
            labels.append(f"{lo:g}+")
        else:
            labels.append(f"{lo:g}–{hi - 1:g}")
    return pd.cut(pd.to_numeric(age, errors="coerce"), bins=list(bins), right=False, labels=labels)


def time_to_event(
    data: Any,
    *,
    dropout: Sequence[str] = ("interrupted",),
    extract_date: pd.Timestamp | str | None = None,
    time_unit: str = "days",
    age_bins: Sequence[float] = AGE_BINS,
    entry_date: pd.Timestamp | str | None = None,
) -> TimeToEvent:
    """Time from course start to ending, with the ending types as competing events.

    Parameters
    ----------
    data : Cohort, Registry or DataFrame
        Courses with ``start_date``, ``end_date`` and ``ending_type``. A Registry is used without its opted-out
        patients, joined with its units and the baseline registration's codebook variables.
    dropout : sequence of str
        Ending types that count as dropout (merged into the cause ``"dropout"``); the others stay their own
        competing causes. ``()`` keeps every ending type as its own cause.
    extract_date : Timestamp or str, optional
        Where active courses are censored. Taken from the Cohort/Registry; required for a DataFrame.
    time_unit : {"days", "weeks", "months", "years"}
    age_bins : sequence of float
        Edges of ``age_group`` from ``age_at_start`` (left-closed).
    entry_date : Timestamp, str or column name, optional
        When observation began: one date, or the name of a date column of the courses (e.g. when each unit
        joined the register). A course that started before it is seen from then on only (delayed entry, left
        truncation: at risk from ``entry_date - start_date`` in ``time_unit``); a course that ended before it is
        excluded ("ended before observation began"). Without it every course is observed from its start.

    Returns
    -------
    TimeToEvent
        ``.table`` (one row per course kept) and ``.exclusions`` (reason, n).

    Raises
    ------
    AnalysisError
        Unknown dropout types or time unit, missing columns, or no extract date for a DataFrame.

    Examples
    --------
    >>> import pandas as pd
    >>> courses = pd.DataFrame({"course_id": ["a", "b", "c", "d"],
    ...     "start_date": pd.to_datetime(["2021-01-01", "2021-01-01", "2021-03-01", None]),
    ...     "end_date": pd.to_datetime(["2021-01-31", None, "2021-02-01", None]),
    ...     "ending_type": ["interrupted", "active", "mutual_agreement", "active"]})
    >>> tte = time_to_event(courses, extract_date="2021-12-31")
    >>> tte.table[["course_id", "duration", "cause"]].values.tolist()
    [['a', 30.0, 'dropout'], ['b', 364.0, 'censored']]
    >>> tte.exclusions.values.tolist()
    [['missing start date', 1], ['end before start', 1]]
    """
    dropout = tuple(dropout)
    bad = [d for d in dropout if d not in ENDINGS]
    if bad:
        raise AnalysisError(f"dropout: ending type(s) {bad} unknown; expected some of {list(ENDINGS)}")
    if time_unit not in TIME_UNITS:
        raise AnalysisError(f"time_unit {time_unit!r} is not one of {list(TIME_UNITS)}")
    courses, own_date, codebook, opted_out = _course_frame(data)
    missing = [c for c in ("start_date", "end_date", "ending_type") if c not in courses.columns]
    if missing:
        raise AnalysisError(f"the course table lacks column(s) {missing} needed for time to event")
    if extract_date is None:
        extract_date = own_date
    if extract_date is None:
        raise AnalysisError(
            "time_to_event on a DataFrame needs extract_date= (where active courses are censored)"
        )
    extract_date = pd.Timestamp(extract_date)
    df = courses.copy()
    start = pd.to_datetime(df["start_date"])
    end = pd.to_datetime(df["end_date"])
    etype = df["ending_type"].astype("string")
    active = (etype == "active").fillna(False).to_numpy()
    stop = end.where(~active, extract_date)
    reasons = [
        ("missing start date", start.isna().to_numpy()),
        ("missing ending type", etype.isna().to_numpy()),
        ("ending type not known", (~etype.isin([*ENDINGS, "active"])).fillna(False).to_numpy()),
        ("ended without end date", (~active) & end.isna().to_numpy()),
        ("start after extract date", (start > extract_date).fillna(False).to_numpy()),
        ("end after extract date", (~active) & (end > extract_date).fillna(False).to_numpy()),
        ("end before start", (stop < start).fillna(False).to_numpy()),
    ]
    seen = None
    if entry_date is not None:
        if isinstance(entry_date, str) and entry_date in df.columns:
            seen = pd.to_datetime(df[entry_date])
        else:
            seen = pd.Series(pd.Timestamp(entry_date), index=df.index)
        reasons.append(("ended before observation began", (~active) & (end <= seen).fillna(False).to_numpy()))
    keep, exclusions = _excluded(reasons, len(df))
    out = df.loc[keep].reset_index(drop=True)
    days = (stop[keep] - start[keep]).dt.days.to_numpy(dtype=float)
    out["duration"] = days / TIME_UNITS[time_unit]
    entry_column = None
    if seen is not None:  # days before observation began; -inf (at risk from the start) for courses after it
        late = (seen[keep] - start[keep]).dt.days.to_numpy(dtype=float)
        late = np.where(np.isfinite(late) & (late > 0), late / TIME_UNITS[time_unit], -np.inf)
        if (late > -np.inf).any():
            out[ENTRY] = late
            entry_column = f"entry_date={entry_date}"
    ending = etype[keep].to_numpy(dtype=object)
    cause = np.where(np.isin(ending, dropout), DROPOUT, ending)
    cause = np.where(ending == "active", "censored", cause)
    out["ending_type"] = ending
    out["cause"] = cause
    out["event"] = (ending != "active").astype(np.int8)
    causes = ((DROPOUT,) if dropout else ()) + tuple(t for t in ENDINGS if t not in dropout)
    # "unknown" (an ending form without a status code) is a cause only when such courses exist.
    causes = tuple(c for c in causes if c != "unknown" or "unknown" in set(cause))
    code = {c: i + 1 for i, c in enumerate(causes)}
    out["cause_code"] = pd.Series(cause).map(code).fillna(0).astype(np.int16).to_numpy()
    if "age_at_start" in out.columns and "age_group" not in out.columns:
        out["age_group"] = _age_groups(out["age_at_start"], age_bins)
    if "hovedrusmiddel" in out.columns and pd.api.types.is_numeric_dtype(out["hovedrusmiddel"]):
        labels = codebook.value_labels("hovedrusmiddel", "en")
        out["hovedrusmiddel"] = pd.Categorical(
            pd.to_numeric(out["hovedrusmiddel"], errors="coerce").map(labels),
            categories=list(labels.values()),
        )
    return TimeToEvent(
        table=out,
        exclusions=exclusions,
        dropout=dropout,
        causes=causes,
        extract_date=extract_date,
        time_unit=time_unit,
        codebook=codebook,
        n_input=len(df),
        opted_out_courses=opted_out,
        entry=entry_column,
    )


def _cause_values(event: pd.Series, causes: Any) -> tuple[pd.Series, list[Any], list[str]]:
    """``event`` with numbers made integers where they are, the cause values in order, and their names."""
    ev = event
    if pd.api.types.is_bool_dtype(ev):
        ev = ev.astype("Int64")
    if pd.api.types.is_numeric_dtype(ev):
        num = pd.to_numeric(ev)
        whole = num.dropna()
        if (whole == np.round(whole)).all():
            ev = num.astype("Int64")
    ev = ev.astype(object).where(ev.notna(), None)
    censored = ev.map(lambda v: v == "0" if isinstance(v, str) else (v is not None and v == 0)).astype(bool)
    present = list(pd.unique(ev[~censored & ev.notna()]))
    if causes is None:
        values = sorted(present, key=lambda v: (isinstance(v, str), v))
        names = [str(v) for v in values]
    elif isinstance(causes, dict):
        values, names = list(causes), [str(n) for n in causes.values()]
    else:
        values = list(causes)
        names = [str(v) for v in values]
    if len(set(names)) != len(names):
        raise AnalysisError(f"causes: names {names} are not distinct")
    unknown = [v for v in present if v not in values]
    if unknown:
        raise AnalysisError(
            f"event value(s) {unknown} are neither 0 (censored) nor one of the causes {values}"
        )
    return ev.where(~censored, 0), values, names


def from_frame(
    df: pd.DataFrame,
    *,
    time: str,
    event: str,
    entry: str | None = None,
    cluster: str | None = None,
    causes: Sequence[Any] | dict[Any, str] | None = None,
    by: str | None = None,
    time_unit: str = "days",
) -> TimeToEvent:
    """Time-to-event data from a plain data frame with a time and an event column.

    The same :class:`TimeToEvent` the registry path (:func:`time_to_event`) produces, so
    :func:`kaplan_meier`, :func:`cumulative_incidence`, :func:`gray_test` and :func:`cox` take it.

    Parameters
    ----------
    df : DataFrame
        One row per course (or subject).
    time : str
        Column of the time from the origin to the ending or to censoring (non-negative, in ``time_unit``).
    event : str
        Column of the ending: 0 (or ``False``) for censored, otherwise a cause code or label (``1``, ``2``,
        ``"dropout"`` ...).
    entry : str, optional
        Column of delayed-entry times (left truncation): a row is at risk at ``t`` only when
        ``entry < t <= time``, as ``survival::Surv(entry, time, event)``. Supported by
        :func:`kaplan_meier` and :func:`cumulative_incidence` (curves and log-rank tests); :func:`gray_test`
        and :func:`cox` refuse such data for now rather than ignore the entry times.
    cluster : str, optional
        Column identifying clusters of rows (e.g. the patient of repeat courses); kept as ``.cluster``.
    causes : sequence or dict, optional
        The cause values in order (cause 1 first), or a dict ``{event value: cause name}``. Default: every
        non-zero value of ``event``, sorted, named by its text. A cause called ``"dropout"`` is the default
        cause of :func:`gray_test` and the ``event="dropout"`` of :func:`cox`.
    by : str, optional
        Default group column of the curves and tests when they are given no ``by=``.
    time_unit : {"days", "weeks", "months", "years"}
        Unit of ``time`` (labels and the default horizon of one year).

    Returns
    -------
    TimeToEvent
        ``.table`` holds every column of ``df`` plus ``duration``, ``event`` (1 ended, 0 censored), ``cause``
        (name, ``"censored"``), ``cause_code`` (0 censored, 1.. in the order of ``causes``) and ``course_id``
        (the row's index label when ``df`` has none); ``.exclusions`` the rows left out with their reason.

    Raises
    ------
    AnalysisError
        Missing columns, event values that are not among ``causes`` or an unknown time unit.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [2.0, 3.0, 3.0, 5.0, None], "status": [1, 0, 2, 1, 1]})
    >>> tte = from_frame(df, time="t", event="status", causes={1: "dropout", 2: "completed"})
    >>> tte.table[["duration", "cause", "cause_code"]].values.tolist()
    [[2.0, 'dropout', 1], [3.0, 'censored', 0], [3.0, 'completed', 2], [5.0, 'dropout', 1]]
    >>> tte.exclusions.values.tolist()
    [['missing time', 1]]
    >>> from_frame(df.assign(e=[0, 0, 3, 1, 0]), time="t", event="status", entry="e").exclusions.values.tolist()
    [['missing time', 1], ['entry not before time', 1]]
    """
    if not isinstance(df, pd.DataFrame):
        raise AnalysisError(f"from_frame takes a DataFrame, not {type(df).__name__}")
    if time_unit not in TIME_UNITS:
        raise AnalysisError(f"time_unit {time_unit!r} is not one of {list(TIME_UNITS)}")
    needed = [c for c in (time, event, entry, cluster, by) if c is not None]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise AnalysisError(f"from_frame: no column(s) {missing}; available: {sorted(map(str, df.columns))}")
    dur = pd.to_numeric(df[time], errors="coerce")
    ev, values, names = _cause_values(df[event].reset_index(drop=True), causes)
    dur_v = dur.to_numpy(dtype=float)
    reasons = [
        ("missing time", ~np.isfinite(dur_v)),
        ("missing event", ev.isna().to_numpy()),
        ("negative time", np.isfinite(dur_v) & (dur_v < 0)),
    ]
    if entry is not None:
        ent = pd.to_numeric(df[entry], errors="coerce").to_numpy(dtype=float)
        reasons += [
            ("missing entry", ~np.isfinite(ent)),
            ("entry not before time", np.isfinite(ent) & np.isfinite(dur_v) & (ent >= dur_v)),
        ]
    keep, exclusions = _excluded(reasons, len(df))
    out = df.loc[keep].copy()
    if "course_id" not in out.columns:
        out.insert(0, "course_id", out.index.to_numpy())
    out = out.reset_index(drop=True)
    kept = ev[keep].reset_index(drop=True)
    code_of = {v: i + 1 for i, v in enumerate(values)}
    code = kept.map(lambda v: 0 if v == 0 and not isinstance(v, str) else code_of[v]).astype(np.int16)
    name = np.array(["censored", *names], dtype=object)[code.to_numpy()]
    out["duration"] = dur_v[keep]
    out["cause"] = name
    out["ending_type"] = np.where(code.to_numpy() > 0, name, "active")
    out["event"] = (code.to_numpy() > 0).astype(np.int8)
    out["cause_code"] = code.to_numpy()
    if entry is not None:
        out[ENTRY] = ent[keep]
    return TimeToEvent(
        table=out,
        exclusions=exclusions,
        dropout=(DROPOUT,) if DROPOUT in names else (),
        causes=tuple(names),
        extract_date=None,
        time_unit=time_unit,
        n_input=len(df),
        source="frame",
        by=by,
        cluster=cluster,
        entry=entry,
    )


def as_time_to_event(data: Any, *, delayed_entry: bool = False, **kwargs: Any) -> TimeToEvent:
    """``data`` itself when it is already a :class:`TimeToEvent`, else :func:`time_to_event` of it.

    Data with delayed entry are refused unless the caller handles it (``delayed_entry=True``): an analysis that
    ignored the entry times would count courses at risk before they entered.
    """
    if isinstance(data, TimeToEvent):
        if data.entry and not delayed_entry:
            raise AnalysisError(
                f"this analysis does not support delayed entry yet (entry={data.entry!r}); the curves "
                "(kaplan_meier, cumulative_incidence) do"
            )
        return data
    return time_to_event(data, **kwargs)
