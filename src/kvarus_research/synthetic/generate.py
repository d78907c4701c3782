"""``generate()``: a realistic synthetic Kvarus registry with its ground truth."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kvarus_research.codebook import Codebook, load_codebook
from kvarus_research.errors import KvarusError
from kvarus_research.registry import Registry, summarise_courses
from kvarus_research.registry.constants import (
    ENDING_STATUS_CODE,
    FOLLOWUP_GRACE_DAYS,
    FOLLOWUP_STATUS_CODE,
    KIND_ORDER,
)
from kvarus_research.synthetic import params as P
from kvarus_research.synthetic.ids import guids
from kvarus_research.synthetic.skeleton import CAUSES, course_skeleton, measurement_points
from kvarus_research.synthetic.trajectories import (
    code_with_label,
    followup_response,
    item_values,
    unit_feedback,
)
from kvarus_research.synthetic.truth import build_truth
from kvarus_research.synthetic.units import coverage_table, make_units, network_work

#: Timepoints whose latent outcome values are kept on the courses table as ``latent_<variable>_<timepoint>``.
LATENT_TIMEPOINTS: tuple[str, ...] = ("baseline", "ending", "followup")


def _nullable(values: np.ndarray, missing: np.ndarray, kind: str) -> pd.api.extensions.ExtensionArray:
    """A pandas nullable array (Int64 or Float64) from values and a missing mask, without a Python loop."""
    if kind == "float":
        return pd.arrays.FloatingArray(np.asarray(values, dtype=np.float64), missing)
    return pd.arrays.IntegerArray(
        np.nan_to_num(np.asarray(values, dtype=np.float64)).astype(np.int64), missing
    )


def generate(
    n_courses: int = 5000,
    *,
    seed: int = 0,
    start: str = "2020-01-01",
    end: str = "2025-12-31",
    extract_date: str = "2026-06-30",
    n_units: int = 20,
    opt_out_share: float = P.OPT_OUT_SHARE,
    progress: bool = False,
    codebook: Codebook | None = None,
    unit_effects: Mapping[int, float] | None = None,
) -> Registry:
    """A synthetic Kvarus registry with known ground truth, deterministic per seed.

    Courses start between ``start`` and ``end`` at ``n_units`` TSB units in the four health regions (volume
    growing over time); each course has a baseline registration (inpatient courses sometimes start with a
    measurement point instead), measurement points at pathway intervals, an ending with a cause drawn from
    competing hazards that depend on baseline severity, age and setting (or none: still active at
    ``extract_date``), and a one-year follow-up once due whose response depends on how the patient did. About
    ``opt_out_share`` of patients have opted out (``patients.reserved``): their rows stay in the tables, for
    coverage figures only. Two acute-psychiatry units carry network-work registrations (seeds/004).

    Parameters
    ----------
    n_courses : int
        Number of treatment courses (exact).
    seed : int
        Seed of the numpy random generator: the same seed gives the same registry.
    start, end : str
        First and last possible course start (ISO dates).
    extract_date : str
        Date of the extract: courses still open then are active; follow-ups are owed only when due before it.
    n_units : int
        Number of TSB units (the two network-work units come on top).
    opt_out_share : float
        Probability that a patient has opted out (reservasjon).
    progress : bool
        Show a progress bar (tqdm).
    codebook : Codebook, optional
        The codebook the data follow (the bundled one by default). Code lists and ranges are read from it.
    unit_effects : mapping of int to float, optional
        A known unit effect on the mutual-agreement indicator (``gjensidig``), to test case-mix adjustment:
        ``{position: log_hr}`` multiplies the hazard of ending by mutual agreement at the TSB unit at that
        0-based position of ``registry.units`` by ``exp(log_hr)``, which shifts the log odds of mutual agreement
        among courses ended by mutual agreement or interruption by exactly ``log_hr`` (constant cause-specific
        hazards). Recorded in ``truth["unit_effects"]`` and ``truth["units"]``. Off by default: without it the
        registry is the same, to the byte, as before the option existed. With it, the endings of every course of
        the affected units change and, through their durations, the rest of the registry differs too.

    Returns
    -------
    Registry
        Tables ``patients`` (with ``birth_date``), ``courses`` (from
        :func:`kvarus_research.registry.summarise_courses`, plus the latent columns below), ``registrations``,
        ``units`` (with ``acute_psychiatry`` marking the network-work units), ``network_work`` and ``coverage``;
        ``meta`` holds the generator settings and ``truth`` the ground truth.

        ``courses`` gains, for the synthetic registry only: ``latent_severity`` (baseline severity in SD units,
        the covariate of the true ending hazards) and ``latent_<outcome>_<baseline|ending|followup>`` for every
        continuous outcome: the value the patient would have reported at that timepoint (NA when the course has
        no ending, or no follow-up due), whether or not it was registered.

    Notes
    -----
    ``truth`` (a YAML-serialisable dict; population: courses of patients who did not opt out) has the keys

    - ``change[outcome]``: ``direction``, ``baseline_to_ending`` and ``baseline_to_followup`` (sample mean of the
      latent change, later minus baseline, over all ended courses / all courses whose follow-up is due,
      respondents or not), ``n_ending``, ``n_followup``, and ``complete_case_followup`` (the same mean over
      follow-up respondents with both values registered: the biased estimate).
    - ``categorical[variable]``: share with the "worst" code (Yes for injection/overdose, homeless, neither work
      nor education, ...) at baseline / ending / follow-up among the same courses.
    - ``ending_hazards``: ``base_hazard_per_day`` and ``log_hr`` per cause (``severity`` per SD of
      ``latent_severity``, ``age10`` per 10 years above 35 at start, ``inpatient`` vs outpatient unit);
      cause-specific exponential hazards.
    - ``followup_response``: logit coefficients of being reached given registered, the standardisation of the
      latent improvement (``improvement_mean``, ``improvement_sd``), ``p_registered``, ``declined_share``.
    - ``units[unit_id]``: ``p_plan_beh``, ``p_plan_krise``, ``p_eval_utbytte_4_5``, ``improvement_effect``.
    - ``coverage_by_year``: national coverage rate per start year; ``opt_out_share``.
    - only with ``unit_effects``: ``unit_effects`` (the indicator, the model and the log odds shift per unit id)
      and ``units[unit_id]["mutual_agreement_log_hr"]`` (0 for the units without an effect).
    - ``network_work[unit_id]``: meeting probability, invited / took-part probabilities given a meeting, place
      shares.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> reg = kr.synthetic.generate(n_courses=200, seed=1)
    >>> reg.n_courses, bool(reg.validate() is reg)
    (200, True)
    >>> sorted(reg.truth["change"])[:2]
    ['alvorlighet_rus', 'dager_alkohol_30']
    """
    if n_courses < 1:
        raise KvarusError(f"generate: n_courses must be at least 1, got {n_courses}")
    if n_units < 1:
        raise KvarusError(f"generate: n_units must be at least 1, got {n_units}")
    if not 0 <= opt_out_share < 1:
        raise KvarusError(f"generate: opt_out_share must lie in [0, 1), got {opt_out_share}")
    shift = None
    if unit_effects:
        bad = [k for k in unit_effects if not (isinstance(k, (int, np.integer)) and 0 <= k < n_units)]
        if bad:
            raise KvarusError(
                f"generate: unit_effects keys are unit positions 0..{n_units - 1} (the order of registry.units),"
                f" got {bad}"
            )
        if not all(np.isfinite(float(v)) for v in unit_effects.values()):
            raise KvarusError("generate: unit_effects values (log hazard ratios) must be finite numbers")
        shift = np.zeros(n_units)
        for k, v in unit_effects.items():
            shift[int(k)] = float(v)
    cb = codebook or load_codebook()
    rng = np.random.default_rng(seed)
    t0, t1, tx = pd.Timestamp(start), pd.Timestamp(end), pd.Timestamp(extract_date)
    span, horizon = (t1 - t0).days, (tx - t0).days
    if span < 0 or horizon <= span:
        raise KvarusError(
            f"generate: need start <= end < extract_date, got start={start}, end={end}, extract_date={extract_date}"
        )
    bar = tqdm(total=5, desc="synthetic registry", disable=not progress)
    n = n_courses
    units, network_ids = make_units(rng, n_units)
    sk = course_skeleton(rng, n, units, span, horizon, mutual_log_hr=shift)
    bar.update()

    upos = sk["unit_pos"]
    inpatient = units["setting"].to_numpy()[upos] == "inpatient"
    main_codes = np.array(cb.variable("hovedrusmiddel").valid_codes)
    shares = np.array(
        P.MAIN_SUBSTANCE_SHARES
        if len(P.MAIN_SUBSTANCE_SHARES) == len(main_codes)
        else [1.0] * len(main_codes)
    )
    main = main_codes[rng.choice(len(main_codes), size=n, p=shares / shares.sum())]
    opioid = (main == code_with_label(cb, "hovedrusmiddel", "Opioids")).astype(float)
    alcohol = (main == code_with_label(cb, "hovedrusmiddel", "Alcohol")).astype(float)
    z = sk["z"]
    g = rng.normal(P.IMPROVEMENT_MEAN, P.IMPROVEMENT_SD, n) + units["_improvement"].to_numpy()[upos]
    keep = rng.uniform(*P.FOLLOWUP_KEEP, n)
    start_day, end_day, ended = sk["start"], sk["end"], sk["ended"]
    dur = np.where(ended, end_day - start_day, horizon - start_day).astype(float)
    due = ended & (end_day + 365 + FOLLOWUP_GRACE_DAYS <= horizon)
    has_baseline = rng.random(n) < np.where(
        inpatient, P.BASELINE_SHARE["inpatient"], P.BASELINE_SHARE["outpatient"]
    )

    mp_course, mp_day = measurement_points(rng, dur, inpatient, has_baseline)
    bar.update()

    # virtual rows: baseline (0..n-1), ending (n..2n-1), follow-up (2n..3n-1), measurement points (3n..)
    gain_end = g * (1.0 - np.exp(-dur / P.TAU_DAYS))
    gain_fu = gain_end * keep
    gain_mp = g[mp_course] * (1.0 - np.exp(-mp_day / P.TAU_DAYS))
    v_course = np.concatenate([np.arange(n), np.arange(n), np.arange(n), mp_course])
    v_eta = np.concatenate([z, z - gain_end, z - gain_fu, z[mp_course] - gain_mp])
    v_gain = np.concatenate([np.zeros(n), gain_end, gain_fu, gain_mp])
    values = item_values(cb, rng, v_eta, v_gain, opioid[v_course], alcohol[v_course])
    values["hovedrusmiddel"] = main[v_course]

    # one-year follow-up: registered and reached depending on the latent improvement
    imp_mean = float(gain_fu[due].mean()) if due.any() else 0.0
    imp_sd = float(gain_fu[due].std()) if due.sum() > 1 else 1.0
    cause_names = np.array(CAUSES)[sk["cause"]]
    registered, fu_outcome = followup_response(
        (gain_fu - imp_mean) / (imp_sd or 1.0), cause_names, rng.random(n), rng.random(n), rng.random(n)
    )
    fu_rows = np.flatnonzero(due & registered)
    fu_day = end_day[fu_rows] + 365 + rng.integers(0, P.FOLLOWUP_WINDOW_DAYS + 1, len(fu_rows))
    bar.update()

    # registrations: pick the virtual rows that were registered
    end_rows = np.flatnonzero(ended)
    base_rows = np.flatnonzero(has_baseline)
    pick = np.concatenate([base_rows, 3 * n + np.arange(len(mp_course)), n + end_rows, 2 * n + fu_rows])
    kind = np.concatenate(
        [
            np.full(len(base_rows), KIND_ORDER["baseline"]),
            np.full(len(mp_course), KIND_ORDER["measurement"]),
            np.full(len(end_rows), KIND_ORDER["ending"]),
            np.full(len(fu_rows), KIND_ORDER["followup"]),
        ]
    ).astype(np.int8)
    course = v_course[pick]
    day = np.concatenate(
        [start_day[base_rows], start_day[mp_course] + mp_day, end_day[end_rows], fu_day]
    ).astype(np.int64)
    status = np.concatenate(
        [
            np.zeros(len(base_rows)),
            np.ones(len(mp_course)),
            np.array([ENDING_STATUS_CODE[c] for c in CAUSES])[sk["cause"][end_rows]],
            np.select(
                [fu_outcome[fu_rows] == o for o in FOLLOWUP_STATUS_CODE],
                list(FOLLOWUP_STATUS_CODE.values()),
                default=0,
            ),
        ]
    )
    order = np.lexsort((kind, day, course))
    pick, kind, course, day, status = pick[order], kind[order], course[order], day[order], status[order]
    n_reg = len(pick)
    # which data variables each row carries
    silent = np.zeros(n_reg, dtype=bool)
    silent |= (kind == KIND_ORDER["followup"]) & (status != FOLLOWUP_STATUS_CODE["reached"])
    interrupted = (kind == KIND_ORDER["ending"]) & (status == ENDING_STATUS_CODE["interrupted"])
    silent |= interrupted & (rng.random(n_reg) >= P.INTERRUPTED_ENDING_ANSWERED)
    on_baseline_form = kind == KIND_ORDER["baseline"]
    forms = {f.kind: f.name for f in cb.forms}
    data_vars = [
        v for v in cb.data_variables() if forms.get("baseline") in v.forms or forms.get("status") in v.forms
    ]
    kind_names = np.array(list(KIND_ORDER))
    patient = sk["patient"][course]
    pids = guids(rng, sk["n_patients"])
    width = max(6, len(str(n)))
    course_ids = np.char.zfill(np.arange(1, n + 1).astype(str), width).astype(object)
    male_code = code_with_label(cb, "PatientGender", "Male")
    female_code = code_with_label(cb, "PatientGender", "Female")
    sex = np.where(sk["female"], female_code, male_code)
    birth = sk["birth"]
    day0 = np.datetime64(t0.date(), "D")
    cols: dict[str, Any] = {
        "registration_id": np.arange(1, n_reg + 1, dtype=np.int64),
        "course_id": course_ids[course],
        "patient_id": pids[patient],
        "unit_id": units["unit_id"].to_numpy()[upos][course],
        "kind": kind_names[kind].astype(object),
        "date": (day0 + day).astype("datetime64[ns]"),
        "status": _nullable(status, kind == KIND_ORDER["baseline"], "int"),
        "age": np.floor((day - birth[patient]) / 365.25).astype(np.int64),
        "sex": sex[patient].astype(np.int64),
    }
    # patient feedback (unit-level probabilities), drawn for the registrations only
    feedback = unit_feedback(
        cb,
        rng,
        units["_p_plan_beh"].to_numpy()[upos][course],
        units["_p_plan_krise"].to_numpy()[upos][course],
        units["_p_utbytte"].to_numpy()[upos][course],
    )
    observed_base: dict[str, np.ndarray] = {}
    observed_fu: dict[str, np.ndarray] = {}
    for var in data_vars:
        on_form = np.where(
            on_baseline_form, forms.get("baseline") in var.forms, forms.get("status") in var.forms
        )
        if var.name in ("plan_beh", "plan_krise", "eval_utbytte"):
            on_form &= kind != KIND_ORDER["followup"]
        vals = feedback[var.name] if var.name in feedback else values.get(var.name)
        missing = ~on_form | silent | (rng.random(n_reg, dtype=np.float32) < P.ITEM_NONRESPONSE)
        if vals is None:
            missing[:] = True
            vals = np.zeros(len(v_course))
        if var.name not in feedback:
            vals = np.asarray(vals)[pick]
        cols[var.name] = _nullable(vals, missing, "float" if var.type == "float" else "int")
        # registered values per course, for the complete-case figure in the truth
        if var.name in P.CONTINUOUS:
            obs = np.where(missing, np.nan, np.asarray(vals, dtype=float))
            for k_name, store in (("baseline", observed_base), ("followup", observed_fu)):
                rows = kind == KIND_ORDER[k_name]
                if k_name == "followup":
                    rows &= status == FOLLOWUP_STATUS_CODE["reached"]
                arr = np.full(n, np.nan)
                arr[course[rows]] = obs[rows]
                store[var.name] = arr
    regs = pd.DataFrame(cols, copy=False)
    del cols
    bar.update()

    structural = regs[["course_id", "patient_id", "unit_id", "date", "status", "age"]].assign(
        kind=pd.Categorical.from_codes(kind, categories=list(kind_names))  # categorical: a faster sort
    )
    courses = summarise_courses(structural, tx)
    del structural
    if not np.array_equal(courses["course_id"].to_numpy(dtype=object), course_ids):
        raise AssertionError("internal: course order of summarise_courses differs")  # pragma: no cover
    latent: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    extra: dict[str, np.ndarray] = {"latent_severity": z}
    for name in P.CONTINUOUS:
        if name not in values:
            continue
        vals = np.asarray(values[name], dtype=float)
        latent[name] = (
            vals[:n],
            np.where(ended, vals[n : 2 * n], np.nan),
            np.where(due, vals[2 * n : 3 * n], np.nan),
        )
        for tp, arr in zip(LATENT_TIMEPOINTS, latent[name], strict=True):
            extra[f"latent_{name}_{tp}"] = arr
    courses = pd.concat([courses, pd.DataFrame(extra, index=courses.index, copy=False)], axis=1)
    reserved_patient = rng.random(sk["n_patients"]) < opt_out_share
    patients = pd.DataFrame(
        {
            "patient_id": pids,
            "sex": pd.array(sex, dtype="Int64"),
            "reserved": reserved_patient,
            "birth_date": (day0 + np.floor(birth).astype(np.int64)).astype("datetime64[ns]"),
        }
    )
    coverage, coverage_rates = coverage_table(
        rng, units, courses, reserved_patient[sk["patient"]], t0.year, t1.year
    )
    n_cases = max(P.NETWORK_MIN_CASES, int(round(P.NETWORK_CASES_PER_COURSE * n)))
    network, network_units, network_truth = network_work(rng, cb, network_ids, n_cases, t0, t1)
    unit_table = pd.concat(
        [
            units[["unit_id", "unit_name", "region", "setting"]].assign(acute_psychiatry=False),
            network_units.assign(acute_psychiatry=True),
        ],
        ignore_index=True,
    )
    truth = build_truth(
        cb,
        latent=latent,
        observed=(observed_base, observed_fu),
        values=values,
        n=n,
        ended=ended,
        due=due,
        keep_course=~reserved_patient[sk["patient"]],
        units=units,
        coverage_rates=coverage_rates,
        network_truth=network_truth,
        improvement=(imp_mean, imp_sd),
        opt_out_share=opt_out_share,
        mutual_log_hr=shift,
    )
    bar.update()
    bar.close()
    meta = {
        "source": "synthetic",
        "seed": int(seed),
        "n_courses": int(n),
        "start": t0.strftime("%Y-%m-%d"),
        "end": t1.strftime("%Y-%m-%d"),
        "n_units": int(n_units),
        "opt_out_share": float(opt_out_share),
    }
    if shift is not None:
        meta["unit_effects"] = [  # a list, so that it survives a JSON round trip (to_parquet) unchanged
            {"position": int(k), "log_hr": float(v)}
            for k, v in sorted(unit_effects.items())  # type: ignore[union-attr]
        ]
    return Registry(
        patients=patients,
        courses=courses,
        registrations=regs,
        units=unit_table,
        network_work=network,
        coverage=coverage,
        codebook=cb,
        extract_date=tx,
        truth=truth,
        meta=meta,
    )
