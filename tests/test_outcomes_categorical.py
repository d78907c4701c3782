"""Categorical transitions: tables built from known counts, McNemar and Bowker worked out by hand,
Stuart–Maxwell against a direct statsmodels SquareTable call, and the alluvial plot's bar heights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import SquareTable

from kvarus_research.errors import AnalysisError
from kvarus_research.outcomes import transitions
from kvarus_research.outcomes.categorical import square_table_tests

# bolig codes 1 own home, 2 temporary, 3 institution, 4 homeless. Rows = baseline, columns = ending.
BOLIG = np.array([[20, 3, 0, 1], [8, 5, 0, 2], [0, 0, 0, 0], [6, 4, 0, 3]])
CODES = [1, 2, 3, 4]


def long_from_counts(counts: np.ndarray, variable: str, codes: list[int]) -> pd.DataFrame:
    rows, cid = [], 0
    for i, a in enumerate(codes):
        for j, b in enumerate(codes):
            for _ in range(int(counts[i, j])):
                cid += 1
                # follow-up equals the ending code, except every 4th course which answers "99" (missing code)
                fu = b if cid % 4 else 99
                rows += [(cid, "baseline", a), (cid, "ending", b), (cid, "followup", fu)]
    # two courses with baseline only, and one with a missing code at baseline: counted, not tabulated
    rows += [
        (cid + 1, "baseline", 1),
        (cid + 2, "baseline", 2),
        (cid + 3, "baseline", 0),
        (cid + 3, "ending", 1),
    ]
    return pd.DataFrame(rows, columns=["course_id", "timepoint", variable])


def test_transition_table_and_bowker_by_hand() -> None:
    res = transitions(long_from_counts(BOLIG, "bolig", CODES), "bolig")
    tab = res.table[(res.table.from_timepoint == "baseline") & (res.table.to_timepoint == "ending")]
    got = tab.pivot(index="from_code", columns="to_code", values="n").to_numpy()
    np.testing.assert_array_equal(got, BOLIG)
    first = tab.iloc[0]
    # own home -> own home: 20 of the 24 who started in their own home
    assert (first["from_label"], first["to_label"], first["n_from"]) == (
        "Own or rented home",
        "Own or rented home",
        24,
    )
    assert first["share"] == pytest.approx(20 / 24)
    tests = res.tests.set_index(["from_timepoint", "to_timepoint", "test"])
    bowker = tests.loc[("baseline", "ending", "Bowker")]
    # institution (3) never occurs and is left out; Bowker over pairs (1,2), (1,4), (2,4):
    # (3-8)^2/11 + (1-6)^2/7 + (2-4)^2/6 = 2.272727 + 3.571429 + 0.666667 = 6.510823 on 3 df
    assert bowker["statistic"] == pytest.approx(6.510823, abs=1e-6) and bowker["df"] == 3
    # 52 courses tabulated; course with missing code 0 at baseline plus the two baseline-only courses are missing
    assert bowker["n_pairs"] == 52 and bowker["n_missing"] == 3
    # Stuart-Maxwell against statsmodels called directly on the 3 x 3 table of observed categories
    sm = SquareTable(BOLIG[np.ix_([0, 1, 3], [0, 1, 3])], shift_zeros=False).homogeneity(
        method="stuart_maxwell"
    )
    stuart = tests.loc[("baseline", "ending", "Stuart-Maxwell")]
    assert stuart["statistic"] == pytest.approx(sm.statistic) and stuart["p_value"] == pytest.approx(
        sm.pvalue
    )
    assert set(zip(res.tests.from_timepoint, res.tests.to_timepoint)) == {
        ("baseline", "ending"),
        ("ending", "followup"),
        ("baseline", "followup"),
    }


def test_mcnemar_by_hand() -> None:
    # 2 x 2 with 16 discordant pairs (< 25): exact binomial, p = 2 P(X <= 2 | 16, 1/2) = 2 * 137 / 65536
    exact = square_table_tests(np.array([[10, 2], [14, 14]]))[0]
    assert exact["test"] == "McNemar (exact binomial)" and exact["p_value"] == pytest.approx(274 / 65536)
    # 30 discordant pairs: chi-square with continuity correction (|5 - 25| - 1)^2 / 30 = 12.033333
    chi = square_table_tests(np.array([[10, 5], [25, 10]]))[0]
    assert chi["statistic"] == pytest.approx(361 / 30) and chi["df"] == 1
    long = long_from_counts(np.array([[10, 2], [14, 14]]), "injisert_30", [1, 2])
    res = transitions(long, "injisert_30", timepoints=("baseline", "ending"))
    assert res.tests.iloc[0]["p_value"] == pytest.approx(274 / 65536)


def test_margins_and_errors() -> None:
    res = transitions(long_from_counts(BOLIG, "bolig", CODES), "bolig")
    m = res.margins.set_index(["timepoint", "code"])
    # baseline: 24 + 1 own home of 24 + 15 + 13 + 2 = 54 valid codes (the missing code 0 is not counted)
    assert m.loc[("baseline", 1), "n"] == 25 and m.loc[("baseline", 1), "n_total"] == 54
    # ending column totals: 34 + 1 (the course with code 0 at baseline), 12, 0, 6
    assert m.loc[("ending", 1), "n"] == 35 and m.loc[("ending", 3), "share"] == 0
    bad = long_from_counts(BOLIG, "bolig", CODES)
    bad.loc[0, "bolig"] = 7
    with pytest.raises(AnalysisError, match="outside the code list"):
        transitions(bad, "bolig")
    with pytest.raises(AnalysisError, match="no code list"):
        transitions(bad.rename(columns={"bolig": "dager_rus_30"}), "dager_rus_30")


def test_alluvial_plot(artifacts) -> None:
    res = transitions(long_from_counts(BOLIG, "bolig", CODES), "bolig")
    # every 4th course has a missing follow-up: 52 - 13 = 39 courses have valid codes at all three timepoints
    assert len(res.flows) == 39
    ax = res.plot()
    prot = res.protected().table
    first = prot[(prot.from_timepoint == "baseline") & (prot.to_timepoint == "ending")]
    # the first pair's bar at baseline stacks the published n_from of each category: 24, 15, 0, 13 (the
    # protected table; see test_crosstab_and_protection), in courses, not the row-level flows
    bars = [p for p in ax.patches if p.get_width() == pytest.approx(0.1) and p.get_x() == pytest.approx(0.02)]
    heights = [p.get_height() for p in bars[:4]]
    assert heights == first.drop_duplicates("from_code")["n_from"].astype(float).tolist() == [24, 15, 0, 13]
    # the hidden cells are not drawn: each category holding one carries the neutral marker, never "<5"
    texts = [t.get_text() for t in ax.figure.findobj(lambda a: hasattr(a, "get_text"))]
    markers = [t for t in ax.texts if t.get_gid() == "suppressed"]
    assert len(markers) >= 3 and {t.get_text() for t in markers} == {":"}
    assert not any("<5" in t for t in texts)
    assert res.protected().rules.footnote in texts
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "Own or rented home",
        "Temporary housing",
        "Institution",
        "Homeless",
    ]
    ax.figure.savefig(artifacts / "outcomes_transitions_bolig.png", bbox_inches="tight")


def test_crosstab_and_protection() -> None:
    res = transitions(long_from_counts(BOLIG, "bolig", CODES), "bolig")
    wide = res.crosstab("baseline", "ending")
    assert list(wide.index) == ["Own or rented home", "Temporary housing", "Institution", "Homeless"]
    np.testing.assert_array_equal(wide.to_numpy(), BOLIG)
    prot = res.protected().table
    cell = prot[(prot.from_timepoint == "baseline") & (prot.to_timepoint == "ending")]
    # the 3 (own home -> temporary) is below 5: suppressed together with its share
    row = cell[(cell.from_code == 1) & (cell.to_code == 2)].iloc[0]
    assert pd.isna(row["n"]) and pd.isna(row["share"])
    # Each row of the table splits its n_from (published), so one hidden cell would be n_from minus the others:
    # own home [20, 3, 0, 1] of 24: 3 + 1 = 4 hidden is small, so 20 goes too (the zero stays);
    # temporary [8, 5, 0, 2] of 15: 2 alone would follow, its smallest partner 5 goes; homeless [6, 4, 0, 3]:
    # 4 + 3 = 7 hidden together, nothing more; institution: all zero.
    shown = cell.sort_values(["from_code", "to_code"])["n"].to_numpy(dtype=object).reshape(4, 4)
    hidden = [[pd.isna(v) for v in r] for r in shown]
    assert hidden == [
        [True, True, False, True],
        [False, True, False, True],
        [False] * 4,
        [False, True, False, True],
    ]
    assert cell.drop_duplicates("from_code")["n_from"].tolist() == [24, 15, 0, 13]
    with pytest.raises(AnalysisError, match="no transition table"):
        res.crosstab("ending", "baseline")


@pytest.mark.slow
def test_synthetic_margins_against_truth(artifacts) -> None:
    import kvarus_research as kr
    from kvarus_research.cohort import align_timepoints

    reg = kr.synthetic.generate(n_courses=20_000, seed=7)
    tp = align_timepoints(reg, baseline="registration")
    for variable, truth in reg.truth["categorical"].items():
        res = transitions(tp, variable)
        m = res.margins.set_index(["timepoint", "code"])
        base = m.loc[("baseline", truth["worst_code"])]
        # at baseline (registered for nearly all courses) the Wilson CI covers the true share in the worst state
        assert base["ci_low"] <= truth["share_baseline"] <= base["ci_high"], variable
        # at follow-up only responders are seen, and they did better: the observed share in the worst state is
        # below the true share among all courses due a follow-up (the known direction of the attrition bias)
        assert m.loc[("followup", truth["worst_code"]), "share"] < truth["share_followup"], variable
    ax = transitions(tp, "arbeid_utdanning").plot()
    ax.figure.savefig(artifacts / "outcomes_transitions_work_synthetic.png", bbox_inches="tight")
