"""Reading an MRS extract folder into a :class:`~kvarus_research.Registry`, and single tables from other formats.

:func:`read_extract` reads a folder of MRS data dumps (format in domain.md §3), validates every row against the
codebook and the course model, and returns a Registry whose ``validation`` attribute is the
:class:`~kvarus_research.io.ValidationReport`: every row read is either in the registry or rejected with a
finding naming its file, line, column and rule.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kvarus_research.codebook import Codebook, load_codebook
from kvarus_research.codebook.model import Form
from kvarus_research.errors import CodebookError, ExtractError
from kvarus_research.io.course_rules import assign_courses, check_course_order, check_dates, check_duplicates
from kvarus_research.io.csv import FileProblem, RawTable, parse_csv, read_file_bytes, read_workbook
from kvarus_research.io.dates import user_date
from kvarus_research.io.forms import FormTable, convert_form
from kvarus_research.io.tables import (
    TEXT,
    build_coverage,
    build_units,
    cast_to_codebook,
    date_column,
    network_table,
    registration_table,
)
from kvarus_research.io.validate import ValidationReport, concat_findings, file_finding
from kvarus_research.registry import Registry
from kvarus_research.registry.courses import summarise_courses

DUMP_RE = re.compile(
    r"^DataDump_(?:Prod|QA)_(?P<form>.+?)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<time>\d{4})\.(?P<ext>csv|xlsx)$",
    re.IGNORECASE,
)
DATE_DIR_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
REGISTRATION_KINDS = ("baseline", "status", "measurement", "ending", "followup")


def _ascii(name: str) -> str:
    table = str.maketrans({"å": "aa", "ø": "o", "æ": "ae", "Å": "aa", "Ø": "o", "Æ": "ae"})
    return re.sub(r"[^a-z0-9]", "", name.translate(table).lower())


def match_form(name: str, codebook: Codebook) -> Form | None:
    """The codebook form a file or sheet name refers to (by name, table name, or an Excel-truncated prefix).

    Examples
    --------
    >>> import kvarus_research as kr
    >>> cb = kr.load_codebook()
    >>> match_form("Maalepunkt", cb).name, match_form("basisopplysninger_1", cb).name
    ('Målepunkt', 'Basisopplysninger')
    """
    key = _ascii(name)
    for f in codebook.forms:
        if key in (_ascii(f.name), _ascii(f.table)):
            return f
    for f in codebook.forms:  # sheet names are cut at 31 characters
        if len(key) >= 8 and (_ascii(f.name).startswith(key) or _ascii(f.table).startswith(key)):
            return f
    return None


def resolve_folder(path: str | Path, extract_date: str | pd.Timestamp | None = None) -> Path:
    """The extract folder: ``path`` itself, or its newest ``YYYY-MM-DD`` sub-folder (or the one asked for).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for d in ("2024-01-31", "2024-06-30"):
    ...     (root / d).mkdir()
    >>> resolve_folder(root).name, resolve_folder(root, extract_date="2024-01-31").name
    ('2024-06-30', '2024-01-31')
    """
    path = Path(path)
    if not path.exists():
        raise ExtractError(f"extract folder {path} does not exist")
    if path.is_file():
        raise ExtractError(f"{path} is a file; read_extract() needs the folder holding the DataDump files")
    dated = sorted(p for p in path.iterdir() if p.is_dir() and DATE_DIR_RE.match(p.name))
    if extract_date is not None and dated:
        want = _given_date(extract_date).strftime("%Y-%m-%d")
        for p in dated:
            if p.name == want:
                return p
        raise ExtractError(f"{path} has no extract folder for {want}; folders: {[p.name for p in dated]}")
    has_dumps = any(
        p.suffix.lower() in (".csv", ".xlsx") and p.name.lower() != "rapport.xlsx"
        for p in path.iterdir()
        if p.is_file()
    )
    if dated and not has_dumps:
        return dated[-1]
    return path


def _entry_problem(p: Path) -> str:
    """Why a folder entry named like a data file is not a file that can be read."""
    if p.is_symlink():
        try:
            p.resolve(strict=True)
        except RuntimeError:
            return "a symbolic link in a loop (it points back to itself): not read"
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "a symbolic link in a loop (it points back to itself): not read"
            return "a symbolic link to a file that does not exist (a dangling link): not read"
        if p.is_dir():
            return "a symbolic link to a folder, not a file: not read"
    if p.is_dir():
        return "a folder named like a data file, not a file: not read"
    return "not a regular file (a device, pipe or socket): not read"


@dataclass
class _Source:
    form: Form
    file: str
    raw: RawTable


def _collect(
    folder: Path, codebook: Codebook, allow_cp1252: bool, progress: bool
) -> tuple[list[_Source], list]:
    """Find and parse every data-dump file (and xlsx sheet) of the folder."""
    notes: list[pd.DataFrame] = []
    nulls = ("", *codebook.missing_labels)
    by_form: dict[str, list[tuple[str, Path, str | None]]] = {}
    entries = sorted(folder.iterdir())
    files = [p for p in entries if p.is_file()]
    for p in entries:
        if not p.is_file() and (DUMP_RE.match(p.name) or p.suffix.lower() in (".csv", ".xlsx")):
            notes.append(file_finding(p.name, None, "unreadable_entry", "error", _entry_problem(p)))
    workbooks = []
    for p in files:
        m = DUMP_RE.match(p.name)
        if m:
            form = match_form(m["form"], codebook)
            if form is None:
                notes.append(
                    file_finding(
                        p.name,
                        None,
                        "unknown_form",
                        "warning",
                        f"form {m['form']!r} is not in the codebook: file not read",
                    )
                )
                continue
            by_form.setdefault(form.name, []).append((m["date"] + m["time"], p, None))
        elif p.suffix.lower() == ".xlsx" and p.name.lower() != "rapport.xlsx":
            workbooks.append(p)

    def columns_of(title: str) -> list[str]:
        form = match_form(title, codebook)
        return [v.name for v in codebook.form_variables(form.name)] if form is not None else []

    sources: list[_Source] = []
    for wb in workbooks:
        sheets = read_workbook(wb, nulls, columns_of)
        found = set()
        for title, raw in sheets.items():
            form = match_form(title, codebook)
            if form is None:
                notes.append(
                    file_finding(
                        raw.file,
                        None,
                        "unknown_form",
                        "warning",
                        f"sheet {title!r} is not a form of the codebook: not read",
                    )
                )
                continue
            found.add(form.name)
            sources.append(_Source(form, raw.file, raw))
        for f in codebook.forms:
            if f.name not in found and f.name not in by_form:
                notes.append(
                    file_finding(
                        wb.name,
                        None,
                        "missing_form",
                        "warning",
                        f"the workbook has no sheet for form {f.name!r}: no {f.name} data",
                    )
                )
    items = [(k, sorted(v)) for k, v in by_form.items()]
    for form_name, versions in tqdm(items, desc="reading dumps", disable=not progress):
        for _, old, _ in versions[:-1]:
            notes.append(
                file_finding(
                    old.name,
                    None,
                    "older_dump_ignored",
                    "warning",
                    "a newer dump of the same form is in the folder: this one was not read",
                )
            )
        p = versions[-1][1]
        form = codebook.form(form_name)
        if p.suffix.lower() == ".xlsx":
            sheets = read_workbook(p, nulls, lambda _title, f=form_name: columns_of(f))
            raw = next(iter(sheets.values()))
            raw.file = p.name
        else:
            raw = parse_csv(
                read_file_bytes(p),
                p.name,
                allow_cp1252=allow_cp1252,
                null_values=nulls,
                expected=columns_of(form_name),
            )
        sources.append(_Source(form, p.name, raw))
    if not sources:
        raise ExtractError(
            f"{folder}: no MRS data dump files (DataDump_<Prod|QA>_<form>_<YYYY-MM-DD>_<HHMM>.csv "
            "or .xlsx) found"
        )
    return sources, notes


def _given_date(given: str | pd.Timestamp) -> pd.Timestamp:
    """The ``extract_date`` argument: ISO or day-first ``dd.mm.YYYY``, never month-first (a time is dropped)."""
    return user_date(given, "extract_date", ExtractError, normalize=True)


def _extract_date(folder: Path, given: str | pd.Timestamp | None) -> pd.Timestamp | None:
    if given is not None:
        return _given_date(given)
    if DATE_DIR_RE.match(folder.name):
        return pd.Timestamp(folder.name)
    dates = [m["date"] for p in folder.iterdir() if (m := DUMP_RE.match(p.name))]
    return pd.Timestamp(max(dates)) if dates else None


def _codebook(folder: Path, codebook: Codebook | None) -> tuple[Codebook, str]:
    if codebook is not None:
        return codebook, "passed in"
    rapport = folder / "rapport.xlsx"
    if rapport.exists():
        from kvarus_research.codebook.rapport import read_rapport

        try:  # the bundled codebook supplies English labels, roles and outcome metadata the workbook lacks
            return read_rapport(rapport, base=load_codebook()), str(rapport.name)
        except CodebookError as exc:
            raise ExtractError(f"{rapport}: the codebook cannot be read ({exc})") from exc
    return load_codebook(), "bundled"


def read_extract(
    path: str | Path,
    codebook: Codebook | None = None,
    *,
    extract_date: str | pd.Timestamp | None = None,
    allow_cp1252: bool = False,
    progress: bool = False,
) -> Registry:
    """Read and validate an MRS extract folder into a Registry.

    Parameters
    ----------
    path : str or Path
        A folder of MRS data dumps (``DataDump_Prod_<form>_<YYYY-MM-DD>_<HHMM>.csv`` or ``.xlsx``, or an xlsx
        workbook with one sheet per form), or a parent folder holding one ``YYYY-MM-DD`` folder per extract.
        ``enheter.csv`` (units) and ``dekningsgrad.csv`` (coverage) are read when present.
    codebook : Codebook, optional
        Default: the folder's ``rapport.xlsx`` when present, else the bundled codebook.
    extract_date : str or Timestamp, optional
        Which dated folder to read (default the newest) and the date after which a registration is "in the
        future". Default: the folder's date, else the date in the file names, else the last registration date.
    allow_cp1252 : bool
        Read files that are not UTF-8 as Windows-1252 (with a warning) instead of refusing them.
    progress : bool
        Show progress bars.

    Returns
    -------
    Registry
        With ``registry.validation`` (the :class:`ValidationReport`) and ``registry.meta`` (folder, codebook,
        files read with their row counts).

    Raises
    ------
    ExtractError
        When the extract cannot be read at all: no dump files, an empty file, a file that is not UTF-8 (unless
        allowed), the wrong delimiter, duplicate column names, a missing required column. The error's ``file``,
        ``line``, ``column`` and ``rule`` attributes say where (:class:`~kvarus_research.io.csv.FileProblem`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "DataDump_Prod_Målepunkt_2023-01-31_0700.csv").write_bytes(
    ...     "\\ufeffPasientGUID;UnitId;dato_mp_beh;behandlingsstatus;plan_beh;\\n"
    ...     "p1;10;01.02.2022;1;2;\\np1;10;01.05.2022;4;9;\\np2;10;31.02.2022;1;2;\\n".encode())
    >>> reg = read_extract(folder)
    >>> reg.validation.rows[["read", "accepted", "rejected"]].values.tolist()
    [[3, 2, 1]]
    >>> reg.courses["ending_type"].tolist()
    ['mutual_agreement']
    >>> reg.validation.table.loc[reg.validation.table["row"].notna(), ["row", "column", "rule"]].values.tolist()
    [[3, 'plan_beh', 'unknown_code'], [4, 'dato_mp_beh', 'invalid_date']]
    """
    folder = resolve_folder(path, extract_date)
    cb, cb_source = _codebook(folder, codebook)
    ext_date = _extract_date(folder, extract_date)
    sources, findings = _collect(folder, cb, allow_cp1252, progress)
    tables: list[FormTable] = []
    for s in tqdm(sources, desc="validating forms", disable=not progress):
        tables.append(convert_form(s.raw, s.form, cb))
    for t in tables:
        findings += t.findings
    sources_meta = [(t.file, date_column(t, cb)) for t in tables]
    reg_idx = [i for i, t in enumerate(tables) if t.form.kind in REGISTRATION_KINDS]
    net_idx = [i for i, t in enumerate(tables) if t.form.kind == "network_work"]
    if not reg_idx:
        raise ExtractError(f"{folder}: no registration form (baseline or Målepunkt) among the files read")
    regs = cast_to_codebook(
        pd.concat([registration_table(tables[i], cb, i) for i in reg_idx], ignore_index=True), cb
    )
    if ext_date is None:
        ext_date = (
            pd.Timestamp(regs["date"].max()).normalize()
            if regs["date"].notna().any()
            else pd.Timestamp.today()
        )
    keep, found = _check_registrations(regs, sources_meta, ext_date)
    findings += found
    accepted = regs if keep.all() else regs.loc[keep].reset_index(drop=True)
    del regs
    network = None
    if net_idx:
        net = cast_to_codebook(
            pd.concat([network_table(tables[i], cb, i) for i in net_idx], ignore_index=True), cb
        )
        nkeep = ~net["_rejected"].to_numpy()
        bad, found = check_dates(net.loc[nkeep, ["date", "_src", "_line"]], ext_date, sources_meta)
        nkeep[np.flatnonzero(nkeep)[bad]] = False
        findings += found
        network = net if nkeep.all() else net.loc[nkeep].reset_index(drop=True)
    counts = np.bincount(accepted["_src"].to_numpy(dtype=np.int64), minlength=len(tables))
    if network is not None:
        counts += np.bincount(network["_src"].to_numpy(dtype=np.int64), minlength=len(tables))
    rows = pd.DataFrame(
        {
            "file": [t.file for t in tables],
            "form": [t.form.name for t in tables],
            "read": [t.n_read for t in tables],
            "accepted": counts.tolist(),
        }
    )
    rows["rejected"] = rows["read"] - rows["accepted"]
    units, unit_findings, unit_files = build_units(folder, accepted, network, allow_cp1252)
    findings += unit_findings
    coverage, cov_files = build_coverage(folder, allow_cp1252)
    report = ValidationReport(
        concat_findings(findings), rows, source=str(folder), lines=pd.DataFrame([t.lines for t in tables])
    )
    courses = _courses(accepted, ext_date)
    patients = _patients(accepted)
    registrations = accepted.drop(
        columns=[c for c in accepted.columns if c.startswith("_")] + ["sex", "unit_name"]
    )
    if network is not None:
        network = network.drop(
            columns=[c for c in network.columns if c.startswith("_")] + ["sex", "unit_name"]
        )
    meta = {
        "source": "extract",
        "folder": str(folder),
        "codebook": cb_source,
        "extract_date": ext_date.strftime("%Y-%m-%d"),
        "files": rows.to_dict(orient="records"),
        "other_files": unit_files + cov_files,
    }
    return Registry(
        patients=patients,
        courses=courses,
        registrations=registrations,
        units=units,
        network_work=network,
        coverage=coverage,
        codebook=cb,
        extract_date=ext_date,
        meta=meta,
        validation=report,
    )


def _check_registrations(
    regs: pd.DataFrame, sources: list[tuple[str, str]], ext_date: pd.Timestamp
) -> tuple[np.ndarray, list[pd.DataFrame]]:
    """Run the course-model rules on the rows the codebook checks kept; returns the rows kept and findings.

    The rules work on a narrow frame of integer codes (patient, course), so millions of rows stay fast.
    """
    keep = ~regs["_rejected"].to_numpy()
    has_ids = bool(regs["course_id"].notna().any())
    course_codes = pd.factorize(regs["course_id"])[0] if has_ids else regs["_rank"].to_numpy()
    core = pd.DataFrame(
        {
            "patient_id": pd.factorize(regs["patient_id"])[0],
            "course_id": pd.array(np.where(course_codes < 0, 0, course_codes), dtype="Int64"),
            "_course_key": course_codes,
            "date": regs["date"].to_numpy(),
            "_rank": regs["_rank"].to_numpy(),
            "_src": regs["_src"].to_numpy(),
            "_line": regs["_line"].to_numpy(),
        }
    )
    if has_ids:
        core.loc[course_codes < 0, "course_id"] = pd.NA
    findings: list[pd.DataFrame] = []

    def drop(bad: np.ndarray) -> None:
        keep[np.flatnonzero(keep)[bad]] = False

    def kept() -> pd.DataFrame:
        return core if keep.all() else core.loc[keep]

    for check in (lambda c: check_dates(c, ext_date, sources), lambda c: check_duplicates(c, sources)):
        bad, found = check(kept())
        drop(bad)
        findings += found
    if has_ids:
        _, bad, found = assign_courses(kept(), sources)
    else:
        sub = regs.loc[keep, ["patient_id", "kind", "date", "_src", "_line"]].reset_index(drop=True)
        ids, bad, found = assign_courses(sub, sources)
        regs.loc[keep, "course_id"] = ids.to_numpy()
        core.loc[keep, "course_id"] = pd.factorize(ids)[0]
    drop(bad)
    findings += found
    bad, found = check_course_order(kept(), sources)
    drop(bad)
    return keep, findings + found


def _courses(accepted: pd.DataFrame, ext_date: pd.Timestamp) -> pd.DataFrame:
    """The course table, summarised from a narrow view of the registrations (only the columns it needs)."""
    narrow = accepted[["course_id", "patient_id", "unit_id", "date", "kind", "status", "age"]]
    courses = summarise_courses(narrow, ext_date)
    courses["course_id"] = courses["course_id"].astype(TEXT)
    return courses.reset_index(drop=True)


def _patients(regs: pd.DataFrame) -> pd.DataFrame:
    """One row per patient (order of first appearance) with the first non-missing sex in date order.

    Nobody in an extract has opted out (``reserved`` is False): the register leaves them out of deliveries.
    """
    codes, uniques = pd.factorize(regs["patient_id"])
    sex = regs["sex"].to_numpy(dtype=np.float64, na_value=np.nan)
    ok = ~np.isnan(sex) & (codes >= 0)
    date = regs["date"].to_numpy(dtype="datetime64[ns]")[ok]
    order = np.lexsort((date, codes[ok]))
    c_sorted = codes[ok][order]
    first = np.ones(len(c_sorted), dtype=bool)
    first[1:] = c_sorted[1:] != c_sorted[:-1]
    sex_of = np.full(len(uniques), np.nan)
    sex_of[c_sorted[first]] = sex[ok][order][first]
    return pd.DataFrame(
        {
            "patient_id": pd.array(uniques, dtype=TEXT),
            "sex": pd.array(sex_of, dtype="Float64").astype("Int64"),
            "reserved": np.zeros(len(uniques), dtype=bool),
        }
    )


def read_table(path: str | Path) -> pd.DataFrame:
    """Read one table from SPSS ``.sav``, Stata ``.dta``, ``.parquet`` or an MRS ``.csv``.

    SPSS and Stata value labels are not applied (codes stay codes, like the codebook); use
    ``pyreadstat`` directly for the label metadata. A ``.csv`` is read as an MRS dump (``;``, decimal comma
    left as text: type it with the codebook through :func:`read_extract`).

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.parquet"
    >>> pd.DataFrame({"x": [1, 2]}).to_parquet(p)
    >>> read_table(p)["x"].tolist()
    [1, 2]
    """
    path = Path(path)
    if not path.exists():
        raise ExtractError(f"{path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".sav", ".zsav", ".dta"):
            import pyreadstat

            reader = pyreadstat.read_dta if suffix == ".dta" else pyreadstat.read_sav
            df, _ = reader(str(path))
            return df
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except ExtractError:
        raise
    except Exception as exc:  # the readers raise their own error types for broken files
        raise ExtractError(f"{path.name}: cannot be read as {suffix} ({type(exc).__name__}: {exc})") from exc
    if suffix == ".csv":
        raw = parse_csv(read_file_bytes(path), path.name)
        problems = [
            (line, "wrong_field_count", f"{n} fields, expected {raw.expected_fields}")
            for line, n in raw.bad_rows
        ]
        if problems or raw.damaged:  # a table read on its own has no report: the first damaged line stops it
            line, rule, message = min(problems + raw.damaged)
            message = message.split("; ")[0]  # without what read_extract does next (reject, read on)
            raise FileProblem(f"{path.name} line {line}: {message}", file=path.name, line=line, rule=rule)
        return raw.table.to_pandas(types_mapper=lambda t: pd.StringDtype("pyarrow")).set_axis(
            pd.Index(raw.lines, name="line")
        )
    raise ExtractError(f"{path.name}: unknown table format {suffix!r}; expected .sav, .dta, .parquet or .csv")
