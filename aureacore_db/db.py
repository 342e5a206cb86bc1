"""The database: tables, indexes and views of the contract (DESIGN §4)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import sqlite_utils

TABLES: dict[str, dict] = {
    "commits": {
        "columns": {
            "sha": str, "seq": int, "mainline": int, "parents": str,
            "author_name": str, "author_email": str, "authored_at": str,
            "committer_name": str, "committer_email": str, "committed_at": str,
            "message": str, "services_changed": int,
        },
        "pk": "sha",
    },
    "services": {
        "columns": {
            "id": str, "namespace": str, "name": str, "path": str, "config_id": str,
            "version": str, "status": str, "status_message": str, "removed": int,
            "owner": str, "description": str, "error_count": int, "warning_count": int,
            "first_commit": str, "last_commit": str, "last_updated": str,
        },
        "pk": "id",
        "foreign_keys": [("config_id", "configs", "id"), ("first_commit", "commits", "sha"),
                         ("last_commit", "commits", "sha")],
    },
    "configs": {
        "columns": {
            "id": str, "service_id": str, "path": str, "format": str, "size": int,
            "raw": str, "content": str, "version": str, "schema_version": str,
            "parameters": str, "dependencies": str, "parse_error": str,
            "parse_line": int, "parse_column": int, "problems": str,
        },
        "pk": "id",
    },
    "history": {
        "columns": {
            "id": int, "service_id": str, "commit_sha": str, "seq": int, "mainline": int,
            "change": str, "path": str, "old_path": str, "config_id": str,
            "previous_config_id": str, "status": str, "committed_at": str,
            "author_name": str, "author_email": str,
        },
        "pk": "id",
        "foreign_keys": [("service_id", "services", "id"), ("commit_sha", "commits", "sha"),
                         ("config_id", "configs", "id"),
                         ("previous_config_id", "configs", "id")],
    },
    "status": {
        "columns": {
            "id": int, "service_id": str, "commit_sha": str, "seq": int, "mainline": int,
            "status": str, "previous_status": str, "message": str, "checked_at": str,
        },
        "pk": "id",
        "foreign_keys": [("service_id", "services", "id"), ("commit_sha", "commits", "sha")],
    },
    "validation_errors": {
        "columns": {
            "id": int, "status_id": int, "service_id": str, "commit_sha": str, "seq": int,
            "mainline": int, "config_id": str, "severity": str, "kind": str,
            "json_path": str, "message": str, "schema": str,
        },
        "pk": "id",
        "foreign_keys": [("status_id", "status", "id"), ("service_id", "services", "id"),
                         ("commit_sha", "commits", "sha"), ("config_id", "configs", "id")],
    },
    "parameter_changes": {
        "columns": {
            "id": int, "history_id": int, "service_id": str, "commit_sha": str, "seq": int,
            "mainline": int, "key": str, "old_value": str, "new_value": str, "change": str,
            "committed_at": str, "author_name": str,
        },
        "pk": "id",
        "foreign_keys": [("history_id", "history", "id"), ("service_id", "services", "id"),
                         ("commit_sha", "commits", "sha")],
    },
    "dependencies": {
        "columns": {
            "config_id": str, "service_id": str, "position": int, "depends_on": str,
            "version_constraint": str, "required": int,
        },
        # one config may serve two services (same bytes in two namespaces), and a
        # dependency without a namespace resolves against each service's own
        "pk": ("config_id", "service_id", "position"),
        "foreign_keys": [("config_id", "configs", "id"), ("service_id", "services", "id")],
    },
    "ingest_runs": {
        "columns": {
            "id": int, "started_at": str, "finished_at": str, "source": str, "branch": str,
            "tip": str, "commits_added": int, "commits_removed": int,
            "rewrite_detected": int, "outcome": str, "message": str, "duration_s": float,
        },
        "pk": "id",
    },
    "events": {
        "columns": {
            "id": int, "kind": str, "service_id": str, "commit_sha": str, "seq": int,
            "mainline": int, "occurred_at": str, "payload": str,
        },
        "pk": "id",
        "foreign_keys": [("commit_sha", "commits", "sha")],
    },
    "aureacore_meta": {"columns": {"key": str, "value": str}, "pk": "key"},
}

INDEXES: list[tuple[str, list[str]]] = [
    ("commits", ["seq"]),
    ("commits", ["mainline", "seq"]),
    ("services", ["status"]),
    ("services", ["namespace"]),
    ("services", ["config_id"]),
    ("configs", ["service_id"]),
    ("history", ["service_id", "seq"]),
    ("history", ["commit_sha"]),
    ("history", ["mainline", "seq"]),
    ("history", ["seq"]),  # sort_desc: seq (paging a table or a CSV export)
    ("history", ["config_id"]),  # "links from other tables" on a config's row page
    ("status", ["service_id", "seq"]),
    ("status", ["commit_sha"]),
    ("status", ["seq"]),
    ("validation_errors", ["service_id", "seq"]),
    ("validation_errors", ["commit_sha"]),
    ("validation_errors", ["status_id"]),
    ("validation_errors", ["seq"]),
    ("parameter_changes", ["service_id", "key"]),
    ("parameter_changes", ["key"]),
    ("parameter_changes", ["commit_sha"]),
    ("parameter_changes", ["history_id"]),
    ("parameter_changes", ["seq"]),
    ("dependencies", ["depends_on"]),
    ("events", ["kind", "id"]),
    ("events", ["service_id", "id"]),
    ("events", ["commit_sha"]),
    ("dependencies", ["service_id"]),
    # facets of metadata.yml: counted from a small index instead of the wide rows
    ("configs", ["format"]),
    ("configs", ["schema_version"]),
    ("history", ["change"]),
]

# Full-text search (Datasette shows a search box): table -> columns, FTS5 with triggers.
FTS: dict[str, list[str]] = {"commits": ["message"], "configs": ["raw"]}

VIEWS = {
    "current_services": """
        select * from services where removed = 0 order by id
    """,
    "services_in_error": """
        select id, namespace, name, path, version, status_message, last_commit, last_updated
        from services where removed = 0 and status = 'ERROR' order by id
    """,
    "current_dependencies": """
        select s.id as service_id, d.depends_on, d.version_constraint, d.required,
               t.version as depends_on_version, t.status as depends_on_status,
               case when t.id is null or t.removed = 1 then 0 else 1 end as depends_on_exists
        from services s
        join dependencies d on d.config_id = s.config_id and d.service_id = s.id
        left join services t on t.id = d.depends_on
        where s.removed = 0
        order by s.id, d.position
    """,
    "current_errors": """
        select v.service_id, v.severity, v.kind, v.json_path, v.message, v.schema,
               v.commit_sha, v.config_id
        from validation_errors v
        join (select service_id, max(seq) as seq from status where mainline = 1
              group by service_id) latest
          on latest.service_id = v.service_id and latest.seq = v.seq
        join services s on s.id = v.service_id and s.removed = 0
        where v.mainline = 1
        order by v.service_id, v.severity, v.json_path
    """,
}

# Tables whose rows belong to one commit (removed when the commit is no longer reachable).
PER_COMMIT = ("history", "status", "validation_errors", "parameter_changes", "events")


# Needed while ingest writes (the others can be built after a first bulk load).
WRITE_INDEXES = [("history", ["service_id", "seq"])]


def connect(path: str | Path, *, defer_indexes: bool = False) -> sqlite_utils.Database:
    """Open (creating if needed) a registry database in WAL mode with the contract's tables.

    ``defer_indexes`` leaves out the read indexes of an empty database: building them
    once after the first bulk load is quicker than keeping them up to date row by row.
    """
    conn = sqlite3.connect(str(path), timeout=60)
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA foreign_keys = OFF")  # declared for Datasette's links, not enforced
    db.execute("PRAGMA recursive_triggers = ON")  # "insert or replace" keeps FTS in step
    empty = "commits" not in db.table_names() or not db.execute(
        "select 1 from commits limit 1").fetchone()
    ensure_schema(db, indexes=WRITE_INDEXES if defer_indexes and empty else INDEXES)
    return db


def ensure_schema(db: sqlite_utils.Database, indexes: list | None = None) -> None:
    """Create missing tables, indexes and views; leave existing data alone.

    Foreign keys are declared on tables created here; a table made by an older version
    keeps its definition (no foreign keys: Datasette then just shows fewer links).
    Full-text search is added with the read indexes (``indexes`` = all of them).
    """
    with db.atomic():
        for name in _creation_order():
            spec = TABLES[name]
            if name in AUTOINCREMENT:
                _create_autoincrement(db, name, spec["columns"], spec.get("foreign_keys", []))
            else:
                db[name].create(spec["columns"], pk=spec["pk"], if_not_exists=True,
                                foreign_keys=spec.get("foreign_keys"))
        create_indexes(db, INDEXES if indexes is None else indexes)
        for name, sql in VIEWS.items():
            db.create_view(name, sql.strip(), replace=True)


def create_indexes(db: sqlite_utils.Database, indexes: list | None = None) -> None:
    """Create the missing ones of ``indexes`` (default: all of them)."""
    for table, columns in INDEXES if indexes is None else indexes:
        db[table].create_index(columns, if_not_exists=True)
    if indexes is None or indexes is INDEXES:
        ensure_fts(db)


def ensure_fts(db: sqlite_utils.Database) -> None:
    """Full-text indexes on commit messages and raw configs, kept up to date by triggers
    (built from the existing rows when missing)."""
    for table, columns in FTS.items():
        if db[table].detect_fts() is None:
            db[table].enable_fts(columns, create_triggers=True)


def _creation_order() -> list[str]:
    """Table names, each after the tables its foreign keys point to."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name not in order:
            for _, other, _ in TABLES[name].get("foreign_keys", []):
                if other != name:
                    visit(other)
            order.append(name)

    for name in TABLES:
        visit(name)
    return order


# Tables whose ids must never be reused (event consumers keep cursors on them).
AUTOINCREMENT = ("events",)
_SQL_TYPES = {int: "INTEGER", str: "TEXT", float: "REAL"}


def _create_autoincrement(db: sqlite_utils.Database, name: str, columns: dict,
                          foreign_keys: list) -> None:
    """sqlite-utils cannot declare AUTOINCREMENT, so this one table is plain SQL."""
    rest = ", ".join(f"[{col}] {_SQL_TYPES[kind]}" + "".join(
        f" REFERENCES [{other}]([{other_col}])" for fk_col, other, other_col in foreign_keys
        if fk_col == col) for col, kind in columns.items() if col != "id")
    db.execute(f"CREATE TABLE IF NOT EXISTS [{name}] "
               f"([id] INTEGER PRIMARY KEY AUTOINCREMENT, {rest})")


def get_meta(db: sqlite_utils.Database, key: str) -> str | None:
    row = db.execute("select value from aureacore_meta where key = ?", [key]).fetchone()
    return row[0] if row else None


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
