"""The native YAML fast path gives exactly what the full (YAML 1.1) loader gives.

Whatever a blob holds, reading it with the fast path (``parse_config``) and without it
(``load_yaml`` alone) ends the same way: the same content, compared by ``repr`` so that
``1``, ``1.0``, ``True`` and ``-0.0`` stay different, or the same error with the same
line and column. Checked over every YAML blob of the demo repository, of a generated
benchmark repository and of a generated Helm-values history, hand-written edge cases, and
generated YAML-ish text.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pygit2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aureacore_db import fastyaml, parsing
from aureacore_db.demo import build_demo_repo
from aureacore_db.fastyaml import MAX_LINES, fast_load, is_simple
from aureacore_db.parsing import MAX_DEPTH, ParseResult, load_yaml, parse_config

ROOT = Path(__file__).resolve().parents[1]


def full_loader(text: str) -> str:
    """What the full loader makes of ``text``: the repr of its value, or its error."""
    try:
        return repr(load_yaml(text))
    except Exception as exc:  # noqa: BLE001 - any outcome is compared
        return f"error {type(exc).__name__}"


def whole_text_scan(text: str) -> bool:
    """The scan as it was before the line cache: both regexes over the whole text."""
    if text.count("\n") > MAX_LINES:
        return False
    if not text.endswith("\n"):
        if "|" in text or ">" in text:
            return False
        text += "\n"
    return fastyaml._ODD.search(text) is None and fastyaml._SIMPLE.fullmatch(text) is not None


def assert_agrees(text: str) -> bool:
    """The fast path either declines ``text`` or gives what the full loader gives;
    True when it did not decline. The (line-cached) scan says what the whole-text one
    says."""
    assert is_simple(text) == whole_text_scan(text), text
    fast = fast_load(text)
    if fast is None:
        return False
    assert repr(fast) == full_loader(text), text
    return True


def parse_without_fast_path(data: bytes, path: str, monkeypatch: pytest.MonkeyPatch
                            ) -> ParseResult:
    with monkeypatch.context() as patch:
        patch.setattr(parsing, "fast_load", lambda text: None)
        return parse_config(data, path)


def yaml_blobs(repo_path: Path) -> dict[str, tuple[str, bytes]]:
    """Every distinct ``*.yaml`` / ``*.yml`` blob reachable from any branch."""
    repo = pygit2.Repository(str(repo_path))
    blobs: dict[str, tuple[str, bytes]] = {}
    seen: set[pygit2.Oid] = set()
    for name in repo.branches.local:
        for commit in repo.walk(repo.branches[name].target):
            trees = [(commit.tree, "")]
            while trees:
                tree, prefix = trees.pop()
                if tree.id in seen:
                    continue
                seen.add(tree.id)
                for entry in tree:
                    path = prefix + entry.name
                    if entry.type_str == "tree":
                        trees.append((repo[entry.id], path + "/"))
                    elif path.lower().endswith((".yaml", ".yml")):
                        blobs.setdefault(str(entry.id), (path, repo[entry.id].data))
    return blobs


def check_repo(repo_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """Every blob parses identically with and without the fast path: (blobs, taken)."""
    blobs = yaml_blobs(repo_path)
    taken = 0
    for path, data in blobs.values():
        with_fast = parse_config(data, path)
        without = parse_without_fast_path(data, path, monkeypatch)
        assert repr(with_fast) == repr(without), path
        try:
            text = data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            continue
        assert is_simple(text) == whole_text_scan(text), path
        taken += fast_load(text) is not None
    return len(blobs), taken


def test_every_blob_of_the_demo_repo_parses_identically(tmp_path, monkeypatch):
    blobs, taken = check_repo(build_demo_repo(tmp_path / "demo"), monkeypatch)
    assert blobs > 150
    assert taken > blobs // 2  # the fast path is really used


@pytest.mark.parametrize("generator, size, least, share", [
    # generated configs are simple, bar the broken ones
    ("generate_repo.py", ["--services", "100", "--commits", "500"], 1000, 0.9),
    # unit numbers (250m, 512Mi), ARNs (arn:aws:iam::1:role/x), flow lists (["ALL"]) and
    # embedded config files as block scalars, in every style the generator writes: all
    # but the broken ones take the fast path (14% before the wider scan)
    ("generate_helm.py", ["--services", "40", "--commits", "300"], 300, 0.95),
])
def test_every_blob_of_a_generated_history_parses_identically(
        generator, size, least, share, tmp_path, monkeypatch):
    out = tmp_path / "repo"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / generator), *size, str(out)],
                   check=True, capture_output=True)
    blobs, taken = check_repo(out, monkeypatch)
    assert blobs > least
    assert taken > blobs * share


SIMPLE = """\
---
# a service
schema_version: "1.0.0"
name: cart-adapter
version: 4.1.1
description: 'Public API edge: routing, auth'
documentation_url: https://docs.example.com/web/cart-adapter
endpoints:
- name: op0
  path: /api/v1/cart/op0   # comment
  method: PUT
dependencies:
  - service: identity/profile-service
    version_constraint: ^1.2.0
    required: false
parameters:
  replicas: 12
  ratio: -0.25
  nothing:
  tilde: ~
  empty_list: []
  empty_map: {}
  flags:
    - - nested
      - -
  "on": quoted key
  online: true
  yesterday: no-op
"""


def test_simple_documents_take_the_fast_path_with_the_same_values():
    assert is_simple(SIMPLE)
    assert fast_load(SIMPLE)["parameters"]["flags"] == [["nested", [None]]]
    assert assert_agrees(SIMPLE)


# Documents in the wider part of the scan (unit numbers, ':' inside plain strings, flow
# lists of strings, block scalars): taken natively, with the full loader's values.
ACCEPTED = [
    *[f"a: {token}\n" for token in ("250m", "512Mi", "10Gi", "30s", "100ms", "1h30m", "0s",
                                      "0.5Gi", "1.5s", "8.0-alpine", "012Mi", "1_0m", "1e3m",
                                      "0x1fm", "0o7m", "1em", "2Ki", "1,000m", "5m+1",
                                      "64bit-only")],
    "a: arn:aws:iam::123456789012:role/x\n", "a: a:::b\n", "a: http://h:80/p::x y:z\n",
    'a: ["ALL"]\n', "a: ['a', \"b\"]\n", "a: [ x-y , a.b/c ]\n", 'a: ["a,b", "c]", "#d"]\n',
    'a: ["--port=8080", "--metrics-port=9090"]  # ports\n', "k:\n- [a]\n- b: [c]\n",
    "a: |\n  text\n", "a: >-\n  folded\n", "a: |\n  x\n\n  y\n\n\nb: 1\n",
    "a: |+\n  x\n\n\nb: 1\n", "a: |+\n  x\n\n", "a: |-\n  x\n\n", "a: >+\n  x\n  y\n\n",
    "a: >\n  x\n  y\n\n  z\n", "a: | # header\n  x\n", "a: |\n  # not a comment\n  b: on\n",
    "a: |\n  x\n    more: indented\n  - y\n  \t tab\n  z\t\n", "a: |\n  x  \n  \n  y\n",
    "a: |\n  x\n# a comment after\nb: 1\n", "k:\n  a: |-\n      deep\n  b: 1\n",
    "l:\n- k:\n    s: |\n      echo \"hi\" | tr a b > /dev/null\n    t: 1\n",
]


@pytest.mark.parametrize("text", ACCEPTED)
def test_wider_constructs_take_the_fast_path_with_the_same_values(text):
    assert assert_agrees(text)


# Documents where YAML 1.1 (the full loader) and 1.2 (the native parser) differ, or the
# native result is in doubt: the fast path must decline every one of them.
DECLINED = [
    # 1.1 booleans, as values and as keys (PyYAML turns keys to "true"/"false")
    *[f"a: {word}\n" for word in ("yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON",
                                  "off", "Off", "OFF", "y", "Y", "n", "N", "True", "FALSE",
                                  "Null", "NULL")],
    *[f"{word}: 1\n" for word in ("yes", "no", "on", "off", "y", "n", "true", "false",
                                  "null", "True", "NULL")],
    # numbers: leading zeros (1.1 octal), octal, hex, binary, sexagesimal, exponents,
    # underscores, special floats, plus signs, long literals (precision)
    *[f"a: {number}\n" for number in ("012", "0o17", "0x1F", "0b101", "190:20:30", "1:20",
                                      "1e3", "1.5e3", "1E-2", "1_000", "1_0.5", ".5", "5.",
                                      ".inf", "-.inf", ".nan", ".NaN", "+1", "+1.5",
                                      "1234567890123456789012", "0.1000000000000000055511")],
    "8080: http\n", "1.5: x\n", "~: x\n", "'a': 1\n? b\n: 2\n",
    # timestamps and dates (the full loader keeps the text; never a date object)
    "a: 2001-12-14\n", "a: 2001-12-14t21:59:43.10-05:00\n", "a: 2001-12-14 21:59:43.10 -5\n",
    # anchors, aliases, merge keys, tags
    "a: &x 1\nb: *x\n", "base: &b {a: 1}\nc:\n  <<: *b\n", "<<: {a: 1}\n",
    "a: !!str 1\n", "a: !!int '1'\n", "a: !custom x\n", "!!map {a: 1}\n", "a: !!binary aGk=\n",
    "a: !!set {x, y}\n", "a: !!omap [{a: 1}]\n", "a: !!timestamp 2001-12-14\n",
    # flow collections, block scalars, directives, documents, complex keys
    "a: [1, 2]\n", "a: {b: 1}\n",
    "%YAML 1.1\n---\na: 1\n", "a: 1\n---\nb: 2\n", "a: 1\n...\n", "? a\n: 1\n",
    # escapes, odd characters, line breaks YAML 1.1 knows and 1.2 does not
    'a: "\\ud800"\n', 'a: "\\x85"\n', 'a: "\\u2028"\n', "a: 'x\u0085y'\n", "a: 'x\u2028y'\n",
    "a: x\u2029\n", "a: 'x\x01'\n", "a: x\x7f\n", "# \x1b\na: 1\n", "a: 'x\ufeffy'\n",
    "a:\tx\n", "a: x\r\nb: y\r\n", "a: x\rb: y\n", "a: \"it's \\\"quoted\\\"\"\n",
    "a: 'it''s'\n", "a: \"x\" y\n",
    # plain scalars that run on to the next line, or that hold indicators
    "a: x\n  y\n", "a:\n  yes\n", "a: x #y\nb: c#d\n", "a: x: y\n", "a: -x\n", "a: @x\n",
    "a: `x`\n", "a: *x\n", "a: ?x\n", "a: %x\n",
    # digits first: numbers in either YAML, sexagesimal, dates, or no unit letter
    *[f"a: {token}\n" for token in ("1e3", "1_0", "0x1f", "0o7", "0b1", "1:30m", "12:30s",
                                      "2001-12-14t21:59:43", "3d", "1f", "0bad", "1e+5",
                                      "1m 2s", "5%", "1.5e3")],
    # ':' runs a plain string cannot end with; flow lists with 1.1 words, numbers, nesting,
    # trailing commas, several lines, or a comment without a space before it
    "a: x::\n", "a: a:b:\n", "a: [on]\n", "a: [yes, no]\n", "a: [.inf]\n", "a: [1]\n",
    "a: [a,]\n", "a: [ ]\n", "a: [[a]]\n", "a: [{a: 1}]\n", "a: [a b]\n", "a: [a:b]\n",
    "a: [a]#c\n", "a: [a,\n  b]\n", "a: [\"x\\ty\"]\n", "a: ['x\ty']\n", "[a]: 1\n",
    # block scalars: indentation indicators, empty, leading blank or tabbed lines, a tab
    # in folded text or out of a block, more-indented folded lines, blank lines with
    # spaces, lines between the key's indentation and the block's, after a dash, at the
    # end of a text without a final line break, a comment without a space before it
    *[f"a: {header}\n  x\n" for header in ("|2", "|-2", "|2-", ">1", "|#c", "|x", "| x",
                                             "|++", "|-+", "'|'\n")],
    "a: |\n", "a: |+\n", "a: >\nb: 1\n", "a: |\n\n  x\n", "a: |\n  \n  x\n",
    "a: |\n  \tx\n", "a: >\n  \tx\n", "a: >\n  x\ty\n", "a: >\n  x\n    y\n",
    "a: >\n  x\n  \n", "a: |\n  x\n \nb: 1\n", "a: |\n    x\n  b: 1\n", "a: |\n    x\n  y\n",
    "a: |\n  x\n\n # c\n", "- |\n  x\n", "- a: |\n    x\n", "a: |\n  x", "a: >\n  x",
    "a:\tx\n", "a: 'x'\t\n", "# \t\na: 1\n", "a: 1 # \t\n",
    # deep nesting, and very long documents (node budget)
    "a:\n" + "".join(" " * (2 * i + 2) + f"k{i}:\n" for i in range(30)),
    "a:\n    - - - - x\n",
    "a: 1\n" * (MAX_LINES + 1),
]


@pytest.mark.parametrize("text", DECLINED)
def test_documents_where_the_loaders_may_differ_are_declined(text):
    assert is_simple(text) == whole_text_scan(text)
    assert fast_load(text) is None
    full_loader(text)  # and the full loader still reads them (or refuses) safely


# Documents the scan accepts but the native parser refuses or finds no mapping in: the
# fast path declines, so the full loader's own error (with line and column) is stored.
NATIVE_DECLINES = [
    "a: 1\na: 2\n",  # duplicate keys
    "a: 1\n'a': 2\n",  # the same key, spelt two ways
    "x:\n  b: 1\n  b: 2\n",
    "a: 1\n b: 2\n",  # bad indentation
    "a:\n  b: 1\n c: 2\n",
    "a: b\n- c\n",
    "- a\n- b\n",  # not a mapping
    "# only a comment\n",
]


@pytest.mark.parametrize("text", NATIVE_DECLINES)
def test_errors_come_from_the_full_loader(text, monkeypatch):
    assert is_simple(text) == whole_text_scan(text)
    assert fast_load(text) is None
    data = text.encode()
    assert repr(parse_config(data, "s.yaml")) == \
        repr(parse_without_fast_path(data, "s.yaml", monkeypatch))
    assert parse_config(data, "s.yaml").error


def test_duplicate_keys_keep_the_full_loaders_message_and_line():
    result = parse_config(b"name: a\nreplicas: 1\nreplicas: 2\n", "s.yaml")
    assert result.content is None
    assert result.error == 'invalid YAML: duplication of key "replicas" in mapping'
    assert (result.line, result.column) == (3, 1)


def test_the_deepest_simple_document_stays_inside_the_depth_bound():
    # the most nesting the scan lets through: 24 spaces of indent plus 3 dashes a line
    lines, indent = [], 0
    while indent <= 24:
        lines.append(" " * indent + f"k{indent}:")
        indent += 1
    lines.append(" " * 24 + "- - - deepest")
    text = "\n".join(lines) + "\n"
    assert is_simple(text)
    assert_agrees(text)
    depth, value = 0, fast_load(text)
    while isinstance(value, dict | list):
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
        depth += 1
    assert value == "deepest"
    assert depth < MAX_DEPTH


def test_alias_bombs_and_depth_bombs_still_meet_the_full_loaders_bounds():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{k}: &{k} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, k in zip("abcdef", "bcdefg", strict=True))
    deep = "a:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(MAX_DEPTH + 2))
    for text in (bomb, deep):
        assert fast_load(text) is None
        result = parse_config(text.encode(), "s.yaml")
        assert result.content is None and "unusable content" in (result.error or "")


@pytest.mark.parametrize("line", ["  -   ", "  - -   ", "  - k:   ", "  - x y z  ", "a: b  ",
                                  "  a: 1" + "0" * 200, "  a: 1" + "_m" * 100 + ":",
                                  "  a: x" + ":" * 200, "  a: x" + "::y" * 60 + ":",
                                  "  a: [" + "x, " * 60 + "x,", "  a: [" + "'x' ," * 60,
                                  "  a: |", "  " + "x" * 100])
def test_the_scan_takes_linear_time_on_hostile_text(line):
    # lines that a backtracking scan could match in several ways, then one that fails
    text = "a:\n" + (line + "\n") * (MAX_LINES - 2) + "  !\n"
    started = time.perf_counter()
    assert not is_simple(text)
    assert time.perf_counter() - started < 2.0  # ~10 ms; exponential before


@pytest.mark.parametrize("header", ["|", ">-"])
@pytest.mark.parametrize("last", [" !", "  \t", "   ", "   x"])
def test_block_scalars_are_scanned_in_linear_time(header, last):
    # a block of nearly MAX_LINES lines whose end is wrong (a line between the key's
    # indentation and the block's, a tab, spaces alone): declined, each line read ~once
    for key_indent in ("", "  "):
        text = (f"{key_indent}a: {header}\n" + f"{key_indent}    x y\n" * (MAX_LINES - 3)
                + f"{key_indent}{last}\n")
        started = time.perf_counter()
        assert not is_simple(text)
        assert time.perf_counter() - started < 2.0


# Generated YAML-ish text: lines built from keys, values and indicators that sit on
# either side of the scan's rules.
KEYS = ["name", "a", "b", "key_1", "a.b", "on", "yes", "y", "null", "true", "1", "<<",
        "'k'", '"k"', "? k", "-k", "k k", "é"]
VALUES = ["", "x", "x y", "x:y", "x: y", "x #c", "x#c", "1", "-1", "0", "-0", "00", "012",
          "1.5", "-0.0", "1.", ".5", "1e3", "1_0", "1:30", "0x1f", "0o7", "1.2.3", "1.2.3-rc",
          "^1.0", "/p/{id}", "true", "false", "yes", "no", "on", "off", "y", "n", "True",
          "Null", "null", "~", "[]", "{}", "[1]", "{a: 1}", "'s'", "'it''s'", '"d"', '"\\t"',
          '"é"', "2001-12-14", "&a x", "*a", "!!str x", "!x y", "|", ">-", "@x", "%x", "-",
          "- x", "'a' b", "x\u0085", "x\u2028y", "\ufeffx", "\x01", "\t", "9" * 20,
          "1.0000000000000001", "inf", ".inf", "nan", "250m", "512Mi", "1h30m", "0.5Gi",
          "1e3m", "1_0s", "0x1fm", "1:30m", "2001-12-14t1", "arn:aws:iam::1:role/x", "a::b",
          "x::", "a:b:", '["ALL"]', "[a, b]", "[on]", "['x', \"y\"]", "[a,]", "[1]", "|+",
          "|2", ">"]
INDENTS = ["", " ", "  ", "   ", "    ", "- ", "  - ", "- - ", "-", "\t"]


@st.composite
def yamlish(draw: Any) -> str:
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        indent = draw(st.sampled_from(INDENTS))
        shape = draw(st.sampled_from(["key", "key value", "value", "comment", "blank",
                                      "text"]))
        key = draw(st.sampled_from(KEYS))
        value = draw(st.sampled_from(VALUES) | st.text(max_size=6))
        lines.append({"key": f"{indent}{key}:", "key value": f"{indent}{key}: {value}",
                      "value": f"{indent}{value}", "comment": f"{indent}# {value}",
                      "blank": "", "text": draw(st.text(max_size=12))}[shape])
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


@given(yamlish())
def test_generated_yamlish_text_agrees_or_is_declined(text):
    assert_agrees(text)


# Block documents of nested mappings and sequences whose scalars come from the tricky
# values above or from random text over the characters plain scalars are made of.
scalar = st.sampled_from(VALUES) | st.text(alphabet="aoyn01.:-_/ #'\"^~eE+x", max_size=8)
tree = st.recursive(scalar, lambda inner: st.lists(inner, min_size=1, max_size=3)
                    | st.dictionaries(st.sampled_from(KEYS[:6] + ["c", "d", "on", "k-1"]),
                                      inner, min_size=1, max_size=3), max_leaves=12)


def render(value: Any, indent: int = 0) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            if isinstance(item, dict | list):
                out += [f"{pad}{key}:", *render(item, indent + 2)]
            else:
                out.append(f"{pad}{key}: {item}")
        return out
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict | list):
                out += [f"{pad}-", *render(item, indent + 2)]
            else:
                out.append(f"{pad}- {item}")
        return out
    return [f"{pad}{value}"]


@given(st.dictionaries(st.sampled_from(["name", "a", "b", "params"]), tree, min_size=1,
                       max_size=4))
def test_generated_block_documents_agree_or_are_declined(doc):
    assert_agrees("\n".join(render(doc)) + "\n")


@given(st.lists(st.tuples(st.sampled_from(["name", "a", "b", "c", "on", "k1"]),
                          st.sampled_from(VALUES)), min_size=1, max_size=6))
def test_generated_flat_mappings_agree_or_are_declined(pairs):
    assert_agrees("".join(f"{key}: {value}\n" for key, value in pairs))


# Generated plain scalars with a digit first and flow lists: unit numbers next to ints,
# floats, hex, octal, binary, sexagesimal and date shapes.
digit_token = st.text(alphabet="0123456789mMsiGkKtTzZnfyeExXoObBd._-:+/%", min_size=1,
                      max_size=8).map(lambda text: "1" + text)
flow_item = st.sampled_from(['"a"', "'b'", "c", "x-y", "a.b/c", "on", "1", "'it''s'", '"#"',
                             "[x]", ""]) | digit_token
flow = st.lists(flow_item, min_size=1, max_size=3).map(lambda items: "[" + ", ".join(items)
                                                        + "]")


@given(st.lists(digit_token | flow, min_size=1, max_size=4),
       st.sampled_from(["", " # c", "#c", "  "]))
def test_generated_unit_numbers_and_flow_lists_agree_or_are_declined(values, tail):
    assert_agrees("".join(f"k{i}: {value}{tail}\n" for i, value in enumerate(values)))
    assert_agrees("k:\n" + "".join(f"- {value}{tail}\n" for value in values))


# Generated block scalars: a header, then lines at, above and below the block's
# indentation, blank lines with and without spaces, tabs, comment-looking text and
# indicators inside, then what follows the block.
block_line = st.tuples(st.integers(0, 6), st.sampled_from(
    ["x", "x y", "# c", "- x", "k: on", "\tx", "x\ty", "x  ", "|", "> x", "---", "'", "",
     "[a", "%x", "key: |"]))


@given(st.sampled_from(["", "  "]), st.sampled_from(["|", "|-", "|+", ">", ">-", ">+",
                                                      "| # h", "|2", ">1-", "|#h"]),
       st.lists(block_line, max_size=6), st.sampled_from(["", "b: 1\n", "\nb: 1\n",
                                                           "# c\nb: 1\n", " # c\n"]),
       st.sampled_from(["\n", ""]))
def test_generated_block_scalars_agree_or_are_declined(key_indent, header, lines, after,
                                                       last_break):
    body = "".join(f"{' ' * indent}{text}\n" for indent, text in lines)
    text = f"top:\n{key_indent}a: {header}\n{body}{key_indent}{after}"
    assert_agrees(text.removesuffix("\n") + last_break)


# The scan checks a document line by line, each distinct line once (a bounded cache of
# lines known to pass), and falls back to the whole-text scan when a line does not pass
# alone: it always says what the whole-text scan says.
EDGE_CASES = [SIMPLE, *ACCEPTED, *DECLINED, *NATIVE_DECLINES]


@pytest.fixture
def empty_line_cache(monkeypatch):
    monkeypatch.setattr(fastyaml, "_known", set())
    return fastyaml


def test_the_line_cache_agrees_with_the_whole_text_scan_on_every_edge_case(empty_line_cache):
    for texts in (EDGE_CASES, EDGE_CASES[::-1], EDGE_CASES):  # cold, then warm both ways
        assert [is_simple(text) for text in texts] == [whole_text_scan(t) for t in texts]
    assert len(empty_line_cache._known) > 50  # the lines of the simple ones were cached


@pytest.mark.parametrize("cached, text", [
    ('a: ">"\n', 'a: ">"'),  # no final line break, a '>' in it: a block scalar's rule
    ("a: 1\n", "a: 1\n" * (MAX_LINES + 1)),  # too many lines
    ("a: 1\nb: 2\n", "a: 1\n---\nb: 2\n"),  # a second document
    ("a: 1\nb: 2\n", "a: 1\n \tb: 2\n"),  # a tab
    ("a: 1\nb: 2\n", "a: 1\nb: 2\r\n"),  # a carriage return
    ("a: 1\nb: 2\n", "a: 1\n\u2028b: 2\n"),  # a YAML 1.1 line break
    ("a:\n  x: 1\n", "a: |2\n  x: 1\n"),  # an indentation indicator
    ("a:\n  x: 1\n  b:\n    z: 2\n", "a: >\n  x: 1\n    z: 2\n"),  # more indented folded text
    ("a: x\n", "a: x\n  y\n"),  # a plain scalar running on
    ("a:\n  x: 1\n", "a: |\n  x: 1\n \nb: 1\n"),  # spaces alone in a block scalar
    ("a:\n  x: 1\n", "a: |\n  x: 1\n  \u2028\nb: 1\n"),  # a 1.1 line break in one
    ("a:\n  x: 1\n", "b: 1\na: |\n  x: 1\n---\n"),  # a second document after one
])
def test_lines_cached_as_simple_do_not_make_a_declined_document_simple(
        empty_line_cache, cached, text):
    assert is_simple(cached)
    assert not is_simple(text)
    assert not whole_text_scan(text)


@pytest.mark.parametrize("text", ["---\na: 1\n", "---   \na: 1\n", "---", "", "\n",
                                  "a: |\n  x: 1\nb: 2\n", "a: >-\n  x: 1\n  y\nb: 2\n",
                                  "---\nk:\n  a: |\n    x: 1\n\n  b: >\n    x\nb: 2\n  x: 1\n"])
def test_a_document_start_and_block_scalars_around_cached_lines_stay_simple(
        empty_line_cache, text):
    for _ in range(2):
        assert is_simple(text)
        assert whole_text_scan(text)
        is_simple("a: 1\nx: 1\n  x: 1\n    x: 1\nb: 2\n")  # lines of the blocks, cached


def test_the_line_cache_stays_bounded(empty_line_cache, monkeypatch):
    monkeypatch.setattr(fastyaml, "CACHE_LINES", 16)
    long_line = "k: " + "x" * fastyaml.CACHE_LINE_CHARS
    for i in range(200):
        text = f"k{i}: {i}\nv{i}: x\n{long_line}\n"
        assert is_simple(text) and whole_text_scan(text)
        assert len(empty_line_cache._known) <= 16
        assert long_line not in empty_line_cache._known  # long lines are never kept
    assert len(empty_line_cache._known) > 0


# Documents made of lines that each pass alone (and are cached by the time the document
# is read) and lines that do not: block scalar headers and their text, '---', tabs,
# indicators inside quotes, a missing final line break.
POOL = ["a: 1", "  x: 1", "  - x", "- y: 2", "b:", "  c: on", "a: '|'", 'a: ">=1.0.0"',
        "a: |", "a: >-", "  a: |+", "    text", "  # c", "", "  ", "---", "--- ", "...",
        "\tx", "a: x", "  y", "k: [a, b]", "a: &x 1", "'k': \"v\"", "a: 1 # > |", "é: 1",
        "a: 'x\u2028'", "#"]


@given(st.lists(st.sampled_from(POOL) | st.sampled_from(VALUES), min_size=1, max_size=10),
       st.sampled_from(["\n", ""]), st.booleans())
def test_documents_of_cached_lines_are_scanned_as_a_whole_would_be(lines, last, warm):
    if warm:  # each line alone first: those that pass alone are cached
        for line in lines:
            is_simple(line + "\n")
    text = "\n".join(lines) + last
    assert is_simple(text) == whole_text_scan(text), text
