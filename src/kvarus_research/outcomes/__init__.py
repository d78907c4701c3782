"""Outcome change: paired change, reliable and clinically significant change, categorical transitions,
longitudinal models and attrition at follow-up (IPW, multiple imputation and the delta-adjusted tipping point)."""

from kvarus_research.outcomes.attrition import AttritionResult, attrition
from kvarus_research.outcomes.categorical import TransitionResult, transitions
from kvarus_research.outcomes.change import ChangeResult, change
from kvarus_research.outcomes.longitudinal import LongitudinalResult, longitudinal
from kvarus_research.outcomes.reliable import ReliableChangeResult, reliable_change
from kvarus_research.outcomes.sensitivity import TippingPointResult, tipping_point

__all__ = [
    "AttritionResult",
    "ChangeResult",
    "LongitudinalResult",
    "ReliableChangeResult",
    "TippingPointResult",
    "TransitionResult",
    "attrition",
    "change",
    "longitudinal",
    "reliable_change",
    "tipping_point",
    "transitions",
]
