"""The MRS codebook workbook ``rapport.xlsx``: read it into a :class:`Codebook`, write a codebook in that format.

Format (domain.md §3): one sheet per form (sheet names may be the form name truncated to 31 characters), columns
``Visningsnavn``, ``Variabelnavn``, ``Felttype``, ``Mulige verdier``, ``Gyldighet``, ``Hjelpetekst``. A coded
variable takes one row per value (``"1 = tekst"``; a cell may also hold several values, one per line), and the
variable-level cells are filled in only on its first row: the reader fills them down.

What the workbook cannot say is inferred, and documented here:

- **type** from ``Felttype``: Enum / Enkeltvalg → enum, Tekst / Text → text, Avkrysning → boolean, Dato/Tid →
  datetime, Dato → date, Id (Guid) → id, Numerisk (heltall) → integer, Numerisk (flyttall) / Tall → float.
- **missing codes**: values whose text is a missing label (``Velg verdi``, ``Ikke valgt``, ``Ukjent``,
  ``Unknown``, ``---``, ``None``).
- **valid range** from ``Gyldighet`` (``"0 - 30"``, ``"min 0 maks 30"``); **required** when it says ``Påkrevd``
  or ``Obligatorisk``.
- **roles** from the MRS column names (``PasientGUID``, ``ForlopsID``, ``UnitId``, ``db_unit_title``,
  ``PatientAge``, ``PatientGender``, ``behandlingsstatus``) and, for dates, the first Dato or Dato/Tid field of each
  form.
- **English labels, outcome metadata and form tables** are not in the workbook: pass ``base`` (e.g. the bundled
  codebook) to carry them over for variables and forms it knows.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kvarus_research.codebook.model import Codebook, codebook_from_dict, load_codebook
from kvarus_research.errors import CodebookError

COLUMNS: tuple[str, ...] = (
    "Visningsnavn",
    "Variabelnavn",
    "Felttype",
    "Mulige verdier",
    "Gyldighet",
    "Hjelpetekst",
)
#: Felttype (lower case) -> codebook type.
FIELD_TYPES: dict[str, str] = {
    "enum": "enum",
    "enkeltvalg": "enum",
    "tekst": "text",
    "text": "text",
    "avkrysning": "boolean",
    "dato/tid": "datetime",
    "dato": "date",
    "id (guid)": "id",
    "numerisk (heltall)": "integer",
    "numerisk (flyttall)": "float",
    "tall": "float",
}
#: codebook type -> the Felttype written by :func:`write_rapport`.
WRITE_TYPES: dict[str, str] = {
    "enum": "Enum",
    "text": "Tekst",
    "boolean": "Avkrysning",
    "datetime": "Dato/Tid",
    "date": "Dato",
    "id": "Id (Guid)",
    "integer": "Numerisk (heltall)",
    "float": "Numerisk (flyttall)",
}
MISSING_TEXTS: frozenset[str] = frozenset({"velg verdi", "ikke valgt", "ukjent", "unknown", "---", "none"})
ROLE_NAMES: dict[str, str] = {
    "PasientGUID": "patient_id",
    "ForlopsID": "course_id",
    "UnitId": "unit_id",
    "db_unit_title": "unit_name",
    "PatientAge": "age",
    "PatientGender": "sex",
    "behandlingsstatus": "status",
}
_VALUE = re.compile(r"^\s*(-?\d+)\s*=\s*(.*?)\s*$")
_NUMBER = r"-?\d+(?:[.,]\d+)?"
_RANGE = re.compile(
    rf"({_NUMBER})\s*(?:-|–|til|to)\s*({_NUMBER})|min\w*\s*:?\s*({_NUMBER}).*?maks\w*\s*:?\s*({_NUMBER})",
    re.IGNORECASE,
)
_FIXED_TIME = "2000-01-01T00:00:00Z"


def _form_kind(name: str) -> str:
    low = name.lower()
    for key, kind in (
        ("basis", "baseline"),
        ("nettverk", "network_work"),
        ("avslutning", "ending"),
        ("oppfølging", "followup"),
        ("oppfolging", "followup"),
        ("målepunkt", "status"),
        ("maalepunkt", "status"),
    ):
        if key in low:
            return kind
    return "status"


def _slug(name: str) -> str:
    table = name.lower().translate(str.maketrans({"å": "aa", "æ": "ae", "ø": "oe"}))
    return re.sub(r"[^a-z0-9]+", "_", table).strip("_") or "form"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _parse_range(text: str, where: str) -> tuple[float, float] | None:
    m = _RANGE.search(text)
    if not m:
        return None
    lo, hi = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
    lo_f, hi_f = float(lo.replace(",", ".")), float(hi.replace(",", "."))
    if lo_f > hi_f:
        raise CodebookError(f"{where}: Gyldighet {text!r} gives a range whose minimum exceeds its maximum")
    return lo_f, hi_f


def _resolve_form(sheet: str, names: list[str]) -> str:
    """The full form name a (possibly truncated) sheet name stands for."""
    if sheet in names:
        return sheet
    hits = [n for n in names if n[:31] == sheet or (len(sheet) >= 28 and n.startswith(sheet))]
    return hits[0] if len(hits) == 1 else sheet


def _sheet_variables(ws: Any, file: str) -> list[dict[str, Any]]:
    """The variables of one sheet: header check, fill-down, one entry per variable with its value rows."""
    rows = ws.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None:
        raise CodebookError(
            f"{file}, sheet {ws.title!r}: the sheet is empty; expected a header row {list(COLUMNS)}"
        )
    names = [_text(h) for h in header]
    missing = [c for c in COLUMNS[:3] if c not in names]
    if missing:
        raise CodebookError(
            f"{file}, sheet {ws.title!r}, row 1: missing column(s) {missing}; found {[n for n in names if n]}, "
            f"expected {list(COLUMNS)}"
        )
    col = {c: names.index(c) for c in COLUMNS if c in names}
    out: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for r, row in enumerate(rows, start=2):
        cells = {c: _text(row[i]) if i < len(row) else "" for c, i in col.items()}
        if not any(cells.values()):
            continue
        where = f"{file}, sheet {ws.title!r}, row {r}"
        if cells.get("Variabelnavn"):
            ftype = cells.get("Felttype", "")
            if ftype.lower() not in FIELD_TYPES:
                raise CodebookError(
                    f"{where}, column Felttype: {ftype!r} is not a known field type; expected one of "
                    f"{sorted(set(WRITE_TYPES.values()) | {'Enkeltvalg', 'Text', 'Tall'})}"
                )
            current = {
                "name": cells["Variabelnavn"],
                "type": FIELD_TYPES[ftype.lower()],
                "label": cells.get("Visningsnavn") or cells["Variabelnavn"],
                "validity": cells.get("Gyldighet", ""),
                "help": cells.get("Hjelpetekst", ""),
                "values": [],
                "where": where,
            }
            out.append(current)
        elif current is None:
            raise CodebookError(
                f"{where}, column Variabelnavn: a value row comes before the first variable name"
            )
        for line in cells.get("Mulige verdier", "").splitlines():
            if not line.strip():
                continue
            m = _VALUE.match(line)
            if not m:
                raise CodebookError(
                    f"{where}, column Mulige verdier: {line.strip()!r} is not of the form '1 = tekst'"
                )
            current["values"].append((int(m.group(1)), m.group(2), where))
    return out


def read_rapport(
    path: str | Path, *, base: Codebook | None = None, form_names: Iterable[str] | None = None
) -> Codebook:
    """Read an MRS ``rapport.xlsx`` codebook into a :class:`Codebook`.

    Parameters
    ----------
    path : str or Path
        The workbook.
    base : Codebook, optional
        A codebook to take English labels, outcome metadata, roles, sources and form tables from, for the
        variables and forms it knows (the workbook holds Norwegian display names only).
    form_names : iterable of str, optional
        Full form names, to resolve sheet names truncated to 31 characters (``base``'s forms are used too).

    Returns
    -------
    Codebook

    Raises
    ------
    CodebookError
        When the file is not a workbook, a sheet lacks the columns, a field type is unknown, a value line is not
        ``"code = text"`` or a variable is defined twice with different types; the message names the sheet, row
        and column.

    Examples
    --------
    >>> import tempfile, pathlib, kvarus_research as kr
    >>> from kvarus_research.codebook.rapport import write_rapport
    >>> path = write_rapport(kr.load_codebook(), pathlib.Path(tempfile.mkdtemp()) / "rapport.xlsx")
    >>> cb = read_rapport(path)
    >>> cb.variable("plan_beh").codes[2]["nb"], cb.variable("plan_beh").missing_codes
    ('Ja', (0,))
    """
    import openpyxl

    path = Path(path)
    file = path.name
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError as exc:
        raise CodebookError(f"codebook file {path} does not exist") from exc
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a broken file
        raise CodebookError(f"{file}: not a readable .xlsx workbook ({type(exc).__name__})") from exc
    known_forms = list(form_names or []) + ([f.name for f in base.forms] if base else [])
    forms: list[dict[str, Any]] = []
    variables: dict[str, dict[str, Any]] = {}
    try:
        for ws in wb.worksheets:
            form = _resolve_form(ws.title, known_forms)
            base_form = next((f for f in base.forms if f.name == form), None) if base else None
            forms.append(
                {
                    "name": form,
                    "table": base_form.table if base_form else _slug(form),
                    "kind": base_form.kind if base_form else _form_kind(form),
                    "source": base_form.source if base_form else "documented",
                }
            )
            has_date = False
            for raw in _sheet_variables(ws, file):
                name = raw["name"]
                if name in variables:
                    if variables[name]["type"] != raw["type"]:
                        raise CodebookError(
                            f"{raw['where']}, column Felttype: variable {name!r} is {raw['type']} here but "
                            f"{variables[name]['type']} on an earlier sheet"
                        )
                    variables[name]["forms"].append(form)
                    continue
                variables[name] = _variable(raw, form, base, first_date=not has_date)
                has_date |= variables[name].get("role") == "date"
    finally:
        wb.close()
    if not variables:
        raise CodebookError(f"{file}: the workbook defines no variables")
    data = {
        "name": base.name if base else path.stem,
        "version": base.version if base else "",
        "missing_labels": list(base.missing_labels) if base else sorted(MISSING_TEXTS),
        "forms": forms,
        "variables": list(variables.values()),
    }
    return codebook_from_dict(data, where=file)


def _variable(raw: dict[str, Any], form: str, base: Codebook | None, *, first_date: bool) -> dict[str, Any]:
    name = raw["name"]
    known = base.variable(name) if base is not None and name in base else None
    codes: dict[int, dict[str, str]] = {}
    missing: list[int] = []
    for code, text, where in raw["values"]:
        if code in codes or code in missing:
            raise CodebookError(f"{where}, column Mulige verdier: code {code} appears twice for {name!r}")
        if text.lower() in MISSING_TEXTS:
            missing.append(code)
            continue
        label = {"nb": text, "en": text}
        if known is not None and code in known.codes:
            label["en"] = known.code_label(code, "en")
        codes[code] = label
    out: dict[str, Any] = {
        "name": name,
        "forms": [form],
        "type": raw["type"],
        "label": {"nb": raw["label"], "en": known.label_in("en") if known else raw["label"]},
        "source": known.source if known else "documented",
    }
    if codes:
        out["codes"] = codes
    if missing:
        out["missing_codes"] = missing
    rng = _parse_range(raw["validity"], f"{raw['where']}, column Gyldighet")
    if rng is not None:
        out["range"] = list(rng)
    if re.search(r"påkrevd|obligatorisk|required", raw["validity"], re.IGNORECASE):
        out["required"] = True
    role = known.role if known else ROLE_NAMES.get(name)
    if role is None and raw["type"] in ("date", "datetime") and first_date and known is None:
        role = "date"
    if role:
        out["role"] = role
    if known is not None and known.outcome is not None:
        out["outcome"] = {
            k: getattr(known.outcome, k)
            for k in ("direction", "reliability", "cutoff")
            if getattr(known.outcome, k)
        }
    if raw["help"]:
        out["description"] = raw["help"]
    return out


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x).replace(".", ",")


def write_rapport(codebook: Codebook | None, path: str | Path) -> Path:
    """Write a codebook as an MRS ``rapport.xlsx`` (byte-identical for the same codebook).

    One sheet per form (name truncated to 31 characters), one row per code value with the variable-level cells on
    the first row only; missing codes are written as ``"<code> = Velg verdi"`` (code 0) or ``"<code> = Ukjent"``;
    ``Gyldighet`` holds ``Påkrevd`` and the range (``"0 - 30"``).

    Parameters
    ----------
    codebook : Codebook or None
        ``None`` for the bundled codebook.
    path : str or Path
        Where to write the workbook.

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, pathlib, openpyxl, kvarus_research as kr
    >>> p = write_rapport(kr.load_codebook(), pathlib.Path(tempfile.mkdtemp()) / "rapport.xlsx")
    >>> openpyxl.load_workbook(p).sheetnames
    ['Basisopplysninger', 'Målepunkt', 'Nettverksarbeid']
    """
    import openpyxl

    cb = codebook or load_codebook()
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for form in cb.forms:
        title = re.sub(r"[\[\]:*?/\\]", "_", form.name)[:31]
        ws = wb.create_sheet(title)
        ws.append(list(COLUMNS))
        for v in cb.form_variables(form.name):
            values = [f"{c} = {v.code_label(c, 'nb')}" for c in v.codes]
            values += [
                f"{c} = {'Velg verdi' if c == 0 else 'Ukjent'}" for c in v.missing_codes if c not in v.codes
            ]
            validity = "; ".join(
                x
                for x in (
                    "Påkrevd" if v.required else "",
                    f"{_fmt(v.range[0])} - {_fmt(v.range[1])}" if v.range else "",
                )
                if x
            )
            first = [
                v.label_in("nb"),
                v.name,
                WRITE_TYPES[v.type],
                values[0] if values else None,
                validity or None,
                v.description or None,
            ]
            ws.append(first)
            for value in values[1:]:
                ws.append([None, None, None, value, None, None])
    buf = io.BytesIO()
    wb.save(buf)
    path = Path(path)
    path.write_bytes(_reproducible_zip(buf.getvalue()))
    return path


def _reproducible_zip(data: bytes) -> bytes:
    """Rewrite an xlsx (zip) with fixed entry times and document timestamps, so equal input gives equal bytes."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = content.decode("utf-8")
                text = re.sub(
                    r"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)", rf"\g<1>{_FIXED_TIME}\2", text
                )
                content = text.encode("utf-8")
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, content)
    return out.getvalue()
