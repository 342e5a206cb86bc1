"""Every table, index and view of a registry database, and the migrations that bring a
database made by any earlier release to them.

The definitions (``TABLES``, ``INDEXES``, ``VIEWS``, ``FTS``) are the current schema
(docs/DESIGN.md §8). :func:`upgrade` applies the ordered steps of ``MIGRATIONS`` that a
database has not had yet, each in the same transaction as its record in the
``_sqlite_migrations`` table (sqlite-utils' ``Migrations``); ``db.connect`` calls it, so
opening a database upgrades it in place, and opening it again is a read and nothing more.

Steps:

1. ``tables`` — every missing table (current definition), the side tables' indexes, views;
2. ``webhook_secrets`` — secrets of webhooks made before ``webhook_secrets`` move there;
3. ``read_indexes`` — the read indexes and full-text search; on a new database ingest
   defers this step (and the ones after it) until its first bulk load is written;
4. ``git_hook_deliveries`` — the log of the Git push webhook route;
5. ``events_autoincrement`` — ``events`` of databases before 88e2623 rebuilt with
   AUTOINCREMENT, so an event id is never given twice;
6. ``views_cross_join`` — ``current_dependencies`` walks services in id order (a
   ``cross join`` fixes SQLite's join order: its first page 70 ms → 1 ms at 10k services);
7. ``environments`` — the environment tables (DESIGN §6), ``promotions``, an
   ``environment`` column on rollbacks, registrations and health checks; a one-branch
   database gets one environment named after its branch;
8. ``page_indexes`` — the index ``parameter_blame`` pages from, and ``current_errors``
   reading each current service's newest status by an index seek instead of grouping
   the whole status history (pages at 10,000 services under 100 ms);
9. ``views_unordered`` — ``current_dependencies`` without an ``ORDER BY`` (it kept
   SQLite from flattening the view into Datasette's count and facet queries, each of
   which then sorted every edge; its rows still come in service id and position order,
   the order of its plan).
10. ``current_errors_unordered`` — the same for ``current_errors`` (services still come
    in id order; within one service, ask for ``order by severity, json_path``), which
    also looks only at services whose counts say they have problems (a page, its count
    and its facets: 40 ms each at 10,000 services before, 2 ms after).

**Adding a schema change** (a column, a table, an index, a changed view): change the
definition here, *and* append a step at the end of ``MIGRATIONS``::

    @MIGRATIONS(name="services_environment")
    def _services_environment(db: sqlite_utils.Database) -> None:
        if "environment" not in db["services"].columns_dict:
            db["services"].add_column("environment", str)

A new database gets the current definitions from ``tables`` and then runs every later
step, so a step must do nothing where its change is already there (test the column,
``if_not_exists=True``, ``create_views(db)`` replaces all views). Never edit or reorder a
step that has shipped: databases record steps by name. A step that rebuilds a table
(``table.transform``) or moves data runs in the one transaction with its record: if it
fails, nothing of it is kept and it is tried again on the next open. Rows not derived from
Git (``NOT_DERIVED``) must come through every step.
"""

from __future__ import annotations

import sqlite3

import sqlite_utils
from sqlite_utils import Migrations

from .locks import write_transaction
from .urls import has_credentials, public_url

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
    # -- environments (DESIGN §6): named branches in promotion order (``position``)
    "environments": {
        "columns": {
            "name": str, "branch": str, "position": int, "tip": str, "tip_seq": int,
            "ingested_at": str,
        },
        "pk": "name",
        "foreign_keys": [("tip", "commits", "sha")],
    },
    # the mainline (first-parent chain of the tip) of each environment
    "environment_commits": {
        "columns": {"environment": str, "commit_sha": str, "seq": int},
        "pk": ("environment", "commit_sha"),
        "foreign_keys": [("environment", "environments", "name"),
                         ("commit_sha", "commits", "sha")],
    },
    # the services of each environment as of its tip (``services`` is the first one's)
    "environment_services": {
        "columns": {
            "environment": str, "service_id": str, "path": str, "config_id": str,
            "version": str, "status": str, "status_message": str, "removed": int,
            "error_count": int, "warning_count": int, "first_commit": str,
            "last_commit": str, "last_updated": str,
        },
        "pk": ("environment", "service_id"),
        "foreign_keys": [("environment", "environments", "name"),
                         ("service_id", "services", "id"), ("config_id", "configs", "id"),
                         ("first_commit", "commits", "sha"),
                         ("last_commit", "commits", "sha")],
    },
    # -- written by the registry, rollbacks, webhooks and health probes, never by ingest
    # (not derived from Git: no upgrade or re-ingest may lose them)
    "registrations": {
        "columns": {
            "id": int, "service_id": str, "path": str, "commit_sha": str, "parent_sha": str,
            "status": str, "message": str, "author": str, "registered_at": str,
            "checked_at": str, "environment": str,
        },
        "pk": "id",
    },
    "rollbacks": {
        "columns": {
            "id": int, "attempted_at": str, "actor_id": str, "actor": str, "via": str,
            "service_id": str, "target_commit": str, "from_config": str, "to_config": str,
            "path": str, "expected_head": str, "head_before": str, "new_commit": str,
            "pushed": int, "outcome": str, "message": str, "environment": str,
        },
        "pk": "id",
    },
    # a service's file copied from one environment's branch onto the next one's
    "promotions": {
        "columns": {
            "id": int, "attempted_at": str, "actor_id": str, "actor": str, "via": str,
            "service_id": str, "from_environment": str, "to_environment": str,
            "source_commit": str, "from_config": str, "to_config": str, "path": str,
            "expected_head": str, "head_before": str, "new_commit": str, "pushed": int,
            "outcome": str, "message": str,
        },
        "pk": "id",
    },
    "webhooks": {
        "columns": {
            "id": int, "name": str, "url": str, "kinds": str, "secret_env": str,
            "active": int, "source": str, "cursor": int, "created_at": str,
            "updated_at": str, "last_run_at": str, "last_error": str,
        },
        "pk": "id",
    },
    # The secret of a webhook, and its URL when that carries credentials (``webhooks.url``
    # then holds it without them). Never readable through Datasette: see
    # webhooks.deny_secret_reads.
    "webhook_secrets": {
        "columns": {"webhook_id": int, "secret": str, "url": str},
        "pk": "webhook_id",
    },
    "webhook_deliveries": {
        "columns": {
            "id": int, "webhook_id": int, "webhook": str, "event_id": int,
            "event_kind": str, "service_id": str, "commit_sha": str, "attempts": int,
            "status": str, "status_code": int, "error": str, "first_attempt_at": str,
            "last_attempt_at": str, "delivered_at": str, "duration_ms": float,
        },
        "pk": "id",
    },
    "health_checks": {
        "columns": {
            "id": int, "service_id": str, "url": str, "checked_at": str, "state": str,
            "status_code": int, "latency_ms": float, "error": str, "environment": str,
        },
        "pk": "id",
    },
    # every push webhook the server received (githooks.py), never its secret or signature
    "git_hook_deliveries": {
        "columns": {
            "id": int, "received_at": str, "forge": str, "event": str, "delivery_id": str,
            "ref": str, "outcome": str, "reason": str, "sync_result": str, "finished_at": str,
        },
        "pk": "id",
    },
}


# Tables whose rows do not come from Git (an upgrade must keep every row).
NOT_DERIVED = ("registrations", "rollbacks", "promotions", "webhooks", "webhook_secrets",
               "webhook_deliveries", "health_checks", "git_hook_deliveries", "events")

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
    ("environment_commits", ["environment", "seq"]),
    ("environment_commits", ["commit_sha"]),
    ("environment_services", ["service_id"]),
    ("environment_services", ["environment", "status"]),
    # facets of metadata.yml: counted from a small index instead of the wide rows
    ("configs", ["format"]),
    ("configs", ["schema_version"]),
    ("history", ["change"]),
    # parameter_blame picks a page of one key's changes from the index alone
    ("parameter_changes", ["key", "seq", "service_id"]),
]

# the read indexes added by the ``page_indexes`` step (issue 12: pages at 10k services)
PAGE_INDEXES = [("parameter_changes", ["key", "seq", "service_id"])]

# Full-text search (Datasette shows a search box): table -> columns, FTS5 with triggers.
FTS: dict[str, list[str]] = {"commits": ["message"], "configs": ["raw"]}

# Indexes of the tables not written by ingest: (table, columns, unique), built with them.
SIDE_INDEXES: list[tuple[str, list[str], bool]] = [
    ("registrations", ["status"], False),
    ("registrations", ["service_id", "id"], False),
    ("registrations", ["commit_sha"], False),
    ("rollbacks", ["service_id", "id"], False),
    ("promotions", ["service_id", "id"], False),
    ("webhooks", ["name"], True),
    ("webhook_deliveries", ["webhook_id", "event_id"], True),
    ("webhook_deliveries", ["status"], False),
    ("health_checks", ["service_id", "checked_at"], False),
    ("git_hook_deliveries", ["forge", "delivery_id"], False),
]

# the views read the first environment's checks (DESIGN §6), as ``services`` does
_FIRST_ENV = ("(environment is null or environment = "
              "(select name from environments order by position limit 1))")

_SUMMARY = """
    with checks as (
        select * from health_checks where {first} {where}
    ), answered as (
        select service_id, latency_ms,
               row_number() over (partition by service_id order by latency_ms) as rn,
               count(*) over (partition by service_id) as n
        from checks where status_code is not null and latency_ms is not null
    ), pct as (
        select service_id,
               min(case when rn * 100 >= n * 50 then latency_ms end) as p50_latency_ms,
               min(case when rn * 100 >= n * 95 then latency_ms end) as p95_latency_ms
        from answered group by service_id
    )
    select c.service_id,
           count(*) as checks,
           sum(c.state = 'passing') as passing,
           sum(c.state = 'warning') as warning,
           sum(c.state = 'critical') as critical,
           round(1.0 * sum(c.state != 'critical') / count(*), 4) as uptime,
           round(1.0 * sum(c.state = 'passing') / count(*), 4) as passing_share,
           p.p50_latency_ms, p.p95_latency_ms,
           min(c.checked_at) as first_checked, max(c.checked_at) as last_checked
    from checks c left join pct p on p.service_id = c.service_id
    group by c.service_id order by c.service_id
"""

HEALTH_VIEWS = {
    "current_health": f"""
        with ranked as (
            select h.*,
                   row_number() over (partition by service_id
                                      order by checked_at desc, id desc) as rn,
                   case when state is lag(state) over (partition by service_id
                                                       order by checked_at, id)
                        then 0 else 1 end as changed
            from health_checks h where {_FIRST_ENV}
        ), since as (
            select service_id, max(checked_at) as since from ranked where changed = 1
            group by service_id
        )
        select r.service_id, r.state, r.status_code, r.latency_ms, r.error, r.url,
               r.checked_at, s.since
        from ranked r
        join since s on s.service_id = r.service_id
        join services v on v.id = r.service_id and v.removed = 0
        where r.rn = 1
        order by r.service_id
    """,
    "health_summary": _SUMMARY.format(first=_FIRST_ENV, where=""),
    "health_summary_24h": _SUMMARY.format(
        first=_FIRST_ENV,
        where="and checked_at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-1 day')"),
}

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
        cross join dependencies d on d.config_id = s.config_id and d.service_id = s.id
        left join services t on t.id = d.depends_on
        where s.removed = 0  -- no order by: the plan walks services by id, edges by position
    """,
    "current_errors": """
        select v.service_id, v.severity, v.kind, v.json_path, v.message, v.schema,
               v.commit_sha, v.config_id
        from services s  -- per service: a cost that follows services, not history
        cross join validation_errors v
          on v.service_id = s.id
         and v.seq = (select st.seq from status st
                      where st.service_id = s.id and st.mainline = 1
                      order by st.seq desc limit 1)
        where s.removed = 0 and v.mainline = 1  -- no order by: services come by id
          -- only services whose tip verdict has problems (their counts are that verdict's)
          and coalesce(s.error_count, 1) + coalesce(s.warning_count, 1) > 0
    """,
    **HEALTH_VIEWS,
}

# Tables whose rows belong to one commit (removed when the commit is no longer reachable).
PER_COMMIT = ("history", "status", "validation_errors", "parameter_changes", "events")


# Needed while ingest writes (the others can be built after a first bulk load).
WRITE_INDEXES = [("history", ["service_id", "seq"]),
                 ("environment_commits", ["environment", "seq"])]


# Tables whose ids must never be reused (event consumers keep cursors on them).
AUTOINCREMENT = ("events",)
_SQL_TYPES = {int: "INTEGER", str: "TEXT", float: "REAL"}


# -- building blocks of the steps -----------------------------------------------------
def create_table(db: sqlite_utils.Database, name: str) -> None:
    """Create table ``name`` (current definition) and its side indexes, if missing.

    Foreign keys are declared on tables created here; a table made by an older version
    keeps its definition (no foreign keys: Datasette then just shows fewer links).
    """
    spec = TABLES[name]
    if name in AUTOINCREMENT:
        _create_autoincrement(db, name, spec["columns"], spec.get("foreign_keys", []))
    else:
        db[name].create(spec["columns"], pk=spec["pk"], if_not_exists=True,
                        foreign_keys=spec.get("foreign_keys"))
    for table, columns, unique in SIDE_INDEXES:
        if table == name:
            db[table].create_index(columns, unique=unique, if_not_exists=True)


def ensure_rollbacks_table(db: sqlite_utils.Database) -> None:
    """Create the ``rollbacks`` table (and its index) if missing: safe on a Datasette
    connection, which cannot read webhook secrets and so must not run :func:`upgrade`."""
    create_table(db, "rollbacks")


def create_views(db: sqlite_utils.Database, *, partial: bool = False) -> None:
    """(Re)create every view from ``VIEWS``. ``partial`` (a step before the last one
    changing views): skip a view whose tables or columns come in a later step, which
    then creates it."""
    for name, sql in VIEWS.items():
        try:
            db.create_view(name, sql.strip(), replace=True)
            db.execute(f"select 1 from [{name}] limit 0")  # SQLite checks names on use
        except sqlite3.OperationalError:
            if not partial:
                raise
            db.execute(f"drop view if exists [{name}]")


def create_indexes(db: sqlite_utils.Database, indexes: list | None = None) -> None:
    """Create the missing ones of ``indexes`` (default: all read indexes, and full-text
    search)."""
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


def _create_autoincrement(db: sqlite_utils.Database, name: str, columns: dict,
                          foreign_keys: list) -> None:
    """sqlite-utils cannot declare AUTOINCREMENT, so this one table is plain SQL."""
    rest = ", ".join(f"[{col}] {_SQL_TYPES[kind]}" + "".join(
        f" REFERENCES [{other}]([{other_col}])" for fk_col, other, other_col in foreign_keys
        if fk_col == col) for col, kind in columns.items() if col != "id")
    db.execute(f"CREATE TABLE IF NOT EXISTS [{name}] "
               f"([id] INTEGER PRIMARY KEY AUTOINCREMENT, {rest})")


# -- the migrations, in order (append only; see the module docstring) ------------------
MIGRATIONS = Migrations("aureacore-db")
DEFERRABLE = "read_indexes"  # the first step a first bulk load may put off


@MIGRATIONS(name="tables")
def _tables(db: sqlite_utils.Database) -> None:
    for name in _creation_order():
        create_table(db, name)
    create_indexes(db, WRITE_INDEXES)
    create_views(db, partial=True)


@MIGRATIONS(name="webhook_secrets")
def _webhook_secrets(db: sqlite_utils.Database) -> None:
    """Databases before ``webhook_secrets`` kept secrets in ``webhooks.secret`` and
    credentials in ``webhooks.url``: move both there, then drop the column."""
    if "secret" not in db["webhooks"].columns_dict:
        return
    db.execute("PRAGMA secure_delete = ON")  # the dropped values do not linger in pages
    for hook_id, secret, url in db.execute("select id, secret, url from webhooks").fetchall():
        target = url if url and has_credentials(url) else None
        if secret or target:
            db.execute("insert or replace into webhook_secrets (webhook_id, secret, url) "
                       "values (?, ?, ?)", [hook_id, secret, target])
        if target:
            db.execute("update webhooks set url = ? where id = ?", [public_url(url), hook_id])
    db.execute("alter table webhooks drop column secret")


@MIGRATIONS(name=DEFERRABLE)
def _read_indexes(db: sqlite_utils.Database) -> None:
    create_indexes(db)


@MIGRATIONS(name="git_hook_deliveries")
def _git_hook_deliveries(db: sqlite_utils.Database) -> None:
    create_table(db, "git_hook_deliveries")


@MIGRATIONS(name="events_autoincrement")
def _events_autoincrement(db: sqlite_utils.Database) -> None:
    """Databases before 88e2623 made ``events`` without AUTOINCREMENT: SQLite could then
    give the ids of events a rewrite removed to new events. Rebuild it with AUTOINCREMENT,
    keeping every row and id, and start the id sequence above every id any consumer may
    have seen (events, webhook cursors, deliveries). A webhook that was already sent an
    id that now names another event gets its cursor moved back before it, once, as each
    delivery run checked before."""
    found = db.execute("select sql from sqlite_master where type = 'table' "
                       "and name = 'events'").fetchone()
    if found is None or "AUTOINCREMENT" in found[0].upper():
        return
    _rewind_webhooks_past_reused_ids(db)
    indexes = [r[0] for r in db.execute("select sql from sqlite_master where type = "
                                        "'index' and tbl_name = 'events' and sql is not null")]
    # legacy: views that name events keep naming it (the new table), none is rewritten
    legacy = db.execute("PRAGMA legacy_alter_table").fetchone()[0]
    db.execute("PRAGMA legacy_alter_table = ON")
    try:
        db.execute("alter table [events] rename to [_events_before_autoincrement]")
    finally:
        db.execute(f"PRAGMA legacy_alter_table = {int(legacy)}")
    spec = TABLES["events"]
    _create_autoincrement(db, "events", spec["columns"], spec.get("foreign_keys", []))
    old = db["_events_before_autoincrement"].columns_dict
    columns = ", ".join(f"[{c}]" for c in spec["columns"] if c in old)
    db.execute(f"insert into [events] ({columns}) select {columns} "
               "from [_events_before_autoincrement] order by id")
    db.execute("drop table [_events_before_autoincrement]")
    for sql in indexes:
        db.execute(sql)
    db.execute("delete from sqlite_sequence where name = 'events'")
    db.execute("insert into sqlite_sequence (name, seq) values ('events', ?)",
               [_highest_event_id_seen(db)])


@MIGRATIONS(name="views_cross_join")
def _views_cross_join(db: sqlite_utils.Database) -> None:
    create_views(db, partial=True)


@MIGRATIONS(name="environments")
def _environments(db: sqlite_utils.Database) -> None:
    """DESIGN §6: the environment tables, ``promotions``, and an ``environment`` column on
    rollbacks, registrations and health checks. A database that follows one branch gets
    one environment named after it, its mainline and its current services (so it reads
    as before, and its next ingest takes the append path)."""
    for name in ("environments", "environment_commits", "environment_services",
                 "promotions"):
        create_table(db, name)
    for table in ("rollbacks", "registrations", "health_checks"):
        if "environment" not in db[table].columns_dict:
            db[table].add_column("environment", str)
    create_indexes(db, [(t, c) for t, c in INDEXES if t.startswith("environment_")])
    create_views(db)
    branch = db.execute("select value from aureacore_meta where key = 'branch'").fetchone()
    if branch is None or db.execute("select 1 from environments limit 1").fetchone():
        return
    tip = db.execute("select value from aureacore_meta where key = 'tip'").fetchone()
    tip_seq = db.execute("select seq from commits where sha = ?",
                         [tip[0] if tip else None]).fetchone()
    db.execute("insert into environments (name, branch, position, tip, tip_seq, ingested_at) "
               "values (?, ?, 0, ?, ?, (select max(finished_at) from ingest_runs "
               "where outcome = 'ok'))",
               [branch[0], branch[0], tip[0] if tip else None, tip_seq[0] if tip_seq else None])
    db.execute("insert into environment_commits (environment, commit_sha, seq) "
               "select ?, sha, seq from commits where mainline = 1", [branch[0]])
    db.execute(f"insert into environment_services (environment, {SERVICE_STATE}) "
               f"select ?, {SERVICE_STATE.replace('service_id', 'id')} from services",
               [branch[0]])
    for table in ("rollbacks", "registrations", "health_checks"):
        db.execute(f"update [{table}] set environment = ? where environment is null",
                   [branch[0]])


@MIGRATIONS(name="page_indexes")
def _page_indexes(db: sqlite_utils.Database) -> None:
    create_indexes(db, PAGE_INDEXES)
    create_views(db)


@MIGRATIONS(name="views_unordered")
def _views_unordered(db: sqlite_utils.Database) -> None:
    create_views(db)


@MIGRATIONS(name="current_errors_unordered")
def _current_errors_unordered(db: sqlite_utils.Database) -> None:
    create_views(db)


# columns of ``environment_services`` copied from ``services`` (the first environment)
SERVICE_STATE = ("service_id, path, config_id, version, status, status_message, removed, "
                 "error_count, warning_count, first_commit, last_commit, last_updated")


def _highest_event_id_seen(db: sqlite_utils.Database) -> int:
    """The largest of the event ids, webhook cursors and delivered event ids."""
    found = [db.execute("select coalesce(max(id), 0) from events").fetchone()[0]]
    for table, column in (("webhooks", "cursor"), ("webhook_deliveries", "event_id")):
        if column in db[table].columns_dict:
            found.append(db.execute(f"select coalesce(max([{column}]), 0) from [{table}]"
                                    ).fetchone()[0])
    return max(int(x or 0) for x in found)


def _rewind_webhooks_past_reused_ids(db: sqlite_utils.Database) -> None:
    """Move each webhook's cursor back before the first delivered event id that now names
    another event (another kind, commit or service than the delivery recorded)."""
    needed = {"event_kind", "commit_sha", "service_id", "event_id", "status", "webhook_id"}
    if not needed <= set(db["webhook_deliveries"].columns_dict) \
            or "cursor" not in db["webhooks"].columns_dict:
        return
    db.execute("""
        update webhooks set cursor = (
            select min(d.event_id) - 1 from webhook_deliveries d
            join events e on e.id = d.event_id
            where d.webhook_id = webhooks.id and d.status = 'delivered'
              and d.event_id <= webhooks.cursor
              and (e.kind is not d.event_kind or e.commit_sha is not d.commit_sha
                   or e.service_id is not d.service_id))
        where exists (
            select 1 from webhook_deliveries d join events e on e.id = d.event_id
            where d.webhook_id = webhooks.id and d.status = 'delivered'
              and d.event_id <= webhooks.cursor
              and (e.kind is not d.event_kind or e.commit_sha is not d.commit_sha
                   or e.service_id is not d.service_id))
    """)


def pending(db: sqlite_utils.Database) -> list[str]:
    """Names of the steps ``db`` has not had yet (a read only)."""
    return [step.name for step in MIGRATIONS.pending(db)]


def upgrade(db: sqlite_utils.Database, *, defer_read_indexes: bool = False) -> list[str]:
    """Apply the pending steps in order; return their names (``[]``: nothing to do).

    The whole run holds SQLite's write lock (``BEGIN IMMEDIATE``), so processes opening
    one database at once wait on its busy timeout and the later ones find nothing left to
    do. ``defer_read_indexes`` stops before :data:`DEFERRABLE` (a first bulk load builds
    the read indexes once at its end, quicker than row by row).
    """
    if not _todo(pending(db), defer_read_indexes):
        return []
    if db.conn.in_transaction:
        return _apply(db, defer_read_indexes)
    with write_transaction(db):
        return _apply(db, defer_read_indexes)


def _todo(names: list[str], defer_read_indexes: bool) -> list[str]:
    if defer_read_indexes and DEFERRABLE in names:
        return names[:names.index(DEFERRABLE)]
    return names


def _apply(db: sqlite_utils.Database, defer_read_indexes: bool) -> list[str]:
    names = pending(db)  # again, under the write lock
    todo = _todo(names, defer_read_indexes)
    stop = DEFERRABLE if len(todo) < len(names) else None
    MIGRATIONS.apply(db, stop_before=stop)
    return todo
