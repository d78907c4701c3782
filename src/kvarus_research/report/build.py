"""The main job: the whole analysis flow on one extract (or the synthetic registry) as one HTML report.

Steps: read and validate → exclude opt-outs → pseudonymise (when identity numbers are present or a key is given)
→ cohort with its flow diagram → Table 1 → change and reliable change baseline → ending → one-year follow-up →
categorical transitions → longitudinal model → attrition with IPW → retention with competing endings → quality
indicators → network work → provenance. Every table goes through disclosure control; every figure is drawn from
protected numbers where the analysis supports it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # the report never opens a window

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from kvarus_research.errors import KvarusError  # noqa: E402
from kvarus_research.privacy import protect  # noqa: E402
from kvarus_research.registry import Registry  # noqa: E402
from kvarus_research.report.provenance import hash_files, hash_tables, software_versions  # noqa: E402
from kvarus_research.report.writer import ReportWriter  # noqa: E402

#: Seed and size of the synthetic registry the report runs on when no extract is given.
DEFAULT_SEED = 2026
DEFAULT_COURSES = 20_000
#: The longitudinal model is fitted on a random sample of this many courses (stated in its definition).
MIXED_MODEL_COURSES = 4_000


@dataclass
class ReportContext:
    """Everything the report's steps share."""

    writer: ReportWriter
    registry: Registry
    rules: Any
    seed: int
    source: str
    input_hash: str
    notes: list[str] = field(default_factory=list)
    cohort: Any = None
    timepoints: Any = None
    #: The registry before opt-outs were removed: only the cohort builder sees it, to count them in its flow.
    with_opt_outs: Registry | None = None
    #: The extract's ValidationReport (kept aside: pseudonymisation drops it from the registry).
    validation: Any = None
    #: The indicator outputs protected as one release (set by the indicators step, read by the network step).
    indicators: Any = None


def _table(
    ctx: ReportContext,
    name: str,
    df: pd.DataFrame,
    *,
    counts: list[str],
    caption: str = "",
    derived: dict[str, Any] | None = None,
) -> None:
    shown = protect(df, counts=counts, derived=derived or {}, rules=ctx.rules)
    ctx.writer.table(name, shown, caption=caption)


def protect_validation_rows(rows: pd.DataFrame, rules: Any = "norway") -> Any:
    """The rows read, accepted and rejected per file, protected knowing that read = accepted + rejected.

    A few rejected rows are a small count, and so are a few accepted ones (the complement); the accepted count
    is hidden with the rejected one, since it is read minus rejected.

    Examples
    --------
    >>> rows = pd.DataFrame({"file": ["a.csv", "b.csv", "c.csv"], "form": "Målepunkt", "read": [100, 50, 40],
    ...                      "accepted": [97, 50, 2], "rejected": [3, 0, 38]})
    >>> protect_validation_rows(rows).display()[["accepted", "rejected"]].values.tolist()
    [[':', ':'], [50, 0], [':', ':']]
    """
    return protect(
        rows, counts=["read", "rejected"], complements={"rejected": "read"}, derived={"accepted": "rejected"},
        rules=rules,
    )  # fmt: skip


def _result(
    ctx: ReportContext,
    name: str,
    result: Any,
    *,
    caption: str = "",
    plot: bool = True,
    plot_kwargs: dict[str, Any] | None = None,
) -> None:
    """A result's definition, protected table and figure."""
    ctx.writer.definition(result.definition)
    ctx.writer.table(name, result.published(ctx.rules), caption=caption)
    if plot:  # drawn from the table protected with the report's rules, as the table above it
        out = result.plot(rules=ctx.rules, **(plot_kwargs or {}))
        fig = out if hasattr(out, "savefig") else out.get_figure()
        ctx.writer.figure(name, fig, caption=caption)


# ---------------------------------------------------------------------------------------------- steps
def step_data(ctx: ReportContext) -> None:
    w, reg = ctx.writer, ctx.registry
    w.section("Data and validation")
    w.text(
        f"Source: {ctx.source}. Extract date: {reg.extract_date:%Y-%m-%d}. "
        f"Opted-out patients (reservasjon) were removed before any analysis; only their number of courses is shown."
    )
    summary = reg.summary()
    summary.loc[len(summary)] = ["opted-out courses (excluded)", int(reg.meta.get("opted_out_courses", 0))]
    summary = summary[~summary["table"].isin(["opted-out patients"])]
    _table(
        ctx, "registry-tables", summary, counts=["rows"], caption="Rows per table after excluding opt-outs"
    )
    validation = ctx.validation
    if validation is not None:
        w.text(
            "Validation of the extract against the codebook and the course model: for every file, rows read = "
            "rows accepted + rows rejected; findings are counted by rule (the row-level findings stay with the "
            "data: `kvarus-research validate DIR --report FILE`)."
        )
        ctx.writer.table(
            "validation-rows",
            protect_validation_rows(validation.rows, ctx.rules),
            caption="Rows read, accepted and rejected per file",
        )
        by_rule = validation.by_rule()
        if len(by_rule):
            _table(
                ctx,
                "validation-findings",
                by_rule,
                counts=["findings"],
                caption="Findings by rule and severity",
            )
        else:
            w.text("No findings: the extract is clean.")


def step_cohort(ctx: ReportContext, cohort_yaml: str | Path | None) -> None:
    from kvarus_research.cohort import Cohort, align_timepoints
    from kvarus_research.cohort.flow import plot_flow, protect_flow

    w, reg = ctx.writer, ctx.with_opt_outs or ctx.registry
    w.section("Cohort")
    if cohort_yaml:
        cohort = Cohort.from_yaml(cohort_yaml, reg)
        w.text(f"Cohort definition read from {Path(cohort_yaml).name}.")
    else:
        cohort = Cohort(reg).has_baseline()
        w.text(
            "Default cohort: every course with a baseline registration (override with --cohort cohort.yaml)."
        )
    ctx.cohort = cohort
    w.definition(cohort.definition)
    flow = cohort.flow
    w.table(
        "cohort-flow",
        protect_flow(flow, rules=ctx.rules),
        caption="Who was included at each step, and why others were excluded",
    )
    ax = plot_flow(flow, rules=ctx.rules)
    w.figure("cohort-flow", ax.get_figure(), caption="Flow diagram")
    ctx.timepoints = align_timepoints(cohort)


def step_table1(ctx: ReportContext) -> None:
    from kvarus_research.cohort import table1

    ctx.writer.section("Table 1: patients at baseline")
    res = table1(ctx.cohort, groupby="setting", rules=ctx.rules)
    ctx.writer.definition(res.definition)
    ctx.writer.table("table1", res.protected(ctx.rules), caption="Baseline characteristics by setting")


def step_change(ctx: ReportContext) -> None:
    from kvarus_research.outcomes import change, reliable_change

    w = ctx.writer
    outcomes = list(ctx.registry.codebook.outcomes())
    w.section("Change in outcomes")
    w.text(
        "Paired change for every outcome measure in the codebook, among courses with both registrations "
        "(complete cases; attrition is examined below). Improvement is signed by the codebook's direction."
    )
    for end in ("ending", "followup"):
        res = change(ctx.timepoints, outcomes, start="baseline", end=end, codebook=ctx.registry.codebook)
        _result(ctx, f"change-baseline-{end}", res, caption=f"Change baseline → {end}")
    w.section("Reliable and clinically significant change")
    res = reliable_change(
        ctx.timepoints,
        [o for o, m in ctx.registry.codebook.outcomes().items() if m.reliability],
        start="baseline",
        end="ending",
        codebook=ctx.registry.codebook,
    )
    _result(ctx, "reliable-change", res, caption="Reliable change (Jacobson & Truax) baseline → ending")


def step_transitions(ctx: ReportContext) -> None:
    from kvarus_research.outcomes import transitions

    ctx.writer.section("Housing and work: transitions")
    for var in ("bolig", "arbeid_utdanning"):
        if var in ctx.registry.codebook:
            res = transitions(ctx.timepoints, var, codebook=ctx.registry.codebook)
            _result(
                ctx,
                f"transitions-{var}",
                res,
                caption=f"{ctx.registry.label(var)}: baseline → ending → follow-up",
            )


def step_longitudinal(ctx: ReportContext) -> None:
    from kvarus_research.outcomes import longitudinal

    w = ctx.writer
    w.section("Longitudinal model")
    long = ctx.timepoints.long
    ids = pd.Series(long["course_id"].unique())
    if len(ids) > MIXED_MODEL_COURSES:
        ids = ids.sample(MIXED_MODEL_COURSES, random_state=ctx.seed)
        w.text(
            f"Fitted on a random sample of {MIXED_MODEL_COURSES} courses (seed {ctx.seed}) to keep the report fast."
        )
    sample = long[long["course_id"].isin(set(ids))]
    tps = [t for t in ("baseline", "MP1", "MP2", "ending", "followup") if t in set(sample["timepoint"])]
    outcome = (
        "psykiske_plager"
        if "psykiske_plager" in ctx.registry.codebook
        else next(iter(ctx.registry.codebook.outcomes()))
    )
    res = longitudinal(sample, outcome, timepoints=tps, codebook=ctx.registry.codebook)
    _result(
        ctx,
        f"longitudinal-{outcome}",
        res,
        caption=f"{ctx.registry.label(outcome)}: estimated means by timepoint",
    )


def step_attrition(ctx: ReportContext) -> None:
    from kvarus_research import outcomes as oc

    if not hasattr(oc, "attrition"):
        return
    w = ctx.writer
    w.section("Attrition at one-year follow-up")
    outcome = (
        "dager_rus_30"
        if "dager_rus_30" in ctx.registry.codebook
        else next(iter(ctx.registry.codebook.outcomes()))
    )
    res = oc.attrition(ctx.timepoints, outcome, codebook=ctx.registry.codebook)
    _result(
        ctx,
        f"attrition-{outcome}",
        res,
        caption="Complete case, inverse probability weighting and multiple imputation",
    )
    if hasattr(oc, "tipping_point"):  # how far from missing at random before the conclusion changes
        tip = oc.tipping_point(ctx.timepoints, outcome, codebook=ctx.registry.codebook, n_imputations=10)
        _result(
            ctx,
            f"tipping-point-{outcome}",
            tip,
            caption="Delta-adjusted multiple imputation: the tipping point",
        )


def step_retention(ctx: ReportContext) -> None:
    from kvarus_research.retention import cox, cumulative_incidence, kaplan_meier

    w = ctx.writer
    w.section("Retention: time in treatment with competing endings")
    w.text(
        "Dropout = interrupted (avbrutt); completed by mutual agreement and transferred are competing endings; "
        "courses still active at the extract date are censored."
    )
    _result(
        ctx,
        "time-in-treatment",
        kaplan_meier(ctx.cohort, rules=ctx.rules),
        caption="Time to any ending (Kaplan–Meier)",
    )
    _result(
        ctx,
        "cumulative-incidence",
        cumulative_incidence(ctx.cohort, rules=ctx.rules),
        caption="Cumulative incidence of each ending (Aalen–Johansen)",
    )
    _result(
        ctx,
        "cumulative-incidence-setting",
        cumulative_incidence(ctx.cohort, by="setting", rules=ctx.rules),
        caption="Cumulative incidence by setting",
    )
    covs = [
        c for c in ("age_at_start", "alvorlighet_rus", "psykiske_plager") if c in ctx.cohort.courses.columns
    ]
    _result(
        ctx, "cox-dropout", cox(ctx.cohort, covariates=covs), caption="Cause-specific Cox model for dropout"
    )


def step_indicators(ctx: ReportContext) -> None:
    from kvarus_research.indicators.export import publish_indicators

    w = ctx.writer
    w.section("Quality indicators")
    # the indicators, completeness, coverage and network work count the same courses: one release
    ctx.indicators = publish_indicators(ctx.registry, ctx.rules, completeness=False)
    from kvarus_research.errors import AnalysisError

    cov = ctx.indicators.coverage
    for key, res in ctx.indicators.results.items():
        label = getattr(res.indicator, "label", key)
        _result(ctx, f"indicator-{key}", res, caption=label)
        try:  # exact binomial limits around the national share, from the published table
            funnel = res.funnel(rules=ctx.rules, coverage=cov)
            ax = res.plot(kind="funnel", rules=ctx.rules, coverage=cov)
        except AnalysisError as exc:  # e.g. the national share hidden by the release
            w.text(f"Funnel plot of {label}: not drawn ({exc}).")
            continue
        w.definition(funnel.definition)
        w.figure(f"indicator-{key}-funnel", ax.get_figure(), caption=f"{label}: funnel plot")
    if ctx.indicators.coverage is not None:
        _result(ctx, "coverage", ctx.indicators.coverage, caption="Coverage (dekningsgrad)")


def step_network(ctx: ReportContext) -> None:
    pub = ctx.indicators
    if pub is None or pub.network is None:
        if pub is not None and pub.notes:
            ctx.notes.extend(pub.notes)
        return
    ctx.writer.section("Network work at discharge")
    _result(ctx, "network-work", pub.network, caption="Network work per unit and year")


def step_provenance(ctx: ReportContext) -> None:
    w = ctx.writer
    w.section("Provenance")
    rules = ctx.rules if isinstance(ctx.rules, str) else getattr(ctx.rules, "name", str(ctx.rules))
    info = pd.DataFrame(
        [
            ("source", ctx.source),
            ("extract date", f"{ctx.registry.extract_date:%Y-%m-%d}"),
            ("seed", str(ctx.seed)),
            ("input hash (SHA-256)", ctx.input_hash),
            ("disclosure rules", str(rules)),
        ],
        columns=["item", "value"],
    )
    _table(ctx, "provenance", info, counts=[], caption="Run")
    _table(ctx, "software", software_versions(), counts=[], caption="Software versions")
    for note in ctx.notes:
        w.text(note, warn=True)


# ---------------------------------------------------------------------------------------------- driver
def build_report(
    extract: str | Path | None = None,
    out: str | Path = "report",
    *,
    cohort: str | Path | None = None,
    key_file: str | Path | None = None,
    seed: int = DEFAULT_SEED,
    n_courses: int = DEFAULT_COURSES,
    rules: Any = "norway",
    progress: bool = True,
) -> Path:
    """Run the whole flow and write ``out/index.html`` with tables (CSV) and figures (PNG, SVG) beside it.

    Parameters
    ----------
    extract : str or Path, optional
        An MRS extract folder; ``None`` runs on the bundled synthetic registry (``seed``, ``n_courses``).
    out : str or Path
        Output folder.
    cohort : str or Path, optional
        A cohort YAML file (see the cohort how-to); default: courses with a baseline registration.
    key_file : str or Path, optional
        Project key for pseudonyms; required when the extract carries national identity numbers.
    seed, n_courses : int
        The synthetic registry's seed and size (ignored for a real extract except for sampling).
    rules : {"norway", "opensafely"} or DisclosureRules
        Disclosure rules for every table.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        The report's ``index.html``.

    Examples
    --------
    >>> import tempfile
    >>> path = build_report(out=tempfile.mkdtemp(), n_courses=1500, progress=False)  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    'index.html'
    """
    from kvarus_research import synthetic

    steps: list[tuple[str, Callable[[], None]]] = []
    ctx_holder: dict[str, ReportContext] = {}

    def load() -> None:
        if extract is None:
            reg = synthetic.generate(n_courses=n_courses, seed=seed)
            source = f"synthetic registry (kvarus_research.synthetic, {n_courses} courses, seed {seed})"
            input_hash = hash_tables(reg.courses, reg.registrations, reg.units)
        else:
            from kvarus_research.io import read_extract

            reg = read_extract(extract)
            source = f"extract {Path(extract).name}"
            input_hash = hash_files(extract)
        notes: list[str] = []
        validation = reg.validation
        if key_file is not None or _has_national_ids(reg):
            if key_file is None:
                raise KvarusError(
                    "the extract carries national identity numbers (Fodselsnummer): give --key-file KEY so they "
                    "are replaced by keyed pseudonyms before any analysis"
                )
            from kvarus_research.privacy import load_key, pseudonymize

            reg, _report = pseudonymize(reg, load_key(key_file), output_dir=out)
            notes.append("Identifiers were replaced by keyed pseudonyms (HMAC-SHA-256) before any analysis.")
        clean = reg.without_opt_outs()
        writer = ReportWriter(out, title="Kvarus research report")
        ctx_holder["ctx"] = ReportContext(
            writer, clean, rules, seed, source, input_hash, notes, with_opt_outs=reg, validation=validation
        )

    steps.append(("read and validate", load))
    for label, fn in (
        ("data", step_data),
        ("cohort", lambda c: step_cohort(c, cohort)),
        ("table 1", step_table1),
        ("change", step_change),
        ("transitions", step_transitions),
        ("longitudinal model", step_longitudinal),
        ("attrition", step_attrition),
        ("retention", step_retention),
        ("indicators", step_indicators),
        ("network work", step_network),
        ("provenance", step_provenance),
    ):
        steps.append((label, (lambda f=fn: f(ctx_holder["ctx"]))))
    bar = tqdm(steps, desc="report", disable=not progress, unit="step")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, fn in bar:
            bar.set_postfix_str(label)
            fn()
            plt.close("all")
    return ctx_holder["ctx"].writer.write()


def _has_national_ids(reg: Registry) -> bool:
    return any("Fodselsnummer" in t.columns for t in (reg.registrations, reg.patients) if t is not None)
