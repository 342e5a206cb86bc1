"""ServiceRegistry flows: register, look up, validate, sync, subscribe, CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import GitRepo, rows, run_ingest

from aureacore_db.cli import cli
from aureacore_db.models import Service, ServiceConfig, ServiceDependency
from aureacore_db.registry import RegistrationRejected, RegistryError, ServiceRegistry


def svc(name: str, namespace: str = "platform", version: str = "1.0.0",
        deps: list[ServiceDependency] | None = None, **extra) -> ServiceConfig:
    return ServiceConfig(name=name, namespace=namespace, version=version,
                         dependencies=deps or [], **extra)


def git(path: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=path, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def seeded(repo: GitRepo, db_path: Path) -> ServiceRegistry:
    repo.service("user-service", version="1.2.0")
    repo.commit("seed")
    run_ingest(repo, db_path)
    return ServiceRegistry(db_path, repo.path)


def test_register_writes_commits_ingests_and_notifies(seeded, repo, db_path):
    events = []
    seeded.subscribe(events.append)
    status_only = []
    seeded.subscribe(status_only.append, kinds=["status_changed"])
    config = svc("auth-service", deps=[ServiceDependency("user-service", ">=1.0.0")],
                 parameters={"replicas": 3})
    result = seeded.register_service(config, author="Ann <ann@example.com>")

    assert result.status == "CONFIGURED" and result.commit == repo.head()
    assert result.path == "services/platform/auth-service.yaml"
    assert yaml.safe_load((repo.path / result.path).read_text()) == config.to_dict()
    assert git(repo.path, "status", "--porcelain") == ""
    assert git(repo.path, "log", "-1", "--format=%an|%s") == \
        "Ann|Register platform/auth-service 1.0.0"
    reg = rows(db_path, "select * from registrations")
    assert [(r["service_id"], r["status"], r["commit_sha"]) for r in reg] == [
        ("platform/auth-service", "CONFIGURED", result.commit)]
    assert reg[0]["registered_at"] and reg[0]["checked_at"]
    assert [(e.kind, e.service_id) for e in events] == [
        ("service_added", "platform/auth-service"), ("status_changed", "platform/auth-service")]
    assert [e.payload["status"] for e in status_only] == ["CONFIGURED"]

    service = seeded.get_service("platform/auth-service")
    assert service.config == config and service.status.state == "CONFIGURED"
    assert service.commit == result.commit and service.status.last_checked
    assert [s.id for s in seeded.list_services(namespace="platform")] == [
        "platform/auth-service", "platform/user-service"]
    assert seeded.get_service("platform/nope") is None

    # update: same path, "Update" commit, parameter change recorded by ingest
    service.update_config(config.copy(parameters={"replicas": 5}))
    again = seeded.register_service(service)
    assert again.path == result.path and again.commit != result.commit
    assert rows(db_path, "select key, new_value from parameter_changes where commit_sha = ?",
                (again.commit,)) == [{"key": "$.parameters.replicas", "new_value": "5"}]
    # registering the identical config again changes nothing
    same = seeded.register_service(service)
    assert same.commit is None and same.status == "CONFIGURED"
    assert len(rows(db_path, "select * from commits")) == 3


def test_invalid_configs_are_rejected_and_nothing_is_written(seeded, repo, db_path):
    head = repo.head()
    before = rows(db_path, "select count(*) n from commits")
    bad_file = ServiceConfig.from_dict({"name": "bad", "namespace": "platform",
                                        "version": "one", "dependancies": []})
    with pytest.raises(RegistrationRejected) as info:
        seeded.register_service(bad_file)
    assert {p.json_path for p in info.value.problems} == {"$", "$.version"}
    missing = svc("orders", deps=[ServiceDependency("payments", ">=1.0.0")])
    problems = seeded.validate_service(missing)
    assert [p.kind for p in problems] == ["dependency"]
    with pytest.raises(RegistrationRejected, match="payments does not exist"):
        seeded.register_service(missing)
    # breaking another service is a whole-tree problem too
    seeded.register_service(svc("auth", deps=[ServiceDependency("user-service", "^1.0.0")]))
    breaking = svc("user-service", version="2.0.0")
    assert "would make platform/auth ERROR" in seeded.validate_service(breaking)[0].message
    with pytest.raises(RegistrationRejected):
        seeded.register_service(breaking)
    assert repo.head() != head  # (auth was registered)
    head = repo.head()
    assert git(repo.path, "status", "--porcelain") == ""
    assert not (repo.path / "services/platform/bad.yaml").exists()
    assert not (repo.path / "services/platform/orders.yaml").exists()
    assert rows(db_path, "select count(*) n from commits")[0]["n"] == before[0]["n"] + 1
    assert seeded.validate_service(svc("fine")) == []


def test_whole_tree_error_ends_in_error_status_when_not_strict(seeded, repo, db_path):
    result = seeded.register_service(svc("orders", deps=[ServiceDependency("payments")]),
                                     strict=False)
    assert result.status == "ERROR" and "payments does not exist" in result.message
    assert seeded.get_service("platform/orders").status.state == "ERROR"
    assert [s.id for s in seeded.list_services(status="ERROR")] == ["platform/orders"]
    fixed = seeded.register_service(svc("payments"))
    assert fixed.status == "CONFIGURED"
    assert seeded.get_service("platform/orders").status.state == "CONFIGURED"
    # the file-level problems still reject, strict or not
    with pytest.raises(RegistrationRejected):
        seeded.register_service(svc("x", version="nope"), strict=False)


def test_sync_reports_new_commits_changes_and_status(seeded, repo, db_path):
    seeded.register_service(svc("auth", deps=[ServiceDependency("user-service", "^1.0.0")]))
    events = []
    seeded.subscribe(events.append, kinds={"status_changed"})
    assert not seeded.sync_configurations().changed
    repo.service("user-service", version="2.0.0")  # breaks auth's constraint
    repo.service("billing", namespace="payments")
    bump = repo.commit("bump user-service, add billing")
    result = seeded.sync_configurations()
    assert result.new_commits == [bump] and result.new_tip == bump
    assert {(c["service_id"], c["change"]) for c in result.changed_services} == {
        ("platform/user-service", "modified"), ("payments/billing", "added")}
    assert {(c["service_id"], c["previous_status"], c["status"])
            for c in result.status_changes} == {
        ("platform/auth", "CONFIGURED", "ERROR"), ("payments/billing", None, "CONFIGURED")}
    assert {(e.service_id, e.payload["status"]) for e in events} == {
        ("platform/auth", "ERROR"), ("payments/billing", "CONFIGURED")}
    assert seeded.get_service("platform/auth").status.problems[0].kind == "dependency"


def test_sync_after_force_push_delivers_new_events(seeded, repo, db_path):
    repo.service("temp")
    repo.commit("temp")
    seeded.sync_configurations()
    events = []
    seeded.subscribe(events.append)
    git(repo.path, "reset", "-q", "--hard", "HEAD~1")
    repo.service("other")
    new = repo.commit("other instead")
    result = seeded.sync_configurations()
    assert result.rewrite_detected and result.new_commits == [new]
    assert ("service_added", "platform/other") in {(e.kind, e.service_id) for e in events}


def test_root_file_layout_registration(repo, db_path):
    repo.write("aureacore.yaml", {"version": "1.0.0", "global": {"config_dir": "cfg"},
                                  "services": [{"name": "a", "config_path": "a.yaml",
                                                "namespace": "platform"}]})
    repo.write("cfg/a.yaml", {"name": "a", "version": "1.0.0"})
    repo.commit("root layout")
    registry = ServiceRegistry(db_path, repo.path)
    result = registry.register_service(svc("b"))
    assert result.status == "CONFIGURED" and result.path == "cfg/platform/b.yaml"
    root = yaml.safe_load((repo.path / "aureacore.yaml").read_text())
    assert root["services"][-1] == {"name": "b", "config_path": "platform/b.yaml",
                                    "namespace": "platform"}
    updated = registry.register_service(svc("a", version="1.1.0"))
    assert updated.path == "cfg/a.yaml"
    assert registry.get_service("platform/a").config.version == "1.1.0"


def test_cli_register_and_sync_default_to_the_ingested_repo(seeded, repo, db_path, tmp_path):
    runner = CliRunner()
    good = tmp_path / "good.yaml"
    good.write_text(svc("cli-service").to_yaml())
    out = runner.invoke(cli, ["register", str(good), "--db", str(db_path)])
    assert out.exit_code == 0, out.output
    assert "platform/cli-service: CONFIGURED" in out.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nversion: 1\nnamespace: platform\n")
    out = runner.invoke(cli, ["register", str(bad), "--db", str(db_path)])
    assert out.exit_code == 1 and "$.version" in out.output and "nothing was written" in out.output
    repo.service("later")
    repo.commit("later")
    out = runner.invoke(cli, ["sync", "--db", str(db_path), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["changed_services"][0]["service_id"] == "platform/later"


def test_sync_while_datasette_reads(seeded, repo, db_path):
    """WAL: Datasette keeps answering while a sync writes."""
    from datasette.app import Datasette

    for i in range(30):
        repo.service(f"bulk-{i}")
    repo.commit("bulk")
    ds = Datasette([str(db_path)])
    name = db_path.stem
    answers: list[int] = []
    stop = threading.Event()

    def read() -> None:
        async def loop() -> None:
            while not stop.is_set():
                response = await ds.client.get(f"/{name}/services.json?_shape=array")
                answers.append(response.status_code)
        asyncio.run(loop())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(5):
            repo.service(f"bulk-{i}", version=f"1.{i + 1}.0")
            repo.commit(f"bump {i}")
            seeded.sync_configurations()
    finally:
        stop.set()
        reader.join()
    assert answers and set(answers) == {200}
    assert len(seeded.list_services()) == 31


def test_service_object_registration(seeded):
    service = Service("svc-obj", "tools", svc("svc-obj", namespace="tools"))
    result = seeded.register_service(service)
    assert result.path == "services/tools/svc-obj.yaml" and result.status == "CONFIGURED"


def test_never_overwrites_uncommitted_edits(seeded, repo):
    path = repo.path / "services/platform/user-service.yaml"
    path.write_text(path.read_text() + "owner: my-unsaved-edit\n")
    with pytest.raises(RegistryError, match="uncommitted changes"):
        seeded.register_service(svc("user-service", version="1.3.0"))
    assert "my-unsaved-edit" in path.read_text()
    assert git(repo.path, "log", "--format=%s") == "seed"
