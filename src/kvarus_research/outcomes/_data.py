"""Shared plumbing of the outcome analyses: reading the timepoint long format, pairing two timepoints,
course-level covariates, codebook metadata and small statistics helpers (Wilson CI, labels).

The input is the **timepoint long format** of CONTRIBUTING.md: one row per course × timepoint with
``course_id, patient_id, unit_id, timepoint, timepoint_order, date, days_since_start, kind, registration_id`` and
then the codebook data variables (as produced by :func:`kvarus_research.cohort.align_timepoints`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from kvarus_research.codebook import Codebook, Outcome, load_codebook
from kvarus_research.errors import AnalysisError

LONG_REQUIRED: tuple[str, ...] = ("course_id", "timepoint")


def long_frame(data: Any) -> pd.DataFrame:
    """The long DataFrame behind ``data`` (a ``Timepoints`` object's ``.long`` or the frame itself)."""
    frame = getattr(data, "long", data)
    if not isinstance(frame, pd.DataFrame):
        raise AnalysisError(
            f"expected the timepoint long format (a DataFrame or an object with .long), got {type(data).__name__}"
        )
    missing = [c for c in LONG_REQUIRED if c not in frame.columns]
    if missing:
        raise AnalysisError(
            f"the timepoint long format lacks column(s) {missing}; expected at least {list(LONG_REQUIRED)} "
            "(see kvarus_research.cohort.align_timepoints)"
        )
    return frame


def resolve_codebook(data: Any, codebook: Codebook | None) -> Codebook:
    """The codebook given, else the one the data carry (``.codebook`` or ``.registry.codebook``), else the bundled."""
    if codebook is not None:
        return codebook
    for obj in (data, getattr(data, "registry", None)):
        cb = getattr(obj, "codebook", None)
        if isinstance(cb, Codebook):
            return cb
    return load_codebook()


def course_table(data: Any, courses: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """The course table: ``courses`` if given, else ``data.courses`` or ``data.registry.courses`` (or None)."""
    if courses is not None:
        return courses
    for obj in (data, getattr(data, "registry", None)):
        if obj is None or isinstance(obj, pd.DataFrame):
            continue
        tab = getattr(obj, "courses", None)
        if isinstance(tab, pd.DataFrame):
            return tab
    return None


def outcome_meta(
    codebook: Codebook,
    outcome: str,
    *,
    direction: str | None = None,
    reliability: float | None = None,
    cutoff: float | None = None,
) -> Outcome:
    """Direction, reliability and cut-off of ``outcome``: the codebook's, overridden by the arguments given."""
    known = codebook.outcomes().get(outcome)
    if known is None and direction is None:
        raise AnalysisError(
            f"variable {outcome!r} is not an outcome measure in codebook {codebook.name!r} (no direction of "
            "improvement); pass direction='lower' or 'higher'"
        )
    meta = known or Outcome(direction=direction)  # type: ignore[arg-type]
    if direction is not None:
        if direction not in ("lower", "higher"):
            raise AnalysisError(f"direction must be 'lower' or 'higher', got {direction!r}")
        meta = replace(meta, direction=direction)
    if reliability is not None:
        if not 0 < reliability < 1:
            raise AnalysisError(f"reliability must lie strictly between 0 and 1, got {reliability!r}")
        meta = replace(meta, reliability=float(reliability))
    if cutoff is not None:
        meta = replace(meta, cutoff=float(cutoff))
    return meta


def check_columns(long: pd.DataFrame, names: Iterable[str], what: str = "variable") -> None:
    """Raise a clear error when the long format lacks one of ``names``."""
    missing = [n for n in names if n not in long.columns]
    if missing:
        raise AnalysisError(f"the timepoint long format has no {what} column(s) {missing}")


def check_timepoints(long: pd.DataFrame, names: Iterable[str]) -> None:
    """Raise a clear error when a named timepoint does not occur in the data."""
    present = list(pd.unique(long["timepoint"].astype(str)))
    missing = [n for n in names if n not in present]
    if missing:
        raise AnalysisError(f"timepoint(s) {missing} do not occur in the data; timepoints present: {present}")


def numeric(values: pd.Series) -> np.ndarray:
    """A column as float64 with NA as NaN."""
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def values_at(long: pd.DataFrame, variable: str, timepoint: str) -> pd.Series:
    """``variable`` at one timepoint, indexed by course_id (an error if a course has that timepoint twice)."""
    rows = long.loc[long["timepoint"].astype(str) == timepoint, ["course_id", variable]]
    if rows["course_id"].duplicated().any():
        n = int(rows["course_id"].duplicated().sum())
        raise AnalysisError(
            f"timepoint {timepoint!r} occurs more than once for {n} course(s); the long format must have one row "
            "per course and timepoint"
        )
    return rows.set_index("course_id")[variable]


def paired(long: pd.DataFrame, outcome: str, start: str, end: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Courses with ``outcome`` observed at both ``start`` and ``end`` (paired complete cases).

    Returns the pairs (index course_id, columns ``start``, ``end``) and the exclusions: courses in the data with
    no value at ``start``, and courses with a value at ``start`` but none at ``end``.
    """
    check_columns(long, [outcome])
    courses = pd.Index(pd.unique(long["course_id"]), name="course_id")
    x1s, x2s = values_at(long, outcome, start), values_at(long, outcome, end)
    x1 = pd.Series(numeric(x1s), index=x1s.index)
    x2 = pd.Series(numeric(x2s), index=x2s.index)
    frame = pd.DataFrame({"start": x1.reindex(courses), "end": x2.reindex(courses)})
    has1 = frame["start"].notna()
    has2 = frame["end"].notna()
    excluded = {
        "n_courses": len(frame),
        "n_missing_start": int((~has1).sum()),
        "n_missing_end": int((has1 & ~has2).sum()),
    }
    return frame[has1 & has2], excluded


def course_values(
    data: Any, long: pd.DataFrame, names: Sequence[str], *, at: str, courses: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Course-level values of ``names``, indexed by course_id.

    A name ``"x@tp"`` is ``x`` at timepoint ``tp``; a plain name is taken at timepoint ``at`` when it is a column
    of the long format, else from the course table (``courses``, ``data.courses`` or ``data.registry.courses``).
    """
    index = pd.Index(pd.unique(long["course_id"]), name="course_id")
    out = pd.DataFrame(index=index)
    table = None
    for name in names:
        var, _, tp = name.partition("@")
        if tp or var in long.columns:
            check_columns(long, [var])
            out[name] = values_at(long, var, tp or at).reindex(index)
            continue
        table = table if table is not None else course_table(data, courses)
        if table is None or var not in table.columns:
            raise AnalysisError(
                f"covariate {name!r} is neither a column of the timepoint long format nor of the course table"
            )
        out[name] = table.drop_duplicates("course_id").set_index("course_id")[var].reindex(index)
    return out


def group_values(values: pd.Series) -> pd.Series:
    """Group values as objects: whole numbers as int (codes), missing as the group "(missing)"."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        num = pd.to_numeric(values, errors="coerce")
        if bool(((num.dropna() % 1) == 0).all()):
            values = num.astype("Int64")
    out = values.astype(object)
    return out.where(values.notna(), "(missing)")


def ordered_groups(values: Any) -> list[Any]:
    """Group values in natural order (numbers numerically), "(missing)" last."""
    vals = [v for v in values if not (isinstance(v, str) and v == "(missing)")]
    try:
        vals = sorted(vals)
    except TypeError:
        vals = sorted(vals, key=str)
    return vals + (["(missing)"] if len(vals) < len(values) else [])


def wilson(count: np.ndarray | int, nobs: np.ndarray | int, ci: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (statsmodels ``proportion_confint(method="wilson")``); NaN where ``nobs`` is 0."""
    count = np.asarray(count, dtype=float)
    nobs = np.asarray(nobs, dtype=float)
    safe = np.where(nobs > 0, nobs, 1.0)
    lo, hi = proportion_confint(count, safe, alpha=1 - ci, method="wilson")
    return np.where(nobs > 0, lo, np.nan), np.where(nobs > 0, hi, np.nan)


def group_labels(codebook: Codebook, variable: str, values: Iterable[Any], language: str = "en") -> list[str]:
    """Codebook labels for the values of a grouping variable (the value as text when it has no label)."""
    labels = codebook.value_labels(variable, language)
    out = []
    for v in values:
        try:
            out.append(labels.get(int(v), str(v)))
        except (TypeError, ValueError):
            out.append(str(v))
    return out


def check_ci(ci: float) -> float:
    """Validate a confidence level."""
    if not 0 < ci < 1:
        raise AnalysisError(f"ci must lie strictly between 0 and 1 (e.g. 0.95), got {ci!r}")
    return float(ci)


def as_list(x: str | Sequence[str]) -> list[str]:
    """One name or several, as a list."""
    return [x] if isinstance(x, str) else list(x)
