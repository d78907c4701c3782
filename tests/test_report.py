"""The main job: the whole-flow report on a small synthetic registry.

Checks what a reader relies on: every section and file is there, no identifier leaks, no published count lies
below the disclosure threshold, the same seed gives the same tables, and the page renders in a real browser.
"""

from __future__ import annotations

import filecmp
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest

import kvarus_research as kr
from kvarus_research.cli import main as cli_main
from kvarus_research.report import build_report

SEED, N = 7, 1500
#: Columns that hold counts of people or courses in the report's tables (n_units counts units, not people).
COUNT_COLUMN = re.compile(
    r"^(n|n_(?!units).*|numerator|denominator|missing|rows|cum_events|registered|opted_out|responders)$"
)
SECTIONS = [
    "Data and validation",
    "Cohort",
    "Table 1",
    "Change in outcomes",
    "Reliable and clinically significant change",
    "Longitudinal model",
    "Attrition at one-year follow-up",
    "Retention",
    "Quality indicators",
    "Network work",
    "Provenance",
]


@pytest.fixture(scope="module")
def reports() -> tuple[Path, Path]:
    base = Path(tempfile.mkdtemp(prefix="kvarus-report-"))
    a = build_report(out=base / "a", n_courses=N, seed=SEED, progress=False).parent
    # The second run goes through the command line, as `make report` does.
    assert cli_main(["report", "--out", str(base / "b"), "--courses", str(N), "--seed", str(SEED)]) == 0
    yield a, base / "b"
    shutil.rmtree(base, ignore_errors=True)


def test_every_section_table_and_figure_is_written(reports: tuple[Path, Path]) -> None:
    out, _ = reports
    html = (out / "index.html").read_text(encoding="utf-8")
    for title in SECTIONS:
        assert title in html, title
    tables = sorted((out / "tables").glob("*.csv"))
    figures = sorted((out / "figures").glob("*.png"))
    assert len(tables) >= 15 and len(figures) >= 12
    # every figure exists as PNG and SVG and is embedded in the self-contained page
    for png in figures:
        assert png.with_suffix(".svg").exists()
    assert html.count('src="data:image/png;base64,') == len(figures)
    assert 'src="http' not in html and "<link" not in html  # nothing fetched from outside


def test_no_identifier_in_any_output(reports: tuple[Path, Path]) -> None:
    out, _ = reports
    reg = kr.synthetic.generate(n_courses=N, seed=SEED)
    ids = pd.concat([reg.patients["patient_id"], reg.courses["course_id"]]).astype(str)
    # course ids like "000123" are too short to be identifying on their own; patient GUIDs must never appear
    findings = kr.privacy.scan_outputs(out, identifiers=reg.patients["patient_id"].astype(str).tolist())
    assert len(findings) == 0, findings.head()
    assert len(ids) > N


def test_no_published_count_below_the_threshold(reports: tuple[Path, Path]) -> None:
    out, _ = reports
    checked = 0
    for path in sorted((out / "tables").glob("*.csv")):
        df = pd.read_csv(path, comment="#", dtype=str)
        for col in [c for c in df.columns if COUNT_COLUMN.match(c)]:
            values = pd.to_numeric(df[col], errors="coerce")
            small = values[(values > 0) & (values < 5)]
            assert small.empty, f"{path.name}:{col} publishes counts below 5: {sorted(set(small))}"
            checked += int(values.notna().sum())
    assert checked > 500  # the check looked at real numbers, not empty tables


def test_opted_out_patients_appear_only_as_a_count(reports: tuple[Path, Path]) -> None:
    out, _ = reports
    reg = kr.synthetic.generate(n_courses=N, seed=SEED)
    n_out = int(reg.courses["patient_id"].isin(reg.reserved_patients()).sum())
    flow = pd.read_csv(out / "tables" / "cohort-flow.csv", comment="#")
    assert int(flow.loc[0, "n_before"]) == N
    assert int(flow.loc[0, "n_excluded"]) == n_out
    tables = pd.read_csv(out / "tables" / "registry-tables.csv", comment="#").set_index("table")["rows"]
    assert int(tables["courses"]) == N - n_out


def test_same_seed_gives_identical_tables(reports: tuple[Path, Path]) -> None:
    a, b = reports
    names = sorted(p.name for p in (a / "tables").glob("*.csv"))
    assert names == sorted(p.name for p in (b / "tables").glob("*.csv"))
    match, mismatch, errors = filecmp.cmpfiles(a / "tables", b / "tables", names, shallow=False)
    assert mismatch == [] and errors == []


def test_report_opens_in_headless_chromium(reports: tuple[Path, Path], tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); the CI script installs it")
    out, _ = reports
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
        "--dump-dom",
        (out / "index.html").as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, proc.stderr[-2000:]
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    assert int(attrs["images"]) >= 12
    assert attrs["broken-images"] == "0"
    assert attrs["errors"] == "0"
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE(" in line]
    assert not [line for line in console if "error" in line.lower() or "Uncaught" in line], console


def test_report_on_a_raw_extract_needs_a_key_and_leaks_no_national_id(tmp_path: Path) -> None:
    reg = kr.synthetic.generate(n_courses=800, seed=5)
    folder = kr.synthetic.write_extract(reg, tmp_path / "extract", raw=True)
    # The raw extract does carry national identity numbers (the scan finds them there) ...
    assert len(kr.privacy.scan_outputs(folder)) > 0
    # ... so without a key the report refuses to run (exit code 2, the reason on stderr).
    assert cli_main(["report", str(folder), "--out", str(tmp_path / "no-key")]) == 2
    assert not (tmp_path / "no-key" / "index.html").exists()
    key = kr.privacy.generate_key_file(tmp_path / "secret" / "project.key")
    out = tmp_path / "out"
    assert cli_main(["report", str(folder), "--out", str(out), "--key-file", str(key)]) == 0
    assert len(kr.privacy.scan_outputs(out, identifiers=reg.patients["patient_id"].astype(str).tolist())) == 0
    rows = pd.read_csv(out / "tables" / "validation-rows.csv", comment="#")
    # every file's rows are accounted for: read = accepted + rejected
    assert (rows["read"] == rows["accepted"] + rows["rejected"]).all()
    assert set(rows["form"]) >= {"Basisopplysninger", "Målepunkt"}
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "keyed pseudonyms" in html
