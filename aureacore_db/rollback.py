"""Roll a service back to an earlier configuration.

The exact bytes of the chosen version are written to the service's path as a new commit
on the branch of one environment (default: the first; author = the actor), pushed to
``origin`` when there is one, and ingested so the database shows the new version at once.
Every attempt, refused or not, is a row in the ``rollbacks`` table.
All Git work goes through pygit2.

Used by the Datasette plugin (web POST) and by ``aureacore-db rollback``.
"""

from __future__ import annotations

import json
import os
import re
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pygit2
import sqlite_utils
from pygit2.enums import CheckoutStrategy, FileMode, FileStatus

from . import envstate
from .db import connect, get_meta
from .environments import Environment, get_environment
from .gitpath import git_path, path_bytes
from .gitpath import path_text as shown_path
from .gitprovider import GitProvider, GitProviderError, PushRejected
from .gitsource import is_url
from .locks import file_lock
from .names import ERROR
from .tables import ensure_rollbacks_table  # (also imported by the plugin)
from .timestamps import now_iso

# outcome -> HTTP status the web layer answers with
OUTCOME_STATUS = {
    "ok": 200,
    "forbidden": 403,
    "not_found": 404,
    "no_change": 400,
    "needs_confirm": 400,
    "breaking": 409,
    "stale_head": 409,
    "dirty": 409,
    "push_rejected": 409,
    "unsafe_path": 400,
    "error": 500,
}

Actor = dict[str, Any]
_IDENTITY = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<email>[^<>]*)>\s*$")
_ANGLE = re.compile(r"[<>\n\r]")


class WriteOutcome:
    """``ok`` and the HTTP status of a write's ``outcome`` (rollback, promotion)."""

    outcome: str
    message: str

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def http_status(self) -> int:
        return OUTCOME_STATUS.get(self.outcome, 500)


@dataclass
class RollbackResult(WriteOutcome):
    """What one attempt did (also the ``rollbacks`` row)."""

    service_id: str
    target_commit: str | None
    actor_id: str
    outcome: str = "error"
    message: str = ""
    from_config: str | None = None
    to_config: str | None = None
    path: str | None = None
    expected_head: str | None = None
    head_before: str | None = None
    new_commit: str | None = None
    pushed: bool = False
    id: int | None = None
    environment: str | None = None  # the environment (branch) rolled back
    target_status: str | None = field(default=None, repr=False)
    preview: dict[str, Any] | None = None  # preview.Preview.as_dict() of the write
    status_changes: list[dict[str, Any]] = field(default_factory=list)  # after ingest

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


class WriteRefused(Exception):
    """A write (rollback, promotion) was refused (and recorded); ``result`` says why."""

    def __init__(self, result: WriteOutcome, exit_code: int = 1) -> None:
        super().__init__(result.message)
        self.result = result
        self.exit_code = exit_code  # the CLI's (that of a failed push, see cli_remote)

    @property
    def status(self) -> int:
        return self.result.http_status


class RollbackRefused(WriteRefused):
    """The rollback was refused (and recorded); ``result`` says why."""

    result: RollbackResult


def normalize_actor(actor: Actor | str | None) -> Actor:
    """An actor dict with at least an ``id``; a string ``"Name <email>"`` (as Git writes
    an author) also gives the ``name`` and ``email``.

    Raises :class:`ValueError` for a string with angle brackets that is not like that.
    """
    if actor is None:
        return {"id": "anonymous"}
    if isinstance(actor, str):
        return {"id": actor, **parse_identity(actor)}
    return dict(actor) if actor.get("id") is not None else {**actor, "id": "anonymous"}


def parse_identity(text: str) -> dict[str, str]:
    """``{"name", "email"}`` of ``"Name <email>"`` (Git's author form), or ``{}`` for a
    plain id. Raises :class:`ValueError` for angle brackets in any other form."""
    match = _IDENTITY.match(text)
    if match:
        name, email = match["name"].strip(), match["email"].strip()
        if not email:
            raise ValueError(f"{text!r}: no email between < and >")
        return {"name": name or email, "email": email}
    if "<" in text or ">" in text:
        raise ValueError(f"{text!r} is not like 'Name <email>'")
    return {}


def actor_signature(actor: Actor) -> pygit2.Signature:
    """The commit author for an actor, the same whichever way the rollback is made: its
    ``name`` and ``email``; else those of an id written ``"Name <email>"``; else the id
    and ``<id>@aureacore-db``."""
    ident = str(actor["id"])
    parsed = parse_identity(ident) if not (actor.get("name") and actor.get("email")) else {}
    name = str(actor.get("name") or actor.get("display") or parsed.get("name") or ident)
    email = str(actor.get("email") or parsed.get("email") or f"{ident}@aureacore-db")
    clean = [_ANGLE.sub("", part).strip() for part in (name, email)]
    return pygit2.Signature(clean[0] or clean[1], clean[1] or "unknown@aureacore-db")


def record_attempt(db_path: str | os.PathLike, result: RollbackResult, actor: Actor,
                   via: str) -> int:
    """Write (or update) the ``rollbacks`` row of an attempt; returns its id."""
    db = connect(db_path)
    try:
        return _record(db, result, actor, via)
    finally:
        db.close()


def _record(db: sqlite_utils.Database, result: RollbackResult, actor: Actor, via: str) -> int:
    ensure_rollbacks_table(db)
    row = {
        "attempted_at": now_iso(), "actor_id": str(actor["id"]),
        "actor": json.dumps(actor, sort_keys=True, default=str), "via": via,
        "service_id": result.service_id, "target_commit": result.target_commit,
        "from_config": result.from_config, "to_config": result.to_config,
        "path": result.path, "expected_head": result.expected_head,
        "head_before": result.head_before, "new_commit": result.new_commit,
        "pushed": int(result.pushed), "outcome": result.outcome, "message": result.message,
        "environment": result.environment,
    }
    with db.atomic():
        if result.id is None:
            result.id = int(db["rollbacks"].insert(row).last_pk)
        else:
            db["rollbacks"].update(result.id, {k: row[k] for k in ("new_commit", "pushed",
                                                                   "outcome", "message")})
    return result.id


def _rollback_lock(db_path: Path) -> AbstractContextManager[None]:
    """One rollback at a time per database."""
    return file_lock(db_path.with_name(db_path.name + ".rollback.lock"))


class _Refuse(Exception):
    def __init__(self, outcome: str, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.exit_code = exit_code


def rollback(
    db_path: str | os.PathLike,
    service_id: str,
    to: str,
    *,
    actor: Actor | str | None,
    repo_path: str | os.PathLike | None = None,
    expected_head: str | None = None,
    confirm: bool = False,
    allow_breaking: bool | None = None,
    via: str = "api",
    environment: str | None = None,
) -> RollbackResult:
    """Roll ``service_id`` back to its configuration at commit ``to`` in ``environment``
    (default: the first; an unknown name raises
    :class:`~aureacore_db.environments.EnvError`, recording nothing).

    ``to`` is a commit (full or short sha, or any revision pygit2 understands; ``HEAD~n``
    counts along the environment's mainline) reachable from the environment's branch,
    whose version of the service is restored. ``expected_head`` is the branch head the caller
    saw (a moved branch is refused); ``confirm`` is needed to restore a version that was
    ERROR. Before writing, the statuses the branch would have are previewed
    (:func:`~aureacore_db.preview.preview_write`, on ``result.preview``); a rollback that
    puts other services into ERROR is refused (outcome ``breaking``) unless
    ``allow_breaking`` (default: ``confirm``). Returns the result on success; raises
    :class:`RollbackRefused` otherwise. The attempt is recorded in ``rollbacks`` either way.
    """
    db_path = Path(db_path)
    who = normalize_actor(actor)
    result = RollbackResult(service_id=service_id, target_commit=to, actor_id=str(who["id"]),
                            expected_head=expected_head)
    with _rollback_lock(db_path):
        db = connect(db_path)
        try:
            ensure_rollbacks_table(db)
            env = get_environment(db, environment)
            result.environment = env.name
            try:
                source, branch = _rollback_locked(
                    db, result, who, repo_path, confirm,
                    confirm if allow_breaking is None else allow_breaking, env)
            except _Refuse as refusal:
                result.outcome, result.message = refusal.outcome, str(refusal)
                _record(db, result, who, via)
                raise RollbackRefused(result, refusal.exit_code) from None
            except Exception as exc:  # recorded, then re-raised
                result.outcome, result.message = "error", f"{type(exc).__name__}: {exc}"
                _record(db, result, who, via)
                raise
            _record(db, result, who, via)
        finally:
            db.close()
        _ingest_after(db_path, result, who, via, source, branch)
    return result


def _rollback_locked(db: sqlite_utils.Database, result: RollbackResult, actor: Actor,
                     repo_path: str | os.PathLike | None, confirm: bool,
                     allow_breaking: bool, env: Environment) -> tuple[str, str]:
    """The checks and the Git work; fills ``result``; returns (ingest source, branch)."""
    branch = env.branch
    source = get_meta(db, "source")
    path_text = str(repo_path) if repo_path else get_meta(db, "repo_path")
    if not path_text:
        raise _Refuse("error", "the database does not say which repository it came from; "
                               "pass the repository path")
    repo = _open_repo(path_text)
    if repo_path:
        source = str(repo_path)
    sid = result.service_id
    service = envstate.current_service(db, env, sid)
    if service is None:
        raise _Refuse("not_found", f"no service {sid!r} in {_where(db, env)}")
    target = _resolve_target(db, repo, sid, result.target_commit or "", env)
    result.target_commit = target["commit_sha"]
    result.to_config = target["config_id"]
    result.target_status = target["status"]
    result.from_config = service["config_id"]
    result.path = service["path"] or target["path"]
    if not _safe_path(result.path):
        raise _Refuse("unsafe_path", f"{sid} has no file inside the repository (its path "
                      f"{result.path!r} leaves it; fix config_path in the root file); "
                      "nothing was written")
    ref_name = f"refs/heads/{branch}"
    ref = _branch_ref(repo, branch, is_url(source or ""))
    if ref is None:
        raise _Refuse("error", f"branch {branch!r} not found in {path_text}")
    head = ref.resolve().target
    result.head_before = str(head)
    if result.to_config is None:
        raise _Refuse("not_found", f"{sid} did not exist at {result.target_commit[:7]}")
    if result.expected_head and not str(head).startswith(result.expected_head.lower()):
        raise _Refuse("stale_head", f"branch {branch} moved since the page was shown "
                      f"(was {result.expected_head[:7]}, now {str(head)[:7]}); nothing was "
                      "written. Reload the page and try again.")
    if result.to_config == result.from_config:
        raise _Refuse("no_change", f"{sid} is already at that version "
                      f"(config {result.to_config[:7]})")
    if target["status"] == ERROR and not confirm:
        raise _Refuse("needs_confirm", f"the version of {sid} at {result.target_commit[:7]} "
                      "was ERROR; confirm to roll back to it anyway")
    preview = _preview(repo, str(head), result, db)
    result.preview = preview.as_dict()
    if preview.breaks and not allow_breaking:
        raise _Refuse("breaking", f"rolling {sid} back to {result.target_commit[:7]} would put "
                      f"{len(preview.breaks)} other service(s) into ERROR: "
                      + "; ".join(c.line() for c in preview.breaks[:5])
                      + (" …" if len(preview.breaks) > 5 else "")
                      + ". Nothing was written.")
    checked_out = _checked_out(repo, ref_name)
    if checked_out:
        dirty = _uncommitted(repo, git_path(result.path))
        if dirty:
            listed = ", ".join(map(shown_path, dirty[:5])) + (" …" if len(dirty) > 5 else "")
            raise _Refuse("dirty", f"the working tree at {repo.workdir} has uncommitted "
                          f"changes ({listed}); commit or stash them first. Nothing was "
                          "written.")
        linked = _linked_folder(repo.workdir, result.path)
        if linked:
            raise _Refuse("unsafe_path", f"{linked} in the working tree is a symbolic link; "
                          f"writing {result.path} would leave the repository. Nothing was "
                          "written.")
    new_commit = _commit(repo, head, result, actor, target)
    if repo.references[ref_name].resolve().target != head:
        raise _Refuse("stale_head", f"branch {branch} moved during the rollback; nothing "
                      "was written")
    repo.references[ref_name].resolve().set_target(
        new_commit, f"aureacore-db: roll back {sid} to {result.target_commit[:7]}")
    result.new_commit = str(new_commit)
    if "origin" in repo.remotes.names():
        failed = _push(repo, branch)
        if failed is not None:
            repo.references[ref_name].resolve().set_target(head, "aureacore-db: undo rollback")
            result.new_commit = None
            rejected = str(failed)
            advice = ("Push to a bare repository instead (origin has a checked-out "
                      "branch)." if "non-bare" in rejected else
                      "Someone else pushed first: pull, ingest and try again."
                      if isinstance(failed, PushRejected) else "")
            raise _Refuse("push_rejected", f"push to origin failed ({rejected}); the "
                          f"local commit was undone, nothing changed. {advice}".rstrip(),
                          failed.exit_code)
        result.pushed = True
    if checked_out:
        on_disk = os.path.join(os.fsencode(repo.workdir), path_bytes(result.path))
        if os.path.islink(on_disk):  # libgit2 would write through it
            os.unlink(on_disk)
        repo.checkout_head(strategy=CheckoutStrategy.FORCE, paths=[_RawPath(result.path)])
    result.outcome = "ok"
    result.message = (f"rolled back {sid} to {result.target_commit[:7]} as commit "
                      f"{result.new_commit[:7]}" + (" (pushed to origin)" if result.pushed
                                                    else ""))
    return source or path_text, branch


def _preview(repo: pygit2.Repository, head: str, result: RollbackResult,
             db: Any = None):  # -> Preview
    """The statuses the branch would have with the target's bytes at the service's path
    (``db``: the database, whose stored state of the head is used when it has one)."""
    from .preview import preview_write

    blob = repo.get(result.to_config or "")
    if not isinstance(blob, pygit2.Blob):
        raise _Refuse("not_found", f"config {result.to_config} is not a blob in the repository")
    return preview_write(repo, head, {git_path(result.path or ""): blob.data},
                         subject=result.service_id, db=db)


def _status_changes(db_path: Path, commit: str | None) -> list[dict[str, Any]]:
    """The status rows the rollback commit wrote (services whose status it moved)."""
    if not commit:
        return []
    db = connect(db_path)
    try:
        return [dict(r) for r in db.query(
            "select service_id, previous_status, status, message from status "
            "where commit_sha = ? and coalesce(previous_status, '') != coalesce(status, '') "
            "order by service_id", [commit])]
    finally:
        db.close()


def status_summary(changes: list[dict[str, Any]]) -> str:
    """``a/b CONFIGURED -> ERROR, c/d ERROR -> CONFIGURED`` (empty: none moved)."""
    return ", ".join(f"{c['service_id']} {c['previous_status'] or 'absent'} -> "
                     f"{c['status'] or 'absent'}" for c in changes)


def _open_repo(path: str) -> pygit2.Repository:
    found = pygit2.discover_repository(path)
    if found is None:
        raise _Refuse("error", f"{path} is not a Git repository")
    return pygit2.Repository(found)


def _where(db: sqlite_utils.Database, env: Environment) -> str:
    """"the database", or "environment staging" when there are several."""
    several = db.execute("select count(*) from environments").fetchone()[0] > 1
    return f"environment {env.name!r}" if several else "the database"


def _branch_ref(repo: pygit2.Repository, branch: str,
                follow_origin: bool = False) -> pygit2.Reference | None:
    """``refs/heads/<branch>``. In the clone of a URL (``follow_origin``), where ingest
    reads ``origin/<branch>``: made there when missing, and fast-forwarded to it when it
    is not checked out (another environment's branch, only ever fetched)."""
    ref_name = f"refs/heads/{branch}"
    local = repo.references.get(ref_name)
    if not follow_origin:
        return local
    remote = repo.references.get(f"refs/remotes/origin/{branch}")
    if remote is None:
        return local
    theirs = remote.resolve().target
    if local is None:
        return repo.references.create(ref_name, theirs)
    ours = local.resolve().target
    if ours != theirs and not _checked_out(repo, ref_name) \
            and repo.descendant_of(theirs, ours):
        local.resolve().set_target(theirs, f"aureacore-db: fast-forward to origin/{branch}")
    return repo.references[ref_name]


def _resolve_target(db: sqlite_utils.Database, repo: pygit2.Repository, sid: str,
                    to: str, env: Environment) -> dict[str, Any]:
    """The history row giving the service's version at commit ``to``, which must be
    reachable from ``env``'s branch (on its mainline, or merged into it)."""
    if not to.strip():
        raise _Refuse("not_found", "say which commit to roll back to")
    try:
        at = envstate.resolve_in(db, env, to, repo.workdir or repo.path)
    except envstate.UnknownCommit as exc:
        raise _Refuse("not_found", str(exc)) from None
    if not at.mainline and not _reachable(repo, env, at.sha):
        raise _Refuse("not_found", f"commit {at.sha[:7]} is not on {env.name} (branch "
                      f"{env.branch}); roll back to a commit of that branch (a version "
                      "from another environment is promoted, not rolled back)")
    row = envstate.version_at(db, env, sid, at)
    if row is None:
        raise _Refuse("not_found", f"{sid} did not exist at {at.sha[:7]}")
    target = {key: row[key] for key in ("commit_sha", "config_id", "path", "status", "change")}
    target["commit_sha"] = at.sha
    return target


def _reachable(repo: pygit2.Repository, env: Environment, sha: str) -> bool:
    """Whether ``sha`` is an ancestor of the environment's ingested tip."""
    try:
        return bool(env.tip) and repo.descendant_of(env.tip, sha)
    except (KeyError, ValueError, pygit2.GitError):
        return False


def _checked_out(repo: pygit2.Repository, ref_name: str) -> bool:
    """Whether the branch is the one checked out in a working tree."""
    if repo.is_bare or repo.head_is_unborn:
        return False
    try:
        return repo.head.name == ref_name
    except pygit2.GitError:
        return False


_CLEAN = FileStatus.CURRENT | FileStatus.IGNORED


def _uncommitted(repo: pygit2.Repository, path: str | None) -> list[str]:
    """Paths with uncommitted work: tracked changes anywhere, or an untracked ``path``."""
    dirty = []
    for name, flags in sorted(repo.status().items()):
        if (flags & ~_CLEAN) == 0:
            continue
        if flags == FileStatus.WT_NEW and name != path:
            continue
        dirty.append(name)
    return dirty


def _commit(repo: pygit2.Repository, head: pygit2.Oid, result: RollbackResult, actor: Actor,
            target: dict[str, Any]) -> pygit2.Oid:
    """Create (not yet on any branch) the commit restoring the chosen bytes."""
    blob = repo.get(result.to_config)
    if not isinstance(blob, pygit2.Blob):
        raise _Refuse("not_found", f"config {result.to_config} is not a blob in the repository")
    head_commit = repo[head].peel(pygit2.Commit)
    index = pygit2.Index()
    index.read_tree(head_commit.tree)
    path = git_path(result.path)
    existing = index[path] if path in index else None
    if existing is None:
        try:
            existing = repo[result.target_commit].peel(pygit2.Tree)[git_path(target["path"])]
        except (KeyError, TypeError):
            pass
    # a regular file, whatever the path is now (a symlink or submodule there would
    # turn the YAML text into a link target); only the executable bit is kept
    mode = FileMode.BLOB_EXECUTABLE if existing is not None and \
        _mode_of(existing) == FileMode.BLOB_EXECUTABLE else FileMode.BLOB
    index.add(pygit2.IndexEntry(path, blob.id, mode))
    tree = index.write_tree(repo)
    signature = actor_signature(actor)
    message = (f"Roll back {result.service_id} to {result.target_commit[:7]}\n\n"
               f"Restores {result.path} as of {result.target_commit} "
               f"(config {result.to_config[:7]}).\n\n"
               f"Rolled-back-by: {actor['id']}\n")
    return repo.create_commit(None, signature, signature, message, tree, [head])


class _RawPath:
    """A stored path as the exact bytes pygit2 passes on (it takes no str that is not
    UTF-8, but any path-like)."""

    def __init__(self, text: str) -> None:
        self.raw = path_bytes(text)

    def __fspath__(self) -> bytes:
        return self.raw


def _linked_folder(workdir: str, path: str) -> str | None:
    """The first folder of ``path`` that is a symbolic link in the working tree."""
    parts = path_bytes(path).split(b"/")[:-1]
    current = os.fsencode(workdir)
    for i, part in enumerate(parts):
        current = os.path.join(current, part)
        if os.path.islink(current):
            return shown_path(b"/".join(parts[:i + 1]))
    return None


def _mode_of(entry: pygit2.IndexEntry | pygit2.Object) -> int:
    return entry.mode if isinstance(entry, pygit2.IndexEntry) else entry.filemode


def _safe_path(path: str | None) -> bool:
    """Whether a stored service path names a file inside the repository."""
    if not path or path.startswith("<unsafe:"):
        return False
    raw = path_bytes(path)
    parts = raw.split(b"/")
    return not raw.startswith(b"/") and all(p not in (b"", b".", b"..", b".git")
                                             for p in parts)


def _push(repo: pygit2.Repository, branch: str) -> GitProviderError | None:
    """Push the branch to origin (through the Git provider, with its deadline and the
    environment's credentials); returns why the push failed, or None."""
    try:
        GitProvider(repo.workdir or repo.path, branch).push()
    except GitProviderError as exc:
        return exc
    return None


def _ingest_after(db_path: Path, result: RollbackResult, actor: Actor, via: str,
                  source: str, branch: str) -> None:
    """Ingest the new commit and add a ``rollback`` event (a failure only notes itself)."""
    from .ingest import ingest

    try:
        ingest(source, db_path, branch=branch)
    except Exception as exc:  # the commit is made; say that ingest must be rerun
        result.message += f"; ingest failed ({type(exc).__name__}: {exc}), run it again"
        record_attempt(db_path, result, actor, via)
        return
    result.status_changes = _status_changes(db_path, result.new_commit)
    if result.status_changes:
        result.message += f"; status changed: {status_summary(result.status_changes)}"
        record_attempt(db_path, result, actor, via)
    from .events import ROLLBACK, record_event

    db = connect(db_path)
    try:
        with db.atomic():
            record_event(db, ROLLBACK, result.service_id, result.new_commit, {
                "actor": actor["id"], "target_commit": result.target_commit,
                "from_config": result.from_config, "to_config": result.to_config,
                "path": result.path, "pushed": result.pushed, "rollback_id": result.id,
                "via": via, "environment": result.environment,
            })
    finally:
        db.close()


def catch_up(db_path: str | os.PathLike, repo_path: str | os.PathLike | None = None,
             environment: str | None = None) -> bool:
    """Ingest the branch as it is now (after a stale-head refusal); False if that failed."""
    from .ingest import ingest

    db = connect(db_path)
    try:
        source = get_meta(db, "source")
        try:
            branch = get_environment(db, environment).branch
        except ValueError:
            return False
    finally:
        db.close()
    try:
        ingest(str(repo_path) if repo_path else source, db_path, branch=branch)
    except Exception:  # best effort: the refusal stands either way
        return False
    return True


def describe(db_path: str | os.PathLike, service_id: str, to: str, *,
             repo_path: str | os.PathLike | None = None,
             environment: str | None = None) -> dict[str, Any]:
    """What a rollback would do, without doing it (for the CLI's confirmation prompt).

    Raises :class:`LookupError` when the service or the version cannot be found (an
    unknown ``environment``: :class:`~aureacore_db.environments.EnvError`).
    """
    db = connect(db_path)
    try:
        env = get_environment(db, environment)
        path_text = str(repo_path) if repo_path else get_meta(db, "repo_path")
        if not path_text:
            raise LookupError("the database does not say which repository it came from")
        row = envstate.current_service(db, env, service_id)
        if row is None:
            raise LookupError(f"no service {service_id!r} in {_where(db, env)}")
        service = (row["config_id"], row["path"], row["version"], row["status"])
        branch = env.branch
        follow = is_url(get_meta(db, "source") or "")
        try:
            repo = _open_repo(path_text)
            target = _resolve_target(db, repo, service_id, to, env)
        except _Refuse as refusal:
            raise LookupError(str(refusal)) from None
        version = db.execute("select version from configs where id = ?",
                             [target["config_id"]]).fetchone()
        return {
            "service_id": service_id, "repo": path_text, "environment": env.name,
            "branch": branch, "tip": env.tip,
            "current": {"config_id": service[0], "path": service[1], "version": service[2],
                        "status": service[3]},
            "target": {**target, "version": version[0] if version else None},
            "preview": _describe_preview(repo, branch, service_id, service[0],
                                         service[1] or target["path"], target, follow, db),
        }
    finally:
        db.close()


def _describe_preview(repo: pygit2.Repository, branch: str, sid: str, current: str | None,
                      path: str | None, target: dict[str, Any],
                      follow_origin: bool = False, db: Any = None) -> dict[str, Any] | None:
    """The preview of the rollback :func:`describe` plans (None when it would be refused
    before any write: same version, no file, unsafe path, branch missing)."""
    if not target["config_id"] or target["config_id"] == current or not _safe_path(path):
        return None
    try:
        ref = _branch_ref(repo, branch, follow_origin)
        if ref is None:
            return None
        head = str(ref.resolve().target)
        plan = RollbackResult(service_id=sid, target_commit=target["commit_sha"],
                              actor_id="-", to_config=target["config_id"], path=path)
        return _preview(repo, head, plan, db).as_dict()
    except (KeyError, _Refuse):
        return None
