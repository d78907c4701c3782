"""Completeness of an extract: per variable and form (kompletthet) and per course (forløpskompletthet).

Both are proportions over the whole extract (a census, not a sample); the Wilson 95 % interval is given for
readers who treat the extract period as a sample of the register's practice. Opted-out patients are left out
first (they are never in an extract, but a synthetic registry holds them).
"""

from __future__ import annotations

import pandas as pd

from kvarus_research.registry import Registry
from kvarus_research.stats import wilson_ci

#: Registration kinds held by each form kind of the codebook.
FORM_KIND_ROWS: dict[str, tuple[str, ...]] = {
    "baseline": ("baseline",),
    "status": ("measurement", "ending", "followup"),
    "measurement": ("measurement",),
    "ending": ("ending",),
    "followup": ("followup",),
}
#: A course without an ending counts as overdue when its last registration is older than this (two missed
#: three-monthly measurement points).
INACTIVE_DAYS = 182


def completeness(registry: Registry, *, language: str = "en") -> pd.DataFrame:
    """Kompletthet: the share of non-missing values of each data variable, per form and registration kind.

    Population: the registrations of the forms that carry the variable (baseline rows for a Basisopplysninger
    variable; measurement, ending and follow-up rows for a Målepunkt variable, shown separately per kind), opted-out
    patients excluded; kinds with no registration are left out. A value is present when it is not missing (MRS missing labels and the codebook's missing
    codes were turned into missing when the extract was read).

    Parameters
    ----------
    registry : Registry
    language : {"en", "nb"}
        Language of the variable labels.

    Returns
    -------
    DataFrame
        ``form, kind, variable, label, applicable, present, completeness, ci_low, ci_high`` (Wilson 95 %).

    Examples
    --------
    >>> import pandas as pd, kvarus_research as kr
    >>> regs = pd.DataFrame({"patient_id": ["a", "a", "b"], "unit_id": [1, 1, 1],
    ...     "kind": ["baseline", "measurement", "baseline"], "status": [pd.NA, 1, pd.NA],
    ...     "date": pd.to_datetime(["2021-01-01", "2021-03-01", "2021-02-01"]),
    ...     "dager_rus_30": pd.array([3, 4, None], dtype="Int64")})
    >>> reg = kr.Registry.from_registrations(regs, extract_date="2022-01-01")
    >>> t = completeness(reg)
    >>> t.loc[t["variable"] == "dager_rus_30", ["kind", "applicable", "present", "completeness"]].values.tolist()
    [['baseline', 2, 1, 0.5], ['measurement', 1, 1, 1.0]]
    """
    reg = registry.without_opt_outs()
    cb = reg.codebook
    rows = []
    for form in cb.forms:
        if form.kind == "network_work":
            table, kinds = reg.network_work, (None,)
        elif form.kind in FORM_KIND_ROWS:
            table, kinds = reg.registrations, FORM_KIND_ROWS[form.kind]
        else:
            continue
        if table is None:
            continue
        for kind in kinds:
            sub = table if kind is None else table[table["kind"] == kind]
            if not len(sub):
                continue
            for v in cb.form_variables(form.name):
                if v.role is not None or v.name not in sub.columns:
                    continue
                present = int(sub[v.name].notna().sum())
                rows.append(
                    (form.name, kind or "network_work", v.name, v.label_in(language), len(sub), present)
                )
    out = pd.DataFrame(rows, columns=["form", "kind", "variable", "label", "applicable", "present"])
    out["completeness"] = out["present"] / out["applicable"].where(out["applicable"] > 0)
    out["ci_low"], out["ci_high"] = wilson_ci(out["present"], out["applicable"])
    out.attrs["definition"] = (
        "share of non-missing values among the registrations of the forms (and kinds) "
        "that carry the variable; opted-out patients excluded; Wilson 95 % CI"
    )
    return out


def course_completeness(
    registry: Registry, *, by: str | None = None, inactive_days: int = INACTIVE_DAYS
) -> pd.DataFrame:
    """Forløpskompletthet: the share of ended-or-due courses that have an ending registration.

    Denominator: courses (opted-out patients excluded) that either have an ending registration, or have none
    and whose last registration lies more than ``inactive_days`` days before the extract date (the course has
    most likely ended without its ending being registered: Kvarus asks for a measurement point at least every
    third month, so 182 days means two missed points). Courses without an ending and with a registration within
    ``inactive_days`` are still running and are not counted. Numerator: courses with an ending registration
    (any ending type, ``unknown`` included).

    Parameters
    ----------
    registry : Registry
    by : str, optional
        A column of the course view to group by (e.g. ``"unit_id"``); one overall row when None.
    inactive_days : int

    Returns
    -------
    DataFrame
        ``[by,] courses, ended, overdue, denominator, completeness, ci_low, ci_high`` (Wilson 95 %).

    Examples
    --------
    >>> import pandas as pd, kvarus_research as kr
    >>> regs = pd.DataFrame({"patient_id": ["a", "a", "b", "c"], "unit_id": 1,
    ...     "kind": ["measurement", "ending", "measurement", "measurement"], "status": [1, 4, 1, 1],
    ...     "date": pd.to_datetime(["2021-01-01", "2021-03-01", "2021-02-01", "2021-12-01"])})
    >>> reg = kr.Registry.from_registrations(regs, extract_date="2022-01-01")
    >>> course_completeness(reg)[["courses", "ended", "overdue", "denominator", "completeness"]].to_dict("records")
    [{'courses': 3, 'ended': 1, 'overdue': 1, 'denominator': 2, 'completeness': 0.5}]
    """
    reg = registry.without_opt_outs()
    courses = reg.course_view()
    last = reg.registrations.groupby("course_id")["date"].max()
    last_date = courses["course_id"].map(last)
    ended = courses["ending_type"] != "active"
    overdue = ~ended & ((reg.extract_date - last_date).dt.days > inactive_days)
    frame = pd.DataFrame({"ended": ended.astype(int), "overdue": overdue.astype(int)})
    if by is not None:
        frame[by] = courses[by].to_numpy()
        g = frame.groupby(by, sort=True)
        out = pd.DataFrame({"courses": g.size(), "ended": g["ended"].sum(), "overdue": g["overdue"].sum()})
        out = out.reset_index()
    else:
        out = pd.DataFrame(
            {
                "courses": [len(frame)],
                "ended": [int(frame["ended"].sum())],
                "overdue": [int(frame["overdue"].sum())],
            }
        )
    out["denominator"] = out["ended"] + out["overdue"]
    out["completeness"] = out["ended"] / out["denominator"].where(out["denominator"] > 0)
    out["ci_low"], out["ci_high"] = wilson_ci(out["ended"], out["denominator"])
    out.attrs["definition"] = (
        f"courses with an ending registration among courses that have one or whose last "
        f"registration is more than {inactive_days} days before the extract date "
        f"({reg.extract_date:%Y-%m-%d}); opted-out patients excluded; Wilson 95 % CI"
    )
    return out
