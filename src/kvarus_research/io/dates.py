"""One parser for dates a person types (API arguments, cohort YAML, CLI options): ISO or Norwegian day-first.

``2021-03-02`` (ISO) and ``02.03.2021`` (day-first, the way Norwegians write dates and the way the CLI prints
them) both mean 2 March 2021. Anything else, above all ``02/03/2021`` (3 February to an American, 2 March to a
Norwegian) and ``2021-3`` or ``March 2, 2021``, is refused with a message naming the accepted formats: a date is
never read month-first and never guessed.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np
import pandas as pd

from kvarus_research.io.convert import YEAR_MAX, YEAR_MIN

ACCEPTED = "expected a date as YYYY-MM-DD (ISO, e.g. 2021-03-02) or DD.MM.YYYY (day first, e.g. 02.03.2021)"
_ISO = re.compile(r"^(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})$")
_DMY = re.compile(r"^(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4})$")


def user_date(
    value: Any, what: str, error: type[Exception] = ValueError, *, normalize: bool = False
) -> pd.Timestamp | None:
    """``value`` as a midnight Timestamp (``None`` stays ``None``), or ``error`` saying what is accepted.

        Accepted: a ``date``/``datetime``/``Timestamp``/``numpy.datetime64``, or text ``YYYY-MM-DD`` or
        ``DD.MM.YYYY`` (a one-digit day or month is allowed in the day-first form) of a real date with a year from
        1800 to 2200. A date object with a time of day other than midnight is refused (``normalize=True``: the time is
    dropped); text with a time is refused.

        Examples
        --------
        >>> user_date("02.03.2021", "start").date(), user_date("2021-03-02", "start").date()
        (datetime.date(2021, 3, 2), datetime.date(2021, 3, 2))
        >>> user_date("02/03/2021", "start")
        Traceback (most recent call last):
        ...
        ValueError: start: '02/03/2021' is not a date the library reads; expected a date as YYYY-MM-DD (ISO, e.g. 2021-03-02) or DD.MM.YYYY (day first, e.g. 02.03.2021); a date with '/' is ambiguous (day or month first?) and refused
    """
    if value is None:
        return None
    if isinstance(value, (pd.Timestamp, dt.date, np.datetime64)):
        if normalize:
            value = pd.Timestamp(value).normalize() if not pd.isna(value) else value
        try:
            ts = pd.Timestamp(value)
        except (ValueError, OverflowError):
            raise error(f"{what}: {value!r} has a year outside {YEAR_MIN}-{YEAR_MAX}; {ACCEPTED}") from None
        if pd.isna(ts):
            raise error(f"{what}: a missing date (NaT) is not a date; {ACCEPTED}")
        if ts.tz is not None:
            ts = ts.tz_localize(None)
        if ts != ts.normalize():
            raise error(f"{what}: {ts} has a time of day; {ACCEPTED}")
        if not YEAR_MIN <= ts.year <= YEAR_MAX:
            raise error(f"{what}: {value!r} has a year outside {YEAR_MIN}-{YEAR_MAX}; {ACCEPTED}")
        return ts
    if not isinstance(value, str):
        raise error(f"{what}: {value!r} ({type(value).__name__}) is not a date; {ACCEPTED}")
    text = value.strip()
    m = _ISO.match(text) or _DMY.match(text)
    if m is None:
        hint = "; a date with '/' is ambiguous (day or month first?) and refused" if "/" in text else ""
        raise error(f"{what}: {value!r} is not a date the library reads; {ACCEPTED}{hint}")
    y, mo, d = int(m["y"]), int(m["m"]), int(m["d"])
    if not YEAR_MIN <= y <= YEAR_MAX:
        raise error(f"{what}: {value!r} has a year outside {YEAR_MIN}-{YEAR_MAX}; {ACCEPTED}")
    try:
        ts = pd.Timestamp(dt.date(y, mo, d))
    except (ValueError, OverflowError):
        raise error(
            f"{what}: {value!r} is not a real date (day {d}, month {mo}, year {y}); {ACCEPTED}"
        ) from None
    return ts
