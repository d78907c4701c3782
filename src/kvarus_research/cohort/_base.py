"""Shared, computed-once state behind every :class:`~kvarus_research.cohort.Cohort` derived from one registry.

A cohort is a boolean mask over the courses of the registry *after* opted-out patients are removed. Chained
criteria share this object, so the course view, the registration → course positions and the baseline values are
computed once however many criteria are chained.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from kvarus_research.registry import Registry
from kvarus_research.registry.constants import KIND_ORDER

#: Codebook forms whose variables are registration data (the network-work form is a separate table).
_NETWORK_KINDS = ("network_work",)


def data_variables(registry: Registry) -> list[str]:
    """Codebook data variables (no structural role) present in ``registry.registrations``, in codebook order.

    Examples
    --------
    >>> import pandas as pd
    >>> regs = pd.DataFrame({"patient_id": ["p"], "unit_id": [1], "kind": ["baseline"], "status": [pd.NA],
    ...     "date": pd.to_datetime(["2021-01-01"]), "dager_rus_30": [10], "hovedrusmiddel": [1]})
    >>> data_variables(Registry.from_registrations(regs))
    ['hovedrusmiddel', 'dager_rus_30']
    """
    cb = registry.codebook
    network_forms = {f.name for f in cb.forms if f.kind in _NETWORK_KINDS}
    cols = set(registry.registrations.columns)
    return [v.name for v in cb.data_variables() if v.name in cols and not set(v.forms) <= network_forms]


class CohortBase:
    """The registry without opt-outs and what every cohort over it needs (course view, positions, baselines)."""

    def __init__(self, registry: Registry) -> None:
        if not isinstance(registry, Registry):
            from kvarus_research.errors import CohortError

            raise CohortError(
                f"a Cohort starts from a Registry (kr.read_extract or kr.synthetic.generate), got {type(registry).__name__}"
            )
        self.n_all = int(len(registry.courses))
        self.registry = registry.without_opt_outs()
        self.n_opted_out = self.n_all - int(len(self.registry.courses))
        view = self.registry.course_view().reset_index(drop=True)
        for col in ("unit_name", "region", "setting", "sex"):
            if col not in view.columns:
                view[col] = pd.NA
        for col in ("start_date", "end_date", "followup_date"):
            if col in view.columns:
                view[col] = pd.to_datetime(view[col])
        self.view = view
        self.variables = data_variables(self.registry)

    @property
    def n(self) -> int:
        """Number of courses after opt-outs."""
        return len(self.view)

    @cached_property
    def reg_pos(self) -> np.ndarray:
        """Position in :attr:`view` of each registration's course (-1 when it belongs to no course)."""
        index = pd.Index(self.view["course_id"])
        return index.get_indexer(self.registry.registrations["course_id"])

    @cached_property
    def reg_kind(self) -> np.ndarray:
        """Kind rank of each registration (baseline 0, measurement 1, ending 2, follow-up 3; -1 unknown)."""
        return self.registry.registrations["kind"].map(KIND_ORDER).fillna(-1).to_numpy(dtype=np.int8)

    @cached_property
    def reg_date(self) -> np.ndarray:
        """Registration dates as datetime64[ns]."""
        return pd.to_datetime(self.registry.registrations["date"]).to_numpy(dtype="datetime64[ns]")

    def first_of_kind(self, kind: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Per course position: row number (in registrations) of its earliest registration of ``kind``, or -1.

        ``rows`` restricts the search to those registration rows.
        """
        rank = KIND_ORDER[kind]
        cand = np.flatnonzero((self.reg_kind == rank) & (self.reg_pos >= 0))
        if rows is not None:
            cand = np.intersect1d(cand, rows, assume_unique=True)
        out = np.full(self.n, -1, dtype=np.int64)
        if len(cand) == 0:
            return out
        order = np.lexsort((cand, self.reg_date[cand], self.reg_pos[cand]))
        cand = cand[order]
        pos = self.reg_pos[cand]
        first = np.ones(len(cand), dtype=bool)
        first[1:] = pos[1:] != pos[:-1]
        out[pos[first]] = cand[first]
        return out

    @cached_property
    def baseline_registration_row(self) -> np.ndarray:
        """Per course: the row of its (first) baseline registration, or -1."""
        return self.first_of_kind("baseline")

    @cached_property
    def baseline_row(self) -> np.ndarray:
        """Per course: the registration row used as its baseline (baseline registration, else first measurement)."""
        row = self.baseline_registration_row
        none = row < 0
        if none.any():
            meas = self.first_of_kind("measurement")
            row = np.where(none, meas, row)
        return row

    @cached_property
    def has_baseline_registration(self) -> np.ndarray:
        """Per course: whether it has a baseline registration (basisregistrering)."""
        return self.baseline_registration_row >= 0

    @cached_property
    def baseline_values(self) -> pd.DataFrame:
        """Per course (aligned to :attr:`view`): baseline kind and the baseline value of every data variable."""
        row = self.baseline_row
        ok = row >= 0
        regs = self.registry.registrations
        out = pd.DataFrame(index=self.view.index)
        kinds = np.array(["baseline", "measurement", "ending", "followup"], dtype=object)
        bkind = np.full(self.n, None, dtype=object)
        bkind[ok] = kinds[self.reg_kind[row[ok]]]
        out["baseline_kind"] = bkind
        taken = regs[self.variables].iloc[row[ok]]
        values = taken.set_axis(np.flatnonzero(ok)).reindex(self.view.index)
        for var in self.variables:
            dtype = regs[var].dtype
            if pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
                values[var] = values[var].astype(
                    "Int64" if pd.api.types.is_integer_dtype(dtype) else "boolean"
                )
            out[var] = values[var]
        return out
