"""What a notebook shows for a registry and a result: short, informative, no identifiers (issue 18)."""

from __future__ import annotations

import pandas as pd

import kvarus_research as kr
from kvarus_research.results import Definition, Result


def test_registry_repr_is_a_few_lines_of_counts_without_identifiers() -> None:
    reg = kr.synthetic.generate(n_courses=150, seed=5)
    text = repr(reg)
    assert len(text.splitlines()) <= 6 and len(text) < 800
    n_out = int(reg.patients["reserved"].sum())
    assert text.splitlines()[0].startswith(
        f"Registry: {len(reg.courses)} courses of {len(reg.patients)} patients ({n_out} opted out) "
        f"in {len(reg.units)} units, {len(reg.registrations)} registrations"
    )
    for ident in list(reg.patients["patient_id"].astype(str)) + list(reg.courses["course_id"].astype(str)):
        assert ident not in text


class _Toy(Result):
    def __init__(self, table: pd.DataFrame) -> None:
        self.table = table
        self.definition = Definition(population="courses with <ending>", method="counts & shares")


def test_result_html_shows_definition_escaped_and_at_most_twenty_rows() -> None:
    res = _Toy(pd.DataFrame({"group": [f"g{i}" for i in range(30)], "n": range(30)}))
    html = res._repr_html_()
    assert "courses with &lt;ending&gt;" in html and "counts &amp; shares" in html
    assert "(30 rows, the first and last 10 shown)" in html
    assert "<td>g0</td>" in html and "<td>g29</td>" in html and "<td>g15</td>" not in html
    assert "Unprotected table" in html
    small = _Toy(pd.DataFrame({"group": ["a", "b"], "n": [1, 2]}))._repr_html_()
    assert "rows, the first" not in small and small.count("<tr") == 3
