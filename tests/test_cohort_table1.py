"""Table 1 on the hand-made registry (kvarus_research.cohort.examples.flow_registry, 7 courses after opt-outs),
numbers worked out by hand and cross-checked against tableone's own display."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kvarus_research as kr
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
    # groups of 3 and 4 courses: every cell of theirs is below 5 -> the neutral marker ":" (never "<5", a false
    # bound for a cell hidden to protect another); the overall n of 7 stays
    assert wide.loc[("n", ""), "Overall"] == "7"
    assert wide.loc[("n", ""), "inpatient"] == ":" and wide.loc[("n", ""), "outpatient"] == ":"
    assert wide.loc[("Main substance, n (%)", "Alcohol"), "Missing"] == ":"
    assert "SMD (inpatient,outpatient)" not in wide.columns  # SMDs of suppressed groups are not shown
    path = t1.to_csv(tmp_path / "table1.csv")
    text = path.read_text(encoding="utf-8")
    assert ":" in text and "<5" not in text and "44.0 (26.5)" not in text
    raw = t1.to_csv(tmp_path / "raw.csv", protect=False).read_text(encoding="utf-8")
    assert raw.startswith("# DISCLOSURE CONTROL DISABLED") and "44.0 (26.5)" in raw
    tidy = pd.read_csv(t1.to_csv(tmp_path / "tidy.csv", formatted=False))
    assert ":" in set(tidy["n"].astype(str)) and "<5" not in set(tidy["n"].astype(str))


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


# -- disclosure control of the table's structure -------------------------------------------------------------------


def tidy(groups: dict[str, tuple[list[int], int]], ages: dict[str, tuple[int, int, float]] | None = None):
    """A Table 1 tidy table by hand: group -> (sex level counts [Male, Female], missing sex); Overall is the sum.
    ``ages``: group -> (non-missing n, missing, mean)."""
    from kvarus_research.cohort.table1 import STAT_COLUMNS

    names = list(groups)
    levels = np.array([groups[g][0] for g in names])
    miss = np.array([groups[g][1] for g in names])
    rows = []
    allg = {"Overall": (levels.sum(axis=0).tolist(), int(miss.sum()))} | groups
    for g, (lv, m) in allg.items():
        size = sum(lv) + m
        rows.append({"variable": "n", "label": "n", "level": "", "group": g, "n": size})
        for j, (lev, k) in enumerate(zip(["Male", "Female"], lv)):
            rows.append({"variable": "sex", "label": "Sex", "level": lev, "group": g, "n": k,
                         "percent": 100 * k / sum(lv) if sum(lv) else np.nan, "missing": m if j == 0 else pd.NA})  # fmt: skip
        if ages is not None:
            n_age, m_age, mean = ages[g] if g != "Overall" else (size - sum(a[1] for a in ages.values()),
                                                                 sum(a[1] for a in ages.values()), 40.0)  # fmt: skip
            rows.append({"variable": "age", "label": "Age", "level": "", "group": g, "n": n_age,
                         "missing": m_age, "mean": mean, "sd": 10.0, "median": mean, "q1": mean - 5,
                         "q3": mean + 5})  # fmt: skip
    t = pd.DataFrame(rows, columns=["variable", "label", "level", "group", *STAT_COLUMNS])
    return t.astype({"n": "Int64", "missing": "Int64"})


def test_a_hidden_level_cannot_be_recomputed_from_the_group_n():
    from kvarus_research.cohort.table1_protection import protect_table1

    # one group: Male 30, Female 3, missing 0 of 33. Cell by cell, Female = 33 - 30 - 0; declared as a
    # partition, its partner (the smallest non-zero other cell, Male 30) is hidden too; the zero stays.
    p = protect_table1(tidy({"A": ([30, 3], 0)}).query("group != 'A'").reset_index(drop=True), ["sex"])
    shown = p.table.set_index(["variable", "level"])
    assert pd.isna(shown.loc[("sex", "Female"), "n"]) and pd.isna(shown.loc[("sex", "Male"), "n"])
    assert shown.loc[("n", ""), "n"] == 33 and shown.loc[("sex", "Male"), "missing"] == 0


def test_percentages_go_with_a_hidden_missing_count_and_means_stay():
    from kvarus_research.cohort.table1_protection import protect_table1

    # Overall only: Male 20, Female 17, missing 3 (of 40): the percentages are of 37 = 40 - 3, so they are
    # hidden with the missing count; its partner is Female 17 (the smaller). Age: 38 known, 2 missing: the 2
    # and its partner, the 38, are hidden, but the mean of 38 ages does not tell a count and stays.
    t = tidy({"A": ([20, 17], 3)}, ages={"A": (38, 2, 41.5)})
    t = t[t["group"] == "Overall"].reset_index(drop=True)
    t.loc[t["variable"] == "age", ["n", "missing"]] = [38, 2]
    p = protect_table1(t, ["sex"])
    shown = p.table.set_index(["variable", "level"])
    assert pd.isna(shown.loc[("sex", "Male"), "missing"]) and pd.isna(shown.loc[("sex", "Female"), "n"])
    assert shown.loc[("sex", "Male"), "n"] == 20 and pd.isna(shown.loc[("sex", "Male"), "percent"])
    assert pd.isna(shown.loc[("age", ""), "n"]) and pd.isna(shown.loc[("age", ""), "missing"])
    assert shown.loc[("age", ""), "mean"] == 40.0
    reasons = set(p.log.loc[p.log["column"] == "percent", "reason"])
    assert reasons == {"a percentage of the non-missing count, whose missing count is hidden"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 6)), min_size=2, max_size=3))
def test_attack_on_table1_fails(reader_attack, cells):
    """Groups x (Male, Female, missing) with group n and Overall: no small hidden count can be pinned by a reader
    who knows every published cell, that each group's cells add up to its n and that groups add up to Overall."""
    from kvarus_research.cohort.table1_protection import protect_table1

    groups = {f"g{i}": ([m, f], x) for i, (m, f, x) in enumerate(cells)}
    t = tidy(groups)
    p = protect_table1(t, ["sex"])
    names = ["Overall", *groups]
    truth, shown = {}, {}
    for g in names:
        rows = t[t["group"] == g].index
        first = rows[1]
        for key, (i, col) in {"n": (rows[0], "n"), "M": (first, "n"), "F": (rows[2], "n"),
                              "x": (first, "missing")}.items():  # fmt: skip
            truth[(g, key)] = float(t.loc[i, col])
            shown[(g, key)] = p.table.loc[i, col]
    unknown = [c for c, v in shown.items() if pd.isna(v)]
    if not unknown:
        return
    attack, equation = reader_attack
    published = {c: truth[c] for c, v in shown.items() if not pd.isna(v)}
    eqs = [equation([(g, "M"), (g, "F"), (g, "x")], (g, "n"), published) for g in names]
    eqs += [equation([(g, k) for g in groups], ("Overall", k), published) for k in ("n", "M", "F", "x")]
    for cell, (lo, hi) in attack(unknown, [e for e in eqs if e[0]]).items():
        assert lo - 1e-6 <= truth[cell] <= hi + 1e-6
        if (
            0 < truth[cell] < 5
        ):  # a small count: never pinned (a partner pinned to 0 in an empty group is no leak)
            assert hi - lo > 0.5, f"{cell} pinned"


def test_plot_is_a_dot_plot_of_the_protected_percentages(artifacts) -> None:
    # Table 1's figure: one dot per categorical level and group at its protected percentage; a suppressed
    # percentage has no dot, only the neutral marker (never "<5"), and the figure carries the footnote
    res = table1(Cohort(kr.synthetic.generate(n_courses=400, seed=3)), groupby="setting")
    p = res.protected("norway")
    ax = res.plot(rules="norway")
    ax.figure.savefig(artifacts / "table1_dots.png", bbox_inches="tight")
    t = p.table
    levels = t["level"].astype(str).ne("") & t["variable"].ne("n")
    for line in ax.get_lines():
        group = line.get_label()
        shown = t[levels & (t["group"] == group)]["percent"].astype(float).dropna()
        assert sorted(np.round(line.get_xdata(), 6)) == sorted(np.round(shown.to_numpy(), 6))
    n_hidden = int((p.suppressed["percent"] | p.suppressed["n"])[levels].sum())
    markers = [x for x in ax.texts if x.get_gid() == "suppressed"]
    assert len(markers) == n_hidden > 0 and {x.get_text() for x in markers} == {":"}
    assert p.rules.footnote in [x.get_text() for x in ax.figure.texts]
