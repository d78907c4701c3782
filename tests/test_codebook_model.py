"""The codebook model: bundled file, YAML round trip and clear errors."""

from __future__ import annotations

import pytest
import yaml

from kvarus_research import CodebookError, load_codebook
from kvarus_research.codebook import codebook_from_dict


def test_bundled_codebook_has_every_documented_variable() -> None:
    cb = load_codebook()
    documented = {v.name for v in cb.variables if v.source == "documented"}
    # domain.md §2: the columns seen in the register's public reporting code
    assert {
        "PasientGUID",
        "UnitId",
        "db_unit_title",
        "PatientAge",
        "PatientGender",
        "dato_mp_beh",
        "behandlingsstatus",
        "plan_beh",
        "plan_krise",
        "eval_utbytte",
        "oppfolging_nav_frekvens",
    } <= documented
    status = cb.variable("behandlingsstatus")
    assert list(status.codes) == [1, 2, 3, 4, 5, 6, 7] and status.missing_codes == (0,)
    assert cb.variable("plan_beh").valid_codes == (1, 2, 3)
    assert cb.form("maalepunkt_2").name == "Målepunkt"


def test_outcomes_carry_direction_reliability_and_cutoff() -> None:
    cb = load_codebook()
    out = cb.outcomes()
    assert out["dager_rus_30"].direction == "lower" and out["dager_rus_30"].sign == -1
    assert out["livssituasjon"].sign == 1
    assert out["psykiske_plager"].reliability == pytest.approx(0.90)
    assert all(cb.variable(n).source == "assumed" for n in out)


def test_labels_in_both_languages() -> None:
    cb = load_codebook()
    assert cb.label("plan_krise", "nb") == "Kriseplan"
    assert cb.value_labels("plan_krise", "en") == {1: "No", 2: "Yes", 3: "Don't know"}
    assert cb.label("not_a_variable") == "not_a_variable"


def test_yaml_round_trip(tmp_path) -> None:
    cb = load_codebook()
    again = load_codebook(cb.to_yaml(tmp_path / "cb.yaml"))
    assert again.to_dict() == cb.to_dict()


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"type": "number"}, "type 'number' is not one of"),
        ({"range": [10, 1]}, "range must be"),
        ({"outcome": {"direction": "up"}}, "outcome direction must be"),
        (
            {"outcome": {"direction": "lower", "reliability": 1.5}},
            "reliability must lie strictly between 0 and 1",
        ),
        ({"forms": ["Nope"]}, "names unknown form"),
        ({"role": "boss"}, "role 'boss' is not one of"),
    ],
)
def test_malformed_variable_is_refused_with_its_name(patch: dict, message: str) -> None:
    data = {
        "name": "t",
        "forms": [{"name": "F", "table": "f", "kind": "baseline"}],
        "variables": [{"name": "x", "forms": ["F"], "type": "integer", **patch}],
    }
    with pytest.raises(CodebookError, match=message) as err:
        codebook_from_dict(data)
    assert "'x'" in str(err.value)


def test_duplicate_variable_and_bad_yaml(tmp_path) -> None:
    data = {"forms": [{"name": "F"}], "variables": [{"name": "x", "forms": ["F"], "type": "text"}] * 2}
    with pytest.raises(CodebookError, match="defined twice: x"):
        codebook_from_dict(data)
    bad = tmp_path / "bad.yaml"
    bad.write_text("variables: [unclosed", encoding="utf-8")
    with pytest.raises(CodebookError, match="not valid YAML"):
        load_codebook(bad)
    with pytest.raises(CodebookError, match="does not exist"):
        load_codebook(tmp_path / "missing.yaml")
    assert yaml.safe_load("a: 1") == {"a": 1}
