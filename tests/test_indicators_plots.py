"""Plots draw the protected numbers: pooled small units, suppressed bars blank and labelled with the neutral marker.

A flags table made by hand (units 1-5 = A, B, C, D, E, all in region "Vest"); every count and every complement
("x av n" also tells n - x) is 5 or more unless said otherwise:
  A: 24 courses, 14 in the numerator (12 in 2021 with 7 yes, 12 in 2022 with 7 yes)  -> 58.3 %
  B: 12 courses, 3 yes (2021); E: 15 courses, 4 yes (2021) -> numerators < 5 suppressed: bars blank, ":"
     (together 7: neither can be recomputed from the national total, so no secondary suppression is needed)
  C: 4 courses, 2 yes (2021), D: 9 courses, 6 yes (2021) -> both below the N limit 10: pooled 8 of 13 = 61.5 %
  Nation: 2021 22 of 52, 2022 7 of 12; all years 29 of 64 = 45.3 %.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kvarus_research import Registry
from kvarus_research.indicators import Indicator, Target, funnel_limits


def flags(with_e: bool = True) -> pd.DataFrame:
    parts = []
    spec = [(1, 12, 7, 2021), (1, 12, 7, 2022), (2, 12, 3, 2021), (3, 4, 2, 2021), (4, 9, 6, 2021)]
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
    # A 14/24 = 58.3; pooled C + D = 8/13 = 61.5; B and E suppressed -> 0; nation 29/64 = 45.3
    assert widths == {"A": 58.3, "Pooled units (n < 10), 2 units": 61.5, "B": 0.0, "E": 0.0, "Norway": 45.3}
    texts = [t.get_text() for t in ax.texts]
    assert sorted(texts) == sorted(["14 av 24", "8 av 13", ":", ":", "29 av 64"])
    # a suppressed bar carries the rules' footnote (":" may stand for 5 or more when hidden as a partner)
    assert [t.get_text() for t in ax.figure.texts] == [result.protected().rules.footnote]
    ax = result.plot(kind="bar", rules="opensafely")
    assert "[REDACTED]" in [t.get_text() for t in ax.texts]
    assert not any("<5" in t.get_text() for t in ax.figure.findobj(lambda a: hasattr(a, "get_text")))
    # Target bands: red below 60, yellow 60-80, green from 80.
    assert ax.get_title() == "Demo indicator, all years"
    table = result.protected().table
    b = table[(table["group"] == "B") & table["year"].isna()].iloc[0]
    assert pd.isna(b["numerator"]) and b["denominator"] == 12 and pd.isna(b["proportion"])


def test_table_pooling_rows(result) -> None:
    t = result.for_year(None)
    pooled = t[t["level"] == "pooled"].iloc[0]
    assert (pooled["n_units"], pooled["numerator"], pooled["denominator"]) == (2, 8, 13)
    assert pooled["target_level"] == "moderate"  # 61.5 % lies in 60-80 %


def test_funnel_plot_limits_and_points(result, artifacts) -> None:
    ax = result.plot(kind="funnel")
    ax.figure.savefig(artifacts / "indicator_funnel.png")
    # Points drawn: A (24, 58.3 %) and the pooled row (13, 61.5 %); B and E are suppressed, counted in the legend.
    pts = np.round(ax.collections[0].get_offsets(), 1).tolist()
    assert sorted(pts) == [[13.0, 61.5], [24.0, 58.3]]
    assert any(t.get_text() == "2 unit(s) not shown (:)" for t in ax.get_legend().get_texts())
    # 99.8 % limits around p0 = 29/64 at n = 24: z = 3.0902, half = z * sqrt(p0 (1 - p0) / 24).
    p0 = 29 / 64
    low, high = funnel_limits(p0, [24], 0.998, method="normal")
    half = 3.090232 * np.sqrt(p0 * (1 - p0) / 24)
    assert low[0] == pytest.approx(p0 - half, abs=1e-5) and high[0] == pytest.approx(p0 + half, abs=1e-5)


def test_p_chart_national_by_hand(result, artifacts) -> None:
    spc = result.spc_table(period="year")
    # 2021: 7 + 3 + 2 + 6 + 4 = 22 of 12 + 12 + 4 + 9 + 15 = 52; 2022: 7 of 12; centre 29/64.
    assert spc["numerator"].tolist() == [22, 7] and spc["denominator"].tolist() == [52, 12]
    p0 = 29 / 64
    assert spc["ucl"].iloc[0] == pytest.approx(p0 + 3 * np.sqrt(p0 * (1 - p0) / 52))
    assert spc["lcl"].iloc[1] == pytest.approx(max(0.0, p0 - 3 * np.sqrt(p0 * (1 - p0) / 12)))
    assert not spc["signal"].any()
    ax = result.plot(kind="pchart", period="year")
    ax.figure.savefig(artifacts / "indicator_pchart.png")
    assert np.round(ax.lines[0].get_ydata(), 1).tolist() == [42.3, 58.3]
    # Unit A only: 2021 7/12, 2022 7/12; counts 1-4 would be blanked (":") in the protected chart.
    spc_a = result.spc_table(unit_id=1, period="year")
    assert spc_a["proportion"].tolist() == [7 / 12, 7 / 12]
    # Unit B: 3 of 12 in 2021 is suppressed in the chart's protected side table with its proportion and signal
    # (the limits, computed from the published denominator 12 alone, stay): the gap carries the marker
    side = result.protected().sides[("spc", 2, "year")]
    row = side.table.iloc[0]
    assert pd.isna(row["numerator"]) and pd.isna(row["proportion"]) and pd.isna(row["signal"])
    assert row["denominator"] == 12
    ax = result.plot(kind="pchart", unit_id=2, period="year")
    assert np.isnan(ax.lines[0].get_ydata()).all()
    assert [t.get_text() for t in ax.texts if t.get_gid() == "suppressed"] == [":"]


def test_secondary_suppression_over_the_national_total(artifacts) -> None:
    # Without E, B's numerator 3 (2021) is the only small cell: national 2021 18 = A 7 + B 3 + pooled 8 would
    # give it away, so the smallest partner, A's 7, is suppressed too; then A's all-years 14 = 7 + 7 (2022)
    # would give A's 2021 back, and national all-years 25 = 14 + 3 + 8 B's: A's all-years row goes as well.
    res = compute(with_e=False)
    p = res.protected()
    every = p.table[p.table["year"].isna()].set_index("group")
    assert pd.isna(every.loc["B", "numerator"]) and pd.isna(every.loc["A", "numerator"])
    assert every.loc["Pooled units (n < 10)", "numerator"] == 8 and every.loc["Norway", "numerator"] == 25
    secondary = p.log[p.log["action"] == "secondary_suppressed"]
    assert sorted(secondary["row"].astype(int)) == [0, 8]  # A 2021 and A all years
    ax = res.plot(kind="bar")
    ax.figure.savefig(artifacts / "indicator_bars_secondary.png")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    widths = dict(zip(labels, [round(float(b.get_width()), 1) for b in ax.containers[0]]))
    assert widths == {"A": 0.0, "Pooled units (n < 10), 2 units": 61.5, "B": 0.0, "Norway": 51.0}  # 25/49
    # A's 2022 row (7 of 12) stays: A's 2021 and all-years rows are both hidden, so neither follows from it.
    yearly = p.table[(p.table["group"] == "A") & p.table["year"].notna()]
    assert yearly["numerator"].tolist()[1] == 7 and pd.isna(yearly["numerator"].tolist()[0])


def test_a_small_complement_is_suppressed_like_a_small_count() -> None:
    """7 of 9 also says 2 did not: the pooled row of C (2 of 4) and D (5 of 5) is suppressed for its complement,
    and its proportion with it; 0 without (D alone would be 5 of 5) is not a count to hide."""
    table = pd.DataFrame({"level": ["unit", "pooled", "unit", "national"], "group": ["A", "P", "B", "Norway"],
                          "unit_id": [1, None, 2, None], "region": ["R", None, "R", None],
                          "year": pd.array([pd.NA] * 4, dtype="Int64"), "n_units": [1, 2, 1, 4],
                          "numerator": [15, 7, 20, 42], "denominator": [20, 9, 20, 49], "missing": 0,
                          "proportion": [0.75, 7 / 9, 1.0, 42 / 49], "ci_low": 0.0, "ci_high": 1.0,
                          "target_level": "low"})  # fmt: skip
    from kvarus_research.indicators.protection import protect_indicator_table

    p = protect_indicator_table(table)
    # P: 9 - 7 = 2 (primary). Its partner over the national total is the smallest other numerator, A's 15
    # (A's complement 5 and P's 2 add up to 7 >= 5); B's 20 of 20 (0 without) stays. Denominators all shown.
    assert p.table["numerator"].tolist() == [pd.NA, pd.NA, 20, 42]
    assert p.table["denominator"].tolist() == [20, 9, 20, 49]
    assert p.table["proportion"].isna().tolist() == [True, True, False, False]
    reasons = p.log.loc[p.log["column"] == "numerator", "reason"].tolist()
    assert "complement denominator - numerator below 5 (primary)" in reasons


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
