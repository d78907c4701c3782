"""The registry model (course model): patients, courses, registrations, units."""

from kvarus_research.registry.constants import (
    ENDING_TYPES,
    FOLLOWUP_GRACE_DAYS,
    FOLLOWUP_STATUSES,
    KINDS,
    STATUS_ENDING,
    STATUS_FOLLOWUP,
    followup_due_date,
    kind_from_status,
)
from kvarus_research.registry.courses import derive_course_ids, summarise_courses
from kvarus_research.registry.model import Registry

__all__ = [
    "ENDING_TYPES",
    "FOLLOWUP_GRACE_DAYS",
    "FOLLOWUP_STATUSES",
    "KINDS",
    "STATUS_ENDING",
    "STATUS_FOLLOWUP",
    "Registry",
    "derive_course_ids",
    "followup_due_date",
    "kind_from_status",
    "summarise_courses",
]
