"""The ``kvarus-research`` command line: ``synth``, ``validate``, ``keygen``, ``pseudonymize`` and ``report``.

Each sub-command lives beside the code it drives (``synthetic/cli.py``, ``io/cli.py``, ``privacy/cli.py``,
``report/cli.py``); this module only assembles them, and prints every user error (a
:class:`~kvarus_research.errors.KvarusError` or an ``OSError``) as one redacted line, without a traceback. An
unexpected error (a bug) prints its traceback, redacted too: identity numbers, GUIDs, pseudonyms and the key never
reach the terminal.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from kvarus_research import __version__
from kvarus_research.errors import KvarusError
from kvarus_research.redact import error_text, redact

#: (module, function that adds the sub-command to the parser)
COMMANDS: tuple[tuple[str, str], ...] = (
    ("kvarus_research.synthetic.cli", "add_synth_command"),
    ("kvarus_research.io.cli", "add_validate_command"),
    ("kvarus_research.privacy.cli", "add_keygen_command"),
    ("kvarus_research.privacy.cli", "add_pseudonymize_command"),
    ("kvarus_research.indicators.export", "add_indicators_command"),
    ("kvarus_research.report.cli", "add_report_command"),
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are redacted and never echo stray arguments (one may be the key)."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            message = "unrecognized arguments (not shown, since one may be the key itself)"
        super().error(redact(message))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command.

    Examples
    --------
    >>> parser = build_parser()
    >>> sorted(parser._subparsers._group_actions[0].choices)
    ['indicators', 'keygen', 'pseudonymize', 'report', 'synth', 'validate']
    """
    parser = _Parser(
        prog="kvarus-research",
        description="Research workflows for Kvarus, the national quality register for TSB treatment.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"kvarus-research {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module, func in COMMANDS:
        getattr(importlib.import_module(module), func)(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Exit codes: 0 success, 1 the command found problems (e.g. rejected rows), 2 the input could not be used (the
    reason is printed as one redacted line), 3 an unexpected error (a bug: its traceback is printed, redacted).

    Examples
    --------
    >>> main(["pseudonymize", "extract", "--key-file", "not-a-file-maybe-the-key-itself", "--out", "o"])
    2
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--version"], ["-V"]):
        # answered before the sub-commands (and pandas, matplotlib ... behind them) are imported
        print(f"kvarus-research {__version__}")
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except (KvarusError, OSError) as exc:
        print(f"kvarus-research {args.command}: {error_text(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: the traceback helps, but its values are redacted like every message
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        print(redact(text), file=sys.stderr)
        print(
            f"kvarus-research {args.command}: unexpected error (a bug in kvarus_research: please report it)",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
