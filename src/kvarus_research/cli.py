"""The ``kvarus-research`` command line: ``synth``, ``validate``, ``pseudonymize`` and ``report``.

Each sub-command lives beside the code it drives (``synthetic/cli.py``, ``io/cli.py``, ``privacy/cli.py``,
``report/cli.py``); this module only assembles them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from kvarus_research import __version__
from kvarus_research.errors import KvarusError

#: (module, function that adds the sub-command to the parser)
COMMANDS: tuple[tuple[str, str], ...] = (
    ("kvarus_research.synthetic.cli", "add_synth_command"),
    ("kvarus_research.io.cli", "add_validate_command"),
    ("kvarus_research.privacy.cli", "add_pseudonymize_command"),
    ("kvarus_research.indicators.export", "add_indicators_command"),
    ("kvarus_research.report.cli", "add_report_command"),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command.

    Examples
    --------
    >>> parser = build_parser()
    >>> sorted(parser._subparsers._group_actions[0].choices)
    ['indicators', 'pseudonymize', 'report', 'synth', 'validate']
    """
    parser = argparse.ArgumentParser(
        prog="kvarus-research",
        description="Research workflows for Kvarus, the national quality register for TSB treatment.",
    )
    parser.add_argument("--version", action="version", version=f"kvarus-research {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module, func in COMMANDS:
        getattr(importlib.import_module(module), func)(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Exit codes: 0 success, 1 the command found problems (e.g. rejected rows), 2 the input could not be used.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KvarusError as exc:
        print(f"kvarus-research {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
