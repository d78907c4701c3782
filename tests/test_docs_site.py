"""The docs-site checker run by ``make test`` after ``mkdocs build``: a site read from disk, offline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "check_site", Path(__file__).parents[1] / "docs" / "hooks" / "check_site.py"
)
assert _spec is not None and _spec.loader is not None
check_site = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_site)


def _site(tmp_path: Path, pages: dict[str, str]) -> Path:
    for name, html in pages.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(html, encoding="utf-8")
    return tmp_path


def test_file_links_and_navigation_away_pass(tmp_path: Path) -> None:
    site = _site(
        tmp_path,
        {
            "index.html": '<a href="guide/page.html#top">g</a><a href="https://example.org/">out</a>'
            '<a href="#here">a</a><a href="mailto:x@y.no">m</a><img src="img/a.png">',
            "guide/page.html": '<a href="../index.html">home</a>',
            "img/a.png": "",
            "404.html": '<a href="/guide/">served only by a web server</a>',
        },
    )
    assert check_site.problems(site) == []


def test_directory_links_missing_files_and_network_loads_are_each_reported(tmp_path: Path) -> None:
    site = _site(
        tmp_path,
        {
            "index.html": '<a href="guide/">dir</a><link href="missing.css">'
            '<script src="https://cdn.example.org/x.js"></script><link href="//fonts.example.org/f.css">',
            "guide/page.html": "",
        },
    )
    found = check_site.problems(site)
    assert len(found) == 4
    assert sum("is a directory" in f for f in found) == 1
    assert sum("names no file" in f for f in found) == 1
    assert sum("from the network" in f for f in found) == 2
    assert check_site.main(["check_site", str(site)]) == 1
