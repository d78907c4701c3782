"""Leak scan: identity numbers and known identifiers found by position and kind, never by value."""

from __future__ import annotations

import pandas as pd

from kvarus_research.privacy import protect, scan_outputs


def test_scan_finds_numbers_and_identifiers_without_showing_them(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.csv").write_text("id;n\n01018012371;3\n12345678901;4\n")  # second is not a valid number
    (tmp_path / "sub" / "b.html").write_text("<p>patient 010180 12371 and guid-77</p>\n<p>41018012365</p>")
    # 10 and 12 digits, and a valid number inside a hex pseudonym, are not findings
    (tmp_path / "c.txt").write_text(
        "nothing here 0101801237 010180123710 P01018012371ab C0101801237199-0001\n"
    )
    found = scan_outputs(tmp_path, identifiers=["guid-77"])
    assert found.values.tolist() == [
        ["a.csv", 2, 1, "national_id:fnr"],
        ["sub/b.html", 1, 12, "national_id:fnr"],
        ["sub/b.html", 1, 29, "identifier"],
        ["sub/b.html", 2, 4, "national_id:dnr"],
    ]
    text = found.to_csv()
    assert "01018012371" not in text and "guid-77" not in text


def test_scan_reads_xlsx(tmp_path):
    pd.DataFrame({"id": ["01818012337"], "n": [5]}).to_excel(tmp_path / "t.xlsx", index=False)
    assert scan_outputs(tmp_path)["kind"].tolist() == ["national_id:tenor"]


def test_protected_table_output_is_clean(tmp_path):
    t = pd.DataFrame({"unit": ["A", "B", "Total"], "n": [3, 40, 43]})
    protect(t, counts="n", margins={"unit": "Total"}).to_csv(tmp_path / "t.csv")
    assert scan_outputs(tmp_path).empty
