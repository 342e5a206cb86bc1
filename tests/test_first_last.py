"""Services' first and last commits, kept from the batch's rows and the stored values:
always what reading every history row gives (the old way, one statement)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from conftest import rows
from test_environments import ENVS, assert_each_environment_is_its_branch, envrepo
from test_walk import assert_same_db, build_rich_history

from aureacore_db.ingest import Ingest, _Recorded, ingest

__all__ = ["envrepo"]  # a fixture

FROM_HISTORY = Ingest.FIRST_LAST  # every history row read again, in one statement
COLUMNS = "select id, first_commit, last_commit, last_updated from services order by id"


def first_last(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(COLUMNS).fetchall()


def first_last_from_history(db: Path, tmp_path: Path) -> list[tuple]:
    copy = sqlite3.connect(":memory:")
    with sqlite3.connect(db) as source:
        source.backup(copy)  # with what is still in the write-ahead log
    copy.execute(FROM_HISTORY)
    return copy.execute(COLUMNS).fetchall()


def test_first_and_last_commits_match_every_history_row(repo, tmp_path):
    """One commit per batch: each batch after the first takes the stored values;
    incremental runs include a merge whose side-branch commits come first."""
    incremental = tmp_path / "incremental.db"

    def after_commit() -> None:
        Ingest(str(repo.path), incremental, batch_commits=1).run()
        assert first_last(incremental) == first_last_from_history(incremental, tmp_path)

    build_rich_history(repo, after_commit)
    small = tmp_path / "small.db"
    Ingest(str(repo.path), small, batch_commits=1).run()
    assert first_last(small) == first_last_from_history(small, tmp_path)
    one = tmp_path / "one.db"
    Ingest(str(repo.path), one).run()
    assert first_last(small) == first_last(one)
    assert first_last(incremental) == first_last(one)
    assert_same_db(small, one)
    assert any(last for _sid, _first, last, _at in first_last(one))


def test_the_configs_a_first_run_recorded_are_never_forgotten():
    # a run that starts on an empty database asks SQLite only about blob ids its
    # filter may hold: "no" must be certain
    recorded = _Recorded()
    ids = [hashlib.sha1(str(i).encode()).hexdigest() for i in range(50_000)]
    for oid in ids[::2]:
        recorded.add(oid)
    assert all(recorded.may_hold(oid) for oid in ids[::2])
    assert sum(recorded.may_hold(oid) for oid in ids[1::2]) < 250  # few false "maybe"
    recorded.add("not-a-hex-id")
    assert recorded.may_hold("not-a-hex-id")  # asked of the database


# the old way for every environment: per service, its rows on the environment's mainline
ENV_FROM_HISTORY = """
    update environment_services set
      first_commit = (select h.commit_sha from history h join environment_commits e
                      on e.environment = environment_services.environment
                      and e.commit_sha = h.commit_sha
                      where h.service_id = environment_services.service_id
                      order by h.seq limit 1),
      last_commit = (select h.commit_sha from history h join environment_commits e
                     on e.environment = environment_services.environment
                     and e.commit_sha = h.commit_sha
                     where h.service_id = environment_services.service_id
                     order by h.seq desc limit 1),
      last_updated = (select h.committed_at from history h join environment_commits e
                      on e.environment = environment_services.environment
                      and e.commit_sha = h.commit_sha
                      where h.service_id = environment_services.service_id
                      order by h.seq desc limit 1)
"""
ENV_COLUMNS = ("select environment, service_id, removed, first_commit, last_commit, "
               "last_updated from environment_services order by environment, service_id")
ON_MAINLINE = ("select distinct e.environment, h.service_id from history h "
               "join environment_commits e on e.commit_sha = h.commit_sha")


def assert_environments_match_history(db: Path) -> None:
    """Each environment's first/last commits are what the old per-service query reads,
    and every service with rows on its mainline has a row there."""
    with sqlite3.connect(db) as conn:
        stored = conn.execute(ENV_COLUMNS).fetchall()
        on_mainline = set(conn.execute(ON_MAINLINE).fetchall())
        conn.execute(ENV_FROM_HISTORY)
        expected = conn.execute(ENV_COLUMNS).fetchall()
        conn.rollback()
    assert stored == expected
    assert on_mainline <= {(env, sid) for env, sid, *_ in stored}
    assert all(first and last for env, sid, _r, first, last, _at in stored
               if (env, sid) in on_mainline)


def test_each_environments_first_and_last_commits_match_its_history(envrepo, tmp_path):
    """After a full ingest, incremental runs, a promotion by merge, a force-push of one
    environment and a fast-forward onto a commit another one brought in."""
    repo, db = envrepo, tmp_path / "envs.db"
    repo.git("checkout", "-q", "develop")
    repo.service("trial", version="0.0.1")
    repo.commit("a trial service")
    repo.rm("services/platform/trial.yaml")
    repo.commit("trial over")  # gone at dev's tip: a removed row with its commits
    ingest(repo.path, db, environments=ENVS)
    assert_environments_match_history(db)
    assert rows(db, "select removed from environment_services where environment = 'dev' "
                    "and service_id = 'platform/trial'") == [{"removed": 1}]
    repo.git("checkout", "-q", "develop")
    repo.service("search", version="0.2.0")
    repo.commit("search 0.2.0")
    repo.rm("services/platform/auth.yaml")
    repo.commit("auth gone from dev")
    ingest(repo.path, db)
    assert_environments_match_history(db)
    assert rows(db, "select removed from environment_services where environment = 'dev' "
                    "and service_id = 'platform/auth'") == [{"removed": 1}]
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "promote staging to prod", "staging")
    ingest(repo.path, db)
    assert_environments_match_history(db)
    prod = {r["service_id"]: r for r in rows(
        db, "select * from environment_services where environment = 'prod'")}
    assert prod["platform/billing"]["last_commit"] == repo.git("rev-parse", "main")
    repo.git("checkout", "-q", "staging")
    repo.git("reset", "-q", "--hard", "staging~1")
    repo.service("billing", version="2.2.0",
                 dependencies=[{"service": "auth", "version_constraint": ">=1.0.0"}])
    repo.commit("billing 2.2.0 instead")
    assert ingest(repo.path, db).rewrite_detected is False  # the merge keeps the old fix
    assert_environments_match_history(db)
    repo.git("branch", "-q", "-f", "main", "staging")  # prod moves, no new commit
    assert ingest(repo.path, db).commits_added == 0
    assert_environments_match_history(db)
    assert_each_environment_is_its_branch(db, repo, tmp_path)
    # search reaches staging, then staging is force-pushed without it: its staging row
    # stays (removed), with no commits there any more
    repo.git("checkout", "-q", "staging")
    repo.service("search", version="0.2.0")
    repo.commit("search in staging")
    ingest(repo.path, db)
    repo.git("reset", "-q", "--hard", "staging~1")
    assert ingest(repo.path, db).rewrite_detected
    assert_environments_match_history(db)
    assert rows(db, "select removed, first_commit, last_commit, last_updated "
                    "from environment_services where environment = 'staging' "
                    "and service_id = 'platform/search'") == \
        [{"removed": 1, "first_commit": None, "last_commit": None, "last_updated": None}]
