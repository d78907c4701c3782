"""Mixed-model fixed effects and their model-based SEs against R's lme4 on the sleepstudy data (REML).

Data: ``tests/data/sleepstudy.csv``, exported from lme4 with
``write.csv(sleepstudy[, c("Reaction", "Days", "Subject")], "sleepstudy.csv", row.names = FALSE)``
(Belenky et al. 2003; 18 subjects x 10 days). Reference values: R 4.2.2 Patched (2022-11-10 r83330),
lme4 1.1.31, ``coef(summary(m))`` with ``options(digits = 15)`` for

- ``m1 <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy, REML = TRUE)``
- ``m2 <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = TRUE)``

and Satterthwaite df from lmerTest 3.1.3 (same R and lme4), ``coef(summary(m, ddf = "Satterthwaite"))[, "df"]``
with ``m1``, ``m2`` fitted by ``lmerTest::lmer``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kvarus_research.outcomes import longitudinal

LME4 = {
    # (estimate, std. error) of (Intercept) and Days; sigma; variance components
    "intercept": {
        "fixef": [(251.405104848484, 9.74671626920939), (10.467285959596, 0.80422142894524)],
        "sigma": 30.9912338986441,
        "vc": {"intercept": 1378.178513809047},
        "df": [22.8101989552553, 161.0000000545923],
    },
    "slope": {
        "fixef": [(251.405104848485, 6.82459669495491), (10.467285959596, 1.54578964390598)],
        "sigma": 25.5917957216753,
        "vc": {"intercept": 612.10015802476880, "slope": 35.07171445093885, "cov": 9.60440895115776},
        "df": [16.9997262884927, 16.9999837255917],
    },
}


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    d = pd.read_csv(Path(__file__).parent / "data" / "sleepstudy.csv")
    assert d.shape == (180, 3) and d["Subject"].nunique() == 18
    # as the timepoint long format: one timepoint per day, days since start = Days, the outcome under a
    # codebook name (the model does not look at its meaning)
    return pd.DataFrame({"course_id": d["Subject"], "timepoint": "day" + d["Days"].astype(str),
                         "timepoint_order": d["Days"], "days_since_start": d["Days"],
                         "dager_rus_30": d["Reaction"]})  # fmt: skip


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("model", ["intercept", "slope"])
def test_fixed_effects_and_model_based_se_equal_lme4(sleep, model) -> None:
    res = longitudinal(
        sleep, "dager_rus_30", time="continuous", time_unit="days", random_slope=model == "slope"
    )
    ref = LME4[model]
    coefs = res.coefficients.set_index("term")
    est, se = coefs["estimate"].to_numpy(), coefs["se"].to_numpy()
    np.testing.assert_allclose(est, [b for b, _ in ref["fixef"]], rtol=1e-4)
    np.testing.assert_allclose(se, [s for _, s in ref["fixef"]], rtol=1e-4)
    assert np.sqrt(res.model.scale) == pytest.approx(ref["sigma"], rel=1e-4)
    G = np.asarray(res.model.cov_re)
    assert G[0, 0] == pytest.approx(ref["vc"]["intercept"], rel=1e-3)
    if model == "slope":
        assert G[1, 1] == pytest.approx(ref["vc"]["slope"], rel=1e-3)
        assert G[0, 1] == pytest.approx(ref["vc"]["cov"], rel=1e-2)
        # the full-Hessian SEs (statsmodels' default) are on request and differ for the slope model
        hess = longitudinal(sleep, "dager_rus_30", time="continuous", time_unit="days", random_slope=True,
                            se="hessian")  # fmt: skip
        assert "full-Hessian" in hess.definition.method
    assert "lme4" in res.definition.method
    # Satterthwaite df: both implementations differentiate numerically (lmerTest by Richardson extrapolation in
    # lme4's parameterisation, ours by central differences in (G, sigma^2) at statsmodels' optimum), so they
    # agree to about 2e-5 here, not 1e-8
    np.testing.assert_allclose(coefs["df"].to_numpy(), ref["df"], rtol=1e-4)
    # and the t interval uses them
    from scipy import stats

    half = stats.t.ppf(0.975, coefs["df"].to_numpy()) * se
    np.testing.assert_allclose(coefs["ci_high"].to_numpy() - est, half, rtol=1e-12)


@pytest.mark.filterwarnings("ignore")
def test_time_unit_rescales_the_slope(sleep) -> None:
    # the same model per week: slope x 7 and its SE x 7 (lme4's Days slope 10.467285959596 per day)
    res = longitudinal(sleep, "dager_rus_30", time="continuous", time_unit="weeks")
    slope = res.coefficients.set_index("term").loc["t"]
    assert slope["estimate"] == pytest.approx(7 * 10.467285959596, rel=1e-4)
    assert slope["se"] == pytest.approx(7 * 0.80422142894524, rel=1e-4)
    assert res.definition.details["time unit"] == "weeks"
    assert res.table["time"].iloc[1] == pytest.approx(1 / 7)
