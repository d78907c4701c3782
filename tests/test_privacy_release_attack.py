"""An independent reader attacks everything one command publishes, all files together (issue 13).

The attacker (``tests/attacker.py``) imports nothing from the library: it reads the CSVs, encodes what their
columns mean (sums over units, pooled rows, regions, nation and years; numerator <= denominator; published
shares; a completeness table's answered count = the indicator's denominator; one population for every item asked
at the first measurement point; coverage; network work; report tables) and bounds every hidden count with
``scipy.optimize.linprog``. A release protects its small counts only if no hidden count whose true value is in
1..4 is pinned to one value, and no hidden count is pinned to a range inside 1..4.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import kvarus_research as kr

_spec = importlib.util.spec_from_file_location("attacker", Path(__file__).with_name("attacker.py"))
attacker = importlib.util.module_from_spec(_spec)
sys.modules["attacker"] = attacker
_spec.loader.exec_module(attacker)


def _report(label: str, b: pd.DataFrame, seconds: float) -> str:
    text = f"[{label}] {attacker.summary(b)}; attack {seconds:.1f} s"
    d = b[b["disclosed"]]
    if len(d):
        ex = d.head(8)
        text += "\nexamples: " + "; ".join(
            f"{r.file} row {r.row} {r.column} in [{r.lower:g}, {r.upper:g}]" for r in ex.itertuples()
        )
    print(text)
    return text


def _write_truth(registry, out: Path) -> None:
    """The same tables as the export, unprotected (the result objects' ``.table``), under the same names."""
    from kvarus_research.indicators.coverage import completeness, coverage
    from kvarus_research.indicators.framework import as_registry
    from kvarus_research.indicators.kvarus import kvarus_indicators
    from kvarus_research.indicators.network import network_work

    out.mkdir(parents=True, exist_ok=True)
    reg = as_registry(registry)
    for key, res in kvarus_indicators(reg).items():
        res.table.to_csv(out / f"{key}.csv", index=False)
        res.exclusions.to_csv(out / f"{key}_exclusions.csv", index=False)
    for key, res in completeness(reg).items():
        res.table.to_csv(out / f"completeness_{key}.csv", index=False)
    if registry.coverage is not None and len(registry.coverage):
        coverage(registry).table.to_csv(out / "coverage.csv", index=False)
    if reg.network_work is not None and len(reg.network_work):
        network_work(reg).table.to_csv(out / "network_work.csv", index=False)


def _check_aligned(att, published: Path, truth: Path) -> None:
    """The unprotected files line up with the published ones: same shape, published counts equal."""
    for name in {f for f, _, _ in att.hidden}:
        pub, raw = attacker.read_csv(published / name), attacker.read_csv(truth / name)
        assert pub.shape == raw.shape and list(pub.columns) == list(raw.columns), name
    for (name, row, col), _ in list(att.hidden.items())[:50]:
        assert attacker.parse_count(attacker.read_csv(truth / name).loc[row, col]) is not None


# ---------------------------------------------------------------------------------------------- the attacker
def _indicator_rows(rows: list[tuple]) -> pd.DataFrame:
    cols = ["level", "group", "unit_id", "region", "year", "n_units", "numerator", "denominator", "missing"]
    t = pd.DataFrame(rows, columns=cols)
    t["proportion"] = t["ci_low"] = t["ci_high"] = t["target_level"] = ""
    return pd.concat([t, t.assign(year="")], ignore_index=True)  # 2024 and all years (one year: the same)


def test_attacker_recovers_a_count_hidden_in_one_file_from_another(tmp_path: Path) -> None:
    # plan_beh: units A and B hide their missing answers; the region and nation show 5 together, so plan_beh
    # alone leaves A's count anywhere in 0..5. completeness_answered_plan_beh shows A's population (15) and
    # answered (12): missing = population - answered = 15 - 12 = 3, and B's = 5 - 3 = 2.
    _indicator_rows(
        [
            ("unit", "A", "1", "R", "2024", 1, 8, 12, ":"),
            ("unit", "B", "2", "R", "2024", 1, 9, 15, ":"),
            ("region", "R", "", "R", "2024", 2, 17, 27, 5),
            ("national", "Norway", "", "", "2024", 2, 17, 27, 5),
        ]
    ).to_csv(tmp_path / "plan_beh.csv", index=False)
    _indicator_rows(
        [
            ("unit", "A", "1", "R", "2024", 1, 12, 15, 0),
            ("unit", "B", "2", "R", "2024", 1, 15, 17, 0),
            ("region", "R", "", "R", "2024", 2, 27, 32, 0),
            ("national", "Norway", "", "", "2024", 2, 27, 32, 0),
        ]
    ).to_csv(tmp_path / "completeness_answered_plan_beh.csv", index=False)
    alone = attacker.attack_folder(tmp_path, files=["plan_beh.csv"]).bounds()
    a = alone[(alone["row"] == 0) & (alone["column"] == "missing")].iloc[0]
    assert (a["lower"], a["upper"]) == pytest.approx((0, 5))  # one file: A + B = 5, nothing more
    both = attacker.attack_folder(tmp_path).bounds(truth={("plan_beh.csv", 0, "missing"): 3.0})
    a = both[(both["file"] == "plan_beh.csv") & (both["row"] == 0) & (both["column"] == "missing")].iloc[0]
    assert (a["lower"], a["upper"]) == pytest.approx((3, 3))
    assert a["pinned"] and a["disclosed"]
    b = both[(both["file"] == "plan_beh.csv") & (both["row"] == 1) & (both["column"] == "missing")].iloc[0]
    assert (b["lower"], b["upper"]) == pytest.approx((2, 2))


def test_attacker_rejects_false_truth(tmp_path: Path) -> None:
    # the truth check guards the attacker's relations: a "true" value that breaks a relation is refused
    _indicator_rows(
        [
            ("unit", "A", "1", "R", "2024", 1, ":", 12, 0),
            ("unit", "B", "2", "R", "2024", 1, 9, 15, 0),
            ("region", "R", "", "R", "2024", 2, 17, 27, 0),
            ("national", "Norway", "", "", "2024", 2, 17, 27, 0),
        ]
    ).to_csv(tmp_path / "plan_beh.csv", index=False)
    att = attacker.attack_folder(tmp_path)
    b = att.bounds()
    assert set(b["lower"]) == {8.0} and set(b["upper"]) == {8.0}  # 17 - 9
    with pytest.raises(AssertionError, match="violate"):
        attacker.attack_folder(tmp_path).bounds(truth={("plan_beh.csv", 0, "numerator"): 7.0})


# ---------------------------------------------------------------------------------------------- the releases
@pytest.mark.slow
@pytest.mark.parametrize(("n_courses", "seed"), [(400, 3), (1000, 1)])
def test_indicators_export_recovers_nothing(tmp_path: Path, n_courses: int, seed: int) -> None:
    from kvarus_research.indicators.export import write_indicator_outputs

    registry = kr.synthetic.generate(n_courses=n_courses, seed=seed)
    write_indicator_outputs(registry, tmp_path / "out", rules="norway")
    _write_truth(registry, tmp_path / "truth")
    start = time.perf_counter()
    att = attacker.attack_folder(tmp_path / "out")
    _check_aligned(att, tmp_path / "out", tmp_path / "truth")
    b = att.bounds(truth=attacker.truth_of(att, tmp_path / "truth"))
    text = _report(f"export {n_courses} courses, seed {seed}", b, time.perf_counter() - start)
    assert len(b) > 0
    assert not b["disclosed"].any(), text


@pytest.mark.slow
def test_report_recovers_nothing(tmp_path: Path) -> None:
    from kvarus_research.report.build import build_report

    build_report(out=tmp_path / "report", n_courses=400, seed=3, progress=False)
    start = time.perf_counter()
    att = attacker.attack_folder(tmp_path / "report")
    b = att.bounds()  # no truth: a count pinned to one value is that value (the LP is feasible, see above)
    text = _report("report 400 courses, seed 3", b, time.perf_counter() - start)
    assert len(b) > 0
    assert not b["disclosed"].any(), text


# ---------------------------------------------------------------------------------------------- a user's release
def _user_tables(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two tables a researcher publishes together: courses by unit and sex, and by unit and age band, each with
    totals over units and categories; the two count the same courses (same unit totals)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    units = [f"Unit {k}" for k in range(1, 7)]
    sizes = rng.integers(3, 40, len(units))
    rows_sex, rows_age = [], []
    for u, n in zip(units, sizes):
        female = int(rng.binomial(n, 0.3))
        ages = rng.multinomial(n, [0.25, 0.5, 0.25])
        rows_sex += [(u, "Female", female), (u, "Male", int(n) - female)]
        rows_age += [(u, band, int(a)) for band, a in zip(["<30", "30-49", "50+"], ages)]
    sex = pd.DataFrame(rows_sex, columns=["unit", "sex", "n"])
    age = pd.DataFrame(rows_age, columns=["unit", "age", "n"])

    def with_totals(t: pd.DataFrame, cat: str) -> pd.DataFrame:
        by_unit = t.groupby("unit", sort=False)["n"].sum().reset_index().assign(**{cat: "All"})
        body = pd.concat([t, by_unit], ignore_index=True)
        by_cat = body.groupby(cat, sort=False)["n"].sum().reset_index().assign(unit="All")
        return pd.concat([body, by_cat], ignore_index=True)[["unit", cat, "n"]]

    return with_totals(sex, "sex"), with_totals(age, "age")


def _attack_user_release(folder: Path, sex: pd.DataFrame, age: pd.DataFrame) -> pd.DataFrame:
    """The reader's equations, written from what the two files say (not from the library's declarations)."""
    att = attacker.Attack()
    cells = {}
    for name, t, cat in (("by_sex.csv", sex, "sex"), ("by_age.csv", age, "age")):
        pub = attacker.read_csv(folder / name)
        for i, r in pub.iterrows():
            cells[(name, r["unit"], r[cat])] = att.cell(name, i, "n", r["n"])
        for u in t["unit"].unique():
            parts = [cells[(name, u, c)] for c in t[cat].unique() if c != "All"]
            att.eq(cells[(name, u, "All")], attacker.Lin.total(parts))
        for c in t[cat].unique():
            parts = [cells[(name, u, c)] for u in t["unit"].unique() if u != "All"]
            att.eq(cells[(name, "All", c)], attacker.Lin.total(parts))
    for u in sex["unit"].unique():  # the same courses: a unit's total in one file is its total in the other
        att.eq(cells[("by_sex.csv", u, "All")], cells[("by_age.csv", u, "All")])
    truth = {}
    for name, t in (("by_sex.csv", sex), ("by_age.csv", age)):
        for i, v in t["n"].items():
            truth[(name, int(i), "n")] = float(v)
    return att.bounds(truth={k: v for k, v in truth.items() if k in att.hidden})


@pytest.mark.parametrize("seed", [1, 2, 3, 5, 6])
def test_user_release_gives_nothing_back_that_tables_alone_would(tmp_path: Path, seed: int) -> None:
    from kvarus_research.privacy import Margin, Release, protect

    sex, age = _user_tables(seed)
    structure = {"by_sex.csv": [Margin("unit", "All"), Margin("sex", "All")],
                 "by_age.csv": [Margin("unit", "All"), Margin("age", "All")]}  # fmt: skip
    release = Release("norway")
    release.add("by_sex", sex, counts="n", structure=structure["by_sex.csv"])
    release.add("by_age", age, counts="n", structure=structure["by_age.csv"])
    for i in sex.index[sex["sex"] == "All"]:  # declare the shared unit totals
        j = age.index[(age["unit"] == sex.loc[i, "unit"]) & (age["age"] == "All")][0]
        release.add_sum(("by_sex", (int(i), "n")), [("by_age", (int(j), "n"))])
    release.write(tmp_path / "together")
    b = _attack_user_release(tmp_path / "together", sex, age)
    text = _report(f"user release, seed {seed}", b, 0.0)
    assert (b["true"].between(1, 4)).any()  # small counts are hidden and attacked
    assert not b["disclosed"].any(), text
    # the same two tables protected one at a time, attacked with the same equations
    for name, t in (("by_sex.csv", sex), ("by_age.csv", age)):
        protect(t, counts="n", structure=structure[name], rules="norway").to_csv(tmp_path / "alone" / name)
    alone = _attack_user_release(tmp_path / "alone", sex, age)
    _report(f"user tables alone, seed {seed}", alone, 0.0)
    if seed in (1, 5):  # here one table gives back what the other hides: the release is what protects them
        assert alone["disclosed"].any()
