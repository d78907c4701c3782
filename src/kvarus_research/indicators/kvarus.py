"""The Kvarus quality indicators (domain.md §2) with course-level denominators, and their target levels.

The register's own reporting code restricts to patients whose **first** measurement point (earliest
``dato_mp_beh``) has status aktiv and counts some denominators per registration row. Here the unit of analysis is
explicit (the course by default, the patient on request), each course enters at most once, a course whose first
measurement point is not active is left out (its later measurement points are *not* used instead), and missing
answers are left out of the denominator and counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from kvarus_research.errors import AnalysisError
from kvarus_research.indicators.framework import CIMethod, Indicator, Target
from kvarus_research.registry.constants import STATUS_ACTIVE

#: Registration kinds that are rows of the Målepunkt form (measurement points, and endings registered on it).
MEASUREMENT_KINDS: tuple[str, ...] = ("measurement", "ending")

#: Default target levels (domain.md §2): high (green) at or above ``high``, moderate (yellow) above ``moderate``.
DEFAULT_TARGETS: dict[str, Target] = {
    "plan_beh": Target(high=0.80, moderate=0.60),
    "plan_krise": Target(high=0.60, moderate=0.40),
    "utbytte": Target(high=0.80, moderate=0.60),
    "gjensidig": Target(high=0.80, moderate=0.60),
    "coverage": Target(high=0.80, moderate=0.60),
}

REASON_NO_MP = "no measurement point"
REASON_STATUS_MISSING = "status missing at first measurement point"
REASON_NOT_ACTIVE = "first measurement point not active"
REASON_ANSWER_MISSING = "answer missing"


def load_targets(config: Mapping[str, Any] | str | Path | None = None) -> dict[str, Target]:
    """Target levels per indicator key: the defaults, overridden by a mapping or a YAML file.

    Parameters
    ----------
    config : mapping, path or None
        ``{key: {"high": 0.8, "moderate": 0.6}}`` (or a YAML file holding that).

    Examples
    --------
    >>> load_targets({"plan_krise": {"high": 0.7, "moderate": 0.5}})["plan_krise"]
    Target(high=0.7, moderate=0.5)
    >>> load_targets()["plan_beh"]
    Target(high=0.8, moderate=0.6)
    """
    out = dict(DEFAULT_TARGETS)
    if config is None:
        return out
    if isinstance(config, str | Path):
        import yaml

        config = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    for key, levels in config.items():
        if isinstance(levels, Target):
            out[str(key)] = levels
            continue
        try:
            out[str(key)] = Target(high=float(levels["high"]), moderate=float(levels["moderate"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise AnalysisError(
                f"targets config, indicator {key!r}: expected {{high: <0-1>, moderate: <0-1>}}, got {levels!r}"
            ) from exc
    return out


_FIRST_CACHE: dict[tuple[int, str], tuple[Any, tuple[pd.DataFrame, np.ndarray]]] = {}


def _first_positions(registry: Any, per: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The population (one row per course or patient) and, aligned to it, the row position of its first
    measurement point in ``registry.registrations`` (-1: none). Cached per registrations table, so the four
    indicators share one pass over the registrations."""
    import weakref

    if per not in ("course", "patient"):
        raise AnalysisError(f"unit of analysis {per!r} is not one of 'course', 'patient'")
    regs = registry.registrations
    ck = (id(regs), per)
    hit = _FIRST_CACHE.get(ck)
    if hit is not None and hit[0]() is regs and len(hit[1][0]) == len(registry.courses.index):
        return hit[1]
    key = "course_id" if per == "course" else "patient_id"
    rows = np.flatnonzero(regs["kind"].isin(MEASUREMENT_KINDS).to_numpy())
    codes, uniques = pd.factorize(regs[key].to_numpy()[rows])
    dates = pd.DatetimeIndex(regs["date"].to_numpy()[rows]).asi8
    rank = regs["kind"].to_numpy()[rows] == "ending"
    order = np.lexsort((rows, rank, dates, codes))
    first = np.ones(len(order), dtype=bool)
    first[1:] = codes[order][1:] != codes[order][:-1]
    first_rows = rows[order[first]]
    first_keys = uniques[codes[order[first]]]
    pop = _population(registry, per)
    at = pd.Index(first_keys).get_indexer(pop[key].to_numpy())
    pos = np.where(at >= 0, first_rows[np.maximum(at, 0)] if len(first_rows) else -1, -1)
    if len(_FIRST_CACHE) > 8:
        _FIRST_CACHE.clear()
    _FIRST_CACHE[ck] = (weakref.ref(regs), (pop, pos))
    return pop, pos


def first_measurement(registry: Any, per: Literal["course", "patient"] = "course") -> pd.DataFrame:
    """The first measurement point (earliest Målepunkt registration) of every course or patient.

    Ties on the date are broken by kind (a measurement before an ending) and then by row order.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> reg = kr.synthetic.generate(n_courses=200, seed=1)
    >>> fm = first_measurement(reg)
    >>> bool(fm["course_id"].is_unique)
    True
    """
    _, pos = _first_positions(registry, per)
    return registry.registrations.iloc[pos[pos >= 0]].reset_index(drop=True)


def _pick(mask: np.ndarray, chosen: pd.Series, fallback: pd.Series) -> np.ndarray:
    """``chosen`` where ``mask`` else ``fallback``, keeping the dtype of ``fallback`` (no float unit ids)."""
    out = fallback.to_numpy().copy()
    out[mask] = chosen.to_numpy()[mask]
    return out


def _status_missing_codes(registry: Any) -> list[float]:
    """Codes of ``behandlingsstatus`` that mean missing (0 "velg verdi" in the bundled codebook)."""
    var = registry.codebook.by_role("status")
    return [float(c) for c in var.missing_codes] if var is not None else []


def _population(registry: Any, per: str) -> pd.DataFrame:
    courses = registry.courses.sort_values("start_date", kind="stable")
    if per == "patient":
        courses = courses.drop_duplicates("patient_id")
        return courses[["patient_id", "unit_id", "start_date"]].rename(columns={"start_date": "date"})
    return courses[["course_id", "unit_id", "start_date"]].rename(columns={"start_date": "date"})


def first_measurement_flags(
    registry: Any,
    variable: str,
    yes_codes: Iterable[int],
    *,
    per: Literal["course", "patient"] = "course",
) -> pd.DataFrame:
    """Flags of an indicator answered at the first measurement point of each course (or patient).

    Population: every course (patient) of the registry. Left out, with a reason: no measurement point; status
    missing or not aktiv (1) at the first measurement point; the answer missing (a missing code of the codebook,
    or empty). Numerator: the answer is one of ``yes_codes``; every other valid answer (e.g. "vet ikke") stays
    in the denominator. Unit and year are those of the first measurement point.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> f = first_measurement_flags(kr.synthetic.generate(n_courses=100, seed=1), "plan_beh", {2})
    >>> sorted(f.columns)
    ['date', 'denominator', 'exclusion', 'numerator', 'unit_id']
    """
    var = registry.codebook.variable(variable)
    regs = registry.registrations
    if variable not in regs.columns:
        raise AnalysisError(f"registrations have no column {variable!r} ({var.label_in('en')})")
    pop, pos = _first_positions(registry, per)
    has_mp = pos >= 0
    take = np.maximum(pos, 0)

    def col(name: str) -> np.ndarray:
        if not len(regs):
            return np.full(len(pos), np.nan)
        out = pd.to_numeric(regs[name].iloc[take], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        out[~has_mp] = np.nan
        return out

    status = col("status")
    answer = col(variable)
    valid = np.isin(answer, np.asarray(var.valid_codes or sorted(set(yes_codes)), dtype=float))
    yes = np.isin(answer, np.asarray(sorted(set(yes_codes)), dtype=float))
    reason = np.select(
        [
            ~has_mp,
            np.isnan(status) | np.isin(status, _status_missing_codes(registry)),
            status != STATUS_ACTIVE,
            ~valid,
        ],  # fmt: skip
        [1, 2, 3, 4],
        default=0,
    )
    exclusion = pd.Categorical.from_codes(
        reason - 1, categories=[REASON_NO_MP, REASON_STATUS_MISSING, REASON_NOT_ACTIVE, REASON_ANSWER_MISSING]
    )
    den = reason == 0
    return pd.DataFrame(
        {
            "unit_id": _pick(has_mp, regs["unit_id"].iloc[take], pop["unit_id"]),
            "date": np.where(
                has_mp, pd.DatetimeIndex(regs["date"].to_numpy()[take]), pd.DatetimeIndex(pop["date"])
            ),
            "denominator": den,
            "numerator": den & yes,
            "exclusion": exclusion,
        }
    )


def mutual_agreement_flags(
    registry: Any, *, transferred: Literal["exclude", "denominator"] = "exclude"
) -> pd.DataFrame:
    """Flags of "ended by mutual agreement" (status 4) among ended courses (status 3 or 4), per course.

    Transferred courses (status 2, overført annen juridisk enhet) did not end treatment, they moved it: by
    default they are left out with the reason "transferred"; ``transferred="denominator"`` counts them as ended
    without mutual agreement. Courses without an ending (still active) and endings without a status are left out
    and counted. Read from the course table (``ending_type``, derived from the ending registration's status);
    the unit is the course's unit and the year that of the ending.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> f = mutual_agreement_flags(kr.synthetic.generate(n_courses=100, seed=1))
    >>> bool((f["numerator"] <= f["denominator"]).all())
    True
    """
    if transferred not in ("exclude", "denominator"):
        raise AnalysisError(f"transferred={transferred!r}: expected 'exclude' or 'denominator'")
    c = registry.courses
    kind = c["ending_type"].astype(object).to_numpy()
    ended = c["end_date"].notna().to_numpy() & (kind != "active")
    in_den = np.isin(kind, ["mutual_agreement", "interrupted"])
    is_transfer = kind == "transferred"
    if transferred == "denominator":
        in_den |= is_transfer
    reason = np.select([~ended, is_transfer & ~in_den, ~in_den], [1, 2, 3], default=0)
    exclusion = pd.Categorical.from_codes(
        reason - 1, categories=["course not ended (active)", "transferred", "ending status missing"]
    )
    return pd.DataFrame(
        {
            "unit_id": c["unit_id"].to_numpy(),
            "date": np.where(ended, pd.DatetimeIndex(c["end_date"]), pd.DatetimeIndex(c["start_date"])),
            "denominator": in_den,
            "numerator": in_den & (kind == "mutual_agreement"),
            "exclusion": exclusion,
        }
    )


_FIRST_MP_POP = "courses whose first measurement point (earliest Målepunkt registration) has status aktiv (1)"


def feedback_indicator(
    key: str,
    variable: str,
    yes_codes: Iterable[int],
    label: str,
    *,
    per: Literal["course", "patient"] = "course",
    target: Target | None = None,
) -> Indicator:
    """An indicator answered at the first measurement point (treatment plan, crisis plan, benefit ...).

    Examples
    --------
    >>> ind = feedback_indicator("plan_beh_pat", "plan_beh", {2}, "Treatment plan (per patient)", per="patient")
    >>> ind.unit_of_analysis, ind.registration
    ('patient', "first measurement point of the patient's earliest course")
    """
    yes = tuple(sorted(set(yes_codes)))
    registration = (
        "first measurement point of the course"
        if per == "course"
        else "first measurement point of the patient's earliest course"
    )
    population = _FIRST_MP_POP if per == "course" else _FIRST_MP_POP.replace("courses", "patients")
    return Indicator(
        key=key,
        label=label,
        flags=lambda reg: first_measurement_flags(reg, variable, yes, per=per),
        population=population,
        numerator=f"{variable} in {list(yes)} at that measurement point",
        denominator=f"{per}s in the population with a valid answer to {variable} (missing answers left out and "
        "counted; other valid answers such as 'vet ikke' stay in the denominator)",
        unit_of_analysis=per,
        registration=registration,
        target=target if target is not None else DEFAULT_TARGETS.get(key),
    )


TREATMENT_PLAN = feedback_indicator("plan_beh", "plan_beh", {2}, "Treatment plan in place (behandlingsplan)")
CRISIS_PLAN = feedback_indicator("plan_krise", "plan_krise", {2}, "Crisis plan in place (kriseplan)")
BENEFIT = feedback_indicator(
    "utbytte", "eval_utbytte", {4, 5}, "Experienced benefit large or very large (utbytte)"
)
MUTUAL_AGREEMENT = Indicator(
    key="gjensidig",
    label="Ended by mutual agreement (gjensidig avtale)",
    flags=mutual_agreement_flags,
    population="courses with an ending registration",
    numerator="ending status 4 (avsluttet med gjensidig avtale)",
    denominator="courses ended with status 3 (avbrutt) or 4 (avsluttet med gjensidig avtale)",
    unit_of_analysis="course",
    registration="the ending registration of the course (courses.ending_type); unit = the course's unit",
    target=DEFAULT_TARGETS["gjensidig"],
    notes=("transferred courses (status 2) are left out of the denominator and counted",),
)

#: The four Kvarus indicators by key.
KVARUS_INDICATORS: dict[str, Indicator] = {
    i.key: i for i in (TREATMENT_PLAN, CRISIS_PLAN, BENEFIT, MUTUAL_AGREEMENT)
}


def kvarus_indicators(
    data: Any,
    *,
    n_limit: int = 10,
    ci_method: CIMethod = "wilson",
    targets: Mapping[str, Any] | str | Path | None = None,
    keys: Iterable[str] | None = None,
) -> dict[str, Any]:
    """All four Kvarus indicators (or ``keys``) per unit, pooled small units, region, nation and year.

    Returns
    -------
    dict
        indicator key → :class:`~kvarus_research.indicators.result.IndicatorResult`.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> res = kvarus_indicators(kr.synthetic.generate(n_courses=300, seed=2))
    >>> sorted(res)
    ['gjensidig', 'plan_beh', 'plan_krise', 'utbytte']
    """
    from kvarus_research.indicators.framework import as_registry

    registry = as_registry(data)
    target_map = load_targets(targets)
    wanted = list(keys) if keys is not None else list(KVARUS_INDICATORS)
    unknown = [k for k in wanted if k not in KVARUS_INDICATORS]
    if unknown:
        raise AnalysisError(f"unknown indicator key(s) {unknown}; known: {list(KVARUS_INDICATORS)}")
    return {
        k: KVARUS_INDICATORS[k].compute(registry, n_limit=n_limit, ci_method=ci_method, targets=target_map)
        for k in wanted
    }
