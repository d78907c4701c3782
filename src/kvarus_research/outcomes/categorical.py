"""Categorical outcomes (housing, work, injection, overdose ...): transitions between timepoints.

For each pair of timepoints, the courses with a valid code at both (missing codes and blanks are counted, not
used) are cross-tabulated with the codebook's code list, so categories nobody is in still show as zero rows.
Tests of change in the marginal distribution: McNemar for two categories (exact binomial when fewer than 25
discordant pairs, else chi-square with continuity correction; statsmodels ``mcnemar``), and for more categories
Stuart–Maxwell (marginal homogeneity) and Bowker (symmetry) from statsmodels ``SquareTable``, over the categories
that occur at either timepoint (Stuart–Maxwell over those with any off-diagonal pair; Bowker's df counts every
pair of observed categories, as in SAS).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.contingency_tables import SquareTable, mcnemar

from kvarus_research.codebook import Codebook
from kvarus_research.errors import AnalysisError
from kvarus_research.outcomes._data import (
    LongIndex,
    check_ci,
    check_columns,
    check_timepoints,
    long_frame,
    resolve_codebook,
    wilson,
)
from kvarus_research.results import Definition, Result, draw_marker, draw_placeholder, hidden


def square_table_tests(table: np.ndarray) -> list[dict[str, Any]]:
    """McNemar (2 × 2) or Stuart–Maxwell and Bowker (k × k) on a square table of counts (rows = from).

    Examples
    --------
    >>> t = square_table_tests(np.array([[30, 12], [3, 55]]))  # 15 discordant pairs: exact McNemar
    >>> t[0]["test"], round(t[0]["p_value"], 4)
    ('McNemar (exact binomial)', 0.0352)
    """
    table = np.asarray(table, dtype=float)
    keep = (table.sum(0) + table.sum(1)) > 0
    table = table[np.ix_(keep, keep)]
    k = len(table)
    if k < 2:
        return [
            {"test": "none (one category observed)", "statistic": np.nan, "df": np.nan, "p_value": np.nan}
        ]
    if k == 2:
        disc = table[0, 1] + table[1, 0]
        exact = disc < 25
        r = mcnemar(table, exact=exact, correction=True)
        name = "McNemar (exact binomial)" if exact else "McNemar (chi-square, continuity corrected)"
        return [
            {
                "test": name,
                "statistic": float(r.statistic),
                "df": np.nan if exact else 1.0,
                "p_value": float(r.pvalue),
            }
        ]
    out = []
    # Stuart-Maxwell: a category with no off-diagonal pairs has zero marginal change and zero variance, which
    # makes the covariance singular; it carries no information, so it is left out (a generalised inverse).
    moving = (table.sum(0) + table.sum(1) - 2 * np.diag(table)) > 0
    if moving.sum() >= 2:
        sm = SquareTable(table[np.ix_(moving, moving)], shift_zeros=False).homogeneity(
            method="stuart_maxwell"
        )
        name = (
            "Stuart-Maxwell"
            if moving.all()
            else f"Stuart-Maxwell ({int(moving.sum())} categories that change)"
        )
        out.append(
            {"test": name, "statistic": float(sm.statistic), "df": float(sm.df), "p_value": float(sm.pvalue)}
        )
    else:
        out.append({"test": "Stuart-Maxwell (no change between categories)", "statistic": 0.0, "df": np.nan,
                    "p_value": 1.0})  # fmt: skip
    bw = SquareTable(table, shift_zeros=False).symmetry()
    out.append(
        {"test": "Bowker", "statistic": float(bw.statistic), "df": float(bw.df), "p_value": float(bw.pvalue)}
    )
    return out


class TransitionResult(Result):
    """Transition tables between timepoints, their tests, and the marginal distribution at each timepoint.

    Attributes
    ----------
    table : DataFrame
        ``from_timepoint, to_timepoint, from_code, from_label, to_code, to_label, n, n_from, share`` (share of
        the *from* category moving to the *to* category).
    tests : DataFrame
        ``from_timepoint, to_timepoint, n_pairs, n_missing, test, statistic, df, p_value``.
    margins : DataFrame
        ``timepoint, code, label, n, n_total, share, ci_low, ci_high`` among courses with a valid code there.
    flows : DataFrame
        Courses with a valid code at every timepoint: one column per timepoint (codes), for the alluvial plot.
    """

    count_columns = ("n", "n_from")
    partition_columns = {"n": ("n_from", ["to_code", "to_label"])}
    derived_columns = {"share": ["n", "n_from"]}

    def __init__(
        self,
        table: pd.DataFrame,
        tests: pd.DataFrame,
        margins: pd.DataFrame,
        flows: pd.DataFrame,
        variable: str,
        labels: dict[int, str],
        definition: Definition,
    ) -> None:
        self.table = table
        self.tests = tests
        self.margins = margins
        self.flows = flows
        self.variable = variable
        self.labels = labels
        self.definition = definition

    def crosstab(self, start: str, end: str) -> pd.DataFrame:
        """The transition table of one pair as a wide table of counts (rows = ``start``), codebook order and labels.

        Examples
        --------
        >>> long = pd.DataFrame({"course_id": [1, 1, 2, 2], "timepoint": ["baseline", "ending"] * 2,
        ...                      "injisert_30": [2, 1, 2, 2]})
        >>> transitions(long, "injisert_30", timepoints=("baseline", "ending")).crosstab("baseline", "ending")
        ending    No  Yes
        baseline
        No         0    0
        Yes        1    1
        """
        t = self.table[(self.table["from_timepoint"] == start) & (self.table["to_timepoint"] == end)]
        if t.empty:
            raise AnalysisError(
                f"no transition table for {start!r} -> {end!r}; pairs: {self.definition.details['pairs']}"
            )
        wide = t.pivot(index="from_code", columns="to_code", values="n")
        wide.index = [self.labels[c] for c in wide.index]
        wide.columns = [self.labels[c] for c in wide.columns]
        return wide.rename_axis(index=start, columns=end)

    @classmethod
    def _draw(cls, protected: Any, ax: Any, definition: Definition, **kwargs: Any) -> Any:
        """Alluvial-style figure of the consecutive pairs of timepoints, drawn from the protected table.

        For each pair, the bar at the first timepoint stacks the *from* categories (height ``n_from``, courses
        with a valid code at both timepoints) and bands as wide as the published ``n`` run to the bar at the
        second timepoint, which stacks the bands arriving in each category. A middle timepoint has two bars (the
        end of one pair, the start of the next: each pair is its own population). A suppressed band is not drawn
        (its category's bar keeps the gap) and its category carries the rules' marker; a suppressed ``n_from`` is
        a hatched placeholder of fixed height with the marker.
        """
        import matplotlib.pyplot as plt

        t = protected.table.reset_index(drop=True)
        n_hidden, from_hidden = hidden(protected, "n"), hidden(protected, "n_from")
        tps = str(definition.details.get("timepoints", "")).split(" -> ")
        pairs = [(a, b) for a, b in zip(tps[:-1], tps[1:], strict=False)
                 if ((t["from_timepoint"] == a) & (t["to_timepoint"] == b)).any()]  # fmt: skip
        codes = list(dict.fromkeys(t["from_code"]))
        names = dict(zip(t["from_code"], t["from_label"], strict=True))
        colours = {c: plt.get_cmap("tab10")(i % 10) for i, c in enumerate(codes)}
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 5))
        width, gap = 0.1, 0.02
        rules = protected.rules
        placeholder = float(rules.min_count)  # fixed height of a hidden category, whatever it holds
        s = np.linspace(0, 1, 40)
        curve = 3 * s**2 - 2 * s**3
        top = 0.0
        for i, (a, b) in enumerate(pairs):
            sub = (t["from_timepoint"] == a).to_numpy() & (t["to_timepoint"] == b).to_numpy()
            rows = np.flatnonzero(sub)
            x0, x1 = i + gap, i + 1 - gap - width
            bottom, into = 0.0, dict.fromkeys(codes, 0.0)
            bands: list[tuple[Any, Any, float, float]] = []
            for fc in codes:
                mine = rows[t["from_code"].to_numpy()[rows] == fc]
                if not len(mine):
                    continue
                if from_hidden[mine].any():
                    draw_placeholder(ax, x0, bottom, width, placeholder, edgecolor=colours[fc])
                    draw_marker(ax, x0 + width / 2, bottom + placeholder / 2, protected)
                    bottom += placeholder
                    continue
                n_from = float(t["n_from"].iloc[mine[0]])
                ax.bar(x0, n_from, bottom=bottom, width=width, align="edge", color=colours[fc],
                       edgecolor="white", linewidth=0.5)  # fmt: skip
                out = bottom
                for r in mine:
                    if n_hidden[r] or pd.isna(t["n"].iloc[r]) or float(t["n"].iloc[r]) <= 0:
                        continue
                    h = float(t["n"].iloc[r])
                    bands.append((fc, t["to_code"].iloc[r], out, h))
                    out += h
                if n_hidden[mine].any():
                    draw_marker(ax, x0 + width + 0.015, bottom + n_from / 2, protected, ha="left")
                bottom += n_from
            for _, tc, _, h in bands:
                into[tc] += h
            arrive, level = {}, 0.0
            for tc in codes:
                arrive[tc] = level
                if into[tc] > 0:
                    ax.bar(x1, into[tc], bottom=level, width=width, align="edge", color=colours[tc],
                           edgecolor="white", linewidth=0.5)  # fmt: skip
                level += into[tc]
            for fc, tc, y0, h in bands:
                y1 = arrive[tc]
                arrive[tc] += h
                xs = x0 + width + s * (x1 - x0 - width)
                low = y0 + (y1 - y0) * curve
                ax.fill_between(xs, low, low + h, color=colours[fc], alpha=0.35, linewidth=0)
            top = max(top, bottom, level)
        ax.set_xticks(range(len(pairs) + 1), [pairs[0][0], *[b for _, b in pairs]] if pairs else [])
        ax.set_xlim(-0.1, max(len(pairs), 1) + 0.1)
        ax.set_ylim(0, top * 1.05 if top else 1)
        ax.set_ylabel("Courses with a valid code at both timepoints of each pair")
        handles = [plt.Rectangle((0, 0), 1, 1, color=colours[c]) for c in codes]
        ax.legend(handles, [names[c] for c in codes], loc="upper center", bbox_to_anchor=(0.5, -0.08),
                  ncol=min(len(codes), 3), frameon=False)  # fmt: skip
        ax.set_title(definition.details.get("title", "Transitions"))
        return ax


def transitions(
    data: Any,
    variable: str,
    *,
    timepoints: Sequence[str] = ("baseline", "ending", "followup"),
    pairs: Sequence[tuple[str, str]] | None = None,
    ci: float = 0.95,
    codebook: Codebook | None = None,
    language: str = "en",
) -> TransitionResult:
    """Transitions of a categorical outcome between timepoints, with McNemar / Stuart–Maxwell / Bowker tests.

    Parameters
    ----------
    data : Timepoints or DataFrame
        The timepoint long format.
    variable : str
        An enum variable of the codebook (e.g. ``"bolig"``, ``"arbeid_utdanning"``, ``"injisert_30"``).
    timepoints : sequence of str
        Timepoints in order; the alluvial plot follows courses with a valid code at all of them.
    pairs : sequence of (from, to), optional
        Pairs to tabulate; by default consecutive timepoints plus first → last.
    ci : float
        Level of the Wilson intervals of the marginal shares.
    codebook : Codebook, optional
    language : str

    Returns
    -------
    TransitionResult

    Examples
    --------
    >>> import pandas as pd
    >>> long = pd.DataFrame({"course_id": [1, 1, 2, 2, 3, 3], "timepoint": ["baseline", "ending"] * 3,
    ...                      "injisert_30": [2, 1, 2, 2, 1, 1]})
    >>> res = transitions(long, "injisert_30", timepoints=("baseline", "ending"))
    >>> res.table[["from_label", "to_label", "n"]].values.tolist()
    [['No', 'No', 1], ['No', 'Yes', 0], ['Yes', 'No', 1], ['Yes', 'Yes', 1]]
    """
    ci = check_ci(ci)
    long = long_frame(data)
    check_columns(long, [variable])
    timepoints = list(timepoints)
    check_timepoints(long, timepoints)
    cb = resolve_codebook(data, codebook)
    labels = cb.value_labels(variable, language)
    if not labels:
        raise AnalysisError(
            f"variable {variable!r} has no code list in codebook {cb.name!r}; expected an enum"
        )
    missing_codes = set(cb.variable(variable).missing_codes) if variable in cb else set()
    codes = list(labels)
    ix = LongIndex(long)
    values: dict[str, pd.Series] = {}
    for tp in timepoints:
        x = ix.at(variable, tp)
        bad = x.notna() & ~x.isin(codes) & ~x.isin(list(missing_codes))
        if bad.any():
            raise AnalysisError(
                f"column {variable!r} at timepoint {tp!r}: {int(bad.sum())} value(s) outside the code list, e.g. "
                f"{x[bad].iloc[0]!r}; expected one of {codes} (or a missing code {sorted(missing_codes)})"
            )
        values[tp] = x.where(x.isin(codes))
    if pairs is None:
        pairs = list(zip(timepoints[:-1], timepoints[1:]))
        if len(timepoints) > 2:
            pairs.append((timepoints[0], timepoints[-1]))
    rows, tests = [], []
    for a, b in pairs:
        both = values[a].notna() & values[b].notna()
        ct = pd.crosstab(values[a][both], values[b][both]).reindex(index=codes, columns=codes, fill_value=0)
        n_from = ct.sum(axis=1)
        for fc in codes:
            for tc in codes:
                k = int(ct.loc[fc, tc])
                nf = int(n_from[fc])
                rows.append(
                    {
                        "from_timepoint": a,
                        "to_timepoint": b,
                        "from_code": fc,
                        "from_label": labels[fc],
                        "to_code": tc,
                        "to_label": labels[tc],
                        "n": k,
                        "n_from": nf,
                        "share": k / nf if nf else np.nan,
                    }
                )
        present = values[a].notna() | values[b].notna()
        for t in square_table_tests(ct.to_numpy()):
            tests.append(
                {"from_timepoint": a, "to_timepoint": b, "n_pairs": int(both.sum()),
                 "n_missing": int((present & ~both).sum()), **t}
            )  # fmt: skip
    margins = []
    for tp in timepoints:
        vc = values[tp].value_counts().reindex(codes, fill_value=0)
        total = int(vc.sum())
        lo, hi = wilson(vc.to_numpy(), np.full(len(vc), total), ci)
        for (code, k), l_, h_ in zip(vc.items(), lo, hi):
            margins.append(
                {"timepoint": tp, "code": code, "label": labels[code], "n": int(k), "n_total": total,
                 "share": k / total if total else np.nan, "ci_low": float(l_), "ci_high": float(h_)}
            )  # fmt: skip
    flows = pd.DataFrame(values)[timepoints].dropna().astype(int)
    definition = Definition(
        population=f"courses with a valid {variable!r} code at both timepoints of each pair (missing codes counted)",
        method=(
            "cross-tabulation over the codebook's code list; McNemar for 2 categories (exact binomial when < 25 "
            "discordant pairs, else chi-square with continuity correction), Stuart-Maxwell marginal homogeneity "
            "and Bowker symmetry (statsmodels SquareTable) for more; marginal shares with Wilson intervals"
        ),
        details={
            "variable": cb.label(variable, language),
            "timepoints": " -> ".join(timepoints),
            "pairs": ", ".join(f"{a}->{b}" for a, b in pairs),
            "ci": f"{ci:.0%}",
            "alluvial": f"courses with a valid code at every timepoint (n = {len(flows)})",
            "title": cb.label(variable, language),
        },
    )
    return TransitionResult(
        pd.DataFrame(rows), pd.DataFrame(tests), pd.DataFrame(margins), flows, variable, labels, definition
    )
