"""The synthetic registry: determinism, structure, distributions in their stated ranges, and the ground truth.

One registry of 20,000 courses (seed 7) is shared by the module; the truth is checked against the tables and, for
the ending hazards, against lifelines fitted independently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import yaml

import kvarus_research as kr
from kvarus_research.synthetic import params as P

N = 20_000


@pytest.fixture(scope="module")
def reg() -> kr.Registry:
    return kr.synthetic.generate(N, seed=7)


@pytest.fixture(scope="module")
def clean(reg: kr.Registry) -> kr.Registry:
    return reg.without_opt_outs()


def test_same_seed_same_registry_and_different_seed_differs() -> None:
    a = kr.synthetic.generate(1500, seed=11)
    b = kr.synthetic.generate(1500, seed=11)
    c = kr.synthetic.generate(1500, seed=12)
    for name in ("patients", "courses", "registrations", "units", "network_work", "coverage"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.truth == b.truth
    assert not a.registrations["patient_id"].isin(c.registrations["patient_id"]).any()
    assert not np.array_equal(a.courses["start_date"].to_numpy(), c.courses["start_date"].to_numpy())


def test_exact_course_count_valid_course_model_and_status_codes(reg: kr.Registry) -> None:
    assert reg.n_courses == N and reg.courses["course_id"].is_unique
    reg.validate()
    regs = reg.registrations
    status = regs["status"]
    assert status[regs["kind"] == "baseline"].isna().all()
    assert set(status[regs["kind"] == "measurement"]) == {1}
    assert set(status[regs["kind"] == "ending"]) == {2, 3, 4}
    assert set(status[regs["kind"] == "followup"]) == {5, 6, 7}
    assert regs["registration_id"].is_unique
    # 20 TSB units in the four health regions, plus the two acute-psychiatry (network-work) units
    tsb = reg.units[~reg.units["acute_psychiatry"]]
    assert len(tsb) == 20 and tsb["region"].value_counts().to_dict() == dict.fromkeys(P.REGIONS, 5)
    assert set(tsb["setting"]) == {"inpatient", "outpatient"}
    assert tsb["unit_name"].is_unique


def test_values_follow_the_codebook(reg: kr.Registry) -> None:
    cb = reg.codebook
    regs = reg.registrations
    for var in cb.data_variables():
        if var.name not in regs.columns:
            continue
        vals = regs[var.name].dropna()
        if var.codes:
            assert set(vals.astype(int)) <= set(var.valid_codes), var.name
        if var.range:
            assert vals.min() >= var.range[0] and vals.max() <= var.range[1], var.name
    # item non-response "a few %": dager_rus_30 missing on answered baseline forms
    base = regs[regs["kind"] == "baseline"]
    assert 0.01 < base["dager_rus_30"].isna().mean() < 0.06
    assert reg.registrations["hovedrusmiddel"][regs["kind"] != "baseline"].isna().all()  # baseline-form item


def test_opt_outs_are_about_five_percent_and_kept_apart(reg: kr.Registry, clean: kr.Registry) -> None:
    share = reg.patients["reserved"].mean()
    assert 0.03 <= share <= 0.07
    reserved = reg.reserved_patients()
    n_courses_reserved = int(reg.courses["patient_id"].isin(reserved).sum())
    assert n_courses_reserved > 0 and reg.registrations["patient_id"].isin(reserved).any()
    assert clean.n_courses == N - n_courses_reserved
    assert int(reg.coverage["reserved_courses"].sum()) == n_courses_reserved


def test_repeat_courses_do_not_overlap_and_ages_agree(reg: kr.Registry) -> None:
    c = reg.courses.sort_values(["patient_id", "start_date"])
    per_patient = c.groupby("patient_id").size()
    assert 0.05 < (per_patient > 1).mean() < 0.3
    same = c["patient_id"].to_numpy()[1:] == c["patient_id"].to_numpy()[:-1]
    prev_end = c["end_date"].to_numpy()[:-1][same]
    next_start = c["start_date"].to_numpy()[1:][same]
    assert not pd.isna(prev_end).any()  # a course followed by another has ended
    assert (next_start > prev_end).all()
    age_step = c["age_at_start"].to_numpy()[1:][same] - c["age_at_start"].to_numpy()[:-1][same]
    years = (next_start - c["start_date"].to_numpy()[:-1][same]) / np.timedelta64(1, "D") / 365.25
    assert (np.abs(age_step - years) <= 1.0).all()


def test_volume_grows_and_inpatient_courses_may_start_with_a_measurement_point(reg: kr.Registry) -> None:
    years = reg.courses["start_date"].dt.year.value_counts()
    # density 1 + 2x over six years: first year share (1/6 + 1/36)/2 = 0.097, last (1/6 + 11/36)/2 = 0.236
    assert years[2020] / N == pytest.approx(0.097, abs=0.01)
    assert years[2025] / N == pytest.approx(0.236, abs=0.015)
    first = reg.registrations.drop_duplicates("course_id")  # sorted by course, date, kind
    view = first.merge(reg.units[["unit_id", "setting"]], on="unit_id")
    share_mp_first = (view["kind"] == "measurement").groupby(view["setting"]).mean()
    assert share_mp_first["inpatient"] == pytest.approx(1 - P.BASELINE_SHARE["inpatient"], abs=0.03)
    assert share_mp_first["outpatient"] == pytest.approx(1 - P.BASELINE_SHARE["outpatient"], abs=0.02)


def test_measurement_points_follow_pathway_intervals(reg: kr.Registry) -> None:
    mp = reg.registrations[reg.registrations["kind"] == "measurement"][["course_id", "unit_id", "date"]]
    gaps = mp.groupby("course_id")["date"].diff().dt.days.dropna()
    setting = mp.loc[gaps.index, "unit_id"].map(reg.units.set_index("unit_id")["setting"])
    # due every U(35, 49) days inpatient and U(42, 84) outpatient, minus up to 7 days of jitter, 80 % registered:
    # the typical gap between registered points lies within the interval
    med = gaps.groupby(setting).median()
    assert 35 <= med["inpatient"] <= 49 and 42 <= med["outpatient"] <= 84


def test_endings_and_followup_distribution(reg: kr.Registry) -> None:
    c = reg.courses
    assert set(c["ending_type"]) == {"mutual_agreement", "interrupted", "transferred", "active"}
    due = c[~c["followup_status"].isin(["not_yet_due", "no_ending"])]
    reached = (due["followup_status"] == "reached").mean()
    assert 0.40 <= reached <= 0.60
    assert {"not_reached", "declined", "not_registered"} <= set(due["followup_status"])
    # courses ending within the last year before the extract date have no follow-up yet
    recent = c[c["end_date"] > reg.extract_date - pd.Timedelta(days=365)]
    assert len(recent) > 0 and (recent["followup_status"] == "not_yet_due").all()
    assert recent["followup_date"].isna().all()


def test_truth_is_yaml_serialisable_and_documents_every_outcome(reg: kr.Registry) -> None:
    back = yaml.safe_load(yaml.safe_dump(reg.truth, allow_unicode=True))
    assert back == reg.truth
    assert set(reg.truth["change"]) == set(reg.codebook.outcomes())
    assert reg.truth["ending_hazards"]["log_hr"] == P.ENDING_LOG_HR


def test_every_outcome_improves_on_average_but_some_patients_worsen(reg: kr.Registry) -> None:
    for name, outcome in reg.codebook.outcomes().items():
        t = reg.truth["change"][name]
        assert outcome.sign * t["baseline_to_ending"] > 0, name
        assert outcome.sign * t["baseline_to_followup"] > 0, name
    c = reg.courses.dropna(subset=["latent_dager_rus_30_ending"])
    worse = (c["latent_dager_rus_30_ending"] > c["latent_dager_rus_30_baseline"]).mean()
    assert 0.1 < worse < 0.4
    for name, t in reg.truth["categorical"].items():  # the worst state gets rarer from baseline to ending
        assert t["share_ending"] < t["share_baseline_ended"], name


def test_truth_equals_the_mean_of_the_latent_values_in_the_tables(
    reg: kr.Registry, clean: kr.Registry
) -> None:
    c = clean.courses
    for name in reg.codebook.outcomes():
        ended = c.dropna(subset=[f"latent_{name}_ending"])
        assert len(ended) == reg.truth["change"][name]["n_ending"]
        mean_end = (ended[f"latent_{name}_ending"] - ended[f"latent_{name}_baseline"]).mean()
        assert mean_end == pytest.approx(reg.truth["change"][name]["baseline_to_ending"], abs=1e-6)
        due = c.dropna(subset=[f"latent_{name}_followup"])
        assert len(due) == reg.truth["change"][name]["n_followup"]
        assert (~due["followup_status"].isin(["not_yet_due", "no_ending"])).all()
        mean_fu = (due[f"latent_{name}_followup"] - due[f"latent_{name}_baseline"]).mean()
        assert mean_fu == pytest.approx(reg.truth["change"][name]["baseline_to_followup"], abs=1e-6)


def test_registered_values_are_the_latent_values(reg: kr.Registry) -> None:
    regs = reg.registrations.merge(reg.courses, on=["course_id", "patient_id", "unit_id"])
    for kind, tp in (("baseline", "baseline"), ("ending", "ending"), ("followup", "followup")):
        rows = regs[regs["kind"] == kind].dropna(subset=["dager_rus_30", "psykiske_plager"])
        assert len(rows) > 1000
        np.testing.assert_allclose(rows["dager_rus_30"].astype(float), rows[f"latent_dager_rus_30_{tp}"])
        np.testing.assert_allclose(
            rows["psykiske_plager"].astype(float), rows[f"latent_psykiske_plager_{tp}"]
        )


def test_complete_case_followup_is_optimistic_because_better_patients_respond(clean: kr.Registry) -> None:
    t = clean.truth["change"]["dager_rus_30"]
    # complete case from the registrations: baseline and reached follow-up values both registered
    regs = clean.registrations
    base = regs[regs["kind"] == "baseline"].set_index("course_id")["dager_rus_30"].astype(float)
    fu = regs[(regs["kind"] == "followup") & (regs["status"] == 5)].set_index("course_id")["dager_rus_30"]
    cc = (fu.astype(float) - base.reindex(fu.index)).dropna()
    assert len(cc) == t["n_complete_case"]
    assert cc.mean() == pytest.approx(t["complete_case_followup"], abs=1e-6)
    assert cc.mean() < t["baseline_to_followup"] - 0.3  # fewer days of use among respondents: biased
    # response depends on the latent improvement: logistic regression (statsmodels) has a positive slope
    c = clean.courses
    reg_fu = c[c["followup_status"].isin(["reached", "not_reached", "declined"])]
    improvement = reg_fu["latent_dager_rus_30_baseline"] - reg_fu["latent_dager_rus_30_followup"]
    fit = sm.Logit((reg_fu["followup_status"] == "reached").astype(float), sm.add_constant(improvement)).fit(
        disp=0
    )
    assert fit.params.iloc[1] > 0 and fit.pvalues.iloc[1] < 1e-6


def test_true_ending_hazard_ratios_are_recovered_by_lifelines(clean: kr.Registry) -> None:
    lifelines = pytest.importorskip("lifelines")
    c = clean.courses.merge(clean.units[["unit_id", "setting"]], on="unit_id")
    end = c["end_date"].fillna(clean.extract_date)
    df = pd.DataFrame(
        {
            "T": (end - c["start_date"]).dt.days.clip(lower=1),
            "severity": c["latent_severity"],
            "age10": (c["age_at_start"] - 35) / 10,
            "inpatient": (c["setting"] == "inpatient").astype(float),
        }
    )
    for cause in ("mutual_agreement", "interrupted"):
        df["E"] = (c["ending_type"] == cause).astype(int)
        fit = lifelines.CoxPHFitter().fit(df, duration_col="T", event_col="E")
        truth = clean.truth["ending_hazards"]["log_hr"][cause]
        for cov in ("severity", "age10", "inpatient"):
            est, se = fit.params_[cov], fit.standard_errors_[cov]
            assert abs(est - truth[cov]) < max(4 * se, 0.05), (cause, cov, est, truth[cov])


def test_unit_plan_shares_span_the_indicator_bands(reg: kr.Registry) -> None:
    mp = reg.registrations[reg.registrations["kind"] == "measurement"]
    shares = (mp["plan_beh"].dropna() == 2).groupby(mp["unit_id"]).mean()
    assert (shares >= 0.8).any() and ((shares >= 0.6) & (shares < 0.8)).any() and (shares < 0.6).any()
    crisis = (mp["plan_krise"].dropna() == 2).groupby(mp["unit_id"]).mean()  # bands 60 / 40 %
    assert (crisis >= 0.6).any() and ((crisis >= 0.4) & (crisis < 0.6)).any() and (crisis < 0.4).any()
    benefit = mp["eval_utbytte"].dropna().isin([4, 5]).groupby(mp["unit_id"]).mean()
    assert (benefit >= 0.8).any() and ((benefit >= 0.6) & (benefit < 0.8)).any() and (benefit < 0.6).any()
    counts = mp["plan_beh"].dropna().groupby(mp["unit_id"]).size()
    for unit_id, share in shares.items():  # each unit's share within 4 binomial SEs of its true probability
        p = reg.truth["units"][int(unit_id)]["p_plan_beh"]
        assert abs(share - p) < 4 * np.sqrt(p * (1 - p) / counts[unit_id]) + 1e-9


def test_coverage_grows_over_time(reg: kr.Registry) -> None:
    cov = reg.coverage.merge(
        reg.courses.assign(year=reg.courses["start_date"].dt.year)
        .groupby(["unit_id", "year"])
        .size()
        .rename("n"),
        on=["unit_id", "year"],
        how="left",
    ).fillna({"n": 0})
    national = cov.groupby("year")["n"].sum() / cov.groupby("year")["expected_courses"].sum()
    assert national.is_monotonic_increasing
    # expected = ceil(registered / (rate * U(0.97, 1.03))) with rate 0.45 in 2020 and 0.85 in 2025
    assert national[2020] == pytest.approx(0.45, abs=0.04) and national[2025] == pytest.approx(0.85, abs=0.05)


def test_network_work_echoes_the_poster(reg: kr.Registry) -> None:
    nw = reg.network_work.merge(reg.units[["unit_id", "unit_name"]], on="unit_id")
    amb = nw[nw["unit_name"].str.startswith("Ambulant")]
    ward = nw[nw["unit_name"].str.startswith("Akuttpost")]
    assert len(amb) + len(ward) == len(nw) == round(P.NETWORK_CASES_PER_COURSE * N)
    met_amb, met_ward = (amb["nettverksmote"] == 2).mean(), (ward["nettverksmote"] == 2).mean()
    assert met_amb >= 0.95 and met_ward == pytest.approx(0.66, abs=0.05)  # poster: ~100 % vs 66 %
    m_amb, m_ward = amb[amb["nettverksmote"] == 2], ward[ward["nettverksmote"] == 2]
    assert m_amb["deltok_familie"].mean() > m_ward["deltok_familie"].mean()
    assert m_amb["deltok_fastlege"].mean() > m_ward["deltok_fastlege"].mean()
    assert m_ward["deltok_kommune"].mean() > m_amb["deltok_kommune"].mean()
    assert (m_amb["mote_sted"] == 2).mean() > (m_ward["mote_sted"] == 2).mean()  # outside hospital
    no_meeting = nw[nw["nettverksmote"] == 1]
    assert (
        no_meeting["ikke_invitert_grunn"].notna().all()
        and nw.loc[nw["nettverksmote"] == 2, "ikke_invitert_grunn"].isna().all()
    )


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(kr.KvarusError, match="n_courses must be at least 1, got 0"):
        kr.synthetic.generate(0)
    with pytest.raises(kr.KvarusError, match="opt_out_share must lie in"):
        kr.synthetic.generate(10, opt_out_share=1.0)
    with pytest.raises(kr.KvarusError, match="need start <= end < extract_date"):
        kr.synthetic.generate(10, end="2026-01-01", extract_date="2025-01-01")


def test_a_built_in_unit_effect_shifts_the_log_odds_of_mutual_agreement_by_its_value() -> None:
    reg = kr.synthetic.generate(20000, seed=5, unit_effects={2: 1.0, 9: -1.0})
    ids = reg.units["unit_id"].iloc[[2, 9]].tolist()
    assert reg.truth["unit_effects"]["log_odds_shift"] == {ids[0]: 1.0, ids[1]: -1.0}
    assert reg.meta["unit_effects"] == [{"position": 2, "log_hr": 1.0}, {"position": 9, "log_hr": -1.0}]
    assert reg.truth["units"][ids[0]]["mutual_agreement_log_hr"] == 1.0
    assert reg.truth["units"][int(reg.units["unit_id"].iloc[0])]["mutual_agreement_log_hr"] == 0.0
    c = reg.courses[reg.courses["ending_type"].isin(["mutual_agreement", "interrupted"])]
    inpatient = c["unit_id"].map(reg.units.set_index("unit_id")["setting"]).eq("inpatient").astype(float)
    x = pd.DataFrame({"const": 1.0, "severity": c["latent_severity"], "age10": (c["age_at_start"] - 35) / 10,
                      "inpatient": inpatient, "u2": c["unit_id"].eq(ids[0]).astype(float),
                      "u9": c["unit_id"].eq(ids[1]).astype(float)})  # fmt: skip
    fit = sm.GLM(
        c["ending_type"].eq("mutual_agreement").astype(float), x, family=sm.families.Binomial()
    ).fit()
    hr = P.ENDING_LOG_HR
    # P(mutual | ended mutual or interrupted) = h_m / (h_m + h_i): logistic, the differences of the log hazards
    truth = {
        "const": np.log(P.ENDING_BASE_HAZARD["mutual_agreement"] / P.ENDING_BASE_HAZARD["interrupted"]),
        **{k: hr["mutual_agreement"][k] - hr["interrupted"][k] for k in ("severity", "age10", "inpatient")},
        "u2": 1.0,
        "u9": -1.0,
    }
    for name, value in truth.items():
        assert abs(fit.params[name] - value) < 3.5 * fit.bse[name], (name, fit.params[name], value)


def test_unit_effects_off_leave_the_registry_unchanged_and_bad_keys_are_refused() -> None:
    a = kr.synthetic.generate(800, seed=3)
    b = kr.synthetic.generate(800, seed=3, unit_effects=None)
    c = kr.synthetic.generate(800, seed=3, unit_effects={1: 0.8})
    for name in ("patients", "courses", "registrations", "units", "network_work", "coverage"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.truth == b.truth and "unit_effects" not in a.truth and a.meta == b.meta
    assert c.units.equals(a.units)  # the units are drawn before the effect acts
    assert not c.courses["ending_type"].equals(a.courses["ending_type"])
    with pytest.raises(kr.KvarusError, match="unit positions 0..19"):
        kr.synthetic.generate(10, unit_effects={20: 1.0})
