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


def test_long_query_results_come_in_pages_on_the_web_and_whole_from_the_cli(
        repo: GitRepo, db_path) -> None:
    """A canned query that can list thousands of rows shows 100 by default on the web
    (its HTML renders every row), pages on with limit and offset, and gives every row
    from ``aureacore-db query`` unless asked for a page."""
    from aureacore_db.queries import run_query

    for i in range(105):
        repo.service(f"svc-{i:03d}", dependencies=[{"service": "platform/svc-000"}]
                     if i else [])
    repo.commit("105 services")
    run_ingest(repo, db_path)
    client = Client(make_datasette(db_path))
    try:
        def ids(query: str) -> list[str]:
            response = client.get(f"/registry/{query}&_shape=objects")
            assert response.status_code == 200, response.text
            return [row["service_id"] for row in response.json()["rows"]]

        every = [f"platform/svc-{i:03d}" for i in range(105)]
        assert ids("state_as_of.json?commit=") == every[:100]
        assert ids("state_as_of.json?commit=&offset=100") == every[100:]
        assert ids("state_as_of.json?commit=&limit=-1") == every
        assert ids("state_as_of.json?commit=&limit=10&offset=20") == every[20:30]
        assert ids("dependents.json?service=platform/svc-000") == every[1:101]
        assert ids("transitive_dependents.json?service=platform/svc-000&limit=-1") \
            == every[1:]
        assert len(ids("dependencies_at_commit.json?commit=")) == 100
        assert ids("dependencies_at_commit.json?commit=&offset=100") == every[101:]
        page = client.get("/registry/state_as_of?commit=")
        assert page.status_code == 200 and "platform/svc-099" in page.text
        assert "platform/svc-100" not in page.text
    finally:
        client.close()
    assert [r[0] for r in run_query(db_path, "state_as_of", {"commit": ""}).rows] == every
    assert len(run_query(db_path, "dependents", {"service": "platform/svc-000"}).rows) == 104
    assert [r[0] for r in run_query(db_path, "state_as_of",
                                    {"commit": "", "limit": "5", "offset": "3"}).rows] == every[3:8]


def test_overview_chart_follows_every_ingest(repo: GitRepo, db_path) -> None:
    """The status chart is drawn once per ingest and kept: the next ingest's commits
    and statuses show on the next request."""
    repo.service("db")
    first = repo.commit("db")
    run_ingest(repo, db_path)
    client = Client(make_datasette(db_path))
    try:
        chart = client.get("/-/aureacore.json").json()["status_over_time"]
        assert [(p["commit_sha"], p["CONFIGURED"], p["ERROR"]) for p in chart] == [
            (first, 1, 0)]
        assert client.get("/-/aureacore.json").json()["status_over_time"] == chart

        repo.write("services/platform/api.yaml", "name: api\nnamespace: platform\n"
                   "version: [not, a, version\n")
        second = repo.commit("api, broken")
        run_ingest(repo, db_path)
        chart = client.get("/-/aureacore.json").json()["status_over_time"]
        assert [(p["commit_sha"], p["CONFIGURED"], p["ERROR"]) for p in chart] == [
            (first, 1, 0), (second, 1, 1)]
    finally:
        client.close()


def test_a_service_with_many_dependents_lists_them_in_pages(repo: GitRepo, db_path) -> None:
    """The dependency page shows 100 of each long list with the whole counts and links
    to the next page; ``.json`` pages the same way, ``limit=-1`` gives every one."""
    repo.service("core")
    for i in range(130):
        repo.service(f"app-{i:03d}", dependencies=[{"service": "platform/core",
                                                    "required": i % 2 == 0}])
    repo.commit("130 services need core")
    run_ingest(repo, db_path)
    client = Client(make_datasette(db_path))
    page = "/-/aureacore/deps/platform/core"
    try:
        first = client.get(page + ".json").json()
        assert first["page"] == {"limit": 100, "offset": 0, "more": True, "counts": {
            "upstream": 0, "downstream": 130, "breaks": 65, "degraded": 65, "cycles": 0},
            "cycles_limit": 5, "cycles_offset": 0, "cycles_more": False}
        assert [d["service"] for d in first["report"]["downstream"]] == [
            f"platform/app-{i:03d}" for i in range(100)]
        assert len(first["report"]["impact"]["breaks"]) == 65
        second = client.get(page + ".json?offset=100").json()
        assert [d["service"] for d in second["report"]["downstream"]] == [
            f"platform/app-{i:03d}" for i in range(100, 130)]
        assert second["page"]["more"] is False and second["report"]["impact"]["breaks"] == []
        whole = client.get(page + ".json?limit=-1").json()
        assert len(whole["report"]["downstream"]) == 130
        assert whole["page"]["limit"] is None and whole["page"]["more"] is False
        small = client.get(page + ".json?limit=10&offset=125").json()
        assert [d["service"] for d in small["report"]["downstream"]] == [
            f"platform/app-{i:03d}" for i in range(125, 130)]

        html = client.get(page).text
        assert "Depended on by (130)" in html and "65 in all" in html
        assert "platform/app-099</a></td>" in html  # the table's rows
        assert "platform/app-100</a></td>" not in html
        assert 'href="/registry/-/aureacore/deps/platform/core?offset=100">next page' in html
        assert 'href="/registry/-/aureacore/deps/platform/core?limit=-1">all' in html
        later = client.get(page + "?offset=100").text
        assert "platform/app-129</a></td>" in later
        assert "platform/app-099</a></td>" not in later
        assert 'href="/registry/-/aureacore/deps/platform/core">previous page' in later
        assert "next page" not in later
    finally:
        client.close()


def test_current_errors_are_the_problems_of_each_current_services_tip_verdict(
        repo: GitRepo, db_path) -> None:
    """The view only looks at services whose counts show problems: it must still list
    exactly the problems of each current service's newest status, through fixes,
    relapses and removals."""
    import sqlite3

    repo.service("db")
    repo.write("services/platform/api.yaml", "name: api\nnamespace: platform\n"
               "version: 1.0.0\ndependancies: []\n")  # unknown key: ERROR
    repo.service("cache", dependencies=[{"service": "platform/ghost", "required": True}])
    repo.service("old", version="not-a-version")
    repo.commit("api, cache and old are broken")
    run_ingest(repo, db_path)
    repo.service("api")  # fixed
    repo.service("db", version="one")  # broken now
    (repo.path / "services/platform/old.yaml").unlink()  # gone while broken
    repo.commit("api fixed, db broken, old removed")
    run_ingest(repo, db_path)

    every_problem_at_the_tip = """
        select v.service_id, v.severity, v.kind, v.json_path, v.message
        from validation_errors v join services s on s.id = v.service_id and s.removed = 0
        where v.mainline = 1 and v.seq = (select max(st.seq) from status st
                                          where st.service_id = v.service_id
                                          and st.mainline = 1)"""
    with sqlite3.connect(db_path) as conn:
        listed = conn.execute("select service_id, severity, kind, json_path, message "
                              "from current_errors").fetchall()
        expected = conn.execute(every_problem_at_the_tip).fetchall()
    assert sorted(listed) == sorted(expected)
    assert {row[0] for row in listed} == {"platform/cache", "platform/db"}
    assert [row[0] for row in listed] == sorted(row[0] for row in listed)  # by service
