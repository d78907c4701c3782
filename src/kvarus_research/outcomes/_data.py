"""Shared plumbing of the outcome analyses: reading the timepoint long format, pairing two timepoints,
course-level covariates, codebook metadata and small statistics helpers (Wilson CI, labels).

The input is the **timepoint long format** of CONTRIBUTING.md: one row per course × timepoint with
``course_id, patient_id, unit_id, timepoint, timepoint_order, date, days_since_start, kind, registration_id`` and
then the codebook data variables (as produced by :func:`kvarus_research.cohort.align_timepoints`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.codebook import Codebook, Outcome, load_codebook
from kvarus_research.errors import AnalysisError
from kvarus_research.stats import wilson_ci

LONG_REQUIRED: tuple[str, ...] = ("course_id", "timepoint")


def long_frame(data: Any) -> pd.DataFrame:
    """The long DataFrame behind ``data`` (a ``Timepoints`` object's ``.long`` or the frame itself)."""
    frame = getattr(data, "long", data)
    if not isinstance(frame, pd.DataFrame):
        hint = ""
        if hasattr(data, "registrations") or hasattr(data, "flow"):
            hint = "; align it first: kvarus_research.cohort.align_timepoints(cohort_or_registry)"
        raise AnalysisError(
            f"expected the timepoint long format (a DataFrame or an object with .long), got {type(data).__name__}"
            + hint
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
    return _bundled_codebook()


@lru_cache(maxsize=1)
def _bundled_codebook() -> Codebook:
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


def suggest(name: str, candidates: Iterable[str], n: int = 3) -> str:
    """A message tail naming the closest of ``candidates`` to a mistyped ``name`` ("" when none is close).

    Examples
    --------
    >>> suggest("dager_rus30", ["dager_rus_30", "dager_alkohol_30", "alder"])
    "; did you mean 'dager_rus_30'?"
    >>> suggest("zzz", ["alder"])
    ''
    """
    unique = list(dict.fromkeys(str(c) for c in candidates))
    close = difflib.get_close_matches(name, unique, n=n, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


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
    if known is None and direction is None and outcome not in codebook:
        raise AnalysisError(
            f"{outcome!r} is not a variable in codebook {codebook.name!r}"
            + suggest(outcome, list(codebook.outcomes()) + [v.name for v in codebook.variables])
        )
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


def check_timepoints(long: pd.DataFrame | LongIndex, names: Iterable[str]) -> None:
    """Raise a clear error when a named timepoint does not occur in the data."""
    present = (
        list(long.rows) if isinstance(long, LongIndex) else list(pd.unique(long["timepoint"].astype(str)))
    )
    missing = [n for n in names if n not in present]
    if missing:
        raise AnalysisError(f"timepoint(s) {missing} do not occur in the data; timepoints present: {present}")


def numeric(values: pd.Series) -> np.ndarray:
    """A column as float64 with NA as NaN."""
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


class LongIndex:
    """Positions of a long frame by course and timepoint, computed once so that many look-ups stay fast.

    ``courses`` is the Index of course ids (order of first appearance); :meth:`at` returns a variable at one
    timepoint aligned to it (missing where the course has no row there).

    Examples
    --------
    >>> long = pd.DataFrame({"course_id": ["a", "a", "b"], "timepoint": ["baseline", "ending", "baseline"],
    ...                      "x": [1.0, 2.0, 3.0]})
    >>> LongIndex(long).at("x", "ending").tolist()
    [2.0, nan]
    """

    def __init__(self, long: pd.DataFrame) -> None:
        self.long = long
        codes, uniques = pd.factorize(long["course_id"])
        if (codes < 0).any():
            raise AnalysisError(
                f"column 'course_id' is blank in {int((codes < 0).sum())} row(s) of the long format"
            )
        self.codes = codes
        self.courses = pd.Index(uniques, name="course_id")
        tcodes, tnames = pd.factorize(long["timepoint"].astype(str))
        order = np.argsort(tcodes, kind="stable")
        bounds = np.searchsorted(tcodes[order], np.arange(len(tnames) + 1))
        self.rows = {str(t): order[bounds[k] : bounds[k + 1]] for k, t in enumerate(tnames)}
        for t, rows in self.rows.items():
            per_course = np.bincount(codes[rows], minlength=len(uniques))
            dup = int((per_course > 1).sum())
            if dup:
                raise AnalysisError(
                    f"timepoint {t!r} occurs more than once for {dup} course(s); the long format must have one row "
                    "per course and timepoint"
                )

    def __len__(self) -> int:
        return len(self.courses)

    def at(self, variable: str, timepoint: str, *, as_float: bool = True) -> pd.Series:
        """``variable`` at ``timepoint`` for every course (NaN / NA where there is no row or no value)."""
        check_columns(self.long, [variable])
        rows = self.rows.get(timepoint, np.array([], dtype=int))
        col = self.long[variable]
        if as_float:
            out = np.full(len(self.courses), np.nan)
            out[self.codes[rows]] = numeric(col.iloc[rows])
            return pd.Series(out, index=self.courses, name=variable)
        res = pd.Series(pd.NA, index=self.courses, name=variable, dtype=object)
        res.iloc[self.codes[rows]] = col.iloc[rows].astype(object).to_numpy()
        return res.where(res.notna())


def index_of(data: Any) -> LongIndex:
    """A :class:`LongIndex` of the long frame behind ``data`` (returned as is when already one)."""
    return data if isinstance(data, LongIndex) else LongIndex(long_frame(data))


def values_at(long: pd.DataFrame | LongIndex, variable: str, timepoint: str) -> pd.Series:
    """``variable`` (as float) at one timepoint for every course of the long frame, indexed by course_id."""
    return index_of(long).at(variable, timepoint)


def paired(
    ix: pd.DataFrame | LongIndex, outcome: str, start: str, end: str, mask: np.ndarray | None = None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Courses with ``outcome`` observed at both ``start`` and ``end`` (paired complete cases).

    Returns the pairs (index course_id, columns ``start``, ``end``) and the exclusions: courses with no value at
    ``start``, and courses with a value at ``start`` but none at ``end``. ``mask`` restricts to some courses.
    """
    ix = index_of(ix)
    x1, x2 = ix.at(outcome, start).to_numpy(), ix.at(outcome, end).to_numpy()
    sel = np.ones(len(ix), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    has1, has2 = ~np.isnan(x1), ~np.isnan(x2)
    keep = sel & has1 & has2
    excl = {
        "n_courses": int(sel.sum()),
        "n_missing_start": int((sel & ~has1).sum()),
        "n_missing_end": int((sel & has1 & ~has2).sum()),
    }
    return pd.DataFrame({"start": x1[keep], "end": x2[keep]}, index=ix.courses[keep]), excl


def course_values(
    data: Any,
    long: pd.DataFrame | LongIndex,
    names: Sequence[str],
    *,
    at: str,
    courses: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Course-level values of ``names``, indexed by course_id (every course of the long frame).

    A name ``"x@tp"`` is ``x`` at timepoint ``tp``; a plain name is taken at timepoint ``at`` when it is a column
    of the long format, else from the course table (``courses``, ``data.courses`` or ``data.registry.courses``).
    """
    ix = index_of(long)
    out = pd.DataFrame(index=ix.courses)
    table = None
    for name in names:
        var, _, tp = name.partition("@")
        if tp or var in ix.long.columns:
            col = ix.long[var] if var in ix.long.columns else None
            numeric_col = col is not None and pd.api.types.is_numeric_dtype(col)
            out[name] = ix.at(var, tp or at, as_float=numeric_col)
            continue
        table = table if table is not None else course_table(data, courses)
        if table is None or var not in table.columns:
            columns = list(ix.long.columns) + ([] if table is None else list(table.columns))
            raise AnalysisError(
                f"{var!r} is neither a column of the timepoint long format nor of the course table"
                + suggest(var, columns)
            )
        out[name] = (
            table.drop_duplicates("course_id").set_index("course_id")[var].reindex(ix.courses).to_numpy()
        )
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
    """Wilson score interval at confidence ``ci`` (:func:`kvarus_research.stats.wilson_ci`); NaN where ``nobs`` is 0."""
    return wilson_ci(count, nobs, alpha=1 - ci)


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
