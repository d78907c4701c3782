"""Shared test set-up: a headless matplotlib backend and a folder for the PNGs tests produce."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# No wall-clock deadline in any property test: on a slow or loaded machine (two cores shared) an example
# taking over 200 ms is not a failure. Tests that set their own ``@settings`` inherit this profile.
settings.register_profile(
    "kvarus", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "kvarus"))

ARTIFACTS = Path(__file__).parent / "_artifacts"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder for figures written by tests (git-ignored), so a person can look at them."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every matplotlib figure a test opened, so long runs do not pile them up."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The library makes no network call at run time: any socket connection in a test fails loudly."""
    import socket

    def guard(*args: object, **kwargs: object) -> None:
        raise RuntimeError("network access attempted during a test")

    if os.environ.get("KVARUS_ALLOW_NETWORK") != "1":
        monkeypatch.setattr(socket.socket, "connect", guard)


def _reader_attack(unknown: list, equations: list[tuple[dict, float]], upper: dict | None = None) -> dict:
    """Min and max of every unknown cell a reader can work out: subject to the published equations
    (coefficients {cell: coef}, right-hand side), x >= 0 and x <= upper[cell] where they know a bound
    (scipy linprog, HiGHS). Written independently of the library's own audit."""
    import numpy as np
    from scipy.optimize import linprog

    j = {u: i for i, u in enumerate(unknown)}
    a = np.array([[coefs.get(u, 0.0) for u in unknown] for coefs, _ in equations]) if equations else None
    b = np.array([rhs for _, rhs in equations]) if equations else None
    bounds = [(0, (upper or {}).get(u)) for u in unknown]
    out = {}
    for u in unknown:
        c = np.zeros(len(unknown))
        c[j[u]] = 1
        lo = linprog(c, A_eq=a, b_eq=b, bounds=bounds, method="highs")
        hi = linprog(-c, A_eq=a, b_eq=b, bounds=bounds, method="highs")
        assert lo.status == 0, "the reader's equations have no solution: the test's model is wrong"
        out[u] = (lo.fun, -hi.fun if hi.status == 0 else float("inf"))
    return out


def _equation(cells: list, total, published: dict) -> tuple[dict, float]:
    """sum(cells) - total = 0, with the published cells moved to the right-hand side."""
    coefs: dict = {}
    rhs = 0.0
    for cell, sign in [(c, 1.0) for c in cells] + [(total, -1.0)]:
        if cell in published:
            rhs -= sign * published[cell]
        else:
            coefs[cell] = coefs.get(cell, 0.0) + sign
    return coefs, rhs


@pytest.fixture(scope="session")
def reader_attack():
    """``(attack, equation)``: the attack a reader could run on a protected table (see ``_reader_attack``)."""
    return _reader_attack, _equation
