"""``kvarus-research validate DIR [--report FILE]``: read and validate an extract, print a readable summary.

Exit codes: 0 the extract is clean; 1 rows were rejected or warnings found; 2 the extract cannot be read at all
(the reason is printed). Everything printed and the ``--report`` CSV are redacted: identity numbers, GUIDs and
pseudonyms are shown as ``<id>``, ``<guid>``, ``<pseudonym>`` whatever column or file name they are in.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kvarus_research.errors import KvarusError
from kvarus_research.redact import error_text, redact


def add_validate_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``validate`` sub-command to the ``kvarus-research`` parser.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="kvarus-research")
    >>> _ = add_validate_command(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["validate", "extract", "--report", "findings.csv"])
    >>> args.folder, args.report, args.handler is run_validate
    ('extract', 'findings.csv', True)
    """
    p = subparsers.add_parser(
        "validate",
        help="read and validate an MRS extract folder",
        description="Read an MRS extract folder, validate every row against the codebook and the course model, "
        "and print a summary. Exit 0 when clean, 1 when rows were rejected or warnings found, 2 when the "
        "extract cannot be read.",
    )
    p.add_argument("folder", help="extract folder (or a parent folder of YYYY-MM-DD extract folders)")
    p.add_argument("--report", metavar="FILE", help="write every finding to this CSV file")
    p.add_argument(
        "--codebook", metavar="FILE", help="codebook (YAML or rapport.xlsx) instead of the folder's"
    )
    p.add_argument(
        "--extract-date",
        metavar="DATE",
        help="which dated extract folder to read: YYYY-MM-DD or DD.MM.YYYY (day first)",
    )
    p.add_argument(
        "--allow-cp1252", action="store_true", help="read files that are not UTF-8 as Windows-1252"
    )
    p.set_defaults(handler=run_validate)
    return p


def run_validate(args: argparse.Namespace) -> int:
    """Handler of ``kvarus-research validate``: returns the exit code (0 clean, 1 findings, 2 unreadable)."""
    from kvarus_research.codebook import load_codebook
    from kvarus_research.io.read import read_extract

    try:
        codebook = load_codebook(args.codebook) if getattr(args, "codebook", None) else None
        reg = read_extract(
            args.folder,
            codebook,
            extract_date=getattr(args, "extract_date", None),
            allow_cp1252=bool(getattr(args, "allow_cp1252", False)),
        )
    except (KvarusError, OSError) as exc:
        print(f"kvarus-research validate: the extract cannot be read: {error_text(exc)}", file=sys.stderr)
        return 2
    report = reg.validation
    print(redact(report.summary()))
    print(
        f"Registry: {len(reg.patients)} patients, {len(reg.courses)} courses, "
        f"{len(reg.registrations)} registrations, {len(reg.units)} units; extract date "
        f"{reg.extract_date:%d.%m.%Y}"
    )
    if getattr(args, "report", None):
        try:
            path = report.to_csv(Path(args.report))
        except OSError as exc:
            print(
                f"kvarus-research validate: the findings cannot be written: {error_text(exc)}",
                file=sys.stderr,
            )
            return 2
        print(redact(f"Findings written to {path}"))
    return 0 if report.is_clean else 1
