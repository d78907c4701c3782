"""The shape every analysis result shares: a tidy ``.table``, a ``.definition``, ``.plot()`` and a protected export.

Modelled on lifelines' fitted objects: the numbers are in a DataFrame, the exact definition used (population,
method, timepoints, numerator, denominator) travels with them, and every export goes through disclosure control
unless the caller turns it off explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.errors import AnalysisError
from kvarus_research.privacy.rules import DISABLED_STAMP, ProtectedTable

#: ``gid`` of every artist standing for a suppressed cell (the marker text, a hatched placeholder).
SUPPRESSED_GID = "suppressed"
#: ``gid`` of the footnote a figure with a suppressed cell carries, and of the disabled-protection stamp.
FOOTNOTE_GID = "disclosure_footnote"
STAMP_GID = "disclosure_stamp"


@dataclass(frozen=True)
class Definition:
    """What an estimate is: its population, method and the details a reader needs to reproduce it.

    Examples
    --------
    >>> d = Definition(population="courses ended 2021-2023", method="paired t-test", details={"ci": "95 %"})
    >>> print(d.to_text())
    Population: courses ended 2021-2023
    Method: paired t-test
    ci: 95 %
    """

    population: str
    method: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The definition as plain data."""
        return {"population": self.population, "method": self.method, **dict(self.details)}

    def to_text(self) -> str:
        """The definition as a few readable lines."""
        lines = [f"Population: {self.population}", f"Method: {self.method}"]
        lines += [f"{k}: {v}" for k, v in self.details.items()]
        return "\n".join(lines)


class ProtectedSides(Mapping):
    """Side tables a figure draws besides the main table, each protected when first asked for.

    ``build(key)`` returns the :class:`ProtectedTable` of ``key``; results compute it from their own data with
    :func:`kvarus_research.privacy.protect`, so drawing code only ever holds protected tables.

    Examples
    --------
    >>> from kvarus_research.privacy import protect
    >>> sides = ProtectedSides(lambda key: protect(pd.DataFrame({"n": [3, 12]}), counts=["n"]), ["counts"])
    >>> sides["counts"].table["n"].tolist()
    [<NA>, 12]
    """

    def __init__(self, build: Callable[[Any], ProtectedTable], keys: Sequence[Any] = ()) -> None:
        self._build = build
        self._keys = list(keys)
        self._cache: dict[Any, ProtectedTable] = {}

    def __getitem__(self, key: Any) -> ProtectedTable:
        if key not in self._cache:
            self._cache[key] = self._build(key)
        return self._cache[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(dict.fromkeys([*self._keys, *self._cache]))

    def __len__(self) -> int:
        return len(dict.fromkeys([*self._keys, *self._cache]))


@dataclass
class ProtectedResult(ProtectedTable):
    """A result's protected table plus the protected side tables its figure draws (``sides``).

    Behaves as the main :class:`ProtectedTable` (``.table``, ``.display()``, ``.to_csv()``); ``sides`` maps a
    name to another protected table (see :class:`ProtectedSides`).
    """

    sides: Mapping[Any, ProtectedTable] = field(default_factory=dict)

    @classmethod
    def of(cls, main: ProtectedTable, sides: Mapping[Any, ProtectedTable]) -> ProtectedResult:
        """``main`` with ``sides`` attached.

        Examples
        --------
        >>> from kvarus_research.privacy import protect
        >>> p = ProtectedResult.of(protect(pd.DataFrame({"n": [7]}), counts=["n"]), {})
        >>> p.table["n"].tolist(), dict(p.sides)
        ([7], {})
        """
        return cls(main.table, main.log, main.rules, main.enabled, main.suppressed, main.stamp, sides)


def hidden(protected: ProtectedTable, column: str) -> np.ndarray:
    """Which rows of ``protected.table`` have ``column`` suppressed (all ``False`` for a column never hidden).

    Examples
    --------
    >>> from kvarus_research.privacy import protect
    >>> hidden(protect(pd.DataFrame({"n": [3, 12]}), counts=["n"]), "n").tolist()
    [True, False]
    """
    sup = protected.suppressed
    if column in getattr(sup, "columns", ()):
        return sup[column].to_numpy(dtype=bool)
    return np.zeros(len(protected.table), dtype=bool)


def marker_of(protected: Any) -> str:
    """The neutral marker of a ProtectedTable, of rules (a preset name or :class:`DisclosureRules`), or a string.

    Examples
    --------
    >>> marker_of("opensafely"), marker_of("norway"), marker_of("*")
    ('[REDACTED]', ':', '*')
    """
    from kvarus_research.privacy.rules import PRESETS, resolve_rules

    if isinstance(protected, ProtectedTable):
        return protected.rules.marker
    if isinstance(protected, str) and protected not in PRESETS:
        return protected
    return resolve_rules(protected).marker


def draw_marker(ax: Any, x: float, y: float, protected: Any, **kwargs: Any) -> Any:
    """Write the rules' neutral marker (``":"``, ``"[REDACTED]"``) for a suppressed cell at ``(x, y)``.

    ``protected`` is the ProtectedTable drawn (or its rules, or the marker itself, see :func:`marker_of`).

    The text carries ``gid`` :data:`SUPPRESSED_GID`, so :func:`mark_figure` adds the footnote.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from kvarus_research.privacy import protect
    >>> _, ax = plt.subplots()
    >>> draw_marker(ax, 0.5, 0.5, protect(pd.DataFrame({"n": [3]}), counts=["n"])).get_text()
    ':'
    """
    style = {
        "fontsize": 9,
        "ha": "center",
        "va": "center",
        "color": "#222222",
        "fontweight": "bold",
        **kwargs,
    }
    text = ax.text(x, y, marker_of(protected), **style)
    text.set_gid(SUPPRESSED_GID)
    return text


def draw_placeholder(ax: Any, x: float, y: float, width: float, height: float, **kwargs: Any) -> Any:
    """A hatched rectangle of a fixed size standing for a suppressed cell (its size never depends on the value).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> _, ax = plt.subplots()
    >>> draw_placeholder(ax, 0, 0, 1, 1).get_gid()
    'suppressed'
    """
    from matplotlib.patches import Rectangle

    style = {"facecolor": "none", "edgecolor": "#888888", "hatch": "///", "linewidth": 0.6, **kwargs}
    rect = Rectangle((x, y), width, height, **style)
    rect.set_gid(SUPPRESSED_GID)
    ax.add_patch(rect)
    return rect


def mark_figure(ax: Any, protected: ProtectedTable, *, suppressed: bool | None = None) -> None:
    """Add the rules' footnote when the figure holds a suppressed cell, and the stamp when protection was off.

    ``suppressed`` says whether the figure shows a suppressed cell; by default, whether an artist carries ``gid``
    :data:`SUPPRESSED_GID`.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from kvarus_research.privacy import protect
    >>> p = protect(pd.DataFrame({"n": [3]}), counts=["n"])
    >>> _, ax = plt.subplots()
    >>> _ = draw_marker(ax, 0.5, 0.5, p)
    >>> mark_figure(ax, p)
    >>> [t.get_text() for t in ax.figure.texts] == [p.rules.footnote]
    True
    """
    fig = ax.figure
    own = {t.get_gid() for t in fig.texts}
    if suppressed is None:
        suppressed = bool(fig.findobj(lambda a: a.get_gid() == SUPPRESSED_GID))
    if FOOTNOTE_GID not in own and suppressed:
        # under everything drawn so far (legends below the axes too); saved with bbox_inches="tight"
        box = fig.get_tightbbox(fig.canvas.get_renderer())
        y = min(0.004, box.y0 / fig.get_figheight() - 0.01)
        fig.text(0.01, y, protected.rules.footnote, ha="left", va="top", fontsize=7, color="#333333",
                 gid=FOOTNOTE_GID)  # fmt: skip
    if not protected.enabled and STAMP_GID not in own:
        fig.text(0.5, 0.998, DISABLED_STAMP, ha="center", va="top", fontsize=8, fontweight="bold",
                 color="#b00000", gid=STAMP_GID)  # fmt: skip


class Result:
    """Base class of analysis results.

    Subclasses set ``table`` (tidy DataFrame), ``definition`` (:class:`Definition`), ``count_columns`` (columns
    holding counts of people or courses, which disclosure control may suppress) and ``derived_columns``
    (column → the count column(s) it was computed from, suppressed with them), where they apply
    ``complement_columns`` and ``partition_columns`` (see :func:`kvarus_research.privacy.protect`), and implement
    the figure as a classmethod ``_draw(cls, protected, ax, definition, **kwargs)``: :meth:`plot` (never
    overridden) passes it the protected table only, so a figure cannot show a number the table hides. Data a
    figure needs beyond the main table is declared as protected side tables (:class:`ProtectedResult`).
    """

    table: pd.DataFrame
    definition: Definition
    count_columns: Sequence[str] = ()
    derived_columns: Mapping[str, str | Sequence[str]] = {}
    #: Count column → its row total, when the difference counts people too ("x of n": n - x did not).
    complement_columns: Mapping[str, str] = {}
    #: Count column → (row-total column, category column(s)): rows differing only in the categories split the total.
    partition_columns: Mapping[str, tuple[str, str | Sequence[str]]] = {}
    #: Columns that identify a group (unit, region ...) for pooling small units.
    group_columns: Sequence[str] = ()
    #: (column, label) of the rows that total the groups (e.g. ``("group", "All")``): each count of an "All" row is
    #: the sum of the groups' counts, declared to ``protect`` as a margin.
    group_total: tuple[str, Any] | None = None
    #: Columns that only describe the group (e.g. ``group_variable``, ``group_label``): left out of the dimensions
    #: when the group total is declared, since they differ between the "All" rows and the groups.
    group_label_columns: Sequence[str] = ()

    def plot(self, ax: Any = None, *, rules: Any = "norway", enabled: bool = True, **kwargs: Any) -> Any:
        """Draw the result from its protected table and return the matplotlib Axes.

        The one drawing path of every result: the table goes through :meth:`protected` with ``rules``, and only
        that :class:`~kvarus_research.privacy.rules.ProtectedTable` (with the definition and the labels from
        :meth:`_draw_context`, which hold no counts) reaches the subclass's ``_draw``. Suppressed cells are drawn
        with a fixed placeholder (never their value) and labelled with ``rules.marker``; a figure holding the
        marker carries ``rules.footnote``, and ``enabled=False`` stamps the figure with
        :data:`~kvarus_research.privacy.rules.DISABLED_STAMP`.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Drawn into a new figure when absent.
        rules : str or DisclosureRules
            Disclosure-control rules (``"norway"``, ``"opensafely"`` or a :class:`DisclosureRules`).
        enabled : bool
            ``False`` draws the raw table, stamped as such (not for publication).
        **kwargs
            Options of the result's figure (see its ``_draw``).

        Returns
        -------
        matplotlib.axes.Axes
            The (first) Axes drawn into; ``ax.figure`` is its Figure.

        Examples
        --------
        >>> import matplotlib; matplotlib.use("Agg")
        >>> import kvarus_research as kr
        >>> from kvarus_research.indicators import TREATMENT_PLAN
        >>> res = TREATMENT_PLAN.compute(kr.synthetic.generate(n_courses=300, seed=1))
        >>> ax = res.plot(rules="opensafely")
        >>> type(ax).__name__
        'Axes'
        """
        if "protect" in kwargs:  # the former name: refuse rather than silently protect or not
            raise TypeError("plot(protect=...) is now plot(enabled=...)")
        protected = self._adopted_or_protected(rules, enabled)
        context = self._draw_context()
        raw = [k for k, v in context.items() if isinstance(v, (pd.DataFrame, pd.Series, np.ndarray))]
        if raw:  # the drawing code gets tables only through protected()
            raise TypeError(
                f"{type(self).__name__}._draw_context passes tables {raw}: use protected() instead"
            )
        ax = type(self)._draw(protected, ax, self.definition, **{**context, **kwargs})
        mark_figure(ax, protected)
        return ax

    @classmethod
    def _draw(cls, protected: Any, ax: Any, definition: Definition, **kwargs: Any) -> Any:
        """Draw ``protected`` (a ProtectedTable) into ``ax`` (or a new figure) and return the Axes."""
        raise AnalysisError(f"{cls.__name__} has no figure")

    def _draw_context(self) -> dict[str, Any]:
        """Keyword arguments of ``_draw`` that are not counts (labels, kind, units of time); none by default."""
        return {}

    def protected(self, rules: Any = "norway", *, enabled: bool = True) -> Any:
        """The table after disclosure control (:func:`kvarus_research.privacy.protect`), with the structure the
        result declares (complements, partitions, the groups' total)."""
        from kvarus_research.privacy import protect

        table, aside = self.table, []
        margins = {}
        if self.group_total is not None and enabled:
            column, label = self.group_total
            groups = table[column]
            if (groups == label).any() and (groups != label).any():
                margins = {column: label}
                aside = [c for c in self.group_label_columns if c in table.columns]
                table = table.drop(columns=aside)
        p = protect(
            table,
            counts=list(self.count_columns),
            derived=dict(self.derived_columns),
            complements=dict(self.complement_columns),
            partitions=dict(self.partition_columns),
            margins=margins,
            rules=rules,
            enabled=enabled,
        )
        if aside:  # the describing columns back in their places
            p.table = pd.concat([p.table, self.table[aside]], axis=1)[list(self.table.columns)]
        return p

    def adopt(self, protected: ProtectedTable, rules: Any = "norway") -> None:
        """Publish ``protected`` for this result under ``rules`` from now on: its figures and CSV use it.

        A :class:`~kvarus_research.privacy.release.Release` protects this result's table together with the other
        tables published beside it, and may hide more than the table alone needs; adopting its outcome keeps the
        figures drawn from the same cells the release publishes.

        Examples
        --------
        >>> from kvarus_research.privacy import protect
        >>> class Counts(Result):
        ...     count_columns = ("n",)
        >>> r = Counts(); r.table = pd.DataFrame({"n": [7, 9]})
        >>> r.adopt(protect(pd.DataFrame({"n": [7, 9]}), counts="n", structure=[]), "norway")
        >>> r._adopted_or_protected("norway", True).table["n"].tolist()
        [7, 9]
        """
        from kvarus_research.privacy.rules import resolve_rules

        self.__dict__.setdefault("_adopted", {})[resolve_rules(rules)] = protected

    def published(self, rules: Any = "norway") -> Any:
        """The table as published under ``rules``: the release's table this result adopted (:meth:`adopt`), else
        :meth:`protected`.

        Examples
        --------
        >>> class Counts(Result):
        ...     count_columns = ("n",)
        >>> r = Counts(); r.table = pd.DataFrame({"n": [3, 9]})
        >>> r.published().display()["n"].tolist()
        [':', 9]
        """
        return self._adopted_or_protected(rules, True)

    def _adopted_or_protected(self, rules: Any, enabled: bool) -> Any:
        from kvarus_research.privacy.rules import resolve_rules

        adopted = self.__dict__.get("_adopted", {})
        if enabled and not isinstance(rules, dict) and resolve_rules(rules) in adopted:
            return adopted[resolve_rules(rules)]
        return self.protected(rules, enabled=enabled)

    def to_csv(self, path: str | Path, rules: Any = "norway", *, protect: bool = True) -> Path:
        """Write the table as CSV after disclosure control (``protect=False`` writes it raw, stamped as such)."""
        path = Path(path)
        prot = self._adopted_or_protected(rules, protect)
        prot.to_csv(path)
        return path

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(\n{self.definition.to_text()}\n\n{self.table.to_string(max_rows=20)}\n)"
        )

    def _repr_html_(self) -> str:
        """How a notebook shows the result: its definition as text, then the table (first 20 rows) as HTML.

        The table is the unprotected one, for the analyst's own screen; what is published goes through
        :meth:`protected`, :meth:`to_csv` or :meth:`plot`, as the note under the table says.
        """
        import html

        definition = html.escape(self.definition.to_text()).replace("\n", "<br>")
        n = len(self.table)
        shown = self.table.to_html(max_rows=20, na_rep="", float_format=lambda v: f"{v:.4g}", border=0)
        more = f" ({n} rows, the first and last 10 shown)" if n > 20 else ""
        return (
            f"<div><strong>{html.escape(type(self).__name__)}</strong>{more}"
            f"<p style='font-size:90%'>{definition}</p>{shown}"
            "<p style='font-size:85%;color:#555'>Unprotected table, for your screen only: publish through "
            "<code>.protected()</code>, <code>.to_csv()</code> or <code>.plot()</code> (disclosure control).</p>"
            "</div>"
        )
