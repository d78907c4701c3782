"""Network work (nettverksarbeid), a process indicator registered once per patient at discharge (seeds/004).

Reported per unit and year, as in the poster from the acute section in Tromsø: number of registered cases; share
of cases with a network meeting held; among cases with a meeting, who was invited and who took part by role
(family, GP, municipal mental health services, others) and where the meetings were held; who was not invited;
and, among cases without a meeting, why the network was not invited.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from kvarus_research.errors import AnalysisError
from kvarus_research.indicators.framework import as_registry, proportion_ci, unit_names
from kvarus_research.results import Definition, Result, draw_marker, hidden

ROLES: tuple[str, ...] = ("familie", "fastlege", "kommune", "andre")
Measure = Literal["meeting", "invited", "took_part", "not_invited", "place", "reason"]
MEASURES: dict[str, str] = {
    "meeting": "Network meeting held (share of cases)",
    "invited": "Invited, by role (share of cases with a meeting)",
    "took_part": "Took part, by role (share of cases with a meeting)",
    "not_invited": "Not invited, by role (share of cases with a meeting)",
    "place": "Where meetings were held (share of cases with a meeting)",
    "reason": "Why the network was not invited (share of cases without a meeting)",
}
COLUMNS = ["unit_id", "group", "year", "measure", "category", "key", "numerator", "denominator", "proportion",
           "ci_low", "ci_high"]  # fmt: skip


class NetworkWorkResult(Result):
    """Network-work measures per unit and year (``year`` ``<NA>`` = all years).

    ``table`` columns: ``unit_id, group, year, measure, category, numerator, denominator, proportion, ci_low,
    ci_high``; ``measure`` is one of :data:`MEASURES`; ``cases`` has the number of registered cases per unit and
    year; ``exclusions`` counts cases left out (meeting answer missing).
    """

    count_columns = ("numerator", "denominator")
    derived_columns = {c: ("numerator", "denominator") for c in ("proportion", "ci_low", "ci_high")}

    def protected(self, rules: Any = "norway", *, enabled: bool = True) -> Any:
        """The table after disclosure control, closed over the links between its cells.

        See :func:`kvarus_research.indicators.network_protection.protect_network_table`.
        """
        from kvarus_research.indicators.network_protection import protect_network_table

        return protect_network_table(self.table, rules, enabled=enabled)

    def __init__(
        self, table: pd.DataFrame, cases: pd.DataFrame, exclusions: pd.DataFrame, definition: Definition
    ):
        self.table = table
        self.cases = cases
        self.exclusions = exclusions
        self.definition = definition

    def measure(self, measure: Measure, year: int | None = None) -> pd.DataFrame:
        """Rows of one measure and year (``None``: all years), wide: one row per category, one column per unit.

        Examples
        --------
        >>> import kvarus_research as kr
        >>> res = network_work(kr.synthetic.generate(n_courses=1000, seed=1))
        >>> res.measure("meeting").index.tolist()
        ['Network meeting held']
        """
        t = self.table[(self.table["measure"] == measure)]
        t = t[t["year"].isna()] if year is None else t[t["year"].eq(year).fillna(False).to_numpy(dtype=bool)]
        return t.pivot_table(index="category", columns="group", values="proportion", sort=False)

    @classmethod
    def _draw(cls, protected: Any, ax: Any, definition: Definition, measure: Measure = "took_part", *,
              year: int | None = None, **kwargs: Any) -> Any:  # fmt: skip
        """Grouped bars (percent) comparing units for one measure, from the protected table; a suppressed cell
        has no bar and is labelled with the rules' marker. ``year``: one year (default: all years together)."""
        import matplotlib.pyplot as plt

        if measure not in MEASURES:
            raise AnalysisError(f"network-work measure {measure!r} is not one of {list(MEASURES)}")
        shown = protected.table
        mask = (shown["measure"] == measure).to_numpy()
        mask &= (shown["year"].isna() if year is None else shown["year"].eq(year).fillna(False)).to_numpy(
            dtype=bool
        )
        gone = (
            hidden(protected, "numerator")
            | hidden(protected, "denominator")
            | hidden(protected, "proportion")
        )
        t = shown[mask].assign(_hidden=gone[mask])
        cats = list(dict.fromkeys(t["category"]))
        groups = list(dict.fromkeys(t["group"]))
        if ax is None:
            _, ax = plt.subplots(figsize=(max(5, 1.6 * len(cats) + 2), 4))
        width = 0.8 / max(1, len(groups))
        for i, g in enumerate(groups):
            sub = t[t["group"] == g].set_index("category").reindex(cats)
            p = sub["proportion"].astype(float).to_numpy() * 100
            x = np.arange(len(cats)) + (i - (len(groups) - 1) / 2) * width
            ax.bar(x, np.nan_to_num(p), width=width * 0.95, label=g)
            for xi, pi, num, den, h in zip(
                x, p, sub["numerator"], sub["denominator"], sub["_hidden"], strict=True
            ):
                if pd.notna(h) and bool(h):
                    draw_marker(ax, xi, 0, protected, va="bottom", fontsize=7, fontweight="normal")
                elif not (np.isnan(pi) or pd.isna(num) or pd.isna(den)):
                    ax.text(xi, pi, f"{int(num)} av {int(den)}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(np.arange(len(cats)), cats, rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 110)
        ax.set_ylabel("Percent")
        ax.set_title(f"{MEASURES[measure]}, {'all years' if year is None else year}", fontsize=10)
        ax.legend(fontsize=7)
        ax.figure.tight_layout()
        return ax


def _rows(
    frame: pd.DataFrame,
    measure: str,
    flags: dict[str, np.ndarray],
    base: np.ndarray,
    role_keys: dict[str, str] | None = None,
) -> list[pd.DataFrame]:
    out = []
    for category, flag in flags.items():
        g = pd.DataFrame({"unit_id": frame["unit_id"], "year": frame["year"], "x": flag & base, "n": base})
        for years in (True, False):
            keys = ["unit_id", "year"] if years else ["unit_id"]
            s = g.groupby(keys, sort=True)[["x", "n"]].sum().reset_index()
            if not years:
                s["year"] = pd.array([pd.NA] * len(s), dtype="Int64")
            s["measure"], s["category"] = measure, category
            s["key"] = (role_keys or {}).get(category, "")
            out.append(s.rename(columns={"x": "numerator", "n": "denominator"}))
    return out


def network_work(data: Any, *, ci_method: Literal["wilson", "exact"] = "wilson") -> NetworkWorkResult:
    """Network-work measures per unit and year from ``registry.network_work`` (opted-out patients removed).

    Denominators: ``meeting`` and ``reason`` use registered cases with an answer to ``nettverksmote`` (cases
    without one are counted in ``exclusions``); ``invited``, ``took_part``, ``not_invited`` and ``place`` use
    cases with a meeting held; ``reason`` uses cases without a meeting. Labels come from the codebook.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> res = network_work(kr.synthetic.generate(n_courses=1000, seed=1))
    >>> sorted(res.table["measure"].unique())
    ['invited', 'meeting', 'not_invited', 'place', 'reason', 'took_part']
    """
    registry = as_registry(data)
    nw = registry.network_work
    if nw is None or nw.empty:
        raise AnalysisError("the registry has no network-work registrations (table network_work is empty)")
    cb = registry.codebook
    need = ["nettverksmote", "mote_sted", "ikke_invitert_grunn"] + [f"{k}_{r}" for r in ROLES
                                                                    for k in ("invitert", "deltok")]  # fmt: skip
    missing = [c for c in need if c not in nw.columns]
    if missing:
        raise AnalysisError(f"network_work lacks column(s) {missing}")
    yes = next(c for c, lab in cb.value_labels("nettverksmote", "en").items() if lab == "Yes")
    answer = pd.to_numeric(nw["nettverksmote"], errors="coerce")
    answered = answer.isin(cb.variable("nettverksmote").valid_codes).to_numpy()
    meeting = (answer == yes).fillna(False).to_numpy(dtype=bool)
    frame = pd.DataFrame({"unit_id": nw["unit_id"].to_numpy(), "year": pd.DatetimeIndex(nw["date"]).year})
    frame["year"] = frame["year"].astype("Int64")
    parts = _rows(frame, "meeting", {cb.label("nettverksmote"): meeting}, answered)
    for kind, measure in (("invitert", "invited"), ("deltok", "took_part")):
        flags = {cb.label(f"{kind}_{r}"): nw[f"{kind}_{r}"].fillna(False).to_numpy(dtype=bool) for r in ROLES}
        parts += _rows(frame, measure, flags, meeting, {cb.label(f"{kind}_{r}"): r for r in ROLES})
    flags = {cb.label(f"invitert_{r}").replace("invited", "not invited"): ~nw[f"invitert_{r}"].fillna(False)
             .to_numpy(dtype=bool) for r in ROLES}  # fmt: skip
    not_keys = {cb.label(f"invitert_{r}").replace("invited", "not invited"): r for r in ROLES}
    parts += _rows(frame, "not_invited", flags, meeting, not_keys)
    place = pd.to_numeric(nw["mote_sted"], errors="coerce").to_numpy()
    parts += _rows(
        frame, "place", {lab: place == c for c, lab in cb.value_labels("mote_sted").items()}, meeting
    )
    reason = pd.to_numeric(nw["ikke_invitert_grunn"], errors="coerce").to_numpy()
    reasons = {lab: reason == c for c, lab in cb.value_labels("ikke_invitert_grunn").items()}
    parts += _rows(frame, "reason", reasons, answered & ~meeting)
    table = pd.concat(parts, ignore_index=True)
    table = table[table["denominator"] > 0].copy()
    table["group"] = table["unit_id"].map(unit_names(registry.units))
    x, n = table["numerator"].to_numpy(float), table["denominator"].to_numpy(float)
    table["proportion"] = x / n
    table["ci_low"], table["ci_high"] = proportion_ci(x, n, ci_method)
    table = table[COLUMNS].sort_values(["year", "measure", "group"], na_position="last", kind="stable")
    cases = frame.groupby(["unit_id", "year"]).size().rename("cases").reset_index()
    cases["group"] = cases["unit_id"].map(unit_names(registry.units))
    exclusions = pd.DataFrame({"reason": ["meeting answer missing"], "n": [int((~answered).sum())]})
    ci = "Wilson score" if ci_method == "wilson" else "exact (Clopper–Pearson)"
    definition = Definition(
        population="network-work registrations at discharge (one per case), opted-out patients removed",
        method="proportions per unit and year of discharge",
        details={
            "unit of analysis": "case (one registration at discharge)",
            "denominators": "meeting: cases answering nettverksmote; invited/took part/not invited/place: cases "
            "with a meeting held; reason: cases without a meeting",
            "confidence interval": f"95 % {ci}",
        },
    )
    return NetworkWorkResult(table.reset_index(drop=True), cases, exclusions, definition)
