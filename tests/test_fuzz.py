"""Property-based fuzzing of config content through ``validate`` and a real ingest.

Whatever a service file holds, nothing escapes: each file is CONFIGURED or ERROR with a
message, and a second ingest adds nothing. Profiles (tests/conftest.py): ``default``
(quick) and ``long`` (``pytest tests/test_fuzz.py --hypothesis-profile=long``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import GitRepo, rows, run_ingest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aureacore_db.cli import cli

ODD_CHARS = ["\ud800", "\udfff", "\u0085", "\u2028", "\u2029", "\x00", "\ufeff", "\t", "\r",
             "\x1b", "\u00a0", "\U0001f600", "é", "'", '"', ":", "#", "-", "&", "*", "!",
             "|", ">", "%", "@", "`", "{", "}", "[", "]", ",", "?", "\\", "\n", " "]
SCALARS = ["", "~", "null", "yes", "no", "on", "off", "y", "1", "'1'", "1e3", "0o17", "0x1F",
           ".inf", "-.nan", "1_000", "190:20:30", "2001-12-14", "2001-13-45", "=", "<<",
           "true", "'true'", '"\\ud800"', '"\\x85"', '"\\U0001F600"', '"\\0"', "!!int",
           "!!int _", "!!float", "!!bool maybe", "!!timestamp soon", "!!seq x", "!!str [1]",
           "!!set {a, b}", "!!set {1, '1'}", "!!omap [{a: 1}, {b: 2}]", "!!pairs [a]",
           "!!binary aGk=", "!!null x", "!custom 1", "!!python/name:os.system", "*nope",
           "&a [*a]", "[1, [2, [3]]]", "{a: 1, a: 2}", "{1: a, '1': b}", "{null: a, 'null': b}",
           "{<<: {a: 1}, a: 2}", "{<<: 1}", "{<<: [{a: 1}, {b: 2}]}", "? [a]\n  : 1",
           "|\n    text", ">-\n    folded", "'a\u0085b'", "12345678901234567890123456789",
           "9" * 5000, "-", "--- x", "...", "%YAML 1.1"]
KEYS = ["name", "namespace", "version", "schema_version", "dependencies", "parameters",
        "metadata", "endpoints", "service_type", "health_check", "owner", "x", "1", "true",
        "null", "<<", "? a", "'k'"]

text = st.text(alphabet=st.sampled_from(ODD_CHARS) | st.characters(), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12)


@st.composite
def raw_yaml(draw: st.DrawFn) -> bytes:
    """Lines of keys and hostile scalars, nested by indentation, anchors and aliases."""
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        indent = "  " * draw(st.integers(0, 3))
        key = draw(st.sampled_from(KEYS) | text.map(json.dumps))
        anchor = draw(st.sampled_from(["", "&a ", "&b "]))
        value = draw(st.sampled_from(SCALARS) | text.map(json.dumps) | st.just("*a"))
        lines.append(f"{indent}{key}: {anchor}{value}")
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


@st.composite
def service_doc(draw: st.DrawFn) -> dict:
    """A valid-shaped service file with random fields and values."""
    doc = {"name": draw(st.sampled_from(["a", "b", "svc", "a\n", "A", "x" * 70])),
           "version": draw(st.sampled_from(["1.0.0", "2.1.3-rc.1", "1.0", "1.0.0\n", 1]))}
    for key in draw(st.lists(st.sampled_from(KEYS[3:]), max_size=4, unique=True)):
        doc[key] = draw(json_values)
    if draw(st.booleans()):
        doc["dependencies"] = draw(st.lists(st.fixed_dictionaries(
            {"service": st.sampled_from(["a", "b", "fuzz/svc", "nope"])},
            optional={"required": st.booleans(),
                      "version_constraint": st.sampled_from([">=1.0.0", "^2", "bad"])}),
            max_size=3))
    return doc


def dumped(doc: object, how: str) -> bytes:
    if how == "json":
        return json.dumps(doc, ensure_ascii=True).encode()  # lone surrogates as \ud800
    return yaml.safe_dump(doc, allow_unicode=how == "yaml-unicode").encode(
        "utf-8", "surrogatepass")


documents = st.one_of(
    raw_yaml().map(lambda data: ("yaml", data)),
    st.tuples(st.sampled_from(["json", "yaml", "yaml-unicode"]),
              service_doc() | json_values).map(
        lambda pair: ("json" if pair[0] == "json" else "yaml", dumped(pair[1], pair[0]))),
    st.binary(max_size=64).map(lambda data: ("yaml", data)),
    st.integers(1, 80).map(lambda depth: ("json", b"[" * depth + b"]" * depth)),
    st.sampled_from([b'{"a": 1, "a": 2}', b'{"x": "\\ud800"}', b"\xef\xbb\xbf{}",
                     b"NaN", b'{"n": 1e999}']).map(lambda data: ("json", data)),
)
batches = st.lists(documents, min_size=1, max_size=4)


def write_batch(folder: Path, batch: list[tuple[str, bytes]]) -> list[str]:
    target = folder / "services" / "fuzz"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    names = []
    for index, (fmt, data) in enumerate(batch):
        name = f"f{index}.{fmt}"
        (target / name).write_bytes(data)
        names.append(f"services/fuzz/{name}")
    return names


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(batch=batches)
def test_validate_never_crashes(tmp_path: Path, batch: list[tuple[str, bytes]]) -> None:
    folder = tmp_path / "tree"
    write_batch(folder, batch)
    result = CliRunner().invoke(cli, ["validate", str(folder)])
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    for fmt, data in batch:  # and each file on its own
        single = folder / f"one.{fmt}"
        single.write_bytes(data)
        result = CliRunner().invoke(cli, ["validate", str(single)])
        assert result.exit_code in (0, 1), result.output


@pytest.fixture(scope="module")
def fuzz_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[GitRepo, Path]:
    base = tmp_path_factory.mktemp("fuzz")
    repo = GitRepo(base / "configs")
    repo.service("svc", namespace="fuzz")
    repo.write("schemas/fuzz/svc.json", json.dumps(
        {"type": "object", "properties": {"replicas": {"type": "integer"}}}))
    repo.commit("seed")
    return repo, base / "registry.db"


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches)
def test_ingest_never_crashes_and_is_idempotent(fuzz_repo: tuple[GitRepo, Path],
                                                 batch: list[tuple[str, bytes]]) -> None:
    repo, db_path = fuzz_repo
    paths = write_batch(repo.path, batch)
    repo.service("svc", namespace="fuzz")
    repo.commit("fuzz")
    first = run_ingest(repo, db_path)
    assert first.outcome == "ok"
    current = rows(db_path, "select id, path, status, status_message from services "
                            "where removed = 0")
    by_path = {r["path"]: r for r in current}
    for path in paths:
        row = by_path.get(path)
        if row is None:  # a duplicate of another file's service id: that one stands for it
            continue
        assert row["status"] in ("CONFIGURED", "ERROR"), row
        if row["status"] == "ERROR":
            assert row["status_message"], row
    for row in rows(db_path, "select content from configs where content is not null"):
        json.loads(row["content"])
    again = run_ingest(repo, db_path)
    assert again.commits_added == 0
