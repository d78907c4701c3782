"""Benchmark of disclosure control over one release (issue 13): the indicators, exclusions, completeness, coverage
and network work of a synthetic registry protected as one system, against each table protected on its own.

For each registry size the table gives the seconds to compute the results, the seconds to protect them alone and
as one release (CPU and wall, median of ``--repeat`` runs), and the hidden counts: alone, in the release, and
the extra cells the release hides (the price of protecting what files published together give away).

Run: ``python benchmarks/bench_release.py --courses 400 20000 1000000``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, float, float]:
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return out, statistics.median(cpus), statistics.median(walls)


def _hidden(p: Any) -> int:
    return int(p.suppressed.to_numpy(dtype=bool).sum()) if len(p.suppressed.columns) else 0


def measure(n_courses: int, seed: int = 1, repeat: int = 1) -> dict[str, Any]:
    """One row of the table: times and hidden counts for a synthetic registry of ``n_courses``."""
    import kvarus_research as kr
    from kvarus_research.indicators.coverage import completeness, coverage
    from kvarus_research.indicators.export import release_of_indicators
    from kvarus_research.indicators.framework import as_registry
    from kvarus_research.indicators.kvarus import kvarus_indicators
    from kvarus_research.indicators.network import network_work
    from kvarus_research.privacy import protect

    registry = kr.synthetic.generate(n_courses=n_courses, seed=seed)
    t = time.perf_counter()
    reg = as_registry(registry)
    results = kvarus_indicators(reg)
    complete = {f"completeness_{k}": v for k, v in completeness(reg).items()}
    nw = network_work(reg) if reg.network_work is not None and len(reg.network_work) else None
    cov = coverage(registry) if registry.coverage is not None and len(registry.coverage) else None
    compute = time.perf_counter() - t

    def alone() -> dict[str, Any]:
        out = {k: r.protected("norway") for k, r in [*results.items(), *complete.items()]}
        out.update({f"{k}_exclusions": protect(r.exclusions, counts="n") for k, r in results.items()})
        if nw is not None:
            out["network_work"] = nw.protected("norway")
        if cov is not None:
            out["coverage"] = cov.protected("norway")
        return out

    def together() -> dict[str, Any]:
        return release_of_indicators(results, complete, nw, "norway", coverage=cov, units=reg.units).protect()

    a, a_cpu, a_wall = _timed(alone, repeat)
    r, r_cpu, r_wall = _timed(together, repeat)
    cells = sum(len(p.suppressed) * len(p.suppressed.columns) for p in r.values())
    return {
        "courses": n_courses,
        "tables": len(r),
        "count cells": cells,
        "compute s": round(compute, 1),
        "alone cpu s": round(a_cpu, 1),
        "alone wall s": round(a_wall, 1),
        "release cpu s": round(r_cpu, 1),
        "release wall s": round(r_wall, 1),
        "hidden alone": sum(_hidden(p) for p in a.values()),
        "hidden in release": sum(_hidden(p) for p in r.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--courses", type=int, nargs="+", default=[400, 20_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="runs per timing (median)")
    args = parser.parse_args()
    rows = []
    for n in args.courses:
        row = measure(n, args.seed, args.repeat)
        rows.append(row)
        print(row, flush=True)
    import pandas as pd

    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
