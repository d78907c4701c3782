"""Retention and dropout: time in treatment with competing endings (avslutningstype).

``time_to_event`` builds the table (the dropout definition is an explicit argument), ``from_frame`` builds it
from a plain data frame with a time and an event column; ``kaplan_meier`` and ``cumulative_incidence``
(Aalen–Johansen) estimate curves by group with log-rank tests, medians and restricted means; ``gray_test``
compares cumulative incidence between groups (Gray 1988); ``cox`` fits cause-specific proportional-hazards
models with a Schoenfeld-residual check.
"""

from kvarus_research.retention.competing import GrayTestResult, gray_test
from kvarus_research.retention.cox import CoxResult, cox
from kvarus_research.retention.data import TimeToEvent, from_frame, time_to_event
from kvarus_research.retention.survival import SurvivalResult, cumulative_incidence, kaplan_meier

__all__ = [
    "CoxResult",
    "GrayTestResult",
    "SurvivalResult",
    "TimeToEvent",
    "cox",
    "cumulative_incidence",
    "from_frame",
    "gray_test",
    "kaplan_meier",
    "time_to_event",
]
