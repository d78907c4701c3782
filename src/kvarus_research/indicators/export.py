"""Write every indicator output (protected CSVs, PNGs, definitions) to a folder, and the ``indicators`` command.

``kvarus-research indicators [--extract DIR] --out DIR`` runs the four Kvarus indicators, coverage, completeness
and network work on an extract (or, without ``--extract``, on the bundled synthetic registry) and writes only
protected tables and figures drawn from them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm


def _save(fig_or_ax: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig = getattr(fig_or_ax, "figure", fig_or_ax)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


@dataclass
class PublishedIndicators:
    """The indicator outputs of one registry, protected together as one release.

    Every result has adopted the release's table (:meth:`~kvarus_research.results.Result.adopt`), so its
    ``to_csv`` and ``plot`` under the same rules publish the release's cells.

    Attributes
    ----------
    results, complete : dict
        The Kvarus indicators and the completeness indicators (keys ``completeness_<key>``).
    exclusions : dict
        The protected exclusion table of each indicator.
    coverage, network : Result or None
        Coverage (when expected courses are given) and network work (when registered).
    notes : list of str
        What could not be computed, and why.
    """

    results: dict[str, Any]
    complete: dict[str, Any]
    exclusions: dict[str, Any]
    coverage: Any = None
    network: Any = None
    notes: list[str] = field(default_factory=list)


def publish_indicators(data: Any, rules: Any = "norway", *, completeness: bool = True) -> PublishedIndicators:
    """Compute the indicators, completeness, coverage and network work and protect them as one release.

    The links between the tables are declared in :func:`release_of_indicators`; each result then publishes
    the release's cells. ``completeness=False`` leaves the completeness tables out (they are not published: the
    report), and the indicators asked at the first measurement point are linked through their unseen shared
    population instead.

    Examples
    --------
    >>> import kvarus_research as kr
    >>> pub = publish_indicators(kr.synthetic.generate(n_courses=300, seed=1))
    >>> alone = pub.coverage.protected().suppressed.to_numpy().sum()  # coverage protected on its own
    >>> together = pub.coverage.published().suppressed.to_numpy().sum()  # as the release publishes it
    >>> bool(together >= alone)
    True
    """
    from kvarus_research.errors import AnalysisError
    from kvarus_research.indicators.coverage import completeness as completeness_of
    from kvarus_research.indicators.coverage import coverage
    from kvarus_research.indicators.framework import as_registry
    from kvarus_research.indicators.kvarus import kvarus_indicators
    from kvarus_research.indicators.network import network_work
    from kvarus_research.privacy import protect
    from kvarus_research.results import ProtectedResult

    registry = as_registry(data)
    results = kvarus_indicators(registry)
    complete = {f"completeness_{k}": v for k, v in completeness_of(registry).items()} if completeness else {}
    notes: list[str] = []
    nw = None
    if registry.network_work is not None and len(registry.network_work):
        try:
            nw = network_work(registry)
        except AnalysisError as exc:  # e.g. network-work columns missing in a real extract
            notes.append(f"## Network work\nnot computed: {exc}")
    full = getattr(data, "registry", data)
    cov = coverage(full) if full.coverage is not None and len(full.coverage) else None
    release = release_of_indicators(results, complete, nw, rules, coverage=cov, units=registry.units)
    published = release.protect() if release is not None else {}
    for key, res in [*results.items(), *complete.items()]:
        if key in published:
            res.adopt(ProtectedResult.of(published[key], res.side_tables(rules)), rules)
    if nw is not None and "network_work" in published:
        nw.adopt(published["network_work"], rules)
    if cov is not None and "coverage" in published:
        p = published["coverage"]
        p.table = p.table[list(cov.table.columns)]
        cov.adopt(p, rules)
    exclusions = {
        key: published.get(f"{key}_exclusions") or protect(res.exclusions, counts="n", rules=rules)
        for key, res in results.items()
    }
    return PublishedIndicators(results, complete, exclusions, cov, nw, notes)


def write_indicator_outputs(
    data: Any, out_dir: str | Path, *, rules: Any = "norway", progress: bool = False
) -> list[Path]:
    """Protected CSVs and PNGs of the indicators, coverage, completeness and network work, plus definitions.

    Files: ``<key>.csv`` and ``<key>_bars.png`` / ``_funnel.png`` / ``_pchart.png`` per Kvarus indicator;
    ``<key>_exclusions.csv`` (counts protected too); ``completeness_<key>.csv``; ``coverage.csv`` and
    ``coverage.png`` when expected courses are given; ``network_work.csv`` and ``network_<measure>.png`` when
    network-work registrations exist; ``definitions.txt``. All tables are protected together
    (:func:`publish_indicators`).

    Examples
    --------
    >>> import tempfile, kvarus_research as kr
    >>> files = write_indicator_outputs(kr.synthetic.generate(n_courses=300, seed=1), tempfile.mkdtemp())
    >>> sorted(p.name for p in files if p.suffix == ".csv")[:3]
    ['completeness_answered_eval_utbytte.csv', 'completeness_answered_plan_beh.csv', 'completeness_answered_plan_krise.csv']
    """
    from kvarus_research.errors import AnalysisError

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    texts: list[str] = []
    steps = tqdm(total=4, desc="indicators", disable=not progress)
    pub = publish_indicators(data, rules)
    steps.update()
    for key, res in [*pub.results.items(), *pub.complete.items()]:
        files.append(res.to_csv(out / f"{key}.csv", rules))
        label = f"{res.indicator.label} ({key})"
        texts.append(f"## {label}\n{res.definition.to_text()}")
    for key, res in pub.results.items():
        files.append(pub.exclusions[key].to_csv(out / f"{key}_exclusions.csv"))
        files.append(_save(res.plot(kind="bar", rules=rules), out / f"{key}_bars.png"))
        try:
            files.append(_save(res.plot(kind="funnel", rules=rules), out / f"{key}_funnel.png"))
        except AnalysisError as exc:  # the national rate hidden by the release: no funnel to draw
            texts.append(f"## Funnel plot of {key}\nnot drawn: {exc}")
        files.append(_save(res.plot(kind="pchart", period="quarter", rules=rules), out / f"{key}_pchart.png"))
    steps.update()
    if pub.coverage is not None:
        files.append(pub.coverage.to_csv(out / "coverage.csv", rules))
        files.append(_save(pub.coverage.plot(rules=rules), out / "coverage.png"))
        texts.append(f"## Coverage (dekningsgrad)\n{pub.coverage.definition.to_text()}")
    steps.update()
    if pub.network is not None:
        files.append(pub.network.to_csv(out / "network_work.csv", rules))
        for measure in ("meeting", "took_part", "invited", "place", "reason"):
            files.append(
                _save(pub.network.plot(measure=measure, rules=rules), out / f"network_{measure}.png")
            )
        texts.append(f"## Network work\n{pub.network.definition.to_text()}")
    texts += pub.notes
    steps.update()
    steps.close()
    definitions = out / "definitions.txt"
    definitions.write_text("\n\n".join(texts) + "\n", encoding="utf-8")
    files.append(definitions)
    return files


#: Which completeness table counts the answers each indicator's denominator is made of.
ANSWERED_BY = {
    "plan_beh": "completeness_answered_plan_beh",
    "plan_krise": "completeness_answered_plan_krise",
    "utbytte": "completeness_answered_eval_utbytte",
}


def release_of_indicators(
    results: dict[str, Any],
    complete: dict[str, Any],
    network: Any,
    rules: Any,
    *,
    coverage: Any = None,
    units: pd.DataFrame | None = None,
) -> Any:
    """The indicators, their exclusions, the completeness tables and network work as one release.

    Links a reader can use, declared so that the release protects them (:class:`~kvarus_research.privacy.release.
    Release`): for every unit (shown or pooled), region and the nation, per year and over all years, an
    indicator's denominator is the number of courses that answered its item (the completeness table's numerator),
    and the completeness population is that denominator plus the indicator's missing answers; the completeness
    tables of the first measurement point share one population; an indicator's exclusions table holds its
    national all-years denominator ("in denominator") and missing count ("answer missing"); coverage's registered
    courses are at least the courses of the ending-completeness population (same unit, region or nation and
    start year; units matched by name through ``units``). ``None`` under rules
    that round instead of suppressing (each table is then protected on its own: the same count rounds the same
    way in every table).

    Examples
    --------
    >>> import kvarus_research as kr
    >>> from kvarus_research.indicators.kvarus import kvarus_indicators
    >>> from kvarus_research.indicators.coverage import completeness
    >>> reg = kr.synthetic.generate(n_courses=300, seed=1)
    >>> rel = release_of_indicators(kvarus_indicators(reg), {f"completeness_{k}": v for k, v in
    ...                             completeness(reg).items()}, None, "norway")
    >>> sorted(rel.specs)[:3]
    ['completeness_answered_eval_utbytte', 'completeness_answered_plan_beh', 'completeness_answered_plan_krise']
    """
    from kvarus_research.indicators.linked import linked_spec
    from kvarus_research.indicators.network_protection import network_spec
    from kvarus_research.indicators.protection import DERIVED
    from kvarus_research.privacy.release import Release
    from kvarus_research.privacy.rules import resolve_rules

    r = resolve_rules(rules)
    if not r.secondary or r.totals_from_rounded or r.rounding:
        return None
    release = Release(r)
    cells = {}
    for name, res in [*results.items(), *complete.items()]:
        derived = {d: ["numerator", "denominator"] for d in DERIVED if d in res.table.columns}
        spec, cells[name] = linked_spec(
            res.table,
            res.__dict__.get("_pooled_parts"),
            derived=derived,
            n_limit=getattr(res, "n_limit", None),
        )
        release.add_spec(name, spec)
    for key, res in results.items():
        name = f"{key}_exclusions"
        release.add(name, res.exclusions, counts="n")
        national = cells[key].get(("national", "all"))
        reasons = res.exclusions["reason"].tolist()
        for reason, column in (("in denominator", "denominator"), ("answer missing", "missing")):
            if national is not None and reason in reasons:
                release.add_sum((name, (reasons.index(reason), "n")), [(key, national[column])])
    for key, comp_name in ANSWERED_BY.items():
        if key not in cells or comp_name not in cells:
            continue
        for where, ind in cells[key].items():
            comp = cells[comp_name].get(where)
            if comp is None:
                continue
            release.add_sum((comp_name, comp["numerator"]), [(key, ind["denominator"])])
            release.add_sum(
                (comp_name, comp["denominator"]), [(key, ind["denominator"]), (key, ind["missing"])]
            )
    first = [n for n in ANSWERED_BY.values() if n in cells]
    for other in first[1:]:  # one population: courses whose first measurement point is active
        for where, c in cells[other].items():
            if where in cells[first[0]]:
                release.add_sum(
                    (other, c["denominator"]), [(first[0], cells[first[0]][where]["denominator"])]
                )
    if not first:  # no completeness table published: the indicators still share that population, unseen
        items = [k for k in ANSWERED_BY if k in cells]
        for where in {w for k in items for w in cells[k]}:
            have = [k for k in items if where in cells[k]]
            if len(have) < 2:
                continue
            k0 = have[0]
            value = sum(_value(release.specs[k0], cells[k0][where][c]) for c in ("denominator", "missing"))
            population = release.add_unseen(value)
            for k in have:  # a sum the data break is left out (add_sum)
                release.add_sum(
                    population, [(k, cells[k][where]["denominator"]), (k, cells[k][where]["missing"])]
                )
    if network is not None:
        release.add_spec("network_work", network_spec(network.table))
    if coverage is not None:
        spec, cov_cells = linked_spec(coverage.linked_view(), None, list(coverage.count_columns), {},
                                      {k: list(v) for k, v in coverage.derived_columns.items()})  # fmt: skip
        release.add_spec("coverage", spec)
        ending = cells.get("completeness_ending_registered", {})
        by_name = {}
        if units is not None:
            from kvarus_research.indicators.framework import unit_names

            by_name = {name: uid for uid, name in unit_names(units).items()}
        for where, cov in cov_cells.items():
            key = ("unit", by_name.get(where[1]), where[2]) if where[0] == "unit" else where
            due = ending.get(key)
            if due is not None:  # registered courses include those whose ending is due (same start year)
                release.add_at_least(("coverage", cov["registered"]), [("completeness_ending_registered",
                                                                       due["denominator"])])  # fmt: skip
    return release


def _value(spec: Any, ref: tuple[Any, Any]) -> float:
    """The value of a cell of a linked spec: a table cell ``(row, column)`` or a never-shown ``("extra", j)``."""
    from kvarus_research.privacy.engine import Linear

    if ref[0] == "extra":
        return next(s for s in spec.structure if isinstance(s, Linear)).extra[ref[1]]
    return float(spec.table.iloc[ref[0]][ref[1]])


def add_indicators_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``indicators [DIR] --out DIR [--courses N --seed S]`` (``--extract DIR`` still accepted) to the ``kvarus-research`` parser.

    Examples
    --------
    >>> parser = argparse.ArgumentParser(prog="kvarus-research")
    >>> _ = add_indicators_command(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["indicators", "--out", "x"])
    >>> args.extract, args.courses, args.rules
    (None, 5000, 'norway')
    """
    p = subparsers.add_parser(
        "indicators",
        help="quality indicators, coverage, completeness and network work as protected CSVs and PNGs",
        description="Compute the four Kvarus quality indicators per unit, region, nation and year, coverage, "
        "completeness and network work, and write protected tables and figures to --out. Without --extract the "
        "bundled synthetic registry is used.",
    )
    p.add_argument(
        "extract", type=Path, nargs="?", default=None, help="MRS extract folder (default: synthetic registry)"
    )
    # the old spelling, kept working: `indicators --extract DIR` (deprecated; give the folder first, like the others)
    p.add_argument("--extract", dest="extract_option", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--courses", type=int, default=5000, help="synthetic courses when no extract (default 5000)"
    )
    p.add_argument("--seed", type=int, default=0, help="synthetic seed (default 0)")
    p.add_argument("--rules", default="norway", choices=["norway", "opensafely"], help="disclosure rules")
    p.set_defaults(handler=run_indicators)
    return p


def run_indicators(args: argparse.Namespace) -> int:
    """Handler of ``indicators``: read or generate, write the outputs, print how many files where.

    Examples
    --------
    >>> import tempfile
    >>> run_indicators(argparse.Namespace(extract=None, out=Path(tempfile.mkdtemp()), courses=100, seed=1,
    ...                                   rules="norway"))  # doctest: +ELLIPSIS
    wrote ... files to ...
    0
    """
    import sys

    import kvarus_research as kr

    extract = args.extract if args.extract is not None else getattr(args, "extract_option", None)
    if args.extract is None and extract is not None:
        print(
            "kvarus-research indicators: --extract is deprecated; give the folder first: "
            "kvarus-research indicators DIR --out OUT",
            file=sys.stderr,
        )
    if extract is not None:
        registry = kr.read_extract(extract)
    else:
        registry = kr.synthetic.generate(n_courses=args.courses, seed=args.seed)
    files = write_indicator_outputs(registry, args.out, rules=args.rules)
    print(f"wrote {len(files)} files to {args.out}")
    return 0
