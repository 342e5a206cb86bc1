"""A fast path for simple YAML documents, through a native (Rust) parser.

:func:`fast_load` gives the same JSON values as :func:`aureacore_db.parsing.load_yaml`
for the documents it accepts, and ``None`` (declined: use the full loader) for all
others. The native parser reads YAML 1.2 while the full loader reads YAML 1.1, so a
cheap scan of the text first accepts only documents written in the part of YAML where
the two agree, line by line:

* block mappings and sequences only: every line is blank, a comment, ``key:``,
  ``key: value``, ``- value``, ``- key: value`` (or ``-`` alone), indented by spaces;
* keys are plain names (a letter or ``_`` first, then letters, digits, ``_.-/``; never
  a 1.1 boolean or null word such as ``on``, ``no``, ``y``, ``null``) or quoted strings
  without escapes, so every key is a string in both;
* values are quoted strings without escapes, ``true``, ``false``, ``null``, ``~``,
  ``[]``, ``{}``, decimal integers and fractions without leading zeros, exponents or
  underscores (and not so long that precision could differ), version-like strings
  with two or more dots (``1.2.3``), or plain strings that start with a letter, ``^`` or ``/``
  and are not a 1.1 or 1.2 boolean or null word (``yes``, ``Off``, ``NULL``...);
* no tabs, carriage returns, tags, anchors, aliases, merge keys, directives, block
  scalars, flow collections, Unicode line separators or non-printable characters;
* indentation of at most 24 spaces and at most 3 dashes on a line, so documents stay
  far inside ``MAX_DEPTH``; at most ``MAX_LINES`` lines, so inside ``MAX_NODES``.

The native parser then loads the text with duplicate keys refused; any error it raises,
and any result that is not a mapping, declines too, so error messages (with line and
column) always come from the full loader. tests/test_yaml_fastpath.py checks that both
give identical results over every blob of the demo and benchmark repositories, YAML edge
cases and generated YAML-ish text.
"""

from __future__ import annotations

import re
from typing import Any

try:
    import yaml_rs
except ImportError:  # pragma: no cover - the dependency is declared; degrade gracefully
    yaml_rs = None

MAX_LINES = 5000  # a line holds at most a few nodes: far inside parsing.MAX_NODES

# Characters outside the printable ones both loaders accept (PyYAML refuses the others;
# U+0085, U+2028 and U+2029 are line breaks in YAML 1.1 only; U+FEFF is a byte order
# mark), tabs and carriage returns included: a document holding any is declined.
_ODD = re.compile(r"[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd"
                  r"\U00010000-\U0010ffff]")

# Words a plain scalar must not be: booleans and nulls of YAML 1.1 or 1.2, all spellings
# (y, Yes, NO, on, Off, True, FALSE, null, Null... and some mixed-case ones besides).
_WORDS = "[yY](?:es|ES)?|[nN](?:o|O|ull|ULL)?|[oO](?:n|N|ff|FF)|[tT](?:rue|RUE)|[fF](?:alse|ALSE)"
_CHAR = r"[A-Za-z0-9_.\-/+=@,()%~^]"  # inside a plain scalar: never an indicator
_END = rf"(?!{_CHAR}|:[^ \n])"  # where a plain token ends

_KEY = (rf"(?:(?!(?:{_WORDS}):)[A-Za-z_][A-Za-z0-9_.\-/]*"
        r"|\"[^\"\\\n]*\"|'[^'\n]*')")
_VALUE = "|".join((
    # a plain string: a letter, ^ or / first, words joined by single ':' or runs of spaces
    rf"(?!(?:{_WORDS}){_END})[A-Za-z^/]{_CHAR}*(?:(?::|[ ]+){_CHAR}+)*{_END}",
    r"\"[^\"\\\n]*\"",  # quoted, without escapes
    r"'[^'\n]*'",
    rf"-?(?:0|[1-9][0-9]{{0,14}})(?:\.[0-9]{{1,15}})?{_END}",  # int or fraction
    rf"[0-9]+(?:\.[0-9]+){{2,}}(?:[-+][A-Za-z0-9.\-+]*)?{_END}",  # 1.2.3, 1.2.3-rc.1
    rf"(?:true|false|null|~|\[\]|\{{\}}){_END}",
))
_ENTRY = rf"{_KEY}:(?:[ ]+(?:{_VALUE}))?"
# A dash and 1-3 spaces before content, or a dash ending the line (an empty item).
_DASH = r"-(?:[ ]{1,3}(?=[^ \n#])|(?=[ ]*(?:#|\n)))"
_LINE = (rf"[ ]{{0,24}}(?:(?:{_DASH}){{1,3}}(?:{_ENTRY}|{_VALUE})?|{_ENTRY})?"
         rf"[ ]*(?:(?<![^ \n])#[^\n]*)?\n")
# Each line is matched once, atomically (a lookahead's match is never retried): a line
# that fails ends the scan, without backtracking into the lines before it.
_SIMPLE = re.compile(rf"(?:---[ ]*\n)?(?:(?=(?P<line>{_LINE}))(?P=line))*")


def is_simple(text: str) -> bool:
    """True when ``text`` is written only in the part of YAML that 1.1 and 1.2 read
    alike (see the module docstring)."""
    if text.count("\n") > MAX_LINES:
        return False
    if not text.endswith("\n"):
        text += "\n"
    return _ODD.search(text) is None and _SIMPLE.fullmatch(text) is not None


def fast_load(text: str) -> dict[str, Any] | None:
    """The mapping in ``text``, as :func:`parsing.load_yaml` reads it, or None when the
    document is not simple, does not load natively, or is not a mapping."""
    if yaml_rs is None or not is_simple(text):
        return None
    try:
        content = yaml_rs.loads(text, parse_datetime=False)
    except Exception:  # noqa: BLE001 - any native failure: the full loader decides
        return None
    return content if type(content) is dict else None
