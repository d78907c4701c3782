"""Dates and age: age in completed years, a per-patient date shift keyed by the project key, and coarsening.

The date shift moves every date of one patient by the same number of days (so intervals within a patient, such as
days from baseline to ending, are kept exactly), and different patients by different amounts. The shift is
HMAC-SHA-256 of the patient id under the project key, so it is the same in every delivery made with the same key
and cannot be recomputed without it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from kvarus_research.errors import PrivacyError
from kvarus_research.privacy.keys import PseudonymKey, as_key
from kvarus_research.registry.schema import tables_with

#: The tables holding dates (declared in :mod:`kvarus_research.registry.schema`).
DATE_TABLES: tuple[str, ...] = tables_with("date")


def age_in_years(birth: Any, at: Any) -> pd.Series:
    """Age in completed years at a date (a birthday counts on the day itself); vectorised, NA stays NA.

    Examples
    --------
    >>> age_in_years(pd.Series(pd.to_datetime(["1980-05-17", "2000-02-29"])),
    ...              pd.Series(pd.to_datetime(["2024-05-16", "2021-03-01"]))).tolist()
    [43, 21]
    """
    b = pd.to_datetime(pd.Series(birth)).reset_index(drop=True)
    a = pd.to_datetime(pd.Series(at)).reset_index(drop=True)
    years = a.dt.year - b.dt.year
    before = (a.dt.month < b.dt.month) | ((a.dt.month == b.dt.month) & (a.dt.day < b.dt.day))
    out = (years - before.astype("Int64")).astype("Int64")
    out[a.isna() | b.isna()] = pd.NA
    return out


def date_shifts(
    patient_ids: pd.Series, key: PseudonymKey | bytes | str | None, *, max_days: int = 180
) -> pd.Series:
    """Per-patient shift in days, uniform in ``[-max_days, max_days]`` without 0, from HMAC(key, patient id).

    Examples
    --------
    >>> k = bytes(range(40))
    >>> s = date_shifts(pd.Series(["a", "b", "a"]), k, max_days=30)
    >>> int(s[0]) == int(s[2]), 1 <= abs(int(s[0])) <= 30
    (True, True)
    """
    if max_days < 1:
        raise PrivacyError(f"date shift: max_days must be at least 1, got {max_days}")
    k = as_key(key)
    codes, uniques = pd.factorize(patient_ids, use_na_sentinel=True)
    digest = k.digests(np.asarray(uniques, dtype=object), "date-shift")
    raw = digest[:, :8].copy().view(np.uint64).ravel() % np.uint64(2 * max_days)
    shift = raw.astype(np.int64) - max_days
    shift = np.where(shift >= 0, shift + 1, shift)  # -max..-1, 1..max
    out = np.where(codes >= 0, shift[np.maximum(codes, 0)] if len(shift) else 0, 0)
    return pd.Series(out, index=patient_ids.index, name="shift_days")


def shift_dates(registry: Any, key: PseudonymKey | bytes | str | None, *, max_days: int = 180) -> Any:
    """Shift every date column of a Registry by a per-patient number of days (intervals within a patient kept).

    Applied to every datetime column of ``patients``, ``courses``, ``registrations`` and ``network_work``, by the
    row's ``patient_id``. ``extract_date`` and calendar years (coverage) are not shifted; years and the follow-up
    due status near the extract date can change by the shift, so shift after deriving those.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> reg = kr.synthetic.generate(n_courses=50, seed=1)
    >>> shifted = shift_dates(reg, bytes(range(40)), max_days=30)
    >>> d0 = (reg.courses["end_date"] - reg.courses["start_date"]).dt.days
    >>> d1 = (shifted.courses["end_date"] - shifted.courses["start_date"]).dt.days
    >>> bool(d0.equals(d1)), bool((reg.courses["start_date"] != shifted.courses["start_date"]).all())
    (True, True)
    """
    k = as_key(key)
    changes: dict[str, pd.DataFrame] = {}
    for name in DATE_TABLES:
        df = getattr(registry, name, None)
        if df is None or "patient_id" not in df.columns:
            continue
        date_cols = [c for c in df.columns if pd.api.types.is_datetime64_any_dtype(df[c])]
        if not date_cols:
            continue
        delta = pd.to_timedelta(date_shifts(df["patient_id"], k, max_days=max_days), unit="D")
        df = df.copy()
        for c in date_cols:
            df[c] = df[c] + delta
        changes[name] = df
    meta = {**registry.meta, "date_shift_max_days": max_days}
    return replace(registry, meta=meta, **changes)


def coarsen_dates(values: Any, to: Literal["month", "quarter", "year"] = "month") -> pd.Series:
    """Dates coarsened to the first day of their month, quarter or year.

    Examples
    --------
    >>> coarsen_dates(pd.Series(pd.to_datetime(["2023-05-17", "2023-11-02"])), "quarter").dt.date.astype(str).tolist()
    ['2023-04-01', '2023-10-01']
    """
    freq = {"month": "M", "quarter": "Q", "year": "Y"}
    if to not in freq:
        raise PrivacyError(f"coarsen_dates: to={to!r}; expected one of month, quarter, year")
    s = pd.to_datetime(pd.Series(values))
    return s.dt.to_period(freq[to]).dt.start_time.astype(s.dtype)
