"""The true parameters of the synthetic Kvarus registry (what estimators should recover).

Every number that shapes the synthetic data lives here, once, so the ground truth stored in
``registry.truth`` is exactly what generated the data. Code lists are never typed here: they are read from the
codebook at generation time.
"""

from __future__ import annotations

#: The four regional health authorities (regionale helseforetak).
REGIONS: tuple[str, ...] = ("Helse Sør-Øst", "Helse Vest", "Helse Midt-Norge", "Helse Nord")

#: Places and unit kinds that make Norwegian-like unit names (``"<kind> <place>"``), per region.
PLACES: dict[str, tuple[str, ...]] = {
    "Helse Sør-Øst": (
        "Oslo",
        "Drammen",
        "Fredrikstad",
        "Skien",
        "Hamar",
        "Kristiansand",
        "Tønsberg",
        "Gjøvik",
    ),
    "Helse Vest": ("Stavanger", "Bergen", "Haugesund", "Førde", "Voss", "Egersund"),
    "Helse Midt-Norge": ("Trondheim", "Ålesund", "Molde", "Levanger", "Namsos", "Kristiansund"),
    "Helse Nord": ("Tromsø", "Bodø", "Harstad", "Mo i Rana", "Hammerfest", "Narvik"),
}
OUTPATIENT_KINDS: tuple[str, ...] = ("Rus- og avhengighetspoliklinikk", "TSB poliklinikk", "Ruspoliklinikken")
INPATIENT_KINDS: tuple[str, ...] = ("Avrusningsenhet", "Døgnenhet rusbehandling", "Behandlingspost TSB")

#: Share of units that are inpatient (døgn).
INPATIENT_SHARE = 0.4

#: Course-start volume grows linearly over the period: density proportional to 1 + VOLUME_GROWTH * x, x in [0, 1].
VOLUME_GROWTH = 2.0

#: Number of courses per patient: P(1), P(2), P(3).
COURSES_PER_PATIENT = (0.82, 0.13, 0.05)
#: Days between an ending and the start of the patient's next course: 14 + exponential with this mean.
REPEAT_GAP_MEAN_DAYS = 200.0

#: Age at first course: 18 + gamma(shape, scale), clipped to [AGE_MIN, AGE_MAX].
AGE_SHAPE, AGE_SCALE, AGE_MIN, AGE_MAX = 2.2, 8.0, 16, 85
#: Share of patients who are women (PatientGender code of the label "Female").
FEMALE_SHARE = 0.30

#: Share of courses with a baseline registration, by setting (inpatient courses may start with a measurement point).
BASELINE_SHARE = {"inpatient": 0.75, "outpatient": 0.95}
#: Days between measurement points (pathway evaluation interval) by setting: uniform [low, high] per course.
MP_INTERVAL_DAYS = {"inpatient": (35, 49), "outpatient": (42, 84)}
#: Probability that a due measurement point is registered; at most MP_MAX registered points per course.
MP_COMPLIANCE = 0.8
MP_MAX = 12

#: Ending causes: behandlingsstatus code meaning -> base daily hazard (outpatient, severity 0, age 35).
ENDING_BASE_HAZARD = {"mutual_agreement": 1 / 320, "interrupted": 1 / 700, "transferred": 1 / 1600}
#: True log hazard ratios of each ending cause (cause-specific hazards, exponential times):
#: ``severity`` per 1 SD of the latent baseline severity, ``age10`` per 10 years of age above 35,
#: ``inpatient`` inpatient vs outpatient unit.
ENDING_LOG_HR = {
    "mutual_agreement": {"severity": -0.30, "age10": 0.10, "inpatient": 1.20},
    "interrupted": {"severity": 0.40, "age10": -0.25, "inpatient": 0.80},
    "transferred": {"severity": 0.15, "age10": 0.00, "inpatient": 1.00},
}

#: Latent problem process eta(t) = severity - g * (1 - exp(-t / TAU)); g ~ N(mean, sd) per course plus a unit effect.
IMPROVEMENT_MEAN, IMPROVEMENT_SD, UNIT_IMPROVEMENT_SD = 0.9, 0.75, 0.15
TAU_DAYS = 120.0
#: At the one-year follow-up the improvement reached at ending is kept by a factor drawn uniformly from this range.
FOLLOWUP_KEEP = (0.4, 1.2)

#: Continuous outcomes: mean at eta = 0, scale, loading on eta (sign: + = higher when worse), decimals.
CONTINUOUS = {
    "dager_rus_30": {"mean": 15.0, "scale": 9.0, "loading": 0.8, "decimals": 0},
    "dager_alkohol_30": {"mean": 7.0, "scale": 7.0, "loading": 0.6, "decimals": 0},
    "alvorlighet_rus": {"mean": 6.3, "scale": 2.0, "loading": 0.75, "decimals": 0},
    "livssituasjon": {"mean": 4.2, "scale": 2.0, "loading": -0.7, "decimals": 0},
    "psykiske_plager": {"mean": 25.0, "scale": 6.0, "loading": 0.65, "decimals": 1},
}
#: Extra days of alcohol use when the main substance is alcohol (the code whose English label is "Alcohol").
ALCOHOL_MAIN_EXTRA_DAYS = 8.0

#: Binary items (code labelled "Yes"): logit P(yes) = intercept + eta_coef * eta + opioid_coef * [main = opioids].
BINARY = {
    "injisert_30": {"intercept": -1.6, "eta_coef": 0.9, "opioid_coef": 1.6},
    "overdose_3m": {"intercept": -2.8, "eta_coef": 0.8, "opioid_coef": 1.0},
}
#: Ordinal items, codes in codebook order from best to worst (or, for NAV follow-up, least to most):
#: category = cut of (eta_coef * eta + N(0, 1)) at the normal quantiles of the cumulative baseline shares.
ORDINAL = {
    "bolig": {"shares": (0.62, 0.18, 0.08, 0.12), "eta_coef": 0.8},
    "arbeid_utdanning": {"shares": (0.22, 0.08, 0.70), "eta_coef": 0.7},
    "oppfolging_nav_frekvens": {"shares": (0.45, 0.20, 0.22, 0.13), "eta_coef": 0.5},
}
#: Satisfaction (tilfredshet, higher code = better): ordinal of (improvement so far + N(0, 1)), shares at g*f = 0.
SATISFACTION_SHARES = (0.05, 0.10, 0.25, 0.40, 0.20)
#: Main substance shares in codebook code order (alcohol, cannabis, opioids, stimulants, benzodiazepines, other).
MAIN_SUBSTANCE_SHARES = (0.36, 0.20, 0.14, 0.20, 0.05, 0.05)

#: Unit probabilities of "Ja" on plan_beh / plan_krise and of eval_utbytte in {4, 5}: evenly spread over these
#: ranges across units (shuffled), so they span the indicator bands (plan_beh 80/60, plan_krise 60/40, utbytte 80/60).
UNIT_PLAN_BEH = (0.45, 0.95)
UNIT_PLAN_KRISE = (0.25, 0.80)
UNIT_UTBYTTE = (0.45, 0.92)

#: Item non-response: probability that a data variable is missing on a registration that was filled in.
ITEM_NONRESPONSE = 0.03
#: Probability that an interrupted course's ending registration carries outcome answers (else status only).
INTERRUPTED_ENDING_ANSWERED = 0.4

#: One-year follow-up: registered at all (any of 5/6/7) with this probability once due and inside the extract.
FOLLOWUP_REGISTERED = 0.92
#: logit P(reached | registered) = intercept + coefficient * (standardised improvement at follow-up) + ending terms.
FOLLOWUP_RESPONSE = {"intercept": 0.15, "improvement_z": 0.6, "mutual_agreement": 0.35, "interrupted": -0.45}
#: Among registered but not reached: share "declined to answer" (7); the rest "not reached" (6).
FOLLOWUP_DECLINED_SHARE = 0.3
#: Follow-up registration date: ending + 365 + uniform [0, FOLLOWUP_WINDOW_DAYS] days.
FOLLOWUP_WINDOW_DAYS = 60

#: Coverage (dekningsgrad) of registered courses against expected courses: grows linearly from first to last year,
#: plus a unit effect (uniform +-COVERAGE_UNIT_SPREAD), clipped to [0.2, 0.98].
COVERAGE_FIRST, COVERAGE_LAST, COVERAGE_UNIT_SPREAD = 0.45, 0.85, 0.10

#: Opted-out share of patients (reservasjon) default.
OPT_OUT_SHARE = 0.05

#: Network work (seeds/004): per acute-psychiatry unit, probabilities. ``meeting`` = network meeting held;
#: ``invited``/``took_part`` per network party given a meeting; ``place`` shares (in hospital, outside, both).
NETWORK_UNITS = {
    "ambulant": {
        "name": "Ambulant akutteam Tromsø",
        "setting": "outpatient",
        "share_of_cases": 0.45,
        "meeting": 0.98,
        "invited": {"familie": 0.85, "fastlege": 0.55, "kommune": 0.50, "andre": 0.25},
        "took_part": {"familie": 0.75, "fastlege": 0.40, "kommune": 0.35, "andre": 0.18},
        "place": (0.20, 0.65, 0.15),
    },
    "ward": {
        "name": "Akuttpost Tromsø",
        "setting": "inpatient",
        "share_of_cases": 0.55,
        "meeting": 0.66,
        "invited": {"familie": 0.65, "fastlege": 0.30, "kommune": 0.80, "andre": 0.25},
        "took_part": {"familie": 0.50, "fastlege": 0.15, "kommune": 0.65, "andre": 0.18},
        "place": (0.75, 0.15, 0.10),
    },
}
#: Why the network was not invited (ikke_invitert_grunn), in codebook code order, when no meeting was held.
NETWORK_NOT_INVITED_SHARES = (0.45, 0.25, 0.20, 0.10)
#: Network-work cases: one per this many courses (at least NETWORK_MIN_CASES).
NETWORK_CASES_PER_COURSE, NETWORK_MIN_CASES = 0.05, 60
