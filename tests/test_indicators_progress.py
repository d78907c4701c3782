"""Patient progress for one course, coverage (dekningsgrad) and completeness, on hand-made registries."""

from __future__ import annotations

import base64
import re

import pandas as pd
import pytest

from kvarus_research import AnalysisError, Registry
from kvarus_research.indicators import completeness, coverage, patient_progress


def progress_registry() -> Registry:
    regs = pd.DataFrame({
        "course_id": ["k-1"] * 4 + ["k-2"], "patient_id": ["secret-pid"] * 4 + ["other"],
        "unit_id": [7] * 5, "kind": ["baseline", "measurement", "ending", "followup", "baseline"],
        "date": pd.to_datetime(["2021-01-01", "2021-03-02", "2021-06-30", "2022-07-01", "2021-01-01"]),
        "status": pd.array([pd.NA, 1, 4, 5, pd.NA], dtype="Int64"),
        "plan_beh": pd.array([pd.NA, 2, pd.NA, pd.NA, pd.NA], dtype="Int64"),
        "dager_rus_30": [20, 12, 99, 3, 5],   # 99 is a missing code
        "livssituasjon": [3.0, 5.0, 7.0, None, 4.0],
    })  # fmt: skip
    units = pd.DataFrame({"unit_id": [7], "unit_name": ["TSB Poliklinikk"], "region": ["Vest"]})
    return Registry.from_registrations(regs, units=units, extract_date="2023-01-01")


def test_progress_table_and_outcomes_by_hand(artifacts) -> None:
    res = patient_progress(progress_registry(), "k-1")
    # Days since 2021-01-01: 0, 60, 180, 546.
    assert res.table["day"].tolist() == [0, 60, 180, 546]
    assert res.table["status"].tolist()[1:] == ["Active", "Completed by mutual agreement",
                                                "Followed up after one year"]  # fmt: skip
    assert res.table["Treatment plan in place"].tolist()[1] == "Yes"
    d = res.outcomes[res.outcomes["variable"] == "dager_rus_30"]
    assert d["value"].tolist() == [20, 12, 3] and d["day"].tolist() == [0, 60, 546]  # 99 dropped as missing
    assert set(res.outcomes["direction"]) == {"lower", "higher"}
    fig = res.plot().figure  # plot returns the first Axes, like every result
    fig.savefig(artifacts / "patient_progress.png")
    assert [a.get_ylabel() for a in fig.axes if a.get_visible()] == [
        "↓ lower is better",
        "↑ higher is better",
    ]
    page = res.to_html(artifacts / "patient_progress.html")
    assert "secret-pid" not in page and "k-1" in page
    png = base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)", page).group(1))
    assert png[:4] == b"\x89PNG"


def test_progress_unknown_or_opted_out_course_hides_the_id() -> None:
    reg = progress_registry()
    reg.patients.loc[reg.patients["patient_id"] == "secret-pid", "reserved"] = True
    with pytest.raises(AnalysisError) as err:
        patient_progress(reg, "k-1")
    assert "k-1" not in str(err.value) and "opted out" in str(err.value)


def test_coverage_before_and_after_opt_outs_by_hand(artifacts) -> None:
    reg = progress_registry()
    # Two courses start in 2021 at unit 7; one patient opted out (1 course). Expected 4 courses in 2021.
    reg.patients.loc[reg.patients["patient_id"] == "other", "reserved"] = True
    reg.coverage = pd.DataFrame({"unit_id": [7], "year": [2021], "expected_courses": [4]})
    t = coverage(reg).table
    u = t[(t["level"] == "unit") & (t["year"] == 2021)].iloc[0]
    # registered after opt-outs = 1, opted out = 1: coverage (1 + 1) / 4 = 50 %, after opt-outs 1 / 4 = 25 %.
    assert (u["registered"], u["opted_out"], u["expected"]) == (1, 1, 4)
    assert u["coverage"] == 0.5 and u["coverage_after_opt_outs"] == 0.25 and u["target_level"] == "low"
    # The bar drawn is coverage after opt-outs, 1 of 4 = 25 % (unprotected: these counts are all below 5).
    ax = coverage(reg).plot(enabled=False)
    bars = dict(zip([t.get_text() for t in ax.get_yticklabels()], [b.get_width() for b in ax.containers[0]]))
    assert bars == {"TSB Poliklinikk": 25.0, "Norway": 25.0}
    assert "1 av 4" in [t.get_text() for t in ax.texts]
    # Protected: the counts 1 (registered) and 4 (expected) are below 5, so the bars are blank and labelled ":".
    ax = coverage(reg).plot()
    ax.figure.savefig(artifacts / "coverage_bars.png", bbox_inches="tight")
    assert [b.get_width() for b in ax.containers[0]] == [0.0, 0.0]
    assert [t.get_text() for t in ax.texts] == [":", ":"]
    # reserved_courses in the coverage table takes precedence over counting.
    reg.coverage["reserved_courses"] = [2]
    u = coverage(reg).table.iloc[0]
    assert u["coverage"] == pytest.approx(3 / 4)


def test_completeness_by_hand() -> None:
    reg = progress_registry()
    res = completeness(reg, variables=("plan_beh",), n_limit=1, min_days=365)
    # Both courses started 2021-01-01, >= 365 days before 2023-01-01; k-1 has an ending, k-2 not: 1 of 2.
    nat = res["ending_registered"].for_year(None).query("level == 'national'").iloc[0]
    assert (nat["numerator"], nat["denominator"]) == (1, 2)
    # plan_beh at the first active measurement point: k-1 answered (1 of 1); k-2 has no measurement point.
    nat = res["answered_plan_beh"].for_year(None).query("level == 'national'").iloc[0]
    assert (nat["numerator"], nat["denominator"]) == (1, 1)


def test_coverage_opted_out_counts_are_not_recomputed_from_the_region() -> None:
    # Units A (opted out 2 of 40 expected) and B (9 of 50) in region Vest, C (6 of 30) in Nord, one year.
    # A's 2 is small. Protected cell by cell, Vest's 11 - B's 9 would give it back; as linked totals B's 9 is
    # hidden too (the smaller partner in Vest), and so are the coverages computed from them.
    units = pd.DataFrame(
        {"unit_id": [1, 2, 3], "unit_name": ["A", "B", "C"], "region": ["Vest", "Vest", "Nord"]}
    )
    regs = pd.DataFrame({"patient_id": ["p"], "unit_id": [1], "kind": ["baseline"], "status": [pd.NA],
                         "date": [pd.Timestamp("2021-01-01")]})  # fmt: skip
    reg = Registry.from_registrations(regs, units=units, extract_date="2023-01-01")
    reg.coverage = pd.DataFrame({"unit_id": [1, 2, 3], "year": 2021, "expected_courses": [40, 50, 30],
                                 "reserved_courses": [2, 9, 6]})  # fmt: skip
    res = coverage(reg)
    shown = res.protected().table
    year = shown[shown["year"] == 2021].set_index("group")
    assert year["opted_out"].isna().to_dict() == {"A": True, "B": True, "C": False, "Nord": False, "Vest": False,
                                                 "Norway": False}  # fmt: skip
    assert year.loc["Vest", "opted_out"] == 11 and pd.isna(year.loc["A", "coverage"])
    # A's one registered course is a small count of its own; C's 0 of 30 registered stays shown
    assert year.loc["A", "expected"] == 40 and pd.isna(year.loc["A", "registered"])
    assert year.loc["C", "registered"] == 0 and year.loc["C", "coverage_after_opt_outs"] == 0.0
