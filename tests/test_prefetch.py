"""Prefetch workers (diffs and parsing in other processes) change speed, not results."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import rows

from aureacore_db.ingest import Ingest

TABLES = {
    "commits": "select sha, seq, mainline from commits order by seq",
    "history": "select service_id, commit_sha, change, path, config_id, status from history "
               "order by seq, service_id",
    "status": "select service_id, commit_sha, status, message from status "
              "order by seq, service_id",
    "parameter_changes": "select service_id, commit_sha, key, old_value, new_value, change "
                         "from parameter_changes order by seq, service_id, key",
    "services": "select * from services order by id",
}


def test_workers_give_the_same_rows_as_a_single_process(repo, tmp_path):
    repo.service("store", parameters={"size": 1})
    repo.commit("store")
    for i in range(12):
        repo.service("api", version=f"1.{i}.0", parameters={"replicas": i},
                     dependencies=[{"service": "store", "version_constraint": ">=1.0.0"}])
        if i % 4 == 3:
            repo.write("services/platform/store.yaml", "name: store\nversion: [broken\n")
        else:
            repo.service("store", version=f"1.{i}.0", parameters={"size": i})
        repo.commit(f"change {i}")

    single = tmp_path / "single.db"
    pooled = tmp_path / "pooled.db"
    Ingest(str(repo.path), single, workers=0).run()
    Ingest(str(repo.path), pooled, workers=2).run()

    for name, sql in TABLES.items():
        assert rows(single, sql) == rows(pooled, sql), name
    assert len(rows(pooled, TABLES["commits"])) == 13
    assert any(r["status"] == "ERROR" for r in rows(pooled, TABLES["status"]))


def children_of(pid: int) -> list[str]:
    """Command lines of the live child processes of ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ValueError, IndexError):
            continue
    return out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_no_worker_or_fork_server_outlives_the_ingest(repo, tmp_path):
    # the workers' CPU time is counted in the ingest's own (its children's) only when
    # the processes that made them are waited for: none may be left running
    repo.service("store", parameters={"size": 1})
    repo.commit("store")
    for i in range(3):
        repo.service("store", parameters={"size": i + 2})
        repo.commit(f"change {i}")
    Ingest(str(repo.path), tmp_path / "pooled.db", workers=2).run()
    left = [cmd for cmd in children_of(os.getpid()) if "resource_tracker" not in cmd]
    assert left == []


def test_the_main_process_parses_no_config_a_worker_parsed(repo, tmp_path, monkeypatch):
    # a first commit can bring more configs than the main process's cache of checks
    # holds: each is used as the worker made it, not parsed again in the walk
    from aureacore_db.blobs import BlobReader

    for i in range(8):
        repo.service(f"svc-{i}", parameters={"replicas": i})
    repo.commit("eight services")
    repo.service("svc-0", version="1.1.0")
    repo.commit("change")
    init = BlobReader.__init__
    monkeypatch.setattr(BlobReader, "__init__", lambda self, *a, **kw: init(
        self, *a, **{**kw, "cache_size": 2}))
    read: list[str] = []  # blobs parsed in this (the main) process
    parse = BlobReader.read

    def counted(self, oid: str, path: str):
        read.append(path)
        return parse(self, oid, path)

    monkeypatch.setattr(BlobReader, "read", counted)
    Ingest(str(repo.path), tmp_path / "pooled.db", workers=2).run()
    assert [p for p in read if p.startswith("services/")] == []
    assert rows(tmp_path / "pooled.db", "select count(*) n from configs") == [{"n": 9}]


def test_git_memory_bounds_apply_from_the_first_repository_opened(repo, tmp_path):
    # libgit2 keeps a pack open for the whole process with the settings of the time it
    # was first read: the CLI checks the source (opening it) before the ingest starts
    import subprocess
    import sys

    from aureacore_db.prefetch import GIT_MAPPED_BYTES, GIT_WINDOW_BYTES

    repo.service("store")
    repo.commit("store")
    script = ("import sys, pygit2\n"
              "from aureacore_db.gitsource import open_source\n"
              "open_source(sys.argv[1], sys.argv[2], 'main')\n"
              "print(pygit2.settings.mwindow_size, pygit2.settings.mwindow_mapped_limit)\n")
    out = subprocess.run([sys.executable, "-c", script, str(repo.path), str(tmp_path / "x.db")],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(GIT_WINDOW_BYTES), str(GIT_MAPPED_BYTES)]


def test_a_commit_of_many_configs_shares_their_strings(repo, tmp_path):
    # a first commit brings every service at once: its checks share one copy of each
    # key and short value (in the worker, in its message and in the walk's state)
    from aureacore_db import prefetch

    for i in range(prefetch.SHARE_FROM):
        repo.service(f"svc-{i}", owner="team-a", parameters={"replicas": i % 3})
    sha = repo.commit("many services")
    prefetch._init(str(repo.path), 1 << 20)  # as a worker does, in this process
    [(got, updates, checks)] = prefetch._prepare([sha])
    assert got == sha and updates is None and len(checks) == prefetch.SHARE_FROM
    one, two = (c.content for c in list(checks.values())[:2])
    assert [k for k in one] == [k for k in two]
    assert all(a is b for a, b in zip(one, two, strict=True))
    assert one["owner"] is two["owner"]
    assert one["parameters"] is next(iter(checks.values())).parameters  # still one object

    single, pooled = tmp_path / "single.db", tmp_path / "pooled.db"
    Ingest(str(repo.path), single, workers=0).run()
    Ingest(str(repo.path), pooled, workers=2).run()
    for name, sql in TABLES.items():
        assert rows(single, sql) == rows(pooled, sql), name
