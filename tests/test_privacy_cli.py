"""``kvarus-research pseudonymize``: an extract in, a pseudonymised extract and a count report out, no leak."""

from __future__ import annotations

import pandas as pd
import pytest

import kvarus_research as kr
from kvarus_research.cli import main
from kvarus_research.privacy import generate_key_file, scan_outputs


@pytest.fixture(scope="module")
def raw_extract(tmp_path_factory):
    from kvarus_research.synthetic import write_extract

    reg = kr.synthetic.generate(n_courses=300, seed=11)
    return write_extract(reg, tmp_path_factory.mktemp("raw"), raw=True), reg


def test_cli_pseudonymizes_and_scans(raw_extract, tmp_path, capsys):
    folder, reg = raw_extract
    key = generate_key_file(tmp_path / "secure" / "project.key")
    out = tmp_path / "out"
    link = tmp_path / "secure" / "link.csv"
    code = main(
        ["pseudonymize", str(folder), "--key-file", str(key), "--out", str(out), "--linkage-file", str(link)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "leak scan: no identity number or original id found" in printed
    original = kr.read_extract(folder)
    again = kr.read_extract(next(p for p in out.iterdir() if p.is_dir()))
    # same shape: every course and registration is still there, with new ids
    assert len(again.courses) == len(original.courses)
    assert len(again.registrations) == len(original.registrations)
    assert not set(again.patients["patient_id"]) & set(original.patients["patient_id"])
    assert "Fodselsnummer" not in again.registrations.columns
    # the linkage key covers every patient id in any table, and lies outside the output
    ids = pd.concat([original.registrations["patient_id"], original.network_work["patient_id"]]).nunique()
    assert len(pd.read_csv(link)) == ids
    assert scan_outputs(out, identifiers=set(original.patients["patient_id"])).empty
    report = (out / "pseudonymization_report.txt").read_text()
    assert f"unique patient ids replaced: {ids}" in report
    assert "validation report removed: 1" in report  # it quotes rejected values, which can be ids
    for pid in original.patients["patient_id"].head(50):
        assert pid not in report and pid not in printed


def test_cli_refuses_missing_key_and_linkage_inside_output(raw_extract, tmp_path, monkeypatch, capsys):
    folder, _ = raw_extract
    monkeypatch.delenv("KVARUS_PSEUDONYM_KEY", raising=False)
    assert main(["pseudonymize", str(folder), "--out", str(tmp_path / "o1")]) == 2
    assert "no pseudonym key" in capsys.readouterr().err
    key = generate_key_file(tmp_path / "k")
    out = tmp_path / "o2"
    args = [
        "pseudonymize",
        str(folder),
        "--key-file",
        str(key),
        "--out",
        str(out),
        "--linkage-file",
        str(out / "l.csv"),
    ]
    assert main(args) == 2
    assert "must not lie inside the output folder" in capsys.readouterr().err
