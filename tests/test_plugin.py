"""The plugin as a Datasette plugin: entry point, plain ``datasette``, several registries."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import GitRepo
from datasette.app import Datasette
from test_browser import free_port
from test_web_pages import AUTH, Client, build_sample

from aureacore_db.ingest import ingest


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> dict[str, Any]:
    """Two registries: ``registry`` (the sample history) and ``other`` (one service)."""
    base = tmp_path_factory.mktemp("plugin")
    repo = GitRepo(base / "configs")
    shas = build_sample(repo)
    ingest(repo.path, base / "registry.db")
    other = GitRepo(base / "other-configs")
    other.service("solo", namespace="edge", version="9.0.0")
    other.commit("Add solo")
    other.service("solo", namespace="edge", version="9.0.1",
                  description="Edge proxy. " + "It terminates TLS for every team. " * 12)
    patched = other.commit("edge: patch CVE-2024-1234 in solo\n\nUpgrade the TLS library.")
    ingest(other.path, base / "other.db")
    return {"db": base / "registry.db", "other": base / "other.db", "shas": shas,
            "patched": patched}


@pytest.fixture(scope="module")
def plain(two) -> Client:
    """Datasette as `datasette registry.db` builds it: no metadata, no plugins_dir."""
    client = Client(Datasette([str(two["db"])]))
    yield client
    client.loop.close()


def test_datasette_plugins_lists_it():
    result = subprocess.run([sys.executable, "-m", "datasette", "plugins"], check=True,
                            capture_output=True, text=True, timeout=60)
    ours = [p for p in json.loads(result.stdout) if p["name"] == "aureacore-db"]
    [plugin] = ours  # one entry point: the dependency, Git hook and promotion routes too
    assert plugin["templates"]
    assert {"canned_queries", "register_routes", "render_cell", "get_metadata",
            "permission_allowed", "skip_csrf"} <= set(plugin["hooks"])


def test_plain_datasette_serves_pages_and_canned_queries(plain, two):
    overview = plain.get("/-/aureacore")
    assert overview.status_code == 200 and "Services overview" in overview.text
    assert plain.get("/registry/-/aureacore.json").json()["services"] == 3
    service = plain.get(f"/registry/-/aureacore/services/{AUTH}")
    assert service.status_code == 200 and 'class="aureacore-highlight"' in service.text
    errors = plain.get("/registry/errors_now.json?_shape=array")
    assert errors.status_code == 200
    assert [row["service_id"] for row in errors.json()] == ["payments/billing"]
    blame = plain.get("/registry/parameter_blame.json?_shape=array&key=replicas&service=")
    assert {row["commit_sha"] for row in blame.json()} >= {two["shas"]["scale"]}
    assert plain.get("/registry/transitive_dependents.json?service=" + AUTH).status_code == 200
    table = plain.get("/registry/history")
    assert "<h1>History</h1>" in table.text  # the shipped title, without -m metadata.yml


def test_plain_datasette_rollback_needs_the_allow_block(plain):
    """No metadata: the shipped allow block applies (root only), not "everyone"."""
    page = plain.get(f"/-/aureacore/services/{AUTH}")
    assert "Roll back to this version" not in page.text
    root = plain.get(f"/-/aureacore/services/{AUTH}",
                     cookies=plain.actor_cookies({"id": "root"}))
    assert "Roll back to this version" in root.text


def test_two_registries_each_page_names_its_database(two):
    client = Client(Datasette([str(two["db"]), str(two["other"])]))
    try:
        solo = client.get("/other/-/aureacore")
        assert solo.status_code == 200
        assert 'href="/other/-/aureacore/services/edge/solo"' in solo.text
        assert "Registry <strong>other</strong>" in solo.text
        assert 'href="/registry/-/aureacore"' in solo.text  # the other registry
        assert client.get("/other/-/aureacore.json").json()["services"] == 1
        assert client.get("/registry/-/aureacore.json").json()["services"] == 3
        assert client.get("/other/-/aureacore/services/edge/solo").status_code == 200
        assert client.get(f"/other/-/aureacore/services/{AUTH}").status_code == 404
        service = client.get("/other/-/aureacore/services/edge/solo")
        assert re.search(r'href="/other/-/aureacore/commits/[0-9a-f]{40}"', service.text)
        assert client.get("/other/errors_now.json").status_code == 200
        assert client.get("/_memory/-/aureacore").status_code == 404  # not a registry
    finally:
        client.loop.close()


def _serve(*args: str) -> subprocess.Popen:
    """``aureacore-db serve ARGS``, its output on a pipe."""
    cli = Path(sys.executable).with_name("aureacore-db")
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "aureacore_db.cli"]
    process = subprocess.Popen([*command, "serve", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return process


def test_serve_several_databases(two):
    port = free_port()
    process = _serve(str(two["db"]), "--db", str(two["other"]), "--port", str(port))
    urls: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        while len(urls) < 2 and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                raise AssertionError(f"serve exited with {process.returncode}")
            urls += re.findall(r"(http://\S+/-/aureacore)\b", line)
        assert [u.rsplit("/", 3)[-3] for u in urls] == ["registry", "other"]
        body = None
        while body is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(urls[1] + ".json", timeout=5) as response:
                    body = json.loads(response.read())
            except OSError:
                time.sleep(0.1)
        assert body is not None and body["services"] == 1
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_rows_link_to_each_other_through_foreign_keys(plain, two):
    shas = two["shas"]
    row = plain.get(f"/registry/commits/{shas['scale']}")
    assert "Links from other tables" in row.text
    assert f'href="/registry/history?commit_sha={shas["scale"]}"' in row.text
    history = plain.get(f"/registry/history.json?_shape=array&commit_sha={shas['scale']}")
    config_id = history.json()[0]["config_id"]
    table = plain.get(f"/registry/history?commit_sha={shas['scale']}")
    assert f'href="/registry/configs/{config_id}"' in table.text  # config_id is a link
    commits = plain.get("/registry/commits")
    assert (f'<a href="/registry/-/aureacore/commits/{shas["initial"]}" title='
            f'"{shas["initial"]}">{shas["initial"][:10]}</a>') in commits.text  # parents


def test_full_text_search_finds_the_commit(two):
    client = Client(Datasette([str(two["other"])]))
    try:
        found = client.get("/other/commits.json?_shape=array&_search=CVE-2024-1234").json()
        assert [row["sha"] for row in found] == [two["patched"]]
        assert client.get("/other/commits.json?_shape=array&_search=CVE-2024-9999").json() == []
        assert 'name="_search"' in client.get("/other/configs").text  # Datasette's box
        tls = client.get("/other/configs.json?_shape=array&_search=terminates").json()
        assert len(tls) == 1 and "9.0.1" in tls[0]["raw"]
    finally:
        client.loop.close()


def test_long_configs_are_previews_on_table_pages_and_full_on_row_pages(two):
    client = Client(Datasette([str(two["other"])]))
    try:
        table = client.get("/other/configs")
        assert "full on the row page" in table.text
        assert "It terminates TLS for every team. " * 12 not in table.text
        config_id = client.get("/other/configs.json?_shape=array&_search=terminates").json()[
            0]["id"]
        row = client.get(f"/other/configs/{config_id}")
        assert "full on the row page" not in row.text
        assert ("It terminates TLS for every team. " * 12).strip() in row.text
    finally:
        client.loop.close()


def test_search_index_is_added_to_an_older_database(tmp_path):
    """A database from before full-text search gets it, with its old rows, on ingest."""
    import sqlite_utils

    repo = GitRepo(tmp_path / "configs")
    repo.service("auth", version="1.0.0")
    repo.commit("auth: first, fixes CVE-2023-0001")
    db_path = tmp_path / "registry.db"
    ingest(repo.path, db_path)
    db = sqlite_utils.Database(db_path)
    for table in ("commits", "configs"):
        db[table].disable_fts()
    db["_sqlite_migrations"].drop()  # (a database from before migrations)
    db.conn.close()
    repo.service("auth", version="1.0.1")
    repo.commit("auth: bump for CVE-2024-1234")
    ingest(repo.path, db_path)
    db = sqlite_utils.Database(db_path)
    assert sorted(r["message"].strip() for r in db["commits"].search("CVE*")) == [
        "auth: bump for CVE-2024-1234", "auth: first, fixes CVE-2023-0001"]
