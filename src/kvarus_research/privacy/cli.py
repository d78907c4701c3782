"""``kvarus-research keygen --out KEY`` and ``kvarus-research pseudonymize DIR --key-file KEY --out OUT``.

``keygen`` writes a new random project key (64 hexadecimal characters) to a new file readable by its owner only.
``pseudonymize`` reads the extract with :func:`kvarus_research.read_extract`, replaces every identifier
(:func:`~kvarus_research.privacy.pseudonym.pseudonymize`), writes the result with
:func:`kvarus_research.synthetic.write_extract`, writes ``pseudonymization_report.txt`` (counts only) beside it, and
scans the output folder for identity numbers and original ids before declaring success.

Both print user errors as one redacted line and exit with 2; the key and the ``--key-file`` value (which may be the
key itself) are never printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kvarus_research.errors import KvarusError, PrivacyError
from kvarus_research.privacy.keys import ENV_VAR, STRICT_ENV_VAR, generate_key_file, load_key
from kvarus_research.privacy.pseudonym import pseudonymize
from kvarus_research.privacy.scan import scan_outputs
from kvarus_research.redact import error_text, redact

REPORT_NAME = "pseudonymization_report.txt"


def add_keygen_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``keygen`` sub-command to the ``kvarus-research`` parser.

    Examples
    --------
    >>> parser = argparse.ArgumentParser(prog="kvarus-research")
    >>> _ = add_keygen_command(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["keygen", "--out", "project.key"]).out
    'project.key'
    """
    p = subparsers.add_parser(
        "keygen",
        help="write a new random project key for pseudonyms (a new file, readable by you only)",
        description="Write a new random project key (256 bits, 64 hexadecimal characters) to a new file with "
        "mode 0600. Keep it on the secure platform, outside the project folder; the same key gives the same "
        "pseudonyms in every delivery. An existing file is never overwritten.",
    )
    p.add_argument("--out", required=True, help="the key file to create (must not exist)")
    p.set_defaults(handler=run_keygen)
    return p


def run_keygen(args: argparse.Namespace) -> int:
    """Handler of ``kvarus-research keygen``: 0 when the key file was written, 2 when it could not be.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "project.key"
    >>> run_keygen(argparse.Namespace(out=str(out)))  # doctest: +ELLIPSIS
    wrote a new project key to .../project.key (mode 0600); use it with --key-file
    0
    >>> run_keygen(argparse.Namespace(out=str(out)))
    2
    """
    try:
        path = generate_key_file(args.out)
    except (KvarusError, OSError) as exc:
        print(f"kvarus-research keygen: {error_text(exc)}", file=sys.stderr)
        return 2
    print(redact(f"wrote a new project key to {path} (mode 0600); use it with --key-file"))
    return 0


def add_pseudonymize_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``pseudonymize`` sub-command to the ``kvarus-research`` parser.

    Examples
    --------
    >>> parser = argparse.ArgumentParser(prog="kvarus-research")
    >>> _ = add_pseudonymize_command(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["pseudonymize", "in", "--key-file", "k", "--out", "o"])
    >>> args.directory, args.key_file, args.out, args.linkage_file, args.strict_key
    ('in', 'k', 'o', None, False)
    """
    p = subparsers.add_parser(
        "pseudonymize",
        help="replace every identifier of an extract by a keyed pseudonym",
        description="Replace every identifier of an MRS extract by a keyed pseudonym (HMAC-SHA-256 with the "
        "project key), write the pseudonymised extract in the same format with a count report, and scan it for "
        "identity numbers and original ids. Create the key first: kvarus-research keygen --out project.key",
    )
    p.add_argument("directory", help="the MRS extract folder to read")
    p.add_argument(
        "--key-file",
        help=f"file holding the project key, written by `kvarus-research keygen` (default: environment "
        f"variable {ENV_VAR})",
    )
    p.add_argument("--out", required=True, help="folder for the pseudonymised extract (must be new or empty)")
    p.add_argument(
        "--linkage-file",
        help="write the linkage key (koblingsnøkkel: original id -> pseudonym) here; never inside --out",
    )
    p.add_argument(
        "--strict-key",
        action="store_true",
        help=f"refuse a key file readable by group or others instead of warning (also: {STRICT_ENV_VAR}=1)",
    )
    p.set_defaults(handler=run_pseudonymize)
    return p


def run_pseudonymize(args: argparse.Namespace) -> int:
    """Handler of ``kvarus-research pseudonymize``: 0 done, 1 the leak scan found something, 2 a user error.

    Examples
    --------
    >>> ns = argparse.Namespace(directory="x", key_file="this-is-not-a-file-but-could-be-a-key", out="o",
    ...                         linkage_file=None, strict_key=False)
    >>> run_pseudonymize(ns)
    2
    """
    try:
        return _pseudonymize(args)
    except (KvarusError, OSError) as exc:
        print(f"kvarus-research pseudonymize: {error_text(exc)}", file=sys.stderr)
        return 2


def _pseudonymize(args: argparse.Namespace) -> int:
    from kvarus_research import read_extract
    from kvarus_research.synthetic import write_extract

    key = load_key(args.key_file, strict=True if getattr(args, "strict_key", False) else None)
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
    print(redact(report.to_text()))
    print(redact(f"pseudonymised extract: {written}"))
    if len(findings):
        print(f"LEAK SCAN: {len(findings)} finding(s) in the output (file, line, kind):")
        print(redact(findings.to_string(index=False)))
        return 1
    print("leak scan: no identity number or original id found in the output")
    return 0
