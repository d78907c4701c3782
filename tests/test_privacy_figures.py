"""Every figure is drawn from the protected table, never from raw counts.

On a small synthetic registry (400 courses: many cells of 1-4), for every :class:`Result` subclass:

1. ``plot`` is the base class's (one drawing path: ``protected()`` -> ``_draw``), ``_draw`` is a classmethod or
   staticmethod (it cannot reach ``self.table``), and with the "norway" and "opensafely" rules no text of the
   figure (titles, labels, annotations, legends; tick labels excluded) shows a hidden cell's raw value as the
   figures write counts ("19 av 46", "3 of 12", "n = 3", a bare "3" at risk), nor "<5" / "N<5";
2. byte identity: moving one course between two suppressed cells (+1 in one, -1 in the other) leaves the protected
   table unchanged, and then the PNG and SVG bytes of the figure are identical;
3. the report built with ``rules="opensafely"`` draws every figure with those rules: no indicator bar label shows a
   count that the protected table beside it hides.
"""

from __future__ import annotations

import copy
import inspect
import io
import re
from collections.abc import Callable
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import kvarus_research as kr
from kvarus_research.results import Result

RULES = ("norway", "opensafely")


# -------------------------------------------------------------------------------------------- the registry
@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    from kvarus_research.cohort import align_timepoints

    reg = kr.synthetic.generate(n_courses=400, seed=3)
    cohort = kr.Cohort(reg)
    return {"registry": reg, "cohort": cohort, "timepoints": align_timepoints(cohort)}


def _transitions(d: dict) -> Result:
    from kvarus_research.outcomes import transitions

    return transitions(d["timepoints"], "bolig")


def _change(d: dict) -> Result:
    from kvarus_research.outcomes import change

    return change(d["timepoints"], ["dager_rus_30", "psykiske_plager"], by="hovedrusmiddel", responder=3)


def _reliable(d: dict) -> Result:
    from kvarus_research.outcomes import reliable_change

    cb = d["registry"].codebook
    names = [o for o, m in cb.outcomes().items() if m.reliability][:2]
    return reliable_change(d["timepoints"], names, by="hovedrusmiddel")


def _longitudinal(d: dict) -> Result:
    from kvarus_research.outcomes import longitudinal

    return longitudinal(
        d["timepoints"], "psykiske_plager", timepoints=["baseline", "MP1", "ending", "followup"]
    )


def _attrition(d: dict) -> Result:
    from kvarus_research.outcomes import attrition

    return attrition(d["timepoints"], "dager_rus_30")


def _km(d: dict) -> Result:
    from kvarus_research.retention import kaplan_meier

    return kaplan_meier(d["cohort"], by="setting", protect=False)  # the exact curve: small risk sets


def _cif(d: dict) -> Result:
    from kvarus_research.retention import cumulative_incidence

    return cumulative_incidence(
        d["cohort"], by="setting"
    )  # coarsened: rounded counts of 5 hidden by opensafely


def _cox(d: dict) -> Result:
    from kvarus_research.retention import cox

    return cox(d["cohort"], covariates=["age_at_start", "hovedrusmiddel"], ph_test=False)


def _indicator(d: dict) -> Result:
    from kvarus_research.indicators import TREATMENT_PLAN

    return TREATMENT_PLAN.compute(d["registry"])


def _casemix(d: dict) -> Result:
    from kvarus_research.indicators import TREATMENT_PLAN
    from kvarus_research.indicators.casemix import indicator_casemix

    reg = d["registry"]
    return indicator_casemix(TREATMENT_PLAN.compute(reg), reg, covariates=["age", "sex"])


def _coverage(d: dict) -> Result:
    from kvarus_research.indicators import coverage

    return coverage(d["registry"])


def _network(d: dict) -> Result:
    from kvarus_research.indicators import network_work

    return network_work(d["registry"])


def _progress(d: dict) -> Result:
    from kvarus_research.indicators import patient_progress

    reg = d["registry"]
    return patient_progress(reg, reg.without_opt_outs().courses["course_id"].iloc[0])


def _tipping(d: dict) -> Result:
    from kvarus_research.outcomes import tipping_point

    return tipping_point(d["timepoints"], "dager_rus_30", n_imputations=3, deltas=[0, 2, 4])


def _gray(d: dict) -> Result:
    from kvarus_research.retention import gray_test

    return gray_test(d["cohort"], by="setting")


def _table1(d: dict) -> Result:
    from kvarus_research.cohort import table1

    return table1(d["cohort"], groupby="setting")


#: Result subclass name -> (builder, the plot calls to check). A new Result subclass must be added here.
CASES: dict[str, tuple[Callable[[dict], Result], list[dict[str, Any]] | None]] = {
    "TransitionResult": (_transitions, [{}]),
    "ChangeResult": (_change, [{}]),
    "ReliableChangeResult": (_reliable, [{}]),
    "LongitudinalResult": (_longitudinal, [{}]),
    "AttritionResult": (_attrition, [{}]),
    "SurvivalResult": (_km, [{}]),
    "CoxResult": (_cox, [{}]),
    "IndicatorResult": (
        _indicator,
        [
            {"kind": "bar"},
            {"kind": "funnel"},
            {"kind": "pchart", "period": "year"},
            {"kind": "bar", "year": 2022},
            {"kind": "years"},
        ],
    ),  # fmt: skip
    "CaseMixResult": (_casemix, [{"kind": "funnel"}, {"kind": "compare"}]),
    "CoverageResult": (_coverage, [{}]),
    "NetworkWorkResult": (
        _network,
        [{"measure": "meeting"}, {"measure": "took_part"}, {"measure": "reason"}],
    ),
    "ProgressResult": (_progress, [{}]),
    "Table1Result": (_table1, [{}]),
    "TippingPointResult": (_tipping, [{}]),
    "GrayTestResult": (_gray, None),  # a table of test statistics, no figure
}


_BUILT: dict[str, Result] = {}


def built(name: str, d: dict) -> Result:
    """The case's result, built once per test session (results are immutable once built)."""
    if name not in _BUILT:
        _BUILT[name] = CASES[name][0](d)
    return _BUILT[name]


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def _result_classes() -> list[type]:
    import kvarus_research.cohort  # noqa: F401  (import every module defining a result)
    import kvarus_research.indicators  # noqa: F401
    import kvarus_research.outcomes  # noqa: F401
    import kvarus_research.retention  # noqa: F401

    return sorted(
        {c for c in _subclasses(Result) if not c.__module__.startswith("tests")}, key=lambda c: c.__name__
    )


def test_every_result_subclass_has_a_case() -> None:
    missing = [c.__name__ for c in _result_classes() if c.__name__ not in CASES]
    assert not missing, f"add a case to CASES for {missing}"


# --------------------------------------------------------------------------------------------- helpers
def figure_texts(fig: Any) -> list[str]:
    """Every text in the figure except tick labels (titles, axis labels, annotations, legends, footnotes)."""
    ticks = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                ticks |= {id(tick.label1), id(tick.label2)}
    texts = fig.findobj(matplotlib.text.Text)
    return [t.get_text() for t in texts if id(t) not in ticks and t.get_visible() and t.get_text()]


def _count_columns(result: Result, protected: Any) -> list[str]:
    declared = list(result.count_columns) or []
    if type(result).__name__ == "IndicatorResult":
        declared = ["numerator", "denominator", "missing"]
    return [c for c in declared if c in protected.suppressed.columns]


def _fmt(v: Any) -> str:
    return f"{int(v)}" if float(v).is_integer() else f"{float(v):g}"


def forbidden_strings(result: Result, protected: Any) -> tuple[set[str], set[str]]:
    """(whole texts, substrings) that would show a hidden cell's raw value as the figures write counts.

    Pairs ("x av n", "x of n") of a row with a hidden count; single hidden values as a whole text or "n = v".
    Strings that a visible cell would write as well are left out (they do not tell the hidden value).
    """
    raw = result.table.reset_index(drop=True)
    pt = protected.table.reset_index(drop=True)
    sup = protected.suppressed.reset_index(drop=True)
    assert len(raw) == len(pt), "the protected table has the raw table's rows"
    counts = _count_columns(result, protected)
    hidden_pairs, shown_pairs, hidden_single, shown_single = set(), set(), set(), set()
    for i in range(len(raw)):
        for a in counts:
            va = raw.at[i, a]
            if pd.isna(va):
                continue
            if bool(sup.at[i, a]):
                hidden_single.add(_fmt(va))
            elif pd.notna(pt.at[i, a]):
                shown_single.add(_fmt(pt.at[i, a]))
            for b in counts:
                if a == b or pd.isna(raw.at[i, b]):
                    continue
                for word in ("av", "of"):
                    if bool(sup.at[i, a]) or bool(sup.at[i, b]):
                        hidden_pairs.add(f"{_fmt(va)} {word} {_fmt(raw.at[i, b])}")
                    elif pd.notna(pt.at[i, a]) and pd.notna(pt.at[i, b]):
                        shown_pairs.add(f"{_fmt(pt.at[i, a])} {word} {_fmt(pt.at[i, b])}")
    whole = hidden_single - shown_single
    parts = (hidden_pairs - shown_pairs) | {f"n = {v}" for v in whole}
    return whole, parts


def _contains(text: str, part: str) -> bool:
    """``part`` in ``text`` as whole numbers ("7 av 1" is not in "7 av 19")."""
    return re.search(rf"(?<![\d.]){re.escape(part)}(?![\d.])", text) is not None


def n_hidden(protected: Any) -> int:
    return int(protected.suppressed.to_numpy(dtype=bool).sum())


# ------------------------------------------------------------------------------------- 1. every result
@pytest.mark.parametrize("name", sorted(CASES))
def test_figure_never_shows_a_hidden_count(name: str, data: dict, artifacts) -> None:
    _, calls = CASES[name]
    result = built(name, data)
    cls = type(result)
    assert cls.__name__ == name
    if calls is None:  # no figure: plot says so, and draws nothing
        from kvarus_research.errors import AnalysisError

        assert "_draw" not in cls.__dict__ and "plot" not in cls.__dict__, name
        with pytest.raises(AnalysisError, match="has no figure"):
            result.plot()
        return
    # one drawing path: plot is the base class's, and the drawing code cannot reach self
    assert "plot" not in cls.__dict__, f"{name} overrides plot"
    draw = inspect.getattr_static(cls, "_draw")
    assert "_draw" in cls.__dict__ and isinstance(draw, classmethod | staticmethod), name
    for rules in RULES:
        protected = result.protected(rules)
        whole, parts = forbidden_strings(result, protected)
        for kwargs in calls:
            ax = result.plot(rules=rules, **kwargs)
            assert isinstance(ax, matplotlib.axes.Axes), f"{name}.plot returns the Axes"
            texts = figure_texts(ax.figure)
            shown_whole = [t for t in texts if t.strip() in whole]
            shown_parts = [t for t in texts if any(_contains(t, p) for p in parts)]
            assert not shown_whole and not shown_parts, (name, rules, kwargs, shown_whole, shown_parts)
            assert not any("<5" in t or "N<5" in t for t in texts), (name, rules, texts)
            markers = [a for a in ax.figure.findobj(lambda a: a.get_gid() == "suppressed")]
            if markers:  # a figure with a suppressed cell carries the footnote
                assert protected.rules.footnote in texts, (name, rules)
            if isinstance(protected.rules.marker, str) and any(
                t.get_text() == protected.rules.marker for t in ax.figure.findobj(matplotlib.text.Text)
            ):
                assert protected.rules.footnote in texts
            suffix = "_".join(f"{v}" for v in kwargs.values())
            ax.figure.savefig(artifacts / f"privacy_figure_{name}_{rules}{'_' + suffix if suffix else ''}.png",
                              dpi=60, bbox_inches="tight")  # fmt: skip
            plt.close(ax.figure)
    # an unprotected figure says so
    ax = result.plot(enabled=False, **calls[0])
    from kvarus_research.privacy.rules import DISABLED_STAMP

    assert DISABLED_STAMP in figure_texts(ax.figure)


def test_hidden_cells_are_many_on_the_small_registry(data: dict) -> None:
    # the registry is small enough that the figures above have hidden cells to leak (measured, see the report)
    for name in (
        "TransitionResult",
        "ChangeResult",
        "IndicatorResult",
        "NetworkWorkResult",
        "SurvivalResult",
    ):
        result = built(name, data)
        assert n_hidden(result.protected("norway")) > 0, name
        assert n_hidden(result.protected("opensafely")) > 0, name


# ------------------------------------------------------------------------------------- 2. byte identity
def perturbed(result: Result, rules: str, where: Callable[[pd.DataFrame], Any] | None = None) -> Result:
    """A copy of ``result`` whose table moves one course between two hidden count cells of the same column (+1 in
    one, -1 in the other; both stay hidden), chosen so the protected table is unchanged.

    Pairs sharing more describing columns (the same row total: a from-category, a year, a measure) are tried first;
    ``where(table)`` restricts the cells to the rows a figure draws.
    """
    from kvarus_research.privacy.rules import resolve_rules

    small = resolve_rules(rules).min_count
    base = result.protected(rules)
    table = result.table.reset_index(drop=True)
    sup = base.suppressed.reset_index(drop=True)
    counts = _count_columns(result, base)
    describing = [c for c in table.columns if c not in counts and table[c].dtype == object]
    candidates = []
    drawn = np.ones(len(table), dtype=bool) if where is None else np.asarray(where(table), dtype=bool)
    for col in counts:
        rows = np.flatnonzero(sup[col].to_numpy(dtype=bool) & drawn)
        values = table[col].to_numpy(dtype=float)
        for i in rows:
            for j in rows:
                # small cells stay small; cells hidden as partners (any size) stay hidden if the check below holds
                stays = (values[i] >= small or values[i] <= small - 2) and values[j] >= 2
                if i != j and stays:
                    shared = sum(table.at[i, c] == table.at[j, c] for c in describing)
                    candidates.append((col == "missing", -shared, col, int(i), int(j)))  # drawn counts first
    for *_, col, i, j in sorted(candidates)[:25]:
        t = table.copy()
        t.loc[i, col] = t.loc[i, col] + 1
        t.loc[j, col] = t.loc[j, col] - 1
        other = copy.copy(result)
        other.__dict__ = {k: v for k, v in result.__dict__.items() if k != "_protected_cache"}
        other.table = t
        try:
            p = other.protected(rules)
        except kr.KvarusError:  # e.g. a numerator moved above its denominator: not a table a registry makes
            continue
        if p.table.reset_index(drop=True).equals(
            base.table.reset_index(drop=True)
        ) and p.suppressed.reset_index(drop=True).equals(sup):
            assert not t.equals(table)
            return other
    raise AssertionError(f"{type(result).__name__}: no pair of hidden cells moves without changing the table")


def _bytes(ax: Any, fmt: str) -> bytes:
    buf = io.BytesIO()
    ax.figure.savefig(buf, format=fmt, metadata={"Date": None} if fmt == "svg" else {"Software": None})
    plt.close(ax.figure)
    return buf.getvalue()


#: case -> (result, plot options, whether the raw figure draws the moved counts themselves)
BYTE_CASES = {
    "transitions": ("TransitionResult", {}, True),
    "change by group": ("ChangeResult", {}, False),  # draws estimates (hidden with n), not n
    "indicator bars": ("IndicatorResult", {"kind": "bar"}, True),
    "network bars": ("NetworkWorkResult", {"measure": "took_part"}, True),
}
#: the rows the figure draws (all years; the measure drawn), where the moved cells are taken from
WHERE: dict[str, Callable[[pd.DataFrame], Any]] = {
    "indicator bars": lambda t: t["year"].isna(),
    "network bars": lambda t: t["year"].isna() & (t["measure"] == "took_part"),
    "Kaplan-Meier": ("SurvivalResult", {}, False),  # moves hidden events or risk sets between ticks
}


@pytest.mark.parametrize("case", sorted(BYTE_CASES))
@pytest.mark.parametrize("rules", RULES)
def test_moving_a_course_between_hidden_cells_gives_the_same_bytes(case: str, rules: str, data: dict) -> None:
    name, kwargs, draws_counts = BYTE_CASES[case]
    result = built(name, data)
    other = perturbed(result, rules, WHERE.get(case))
    with matplotlib.rc_context({"svg.hashsalt": "fixed"}):
        for fmt in ("png", "svg"):
            a = _bytes(result.plot(rules=rules, **kwargs), fmt)
            b = _bytes(other.plot(rules=rules, **kwargs), fmt)
            assert a == b, (case, rules, fmt)
    # drawn raw (enabled=False), the moved counts do change the figure: the check above is not vacuous
    if draws_counts:
        with matplotlib.rc_context({"svg.hashsalt": "fixed"}):
            a = _bytes(result.plot(enabled=False, **kwargs), "svg")
            b = _bytes(other.plot(enabled=False, **kwargs), "svg")
        assert a != b, case


# ------------------------------------------------------------------------------------------ 3. the report
def test_report_figures_use_the_reports_rules(tmp_path, monkeypatch) -> None:
    from kvarus_research.report import build_report
    from kvarus_research.report.writer import ReportWriter

    tables: dict[str, Any] = {}
    figures: dict[str, list[str]] = {}
    real_table, real_figure = ReportWriter.table, ReportWriter.figure

    def table(self, name, shown, *args, **kwargs):  # noqa: ANN001, ANN202
        tables[name] = shown
        return real_table(self, name, shown, *args, **kwargs)

    def figure(self, name, fig, *args, **kwargs):  # noqa: ANN001, ANN202
        f = fig if hasattr(fig, "savefig") else fig.get_figure()
        figures[name] = figure_texts(f) + [kwargs.get("caption", "")]
        return real_figure(self, name, fig, *args, **kwargs)

    monkeypatch.setattr(ReportWriter, "table", table)
    monkeypatch.setattr(ReportWriter, "figure", figure)
    build_report(out=tmp_path / "r", n_courses=400, rules="opensafely", progress=False)
    indicator_figures = [
        n for n in figures if n.startswith("indicator-") or n in ("coverage", "network-work")
    ]
    assert indicator_figures
    pair = re.compile(r"^(\d+) av (\d+)$")
    redacted = 0
    for name in indicator_figures:
        p = tables[name.removesuffix("-funnel")]  # a funnel is drawn from its indicator's published table
        assert p.rules.name == "opensafely"
        t = p.table
        num, den = ("registered", "expected") if name == "coverage" else ("numerator", "denominator")
        visible = {
            (int(a), int(b)) for a, b in zip(t[num], t[den], strict=True) if pd.notna(a) and pd.notna(b)
        }
        for text in figures[name]:
            m = pair.match(text)
            if m:  # every "x av n" drawn is a visible pair of the protected table beside the figure
                assert (int(m.group(1)), int(m.group(2))) in visible, (name, text)
        redacted += figures[name].count("[REDACTED]")
    assert redacted > 0  # the small registry has hidden bars, drawn with the OpenSAFELY marker
    for name, texts in figures.items():
        assert not any("<5" in t for t in texts), name
        if "[REDACTED]" in texts:
            assert any(t.startswith("[REDACTED]: not shown") for t in texts), name
