"""A small, dependency-free writer for the self-contained HTML report.

Tables enter only as protected tables (the output of disclosure control), figures are saved as PNG and SVG
beside the report and embedded in the HTML as base64 PNG, so ``index.html`` is one file that opens anywhere,
offline.
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d2327;line-height:1.45}
h1{border-bottom:3px solid #00796b;padding-bottom:.3em}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85em;margin:.8em 0}th,td{border:1px solid #ccd;padding:3px 7px;
text-align:right}th{background:#eef4f3}td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #e0e0e0}figcaption{font-size:.85em;color:#555}
.definition{background:#f6f8fa;border-left:4px solid #00796b;padding:.4em .8em;font-size:.85em;white-space:pre-wrap}
.warn{background:#fff4e5;border-left:4px solid #e65100;padding:.4em .8em}
.toc{columns:2;font-size:.9em}.meta td{text-align:left}.scroll{overflow-x:auto}
.note{font-size:.8em;color:#555;margin:.2em 0}details summary{cursor:pointer;color:#00796b}
"""

# Checked by the browser test: every image decoded, no script error.
SELF_CHECK = """
<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message || e)); }, true);
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length;
  document.body.setAttribute('data-images', String(imgs.length));
  document.body.setAttribute('data-broken-images', String(broken));
  document.body.setAttribute('data-errors', String(window.__errors.length));
});
</script>
"""


def slug(text: str) -> str:
    """A file- and anchor-safe name.

    Examples
    --------
    >>> slug("Change: baseline → ending (days)")
    'change-baseline-ending-days'
    """
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s or "item"


def format_numbers(df: pd.DataFrame) -> pd.DataFrame:
    """Floats shown with at most three decimals (one when ≥ 100), p-values below 0.001 as "<0.001"; text,
    counts and suppressed (":") cells unchanged.

    Examples
    --------
    >>> format_numbers(pd.DataFrame({"x": [0.123456, 1234.56, None], "n": [":", "12", "7"]})).values.tolist()
    [['0.123', ':'], ['1234.6', '12'], ['', '7']]
    >>> format_numbers(pd.DataFrame({"p_value": [0.0, 0.0123]}))["p_value"].tolist()
    ['<0.001', '0.012']
    """

    def fmt(v: Any) -> Any:
        if isinstance(v, float):
            if v != v:  # NaN
                return ""
            if float(v).is_integer() and abs(v) < 1e15:
                return str(int(v)) if abs(v) >= 100 else f"{v:g}"
            return f"{v:.1f}" if abs(v) >= 100 else f"{v:.3f}".rstrip("0").rstrip(".")
        return v

    def fmt_p(v: Any) -> Any:
        if isinstance(v, float) and v == v and 0 <= v < 0.001:
            return "<0.001"
        return fmt(v)

    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_float_dtype(out[col]):
            is_p = str(col) == "p" or str(col).startswith("p_") or str(col).endswith("_p_value")
            out[col] = out[col].map(fmt_p if is_p else fmt)
    return out


@dataclass
class Section:
    title: str
    parts: list[str] = field(default_factory=list)


class ReportWriter:
    """Collects sections, protected tables and figures; writes ``index.html``, CSVs, PNGs and SVGs.

    Examples
    --------
    >>> import tempfile
    >>> w = ReportWriter(tempfile.mkdtemp(), title="Demo")
    >>> w.section("Intro").text("Hello")
    >>> w.write().name
    'index.html'
    """

    def __init__(self, out: str | Path, *, title: str) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "tables").mkdir(exist_ok=True)
        (self.out / "figures").mkdir(exist_ok=True)
        self.title = title
        self.sections: list[Section] = []
        self.header: list[str] = []
        self.tables_written: list[Path] = []
        self.figures_written: list[Path] = []
        self._names: set[str] = set()

    # -- building -------------------------------------------------------------------------------------
    def section(self, title: str) -> ReportWriter:
        """Start a new section; later calls add to it."""
        self.sections.append(Section(title))
        return self

    def _current(self) -> Section:
        if not self.sections:
            self.section("Report")
        return self.sections[-1]

    def _unique(self, name: str) -> str:
        base, n = slug(name), 1
        name = base
        while name in self._names:
            n += 1
            name = f"{base}-{n}"
        self._names.add(name)
        return name

    def text(self, text: str, *, warn: bool = False) -> None:
        """A paragraph (escaped)."""
        cls = ' class="warn"' if warn else ""
        self._current().parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def html(self, fragment: str) -> None:
        """A trusted HTML fragment built by this package (never user data)."""
        self._current().parts.append(fragment)

    def definition(self, definition: Any) -> None:
        """The definition of a result (population, method, details)."""
        if hasattr(definition, "to_text"):
            text = definition.to_text()
        elif isinstance(definition, dict):
            import yaml

            text = yaml.safe_dump(
                definition, allow_unicode=True, sort_keys=False, default_flow_style=False
            ).strip()
        else:
            text = str(definition)
        self._current().parts.append(f'<div class="definition">{html.escape(text)}</div>')

    def table(
        self, name: str, protected: Any, *, caption: str = "", max_rows: int = 60, collapse_rows: int = 15
    ) -> Path:
        """Add a protected table: shown in the HTML (suppressed cells with the neutral marker, ":" by default) and written as CSV.

        ``protected`` must be the output of :func:`kvarus_research.privacy.protect` (it has ``display()`` and
        ``to_csv()``): plain DataFrames are refused so that no table escapes disclosure control.
        """
        if not (hasattr(protected, "display") and hasattr(protected, "to_csv")):
            raise TypeError(
                f"table {name!r}: pass the output of kvarus_research.privacy.protect(), not a "
                f"{type(protected).__name__}; every table in the report goes through disclosure control"
            )
        fname = self._unique(name)
        path = self.out / "tables" / f"{fname}.csv"
        protected.to_csv(path)
        self.tables_written.append(path)
        shown = format_numbers(protected.display())
        n_rows = len(shown)
        note = ""
        if n_rows > max_rows:
            note = f"<p><em>First {max_rows} of {n_rows} rows; all rows in tables/{fname}.csv.</em></p>"
            shown = shown.head(max_rows)
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        body = shown.to_html(index=False, na_rep="", escape=True, border=0)
        if cap:
            body = body.replace('<table class="dataframe">', f'<table class="dataframe">{cap}', 1)
        stamp = getattr(protected, "stamp", "")
        enabled = getattr(protected, "enabled", True)
        stamp_html = f'<p class="{"note" if enabled else "warn"}">{html.escape(stamp)}</p>' if stamp else ""
        inner = f'<div class="scroll">{body}</div>{note}'
        if n_rows > collapse_rows:
            inner = f"<details><summary>{html.escape(caption or name)}: {n_rows} rows (click to show)</summary>{inner}</details>"
        self._current().parts.append(
            f'<div class="table" id="t-{fname}">{stamp_html}{inner}'
            f'<p class="note">CSV: <a href="tables/{fname}.csv">tables/{fname}.csv</a></p></div>'
        )
        return path

    def figure(self, name: str, fig: Any, *, caption: str = "") -> Path:
        """Add a matplotlib figure: PNG and SVG written beside the report, PNG embedded in the HTML."""
        import matplotlib.pyplot as plt

        if hasattr(fig, "get_figure") and not hasattr(fig, "savefig"):
            fig = fig.get_figure()
        fname = self._unique(name)
        png = self.out / "figures" / f"{fname}.png"
        svg = self.out / "figures" / f"{fname}.svg"
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        png.write_bytes(buf.getvalue())
        fig.savefig(svg, format="svg", bbox_inches="tight", metadata={"Date": None})
        plt.close(fig)
        self.figures_written += [png, svg]
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        self._current().parts.append(
            f'<figure id="f-{fname}"><img alt="{html.escape(caption or name)}" '
            f'src="data:image/png;base64,{data}"/><figcaption>{html.escape(caption)} '
            f'(<a href="figures/{fname}.png">PNG</a>, <a href="figures/{fname}.svg">SVG</a>)</figcaption></figure>'
        )
        return png

    # -- output ---------------------------------------------------------------------------------------
    def write(self) -> Path:
        """Write ``index.html`` and return its path."""
        toc = "".join(
            f'<li><a href="#s-{i}">{html.escape(s.title)}</a></li>' for i, s in enumerate(self.sections, 1)
        )
        body = "".join(
            f'<section id="s-{i}"><h2>{i}. {html.escape(s.title)}</h2>{"".join(s.parts)}</section>'
            for i, s in enumerate(self.sections, 1)
        )
        doc = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"/>'
            f"<title>{html.escape(self.title)}</title><style>{CSS}</style>{SELF_CHECK}</head><body>"
            f"<h1>{html.escape(self.title)}</h1>{''.join(self.header)}"
            f'<nav><ol class="toc">{toc}</ol></nav>{body}</body></html>'
        )
        path = self.out / "index.html"
        path.write_text(doc, encoding="utf-8")
        return path
