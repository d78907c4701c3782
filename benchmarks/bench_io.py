"""Benchmark: read and validate an MRS extract of ``scale`` courses, beside pyarrow's raw CSV parse of the same files.

Set-up (not timed as a reading stage): generate the synthetic registry and write it as an extract folder. Then
``pyarrow_raw_parse`` parses every DataDump CSV with ``pyarrow.csv.read_csv`` and nothing else (the floor), and
``read_extract`` reads, types and validates the whole extract into a Registry. The ratio of the two is printed.
Target at 1,000,000 courses: ``read_extract`` ≤ 30 s and ≤ 6 GB peak.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
from pathlib import Path

import pyarrow.csv as pcsv
from run import Stage

import kvarus_research as kr
from kvarus_research.io import read_extract


def stages(scale: int) -> list[Stage]:
    """``write_extract`` (set-up), ``pyarrow_raw_parse`` and ``read_extract`` (rows = registrations read)."""
    state: dict = {}

    def setup() -> int:
        reg = kr.synthetic.generate(scale, seed=1)
        state["dir"] = Path(tempfile.mkdtemp(prefix="kvarus-bench-io-"))
        state["folder"] = kr.synthetic.write_extract(reg, state["dir"])
        n = len(reg.without_opt_outs().registrations)
        del reg
        gc.collect()
        return n

    def raw_parse() -> int:
        rows = 0
        for p in sorted(state["folder"].glob("DataDump_*.csv")):
            table = pcsv.read_csv(p, parse_options=pcsv.ParseOptions(delimiter=";"))
            rows += table.num_rows
            del table
        return rows

    def read() -> int:
        try:
            reg = read_extract(state["folder"])
            assert reg.validation.n_rejected == 0
            return int(reg.validation.rows["read"].sum())
        finally:
            shutil.rmtree(state["dir"], ignore_errors=True)

    return [
        Stage("setup: generate + write_extract", scale, setup),
        Stage("pyarrow_raw_parse", scale, raw_parse),
        Stage("read_extract (read + validate)", scale, read),
    ]
