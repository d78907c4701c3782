"""Parsing one MRS data-dump file (CSV or an xlsx sheet) into a table of text, keeping every row's line number.

MRS data dumps (domain.md §3) are ``;``-separated UTF-8 files with a byte-order mark, an extra empty unnamed
column at the end of every row, decimal commas and ``dd.mm.YYYY`` dates. This module only splits the file into
fields: every value stays text (typing is :mod:`kvarus_research.io.convert`'s job) and every data row keeps its
line number as in the file (header = line 1, first data row = line 2), so a finding can always point at the line
a person would open. Rows with the wrong number of fields (a truncated last line, an unquoted ``;`` in a text)
are kept aside as :attr:`RawTable.bad_rows`, never dropped silently.

A file that cannot be read at all (empty, not UTF-8, wrong delimiter, no header line, duplicate column names)
raises :class:`FileProblem`, an :class:`~kvarus_research.errors.ExtractError` that also carries the file, line,
column and rule. A first line that holds values instead of column names (a dump saved without its header) is
refused without showing it: it is a patient's row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from kvarus_research.errors import ExtractError
from kvarus_research.redact import redact

BOM = b"\xef\xbb\xbf"


class FileProblem(ExtractError):
    """A file of an extract cannot be read at all.

    Attributes
    ----------
    file : str
        File name.
    line : int or None
        Line in the file (header = 1) when the problem has one.
    column : str or None
        Column name when the problem has one.
    rule : str
        Short name of the rule: ``empty_file``, ``encoding``, ``wrong_delimiter``, ``duplicate_column``,
        ``missing_required_column``, ``missing_header``, ``unreadable``, ``missing_form``, ``line_endings``.
    """

    def __init__(
        self, message: str, *, file: str, rule: str, line: int | None = None, column: str | None = None
    ):
        super().__init__(message)
        self.file, self.rule, self.line = redact(file), rule, line
        self.column = None if column is None else redact(column)


@dataclass
class RawTable:
    """One file (or sheet) split into text fields.

    Attributes
    ----------
    file : str
        Name shown in findings (file name, plus ``[sheet]`` for xlsx sheets).
    columns : list of str
        Column names from the header (the trailing empty column removed).
    table : pyarrow.Table
        All values as text, one column per name in ``columns``; empty fields are empty strings.
    lines : ndarray of int
        Line number in the file of each row of ``table``.
    bad_rows : list of (line, fields found)
        Rows whose number of fields does not match the header; they count as read and rejected.
    expected_fields : int
        Number of fields a row should have.
    encoding : str
        ``"utf-8"`` or ``"cp1252"`` (only when the caller allowed it).
    notes : list of (rule, column, message)
        File-level warnings (e.g. read as cp1252, a non-empty unnamed column).
    damaged : list of (line, rule, message)
        Lines rejected because the file is damaged there (``unbalanced_quote``, ``unreadable_line``,
        ``truncated_line``); they count as read and rejected.
    n_lines, header_lines, blank_lines, continued_lines : int
        Physical-line accounting: the file's lines (``\\n``-separated), those of the header, the blank ones
        and those a row continues on (a quoted line break). ``n_lines == header_lines + blank_lines +
        continued_lines + n_read`` for every file (:meth:`line_accounting`).
    """

    file: str
    columns: list[str]
    table: pa.Table
    lines: np.ndarray
    bad_rows: list[tuple[int, int]] = field(default_factory=list)
    expected_fields: int = 0
    encoding: str = "utf-8"
    notes: list[tuple[str, str | None, str]] = field(default_factory=list)
    damaged: list[tuple[int, str, str]] = field(default_factory=list)
    n_lines: int = 0
    header_lines: int = 1
    blank_lines: int = 0
    continued_lines: int = 0

    @property
    def n_read(self) -> int:
        """Data rows read from the file (good rows, rows with the wrong number of fields, damaged lines)."""
        return self.table.num_rows + len(self.bad_rows) + len(self.damaged)

    def line_accounting(self) -> dict[str, int]:
        """Every physical line of the file: header, blank, continuation of a row, or a row read (one line each).

        Raises ExtractError when they do not add up to ``n_lines`` (a bug in the parser, never hidden).
        """
        out = {
            "lines": self.n_lines,
            "header": self.header_lines,
            "blank": self.blank_lines,
            "continued": self.continued_lines,
            "rows": self.n_read,
        }
        if self.n_lines != self.header_lines + self.blank_lines + self.continued_lines + self.n_read:
            raise ExtractError(
                f"line accounting broken for {self.file}: {out} (a bug in kvarus_research: please report it)"
            )
        return out


def read_file_bytes(path: Path) -> bytes:
    """The bytes of one file of an extract, or :class:`FileProblem` (rule ``unreadable``) saying why not.

    A file the user may not read, a dangling symbolic link or a directory is a clear error, never a traceback.
    """
    try:
        return path.read_bytes()
    except PermissionError as exc:
        reason = "permission denied: the user running this may not read it (ask for read access)"
        raise FileProblem(
            f"{path.name}: cannot be read: {reason}", file=path.name, rule="unreadable"
        ) from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise FileProblem(
            f"{path.name}: cannot be read: {reason}", file=path.name, rule="unreadable"
        ) from exc


def _utf8_error(data: bytes) -> int | None:
    """Byte offset of the first invalid UTF-8 sequence, or None when ``data`` is valid UTF-8."""
    arr = pa.Array.from_buffers(
        pa.large_binary(),
        1,
        [None, pa.py_buffer(np.array([0, len(data)], dtype=np.int64)), pa.py_buffer(data)],
    )
    try:
        arr.cast(pa.large_string())
        return None
    except pa.ArrowInvalid:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return exc.start
        return None  # pragma: no cover - arrow and Python disagree only on exotic input


#: A header field made only of digits and date/number punctuation is a value, not a column name.
_VALUE_LIKE = re.compile(r"^[\d\s.,:/+-]+$")


def looks_like_values(names: Sequence[str], expected: Sequence[str] = ()) -> bool:
    """Whether a header line holds values (numbers, dates, identifiers) rather than column names: at least half
    of its fields look like values, or ``expected`` columns are given and it holds none of them while some field
    looks like a value. One odd name in a real header is not enough (it is reported as an unknown column).

    Examples
    --------
    >>> looks_like_values(["PasientGUID", "UnitId", "dato_mp_beh", "01018012371"])
    False
    >>> looks_like_values(["3f2b8c1e-9a4d-4e5f-8b6c-7d8e9f0a1b2c", "10", "01.02.2022"])
    True
    """
    filled = [n for n in names if n]
    values = sum(1 for n in filled if _VALUE_LIKE.match(n) or redact(n) != n)
    if values * 2 >= len(filled) > 0:
        return True
    return bool(values and expected and not set(filled) & set(expected))


def expected_header(expected: Sequence[str], name: str) -> str:
    """The sentence saying what the first line of ``name`` should be.

    Examples
    --------
    >>> expected_header(["PasientGUID", "UnitId"], "f.csv")
    'the first line of f.csv should be the header with the columns PasientGUID;UnitId;'
    """
    if not expected:
        return f"the first line of {name} should be the header: the ';'-separated column names of the form"
    shown = ";".join(expected[:12]) + (f"; ... ({len(expected)} columns)" if len(expected) > 12 else ";")
    return f"the first line of {name} should be the header with the columns {shown}"


def _header_error(name: str, exc: csv.Error) -> FileProblem:
    return FileProblem(
        f"{name} line 1: the header cannot be split into columns ({exc})",
        file=name,
        line=1,
        rule="unreadable",
    )


def _header(first_line: str, name: str, expected: Sequence[str] = ()) -> tuple[list[str], bool]:
    """Column names from the header line and whether it ended with the trailing empty column.

    ``expected`` (the form's columns) is only used to say what the header should be.
    """
    try:
        names = next(csv.reader([first_line], delimiter=";"), [])
    except csv.Error as exc:
        raise _header_error(name, exc) from exc
    names = [n.strip() for n in names]
    trailing = len(names) > 1 and names[-1] == ""
    if trailing:
        names = names[:-1]
    if not names or all(n == "" for n in names):
        raise FileProblem(
            f"{name} line 1: the header names no columns; expected ';'-separated column names",
            file=name,
            line=1,
            rule="empty_file",
        )
    if len(names) == 1:
        for delim, label in ((",", "','"), ("\t", "a tab"), ("|", "'|'")):
            if delim in names[0]:
                raise FileProblem(
                    f"{name} line 1: the columns are separated by {label}, expected ';' (MRS data dumps use ';')",
                    file=name,
                    line=1,
                    rule="wrong_delimiter",
                )
    if looks_like_values(names, expected):
        raise FileProblem(
            f"{name} line 1: not a header: it holds values (a data row, not shown here), not column names; "
            + expected_header(expected, name),
            file=name,
            line=1,
            rule="missing_header",
        )
    seen: set[str] = set()
    for n in names:
        if n and n in seen:
            raise FileProblem(
                f"{name} line 1: column {n!r} appears more than once; duplicate column names are "
                "refused (which one holds the data is unknown)",
                file=name,
                line=1,
                column=n,
                rule="duplicate_column",
            )
        seen.add(n)
    names = [n if n else f"unnamed_{i + 1}" for i, n in enumerate(names)]
    return names, trailing


def _line_count(data: bytes) -> tuple[int, bool]:
    """Number of lines and whether any line (other than a final one) is blank."""
    n = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    blank = b"\n\n" in data or b"\n\r\n" in data or data.startswith((b"\n", b"\r\n"))
    return n, blank


def parse_csv(
    data: bytes,
    name: str,
    *,
    allow_cp1252: bool = False,
    null_values: tuple[str, ...] = ("",),
    expected: Sequence[str] = (),
) -> RawTable:
    """Split the bytes of one MRS CSV data dump into text fields.

    Parameters
    ----------
    data : bytes
        The whole file.
    name : str
        File name, used in findings and messages.
    allow_cp1252 : bool
        Read a file that is not valid UTF-8 as Windows-1252 (with a warning note) instead of refusing it.
    null_values : tuple of str
        Field texts read as null (missing): the empty field and, from the reader, the codebook's missing labels.
    expected : sequence of str
        The columns the file should have (used only to say what the header should be when it is missing).

    Returns
    -------
    RawTable

    Raises
    ------
    FileProblem
        Empty file, not UTF-8 (and ``allow_cp1252`` is false), wrong delimiter, no header (the first line holds
        values: not shown), duplicate column names.

    Examples
    --------
    >>> raw = parse_csv("\\ufeffPasientGUID;dager_rus_30;\\na;3;\\nb;2,5;\\n".encode(), "f.csv")
    >>> raw.columns, raw.lines.tolist(), raw.table.column("dager_rus_30").to_pylist()
    (['PasientGUID', 'dager_rus_30'], [2, 3], ['3', '2,5'])
    >>> parse_csv(b"a;\\n;\\n---;\\n", "g.csv", null_values=("", "---")).table.column("a").to_pylist()
    [None, None]
    """
    boms = 0
    while data.startswith(BOM):
        data, boms = data[len(BOM) :], boms + 1
    if not data.strip():
        raise FileProblem(f"{name}: the file is empty (no header line)", file=name, rule="empty_file")
    encoding = "utf-8"
    notes: list[tuple[str, str | None, str]] = []
    if boms > 1:
        notes.append(
            (
                "repeated_bom",
                None,
                f"the file starts with {boms} byte-order marks (saved twice as UTF-8 with BOM?); the extra "
                f"{boms - 1} ignored",
            )
        )
    if b"\r" in data and b"\n" not in data:
        raise FileProblem(
            f"{name}: the lines end with a carriage return (CR) only, the old Mac line end; MRS dumps end lines "
            "with CRLF (or LF): save the file again with Windows or Unix line ends",
            file=name,
            line=1,
            rule="line_endings",
        )
    bad = _utf8_error(data)
    if bad is not None:
        line = data.count(b"\n", 0, bad) + 1
        if not allow_cp1252:
            raise FileProblem(
                f"{name} line {line}: the file is not UTF-8 (byte 0x{data[bad]:02x} at offset {bad}); MRS dumps "
                "are UTF-8. If it was saved by Excel as Windows-1252, read it with allow_cp1252=True",
                file=name,
                line=line,
                rule="encoding",
            )
        try:
            data = data.decode("cp1252").encode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileProblem(
                f"{name}: the file is neither UTF-8 nor Windows-1252 (byte offset {exc.start})",
                file=name,
                line=line,
                rule="encoding",
            ) from exc
        encoding = "cp1252"
        notes.append(("encoding_cp1252", None, "file is not UTF-8; read as Windows-1252 as allowed"))
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise FileProblem(
            f"{name} line {line}: the file contains NUL bytes: not a text file",
            file=name,
            line=line,
            rule="unreadable",
        )
    end = data.find(b"\n")
    first = (data if end < 0 else data[:end]).decode("utf-8").rstrip("\r")
    names, trailing = _header(first, name, expected)
    n_fields = len(names) + (1 if trailing else 0)
    raw = _fast_parse(data, names, n_fields, name, null_values) if end >= 0 else None
    if raw is None:
        raw = _slow_parse(data.decode("utf-8"), names, n_fields, trailing, name, null_values)
    raw.encoding, raw.notes = encoding, notes + raw.notes
    return raw


def _fast_parse(
    data: bytes, names: list[str], n_fields: int, name: str, null_values: tuple[str, ...]
) -> RawTable | None:
    """pyarrow's parser when every record sits on one line with the right number of fields; else None."""
    n_lines, blank = _line_count(data)
    if blank or data.count(b"\r") != data.count(b"\r\n"):  # a lone CR would split a line for pyarrow
        return None
    cols = [f"c{i}" for i in range(n_fields)]
    try:
        table = pcsv.read_csv(
            io.BytesIO(data),
            read_options=pcsv.ReadOptions(skip_rows=1, column_names=cols, block_size=1 << 24),
            parse_options=pcsv.ParseOptions(delimiter=";", newlines_in_values=False),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(cols, pa.string()),
                null_values=list(null_values),
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException):
        return None
    if table.num_rows != n_lines - 1:
        return None
    raw = RawTable(
        file=name,
        columns=names,
        table=table.select(cols[: len(names)]).rename_columns(names),
        lines=np.arange(2, table.num_rows + 2, dtype=np.int64),
        expected_fields=n_fields,
        n_lines=n_lines,
    )
    if n_fields > len(names):
        _check_trailing(raw, table.column(cols[-1]).to_pylist())
    return raw


def _check_trailing(raw: RawTable, values: list[Any]) -> None:
    filled = sum(1 for v in values if v not in ("", None))
    if filled:
        raw.notes.append(
            (
                "unnamed_column_not_empty",
                None,
                f"the unnamed last column holds values in {filled} row(s); they were ignored",
            )
        )


def _nulled(values: tuple[str, ...] | list[str], null_values: frozenset[str]) -> list[str | None]:
    return [None if v in null_values else v for v in values]


class _Lines:
    """The physical lines of a text (each ending in ``\\n``, kept) fed to :mod:`csv` one at a time; ``pos`` is
    the number of lines handed out, and can be set back to re-read lines a damaged record swallowed."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.cut = not text.endswith("\n")  # the last line has no line break after it
        if not self.cut:
            self.lines.pop()  # the empty text after the final line break is not a line
        self.pos = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1] + ("\n" if self.pos < len(self.lines) or not self.cut else "")


def _slow_parse(
    text: str,
    names: list[str],
    n_fields: int,
    trailing: bool,
    name: str,
    null_values: tuple[str, ...] = ("",),
) -> RawTable:
    """Python's csv module, record by record over the physical lines (split at ``\\n`` only): handles quoted
    newlines, blank lines and rows of the wrong length, and accounts for every physical line.

    A record that runs over several lines without giving the right number of fields is an unbalanced quote:
    the line where the quote opened is rejected (``unbalanced_quote``) and the lines after it are read on their
    own, so one stray ``"`` cannot swallow the rest of the file. A line the csv module cannot split (a carriage
    return inside an unquoted field) is rejected (``unreadable_line``). The last line of a file that does not
    end with a line break, lacking the last field while other rows have it, was cut (``truncated_line``).
    """
    feed = _Lines(text)
    reader = csv.reader(feed, delimiter=";")
    recs: list[tuple[int, int, list[str]]] = []  # (first line, lines spanned, fields)
    damaged: list[tuple[int, str, str]] = []
    blank = header_lines = 0
    while feed.pos < len(feed.lines):
        start = feed.pos + 1
        try:
            rec = next(reader)
        except StopIteration:  # pragma: no cover - the loop condition stops first
            break
        except csv.Error as exc:
            if start == 1:
                raise _header_error(name, exc) from exc
            damaged.append((start, "unreadable_line", f"the line cannot be split into fields ({exc})"))
            feed.pos = start  # the rest of the file is read on
            continue
        span = feed.pos - start + 1
        if start == 1:
            header_lines = span
            continue
        if not rec or (len(rec) == 1 and rec[0].strip() == ""):
            blank += span
            continue
        ok = len(rec) == n_fields or (trailing and len(rec) == n_fields - 1 and span == 1)
        if span > 1 and (not ok or (feed.pos == len(feed.lines) and "\n" in rec[-1])):
            # wrong length, or a quoted field running to the end of the file: the quote never closed
            damaged.append(
                (
                    start,
                    "unbalanced_quote",
                    f"a '\"' opened on this line is not closed where the row ends: the next {span - 1} "
                    "line(s) would have been swallowed into one field; this line rejected, the lines after it "
                    "read on their own",
                )
            )
            feed.pos = start
            continue
        recs.append((start, span, rec))
    full = sum(1 for _, _, r in recs if len(r) == n_fields)
    last_line = bool(recs) and recs[-1][0] + recs[-1][1] - 1 == len(feed.lines)
    if trailing and feed.cut and last_line and len(recs[-1][2]) == n_fields - 1 and full:
        line = recs.pop()[0]
        damaged.append(
            (
                line,
                "truncated_line",
                "the file ends in this line without a line break and the line lacks its last field: the "
                "file was cut; row rejected",
            )
        )
    fits = [len(r) == n_fields or (trailing and len(r) == n_fields - 1) for _, _, r in recs]
    good = [rec for rec, f in zip(recs, fits) if f]
    bad = [(a, len(r)) for (a, _, r), f in zip(recs, fits) if not f]
    rows = [r[: len(names)] for _, _, r in good]
    extra = [r[-1] if trailing and len(r) == n_fields else "" for _, _, r in good]
    columns = list(zip(*rows)) if rows else [()] * len(names)
    nulls = frozenset(null_values)
    table = pa.table({n: pa.array(_nulled(c, nulls), type=pa.string()) for n, c in zip(names, columns)})
    raw = RawTable(
        file=name,
        columns=names,
        table=table,
        lines=np.asarray([a for a, _, _ in good], dtype=np.int64),
        bad_rows=bad,
        damaged=sorted(damaged),
        expected_fields=n_fields,
        n_lines=len(feed.lines),
        header_lines=header_lines,
        blank_lines=blank,
        continued_lines=sum(b - 1 for _, b, _ in good),
    )
    if trailing:
        _check_trailing(raw, extra)
    return raw


def _cell_text(value: Any) -> str:
    """An xlsx cell as the text an MRS CSV dump would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.strftime("%d.%m.%Y")
        return value.strftime("%d.%m.%Y %H:%M:%S")
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_sheet(
    rows: Any, name: str, null_values: tuple[str, ...] = ("",), expected: Sequence[str] = ()
) -> RawTable:
    """Split the rows of one xlsx sheet (``openpyxl`` ``iter_rows(values_only=True)``) like a CSV dump.

    Row numbers are the sheet's (header = row 1); fully blank rows are skipped (counted as blank lines). A row
    with a value in a cell beyond the header's last column is a bad row (like a CSV row with an extra ``;``).

    Examples
    --------
    >>> import datetime as dt
    >>> raw = parse_sheet([("PasientGUID", "dato_mp_beh"), ("a", dt.datetime(2021, 3, 1)), (None, None),
    ...                    ("b", "02.03.2021")], "x.xlsx[Målepunkt]")
    >>> raw.lines.tolist(), raw.table.column("dato_mp_beh").to_pylist()
    ([2, 4], ['01.03.2021', '02.03.2021'])
    """
    it = iter(rows)
    header = next(it, None)
    if header is None:
        raise FileProblem(f"{name}: the sheet is empty (no header row)", file=name, rule="empty_file")
    head = [_cell_text(v) for v in header]
    while head and head[-1] == "":
        head.pop()
    names, _ = _header(";".join(f'"{h}"' if ";" in h else h for h in head) if head else "", name, expected)
    data: list[list[str]] = []
    lines: list[int] = []
    bad: list[tuple[int, int]] = []
    n_lines, blank = 1, 0
    for i, row in enumerate(it, start=2):
        n_lines = i
        cells = [_cell_text(v) for v in row]
        if all(c == "" for c in cells):
            blank += 1
            continue
        if any(
            c != "" for c in cells[len(names) :]
        ):  # a value beyond the header: shifted, like a CSV's extra ';'
            bad.append((i, max(j for j, c in enumerate(cells) if c != "") + 1))
            continue
        cells = (cells + [""] * len(names))[: len(names)]
        data.append(cells)
        lines.append(i)
    columns = list(zip(*data)) if data else [()] * len(names)
    nulls = frozenset(null_values)
    table = pa.table({n: pa.array(_nulled(c, nulls), type=pa.string()) for n, c in zip(names, columns)})
    return RawTable(
        file=name,
        columns=names,
        table=table,
        lines=np.asarray(lines, dtype=np.int64),
        bad_rows=bad,
        expected_fields=len(names),
        n_lines=n_lines,
        blank_lines=blank,
    )


def read_workbook(
    path: Path,
    null_values: tuple[str, ...] = ("",),
    expected: Callable[[str], Sequence[str]] | None = None,
) -> dict[str, RawTable]:
    """Every sheet of an xlsx data dump, by sheet name (``expected(title)``: the columns a sheet should have)."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise FileProblem(
            f"{path.name}: not a readable xlsx workbook ({type(exc).__name__}: {exc})",
            file=path.name,
            rule="unreadable",
        ) from exc
    try:
        return {
            ws.title: parse_sheet(
                ws.iter_rows(values_only=True),
                f"{path.name}[{ws.title}]",
                null_values,
                expected(ws.title) if expected is not None else (),
            )
            for ws in wb.worksheets
        }
    finally:
        wb.close()
