"""Status rules of DESIGN §2, each as rows in status / validation_errors."""

from __future__ import annotations

import json

from conftest import rows, run_ingest


def status_at(db_path, sid, sha):
    """The status row written for ``sid`` at commit ``sha`` (None when none)."""
    found = rows(db_path, "select * from status where service_id = ? and commit_sha = ?",
                 (sid, sha))
    assert len(found) <= 1
    return found[0] if found else None


def problems_at(db_path, sid, sha):
    return rows(db_path, "select severity, kind, json_path, message, schema, config_id "
                         "from validation_errors where service_id = ? and commit_sha = ? "
                         "order by json_path, message", (sid, sha))


def service(db_path, sid):
    found = rows(db_path, "select * from services where id = ?", (sid,))
    assert found, f"no service {sid}"
    return found[0]


# -- reading --------------------------------------------------------------------------

def test_yaml_parse_error_is_error_with_line_and_column(repo, db_path):
    repo.write("services/platform/auth-service.yaml",
               "name: auth-service\nversion: \"1.0.0\"\nparameters: {replicas: 3\n")
    sha = repo.commit("broken yaml")
    run_ingest(repo, db_path)
    svc = service(db_path, "platform/auth-service")
    assert svc["status"] == "ERROR"
    problems = problems_at(db_path, "platform/auth-service", sha)
    assert len(problems) == 1
    p = problems[0]
    assert (p["severity"], p["kind"], p["json_path"]) == ("error", "parse", "$")
    assert "invalid YAML" in p["message"] and "line 4" in p["message"]
    assert "column" in p["message"]
    config = rows(db_path, "select parse_error, parse_line, parse_column, content, raw "
                           "from configs where id = ?", (svc["config_id"],))[0]
    assert config["content"] is None and config["parse_error"].startswith("invalid YAML")
    assert config["parse_line"] == 4 and config["parse_column"] >= 1
    assert "replicas: 3" in config["raw"]
    assert status_at(db_path, "platform/auth-service", sha)["status"] == "ERROR"


def test_json_parse_error_has_line_and_column(repo, db_path):
    repo.write("services/data/user-service.json",
               '{\n  "name": "user-service",\n  "version": "1.0.0",,\n}\n')
    sha = repo.commit("broken json")
    run_ingest(repo, db_path)
    # an unreadable file without a name field is known by its folder and stem
    problems = problems_at(db_path, "data/user-service", sha)
    assert [(p["kind"], p["json_path"]) for p in problems] == [("parse", "$")]
    assert "invalid JSON" in problems[0]["message"]
    assert "line 3, column 22" in problems[0]["message"]
    config = rows(db_path, "select format, parse_line, parse_column from configs")[0]
    assert config == {"format": "json", "parse_line": 3, "parse_column": 22}


def test_broken_file_later_fixed_keeps_its_service_and_becomes_configured(repo, db_path):
    repo.service("auth-service", version="1.0.0")
    repo.commit("good")
    repo.write("services/platform/auth-service.yaml", "name: auth-service\nversion: [\n")
    broken = repo.commit("break")
    repo.service("auth-service", version="1.0.1")
    fixed = repo.commit("fix")
    run_ingest(repo, db_path)
    history = rows(db_path, "select service_id, commit_sha, change, status from history "
                            "order by seq")
    assert [(h["service_id"], h["change"], h["status"]) for h in history] == [
        ("platform/auth-service", "added", "CONFIGURED"),
        ("platform/auth-service", "modified", "ERROR"),
        ("platform/auth-service", "modified", "CONFIGURED")]
    assert status_at(db_path, "platform/auth-service", broken)["status"] == "ERROR"
    fixed_status = status_at(db_path, "platform/auth-service", fixed)
    assert fixed_status["status"] == "CONFIGURED" and fixed_status["message"] == ""
    # the fix's parameter changes compare against the last readable config
    pc = rows(db_path, "select key, old_value, new_value from parameter_changes "
                       "where commit_sha = ?", (fixed,))
    assert pc == [{"key": "$.version", "old_value": '"1.0.0"', "new_value": '"1.0.1"'}]


# -- schema -----------------------------------------------------------------------------

def test_two_wrong_fields_give_two_rows(repo, db_path):
    repo.write("services/platform/auth-service.yaml",
               "name: auth-service\nversion: 2\nowner: 5\n")
    sha = repo.commit("two wrong fields")
    run_ingest(repo, db_path)
    problems = problems_at(db_path, "platform/auth-service", sha)
    assert [(p["severity"], p["kind"], p["json_path"]) for p in problems] == [
        ("error", "schema", "$.owner"), ("error", "schema", "$.version")]
    assert all(p["schema"] and "service-v1" in p["schema"] for p in problems)
    config_id = service(db_path, "platform/auth-service")["config_id"]
    assert {p["config_id"] for p in problems} == {config_id}
    status = status_at(db_path, "platform/auth-service", sha)
    assert status["status"] == "ERROR"
    assert "owner" in status["message"] and "version" in status["message"]


def test_all_schema_errors_are_reported_not_only_the_first(repo, db_path):
    repo.write("services/platform/auth-service.yaml", """\
name: Auth_Service
version: "1.0"
service_type: {type: soap}
endpoints:
  - {name: login, method: FETCH}
health_check: {url: http://auth/healthz, interval_s: 0}
""")
    sha = repo.commit("many schema errors")
    run_ingest(repo, db_path)
    sid = rows(db_path, "select id from services")[0]["id"]
    paths = sorted(p["json_path"] for p in problems_at(db_path, sid, sha))
    assert paths == ["$.endpoints[0]", "$.endpoints[0].method", "$.health_check.interval_s",
                     "$.name", "$.service_type.type", "$.version"]
    assert service(db_path, sid)["status"] == "ERROR"


def test_unknown_top_level_key_is_a_schema_error(repo, db_path):
    repo.service("user-service")
    repo.service("auth-service", dependancies=[{"service": "user-service"}])
    sha = repo.commit("typo")
    run_ingest(repo, db_path)
    problems = problems_at(db_path, "platform/auth-service", sha)
    assert len(problems) == 1
    assert problems[0]["kind"] == "schema" and problems[0]["severity"] == "error"
    assert "dependancies" in problems[0]["message"]
    assert service(db_path, "platform/auth-service")["status"] == "ERROR"
    assert service(db_path, "platform/user-service")["status"] == "CONFIGURED"


# -- duplicates ------------------------------------------------------------------------

def test_duplicate_service_id_across_two_files(repo, db_path):
    repo.service("auth-service")
    repo.service("user-service")
    repo.commit("two services")
    repo.service("auth-service", rel="services/platform/auth-copy.yaml", version="9.9.9")
    dup = repo.commit("copy declares the same id")
    repo.rm("services/platform/auth-copy.yaml")
    fixed = repo.commit("remove the copy")
    run_ingest(repo, db_path)
    problems = problems_at(db_path, "platform/auth-service", dup)
    assert [(p["severity"], p["kind"]) for p in problems] == [("error", "duplicate")]
    assert "services/platform/auth-service.yaml" in problems[0]["message"]
    assert "services/platform/auth-copy.yaml" in problems[0]["message"]
    assert status_at(db_path, "platform/auth-service", dup)["status"] == "ERROR"
    assert status_at(db_path, "platform/user-service", dup) is None
    assert status_at(db_path, "platform/auth-service", fixed)["status"] == "CONFIGURED"
    assert service(db_path, "platform/auth-service")["status"] == "CONFIGURED"


# -- dependencies ----------------------------------------------------------------------

def test_required_dependency_missing_is_error_optional_is_warning(repo, db_path):
    repo.service("auth-service", dependencies=[{"service": "user-service"}])
    repo.service("cache", dependencies=[{"service": "data/redis", "required": False}])
    sha = repo.commit("dangling dependencies")
    run_ingest(repo, db_path)
    auth = problems_at(db_path, "platform/auth-service", sha)
    assert [(p["severity"], p["kind"], p["json_path"]) for p in auth] == [
        ("error", "dependency", "$.dependencies[0].service")]
    assert "platform/user-service" in auth[0]["message"]
    cache = problems_at(db_path, "platform/cache", sha)
    assert [(p["severity"], p["kind"], p["json_path"]) for p in cache] == [
        ("warning", "dependency", "$.dependencies[0].service")]
    assert "data/redis" in cache[0]["message"]
    assert service(db_path, "platform/auth-service")["status"] == "ERROR"
    cache_svc = service(db_path, "platform/cache")
    assert cache_svc["status"] == "CONFIGURED"
    assert "warning" in cache_svc["status_message"] and "data/redis" in cache_svc["status_message"]
    deps = rows(db_path, "select service_id, depends_on, required from dependencies "
                         "order by service_id")
    assert deps == [
        {"service_id": "platform/auth-service", "depends_on": "platform/user-service",
         "required": 1},
        {"service_id": "platform/cache", "depends_on": "data/redis", "required": 0}]


def test_version_constraint_unsatisfied_then_satisfied_by_the_dependency(repo, db_path):
    repo.service("user-service", version="1.5.0")
    repo.service("auth-service", dependencies=[
        {"service": "user-service", "version_constraint": ">=2.0.0"}])
    repo.service("cache", dependencies=[
        {"service": "user-service", "version_constraint": "^2.0.0", "required": False}])
    first = repo.commit("auth needs user 2")
    repo.service("user-service", version="2.1.0")
    bumped = repo.commit("user 2.1")
    run_ingest(repo, db_path)
    auth = problems_at(db_path, "platform/auth-service", first)
    assert [(p["severity"], p["kind"], p["json_path"]) for p in auth] == [
        ("error", "dependency", "$.dependencies[0].version_constraint")]
    assert "1.5.0" in auth[0]["message"] and ">=2.0.0" in auth[0]["message"]
    cache = problems_at(db_path, "platform/cache", first)
    assert [(p["severity"], p["kind"]) for p in cache] == [("warning", "dependency")]
    assert status_at(db_path, "platform/cache", first)["status"] == "CONFIGURED"
    # the dependency's bump re-validates both dependents, whose files did not change
    assert status_at(db_path, "platform/auth-service", bumped)["status"] == "CONFIGURED"
    assert status_at(db_path, "platform/cache", bumped)["status"] == "CONFIGURED"
    assert status_at(db_path, "platform/cache", bumped)["message"] == ""
    assert rows(db_path, "select service_id from history where commit_sha = ?", (bumped,)) == [
        {"service_id": "platform/user-service"}]


def test_comma_separated_range_constraint_from_the_schema_docs(repo, db_path):
    # service-v1.schema.json documents ">=1.2.0,<2.0.0" as a version_constraint example
    repo.service("user-service", version="1.5.0")
    repo.service("auth-service", dependencies=[
        {"service": "user-service", "version_constraint": ">=1.2.0,<2.0.0"}])
    repo.service("billing", dependencies=[
        {"service": "user-service", "version_constraint": ">=1.0.0 <1.4.0"}])
    sha = repo.commit("ranges")
    run_ingest(repo, db_path)
    assert problems_at(db_path, "platform/auth-service", sha) == []
    assert service(db_path, "platform/auth-service")["status"] == "CONFIGURED"
    billing = problems_at(db_path, "platform/billing", sha)
    assert [(p["kind"], p["json_path"]) for p in billing] == [
        ("dependency", "$.dependencies[0].version_constraint")]


def test_dependency_removed_makes_dependent_error_in_a_commit_not_touching_it(repo, db_path):
    repo.service("user-service")
    repo.service("auth-service", dependencies=[{"service": "user-service"}])
    repo.commit("auth depends on user")
    repo.rm("services/platform/user-service.yaml")
    removed = repo.commit("remove user-service")
    repo.service("user-service")
    restored = repo.commit("restore user-service")
    run_ingest(repo, db_path)
    assert rows(db_path, "select service_id, change from history where commit_sha = ?",
                (removed,)) == [{"service_id": "platform/user-service", "change": "removed"}]
    row = status_at(db_path, "platform/auth-service", removed)
    assert row["status"] == "ERROR" and row["mainline"] == 1
    assert "platform/user-service" in row["message"]
    assert [(p["kind"], p["json_path"]) for p in
            problems_at(db_path, "platform/auth-service", removed)] == [
        ("dependency", "$.dependencies[0].service")]
    assert status_at(db_path, "platform/auth-service", restored)["status"] == "CONFIGURED"
    assert service(db_path, "platform/auth-service")["status"] == "CONFIGURED"


def test_required_cycle_is_error_for_both_and_breaking_it_clears_both(repo, db_path):
    repo.service("orders", dependencies=[{"service": "payments"}])
    repo.service("payments", dependencies=[{"service": "orders"}])
    repo.service("catalog")
    cyc = repo.commit("cycle")
    repo.service("payments", dependencies=[{"service": "orders", "required": False}])
    broken = repo.commit("make one edge optional")
    run_ingest(repo, db_path)
    for sid in ("platform/orders", "platform/payments"):
        assert status_at(db_path, sid, cyc)["status"] == "ERROR"
        problems = problems_at(db_path, sid, cyc)
        assert [(p["severity"], p["kind"]) for p in problems] == [("error", "cycle")]
        assert "platform/orders" in problems[0]["message"]
        assert "platform/payments" in problems[0]["message"]
    assert status_at(db_path, "platform/catalog", cyc)["status"] == "CONFIGURED"
    # breaking the cycle in payments' file also clears orders (file untouched)
    for sid in ("platform/orders", "platform/payments"):
        row = status_at(db_path, sid, broken)
        assert row is not None and row["status"] == "CONFIGURED", sid
        assert problems_at(db_path, sid, broken) == []
    assert status_at(db_path, "platform/catalog", broken) is None


def test_optional_cycle_is_not_an_error(repo, db_path):
    repo.service("a", dependencies=[{"service": "b", "required": False}])
    repo.service("b", dependencies=[{"service": "a", "required": False}])
    repo.commit("optional loop")
    run_ingest(repo, db_path)
    assert {r["status"] for r in rows(db_path, "select status from services")} == {"CONFIGURED"}


# -- schema versions --------------------------------------------------------------------

def test_schema_version_major_unknown_is_error_newer_minor_is_warning(repo, db_path):
    repo.service("auth-service", schema_version="2.0.0")
    repo.service("user-service", schema_version="1.9.0")
    repo.service("cache", schema_version="1.0.0")
    sha = repo.commit("schema versions")
    run_ingest(repo, db_path)
    auth = problems_at(db_path, "platform/auth-service", sha)
    assert [(p["severity"], p["kind"], p["json_path"]) for p in auth] == [
        ("error", "version", "$.schema_version")]
    assert "incompatible schema version" in auth[0]["message"]
    assert service(db_path, "platform/auth-service")["status"] == "ERROR"
    user = problems_at(db_path, "platform/user-service", sha)
    assert [(p["severity"], p["kind"]) for p in user] == [("warning", "version")]
    assert service(db_path, "platform/user-service")["status"] == "CONFIGURED"
    assert problems_at(db_path, "platform/cache", sha) == []
    versions = {r["id"]: r["schema_version"] for r in
                rows(db_path, "select c.schema_version, s.id from configs c "
                              "join services s on s.config_id = c.id")}
    assert versions == {"platform/auth-service": "2.0.0", "platform/user-service": "1.9.0",
                        "platform/cache": "1.0.0"}


# -- root-file layout ---------------------------------------------------------------------

ROOT = {
    "version": "1.0.0",
    "global": {"config_dir": "cfg", "default_namespace": "core"},
    "services": [
        {"name": "auth-service", "config_path": "auth/service.yaml", "namespace": "platform"},
        {"name": "user-service", "config_path": "users.yaml"},
    ],
}


def test_root_file_layout_with_config_dir_and_namespace_override(repo, db_path):
    repo.write("aureacore.yaml", ROOT)
    repo.write("cfg/auth/service.yaml", {"name": "auth-service", "version": "1.0.0"})
    repo.write("cfg/users.yaml", {"name": "user-service", "version": "1.2.0"})
    repo.service("ignored")  # services/ is not read when a root file exists
    sha = repo.commit("root file")
    run_ingest(repo, db_path)
    services = rows(db_path, "select id, namespace, name, path, status from services "
                             "order by id")
    assert services == [
        {"id": "core/user-service", "namespace": "core", "name": "user-service",
         "path": "cfg/users.yaml", "status": "CONFIGURED"},
        {"id": "platform/auth-service", "namespace": "platform", "name": "auth-service",
         "path": "cfg/auth/service.yaml", "status": "CONFIGURED"},
    ]
    assert {r["commit_sha"] for r in rows(db_path, "select commit_sha from history")} == {sha}


def test_root_file_listed_file_missing_is_error(repo, db_path):
    repo.write("aureacore.yaml", ROOT)
    repo.write("cfg/auth/service.yaml", {"name": "auth-service", "version": "1.0.0"})
    sha = repo.commit("users.yaml not written")
    run_ingest(repo, db_path)
    assert service(db_path, "core/user-service")["status"] == "ERROR"
    problems = problems_at(db_path, "core/user-service", sha)
    assert len(problems) == 1 and "cfg/users.yaml" in problems[0]["message"]
    assert service(db_path, "platform/auth-service")["status"] == "CONFIGURED"


def test_root_entry_without_namespace_uses_the_files_namespace(repo, db_path):
    # root-v1.schema.json: the entry's namespace "overrides the file's namespace and
    # global.default_namespace" - so without an entry namespace the file's one applies
    repo.write("aureacore.yaml", ROOT)
    repo.write("cfg/auth/service.yaml", {"name": "auth-service", "version": "1.0.0"})
    repo.write("cfg/users.yaml", {"name": "user-service", "namespace": "data",
                                  "version": "1.2.0"})
    repo.commit("file declares its namespace")
    run_ingest(repo, db_path)
    ids = [r["id"] for r in rows(db_path, "select id from services order by id")]
    assert ids == ["data/user-service", "platform/auth-service"]


def test_switching_layouts_keeps_service_ids(repo, db_path):
    repo.service("auth-service")
    repo.service("user-service", namespace="core")
    repo.commit("convention layout")
    repo.write("aureacore.yaml", ROOT)
    (repo.path / "cfg/auth").mkdir(parents=True)
    repo.git("mv", "services/platform/auth-service.yaml", "cfg/auth/service.yaml")
    repo.git("mv", "services/core/user-service.yaml", "cfg/users.yaml")
    to_root = repo.commit("switch to a root file")
    repo.rm("aureacore.yaml")
    (repo.path / "services/platform").mkdir(parents=True, exist_ok=True)
    repo.git("mv", "cfg/auth/service.yaml", "services/platform/auth-service.yaml")
    back = repo.commit("back to convention (cfg/users.yaml is no longer read)")
    run_ingest(repo, db_path)
    at_root = rows(db_path, "select service_id, change, path, old_path from history "
                            "where commit_sha = ? order by service_id", (to_root,))
    assert at_root == [
        {"service_id": "core/user-service", "change": "renamed", "path": "cfg/users.yaml",
         "old_path": "services/core/user-service.yaml"},
        {"service_id": "platform/auth-service", "change": "renamed",
         "path": "cfg/auth/service.yaml", "old_path": "services/platform/auth-service.yaml"},
    ]
    at_back = rows(db_path, "select service_id, change from history where commit_sha = ? "
                            "order by service_id", (back,))
    assert at_back == [{"service_id": "core/user-service", "change": "removed"},
                       {"service_id": "platform/auth-service", "change": "renamed"}]
    services = rows(db_path, "select id, removed, path from services order by id")
    assert services == [
        {"id": "core/user-service", "removed": 1, "path": None},
        {"id": "platform/auth-service", "removed": 0,
         "path": "services/platform/auth-service.yaml"}]


def test_invalid_root_file_is_reported_on_every_service(repo, db_path):
    repo.write("aureacore.yaml", ROOT)
    repo.write("cfg/auth/service.yaml", {"name": "auth-service", "version": "1.0.0"})
    repo.write("cfg/users.yaml", {"name": "user-service", "version": "1.0.0"})
    repo.commit("good root")
    repo.write("aureacore.yaml", "version: 1.0.0\nservices: [\n")
    broken = repo.commit("broken root file")
    run_ingest(repo, db_path)
    for sid in ("core/user-service", "platform/auth-service"):
        row = status_at(db_path, sid, broken)
        assert row is not None and row["status"] == "ERROR", sid
        assert "aureacore.yaml" in row["message"]


# -- service-specific parameter schemas -------------------------------------------------

def _param_schema(maximum: int) -> str:
    return json.dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"replicas": {"type": "integer", "maximum": maximum}},
        "required": ["replicas"],
    })


def test_parameter_schema_in_the_repo_applies_as_of_each_commit(repo, db_path):
    repo.service("auth-service", parameters={"replicas": 20})
    repo.service("user-service", parameters={"replicas": 20})
    before = repo.commit("no parameter schema yet")
    repo.write("schemas/platform/auth-service.json", _param_schema(10))
    strict = repo.commit("auth: at most 10 replicas")
    repo.write("schemas/platform/auth-service.json", _param_schema(50))
    relaxed = repo.commit("auth: at most 50 replicas")
    repo.service("auth-service", parameters={"replicas": 60})
    too_many = repo.commit("auth: 60 replicas")
    run_ingest(repo, db_path)
    sid = "platform/auth-service"
    assert status_at(db_path, sid, before)["status"] == "CONFIGURED"
    row = status_at(db_path, sid, strict)
    assert row is not None and row["status"] == "ERROR"
    problems = problems_at(db_path, sid, strict)
    assert [(p["kind"], p["json_path"], p["schema"]) for p in problems] == [
        ("schema", "$.parameters.replicas", "schemas/platform/auth-service.json")]
    assert "10" in problems[0]["message"]
    assert rows(db_path, "select * from history where commit_sha = ?", (strict,)) == []
    assert status_at(db_path, sid, relaxed)["status"] == "CONFIGURED"
    assert status_at(db_path, sid, too_many)["status"] == "ERROR"
    # only the service the schema belongs to is re-validated
    for sha in (strict, relaxed, too_many):
        assert status_at(db_path, "platform/user-service", sha) is None
    assert service(db_path, "platform/user-service")["status"] == "CONFIGURED"


def test_parameter_schema_removed_revalidates_its_service(repo, db_path):
    repo.write("schemas/platform/auth-service.json", _param_schema(1))
    repo.service("auth-service", parameters={"replicas": 3})
    first = repo.commit("strict schema")
    repo.rm("schemas/platform/auth-service.json")
    dropped = repo.commit("drop schema")
    run_ingest(repo, db_path)
    assert status_at(db_path, "platform/auth-service", first)["status"] == "ERROR"
    assert status_at(db_path, "platform/auth-service", dropped)["status"] == "CONFIGURED"


def test_invalid_parameter_schema_is_an_error_for_its_service(repo, db_path):
    repo.write("schemas/platform/auth-service.json", '{"type": "no-such-type"}')
    repo.service("auth-service", parameters={"replicas": 3})
    sha = repo.commit("bad schema")
    run_ingest(repo, db_path)
    problems = problems_at(db_path, "platform/auth-service", sha)
    assert len(problems) == 1 and problems[0]["kind"] == "schema"
    assert "schemas/platform/auth-service.json" in problems[0]["message"]


def test_message_only_change_is_its_own_event_kind(repo, db_path):
    """A warning appearing on a CONFIGURED service is not a status change: alert channels
    subscribed to status_changed stay quiet; status_message_changed records it."""
    repo.service("cache")
    added = repo.commit("cache")
    repo.service("cache", dependencies=[{"service": "data/redis", "required": False}])
    warned = repo.commit("cache: optional redis (missing)")
    run_ingest(repo, db_path)
    kinds = rows(db_path, "select kind, commit_sha, json_extract(payload, '$.status') as status "
                          "from events where service_id = 'platform/cache' "
                          "and kind like 'status%' order by id")
    assert kinds == [
        {"kind": "status_changed", "commit_sha": added, "status": "CONFIGURED"},
        {"kind": "status_message_changed", "commit_sha": warned, "status": "CONFIGURED"},
    ]
    assert status_at(db_path, "platform/cache", warned)["previous_status"] == "CONFIGURED"
