"""Hostile content: each becomes an ERROR row with a readable message, nothing is followed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import GitRepo, rows, run_ingest

PASSWD = Path("/etc/passwd")


def commit_index(repo: GitRepo, message: str) -> str:
    """Commit what is staged, without ``git add -A`` (keeps gitlinks in the index)."""
    repo.git("commit", "-q", "-m", message,
             env={"GIT_AUTHOR_DATE": "2025-01-01T00:00:00Z",
                  "GIT_COMMITTER_DATE": "2025-01-01T00:00:00Z"})
    return repo.head()


def only_error(db_path: Path, sid: str) -> dict:
    """The one problem of ``sid`` at the tip, which must be an ERROR."""
    svc = rows(db_path, "select status, status_message, config_id from services where id = ?",
               (sid,))
    assert svc, f"no service {sid}: {rows(db_path, 'select id from services')}"
    assert svc[0]["status"] == "ERROR"
    problems = rows(db_path, "select severity, kind, json_path, message from validation_errors "
                             "where service_id = ?", (sid,))
    assert len(problems) == 1, problems
    assert problems[0]["severity"] == "error"
    assert problems[0]["message"] and problems[0]["message"] in svc[0]["status_message"]
    return problems[0]


def db_text(db_path: Path) -> str:
    """Every value of every table, as text."""
    import sqlite3

    conn = sqlite3.connect(db_path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def assert_passwd_not_in_db(db_path: Path) -> None:
    if not PASSWD.exists():
        return
    text = db_text(db_path)
    for line in PASSWD.read_text(errors="replace").splitlines()[:3]:
        if line.strip():
            assert line not in text


def with_good_neighbour(repo: GitRepo) -> None:
    repo.service("good", version="1.0.0")


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
name: bomb
version: "1.0.0"
"""

CASES = {
    "not-utf8": (b"name: caf\xe9\nversion: '1.0.0'\n", "not UTF-8"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
    "empty": (b"", "empty"),
    "only-comment": (b"# nothing here yet\n", "empty"),
    "top-level-list": (b"- name: x\n- name: y\n", "mapping"),
    "top-level-string": (b"just a string\n", "mapping"),
    "bomb": (BILLION_LAUGHS.encode(), "alias bomb"),
    "deep": (b"a: " + b"[" * 200 + b"]" * 200 + b"\n", "deeper"),
}


@pytest.mark.parametrize("stem", sorted(CASES))
def test_unreadable_content_is_an_error_row(repo, db_path, stem):
    data, expected = CASES[stem]
    repo.write(f"services/platform/{stem}.yaml", data)
    with_good_neighbour(repo)
    sha = repo.commit(f"hostile {stem}")
    started = time.monotonic()
    result = run_ingest(repo, db_path)
    assert time.monotonic() - started < 10
    assert result.outcome == "ok" and result.services == 2 and result.services_in_error == 1
    problem = only_error(db_path, f"platform/{stem}")
    assert problem["kind"] == "parse"
    assert expected.lower() in problem["message"].lower()
    history = rows(db_path, "select change, status, config_id from history "
                            "where service_id = ? and commit_sha = ?", (f"platform/{stem}", sha))
    assert history[0]["change"] == "added" and history[0]["status"] == "ERROR"
    config = rows(db_path, "select content, parse_error from configs where id = ?",
                  (history[0]["config_id"],))
    assert config[0]["content"] is None and config[0]["parse_error"]
    assert rows(db_path, "select status from services where id = 'platform/good'") == [
        {"status": "CONFIGURED"}]


def test_not_text_content_is_not_stored_as_raw(repo, db_path):
    repo.write("services/platform/bin.yaml", b"\x00\xff\xfe binary")
    repo.write("services/platform/latin.yaml", b"name: caf\xe9\n")
    repo.commit("not text")
    run_ingest(repo, db_path)
    assert rows(db_path, "select raw from configs") == [{"raw": None}, {"raw": None}]


def test_over_the_size_limit_is_error_and_not_read(repo, db_path):
    repo.service("big", description="x" * 2000)
    with_good_neighbour(repo)
    repo.commit("a big file")
    result = run_ingest(repo, db_path, max_bytes=512)
    assert result.services_in_error == 1
    problem = only_error(db_path, "platform/big")
    assert problem["kind"] == "parse"
    assert "512" in problem["message"] and "limit" in problem["message"]
    config = rows(db_path, "select raw, content from configs c join services s "
                           "on s.config_id = c.id where s.id = 'platform/big'")
    assert config == [{"raw": None, "content": None}]
    assert "x" * 100 not in db_text(db_path)


def test_python_tags_are_not_constructed(repo, db_path, tmp_path):
    marker = tmp_path / "pwned"
    repo.write("services/platform/evil.yaml",
               f'name: evil\nversion: "1.0.0"\n'
               f'metadata: !!python/object/apply:os.system ["touch {marker}"]\n')
    repo.write("services/platform/tagged.yaml",
               'name: tagged\nversion: "1.0.0"\nmetadata: !custom {a: 1}\n')
    with_good_neighbour(repo)
    repo.commit("tags")
    run_ingest(repo, db_path)
    assert not marker.exists()
    for sid in ("platform/evil", "platform/tagged"):
        problem = only_error(db_path, sid)
        assert problem["kind"] == "parse" and "YAML" in problem["message"]
    assert rows(db_path, "select status from services where id = 'platform/good'") == [
        {"status": "CONFIGURED"}]


def test_symlink_service_file_is_not_followed(repo, db_path):
    (repo.path / "services/platform").mkdir(parents=True)
    os.symlink("/etc/passwd", repo.path / "services/platform/passwd.yaml")
    os.symlink("/etc", repo.path / "services/etc")  # a linked folder is not walked
    with_good_neighbour(repo)
    repo.commit("symlinks")
    result = run_ingest(repo, db_path)
    assert result.outcome == "ok"
    problem = only_error(db_path, "platform/passwd")
    assert "symbolic link" in problem["message"]
    ids = {r["id"] for r in rows(db_path, "select id from services")}
    assert ids == {"platform/passwd", "platform/good"}
    assert_passwd_not_in_db(db_path)


def test_symlink_replacing_a_good_file_keeps_the_service_and_is_error(repo, db_path):
    repo.service("auth-service")
    repo.commit("good file")
    target = repo.path / "services/platform/auth-service.yaml"
    target.unlink()
    os.symlink("/etc/passwd", target)
    sha = repo.commit("replace with a link")
    run_ingest(repo, db_path)
    status = rows(db_path, "select status, message from status where commit_sha = ?", (sha,))
    assert len(status) == 1 and status[0]["status"] == "ERROR"
    assert "symbolic link" in status[0]["message"]
    assert_passwd_not_in_db(db_path)


def test_submodule_where_a_service_file_is_expected(repo, db_path):
    with_good_neighbour(repo)
    first = repo.commit("good")
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{first},services/x/y.yaml")
    commit_index(repo, "gitlink")
    result = run_ingest(repo, db_path)
    assert result.outcome == "ok" and result.commits == 2
    problem = only_error(db_path, "x/y")
    assert "submodule" in problem["message"].lower()


def test_root_file_config_path_escaping_the_repo_is_not_followed(repo, db_path):
    repo.write("aureacore.yaml", {
        "version": "1.0.0",
        "global": {"config_dir": "services", "default_namespace": "default"},
        "services": [
            {"name": "passwd", "config_path": "../../etc/passwd"},
            {"name": "absolute", "config_path": "/etc/passwd"},
            {"name": "good", "config_path": "good.yaml"},
        ],
    })
    repo.write("services/good.yaml", {"name": "good", "version": "1.0.0"})
    repo.commit("escaping paths")
    result = run_ingest(repo, db_path)
    assert result.outcome == "ok"
    for sid in ("default/passwd", "default/absolute"):
        problem = only_error(db_path, sid)
        assert "../../etc/passwd" in problem["message"] or "/etc/passwd" in problem["message"]
        assert "not followed" in problem["message"] or "leaves" in problem["message"]
    assert rows(db_path, "select status from services where id = 'default/good'") == [
        {"status": "CONFIGURED"}]
    assert_passwd_not_in_db(db_path)


def test_root_file_config_dir_escaping_the_repo_is_an_error(repo, db_path):
    # "names like ../../etc" must be an ERROR, not silently replaced by another folder
    repo.write("aureacore.yaml", {
        "global": {"config_dir": "../../etc"},
        "services": [{"name": "passwd", "config_path": "passwd"}],
    })
    repo.write("services/passwd", "name: passwd\nversion: '1.0.0'\n")
    repo.commit("escaping config_dir")
    result = run_ingest(repo, db_path)
    assert result.outcome == "ok"
    svc = rows(db_path, "select id, status, status_message from services")
    assert len(svc) == 1 and svc[0]["status"] == "ERROR"
    assert "config_dir" in svc[0]["status_message"] or "../../etc" in svc[0]["status_message"]
    assert_passwd_not_in_db(db_path)


def test_all_hostile_inputs_in_one_history_never_crash(repo, db_path):
    for stem, (data, _expected) in CASES.items():
        repo.write(f"services/platform/{stem}.yaml", data)
    os.symlink("/etc/passwd", repo.path / "services/platform/link.yaml")
    with_good_neighbour(repo)
    repo.git("add", "-A")
    repo.git("update-index", "--add", "--cacheinfo",
             "160000,0123456789abcdef0123456789abcdef01234567,services/x/y.yaml")
    first = commit_index(repo, "everything at once")
    for stem in CASES:
        repo.service(stem)  # all fixed
    repo.git("add", "services/platform")
    commit_index(repo, "fix everything")
    result = run_ingest(repo, db_path, max_bytes=4096)
    assert result.outcome == "ok" and result.commits == 2
    statuses = {r["id"]: r["status"] for r in rows(db_path, "select id, status from services")}
    assert statuses == {**{f"platform/{s}": "CONFIGURED" for s in CASES},
                        "platform/link": "ERROR", "platform/good": "CONFIGURED",
                        "x/y": "ERROR"}
    first_errors = rows(db_path, "select count(distinct service_id) n from validation_errors "
                                 "where commit_sha = ?", (first,))
    assert first_errors == [{"n": len(CASES) + 2}]
    assert_passwd_not_in_db(db_path)
