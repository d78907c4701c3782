"""MkDocs hook: pages generated at build time, so nothing is typed twice.

- ``reference/data_dictionary.md`` from the bundled codebook (every form, variable, code list and source).

The notebooks reach the docs through the symlink ``docs/notebooks -> ../notebooks`` (executed and rendered by
mkdocs-jupyter at every build, so the pages show their tables and figures; the test suite executes them too).
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def data_dictionary() -> str:
    from kvarus_research import load_codebook

    cb = load_codebook()
    out = [
        "# Data dictionary",
        "",
        f"Generated from the bundled codebook **{cb.name}** (version {cb.version}) at every docs build: the same "
        "file drives validation, labels and the synthetic registry. `documented` variables are seen in the "
        "register's public material; `assumed` ones are defined for the synthetic registry and are replaced when "
        "you load the real `rapport.xlsx`.",
        "",
        "Values that mean *missing* in every variable: "
        + ", ".join(f"`{m}`" for m in cb.missing_labels)
        + ".",
        "",
    ]
    from kvarus_research.registry.schema import STRUCTURE, TABLES

    out += [
        "## Structural and derived columns",
        "",
        "The columns the library gives every table (declared once in `kvarus_research.registry.schema`): "
        "identifiers (`id`, replaced by keyed pseudonyms, never shown), treatment dates (`date`, shifted per "
        "patient by `shift_dates`), the unit, the opt-out flag, and the columns derived from the course model, "
        "which the analyses use by name (`by=\"setting\"`, `ending_type` …).",
        "",
    ]
    for table in TABLES:
        out += [
            f"### `{table}`",
            "",
            "| column | meaning (en) | betydning (nb) | type | roles | derived from |",
            "|---|---|---|---|---|---|",
        ]
        for c in (c for c in STRUCTURE if c.table == table):
            out.append(
                f"| `{c.name}` | {_cell(c.en)} | {_cell(c.nb)} | {c.dtype} | {', '.join(sorted(c.roles))} | "
                f"{_cell(c.source)} |"
            )
        out.append("")
    for form in cb.forms:
        out += [
            f"## {form.name}",
            "",
            f"Table `{form.table}`, kind `{form.kind}`, source `{form.source}`.",
            "",
        ]
        out += [
            "| variable | label (nb) | label (en) | type | codes / range | missing | required | source |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for v in cb.form_variables(form.name):
            if v.codes:
                codes = "; ".join(f"{c} = {v.code_label(c, 'nb')}" for c in v.codes)
            elif v.range:
                codes = f"{v.range[0]:g} – {v.range[1]:g}"
            else:
                codes = ""
            if v.outcome is not None:
                o = v.outcome
                codes += f" (outcome: {o.direction} is better"
                codes += f", reliability {o.reliability:g}" if o.reliability is not None else ""
                codes += f", cut-off {o.cutoff:g}" if o.cutoff is not None else ""
                codes += ")"
            role = f" (role `{v.role}`)" if v.role else ""
            out.append(
                f"| `{v.name}`{role} | {_cell(v.label_in('nb'))} | {_cell(v.label_in('en'))} | {v.type} | "
                f"{_cell(codes)} | {', '.join(str(m) for m in v.missing_codes)} | {'yes' if v.required else ''} | "
                f"{v.source} |"
            )
        out.append("")
    return "\n".join(out)


def on_files(files, config):  # noqa: ANN001, ANN201 - MkDocs hook signature
    files.append(File.generated(config, "reference/data_dictionary.md", content=data_dictionary()))
    return files
