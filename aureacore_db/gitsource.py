"""Open the config repository to ingest: a local path, or a URL cloned into a cache."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pygit2

from .gitpath import meta_text
from .timestamps import git_time_iso
from .urls import public_url, scrub, split_userinfo

URL = re.compile(r"^(file|https?|ssh|git|git\+ssh|ssh\+git)://")


class SourceError(Exception):
    """The repository or branch cannot be opened; the message says why (``exit_code``:
    that of the Git failure behind it, see :mod:`aureacore_db.cli_remote`)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def is_url(source: str) -> bool:
    """A remote URL (not a local path): ``scheme://...`` or scp-like ``user@host:path``."""
    from .credentials import is_scp_like

    return bool(URL.match(source)) or is_scp_like(source)


def clone_dir(source: str, db_path: Path) -> Path:
    """The one home of the working clone of a URL (or bare repository) made for a
    database: ``<db>.repos/<name>-<hash>`` beside it. Ingest reads it, and rollback
    and the registry commit in it and push to the URL. Keyed by the URL without its
    credentials: a rotated token, or none, finds the same clone."""
    source = public_url(source)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", source.rstrip("/").rsplit("/", 1)[-1]).strip("-")
    digest = hashlib.sha1(source.encode()).hexdigest()[:10]
    return db_path.parent / f"{db_path.name}.repos" / f"{slug or 'repo'}-{digest}"


def drop_bare_cache(target: Path) -> None:
    """Remove a bare cache clone an earlier release left at ``target`` (it is cloned
    again as a working clone; it held nothing that is not at the URL)."""
    if (target / "objects").is_dir() and (target / "HEAD").is_file() \
            and not (target / ".git").exists():
        shutil.rmtree(target)


def open_source(source: str, db_path: Path, branch: str,
                timeout: float = 60.0, also: list[str] | tuple = ()) -> pygit2.Repository:
    """Open ``source``; a URL is cloned once (a working clone, see :func:`clone_dir`) and
    fetched on later calls, its branch fast-forwarded when it can be (never losing
    local work). Network calls end by ``timeout`` seconds.

    The clone never keeps a credential: its origin URL has no userinfo (an old clone's
    is rewritten, see :meth:`GitProvider.scrub_origin`) and the URL's user name and
    password authenticate this run only; later runs take credentials from the
    environment or Git's credential helpers. The branches in ``also`` (other
    environments') are fetched too."""
    from .prefetch import bound_git_cache

    bound_git_cache()  # before this process opens a repository (see bound_git_cache)
    if not is_url(source):
        path = Path(source).expanduser()
        if not path.exists():
            raise SourceError(f"{source}: no such folder")
        found = pygit2.discover_repository(str(path))
        if found is None:
            raise SourceError(f"{source}: not a Git repository")
        return pygit2.Repository(found)
    from .credentials import ENV_TOKEN
    from .gitprovider import GitProvider, GitProviderError

    target = clone_dir(source, db_path)
    fetching = branch  # named in a "not found" error
    provider = GitProvider(source, branch, workdir=target, timeout=timeout)
    drop_bare_cache(target)
    try:
        if (target / ".git").exists():
            provider.scrub_origin()
            given = split_userinfo(source)
            repo = pygit2.Repository(str(target))
            if given.username is not None and repo.remotes["origin"].url != given.url:
                repo.remotes.set_url("origin", given.url)  # e.g. another SSH user name
            provider.fetch()
            for other in dict.fromkeys(also):
                if other != branch:
                    fetching = other
                    GitProvider(source, other, workdir=target, timeout=timeout).fetch()
            fetching = branch
            try:
                provider.fast_forward()  # so rollbacks start from the fetched tip
            except GitProviderError:
                pass  # local work, or another branch checked out: ingest reads origin's
        else:
            created = not target.parent.exists()
            try:
                provider.clone_repo()
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)  # no half clone left behind
                if created:
                    shutil.rmtree(target.parent, ignore_errors=True)
                raise
        return pygit2.Repository(str(target))
    except GitProviderError as exc:
        text = f"{exc} {exc.__cause__ or ''}".lower()
        if isinstance(exc.__cause__, KeyError) or "couldn't find remote ref" in text \
                or "reference 'refs/remotes/origin/" in text:
            raise SourceError(f"branch {fetching!r} not found at {public_url(source)}") \
                from None
        shown = public_url(source)
        why = _without_where(scrub(str(exc), source), shown, public_url(provider.git_url))
        if exc.exit_code == 3 and "?" in source.split("#", 1)[0]:
            why += ("; the URL's query string is not given to Git (Git servers take a "
                    f"token as the password: in the URL or in {ENV_TOKEN})")
        raise SourceError(f"cannot fetch {shown}: {why}", exc.exit_code) from None


def _without_where(message: str, *wheres: str) -> str:
    """``message`` without a leading ``[clone |fetch ]<where>[ failed]: `` (the caller
    names the remote once itself)."""
    for where in sorted(set(wheres), key=len, reverse=True):
        match = re.match(rf"(?:(?:clone|fetch) )?{re.escape(where)}(?: failed)?: ", message)
        if match:
            return message[match.end():]
    return message


def branch_tip(repo: pygit2.Repository, branch: str,
               remote_first: bool = False) -> pygit2.Commit | None:
    """The commit at the tip of ``branch`` (None for a branch with no commits yet);
    ``remote_first``: as last fetched from ``origin`` (a URL's clone), if known."""
    refs = [f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"]
    for ref in refs[::-1] if remote_first else refs:
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
    # a stack of commits, each flagged 1 once its parents are pushed (to be appended when
    # popped again): two flat stacks, not a pair per entry, as the first-parent chain
    # stays on it (100,000 pairs were 5.6 MB of the main process's peak)
    stack: list[pygit2.Oid] = [tip]
    expanded = bytearray(b"\0")
    while stack:
        oid = stack.pop()
        if expanded.pop():
            order.append(oid)
            continue
        if oid in seen:
            continue
        seen.add(oid)
        if known is not None and known(str(oid)):
            continue
        stack.append(oid)
        expanded.append(1)
        for parent in reversed(repo[oid].parent_ids):
            if parent not in seen:
                stack.append(parent)
                expanded.append(0)
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


def forget_packs(repo: pygit2.Repository) -> None:
    """Let go of the repository's open pack files and their index mappings (libgit2
    opens them again when next needed). Looking up every commit of a long history maps
    pages all over the pack's index — 24 MB at 100,000 commits, 2.7 MB at 10,000 — which
    then count in the process's resident memory although nothing reads them again."""
    repo.free()


def commit_meta(commit: pygit2.Commit) -> dict[str, str]:
    """Author, committer and message of a commit as storable text (never an error):
    decoded with the commit's declared encoding when Python knows it, else UTF-8 with
    replacement (:func:`~aureacore_db.gitpath.meta_text`); dates as
    :func:`~aureacore_db.timestamps.git_time_iso` (any year)."""
    encoding = commit.message_encoding
    author, committer = commit.author, commit.committer
    return {
        "author_name": meta_text(author.raw_name, encoding),
        "author_email": meta_text(author.raw_email, encoding),
        "authored_at": git_time_iso(author.time),
        "committer_name": meta_text(committer.raw_name, encoding),
        "committer_email": meta_text(committer.raw_email, encoding),
        "message": meta_text(commit.raw_message, encoding),
    }


@dataclass(frozen=True)
class CommitInfo:
    """What the walk reads of a commit, read once: by a prefetch worker, which reads the
    commit anyway to diff it, so that the main process looks no commit up as it walks
    (each lookup maps pages of the pack's index, which grows with history)."""

    id: str  # the sha, as ``str(commit.id)`` (``id`` as a commit has)
    parents: tuple[str, ...]
    meta: dict[str, str]  # commit_meta()
    committed_at: str

    @classmethod
    def of(cls, commit: pygit2.Commit) -> CommitInfo:
        return cls(str(commit.id), tuple(str(p) for p in commit.parent_ids),
                   commit_meta(commit), git_time_iso(commit.commit_time))
