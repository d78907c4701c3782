"""Plots draw the protected numbers: pooled small units, suppressed bars blank and labelled "N<5".

A flags table made by hand (units 1-5 = A, B, C, D, E, all in region "Vest"):
  A: 20 courses, 15 in the numerator (10 in 2021 with 9 yes, 10 in 2022 with 6 yes)  -> 75.0 %
  B: 12 courses, 3 yes (2021); E: 15 courses, 4 yes (2021) -> numerators < 5 suppressed: bars blank, "N<5"
     (together 7: neither can be recomputed from the national total, so no secondary suppression is needed)
  C: 4 courses, 2 yes (2021), D: 5 courses, 5 yes (2021) -> both below the N limit 10: pooled 7 of 9 = 77.8 %
  Nation: 29 of 56 = 51.8 %.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kvarus_research import Registry
from kvarus_research.indicators import Indicator, Target, funnel_limits


def flags(with_e: bool = True) -> pd.DataFrame:
    parts = []
    spec = [(1, 10, 9, 2021), (1, 10, 6, 2022), (2, 12, 3, 2021), (3, 4, 2, 2021), (4, 5, 5, 2021)]
    for unit, n, yes, year in spec + ([(5, 15, 4, 2021)] if with_e else []):
        parts.append(pd.DataFrame({"unit_id": unit, "date": pd.Timestamp(f"{year}-06-01"), "denominator": True,
                                   "numerator": np.arange(n) < yes, "exclusion": None}))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def compute(with_e: bool = True):
    regs = pd.DataFrame({"patient_id": ["p"], "unit_id": [1], "kind": ["measurement"], "status": [1],
                         "date": [pd.Timestamp("2021-01-01")]})  # fmt: skip
    units = pd.DataFrame({"unit_id": [1, 2, 3, 4, 5], "unit_name": list("ABCDE"), "region": "Vest"})
    reg = Registry.from_registrations(regs, units=units)
    ind = Indicator(key="demo", label="Demo indicator", flags=lambda r: flags(with_e), population="hand-made flags",
                    numerator="yes", denominator="all", unit_of_analysis="course", registration="first MP",
                    target=Target(high=0.8, moderate=0.6))  # fmt: skip
    return ind.compute(reg, n_limit=10)


@pytest.fixture(scope="module")
def result():
    return compute()


def test_bar_plot_reads_back_protected_numbers(result, artifacts) -> None:
    ax = result.plot(kind="bar")
    ax.figure.savefig(artifacts / "indicator_bars.png")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    widths = dict(zip(labels, [round(b.get_width(), 1) for b in ax.containers[0]]))
    # A 15/20 = 75.0; pooled C + D = 7/9 = 77.8; B and E suppressed -> 0; nation 29/56 = 51.8
    assert widths == {"A": 75.0, "Pooled units (n < 10), 2 units": 77.8, "B": 0.0, "E": 0.0, "Norway": 51.8}
    texts = [t.get_text() for t in ax.texts]
    assert sorted(texts) == sorted(["15 av 20", "7 av 9", "N<5", "N<5", "29 av 56"])
    # Target bands: red below 60, yellow 60-80, green from 80.
    assert ax.get_title() == "Demo indicator, all years"
    table = result.protected().table
    b = table[(table["group"] == "B") & table["year"].isna()].iloc[0]
    assert pd.isna(b["numerator"]) and b["denominator"] == 12 and pd.isna(b["proportion"])


def test_table_pooling_rows(result) -> None:
    t = result.for_year(None)
    pooled = t[t["level"] == "pooled"].iloc[0]
    assert (pooled["n_units"], pooled["numerator"], pooled["denominator"]) == (2, 7, 9)
    assert pooled["target_level"] == "moderate"  # 77.8 % lies in 60-80 %


def test_funnel_plot_limits_and_points(result, artifacts) -> None:
    ax = result.plot(kind="funnel")
    ax.figure.savefig(artifacts / "indicator_funnel.png")
    # Points drawn: A (20, 75 %) and the pooled row (9, 77.8 %); B is suppressed and only counted in the legend.
    pts = np.round(ax.collections[0].get_offsets(), 1).tolist()
    assert sorted(pts) == [[9.0, 77.8], [20.0, 75.0]]
    assert any("2 unit(s) suppressed" in t.get_text() for t in ax.get_legend().get_texts())
    # 99.8 % limits around p0 = 29/56 at n = 20: z = 3.0902, half = z * sqrt(p0 (1 - p0) / 20).
    p0 = 29 / 56
    low, high = funnel_limits(p0, [20], 0.998)
    half = 3.090232 * np.sqrt(p0 * (1 - p0) / 20)
    assert low[0] == pytest.approx(p0 - half, abs=1e-5) and high[0] == pytest.approx(p0 + half, abs=1e-5)


def test_p_chart_national_by_hand(result, artifacts) -> None:
    spc = result.spc_table(period="year")
    # 2021: 9 + 3 + 2 + 5 + 4 = 23 of 10 + 12 + 4 + 5 + 15 = 46; 2022: 6 of 10; centre 29/56.
    assert spc["numerator"].tolist() == [23, 6] and spc["denominator"].tolist() == [46, 10]
    p0 = 29 / 56
    assert spc["ucl"].iloc[0] == pytest.approx(p0 + 3 * np.sqrt(p0 * (1 - p0) / 46))
    assert spc["lcl"].iloc[1] == pytest.approx(max(0.0, p0 - 3 * np.sqrt(p0 * (1 - p0) / 10)))
    assert not spc["signal"].any()
    ax = result.plot(kind="pchart", period="year")
    ax.figure.savefig(artifacts / "indicator_pchart.png")
    assert np.round(ax.lines[0].get_ydata(), 1).tolist() == [50.0, 60.0]
    # Unit A only: 2021 9/10, 2022 6/10; counts 1-4 would be blanked ("N<5") in the protected chart.
    spc_a = result.spc_table(unit_id=1, period="year")
    assert spc_a["proportion"].tolist() == [0.9, 0.6]


def test_secondary_suppression_over_the_national_total(artifacts) -> None:
    # Without E, B's numerator 3 is the only small cell: national 25 = A 15 + B 3 + pooled 7 would give it
    # away, so the smallest partner (the pooled row, 7) is suppressed too, and the plot blanks both.
    res = compute(with_e=False)
    p = res.protected()
    every = p.table[p.table["year"].isna()].set_index("group")
    assert pd.isna(every.loc["B", "numerator"]) and pd.isna(every.loc["Pooled units (n < 10)", "numerator"])
    assert every.loc["A", "numerator"] == 15 and every.loc["Norway", "numerator"] == 25
    assert "secondary_suppressed" in set(p.log["action"])
    ax = res.plot(kind="bar")
    ax.figure.savefig(artifacts / "indicator_bars_secondary.png")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    widths = dict(zip(labels, [round(float(b.get_width()), 1) for b in ax.containers[0]]))
    assert widths == {"A": 75.0, "Pooled units (n < 10), 2 units": 0.0, "B": 0.0, "Norway": 61.0}
    # The year constraint: A's rows for 2021 (9) and 2022 (6) add up to its all-years 15 and are published.
    yearly = p.table[(p.table["group"] == "A") & p.table["year"].notna()]
    assert yearly["numerator"].tolist() == [9, 6]


def test_bars_at_zero_and_one_hundred_percent() -> None:
    # 0 of 12 and 12 of 12: the Wilson bounds are exactly 0 and 1 and the error bars are drawn without error.
    t = pd.DataFrame({"level": ["unit", "unit"], "group": ["Z", "F"], "n_units": 1, "numerator": [0, 12],
                      "denominator": [12, 12], "proportion": [0.0, 1.0]})  # fmt: skip
    from kvarus_research.indicators import indicator_bars, wilson_ci

    t["ci_low"], t["ci_high"] = wilson_ci(t["numerator"], t["denominator"])
    assert t["ci_low"].iloc[0] == 0.0 and t["ci_high"].iloc[1] == 1.0
    ax = indicator_bars(t)
    assert sorted(round(float(b.get_width()), 1) for b in ax.containers[0]) == [0.0, 100.0]
    assert sorted(x.get_text() for x in ax.texts) == ["0 av 12", "12 av 12"]
