"""Proper multiple imputation: Rubin's rules against R's mice, the parameter draw written out by hand, and a
small seeded version of the MAR simulation (benchmarks/sim_attrition.py has the 300-repetition one)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kvarus_research.errors import AnalysisError
from kvarus_research.outcomes import attrition
from kvarus_research.outcomes.imputation import impute_once, multiple_imputation, rubin_pool


def test_rubin_pool_matches_mice_pool_scalar() -> None:
    # R 4.2.2, mice 3.15.0:
    # pool.scalar(Q = c(-4.8, -5.1, -5.3, -4.9, -5.0), U = c(0.090, 0.085, 0.092, 0.088, 0.090), n = 400, k = 1)
    # qbar -5.02, ubar 0.089, b 0.037, t 0.1334, df 31.776381814608239, r 0.498876404494381,
    # fmi 0.371202521089757
    p = rubin_pool(np.array([-4.8, -5.1, -5.3, -4.9, -5.0]), np.array([0.090, 0.085, 0.092, 0.088, 0.090]),
                   df_complete=399)  # fmt: skip
    assert (p.estimate, p.within, p.between) == pytest.approx((-5.02, 0.089, 0.037), rel=1e-12)
    assert p.se == pytest.approx(np.sqrt(0.1334), rel=1e-12)
    assert p.df == pytest.approx(31.776381814608239, rel=1e-10)
    assert p.riv == pytest.approx(0.498876404494381, rel=1e-10)
    assert p.fmi == pytest.approx(0.371202521089757, rel=1e-10)
    q, se, df = p  # unpacks like the earlier (estimate, se, df) tuple
    assert (q, se, df) == (p.estimate, p.se, p.df)
    lo, hi = p.ci(0.95)
    assert hi - q == pytest.approx(stats.t.ppf(0.975, 31.776381814608239) * np.sqrt(0.1334))


def test_norm_draw_written_out() -> None:
    # 6 rows, 2 missing: the draw with the same generator, by the textbook formulas
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    y = np.array([2.1, 3.9, 6.2, 7.8, np.nan, np.nan])
    out = impute_once(x[:, None], y, np.random.default_rng(3), method="norm", delta=1.5)
    rng = np.random.default_rng(3)
    X = np.column_stack([np.ones(4), x[:4]])
    bhat = np.linalg.solve(X.T @ X, X.T @ y[:4])
    rss = np.sum((y[:4] - X @ bhat) ** 2)
    sigma = np.sqrt(rss / rng.chisquare(4 - 2))
    _, r = np.linalg.qr(X)
    beta = bhat + sigma * np.linalg.solve(r, rng.standard_normal(2))
    expect = np.array([[1, 5.0], [1, 6.0]]) @ beta + sigma * rng.standard_normal(2) + 1.5
    np.testing.assert_allclose(out[4:], expect, rtol=1e-12)
    np.testing.assert_array_equal(out[:4], y[:4])
    # the covariance of beta_hat + sigma R^-1 z is sigma^2 (X'X)^-1 because (R'R)^-1 = (X'X)^-1
    np.testing.assert_allclose(np.linalg.inv(r) @ np.linalg.inv(r).T, np.linalg.inv(X.T @ X), rtol=1e-10)


def test_pmm_takes_observed_values_from_nearest_donors() -> None:
    rng = np.random.default_rng(0)
    x = np.arange(50, dtype=float)
    y = 2 * x + rng.normal(0, 0.1, 50)
    y[[10, 30]] = np.nan
    out = impute_once(x[:, None], y, np.random.default_rng(1), method="pmm", donors=3)
    # a near-exact line: the 3 donors of course 10 are courses 9, 11 and 8 or 12 (predicted values 2 apart)
    assert out[10] in set(y[[8, 9, 11, 12]]) and out[30] in set(y[[28, 29, 31, 32]])
    with pytest.raises(AnalysisError, match="method"):
        impute_once(x[:, None], y, rng, method="mice")


def test_multiple_imputation_pools_the_imputations() -> None:
    rng = np.random.default_rng(2)
    n = 300
    y0 = rng.normal(15, 4, n)
    y1 = y0 - 3 + rng.normal(0, 2, n)
    y1[rng.uniform(size=n) < 0.4] = np.nan
    pool = multiple_imputation(pd.DataFrame({"y0": y0}), y1, m=6, seed=9)
    # the same imputations, pooled by hand: the generator is shared across the m imputations in order
    g = np.random.default_rng(9)
    q, u = [], []
    for _ in range(6):
        d = impute_once(y0[:, None], y1, g) - y0
        q.append(d.mean())
        u.append(d.var(ddof=1) / n)
    b = np.var(q, ddof=1)
    lam = (1 + 1 / 6) * b / (np.mean(u) + (1 + 1 / 6) * b)
    df_old, df_obs = 5 / lam**2, (n - 1 + 1) / (n - 1 + 3) * (n - 1) * (1 - lam)
    assert pool.estimate == pytest.approx(np.mean(q), rel=1e-12)
    assert pool.se**2 == pytest.approx(np.mean(u) + (1 + 1 / 6) * b, rel=1e-12)
    assert pool.df == pytest.approx(df_old * df_obs / (df_old + df_obs), rel=1e-12)
    assert 0 < pool.fmi < 1


def _mar_dataset(rng: np.random.Generator, n: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    # the process of the attrition docstring and benchmarks/sim_attrition.py: true mean change -5
    y0 = rng.normal(20, 5, n)
    y1 = y0 - 5 + 0.3 * (y0 - 20) + rng.normal(0, 3, n)
    answered = rng.uniform(size=n) < 1 / (1 + np.exp(-(y0 - 20) / 3))
    long = pd.DataFrame({"course_id": np.r_[np.arange(n), np.arange(n)[answered]],
                         "timepoint": ["baseline"] * n + ["followup"] * int(answered.sum()),
                         "dager_rus_30": np.r_[y0, y1[answered]]})  # fmt: skip
    return long, pd.DataFrame({"course_id": np.arange(n), "followup_status": "reached"})


def test_small_mar_simulation_mi_and_ipw_cover_the_truth() -> None:
    rng = np.random.default_rng(2026)
    est, cover = {"MI": [], "IPW": [], "complete case": []}, {"MI": [], "IPW": [], "complete case": []}
    for r in range(40):
        long, status = _mar_dataset(rng)
        tab = attrition(long, "dager_rus_30", followup=status, n_imputations=10, seed=r).table.set_index(
            "method"
        )
        for k in est:
            est[k].append(tab.loc[k, "estimate"])
            cover[k].append(tab.loc[k, "ci_low"] <= -5 <= tab.loc[k, "ci_high"])
    for k in ("MI", "IPW"):
        # looser than the benchmark's targets (|bias| < SD/10, 92-97 %): 40 repetitions
        assert abs(np.mean(est[k]) + 5) < np.std(est[k], ddof=1) / 2, k
        assert np.mean(cover[k]) >= 0.8, k
    # the complete case is biased toward less improvement here (sicker patients answer more)
    assert np.mean(est["complete case"]) > -4.5 and np.mean(cover["complete case"]) < 0.3


def test_auxiliary_enters_only_the_imputation_model() -> None:
    rng = np.random.default_rng(4)
    long, status = _mar_dataset(rng)
    status["aux"] = rng.normal(size=len(status))
    res = attrition(long, "dager_rus_30", followup=status, courses=status, auxiliary=["aux"], n_imputations=5)
    assert res.definition.details["response model"] == "1 + dager_rus_30@baseline"
    assert res.definition.details["imputation model"] == "1 + dager_rus_30@baseline + aux"
    assert "Bayesian linear regression" in res.definition.method
    mi = res.table.set_index("method").loc["MI"]
    assert 0 < mi["fmi"] < 1 and mi["df"] > 5
