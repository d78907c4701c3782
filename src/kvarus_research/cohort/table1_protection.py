"""Disclosure control of a Table 1, with its additive structure declared to ``protect``.

In a Table 1 every variable splits each group's n: the levels of a categorical variable and its missing count add
up to the group's n, and so do a continuous variable's non-missing count and its missing count. With groups, each
cell of the Overall column is the sum of the groups' cells. Protected cell by cell, a hidden level (or a hidden
missing count) would be the group's n minus the published rest. So the table is protected as one long view of
(variable, level or "(missing)", group) cells: each (variable, group) is a partition of the group's n
(``partitions=``) and the groups add up to Overall (``margins=``).

What follows from the counts:

- a percentage is of the non-missing count; published next to its level's count it tells that count, so all
  percentages of a (variable, group) are hidden when its missing count is hidden;
- a mean, SD, median or quartiles is hidden when it summarises fewer than ``min_count`` courses, or when the group's
  n is hidden; a continuous variable's n hidden only as the partner of a small missing count does not hide them
  (they do not tell the count).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

MISSING_LEVEL = "(missing)"
SUMMARY = ("mean", "sd", "median", "q1", "q3")


def _view(table: pd.DataFrame, overall: str) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """The long view of cells and, per view row, the (table row, column) it came from."""
    sizes = table[table["variable"] == "n"].set_index("group")["n"]
    rows: list[dict[str, Any]] = []
    source: list[tuple[int, str]] = []
    for i, r in table.iterrows():
        size = sizes.get(r["group"], pd.NA)
        if r["variable"] == "n":
            rows.append({"variable": "n", "level": "", "group": r["group"], "n": r["n"], "N": pd.NA})
            source.append((i, "n"))
            continue
        rows.append({"variable": r["variable"], "level": str(r["level"]), "group": r["group"], "n": r["n"],
                     "N": size})  # fmt: skip
        source.append((i, "n"))
        if pd.notna(r["missing"]):  # the missing count sits on the variable's first row
            rows.append({"variable": r["variable"], "level": MISSING_LEVEL, "group": r["group"],
                         "n": r["missing"], "N": size})  # fmt: skip
            source.append((i, "missing"))
    view = pd.DataFrame(rows, columns=["variable", "level", "group", "n", "N"])
    view["n"] = view["n"].astype("Int64")
    view["N"] = view["N"].astype("Int64")
    return view, source


def protect_table1(
    table: pd.DataFrame, categorical: list[str], rules: Any = "norway", *, overall: str = "Overall"
) -> Any:
    """Protect a Table 1's tidy table (``Table1Result.table``); returns a ``ProtectedTable``.

    Examples
    --------
    >>> t = pd.DataFrame({"variable": ["n", "sex", "sex"], "label": ["n", "Sex", "Sex"],
    ...     "level": ["", "Male", "Female"], "group": "Overall", "n": [40, 37, 0], "percent": [None, 100.0, 0.0],
    ...     "mean": None, "sd": None, "median": None, "q1": None, "q3": None, "missing": [pd.NA, 3, pd.NA]})
    >>> p = protect_table1(t, ["sex"])
    >>> p.display()[["level", "n", "percent", "missing"]].values.tolist()  # 3 missing: 37 = 40 - 3 goes too
    [['', 40, nan, <NA>], ['Male', ':', ':', ':'], ['Female', 0, ':', <NA>]]
    """
    from kvarus_research.privacy import protect
    from kvarus_research.privacy.rules import ProtectedTable

    t = table.reset_index(drop=True)
    view, source = _view(t, overall)
    grouped = t["group"].nunique() > 1
    p = protect(
        view,
        counts=["n", "N"],
        partitions={"n": ("N", "level")},
        margins={"group": overall} if grouped else None,
        rules=rules,
    )
    out = t.copy()
    sup = pd.DataFrame(False, index=t.index, columns=["n", "missing", "percent", *SUMMARY])
    for (i, col), value, hidden in zip(source, p.table["n"], p.suppressed["n"].to_numpy(dtype=bool)):
        out.loc[i, col] = value
        sup.loc[i, col] = hidden
    out["n"] = out["n"].astype("Int64")
    out["missing"] = out["missing"].astype("Int64")
    key = list(zip(t["variable"], t["group"]))
    missing_hidden = (
        pd.Series(sup["missing"].to_numpy(), index=pd.MultiIndex.from_tuples(key))
        .groupby(level=[0, 1])
        .transform("any")
    )
    size_hidden = {
        g: bool(h) for g, h in zip(t.loc[t["variable"] == "n", "group"], sup.loc[t["variable"] == "n", "n"])
    }
    is_cat = t["variable"].isin(categorical).to_numpy()
    sup["percent"] = sup["n"].to_numpy() | (is_cat & missing_hidden.to_numpy())
    few = t["n"].fillna(0).astype(int).between(1, p.rules.min_count - 1).to_numpy()
    group_hidden = t["group"].map(size_hidden).fillna(False).to_numpy(dtype=bool)
    summary_hidden = ~is_cat & (t["variable"] != "n").to_numpy() & (few | group_hidden)
    for c in SUMMARY:
        sup[c] = summary_hidden & t[c].notna().to_numpy()
    sup["percent"] &= t["percent"].notna().to_numpy()
    for c in ("percent", *SUMMARY):
        out[c] = out[c].astype(float).where(~sup[c].to_numpy())
    log = p.log.copy()
    log["column"] = [
        source[r][1] if isinstance(r, int | np.integer) else c for r, c in zip(log["row"], log["column"])
    ]
    log["row"] = [source[r][0] if isinstance(r, int | np.integer) else r for r in log["row"]]
    extra = [
        {"row": i, "column": c, "action": "derived_suppressed",
         "reason": "a percentage of the non-missing count, whose missing count is hidden" if c == "percent"
         else f"summarises fewer than {p.rules.min_count} courses or a hidden group"}
        for c in ("percent", *SUMMARY) for i in np.flatnonzero(sup[c].to_numpy())
    ]  # fmt: skip
    log = pd.concat([log, pd.DataFrame(extra, columns=log.columns)], ignore_index=True)
    stamp = p.stamp + " (levels and missing split each group's n; groups add up to Overall)"
    return ProtectedTable(out, log, p.rules, True, sup, stamp)
