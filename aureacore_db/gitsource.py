"""Open the config repository to ingest: a local path, or a URL cloned into a cache."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pygit2

from .urls import public_url, scrub

URL = re.compile(r"^(file|https?|ssh|git)://")


class SourceError(Exception):
    """The repository or branch cannot be opened; the message says why."""


def is_url(source: str) -> bool:
    return bool(URL.match(source))


def cache_dir_for(source: str, db_path: Path) -> Path:
    """Where a URL is cloned: a folder beside the database, one per URL (without its
    credentials: a rotated token, or none, finds the same clone)."""
    source = public_url(source)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", source.rsplit("/", 1)[-1]).strip("-") or "repo"
    digest = hashlib.sha1(source.encode()).hexdigest()[:10]
    return db_path.parent / f"{db_path.name}.repos" / f"{slug}-{digest}"


def open_source(source: str, db_path: Path, branch: str) -> pygit2.Repository:
    """Open ``source``; a URL is cloned once (bare) and fetched on later calls."""
    if not is_url(source):
        path = Path(source).expanduser()
        if not path.exists():
            raise SourceError(f"{source}: no such folder")
        found = pygit2.discover_repository(str(path))
        if found is None:
            raise SourceError(f"{source}: not a Git repository")
        return pygit2.Repository(found)
    target = cache_dir_for(source, db_path)
    try:
        if (target / "HEAD").exists():
            repo = pygit2.Repository(str(target))
            if source != public_url(source) and repo.remotes["origin"].url != source:
                repo.remotes.set_url("origin", source)  # new credentials: Git needs them
            remote = repo.remotes["origin"]
            try:
                remote.fetch([f"+refs/heads/{branch}:refs/heads/{branch}"])
            except pygit2.GitError as exc:
                if "not found" in str(exc) or "couldn't find remote ref" in str(exc):
                    raise SourceError(f"branch {branch!r} not found at "
                                      f"{public_url(source)}") from exc
                raise
            return repo
        created = not target.parent.exists()
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            return pygit2.clone_repository(source, str(target), bare=True,
                                           checkout_branch=branch)
        except KeyError as exc:  # the branch does not exist there
            shutil.rmtree(target, ignore_errors=True)
            if created:
                shutil.rmtree(target.parent, ignore_errors=True)
            raise SourceError(f"branch {branch!r} not found at "
                              f"{public_url(source)}") from exc
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)  # no half clone left behind
            if created:
                shutil.rmtree(target.parent, ignore_errors=True)
            raise
    except (pygit2.GitError, KeyError, ValueError) as exc:
        raise SourceError(f"cannot fetch {public_url(source)}: "
                          f"{scrub(str(exc), source)}") from None


def branch_tip(repo: pygit2.Repository, branch: str) -> pygit2.Commit | None:
    """The commit at the tip of ``branch`` (None for a branch with no commits yet)."""
    for ref in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"):
        try:
            return repo.lookup_reference(ref).peel(pygit2.Commit)
        except (KeyError, pygit2.InvalidSpecError):
            continue
    if repo.head_is_unborn and not list(repo.branches.local):
        return None  # a repository with no commits yet
    names = ", ".join(sorted(repo.branches.local)) or "none"
    raise SourceError(f"branch {branch!r} not found (local branches: {names})")


def canonical_order(
    repo: pygit2.Repository, tip: pygit2.Oid, known: Callable[[str], bool] | None = None
) -> list[pygit2.Oid]:
    """Every commit reachable from ``tip``, parents first (skipping ``known`` ones and
    their ancestors).

    A commit comes right after its first parent's chain and after the commits its other
    parents bring in, so the order for a later tip extends the order for an earlier tip
    on its first-parent chain: an incremental run numbers commits as a full run would.
    """
    order: list[pygit2.Oid] = []
    seen: set[pygit2.Oid] = set()
    stack: list[tuple[pygit2.Oid, bool]] = [(tip, False)]
    while stack:
        oid, expanded = stack.pop()
        if expanded:
            order.append(oid)
            continue
        if oid in seen:
            continue
        seen.add(oid)
        if known is not None and known(str(oid)):
            continue
        stack.append((oid, True))
        for parent in reversed(repo[oid].parent_ids):
            if parent not in seen:
                stack.append((parent, False))
    return order


def first_parent_chain(repo: pygit2.Repository, tip: pygit2.Oid) -> set[pygit2.Oid]:
    """The mainline: ``tip`` and its first parents back to the root."""
    chain = set()
    oid: pygit2.Oid | None = tip
    while oid is not None:
        chain.add(oid)
        parents = repo[oid].parent_ids
        oid = parents[0] if parents else None
    return chain
