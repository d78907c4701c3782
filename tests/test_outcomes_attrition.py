"""Attrition: who is owed a follow-up, a saturated response model where IPW has a closed form, the sandwich
SE against statsmodels WLS (HC0) and, for estimated weights, against stacked M-estimation with a numerical
Jacobian, and the synthetic registry's known complete-case bias (MI itself: test_outcomes_imputation.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from kvarus_research.errors import AnalysisError
from kvarus_research.outcomes import attrition


def tiny() -> tuple[pd.DataFrame, pd.DataFrame]:
    # group x=0: courses 1-4, courses 1, 2 answer (change -10, -6), 3, 4 do not
    # group x=1: courses 5-8, courses 5, 6, 7 answer (change -2, 0, -1), 8 does not
    # course 9: not yet due; course 10: no ending; course 11: due but no baseline value
    base = {1: 20, 2: 16, 3: 18, 4: 22, 5: 10, 6: 12, 7: 9, 8: 11, 9: 15, 10: 14}
    fu = {1: 10, 2: 10, 5: 8, 6: 12, 7: 8}
    rows = [(c, "baseline", v) for c, v in base.items()] + [(11, "ending", 5)]
    rows += [(c, "followup", v) for c, v in fu.items()]
    long = pd.DataFrame(rows, columns=["course_id", "timepoint", "dager_rus_30"])
    status = ["reached", "reached", "not_reached", "declined", "reached", "reached", "reached", "not_registered",
              "not_yet_due", "no_ending", "not_reached"]  # fmt: skip
    courses = pd.DataFrame(
        {"course_id": range(1, 12), "followup_status": status, "x": [0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 0]}
    )
    return long, courses


def test_flow_and_closed_form_ipw() -> None:
    long, courses = tiny()
    res = attrition(long, "dager_rus_30", covariates=["x"], courses=courses, include_start=False,
                    trim=(0, 100), n_imputations=0)  # fmt: skip
    f = res.flow
    assert (f["not_yet_due"], f["no_ending"], f["due_missing_start_value"]) == (1, 1, 1)
    assert (f["due"], f["responders"], f["non_responders"]) == (8, 5, 3)
    tab = res.table.set_index("method")
    # complete case: (-10 - 6 - 2 + 0 - 1) / 5 = -3.8
    assert tab.loc["complete case", "estimate"] == pytest.approx(-3.8)
    # saturated logistic model: p(x=0) = 2/4, p(x=1) = 3/4; stabilised weights 0.625/0.5 = 1.25 and
    # 0.625/0.75 = 0.8333. IPW = sum over groups of (population share) x (responders' mean change):
    # 0.5 * (-8) + 0.5 * (-1) = -4.5
    assert tab.loc["IPW", "estimate"] == pytest.approx(-4.5, abs=1e-6)
    assert (res.weights["min"], res.weights["max"]) == pytest.approx((0.625 / 0.75, 1.25), abs=1e-6)
    assert tab.loc["IPW", "improvement"] == pytest.approx(4.5, abs=1e-6)  # lower is better
    # SMD of x: responders 3/5 = 0.6, non-responders 1/3; pooled SD sqrt((0.24 + 2/9)/2) = 0.480740
    bal = res.balance.set_index("covariate").loc["x"]
    assert bal["smd"] == pytest.approx((0.6 - 1 / 3) / 0.480740, abs=1e-5)
    # weighted responders: (3 * 0.8333) / (2 * 1.25 + 3 * 0.8333) = 0.5 = the due population's mean
    assert bal["mean_responders_weighted"] == pytest.approx(0.5) and bal["smd_weighted"] == pytest.approx(0)


def test_ipw_sandwich_matches_wls_hc0() -> None:
    rng = np.random.default_rng(5)
    n = 600
    y0 = rng.normal(20, 5, n)
    age = rng.normal(35, 10, n)
    y1 = y0 - 4 + 0.2 * (age - 35) + rng.normal(0, 3, n)
    p = 1 / (1 + np.exp(-(0.05 * (age - 35) + 0.1 * (y0 - 20))))
    answered = rng.uniform(size=n) < p
    long = pd.DataFrame({"course_id": np.r_[np.arange(n), np.arange(n)[answered]],
                         "timepoint": ["baseline"] * n + ["followup"] * int(answered.sum()),
                         "dager_rus_30": np.r_[y0, y1[answered]]})  # fmt: skip
    courses = pd.DataFrame({"course_id": np.arange(n), "followup_status": "reached", "age": age})
    res = attrition(long, "dager_rus_30", covariates=["age"], courses=courses, trim=(0, 100), n_imputations=0,
                    ipw_se="known")  # fmt: skip
    # the same weights by a direct GLM call, then the weighted mean and its HC0 SE from WLS on a constant
    X = sm.add_constant(np.column_stack([y0, age]))
    p_hat = sm.GLM(answered.astype(float), X, family=sm.families.Binomial()).fit().fittedvalues
    w = answered.mean() / p_hat[answered]
    d = (y1 - y0)[answered]
    wls = sm.WLS(d, np.ones_like(d), weights=w).fit(cov_type="HC0")
    ipw = res.table.set_index("method").loc["IPW"]
    assert ipw["estimate"] == pytest.approx(wls.params[0]) and ipw["se"] == pytest.approx(wls.bse[0])
    # truth of this simulation: E[y1 - y0] = -4 + 0.2 E[age - 35] = -4 (up to sampling of age)
    true_mean = float(np.mean(y1 - y0))
    assert ipw["ci_low"] <= true_mean <= ipw["ci_high"]


def test_ipw_se_with_estimated_weights_matches_stacked_m_estimation() -> None:
    # the same sandwich by a generic route: the stacked estimating equations (logistic score and the weighted
    # mean's equation), their Jacobian by central finite differences, Var = A^-1 B A^-T / n^2
    rng = np.random.default_rng(8)
    n = 500
    y0 = rng.normal(20, 5, n)
    y1 = y0 - 5 + 0.3 * (y0 - 20) + rng.normal(0, 3, n)
    r = rng.uniform(size=n) < 1 / (1 + np.exp(-(y0 - 20) / 3))
    long = pd.DataFrame({"course_id": np.r_[np.arange(n), np.arange(n)[r]],
                         "timepoint": ["baseline"] * n + ["followup"] * int(r.sum()),
                         "dager_rus_30": np.r_[y0, y1[r]]})  # fmt: skip
    status = pd.DataFrame({"course_id": np.arange(n), "followup_status": "reached"})
    res = attrition(long, "dager_rus_30", followup=status, n_imputations=0)
    X = np.column_stack([np.ones(n), y0])
    d = np.where(r, y1 - y0, 0.0)

    def psi(theta: np.ndarray) -> np.ndarray:
        beta, mu = theta[:2], theta[2]
        p = 1 / (1 + np.exp(-(X @ beta)))
        return np.column_stack([X * (r - p)[:, None], r / p * (d - mu)])

    beta = sm.GLM(r.astype(float), X, family=sm.families.Binomial()).fit().params
    p = 1 / (1 + np.exp(-(X @ beta)))
    mu = np.sum(r / p * d) / np.sum(r / p)
    theta = np.r_[beta, mu]
    A = np.empty((3, 3))
    for j in range(3):
        h = np.zeros(3)
        h[j] = 1e-6 * max(1.0, abs(theta[j]))
        A[:, j] = (psi(theta + h).sum(0) - psi(theta - h).sum(0)) / (2 * h[j])
    Bm = psi(theta).T @ psi(theta)
    V = np.linalg.inv(A) @ Bm @ np.linalg.inv(A).T
    ipw = res.table.set_index("method").loc["IPW"]
    assert ipw["estimate"] == pytest.approx(mu, rel=1e-9)
    assert ipw["se"] == pytest.approx(np.sqrt(V[2, 2]), rel=1e-5)
    assert "estimated weights" in ipw["variance"]
    # the bootstrap is on request, seeded, and of the same order
    boot = attrition(long, "dager_rus_30", followup=status, n_imputations=0, ipw_se="bootstrap", n_boot=100)
    assert 0.7 < boot.table.set_index("method").loc["IPW", "se"] / np.sqrt(V[2, 2]) < 1.4


def test_errors() -> None:
    long, courses = tiny()
    with pytest.raises(AnalysisError, match="follow-up status"):
        attrition(long, "dager_rus_30")
    with pytest.raises(AnalysisError, match="trim"):
        attrition(long, "dager_rus_30", courses=courses, trim=(50, 10))


@pytest.fixture(scope="module")
def synthetic():
    import kvarus_research as kr
    from kvarus_research.cohort import align_timepoints

    reg = kr.synthetic.generate(n_courses=20_000, seed=7)
    return reg, align_timepoints(reg, baseline="registration")


@pytest.mark.slow
@pytest.mark.parametrize("outcome", ["dager_rus_30", "livssituasjon"])
def test_synthetic_complete_case_bias_and_correction(synthetic, outcome, artifacts) -> None:
    reg, tp = synthetic
    truth = reg.truth["change"][outcome]
    res = attrition(tp, outcome, covariates=[f"{outcome}@ending", "ending_type"], courses=reg.courses,
                    n_imputations=10, seed=1)  # fmt: skip
    tab = res.table.set_index("method")
    sign = 1 if truth["direction"] == "higher" else -1
    cc, ipw, mi = (tab.loc[m, "estimate"] for m in ("complete case", "IPW", "MI"))
    # the complete-case estimate is the truth's own complete-case mean (same respondents, same values) ...
    assert cc == pytest.approx(truth["complete_case_followup"], abs=1e-6)
    # ... and biased in the known direction: responders improved more (response depends on improvement),
    # so complete case overstates the improvement and its CI misses the true change
    assert sign * cc > sign * truth["baseline_to_followup"]
    assert (
        not tab.loc["complete case", "ci_low"]
        <= truth["baseline_to_followup"]
        <= tab.loc["complete case", "ci_high"]
    )
    # IPW and MI with the ending value and ending type (predictors of response) move toward the truth
    assert abs(ipw - truth["baseline_to_followup"]) < abs(cc - truth["baseline_to_followup"])
    assert abs(mi - truth["baseline_to_followup"]) < abs(cc - truth["baseline_to_followup"])
    assert res.flow["not_yet_due"] > 0 and res.flow["due"] == tab.loc["MI", "n"]
    ax = res.plot(reference=truth["baseline_to_followup"])
    ax.figure.savefig(artifacts / f"outcomes_attrition_{outcome}.png", bbox_inches="tight")
    ax = res.plot_balance()
    ax.figure.savefig(artifacts / f"outcomes_attrition_balance_{outcome}.png", bbox_inches="tight")
