"""``kvarus-research report [EXTRACT] --out DIR [--cohort cohort.yaml] [--key-file KEY]``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

#: Defaults of the synthetic registry; equal to report.build.DEFAULT_SEED and DEFAULT_COURSES (a test checks),
#: repeated here so that ``--help`` need not import the report builder.
SYNTHETIC_SEED = 2026
SYNTHETIC_COURSES = 20_000


def add_report_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` sub-command."""
    p = subparsers.add_parser(
        "report",
        help="run the whole analysis flow and write an HTML report",
        description="Read and validate an extract (or generate the synthetic registry), then write one self-contained "
        "HTML report with every table protected by disclosure control, plus CSV tables and PNG/SVG figures.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    # defaults of None are spelt out in the help text; the formatter adds "(default: ...)" to the others
    p.add_argument(
        "extract",
        nargs="?",
        default=argparse.SUPPRESS,
        help="MRS extract folder (default: the synthetic registry)",
    )
    p.add_argument("--out", default="report", help="output folder")
    p.add_argument(
        "--cohort",
        default=argparse.SUPPRESS,
        help="cohort definition (YAML) (default: every course with a baseline)",
    )
    p.add_argument(
        "--key-file", default=argparse.SUPPRESS, help="project key for pseudonyms (default: no pseudonyms)"
    )
    p.add_argument("--seed", type=int, default=SYNTHETIC_SEED, help="seed of the synthetic registry")
    p.add_argument("--courses", type=int, default=SYNTHETIC_COURSES, help="number of synthetic courses")
    p.add_argument("--rules", default="norway", choices=["norway", "opensafely"], help="disclosure preset")
    p.set_defaults(handler=run_report)
    return p


def check_report_args(args: argparse.Namespace) -> None:
    """Check the paths given to ``report`` before the extract is read (which takes minutes on a full extract).

    Raises
    ------
    CohortError
        ``--cohort`` names no readable file.
    ExtractError
        The extract folder does not exist or is not a folder.

    Examples
    --------
    >>> check_report_args(argparse.Namespace(extract=None, cohort="no-such-cohort.yaml"))
    Traceback (most recent call last):
    ...
    kvarus_research.errors.CohortError: --cohort no-such-cohort.yaml: no such file
    """
    from kvarus_research.errors import CohortError, ExtractError

    cohort = getattr(args, "cohort", None)
    if cohort is not None and not Path(cohort).is_file():
        what = "is a folder, not a YAML file" if Path(cohort).is_dir() else "no such file"
        raise CohortError(f"--cohort {cohort}: {what}")
    extract = getattr(args, "extract", None)
    if extract is not None and not Path(extract).is_dir():
        what = "is a file, not an extract folder" if Path(extract).exists() else "no such folder"
        raise ExtractError(f"extract {extract}: {what}")


def run_report(args: argparse.Namespace) -> int:
    """Handler of ``kvarus-research report``: checks the arguments first, then builds the report."""
    check_report_args(args)
    from kvarus_research.report.build import build_report

    start = time.perf_counter()
    path = build_report(
        getattr(args, "extract", None),
        args.out,
        cohort=getattr(args, "cohort", None),
        key_file=getattr(args, "key_file", None),
        seed=args.seed,
        n_courses=args.courses,
        rules=args.rules,
    )
    print(f"report written to {path} in {time.perf_counter() - start:.0f} s")
    return 0
