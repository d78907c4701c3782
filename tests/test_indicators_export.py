"""Writing every indicator output (the ``indicators`` command): only protected numbers and no identifiers."""

from __future__ import annotations

import argparse

import pandas as pd

import kvarus_research as kr
from kvarus_research.indicators import kvarus_indicators
from kvarus_research.indicators.export import add_indicators_command


def test_indicators_command_writes_protected_outputs(tmp_path, capsys, artifacts) -> None:
    parser = argparse.ArgumentParser(prog="kvarus-research")
    add_indicators_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["indicators", "--out", str(tmp_path), "--courses", "800", "--seed", "11"])
    assert args.handler(args) == 0
    assert "wrote" in capsys.readouterr().out
    names = {p.name for p in tmp_path.iterdir()}
    assert {"plan_beh.csv", "plan_beh_bars.png", "gjensidig_funnel.png", "coverage.csv", "network_work.csv",
            "network_meeting.png", "definitions.txt"} <= names  # fmt: skip
    assert (tmp_path / "definitions.txt").read_text(encoding="utf-8").count("Population:") >= 8
    # The CSV is the protected table: its published cells equal the protected table's, suppressed cells ":".
    reg = kr.synthetic.generate(n_courses=800, seed=11)
    shown = kvarus_indicators(reg)["plan_krise"].protected().display()
    csv = pd.read_csv(tmp_path / "plan_krise.csv", dtype=str, keep_default_na=False)
    assert csv["numerator"].tolist() == [str(v) if str(v) != "<NA>" else "" for v in shown["numerator"]]
    all_csv = "".join(
        p.read_text(encoding="utf-8") for p in tmp_path.iterdir() if p.suffix in (".csv", ".txt")
    )
    assert ":" in all_csv and "<5" not in all_csv  # small cells exist and are shown with the neutral marker
    ids = list(reg.patients["patient_id"].astype(str)[:200]) + list(
        reg.courses["course_id"].astype(str)[:200]
    )
    assert not [i for i in ids if i in all_csv]
    (artifacts / "export_plan_beh_bars.png").write_bytes((tmp_path / "plan_beh_bars.png").read_bytes())
