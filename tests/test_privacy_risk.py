"""Re-identification risk: k-anonymity, l-diversity, risks, and reaching a target k."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvarus_research.errors import PrivacyError
from kvarus_research.privacy import achieve_k, band, class_sizes, risk_report


def test_risk_by_hand():
    df = pd.DataFrame(
        {
            "sex": [1, 1, 1, 1, 2, 2, 2, 1],
            "band": ["30-39"] * 4 + ["30-39", "30-39", "40-49", None],
            "drug": [1, 2, 2, 3, 1, 1, 4, 2],
        }
    )
    r = risk_report(df, ["sex", "band"], sensitive="drug", target_k=3)
    # classes: (1,30-39) x4, (2,30-39) x2, (2,40-49) x1, (1,NA) x1 -> 4 classes over 8 records
    assert (r.n_classes, r.k, r.highest_risk, r.average_risk) == (4, 1, 1.0, 0.5)
    # distinct drugs per class: {1,2,3}=3, {1}=1, {4}=1, {2}=1 -> l = 1
    assert r.l_diversity == 1
    assert r.records_below == 4  # classes of 2, 1, 1 are below 3
    assert r.to_frame()["value"].tolist()[:3] == [8, 4, 1]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=60))
def test_risk_agrees_with_counting(rows):
    df = pd.DataFrame(rows, columns=["a", "b"])
    counts = {}
    for row in rows:
        counts[row] = counts.get(row, 0) + 1
    r = risk_report(df, ["a", "b"], target_k=None)
    assert r.k == min(counts.values())
    assert r.n_classes == len(counts)
    assert r.average_risk == pytest.approx(np.mean([1 / counts[row] for row in rows]))
    assert class_sizes(df, ["a", "b"]).tolist() == [counts[row] for row in rows]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(18, 80), st.integers(1, 2), st.integers(1, 6)), min_size=5, max_size=80),
    st.integers(2, 5),
)
def test_achieve_k_always_reaches_k_and_accounts_for_every_record(rows, k):
    df = pd.DataFrame(rows, columns=["age", "sex", "unit"])
    out, changes = achieve_k(df, ["age", "sex", "unit"], k, generalize={"age": [band(5), band(10), band(20)]})
    if len(out):
        assert class_sizes(out, ["age", "sex", "unit"]).min() >= k
    removed = changes.loc[changes["action"] == "removed", "records"].sum()
    assert len(out) + removed == len(df)  # nothing dropped silently


def test_achieve_k_prefers_generalisation():
    # ages 30..39 with one sex and unit: band(10) alone makes one class of 10 -> nothing suppressed.
    df = pd.DataFrame({"age": range(30, 40), "sex": 1, "unit": 5})
    out, changes = achieve_k(df, ["age", "sex", "unit"], 5, generalize={"age": [band(5), band(10)]})
    # band(5): 30-34 x5 and 35-39 x5 already reach k = 5, so the greedy stops after one step
    assert out["age"].tolist() == ["30-34"] * 5 + ["35-39"] * 5
    assert changes["action"].tolist() == ["generalised"]


def test_errors_name_columns():
    with pytest.raises(PrivacyError, match=r"\['age'\]"):
        risk_report(pd.DataFrame({"x": [1]}), ["age"])
