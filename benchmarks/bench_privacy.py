"""Benchmark of the privacy layer (issue 4): pseudonymise a registry of 5,000,000 registration rows and 1,000,000
patients in ≤ 5 s; validate 1,000,000 identity numbers; protect a 2-D table.

At ``--scale N`` the registry has N patients, 1.25·N courses and 5·N registrations (built directly with numpy,
outside the timing). Run this file directly (``python benchmarks/bench_privacy.py --scale 1000000``) for a table.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any, NamedTuple


class Stage(NamedTuple):
    """One timed step (same fields as ``benchmarks/run.py``'s Stage)."""

    name: str
    rows: int
    run: Callable[[], int | None]


def build_registry(n_patients: int, seed: int = 1) -> Any:
    """A bare registry with GUID patient ids, string course ids and integer registration ids."""
    import numpy as np
    import pandas as pd

    from kvarus_research.registry import Registry
    from kvarus_research.synthetic.ids import guids

    rng = np.random.default_rng(seed)
    pids = guids(rng, n_patients)
    n_courses = n_patients + n_patients // 4
    course_patient = np.r_[np.arange(n_patients), rng.integers(0, n_patients, n_courses - n_patients)]
    course_patient.sort()
    course_ids = np.char.zfill(np.arange(1, n_courses + 1).astype(str), 8).astype(object)
    start = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 2000, n_courses), unit="D")
    n_regs = 5 * n_patients
    reg_course = np.sort(np.r_[np.arange(n_courses), rng.integers(0, n_courses, n_regs - n_courses)])
    first = np.r_[True, np.diff(reg_course) > 0]
    kind = np.where(first, "baseline", "measurement").astype(object)
    date = start.to_numpy()[reg_course] + (rng.integers(0, 300, n_regs) * (~first)).astype("timedelta64[D]")
    patients = pd.DataFrame(
        {
            "patient_id": pids,
            "reserved": False,
            "birth_date": pd.Timestamp("1980-01-01")
            + pd.to_timedelta(rng.integers(0, 15000, n_patients), unit="D"),
        }
    )
    courses = pd.DataFrame(
        {
            "course_id": course_ids,
            "patient_id": pids[course_patient],
            "unit_id": 1,
            "start_date": start,
            "end_date": pd.NaT,
            "ending_type": "active",
            "followup_status": "no_ending",
            "age_at_start": 40,
        }
    )
    regs = pd.DataFrame(
        {
            "registration_id": np.arange(1, n_regs + 1),
            "course_id": course_ids[reg_course],
            "patient_id": pids[course_patient][reg_course],
            "unit_id": 1,
            "kind": kind,
            "date": date,
        }
    )
    units = pd.DataFrame({"unit_id": [1]})
    return Registry(
        patients=patients,
        courses=courses,
        registrations=regs,
        units=units,
        extract_date=pd.Timestamp("2026-01-01"),
    )


def stages(scale: int) -> list[Stage]:
    """The timed stages at ``scale`` patients."""
    import numpy as np
    import pandas as pd

    from kvarus_research.privacy import make_national_ids, national_id, protect_crosstab
    from kvarus_research.privacy.pseudonym import pseudonymize

    reg = build_registry(scale)
    key = bytes(range(7, 47))
    ids = pd.Series(
        make_national_ids(pd.Series(pd.Timestamp("1985-03-04"), index=range(scale)), "male", "fnr", 1)
    )
    rng = np.random.default_rng(3)
    ct = pd.DataFrame(
        rng.integers(0, 40, (40, 12)),
        index=[f"u{i}" for i in range(40)],
        columns=[str(y) for y in range(2014, 2026)],
    )
    ct["All"] = ct.sum(axis=1)
    ct.loc["All"] = ct.sum(axis=0)

    def pseudo() -> int:
        pseudonymize(reg, key)
        return len(reg.registrations)

    return [
        Stage("pseudonymize", len(reg.registrations), pseudo),
        Stage("national_id", scale, lambda: len(national_id(ids))),
        Stage("protect_2d_40x12", ct.size, lambda: ct.size if protect_crosstab(ct) is not None else 0),
    ]


def main() -> None:  # pragma: no cover - manual use
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=1_000_000)
    args = parser.parse_args()
    for stage in stages(args.scale):
        t0 = time.perf_counter()
        rows = stage.run() or stage.rows
        dt = time.perf_counter() - t0
        print(f"{stage.name:<24}{rows:>12,}{dt:>9.2f} s{rows / dt:>14,.0f} rows/s")


if __name__ == "__main__":  # pragma: no cover
    main()
