"""The MRS rapport.xlsx codebook: round trip of the bundled codebook, a hand-made workbook, clear errors."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kvarus_research as kr
from kvarus_research import CodebookError
from kvarus_research.codebook.rapport import _VALUE, COLUMNS, _parse_range, read_rapport, write_rapport


def test_bundled_codebook_round_trips(tmp_path: Path) -> None:
    cb = kr.load_codebook()
    back = read_rapport(write_rapport(cb, tmp_path / "rapport.xlsx"))
    assert {v.name for v in back.variables} == {v.name for v in cb.variables}
    assert [f.name for f in back.forms] == [f.name for f in cb.forms]
    assert [f.kind for f in back.forms] == [f.kind for f in cb.forms]
    for v in cb.variables:
        w = back.variable(v.name)
        assert (w.type, w.forms, w.range, w.required, w.role) == (
            v.type,
            v.forms,
            v.range,
            v.required,
            v.role,
        )
        assert w.missing_codes == v.missing_codes, v.name
        assert {c: lab["nb"] for c, lab in w.codes.items()} == {c: lab["nb"] for c, lab in v.codes.items()}
        assert w.label["nb"] == v.label["nb"]
    # load_codebook dispatches .xlsx to read_rapport
    assert kr.load_codebook(tmp_path / "rapport.xlsx").variable("behandlingsstatus").code_label(4, "nb") == (
        "Avsluttet med gjensidig avtale"
    )


def test_base_codebook_supplies_english_labels_outcomes_and_tables(tmp_path: Path) -> None:
    cb = kr.load_codebook()
    back = read_rapport(write_rapport(cb, tmp_path / "r.xlsx"), base=cb)
    assert back.label("plan_krise", "en") == "Crisis plan in place"
    assert back.value_labels("plan_krise", "en") == {1: "No", 2: "Yes", 3: "Don't know"}
    assert back.outcomes()["psykiske_plager"] == cb.outcomes()["psykiske_plager"]
    assert back.form("maalepunkt_2").name == "Målepunkt"


def test_write_is_byte_identical(tmp_path: Path) -> None:
    a = write_rapport(None, tmp_path / "a.xlsx")
    time.sleep(1.1)  # a zip entry time or document timestamp from the clock would change the bytes
    b = write_rapport(None, tmp_path / "b.xlsx")
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


LONG_FORM = "Oppfølging etter ett år, pasientrapportert"  # 42 characters: Excel keeps 31


def _hand_made(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Basisopplysninger"
    ws.append(list(COLUMNS))
    ws.append(["Pasient", "PasientGUID", "Id (Guid)", None, "Påkrevd", None])
    ws.append(["Dato", "dato_basis", "Dato", None, "Obligatorisk", None])
    ws.append(["Kjønn", "PatientGender", "Enkeltvalg", "0 = Velg verdi", None, "Fra folkeregisteret"])
    ws.append([None, None, None, "1 = Mann", None, None])  # fill-down: value rows carry only the value
    ws.append([None, None, None, "2 = Kvinne", None, None])
    ws.append(["Dager med rus", "dager_rus", "Numerisk (heltall)", "-1 = Ukjent", "min 0 maks 30", None])
    ws2 = wb.create_sheet(LONG_FORM[:31])
    ws2.append(list(COLUMNS))
    ws2.append(["Pasient", "PasientGUID", "Id (Guid)", None, None, None])
    ws2.append(["Tidspunkt", "tid_oppf", "Dato/Tid", None, None, None])
    ws2.append(
        ["Fornøyd", "fornoyd", "Enum", "1 = Nei\n2 = Ja\n99 = Ukjent", None, None]
    )  # several in one cell
    ws2.append(["Vekt", "vekt", "Tall", None, "30,5 - 250", None])
    ws2.append(["Samtykke", "samtykke", "Avkrysning", None, None, None])
    ws2.append(["Kommentar", "kommentar", "Text", None, None, None])
    wb.save(path)
    return path


def test_hand_made_workbook_with_fill_down_and_truncated_sheet_name(tmp_path: Path) -> None:
    cb = read_rapport(_hand_made(tmp_path / "rapport.xlsx"), form_names=[LONG_FORM])
    assert [f.name for f in cb.forms] == ["Basisopplysninger", LONG_FORM]
    assert [f.kind for f in cb.forms] == ["baseline", "followup"]
    sex = cb.variable("PatientGender")
    assert sex.type == "enum" and sex.role == "sex" and sex.description == "Fra folkeregisteret"
    assert {c: lab["nb"] for c, lab in sex.codes.items()} == {
        1: "Mann",
        2: "Kvinne",
    } and sex.missing_codes == (0,)
    days = cb.variable("dager_rus")
    assert (days.type, days.range, days.missing_codes) == ("integer", (0.0, 30.0), (-1,))
    assert cb.variable("dato_basis").role == "date" and cb.variable("dato_basis").required
    assert cb.variable("PasientGUID").forms == ("Basisopplysninger", LONG_FORM)  # one variable, two sheets
    assert cb.variable("fornoyd").valid_codes == (1, 2) and cb.variable("fornoyd").missing_codes == (99,)
    assert (cb.variable("vekt").type, cb.variable("vekt").range) == ("float", (30.5, 250.0))
    assert cb.variable("tid_oppf").type == "datetime" and cb.variable("tid_oppf").role == "date"
    assert cb.variable("samtykke").type == "boolean" and cb.variable("kommentar").type == "text"
    # without the full names the truncated sheet name is kept as the form name
    assert read_rapport(tmp_path / "rapport.xlsx").forms[1].name == LONG_FORM[:31]


def _broken(path: Path, header: list[str], rows: list[list]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Målepunkt"
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def test_malformed_workbooks_give_sheet_row_and_column(tmp_path: Path) -> None:
    p = _broken(tmp_path / "a.xlsx", ["Visningsnavn", "Navn", "Felttype"], [])
    with pytest.raises(
        CodebookError, match=r"a\.xlsx, sheet 'Målepunkt', row 1: missing column\(s\) \['Variabelnavn'\]"
    ):
        read_rapport(p)
    p = _broken(tmp_path / "b.xlsx", list(COLUMNS), [["X", "x", "Heltall", None, None, None]])
    with pytest.raises(CodebookError, match=r"row 2, column Felttype: 'Heltall' is not a known field type"):
        read_rapport(p)
    p = _broken(
        tmp_path / "c.xlsx",
        list(COLUMNS),
        [["X", "x", "Enum", "1 = Ja", None, None], [None, None, None, "Nei", None, None]],
    )
    with pytest.raises(
        CodebookError, match=r"row 3, column Mulige verdier: 'Nei' is not of the form '1 = tekst'"
    ):
        read_rapport(p)
    p = _broken(tmp_path / "d.xlsx", list(COLUMNS), [[None, None, None, "1 = Ja", None, None]])
    with pytest.raises(CodebookError, match=r"row 2, column Variabelnavn: a value row comes before"):
        read_rapport(p)
    p = _broken(tmp_path / "e.xlsx", list(COLUMNS), [["X", "x", "Tall", None, "9 - 1", None]])
    with pytest.raises(CodebookError, match=r"row 2, column Gyldighet: .* minimum exceeds its maximum"):
        read_rapport(p)
    (tmp_path / "f.xlsx").write_text("not a workbook")
    with pytest.raises(CodebookError, match=r"f\.xlsx: not a readable \.xlsx workbook"):
        read_rapport(tmp_path / "f.xlsx")


@given(
    st.integers(-999, 9999),
    st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1)
    .map(str.strip)
    .filter(bool),
)
def test_value_lines_parse_back(code: int, text: str) -> None:
    m = _VALUE.match(f"{code} = {text}")
    assert m is not None and int(m.group(1)) == code and m.group(2) == text


@given(
    st.integers(-1000, 1000),
    st.integers(0, 1000),
    st.sampled_from(["{a} - {b}", "{a}-{b}", "{a} til {b}", "min {a} maks {b}", "Påkrevd; {a} - {b}"]),
)
def test_ranges_parse_back(lo: int, width: int, pattern: str) -> None:
    text = pattern.format(a=lo, b=lo + width)
    assert _parse_range(text, "here") == (float(lo), float(lo + width))
