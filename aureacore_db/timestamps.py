"""Timestamps as the database stores them: ISO-8601 UTC text."""

from __future__ import annotations

from datetime import datetime, timezone

_SECONDS = "%Y-%m-%dT%H:%M:%SZ"


def now_iso(*, milliseconds: bool = False) -> str:
    """Now, e.g. ``2025-01-06T09:37:00Z`` (or ``…:00.123Z`` for events closer than a
    second, such as health checks and webhook attempts)."""
    now = datetime.now(timezone.utc)
    if milliseconds:
        return now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return now.strftime(_SECONDS)


def git_time_iso(timestamp: int) -> str:
    """A Git timestamp (seconds since the epoch) as ISO-8601 UTC text."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime(_SECONDS)
