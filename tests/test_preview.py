"""Preview before every write: rollback and register say which services they break or fix.

The demo has the case from issue 11: rolling platform/auth-service back to 2.3.1 puts
platform/api-gateway (which requires auth-service >=3.0.0) into ERROR.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import rows
from test_web_pages import Client

from aureacore_db.cli import cli
from aureacore_db.demo import build_demo_repo
from aureacore_db.ingest import ingest
from aureacore_db.web import make_datasette

AUTH, GATEWAY = "platform/auth-service", "platform/api-gateway"
REASON = "required dependency platform/auth-service is at 2.3.1, which does not satisfy >=3.0.0"


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("demo")
    build_demo_repo(base / "configs")
    ingest(base / "configs", base / "registry.db", branch="dev")  # the demo's history
    return base


class Demo:
    """A private copy of the demo repository and its database."""

    def __init__(self, template: Path, base: Path) -> None:
        shutil.copytree(template, base)
        self.repo, self.db = base / "configs", base / "registry.db"
        conn = sqlite3.connect(self.db)
        with conn:
            conn.execute("update aureacore_meta set value = ? where key in "
                         "('source', 'repo_path')", [str(self.repo)])
        conn.close()

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.repo, check=True, capture_output=True,
                              text=True).stdout.strip()

    def version_commit(self, sid: str, version: str, status: str = "CONFIGURED") -> str:
        return rows(self.db, "select h.commit_sha from history h join configs c on "
                             "c.id = h.config_id where h.service_id = ? and c.version = ? and "
                             "h.status = ? order by h.seq desc limit 1",
                    (sid, version, status))[0]["commit_sha"]

    def status(self, sid: str) -> str:
        return rows(self.db, "select status from services where id = ?", (sid,))[0]["status"]

    def cli(self, *args: str):
        return CliRunner().invoke(cli, [*args, "--db", str(self.db)])


@pytest.fixture
def demo(demo_template, tmp_path) -> Demo:
    return Demo(demo_template, tmp_path / "demo")


def test_dry_run_shows_what_the_rollback_breaks_and_writes_nothing(demo):
    head = demo.git("rev-parse", "HEAD")
    result = demo.cli("rollback", AUTH, "--to", demo.version_commit(AUTH, "2.3.1"),
                      "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"breaks {GATEWAY}: CONFIGURED -> ERROR ({REASON})" in result.output
    assert "dry run: nothing was written" in result.output
    assert demo.git("rev-parse", "HEAD") == head
    assert not rows(demo.db, "select id from rollbacks")
    assert demo.status(GATEWAY) == "CONFIGURED"


def test_yes_refuses_a_breaking_rollback_without_allow_breaking(demo):
    head = demo.git("rev-parse", "HEAD")
    result = demo.cli("rollback", AUTH, "--to", demo.version_commit(AUTH, "2.3.1"), "--yes",
                      "--actor", "alice")
    assert result.exit_code == 1
    assert f"breaks {GATEWAY}" in result.output  # the preview came first
    assert "breaking: rolling platform/auth-service back" in result.output
    assert "--allow-breaking" in result.output
    assert demo.git("rev-parse", "HEAD") == head
    assert [r["outcome"] for r in rows(demo.db, "select outcome from rollbacks")] == ["breaking"]


def test_allow_breaking_rolls_back_and_json_carries_preview_and_status_changes(demo):
    result = demo.cli("rollback", AUTH, "--to", demo.version_commit(AUTH, "2.3.1"), "--yes",
                      "--allow-breaking", "--json", "--actor", "alice")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["outcome"] == "ok"
    assert data["preview"]["breaks"] == [GATEWAY]
    change = next(c for c in data["preview"]["changes"] if c["service_id"] == GATEWAY)
    assert (change["before"], change["after"], change["reason"]) == ("CONFIGURED", "ERROR",
                                                                     REASON)
    assert {"service_id": GATEWAY, "previous_status": "CONFIGURED", "status": "ERROR",
            "message": REASON} in data["status_changes"]
    assert f"status changed: {GATEWAY} CONFIGURED -> ERROR" in data["message"]
    assert demo.status(GATEWAY) == "ERROR"  # the preview was right


def test_dry_run_json_carries_the_preview(demo):
    result = demo.cli("rollback", AUTH, "--to", demo.version_commit(AUTH, "2.3.1"),
                      "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["dry_run"] is True and data["preview"]["breaks"] == [GATEWAY]


def test_rolling_back_to_an_error_version_warns_even_with_yes(demo):
    bad = demo.version_commit(AUTH, "2.3.1", status="ERROR")
    result = demo.cli("rollback", AUTH, "--to", bad, "--yes", "--allow-breaking",
                      "--actor", "alice")
    assert result.exit_code == 0, result.output
    assert f"warning: the version of {AUTH} at {bad[:7]} was ERROR" in result.output


def test_a_harmless_rollback_says_no_other_service_changes(demo):
    older = rows(demo.db, "select commit_sha from history where service_id = "
                          "'payments/billing' and mainline = 1 order by seq limit 1"
                 )[0]["commit_sha"]
    result = demo.cli("rollback", "payments/billing", "--to", older, "--yes", "--actor", "a")
    assert result.exit_code == 0, result.output
    assert "no other service changes status" in result.output


def test_the_preview_is_printed_before_the_question_on_a_terminal(demo):
    """The real CLI on a pseudo-terminal: preview, then the question; "n" writes nothing."""
    head = demo.git("rev-parse", "HEAD")
    main, child = pty.openpty()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "aureacore_db.cli", "rollback", AUTH,
                             "--to", demo.version_commit(AUTH, "2.3.1"), "--db",
                             str(demo.db), "--actor", "alice"],
                            stdin=child, stdout=child, stderr=child, env=env)
    os.close(child)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while b"[y/N]" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 1)
            if ready:
                try:
                    seen += os.read(main, 4096)
                except OSError:
                    break
        text = seen.decode()
        assert "[y/N]" in text, text
        assert text.index(f"breaks {GATEWAY}") < text.index("This breaks 1 other service(s)")
        os.write(main, b"n\n")
        assert proc.wait(timeout=60) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    assert demo.git("rev-parse", "HEAD") == head


def test_web_confirm_step_shows_the_preview_and_the_banner_what_changed(demo):
    client = Client(make_datasette(demo.db, repo=demo.repo))
    try:
        page = f"/-/aureacore/services/{AUTH}"
        root = {"id": "root"}
        token, cookies = client.form(page, root)
        form = {"to": demo.version_commit(AUTH, "2.3.1"),
                "expected_head": demo.git("rev-parse", "HEAD"), "csrftoken": token}
        first = client.post(page + "/rollback", data=form, cookies=cookies)
        assert first.status_code == 409
        assert "breaking" in first.text and GATEWAY in first.text
        assert "which does not satisfy &gt;=3.0.0" in first.text
        assert 'name="allow_breaking" value="1"' in first.text
        assert demo.status(GATEWAY) == "CONFIGURED"
        second = client.post(page + "/rollback", data={**form, "confirm": "1",
                                                       "allow_breaking": "1"},
                             cookies=cookies)
        assert second.status_code == 303, second.text
        banner = client.get(page, cookies={**cookies, **second.cookies})
        assert f"status changed: {GATEWAY} CONFIGURED -&gt; ERROR" in banner.text
        assert demo.status(GATEWAY) == "ERROR"
    finally:
        client.close()


def hidden_fields(html: str, form_class: str) -> dict[str, str]:
    """The hidden inputs of the page's form of that class."""
    import re

    form = html.split(f'<form class="{form_class}"', 1)[1].split("</form>", 1)[0]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form))


def test_web_confirm_page_shows_the_plan_and_preview_before_anything_is_written(demo):
    client = Client(make_datasette(demo.db, repo=demo.repo))
    try:
        page = f"/-/aureacore/services/{AUTH}"
        root = client.actor_cookies({"id": "root"})
        head = demo.git("rev-parse", "HEAD")
        target = demo.version_commit(AUTH, "2.3.1")
        # the service page's buttons are GET forms to the confirm page (no JavaScript)
        service = client.get(page, cookies=root).text
        assert 'method="post"' not in service.split('class="timeline"', 1)[1]
        assert f'name="to" value="{target}"' in service and "data-confirm" not in service
        confirm = client.get(f"{page}/rollback?to={target[:7]}", cookies=root)
        assert confirm.status_code == 200, confirm.text
        text = confirm.text
        assert "now" in text and "2.3.1" in text  # the plan: now -> that version
        preview = text.split('class="rollback-preview"', 1)[1].split("</ul>", 1)[0]
        assert GATEWAY in preview and "CONFIGURED &rarr; <strong>ERROR" in preview
        assert "which does not satisfy &gt;=3.0.0" in preview
        assert "Roll back anyway — breaks 1 service<" in text
        assert 'name="allow_breaking" value="1"' in text  # only on that button
        fields = hidden_fields(text, "rollback-confirm")
        assert fields["to"] == target and fields["expected_head"] == head
        assert fields["confirm"] == "1" and "allow_breaking" not in fields
        plan = client.get(f"{page}/rollback.json?to={target[:7]}", cookies=root).json()
        assert plan["expected_head"] == head and plan["preview"]["breaks"] == [GATEWAY]
        assert plan["target"]["version"] == "2.3.1" and "repo" not in plan
        assert demo.git("rev-parse", "HEAD") == head  # showing it wrote nothing
        assert demo.status(GATEWAY) == "CONFIGURED"
        # posting the page's form without the "anyway" button is refused as breaking
        token, cookies = client.form(f"{page}/rollback?to={target}", {"id": "root"})
        refused = client.post(f"{page}/rollback", data={**fields, "csrftoken": token},
                              cookies=cookies)
        assert refused.status_code == 409 and demo.git("rev-parse", "HEAD") == head
        done = client.post(f"{page}/rollback", data={**fields, "csrftoken": token,
                                                     "allow_breaking": "1"}, cookies=cookies)
        assert done.status_code == 303, done.text
        assert demo.git("rev-parse", "HEAD^") == head
        banner = client.get(page, cookies={**cookies, **done.cookies})
        assert f"status changed: {GATEWAY} CONFIGURED -&gt; ERROR" in banner.text
    finally:
        client.close()


def test_web_confirm_page_needs_the_permission_and_bounds_its_input(demo):
    client = Client(make_datasette(demo.db, repo=demo.repo))
    try:
        confirm = f"/-/aureacore/services/{AUTH}/rollback"
        target = demo.version_commit(AUTH, "2.3.1")
        for actor in (None, {"id": "mallory"}):
            cookies = client.actor_cookies(actor)
            assert client.get(f"{confirm}?to={target}", cookies=cookies).status_code == 403
            refused = client.get(f"{confirm}.json?to={target}", cookies=cookies)
            assert refused.status_code == 403 and refused.json()["outcome"] == "forbidden"
        root = client.actor_cookies({"id": "root"})
        assert client.get(f"{confirm}?to={'a' * 201}", cookies=root).status_code == 400
        unknown = client.get(f"{confirm}?to=nosuchcommit", cookies=root)
        assert unknown.status_code == 404 and "unknown commit" in unknown.text
        assert client.get(f"/-/aureacore/services/x/nope/rollback?to={target}",
                          cookies=root).status_code == 404
        current = demo.version_commit(AUTH, rows(
            demo.db, "select version from services where id = ?", (AUTH,))[0]["version"])
        same = client.get(f"{confirm}?to={current}", cookies=root)
        assert same.status_code == 200 and "already at that version" in same.text
        assert "rollback-confirm" not in same.text  # no form
        bare = client.get(confirm, cookies=root)  # no version chosen: back to the service
        assert bare.status_code == 302 and bare.headers["location"].endswith(AUTH)
    finally:
        client.close()


def test_register_preview_dry_run_and_allow_breaking(demo, tmp_path):
    raw = subprocess.run(["git", "show", "HEAD:services/platform/auth-service.yaml"],
                         cwd=demo.repo, check=True, capture_output=True).stdout
    doc = yaml.safe_load(raw)
    doc["version"] = "2.9.0"
    candidate = tmp_path / "auth.yaml"
    candidate.write_text(yaml.safe_dump(doc))
    head = demo.git("rev-parse", "HEAD")
    dry = demo.cli("register", str(candidate), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"breaks {GATEWAY}: CONFIGURED -> ERROR" in dry.output
    assert "at 2.9.0, which does not satisfy >=3.0.0" in dry.output
    refused = demo.cli("register", str(candidate))
    assert refused.exit_code == 1 and "--allow-breaking" in refused.output
    assert demo.git("rev-parse", "HEAD") == head
    done = demo.cli("register", str(candidate), "--allow-breaking", "--json")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["preview"]["breaks"] == [GATEWAY] and data["commit"]
    assert demo.status(GATEWAY) == "ERROR"
