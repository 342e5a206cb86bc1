"""URLs without their credentials: the one place that decides what of a URL may be shown.

A repository or endpoint URL may carry a secret in its userinfo
(``https://user:TOKEN@host/repo.git``) or its query string (``?private_token=…``).
Only Git (or the HTTP client) gets the URL as given; everything stored, logged, shown
or put into an error message goes through :func:`public_url` or :func:`scrub`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

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
