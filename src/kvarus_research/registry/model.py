"""The registry model: patients, courses, registrations, units and optional network-work registrations.

``Registry`` holds the tables as pandas DataFrames with canonical column names (English, snake_case); codebook
variables keep their codebook names in ``registrations`` and ``network_work``. Structural columns (declared, with
their types, roles and meaning, in :mod:`kvarus_research.registry.schema`; a test keeps this table in step):

=================  ==========================================================================================
table              columns
=================  ==========================================================================================
``patients``       ``patient_id``, ``sex`` (codebook ``PatientGender`` codes), ``reserved`` (opted out)
                   ``birth_date`` (dropped when pseudonymised)
``courses``        ``course_id``, ``patient_id``, ``unit_id``, ``start_date``, ``end_date``, ``ending_type``,
                   ``followup_date``, ``followup_status``, ``age_at_start``, ``n_registrations``
``registrations``  ``registration_id``, ``course_id``, ``patient_id``, ``unit_id``, ``kind``, ``date``,
                   ``status``, ``age``, then one column per codebook data variable
``units``          ``unit_id``, ``unit_name``, ``region``, ``setting`` (inpatient / outpatient)
``network_work``   ``case_id``, ``patient_id``, ``unit_id``, ``date``, then the network-work variables
``coverage``       ``unit_id``, ``year``, ``expected_courses``, ``reserved_courses`` (for dekningsgrad)
=================  ==========================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.codebook import Codebook, load_codebook
from kvarus_research.errors import RegistryError
from kvarus_research.registry.constants import FOLLOWUP_GRACE_DAYS, KIND_ORDER, KINDS
from kvarus_research.registry.courses import derive_course_ids, summarise_courses
from kvarus_research.registry.schema import TABLES, required_columns

#: Table → the columns it must have (declared in :mod:`kvarus_research.registry.schema`).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = required_columns()


@dataclass
class Registry:
    """A Kvarus registry (or extract of it) as tables.

    Parameters
    ----------
    patients, courses, registrations, units : DataFrame
        The core tables (see the module docstring for their columns).
    network_work, coverage : DataFrame, optional
        Network-work registrations at discharge; expected courses per unit and year for coverage.
    codebook : Codebook
        The codebook the tables follow (the bundled one by default).
    extract_date : Timestamp
        The date the extract was taken: decides which follow-ups are due.
    truth : dict, optional
        Ground-truth parameters of a synthetic registry (``None`` for real data).
    meta : dict
        Provenance: source, seed, files read, exclusions (never identifiers).
    validation : ValidationReport, optional
        Findings from reading and validating an extract (set by :func:`kvarus_research.read_extract`).

    Examples
    --------
    >>> import kvarus_research as kr
    >>> reg = kr.synthetic.generate(n_courses=200, seed=1)
    >>> reg.validate() is reg
    True
    >>> set(reg.courses["ending_type"]) <= {"mutual_agreement", "interrupted", "transferred", "active"}
    True
    """

    patients: pd.DataFrame
    courses: pd.DataFrame
    registrations: pd.DataFrame
    units: pd.DataFrame
    network_work: pd.DataFrame | None = None
    coverage: pd.DataFrame | None = None
    codebook: Codebook = field(default_factory=load_codebook)
    extract_date: pd.Timestamp = field(default_factory=lambda: pd.Timestamp.today().normalize())
    truth: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: The ValidationReport of the extract this registry was read from (None for synthetic registries).
    validation: Any = None

    # -- construction ---------------------------------------------------------------------------------
    @classmethod
    def from_registrations(
        cls,
        registrations: pd.DataFrame,
        *,
        units: pd.DataFrame | None = None,
        patients: pd.DataFrame | None = None,
        extract_date: pd.Timestamp | str | None = None,
        codebook: Codebook | None = None,
        grace_days: int = FOLLOWUP_GRACE_DAYS,
        **kwargs: Any,
    ) -> Registry:
        """Build a registry from registrations alone, deriving courses when there is no ``course_id``.

        Parameters
        ----------
        registrations : DataFrame
            ``patient_id``, ``unit_id``, ``kind``, ``date``, ``status`` and data variables; ``course_id`` optional.
        units, patients : DataFrame, optional
            Derived from the registrations when absent (units without region or setting, no patient opted out).
        extract_date : Timestamp or str, optional
            Defaults to the latest registration date.
        codebook : Codebook, optional
        grace_days : int
            Grace period after ending + one year before a follow-up is owed.

        Raises
        ------
        RegistryError
            When registrations break the course rules (two endings, follow-up without ending); the message
            gives row numbers and rules.

        Examples
        --------
        >>> import pandas as pd
        >>> regs = pd.DataFrame({"patient_id": ["p1"] * 3, "unit_id": [1] * 3,
        ...     "kind": ["measurement", "ending", "measurement"], "status": [1, 3, 1],
        ...     "date": pd.to_datetime(["2021-01-05", "2021-02-01", "2021-04-01"])})
        >>> reg = Registry.from_registrations(regs, extract_date="2022-01-01")
        >>> reg.courses["ending_type"].tolist()
        ['interrupted', 'active']
        """
        regs = registrations.copy()
        if "status" not in regs.columns:
            regs["status"] = pd.array([pd.NA] * len(regs), dtype="Int64")
        if "course_id" not in regs.columns or regs["course_id"].isna().all():
            ids, problems = derive_course_ids(regs)
            if len(problems):
                lines = [
                    f"registrations row {r.row + 1}: {r.message} ({r.rule})" for r in problems.itertuples()
                ]
                raise RegistryError(
                    f"{len(problems)} registration(s) break the course rules:\n  " + "\n  ".join(lines[:20]),
                    lines,
                )
            regs["course_id"] = ids
        if "registration_id" not in regs.columns:
            regs.insert(
                0, "registration_id", pd.array([f"r{i + 1}" for i in range(len(regs))], dtype="string")
            )
        if extract_date is None:
            extract_date = pd.to_datetime(regs["date"]).max()
        extract_date = pd.Timestamp(extract_date)
        courses = summarise_courses(regs, extract_date, grace_days=grace_days)
        if units is None:
            units = pd.DataFrame({"unit_id": pd.unique(regs["unit_id"])})
            if "unit_name" in regs.columns:
                names = regs.drop_duplicates("unit_id").set_index("unit_id")["unit_name"]
                units["unit_name"] = units["unit_id"].map(names)
            units["region"] = pd.NA
            units["setting"] = pd.NA
        if patients is None:
            patients = pd.DataFrame({"patient_id": pd.unique(regs["patient_id"])})
            if "sex" in regs.columns:
                sex = regs.dropna(subset=["sex"]).drop_duplicates("patient_id").set_index("patient_id")["sex"]
                patients["sex"] = patients["patient_id"].map(sex)
            patients["reserved"] = False
        return cls(
            patients=patients,
            courses=courses,
            registrations=regs,
            units=units,
            codebook=codebook or load_codebook(),
            extract_date=extract_date,
            **kwargs,
        )

    # -- invariants -----------------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """Every broken invariant of the course model, as readable lines (row numbers, never identifiers)."""
        out: list[str] = []
        for name in TABLES:
            table = getattr(self, name)
            if table is None:
                continue
            missing = [c for c in REQUIRED_COLUMNS[name] if c not in table.columns]
            if missing:
                out.append(f"table {name!r} lacks required column(s) {missing}")
        if out:
            return out
        regs, courses = self.registrations, self.courses
        bad_kind = ~regs["kind"].isin(KINDS)
        for r in np.flatnonzero(bad_kind.to_numpy())[:20]:
            out.append(
                f"registrations row {r + 1}: kind {regs['kind'].iloc[r]!r} is not one of {list(KINDS)}"
            )
        if courses["course_id"].duplicated().any():
            n = int(courses["course_id"].duplicated().sum())
            out.append(f"courses: {n} course id(s) appear more than once")
        owner = courses.drop_duplicates("course_id").set_index("course_id")["patient_id"]
        reg_owner = regs["course_id"].map(owner)
        orphan = reg_owner.isna().to_numpy()
        for r in np.flatnonzero(orphan)[:20]:
            out.append(f"registrations row {r + 1}: belongs to no course in the courses table (orphan)")
        if orphan.sum() > 20:
            out.append(f"... {int(orphan.sum()) - 20} more orphan registrations")
        wrong_patient = (~orphan) & (
            reg_owner.astype("string") != regs["patient_id"].astype("string")
        ).fillna(True).to_numpy()
        for r in np.flatnonzero(wrong_patient)[:20]:
            out.append(f"registrations row {r + 1}: its course belongs to another patient")
        valid = regs.loc[~bad_kind & ~pd.Series(orphan, index=regs.index)]
        if len(valid):
            rank = valid["kind"].map(KIND_ORDER)
            counts = pd.crosstab(valid["course_id"], valid["kind"])
            for kind, label in (
                ("ending", "endings"),
                ("followup", "one-year follow-ups"),
                ("baseline", "baselines"),
            ):
                if kind in counts.columns:
                    n = int((counts[kind] > 1).sum())
                    if n:
                        out.append(f"{n} course(s) have more than one of: {label}")
            if "followup" in counts.columns:
                no_end = counts["followup"] > 0
                if "ending" in counts.columns:
                    no_end &= counts["ending"] == 0
                if int(no_end.sum()):
                    out.append(f"{int(no_end.sum())} course(s) have a one-year follow-up but no ending")
            # Order: within a course, sorted by date, the kind order must never go backwards.
            order = pd.DataFrame(
                {
                    "c": valid["course_id"].to_numpy(),
                    "d": pd.to_datetime(valid["date"]).to_numpy(),
                    "k": rank.to_numpy(),
                    "row": np.flatnonzero(~bad_kind.to_numpy() & ~orphan),
                }
            )
            order = order.sort_values(["c", "d", "k"], kind="stable")
            same = order["c"].to_numpy()[1:] == order["c"].to_numpy()[:-1]
            back = same & (order["k"].to_numpy()[1:] < order["k"].to_numpy()[:-1])
            # measurement after baseline etc. is fine; a kind going back (e.g. measurement after ending) is not
            for r in order["row"].to_numpy()[1:][back][:20]:
                out.append(
                    f"registrations row {r + 1}: dated out of order within its course "
                    "(e.g. a measurement after the ending, or a baseline after a measurement point)"
                )
            nd = order["d"].isna()
            if nd.any():
                out.append(f"{int(nd.sum())} registration(s) have no date")
        ends = courses.dropna(subset=["end_date"])
        before = ends["end_date"] < ends["start_date"]
        if before.any():
            out.append(f"{int(before.sum())} course(s) end before they start")
        return out

    def validate(self) -> Registry:
        """Check the course-model invariants; return ``self`` or raise :class:`RegistryError` listing problems.

        Invariants: every registration belongs to exactly one course of its patient; dates are ordered within
        a course (baseline, measurement points, ending, follow-up); one ending (and one follow-up) at most;
        a follow-up only after an ending.

        Examples
        --------
        >>> import kvarus_research as kr
        >>> reg = kr.synthetic.generate(n_courses=50, seed=3)
        >>> reg.validate().n_courses == len(reg.courses)
        True
        """
        problems = self.problems()
        if problems:
            raise RegistryError(
                f"the registry breaks {len(problems)} rule(s) of the course model:\n  "
                + "\n  ".join(problems),
                problems,
            )
        return self

    # -- views ----------------------------------------------------------------------------------------
    @property
    def n_courses(self) -> int:
        """Number of courses (opted-out patients included: use :meth:`without_opt_outs` for analyses)."""
        return len(self.courses)

    def reserved_patients(self) -> pd.Index:
        """Patients who opted out (reservasjon)."""
        if "reserved" not in self.patients.columns:
            return pd.Index([])
        return pd.Index(self.patients.loc[self.patients["reserved"].fillna(False).astype(bool), "patient_id"])

    def without_opt_outs(self) -> Registry:
        """The registry without opted-out patients (reservasjon): what every analysis starts from.

        Their number of courses is kept in ``meta["opted_out_courses"]`` for coverage figures only.

        Examples
        --------
        >>> import kvarus_research as kr
        >>> reg = kr.synthetic.generate(n_courses=300, seed=2)
        >>> clean = reg.without_opt_outs()
        >>> bool(clean.patients["reserved"].any())
        False
        """
        out_ids = self.reserved_patients()
        if len(out_ids) == 0:
            return replace(
                self, meta={**self.meta, "opted_out_courses": self.meta.get("opted_out_courses", 0)}
            )

        def keep(df: pd.DataFrame | None) -> pd.DataFrame | None:
            if df is None or "patient_id" not in df.columns:
                return df
            return df.loc[~df["patient_id"].isin(out_ids)].reset_index(drop=True)

        n_out = int(self.courses["patient_id"].isin(out_ids).sum())
        return replace(
            self,
            patients=keep(self.patients),
            courses=keep(self.courses),
            registrations=keep(self.registrations),
            network_work=keep(self.network_work),
            meta={**self.meta, "opted_out_courses": self.meta.get("opted_out_courses", 0) + n_out},
        )

    def course_view(self) -> pd.DataFrame:
        """Courses joined with their unit (name, region, setting) and patient sex: one row per course."""
        c = self.courses.merge(self.units, on="unit_id", how="left", suffixes=("", "_unit"))
        if "sex" in self.patients.columns:
            c = c.merge(self.patients[["patient_id", "sex"]], on="patient_id", how="left")
        return c

    def label(self, column: str, language: str = "en") -> str:
        """The codebook label of a column (the column name for structural columns)."""
        return self.codebook.label(column, language)

    def summary(self) -> pd.DataFrame:
        """Counts per table and the extract date, as a small table (no identifiers)."""
        rows = [(name, len(getattr(self, name))) for name in TABLES if getattr(self, name) is not None]
        rows.append(("opted-out patients", len(self.reserved_patients())))
        return pd.DataFrame(rows, columns=["table", "rows"])

    def __repr__(self) -> str:
        """A few lines a notebook can show: counts per table, extract date, codebook, provenance (no identifiers).

        Examples
        --------
        >>> import kvarus_research as kr
        >>> reg = kr.synthetic.generate(n_courses=200, seed=1)
        >>> print(repr(reg))  # doctest: +ELLIPSIS
        Registry: 200 courses of 171 patients (6 opted out) in 22 units, 814 registrations; extract date 2026-06-30
          tables: patients 171, courses 200, registrations 814, units 22, network_work 60, coverage 120
          codebook: Kvarus ...; source: synthetic (seed 1), ground truth in .truth
          tables as .patients, .courses, .registrations, .units; counts as .summary()
        """
        counts = {name: len(t) for name in TABLES if (t := getattr(self, name)) is not None}
        n_out = len(self.reserved_patients())
        extract = self.extract_date.date().isoformat() if pd.notna(self.extract_date) else "not set"
        source = self.meta.get("source", "tables")
        if source == "synthetic" and "seed" in self.meta:
            source = f"synthetic (seed {self.meta['seed']})"
        lines = [
            f"{type(self).__name__}: {counts.get('courses', 0)} courses of {counts.get('patients', 0)} patients "
            f"({n_out} opted out) in {counts.get('units', 0)} units, {counts.get('registrations', 0)} "
            f"registrations; extract date {extract}",
            "  tables: " + ", ".join(f"{name} {n}" for name, n in counts.items()),
            f"  codebook: {self.codebook.name} {self.codebook.version}; source: {source}"
            + (", ground truth in .truth" if self.truth else ""),
        ]
        if self.validation is not None:
            findings = getattr(self.validation, "findings", None)
            if findings is not None:
                lines.append(f"  validation: {len(findings)} finding(s) (.validation)")
        lines.append("  tables as .patients, .courses, .registrations, .units; counts as .summary()")
        return "\n".join(lines)

    # -- persistence ----------------------------------------------------------------------------------
    def to_parquet(self, directory: str | Path) -> Path:
        """Write every table as parquet plus ``registry.yaml`` (codebook, extract date, truth, meta).

        Examples
        --------
        >>> import tempfile, kvarus_research as kr
        >>> reg = kr.synthetic.generate(n_courses=30, seed=4)
        >>> back = Registry.from_parquet(reg.to_parquet(tempfile.mkdtemp()))
        >>> back.courses.equals(reg.courses)
        True
        """
        import yaml

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in TABLES:
            table = getattr(self, name)
            if table is not None:
                table.to_parquet(directory / f"{name}.parquet", index=False)
        meta = {
            "extract_date": self.extract_date.strftime("%Y-%m-%d"),
            "truth": _plain(self.truth),
            "meta": _plain(self.meta),
        }
        (directory / "registry.yaml").write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
        self.codebook.to_yaml(directory / "codebook.yaml")
        return directory

    @classmethod
    def from_parquet(cls, directory: str | Path) -> Registry:
        """Read a registry written by :meth:`to_parquet`."""
        import yaml

        directory = Path(directory)
        if not (directory / "registry.yaml").exists():
            from kvarus_research.errors import ExtractError

            raise ExtractError(f"{directory} holds no registry.yaml: not a registry written by to_parquet()")
        meta = yaml.safe_load((directory / "registry.yaml").read_text(encoding="utf-8"))
        tables = {
            name: pd.read_parquet(directory / f"{name}.parquet")
            for name in TABLES
            if (directory / f"{name}.parquet").exists()
        }
        return cls(
            **tables,
            codebook=load_codebook(directory / "codebook.yaml"),
            extract_date=pd.Timestamp(meta["extract_date"]),
            truth=meta.get("truth"),
            meta=meta.get("meta") or {},
        )


def _plain(obj: Any) -> Any:
    """Make numpy/pandas scalars and containers YAML-safe."""
    if obj is None or isinstance(obj, str | bool | int | float):
        return obj
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, pd.Timestamp):
        return obj.strftime("%Y-%m-%d")
    if isinstance(obj, pd.DataFrame):
        return obj.to_dict(orient="list")
    return str(obj)
