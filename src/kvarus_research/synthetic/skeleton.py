"""The skeleton of the synthetic registry: patients, courses, competing endings and measurement-point dates."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.synthetic import params as P

#: Ending causes in the order of :data:`params.ENDING_BASE_HAZARD` (course-model ending types).
CAUSES: tuple[str, ...] = tuple(P.ENDING_BASE_HAZARD)


def _growing_days(rng: np.random.Generator, n: int, span: int) -> np.ndarray:
    """Day offsets in [0, span] with density proportional to 1 + a x (volume growing over the period)."""
    a = P.VOLUME_GROWTH
    u = rng.random(n)
    x = (-1.0 + np.sqrt(1.0 + 2.0 * a * u * (1.0 + a / 2.0))) / a
    return np.minimum(np.floor(x * (span + 1)), span).astype(np.int64)


def course_skeleton(
    rng: np.random.Generator,
    n: int,
    units: pd.DataFrame,
    span: int,
    horizon: int,
    mutual_log_hr: np.ndarray | None = None,
) -> dict[str, Any]:
    """Patients, units, start days, ages, severities and competing ending times for ``n`` courses.

    ``mutual_log_hr`` (one value per unit, optional): a unit effect, the log hazard ratio of ending by mutual
    agreement at that unit. With constant cause-specific hazards it shifts the log odds of mutual agreement among
    courses ended by mutual agreement or interruption by exactly that amount. ``None`` (the default) draws the same
    numbers as before the option existed.

    Courses of one patient lie next to each other; the k-th course starts 14 days + an exponential gap after the
    (k-1)-th ends. When the previous course is still active, or the gap would pass the end of the start period,
    the course goes to a new patient instead (so there are always exactly ``n`` courses).

    Examples
    --------
    >>> from kvarus_research.synthetic.units import make_units
    >>> units, _ = make_units(np.random.default_rng(0), 8)
    >>> sk = course_skeleton(np.random.default_rng(0), 1000, units, span=2190, horizon=2372)
    >>> sk["n_patients"], int(sk["ended"].sum())
    (837, 974)
    """
    counts = rng.choice(len(P.COURSES_PER_PATIENT), size=n, p=P.COURSES_PER_PATIENT) + 1
    cs = np.cumsum(counts)
    n_pat = int(np.searchsorted(cs, n) + 1)
    counts = counts[:n_pat]
    counts[-1] -= cs[n_pat - 1] - n
    patient = np.repeat(np.arange(n_pat), counts)
    order = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)  # 0-based position within patient
    weights = units["_weight"].to_numpy()
    unit_pos = rng.choice(len(units), size=n, p=weights / weights.sum())
    inpatient_unit = units["setting"].to_numpy() == "inpatient"
    # per patient: sex, age at first course, stable part of severity
    female = rng.random(n) < P.FEMALE_SHARE  # indexed by patient slot (up to n slots)
    age_first = np.clip(18 + rng.gamma(P.AGE_SHAPE, P.AGE_SCALE, n), P.AGE_MIN, P.AGE_MAX)
    patient_z = rng.standard_normal(n)
    z = np.sqrt(0.5) * patient_z[patient] + np.sqrt(0.5) * rng.standard_normal(n)
    start = np.zeros(n, dtype=np.int64)
    birth = np.zeros(n, dtype=np.float64)  # birth day (relative to the period start), per patient slot
    end = np.zeros(n, dtype=np.float64)
    cause = np.zeros(n, dtype=np.int8)
    age = np.zeros(n, dtype=np.int64)
    next_patient = n_pat
    base = np.array([P.ENDING_BASE_HAZARD[c] for c in CAUSES])
    beta = np.array([[P.ENDING_LOG_HR[c][k] for k in ("severity", "age10", "inpatient")] for c in CAUSES])
    for k in range(int(order.max()) + 1):
        idx = np.flatnonzero(order == k)
        fresh = np.ones(len(idx), dtype=bool)
        if k > 0:
            prev = idx - 1
            gap = 14 + rng.exponential(P.REPEAT_GAP_MEAN_DAYS, len(idx))
            s = np.ceil(end[prev] + gap)
            ok = (end[prev] <= horizon) & (s <= span)  # the previous course has ended, and in time
            start[idx[ok]] = s[ok]
            # a repeat course often stays at the same unit
            same = ok & (rng.random(len(idx)) < 0.7)
            unit_pos[idx[same]] = unit_pos[prev[same]]
            fresh = ~ok
            moved = idx[fresh]
            new_ids = np.arange(next_patient, next_patient + len(moved))
            next_patient += len(moved)
            # the rest of this patient's chain follows the moved course to its new patient
            for j in range(len(moved)):  # rare: only failed repeats
                chain = moved[j]
                while chain < n and order[chain] >= k and patient[chain] == patient[moved[j]]:
                    chain += 1
                patient[moved[j] : chain] = new_ids[j]
        first_idx = idx[fresh]
        start[first_idx] = _growing_days(rng, len(first_idx), span)
        pslot = patient[first_idx]
        birth[pslot] = start[first_idx] - age_first[pslot] * 365.25 - rng.uniform(0, 365, len(first_idx))
        age[idx] = np.floor((start[idx] - birth[patient[idx]]) / 365.25).astype(np.int64)
        x = np.column_stack([z[idx], (age[idx] - 35) / 10.0, inpatient_unit[unit_pos[idx]].astype(float)])
        rates = base[None, :] * np.exp(x @ beta.T)
        if mutual_log_hr is not None:
            rates[:, CAUSES.index("mutual_agreement")] *= np.exp(mutual_log_hr[unit_pos[idx]])
        times = rng.exponential(1.0, (len(idx), len(CAUSES))) / rates
        cause[idx] = np.argmin(times, axis=1)
        end[idx] = start[idx] + np.maximum(np.ceil(times.min(axis=1)), 1)
    # renumber patients 0..m-1 in order of their slot
    slots, patient = np.unique(patient, return_inverse=True)
    return {
        "patient": patient,
        "n_patients": len(slots),
        "unit_pos": unit_pos,
        "start": start,
        "end": end,
        "ended": end <= horizon,
        "cause": cause,
        "age": age,
        "z": z,
        "female": female[slots],
        "birth": birth[slots],
    }


def measurement_points(
    rng: np.random.Generator, dur: np.ndarray, inpatient: np.ndarray, has_baseline: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Course index and day (since the course start) of every registered measurement point.

    Points fall due every ``interval`` days (uniform per course in :data:`params.MP_INTERVAL_DAYS` by setting),
    minus up to 7 days, strictly before the ending (or the extract date, ``dur`` days after the start); each is
    registered with probability :data:`params.MP_COMPLIANCE`, at most :data:`params.MP_MAX` per course. A course
    without a baseline registration starts with a measurement point on day 0.

    Examples
    --------
    An outpatient course of 400 days with a baseline, and a 10-day course that started with a measurement point:

    >>> c, d = measurement_points(np.random.default_rng(0), np.array([400.0, 10.0]), np.array([False, True]),
    ...                           np.array([True, False]))
    >>> c.tolist(), d.tolist()
    ([1, 0, 0, 0], [0, 68, 137, 339])
    """
    n = len(dur)
    lo = np.where(inpatient, P.MP_INTERVAL_DAYS["inpatient"][0], P.MP_INTERVAL_DAYS["outpatient"][0])
    hi = np.where(inpatient, P.MP_INTERVAL_DAYS["inpatient"][1], P.MP_INTERVAL_DAYS["outpatient"][1])
    interval = rng.uniform(lo, hi)
    n_due = np.floor((dur - 1) / interval).astype(np.int64).clip(0, None)
    mp_course = np.repeat(np.arange(n), n_due)
    j = np.arange(len(mp_course)) - np.repeat(np.cumsum(n_due) - n_due, n_due) + 1
    mp_day = np.floor(j * interval[mp_course] - rng.uniform(0, 7, len(mp_course))).astype(np.int64)
    kept = rng.random(len(mp_course)) < P.MP_COMPLIANCE
    mp_course, mp_day = mp_course[kept], mp_day[kept]
    rank_in_course = np.arange(len(mp_course)) - np.repeat(
        np.cumsum(np.bincount(mp_course, minlength=n)) - np.bincount(mp_course, minlength=n),
        np.bincount(mp_course, minlength=n),
    )
    cap = rank_in_course < P.MP_MAX
    mp_course, mp_day = mp_course[cap], mp_day[cap]
    first_mp = np.flatnonzero(~has_baseline)  # courses that start with a measurement point on day 0
    mp_course = np.concatenate([first_mp, mp_course])
    mp_day = np.concatenate([np.zeros(len(first_mp), dtype=np.int64), mp_day])
    return mp_course, mp_day
