"""A database made by an earlier release is upgraded in place when opened, losing nothing."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
from pathlib import Path

import sqlite_utils
from conftest import GitRepo, rows, run_ingest

from aureacore_db import tables
from aureacore_db.db import connect
from aureacore_db.webhooks import list_webhooks

OLD_SCHEMA = Path(__file__).parent / "data" / "schema_3380f44.sql"
STEPS = [step.name for step in tables.MIGRATIONS._migrations]


def old_database(path: Path) -> None:
    """The schema of release 3380f44 with a row in every table a person's work fills."""
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA.read_text())
    conn.executescript("""
        insert into commits (sha, seq, mainline, message) values ('c1', 1, 1, 'first commit');
        insert into configs (id, service_id, path, raw) values ('b1', 'platform/a', 'a.yaml',
                                                               'name: a');
        insert into events (kind, service_id, commit_sha, seq, mainline, payload)
            values ('status_changed', 'platform/a', 'c1', 1, 1, '{}');
        insert into registrations (service_id, status, commit_sha)
            values ('platform/a', 'PENDING', 'c1');
        insert into rollbacks (service_id, outcome, actor_id) values ('platform/a', 'ok', 'ann');
        insert into webhooks (id, name, url, secret, active, cursor)
            values (7, 'ops', 'https://user:pw@hooks.example.com/x', 's3cret', 1, 1);
        insert into webhooks (id, name, url, secret, active, cursor)
            values (8, 'plain', 'https://hooks.example.com/y', null, 1, 0);
        insert into webhook_deliveries (webhook_id, event_id, status, attempts)
            values (7, 1, 'delivered', 1);
        insert into health_checks (service_id, url, checked_at, state)
            values ('platform/a', 'https://a.example.com', '2025-01-01T00:00:00Z', 'passing');
        insert into aureacore_meta (key, value) values ('complete_tip', 'c1');
    """)
    conn.commit()
    conn.close()


def test_an_old_database_is_upgraded_in_place_with_nothing_lost(tmp_path):
    path = tmp_path / "old.db"
    old_database(path)

    db = connect(path)
    assert [r["name"] for r in rows(path, "select name from _sqlite_migrations "
                                          "order by id")] == STEPS
    # every row is still there
    for table in ("events", "registrations", "rollbacks", "webhook_deliveries",
                  "health_checks", "commits", "configs"):
        assert db[table].count == 1, table
    assert db.execute("select id, kind from events").fetchall() == [(1, "status_changed")]
    assert db.execute("select value from aureacore_meta").fetchall() == [("c1",)]
    # the secret and the URL's credentials moved to webhook_secrets; the column is gone
    assert "secret" not in db["webhooks"].columns_dict
    assert db.execute("select webhook_id, secret, url from webhook_secrets").fetchall() == [
        (7, "s3cret", "https://user:pw@hooks.example.com/x")]
    [ops, plain] = list_webhooks(db)
    assert (ops.name, ops.url, ops.resolved_secret(), ops.cursor) == (
        "ops", "https://***@hooks.example.com/x", "s3cret", 1)
    assert plain.resolved_secret() is None
    # what later releases added: full-text search, read indexes, foreign-key-free tables
    assert db["commits"].detect_fts() == "commits_fts"
    assert rows(path, "select rowid from commits_fts where commits_fts match 'first'")
    indexes = {i.name for t in ("history", "configs") for i in db[t].indexes}
    assert {"idx_history_seq", "idx_configs_format"} <= indexes
    db.close()


def test_opening_an_upgraded_database_again_changes_nothing(tmp_path):
    path = tmp_path / "old.db"
    old_database(path)
    connect(path).close()
    schema = rows(path, "select type, name, sql from sqlite_master order by name")
    applied = rows(path, "select * from _sqlite_migrations order by id")

    db = connect(path)
    assert tables.upgrade(db) == []
    assert tables.pending(db) == []
    db.close()
    assert rows(path, "select type, name, sql from sqlite_master order by name") == schema
    assert rows(path, "select * from _sqlite_migrations order by id") == applied


def test_a_new_database_runs_every_step_once_and_ingest_builds_the_read_indexes(
        repo, db_path):
    repo.service("auth")
    repo.commit("one service")
    run_ingest(repo, db_path)
    assert [r["name"] for r in rows(db_path, "select name from _sqlite_migrations "
                                             "order by id")] == STEPS
    found = {r["name"] for r in rows(db_path, "select name from sqlite_master")}
    assert {"commits_fts", "idx_history_seq", "webhook_secrets", "health_summary"} <= found


def test_a_failing_step_keeps_nothing_of_itself_and_is_tried_again(tmp_path):
    path = tmp_path / "old.db"
    old_database(path)
    # the secret move fails half-way (a trigger refuses to change a webhook's URL)
    conn = sqlite3.connect(path)
    conn.execute("create trigger refuse before update on webhooks "
                 "begin select raise(abort, 'refused'); end")
    conn.commit()
    conn.close()
    db = sqlite_utils.Database(sqlite3.connect(path))
    try:
        tables.upgrade(db)
    except sqlite3.IntegrityError as exc:
        assert "refused" in str(exc)
    else:
        raise AssertionError("the step should have failed")
    # nothing of the upgrade was kept: no step recorded, no secret moved
    assert "secret" in db["webhooks"].columns_dict
    assert not db["webhook_secrets"].exists()
    assert tables.pending(db) == STEPS
    db.execute("drop trigger refuse")
    db.conn.commit()
    assert tables.upgrade(db) == STEPS
    assert db.execute("select secret from webhook_secrets").fetchall() == [("s3cret",)]


def test_processes_opening_a_database_at_once_apply_each_step_once(tmp_path):
    path = tmp_path / "old.db"
    old_database(path)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            connect(path).close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [r["name"] for r in rows(path, "select name from _sqlite_migrations "
                                          "order by id")] == STEPS


def events_without_autoincrement(path: Path) -> None:
    """A 3380f44 database whose ``events`` table is as releases before 88e2623 made it
    (no AUTOINCREMENT): ids 1-4 kept, id 5 deleted by a rewrite after webhook 7 had it,
    and id 3 given again to another event after webhook 7 had been sent the first one."""
    schema = OLD_SCHEMA.read_text().replace(
        "CREATE TABLE [events] ([id] INTEGER PRIMARY KEY AUTOINCREMENT,",
        "CREATE TABLE [events] ([id] INTEGER PRIMARY KEY,")
    assert "AUTOINCREMENT" not in schema.split("CREATE TABLE [events]")[1].split(";")[0]
    conn = sqlite3.connect(path)
    conn.executescript(schema)
    conn.executescript("""
        insert into commits (sha, seq, mainline, message) values ('c1', 1, 1, 'first');
        insert into events (id, kind, service_id, commit_sha, seq, mainline, payload) values
            (1, 'service_added', 'platform/a', 'c1', 1, 1, '{"n": 1}'),
            (2, 'service_added', 'platform/b', 'c1', 1, 1, '{"n": 2}'),
            (3, 'service_added', 'platform/c', 'c2', 2, 1, '{"n": 3}'),
            (4, 'status_changed', 'platform/c', 'c2', 2, 1, '{"n": 4}');
        insert into webhooks (id, name, url, active, cursor)
            values (7, 'ops', 'https://hooks.example.com/x', 1, 5);
        insert into webhooks (id, name, url, active, cursor)
            values (8, 'late', 'https://hooks.example.com/y', 1, 2);
        insert into webhook_deliveries (webhook_id, event_id, event_kind, service_id,
                                        commit_sha, status, attempts) values
            (7, 1, 'service_added', 'platform/a', 'c1', 'delivered', 1),
            (7, 3, 'service_added', 'platform/old', 'gone', 'delivered', 1),
            (7, 5, 'service_removed', 'platform/old', 'gone', 'delivered', 1);
        create view my_events as select id, kind from events where kind = 'service_added';
    """)
    conn.commit()
    conn.close()


def test_events_without_autoincrement_are_rebuilt_keeping_every_id(tmp_path):
    path = tmp_path / "old.db"
    events_without_autoincrement(path)
    before = rows(path, "select * from events order by id")

    db = connect(path)
    sql = db.execute("select sql from sqlite_master where name = 'events'").fetchone()[0]
    assert "AUTOINCREMENT" in sql.upper()
    assert rows(path, "select * from events order by id") == before  # every row and id
    assert {i.name for i in db["events"].indexes} >= {"idx_events_kind_id",
                                                      "idx_events_commit_sha"}
    assert rows(path, "select * from my_events") == [  # a view naming events still works
        {"id": 1, "kind": "service_added"}, {"id": 2, "kind": "service_added"},
        {"id": 3, "kind": "service_added"}]
    # event 5 (deleted, but delivered) is never given again; nor is the deleted top id 4
    db.execute("delete from events where id = 4")
    db.execute("insert into events (kind, service_id, commit_sha) values "
               "('service_added', 'platform/d', 'c3')")
    assert db.execute("select max(id) from events").fetchone()[0] == 6
    # webhook 7 was sent id 3 when it named another event: it gets it again; 8 is as it was
    assert {h.name: h.cursor for h in list_webhooks(db)} == {"ops": 2, "late": 2}
    db.close()
    connect(path).close()  # a second open changes nothing
    assert rows(path, "select seq from sqlite_sequence where name = 'events'") == [{"seq": 6}]


# -- a database written by release 5c74c76, the last before environments ----------------
# tests/data/make_db_5c74c76.py made the dump and the bundle with that release's CLI.
DUMP_5C74C76 = Path(__file__).parent / "data" / "db_5c74c76.sql"
BUNDLE_5C74C76 = Path(__file__).parent / "data" / "repo_5c74c76.bundle"
KEPT = ("rollbacks", "registrations", "webhooks", "webhook_secrets", "webhook_deliveries",
        "health_checks", "events")


def database_of_5c74c76(tmp_path: Path) -> tuple[Path, GitRepo]:
    """The database of release 5c74c76 and the config repository it follows (a clone)."""
    path = tmp_path / "registry.db"
    conn = sqlite3.connect(path)
    conn.executescript(DUMP_5C74C76.read_text())
    conn.close()
    folder = tmp_path / "configs"
    subprocess.run(["git", "clone", "-q", "-b", "main", str(BUNDLE_5C74C76), str(folder)],
                   check=True, capture_output=True)
    repo = GitRepo(folder)  # an existing repository: sets the committer identity only
    repo.git("remote", "remove", "origin")
    return path, repo


def test_a_5c74c76_database_becomes_one_environment_keeping_what_people_did(tmp_path):
    path, repo = database_of_5c74c76(tmp_path)
    before = {t: rows(path, f"select * from [{t}] order by 1") for t in KEPT}
    services = rows(path, "select * from services order by id")
    mainline = rows(path, "select sha, seq from commits where mainline = 1 order by seq")
    assert len(mainline) == rows(path, "select count(*) n from commits")[0]["n"] - 1
    assert all(before[t] for t in KEPT), "the dump has a row of each kind"

    connect(path).close()

    assert rows(path, "select name, branch, position, tip, tip_seq from environments") == [{
        "name": "main", "branch": "main", "position": 0, "tip": repo.head(),
        "tip_seq": mainline[-1]["seq"]}]
    assert rows(path, "select commit_sha sha, seq from environment_commits "
                      "where environment = 'main' order by seq") == mainline
    assert rows(path, f"select {tables.SERVICE_STATE} from environment_services "
                      "where environment = 'main' order by service_id") == [
        {k if k != "id" else "service_id": v for k, v in s.items()
         if k == "id" or k in tables.SERVICE_STATE.split(", ")} for s in services]
    for table in KEPT:
        after = rows(path, f"select * from [{table}] order by 1")
        if table in ("rollbacks", "registrations", "health_checks"):
            assert {r.pop("environment") for r in after} == {"main"}, table
        assert after == before[table], table
    db = connect(path)
    [hook] = list_webhooks(db)
    assert (hook.name, hook.resolved_secret()) == ("ops", "s3cret")
    db.close()


def test_a_5c74c76_database_appends_the_next_commit_then_takes_a_second_environment(
        tmp_path):
    path, repo = database_of_5c74c76(tmp_path)
    events = rows(path, "select id, kind, service_id from events order by id")
    repo.service("users", version="2.0.0")
    new = repo.commit("users 2.0.0")

    result = run_ingest(repo, path)  # upgrades, then walks only the new commit

    assert (result.commits_added, result.commits_removed, result.rewrite_detected) == (
        1, 0, False)
    assert rows(path, "select id, kind, service_id from events order by id")[:len(events)] \
        == events
    assert rows(path, "select name, tip from environments") == [{"name": "main", "tip": new}]
    assert rows(path, "select environment from environment_commits where commit_sha = ?",
                (new,)) == [{"environment": "main"}]
    assert rows(path, "select version from environment_services "
                      "where service_id = 'platform/users'") == [{"version": "2.0.0"}]
    kept = {t: rows(path, f"select * from [{t}] order by 1") for t in KEPT}

    repo.git("checkout", "-q", "-b", "dev")
    repo.service("users", version="2.1.0")
    dev = repo.commit("users 2.1.0 on dev")
    repo.git("checkout", "-q", "main")
    result = run_ingest(repo, path, environments=[("main", "main"), ("dev", "dev")])

    assert result.commits_added == 1
    assert rows(path, "select name, branch, position, tip from environments "
                      "order by position") == [
        {"name": "main", "branch": "main", "position": 0, "tip": new},
        {"name": "dev", "branch": "dev", "position": 1, "tip": dev}]
    main_line = [r["commit_sha"] for r in rows(
        path, "select commit_sha from environment_commits where environment = 'main' "
              "order by seq")]
    assert [r["commit_sha"] for r in rows(
        path, "select commit_sha from environment_commits where environment = 'dev' "
              "order by seq")] == [*main_line, dev]
    assert rows(path, "select environment, version from environment_services where "
                      "service_id = 'platform/users' order by environment") == [
        {"environment": "dev", "version": "2.1.0"}, {"environment": "main", "version": "2.0.0"}]
    assert rows(path, "select version from services where id = 'platform/users'") == [
        {"version": "2.0.0"}]  # services stays the first environment's
    for table in ("rollbacks", "registrations", "webhooks", "webhook_secrets",
                  "webhook_deliveries", "health_checks"):
        assert rows(path, f"select * from [{table}] order by 1") == kept[table], table
    assert rows(path, "select * from events order by id")[:len(kept["events"])] == \
        kept["events"]
