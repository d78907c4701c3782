"""Keyed pseudonyms for every identifier of a Registry (pseudonymisering).

:func:`pseudonymize` replaces, consistently across all tables:

================  ==========================================================================================
id                pseudonym
================  ==========================================================================================
``patient_id``    ``P`` + 16 hex digits of HMAC-SHA-256(key, "patient" ‖ id), in every table
``course_id``     ``C`` + 16 hex digits of HMAC-SHA-256(key, "course" ‖ id), in courses and registrations
``registration``  the course pseudonym + ``-`` + its 4-digit order within the course (date, then kind)
``case_id``       ``N`` + 16 hex digits of HMAC-SHA-256(key, "case" ‖ id) (network work)
================  ==========================================================================================

Identity numbers (``Fodselsnummer``) and birth dates are dropped, after the age at course start has been derived
from them where it is missing. The same key gives the same pseudonyms in every delivery; a different key gives
unlinkable ones. The HMAC is computed once per unique id. An optional linkage key file (koblingsnøkkel: original id
→ pseudonym) is written only to a path the caller names, never inside the output folder.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.errors import PrivacyError
from kvarus_research.privacy.dates import age_in_years
from kvarus_research.privacy.keys import PseudonymKey, as_key, keyed_pseudonyms
from kvarus_research.privacy.national_id import national_id
from kvarus_research.privacy.registration_ids import submit_registration_ids
from kvarus_research.registry.schema import tables_with

#: Columns holding a national identity number (dropped after deriving age).
NATIONAL_ID_COLUMNS: tuple[str, ...] = ("Fodselsnummer", "fodselsnummer", "national_id", "PasientFnr")
#: Columns holding a birth date (dropped after deriving age).
BIRTH_DATE_COLUMNS: tuple[str, ...] = ("birth_date", "Fodselsdato", "FodselsDato")
#: The tables holding identifiers (declared in :mod:`kvarus_research.registry.schema`).
ID_TABLES: tuple[str, ...] = tables_with("id")


@dataclass
class PseudonymizationReport:
    """What :func:`pseudonymize` did, in counts only (no identifier, no key).

    Attributes
    ----------
    unique_ids : dict
        Id kind → number of unique ids replaced.
    replaced_columns : list of str
        ``table.column`` of every replaced id column.
    dropped_columns : list of str
        ``table.column`` of every dropped identity-number or birth-date column.
    ages_derived : int
        Course ages at start filled from a birth date or identity number.
    invalid_national_ids : int
        Identity numbers that did not validate, counted when they were needed to derive a missing age.
    linkage_rows : int
        Rows written to the linkage key file (0 when none was asked for).
    validation_dropped : bool
        Whether the registry's validation report was removed (it quotes rejected values, which can be ids).
    """

    unique_ids: dict[str, int] = field(default_factory=dict)
    replaced_columns: list[str] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)
    ages_derived: int = 0
    invalid_national_ids: int = 0
    linkage_rows: int = 0
    validation_dropped: bool = False

    def to_frame(self) -> pd.DataFrame:
        """The report as a two-column table (``item``, ``count``)."""
        rows = [(f"unique {k} ids replaced", v) for k, v in self.unique_ids.items()]
        rows += [("id columns replaced", len(self.replaced_columns))]
        rows += [("identity-number/birth-date columns dropped", len(self.dropped_columns))]
        rows += [("ages at course start derived", self.ages_derived)]
        rows += [("invalid identity numbers", self.invalid_national_ids)]
        rows += [("linkage key rows written", self.linkage_rows)]
        rows += [("validation report removed", int(self.validation_dropped))]
        return pd.DataFrame(rows, columns=["item", "count"])

    def to_text(self) -> str:
        """The report as readable lines."""
        lines = [f"{item}: {count}" for item, count in self.to_frame().itertuples(index=False)]
        lines.append("replaced: " + ", ".join(self.replaced_columns))
        if self.dropped_columns:
            lines.append("dropped: " + ", ".join(self.dropped_columns))
        return "\n".join(lines)


def _birth_dates(reg: Any, report: PseudonymizationReport) -> pd.Series | None:
    """Birth date per patient id from a birth-date or identity-number column (patients first, then registrations)."""
    for name in ("patients", "registrations"):
        df = getattr(reg, name, None)
        if df is None or "patient_id" not in df.columns:
            continue
        for col in BIRTH_DATE_COLUMNS:
            if col in df.columns:
                births = pd.Series(pd.to_datetime(df[col]).to_numpy(), index=df["patient_id"].to_numpy())
                return births.dropna()
        for col in NATIONAL_ID_COLUMNS:
            if col in df.columns:
                firsts = df[["patient_id", col]].dropna().drop_duplicates("patient_id")
                parsed = national_id(firsts[col].astype(str))
                report.invalid_national_ids += int((~parsed["valid"]).sum())
                births = pd.Series(parsed["birth_date"].to_numpy(), index=firsts["patient_id"].to_numpy())
                return births.dropna()
    return None


def _derive_ages(reg: Any, report: PseudonymizationReport) -> pd.DataFrame:
    """Courses with ``age_at_start`` filled from birth dates (or identity numbers) where it is missing."""
    courses = reg.courses
    if "age_at_start" in courses.columns:
        age = courses["age_at_start"]
    else:
        age = pd.Series(pd.NA, index=courses.index, dtype="Int64")
    need = age.isna().to_numpy()
    if not need.any():
        return courses
    births = _birth_dates(reg, report)
    if births is None:
        return courses
    births = births[~births.index.duplicated()]
    courses = courses.copy(deep=False)
    b = births.reindex(courses.loc[need, "patient_id"]).to_numpy()
    derived = age_in_years(b, courses.loc[need, "start_date"].to_numpy())
    age = age.astype("Int64").copy()
    age[need] = derived.to_numpy()
    report.ages_derived = int(derived.notna().sum())
    courses["age_at_start"] = age
    return courses


def _course_rows(reg_codes: np.ndarray, course_codes: np.ndarray, n_names: int) -> np.ndarray:
    """For each registration, the row of its course in the course table (-1 when absent or ambiguous).

    ``reg_codes`` and ``course_codes`` index the same list of ``n_names`` course pseudonyms (-1 = missing).
    """
    valid = course_codes >= 0
    if (
        np.bincount(course_codes[valid], minlength=n_names) > 1
    ).any():  # duplicated course ids: no unique row
        return np.full(len(reg_codes), -1, dtype=np.int64)
    row_of = np.full(n_names + 1, -1, dtype=np.int64)
    row_of[course_codes[valid]] = np.flatnonzero(valid)
    return row_of[np.where(reg_codes >= 0, reg_codes, n_names)]


def _write_linkage(
    path: Path, output_dir: str | Path | None, original: pd.Series, pseudonym: pd.Series
) -> int:
    path = Path(path).resolve()
    if output_dir is not None:
        out = Path(output_dir).resolve()
        if path == out or out in path.parents:
            raise PrivacyError(
                f"the linkage key file must not lie inside the output folder {out}; name a separate, protected path"
            )
    if path.exists():
        raise PrivacyError(f"linkage key file {path} already exists; it is never overwritten")
    link = pd.DataFrame(
        {"original_id": original.to_numpy(), "pseudonym": pseudonym.to_numpy()}
    ).drop_duplicates()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        link.to_csv(fh, index=False)
    return len(link)


def pseudonymize(
    registry: Any,
    key: PseudonymKey | bytes | str | Path | None = None,
    *,
    linkage_path: str | Path | None = None,
    output_dir: str | Path | None = None,
) -> tuple[Any, PseudonymizationReport]:
    """Replace every identifier of a Registry by a keyed pseudonym (see the module docstring).

    Parameters
    ----------
    registry : Registry
    key : PseudonymKey, bytes, str or Path, optional
        The project key, raw key bytes, or the path of a key file; ``None`` reads ``KVARUS_PSEUDONYM_KEY``.
    linkage_path : path, optional
        Where to write the linkage key file (original patient id → pseudonym); refused inside ``output_dir``.
    output_dir : path, optional
        The folder the pseudonymised extract goes to (only used to refuse a linkage file inside it).

    Returns
    -------
    (Registry, PseudonymizationReport)

    Raises
    ------
    PrivacyError
        Missing or weak key, or a linkage file inside the output folder.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> reg = kr.synthetic.generate(n_courses=50, seed=1)
    >>> pseu, report = pseudonymize(reg, bytes(range(40)))
    >>> bool(pseu.courses["patient_id"].str.fullmatch("P[0-9a-f]{16}").all()), "birth_date" in pseu.patients
    (True, False)
    >>> report.unique_ids["course"] == len(reg.courses)
    True
    """
    k = as_key(key)
    report = PseudonymizationReport()
    courses = _derive_ages(registry, report)
    tables: dict[str, pd.DataFrame] = {
        name: df.copy(deep=False) for name in ID_TABLES if (df := getattr(registry, name, None)) is not None
    }
    tables["courses"] = courses.copy(deep=False)  # shallow: columns are replaced, never modified in place
    with_pid = [n for n in ID_TABLES if n in tables and "patient_id" in tables[n].columns]
    original_patients = None
    if linkage_path is not None:
        original_patients = pd.concat([tables[n]["patient_id"] for n in with_pid], ignore_index=True)

    codes: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    def replace_ids(
        column: str, domain: str, prefix: str, names: tuple[str, ...], extra=None
    ) -> list[pd.Series]:
        present = [n for n in names if n in tables and column in tables[n].columns]
        if not present:
            return []
        columns = [tables[n][column] for n in present] + ([extra] if extra is not None else [])
        new, n_unique = keyed_pseudonyms(columns, k, domain=domain, prefix=prefix)
        for n, col in zip(present, new):
            tables[n][column] = col
            codes[(n, column)] = col.attrs["pseudonym_codes"]
            report.replaced_columns.append(f"{n}.{column}")
        report.unique_ids[domain] = n_unique
        return new[len(present) :]

    replace_ids("course_id", "course", "C", ("courses", "registrations"))
    # The registration ids need only the course pseudonyms: they are built in a worker thread (NumPy releases
    # the GIL for the sorting and gathering) while this thread hashes the patient ids.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kvarus-pseudonyms") as pool:
        registration_ids = submit_registration_ids(pool, tables.get("registrations"), codes)
        # registrations.patient_id: taken from the registration's course where it agrees with the course's patient
        # (one 5-million-row hash pass saved); rows that disagree or lack a course are hashed directly.
        regs = tables.get("registrations")
        via_course = None
        if regs is not None and "patient_id" in regs.columns and "course_id" in regs.columns:
            reg_codes, course_names = codes[("registrations", "course_id")]
            if ("courses", "course_id") in codes:
                via_course = _course_rows(reg_codes, codes[("courses", "course_id")][0], len(course_names))
            else:
                via_course = np.full(len(regs), -1, dtype=np.int64)
            own = regs["patient_id"].to_numpy(dtype=object)
            course_pid = tables["courses"]["patient_id"].to_numpy(dtype=object)
            ok = via_course >= 0
            if ok.all():  # every registration has its course: no masked copies of the 5-million-row columns
                ok = np.asarray(own == course_pid[via_course], dtype=bool)
            else:
                ok[ok] = own[ok] == course_pid[via_course[ok]]
            rest = regs["patient_id"][~ok]
            names = ("patients", "courses", "network_work")
            (fallback,) = replace_ids("patient_id", "patient", "P", names, extra=rest)
            new_course_pid = tables["courses"]["patient_id"].to_numpy(dtype=object)
            if ok.all():
                new_pid = new_course_pid[via_course]
            else:
                new_pid = np.empty(len(regs), dtype=object)
                new_pid[ok] = new_course_pid[via_course[ok]]
                new_pid[~ok] = fallback.to_numpy(dtype=object)
            regs["patient_id"] = new_pid
            report.replaced_columns.append("registrations.patient_id")
        else:
            replace_ids("patient_id", "patient", "P", ID_TABLES)
        replace_ids("case_id", "case", "N", ("network_work",))
        if registration_ids is not None:
            regs = tables["registrations"]
            regs["registration_id"] = pd.Series(
                registration_ids.result(), index=regs.index, name="registration_id"
            )
            report.unique_ids["registration"] = int(regs["registration_id"].notna().sum())
            report.replaced_columns.append("registrations.registration_id")
    for name, df in tables.items():
        drop = [c for c in df.columns if c in NATIONAL_ID_COLUMNS or c in BIRTH_DATE_COLUMNS]
        if drop:
            tables[name] = df.drop(columns=drop)
            report.dropped_columns += [f"{name}.{c}" for c in drop]
    if linkage_path is not None and original_patients is not None:
        new_patients = pd.concat([tables[n]["patient_id"] for n in with_pid], ignore_index=True)
        report.linkage_rows = _write_linkage(linkage_path, output_dir, original_patients, new_patients)
    meta = {**registry.meta, "pseudonymized": True}
    # the validation report quotes rejected values (which can be ids): it does not travel with the pseudonyms
    report.validation_dropped = registry.validation is not None
    return replace(registry, meta=meta, validation=None, **tables), report
