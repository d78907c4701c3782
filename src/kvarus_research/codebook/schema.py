"""pandera schemas generated from the codebook: one description drives validation.

:func:`form_schema` turns the codebook's description of one form (types, code lists, ranges, required fields)
into a :class:`pandera.pandas.DataFrameSchema` for the *typed* table of that form (values already parsed, the
codebook's missing codes already turned into NA). :func:`pandas_dtype` gives the pandas dtype of each codebook
type, so readers, the synthetic registry and exports agree on dtypes.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pandera.pandas as pa

from kvarus_research.codebook.model import Codebook, Variable

#: pandas dtype of each codebook type (nullable dtypes, so a missing value never changes the type).
DTYPES: dict[str, str] = {
    "id": "string",
    "text": "string",
    "enum": "Int64",
    "integer": "Int64",
    "float": "Float64",
    "date": "datetime64[ns]",
    "datetime": "datetime64[ns]",
    "boolean": "boolean",
}


def pandas_dtype(variable: Variable) -> str:
    """The pandas dtype a column of this codebook variable has once read.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> cb = kr.load_codebook()
    >>> pandas_dtype(cb.variable("dager_rus_30")), pandas_dtype(cb.variable("dato_mp_beh"))
    ('Int64', 'datetime64[ns]')
    """
    return DTYPES[variable.type]


def variable_checks(variable: Variable) -> list[pa.Check]:
    """The value checks of one variable: its code list (enum) and its valid range (numbers)."""
    checks: list[pa.Check] = []
    if variable.type == "enum" and variable.codes:
        checks.append(pa.Check.isin(list(variable.valid_codes)))
    if variable.range is not None and variable.type in ("integer", "float", "enum"):
        lo, hi = variable.range
        checks.append(pa.Check.in_range(lo, hi))
    return checks


def form_schema(
    codebook: Codebook, form: str, *, columns: dict[str, str] | None = None
) -> pa.DataFrameSchema:
    """A pandera schema for the typed table of one form.

    Parameters
    ----------
    codebook : Codebook
    form : str
        Form name (or table name) in the codebook.
    columns : dict, optional
        Codebook variable name → column name in the table (e.g. ``{"PasientGUID": "patient_id"}``) for tables
        whose structural columns were renamed. Variables not present in the table are not checked (a missing
        required column is the reader's business).

    Returns
    -------
    pandera.pandas.DataFrameSchema
        Column dtype, ``nullable = not required``, the code list as ``isin`` and the
        range as ``in_range``; extra columns allowed.

    Examples
    --------
    >>> import pandas as pd, kvarus_research as kr
    >>> schema = form_schema(kr.load_codebook(), "Målepunkt")
    >>> df = pd.DataFrame({"dager_rus_30": pd.array([3, 31], dtype="Int64")})
    >>> failures = failure_cases(schema, df)
    >>> failures[["column", "check", "failure_case"]].values.tolist()
    [['dager_rus_30', 'out_of_range', 31]]
    """
    columns = columns or {}
    spec: dict[str, pa.Column] = {}
    for v in codebook.form_variables(form):
        # Text and ids: any string storage (python or pyarrow) passes, so no dtype is imposed on them.
        spec[columns.get(v.name, v.name)] = pa.Column(
            None if v.type in ("id", "text") else pandas_dtype(v),
            checks=variable_checks(v),
            nullable=not v.required,
            required=False,
            title=v.label_in("en"),
        )
    return pa.DataFrameSchema(spec, strict=False, name=codebook.form(form).name)


def failure_cases(schema: pa.DataFrameSchema, df: pd.DataFrame) -> pd.DataFrame:
    """Validate lazily and return every failure case (empty when the table passes).

    Returns
    -------
    DataFrame
        ``column``, ``check`` (the rule: ``unknown_code`` for a code-list failure, ``out_of_range``,
        ``required`` for a missing required value, ``wrong_type`` for a column of the wrong dtype),
        ``failure_case`` (the offending value) and ``index`` (the row's index label in ``df``).
    """
    cols = ["column", "check", "failure_case", "index"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases[cols].reset_index(drop=True)
        fc["check"] = [_rule(str(c)) for c in fc["check"]]
        return fc
    return pd.DataFrame(columns=cols)


def _rule(check: str) -> str:
    """Name a pandera check by the rule it enforces."""
    if check.startswith("isin"):
        return "unknown_code"
    if check.startswith("in_range"):
        return "out_of_range"
    if check == "not_nullable":
        return "required"
    return "wrong_type"
