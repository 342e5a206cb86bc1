"""ConfigStore (atomic writes, never-stale cache) and the model classes' round trips."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aureacore_db.configstore import ConfigStore
from aureacore_db.models import (
    ConfigError,
    Service,
    ServiceConfig,
    ServiceDependency,
    ServiceStatus,
)
from aureacore_db.versions import service_ref

FULL = {
    "schema_version": "1.0.0", "name": "auth-service", "namespace": "platform",
    "version": "2.3.1", "description": "Authentication", "owner": "team-identity",
    "documentation_url": "https://docs.example.com/auth", "service_type": {"type": "rest"},
    "endpoints": [{"name": "login", "path": "/api/v1/login", "method": "POST"}],
    "dependencies": [{"service": "platform/user-service", "version_constraint": ">=1.0.0",
                      "required": True}, {"service": "cache"}],
    "parameters": {"replicas": 3, "timeout_ms": 500},
    "health_check": {"url": "http://auth.internal/healthz", "interval_s": 30},
    "metadata": {"slack": "#auth"},
}


def test_config_round_trips_dict_yaml_json():
    config = ServiceConfig.from_dict(FULL)
    assert config.to_dict() == FULL
    assert ServiceConfig.from_yaml(config.to_yaml()) == config
    assert ServiceConfig.from_json(config.to_json()) == config
    assert config.dependencies[1].is_required
    assert service_ref(config.dependencies[1].service, "x") == "x/cache"
    assert config.validate_schema() == []


def test_unknown_and_mistyped_keys_are_kept_and_reported():
    data = {"name": "a", "version": 1, "dependancies": [], "dependencies": [{"service": "b",
                                                                               "required": "y"}]}
    config = ServiceConfig.from_dict(data)
    assert config.to_dict() == data
    paths = {p.json_path for p in config.validate_schema()}
    assert {"$", "$.version", "$.dependencies[0].required"} <= paths


def test_config_from_row_and_status_and_service_rows():
    config = ServiceConfig.from_dict(FULL)
    assert ServiceConfig.from_row({"id": "x", "content": config.content_json()}) == config
    with pytest.raises(ConfigError):
        ServiceConfig.from_row({"id": "x", "content": None, "parse_error": "bad"})
    status = ServiceStatus.from_row({"status": "ERROR", "message": "m",
                                     "checked_at": "2025-01-01T00:00:00Z"})
    assert ServiceStatus.from_dict(status.to_dict()) == status
    with pytest.raises(ValueError):
        ServiceStatus("BROKEN")
    service = Service.from_config(config)
    assert service.id == "platform/auth-service" and service.status.state == "PENDING"
    row = service.to_row()
    back = Service.from_row(row, {"content": config.content_json()})
    assert back.id == service.id and back.config == config and back.status.state == "PENDING"
    service.update_config(config.copy(version="2.4.0"))
    assert service.config.version == "2.4.0" and service.status.state == "PENDING"
    assert Service("other", "platform", config).validate()[0].json_path == "$.name"


def test_save_and_load(tmp_path: Path):
    store = ConfigStore(tmp_path)
    config = ServiceConfig.from_dict(FULL)
    path = store.save_config("platform/auth-service", config)
    assert path == tmp_path / "platform/auth-service.yaml"
    assert store.load_config("platform/auth-service") == config
    assert store.save_config("data/users.json", config).read_text().startswith("{")
    assert json.loads((tmp_path / "data/users.json").read_text()) == FULL
    assert store.list_configs() == ["data/users", "platform/auth-service"]
    assert store.load_config("data/users") == config
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    for bad in ("../escape", "/abs/path", ""):
        with pytest.raises(ConfigError):
            store.save_config(bad, config)
    with pytest.raises(FileNotFoundError):
        store.load_config("platform/missing")


def test_cache_is_never_stale(tmp_path: Path):
    store = ConfigStore(tmp_path)
    store.save_config("a", ServiceConfig(name="a", version="1.0.0"))
    first = store.load_config("a")
    first.version = "9.9.9"  # callers get copies: mutating one does not touch the cache
    assert store.load_config("a").version == "1.0.0"
    assert store.hits >= 1
    # Another writer, same size, same mtime: the inode/ctime part of the key still differs.
    path = tmp_path / "a.yaml"
    stat = path.stat()
    other = tmp_path / "other.yaml"
    other.write_text(path.read_text().replace("1.0.0", "2.0.0"))
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(other, path)
    assert path.stat().st_size == stat.st_size
    assert store.load_config("a").version == "2.0.0"
    # In-place rewrite by another process.
    path.write_text(path.read_text().replace("2.0.0", "3.0.0"))
    assert store.load_config("a").version == "3.0.0"


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path, monkeypatch):
    store = ConfigStore(tmp_path)
    store.save_config("a", ServiceConfig(name="a", version="1.0.0"))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store.save_config("a", ServiceConfig(name="a", version="2.0.0"))
    monkeypatch.undo()
    assert store.load_config("a").version == "1.0.0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yaml"]


def test_dependency_short_form_round_trips():
    dep = ServiceDependency.from_value("platform/x")
    assert dep.service == "platform/x" and dep.is_required
