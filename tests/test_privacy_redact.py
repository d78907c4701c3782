"""One redaction path: identity numbers, GUIDs, pseudonyms and registered keys never reach a message, a finding,
a log record, a warning or what the command line prints, whatever column, header or file name they were in."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kvarus_research as kr
from kvarus_research.cli import main
from kvarus_research.errors import ExtractError, KvarusError, PrivacyWarning, RegistryError
from kvarus_research.privacy import make_national_ids
from kvarus_research.privacy.redact import get_logger, redact, register_secret, warn

KINDS = ["tenor", "fnr", "dnr", "hnr", "nav_synthetic"]
# text around an identifier: anything, but not a digit or hex letter right next to it (those would make it a
# longer run: a different token)
filler = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "M", "N", "P", "S", "Z"]), max_size=30
)
separator = st.sampled_from([" ", ";", ",", "'", '"', ": ", "(", ")", "_", "/", "=", "\t", "\n", "ø", "x"])


@st.composite
def national_ids(draw: st.DrawFn) -> str:
    birth = draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2039, 12, 31)))
    sex = draw(st.sampled_from(["male", "female"]))
    kind = draw(st.sampled_from(KINDS))
    number = str(make_national_ids([pd.Timestamp(birth)], sex, kind=kind, rng=draw(st.integers(0, 2**32)))[0])
    style = draw(st.sampled_from(["plain", " ", ".", "-"]))
    return number if style == "plain" else number[:6] + style + number[6:]


@st.composite
def guids(draw: st.DrawFn) -> str:
    g = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
    g = g.upper() if draw(st.booleans()) else g
    return "{" + g + "}" if draw(st.booleans()) else g


@st.composite
def pseudonyms(draw: st.DrawFn) -> str:
    digits = draw(st.text(alphabet="0123456789abcdef", min_size=16, max_size=16))
    prefix = draw(st.sampled_from(["", "P", "C", "N"]))
    suffix = draw(st.sampled_from(["", "-0001", "-0012"]))
    return prefix + digits + suffix, prefix + digits


@settings(deadline=None, max_examples=200)
@given(filler, separator, national_ids(), separator, filler)
def test_any_identity_number_in_any_text_is_gone(
    before: str, s1: str, number: str, s2: str, after: str
) -> None:
    text = before + s1 + number + s2 + after
    out = redact(text)
    assert number not in out and number.replace(" ", "").replace(".", "").replace("-", "") not in out
    assert "<id>" in out


@settings(deadline=None, max_examples=200)
@given(filler, separator, guids(), separator, filler)
def test_any_guid_in_any_text_is_gone(before: str, s1: str, guid: str, s2: str, after: str) -> None:
    out = redact(before + s1 + guid + s2 + after)
    assert guid.strip("{}").lower() not in out.lower()
    assert "<guid>" in out


@settings(deadline=None, max_examples=100)
@given(filler, separator, pseudonyms(), separator, filler)
def test_any_pseudonym_in_any_text_is_gone(
    before: str, s1: str, pseudo: tuple[str, str], s2: str, after: str
) -> None:
    text, core = pseudo
    out = redact(before + s1 + text + s2 + after)
    assert core[-16:] not in out


@settings(deadline=None, max_examples=200)
@given(
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)),
    st.integers(0, 9_999_999_999),
    st.integers(1900, 2100),
    st.floats(0, 1000, allow_nan=False).map(lambda x: round(x, 2)),
)
def test_ordinary_dates_counts_years_and_unit_ids_survive(
    day: dt.date, count: int, year: int, x: float
) -> None:
    text = (
        f"{day:%d.%m.%Y} {day:%Y-%m-%d}: {count} rows in {year}; unit {count}, mean {x}, "
        f"{str(x).replace('.', ',')} %"
    )
    assert redact(text) == text


@settings(deadline=None, max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            national_ids(),
            guids(),
            pseudonyms().map(lambda p: p[0]),
            st.text(alphabet="0123456789abcdefABCDEF- .{}", max_size=40),
        ),
        max_size=8,
    )
)
def test_redact_is_idempotent(parts: list[str]) -> None:
    once = redact("".join(parts))
    assert redact(once) == once


def test_registered_secret_and_its_repr_are_replaced() -> None:
    secret = "s3cret'with-quote-" + uuid.uuid4().hex[:6] + "-Zq"
    register_secret(secret)
    assert redact(f"the key {secret} here") == "the key <key> here"
    assert secret not in redact(f"value {secret!r}") and "<key>" in redact(f"value {secret!r}")
    register_secret("short")  # too short: ordinary words are never blanked
    assert redact("a short word") == "a short word"


def test_every_kvarus_error_and_warning_is_redacted() -> None:
    fnr, guid = "01018012371", "3f2b8c1e-9a4d-4e5f-8b6c-7d8e9f0a1b2c"
    for err in (
        KvarusError(f"x {fnr}"),
        ExtractError(f"{guid} bad"),
        RegistryError(f"p {fnr}", [f"row {guid}"]),
    ):
        assert fnr not in str(err) and guid not in str(err) and fnr not in repr(err)
    assert RegistryError("x", [f"row {guid}"]).problems == ["row <guid>"]
    secret = "registered-after-the-error-" + uuid.uuid4().hex[:8]
    late = KvarusError(f"key {secret}")
    register_secret(secret)
    assert secret not in str(late)  # __str__ redacts again
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn(f"odd file {fnr}.csv", PrivacyWarning)
        warnings.warn(PrivacyWarning(f"direct {guid}"), stacklevel=2)
    assert [str(w.message) for w in caught] == ["odd file <id>.csv", "direct <guid>"]


def test_library_loggers_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    fnr = "01018012371"
    with caplog.at_level(logging.INFO, logger="kvarus_research"):
        logging.getLogger("kvarus_research").info("top %s", fnr)
        get_logger("kvarus_research.io.test").warning("child %s %s", fnr, "P0123456789abcdef")
    assert [r.getMessage() for r in caplog.records] == ["top <id>", "child <id> <pseudonym>"]


# -- malformed extracts: identity numbers and GUIDs where they do not belong ------------------------------------

FNRS = [
    str(x)
    for x in make_national_ids(
        [pd.Timestamp("1980-01-01"), pd.Timestamp("1975-06-15")] * 3, "female", kind="fnr", rng=7
    )
]
GUIDS = [str(uuid.UUID(int=i * 7919 + 12345)) for i in range(1, 6)]
FILE_FNR = str(make_national_ids([pd.Timestamp("1990-03-04")], "male", kind="dnr", rng=3)[0])


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kvarus_research.synthetic import write_extract

    return write_extract(kr.synthetic.generate(n_courses=50, seed=1), tmp_path_factory.mktemp("x"), raw=True)


def _lines(path: Path) -> list[str]:
    return path.read_bytes().decode("utf-8-sig").split("\r\n" if b"\r\n" in path.read_bytes() else "\n")


def _write(path: Path, lines: list[str]) -> None:
    nl = "\r\n" if b"\r\n" in path.read_bytes() else "\n"
    path.write_bytes(b"\xef\xbb\xbf" + nl.join(lines).encode())


def _dump(folder: Path, form: str) -> Path:
    return next(p for p in folder.iterdir() if p.name.startswith(f"DataDump_Prod_{form}_"))


@pytest.fixture()
def corrupted(extract: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """A copy of the extract with identity numbers and GUIDs in data columns, a header and a file name."""
    folder = tmp_path / extract.name
    shutil.copytree(extract, folder)
    mp = _dump(folder, "Målepunkt")
    lines = _lines(mp)
    header = lines[0].split(";")
    col = {c: i for i, c in enumerate(header)}
    for n, (fnr, guid) in enumerate(zip(FNRS, GUIDS), start=1):  # a shifted / mistyped value in data columns
        fields = lines[n].split(";")
        fields[col["dager_rus_30"]] = fnr
        fields[col["plan_beh"]] = guid
        fields[col["dato_mp_beh"]] = f"{fnr[:6]} {fnr[6:]}" if n % 2 else guid.upper()
        fields[col["UnitId"]] = guid if n == 3 else fields[col["UnitId"]]
        lines[n] = ";".join(fields)
    header[col["tilfredshet"]] = FNRS[-1]  # an identity number as a column name
    lines[0] = ";".join(header)
    _write(mp, lines)
    base = _dump(folder, "Basisopplysninger")
    blines = _lines(base)
    fields = blines[1].split(";")
    fields[3] = GUIDS[0] + "x"  # UnitId column: a GUID glued to text
    blines[1] = ";".join(fields)
    _write(base, blines)
    # a dump whose form name is an identity number: reported as an unknown form, by its file name
    (folder / f"DataDump_Prod_{FILE_FNR}_2026-06-30_0000.csv").write_bytes(mp.read_bytes())
    return folder, [*FNRS, *GUIDS, FILE_FNR, *(f"{f[:6]} {f[6:]}" for f in FNRS)]


def _assert_absent(texts: list[str], secrets: list[str]) -> None:
    for text in texts:
        low = text.lower()
        for s in secrets:
            assert s.lower() not in low, f"{s} appears in output"


def test_validate_never_prints_or_writes_inserted_ids(corrupted, tmp_path, capsys) -> None:
    folder, inserted = corrupted
    report = tmp_path / "findings.csv"
    assert main(["validate", str(folder), "--report", str(report)]) == 1
    out, err = capsys.readouterr()
    findings = pd.read_csv(report, dtype=str)
    # the corrupt values were found: reported by their column and line, shown as markers
    assert {"dager_rus_30", "plan_beh"} <= set(findings["column"].dropna())
    assert {"<id>", "<guid>"} <= set(findings["value"].dropna())
    assert "unknown_form" in set(findings["rule"])
    assert "<id>" in out
    _assert_absent(
        [out, err, report.read_text(encoding="utf-8"), repr(kr.read_extract(folder).validation)], inserted
    )
    reg = kr.read_extract(folder)
    _assert_absent([reg.validation.summary(50), reg.validation.table.to_csv()], inserted)


def test_validate_in_a_subprocess_never_prints_inserted_ids(corrupted, tmp_path) -> None:
    folder, inserted = corrupted
    report = tmp_path / "f.csv"
    run = subprocess.run(
        [sys.executable, "-m", "kvarus_research.cli", "validate", str(folder), "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr
    _assert_absent([run.stdout, run.stderr, report.read_text(encoding="utf-8")], inserted)


def test_dump_without_header_names_the_expected_header_not_the_row(extract, tmp_path, capsys) -> None:
    folder = tmp_path / extract.name
    shutil.copytree(extract, folder)
    mp = _dump(folder, "Målepunkt")
    lines = _lines(mp)
    first_row = lines[1].split(";")
    _write(mp, lines[1:])
    assert main(["validate", str(folder)]) == 2
    out, err = capsys.readouterr()
    assert "the first line of" in err and "should be the header with the columns PasientGUID;" in err
    assert "Traceback" not in err
    for value in [v for v in first_row if len(v) >= 3]:  # the patient's row: no field of it is printed
        assert value not in err and value not in out
    with pytest.raises(ExtractError) as exc:
        kr.read_extract(folder)
    assert exc.value.rule == "missing_header" and all(
        v not in str(exc.value) for v in first_row if len(v) >= 3
    )


def test_header_with_id_names_and_a_missing_required_column(extract, tmp_path, capsys) -> None:
    folder = tmp_path / extract.name
    shutil.copytree(extract, folder)
    base = _dump(folder, "Basisopplysninger")
    lines = _lines(base)
    header = lines[0].split(";")
    header[header.index("dato_basis")] = GUIDS[1]
    lines[0] = ";".join(header)
    _write(base, lines)
    assert main(["validate", str(folder)]) == 2
    err = capsys.readouterr().err
    assert GUIDS[1] not in err and "Traceback" not in err
    assert "should be the header" in err or "not a header" in err


def test_pseudonymize_never_prints_ids_nor_the_key(corrupted, tmp_path, capsys) -> None:
    folder, inserted = corrupted
    key_file = kr.privacy.generate_key_file(tmp_path / "secure" / "project.key")
    key_text = key_file.read_text().strip()
    out = tmp_path / "out"
    code = main(["pseudonymize", str(folder), "--key-file", str(key_file), "--out", str(out)])
    printed, err = capsys.readouterr()
    assert code in (0, 1)
    written = [p.read_text(encoding="utf-8", errors="ignore") for p in out.rglob("*.txt")]
    _assert_absent([printed, err, *written], [*inserted, key_text])
    # the key typed where its file belongs: refused, exit 2, never echoed (library call and subprocess)
    assert main(["pseudonymize", str(folder), "--key-file", key_text, "--out", str(tmp_path / "o2")]) == 2
    printed, err = capsys.readouterr()
    assert "does not name an existing file" in err and key_text not in printed + err
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "kvarus_research.cli",
            "pseudonymize",
            str(folder),
            "--key-file",
            key_text,
            "--out",
            str(tmp_path / "o3"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert key_text not in run.stdout + run.stderr and "value is not shown" in run.stderr


def test_key_text_never_in_library_errors(tmp_path) -> None:
    key_text = "Zq8#mV2!pL9$wX4@rT7&nB3*kJ6^hG1%dF5(sA0)"
    for call in (kr.privacy.load_key, kr.privacy.keys.as_key):
        with pytest.raises(kr.PrivacyError) as exc:
            call(key_text)
        assert key_text not in str(exc.value) and key_text not in repr(exc.value)
    # once seen, the text is hidden from every later message too
    assert key_text not in str(KvarusError(f"echo {key_text}"))


def test_key_typed_as_a_stray_argument_is_not_echoed(capsys) -> None:
    key_text = "Zq8-mV2-pL9-wX4-rT7-nB3-kJ6-hG1-dF5-sA0"
    with pytest.raises(SystemExit) as exc:
        main(["pseudonymize", "extract", key_text, "--out", "o"])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert key_text not in captured.out + captured.err and "not shown" in captured.err
