"""Per-leaf differences between two JSON documents, keyed by JSON path.

A document is flattened once into ``{json path: JSON text of the leaf}`` (empty
containers count as leaves); comparing JSON text tells ``1`` from ``1.0`` and ``true``.
"""

from __future__ import annotations

import json
import re
from operator import itemgetter
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
        out[path] = value
    return out


def flatten(value: Any) -> dict[str, str]:
    """``{json path: JSON text}`` of every leaf; ``{}`` for None (no document).
    The same as ``dump`` of each of :func:`leaves`, in one pass; a path is one string
    however many documents have it (quicker to send between processes, and smaller)."""
    out: dict[str, str] = {}
    if value is not None:
        _flatten(value, "$", out)
    return out


_PATHS: dict[tuple[str, str | int], str] = {}  # (parent path, key or index) -> path
_MAX_PATHS = 16384


def _child(path: str, key: str | int) -> str:
    found = _PATHS.get((path, key))
    if found is None:
        found = f"{path}[{key}]" if type(key) is int else path + (_STEPS.get(key) or _step(key))
        if len(_PATHS) < _MAX_PATHS:
            _PATHS[(path, key)] = found
    return found


def _flatten(value: Any, path: str, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        items: Any = value.items()
    elif isinstance(value, list) and value:
        items = enumerate(value)
    else:
        out[path] = dump(value)
        return
    for key, item in items:
        child = _PATHS.get((path, key)) or _child(path, key)
        if isinstance(item, dict | list) and item:
            _flatten(item, child, out)
        else:
            out[child] = _encode_str(item) if type(item) is str else dump(item)


_encode_str = json.encoder.encode_basestring  # the C encoder, as json.dumps uses
_CONSTANTS = {True: "true", False: "false", None: "null"}


def dump(value: Any) -> str:
    """JSON text of a value, as ``json.dumps(sort_keys=True)``; quick for scalars."""
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if kind is int:
        return int.__repr__(value)
    if kind is bool or value is None:
        return _CONSTANTS[value]
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def flat_changes(old: dict[str, str], new: dict[str, str]) -> list[Change]:
    """Changes between two flattened documents, sorted by key."""
    came = dict(new.items() - old.items())  # added, or changed (the new text)
    rows: list[Change] = []
    for key, before in old.items() - new.items():  # removed, or changed (the old text)
        after = came.pop(key, None)
        rows.append((key, "removed", before, None) if after is None
                    else (key, "changed", before, after))
    rows.extend((key, "added", None, after) for key, after in came.items())
    rows.sort(key=_first)
    return rows


_first = itemgetter(0)


def leaf_changes(old: Any, new: Any) -> list[Change]:
    """(key, change, old JSON, new JSON) for each leaf that differs, sorted by key."""
    return flat_changes(flatten(old), flatten(new))
