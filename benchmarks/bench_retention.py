"""Benchmark of the retention layer: cumulative incidence by unit and a cause-specific Cox model
(target: ≤ 30 s together at 1,000,000 courses, issue 7).

``stages(scale)`` returns ``(stage, rows, callable)`` tuples run in order by ``benchmarks/run.py``; run this file
directly (``python benchmarks/bench_retention.py --scale 1000000``) for a stand-alone table.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any


def stages(scale: int) -> list[tuple[str, int, Callable[[], Any]]]:
    """The timed stages at ``scale`` courses (the synthetic registry is generated outside the timing)."""
    import kvarus_research as kr
    from kvarus_research.retention import cox, cumulative_incidence, kaplan_meier, time_to_event

    reg = kr.synthetic.generate(n_courses=scale, seed=2026)
    state: dict[str, Any] = {}

    def table() -> None:
        state["tte"] = time_to_event(reg)

    def cif_by_unit() -> None:
        state["cif"] = cumulative_incidence(state["tte"], by="unit_name")

    def km_by_setting() -> None:
        kaplan_meier(state["tte"], by="setting")

    def cox_dropout() -> None:
        cox(
            state["tte"],
            covariates=["latent_severity", "age_at_start", "setting"],
            scale={"age_at_start": 10},
            reference={"setting": "outpatient"},
            ph_test=False,
        )

    def cox_with_ph() -> None:
        cox(
            state["tte"],
            covariates=["latent_severity", "age_at_start", "setting"],
            scale={"age_at_start": 10},
            reference={"setting": "outpatient"},
        )

    return [
        ("retention: time_to_event (registry)", scale, table),
        ("cumulative_incidence by unit (+ log-rank)", scale, cif_by_unit),
        ("kaplan_meier by setting (+ log-rank)", scale, km_by_setting),
        ("cox dropout, 3 covariates", scale, cox_dropout),
        ("cox dropout + Schoenfeld PH test", scale, cox_with_ph),
    ]


def main() -> None:
    """Run the stages and print stage, rows, seconds, peak memory and rows/s."""
    import tracemalloc

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument(
        "--no-memory", action="store_true", help="skip tracemalloc (it slows numpy-heavy code)"
    )
    args = parser.parse_args()
    print(f"{'stage':<44} {'rows':>10} {'seconds':>8} {'peak MB':>8} {'rows/s':>12}")
    for name, rows, fn in stages(args.scale):
        if not args.no_memory:
            tracemalloc.start()
        t = time.perf_counter()
        fn()
        sec = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1] / 1e6 if not args.no_memory else float("nan")
        if not args.no_memory:
            tracemalloc.stop()
        print(f"{name:<44} {rows:>10} {sec:>8.2f} {peak:>8.0f} {rows / sec:>12,.0f}")


if __name__ == "__main__":
    main()
