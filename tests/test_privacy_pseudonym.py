"""Keyed pseudonyms: key handling, determinism, key separation, consistency across tables, linkage file, no leak."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kvarus_research as kr
from kvarus_research.errors import PrivacyError
from kvarus_research.privacy import PseudonymKey, load_key, pseudonymize, scan_outputs
from kvarus_research.privacy.keys import keyed_pseudonyms
from kvarus_research.registry import Registry

KEY = bytes(range(100, 140))  # 40 distinct bytes
OTHER = bytes(range(140, 180))


def tiny_registry() -> Registry:
    patients = pd.DataFrame({"patient_id": ["pA", "pB"], "reserved": [False, False]})
    courses = pd.DataFrame(
        {
            "course_id": ["c1", "c2"],
            "patient_id": ["pA", "pB"],
            "unit_id": [10, 10],
            "start_date": pd.to_datetime(["2024-05-01", "2024-01-01"]),
            "end_date": pd.to_datetime(["2024-08-01", pd.NaT]),
            "ending_type": ["mutual_agreement", "active"],
            "followup_status": ["not_yet_due", "no_ending"],
            "age_at_start": pd.array([pd.NA, 30], dtype="Int64"),
        }
    )
    regs = pd.DataFrame(
        {
            "registration_id": [7, 5, 6, 9],
            "course_id": ["c1", "c1", "c1", "c2"],
            "patient_id": ["pA", "pA", "pA", "pB"],
            "unit_id": 10,
            "kind": ["ending", "baseline", "measurement", "baseline"],
            "date": pd.to_datetime(["2024-08-01", "2024-05-01", "2024-06-01", "2024-01-01"]),
            # 01018012371: born 1980-01-01 (see test_privacy_national_id for the control digits)
            "Fodselsnummer": ["01018012371", "01018012371", "01018012371", "02029012346"],
        }
    )
    units = pd.DataFrame({"unit_id": [10]})
    return Registry(
        patients=patients,
        courses=courses,
        registrations=regs,
        units=units,
        extract_date=pd.Timestamp("2025-01-01"),
    )


def expected(domain: str, value: str, prefix: str, key: bytes = KEY) -> str:
    """Independent computation with the standard library's hmac."""
    return prefix + hmac.new(key, domain.encode() + b"\x1f" + value.encode(), hashlib.sha256).hexdigest()[:16]


def test_pseudonyms_are_hmac_sha256_and_consistent_across_tables():
    reg, report = pseudonymize(tiny_registry(), KEY)
    pa, pb = expected("patient", "pA", "P"), expected("patient", "pB", "P")
    c1 = expected("course", "c1", "C")
    assert reg.patients["patient_id"].tolist() == [pa, pb]
    assert reg.courses["patient_id"].tolist() == [pa, pb]
    assert reg.registrations["patient_id"].tolist() == [pa, pa, pa, pb]
    assert reg.courses["course_id"].iloc[0] == c1
    # registrations of c1 ordered by date: baseline (05-01) 1, measurement (06-01) 2, ending (08-01) 3
    assert reg.registrations["registration_id"].tolist()[:3] == [f"{c1}-0003", f"{c1}-0001", f"{c1}-0002"]
    assert report.unique_ids == {"patient": 2, "course": 2, "registration": 4}


def test_registration_patient_is_its_own_even_when_it_disagrees_with_the_course():
    reg = tiny_registry()
    reg.registrations.loc[3, "patient_id"] = "pZ"  # course c2 belongs to pB, this row says pZ
    reg.registrations.loc[2, "course_id"] = "c9"  # a course missing from the course table
    out, report = pseudonymize(reg, KEY)
    assert out.registrations["patient_id"].tolist()[2:] == [
        expected("patient", "pA", "P"),
        expected("patient", "pZ", "P"),
    ]
    assert report.unique_ids["patient"] == 3 and report.unique_ids["course"] == 3


def test_age_derived_from_national_id_then_number_dropped():
    reg, report = pseudonymize(tiny_registry(), KEY)
    # born 1980-01-01, course start 2024-05-01 -> 44 completed years; the other course already had 30.
    assert reg.courses["age_at_start"].tolist() == [44, 30]
    assert report.ages_derived == 1
    assert "Fodselsnummer" not in reg.registrations.columns
    assert report.dropped_columns == ["registrations.Fodselsnummer"]
    assert (
        report.invalid_national_ids == 1
    )  # 02029012346: k2 sum 5*0+4*2+3*0+2*2+7*9+6*0+5*1+4*2+3*3+2*4+1*6 = 111, 111 mod 11 = 1 != 0


def test_determinism_and_key_separation():
    reg = kr.synthetic.generate(n_courses=300, seed=5)
    a, _ = pseudonymize(reg, KEY)
    b, _ = pseudonymize(reg, KEY)
    c, _ = pseudonymize(reg, OTHER)
    assert a.registrations["patient_id"].equals(b.registrations["patient_id"])
    assert a.courses["course_id"].equals(b.courses["course_id"])
    assert not set(a.patients["patient_id"]) & set(c.patients["patient_id"])
    assert not set(a.courses["course_id"]) & set(c.courses["course_id"])
    assert not set(reg.patients["patient_id"]) & set(a.patients["patient_id"])
    assert "birth_date" not in a.patients.columns


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30))
def test_equal_ids_equal_pseudonyms_distinct_ids_distinct(ids):
    (out,), n = keyed_pseudonyms(
        [pd.Series(ids, dtype=object)], PseudonymKey(KEY), domain="patient", prefix="P"
    )
    assert n == len(set(ids))
    mapping = dict(zip(ids, out))
    assert len(set(mapping.values())) == len(mapping)
    assert all(mapping[i] == o for i, o in zip(ids, out))
    assert all(o == expected("patient", i, "P") for i, o in zip(ids, out))


def test_same_id_as_number_and_text_is_one_id():
    (a, b), n = keyed_pseudonyms(
        [pd.Series([7, 8], dtype=object), pd.Series(["7", "9"], dtype=object)],
        PseudonymKey(KEY),
        domain="case",
    )
    assert n == 3 and a[0] == b[0] == expected("case", "7", "")


def test_weak_keys_are_refused_and_never_shown(tmp_path, monkeypatch):
    monkeypatch.delenv("KVARUS_PSEUDONYM_KEY", raising=False)
    with pytest.raises(PrivacyError, match="no pseudonym key"):
        load_key()
    for bad, why in [
        (b"short-key-0123456789", "too short: 20 bytes"),
        (b"EXAMPLE-ONLY-kvarus-pseudonym-key-do-not-use-0001", "example key"),
        (b"z" * 64, "too regular"),
    ]:
        (tmp_path / "k").write_bytes(bad)
        with pytest.raises(PrivacyError, match=why) as err:
            load_key(tmp_path / "k")
        assert bad.decode() not in str(err.value)
    monkeypatch.setenv("KVARUS_PSEUDONYM_KEY", KEY.hex())
    key = load_key()
    assert repr(key) == "PseudonymKey(<hidden>)" and KEY.hex() not in repr(key)


def test_linkage_file_written_only_outside_output(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(PrivacyError, match="inside the output folder"):
        pseudonymize(tiny_registry(), KEY, linkage_path=out / "link.csv", output_dir=out)
    link = tmp_path / "secure" / "link.csv"
    reg, report = pseudonymize(tiny_registry(), KEY, linkage_path=link, output_dir=out)
    table = pd.read_csv(link)
    assert table.values.tolist() == [
        ["pA", expected("patient", "pA", "P")],
        ["pB", expected("patient", "pB", "P")],
    ]
    assert report.linkage_rows == 2
    assert stat.S_IMODE(os.stat(link).st_mode) == 0o600
    with pytest.raises(PrivacyError, match="never overwritten"):
        pseudonymize(tiny_registry(), KEY, linkage_path=link)


def test_no_original_id_in_written_extract(tmp_path):
    from kvarus_research.synthetic import write_extract

    reg = kr.synthetic.generate(n_courses=300, seed=8)
    pseu, report = pseudonymize(reg, KEY)
    folder = write_extract(pseu, tmp_path / "out")
    (folder / "report.txt").write_text(report.to_text())
    originals = set(reg.patients["patient_id"])
    assert len(scan_outputs(tmp_path / "out", identifiers=originals)) == 0
    # the scan does find them in an unpseudonymised extract with national ids (positive control)
    raw = write_extract(reg, tmp_path / "raw", raw=True)
    found = scan_outputs(raw, identifiers=originals)
    assert {"identifier", "national_id:tenor"} <= set(found["kind"])


def test_registration_id_layouts_agree():
    from kvarus_research.privacy.registration_ids import _join_names

    names = pd.Series(["Cab", "Ccd"], dtype=object).to_numpy()
    codes = pd.Series([0, 1, -1, 0]).to_numpy()
    # fast path (one byte buffer) for ranks < 10,000; pyarrow fallback beyond: same 4-digit zero padding
    assert list(_join_names(names, codes, pd.Series([1, 12, 3, 101]).to_numpy())) == [
        "Cab-0001",
        "Ccd-0012",
        pd.NA,
        "Cab-0101",
    ]
    assert list(_join_names(names, codes, pd.Series([1, 12, 3, 10001]).to_numpy())) == [
        "Cab-0001",
        "Ccd-0012",
        pd.NA,
        "Cab-10001",
    ]
