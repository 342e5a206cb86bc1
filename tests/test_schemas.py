"""The built-in JSON Schemas in ``schemas/`` are valid and say what DESIGN.md section 1 says."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

SCHEMA_DIR = Path(__file__).parent.parent / "schemas"

DESIGN_EXAMPLE = """
schema_version: "1.0.0"
name: auth-service
namespace: platform
version: "2.3.1"
description: Authentication
owner: team-identity
documentation_url: https://docs.example.com/auth
service_type: {type: rest}
endpoints:
  - {name: login, path: /api/v1/login, method: POST}
dependencies:
  - {service: platform/user-service, version_constraint: ">=1.0.0", required: true}
parameters: {replicas: 3, timeout_ms: 500}
health_check: {url: http://auth.internal/healthz, interval_s: 30}
metadata: {slack: "#auth"}
"""

ROOT_EXAMPLE = """
version: "1.0.0"
global:
  config_dir: services
  default_namespace: default
services:
  - name: auth-service
    config_path: auth/service.yaml
    namespace: platform
"""


def _load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def service() -> Draft202012Validator:
    return Draft202012Validator(
        _load("service-v1.schema.json"), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


@pytest.fixture(scope="module")
def root() -> Draft202012Validator:
    return Draft202012Validator(_load("root-v1.schema.json"))


def _good() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(DESIGN_EXAMPLE))


def _paths(validator: Draft202012Validator, doc: Any) -> list[str]:
    return sorted(e.json_path for e in validator.iter_errors(doc))


@pytest.mark.parametrize("name", ["service-v1.schema.json", "root-v1.schema.json"])
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = _load(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://aureacore.dev/schemas/{name}"
    for prop in schema["properties"].values():
        assert prop.get("title") and prop.get("description")


def test_design_example_and_minimal_service_are_valid(service: Draft202012Validator) -> None:
    assert _paths(service, _good()) == []
    assert _paths(service, {"name": "x", "version": "0.1.0"}) == []


def test_name_and_version_are_required(service: Draft202012Validator) -> None:
    errors = list(service.iter_errors({"description": "nothing else"}))
    assert {e.json_path for e in errors} == {"$"}
    assert sorted(e.validator for e in errors) == ["required", "required"]


def test_typo_top_level_key_fails(service: Draft202012Validator) -> None:
    doc = _good()
    doc["dependancies"] = doc.pop("dependencies")
    errors = list(service.iter_errors(doc))
    assert [(e.json_path, e.validator) for e in errors] == [("$", "additionalProperties")]
    assert "dependancies" in errors[0].message


@pytest.mark.parametrize(
    "name", ["Auth-Service", "auth_service", "-auth", "auth-", "", "a" * 64, "auth.service"]
)
def test_bad_name_fails(service: Draft202012Validator, name: str) -> None:
    doc = _good()
    doc["name"] = name
    assert _paths(service, doc) == ["$.name"]


def test_bad_namespace_fails(service: Draft202012Validator) -> None:
    doc = _good()
    doc["namespace"] = "Platform"
    assert _paths(service, doc) == ["$.namespace"]


@pytest.mark.parametrize(
    "version", ["1.0.0", "0.0.1", "10.20.30", "1.0.0-alpha.1", "1.0.0-rc.1+build.5", "2.0.0+sha.5"]
)
def test_good_semver_passes(service: Draft202012Validator, version: str) -> None:
    doc = _good()
    doc["version"] = version
    assert _paths(service, doc) == []


@pytest.mark.parametrize(
    "version", ["1.0", "v1.2.3", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.3.4", "latest", 1.2]
)
def test_bad_semver_fails(service: Draft202012Validator, version: Any) -> None:
    doc = _good()
    doc["version"] = version
    assert _paths(service, doc) == ["$.version"]


def test_schema_version_pattern(service: Draft202012Validator) -> None:
    for ok in ("1.0", "1.0.0", "2.1.13"):
        assert _paths(service, {**_good(), "schema_version": ok}) == []
    for bad in ("1", "v1.0", "1.0.0-beta", 1.0):
        assert _paths(service, {**_good(), "schema_version": bad}) == ["$.schema_version"]


def test_other_service_type_needs_custom_type(service: Draft202012Validator) -> None:
    doc = _good()
    doc["service_type"] = {"type": "other"}
    errors = list(service.iter_errors(doc))
    assert [(e.json_path, e.validator) for e in errors] == [("$.service_type", "required")]
    doc["service_type"] = {"type": "other", "custom_type": "cronjob"}
    assert _paths(service, doc) == []
    doc["service_type"] = {"type": "soap"}
    assert _paths(service, doc) == ["$.service_type.type"]


@pytest.mark.parametrize(
    "ref",
    ["Platform/user-service", "platform/user_service", "a/b/c", "/user-service", "platform/", ""],
)
def test_bad_dependency_service_fails(service: Draft202012Validator, ref: str) -> None:
    doc = _good()
    doc["dependencies"][0]["service"] = ref
    assert _paths(service, doc) == ["$.dependencies[0].service"]


def test_dependency_forms(service: Draft202012Validator) -> None:
    doc = _good()
    doc["dependencies"] = [
        {"service": "user-service"},
        {"service": "payments/ledger", "version_constraint": ">=1.2.0,<2.0.0", "required": False},
    ]
    assert _paths(service, doc) == []
    doc["dependencies"][1]["required"] = "no"
    doc["dependencies"].append({"service": "x", "optional": True})
    doc["dependencies"].append({"version_constraint": ">=1.0.0"})
    assert _paths(service, doc) == [
        "$.dependencies[1].required",
        "$.dependencies[2]",
        "$.dependencies[3]",
    ]


def test_endpoint_rules(service: Draft202012Validator) -> None:
    doc = _good()
    doc["endpoints"] = [
        {"name": "login", "path": "api/v1/login"},
        {"name": "logout", "path": "/logout", "method": "post"},
        {"path": "/x", "verb": "GET"},
    ]
    assert _paths(service, doc) == [
        "$.endpoints[0].path",
        "$.endpoints[1].method",
        "$.endpoints[2]",
        "$.endpoints[2]",
    ]


def test_health_check_rules(service: Draft202012Validator) -> None:
    doc = _good()
    doc["health_check"] = {
        "url": "http://auth.internal/healthz",
        "interval_s": 15,
        "timeout_s": 2.5,
        "expected_status": 200,
    }
    assert _paths(service, doc) == []
    doc["health_check"] = {"url": "/healthz", "interval_s": 0, "timeout_s": 0, "retries": 3}
    assert _paths(service, doc) == [
        "$.health_check",
        "$.health_check.interval_s",
        "$.health_check.timeout_s",
        "$.health_check.url",
    ]


def test_parameters_and_metadata_are_free_form_objects(service: Draft202012Validator) -> None:
    doc = _good()
    doc["parameters"] = {"db": {"pool": {"max_size": 20}}, "features": {"x": True}, "n": None}
    doc["metadata"] = {"anything": [1, "two"]}
    assert _paths(service, doc) == []
    doc["parameters"] = ["replicas", 3]
    doc["metadata"] = "team"
    assert _paths(service, doc) == ["$.metadata", "$.parameters"]


def test_root_example_is_valid(root: Draft202012Validator) -> None:
    doc = yaml.safe_load(ROOT_EXAMPLE)
    assert _paths(root, doc) == []
    doc["global"]["schema_dir"] = "param-schemas"
    doc["services"].append({"name": "billing", "config_path": "billing.yaml"})
    assert _paths(root, doc) == []


def test_root_errors(root: Draft202012Validator) -> None:
    doc = yaml.safe_load(ROOT_EXAMPLE)
    doc["global"]["default_namespace"] = "Default"
    doc["global"]["configdir"] = "services"
    doc["services"][0]["path"] = "auth.yaml"
    doc["services"].append({"name": "Billing"})
    doc["extra"] = 1
    assert _paths(root, doc) == [
        "$",
        "$.global",
        "$.global.default_namespace",
        "$.services[0]",
        "$.services[1]",
        "$.services[1].name",
    ]
    assert _paths(root, {"version": "1.0.0"}) == ["$"]
