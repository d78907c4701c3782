"""Longitudinal models: EMMs equal the observed means on balanced complete data (closed form), and fixed
effects, EMMs and CIs agree with statsmodels MixedLM / GEE fitted directly by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from kvarus_research.errors import AnalysisError
from kvarus_research.outcomes import longitudinal

TPS = ["baseline", "MP1", "ending", "followup"]


def panel(n: int = 150, seed: int = 1, drop: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cid = np.repeat(np.arange(n), 4)
    order = np.tile(np.arange(4), n)
    days = np.tile([0, 90, 200, 565], n) + rng.integers(0, 20, 4 * n) * (order > 0)
    age = np.repeat(rng.normal(35, 10, n), 4)
    main = np.repeat(rng.integers(1, 4, n), 4)
    u = np.repeat(rng.normal(0, 3, n), 4)
    slope = np.repeat(rng.normal(0, 1.5, n), 4)
    y = 18 + u - 3 * (order > 0) - 2 * (order > 1) + 0.05 * (age - 35) + 1.0 * (main == 3)
    y = y + slope * days / 365.25 + rng.normal(0, 2, 4 * n)
    df = pd.DataFrame(
        {"course_id": cid, "timepoint": np.array(TPS)[order], "timepoint_order": order, "days_since_start": days,
         "dager_rus_30": y, "age": age, "hovedrusmiddel": main}
    )  # fmt: skip
    if drop:
        df.loc[(order > 0) & (rng.uniform(size=4 * n) < drop), "dager_rus_30"] = np.nan
    return df


def test_balanced_emms_equal_observed_means() -> None:
    # Balanced, complete data, time as category, no covariates: the GLS estimate under compound symmetry is
    # OLS, so each EMM is exactly the observed mean at that timepoint (and diff = difference of means).
    df = panel()
    means = df.groupby("timepoint")["dager_rus_30"].mean().reindex(TPS)
    for method in ("mixed", "gee"):
        res = longitudinal(df, "dager_rus_30", method=method)
        assert res.table["timepoint"].tolist() == TPS
        np.testing.assert_allclose(res.table["emm"], means.to_numpy(), rtol=1e-6)
        np.testing.assert_allclose(
            res.table["diff"], (means - means.iloc[0]).to_numpy(), rtol=1e-6, atol=1e-8
        )
        assert res.table["n_obs"].tolist() == [150] * 4


def test_mixed_matches_statsmodels_by_hand() -> None:
    df = panel(drop=0.25)
    res = longitudinal(df, "dager_rus_30", covariates=["age"])
    d = df.dropna(subset=["dager_rus_30"]).copy()
    d["tp"] = pd.Categorical(d["timepoint"], categories=TPS)
    direct = smf.mixedlm("dager_rus_30 ~ C(tp) + age", d, groups=d["course_id"]).fit(reml=True)
    np.testing.assert_allclose(res.model.fe_params.to_numpy(), direct.fe_params.to_numpy(), rtol=1e-4)
    # EMM at ending = intercept + beta_ending + beta_age * mean(age over analysed observations)
    b = direct.fe_params
    emm = b["Intercept"] + b["C(tp)[T.ending]"] + b["age"] * d["age"].mean()
    row = res.table.set_index("timepoint").loc["ending"]
    assert row["emm"] == pytest.approx(emm, rel=1e-4)
    # its SE from L V L' with the direct fit's covariance
    L = np.array([1, 0, 1, 0, d["age"].mean()])
    V = direct.cov_params().loc[b.index, b.index].to_numpy()
    assert row["se"] == pytest.approx(np.sqrt(L @ V @ L), rel=1e-3)
    assert row["diff"] == pytest.approx(b["C(tp)[T.ending]"], rel=1e-4)
    assert res.exclusions["observations_missing_outcome"] == int(df["dager_rus_30"].isna().sum())
    assert "age" in res.coefficients["term"].tolist()


def test_gee_and_categorical_covariate_match_statsmodels() -> None:
    df = panel(drop=0.2, seed=4)
    res = longitudinal(df, "dager_rus_30", method="gee", covariates=["hovedrusmiddel"])
    d = df.dropna(subset=["dager_rus_30"]).copy()
    d["tp"] = pd.Categorical(d["timepoint"], categories=TPS)
    direct = smf.gee(
        "dager_rus_30 ~ C(tp) + C(hovedrusmiddel)",
        groups="course_id",
        data=d,
        cov_struct=sm.cov_struct.Exchangeable(),
    ).fit()
    np.testing.assert_allclose(res.model.params.to_numpy(), direct.params.to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(res.model.bse.to_numpy(), direct.bse.to_numpy(), rtol=1e-5)
    # EMM at baseline: intercept + the category dummies at their observed shares
    b = direct.params
    share = d["hovedrusmiddel"].value_counts(normalize=True)
    emm0 = b["Intercept"] + b["C(hovedrusmiddel)[T.2]"] * share[2] + b["C(hovedrusmiddel)[T.3]"] * share[3]
    assert res.table["emm"].iloc[0] == pytest.approx(emm0, rel=1e-6)
    assert "hovedrusmiddel[T.2]" in " ".join(res.coefficients["term"]) or any(
        "C(hovedrusmiddel)" in t for t in res.coefficients["term"]
    )


@pytest.mark.filterwarnings("ignore:The MLE may be on the boundary")
def test_continuous_time_random_slope_matches_statsmodels(artifacts) -> None:
    df = panel(n=120, seed=2)
    res = longitudinal(df, "dager_rus_30", time="continuous", random_slope=True)  # time in months by default
    d = df.assign(t=df["days_since_start"] / (365.25 / 12))
    direct = smf.mixedlm("dager_rus_30 ~ t", d, groups=d["course_id"], re_formula="~t").fit(
        reml=True, method=["lbfgs"]
    )
    np.testing.assert_allclose(res.model.fe_params.to_numpy(), direct.fe_params.to_numpy(), rtol=1e-3)
    assert res.definition.details["time unit"] == "months"
    # the EMM at each timepoint is intercept + slope * mean months at that timepoint
    mean_t = d.groupby("timepoint")["t"].mean().reindex(TPS).to_numpy()
    expected = direct.fe_params["Intercept"] + direct.fe_params["t"] * mean_t
    np.testing.assert_allclose(res.table["emm"], expected, rtol=1e-3)
    # individual trajectories are row-level data: not drawn, with a warning (only the EMM line and its points)
    with pytest.warns(UserWarning, match="row-level"):
        ax = res.plot(spaghetti=20)
    assert len(ax.lines) < 20
    ax.figure.savefig(artifacts / "outcomes_trajectory_continuous.png")


def test_trajectory_plot_numbers(artifacts) -> None:
    res = longitudinal(panel(drop=0.3), "dager_rus_30", covariates=["age"])
    ax = res.plot()
    # the EMM points are the errorbar's data line (marker "o"), read from the protected table (none hidden here)
    emm_line = next(line for line in ax.lines if line.get_marker() == "o")
    shown = res.protected().table["emm"].astype(float).to_numpy()
    np.testing.assert_allclose(np.asarray(emm_line.get_ydata(), float), shown)
    np.testing.assert_allclose(shown, res.table["emm"].to_numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == TPS
    assert ax.get_ylabel() == "Days of substance use in the last 30 days"
    ax.figure.savefig(artifacts / "outcomes_trajectory_category.png")


def test_errors_and_missing_covariates() -> None:
    df = panel(n=30)
    df.loc[df["course_id"] < 3, "age"] = np.nan
    res = longitudinal(df, "dager_rus_30", covariates=["age"], method="gee")
    assert res.exclusions["courses_missing_covariate"] == 3
    assert res.exclusions["observations_missing_covariate"] == 12
    with pytest.raises(AnalysisError, match="time must be"):
        longitudinal(df, "dager_rus_30", time="spline")
    with pytest.raises(AnalysisError, match="neither a column"):
        longitudinal(df, "dager_rus_30", covariates=["income"])


@pytest.mark.parametrize("reml", [True, False])
def test_vectorised_start_is_the_statsmodels_optimum(reml) -> None:
    # The fast profile-likelihood search must land where statsmodels' own optimiser (default start) ends:
    # same variance ratio cov_re / scale and the same fixed effects.
    from kvarus_research.outcomes.longitudinal import _start_params

    d = panel(n=200, seed=8, drop=0.3).dropna(subset=["dager_rus_30"])
    model = smf.mixedlm("dager_rus_30 ~ C(timepoint) + age", d, groups=d["course_id"])
    direct = model.fit(reml=reml)
    start = _start_params(model, d["course_id"].to_numpy(), reml)
    assert start.cov_re[0, 0] == pytest.approx(direct.cov_re.iloc[0, 0] / direct.scale, rel=1e-3)
    np.testing.assert_allclose(start.fe_params, direct.fe_params.to_numpy(), rtol=1e-4)


@pytest.mark.slow
def test_synthetic_trajectory(artifacts) -> None:
    import kvarus_research as kr
    from kvarus_research.cohort import align_timepoints

    reg = kr.synthetic.generate(n_courses=3000, seed=3)
    tp = align_timepoints(reg, baseline="registration")
    res = longitudinal(tp, "dager_rus_30", timepoints=["baseline", "MP1", "MP2", "ending"], covariates=["age_at_start"],
                       courses=reg.courses)  # fmt: skip
    # the synthetic courses improve on average (truth: mean latent change to ending < 0): the model's
    # baseline -> ending difference must be negative with its whole CI
    assert reg.truth["change"]["dager_rus_30"]["baseline_to_ending"] < 0
    assert res.table.set_index("timepoint").loc["ending", "diff_ci_high"] < 0
    ax = res.plot()
    ax.figure.savefig(artifacts / "outcomes_trajectory_synthetic.png")


@pytest.mark.filterwarnings("ignore:The MLE may be on the boundary")
def test_hessian_ses_and_normal_intervals_on_request() -> None:
    df = panel(n=150, seed=6, drop=0.3)
    d = df.dropna(subset=["dager_rus_30"]).assign(t=lambda x: x["days_since_start"] / 365.25)
    direct = smf.mixedlm("dager_rus_30 ~ t", d, groups=d["course_id"], re_formula="~t").fit(
        reml=True, method=["lbfgs"]
    )
    res = longitudinal(df, "dager_rus_30", time="continuous", random_slope=True, time_unit="years", se="hessian",
                       ddf="normal")  # fmt: skip
    coefs = res.coefficients.set_index("term")
    # statsmodels' own bse is the full-Hessian SE; normal intervals have infinite df and the z quantile
    np.testing.assert_allclose(coefs["se"].to_numpy(), direct.bse[["Intercept", "t"]].to_numpy(), rtol=1e-3)
    assert np.isinf(coefs["df"]).all()
    np.testing.assert_allclose(
        coefs["ci_high"] - coefs["estimate"], 1.959963984540054 * coefs["se"], rtol=1e-12
    )
    with pytest.raises(AnalysisError, match="time_unit"):
        longitudinal(df, "dager_rus_30", time="continuous", time_unit="fortnights")
    # ML fits get normal intervals by default; Satterthwaite is asked for REML only
    assert np.isinf(longitudinal(df, "dager_rus_30", reml=False).coefficients["df"]).all()
    with pytest.raises(AnalysisError, match="REML"):
        longitudinal(df, "dager_rus_30", reml=False, ddf="satterthwaite")
