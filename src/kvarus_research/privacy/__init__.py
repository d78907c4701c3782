"""Privacy: national identity numbers, keyed pseudonyms, dates and age, re-identification risk, output
disclosure control (:func:`protect`) and a leak scan of output folders."""

from __future__ import annotations

from kvarus_research.privacy.disclosure import (
    PRESETS,
    DisclosureRules,
    ProtectedTable,
    protect,
    protect_crosstab,
)
from kvarus_research.privacy.national_id import is_valid_national_id, make_national_ids, national_id
from kvarus_research.privacy.suppression import attack_intervals

__all__ = [
    "PRESETS",
    "DisclosureRules",
    "ProtectedTable",
    "attack_intervals",
    "is_valid_national_id",
    "make_national_ids",
    "national_id",
    "protect",
    "protect_crosstab",
]
