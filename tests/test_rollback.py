"""Rollback: permissions, CSRF, stale head, end to end, dirty trees, push rejection, CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import GitRepo, rows
from test_web_pages import AUTH, Client, build_sample

from aureacore_db.cli import cli
from aureacore_db.ingest import ingest
from aureacore_db.rollback import RollbackRefused, rollback
from aureacore_db.web import make_datasette

ROOT = {"id": "root"}
PAGE = f"/-/aureacore/services/{AUTH}"
POST = f"{PAGE}/rollback"
AUTH_FILE = "services/platform/auth.yaml"


class Setup:
    """A fresh sample repo, its database and a client."""

    def __init__(self, base: Path, *, origin: bool = False) -> None:
        self.base = base
        if origin:
            bare = base / "origin.git"
            subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
            self.origin = bare
        self.repo = GitRepo(base / "configs")
        self.shas = build_sample(self.repo)
        if origin:
            self.repo.git("remote", "add", "origin", str(self.origin))
            self.repo.git("push", "-q", "origin", "main")
        self.db = base / "registry.db"
        ingest(self.repo.path, self.db)
        self.client = Client(make_datasette(self.db))

    def head(self) -> str:
        return self.repo.head()

    def rollbacks(self) -> list[dict[str, Any]]:
        return rows(self.db, "select * from rollbacks order by id")

    def post(self, actor: dict | None, data: dict[str, str], *, token: bool = True,
             suffix: str = ""):
        cookies: dict[str, str] = {}
        form = dict(data)
        if actor is not None or token:
            csrf, cookies = self.client.form(PAGE, actor)
            if token:
                form["csrftoken"] = csrf
        return self.client.post(POST + suffix, data=form, cookies=cookies)


@pytest.fixture
def setup(tmp_path):
    s = Setup(tmp_path)
    yield s
    s.client.close()


def file_at(repo: GitRepo, rev: str, path: str = AUTH_FILE) -> str:
    return repo.git("show", f"{rev}:{path}")


def test_anonymous_gets_403_and_nothing_is_written(setup):
    head = setup.head()
    # no cookies at all: CSRF does not apply, the permission check refuses
    response = setup.client.post(POST, data={"to": setup.shas["scale"], "expected_head": head})
    assert response.status_code == 403
    assert setup.head() == head
    assert setup.rollbacks() == []  # a refused request writes nothing


def test_actor_without_the_permission_gets_403(setup):
    head = setup.head()
    page = setup.client.get(PAGE, cookies=setup.client.actor_cookies({"id": "mallory"}))
    assert "Roll back to this version" not in page.text
    response = setup.post({"id": "mallory"}, {"to": setup.shas["scale"], "expected_head": head},
                          suffix=".json")
    assert response.status_code == 403 and response.json()["outcome"] == "forbidden"
    assert setup.head() == head
    assert setup.rollbacks() == []


def test_post_without_csrf_token_is_refused(setup):
    head = setup.head()
    response = setup.post(ROOT, {"to": setup.shas["scale"], "expected_head": head}, token=False)
    assert response.status_code == 403 and "did not match cookie" in response.text
    assert setup.head() == head
    assert setup.rollbacks() == []


def test_stale_head_is_409_and_nothing_is_written(setup):
    stale = setup.shas["moved"]  # the page was rendered before the last commit
    before = rows(setup.db, "select count(*) as n from history")
    response = setup.post(ROOT, {"to": setup.shas["scale"], "expected_head": stale})
    assert response.status_code == 409
    assert "moved since the page was shown" in response.text
    assert setup.head() == setup.shas["ledger"]
    assert rows(setup.db, "select count(*) as n from history") == before
    assert [r["outcome"] for r in setup.rollbacks()] == ["stale_head"]


def test_stale_page_after_an_outside_commit_catches_up(setup):
    shown = setup.head()  # the page was rendered at this head ...
    setup.repo.service("users", rel="services/platform/user-service.yaml", version="1.0.1")
    outside = setup.repo.commit("users: bump")  # ... then someone pushed
    response = setup.post(ROOT, {"to": setup.shas["scale"], "expected_head": shown},
                          suffix=".json")
    assert response.status_code == 409 and response.json()["outcome"] == "stale_head"
    assert setup.head() == outside  # no rollback commit
    # the database caught up, so the reloaded page carries the new head and works
    data = setup.client.get(PAGE + ".json").json()
    assert data["tip"] == outside
    retry = setup.post(ROOT, {"to": setup.shas["scale"], "expected_head": data["tip"]},
                       suffix=".json")
    assert retry.status_code == 200 and retry.json()["head_before"] == outside


def test_confirm_page_after_an_outside_commit_shows_the_branch_as_it_is(setup):
    setup.repo.service("users", rel="services/platform/user-service.yaml", version="1.0.1")
    outside = setup.repo.commit("users: bump")  # not ingested yet
    plan = setup.client.get(f"{POST}.json?to={setup.shas['scale']}",
                            cookies=setup.client.actor_cookies(ROOT)).json()
    assert plan["expected_head"] == outside and plan["tip"] == outside
    assert plan["preview"]["base"] == outside
    assert setup.head() == outside and setup.rollbacks() == []


def test_rollback_end_to_end(setup):
    head = setup.head()
    target = setup.shas["scale"]
    token, cookies = setup.client.form(PAGE, ROOT)
    page = setup.client.get(PAGE, cookies=cookies)
    assert page.text.count("Roll back to this version") == 3
    response = setup.client.post(POST, data={"csrftoken": token, "to": target,
                                             "expected_head": head}, cookies=cookies)
    assert response.status_code == 303  # to the page's canonical URL:
    assert response.headers["location"] == "/registry" + PAGE
    new = setup.head()
    assert new != head
    log = setup.repo.git("log", "-1", "--format=%an <%ae>%n%P%n%B")
    assert log.splitlines()[0] == "root <root@aureacore-db>"
    assert log.splitlines()[1] == head
    assert f"Roll back {AUTH} to {target[:7]}" in log
    assert "Rolled-back-by: root" in log
    assert file_at(setup.repo, "HEAD") == file_at(setup.repo, target)
    assert setup.repo.git("status", "--porcelain") == ""  # working tree follows
    history = rows(setup.db, "select service_id, change, config_id from history "
                             "where commit_sha = ?", (new,))
    target_config = rows(setup.db, "select config_id from history where commit_sha = ? "
                                   "and service_id = ?", (target, AUTH))[0]["config_id"]
    assert history == [{"service_id": AUTH, "change": "modified", "config_id": target_config}]
    [attempt] = setup.rollbacks()
    assert (attempt["outcome"], attempt["new_commit"], attempt["target_commit"],
            attempt["to_config"], attempt["via"]) == ("ok", new, target, target_config, "web")
    events = rows(setup.db, "select kind, commit_sha from events where kind = 'rollback'")
    assert events == [{"kind": "rollback", "commit_sha": new}]
    # the page shows the new version at once (and the flash message)
    after = setup.client.get(PAGE, cookies=cookies)
    assert "1.1.0" in after.text.split("current-version")[1][:40]
    data = setup.client.get(PAGE + ".json").json()
    assert data["service"]["version"] == "1.1.0" and data["timeline"][0]["commit_sha"] == new


def test_error_version_needs_confirm(setup):
    head = setup.head()
    broken = setup.shas["broken"]
    response = setup.post(ROOT, {"to": broken, "expected_head": head})
    assert response.status_code == 400
    assert "confirm" in response.text and 'name="confirm" value="1"' in response.text
    assert setup.head() == head
    confirmed = setup.post(ROOT, {"to": broken, "expected_head": head, "confirm": "1"},
                           suffix=".json")
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["outcome"] == "ok"
    assert [r["outcome"] for r in setup.rollbacks()] == ["needs_confirm", "ok"]
    status = rows(setup.db, "select status from services where id = ?", (AUTH,))
    assert status == [{"status": "ERROR"}]


def test_uncommitted_work_is_never_clobbered(setup):
    head = setup.head()
    work = (setup.repo.path / AUTH_FILE)
    work.write_text(work.read_text() + "# my local edit\n")
    response = setup.post(ROOT, {"to": setup.shas["scale"], "expected_head": head},
                          suffix=".json")
    assert response.status_code == 409
    assert response.json()["outcome"] == "dirty" and AUTH_FILE in response.json()["message"]
    assert setup.head() == head and work.read_text().endswith("# my local edit\n")
    # an untracked file elsewhere is not in the way
    work.write_text(file_at(setup.repo, "HEAD") + "\n")
    setup.repo.git("checkout", "--", AUTH_FILE)
    (setup.repo.path / "notes.txt").write_text("scratch\n")
    ok = rollback(setup.db, AUTH, setup.shas["scale"], actor=ROOT, expected_head=head)
    assert ok.ok and (setup.repo.path / "notes.txt").exists()


def test_already_current_version_is_refused(setup):
    with pytest.raises(RollbackRefused) as refused:
        rollback(setup.db, AUTH, setup.shas["fixed"], actor=ROOT)
    assert refused.value.result.outcome == "no_change" and refused.value.status == 400
    with pytest.raises(RollbackRefused) as unknown:
        rollback(setup.db, AUTH, "deadbeef", actor=ROOT)
    assert unknown.value.status == 404


def test_push_to_origin(tmp_path):
    s = Setup(tmp_path, origin=True)
    try:
        result = rollback(s.db, AUTH, s.shas["scale"], actor=ROOT, expected_head=s.head())
        assert result.pushed
        remote = subprocess.run(["git", "--git-dir", str(s.origin), "rev-parse", "main"],
                                capture_output=True, text=True, check=True).stdout.strip()
        assert remote == s.head() == result.new_commit
    finally:
        s.client.close()


def test_rejected_push_leaves_no_local_commit(tmp_path):
    s = Setup(tmp_path, origin=True)
    try:
        other = GitRepo(tmp_path / "other")
        other.git("pull", "-q", str(s.origin), "main")
        other.write("README.md", "someone else was faster\n")
        other.commit("Concurrent change")
        other.git("push", "-q", str(s.origin), "HEAD:main")  # origin is now ahead
        head = s.head()
        response = s.post(ROOT, {"to": s.shas["scale"], "expected_head": head}, suffix=".json")
        assert response.status_code == 409, response.text
        assert response.json()["outcome"] == "push_rejected"
        assert s.head() == head
        assert s.repo.git("status", "--porcelain") == ""
        assert file_at(s.repo, "HEAD") == (s.repo.path / AUTH_FILE).read_text().rstrip("\n")
        assert s.repo.git("rev-list", "--count", "--all") == s.repo.git(
            "rev-list", "--count", "HEAD")  # no dangling branch tip either
        assert [r["outcome"] for r in s.rollbacks()] == ["push_rejected"]
        assert s.rollbacks()[0]["new_commit"] is None
    finally:
        s.client.close()


def test_cli_rollback(setup):
    runner = CliRunner()
    refused = runner.invoke(cli, ["rollback", AUTH, "--to", setup.shas["scale"][:8],
                                  "--db", str(setup.db)])
    assert refused.exit_code != 0 and "--yes" in refused.output
    head = setup.head()
    done = runner.invoke(cli, ["rollback", AUTH, "--to", setup.shas["scale"][:8], "--db",
                               str(setup.db), "--yes", "--actor", "dana"])
    assert done.exit_code == 0, done.output
    assert "rolled back" in done.output
    assert setup.repo.git("log", "-1", "--format=%an %P") == f"dana {head}"
    assert setup.rollbacks()[-1]["via"] == "cli"
    again = runner.invoke(cli, ["rollback", AUTH, "--to", "HEAD~1", "--db", str(setup.db),
                                "--yes"])
    assert again.exit_code == 0, again.output
    assert file_at(setup.repo, "HEAD") == file_at(setup.repo, head)


def test_allow_block_decides_who_may_roll_back(setup):
    allow = {"plugins": {"aureacore": {"rollback": {"allow": {"id": ["erin"], "team": "sre"}}}}}
    client = Client(make_datasette(setup.db, metadata=allow))
    try:
        def can(actor):
            page = client.get(PAGE + ".json", cookies=client.actor_cookies(actor))
            return page.json()["can_rollback"]

        assert can({"id": "erin"}) and can({"id": "frank", "team": ["sre", "dba"]})
        assert not can({"id": "root"}) and not can({"id": "frank"}) and not can(None)
    finally:
        client.close()
