"""``kvarus-research report [EXTRACT] --out DIR [--cohort cohort.yaml] [--key-file KEY]``."""

from __future__ import annotations

import argparse
import time
from typing import Any


def add_report_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` sub-command."""
    p = subparsers.add_parser(
        "report",
        help="run the whole analysis flow and write an HTML report",
        description="Read and validate an extract (or generate the synthetic registry), then write one self-contained "
        "HTML report with every table protected by disclosure control, plus CSV tables and PNG/SVG figures.",
    )
    p.add_argument(
        "extract", nargs="?", default=None, help="MRS extract folder (default: the synthetic registry)"
    )
    p.add_argument("--out", default="report", help="output folder (default: report)")
    p.add_argument("--cohort", default=None, help="cohort definition (YAML)")
    p.add_argument("--key-file", default=None, help="project key for pseudonyms")
    p.add_argument("--seed", type=int, default=None, help="seed of the synthetic registry")
    p.add_argument("--courses", type=int, default=None, help="number of synthetic courses")
    p.add_argument("--rules", default="norway", choices=["norway", "opensafely"], help="disclosure preset")
    p.set_defaults(handler=run_report)
    return p


def run_report(args: argparse.Namespace) -> int:
    """Handler of ``kvarus-research report``."""
    from kvarus_research.report.build import DEFAULT_COURSES, DEFAULT_SEED, build_report

    start = time.perf_counter()
    path = build_report(
        args.extract,
        args.out,
        cohort=args.cohort,
        key_file=args.key_file,
        seed=DEFAULT_SEED if args.seed is None else args.seed,
        n_courses=DEFAULT_COURSES if args.courses is None else args.courses,
        rules=args.rules,
    )
    print(f"report written to {path} in {time.perf_counter() - start:.0f} s")
    return 0
