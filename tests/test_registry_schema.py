"""The structural columns are declared once (registry/schema.py); the rest of the library follows the declaration."""

from __future__ import annotations

import re

import pandas as pd

import kvarus_research as kr
from kvarus_research.privacy import dates, pseudonym
from kvarus_research.registry import model, schema


def _docstring_columns() -> dict[str, set[str]]:
    """Table -> the ``column`` names the registry module's docstring lists for it."""
    out: dict[str, set[str]] = {}
    current = None
    for line in (model.__doc__ or "").splitlines():
        m = re.match(r"^``(\w+)``\s{2,}(.*)$", line)
        if m:
            current = m.group(1)
            out[current] = set()
            rest = m.group(2)
        elif current and line.startswith(" " * 19) and "``" in line:
            rest = line
        else:
            if line.startswith("="):
                current = current if current else None
            continue
        out[current] |= {name for name in re.findall(r"``(\w+)``", rest) if name != "PatientGender"}
    return out


def test_docstring_table_lists_exactly_the_declared_columns() -> None:
    listed = _docstring_columns()
    for table in schema.TABLES:
        declared = {c.name for c in schema.columns(table)}
        assert listed[table] == declared, table


def test_validation_pseudonymisation_and_date_shifting_read_the_declaration() -> None:
    assert model.REQUIRED_COLUMNS["courses"] == (
        "course_id", "patient_id", "unit_id", "start_date", "end_date", "ending_type", "followup_status"
    )  # fmt: skip
    assert pseudonym.ID_TABLES == schema.tables_with("id")
    assert dates.DATE_TABLES == schema.tables_with("date")


def test_a_synthetic_registry_has_the_declared_columns_with_their_kinds() -> None:
    reg = kr.synthetic.generate(n_courses=120, seed=3)
    for c in schema.STRUCTURE:
        table = getattr(reg, c.table)
        if c.has("required"):
            assert c.name in table.columns, (c.table, c.name)
        if c.name in table.columns and c.dtype == "date":
            assert pd.api.types.is_datetime64_any_dtype(table[c.name]), (c.table, c.name)


def test_pseudonymisation_replaces_every_declared_identifier_present() -> None:
    reg = kr.synthetic.generate(n_courses=80, seed=4)
    pseu, _ = kr.privacy.pseudonymize(reg, bytes(range(40)))
    for c in schema.columns(role="id"):
        before = getattr(reg, c.table)
        after = getattr(pseu, c.table)
        if before is None or c.name not in before.columns:
            continue
        assert not set(before[c.name].astype(str)) & set(after[c.name].astype(str)), (c.table, c.name)


def test_unknown_table_or_role_is_named() -> None:
    for kwargs, word in (
        ({"table": "course"}, "'course' is not a registry table"),
        ({"role": "key"}, "role"),
    ):
        try:
            schema.columns(**kwargs)
        except KeyError as e:
            assert word in str(e)
        else:  # pragma: no cover
            raise AssertionError(kwargs)
