"""Hardening of the Git walk and Git writes (issue 8): odd paths, odd commits, odd
repositories. Every repository here is real, built with the git CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import GitRepo, rows
from test_gitprovider import GitDaemon, bare_from, git
from test_registry_failures import derived
from test_web_pages import Client

from aureacore_db.cli import cli
from aureacore_db.ingest import Ingest, ingest
from aureacore_db.models import ServiceConfig
from aureacore_db.registry import ServiceRegistry
from aureacore_db.rollback import RollbackRefused, rollback
from aureacore_db.web import make_datasette

ROOT = {"id": "root"}
CAFE = b"services/caf\xe9/x.yaml"  # Latin-1 folder name
XFF = b"services/x\xff.yaml"  # Latin-1 file name


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def write_bytes_path(repo: GitRepo, rel: bytes, text: str) -> None:
    """Write a file whose name is raw bytes (not UTF-8)."""
    target = os.fsencode(repo.path) + b"/" + rel
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as handle:
        handle.write(text.encode())


def no_surrogates(db_path: Path) -> None:
    """Every TEXT value of every table is valid UTF-8 (SQLite holds no lone surrogates)."""
    conn = sqlite3.connect(db_path)
    conn.text_factory = bytes
    try:
        tables = [r[0].decode() for r in conn.execute(
            "select name from sqlite_master where type = 'table'")]
        for table in tables:
            for row in conn.execute(f"select * from [{table}]"):
                for value in row:
                    if isinstance(value, bytes):
                        value.decode("utf-8")  # raises on anything else
    finally:
        conn.close()


# -- non-UTF-8 paths --------------------------------------------------------------------

@pytest.fixture
def latin1_repo(repo: GitRepo) -> GitRepo:
    repo.service("auth")
    write_bytes_path(repo, CAFE, 'version: "1.0.0"\n')
    write_bytes_path(repo, XFF, 'name: odd\nversion: "1.0.0"\n')
    repo.commit("odd names")
    write_bytes_path(repo, XFF, 'name: odd\nversion: "1.1.0"\n')
    repo.commit("change the odd one")
    return repo


@pytest.mark.parametrize("workers", [0, 2])  # in this process, and in prefetch workers
def test_non_utf8_paths_are_ingested_with_escaped_text(latin1_repo, db_path, workers):
    result = Ingest(str(latin1_repo.path), db_path, workers=workers).run()
    assert result.commits_added == 2
    services = {r["id"]: r for r in rows(db_path, "select * from services")}
    assert services["default/odd"]["path"] == "services/x\\377.yaml"
    assert services["default/odd"]["version"] == "1.1.0"
    cafe = services["caf\\351/x"]
    assert cafe["path"] == "services/caf\\351/x.yaml"
    assert cafe["status"] == "ERROR" and "not a valid DNS label" in cafe["status_message"]
    assert [r["change"] for r in rows(
        db_path, "select change from history where service_id = 'default/odd' order by seq")
    ] == ["added", "modified"]
    no_surrogates(db_path)
    assert ingest(latin1_repo.path, db_path).commits_added == 0


def test_cli_ingest_and_validate_show_non_utf8_paths(latin1_repo, db_path):
    done = invoke("ingest", latin1_repo.path, "--db", db_path)
    assert done.exit_code == 0, done.output
    assert "2 new commits" in done.output
    checked = invoke("validate", latin1_repo.path)
    assert checked.exception is None or isinstance(checked.exception, SystemExit), \
        checked.output
    assert checked.exit_code == 1
    assert "caf\\351/x.yaml" in checked.output and "not a valid DNS label" in checked.output
    assert "x\\377.yaml" not in checked.output  # it is valid


def test_rollback_finds_a_non_utf8_path_again(latin1_repo, db_path):
    ingest(latin1_repo.path, db_path)
    first = latin1_repo.git("rev-list", "--max-parents=0", "HEAD")
    result = rollback(db_path, "default/odd", first, actor=ROOT)
    assert result.ok and result.path == "services/x\\377.yaml"
    shown = subprocess.run(["git", "show", b"HEAD:" + XFF], cwd=latin1_repo.path,
                           capture_output=True, check=True).stdout
    assert shown == b'name: odd\nversion: "1.0.0"\n'
    assert latin1_repo.git("status", "--porcelain") == ""
    assert rows(db_path, "select version from services where id = 'default/odd'") == [
        {"version": "1.0.0"}]


def test_registering_again_overwrites_the_non_utf8_file(repo, db_path):
    """A service whose file has a non-UTF-8 name gets its new version in that same file,
    and the commit touches exactly that path."""
    repo.service("auth")
    write_bytes_path(repo, CAFE, 'name: x\nnamespace: cafe\nversion: "1.0.0"\n')
    repo.commit("a Latin-1 folder")
    ingest(repo.path, db_path)
    assert rows(db_path, "select path from services where id = 'cafe/x'") == [
        {"path": "services/caf\\351/x.yaml"}]

    result = ServiceRegistry(db_path, repo.path).register_service(
        ServiceConfig(name="x", namespace="cafe", version="2.0.0"))

    assert result.status == "CONFIGURED" and result.path == "services/caf\\351/x.yaml"
    touched = subprocess.run(["git", "diff-tree", "--no-commit-id", "-r", "-z", "--name-only",
                              "HEAD"], cwd=repo.path, capture_output=True, check=True).stdout
    assert touched.split(b"\0")[:-1] == [CAFE]
    shown = subprocess.run(["git", "show", b"HEAD:" + CAFE], cwd=repo.path,
                           capture_output=True, check=True).stdout
    assert b"2.0.0" in shown
    assert not (repo.path / "services" / "cafe").exists()  # no second file elsewhere
    assert repo.git("status", "--porcelain") == ""
    assert rows(db_path, "select version, path from services where id = 'cafe/x'") == [
        {"version": "2.0.0", "path": "services/caf\\351/x.yaml"}]


# -- odd commits ------------------------------------------------------------------------

def raw_commit(repo: GitRepo, tree: str, parent: str | None, author: bytes, when: bytes,
               encoding: bytes | None = None, message: bytes = b"msg\n") -> str:
    """A commit object written byte for byte (as ``git hash-object`` checks it)."""
    lines = [b"tree " + tree.encode()]
    if parent:
        lines.append(b"parent " + parent.encode())
    lines += [b"author " + author + b" " + when, b"committer " + author + b" " + when]
    if encoding is not None:
        lines.append(b"encoding " + encoding)
    body = b"\n".join(lines) + b"\n\n" + message
    return subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"],
                          cwd=repo.path, input=body, capture_output=True,
                          check=True).stdout.decode().strip()


def odd_history(repo: GitRepo) -> list[str]:
    repo.service("auth")
    repo.commit("base")
    tree = repo.git("rev-parse", "HEAD^{tree}")
    parent = repo.head()
    shas = []
    cases = [
        (b"A\xe9 <a\x01@b.org>", b"1700000000 +0000", b"nonsense-codec", b"caf\xe9 \xff\n"),
        (b"Jos\xe9 <jose@b.org>", b"253402300800 +0000", b"ISO-8859-1", b"ol\xe9\n"),
        (b"Big <big@b.org>", b"99999999999999 +9959", None, b"far future\n"),
        (b"Old \x7f\x1b[31m <old@b.org>", b"-1 -0130", b"base64", b"before 1970 \xc3\n"),
        (b"Zero <z@b.org>", b"0 +0000", b"utf-16", b"\xd8\xd8\xd8"),
    ]
    for author, when, encoding, message in cases:
        parent = raw_commit(repo, tree, parent, author, when, encoding, message)
        shas.append(parent)
    repo.git("update-ref", "refs/heads/main", parent)
    return shas


@pytest.mark.parametrize("workers", [0, 2])
def test_commits_with_odd_metadata_are_stored(repo, db_path, workers):
    shas = odd_history(repo)
    result = Ingest(str(repo.path), db_path, workers=workers).run()
    assert result.commits_added == 6
    got = {r["sha"]: r for r in rows(db_path, "select * from commits")}
    unknown, latin1, future, old, zero = (got[s] for s in shas)
    assert unknown["author_name"] == "A\ufffd" and unknown["author_email"] == "a\x01@b.org"
    assert unknown["message"] == "caf\ufffd \ufffd\n"
    assert latin1["author_name"] == "José" and latin1["message"] == "olé\n"
    assert latin1["committed_at"] == "+10000-01-01T00:00:00Z"
    assert future["committed_at"] == "+3170843-11-07T09:46:39Z"
    assert old["authored_at"] == "1969-12-31T23:59:59Z"
    assert old["message"] == "before 1970 \ufffd\n"  # base64 is no text codec: UTF-8
    assert zero["authored_at"] == "1970-01-01T00:00:00Z" and "\ufffd" in zero["message"]
    no_surrogates(db_path)
    assert ingest(repo.path, db_path).commits_added == 0


def test_cli_ingest_of_odd_commits_does_not_crash(repo, db_path):
    odd_history(repo)
    done = invoke("ingest", repo.path, "--db", db_path)
    assert done.exit_code == 0, done.output
    assert "6 new commits" in done.output


# -- rollback in odd places -------------------------------------------------------------

def test_rollback_over_a_symlink_writes_a_regular_file(repo, db_path):
    repo.service("auth", version="1.0.0")
    first = repo.commit("v1")
    path = repo.path / "services/platform/auth.yaml"
    path.unlink()
    (repo.path / "elsewhere.yaml").write_text("name: auth\nversion: 9.9.9\n")
    path.symlink_to("../../elsewhere.yaml")
    repo.commit("now a link")
    ingest(repo.path, db_path)
    result = rollback(db_path, "platform/auth", first, actor=ROOT, confirm=True)
    assert result.ok
    mode = repo.git("ls-tree", "HEAD", "services/platform/auth.yaml").split()[0]
    assert mode == "100644"
    assert not path.is_symlink() and "1.0.0" in path.read_text()
    assert rows(db_path, "select status from services where id = 'platform/auth'") == [
        {"status": "CONFIGURED"}]


@pytest.fixture
def unsafe_repo(repo: GitRepo) -> GitRepo:
    root = {"version": "1.0.0", "global": {"config_dir": "services"},
            "services": [{"name": "auth", "namespace": "platform",
                          "config_path": "platform/auth.yaml"}]}
    repo.write("aureacore.yaml", root)
    repo.service("auth")
    repo.commit("root layout")
    root["services"][0]["config_path"] = "../../etc/passwd"
    repo.write("aureacore.yaml", root)
    repo.commit("point outside")
    return repo


def test_rollback_of_an_unsafe_path_is_a_clear_refusal(unsafe_repo, db_path):
    ingest(unsafe_repo.path, db_path)
    assert rows(db_path, "select path from services")[0]["path"].startswith("<unsafe:")
    head = unsafe_repo.head()
    with pytest.raises(RollbackRefused) as refused:
        rollback(db_path, "platform/auth", "HEAD~1", actor=ROOT, confirm=True)
    assert refused.value.status == 400 and "leaves" in str(refused.value)
    done = invoke("rollback", "platform/auth", "--to", head[:8] + "~1", "--db", db_path,
                  "--yes")
    assert done.exit_code != 0
    errors = [line for line in done.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "unsafe_path" in errors[0], done.output
    assert "Traceback" not in done.output and unsafe_repo.head() == head
    client = Client(make_datasette(db_path))
    try:
        page = "/-/aureacore/services/platform/auth"
        csrf, cookies = client.form(page, ROOT)
        response = client.post(page + "/rollback.json", cookies=cookies, data={
            "to": unsafe_repo.git("rev-parse", "HEAD~1"), "confirm": "1",
            "csrftoken": csrf, "expected_head": head})
        assert 400 <= response.status_code < 500, response.text
        assert "leaves" in response.json()["message"]
    finally:
        client.close()
    assert [r["outcome"] for r in rows(db_path, "select outcome from rollbacks")][-1] == \
        "unsafe_path"


# -- URL sources: one clone, rollback and register push to the URL ------------------------

def served_bare(repo: GitRepo, base: Path) -> Path:
    repo.service("auth", version="1.0.0")
    repo.commit("v1")
    repo.service("auth", version="1.1.0")
    repo.commit("v2")
    base.mkdir(exist_ok=True)
    return bare_from(repo, base / "configs.git")


def check_url_rollback(url: str, bare: Path, tmp_path: Path, db_path: Path) -> None:
    ingest(url, db_path)
    first = git(bare, "rev-list", "--max-parents=0", "main")
    done = invoke("rollback", "platform/auth", "--to", first[:8], "--db", db_path, "--yes",
                  "--actor", "dana")
    assert done.exit_code == 0, done.output
    assert "pushed to origin" in done.output
    assert "1.0.0" in git(bare, "show", "main:services/platform/auth.yaml")
    assert git(bare, "log", "-1", "--format=%an", "main") == "dana"
    assert rows(db_path, "select version from services") == [{"version": "1.0.0"}]
    assert rows(db_path, "select outcome, pushed from rollbacks") == [
        {"outcome": "ok", "pushed": 1}]
    registry = ServiceRegistry(db_path, url, timeout=20)
    registered = registry.register_service(
        ServiceConfig(name="users", namespace="platform", version="1.0.0"))
    assert registered.status == "CONFIGURED"
    assert git(bare, "rev-parse", "main") == registered.commit
    assert ingest(url, db_path).commits_added == 0
    from aureacore_db.gitsource import clone_dir

    homes = [p.parent for p in tmp_path.rglob("HEAD") if (p.parent / "objects").is_dir()
             and p.parent.is_relative_to(db_path.parent / f"{db_path.name}.repos")]
    assert homes == [clone_dir(url, db_path) / ".git"]  # one clone for ingest and registry


def test_rollback_and_register_on_a_file_url(repo, tmp_path):
    bare = served_bare(repo, tmp_path / "served")
    data = tmp_path / "data"
    data.mkdir()
    check_url_rollback(bare.as_uri(), bare, tmp_path, data / "registry.db")


def test_rollback_and_register_on_a_git_daemon(repo, tmp_path):
    bare = served_bare(repo, tmp_path / "served")
    daemon = GitDaemon(tmp_path / "served").start()
    try:
        data = tmp_path / "data"
        data.mkdir()
        check_url_rollback(daemon.url("configs.git"), bare, tmp_path, data / "registry.db")
    finally:
        daemon.kill()


def test_url_rollback_after_someone_pushed_says_so(repo, tmp_path, db_path):
    bare = served_bare(repo, tmp_path / "served")
    ingest(bare.as_uri(), db_path)
    first = git(bare, "rev-list", "--max-parents=0", "main")
    repo.write("README.md", "someone else\n")
    repo.commit("concurrent")
    repo.git("push", "-q", str(bare), "main")
    with pytest.raises(RollbackRefused) as refused:
        rollback(db_path, "platform/auth", first, actor=ROOT)
    assert refused.value.result.outcome == "push_rejected"
    assert "pushed first" in str(refused.value)


# -- shallow clones -----------------------------------------------------------------------

def test_unshallowed_clone_gets_its_older_history(repo, tmp_path, db_path):
    repo.service("auth", version="1.0.0")
    repo.commit("one")
    repo.service("users", dependencies=[{"service": "auth"}])
    repo.commit("two")
    repo.service("auth", version="1.1.0")
    repo.commit("three")
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", repo.path.as_uri(), str(clone)],
                   check=True)
    first = invoke("ingest", clone, "--db", db_path)
    assert first.exit_code == 0, first.output
    assert "shallow clone" in first.output and "1 new commits" in first.output
    assert "shallow clone" in rows(db_path, "select message from ingest_runs")[0]["message"]
    subprocess.run(["git", "fetch", "-q", "--unshallow"], cwd=clone, check=True)
    second = invoke("ingest", clone, "--db", db_path)
    assert second.exit_code == 0, second.output
    assert "3 in all" in second.output and "re-ingested" in second.output
    fresh = tmp_path / "fresh.db"
    ingest(clone, fresh)
    assert derived(db_path) == derived(fresh)
    assert ingest(clone, db_path).commits_added == 0
    assert json.loads(json.dumps(rows(db_path, "select count(*) n from commits"))) == [
        {"n": 3}]


def test_a_bare_cache_of_an_earlier_release_is_replaced_by_the_one_clone(repo, tmp_path,
                                                                         db_path):
    from aureacore_db.gitsource import clone_dir

    bare = served_bare(repo, tmp_path / "served")
    url = bare.as_uri()
    old_cache = clone_dir(url, db_path)
    old_cache.parent.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", url, str(old_cache)], check=True)
    assert ingest(url, db_path).commits_added == 2
    assert (old_cache / ".git").is_dir()
    first = git(bare, "rev-list", "--max-parents=0", "main")
    assert rollback(db_path, "platform/auth", first, actor=ROOT).pushed
    assert "1.0.0" in git(bare, "show", "main:services/platform/auth.yaml")
