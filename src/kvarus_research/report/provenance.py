"""Provenance for a report: software versions, the seed and a hash of the input, so a result can be traced."""

from __future__ import annotations

import hashlib
import platform
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd

PACKAGES = (
    "kvarus_research",
    "pandas",
    "numpy",
    "scipy",
    "statsmodels",
    "lifelines",
    "matplotlib",
    "tableone",
    "pandera",
    "pyarrow",
)


def software_versions() -> pd.DataFrame:
    """Python, platform and the versions of the packages the analyses rest on.

    Examples
    --------
    >>> v = software_versions()
    >>> "statsmodels" in set(v["software"])
    True
    """
    rows = [("python", sys.version.split()[0]), ("platform", platform.platform(terse=True))]
    for name in PACKAGES:
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
    return pd.DataFrame(rows, columns=["software", "version"])


def hash_files(path: str | Path) -> str:
    """SHA-256 over every file below ``path`` (relative names and contents, in sorted order).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.csv").write_text("x;y\\n")
    >>> len(hash_files(d))
    64
    """
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path) if f != path else f.name).encode("utf-8"))
        h.update(b"\0")
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def hash_tables(*tables: pd.DataFrame | None) -> str:
    """SHA-256 over the contents of DataFrames (row order and column names included)."""
    h = hashlib.sha256()
    for t in tables:
        if t is None:
            h.update(b"<none>")
            continue
        h.update("|".join(map(str, t.columns)).encode("utf-8"))
        h.update(pd.util.hash_pandas_object(t, index=False).to_numpy().tobytes())
    return h.hexdigest()
