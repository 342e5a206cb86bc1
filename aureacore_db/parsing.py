"""Read the bytes of a config file into a JSON-compatible mapping, safely.

Nothing in a file can crash the reader: every problem becomes a :class:`ParseResult`
with ``error`` set to a readable message (with line and column where the parser gives
them). YAML is loaded with the safe loader (the C one where available), without
timestamp conversion, and with a bound on how far aliases may expand.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any

import yaml

DEFAULT_MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000  # expanded nodes allowed in one document (alias bombs)
MAX_DEPTH = 64

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader that keeps timestamps as strings (JSON has no date type)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class ParseResult:
    """Outcome of reading one file: ``content`` or ``error``, never both."""

    format: str  # "yaml" or "json"
    raw: str | None  # the text, None when the bytes are not text or too large
    content: dict[str, Any] | None
    error: str | None = None
    line: int | None = None  # 1-based, where the parser says
    column: int | None = None
    size: int | None = None  # bytes of the file


def file_format(path: str) -> str:
    """``json`` for ``*.json`` files, else ``yaml``."""
    return "json" if path.lower().endswith(".json") else "yaml"


def is_config_path(path: str) -> bool:
    """True for the file names a service file may have."""
    return path.lower().endswith(CONFIG_SUFFIXES)


class _TooBig(ValueError):
    pass


def _normalise(value: Any, budget: list[int], depth: int = 0) -> Any:
    """Copy a loaded document into plain JSON types, bounding its expanded size.

    Aliases make a YAML document a graph; expanding it (as JSON must) can explode,
    so every node visited costs one unit of ``budget``.
    """
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig(f"document expands to more than {MAX_NODES:,} nodes (YAML alias bomb?)")
    if depth > MAX_DEPTH:
        raise _TooBig(f"document is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, bool) or key is None:
                key = json.dumps(key)
            elif not isinstance(key, str | int | float):
                raise ValueError(f"mapping key {key!r} is not a string")
            out[str(key)] = _normalise(item, budget, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_normalise(item, budget, depth + 1) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        raise ValueError("binary (!!binary) values are not allowed")
    return str(value)


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SCALARS = {
    "tag:yaml.org,2002:int": "construct_yaml_int",
    "tag:yaml.org,2002:float": "construct_yaml_float",
    "tag:yaml.org,2002:bool": "construct_yaml_bool",
    "tag:yaml.org,2002:null": "construct_yaml_null",
}


class _Builder:
    """Turns the node graph of the C composer into JSON values in one pass.

    It gives what ``yaml.load`` with the safe loader followed by :func:`_normalise`
    gives, about twice as fast: plain strings, maps and lists (most of a config) skip
    PyYAML's generic constructor; other scalars use its own ``construct_yaml_*``; rare
    tags (``!!set``, ``!!omap``…) take the generic path; unknown tags are refused.
    Aliases are expanded as copies, each node costing one unit of the size budget.
    """

    def __init__(self, loader: _Loader) -> None:
        self.loader = loader
        self.budget = MAX_NODES

    def build(self, node: yaml.Node, depth: int = 0) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _TooBig(f"document expands to more than {MAX_NODES:,} nodes "
                          "(YAML alias bomb?)")
        if depth > MAX_DEPTH:
            raise _TooBig(f"document is nested deeper than {MAX_DEPTH} levels")
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag == _MAP:
            self.loader.flatten_mapping(node)  # merge keys (<<), as the safe loader does
            out = {}
            for key_node, value_node in node.value:
                out[self._key(key_node, depth)] = self.build(value_node, depth + 1)
            return out
        if tag == _SEQ:
            return [self.build(item, depth + 1) for item in node.value]
        method = _SCALARS.get(tag)
        if method is not None:
            value = getattr(self.loader, method)(node)
            if isinstance(value, float) and not math.isfinite(value):
                return str(value)
            return value
        # anything else: PyYAML's safe constructor decides (and refuses unknown tags)
        return _normalise(self.loader.construct_object(node, deep=True), [self.budget], depth)

    def _key(self, node: yaml.Node, depth: int) -> str:
        key = self.build(node, depth + 1)
        if isinstance(key, dict | list):
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", None, "found unhashable key", node.start_mark)
        if isinstance(key, bool) or key is None:
            return json.dumps(key)
        return str(key)


def load_yaml(text: str) -> Any:
    """The single YAML document in ``text`` as JSON values (None when empty)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _Builder(loader).build(node)
    finally:
        loader.dispose()


def _yaml_error(exc: yaml.YAMLError) -> tuple[str, int | None, int | None]:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    message = f"{context}, {problem}" if context else str(problem)
    if mark is not None:
        return f"invalid YAML: {message}", mark.line + 1, mark.column + 1
    return f"invalid YAML: {message}", None, None


def too_large(size: int, max_bytes: int) -> str:
    return f"file is {size:,} bytes, over the {max_bytes:,} byte limit"


def parse_config(
    data: bytes, path: str, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> ParseResult:
    """Parse a service or root file; the result always has a message when unusable."""
    return replace(_parse(data, path, max_bytes), size=len(data))


def _parse(data: bytes, path: str, max_bytes: int) -> ParseResult:
    fmt = file_format(path)
    if len(data) > max_bytes:
        return ParseResult(fmt, None, None, too_large(len(data), max_bytes))
    if b"\0" in data:
        return ParseResult(fmt, None, None, "file is binary, not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"file is not UTF-8 text (bad byte at offset {exc.start})"
        return ParseResult(fmt, None, None, message)
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        return ParseResult(fmt, text, None, "file is empty")
    line = column = None
    try:
        if fmt == "json":
            content = _normalise(json.loads(text), [MAX_NODES])
        else:
            content = load_yaml(text)
    except json.JSONDecodeError as exc:
        return ParseResult(fmt, text, None, f"invalid JSON: {exc.msg}", exc.lineno, exc.colno)
    except yaml.YAMLError as exc:
        message, line, column = _yaml_error(exc)
        return ParseResult(fmt, text, None, message, line, column)
    except (_TooBig, ValueError, RecursionError) as exc:
        return ParseResult(fmt, text, None, f"unusable content: {exc}")
    if content is None:
        return ParseResult(fmt, text, None, "file is empty")
    if not isinstance(content, dict):
        kind = type(content).__name__
        kind = {"list": "a list", "str": "a string", "int": "a number", "float": "a number",
                "bool": "a boolean"}.get(kind, kind)
        return ParseResult(fmt, text, None, f"top level must be a mapping, not {kind}")
    return ParseResult(fmt, text, content)


def location(result: ParseResult) -> str:
    """``line 3, column 5`` or an empty string."""
    if result.line is None:
        return ""
    if result.column is None:
        return f"line {result.line}"
    return f"line {result.line}, column {result.column}"
