"""Building the registry's tables from typed form tables: registrations, network work, units and coverage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kvarus_research.codebook.model import Codebook
from kvarus_research.codebook.schema import pandas_dtype
from kvarus_research.io.convert import convert_column
from kvarus_research.io.csv import parse_csv, read_file_bytes
from kvarus_research.io.forms import FormTable
from kvarus_research.io.validate import file_finding
from kvarus_research.registry.constants import KIND_ORDER, KINDS, SETTINGS, STATUS_ENDING, STATUS_FOLLOWUP

#: dtype of text and id columns (pandas ``string`` with pyarrow storage: fast for millions of rows).
TEXT = pd.StringDtype("pyarrow")
#: Canonical names of the structural roles in the registrations table.
ROLE_COLUMNS = ("course_id", "patient_id", "unit_id", "unit_name", "age", "sex", "date", "status")
#: Structural columns of the registrations and network-work tables built here.
STRUCTURAL = frozenset({"registration_id", "case_id", "kind", *ROLE_COLUMNS})
#: Column names accepted in ``dekningsgrad.csv`` for each coverage column.
COVERAGE_ALIASES = {
    "unit_id": ("unit_id", "unitid", "enhet", "enhetid"),
    "year": ("year", "aar", "år", "ar"),
    "expected_courses": ("expected_courses", "forventede_forlop", "forventet", "expected"),
    "reserved_courses": ("reserved_courses", "reserverte_forlop", "reservert", "reserved"),
}


def _structural(t: FormTable, cb: Codebook) -> tuple[dict[str, str], dict[str, pd.Series]]:
    """The file's column for each role, and the role columns themselves (NA when the form lacks one)."""
    n = len(t.data)
    names: dict[str, str] = {}  # role -> the file's column
    cols: dict[str, pd.Series] = {}
    for role in ROLE_COLUMNS:
        v = cb.by_role(role, t.form.name)
        if v is not None and v.name in t.data.columns:
            names[role] = v.name
            cols[role] = t.data[v.name]
        else:
            dtype = (
                "string"
                if role in ("course_id", "patient_id", "unit_name")
                else ("datetime64[ns]" if role == "date" else "Int64")
            )
            cols[role] = pd.Series(
                pd.array([None] * n, dtype=dtype)
                if dtype != "datetime64[ns]"
                else np.full(n, np.datetime64("NaT", "ns"))
            )
    return names, cols


def _text_array(arr: pa.Array) -> pd.arrays.ArrowStringArray:
    return pd.arrays.ArrowStringArray(arr.cast(pa.large_string()))


def _kind_rank(t: FormTable, status: pd.Series) -> np.ndarray:
    """Kind of each registration as its order (baseline 0, measurement 1, ending 2, followup 3)."""
    if t.form.kind != "status":
        return np.full(len(t.data), KIND_ORDER[t.form.kind], dtype=np.int8)
    code = status.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.select(
        [np.isin(code, list(STATUS_ENDING)), np.isin(code, list(STATUS_FOLLOWUP))],
        [KIND_ORDER["ending"], KIND_ORDER["followup"]],
        KIND_ORDER["measurement"],
    ).astype(np.int8)


def _ids(prefix: str, lines: np.ndarray) -> pd.arrays.ArrowStringArray:
    """``"<prefix>:<line>"`` for every line, vectorised."""
    joined = pc.binary_join_element_wise(f"{prefix}:", pc.cast(pa.array(lines), pa.string()), "")
    return _text_array(joined)


def _data_columns(t: FormTable, names: dict[str, str]) -> list[str]:
    role_cols = set(names.values())
    return [c for c in t.data.columns if c not in role_cols and not c.startswith("_")]


def registration_table(t: FormTable, cb: Codebook, src: int) -> pd.DataFrame:
    """The registrations of one form file, canonical columns first, plus bookkeeping columns.

    ``registration_id`` is ``"<table>:<line>"`` (the registration's place in the extract); ``_src`` is ``src``
    (the file's index), ``_line`` the line, ``_rank`` the kind's order, ``_rejected`` the codebook verdict.
    """
    names, cols = _structural(t, cb)
    lines = t.data["_line"].to_numpy()
    rank = _kind_rank(t, cols["status"])
    kind = pa.DictionaryArray.from_arrays(pa.array(rank), pa.array(list(KINDS))).cast(pa.string())
    out = pd.DataFrame(
        {
            "registration_id": _ids(t.form.table, lines),
            "course_id": cols["course_id"].astype(TEXT).array,
            "patient_id": cols["patient_id"].astype(TEXT).array,
            "unit_id": cols["unit_id"].astype("Int64").array,
            "kind": _text_array(kind),
            "date": cols["date"].to_numpy(dtype="datetime64[ns]"),
            "status": cols["status"].astype("Int64").array,
            "age": cols["age"].astype("Int64").array,
            "sex": cols["sex"].astype("Int64").array,
            "unit_name": cols["unit_name"].astype(TEXT).array,
        }
    )
    if "date" in names:
        out["date"] = out["date"].dt.normalize()
    for c in _data_columns(t, names):
        out[c] = t.data[c].array
    out["_src"] = np.int16(src)
    out["_line"] = lines
    out["_rank"] = rank
    out["_rejected"] = t.rejected
    return out


def network_table(t: FormTable, cb: Codebook, src: int) -> pd.DataFrame:
    """Network-work registrations of one file (``case_id`` is ``"<table>:<line>"``)."""
    names, cols = _structural(t, cb)
    lines = t.data["_line"].to_numpy()
    out = pd.DataFrame(
        {
            "case_id": _ids(t.form.table, lines),
            "patient_id": cols["patient_id"].astype(TEXT).array,
            "unit_id": cols["unit_id"].astype("Int64").array,
            "date": cols["date"].to_numpy(dtype="datetime64[ns]"),
            "sex": cols["sex"].astype("Int64").array,
            "unit_name": cols["unit_name"].astype(TEXT).array,
        }
    )
    for c in _data_columns(t, names):
        out[c] = t.data[c].array
    out["_src"] = np.int16(src)
    out["_line"] = lines
    out["_rejected"] = t.rejected
    return out


def date_column(t: FormTable, cb: Codebook) -> str:
    """The name of the file's date column (the form's variable with role ``date``)."""
    v = cb.by_role("date", t.form.name)
    return v.name if v is not None else "date"


def cast_to_codebook(df: pd.DataFrame, cb: Codebook) -> pd.DataFrame:
    """Cast codebook variables to their codebook dtype and unknown text columns to ``string``."""
    for c in df.columns:
        if c in cb and cb.variable(c).role is None and str(df[c].dtype) != pandas_dtype(cb.variable(c)):
            df[c] = df[c].astype(pandas_dtype(cb.variable(c)))
        elif c not in cb and c not in STRUCTURAL and not c.startswith("_") and df[c].dtype != TEXT:
            df[c] = df[c].astype(TEXT)  # a column the codebook does not know: text
    return df


def build_units(
    folder: Path, regs: pd.DataFrame, network: pd.DataFrame | None, allow_cp1252: bool
) -> tuple[pd.DataFrame, list[pd.DataFrame], list[dict]]:
    """Units from ``enheter.csv`` (``UnitId;db_unit_title;region;setting``) when present, else from the data."""
    frames = [regs[["unit_id", "unit_name"]]] + (
        [network[["unit_id", "unit_name"]]] if network is not None else []
    )
    seen = pd.concat(frames, ignore_index=True).dropna(subset=["unit_id"])
    seen = seen.sort_values("unit_name", na_position="last", kind="stable").drop_duplicates("unit_id")
    findings: list[pd.DataFrame] = []
    path = folder / "enheter.csv"
    if (
        not path.exists() and not path.is_symlink()
    ):  # a dangling link is not "absent": read_file_bytes says why
        units = pd.DataFrame(
            {
                "unit_id": seen["unit_id"].astype("Int64").to_numpy(),
                "unit_name": seen["unit_name"].astype("string").to_numpy(),
            }
        )
        units["region"] = pd.array([pd.NA] * len(units), dtype="string")
        units["setting"] = pd.array([pd.NA] * len(units), dtype="string")
        return units.sort_values("unit_id", ignore_index=True), findings, []
    raw = parse_csv(read_file_bytes(path), path.name, allow_cp1252=allow_cp1252)
    col = {c.lower(): c for c in raw.columns}

    def text(name: str) -> pd.arrays.ArrowStringArray:
        return (
            convert_column(raw.table.column(col[name]), None, ()).values
            if name in col
            else pd.array([pd.NA] * raw.table.num_rows, dtype="string")
        )

    if "unitid" not in col:
        findings.append(
            file_finding(
                path.name,
                "UnitId",
                "missing_required_column",
                "warning",
                "enheter.csv has no UnitId column: units taken from the data",
            )
        )
        return build_units_from(seen), findings, [{"file": path.name, "read": raw.n_read, "used": 0}]
    ids = convert_column(raw.table.column(col["unitid"]), None, ())
    unit_id = pd.to_numeric(pd.Series(ids.values, dtype="string"), errors="coerce").astype("Int64")
    units = pd.DataFrame(
        {
            "unit_id": unit_id.to_numpy(),
            "unit_name": text("db_unit_title"),
            "region": text("region"),
            "setting": text("setting"),
        }
    )
    bad_setting = units["setting"].notna() & ~units["setting"].isin(SETTINGS)
    if bad_setting.any():
        findings.append(
            file_finding(
                path.name,
                "setting",
                "unknown_code",
                "warning",
                f"{int(bad_setting.sum())} unit(s) have a setting other than {list(SETTINGS)}",
            )
        )
    units = units.dropna(subset=["unit_id"]).drop_duplicates("unit_id")
    unknown = seen.loc[~seen["unit_id"].isin(units["unit_id"])]
    if len(unknown):
        findings.append(
            file_finding(
                path.name,
                "UnitId",
                "unknown_unit",
                "warning",
                f"{len(unknown)} unit(s) in the data are not in enheter.csv: added without region or setting",
            )
        )
        units = pd.concat([units, build_units_from(unknown)], ignore_index=True)
    return (
        units.sort_values("unit_id", ignore_index=True),
        findings,
        [{"file": path.name, "read": raw.n_read, "used": len(units) - len(unknown)}],
    )


def _unit_pairs(df: pd.DataFrame) -> pd.DataFrame:
    """Each unit id of a table once, with the first name seen for it (fast on millions of rows)."""
    uid = df["unit_id"].to_numpy(dtype=np.float64, na_value=np.nan)
    has_name = df["unit_name"].notna().to_numpy() & ~np.isnan(uid)
    ids, first = np.unique(uid[has_name], return_index=True)
    named = pd.DataFrame(
        {"unit_id": ids, "unit_name": df["unit_name"].array[np.flatnonzero(has_name)[first]]}
    )
    rest = np.setdiff1d(np.unique(uid[~np.isnan(uid)]), ids)
    unnamed = pd.DataFrame({"unit_id": rest, "unit_name": pd.array([None] * len(rest), dtype=TEXT)})
    out = pd.concat([named, unnamed], ignore_index=True)
    out["unit_id"] = out["unit_id"].astype("Int64")
    return out


def build_units_from(seen: pd.DataFrame) -> pd.DataFrame:
    """A units table from (unit_id, unit_name) pairs seen in the data, without region or setting."""
    units = pd.DataFrame(
        {
            "unit_id": seen["unit_id"].astype("Int64").to_numpy(),
            "unit_name": seen["unit_name"].astype("string").to_numpy(),
        }
    )
    units["region"] = pd.array([pd.NA] * len(units), dtype="string")
    units["setting"] = pd.array([pd.NA] * len(units), dtype="string")
    return units


def build_coverage(folder: Path, allow_cp1252: bool) -> tuple[pd.DataFrame | None, list[dict]]:
    """Coverage (dekningsgrad) per unit and year from ``dekningsgrad.csv``, or None when absent."""
    path = folder / "dekningsgrad.csv"
    if not path.exists() and not path.is_symlink():
        return None, []
    raw = parse_csv(read_file_bytes(path), path.name, allow_cp1252=allow_cp1252)
    lower = {c.lower(): c for c in raw.columns}
    out = {}
    for canon, aliases in COVERAGE_ALIASES.items():
        src = next((lower[a] for a in aliases if a in lower), None)
        if src is None:
            continue
        text = pd.Series(convert_column(raw.table.column(src), None, ()).values, dtype="string")
        out[canon] = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce").astype("Int64")
    if "unit_id" not in out or "expected_courses" not in out:
        from kvarus_research.io.csv import FileProblem

        raise FileProblem(
            f"{path.name}: needs columns for the unit and the expected number of courses; the first line should "
            "be the header with the columns UnitId;year;expected_courses;reserved_courses;",
            file=path.name,
            rule="missing_required_column",
            column="unit_id",
        )
    return pd.DataFrame(out), [{"file": path.name, "read": raw.n_read, "used": raw.table.num_rows}]
