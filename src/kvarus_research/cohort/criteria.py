"""The cohort criteria: each returns a keep-mask over the courses, a readable label, an exclusion reason and its
parameters as plain (YAML-safe) data. Used by :class:`~kvarus_research.cohort.Cohort`; vectorised throughout."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.cohort._base import CohortBase
from kvarus_research.errors import CohortError
from kvarus_research.registry.constants import ENDING_TYPES, SETTINGS, followup_due_date

Result = tuple[np.ndarray, str, str, dict[str, Any]]
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_COMPARISON = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")


def _plain(value: Any) -> Any:
    """A YAML-safe version of a scalar or list (numpy scalars → Python, timestamps → ISO dates)."""
    if isinstance(value, list | tuple | set | frozenset | np.ndarray | pd.Index | pd.Series):
        return [_plain(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _as_list(values: Any) -> list[Any]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        return [values]
    return list(values)


def resolve_codes(base: CohortBase, variable: str, values: Any) -> list[Any]:
    """Codes of ``values`` for ``variable``: codes pass through, labels (any language, any case) become codes.

    Raises
    ------
    CohortError
        When a value is neither a code nor a label of the variable.
    """
    cb = base.registry.codebook
    if variable not in cb or not cb.variable(variable).codes:
        return _as_list(values)
    var = cb.variable(variable)
    lookup: dict[str, int] = {}
    for code, labels in var.codes.items():
        lookup[str(code)] = int(code)
        for text in labels.values():
            lookup[str(text).strip().lower()] = int(code)
    out = []
    for v in _as_list(values):
        key = str(_plain(v)).strip().lower()
        if key not in lookup:
            known = ", ".join(f"{c} = {var.code_label(c)}" for c in var.valid_codes)
            raise CohortError(
                f"{variable}: {v!r} is neither a code nor a label of the variable; expected one of {known}"
            )
        out.append(lookup[key])
    return out


def _labels(base: CohortBase, variable: str, codes: Iterable[Any]) -> str:
    cb = base.registry.codebook
    return ", ".join(cb.variable(variable).code_label(c) if variable in cb else str(c) for c in codes)


def _date(value: Any, what: str) -> pd.Timestamp | None:
    """ISO ``2021-03-02`` or day-first ``02.03.2021`` (never month-first): :func:`kvarus_research.io.dates.user_date`."""
    from kvarus_research.io.dates import user_date

    return user_date(value, what, CohortError)


def started_between(base: CohortBase, start: Any, end: Any) -> Result:
    """Course start date within ``[start, end]``."""
    s, e = _date(start, "started_between start"), _date(end, "started_between end")
    if s is not None and e is not None and e < s:
        raise CohortError(f"started_between: end {e.date()} lies before start {s.date()}")
    keep = _within(base.view["start_date"], s, e)
    text = f"{s.date() if s is not None else '…'} to {e.date() if e is not None else '…'}"
    return (
        keep,
        f"Course started {text}",
        f"course started outside {text}",
        {"start": _plain(s), "end": _plain(e)},
    )


def _within(values: pd.Series, lo: Any, hi: Any) -> np.ndarray:
    """Known values within ``[lo, hi]`` (either bound may be None); missing values are never kept."""
    keep = values.notna().to_numpy()
    if lo is not None:
        keep &= (values >= lo).fillna(False).to_numpy()
    if hi is not None:
        keep &= (values <= hi).fillna(False).to_numpy()
    return keep


def age_between(base: CohortBase, lo: float | None, hi: float | None) -> Result:
    """Age at course start within ``[lo, hi]``; unknown age excluded."""
    if "age_at_start" not in base.view.columns:
        raise CohortError(
            "age_between: the registry's courses have no age_at_start (no age in the registrations)"
        )
    keep = _within(pd.to_numeric(base.view["age_at_start"], errors="coerce"), lo, hi)
    text = f"{lo if lo is not None else '…'}–{hi if hi is not None else '…'}"
    return (
        keep,
        f"Age {text} at course start",
        f"age not {text} or unknown",
        {"lo": _plain(lo), "hi": _plain(hi)},
    )


def sex(base: CohortBase, code_or_label: Any) -> Result:
    """Patient sex equal to one of the codes (or codebook labels)."""
    cb = base.registry.codebook
    var = cb.by_role("sex")
    name = var.name if var is not None else "sex"
    codes = resolve_codes(base, name, code_or_label)
    values = pd.to_numeric(base.view["sex"], errors="coerce")
    keep = values.isin(codes).to_numpy()
    text = _labels(base, name, codes)
    return keep, f"Sex: {text}", f"sex not {text} or unknown", {"code_or_label": _plain(codes)}


def units(base: CohortBase, unit_list: Iterable[Any]) -> Result:
    """Unit id or unit name in the list."""
    wanted = _as_list(unit_list)
    if not wanted:
        raise CohortError("units: the list of units is empty")
    keep = base.view["unit_id"].isin(wanted).to_numpy() | base.view["unit_name"].isin(wanted).to_numpy()
    n = len(wanted)
    return keep, f"Treated at {n} selected unit(s)", "treated at another unit", {"units": _plain(wanted)}


def regions(base: CohortBase, region_list: Iterable[str]) -> Result:
    """Unit's health region in the list."""
    wanted = _as_list(region_list)
    if not wanted:
        raise CohortError("regions: the list of regions is empty")
    keep = base.view["region"].isin(wanted).to_numpy()
    text = ", ".join(map(str, wanted))
    return keep, f"Region: {text}", "unit in another region or region unknown", {"regions": _plain(wanted)}


def setting(base: CohortBase, value: str) -> Result:
    """Unit setting inpatient or outpatient."""
    if value not in SETTINGS:
        raise CohortError(f"setting: {value!r} is not one of {list(SETTINGS)}")
    keep = (base.view["setting"] == value).fillna(False).to_numpy(dtype=bool)
    return keep, f"{value.capitalize()} units", f"not {value} (or setting unknown)", {"setting": value}


def main_substance(base: CohortBase, substances: Any) -> Result:
    """Baseline main substance (``hovedrusmiddel``) in the list."""
    if "hovedrusmiddel" not in base.variables:
        raise CohortError("main_substance: the registrations have no hovedrusmiddel (main substance) column")
    codes = resolve_codes(base, "hovedrusmiddel", substances)
    values = pd.to_numeric(base.baseline_values["hovedrusmiddel"], errors="coerce")
    keep = values.isin(codes).to_numpy()
    text = _labels(base, "hovedrusmiddel", codes)
    return (
        keep,
        f"Main substance: {text}",
        f"main substance not {text} or not recorded",
        {"substances": _plain(codes)},
    )


def has_baseline(base: CohortBase) -> Result:
    """A baseline registration exists."""
    return (
        base.has_baseline_registration.copy(),
        "Has a baseline registration",
        "no baseline registration",
        {},
    )


def ended(base: CohortBase, types: Iterable[str] | None) -> Result:
    """Ended; optionally with an ending type in ``types``."""
    ending = base.view["ending_type"]
    if types is None:
        keep = (ending != "active").fillna(False).to_numpy(dtype=bool)
        return keep, "Course ended", "still in treatment (no ending)", {"types": None}
    wanted = _as_list(types)
    allowed = [t for t in ENDING_TYPES if t != "active"] + ["unknown"]
    bad = [t for t in wanted if t not in allowed]
    if bad:
        raise CohortError(f"ended: ending type(s) {bad} not one of {allowed}")
    keep = ending.isin(wanted).to_numpy()
    text = ", ".join(t.replace("_", " ") for t in wanted)
    return keep, f"Ended: {text}", f"not ended ({text})", {"types": wanted}


def first_course_per_patient(base: CohortBase, mask: np.ndarray) -> Result:
    """Earliest course (start date, then course id) of each patient among the currently selected courses."""
    pos = np.flatnonzero(mask)
    v = base.view.iloc[pos]
    order = pd.DataFrame(
        {
            "p": v["patient_id"].to_numpy(),
            "d": v["start_date"].to_numpy(),
            "c": v["course_id"].astype(str).to_numpy(),
        }
    )
    order["pos"] = pos
    order = order.sort_values(["p", "d", "c"], kind="stable")
    first = ~order["p"].duplicated().to_numpy()
    keep = np.zeros(base.n, dtype=bool)
    keep[order["pos"].to_numpy()[first]] = True
    return keep, "First course of each patient", "not the patient's first course (in the selection)", {}


def followup_due(base: CohortBase, grace_days: int) -> Result:
    """Ended with ending + 365 days + grace on or before the extract date."""
    if grace_days < 0:
        raise CohortError(f"followup_due: grace_days must be 0 or more, got {grace_days}")
    due = followup_due_date(base.view["end_date"], grace_days)
    keep = (due <= base.registry.extract_date).fillna(False).to_numpy(dtype=bool)
    return (
        keep,
        f"One-year follow-up due by the extract date (grace {grace_days} days)",
        "follow-up not yet due (or course not ended)",
        {"grace_days": int(grace_days)},
    )


def _evaluate(base: CohortBase, variable: str, values: pd.Series, condition: Any) -> tuple[np.ndarray, str]:
    """Apply a where-condition to a Series of values; returns the keep mask and readable text."""
    if callable(condition):
        got = condition(values)
        keep = pd.Series(got, index=values.index).fillna(False).to_numpy(dtype=bool)
        return keep, f"{getattr(condition, '__name__', 'custom')}(…)"
    if isinstance(condition, str):
        cond = condition.strip()
        if cond in ("notna", "isna"):
            keep = values.notna().to_numpy() if cond == "notna" else values.isna().to_numpy()
            return keep, "recorded" if cond == "notna" else "not recorded"
        m = _COMPARISON.match(cond)
        if m is None:
            raise CohortError(
                f"where {variable}: condition {condition!r} not understood; expected a comparison like '>= 10', "
                "'notna', 'isna', a list of values or {'between': [lo, hi]}"
            )
        num = pd.to_numeric(values, errors="coerce")
        keep = _OPS[m.group(1)](num, float(m.group(2))).fillna(False).to_numpy(dtype=bool)
        return keep, f"{m.group(1)} {m.group(2)}"
    if isinstance(condition, Mapping):
        if set(condition) != {"between"} or len(_as_list(condition["between"])) != 2:
            raise CohortError(
                f"where {variable}: a mapping condition must be {{'between': [lo, hi]}}, got {condition!r}"
            )
        lo, hi = _as_list(condition["between"])
        num = pd.to_numeric(values, errors="coerce")
        return num.between(lo, hi).fillna(False).to_numpy(dtype=bool), f"between {lo} and {hi}"
    codes = resolve_codes(base, variable, condition)
    keep = values.isin(codes).to_numpy()
    cb = base.registry.codebook
    text = _labels(base, variable, codes) if variable in cb and cb.variable(variable).codes else str(codes)
    return keep, f"in {text}"


def where(
    base: CohortBase,
    mask: np.ndarray,
    variable: str,
    timepoint: str,
    condition: Any,
    align: Mapping[str, Any] | None,
) -> Result:
    """Value of ``variable`` at ``timepoint`` meets ``condition``."""
    if variable not in base.variables:
        raise CohortError(
            f"where: {variable!r} is not a codebook data variable of the registrations; known: {base.variables}"
        )
    if timepoint == "baseline" and not align:
        values = base.baseline_values[variable]
    else:
        from kvarus_research.cohort.timepoints import align_positions

        tp = align_positions(base, np.flatnonzero(mask), **dict(align or {}))
        at = tp.long["timepoint"].to_numpy() == timepoint
        if not at.any() and timepoint not in tp.timepoint_names:
            raise CohortError(f"where: timepoint {timepoint!r} is not one of {tp.timepoint_names}")
        values = pd.Series(pd.NA, index=base.view.index, dtype="object")
        values.iloc[tp.positions[at]] = tp.long.loc[at, variable].to_numpy()
        values = values.infer_objects()
    keep, text = _evaluate(base, variable, values, condition)
    cb = base.registry.codebook
    name = cb.label(variable)
    params = {"variable": variable, "timepoint": timepoint, "condition": _plain(condition)}
    if align:
        params["align"] = {k: _plain(v) for k, v in align.items()}
    return keep, f"{name} at {timepoint}: {text}", f"{name} at {timepoint} not {text} (or missing)", params
