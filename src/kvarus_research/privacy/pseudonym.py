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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kvarus_research.errors import PrivacyError
from kvarus_research.privacy.dates import age_in_years
from kvarus_research.privacy.keys import PseudonymKey, as_key, keyed_pseudonyms
from kvarus_research.privacy.national_id import national_id

#: Columns holding a national identity number (dropped after deriving age).
NATIONAL_ID_COLUMNS: tuple[str, ...] = ("Fodselsnummer", "fodselsnummer", "national_id", "PasientFnr")
#: Columns holding a birth date (dropped after deriving age).
BIRTH_DATE_COLUMNS: tuple[str, ...] = ("birth_date", "Fodselsdato", "FodselsDato")
ID_TABLES: tuple[str, ...] = ("patients", "courses", "registrations", "network_work")
KIND_RANK = {"baseline": 0, "measurement": 1, "ending": 2, "followup": 3}


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


def _registration_order(codes: np.ndarray, dates: np.ndarray | None, kinds: np.ndarray | None) -> np.ndarray:
    """The registrations' order by course code, then day of the date (missing first), then kind, then row.

    One int64 key, built in place (registrations run to millions of rows): bits 24 and up hold the course code
    + 1, bits 3-23 the day counted from the first date + 1 (0 = no date), bits 0-2 the kind's rank. The kind
    only decides between registrations of one course on one day, so it is looked up for those rows only, and
    the few of them are sorted again (the same order as with the kind in every key: it never outweighs a day).
    """
    key = np.add(codes, 1, dtype=np.int64)
    key <<= 24
    if dates is not None:
        per_day = int(np.timedelta64(1, "D") // np.timedelta64(1, np.datetime_data(dates.dtype)[0]))
        ticks = dates.view(np.int64)
        known = ticks != np.iinfo(np.int64).min  # NaT
        days = np.floor_divide(ticks, per_day)
        if known.any():
            days -= days[known].min() - 1
        np.putmask(days, ~known, 0)
        np.clip(days, 0, 2**20, out=days)
        days <<= 3
        key += days
        del days, known
    order = np.argsort(key, kind="stable")  # stable: ties keep the original order
    if kinds is not None and len(key) > 1:
        ordered = key[order]
        tie = np.flatnonzero(ordered[1:] == ordered[:-1])
        del ordered
        if len(tie):
            rows = np.unique(np.r_[order[tie], order[tie + 1]])
            kcodes, kuniq = pd.factorize(kinds[rows])
            rank = np.array([KIND_RANK.get(k, 7) for k in kuniq] + [7], dtype=np.int64)
            key[rows] += rank[kcodes]
            order = np.argsort(key, kind="stable")
    return order


def _registration_pseudonyms(
    codes: np.ndarray,
    names: np.ndarray,
    dates: np.ndarray | None = None,
    kinds: np.ndarray | None = None,
) -> pd.arrays.ArrowStringArray:
    """Course pseudonym + '-' + order within the course by (date, kind, original order), one per registration.

    ``codes`` index ``names`` (the course pseudonyms; -1 = no course), ``dates`` are datetime64 values and
    ``kinds`` the registration kinds (plain arrays: safe to use outside the DataFrame).
    """
    codes = np.asarray(codes, dtype=np.int64)
    n = len(codes)
    order = _registration_order(codes, dates, kinds)
    # a registration's rank is its position in the sorted order minus the position its course's run starts at
    ordered = codes[order]
    change = np.empty(n, dtype=bool)
    if n:
        change[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=change[1:])
    del ordered
    run_start = np.arange(n, dtype=np.int64)
    run_start *= change
    np.maximum.accumulate(run_start, out=run_start)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1, dtype=np.int64) - run_start
    del order, run_start
    return _join_names(names, codes, rank)


def _join_names(names: np.ndarray, codes: np.ndarray, rank: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``names[codes] + "-" + rank`` as an Arrow string array (null where ``codes < 0``), built without Python
    strings: names of one width and ranks zero-padded to one width are laid out in one byte buffer."""
    n = len(codes)
    valid = codes >= 0
    digits = 4  # fixed, so the same registration keeps the same pseudonym in every delivery
    if names.dtype.kind == "S":  # fixed-width bytes, as kept by keyed_pseudonyms: all of one width
        fixed = names
        uniform = bool(len(names))
    else:
        fixed = np.array(names, dtype="S") if len(names) else np.zeros(0, dtype="S1")
        uniform = (
            len(names) and len({len(x) for x in names[:1000]}) == 1 and fixed.dtype.itemsize == len(names[0])
        )
    if uniform and (not n or rank.max() < 10**digits):
        width = fixed.dtype.itemsize
        buf = np.empty((n, width + 1 + digits), dtype=np.uint8)
        if len(names):  # gather whole fixed-width names straight into the buffer (code -1 clips to 0: null)
            np.take(fixed.view(np.uint8).reshape(-1, width), codes, axis=0, out=buf[:, :width], mode="clip")
        else:
            buf[:, :width] = 0
        buf[:, width] = ord("-")
        r = rank.astype(np.uint16)  # rank < 10**4 here: 16-bit division is cheaper
        for i in range(digits - 1, -1, -1):
            r, rem = np.divmod(r, np.uint16(10))
            buf[:, width + 1 + i] = rem + 48
        row = width + 1 + digits
        offsets = pa.py_buffer(np.arange(0, (n + 1) * row, row, dtype=np.int32).tobytes())
        validity = pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
        arr = pa.Array.from_buffers(pa.string(), n, [validity, offsets, pa.py_buffer(buf)])
        return pd.arrays.ArrowStringArray(arr)
    if names.dtype.kind == "S":
        names = names.astype(str).astype(object)
    dictionary = pa.array(np.asarray(names, dtype=object), pa.string())
    prefix = pa.DictionaryArray.from_arrays(pa.array(codes, mask=~valid), dictionary).cast(pa.string())
    ranks = pc.utf8_lpad(pc.cast(pa.array(rank), pa.string()), digits, "0")
    joined = pc.binary_join_element_wise(prefix, ranks, "-")
    return pd.arrays.ArrowStringArray(joined)


def _submit_registration_ids(
    pool: ThreadPoolExecutor, regs: pd.DataFrame | None, codes: dict[tuple[str, str], Any]
) -> Future | None:
    """Start building the registration pseudonyms in ``pool`` (None when the registrations have no id).

    The dates and kinds are taken out of the DataFrame here, so the worker never reads a table that this thread
    goes on changing.
    """
    if regs is None or "registration_id" not in regs.columns:
        return None
    if ("registrations", "course_id") not in codes:
        raise PrivacyError(
            "registrations have a registration_id but no course_id to derive its pseudonym from"
        )
    dates = None
    if "date" in regs.columns:
        dates = regs["date"].to_numpy()
        if dates.dtype.kind != "M":
            dates = pd.to_datetime(regs["date"]).to_numpy()
    kinds = regs["kind"].to_numpy() if "kind" in regs.columns else None
    course_codes, course_names = codes[("registrations", "course_id")]
    return pool.submit(_registration_pseudonyms, course_codes, course_names, dates, kinds)


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
        registration_ids = _submit_registration_ids(pool, tables.get("registrations"), codes)
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
