"""Promote services from one environment to the next (DESIGN §6).

The exact bytes of each service's file at the source environment's tip are written onto
the target environment's branch as one new commit (author = the actor; a
``Promoted-from: <env> <commit>`` trailer), pushed to ``origin`` when there is one, and
ingested so the database shows the new version at once. A service whose path differs
between the environments (moved) loses its old path in the same commit.

The safety is the rollback's (:mod:`aureacore_db.rollback`, whose machinery this reuses):
a stale-head refusal, never over uncommitted work, one writer at a time, a preview of the
target's statuses before writing, and a row per service in ``promotions`` for every
attempt, refused or not. Promoting a version that is ERROR in its source environment
needs ``allow_error``; a promotion the preview says puts other services of the target
into ERROR is refused (outcome ``breaking``, as a rollback's) unless ``allow_breaking``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pygit2
import sqlite_utils
from pygit2.enums import CheckoutStrategy, FileMode

from .db import connect, get_meta
from .environments import EnvError, Environment, get_environment, list_environments
from .gitpath import git_path
from .gitpath import path_text as shown_path
from .gitprovider import PushRejected
from .gitsource import is_url
from .names import ERROR
from .rollback import (
    Actor,
    WriteOutcome,
    WriteRefused,
    _branch_ref,
    _checked_out,
    _linked_folder,
    _open_repo,
    _push,
    _RawPath,
    _Refuse,
    _rollback_lock,
    _safe_path,
    _status_changes,
    _uncommitted,
    actor_signature,
    normalize_actor,
    status_summary,
)
from .timestamps import now_iso
from .urls import scrub

TRAILER = "Promoted-from"


@dataclass
class PromotedService:
    """One service of a promotion: its source version and what the target has now."""

    service_id: str
    path: str | None = None  # its path in the source (written in the target)
    to_config: str | None = None  # the source's config (blob) id
    version: str | None = None  # the source's version field
    source_status: str | None = None
    target_path: str | None = None  # its path in the target now (None: not there)
    from_config: str | None = None  # the target's config id now
    target_version: str | None = None
    target_status: str | None = None
    after: str | None = None  # its status in the target after the write (preview)
    source_change: str | None = None  # the commits that last changed it in each env
    target_change: str | None = None
    id: int | None = None  # its ``promotions`` row

    @property
    def moved(self) -> bool:
        return bool(self.target_path) and self.target_path != self.path

    @property
    def unchanged(self) -> bool:
        return self.from_config == self.to_config and not self.moved


@dataclass
class PromotionResult(WriteOutcome):
    """What one attempt did (one ``promotions`` row per service)."""

    from_environment: str
    to_environment: str
    actor_id: str
    services: list[PromotedService] = field(default_factory=list)
    from_branch: str | None = None
    to_branch: str | None = None
    source_commit: str | None = None  # the source environment's tip
    outcome: str = "error"
    message: str = ""
    expected_head: str | None = None
    head_before: str | None = None
    new_commit: str | None = None
    pushed: bool = False
    preview: dict[str, Any] | None = None  # preview.Preview.as_dict() of the write
    status_changes: list[dict[str, Any]] = field(default_factory=list)  # after ingest

    @property
    def service_ids(self) -> list[str]:
        return [s.service_id for s in self.services]

    @property
    def ids(self) -> list[int]:
        return [s.id for s in self.services if s.id is not None]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["ids"] = self.ids
        return data


class PromotionRefused(WriteRefused):
    """The promotion was refused (and recorded); ``result`` says why."""

    result: PromotionResult


# ------------------------------------------------------------------------- planning
def _environments(db: sqlite_utils.Database, source: str, target: str
                  ) -> tuple[Environment, Environment]:
    try:
        src, dst = get_environment(db, source), get_environment(db, target)
    except EnvError as exc:
        raise _Refuse("not_found", str(exc)) from None
    if src.name == dst.name or src.branch == dst.branch:
        raise _Refuse("no_change", f"{src.name} and {dst.name} are the same branch "
                                   f"({src.branch}); promote between two environments")
    return src, dst


def _env_service(db: sqlite_utils.Database, env: str, sid: str) -> dict[str, Any] | None:
    row = db.execute("select path, config_id, version, status, last_commit, removed "
                     "from environment_services where environment = ? and service_id = ?",
                     [env, sid]).fetchone()
    if row is None or row[5]:
        return None
    return dict(zip(("path", "config_id", "version", "status", "last_commit"), row[:5],
                    strict=True))


def _services(db: sqlite_utils.Database, result: PromotionResult, ids: list[str]) -> None:
    """Fill ``result.services`` from both environments' current rows."""
    if not ids:
        raise _Refuse("not_found", "say which service(s) to promote")
    seen: set[str] = set()
    for sid in ids:
        if sid in seen:
            continue
        seen.add(sid)
        src = _env_service(db, result.from_environment, sid)
        if src is None or not src["config_id"]:
            raise _Refuse("not_found", f"no service {sid!r} in environment "
                                       f"{result.from_environment}")
        item = PromotedService(sid, src["path"], src["config_id"], src["version"],
                               src["status"], source_change=src["last_commit"])
        dst = _env_service(db, result.to_environment, sid)
        if dst is not None:
            item.target_path, item.from_config = dst["path"], dst["config_id"]
            item.target_version, item.target_status = dst["version"], dst["status"]
            item.target_change = dst["last_commit"]
        result.services.append(item)


def _source_bytes(repo: pygit2.Repository, commit: str, item: PromotedService
                  ) -> tuple[bytes, int]:
    """The exact bytes (and file mode) of the service's file at the source tip."""
    try:
        entry = repo[commit].peel(pygit2.Commit).tree[git_path(item.path or "")]
    except (KeyError, ValueError, TypeError):
        entry = None
    if entry is None or not isinstance(repo.get(entry.id), pygit2.Blob):
        raise _Refuse("not_found", f"{item.service_id}: {item.path} is not a file at "
                                   f"{commit[:7]} (re-run ingest)")
    if str(entry.id) != item.to_config:
        raise _Refuse("error", f"{item.service_id}: the database is behind the repository "
                               f"at {commit[:7]} (re-run ingest)")
    mode = FileMode.BLOB_EXECUTABLE if entry.filemode == FileMode.BLOB_EXECUTABLE \
        else FileMode.BLOB
    return repo.get(entry.id).data, mode


def _files(repo: pygit2.Repository, result: PromotionResult
           ) -> dict[str, tuple[bytes | None, int]]:
    """Git path -> (bytes or None to delete, mode) of the write."""
    files: dict[str, tuple[bytes | None, int]] = {}
    for item in result.services:
        if item.unchanged:
            continue
        if item.moved:
            files.setdefault(git_path(item.target_path or ""), (None, 0))
        files[git_path(item.path or "")] = _source_bytes(repo, result.source_commit or "",
                                                         item)
    return files


def _preview(repo: pygit2.Repository, head: str, result: PromotionResult,
             files: dict[str, tuple[bytes | None, int]], db: Any = None):  # -> Preview
    """The target's statuses with ``files`` written (``db``: the database, whose stored
    state of the head is used when it has one)."""
    from .preview import preview_write

    preview = preview_write(repo, head, {p: data for p, (data, _) in files.items()},
                            subject=[s.service_id for s in result.services if not s.unchanged],
                            db=db)
    for item in result.services:
        item.after = preview.written_after.get(item.service_id, item.target_status)
    return preview


def _target_head(repo: pygit2.Repository, branch: str, where: str,
                 source: str | None = None) -> pygit2.Oid:
    """The target branch's head; in the clone of a URL ``source``, the local branch is
    made from (or fast-forwarded to) ``origin/<branch>`` first, as for rollback."""
    ref = _branch_ref(repo, branch, bool(source) and is_url(source))
    if ref is None:
        raise _Refuse("error", f"branch {branch!r} not found in {where}")
    return ref.resolve().target


# ------------------------------------------------------------------------- promote
def promote(
    db_path: str | os.PathLike,
    services: list[str] | str,
    source: str,
    target: str,
    *,
    actor: Actor | str | None,
    repo_path: str | os.PathLike | None = None,
    expected_head: str | None = None,
    allow_error: bool = False,
    allow_breaking: bool = False,
    via: str = "api",
) -> PromotionResult:
    """Promote ``services`` from environment ``source`` to environment ``target``.

    ``expected_head`` is the target branch head the caller saw (a moved branch is
    refused); ``allow_error`` is needed to promote a version that is ERROR in the source.
    The target's statuses after the write are previewed first (``result.preview``); a
    promotion that puts other services of the target into ERROR is refused (outcome
    ``breaking``) unless ``allow_breaking``.
    Returns the result on success; raises :class:`PromotionRefused` otherwise. Every
    attempt is recorded in ``promotions`` (a row per service) either way.
    """
    db_path = Path(db_path)
    who = normalize_actor(actor)
    ids = [services] if isinstance(services, str) else list(services)
    result = PromotionResult(from_environment=source, to_environment=target,
                             actor_id=str(who["id"]), expected_head=expected_head)
    with _rollback_lock(db_path):  # one Git writer per database (rollbacks too)
        db = connect(db_path)
        try:
            try:
                ingest_source = _promote_locked(db, result, ids, who, repo_path, allow_error,
                                                allow_breaking)
            except _Refuse as refusal:
                result.outcome, result.message = refusal.outcome, str(refusal)
                _fallback_services(result, ids)
                _record(db, result, who, via)
                raise PromotionRefused(result, refusal.exit_code) from None
            except Exception as exc:  # recorded, then re-raised
                result.outcome, result.message = "error", f"{type(exc).__name__}: {exc}"
                _fallback_services(result, ids)
                _record(db, result, who, via)
                raise
            _record(db, result, who, via)
        finally:
            db.close()
        _ingest_after(db_path, result, who, via, ingest_source)
    return result


def _fallback_services(result: PromotionResult, ids: list[str]) -> None:
    """A refusal before every service was looked up still records a row per service."""
    known = set(result.service_ids)
    result.services += [PromotedService(sid) for sid in dict.fromkeys(ids) if sid not in known]
    if not result.services:
        result.services = [PromotedService("")]


def _promote_locked(db: sqlite_utils.Database, result: PromotionResult, ids: list[str],
                    actor: Actor, repo_path: str | os.PathLike | None,
                    allow_error: bool, allow_breaking: bool) -> str:
    """The checks and the Git work; fills ``result``; returns the ingest source."""
    src, dst = _environments(db, result.from_environment, result.to_environment)
    result.from_environment, result.to_environment = src.name, dst.name
    result.from_branch, result.to_branch = src.branch, dst.branch
    result.source_commit = src.tip
    path_text = str(repo_path) if repo_path else get_meta(db, "repo_path")
    if not path_text:
        raise _Refuse("error", "the database does not say which repository it came from; "
                               "pass the repository path")
    repo = _open_repo(path_text)
    source = str(repo_path) if repo_path else (get_meta(db, "source") or path_text)
    _services(db, result, ids)
    if not src.tip:
        raise _Refuse("not_found", f"environment {src.name} has no commits")
    for item in result.services:
        for path in (item.path, item.target_path):
            if path is not None and not _safe_path(path):
                raise _Refuse("unsafe_path", f"{item.service_id} has no file inside the "
                              f"repository (its path {path!r} leaves it); nothing was written")
    head = _target_head(repo, dst.branch, path_text, get_meta(db, "source"))
    result.head_before = str(head)
    if result.expected_head and not str(head).startswith(result.expected_head.lower()):
        raise _Refuse("stale_head", f"branch {dst.branch} ({dst.name}) moved since the "
                      f"page was shown (was {result.expected_head[:7]}, now {str(head)[:7]}); "
                      "nothing was written. Reload the page and try again.")
    if all(item.unchanged for item in result.services):
        raise _Refuse("no_change", f"{dst.name} already has the {src.name} version of "
                      + ", ".join(result.service_ids) + "; nothing was written")
    erroring = [s for s in result.services if s.source_status == ERROR and not s.unchanged]
    if erroring and not allow_error:
        raise _Refuse("needs_confirm", ", ".join(s.service_id for s in erroring)
                      + f" {'is' if len(erroring) == 1 else 'are'} ERROR in {src.name}; "
                      "confirm to promote anyway (--allow-error). Nothing was written.")
    files = _files(repo, result)
    preview = _preview(repo, str(head), result, files, db)
    result.preview = preview.as_dict()
    if preview.breaks and not allow_breaking:  # the rollback's rule and outcome
        raise _Refuse("breaking", f"promoting {', '.join(result.service_ids)} to {dst.name} "
                      f"would put {len(preview.breaks)} other service(s) there into ERROR: "
                      + "; ".join(c.line() for c in preview.breaks[:5])
                      + (" …" if len(preview.breaks) > 5 else "")
                      + ". Nothing was written.")
    ref_name = f"refs/heads/{dst.branch}"
    checked_out = _checked_out(repo, ref_name)
    if checked_out:
        _check_worktree(repo, list(files))
    new_commit = _commit(repo, head, result, actor, files)
    if repo.references[ref_name].resolve().target != head:
        raise _Refuse("stale_head", f"branch {dst.branch} moved during the promotion; "
                                    "nothing was written")
    repo.references[ref_name].resolve().set_target(
        new_commit, f"aureacore-db: promote from {src.name} {str(src.tip)[:7]}")
    result.new_commit = str(new_commit)
    if "origin" in repo.remotes.names():
        failed = _push(repo, dst.branch)
        if failed is not None:
            repo.references[ref_name].resolve().set_target(head, "aureacore-db: undo promotion")
            result.new_commit = None
            advice = ("Push to a bare repository instead (origin has a checked-out "
                      "branch)." if "non-bare" in str(failed) else
                      "Someone else pushed first: pull, ingest and try again."
                      if isinstance(failed, PushRejected) else "")
            raise _Refuse("push_rejected", f"push to origin failed ({failed}); the local "
                          f"commit was undone, nothing changed. {advice}".rstrip(),
                          failed.exit_code)
        result.pushed = True
    if checked_out:
        _update_worktree(repo, list(files))
    written = [s.service_id for s in result.services if not s.unchanged]
    result.outcome = "ok"
    result.message = (f"promoted {', '.join(written)} from {src.name} "
                      f"({str(src.tip)[:7]}) to {dst.name} as commit {result.new_commit[:7]}"
                      + (" (pushed to origin)" if result.pushed else ""))
    return source


def _check_worktree(repo: pygit2.Repository, paths: list[str]) -> None:
    """Refuse uncommitted work, and a path whose folder is a symbolic link."""
    dirty = sorted({d for path in paths for d in _uncommitted(repo, path)})
    if dirty:
        listed = ", ".join(map(shown_path, dirty[:5])) + (" …" if len(dirty) > 5 else "")
        raise _Refuse("dirty", f"the working tree at {repo.workdir} has uncommitted changes "
                      f"({listed}); commit or stash them first. Nothing was written.")
    for path in paths:
        linked = _linked_folder(repo.workdir, shown_path(path))
        if linked:
            raise _Refuse("unsafe_path", f"{linked} in the working tree is a symbolic link; "
                          f"writing {shown_path(path)} would leave the repository. Nothing "
                          "was written.")


def _update_worktree(repo: pygit2.Repository, paths: list[str]) -> None:
    """Bring the checked-out files of the promotion up to the new head."""
    for path in paths:
        on_disk = os.path.join(os.fsencode(repo.workdir), os.fsencode(path))
        if os.path.islink(on_disk):  # libgit2 would write through it
            os.unlink(on_disk)
    repo.checkout_head(strategy=CheckoutStrategy.FORCE | CheckoutStrategy.REMOVE_UNTRACKED,
                       paths=[_RawPath(shown_path(p)) for p in paths])


def _commit(repo: pygit2.Repository, head: pygit2.Oid, result: PromotionResult,
            actor: Actor, files: dict[str, tuple[bytes | None, int]]) -> pygit2.Oid:
    """Create (not yet on any branch) the commit writing the source's bytes."""
    index = pygit2.Index()
    index.read_tree(repo[head].peel(pygit2.Commit).tree)
    for path, (data, mode) in files.items():
        if data is None:
            if path in index:
                index.remove(path)
            continue
        index.add(pygit2.IndexEntry(path, repo.create_blob(data), mode))
    tree = index.write_tree(repo)
    signature = actor_signature(actor)
    return repo.create_commit(None, signature, signature, commit_message(result, actor),
                              tree, [head])


def commit_message(result: PromotionResult, actor: Actor) -> str:
    """Subject, one line per service, and the trailers (source branch and commit)."""
    written = [s for s in result.services if not s.unchanged]
    what = written[0].service_id if len(written) == 1 else f"{len(written)} services"
    lines = [f"Promote {what} from {result.from_environment} to {result.to_environment}", ""]
    for item in written:
        moved = f" (moved from {item.target_path})" if item.moved else ""
        lines.append(f"- {item.service_id}: {item.path}{moved} as of "
                     f"{result.from_branch} {str(result.source_commit)[:7]} "
                     f"(config {str(item.to_config)[:7]})")
    lines += ["", f"{TRAILER}: {result.from_branch} {result.source_commit}",
              f"Promoted-by: {actor['id']}", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------- records
def _record(db: sqlite_utils.Database, result: PromotionResult, actor: Actor,
            via: str) -> None:
    """Write (or update) the ``promotions`` rows of an attempt, one per service."""
    message = scrub(result.message)
    with db.atomic():
        for item in result.services:
            row = {
                "attempted_at": now_iso(), "actor_id": str(actor["id"]),
                "actor": json.dumps(actor, sort_keys=True, default=str), "via": via,
                "service_id": item.service_id, "from_environment": result.from_environment,
                "to_environment": result.to_environment,
                "source_commit": result.source_commit, "from_config": item.from_config,
                "to_config": item.to_config, "path": item.path,
                "expected_head": result.expected_head, "head_before": result.head_before,
                "new_commit": result.new_commit if not item.unchanged else None,
                "pushed": int(result.pushed), "outcome": result.outcome,
                "message": message,
            }
            if item.id is None:
                item.id = int(db["promotions"].insert(row).last_pk)
            else:
                db["promotions"].update(item.id, {k: row[k] for k in (
                    "new_commit", "pushed", "outcome", "message")})


def _record_again(db_path: Path, result: PromotionResult, actor: Actor, via: str) -> None:
    db = connect(db_path)
    try:
        _record(db, result, actor, via)
    finally:
        db.close()


def ingest_environments(source: str, db_path: str | os.PathLike) -> None:
    """Ingest every environment the database follows, as they are now."""
    from .ingest import ingest

    db = connect(db_path)
    try:
        pairs = [(e.name, e.branch) for e in list_environments(db)]
    finally:
        db.close()
    ingest(source, db_path, environments=pairs or None)


def _ingest_after(db_path: Path, result: PromotionResult, actor: Actor, via: str,
                  source: str) -> None:
    """Ingest the new commit and add a ``promoted`` event per service (a failure only
    notes itself)."""
    from .events import PROMOTED, record_event

    try:
        ingest_environments(source, db_path)
    except Exception as exc:  # the commit is made; say that ingest must be rerun
        result.message += f"; ingest failed ({type(exc).__name__}: {exc}), run it again"
        _record_again(db_path, result, actor, via)
        return
    result.status_changes = _status_changes(db_path, result.new_commit)
    if result.status_changes:
        result.message += f"; status changed in {result.to_environment}: " \
                          f"{status_summary(result.status_changes)}"
        _record_again(db_path, result, actor, via)
    db = connect(db_path)
    try:
        with db.atomic():
            for item in result.services:
                if item.unchanged:
                    continue
                record_event(db, PROMOTED, item.service_id, result.new_commit, {
                    "actor": actor["id"], "from_environment": result.from_environment,
                    "to_environment": result.to_environment,
                    "source_commit": result.source_commit, "from_config": item.from_config,
                    "to_config": item.to_config, "path": item.path,
                    "pushed": result.pushed, "promotion_id": item.id, "via": via,
                })
    finally:
        db.close()


def catch_up(db_path: str | os.PathLike, repo_path: str | os.PathLike | None = None) -> bool:
    """Ingest the environments as they are now (after a stale-head refusal); False if
    that failed."""
    db = connect(db_path)
    try:
        source = str(repo_path) if repo_path else get_meta(db, "source")
    finally:
        db.close()
    try:
        ingest_environments(source or "", db_path)
    except Exception:  # best effort: the refusal stands either way
        return False
    return True


# ------------------------------------------------------------------------- describe
def describe(db_path: str | os.PathLike, services: list[str] | str, source: str,
             target: str, *, repo_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """What a promotion would do, without doing it (the CLI's prompt, the web's confirm
    page): both environments' versions of each service, the target head, whether a
    source version is ERROR (``needs_confirm``), why it would be refused, and the
    preview of the target's statuses.

    Raises :class:`LookupError` when an environment or a service cannot be found.
    """
    ids = [services] if isinstance(services, str) else list(services)
    result = PromotionResult(from_environment=source, to_environment=target, actor_id="-")
    db = connect(db_path)
    try:
        path_text = str(repo_path) if repo_path else get_meta(db, "repo_path")
        if not path_text:
            raise LookupError("the database does not say which repository it came from")
        try:
            src, dst = _environments(db, source, target)
            result.from_environment, result.to_environment = src.name, dst.name
            result.from_branch, result.to_branch = src.branch, dst.branch
            result.source_commit = src.tip
            _services(db, result, ids)
            repo = _open_repo(path_text)
            head = str(_target_head(repo, dst.branch, path_text, get_meta(db, "source")))
        except _Refuse as refusal:
            raise LookupError(str(refusal)) from None
    finally:
        db.close()
    refused = None
    if all(item.unchanged for item in result.services):
        refused = (f"{dst.name} already has the {src.name} version of "
                   + ", ".join(result.service_ids))
    elif not all(_safe_path(p) for s in result.services for p in (s.path, s.target_path)
                 if p is not None):
        refused = "a service's path leaves the repository"
    preview = None
    if refused is None:
        try:
            preview = _preview(repo, head, result, _files(repo, result), db_path).as_dict()
        except _Refuse as refusal:
            refused = str(refusal)
    return {
        "services": [asdict(s) | {"moved": s.moved, "unchanged": s.unchanged}
                     for s in result.services],
        "from_environment": src.name, "from_branch": src.branch,
        "to_environment": dst.name, "to_branch": dst.branch,
        "source_commit": src.tip, "target_tip": dst.tip, "expected_head": head,
        "repo": path_text,
        "needs_confirm": any(s.source_status == ERROR and not s.unchanged
                             for s in result.services),
        "refused": refused, "preview": preview,
    }

