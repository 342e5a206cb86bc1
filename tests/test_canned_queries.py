"""Canned queries of metadata.yml: in Datasette (HTML, .json, .csv) and via the CLI."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner
from test_web_pages import AUTH, Client, build_sample

from aureacore_db.cli import cli
from aureacore_db.ingest import ingest
from aureacore_db.queries import (
    QueryError,
    canned_queries,
    optional_parameters,
    parameters,
    run_query,
)
from aureacore_db.rollback import RollbackRefused, rollback
from aureacore_db.web import make_datasette


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from conftest import GitRepo

    base = tmp_path_factory.mktemp("queries")
    repo = GitRepo(base / "configs")
    shas = build_sample(repo)
    db_path = base / "reports.db"
    ingest(repo.path, db_path)
    with pytest.raises(RollbackRefused):  # one refused attempt for the rollback log
        rollback(db_path, AUTH, shas["broken"], actor={"id": "carol"})
    return {"repo": repo, "db": db_path, "shas": shas}


@pytest.fixture(scope="module")
def client(sample):
    c = Client(make_datasette(sample["db"]))
    yield c
    c.close()


def params_for(shas: dict[str, str]) -> dict[str, dict[str, str]]:
    return {
        "errors_now": {},
        "state_as_of": {"commit": shas["broken"][:8]},
        "service_history": {"service": AUTH},
        "parameter_blame": {"key": "replicas", "service": ""},
        "changes_since": {"since": "2025-01-01T00:00:04Z"},
        "dependents": {"service": AUTH},
        "first_errors": {},
        "rollback_log": {},
        "environment_matrix": {},
        "drift": {},  # one environment: nothing to compare (tests/test_environments_web.py)
        "pending_promotion": {},
    }


EMPTY_WITH_ONE_ENVIRONMENT = {"drift", "pending_promotion"}


def query_json(client, name: str, params: dict[str, str]) -> list[dict]:
    qs = urlencode({**params, "_shape": "objects"})
    response = client.get(f"/reports/{name}.json?{qs}")
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def test_every_canned_query_is_tested(sample):
    assert set(canned_queries()) == set(params_for(sample["shas"]))


@pytest.mark.parametrize("name", sorted(canned_queries()))
def test_query_works_as_html_json_and_csv(client, sample, name):
    params = params_for(sample["shas"])[name]
    qs = f"?{urlencode(params)}" if params else ""
    html = client.get(f"/reports/{name}{qs}")
    assert html.status_code == 200 and canned_queries()[name]["title"] in html.text
    rows = query_json(client, name, params)
    assert rows or name in EMPTY_WITH_ONE_ENVIRONMENT, f"{name} returned no rows"
    table = client.get(f"/reports/{name}.csv{qs}")
    assert table.status_code == 200
    parsed = list(csv.DictReader(io.StringIO(table.text)))
    assert len(parsed) == len(rows)
    assert not rows or list(parsed[0]) == list(rows[0])
    # the CLI runs the same SQL
    assert run_query(sample["db"], name, params).dicts() == rows


def test_query_form_shows_parameter_fields(client):
    page = client.get("/reports/parameter_blame")
    assert 'name="key"' in page.text and 'name="service"' in page.text


def test_errors_now(client):
    rows = query_json(client, "errors_now", {})
    assert [(r["service_id"], r["version"]) for r in rows] == [("payments/billing", "1.1.0")]
    assert "platform/ledger" in rows[0]["status_message"]


def test_state_as_of_a_commit(client, sample):
    shas = sample["shas"]
    rows = query_json(client, "state_as_of", {"commit": shas["broken"]})
    state = {r["service_id"]: (r["version"], r["status"], r["path"]) for r in rows}
    assert state == {
        AUTH: ("1.1.1", "ERROR", "services/platform/auth.yaml"),
        "payments/billing": ("1.0.0", "CONFIGURED", "services/payments/billing.yaml"),
        "platform/users": ("1.0.0", "CONFIGURED", "services/platform/users.yaml"),
    }
    first = query_json(client, "state_as_of", {"commit": shas["initial"]})
    assert {r["service_id"]: r["version"] for r in first}[AUTH] == "1.0.0"
    one = query_json(client, "state_as_of", {"commit": shas["broken"], "namespace": "payments"})
    assert [r["service_id"] for r in one] == ["payments/billing"]


def test_service_history(client, sample):
    rows = query_json(client, "service_history", {"service": AUTH})
    assert [r["commit_sha"] for r in rows] == [sample["shas"][k] for k in
                                               ("fixed", "broken", "scale", "initial")]
    assert rows[1]["subject"] == "auth: typo at the top level"


def test_parameter_blame(client, sample):
    rows = query_json(client, "parameter_blame", {"key": "replicas", "service": AUTH})
    assert [(r["author_name"], r["old_value"], r["new_value"]) for r in rows] == [
        ("Alice Doe", "3", "4"), ("Alice Doe", "2", "3"), ("Test Author", None, "2")]
    by_path = query_json(client, "parameter_blame",
                         {"key": "$.parameters.replicas", "service": ""})
    assert len(by_path) == len(rows)
    version = query_json(client, "parameter_blame", {"key": "version", "service": AUTH})
    assert version[0]["new_value"] == '"1.2.0"'


def test_changes_since(client, sample):
    rows = query_json(client, "changes_since", {"since": "2025-01-01T00:00:05Z"})
    assert {(r["service_id"], r["change"]) for r in rows} == {
        ("platform/users", "renamed"), ("payments/billing", "modified")}
    assert query_json(client, "changes_since", {"since": "2030-01-01"}) == []


def test_dependents(client):
    rows = query_json(client, "dependents", {"service": AUTH})
    assert [(r["service_id"], r["version_constraint"], r["depends_on_version"]) for r in rows] \
        == [("payments/billing", ">=1.0.0", "1.2.0")]


def test_first_errors(client, sample):
    rows = query_json(client, "first_errors", {})
    assert [(r["commit_sha"], r["service_id"]) for r in rows] == [
        (sample["shas"]["ledger"], "payments/billing"), (sample["shas"]["broken"], AUTH)]
    assert rows[1]["author_name"] == "Bob Roe"


def test_rollback_log(client):
    rows = query_json(client, "rollback_log", {})
    assert [(r["actor_id"], r["service_id"], r["outcome"]) for r in rows] == [
        ("carol", AUTH, "needs_confirm")]


def test_parameters_and_optional_parameters():
    sql = canned_queries()["parameter_blame"]["sql"]
    assert parameters(sql) == ["key", "service", "limit", "offset"]
    assert {"service", "limit", "offset"} <= optional_parameters(sql)


def test_run_query_errors(sample):
    with pytest.raises(QueryError, match="no canned query"):
        run_query(sample["db"], "nope", {})
    with pytest.raises(QueryError, match="needs commit"):
        run_query(sample["db"], "state_as_of", {})
    with pytest.raises(QueryError, match="no parameter"):
        run_query(sample["db"], "errors_now", {"x": "1"})
    # optional parameters may be left out
    assert run_query(sample["db"], "parameter_blame", {"key": "replicas"}).rows


def test_cli_query_formats(sample):
    runner = CliRunner()
    db = str(sample["db"])
    as_json = runner.invoke(cli, ["query", "service_history", "--db", db, "-p",
                                  f"service={AUTH}", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    assert len(json.loads(as_json.output)) == 4
    as_csv = runner.invoke(cli, ["query", "errors_now", "--db", db, "--format", "csv"])
    assert as_csv.output.splitlines()[0].startswith("service_id,namespace,version")
    as_table = runner.invoke(cli, ["query", "errors_now", "--db", db])
    assert "payments/billing" in as_table.output and "(1 row)" in as_table.output
    listing = runner.invoke(cli, ["query"])
    assert "state_as_of" in listing.output and "-p commit=" in listing.output
    missing = runner.invoke(cli, ["query", "state_as_of", "--db", db])
    assert missing.exit_code != 0 and "-p commit=VALUE" in missing.output
    bad = runner.invoke(cli, ["query", "errors_now", "--db", db, "-p", "oops"])
    assert bad.exit_code != 0
