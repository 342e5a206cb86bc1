"""Per-leaf differences between two JSON documents, keyed by JSON path.

A document is flattened once into ``{json path: JSON text of the leaf}`` (empty
containers count as leaves); comparing JSON text tells ``1`` from ``1.0`` and ``true``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from json.encoder import c_make_encoder  # type: ignore[attr-defined]
from typing import Any

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Change = tuple[str, str, "str | None", "str | None"]  # key, change, old JSON, new JSON


def child_path(parent: str, key: str) -> str:
    """``$.a.b`` for identifier keys, ``$.a["odd key"]`` otherwise."""
    return parent + (_STEPS.get(key) or _step(key))


_STEPS: dict[str, str] = {}  # key -> its step in a path (most keys recur in every file)
_MAX_STEPS = 4096


def _step(key: str) -> str:
    step = f".{key}" if _IDENT.fullmatch(key) else f"[{json.dumps(key)}]"
    if len(_STEPS) < _MAX_STEPS:
        _STEPS[key] = step
    return step


def leaves(value: Any, path: str = "$", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every leaf of a JSON document by JSON path."""
    if out is None:
        out = {}
    if isinstance(value, dict) and value:
        for key, item in value.items():
            leaves(item, child_path(path, key), out)
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            leaves(item, f"{path}[{index}]", out)
    else:
        out[sys.intern(path)] = value  # one object per path: see flatten
    return out


SHORT = 32  # leaf texts up to this long are interned (see flatten)
_intern = sys.intern


def flatten(value: Any) -> dict[str, str]:
    """``{json path: JSON text}`` of every leaf; ``{}`` for None (no document).
    The same as ``dump`` of each of :func:`leaves`, in one pass. A path is one string
    however many documents have it, and short texts are interned: documents of one shape
    share them (the ingest keeps one flattened document per service, 10,000 of them in
    a big registry, and a message from a worker carries each shared text once)."""
    out: dict[str, str] = {}
    if value is not None:
        _flatten(value, "$", out)
    return out


_CHILDREN: dict[str, dict[str | int, str]] = {}  # path -> key or index -> child path
_MAX_CHILDREN = 16384  # paths kept in all (beyond: made each time, as before)
_kept = [0]


def _children(path: str) -> dict[str | int, str]:
    found = _CHILDREN.get(path)
    if found is None:
        found = {}
        if _kept[0] < _MAX_CHILDREN:
            _CHILDREN[path] = found
    return found


def _child(path: str, key: str | int, children: dict[str | int, str]) -> str:
    found = f"{path}[{key}]" if type(key) is int else path + (_STEPS.get(key) or _step(key))
    if _kept[0] < _MAX_CHILDREN:
        children[key] = found
        _kept[0] += 1
    return found


def _flatten(value: Any, path: str, out: dict[str, str]) -> None:
    if not value or not isinstance(value, dict | list):
        out[path] = dump(value)
        return
    items = value.items() if isinstance(value, dict) else enumerate(value)
    children = _CHILDREN.get(path) or _children(path)
    # one branch per leaf type, the usual ones first (measured: a third quicker than
    # dump() of each leaf); a leaf's text is the same as dump() gives
    for key, item in items:
        child = children.get(key) or _child(path, key, children)
        kind = type(item)
        if kind is str:
            text = _encode_str(item)
            out[child] = _intern(text) if len(text) <= SHORT else text
        elif kind is int:
            text = _int_repr(item)
            out[child] = _intern(text) if len(text) <= SHORT else text
        elif kind is bool:
            out[child] = "true" if item else "false"
        elif kind is dict or kind is list:
            if item:
                _flatten(item, child, out)
            else:
                out[child] = "{}" if kind is dict else "[]"
        elif item is None:
            out[child] = "null"
        elif isinstance(item, dict | list) and item:  # a subclass: as dump() reads it
            _flatten(item, child, out)
        else:
            text = dump(item)
            out[child] = _intern(text) if len(text) <= SHORT else text


_encode_str = json.encoder.encode_basestring  # the C encoder, as json.dumps uses
_int_repr = int.__repr__
_CONSTANTS = {True: "true", False: "false", None: "null"}


def dump(value: Any) -> str:
    """JSON text of a value, as ``json.dumps(sort_keys=True)``; quick for scalars."""
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if kind is int:
        return _int_repr(value)
    if kind is bool or value is None:
        return _CONSTANTS[value]
    return _dump_json(value)


def _encoder(sort_keys: bool) -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False, sort_keys=sort_keys)`` for a tree of JSON
    values, without what ``json.dumps`` sets up on each call (an encoder, its C encoder
    and the memo of containers being encoded, which catches a value that contains
    itself: a parsed document is a tree). A third quicker on a service file."""
    if c_make_encoder is None:  # no C accelerator: the encoder json.dumps would use
        return json.JSONEncoder(ensure_ascii=False, sort_keys=sort_keys).encode
    encode = c_make_encoder(None, json.JSONEncoder().default, _encode_str, None, ": ", ", ",
                            sort_keys, False, True)
    join = "".join
    return lambda value: join(encode(value, 0))


_dump_json = _encoder(sort_keys=True)
_content_json = _encoder(sort_keys=False)


def content_text(document: Any) -> str:
    """``json.dumps(document, ensure_ascii=False)``: keys in document order."""
    return _content_json(document)


def flat_changes(old: dict[str, str], new: dict[str, str]) -> list[Change]:
    """Changes between two flattened documents, sorted by key."""
    if old.keys() == new.keys():  # the usual edit: the same paths, some values changed
        rows: list[Change] = [(k, "changed", v, new[k]) for k, v in old.items() if new[k] != v]
        rows.sort(key=lambda row: row[0])
        return rows
    rows = [(k, "added", None, v) for k, v in new.items() if k not in old]
    for key, before in old.items():
        after = new.get(key)
        if after is None:
            rows.append((key, "removed", before, None))
        elif after != before:
            rows.append((key, "changed", before, after))
    rows.sort(key=lambda row: row[0])
    return rows


def leaf_changes(old: Any, new: Any) -> list[Change]:
    """(key, change, old JSON, new JSON) for each leaf that differs, sorted by key."""
    return flat_changes(flatten(old), flatten(new))
