"""Quality indicators (kvalitetsindikatorer), the network-work process indicator and patient progress.

An indicator is a per-row numerator flag and denominator flag over a stated unit of analysis (course or patient)
and a stated registration; :mod:`~kvarus_research.indicators.framework` aggregates it per unit (small units
pooled), region, nation and year with Wilson or exact confidence intervals. The four Kvarus indicators
(treatment plan, crisis plan, experienced benefit, ended by mutual agreement) live in
:mod:`~kvarus_research.indicators.kvarus`; coverage and completeness in
:mod:`~kvarus_research.indicators.coverage`.

Examples
--------
>>> import kvarus_research as kr
>>> res = kr.indicators.kvarus_indicators(kr.synthetic.generate(n_courses=300, seed=1))
>>> res["plan_beh"].definition.details["unit of analysis"]
'course'
"""

from kvarus_research.indicators.casemix import CaseMixResult, casemix_adjust
from kvarus_research.indicators.coverage import CoverageResult, completeness, coverage
from kvarus_research.indicators.framework import (
    Indicator,
    Target,
    aggregate,
    count_exclusions,
)
from kvarus_research.indicators.kvarus import (
    BENEFIT,
    CRISIS_PLAN,
    DEFAULT_TARGETS,
    KVARUS_INDICATORS,
    MUTUAL_AGREEMENT,
    TREATMENT_PLAN,
    feedback_indicator,
    first_measurement,
    first_measurement_flags,
    kvarus_indicators,
    load_targets,
    mutual_agreement_flags,
)
from kvarus_research.indicators.limits import (
    Funnel,
    Overdispersion,
    estimate_overdispersion,
    exact_limits,
    funnel_limits,
    funnel_table,
)
from kvarus_research.indicators.network import NetworkWorkResult, network_work
from kvarus_research.indicators.network_protection import protect_network_table
from kvarus_research.indicators.plots import funnel_plot, indicator_bars, p_chart
from kvarus_research.indicators.progress import ProgressResult, patient_progress
from kvarus_research.indicators.protection import protect_indicator_table
from kvarus_research.indicators.result import IndicatorResult
from kvarus_research.indicators.spc import anhoej_thresholds, run_rules, signal_table
from kvarus_research.stats import exact_ci, proportion_ci, wilson_ci  # noqa: E402  (re-exported)

__all__ = [
    "BENEFIT",
    "CRISIS_PLAN",
    "DEFAULT_TARGETS",
    "KVARUS_INDICATORS",
    "MUTUAL_AGREEMENT",
    "TREATMENT_PLAN",
    "CaseMixResult",
    "CoverageResult",
    "Funnel",
    "Indicator",
    "IndicatorResult",
    "NetworkWorkResult",
    "Overdispersion",
    "ProgressResult",
    "Target",
    "aggregate",
    "anhoej_thresholds",
    "casemix_adjust",
    "completeness",
    "count_exclusions",
    "coverage",
    "estimate_overdispersion",
    "exact_ci",
    "exact_limits",
    "feedback_indicator",
    "first_measurement",
    "first_measurement_flags",
    "funnel_limits",
    "funnel_plot",
    "funnel_table",
    "indicator_bars",
    "kvarus_indicators",
    "load_targets",
    "mutual_agreement_flags",
    "network_work",
    "p_chart",
    "patient_progress",
    "protect_indicator_table",
    "protect_network_table",
    "proportion_ci",
    "run_rules",
    "signal_table",
    "wilson_ci",
]
