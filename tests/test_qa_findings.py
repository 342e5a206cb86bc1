"""Regression tests for problems the QA review of issues 8, 9 and 11 reproduced on main.

Each test is marked ``xfail(strict=True)``: it documents a real bug without breaking CI,
and turns into a failure (XPASS) once the bug is fixed, so the marker must then go.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import GitRepo

from aureacore_db.cli import cli
from aureacore_db.ingest import ingest


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def registry(tmp_path: Path) -> tuple[GitRepo, Path]:
    repo = GitRepo(tmp_path / "configs")
    repo.service("auth", version="2.0.0")
    repo.commit("auth 2.0.0")
    repo.service("auth", version="3.0.0")
    repo.service("gateway", version="1.0.0",
                 dependencies=[{"service": "auth", "version_constraint": ">=3.0.0",
                                "required": True}])
    repo.commit("auth 3.0.0, gateway needs it")
    repo.service("gateway", version="1.1.0",
                 dependencies=[{"service": "auth", "version_constraint": ">=4.0.0",
                                "required": True}])
    repo.commit("gateway wants auth 4 (ERROR at the tip)")
    db = tmp_path / "registry.db"
    ingest(repo.path, db)
    return repo, db


def test_immutable_database_download_does_not_leak_webhook_secrets(registry):
    from datasette.app import Datasette

    _, db = registry
    assert run("webhooks", "add", "http://127.0.0.1:9/x", "--db", str(db), "--name", "w1",
               "--secret", "S3CRETVALUE").exit_code == 0
    assert run("webhooks", "add", "http://bob:PASSW0RD@127.0.0.1:9/y", "--db", str(db),
               "--name", "w2").exit_code == 0

    async def download() -> tuple[int, bytes]:
        ds = Datasette(immutables=[str(db)])
        await ds.invoke_startup()
        response = await ds.client.get("/registry.db")
        return response.status_code, response.content

    status, body = asyncio.run(download())
    assert status == 403  # `datasette -i` (what `datasette publish` uses) offers no download
    assert b"S3CRETVALUE" not in body and b"PASSW0RD" not in body


def test_web_confirm_step_shows_the_status_preview(registry):
    """Issue 11 §4 web: the rollback button leads to a confirm page with the preview (a
    rollback that changes statuses without breaking anything used to be written at once,
    behind a generic confirm() text)."""
    from datasette.app import Datasette

    _, db = registry

    async def confirm_page() -> tuple[str, str]:
        ds = Datasette([str(db)])
        await ds.invoke_startup()
        root = {"ds_actor": ds.sign({"a": {"id": "root"}}, "actor")}
        page = await ds.client.get("/registry/-/aureacore/services/platform/gateway",
                                   cookies=root)
        assert page.status_code == 200
        # the button is a GET form (works without JavaScript) to the confirm page
        forms = re.findall(r'<form class="rollback" method="get" action="([^"]+)">\s*'
                           r'<input type="hidden" name="to" value="([0-9a-f]{40})">',
                           page.text)
        assert forms, "the service page offers a rollback"
        action, to = forms[0]
        confirm = await ds.client.get(f"{action}?to={to}", cookies=root)
        assert confirm.status_code == 200
        return to, confirm.text

    to, text = asyncio.run(confirm_page())
    # Rolling gateway back to 1.0.0 makes it CONFIGURED again: the confirm step says so
    # (ERROR -> CONFIGURED), as the CLI preview does before its question.
    preview = text.split('class="rollback-preview"', 1)[1].split("</ul>", 1)[0]
    assert "platform/gateway" in preview and "ERROR &rarr; <strong>CONFIGURED" in preview
    assert f'name="to" value="{to}"' in text and 'name="confirm" value="1"' in text
    assert "allow_breaking" not in text  # nothing breaks: no "anyway" button


def test_hook_sync_is_not_held_up_by_a_webhook_receiver_that_is_down(registry):
    from aureacore_db.githooks import run_sync

    repo, db = registry
    assert run("webhooks", "add", f"http://127.0.0.1:{closed_port()}/hook", "--db", str(db),
               "--name", "down", "--from-start").exit_code == 0
    repo.service("auth", version="3.0.1")
    repo.commit("auth 3.0.1")
    started = time.monotonic()
    summary = run_sync(db)
    elapsed = time.monotonic() - started
    assert "1 new commit" in summary
    assert elapsed < 5, f"the hook's sync took {elapsed:.1f}s because of outgoing webhooks"


def test_hook_sync_still_sends_outgoing_webhooks_in_the_background(registry):
    from http.server import BaseHTTPRequestHandler

    from conftest import LocalServer, wait_for

    from aureacore_db.githooks import run_sync

    received: list[bytes] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = LocalServer(Receiver)
    try:
        repo, db = registry
        assert run("webhooks", "add", f"{server.base}/hook", "--db", str(db),
                   "--name", "up", "--kind", "service_changed").exit_code == 0
        repo.service("auth", version="3.0.2")
        repo.commit("auth 3.0.2")
        assert "1 new commit" in run_sync(db)
        wait_for(lambda: received, "the background delivery")
        assert b"auth" in received[0]
    finally:
        server.close()
