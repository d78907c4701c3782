"""Run the benchmarks: ``python benchmarks/run.py --scale N [--only NAME]``.

Every ``benchmarks/bench_*.py`` module exposes ``stages(scale) -> list[Stage]``. Each module runs in its own
subprocess (so one module's memory does not count against another's); its stages run in order and may share
set-up through closures. For each stage the table gives the rows it handled, wall-clock seconds, the peak
resident memory (RSS high-water mark) during the stage, and rows per second.

Peak memory: on Linux the high-water mark is reset before each stage (``/proc/self/clear_refs``) and read from
``VmHWM`` in ``/proc/self/status``; elsewhere it is ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the peak of the
whole subprocess so far (marked ``*``).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Stage:
    """One timed step. ``run()`` may return the number of rows it handled (overriding ``rows``).

    A module may also return plain ``(name, rows, callable)`` tuples.
    """

    name: str
    rows: int
    run: Callable[[], int | None]


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mb(reset_ok: bool) -> float:
    if reset_ok:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 1024 / 1024


def run_module(name: str, scale: int) -> list[dict]:
    """Run one module's stages in this process; one result dict per stage."""
    sys.path.insert(0, str(HERE))
    module = importlib.import_module(name)
    out = []
    for stage in module.stages(scale):
        if isinstance(stage, tuple):  # (name, rows, callable) is accepted too
            stage = Stage(*stage)
        gc.collect()
        reset_ok = _reset_peak()
        t0 = time.perf_counter()
        rows = stage.run()
        seconds = time.perf_counter() - t0
        rows = stage.rows if rows is None else int(rows)
        out.append(
            {
                "module": name,
                "stage": stage.name,
                "rows": rows,
                "seconds": seconds,
                "peak_mb": _peak_mb(reset_ok),
                "whole_process": not reset_ok,
            }
        )
    return out


def format_table(results: list[dict]) -> str:
    """The results as a fixed-width text table.

    Examples
    --------
    >>> print(format_table([{"module": "bench_x", "stage": "load", "rows": 1000, "seconds": 0.5,
    ...                      "peak_mb": 12.0, "whole_process": False}]))
    stage                           rows    seconds    peak MB        rows/s
    bench_x.load                   1,000       0.50      12.0          2,000
    """
    width = max([24] + [len(r["module"] + r["stage"]) + 2 for r in results])
    lines = [f"{'stage':<{width}}{'rows':>12}{'seconds':>11}{'peak MB':>11}{'rows/s':>14}"]
    for r in results:
        rate = r["rows"] / r["seconds"] if r["seconds"] > 0 else float("inf")
        mark = "*" if r["whole_process"] else ""
        lines.append(
            f"{r['module'] + '.' + r['stage']:<{width}}{r['rows']:>12,}{r['seconds']:>11.2f}"
            f"{r['peak_mb']:>10.1f}{mark or ' '}{rate:>14,.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=100_000, help="problem size (e.g. number of courses)")
    parser.add_argument("--only", help="run only bench_<ONLY>.py (name with or without the bench_ prefix)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_module(args.child, args.scale)))
        return 0
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if args.only:
        want = args.only if args.only.startswith("bench_") else f"bench_{args.only}"
        names = [n for n in names if n == want]
        if not names:
            print(f"no benchmark module {want}.py in {HERE}", file=sys.stderr)
            return 2
    results: list[dict] = []
    failed = []
    for name in names:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", name, "--scale", str(args.scale)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            failed.append(name)
            print(f"{name} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        results.extend(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"scale {args.scale:,}")
    print(format_table(results))
    if any(r["whole_process"] for r in results):
        print("* peak of the whole benchmark process so far (per-stage reset not available here)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
