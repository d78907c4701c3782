"""Timepoint alignment: registrations → named timepoints (baseline, MP1…MPn or time windows, ending, follow-up).

Rules (see ``docs/explanation/timepoints.md``):

* **baseline**: the course's baseline registration (basisregistrering). With ``baseline="first_measurement"``
  (the default), a course without one takes its first measurement point as baseline, and that registration is
  then not also a measurement point. With ``baseline="registration"`` such a course has no baseline row.
* **measurement points**, ``scheme="order"``: ``MP1``, ``MP2``… by date (``max_measurements`` caps them).
  ``scheme="window"``: each measurement point goes to the window whose target (days since course start) is
  nearest, if within ``tolerance`` days (equal distance to two targets → the earlier window); within a window the
  registration nearest the target wins, the earlier one on a tie. Losers and registrations outside every window
  are counted in ``.notes``, never dropped silently.
* **ending** and **followup**: the ending and one-year follow-up registrations. ``.followup`` gives each course's
  follow-up status; a follow-up is *due* when ending + 365 days + ``grace_days`` is on or before the extract date,
  and *missing* only when due and not reached (domain.md §5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.cohort._base import CohortBase
from kvarus_research.errors import CohortError
from kvarus_research.registry.constants import STATUS_FOLLOWUP, followup_due_date

LONG_COLUMNS = [
    "course_id",
    "patient_id",
    "unit_id",
    "timepoint",
    "timepoint_order",
    "date",
    "days_since_start",
    "kind",
    "registration_id",
]
NOTES: dict[str, tuple[str, str]] = {
    "courses": ("courses", "courses aligned"),
    "registrations": ("registrations", "registrations of these courses"),
    "aligned": ("registrations", "registrations placed at a timepoint (rows of .long)"),
    "no_baseline_registration": ("courses", "courses without a baseline registration"),
    "baseline_from_first_measurement": (
        "courses",
        "courses whose first measurement point stands in as baseline",
    ),
    "no_baseline": ("courses", "courses with no baseline row at all"),
    "extra_baseline": ("registrations", "second or later baseline registrations of a course (not used)"),
    "beyond_max_measurements": ("registrations", "measurement points after max_measurements (not used)"),
    "outside_windows": ("registrations", "measurement points outside every time window (not used)"),
    "window_extra": (
        "registrations",
        "measurement points losing to a nearer one in the same window (not used)",
    ),
    "window_ties": (
        "registrations",
        "of window_extra: as near to the target as the winner (the earlier won)",
    ),
    "extra_ending": ("registrations", "second or later ending registrations of a course (not used)"),
    "extra_followup": ("registrations", "second or later follow-up registrations of a course (not used)"),
    "unknown_kind": ("registrations", "registrations of an unknown kind (not used)"),
}
_DROPPED = ("extra_baseline", "beyond_max_measurements", "outside_windows", "window_extra", "extra_ending",
            "extra_followup", "unknown_kind")  # fmt: skip
_KINDS = np.array(["baseline", "measurement", "ending", "followup"], dtype=object)


@dataclass
class Timepoints:
    """Registrations aligned to named timepoints.

    Attributes
    ----------
    long : DataFrame
        One row per course × timepoint: ``course_id, patient_id, unit_id, timepoint, timepoint_order, date,
        days_since_start, kind, registration_id`` and the codebook data variables.
    followup : DataFrame
        One row per course: ``course_id, patient_id, unit_id, end_date, due_date, due, followup_date,
        followup_status, missing``.
    notes : DataFrame
        ``note, n, unit, description``: the edge cases met (every registration not in ``long`` is counted here).
    options : dict
        The options used (scheme, windows, tolerance, baseline, max_measurements, grace_days).
    timepoint_names : list of str
        Timepoint names in order (``timepoint_order`` 0, 1, ...).
    """

    long: pd.DataFrame
    followup: pd.DataFrame
    notes: pd.DataFrame
    options: dict[str, Any]
    timepoint_names: list[str]
    variables: list[str]
    course_ids: pd.Index
    positions: np.ndarray = field(repr=False)  # per row of long: position of its course in the course view
    selected: np.ndarray = field(repr=False)  # sorted positions of the aligned courses (order of course_ids)

    @cached_property
    def wide(self) -> pd.DataFrame:
        """One row per course (index ``course_id``, every aligned course, also those with no rows); columns a
        MultiIndex ``(variable, timepoint)`` over ``date``, ``days_since_start`` and the data variables."""
        cols = ["date", "days_since_start", *self.variables]
        present_orders = sorted(set(self.long["timepoint_order"].tolist()))
        present = [self.timepoint_names[o] for o in present_orders]
        column_of = np.full(len(self.timepoint_names), -1, dtype=np.int64)
        column_of[present_orders] = np.arange(len(present))
        lookup = np.full((len(self.course_ids), len(present)), -1, dtype=np.int64)
        row_of = np.searchsorted(self.selected, self.positions)
        lookup[row_of, column_of[self.long["timepoint_order"].to_numpy()]] = np.arange(len(self.long))
        data = {}
        for var in cols:
            values = self.long[var].array
            if values.dtype.kind in "iu":  # plain integers (days) need a missing value: nullable integers
                values = pd.array(values, dtype="Int64")
            for j, t in enumerate(present):
                data[(var, t)] = values.take(lookup[:, j], allow_fill=True)
        wide = pd.DataFrame(data, index=self.course_ids.rename("course_id"))
        wide.columns = pd.MultiIndex.from_tuples(list(data), names=["variable", "timepoint"])
        return wide

    @property
    def wide_flat(self) -> pd.DataFrame:
        """:attr:`wide` with flat column names ``variable__timepoint`` (e.g. ``dager_rus_30__baseline``)."""
        w = self.wide.copy()
        w.columns = [f"{v}__{t}" for v, t in w.columns]
        return w

    @property
    def definition(self) -> dict[str, Any]:
        """The alignment options as plain data."""
        return dict(self.options)

    def note(self, name: str) -> int:
        """The count of one note (e.g. ``"outside_windows"``)."""
        return int(self.notes.set_index("note").loc[name, "n"])


def _window_labels(windows: Sequence[int] | Mapping[str, int]) -> list[tuple[str, int]]:
    if isinstance(windows, Mapping):
        pairs = [(str(k), int(v)) for k, v in windows.items()]
    else:
        pairs = [(f"{round(int(w) / 30.4375)}m", int(w)) for w in windows]
    if not pairs or any(d <= 0 for _, d in pairs) or len({d for _, d in pairs}) != len(pairs):
        raise CohortError(
            f"windows: expected distinct positive day counts like (90, 180, 365), got {windows!r}"
        )
    if len({n for n, _ in pairs}) != len(pairs):
        raise CohortError(
            f"windows: two windows get the same name ({[n for n, _ in pairs]}); pass a mapping of names"
        )
    return sorted(pairs, key=lambda p: p[1])


def _first_in_group(groups: np.ndarray) -> np.ndarray:
    """For a sorted array of group keys: True at the first element of each group."""
    first = np.ones(len(groups), dtype=bool)
    first[1:] = groups[1:] != groups[:-1]
    return first


def _rank_in_group(groups: np.ndarray) -> np.ndarray:
    """For a sorted array of group keys: 1, 2, ... within each group."""
    idx = np.arange(len(groups))
    starts = np.maximum.accumulate(np.where(_first_in_group(groups), idx, 0))
    return idx - starts + 1


def align_positions(
    base: CohortBase,
    positions: np.ndarray,
    *,
    scheme: str = "order",
    windows: Sequence[int] | Mapping[str, int] = (90, 180, 365),
    tolerance: int = 45,
    baseline: str = "first_measurement",
    max_measurements: int | None = None,
    grace_days: int = 90,
) -> Timepoints:
    """Align the registrations of the courses at ``positions`` (see :func:`align_timepoints`)."""
    if scheme not in ("order", "window"):
        raise CohortError(f"scheme {scheme!r} is not one of ['order', 'window']")
    if baseline not in ("registration", "first_measurement"):
        raise CohortError(f"baseline {baseline!r} is not one of ['registration', 'first_measurement']")
    if tolerance < 0 or grace_days < 0:
        raise CohortError(f"tolerance and grace_days must be 0 or more (got {tolerance}, {grace_days})")
    if max_measurements is not None and max_measurements < 1:
        raise CohortError(f"max_measurements must be at least 1 (got {max_measurements})")
    positions = np.unique(np.asarray(positions, dtype=np.int64))  # sorted, as course_ids and .wide rely on
    counts = dict.fromkeys(NOTES, 0)
    sel = np.zeros(base.n, dtype=bool)
    sel[positions] = True
    rp = base.reg_pos
    rows = np.flatnonzero((rp >= 0) & sel[np.maximum(rp, 0)])
    counts["courses"], counts["registrations"] = len(positions), len(rows)
    kind, date, pos = base.reg_kind[rows], base.reg_date[rows], rp[rows]
    order = np.lexsort((rows, kind, date, pos))
    rows, kind, date, pos = rows[order], kind[order], date[order], pos[order]
    start = base.view["start_date"].to_numpy(dtype="datetime64[ns]")[pos]
    days = ((date - start) // np.timedelta64(1, "D")).astype(np.int64)
    counts["unknown_kind"] = int((kind < 0).sum())
    tp_order = np.full(len(rows), -1, dtype=np.int64)  # -1 = not placed

    def first_of(mask: np.ndarray) -> np.ndarray:
        idx = np.flatnonzero(mask)
        return idx[_first_in_group(pos[idx])]

    # baseline
    b_first = first_of(kind == 0)
    counts["extra_baseline"] = int((kind == 0).sum()) - len(b_first)
    has_b = np.zeros(base.n, dtype=bool)
    has_b[pos[b_first]] = True
    counts["no_baseline_registration"] = int((~has_b[positions]).sum())
    tp_order[b_first] = 0
    meas = kind == 1
    if baseline == "first_measurement":
        m_first = first_of(meas)
        stand_in = m_first[~has_b[pos[m_first]]]
        tp_order[stand_in] = 0
        meas[stand_in] = False
        counts["baseline_from_first_measurement"] = len(stand_in)
    counts["no_baseline"] = len(positions) - int((tp_order == 0).sum())
    # measurement points
    m_idx = np.flatnonzero(meas)
    if scheme == "order":
        rank = _rank_in_group(pos[m_idx])
        if max_measurements is not None:
            counts["beyond_max_measurements"] = int((rank > max_measurements).sum())
            m_idx, rank = m_idx[rank <= max_measurements], rank[rank <= max_measurements]
        n_mp = max_measurements if max_measurements is not None else int(rank.max(initial=0))
        tp_order[m_idx] = rank
        mp_names = [f"MP{i}" for i in range(1, n_mp + 1)]
        window_days: dict[str, int] = {}
    else:
        pairs = _window_labels(windows)
        targets = np.array([d for _, d in pairs], dtype=np.int64)
        dist = np.abs(days[m_idx, None] - targets[None, :])
        dist = np.where(dist <= tolerance, dist, np.iinfo(np.int64).max)
        w = np.argmin(dist, axis=1)  # equal distance to two targets: the earlier window
        best = dist[np.arange(len(m_idx)), w]
        inside = best != np.iinfo(np.int64).max
        counts["outside_windows"] = int((~inside).sum())
        m_idx, w, best = m_idx[inside], w[inside], best[inside]
        o = np.lexsort((m_idx, best, w, pos[m_idx]))  # m_idx is date order within a course: earlier wins ties
        m_idx, w, best = m_idx[o], w[o], best[o]
        key = pos[m_idx] * len(targets) + w
        win = _first_in_group(key)
        win_best = best[np.maximum.accumulate(np.where(win, np.arange(len(key)), 0))]
        counts["window_extra"] = int((~win).sum())
        counts["window_ties"] = int(((~win) & (best == win_best)).sum())
        tp_order[m_idx[win]] = w[win] + 1
        n_mp = len(targets)
        mp_names = [n for n, _ in pairs]
        window_days = dict(pairs)
    # ending and follow-up
    e_first, f_first = first_of(kind == 2), first_of(kind == 3)
    counts["extra_ending"] = int((kind == 2).sum()) - len(e_first)
    counts["extra_followup"] = int((kind == 3).sum()) - len(f_first)
    tp_order[e_first], tp_order[f_first] = n_mp + 1, n_mp + 2
    names = np.array(["baseline", *mp_names, "ending", "followup"], dtype=object)
    # long format
    placed = np.flatnonzero(tp_order >= 0)
    counts["aligned"] = len(placed)
    regs = base.registry.registrations
    take = regs.iloc[rows[placed]]
    view = base.view
    p = pos[placed]
    long = pd.DataFrame(
        {
            "course_id": view["course_id"].to_numpy()[p],
            "patient_id": view["patient_id"].to_numpy()[p],
            "unit_id": take["unit_id"].to_numpy(),
            "timepoint": names[tp_order[placed]],
            "timepoint_order": tp_order[placed],
            "date": date[placed],
            "days_since_start": days[placed],
            "kind": _KINDS[kind[placed]],
            "registration_id": take["registration_id"].to_numpy()
            if "registration_id" in take.columns
            else pd.array([pd.NA] * len(placed), dtype="string"),
        }
    )
    for var in base.variables:
        long[var] = take[var].array  # keeps nullable dtypes (Int64 codes stay integers)
    # placed rows are sorted by course, date, kind; re-sort by course and timepoint order
    o = np.lexsort((tp_order[placed], p))
    long = long.iloc[o].reset_index(drop=True)
    followup = _followup_table(base, positions, rows[f_first], pos[f_first], date[f_first], grace_days)
    dropped = sum(counts[k] for k in _DROPPED)
    assert counts["aligned"] + dropped == counts["registrations"], "timepoint accounting does not add up"
    notes = pd.DataFrame(
        [(k, counts[k], *NOTES[k]) for k in NOTES], columns=["note", "n", "unit", "description"]
    )
    options = {
        "scheme": scheme,
        "windows": window_days if scheme == "window" else None,
        "tolerance": int(tolerance) if scheme == "window" else None,
        "baseline": baseline,
        "max_measurements": max_measurements,
        "grace_days": int(grace_days),
    }
    return Timepoints(
        long=long,
        followup=followup,
        notes=notes,
        options=options,
        timepoint_names=list(names),
        variables=list(base.variables),
        course_ids=pd.Index(view["course_id"].to_numpy()[positions]),
        positions=p[o],
        selected=np.asarray(positions),
    )


def _followup_table(
    base: CohortBase,
    positions: np.ndarray,
    f_rows: np.ndarray,
    f_pos: np.ndarray,
    f_date: np.ndarray,
    grace_days: int,
) -> pd.DataFrame:
    view = base.view
    n = base.n
    status_code = pd.to_numeric(base.registry.registrations["status"].iloc[f_rows], errors="coerce")
    reg_status = status_code.map(STATUS_FOLLOWUP).fillna("reached").to_numpy(dtype=object)
    status = np.full(n, None, dtype=object)
    fdate = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    status[f_pos], fdate[f_pos] = reg_status, f_date
    end = view["end_date"].to_numpy(dtype="datetime64[ns]")
    due_date = followup_due_date(end, grace_days)
    due = ~np.isnat(due_date) & (due_date <= np.datetime64(base.registry.extract_date, "ns"))
    empty = status == None  # noqa: E711  (elementwise on an object array)
    status = np.where(empty & np.isnat(end), "no_ending", status)
    status = np.where(empty & ~np.isnat(end) & ~due, "not_yet_due", status)
    status = np.where(empty & ~np.isnat(end) & due, "not_registered", status)
    out = pd.DataFrame(
        {
            "course_id": view["course_id"].to_numpy(),
            "patient_id": view["patient_id"].to_numpy(),
            "unit_id": view["unit_id"].to_numpy(),
            "end_date": end,
            "due_date": due_date,
            "due": due,
            "followup_date": fdate,
            "followup_status": status,
            "missing": due & (status != "reached"),
        }
    )
    return out.iloc[positions].reset_index(drop=True)


def align_timepoints(
    data: Any,
    *,
    scheme: str = "order",
    windows: Sequence[int] | Mapping[str, int] = (90, 180, 365),
    tolerance: int = 45,
    baseline: str = "first_measurement",
    max_measurements: int | None = None,
    grace_days: int = 90,
) -> Timepoints:
    """Align a cohort's (or registry's) registrations to named timepoints, in long and wide format.

    Parameters
    ----------
    data : Cohort or Registry
        A registry is first freed of opted-out patients (as ``Cohort(registry)``).
    scheme : {"order", "window"}
        Measurement points by order (``MP1``…) or by time window since course start (``3m``, ``6m``, ``12m``).
    windows : sequence of int or mapping of name → days
        Window targets in days since course start; names default to months (90 → ``3m``).
    tolerance : int
        Days either side of a window target a measurement point may lie.
    baseline : {"first_measurement", "registration"}
        ``"first_measurement"``: the baseline registration, or the first measurement point where there is none;
        ``"registration"``: the baseline registration only.
    max_measurements : int, optional
        Keep at most this many measurement points (order scheme); later ones are counted in ``.notes``.
    grace_days : int
        Grace period after ending + one year before a follow-up is due (and may be missing).

    Returns
    -------
    Timepoints
        ``.long``, ``.wide`` (MultiIndex columns ``(variable, timepoint)``; ``.wide_flat`` for
        ``variable__timepoint``), ``.followup`` and ``.notes``.

    Examples
    --------
    >>> import pandas as pd, kvarus_research as kr
    >>> regs = pd.DataFrame({"patient_id": ["p"] * 3, "unit_id": [1] * 3,
    ...     "kind": ["baseline", "measurement", "ending"], "status": [pd.NA, 1, 4],
    ...     "date": pd.to_datetime(["2021-01-01", "2021-04-05", "2021-06-01"]), "dager_rus_30": [20, 8, 2]})
    >>> tp = align_timepoints(kr.Registry.from_registrations(regs, extract_date="2023-01-01"), scheme="window")
    >>> tp.long[["timepoint", "days_since_start", "dager_rus_30"]].values.tolist()
    [['baseline', 0, 20], ['3m', 94, 8], ['ending', 151, 2]]
    >>> tp.followup["followup_status"].tolist()
    ['not_registered']
    """
    from kvarus_research.cohort.builder import Cohort
    from kvarus_research.registry import Registry

    if isinstance(data, Registry):
        data = Cohort(data)
    if not isinstance(data, Cohort):
        raise CohortError(f"align_timepoints needs a Cohort or a Registry, got {type(data).__name__}")
    return align_positions(
        data._base,
        data.positions,
        scheme=scheme,
        windows=windows,
        tolerance=tolerance,
        baseline=baseline,
        max_measurements=max_measurements,
        grace_days=grace_days,
    )
