"""Pages at 10,000 services (issue 12): what keeps them fast must not make them stale or
cut them short unasked."""

from __future__ import annotations

from conftest import GitRepo, run_ingest
from test_web_pages import Client

from aureacore_db.web import make_datasette


def test_dependency_page_follows_every_ingest(repo: GitRepo, db_path) -> None:
    """The graph is loaded once per ingest and kept: a new commit shows on the next
    request, as does an older commit asked for by name."""
    repo.service("db")
    repo.service("api", dependencies=[{"service": "platform/db"}])
    first = repo.commit("api needs db")
    run_ingest(repo, db_path)
    client = Client(make_datasette(db_path))
    try:
        before = client.get("/-/aureacore/deps/platform/db.json").json()
        assert [n["service"] for n in before["nodes"]] == ["platform/api", "platform/db"]
        assert client.get("/-/aureacore/deps/platform/db.json").json() == before  # kept

        repo.service("web", dependencies=[{"service": "platform/db"}])
        repo.service("db", version="2.0.0")
        repo.commit("web needs db too; db 2.0.0")
        run_ingest(repo, db_path)
        after = client.get("/-/aureacore/deps/platform/db.json").json()
        assert [n["service"] for n in after["nodes"]] == [
            "platform/api", "platform/db", "platform/web"]
        assert [d["service"] for d in after["report"]["downstream"]] == [
            "platform/api", "platform/web"]
        assert after["report"]["version"] == "2.0.0"

        then = client.get(f"/-/aureacore/deps/platform/db.json?at={first[:10]}").json()
        assert then["commit"] == first
        assert [n["service"] for n in then["nodes"]] == ["platform/api", "platform/db"]
        assert then["report"]["version"] == "1.0.0"
    finally:
        client.close()
