"""Per-leaf differences between two JSON documents, keyed by JSON path.

A document is flattened once into ``{json path: JSON text of the leaf}`` (empty
containers count as leaves); comparing JSON text tells ``1`` from ``1.0`` and ``true``.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Change = tuple[str, str, "str | None", "str | None"]  # key, change, old JSON, new JSON


def child_path(parent: str, key: str) -> str:
    """``$.a.b`` for identifier keys, ``$.a["odd key"]`` otherwise."""
    if _IDENT.fullmatch(key):
        return f"{parent}.{key}"
    return f"{parent}[{json.dumps(key)}]"


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


def flatten(value: Any) -> dict[str, str]:
    """``{json path: JSON text}`` of every leaf; ``{}`` for None (no document).

    Paths and short texts are interned: documents of one shape share them (the
    ingest keeps one flattened document per service, 10,000 of them in a big registry,
    and a message from a worker carries each shared text once)."""
    if value is None:
        return {}
    intern = sys.intern
    out = {}
    for key, leaf in leaves(value).items():
        text = dump(leaf)
        out[key] = intern(text) if len(text) <= SHORT else text
    return out


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
    rows: list[Change] = [(k, "added", None, v) for k, v in new.items() if k not in old]
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
