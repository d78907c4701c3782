"""Export of any table to SPSS (``.sav``) or Stata (``.dta``) with variable and value labels from the codebook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kvarus_research.codebook.model import Codebook
from kvarus_research.errors import ExtractError

#: Labels of the registry's structural columns (they are not codebook variables).
STRUCTURAL_LABELS = {
    "registration_id": "Registration id",
    "course_id": "Course id",
    "patient_id": "Patient id",
    "unit_id": "Unit id",
    "kind": "Registration kind",
    "date": "Date",
    "status": "Treatment status",
    "age": "Age",
    "sex": "Sex",
}
#: Codebook variable holding the code list of a structural column.
STRUCTURAL_CODES = {"status": "behandlingsstatus", "sex": "PatientGender"}


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Nullable pandas dtypes as the numpy/object columns pyreadstat writes."""
    out = pd.DataFrame(index=range(len(df)))
    for c in df.columns:
        s = df[c].reset_index(drop=True)
        if pd.api.types.is_datetime64_any_dtype(s):
            out[c] = s.astype("datetime64[ns]")
        elif pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            out[c] = s.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            out[c] = s.astype(object).where(s.notna(), None)
    return out


def export_table(df: pd.DataFrame, path: str | Path, codebook: Codebook, *, language: str = "en") -> Path:
    """Write a table to SPSS ``.sav`` or Stata ``.dta`` with labels from the codebook.

    Variable labels come from the codebook (structural columns get an English label); value labels from each
    enum variable's code list (``status`` and ``sex`` use ``behandlingsstatus`` and ``PatientGender``).
    Missing values are system-missing in SPSS and ``.`` in Stata.

    Parameters
    ----------
    df : DataFrame
    path : str or Path
        Ending in ``.sav`` or ``.dta``.
    codebook : Codebook
    language : {"en", "nb"}
        Language of the labels.

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd, pyreadstat, kvarus_research as kr
    >>> df = pd.DataFrame({"plan_beh": pd.array([2, 1, None], dtype="Int64")})
    >>> p = export_table(df, pathlib.Path(tempfile.mkdtemp()) / "t.sav", kr.load_codebook())
    >>> _, meta = pyreadstat.read_sav(str(p))
    >>> meta.column_names_to_labels["plan_beh"], meta.variable_value_labels["plan_beh"][2.0]
    ('Treatment plan in place', 'Yes')
    """
    import pyreadstat

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".sav", ".dta"):
        raise ExtractError(f"{path.name}: export_table writes .sav (SPSS) or .dta (Stata), not {suffix!r}")
    labels, value_labels = [], {}
    for c in df.columns:
        var = c if c in codebook else STRUCTURAL_CODES.get(c)
        labels.append(codebook.label(c, language) if c in codebook else STRUCTURAL_LABELS.get(c, c))
        if var is not None and var in codebook and codebook.variable(var).type == "enum":
            vl = codebook.value_labels(var, language)
            if vl:
                value_labels[c] = {float(k): v for k, v in vl.items()}
    data = _plain(df)
    try:
        if suffix == ".sav":
            pyreadstat.write_sav(data, str(path), column_labels=labels, variable_value_labels=value_labels)
        else:
            pyreadstat.write_dta(
                data, str(path), column_labels=labels, variable_value_labels=value_labels, version=15
            )
    except Exception as exc:  # pyreadstat raises its own types (e.g. a name Stata refuses)
        raise ExtractError(f"{path.name}: cannot be written ({type(exc).__name__}: {exc})") from exc
    return path
