"""Services' first and last commits, kept from the batch's rows and the stored values:
always what reading every history row gives (the old way, one statement)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from test_walk import assert_same_db, build_rich_history

from aureacore_db.ingest import Ingest, _Recorded

FROM_HISTORY = """
    update services set
      first_commit = (select commit_sha from history h where h.service_id = services.id
                      order by h.mainline desc, h.seq limit 1),
      last_commit = (select commit_sha from history h where h.service_id = services.id
                     order by h.mainline desc, h.seq desc limit 1),
      last_updated = (select committed_at from history h where h.service_id = services.id
                      order by h.mainline desc, h.seq desc limit 1)
"""
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
