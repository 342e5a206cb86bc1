"""Content that used to crash, hang or be stored other than written (issue 8).

Every case goes through what a user runs: ``aureacore-db validate``, an ingest of a real
Git repository, or ``aureacore-db register``.
"""

from __future__ import annotations

import json
import os
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import GitRepo, LocalServer, rows, run_ingest

from aureacore_db.cli import cli
from aureacore_db.parsing import parse_config

HEAD = 'name: svc\nnamespace: platform\nversion: "1.0.0"\n'


def validate(*args: str):
    return CliRunner().invoke(cli, ["validate", *args])


def problems(db_path: Path, sid: str) -> list[dict]:
    return rows(db_path, "select severity, kind, json_path, message from validation_errors "
                         "where service_id = ? order by id", (sid,))


def ingest_twice(repo: GitRepo, db_path: Path):
    """Ingest, then ingest again: the second run must find nothing to do."""
    first = run_ingest(repo, db_path)
    counts = {t: rows(db_path, f"select count(*) n from {t}")[0]["n"]
              for t in ("history", "status", "validation_errors", "configs")}
    second = run_ingest(repo, db_path)
    assert second.commits_added == 0
    assert counts == {t: rows(db_path, f"select count(*) n from {t}")[0]["n"] for t in counts}
    return first


# -- YAML tags on values they cannot hold ---------------------------------------------------

BAD_TAGS = ["x: !!int", "x: !!int _", "x: !!float", "x: !!float abc", "x: !!bool maybe",
            "x: !!timestamp soon", "x: !!seq x", "x: !!str [1]", "x: !!map a",
            "x: !!null x", "x: !!set [a]", "x: !!omap {a: 1}", "x: !!int [1]",
            "x: {<<: 1}"]


@pytest.mark.parametrize("line", BAD_TAGS)
def test_a_tag_that_cannot_hold_its_value_is_a_parse_error(tmp_path, repo, db_path, line):
    text = HEAD + "metadata:\n  " + line + "\n"
    path = tmp_path / "svc.yaml"
    path.write_text(text)
    result = validate(str(path))
    assert result.exit_code == 1 and result.exception is None or \
        isinstance(result.exception, SystemExit), result.output
    assert "invalid YAML" in result.output and "line 5" in result.output, result.output
    repo.write("services/platform/svc.yaml", text)
    repo.service("good")
    repo.commit("tagged")
    outcome = ingest_twice(repo, db_path)
    assert outcome.services_in_error == 1
    [problem] = problems(db_path, "platform/svc")
    assert problem["kind"] == "parse" and "invalid YAML" in problem["message"]


def test_a_set_is_stored_as_a_sorted_list(repo, db_path):
    repo.write("services/platform/svc.yaml",
               HEAD + "metadata:\n  tags: !!set {zeta, alpha, mid}\n")
    repo.commit("set")
    ingest_twice(repo, db_path)
    [config] = rows(db_path, "select content from configs")
    assert json.loads(config["content"])["metadata"] == {"tags": ["alpha", "mid", "zeta"]}


# -- lone surrogates -------------------------------------------------------------------------

def test_a_lone_surrogate_is_a_parse_error_naming_its_path(tmp_path, repo, db_path):
    text = '{"name": "svc", "version": "1.0.0", "metadata": {"x": "a\\ud800b"}}\n'
    path = tmp_path / "svc.json"
    path.write_text(text)
    result = validate(str(path))
    assert result.exit_code == 1
    assert ("string at $.metadata.x contains a lone surrogate (U+D800), not valid Unicode"
            in result.output)
    repo.write("services/platform/svc.json", text)
    repo.commit("surrogate")
    ingest_twice(repo, db_path)
    [problem] = problems(db_path, "platform/svc")
    assert problem["kind"] == "parse" and problem["json_path"] == "$.metadata.x"
    assert rows(db_path, "select raw, content from configs") == [{"raw": text, "content": None}]


def test_a_lone_surrogate_in_a_key_is_a_parse_error(tmp_path):
    path = tmp_path / "svc.json"
    path.write_text('{"name": "svc", "version": "1.0.0", "metadata": {"\\udfff": 1}}')
    result = validate(str(path))
    assert result.exit_code == 1 and "key at $.metadata" in result.output
    assert "U+DFFF" in result.output


# -- duplicate keys --------------------------------------------------------------------------

@pytest.mark.parametrize("body, expected", [
    ("metadata:\n  a: 1\n  a: 2\n", 'duplication of key "a" in mapping'),
    ("metadata:\n  1: x\n  '1': y\n", 'duplication of key "1" in mapping'),
    ("metadata:\n  on: x\n  'true': y\n", 'duplication of key "true" in mapping'),
    ("metadata:\n  null: x\n  'null': y\n", 'duplication of key "null" in mapping'),
])
def test_duplicate_yaml_keys_are_parse_errors_with_line(tmp_path, body, expected):
    path = tmp_path / "svc.yaml"
    path.write_text(HEAD + body)
    result = validate(str(path))
    assert result.exit_code == 1
    assert expected in result.output and "line 6, column 3" in result.output, result.output


def test_merge_keys_are_not_duplicates(tmp_path):
    path = tmp_path / "svc.yaml"
    path.write_text(HEAD + "metadata:\n  base: &b {a: 1, c: 2}\n  use:\n    <<: *b\n    a: 3\n")
    assert validate(str(path)).exit_code == 0
    content = parse_config(path.read_bytes(), "svc.yaml").content
    assert content["metadata"]["use"] == {"a": 3, "c": 2}


def test_duplicate_json_keys_are_parse_errors(tmp_path, repo, db_path):
    text = '{"name": "svc", "version": "1.0.0", "metadata": {"k": 1, "k": 2}}'
    path = tmp_path / "svc.json"
    path.write_text(text)
    result = validate(str(path))
    assert result.exit_code == 1 and 'duplication of key "k"' in result.output
    repo.write("services/platform/svc.json", text)
    repo.commit("dup")
    ingest_twice(repo, db_path)
    [problem] = problems(db_path, "platform/svc")
    assert problem["kind"] == "parse" and problem["json_path"] == "$.metadata"


# -- stored content is what the file says --------------------------------------------------

def test_schema_defaults_are_not_written_into_the_content(repo, db_path):
    text = ('name: svc\nnamespace: platform\nversion: "1.0.0"\n'
            'dependencies:\n  - service: other\n')
    repo.write("services/platform/svc.yaml", text)
    repo.service("other")
    repo.commit("one")
    repo.write("services/platform/svc.yaml", text + "description: now described\n")
    repo.commit("two")
    ingest_twice(repo, db_path)
    contents = [json.loads(r["content"]) for r in rows(
        db_path, "select content from configs where service_id = 'platform/svc'")]
    assert contents[0] == yaml.safe_load(text)
    assert all("schema_version" not in c and "required" not in c["dependencies"][0]
               for c in contents)
    keys = [r["key"] for r in rows(db_path, "select key from parameter_changes "
                                            "where service_id = 'platform/svc'")]
    assert "$.schema_version" not in keys and "$.dependencies[0].required" not in keys
    interpreted = rows(db_path, "select schema_version from configs "
                                "where service_id = 'platform/svc'")
    assert {r["schema_version"] for r in interpreted} == {"1.0.0"}
    assert rows(db_path, "select required from dependencies where service_id = "
                         "'platform/svc'")[0]["required"] == 1


@pytest.mark.parametrize("field, value", [
    ("name", "svc\n"), ("namespace", "platform\n"), ("version", "1.0.0\n"),
    ("schema_version", "1.0\n"), ("version", "\u0661.0.0"),
])
def test_a_trailing_newline_does_not_pass_a_pattern(tmp_path, field, value):
    doc = {"name": "svc", "namespace": "platform", "version": "1.0.0", field: value}
    path = tmp_path / "svc.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = validate(str(path))
    assert result.exit_code == 1 and f"$.{field}" in result.output, result.output


def test_a_name_with_a_newline_is_not_a_second_valid_service(repo, db_path):
    repo.service("a", namespace="p")
    repo.write("services/p/b.yaml", 'name: "a\\n"\nnamespace: p\nversion: "1.0.0"\n')
    repo.commit("twins")
    run_ingest(repo, db_path)
    statuses = {r["id"]: r["status"] for r in rows(db_path, "select id, status from services")}
    assert statuses == {"p/a": "CONFIGURED", "p/a\n": "ERROR"}


@pytest.fixture
def registry_db(repo: GitRepo, db_path: Path) -> Path:
    repo.service("seed")
    repo.commit("seed")
    run_ingest(repo, db_path)
    return db_path


def test_register_refuses_a_name_with_a_newline(tmp_path, repo, registry_db):
    path = tmp_path / "svc.yaml"
    path.write_text('name: "a\\n"\nnamespace: platform\nversion: "1.0.0"\n')
    result = CliRunner().invoke(cli, ["register", str(path), "--db", str(registry_db)])
    assert result.exit_code == 1 and "nothing was written" in result.output
    assert sorted(p.name for p in (repo.path / "services/platform").iterdir()) == ["seed.yaml"]


AWKWARD = {
    "nel": "a\u0085b", "line_sep": "a\u2028b", "para_sep": "x\u2029", "tab": "\t",
    "lead": "  leading spaces", "trail": "trailing ", "yes": "yes", "float": "1e3",
    "octal": "0o17", "null": "null", "long": "word " * 2000, "unicode": "héllo \U0001f600",
    "nbsp": "a\u00a0b", "bom": "\ufeffx", "colon": "a: b", "dash": "- x", "hash": "# x",
    "newlines": "a\nb\n", "cr": "a\rb", "escape": "\x1b[0m",
}


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_register_writes_awkward_values_that_read_back_the_same(tmp_path, repo, registry_db,
                                                                fmt):
    doc = {"name": f"odd-{fmt}", "namespace": "platform", "version": "1.0.0",
           "metadata": AWKWARD}
    path = tmp_path / f"svc.{fmt}"
    path.write_text(json.dumps(doc) if fmt == "json" else yaml.safe_dump(doc),
                    encoding="utf-8")
    result = CliRunner().invoke(cli, ["register", str(path), "--db", str(registry_db)])
    assert result.exit_code == 0, result.output
    written = repo.path / f"services/platform/odd-{fmt}.yaml"
    assert parse_config(written.read_bytes(), written.name).content == doc
    [stored] = rows(registry_db, "select content from configs where service_id = ?",
                    (f"platform/odd-{fmt}",))
    assert json.loads(stored["content"]) == doc


# -- parameter schemas kept in the repo are untrusted --------------------------------------

def with_schema(repo: GitRepo, schema: dict, parameters: dict) -> None:
    repo.service("svc", parameters=parameters)
    repo.service("good")
    repo.write("schemas/platform/svc.json", json.dumps(schema))
    repo.commit("schema")


@pytest.mark.parametrize("schema, parameters, expected", [
    ({"properties": {"x": {"type": "string", "pattern": "^(a|a)*$"}}},
     {"x": "a" * 40 + "!"}, "took too long"),
    ({"patternProperties": {"^(a|aa)+$": {"type": "integer"}}},
     {"a" * 60 + "!": 1}, "took too long"),
    ({"patternProperties": {"^(a|aa)+$": True}, "additionalProperties": False},
     {"a" * 60 + "!": 1}, "took too long"),
    ({"properties": {"x": {"pattern": "(unclosed"}}}, {"x": "y"}, "is not a 'regex'"),
    ({"$ref": "#"}, {"x": 1}, "refers to itself"),
    ({"$ref": "#/$defs/missing"}, {"x": 1}, "cannot resolve"),
    ({"$dynamicRef": "#nowhere"}, {"x": 1}, "cannot resolve"),
    ({"properties": {"x": {"$ref": "other.json"}}}, {"x": 1}, "cannot resolve"),
])
def test_a_hostile_parameter_schema_is_an_error_of_its_service(repo, db_path, schema,
                                                              parameters, expected):
    with_schema(repo, schema, parameters)
    started = time.monotonic()
    ingest_twice(repo, db_path)
    assert time.monotonic() - started < 30
    statuses = {r["id"]: r["status"] for r in rows(db_path, "select id, status from services")}
    assert statuses == {"platform/svc": "ERROR", "platform/good": "CONFIGURED"}
    messages = " ".join(p["message"] for p in problems(db_path, "platform/svc"))
    assert expected in messages and "schemas/platform/svc.json" in messages


def test_a_parameter_schema_never_fetches_a_remote_ref(repo, db_path):
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            requests.append(self.path)
            body = b'{"type": "string"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = LocalServer(Handler)
    try:
        schema = {"$id": f"{server.base}/root.json",
                  "properties": {"x": {"$ref": f"{server.base}/x.json"},
                                 "y": {"$ref": "y.json"}}}
        with_schema(repo, schema, {"x": 1, "y": 2})
        run_ingest(repo, db_path)
        assert CliRunner().invoke(cli, ["validate", str(repo.path)]).exit_code == 1
    finally:
        server.close()
    assert requests == []
    messages = " ".join(p["message"] for p in problems(db_path, "platform/svc"))
    assert "cannot resolve" in messages and "nothing is fetched" in messages


# -- validate FOLDER reads only configs ----------------------------------------------------

@pytest.mark.timeout(60)
def test_validate_folder_reads_only_config_files_within_the_limit(repo):
    repo.service("good")
    services = repo.path / "services"
    os.mkfifo(services / "x.bin")  # opening a FIFO blocks: finishing proves it was not read
    os.mkfifo(services / "platform" / "pipe.yaml")
    with open(services / "artefact.tar", "wb") as handle:  # sparse: 64 GiB nobody reads
        handle.truncate(64 << 30)
    with open(services / "platform" / "huge.yaml", "wb") as handle:
        handle.truncate(64 << 30)
    result = validate("--max-size", "1k", str(repo.path))
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert any("huge.yaml" in line and "over the 1,024 byte limit" in line for line in lines)
    assert any("pipe.yaml" in line and "not a regular file" in line for line in lines)
    assert not any("x.bin" in line or "artefact" in line for line in lines)
    single = validate(str(services / "platform" / "pipe.yaml"))
    assert single.exit_code == 1 and "not a regular file" in single.output
