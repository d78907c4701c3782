"""Course-model rules for the registrations of an extract: dates, duplicates, orphans and the course order.

:func:`check_registrations` takes the registrations that passed the codebook checks and returns the findings
that reject more of them. Each rule is an ``error`` (the row is rejected), so that what remains forms a registry
that satisfies :meth:`kvarus_research.Registry.validate`:

``date_before_2019``
    dated before 1 January 2019 (Kvarus had national status from December 2018).
``date_in_future``
    dated after the extract date.
``duplicate_registration``
    same patient, form and date as an earlier line (the first line is kept).
``orphan_registration``
    the course id (ForlopsID) is missing while the extract has course ids, or it belongs to another patient.
``two_baselines``, ``two_endings``, ``two_followups``
    a second registration of that kind in one course (the earliest is kept).
``ending_before_start``
    the ending is dated before the course start (its baseline, or else its first measurement point).
``followup_without_ending``
    a one-year follow-up in a course with no (valid) ending.
``outside_course``
    a measurement point before the baseline or after the ending, or a follow-up before the ending.

Without course ids, courses are derived by :func:`kvarus_research.registry.derive_course_ids`, whose problems
become findings with the same rule names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kvarus_research.io.validate import finding_frame
from kvarus_research.registry.constants import KIND_ORDER
from kvarus_research.registry.courses import derive_course_ids

#: Registrations dated before this are rejected (national status December 2018, registration from 2020).
EARLIEST_DATE = pd.Timestamp("2019-01-01")


#: Per source index (``_src``): the file name and its date column, so findings name them.
Sources = list[tuple[str, str]]


def _findings(
    regs: pd.DataFrame, mask: np.ndarray, rule: str, message: str, column: str | None, sources: Sources
) -> list[pd.DataFrame]:
    """Findings for the masked rows, one table per source file (``column="date"``: the file's date column)."""
    out = []
    sub = regs.loc[mask]
    for src, grp in sub.groupby("_src", sort=True):
        file, date_column = sources[int(src)]
        values = grp["date"].dt.strftime("%d.%m.%Y").fillna("") if column == "date" else None
        out.append(
            finding_frame(
                file,
                grp["_line"].to_numpy(),
                date_column if column == "date" else column,
                values,
                rule,
                "error",
                message,
            )
        )
    return out


def check_dates(regs: pd.DataFrame, extract_date: pd.Timestamp, sources: Sources) -> tuple[np.ndarray, list]:
    """Reject registrations dated before 2019 or after the extract date.

    ``regs`` needs ``date``, ``_src`` (index into ``sources``: file name and date column) and ``_line``.

    Examples
    --------
    >>> regs = pd.DataFrame({"date": pd.to_datetime(["2018-12-31", "2021-05-01", "2023-01-02"]),
    ...     "_src": 0, "_line": [2, 3, 4]})
    >>> bad, found = check_dates(regs, pd.Timestamp("2023-01-01"), [("m.csv", "dato_mp_beh")])
    >>> bad.tolist(), [f["rule"].iloc[0] for f in found]
    ([True, False, True], ['date_before_2019', 'date_in_future'])
    """
    date = regs["date"]
    early = (date < EARLIEST_DATE).to_numpy(dtype=bool, na_value=False)
    late = (date > extract_date).to_numpy(dtype=bool, na_value=False)
    found = _findings(
        regs,
        early,
        "date_before_2019",
        "dated before 01.01.2019 (before Kvarus); row rejected",
        "date",
        sources,
    )
    found += _findings(
        regs,
        late,
        "date_in_future",
        f"dated after the extract date {extract_date:%d.%m.%Y}; row rejected",
        "date",
        sources,
    )
    return early | late, found


def check_duplicates(regs: pd.DataFrame, sources: Sources) -> tuple[np.ndarray, list[pd.DataFrame]]:
    """Reject a registration with the same patient, form, date and course as an earlier line (the first is kept).

    The course is the course id when the extract has one, else the registration kind: a follow-up of one course
    and the first measurement point of the next on the same day are two registrations, not a duplicate.
    ``regs`` needs ``patient_id``, ``_src`` (one per file, so per form), ``date``, ``_course_key``, ``_line``.

    Examples
    --------
    >>> regs = pd.DataFrame({"patient_id": [1, 1, 1], "_src": 0, "_line": [2, 3, 4], "_course_key": [5, 5, 6],
    ...     "date": pd.to_datetime(["2021-05-01"] * 3)})
    >>> bad, found = check_duplicates(regs, [("m.csv", "dato_mp_beh")])
    >>> bad.tolist(), found[0]["message"].iloc[0]
    ([False, True, False], 'same patient, form, date and course as line 2; row rejected')
    """
    key = ["patient_id", "_src", "date", "_course_key"]
    dup = regs.duplicated(key, keep="first").to_numpy()
    if not dup.any():
        return dup, []
    out = []
    first_line = regs.groupby(key, sort=False, dropna=False)["_line"].transform("first").to_numpy()[dup]
    sub = regs.loc[dup].assign(_first=first_line)
    for (src, line_first), g in sub.groupby(["_src", "_first"], sort=True):
        out.append(
            finding_frame(
                sources[int(src)][0],
                g["_line"].to_numpy(),
                "<patient, form, date>",
                None,
                "duplicate_registration",
                "error",
                f"same patient, form, date and course as line {line_first}; row rejected",
            )
        )
    return dup, out


def assign_courses(regs: pd.DataFrame, sources: Sources) -> tuple[pd.Series, np.ndarray, list[pd.DataFrame]]:
    """Course ids from ``course_id`` when present, else derived; returns ids, rejected rows and findings.

    ``regs`` needs ``course_id``, ``patient_id``, ``_src``, ``_line``, ``date`` (and ``kind`` to derive courses).
    """
    if "course_id" in regs.columns and regs["course_id"].notna().any():
        cid = regs["course_id"]
        missing = cid.isna().to_numpy()
        codes = pd.factorize(cid)[0]
        pid = pd.factorize(regs["patient_id"])[0]
        owner = pd.Series(pid[~missing]).groupby(codes[~missing], sort=True).first()
        owner_of = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
        owner_of[owner.index.to_numpy()] = owner.to_numpy()
        other = (~missing) & (pid != owner_of[np.maximum(codes, 0)])
        found = _findings(
            regs,
            missing,
            "orphan_registration",
            "no course id (ForlopsID) while the extract has course ids: the course is unknown; row rejected",
            "ForlopsID",
            sources,
        )
        found += _findings(
            regs,
            other,
            "orphan_registration",
            "the course id (ForlopsID) belongs to another patient; row rejected",
            "ForlopsID",
            sources,
        )
        return cid, missing | other, found
    ids, problems = derive_course_ids(regs)
    bad = np.zeros(len(regs), dtype=bool)
    found: list[pd.DataFrame] = []
    for rule, grp in problems.groupby("rule"):
        mask = np.zeros(len(regs), dtype=bool)
        mask[grp["row"].to_numpy(dtype=np.int64)] = True
        found += _findings(
            regs,
            mask,
            str(rule),
            str(grp["message"].iloc[0]) + " (courses derived from behandlingsstatus); row rejected",
            "behandlingsstatus",
            sources,
        )
        bad |= mask
    return ids.astype("string"), bad, found


def check_course_order(regs: pd.DataFrame, sources: Sources) -> tuple[np.ndarray, list[pd.DataFrame]]:
    """Reject registrations that break the order of their course (see the module docstring for the rules).

    ``regs`` needs ``course_id``, ``_rank`` (the kind's order: baseline 0 ... followup 3), ``date``, ``_src``,
    ``_line``.

    Examples
    --------
    >>> regs = pd.DataFrame({"course_id": ["c"] * 4, "_rank": [0, 2, 2, 3],
    ...     "date": pd.to_datetime(["2021-01-05", "2021-01-01", "2021-03-01", "2022-03-01"]),
    ...     "_src": 0, "_line": [2, 3, 4, 5]})
    >>> bad, found = check_course_order(regs, [("m.csv", "dato_mp_beh")])
    >>> bad.tolist(), sorted(f["rule"].iloc[0] for f in found)
    ([False, True, True, True], ['ending_before_start', 'followup_without_ending', 'two_endings'])
    """
    n = len(regs)
    bad = np.zeros(n, dtype=bool)
    if n == 0:
        return bad, []
    code = pd.factorize(regs["course_id"])[0]
    rank = regs["_rank"].to_numpy(dtype=np.int64)
    date = regs["date"].to_numpy(dtype="datetime64[ns]")
    order = np.lexsort((regs["_line"].to_numpy(), rank, date, code))
    frame = pd.DataFrame({"c": code[order], "k": rank[order], "d": date[order]}, index=order)
    nth = frame.groupby(["c", "k"], sort=False).cumcount().to_numpy()
    base, meas, end, fup = (KIND_ORDER[k] for k in ("baseline", "measurement", "ending", "followup"))
    rules: dict[str, np.ndarray] = {}
    k, c, d = frame["k"].to_numpy(), frame["c"].to_numpy(), frame["d"].to_numpy()
    rules["two_baselines"] = (k == base) & (nth > 0)
    rules["two_endings"] = (k == end) & (nth > 0)
    rules["two_followups"] = (k == fup) & (nth > 0)
    nat = np.datetime64("NaT", "ns")
    ncourse = int(c.max()) + 1 if len(c) else 0

    def first_date(mask: np.ndarray) -> np.ndarray:
        out = np.full(ncourse, nat)
        sub = pd.Series(d[mask]).groupby(c[mask]).min()
        out[sub.index.to_numpy()] = sub.to_numpy()
        return out

    base_date = first_date((k == base) & (nth == 0))
    meas_date = first_date(k == meas)
    start = np.where(np.isnat(base_date), meas_date, base_date)
    first_end = (k == end) & (nth == 0)
    rules["ending_before_start"] = first_end & (d < start[c])
    end_date = first_date(first_end & ~rules["ending_before_start"])
    has_base = ~np.isnat(base_date[c])
    has_end = ~np.isnat(end_date[c])
    rules["followup_without_ending"] = (k == fup) & (nth == 0) & ~has_end
    rules["outside_course"] = (
        ((k == meas) & has_base & (d < base_date[c]))
        | ((k == meas) & has_end & (d > end_date[c]))
        | ((k == fup) & (nth == 0) & has_end & (d < end_date[c]))
    )
    messages = {
        "two_baselines": "a second baseline in the same course",
        "two_endings": "a second ending in the same course",
        "two_followups": "a second one-year follow-up in the same course",
        "ending_before_start": "the ending is dated before the course starts",
        "followup_without_ending": "a one-year follow-up in a course without an ending",
        "outside_course": "dated outside its course (before the baseline, after the ending, or a follow-up "
        "before the ending)",
    }
    found: list[pd.DataFrame] = []
    for rule, mask in rules.items():
        if mask.any():
            rows = np.zeros(n, dtype=bool)
            rows[frame.index.to_numpy()[mask]] = True
            rows &= ~bad  # one course-order finding per row
            found += _findings(regs, rows, rule, messages[rule] + "; row rejected", "date", sources)
            bad |= rows
    return bad, found
