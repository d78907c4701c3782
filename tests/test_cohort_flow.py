"""The flow diagram: a PNG written to tests/_artifacts/ and the numbers drawn on it read back from the text
artists, compared with cohort.flow (exact when protection is off, the neutral marker for small counts when on)."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import pytest

import kvarus_research as kr
from kvarus_research import Cohort
from kvarus_research.cohort.examples import flow_registry


def _drawn(ax) -> dict[str, str]:
    """gid -> the count text after "n = " in that box."""
    out = {}
    for t in ax.texts:
        if t.get_gid():
            m = re.search(r"n = (.+)$", t.get_text())
            out[t.get_gid()] = m.group(1).replace(" ", "")
    return out


def _expected(flow) -> dict[str, str]:
    exp = {"0:n_before": str(flow["n_before"].iloc[0])}
    for i, row in flow.iterrows():
        exp[f"{i}:n_after"] = str(row["n_after"])
        exp[f"{i}:n_excluded"] = str(row["n_excluded"])
    return exp


@pytest.fixture(scope="module")
def synthetic_cohort():
    reg = kr.synthetic.generate(n_courses=3000, seed=11)
    return Cohort(reg).started_between("2021-01-01", None).age_between(18, 70).ended().has_baseline()


def test_flow_png_numbers_equal_flow(synthetic_cohort, artifacts):
    c = synthetic_cohort
    ax = c.plot_flow(enabled=False)
    path = artifacts / "cohort_flow_exact.png"
    ax.figure.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(ax.figure)
    assert path.stat().st_size > 10_000
    drawn = _drawn(ax)
    assert drawn == _expected(c.flow)
    # consistency of the flow itself: each step starts where the previous ended
    f = c.flow
    assert (f["n_before"].iloc[1:].to_numpy() == f["n_after"].iloc[:-1].to_numpy()).all()
    assert (f["n_before"] - f["n_after"] == f["n_excluded"]).all()
    from kvarus_research.privacy.rules import DISABLED_STAMP

    assert DISABLED_STAMP in [t.get_text() for t in ax.figure.texts]


def test_small_counts_are_shown_as_the_marker(artifacts):
    # hand-made flow (see test_cohort_builder): 8 -> 7 (1 opted out) -> 5 (2) -> 3 (2)
    c = Cohort(flow_registry()).started_between("2021-01-01", "2022-12-31").age_between(18, 65)
    ax = c.plot_flow()
    ax.figure.savefig(artifacts / "cohort_flow_protected.png", dpi=80, bbox_inches="tight")
    plt.close(ax.figure)
    drawn = _drawn(ax)
    # Counts 1-4 are suppressed; because a suppressed exclusion could otherwise be recomputed as a difference
    # (8 - 7 = 1), every published count is rounded to the nearest 5: 8 -> 10, 7 -> 5, 5 -> 5.
    assert drawn == {"0:n_before": "10", "0:n_after": "5", "0:n_excluded": ":", "1:n_after": "5",
                     "1:n_excluded": ":", "2:n_after": ":", "2:n_excluded": ":"}  # fmt: skip
    assert any("counts rounded to 5" in t.get_text() for t in ax.texts)
    # the marker states no bound ("<5" would be false for a count hidden to protect another); the footnote says so
    from kvarus_research.privacy import PRESETS

    assert not any("<5" in t.get_text() for t in [*ax.texts, *ax.figure.texts])
    assert PRESETS["norway"].footnote in [t.get_text() for t in ax.figure.texts]
    ax = c.plot_flow(rules="opensafely")
    assert set(_drawn(ax).values()) <= {"[REDACTED]", "10", "5", "0"}
    labels = " ".join(t.get_text().replace("\n", " ") for t in ax.texts)
    assert "Excluded: patient opted out (reservasjon)" in labels
    assert "Age 18–65 at course start" in labels


def test_plot_into_given_axes():
    fig, ax = plt.subplots()
    out = Cohort(flow_registry()).ended().plot_flow(ax=ax, enabled=False)
    assert out is ax and ax.get_title(loc="left") == "Selection of treatment courses"
    plt.close(fig)


def test_suppressed_exclusion_cannot_be_recomputed_from_the_published_flow():
    import pandas as pd

    from kvarus_research.cohort.flow import COUNT_COLUMNS, protect_flow

    flow = pd.DataFrame({"step": ["a", "b", "c"], "n_before": [1003, 1000, 988], "n_after": [1000, 988, 986],
                         "n_excluded": [3, 12, 2]})  # fmt: skip
    shown = protect_flow(flow).display()[COUNT_COLUMNS]
    assert shown.values.tolist() == [[1005, 1000, ":"], [1000, 990, 10], [990, 985, ":"]]
    for i, row in shown.iterrows():
        if row["n_excluded"] != ":":
            continue
        # a published count c (rounded to the nearest 5, halves up) means a true value in [c - 2, c + 2]
        lo = (row["n_before"] - 2) - (row["n_after"] + 2)
        hi = (row["n_before"] + 2) - (row["n_after"] - 2)
        candidates = [v for v in range(max(lo, 1), min(hi, 4) + 1)]
        assert len(candidates) >= 2, (i, candidates)  # the attacker cannot pin the suppressed count
        assert flow.loc[i, "n_excluded"] in candidates
