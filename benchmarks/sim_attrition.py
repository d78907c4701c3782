"""Simulation benchmark of the attrition estimators (issue 14): bias, empirical SD and CI coverage.

The missing-at-random process of the :func:`kvarus_research.outcomes.attrition` docstring: n = 400 courses,
start value y0 ~ N(20, 5^2), follow-up y1 = y0 - 5 + 0.3 (y0 - 20) + N(0, 3^2), answered with probability
1 / (1 + exp(-(y0 - 20) / 3)) (sicker patients answer more, about half answer). The true mean change is -5
(E[y0 - 20] = 0). Each repetition runs ``attrition()`` with its defaults (MI: Bayesian linear regression, m = 20;
IPW: stabilised weights, untrimmed, sandwich accounting for the estimated weights) and records each method's
estimate, SE and whether its 95 % CI covers -5.

Targets: |bias| < SD / 10 and coverage between 92 % and 97 % for MI and IPW over at least 200 repetitions.

``python benchmarks/sim_attrition.py --reps 300 --seed 14 [--imputation pmm] [--ipw-se known|bootstrap] [--n-boot 200]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from kvarus_research.outcomes import attrition

TRUTH = -5.0


def one_dataset(rng: np.random.Generator, n: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One draw of the process: the long format (baseline and answered follow-ups) and the follow-up status."""
    y0 = rng.normal(20, 5, n)
    y1 = y0 - 5 + 0.3 * (y0 - 20) + rng.normal(0, 3, n)
    answered = rng.uniform(size=n) < 1 / (1 + np.exp(-(y0 - 20) / 3))
    long = pd.DataFrame({"course_id": np.r_[np.arange(n), np.arange(n)[answered]],
                         "timepoint": ["baseline"] * n + ["followup"] * int(answered.sum()),
                         "dager_rus_30": np.r_[y0, y1[answered]]})  # fmt: skip
    status = pd.DataFrame({"course_id": np.arange(n), "followup_status": "reached"})
    return long, status


def simulate(reps: int, *, seed: int = 14, n: int = 400, **options: object) -> pd.DataFrame:
    """Per method: mean estimate, bias, empirical SD, mean SE and 95 % CI coverage over ``reps`` repetitions."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(reps):
        long, status = one_dataset(rng, n)
        tab = attrition(long, "dager_rus_30", followup=status, seed=r, **options).table
        for _, row in tab.iterrows():
            rows.append({"method": row["method"], "estimate": row["estimate"], "se": row["se"],
                         "covers": row["ci_low"] <= TRUTH <= row["ci_high"]})  # fmt: skip
    out = (
        pd.DataFrame(rows)
        .groupby("method", sort=False)
        .agg(
            mean=("estimate", "mean"),
            sd=("estimate", "std"),
            mean_se=("se", "mean"),
            coverage=("covers", "mean"),
        )
    )
    out.insert(1, "bias", out["mean"] - TRUTH)
    out["bias_over_sd"] = out["bias"].abs() / out["sd"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--imputation", default="norm", choices=["norm", "pmm"])
    ap.add_argument("--ipw-se", default="estimated", choices=["estimated", "known", "bootstrap"])
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--m", type=int, default=20)
    a = ap.parse_args()
    t0 = time.perf_counter()
    res = simulate(
        a.reps,
        seed=a.seed,
        n=a.n,
        imputation=a.imputation,
        ipw_se=a.ipw_se,
        n_imputations=a.m,
        n_boot=a.n_boot,
    )
    print(f"{a.reps} repetitions, n = {a.n}, seed {a.seed}, MI {a.imputation} m = {a.m}, IPW SE {a.ipw_se}, "
          f"truth {TRUTH}; {time.perf_counter() - t0:.1f} s")  # fmt: skip
    with pd.option_context("display.float_format", "{:.4f}".format):
        print(res.to_string())
    for method in ("MI", "IPW"):
        r = res.loc[method]
        ok = r["bias_over_sd"] < 0.1 and 0.92 <= r["coverage"] <= 0.97
        print(f"{method}: |bias|/SD = {r['bias_over_sd']:.3f}, coverage {r['coverage']:.1%} -> "
              f"{'meets' if ok else 'MISSES'} the target")  # fmt: skip


if __name__ == "__main__":
    main()
