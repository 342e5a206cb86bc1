"""Leaf-level differences between config documents (the parameter_changes rows)."""

from __future__ import annotations

import json
import random
from collections import OrderedDict

from hypothesis import given
from hypothesis import strategies as st

from aureacore_db.leafdiff import (
    content_text,
    dump,
    flat_changes,
    flatten,
    leaf_changes,
    leaves,
)


def test_changed_added_and_removed_leaves_by_json_path():
    old = {"parameters": {"replicas": 3, "pool": {"min": 1}}, "tags": ["a", "b"]}
    new = {"parameters": {"replicas": 5, "pool": {"min": 1, "max": 9}}, "tags": ["a"],
           "odd key": True}
    assert leaf_changes(old, new) == [
        ("$.parameters.pool.max", "added", None, "9"),
        ("$.parameters.replicas", "changed", "3", "5"),
        ("$.tags[1]", "removed", '"b"', None),
        ('$["odd key"]', "added", None, "true"),
    ]


def test_types_count_even_when_python_calls_values_equal():
    assert leaf_changes({"a": 1}, {"a": 1.0}) == [("$.a", "changed", "1", "1.0")]
    assert leaf_changes({"a": 1}, {"a": True}) == [("$.a", "changed", "1", "true")]


def test_no_document_on_either_side():
    assert leaf_changes(None, None) == []
    assert leaf_changes(None, {"a": {}}) == [("$.a", "added", None, "{}")]
    assert leaf_changes({"a": []}, None) == [("$.a", "removed", "[]", None)]


def _naive(old, new):
    before, after = flatten(old), flatten(new)
    out = []
    for key in sorted(before.keys() | after.keys()):
        if key not in after:
            out.append((key, "removed", before[key], None))
        elif key not in before:
            out.append((key, "added", None, after[key]))
        elif json.loads(before[key]) != json.loads(after[key]) or before[key] != after[key]:
            out.append((key, "changed", before[key], after[key]))
    return out


def test_matches_a_key_by_key_comparison_on_random_documents():
    rng = random.Random(7)

    def doc(depth=0):
        roll = rng.random()
        if depth < 3 and roll < 0.3:
            return {rng.choice("abcd"): doc(depth + 1) for _ in range(rng.randint(0, 3))}
        if depth < 3 and roll < 0.5:
            return [doc(depth + 1) for _ in range(rng.randint(0, 3))]
        return rng.choice([1, 2, True, None, "x", 1.0, 0, [], {}])

    for _ in range(3000):
        old, new = doc(), doc()
        assert leaf_changes(old, new) == _naive(old, new)


def test_flatten_is_each_leaf_as_json_text_and_shares_path_strings():
    rng = random.Random(11)
    keys = ["a", "b", "odd key", "t\tab", "n\nl", "1x", "é", "\u2028"]

    def doc(depth=0):
        roll = rng.random()
        if depth < 4 and roll < 0.35:
            return {rng.choice(keys): doc(depth + 1) for _ in range(rng.randint(0, 4))}
        if depth < 4 and roll < 0.55:
            return [doc(depth + 1) for _ in range(rng.randint(0, 4))]
        return rng.choice([1, True, None, "x\ty\nz", 1.5, -0.0, 10**20, [], {}, ""])

    for _ in range(2000):
        value = {"root": doc()}
        flat = flatten(value)
        assert flat == {key: dump(leaf) for key, leaf in leaves(value).items()}
        assert list(flat) == list(leaves(value))  # same order
    value = {"parameters": {"cache": {"ttl_s": 30}, "hosts": ["a", "b"]}, "odd key": 1}
    again = json.loads(json.dumps(value))  # another document with the same paths
    assert all(a is b for a, b in zip(flatten(value), flatten(again), strict=True))


def test_documents_of_one_shape_share_their_paths_and_short_texts():
    # the ingest keeps one flattened document per service: those of 10,000 services
    # share one copy of each path and of each short value
    one = flatten(json.loads('{"owner": "team-a", "endpoints": [{"method": "GET"}], '
                             '"description": "' + "long " * 20 + '"}'))
    two = flatten(json.loads('{"owner": "team-a", "endpoints": [{"method": "GET"}], '
                             '"description": "' + "long " * 20 + '"}'))
    assert one == two
    for (k1, v1), (k2, v2) in zip(one.items(), two.items(), strict=True):
        assert k1 is k2
        assert (v1 is v2) == (len(v1) <= 32)


_KEYS = st.one_of(st.sampled_from(["a", "b", "odd key", "1x", "é", "\u2028", "", "t\tab"]),
                  st.text(max_size=8))
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-2, max_value=2),
    st.integers(min_value=10**30), st.floats(), st.sampled_from([-0.0, 0.0, 1.0, 1e300]),
    st.text(max_size=40), st.sampled_from(["", "x\ty", "\u2028", "\ud800", "é" * 40]))
JSON = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=25)


@given(JSON)
def test_flatten_is_dump_of_each_leaf_on_any_json_value(value):
    # floats (NaN, inf, -0.0), booleans beside integers, big integers, unicode, odd keys,
    # empty containers: each leaf's text is what dump() (json.dumps) gives, in order
    expected = {key: dump(leaf) for key, leaf in leaves(value).items()}
    if value is None:  # no document
        expected = {}
    flat = flatten(value)
    assert flat == expected
    assert list(flat) == list(expected)
    assert all(isinstance(text, str) for text in flat.values())
    if value is not None:
        assert flatten({"root": value}) == {
            "$.root" + key[1:]: text for key, text in expected.items()}


@given(JSON)
def test_json_texts_are_json_dumps(value):
    assert dump(value) == json.dumps(value, ensure_ascii=False, sort_keys=True)
    assert content_text(value) == json.dumps(value, ensure_ascii=False)


def test_mappings_and_sequences_of_other_types_read_as_json_does():
    class Text(str):
        pass

    class Number(int):
        pass

    value = {"o": OrderedDict([("b", 1), ("a", [Text("t"), Number(7), True, 2.5])]), "e": {}}
    assert flatten(value) == {"$.o.b": "1", '$.o.a[0]': '"t"', "$.o.a[1]": "7",
                              "$.o.a[2]": "true", "$.o.a[3]": "2.5", "$.e": "{}"}
    assert dump(value) == json.dumps(value, ensure_ascii=False, sort_keys=True)


@given(JSON, st.data())
def test_an_edit_of_values_only_is_the_changed_leaves_by_path(value, data):
    flat = flatten({"root": value})
    texts = st.sampled_from(['"x"', "1", "1.0", "true", "null", "{}"])
    edited = {k: data.draw(st.one_of(st.just(v), texts)) for k, v in flat.items()}
    if data.draw(st.booleans()):  # the same paths in another order
        edited = dict(reversed(edited.items()))
    assert flat_changes(flat, edited) == sorted(
        (k, "changed", v, edited[k]) for k, v in flat.items() if edited[k] != v)
    assert flat_changes(flat, edited) == _naive_flat(flat, edited)


def _naive_flat(before, after):
    return [(k, "removed" if k not in after else "added" if k not in before else "changed",
             before.get(k), after.get(k))
            for k in sorted(before.keys() | after.keys()) if before.get(k) != after.get(k)]
