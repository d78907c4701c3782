"""Re-identification risk over quasi-identifiers: k-anonymity, l-diversity, and reaching a target k.

An *equivalence class* is a set of records sharing the same values of the quasi-identifiers (age band, sex, unit,
month of start ...). With class sizes f₁..f_J over n records:

* k-anonymity: k = min f_j (every record looks like at least k − 1 others);
* highest re-identification risk (prosecutor model) = 1 / min f_j = 1 / k;
* average re-identification risk = J / n (the mean over records of 1 / f of the record's class);
* distinct l-diversity: l = the smallest number of distinct sensitive values within a class.

Missing quasi-identifier values form their own value (a suppressed value matches only other suppressed values).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kvarus_research.errors import PrivacyError


@dataclass
class RiskReport:
    """Risk measures over a set of quasi-identifiers (see the module docstring for the formulas)."""

    quasi_identifiers: list[str]
    n_records: int
    n_classes: int
    k: int
    highest_risk: float
    average_risk: float
    l_diversity: int | None
    records_below: int
    target_k: int | None

    def to_frame(self) -> pd.DataFrame:
        """The measures as a two-column table."""
        rows = [
            ("records", self.n_records),
            ("equivalence classes", self.n_classes),
            ("k (smallest class)", self.k),
            ("highest risk (1/k)", self.highest_risk),
            ("average risk (classes/records)", self.average_risk),
            ("l (distinct sensitive values, smallest)", self.l_diversity),
            (f"records in classes smaller than {self.target_k}", self.records_below),
        ]
        return pd.DataFrame(rows, columns=["measure", "value"], dtype=object)


def _check(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise PrivacyError(f"{what} column(s) {missing} are not in the table (columns: {list(df.columns)})")


def class_sizes(df: pd.DataFrame, quasi_identifiers: Sequence[str]) -> pd.Series:
    """Size of each record's equivalence class (aligned with ``df``).

    Examples
    --------
    >>> df = pd.DataFrame({"sex": [1, 1, 2], "band": ["30-39", "30-39", "30-39"]})
    >>> class_sizes(df, ["sex", "band"]).tolist()
    [2, 2, 1]
    """
    _check(df, quasi_identifiers, "quasi-identifier")
    if len(df) == 0:
        return pd.Series([], dtype=np.int64, index=df.index)
    keys = [df[c].astype(object).where(df[c].notna(), "\x00NA") for c in quasi_identifiers]
    return df.groupby(keys, sort=False, dropna=False)[quasi_identifiers[0]].transform("size").astype(np.int64)


def risk_report(
    df: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    *,
    sensitive: str | None = None,
    target_k: int | None = 5,
) -> RiskReport:
    """k-anonymity, l-diversity and re-identification risk of a record-level table.

    Parameters
    ----------
    df : DataFrame
        One row per record (patient or course).
    quasi_identifiers : list of str
        Columns an attacker could know from elsewhere (age, sex, unit, dates ...).
    sensitive : str, optional
        A sensitive column for distinct l-diversity.
    target_k : int, optional
        Count the records in classes smaller than this.

    Examples
    --------
    >>> df = pd.DataFrame({"sex": [1, 1, 1, 2, 2], "band": ["a", "a", "a", "a", "b"], "drug": [1, 2, 2, 1, 3]})
    >>> r = risk_report(df, ["sex", "band"], sensitive="drug", target_k=2)
    >>> r.k, r.highest_risk, r.average_risk, r.l_diversity, r.records_below  # classes of 3, 1, 1: k=1, 3/5
    (1, 1.0, 0.6, 1, 2)
    """
    sizes = class_sizes(df, quasi_identifiers)
    n = len(df)
    if n == 0:
        raise PrivacyError("risk_report: the table has no records")
    n_classes = int((1.0 / sizes).sum().round())
    k = int(sizes.min())
    l_div = None
    if sensitive is not None:
        _check(df, [sensitive], "sensitive")
        keys = [df[c].astype(object).where(df[c].notna(), "\x00NA") for c in quasi_identifiers]
        l_div = int(df.groupby(keys, sort=False, dropna=False)[sensitive].nunique(dropna=False).min())
    below = int((sizes < target_k).sum()) if target_k else 0
    return RiskReport(
        list(quasi_identifiers), n, n_classes, k, 1.0 / k, n_classes / n, l_div, below, target_k
    )


def band(width: int, *, start: int = 0) -> Callable[[pd.Series], pd.Series]:
    """A generaliser: numbers → band labels like ``"30-34"`` (width 5).

    Examples
    --------
    >>> band(10)(pd.Series([34, 41, None])).tolist()
    ['30-39', '40-49', nan]
    """

    def apply(s: pd.Series) -> pd.Series:
        x = pd.to_numeric(s, errors="coerce")
        lo = ((x - start) // width) * width + start
        out = lo.map(lambda v: np.nan if pd.isna(v) else f"{int(v)}-{int(v) + width - 1}")
        return out.astype(object)

    apply.__name__ = f"band({width})"
    return apply


def achieve_k(
    df: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    k: int,
    *,
    generalize: Mapping[str, Sequence[Callable[[pd.Series], pd.Series]]] | None = None,
    max_suppressed_share: float = 0.05,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Make a table k-anonymous: generalise step by step, then suppress locally, then drop what is left.

    1. Generalisation: each column in ``generalize`` has a list of ever coarser generalisers (e.g. ``band(5)``,
       ``band(10)``); greedily apply the next step of the column that brings most records into classes of size
       ≥ k, while more than ``max_suppressed_share`` of records are in small classes.
    2. Local suppression: in records still in classes < k, set quasi-identifier values to missing, the column
       with most distinct values first, until their class reaches k.
    3. Records whose fully suppressed class is still smaller than k are removed (counted in the report).

    Returns
    -------
    (DataFrame, DataFrame)
        The k-anonymous table and the change report (``step``, ``column``, ``action``, ``records``).

    Examples
    --------
    >>> df = pd.DataFrame({"age": [31, 33, 36, 38, 52, 57, 70], "sex": [1, 1, 1, 1, 2, 1, 1]})
    >>> out, changes = achieve_k(df, ["age", "sex"], 2, generalize={"age": [band(10)]})
    >>> out["age"].tolist()  # 30-39 x4 is safe; 52/2, 57/1, 70/1 are alone: age suppressed, 57 and 70 pair up
    ['30-39', '30-39', '30-39', '30-39', nan, nan]
    >>> changes[["column", "action", "records"]].values.tolist()  # 52/2 stays alone even without sex: removed
    [['age', 'generalised', 7], ['age', 'suppressed', 3], ['sex', 'suppressed', 1], ['', 'removed', 1]]
    """
    _check(df, quasi_identifiers, "quasi-identifier")
    if k < 1:
        raise PrivacyError(f"achieve_k: k must be at least 1, got {k}")
    out = df.copy()
    steps = {c: list(fs) for c, fs in (generalize or {}).items()}
    _check(out, list(steps), "generalised")
    log: list[dict[str, object]] = []

    def n_small(frame: pd.DataFrame) -> int:
        return int((class_sizes(frame, quasi_identifiers) < k).sum())

    while steps and n_small(out) > max_suppressed_share * len(out):
        best = None
        for col, fs in steps.items():
            if not fs:
                continue
            trial = out.copy()
            trial[col] = fs[0](trial[col])
            score = n_small(trial)
            if best is None or score < best[0]:
                best = (score, col, trial)
        if best is None:
            break
        _, col, out = best
        f = steps[col].pop(0)
        log.append(
            {
                "step": len(log) + 1,
                "column": col,
                "action": "generalised",
                "records": len(out),
                "detail": getattr(f, "__name__", "generaliser"),
            }
        )

    done: set[str] = set()
    while len(done) < len(quasi_identifiers):
        small = (class_sizes(out, quasi_identifiers) < k).to_numpy()
        if not small.any():
            break
        best = None
        for col in quasi_identifiers:
            if col in done:
                continue
            trial = out.copy()
            trial[col] = trial[col].astype(object)
            touched = small & trial[col].notna().to_numpy()
            trial.loc[touched, col] = np.nan
            score = n_small(trial)
            if best is None or score < best[0]:
                best = (score, col, trial, int(touched.sum()))
        assert best is not None
        _, col, out, n_touched = best
        done.add(col)
        if n_touched:
            log.append(
                {
                    "step": len(log) + 1,
                    "column": col,
                    "action": "suppressed",
                    "records": n_touched,
                    "detail": "value set to missing in classes smaller than k",
                }
            )
    small = (class_sizes(out, quasi_identifiers) < k).to_numpy() if len(out) else np.zeros(0, dtype=bool)
    if small.any():
        out = out[~small]
        log.append(
            {
                "step": len(log) + 1,
                "column": "",
                "action": "removed",
                "records": int(small.sum()),
                "detail": "still in a class smaller than k after suppression",
            }
        )
    changes = pd.DataFrame(log, columns=["step", "column", "action", "records", "detail"])
    return out, changes
