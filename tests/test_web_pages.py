"""Plugin pages through Datasette's test client: overview, service, diff, commit, links.

Also holds the helpers the other web tests import: the sample history and a
synchronous wrapper around ``datasette.client``.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import GitRepo, rows

from aureacore_db.ingest import ingest
from aureacore_db.web import make_datasette

ALICE = "Alice Doe <alice@example.com>"
BOB = "Bob Roe <bob@example.com>"
AUTH = "platform/auth"


def build_sample(repo: GitRepo) -> dict[str, str]:
    """A small history; returns the commit shas by step name."""
    shas = {}
    repo.service("auth", version="1.0.0", parameters={"replicas": 2, "timeout_ms": 500})
    repo.service("users", version="1.0.0")
    repo.service("billing", namespace="payments", version="1.0.0",
                 dependencies=[{"service": AUTH, "version_constraint": ">=1.0.0"}])
    shas["initial"] = repo.commit("Add auth, users and billing")
    repo.service("auth", version="1.1.0", parameters={"replicas": 3, "timeout_ms": 500})
    shas["scale"] = repo.commit("auth: scale to 3 replicas", author=ALICE)
    repo.service("auth", version="1.1.1", parameters={"replicas": 3, "timeout_ms": 500},
                 replica_count=3)
    shas["broken"] = repo.commit("auth: typo at the top level", author=BOB)
    repo.service("auth", version="1.2.0", parameters={"replicas": 4, "timeout_ms": 250})
    shas["fixed"] = repo.commit("auth: fix typo, tune timeout", author=ALICE)
    repo.rm("services/platform/users.yaml")
    repo.service("users", rel="services/platform/user-service.yaml", version="1.0.0")
    shas["moved"] = repo.commit("users: move file")
    repo.service("billing", namespace="payments", version="1.1.0",
                 dependencies=[{"service": AUTH, "version_constraint": ">=1.0.0"},
                               {"service": "platform/ledger"}])
    shas["ledger"] = repo.commit("billing: needs ledger", author=BOB)
    return shas


class Client:
    """Synchronous calls into ``datasette.client`` on one event loop."""

    def __init__(self, ds: Any) -> None:
        self.ds = ds
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(ds.invoke_startup())

    def get(self, path: str, **kwargs: Any):
        return self.loop.run_until_complete(self.ds.client.get(path, **kwargs))

    def post(self, path: str, **kwargs: Any):
        return self.loop.run_until_complete(self.ds.client.post(path, **kwargs))

    def actor_cookies(self, actor: dict[str, Any] | None) -> dict[str, str]:
        return {"ds_actor": self.ds.sign({"a": actor}, "actor")} if actor else {}

    def form(self, path: str, actor: dict[str, Any] | None) -> tuple[str, dict[str, str]]:
        """GET a page as ``actor``: its CSRF form token and the cookies to POST with."""
        cookies = self.actor_cookies(actor)
        response = self.get(path, cookies=cookies)
        assert response.status_code == 200, response.text
        token = re.search(r'name="csrftoken" value="([^"]+)"', response.text)
        assert token, "page has no CSRF token"
        cookies["ds_csrftoken"] = response.cookies.get("ds_csrftoken") or token.group(1)
        return token.group(1), cookies

    def close(self) -> None:
        self.loop.close()


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("web")
    repo = GitRepo(base / "configs")
    shas = build_sample(repo)
    db_path = base / "myreg.db"  # not "registry": the metadata is re-keyed to the name
    ingest(repo.path, db_path)
    return {"repo": repo, "db": db_path, "shas": shas}


@pytest.fixture(scope="module")
def client(sample) -> Client:
    c = Client(make_datasette(sample["db"]))
    yield c
    c.close()


def test_overview_counts_per_status_and_namespace(client, sample):
    data = client.get("/-/aureacore.json").json()
    assert data["counts_by_status"] == {"CONFIGURED": 2, "ERROR": 1}
    assert data["services"] == 3 and data["commits"] == 6
    assert {n["namespace"]: (n["services"], n["error"]) for n in data["namespaces"]} == {
        "payments": (1, 1), "platform": (2, 0)}
    assert [e["service_id"] for e in data["errors"]] == ["payments/billing"]
    assert data["tip"] == sample["shas"]["ledger"]
    page = client.get("/-/aureacore")
    assert page.status_code == 200
    assert "Services overview" in page.text
    assert 'href="/myreg/-/aureacore/services/payments/billing"' in page.text
    assert "/myreg/services?namespace=payments" in page.text


def test_service_page_shows_config_status_timeline_params_and_deps(client, sample):
    shas = sample["shas"]
    data = client.get(f"/-/aureacore/services/{AUTH}.json").json()
    assert data["service"]["version"] == "1.2.0" and data["service"]["status"] == "CONFIGURED"
    assert "timeout_ms: 250" in data["config"]["raw"]
    timeline = data["timeline"]
    assert [t["commit_sha"] for t in timeline] == [shas["fixed"], shas["broken"], shas["scale"],
                                                   shas["initial"]]
    assert [t["status"] for t in timeline] == ["CONFIGURED", "ERROR", "CONFIGURED",
                                               "CONFIGURED"]
    assert timeline[0]["is_current"] and not timeline[0]["can_roll_back_to"]
    assert all(t["can_roll_back_to"] for t in timeline[1:])
    assert timeline[1]["author_name"] == "Bob Roe"
    assert timeline[1]["subject"] == "auth: typo at the top level"
    keys = {(p["key"], p["commit_sha"]) for p in data["parameter_changes"]}
    assert ("$.parameters.timeout_ms", shas["fixed"]) in keys
    assert ("$.parameters.replicas", shas["scale"]) in keys
    assert [d["service_id"] for d in data["downstream"]] == ["payments/billing"]
    assert data["upstream"] == [] and data["can_rollback"] is False

    page = client.get(f"/-/aureacore/services/{AUTH}")
    assert page.status_code == 200
    assert 'class="aureacore-highlight"' in page.text  # Pygments
    assert "Roll back to this version" not in page.text  # anonymous
    assert f"/-/aureacore/commits/{shas['broken']}" in page.text


def test_service_page_of_a_service_in_error(client):
    data = client.get("/-/aureacore/services/payments/billing.json").json()
    assert data["service"]["status"] == "ERROR"
    assert "platform/ledger" in data["service"]["status_message"]
    assert [(p["severity"], p["kind"]) for p in data["problems"]] == [("error", "dependency")]
    upstream = {d["service_id"]: d["missing"] for d in data["upstream"]}
    assert upstream == {AUTH: 0, "platform/ledger": 1}
    page = client.get("/-/aureacore/services/payments/billing")
    assert "status-ERROR" in page.text and "platform/ledger" in page.text


def test_service_page_of_a_moved_service(client, sample):
    data = client.get("/-/aureacore/services/platform/users.json").json()
    assert data["service"]["path"] == "services/platform/user-service.yaml"
    assert data["timeline"][0]["change"] == "renamed"
    assert data["timeline"][0]["commit_sha"] == sample["shas"]["moved"]


def test_unknown_service_and_commit_are_404(client):
    assert client.get("/-/aureacore/services/platform/nope").status_code == 404
    assert client.get("/-/aureacore/services/platform/nope.json").status_code == 404
    assert client.get("/-/aureacore/commits/0000000000").status_code == 404


def test_diff_between_two_versions(client, sample):
    shas = sample["shas"]
    data = client.get(f"/-/aureacore/services/{AUTH}/diff.json?from={shas['initial']}"
                      f"&to={shas['fixed'][:8]}").json()
    assert data["from"]["commit_sha"] == shas["initial"]
    assert data["to"]["commit_sha"] == shas["fixed"]
    changes = {c["key"]: (c["change"], c["old_value"], c["new_value"]) for c in data["changes"]}
    assert changes == {
        "$.parameters.replicas": ("changed", "2", "4"),
        "$.parameters.timeout_ms": ("changed", "500", "250"),
        "$.version": ("changed", '"1.0.0"', '"1.2.0"'),
    }
    assert "-  replicas: 2" in data["diff"] and "+  replicas: 4" in data["diff"]
    # defaults: the previous version against the current one
    default = client.get(f"/-/aureacore/services/{AUTH}/diff.json").json()
    assert (default["from"]["commit_sha"], default["to"]["commit_sha"]) == (shas["broken"],
                                                                            shas["fixed"])
    assert ("$.replica_count", "removed") in {(c["key"], c["change"]) for c in
                                              default["changes"]}
    page = client.get(f"/-/aureacore/services/{AUTH}/diff?from={shas['scale']}"
                      f"&to={shas['fixed']}")
    assert page.status_code == 200
    assert 'class="add"' in page.text and "$.parameters.timeout_ms" in page.text


def test_commit_page_lists_changes_and_status_moves(client, sample):
    shas = sample["shas"]
    data = client.get(f"/-/aureacore/commits/{shas['broken'][:10]}.json").json()
    assert data["commit"]["sha"] == shas["broken"]
    assert data["commit"]["author_name"] == "Bob Roe"
    assert data["commit"]["parents"] == [shas["scale"]]
    assert data["children"] == [shas["fixed"]]
    assert [(c["service_id"], c["change"]) for c in data["changes"]] == [(AUTH, "modified")]
    assert [(s["service_id"], s["previous_status"], s["status"]) for s in data["statuses"]] \
        == [(AUTH, "CONFIGURED", "ERROR")]
    assert any(p["json_path"] for p in data["problems"])
    page = client.get(f"/-/aureacore/commits/{shas['broken']}")
    assert page.status_code == 200
    assert "Statuses moved (1)" in page.text and f"/-/aureacore/services/{AUTH}" in page.text


def test_table_and_row_pages_link_to_plugin_pages(client, sample):
    shas = sample["shas"]
    services = client.get("/myreg/services")
    assert services.status_code == 200
    assert f'<a href="/myreg/-/aureacore/services/{AUTH}">auth</a>' in services.text  # name column
    assert f'href="/myreg/-/aureacore/commits/{shas["fixed"]}"' in services.text
    history = client.get("/myreg/history")
    assert f'href="/myreg/-/aureacore/commits/{shas["broken"]}"' in history.text
    row = client.get("/myreg/services/platform~2Fauth")
    assert row.status_code == 200
    assert f'href="/myreg/-/aureacore/services/{AUTH}"' in row.text
    commit_row = client.get(f"/myreg/commits/{shas['initial']}")
    assert f'href="/myreg/-/aureacore/commits/{shas["initial"]}"' in commit_row.text
    assert "Services overview" in services.text  # table action / menu


def test_plugin_gives_titles_facets_and_canned_queries_to_the_database(client):
    metadata = client.get("/-/metadata.json").json()
    assert metadata["databases"]["myreg"]["title"] == "Service registry"
    assert "queries" not in metadata["databases"]["myreg"]  # those come from the hook
    queries = {q["name"] for q in client.get("/myreg.json").json()["queries"]}
    assert {"errors_now", "state_as_of", "transitive_dependents"} <= queries
    page = client.get("/myreg/services")
    assert "Services" in page.text and "facet" in page.text


def test_installed_layout_is_used_when_present(tmp_path, monkeypatch):
    """data_path prefers aureacore_db/_data (the wheel layout) over the checkout."""
    import aureacore_db.resources as resources

    fake = tmp_path / "aureacore_db"
    (fake / "_data").mkdir(parents=True)
    (fake / "_data" / "metadata.yml").write_text("title: installed\n")
    monkeypatch.setattr(resources, "_PACKAGE", fake)
    assert resources.data_path("metadata.yml") == fake / "_data" / "metadata.yml"
    assert resources.data_path("plugins") == tmp_path / "plugins"


def test_rollbacks_table_exists_from_startup(sample, client):
    assert rows(Path(sample["db"]), "select count(*) as n from rollbacks") == [{"n": 0}]
