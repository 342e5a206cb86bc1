"""Checks of one config file on its own: parse, schema version, schema, parameter schema.

Checks that need the whole tree (duplicates, dependencies, cycles) live in
:mod:`aureacore_db.tree`. Each JSON Schema is compiled once and reused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

import jsonschema
import jsonschema_rs
from jsonschema import Draft202012Validator

from .leafdiff import content_text, dump, flatten
from .parsing import ParseResult, location
from .resources import data_path
from .safeschema import (
    NO_RETRIEVAL,
    SchemaRunError,
    compile_untrusted,
    ecma_validator,
    run_untrusted,
)

DEFAULT_SCHEMA_VERSION = "1.0.0"
MAX_MESSAGE = 300
_SCHEMA_FILE = re.compile(r"(?P<kind>[a-z]+)-v(?P<major>[0-9]+)\.schema\.json")  # fullmatch
_VERSION = re.compile(r"([0-9]+)\.([0-9]+)(?:\.([0-9]+))?")  # fullmatch: no "1.0.0\n"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a service at a commit."""

    severity: str  # "error" or "warning"
    kind: str  # parse / schema / duplicate / dependency / cycle / version
    message: str
    json_path: str = "$"
    schema: str | None = None

    def as_row(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "kind": self.kind,
            "json_path": self.json_path,
            "message": self.message,
            "schema": self.schema,
        }


@dataclass(frozen=True)
class Dependency:
    """A declared dependency, as written in the file."""

    service: str
    version_constraint: str | None
    required: bool
    index: int = 0  # position in the file's ``dependencies`` list


@dataclass(frozen=True)
class ConfigCheck:
    """A config file read and checked on its own (cacheable by blob id)."""

    parse: ParseResult
    problems: tuple[Problem, ...]
    name: str | None = None
    namespace: str | None = None
    version: str | None = None
    schema_version: str | None = None
    parameters: Any = None
    dependencies: tuple[Dependency, ...] = field(default_factory=tuple)
    content_json: str | None = None  # the content as JSON text, made once
    owner: str | None = None  # the content's owner and description, when text
    description: str | None = None

    @property
    def content(self) -> dict[str, Any] | None:
        return self.parse.content

    @property
    def readable(self) -> bool:
        """Whether the file was read to a document (``content`` is not None), without
        reading the content (see :class:`SentCheck`)."""
        return self.content_json is not None

    @cached_property
    def flat(self) -> dict[str, str]:
        """The content flattened to ``{json path: JSON text}``, made once."""
        return flatten(self.content)

    @cached_property
    def columns_json(self) -> tuple[str | None, str | None]:
        """Its ``parameters`` and its content's ``dependencies`` as the configs table
        stores them (JSON text, keys sorted; None when absent), made once."""
        content = self.content
        dependencies = content.get("dependencies") if content else None
        return (None if self.parameters is None else dump(self.parameters),
                None if dependencies is None else dump(dependencies))

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.problems)

    def forget_text(self) -> None:
        """Drop the raw text once stored (a ``configs`` row holds it, and nothing reads
        it after): the ingest's tree state keeps a check per service. The JSON text
        stays: ``readable`` and a :class:`SentCheck`'s content are read from it."""
        object.__setattr__(self.parse, "raw", None)


class SentCheck(ConfigCheck):
    """A :class:`ConfigCheck` made in another process (a prefetch worker) and sent
    without its content: ``content`` and ``parameters`` are decoded from
    ``content_json`` when first read (the same document: a config's content is JSON
    values, as stored rows are read back), and ``flat`` and ``columns_json`` come made.
    Its ``parse`` holds no content: read ``content``, or ``readable``."""

    @cached_property
    def content(self) -> dict[str, Any] | None:  # type: ignore[override]
        return None if self.content_json is None else json.loads(self.content_json)

    @cached_property
    def parameters(self) -> Any:  # type: ignore[override]
        content = self.content
        return None if content is None else content.get("parameters")

    @classmethod
    def made(cls, values: dict[str, Any]) -> SentCheck:
        """A check of these attribute values (all fields but ``parameters``)."""
        check = cls.__new__(cls)
        vars(check).update(values)  # frozen: not through __setattr__ (as pickle does)
        return check


def _short(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


class FastValidator:
    """A compiled schema: a quick yes/no first, ``jsonschema`` for the full error list.

    Most configs are valid, so a compiled check (jsonschema-rs, in Rust: a fifth of the
    CPU of the code fastjsonschema generates for the service schema, itself ~15x quicker
    than ``jsonschema``) answers them; anything it rejects or cannot read goes to
    ``jsonschema``, which is authoritative and reports every error with its path. The
    quick check may only be stricter: it checks no formats (``jsonschema`` decides
    them), and its patterns are written so that it matches no string Python's would not
    (:func:`quick_pattern`); a schema with a pattern it cannot vouch for has no quick
    check. Only for the built-in (trusted) schemas, on parsed documents (JSON values).
    """

    def __init__(self, schema: dict[str, Any], validator: Draft202012Validator) -> None:
        self.validator = validator
        self._quick = _quick_check(schema)

    def iter_errors(self, instance: Any) -> Iterator[jsonschema.ValidationError]:
        if self._quick is not None:
            try:
                if self._quick(instance):
                    return iter(())
            except Exception:  # noqa: BLE001, S110 - a value it cannot read: jsonschema decides
                pass
        return self.validator.iter_errors(instance)


def _quick_check(schema: dict[str, Any]) -> Callable[[Any], bool] | None:
    try:
        quick_schema = _quick_patterns(schema)
        return jsonschema_rs.validator_for(quick_schema, validate_formats=False).is_valid
    except (_NoQuickCheck, ValueError, jsonschema_rs.ValidationError):
        return None  # the slow path only


class _NoQuickCheck(Exception):
    pass


def _quick_patterns(schema: Any) -> Any:
    """A copy of a schema with its patterns as :func:`quick_pattern` writes them."""
    if isinstance(schema, list):
        return [_quick_patterns(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "pattern" and isinstance(value, str):
            out[key] = _must(quick_pattern(value))
        elif key == "patternProperties" and isinstance(value, dict):
            out[key] = {_must(quick_pattern(k)): _quick_patterns(v) for k, v in value.items()}
        else:
            out[key] = _quick_patterns(value)
    return out


def _must(pattern: str | None) -> str:
    if pattern is None:
        raise _NoQuickCheck
    return pattern


_PLAIN_ESCAPES = frozenset("dDwW.^$|?*+()[]{}/\\-")  # same meaning in both engines


def quick_pattern(pattern: str) -> str | None:
    """An ECMA-262 pattern for the quick check, matching no string that the pattern
    does not match with :func:`~aureacore_db.safeschema.ecma_to_python` and Python's
    ``re`` (which ``jsonschema`` uses here); None when that cannot be vouched for.

    jsonschema-rs reads ``\\d``, ``\\w``, ``$`` and ``.`` as that Python pattern does
    (tests compare every code point), but to it ``\\x1c``-``\\x1f`` and ``\\x85`` are not
    white space, so ``\\S`` becomes a class without them. Any other escape, a class
    inside a class or Rust's class operators, an empty first ``]`` and any ``(?``
    other than ``(?:`` are refused: they may differ between the engines."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            escaped = pattern[i + 1:i + 2]
            if escaped == "S" and not in_class:
                out.append(r"[^\s\x1c-\x1f\x85]")
            elif escaped and escaped in _PLAIN_ESCAPES:
                out.append(char + escaped)
            else:
                return None
            i += 2
            continue
        if in_class:
            if char == "[" or pattern.startswith(("&&", "~~", "--"), i):
                return None
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern.startswith(("[]", "[^]"), i):
                return None
        elif char == "(" and pattern.startswith("(?", i) and not pattern.startswith("(?:", i):
            return None
        out.append(char)
        i += 1
    return "".join(out)


@cache
def builtin_schemas(kind: str) -> dict[int, tuple[str, Draft202012Validator, tuple[int, int]]]:
    """Compiled built-in schemas of a kind (``service`` or ``root``) by major version.

    Each value is ``(schema id, validator, newest known (major, minor))``; the newest
    minor comes from the schema's ``x-schema-version`` (default ``<major>.0``).
    """
    found = {}
    for path in sorted(data_path("schemas").glob("*.schema.json")):
        match = _SCHEMA_FILE.fullmatch(path.name)
        if not match or match["kind"] != kind:
            continue
        major = int(match["major"])
        schema = json.loads(path.read_text("utf-8"))
        Draft202012Validator.check_schema(schema)
        full = ecma_validator(Draft202012Validator)(
            schema, registry=NO_RETRIEVAL, format_checker=Draft202012Validator.FORMAT_CHECKER)
        validator = FastValidator(schema, full)
        newest = _VERSION.fullmatch(str(schema.get("x-schema-version", f"{major}.0")))
        newest_pair = (int(newest[1]), int(newest[2])) if newest else (major, 0)
        found[major] = (schema.get("$id", path.name), validator, newest_pair)
    return found


def schema_problems(
    validator: Draft202012Validator | FastValidator,
    instance: Any,
    schema_id: str,
    prefix: str = "$",
) -> list[Problem]:
    """Every error of ``instance`` against a compiled schema, each with its JSON path."""
    return _as_problems(validator.iter_errors(instance), schema_id, prefix)


def _as_problems(errors: Any, schema_id: str, prefix: str) -> list[Problem]:
    problems = []
    for error in errors:
        path = error.json_path
        if prefix != "$":
            path = prefix + path[1:]
        problems.append(Problem("error", "schema", _short(error.message), path, schema_id))
    problems.sort(key=lambda p: (p.json_path, p.message))
    return problems


def _version_problems(
    schema_version: Any, kind: str
) -> tuple[Problem | None, FastValidator | None, str | None]:
    known = builtin_schemas(kind)
    match = _VERSION.fullmatch(str(schema_version))
    if not isinstance(schema_version, str) or not match:
        return (
            Problem("error", "version", f"schema_version {schema_version!r} is not like '1.0.0'",
                    "$.schema_version"),
            None,
            None,
        )
    major, minor = int(match[1]), int(match[2])
    if major not in known:
        majors = ", ".join(str(m) for m in sorted(known)) or "none"
        return (
            Problem("error", "version",
                    f"incompatible schema version {schema_version}: no schema for major "
                    f"version {major} (known: {majors})", "$.schema_version"),
            None,
            None,
        )
    schema_id, validator, newest = known[major]
    warning = None
    if (major, minor) > newest:
        warning = Problem(
            "warning", "version",
            f"schema_version {schema_version} is newer than the newest known "
            f"{newest[0]}.{newest[1]}; checked against {newest[0]}.{newest[1]}",
            "$.schema_version", schema_id,
        )
    return warning, validator, schema_id


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def dependency_fields(item: Any) -> tuple[Any, Any, Any, dict[str, Any]] | None:
    """One entry of a config's ``dependencies`` list split as written: (``service``,
    ``version_constraint``, ``required``, the other keys); a bare name is the service.
    None for an entry that is neither a name nor a mapping."""
    if isinstance(item, str):
        return item, None, None, {}
    if isinstance(item, Mapping):
        data = dict(item)
        return (data.pop("service", None), data.pop("version_constraint", None),
                data.pop("required", None), data)
    return None


def _dependencies(value: Any) -> tuple[Dependency, ...]:
    if not isinstance(value, list):
        return ()
    deps = []
    for index, item in enumerate(value):
        if type(item) is dict:  # the usual entry: read as dependency_fields does, no copy
            service = item.get("service")
            constraint, required = item.get("version_constraint"), item.get("required")
        else:
            fields = dependency_fields(item)
            if fields is None:
                continue  # the schema reports it
            service, constraint, required, _ = fields
        if not isinstance(service, str):
            continue  # the schema reports it
        deps.append(Dependency(service, str(constraint) if constraint is not None else None,
                               required is not False, index))
    return tuple(deps)


def check_config(parse: ParseResult, kind: str = "service") -> ConfigCheck:
    """Check one parsed service file against the built-in schema for its version."""
    if parse.content is None:
        where = location(parse)
        message = f"{parse.error} ({where})" if where else str(parse.error)
        return ConfigCheck(parse, (Problem("error", "parse", message, parse.json_path),))
    content = parse.content
    schema_version = content.get("schema_version", DEFAULT_SCHEMA_VERSION)
    problems: list[Problem] = []
    version_problem, validator, schema_id = _version_problems(schema_version, kind)
    if version_problem:
        problems.append(version_problem)
    if validator is not None:
        problems.extend(schema_problems(validator, content, str(schema_id)))
    return checked_config(parse, tuple(problems))


def checked_config(
    parse: ParseResult, problems: tuple[Problem, ...], content_json: str | None = None
) -> ConfigCheck:
    """A :class:`ConfigCheck` from parse output and its problems (fresh or stored)."""
    content = parse.content
    if content is None:
        return ConfigCheck(parse, problems)
    return ConfigCheck(
        parse,
        problems,
        name=_text(content.get("name")),
        namespace=_text(content.get("namespace")),
        version=_text(content.get("version")),
        schema_version=str(content.get("schema_version", DEFAULT_SCHEMA_VERSION)),
        parameters=content.get("parameters"),
        dependencies=_dependencies(content.get("dependencies")),
        content_json=content_json or content_text(content),
        owner=_text(content.get("owner")),
        description=_text(content.get("description")),
    )


def compile_parameter_schema(
    parse: ParseResult,
) -> tuple[Draft202012Validator | None, str | None]:
    """Compile a service-specific parameter schema (untrusted: see
    :mod:`aureacore_db.safeschema`), or say why it cannot be used."""
    if parse.content is None:
        return None, f"cannot be read: {parse.error}"
    try:
        return compile_untrusted(parse.content), None
    except jsonschema.SchemaError as exc:
        return None, f"is not a valid JSON Schema: {_short(exc.message)}"
    except RecursionError:
        return None, "is not a valid JSON Schema: nested too deeply"


def parameter_problems(validator: Any, parameters: Any, schema_path: str) -> list[Problem]:
    """Errors of a config's ``parameters`` against a repo schema; a schema that cannot
    be applied (slow pattern, unresolvable ``$ref``…) is one error of the service."""
    try:
        errors = run_untrusted(validator, parameters)
    except SchemaRunError as exc:
        return [Problem("error", "schema", _short(f"parameter schema {schema_path} {exc}"),
                        "$.parameters", schema_path)]
    return _as_problems(errors, schema_path, "$.parameters")
