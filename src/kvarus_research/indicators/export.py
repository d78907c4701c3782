"""Write every indicator output (protected CSVs, PNGs, definitions) to a folder, and the ``indicators`` command.

``kvarus-research indicators [--extract DIR] --out DIR`` runs the four Kvarus indicators, coverage, completeness
and network work on an extract (or, without ``--extract``, on the bundled synthetic registry) and writes only
protected tables and figures drawn from them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm


def _save(fig_or_ax: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig = getattr(fig_or_ax, "figure", fig_or_ax)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def write_indicator_outputs(
    data: Any, out_dir: str | Path, *, rules: Any = "norway", progress: bool = False
) -> list[Path]:
    """Protected CSVs and PNGs of the indicators, coverage, completeness and network work, plus definitions.

    Files: ``<key>.csv`` and ``<key>_bars.png`` / ``_funnel.png`` / ``_pchart.png`` per Kvarus indicator;
    ``<key>_exclusions.csv`` (counts protected too); ``completeness_<key>.csv``; ``coverage.csv`` and
    ``coverage.png`` when expected courses are given; ``network_work.csv`` and ``network_<measure>.png`` when
    network-work registrations exist; ``definitions.txt``.

    Examples
    --------
    >>> import tempfile, kvarus_research as kr
    >>> files = write_indicator_outputs(kr.synthetic.generate(n_courses=300, seed=1), tempfile.mkdtemp())
    >>> sorted(p.name for p in files if p.suffix == ".csv")[:3]
    ['completeness_answered_eval_utbytte.csv', 'completeness_answered_plan_beh.csv', 'completeness_answered_plan_krise.csv']
    """
    from kvarus_research.errors import AnalysisError
    from kvarus_research.indicators.coverage import completeness, coverage
    from kvarus_research.indicators.framework import as_registry
    from kvarus_research.indicators.kvarus import kvarus_indicators
    from kvarus_research.indicators.network import network_work
    from kvarus_research.privacy import protect

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    registry = as_registry(data)
    files: list[Path] = []
    texts: list[str] = []
    steps = tqdm(total=4, desc="indicators", disable=not progress)
    results = kvarus_indicators(registry)
    for key, res in results.items():
        files.append(res.to_csv(out / f"{key}.csv", rules))
        files.append(protect(res.exclusions, counts="n", rules=rules).to_csv(out / f"{key}_exclusions.csv"))
        files.append(_save(res.plot(kind="bar", rules=rules), out / f"{key}_bars.png"))
        files.append(_save(res.plot(kind="funnel", rules=rules), out / f"{key}_funnel.png"))
        files.append(_save(res.plot(kind="pchart", period="quarter", rules=rules), out / f"{key}_pchart.png"))
        texts.append(f"## {res.indicator.label} ({key})\n{res.definition.to_text()}")
    steps.update()
    for key, res in completeness(registry).items():
        files.append(res.to_csv(out / f"completeness_{key}.csv", rules))
        texts.append(f"## {res.indicator.label} (completeness_{key})\n{res.definition.to_text()}")
    steps.update()
    full = getattr(data, "registry", data)
    if full.coverage is not None and len(full.coverage):
        cov = coverage(full)
        files.append(cov.to_csv(out / "coverage.csv", rules))
        files.append(_save(cov.plot(rules=rules), out / "coverage.png"))
        texts.append(f"## Coverage (dekningsgrad)\n{cov.definition.to_text()}")
    steps.update()
    if registry.network_work is not None and len(registry.network_work):
        try:
            nw = network_work(registry)
        except AnalysisError as exc:  # e.g. network-work columns missing in a real extract
            texts.append(f"## Network work\nnot computed: {exc}")
        else:
            files.append(nw.to_csv(out / "network_work.csv", rules))
            for measure in ("meeting", "took_part", "invited", "place", "reason"):
                files.append(_save(nw.plot(measure=measure, rules=rules), out / f"network_{measure}.png"))
            texts.append(f"## Network work\n{nw.definition.to_text()}")
    steps.update()
    steps.close()
    definitions = out / "definitions.txt"
    definitions.write_text("\n\n".join(texts) + "\n", encoding="utf-8")
    files.append(definitions)
    return files


def add_indicators_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``indicators [--extract DIR] --out DIR [--courses N --seed S]`` to the ``kvarus-research`` parser.

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
        "--extract", type=Path, default=None, help="MRS extract folder (default: synthetic registry)"
    )
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
    import kvarus_research as kr

    if args.extract is not None:
        registry = kr.read_extract(args.extract)
    else:
        registry = kr.synthetic.generate(n_courses=args.courses, seed=args.seed)
    files = write_indicator_outputs(registry, args.out, rules=args.rules)
    print(f"wrote {len(files)} files to {args.out}")
    return 0
