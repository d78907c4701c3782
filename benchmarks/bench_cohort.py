"""Benchmark of the cohort layer: a five-criterion cohort plus timepoint alignment (target: ≤ 10 s at 1,000,000
courses, issue 5).

Run with ``python benchmarks/run.py --scale 1000000`` (or ``make benchmark SCALE=1000000``). The synthetic registry
is generated in the first stage (set-up, not part of the target); the stage ``cohort + align (target)`` is the
figure the target refers to, and the stages after it break it down and time the other outputs.
"""

from __future__ import annotations

from typing import Any

from run import Stage

import kvarus_research as kr
from kvarus_research.cohort import align_timepoints


def _five_criteria(reg: Any) -> kr.Cohort:
    return (
        kr.Cohort(reg)
        .started_between("2021-01-01", None)
        .age_between(18, 70)
        .ended()
        .has_baseline()
        .main_substance(["Alcohol", "Cannabis", "Stimulants"])
    )


def stages(scale: int) -> list[Stage]:
    """Set-up, the target (cohort + alignment), then cohort, alignment (order, window), courses and wide."""
    state: dict[str, Any] = {}

    def generate() -> int:
        state["reg"] = kr.synthetic.generate(n_courses=scale, seed=2026)
        return scale

    def target() -> int:
        align_timepoints(_five_criteria(state["reg"]))
        return len(state["reg"].courses)

    def build() -> int:
        state["cohort"] = _five_criteria(state["reg"])
        return len(state["reg"].courses)

    def align_order() -> int:
        state["tp"] = align_timepoints(state["cohort"])
        return int(state["tp"].note("registrations"))

    def align_window() -> int:
        return int(align_timepoints(state["cohort"], scheme="window").note("registrations"))

    def course_table() -> int:
        return len(state["cohort"].courses)

    def wide() -> int:
        return len(state["tp"].wide)

    return [
        Stage("generate (set-up)", scale, generate),
        Stage("cohort + align (target)", scale, target),
        Stage("cohort: opt-outs + 5 criteria", scale, build),
        Stage("align_timepoints (order)", scale, align_order),
        Stage("align_timepoints (window)", scale, align_window),
        Stage("cohort.courses", scale, course_table),
        Stage("timepoints.wide", scale, wide),
    ]
