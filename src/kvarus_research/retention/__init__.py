"""Retention and dropout: time in treatment with competing endings (avslutningstype).

``time_to_event`` builds the table (the dropout definition is an explicit argument); ``kaplan_meier`` and
``cumulative_incidence`` (Aalen–Johansen) estimate curves by group with log-rank tests, medians and restricted
means; ``cox`` fits cause-specific proportional-hazards models with a Schoenfeld-residual check.
"""

from kvarus_research.retention.cox import CoxResult, cox
from kvarus_research.retention.data import TimeToEvent, time_to_event
from kvarus_research.retention.survival import SurvivalResult, cumulative_incidence, kaplan_meier

__all__ = [
    "CoxResult",
    "SurvivalResult",
    "TimeToEvent",
    "cox",
    "cumulative_incidence",
    "kaplan_meier",
    "time_to_event",
]
