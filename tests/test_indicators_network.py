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
    ax = res.plot(measure="took_part", enabled=False)
    ax.figure.savefig(artifacts / "network_hand.png")
    heights = [round(b.get_height(), 1) for b in ax.containers[0]]
    assert heights == [66.7, 0.0, 0.0, 0.0]  # Ambulant: family 2/3, GP 0/3, municipal 0/3, others 0/3


def test_protected_plot_blanks_small_counts() -> None:
    res = network_work(hand_registry())
    ax = res.plot(measure="meeting")
    # Ambulant 3 of 4 and Ward 1 of 1: every count < 5 is suppressed -> blank bars labelled with the marker.
    assert [b.get_height() for c in ax.containers for b in c] == [0.0, 0.0]
    assert [t.get_text() for t in ax.texts] == [":", ":"]
    assert res.protected().rules.footnote in [t.get_text() for t in ax.figure.texts]


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
    # The poster's headline survives disclosure control: both units' all-years shares are drawn as computed
    # (the ambulant team 440 of 448, 98.2 %; the ward 361 of 552, 65.4 %). Its yearly rows with 1 case without a
    # meeting (72 of 73 in 2021 ...) are hidden, with partners among the other years, not the all-years row (the
    # attack test below checks that no hidden small count is recomputable).
    ax = res.plot(measure="meeting")
    ax.figure.savefig(artifacts / "network_meeting.png")
    heights = {c.get_label(): round(c[0].get_height(), 1) for c in ax.containers}
    assert heights[ward] == round(meet[ward] * 100, 1) and heights[amb] == round(440 / 448 * 100, 1)
    assert np.isfinite(res.table["ci_low"]).all()


def test_protected_network_table_closes_the_links() -> None:
    # A small registry (60 cases over six years in two units): many counts under 5. Whatever the algorithm does,
    # the published table must not let a suppressed cell be recomputed by these identities:
    res = network_work(kr.synthetic.generate(n_courses=300, seed=5))
    p = res.protected()
    t = p.table.assign(yk=p.table["year"].astype("string").fillna("all"))
    assert p.suppressed["numerator"].any()
    pub = t["numerator"].notna()
    # Which cells go together is the engine's choice (a published zero "invited" beside a hidden "not invited"
    # tells nothing while the meetings are hidden); that no hidden small count can be recomputed through any of
    # the links is shown by the independent attack below (test_attack_on_protected_network_tables_fails).
    # every published count is >= 5 or 0, and the log says why each suppressed cell went
    shown = t.loc[pub, "numerator"].astype(int)
    assert ((shown >= 5) | (shown == 0)).all()
    assert set(p.log["action"]) >= {"suppressed", "secondary_suppressed"}


def network_attack(res) -> list[tuple]:
    """Small hidden counts of a protected network-work table that a reader can pin. Written apart from the
    library: unknowns per unit and year are answered cases A, meetings M, invited / took part per role, places
    and reasons; each published cell is an equation (invited's denominator = M, not invited = M - invited,
    reasons' denominator = A - M, all years = the sum of the years); bounds M <= A, invited, took part,
    place <= M, sum of places <= M, each reason and their sum <= A - M (scipy linprog)."""
    from scipy.optimize import linprog

    t = res.table.reset_index(drop=True)
    shown = res.protected().table
    cells = sorted({(u, int(y)) for u, y in zip(t["unit_id"], t["year"]) if not pd.isna(y)})
    cats = {
        m: sorted(set(t.loc[t["measure"] == m, "category"]))
        for m in ("invited", "took_part", "place", "reason")
    }
    index: dict = {}
    for u, y in cells:
        for name in [("A",), ("M",), *((m, c) for m, cs in cats.items() for c in cs)]:
            index.setdefault((*name, u, y), len(index))
    role_of = dict(zip(t["category"], t["key"]))
    invited_of = {c: next(i for i in cats["invited"] if role_of[i] == role_of[c])
                  for c in set(t.loc[t["measure"] == "not_invited", "category"])}  # fmt: skip

    def expr(row: pd.Series, part: str) -> np.ndarray:
        e = np.zeros(len(index))
        years = [y for u, y in cells if u == row["unit_id"]] if pd.isna(row["year"]) else [int(row["year"])]
        for y in years:
            u, m = row["unit_id"], row["measure"]
            if part == "denominator":
                for name, sign in {"meeting": [("A", 1)], "reason": [("A", 1), ("M", -1)]}.get(m, [("M", 1)]):
                    e[index[(name, u, y)]] += sign
            elif m == "meeting":
                e[index[("M", u, y)]] += 1
            elif m == "not_invited":
                e[index[("M", u, y)]] += 1
                e[index[("invited", invited_of[row["category"]], u, y)]] -= 1
            else:
                e[index[(m, row["category"], u, y)]] += 1
        return e

    a_eq, b_eq, targets = [], [], []
    for i, row in t.iterrows():
        for part in ("numerator", "denominator"):
            if not pd.isna(shown.loc[i, part]):
                a_eq.append(expr(row, part))
                b_eq.append(float(shown.loc[i, part]))
            else:
                if 0 < row[part] < 5:
                    targets.append((i, part, expr(row, part)))
                if part == "numerator" and 0 < row["denominator"] - row["numerator"] < 5:
                    # the small number is the complement (cases without): it must not be pinned (the count itself,
                    # 5 or more, may be known when its denominator is not)
                    targets.append((i, "complement", expr(row, "denominator") - expr(row, "numerator")))
    a_ub, b_ub = [], []
    for u, y in cells:
        rows = [{("M", u, y): 1, ("A", u, y): -1}]
        rows += [
            {(m, c, u, y): 1, ("M", u, y): -1} for m in ("invited", "took_part", "place") for c in cats[m]
        ]
        rows += [{**{("place", c, u, y): 1 for c in cats["place"]}, ("M", u, y): -1}]
        rows += [{("reason", c, u, y): 1, ("A", u, y): -1, ("M", u, y): 1} for c in cats["reason"]]
        rows += [{**{("reason", c, u, y): 1 for c in cats["reason"]}, ("A", u, y): -1, ("M", u, y): 1}]
        for coefs in rows:
            r = np.zeros(len(index))
            for k, v in coefs.items():
                r[index[k]] += v
            a_ub.append(r)
            b_ub.append(0.0)
    pinned = []
    for i, part, e in targets:
        lo = linprog(e, A_eq=np.array(a_eq), b_eq=b_eq, A_ub=np.array(a_ub), b_ub=b_ub, bounds=(0, None))
        hi = linprog(-e, A_eq=np.array(a_eq), b_eq=b_eq, A_ub=np.array(a_ub), b_ub=b_ub, bounds=(0, None))
        assert lo.status == 0, "the reader's equations have no solution: the attack's model is wrong"
        if hi.status == 0 and -hi.fun - lo.fun < 0.5:
            pinned.append((i, part, t.loc[i, "measure"], t.loc[i, "year"]))
    return pinned


@pytest.mark.parametrize("n_courses, seed", [(1500, 1), (3000, 2)])
def test_attack_on_protected_network_tables_fails(n_courses: int, seed: int) -> None:
    """No small count (or small complement) of the protected network-work table can be pinned by a reader who
    knows how the measures are linked. The rules alone let 5 and 20 such counts be pinned in these registries."""
    res = network_work(kr.synthetic.generate(n_courses=n_courses, seed=seed))
    assert network_attack(res) == []
