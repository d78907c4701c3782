"""Privacy: national identity numbers, keyed pseudonyms, dates and age, re-identification risk, output
disclosure control (:func:`protect`) and a leak scan of output folders.

Examples
--------
>>> import kvarus_research as kr
>>> kr.privacy.national_id("02013299997")["valid"].iloc[0]
np.True_
"""

from __future__ import annotations

from kvarus_research.privacy.audit import attack_intervals
from kvarus_research.privacy.dates import age_in_years, coarsen_dates, date_shifts, shift_dates
from kvarus_research.privacy.disclosure import protect, protect_crosstab
from kvarus_research.privacy.engine import Complement, Linear, Margin, Partition, TableSpec
from kvarus_research.privacy.keys import PseudonymKey, generate_key_file, load_key
from kvarus_research.privacy.national_id import is_valid_national_id, make_national_ids, national_id
from kvarus_research.privacy.pseudonym import PseudonymizationReport, pseudonymize
from kvarus_research.privacy.release import Equal, Release
from kvarus_research.privacy.risk import RiskReport, achieve_k, band, class_sizes, risk_report
from kvarus_research.privacy.rules import PRESETS, DisclosureRules, ProtectedTable
from kvarus_research.privacy.scan import scan_outputs

__all__ = [
    "Complement",
    "Equal",
    "Linear",
    "Margin",
    "Partition",
    "Release",
    "TableSpec",
    "PRESETS",
    "DisclosureRules",
    "ProtectedTable",
    "PseudonymKey",
    "PseudonymizationReport",
    "RiskReport",
    "achieve_k",
    "age_in_years",
    "attack_intervals",
    "band",
    "class_sizes",
    "coarsen_dates",
    "date_shifts",
    "generate_key_file",
    "is_valid_national_id",
    "load_key",
    "make_national_ids",
    "national_id",
    "protect",
    "protect_crosstab",
    "pseudonymize",
    "risk_report",
    "scan_outputs",
    "shift_dates",
]
