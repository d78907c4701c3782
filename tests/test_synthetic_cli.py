"""``kvarus-research synth``: argument parsing, the files written, and a registry that survives parquet."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

import kvarus_research as kr
from kvarus_research.synthetic.cli import add_synth_command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kvarus-research")
    add_synth_command(parser.add_subparsers(dest="command"))
    return parser


def test_synth_writes_the_extract_and_reports_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parser().parse_args(["synth", "--courses", "300", "--seed", "4", "--out", str(tmp_path), "--raw"])
    assert args.handler(args) == 0
    folder = tmp_path / "2026-06-30"
    assert (folder / "rapport.xlsx").exists() and len(list(folder.glob("DataDump_Prod_*.csv"))) == 3
    header = next(folder.glob("DataDump_Prod_Basisopplysninger_*.csv")).read_text(encoding="utf-8-sig")
    assert header.startswith("PasientGUID;Fodselsnummer;")
    reg = kr.synthetic.generate(300, seed=4)
    out = capsys.readouterr().out
    assert f"300 courses, {len(reg.registrations)} registrations" in out
    assert f"({len(reg.reserved_patients())} opted-out patients left out of the files)" in out


def test_synth_refuses_zero_courses(tmp_path: Path) -> None:
    args = _parser().parse_args(["synth", "--courses", "0", "--out", str(tmp_path)])
    with pytest.raises(kr.KvarusError, match="--courses must be at least 1, got 0"):
        args.handler(args)


def test_synth_defaults() -> None:
    args = _parser().parse_args(["synth", "--out", "x"])
    assert (args.courses, args.seed, args.raw, args.extract_date) == (5000, 0, False, "2026-06-30")


def test_registry_with_truth_survives_parquet(tmp_path: Path) -> None:
    reg = kr.synthetic.generate(400, seed=9)
    back = kr.Registry.from_parquet(reg.to_parquet(tmp_path))
    pd.testing.assert_frame_equal(back.courses, reg.courses)
    assert back.truth["change"] == reg.truth["change"]
    assert back.truth["ending_hazards"] == reg.truth["ending_hazards"]
