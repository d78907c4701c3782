"""Table 1 on the hand-made registry (kvarus_research.cohort.examples.flow_registry, 7 courses after opt-outs),
numbers worked out by hand and cross-checked against tableone's own display."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from kvarus_research import AnalysisError, Cohort
from kvarus_research.cohort import table1
from kvarus_research.cohort.examples import flow_registry


@pytest.fixture(scope="module")
def t1():
    return table1(Cohort(flow_registry()), groupby="setting")


def _row(t1, variable, group, level=""):
    t = t1.table
    return t[(t["variable"] == variable) & (t["group"] == group) & (t["level"] == level)].iloc[0]


def test_numbers_by_hand(t1):
    # ages: inpatient c3 17, c4 45, c7 70; outpatient c1 25, c2 27, c5 60, c6 33
    inp = _row(t1, "age_at_start", "inpatient")
    assert inp["n"] == 3 and inp["mean"] == pytest.approx(44.0)
    # deviations -27, 1, 26 -> (729 + 1 + 676) / 2 = 703
    assert inp["sd"] == pytest.approx(math.sqrt(703))
    out = _row(t1, "age_at_start", "outpatient")
    # 145 / 4 = 36.25; squares 126.5625 + 85.5625 + 564.0625 + 10.5625 = 786.75, / 3 = 262.25
    assert out["mean"] == pytest.approx(36.25) and out["sd"] == pytest.approx(math.sqrt(262.25))
    assert _row(t1, "age_at_start", "Overall")["median"] == 33
    # sex overall: male p1 (c1, c2), p4 (c5), p6 (c7) = 4 of 7
    male = _row(t1, "sex", "Overall", "Male")
    assert male["n"] == 4 and male["percent"] == pytest.approx(100 * 4 / 7)
    # main substance: c3 has no baseline registration -> missing; alcohol c1, c5, c6 = 3 of 6 recorded
    alc = _row(t1, "hovedrusmiddel", "Overall", "Alcohol")
    assert (alc["n"], alc["percent"], alc["missing"]) == (3, 50.0, 1)
    assert _row(t1, "hovedrusmiddel", "inpatient", "Opioids")["n"] == 1  # c4
    # baseline days of use: inpatient 25 (c3's first MP), 30, 18 -> 73 / 3
    assert _row(t1, "dager_rus_30", "inpatient")["mean"] == pytest.approx(73 / 3)
    assert list(t1.table.loc[t1.table["variable"] == "n", "n"]) == [7, 3, 4]


def test_matches_tableone_and_smd(t1):
    disp = t1.tableone.tableone
    disp.columns = disp.columns.droplevel(0)
    assert disp.loc[("Age at course start, mean (SD)", ""), "inpatient"] == "44.0 (26.5)"
    assert disp.loc[("Main substance, n (%)", "Alcohol"), "Overall"] == "3 (50.0)"
    assert str(disp.loc[("Main substance, n (%)", "Alcohol"), "Missing"]) == "1"
    # SMD of age computed directly: (36.25 - 44) / sqrt((703 + 262.25) / 2)
    smd = (36.25 - 44.0) / np.sqrt((703 + 262.25) / 2)
    got = t1.smd.loc["Age at course start"].iloc[0]
    assert abs(got) == pytest.approx(abs(smd), abs=1e-3)
    wide = t1.formatted(protect=False)
    assert wide.loc[("Sex, n (%)", "Female"), "inpatient"] == "2 (66.7)"  # p2, p3 of 3
    assert (
        wide.loc[("Age at course start, mean (SD)", ""), "Overall"]
        == disp.loc[("Age at course start, mean (SD)", ""), "Overall"]
    )


def test_export_is_protected(t1, tmp_path):
    wide = t1.formatted()
    # groups of 3 and 4 courses: every cell of theirs is below 5 -> "<5"; the overall n of 7 stays
    assert wide.loc[("n", ""), "Overall"] == "7"
    assert wide.loc[("n", ""), "inpatient"] == "<5" and wide.loc[("n", ""), "outpatient"] == "<5"
    assert wide.loc[("Main substance, n (%)", "Alcohol"), "Missing"] == "<5"
    assert "SMD (inpatient,outpatient)" not in wide.columns  # SMDs of suppressed groups are not shown
    path = t1.to_csv(tmp_path / "table1.csv")
    text = path.read_text(encoding="utf-8")
    assert "<5" in text and "44.0 (26.5)" not in text
    raw = t1.to_csv(tmp_path / "raw.csv", protect=False).read_text(encoding="utf-8")
    assert raw.startswith("# DISCLOSURE CONTROL DISABLED") and "44.0 (26.5)" in raw
    tidy = pd.read_csv(t1.to_csv(tmp_path / "tidy.csv", formatted=False))
    assert "<5" in set(tidy["n"].astype(str))


def test_labels_in_norwegian_and_ungrouped():
    t = table1(Cohort(flow_registry()), ["sex", "hovedrusmiddel"], language="nb")
    assert set(t.table["label"]) == {"n", "Kjønn", "Hovedrusmiddel"}
    assert "Alkohol" in set(t.table["level"]) and set(t.table["group"]) == {"Overall"}
    assert t.smd.empty


def test_errors():
    c = Cohort(flow_registry())
    with pytest.raises(AnalysisError, match="no column 'weight'"):
        table1(c, ["weight"])
    with pytest.raises(AnalysisError, match="no courses"):
        table1(c.sex(1).sex(2))
