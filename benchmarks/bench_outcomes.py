"""Benchmark of the outcome analyses (issue 6).

Targets: change + reliable change for the five continuous outcomes on a 200,000-course cohort in ≤ 10 s
(``python benchmarks/run.py --scale 200000 --only bench_outcomes``), and a linear mixed model (random intercept)
on 50,000 courses × 4 timepoints in ≤ 60 s (the MixedLM stage uses ``min(scale, 50,000)`` courses).
Generating the registry and aligning timepoints are set-up, timed separately.
"""

from __future__ import annotations

from typing import Any

from run import Stage

import kvarus_research as kr
from kvarus_research.cohort import align_timepoints
from kvarus_research.outcomes import attrition, change, longitudinal, reliable_change

TIMEPOINTS = ["baseline", "MP1", "ending", "followup"]


def stages(scale: int) -> list[Stage]:
    """Set-up, then change + RCI (target), change alone, RCI alone, MixedLM (target), GEE and attrition."""
    state: dict[str, Any] = {}

    def setup() -> int:
        state["reg"] = reg = kr.synthetic.generate(n_courses=scale, seed=2026)
        state["tp"] = align_timepoints(reg, baseline="registration")
        state["outcomes"] = sorted(reg.codebook.outcomes())
        return scale

    def change_rci() -> int:
        change(state["tp"], state["outcomes"], end="ending", responder={"percent": 50})
        reliable_change(state["tp"], state["outcomes"], end="ending")
        return scale

    def change_only() -> int:
        change(state["tp"], state["outcomes"], end="followup")
        return scale

    def rci_only() -> int:
        reliable_change(state["tp"], state["outcomes"], end="followup")
        return scale

    def subset() -> int:
        long = state["tp"].long
        ids = long["course_id"].drop_duplicates().iloc[: min(scale, 50_000)]
        state["sub"] = long[long["course_id"].isin(ids) & long["timepoint"].isin(TIMEPOINTS)]
        return len(state["sub"])

    def mixed() -> int:
        longitudinal(state["sub"], "dager_rus_30", timepoints=TIMEPOINTS, covariates=["hovedrusmiddel"])
        return len(state["sub"])

    def gee() -> int:
        longitudinal(state["sub"], "dager_rus_30", timepoints=TIMEPOINTS, method="gee")
        return len(state["sub"])

    def attrition_ipw_mi() -> int:
        res = attrition(state["tp"], "dager_rus_30", covariates=["dager_rus_30@ending", "ending_type"],
                        courses=state["reg"].courses, n_imputations=10)  # fmt: skip
        return int(res.flow["due"])

    return [
        Stage("generate + align (set-up)", scale, setup),
        Stage("change + RCI, 5 outcomes (target <= 10 s at 200k)", scale, change_rci),
        Stage("change, 5 outcomes, baseline -> followup", scale, change_only),
        Stage("RCI, 5 outcomes, baseline -> followup", scale, rci_only),
        Stage("select <= 50k courses x 4 timepoints", 0, subset),
        Stage("MixedLM random intercept (target <= 60 s at 50k)", 0, mixed),
        Stage("GEE exchangeable", 0, gee),
        Stage("attrition: CC + IPW + MI (m = 10)", 0, attrition_ipw_mi),
    ]
