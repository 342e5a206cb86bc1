"""What the CLI commands share: their common options (``--db``, ``--repo``, ``--branch``,
``--json``), the port check, and the checks that end bad input in one clear ``Error:`` line.

A command that needs a registry refuses a missing file, a folder, a file that is not
SQLite, a SQLite database of something else and a database that was never ingested,
before anything opens it for writing: nothing is created, and nothing is changed.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

import click

from .db import open_read_only

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_DB = "registry.db"
DB_HELP = "The registry database (aureacore-db ingest creates it)."
REPO_HELP = ("The config repository (working clone, path or URL). Default: the one the "
             "database was ingested from.")
LOCAL_REPO_HELP = ("The config repository, a local working clone. Default: the one the "
                   "database was ingested from.")
BRANCH_HELP = "Branch. Default: the database's, else main."

SQLITE_HEADER = b"SQLite format 3\x00"
INGEST_HINT = "run `aureacore-db ingest REPO --db {db}` first"

# What a database path holds (see inspect_db).
MISSING, FOLDER, NOT_SQLITE, EMPTY, FOREIGN, NOT_INGESTED, REGISTRY = (
    "missing", "folder", "not-sqlite", "empty", "foreign", "not-ingested", "registry")


# -- shared options (like sqlite-utils' option decorators) ---------------------------
def db_option(command: F) -> F:
    """``--db PATH`` (a :class:`~pathlib.Path`, as ``db_path``; default registry.db)."""
    return click.option("--db", "db_path", default=DEFAULT_DB, show_default=True,
                        type=click.Path(dir_okay=False, path_type=Path),
                        help=DB_HELP)(command)


def dbs_option(command: F) -> F:
    """``--db PATH``, repeatable (``db_paths``, a tuple; ``serve``)."""
    return click.option("--db", "db_paths", multiple=True,
                        type=click.Path(dir_okay=False, path_type=Path),
                        help=f"{DB_HELP} Repeat for several; default {DEFAULT_DB}.")(command)


def repo_option(command: F) -> F:
    """``--repo`` as a path or URL (``repo``, a string or None)."""
    return click.option("--repo", default=None, help=REPO_HELP)(command)


def local_repo_option(command: F) -> F:
    """``--repo`` that must be an existing local folder (``repo``, a Path or None)."""
    return click.option("--repo", default=None,
                        type=click.Path(exists=True, file_okay=False, path_type=Path),
                        help=LOCAL_REPO_HELP)(command)


def branch_option(command: F) -> F:
    """``--branch`` (``branch``; None means the database's, else main)."""
    return click.option("--branch", default=None, help=BRANCH_HELP)(command)


def json_option(what: str = "the result") -> Callable[[F], F]:
    """``--json`` (``as_json``): print ``what`` as JSON instead of text."""
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON.")


def check_port(host: str, port: int) -> None:
    """A clear error for an address that cannot be served (in use, or not this host's)."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise click.ClickException(f"--host {host}: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise click.ClickException(
                f"cannot serve on {host}:{port}: {exc.strerror}; pick another --port"
                + ("" if exc.errno == errno.EADDRINUSE else " or --host")) from exc


# -- checks -------------------------------------------------------------------------
def parse_size(value: str) -> int:
    """``512k``, ``2M``, ``1GiB`` or a plain number of bytes."""
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    text = value.strip().lower().removesuffix("ib").removesuffix("b")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


class Size(click.ParamType):
    """A positive size in bytes, written as ``512k``, ``2M`` or ``1048576``."""

    name = "size"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if isinstance(value, int):
            return value
        try:
            size = parse_size(str(value))
        except (ValueError, OverflowError):
            self.fail(f"{value!r} is not a size (e.g. 512k, 2M or 1048576)", param, ctx)
        if size <= 0:
            self.fail(f"{value!r}: must be more than 0 bytes", param, ctx)
        return size


def read_only(db_path: Path, *, ingested: bool = True) -> sqlite3.Connection:
    """A read-only connection to a registry (checked by :func:`require_registry`)."""
    return open_read_only(require_registry(db_path, ingested=ingested))


def inspect_db(path: Path) -> tuple[str, list[str]]:
    """What ``path`` holds, and its tables; reads only (never creates or changes it)."""
    if not path.exists():
        return MISSING, []
    if path.is_dir():
        return FOLDER, []
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read it ({exc.strerror})") from exc
    if not header:
        return EMPTY, []
    if header != SQLITE_HEADER:
        return NOT_SQLITE, []
    try:
        conn = open_read_only(path)
        try:
            tables = [r[0] for r in conn.execute(
                "select name from sqlite_master where type = 'table' order by name")]
            if "aureacore_meta" not in tables:
                return (FOREIGN if tables else EMPTY), tables
            ingested = "commits" in tables and conn.execute(
                "select 1 from commits limit 1").fetchone() is not None
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise click.ClickException(f"{path}: cannot read the database: {exc}") from exc
    return (REGISTRY if ingested else NOT_INGESTED), tables


def _foreign(path: Path, tables: list[str]) -> click.ClickException:
    shown = ", ".join(tables[:5]) + (", …" if len(tables) > 5 else "")
    return click.ClickException(
        f"{path} is a SQLite database of something else (tables: {shown}), not an "
        "aureacore-db registry; choose another --db")


def _writable(path: Path) -> bool:
    """Whether the database (if it exists) and its folder (for -wal, -shm and the lock
    file) can be written."""
    folder_ok = os.access(path.parent, os.W_OK | os.X_OK)
    return folder_ok and (not path.exists() or os.access(path, os.W_OK))


def require_writable(db_path: Path, why: str) -> None:
    if _writable(db_path):
        return
    if not db_path.exists():
        raise click.ClickException(f"{db_path}: cannot create it, folder {db_path.parent} is "
                                   f"read-only; {why}")
    raise click.ClickException(
        f"{db_path} is read-only (the database or its folder cannot be written); {why}")


def require_registry(db_path: str | os.PathLike, *, ingested: bool = True,
                     writable: str | None = None) -> Path:
    """``db_path`` if it is a registry database (``ingested``: with commits), else a
    clear error. ``writable``: also refuse a read-only database, saying why it must be
    written."""
    path = Path(db_path)
    kind, tables = inspect_db(path)
    hint = INGEST_HINT.format(db=path)
    if kind == MISSING:
        raise click.ClickException(f"{path}: no such database ({hint})")
    if kind == FOLDER:
        raise click.ClickException(f"{path} is a folder, not a database file")
    if kind == NOT_SQLITE:
        raise click.ClickException(f"{path} is not a SQLite database (not an aureacore-db "
                                   "registry); check --db")
    if kind == FOREIGN:
        raise _foreign(path, tables)
    if ingested and kind in (EMPTY, NOT_INGESTED):
        raise click.ClickException(f"{path} holds no ingested commits yet ({hint})")
    if writable:
        require_writable(path, writable)
    return path


def require_new_or_registry(db_path: str | os.PathLike, why: str) -> Path:
    """``db_path`` if a registry may be created or updated there (for ingest, sync and
    register): a missing file in an existing folder, an empty file, or a registry."""
    path = Path(db_path)
    kind, tables = inspect_db(path)
    if kind == MISSING:
        folder = path.parent
        if not folder.exists():
            raise click.ClickException(
                f"{path}: folder {folder} does not exist; create it first")
        if not folder.is_dir():
            raise click.ClickException(f"{path}: {folder} is not a folder")
    elif kind == FOLDER:
        raise click.ClickException(f"{path} is a folder; give a database file, "
                                   f"e.g. --db {path / 'registry.db'}")
    elif kind == NOT_SQLITE:
        raise click.ClickException(f"{path} exists and is not a SQLite database; refusing "
                                   "to overwrite it (choose another --db)")
    elif kind == FOREIGN:
        raise _foreign(path, tables)
    require_writable(path, why)
    return path


def check_source(repo: str | os.PathLike, db: Path, branch: str, *,
                 need_commits: bool = True) -> None:
    """Refuse a source that cannot be ingested before the database is touched: a
    missing path, a folder that is not a Git repository, a repository without commits
    or without ``branch`` (``need_commits``), or another repository than the one the
    database holds (ingesting it would delete that history)."""
    import pygit2

    from .db import get_meta
    from .gitsource import SourceError, branch_tip, is_url, open_source
    from .urls import public_url

    repo = str(repo)
    local = file_url_path(repo)
    if local is not None:
        shown = public_url(repo)
        if not local.exists():
            raise click.ClickException(f"{shown}: no such repository ({local} does not exist)")
        if pygit2.discover_repository(str(local)) is None:
            raise click.ClickException(f"{shown}: not a Git repository")
        return  # cloned by the ingest itself, which then checks the branch
    if is_url(repo):
        return
    try:
        git = open_source(repo, db, branch)  # a local path: opened, never written
        if not need_commits:
            pass
        elif git.head_is_unborn and not list(git.branches):
            raise click.ClickException(f"{repo}: the repository has no commits yet; "
                                       "nothing to ingest")
        elif branch_tip(git, branch) is None:
            raise click.ClickException(f"{repo}: branch {branch!r} has no commits yet")
    except SourceError as exc:
        raise click.ClickException(str(exc)) from exc
    if inspect_db(db)[0] != REGISTRY:
        return
    conn = open_read_only(db)
    try:
        recorded = get_meta(conn, "repo_path"), get_meta(conn, "complete_tip")
    except sqlite3.Error:
        return
    finally:
        conn.close()
    here = str(Path(git.workdir or git.path).resolve())
    old_path, old_tip = recorded
    if old_path and old_tip and old_path != here and git.get(old_tip) is None:
        raise click.ClickException(
            f"{db} holds the history of {old_path}, which {repo} does not share; "
            "ingesting it would replace that history. Use another --db.")


def file_url_path(source: str) -> Path | None:
    """The local path of a ``file://`` URL (None for any other source)."""
    parsed = urlparse(source)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))
