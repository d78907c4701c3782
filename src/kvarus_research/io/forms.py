"""One form's file, typed and checked against the codebook: a table and its findings.

:func:`convert_form` turns a :class:`~kvarus_research.io.csv.RawTable` into a typed table (codebook dtypes,
missing labels and codes as NA), reporting values that do not parse and, through the pandera schema generated
from the codebook (:mod:`kvarus_research.codebook.schema`), unknown codes, values out of range and missing
required values.

Severity: a problem in a *required* variable (the patient id, unit, date, behandlingsstatus ...) is an
``error`` and rejects the row: without it the registration cannot be placed in the course model. A problem in
any other variable is a ``warning``: the row is kept and that one value set to missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kvarus_research.codebook.model import Codebook, Form
from kvarus_research.codebook.schema import failure_cases, form_schema
from kvarus_research.io.convert import convert_column
from kvarus_research.io.csv import FileProblem, RawTable, expected_header
from kvarus_research.io.validate import file_finding, finding_frame

MESSAGES = {
    "not_a_number": "expected {expected}",
    "invalid_date": "expected {expected}; impossible or unreadable date",
    "invalid_boolean": "expected {expected}",
    "unknown_code": "code not in the codebook's code list for this variable",
    "out_of_range": "value outside the codebook's valid range {range}",
    "required": "required value is missing",
}


@dataclass
class FormTable:
    """A typed form table with its findings.

    Attributes
    ----------
    file : str
        File name as shown in findings.
    form : Form
        The codebook form.
    data : DataFrame
        One row per good row of the file, codebook column names, plus ``_line`` (line in the file).
    rejected : ndarray of bool
        Rows of ``data`` with an error finding.
    n_read : int
        Data rows in the file (``len(data)`` plus rows with the wrong number of fields or damaged lines).
    findings : list of DataFrame
    lines : dict
        The file's physical-line accounting (:meth:`~kvarus_research.io.csv.RawTable.line_accounting`).
    """

    file: str
    form: Form
    data: pd.DataFrame
    rejected: np.ndarray
    n_read: int
    findings: list[pd.DataFrame] = field(default_factory=list)
    lines: dict = field(default_factory=dict)


def _texts(raw: RawTable, column: str, mask: np.ndarray) -> list[str]:
    return raw.table.column(column).take(np.flatnonzero(mask)).to_pylist()


def _tail(severity: str) -> str:
    return "; row rejected" if severity == "error" else "; set to missing, row kept"


def _missing_column_message(raw: RawTable, form: Form, column: str, codebook: Codebook) -> str:
    """What is wrong when a required column is missing, and what the header should be; the file's own column
    names are shown (redacted) only when some of them are the form's: a first line with none of them is not a
    header but a patient's row, never printed."""
    expected = [v.name for v in codebook.form_variables(form.name)]
    known = [c for c in raw.columns if c in expected]
    head = f"{raw.file}: required column {column!r} of form {form.name!r} is missing; "
    if not known:
        return (
            head
            + "line 1 holds none of the form's column names (if it is a data row, it is not shown here); "
            + expected_header(expected, raw.file)
        )
    other = [c for c in raw.columns if c not in expected]
    shown = f"; not in the form: {other[:8]}{' ...' if len(other) > 8 else ''}" if other else ""
    return head + expected_header(expected, raw.file) + f" (the header has {len(known)} of them{shown})"


def convert_form(raw: RawTable, form: Form, codebook: Codebook) -> FormTable:
    """Type and check one form's file.

    Parameters
    ----------
    raw : RawTable
        The file split into text fields.
    form : Form
        The codebook form this file holds.
    codebook : Codebook

    Returns
    -------
    FormTable

    Raises
    ------
    FileProblem
        When a required variable of the form has no column (rule ``missing_required_column``).

    Examples
    --------
    >>> import kvarus_research as kr
    >>> from kvarus_research.io.csv import parse_csv
    >>> cb = kr.load_codebook()
    >>> text = "PasientGUID;UnitId;dato_basis;dager_rus_30;\\na;1;01.02.2021;40;\\nb;1;;3;\\n"
    >>> ft = convert_form(parse_csv(text.encode(), "b.csv"), cb.form("Basisopplysninger"), cb)
    >>> f = pd.concat(ft.findings)
    >>> f.loc[f["row"].notna(), ["row", "column", "rule", "severity"]].values.tolist()
    [[2, 'dager_rus_30', 'out_of_range', 'warning'], [3, 'dato_basis', 'required', 'error']]
    >>> ft.rejected.tolist(), ft.data["dager_rus_30"].tolist()
    ([False, True], [<NA>, 3])
    >>> sorted(set(f.loc[f["row"].isna(), "rule"]))  # the other data variables of the form have no column
    ['missing_column']
    """
    file = raw.file
    findings: list[pd.DataFrame] = [
        file_finding(file, col, rule, "warning", msg) for rule, col, msg in raw.notes
    ]
    form_vars = codebook.form_variables(form.name)
    for v in form_vars:
        if v.required and v.name not in raw.columns:
            raise FileProblem(
                _missing_column_message(raw, form, v.name, codebook),
                file=file,
                column=v.name,
                rule="missing_required_column",
            )
        if v.role is None and v.name not in raw.columns:
            findings.append(
                file_finding(
                    file,
                    v.name,
                    "missing_column",
                    "warning",
                    f"codebook variable of form {form.name} has no column: all values missing",
                )
            )
    lines = raw.lines
    n = len(lines)
    rejected = np.zeros(n, dtype=bool)
    if raw.bad_rows:
        bad_lines = [b[0] for b in raw.bad_rows]
        counts = [f"{b[1]} fields" for b in raw.bad_rows]
        findings.append(
            finding_frame(
                file,
                bad_lines,
                None,
                counts,
                "wrong_field_count",
                "error",
                f"expected {raw.expected_fields} fields separated by ';' (a truncated "
                "line or an unquoted ';'); row rejected"
                if not raw.file.endswith("]")
                else f"expected values in the {raw.expected_fields} columns of the header only (a value in a "
                "cell beyond them: a shifted row); row rejected",
            )
        )
    for line, rule, message in raw.damaged:
        findings.append(finding_frame(file, [line], None, None, rule, "error", message))
    if raw.n_read == 0:
        findings.append(
            file_finding(
                file, None, "no_rows", "warning", "the file has a header but no data rows: no registrations"
            )
        )
    cols: dict[str, object] = {}
    for name in raw.columns:
        v = codebook.variable(name) if name in codebook else None
        if v is None:
            findings.append(
                file_finding(
                    file, name, "unknown_column", "warning", "column not in the codebook: kept as text"
                )
            )
        conv = convert_column(raw.table.column(name), v, codebook.missing_labels)
        cols[name] = conv.values
        if v is not None and conv.bad.any():
            sev = "error" if v.required else "warning"
            msg = MESSAGES[conv.rule].format(expected=conv.expected) + _tail(sev)
            findings.append(
                finding_frame(
                    file,
                    lines[conv.bad],
                    name,
                    _texts(raw, name, conv.bad),
                    conv.rule,
                    sev,
                    msg,
                    is_id=v.type == "id",
                )
            )
            if sev == "error":
                rejected |= conv.bad
    data = pd.DataFrame(cols, index=pd.RangeIndex(n))
    parse_bad = {name: np.zeros(n, dtype=bool) for name in raw.columns}
    for f in findings:
        if len(f) and f["row"].notna().all() and f["column"].iloc[0] in parse_bad:
            parse_bad[f["column"].iloc[0]][np.searchsorted(lines, f["row"].to_numpy(dtype=np.int64))] = True
    fc = failure_cases(form_schema(codebook, form.name), data)
    fc = fc[fc["index"].notna() & fc["column"].isin(raw.columns)]
    for (column, rule), grp in fc.groupby(["column", "check"], sort=True):
        pos = grp["index"].to_numpy(dtype=np.int64)
        pos = pos[
            ~parse_bad[column][pos]
        ]  # a value that did not parse is reported once, not again as missing
        if not len(pos):
            continue
        v = codebook.variable(column)
        sev = "error" if v.required else "warning"
        msg = MESSAGES.get(rule, "{rule}").format(rule=rule, range=v.range) + _tail(sev)
        values = _texts(raw, column, np.isin(np.arange(n), pos)) if rule != "required" else None
        findings.append(finding_frame(file, lines[pos], column, values, rule, sev, msg, is_id=v.type == "id"))
        if sev == "error":
            rejected[pos] = True
        elif rule != "required":
            col = data[column].copy()
            col.iloc[pos] = pd.NA
            data[column] = col
    data["_line"] = lines
    return FormTable(
        file=file,
        form=form,
        data=data,
        rejected=rejected,
        n_read=raw.n_read,
        findings=findings,
        lines={"file": file, **raw.line_accounting()},
    )
