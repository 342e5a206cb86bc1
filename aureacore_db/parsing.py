"""Read the bytes of a config file into a JSON-compatible mapping, safely.

Nothing in a file can crash the reader: every problem becomes a :class:`ParseResult`
with ``error`` set to a readable message (with line and column where the parser gives
them). YAML is loaded with the safe loader (the C one where available), without
timestamp conversion, and with a bound on how far aliases may expand. Simple documents
(most config files) take a native fast path that gives the same result
(:mod:`aureacore_db.fastyaml`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

from .fastyaml import fast_load
from .leafdiff import child_path

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
    json_path: str = "$"  # where in the document the error is, when known


def file_format(path: str) -> str:
    """``json`` for ``*.json`` files, else ``yaml``."""
    return "json" if path.lower().endswith(".json") else "yaml"


def is_config_path(path: str) -> bool:
    """True for the file names a service file may have."""
    return path.lower().endswith(CONFIG_SUFFIXES)


class _TooBig(ValueError):
    pass


class ContentError(ValueError):
    """Content that parses but cannot be stored as the file says (a lone surrogate, a
    duplicate key): the message names the JSON path of the offending value."""

    def __init__(self, message: str, json_path: str = "$") -> None:
        super().__init__(message)
        self.message = message
        self.json_path = json_path


def _surrogate(text: str) -> str | None:
    """``U+D800`` for the first lone surrogate in ``text``, else None."""
    match = _SURROGATE.search(text)
    return None if match is None else f"U+{ord(match.group()):04X}"


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_unicode(value: Any, path: str = "$") -> None:
    """Raise :class:`ContentError` at the first string or key holding a lone surrogate
    (JSON ``"\\ud800"`` escapes make them; they are not Unicode and cannot be stored)."""
    if isinstance(value, str):
        found = _surrogate(value)
        if found:
            raise ContentError(f"string at {path} contains a lone surrogate ({found}), "
                               "not valid Unicode", path)
    elif isinstance(value, dict):
        for key, item in value.items():
            child = child_path(path, key)
            found = _surrogate(key)
            if found:
                raise ContentError(f"key at {child} contains a lone surrogate ({found}), "
                                   "not valid Unicode", child)
            check_unicode(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_unicode(item, f"{path}[{index}]")


class _DuplicateKey(dict):
    """A JSON object with a repeated key (made by :func:`_json_object`)."""

    key = ""


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                dup = _DuplicateKey(out)
                dup.key = key
                return dup
            seen.add(key)
    return out


def _normalise(value: Any, budget: list[int], depth: int = 0, path: str = "$") -> Any:
    """Copy a loaded JSON document into plain JSON types, bounding its size and depth,
    refusing duplicate keys (``path`` is the JSON path of ``value``, for messages)."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig(f"document expands to more than {MAX_NODES:,} nodes")
    if depth > MAX_DEPTH:
        raise _TooBig(f"document is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        if type(value) is _DuplicateKey:
            raise ContentError(f"duplication of key {json.dumps(value.key, ensure_ascii=False)}"
                               f" in the object at {path}", path)
        return {key: _normalise(item, budget, depth + 1, child_path(path, key))
                for key, item in value.items()}
    if isinstance(value, list):
        return [_normalise(item, budget, depth + 1, f"{path}[{index}]")
                for index, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SET = "tag:yaml.org,2002:set"
_OMAP = "tag:yaml.org,2002:omap"
_PAIRS = "tag:yaml.org,2002:pairs"
_MERGE = "tag:yaml.org,2002:merge"
_NULL = "tag:yaml.org,2002:null"
_BINARY = "tag:yaml.org,2002:binary"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_SCALARS = {
    "tag:yaml.org,2002:int": "construct_yaml_int",
    "tag:yaml.org,2002:float": "construct_yaml_float",
    "tag:yaml.org,2002:bool": "construct_yaml_bool",
}
_NULL_FORMS = frozenset(("", "~", "null", "Null", "NULL"))
_ScalarNode, _MappingNode, _SequenceNode = yaml.ScalarNode, yaml.MappingNode, yaml.SequenceNode
_KIND = {_ScalarNode: "a scalar", _MappingNode: "a mapping", _SequenceNode: "a sequence"}


def _short_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") \
        else tag


def _refuse(node: yaml.Node, problem: str) -> yaml.constructor.ConstructorError:
    return yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


class _Builder:
    """Turns the node graph of the C composer into JSON values in one pass.

    Total: every node either becomes a JSON value or raises a ``ConstructorError``
    with its line and column, whatever its tag. What each tag gives:

    * ``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``: the value the YAML 1.1
      safe loader gives; a scalar that its tag cannot hold (``!!int _``, ``!!bool maybe``,
      ``!!null x``) and a tag on the wrong kind of node (``!!seq x``, ``!!str [1]``) are
      refused. Non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"``.
    * ``!!timestamp``: the text as written, once it reads as a timestamp.
    * ``!!set``: a JSON list of its members, sorted by their JSON text (so the stored
      value never depends on hash order); ``!!omap`` / ``!!pairs``: a list of
      ``[key, value]`` lists in file order.
    * mapping keys become JSON object keys (``1`` -> ``"1"``, ``true`` -> ``"true"``,
      ``null`` -> ``"null"``); two keys of one mapping that are equal after that are
      refused as duplicates (yamllint's key-duplicates), merge keys (``<<``) excepted:
      keys of the mapping override merged ones, as YAML says.
    * ``!!binary``, local and unknown tags: refused.

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
        tag, kind = node.tag, type(node)
        if kind is _ScalarNode:
            if tag == _STR:
                return node.value
            return self._scalar(node, tag)
        if kind is _MappingNode:
            if tag == _MAP:
                return self._mapping(node, depth)
            if tag == _SET:
                return self._set(node, depth)
        elif kind is _SequenceNode:
            if tag == _SEQ:
                return [self.build(item, depth + 1) for item in node.value]
            if tag == _OMAP or tag == _PAIRS:
                return self._pairs(node, depth)
        return self._unknown(node, tag)

    def _unknown(self, node: yaml.Node, tag: str) -> Any:
        if tag in _SCALARS or tag in (_STR, _NULL, _TIMESTAMP, _BINARY, _MAP, _SEQ, _SET,
                                      _OMAP, _PAIRS):
            raise _refuse(node, f"{_short_tag(tag)} cannot tag {_KIND[type(node)]}")
        raise _refuse(node, f"could not determine a constructor for the tag {tag!r}")

    def _scalar(self, node: yaml.ScalarNode, tag: str) -> Any:
        method = _SCALARS.get(tag)
        if method is not None:
            try:
                value = getattr(self.loader, method)(node)
            except (ValueError, IndexError, KeyError, TypeError, AttributeError):
                value = None
            if value is None or value == "":
                raise _refuse(node, f"{node.value!r} is not a valid {_short_tag(tag)}")
            if isinstance(value, float) and not math.isfinite(value):
                return str(value)
            return value
        if tag == _NULL:
            if node.value not in _NULL_FORMS:
                raise _refuse(node, f"{node.value!r} is not a valid !!null")
            return None
        if tag == _TIMESTAMP:
            try:
                self.loader.construct_yaml_timestamp(node)
            except (ValueError, TypeError, AttributeError, OverflowError):
                raise _refuse(node, f"{node.value!r} is not a valid !!timestamp") from None
            return node.value
        if tag == _BINARY:
            raise _refuse(node, "binary (!!binary) values are not allowed")
        return self._unknown(node, tag)

    def _key(self, node: yaml.Node, depth: int) -> str:
        key = node.value if node.tag == _STR and type(node) is _ScalarNode \
            else self.build(node, depth + 1)
        if isinstance(key, str):
            return key
        if isinstance(key, dict | list):
            raise _refuse(node, "found unhashable key: a mapping key must be a scalar, "
                                "not a mapping or a list")
        if isinstance(key, bool) or key is None:
            return json.dumps(key)
        return str(key)

    def _mapping(self, node: yaml.MappingNode, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: dict[str, Any] | None = None
        key_nodes: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged = self._merge(merged if merged is not None else {}, value_node, depth)
                continue
            key = self._key(key_node, depth)
            if key in out:
                raise _refuse(key_node, _duplicate_message(key, key_nodes[key], key_node))
            key_nodes[key] = key_node
            out[key] = self.build(value_node, depth + 1)
        if merged:
            merged.update(out)
            return merged
        return out

    def _merge(self, into: dict[str, Any], node: yaml.Node, depth: int) -> dict[str, Any]:
        """``<<: *a`` or ``<<: [*a, *b]`` (earlier mappings win), as YAML's merge key."""
        sources = node.value[::-1] if type(node) is _SequenceNode else [node]
        for source in sources:
            value = self.build(source, depth + 1)
            if not isinstance(value, dict):
                raise _refuse(source, "a merge key (<<) needs a mapping or a list of mappings")
            into.update(value)
        return into

    def _set(self, node: yaml.MappingNode, depth: int) -> list[Any]:
        members: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if self.build(value_node, depth + 1) is not None:
                raise _refuse(value_node, "a !!set member cannot have a value")
            member = self.build(key_node, depth + 1)
            text = json.dumps(member, sort_keys=True, ensure_ascii=False)
            if text in members:
                raise _refuse(key_node, f"duplication of member {text} in !!set")
            members[text] = member
        return [members[text] for text in sorted(members)]

    def _pairs(self, node: yaml.SequenceNode, depth: int) -> list[list[Any]]:
        out = []
        for item in node.value:
            if type(item) is not _MappingNode or len(item.value) != 1:
                raise _refuse(item, f"each entry of {_short_tag(node.tag)} must be a "
                                    "mapping of one key")
            key_node, value_node = item.value[0]
            out.append([self.build(key_node, depth + 1), self.build(value_node, depth + 1)])
        return out


def _duplicate_message(key: str, first: yaml.Node, second: yaml.Node) -> str:
    """yamllint's wording, saying how two different spellings meet."""
    message = f"duplication of key {json.dumps(key, ensure_ascii=False)} in mapping"
    spellings = [_spelling(n) for n in (first, second)]
    if spellings[0] != spellings[1]:
        message += (f" ({spellings[0]} at line {first.start_mark.line + 1} and "
                    f"{spellings[1]} both become the JSON key {json.dumps(key)})")
    return message


def _spelling(node: yaml.Node) -> str:
    if type(node) is not _ScalarNode:
        return "a key"
    quote = {"'": "'", '"': '"'}.get(node.style or "", "")
    return f"{quote}{node.value}{quote}"


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
    size = len(data)
    fmt = file_format(path)
    if size > max_bytes:
        return ParseResult(fmt, None, None, too_large(size, max_bytes), size=size)
    if b"\0" in data:
        return ParseResult(fmt, None, None, "file is binary, not text", size=size)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"file is not UTF-8 text (bad byte at offset {exc.start})"
        return ParseResult(fmt, None, None, message, size=size)
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        return ParseResult(fmt, text, None, "file is empty", size=size)
    return _parse(text, fmt, size)


def _parse(text: str, fmt: str, size: int) -> ParseResult:
    """The content of a non-empty ``text`` (a file of ``size`` bytes), or why not."""
    line = column = None
    try:
        if fmt == "json":
            content = _normalise(json.loads(text, object_pairs_hook=_json_object), [MAX_NODES])
        else:  # simple documents through the native parser, the rest through PyYAML
            content = fast_load(text)
            if content is None:
                content = load_yaml(text)
        # only escapes can make lone surrogates (most texts hold no backslash at all)
        if "\\" in text and ("\\u" in text or "\\U" in text):
            check_unicode(content)
    except ContentError as exc:
        return ParseResult(fmt, text, None, exc.message, json_path=exc.json_path,
                           size=size)
    except json.JSONDecodeError as exc:
        return ParseResult(fmt, text, None, f"invalid JSON: {exc.msg}", exc.lineno, exc.colno,
                           size=size)
    except yaml.YAMLError as exc:
        message, line, column = _yaml_error(exc)
        return ParseResult(fmt, text, None, message, line, column, size=size)
    except (_TooBig, ValueError, RecursionError) as exc:
        return ParseResult(fmt, text, None, f"unusable content: {exc}", size=size)
    if content is None:
        return ParseResult(fmt, text, None, "file is empty", size=size)
    if not isinstance(content, dict):
        kind = type(content).__name__
        kind = {"list": "a list", "str": "a string", "int": "a number", "float": "a number",
                "bool": "a boolean"}.get(kind, kind)
        return ParseResult(fmt, text, None, f"top level must be a mapping, not {kind}",
                           size=size)
    return ParseResult(fmt, text, content, size=size)


def location(result: ParseResult) -> str:
    """``line 3, column 5`` or an empty string."""
    if result.line is None:
        return ""
    if result.column is None:
        return f"line {result.line}"
    return f"line {result.line}, column {result.column}"
