"""URLs without their credentials: the one place that decides what of a URL may be shown.

A repository or endpoint URL may carry a secret in its userinfo
(``https://user:TOKEN@host/repo.git``) or its query string (``?private_token=…``).
Everything stored, logged, shown or put into an error message goes through
:func:`public_url` or :func:`scrub`. Git gets :func:`split_userinfo`'s URL: libgit2
writes the URL it is given into the clone (origin's URL in ``.git/config``, reflog lines,
``FETCH_HEAD``), so the userinfo goes to it through the credentials callback instead.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

REDACTED = "***"
# scheme://[userinfo@]host... up to whitespace or a quote
_URL_IN_TEXT = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>`]+""")


def public_url(url: str) -> str:
    """``url`` without userinfo and query string (kept as ``***`` placeholders so
    it is plain that something was removed). Text that is not a URL is returned as is."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # an unparsable port or netloc: keep only the scheme
        return url.split("://", 1)[0] + "://" + REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        host = f"[{host}]" if ":" in host else host
        netloc = f"{REDACTED}@{host}" + (f":{port}" if port is not None else "")
    query = REDACTED if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class GitURL(NamedTuple):
    """A URL split for Git: ``url`` is safe to write into a clone, ``username`` and
    ``password`` (percent-decoded, None when absent) are for the credentials callback."""

    url: str
    username: str | None
    password: str | None


_SSH_SCHEMES = ("ssh", "git+ssh", "ssh+git")


def split_userinfo(url: str) -> GitURL:
    """``url`` without its userinfo, and the user name and password that were in it.

    * The query string and fragment are dropped too: a query such as
      ``?private_token=…`` is a credential, and Git servers do not read one (Git's smart
      HTTP protocol appends ``/info/refs?service=…`` to the repository path) — a token
      goes in the password or in ``AUREACORE_GIT_TOKEN``.
    * An SSH URL keeps its user name (``ssh://git@host/…``: the account on the host, not
      a secret, which later runs need too); a password in it is dropped (SSH uses keys).
    * The ``***`` placeholder of :func:`public_url` (a source stored in the database)
      counts as no credentials.
    * Text that is not a ``scheme://`` URL (a path, scp-like ``git@host:path``) is
      returned as is.
    """
    if "://" not in url:
        return GitURL(url, None, None)
    try:
        parts = urlsplit(url)
    except ValueError:
        return GitURL(url, None, None)
    netloc, username, password = parts.netloc, None, None
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        user, colon, secret = userinfo.partition(":")
        if user != REDACTED:
            username = unquote(user) or None
        if colon and secret != REDACTED:
            password = unquote(secret) or None
        if parts.scheme.lower() in _SSH_SCHEMES and username is not None:
            netloc = f"{user}@{netloc}"
    return GitURL(urlunsplit((parts.scheme, netloc, parts.path, "", "")), username,
                  password)


def without_userinfo(text: str) -> str:
    """``text`` (a reflog, ``FETCH_HEAD``) with every URL in it as :func:`split_userinfo`
    gives it to Git."""
    return _URL_IN_TEXT.sub(lambda m: split_userinfo(m.group(0)).url, text)


def has_credentials(url: str) -> bool:
    """Whether :func:`public_url` would remove anything from ``url``."""
    return public_url(url) != url.split("#", 1)[0]


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` (an error message, a log line) with every URL in it made public and
    each of ``secrets`` (e.g. the credential-bearing source) replaced."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, public_url(secret))
    text = _URL_IN_TEXT.sub(lambda m: public_url(m.group(0)), text)
    for part in sorted({p for s in secrets if s for p in _secret_parts(s)}, key=len,
                       reverse=True):
        text = text.replace(part, REDACTED)  # e.g. a token quoted on its own
    return text


def _secret_parts(url: str) -> list[str]:
    """The userinfo (and its password) and query string of ``url``, if long enough to
    be a secret rather than a common word."""
    if "://" not in url:
        return []
    rest = url.split("://", 1)[1]
    netloc, query = rest.split("/", 1)[0], rest.split("?", 1)[1] if "?" in rest else ""
    parts = [query.split("#", 1)[0]]
    if "@" in netloc:
        userinfo = netloc.rsplit("@", 1)[0]
        parts += [userinfo, *userinfo.split(":", 1)]
    parts += [v for item in parts[0].split("&") for v in item.split("=", 1)[1:]]
    return [p for p in parts if len(p) >= 6]
