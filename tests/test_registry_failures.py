"""Failures with real parts: git daemon down or killed, rejected pushes, SIGKILLed
processes, concurrent registrations and syncs. Each: a clear error, the database
unchanged, and a retry (or the next sync) that succeeds with nothing lost."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import GitRepo, rows, run_ingest
from test_gitprovider import GitDaemon, bare_from, git

from aureacore_db.gitprovider import PullResult, RemoteUnreachable, TransferFailed
from aureacore_db.ingest import ingest
from aureacore_db.models import ServiceConfig, ServiceDependency
from aureacore_db.registry import (
    RegistrationConflict,
    RegistryBusy,
    RegistryError,
    ServiceRegistry,
)

TABLES = ("commits", "services", "configs", "history", "status", "validation_errors",
          "parameter_changes", "dependencies", "events", "registrations", "ingest_runs")
DERIVED = ("commits", "services", "configs", "history", "status", "validation_errors",
           "parameter_changes", "dependencies")


def svc(name: str, version: str = "1.0.0", **fields) -> ServiceConfig:
    return ServiceConfig(name=name, namespace="platform", version=version, **fields)


def snapshot(db_path: Path, tables=TABLES) -> dict[str, list]:
    conn = sqlite3.connect(db_path)
    try:
        names = {r[0] for r in conn.execute("select name from sqlite_master")}
        return {t: sorted(map(repr, conn.execute(f"select * from {t}"))) if t in names else []
                for t in tables}
    finally:
        conn.close()


def derived(db_path: Path) -> dict[str, list]:
    """The Git-derived tables without surrogate ids (to compare with a full ingest)."""
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        out = {}
        for table in DERIVED:
            found = []
            for row in conn.execute(f"select * from {table}"):
                data = {k: row[k] for k in row.keys() if k not in ("id", "status_id",
                                                                   "history_id")}
                if table == "services" or table == "commits":
                    data["id"] = row["id"] if table == "services" else row["sha"]
                found.append(json.dumps(data, sort_keys=True))
            out[table] = sorted(found)
        return out
    finally:
        conn.close()


def assert_matches_full_ingest(repo_path: Path, db_path: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    ingest(repo_path, fresh)
    assert derived(db_path) == derived(fresh)


@pytest.fixture
def served(repo: GitRepo, tmp_path: Path):
    """A config repo served by a real git daemon; yields (daemon, url, bare path)."""
    repo.service("user-service")
    repo.commit("seed")
    base = tmp_path / "served"
    base.mkdir()
    daemon = GitDaemon(base).start()
    bare = bare_from(repo, base / "configs.git")
    yield daemon, daemon.url("configs.git"), bare
    daemon.kill()


def test_remote_unreachable_then_retry(served, tmp_path, db_path):
    daemon, url, bare = served
    registry = ServiceRegistry(db_path, url, workdir=tmp_path / "work", timeout=10)
    registry.sync_configurations()
    before = snapshot(db_path)
    daemon.kill()
    with pytest.raises(RemoteUnreachable, match="unreachable"):
        registry.sync_configurations()
    with pytest.raises(RemoteUnreachable):
        registry.register_service(svc("auth"))
    assert snapshot(db_path) == before
    assert not (tmp_path / "work/services/platform/auth.yaml").exists()
    daemon.start()
    result = registry.register_service(svc("auth"))
    assert result.status == "CONFIGURED"
    assert git(bare, "rev-parse", "main") == result.commit


def test_daemon_killed_mid_fetch_then_sync_succeeds(served, repo, tmp_path, db_path):
    daemon, url, bare = served
    registry = ServiceRegistry(db_path, url, workdir=tmp_path / "work", timeout=30)
    registry.sync_configurations()
    repo.write("assets/blob.bin", os.urandom(24 * 1024 * 1024))
    repo.service("auth")
    pushed = repo.commit("big")
    git(repo.path, "push", "-q", str(bare), "main")
    before = snapshot(db_path)

    def kill_on_first_bytes(stats) -> None:
        if stats.received_bytes > 0:
            daemon.kill()

    registry.git.progress = kill_on_first_bytes
    with pytest.raises(TransferFailed):
        registry.sync_configurations()
    assert snapshot(db_path) == before
    registry.git.progress = None
    daemon.start()
    result = registry.sync_configurations()
    assert result.new_commits == [pushed]
    assert registry.get_service("platform/auth").status.state == "CONFIGURED"


def test_non_fast_forward_push_is_a_conflict_then_retry(served, tmp_path, db_path):
    _daemon, url, bare = served
    other_db = tmp_path / "other.db"
    mine = ServiceRegistry(db_path, url, workdir=tmp_path / "mine", timeout=10)
    theirs = ServiceRegistry(other_db, url, workdir=tmp_path / "theirs", timeout=10)
    mine.sync_configurations()
    theirs.sync_configurations()
    first = theirs.register_service(svc("billing"))  # the remote moves on
    before = snapshot(db_path)
    tip_before = mine.git.tip()
    real_pull = mine.git.pull_changes
    # this clone misses the remote's move (as if it had pulled just before it)
    mine.git.pull_changes = lambda: PullResult(tip_before, tip_before, True)  # type: ignore
    with pytest.raises(RegistrationConflict, match="rejected"):
        mine.register_service(svc("auth"))
    assert snapshot(db_path) == before
    assert mine.git.tip() == tip_before
    assert not (mine.git.workdir / "services/platform/auth.yaml").exists()
    assert git(mine.git.workdir, "status", "--porcelain") == ""
    assert git(bare, "rev-parse", "main") == first.commit
    mine.git.pull_changes = real_pull  # type: ignore[method-assign]
    retry = mine.register_service(svc("auth"))
    assert retry.status == "CONFIGURED"
    assert git(bare, "log", "--format=%s", "-2").splitlines() == [
        "Register platform/auth 1.0.0", "Register platform/billing 1.0.0"]
    assert {s.id for s in mine.list_services()} == {
        "platform/auth", "platform/billing", "platform/user-service"}


def run_script(body: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script), *args], capture_output=True,
                          text=True, timeout=120)


KILL_BEFORE_INGEST = """
import os, signal, sys
from aureacore_db.models import ServiceConfig
from aureacore_db.registry import ServiceRegistry

ServiceRegistry._ingest = lambda self: os.kill(os.getpid(), signal.SIGKILL)
registry = ServiceRegistry(sys.argv[1], sys.argv[2])
registry.register_service(ServiceConfig(name="auth", namespace="platform", version="1.0.0"))
"""

KILL_MID_INGEST = """
import importlib, os, signal, sys
ingest_module = importlib.import_module("aureacore_db.ingest")  # the module, not the function
from aureacore_db.registry import ServiceRegistry

init, flush = ingest_module.Ingest.__init__, ingest_module.Ingest._flush
def small_batches(self, *args, **kwargs):
    kwargs["batch_commits"] = 1
    init(self, *args, **kwargs)
calls = []
def flush_then_die(self, last_main):
    flush(self, last_main)
    calls.append(1)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
ingest_module.Ingest.__init__ = small_batches
ingest_module.Ingest._flush = flush_then_die
ServiceRegistry(sys.argv[1], sys.argv[2]).sync_configurations()
"""


def test_killed_between_commit_and_ingest(repo, db_path, tmp_path):
    repo.service("user-service")
    repo.commit("seed")
    run_ingest(repo, db_path)
    done = run_script(KILL_BEFORE_INGEST, tmp_path, str(db_path), str(repo.path))
    assert done.returncode == -9, done.stderr
    committed = repo.head()
    assert git(repo.path, "log", "-1", "--format=%s") == "Register platform/auth 1.0.0"
    registry = ServiceRegistry(db_path, repo.path)
    pending = registry.get_service("platform/auth")
    assert pending.status.state == "PENDING" and pending.commit == committed
    result = registry.sync_configurations()
    assert result.new_commits == [committed]
    assert registry.get_service("platform/auth").status.state == "CONFIGURED"
    assert [r["status"] for r in rows(db_path, "select status from registrations")] == [
        "CONFIGURED"]
    assert_matches_full_ingest(repo.path, db_path, tmp_path)


def test_killed_mid_ingest_next_sync_catches_up(repo, db_path, tmp_path):
    repo.service("user-service")
    repo.commit("seed")
    run_ingest(repo, db_path)
    for i in range(5):
        repo.service(f"svc-{i}", dependencies=[{"service": "user-service"}])
        repo.commit(f"add {i}")
    repo.write("services/platform/broken.yaml", "name: [unclosed\n")
    repo.commit("broken file")
    done = run_script(KILL_MID_INGEST, tmp_path, str(db_path), str(repo.path))
    assert done.returncode == -9, done.stderr
    partial = rows(db_path, "select count(*) n from commits")[0]["n"]
    assert 1 < partial < 7
    result = ServiceRegistry(db_path, repo.path).sync_configurations()
    assert len(result.new_commits) == 7 - partial
    assert rows(db_path, "select count(*) n from commits")[0]["n"] == 7
    assert rows(db_path, "select status from services where id = 'platform/broken'") == [
        {"status": "ERROR"}]
    assert_matches_full_ingest(repo.path, db_path, tmp_path)


CONCURRENT = """
import sys
from aureacore_db.models import ServiceConfig
from aureacore_db.registry import ServiceRegistry

db, repo, worker = sys.argv[1], sys.argv[2], sys.argv[3]
registry = ServiceRegistry(db, repo)
for i in range(4):
    if worker == "sync":
        registry.sync_configurations()
        continue
    result = registry.register_service(ServiceConfig(
        name=f"w{worker}-{i}", namespace="platform", version="1.0.0"))
    assert result.status == "CONFIGURED", result
print("ok")
"""


def test_concurrent_registrations_and_syncs(repo, db_path, tmp_path):
    repo.service("user-service")
    repo.commit("seed")
    run_ingest(repo, db_path)
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(CONCURRENT))
    workers = [subprocess.Popen([sys.executable, str(script), str(db_path), str(repo.path), w],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for w in ("0", "1", "2", "sync")]
    for proc in workers:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0 and out.strip() == "ok", err
    assert len(git(repo.path, "log", "--format=%H").splitlines()) == 13
    git(repo.path, "fsck", "--no-progress")
    assert git(repo.path, "status", "--porcelain") == ""
    regs = rows(db_path, "select status, count(*) n from registrations group by status")
    assert regs == [{"status": "CONFIGURED", "n": 12}]
    assert rows(db_path, "select count(*) n from services where removed = 0")[0]["n"] == 13
    assert_matches_full_ingest(repo.path, db_path, tmp_path)


def test_busy_lock_is_a_clear_conflict(repo, db_path):
    repo.service("user-service")
    repo.commit("seed")
    registry = ServiceRegistry(db_path, repo.path, lock_timeout=0.3)
    registry.sync_configurations()
    before = snapshot(db_path)
    with open(repo.path / ".git/aureacore-registry.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RegistryBusy, match="in progress"):
            registry.register_service(svc("auth"))
        fcntl.flock(held, fcntl.LOCK_UN)
    assert snapshot(db_path) == before
    assert registry.register_service(svc("auth")).status == "CONFIGURED"


def test_invalid_configs_arriving_by_sync(repo, db_path):
    repo.service("user-service")
    repo.commit("seed")
    registry = ServiceRegistry(db_path, repo.path)
    registry.sync_configurations()
    registry.register_service(svc("auth", dependencies=[ServiceDependency("user-service")]))
    repo.write("services/platform/user-service.yaml", b"\xff\xfe not utf-8")
    repo.service("typo", dependancies=[])
    repo.commit("break things")
    result = registry.sync_configurations()
    changes = {(c["service_id"], c["status"]) for c in result.status_changes}
    assert {("platform/user-service", "ERROR"), ("platform/typo", "ERROR")} <= changes
    errors = {s.id: s.status.message for s in registry.list_services(status="ERROR")}
    assert "not UTF-8" in errors["platform/user-service"]
    assert "dependancies" in errors["platform/typo"]
    # the registry keeps working: a valid registration still goes through
    assert registry.register_service(svc("fresh")).status == "CONFIGURED"
    with pytest.raises(RegistryError):
        registry.register_service(svc("bad", version="x"))
