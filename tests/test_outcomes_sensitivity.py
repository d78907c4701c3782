"""Delta-adjusted MI and the tipping point: the shift of the pooled estimate worked out by hand, the tipping point
checked by refitting at it, and the synthetic registry (whose non-response depends on unobserved improvement)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kvarus_research.errors import AnalysisError
from kvarus_research.outcomes import attrition, tipping_point


def mcar(n: int = 400, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    y0 = rng.normal(20, 5, n)
    y1 = y0 - 2 + rng.normal(0, 3, n)
    answered = rng.uniform(size=n) < 0.5
    long = pd.DataFrame({"course_id": np.r_[np.arange(n), np.arange(n)[answered]],
                         "timepoint": ["baseline"] * n + ["followup"] * int(answered.sum()),
                         "dager_rus_30": np.r_[y0, y1[answered]]})  # fmt: skip
    return long, pd.DataFrame({"course_id": np.arange(n), "followup_status": "reached"})


def test_delta_shifts_the_estimate_by_the_missing_share() -> None:
    long, status = mcar()
    res = tipping_point(
        long, "dager_rus_30", followup=status, deltas=[0, 1, 2, 4, 8], n_imputations=5, seed=3
    )
    share = attrition(long, "dager_rus_30", followup=status, n_imputations=0).flow["non_responders"] / 400
    # same seed at every delta: each imputed value moves by delta, so each completed mean by share x delta
    np.testing.assert_allclose(res.table["estimate"] - res.table["estimate"].iloc[0],
                               share * res.table["delta"], rtol=1e-10, atol=1e-12)  # fmt: skip
    # lower is better for days of substance use: improvement = -estimate
    np.testing.assert_allclose(res.table["improvement"], -res.table["estimate"])
    assert "delta-adjusted" in res.definition.method


def test_tipping_point_is_where_the_ci_reaches_the_null() -> None:
    long, status = mcar()
    grid = np.linspace(0, 8, 33)
    res = tipping_point(long, "dager_rus_30", followup=status, deltas=grid, n_imputations=5, seed=3)
    tab = res.table
    tip = res.tipping_point
    # MAR (delta = 0) excludes no change; the tipping point lies between the last grid delta that still excludes
    # it and the first that does not
    first_in = tab.index[~tab["excludes_null"].astype(bool)][0]
    assert tab["excludes_null"].iloc[0] and tip is not None
    assert tab["delta"].iloc[first_in - 1] < tip <= tab["delta"].iloc[first_in]
    # refit at the tipping delta: the upper CI bound is at the null (up to the grid's linear interpolation)
    at = attrition(long, "dager_rus_30", followup=status, n_imputations=5, seed=3, delta=tip)
    assert at.table.set_index("method").loc["MI", "ci_high"] == pytest.approx(0, abs=0.01)
    ax = res.plot(rules="opensafely")
    assert ax.get_xlabel().startswith("δ")


def test_default_grid_runs_toward_worse_and_errors() -> None:
    long, status = mcar()
    res = tipping_point(long, "dager_rus_30", followup=status, n_imputations=3)
    # lower is better: worse-off non-responders have higher follow-up values, so the grid is 0 and positive
    assert len(res.table) == 21 and res.table["delta"].iloc[0] == 0 and (res.table["delta"] >= 0).all()
    with pytest.raises(AnalysisError, match="sets 'delta'"):
        tipping_point(long, "dager_rus_30", followup=status, delta=1.0)


@pytest.mark.slow
def test_synthetic_registry_tipping_point(artifacts) -> None:
    import kvarus_research as kr
    from kvarus_research.cohort import align_timepoints

    reg = kr.synthetic.generate(n_courses=20_000, seed=7)
    tp = align_timepoints(reg, baseline="registration")
    truth = reg.truth["change"]["dager_rus_30"]["baseline_to_followup"]
    res = tipping_point(tp, "dager_rus_30", covariates=["dager_rus_30@ending", "ending_type"], courses=reg.courses,
                        deltas=np.linspace(0, 8, 17), n_imputations=10, seed=1)  # fmt: skip
    tab = res.table
    # the MAR analysis (delta = 0) overstates the improvement (response depends on unobserved improvement);
    # some positive delta (non-responders worse than similar responders) reaches the truth ...
    assert tab["estimate"].iloc[0] < truth < tab["estimate"].iloc[-1]
    # ... and a larger one the tipping point, where the CI first contains no change
    assert tab["excludes_null"].iloc[0] and not tab["excludes_null"].all()
    first_in = tab.index[~tab["excludes_null"].astype(bool)][0]
    assert tab["delta"].iloc[first_in - 1] < res.tipping_point <= tab["delta"].iloc[first_in]
    res.plot().figure.savefig(artifacts / "outcomes_tipping_point_synthetic.png")
