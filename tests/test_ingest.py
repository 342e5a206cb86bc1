"""Ingest: commits, history rows, statuses, and the walk rules of DESIGN §3."""

from __future__ import annotations

import json

from conftest import rows, run_ingest


def test_first_ingest_records_commits_services_and_history(repo, db_path):
    repo.service("auth-service", parameters={"replicas": 3})
    repo.service("user-service", namespace="data")
    first = repo.commit("Add auth and user services")
    repo.service("auth-service", parameters={"replicas": 5})
    second = repo.commit("Scale auth")

    result = run_ingest(repo, db_path)

    assert result.commits_added == 2 and result.services == 2
    commits = rows(db_path, "select sha, seq, mainline, parents from commits order by seq")
    assert [(c["sha"], c["seq"], c["mainline"]) for c in commits] == [
        (first, 1, 1), (second, 2, 1)]
    assert json.loads(commits[1]["parents"]) == [first]
    history = rows(db_path, "select service_id, commit_sha, change from history "
                            "order by seq, service_id")
    assert history == [
        {"service_id": "data/user-service", "commit_sha": first, "change": "added"},
        {"service_id": "platform/auth-service", "commit_sha": first, "change": "added"},
        {"service_id": "platform/auth-service", "commit_sha": second, "change": "modified"},
    ]
    change = rows(db_path, "select key, old_value, new_value, change from parameter_changes "
                           "where commit_sha = ?", (second,))
    assert change == [{"key": "$.parameters.replicas", "old_value": "3", "new_value": "5",
                       "change": "changed"}]
    services = rows(db_path, "select id, status, removed, path from services order by id")
    assert services == [
        {"id": "data/user-service", "status": "CONFIGURED", "removed": 0,
         "path": "services/data/user-service.yaml"},
        {"id": "platform/auth-service", "status": "CONFIGURED", "removed": 0,
         "path": "services/platform/auth-service.yaml"},
    ]


def test_read_indexes_exist_after_the_first_bulk_load(repo, db_path):
    from aureacore_db.tables import INDEXES

    repo.service("auth-service")
    repo.commit("Add auth")
    run_ingest(repo, db_path)

    found = {r["name"] for r in rows(db_path, "select name from sqlite_master "
                                              "where type = 'index'")}
    for table, columns in INDEXES:
        assert f"idx_{table}_{'_'.join(columns)}" in found
    journal = rows(db_path, "pragma journal_mode")[0]["journal_mode"]
    assert journal == "wal"


def test_a_new_database_has_large_pages_and_an_old_one_keeps_its_own(repo, db_path, tmp_path):
    import sqlite3

    from aureacore_db.db import PAGE_SIZE

    repo.service("auth-service")
    repo.commit("Add auth")
    run_ingest(repo, db_path)
    assert rows(db_path, "pragma page_size")[0]["page_size"] == PAGE_SIZE == 16384

    old = tmp_path / "old.db"  # as an earlier release made it: SQLite's default pages
    conn = sqlite3.connect(old)
    conn.execute("pragma page_size = 4096")
    conn.execute("create table kept (x)")
    conn.execute("insert into kept values (1)")
    conn.commit()
    conn.close()
    run_ingest(repo, old)
    assert rows(old, "pragma page_size")[0]["page_size"] == 4096
    assert rows(old, "select x from kept") == [{"x": 1}]
    assert rows(old, "select count(*) as n from services")[0]["n"] == 1


def test_a_bad_source_or_branch_creates_nothing(repo, tmp_path):
    import pytest

    from aureacore_db.gitsource import SourceError

    repo.service("auth-service")
    repo.commit("Add auth")
    db_path = tmp_path / "out" / "registry.db"
    db_path.parent.mkdir()
    for source, branch in ((tmp_path / "missing", "main"), (repo.path, "nope"),
                           ("file:///nowhere/x.git", "main")):
        with pytest.raises(SourceError):
            run_ingest_from(source, db_path, branch)
    assert list(db_path.parent.iterdir()) == []


def run_ingest_from(source, db_path, branch):
    from aureacore_db.ingest import ingest

    return ingest(source, db_path, branch=branch)
