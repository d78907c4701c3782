"""Benchmark: generate the synthetic registry and write it as an MRS extract folder at the given scale."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from run import Stage

import kvarus_research as kr


def stages(scale: int) -> list[Stage]:
    """``generate`` (rows = courses) then ``write_extract`` (rows = registrations written)."""
    state: dict = {}

    def generate() -> int:
        state["registry"] = kr.synthetic.generate(scale, seed=1)
        return scale

    def write() -> int:
        out = Path(tempfile.mkdtemp(prefix="kvarus-bench-"))
        try:
            kr.synthetic.write_extract(state["registry"], out)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        return len(state["registry"].registrations)

    return [Stage("generate", scale, generate), Stage("write_extract", scale, write)]
