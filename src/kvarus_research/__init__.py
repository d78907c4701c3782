"""kvarus_research: research workflows for Kvarus, Norway's quality register for TSB treatment.

Examples
--------
>>> import kvarus_research as kr
>>> reg = kr.synthetic.generate(n_courses=100, seed=1)
>>> reg.validate().n_courses
100
"""

from __future__ import annotations

import importlib
from typing import Any

from kvarus_research.codebook import Codebook, load_codebook
from kvarus_research.errors import (
    AnalysisError,
    CodebookError,
    CohortError,
    ExtractError,
    KvarusError,
    PrivacyError,
    RegistryError,
)
from kvarus_research.registry import Registry

__version__ = "0.1.0"

# Sub-packages loaded on first use, so `import kvarus_research` stays fast.
_SUBMODULES = {
    "synthetic",
    "io",
    "privacy",
    "cohort",
    "outcomes",
    "retention",
    "indicators",
    "report",
    "plots",
    "registry",
    "codebook",
}
# Functions re-exported at the top level from a sub-package: name -> module.
_LAZY = {
    "read_extract": "kvarus_research.io",
    "Cohort": "kvarus_research.cohort",
}

__all__ = [
    "AnalysisError",
    "Codebook",
    "CodebookError",
    "CohortError",
    "ExtractError",
    "KvarusError",
    "PrivacyError",
    "Registry",
    "RegistryError",
    "__version__",
    "load_codebook",
    *sorted(_SUBMODULES),
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"kvarus_research.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kvarus_research' has no attribute {name!r}")
