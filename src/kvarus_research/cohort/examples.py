"""Tiny hand-made registries with known answers, used by the cohort tests, the docs and docstring examples.

Each docstring lists the courses so the expected flows and timepoints can be worked out by hand.

Examples
--------
>>> from kvarus_research.cohort.examples import flow_registry
>>> reg = flow_registry()
>>> len(reg.courses), len(reg.reserved_patients())
(8, 1)
"""

from __future__ import annotations

import pandas as pd

from kvarus_research import Registry

UNITS = pd.DataFrame(
    {
        "unit_id": [1, 2],
        "unit_name": ["Poliklinikk A", "Døgn B"],
        "region": ["Helse Vest", "Helse Sør-Øst"],
        "setting": ["outpatient", "inpatient"],
    }
)


def _reg(
    course: str, patient: str, unit: int, kind: str, date: str, status: object, age: int, **values: object
) -> dict[str, object]:
    return {
        "course_id": course,
        "patient_id": patient,
        "unit_id": unit,
        "kind": kind,
        "date": pd.Timestamp(date),
        "status": status,
        "age": age,
        **values,
    }


def flow_registry() -> Registry:
    """Eight courses of seven patients (p8 opted out); extract date 2024-01-01.

    ====  =======  ====  ===  ==========  ==============  =======  ============  ====================
    id    patient  unit  age  start       ending          hovedr.  dager_rus_30  follow-up
    ====  =======  ====  ===  ==========  ==============  =======  ============  ====================
    c1    p1 (M)   1     25   2021-02-01  2021-08-01 mut  1        20 → 2        reached 2022-08-10
    c2    p1 (M)   1     27   2023-03-01  active          2        10            (no ending)
    c3    p2 (F)   2     17   2021-06-01  2021-07-15 int  (MP)     25 (MP)       due, not registered
    c4    p3 (F)   2     45   2022-01-10  2023-05-01 int  3        30 → 20       not yet due
    c5    p4 (M)   1     60   2020-05-01  2020-12-01 tra  1        5 → 1         declined 2021-12-15
    c6    p5 (F)   1     33   2022-02-01  2022-09-01 mut  1        12 → 4        due, not registered
    c7    p6 (M)   2     70   2021-09-01  2022-03-01 mut  4        18 → 10       not reached 2023-03-05
    c8    p8 (F)   1     40   2021-01-01  2021-05-01 mut  1        15            (opted out)
    ====  =======  ====  ===  ==========  ==============  =======  ============  ====================
    """
    na = pd.NA
    rows = [
        _reg("c1", "p1", 1, "baseline", "2021-02-01", na, 25, hovedrusmiddel=1, dager_rus_30=20),
        _reg("c1", "p1", 1, "measurement", "2021-05-03", 1, 25, dager_rus_30=8),
        _reg("c1", "p1", 1, "ending", "2021-08-01", 4, 25, dager_rus_30=2),
        _reg("c1", "p1", 1, "followup", "2022-08-10", 5, 26, dager_rus_30=3),
        _reg("c2", "p1", 1, "baseline", "2023-03-01", na, 27, hovedrusmiddel=2, dager_rus_30=10),
        _reg("c2", "p1", 1, "measurement", "2023-06-01", 1, 27, dager_rus_30=9),
        _reg("c3", "p2", 2, "measurement", "2021-06-01", 1, 17, dager_rus_30=25),
        _reg("c3", "p2", 2, "ending", "2021-07-15", 3, 17),
        _reg("c4", "p3", 2, "baseline", "2022-01-10", na, 45, hovedrusmiddel=3, dager_rus_30=30),
        _reg("c4", "p3", 2, "ending", "2023-05-01", 3, 46, dager_rus_30=20),
        _reg("c5", "p4", 1, "baseline", "2020-05-01", na, 60, hovedrusmiddel=1, dager_rus_30=5),
        _reg("c5", "p4", 1, "ending", "2020-12-01", 2, 60, dager_rus_30=1),
        _reg("c5", "p4", 1, "followup", "2021-12-15", 7, 61),
        _reg("c6", "p5", 1, "baseline", "2022-02-01", na, 33, hovedrusmiddel=1, dager_rus_30=12),
        _reg("c6", "p5", 1, "ending", "2022-09-01", 4, 33, dager_rus_30=4),
        _reg("c7", "p6", 2, "baseline", "2021-09-01", na, 70, hovedrusmiddel=4, dager_rus_30=18),
        _reg("c7", "p6", 2, "ending", "2022-03-01", 4, 70, dager_rus_30=10),
        _reg("c7", "p6", 2, "followup", "2023-03-05", 6, 71),
        _reg("c8", "p8", 1, "baseline", "2021-01-01", na, 40, hovedrusmiddel=1, dager_rus_30=15),
        _reg("c8", "p8", 1, "ending", "2021-05-01", 4, 40),
    ]
    regs = pd.DataFrame(rows)
    regs["status"] = regs["status"].astype("Int64")
    for col in ("hovedrusmiddel", "dager_rus_30"):
        regs[col] = regs[col].astype("Int64")
    patients = pd.DataFrame(
        {
            "patient_id": ["p1", "p2", "p3", "p4", "p5", "p6", "p8"],
            "sex": [1, 2, 2, 1, 2, 1, 2],
            "reserved": [False] * 6 + [True],
        }
    )
    return Registry.from_registrations(regs, units=UNITS, patients=patients, extract_date="2024-01-01")


START_A, START_B, START_C, START_D = (
    pd.Timestamp(d) for d in ("2021-01-01", "2021-03-01", "2020-01-01", "2022-06-01")
)


def timepoint_registry(extract_date: str = "2023-03-01") -> Registry:
    """Four courses built to hit the timepoint edge cases (days since start in brackets).

    * A: baseline [0], measurements [80], [100] (both 10 days from the 90-day target: a tie, the earlier wins),
      [300] (outside every window at tolerance 45: 3m 45–135, 6m 135–225, 12m 320–410), [350], ending [400],
      no follow-up. Ending 2022-02-05: due 2022-02-05 + 365 + 90 = 2023-05-06, after the extract date → not yet due.
    * B: no baseline; measurements [0], [170], [200] (both in 6m: 170 is 10 from 180, 200 is 20: 170 wins, no tie),
      ending [250] = 2021-11-06: due 2023-02-04, before the extract date, nothing registered → missing.
    * C: baseline, ending 2020-06-01 (mutual agreement), follow-up 2021-06-10 reached.
    * D: baseline 2022-06-01, measurement [92], still active → no_ending.
    """
    day = pd.Timedelta(days=1)
    rows = []

    def add(course: str, start: pd.Timestamp, kind: str, days: int, status: object, value: int) -> None:
        rows.append(
            {
                "course_id": course,
                "patient_id": "p" + course,
                "unit_id": 1,
                "kind": kind,
                "date": start + days * day,
                "status": status,
                "age": 30,
                "dager_rus_30": value,
            }
        )

    na = pd.NA
    for days, kind, status, value in [(0, "baseline", na, 20), (80, "measurement", 1, 15), (100, "measurement", 1, 14),
                                      (300, "measurement", 1, 12), (350, "measurement", 1, 9), (400, "ending", 4, 6)]:  # fmt: skip
        add("A", START_A, kind, days, status, value)
    for days, kind, status, value in [(0, "measurement", 1, 28), (170, "measurement", 1, 21),
                                      (200, "measurement", 1, 19), (250, "ending", 3, 17)]:  # fmt: skip
        add("B", START_B, kind, days, status, value)
    add("C", START_C, "baseline", 0, na, 11)
    add("C", START_C, "ending", (pd.Timestamp("2020-06-01") - START_C).days, 4, 5)
    add("C", START_C, "followup", (pd.Timestamp("2021-06-10") - START_C).days, 5, 4)
    add("D", START_D, "baseline", 0, na, 16)
    add("D", START_D, "measurement", 92, 1, 13)
    regs = pd.DataFrame(rows)
    regs["status"] = regs["status"].astype("Int64")
    regs["dager_rus_30"] = regs["dager_rus_30"].astype("Int64")
    return Registry.from_registrations(regs, units=UNITS, extract_date=extract_date)
