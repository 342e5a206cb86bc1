"""Answers kept until the next ingest: what a page derives from the whole history (the
dependency graph, the status chart) is worked out once per ingest, not per request."""

from __future__ import annotations

import copy
import functools
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aureacore_db.envstate import fingerprint

__all__ = ["fingerprint", "per_ingest"]

MAX_ENTRIES = 8  # per cached function


def per_ingest(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn(conn, *args, **kwargs)`` answered from a cache keyed on the arguments and
    :func:`fingerprint`; each caller gets its own copy of the answer."""
    cache: OrderedDict[tuple, Any] = OrderedDict()
    lock = threading.Lock()

    @functools.wraps(fn)
    def cached(conn: sqlite3.Connection, *args: Any, **kwargs: Any) -> Any:
        key = (fingerprint(conn), repr(args), repr(sorted(kwargs.items())))
        with lock:
            if key in cache:
                cache.move_to_end(key)
                return copy.deepcopy(cache[key])
        found = fn(conn, *args, **kwargs)
        with lock:
            cache[key] = found
            while len(cache) > MAX_ENTRIES:
                cache.popitem(last=False)
        return copy.deepcopy(found)

    cached.cache = cache  # type: ignore[attr-defined]
    return cached
