"""``kvarus-research synth``: generate a synthetic registry and write it as an MRS extract folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any


def add_synth_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``synth --courses N --seed S --out DIR [--raw]`` to the ``kvarus-research`` parser.

    Examples
    --------
    >>> parser = argparse.ArgumentParser(prog="kvarus-research")
    >>> _ = add_synth_command(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["synth", "--courses", "10", "--out", "x"])
    >>> args.courses, args.seed, args.raw
    (10, 0, False)
    """
    p = subparsers.add_parser(
        "synth",
        help="generate a synthetic Kvarus registry and write an MRS-format extract folder",
        description="Generate a synthetic Kvarus registry (deterministic per seed) and write it as an MRS extract "
        "folder: DataDump_Prod_<form>_<date>_<time>.csv per form, rapport.xlsx, enheter.csv, dekningsgrad.csv.",
    )
    p.add_argument("--courses", type=int, default=5000, help="number of treatment courses (default 5000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--out", type=Path, required=True, help="parent folder; the extract goes to OUT/<extract date>/"
    )
    p.add_argument(
        "--raw",
        action="store_true",
        help="add synthetic national identity numbers (Tenor test range) for pseudonymisation tests",
    )
    p.add_argument("--extract-date", default="2026-06-30", help="extract date (default 2026-06-30)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(handler=run_synth)
    return p


def run_synth(args: argparse.Namespace) -> int:
    """Handler of ``synth``: generate, write, print where and how many.

    Examples
    --------
    >>> import argparse, tempfile
    >>> run_synth(argparse.Namespace(courses=20, seed=1, out=tempfile.mkdtemp(), raw=False,
    ...                              extract_date="2026-06-30", quiet=True))
    0
    """
    from kvarus_research.errors import KvarusError
    from kvarus_research.synthetic.generate import generate
    from kvarus_research.synthetic.writer import write_extract

    if args.courses < 1:
        raise KvarusError(f"--courses must be at least 1, got {args.courses}")
    t0 = time.perf_counter()
    reg = generate(args.courses, seed=args.seed, extract_date=args.extract_date, progress=not args.quiet)
    folder = write_extract(reg, args.out, raw=args.raw, progress=not args.quiet)
    if not args.quiet:
        n_out = len(reg.reserved_patients())
        print(
            f"wrote {folder}: {reg.n_courses} courses, {len(reg.registrations)} registrations "
            f"({n_out} opted-out patients left out of the files) in {time.perf_counter() - t0:.1f} s"
        )
    return 0
