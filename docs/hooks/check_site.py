"""Check a built docs site the way a secure platform reads it: opened from disk, with no network.

Every local ``href``/``src`` in every HTML page must name a file that exists in the site (a link to a directory
opens a directory listing from disk), and no page may load anything from the network (scripts, styles, fonts,
images). Links that only navigate away (``<a href="https://...">``) are allowed. Run after ``mkdocs build``::

    python docs/hooks/check_site.py .site
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

_ATTR = re.compile(r"<(?P<tag>[a-zA-Z]+)\b[^>]*?\b(?P<attr>href|src)=\"(?P<url>[^\"]*)\"")


def problems(site: Path) -> list[str]:
    """Return one line per broken local link or network load in the built ``site``."""
    out: list[str] = []
    for page in sorted(site.rglob("*.html")):
        if page.name == "404.html" and page.parent == site:
            continue  # only a web server shows it (its links are absolute by design); read from disk it never opens
        text = page.read_text(encoding="utf-8", errors="replace")
        for m in _ATTR.finditer(text):
            tag, url = m["tag"].lower(), m["url"]
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") or url.startswith("//"):
                if tag != "a":
                    out.append(f"{page.relative_to(site)}: <{tag}> loads {url} from the network")
                continue
            if parts.scheme or not parts.path:  # mailto:, data:, javascript:, pure #anchors
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                out.append(f"{page.relative_to(site)}: link {url} is a directory (opens a listing from disk)")
            elif not target.exists():
                out.append(f"{page.relative_to(site)}: link {url} names no file in the site")
    return out


def main(argv: list[str]) -> int:
    site = Path(argv[1] if len(argv) > 1 else ".site")
    found = problems(site)
    for line in found[:50]:
        print(line)
    n_pages = sum(1 for _ in site.rglob("*.html"))
    print(f"{n_pages} pages checked: {len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
