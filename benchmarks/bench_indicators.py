"""Benchmark of the indicators layer: all four Kvarus indicators per unit and year (target: ≤ 10 s at 1,000,000
courses, issue 8), plus the protected table, the network-work measures and coverage.

``stages(scale)`` returns ``(stage, rows, callable)`` tuples run in order by ``benchmarks/run.py``; run this file
directly (``python benchmarks/bench_indicators.py --scale 1000000``) for a stand-alone table.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable
from typing import Any


def stages(scale: int) -> list[tuple[str, int, Callable[[], None]]]:
    """The timed stages at ``scale`` courses (the synthetic registry is generated outside the timing).

    Each callable returns ``None`` (``benchmarks/run.py`` then reports the stage's declared rows)."""
    import kvarus_research as kr
    from kvarus_research.indicators import coverage, kvarus_indicators, network_work

    raw = kr.synthetic.generate(n_courses=scale, seed=2026)
    state: dict[str, Any] = {}

    def opt_outs() -> None:
        state["reg"] = raw.without_opt_outs()

    def four() -> None:
        state["res"] = kvarus_indicators(state["reg"])

    def protected() -> None:
        for res in state["res"].values():
            res.protected()

    def network() -> None:
        network_work(state["reg"])

    def cover() -> None:
        coverage(raw)

    n_regs = len(raw.registrations)
    return [
        ("registry.without_opt_outs (shared)", n_regs, opt_outs),
        ("indicators: all four, unit x year", n_regs, four),
        ("indicators: protected tables", scale, protected),
        ("network work measures", len(raw.network_work), network),
        ("coverage (dekningsgrad)", scale, cover),
    ]


def main() -> None:
    """Run the stages and print stage, rows, seconds, peak memory and rows/s."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=100_000)
    args = parser.parse_args()
    print(f"{'stage':<40} {'rows':>10} {'seconds':>8} {'peak MB':>8} {'rows/s':>12}")
    for name, rows, fn in stages(args.scale):
        tracemalloc.start()
        t = time.perf_counter()
        fn()
        sec = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        print(f"{name:<40} {rows:>10} {sec:>8.2f} {peak:>8.0f} {rows / sec:>12,.0f}")


if __name__ == "__main__":
    main()
