"""write_extract: the MRS folder layout, the CSV dialect, byte-identical output, opt-outs left out, raw ids."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kvarus_research as kr
from kvarus_research.codebook.rapport import read_rapport
from kvarus_research.synthetic.writer import _date_text, _float_text, _int_text

N = 2000


@pytest.fixture(scope="module")
def reg() -> kr.Registry:
    return kr.synthetic.generate(N, seed=21)


@pytest.fixture(scope="module")
def folder(reg: kr.Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kr.synthetic.write_extract(reg, tmp_path_factory.mktemp("extract"))


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _read(path: Path) -> pd.DataFrame:
    """Independent reading with pandas: BOM-aware UTF-8, ';', decimal comma, everything as text."""
    return pd.read_csv(path, sep=";", encoding="utf-8-sig", dtype=str, keep_default_na=False)


def test_folder_layout_and_file_names(folder: Path) -> None:
    assert folder.name == "2026-06-30"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "DataDump_Prod_Basisopplysninger_2026-06-30_0000.csv",
        "DataDump_Prod_Målepunkt_2026-06-30_0000.csv",
        "DataDump_Prod_Nettverksarbeid_2026-06-30_0000.csv",
        "dekningsgrad.csv",
        "enheter.csv",
        "rapport.xlsx",
    ]


def test_extract_time_goes_into_folder_and_file_names(reg: kr.Registry, tmp_path: Path) -> None:
    out = kr.synthetic.write_extract(reg, tmp_path, extract_time="2026-07-01 13:45")
    assert out == tmp_path / "2026-07-01"
    assert (out / "DataDump_Prod_Målepunkt_2026-07-01_1345.csv").exists()


def test_same_registry_and_same_seed_give_byte_identical_files(
    reg: kr.Registry, folder: Path, tmp_path: Path
) -> None:
    again = kr.synthetic.write_extract(reg, tmp_path / "a")
    regenerated = kr.synthetic.write_extract(kr.synthetic.generate(N, seed=21), tmp_path / "b")
    assert _hashes(folder) == _hashes(again) == _hashes(regenerated)
    other = kr.synthetic.write_extract(kr.synthetic.generate(N, seed=22), tmp_path / "c")
    differ = {k for k, v in _hashes(other).items() if _hashes(folder)[k] != v}
    assert {n for n in differ if n.startswith("DataDump")} == {
        n for n in _hashes(folder) if n.startswith("DataDump")
    }
    assert "rapport.xlsx" not in differ  # same codebook, same workbook


def test_csv_dialect_bom_separator_trailing_column_crlf(folder: Path, reg: kr.Registry) -> None:
    cb = reg.codebook
    for form in cb.forms:
        data = next(folder.glob(f"DataDump_Prod_{form.name}_*.csv")).read_bytes()
        assert data.startswith(b"\xef\xbb\xbf")
        text = data[3:].decode("utf-8")
        assert "\n" not in text.replace("\r\n", "")  # every line ends in CRLF
        lines = text.split("\r\n")
        assert lines[-1] == ""
        header = lines[0].split(";")
        assert header[:-1] == [v.name for v in cb.form_variables(form.name)] and header[-1] == ""
        assert all(line.endswith(";") and line.count(";") == len(header) - 1 for line in lines[1:-1])
        assert '"' not in text  # nothing needed quoting


def test_decimal_comma_dates_missing_values_and_booleans(folder: Path) -> None:
    mp = _read(next(folder.glob("DataDump_Prod_Målepunkt_*.csv")))
    assert mp["dato_mp_beh"].str.fullmatch(r"\d{2}\.\d{2}\.\d{4}").all()
    plager = mp["psykiske_plager"][mp["psykiske_plager"] != ""]
    assert plager.str.fullmatch(r"\d{2}(,\d)?").all() and plager.str.contains(",").any()
    assert not mp["dager_rus_30"].str.contains(",").any()
    # enums: a missing answer is the codebook's first missing code, 0 = "velg verdi"; numbers: empty
    follow_not_reached = mp[mp["behandlingsstatus"].isin(["6", "7"])]
    assert (follow_not_reached["plan_beh"] == "0").all() and (follow_not_reached["dager_rus_30"] == "").all()
    nw = _read(next(folder.glob("DataDump_Prod_Nettverksarbeid_*.csv")))
    assert set(nw["invitert_familie"]) <= {"-1", "0", "1"} and set(nw["invitert_familie"]) >= {"0", "1"}
    assert nw["Unnamed: 18"].eq("").all() if "Unnamed: 18" in nw.columns else True


def test_values_round_trip_against_the_registry(folder: Path, reg: kr.Registry) -> None:
    clean = reg.without_opt_outs()
    regs = clean.registrations
    mp_rows = regs[regs["kind"] != "baseline"].reset_index(drop=True)
    mp = _read(next(folder.glob("DataDump_Prod_Målepunkt_*.csv")))
    assert len(mp) == len(mp_rows)
    assert (mp["ForlopsID"] == mp_rows["course_id"]).all() and (
        mp["PasientGUID"] == mp_rows["patient_id"]
    ).all()
    dates = pd.to_datetime(mp["dato_mp_beh"], format="%d.%m.%Y")
    assert (dates.to_numpy() == mp_rows["date"].to_numpy()).all()
    assert (mp["behandlingsstatus"].astype(int) == mp_rows["status"].astype(int)).all()
    plager = pd.to_numeric(mp["psykiske_plager"].str.replace(",", "."), errors="coerce")
    np.testing.assert_allclose(plager, mp_rows["psykiske_plager"].astype(float))
    names = clean.units.set_index("unit_id")["unit_name"]
    assert (mp["db_unit_title"] == mp_rows["unit_id"].map(names)).all()
    base = _read(next(folder.glob("DataDump_Prod_Basisopplysninger_*.csv")))
    assert len(base) == int((regs["kind"] == "baseline").sum())
    assert (base["PatientAge"].astype(int) == regs.loc[regs["kind"] == "baseline", "age"].to_numpy()).all()


def test_opted_out_patients_are_not_written_only_counted(folder: Path, reg: kr.Registry) -> None:
    reserved = set(reg.reserved_patients())
    assert reserved
    for p in folder.glob("DataDump_*.csv"):
        assert not set(_read(p)["PasientGUID"]) & reserved
    cov = _read(folder / "dekningsgrad.csv")
    assert list(cov.columns[:4]) == ["UnitId", "year", "expected_courses", "reserved_courses"]
    assert cov["reserved_courses"].astype(int).sum() == int(reg.courses["patient_id"].isin(reserved).sum())
    units = _read(folder / "enheter.csv")
    assert list(units.columns[:4]) == ["UnitId", "db_unit_title", "region", "setting"]
    assert len(units) == len(reg.units) and "Helse Sør-Øst" in set(units["region"])


def test_rapport_xlsx_is_the_codebook(folder: Path, reg: kr.Registry) -> None:
    back = read_rapport(folder / "rapport.xlsx")
    # variables come sheet by sheet (in order of first appearance), so compare the sets per form
    for form in reg.codebook.forms:
        want = {v.name for v in reg.codebook.form_variables(form.name)}
        assert {v.name for v in back.form_variables(form.name)} == want


def _valid_checksum(number: str) -> bool:
    """Mod-11 check written out independently: k1 over 9 digits, k2 over 10 (11 -> 0, 10 -> invalid)."""
    d = [int(c) for c in number]
    k1 = 11 - sum(w * x for w, x in zip([3, 7, 6, 1, 8, 9, 4, 5, 2], d[:9], strict=True)) % 11
    k2 = 11 - sum(w * x for w, x in zip([5, 4, 3, 2, 7, 6, 5, 4, 3, 2], d[:10], strict=True)) % 11
    k1, k2 = (0 if k1 == 11 else k1), (0 if k2 == 11 else k2)
    return k1 == d[9] and k2 == d[10]


def test_raw_extract_carries_valid_tenor_national_ids(reg: kr.Registry, tmp_path: Path) -> None:
    out = kr.synthetic.write_extract(reg, tmp_path, raw=True)
    base = _read(next(out.glob("DataDump_Prod_Basisopplysninger_*.csv")))
    assert list(base.columns[:3]) == ["PasientGUID", "Fodselsnummer", "ForlopsID"]
    ids = base["Fodselsnummer"]
    assert ids.str.fullmatch(r"\d{11}").all()
    assert all(_valid_checksum(x) for x in ids)
    months = ids.str[2:4].astype(int)
    assert months.between(81, 92).all()  # Tenor: month + 80, so never a real person's number
    assert base.groupby("PasientGUID")["Fodselsnummer"].nunique().max() == 1
    assert base.groupby("Fodselsnummer")["PasientGUID"].nunique().max() == 1
    pat = reg.patients.set_index("patient_id").loc[base["PasientGUID"]]
    assert (ids.str[:2].astype(int).to_numpy() == pat["birth_date"].dt.day.to_numpy()).all()
    assert ((months - 80).to_numpy() == pat["birth_date"].dt.month.to_numpy()).all()
    assert ((ids.str[8].astype(int) % 2 == 1).to_numpy() == (pat["sex"] == 1).to_numpy()).all()
    mp = _read(next(out.glob("DataDump_Prod_Målepunkt_*.csv")))
    joined = mp.merge(base[["PasientGUID", "Fodselsnummer"]].drop_duplicates(), on="PasientGUID", how="inner")
    assert (joined["Fodselsnummer_x"] == joined["Fodselsnummer_y"]).all()
    nw = _read(next(out.glob("DataDump_Prod_Nettverksarbeid_*.csv")))  # patients outside the patients table
    assert all(_valid_checksum(x) for x in nw["Fodselsnummer"])
    assert ((nw["Fodselsnummer"].str[8].astype(int) % 2 == 1) == (nw["PatientGender"] == "1")).all()
    nid = pytest.importorskip("kvarus_research.privacy.national_id")
    checked = nid.national_id(ids.head(200))
    assert checked["valid"].all() and set(checked["kind"].astype(str)) == {"tenor"}


def test_quoting_when_a_unit_name_contains_the_separator(reg: kr.Registry, tmp_path: Path) -> None:
    units = reg.units.copy()
    units.loc[0, "unit_name"] = 'Poliklinikk; "Nord"'
    from dataclasses import replace

    out = kr.synthetic.write_extract(replace(reg, units=units), tmp_path)
    base = _read(next(out.glob("DataDump_Prod_Basisopplysninger_*.csv")))
    assert 'Poliklinikk; "Nord"' in set(base["db_unit_title"])
    assert re.search(r'"Poliklinikk; ""Nord"""', (out / "enheter.csv").read_text(encoding="utf-8-sig"))


def test_the_library_reader_gets_the_same_courses_back(folder: Path, reg: kr.Registry) -> None:
    """Round trip through kvarus_research.io (written independently, from the MRS format description)."""
    io = pytest.importorskip("kvarus_research.io")
    back = io.read_extract(folder)
    clean = reg.without_opt_outs()
    cols = ["course_id", "ending_type", "followup_status", "n_registrations"]
    got = back.courses[cols].astype(str).sort_values("course_id").reset_index(drop=True)
    want = clean.courses[cols].astype(str).sort_values("course_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    assert len(back.registrations) == len(clean.registrations)


@given(st.lists(st.tuples(st.integers(-(10**9), 10**9), st.booleans()), min_size=1, max_size=50))
def test_integer_text_round_trips(rows: list[tuple[int, bool]]) -> None:
    values = np.array([v for v, _ in rows], dtype=np.int64)
    mask = np.array([m for _, m in rows])
    text = _int_text(values, mask).to_pylist()
    assert [None if m else int(t) for t, m in zip(text, mask, strict=True)] == [
        None if m else int(v) for v, m in rows
    ]


@given(
    st.lists(
        st.tuples(st.integers(-(10**7), 10**7), st.integers(0, 3), st.booleans()), min_size=1, max_size=50
    )
)
def test_decimal_comma_text_round_trips(rows: list[tuple[int, int, bool]]) -> None:
    values = np.array([v / 10**k for v, k, _ in rows])
    mask = np.array([m for _, _, m in rows])
    text = _float_text(values, mask).to_pylist()
    for t, v, m in zip(text, values, mask, strict=True):
        if m:
            assert t is None
        else:
            assert "." not in t and float(t.replace(",", ".")) == pytest.approx(v, abs=1e-9)
            assert not t.endswith(",") and not (t.count(",") and t.endswith("0"))  # no trailing zeros


@given(
    st.lists(
        st.tuples(st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31)), st.booleans()),
        min_size=1,
        max_size=50,
    )
)
def test_date_text_round_trips(rows: list[tuple[dt.date, bool]]) -> None:
    values = np.array([d.isoformat() for d, _ in rows], dtype="datetime64[s]")
    mask = np.array([m for _, m in rows])
    text = _date_text(values, mask).to_pylist()
    for t, (d, m) in zip(text, rows, strict=True):
        assert t is None if m else t == d.strftime("%d.%m.%Y")
