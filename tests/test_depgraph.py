"""The dependency graph at mainline commits (real Git repos, real ingest), the ``deps``
command, and the Datasette page and canned queries of ``datasette_aureacore.deps``."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner
from conftest import rows, run_ingest
from datasette.app import Datasette

from aureacore_db.cli import cli
from aureacore_db.db import connect
from aureacore_db.depgraph import Cycle, DepGraphError, load_graph


def req(service: str) -> dict:
    return {"service": service, "required": True}


def opt(service: str) -> dict:
    return {"service": service, "required": False}


@pytest.fixture
def story(repo, db_path):
    """Three mainline commits (plus a merged side branch):

    1. db, cache; users requires db, optionally cache; auth requires users;
       web/frontend requires platform/auth, optionally platform/search (missing);
       web/admin optionally platform/auth.
    2. db requires auth: a required cycle auth -> users -> db -> auth.
    3. web/admin removed; db's dependency on auth made optional (an optional cycle).
    """
    repo.service("db")
    repo.service("cache")
    repo.service("users", dependencies=[req("db"), opt("cache")])
    repo.service("auth", dependencies=[{**req("users"), "version_constraint": ">=1.0.0"}])
    repo.service("frontend", namespace="web",
                 dependencies=[req("platform/auth"), opt("platform/search")])
    repo.service("admin", namespace="web", dependencies=[opt("platform/auth")])
    first = repo.commit("Initial services")
    repo.git("checkout", "-q", "-b", "side")
    repo.service("cache", version="1.1.0")
    side = repo.commit("Side branch: cache 1.1")
    repo.git("checkout", "-q", "main")
    repo.service("db", dependencies=[req("auth")])
    second = repo.commit("db requires auth: cycle")
    repo.git("merge", "-q", "--no-ff", "side", "-m", "Merge side")
    repo.rm("services/web/admin.yaml")
    repo.service("db", dependencies=[opt("auth")])
    third = repo.commit("Remove admin, db uses auth optionally")
    run_ingest(repo, db_path)
    return {"first": first, "second": second, "third": third, "side": side}


def graph_at(db_path, at=None):
    db = connect(db_path)
    try:
        return load_graph(db, at)
    finally:
        db.close()


def test_upstream_downstream_and_impact_at_an_earlier_commit(story, db_path):
    graph = graph_at(db_path, story["first"][:10])

    assert graph.commit == story["first"] and graph.seq == 1
    assert graph.services() == ["platform/auth", "platform/cache", "platform/db",
                                "platform/users", "web/admin", "web/frontend"]
    assert graph.missing() == ["platform/search"]
    up = {(x.service, x.depth, x.required) for x in graph.upstream("platform/auth")}
    assert up == {("platform/users", 1, True), ("platform/db", 2, True),
                  ("platform/cache", 2, False)}
    direct = graph.upstream("platform/auth", depth=1)
    assert [(x.service, x.version_constraint) for x in direct] == [("platform/users", ">=1.0.0")]
    down = {(x.service, x.depth, x.required) for x in graph.downstream("platform/auth")}
    assert down == {("web/frontend", 1, True), ("web/admin", 1, False)}

    impact = graph.impact("platform/db")
    assert [x.service for x in impact.breaks] == ["platform/users", "platform/auth",
                                                  "web/frontend"]
    assert [x.service for x in impact.degraded] == ["web/admin"]
    assert impact.breaks[-1].path == ["web/frontend", "platform/auth", "platform/users",
                                      "platform/db"]
    assert impact.direct_required == ["platform/users"] and impact.direct_optional == []

    cache = graph.impact("platform/cache")
    assert cache.breaks == [] and cache.direct_optional == ["platform/users"]
    assert {x.service for x in cache.degraded} == {"platform/users", "platform/auth",
                                                   "web/frontend", "web/admin"}
    search = graph.node("platform/search")
    assert search["present"] is False and search["status"] is None

    order = graph.order()
    assert order.generations == [["platform/cache", "platform/db"], ["platform/users"],
                                 ["platform/auth"], ["web/admin", "web/frontend"]]
    assert order.cyclic == [] and order.missing == ["platform/search"]
    assert graph.cycles() == []


def test_cycles_required_then_optional(story, db_path):
    second = graph_at(db_path, story["second"])
    loop = ["platform/auth", "platform/users", "platform/db"]
    assert second.cycles() == [Cycle(loop, True)]
    assert second.cycles()[0].text() == "platform/auth -> platform/users -> platform/db -> " \
                                        "platform/auth"
    assert {second.node(s)["status"] for s in loop} == {"ERROR"}
    order = second.order()
    assert order.cyclic == [sorted(loop)]
    assert order.generations[0] == ["platform/cache"]
    assert order.generations[1] == sorted(loop)
    impact = second.impact("platform/db")
    assert {x.service for x in impact.breaks} == {"platform/auth", "platform/users",
                                                  "web/frontend"}

    tip = graph_at(db_path)
    assert tip.commit == story["third"]
    assert tip.cycles() == [Cycle(loop, False)]
    assert tip.cycles(required_only=True) == []
    assert {tip.node(s)["status"] for s in loop} == {"CONFIGURED"}
    assert [x.service for x in tip.downstream("platform/auth", depth=1)] == [
        "platform/db", "web/frontend"]
    assert "web/admin" not in tip.graph
    assert tip.node("platform/cache")["version"] == "1.1.0"  # merged from the side branch


def test_commit_lookup_errors(story, db_path):
    with pytest.raises(DepGraphError, match="not on the mainline"):
        graph_at(db_path, story["side"])
    with pytest.raises(DepGraphError, match="unknown commit 'deadbeef'"):
        graph_at(db_path, "deadbeef")
    with pytest.raises(DepGraphError, match="unknown commit 'no-such-branch'"):
        graph_at(db_path, "no-such-branch")


def test_commits_are_named_as_git_names_them(story, repo, db_path):
    repo.git("tag", "v2", story["second"])
    for ref in ("HEAD~2", "main~2", "v2", story["second"][:7], f" {story['second']} "):
        assert graph_at(db_path, ref).commit == story["second"], ref
    assert graph_at(db_path, "").commit == graph_at(db_path, "HEAD").commit == story["third"]
    with pytest.raises(DepGraphError, match="no service"):
        graph_at(db_path).impact("platform/nope")
    assert graph_at(db_path).resolve("frontend") == "web/frontend"


def test_identical_files_in_two_namespaces_resolve_their_own_dependencies(repo, db_path):
    same = {"name": "api", "version": "1.0.0",
            "dependencies": [{"service": "store", "required": True}]}
    for team in ("teama", "teamb"):  # no namespace field: the folder gives it
        repo.write(f"services/{team}/api.yaml", same)
        repo.write(f"services/{team}/store.yaml", {"name": "store", "version": "1.0.0"})
    repo.commit("Two teams, one template")
    run_ingest(repo, db_path)
    graph = graph_at(db_path)
    assert graph.node("teamb/api")["status"] == "CONFIGURED"
    assert [x.service for x in graph.upstream("teamb/api")] == ["teamb/store"]
    assert [x.service for x in graph.upstream("teama/api")] == ["teama/store"]


def test_deps_command(story, db_path):
    runner = CliRunner()
    db = ["--db", str(db_path)]
    out = runner.invoke(cli, ["deps", "platform/db", "--at", story["first"][:8], "--json", *db])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["commit"] == story["first"] and report["status"] == "CONFIGURED"
    assert [x["service"] for x in report["impact"]["breaks"]] == [
        "platform/users", "platform/auth", "web/frontend"]

    text = runner.invoke(cli, ["deps", "auth", *db])
    assert text.exit_code == 0, text.output
    assert "platform/auth 1.0.0 [CONFIGURED]" in text.output
    assert "on an optional cycle: platform/auth -> platform/users -> platform/db" in text.output

    cycles = runner.invoke(cli, ["deps", "--cycles", "--at", story["second"], *db])
    assert "[required] platform/auth -> platform/users -> platform/db -> platform/auth" \
        in cycles.output
    order = runner.invoke(cli, ["deps", "--order", "--json", *db])
    assert json.loads(order.output)["order"]["generations"][0] == ["platform/cache"]

    assert runner.invoke(cli, ["deps", *db]).exit_code == 2
    missing = runner.invoke(cli, ["deps", "platform/nope", *db])
    assert missing.exit_code == 1 and "no service platform/nope" in missing.output
    side = runner.invoke(cli, ["deps", "--cycles", "--at", story["side"], *db])
    assert side.exit_code == 1 and "not on the mainline" in side.output


def test_deps_modes_combine_as_each_prints_alone(story, db_path):
    """SERVICE, --cycles and --order in one call: text is each mode's output in that order;
    JSON is one object with commit, seq and a key per mode."""
    runner = CliRunner()
    db = ["--db", str(db_path), "--at", story["second"]]
    alone = [runner.invoke(cli, ["deps", *mode, *db]) for mode in
             (["platform/auth"], ["--cycles"], ["--order"])]
    assert all(r.exit_code == 0 for r in alone), [r.output for r in alone]
    together = runner.invoke(cli, ["deps", "platform/auth", "--cycles", "--order", *db])
    assert together.output == "".join(r.output for r in alone)

    parts = json.loads(runner.invoke(cli, ["deps", "platform/auth", "--cycles", "--order",
                                           "--json", *db]).output)
    assert sorted(parts) == ["commit", "cycles", "order", "seq", "service"]
    assert parts["commit"] == story["second"]
    assert parts["service"] == json.loads(runner.invoke(
        cli, ["deps", "platform/auth", "--json", *db]).output)
    assert parts["cycles"] == json.loads(runner.invoke(
        cli, ["deps", "--cycles", "--json", *db]).output)["cycles"]


# -- Datasette -------------------------------------------------------------------------
async def _get(db_path, *paths: str):
    ds = Datasette(files=[str(db_path)])  # the plugin comes through its entry point
    await ds.invoke_startup()
    return [await ds.client.get(p) for p in paths]


def test_datasette_page_draws_the_neighbourhood(story, db_path):
    page, data, earlier, missing = asyncio.run(_get(
        db_path, "/-/aureacore/deps/platform/auth",
        "/-/aureacore/deps/platform/auth.json",
        f"/-/aureacore/deps/platform/auth?at={story['second'][:12]}&depth=1",
        "/-/aureacore/deps/platform/nope"))

    assert page.status_code == 200
    html = page.text
    assert "<svg" in html and "<script" not in html.split("<svg", 1)[1].split("</svg>")[0]
    assert 'data-service="platform/db"' in html and 'data-service="web/frontend"' in html
    assert 'class="node status-configured"' in html
    assert "stroke-dasharray" in html  # optional edges are dashed
    assert 'href="/registry/-/aureacore/deps/platform/users"' in html
    assert "No health checks recorded" in html

    assert data.status_code == 200
    body = data.json()
    assert body["service"] == "platform/auth" and body["commit"] == story["third"]
    columns = {n["service"]: n["column"] for n in body["nodes"]}
    assert columns["platform/auth"] == 0 and columns["platform/users"] == 1
    assert columns["web/frontend"] == -1
    assert {"service": "platform/auth", "depends_on": "platform/users", "required": True,
            "version_constraint": ">=1.0.0"} in body["edges"]

    assert earlier.status_code == 200
    assert 'class="node status-error"' in earlier.text
    assert f"?at={story['second'][:12]}" in earlier.text  # links keep the commit
    assert missing.status_code == 404


def test_canned_queries_for_dependents_and_cycles(story, db_path):
    dependents, cycles, at = asyncio.run(_get(
        db_path,
        "/registry/transitive_dependents.json?service=platform/users&_shape=array",
        "/registry/dependency_cycles.json?_shape=array",
        f"/registry/dependencies_at_commit.json?commit={story['first'][:10]}&_shape=array"))
    assert dependents.status_code == 200, dependents.text
    found = {(r["service_id"], r["depth"], r["required_chain"]) for r in dependents.json()}
    assert found == {("platform/auth", 1, 1), ("web/frontend", 2, 1), ("platform/db", 2, 0)}
    assert [r["service_id"] for r in cycles.json()] == [
        "platform/auth", "platform/db", "platform/users"]
    assert all(r["required_cycle"] is None for r in cycles.json())  # optional at the tip
    edges = {(r["service_id"], r["depends_on"], r["depends_on_present"]) for r in at.json()}
    assert ("web/admin", "platform/auth", 1) in edges
    assert ("web/frontend", "platform/search", 0) in edges
    assert rows(db_path, "select count(*) as n from commits")[0]["n"] == 5


def test_cycle_members_sql_function_finds_cycles_and_self_loops():
    import json
    import sqlite3

    from aureacore_db.revisions import register_sql_function

    conn = sqlite3.connect(":memory:")
    register_sql_function(conn)
    conn.execute("create table e (s text, d text)")
    conn.executemany("insert into e values (?, ?)", [
        ("a/x", "a/y"), ("a/y", "a/z"), ("a/z", "a/x"),  # a cycle of three
        ("b/self", "b/self"),  # a self-loop
        ("c/top", "a/x"), ("a/z", "c/leaf"),  # reach the cycle, or reached from it: not on it
    ])
    found = conn.execute("select aureacore_cycle_members(json_group_array(json_array(s, d))) "
                         "from e").fetchone()[0]
    assert json.loads(found) == ["a/x", "a/y", "a/z", "b/self"]
    assert conn.execute("select aureacore_cycle_members('[]')").fetchone()[0] == "[]"
