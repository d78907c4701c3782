"""The structural columns of the registry tables, declared once as data.

Codebook variables (the register's forms) are described by the codebook; this module describes the columns the
library itself gives every table: identifiers, dates, unit, opt-out flag, and the columns derived from the course
model (``ending_type``, ``followup_status``, ``age_at_start`` …). Validation (:data:`REQUIRED_COLUMNS` of
:mod:`kvarus_research.registry.model`), pseudonymisation and date shifting (the tables they touch) and the data
dictionary in the docs are read from :data:`STRUCTURE`.

Roles of a column
-----------------
``required``
    the table is rejected without it.
``id``
    an identifier of a person, course, registration or case: replaced by a keyed pseudonym, never shown.
``date``
    a calendar date of a person's treatment: shifted per patient by :func:`kvarus_research.privacy.shift_dates`.
``unit``
    the unit (behandlingsenhet) a row belongs to: the grouping unit comparisons use.
``opt_out``
    the patient opted out (reservasjon): the patient appears in no output.
``derived``
    computed by the library from other columns (``source`` says from what), not read from the extract.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The tables of a registry, in the order of the data flow.
TABLES: tuple[str, ...] = ("patients", "courses", "registrations", "units", "network_work", "coverage")
ROLES: frozenset[str] = frozenset({"required", "id", "date", "unit", "opt_out", "derived"})


@dataclass(frozen=True)
class Column:
    """One structural column: its table, name, type, roles and meaning in English and Norwegian (bokmål)."""

    table: str
    name: str
    dtype: str
    roles: frozenset[str]
    en: str
    nb: str
    source: str = ""

    def has(self, role: str) -> bool:
        """Whether the column has ``role`` (one of :data:`ROLES`)."""
        return role in self.roles


def _c(table: str, name: str, dtype: str, roles: str, en: str, nb: str, source: str = "") -> Column:
    r = frozenset(roles.split())
    assert r <= ROLES, r - ROLES
    return Column(table, name, dtype, r, en, nb, source)


STRUCTURE: tuple[Column, ...] = (
    _c("patients", "patient_id", "string", "required id", "patient (pseudonym after pseudonymisation)",
       "pasient (pseudonym etter pseudonymisering)"),
    _c("patients", "sex", "integer code", "", "sex (codebook PatientGender codes)", "kjønn (kodeliste PatientGender)"),
    _c("patients", "reserved", "boolean", "required opt_out", "the patient opted out (reservasjon)",
       "pasienten har reservert seg"),
    _c("patients", "birth_date", "date", "date", "date of birth (dropped at pseudonymisation, age kept)",
       "fødselsdato (fjernes ved pseudonymisering, alder beholdes)"),
    _c("courses", "course_id", "string", "required id", "treatment course (forløp)", "behandlingsforløp"),
    _c("courses", "patient_id", "string", "required id", "patient of the course", "pasienten i forløpet"),
    _c("courses", "unit_id", "integer", "required unit", "unit of the course", "behandlingsenheten"),
    _c("courses", "start_date", "date", "required date derived", "date of the course's first registration",
       "dato for forløpets første registrering", "registrations.date"),
    _c("courses", "end_date", "date", "required date derived", "date of the ending registration (empty if active)",
       "dato for avslutningsregistreringen (tom om aktivt)", "registrations.date where kind = ending"),
    _c("courses", "ending_type", "category", "required derived",
       "mutual_agreement, interrupted, transferred, active (unknown without a status code)",
       "avsluttet etter avtale, avbrutt, overført, aktivt (ukjent uten statuskode)",
       "status of the ending registration"),
    _c("courses", "followup_date", "date", "date derived", "date of the one-year follow-up registration",
       "dato for ettårsoppfølgingen", "registrations.date where kind = followup"),
    _c("courses", "followup_status", "category", "required derived",
       "reached, not_reached, declined, not_yet_due, not_registered, no_ending",
       "nådd, ikke nådd, takket nei, ikke forfalt, ikke registrert, ikke avsluttet",
       "follow-up registration, its status, the ending date and the extract date"),
    _c("courses", "age_at_start", "integer", "derived", "age in years at the course's start",
       "alder i år ved forløpets start", "registrations.age of the first registration"),
    _c("courses", "n_registrations", "integer", "derived", "registrations in the course",
       "registreringer i forløpet", "registrations"),
    _c("registrations", "registration_id", "integer", "id", "registration (skjema)", "registrering (skjema)"),
    _c("registrations", "course_id", "string", "required id", "course of the registration",
       "forløpet registreringen hører til"),
    _c("registrations", "patient_id", "string", "required id", "patient of the registration",
       "pasienten registreringen gjelder"),
    _c("registrations", "unit_id", "integer", "required unit", "unit that registered", "enheten som registrerte"),
    _c("registrations", "kind", "category", "required", "baseline, measurement, ending, followup",
       "innkomst, målepunkt, avslutning, oppfølging"),
    _c("registrations", "date", "date", "required date", "date of the registration", "registreringsdato"),
    _c("registrations", "status", "integer code", "", "status code of the form (ending type, follow-up reached)",
       "statuskode på skjemaet (avslutningsårsak, oppfølging nådd)"),
    _c("registrations", "age", "integer", "", "age in years at the registration", "alder i år ved registreringen"),
    _c("units", "unit_id", "integer", "required unit", "unit (behandlingsenhet)", "behandlingsenhet"),
    _c("units", "unit_name", "string", "", "unit name", "enhetens navn"),
    _c("units", "region", "category", "", "health region", "helseregion"),
    _c("units", "setting", "category", "", "inpatient or outpatient", "døgn eller poliklinikk"),
    _c("network_work", "case_id", "integer", "id", "network-work registration", "registrering av nettverksarbeid"),
    _c("network_work", "patient_id", "string", "required id", "patient", "pasient"),
    _c("network_work", "unit_id", "integer", "required unit", "unit", "enhet"),
    _c("network_work", "date", "date", "required date", "date of discharge", "utskrivningsdato"),
    _c("coverage", "unit_id", "integer", "required unit", "unit", "enhet"),
    _c("coverage", "year", "integer", "required", "calendar year", "kalenderår"),
    _c("coverage", "expected_courses", "integer", "required", "courses the unit should have registered (NPR)",
       "forløp enheten skulle ha registrert (NPR)"),
    _c("coverage", "reserved_courses", "integer", "", "courses of patients who opted out",
       "forløp for pasienter som har reservert seg"),
)  # fmt: skip


def columns(table: str | None = None, role: str | None = None) -> tuple[Column, ...]:
    """The structural columns of ``table`` (all tables when None) that have ``role`` (any when None).

    Examples
    --------
    >>> [c.name for c in columns("courses", "required")][:3]
    ['course_id', 'patient_id', 'unit_id']
    >>> sorted({c.table for c in columns(role="id")})
    ['courses', 'network_work', 'patients', 'registrations']
    """
    if table is not None and table not in TABLES:
        raise KeyError(f"{table!r} is not a registry table; expected one of {', '.join(TABLES)}")
    if role is not None and role not in ROLES:
        raise KeyError(f"{role!r} is not a column role; expected one of {', '.join(sorted(ROLES))}")
    return tuple(
        c for c in STRUCTURE if (table is None or c.table == table) and (role is None or c.has(role))
    )


def tables_with(role: str) -> tuple[str, ...]:
    """The tables holding at least one column with ``role``, in :data:`TABLES` order.

    Examples
    --------
    >>> tables_with("date")
    ('patients', 'courses', 'registrations', 'network_work')
    """
    have = {c.table for c in columns(role=role)}
    return tuple(t for t in TABLES if t in have)


def required_columns() -> dict[str, tuple[str, ...]]:
    """Table → the columns it must have."""
    return {t: tuple(c.name for c in columns(t, "required")) for t in TABLES}
