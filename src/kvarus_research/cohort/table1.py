"""Table 1: a descriptive (optionally stratified) table of a cohort's courses at baseline.

The numbers are computed here as a tidy table (so disclosure control can suppress small cells) and the display is
built with the ``tableone`` package (labels, standardised mean differences, missing counts). Variable labels, value
labels, missing codes and which variables are categorical all come from the codebook.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.codebook import Codebook, load_codebook
from kvarus_research.errors import AnalysisError
from kvarus_research.results import Definition, Result, draw_marker, hidden

#: Labels of structural course columns (not codebook variables).
STRUCTURAL_LABELS: dict[str, dict[str, str]] = {
    "age_at_start": {"en": "Age at course start", "nb": "Alder ved forløpsstart"},
    "setting": {"en": "Setting", "nb": "Behandlingsnivå"},
    "region": {"en": "Health region", "nb": "Helseregion"},
    "unit_name": {"en": "Treatment unit", "nb": "Behandlingsenhet"},
    "ending_type": {"en": "Ending", "nb": "Avslutning"},
    "followup_status": {"en": "One-year follow-up", "nb": "Ettårsoppfølging"},
    "n_registrations": {"en": "Registrations", "nb": "Registreringer"},
}
STRUCTURAL_CATEGORICAL = ("setting", "region", "unit_name", "ending_type", "followup_status")
DEFAULT_STRUCTURAL = ("age_at_start", "sex", "setting")
STAT_COLUMNS = ["n", "percent", "mean", "sd", "median", "q1", "q3", "missing"]
OVERALL = "Overall"


def _sex_name(cb: Codebook) -> str | None:
    var = cb.by_role("sex")
    return var.name if var is not None else None


def default_variables(courses: pd.DataFrame, codebook: Codebook) -> list[str]:
    """Age, sex, setting and every baseline-form codebook variable present in ``courses``.

    Examples
    --------
    >>> from kvarus_research import Cohort
    >>> from kvarus_research.cohort.examples import flow_registry
    >>> c = Cohort(flow_registry())
    >>> default_variables(c.courses, c.registry.codebook)
    ['age_at_start', 'sex', 'setting', 'hovedrusmiddel', 'dager_rus_30']
    """
    out = [c for c in DEFAULT_STRUCTURAL if c in courses.columns]
    baseline_forms = {f.name for f in codebook.forms if f.kind == "baseline"}
    for v in codebook.data_variables():
        if v.name in courses.columns and baseline_forms & set(v.forms) and v.name not in out:
            out.append(v.name)
    return out


def _prepare(
    courses: pd.DataFrame, variables: Sequence[str], cb: Codebook, language: str
) -> tuple[pd.DataFrame, dict[str, str], list[str], dict[str, list[str]]]:
    """Recode: missing codes → NA, codes → value labels; returns data, labels, categorical names, level order."""
    sex = _sex_name(cb)
    data = pd.DataFrame(index=courses.index)
    labels: dict[str, str] = {}
    categorical: list[str] = []
    levels: dict[str, list[str]] = {}
    for name in variables:
        if name not in courses.columns:
            raise AnalysisError(
                f"table1: the cohort has no column {name!r}; available: {list(courses.columns)}"
            )
        col = courses[name]
        cb_name = sex if name == "sex" else name
        var = cb.variable(cb_name) if cb_name is not None and cb_name in cb else None
        if var is not None:
            labels[name] = var.label_in(language)
            if var.missing_codes:
                col = col.mask(col.isin(list(var.missing_codes)))
            if var.type in ("enum", "boolean"):
                vl = var.value_labels(language) if var.codes else {True: "Yes", False: "No"}
                order = [vl[c] for c in (var.valid_codes if var.codes else (True, False))]
                mapped = col.map(lambda v, vl=vl: pd.NA if pd.isna(v) else vl.get(v, vl.get(_int(v), str(v))))
                data[name] = mapped.astype("object")
                seen = set(data[name].dropna())
                categorical.append(name)
                # codebook order, levels seen in the data only (as tableone shows them); unknown codes last
                levels[name] = [lev for lev in order if lev in seen] + sorted(map(str, seen - set(order)))
                continue
            data[name] = pd.to_numeric(col, errors="coerce").astype(float)
            continue
        labels[name] = STRUCTURAL_LABELS.get(name, {}).get(language, name)
        if name in STRUCTURAL_CATEGORICAL or not pd.api.types.is_numeric_dtype(col):
            data[name] = col.astype("object").where(col.notna(), pd.NA)
            categorical.append(name)
            levels[name] = sorted(map(str, data[name].dropna().unique()))
            data[name] = data[name].map(lambda v: v if pd.isna(v) else str(v))
        else:
            data[name] = pd.to_numeric(col, errors="coerce").astype(float)
    return data, labels, categorical, levels


def _int(v: Any) -> Any:
    try:
        return int(v)
    except (TypeError, ValueError):
        return v


def _stats(data: pd.DataFrame, groups: pd.Series, variables: Sequence[str], labels: dict[str, str],
           categorical: list[str], levels: dict[str, list[str]], group_order: list[str]) -> pd.DataFrame:  # fmt: skip
    rows: list[dict[str, Any]] = []
    for g in [OVERALL, *group_order]:
        sub = data if g == OVERALL else data.loc[groups == g]
        rows.append({"variable": "n", "label": "n", "level": "", "group": g, "n": len(sub)})
        for name in variables:
            col = sub[name]
            missing = int(col.isna().sum())
            base = {"variable": name, "label": labels[name], "group": g}
            if name in categorical:
                counts = col.value_counts()
                total = int(counts.sum())
                for i, lev in enumerate(levels[name]):
                    k = int(counts.get(lev, 0))
                    rows.append({**base, "level": lev, "n": k, "percent": 100 * k / total if total else np.nan,
                                 "missing": missing if i == 0 else pd.NA})  # fmt: skip
            else:
                x = col.dropna().to_numpy(dtype=float)
                rows.append(
                    {
                        **base,
                        "level": "",
                        "n": len(x),
                        "missing": missing,
                        "mean": x.mean() if len(x) else np.nan,
                        "sd": x.std(ddof=1) if len(x) > 1 else np.nan,
                        "median": np.median(x) if len(x) else np.nan,
                        "q1": np.percentile(x, 25) if len(x) else np.nan,
                        "q3": np.percentile(x, 75) if len(x) else np.nan,
                    }  # fmt: skip
                )
    out = pd.DataFrame(rows, columns=["variable", "label", "level", "group", *STAT_COLUMNS])
    out["n"] = out["n"].astype("Int64")
    out["missing"] = out["missing"].astype("Int64")
    for c in ("percent", "mean", "sd", "median", "q1", "q3"):
        out[c] = out[c].astype(float)
    return out


class Table1Result(Result):
    """A Table 1: tidy numbers (``.table``), the tableone display (``.tableone``) and SMDs (``.smd``).

    ``.table`` has one row per group × variable × level with ``n`` (count, or non-missing count for a continuous
    variable), ``percent`` (of the non-missing), ``mean``, ``sd``, ``median``, ``q1``, ``q3`` and ``missing``.
    :meth:`formatted` gives the familiar layout ("n (%)", "mean (SD)") after disclosure control.
    """

    count_columns = ("n", "missing")
    derived_columns = {c: "n" for c in ("percent", "mean", "sd", "median", "q1", "q3")}

    def __init__(self, table: pd.DataFrame, definition: Definition, tableone: Any, smd: pd.DataFrame,
                 categorical: list[str], rules: Any) -> None:  # fmt: skip
        self.table = table
        self.definition = definition
        self.tableone = tableone
        self.smd = smd
        self.categorical = categorical
        self.rules = rules

    def protected(self, rules: Any = None, *, enabled: bool = True) -> Any:
        """The tidy table after disclosure control, with each group's n split by every variable's levels and
        missing count, and the groups adding up to Overall (see :mod:`kvarus_research.cohort.table1_protection`).
        """
        from kvarus_research.cohort.table1_protection import protect_table1

        rules = self.rules if rules is None else rules
        if not enabled:
            return Result.protected(self, rules, enabled=False)
        return protect_table1(self.table, self.categorical, rules, overall=OVERALL)

    def formatted(self, *, protect: bool = True, decimals: int = 1) -> pd.DataFrame:
        """The table in the usual layout: rows (label, level), one column per group, plus ``Missing``.

        Categorical cells read ``n (percent)``, continuous ``mean (SD)``; a suppressed cell reads as the rules'
        neutral marker (``":"``) for the whole cell.
        """
        prot = self.protected(self.rules, enabled=protect)
        t, shown = prot.table, prot.display()
        label = prot.rules.marker

        def cell(i: int) -> str:
            continuous = t.loc[i, "variable"] not in self.categorical and t.loc[i, "variable"] != "n"
            if continuous:  # mean (SD): hidden with the summaries, not with a count hidden only as a partner
                if isinstance(shown.loc[i, "mean"], str) or pd.isna(t.loc[i, "mean"]):
                    return label if isinstance(shown.loc[i, "mean"], str) else ""
                return f"{t.loc[i, 'mean']:.{decimals}f} ({t.loc[i, 'sd']:.{decimals}f})"
            if isinstance(shown.loc[i, "n"], str):
                return label
            n = int(t.loc[i, "n"])
            if t.loc[i, "variable"] == "n":
                return str(n)
            if t.loc[i, "variable"] in self.categorical:
                return (
                    f"{n} ({t.loc[i, 'percent']:.{decimals}f})" if pd.notna(t.loc[i, "percent"]) else f"{n}"
                )
            return f"{t.loc[i, 'mean']:.{decimals}f} ({t.loc[i, 'sd']:.{decimals}f})"

        frame = t.assign(cell=[cell(i) for i in t.index])
        frame["missing_text"] = [
            label if isinstance(shown.loc[i, "missing"], str) else ("" if pd.isna(t.loc[i, "missing"]) else
                                                                      str(int(t.loc[i, "missing"])))
            for i in t.index
        ]  # fmt: skip
        groups = list(dict.fromkeys(frame["group"]))
        row_label = [f"{lab}, n (%)" if v in self.categorical else (lab if v == "n" else f"{lab}, mean (SD)")
                     for v, lab in zip(frame["variable"], frame["label"], strict=True)]  # fmt: skip
        frame["row"] = row_label
        order = list(dict.fromkeys(zip(frame["row"], frame["level"], strict=True)))
        wide = frame.pivot_table(
            index=["row", "level"], columns="group", values="cell", aggfunc="first", sort=False
        )
        wide = wide.reindex(pd.MultiIndex.from_tuples(order, names=["variable", "level"]))[groups]
        missing = frame[frame["group"] == OVERALL].set_index(["row", "level"])["missing_text"]
        wide.insert(0, "Missing", missing.reindex(wide.index).fillna("").to_numpy())
        small_group = bool(shown.loc[t["variable"] == "n", "n"].map(lambda v: isinstance(v, str)).any())
        if not self.smd.empty and not small_group:  # SMDs of suppressed groups would leak them
            row_to_label = dict(zip(frame["row"], frame["label"], strict=True))
            first = ~pd.Index(wide.index.get_level_values(0)).duplicated()
            for col in self.smd.columns:
                smd = self.smd[col]
                wide[col] = [
                    (f"{smd[row_to_label[r]]:.3f}" if f and row_to_label[r] in smd.index and pd.notna(smd[row_to_label[r]])
                     else "")
                    for r, f in zip(wide.index.get_level_values(0), first, strict=True)
                ]  # fmt: skip
        wide.columns.name = None
        return wide

    def to_csv(
        self, path: str | Path, rules: Any = None, *, protect: bool = True, formatted: bool = True
    ) -> Path:
        """Write the table after disclosure control (``formatted=False`` writes the tidy numbers).

        ``protect=False`` writes exact counts with a first line saying disclosure control was off.
        """
        path = Path(path)
        if not formatted:
            return Result.to_csv(self, path, rules if rules is not None else self.rules, protect=protect)
        if rules is not None:
            self.rules = rules
        with path.open("w", encoding="utf-8", newline="") as fh:
            if not protect:
                from kvarus_research.privacy.disclosure import DISABLED_STAMP

                fh.write(f"# {DISABLED_STAMP}\n")
            self.formatted(protect=protect).to_csv(fh)
        return path

    @classmethod
    def _draw(cls, protected: Any, ax: Any, definition: Definition, **kwargs: Any) -> Any:
        """Dot plot of the categorical levels' percentages (of courses with the variable recorded), one colour
        per group, from the protected table.

        Continuous variables (means on their own scales) stay in the table. A suppressed percentage has no dot:
        the rules' marker stands right of 100 % in the group's colour.

        Examples
        --------
        >>> import matplotlib; matplotlib.use("Agg")
        >>> import kvarus_research as kr
        >>> from kvarus_research.cohort.table1 import table1
        >>> res = table1(kr.Cohort(kr.synthetic.generate(n_courses=300, seed=1)), ["sex"])
        >>> [t.get_text() for t in res.plot().get_yticklabels()]
        ['Sex: Male', 'Sex: Female']
        """
        import matplotlib.pyplot as plt

        t = protected.table.reset_index(drop=True)
        gone = hidden(protected, "percent") | hidden(protected, "n")
        levels = t["level"].astype(str).ne("").to_numpy() & t["variable"].ne("n").to_numpy()
        t, gone = t[levels].reset_index(drop=True), gone[levels]
        rows = list(dict.fromkeys(zip(t["label"], t["level"], strict=True)))
        groups = list(dict.fromkeys(t["group"]))
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 0.28 * len(rows) + 1.6))
        y = {r: len(rows) - 1 - i for i, r in enumerate(rows)}
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for gi, g in enumerate(groups):
            mine = (t["group"] == g).to_numpy()
            ys = np.array([y[r] for r in zip(t["label"][mine], t["level"][mine], strict=True)], dtype=float)
            pct = t["percent"][mine].astype(float).to_numpy()
            ok = ~gone[mine] & ~np.isnan(pct)
            colour = colours[gi % len(colours)]
            ax.plot(pct[ok], ys[ok], "o", color=colour, ms=5, label=str(g))
            for yi in ys[gone[mine]]:
                draw_marker(ax, 103 + 6 * gi, yi, protected, color=colour, fontsize=7)
        ax.set_yticks(list(y.values()), [f"{lab}: {lev}" for lab, lev in rows], fontsize=7)
        ax.set_xlim(0, 103 + 6 * len(groups))
        ax.set_xticks([0, 20, 40, 60, 80, 100])
        ax.set_xlabel("Percent of courses with the variable recorded")
        ax.grid(axis="y", color="#eeeeee", lw=0.5)
        ax.legend(fontsize=7, loc="lower right")
        ax.set_title("Baseline characteristics (Table 1)", fontsize=10)
        return ax


def table1(
    cohort: Any,
    variables: Sequence[str] | None = None,
    *,
    groupby: str | None = None,
    language: str = "en",
    rules: Any = "norway",
    codebook: Codebook | None = None,
) -> Table1Result:
    """Describe a cohort's courses at baseline, optionally by group (Table 1), with SMDs and missing counts.

    Parameters
    ----------
    cohort : Cohort or DataFrame
        A :class:`~kvarus_research.cohort.Cohort` (its ``.courses``) or a course table with the same columns.
    variables : list of str, optional
        Columns to describe; by default age, sex, setting and the baseline-form codebook variables.
    groupby : str, optional
        A column to stratify by (e.g. ``"setting"``, ``"sex"``); SMDs are given between its groups.
    language : {"en", "nb"}
        Language of variable and value labels (from the codebook).
    rules : str or DisclosureRules
        Disclosure-control rules used by :meth:`Table1Result.formatted` and :meth:`Table1Result.to_csv`.
    codebook : Codebook, optional
        Needed only when ``cohort`` is a DataFrame (defaults to the bundled codebook).

    Returns
    -------
    Table1Result

    Examples
    --------
    >>> from kvarus_research import Cohort
    >>> from kvarus_research.cohort.examples import flow_registry
    >>> t1 = table1(Cohort(flow_registry()), ["age_at_start", "hovedrusmiddel"], groupby="setting")
    >>> row = t1.table.query("variable == 'hovedrusmiddel' and group == 'outpatient' and level == 'Alcohol'")
    >>> int(row["n"].iloc[0])
    3
    """
    from tableone import TableOne

    courses = getattr(cohort, "courses", cohort)
    if not isinstance(courses, pd.DataFrame):
        raise AnalysisError(f"table1 needs a Cohort or a course DataFrame, got {type(cohort).__name__}")
    if len(courses) == 0:
        raise AnalysisError("table1: the cohort has no courses")
    reg = getattr(cohort, "registry", None)
    cb = codebook or (reg.codebook if reg is not None else load_codebook())
    if variables is None:
        variables = [v for v in default_variables(courses, cb) if v != groupby]
    variables = list(variables)
    data, labels, categorical, levels = _prepare(
        courses, [*variables, *([groupby] if groupby else [])], cb, language
    )
    group_order: list[str] = []
    groups = pd.Series(index=data.index, dtype=object)
    if groupby:
        if groupby in variables:
            raise AnalysisError(f"table1: {groupby!r} is both a variable and the groupby column")
        groups = data[groupby]
        if groupby in levels:
            group_order = [g for g in levels[groupby] if (groups == g).any()]
        else:
            group_order = sorted(map(str, groups.dropna().unique()))
            groups = groups.map(lambda v: v if pd.isna(v) else str(v))
        n_na = int(groups.isna().sum())
        if n_na:
            data = data.loc[groups.notna()]
            groups = groups.loc[groups.notna()]
    table = _stats(data, groups, variables, labels, categorical, levels, group_order)
    renamed = data.rename(columns=labels)
    tab_cols = [labels[v] for v in variables]
    tab_cat = [labels[v] for v in variables if v in categorical]
    order = {labels[v]: levels[v] for v in variables if v in categorical}
    t = TableOne(
        renamed,
        columns=tab_cols,
        categorical=tab_cat,
        continuous=[c for c in tab_cols if c not in tab_cat],
        groupby=labels[groupby] if groupby else None,
        order=order or None,
        smd=bool(groupby) and len(group_order) > 1,
        missing=True,
        pval=False,
        include_null=False,
        label_suffix=True,
    )
    smd = pd.DataFrame()
    if groupby and len(group_order) > 1 and getattr(t, "smd_table", None) is not None:
        smd = t.smd_table.copy()
        smd.index = [str(i) for i in smd.index]
    population = f"{len(data)} courses" + (f" by {labels[groupby]}" if groupby else "")
    details: dict[str, Any] = {
        "variables": variables,
        "groupby": groupby,
        "percent": "of courses with the variable recorded (missing counted separately)",
        "continuous": "mean (SD, ddof=1); median and quartiles in .table",
        "smd": "standardised mean differences between groups (tableone)" if not smd.empty else "none",
        "disclosure control": str(rules),
    }
    if groupby and n_na:
        details["excluded"] = f"{n_na} course(s) with {groupby} unknown are left out of the table"
    definition = Definition(population=population, method="descriptive Table 1 (tableone)", details=details)
    return Table1Result(table, definition, t, smd, categorical, rules)
