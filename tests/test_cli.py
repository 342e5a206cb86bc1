"""The ``aureacore-db`` command line: ingest and validate."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import GitRepo, rows

from aureacore_db.cli import cli


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def two_commits(repo: GitRepo) -> GitRepo:
    repo.service("user-service")
    repo.commit("add user")
    repo.service("auth-service", dependencies=[{"service": "billing"}])  # missing -> ERROR
    repo.commit("add auth")
    return repo


# -- ingest -------------------------------------------------------------------------------

def test_ingest_prints_a_summary(two_commits, db_path):
    result = invoke("ingest", str(two_commits.path), "--db", str(db_path))
    assert result.exit_code == 0, result.output
    assert re.search(r"2 new commits \(2 in all\), 2 services, 1 in ERROR", result.stdout), \
        result.stdout
    assert str(db_path) in result.stdout
    assert rows(db_path, "select count(*) n from commits") == [{"n": 2}]
    two_commits.service("billing")
    two_commits.commit("add billing")
    again = invoke("ingest", str(two_commits.path), "--db", str(db_path))
    assert again.exit_code == 0
    assert re.search(r"1 new commits? \(3 in all\), 3 services, 0 in ERROR", again.stdout), \
        again.stdout


def test_ingest_json_summary(two_commits, db_path):
    result = invoke("ingest", str(two_commits.path), "--db", str(db_path), "--json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["commits_added"] == 2 and summary["commits"] == 2
    assert summary["services"] == 2 and summary["services_in_error"] == 1
    assert summary["rewrite_detected"] is False and summary["outcome"] == "ok"
    assert summary["tip"] == two_commits.head() and summary["branch"] == "main"


def test_ingest_quiet_prints_nothing(two_commits, db_path):
    result = invoke("ingest", str(two_commits.path), "--db", str(db_path), "--quiet")
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == ""
    assert rows(db_path, "select count(*) n from services") == [{"n": 2}]


def test_ingest_reports_a_rewrite(two_commits, db_path):
    invoke("ingest", str(two_commits.path), "--db", str(db_path), "--quiet")
    two_commits.git("reset", "-q", "--hard", "HEAD~1")
    result = CliRunner().invoke(cli, ["ingest", str(two_commits.path), "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "rewritten" in result.stderr and "1" in result.stderr
    assert re.search(r"0 new commits \(1 in all\), 1 services, 0 in ERROR", result.stdout)


def test_ingest_max_size_option(repo, db_path):
    repo.service("big", description="x" * 3000)
    repo.service("small")
    repo.commit("big and small")
    result = invoke("ingest", str(repo.path), "--db", str(db_path), "--max-size", "2k",
                    "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["services_in_error"] == 1
    assert rows(db_path, "select id from services where status = 'ERROR'") == [
        {"id": "platform/big"}]


def test_ingest_missing_repo_or_branch_is_a_clean_error(repo, db_path, tmp_path):
    missing = invoke("ingest", str(tmp_path / "nope"), "--db", str(db_path))
    assert missing.exit_code == 1
    assert "no such folder" in missing.stderr and "Traceback" not in missing.output
    not_git = tmp_path / "plain"
    not_git.mkdir()
    plain = invoke("ingest", str(not_git), "--db", str(tmp_path / "other.db"))
    assert plain.exit_code == 1 and "not a Git repository" in plain.stderr
    repo.service("auth-service")
    repo.commit("add")
    branch = invoke("ingest", str(repo.path), "--db", str(db_path), "--branch", "develop")
    assert branch.exit_code == 1
    assert "develop" in branch.stderr and "main" in branch.stderr


def test_ingest_other_branch(repo, db_path):
    repo.service("auth-service")
    repo.commit("add")
    repo.git("checkout", "-q", "-b", "staging")
    repo.service("user-service")
    repo.commit("staging only")
    result = invoke("ingest", str(repo.path), "--db", str(db_path), "--branch", "staging",
                    "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["services"] == 2


def test_console_script_ingest_as_a_subprocess(two_commits, tmp_path):
    db_path = tmp_path / "sub.db"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", "aureacore_db.cli", "ingest", str(two_commits.path),
         "--db", str(db_path), "--json"], capture_output=True, text=True, env=env,
        timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["commits_added"] == 2
    script = Path(sys.executable).with_name("aureacore-db")
    if script.exists():
        again = subprocess.run([str(script), "ingest", str(two_commits.path), "--db",
                                str(db_path), "--quiet"], capture_output=True, text=True,
                               timeout=60)
        assert again.returncode == 0 and again.stdout == ""


# -- validate -----------------------------------------------------------------------------

def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_validate_good_file_exits_0_and_prints_no_problem(tmp_path):
    good = _write(tmp_path / "auth.yaml", 'name: auth\nversion: "1.0.0"\n')
    result = invoke("validate", str(good))
    assert result.exit_code == 0
    assert result.stdout == ""


def test_validate_bad_file_prints_path_json_path_message_and_exits_1(tmp_path):
    bad = _write(tmp_path / "auth.yaml", "name: auth\nversion: 2\nowner: 5\ndependancies: []\n")
    result = CliRunner().invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3, lines
    for line in lines:
        assert re.match(rf"^{re.escape(str(bad))}: \$[^:]*: \S.*$", line), line
    paths = sorted(line.split(": ")[1] for line in lines)
    assert paths == ["$", "$.owner", "$.version"]
    assert any("dependancies" in line for line in lines)
    assert "3 error" in result.stderr


def test_validate_parse_error_has_line_and_column(tmp_path):
    bad = _write(tmp_path / "auth.yaml", "name: auth\nversion: [1\n")
    result = CliRunner().invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{bad}: $: invalid YAML")
    assert re.search(r"line \d+, column \d+", result.stdout)


def test_validate_hostile_files(tmp_path):
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\x00\x01")
    link = tmp_path / "link.yaml"
    os.symlink("/etc/passwd", link)
    big = _write(tmp_path / "big.yaml", "name: big\nversion: '1.0.0'\ndescription: "
                 + "x" * 3000 + "\n")
    result = CliRunner().invoke(cli, ["validate", "--max-size", "1k", str(binary), str(link),
                                      str(big)])
    assert result.exit_code == 1
    out = result.stdout
    assert f"{binary}: $: " in out and "binary" in out
    assert f"{link}: $: " in out and "symbolic link" in out
    assert f"{big}: $: " in out and "limit" in out
    assert "root:" not in out


def test_validate_folder_checks_the_whole_tree(tmp_path):
    folder = tmp_path / "configs"
    _write(folder / "services/platform/auth-service.yaml",
           'name: auth-service\nversion: "1.0.0"\ndependencies:\n  - service: user-service\n')
    _write(folder / "services/platform/cache.yaml",
           'name: cache\nversion: "1.0.0"\ndependencies:\n'
           '  - {service: data/redis, required: false}\n')
    _write(folder / "README.md", "not a service\n")
    result = CliRunner().invoke(cli, ["validate", str(folder)])
    assert result.exit_code == 1
    auth = folder / "services/platform/auth-service.yaml"
    cache = folder / "services/platform/cache.yaml"
    assert result.stdout.splitlines() == [
        f"{auth}: $.dependencies[0].service: required dependency platform/user-service "
        "does not exist",
        f"{cache}: $.dependencies[0].service: warning: optional dependency data/redis "
        "does not exist",
    ]


def test_validate_warnings_do_not_fail_and_can_be_hidden(tmp_path):
    folder = tmp_path / "configs"
    _write(folder / "services/platform/cache.yaml",
           'name: cache\nversion: "1.0.0"\ndependencies:\n'
           '  - {service: data/redis, required: false}\n')
    shown = CliRunner().invoke(cli, ["validate", str(folder)])
    assert shown.exit_code == 0 and "warning: optional dependency data/redis" in shown.stdout
    hidden = CliRunner().invoke(cli, ["validate", "--no-warnings", str(folder)])
    assert hidden.exit_code == 0 and hidden.stdout == ""


def test_validate_folder_finds_duplicates_and_cycles(tmp_path):
    folder = tmp_path / "configs"
    _write(folder / "services/platform/a.yaml",
           'name: a\nversion: "1.0.0"\ndependencies: [{service: b}]\n')
    _write(folder / "services/platform/b.yaml",
           'name: b\nversion: "1.0.0"\ndependencies: [{service: a}]\n')
    _write(folder / "services/platform/c.yaml", 'name: c\nversion: "1.0.0"\n')
    _write(folder / "services/platform/c-copy.yaml", 'name: c\nversion: "1.0.1"\n')
    result = CliRunner().invoke(cli, ["validate", str(folder)])
    assert result.exit_code == 1
    out = result.stdout
    assert f"{folder / 'services/platform/a.yaml'}: $.dependencies: " in out
    assert f"{folder / 'services/platform/b.yaml'}: $.dependencies: " in out
    assert "cycle" in out and "declared by 2 files" in out


def test_validate_folder_that_is_clean_exits_0(tmp_path, repo):
    repo.service("user-service")
    repo.service("auth-service", dependencies=[{"service": "user-service"}])
    repo.commit("clean")
    result = CliRunner().invoke(cli, ["validate", str(repo.path)])
    assert result.exit_code == 0, result.stdout
    assert result.stdout == ""


def test_validate_mixed_good_and_bad_paths(tmp_path):
    good = _write(tmp_path / "good.yaml", 'name: good\nversion: "1.0.0"\n')
    bad = _write(tmp_path / "bad.json", '{"name": "bad"}')
    result = CliRunner().invoke(cli, ["validate", str(good), str(bad)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{bad}: $: 'version' is a required property"]


def test_validate_missing_path_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


# -- help ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "expected"), [
    ([], ["ingest", "validate"]),
    (["ingest"], ["REPO", "--db", "--branch", "--quiet", "--json", "--max-size"]),
    (["validate"], ["PATHS", "--max-size", "--no-warnings", "json_path"]),
])
def test_help_of_each_command(args, expected):
    result = invoke(*args, "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: ")
    for word in expected:
        assert word in result.stdout, word


def test_every_registered_command_has_help():
    for name, command in cli.commands.items():
        result = invoke(name, "--help")
        assert result.exit_code == 0, name
        assert command.get_short_help_str(), name


def test_ingest_of_a_repo_without_service_files_says_what_it_looked_for(repo, db_path):
    repo.write("config/auth.yaml", {"name": "auth", "version": "1.0.0"})
    repo.commit("configs in the wrong folder")
    result = CliRunner().invoke(cli, ["ingest", str(repo.path), "--db", str(db_path)])
    assert result.exit_code == 0
    assert "0 services" in result.output
    assert "No service files found at main's tip. Looked for a root file (aureacore.yaml, " \
           "aureacore.yml, aureacore.json)" in result.output
    assert "under services/" in result.output
