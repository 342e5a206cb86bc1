"""One real-browser test: ``aureacore-db serve --root`` + headless Chromium (Playwright).

Logs in as root with the token URL serve prints, opens a service page, clicks
"Roll back to this version", sees the confirm page with the plan and its preview,
confirms there, and sees the new version. Needs Debian's
``chromium`` (``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GitRepo
from test_web_pages import AUTH, build_sample

from aureacore_db.ingest import ingest

CHROMIUM = os.environ.get("AUREACORE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"  # .gitignored

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_serve(db: Path, port: int) -> tuple[subprocess.Popen, str]:
    """Start the server; returns it and the root login URL it prints."""
    cli = Path(sys.executable).with_name("aureacore-db")
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "aureacore_db.cli"]
    process = subprocess.Popen(
        [*command, "serve", str(db), "--root", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 30
    login = None
    assert process.stdout is not None
    while time.monotonic() < deadline and login is None:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}")
        found = re.search(r"(http://\S+/-/aureacore/login\?token=\w+)", line)
        login = found.group(1) if found else None
    assert login, "serve printed no root login URL"
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, login
        except OSError:
            time.sleep(0.1)
    raise AssertionError("serve did not start listening")


def test_root_rolls_back_from_the_browser(tmp_path):
    from playwright.sync_api import sync_playwright

    repo = GitRepo(tmp_path / "configs")
    shas = build_sample(repo)
    repo.service("web", version="1.0.0",
                 dependencies=[{"service": AUTH, "version_constraint": ">=1.2.0"}])
    repo.commit("web needs auth 1.2")  # so rolling auth back to 1.1.0 breaks web
    db = tmp_path / "registry.db"
    ingest(repo.path, db)
    head = repo.head()
    port = free_port()
    server, login = start_serve(db, port)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(login)
                assert page.locator(".actor").inner_text().strip() == "root"
                assert page.url.endswith("/registry/-/aureacore")  # lands on the overview
                page.goto(f"http://127.0.0.1:{port}/-/aureacore/services/{AUTH}")
                assert page.locator(".current-version").inner_text() == "1.2.0"
                dialogs: list[str] = []
                page.on("dialog", lambda dialog: (dialogs.append(dialog.message),
                                                  dialog.dismiss()))
                row = page.locator(f'tr[data-commit="{shas["scale"]}"]')
                row.get_by_role("button", name="Roll back to this version").click()
                # the confirm page: the plan and the status preview, before anything is written
                page.locator("h1", has_text=f"Roll back {AUTH}?").wait_for()
                assert "/rollback?to=" in page.url
                plan = page.locator("table.rollback-plan")
                assert "1.2.0" in plan.locator("tr.plan-now").inner_text()
                assert "1.1.0" in plan.locator("tr.plan-target").inner_text()
                preview = page.locator("ul.rollback-preview li.breaks")
                assert preview.count() == 1 and preview.is_visible()
                assert "platform/web" in preview.inner_text()
                assert "CONFIGURED → ERROR" in preview.inner_text()
                assert repo.head() == head  # nothing written yet
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "rollback-confirm.png"), full_page=True)
                page.get_by_role("button", name="Roll back anyway — breaks 1 service").click()
                page.locator(".current-version").wait_for()
                assert not dialogs  # no JavaScript dialog on the way
                assert page.locator(".current-version").inner_text() == "1.1.0"
                banner = page.locator(".message-info").inner_text()
                assert "rolled back platform/auth" in banner
                assert "status changed: platform/web CONFIGURED -> ERROR" in banner
                page.screenshot(path=str(tmp_path / "rollback.png"), full_page=True)
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert repo.head() != head
    assert "Rolled-back-by: root" in repo.git("log", "-1", "--format=%B")
    assert (tmp_path / "rollback.png").stat().st_size > 0


def test_a_person_clicks_through_overview_service_deps_diff_and_search(tmp_path):
    """Overview -> service -> its dependency graph -> back -> a diff -> commit search,
    as a person clicks it; screenshots go to test-artifacts/."""
    from playwright.sync_api import expect, sync_playwright

    repo = GitRepo(tmp_path / "configs")
    shas = build_sample(repo)
    db = tmp_path / "registry.db"
    ingest(repo.path, db)
    ARTIFACTS.mkdir(exist_ok=True)
    server, login = start_serve(db, free_port())
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error"
                        else None)
                page.goto(login)
                expect(page.locator("h1")).to_have_text("Services overview")
                chart = page.locator("svg.aureacore-status-chart")
                expect(chart).to_be_visible()
                assert chart.locator("g.point").count() == 6
                page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

                page.locator("table.recent").get_by_role("link", name=AUTH).first.click()
                expect(page.locator("h1")).to_contain_text(AUTH)
                page.screenshot(path=str(ARTIFACTS / "service.png"), full_page=True)

                page.get_by_role("link", name="Dependency graph").click()
                expect(page.locator("svg.aureacore-deps")).to_be_visible()
                expect(page.locator('g[data-service="payments/billing"]')).to_be_visible()
                page.screenshot(path=str(ARTIFACTS / "deps.png"), full_page=True)

                page.locator(".crumbs").get_by_role("link", name=AUTH).click()
                expect(page.locator(".current-version")).to_have_text("1.2.0")
                page.locator(f'tr[data-commit="{shas["fixed"]}"] a.diff-link').click()
                expect(page.locator("table.key-changes")).to_contain_text(
                    "$.parameters.timeout_ms")
                expect(page.locator(".diff .add").first).to_be_visible()
                page.screenshot(path=str(ARTIFACTS / "diff.png"), full_page=True)

                page.locator(".crumbs").get_by_role("link", name="registry").click()
                page.locator('a[href$="/registry/commits"]').first.click()
                page.locator('input[name="_search"]').fill("ledger")
                page.locator('input[name="_search"]').press("Enter")
                expect(page.locator("table.rows-and-columns tbody tr")).to_have_count(1)
                expect(page.locator("table.rows-and-columns")).to_contain_text(
                    "billing: needs ledger")
                page.screenshot(path=str(ARTIFACTS / "search.png"), full_page=True)
                assert not errors, errors  # e.g. a script the page's CSP refused
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert all((ARTIFACTS / f"{name}.png").stat().st_size > 0
               for name in ("overview", "service", "deps", "diff", "search"))
