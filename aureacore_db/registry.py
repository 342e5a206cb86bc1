"""The Service Registry: register, look up and sync services on top of the database.

Registration flow (one registry lock held throughout, see below):

1. pull (remote clones only: fetch + fast-forward);
2. validate the candidate: the file's own checks and the whole-tree checks, by
   running the branch tip's tree *plus the new file* through
   :class:`~aureacore_db.tree.TreeState` (incrementally, from a cached state of the tip);
3. reject with the list of problems, writing nothing; or
4. write the file (:class:`ConfigStore`, atomic), commit only that file
   (:class:`GitProvider`, compare-and-swap on the branch), record the registration as
   ``PENDING``, push (remote clones), ingest, then record the real status
   (``CONFIGURED`` or ``ERROR``) and deliver the new ``events`` rows to subscribers.

**Where PENDING lives.** The contract's ``status`` table is derived from Git only:
one row where a service's verdict at a commit differs from its first parent's, so a
full re-ingest into an empty database gives exactly the same rows as the incremental
runs. A PENDING row there would exist only in databases that saw the registration
happen, and would break that equality. PENDING is therefore kept in the registry's own
``registrations`` table (one row per registration: ``status`` PENDING from the moment
the commit exists, then CONFIGURED / ERROR once ingest has validated that commit, with
``registered_at`` and ``checked_at``). :meth:`ServiceRegistry.get_service` reports a
service with an unresolved registration as PENDING. A process killed between commit
and ingest leaves the PENDING row and the commit; the next sync ingests the commit and
resolves the row, so nothing is lost and ingest never has to know about registrations.

**Environments.** A registry writes on one environment's branch (DESIGN §6; default:
the first environment, or ``branch``); its lookups read that environment's current
services (``environment_services``) and its registrations. Ingest, and so a sync,
follows every environment of the database.

**Concurrency.** Registrations and syncs on one working clone are serialised by an
advisory lock file in its ``.git`` folder (:class:`RegistryBusy` after
``lock_timeout``); the branch moves by compare-and-swap, so a writer outside the
registry (``git commit`` in the same clone, or another machine pushing) makes us fail
with :class:`RegistrationConflict` rather than lose a commit. Ingest keeps its own lock
per database, and SQLite runs in WAL mode, so Datasette keeps reading during a sync.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pygit2
import sqlite_utils
import yaml

from .configstore import ConfigStore, atomic_write
from .db import connect, get_meta
from .environments import Environment, get_environment, list_environments
from .gitpath import git_path, path_text
from .gitprovider import Diverged, GitProvider, GitProviderError, PullResult
from .gitsource import clone_dir, drop_bare_cache, is_url
from .ingest import Ingest, IngestResult
from .locks import file_lock
from .models import Service, ServiceConfig, ServiceStatus
from .names import ERROR, PENDING
from .parsing import parse_config
from .preview import Preview, preview_write
from .timestamps import now_iso
from .tree import ROOT_FILES, SERVICES_DIR, BlobReader, TreeState
from .validation import Problem, check_config
from .worktrees import WorktreeError, ensure_worktree, on_branch, on_branch_while, worktree_for

log = logging.getLogger(__name__)

# -- errors -------------------------------------------------------------------------
class RegistryError(Exception):
    """A registry operation failed; the message says why."""


class RegistrationRejected(RegistryError):
    """The service is invalid; nothing was written. ``problems`` says why."""

    def __init__(self, service_id: str, problems: list[Problem]) -> None:
        self.service_id = service_id
        self.problems = problems
        lines = [f"  {p.json_path}: {p.severity}: {p.message}" for p in problems]
        super().__init__(f"registration of {service_id} rejected:\n" + "\n".join(lines))


class RegistrationConflict(RegistryError):
    """Someone else changed the branch at the same time; nothing was written; retry."""


class RegistryBusy(RegistrationConflict):
    """Another registration or sync holds the registry lock."""


# -- results ------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """One row of the ``events`` table, as delivered to subscribers."""

    id: int
    kind: str
    service_id: str | None
    commit_sha: str | None
    seq: int | None
    mainline: int | None
    occurred_at: str
    payload: dict[str, Any]


@dataclass
class Subscription:
    """A callback registered with :meth:`ServiceRegistry.subscribe`."""

    callback: Callable[[Event], None]
    kinds: frozenset[str] | None
    _registry: ServiceRegistry | None = field(default=None, repr=False)

    def wants(self, event: Event) -> bool:
        return self.kinds is None or event.kind in self.kinds

    def cancel(self) -> None:
        if self._registry is not None:
            self._registry.unsubscribe(self)
            self._registry = None


@dataclass
class RegistrationResult:
    """What :meth:`ServiceRegistry.register_service` did."""

    service_id: str
    path: str
    commit: str | None  # None when the file was already exactly this
    status: str  # PENDING (not yet ingested), CONFIGURED or ERROR
    message: str
    problems: list[Problem] = field(default_factory=list)
    ingest: dict[str, Any] | None = None
    preview: dict[str, Any] | None = None  # preview.Preview.as_dict() of the write

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["problems"] = [p.as_row() for p in self.problems]
        return out


@dataclass
class SyncResult:
    """What :meth:`ServiceRegistry.sync_configurations` found."""

    old_tip: str | None  # the database's tip before the sync
    new_tip: str | None
    new_commits: list[str] = field(default_factory=list)
    changed_services: list[dict[str, Any]] = field(default_factory=list)
    status_changes: list[dict[str, Any]] = field(default_factory=list)
    rewrite_detected: bool = False
    events_delivered: int = 0
    ingest: dict[str, Any] | None = None
    unpushed: list[str] = field(default_factory=list)  # local commits sync left alone
    diverged: str | None = None  # why the remote's commits could not be pulled

    @property
    def changed(self) -> bool:
        return bool(self.new_commits or self.rewrite_detected)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PushResult:
    """What :meth:`ServiceRegistry.push` did."""

    pushed: list[str] = field(default_factory=list)  # commit ids now on the remote
    rebased: dict[str, str] = field(default_factory=dict)  # old id -> replayed id
    sync: SyncResult | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Plan:
    """A validated candidate registration."""

    service_id: str
    path: str  # the service file, as stored (gitpath.path_text)
    files: dict[str, bytes]  # Git path (gitpath.git_path, as pygit2 takes it) -> content
    problems: list[Problem]  # the service's own, then other services it would break
    file_errors: bool  # errors that the file alone shows
    unchanged: bool
    existing: bool  # the service is declared at the tip already
    preview: Preview | None = None  # the statuses the branch would have after the write
    breaks: list[Problem] = field(default_factory=list)  # "would make X ERROR" problems


# -- the registry ---------------------------------------------------------------------
class ServiceRegistry:
    """Register, look up and sync the services of one config repository and database.

    ``repo`` is a local working clone (with or without an ``origin`` remote), or a URL
    / bare repository, which is cloned into ``workdir`` (default: a folder beside the
    database). ``strict`` (default) rejects a registration with any error, including
    whole-tree ones (missing dependency, cycle, breaking a dependent service);
    ``strict=False`` rejects only errors of the file itself and lets whole-tree
    problems through, ending in status ERROR.

    ``environment`` names the environment (DESIGN §6) to write on and read: its branch
    replaces ``branch`` (an unknown name raises
    :class:`~aureacore_db.environments.EnvError`). A URL's working clone is one per
    environment beyond the first.
    """

    def __init__(self, db: str | Path, repo: str | Path, branch: str = "main", *,
                 workdir: str | Path | None = None, timeout: float = 60.0,
                 lock_timeout: float = 120.0, strict: bool = True,
                 environment: str | None = None) -> None:
        self.db_path = Path(db)
        self.repo = str(repo)
        self.environment: Environment | None = None
        first: Environment | None = None
        if environment is not None:
            with self._db() as db_:
                self.environment = get_environment(db_, environment)
                first = get_environment(db_, None)
            branch = self.environment.branch
        self.branch = branch
        self.lock_timeout = lock_timeout
        self.strict = strict
        self._own_clone = False  # a URL's clone for this environment alone
        self._linked = False  # a linked worktree of a local repository
        if workdir is None and _needs_clone(self.repo):
            workdir = clone_dir(self.repo, self.db_path)
            if self.environment is not None and first is not None \
                    and self.environment.branch != first.branch:
                workdir = workdir.with_name(f"{workdir.name}@{self.environment.name}")
                self._own_clone = True
        self._worktree: Path | None = None  # ours, for a local repository on another branch
        if workdir is None and not on_branch(self.repo, branch):
            home = clone_dir(self.repo, self.db_path)
            home = home.with_name(f"{home.name}@{branch}")
            workdir = worktree_for(self.repo, branch, home)
            self._worktree = home if workdir == home else None
            self._linked = True
        self.git = GitProvider(self.repo, branch, workdir=workdir, timeout=timeout)
        self._subscribers: list[Subscription] = []
        self._state: tuple[str | None, TreeState, pygit2.Repository] | None = None
        with self._db() as db_:
            self._cursor = _max_event_id(db_)

    # -- lookups ---------------------------------------------------------------
    def get_service(self, service_id: str) -> Service | None:
        """The service at the branch tip (None if unknown or removed)."""
        with self._db() as db:
            if self.environment is None:
                row = _row(db, "select * from services where id = ? and removed = 0",
                           [service_id])
            else:
                row = next(iter(_env_rows(db, self.environment.name, service_id)), None)
            if row is None:
                pending = self._pending_registration(db, service_id)
                return None if pending is None else self._pending_service(db, pending)
            return self._service_from_row(db, row)

    def list_services(self, namespace: str | None = None,
                      status: str | None = None) -> list[Service]:
        """Current services, optionally of one namespace and/or status."""
        sql, params = "select * from services where removed = 0", []
        if namespace is not None:
            sql, params = sql + " and namespace = ?", [*params, namespace]
        with self._db() as db:
            if self.environment is None:
                rows = list(db.query(sql + " order by id", params))
            else:
                rows = [r for r in _env_rows(db, self.environment.name)
                        if namespace is None or r["namespace"] == namespace]
            found = [self._service_from_row(db, row) for row in rows]
            known = {s.id for s in found}
            where, args = self._reg_scope(db)
            for reg in db.query(f"select * from registrations where status = ? and {where} "
                                "order by id", [PENDING, *args]):
                if reg["service_id"] not in known and (
                        namespace is None or reg["service_id"].startswith(namespace + "/")):
                    found.append(self._pending_service(db, reg))
                    known.add(reg["service_id"])
        if status is not None:
            found = [s for s in found if s.status.state == status]
        return sorted(found, key=lambda s: s.id)

    def _service_from_row(self, db: sqlite_utils.Database, row: dict[str, Any]) -> Service:
        config_row = _row(db, "select * from configs where id = ?", [row["config_id"]])
        if self.environment is None:
            errors = db.query("select * from current_errors where service_id = ? "
                              "order by severity, json_path", [row["id"]])
            checked = db.execute("select checked_at from status where service_id = ? and "
                                 "mainline = 1 order by seq desc limit 1",
                                 [row["id"]]).fetchone()
        else:
            checked = db.execute(
                f"select checked_at, id from status st where service_id = ? and {_ON_ENV} "
                "order by seq desc limit 1", [row["id"], self.environment.name]).fetchone()
            errors = db.query("select * from validation_errors where status_id = ? "
                              "order by severity, json_path", [checked[1] if checked else -1])
        problems = tuple(Problem(p["severity"], p["kind"], p["message"], p["json_path"],
                                 p["schema"]) for p in errors)
        service = Service.from_row(row, config_row, problems, checked[0] if checked else None)
        pending = self._pending_registration(db, row["id"])
        if pending is not None:
            service.status = ServiceStatus(PENDING, pending["message"] or "",
                                           pending["registered_at"])
        return service

    def _pending_registration(self, db: sqlite_utils.Database,
                              service_id: str) -> dict[str, Any] | None:
        where, args = self._reg_scope(db)
        return _row(db, f"select * from registrations where service_id = ? and status = ? "
                        f"and {where} order by id desc limit 1", [service_id, PENDING, *args])

    def _env_name(self, db: sqlite_utils.Database) -> str | None:
        """The environment written to: this registry's, else the database's first."""
        if self.environment is not None:
            return self.environment.name
        first = list_environments(db)[:1]
        return first[0].name if first else None

    def _reg_scope(self, db: sqlite_utils.Database) -> tuple[str, list[Any]]:
        """SQL (and its parameters) selecting the registrations of this environment (of
        the first one: also those naming none, made before environments)."""
        name = self._env_name(db)
        if self.environment is None:
            return "(environment is null or environment is ?)", [name]
        return "environment = ?", [name]

    def _pending_service(self, db: sqlite_utils.Database, reg: dict[str, Any]) -> Service:
        namespace, _, name = reg["service_id"].partition("/")
        config = None
        path = self.git.workdir / reg["path"]
        if path.is_file():
            try:
                config = ServiceConfig.from_file(path)
            except ValueError:
                config = None
        return Service(name, namespace, config,
                       ServiceStatus(PENDING, reg["message"] or "", reg["registered_at"]),
                       reg["registered_at"], reg["path"], reg["commit_sha"])

    # -- validation ------------------------------------------------------------
    def validate_service(self, service: Service | ServiceConfig, *,
                         warnings: bool = False) -> list[Problem]:
        """Problems registering ``service`` now would have (empty when valid).

        The file's own checks plus every whole-tree check against the current branch
        tip: duplicates, dependencies, cycles, and services it would break.
        """
        service = _as_service(service)
        if service.config is None:
            return service.validate()
        self._ensure_clone()
        repo = self.git.open()
        plan = self._plan(repo, self.git.tip(repo), service)
        return [p for p in plan.problems if warnings or p.severity == "error"]

    def _plan(self, repo: pygit2.Repository, tip: str | None, service: Service) -> _Plan:
        sid = service.id
        own = service.validate()
        state = self._tree_state(repo, tip)
        path, files = self._target_files(repo, tip, state, service)
        tip_tree = repo[tip].peel(pygit2.Commit).tree if tip else None
        unchanged = tip_tree is not None and all(
            _blob_at(repo, tip_tree, rel) == data for rel, data in files.items())
        preview = preview_write(repo, tip, files, state=state, subject=sid)
        candidate, step = preview.candidate, preview.step
        assert candidate is not None and step is not None
        data = files[git_path(path)]
        file_check = check_config(parse_config(data, path))
        problems: list[Problem] = [p for p in own if p not in file_check.problems]
        declared = candidate.path_id.get(path)
        verdict = candidate.verdicts.get(sid)
        if declared != sid:
            problems.append(Problem("error", "schema", f"{path} would declare "
                                    f"{declared or 'no service'}, not {sid}", "$.name"))
        if verdict is not None:
            problems.extend(verdict.problems)
        else:
            problems.extend(file_check.problems)
        breaks = [Problem("error", "dependency", f"would make {c.service_id} ERROR: {c.reason}",
                          "$", None) for c in preview.breaks]
        problems.extend(breaks)
        file_errors = any(p.severity == "error" for p in own) or file_check.has_errors \
            or declared != sid
        return _Plan(sid, path, files, problems, file_errors, unchanged, sid in state.by_id,
                     preview, breaks)

    def preview_registration(self, service: Service | ServiceConfig) -> RegistrationResult:
        """What registering ``service`` would do, writing nothing: ``preview`` (the status
        changes, :func:`~aureacore_db.preview.preview_write`) and ``problems``."""
        service = _as_service(service)
        if service.config is None:
            raise RegistrationRejected(service.id, service.validate())
        self._ensure_clone()
        repo = self.git.open()
        plan = self._plan(repo, self.git.tip(repo), service)
        after = plan.preview.subject_after if plan.preview else None
        return RegistrationResult(service.id, plan.path, None, after or PENDING,
                                  "unchanged" if plan.unchanged else "dry run: not written",
                                  plan.problems,
                                  preview=plan.preview.as_dict() if plan.preview else None)

    def _tree_state(self, repo: pygit2.Repository, tip: str | None) -> TreeState:
        """The tip's :class:`TreeState`, moved incrementally from the cached one."""
        tree = repo[tip].peel(pygit2.Commit).tree if tip else None
        if self._state is not None and self._state[2].path == repo.path:
            cached_tip, state, cached_repo = self._state
            if cached_tip != tip:
                old_tree = cached_repo[cached_tip].peel(pygit2.Commit).tree \
                    if cached_tip else None
                if tree is None:
                    state = TreeState(state.reader)
                elif old_tree is None:
                    state.advance(None, cached_repo[tree.id])
                else:
                    state.advance(old_tree, cached_repo[tree.id])
                self._state = (tip, state, cached_repo)
            return state
        # Built once per registry from the blobs (parsing each service file once);
        # later calls move it by diff, at the cost of the change.
        state = TreeState(BlobReader(repo))
        if tree is not None:
            state.advance(None, tree)
        self._state = (tip, state, repo)
        return state

    def _target_files(self, repo: pygit2.Repository, tip: str | None, state: TreeState,
                      service: Service) -> tuple[str, dict[str, bytes]]:
        """Where the service's file goes (stored text, as the tree holds paths), and every
        file to write (Git path -> bytes): a file with a non-UTF-8 name is written again
        under its exact name."""
        sid = service.id
        assert service.config is not None
        existing = state.primary(sid)
        if existing is not None and not existing.path.startswith("<"):
            path = existing.path
        elif state.layout.kind == "root":
            path = f"{state.layout.config_dir}/{service.namespace}/{service.name}.yaml"
        else:
            path = f"{SERVICES_DIR}/{service.namespace}/{service.name}.yaml"
        fmt = "json" if path.lower().endswith(".json") else "yaml"
        files = {git_path(path): service.config.dumps(fmt).encode("utf-8")}
        if state.layout.kind == "root" and existing is None and tip is not None:
            files.update(_root_file_with(repo, tip, state, service, path))
        return path, files

    # -- registration -----------------------------------------------------------
    def register_service(self, service: Service | ServiceConfig, *,
                         author: str | None = None, message: str | None = None,
                         strict: bool | None = None,
                         allow_breaking: bool = False) -> RegistrationResult:
        """Validate, write, commit (and push), ingest; see the module docstring.

        ``allow_breaking`` lets a strict registration through when its only whole-tree
        errors are other services it puts into ERROR (see ``result.preview``)."""
        service = _as_service(service)
        if service.config is None:
            raise RegistrationRejected(service.id, service.validate())
        strict = self.strict if strict is None else strict
        with self._lock():
            self._ensure_clone()
            self._pull()
            repo = self.git.open()
            tip = self.git.tip(repo)
            plan = self._plan(repo, tip, service)
            errors = [p for p in plan.problems if p.severity == "error"
                      and not (allow_breaking and p in plan.breaks)]
            if plan.file_errors or (strict and errors):
                raise RegistrationRejected(service.id, plan.problems)
            if plan.unchanged:
                ingest = self._ingest()
                self._deliver()
                current = self.get_service(service.id)
                status = current.status if current else ServiceStatus(PENDING)
                return RegistrationResult(service.id, plan.path, None, status.state,
                                          status.message or "unchanged", plan.problems,
                                          ingest.as_dict(), _preview_dict(plan))
            sha = self._write_and_commit(tip, plan, service, author, message)
            ingest_error = None
            try:
                result = self._ingest()
            except Exception as exc:  # the commit is safe; the next sync catches up
                log.warning("ingest after registering %s failed: %s", service.id, exc)
                result, ingest_error = None, exc
            with self._db() as db:
                self._resolve_registrations(db, repo)
                reg = _row(db, "select * from registrations where commit_sha = ? and "
                               "service_id = ? order by id desc limit 1", [sha, service.id])
            self._deliver()
        status = reg["status"] if reg else PENDING
        text = reg["message"] if reg else ""
        if ingest_error is not None:
            text = (f"committed as {sha[:12]}; ingest failed ({ingest_error}); the next "
                    "sync catches up")
        return RegistrationResult(service.id, plan.path, sha, status, text or "",
                                  plan.problems, result.as_dict() if result else None,
                                  _preview_dict(plan))

    def _write_and_commit(self, tip: str | None, plan: _Plan, service: Service,
                          author: str | None, message: str | None) -> str:
        """Write files, commit, record PENDING, push; undo everything on failure."""
        store = ConfigStore(self.git.workdir)
        assert service.config is not None
        self._refuse_uncommitted(tip, plan.files)
        verb = "Update" if plan.existing else "Register"
        message = message or f"{verb} {plan.service_id} {service.config.version or ''}".strip()
        try:
            for rel, data in plan.files.items():
                if rel == git_path(plan.path):
                    store.save_config(rel, service.config)
                else:
                    atomic_write(self.git.workdir / rel, data)
            sha = self.git.commit_changes(message, list(plan.files), author, expected_tip=tip)
        except Exception as exc:
            self._restore(tip, list(plan.files))
            converted = _conflict_or(exc)
            if converted is exc:
                raise
            raise converted from exc
        assert sha is not None
        with self._db() as db:
            with db.atomic():
                reg_id = db["registrations"].insert({
                    "service_id": plan.service_id, "path": plan.path, "commit_sha": sha,
                    "parent_sha": tip, "status": PENDING,
                    "message": "registered, not yet validated", "author": author,
                    "registered_at": now_iso(), "environment": self._env_name(db)}).last_pk
        if self._has_remote():
            try:
                self.git.push()
            except GitProviderError as exc:
                self.git.reset_to(tip, expected=sha, files=list(plan.files))  # type: ignore[arg-type]
                with self._db() as db:
                    with db.atomic():
                        db.execute("delete from registrations where id = ?", [reg_id])
                raise _conflict_or(exc) from exc
        return sha

    def _refuse_uncommitted(self, tip: str | None, files: dict[str, bytes]) -> None:
        """Never overwrite someone's uncommitted edit of a file we are about to write
        (a leftover identical to what we write, e.g. from a killed run, is fine)."""
        repo = self.git.open()
        tree = repo[tip].peel(pygit2.Commit).tree if tip else None
        for rel, data in files.items():
            path = self.git.workdir / rel
            if not path.is_file():
                continue
            on_disk = path.read_bytes()
            if on_disk != data and on_disk != _blob_at(repo, tree, rel):
                raise RegistryError(f"{path_text(rel)} has uncommitted changes in "
                                    f"{self.git.workdir}; "
                                    "commit or discard them first (nothing was registered)")

    def _restore(self, tip: str | None, files: list[str]) -> None:
        """Put ``files`` back as they are at ``tip`` (after a failed commit)."""
        repo = self.git.open()
        tree = repo[tip].peel(pygit2.Commit).tree if tip else None
        for rel in files:
            data = _blob_at(repo, tree, rel) if tree is not None else None
            path = self.git.workdir / rel
            if data is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write(path, data)

    # -- sync ------------------------------------------------------------------
    def sync_configurations(self) -> SyncResult:
        """Pull (remote clones), ingest new commits, resolve registrations, notify.

        Returns the new commits, the services they changed and the status changes.
        The cost is that of the change: queries start from the commits added.
        """
        with self._lock():
            self._ensure_clone()
            diverged = None
            try:
                pulled = self.git.pull_changes()
            except Diverged as exc:  # kept as it is; `push` (or the next write) resolves it
                old = self.git.tip()
                pulled, diverged = PullResult(old, old, True), str(exc)
            before = self._before_rewrite(pulled)
            with self._db() as db:
                before_seq = db.execute("select coalesce(max(seq), 0) from commits"
                                        ).fetchone()[0]
                old_tip = get_meta(db, "tip")
            result = self._ingest()
            report = SyncResult(old_tip, result.tip,
                                rewrite_detected=result.rewrite_detected,
                                ingest=result.as_dict(), unpushed=self.git.unpushed(),
                                diverged=diverged)
            with self._db() as db:
                if result.commits_added:
                    if before is None:
                        shas = [r[0] for r in db.execute(
                            "select sha from commits where seq > ? order by seq", [before_seq])]
                    else:
                        shas = [r[0] for r in db.execute("select sha from commits order by seq")
                                if r[0] not in before]
                    self._report_changes(db, shas, report)
                self._resolve_registrations(db, self.git.open())
            report.events_delivered = self._deliver()
        return report

    @staticmethod
    def _report_changes(db: sqlite_utils.Database, shas: list[str], report: SyncResult) -> None:
        """Fill the report from the rows of the commits ``shas`` (cost: the change)."""
        report.new_commits = shas
        for chunk in (shas[i:i + 500] for i in range(0, len(shas), 500)):
            marks = ",".join("?" * len(chunk))
            report.changed_services += db.query(
                "select h.service_id, h.change, h.commit_sha, h.path, h.old_path, h.status "
                f"from history h where h.commit_sha in ({marks}) order by h.seq, h.service_id",
                chunk)
            report.status_changes += db.query(
                "select s.service_id, s.previous_status, s.status, s.message, s.commit_sha "
                f"from status s where s.commit_sha in ({marks}) order by s.seq, s.service_id",
                chunk)

    def _before_rewrite(self, pulled: PullResult) -> set[str] | None:
        """Commit ids before an ingest that will see a rewritten branch (None: no rewrite).

        Ingest removes the rows of commits no longer reachable, so new commits may get
        lower ``seq`` numbers; then they are found by set difference instead. (Event ids
        are never reused, AUTOINCREMENT: new events are always above the cursor.)
        """
        with self._db() as db:
            old = get_meta(db, "tip")
            if old is None or pulled.new_tip is None or old == pulled.new_tip:
                return None
            repo = self.git.open()
            if old in repo and repo.descendant_of(pulled.new_tip, old):
                return None
            return {r[0] for r in db.execute("select sha from commits")}

    # -- push --------------------------------------------------------------------------
    def push(self) -> PushResult:
        """Push local commits the remote lacks (a registration made while it was down),
        replayed onto the remote's new commits when both touch different files;
        :class:`~aureacore_db.gitprovider.Diverged` names both sides' commits
        otherwise, and nothing moves. Then sync, so the database shows the result."""
        with self._lock():
            self._ensure_clone()
            pending = self._push_pending()
        report = PushResult(pending[0], pending[1])
        report.sync = self.sync_configurations()
        return report

    def _push_pending(self) -> tuple[list[str], dict[str, str]]:
        """Push what is pending (registry lock held); registrations follow replays."""
        if not self._has_remote():
            return [], {}
        self.git.fetch()
        outgoing = self.git.unpushed()
        mapping = self.git.push_pending()
        if mapping:
            with self._db() as db:
                with db.atomic():
                    db.conn.executemany("update registrations set commit_sha = ? where "
                                        "commit_sha = ?", [(n, o) for o, n in mapping.items()])
        return [mapping.get(sha, sha) for sha in outgoing], mapping

    # -- internals -------------------------------------------------------------------
    def _pull(self) -> PullResult:
        """Before a write: pull, and push commits an earlier write left unpushed
        (replayed onto a moved remote when they touch different files)."""
        try:
            pulled = self.git.pull_changes()
        except Diverged:
            self._push_pending()
            tip = self.git.tip()
            return PullResult(tip, tip, True)
        if pulled.ahead:
            self._push_pending()
        return pulled

    def _has_remote(self) -> bool:
        return self.git.has_remote()

    def _ingest(self) -> IngestResult:
        """Ingest every environment of the database (the branch written on is one of
        them). A clone's own branches are this one's alone: with several environments, a
        URL (or bare repository) is ingested itself, which fetches each one's branch."""
        source = str(self.git.workdir)
        if self._linked or _needs_clone(self.repo) and (self._own_clone or self._several()):
            source = self.repo
        return Ingest(source, self.db_path, branch=self.branch).run()

    def _several(self) -> bool:
        with self._db() as db:
            return len(list_environments(db)) > 1

    def _resolve_registrations(self, db: sqlite_utils.Database,
                               repo: pygit2.Repository) -> None:
        """Give PENDING registrations whose commit was ingested their real status."""
        pending = list(db.query("select id, service_id, commit_sha, environment "
                                "from registrations where status = ?", [PENDING]))
        if not pending:
            return
        envs = {e.name: e for e in list_environments(db)}
        first = next(iter(envs.values()), None)
        updates = []
        for reg in pending:
            env = envs.get(reg["environment"] or "")
            tip = env.tip if env else get_meta(db, "tip")
            commit = _row(db, "select seq from commits where sha = ?", [reg["commit_sha"]])
            if commit is None:
                if tip and _lost(repo, reg["commit_sha"], tip):
                    updates.append((ERROR, "commit is no longer on the branch "
                                    "(history was rewritten)", reg["id"]))
                continue
            if env is None or env == first:
                status = _row(db, "select status, message from status where service_id = ? "
                                  "and mainline = 1 and seq <= ? order by seq desc limit 1",
                              [reg["service_id"], commit["seq"]])
            else:
                status = _row(db, f"select status, message from status st where "
                                  f"service_id = ? and {_ON_ENV} and seq <= ? "
                                  "order by seq desc limit 1",
                              [reg["service_id"], env.name, commit["seq"]])
            if status is None:
                updates.append((ERROR, "the commit does not declare this service",
                                reg["id"]))
            else:
                updates.append((status["status"], status["message"] or "", reg["id"]))
        if updates:
            now = now_iso()
            with db.atomic():
                db.conn.executemany("update registrations set status = ?, message = ?, "
                               "checked_at = ? where id = ?",
                               [(st, msg, now, rid) for st, msg, rid in updates])

    def _ensure_clone(self) -> None:
        if self._worktree is not None:
            try:
                ensure_worktree(self.repo, self.branch, self._worktree)
            except WorktreeError as exc:
                raise RegistryError(str(exc)) from None
        if self._linked:
            return
        drop_bare_cache(self.git.workdir)
        if not (self.git.workdir / ".git").exists():
            lock = self.git.workdir.with_name(self.git.workdir.name + ".clone.lock")
            lock.parent.mkdir(parents=True, exist_ok=True)
            with _flock(lock, self.lock_timeout, "clone"):
                self.git.clone_repo()

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self._ensure_clone()
        with _flock(self.git.git_dir / "aureacore-registry.lock", self.lock_timeout,
                    f"registration or sync on {self.git.workdir}"):
            if self._worktree is None:
                yield
                return
            try:
                with on_branch_while(self.repo, self.branch, self._worktree):
                    yield
            except WorktreeError as exc:
                raise RegistryError(str(exc)) from None

    @contextmanager
    def _db(self) -> Iterator[sqlite_utils.Database]:
        db = connect(self.db_path)
        try:
            yield db
        finally:
            db.close()

    # -- subscriptions -----------------------------------------------------------
    def subscribe(self, callback: Callable[[Event], None],
                  kinds: Iterable[str] | None = None) -> Subscription:
        """Call ``callback(event)`` for each new ``events`` row after a sync or
        registration (in this process), optionally only for some kinds."""
        sub = Subscription(callback, frozenset(kinds) if kinds is not None else None, self)
        self._subscribers.append(sub)
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)

    def _deliver(self) -> int:
        """Deliver events with id above the cursor (ids are never reused)."""
        with self._db() as db:
            rows = list(db.query("select * from events where id > ? order by id",
                                 [self._cursor]))
        for row in rows:
            event = Event(row["id"], row["kind"], row["service_id"], row["commit_sha"],
                          row["seq"], row["mainline"], row["occurred_at"],
                          json.loads(row["payload"] or "{}"))
            for sub in list(self._subscribers):
                if sub.wants(event):
                    try:
                        sub.callback(event)
                    except Exception:  # one bad subscriber must not starve the others
                        log.exception("event subscriber %r failed on event %s",
                                      sub.callback, event.id)
            self._cursor = max(self._cursor, event.id)
        return len(rows)


# -- helpers ------------------------------------------------------------------------------
def _needs_clone(repo: str) -> bool:
    if is_url(repo):
        return True
    path = Path(repo).expanduser()
    return (path / "HEAD").is_file() and not (path / ".git").exists()  # a bare repository


def _as_service(service: Service | ServiceConfig) -> Service:
    return service if isinstance(service, Service) else Service.from_config(service)


def _row(db: sqlite_utils.Database, sql: str, params: list[Any]) -> dict[str, Any] | None:
    for row in db.query(sql, params):
        return row
    return None


_ON_ENV = ("exists (select 1 from environment_commits e where e.environment = ? "
           "and e.commit_sha = st.commit_sha)")


def _env_rows(db: sqlite_utils.Database, env: str,
              service_id: str | None = None) -> list[dict[str, Any]]:
    """Current services of environment ``env`` (or the one ``service_id``) as
    ``services``-like rows (with ``id``, ``namespace`` and ``name``)."""
    sql = "select * from environment_services where environment = ? and removed = 0"
    params = [env] if service_id is None else [env, service_id]
    found = []
    for row in db.query(sql + (" and service_id = ?" if service_id else "")
                        + " order by service_id", params):
        namespace, _, name = row["service_id"].partition("/")
        found.append({**row, "id": row["service_id"], "namespace": namespace, "name": name})
    return found


def _max_event_id(db: sqlite_utils.Database) -> int:
    return int(db.execute("select coalesce(max(id), 0) from events").fetchone()[0])


def _blob_at(repo: pygit2.Repository, tree: pygit2.Tree | None, rel: str) -> bytes | None:
    if tree is None:
        return None
    try:
        obj = tree[rel]
    except KeyError:
        return None
    return repo[obj.id].data if obj.type == pygit2.enums.ObjectType.BLOB else None


def _preview_dict(plan: _Plan) -> dict[str, Any] | None:
    return plan.preview.as_dict() if plan.preview else None


def _root_file_with(repo: pygit2.Repository, tip: str, state: TreeState, service: Service,
                    path: str) -> dict[str, bytes]:
    """The root file with the new service listed (root-file layout)."""
    name = state.layout.root_path or ROOT_FILES[0]
    tree = repo[tip].peel(pygit2.Commit).tree
    raw = _blob_at(repo, tree, name) or b""
    content = parse_config(raw, name).content or {}
    listed = list(content.get("services") or [])
    config_dir = state.layout.config_dir
    entry = {"name": service.name, "config_path": path[len(config_dir) + 1:]}
    if service.namespace != state.layout.default_namespace:
        entry["namespace"] = service.namespace
    content["services"] = [*listed, entry]
    if name.endswith(".json"):
        return {name: (json.dumps(content, indent=2) + "\n").encode()}
    return {name: yaml.safe_dump(content, sort_keys=False).encode()}


def _lost(repo: pygit2.Repository, sha: str, tip: str) -> bool:
    try:
        return sha != tip and not repo.descendant_of(tip, sha)
    except (KeyError, ValueError, pygit2.GitError):
        return True


def _conflict_or(exc: BaseException) -> BaseException:
    """Ref races and refused pushes become :class:`RegistrationConflict`."""
    from .gitprovider import PushRejected, RefConflict

    if isinstance(exc, PushRejected | RefConflict):
        return RegistrationConflict(f"{exc} (nothing was registered; retry)")
    if isinstance(exc, GitProviderError):
        return RegistryError(f"{exc} (nothing was registered; retry)")
    return exc


def _flock(path: Path, timeout: float, what: str) -> AbstractContextManager[None]:
    return file_lock(path, timeout, lambda: RegistryBusy(
        f"another {what} is in progress (waited {timeout:g}s for {path})"))
