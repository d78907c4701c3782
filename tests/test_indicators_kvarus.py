"""The four Kvarus indicators on a hand-made registry whose values are worked out by hand.

The registry (units U1 = 1, U2 = 2) holds the denominator traps:

course  patient unit  registrations (date: kind status plan_beh plan_krise eval_utbytte)
c1      p1      1     2021-01-05 baseline; 2021-02-01 MP 1 2 1 4; 2021-05-01 MP 1 1 1 1; 2021-08-01 ending 4
c2      p2      1     2021-03-01 MP 1 3 2 5; 2021-06-01 ending 3
c3      p2      2     2022-01-10 MP 1 2 0 NA; 2022-04-01 ending 2 (transferred)      second course of p2
c4      p3      2     2022-02-01 baseline; 2022-03-01 MP status 0 (missing) 2 2 5; 2022-06-01 MP 1 2 2 5
c5      p4      2     2022-05-01 ending 3 (its first Målepunkt row is an ending: not active) 2 2 5
c6      p5      1     2022-03-01 baseline only (no measurement point)
c7      p6      1     2022-04-01 MP 1 2 2 2; 2022-07-01 MP 1 1 1 1; 2022-09-01 ending 4

c1 and c7 have several measurement points: only the first counts (the register's R code counts rows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from kvarus_research import AnalysisError, Registry
from kvarus_research.indicators import (
    KVARUS_INDICATORS,
    MUTUAL_AGREEMENT,
    Indicator,
    Target,
    feedback_indicator,
    first_measurement_flags,
    kvarus_indicators,
    load_targets,
    mutual_agreement_flags,
)

NA = pd.NA
ROWS = [
    # course, patient, unit, date, kind, status, plan_beh, plan_krise, eval_utbytte
    ("c1", "p1", 1, "2021-01-05", "baseline", NA, NA, NA, NA),
    ("c1", "p1", 1, "2021-02-01", "measurement", 1, 2, 1, 4),
    ("c1", "p1", 1, "2021-05-01", "measurement", 1, 1, 1, 1),
    ("c1", "p1", 1, "2021-08-01", "ending", 4, NA, NA, NA),
    ("c2", "p2", 1, "2021-03-01", "measurement", 1, 3, 2, 5),
    ("c2", "p2", 1, "2021-06-01", "ending", 3, NA, NA, NA),
    ("c3", "p2", 2, "2022-01-10", "measurement", 1, 2, 0, NA),
    ("c3", "p2", 2, "2022-04-01", "ending", 2, NA, NA, NA),
    ("c4", "p3", 2, "2022-02-01", "baseline", NA, NA, NA, NA),
    ("c4", "p3", 2, "2022-03-01", "measurement", 0, 2, 2, 5),
    ("c4", "p3", 2, "2022-06-01", "measurement", 1, 2, 2, 5),
    ("c5", "p4", 2, "2022-05-01", "ending", 3, 2, 2, 5),
    ("c6", "p5", 1, "2022-03-01", "baseline", NA, NA, NA, NA),
    ("c7", "p6", 1, "2022-04-01", "measurement", 1, 2, 2, 2),
    ("c7", "p6", 1, "2022-07-01", "measurement", 1, 1, 1, 1),
    ("c7", "p6", 1, "2022-09-01", "ending", 4, NA, NA, NA),
]


def hand_registry() -> Registry:
    cols = [
        "course_id",
        "patient_id",
        "unit_id",
        "date",
        "kind",
        "status",
        "plan_beh",
        "plan_krise",
        "eval_utbytte",
    ]
    regs = pd.DataFrame(ROWS, columns=cols)
    regs["date"] = pd.to_datetime(regs["date"])
    for c in ("status", "plan_beh", "plan_krise", "eval_utbytte"):
        regs[c] = regs[c].astype("Int64")
    units = pd.DataFrame({"unit_id": [1, 2], "unit_name": ["U1", "U2"], "region": ["Vest", "Nord"],
                          "setting": ["outpatient", "inpatient"]})  # fmt: skip
    return Registry.from_registrations(regs, units=units, extract_date="2023-01-01")


def row(result, level: str, group: str, year=None) -> dict:
    t = result.table
    m = (t["level"] == level) & (t["group"] == group)
    m &= t["year"].isna() if year is None else t["year"].eq(year).fillna(False)
    assert m.sum() == 1, (level, group, year)
    return t[m.to_numpy(dtype=bool)].iloc[0].to_dict()


@pytest.fixture(scope="module")
def results():
    return kvarus_indicators(hand_registry(), n_limit=1)


def test_treatment_plan_course_level_by_hand(results) -> None:
    r = results["plan_beh"]
    # In the denominator: c1 (ja), c2 (vet ikke: a valid answer, not ja), c3 (ja), c7 (ja) -> 3 of 4.
    # Left out: c4 (status missing at its first MP; its later active MP is not used), c5 (first Målepunkt row is
    # an ending, not active), c6 (no measurement point). Per-row counting would have put c1's and c7's second
    # measurement points (plan_beh = 1) in the denominator too: 3/6.
    nat = row(r, "national", "Norway")
    assert (nat["numerator"], nat["denominator"], nat["missing"]) == (3, 4, 0)
    assert nat["proportion"] == pytest.approx(0.75)
    assert (row(r, "unit", "U1")["numerator"], row(r, "unit", "U1")["denominator"]) == (2, 3)  # c1, c2, c7
    assert (row(r, "unit", "U2")["numerator"], row(r, "unit", "U2")["denominator"]) == (1, 1)  # c3
    # Per year (year of the first measurement point): 2021 U1 = c1 ja, c2 vet ikke -> 1/2; 2022 U1 = c7 -> 1/1.
    assert (row(r, "unit", "U1", 2021)["numerator"], row(r, "unit", "U1", 2021)["denominator"]) == (1, 2)
    assert (row(r, "unit", "U1", 2022)["numerator"], row(r, "unit", "U1", 2022)["denominator"]) == (1, 1)
    # Regions: Vest = U1 (2/3), Nord = U2 (1/1).
    assert row(r, "region", "Vest")["denominator"] == 3 and row(r, "region", "Nord")["numerator"] == 1
    ex = dict(zip(r.exclusions["reason"], r.exclusions["n"]))
    assert ex == {
        "in denominator": 4,
        "status missing at first measurement point": 1,
        "first measurement point not active": 1,
        "no measurement point": 1,
    }


def test_crisis_plan_and_benefit_missing_answers_counted(results) -> None:
    # plan_krise: c1 nei, c2 ja, c3 0 (velg verdi = missing), c7 ja -> 2 of 3, 1 missing (c3, U2, 2022).
    nat = row(results["plan_krise"], "national", "Norway")
    assert (nat["numerator"], nat["denominator"], nat["missing"]) == (2, 3, 1)
    # U2's only answer is missing: no U2 row (denominator 0), but the missing answer is counted nationally.
    t = results["plan_krise"].table
    assert not ((t["level"] == "unit") & (t["group"] == "U2")).any()
    # eval_utbytte: c1 4, c2 5, c3 empty (missing), c7 2 -> 2 of 3 answered 4-5, 1 missing.
    nat = row(results["utbytte"], "national", "Norway")
    assert (nat["numerator"], nat["denominator"], nat["missing"]) == (2, 3, 1)
    ex = dict(zip(results["utbytte"].exclusions["reason"], results["utbytte"].exclusions["n"]))
    assert ex["answer missing"] == 1


def test_mutual_agreement_transferred_left_out(results) -> None:
    # Ended: c1 (4), c2 (3), c5 (3), c7 (4) -> 2 of 4; c3 transferred (2) left out; c4, c6 still active.
    r = results["gjensidig"]
    nat = row(r, "national", "Norway")
    assert (nat["numerator"], nat["denominator"]) == (2, 4)
    assert (row(r, "unit", "U1")["numerator"], row(r, "unit", "U1")["denominator"]) == (2, 3)
    assert (row(r, "unit", "U2")["numerator"], row(r, "unit", "U2")["denominator"]) == (0, 1)
    ex = dict(zip(r.exclusions["reason"], r.exclusions["n"]))
    assert ex == {"in denominator": 4, "transferred": 1, "course not ended (active)": 2}
    # Counting transferred courses as ended without mutual agreement: 2 of 5.
    f = mutual_agreement_flags(hand_registry(), transferred="denominator")
    assert (int(f["numerator"].sum()), int(f["denominator"].sum())) == (2, 5)


def test_patient_level_uses_first_measurement_of_earliest_course() -> None:
    # p1: c1 ja; p2: earliest first MP is c2's (vet ikke), c3 is ignored; p3 status missing; p4 not active;
    # p5 no MP; p6 ja -> 2 of 3 patients.
    ind = feedback_indicator("plan_beh_patient", "plan_beh", {2}, "Treatment plan per patient", per="patient")
    res = ind.compute(hand_registry(), n_limit=1)
    nat = row(res, "national", "Norway")
    assert (nat["numerator"], nat["denominator"]) == (2, 3)
    assert res.definition.details["unit of analysis"] == "patient"


def test_opted_out_patients_never_counted() -> None:
    reg = hand_registry()
    reg.patients.loc[reg.patients["patient_id"] == "p1", "reserved"] = True
    # Without p1 (c1, ja): plan_beh 2 of 3.
    nat = row(KVARUS_INDICATORS["plan_beh"].compute(reg, n_limit=1), "national", "Norway")
    assert (nat["numerator"], nat["denominator"]) == (2, 3)


def test_pooling_below_n_limit() -> None:
    # n_limit 2, all years: U1 (denominator 3) shown, U2 (1) pooled with n_units 1; in 2021 U1 has 2 (shown),
    # in 2022 U1 (1) and U2 (1) are pooled: 2 of 2 from 2 units.
    res = KVARUS_INDICATORS["plan_beh"].compute(hand_registry(), n_limit=2)
    pooled = row(res, "pooled", "Pooled units (n < 2)")
    assert (pooled["n_units"], pooled["numerator"], pooled["denominator"]) == (1, 1, 1)
    p22 = row(res, "pooled", "Pooled units (n < 2)", 2022)
    assert (p22["n_units"], p22["numerator"], p22["denominator"]) == (2, 2, 2)
    assert row(res, "national", "Norway")["n_units"] == 2
    assert "pooled" in res.definition.details["small units"]


def test_wilson_and_exact_ci_match_statsmodels(results) -> None:
    t = results["plan_beh"].table
    low, high = proportion_confint(t["numerator"], t["denominator"], alpha=0.05, method="wilson")
    np.testing.assert_allclose(t["ci_low"], low, atol=1e-12)
    np.testing.assert_allclose(t["ci_high"], high, atol=1e-12)
    exact = KVARUS_INDICATORS["plan_beh"].compute(hand_registry(), n_limit=1, ci_method="exact").table
    low, high = proportion_confint(exact["numerator"], exact["denominator"], alpha=0.05, method="beta")
    np.testing.assert_allclose(exact["ci_low"], low, atol=1e-10)
    np.testing.assert_allclose(exact["ci_high"], high, atol=1e-10)


def test_target_levels_from_config(results) -> None:
    # Defaults (domain.md §2): plan_beh 75 % is moderate (60-80), plan_krise 67 % is high (>= 60).
    assert row(results["plan_beh"], "national", "Norway")["target_level"] == "moderate"
    assert row(results["plan_krise"], "national", "Norway")["target_level"] == "high"
    res = kvarus_indicators(hand_registry(), n_limit=1, targets={"plan_beh": {"high": 0.7, "moderate": 0.5}})
    assert row(res["plan_beh"], "national", "Norway")["target_level"] == "high"
    with pytest.raises(AnalysisError, match="plan_beh"):
        load_targets({"plan_beh": {"high": 0.5}})
    with pytest.raises(AnalysisError, match="moderate <= high"):
        Target(high=0.5, moderate=0.7)


def test_definition_states_population_and_registration(results) -> None:
    d = results["plan_beh"].definition
    assert "first measurement point" in d.population and "aktiv" in d.population
    assert d.details["registration used"] == "first measurement point of the course"
    assert "Wilson" in d.details["confidence interval"]
    assert "transferred" in MUTUAL_AGREEMENT.definition().details["note 1"]


def test_new_indicator_in_a_few_lines_and_flag_contract() -> None:
    # Satisfaction is not registered in the hand-made registry: a clear error naming the column.
    sat = Indicator(key="sat", label="Satisfied", flags=lambda reg: first_measurement_flags(reg, "tilfredshet", {4, 5}),
                    population="p", numerator="n", denominator="d", unit_of_analysis="course",
                    registration="first MP")  # fmt: skip
    with pytest.raises(AnalysisError, match="tilfredshet"):
        sat.compute(hand_registry())
    bad = Indicator(key="bad", label="bad", population="p", numerator="n", denominator="d",
                    unit_of_analysis="course", registration="r",
                    flags=lambda reg: pd.DataFrame({"unit_id": [1], "date": [pd.Timestamp("2021-01-01")],
                                                    "denominator": [False], "numerator": [True],
                                                    "exclusion": ["x"]}))  # fmt: skip
    with pytest.raises(AnalysisError, match="numerator but not the denominator"):
        bad.compute(hand_registry())


def test_every_unit_pooled_with_the_default_n_limit() -> None:
    # With Ngrense 10 both units (denominators 3 and 1) are pooled: one pooled row of 2 units, 3 of 4.
    res = KVARUS_INDICATORS["plan_beh"].compute(hand_registry())
    every = res.for_year(None)
    assert every["level"].tolist() == ["pooled", "region", "region", "national"]
    assert every["unit_id"].isna().all()
    pooled = every.iloc[0]
    assert (pooled["n_units"], pooled["numerator"], pooled["denominator"]) == (2, 3, 4)
