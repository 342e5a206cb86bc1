"""What a write would do to the branch's statuses, computed before it is made.

One function, :func:`preview_write`, used by every write (``rollback``, ``register``
and ``promote``, on whichever branch it writes): it builds the
:class:`~aureacore_db.tree.TreeState` of the branch tip (the same tree checks ingest
runs), applies the candidate file changes, and compares
the verdicts. The result lists the services whose status the write changes: which it
breaks (now ERROR), which it fixes, and why.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import pygit2

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


def candidate_tree(repo: pygit2.Repository, base: pygit2.Tree | None,
                   files: Mapping[str, bytes | None]) -> pygit2.Oid:
    """``base`` with ``files`` written in (bytes) or removed (None); objects go to the
    object database, nothing else changes."""
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


def preview_write(repo: pygit2.Repository, tip: str | None,
                  files: Mapping[str, bytes | None], *, state: TreeState | None = None,
                  subject: str | Collection[str] | None = None) -> Preview:
    """The status changes that writing ``files`` (path -> bytes, None to delete) on top
    of commit ``tip`` would cause.

    ``state`` is the tip's :class:`TreeState` when the caller has it (it is not changed);
    ``subject`` is the service being written (always listed when its status changes),
    or several (a promotion writes several at once; ``subject_after`` is then left
    unset and ``written_after`` gives each one's status).
    The candidate state and the tree step are kept on the result for callers that need
    more (registration checks the declared id and its own problems).
    """
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
        verdict = candidate.verdicts.get(sid)
        preview.written_after[sid] = verdict.status if verdict is not None else None
    if single is not None and preview.subject_after is None:
        verdict = candidate.verdicts.get(single)
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
