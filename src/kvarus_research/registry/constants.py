"""Names of the course model: registration kinds, ending types, follow-up statuses and status codes."""

from __future__ import annotations

from typing import Any

import numpy as np

#: Registration kinds, in their order within a course.
KINDS: tuple[str, ...] = ("baseline", "measurement", "ending", "followup")
KIND_ORDER: dict[str, int] = {k: i for i, k in enumerate(KINDS)}

#: How a course ended (avslutningstype). ``active`` = still in treatment at the extract date.
ENDING_TYPES: tuple[str, ...] = ("mutual_agreement", "interrupted", "transferred", "active")

#: One-year follow-up status of a course.
#: ``reached`` (fulgt opp etter 1 år), ``not_reached`` (ikke oppnådd kontakt), ``declined`` (ønsker ikke å svare),
#: ``not_yet_due`` (ending + 1 year + grace lies after the extract date), ``not_registered`` (due, nothing
#: registered), ``no_ending`` (course still active: no follow-up is owed).
FOLLOWUP_STATUSES: tuple[str, ...] = (
    "reached",
    "not_reached",
    "declined",
    "not_yet_due",
    "not_registered",
    "no_ending",
)

#: behandlingsstatus codes (domain.md §2) → what they mean in the course model.
STATUS_ACTIVE = 1
STATUS_ENDING: dict[int, str] = {2: "transferred", 3: "interrupted", 4: "mutual_agreement"}
STATUS_FOLLOWUP: dict[int, str] = {5: "reached", 6: "not_reached", 7: "declined"}
ENDING_STATUS_CODE: dict[str, int] = {v: k for k, v in STATUS_ENDING.items()}
FOLLOWUP_STATUS_CODE: dict[str, int] = {v: k for k, v in STATUS_FOLLOWUP.items()}

#: Default grace period after ending + one year before a missing follow-up counts as missing.
FOLLOWUP_GRACE_DAYS = 90

#: The one-year follow-up is registered about this many days after the ending.
ONE_YEAR_DAYS = 365


def followup_due_date(end_date: Any, grace_days: int = FOLLOWUP_GRACE_DAYS) -> Any:
    """The date from which a missing one-year follow-up counts as missing: ending + 365 days + grace.

    Works on a Timestamp, a datetime Series or a ``datetime64`` array (NaT stays NaT). The one rule used by the
    course summary, the cohort criterion ``followup_due`` and timepoint alignment (domain.md §5).

    Examples
    --------
    >>> import pandas as pd
    >>> followup_due_date(pd.Timestamp("2021-03-01"))  # 2021-03-01 + 365 + 90 days
    Timestamp('2022-05-30 00:00:00')
    """
    return end_date + np.timedelta64(ONE_YEAR_DAYS + int(grace_days), "D")


#: Unit settings.
SETTINGS: tuple[str, ...] = ("inpatient", "outpatient")


def kind_from_status(code: object) -> str:
    """Registration kind implied by a behandlingsstatus code on the Målepunkt form.

    Examples
    --------
    >>> kind_from_status(1), kind_from_status(3), kind_from_status(6)
    ('measurement', 'ending', 'followup')
    """
    try:
        c = int(code)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "measurement"
    if c in STATUS_ENDING:
        return "ending"
    if c in STATUS_FOLLOWUP:
        return "followup"
    return "measurement"
