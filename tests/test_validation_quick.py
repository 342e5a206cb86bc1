"""The quick yes/no check of the built-in schemas answers as ``jsonschema`` does.

``jsonschema`` is the authority (it lists every error); the quick check (jsonschema-rs)
only answers "valid" first, so it must never pass a document ``jsonschema`` rejects.
"""

from __future__ import annotations

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aureacore_db.parsing import ParseResult
from aureacore_db.safeschema import _compiled
from aureacore_db.validation import builtin_schemas, check_config, quick_pattern

SERVICE = builtin_schemas("service")[1][1]

# strings that tell the regex engines and their character classes apart
_ODD = ["", " ", "\n", "a\n", "\x1c", "\x85", "\ufeff", "\u00a0", "\u3000", "\u2028", "١",
        "０", "é", "\ud800", "-", "/", "a" * 64, "a" * 130]


def _mostly(good: st.SearchStrategy, odd: st.SearchStrategy) -> st.SearchStrategy:
    """Good values nine times in ten, so that many documents are valid or nearly."""
    return st.integers(0, 9).flatmap(lambda roll: odd if roll == 0 else good)


def _text(*good: str) -> st.SearchStrategy:
    pieces = st.sampled_from([*good, *_ODD])
    return _mostly(st.sampled_from(good), st.one_of(
        st.text(max_size=12), st.builds(lambda a, b, c: a + b + c, pieces, pieces, pieces)))


_ANY = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.integers(min_value=2**63),
                 st.floats(), st.text(max_size=4), st.just([]), st.just({}))
_LABEL = _text("auth", "a-b", "a1", "x" * 63)
_URL = _text("http://a.b/x", "https://docs.example.com/a", "h://x", "http://", "ftp://a b")
_NUMBER = _mostly(st.integers(1, 40), st.one_of(
    st.integers(-2, 2), st.floats(), st.booleans(), st.sampled_from([1.0, 0.5, 1e-300, -0.0]),
    st.integers(min_value=2**64)))


def _some(**fields: st.SearchStrategy) -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional={k: _mostly(v, _ANY) for k, v in fields.items()})


SERVICES = st.builds(
    lambda required, rest, extra: {**required, **rest, **extra},
    st.fixed_dictionaries({"name": _mostly(_LABEL, _ANY),
                           "version": _text("1.0.0", "2.3.1-rc.1+b.7", "01.0.0", "1.0")}),
    _some(schema_version=_text("1.0.0", "1.2", "1"), namespace=_LABEL, description=_text("d"),
          owner=_text("team"), documentation_url=_URL,
          service_type=_some(type=st.sampled_from(["rest", "grpc", "other", "other", "REST"]),
                             custom_type=_text("cron")),
          endpoints=st.lists(_some(name=_text("op"), path=_text("/a", "/"),
                                   method=st.sampled_from(["GET", "get", "PATCH"]),
                                   description=_text("d")), max_size=3),
          dependencies=st.lists(_some(service=_text("a/b", "b", "a/b/c", "-a"),
                                      version_constraint=_text(">=1"),
                                      required=_mostly(st.booleans(), st.integers(0, 1))),
                                max_size=3),
          parameters=st.dictionaries(st.text(max_size=3), _ANY, max_size=3),
          health_check=_some(url=_URL, interval_s=_NUMBER, timeout_s=_NUMBER,
                             expected_status=_NUMBER),
          metadata=st.dictionaries(st.text(max_size=3), _ANY, max_size=2)),
    _mostly(st.just({}), st.dictionaries(st.sampled_from(["dependancies", "x"]), _ANY,
                                         max_size=1)),
)


def _jsonschema_errors(doc: dict) -> list[tuple[str, str]]:
    return sorted((e.json_path, e.message) for e in SERVICE.validator.iter_errors(doc))


@settings(max_examples=600)
@given(SERVICES)
def test_the_quick_check_never_passes_a_document_jsonschema_rejects(doc):
    try:
        quick = SERVICE._quick(doc)
    except Exception:  # noqa: BLE001 - unreadable to it: jsonschema decides
        quick = False
    errors = _jsonschema_errors(doc)
    if quick:
        assert errors == []
    # and what a service is told is jsonschema's list, whichever check answered
    assert sorted((e.json_path, e.message) for e in SERVICE.iter_errors(doc)) == errors


def test_a_valid_service_file_is_answered_by_the_quick_check():
    # every built-in schema's patterns are vouched for: each has its quick check
    assert all(validator._quick is not None for kind in ("service", "root")
               for _, validator, _ in builtin_schemas(kind).values())
    doc = {"name": "auth", "version": "2.3.1", "documentation_url": "https://docs.x/a",
           "health_check": {"url": "http://auth.internal/healthz", "interval_s": 30},
           "dependencies": [{"service": "platform/users", "required": True}]}
    assert SERVICE._quick(doc) is True
    assert check_config(ParseResult("yaml", "", doc)).problems == ()


def test_what_python_reads_otherwise_is_left_to_jsonschema():
    # \x1c is not white space to the regex package, so jsonschema takes this URL;
    # the quick check, unsure, says no and jsonschema answers
    doc = {"name": "a", "version": "1.0.0", "documentation_url": "http://x\x1c"}
    assert SERVICE._quick(doc) is False
    assert list(SERVICE.iter_errors(doc)) == []
    bad = {"name": "a", "version": "1.0.0\n", "schema_version": "١.0.0"}
    assert SERVICE._quick(bad) is False
    assert [e.json_path for e in SERVICE.iter_errors(bad)] == ["$.schema_version", "$.version"]


# every code point where the engines' classes could differ: all of the BMP's first
# 12,544 (white space, letters, digits of many scripts) and some beyond
_CODE_POINTS = [chr(i) for i in [*range(0x3100), 0xfeff, *range(0xff10, 0xff1a), 0x104a0,
                                 *range(0x1d7ce, 0x1d800), 0x10ffff] if not 0xd800 <= i < 0xe000]


@pytest.mark.parametrize("pattern", [r"^\d$", r"^\w$", r"^\D$", r"^\W$", r"^\S$", r"^.$",
                                     r"^[^\d]$", r"^[\w.-]$", r"^a$"])
def test_a_quick_pattern_matches_no_character_the_python_pattern_does_not(pattern):
    quick = jsonschema_rs.validator_for({"type": "string", "pattern": quick_pattern(pattern)})
    python = _compiled(pattern)  # as jsonschema here matches it
    extra = [hex(ord(c)) for c in _CODE_POINTS if quick.is_valid(c) and not python.search(c)]
    assert extra == []
    assert not quick.is_valid("a\n") and not python.search("a\n") if pattern == r"^a$" else True


def test_patterns_that_may_differ_between_the_engines_get_no_quick_check():
    assert quick_pattern(r"^\S+://\d$") == r"^[^\s\x1c-\x1f\x85]+://\d$"
    for pattern in [r"\s", r"[\S]", r"\bx", r"\p{L}", r"(?i)a", r"(?P<n>a)", r"[[:alpha:]]",
                    r"[a&&b]", r"[]a]", r"[^]", r"\1", r"\u0041", r"\n"]:
        assert quick_pattern(pattern) is None, pattern
