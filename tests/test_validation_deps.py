"""A config's declared dependencies, as read from its ``dependencies`` list."""

from __future__ import annotations

from collections import OrderedDict

from hypothesis import given
from hypothesis import strategies as st

from aureacore_db.parsing import ParseResult
from aureacore_db.validation import Dependency, checked_config, dependency_fields

_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-1, 2), st.text(max_size=3),
                   st.just(1.5), st.just([]))
_ENTRY = st.fixed_dictionaries({}, optional={"service": _VALUE, "version_constraint": _VALUE,
                                             "required": _VALUE, "other": _VALUE})
ENTRIES = st.lists(st.one_of(_ENTRY, _ENTRY.map(OrderedDict), st.text(max_size=3), _VALUE),
                   max_size=5)


def _as_written(entries: list) -> tuple[Dependency, ...]:
    """Each entry split by dependency_fields, as the tree checks read it."""
    out = []
    for index, item in enumerate(entries):
        fields = dependency_fields(item)
        if fields is None or not isinstance(fields[0], str):
            continue
        service, constraint, required, _ = fields
        out.append(Dependency(service, None if constraint is None else str(constraint),
                              required is not False, index))
    return tuple(out)


@given(ENTRIES)
def test_dependencies_are_the_entries_as_dependency_fields_splits_them(entries):
    check = checked_config(ParseResult("yaml", "", {"dependencies": entries}), ())
    assert check.dependencies == _as_written(entries)


def test_entries_by_name_or_mapping_keep_their_position():
    entries = ["users", {"service": "billing/api", "version_constraint": 2, "required": False},
               {"version_constraint": ">=1"}, 7, {"service": "auth", "required": None}]
    check = checked_config(ParseResult("yaml", "", {"dependencies": entries}), ())
    assert check.dependencies == (Dependency("users", None, True, 0),
                                  Dependency("billing/api", "2", False, 1),
                                  Dependency("auth", None, True, 4))
