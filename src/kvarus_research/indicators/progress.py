"""Patient progress (følge egen utvikling): one course's outcomes across all its registrations.

For one pseudonymised course: a figure of every codebook outcome measure over the course (with the direction of
improvement on each axis) and a one-page, self-contained HTML summary of what was registered when. No identifier
is shown other than the pseudonymous course id; dates are shown as days since the course started and the month.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.errors import AnalysisError
from kvarus_research.indicators.framework import as_registry, unit_names
from kvarus_research.registry.constants import KIND_ORDER
from kvarus_research.results import Definition, ProtectedResult, Result

KIND_LABELS = {"baseline": "Baseline", "measurement": "Measurement point", "ending": "Ending",
               "followup": "One-year follow-up"}  # fmt: skip
FEEDBACK = ("plan_beh", "plan_krise", "eval_utbytte")


def _clean(values: pd.Series, var: Any) -> np.ndarray:
    """Numeric values with the codebook's missing codes and out-of-range values as NaN."""
    v = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
    v[np.isin(v, np.asarray(var.missing_codes, dtype=float))] = np.nan
    if var.range is not None:
        v[(v < var.range[0]) | (v > var.range[1])] = np.nan
    return v


class ProgressResult(Result):
    """One course's registrations (``table``) and outcome measures (``outcomes``: long format).

    ``table``: ``registration, kind, month, day, status`` and the patient's feedback answers, labelled from the
    codebook. ``outcomes``: ``variable, label, direction, day, kind, value``.
    """

    def __init__(self, course_id: str, unit: str, table: pd.DataFrame, outcomes: pd.DataFrame,
                 definition: Definition, codebook: Any) -> None:  # fmt: skip
        self.course_id = course_id
        self.unit = unit
        self.table = table
        self.outcomes = outcomes
        self.definition = definition
        self.codebook = codebook

    def protected(self, rules: Any = "norway", *, enabled: bool = True) -> Any:
        """The registrations table after disclosure control (it holds no counts), with the outcome measures as the
        protected side table ``.sides["outcomes"]`` that the figure draws."""
        from kvarus_research.privacy import protect

        main = Result.protected(self, rules, enabled=enabled)
        outcomes = protect(self.outcomes, counts=[], rules=rules, enabled=enabled)
        return ProtectedResult.of(main, {"outcomes": outcomes})

    def _draw_context(self) -> dict[str, Any]:
        ranges = {n: self.codebook.variable(n).range for n in dict.fromkeys(self.outcomes["variable"])}
        return {"course_id": self.course_id, "ranges": ranges}

    @classmethod
    def _draw(cls, protected: Any, ax: Any, definition: Definition, *, course_id: str = "",
              ranges: dict[str, Any] | None = None, variable: str | None = None, **kwargs: Any) -> Any:  # fmt: skip
        """Small multiples: one panel per outcome measure, value against days since the course started.

        The y axis says which direction is better ("lower is better" / "higher is better"). With ``ax`` given
        (or ``variable``), one measure is drawn into one Axes (``variable``, default the first). Returns the first
        Axes (``ax.figure`` is the Figure).
        """
        import matplotlib.pyplot as plt

        outcomes = protected.sides["outcomes"].table
        names = list(dict.fromkeys(outcomes["variable"]))
        if not names:
            raise AnalysisError("this course has no outcome answers to plot")
        ranges = ranges or {}
        if ax is not None or variable is not None:
            if variable is not None and variable not in names:
                raise AnalysisError(f"this course has no answers to {variable!r}; measures: {names}")
            names = [variable or names[0]]
            if ax is None:
                _, ax = plt.subplots(figsize=(5, 2.9))
            axes, fig = np.array([ax]), ax.figure
        else:
            ncol = 2 if len(names) > 1 else 1
            nrow = int(np.ceil(len(names) / ncol))
            fig, grid = plt.subplots(nrow, ncol, figsize=(5 * ncol, 2.3 * nrow + 0.6), squeeze=False)
            axes = grid.flatten()
        markers = {"baseline": "s", "measurement": "o", "ending": "D", "followup": "^"}
        for axis, name in zip(axes, names, strict=False):
            d = outcomes[outcomes["variable"] == name]
            axis.plot(d["day"], d["value"], "-", color="#4292c6", lw=1)
            for kind, sub in d.groupby("kind", sort=False):
                axis.plot(sub["day"], sub["value"], markers.get(kind, "o"), color="#08306b", ms=5,
                          label=KIND_LABELS.get(kind, kind))  # fmt: skip
            direction = d["direction"].iloc[0]
            arrow = "↓ lower is better" if direction == "lower" else "↑ higher is better"
            axis.set_title(str(d["label"].iloc[0]), fontsize=8)
            axis.set_ylabel(arrow, fontsize=7)
            span = ranges.get(name)
            if span is not None:
                axis.set_ylim(span[0], span[1] * 1.05)
            axis.tick_params(labelsize=7)
        for axis in list(axes)[len(names) :]:
            axis.set_visible(False)
        axes[0].legend(fontsize=6)
        if len(axes) > 1:
            fig.supxlabel("Days since the course started", fontsize=8)
            fig.suptitle(f"Course {course_id}: outcomes over the course", fontsize=10)
            fig.tight_layout()
        else:
            axes[0].set_xlabel("Days since the course started", fontsize=8)
        return axes[0]

    def to_html(self, path: str | Path | None = None) -> str:
        """A one-page self-contained HTML summary (figure embedded as base64 PNG); written to ``path`` if given."""
        import matplotlib.pyplot as plt

        img = ""
        if len(self.outcomes):
            fig = self.plot().figure
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=90)
            plt.close(fig)
            img = f'<img alt="outcomes" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'
        table = self.table.to_html(index=False, na_rep="–", border=0, escape=True)
        page = (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Course {html.escape(self.course_id)}</title><style>body{{font-family:sans-serif;"
            "max-width:60em;margin:1em auto}}table{border-collapse:collapse;font-size:0.8em}"
            "td,th{padding:2px 6px;border-bottom:1px solid #ddd}img{max-width:100%}</style></head><body>"
            f"<h1>Course {html.escape(self.course_id)}</h1><p>Unit: {html.escape(self.unit)}. "
            f"{len(self.table)} registrations. Days are counted from the first registration of the course.</p>"
            f"<h2>What was registered when</h2>{table}<h2>Outcomes</h2>{img}</body></html>"
        )
        if path is not None:
            Path(path).write_text(page, encoding="utf-8")
        return page


def patient_progress(data: Any, course_id: str) -> ProgressResult:
    """The registrations and outcome measures of one (pseudonymised) course.

    Parameters
    ----------
    data : Registry or Cohort
        Opted-out patients are removed first: their courses cannot be shown.
    course_id : str
        The pseudonymous course id.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> reg = kr.synthetic.generate(n_courses=50, seed=1)
    >>> cid = reg.without_opt_outs().courses["course_id"].iloc[0]
    >>> res = patient_progress(reg, cid)
    >>> int(res.table["day"].iloc[0])
    0
    """
    registry = as_registry(data)
    cb = registry.codebook
    regs = registry.registrations
    regs = regs[regs["course_id"].astype(str).to_numpy() == str(course_id)]
    if regs.empty:
        raise AnalysisError("the requested course is not in the registry (or its patient has opted out)")
    regs = regs.assign(_rank=regs["kind"].map(KIND_ORDER)).sort_values(["date", "_rank"], kind="stable")
    dates = pd.DatetimeIndex(regs["date"])
    day = (dates - dates.min()).days.to_numpy()
    status_var = cb.by_role("status")
    table = pd.DataFrame(
        {
            "registration": np.arange(1, len(regs) + 1),
            "kind": regs["kind"].map(KIND_LABELS).fillna(regs["kind"]).to_numpy(),
            "month": dates.strftime("%Y-%m"),
            "day": day,
            "status": [status_var.code_label(s, "en") if pd.notna(s) else pd.NA for s in regs["status"]]
            if status_var is not None and "status" in regs.columns
            else pd.NA,
        }
    )
    for name in FEEDBACK:
        if name in regs.columns:
            labels = cb.value_labels(name)
            vals = pd.to_numeric(regs[name], errors="coerce")
            table[cb.label(name)] = [labels.get(int(v), pd.NA) if pd.notna(v) else pd.NA for v in vals]
    rows = []
    for name, outcome in cb.outcomes().items():
        if name not in regs.columns:
            continue
        v = _clean(regs[name], cb.variable(name))
        ok = ~np.isnan(v)
        if ok.any():
            rows.append(pd.DataFrame({"variable": name, "label": cb.label(name), "direction": outcome.direction,
                                      "day": day[ok], "kind": regs["kind"].to_numpy()[ok], "value": v[ok]}))  # fmt: skip
    cols = ["variable", "label", "direction", "day", "kind", "value"]
    outcomes = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)
    unit = str(unit_names(registry.units).get(regs["unit_id"].iloc[0], "unknown unit"))
    definition = Definition(
        population="one course (pseudonymous id), opted-out patients excluded",
        method="registrations in date order; codebook outcome measures with missing codes removed",
        details={"time axis": "days since the first registration of the course"},
    )
    return ProgressResult(str(course_id), unit, table, outcomes, definition, cb)
