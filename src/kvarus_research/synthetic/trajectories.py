"""Outcome trajectories of the synthetic registry: one latent problem process per course drives every item.

For course *i* with latent baseline severity ``z_i`` and improvement ``g_i`` (random slope, negative for patients
who worsen), the latent problem level ``t`` days after the course start is
``eta_i(t) = z_i - g_i * (1 - exp(-t / TAU))``; at the one-year follow-up the improvement reached at ending is
kept by a factor ``keep_i`` (relapse when < 1). Each item is a noisy function of ``eta`` (continuous items: linear,
rounded and clipped to the codebook range; yes/no items: logistic; ordinal items: cut points), so items correlate
with each other and improve together. Code lists come from the codebook.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit, ndtri

from kvarus_research.codebook import Codebook
from kvarus_research.synthetic import params as P


def eta_at(z: np.ndarray, g: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Latent problem level ``z - g * (1 - exp(-days / TAU))``.

    Examples
    --------
    >>> float(eta_at(np.array([1.0]), np.array([0.5]), np.array([0.0]))[0])
    1.0
    """
    return z - g * (1.0 - np.exp(-np.asarray(days, dtype=float) / P.TAU_DAYS))


def code_with_label(codebook: Codebook, name: str, english: str) -> int:
    """The code of ``name`` whose English label is ``english`` (how code lists are read, never retyped).

    Examples
    --------
    >>> import kvarus_research as kr
    >>> code_with_label(kr.load_codebook(), "plan_beh", "Yes")
    2
    """
    var = codebook.variable(name)
    for code in var.valid_codes:
        if var.code_label(code, "en").lower() == english.lower():
            return int(code)
    raise ValueError(f"variable {name!r} has no code labelled {english!r}")


def continuous_values(
    codebook: Codebook, name: str, eta: np.ndarray, noise: np.ndarray, extra: np.ndarray | float = 0.0
) -> np.ndarray:
    """Item value ``mean + scale * (loading * eta + sqrt(1 - loading^2) * noise) + extra``, rounded and clipped.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> continuous_values(kr.load_codebook(), "dager_rus_30", np.array([-5.0, 0.0, 5.0]), np.zeros(3)).tolist()
    [0.0, 15.0, 30.0]
    """
    spec = P.CONTINUOUS[name]
    lo, hi = codebook.variable(name).range or (-np.inf, np.inf)
    a = spec["loading"]
    raw = spec["mean"] + spec["scale"] * (a * eta + np.sqrt(1 - a * a) * noise) + extra
    return np.clip(np.round(raw, spec["decimals"]), lo, hi)


def binary_values(
    codebook: Codebook, name: str, eta: np.ndarray, opioid: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """Yes/no item codes: ``P(yes) = expit(intercept + eta_coef * eta + opioid_coef * opioid)``.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> binary_values(kr.load_codebook(), "injisert_30", np.array([-3.0, 3.0]), np.array([0.0, 1.0]),
    ...               np.array([0.5, 0.5])).tolist()  # 1 = Nei, 2 = Ja
    [1, 2]
    """
    spec = P.BINARY[name]
    yes = code_with_label(codebook, name, "Yes")
    no = code_with_label(codebook, name, "No")
    p = expit(spec["intercept"] + spec["eta_coef"] * eta + spec["opioid_coef"] * opioid)
    return np.where(u < p, yes, no).astype(np.int16)


def ordinal_codes(codebook: Codebook, name: str, score: np.ndarray, shares: tuple[float, ...]) -> np.ndarray:
    """Cut a score (standard normal at the reference level) into the variable's valid codes, in codebook order.

    The cut points are the normal quantiles of the cumulative ``shares``; when the codebook has a different number
    of codes than ``shares``, the codes get equal shares.

    Examples
    --------
    Housing with baseline shares 62/18/8/12 %: cut points at the normal quantiles of
    0.62, 0.80, 0.88: 0.31, 0.84, 1.17.

    >>> import kvarus_research as kr
    >>> ordinal_codes(kr.load_codebook(), "bolig", np.array([-2.0, 0.0, 0.5, 2.0]), (0.62, 0.18, 0.08, 0.12)).tolist()
    [1, 1, 2, 4]
    """
    codes = np.array(codebook.variable(name).valid_codes, dtype=np.int16)
    if len(shares) != len(codes):
        shares = tuple([1.0 / len(codes)] * len(codes))
    cuts = ndtri(np.cumsum(shares)[:-1] / np.sum(shares))
    return codes[np.searchsorted(cuts, score)]


def item_values(
    codebook: Codebook,
    rng: np.random.Generator,
    eta: np.ndarray,
    progress: np.ndarray,
    opioid: np.ndarray,
    alcohol: np.ndarray,
) -> dict[str, np.ndarray]:
    """Every outcome item for a batch of (virtual) registrations.

    Parameters
    ----------
    codebook : Codebook
        Code lists and ranges come from here.
    rng : numpy.random.Generator
    eta : ndarray
        Latent problem level per row.
    progress : ndarray
        Improvement so far per row, ``g * (1 - exp(-t / TAU))`` (drives satisfaction).
    opioid, alcohol : ndarray
        1.0 when the row's main substance is opioids / alcohol, else 0.0.

    Returns
    -------
    dict
        Variable name -> values (floats for continuous items, integer codes for categorical ones).

    Examples
    --------
    >>> import kvarus_research as kr
    >>> v = item_values(kr.load_codebook(), np.random.default_rng(0), np.array([2.0, -2.0]), np.zeros(2),
    ...                 np.zeros(2), np.zeros(2))
    >>> bool(v["dager_rus_30"][0] > v["dager_rus_30"][1]), sorted(set(v["bolig"].tolist())) <= [1, 2, 3, 4]
    (True, True)
    """
    n = len(eta)
    out: dict[str, np.ndarray] = {}
    for name in P.CONTINUOUS:
        if name in codebook:
            extra = P.ALCOHOL_MAIN_EXTRA_DAYS * alcohol if name == "dager_alkohol_30" else 0.0
            out[name] = continuous_values(codebook, name, eta, rng.standard_normal(n), extra)
    for name in P.BINARY:
        if name in codebook:
            out[name] = binary_values(codebook, name, eta, opioid, rng.random(n))
    for name, spec in P.ORDINAL.items():
        if name in codebook:
            score = spec["eta_coef"] * eta + rng.standard_normal(n)
            out[name] = ordinal_codes(codebook, name, score, spec["shares"])
    if "tilfredshet" in codebook:
        out["tilfredshet"] = ordinal_codes(
            codebook, "tilfredshet", progress + rng.standard_normal(n), P.SATISFACTION_SHARES
        )
    return out


def unit_feedback(
    codebook: Codebook,
    rng: np.random.Generator,
    p_plan: np.ndarray,
    p_crisis: np.ndarray,
    p_benefit: np.ndarray,
) -> dict[str, np.ndarray]:
    """``plan_beh`` / ``plan_krise`` (Ja with the unit's probability, else Nei 80 % / Vet ikke 20 %) and
    ``eval_utbytte`` (the two highest codes with the unit's probability, split 60/40; else the lower codes
    15/30/55 %), per row.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> fb = unit_feedback(kr.load_codebook(), np.random.default_rng(0), np.full(1000, 0.9), np.full(1000, 0.5),
    ...                    np.full(1000, 0.7))
    >>> float((fb["plan_beh"] == 2).mean()), float(np.isin(fb["eval_utbytte"], [4, 5]).mean())
    (0.904, 0.706)
    """
    n = len(p_plan)
    out: dict[str, np.ndarray] = {}
    for name, p in (("plan_beh", p_plan), ("plan_krise", p_crisis)):
        if name not in codebook:
            continue
        yes = code_with_label(codebook, name, "Yes")
        no = code_with_label(codebook, name, "No")
        other = [c for c in codebook.variable(name).valid_codes if c not in (yes, no)]
        dk = other[0] if other else no
        u = rng.random(n)
        out[name] = np.where(u < p, yes, np.where(u < p + (1 - p) * 0.8, no, dk))
    if "eval_utbytte" in codebook:
        codes = np.array(sorted(codebook.variable("eval_utbytte").valid_codes))
        high = codes[-2:]
        low = codes[:-2]
        u = rng.random(n)
        hi_pick = np.where(rng.random(n) < 0.6, high[0], high[-1])
        low_p = (
            np.array([0.15, 0.30, 0.55][-len(low) :]) if len(low) <= 3 else np.full(len(low), 1 / len(low))
        )
        low_pick = low[np.searchsorted(np.cumsum(low_p / low_p.sum())[:-1], rng.random(n), side="right")]
        out["eval_utbytte"] = np.where(u < p_benefit, hi_pick, low_pick)
    return out


def followup_response(
    improvement_z: np.ndarray,
    ending_type: np.ndarray,
    u_registered: np.ndarray,
    u_reached: np.ndarray,
    u_declined: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Who is registered at follow-up and with which outcome (reached / not reached / declined).

    ``logit P(reached | registered) = intercept + improvement_z * z + mutual_agreement * [mutual] +
    interrupted * [interrupted]`` (:data:`params.FOLLOWUP_RESPONSE`): patients who did better respond more.

    Returns
    -------
    registered : bool array; outcome : array of "reached", "not_reached", "declined" (or "" when not registered).

    Examples
    --------
    >>> registered, outcome = followup_response(np.array([2.0, -2.0]), np.array(["mutual_agreement", "interrupted"]),
    ...     np.array([0.1, 0.1]), np.array([0.5, 0.5]), np.array([0.9, 0.9]))
    >>> registered.tolist(), outcome.tolist()  # P(reached) = expit(1.7) = 0.85 vs expit(-1.5) = 0.18
    ([True, True], ['reached', 'not_reached'])
    """
    c: dict[str, Any] = P.FOLLOWUP_RESPONSE
    lin = (
        c["intercept"]
        + c["improvement_z"] * improvement_z
        + c["mutual_agreement"] * (ending_type == "mutual_agreement")
        + c["interrupted"] * (ending_type == "interrupted")
    )
    registered = u_registered < P.FOLLOWUP_REGISTERED
    reached = u_reached < expit(lin)
    declined = u_declined < P.FOLLOWUP_DECLINED_SHARE
    outcome = np.where(reached, "reached", np.where(declined, "declined", "not_reached"))
    return registered, np.where(registered, outcome, "")
