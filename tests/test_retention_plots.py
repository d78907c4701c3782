"""Plots: curves with number-at-risk tables (PNG in tests/_artifacts/), the numbers drawn equal the table's."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import kvarus_research as kr
from kvarus_research.retention import cox, cumulative_incidence, kaplan_meier, time_to_event
from kvarus_research.retention.plots import at_risk_at


@pytest.fixture(scope="module")
def tte():  # noqa: ANN201
    return time_to_event(kr.synthetic.generate(n_courses=8000, seed=4))


def _at_risk_texts(ax) -> list[str]:  # noqa: ANN001
    return [t.get_text() for t in ax.texts if t.get_gid() == "at_risk"]


def test_km_by_setting_png_with_at_risk_table(tte, artifacts: Path) -> None:  # noqa: ANN001
    km = kaplan_meier(tte, by="setting")
    ax = km.plot()
    path = artifacts / "retention_km_by_setting.png"
    ax.figure.savefig(path, dpi=90)
    assert path.stat().st_size > 10_000
    ticks = ax.get_xticks()
    expected = []
    shown = km.protected().table  # the figure reads the protected table (here equal to the coarsened one)
    for g in ("inpatient", "outpatient"):
        sub = shown[shown["group"] == g]
        expected += [f"{n:g}" for n in at_risk_at(sub, ticks) if n is not None]
    assert _at_risk_texts(ax) == expected
    # every number drawn is a rounded count (multiple of 5) of at least 10 courses
    assert all(int(s) % 5 == 0 and int(s) >= 10 for s in _at_risk_texts(ax))
    # the drawn steps are the table's estimates (after the starting point at 1)
    line = ax.get_lines()[0]
    np.testing.assert_allclose(
        line.get_ydata()[1:], shown.loc[shown["group"] == "inpatient", "estimate"].astype(float)
    )
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["inpatient", "outpatient"]
    plt.close(ax.figure)


def test_cumulative_incidence_png_labels_from_codebook(tte, artifacts: Path) -> None:  # noqa: ANN001
    ci = cumulative_incidence(tte)
    ax = ci.plot()
    ax.figure.savefig(artifacts / "retention_cumulative_incidence.png", dpi=90)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [
        "Dropout (Interrupted)",
        "Completed by mutual agreement",
        "Transferred to another legal entity",
    ]
    first = _at_risk_texts(ax)[0]
    n_total = len(tte.table)
    assert int(first) == 5 * np.floor(n_total / 5 + 0.5)  # all courses at risk at time 0, rounded to 5
    # the curves end where fewer than 10 courses remain at risk
    assert ci.table["n_at_risk"].min() >= 10
    plt.close(ax.figure)
    by = cumulative_incidence(tte, by="age_group")
    ax = by.plot(cause="mutual_agreement")
    ax.figure.savefig(artifacts / "retention_cif_mutual_by_age.png", dpi=90)
    assert len(ax.get_lines()) == tte.table["age_group"].nunique()
    plt.close(ax.figure)


def test_forest_plot_png(tte, artifacts: Path) -> None:  # noqa: ANN001
    res = cox(
        tte,
        covariates=["latent_severity", "age_at_start", "setting", "hovedrusmiddel"],
        scale={"age_at_start": 10},
        reference={"setting": "outpatient"},
    )
    ax = res.plot()
    ax.figure.savefig(artifacts / "retention_forest_dropout.png", dpi=90, bbox_inches="tight")
    labels = [t.get_text().rstrip("†") for t in ax.get_yticklabels()]
    assert labels == res.table["label"].tolist()[::-1]
    drawn = np.asarray(ax.get_lines()[0].get_xdata(), dtype=float)
    shown = res.protected().table["hr"].astype(float).to_numpy()[::-1]
    np.testing.assert_allclose(drawn, shown[~np.isnan(shown)])
    plt.close(ax.figure)


def test_at_risk_at_reads_first_row_at_or_after_tick() -> None:
    curve = pd.DataFrame({"time": [0.0, 30.0, 60.0], "n_at_risk": [100.0, 60.0, 20.0]})
    assert at_risk_at(curve, np.array([0.0, 30.0, 45.0, 90.0])) == [100.0, 60.0, 20.0, None]
    hidden = pd.DataFrame({"time": [0.0, 30.0], "n_at_risk": pd.array([100, pd.NA], dtype="Int64")})
    out = at_risk_at(hidden, np.array([0.0, 30.0]))
    assert out[0] == 100.0 and np.isnan(out[1])  # suppressed: NaN, drawn as the marker


def test_exact_curve_protected_in_the_figure(tte) -> None:  # noqa: ANN001
    # the exact (protect=False) curve has at-risk counts of 1-4 in its tail: the figure shows the marker there,
    # never the count, and the at-risk numbers drawn are exactly the protected table's visible ones
    km = kaplan_meier(kr.synthetic.generate(n_courses=300, seed=3), protect=False)
    p = km.protected("norway")
    assert p.suppressed["n_at_risk"].any()
    ax = km.plot(rules="norway")
    markers = [t.get_text() for t in ax.texts if t.get_gid() == "suppressed"]
    sub = p.table
    drawn = at_risk_at(sub, ax.get_xticks())
    assert _at_risk_texts(ax) == [f"{n:g}" for n in drawn if n is not None and not np.isnan(n)]
    assert len(markers) == sum(1 for n in drawn if n is not None and np.isnan(n))
    assert markers  # 300 courses: the tail's at-risk counts of 1-4 are hidden
    assert p.rules.footnote in [t.get_text() for t in ax.figure.texts]
