"""``kvarus-research validate``: exit codes 0 (clean), 1 (findings), 2 (unreadable), the summary and --report;
and the ValidationReport's accounting invariant."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

import kvarus_research as kr
from kvarus_research.io import ValidationReport
from kvarus_research.io.cli import add_validate_command, run_validate
from kvarus_research.io.validate import finding_frame

MP = "DataDump_Prod_Målepunkt_2023-01-31_0700.csv"
COLS = [v.name for v in kr.load_codebook().form_variables("Målepunkt")]


def _write(folder: Path, rows: list[dict[str, str]]) -> Path:
    lines = [";".join(COLS) + ";"] + [";".join(r.get(c, "") for c in COLS) + ";" for r in rows]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MP).write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n").encode())
    return folder


def _row(date: str, status: str, **kw: str) -> dict[str, str]:
    return {
        "PasientGUID": "p1",
        "ForlopsID": "c1",
        "UnitId": "10",
        "dato_mp_beh": date,
        "behandlingsstatus": status,
        **kw,
    }


def _args(folder: Path, report: Path | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_validate_command(parser.add_subparsers(dest="command"))
    argv = ["validate", str(folder)] + (["--report", str(report)] if report else [])
    return parser.parse_args(argv)


def test_clean_extract_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = _write(tmp_path / "x", [_row("01.03.2021", "1"), _row("01.06.2021", "4")])
    assert run_validate(_args(folder)) == 0
    out = capsys.readouterr().out
    assert f"{MP} (Målepunkt): 2 rows read, 2 accepted, 0 rejected" in out
    assert "No findings: the extract is clean." in out and "1 courses" in out


def test_findings_exit_1_and_report_written(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = _write(
        tmp_path / "x",
        [_row("01.03.2021", "1"), _row("31.02.2021", "1"), _row("01.06.2021", "4", plan_beh="8")],
    )
    report = tmp_path / "findings.csv"
    assert run_validate(_args(folder, report)) == 1
    out = capsys.readouterr().out
    assert "3 rows read, 2 accepted, 1 rejected" in out
    assert "1 error(s) (rows rejected), 1 warning(s) (rows kept)" in out
    t = pd.read_csv(report)
    assert t[["row", "column", "rule", "severity"]].values.tolist() == [
        [3, "dato_mp_beh", "invalid_date", "error"],
        [4, "plan_beh", "unknown_code", "warning"],
    ]
    assert "p1" not in report.read_text() and "c1" not in report.read_text()


def test_unreadable_extract_exits_2_with_reason(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / MP).write_bytes(b"")
    assert run_validate(_args(folder)) == 2
    err = capsys.readouterr().err
    assert "cannot be read" in err and "the file is empty" in err
    assert run_validate(_args(tmp_path / "nowhere")) == 2


def test_report_refuses_broken_accounting() -> None:
    f = finding_frame("a.csv", [3], "x", ["v"], "invalid_date", "error", "bad")
    rows = pd.DataFrame({"file": ["a.csv"], "form": ["F"], "read": [5], "accepted": [4], "rejected": [0]})
    with pytest.raises(kr.ExtractError, match="read 5 != accepted 4 \\+ rejected 0"):
        ValidationReport(f, rows)
    rows["rejected"] = 1
    rep = ValidationReport(f, rows)
    assert rep.n_rejected == 1 and rep.n_errors == 1 and not rep.is_clean
    rows2 = rows.assign(accepted=3, rejected=2)  # 2 rejected but only one row has an error finding
    with pytest.raises(kr.ExtractError, match="2 rows rejected but 1 rows have an error finding"):
        ValidationReport(f, rows2)


def test_report_by_rule_and_csv(tmp_path: Path) -> None:
    f = pd.concat(
        [
            finding_frame("a.csv", [3, 4], "x", ["1", "2"], "not_a_number", "warning", "bad"),
            finding_frame(
                "b.csv", [2], "PasientGUID", ["secret"], "required", "error", "missing", is_id=True
            ),
        ]
    )
    rows = pd.DataFrame(
        {
            "file": ["a.csv", "b.csv"],
            "form": ["F", "G"],
            "read": [3, 1],
            "accepted": [3, 0],
            "rejected": [0, 1],
        }
    )
    rep = ValidationReport(f, rows)
    assert rep.by_rule()[["severity", "rule", "findings"]].values.tolist() == [
        ["error", "required", 1],
        ["warning", "not_a_number", 2],
    ]
    text = rep.to_csv(tmp_path / "r.csv").read_text()
    assert "secret" not in text and "<id>" in text
    assert repr(rep) == "ValidationReport(2 files, 4 rows read, 1 rejected, 1 errors, 2 warnings)"


def test_unwritable_report_and_missing_folder_exit_2_redacted(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from kvarus_research.cli import main

    folder = _write(tmp_path / "x", [_row("01.03.2021", "1")])
    assert main(["validate", str(folder), "--report", str(tmp_path)]) == 2  # a folder: OSError, no traceback
    err = capsys.readouterr().err
    assert "the findings cannot be written" in err and "Traceback" not in err
    missing = tmp_path / "extract_01018012371"
    assert main(["validate", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "01018012371" not in err and "<id>" in err
