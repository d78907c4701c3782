"""``kvarus-research pseudonymize DIR --key-file KEY --out OUT``: a pseudonymised extract in the same format.

Reads the extract with :func:`kvarus_research.read_extract`, replaces every identifier
(:func:`~kvarus_research.privacy.pseudonym.pseudonymize`), writes the result with
:func:`kvarus_research.synthetic.write_extract`, writes ``pseudonymization_report.txt`` (counts only) beside it, and
scans the output folder for identity numbers and original ids before declaring success.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kvarus_research.errors import PrivacyError
from kvarus_research.privacy.keys import ENV_VAR, load_key
from kvarus_research.privacy.pseudonym import pseudonymize
from kvarus_research.privacy.scan import scan_outputs

REPORT_NAME = "pseudonymization_report.txt"


def add_pseudonymize_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``pseudonymize`` sub-command to the ``kvarus-research`` parser.

    Examples
    --------
    >>> parser = argparse.ArgumentParser(prog="kvarus-research")
    >>> _ = add_pseudonymize_command(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["pseudonymize", "in", "--key-file", "k", "--out", "o"])
    >>> args.directory, args.key_file, args.out, args.linkage_file
    ('in', 'k', 'o', None)
    """
    p = subparsers.add_parser(
        "pseudonymize",
        help="replace every identifier of an extract by a keyed pseudonym",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("directory", help="the MRS extract folder to read")
    p.add_argument(
        "--key-file", help=f"file holding the project key (default: environment variable {ENV_VAR})"
    )
    p.add_argument("--out", required=True, help="folder for the pseudonymised extract (must be new or empty)")
    p.add_argument(
        "--linkage-file",
        help="write the linkage key (koblingsnøkkel: original id -> pseudonym) here; never inside --out",
    )
    p.set_defaults(handler=run_pseudonymize)
    return p


def run_pseudonymize(args: argparse.Namespace) -> int:
    """Handler of ``kvarus-research pseudonymize``; returns the exit code (1 when the leak scan finds anything)."""
    from kvarus_research import read_extract
    from kvarus_research.synthetic import write_extract

    key = load_key(args.key_file)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise PrivacyError(f"output folder {out} is not empty; name a new folder")
    registry = read_extract(args.directory)
    originals = set(registry.patients["patient_id"].dropna().astype(str))
    if "course_id" in registry.courses.columns:
        originals |= {c for c in registry.courses["course_id"].dropna().astype(str) if len(c) >= 8}
    pseudo, report = pseudonymize(registry, key, linkage_path=args.linkage_file, output_dir=out)
    written = write_extract(pseudo, out)
    (out / REPORT_NAME).write_text(report.to_text() + "\n", encoding="utf-8")
    findings = scan_outputs(out, identifiers=originals)
    print(report.to_text())
    print(f"pseudonymised extract: {written}")
    if len(findings):
        print(f"LEAK SCAN: {len(findings)} finding(s) in the output (file, line, kind):")
        print(findings.to_string(index=False))
        return 1
    print("leak scan: no identity number or original id found in the output")
    return 0
