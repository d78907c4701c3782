"""Reliable and clinically significant change: categories worked out by hand, cut-off criteria a/b/c, the
direction of improvement from the codebook, groups and the plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

from kvarus_research.errors import AnalysisError
from kvarus_research.outcomes import reliable_change
from kvarus_research.outcomes.reliable import CATEGORIES, classify, clinical_cutoff


def tiny_long() -> pd.DataFrame:
    start = [20, 18, 10, 25]
    end = [8, 17, 18, 12]
    rows = []
    for cid, (a, b) in enumerate(zip(start, end), 1):
        rows += [(cid, "baseline", a, 1 + cid % 2), (cid, "ending", b, 1 + cid % 2)]
    rows.append((5, "baseline", 22, 1))  # no ending value: counted as n_missing_end
    df = pd.DataFrame(rows, columns=["course_id", "timepoint", "dager_rus_30", "hovedrusmiddel"])
    df["livssituasjon"] = 30 - df["dager_rus_30"]  # mirrored: higher is better
    return df


def counts(res, outcome="dager_rus_30", group="All") -> dict[str, int]:
    t = res.table
    return t[(t["outcome"] == outcome) & (t["group"] == group)].set_index("category")["n"].to_dict()


def test_rci_categories_by_hand() -> None:
    res = reliable_change(tiny_long(), "dager_rus_30", sd=5.0, reliability=0.8, cutoff=10)
    # S_E = 5 sqrt(0.2) = 2.236068; S_diff = sqrt(2) S_E = 3.162278; reliable when |RCI| > 1.959964
    # course 1: 20 -> 8:  RCI = -12/3.162278 = -3.794733, lower is better: reliable improvement, 8 < 10: recovered
    # course 2: 18 -> 17: RCI = -0.316228: unchanged
    # course 3: 10 -> 18: RCI = +2.529822: deteriorated
    # course 4: 25 -> 12: RCI = -4.110961: reliable improvement, 12 >= 10: improved
    rci = res.courses.set_index("course_id")["rci"]
    assert rci.to_numpy() == pytest.approx([-3.794733, -0.316228, 2.529822, -4.110961], abs=1e-6)
    assert res.courses["category"].tolist() == ["recovered", "unchanged", "deteriorated", "improved"]
    assert counts(res) == dict.fromkeys(CATEGORIES, 1)
    p = res.parameters.iloc[0]
    assert p["s_diff"] == pytest.approx(3.162278, abs=1e-6)
    assert p["threshold_points"] == pytest.approx(6.197950, abs=1e-5)
    assert (p["n_missing_end"], p["criterion"]) == (1, "given")
    lo, hi = proportion_confint(1, 4, method="wilson")
    row = res.table.iloc[0]
    assert (row["share"], row["ci_low"], row["ci_high"]) == pytest.approx((0.25, lo, hi))


def test_defaults_from_codebook_and_sample() -> None:
    res = reliable_change(tiny_long(), "dager_rus_30")
    # sample SD at baseline of the paired courses: [20, 18, 10, 25], SS = 116.75, SD = sqrt(38.91667) = 6.238322
    # codebook reliability 0.80 -> S_diff = 6.238322 * sqrt(2 * 0.2) = 3.945460; threshold 7.733 points
    p = res.parameters.iloc[0]
    assert p["sd"] == pytest.approx(6.238322, abs=1e-6) and p["s_diff"] == pytest.approx(3.945460, abs=1e-5)
    # codebook cut-off 4: course 1 ends at 8 (> 4) so it is improved, not recovered; course 3 (+8 > 7.733)
    assert p["cutoff"] == 4 and p["criterion"] == "c"
    assert counts(res) == {"deteriorated": 1, "unchanged": 1, "improved": 2, "recovered": 0}


def test_cutoff_criteria() -> None:
    # a: dysfunctional mean - 2 SD (lower is better) = 18.25 - 2 * 6.238322 = 5.773356
    assert clinical_cutoff("a", sign=-1, dysfunctional=(18.25, 6.238322)) == pytest.approx(5.773356)
    # b: functional mean + 2 SD (lower is better) = 5 + 4 = 9
    assert clinical_cutoff("b", sign=-1, functional=(5.0, 2.0)) == pytest.approx(9.0)
    # c: (2 * 18.25 + 6.238322 * 5) / (6.238322 + 2) = 67.69161 / 8.238322 = 8.216674
    c = clinical_cutoff("c", sign=-1, dysfunctional=(18.25, 6.238322), functional=(5.0, 2.0))
    assert c == pytest.approx(8.216674, abs=1e-5)
    res = reliable_change(tiny_long(), "dager_rus_30", criterion="c", functional=(5.0, 2.0))
    assert res.parameters.iloc[0]["cutoff"] == pytest.approx(c, abs=1e-5)
    assert counts(res)["recovered"] == 1  # course 1 ends at 8 < 8.2167
    res_a = reliable_change(tiny_long(), "dager_rus_30", criterion="a")
    assert res_a.parameters.iloc[0]["cutoff"] == pytest.approx(5.773356, abs=1e-5)
    with pytest.raises(AnalysisError, match="criterion 'b'"):
        reliable_change(tiny_long(), "dager_rus_30", criterion="b")


def test_higher_is_better_mirrors() -> None:
    # livssituasjon = 30 - days: same |RCI|, opposite sign, same categories with the mirrored cut-off 30 - 10
    res = reliable_change(tiny_long(), "livssituasjon", sd=5.0, reliability=0.8, cutoff=20)
    assert res.courses["category"].tolist() == ["recovered", "unchanged", "deteriorated", "improved"]
    assert res.courses["rci"].iloc[0] == pytest.approx(3.794733, abs=1e-6)


def test_no_cutoff_means_no_recovered() -> None:
    # dager_alkohol_30 has no codebook cut-off: recovered is not assessed and the parameters say so
    long = tiny_long().assign(dager_alkohol_30=lambda d: d["dager_rus_30"])
    res = reliable_change(long, "dager_alkohol_30", sd=5.0)
    assert res.parameters.iloc[0]["criterion"] == "none" and np.isnan(res.parameters.iloc[0]["cutoff"])
    assert counts(res, "dager_alkohol_30") == {
        "deteriorated": 1,
        "unchanged": 1,
        "improved": 2,
        "recovered": 0,
    }


def test_by_group_and_plot(artifacts) -> None:
    res = reliable_change(
        tiny_long(), ["dager_rus_30", "livssituasjon"], sd=5.0, reliability=0.8, by="hovedrusmiddel"
    )
    # courses 2 and 4 are group 1 (alcohol): unchanged + improved (cut-off 4 from the codebook)
    assert counts(res, group=1) == {"deteriorated": 0, "unchanged": 1, "improved": 1, "recovered": 0}
    assert counts(res, group=2) == {"deteriorated": 1, "unchanged": 0, "improved": 1, "recovered": 0}
    # every count of this tiny table is below 5: the protected figure draws no share, only the marker
    ax = res.plot()
    assert all(p.get_width() == 0 for p in ax.patches)
    assert {t.get_text() for t in ax.texts if t.get_gid() == "suppressed"} == {":"}
    # unprotected (stamped): first category (deteriorated) of the first bar (days, All) = 1 of 4 = 25 %
    from kvarus_research.privacy.rules import DISABLED_STAMP

    ax = res.plot(enabled=False)
    widths = [p.get_width() for p in ax.patches]
    assert widths[0] == pytest.approx(25.0)
    assert DISABLED_STAMP in [t.get_text() for t in ax.figure.texts]
    ax.figure.savefig(artifacts / "outcomes_reliable_change.png", bbox_inches="tight")


values = st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(values, values, st.floats(0.5, 10), st.floats(0, 30))
def test_classify_mirror_property(x1, x2, s_diff, cut) -> None:
    # Mirroring the scale (x -> -x) and the direction of improvement must give the same categories, and the
    # categories follow the RCI thresholds exactly.
    n = min(len(x1), len(x2))
    a, b = np.array(x1[:n]), np.array(x2[:n])
    rci, low = classify(a, b, s_diff=s_diff, sign=-1, z=1.96, cutoff=cut)
    _, high = classify(-a, -b, s_diff=s_diff, sign=1, z=1.96, cutoff=-cut)
    assert low.tolist() == high.tolist()
    assert all((c == "deteriorated") == (r > 1.96) for c, r in zip(low, rci))
    assert all((c in ("improved", "recovered")) == (r < -1.96) for c, r in zip(low, rci))
    assert all(c != "recovered" or y < cut for c, y in zip(low, b))


def test_protected_categories_cannot_be_recomputed_from_the_total() -> None:
    """The four categories of a group split n_total (on every row): with one category of 1-4 hidden, a partner is
    hidden too, else it would be n_total minus the three others."""
    start = [20] * 30
    # S_diff = 3.162278, threshold 6.2 points: 20 -> 8 recovered (8 < 10), 20 -> 19 unchanged, 20 -> 27
    # deteriorated, 20 -> 12 improved (reliable, but 12 >= 10)
    end = [8] * 12 + [19] * 10 + [27] * 5 + [12] * 3
    df = pd.DataFrame(
        [(i, "baseline", a) for i, a in enumerate(start)] + [(i, "ending", b) for i, b in enumerate(end)],
        columns=["course_id", "timepoint", "dager_rus_30"],
    )
    res = reliable_change(df, "dager_rus_30", sd=5.0, reliability=0.8, cutoff=10)
    assert counts(res) == {"recovered": 12, "improved": 3, "unchanged": 10, "deteriorated": 5}
    prot = res.protected().table.set_index("category")
    # improved 3 is primary; the smallest partner is deteriorated 5; n_total 30 stays
    assert prot["n"].isna().to_dict() == {"recovered": False, "improved": True, "unchanged": False,
                                          "deteriorated": True}  # fmt: skip
    assert set(prot["n_total"]) == {30}


def test_protected_groups_cannot_be_recomputed_from_all(reader_attack) -> None:
    """With groups, each category of "All" is the sum of the groups' (declared as a margin): a group's hidden 3
    is not All's count minus the other group's, checked by an independent linear-programming attack."""

    # group 1: recovered 6, improved 3, unchanged 7, deteriorated 5; group 2: 9, 8, 6, 7 (sd 5, r 0.8, cut 10)
    plan = {1: [8] * 6 + [12] * 3 + [19] * 7 + [27] * 5, 2: [8] * 9 + [12] * 8 + [19] * 6 + [27] * 7}
    rows, cid = [], 0
    for grp, ends in plan.items():
        for e in ends:
            cid += 1
            rows += [(cid, "baseline", 20, grp), (cid, "ending", e, grp)]
    df = pd.DataFrame(rows, columns=["course_id", "timepoint", "dager_rus_30", "hovedrusmiddel"])
    res = reliable_change(df, "dager_rus_30", sd=5.0, reliability=0.8, cutoff=10, by="hovedrusmiddel")
    t = res.table
    shown = res.protected().table
    assert (
        list(shown.columns) == list(t.columns) and shown["group_label"].tolist() == t["group_label"].tolist()
    )
    hidden = shown["n"].isna().to_numpy()
    assert hidden[((t["group"] != "All") & (t["n"] == 3)).to_numpy()].all()
    # the reader's equations: per group, the categories add up to n_total; per category, the groups to All
    attack, equation = reader_attack
    cell = {(str(g), c): i for i, (g, c) in enumerate(zip(t["group"], t["category"]))}
    published = {i: float(t.loc[i, "n"]) for i in range(len(t)) if not hidden[i]}
    groups = t["group"].astype(str).unique()
    totals = {f"total {g}": float(t.loc[cell[(g, CATEGORIES[0])], "n_total"]) for g in groups}
    eqs = [
        equation([cell[(g, c)] for c in CATEGORIES], f"total {g}", {**published, **totals}) for g in groups
    ]
    eqs += [
        equation([cell[(g, c)] for g in groups if g != "All"], cell[("All", c)], published)
        for c in CATEGORIES
    ]
    unknown = [i for i in range(len(t)) if hidden[i]]
    for i, (lo, hi) in attack(unknown, [e for e in eqs if e[0]]).items():
        assert hi - lo > 0.5, f"row {i} ({t.loc[i, 'group']}, {t.loc[i, 'category']}) pinned"
