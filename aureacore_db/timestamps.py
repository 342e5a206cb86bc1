"""Timestamps as the database stores them: ISO-8601 UTC text."""

from __future__ import annotations

import time
from datetime import datetime, timezone

_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
_YEAR_1000, _YEAR_10000 = -30610224000, 253402300800  # strftime pads years < 1000 badly


def now_iso(*, milliseconds: bool = False) -> str:
    """Now, e.g. ``2025-01-06T09:37:00Z`` (or ``…:00.123Z`` for events closer than a
    second, such as health checks and webhook attempts)."""
    now = datetime.now(timezone.utc)
    if milliseconds:
        return now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return now.strftime(_SECONDS)


def git_time_iso(timestamp: int) -> str:
    """A Git timestamp (seconds since the epoch) as ISO-8601 UTC text.

    Git accepts dates ``datetime`` cannot hold (before year 1, after 9999). Those are
    written in ISO 8601's expanded-year form, e.g. ``+3170843-11-07T09:46:39Z`` or
    ``-0001-12-31T23:59:59Z``; years 0-999 are zero-padded (``0999-…``). Still
    readable, exact to the second (the raw value can be computed back), never an error.
    """
    if _YEAR_1000 <= timestamp < _YEAR_10000:  # time's strftime: as datetime's, quicker
        return time.strftime(_SECONDS, time.gmtime(timestamp))
    return _expanded_iso(int(timestamp))


def _expanded_iso(timestamp: int) -> str:
    """Proleptic Gregorian UTC date of any integer timestamp (H. Hinnant's
    civil_from_days), with a signed year of at least four digits."""
    days, seconds = divmod(timestamp, 86400)
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    sign = "-" if year < 0 else "+" if year > 9999 else ""
    hours, rest = divmod(seconds, 3600)
    return (f"{sign}{abs(year):04d}-{month:02d}-{day:02d}T{hours:02d}:{rest // 60:02d}:"
            f"{rest % 60:02d}Z")
