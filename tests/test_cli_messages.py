"""Messages that name the real problem (issue 18): a mistyped outcome or ``by=`` column is called unknown with the
closest names suggested; CLI items (start-up, help, argument checks) are tested below."""

from __future__ import annotations

import pandas as pd
import pytest

from kvarus_research.errors import AnalysisError
from kvarus_research.outcomes import change


def tiny_long() -> pd.DataFrame:
    rows = [
        (1, "baseline", 20, 1),
        (1, "ending", 10, 1),
        (2, "baseline", 15, 2),
        (2, "ending", 12, 2),
        (3, "baseline", 30, 1),
        (3, "ending", 15, 1),
    ]
    return pd.DataFrame(rows, columns=["course_id", "timepoint", "dager_rus_30", "hovedrusmiddel"])


def test_mistyped_outcome_is_not_a_variable_and_the_close_name_is_suggested():
    with pytest.raises(AnalysisError) as err:
        change(tiny_long(), "dager_rus30")
    msg = str(err.value)
    assert "'dager_rus30' is not a variable in codebook" in msg
    assert "did you mean 'dager_rus_30'" in msg
    assert "not an outcome measure" not in msg


def test_codebook_variable_that_is_no_outcome_keeps_the_direction_message():
    # hovedrusmiddel is in the codebook but has no direction of improvement
    with pytest.raises(AnalysisError, match="is not an outcome measure"):
        change(tiny_long(), "hovedrusmiddel")


def test_mistyped_by_is_not_a_column_and_the_close_name_is_suggested():
    with pytest.raises(AnalysisError) as err:
        change(tiny_long(), "dager_rus_30", by="hovedrusmidel")
    msg = str(err.value)
    assert "'hovedrusmidel' is neither a column" in msg
    assert "did you mean 'hovedrusmiddel'" in msg
    assert "covariate" not in msg


def test_no_suggestion_when_nothing_is_close():
    with pytest.raises(AnalysisError) as err:
        change(tiny_long(), "dager_rus_30", by="zzzz")
    assert "did you mean" not in str(err.value)
