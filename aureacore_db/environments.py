"""Environments: named branches of the config repository in promotion order (DESIGN §6).

The one home of the lookups every part uses: which environments a database follows,
which branch each one is, and how ``--env NAME=BRANCH`` options read.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class EnvError(ValueError):
    """An unknown environment, or an ``--env`` option that does not read; the message
    says which and what there is."""


@dataclass(frozen=True)
class Environment:
    """One environment as recorded by the last ingest."""

    name: str
    branch: str
    position: int = 0
    tip: str | None = None
    tip_seq: int | None = None
    ingested_at: str | None = None


def parse_env_option(text: str) -> tuple[str, str]:
    """``NAME=BRANCH`` (or ``NAME``: a branch of that name) as ``(name, branch)``."""
    name, sep, branch = text.partition("=")
    name, branch = name.strip(), (branch.strip() if sep else name.strip())
    if not NAME.fullmatch(name):
        raise EnvError(
            f"--env {text!r}: an environment name is letters, digits, '.', '_' or '-' "
            "(up to 64), then '=BRANCH'")
    if not branch or branch.startswith("-") or any(c.isspace() or ord(c) < 32 for c in branch):
        raise EnvError(f"--env {text!r}: {branch!r} is not a branch name")
    return name, branch


def check_unique(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``pairs`` if no environment name is given twice (branches may repeat)."""
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            raise EnvError(f"environment {name!r} is given twice")
        seen.add(name)
    return pairs


def list_environments(db: sqlite_utils.Database | sqlite3.Connection) -> list[Environment]:
    """The environments a database follows, in promotion order ([] before any ingest)."""
    conn = db.conn if isinstance(db, sqlite_utils.Database) else db
    try:
        found = conn.execute("select name, branch, position, tip, tip_seq, ingested_at "
                             "from environments order by position, name").fetchall()
    except sqlite3.OperationalError:  # a database from before environments
        return []
    return [Environment(*row) for row in found]


def stored_environments(db_path: Path) -> list[Environment]:
    """:func:`list_environments` of a database file, read without creating or upgrading
    it ([] when it does not exist yet)."""
    from .db import open_read_only

    if not Path(db_path).is_file():
        return []
    try:
        conn = open_read_only(Path(db_path))
    except sqlite3.Error:
        return []  # not a database: whoever opens it next says so
    try:
        found = list_environments(conn)
        if not found:  # a one-branch database not upgraded yet: its branch
            try:
                row = conn.execute("select value from aureacore_meta "
                                   "where key = 'branch'").fetchone()
            except sqlite3.OperationalError:
                row = None
            if row:
                found = [Environment(row[0], row[0])]
        return found
    finally:
        conn.close()


def get_environment(db: sqlite_utils.Database | sqlite3.Connection,
                    name: str | None) -> Environment:
    """The environment called ``name`` (None: the first one); an error naming the
    environments there are when there is no such one."""
    found = list_environments(db)
    if not found:
        raise EnvError("the database follows no environment yet: run ingest first")
    if name is None:
        return found[0]
    for env in found:
        if env.name == name:
            return env
    names = ", ".join(e.name for e in found)
    raise EnvError(f"no environment {name!r} (there are: {names})")


def resolve(stored: list[Environment], given: list[tuple[str, str]],
            branch: str | None) -> list[tuple[str, str]]:
    """The environments an ingest follows: ``given`` (``--env``) replaces the stored
    list; else the stored list (``branch`` may name one of its branches); else one
    environment named after ``branch`` (default ``main``). A database following one
    branch switches to another ``branch`` as before (a rewrite); one following several
    refuses a branch that is none of theirs."""
    if given:
        return check_unique(list(given))
    pairs = [(e.name, e.branch) for e in stored]
    if not pairs:
        return [(branch or "main", branch or "main")]
    if branch is None or any(b == branch for _, b in pairs):
        return pairs
    if len(pairs) == 1:
        return [(branch, branch)]
    listed = ", ".join(f"{n}={b}" for n, b in pairs)
    raise EnvError(
        f"this database follows environments {listed}; branch {branch!r} is none of "
        "them: run without --branch to follow them all, or give every --env to change "
        "the list")
