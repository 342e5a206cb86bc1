"""A fast path for simple YAML documents, through a native (Rust) parser.

:func:`fast_load` gives the same JSON values as :func:`aureacore_db.parsing.load_yaml`
for the documents it accepts, and ``None`` (declined: use the full loader) for all
others. The native parser reads YAML 1.2 while the full loader reads YAML 1.1, so a
cheap scan of the text first accepts only documents written in the part of YAML where
the two agree, line by line:

* block mappings and sequences: every line is blank, a comment, ``key:``,
  ``key: value``, ``- value``, ``- key: value`` (or ``-`` alone), indented by spaces;
* keys are plain names (a letter or ``_`` first, then letters, digits, ``_.-/``; never
  a 1.1 boolean or null word such as ``on``, ``no``, ``y``, ``null``) or quoted strings
  without escapes, so every key is a string in both;
* values are quoted strings without escapes, ``true``, ``false``, ``null``, ``~``,
  ``[]``, ``{}``, decimal integers and fractions without leading zeros, exponents or
  underscores (and not so long that precision could differ), version-like strings
  with two or more dots (``1.2.3``), plain strings that start with a letter, ``^`` or
  ``/`` (words joined by spaces or runs of ``:``, as in ``arn:aws:iam::1:role/x``) and
  are not a 1.1 or 1.2 boolean or null word (``yes``, ``Off``, ``NULL``...), or one word
  with a digit first, no ``:`` and a letter ``g``-``z`` other than ``o`` and ``x`` in it
  (numbers of either YAML hold only digits, ``_.+-``, ``e``, ``x``, ``o``, ``b``, hex
  digits, and ``inf`` / ``nan`` after a dot or sign): ``250m``, ``512Mi``, ``30s``,
  ``0.5Gi`` — never ``1e3``, ``0x1f``, ``0o7``, ``1_0``, ``1:30`` or dates;
* flow sequences on one line of quoted strings and plain words (``["ALL"]``, ``[a, b]``;
  no 1.1 words, numbers, nesting or trailing comma);
* literal and folded block scalars (``|``, ``|-``, ``|+``, ``>``, ``>-``, ``>+``; no
  indentation indicator) as the value of a key on a line without dashes, whose first
  line is not blank and is indented more than the key, whose other lines are empty or
  indented as much (folded ones start with a non-space and never indent more), and after
  which the next non-blank line is indented no more than the key; in a text ending with
  a line break (the last break of a block decides its value);
* no carriage returns, tags, anchors, aliases, merge keys, directives, flow mappings,
  Unicode line separators or non-printable characters, and no tabs but inside literal
  block scalars' text;
* indentation of at most 24 spaces and at most 3 dashes on a line, so documents stay
  far inside ``MAX_DEPTH``; at most ``MAX_LINES`` lines, so inside ``MAX_NODES``.

The scan reads each distinct line once: lines that pass alone are kept in a bounded
set, so a document whose lines are all known costs a set lookup per line (see
:func:`_scan` for why this gives the whole-text scan's answer).

The native parser then loads the text with duplicate keys refused; any error it raises,
and any result that is not a mapping, declines too, so error messages (with line and
column) always come from the full loader. tests/test_yaml_fastpath.py checks that both
give identical results over every blob of the demo, benchmark and Helm-values
repositories, YAML edge cases and generated YAML-ish text, unit numbers, flow lists
and block scalars.
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
# mark), carriage returns included: a document holding any is declined. Tabs are let
# through here, but every pattern below refuses them, bar literal block scalars' text.
_ODD = re.compile(r"[^\t\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd"
                  r"\U00010000-\U0010ffff]")

# Words a plain scalar must not be: booleans and nulls of YAML 1.1 or 1.2, all spellings
# (y, Yes, NO, on, Off, True, FALSE, null, Null... and some mixed-case ones besides).
_WORDS = "[yY](?:es|ES)?|[nN](?:o|O|ull|ULL)?|[oO](?:n|N|ff|FF)|[tT](?:rue|RUE)|[fF](?:alse|ALSE)"
_CHAR = r"[A-Za-z0-9_.\-/+=@,()%~^]"  # inside a plain scalar: never an indicator
_END = rf"(?!{_CHAR}|:[^ \n])"  # where a plain token ends
# Letters that no int, float or timestamp of YAML 1.1 or 1.2 holds (those use only digits,
# _ . : + - e E x X o O b B a-f A-F, T t Z, and inf / nan after a dot or sign): a token
# with a digit first and one of these inside is a string in both (250m, 512Mi, 30s).
_UNIT = "[g-np-wyzG-NP-WYZ]"
_DQ = r'"[^"\\\n\t]*"'  # quoted, without escapes or tabs
_SQ = r"'[^'\n\t]*'"
# A flow sequence on one line of quoted strings or plain words: ["ALL"], [a, b].
_FLOW_ITEM = rf"(?:{_DQ}|{_SQ}|(?!(?:{_WORDS})(?![A-Za-z0-9_.\-/]))[A-Za-z][A-Za-z0-9_.\-/]*)"
_FLOW = rf"\[[ ]*{_FLOW_ITEM}(?:[ ]*,[ ]*{_FLOW_ITEM})*[ ]*\]"

_KEY = (rf"(?:(?!(?:{_WORDS}):)[A-Za-z_][A-Za-z0-9_.\-/]*|{_DQ}|{_SQ})")
_VALUE = "|".join((
    # a plain string: a letter, ^ or / first, words joined by ':' runs or runs of spaces
    rf"(?!(?:{_WORDS}){_END})[A-Za-z^/]{_CHAR}*(?:(?::+|[ ]+){_CHAR}+)*{_END}",
    # a plain string: a digit first, one word with a unit letter in it (no ':')
    rf"[0-9](?:(?!{_UNIT}){_CHAR})*{_UNIT}{_CHAR}*{_END}",
    _DQ,
    _SQ,
    rf"-?(?:0|[1-9][0-9]{{0,14}})(?:\.[0-9]{{1,15}})?{_END}",  # int or fraction
    rf"[0-9]+(?:\.[0-9]+){{2,}}(?:[-+][A-Za-z0-9.\-+]*)?{_END}",  # 1.2.3, 1.2.3-rc.1
    rf"(?:true|false|null|~|\[\]|\{{\}}){_END}",
    _FLOW,
))
_ENTRY = rf"{_KEY}:(?:[ ]+(?:{_VALUE}))?"
# A dash and 1-3 spaces before content, or a dash ending the line (an empty item).
_DASH = r"-(?:[ ]{1,3}(?=[^ \n#])|(?=[ ]*(?:#|\n)))"
_COMMENT = r"[ ]*(?:(?<![^ \n])#[^\n\t]*)?\n"
_LINE = (rf"[ ]{{0,24}}(?:(?:{_DASH}){{1,3}}(?:{_ENTRY}|{_VALUE})?|{_ENTRY})?{_COMMENT}")
# A block scalar as the value of a key on a line without dashes: no indentation
# indicator, its first line not blank and indented more than the key, every other line
# empty or indented as much, the first line after it (not blank) indented no more than
# the key. Literal (|) text may hold anything but line breaks; folded (>) lines start at
# the block's indentation with a character that is not a space (no "more indented" lines)
# and hold no tabs. The lines are taken all at once (atomically), so the block cannot end
# early before blank lines to let a wrongly indented line through.
_BLOCK_END = r"(?!(?P=bi)[ ]|[ ]+\n)"
_BLOCK = (rf"(?P<bi>[ ]{{0,24}}){_KEY}:[ ]+(?:"
          rf"\|[-+]?{_COMMENT}(?P=bi)(?P<li>[ ]+)[^ \t\n][^\n]*\n"
          rf"(?=(?P<ll>(?:(?P=bi)(?P=li)[^\n]*\n|\n)*))(?P=ll)"
          rf"|>[-+]?{_COMMENT}(?P=bi)(?P<fi>[ ]+)[^ \t\n][^\n\t]*\n"
          rf"(?=(?P<fl>(?:(?P=bi)(?P=fi)[^ \t\n][^\n\t]*\n|\n)*))(?P=fl)"
          rf"){_BLOCK_END}")
# Each line (or block scalar) is matched once, atomically (a lookahead's match is never
# retried): a line that fails ends the scan, without backtracking into the lines before.
_SIMPLE = re.compile(rf"(?:---[ ]*\n)?(?:(?=(?P<line>{_LINE}|{_BLOCK}))(?P=line))*")


_ONE_LINE = re.compile(_LINE)
_ONE_BLOCK = re.compile(_BLOCK)
_DOC_START = re.compile(r"---[ ]*")

# Lines known to pass the scan on their own: no _ODD character and a full match of
# _LINE (with their line break). Consecutive versions of a config differ in a line or
# two and lines recur across services, so most documents are checked by a set lookup per
# line. Bounded (cleared when full; long lines are never kept) so memory stays flat.
CACHE_LINES = 65_536
CACHE_LINE_CHARS = 200
_known: set[str] = set()


def _scan(text: str) -> bool:
    """``_ODD.search(text) is None and _SIMPLE.fullmatch(text) is not None`` for a
    ``text`` ending with a line break, checking each distinct line once.

    Why it is the same: _SIMPLE is an optional ``---[ ]*\n``, then at each line start
    _LINE if it matches there, else _BLOCK, else the scan stops (short of the end: not
    simple). Each is taken atomically (first match, never retried), so the scan follows
    this one path, which the loop below walks. ``---`` lines match neither (no key or
    dash fits), so only the first line may be one and be skipped. _LINE matches exactly
    one line with its break: no sub-pattern of it matches ``\n`` but the final one of
    _COMMENT (quoted strings, comments, _CHAR, ``[ ]`` all exclude it), and its lookarounds
    see no further than that break (_END looks at most at ``:`` and the character after
    it; _DASH's lookaheads stop at ``\n``) nor further back than the line start, where
    the comment's lookbehind ``(?<![^ \n])`` passes both after a ``\n`` and at the start
    of a string. So _LINE matches at a line start of the text exactly when it fully
    matches that line alone (cached when it does). Where it does not, _BLOCK is matched
    in the text itself, from that line. _ODD matches no ``\n``: the text is free of it
    when each line taken by _LINE and each span taken by _BLOCK is.
    """
    lines = text.split("\n")
    lines.pop()  # the empty string after the last line break
    pos = 0
    if lines and lines[0][:3] == "---" and _DOC_START.fullmatch(lines[0]):
        pos = len(lines[0]) + 1
        del lines[0]
    known = _known
    if known.issuperset(lines):
        return True
    index, count = 0, len(lines)
    while index < count:
        line = lines[index]
        if line not in known:
            if _ODD.search(line) is not None:
                return False
            if _ONE_LINE.fullmatch(line + "\n") is None:
                block = _ONE_BLOCK.match(text, pos)
                if block is None or _ODD.search(text, pos, block.end()) is not None:
                    return False
                index += text.count("\n", pos, block.end())
                pos = block.end()
                continue
            if len(line) <= CACHE_LINE_CHARS:
                if len(known) >= CACHE_LINES:
                    known.clear()
                known.add(line)
        index += 1
        pos += len(line) + 1
    return True


def is_simple(text: str) -> bool:
    """True when ``text`` is written only in the part of YAML that 1.1 and 1.2 read
    alike (see the module docstring)."""
    if text.count("\n") > MAX_LINES:
        return False
    if not text.endswith("\n"):
        if "|" in text or ">" in text:  # a block scalar's last line break decides its value
            return False
        text += "\n"
    return _scan(text)


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
