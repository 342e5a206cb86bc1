"""Environments in SQL and in the browser (issue 10): the environment_matrix, drift and
pending_promotion canned queries, the environments page, the service page per
environment and the diff between two environments — on a real repository with branches
develop (dev), staging and main (prod) that drifted apart."""

from __future__ import annotations

import html
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from click.testing import CliRunner
from conftest import GitRepo

from aureacore_db.cli import cli
from aureacore_db.ingest import ingest
from aureacore_db.queries import QueryError, run_query
from aureacore_db.web import make_datasette

AUTH, WEB, BILLING, SEARCH = "platform/auth", "platform/web", "payments/billing", "platform/search"
ENVS = [("dev", "develop"), ("staging", "staging"), ("prod", "main")]


def build_environments(repo: GitRepo) -> dict[str, str]:
    """Three branches with real drift; returns commit shas by step name.

    - prod (main): auth 1.0.0, web 1.0.0, billing 1.0.0 (ERROR: needs a missing ledger),
      then a hotfix of web (1.0.1) made on prod only;
    - staging: billing fixed (1.0.1), waiting to go to prod;
    - dev (develop): auth 2.0.0 and a new service search, only in dev; it merged staging
      (so it has the billing fix).
    """
    shas = {}
    repo.service("auth", version="1.0.0", parameters={"replicas": 2})
    repo.service("web", version="1.0.0", dependencies=[{"service": AUTH}])
    repo.service("billing", namespace="payments", version="1.0.0",
                 dependencies=[{"service": "payments/ledger"}])
    shas["initial"] = repo.commit("Add auth, web and billing")
    repo.git("branch", "staging")
    repo.git("branch", "develop")
    repo.git("checkout", "-q", "staging")
    repo.service("billing", namespace="payments", version="1.0.1")
    shas["billing_fix"] = repo.commit("billing: drop the ledger dependency")
    repo.git("checkout", "-q", "develop")
    repo.service("auth", version="2.0.0", parameters={"replicas": 4})
    shas["auth2"] = repo.commit("auth: 2.0.0")
    repo.service("search", version="0.1.0")
    shas["search"] = repo.commit("Add search")
    repo.git("merge", "-q", "--no-ff", "-m", "Merge staging into develop", "staging")
    shas["dev_merge"] = repo.head()
    repo.git("checkout", "-q", "main")
    repo.service("web", version="1.0.1", dependencies=[{"service": AUTH}],
                 parameters={"hotfix": True})
    shas["hotfix"] = repo.commit("web: hotfix on prod")
    return shas


# ----------------------------------------------------------------------------- fixtures
ROOT = {"id": "root"}
PAGE = "/reg/-/aureacore/environments"


@pytest.fixture(scope="module")
def envs(tmp_path_factory):
    base = tmp_path_factory.mktemp("environments")
    repo = GitRepo(base / "configs")
    shas = build_environments(repo)
    db = base / "reg.db"
    result = ingest(repo.path, db, environments=ENVS)
    assert [e["name"] for e in result.environments] == ["dev", "staging", "prod"]
    return {"repo": repo, "db": db, "shas": shas}


@pytest.fixture(scope="module")
def client(envs):
    from test_web_pages import Client

    c = Client(make_datasette(envs["db"]))
    yield c
    c.close()


def query(client, name: str, **params: str) -> list[dict]:
    response = client.get(f"/reg/{name}.json?{urlencode({**params, '_shape': 'objects'})}")
    assert response.status_code == 200, response.text
    return response.json()["rows"]


class Matrix(HTMLParser):
    """The environments page's matrix: per (service, environment) its cell's classes,
    text and links (href, class, text)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.headers: list[str] = []
        self.cells: dict[tuple[str, str], dict] = {}
        self._service = self._cell = self._link = None
        self._in_matrix = self._in_th = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._in_matrix = a.get("class") == "matrix"
        elif self._in_matrix and tag == "th":
            self._in_th = True
            self.headers.append("")
        elif self._in_matrix and tag == "tr":
            self._service = a.get("data-service")
        elif self._in_matrix and tag == "td" and "cell" in (a.get("class") or "").split():
            self._cell = {"classes": set(a["class"].split()), "text": "", "links": []}
            self.cells[self._service, a["data-environment"]] = self._cell
        elif self._cell is not None and tag == "a":
            self._link = {"href": a["href"], "class": a.get("class"), "text": ""}
            self._cell["links"].append(self._link)

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_matrix = False
        elif tag == "th":
            self._in_th = False
        elif tag == "td":
            self._cell = None
        elif tag == "a":
            self._link = None

    def handle_data(self, data):
        if self._in_th:
            self.headers[-1] += data
        if self._cell is not None:
            self._cell["text"] += data
        if self._link is not None:
            self._link["text"] += data

    def link(self, service: str, env: str, cls: str) -> dict | None:
        return next((x for x in self.cells[service, env]["links"] if x["class"] == cls), None)


# ----------------------------------------------------------------------- canned queries
def test_environment_matrix_has_a_row_per_service_and_environment(client):
    rows = query(client, "environment_matrix")
    cells = {(r["service_id"], r["environment"]): r for r in rows}
    assert len(rows) == 4 * 3 and [r["environment"] for r in rows[:3]] == ["dev", "staging",
                                                                          "prod"]
    versions = {sid: [cells[sid, e]["version"] for e, _ in ENVS]
                for sid in (AUTH, WEB, BILLING, SEARCH)}
    assert versions == {AUTH: ["2.0.0", "1.0.0", "1.0.0"], WEB: ["1.0.0", "1.0.0", "1.0.1"],
                        BILLING: ["1.0.1", "1.0.1", "1.0.0"], SEARCH: ["0.1.0", None, None]}
    assert cells[BILLING, "prod"]["status"] == "ERROR"
    assert [cells[SEARCH, e]["state"] for e, _ in ENVS] == ["live", "absent", "absent"]
    assert {k for k, r in cells.items() if r["differs"]} == {
        (BILLING, "prod"), (AUTH, "staging"), (SEARCH, "staging"), (WEB, "prod")}
    assert cells[WEB, "prod"]["previous_environment"] == "staging"
    only_platform = query(client, "environment_matrix", namespace="platform")
    assert {r["service_id"] for r in only_platform} == {AUTH, WEB, SEARCH}


def test_drift_names_the_newer_side_and_services_on_one_side_only(client, envs):
    rows = {r["service_id"]: r for r in query(client, "drift", a="staging", b="prod")}
    assert set(rows) == {BILLING, WEB}
    assert (rows[BILLING]["newer"], rows[BILLING]["a_version"], rows[BILLING]["b_version"],
            rows[BILLING]["b_status"]) == ("staging", "1.0.1", "1.0.0", "ERROR")
    assert rows[WEB]["newer"] == "prod"  # the hotfix
    assert rows[WEB]["b_last_commit"] == envs["shas"]["hotfix"]
    # empty: the first environment and the one after it
    default = {r["service_id"]: r for r in query(client, "drift", a="", b="")}
    assert set(default) == {AUTH, SEARCH}
    assert default[SEARCH]["difference"] == "only in dev" and default[SEARCH]["newer"] == "dev"
    assert default[AUTH]["newer"] == "dev"
    assert query(client, "drift", a="prod", b="prod") == []


def test_pending_promotion_lists_what_the_next_environment_does_not_have(client, envs):
    shas = envs["shas"]
    waiting = query(client, "pending_promotion", **{"from": "staging", "to": "prod"})
    assert [(r["service_id"], r["commit_sha"], r["version"], r["to_version"])
            for r in waiting] == [(BILLING, shas["billing_fix"], "1.0.1", "1.0.0")]
    # the prod hotfix is what dev lacks (the shared initial versions are not listed)
    back = query(client, "pending_promotion", **{"from": "prod", "to": "dev"})
    assert [(r["service_id"], r["commit_sha"]) for r in back] == [(WEB, shas["hotfix"])]
    # empty from/to: the first environment into the next one
    first = query(client, "pending_promotion", **{"from": "", "to": ""})
    assert [(r["service_id"], r["commit_sha"], r["change"]) for r in first] == [
        (AUTH, shas["auth2"], "modified"), (SEARCH, shas["search"], "added")]
    assert {r["to_environment"] for r in first} == {"staging"}


def test_errors_now_and_state_as_of_take_an_environment(client, envs):
    assert query(client, "errors_now") == []  # the first environment, dev
    prod = query(client, "errors_now", env="prod")
    assert [(r["service_id"], r["version"]) for r in prod] == [(BILLING, "1.0.0")]
    now = {r["service_id"]: r["version"]
           for r in query(client, "state_as_of", env="prod", commit="", namespace="")}
    assert now == {AUTH: "1.0.0", WEB: "1.0.1", BILLING: "1.0.0"}
    dev = {r["service_id"]: r["version"]
           for r in query(client, "state_as_of", env="", commit="", namespace="")}
    assert dev == {AUTH: "2.0.0", WEB: "1.0.0", BILLING: "1.0.1", SEARCH: "0.1.0"}
    # a commit named by a branch, in another environment: staging as of prod's tip
    before = {r["service_id"]: (r["version"], r["status"]) for r in query(
        client, "state_as_of", env="staging", commit=envs["shas"]["initial"][:8],
        namespace="payments")}
    assert before == {BILLING: ("1.0.0", "ERROR")}
    # the CLI runs the same SQL
    assert run_query(envs["db"], "errors_now", {"env": "prod"}).dicts() == prod


def test_an_unknown_environment_is_a_clear_error(client, envs):
    page = client.get("/reg/drift?a=nope&b=")
    assert "no environment &#39;nope&#39; (there are: dev, staging, prod)" in page.text
    with pytest.raises(QueryError, match=r"a: no environment 'nope' \(there are: dev, "
                                         r"staging, prod\)"):
        run_query(envs["db"], "drift", {"a": "nope"})
    result = CliRunner().invoke(cli, ["query", "errors_now", "--db", str(envs["db"]),
                                      "-p", "env=qa"])
    assert result.exit_code != 0 and "no environment 'qa'" in result.output


# --------------------------------------------------------------------------------- pages
def test_environments_page_marks_drift_and_links_each_environment(client):
    page = client.get(PAGE, cookies=client.actor_cookies(ROOT))
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    matrix = Matrix(page.text)
    assert matrix.headers == ["service", "dev", "staging", "prod"]
    marked = {k for k, c in matrix.cells.items() if "differs" in c["classes"]}
    assert marked == {(BILLING, "prod"), (AUTH, "staging"), (SEARCH, "staging"),
                      (WEB, "prod")}
    for key in marked:  # a visible marker, not colour only
        assert "≠" in matrix.cells[key]["text"]
    assert all("≠" not in c["text"] for k, c in matrix.cells.items() if k not in marked)
    cell = matrix.cells[BILLING, "prod"]
    assert "status-ERROR" in page.text and "1.0.0" in cell["text"] and "ERROR" in cell["text"]
    link = matrix.link(WEB, "prod", "cell-link")
    assert link["href"] == f"/reg/-/aureacore/services/{WEB}?env=prod"
    assert matrix.link(SEARCH, "prod", "cell-link") is None  # never there: no link
    diff = urlsplit(matrix.link(WEB, "prod", "diff-link")["href"])
    assert diff.path == f"/reg/-/aureacore/services/{WEB}/diff"
    assert parse_qs(diff.query) == {"from_env": ["staging"], "to_env": ["prod"]}
    promote = matrix.link(BILLING, "prod", "promote")
    assert promote["text"] == "Promote to prod"
    assert urlsplit(promote["href"]).path == "/reg/-/aureacore/promote"
    assert parse_qs(urlsplit(promote["href"]).query) == {
        "service": [BILLING], "from": ["staging"], "to": ["prod"]}
    confirm = client.get(promote["href"], cookies=client.actor_cookies(ROOT))
    assert confirm.status_code == 200 and BILLING in confirm.text  # the confirm page
    assert "newer here" in matrix.cells[WEB, "prod"]["text"]  # the hotfix
    assert "newer here" not in matrix.cells[BILLING, "prod"]["text"]


def test_promote_links_need_the_promote_permission(client):
    anonymous = Matrix(client.get(PAGE).text)
    assert anonymous.cells[BILLING, "prod"]["classes"] >= {"differs"}
    assert all(x["class"] != "promote" for c in anonymous.cells.values() for x in c["links"])


def test_environments_page_json_filters_and_pages(client):
    data = client.get(f"{PAGE}.json").json()
    assert [e["name"] for e in data["environments"]] == ["dev", "staging", "prod"]
    assert [(e["name"], e["services"], e["error"], e["drifted"]) for e in
            data["environments"]] == [("dev", 4, 0, 0), ("staging", 3, 0, 2),
                                      ("prod", 3, 1, 2)]
    assert [r["service_id"] for r in data["services"]] == [BILLING, AUTH, SEARCH, WEB]
    first = client.get(f"{PAGE}.json?_size=2").json()
    assert [r["service_id"] for r in first["services"]] == [BILLING, AUTH]
    assert first["next"] == AUTH
    rest = client.get(f"{PAGE}.json?_size=2&after={AUTH}").json()
    assert [r["service_id"] for r in rest["services"]] == [SEARCH, WEB] and not rest["next"]
    page = client.get(f"{PAGE}?_size=2").text
    assert f'href="{PAGE}?_size=2&amp;after=platform%2Fauth"' in page
    payments = client.get(f"{PAGE}.json?namespace=payments").json()
    assert [r["service_id"] for r in payments["services"]] == [BILLING]


def test_overview_links_the_environments_page(client):
    page = client.get("/reg/-/aureacore").text
    assert f'href="{PAGE}"' in page and "dev" in page and "staging" in page


def test_first_errors_per_environment_shows_which_broke_first(client, envs):
    """billing broke in the first commit of every environment; staging's fix and dev's
    merge of it never broke anything else: each environment lists only its own."""
    by_env = {env: query(client, "first_errors", env=env) for env in ("dev", "staging",
                                                                       "prod", "")}
    for env in ("dev", "staging", "prod"):
        assert [(r["service_id"], r["commit_sha"]) for r in by_env[env]] == [
            (BILLING, envs["shas"]["initial"])]
    assert by_env[""] == by_env["dev"]
    unknown = client.get("/reg/first_errors?env=qa")
    assert "no environment &#39;qa&#39; (there are: dev, staging, prod)" in unknown.text


def test_overview_of_one_environment(client):
    """``?env=prod``: prod's counts, errors, recent changes and status chart, its links
    kept in prod; the first environment is the plain overview; unknown ones 404."""
    prod = client.get("/reg/-/aureacore.json?env=prod").json()
    assert prod["environment"] == "prod" and prod["branch"] == "main"
    assert prod["counts_by_status"] == {"CONFIGURED": 2, "ERROR": 1}  # billing is ERROR
    assert [e["service_id"] for e in prod["errors"]] == [BILLING]
    assert {c["subject"] for c in prod["recent_changes"]} == {
        "web: hotfix on prod", "Add auth, web and billing"}
    last = prod["status_over_time"][-1]
    assert (last["CONFIGURED"], last["ERROR"]) == (2, 1)
    dev = client.get("/reg/-/aureacore.json?env=dev").json()
    assert dev == {**client.get("/reg/-/aureacore.json").json(), "environment": None}
    assert dev["counts_by_status"] == {"CONFIGURED": 4}
    page = client.get("/reg/-/aureacore?env=prod").text
    assert "This page shows <strong class=\"shown-environment\">prod" in page
    assert f'href="/reg/-/aureacore/services/{BILLING}?env=prod"' in page
    assert "/reg/environment_services?environment=prod&amp;status=ERROR" in page
    assert client.get("/reg/-/aureacore?env=qa").status_code == 404


def test_service_page_shows_every_environment_and_one_on_request(client, envs):
    page = client.get(f"/reg/-/aureacore/services/{WEB}").text
    assert "Shown in environment <strong>dev</strong>" in page
    assert 'class="current-version">1.0.0<' in page
    for env, _ in ENVS:
        assert f'href="/reg/-/aureacore/services/{WEB}?env={env}"' in page
    prod = client.get(f"/reg/-/aureacore/services/{WEB}?env=prod").text
    assert "Shown in environment <strong>prod</strong>" in prod
    assert 'class="current-version">1.0.1<' in prod
    data = client.get(f"/reg/-/aureacore/services/{BILLING}.json?env=prod").json()
    assert (data["environment"], data["service"]["version"], data["service"]["status"]) == (
        "prod", "1.0.0", "ERROR")
    assert [p["kind"] for p in data["problems"]] == ["dependency"]
    assert [(e["environment"], e["version"], e["state"]) for e in data["environments"]] == [
        ("dev", "1.0.1", "live"), ("staging", "1.0.1", "live"), ("prod", "1.0.0", "live")]
    staging = client.get(f"/reg/-/aureacore/services/{BILLING}.json?env=staging").json()
    assert staging["service"]["status"] == "CONFIGURED" and staging["problems"] == []
    up = client.get(f"/reg/-/aureacore/services/{WEB}.json?env=prod").json()["upstream"]
    assert [(d["service_id"], d["version"]) for d in up] == [(AUTH, "1.0.0")]
    missing = client.get(f"/reg/-/aureacore/services/{SEARCH}?env=prod")
    assert missing.status_code == 404 and "never in environment prod" in missing.text
    unknown = client.get(f"/reg/-/aureacore/services/{WEB}?env=qa")
    assert unknown.status_code == 404 and "there are: dev, staging, prod" in unknown.text


def test_diff_between_two_environments_uses_the_diff_page(client, envs):
    base = f"/reg/-/aureacore/services/{WEB}/diff"
    data = client.get(f"{base}.json?from_env=staging&to_env=prod").json()
    assert data["environments"] == {"from": "staging", "to": "prod"}
    assert (data["from"]["version"], data["to"]["version"]) == ("1.0.0", "1.0.1")
    assert data["to"]["commit_sha"] == envs["shas"]["hotfix"]
    assert {c["key"] for c in data["changes"]} == {"$.version", "$.parameters.hotfix"}
    page = client.get(f"{base}?from_env=staging&to_env=prod").text
    assert "From environment <strong>staging</strong>" in html.unescape(page)
    assert 'name="from_env"' in page and '<option value="prod" selected>' in page
    # the same code path as commits: one end by environment, the other by commit
    mixed = client.get(f"{base}.json?from={envs['shas']['initial']}&to_env=prod").json()
    assert mixed["changes"] == data["changes"]
    only_dev = client.get(f"/reg/-/aureacore/services/{SEARCH}/diff.json"
                          "?from_env=prod&to_env=dev").json()
    assert only_dev["from"] is None and only_dev["to"]["version"] == "0.1.0"
    assert client.get(f"{base}?from_env=qa&to_env=prod").status_code == 404


def test_environment_matrix_pages_are_slices_of_the_whole_matrix(client):
    """Pages are cut by services before the window runs (a page costs its rows): every
    limit and offset gives the same rows as the whole matrix cut there, the
    differs/previous_environment of a page's first rows included."""
    whole = query(client, "environment_matrix", limit="-1")
    assert len(whole) == 12
    for limit in ("1", "2", "4", "5", "12", "100"):
        for offset in ("", "0", "1", "2", "3", "4", "7", "11", "12", "20", "-3"):
            start = max(int(offset or 0), 0)
            assert query(client, "environment_matrix", limit=limit, offset=offset) == \
                whole[start:start + int(limit)], (limit, offset)
    assert query(client, "environment_matrix", limit="0") == []
    assert query(client, "environment_matrix", limit="-1", offset="5") == whole[5:]
