"""Promotion between environments: the exact bytes as one commit on the target branch,
its trailer, the preview of the target's statuses, stale heads, dirty trees, ERROR
sources, pushes, the CLI and the web confirm page (permission, CSRF)."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from conftest import GitRepo, rows
from test_web_pages import Client

from aureacore_db.cli import cli
from aureacore_db.ingest import ingest
from aureacore_db.promote import PromotionRefused, describe, promote
from aureacore_db.web import make_datasette

ENVS = [("dev", "dev"), ("staging", "staging"), ("prod", "main")]
ROOT = {"id": "root"}
ALICE = "Alice Admin <alice@example.com>"
LEDGER_OLD = "services/platform/ledger.yaml"
LEDGER_NEW = "services/platform/ledger-service.yaml"
# the staging ledger file, bytes as they are (CRLF, a comment, trailing blanks)
LEDGER_BYTES = (b"# ledger, promoted as written  \r\nname: ledger\r\nnamespace: platform\r\n"
                b"version: 2.0.0\r\n")


class Envs:
    """A config repo with branches dev, staging and main (= prod), its database, and
    (``origin``) a bare origin every branch is pushed to.

    prod (main): auth 1.0.0, web (needs auth <2.0.0), ledger 1.0.0 and billing, which a
    hotfix made need ledger >=2.0.0 (so billing is ERROR in prod).
    staging: auth 2.0.0, web allowing it, ledger 2.0.0 moved to ledger-service.yaml (the
    exact bytes above), and cache, which is ERROR.
    """

    def __init__(self, base: Path, *, origin: bool = False) -> None:
        self.repo = repo = GitRepo(base / "configs")
        repo.service("auth", version="1.0.0")
        repo.service("web", version="1.0.0",
                     dependencies=[{"service": "platform/auth", "version_constraint": "<2.0.0"}])
        repo.service("ledger", version="1.0.0")
        repo.service("billing", namespace="payments", version="1.0.0",
                     dependencies=[{"service": "platform/ledger",
                                    "version_constraint": ">=1.0.0"}])
        self.base = repo.commit("four services")
        repo.git("branch", "staging")
        repo.git("branch", "dev")
        repo.service("billing", namespace="payments", version="1.1.0",
                     dependencies=[{"service": "platform/ledger",
                                    "version_constraint": ">=2.0.0"}])
        self.prod_hotfix = repo.commit("billing: needs ledger 2 (hotfix)")
        repo.git("checkout", "-q", "staging")
        repo.service("auth", version="2.0.0")
        repo.service("web", version="1.1.0",
                     dependencies=[{"service": "platform/auth",
                                    "version_constraint": ">=1.0.0"}])
        repo.commit("auth 2, web allows it")
        repo.rm(LEDGER_OLD)
        repo.write(LEDGER_NEW, LEDGER_BYTES)
        repo.commit("ledger 2.0.0, moved")
        repo.service("cache", version="1.0.0", replica_count=3)  # unknown key: ERROR
        self.staging = repo.commit("cache (broken)")
        repo.git("checkout", "-q", "dev")
        repo.service("auth", version="3.0.0-dev")
        repo.commit("dev only")
        repo.git("checkout", "-q", "main")
        if origin:
            self.origin = base / "origin.git"
            subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.origin)],
                           check=True)
            repo.git("remote", "add", "origin", str(self.origin))
            repo.git("push", "-q", "origin", "main", "staging", "dev")
        self.db = base / "registry.db"
        ingest(repo.path, self.db, environments=ENVS)

    def head(self, branch: str = "main") -> str:
        return self.repo.git("rev-parse", branch)

    def blob(self, rev: str, path: str) -> bytes:
        return subprocess.run(["git", "cat-file", "blob", f"{rev}:{path}"], cwd=self.repo.path,
                              check=True, capture_output=True).stdout

    def env_row(self, env: str, sid: str) -> dict[str, Any]:
        found = rows(self.db, "select * from environment_services where environment = ? "
                              "and service_id = ?", (env, sid))
        return found[0] if found else {}

    def promotions(self) -> list[dict[str, Any]]:
        return rows(self.db, "select * from promotions order by id")


@pytest.fixture
def envs(tmp_path: Path) -> Envs:
    return Envs(tmp_path)


# --------------------------------------------------------------------------- API
def test_promotion_writes_the_exact_bytes_as_one_commit_with_the_trailer(envs):
    head = envs.head()
    result = promote(envs.db, ["platform/ledger"], "staging", "prod", actor=ALICE,
                     expected_head=head)
    assert result.ok and result.head_before == head
    new = envs.head()
    assert new == result.new_commit
    assert envs.repo.git("rev-parse", "main^") == head  # one commit on top of the head
    assert envs.blob("main", LEDGER_NEW) == LEDGER_BYTES  # byte for byte, CRLF and all
    files = envs.repo.git("ls-tree", "-r", "--name-only", "main").splitlines()
    assert LEDGER_OLD not in files  # moved: the old path goes in the same commit
    message = envs.repo.git("log", "-1", "--format=%B", "main")
    assert f"Promoted-from: staging {envs.staging}" in message
    assert envs.repo.git("log", "-1", "--format=%an <%ae>", "main") == ALICE
    assert envs.head("staging") == envs.staging  # the source is not touched
    # the database shows it: prod's ledger is staging's version, billing is fixed
    ledger = envs.env_row("prod", "platform/ledger")
    assert ledger["config_id"] == envs.env_row("staging", "platform/ledger")["config_id"]
    assert ledger["path"] == LEDGER_NEW and ledger["last_commit"] == new
    assert envs.env_row("prod", "payments/billing")["status"] != "ERROR"
    assert result.preview["fixes"] == ["payments/billing"]
    [row] = envs.promotions()
    assert (row["outcome"], row["service_id"], row["from_environment"], row["to_environment"],
            row["source_commit"], row["new_commit"], row["via"]) == (
        "ok", "platform/ledger", "staging", "prod", envs.staging, new, "api")
    events = rows(envs.db, "select * from events where kind = 'promoted'")
    assert [(e["service_id"], e["commit_sha"]) for e in events] == [("platform/ledger", new)]
    assert json.loads(events[0]["payload"])["promotion_id"] == row["id"]


def test_several_services_are_one_commit(envs):
    head = envs.head()
    result = promote(envs.db, ["platform/auth", "platform/web"], "staging", "prod",
                     actor=ALICE, expected_head=head)
    assert result.ok
    assert envs.repo.git("rev-parse", "main^") == head
    assert envs.repo.git("rev-list", "--count", f"{head}..main") == "1"
    for path in ("services/platform/auth.yaml", "services/platform/web.yaml"):
        assert envs.blob("main", path) == envs.blob("staging", path)
    assert result.preview["breaks"] == []  # web comes along, so nothing breaks
    found = envs.promotions()
    assert [r["service_id"] for r in found] == ["platform/auth", "platform/web"]
    assert {r["new_commit"] for r in found} == {result.new_commit}


def test_preview_lists_a_service_the_promotion_breaks_and_one_it_fixes(envs):
    auth = describe(envs.db, ["platform/auth"], "staging", "prod")
    assert auth["preview"]["breaks"] == ["platform/web"]  # web needs auth <2.0.0 in prod
    [change] = [c for c in auth["preview"]["changes"] if c["service_id"] == "platform/web"]
    assert (change["before"], change["after"]) == ("CONFIGURED", "ERROR")
    assert "<2.0.0" in change["reason"]
    ledger = describe(envs.db, ["platform/ledger"], "staging", "prod")
    assert ledger["preview"]["fixes"] == ["payments/billing"]
    assert ledger["expected_head"] == envs.head() and not ledger["needs_confirm"]
    assert envs.promotions() == [] and envs.head() == envs.prod_hotfix  # nothing written


def test_moved_head_is_refused_and_recorded(envs):
    shown = envs.head()
    envs.repo.service("auth", version="1.0.1")
    outside = envs.repo.commit("auth: someone else's fix")
    with pytest.raises(PromotionRefused) as refused:
        promote(envs.db, ["platform/ledger"], "staging", "prod", actor=ALICE,
                expected_head=shown)
    assert refused.value.result.outcome == "stale_head" and refused.value.status == 409
    assert envs.head() == outside
    [row] = envs.promotions()
    assert row["outcome"] == "stale_head" and row["new_commit"] is None
    assert row["expected_head"] == shown and row["head_before"] == outside


def test_dirty_tree_is_refused_and_the_work_is_kept(envs):
    head = envs.head()
    work = envs.repo.path / "services/platform/auth.yaml"
    mine = b"name: auth\nnamespace: platform\nversion: 9.9.9 # not committed\n"
    work.write_bytes(mine)
    with pytest.raises(PromotionRefused) as refused:
        promote(envs.db, ["platform/ledger"], "staging", "prod", actor=ALICE,
                expected_head=head)
    assert refused.value.result.outcome == "dirty"
    assert "uncommitted" in str(refused.value)
    assert work.read_bytes() == mine and envs.head() == head
    assert [r["outcome"] for r in envs.promotions()] == ["dirty"]


def test_checked_out_target_gets_the_files_in_its_working_tree(envs):
    promote(envs.db, ["platform/ledger"], "staging", "prod", actor=ALICE)
    assert (envs.repo.path / LEDGER_NEW).read_bytes() == LEDGER_BYTES
    assert not (envs.repo.path / LEDGER_OLD).exists()
    assert envs.repo.git("status", "--porcelain") == ""


def test_an_error_source_needs_confirmation(envs):
    head = envs.head()
    assert envs.env_row("staging", "platform/cache")["status"] == "ERROR"
    assert describe(envs.db, ["platform/cache"], "staging", "prod")["needs_confirm"]
    with pytest.raises(PromotionRefused) as refused:
        promote(envs.db, ["platform/cache"], "staging", "prod", actor=ALICE)
    assert refused.value.result.outcome == "needs_confirm"
    assert "ERROR in staging" in str(refused.value)
    assert envs.head() == head
    result = promote(envs.db, ["platform/cache"], "staging", "prod", actor=ALICE,
                     allow_error=True)
    assert result.ok and envs.env_row("prod", "platform/cache")["status"] == "ERROR"
    assert [r["outcome"] for r in envs.promotions()] == ["needs_confirm", "ok"]


def test_nothing_to_promote_and_unknown_names_are_refused(envs):
    promote(envs.db, ["platform/ledger"], "staging", "prod", actor=ALICE)
    with pytest.raises(PromotionRefused) as same:
        promote(envs.db, ["platform/ledger"], "staging", "prod", actor=ALICE)
    assert same.value.result.outcome == "no_change"
    with pytest.raises(PromotionRefused) as env:
        promote(envs.db, ["platform/ledger"], "staging", "qa", actor=ALICE)
    assert env.value.result.outcome == "not_found" and "staging" in str(env.value)
    with pytest.raises(PromotionRefused) as missing:
        promote(envs.db, ["platform/auth", "platform/nope"], "staging", "prod", actor=ALICE)
    assert missing.value.result.outcome == "not_found" and "platform/nope" in str(missing.value)
    assert [(r["service_id"], r["outcome"]) for r in envs.promotions()] == [
        ("platform/ledger", "ok"), ("platform/ledger", "no_change"),
        ("platform/ledger", "not_found"), ("platform/auth", "not_found"),
        ("platform/nope", "not_found")]


def test_a_promotion_that_breaks_other_services_needs_allow_breaking(envs):
    head, auth_before = envs.head(), envs.blob("main", "services/platform/auth.yaml")
    with pytest.raises(PromotionRefused) as refused:  # prod's web needs auth <2.0.0
        promote(envs.db, ["platform/auth"], "staging", "prod", actor=ALICE,
                expected_head=head)
    result = refused.value.result
    assert (result.outcome, refused.value.status, refused.value.exit_code) == (
        "breaking", 409, 1)  # as a rollback's
    assert "platform/web: CONFIGURED -> ERROR" in str(refused.value)
    assert result.preview["breaks"] == ["platform/web"] and result.new_commit is None
    assert envs.head() == head  # nothing written
    assert envs.blob("main", "services/platform/auth.yaml") == auth_before
    assert envs.env_row("prod", "platform/web")["status"] == "CONFIGURED"
    [row] = envs.promotions()
    assert (row["outcome"], row["service_id"], row["new_commit"]) == (
        "breaking", "platform/auth", None)
    assert rows(envs.db, "select * from events where kind = 'promoted'") == []
    done = promote(envs.db, ["platform/auth"], "staging", "prod", actor=ALICE,
                   expected_head=head, allow_breaking=True)
    assert done.ok and envs.repo.git("rev-parse", "main^") == head
    assert envs.env_row("prod", "platform/web")["status"] == "ERROR"
    assert [r["outcome"] for r in envs.promotions()] == ["breaking", "ok"]


def test_promotion_is_pushed_to_a_bare_origin(tmp_path):
    envs = Envs(tmp_path, origin=True)
    result = promote(envs.db, ["platform/ledger"], "staging", "prod", actor=ALICE)
    assert result.pushed
    origin_main = subprocess.run(["git", "rev-parse", "main"], cwd=envs.origin, check=True,
                                 capture_output=True, text=True).stdout.strip()
    assert origin_main == result.new_commit
    assert envs.promotions()[0]["pushed"] == 1


# --------------------------------------------------------------------------- CLI
def _cli(envs: Envs, *args: str, input: str | None = None):
    return CliRunner().invoke(cli, ["promote", *args, "--db", str(envs.db)], input=input)


def test_cli_dry_run_shows_the_preview_and_writes_nothing(envs):
    head = envs.head()
    out = _cli(envs, "platform/auth", "--from", "staging", "--to", "prod", "--dry-run")
    assert out.exit_code == 0, out.output
    assert "breaks platform/web: CONFIGURED -> ERROR" in out.output
    assert "dry run: nothing was written" in out.output
    data = json.loads(_cli(envs, "platform/auth", "--from", "staging", "--to", "prod",
                           "--dry-run", "--json").stdout)
    assert data["dry_run"] and data["preview"]["breaks"] == ["platform/web"]
    assert envs.head() == head and envs.promotions() == []


def test_cli_error_source_needs_allow_error(envs):
    refused = _cli(envs, "platform/cache", "--from", "staging", "--to", "prod", "--yes")
    assert refused.exit_code == 1
    assert "needs_confirm" in refused.output and "--allow-error" in refused.output
    done = _cli(envs, "platform/cache", "--from", "staging", "--to", "prod", "--yes",
                "--allow-error", "--json", "--actor", ALICE)
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["ok"] and result["new_commit"] == envs.head()
    assert [r["via"] for r in envs.promotions()] == ["cli", "cli"]


def test_cli_breaking_promotion_needs_allow_breaking(envs):
    head = envs.head()
    refused = _cli(envs, "platform/auth", "--from", "staging", "--to", "prod", "--yes")
    assert refused.exit_code == 1, refused.output
    assert "breaking: " in refused.output and "--allow-breaking" in refused.output
    assert envs.head() == head
    assert [(r["outcome"], r["via"]) for r in envs.promotions()] == [("breaking", "cli")]
    as_json = _cli(envs, "platform/auth", "--from", "staging", "--to", "prod", "--yes",
                   "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["outcome"] == "breaking"
    done = _cli(envs, "platform/auth", "--from", "staging", "--to", "prod", "--yes",
                "--allow-breaking", "--json", "--actor", ALICE)
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["ok"] and result["new_commit"] == envs.head()
    assert envs.repo.git("rev-parse", "main^") == head
    assert [r["outcome"] for r in envs.promotions()] == ["breaking", "breaking", "ok"]


def test_cli_dirty_tree_exits_1_with_the_reason(envs):
    (envs.repo.path / "services/platform/auth.yaml").write_text("name: auth\n# wip\n")
    out = _cli(envs, "platform/ledger", "--from", "staging", "--to", "prod", "--yes")
    assert out.exit_code == 1 and "dirty: " in out.output


# --------------------------------------------------------------------------- web
PROMOTE = "/registry/-/aureacore/promote"


@pytest.fixture
def web(envs):
    client = Client(make_datasette(envs.db))
    yield client
    client.close()


def _page(service: str = "platform/ledger") -> str:
    return f"{PROMOTE}?service={service}&from=staging&to=prod"


def _post(web: Client, envs: Envs, form: dict[str, str], *, actor=ROOT, token=True,
          suffix: str = ""):
    cookies: dict[str, str] = {}
    data = dict(form)
    if actor is not None:  # a page any viewer may see gives the CSRF token
        csrf, cookies = web.form("/registry/-/aureacore/services/platform/ledger", actor)
        if token:
            data["csrftoken"] = csrf
    return web.post(PROMOTE + suffix, data=data, cookies=cookies)


def test_confirm_page_shows_versions_preview_diff_and_expected_head(envs, web):
    page = web.get(_page("platform/auth"), cookies=web.actor_cookies(ROOT))
    assert page.status_code == 200, page.text
    assert "Promote 1 service from staging to prod?" in page.text
    assert f'name="expected_head" value="{envs.head()}"' in page.text
    assert "breaks" in page.text and "platform/web" in page.text
    assert 'name="allow_error"' not in page.text
    link = html.unescape(re.search(r'class="promote-diff" href="([^"]+)"', page.text)[1])
    diff = web.get(link.replace("/diff?", "/diff.json?")).json()["diff"]  # prod -> staging
    assert "-version: 1.0.0" in diff and "+version: 2.0.0" in diff
    cache = web.get(_page("platform/cache"), cookies=web.actor_cookies(ROOT))
    assert 'name="allow_error"' in cache.text  # the ERROR source needs the checkbox
    plan = web.get(PROMOTE + ".json?service=platform/ledger&from=staging&to=prod",
                   cookies=web.actor_cookies(ROOT)).json()
    assert plan["preview"]["fixes"] == ["payments/billing"] and "repo" not in plan


def test_web_promotion_end_to_end(envs, web):
    head = envs.head()
    response = _post(web, envs, {"service": "platform/ledger", "from": "staging",
                                 "to": "prod", "expected_head": head})
    assert response.status_code == 303, response.text
    assert envs.repo.git("rev-parse", "main^") == head
    assert envs.blob("main", LEDGER_NEW) == LEDGER_BYTES
    assert [(r["outcome"], r["via"], r["actor_id"]) for r in envs.promotions()] == [
        ("ok", "web", "root")]


def test_anonymous_and_unpermitted_users_get_403_and_nothing_is_written(envs, web):
    head = envs.head()
    form = {"service": "platform/ledger", "from": "staging", "to": "prod",
            "expected_head": head}
    assert web.post(PROMOTE, data=form).status_code == 403  # no cookies at all
    assert web.get(_page()).status_code == 403
    mallory = _post(web, envs, form, actor={"id": "mallory"}, suffix=".json")
    assert mallory.status_code == 403 and mallory.json()["outcome"] == "forbidden"
    assert envs.head() == head and envs.promotions() == []


def test_post_without_csrf_token_is_refused(envs, web):
    head = envs.head()
    response = _post(web, envs, {"service": "platform/ledger", "from": "staging",
                                 "to": "prod", "expected_head": head}, token=False)
    assert response.status_code == 403
    assert envs.head() == head and envs.promotions() == []


def test_web_stale_head_is_409_and_nothing_is_written(envs, web):
    shown = envs.head()
    envs.repo.service("auth", version="1.0.1")
    outside = envs.repo.commit("auth: pushed meanwhile")
    response = _post(web, envs, {"service": "platform/ledger", "from": "staging",
                                 "to": "prod", "expected_head": shown}, suffix=".json")
    assert response.status_code == 409 and response.json()["outcome"] == "stale_head"
    assert envs.head() == outside
    assert [r["outcome"] for r in envs.promotions()] == ["stale_head"]


def test_web_error_source_without_the_checkbox_is_refused(envs, web):
    head = envs.head()
    form = {"service": "platform/cache", "from": "staging", "to": "prod",
            "expected_head": head}
    refused = _post(web, envs, form)
    assert refused.status_code == 400 and "ERROR in staging" in refused.text
    assert envs.head() == head
    done = _post(web, envs, {**form, "allow_error": "1"})
    assert done.status_code == 303
    assert [r["outcome"] for r in envs.promotions()] == ["needs_confirm", "ok"]


def test_web_breaking_promotion_needs_the_checkbox(envs, web):
    head = envs.head()
    page = web.get(_page("platform/auth"), cookies=web.actor_cookies(ROOT))
    assert re.search(r'<input type="checkbox" name="allow_breaking" value="1" required>',
                     page.text)
    ledger = web.get(_page("platform/ledger"), cookies=web.actor_cookies(ROOT))
    assert 'name="allow_breaking"' not in ledger.text  # breaks nothing: no checkbox
    form = {"service": "platform/auth", "from": "staging", "to": "prod",
            "expected_head": head}
    refused = _post(web, envs, form)
    assert refused.status_code == 409 and "platform/web" in refused.text
    assert envs.head() == head
    assert envs.blob("main", "services/platform/auth.yaml") != envs.blob(
        "staging", "services/platform/auth.yaml")
    as_json = _post(web, envs, form, suffix=".json")
    assert as_json.status_code == 409 and as_json.json()["outcome"] == "breaking"
    assert envs.head() == head
    done = _post(web, envs, {**form, "allow_breaking": "1"})
    assert done.status_code == 303, done.text
    assert envs.repo.git("rev-parse", "main^") == head
    assert envs.env_row("prod", "platform/web")["status"] == "ERROR"
    assert [(r["outcome"], r["via"]) for r in envs.promotions()] == [
        ("breaking", "web"), ("breaking", "web"), ("ok", "web")]


def test_web_promotion_redirects_to_the_service_in_the_target_environment(envs, web):
    response = _post(web, envs, {"service": "platform/ledger", "from": "staging",
                                 "to": "prod", "expected_head": envs.head()})
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    assert location.path == "/registry/-/aureacore/services/platform/ledger"
    assert parse_qs(location.query) == {"env": ["prod"]}
    assert web.get(response.headers["location"]).status_code == 200


def test_web_form_must_be_small_and_carry_a_full_head(envs, web):
    short = _post(web, envs, {"service": "platform/ledger", "from": "staging", "to": "prod",
                              "expected_head": envs.head()[:7]})
    assert short.status_code == 400
    big = _post(web, envs, {"service": "platform/ledger", "from": "staging", "to": "prod",
                            "expected_head": envs.head(), "x": "y" * 5000})
    assert big.status_code == 413
    token, cookies = web.form("/registry/-/aureacore/services/platform/ledger", ROOT)
    latin1 = web.post(PROMOTE, content=f"csrftoken={token}&service=caf\xe9".encode("latin-1"),
                      cookies=cookies,
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert latin1.status_code == 400 and "UTF-8" in latin1.text
    assert envs.promotions() == []


def test_a_path_that_is_not_utf8_is_promoted_byte_for_byte(envs):
    raw = b"services/caf\xe9/odd.yaml"
    envs.repo.git("checkout", "-q", "staging")
    target = envs.repo.path / os.fsdecode(raw)
    target.parent.mkdir(parents=True)
    content = b"name: odd\nnamespace: platform\nversion: 1.0.0\n"
    target.write_bytes(content)
    staging = envs.repo.commit("a path in Latin-1")
    envs.repo.git("checkout", "-q", "main")
    ingest(envs.repo.path, envs.db, environments=ENVS)
    result = promote(envs.db, ["platform/odd"], "staging", "prod", actor=ALICE)
    assert result.ok and f"Promoted-from: staging {staging}" in envs.repo.git(
        "log", "-1", "--format=%B", "main")
    listing = subprocess.run(["git", "ls-tree", "-r", "-z", "--name-only", "main"],
                             cwd=envs.repo.path, check=True, capture_output=True).stdout
    assert raw in listing.split(b"\0")
    blob = subprocess.run(["git", "cat-file", "blob", b"main:" + raw], cwd=envs.repo.path,
                          check=True, capture_output=True).stdout
    assert blob == content
    assert (envs.repo.path / os.fsdecode(raw)).read_bytes() == content  # checked out too


def test_the_routes_come_with_the_plugins_one_entry_point():
    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    points = tomllib.loads(pyproject.read_text())["project"]["entry-points"]["datasette"]
    assert points == {"aureacore": "datasette_aureacore"}


def test_the_shipped_metadata_lets_root_promote():
    from aureacore_db.resources import read_metadata

    allow = read_metadata()["plugins"]["aureacore"]["promote"]["allow"]
    assert allow == {"id": ["root"]}


def test_confirm_page_after_an_outside_commit_shows_the_branch_as_it_is(envs, web):
    envs.repo.service("auth", version="1.0.1")
    outside = envs.repo.commit("auth: pushed, not ingested yet")
    plan = web.get(PROMOTE + ".json?service=platform/ledger&from=staging&to=prod",
                   cookies=web.actor_cookies(ROOT)).json()
    assert plan["expected_head"] == outside == plan["target_tip"]
    assert plan["preview"]["base"] == outside
    assert envs.env_row("prod", "platform/auth")["version"] == "1.0.1"  # caught up
    assert envs.promotions() == []


def test_a_failed_push_undoes_the_commit_and_records_no_secret(envs):
    head = envs.head()
    envs.repo.git("remote", "add", "origin", "https://deployer:s3cret-token@127.0.0.1:1/c.git")
    with pytest.raises(PromotionRefused) as refused:
        promote(envs.db, ["platform/ledger"], "staging", "prod", actor=ALICE)
    assert refused.value.result.outcome == "push_rejected"
    assert "unreachable" in str(refused.value) and "pushed first" not in str(refused.value)
    assert refused.value.exit_code == 8  # the CLI's code for an unreachable network
    assert envs.head() == head  # the local commit was undone
    [row] = envs.promotions()
    assert row["outcome"] == "push_rejected" and row["new_commit"] is None
    stored = json.dumps(row) + json.dumps(rows(envs.db, "select * from events"))
    assert "s3cret-token" not in stored and "s3cret-token" not in str(refused.value)


def test_cli_without_yes_off_a_terminal_asks_for_it_and_writes_nothing(envs):
    head = envs.head()
    out = _cli(envs, "platform/ledger", "--from", "staging", "--to", "prod")
    assert out.exit_code == 1 and "pass --yes" in out.output
    assert "fixes payments/billing: ERROR -> CONFIGURED" in out.output  # the preview first
    assert envs.head() == head and envs.promotions() == []
