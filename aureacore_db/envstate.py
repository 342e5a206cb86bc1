"""The state of one environment (DESIGN §6): its mainline commits and its services.

"The state of environment E as of commit M" = the rows of commits on E's mainline
(``environment_commits``) with ``seq <= M.seq``; E's current services are its
``environment_services`` rows. Used by rollback, ``deps``, health and the registry, each
with an :class:`~aureacore_db.environments.Environment` from
:func:`~aureacore_db.environments.get_environment`.

:func:`stored_state` is the tree state of an environment's recorded tip as an incremental
ingest resumes it (from the stored rows, not by reading every config), for previews.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import pygit2

from . import revisions
from .environments import Environment
from .resume import no_gc, resume_state
from .revisions import Revision, UnknownCommit
from .tree import BlobReader, TreeState

_HEAD = revisions._HEAD  # HEAD, HEAD~3, HEAD^: counted along the environment's mainline
_STEP = revisions._STEP


def _conn(db: Any) -> sqlite3.Connection:
    return getattr(db, "conn", db)


def env_seq(db: Any, env: Environment, sha: str) -> int | None:
    """The ``seq`` of ``sha`` when it is on ``env``'s mainline (else None)."""
    row = _conn(db).execute("select seq from environment_commits where environment = ? "
                            "and commit_sha = ?", [env.name, sha]).fetchone()
    return row[0] if row else None


def env_tip(db: Any, env: Environment) -> Revision | None:
    """The newest commit of ``env``'s mainline (None before its first ingest)."""
    row = _conn(db).execute("select commit_sha, seq from environment_commits "
                            "where environment = ? order by seq desc limit 1",
                            [env.name]).fetchone()
    return Revision(row[0], row[1], True) if row else None


def resolve_in(db: Any, env: Environment, ref: str | None,
               repo_path: str | os.PathLike | None = None) -> Revision:
    """The ingested commit ``ref`` names, as :func:`revisions.resolve_commit` reads it but
    with ``env``'s mainline for "the tip" (empty) and ``HEAD~n``; ``mainline`` of the
    result says whether it is on ``env``'s mainline."""
    conn = _conn(db)
    if ref is not None and len(ref) > revisions.MAX_INPUT:
        return revisions.resolve_commit(conn, ref, repo_path)  # refused: too long
    text = (ref or "").strip()
    if not text:
        found = env_tip(conn, env)
        if found is None:
            raise UnknownCommit(f"environment {env.name!r} has no commits yet (run "
                                "aureacore-db ingest)")
        return found
    head = _HEAD.fullmatch(text)
    if head:
        back = sum(int(s.group(1) or 1) if s.group(0).startswith("~") else 1
                   for s in _STEP.finditer(head.group(1)))
        row = conn.execute("select commit_sha, seq from environment_commits where "
                           "environment = ? order by seq desc limit 1 offset ?",
                           [env.name, back]).fetchone()
        if row is None:
            raise UnknownCommit(f"unknown commit {text!r}: the mainline of {env.name} has "
                                f"fewer than {back + 1} commits")
        return Revision(row[0], row[1], True)
    found = revisions.resolve_commit(conn, text, repo_path)
    return Revision(found.sha, found.seq, env_seq(conn, env, found.sha) is not None)


def version_at(db: Any, env: Environment, service_id: str,
               at: Revision) -> dict[str, Any] | None:
    """:func:`revisions.version_at` along ``env``'s mainline."""
    return revisions.version_at(db, service_id, at, env.name)


def current_service(db: Any, env: Environment, service_id: str) -> dict[str, Any] | None:
    """``service_id``'s ``environment_services`` row in ``env`` (removed ones too; None
    when it was never there)."""
    cursor = _conn(db).execute("select * from environment_services where environment = ? "
                               "and service_id = ?", [env.name, service_id])
    row = cursor.fetchone()
    return dict(zip([d[0] for d in cursor.description], row, strict=True)) if row else None


def fingerprint(conn: sqlite3.Connection) -> tuple:
    """Changes whenever ingest writes: the database file, its last ingest run (and how
    that ended) and the newest commit (a run commits batch by batch)."""
    path = conn.execute("select file from pragma_database_list where name = 'main'"
                        ).fetchone()[0]
    has_runs = conn.execute("select 1 from sqlite_master where type = 'table' "
                            "and name = 'ingest_runs'").fetchone()
    run = conn.execute("select id, outcome, finished_at from ingest_runs "
                       "order by id desc limit 1").fetchone() if has_runs else None
    newest = conn.execute("select max(seq) from commits").fetchone()[0]
    return path, tuple(run or ()), newest


def stored_state(db: Any, repo: pygit2.Repository, tip: str) -> TreeState | None:
    """The :class:`~aureacore_db.tree.TreeState` of commit ``tip`` when it is an
    environment's recorded tip (else None), resumed as an incremental ingest resumes its
    parent (:func:`~aureacore_db.resume.resume_state`, :meth:`TreeState.resume`): files,
    ids and dependency edges from ``environment_services`` and ``dependencies``, cycles
    from the stored verdicts, all checked against the tree (a disagreement: every config
    is read).
    Verdicts are computed only when asked for (:meth:`TreeState.verdict_of`), so a
    preview costs the services a write can affect, not the tree. ``db`` stays in use
    (a service's last readable config is looked up when needed)."""
    known = resume_state(_conn(db), tip)
    if known is None:
        return None
    with no_gc():
        return TreeState.resume(BlobReader(repo), repo[tip].peel(pygit2.Commit).tree, known)
