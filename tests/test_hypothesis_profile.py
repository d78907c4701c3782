"""The suite-wide Hypothesis profile (tests/conftest.py): no wall-clock deadline, so a loaded machine passes."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st


def test_default_profile_has_no_deadline() -> None:
    assert settings.default.deadline is None


@settings(max_examples=3)  # a test's own settings inherit the profile's deadline=None
@given(st.integers())
def test_slow_example_is_not_a_deadline_failure(x: int) -> None:
    time.sleep(0.25)  # longer than Hypothesis' default 200 ms deadline
    assert isinstance(x, int)
