"""A corpus of malformed MRS extracts, each built here by hand, with the exact finding expected.

Every extract is a folder with one or two DataDump files written with the full header of their codebook form
(so a clean file gives no finding at all). Line numbers are as in the file: header = line 1, first data row =
line 2. Every test also checks the row accounting: rows read = accepted + rejected, per file.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
import pytest

import kvarus_research as kr
from kvarus_research.io import FileProblem, read_extract

CB = kr.load_codebook()
DATE = "2023-01-31"
MP = f"DataDump_Prod_Målepunkt_{DATE}_0700.csv"
BASIS = f"DataDump_Prod_Basisopplysninger_{DATE}_0700.csv"
NETT = f"DataDump_Prod_Nettverksarbeid_{DATE}_0700.csv"
FORM_OF = {MP: "Målepunkt", BASIS: "Basisopplysninger", NETT: "Nettverksarbeid"}
DEFAULTS = {
    "UnitId": "10",
    "db_unit_title": "TSB poliklinikk Bergen",
    "PatientAge": "34",
    "PatientGender": "1",
}


def header(form: str) -> list[str]:
    return [v.name for v in CB.form_variables(form)]


def dump_text(form: str, rows: list[dict[str, str]], cols: list[str] | None = None) -> str:
    """An MRS dump: header, rows with the trailing empty column, CRLF line ends (no BOM: added on write)."""
    cols = cols or header(form)
    lines = [";".join(cols) + ";"]
    for r in rows:
        lines.append(";".join(str({**DEFAULTS, **r}.get(c, "")) for c in cols) + ";")
    return "\r\n".join(lines) + "\r\n"


def write(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = content if isinstance(content, bytes) else b"\xef\xbb\xbf" + content.encode("utf-8")
        (folder / name).write_bytes(data)
    return folder


def mp(pid: str, course: str, date: str, status: int | str, **kw: str) -> dict[str, str]:
    return {
        "PasientGUID": pid,
        "ForlopsID": course,
        "dato_mp_beh": date,
        "behandlingsstatus": str(status),
        **kw,
    }


def basis(pid: str, course: str, date: str, **kw: str) -> dict[str, str]:
    return {"PasientGUID": pid, "ForlopsID": course, "dato_basis": date, **kw}


def row_findings(reg: kr.Registry) -> list[tuple]:
    t = reg.validation.table
    t = t[t["row"].notna()]
    return [
        (f.file, int(f.row), None if pd.isna(f.column) else f.column, f.rule, f.severity)
        for f in t.itertuples()
    ]


def accounting(reg: kr.Registry) -> dict[str, tuple[int, int, int]]:
    """(read, accepted, rejected) per file, after checking read = accepted + rejected."""
    rows = reg.validation.rows
    assert (rows["read"] == rows["accepted"] + rows["rejected"]).all()
    n_regs = len(reg.registrations) + (0 if reg.network_work is None else len(reg.network_work))
    assert rows["accepted"].sum() == n_regs  # every accepted row is in the registry
    lines = reg.validation.lines.set_index("file")
    assert sorted(lines.index) == sorted(rows["file"])
    for r in rows.itertuples():
        n = lines.loc[r.file]
        assert n["rows"] == r.read and n["lines"] == n["header"] + n["blank"] + n["continued"] + n["rows"]
        if not r.file.endswith("]"):  # a CSV: its physical lines, counted here from the bytes
            data = (Path(reg.meta["folder"]) / r.file).read_bytes()
            assert n["lines"] == data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    return {r.file: (r.read, r.accepted, r.rejected) for r in rows.itertuples()}


# A clean course: p1 baseline 10.01.2021, MP 10.03.2021, ending (4) 10.06.2021, follow-up (5) 15.06.2022.
CLEAN_MP = [mp("p1", "c1", "10.03.2021", 1), mp("p1", "c1", "10.06.2021", 4), mp("p1", "c1", "15.06.2022", 5)]
CLEAN_BASIS = [basis("p1", "c1", "10.01.2021")]


def test_clean_extract_has_no_finding_and_hand_computed_course(tmp_path: Path) -> None:
    # p2: inpatient course without baseline, MP 01.02.2021 (1) and ending 01.03.2021 (3 = interrupted):
    # follow-up due 01.03.2021 + 365 + 90 days = 30.05.2022 < extract date 31.01.2023 -> not_registered.
    rows = CLEAN_MP + [mp("p2", "c2", "01.02.2021", 1), mp("p2", "c2", "01.03.2021", 3)]
    reg = read_extract(
        write(
            tmp_path, {MP: dump_text("Målepunkt", rows), BASIS: dump_text("Basisopplysninger", CLEAN_BASIS)}
        )
    )
    assert reg.validation.is_clean
    assert accounting(reg) == {BASIS: (1, 1, 0), MP: (5, 5, 0)}
    c = reg.courses.set_index("course_id")
    assert c.loc["c1", "ending_type"] == "mutual_agreement" and c.loc["c1", "followup_status"] == "reached"
    assert c.loc["c1", "start_date"] == pd.Timestamp("2021-01-10")
    assert c.loc["c2", "ending_type"] == "interrupted" and c.loc["c2", "followup_status"] == "not_registered"
    assert reg.extract_date == pd.Timestamp(DATE)
    assert reg.registrations["kind"].tolist().count("followup") == 1
    assert reg.registrations.loc[reg.registrations["kind"] == "baseline", "registration_id"].tolist() == [
        "basisopplysninger_1:2"
    ]
    reg.validate()  # the course-model invariants hold


@pytest.mark.parametrize(
    ("rows", "line", "column", "rule", "severity"),
    [
        # 1 unknown code: plan_beh has codes 1-3 (0 = velg verdi is missing) -> 7 is unknown; row kept.
        ([mp("p1", "c1", "10.03.2021", 1, plan_beh="7")], 2, "plan_beh", "unknown_code", "warning"),
        # 2 text in a numeric field; row kept, value missing.
        (
            [mp("p1", "c1", "10.03.2021", 1, dager_rus_30="mange")],
            2,
            "dager_rus_30",
            "not_a_number",
            "warning",
        ),
        # 3 impossible date: 31 February -> required date unreadable -> row rejected.
        ([mp("p1", "c1", "31.02.2021", 1)], 2, "dato_mp_beh", "invalid_date", "error"),
        # 4 date in the future: after the extract date 31.01.2023.
        ([mp("p1", "c1", "01.02.2023", 1)], 2, "dato_mp_beh", "date_in_future", "error"),
        # 5 date before 2019.
        ([mp("p1", "c1", "31.12.2018", 1)], 2, "dato_mp_beh", "date_before_2019", "error"),
        # 6 value out of range: dager_rus_30 is 0-30.
        ([mp("p1", "c1", "10.03.2021", 1, dager_rus_30="31")], 2, "dager_rus_30", "out_of_range", "warning"),
        # 7 required value missing: behandlingsstatus "0" is its missing code (velg verdi).
        ([mp("p1", "c1", "10.03.2021", 0)], 2, "behandlingsstatus", "required", "error"),
        # 8 unknown status code 9: status is required, so the row is rejected.
        ([mp("p1", "c1", "10.03.2021", 9)], 2, "behandlingsstatus", "unknown_code", "error"),
        # 9 a decimal where a whole number is expected.
        ([mp("p1", "c1", "10.03.2021", 1, dager_rus_30="2,5")], 2, "dager_rus_30", "not_a_number", "warning"),
    ],
)
def test_single_value_problems(
    tmp_path: Path, rows: list, line: int, column: str, rule: str, severity: str
) -> None:
    reg = read_extract(write(tmp_path, {MP: dump_text("Målepunkt", rows)}))
    assert row_findings(reg) == [(MP, line, column, rule, severity)]
    rejected = 1 if severity == "error" else 0
    assert accounting(reg) == {MP: (1, 1 - rejected, rejected)}
    if severity == "warning":
        assert reg.registrations[column].isna().all()  # the bad value became missing


def test_truncated_file(tmp_path: Path) -> None:
    text = dump_text("Målepunkt", CLEAN_MP)
    cut = text[: text.rindex("15.06.2022") + 4]  # the last line ends in the middle of its date
    reg = read_extract(write(tmp_path, {MP: cut}))
    assert row_findings(reg) == [(MP, 4, None, "wrong_field_count", "error")]
    assert accounting(reg) == {MP: (3, 2, 1)}


def test_wrong_delimiter(tmp_path: Path) -> None:
    text = dump_text("Målepunkt", CLEAN_MP).replace(";", ",")
    with pytest.raises(FileProblem) as exc:
        read_extract(write(tmp_path, {MP: text}))
    assert (exc.value.file, exc.value.line, exc.value.rule) == (MP, 1, "wrong_delimiter")
    assert "expected ';'" in str(exc.value)


def test_wrong_encoding_refused_then_allowed(tmp_path: Path) -> None:
    rows = [{**r, "db_unit_title": "Døgnenhet Førde"} for r in CLEAN_MP]
    data = b"\xef\xbb\xbf" + dump_text("Målepunkt", rows).encode("cp1252")
    write(tmp_path, {MP: data})
    with pytest.raises(FileProblem) as exc:
        read_extract(tmp_path)
    # the first non-UTF-8 byte (ø = 0xf8 in cp1252) is on line 2, the first data row
    assert (exc.value.file, exc.value.line, exc.value.rule) == (MP, 2, "encoding")
    reg = read_extract(tmp_path, allow_cp1252=True)
    assert reg.units["unit_name"].tolist() == ["Døgnenhet Førde"]
    t = reg.validation.table
    assert t[["file", "rule", "severity"]].values.tolist() == [[MP, "encoding_cp1252", "warning"]]
    assert accounting(reg) == {MP: (3, 3, 0)}


def test_missing_required_column(tmp_path: Path) -> None:
    cols = [c for c in header("Målepunkt") if c != "dato_mp_beh"]
    with pytest.raises(FileProblem) as exc:
        read_extract(write(tmp_path, {MP: dump_text("Målepunkt", CLEAN_MP, cols)}))
    assert (exc.value.file, exc.value.column, exc.value.rule) == (
        MP,
        "dato_mp_beh",
        "missing_required_column",
    )


def test_duplicate_header(tmp_path: Path) -> None:
    cols = header("Målepunkt") + ["plan_beh"]
    with pytest.raises(FileProblem) as exc:
        read_extract(write(tmp_path, {MP: dump_text("Målepunkt", CLEAN_MP, cols)}))
    assert (exc.value.file, exc.value.line, exc.value.column, exc.value.rule) == (
        MP,
        1,
        "plan_beh",
        "duplicate_column",
    )


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(FileProblem) as exc:
        read_extract(write(tmp_path, {MP: b""}))
    assert (exc.value.file, exc.value.rule) == (MP, "empty_file")


def test_header_only_file_is_read_with_zero_rows_and_a_finding(tmp_path: Path) -> None:
    reg = read_extract(
        write(tmp_path, {MP: dump_text("Målepunkt", CLEAN_MP), BASIS: dump_text("Basisopplysninger", [])})
    )
    assert accounting(reg) == {BASIS: (0, 0, 0), MP: (3, 3, 0)}
    assert reg.validation.table[["file", "rule", "severity", "message"]].values.tolist() == [
        [BASIS, "no_rows", "warning", "the file has a header but no data rows: no registrations"]
    ]


def test_duplicate_registration(tmp_path: Path) -> None:
    rows = CLEAN_MP[:1] + [mp("p1", "c1", "10.03.2021", 1, plan_beh="2")] + CLEAN_MP[1:]
    reg = read_extract(write(tmp_path, {MP: dump_text("Målepunkt", rows)}))
    assert row_findings(reg) == [(MP, 3, "<patient, form, date>", "duplicate_registration", "error")]
    assert "line 2" in reg.validation.table["message"].iloc[0]
    assert accounting(reg) == {MP: (4, 3, 1)}


def test_orphan_registration_without_course_id(tmp_path: Path) -> None:
    rows = CLEAN_MP + [mp("p2", "", "01.02.2021", 1)]
    reg = read_extract(write(tmp_path, {MP: dump_text("Målepunkt", rows)}))
    assert row_findings(reg) == [(MP, 5, "ForlopsID", "orphan_registration", "error")]
    assert accounting(reg) == {MP: (4, 3, 1)}


def test_course_id_of_another_patient_is_an_orphan(tmp_path: Path) -> None:
    rows = CLEAN_MP + [mp("p2", "c1", "01.02.2021", 1)]
    reg = read_extract(write(tmp_path, {MP: dump_text("Målepunkt", rows)}))
    assert row_findings(reg) == [(MP, 5, "ForlopsID", "orphan_registration", "error")]


def test_two_endings(tmp_path: Path) -> None:
    rows = CLEAN_MP[:2] + [mp("p1", "c1", "20.06.2021", 3)]
    reg = read_extract(write(tmp_path, {MP: dump_text("Målepunkt", rows)}))
    assert row_findings(reg) == [(MP, 4, "dato_mp_beh", "two_endings", "error")]
    assert accounting(reg) == {MP: (3, 2, 1)}
    assert reg.courses["ending_type"].tolist() == ["mutual_agreement"]  # the first ending is kept


def test_followup_without_ending(tmp_path: Path) -> None:
    rows = [CLEAN_MP[0], CLEAN_MP[2]]
    reg = read_extract(write(tmp_path, {MP: dump_text("Målepunkt", rows)}))
    assert row_findings(reg) == [(MP, 3, "dato_mp_beh", "followup_without_ending", "error")]
    assert accounting(reg) == {MP: (2, 1, 1)}


def test_followup_without_ending_when_courses_are_derived(tmp_path: Path) -> None:
    cols = [c for c in header("Målepunkt") if c != "ForlopsID"]
    rows = [CLEAN_MP[0], CLEAN_MP[2]]
    reg = read_extract(write(tmp_path, {MP: dump_text("Målepunkt", rows, cols)}))
    assert row_findings(reg) == [(MP, 3, "behandlingsstatus", "followup_without_ending", "error")]
    assert reg.courses["course_id"].tolist() == ["p1-1"]


def test_ending_before_start(tmp_path: Path) -> None:
    rows = [mp("p1", "c1", "10.03.2021", 1), mp("p1", "c1", "01.03.2021", 4)]
    reg = read_extract(
        write(
            tmp_path,
            {
                MP: dump_text("Målepunkt", rows),
                BASIS: dump_text("Basisopplysninger", [basis("p1", "c1", "05.03.2021")]),
            },
        )
    )
    assert row_findings(reg) == [(MP, 3, "dato_mp_beh", "ending_before_start", "error")]
    assert accounting(reg) == {BASIS: (1, 1, 0), MP: (2, 1, 1)}


def test_measurement_after_ending_is_outside_course(tmp_path: Path) -> None:
    rows = CLEAN_MP[:2] + [mp("p1", "c1", "01.07.2021", 1)]
    reg = read_extract(write(tmp_path, {MP: dump_text("Målepunkt", rows)}))
    assert row_findings(reg) == [(MP, 4, "dato_mp_beh", "outside_course", "error")]


def test_xlsx_with_a_missing_sheet(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Målepunkt"
    cols = header("Målepunkt")
    ws.append(cols)
    for r in CLEAN_MP:
        ws.append([{**DEFAULTS, **r}.get(c) or None for c in cols])
    ws.cell(row=3, column=cols.index("dato_mp_beh") + 1).value = pd.Timestamp("2021-06-10").to_pydatetime()
    tmp_path.mkdir(exist_ok=True)
    wb.save(tmp_path / "extract.xlsx")
    reg = read_extract(tmp_path)
    t = reg.validation.table
    missing = t[t["rule"] == "missing_form"]
    assert missing["file"].tolist() == ["extract.xlsx"] * 2 and missing["row"].isna().all()
    assert missing["severity"].tolist() == ["warning"] * 2 and len(t) == 2
    assert sorted(m.split("'")[1] for m in missing["message"]) == ["Basisopplysninger", "Nettverksarbeid"]
    assert accounting(reg) == {"extract.xlsx[Målepunkt]": (3, 3, 0)}
    assert reg.courses["end_date"].tolist() == [pd.Timestamp("2021-06-10")]


def test_unknown_column_kept_as_text(tmp_path: Path) -> None:
    cols = header("Målepunkt") + ["kommentar"]
    rows = [{**r, "kommentar": "ok"} for r in CLEAN_MP]
    reg = read_extract(write(tmp_path, {MP: dump_text("Målepunkt", rows, cols)}))
    t = reg.validation.table
    assert t[["file", "row", "column", "rule", "severity"]].astype(object).values.tolist() == [
        [MP, pd.NA, "kommentar", "unknown_column", "warning"]
    ]
    assert reg.registrations["kommentar"].tolist() == ["ok"] * 3


def test_missing_patient_id_never_shows_an_identifier(tmp_path: Path) -> None:
    rows = CLEAN_MP + [mp("", "c9", "01.02.2021", 1), mp("p-secret", "c1", "01.02.2021", "x")]
    reg = read_extract(write(tmp_path, {MP: dump_text("Målepunkt", rows)}))
    assert row_findings(reg) == [
        (MP, 5, "PasientGUID", "required", "error"),
        (MP, 6, "behandlingsstatus", "not_a_number", "error"),
    ]
    text = reg.validation.table.to_csv() + reg.validation.summary()
    assert "p-secret" not in text and "p1" not in text
    assert accounting(reg) == {MP: (5, 3, 2)}


def test_quoted_newline_keeps_line_numbers(tmp_path: Path) -> None:
    # a unit title with a line break inside quotes: the record spans lines 2-3, so the next row is line 4
    text = dump_text("Målepunkt", CLEAN_MP).replace("TSB poliklinikk Bergen", '"TSB\r\npoliklinikk"', 1)
    text = text.replace("10.06.2021;4", "10.06.2021;4x")
    reg = read_extract(write(tmp_path, {MP: text}))
    # the ending (line 4) is rejected, so the follow-up (line 5) has no ending left: the rejection cascades
    assert row_findings(reg) == [
        (MP, 4, "behandlingsstatus", "not_a_number", "error"),
        (MP, 5, "dato_mp_beh", "followup_without_ending", "error"),
    ]
    assert accounting(reg) == {MP: (3, 1, 2)}


def test_network_work_invalid_boolean(tmp_path: Path) -> None:
    row = {
        "PasientGUID": "n1",
        "dato_utskriving": "03.03.2022",
        "nettverksmote": "2",
        "invitert_familie": "kanskje",
        "deltok_familie": "-1",
        "invitert_fastlege": "True",
        "deltok_fastlege": "0",
    }
    reg = read_extract(
        write(tmp_path, {MP: dump_text("Målepunkt", CLEAN_MP), NETT: dump_text("Nettverksarbeid", [row])})
    )
    assert row_findings(reg) == [(NETT, 2, "invitert_familie", "invalid_boolean", "warning")]
    nw = reg.network_work.iloc[0]
    assert pd.isna(nw["invitert_familie"]) and pd.isna(nw["deltok_familie"])  # -1 = missing
    assert bool(nw["invitert_fastlege"]) is True and bool(nw["deltok_fastlege"]) is False
    assert accounting(reg) == {MP: (3, 3, 0), NETT: (1, 1, 0)}


def test_missing_labels_are_missing_without_finding(tmp_path: Path) -> None:
    rows = [
        mp(
            "p1",
            "c1",
            "10.03.2021",
            1,
            plan_beh="Velg verdi",
            dager_rus_30="99",
            bolig="---",
            psykiske_plager="12,5",
        )
    ]
    reg = read_extract(write(tmp_path, {MP: dump_text("Målepunkt", rows)}))
    assert reg.validation.is_clean
    r = reg.registrations.iloc[0]
    assert pd.isna(r["plan_beh"]) and pd.isna(r["dager_rus_30"]) and pd.isna(r["bolig"])
    assert r["psykiske_plager"] == 12.5


def test_no_dump_files_is_an_extract_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(kr.ExtractError, match="no MRS data dump files"):
        read_extract(tmp_path)


def test_newest_dated_folder_is_read(tmp_path: Path) -> None:
    write(tmp_path / "2022-06-30", {MP.replace(DATE, "2022-06-30"): dump_text("Målepunkt", CLEAN_MP[:1])})
    write(tmp_path / DATE, {MP: dump_text("Målepunkt", CLEAN_MP)})
    assert len(read_extract(tmp_path).registrations) == 3
    old = read_extract(tmp_path, extract_date="2022-06-30")
    assert len(old.registrations) == 1 and old.extract_date == pd.Timestamp("2022-06-30")


def test_unknown_column_in_one_form_only_is_text_everywhere(tmp_path: Path) -> None:
    cols = header("Målepunkt") + ["kommentar"]
    rows = [{**r, "kommentar": "ok"} for r in CLEAN_MP]
    reg = read_extract(
        write(
            tmp_path,
            {MP: dump_text("Målepunkt", rows, cols), BASIS: dump_text("Basisopplysninger", CLEAN_BASIS)},
        )
    )
    assert reg.registrations["kommentar"].dtype == "string"
    by_kind = reg.registrations.set_index("kind")["kommentar"]
    assert pd.isna(by_kind["baseline"]) and by_kind["ending"] == "ok"  # the baseline form has no such column


# Issue 17: nothing read is changed or lost silently.

DATE_MSG = (
    "expected a date dd.mm.YYYY (or dd.mm.YYYY HH:MM:SS) with a year from 1800 to 2200; impossible or "
    "unreadable date; row rejected"
)


def value_findings(reg: kr.Registry) -> list[tuple]:
    """(file, line, column, value as written, rule, message) of every finding with a line."""
    t = reg.validation.table
    t = t[t["row"].notna()]
    return [
        (f.file, int(f.row), None if pd.isna(f.column) else f.column, None if pd.isna(f.value) else f.value)
        + (f.rule, f.message)
        for f in t.itertuples()
    ]


@pytest.mark.parametrize("date", ["04.04.2610", "01.01.9999", "01.01.2263", "31.12.2201", "01.01.1799"])
def test_date_outside_the_year_range_is_a_finding_with_its_text(tmp_path: Path, date: str) -> None:
    # every other date of the file is a clean dd.mm.YYYY, so the column takes the fast (one-kernel) path;
    # 04.04.2610 used to wrap to 13.09.2025 and 01.01.9999 to 31.03.1815
    rows = CLEAN_MP + [mp("p2", "c2", date, 1)]
    reg = read_extract(write(tmp_path, {MP: dump_text("Målepunkt", rows)}))
    assert value_findings(reg) == [(MP, 5, "dato_mp_beh", date, "invalid_date", DATE_MSG)]
    assert accounting(reg) == {MP: (4, 3, 1)}
    assert pd.Timestamp("2025-09-13") not in set(reg.registrations["date"])


def test_date_at_the_edge_of_the_year_range_is_read(tmp_path: Path) -> None:
    rows = CLEAN_MP + [mp("p2", "c2", "31.12.2200", 1)]
    reg = read_extract(write(tmp_path, {MP: dump_text("Målepunkt", rows)}), extract_date="31.12.2200")
    assert row_findings(reg) == []
    assert pd.Timestamp("2200-12-31") in set(reg.registrations["date"])


def lines_of(reg: kr.Registry, file: str) -> dict[str, int]:
    return reg.validation.lines.set_index("file").loc[file].to_dict()


def test_unbalanced_quote_is_reported_where_it_opened_and_the_rest_is_read(tmp_path: Path) -> None:
    # line 3 (the ending) opens a quote in the unit title that never closes: before, lines 3-N became one field
    rows = CLEAN_MP + [mp(f"q{i}", f"cq{i}", "01.02.2021", 1) for i in range(50)]
    text = dump_text("Målepunkt", rows)
    lines = text.split("\r\n")
    lines[2] = lines[2].replace("TSB poliklinikk Bergen", '"TSB poliklinikk Bergen', 1)
    reg = read_extract(write(tmp_path, {MP: "\r\n".join(lines)}))
    assert value_findings(reg)[:2] == [
        (
            MP,
            3,
            None,
            None,
            "unbalanced_quote",
            "a '\"' opened on this line is not closed where the row ends: the next 51 line(s) would have been "
            "swallowed into one field; this line rejected, the lines after it read on their own",
        ),
        (
            MP,
            4,
            "dato_mp_beh",
            "15.06.2022",
            "followup_without_ending",
            "a one-year follow-up in a course without an ending; row rejected",
        ),
    ]
    assert len(value_findings(reg)) == 2  # the 50 rows after the follow-up are read and accepted
    assert accounting(reg) == {MP: (53, 51, 2)}
    assert lines_of(reg, MP) == {"lines": 54, "header": 1, "blank": 0, "continued": 0, "rows": 53}


def test_unclosed_quote_on_the_last_line(tmp_path: Path) -> None:
    text = dump_text("Målepunkt", CLEAN_MP).replace("15.06.2022", '"15.06.2022')
    reg = read_extract(write(tmp_path, {MP: text}))
    # a record running to the end of the file is one line long: not "unbalanced" but a wrong field count
    assert row_findings(reg) == [(MP, 4, None, "wrong_field_count", "error")]
    assert accounting(reg) == {MP: (3, 2, 1)}


def test_last_line_cut_right_after_a_separator_is_reported(tmp_path: Path) -> None:
    last = header("Målepunkt")[-1]
    rows = CLEAN_MP[:2] + [{**CLEAN_MP[2], last: "3"}]
    text = dump_text("Målepunkt", rows)
    assert text.endswith(";3;\r\n")
    cut = text[: -len("3;\r\n")]  # the last line loses its last value and the trailing ';', right after a ';'
    reg = read_extract(write(tmp_path, {MP: cut}))
    assert value_findings(reg) == [
        (
            MP,
            4,
            None,
            None,
            "truncated_line",
            "the file ends in this line without a line break and the line lacks its last field: the file was "
            "cut; row rejected",
        )
    ]
    assert accounting(reg) == {MP: (3, 2, 1)}


def test_last_line_without_line_break_but_complete_is_read(tmp_path: Path) -> None:
    reg = read_extract(write(tmp_path, {MP: dump_text("Målepunkt", CLEAN_MP).rstrip("\r\n")}))
    assert row_findings(reg) == [] and accounting(reg) == {MP: (3, 3, 0)}


def test_blank_and_continued_lines_are_accounted(tmp_path: Path) -> None:
    text = dump_text("Målepunkt", CLEAN_MP).replace("TSB poliklinikk Bergen", '"TSB\r\npoliklinikk"', 1)
    text = text.replace("\r\n", "\r\n\r\n", 1)  # a blank line after the header
    reg = read_extract(write(tmp_path, {MP: text}))
    assert row_findings(reg) == [] and accounting(reg) == {MP: (3, 3, 0)}
    assert lines_of(reg, MP) == {"lines": 6, "header": 1, "blank": 1, "continued": 1, "rows": 3}


def test_xlsx_cell_beyond_the_header_is_rejected_like_the_csv_row(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Målepunkt"
    cols = header("Målepunkt")
    ws.append(cols)
    for r in CLEAN_MP:
        ws.append([{**DEFAULTS, **r}.get(c) or None for c in cols])
    ws.cell(row=3, column=len(cols) + 2).value = "1"  # a value two cells right of the last column (row 3)
    ws.append([])  # a blank sheet row 5, then row 6
    ws.append([{**DEFAULTS, **mp("p2", "c2", "01.02.2021", 1)}.get(c) or None for c in cols])
    wb.save(tmp_path / "extract.xlsx")
    reg = read_extract(tmp_path)
    sheet = "extract.xlsx[Målepunkt]"
    assert [f for f in value_findings(reg) if f[0] == sheet] == [
        (
            sheet,
            3,
            None,
            f"{len(cols) + 2} fields",
            "wrong_field_count",
            f"expected values in the {len(cols)} columns of the header only (a value in a cell beyond them: a "
            "shifted row); row rejected",
        ),
        (
            sheet,
            4,
            "dato_mp_beh",
            "15.06.2022",
            "followup_without_ending",
            "a one-year follow-up in a course without an ending; row rejected",
        ),
    ]
    assert accounting(reg) == {sheet: (4, 2, 2)}
    assert lines_of(reg, sheet) == {"lines": 6, "header": 1, "blank": 1, "continued": 0, "rows": 4}


INT_MSG = "expected a whole number (no thousands separator, within the 64-bit integer range)"


def test_unit_id_beyond_int64_is_a_finding_not_a_wrapped_number(tmp_path: Path) -> None:
    # before: 12345678901234567890 became the int64 minimum -9223372036854775808
    rows = CLEAN_MP + [mp("p2", "c2", "01.02.2021", 1, UnitId="12345678901234567890")]
    reg = read_extract(write(tmp_path, {MP: dump_text("Målepunkt", rows)}))
    assert value_findings(reg) == [
        # the value is shown redacted: 20 digits look like a pseudonym, never printed
        (MP, 5, "UnitId", "<pseudonym>", "not_a_number", INT_MSG + "; row rejected")
    ]
    assert accounting(reg) == {MP: (4, 3, 1)}
    assert reg.registrations["unit_id"].tolist() == [10, 10, 10]


def test_unit_id_of_17_digits_is_read_exactly(tmp_path: Path) -> None:
    # 2**53 + 1 is not a float; with a text elsewhere in the column (the slow path) it is still read exactly
    rows = CLEAN_MP + [mp("p2", "c2", "01.02.2021", 1, UnitId="9007199254740993")]
    rows.append(mp("p3", "c3", "01.02.2021", 1, UnitId="ti"))
    reg = read_extract(write(tmp_path, {MP: dump_text("Målepunkt", rows)}))
    assert [f[:5] for f in value_findings(reg)] == [(MP, 6, "UnitId", "ti", "not_a_number")]
    assert 9007199254740993 in reg.registrations["unit_id"].tolist()


@pytest.mark.parametrize("text", ["1.000", "12.500"])
def test_thousands_separator_in_a_day_count_is_a_finding(tmp_path: Path, text: str) -> None:
    rows = [mp("p1", "c1", "10.03.2021", 1, dager_rus_30=text)]
    reg = read_extract(write(tmp_path, {MP: dump_text("Målepunkt", rows)}))
    assert value_findings(reg) == [
        (MP, 2, "dager_rus_30", text, "not_a_number", INT_MSG + "; set to missing, row kept")
    ]
    assert reg.registrations["dager_rus_30"].isna().all()  # not read as 1 (or 12.5)
    assert accounting(reg) == {MP: (1, 1, 0)}


def entry_findings(reg: kr.Registry) -> list[tuple]:
    t = reg.validation.table
    t = t[t["rule"] == "unreadable_entry"]
    return [(f.file, f.severity, f.message) for f in t.itertuples()]


def test_dump_entries_that_are_not_files_are_findings(tmp_path: Path) -> None:
    write(tmp_path, {MP: dump_text("Målepunkt", CLEAN_MP)})
    (tmp_path / BASIS).symlink_to(tmp_path / "gone.csv")  # dangling
    (tmp_path / NETT).symlink_to(tmp_path / NETT)  # a loop
    (tmp_path / "DataDump_Prod_Målepunkt_2022-12-31_0700.csv").mkdir()  # a folder named like a dump
    (tmp_path / "kopi.xlsx").symlink_to(tmp_path / "sub")
    (tmp_path / "sub").mkdir()
    reg = read_extract(tmp_path)
    assert entry_findings(reg) == [
        (BASIS, "error", "a symbolic link to a file that does not exist (a dangling link): not read"),
        (
            "DataDump_Prod_Målepunkt_2022-12-31_0700.csv",
            "error",
            "a folder named like a data file, not a file: not read",
        ),
        (NETT, "error", "a symbolic link in a loop (it points back to itself): not read"),
        ("kopi.xlsx", "error", "a symbolic link to a folder, not a file: not read"),
    ]
    assert accounting(reg) == {MP: (3, 3, 0)}
    assert not reg.validation.is_clean


def test_unreadable_dump_is_a_clear_error_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # tests may run as root, who can read a chmod 000 file: the permission error is raised by a patched read
    from kvarus_research.cli import main

    write(tmp_path, {MP: dump_text("Målepunkt", CLEAN_MP)})
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == MP:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(FileProblem) as exc:
        read_extract(tmp_path)
    assert (exc.value.file, exc.value.rule) == (MP, "unreadable")
    assert str(exc.value) == (
        f"{MP}: cannot be read: permission denied: the user running this may not read it (ask for read access)"
    )
    assert main(["validate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "permission denied" in err and "Traceback" not in err


def test_cr_only_line_ends_are_named(tmp_path: Path) -> None:
    text = dump_text("Målepunkt", CLEAN_MP).replace("\r\n", "\r")
    with pytest.raises(FileProblem) as exc:
        read_extract(write(tmp_path, {MP: text}))
    assert (exc.value.file, exc.value.line, exc.value.rule) == (MP, 1, "line_endings")
    assert str(exc.value) == (
        f"{MP}: the lines end with a carriage return (CR) only, the old Mac line end; MRS dumps end lines with "
        "CRLF (or LF): save the file again with Windows or Unix line ends"
    )


def test_doubled_bom_is_a_note_not_a_missing_column(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf\xef\xbb\xbf" + dump_text("Målepunkt", CLEAN_MP).encode()
    reg = read_extract(write(tmp_path, {MP: data}))
    assert reg.validation.table[["file", "rule", "severity", "message"]].values.tolist() == [
        [
            MP,
            "repeated_bom",
            "warning",
            "the file starts with 2 byte-order marks (saved twice as UTF-8 with BOM?); the extra 1 ignored",
        ]
    ]
    assert accounting(reg) == {MP: (3, 3, 0)}


def test_missing_header_is_named_and_the_row_not_shown(tmp_path: Path) -> None:
    text = dump_text("Målepunkt", [mp("3f2b8c1e-9a4d-4e5f-8b6c-7d8e9f0a1b2c", "c1", "10.03.2021", 1)])
    text = text.split("\r\n", 1)[1]  # the header line dropped: line 1 is a patient's row
    with pytest.raises(FileProblem) as exc:
        read_extract(write(tmp_path, {MP: text}))
    assert (exc.value.file, exc.value.line, exc.value.rule) == (MP, 1, "missing_header")
    assert str(exc.value).startswith(
        f"{MP} line 1: not a header: it holds values (a data row, not shown here)"
    )
    assert "3f2b8c1e" not in str(exc.value) and "10.03.2021" not in str(exc.value)


@pytest.mark.parametrize("supplement", ["enheter.csv", "dekningsgrad.csv"])
def test_dangling_supplement_link_is_a_clear_error(tmp_path: Path, supplement: str) -> None:
    write(tmp_path, {MP: dump_text("Målepunkt", CLEAN_MP)})
    (tmp_path / supplement).symlink_to(tmp_path / "gone.csv")
    with pytest.raises(FileProblem) as exc:
        read_extract(tmp_path)
    assert (exc.value.file, exc.value.rule) == (supplement, "unreadable")
    assert str(exc.value) == f"{supplement}: cannot be read: No such file or directory"
