"""Messages that name the real problem (issue 18): a mistyped outcome or ``by=`` column is called unknown with the
closest names suggested; CLI items (start-up, help, argument checks) are tested below."""

from __future__ import annotations

import pandas as pd
import pytest

from kvarus_research.errors import AnalysisError
from kvarus_research.outcomes import change


def tiny_long() -> pd.DataFrame:
    rows = [
        (1, "baseline", 20, 1),
        (1, "ending", 10, 1),
        (2, "baseline", 15, 2),
        (2, "ending", 12, 2),
        (3, "baseline", 30, 1),
        (3, "ending", 15, 1),
    ]
    return pd.DataFrame(rows, columns=["course_id", "timepoint", "dager_rus_30", "hovedrusmiddel"])


def test_mistyped_outcome_is_not_a_variable_and_the_close_name_is_suggested():
    with pytest.raises(AnalysisError) as err:
        change(tiny_long(), "dager_rus30")
    msg = str(err.value)
    assert "'dager_rus30' is not a variable in codebook" in msg
    assert "did you mean 'dager_rus_30'" in msg
    assert "not an outcome measure" not in msg


def test_codebook_variable_that_is_no_outcome_keeps_the_direction_message():
    # hovedrusmiddel is in the codebook but has no direction of improvement
    with pytest.raises(AnalysisError, match="is not an outcome measure"):
        change(tiny_long(), "hovedrusmiddel")


def test_mistyped_by_is_not_a_column_and_the_close_name_is_suggested():
    with pytest.raises(AnalysisError) as err:
        change(tiny_long(), "dager_rus_30", by="hovedrusmidel")
    msg = str(err.value)
    assert "'hovedrusmidel' is neither a column" in msg
    assert "did you mean 'hovedrusmiddel'" in msg
    assert "covariate" not in msg


def test_no_suggestion_when_nothing_is_close():
    with pytest.raises(AnalysisError) as err:
        change(tiny_long(), "dager_rus_30", by="zzzz")
    assert "did you mean" not in str(err.value)


# -- command line ----------------------------------------------------------------------------------------------


def test_version_does_not_import_the_sub_commands(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from kvarus_research.cli import main; rc = main(['--version']); "
        "print(rc, 'kvarus_research.indicators.export' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["kvarus-research 0.1.0", "0 False False"]


def test_report_help_shows_the_defaults(capsys):
    from kvarus_research.cli import main
    from kvarus_research.report.build import DEFAULT_COURSES, DEFAULT_SEED
    from kvarus_research.report.cli import SYNTHETIC_COURSES, SYNTHETIC_SEED

    assert (SYNTHETIC_SEED, SYNTHETIC_COURSES) == (DEFAULT_SEED, DEFAULT_COURSES)
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in (
        "(default: report)",
        "(default: 2026)",
        "(default: 20000)",
        "(default: norway)",
        "(default: the synthetic registry)",
        "(default: every course with a baseline)",
    ):
        assert shown in text
    assert "(default: None)" not in text


def test_report_checks_a_missing_cohort_file_before_reading_anything(tmp_path, capsys, monkeypatch):
    import kvarus_research.report.build as build
    from kvarus_research.cli import main

    def must_not_run(*a, **k):  # the extract must not be read when the cohort file is missing
        raise AssertionError("build_report was called")

    monkeypatch.setattr(build, "build_report", must_not_run)
    rc = main(["report", "--out", str(tmp_path / "r"), "--cohort", str(tmp_path / "cohort.yml")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.strip().endswith("cohort.yml: no such file")
    assert len(err.strip().splitlines()) == 1
    rc = main(["report", str(tmp_path / "no-extract"), "--out", str(tmp_path / "r")])
    assert rc == 2
    assert "no such folder" in capsys.readouterr().err


def test_indicators_takes_the_folder_positionally_and_still_accepts_extract():
    from kvarus_research.cli import build_parser

    parser = build_parser()
    a = parser.parse_args(["indicators", "extract/", "--out", "o"])
    b = parser.parse_args(["indicators", "--extract", "extract/", "--out", "o"])
    assert str(a.extract) == "extract"
    assert a.extract_option is None
    assert b.extract is None
    assert str(b.extract_option) == "extract"


def test_impossible_date_in_cohort_yaml_is_one_cohort_error_naming_file_key_value_and_format(tmp_path):
    import kvarus_research as kr
    from kvarus_research.errors import CohortError

    # 2021-02-30 matches YAML's date pattern, so PyYAML itself used to raise a bare ValueError
    path = tmp_path / "cohort.yaml"
    path.write_text("criteria:\n- criterion: started_between\n  start: 2021-02-30\n  end: 2023-12-31\n")
    reg = kr.synthetic.generate(n_courses=100, seed=1)
    with pytest.raises(CohortError) as err:
        kr.Cohort.from_yaml(path, reg)
    msg = str(err.value)
    assert msg.startswith(f"{path}: started_between start: '2021-02-30' is not a real date")
    assert "YYYY-MM-DD" in msg
    # a valid file still reads its dates: 2021-01-01 .. 2023-12-31 keeps the same courses as the API call
    path.write_text("criteria:\n- criterion: started_between\n  start: 2021-01-01\n  end: 2023-12-31\n")
    assert kr.Cohort.from_yaml(path, reg).n == kr.Cohort(reg).started_between("2021-01-01", "2023-12-31").n


def test_cli_prints_a_cohort_error_as_one_line(capsys, monkeypatch):
    import kvarus_research.report.build as build
    from kvarus_research.cli import main
    from kvarus_research.errors import CohortError

    def bad_cohort(*a, **k):
        raise CohortError("cohort.yaml: started_between start: '2021-02-30' is not a real date")

    monkeypatch.setattr(build, "build_report", bad_cohort)
    assert main(["report", "--out", "r"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "kvarus-research report: cohort.yaml: started_between start: '2021-02-30' is not a real date"
    ]


def test_every_readme_command_parses_as_written():
    import shlex
    from pathlib import Path

    from kvarus_research.cli import build_parser

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    lines = [ln for ln in readme.splitlines() if ln.startswith(".venv/bin/kvarus-research ")]
    commands = [shlex.split(ln, comments=True)[1:] for ln in lines]
    assert [c[0] for c in commands] == ["synth", "validate", "keygen", "pseudonymize", "indicators", "report"]
    parser = build_parser()
    for argv in commands:
        args = parser.parse_args(argv)
        assert args.handler is not None
        if argv[0] in ("validate", "pseudonymize", "indicators", "report"):
            # one argument style: the folder comes first, as a positional argument
            assert argv[1] == "extract/"
            assert "extract/" in {str(v) + "/" for v in vars(args).values()} | {
                str(v) for v in vars(args).values()
            }


def test_deprecated_extract_option_still_reads_the_folder_and_says_so(tmp_path, capsys, monkeypatch):
    import kvarus_research as kr
    import kvarus_research.indicators.export as export
    from kvarus_research.cli import main

    seen = []
    monkeypatch.setattr(kr, "read_extract", lambda folder: seen.append(str(folder)) or "registry")
    monkeypatch.setattr(export, "write_indicator_outputs", lambda reg, out, rules: [reg])
    assert main(["indicators", "--extract", "old/", "--out", str(tmp_path)]) == 0
    assert main(["indicators", "new/", "--out", str(tmp_path)]) == 0
    assert seen == ["old", "new"]
    err = capsys.readouterr().err
    assert err.count("--extract is deprecated") == 1
