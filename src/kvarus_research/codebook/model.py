"""The codebook: one description of every form and variable that drives validation, labels and documentation.

A codebook (kodebok) lists the register's forms and, for each variable, its type, labels in Norwegian and
English, code list, which codes mean missing, the valid range, whether it is required and, for outcome
measures, the direction of improvement, reliability and clinical cut-off. Every variable says whether it is
``documented`` (seen in the register's public material) or ``assumed`` (defined for the synthetic registry).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from kvarus_research.errors import CodebookError

VariableType = Literal["id", "text", "enum", "integer", "float", "date", "datetime", "boolean"]
VARIABLE_TYPES: tuple[str, ...] = ("id", "text", "enum", "integer", "float", "date", "datetime", "boolean")
ROLES: tuple[str, ...] = ("patient_id", "course_id", "unit_id", "unit_name", "age", "sex", "date", "status")
FORM_KINDS: tuple[str, ...] = ("baseline", "status", "measurement", "ending", "followup", "network_work")
SOURCES: tuple[str, ...] = ("documented", "assumed")


@dataclass(frozen=True)
class Outcome:
    """Metadata of an outcome measure.

    Parameters
    ----------
    direction : {"lower", "higher"}
        Which direction is improvement: ``"lower"`` when a lower score is better.
    reliability : float, optional
        Test-retest or internal-consistency reliability used by the reliable change index.
    cutoff : float, optional
        Clinical cut-off between the dysfunctional and functional range.
    """

    direction: Literal["lower", "higher"]
    reliability: float | None = None
    cutoff: float | None = None

    @property
    def sign(self) -> int:
        """+1 when higher is better, -1 when lower is better (multiply a change by it to get improvement)."""
        return 1 if self.direction == "higher" else -1


@dataclass(frozen=True)
class Variable:
    """One variable of the codebook (variabel).

    Examples
    --------
    >>> import kvarus_research as kr
    >>> v = kr.load_codebook().variable("plan_beh")
    >>> v.type, v.code_label(2, "en")
    ('enum', 'Yes')
    """

    name: str
    type: VariableType
    forms: tuple[str, ...]
    label: Mapping[str, str]
    codes: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    missing_codes: tuple[int | float, ...] = ()
    range: tuple[float, float] | None = None
    required: bool = False
    role: str | None = None
    outcome: Outcome | None = None
    source: Literal["documented", "assumed"] = "assumed"
    description: str = ""

    def label_in(self, language: str = "en") -> str:
        """The variable's label in ``language`` (``"nb"`` or ``"en"``), falling back to the other, then the name."""
        return self.label.get(language) or next(iter(self.label.values()), self.name)

    def code_label(self, code: Any, language: str = "en") -> str:
        """The label of one code, or the code as text when it has none."""
        try:
            entry = self.codes[int(code)]
        except (KeyError, TypeError, ValueError):
            return str(code)
        return entry.get(language) or next(iter(entry.values()), str(code))

    def value_labels(self, language: str = "en") -> dict[int, str]:
        """All codes with their labels in one language (missing codes excluded)."""
        return {c: self.code_label(c, language) for c in self.codes if c not in self.missing_codes}

    @property
    def valid_codes(self) -> tuple[int, ...]:
        """Codes that carry a value (the code list less the missing codes)."""
        return tuple(c for c in self.codes if c not in self.missing_codes)


@dataclass(frozen=True)
class Form:
    """A registration form (skjema) and the table it is stored in."""

    name: str
    table: str
    kind: str
    source: Literal["documented", "assumed"] = "assumed"


@dataclass(frozen=True)
class Codebook:
    """The whole codebook: forms, variables and the labels that mean "missing".

    Examples
    --------
    >>> import kvarus_research as kr
    >>> cb = kr.load_codebook()
    >>> cb.variable("behandlingsstatus").code_label(4, "nb")
    'Avsluttet med gjensidig avtale'
    >>> "dager_rus_30" in cb.outcomes()
    True
    """

    name: str
    forms: tuple[Form, ...]
    variables: tuple[Variable, ...]
    missing_labels: tuple[str, ...] = ()
    version: str = ""

    def __post_init__(self) -> None:
        names = [v.name for v in self.variables]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise CodebookError(f"codebook {self.name!r}: variable names defined twice: {', '.join(dup)}")
        form_names = {f.name for f in self.forms}
        for v in self.variables:
            unknown = [f for f in v.forms if f not in form_names]
            if unknown:
                raise CodebookError(
                    f"codebook {self.name!r}: variable {v.name!r} names unknown form(s) {unknown}; "
                    f"known forms: {sorted(form_names)}"
                )

    # -- look-ups -------------------------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return any(v.name == name for v in self.variables)

    def variable(self, name: str) -> Variable:
        """The variable called ``name``; a clear error when the codebook has none."""
        for v in self.variables:
            if v.name == name:
                return v
        raise CodebookError(f"codebook {self.name!r} has no variable {name!r}")

    def form(self, name: str) -> Form:
        """The form called ``name`` (or whose table is ``name``)."""
        for f in self.forms:
            if name in (f.name, f.table):
                return f
        raise CodebookError(
            f"codebook {self.name!r} has no form {name!r}; forms: {[f.name for f in self.forms]}"
        )

    def form_variables(self, form: str) -> list[Variable]:
        """Variables of one form, in codebook order."""
        name = self.form(form).name
        return [v for v in self.variables if name in v.forms]

    def by_role(self, role: str, form: str | None = None) -> Variable | None:
        """The variable that plays a structural role (e.g. ``"patient_id"``), optionally within one form."""
        for v in self.form_variables(form) if form else self.variables:
            if v.role == role:
                return v
        return None

    def outcomes(self) -> dict[str, Outcome]:
        """Outcome measures with their direction, reliability and cut-off."""
        return {v.name: v.outcome for v in self.variables if v.outcome is not None}

    def label(self, name: str, language: str = "en") -> str:
        """Label of a variable, or the name itself for columns the codebook does not know."""
        return self.variable(name).label_in(language) if name in self else name

    def value_labels(self, name: str, language: str = "en") -> dict[int, str]:
        """Code → label for an enum variable (empty for other types)."""
        return self.variable(name).value_labels(language) if name in self else {}

    def data_variables(self) -> list[Variable]:
        """Variables that are data, not structure (no role)."""
        return [v for v in self.variables if v.role is None]

    # -- (de)serialisation ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The codebook as plain data, in the canonical YAML layout."""
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "missing_labels": list(self.missing_labels),
            "forms": [
                {"name": f.name, "table": f.table, "kind": f.kind, "source": f.source} for f in self.forms
            ],
            "variables": [],
        }
        for v in self.variables:
            d: dict[str, Any] = {
                "name": v.name,
                "forms": list(v.forms),
                "type": v.type,
                "label": dict(v.label),
            }
            if v.codes:
                d["codes"] = {int(k): dict(lab) for k, lab in v.codes.items()}
            if v.missing_codes:
                d["missing_codes"] = list(v.missing_codes)
            if v.range is not None:
                d["range"] = list(v.range)
            if v.required:
                d["required"] = True
            if v.role:
                d["role"] = v.role
            if v.outcome is not None:
                d["outcome"] = {
                    k: getattr(v.outcome, k)
                    for k in ("direction", "reliability", "cutoff")
                    if getattr(v.outcome, k) is not None
                }
            if v.description:
                d["description"] = v.description
            d["source"] = v.source
            out["variables"].append(d)
        return out

    def to_yaml(self, path: str | Path) -> Path:
        """Write the codebook in the canonical YAML format."""
        path = Path(path)
        path.write_text(yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False), encoding="utf-8")
        return path


def _label(raw: Any, where: str) -> dict[str, str]:
    if isinstance(raw, str):
        return {"nb": raw, "en": raw}
    if isinstance(raw, Mapping) and raw:
        return {str(k): str(v) for k, v in raw.items()}
    raise CodebookError(f"{where}: label must be text or a mapping like {{nb: ..., en: ...}}, got {raw!r}")


def _variable(raw: Mapping[str, Any], where: str) -> Variable:
    if not isinstance(raw, Mapping) or "name" not in raw:
        raise CodebookError(f"{where}: each variable needs at least a name, got {raw!r}")
    name = str(raw["name"])
    where = f"{where}, variable {name!r}"
    vtype = raw.get("type")
    if vtype not in VARIABLE_TYPES:
        raise CodebookError(f"{where}: type {vtype!r} is not one of {VARIABLE_TYPES}")
    role = raw.get("role")
    if role is not None and role not in ROLES:
        raise CodebookError(f"{where}: role {role!r} is not one of {ROLES}")
    source = raw.get("source", "assumed")
    if source not in SOURCES:
        raise CodebookError(f"{where}: source {source!r} must be 'documented' or 'assumed'")
    codes: dict[int, dict[str, str]] = {}
    for code, lab in (raw.get("codes") or {}).items():
        try:
            codes[int(code)] = _label(lab, f"{where}, code {code!r}")
        except (TypeError, ValueError) as exc:
            raise CodebookError(f"{where}: code {code!r} is not an integer") from exc
    rng = raw.get("range")
    if rng is not None:
        if not (isinstance(rng, list | tuple) and len(rng) == 2 and float(rng[0]) <= float(rng[1])):
            raise CodebookError(f"{where}: range must be [min, max] with min <= max, got {rng!r}")
        rng = (float(rng[0]), float(rng[1]))
    outcome = None
    if raw.get("outcome"):
        o = raw["outcome"]
        if o.get("direction") not in ("lower", "higher"):
            raise CodebookError(
                f"{where}: outcome direction must be 'lower' or 'higher', got {o.get('direction')!r}"
            )
        rel = o.get("reliability")
        if rel is not None and not 0 < float(rel) < 1:
            raise CodebookError(f"{where}: reliability must lie strictly between 0 and 1, got {rel!r}")
        outcome = Outcome(
            direction=o["direction"],
            reliability=None if rel is None else float(rel),
            cutoff=None if o.get("cutoff") is None else float(o["cutoff"]),
        )
    forms = raw.get("forms") or []
    if isinstance(forms, str):
        forms = [forms]
    return Variable(
        name=name,
        type=vtype,
        forms=tuple(str(f) for f in forms),
        label=_label(raw.get("label", name), where),
        codes=codes,
        missing_codes=tuple(raw.get("missing_codes") or ()),
        range=rng,
        required=bool(raw.get("required", False)),
        role=role,
        outcome=outcome,
        source=source,
        description=str(raw.get("description", "") or ""),
    )


def codebook_from_dict(data: Mapping[str, Any], *, where: str = "codebook") -> Codebook:
    """Build a :class:`Codebook` from plain data in the canonical layout (as read from YAML).

    Examples
    --------
    >>> cb = codebook_from_dict({"name": "tiny", "forms": [{"name": "F", "table": "f", "kind": "baseline"}],
    ...     "variables": [{"name": "x", "forms": ["F"], "type": "integer", "range": [0, 10],
    ...                    "label": "X"}]})
    >>> cb.variable("x").range
    (0.0, 10.0)
    """
    if not isinstance(data, Mapping):
        raise CodebookError(
            f"{where}: expected a mapping with 'forms' and 'variables', got {type(data).__name__}"
        )
    forms = []
    for i, f in enumerate(data.get("forms") or []):
        if not isinstance(f, Mapping) or not f.get("name"):
            raise CodebookError(f"{where}: form #{i + 1} needs a name, got {f!r}")
        kind = f.get("kind", "status")
        if kind not in FORM_KINDS:
            raise CodebookError(
                f"{where}: form {f['name']!r} has kind {kind!r}, expected one of {FORM_KINDS}"
            )
        forms.append(
            Form(
                name=str(f["name"]),
                table=str(f.get("table", f["name"])),
                kind=kind,
                source=f.get("source", "assumed"),
            )
        )
    variables = [_variable(v, where) for v in data.get("variables") or []]
    if not variables:
        raise CodebookError(f"{where}: no variables")
    return Codebook(
        name=str(data.get("name", "codebook")),
        forms=tuple(forms),
        variables=tuple(variables),
        missing_labels=tuple(str(x) for x in data.get("missing_labels") or ()),
        version=str(data.get("version", "")),
    )


def load_codebook(path: str | Path | None = None) -> Codebook:
    """Load a codebook: the bundled Kvarus codebook, a canonical YAML file, or an MRS ``rapport.xlsx``.

    Parameters
    ----------
    path : str or Path, optional
        ``None`` for the bundled codebook; a ``.yaml``/``.yml`` file in the canonical layout; or an MRS
        ``rapport.xlsx`` (one sheet per form, see :func:`kvarus_research.codebook.read_rapport`).

    Returns
    -------
    Codebook

    Examples
    --------
    >>> import kvarus_research as kr
    >>> cb = kr.load_codebook()
    >>> cb.variable("eval_utbytte").source
    'documented'
    """
    if path is None:
        text = (
            resources.files("kvarus_research")
            .joinpath("data/kvarus_codebook.yaml")
            .read_text(encoding="utf-8")
        )
        return codebook_from_dict(yaml.safe_load(text), where="bundled codebook")
    path = Path(path)
    if not path.exists():
        raise CodebookError(f"codebook file {path} does not exist")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from kvarus_research.codebook.rapport import read_rapport

        return read_rapport(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CodebookError(f"codebook file {path}: not valid YAML ({exc})") from exc
    return codebook_from_dict(data, where=f"codebook file {path}")


def variables_of(codebook: Codebook, names: Iterable[str]) -> list[Variable]:
    """The variables with the given names, in that order (a clear error for unknown names)."""
    return [codebook.variable(n) for n in names]
