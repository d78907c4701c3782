"""The validation report: every finding about an extract, and the row accounting of every file.

A *finding* says what is wrong where: the file, the row number as in the file (header = line 1, first data row
= line 2; empty for findings about a whole file or column), the column, the value (never the value of an
identifier column: ``"<id>"`` is shown instead), the rule broken, the severity and a readable message. Every text
of a finding (file, column, value, message) passes through :func:`kvarus_research.redact.redact`, whatever the
column: an identity number, GUID or pseudonym that landed in another column (a shifted row, a mistyped value, a
dump without its header, a file name) is shown as ``<id>``, ``<guid>`` or ``<pseudonym>``.

Severity ``error`` means the row was rejected (it is not in the registry); ``warning`` means the row was kept
(an invalid data value is set to missing, and the finding says so). For every file the report keeps the rows
read, accepted and rejected, and checks ``read == accepted + rejected``: no row is lost without a reason. It
also accounts for every physical line of every file (:attr:`ValidationReport.lines`): lines = header + blank
lines + lines a row continues on (a quoted line break) + rows read, so no line can vanish into a damaged row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kvarus_research.errors import ExtractError
from kvarus_research.redact import redact

FINDING_COLUMNS: list[str] = ["file", "row", "column", "value", "rule", "severity", "message"]
ROW_COLUMNS: list[str] = ["file", "form", "read", "accepted", "rejected"]
#: Physical-line accounting per file: lines = header + blank + continued (a row's quoted line break) + rows read.
LINE_COLUMNS: list[str] = ["file", "lines", "header", "blank", "continued", "rows"]
ID_PLACEHOLDER = "<id>"
SEVERITIES = ("error", "warning")
#: Columns of a finding that are redacted (whatever a file put in them).
TEXT_COLUMNS: tuple[str, ...] = ("file", "column", "value", "message")


def _redacted(column: pd.Series) -> pd.Series:
    """``column`` with every text value redacted (each distinct value once); missing values stay missing."""
    if not len(column):
        return column
    uniques = column.dropna().unique()
    mapping = {u: redact(str(u)) for u in uniques}
    if all(k == v for k, v in mapping.items()):
        return column
    return column.map(mapping).astype(column.dtype if column.dtype != object else "string")


def finding_frame(
    file: str,
    rows: Iterable[int] | np.ndarray,
    column: str | None,
    values: Iterable[object] | None,
    rule: str,
    severity: str,
    message: str,
    *,
    is_id: bool = False,
) -> pd.DataFrame:
    """Findings of one rule on several rows of one file, as a table with :data:`FINDING_COLUMNS`.

    ``values`` is replaced by ``"<id>"`` when ``is_id`` is true, so identifiers never reach a report; every other
    value, the file, the column and the message are redacted (:func:`kvarus_research.redact.redact`).

    Examples
    --------
    >>> finding_frame("f.csv", [2, 5], "PasientGUID", ["a", "b"], "required", "error", "missing", is_id=True)
    ... # doctest: +NORMALIZE_WHITESPACE
        file  row       column value      rule severity  message
    0  f.csv    2  PasientGUID  <id>  required    error  missing
    1  f.csv    5  PasientGUID  <id>  required    error  missing
    >>> finding_frame("f.csv", [3], "dager_rus_30", ["01018012371"], "not_a_number", "warning", "x")["value"][0]
    '<id>'
    """
    rows = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, dtype=np.int64)
    n = len(rows)
    if values is None:
        vals = pd.array([pd.NA] * n, dtype="string")
    elif is_id:
        vals = pd.array([ID_PLACEHOLDER] * n, dtype="string")
    else:
        vals = pd.array(["" if v is None or v is pd.NA else redact(str(v)) for v in values], dtype="string")
    return pd.DataFrame(
        {
            "file": pd.array([redact(file)] * n, dtype="string"),
            "row": pd.array(rows, dtype="Int64"),
            "column": pd.array([None if column is None else redact(column)] * n, dtype="string"),
            "value": vals,
            "rule": pd.array([rule] * n, dtype="string"),
            "severity": pd.array([severity] * n, dtype="string"),
            "message": pd.array([redact(message)] * n, dtype="string"),
        }
    )


def file_finding(file: str, column: str | None, rule: str, severity: str, message: str) -> pd.DataFrame:
    """One finding about a whole file or column (no row number)."""
    df = finding_frame(file, [0], column, None, rule, severity, message)
    df["row"] = pd.array([pd.NA], dtype="Int64")
    return df


def concat_findings(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate finding tables (an empty table with the right columns when there are none)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return finding_frame("", [], None, None, "", "", "")
    return pd.concat(parts, ignore_index=True)


@dataclass
class ValidationReport:
    """Findings and row accounting of one extract.

    Parameters
    ----------
    findings : DataFrame
        One row per finding, columns :data:`FINDING_COLUMNS`.
    rows : DataFrame
        One row per file: ``file``, ``form``, ``read``, ``accepted``, ``rejected``.
    source : str
        The folder that was read.
    lines : DataFrame, optional
        Physical-line accounting, one row per file, columns :data:`LINE_COLUMNS`.

    Raises
    ------
    ExtractError
        When ``read != accepted + rejected`` for a file, the rejected count differs from the number of rows
        with an error finding, or a file's physical lines do not add up (``lines != header + blank +
        continued + rows`` or ``rows != read``): a bug in the reader, never to be hidden.

    Examples
    --------
    >>> f = finding_frame("a.csv", [3], "dager_rus_30", ["x"], "not_a_number", "warning", "not a number")
    >>> rows = pd.DataFrame({"file": ["a.csv"], "form": ["Målepunkt"], "read": [4], "accepted": [4],
    ...                      "rejected": [0]})
    >>> rep = ValidationReport(f, rows)
    >>> rep.n_errors, rep.n_warnings, rep.is_clean
    (0, 1, False)
    """

    findings: pd.DataFrame
    rows: pd.DataFrame
    source: str = ""
    meta: dict = field(default_factory=dict)
    lines: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        findings = self.findings.reindex(columns=FINDING_COLUMNS)
        findings = findings.assign(**{c: _redacted(findings[c]) for c in TEXT_COLUMNS})
        self.findings = findings.sort_values(
            ["file", "row", "column", "rule"], kind="stable", na_position="first", ignore_index=True
        )
        self.rows = self.rows.reindex(columns=ROW_COLUMNS).reset_index(drop=True)
        self.rows["file"] = _redacted(self.rows["file"])
        self.source = redact(str(self.source)) if self.source else self.source
        lines = self.lines if self.lines is not None else pd.DataFrame(columns=LINE_COLUMNS)
        self.lines = lines.reindex(columns=LINE_COLUMNS).reset_index(drop=True)
        self.lines["file"] = _redacted(self.lines["file"])
        self.check_accounting()

    def check_accounting(self) -> None:
        """Check ``read == accepted + rejected`` per file and that rejected rows are the rows with errors."""
        errs = self.findings[(self.findings["severity"] == "error") & self.findings["row"].notna()]
        n_err = errs.drop_duplicates(["file", "row"]).groupby("file").size()
        for r in self.rows.itertuples(index=False):
            if r.read != r.accepted + r.rejected:
                raise ExtractError(
                    f"row accounting broken for {r.file}: read {r.read} != accepted {r.accepted} + rejected "
                    f"{r.rejected} (a bug in kvarus_research: please report it)"
                )
            if int(n_err.get(r.file, 0)) != r.rejected:
                raise ExtractError(
                    f"row accounting broken for {r.file}: {r.rejected} rows rejected but "
                    f"{int(n_err.get(r.file, 0))} rows have an error finding (a bug in kvarus_research)"
                )
        read = dict(zip(self.rows["file"], self.rows["read"]))
        for r in self.lines.itertuples(index=False):
            if r.lines != r.header + r.blank + r.continued + r.rows or read.get(r.file, r.rows) != r.rows:
                raise ExtractError(
                    f"line accounting broken for {r.file}: {r.lines} lines != header {r.header} + blank "
                    f"{r.blank} + continued {r.continued} + rows {r.rows}, or rows != read "
                    f"{read.get(r.file)} (a bug in kvarus_research: please report it)"
                )

    # -- views ----------------------------------------------------------------------------------------
    @property
    def table(self) -> pd.DataFrame:
        """The findings, one per row (file, row, column, value, rule, severity, message)."""
        return self.findings

    @property
    def n_errors(self) -> int:
        """Number of error findings (each on a rejected row, or a file-level error)."""
        return int((self.findings["severity"] == "error").sum())

    @property
    def n_warnings(self) -> int:
        """Number of warning findings."""
        return int((self.findings["severity"] == "warning").sum())

    @property
    def n_rejected(self) -> int:
        """Rows rejected over all files."""
        return int(self.rows["rejected"].sum())

    @property
    def is_clean(self) -> bool:
        """True when there is no finding at all."""
        return len(self.findings) == 0

    def by_rule(self) -> pd.DataFrame:
        """Number of findings per severity and rule (and the files they occur in)."""
        if not len(self.findings):
            return pd.DataFrame(columns=["severity", "rule", "findings", "files"])
        g = self.findings.groupby(["severity", "rule"], observed=True)
        out = g.size().rename("findings").to_frame()
        out["files"] = g["file"].agg(lambda s: ", ".join(sorted(set(s))))
        return out.reset_index().sort_values(
            ["severity", "findings"], ascending=[True, False], ignore_index=True
        )

    def summary(self, max_examples: int = 10) -> str:
        """A readable summary: rows per file, findings per rule, the first findings.

        Examples
        --------
        >>> rows = pd.DataFrame({"file": ["a.csv"], "form": ["Målepunkt"], "read": [2], "accepted": [2],
        ...                      "rejected": [0]})
        >>> print(ValidationReport(concat_findings([]), rows, source="x").summary())
        Extract x
        a.csv (Målepunkt): 2 rows read, 2 accepted, 0 rejected
        No findings: the extract is clean.
        """
        lines = [f"Extract {self.source}" if self.source else "Extract"]
        for r in self.rows.itertuples(index=False):
            lines.append(
                f"{r.file} ({r.form}): {r.read} rows read, {r.accepted} accepted, {r.rejected} rejected"
            )
        if self.is_clean:
            lines.append("No findings: the extract is clean.")
            return redact("\n".join(lines))
        lines.append(f"{self.n_errors} error(s) (rows rejected), {self.n_warnings} warning(s) (rows kept):")
        for r in self.by_rule().itertuples(index=False):
            lines.append(f"  {r.severity:<7} {r.rule:<28} {r.findings:>7}  in {r.files}")
        lines.append(f"First {min(max_examples, len(self.findings))} finding(s):")
        for f in self.findings.head(max_examples).itertuples(index=False):
            where = f.file + (f" line {f.row}" if not pd.isna(f.row) else "")
            where += f", column {f.column}" if not pd.isna(f.column) else ""
            value = "" if pd.isna(f.value) else f" (value {f.value!r})"
            lines.append(f"  {where}: {f.message}{value} [{f.rule}, {f.severity}]")
        return redact("\n".join(lines))

    def to_csv(self, path: str | Path) -> Path:
        """Write the findings (one per row) as CSV; identifiers are never in it (every text is redacted)."""
        path = Path(path)
        self.findings.to_csv(path, index=False)
        return path

    def __repr__(self) -> str:
        return (
            f"ValidationReport({len(self.rows)} files, {int(self.rows['read'].sum())} rows read, "
            f"{self.n_rejected} rejected, {self.n_errors} errors, {self.n_warnings} warnings)"
        )
