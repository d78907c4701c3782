"""Attrition: who is owed a follow-up, a saturated response model where IPW has a closed form, the sandwich
SE against statsmodels WLS (HC0), MI against MICEData driven by hand with Rubin's rules, and the synthetic
registry's known complete-case bias."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.imputation.mice import MICEData

from kvarus_research.errors import AnalysisError
from kvarus_research.outcomes import attrition
from kvarus_research.outcomes.attrition import multiple_imputation


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
    res = attrition(long, "dager_rus_30", covariates=["age"], courses=courses, trim=(0, 100), n_imputations=0)
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


def test_multiple_imputation_matches_micedata_by_hand() -> None:
    rng = np.random.default_rng(2)
    n = 300
    y0 = rng.normal(15, 4, n)
    x = rng.normal(0, 1, n)
    y1 = y0 - 3 + x + rng.normal(0, 2, n)
    y1[rng.uniform(size=n) < 0.4] = np.nan
    design = pd.DataFrame({"y0": y0, "x": x})
    q, se, df = multiple_imputation(design, y1, m=6, n_burnin=5, n_skip=2, seed=9)
    # the same chain, written out: MICEData with the same seed, 5 burn-in cycles, then 6 draws 2 cycles apart
    imp = MICEData(pd.DataFrame({"y0": y0, "y1": y1, "x1": x}), rng=np.random.default_rng(9))
    imp.update_all(5)
    means, variances = [], []
    for _ in range(6):
        imp.update_all(2)
        d = imp.data["y1"].to_numpy() - imp.data["y0"].to_numpy()
        means.append(d.mean())
        variances.append(d.var(ddof=1) / n)
    # Rubin's rules: T = U + (1 + 1/m) B; df = (m - 1)(1 + U / ((1 + 1/m) B))^2
    u, b = np.mean(variances), np.var(means, ddof=1)
    assert q == pytest.approx(np.mean(means))
    assert se == pytest.approx(np.sqrt(u + (1 + 1 / 6) * b))
    assert df == pytest.approx(5 * (1 + u / ((1 + 1 / 6) * b)) ** 2)


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
