"""Bad input on the command line: one clear ``Error:`` line, a non-zero exit, no
traceback, and no file created or changed that should not be."""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import GitRepo, rows, run_ingest

from aureacore_db import cli_common
from aureacore_db.cli import cli
from aureacore_db.db import connect

SERVICE = "platform/user-service"


def invoke(*args: str | Path):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_clean_error(result, *needles: str, code: int | None = None) -> None:
    """Non-zero exit, click's ``Error:`` line naming the problem, no traceback."""
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "Traceback" not in result.output
    assert "Error: " in result.stderr, result.output
    for needle in needles:
        assert needle in result.stderr, result.stderr


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (outside .git) with a hash of its bytes."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and ".git" not in path.relative_to(folder).parts:
            found[str(path.relative_to(folder))] = hashlib.sha1(path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def ingested(repo: GitRepo, db_path: Path) -> GitRepo:
    repo.service("user-service")
    repo.commit("add user")
    run_ingest(repo, db_path)
    return repo


@pytest.fixture
def text_db(tmp_path: Path) -> Path:
    path = tmp_path / "notes.db"
    path.write_text("not a database\n")
    return path


@pytest.fixture
def foreign_db(tmp_path: Path) -> Path:
    path = tmp_path / "other-app.db"
    conn = sqlite3.connect(path)
    conn.execute("create table customers (id integer primary key, name text)")
    conn.execute("insert into customers (name) values ('Ada')")
    conn.commit()
    conn.close()
    return path


# -- ingest -------------------------------------------------------------------------

def test_ingest_missing_path_creates_no_database(tmp_path, db_path):
    result = invoke("ingest", tmp_path / "nope", "--db", db_path)
    assert_clean_error(result, "nope", "no such folder")
    assert not db_path.exists()


def test_ingest_folder_that_is_not_a_git_repo(tmp_path, db_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    result = invoke("ingest", plain, "--db", db_path)
    assert_clean_error(result, "not a Git repository")
    assert not db_path.exists()


@pytest.mark.parametrize("init", [["-b", "main"], []])
def test_ingest_empty_repo_says_it_has_no_commits(tmp_path, db_path, init):
    empty = tmp_path / "empty"
    subprocess.run(["git", "init", "-q", *init, str(empty)], check=True)
    result = invoke("ingest", empty, "--db", db_path)
    assert_clean_error(result, "no commits yet")
    assert not db_path.exists()


def test_ingest_missing_branch_names_the_branches(ingested, db_path, tmp_path):
    before = snapshot(tmp_path)
    result = invoke("ingest", ingested.path, "--db", db_path, "--branch", "develop")
    assert_clean_error(result, "'develop' not found", "main")
    assert snapshot(tmp_path) == before
    fresh = tmp_path / "fresh.db"
    assert_clean_error(invoke("ingest", ingested.path, "--db", fresh, "--branch", "develop"),
                       "develop")
    assert not fresh.exists()


def test_ingest_db_in_a_missing_folder(repo, tmp_path):
    repo.service("user-service")
    repo.commit("add")
    target = tmp_path / "no" / "such" / "registry.db"
    result = invoke("ingest", repo.path, "--db", target)
    assert_clean_error(result, "does not exist", str(target.parent))
    assert not (tmp_path / "no").exists()


def test_ingest_db_that_is_a_folder(repo, tmp_path):
    repo.service("user-service")
    repo.commit("add")
    folder = tmp_path / "dbdir"
    folder.mkdir()
    result = invoke("ingest", repo.path, "--db", folder)
    assert result.exit_code == 2 and "is a directory" in result.stderr
    assert list(folder.iterdir()) == []


def test_ingest_refuses_a_text_file_as_db_and_leaves_it_alone(repo, text_db, tmp_path):
    repo.service("user-service")
    repo.commit("add")
    before = snapshot(tmp_path)
    result = invoke("ingest", repo.path, "--db", text_db)
    assert_clean_error(result, str(text_db), "not a SQLite database")
    assert snapshot(tmp_path) == before
    assert text_db.read_text() == "not a database\n"


def test_ingest_refuses_another_apps_sqlite_database(repo, foreign_db):
    repo.service("user-service")
    repo.commit("add")
    digest = hashlib.sha1(foreign_db.read_bytes()).hexdigest()
    result = invoke("ingest", repo.path, "--db", foreign_db)
    assert_clean_error(result, "something else", "customers")
    assert hashlib.sha1(foreign_db.read_bytes()).hexdigest() == digest


def test_ingest_into_an_empty_file_is_fine(repo, tmp_path):
    repo.service("user-service")
    repo.commit("add")
    empty = tmp_path / "touched.db"
    empty.touch()
    result = invoke("ingest", repo.path, "--db", empty)
    assert result.exit_code == 0, result.output
    assert rows(empty, "select count(*) n from commits") == [{"n": 1}]


def test_ingest_read_only_database_is_refused(ingested, db_path, monkeypatch):
    monkeypatch.setattr(cli_common, "_writable", lambda path: False)
    digest = hashlib.sha1(db_path.read_bytes()).hexdigest()
    result = invoke("ingest", ingested.path, "--db", db_path)
    assert_clean_error(result, "read-only", str(db_path))
    assert hashlib.sha1(db_path.read_bytes()).hexdigest() == digest


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes read-only files anyway")
def test_ingest_read_only_database_for_real(ingested, db_path):
    db_path.chmod(0o444)
    try:
        result = invoke("ingest", ingested.path, "--db", db_path)
    finally:
        db_path.chmod(0o644)
    assert_clean_error(result, "read-only")


def test_ingest_file_url_that_does_not_exist(tmp_path, db_path):
    url = (tmp_path / "gone").as_uri()
    result = invoke("ingest", url, "--db", db_path)
    assert_clean_error(result, url, "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_ingest_failed_clone_leaves_no_empty_database(ingested, tmp_path):
    """A URL is only checked by cloning it: a failed first clone (here: a missing branch)
    leaves no empty database or clone folder behind."""
    db = tmp_path / "cloned.db"
    result = invoke("ingest", ingested.path.as_uri(), "--db", db, "--branch", "nope")
    assert_clean_error(result, "nope")
    assert not db.exists() and not Path(f"{db}-wal").exists()
    assert not (tmp_path / "cloned.db.repos").exists()


@pytest.mark.parametrize(("value", "needle"), [
    ("garbage", "is not a size"), ("12q", "is not a size"), ("", "is not a size"),
    ("-5", "more than 0"), ("0", "more than 0"), ("inf", "is not a size"),
])
def test_ingest_max_size_garbage_is_a_usage_error(ingested, db_path, value, needle):
    before = rows(db_path, "select count(*) n from ingest_runs")
    result = invoke("ingest", ingested.path, "--db", db_path, "--max-size", value)
    assert_clean_error(result, "--max-size", needle, code=2)
    assert rows(db_path, "select count(*) n from ingest_runs") == before


def test_ingest_of_another_repository_does_not_replace_the_history(ingested, db_path,
                                                                  tmp_path):
    other = GitRepo(tmp_path / "other")
    other.service("billing", namespace="payments")
    other.commit("unrelated history")
    result = invoke("ingest", other.path, "--db", db_path)
    assert_clean_error(result, "holds the history of", "another --db")
    assert rows(db_path, "select id from services") == [{"id": SERVICE}]
    # the same repository, moved: same commits, so it is accepted
    moved = tmp_path / "moved"
    ingested.path.rename(moved)
    assert invoke("ingest", moved, "--db", db_path).exit_code == 0


# -- validate -----------------------------------------------------------------------

def test_validate_missing_path(tmp_path):
    result = invoke("validate", tmp_path / "nope.yaml")
    assert_clean_error(result, "does not exist", code=2)


def test_validate_empty_folder_is_not_silently_ok(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    result = invoke("validate", folder)
    assert_clean_error(result, str(folder), "nothing to check")
    assert "ok" not in result.stderr.split("Error:")[0]


def test_validate_max_size_garbage(tmp_path):
    good = tmp_path / "svc.yaml"
    good.write_text("name: svc\nversion: 1.0.0\n")
    assert_clean_error(invoke("validate", good, "--max-size", "lots"), "is not a size", code=2)


# -- commands that need an ingested database ----------------------------------------

def _needs_db(db: Path, service_file: Path) -> list[list[str]]:
    d = str(db)
    return [
        ["serve", d, "--port", "1"],
        ["query", "errors_now", "--db", d],
        ["rollback", SERVICE, "--to", "HEAD", "--db", d, "--yes"],
        ["deps", SERVICE, "--db", d],
        ["deps", "--cycles", "--db", d],
        ["health", "--db", d],
        ["deliver", "--db", d],
        ["webhooks", "list", "--db", d],
        ["webhooks", "add", "http://127.0.0.1:9/hook", "--db", d],
        ["webhooks", "remove", "x", "--db", d],
        ["sync", "--db", d],
        ["register", str(service_file), "--db", d],
    ]


@pytest.fixture
def service_file(tmp_path: Path) -> Path:
    path = tmp_path / "svc.yaml"
    path.write_text("name: user-service\nnamespace: platform\nversion: 1.0.0\n")
    return path


@pytest.mark.parametrize("index", range(12))
def test_missing_database_is_refused_and_not_created(tmp_path, service_file, index):
    db = tmp_path / "registry.db"
    args = _needs_db(db, service_file)[index]
    result = invoke(*args)
    assert_clean_error(result, str(db), "no such database")
    assert "ingest" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svc.yaml"]


def test_default_database_is_not_created_in_the_working_folder(tmp_path, service_file,
                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["query", "errors_now"], ["deps", SERVICE], ["health"], ["deliver"],
                 ["webhooks", "list"], ["sync"], ["serve", "--port", "1"]):
        assert_clean_error(invoke(*args), "registry.db")
    assert not (tmp_path / "registry.db").exists()


@pytest.mark.parametrize("index", range(12))
def test_text_file_as_database_is_refused_untouched(tmp_path, text_db, service_file, index):
    before = snapshot(tmp_path)
    result = invoke(*_needs_db(text_db, service_file)[index])
    assert_clean_error(result, str(text_db), "not a SQLite database")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("index", range(12))
def test_another_apps_database_is_refused_untouched(tmp_path, foreign_db, service_file,
                                                     index):
    before = snapshot(tmp_path)
    result = invoke(*_needs_db(foreign_db, service_file)[index])
    assert_clean_error(result, "something else", "customers")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("index", range(12))
def test_never_ingested_database_is_refused(tmp_path, service_file, index):
    db = tmp_path / "blank.db"
    connect(db).close()  # the registry tables, no commits
    result = invoke(*_needs_db(db, service_file)[index])
    assert_clean_error(result, str(db))
    assert "ingest" in result.stderr or "pass --repo" in result.stderr
    assert rows(db, "select count(*) n from commits") == [{"n": 0}]


def test_zero_byte_database_stays_zero_bytes(tmp_path, service_file):
    db = tmp_path / "zero.db"
    db.touch()
    for args in _needs_db(db, service_file):
        assert_clean_error(invoke(*args), str(db))
        assert db.stat().st_size == 0, args


@pytest.mark.parametrize("args", [
    ["health"], ["deliver"], ["webhooks", "list"], ["sync"], ["rollback", SERVICE, "--to",
    "HEAD", "--yes"], ["serve", "--port", "1"]])
def test_read_only_database_is_refused_where_it_must_be_written(ingested, db_path,
                                                                monkeypatch, args):
    monkeypatch.setattr(cli_common, "_writable", lambda path: False)
    if args[0] == "serve":
        args = ["serve", str(db_path), *args[1:]]
    else:
        args = [*args, "--db", str(db_path)]
    digest = hashlib.sha1(db_path.read_bytes()).hexdigest()
    assert_clean_error(invoke(*args), "read-only")
    assert hashlib.sha1(db_path.read_bytes()).hexdigest() == digest


def test_sync_with_a_bad_repo_creates_no_database(tmp_path):
    db = tmp_path / "new.db"
    assert_clean_error(invoke("sync", "--db", db, "--repo", tmp_path / "nope"),
                       "no such folder")
    empty = tmp_path / "empty"
    subprocess.run(["git", "init", "-q", "-b", "main", str(empty)], check=True)
    assert_clean_error(invoke("sync", "--db", db, "--repo", empty), "no commits yet")
    assert not db.exists()


def test_register_into_a_new_repository_still_works(tmp_path, service_file):
    """The first service of an empty config repo is not 'no commits' bad input."""
    repo = GitRepo(tmp_path / "configs")
    db = tmp_path / "new.db"
    result = invoke("register", service_file, "--db", db, "--repo", repo.path)
    assert result.exit_code == 0, result.output
    assert rows(db, "select id from services") == [{"id": SERVICE}]


# -- query / rollback / deps with unknown names -------------------------------------

def test_query_unknown_name_lists_the_known_ones(ingested, db_path):
    result = invoke("query", "nope", "--db", db_path)
    assert_clean_error(result, "no canned query 'nope'", "errors_now")


def test_query_missing_and_unknown_parameters(ingested, db_path):
    missing = invoke("query", "parameter_blame", "--db", db_path)
    assert_clean_error(missing, "needs key", "-p key=VALUE")
    unknown = invoke("query", "parameter_blame", "--db", db_path, "-p", "key=x",
                     "-p", "colour=red")
    assert_clean_error(unknown, "no parameter colour")
    malformed = invoke("query", "errors_now", "--db", db_path, "-p", "oops")
    assert_clean_error(malformed, "not KEY=VALUE", code=2)


def test_rollback_unknown_service_or_commit_changes_nothing(ingested, db_path):
    head = ingested.head()
    unknown = invoke("rollback", "platform/nope", "--to", "HEAD", "--db", db_path, "--yes")
    assert_clean_error(unknown, "no service 'platform/nope'")
    commit = invoke("rollback", SERVICE, "--to", "deadbeef", "--db", db_path, "--yes")
    assert_clean_error(commit, "unknown commit 'deadbeef'")
    assert ingested.head() == head and ingested.git("status", "--porcelain") == ""


def test_rollback_with_a_bad_repo(ingested, db_path, tmp_path):
    missing = invoke("rollback", SERVICE, "--to", "HEAD", "--db", db_path, "--yes",
                     "--repo", tmp_path / "nope")
    assert_clean_error(missing, "does not exist", code=2)
    plain = tmp_path / "plain"
    plain.mkdir()
    not_git = invoke("rollback", SERVICE, "--to", "HEAD", "--db", db_path, "--yes",
                     "--repo", plain)
    assert_clean_error(not_git, "not a Git repository")
    other = GitRepo(tmp_path / "other")
    other.service("billing", namespace="payments")
    other.commit("unrelated")
    unrelated = invoke("rollback", SERVICE, "--to", "HEAD", "--db", db_path, "--yes",
                       "--repo", other.path)
    assert_clean_error(unrelated, "holds the history of")
    assert rows(db_path, "select id from services") == [{"id": SERVICE}]


def test_deps_unknown_service_or_commit(ingested, db_path):
    assert_clean_error(invoke("deps", "platform/nope", "--db", db_path),
                       "no service platform/nope")
    assert_clean_error(invoke("deps", SERVICE, "--at", "deadbeef", "--db", db_path),
                       "unknown commit 'deadbeef'")
    assert_clean_error(invoke("deps", "--db", db_path), "give a SERVICE", code=2)


# -- serve ----------------------------------------------------------------------------

def test_serve_bad_port_or_busy_port(ingested, db_path):
    assert_clean_error(invoke("serve", db_path, "--port", "99999"), "--port", code=2)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("serve", db_path, "--port", str(port))
    assert_clean_error(result, f"127.0.0.1:{port}", "another --port")


def test_serve_bad_repo(ingested, db_path, tmp_path):
    assert_clean_error(invoke("serve", db_path, "--repo", tmp_path / "nope", "--port", "1"),
                       "does not exist", code=2)


# -- as a user sees it ----------------------------------------------------------------

def test_console_script_errors_are_one_line(tmp_path, text_db):
    script = Path(sys.executable).with_name("aureacore-db")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "aureacore_db.cli"]
    for args in (["ingest", str(tmp_path), "--db", str(tmp_path / "x" / "r.db")],
                 ["query", "errors_now", "--db", str(text_db)],
                 ["ingest", str(tmp_path), "--max-size", "huge"]):
        done = subprocess.run([*command, *args], capture_output=True, text=True,
                              cwd=tmp_path)
        assert done.returncode != 0
        assert "Traceback" not in done.stderr and "Error: " in done.stderr, done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("Error: ")
