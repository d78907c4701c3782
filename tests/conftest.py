"""Shared test set-up: a headless matplotlib backend and a folder for the PNGs tests produce."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

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
