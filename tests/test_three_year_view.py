"""The three-year view: unit shares per year side by side, from the protected table."""

from __future__ import annotations

import matplotlib

import kvarus_research as kr
from kvarus_research.indicators import TREATMENT_PLAN

matplotlib.use("Agg")


def _bars(ax) -> list:
    from matplotlib.container import BarContainer

    return [b for c in ax.containers if isinstance(c, BarContainer) for b in c]


def test_three_year_view_draws_the_published_shares_of_the_last_three_years() -> None:
    res = TREATMENT_PLAN.compute(kr.synthetic.generate(n_courses=1500, seed=1))
    ax = res.plot(kind="years")
    pub = res.published().table
    years = sorted(int(y) for y in pub["year"].dropna().unique())[-3:]
    assert [t.get_text() for t in ax.get_legend().get_texts()][:3] == [str(y) for y in years]
    # every drawn bar is a published share of one of those years (hidden ones drawn with zero length)
    shown = pub[
        pub["year"].isin(years).to_numpy(dtype=bool) & pub["level"].isin(["unit", "pooled", "national"])
    ]
    widths = sorted(round(float(b.get_width()), 6) for b in _bars(ax) if b.get_width() > 0)
    expected = sorted(round(float(p) * 100, 6) for p in shown["proportion"].dropna())
    assert widths == expected
    hidden = int(shown["proportion"].isna().sum())
    markers = [t for t in ax.texts if t.get_gid() == "suppressed"]
    assert len(markers) == hidden and all(t.get_text() == ":" for t in markers)
    assert not any("<" in t.get_text() for t in ax.texts)
    # the nation is the top group
    assert ax.get_yticklabels()[-1].get_text() == pub.loc[pub["level"] == "national", "group"].iloc[0]


def test_three_year_view_chosen_years() -> None:
    res = TREATMENT_PLAN.compute(kr.synthetic.generate(n_courses=800, seed=2))
    ax = res.plot(kind="years", years=(2021, 2022))
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["2021", "2022"]
    nat = res.published().table.query("level == 'national'")
    nat = nat[nat["year"].isin([2021, 2022]).to_numpy(dtype=bool)].sort_values("year")
    # the nation's bars are the top group: one per year, in year order
    bars = _bars(ax)
    top = sorted((b for b in bars if b.get_y() > len(ax.get_yticks()) - 1.5), key=lambda b: b.get_y())
    assert [round(b.get_width(), 6) for b in top] == [round(float(p) * 100, 6) for p in nat["proportion"]]
