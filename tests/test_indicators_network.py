"""Network work per unit and year: a hand-made table, and the poster's contrast on synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kvarus_research as kr
from kvarus_research import AnalysisError, Registry
from kvarus_research.indicators import network_work


def hand_registry() -> Registry:
    # Unit 1 "Ambulant": 4 cases in 2014, meetings in 3 (family invited and took part in 2 of them, GP invited in
    # 1 and absent); places: outside, outside, in hospital. The case without a meeting: reason 1 (patient did not
    # want it). Unit 2 "Ward": 2 cases in 2014, one meeting (municipal services invited and took part, in
    # hospital), one case with the meeting answer missing (0 = velg verdi): counted as excluded.
    nw = pd.DataFrame({
        "case_id": range(1, 7), "patient_id": [f"n{i}" for i in range(6)], "unit_id": [1, 1, 1, 1, 2, 2],
        "date": pd.to_datetime(["2014-02-01", "2014-03-01", "2014-05-01", "2014-09-01", "2014-04-01", "2014-06-01"]),
        "nettverksmote": [2, 2, 2, 1, 2, 0],
        "invitert_familie": [True, True, False, False, False, False],
        "deltok_familie": [True, True, False, False, False, False],
        "invitert_fastlege": [True, False, False, False, False, False],
        "deltok_fastlege": [False] * 6,
        "invitert_kommune": [False, False, False, False, True, False],
        "deltok_kommune": [False, False, False, False, True, False],
        "invitert_andre": [False] * 6, "deltok_andre": [False] * 6,
        "mote_sted": pd.array([2, 2, 1, pd.NA, 1, pd.NA], dtype="Int64"),
        "ikke_invitert_grunn": pd.array([pd.NA, pd.NA, pd.NA, 1, pd.NA, pd.NA], dtype="Int64"),
    })  # fmt: skip
    regs = pd.DataFrame({"patient_id": ["p"], "unit_id": [1], "kind": ["measurement"], "status": [1],
                         "date": [pd.Timestamp("2014-01-01")]})  # fmt: skip
    units = pd.DataFrame({"unit_id": [1, 2], "unit_name": ["Ambulant", "Ward"], "region": "Nord"})
    return Registry.from_registrations(regs, units=units, network_work=nw)


def cell(res, measure: str, group: str, category: str) -> tuple[int, int]:
    t = res.table
    r = t[(t["measure"] == measure) & (t["group"] == group) & (t["category"] == category) & t["year"].isna()]
    assert len(r) == 1
    return int(r["numerator"].iloc[0]), int(r["denominator"].iloc[0])


def test_network_measures_by_hand(artifacts) -> None:
    res = network_work(hand_registry())
    assert cell(res, "meeting", "Ambulant", "Network meeting held") == (3, 4)
    assert cell(res, "meeting", "Ward", "Network meeting held") == (1, 1)  # the missing answer is left out
    assert res.exclusions["n"].tolist() == [1]
    assert cell(res, "invited", "Ambulant", "Family invited") == (2, 3)
    assert cell(res, "took_part", "Ambulant", "Family took part") == (2, 3)
    assert cell(res, "took_part", "Ambulant", "GP took part") == (0, 3)
    assert cell(res, "not_invited", "Ambulant", "GP not invited") == (2, 3)
    assert cell(res, "took_part", "Ward", "Municipal services took part") == (1, 1)
    assert cell(res, "place", "Ambulant", "Outside hospital") == (2, 3)
    assert cell(res, "reason", "Ambulant", "Patient did not want it") == (1, 1)
    assert res.cases["cases"].tolist() == [4, 2]
    # Unprotected plot (the counts here are all below 5): bar heights are the shares.
    ax = res.plot(measure="took_part", protect=False)
    ax.figure.savefig(artifacts / "network_hand.png")
    heights = [round(b.get_height(), 1) for b in ax.containers[0]]
    assert heights == [66.7, 0.0, 0.0, 0.0]  # Ambulant: family 2/3, GP 0/3, municipal 0/3, others 0/3


def test_protected_plot_blanks_small_counts() -> None:
    res = network_work(hand_registry())
    ax = res.plot(measure="meeting")
    # Ambulant 3 of 4 and Ward 1 of 1: every count < 5 is suppressed -> blank bars labelled N<5.
    assert [b.get_height() for c in ax.containers for b in c] == [0.0, 0.0]
    assert [t.get_text() for t in ax.texts] == ["N<5", "N<5"]


def test_no_network_table_is_a_clear_error() -> None:
    reg = hand_registry()
    reg.network_work = None
    with pytest.raises(AnalysisError, match="network-work"):
        network_work(reg)


@pytest.mark.slow
def test_synthetic_reproduces_the_posters_contrast(artifacts) -> None:
    # Poster (2014): network work in nearly 100 % of cases in the ambulant team vs 66 % in the acute ward; family
    # and GP more often in the ambulant team, municipal services more often in the ward; meetings outside hospital
    # more often in the ambulant team.
    res = network_work(kr.synthetic.generate(n_courses=20000, seed=4))
    meet = res.measure("meeting").iloc[0]
    amb, ward = "Ambulant akutteam Tromsø", "Akuttpost Tromsø"
    assert meet[amb] > 0.93 and 0.58 < meet[ward] < 0.74
    took = res.measure("took_part")
    assert took.loc["Family took part", amb] > took.loc["Family took part", ward]
    assert took.loc["GP took part", amb] > took.loc["GP took part", ward]
    assert took.loc["Municipal services took part", ward] > took.loc["Municipal services took part", amb]
    place = res.measure("place")
    assert place.loc["Outside hospital", amb] > place.loc["Outside hospital", ward]
    # The drawn bars are those shares (protected: all counts here are well above 5).
    ax = res.plot(measure="meeting")
    ax.figure.savefig(artifacts / "network_meeting.png")
    heights = {c.get_label(): round(c[0].get_height(), 1) for c in ax.containers}
    assert heights[amb] == round(meet[amb] * 100, 1) and heights[ward] == round(meet[ward] * 100, 1)
    assert np.isfinite(res.table["ci_low"]).all()


def test_protected_network_table_closes_the_links() -> None:
    # A small registry (60 cases over six years in two units): many counts under 5. Whatever the algorithm does,
    # the published table must not let a suppressed cell be recomputed by these identities:
    res = network_work(kr.synthetic.generate(n_courses=300, seed=5))
    p = res.protected()
    t = p.table.assign(yk=p.table["year"].astype("string").fillna("all"))
    assert p.suppressed["numerator"].any()
    pub = t["numerator"].notna()
    # invited + not invited = meetings: both published or both suppressed (per unit, year and role)
    inv = t[t["measure"].isin(["invited", "not_invited"])].groupby(["group", "yk", "key"])["numerator"]
    assert (inv.apply(lambda s: s.isna().all() or s.notna().all())).all()
    # places split the meetings: all published or all suppressed
    place = t[t["measure"] == "place"].groupby(["group", "yk"])["numerator"]
    assert (place.apply(lambda s: s.isna().all() or s.notna().all())).all()
    # the meetings count is published exactly when the meeting-based denominators are
    for (g, y), d in t.groupby(["group", "yk"]):
        meet = d.loc[d["measure"] == "meeting", "numerator"]
        based = d.loc[d["measure"].isin(["invited", "place", "reason"]), "denominator"]
        if len(meet) and len(based):
            assert meet.isna().all() == based.isna().all(), (g, y)
    # over years: never exactly one suppressed cell among a row's years and its total
    for _, d in t.groupby(["group", "measure", "category"]):
        assert d["numerator"].isna().sum() != 1 and d["denominator"].isna().sum() != 1
    # every published count is >= 5 or 0, and the log says why each suppressed cell went
    shown = t.loc[pub, "numerator"].astype(int)
    assert ((shown >= 5) | (shown == 0)).all()
    assert set(p.log["action"]) >= {"suppressed", "secondary_suppressed"}
