"""Git paths and commit metadata as text the database can hold, losslessly.

Paths in Git are bytes. The rule used everywhere a path becomes text (the walk, the
database, messages): a path is its UTF-8 text, except that a backslash, a control
character and every byte that is not valid UTF-8 are written with Git's C-quoting
escapes (``\\\\``, ``\\t``, ``\\n``, ``\\351``, …), without the surrounding quotes Git adds.
So ``b"services/caf\\xe9/x.yaml"`` is stored as ``services/caf\\351/x.yaml`` and an
ordinary path is stored unchanged. :func:`git_path` turns the text back into the exact
path (for pygit2 lookups), so a rollback finds the file again. The text never holds a
lone surrogate, which SQLite TEXT cannot store.

Commit metadata (names, emails, messages) is decoded with the codec the commit declares
when Python knows it as a text encoding, else as UTF-8, replacing undecodable bytes
(:func:`meta_text`).
"""

from __future__ import annotations

import codecs
import re

_C_ESCAPES = {"\\": "\\\\", "\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n",
              "\v": "\\v", "\f": "\\f", "\r": "\\r"}
_UNESCAPES = {"\\": b"\\", '"': b'"', "a": b"\a", "b": b"\b", "t": b"\t", "n": b"\n",
              "v": b"\v", "f": b"\f", "r": b"\r"}
_NEEDS_QUOTING = re.compile(r"[\\\x00-\x1f\x7f\ud800-\udfff]")
_ESCAPE = re.compile(r"\\([0-3][0-7]{2}|.)", re.DOTALL)


def _raw(path: str | bytes) -> bytes:
    if isinstance(path, bytes):
        return path
    try:
        return path.encode("utf-8", "surrogateescape")  # pygit2 decodes names this way
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogatepass")  # other lone surrogates (from YAML)


def path_text(path: str | bytes) -> str:
    """The stored, readable form of a Git path (bytes, or text as pygit2 gives it)."""
    if isinstance(path, str) and not _NEEDS_QUOTING.search(path):
        return path  # the common case: valid text, nothing to escape
    out = []
    for char in _raw(path).decode("utf-8", "surrogateescape"):
        code = ord(char)
        if char in _C_ESCAPES:
            out.append(_C_ESCAPES[char])
        elif 0xDC80 <= code <= 0xDCFF:  # an undecodable byte
            out.append(f"\\{code - 0xDC00:03o}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\{code:03o}")
        else:
            out.append(char)
    return "".join(out)


def path_bytes(text: str) -> bytes:
    """The exact Git path of a stored path text (inverse of :func:`path_text`)."""
    if "\\" not in text:
        return text.encode("utf-8", "surrogateescape")
    out = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(text):
        out += text[pos:match.start()].encode("utf-8", "surrogateescape")
        token = match.group(1)
        if len(token) == 3:
            out.append(int(token, 8))
        else:
            out += _UNESCAPES.get(token, ("\\" + token).encode("utf-8", "surrogateescape"))
        pos = match.end()
    out += text[pos:].encode("utf-8", "surrogateescape")
    return bytes(out)


def git_path(text: str) -> str:
    """The Git path of a stored path text, as the str pygit2 takes (surrogate-escaped)."""
    return path_bytes(text).decode("utf-8", "surrogateescape")


def meta_text(raw: bytes, encoding: str | None = None) -> str:
    """Commit metadata bytes as text: the declared codec when Python knows it as a text
    encoding, else UTF-8; undecodable bytes become U+FFFD, never a crash."""
    codec = "utf-8"
    if encoding:
        try:
            info = codecs.lookup(encoding)
            if getattr(info, "_is_text_encoding", True):
                codec = info.name
        except (LookupError, ValueError, TypeError):
            pass
    try:
        text = raw.decode(codec, "replace")
    except Exception:  # a codec that fails even with "replace"
        text = raw.decode("utf-8", "replace")
    return text.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates
