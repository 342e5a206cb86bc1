"""The rows the walk holds: a change event's payload is the JSON text of its values,
and the Bloom filter of recorded configs never says no to one it holds."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st

from aureacore_db.db import connect
from aureacore_db.ingest import COLUMNS, _change_payload, _Recorded
from aureacore_db.tables import upgrade

TEXT = st.one_of(st.none(), st.text())


@given(st.sampled_from(["added", "modified", "renamed", "removed"]), TEXT, TEXT, TEXT, TEXT,
       TEXT, st.text())
def test_change_payload_is_the_sorted_json_of_its_values(change, path, old_path, config_id,
                                                         previous, version, author):
    expected = json.dumps({
        "change": change, "path": path, "old_path": old_path, "config_id": config_id,
        "previous_config_id": previous, "version": version, "author": author,
    }, sort_keys=True)
    assert _change_payload(change, path, old_path, config_id, previous, version,
                           author) == expected


def test_change_payload_escapes_like_json_dumps():
    text = _change_payload("added", 'services/a "b"\\c\n\u00e9\U0001f600.yaml', None, "ab12",
                           None, "1.0.0", "Zoë\t<x>")
    assert json.loads(text)["path"] == 'services/a "b"\\c\n\u00e9\U0001f600.yaml'
    assert "\\u00e9" in text and "\\ud83d\\ude00" in text  # ASCII, as json.dumps writes


def test_held_rows_name_every_column_of_their_tables(tmp_path):
    db = connect(tmp_path / "r.db")
    upgrade(db)
    for table, columns in COLUMNS.items():
        stored = {c.name for c in db[table].columns}
        assert set(columns) <= stored, table
        assert len(set(columns)) == len(columns)
        if table != "events":  # its id is the database's (concurrent appends)
            assert {c for c in stored if c not in columns} <= {"rowid"}, table


def test_recorded_configs_are_always_found_and_others_mostly_not():
    recorded = _Recorded()
    held = [hashlib.sha1(str(i).encode()).hexdigest() for i in range(20_000)]
    for oid in held:
        recorded.add(oid)
    assert all(recorded.may_hold(oid) for oid in held)
    others = [hashlib.sha1(f"x{i}".encode()).hexdigest() for i in range(20_000)]
    assert sum(recorded.may_hold(oid) for oid in others) < 200  # ~0.1% false yes
    assert recorded.may_hold("not-a-hex-id")  # unknown: ask the database
    # the bits are those of the id's first three 6-digit slices
    one = _Recorded()
    one.add("0000010000020000030000")
    assert {i * 8 + b for i, byte in enumerate(one._bits) for b in range(8)
            if byte >> b & 1} == {1, 2, 3}
