"""The declarative cohort builder: a chain of criteria over a registry's courses, with its flow.

``Cohort(registry)`` starts from every course of the registry, excludes opted-out patients first (reservasjon), and
each criterion returns a new, narrower ``Cohort`` (the original is never changed). Every step records how many
courses it started from, kept and excluded, and why, so the selection can be drawn as a CONSORT-style flow
diagram and saved as YAML beside the study's notebook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.cohort import criteria as _crit
from kvarus_research.cohort._base import CohortBase
from kvarus_research.errors import CohortError
from kvarus_research.registry import Registry

FLOW_COLUMNS = ["step", "label", "reason", "n_before", "n_after", "n_excluded"]
DEFINITION_VERSION = 1


class Cohort:
    """A selection of treatment courses (behandlingsforløp) from a registry, built from chained criteria.

    Parameters
    ----------
    registry : Registry
        The registry to select from. Opted-out patients are always excluded first (the first flow step).

    Notes
    -----
    Criteria return a new ``Cohort``; the flow (``.flow``) lists every step with ``n_before``, ``n_after``,
    ``n_excluded`` and a readable ``label`` (what was kept) and ``reason`` (why the others were excluded).
    Criteria available: :meth:`started_between`, :meth:`age_between`, :meth:`sex`, :meth:`units`,
    :meth:`regions`, :meth:`setting`, :meth:`main_substance`, :meth:`has_baseline`, :meth:`ended`,
    :meth:`first_course_per_patient`, :meth:`followup_due` and :meth:`where`.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> reg = kr.synthetic.generate(n_courses=300, seed=1)
    >>> cohort = kr.Cohort(reg).age_between(18, 70).ended()
    >>> list(cohort.flow["step"])
    ['opt_outs', 'age_between', 'ended']
    >>> int(cohort.flow["n_after"].iloc[-1]) == len(cohort.courses)
    True
    """

    def __init__(self, registry: Registry) -> None:
        base = CohortBase(registry)
        self._base = base
        self._mask = np.ones(base.n, dtype=bool)
        self._criteria: tuple[dict[str, Any], ...] = ()
        self._steps: tuple[dict[str, Any], ...] = (
            {
                "step": "opt_outs",
                "label": "Patients not opted out",
                "reason": "patient opted out (reservasjon)",
                "n_before": base.n_all,
                "n_after": base.n,
                "n_excluded": base.n_opted_out,
            },
        )

    # -- construction of derived cohorts -----------------------------------------------------------------
    def _derive(self, name: str, params: dict[str, Any], keep: np.ndarray, label: str, reason: str) -> Cohort:
        new = object.__new__(Cohort)
        new._base = self._base
        new._mask = self._mask & keep
        n_before, n_after = int(self._mask.sum()), int(new._mask.sum())
        new._criteria = (*self._criteria, {"criterion": name, **params})
        new._steps = (
            *self._steps,
            {
                "step": name,
                "label": label,
                "reason": reason,
                "n_before": n_before,
                "n_after": n_after,
                "n_excluded": n_before - n_after,
            },
        )
        return new

    # -- criteria -----------------------------------------------------------------------------------------
    def started_between(self, start: Any = None, end: Any = None) -> Cohort:
        """Keep courses that started on or after ``start`` and on or before ``end`` (either may be ``None``).

        Dates are ISO ``"2021-03-02"`` or day first ``"02.03.2021"`` (both 2 March), or date objects; anything
        else (``"02/03/2021"``: day or month first?) raises :class:`~kvarus_research.errors.CohortError` naming the
        accepted formats (:func:`kvarus_research.io.dates.user_date`).

        Examples
        --------
        >>> import kvarus_research as kr
        >>> c = kr.Cohort(kr.synthetic.generate(n_courses=100, seed=1)).started_between("2021-01-01", "2022-12-31")
        >>> bool(c.courses["start_date"].between("2021-01-01", "2022-12-31").all())
        True
        """
        keep, label, reason, params = _crit.started_between(self._base, start, end)
        return self._derive("started_between", params, keep, label, reason)

    def age_between(self, lo: float | None = None, hi: float | None = None) -> Cohort:
        """Keep courses whose patient's age at course start lies in ``[lo, hi]``; unknown age is excluded.

        Examples
        --------
        >>> import kvarus_research as kr
        >>> c = kr.Cohort(kr.synthetic.generate(n_courses=100, seed=1)).age_between(18, 30)
        >>> bool(c.courses["age_at_start"].between(18, 30).all())
        True
        """
        keep, label, reason, params = _crit.age_between(self._base, lo, hi)
        return self._derive("age_between", params, keep, label, reason)

    def sex(self, code_or_label: int | str | Sequence[int | str]) -> Cohort:
        """Keep courses of patients of the given sex: a code (``2``) or a codebook label (``"Female"``, ``"Kvinne"``).

        Examples
        --------
        >>> import kvarus_research as kr
        >>> c = kr.Cohort(kr.synthetic.generate(n_courses=100, seed=1)).sex("Female")
        >>> set(c.courses["sex"].dropna().astype(int)) <= {2}
        True
        """
        keep, label, reason, params = _crit.sex(self._base, code_or_label)
        return self._derive("sex", params, keep, label, reason)

    def units(self, units: Iterable[Any]) -> Cohort:
        """Keep courses of the given treatment units (unit ids or unit names).

        Examples
        --------
        >>> import kvarus_research as kr
        >>> reg = kr.synthetic.generate(n_courses=100, seed=1)
        >>> first = reg.units["unit_id"].iloc[0]
        >>> set(kr.Cohort(reg).units([first]).courses["unit_id"]) <= {first}
        True
        """
        keep, label, reason, params = _crit.units(self._base, units)
        return self._derive("units", params, keep, label, reason)

    def regions(self, regions: Iterable[str]) -> Cohort:
        """Keep courses at units in the given health regions (``units.region``).

        Examples
        --------
        >>> import kvarus_research as kr
        >>> reg = kr.synthetic.generate(n_courses=100, seed=1)
        >>> r = reg.units["region"].iloc[0]
        >>> set(kr.Cohort(reg).regions([r]).courses["region"]) <= {r}
        True
        """
        keep, label, reason, params = _crit.regions(self._base, regions)
        return self._derive("regions", params, keep, label, reason)

    def setting(self, setting: str) -> Cohort:
        """Keep courses at ``"inpatient"`` (døgn) or ``"outpatient"`` (poliklinisk) units.

        Examples
        --------
        >>> import kvarus_research as kr
        >>> c = kr.Cohort(kr.synthetic.generate(n_courses=100, seed=1)).setting("outpatient")
        >>> set(c.courses["setting"]) <= {"outpatient"}
        True
        """
        keep, label, reason, params = _crit.setting(self._base, setting)
        return self._derive("setting", params, keep, label, reason)

    def main_substance(self, substances: int | str | Iterable[int | str]) -> Cohort:
        """Keep courses whose baseline main substance (``hovedrusmiddel``) is one of ``substances`` (codes or labels).

        Examples
        --------
        >>> import kvarus_research as kr
        >>> c = kr.Cohort(kr.synthetic.generate(n_courses=100, seed=1)).main_substance(["Alcohol", 3])
        >>> set(c.courses["hovedrusmiddel"].astype(int)) <= {1, 3}
        True
        """
        keep, label, reason, params = _crit.main_substance(self._base, substances)
        return self._derive("main_substance", params, keep, label, reason)

    def has_baseline(self) -> Cohort:
        """Keep courses with a baseline registration (basisregistrering).

        Examples
        --------
        >>> import kvarus_research as kr
        >>> c = kr.Cohort(kr.synthetic.generate(n_courses=100, seed=1)).has_baseline()
        >>> set(c.courses["baseline_kind"]) <= {"baseline"}
        True
        """
        keep, label, reason, params = _crit.has_baseline(self._base)
        return self._derive("has_baseline", params, keep, label, reason)

    def ended(self, types: Iterable[str] | None = None) -> Cohort:
        """Keep courses that ended (avslutning), optionally only with one of the ending ``types``.

        ``types`` are ``mutual_agreement``, ``interrupted``, ``transferred`` (and ``unknown`` for an ending form
        without status code); ``None`` keeps every ended course.

        Examples
        --------
        >>> import kvarus_research as kr
        >>> c = kr.Cohort(kr.synthetic.generate(n_courses=100, seed=1)).ended(["interrupted"])
        >>> set(c.courses["ending_type"]) <= {"interrupted"}
        True
        """
        keep, label, reason, params = _crit.ended(self._base, types)
        return self._derive("ended", params, keep, label, reason)

    def first_course_per_patient(self) -> Cohort:
        """Keep each patient's first course among the courses selected so far (earliest start; ties: course id).

        Examples
        --------
        >>> import kvarus_research as kr
        >>> c = kr.Cohort(kr.synthetic.generate(n_courses=200, seed=1)).first_course_per_patient()
        >>> bool(c.courses["patient_id"].is_unique)
        True
        """
        keep, label, reason, params = _crit.first_course_per_patient(self._base, self._mask)
        return self._derive("first_course_per_patient", params, keep, label, reason)

    def followup_due(self, grace_days: int = 90) -> Cohort:
        """Keep ended courses whose one-year follow-up was due by the extract date.

        Due means: ending date + 365 days + ``grace_days`` is on or before the extract date (domain.md §5).

        Examples
        --------
        >>> import kvarus_research as kr
        >>> reg = kr.synthetic.generate(n_courses=100, seed=1)
        >>> c = kr.Cohort(reg).followup_due(grace_days=90)
        >>> bool((c.courses["end_date"] + pd.Timedelta(days=455) <= reg.extract_date).all())
        True
        """
        keep, label, reason, params = _crit.followup_due(self._base, grace_days)
        return self._derive("followup_due", params, keep, label, reason)

    def where(
        self,
        variable: str,
        timepoint: str,
        condition: Any,
        *,
        label: str | None = None,
        align: Mapping[str, Any] | None = None,
    ) -> Cohort:
        """Keep courses whose value of a codebook ``variable`` at ``timepoint`` meets ``condition``.

        Parameters
        ----------
        variable : str
            A codebook data variable (e.g. ``"dager_rus_30"``).
        timepoint : str
            A timepoint name from :func:`~kvarus_research.cohort.align_timepoints` (``baseline``, ``MP1``,
            ``3m``, ``ending``, ``followup``); window names need ``align={"scheme": "window", ...}``.
        condition : list, str, dict or callable
            A list of accepted values (codes or codebook labels); a comparison string ``">= 10"``, ``"< 5"``,
            ``"== 2"``, ``"!= 2"``, ``"notna"``, ``"isna"``; ``{"between": [lo, hi]}`` (inclusive); or a
            function of the value Series returning a boolean Series (cannot be saved to YAML).
        label : str, optional
            Readable text for the flow diagram (generated when absent).
        align : dict, optional
            Keyword arguments for :func:`align_timepoints` (e.g. the window scheme).

        Notes
        -----
        Courses without a registration at ``timepoint`` (or with the value missing) are excluded, except by
        the ``"isna"`` condition.

        Examples
        --------
        >>> import kvarus_research as kr
        >>> c = kr.Cohort(kr.synthetic.generate(n_courses=100, seed=1)).where("dager_rus_30", "baseline", ">= 10")
        >>> bool((c.courses["dager_rus_30"] >= 10).all())
        True
        """
        keep, auto, reason, params = _crit.where(
            self._base, self._mask, variable, timepoint, condition, align
        )
        return self._derive(
            "where", {**params, **({"label": label} if label else {})}, keep, label or auto, reason
        )

    # -- results ------------------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of courses in the cohort."""
        return int(self._mask.sum())

    def __len__(self) -> int:
        return self.n

    @property
    def positions(self) -> np.ndarray:
        """Positions of the selected courses in the opt-out-free course view (for the timepoint code)."""
        return np.flatnonzero(self._mask)

    @property
    def courses(self) -> pd.DataFrame:
        """One row per selected course: the registry's course view plus the baseline value of every data variable.

        Columns: ``course_id, patient_id, unit_id, start_date, end_date, ending_type, followup_date,
        followup_status, age_at_start, n_registrations, unit_name, region, setting, sex``, then
        ``baseline_kind`` (``baseline``, or ``measurement`` when the first measurement point stands in for a
        missing baseline registration) and the codebook data variables at baseline, named as in the codebook.
        """
        base = self._base
        pos = self.positions
        view = base.view.iloc[pos]
        vals = base.baseline_values.iloc[pos]
        clash = [c for c in vals.columns if c in view.columns]
        return pd.concat([view, vals.drop(columns=clash)], axis=1).reset_index(drop=True)

    @property
    def registry(self) -> Registry:
        """The registry restricted to the selected courses (their registrations, patients and units)."""
        from dataclasses import replace

        base = self._base
        reg = base.registry
        ids = base.view["course_id"].to_numpy()[self._mask]
        regs = reg.registrations.loc[self._mask[base.reg_pos] & (base.reg_pos >= 0)].reset_index(drop=True)
        courses = reg.courses.loc[reg.courses["course_id"].isin(ids)].reset_index(drop=True)
        patients = reg.patients.loc[reg.patients["patient_id"].isin(courses["patient_id"])].reset_index(
            drop=True
        )
        nw = reg.network_work
        if nw is not None and "patient_id" in nw.columns:
            nw = nw.loc[nw["patient_id"].isin(patients["patient_id"])].reset_index(drop=True)
        return replace(
            reg,
            courses=courses,
            registrations=regs,
            patients=patients,
            network_work=nw,
            meta={**reg.meta, "cohort": self.definition},
        )

    @property
    def flow(self) -> pd.DataFrame:
        """The selection steps: ``step, label, reason, n_before, n_after, n_excluded`` (one row per step)."""
        return pd.DataFrame(list(self._steps), columns=FLOW_COLUMNS)

    @property
    def definition(self) -> dict[str, Any]:
        """The cohort definition as plain data (what :meth:`to_yaml` writes and :meth:`from_definition` reads)."""
        return {"version": DEFINITION_VERSION, "criteria": [dict(c) for c in self._criteria]}

    def plot_flow(
        self, ax: Any = None, *, rules: Any = "norway", enabled: bool = True, language: str = "en"
    ) -> Any:
        """Draw the CONSORT-style flow diagram from the protected flow (small counts shown as the rules' marker,
        with its footnote); ``enabled=False`` draws exact counts, stamped as such.

        Returns the matplotlib Axes. See :func:`kvarus_research.cohort.flow.plot_flow`.

        Examples
        --------
        >>> import kvarus_research as kr
        >>> ax = kr.Cohort(kr.synthetic.generate(n_courses=100, seed=1)).ended().plot_flow(rules="opensafely")
        >>> ax.get_title(loc="left")
        'Selection of treatment courses'
        """
        from kvarus_research.cohort.flow import plot_flow

        return plot_flow(self.flow, ax=ax, rules=rules, enabled=enabled)

    # -- persistence ----------------------------------------------------------------------------------------
    def to_yaml(self, path: str | Path) -> Path:
        """Save the definition as YAML (a study's selection, kept beside its notebook).

        Raises
        ------
        CohortError
            When a criterion holds a Python function, which YAML cannot store.

        Examples
        --------
        >>> import tempfile, pathlib, kvarus_research as kr
        >>> reg = kr.synthetic.generate(n_courses=100, seed=1)
        >>> c = kr.Cohort(reg).age_between(18, 40).ended(["interrupted"])
        >>> p = c.to_yaml(pathlib.Path(tempfile.mkdtemp()) / "cohort.yaml")
        >>> kr.Cohort.from_yaml(p, reg).flow.equals(c.flow)
        True
        """
        import yaml

        definition = self.definition
        for i, c in enumerate(definition["criteria"], start=1):
            bad = [k for k, v in c.items() if callable(v)]
            if bad:
                raise CohortError(
                    f"criterion {i} ({c['criterion']}) holds a Python function in {bad}: YAML cannot store it; "
                    "use a list of values, a comparison string like '>= 10' or {'between': [lo, hi]}"
                )
        path = Path(path)
        text = "# Kvarus cohort definition (kvarus_research.Cohort.from_yaml)\n"
        text += yaml.safe_dump(definition, allow_unicode=True, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any], registry: Registry) -> Cohort:
        """Rebuild a cohort from a definition (``cohort.definition``) on ``registry``.

        Raises
        ------
        CohortError
            When the definition has an unknown criterion or argument (the message names which and where).

        Examples
        --------
        >>> import kvarus_research as kr
        >>> reg = kr.synthetic.generate(n_courses=100, seed=1)
        >>> d = {"criteria": [{"criterion": "setting", "setting": "outpatient"}]}
        >>> kr.Cohort.from_definition(d, reg).flow["step"].tolist()
        ['opt_outs', 'setting']
        """
        if not isinstance(definition, Mapping) or not isinstance(definition.get("criteria", []), list):
            raise CohortError("a cohort definition is a mapping with a list under 'criteria'")
        version = definition.get("version", DEFINITION_VERSION)
        if version != DEFINITION_VERSION:
            raise CohortError(
                f"cohort definition version {version!r} is not supported (expected {DEFINITION_VERSION})"
            )
        cohort = cls(registry)
        for i, raw in enumerate(definition.get("criteria", []), start=1):
            if not isinstance(raw, Mapping) or "criterion" not in raw:
                raise CohortError(
                    f"criteria item {i}: expected a mapping with a 'criterion' key, got {raw!r}"
                )
            params = dict(raw)
            name = params.pop("criterion")
            if name not in _CRITERIA:
                raise CohortError(
                    f"criteria item {i}: unknown criterion {name!r}; known: {sorted(_CRITERIA)}"
                )
            try:
                cohort = getattr(cohort, name)(**params)
            except TypeError as exc:
                raise CohortError(
                    f"criteria item {i} ({name}): wrong arguments {sorted(params)}: {exc}"
                ) from None
        return cohort

    @classmethod
    def from_yaml(cls, path: str | Path, registry: Registry) -> Cohort:
        """Rebuild a cohort from a YAML file written by :meth:`to_yaml` (see its example)."""
        import yaml

        class _Loader(yaml.SafeLoader):
            """YAML's own date parsing raises a bare ValueError on "2021-02-30": keep such a value as text, so
            the criterion reports it with its key and the expected format (a CohortError, one line)."""

        def _timestamp(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
            try:
                return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
            except ValueError:
                return loader.construct_scalar(node)

        _Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)
        path = Path(path)
        try:
            definition = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (a SafeLoader)
        except (OSError, yaml.YAMLError) as exc:
            raise CohortError(f"{path}: cannot read the cohort definition: {exc}") from None
        if not isinstance(definition, Mapping):
            raise CohortError(f"{path}: a cohort definition is a mapping with a list under 'criteria'")
        try:
            return cls.from_definition(definition, registry)
        except CohortError as exc:
            raise CohortError(f"{path}: {exc}") from None

    def __repr__(self) -> str:
        return f"Cohort({self.n} courses)\n{self.flow.to_string(index=False)}"


_CRITERIA: dict[str, Callable[..., Any]] = {
    name: getattr(Cohort, name)
    for name in (
        "started_between",
        "age_between",
        "sex",
        "units",
        "regions",
        "setting",
        "main_substance",
        "has_baseline",
        "ended",
        "first_course_per_patient",
        "followup_due",
        "where",
    )
}
