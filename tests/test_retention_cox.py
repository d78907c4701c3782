"""Cause-specific Cox models: cross-checked against statsmodels PHReg and lifelines, and recovering the
synthetic registry's true dropout hazard ratios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines.statistics import proportional_hazard_test
from statsmodels.duration.hazard_regression import PHReg

import kvarus_research as kr
from kvarus_research.errors import AnalysisError
from kvarus_research.retention import cox, time_to_event


@pytest.fixture(scope="module")
def reg() -> kr.Registry:
    return kr.synthetic.generate(n_courses=20000, seed=1)


@pytest.fixture(scope="module")
def tte(reg: kr.Registry):  # noqa: ANN201
    return time_to_event(reg)


def test_dropout_hazard_ratios_cover_the_truth(reg: kr.Registry, tte) -> None:  # noqa: ANN001
    res = cox(
        tte,
        covariates=["latent_severity", "age_at_start", "setting"],
        scale={"age_at_start": 10},
        reference={"setting": "outpatient"},
    )
    truth = reg.truth["ending_hazards"]["log_hr"]["interrupted"]
    t = res.table.set_index("term")
    for term, key in (
        ("latent_severity", "severity"),
        ("age_at_start", "age10"),
        ("setting=inpatient", "inpatient"),
    ):
        true_hr = np.exp(truth[key])
        assert np.sign(t.loc[term, "log_hr"]) == np.sign(truth[key])
        assert t.loc[term, "ci_lower"] < true_hr < t.loc[term, "ci_upper"], (
            term,
            t.loc[term].to_dict(),
            true_hr,
        )
    assert t.loc["age_at_start", "label"] == "Age at course start (per 10 years)"
    assert t.loc["setting=inpatient", "label"] == "Setting: inpatient (vs outpatient)"
    # the PH test is reported with the result: the data are generated with proportional hazards
    assert (t["ph_p_value"] > 0.001).all()
    assert res.definition.details["event"] == "dropout (interrupted)"
    assert t.loc["setting=inpatient", "n_events"] == int(
        ((tte.table["setting"] == "inpatient") & (tte.table["cause"] == "dropout")).sum()
    )


def test_matches_statsmodels_phreg_and_lifelines_ph_test(tte) -> None:  # noqa: ANN001
    sub = tte.table.iloc[:6000].reset_index(drop=True)
    from kvarus_research.retention.data import TimeToEvent

    small = TimeToEvent(
        sub, tte.exclusions, tte.dropout, tte.causes, tte.extract_date, tte.time_unit, tte.codebook, len(sub)
    )
    res = cox(
        small,
        covariates=["latent_severity", "age_at_start", "setting"],
        scale={"age_at_start": 10},
        reference={"setting": "outpatient"},
        event="mutual_agreement",
    )
    x = np.column_stack([sub["latent_severity"], sub["age_at_start"] / 10, (sub["setting"] == "inpatient")])
    status = (sub["ending_type"] == "mutual_agreement").astype(int).to_numpy()
    dur = np.maximum(sub["duration"].to_numpy(), 0.5)
    sm = PHReg(dur, x.astype(float), status=status, ties="efron").fit()
    np.testing.assert_allclose(res.table["log_hr"], sm.params, rtol=1e-5)
    np.testing.assert_allclose(res.table["se"], sm.bse, rtol=1e-4)
    direct = proportional_hazard_test(res.model, _model_frame(sub, status, x), time_transform="rank").summary
    direct = direct.reindex(res.table["term"])
    np.testing.assert_allclose(res.table["ph_statistic"], direct["test_statistic"], rtol=1e-6)
    np.testing.assert_allclose(res.table["ph_p_value"], direct["p"], rtol=1e-6)


def _model_frame(sub: pd.DataFrame, status: np.ndarray, x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "latent_severity": x[:, 0],
            "age_at_start": x[:, 1],
            "setting=inpatient": x[:, 2],
            "_duration": np.maximum(sub["duration"].to_numpy(), 0.5),
            "_event": status,
        }
    )


def test_codebook_labels_and_counted_exclusions(tte) -> None:  # noqa: ANN001
    res = cox(
        tte, covariates=["hovedrusmiddel", "age_group"], event=("interrupted", "transferred"), ph_test=False
    )
    labels = res.table["label"].tolist()
    assert "Main substance: Opioids (vs Alcohol)" in labels
    # age_group is ordered (<25, 25–34, ...): its first category is the reference
    assert "Age group: 25–34 (vs <25)" in labels
    n_missing = int(tte.table["hovedrusmiddel"].isna().sum())
    assert n_missing > 0  # courses without a baseline registration
    assert res.exclusions.set_index("reason").loc["missing Main substance", "n"] == n_missing
    assert f"{len(tte.table) - n_missing} courses" in res.definition.population
    assert res.definition.details["event"] == "interrupted or transferred"


def test_refuses_too_few_events_and_unknown_events() -> None:
    c = pd.DataFrame(
        {
            "start_date": pd.Timestamp("2021-01-01"),
            "end_date": pd.Timestamp("2021-02-01"),
            "ending_type": ["interrupted"] * 5 + ["mutual_agreement"] * 5,
            "x": np.arange(10.0),
        }
    )
    with pytest.raises(AnalysisError, match="10 events per term"):
        cox(c, covariates=["x"], extract_date="2022-01-01")
    with pytest.raises(AnalysisError, match="neither 'dropout'"):
        cox(c, covariates=["x"], extract_date="2022-01-01", event="brudd")
