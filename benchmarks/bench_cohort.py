"""Benchmark of the cohort layer: a five-criterion cohort and timepoint alignment (target: ≤ 10 s at 1,000,000
courses, issue 5).

``stages(scale)`` returns ``(stage, rows, callable)`` tuples run in order by ``benchmarks/run.py``; run this file
directly (``python benchmarks/bench_cohort.py --scale 1000000``) for a stand-alone table.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from typing import Any


def stages(scale: int) -> list[tuple[str, int, Callable[[], Any]]]:
    """The timed stages at ``scale`` courses (the synthetic registry is generated outside the timing)."""
    import kvarus_research as kr
    from kvarus_research.cohort import align_timepoints

    reg = kr.synthetic.generate(n_courses=scale, seed=2026)
    state: dict[str, Any] = {}

    def build() -> None:
        state["cohort"] = (
            kr.Cohort(reg)
            .started_between("2021-01-01", None)
            .age_between(18, 70)
            .ended()
            .has_baseline()
            .main_substance(["Alcohol", "Cannabis", "Stimulants"])
        )

    def align_order() -> None:
        state["tp"] = align_timepoints(state["cohort"])

    def align_window() -> None:
        align_timepoints(state["cohort"], scheme="window")

    def course_table() -> None:
        state["cohort"].courses  # noqa: B018 - the property does the work

    def wide() -> None:
        state["tp"].wide  # noqa: B018

    n_regs = len(reg.registrations)
    return [
        ("cohort: opt-outs + 5 criteria", scale, build),
        ("align_timepoints (order)", n_regs, align_order),
        ("align_timepoints (window)", n_regs, align_window),
        ("cohort.courses (with baseline values)", scale, course_table),
        ("timepoints.wide", n_regs, wide),
    ]


def main() -> None:
    """Run the stages and print stage, rows, seconds, peak memory and rows/s."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=100_000)
    args = parser.parse_args()
    print(f"{'stage':<40} {'rows':>10} {'seconds':>8} {'peak RSS MB':>12} {'rows/s':>12}")
    for name, rows, fn in stages(args.scale):
        t = time.perf_counter()
        fn()
        sec = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak so far (Linux: KiB)
        print(f"{name:<40} {rows:>10} {sec:>8.2f} {peak:>12.0f} {rows / sec:>12,.0f}")


if __name__ == "__main__":
    main()
