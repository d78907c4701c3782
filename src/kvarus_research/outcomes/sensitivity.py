"""Sensitivity of the MI estimate to data missing not at random: delta adjustment and the tipping point.

Under MAR the imputations draw a non-responder's follow-up value from the responders' regression on the
predictors. A *delta-adjusted* (pattern-mixture) analysis shifts every imputed follow-up value by a fixed δ
before pooling: δ is how much worse (or better) non-responders are at follow-up than responders with the same
predictors. Over a grid of δ the pooled mean change moves by (share of non-responders) × δ, and the **tipping
point** is the δ at which the conclusion changes: the CI first contains the null value (no change by default).
A reader then judges whether a difference that large between non-responders and similar responders is
plausible (van Buuren 2018, section 9.2; Carpenter & Kenward 2013, ch. 10).

The same seed is used at every δ, so the imputations differ only by the shift and the curve is smooth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.errors import AnalysisError
from kvarus_research.outcomes.attrition import attrition
from kvarus_research.results import Definition, Result, draw_marker, hidden


class TippingPointResult(Result):
    """The MI estimate of the mean change over a grid of δ shifts of the imputed follow-up values.

    Attributes
    ----------
    table : DataFrame
        ``delta, n, n_due, estimate, se, ci_low, ci_high, improvement, fmi, excludes_null`` (one row per δ).
    tipping_point : float or None
        The δ (interpolated between grid points) at which the CI bound nearest the null reaches it; ``None``
        when the conclusion does not change over the grid.
    null : float
        The value the CI is compared with.
    """

    count_columns = ("n", "n_due")
    complement_columns = {"n": "n_due"}
    derived_columns = {
        c: "n" for c in ("estimate", "se", "ci_low", "ci_high", "improvement", "fmi", "excludes_null")
    }

    def __init__(self, table: pd.DataFrame, tipping_point: float | None, null: float, definition: Definition,
                 label: str) -> None:  # fmt: skip
        self.table = table
        self.tipping_point = tipping_point
        self.null = null
        self.definition = definition
        self.label = label

    def _draw_context(self) -> dict[str, Any]:
        return {"label": self.label, "null": self.null, "tipping_point": self.tipping_point}

    @classmethod
    def _draw(cls, protected: Any, ax: Any, definition: Definition, *, label: str = "", null: float = 0.0,
              tipping_point: float | None = None, **kwargs: Any) -> Any:  # fmt: skip
        """Tipping-point plot: the pooled estimate and its CI band against δ, the null line and the tipping δ."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        tab = protected.table.reset_index(drop=True)
        gone = hidden(protected, "n") | hidden(protected, "estimate")
        delta = tab["delta"].astype(float).to_numpy()
        est = np.where(gone, np.nan, tab["estimate"].astype(float).to_numpy())
        lo = np.where(gone, np.nan, tab["ci_low"].astype(float).to_numpy())
        hi = np.where(gone, np.nan, tab["ci_high"].astype(float).to_numpy())
        colour = kwargs.get("color", "C0")
        ax.fill_between(
            delta,
            lo,
            hi,
            color=colour,
            alpha=0.2,
            label="95 % CI" if "95" in str(definition.details.get("ci")) else "CI",
        )
        ax.plot(delta, est, "-o", color=colour, ms=3, label="MI estimate")
        ax.axhline(null, color="grey", ls=":")
        if gone.any():
            for x in delta[gone]:
                draw_marker(ax, x, null, protected)
        if tipping_point is not None and not gone.any():
            ax.axvline(tipping_point, color="C3", ls="--", label=f"tipping point δ = {tipping_point:.2f}")
        ax.set_xlabel("δ: shift of the imputed follow-up values (non-responders vs similar responders)")
        ax.set_ylabel(f"Mean change in {label}")
        ax.set_title(f"Delta-adjusted multiple imputation ({definition.details.get('timepoints', '')})",
                     fontsize=10)  # fmt: skip
        ax.legend(frameon=False, fontsize=8)
        return ax


def _crossing(delta: np.ndarray, bound: np.ndarray, null: float) -> float | None:
    """First δ (from the MAR end of the grid) where ``bound - null`` changes sign, linearly interpolated."""
    f = bound - null
    for i in range(len(f) - 1):
        if f[i] == 0:
            return float(delta[i])
        if np.sign(f[i]) != np.sign(f[i + 1]):
            return float(delta[i] + (delta[i + 1] - delta[i]) * f[i] / (f[i] - f[i + 1]))
    return None


def tipping_point(
    data: Any,
    outcome: str,
    *,
    deltas: Sequence[float] | None = None,
    null: float = 0.0,
    n_imputations: int = 20,
    seed: int = 0,
    **options: Any,
) -> TippingPointResult:
    """Delta-adjusted MI of the mean change over a grid of δ, and the δ at which the conclusion changes.

    Parameters
    ----------
    data : Timepoints or DataFrame
        As for :func:`kvarus_research.outcomes.attrition`.
    outcome : str
        A continuous outcome of the codebook.
    deltas : sequence of float, optional
        Shifts added to every imputed follow-up value. By default 21 values from 0 to 2 SDs of the observed
        change, in the direction that makes non-responders *worse off* (by the codebook's direction), so the
        grid runs from MAR toward the pessimistic end.
    null : float
        The value whose inclusion in the CI changes the conclusion (0: no change).
    n_imputations, seed : int
        Imputations at each δ (the same seed at every δ).
    **options
        Passed to :func:`~kvarus_research.outcomes.attrition` (``covariates``, ``auxiliary``, ``followup``,
        ``courses``, ``start``, ``end``, ``imputation``, ``ci``, ``codebook`` ...).

    Returns
    -------
    TippingPointResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> n = 400
    >>> y0 = rng.normal(20, 5, n); y1 = y0 - 2 + rng.normal(0, 3, n)
    >>> answered = rng.uniform(size=n) < 0.5
    >>> long = pd.DataFrame({"course_id": np.r_[np.arange(n), np.arange(n)[answered]],
    ...     "timepoint": ["baseline"] * n + ["followup"] * int(answered.sum()),
    ...     "dager_rus_30": np.r_[y0, y1[answered]]})
    >>> status = pd.DataFrame({"course_id": np.arange(n), "followup_status": "reached"})
    >>> res = tipping_point(long, "dager_rus_30", followup=status, deltas=np.arange(0, 6.5, 0.5),
    ...                     n_imputations=5)
    >>> bool(res.table["excludes_null"].iloc[0]), bool(0 < res.tipping_point < 6)
    (True, True)
    """
    for bad in ("delta", "n_imputations"):
        if bad in options:
            raise AnalysisError(f"tipping_point sets {bad!r} itself")
    if n_imputations < 2:
        raise AnalysisError(f"tipping_point needs n_imputations >= 2, got {n_imputations}")
    base = attrition(data, outcome, n_imputations=n_imputations, seed=seed, **options)
    if deltas is None:
        t = base.table.set_index("method")
        sd = float(t.loc["complete case", "se"] * np.sqrt(t.loc["complete case", "n"]))
        sign = (
            float(np.sign(t.loc["MI", "improvement"] / t.loc["MI", "estimate"]))
            if t.loc["MI", "estimate"]
            else 1.0
        )
        deltas = -sign * np.linspace(0, 2 * sd, 21)
    deltas = np.asarray(deltas, dtype=float)
    if deltas.ndim != 1 or len(deltas) < 2:
        raise AnalysisError("deltas must be a sequence of at least two shifts")
    rows = []
    for d in deltas:
        res = (
            base
            if d == 0
            else attrition(data, outcome, n_imputations=n_imputations, seed=seed, delta=float(d), **options)
        )
        mi = res.table.set_index("method").loc["MI"]
        rows.append({"delta": float(d), "n": int(mi["n"]), "n_due": int(mi["n_due"]), "estimate": mi["estimate"],
                     "se": mi["se"], "ci_low": mi["ci_low"], "ci_high": mi["ci_high"],
                     "improvement": mi["improvement"], "fmi": mi["fmi"],
                     "excludes_null": bool(not mi["ci_low"] <= null <= mi["ci_high"])})  # fmt: skip
    table = pd.DataFrame(rows)
    table["excludes_null"] = table["excludes_null"].astype(object)  # disclosure control may blank it
    at_mar = table.iloc[int(np.argmin(np.abs(deltas)))]
    tip = None
    if at_mar["excludes_null"]:
        order = np.argsort(np.abs(deltas - at_mar["delta"]))
        for side in (deltas >= at_mar["delta"], deltas <= at_mar["delta"]):
            idx = [i for i in order if side[i]]
            if len(idx) < 2:
                continue
            bound = "ci_low" if at_mar["ci_low"] > null else "ci_high"
            x = _crossing(deltas[idx], table[bound].to_numpy()[idx], null)
            if x is not None and (tip is None or abs(x - at_mar["delta"]) < abs(tip - at_mar["delta"])):
                tip = x
    d0 = base.definition
    definition = Definition(
        population=d0.population,
        method=(
            f"delta-adjusted multiple imputation: every imputed follow-up value shifted by δ before pooling "
            f"(pattern-mixture sensitivity analysis for MNAR); {d0.method}"
        ),  # fmt: skip
        details={
            **dict(d0.details),
            "deltas": f"{deltas.min():g} to {deltas.max():g} ({len(deltas)} values)",
            "null": null,
            "tipping point": tip,
        },  # fmt: skip
    )
    return TippingPointResult(table, tip, null, definition, base.label)
