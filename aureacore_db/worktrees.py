"""A working tree on a given branch of a local repository, for writes on that branch.

The registry commits through a working tree (:class:`~aureacore_db.gitprovider.GitProvider`).
When a local repository has another branch checked out (``register --env staging`` while
``main`` is checked out), the write goes to a working tree that has the branch: one of
the repository's linked worktrees that has it checked out already, else a linked worktree
made for it beside the database (``git worktree list`` shows it; ``git worktree remove``
takes it away, and the next write makes it again). Ours sits on a detached HEAD between
writes, so the branch stays free for the user. The user's own working trees are never
switched or touched.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pygit2
from pygit2.enums import CheckoutStrategy


class WorktreeError(Exception):
    """No working tree can be had for the branch; the message says why."""


def on_branch(repo_path: str, branch: str) -> bool:
    """Whether the repository's own working tree has ``branch`` checked out (also true
    when the repository cannot be read: the caller's own errors say why)."""
    try:
        repo = pygit2.Repository(repo_path)
    except (pygit2.GitError, KeyError, ValueError):
        return True
    return repo.is_bare or _head_ref(repo) == f"refs/heads/{branch}"


def worktree_for(repo_path: str, branch: str, home: Path) -> Path:
    """A linked worktree of ``repo_path`` with ``branch`` checked out: an existing one,
    else ``home`` (made by :func:`ensure_worktree`)."""
    repo = pygit2.Repository(repo_path)
    ref = f"refs/heads/{branch}"
    for name in repo.list_worktrees():
        path = Path(repo.lookup_worktree(name).path)
        if path.resolve() != home.resolve() and _linked_head(path) == ref:
            return path
    return home


def ensure_worktree(repo_path: str, branch: str, path: Path) -> None:
    """Make our linked worktree at ``path`` if it is missing. It is kept on a detached
    HEAD between writes (:func:`on_branch_while`), so the branch stays free: the user can
    check it out, and pushes to it are accepted."""
    if (path / ".git").exists():
        return
    repo = pygit2.Repository(repo_path)
    ref = _branch(repo, repo_path, branch)
    name = _name(branch, path)
    if name in repo.list_worktrees():
        repo.lookup_worktree(name).prune(True)  # its folder is gone
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        repo.add_worktree(name, str(path), ref)
    except (pygit2.GitError, ValueError) as exc:
        raise WorktreeError(f"cannot make a working tree of branch {branch!r} at "
                            f"{path}: {exc}") from None
    linked = pygit2.Repository(str(path))
    linked.set_head(linked.head.target)


@contextmanager
def on_branch_while(repo_path: str, branch: str, path: Path) -> Iterator[None]:
    """Put our worktree at ``path`` on ``branch``, with its files as at the branch's tip
    (the branch may have moved since: a push, a rollback, a promotion), for the time of
    one write; then detach it again."""
    repo = pygit2.Repository(repo_path)
    ref = _branch(repo, repo_path, branch)
    linked = pygit2.Repository(str(path))
    try:
        linked.set_head(ref.name)
    except pygit2.GitError as exc:  # checked out elsewhere meanwhile
        raise WorktreeError(f"cannot put {path} on branch {branch!r}: {exc}") from None
    try:
        linked.checkout_head(strategy=CheckoutStrategy.FORCE)
        yield
    finally:
        linked = pygit2.Repository(str(path))
        if not linked.head_is_unborn:
            linked.set_head(linked.head.target)


def _branch(repo: pygit2.Repository, repo_path: str, branch: str) -> pygit2.Reference:
    ref = repo.references.get(f"refs/heads/{branch}")
    if ref is None:
        raise WorktreeError(f"{repo_path}: there is no branch {branch!r} to write on")
    return ref


def _head_ref(repo: pygit2.Repository) -> str | None:
    head = repo.lookup_reference("HEAD")
    return head.target if isinstance(head.target, str) else None


def _linked_head(path: Path) -> str | None:
    try:
        return _head_ref(pygit2.Repository(str(path)))
    except (pygit2.GitError, KeyError, ValueError):
        return None


def _name(branch: str, path: Path) -> str:
    """The worktree's name in ``.git/worktrees``: readable, unique per folder."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", branch).strip("-") or "branch"
    return f"aureacore-{slug}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
