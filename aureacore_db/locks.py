"""Locks: advisory file locks, and SQLite's write lock taken at once; one writer at a
time, across processes."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils


@contextmanager
def file_lock(path: Path, timeout: float | None = None,
              busy: Callable[[], Exception] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path``, waiting up to ``timeout`` seconds (0: don't
    wait; None: as long as it takes); then raise ``busy()``."""
    with open(path, "a+") as handle:
        if timeout is None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        deadline = time.monotonic() + (timeout or 0)
        while timeout is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise (busy() if busy else TimeoutError(f"{path} is locked")) from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[None]:
    """A write transaction of ``db`` taken at once
    (``BEGIN IMMEDIATE``): it waits on the busy timeout while another process writes,
    instead of failing later on a read-to-write upgrade. Rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
