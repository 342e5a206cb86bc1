"""Leaf-level differences between config documents (the parameter_changes rows)."""

from __future__ import annotations

import json
import random

from aureacore_db.leafdiff import dump, flatten, leaf_changes, leaves


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
