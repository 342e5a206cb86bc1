"""What a write would do to the branch's statuses, computed before it is made.

One function, :func:`preview_write`, used by every write (``rollback``, ``register``
and ``promote``, on whichever branch it writes): it builds the
:class:`~aureacore_db.tree.TreeState` of the branch tip (the same tree checks ingest
runs), applies the candidate file changes, and compares
the verdicts. The result lists the services whose status the write changes: which it
breaks (now ERROR), which it fixes, and why.

Given the database (``db``), the tip's state is the one stored for the environment whose
recorded tip it is (:func:`~aureacore_db.envstate.stored_state`), kept until the next
ingest: the preview then validates only the services the write can affect (the written
ones, their dependents, cycles through them), as an incremental ingest does, with the
same answer as the whole tree's.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pygit2

from . import envstate
from .names import ERROR
from .tree import BlobReader, Step, TreeState, Verdict
from .validation import Problem


@dataclass(frozen=True)
class StatusChange:
    """One service whose status the write changes."""

    service_id: str
    before: str | None  # None: not declared before the write
    after: str | None  # None: no longer declared after it
    reason: str
    written: bool = False  # the service whose file the write changes

    @property
    def breaks(self) -> bool:
        return self.after == ERROR and self.before != ERROR

    @property
    def fixes(self) -> bool:
        return self.before == ERROR and self.after not in (ERROR, None)

    def line(self) -> str:
        """``ns/name: CONFIGURED -> ERROR (reason)``."""
        arrow = f"{self.before or 'absent'} -> {self.after or 'absent'}"
        return f"{self.service_id}: {arrow}" + (f" ({self.reason})" if self.reason else "")

    def as_dict(self) -> dict[str, Any]:
        return {"service_id": self.service_id, "before": self.before, "after": self.after,
                "reason": self.reason, "written": self.written, "breaks": self.breaks,
                "fixes": self.fixes}


@dataclass
class Preview:
    """Statuses the branch would have after a write, against those it has now."""

    base: str | None  # the branch tip the preview was computed on
    subject: str | None  # the service being written, if one
    changes: list[StatusChange] = field(default_factory=list)
    subject_after: str | None = None  # the written service's status after the write
    subject_reason: str = ""
    # every written service (several for a promotion) -> its status after the write
    written_after: dict[str, str | None] = field(default_factory=dict)
    candidate: TreeState | None = field(default=None, repr=False, compare=False)
    step: Step | None = field(default=None, repr=False, compare=False)

    @property
    def breaks(self) -> list[StatusChange]:
        """Other services the write puts into ERROR."""
        return [c for c in self.changes if c.breaks and not c.written]

    @property
    def fixes(self) -> list[StatusChange]:
        """Services in ERROR that the write repairs."""
        return [c for c in self.changes if c.fixes]

    def as_dict(self) -> dict[str, Any]:
        return {"base": self.base, "subject": self.subject,
                "subject_after": self.subject_after, "subject_reason": self.subject_reason,
                "written_after": dict(self.written_after),
                "changes": [c.as_dict() for c in self.changes],
                "breaks": [c.service_id for c in self.breaks],
                "fixes": [c.service_id for c in self.fixes]}


def tip_state(repo: pygit2.Repository, tip: str | None) -> TreeState:
    """The :class:`TreeState` of a commit (every service file read once)."""
    state = TreeState(BlobReader(repo))
    if tip is not None:
        state.advance(None, repo[tip].peel(pygit2.Commit).tree)
    return state


STORED_STATES = 2  # tip states kept (one per environment tip previewed lately)
_stored: OrderedDict[tuple, tuple[TreeState | None, threading.Lock]] = OrderedDict()
_stored_lock = threading.Lock()


def _db_file(db: Any) -> Path:
    if isinstance(db, (str, os.PathLike)):
        return Path(db)
    conn = getattr(db, "conn", db)
    return Path(conn.execute("select file from pragma_database_list where name = 'main'"
                             ).fetchone()[0])


@contextmanager
def stored_tip_state(db: Any, repo: pygit2.Repository, tip: str) -> Iterator[TreeState | None]:
    """The stored state of commit ``tip`` (:func:`envstate.stored_state`; None when no
    environment's recorded tip is ``tip``, or the database cannot say), built once per
    ingest and kept for the next previews; used by one caller at a time (its reader and
    lazily read configs are shared), and not to be changed (copy it)."""
    try:
        path = _db_file(db)
        probe = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            key = (envstate.fingerprint(probe), repo.path, tip)
        finally:
            probe.close()
    except sqlite3.Error:  # not readable as a registry: the whole tree it is
        yield None
        return
    with _stored_lock:
        entry = _stored.get(key)
        if entry is None:
            entry = _stored[key] = (None, threading.Lock())
            while len(_stored) > STORED_STATES:
                _stored.popitem(last=False)
        _stored.move_to_end(key)
    with entry[1]:
        state = _stored.get(key, entry)[0]
        if state is None:
            # its own connection: the state looks up a service's last readable config
            # when asked, from whichever thread holds the lock then
            conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True,
                                   check_same_thread=False)
            try:
                state = envstate.stored_state(conn, repo, tip)
            except sqlite3.Error:  # e.g. a database from before environments
                state = None
            with _stored_lock:
                if key in _stored:
                    _stored[key] = (state, entry[1])
        yield state


def candidate_tree(repo: pygit2.Repository, base: pygit2.Tree | None,
                   files: Mapping[str, bytes | None]) -> pygit2.Oid:
    """``base`` with ``files`` written in (bytes) or removed (None); objects go to the
    object database, nothing else changes. Only the folders on the written paths are
    rebuilt (an executable file stays executable; a folder left empty goes). A path that
    is not UTF-8 (pygit2's tree builder takes text names only) goes through a whole
    index instead (:func:`index_tree`)."""
    if not all(_utf8(rel) for rel in files):
        return index_tree(repo, base, files)
    nested: dict[str, Any] = {}
    for rel, data in files.items():
        *folders, name = rel.split("/")
        node = nested
        for folder in folders:
            node = node.setdefault(folder, {})
            if not isinstance(node, dict):
                raise ValueError(f"{rel!r} appears as both a file and a directory")
        if isinstance(node.get(name), dict):
            raise ValueError(f"{rel!r} appears as both a file and a directory")
        node[name] = data
    found = _rebuilt(repo, base, nested, "")
    return found if found is not None else repo.TreeBuilder().write()


def index_tree(repo: pygit2.Repository, base: pygit2.Tree | None,
               files: Mapping[str, bytes | None]) -> pygit2.Oid:
    """:func:`candidate_tree` through an index of the whole tree."""
    index = pygit2.Index()
    if base is not None:
        index.read_tree(base)
    for rel, data in files.items():
        if data is None:
            if rel in index:
                index.remove(rel)
            continue
        mode = pygit2.GIT_FILEMODE_BLOB
        if rel in index and index[rel].mode == pygit2.GIT_FILEMODE_BLOB_EXECUTABLE:
            mode = pygit2.GIT_FILEMODE_BLOB_EXECUTABLE
        index.add(pygit2.IndexEntry(rel, repo.create_blob(data), mode))
    return index.write_tree(repo)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _rebuilt(repo: pygit2.Repository, tree: pygit2.Tree | None, changes: dict[str, Any],
             where: str) -> pygit2.Oid | None:
    """``tree`` (None: a new folder) with ``changes`` made; None when it ends up empty."""
    builder = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
    for name, change in sorted(changes.items()):
        old = tree[name] if tree is not None and name in tree else None
        is_folder = old is not None and old.filemode == pygit2.GIT_FILEMODE_TREE
        if isinstance(change, dict):
            if old is not None and not is_folder:
                raise ValueError(f"{where + name!r} appears as both a file and a directory")
            found = _rebuilt(repo, repo[old.id] if old is not None else None, change,
                             f"{where}{name}/")
            if found is not None:
                builder.insert(name, found, pygit2.GIT_FILEMODE_TREE)
            elif old is not None:
                builder.remove(name)
        elif change is None:
            if old is not None and not is_folder:
                builder.remove(name)
        else:
            if is_folder:
                raise ValueError(f"{where + name!r} appears as both a file and a directory")
            mode = pygit2.GIT_FILEMODE_BLOB
            if old is not None and old.filemode == pygit2.GIT_FILEMODE_BLOB_EXECUTABLE:
                mode = pygit2.GIT_FILEMODE_BLOB_EXECUTABLE
            builder.insert(name, repo.create_blob(change), mode)
    return builder.write() if len(builder) else None


def preview_write(repo: pygit2.Repository, tip: str | None,
                  files: Mapping[str, bytes | None], *, state: TreeState | None = None,
                  subject: str | Collection[str] | None = None, db: Any = None) -> Preview:
    """The status changes that writing ``files`` (path -> bytes, None to delete) on top
    of commit ``tip`` would cause.

    ``state`` is the tip's :class:`TreeState` when the caller has it (it is not changed);
    ``subject`` is the service being written (always listed when its status changes),
    or several (a promotion writes several at once; ``subject_after`` is then left
    unset and ``written_after`` gives each one's status).
    The candidate state and the tree step are kept on the result for callers that need
    more (registration checks the declared id and its own problems). ``db`` (the
    database, a path or a connection) lets the tip's state be the stored one
    (:func:`stored_tip_state`) when ``state`` is not given.
    """
    if state is None and db is not None and tip is not None:
        with stored_tip_state(db, repo, tip) as stored:
            if stored is not None:
                return _preview(repo, tip, files, stored, subject)
    return _preview(repo, tip, files, state, subject)


def _preview(repo: pygit2.Repository, tip: str | None, files: Mapping[str, bytes | None],
             state: TreeState | None, subject: str | Collection[str] | None) -> Preview:
    written = {subject} if isinstance(subject, str) else set(subject or ())
    single = subject if isinstance(subject, str) else None
    base_tree = repo[tip].peel(pygit2.Commit).tree if tip else None
    candidate = state.copy() if state is not None else tip_state(repo, tip)
    tree = repo[candidate_tree(repo, base_tree, files)]
    step = candidate.advance(base_tree, tree)
    preview = Preview(tip, single, candidate=candidate, step=step)
    for sid, new, old in step.verdicts:
        before, after = (old.status if old else None), (new.status if new else None)
        if before == after and sid not in written:
            continue
        if sid == single:
            preview.subject_after = after
            preview.subject_reason = _reason(old, new) if after == ERROR else ""
        if before == after:
            continue
        preview.changes.append(StatusChange(sid, before, after, _reason(old, new),
                                            written=sid in written))
    for sid in sorted(written):
        verdict = candidate.verdict_of(sid)
        preview.written_after[sid] = verdict.status if verdict is not None else None
    if single is not None and preview.subject_after is None:
        verdict = candidate.verdict_of(single)
        if verdict is not None:
            preview.subject_after = verdict.status
            preview.subject_reason = verdict.message if verdict.status == ERROR else ""
    preview.changes.sort(key=lambda c: (not c.breaks, not c.written, c.service_id))
    return preview


def _reason(old: Verdict | None, new: Verdict | None) -> str:
    """Why the status moved: the errors that appeared (or went away)."""
    if new is None:
        return "no longer declared"
    if old is None and new.status != ERROR:
        return "newly declared"
    before = set(old.problems) if old else set()
    after = set(new.problems)
    if new.status == ERROR:
        added = [_describe(p) for p in new.problems if p.severity == "error" and p not in before]
        return "; ".join(added) or new.message
    gone = [_describe(p) for p in (old.problems if old else ())
            if p.severity == "error" and p not in after]
    return ("no longer: " + "; ".join(gone)) if gone else ""


def _describe(problem: Problem) -> str:
    if problem.kind == "schema" and problem.json_path != "$":
        return f"{problem.json_path}: {problem.message}"
    return problem.message
