"""Prefetch workers (diffs and parsing in other processes) change speed, not results."""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import fields, replace
from pathlib import Path

import pytest
from conftest import rows

from aureacore_db.ingest import Ingest
from aureacore_db.parsing import parse_config
from aureacore_db.prefetch import _pack, _unpack
from aureacore_db.validation import ConfigCheck, check_config

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


def test_workers_import_this_program_whatever_folder_the_ingest_runs_in(
        repo, tmp_path, monkeypatch):
    # the fork server starts in the current folder: a package of the same name there
    # (another checkout, say) must not be what the workers import
    repo.service("store", parameters={"size": 1})
    repo.commit("store")
    for i in range(3):
        repo.service("store", parameters={"size": i + 2})
        repo.commit(f"change {i}")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "aureacore_db").mkdir(parents=True)
    (elsewhere / "aureacore_db" / "__init__.py").write_text("")
    (elsewhere / "aureacore_db" / "prefetch.py").write_text(
        "def _init(*args):\n    pass\n\n\n"
        "def _prepare(shas):\n    raise RuntimeError('the aureacore_db of another folder')\n")
    monkeypatch.chdir(elsewhere)

    Ingest(str(repo.path), tmp_path / "pooled.db", workers=2).run()
    Ingest(str(repo.path), tmp_path / "single.db", workers=0).run()

    sql = TABLES["parameter_changes"]
    assert rows(tmp_path / "pooled.db", sql) == rows(tmp_path / "single.db", sql)
    assert len(rows(tmp_path / "pooled.db", sql)) == 7  # 4 leaves added, 3 changes


@pytest.mark.parametrize("path, text", [
    ("services/a/api.yaml", "name: api\nversion: 1.2.3\nparameters:\n  replicas: 3\n"
     "  odd key: [1, 2.5, {}]\ndependencies:\n  - service: store\n"
     "    version_constraint: '>=1.0'\n  - b/cache\n"),
    ("services/a/api.yaml", "name: api\nversion: [broken\n"),  # a parse error
    ("services/a/api.yaml", "name: Not A Label\nschema_version: 9.0.0\n"),  # problems
    ("services/a/api.yaml", "name: api\nschema_version: '1.9'\n"),  # a warning
    ("services/a/api.yaml", ""),  # empty
    ("services/a/api.json", '{"name": "api", "parameters": {"t\\tab": "\\u2028"}}'),
])
def test_a_check_sent_by_a_worker_is_the_check_it_made(path, text):
    # workers send checks packed as tuples, without their content (its JSON text is
    # enough): unpacked, each has every value of the original, the content included
    check = check_config(parse_config(text.encode(), path))
    sent = _unpack(pickle.loads(pickle.dumps(_pack(check))))
    assert sent.readable == (check.content is not None)
    assert "content" not in vars(sent)  # not decoded until read
    for name in [f.name for f in fields(ConfigCheck) if f.name != "parse"]:
        assert getattr(sent, name) == getattr(check, name), name
    assert replace(sent.parse, content=check.content) == check.parse
    for name in ("content", "readable", "flat", "columns_json", "has_errors"):
        assert getattr(sent, name) == getattr(check, name), name


KEEP_WORKERS = """
import sys, time
import pygit2
from aureacore_db.prefetch import prepared
repo = pygit2.Repository(sys.argv[1])
oids = [c.id for c in repo.walk(repo.head.target)][::-1]
results = prepared(sys.argv[1], oids, 1 << 20, workers=2)
next(results)  # the workers wait for more tasks
print("ready", flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_workers_and_fork_server_end_when_the_ingest_is_killed(repo, tmp_path):
    """kill -9 of an ingest leaves no worker waiting forever on its task queue (nor the
    fork server, which lives as long as a worker does)."""
    import signal
    import subprocess
    import sys
    import time

    repo.service("store", parameters={"size": 1})
    repo.commit("store")
    for i in range(3):
        repo.service("store", parameters={"size": i + 2})
        repo.commit(f"change {i}")
    ingest = subprocess.Popen([sys.executable, "-c", KEEP_WORKERS, str(repo.path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert ingest.stdout.readline().strip() == "ready"
        servers = [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()
                   and _parent(int(e.name)) == ingest.pid
                   and b"forkserver" in _cmdline(int(e.name))]
        assert len(servers) == 1
        workers = [int(e.name) for e in Path("/proc").iterdir()
                   if e.name.isdigit() and _parent(int(e.name)) == servers[0]]
        assert workers
    finally:
        ingest.send_signal(signal.SIGKILL)
        ingest.wait()
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in [*servers, *workers]) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for the processes to end, with a deadline
    assert [pid for pid in [*servers, *workers] if alive(pid)] == []


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
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

    from aureacore_db.prefetch import GIT_MAPPED_BYTES, GIT_WINDOW_BYTES, MAIN_MAPPED_BYTES

    repo.service("store")
    repo.commit("store")
    script = ("import sys, pygit2\n"
              "from aureacore_db.gitsource import open_source\n"
              "open_source(sys.argv[1], sys.argv[2], 'main')\n"
              "print(pygit2.settings.mwindow_size, pygit2.settings.mwindow_mapped_limit)\n")
    out = subprocess.run([sys.executable, "-c", script, str(repo.path), str(tmp_path / "x.db")],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(GIT_WINDOW_BYTES), str(MAIN_MAPPED_BYTES)]
    # a worker, which diffs trees, maps more
    script = ("import sys, pygit2\n"
              "from aureacore_db import prefetch\n"
              "prefetch._init(sys.argv[1], 1 << 20)\n"
              "print(pygit2.settings.mwindow_mapped_limit)\n")
    out = subprocess.run([sys.executable, "-c", script, str(repo.path)],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(GIT_MAPPED_BYTES)]




def test_a_sent_check_keeps_its_content_once_its_texts_are_dropped():
    # once its configs row is written the walk drops a check's texts; a check sent by a
    # worker decodes its content from the JSON text, so that one must stay (a parameter
    # schema added later validates every service's parameters again)
    text = "name: api\nversion: 1.0.0\nparameters:\n  replicas: 3\n"
    sent = _unpack(_pack(check_config(parse_config(text.encode(), "services/a/api.yaml"))))
    sent.forget_text()
    assert sent.parse.raw is None
    assert sent.content["parameters"] == {"replicas": 3}
    assert sent.parameters == {"replicas": 3}


def test_commits_sent_by_workers_are_stored_as_the_walk_reads_them(repo, tmp_path):
    # the workers read each commit for the walk (gitsource.CommitInfo): a merge, an
    # author of another time zone and a message in a declared legacy encoding come out
    # as a single process stores them
    repo.service("api", parameters={"replicas": 1})
    repo.commit("first")
    repo.git("checkout", "-q", "-b", "side")
    repo.service("api", parameters={"replicas": 2})
    repo.commit("on the side", author="Zoë Side <zoe@example.com>")
    repo.git("checkout", "-q", "main")
    repo.service("store")
    repo.commit("store")
    repo.git("merge", "-q", "--no-ff", "-m", "merge side", "side")
    repo.service("store", version="1.1.0")
    repo.git("add", "-A")
    message = tmp_path / "message"
    message.write_bytes("café latin-1\n".encode("latin-1"))
    repo.git("-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "-F", str(message),
             env={"GIT_AUTHOR_DATE": "2025-02-01T10:00:00+05:30"})
    single, pooled = tmp_path / "single.db", tmp_path / "pooled.db"
    Ingest(str(repo.path), single, workers=0).run()
    Ingest(str(repo.path), pooled, workers=2).run()

    every = "select * from commits order by seq"
    stored = rows(pooled, every)
    assert stored == rows(single, every)
    assert len(stored) == 5 and any(len(json.loads(r["parents"])) == 2 for r in stored)
    assert "café latin-1\n" in {r["message"] for r in stored}
    assert "2025-02-01T04:30:00Z" in {r["authored_at"] for r in stored}


def test_forget_packs_lets_go_of_the_pack_index_and_lookups_go_on(repo):
    import pygit2

    from aureacore_db.gitsource import canonical_order, forget_packs

    for i in range(3):
        repo.service("api", parameters={"replicas": i})
        repo.commit(f"change {i}")
    repo.git("gc", "-q")
    git = pygit2.Repository(str(repo.path))
    order = canonical_order(git, git.head.target)

    packs = str(repo.path / ".git" / "objects" / "pack")

    def index_mapped() -> bool:  # this repository's pack index, mapped in this process
        return any(packs in line and line.endswith(".idx")
                   for line in Path("/proc/self/maps").read_text().splitlines())

    assert index_mapped()
    forget_packs(git)
    assert not index_mapped()
    assert git[order[-1]].message == "change 2\n"  # opened again when needed
