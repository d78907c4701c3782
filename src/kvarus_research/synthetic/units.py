"""Units, coverage (dekningsgrad) and network-work registrations of the synthetic registry."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.codebook import Codebook
from kvarus_research.synthetic import params as P
from kvarus_research.synthetic.ids import guids
from kvarus_research.synthetic.trajectories import code_with_label


def make_units(rng: np.random.Generator, n_units: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The TSB units (id, Norwegian-like name, region, setting, size weight, true unit-level parameters in
    ``_``-prefixed columns) and the ids of the two network-work units.

    Units are spread evenly over the four health regions; the probabilities of "Ja" on ``plan_beh`` /
    ``plan_krise`` and of ``eval_utbytte`` in {4, 5} are evenly spaced over the ranges in :mod:`params` and
    shuffled, so units span the indicator target bands.

    Examples
    --------
    >>> units, network_ids = make_units(np.random.default_rng(0), 8)
    >>> units["region"].value_counts().to_dict(), len(network_ids)
    ({'Helse Sør-Øst': 2, 'Helse Vest': 2, 'Helse Midt-Norge': 2, 'Helse Nord': 2}, 2)
    """
    ids = np.sort(rng.choice(np.arange(100_000, 999_999), size=n_units + 2, replace=False))
    unit_ids, network_ids = ids[:n_units], ids[n_units:]
    region = np.array([P.REGIONS[i % len(P.REGIONS)] for i in range(n_units)])
    inpatient = rng.random(n_units) < P.INPATIENT_SHARE
    inpatient[: min(n_units, 2)] = [False, True][
        : min(n_units, 2)
    ]  # both settings whenever there are two units
    names = []
    used: set[str] = set()
    for i in range(n_units):
        kinds = P.INPATIENT_KINDS if inpatient[i] else P.OUTPATIENT_KINDS
        places = P.PLACES[region[i]]
        for _attempt in range(100):
            name = f"{kinds[rng.integers(len(kinds))]} {places[rng.integers(len(places))]}"
            if name not in used:
                break
        else:  # pragma: no cover - only with far more units than names
            name = f"{name} {i + 1}"
        used.add(name)
        names.append(name)

    def spread(lo_hi: tuple[float, float]) -> np.ndarray:
        return (
            rng.permutation(np.linspace(lo_hi[0], lo_hi[1], n_units))
            if n_units > 1
            else np.array([np.mean(lo_hi)])
        )

    return pd.DataFrame(
        {
            "unit_id": unit_ids.astype(np.int64),
            "unit_name": names,
            "region": region,
            "setting": np.where(inpatient, "inpatient", "outpatient"),
            "_weight": rng.lognormal(0.0, 0.5, n_units),
            "_p_plan_beh": spread(P.UNIT_PLAN_BEH),
            "_p_plan_krise": spread(P.UNIT_PLAN_KRISE),
            "_p_utbytte": spread(P.UNIT_UTBYTTE),
            "_improvement": rng.normal(0.0, P.UNIT_IMPROVEMENT_SD, n_units),
            "_coverage": rng.uniform(-P.COVERAGE_UNIT_SPREAD, P.COVERAGE_UNIT_SPREAD, n_units),
        }
    ), network_ids.astype(np.int64)


def coverage_table(
    rng: np.random.Generator,
    units: pd.DataFrame,
    courses: pd.DataFrame,
    reserved: np.ndarray,
    first: int,
    last: int,
) -> tuple[pd.DataFrame, dict[int, float]]:
    """Expected courses per unit and year such that registered / expected grows from ``COVERAGE_FIRST`` to
    ``COVERAGE_LAST`` (plus a unit effect); ``reserved_courses`` counts opted-out patients' courses.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> cov = kr.synthetic.generate(2000, seed=1).coverage
    >>> cov.columns.tolist()
    ['unit_id', 'year', 'expected_courses', 'reserved_courses']
    """
    years = np.arange(first, last + 1)
    frac = (years - first) / max(last - first, 1)
    national = P.COVERAGE_FIRST + (P.COVERAGE_LAST - P.COVERAGE_FIRST) * frac
    year = pd.to_datetime(courses["start_date"]).dt.year.to_numpy()
    grid = pd.MultiIndex.from_product([units["unit_id"].to_numpy(), years], names=["unit_id", "year"])
    key = pd.MultiIndex.from_arrays([courses["unit_id"].to_numpy(), year], names=["unit_id", "year"])
    registered = pd.Series(1, index=key).groupby(level=[0, 1]).sum().reindex(grid, fill_value=0)
    held_back = (
        pd.Series(reserved.astype(np.int64), index=key)
        .groupby(level=[0, 1])
        .sum()
        .reindex(grid, fill_value=0)
    )
    rate = np.clip(np.add.outer(units["_coverage"].to_numpy(), national).ravel(), 0.2, 0.98)
    noise = rng.uniform(0.97, 1.03, len(rate))
    expected = np.ceil(registered.to_numpy() / (rate * noise)).astype(np.int64)
    table = pd.DataFrame(
        {
            "unit_id": grid.get_level_values(0).astype(np.int64),
            "year": grid.get_level_values(1).astype(np.int64),
            "expected_courses": expected,
            "reserved_courses": held_back.to_numpy().astype(np.int64),
        }
    )
    return table, {int(y): round(float(r), 4) for y, r in zip(years, national, strict=True)}


def network_work(
    rng: np.random.Generator,
    codebook: Codebook,
    network_ids: np.ndarray,
    n_cases: int,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Network-work registrations at discharge for an ambulant acute team and an acute ward (seeds/004).

    Returns the table, the two units (to append to ``units``) and the true probabilities per unit.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> table, units, truth = network_work(np.random.default_rng(0), kr.load_codebook(), np.array([1, 2]), 200,
    ...                                    pd.Timestamp("2020-01-01"), pd.Timestamp("2020-12-31"))
    >>> len(table), units["unit_name"].tolist(), truth[2]["meeting"]
    (200, ['Ambulant akutteam Tromsø', 'Akuttpost Tromsø'], 0.66)
    """
    specs = list(P.NETWORK_UNITS.values())
    shares = np.array([s["share_of_cases"] for s in specs])
    which = rng.choice(len(specs), size=n_cases, p=shares / shares.sum())
    span = (end - start).days
    dates = start + pd.to_timedelta(np.sort(rng.integers(0, span + 1, n_cases)), unit="D")
    yes = code_with_label(codebook, "nettverksmote", "Yes")
    no = code_with_label(codebook, "nettverksmote", "No")
    meeting = rng.random(n_cases) < np.array([s["meeting"] for s in specs])[which]
    data: dict[str, Any] = {
        "case_id": np.arange(1, n_cases + 1, dtype=np.int64),
        "patient_id": guids(rng, n_cases),
        "unit_id": network_ids[which],
        "date": dates,
        "nettverksmote": pd.array(np.where(meeting, yes, no), dtype="Int64"),
    }
    for party in ("familie", "fastlege", "kommune", "andre"):
        p_inv = np.array([s["invited"][party] for s in specs])[which]
        p_took = np.array([s["took_part"][party] / s["invited"][party] for s in specs])[which]
        invited = rng.random(n_cases) < np.where(meeting, p_inv, p_inv * 0.3)
        took = meeting & invited & (rng.random(n_cases) < p_took)
        data[f"invitert_{party}"] = pd.array(invited, dtype="boolean")
        data[f"deltok_{party}"] = pd.array(took, dtype="boolean")
    place_codes = np.array(codebook.variable("mote_sted").valid_codes)
    cum = np.cumsum(np.array([s["place"] for s in specs]), axis=1)[which]
    place = place_codes[np.minimum((rng.random(n_cases)[:, None] > cum).sum(axis=1), len(place_codes) - 1)]
    data["mote_sted"] = pd.arrays.IntegerArray(place.astype(np.int64), ~meeting)  # asked only after a meeting
    reason_codes = np.array(codebook.variable("ikke_invitert_grunn").valid_codes)
    reason_p = np.array(P.NETWORK_NOT_INVITED_SHARES)
    reason = reason_codes[
        np.searchsorted(np.cumsum(reason_p / reason_p.sum())[:-1], rng.random(n_cases), side="right")
    ]
    data["ikke_invitert_grunn"] = pd.arrays.IntegerArray(reason.astype(np.int64), meeting)  # only without one
    sex_codes = np.array(
        [
            code_with_label(codebook, "PatientGender", "Male"),
            code_with_label(codebook, "PatientGender", "Female"),
        ]
    )
    data["sex"] = pd.array(sex_codes[(rng.random(n_cases) < 0.5).astype(int)], dtype="Int64")
    table = pd.DataFrame(data)
    table = table[
        [
            c
            for c in table.columns
            if c in ("case_id", "patient_id", "unit_id", "date", "sex") or c in codebook
        ]
    ]
    units = pd.DataFrame(
        {
            "unit_id": network_ids,
            "unit_name": [s["name"] for s in specs],
            "region": "Helse Nord",
            "setting": [s["setting"] for s in specs],
        }
    )
    truth = {
        int(uid): {
            "unit_name": s["name"],
            "meeting": s["meeting"],
            "invited_given_meeting": dict(s["invited"]),
            "took_part_given_meeting": dict(s["took_part"]),
            "place_shares": dict(zip(("in_hospital", "outside", "both"), s["place"], strict=True)),
        }
        for uid, s in zip(network_ids, specs, strict=True)
    }
    return table, units, truth
