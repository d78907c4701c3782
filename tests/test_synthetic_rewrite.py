"""An extract read back and written again keeps every value, sex included (it lives on the patients table)."""

from __future__ import annotations

import pandas as pd

import kvarus_research as kr


def _dump(folder, form: str) -> pd.DataFrame:
    path = next(folder.glob(f"DataDump_Prod_{form}_*.csv"))
    return pd.read_csv(path, sep=";", encoding="utf-8-sig", dtype=str).iloc[:, :-1]


def test_read_then_write_keeps_patient_gender(tmp_path) -> None:
    reg = kr.synthetic.generate(n_courses=300, seed=11)
    first = kr.synthetic.write_extract(reg, tmp_path / "a")
    again = kr.synthetic.write_extract(kr.read_extract(first), tmp_path / "b")
    for form in ("Basisopplysninger", "Målepunkt"):
        a, b = _dump(first, form), _dump(again, form)
        key = ["PasientGUID", "ForlopsID"] + [c for c in a.columns if c.startswith("dato_")]
        a = a.sort_values(key, ignore_index=True)
        b = b.sort_values(key, ignore_index=True)
        # every sex code survives the round trip (and is a real code, not the missing code 0)
        assert (a["PatientGender"] == b["PatientGender"]).all()
        assert set(b["PatientGender"]) <= {"1", "2"}
