"""One home for "which commit is meant": commit references and a service's version at one.

A reference is what a person types where a commit is asked for (pages, canned queries,
``deps --at``, ``rollback --to``):

- empty (or None): the tip of the mainline;
- a full or short sha (4+ hex digits) of an ingested commit; an ambiguous short sha is
  an error that says so;
- ``HEAD``, ``HEAD~3``, ``HEAD^``: counted along the database's mainline;
- anything else Git accepts (branch and tag names, ``main~2``, ``v1.2^``), through the
  repository's ``revparse`` (pygit2) when the repository is reachable.

The commit found must be ingested, else :class:`UnknownCommit`.
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

MAX_REF = 200
MAX_INPUT = 1000  # longer input is refused before it is even stripped
_HEX = re.compile(r"[0-9a-fA-F]{4,40}")
_HEAD = re.compile(r"HEAD((?:~\d*|\^1?)*)")
_STEP = re.compile(r"~(\d*)|\^1?")


class UnknownCommit(LookupError):
    """A commit reference that names no ingested commit (or is ambiguous)."""

    def __str__(self) -> str:  # LookupError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Revision:
    """An ingested commit."""

    sha: str
    seq: int
    mainline: bool


def _conn(db: Any) -> sqlite3.Connection:
    """A sqlite3 connection from a connection or a ``sqlite_utils.Database``."""
    return getattr(db, "conn", db)


def _by_sha(conn: sqlite3.Connection, sha: str) -> Revision | None:
    row = conn.execute("select sha, seq, mainline from commits where sha = ?",
                       [sha]).fetchone()
    return Revision(row[0], row[1], bool(row[2])) if row else None


def tip(db: Any) -> Revision | None:
    """The newest mainline commit (None in an empty database)."""
    row = _conn(db).execute("select sha, seq, mainline from commits where mainline = 1 "
                            "order by seq desc limit 1").fetchone()
    return Revision(row[0], row[1], True) if row else None


def repo_path_of(db: Any) -> str | None:
    """The repository the database was ingested from, when it says so."""
    try:
        row = _conn(db).execute("select value from aureacore_meta where key = 'repo_path'"
                                ).fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row and row[0] else None


def resolve_commit(db: Any, ref: str | None, repo_path: str | os.PathLike | None = None
                   ) -> Revision:
    """The ingested commit ``ref`` names (see the module docstring); raises
    :class:`UnknownCommit` with a readable reason otherwise."""
    conn = _conn(db)
    if ref is not None and len(ref) > MAX_INPUT:
        raise UnknownCommit(f"commit reference too long ({len(ref):,} characters; a "
                            f"reference is at most {MAX_REF})")
    text = (ref or "").strip()
    if not text:
        found = tip(conn)
        if found is None:
            raise UnknownCommit("the database has no commits yet (run aureacore-db ingest)")
        return found
    if len(text) > MAX_REF:
        raise UnknownCommit(f"unknown commit {text[:40]!r}…: too long for a commit reference")
    if _HEX.fullmatch(text):
        low = text.lower()
        rows = conn.execute("select sha, seq, mainline from commits where sha >= ? and sha < ? "
                            "order by sha limit 2", [low, low + "g"]).fetchall()
        if len(rows) > 1:
            raise UnknownCommit(f"commit {text!r} is ambiguous: more than one commit starts "
                                "with it; give more characters")
        if rows:
            return Revision(rows[0][0], rows[0][1], bool(rows[0][2]))
    head = _HEAD.fullmatch(text)
    if head:
        return _back_from_tip(conn, text, head.group(1))
    sha = _revparse(repo_path or repo_path_of(conn), text)
    if sha is None:
        raise UnknownCommit(f"unknown commit {text!r}")
    found = _by_sha(conn, sha)
    if found is None:
        raise UnknownCommit(f"commit {text!r} ({sha[:10]}) is not ingested (not on the "
                            "ingested branch, or ingest has not run since)")
    return found


def _back_from_tip(conn: sqlite3.Connection, text: str, steps: str) -> Revision:
    """``HEAD~n`` / ``HEAD^``: n first parents back from the tip, along the mainline."""
    back = 0
    for step in _STEP.finditer(steps):
        back += int(step.group(1) or 1) if step.group(0).startswith("~") else 1
    row = conn.execute("select sha, seq from commits where mainline = 1 "
                       "order by seq desc limit 1 offset ?", [back]).fetchone()
    if row is None:
        raise UnknownCommit(f"unknown commit {text!r}: the mainline has fewer than "
                            f"{back + 1} commits")
    return Revision(row[0], row[1], True)


def _revparse(repo_path: str | os.PathLike | None, text: str) -> str | None:
    """Git's answer for a reference (None: no repository, or Git does not know it)."""
    if not repo_path or text.startswith("-"):
        return None
    import pygit2

    try:
        found = pygit2.discover_repository(str(repo_path))
        if found is None:
            return None
        return str(pygit2.Repository(found).revparse_single(text).peel(pygit2.Commit).id)
    except (KeyError, ValueError, TypeError, pygit2.GitError, pygit2.InvalidSpecError):
        return None


VERSION_COLUMNS = ("h.id, h.commit_sha, h.seq, h.committed_at, h.author_name, h.change, "
                   "h.path, h.status, h.config_id, c.raw, c.content, c.version, c.format")


def version_at(db: Any, service_id: str, at: Revision,
               environment: str | None = None) -> dict[str, Any] | None:
    """The service's ``history`` row (with its config) at commit ``at``: the change made
    in that commit, else the latest mainline change up to it (along ``environment``'s
    mainline when given, else the first environment's); None if it never existed by
    then. A removal is returned too (``config_id`` None)."""
    conn = _conn(db)
    sql = (f"select {VERSION_COLUMNS} from history h left join configs c "
           "on c.id = h.config_id where h.service_id = ? and ")
    cursor = conn.execute(sql + "h.commit_sha = ? order by h.id desc limit 1",
                          [service_id, at.sha])
    row = cursor.fetchone()
    if row is None:
        if environment is None:
            on_line, args = "h.mainline = 1", []
        else:
            on_line = ("exists (select 1 from environment_commits e where "
                       "e.environment = ? and e.commit_sha = h.commit_sha)")
            args = [environment]
        cursor = conn.execute(sql + f"h.seq <= ? and {on_line} "
                              "order by h.seq desc, h.id desc limit 1",
                              [service_id, at.seq, *args])
        row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row, strict=True))


# -- SQL --------------------------------------------------------------------------------
SQL_FUNCTION = "aureacore_commit"
COMMIT_PARAM = re.compile(r"aureacore_commit\(\s*:(\w+)\s*\)")


def register_sql_function(conn: sqlite3.Connection,
                          repo_path: str | os.PathLike | None = None) -> None:
    """SQL ``aureacore_commit(ref)``: the full sha of the ingested commit ``ref`` names
    (empty: the mainline tip); an unknown reference fails the query, and so, at once,
    does a blob or a text over :data:`MAX_INPUT` characters. Also
    ``aureacore_cycle_members(edges)`` (see :func:`~aureacore_db.depgraph.cycle_members_json`)."""
    def aureacore_commit(ref: Any) -> str:
        if isinstance(ref, (bytes, bytearray, memoryview)):
            raise UnknownCommit("a commit reference is text, not a blob")
        return resolve_commit(conn, None if ref is None else str(ref), repo_path).sha

    conn.create_function(SQL_FUNCTION, 1, aureacore_commit)

    def aureacore_cycle_members(edges_json: str | None) -> str:
        from .depgraph import cycle_members_json  # networkx: only when a query asks

        return cycle_members_json(edges_json)

    conn.create_function("aureacore_cycle_members", 1, aureacore_cycle_members)


def commit_parameter_error(conn: sqlite3.Connection, sql: str, values: dict[str, Any],
                           repo_path: str | os.PathLike | None = None) -> str | None:
    """Why a query's ``aureacore_commit(:param)`` would fail with these values (SQLite
    itself only says "user-defined function raised exception"); None when it would not."""
    for param in dict.fromkeys(COMMIT_PARAM.findall(sql)):
        value = values.get(param)
        try:
            resolve_commit(conn, None if value is None else str(value), repo_path)
        except UnknownCommit as exc:
            return f"{param}: {exc}"
    return None
