"""Reading config files: the fast YAML builder gives exactly what PyYAML's safe loader
gives (then made JSON-safe), and hostile documents become readable errors."""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path

import pytest
import yaml

from aureacore_db.demo import build_demo_repo
from aureacore_db.parsing import _Loader, load_yaml, parse_config

TRICKY = [
    "a: 1\nb: 0x1f\nc: 0o17\nd: 1_000\ne: 190:20:30\nf: -0b101\n",
    "a: 1.5\nb: .inf\nc: -.Inf\nd: .nan\ne: 1e3\nf: 6.8523015e+5\n",
    "a: yes\nb: No\nc: on\nd: OFF\ne: true\nf: ~\ng: null\nh:\n",
    "when: 2001-12-14t21:59:43.10-05:00\nday: 2002-12-14\nexplicit: !!timestamp 2001-12-14\n",
    "base: &b {x: 1, y: [1, 2]}\nuse: *b\nmerged:\n  <<: *b\n  y: 3\n",
    "list:\n  - &a {k: v}\n  - *a\n  - <<: [*a, {z: 1}]\n",
    "s: !!str 123\ni: !!int '7'\nf: !!float '1'\nset: !!set {a, b}\nom: !!omap [{a: 1}, {b: 2}]\n",
    "text: |\n  multi\n  line\nfolded: >\n  folded\n  text\nquoted: \"\\u00e9\\t\"\n",
    "nested: {a: {b: {c: {d: [1, [2, [3, []]], {}]}}}}\n",
]


def _plain(value):
    """PyYAML's Python values as the JSON values the builder documents."""
    if isinstance(value, dict):
        return {k if isinstance(k, str) else json.dumps(k) if isinstance(k, bool) or k is None
                else str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return sorted(_plain(v) for v in value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, datetime.date):
        return str(value)
    return value


def _reference(text: str):
    return _plain(yaml.load(text, Loader=_Loader))  # noqa: S506


@pytest.mark.parametrize("text", TRICKY)
def test_builder_matches_the_safe_loader(text):
    assert load_yaml(text) == _reference(text)
    if "<<" not in text:  # PyYAML 6.0.4 changed the key order of merges; ours is fixed
        assert repr(load_yaml(text)) == repr(_reference(text))  # same types, same key order


def test_non_string_keys_become_distinct_strings():
    # (PyYAML's own dict would merge 1 and true, which Python thinks equal)
    assert load_yaml("1: one\n2.5: two\ntrue: three\nnull: four\n") == {
        "1": "one", "2.5": "two", "true": "three", "null": "four"}


def test_builder_matches_the_safe_loader_on_every_demo_file(tmp_path: Path):
    repo = build_demo_repo(tmp_path / "demo")
    files = [p for p in repo.rglob("*.yaml") if ".git" not in p.parts]
    assert len(files) > 20
    for path in files:
        text = path.read_text()
        assert repr(load_yaml(text)) == repr(_reference(text)), path


@pytest.mark.parametrize("text, expected", [
    ("a: !!python/object/apply:os.system ['true']\n", "could not determine a constructor"),
    ("a: !custom 1\n", "could not determine a constructor"),
    ("? [a, b]\n: 1\n", "unhashable key"),
    ("a: !!binary aGVsbG8=\n", "binary"),
    ("a: &x [*x]\n", "nested deeper"),
    ("a: [1\n", "line 2"),
    ("--- a\n--- b\n", "single document"),
])
def test_hostile_or_broken_yaml_is_a_readable_error(text, expected):
    result = parse_config(text.encode(), "x.yaml")
    assert result.content is None
    where = f"line {result.line}" if result.line else ""
    assert expected in f"{result.error} {where}"


def test_alias_bomb_is_bounded():
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    result = parse_config("\n".join(lines).encode(), "bomb.yaml")
    assert result.content is None and "alias bomb" in result.error


@pytest.mark.parametrize("data, path, error", [
    (b"a: 1\n", "s.yaml", None),
    (b'{"a": 1}', "s.json", None),
    (b"x" * 2000, "s.yaml", "file is 2,000 bytes, over the 1,024 byte limit"),
    (b"a: \0\n", "s.yaml", "file is binary, not text"),
    (b"a: \xff\n", "s.yaml", "file is not UTF-8 text (bad byte at offset 3)"),
    (b"\xef\xbb\xbf  \n", "s.yaml", "file is empty"),
    (b"# nothing\n", "s.yaml", "file is empty"),
    (b"- a\n", "s.yaml", "top level must be a mapping, not a list"),
    (b"a: [\n", "s.yaml", "invalid YAML"),
    (b'{"a": }', "s.json", "invalid JSON"),
    (b'{"a": "\\ud800"}', "s.json", "lone surrogate"),
    (b'a: "\\ud800"\n', "s.yaml", "invalid Unicode character escape"),
    (b'a: "\\U0001F600 \\\\u"\n', "s.yaml", None),
])
def test_every_outcome_carries_the_files_size(data, path, error):
    result = parse_config(data, path, max_bytes=1024)
    assert result.size == len(data)
    if error is None:
        assert result.error is None and result.content is not None
    else:
        assert error in (result.error or "") and result.content is None
