"""``aureacore-db sync --watch INTERVAL``: poll the remote, sync on change, keep going.

For teams whose config repository cannot reach the server with a webhook. Each round
runs the sync (a fetch that finds nothing is cheap); a failing round (remote down,
database busy) is logged and retried with a growing delay, and the first good round after
failures says so. SIGTERM or Ctrl-C stop it between rounds (a running sync finishes).
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Callable
from typing import Any

MAX_BACKOFF = 300.0  # seconds: a remote down for long is retried every 5 minutes
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*")
_UNIT = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_interval(text: str) -> float:
    """Seconds in ``30``, ``30s``, ``500ms``, ``5m`` or ``1h`` (at least 0.1 s)."""
    found = _DURATION.fullmatch(text or "")
    if not found:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 1h")
    seconds = float(found.group(1)) * _UNIT[found.group(2)]
    if seconds < 0.1:
        raise ValueError(f"{text!r} is shorter than 0.1 s")
    return seconds


def watch(sync: Callable[[], Any], interval: float, *, echo: Callable[[str], Any],
          stop: threading.Event, describe: Callable[[Any], str | None],
          max_backoff: float = MAX_BACKOFF) -> int:
    """Run ``sync`` every ``interval`` seconds until ``stop`` is set; returns the number
    of rounds. ``describe(result)`` is what to print for a round (None: nothing)."""
    failures = rounds = 0
    while not stop.is_set():
        rounds += 1
        try:
            result = sync()
        except Exception as exc:  # noqa: BLE001 - logged, retried with backoff
            failures += 1
            delay = min(interval * 2 ** min(failures, 16), max(max_backoff, interval))
            echo(f"sync failed ({type(exc).__name__}: {exc}); attempt {failures}, "
                 f"retrying in {delay:g}s")
            stop.wait(delay)
            continue
        if failures:
            echo(f"sync recovered after {failures} failed attempt(s)")
            failures = 0
        line = describe(result)
        if line:
            echo(line)
        stop.wait(interval)
    return rounds


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT (a second SIGINT interrupts at once)."""
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop
