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

from .gitsource import is_url

DEFAULT_TIMEOUT = 60.0
DEFAULT_AUTHOR = ("aureacore-db", "aureacore-db@localhost")
_SIGNATURE = re.compile(r"^\s*(?P<name>[^<]*?)\s*<(?P<email>[^>]*)>\s*$")
_UNREACHABLE = ("failed to connect", "failed to resolve", "could not resolve",
                "connection refused", "does not appear to be a git repository",
                "not exported", "no such file", "not found", "timed out",
                "network is unreachable", "could not find repository")
_REJECTED = ("non-fastforwardable", "non-fast-forward", "not present locally",
             "fetch first", "rejected")

T = TypeVar("T")


class GitProviderError(Exception):
    """A Git operation failed; the message says what and why."""


class RemoteUnreachable(GitProviderError):
    """The remote cannot be reached (connection refused, no such repository, ...)."""


class TransferFailed(GitProviderError):
    """The connection broke during a fetch or push (e.g. the server died)."""


class GitTimeout(GitProviderError):
    """A network operation did not finish before its deadline."""


class PushRejected(GitProviderError):
    """The remote refused the push (the branch moved: not a fast-forward)."""


class RefConflict(GitProviderError):
    """The branch changed (or is locked) while we were updating it."""


class DirtyWorktree(GitProviderError):
    """Pulling would overwrite uncommitted changes in the working tree."""


class Diverged(GitProviderError):
    """Local and remote branches both have commits the other lacks."""


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
    """Abort once the deadline passed; remember per-ref push rejections."""

    def __init__(self, cancel: threading.Event,
                 progress: Callable[[pygit2.remotes.TransferProgress], None] | None) -> None:
        super().__init__()
        self.cancel = cancel
        self.progress = progress
        self.rejected: dict[str, str] = {}

    def _check(self) -> None:
        if self.cancel.is_set():
            raise GitTimeout("deadline passed")

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
                 progress: Callable[[Any], None] | None = None) -> None:
        self.repo_url = str(repo_url)
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
        url, branch, workdir = self.repo_url, self.branch, str(self.workdir)

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
            ahead, behind = repo.ahead_behind(old, theirs)
            raise Diverged(f"{self.branch} has {ahead} local commit(s) not on "
                           f"{self.remote_name} and {behind} remote commit(s) not here; "
                           "cannot fast-forward")
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
        cancel = threading.Event()
        callbacks = _Callbacks(cancel, self.progress)
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
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
                             f"(gave up after {time.monotonic() - started:.1f}s)")
        error = outcome.get("error")
        if error is None:
            return outcome["value"]  # type: ignore[no-any-return]
        if isinstance(error, GitProviderError):
            raise error
        if isinstance(error, pygit2.GitError | OSError | KeyError | ValueError):
            raise _classify(what, self._where(), error) from error
        raise error

    def _where(self) -> str:
        if is_url(self.repo_url) or self.workdir != Path(self.repo_url).expanduser().resolve():
            return self.repo_url
        try:
            return self.open().remotes[self.remote_name].url or self.repo_url
        except (KeyError, GitProviderError):
            return self.repo_url

    # -- compare-and-swap of the branch ref --------------------------------------
    @contextmanager
    def _ref_update(self, repo: pygit2.Repository,
                    expected: str | None) -> Iterator[Callable[[str, str], None]]:
        """Hold ``<ref>.lock`` and check the ref is ``expected``; yield a setter."""
        git_dir = Path(repo.path)
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


def _read_ref(repo: pygit2.Repository, ref: str) -> str | None:
    try:
        return str(repo.lookup_reference(ref).resolve().target)
    except (KeyError, pygit2.InvalidSpecError):
        return None


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


def _classify(what: str, where: str, error: BaseException) -> GitProviderError:
    text = str(error)
    lower = text.lower()
    if what == "push" and any(word in lower for word in _REJECTED):
        return PushRejected(f"push to {where} rejected (not a fast-forward: the remote "
                            f"branch moved; pull and retry): {text}")
    if any(word in lower for word in _UNREACHABLE):
        return RemoteUnreachable(f"{what} {where}: remote unreachable: {text}")
    return TransferFailed(f"{what} {where} failed: {text}")


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
