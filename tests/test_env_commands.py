"""``--env`` of the write and operational commands (issue 10): rollback (CLI and web),
register, sync, deps and health act on one environment's branch and current services,
with real repositories that have dev, staging and prod branches."""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import GitRepo, LocalServer, rows
from test_web_pages import Client

from aureacore_db.cli import cli
from aureacore_db.ingest import ingest
from aureacore_db.registry import ServiceRegistry
from aureacore_db.web import make_datasette

ENVS = [("dev", "develop"), ("staging", "staging"), ("prod", "main")]
AUTH, BILLING = "platform/auth", "platform/billing"
AUTH_FILE = "services/platform/auth.yaml"
ROOT = {"id": "root"}


class Hits:
    """A real HTTP server on 127.0.0.1 answering 200 to every GET, counting paths."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        hits = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                hits.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.http = LocalServer(Handler)
        self.base = self.http.base


class Envs:
    """prod (main): auth 1.0.0 then 1.1.0, billing requires auth. staging branches off
    and gets auth 1.2.0 and a cache that billing requires. dev branches off staging and
    gets auth 2.0.0. Each environment's auth declares its own health URL."""

    def __init__(self, base: Path, health: str) -> None:
        self.repo = repo = GitRepo(base / "configs")
        self.health = health
        self.shas: dict[str, str] = {}
        repo.service("auth", version="1.0.0", health_check={"url": f"{health}/prod/auth"})
        repo.service("billing", dependencies=[{"service": "auth", "required": True}])
        self.shas["c1"] = repo.commit("auth and billing")
        repo.service("auth", version="1.1.0", health_check={"url": f"{health}/prod/auth"})
        self.shas["c2"] = repo.commit("auth 1.1.0")
        repo.git("checkout", "-q", "-b", "staging")
        repo.service("auth", version="1.2.0",
                     health_check={"url": f"{health}/staging/auth"})
        repo.service("cache")
        repo.service("billing", dependencies=[{"service": "auth", "required": True},
                                              {"service": "cache", "required": True}])
        self.shas["c3"] = repo.commit("auth 1.2.0, cache")
        repo.git("checkout", "-q", "-b", "develop")
        repo.service("auth", version="2.0.0", health_check={"url": f"{health}/dev/auth"})
        self.shas["c4"] = repo.commit("auth 2.0.0")
        repo.git("checkout", "-q", "main")
        self.db = base / "registry.db"
        ingest(repo.path, self.db, environments=ENVS)

    def tip(self, branch: str) -> str:
        return self.repo.git("rev-parse", branch)

    def tips(self) -> dict[str, str]:
        return {b: self.tip(b) for _, b in ENVS}

    def env_service(self, env: str, sid: str = AUTH) -> dict[str, Any]:
        [row] = rows(self.db, "select * from environment_services where environment = ? "
                              "and service_id = ?", (env, sid))
        return row

    def run(self, *args: str) -> Any:
        return CliRunner().invoke(cli, [*args, "--db", str(self.db)])


@pytest.fixture
def hits():
    server = Hits()
    yield server
    server.http.close()


@pytest.fixture
def envs(tmp_path, hits) -> Envs:
    return Envs(tmp_path, hits.base)


def test_rollback_on_staging_commits_on_staging_only(envs):
    before = envs.tips()
    prod_auth = envs.env_service("prod")
    done = envs.run("rollback", AUTH, "--to", envs.shas["c2"][:8], "--env", "staging",
                    "--yes", "--actor", "dana")
    assert done.exit_code == 0, done.output
    after = envs.tips()
    assert after["main"] == before["main"] and after["develop"] == before["develop"]
    assert envs.repo.git("rev-parse", "staging~1") == before["staging"]
    assert envs.repo.git("show", f"staging:{AUTH_FILE}") == \
        envs.repo.git("show", f"{envs.shas['c2']}:{AUTH_FILE}")
    assert envs.repo.git("status", "--porcelain") == ""  # main's working tree untouched
    staging = envs.env_service("staging")
    assert (staging["version"], staging["last_commit"]) == ("1.1.0", after["staging"])
    assert envs.env_service("prod") == prod_auth
    [attempt] = rows(envs.db, "select * from rollbacks")
    assert (attempt["environment"], attempt["outcome"], attempt["new_commit"]) == \
        ("staging", "ok", after["staging"])
    [event] = rows(envs.db, "select payload from events where kind = 'rollback'")
    assert json.loads(event["payload"])["environment"] == "staging"


def test_rollback_head_counts_along_the_environments_mainline(envs):
    done = envs.run("rollback", AUTH, "--to", "HEAD~1", "--env", "dev", "--yes")
    assert done.exit_code == 0, done.output
    assert envs.env_service("dev")["version"] == "1.2.0"  # dev's HEAD~1 is staging's c3
    assert envs.env_service("staging")["version"] == "1.2.0"


def test_rollback_to_a_commit_not_on_the_environment_is_refused(envs):
    before = envs.tips()
    refused = envs.run("rollback", AUTH, "--to", envs.shas["c4"], "--env", "staging",
                       "--yes")
    assert refused.exit_code != 0
    assert "is not on staging (branch staging)" in refused.output
    assert envs.tips() == before


def test_rollback_to_an_unknown_environment_writes_nothing(envs):
    before = envs.tips()
    refused = envs.run("rollback", AUTH, "--to", envs.shas["c1"], "--env", "qa", "--yes")
    assert refused.exit_code == 2
    assert "no environment 'qa' (there are: dev, staging, prod)" in refused.output
    assert envs.tips() == before
    assert rows(envs.db, "select * from rollbacks") == []


def test_rollback_without_env_is_the_first_environment(envs):
    done = envs.run("rollback", AUTH, "--to", "HEAD~1", "--yes")
    assert done.exit_code == 0, done.output
    assert envs.repo.git("show", f"develop:{AUTH_FILE}") == \
        envs.repo.git("show", f"{envs.shas['c3']}:{AUTH_FILE}")
    assert rows(envs.db, "select environment from rollbacks") == [{"environment": "dev"}]


def test_web_rollback_with_env(envs):
    client = Client(make_datasette(envs.db))
    try:
        page = f"/-/aureacore/services/{AUTH}"
        token, cookies = client.form(page, ROOT)
        # staging's page offers rollbacks to changes on staging's mainline only
        staging_page = client.get(f"{page}?env=staging", cookies=cookies).text
        forms = re.findall(r'name="to" value="([0-9a-f]{40})">\s*<input type="hidden" '
                           r'name="env" value="staging">', staging_page)
        assert set(forms) == {envs.shas["c1"], envs.shas["c2"]}
        confirm = client.get(f"{page}/rollback?to={envs.shas['c2']}&env=staging",
                             cookies=cookies)
        assert confirm.status_code == 200, confirm.text
        assert '<input type="hidden" name="env" value="staging">' in confirm.text
        head = envs.tip("staging")
        assert f'name="expected_head" value="{head}"' in confirm.text
        unknown = client.post(f"{page}/rollback.json", cookies=cookies, data={
            "csrftoken": token, "to": envs.shas["c2"], "expected_head": head, "env": "qa"})
        assert unknown.status_code == 404
        assert "there are: dev, staging, prod" in unknown.json()["error"]
        before = envs.tips()
        done = client.post(f"{page}/rollback", cookies=cookies, data={
            "csrftoken": token, "to": envs.shas["c2"], "expected_head": head,
            "env": "staging"})
        assert done.status_code == 303, done.text
        after = envs.tips()
        assert after["main"] == before["main"] and after["develop"] == before["develop"]
        assert after["staging"] != before["staging"]
        assert envs.env_service("staging")["version"] == "1.1.0"
        assert rows(envs.db, "select environment, via from rollbacks") == [
            {"environment": "staging", "via": "web"}]
    finally:
        client.close()


def test_register_on_staging(envs, tmp_path):
    new = tmp_path / "search.yaml"
    new.write_text("name: search\nnamespace: platform\nversion: 0.1.0\n")
    before = envs.tips()
    envs.repo.git("checkout", "-q", "staging")
    done = envs.run("register", str(new), "--env", "staging", "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert result["status"] == "CONFIGURED"
    after = envs.tips()
    assert after["staging"] == result["commit"]
    assert after["main"] == before["main"] and after["develop"] == before["develop"]
    assert rows(envs.db, "select service_id, environment, status from registrations") == [
        {"service_id": "platform/search", "environment": "staging", "status": "CONFIGURED"}]
    assert envs.env_service("staging", "platform/search")["version"] == "0.1.0"
    assert rows(envs.db, "select 1 from environment_services where service_id = ? and "
                         "environment != 'staging'", ("platform/search",)) == []
    registry = ServiceRegistry(envs.db, envs.repo.path, environment="staging")
    assert registry.get_service("platform/search").config.version == "0.1.0"
    assert registry.get_service(AUTH).config.version == "1.2.0"
    assert ServiceRegistry(envs.db, envs.repo.path, environment="prod"
                           ).get_service("platform/search") is None


def test_register_on_a_branch_not_checked_out_uses_a_linked_worktree(envs, tmp_path):
    """main stays checked out, with someone's uncommitted edit: the registration commits
    on staging through a linked worktree and leaves the user's working tree alone."""
    new = tmp_path / "search.yaml"
    new.write_text("name: search\nnamespace: platform\nversion: 0.1.0\n")
    mine = envs.repo.path / "services" / "platform" / "auth.yaml"
    mine.write_text(mine.read_text() + "# my uncommitted note\n")
    before = envs.tips()
    done = envs.run("register", str(new), "--env", "staging", "--json")
    assert done.exit_code == 0, done.output
    commit = json.loads(done.output)["commit"]
    after = envs.tips()
    assert after["staging"] == commit
    assert after["main"] == before["main"] and after["develop"] == before["develop"]
    assert envs.repo.git("symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert envs.repo.git("status", "--porcelain").strip() == "M services/platform/auth.yaml"
    assert mine.read_text().endswith("# my uncommitted note\n")
    assert not (envs.repo.path / "services" / "platform" / "search.yaml").exists()
    assert "version: 0.1.0" in envs.repo.git("show", f"{commit}:services/platform/search.yaml")
    assert envs.env_service("staging", "platform/search")["version"] == "0.1.0"
    listed = envs.repo.git("worktree", "list", "--porcelain").split("\n\n")
    [ours] = [w for w in listed if "@staging" in w]
    assert "detached" in ours  # between writes: staging stays free to check out or push

    # someone pushes to staging (the branch moves without the worktree): the next
    # registration starts from the new tip, not from the worktree's old files
    other = GitRepo.clone(envs.repo.path, tmp_path / "other", "staging")
    auth = other.path / AUTH_FILE
    auth.write_text(auth.read_text().replace("version: 1.2.0", "version: 1.3.0"))
    moved = other.commit("auth 1.3.0 on staging")
    other.git("push", "-q", "origin", "staging")
    new.write_text("name: search\nnamespace: platform\nversion: 0.2.0\n")
    again = envs.run("register", str(new), "--env", "staging", "--json")
    assert again.exit_code == 0, again.output
    second = json.loads(again.output)["commit"]
    assert envs.repo.git("rev-parse", f"{second}^").strip() == moved
    assert envs.env_service("staging")["version"] == "1.3.0"
    assert envs.env_service("staging", "platform/search")["version"] == "0.2.0"
    assert envs.repo.git("status", "--porcelain").strip() == "M services/platform/auth.yaml"


def test_sync_follows_every_environment(envs):
    envs.repo.git("checkout", "-q", "develop")
    envs.repo.service("auth", version="2.1.0")
    dev_commit = envs.repo.commit("auth 2.1.0 on dev")
    envs.repo.git("checkout", "-q", "main")  # prod checked out: sync pulls that one
    envs.repo.git("branch", "-f", "staging", dev_commit)  # promotion by fast-forward
    done = envs.run("sync", "--json", "--no-deliver")
    assert done.exit_code == 0, done.output
    assert envs.env_service("dev")["version"] == "2.1.0"
    assert envs.env_service("staging")["version"] == "2.1.0"
    assert envs.env_service("prod")["version"] == "1.1.0"


def test_deps_of_an_environment(envs):
    def upstream(*args: str) -> list[str]:
        done = envs.run("deps", BILLING, "--json", *args)
        assert done.exit_code == 0, done.output
        return sorted(link["service"] for link in json.loads(done.output)["upstream"])

    assert upstream("--env", "staging") == [AUTH, "platform/cache"]
    assert upstream("--env", "prod") == [AUTH]
    assert upstream() == [AUTH, "platform/cache"]  # the first environment: dev
    assert upstream("--env", "staging", "--at", envs.shas["c1"]) == [AUTH]
    order = envs.run("deps", "--order", "--env", "prod", "--json")
    assert json.loads(order.output)["environment"] == "prod"
    off = envs.run("deps", BILLING, "--env", "prod", "--at", envs.shas["c3"])
    assert off.exit_code != 0 and "not on the mainline of environment prod" in off.output
    unknown = envs.run("deps", BILLING, "--env", "qa")
    assert unknown.exit_code == 2 and "there are: dev, staging, prod" in unknown.output


def test_health_of_an_environment(envs, hits):
    done = envs.run("health", "--env", "staging", "--json")
    assert done.exit_code == 0, done.output
    [result] = json.loads(done.output)
    assert (result["service_id"], result["state"], result["environment"]) == \
        (AUTH, "passing", "staging")
    assert hits.paths == ["/staging/auth"]
    first = envs.run("health", "--json")
    assert first.exit_code == 0, first.output
    assert hits.paths == ["/staging/auth", "/dev/auth"]
    assert rows(envs.db, "select environment, url from health_checks order by id") == [
        {"environment": "staging", "url": f"{envs.health}/staging/auth"},
        {"environment": "dev", "url": f"{envs.health}/dev/auth"}]
    # each environment's first check is a change of its own
    assert len(rows(envs.db, "select 1 from events where kind = 'health_changed'")) == 2
    # the health views read the first environment's checks, as ``services`` does
    assert rows(envs.db, "select url from current_health") == [
        {"url": f"{envs.health}/dev/auth"}]
    assert rows(envs.db, "select checks from health_summary") == [{"checks": 1}]
    unknown = envs.run("health", "--env", "qa")
    assert unknown.exit_code == 2 and "there are: dev, staging, prod" in unknown.output
    assert len(hits.paths) == 2


def test_a_url_source_rolls_back_and_syncs_each_environment(tmp_path, hits):
    """From a URL: the clone beside the database only fetches other environments'
    branches; a rollback on staging pushes staging, and sync ingests every branch."""
    envs = Envs(tmp_path / "work", hits.base)
    origin = tmp_path / "origin.git"
    envs.repo.git("clone", "-q", "--bare", str(envs.repo.path), str(origin))
    url = origin.as_uri()
    db = tmp_path / "url.db"
    ingest(url, db, environments=ENVS)

    def origin_tip(branch: str) -> str:
        return envs.repo.git("--git-dir", str(origin), "rev-parse", branch)

    before = {b: origin_tip(b) for _, b in ENVS}
    done = CliRunner().invoke(cli, ["rollback", AUTH, "--to", envs.shas["c2"], "--env",
                                    "staging", "--yes", "--db", str(db)])
    assert done.exit_code == 0, done.output
    assert "pushed to origin" in done.output
    assert origin_tip("main") == before["main"] and origin_tip("develop") == before["develop"]
    assert envs.repo.git("--git-dir", str(origin), "rev-parse", "staging~1") == \
        before["staging"]
    [staging] = rows(db, "select version, last_commit from environment_services where "
                         "environment = 'staging' and service_id = ?", (AUTH,))
    assert staging == {"version": "1.1.0", "last_commit": origin_tip("staging")}
    # someone pushes to develop; sync (which pulls the first environment) ingests it
    envs.repo.git("checkout", "-q", "develop")
    envs.repo.service("auth", version="2.1.0")
    envs.repo.commit("auth 2.1.0")
    envs.repo.git("push", "-q", str(origin), "develop")
    envs.repo.git("fetch", "-q", str(origin), "staging")  # and to staging
    envs.repo.git("checkout", "-q", "-B", "staging", "FETCH_HEAD")
    envs.repo.service("auth", version="1.3.0")
    envs.repo.commit("auth 1.3.0")
    envs.repo.git("push", "-q", str(origin), "staging")
    synced = CliRunner().invoke(cli, ["sync", "--db", str(db), "--no-deliver"])
    assert synced.exit_code == 0, synced.output

    def versions() -> dict[str, str]:
        return {r["environment"]: r["version"] for r in rows(
            db, "select environment, version from environment_services where "
                "service_id = ?", (AUTH,))}

    assert versions() == {"dev": "2.1.0", "staging": "1.3.0", "prod": "1.1.0"}
    # the clone's staging (behind origin's now) follows origin for the next rollback
    again = CliRunner().invoke(cli, ["rollback", AUTH, "--to", "HEAD~1", "--env",
                                     "staging", "--yes", "--db", str(db)])
    assert again.exit_code == 0, again.output
    assert versions() == {"dev": "2.1.0", "staging": "1.1.0", "prod": "1.1.0"}


def test_register_on_staging_of_a_url_source(tmp_path, hits):
    """A URL's registration on staging uses a clone of its own (on staging), pushes
    staging only, and the database shows it in staging alone."""
    envs = Envs(tmp_path / "work", hits.base)
    origin = tmp_path / "origin.git"
    envs.repo.git("clone", "-q", "--bare", str(envs.repo.path), str(origin))
    db = tmp_path / "url.db"
    ingest(origin.as_uri(), db, environments=ENVS)
    before = {b: envs.repo.git("--git-dir", str(origin), "rev-parse", b) for _, b in ENVS}
    new = tmp_path / "search.yaml"
    new.write_text("name: search\nnamespace: platform\nversion: 0.1.0\n")
    done = CliRunner().invoke(cli, ["register", str(new), "--env", "staging", "--db",
                                    str(db), "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    after = {b: envs.repo.git("--git-dir", str(origin), "rev-parse", b) for _, b in ENVS}
    assert after == {**before, "staging": result["commit"]}
    assert result["status"] == "CONFIGURED"
    assert rows(db, "select environment from environment_services where service_id = ?",
                ("platform/search",)) == [{"environment": "staging"}]


def test_a_one_branch_database_names_its_branch(repo, db_path):
    """A database made with one branch has one environment named after it: rollbacks
    and health checks name it, and --env accepts it."""
    repo.service("auth", version="1.0.0")
    first = repo.commit("auth 1.0.0")
    repo.service("auth", version="1.1.0")
    repo.commit("auth 1.1.0")
    ingest(repo.path, db_path)
    done = CliRunner().invoke(cli, ["rollback", AUTH, "--to", first, "--env", "main",
                                    "--yes", "--db", str(db_path)])
    assert done.exit_code == 0, done.output
    assert rows(db_path, "select environment, outcome from rollbacks") == [
        {"environment": "main", "outcome": "ok"}]
    wrong = CliRunner().invoke(cli, ["deps", AUTH, "--env", "prod", "--db", str(db_path)])
    assert wrong.exit_code == 2 and "(there are: main)" in wrong.output


def test_a_url_source_promotes_onto_a_branch_only_fetched(tmp_path, hits):
    """From a URL the clone has only fetched staging and prod (main): promotion makes
    the local branch from origin's, commits, pushes it, and the database shows it."""
    envs = Envs(tmp_path / "work", hits.base)
    origin = tmp_path / "origin.git"
    envs.repo.git("clone", "-q", "--bare", str(envs.repo.path), str(origin))
    db = tmp_path / "url.db"
    ingest(origin.as_uri(), db, environments=ENVS)
    # someone moves prod at the origin after the clone was made
    envs.repo.git("checkout", "-q", "main")
    envs.repo.service("billing", version="1.0.1",
                      dependencies=[{"service": "auth", "required": True}])
    envs.repo.commit("billing 1.0.1 hotfix")
    envs.repo.git("push", "-q", str(origin), "main")
    assert CliRunner().invoke(cli, ["sync", "--db", str(db), "--no-deliver"]).exit_code == 0
    done = CliRunner().invoke(cli, ["promote", AUTH, "--from", "staging", "--to", "prod",
                                    "--yes", "--db", str(db)])
    assert done.exit_code == 0, done.output
    prod = envs.repo.git("--git-dir", str(origin), "rev-parse", "main")
    assert envs.repo.git("--git-dir", str(origin), "log", "-1", "--format=%s", "main~1") == \
        "billing 1.0.1 hotfix"  # promoted on top of origin's prod, nothing lost
    assert "Promoted-from: staging" in envs.repo.git("--git-dir", str(origin), "log", "-1",
                                                     "--format=%B", "main")
    [row] = rows(db, "select version, last_commit from environment_services where "
                     "environment = 'prod' and service_id = ?", (AUTH,))
    assert row == {"version": "1.2.0", "last_commit": prod}
