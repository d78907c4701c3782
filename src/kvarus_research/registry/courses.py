"""Courses (behandlingsforløp): deriving them from registrations and summarising each one.

When an extract has no course id, courses are derived from the order of a patient's registrations and their
``behandlingsstatus`` (domain.md §2): a baseline registration always opens a new course; a measurement point
(or ending) opens a new course when the patient has no open course (first registration, or the previous course
has ended); status 2/3/4 ends the open course; status 5/6/7 is the one-year follow-up of the course that just
ended. Registrations that break these rules are reported as problems with the row number and rule, never with
an identifier.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kvarus_research.registry.constants import (
    FOLLOWUP_GRACE_DAYS,
    KIND_ORDER,
    STATUS_ENDING,
    STATUS_FOLLOWUP,
    followup_due_date,
)

PROBLEM_COLUMNS = ["row", "rule", "message"]


def _sorted_view(registrations: pd.DataFrame) -> pd.DataFrame:
    kind_rank = registrations["kind"].map(KIND_ORDER)
    if kind_rank.isna().any():
        bad = registrations.loc[kind_rank.isna(), "kind"].iloc[0]
        raise ValueError(f"registration kind {bad!r} is not one of {list(KIND_ORDER)}")
    view = pd.DataFrame(
        {
            "patient_id": registrations["patient_id"].to_numpy(),
            "date": pd.to_datetime(registrations["date"]).to_numpy(),
            "kind_rank": kind_rank.to_numpy(dtype=np.int8),
            "row": np.arange(len(registrations)),
        }
    )
    return view.sort_values(["patient_id", "date", "kind_rank", "row"], kind="stable")


def derive_course_ids(registrations: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Assign each registration to a course from the order of the patient's registrations.

    Parameters
    ----------
    registrations : DataFrame
        Needs ``patient_id``, ``date`` and ``kind`` (baseline, measurement, ending, followup).

    Returns
    -------
    course_id : Series
        ``"<patient_id>-<n>"`` per registration, aligned to ``registrations.index``; missing for rows that break a
        rule.
    problems : DataFrame
        ``row`` (0-based position in ``registrations``), ``rule`` and ``message`` for each registration that cannot
        be placed: ``two_endings`` (an ending right after an ending), ``followup_without_ending`` (a follow-up
        that does not follow an ending), ``two_followups``.

    Examples
    --------
    >>> regs = pd.DataFrame({"patient_id": ["a"] * 4,
    ...     "date": pd.to_datetime(["2021-01-01", "2021-03-01", "2021-05-01", "2021-06-01"]),
    ...     "kind": ["measurement", "ending", "measurement", "ending"]})
    >>> ids, problems = derive_course_ids(regs)
    >>> ids.tolist(), len(problems)
    (['a-1', 'a-1', 'a-2', 'a-2'], 0)
    """
    n = len(registrations)
    if n == 0:
        return pd.Series([], dtype="string", index=registrations.index), pd.DataFrame(columns=PROBLEM_COLUMNS)
    view = _sorted_view(registrations)
    pid = view["patient_id"].to_numpy()
    rank = view["kind_rank"].to_numpy()
    rows = view["row"].to_numpy()
    first = np.ones(n, dtype=bool)
    first[1:] = pid[1:] != pid[:-1]
    prev = np.full(n, -1, dtype=np.int8)
    prev[1:] = rank[:-1]
    prev[first] = -1
    base, meas, end, fup = (
        KIND_ORDER["baseline"],
        KIND_ORDER["measurement"],
        KIND_ORDER["ending"],
        KIND_ORDER["followup"],
    )
    # Rule violations (judged against the previous registration of the same patient).
    two_endings = (rank == end) & (prev == end)
    fup_no_end = (rank == fup) & (prev != end) & (prev != fup)
    two_fups = (rank == fup) & (prev == fup)
    bad = two_endings | fup_no_end | two_fups
    # A course starts at: the patient's first registration, every baseline, or a measurement/ending whose
    # previous registration closed a course (ending or follow-up).
    starts = first | (rank == base) | (((rank == meas) | (rank == end)) & ((prev == end) | (prev == fup)))
    starts &= ~bad
    course_no = np.zeros(n, dtype=np.int64)
    # Running count of starts within each patient.
    cum = np.cumsum(starts)
    patient_start_cum = np.maximum.accumulate(np.where(first, cum - starts, 0))
    course_no = cum - patient_start_cum
    ids = pd.Series(pd.array(pid.astype(str), dtype="string"), index=rows)
    ids = ids + "-" + pd.Series(course_no.astype(str), index=rows, dtype="string")
    ids[bad] = pd.NA
    ids = ids.sort_index()
    ids.index = registrations.index
    problems = []
    for mask, rule, text in (
        (two_endings, "two_endings", "a second ending registration without a new course in between"),
        (fup_no_end, "followup_without_ending", "a one-year follow-up that does not follow an ending"),
        (two_fups, "two_followups", "a second one-year follow-up for the same course"),
    ):
        for r in rows[mask]:
            problems.append({"row": int(r), "rule": rule, "message": text})
    probs = pd.DataFrame(problems, columns=PROBLEM_COLUMNS).sort_values("row", ignore_index=True)
    return ids.rename("course_id"), probs


def summarise_courses(
    registrations: pd.DataFrame,
    extract_date: pd.Timestamp | str,
    *,
    grace_days: int = FOLLOWUP_GRACE_DAYS,
) -> pd.DataFrame:
    """One row per course: start, ending, ending type and one-year follow-up status.

    Parameters
    ----------
    registrations : DataFrame
        Needs ``course_id``, ``patient_id``, ``unit_id``, ``date``, ``kind`` and ``status``; ``age`` is used
        when present.
    extract_date : Timestamp or str
        Date of the extract: a follow-up is owed only when ending + 365 days + ``grace_days`` lies before it.
    grace_days : int
        Grace period after the one-year mark before a missing follow-up counts as missing.

    Returns
    -------
    DataFrame
        ``course_id, patient_id, unit_id, start_date, end_date, ending_type, followup_date, followup_status,
        age_at_start, n_registrations``.

    Examples
    --------
    >>> regs = pd.DataFrame({"course_id": ["c1"] * 3, "patient_id": ["p"] * 3, "unit_id": [1] * 3,
    ...     "date": pd.to_datetime(["2021-01-01", "2021-06-01", "2022-06-10"]),
    ...     "kind": ["baseline", "ending", "followup"], "status": [pd.NA, 4, 5]})
    >>> c = summarise_courses(regs, "2024-01-01")
    >>> c.loc[0, ["ending_type", "followup_status"]].tolist()
    ['mutual_agreement', 'reached']
    """
    extract_date = pd.Timestamp(extract_date)
    # Sort, group and join on integer codes of the course ids (numbered in the ids' sort order): much faster
    # than on strings for millions of registrations. The ids are put back at the end.
    codes, course_ids = pd.factorize(registrations["course_id"], sort=True)
    regs = registrations.assign(course_id=codes, _rank=registrations["kind"].map(KIND_ORDER))
    if (codes < 0).any():  # no course id: in no course (as grouping on the ids would drop them)
        regs = regs[codes >= 0]
    regs = regs.sort_values(["course_id", "date", "_rank"], kind="stable")
    g = regs.groupby("course_id", sort=True)
    firsts = g.first()
    out = pd.DataFrame(
        {
            "course_id": firsts.index.to_numpy(),
            "patient_id": firsts["patient_id"].to_numpy(),
            "unit_id": firsts["unit_id"].to_numpy(),
            "start_date": g["date"].min().to_numpy(),
            "n_registrations": g.size().to_numpy(),
        }
    )
    if "age" in regs.columns:
        out["age_at_start"] = g["age"].first().to_numpy()  # first non-missing age in date order
    endings = regs[regs["kind"] == "ending"].drop_duplicates("course_id")
    end_status = pd.to_numeric(endings["status"], errors="coerce")
    # An ending form without an ending status code is an ending of unknown type: kept explicit, not guessed.
    end_type = end_status.map(STATUS_ENDING).fillna("unknown")
    ending_info = pd.DataFrame(
        {"end_date": endings["date"].to_numpy(), "ending_type": end_type.to_numpy()},
        index=endings["course_id"].to_numpy(),
    )
    fups = regs[regs["kind"] == "followup"].drop_duplicates("course_id")
    fup_status = pd.to_numeric(fups["status"], errors="coerce").map(STATUS_FOLLOWUP).fillna("reached")
    fup_info = pd.DataFrame(
        {"followup_date": fups["date"].to_numpy(), "followup_status": fup_status.to_numpy()},
        index=fups["course_id"].to_numpy(),
    )
    out = out.join(ending_info, on="course_id").join(fup_info, on="course_id")
    out["ending_type"] = out["ending_type"].fillna("active")
    due = followup_due_date(out["end_date"], grace_days)
    status_fill = np.where(
        out["ending_type"] == "active",
        "no_ending",
        np.where(due > extract_date, "not_yet_due", "not_registered"),
    )
    out["followup_status"] = out["followup_status"].fillna(pd.Series(status_fill, index=out.index))
    out["course_id"] = np.asarray(pd.Index(course_ids).astype("string"), dtype=object)[
        out["course_id"].to_numpy()
    ]
    cols = [
        "course_id",
        "patient_id",
        "unit_id",
        "start_date",
        "end_date",
        "ending_type",
        "followup_date",
        "followup_status",
    ]
    cols += ["age_at_start"] if "age_at_start" in out.columns else []
    cols += ["n_registrations"]
    return out[cols]
