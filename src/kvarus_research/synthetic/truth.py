"""The ground truth of a synthetic registry, as a plain YAML-serialisable dict (see ``generate``'s Notes)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd  # noqa: F401

from kvarus_research.codebook import Codebook
from kvarus_research.synthetic import params as P

#: For each categorical outcome, the English label of the code counted as the "worst" state in ``truth``.
WORST_LABEL: dict[str, str] = {
    "injisert_30": "Yes",
    "overdose_3m": "Yes",
    "bolig": "Homeless",
    "arbeid_utdanning": "Neither work nor education",
}


def _r(x: float) -> float:
    return float(round(float(x), 6))


def build_truth(
    cb: Codebook,
    *,
    latent: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    observed: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
    values: dict[str, np.ndarray],
    n: int,
    ended: np.ndarray,
    due: np.ndarray,
    keep_course: np.ndarray,
    units: pd.DataFrame,
    coverage_rates: dict[int, float],
    network_truth: dict[int, Any],
    improvement: tuple[float, float],
    opt_out_share: float,
    mutual_log_hr: np.ndarray | None = None,
) -> dict[str, Any]:
    """Assemble ``registry.truth`` from the latent values and the parameters that generated the data.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> sorted(kr.synthetic.generate(100, seed=1).truth)[:4]
    ['categorical', 'change', 'coverage_by_year', 'ending_hazards']
    """
    change: dict[str, Any] = {}
    for name, (b, e, f) in latent.items():
        ending_pop = ended & keep_course
        fu_pop = due & keep_course
        # complete case: non-opted-out courses with a registered baseline value and a reached follow-up value
        cc = observed[1][name] - observed[0][name]
        both = cc[keep_course & ~np.isnan(cc)]
        change[name] = {
            "direction": cb.variable(name).outcome.direction if cb.variable(name).outcome else "lower",
            "baseline_to_ending": _r(np.mean(e[ending_pop] - b[ending_pop])) if ending_pop.any() else None,
            "n_ending": int(ending_pop.sum()),
            "baseline_to_followup": _r(np.mean(f[fu_pop] - b[fu_pop])) if fu_pop.any() else None,
            "n_followup": int(fu_pop.sum()),
            "complete_case_followup": _r(both.mean()) if len(both) else None,
            "n_complete_case": int(len(both)),
        }
    categorical: dict[str, Any] = {}
    for name, label in WORST_LABEL.items():
        if name not in values or name not in cb:
            continue
        var = cb.variable(name)
        codes = [c for c in var.valid_codes if var.code_label(c, "en") == label]
        if not codes:
            continue
        worst = np.asarray(values[name])[: 3 * n] == codes[0]
        b, e, f = worst[:n], worst[n : 2 * n], worst[2 * n :]
        ending_pop, fu_pop = ended & keep_course, due & keep_course
        categorical[name] = {
            "worst_code": int(codes[0]),
            "worst_label": label,
            "share_baseline": _r(b[keep_course].mean()),
            "share_baseline_ended": _r(b[ending_pop].mean()) if ending_pop.any() else None,
            "share_ending": _r(e[ending_pop].mean()) if ending_pop.any() else None,
            "share_baseline_due": _r(b[fu_pop].mean()) if fu_pop.any() else None,
            "share_followup": _r(f[fu_pop].mean()) if fu_pop.any() else None,
        }
    unit_truth = {
        int(r["unit_id"]): {
            "unit_name": str(r["unit_name"]),
            "setting": str(r["setting"]),
            "p_plan_beh": _r(r["_p_plan_beh"]),
            "p_plan_krise": _r(r["_p_plan_krise"]),
            "p_eval_utbytte_4_5": _r(r["_p_utbytte"]),
            "improvement_effect": _r(r["_improvement"]),
        }
        for r in units.to_dict("records")
    }
    extra: dict[str, Any] = {}
    if mutual_log_hr is not None:  # only with the opt-in unit effect: the default truth is unchanged
        ids = units["unit_id"].to_numpy()
        for uid, v in zip(ids, mutual_log_hr, strict=True):
            unit_truth[int(uid)]["mutual_agreement_log_hr"] = _r(v)
        extra["unit_effects"] = {
            "indicator": "gjensidig (ended by mutual agreement among courses ended by mutual agreement or"
            " interruption)",
            "model": "log h_mutual_agreement gains log_hr at the unit; with constant cause-specific hazards "
            "logit P(mutual | ended mutual or interrupted) = log(base_mutual/base_interrupted) "
            "+ (severity_m - severity_i)*latent_severity + (age10_m - age10_i)*(age - 35)/10 "
            "+ (inpatient_m - inpatient_i)*[inpatient] + log_hr",
            "log_odds_shift": {int(u): _r(v) for u, v in zip(ids, mutual_log_hr, strict=True) if v != 0},
        }
    return {
        "population": "courses of patients who did not opt out (patients.reserved == False)",
        "change": change,
        "categorical": categorical,
        "ending_hazards": {
            "model": "cause-specific exponential hazards; log h_c = log base_c + severity*latent_severity "
            "+ age10*(age_at_start - 35)/10 + inpatient*[unit setting inpatient]",
            "base_hazard_per_day": {k: _r(v) for k, v in P.ENDING_BASE_HAZARD.items()},
            "log_hr": {k: dict(v) for k, v in P.ENDING_LOG_HR.items()},
        },
        "followup_response": {
            "model": "logit P(reached | registered) = intercept + improvement_z*z + mutual_agreement*[mutual] "
            "+ interrupted*[interrupted], z = (latent improvement at follow-up - improvement_mean) / improvement_sd",
            "coefficients": dict(P.FOLLOWUP_RESPONSE),
            "improvement_mean": _r(improvement[0]),
            "improvement_sd": _r(improvement[1]),
            "p_registered": P.FOLLOWUP_REGISTERED,
            "declined_share": P.FOLLOWUP_DECLINED_SHARE,
        },
        "trajectory": {
            "improvement_mean": P.IMPROVEMENT_MEAN,
            "improvement_sd": P.IMPROVEMENT_SD,
            "unit_improvement_sd": P.UNIT_IMPROVEMENT_SD,
            "tau_days": P.TAU_DAYS,
        },
        "units": unit_truth,
        "coverage_by_year": coverage_rates,
        "opt_out_share": float(opt_out_share),
        "network_work": network_truth,
        **extra,
    }
