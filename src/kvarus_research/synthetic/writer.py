"""``write_extract()``: a registry as an MRS extract folder (DataDump CSV files, rapport.xlsx, supplements).

Layout (domain.md §3)::

    <path>/<YYYY-MM-DD>/DataDump_Prod_<form>_<YYYY-MM-DD>_<HHMM>.csv   one file per codebook form
    <path>/<YYYY-MM-DD>/rapport.xlsx                                    the codebook in MRS format
    <path>/<YYYY-MM-DD>/enheter.csv                                     supplement: UnitId;db_unit_title;region;setting
    <path>/<YYYY-MM-DD>/dekningsgrad.csv                                supplement: UnitId;year;expected_courses;reserved_courses

Every CSV file: UTF-8 with BOM, ``;`` separated, CRLF line ends, a header of codebook variable names, an empty
unnamed column at the end of every line, decimal comma, dates ``dd.mm.YYYY``, booleans ``1``/``0`` with ``-1``
for missing, a missing enum value as the variable's first missing code (``0`` = "velg verdi"), other missing
values empty. Text values containing ``;``, ``"`` or a line break are quoted. Opted-out patients are not written
(a real extract never contains them); only their course counts appear in ``dekningsgrad.csv``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from tqdm.auto import tqdm

from kvarus_research.codebook import Codebook, Variable
from kvarus_research.codebook.rapport import write_rapport
from kvarus_research.registry import Registry
from kvarus_research.synthetic.ids import tenor_national_ids

BOM = b"\xef\xbb\xbf"
EOL = "\r\n"
CHUNK_ROWS = 500_000
#: registry column holding the value of each codebook role
ROLE_SOURCE: dict[str, str] = {
    "patient_id": "patient_id",
    "course_id": "course_id",
    "unit_id": "unit_id",
    "unit_name": "unit_name",
    "age": "age",
    "sex": "sex",
    "date": "date",
    "status": "status",
}
#: registration kinds each form kind holds
FORM_ROWS: dict[str, tuple[str, ...]] = {
    "baseline": ("baseline",),
    "status": ("measurement", "ending", "followup"),
    "measurement": ("measurement",),
    "ending": ("ending",),
    "followup": ("followup",),
}
NATIONAL_ID_COLUMN = "Fodselsnummer"


def _strings(values: Any) -> pa.Array:
    return pa.array(values, type=pa.string(), from_pandas=True)


def _validity(mask: np.ndarray) -> pa.Buffer | None:
    return pa.py_buffer(np.packbits(~mask, bitorder="little")) if mask.any() else None


def _date_text(values: np.ndarray, mask: np.ndarray) -> pa.Array:
    """``dd.mm.YYYY`` from datetime64 values, built digit by digit (pyarrow's strftime is ~100x slower)."""
    d = values.astype("datetime64[D]")
    d = np.where(mask, np.datetime64("2000-01-01"), d)
    year = d.astype("datetime64[Y]").astype(np.int64) + 1970
    month = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    buf = np.empty((len(d), 10), dtype=np.uint8)
    for col, digits in (
        (0, day // 10),
        (1, day % 10),
        (3, month // 10),
        (4, month % 10),
        (6, year // 1000),
        (7, year // 100 % 10),
        (8, year // 10 % 10),
        (9, year % 10),
    ):
        buf[:, col] = 48 + digits
    buf[:, 2] = buf[:, 5] = ord(".")
    fixed = pa.Array.from_buffers(pa.binary(10), len(d), [_validity(mask), pa.py_buffer(buf)])
    return pc.cast(pc.cast(fixed, pa.binary()), pa.string())


def _int_text(
    values: np.ndarray, mask: np.ndarray, render: Callable[[np.ndarray], list[str]] = None
) -> pa.Array:
    """Integers as text through a table of the distinct values (a few ``take`` calls instead of a cast per row)."""
    vals = np.where(mask, 0, values).astype(np.int64)
    if len(vals) == 0:
        return pa.array([], type=pa.string())
    lo, hi = int(vals.min()), int(vals.max())
    if hi - lo < 200_000:
        table, index = np.arange(lo, hi + 1), vals - lo
    else:
        table, index = np.unique(vals, return_inverse=True)
    texts = pa.array(render(table) if render else table.astype(str).tolist(), type=pa.string())
    return pc.take(
        texts, pa.Array.from_buffers(pa.int64(), len(index), [_validity(mask), pa.py_buffer(index)])
    )


def _float_text(values: np.ndarray, mask: np.ndarray) -> pa.Array:
    """Floats with a decimal comma; values with at most 3 decimals go through :func:`_int_text`."""
    vals = np.where(mask, 0.0, values)
    for decimals in range(4):
        scaled = np.round(vals * 10**decimals)
        if np.all(np.abs(scaled - vals * 10**decimals) < 1e-6) and np.all(np.abs(scaled) < 2**53):

            def render(table: np.ndarray, k: int = decimals) -> list[str]:
                out = []
                for t in table.tolist():
                    sign, t = ("-" if t < 0 else ""), abs(t)
                    whole, frac = divmod(t, 10**k) if k else (t, 0)
                    out.append(
                        f"{sign}{whole},{str(frac).zfill(k).rstrip('0')}".rstrip(",") if k else f"{sign}{t}"
                    )
                return out

            return _int_text(scaled.astype(np.int64), mask, render)
    arr = pa.array(vals, type=pa.float64(), mask=mask)
    return pc.replace_substring(pc.cast(arr, pa.string()), ".", ",")


def _format(var: Variable, column: pd.Series) -> pa.Array:
    """One column as MRS text: the codebook type decides the format."""
    mask = column.isna().to_numpy()
    if var.type in ("date", "datetime"):
        values = pd.to_datetime(column).to_numpy(dtype="datetime64[s]")
        if var.type == "date":
            return _date_text(values, mask)
        ts = pa.array(values, type=pa.timestamp("s"), mask=mask)
        return pc.strftime(ts, format="%d.%m.%Y %H:%M:%S")
    if var.type == "boolean":
        b = column.astype("boolean")
        return _int_text(
            np.where(mask, -1, b.fillna(False).to_numpy(dtype=bool)), np.zeros(len(b), dtype=bool)
        )
    if var.type in ("enum", "integer"):
        vals = pd.to_numeric(column).astype("Int64").to_numpy(dtype=np.int64, na_value=0)
        if var.type == "enum" and var.missing_codes:
            vals = np.where(mask, int(var.missing_codes[0]), vals)
            mask = np.zeros(len(vals), dtype=bool)
        return _int_text(vals, mask)
    if var.type == "float":
        return _float_text(
            pd.to_numeric(column).astype("Float64").to_numpy(dtype=np.float64, na_value=0.0), mask
        )
    return _strings(column.astype(object).where(~mask, None).to_numpy())


def _write_csv(
    path: Path,
    names: list[str],
    n_rows: int,
    chunk: Callable[[int, int], list[pa.Array]],
    text_columns: list[bool] | None = None,
) -> None:
    """Header with BOM, then the rows chunk by chunk through pyarrow; every line ends with an empty column.

    ``text_columns`` marks the columns that may need quoting (all when not given)."""
    text_columns = text_columns if text_columns is not None else [True] * len(names)
    with path.open("wb") as fh:
        fh.write(BOM + (";".join(names) + ";" + EOL).encode("utf-8"))
        for lo in range(0, n_rows, CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, n_rows)
            arrays = chunk(lo, hi)
            arrays.append(pa.nulls(hi - lo, type=pa.string()))
            table = pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])
            # only free text can hold a separator, a quote or a line break; numbers and dates never do
            special = any(
                pc.any(pc.match_substring_regex(a, r'[;"\r\n]')).as_py()
                for a, free in zip(arrays, text_columns, strict=False)
                if free and len(a)
            )
            opts = pacsv.WriteOptions(
                include_header=False, delimiter=";", eol=EOL, quoting_style="needed" if special else "none"
            )
            pacsv.write_csv(table, fh, opts)


def _national_ids(registry: Registry, seed: int) -> pd.Series:
    """A Tenor-range synthetic national id per patient id (stable for the same registry).

    Patients of ``registry.patients`` get a number matching their ``birth_date`` and sex; patients found only in
    other tables (e.g. network work) get a birth date drawn between 1920 and 1981 and the sex recorded there.
    """
    rng = np.random.default_rng([seed, 8080])
    sex_var = registry.codebook.by_role("sex")
    male_code = 1
    if sex_var is not None:
        male_code = next((c for c in sex_var.valid_codes if sex_var.code_label(c, "en") == "Male"), 1)

    def is_male(sex: pd.Series | None, n: int) -> np.ndarray:
        if sex is None:
            return rng.random(n) < 0.5
        return pd.to_numeric(sex, errors="coerce").astype("Int64").fillna(male_code).to_numpy() == male_code

    pats = registry.patients
    parts = []
    if "birth_date" in pats.columns and len(pats):
        births = pats["birth_date"].to_numpy(dtype="datetime64[D]")
        male = is_male(pats["sex"] if "sex" in pats.columns else None, len(pats))
        parts.append(pd.Series(tenor_national_ids(rng, births, male), index=pats["patient_id"].to_numpy()))
    known = pd.Index(parts[0].index) if parts else pd.Index([])
    for table in (registry.registrations, registry.network_work):
        if table is None or not len(table):
            continue
        first = table.drop_duplicates("patient_id")
        first = first.loc[~first["patient_id"].isin(known)]
        if len(first):
            births = np.datetime64("1920-01-01") + rng.integers(0, 62 * 365, len(first)).astype(
                "timedelta64[D]"
            )
            male = is_male(first["sex"] if "sex" in first.columns else None, len(first))
            parts.append(
                pd.Series(tenor_national_ids(rng, births, male), index=first["patient_id"].to_numpy())
            )
            known = known.append(pd.Index(first["patient_id"]))
    return pd.concat(parts) if parts else pd.Series(dtype=object)


def _form_rows(
    registry: Registry, kind: str, keep: dict[str, np.ndarray]
) -> tuple[pd.DataFrame, np.ndarray] | None:
    """The table a form's rows come from and the positions of those rows (opted-out patients left out)."""
    if kind == "network_work":
        table = registry.network_work
        return None if table is None else (table, np.flatnonzero(keep["network_work"]))
    kinds = FORM_ROWS.get(kind)
    if kinds is None:
        return None
    regs = registry.registrations
    return regs, np.flatnonzero(regs["kind"].isin(kinds).to_numpy() & keep["registrations"])


def _kept_rows(registry: Registry) -> dict[str, np.ndarray]:
    """Rows of registrations and network work that do not belong to an opted-out patient."""
    out = {"registrations": np.ones(len(registry.registrations), dtype=bool)}
    out["network_work"] = np.ones(
        0 if registry.network_work is None else len(registry.network_work), dtype=bool
    )
    reserved = registry.reserved_patients()
    if len(reserved):
        out["registrations"] = ~registry.registrations["patient_id"].isin(reserved).to_numpy()
        if registry.network_work is not None:
            out["network_work"] = ~registry.network_work["patient_id"].isin(reserved).to_numpy()
    return out


def write_extract(
    registry: Registry,
    path: str | Path,
    *,
    raw: bool = False,
    extract_time: str | datetime | pd.Timestamp | None = None,
    environment: str = "Prod",
    progress: bool = False,
) -> Path:
    """Write a registry as an MRS-format extract folder (see the module docstring for the exact format).

    Parameters
    ----------
    registry : Registry
        Usually from :func:`kvarus_research.synthetic.generate`. Opted-out patients are left out.
    path : str or Path
        Parent folder; the extract goes to ``path/<YYYY-MM-DD>/``.
    raw : bool
        Add a ``Fodselsnummer`` column after ``PasientGUID`` with synthetic national identity numbers
        (checksum-valid, Tenor test range: month + 80, never a real person's), one per patient, for testing
        pseudonymisation.
    extract_time : str, datetime or Timestamp, optional
        Date and time in the folder and file names; defaults to the registry's extract date at 00:00 (never the
        clock, so the same registry gives byte-identical files).
    environment : str
        ``"Prod"`` or ``"QA"`` in the file names.
    progress : bool
        Show a progress bar over the files.

    Returns
    -------
    Path
        The extract folder ``path/<YYYY-MM-DD>``.

    Examples
    --------
    >>> import tempfile, kvarus_research as kr
    >>> reg = kr.synthetic.generate(n_courses=50, seed=1)
    >>> folder = write_extract(reg, tempfile.mkdtemp())
    >>> sorted(p.name for p in folder.iterdir())[:2]
    ['DataDump_Prod_Basisopplysninger_2026-06-30_0000.csv', 'DataDump_Prod_Målepunkt_2026-06-30_0000.csv']
    >>> (folder / "enheter.csv").read_bytes()[:3] == b"\\xef\\xbb\\xbf"
    True
    """
    when = pd.Timestamp(extract_time) if extract_time is not None else pd.Timestamp(registry.extract_date)
    stamp, hhmm = when.strftime("%Y-%m-%d"), when.strftime("%H%M")
    folder = Path(path) / stamp
    folder.mkdir(parents=True, exist_ok=True)
    cb: Codebook = registry.codebook
    keep = _kept_rows(registry)
    unit_names = registry.units.drop_duplicates("unit_id").set_index("unit_id")["unit_name"]
    seed = registry.meta.get("seed", 0)
    seed = int(seed) if isinstance(seed, int | np.integer) else 0
    forms = [f for f in cb.forms if _form_rows(registry, f.kind, keep) is not None]
    id_map = _national_ids(registry, seed) if raw else None
    for form in tqdm(forms, desc="writing extract", disable=not progress):
        frame, rows = _form_rows(registry, form.kind, keep)
        if (
            "sex" not in frame.columns
            and "sex" in registry.patients.columns
            and "patient_id" in frame.columns
        ):
            # A registry read from an extract keeps sex on the patients table only: write it back on every form.
            sex_of = registry.patients.drop_duplicates("patient_id").set_index("patient_id")["sex"]
            frame = frame.assign(sex=frame["patient_id"].map(sex_of))
        sources: list[tuple[Variable, str | None]] = []
        for v in cb.form_variables(form.name):
            src = ROLE_SOURCE.get(v.role, v.name) if v.role else v.name
            sources.append((v, src if src in frame.columns or src == "unit_name" else None))
        names = [v.name for v, _ in sources]
        text_columns = [v.type in ("id", "text") for v, _ in sources]
        nid = None
        if raw:
            nid = frame["patient_id"].iloc[rows].map(id_map)
            at = names.index(cb.by_role("patient_id").name) + 1 if cb.by_role("patient_id") else 0
            names.insert(at, NATIONAL_ID_COLUMN)
            text_columns.insert(at, False)

        def chunk(
            lo: int,
            hi: int,
            frame: pd.DataFrame = frame,
            rows: np.ndarray = rows,
            sources: list = sources,
            nid: pd.Series | None = nid,
            names: list[str] = names,
        ) -> list[pa.Array]:
            wanted = list(dict.fromkeys(s for _, s in sources if s not in (None, "unit_name")))
            part = frame.iloc[rows[lo:hi]][wanted + (["unit_id"] if "unit_id" not in wanted else [])]
            arrays = []
            for v, src in sources:
                if src == "unit_name":
                    col = part["unit_id"].map(unit_names)
                elif src is None:
                    col = pd.Series(pd.NA, index=part.index, dtype=object)
                else:
                    col = part[src]
                arrays.append(_format(v, col))
            if nid is not None:
                arrays.insert(names.index(NATIONAL_ID_COLUMN), _strings(nid.iloc[lo:hi].to_numpy()))
            return arrays

        path_csv = folder / f"DataDump_{environment}_{form.name}_{stamp}_{hhmm}.csv"
        _write_csv(path_csv, names, len(rows), chunk, text_columns)
    write_rapport(cb, folder / "rapport.xlsx")
    _write_supplements(registry, folder)
    return folder


def _write_supplements(registry: Registry, folder: Path) -> None:
    units = registry.units
    text = lambda s: _strings(s.astype(object).where(s.notna(), None).to_numpy())  # noqa: E731
    _write_csv(
        folder / "enheter.csv",
        ["UnitId", "db_unit_title", "region", "setting"],
        len(units),
        lambda lo, hi: [
            pc.cast(pa.array(units["unit_id"].iloc[lo:hi].to_numpy()), pa.string()),
            *(
                text(units[c].iloc[lo:hi]) if c in units.columns else pa.nulls(hi - lo, pa.string())
                for c in ("unit_name", "region", "setting")
            ),
        ],
    )
    cov = registry.coverage
    if cov is None:
        return
    cols = ["unit_id", "year", "expected_courses", "reserved_courses"]
    _write_csv(
        folder / "dekningsgrad.csv",
        ["UnitId", "year", "expected_courses", "reserved_courses"],
        len(cov),
        lambda lo, hi: [
            pc.cast(
                pa.array(cov[c].iloc[lo:hi].astype("Int64"), type=pa.int64(), from_pandas=True), pa.string()
            )
            if c in cov.columns
            else pa.nulls(hi - lo, pa.string())
            for c in cols
        ],
    )
