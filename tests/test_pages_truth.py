"""Pages and queries that tell the truth (issue 9 §3): links both ways to the dependency
page, counts that say what they cut, nested parameter keys, unknown commits that say so,
commit references as Git names them, refused rollbacks, the single-use login link and the
status chart."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import GitRepo
from test_web_pages import AUTH, Client, build_sample

from aureacore_db.cli import cli
from aureacore_db.ingest import ingest
from aureacore_db.revisions import UnknownCommit, resolve_commit
from aureacore_db.rollback import RollbackRefused, describe, rollback
from aureacore_db.web import make_datasette


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("truth")
    repo = GitRepo(base / "configs")
    shas = build_sample(repo)
    repo.git("tag", "v-scale", shas["scale"])
    db_path = base / "myreg.db"
    ingest(repo.path, db_path)
    with pytest.raises(RollbackRefused):  # a typo: recorded as a refused attempt
        rollback(db_path, "platform/auht", shas["scale"], actor="root")
    return {"repo": repo, "db": db_path, "shas": shas}


@pytest.fixture(scope="module")
def client(sample) -> Client:
    c = Client(make_datasette(sample["db"]))
    yield c
    c.close()


def hrefs(html: str) -> set[str]:
    return {h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+)"', html)}


# -- the dependency page is linked both ways ---------------------------------------------
def test_dependency_page_is_linked_from_and_back_to_the_other_pages(client):
    deps = f"/myreg/-/aureacore/deps/{AUTH}"
    assert deps in hrefs(client.get(f"/myreg/-/aureacore/services/{AUTH}").text)
    assert "/myreg/-/aureacore/deps/payments/billing" in hrefs(
        client.get("/myreg/-/aureacore").text)  # billing is in ERROR
    page = client.get(deps)
    assert page.status_code == 200
    crumbs = hrefs(page.text.split('class="crumbs"', 1)[1].split("</p>", 1)[0])
    assert {"/myreg/-/aureacore", f"/myreg/-/aureacore/services/{AUTH}"} <= crumbs
    assert "/registry/services" not in page.text


def test_a_missing_dependency_is_plain_text_not_a_dead_link(client):
    page = client.get("/myreg/-/aureacore/services/payments/billing").text
    upstream = page.split('class="upstream"', 1)[1].split("</table>", 1)[0]
    assert "platform/ledger (missing)" in upstream
    assert "/myreg/-/aureacore/services/platform/ledger" not in hrefs(page)
    assert f"/myreg/-/aureacore/services/{AUTH}" in hrefs(upstream)  # one that exists
    assert client.get("/myreg/-/aureacore/services/platform/ledger").status_code == 404


def test_old_dependency_page_address_still_works(client):
    moved = client.get(f"/-/aureacore/deps/{AUTH}?database=myreg&depth=1")
    assert moved.status_code == 302
    assert moved.headers["location"] == f"/myreg/-/aureacore/deps/{AUTH}?depth=1"
    assert client.get(f"/-/aureacore/deps/{AUTH}").status_code == 200


# -- the service page says what it cuts --------------------------------------------------
def test_service_page_says_how_many_parameter_changes_and_links_to_all(tmp_path):
    repo = GitRepo(tmp_path / "configs")
    repo.service("wide", parameters={f"p{i:03d}": 0 for i in range(150)})
    repo.commit("Add wide")
    repo.service("wide", parameters={f"p{i:03d}": 1 for i in range(150)})
    repo.commit("Change every parameter")
    ingest(repo.path, tmp_path / "wide.db")
    c = Client(make_datasette(tmp_path / "wide.db"))
    try:
        page = c.get("/wide/-/aureacore/services/platform/wide")
        assert "Newest 200 of 303 shown" in page.text
        rest = "/wide/parameter_changes?service_id=platform/wide&_sort_desc=seq"
        assert rest in hrefs(page.text)
        table = c.get(rest.replace("parameter_changes?", "parameter_changes.json?")
                      + "&_shape=array&_size=max").json()
        assert len(table) == 303
        assert re.search(r"<details class=\"config\"[^>]*><summary>The file \(154 lines\)",
                         page.text)  # long: collapsed (no "open")
        assert "<details class=\"config\" open>" not in page.text
    finally:
        c.close()


# -- parameter_blame finds nested keys ----------------------------------------------------
def test_parameter_blame_matches_a_leaf_name_a_path_tail_or_a_full_path(tmp_path):
    repo = GitRepo(tmp_path / "configs")
    repo.service("chart", parameters={"replicas": 1, "replicas_max": 3,
                                      "resources": {"replicas": 2}})
    repo.commit("Add chart")
    repo.service("chart", parameters={"replicas": 2, "replicas_max": 4,
                                      "resources": {"replicas": 3}})
    repo.commit("Scale chart")
    ingest(repo.path, tmp_path / "helm.db")
    c = Client(make_datasette(tmp_path / "helm.db"))
    try:
        def keys(key: str) -> set[str]:
            found = c.get("/helm/parameter_blame.json", params={
                "key": key, "service": "", "_shape": "array"})
            assert found.status_code == 200, found.text
            return {r["key"] for r in found.json()}

        assert keys("replicas") == {"$.parameters.replicas",
                                    "$.parameters.resources.replicas"}
        assert keys("resources.replicas") == {"$.parameters.resources.replicas"}
        assert keys("$.parameters.replicas") == {"$.parameters.replicas"}
        assert keys("plicas") == set()
        form = c.get("/helm/parameter_blame").text
        assert "$.parameters.replicas" in form and "not $.replicas_max" in form
    finally:
        c.close()


# -- unknown commits say so; commits are named as Git names them -------------------------
def test_diff_with_an_unknown_commit_is_a_404_with_the_reason(client, sample):
    page = client.get(f"/myreg/-/aureacore/services/{AUTH}/diff?from=deadbeef")
    assert page.status_code == 404
    assert "unknown commit &#39;deadbeef&#39;" in page.text or \
        "unknown commit 'deadbeef'" in page.text
    ok = client.get(f"/myreg/-/aureacore/services/{AUTH}/diff.json?from=HEAD~5&to=v-scale")
    assert ok.status_code == 200
    assert ok.json()["from"]["commit_sha"] == sample["shas"]["initial"]
    assert ok.json()["to"]["commit_sha"] == sample["shas"]["scale"]
    assert client.get("/myreg/-/aureacore/commits/deadbeef").status_code == 404


def test_state_as_of_takes_git_names_and_rejects_unknown_commits(client, sample):
    def rows(commit: str):
        return client.get("/myreg/state_as_of.json", params={
            "commit": commit, "namespace": "", "_shape": "array"})

    tip = rows("")
    assert tip.status_code == 200 and len(tip.json()) == 3
    assert rows("HEAD").json() == tip.json()
    first = rows("HEAD~5").json()
    assert {r["commit_sha"] for r in first} == {sample["shas"]["initial"]}
    assert {r["version"] for r in rows("v-scale").json() if r["service_id"] == AUTH} == {
        "1.1.0"}
    page = client.get("/myreg/state_as_of?commit=deadbeef&namespace=")
    assert "commit: unknown commit &#39;deadbeef&#39;" in page.text
    assert "user-defined function" not in page.text


def test_dependencies_at_commit_defaults_to_the_tip(client):
    edges = client.get("/myreg/dependencies_at_commit.json?commit=&_shape=array").json()
    assert ("payments/billing", "platform/ledger") in {
        (e["service_id"], e["depends_on"]) for e in edges}  # added in the last commit
    page = client.get("/myreg/dependencies_at_commit?commit=nope")
    assert "unknown commit &#39;nope&#39;" in page.text


def test_cli_accepts_git_names_and_says_unknown_commit(sample):
    runner = CliRunner()
    db = str(sample["db"])
    bad = runner.invoke(cli, ["query", "state_as_of", "--db", db, "-p", "commit=deadbeef"])
    assert bad.exit_code != 0 and "unknown commit 'deadbeef'" in bad.output
    at = runner.invoke(cli, ["deps", AUTH, "--at", "HEAD~5", "--db", db, "--json"])
    assert at.exit_code == 0, at.output
    assert sample["shas"]["initial"] in at.output
    plan = describe(sample["db"], AUTH, "v-scale")
    assert plan["target"]["commit_sha"] == sample["shas"]["scale"]
    assert plan["target"]["version"] == "1.1.0"


def test_ambiguous_short_sha_says_so():
    conn = sqlite3.connect(":memory:")
    conn.execute("create table commits (sha text primary key, seq int, mainline int)")
    conn.executemany("insert into commits values (?, ?, 1)",
                     [("abcd" + "0" * 36, 1), ("abcd" + "1" * 36, 2)])
    with pytest.raises(UnknownCommit, match="ambiguous"):
        resolve_commit(conn, "abcd")
    assert resolve_commit(conn, "abcd1").seq == 2
    assert resolve_commit(conn, "").seq == 2
    with pytest.raises(UnknownCommit, match="fewer than 4"):
        resolve_commit(conn, "HEAD~3")


def test_sql_commit_function_refuses_blobs_and_long_text_at_once(monkeypatch):
    """``aureacore_commit(zeroblob(100000000))`` took 1.5 s (the blob was turned into a
    100 MB repr first); a blob or an over-long text is now refused before any work."""
    from aureacore_db.revisions import register_sql_function

    conn = sqlite3.connect(":memory:")
    conn.execute("create table commits (sha text primary key, seq int, mainline int)")
    conn.execute("insert into commits values (?, 1, 1)", ["ab" * 20])
    register_sql_function(conn)
    reasons: list[str] = []
    monkeypatch.setattr("sys.unraisablehook", lambda u: reasons.append(str(u.exc_value)))
    sqlite3.enable_callback_tracebacks(True)
    try:
        for arg in ("zeroblob(100000000)", "x'abab'", "printf('%.*c', 5000, 'a')"):
            with pytest.raises(sqlite3.OperationalError):
                conn.execute(f"select aureacore_commit({arg})").fetchone()
    finally:
        sqlite3.enable_callback_tracebacks(False)
    assert reasons[:2] == ["a commit reference is text, not a blob"] * 2
    assert reasons[2].startswith("commit reference too long (5,000 characters")
    assert conn.execute("select aureacore_commit('abab')").fetchone()[0] == "ab" * 20
    with pytest.raises(UnknownCommit, match="too long"):
        resolve_commit(conn, " " * 2000)


# -- the overview ------------------------------------------------------------------------
def test_overview_links_only_what_exists_and_counts_link_to_their_rows(client):
    page = client.get("/myreg/-/aureacore")
    links = hrefs(page.text)
    assert "/myreg/-/aureacore/services/platform/auht" not in links
    assert "platform/auht <span class=\"muted\">(no such service)</span>" in page.text
    assert "no service &#39;platform/auht&#39;" in page.text  # the reason
    assert "/myreg/services?removed=1" in links


def test_with_warnings_count_links_to_those_services(tmp_path):
    repo = GitRepo(tmp_path / "configs")
    repo.service("a", dependencies=[{"service": "gone", "required": False}])
    repo.commit("a optionally needs something missing")
    ingest(repo.path, tmp_path / "w.db")
    c = Client(make_datasette(tmp_path / "w.db"))
    try:
        link = "/w/services?namespace=platform&removed=0&warning_count__gt=0"
        assert link in hrefs(c.get("/w/-/aureacore").text)
        listed = c.get(link.replace("services?", "services.json?") + "&_shape=array").json()
        assert [r["id"] for r in listed] == ["platform/a"]
    finally:
        c.close()


def test_optional_cycle_wording(tmp_path):
    repo = GitRepo(tmp_path / "configs")
    repo.service("a", dependencies=[{"service": "b", "required": False}])
    repo.service("b", dependencies=[{"service": "a", "required": False}])
    repo.commit("an optional cycle")
    ingest(repo.path, tmp_path / "c.db")
    c = Client(make_datasette(tmp_path / "c.db"))
    try:
        page = c.get("/c/-/aureacore/deps/platform/a")
        assert "On an optional cycle" in page.text and "On a optional" not in page.text
    finally:
        c.close()


def test_root_login_link_lands_on_the_overview_and_says_it_is_single_use(sample):
    ds = make_datasette(sample["db"])
    c = Client(ds)
    try:
        token = ds._root_token = "a" * 64
        first = c.get(f"/-/aureacore/login?token={token}")
        assert first.status_code == 302
        assert first.headers["location"] == "/myreg/-/aureacore"
        assert "ds_actor" in first.cookies
        again = c.get(f"/-/aureacore/login?token={token}")
        assert again.status_code == 403
        assert "works once" in again.text and "serve --root" in again.text
    finally:
        c.close()


def test_serve_prints_the_login_link_of_the_plugin(sample, monkeypatch):
    import uvicorn

    from aureacore_db.web import serve

    printed: list[str] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)  # print, don't listen
    serve(sample["db"], root=True, echo=printed.append)
    assert any(re.search(r"/-/aureacore/login\?token=\w{64}$", line) for line in printed)
    assert any("works once" in line for line in printed)


def test_status_chart_counts_per_mainline_commit(client, sample):
    shas = sample["shas"]
    data = client.get("/myreg/-/aureacore.json").json()["status_over_time"]
    by_commit = {p["commit_sha"]: (p["CONFIGURED"], p["ERROR"]) for p in data}
    assert [p["commit_sha"] for p in data] == [shas[k] for k in (
        "initial", "scale", "broken", "fixed", "moved", "ledger")]
    assert by_commit[shas["initial"]] == (3, 0)
    assert by_commit[shas["broken"]][1] >= 1  # auth's typo
    assert by_commit[shas["fixed"]] == (3, 0)
    assert by_commit[shas["ledger"]] == (2, 1)  # billing needs a missing ledger
    page = client.get("/myreg/-/aureacore").text
    svg = page.split('<svg xmlns="http://www.w3.org/2000/svg" class="aureacore-status-chart"',
                     1)[1].split("</svg>", 1)[0]
    assert 'aria-labelledby="status-chart-title status-chart-desc"' in svg
    assert f"{shas['ledger'][:10]} (" in svg and "2 CONFIGURED, 1 ERROR</title>" in svg
    assert svg.count('<g class="point"') == 6
    assert "<script" not in svg


def test_status_chart_is_bounded_on_long_histories(tmp_path):
    from datasette_aureacore import status_over_time

    repo = GitRepo(tmp_path / "configs")
    for i in range(12):
        repo.service("a", version=f"1.0.{i}", **({"oops": 1} if i % 2 else {}))
        repo.commit(f"step {i}")
    ingest(repo.path, tmp_path / "long.db")
    conn = sqlite3.connect(tmp_path / "long.db")
    points = status_over_time(conn, points=5)
    conn.close()
    assert len(points) <= 5
    assert points[-1]["seq"] == 12 and (points[-1]["CONFIGURED"], points[-1]["ERROR"]) == (0, 1)
    assert all(p["CONFIGURED"] + p["ERROR"] == 1 for p in points)
