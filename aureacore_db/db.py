"""Opening a registry database (its tables, indexes, views and migrations: ``tables``)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import sqlite_utils

from .tables import upgrade

# Pages of a new database. A config row (raw text, JSON content, parameters) is ~4 KB,
# so with SQLite's default 4 KB pages most spill onto overflow pages: 16 KB pages made
# the 1k x 10k ingest's database 12% smaller and cut its write system time by 40%
# (0.5 s of CPU). An existing database keeps its page size (changing it needs a VACUUM).
PAGE_SIZE = 16384


def connect(path: str | Path, *, defer_indexes: bool = False) -> sqlite_utils.Database:
    """Open (creating if needed) a registry database in WAL mode, upgraded in place to the
    current schema (:func:`~aureacore_db.tables.upgrade`).

    ``defer_indexes`` leaves out the read indexes of an empty database: building them
    once after the first bulk load is quicker than keeping them up to date row by row.
    """
    new_file = not os.path.exists(path) or os.path.getsize(path) == 0
    conn = sqlite3.connect(str(path), timeout=60)
    db = sqlite_utils.Database(conn)
    if new_file:  # (on an existing file the pragma reads the header, and may find it locked)
        db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA foreign_keys = OFF")  # declared for Datasette's links, not enforced
    db.execute("PRAGMA recursive_triggers = ON")  # "insert or replace" keeps FTS in step
    empty = "commits" not in db.table_names() or not db.execute(
        "select 1 from commits limit 1").fetchone()
    upgrade(db, defer_read_indexes=defer_indexes and empty)
    return db


def get_meta(db: sqlite_utils.Database, key: str) -> str | None:
    row = db.execute("select value from aureacore_meta where key = ?", [key]).fetchone()
    return row[0] if row else None


def delete_meta(db: sqlite_utils.Database, *keys: str) -> None:
    db.execute(f"delete from aureacore_meta where key in ({', '.join('?' * len(keys))})",
               list(keys))


def set_meta(db: sqlite_utils.Database, key: str, value: str) -> None:
    db.execute(
        "insert into aureacore_meta (key, value) values (?, ?) "
        "on conflict(key) do update set value = excluded.value",
        [key, value],
    )


def open_read_only(path: Path) -> sqlite3.Connection:
    """A connection to an existing database that this code only reads from.

    Opened read-write when the file allows it (never created: ``mode=rw``), so that a WAL
    database gets no -wal/-shm files left behind by a read-only reader; an unwritable
    database is opened read-only, and read as immutable if even that needs a write.
    """
    uri = path.resolve().as_uri()
    for mode in ("mode=rw", "mode=ro"):
        try:
            conn = sqlite3.connect(f"{uri}?{mode}", uri=True)
        except sqlite3.OperationalError:
            continue
        try:
            conn.execute("select count(*) from sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:
            conn.close()
    if os.access(path, os.W_OK) and os.access(path.parent, os.W_OK):
        raise sqlite3.OperationalError(f"unable to open {path}")
    return sqlite3.connect(f"{uri}?immutable=1", uri=True)
