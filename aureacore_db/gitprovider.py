"""Git access for the registry, with pygit2 only: clone, pull, commit, push.

The provider works on a local working clone (a non-bare repository whose ``HEAD`` is
the branch). ``repo_url`` may be that clone itself (a local path with no remote to
talk to), or a local path / ``file://`` / ``git://`` / ``https://`` URL to clone from.

Safety rules:

* **Branch updates are compare-and-swap.** The ref is changed under Git's own lock
  file protocol (``refs/heads/<branch>.lock``, created exclusively, the value checked,
  then renamed into place), so a concurrent ``git commit`` or another provider can
  never be overwritten silently: the loser gets :class:`RefConflict`.
* **Pull never clobbers uncommitted work**: it fast-forwards only, checking out the
  new tree with libgit2's *safe* strategy, which refuses to overwrite local changes.
* **Credentials stay in memory.** libgit2 only ever gets URLs without userinfo (it
  writes them into ``.git/config``, reflogs and ``FETCH_HEAD``); the user name and
  password of ``repo_url`` reach it through the credentials callback of each run. A
  clone whose origin URL still carries them (made by an earlier release) is cleaned
  before its next fetch or push (:meth:`GitProvider.scrub_origin`).
* **Network operations have a deadline.** libgit2 has no per-call timeout for every
  transport, so fetch and push run in a worker thread that the caller waits for with
  a deadline; the socket timeouts of libgit2 are set too, and the transfer callbacks
  abort the operation once the deadline passed. The caller always gets
  :class:`GitTimeout` at the deadline.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pygit2
from pygit2.enums import CredentialType

from .credentials import (
    ENV_CA_BUNDLE,
    ENV_SSH_KEY,
    ENV_TOKEN,
    ENV_USERNAME,
    Credentials,
    HostKeyError,
    default_ssh_user,
    known_host,
    parse_remote,
)
from .gitsource import is_url
from .urls import public_url, scrub, split_userinfo, without_userinfo

DEFAULT_TIMEOUT = 60.0
DEFAULT_AUTHOR = ("aureacore-db", "aureacore-db@localhost")
_SIGNATURE = re.compile(r"^\s*(?P<name>[^<]*?)\s*<(?P<email>[^>]*)>\s*$")
_UNREACHABLE = ("failed to connect", "failed to resolve", "could not resolve",
                "connection refused", "timed out", "network is unreachable",
                "no route to host", "failed to start ssh session", "name or service")
_NOT_FOUND = ("does not appear to be a git repository", "not exported", "no such file",
              "not found", "could not find repository", "status code: 404",
              "repository not found")
_AUTH = ("authentication", "too many redirects or authentication replays",
         "status code: 401", "status code: 403", "permission denied")
_REJECTED = ("non-fastforwardable", "non-fast-forward", "not present locally",
             "fetch first", "rejected")

T = TypeVar("T")


class GitProviderError(Exception):
    """A Git operation failed; the message says what and why. ``exit_code`` is the
    CLI's exit status for it (documented in the README)."""

    exit_code = 1


class RemoteUnreachable(GitProviderError):
    """The remote cannot be reached (connection refused, unknown host, ...)."""

    exit_code = 8


class TransferFailed(GitProviderError):
    """The connection broke during a fetch or push (e.g. the server died)."""


class GitTimeout(GitProviderError):
    """A network operation did not finish before its deadline."""

    exit_code = 9


class PushRejected(GitProviderError):
    """The remote refused the push (the branch moved: not a fast-forward)."""

    exit_code = 11


class RefConflict(GitProviderError):
    """The branch changed (or is locked) while we were updating it."""


class DirtyWorktree(GitProviderError):
    """Pulling would overwrite uncommitted changes in the working tree."""


class Diverged(GitProviderError):
    """Local and remote branches both have commits the other lacks."""

    exit_code = 12


class AuthenticationFailed(GitProviderError):
    """The remote refused the credentials (or there were none to offer)."""

    exit_code = 3


class HostKeyUnknown(GitProviderError):
    """The SSH host is not in known_hosts (and accepting new keys was not asked for)."""

    exit_code = 4


class HostKeyChanged(GitProviderError):
    """The SSH host presented another key than the one in known_hosts."""

    exit_code = 5


class CertificateUntrusted(GitProviderError):
    """The HTTPS server's certificate is not signed by a trusted CA."""

    exit_code = 6


class RepositoryNotFound(RemoteUnreachable):
    """The server answered, but has no such repository (or hides it from us)."""

    exit_code = 7


@dataclass(frozen=True)
class PullResult:
    """Outcome of :meth:`GitProvider.pull_changes`."""

    old_tip: str | None
    new_tip: str | None
    fetched: bool  # False when there is no remote
    ahead: int = 0  # local commits not on the remote (to push)

    @property
    def changed(self) -> bool:
        return self.old_tip != self.new_tip


def signature(author: str | pygit2.Signature | None,
              repo: pygit2.Repository | None = None) -> pygit2.Signature:
    """A signature from ``"Name <email>"``, a Signature, or the repo's user config."""
    if isinstance(author, pygit2.Signature):
        return author
    if author:
        match = _SIGNATURE.match(author)
        if not match:
            raise ValueError(f"author {author!r} is not like 'Name <email>'")
        return pygit2.Signature(match["name"] or match["email"], match["email"])
    if repo is not None:
        try:
            return repo.default_signature
        except (KeyError, pygit2.GitError):
            pass
    return pygit2.Signature(*DEFAULT_AUTHOR)


class _Callbacks(pygit2.RemoteCallbacks):
    """Credentials and host checks for one operation; abort once the deadline passed;
    remember per-ref push rejections and why a connection was refused."""

    def __init__(self, cancel: threading.Event,
                 progress: Callable[[pygit2.remotes.TransferProgress], None] | None,
                 credentials: Credentials | None = None, url: str = "") -> None:
        super().__init__()
        self.cancel = cancel
        self.progress = progress
        self.creds = credentials or Credentials.from_env()
        self.url = url
        self.target = parse_remote(url)
        self.rejected: dict[str, str] = {}
        self.refusal: GitProviderError | None = None
        self._asked: set[str] = set()

    def _check(self) -> None:
        if self.cancel.is_set():
            raise GitTimeout("deadline passed")

    def credentials(self, url: str, username_from_url: str | None,
                    allowed_types: CredentialType) -> Any:
        shown = public_url(url)
        if allowed_types & CredentialType.USERNAME:
            return pygit2.Username(username_from_url or default_ssh_user())
        if allowed_types & CredentialType.SSH_KEY:
            user = username_from_url or default_ssh_user()
            kind = f"the key {self.creds.ssh_key}" if self.creds.ssh_key else "ssh-agent's keys"
            if "ssh" in self._asked:
                raise self._refuse(AuthenticationFailed(
                    f"{shown}: authentication refused for user {user!r} with {kind}; "
                    f"check the key is authorized on the server (--ssh-key / "
                    f"{ENV_SSH_KEY}, or add it to ssh-agent)"))
            self._asked.add("ssh")
            if self.creds.ssh_key is None and not os.environ.get("SSH_AUTH_SOCK"):
                raise self._refuse(AuthenticationFailed(
                    f"{shown}: no SSH key: no ssh-agent is running (SSH_AUTH_SOCK is not "
                    f"set); pass --ssh-key FILE or set {ENV_SSH_KEY}"))
            try:
                return self.creds.for_ssh(user)
            except FileNotFoundError as exc:
                raise self._refuse(AuthenticationFailed(f"{shown}: {exc}")) from None
        if allowed_types & CredentialType.USERPASS_PLAINTEXT:
            if "https" in self._asked:
                raise self._refuse(AuthenticationFailed(
                    f"{shown}: authentication refused; check the token in {ENV_TOKEN} "
                    f"(and {ENV_USERNAME} where the host needs a user name), the user and "
                    "password in the URL, or the credentials of your git credential "
                    "helper"))
            self._asked.add("https")
            found = self.creds.for_https(url, username_from_url)
            if found is None:
                raise self._refuse(AuthenticationFailed(
                    f"{shown}: the server asks for credentials and there are none; set "
                    f"{ENV_TOKEN} (and {ENV_USERNAME} if the host needs one) or configure "
                    "a git credential helper"))
            return found
        raise self._refuse(AuthenticationFailed(
            f"{shown}: the server asks for a kind of credentials aureacore-db cannot give "
            f"({allowed_types!r})"))

    def certificate_check(self, certificate: None, valid: bool, host: bytes) -> bool:
        if valid:
            return True
        name = host.decode(errors="replace")
        remote = self.target
        if remote is not None and remote.scheme in ("ssh", "git+ssh", "ssh+git"):
            where = self.creds.known_hosts_file
            if known_host(where, remote):
                self._refuse(HostKeyChanged(
                    f"{remote.known_hosts_name}: the SSH host key has CHANGED from the one "
                    f"in {where}; this may be an attack (or the server was reinstalled). "
                    "Check the new key with the server's owner, then replace its line in "
                    "known_hosts"))
            else:
                self._refuse(HostKeyUnknown(
                    f"{remote.known_hosts_name}: unknown SSH host (not in {where}); "
                    "refusing to connect. Add its key to known_hosts (ssh-keyscan, or "
                    "connect once with ssh), or pass --accept-new-host-key to record it"))
        else:
            self._refuse(CertificateUntrusted(
                f"{name}: the server's TLS certificate is not trusted (not signed by a "
                f"known CA, expired, or for another host); pass --ca-bundle FILE or set "
                f"{ENV_CA_BUNDLE} to the CA that signed it"))
        return False

    def _refuse(self, error: GitProviderError) -> GitProviderError:
        if self.refusal is None:
            self.refusal = error
        return error

    def transfer_progress(self, stats: Any) -> None:
        self._check()
        if self.progress is not None:
            self.progress(stats)

    def sideband_progress(self, string: str) -> None:
        self._check()

    def push_transfer_progress(self, objects_pushed: int, total_objects: int,
                               bytes_pushed: int) -> None:
        self._check()

    def push_update_reference(self, refname: str, message: str | None) -> None:
        if message:
            self.rejected[refname] = message


class GitProvider:
    """A working clone of ``repo_url``'s ``branch``, driven with pygit2."""

    def __init__(self, repo_url: str | os.PathLike[str], branch: str = "main", *,
                 workdir: str | os.PathLike[str] | None = None, remote: str = "origin",
                 timeout: float = DEFAULT_TIMEOUT,
                 progress: Callable[[Any], None] | None = None,
                 credentials: Credentials | None = None) -> None:
        self.repo_url = str(repo_url)
        split = split_userinfo(self.repo_url)
        self.git_url = split.url  # what libgit2 gets: no userinfo, no query
        self._login = (split.username, split.password)  # in memory only
        self.credentials = credentials  # None: read the environment at each call
        self.branch = branch
        self.remote_name = remote
        self.timeout = timeout
        self.progress = progress
        self.ref = f"refs/heads/{branch}"
        if workdir is None:
            if is_url(self.repo_url):
                raise ValueError("a URL needs a workdir to clone into")
            workdir = self.repo_url  # the local repository is the working clone
        self.workdir = Path(workdir).expanduser().resolve()

    # -- opening --------------------------------------------------------------
    def clone_repo(self) -> Path:
        """Clone into :attr:`workdir` unless a repository is there; return the workdir."""
        if (self.workdir / ".git").exists():
            return self.workdir
        if self.workdir == Path(self.repo_url).expanduser().resolve():
            raise GitProviderError(f"{self.workdir}: not a Git working tree")
        self.workdir.parent.mkdir(parents=True, exist_ok=True)
        url, branch, workdir = self.git_url, self.branch, str(self.workdir)

        def clone(callbacks: _Callbacks) -> None:
            pygit2.clone_repository(url, workdir, checkout_branch=branch,
                                    callbacks=callbacks)

        try:
            self._network("clone", clone)
        except GitProviderError:
            _remove_tree(self.workdir)
            raise
        return self.workdir

    def open(self) -> pygit2.Repository:
        """The working clone (a fresh object: pygit2 repositories are not thread-safe)."""
        try:
            repo = pygit2.Repository(str(self.workdir))
        except pygit2.GitError as exc:
            raise GitProviderError(f"{self.workdir}: not a Git repository ({exc})") from exc
        if repo.is_bare:
            raise GitProviderError(f"{self.workdir}: a bare repository has no working tree")
        return repo

    def scrub_origin(self) -> None:
        """Rewrite the remote's URL without userinfo if it has some (a clone of a URL made
        by an earlier release; a user's own repository is left as it is), and (best
        effort) the reflogs and ``FETCH_HEAD`` that name it. Its user name and password
        are kept in memory for this run only, unless ``repo_url`` brought its own."""
        try:
            repo = pygit2.Repository(str(self.workdir))
            url = repo.remotes[self.remote_name].url or ""
        except (KeyError, pygit2.GitError):
            return
        split = split_userinfo(url)
        if split.url == url:
            return
        repo.remotes.set_url(self.remote_name, split.url)
        if self._login == (None, None):
            self._login = (split.username, split.password)
        git_dir = Path(repo.path)
        logs = git_dir / "logs"
        files = [f for f in logs.rglob("*") if f.is_file()] if logs.is_dir() else []
        for path in [*files, git_dir / "FETCH_HEAD"]:
            _rewrite(path, without_userinfo)

    @property
    def git_dir(self) -> Path:
        return Path(self.open().path)

    def has_remote(self) -> bool:
        repo = self.open()
        return self.remote_name in {r.name for r in repo.remotes}

    def tip(self, repo: pygit2.Repository | None = None) -> str | None:
        """The branch's commit id (None before the first commit)."""
        repo = repo or self.open()
        return _read_ref(repo, self.ref)

    def _check_head(self, repo: pygit2.Repository) -> None:
        head = repo.lookup_reference("HEAD")
        if head.type != pygit2.enums.ReferenceType.SYMBOLIC or head.target != self.ref:
            where = head.target if isinstance(head.target, str) else "a detached HEAD"
            raise GitProviderError(f"{self.workdir}: the working tree is on {where}, "
                                   f"not {self.ref}")

    # -- pull -----------------------------------------------------------------
    def pull_changes(self) -> PullResult:
        """Fetch the branch and fast-forward to it (no remote: nothing to do)."""
        repo = self.open()
        self._check_head(repo)
        if not self.has_remote():
            old = self.tip(repo)
            return PullResult(old, old, False)
        self.fetch()
        return self.fast_forward()

    def fast_forward(self) -> PullResult:
        """Fast-forward the branch (and the working tree) to what was last fetched."""
        repo = self.open()
        self._check_head(repo)
        old = self.tip(repo)
        remote_ref = f"refs/remotes/{self.remote_name}/{self.branch}"
        theirs = _read_ref(repo, remote_ref)
        if theirs is None or theirs == old:
            return PullResult(old, old, True)
        if old is not None and repo.descendant_of(old, theirs):
            ahead, _ = repo.ahead_behind(old, theirs)
            return PullResult(old, old, True, ahead)
        if old is not None and not repo.descendant_of(theirs, old):
            raise self._diverged(repo, old, theirs, "cannot fast-forward")
        with self._ref_update(repo, old) as commit_to:
            target = repo[theirs].peel(pygit2.Commit)
            try:
                repo.checkout_tree(target.tree, strategy=pygit2.enums.CheckoutStrategy.SAFE)
            except pygit2.GitError as exc:
                raise DirtyWorktree(f"pull would overwrite uncommitted changes in "
                                    f"{self.workdir}: {exc}; commit or discard them "
                                    "first") from exc
            commit_to(theirs, f"pull: fast-forward to {theirs[:12]}")
        return PullResult(old, theirs, True)

    def fetch(self) -> None:
        """Fetch the branch into ``refs/remotes/<remote>/<branch>`` (with a deadline)."""
        workdir, name = str(self.workdir), self.remote_name
        spec = f"+refs/heads/{self.branch}:refs/remotes/{name}/{self.branch}"

        def fetch(callbacks: _Callbacks) -> None:
            pygit2.Repository(workdir).remotes[name].fetch([spec], callbacks=callbacks)

        self._network("fetch", fetch)

    # -- outgoing commits: push, rebasing onto a moved remote ------------------------
    def _remote_tip(self, repo: pygit2.Repository) -> str | None:
        return _read_ref(repo, f"refs/remotes/{self.remote_name}/{self.branch}")

    def _only_on(self, repo: pygit2.Repository, tip: str, other: str | None) -> list[str]:
        """Commits reachable from ``tip`` but not from ``other``, oldest first."""
        walker = repo.walk(tip, pygit2.enums.SortMode.TOPOLOGICAL |
                           pygit2.enums.SortMode.REVERSE)
        if other is not None:
            walker.hide(other)
        return [str(c.id) for c in walker]

    def _diverged(self, repo: pygit2.Repository, ours: str, theirs: str,
                  why: str) -> Diverged:
        def listed(shas: list[str]) -> str:
            shown = [f"{sha[:12]} {repo[sha].peel(pygit2.Commit).message.splitlines()[0]!r}"
                     if repo[sha].peel(pygit2.Commit).message else sha[:12]
                     for sha in shas[:10]]
            return "; ".join(shown) + (f"; and {len(shas) - 10} more" if len(shas) > 10
                                       else "")

        local = self._only_on(repo, ours, theirs)
        remote = self._only_on(repo, theirs, ours)
        return Diverged(f"{self.branch} has diverged from {self.remote_name} ({why}): "
                        f"local commit(s) not pushed: {listed(local)}; remote commit(s) not "
                        f"here: {listed(remote)}. Nothing was lost: both sides are kept. "
                        "Merge or rebase them with git in the working clone "
                        f"{self.workdir}, then run aureacore-db push")

    def unpushed(self) -> list[str]:
        """Local commits not on the remote branch as last fetched (oldest first)."""
        if not self.has_remote():
            return []
        repo = self.open()
        tip = self.tip(repo)
        return self._only_on(repo, tip, self._remote_tip(repo)) if tip else []

    def push_pending(self) -> dict[str, str]:
        """Fetch, then bring local commits the remote lacks onto it: push them, first
        replayed onto the remote's new commits when the two sides touch different
        files (:class:`Diverged` naming both sides' commits otherwise; nothing moves).
        Returns the replayed commits' ids, old -> new (empty when none were replayed)."""
        if not self.has_remote():
            return {}
        self.fetch()
        repo = self.open()
        self._check_head(repo)
        ours, theirs = self.tip(repo), self._remote_tip(repo)
        if ours is None or ours == theirs:
            return {}
        mapping: dict[str, str] = {}
        if theirs is not None and not repo.descendant_of(ours, theirs):
            if repo.descendant_of(theirs, ours):
                self.fast_forward()
                return {}
            mapping = self._replay(repo, ours, theirs)
        self.push()
        return mapping

    def _replay(self, repo: pygit2.Repository, ours: str, theirs: str) -> dict[str, str]:
        """Rebuild the local-only commits onto ``theirs`` (different files only)."""
        base = repo.merge_base(ours, theirs)
        local = self._only_on(repo, ours, theirs)
        remote_files = _changed_files(repo, repo[base].peel(pygit2.Commit).tree if base
                                      else None, repo[theirs].peel(pygit2.Commit).tree)
        local_files: set[str] = set()
        for sha in local:
            commit = repo[sha].peel(pygit2.Commit)
            if len(commit.parents) > 1:
                raise self._diverged(repo, ours, theirs, "a local merge commit")
            parent = commit.parents[0].tree if commit.parents else None
            local_files |= _changed_files(repo, parent, commit.tree)
        both = sorted(local_files & remote_files)
        if both:
            raise self._diverged(repo, ours, theirs, "both sides changed "
                                 + ", ".join(both[:5]) + (" …" if len(both) > 5 else ""))
        mapping: dict[str, str] = {}
        parent_id = repo[theirs].peel(pygit2.Commit).id
        for sha in local:
            commit = repo[sha].peel(pygit2.Commit)
            merged = repo.merge_trees(commit.parents[0].tree if commit.parents else
                                      repo[repo.TreeBuilder().write()],
                                      repo[parent_id].peel(pygit2.Commit).tree, commit.tree)
            if merged.conflicts is not None:  # cannot happen with disjoint files
                raise self._diverged(repo, ours, theirs, "conflicting changes")
            tree = merged.write_tree(repo)
            parent_id = repo.create_commit(None, commit.author, commit.committer,
                                           commit.message, tree, [parent_id])
            mapping[sha] = str(parent_id)
        new_tip = str(parent_id)
        with self._ref_update(repo, ours) as commit_to:
            try:
                repo.checkout_tree(repo[new_tip].peel(pygit2.Commit).tree,
                                   strategy=pygit2.enums.CheckoutStrategy.SAFE)
            except pygit2.GitError as exc:
                raise DirtyWorktree(f"rebasing would overwrite uncommitted changes in "
                                    f"{self.workdir}: {exc}; commit or discard them "
                                    "first") from exc
            commit_to(new_tip, f"rebase: {len(local)} local commit(s) onto "
                               f"{self.remote_name}/{self.branch} {theirs[:12]}")
        return mapping

    # -- commit ---------------------------------------------------------------
    def commit_changes(self, message: str, files: Sequence[str | os.PathLike[str]],
                       author: str | pygit2.Signature | None = None, *,
                       expected_tip: str | None | bool = True) -> str | None:
        """Commit ``files`` (paths relative to the workdir) as they are on disk.

        Only these files are committed, whatever else is staged or modified; a file
        missing on disk is removed. The branch moves by compare-and-swap from
        ``expected_tip`` (default: the tip read now; pass a commit id, or None for
        "the branch has no commits yet") and :class:`RefConflict` is raised if it
        moved. Returns the new commit id, or None when nothing changed.
        """
        repo = self.open()
        self._check_head(repo)
        rels = [self._relative(f) for f in files]
        expected = self.tip(repo) if expected_tip is True else expected_tip
        sig = signature(author, repo)
        committer = signature(None, repo) if isinstance(author, str | type(None)) else sig
        parent = repo[expected].peel(pygit2.Commit) if expected else None
        staging = pygit2.Index()
        if parent is not None:
            staging.read_tree(parent.tree)
        for rel in rels:
            path = self.workdir / rel
            if path.is_file() and not path.is_symlink():
                mode = (pygit2.GIT_FILEMODE_BLOB_EXECUTABLE if os.access(path, os.X_OK)
                        else pygit2.GIT_FILEMODE_BLOB)
                oid = repo.create_blob_fromdisk(str(path))
                staging.add(pygit2.IndexEntry(rel, oid, mode))
            elif rel in staging:
                staging.remove(rel)
        tree = staging.write_tree(repo)
        if parent is not None and tree == parent.tree_id:
            return None
        oid = repo.create_commit(None, sig, committer, message, tree,
                                 [parent.id] if parent else [])
        with self._ref_update(repo, expected) as commit_to:
            commit_to(str(oid), f"commit: {message.splitlines()[0] if message else ''}")
        self._stage(repo, rels)
        return str(oid)

    def _stage(self, repo: pygit2.Repository, rels: list[str]) -> None:
        """Bring the index entries of ``rels`` to the committed state."""
        index = repo.index
        index.read()
        for rel in rels:
            if (self.workdir / rel).is_file():
                index.add(rel)
            elif rel in index:
                index.remove(rel)
        index.write()

    def reset_to(self, target: str | None, *, expected: str | None,
                 files: Sequence[str | os.PathLike[str]] = ()) -> None:
        """Move the branch back to ``target`` (compare-and-swap from ``expected``) and
        restore ``files`` in the working tree and index from it (used to undo a commit
        the remote refused)."""
        repo = self.open()
        rels = [self._relative(f) for f in files]
        with self._ref_update(repo, expected) as commit_to:
            if target is None:
                raise GitProviderError("cannot reset a branch to no commit")
            commit_to(target, f"reset: undo {str(expected)[:12]}")
        tree = repo[target].peel(pygit2.Commit).tree
        for rel in rels:
            path = self.workdir / rel
            try:
                entry = tree[rel]
            except KeyError:
                path.unlink(missing_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(repo[entry.id].data)
        self._stage(repo, rels)

    def _relative(self, file: str | os.PathLike[str]) -> str:
        path = Path(file)
        if path.is_absolute():
            path = path.resolve().relative_to(self.workdir)
        rel = path.as_posix()
        if rel.startswith("../") or rel in ("", ".", ".."):
            raise GitProviderError(f"{file}: outside the working tree {self.workdir}")
        return rel

    # -- push -----------------------------------------------------------------
    def push(self) -> None:
        """Push the branch (fast-forward only; :class:`PushRejected` otherwise)."""
        workdir, name, ref = str(self.workdir), self.remote_name, self.ref
        if not self.has_remote():
            return

        def push(callbacks: _Callbacks) -> None:
            pygit2.Repository(workdir).remotes[name].push([f"{ref}:{ref}"],
                                                          callbacks=callbacks)
            if callbacks.rejected:
                reasons = "; ".join(f"{r}: {m}" for r, m in callbacks.rejected.items())
                raise PushRejected(f"push to {name} rejected: {reasons}")

        self._network("push", push)

    # -- network with a deadline ------------------------------------------------
    def _network(self, what: str, operation: Callable[[_Callbacks], T]) -> T:
        ms = max(1, int(self.timeout * 1000))
        pygit2.settings.server_connect_timeout = ms
        pygit2.settings.server_timeout = ms
        if what != "clone" and is_url(self.repo_url):
            self.scrub_origin()  # our clone of the URL (a user's own repository is theirs)
        url = self._remote_url(what)
        login = self._login if self._login != (None, None) else split_userinfo(url)[1:]
        creds = (self.credentials or Credentials.from_env()).with_login(*login)
        remote = parse_remote(url)
        try:
            creds.apply_ca_bundle()
            if remote is not None and remote.scheme in ("ssh", "git+ssh", "ssh+git"):
                creds.prepare_ssh(remote, self.timeout)
        except FileNotFoundError as exc:
            raise GitProviderError(str(exc)) from None
        except HostKeyError as exc:
            raise RemoteUnreachable(f"{what} {self._where()}: {exc}") from None
        cancel = threading.Event()
        callbacks = _Callbacks(cancel, self.progress, creds, url)
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                with creds.host_key_checks():
                    outcome["value"] = operation(callbacks)
            except BaseException as exc:  # re-raised in the caller's thread
                outcome["error"] = exc

        worker = threading.Thread(target=run, name=f"git-{what}", daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            cancel.set()
            raise GitTimeout(f"{what} {self._where()}: no answer within {self.timeout:g}s "
                             f"(gave up after {time.monotonic() - started:.1f}s); check the "
                             "network and the server, or raise the timeout")
        error = outcome.get("error")
        if error is None:
            return outcome["value"]  # type: ignore[no-any-return]
        if callbacks.refusal is not None:
            raise callbacks.refusal from None
        if isinstance(error, GitProviderError):
            raise error
        if isinstance(error, pygit2.GitError | OSError | KeyError | ValueError):
            raise _classify(what, self._where(), error, url) from error
        raise error

    def _remote_url(self, what: str) -> str:
        """The URL libgit2 talks to (without userinfo, see :meth:`scrub_origin`)."""
        if what == "clone":
            return self.git_url
        try:
            return pygit2.Repository(str(self.workdir)).remotes[self.remote_name].url or ""
        except (KeyError, pygit2.GitError):
            return self.git_url

    def _where(self) -> str:
        """The remote, as it may be shown (without credentials)."""
        if is_url(self.repo_url) or self.workdir != Path(self.repo_url).expanduser().resolve():
            return public_url(self.repo_url)
        try:
            return public_url(self.open().remotes[self.remote_name].url or self.repo_url)
        except (KeyError, GitProviderError):
            return public_url(self.repo_url)

    # -- compare-and-swap of the branch ref --------------------------------------
    @contextmanager
    def _ref_update(self, repo: pygit2.Repository,
                    expected: str | None) -> Iterator[Callable[[str, str], None]]:
        """Hold ``<ref>.lock`` and check the ref is ``expected``; yield a setter."""
        git_dir = _common_dir(repo)
        ref_path = git_dir / self.ref
        lock = ref_path.with_name(ref_path.name + ".lock")
        ref_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise RefConflict(f"{self.ref} is being updated by another process "
                              f"({lock} exists; remove it if no Git process is running)"
                              ) from None
        done: list[tuple[str, str]] = []
        try:
            current = _read_ref(pygit2.Repository(repo.path), self.ref)
            if current != expected:
                raise RefConflict(f"{self.branch} moved from {_short(expected)} to "
                                  f"{_short(current)} during the update; retry")
            yield lambda new, message: done.append((new, message))
            if done:
                new, message = done[-1]
                os.write(fd, f"{new}\n".encode())
                os.fsync(fd)
                os.close(fd)
                fd = -1
                os.replace(lock, ref_path)
                _append_reflog(repo, git_dir, self.ref, expected, new, message)
        finally:
            if fd >= 0:
                os.close(fd)
                lock.unlink(missing_ok=True)


def _common_dir(repo: pygit2.Repository) -> Path:
    """Where branches live: the repository's own Git folder, also for a linked worktree
    (whose folder keeps only its HEAD and index, and names the shared one in
    ``commondir``)."""
    git_dir = Path(repo.path)
    common = git_dir / "commondir"
    if common.is_file():
        return (git_dir / common.read_text().strip()).resolve()
    return git_dir


def _read_ref(repo: pygit2.Repository, ref: str) -> str | None:
    try:
        return str(repo.lookup_reference(ref).resolve().target)
    except (KeyError, pygit2.InvalidSpecError):
        return None


def _changed_files(repo: pygit2.Repository, old: pygit2.Tree | None,
                   new: pygit2.Tree) -> set[str]:
    """Paths that differ between two trees (both sides of a rename)."""
    diff = new.diff_to_tree(swap=True) if old is None else repo.diff(old, new)
    return {path for delta in diff.deltas
            for path in (delta.old_file.path, delta.new_file.path) if path}


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "(no commit)"


def _append_reflog(repo: pygit2.Repository, git_dir: Path, ref: str, old: str | None,
                   new: str, message: str) -> None:
    log = git_dir / "logs" / ref
    if not log.parent.exists() and not (git_dir / "logs").exists():
        return
    sig = signature(None, repo)
    offset = sig.offset
    tz = f"{'+' if offset >= 0 else '-'}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
    line = (f"{old or '0' * 40} {new} {sig.name} <{sig.email}> {int(time.time())} {tz}\t"
            f"{message.splitlines()[0] if message else ''}\n")
    logs = [log]
    head = repo.lookup_reference("HEAD")
    if head.type == pygit2.enums.ReferenceType.SYMBOLIC and head.target == ref:
        logs.append(git_dir / "logs" / "HEAD")  # as git does for the checked-out branch
    for path in logs:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)


def _rewrite(path: Path, change: Callable[[str], str]) -> None:
    """Replace ``path``'s text by ``change(text)`` atomically, if it changes (best
    effort: a file that cannot be read or written is left as it is)."""
    try:
        text = path.read_bytes().decode("utf-8", "surrogateescape")
        new = change(text)
        if new == text:
            return
        temp = path.with_name(path.name + ".aureacore-tmp")
        temp.write_bytes(new.encode("utf-8", "surrogateescape"))
        os.replace(temp, path)
    except OSError:
        return


def _classify(what: str, where: str, error: BaseException, url: str = "") -> GitProviderError:
    """The failure as its own kind, with what to do; never with a credential in it."""
    text = scrub(str(error).strip(), url)
    lower = text.lower()
    if what == "push" and any(word in lower for word in _REJECTED):
        return PushRejected(f"push to {where} rejected (not a fast-forward: the remote "
                            f"branch moved; pull and retry): {text}")
    if isinstance(error, getattr(pygit2, "AuthError", ())) or any(
            word in lower for word in _AUTH):
        return AuthenticationFailed(f"{what} {where}: authentication refused ({text}); check "
                                    "the credentials (--ssh-key, ssh-agent, "
                                    f"{ENV_TOKEN} or a git credential helper)")
    if any(word in lower for word in _NOT_FOUND):
        return RepositoryNotFound(f"{what} {where}: repository not found ({text}); check the "
                                  "URL and that your credentials may read it")
    if any(word in lower for word in _UNREACHABLE):
        return RemoteUnreachable(f"{what} {where}: remote unreachable: {text}; check the "
                                 "host name, port and network, then retry")
    if "certificate" in lower or "ssl" in lower or "tls" in lower:
        return CertificateUntrusted(f"{what} {where}: TLS failed ({text}); pass --ca-bundle "
                                    f"FILE or set {ENV_CA_BUNDLE} if the server's CA is "
                                    "your own")
    return TransferFailed(f"{what} {where} failed: {text}")


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
