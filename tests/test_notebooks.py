"""Every notebook in notebooks/ is executed top to bottom on synthetic data (outputs are not committed)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_without_error(path: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        f"{path.name}: outputs are committed; clear them (the test suite executes the notebook)"
    )
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    env_before = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        if env_before is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = env_before
    elapsed = time.perf_counter() - start
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"
    ]
    assert not errors
    # Each notebook has prose explaining what it does and why.
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 2
    print(f"{path.name}: {elapsed:.1f} s")


def test_notebooks_are_numbered_in_study_order() -> None:
    stems = [p.stem for p in NOTEBOOKS]
    numbers = [int(s.split("_", 1)[0]) for s in stems]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
