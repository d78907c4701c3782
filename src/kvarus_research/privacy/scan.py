"""Leak scan: look through an output folder for identity numbers and known identifiers before anything leaves.

Every file is read as text (UTF-8, undecodable bytes ignored; ``.xlsx`` and ``.parquet`` are opened with pandas).
A finding is any 11-digit sequence (also written ``DDMMYY NNNNN``), not part of a longer word, that validates as a national identity number of
any kind, or any token equal to a value of the given identifier list. Findings give the file, the line and the
kind, never the value itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from kvarus_research.privacy.national_id import national_id

FINDING_COLUMNS = ["file", "line", "position", "kind"]
#: 11 digits (or DDMMYY NNNNN) not inside a longer word: a hex pseudonym such as ``P1234567890123abc`` is no hit.
_ELEVEN = re.compile(r"(?<![0-9A-Za-z])(\d{6})[ -]?(\d{5})(?![0-9A-Za-z])")
_TOKEN = re.compile(r"[^\s,;|\t\"'<>=()\[\]{}:]+")


def _lines(path: Path) -> Iterable[str]:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        for sheet in pd.read_excel(path, sheet_name=None, header=None, dtype=str).values():
            yield from sheet.fillna("").astype(str).agg(",".join, axis=1)
    elif suffix == ".parquet":
        yield from pd.read_parquet(path).astype(str).agg(",".join, axis=1)
    else:
        with path.open("r", encoding="utf-8", errors="ignore") as fh:
            yield from fh


def scan_outputs(folder: str | Path, identifiers: Iterable[object] | None = None) -> pd.DataFrame:
    """Find identity numbers and known identifiers in every file under ``folder``.

    Parameters
    ----------
    folder : path
        The output folder (searched recursively).
    identifiers : iterable, optional
        Values that must not appear (original patient ids, GUIDs ...); compared as whole tokens.

    Returns
    -------
    DataFrame
        ``file`` (relative to ``folder``), ``line`` (1-based), ``position`` (1-based character), ``kind``
        (``national_id:<kind>`` or ``identifier``). Empty when nothing was found.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "t.csv").write_text("id,n\\n01018012371,4\\nabc-1,5\\n12345678901,6\\n")
    >>> scan_outputs(d, identifiers=["abc-1"]).values.tolist()
    [['t.csv', 2, 1, 'national_id:fnr'], ['t.csv', 3, 1, 'identifier']]
    """
    root = Path(folder)
    known = {str(v) for v in identifiers} if identifiers is not None else set()
    candidates: list[tuple[str, int, int, str]] = []
    findings: list[tuple[str, int, int, str]] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        for lineno, line in enumerate(_lines(path), start=1):
            for m in _ELEVEN.finditer(line):
                candidates.append((rel, lineno, m.start() + 1, m.group(1) + m.group(2)))
            if known:
                for m in _TOKEN.finditer(line):
                    if m.group(0) in known:
                        findings.append((rel, lineno, m.start() + 1, "identifier"))
    if candidates:
        parsed = national_id(pd.Series([c[3] for c in candidates], dtype=object))
        for (rel, lineno, pos, _), ok, kind in zip(candidates, parsed["valid"], parsed["kind"]):
            if ok:
                findings.append((rel, lineno, pos, f"national_id:{kind}"))
    out = pd.DataFrame(findings, columns=FINDING_COLUMNS)
    return out.sort_values(["file", "line", "position"], ignore_index=True)
