"""The Git walk (DESIGN §3): merges, renames, incremental runs, rewrites, interruptions."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import GitRepo, rows, run_ingest

from aureacore_db.ingest import Ingest, ingest

# Contract tables (DESIGN §4) and the autoincrement ids left out when comparing databases.
CONTRACT_TABLES = ("commits", "services", "configs", "history", "status",
                   "validation_errors", "parameter_changes", "dependencies")
SURROGATE = {"id", "status_id", "history_id"}
INGEST = sys.modules[Ingest.__module__]  # the module (the package's ``ingest`` is a function)


def snapshot(db_path: Path) -> dict[str, list[tuple]]:
    """Every contract table's rows, without autoincrement ids, in a stable order.

    ``parameter_changes`` rows carry their history row's identity (service, commit,
    change) instead of the history id; ``validation_errors`` rows carry their status
    row's status instead of the status id.
    """
    conn = sqlite3.connect(db_path)
    try:
        out: dict[str, list[tuple]] = {}
        for table in CONTRACT_TABLES:
            columns = [r[1] for r in conn.execute(f"pragma table_info([{table}])")]
            keep = [c for c in columns if not (c in SURROGATE and table != "services"
                                               and table != "configs")]
            select = ", ".join(f"t.[{c}]" for c in keep)
            if table == "parameter_changes":
                sql = (f"select {select}, h.service_id, h.commit_sha, h.change from "
                       "parameter_changes t left join history h on h.id = t.history_id")
            elif table == "validation_errors":
                sql = (f"select {select}, s.service_id, s.commit_sha, s.status from "
                       "validation_errors t left join status s on s.id = t.status_id")
            else:
                sql = f"select {select} from [{table}] t"
            out[table] = sorted((tuple(r) for r in conn.execute(sql)), key=repr)
        return out
    finally:
        conn.close()


def assert_same_db(actual: Path, expected: Path) -> None:
    got, want = snapshot(actual), snapshot(expected)
    problems = []
    for table in CONTRACT_TABLES:
        missing = [r for r in want[table] if r not in got[table]]
        extra = [r for r in got[table] if r not in want[table]]
        if missing or extra:
            problems.append(f"{table}: {len(missing)} rows missing, {len(extra)} extra\n"
                            f"  missing: {missing[:3]}\n  extra: {extra[:3]}")
    assert not problems, "\n".join(problems)


def build_rich_history(repo: GitRepo, after_commit=None) -> list[str]:
    """A history with every kind of change, a merge, and status changes caused by others.

    ``after_commit`` is called after each commit on main (e.g. to ingest incrementally).
    """
    shas = []

    def commit(message: str) -> None:
        shas.append(repo.commit(message))
        if after_commit:
            after_commit()

    repo.service("user-service", version="1.0.0", parameters={"pool": {"size": 5}})
    repo.service("auth-service", version="2.0.0", parameters={"replicas": 3},
                 dependencies=[{"service": "user-service", "version_constraint": ">=1.0.0"}])
    repo.write("README.md", "# configs\n")
    commit("initial services")
    repo.service("auth-service", version="2.1.0", parameters={"replicas": 5, "debug": True},
                 dependencies=[{"service": "user-service", "version_constraint": ">=2.0.0"}])
    commit("auth wants user 2.x")  # auth becomes ERROR
    repo.git("checkout", "-q", "-b", "side")
    repo.service("user-service", version="2.0.0", parameters={"pool": {"size": 8}})
    repo.commit("side: user 2.0")  # side-branch commit
    repo.service("billing", namespace="finance", version="0.1.0")
    repo.commit("side: billing")
    repo.git("checkout", "-q", "main")
    repo.write("README.md", "# configs\n\nmore docs\n")
    commit("docs only")
    repo.git("merge", "-q", "--no-ff", "side", "-m", "merge side",
             env={"GIT_AUTHOR_DATE": "2025-01-01T01:00:00Z",
                  "GIT_COMMITTER_DATE": "2025-01-01T01:00:00Z"})
    shas.append(repo.head())
    if after_commit:
        after_commit()
    (repo.path / "services/platform/auth").mkdir()
    repo.git("mv", "services/platform/auth-service.yaml", "services/platform/auth/svc.yaml")
    commit("move auth")
    repo.rm("services/finance/billing.yaml")
    commit("remove billing")
    repo.service("billing", namespace="finance", version="0.2.0")
    commit("re-add billing")
    repo.service("users", rel="services/platform/user-service.yaml", version="2.0.0")
    commit("rename user-service to users")  # auth loses its dependency -> ERROR
    repo.write("services/platform/broken.yaml", "name: broken\nversion: [\n")
    commit("broken file")
    return shas


# -- merges and mainline -----------------------------------------------------------------

def test_merge_side_branch_rows_are_not_mainline_and_merge_row_is(repo, db_path):
    repo.service("auth-service")
    base = repo.commit("base")
    repo.git("checkout", "-q", "-b", "feature")
    repo.service("auth-service", version="1.1.0")
    side1 = repo.commit("feature: bump auth")
    repo.service("cache", version="0.1.0")
    side2 = repo.commit("feature: add cache")
    repo.git("checkout", "-q", "main")
    repo.service("gateway")
    main2 = repo.commit("main: add gateway")
    repo.git("merge", "-q", "--no-ff", "feature", "-m", "merge feature")
    merge = repo.head()

    run_ingest(repo, db_path)

    commits = {c["sha"]: c for c in rows(db_path, "select * from commits")}
    assert {sha: commits[sha]["mainline"] for sha in (base, side1, side2, main2, merge)} == {
        base: 1, side1: 0, side2: 0, main2: 1, merge: 1}
    assert json.loads(commits[merge]["parents"]) == [main2, side2]
    # parents first: every commit after its parents
    for c in commits.values():
        for parent in json.loads(c["parents"]):
            assert commits[parent]["seq"] < c["seq"]
    assert sorted(c["seq"] for c in commits.values()) == [1, 2, 3, 4, 5]

    side_rows = rows(db_path, "select service_id, change, mainline from history "
                              "where commit_sha in (?, ?) order by seq", (side1, side2))
    assert side_rows == [
        {"service_id": "platform/auth-service", "change": "modified", "mainline": 0},
        {"service_id": "platform/cache", "change": "added", "mainline": 0}]
    # the merge's rows: the side branch's changes, relative to the first parent (main2)
    merge_rows = rows(db_path, "select service_id, change, mainline, config_id, "
                               "previous_config_id from history where commit_sha = ? "
                               "order by service_id", (merge,))
    assert [(r["service_id"], r["change"], r["mainline"]) for r in merge_rows] == [
        ("platform/auth-service", "modified", 1), ("platform/cache", "added", 1)]
    auth_side = rows(db_path, "select config_id from history where commit_sha = ?", (side1,))
    assert merge_rows[0]["config_id"] == auth_side[0]["config_id"]
    # gateway was not changed by the merge against its first parent
    assert all(r["service_id"] != "platform/gateway" for r in merge_rows)
    pc = rows(db_path, "select key, old_value, new_value, mainline from parameter_changes "
                       "where commit_sha = ? and service_id = 'platform/auth-service'", (merge,))
    assert pc == [{"key": "$.version", "old_value": '"1.0.0"', "new_value": '"1.1.0"',
                   "mainline": 1}]
    # point-in-time from mainline rows: auth at 1.1.0, cache present
    services = rows(db_path, "select id, version, removed from services order by id")
    assert services == [
        {"id": "platform/auth-service", "version": "1.1.0", "removed": 0},
        {"id": "platform/cache", "version": "0.1.0", "removed": 0},
        {"id": "platform/gateway", "version": "1.0.0", "removed": 0}]


def test_status_rows_of_a_merge_follow_the_first_parent(repo, db_path):
    repo.service("auth-service", dependencies=[{"service": "user-service"}])
    repo.commit("auth needs user (missing)")
    repo.git("checkout", "-q", "-b", "fix")
    repo.service("user-service")
    fix = repo.commit("add user-service")
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "fix", "-m", "merge fix")
    merge = repo.head()
    run_ingest(repo, db_path)
    status = rows(db_path, "select service_id, commit_sha, status, mainline from status "
                           "where service_id = 'platform/auth-service' order by seq")
    assert [(s["status"], s["mainline"]) for s in status] == [
        ("ERROR", 1), ("CONFIGURED", 0), ("CONFIGURED", 1)]
    assert [s["commit_sha"] for s in status[1:]] == [fix, merge]


def test_commit_touching_no_config_is_recorded_without_rows(repo, db_path):
    repo.service("auth-service")
    repo.commit("add auth")
    repo.write("README.md", "# docs\n")
    repo.write("services/notes.txt", "not a config\n")
    docs = repo.commit("docs")
    empty = repo.commit("empty commit")
    run_ingest(repo, db_path)
    commits = rows(db_path, "select sha, seq, mainline, services_changed from commits "
                            "where sha in (?, ?) order by seq", (docs, empty))
    assert [(c["sha"], c["seq"], c["mainline"]) for c in commits] == [(docs, 2, 1), (empty, 3, 1)]
    for table in ("history", "status", "validation_errors", "parameter_changes"):
        assert rows(db_path, f"select * from {table} where commit_sha in (?, ?)",
                    (docs, empty)) == [], table
    assert [r["id"] for r in rows(db_path, "select id from services")] == [
        "platform/auth-service"]


# -- identity: renames, name changes, removal -----------------------------------------

def test_move_keeps_service_id(repo, db_path):
    repo.service("auth-service", parameters={"replicas": 2})
    first = repo.commit("add")
    (repo.path / "services/identity").mkdir()
    repo.git("mv", "services/platform/auth-service.yaml", "services/identity/auth.yaml")
    moved = repo.commit("move to another folder (namespace comes from the file)")
    repo.git("mv", "services/identity/auth.yaml", "services/identity/auth.yml")
    repo.service("auth-service", rel="services/identity/auth.yml", parameters={"replicas": 4})
    moved_edited = repo.commit("rename extension and edit")
    run_ingest(repo, db_path)
    history = rows(db_path, "select service_id, commit_sha, change, path, old_path from history "
                            "order by seq")
    assert history == [
        {"service_id": "platform/auth-service", "commit_sha": first, "change": "added",
         "path": "services/platform/auth-service.yaml", "old_path": None},
        {"service_id": "platform/auth-service", "commit_sha": moved, "change": "renamed",
         "path": "services/identity/auth.yaml",
         "old_path": "services/platform/auth-service.yaml"},
        {"service_id": "platform/auth-service", "commit_sha": moved_edited, "change": "renamed",
         "path": "services/identity/auth.yml", "old_path": "services/identity/auth.yaml"},
    ]
    assert rows(db_path, "select id, path, removed from services") == [
        {"id": "platform/auth-service", "path": "services/identity/auth.yml", "removed": 0}]
    pc = rows(db_path, "select key, old_value, new_value from parameter_changes "
                       "where commit_sha = ?", (moved_edited,))
    assert pc == [{"key": "$.parameters.replicas", "old_value": "2", "new_value": "4"}]
    assert rows(db_path, "select count(*) n from parameter_changes where commit_sha = ?",
                (moved,)) == [{"n": 0}]


def test_name_change_ends_one_service_and_starts_another(repo, db_path):
    repo.service("auth-service")
    first = repo.commit("add auth-service")
    repo.service("identity", rel="services/platform/auth-service.yaml")
    second = repo.commit("rename the service, same file")
    run_ingest(repo, db_path)
    history = rows(db_path, "select service_id, commit_sha, change, path from history "
                            "order by seq, service_id")
    assert history == [
        {"service_id": "platform/auth-service", "commit_sha": first, "change": "added",
         "path": "services/platform/auth-service.yaml"},
        {"service_id": "platform/auth-service", "commit_sha": second, "change": "removed",
         "path": None},
        {"service_id": "platform/identity", "commit_sha": second, "change": "added",
         "path": "services/platform/auth-service.yaml"},
    ]
    services = rows(db_path, "select id, removed, path, config_id, first_commit, last_commit "
                             "from services order by id")
    assert services[0] == {"id": "platform/auth-service", "removed": 1, "path": None,
                           "config_id": None, "first_commit": first, "last_commit": second}
    assert services[1]["id"] == "platform/identity" and services[1]["removed"] == 0
    assert services[1]["first_commit"] == second


def test_removed_then_re_added(repo, db_path):
    repo.service("billing", namespace="finance", version="1.0.0")
    added = repo.commit("add")
    repo.rm("services/finance/billing.yaml")
    removed = repo.commit("remove")
    run_ingest(repo, db_path)
    assert rows(db_path, "select removed, path, config_id from services") == [
        {"removed": 1, "path": None, "config_id": None}]
    repo.service("billing", namespace="finance", version="1.1.0")
    readded = repo.commit("re-add")
    run_ingest(repo, db_path)
    history = rows(db_path, "select commit_sha, change, config_id, previous_config_id "
                            "from history order by seq")
    assert [(h["commit_sha"], h["change"]) for h in history] == [
        (added, "added"), (removed, "removed"), (readded, "added")]
    assert history[1]["config_id"] is None
    assert history[1]["previous_config_id"] == history[0]["config_id"]
    svc = rows(db_path, "select removed, version, status, first_commit, last_commit, path "
                        "from services")
    assert svc == [{"removed": 0, "version": "1.1.0", "status": "CONFIGURED",
                    "first_commit": added, "last_commit": readded,
                    "path": "services/finance/billing.yaml"}]


# -- incremental == full ----------------------------------------------------------------

def test_incremental_run_equals_full_run(repo, tmp_path):
    incremental = tmp_path / "incremental.db"
    runs = []
    build_rich_history(repo, after_commit=lambda: runs.append(run_ingest(repo, incremental)))
    assert [r.commits_added for r in runs] == [1, 1, 1, 3, 1, 1, 1, 1, 1]
    full = tmp_path / "full.db"
    result = run_ingest(repo, full)
    assert result.commits_added == 11
    assert_same_db(incremental, full)
    # sanity: the history really has errors, renames, removals and mainline-0 rows
    changes = {r["change"] for r in rows(full, "select change from history")}
    assert changes == {"added", "modified", "renamed", "removed"}
    assert rows(full, "select count(*) n from history where mainline = 0")[0]["n"] == 2
    assert rows(full, "select count(*) n from validation_errors")[0]["n"] >= 3


def test_each_one_commit_run_equals_a_fresh_full_ingest(repo, tmp_path):
    """A one-commit run resumes from the stored tip and re-validates only what the
    commit can affect; its rows must still equal a full ingest's after every commit,
    including services whose own file did not change."""
    incremental = tmp_path / "incremental.db"

    def check(message: str, expect_status: dict[str, str]) -> None:
        repo.commit(message)
        result = run_ingest(repo, incremental)
        assert result.commits_added == 1 or message == "initial"
        full = tmp_path / f"full-{repo.head()[:8]}.db"
        run_ingest(repo, full)
        assert_same_db(incremental, full)
        got = {r["id"]: r["status"] for r in rows(
            incremental, "select id, status from services where removed = 0")}
        for sid, status in expect_status.items():
            assert got.get(sid) == status, (message, sid, got.get(sid))

    schema = {"type": "object", "properties": {"replicas": {"type": "integer",
                                                            "maximum": 10}}}
    repo.service("api", version="1.0.0")
    repo.service("web", version="1.0.0", parameters={"replicas": 5}, dependencies=[
        {"service": "api", "version_constraint": ">=1.0.0,<2.0.0"}])
    repo.service("worker", version="1.0.0", dependencies=[
        {"service": "api", "required": False}])
    repo.service("ping", dependencies=[{"service": "pong"}])
    repo.service("pong", dependencies=[{"service": "ping"}])
    repo.write("schemas/platform/web.json", json.dumps(schema))
    check("initial", {"platform/web": "CONFIGURED", "platform/ping": "ERROR",
                      "platform/pong": "ERROR"})
    repo.service("api", version="2.0.0")
    check("api 2.0: web's constraint fails, web's file unchanged",
          {"platform/web": "ERROR", "platform/worker": "CONFIGURED"})
    repo.service("api", version="1.5.0")
    check("api 1.5", {"platform/web": "CONFIGURED"})
    schema["properties"]["replicas"]["maximum"] = 3
    repo.write("schemas/platform/web.json", json.dumps(schema))
    check("schema: at most 3 replicas", {"platform/web": "ERROR"})
    repo.rm("schemas/platform/web.json")
    check("schema removed", {"platform/web": "CONFIGURED"})
    repo.rm("services/platform/api.yaml")
    check("api removed", {"platform/web": "ERROR", "platform/worker": "CONFIGURED"})
    (repo.path / "services/platform/jobs").mkdir()
    repo.git("mv", "services/platform/worker.yaml", "services/platform/jobs/worker.yaml")
    check("worker moved", {"platform/worker": "CONFIGURED"})
    repo.service("pong")
    check("cycle broken: ping's file unchanged",
          {"platform/ping": "CONFIGURED", "platform/pong": "CONFIGURED"})
    repo.service("api", version="1.0.0")
    check("api back", {"platform/web": "CONFIGURED"})
    changes = {r["change"] for r in rows(incremental, "select change from history")}
    assert changes == {"added", "modified", "renamed", "removed"}


def test_batch_size_does_not_change_the_result(repo, tmp_path):
    build_rich_history(repo)
    one_batch = tmp_path / "one.db"
    Ingest(str(repo.path), one_batch).run()
    small = tmp_path / "small.db"
    result = Ingest(str(repo.path), small, batch_commits=2).run()
    assert result.commits_added == 11
    assert_same_db(small, one_batch)



def build_wide_first_commit(repo: GitRepo) -> None:
    """A first commit of many services with parameters (many rows at once), then changes."""
    for i in range(12):
        repo.service(f"svc-{i}", parameters={"replicas": i, "tier": {"a": i, "b": [i, i]}},
                     dependencies=[{"service": f"svc-{(i + 1) % 12}", "required": i % 2 == 0}])
    repo.commit("twelve services")
    for step in range(3):
        repo.service(f"svc-{step}", version=f"1.{step + 1}.0", parameters={"replicas": 9})
        repo.commit(f"change {step}")


def test_a_batch_is_written_ahead_in_its_transaction_when_it_grows(repo, tmp_path, monkeypatch):
    build_wide_first_commit(repo)
    whole = tmp_path / "whole.db"
    Ingest(str(repo.path), whole).run()
    monkeypatch.setattr(INGEST, "SPILL_ROWS", 7)
    held: list[int] = []
    seen_by_others: list[int] = []
    ahead = tmp_path / "ahead.db"
    run = Ingest(str(repo.path), ahead, progress=lambda done, total: (
        held.append(sum(len(run._rows.get(t, ())) for t in INGEST.SPILLED)),
        seen_by_others.append(rows(ahead, "select count(*) n from parameter_changes")[0]["n"])))
    run.run()
    assert max(held) < 7  # never more unwritten rows than that (the first commit makes 60+)
    assert seen_by_others == [0] * 4  # written ahead, but committed with the batch only
    assert_same_db(ahead, whole)
    events = "select id, kind, service_id, commit_sha, payload from events order by id"
    assert rows(ahead, events) == rows(whole, events)


def test_an_interrupted_batch_leaves_nothing_of_what_it_wrote_ahead(repo, tmp_path,
                                                                     monkeypatch):
    build_wide_first_commit(repo)
    monkeypatch.setattr(INGEST, "SPILL_ROWS", 7)
    db = tmp_path / "interrupted.db"

    def stop(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    try:
        Ingest(str(repo.path), db, progress=stop).run()
    except KeyboardInterrupt:
        pass
    for table in ("commits", "configs", "dependencies", "history", "status",
                  "parameter_changes", "events"):
        assert rows(db, f"select count(*) n from {table}") == [{"n": 0}], table
    assert rows(db, "select outcome from ingest_runs") == [{"outcome": "interrupted"}]
    Ingest(str(repo.path), db).run()
    clean = tmp_path / "clean.db"
    Ingest(str(repo.path), clean).run()
    assert_same_db(db, clean)


def test_checks_keep_no_text_once_their_config_row_holds_it(repo, tmp_path):
    # the tree state keeps a check per service for the whole walk: the raw text is
    # stored once in ``configs`` and not kept beside it (the JSON text stays: a check
    # sent by a worker reads its content from it)
    build_repeating_blobs(repo)
    db = tmp_path / "registry.db"
    run = Ingest(str(repo.path), db, workers=0)
    run.run()
    kept = list(run.reader._checks.values())
    assert kept and all(c.parse.raw is None for c in kept)
    assert all(c.readable == (c.content is not None) for c in kept)
    stored = rows(db, "select raw, content from configs")
    assert stored and all(r["raw"] and r["content"] for r in stored)


def build_repeating_blobs(repo: GitRepo, after_commit=None) -> None:
    """Blobs that come back: a config reverted to earlier bytes, and one file's bytes
    serving two services (each with its own dependency rows)."""
    shared = "version: 1.0.0\ndependencies:\n  - service: db\n    required: false\n"
    for step in range(6):
        repo.service("api", version=f"1.{step % 2}.0")  # 1.0, 1.1, 1.0, ... (reverts)
        if step == 1:
            repo.write("services/alpha/shared.yaml", shared)
        if step == 3:
            repo.write("services/beta/shared.yaml", shared)  # same blob, another service
        if step == 4:
            repo.rm("services/alpha/shared.yaml")
        if step == 5:
            repo.write("services/alpha/shared.yaml", shared)  # back, as the same blob
        repo.commit(f"step {step}")
        if after_commit:
            after_commit()


def test_configs_seen_in_earlier_batches_are_stored_once_per_blob(repo, tmp_path):
    runs: list = []
    incremental = tmp_path / "incremental.db"
    build_repeating_blobs(repo, lambda: runs.append(run_ingest(repo, incremental)))
    one_batch, per_commit = tmp_path / "one.db", tmp_path / "per-commit.db"
    Ingest(str(repo.path), one_batch).run()
    Ingest(str(repo.path), per_commit, batch_commits=1).run()
    assert_same_db(per_commit, one_batch)
    assert_same_db(incremental, one_batch)
    deps = rows(one_batch, "select service_id, depends_on from dependencies "
                           "where config_id = (select config_id from services "
                           "where id = 'alpha/shared') order by service_id")
    assert deps == [{"service_id": "alpha/shared", "depends_on": "alpha/db"},
                    {"service_id": "beta/shared", "depends_on": "beta/db"}]
    blobs = rows(one_batch, "select count(distinct config_id) n from history "
                            "where config_id is not null")[0]["n"]
    assert rows(one_batch, "select count(*) n from configs")[0]["n"] == blobs == 3


def test_walk_keeps_no_per_commit_state_for_a_linear_history(repo):
    import pygit2

    from aureacore_db.gitsource import canonical_order
    from aureacore_db.ingest import _Children

    for step in range(40):
        repo.service("api", version=f"1.{step}.0")
        repo.commit(f"release {step}")
    git = pygit2.Repository(str(repo.path))
    todo = canonical_order(git, git.head.target)
    children = _Children(git, todo)
    assert len(children._other) == 1  # only the tip (no child): every other has one
    assert children.get(todo[-1]) == 0 and children.get(todo[5]) == 1
    assert children.take(todo[5]) == 0 and len(children._other) == 1


def test_second_run_without_new_commits_changes_nothing(repo, db_path, tmp_path):
    build_rich_history(repo)
    run_ingest(repo, db_path)
    before = snapshot(db_path)
    again = run_ingest(repo, db_path)
    assert again.commits_added == 0 and not again.rewrite_detected
    assert snapshot(db_path) == before
    runs = rows(db_path, "select commits_added, outcome from ingest_runs order by id")
    assert runs == [{"commits_added": 11, "outcome": "ok"}, {"commits_added": 0, "outcome": "ok"}]


# -- force-push ---------------------------------------------------------------------------

def test_force_push_reset_and_new_commits_matches_fresh_ingest(repo, db_path, tmp_path):
    build_rich_history(repo)
    run_ingest(repo, db_path)
    dropped = repo.git("rev-list", "HEAD~2..HEAD").split()
    assert len(dropped) == 2
    repo.git("reset", "-q", "--hard", "HEAD~2")
    repo.service("payments", namespace="finance", version="3.0.0")
    new1 = repo.commit("rewritten: add payments")
    repo.service("user-service", version="2.5.0")
    new2 = repo.commit("rewritten: user 2.5")

    result = run_ingest(repo, db_path)

    assert result.rewrite_detected and result.commits_removed == 2
    assert result.commits_added == 2
    for table, column in (("commits", "sha"), ("history", "commit_sha"),
                          ("status", "commit_sha"), ("validation_errors", "commit_sha"),
                          ("parameter_changes", "commit_sha")):
        assert rows(db_path, f"select * from {table} where {column} in (?, ?)",
                    tuple(dropped)) == [], table
    assert {new1, new2} <= {r["sha"] for r in rows(db_path, "select sha from commits")}
    # the broken service and the 'users' rename existed only in dropped commits
    ids = {r["id"] for r in rows(db_path, "select id from services")}
    assert "platform/broken" not in ids and "platform/users" not in ids
    fresh = tmp_path / "fresh.db"
    run_ingest(repo, fresh)
    assert_same_db(db_path, fresh)
    last = rows(db_path, "select rewrite_detected, commits_removed, commits_added, outcome "
                         "from ingest_runs order by id desc limit 1")
    assert last == [{"rewrite_detected": 1, "commits_removed": 2, "commits_added": 2,
                     "outcome": "ok"}]


def test_force_push_amend_of_tip(repo, db_path, tmp_path):
    repo.service("auth-service", parameters={"replicas": 3})
    repo.commit("add auth")
    repo.service("auth-service", parameters={"replicas": 30})
    bad = repo.commit("oops, 30 replicas")
    run_ingest(repo, db_path)
    repo.service("auth-service", parameters={"replicas": 4})
    repo.git("add", "-A")
    repo.git("commit", "-q", "--amend", "-m", "4 replicas",
             env={"GIT_COMMITTER_DATE": "2025-02-01T00:00:00Z"})
    amended = repo.head()
    assert amended != bad
    result = run_ingest(repo, db_path)
    assert result.rewrite_detected and result.commits_removed == 1 and result.commits_added == 1
    assert rows(db_path, "select sha from commits where sha = ?", (bad,)) == []
    assert rows(db_path, "select new_value from parameter_changes where commit_sha = ?",
                (amended,)) == [{"new_value": "4"}]
    # the config of the dropped commit is gone too (nothing references it)
    assert rows(db_path, "select count(*) n from configs where raw like '%30%'") == [{"n": 0}]
    fresh = tmp_path / "fresh.db"
    run_ingest(repo, fresh)
    assert_same_db(db_path, fresh)
    assert rows(db_path, "select rewrite_detected from ingest_runs order by id") == [
        {"rewrite_detected": 0}, {"rewrite_detected": 1}]


def test_force_push_to_an_older_commit_only(repo, db_path, tmp_path):
    repo.service("auth-service")
    repo.commit("add auth")
    repo.service("user-service")
    repo.commit("add user")
    run_ingest(repo, db_path)
    repo.git("reset", "-q", "--hard", "HEAD~1")
    result = run_ingest(repo, db_path)
    assert result.rewrite_detected and result.commits_removed == 1 and result.commits_added == 0
    assert [r["id"] for r in rows(db_path, "select id from services")] == [
        "platform/auth-service"]
    fresh = tmp_path / "fresh.db"
    run_ingest(repo, fresh)
    assert_same_db(db_path, fresh)


# -- interrupted runs ---------------------------------------------------------------------

def fast_import_repo(path: Path, n_commits: int, n_services: int = 40) -> None:
    """A linear repo of ``n_commits`` commits, one service file changed in each."""
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True)
    out: list[bytes] = []

    def data(payload: bytes) -> None:
        out.append(b"data %d\n%s\n" % (len(payload), payload))

    for i in range(n_commits):
        s = i % n_services
        out.append(b"commit refs/heads/main\nmark :%d\n" % (i + 1))
        stamp = b"<a@example.com> %d +0000\n" % (1_700_000_000 + i * 60)
        out.append(b"author A " + stamp + b"committer A " + stamp)
        data(b"change %d" % i)
        if i:
            out.append(b"from :%d\n" % i)
        deps = ""
        if s % 3 == 0:  # a dependency whose constraint is sometimes unsatisfied
            deps = (f"dependencies:\n  - service: svc-{(s + 1) % n_services}\n"
                    f"    version_constraint: '>=1.{max(i - 30, 0)}.0'\n")
        version = "1.{i}.0" if i % 97 else "not-semver"
        body = (f"name: svc-{s}\nnamespace: platform\nversion: '{version.format(i=i)}'\n"
                f"parameters: {{replicas: {i % 7}}}\n{deps}").encode()
        out.append(b"M 100644 inline services/platform/svc-%d.yaml\n" % s)
        data(body)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=b"".join(out), check=True)


def _count_commits(db_path: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("select count(*) from commits").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def test_killed_run_resumes_and_equals_clean_full_run(tmp_path):
    source = tmp_path / "big"
    total = 3000
    fast_import_repo(source, total)
    killed_db = tmp_path / "killed.db"
    # The progress callback (public API) slows each commit a little so the kill lands
    # part-way; batches of 50 commits.
    script = (
        "import sys, time\n"
        "from aureacore_db.ingest import Ingest\n"
        "Ingest(sys.argv[1], sys.argv[2], batch_commits=50,\n"
        "       progress=lambda done, total: time.sleep(0.0005)).run()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(source), str(killed_db)])
    seen = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            seen = _count_commits(killed_db)
            if seen >= 300:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, "ingest finished before it could be killed"
    left = _count_commits(killed_db)
    assert 0 < left < total
    # nothing half-written: a prefix of whole commits, no rows of unrecorded commits
    seqs = [r["seq"] for r in rows(killed_db, "select seq from commits order by seq")]
    assert seqs == list(range(1, left + 1))
    for table in ("history", "status", "validation_errors", "parameter_changes"):
        orphans = rows(killed_db, f"select count(*) n from {table} "
                                  "where commit_sha not in (select sha from commits)")
        assert orphans == [{"n": 0}], table
    assert rows(killed_db, "select outcome from ingest_runs") == [{"outcome": "running"}]

    resumed = Ingest(str(source), killed_db, batch_commits=50).run()
    assert resumed.commits_added == total - left and resumed.commits == total
    assert rows(killed_db, "select outcome from ingest_runs order by id") == [
        {"outcome": "interrupted"}, {"outcome": "ok"}]
    clean_db = tmp_path / "clean.db"
    ingest(source, clean_db)
    assert_same_db(killed_db, clean_db)
    assert rows(clean_db, "select count(*) n from validation_errors")[0]["n"] > 0


# -- database and sources ---------------------------------------------------------------

def test_database_is_in_wal_mode(repo, db_path):
    repo.service("auth-service")
    repo.commit("add")
    run_ingest(repo, db_path)
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_file_url_is_cloned_beside_the_db_and_fetched_on_the_next_run(repo, tmp_path):
    db_dir = tmp_path / "data"
    db_dir.mkdir()
    db_path = db_dir / "registry.db"
    repo.service("auth-service")
    first = repo.commit("add auth")
    url = repo.path.resolve().as_uri()
    assert url.startswith("file://")

    result = ingest(url, db_path)

    assert result.commits_added == 1 and result.services == 1
    clones = [p for p in db_dir.rglob("HEAD") if (p.parent / "objects").is_dir()]
    assert len(clones) == 1, list(db_dir.rglob("*"))
    cache = clones[0].parent
    assert cache.is_relative_to(db_dir) and not cache.is_relative_to(repo.path)
    repo.service("user-service")
    second = repo.commit("add user")

    again = ingest(url, db_path)

    assert again.commits_added == 1 and again.services == 2
    assert [p for p in db_dir.rglob("HEAD") if (p.parent / "objects").is_dir()] == clones
    assert [r["sha"] for r in rows(db_path, "select sha from commits order by seq")] == [
        first, second]
    assert rows(db_path, "select source from ingest_runs order by id") == [
        {"source": url}, {"source": url}]


def test_file_url_force_push_is_followed(repo, tmp_path):
    db_path = tmp_path / "registry.db"
    repo.service("auth-service")
    repo.commit("add auth")
    repo.service("user-service")
    gone = repo.commit("add user")
    url = repo.path.resolve().as_uri()
    ingest(url, db_path)
    repo.git("reset", "-q", "--hard", "HEAD~1")
    repo.service("cache")
    repo.commit("add cache instead")
    result = ingest(url, db_path)
    assert result.rewrite_detected
    assert rows(db_path, "select sha from commits where sha = ?", (gone,)) == []
    assert [r["id"] for r in rows(db_path, "select id from services order by id")] == [
        "platform/auth-service", "platform/cache"]


def test_an_unrelated_history_is_refused_not_replaced(tmp_path, db_path):
    import pytest

    from aureacore_db.gitsource import SourceError

    first, other = GitRepo(tmp_path / "a"), GitRepo(tmp_path / "b")
    first.service("auth-service")
    first.commit("Add auth")
    other.service("billing", namespace="payments")
    other.commit("Add billing")
    run_ingest(first, db_path)

    with pytest.raises(SourceError, match="holds another history"):
        run_ingest(other, db_path)
    assert [r["id"] for r in rows(db_path, "select id from services")] == [
        "platform/auth-service"]
