"""Walk a branch's commits into the database (DESIGN §3).

Commits are processed parents first; each commit's services are compared with its first
parent's. Rows are written in batches, each one transaction, so an interrupted run
leaves the database as of its last batch and the next run continues from there.
"""

from __future__ import annotations

import json
import os
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

import pygit2
import sqlite_utils

from . import __version__
from .blobs import BlobReader, Entry
from .db import connect, delete_meta, get_meta, set_meta
from .environments import list_environments, resolve, stored_environments
from .events import KIND_OF_CHANGE, STATUS_CHANGED, STATUS_MESSAGE_CHANGED
from .gitsource import (
    CommitInfo,
    SourceError,
    branch_tip,
    canonical_order,
    first_parent_chain,
    forget_packs,
    is_url,
    open_source,
)
from .leafdiff import flat_changes
from .locks import file_lock
from .names import ERROR
from .parsing import DEFAULT_MAX_BYTES, ParseResult
from .prefetch import MIN_COMMITS, Prepared, bound_git_cache, prepared
from .resume import no_gc, resume_state
from .tables import PER_COMMIT, SERVICE_STATE, upgrade
from .timestamps import now_iso
from .tree import Change, Step, TreeState
from .urls import public_url, scrub
from .validation import ConfigCheck, Problem, checked_config
from .verdicts import Verdict
from .versions import service_ref

BATCH_COMMITS = 1000
BATCH_SECONDS = 5.0
# rows of the unwritten batch written ahead into its transaction beyond this many (a
# first commit of 10,000 services makes about a million), so they are never all in memory
SPILL_ROWS = 20_000
SPILLED = ("configs", "dependencies", "status", "validation_errors", "parameter_changes",
           "events")  # the flush reads the history rows, and writes commits last

Progress = Callable[[int, int], None]


@dataclass
class IngestResult:
    """Summary of one ingest run."""

    db: str
    source: str
    branch: str
    tip: str | None
    commits_added: int = 0
    commits_removed: int = 0
    rewrite_detected: bool = False
    commits: int = 0
    services: int = 0
    services_in_error: int = 0
    duration_s: float = 0.0
    outcome: str = "ok"
    shallow: bool = False  # the repository is a shallow clone: older history is missing
    note: str | None = None  # shallow clone, or history re-ingested after an unshallow
    environments: list[dict[str, Any]] = field(default_factory=list)  # name, branch, tip

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EnvTip:
    """An environment this run follows: its branch's tip now, and the tip recorded by
    the last run (None: the environment is new, or its branch changed)."""

    name: str
    branch: str
    tip: pygit2.Commit | None
    recorded: str | None = None


class IngestBusy(Exception):
    """Another ingest holds the database's lock."""


def ingest_lock(db_path: Path, timeout: float = 120.0) -> AbstractContextManager[None]:
    """One writer at a time per database (an advisory lock file beside it)."""
    return file_lock(db_path.with_name(db_path.name + ".lock"), timeout,
                     lambda: IngestBusy(f"another ingest is writing {db_path}"))


_payload_json = json.JSONEncoder(sort_keys=True).encode  # json.dumps(..., sort_keys=True)
_json_text = json.encoder.encode_basestring_ascii  # a string as json.dumps writes it

# the columns of the rows the walk holds (as tuples, values in this order)
COMMON = ("commit_sha", "seq", "mainline")
COLUMNS: dict[str, tuple[str, ...]] = {
    "commits": ("sha", "seq", "mainline", "parents", "author_name", "author_email",
                "authored_at", "committer_name", "committer_email", "message",
                "committed_at", "services_changed"),
    "configs": ("id", "service_id", "path", "format", "size", "raw", "content", "version",
                "schema_version", "parameters", "dependencies", "parse_error", "parse_line",
                "parse_column", "problems"),
    "dependencies": ("config_id", "position", "service_id", "depends_on",
                     "version_constraint", "required"),
    "history": ("id", "service_id", *COMMON, "change", "path", "old_path", "config_id",
                "previous_config_id", "status", "committed_at", "author_name",
                "author_email"),
    "status": ("id", "service_id", *COMMON, "status", "previous_status", "message",
               "checked_at"),
    "validation_errors": ("id", "status_id", "service_id", *COMMON, "config_id", "severity",
                          "kind", "json_path", "message", "schema"),
    "parameter_changes": ("id", "history_id", "service_id", *COMMON, "key", "old_value",
                          "new_value", "change", "committed_at", "author_name"),
    # no id: rollbacks and health checks append events concurrently
    "events": ("kind", "service_id", *COMMON, "occurred_at", "payload"),
}


_history_service = itemgetter(COLUMNS["history"].index("service_id"))
# a history row's (mainline, seq, commit_sha, committed_at): how _first_last orders them
_history_when = itemgetter(*(COLUMNS["history"].index(c)
                             for c in ("mainline", "seq", "commit_sha", "committed_at")))


def _json_value(value: str | None) -> str:
    return "null" if value is None else _json_text(value)


def _change_payload(change: str, path: str | None, old_path: str | None,
                    config_id: str | None, previous_config_id: str | None,
                    version: str | None, author: str) -> str:
    """A service change event's payload: the text ``_payload_json`` makes of these
    values (keys sorted), written directly."""
    return (f'{{"author": {_json_text(author)}, "change": {_json_text(change)}, '
            f'"config_id": {_json_value(config_id)}, "old_path": {_json_value(old_path)}, '
            f'"path": {_json_value(path)}, '
            f'"previous_config_id": {_json_value(previous_config_id)}, '
            f'"version": {_json_value(version)}}}')


class _Stored:
    """Checks of configs stored by earlier runs, so resuming needs no re-parsing."""

    COLUMNS = "format, raw, content, parse_error, parse_line, parse_column, problems"

    def __init__(self, db: sqlite_utils.Database, known: Callable[[str], bool]) -> None:
        self.db = db
        self.known = known  # cheap test first: most blobs of a run are new
        self._ahead: dict[str, tuple] = {}

    def preload_current(self) -> None:
        """Read the configs of the current services in one query, ahead of rebuilding a
        tree state from a commit ingested earlier (one query instead of one per service)."""
        self._ahead = {row[0]: row[1:] for row in self.db.conn.execute(
            f"select id, {self.COLUMNS} from configs "
            "where id in (select config_id from services where config_id is not null)")}

    def forget_preloaded(self) -> None:
        self._ahead = {}

    def __call__(self, oid: str) -> ConfigCheck | None:
        row = self._ahead.pop(oid, None)
        if row is None:
            if not self.known(oid):
                return None
            row = self.db.conn.execute(
                f"select {self.COLUMNS} from configs where id = ?", [oid]).fetchone()
        if row is None or row[6] is None:
            return None
        fmt, raw, content, error, line, column, problems = row
        parse = ParseResult(fmt, raw, json.loads(content) if content else None, error, line,
                            column)
        stored = () if problems == "[]" else tuple(Problem(**p) for p in json.loads(problems))
        return checked_config(parse, stored, content)


class _Recorded:
    """Blob ids recorded by this run, as a Bloom filter: the same 512 KB however long
    the history (a set of them would grow with it). "No" is certain, so a run that
    started on an empty database asks SQLite only about the ids it may have recorded
    (most blobs of a first run are new). A blob id is a hash: slices of it are the
    bit positions."""

    BITS = 1 << 22

    def __init__(self) -> None:
        self._bits = bytearray(self.BITS // 8)

    def _positions(self, oid: str) -> tuple[int, ...]:
        """Bits of the id's first three 6-digit slices (one int made of all three)."""
        value, mask = int(oid[:18], 16), self.BITS - 1
        return (value >> 48) & mask, (value >> 24) & mask, value & mask

    def add(self, oid: str) -> None:
        try:
            positions = self._positions(oid)
        except ValueError:  # not a hex id: may_hold answers yes anyway
            return
        for bit in positions:
            self._bits[bit >> 3] |= 1 << (bit & 7)

    def may_hold(self, oid: str) -> bool:
        try:
            a, b, c = self._positions(oid)
        except ValueError:  # not a hex id: ask the database
            return True
        bits = self._bits
        return bool(bits[a >> 3] >> (a & 7) & 1 and bits[b >> 3] >> (b & 7) & 1
                    and bits[c >> 3] >> (c & 7) & 1)


class Ingest:
    """One run of ingest over one database."""

    def __init__(
        self,
        source: str,
        db_path: str | Path,
        *,
        branch: str | None = None,
        environments: list[tuple[str, str]] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        progress: Progress | None = None,
        batch_commits: int = BATCH_COMMITS,
        workers: int | None = None,
    ) -> None:
        self.source = source
        self.db_path = Path(db_path)
        # the environments to follow (DESIGN §6): ``environments`` replaces the stored
        # list; else the stored one; else one named after ``branch`` (default main)
        stored = [] if environments else stored_environments(self.db_path)
        self.environments = resolve(stored, environments or [], branch)
        self.branch = self.environments[0][1]
        self.max_bytes = max_bytes
        self.progress = progress
        self.batch_commits = batch_commits
        self.workers = workers  # prefetch processes; None: one per spare core, 0: none
        self._rows: dict[str, list[tuple]] = {}  # table -> rows (see COLUMNS)
        self._unspilled = 0  # rows of SPILLED tables in self._rows
        # configs and (config, service) dependency lists of the unwritten batch; earlier
        # ones are looked up in the database, so memory does not grow with history
        self._batch_configs: set[str] = set()
        self._recorded: _Recorded | None = None  # configs of a run that started empty
        self._batch_deps: set[tuple[str, str]] = set()
        self._ids: dict[str, int] = {}
        self._touched: set[str] = set()  # services with rows in the unwritten batch
        self._refresh_all = False  # after a rewrite every service row may be stale
        self._appending = False  # this run only appends (see _plan_append)
        self._indexes_deferred = False  # a first bulk load builds read indexes at the end

    # -- public -------------------------------------------------------------
    def run(self) -> IngestResult:
        if not self.db_path.parent.is_dir():
            raise SourceError(f"folder {self.db_path.parent} (for the database) does not exist")
        # Open the repository and find the branch first: a bad source creates nothing.
        bound_git_cache()  # for this process: a long walk would fill it
        self.repo = open_source(self.source, self.db_path, self.branch,
                                also=[b for _, b in self.environments[1:]])
        remote = is_url(self.source)
        tips = {b: branch_tip(self.repo, b, remote_first=remote)
                for b in dict.fromkeys(b for _, b in self.environments)}
        with ingest_lock(self.db_path):
            db = connect(self.db_path, defer_indexes=True)
            self._indexes_deferred = not db.execute("select 1 from commits limit 1").fetchone()
            recorded = {e.name: e for e in list_environments(db)}
            envs = [EnvTip(name, branch, tips[branch],
                           recorded[name].tip if name in recorded
                           and recorded[name].branch == branch else None)
                    for name, branch in self.environments]
            self._dropped = sorted(recorded.keys() - {e.name for e in envs})
            try:
                return self._run(db, envs)
            finally:
                db.close()

    # -- the walk -----------------------------------------------------------
    def _run(self, db: sqlite_utils.Database, envs: list[EnvTip]) -> IngestResult:
        started = time.monotonic()
        self.db = db
        repo = self.repo
        repo_path = Path(repo.workdir or repo.path)
        source = public_url(self.source) if is_url(self.source) else str(repo_path)
        result = IngestResult(str(self.db_path), source, self.branch, None)
        with db.atomic():
            db.execute("update ingest_runs set outcome = 'interrupted' where outcome = 'running'")
            run_id = db["ingest_runs"].insert({
                "started_at": now_iso(), "source": source, "branch": self.branch,
                "outcome": "running"}).last_pk
            set_meta(db, "source", source)
            set_meta(db, "repo_path", str(repo_path.resolve()))
            set_meta(db, "branch", self.branch)
            set_meta(db, "tool_version", __version__)
            self._record_environments(envs)
        tip = envs[0].tip
        self.envs = envs
        try:
            result.tip = str(tip.id) if tip else None
            self._check_shallow(result)
            if any(env.tip is not None for env in envs) or self._dropped:
                self._walk(envs, result)
            result.environments = [{"name": e.name, "branch": e.branch,
                                    "tip": str(e.tip.id) if e.tip else None} for e in envs]
            if result.commits_removed and not result.rewrite_detected:  # re-ingested
                with db.atomic():
                    db.execute("update events set seq = c.seq, mainline = c.mainline "
                               "from commits c where c.sha = events.commit_sha")
            outcome, message = "ok", result.note
        except BaseException as exc:
            outcome, message = ("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                                scrub(f"{type(exc).__name__}: {exc}", self.source))
            if db.conn.in_transaction:  # an unwritten batch's spilled rows (see _spill)
                db.conn.rollback()
            with db.atomic():
                self._finish_run(run_id, result, outcome, message, started)
            raise
        with db.atomic():
            self._finish_run(run_id, result, outcome, message, started)
        counts = db.execute(
            "select (select count(*) from commits), "
            "(select count(*) from services where removed = 0), "
            "(select count(*) from services where removed = 0 and status = ?)",
            [ERROR]).fetchone()
        result.commits, result.services, result.services_in_error = counts
        result.duration_s = round(time.monotonic() - started, 3)
        return result

    def _check_shallow(self, result: IngestResult) -> None:
        """Note a shallow clone; when its graft points changed (``git fetch --unshallow``
        or ``--deepen``), forget the Git-derived rows so this run ingests the whole
        history as it is now, exactly as a fresh ingest would."""
        points = shallow_points(self.repo)
        recorded = get_meta(self.db, "shallow_points")
        db = self.db
        if recorded is not None and recorded != points:
            count = db.execute("select count(*) from commits").fetchone()[0]
            with db.atomic():
                for table in (*PER_COMMIT, "commits", "configs", "dependencies", "services",
                              "environment_commits", "environment_services"):
                    if table == "events":  # ingest's own; rollback events stay
                        kinds = sorted({*KIND_OF_CHANGE.values(), STATUS_CHANGED})
                        db.execute(f"delete from events where kind in "
                                   f"({','.join('?' * len(kinds))})", kinds)
                    else:
                        db.execute(f"delete from {table}")
                delete_meta(db, "complete_tip", "complete_count")
            for env in self.envs:
                env.recorded = None
            result.commits_removed = count
            result.note = ("the shallow clone's history changed (unshallowed or deepened): "
                           f"re-ingested it in full (replacing {count:,} commits)")
        with db.atomic():
            set_meta(db, "shallow_points", points)
        if points:
            result.shallow = True
            shallow = (f"shallow clone: history before {len(points.split())} commit(s) is "
                       "not in the repository and is not ingested; run `git fetch "
                       "--unshallow` and ingest again to add it")
            result.note = f"{result.note}; {shallow}" if result.note else shallow

    def _finish_run(self, run_id: int, result: IngestResult, outcome: str,
                    message: str | None, started: float) -> None:
        result.outcome = outcome
        self.db["ingest_runs"].update(run_id, {
            "finished_at": now_iso(), "tip": result.tip, "commits_added": result.commits_added,
            "commits_removed": result.commits_removed,
            "rewrite_detected": int(result.rewrite_detected), "outcome": outcome,
            "message": message, "duration_s": round(time.monotonic() - started, 3),
        })

    def _walk(self, envs: list[EnvTip], result: IngestResult) -> None:
        repo, db = self.repo, self.db
        first = envs[0].tip
        planned = self._plan_append(envs)
        todo, seqs, mains = planned if planned is not None else self._plan_full(envs, result)
        self._appending = planned is not None  # stored environment states are current
        tip_states: dict[pygit2.Oid, TreeState] = {}
        if not todo:
            if self._refresh_all and first is not None:
                with db.atomic():
                    self._refresh_services(None, first)
            self._update_environments(envs, tip_states)
            self._mark_complete(first)
            return
        for name in ("history", "status", "validation_errors", "parameter_changes"):
            self._ids[name] = db.execute(f"select coalesce(max(id), 0) from {name}").fetchone()[0]
        if not db.execute("select 1 from configs limit 1").fetchone():
            self._recorded = _Recorded()  # every config stored will be one this run records
        self.stored = _Stored(db, self._config_known)
        self.reader = BlobReader(repo, max_bytes=self.max_bytes, fallback=self.stored)
        pending = _Children(repo, todo)
        states: dict[pygit2.Oid, TreeState] = {}
        env_tips = {env.tip.id for env in envs if env.tip is not None}
        last_main: tuple[CommitInfo, TreeState] | None = None
        batch_started, in_batch = time.monotonic(), 0
        ahead = self._prepared(todo)
        if ahead is not None:
            # the workers read the commits: this process's mapping of the pack index,
            # which the planning above filled, is let go (see forget_packs)
            forget_packs(repo)
        for done, oid in enumerate(todo, 1):
            updates = None
            if ahead is not None:
                info, updates, checks = next(ahead)
                assert info.id == str(oid)
                self.reader.offer(checks)
            else:
                info = CommitInfo.of(repo[oid])
            parent = pygit2.Oid(hex=info.parents[0]) if info.parents else None
            state = self._state_for(parent, states, pending)
            if parent is not None and updates is not None:  # no tree read but for a rescan
                step = state.advance_by(updates, lambda oid=oid: repo[oid].tree)
            else:
                step = state.advance(repo[parent].tree if parent else None, repo[oid].tree,
                                     updates)
            seq, main = seqs[done - 1], mains[done - 1]
            self._record(info, seq, main, step, state)
            if pending.get(oid):
                states[oid] = state
            if oid in env_tips:  # kept for that environment's current services (a later
                # commit may advance ``state`` itself: the last child of a commit takes it)
                state = tip_states[oid] = state.copy() if pending.get(oid) else state
            if main:
                last_main = (info, state)
            result.commits_added += 1
            in_batch += 1
            if in_batch >= self.batch_commits or time.monotonic() - batch_started > BATCH_SECONDS:
                self._flush(last_main)
                batch_started, in_batch = time.monotonic(), 0
            if self.progress:
                self.progress(done, len(todo))
        self._flush(last_main)
        if self._refresh_all and first is not None:  # rewritten, and no mainline commit new
            with db.atomic():
                self._refresh_services(None, first)
        self._update_environments(envs, tip_states)
        self._mark_complete(first)

    # -- planning -----------------------------------------------------------
    def _order(self, envs: list[EnvTip], known: Callable[[str], bool] | None = None
               ) -> list[pygit2.Oid]:
        """Every commit reachable from the environments' tips, parents first: the first
        environment's in :func:`canonical_order`, then each next one's that are not yet
        in the order (for one environment, exactly ``canonical_order``)."""
        tips = [env.tip.id for env in envs if env.tip is not None]
        if len(tips) == 1:
            return canonical_order(self.repo, tips[0], known=known)
        order: list[pygit2.Oid] = []
        taken: set[str] = set()

        def seen(sha: str) -> bool:
            return sha in taken or (known is not None and known(sha))

        for tip in tips:
            part = canonical_order(self.repo, tip, known=seen)
            order += part
            taken.update(str(oid) for oid in part)
        return order

    def _plan_full(self, envs: list[EnvTip], result: IngestResult) -> Plan:
        """Number every reachable commit; reconcile rows of earlier runs with it.

        Commits stored before keep their order (renumbered without gaps when some are no
        longer reachable); new ones follow, parents first. A first run numbers commits
        in :meth:`_order`."""
        order = self._order(envs)
        first = envs[0].tip
        mainline = first_parent_chain(self.repo, first.id) if first is not None else set()
        if self.db.execute("select 1 from commits limit 1").fetchone() is None:
            # a first run: nothing to reconcile, and no per-commit dictionaries to keep
            return (order, array("q", range(1, len(order) + 1)),
                    bytearray(oid in mainline for oid in order))
        existing = {sha: (seq, main) for sha, seq, main in
                    self.db.execute("select sha, seq, mainline from commits order by seq")}
        reachable = {str(oid) for oid in order}
        seq_of: dict[str, int] = {}
        for sha in existing:  # in their stored order
            if sha in reachable:
                seq_of[sha] = len(seq_of) + 1
        del reachable
        todo = [oid for oid in order if str(oid) not in existing]
        for oid in todo:
            seq_of[str(oid)] = len(seq_of) + 1
        main_of = {str(oid): 0 for oid in order}
        main_of.update((str(oid), 1) for oid in mainline)
        self._reconcile(existing, seq_of, main_of, result)
        return (todo, array("q", (seq_of[str(oid)] for oid in todo)),
                bytearray(main_of[str(oid)] for oid in todo))

    def _plan_append(self, envs: list[EnvTip]) -> Plan | None:
        """The common case, without walking all history: the first environment's branch
        only grew from the tip a completed run ingested, along its first-parent chain,
        and every other environment's branch only grew from its recorded tip (no commit
        can have become unreachable). New commits get the next numbers, parents first
        (for one environment, exactly as a full run would number them)."""
        db = self.db
        done_tip, done_count = get_meta(db, "complete_tip"), get_meta(db, "complete_count")
        first = envs[0]
        if not done_tip or not done_count or first.tip is None or self._dropped \
                or first.recorded is None:
            return None
        count, top = db.execute("select count(*), coalesce(max(seq), 0) from commits").fetchone()
        if count != int(done_count) or top != count:
            return None
        known = self._commit_known
        chain: list[pygit2.Oid] = []
        oid: pygit2.Oid | None = first.tip.id
        while oid is not None and not known(str(oid)):
            chain.append(oid)
            parents = self.repo[oid].parent_ids
            oid = parents[0] if parents else None
        if oid is None or str(oid) != done_tip:
            return None  # rewritten, or the old tip left the first-parent chain
        for env in envs[1:]:
            if env.recorded is None or env.tip is None or str(env.tip.id) == env.recorded:
                if env.tip is None and env.recorded is not None:
                    return None  # its branch lost every commit
                continue
            try:
                grew = self.repo.descendant_of(env.tip.id, env.recorded)
            except (KeyError, ValueError, pygit2.GitError):
                grew = False
            if not grew:
                return None  # rewritten or moved back: some commits may be unreachable
        order = self._order(envs, known=known)
        mainline = set(chain)
        return (order, array("q", range(count + 1, count + len(order) + 1)),
                bytearray(o in mainline for o in order))

    def _commit_known(self, sha: str) -> bool:
        return self.db.conn.execute("select 1 from commits where sha = ?", [sha]).fetchone() \
            is not None

    def _config_known(self, oid: str) -> bool:
        """Whether a config row exists (in the unwritten batch, or stored)."""
        if oid in self._batch_configs:
            return True
        if self._recorded is not None and not self._recorded.may_hold(oid):
            return False  # certain: the database held no configs when this run started
        return self.db.conn.execute(
            "select 1 from configs where id = ?", [oid]).fetchone() is not None

    def _deps_known(self, oid: str, sid: str) -> bool:
        """Whether the dependency rows of a config read as a service's are recorded
        (a config without dependencies has none: looking again finds none to add)."""
        if (oid, sid) in self._batch_deps:
            return True
        return self.db.conn.execute(
            "select 1 from dependencies where config_id = ? and service_id = ? limit 1",
            [oid, sid]).fetchone() is not None

    def _mark_complete(self, tip: pygit2.Commit | None) -> None:
        """Remember a completed run's tip, so the next run can take the append path;
        build the indexes left out of a first bulk load."""
        if self._indexes_deferred:
            upgrade(self.db)
        if tip is None:
            return
        with self.db.atomic():
            count = self.db.execute("select count(*) from commits").fetchone()[0]
            set_meta(self.db, "complete_tip", str(tip.id))
            set_meta(self.db, "complete_count", str(count))

    def _prepared(self, todo: list[pygit2.Oid]) -> Iterator[Prepared] | None:
        """Diffs and parsed configs of the commits to do, from worker processes."""
        if self.workers == 0 or (self.workers is None and len(todo) < MIN_COMMITS):
            return None
        return prepared(self.repo.path, todo, self.max_bytes, self.workers)

    def _state_for(self, parent: pygit2.Oid | None, states: dict,
                   pending: _Children) -> TreeState:
        """The first parent's state, shared with the last child that needs it."""
        if parent is None:
            return TreeState(self.reader)
        state = states.get(parent)
        if state is None:  # ingested earlier
            # the stored rows are as of each environment's tip only on the append path
            known = resume_state(self.db, str(parent)) if self._appending else None
            if known is None:
                self.stored.preload_current()  # most likely the services of that commit
            with no_gc():  # many objects, none of them garbage: collecting is wasted time
                state = TreeState.resume(self.reader, self.repo[parent].tree, known)
            self.stored.forget_preloaded()
            if pending.get(parent) > 1:
                states[parent] = state
        if pending.take(parent) > 0:
            return state.copy()
        states.pop(parent, None)
        return state

    # -- environments (DESIGN §6) -------------------------------------------
    def _record_environments(self, envs: list[EnvTip]) -> None:
        """Record the environments this run follows before walking (so an interrupted
        run is continued with them): dropped ones go; a changed list means the next
        plan must be a full one (commits may be unreachable, mainline flags may move)."""
        db = self.db
        before = [(e.name, e.branch) for e in list_environments(db)]
        for name in self._dropped:
            for table in ("environment_commits", "environment_services", "environments"):
                db.execute(f"delete from {table} where "
                           f"{'name' if table == 'environments' else 'environment'} = ?",
                           [name])
        for position, env in enumerate(envs):
            db.execute(
                "insert into environments (name, branch, position) values (?, ?, ?) "
                "on conflict(name) do update set position = excluded.position, "
                "tip = case when branch = excluded.branch then tip end, "
                "tip_seq = case when branch = excluded.branch then tip_seq end, "
                "branch = excluded.branch", [env.name, env.branch, position])
        if before and before != [(e.name, e.branch) for e in envs]:
            delete_meta(db, "complete_tip", "complete_count")

    def _update_environments(self, envs: list[EnvTip],
                             tip_states: dict[pygit2.Oid, TreeState]) -> None:
        """Bring each environment's mainline (``environment_commits``) and current
        services (``environment_services``) to its tip, and record it."""
        db = self.db
        with db.atomic():
            for position, env in enumerate(envs):
                tip = str(env.tip.id) if env.tip is not None else None
                changed = tip != env.recorded
                if changed:
                    self._update_environment(env, tip_states)
                db.execute(
                    "insert into environments (name, branch, position, tip, tip_seq, "
                    "ingested_at) values (?, ?, ?, ?, (select seq from commits where sha = ?), "
                    "?) on conflict(name) do update set branch = excluded.branch, "
                    "position = excluded.position, tip = excluded.tip, "
                    "tip_seq = excluded.tip_seq, ingested_at = excluded.ingested_at",
                    [env.name, env.branch, position, tip, tip, now_iso()])

    def _update_environment(self, env: EnvTip, tip_states: dict) -> None:
        db, name = self.db, env.name
        if env.tip is None:  # a branch with no commits: no mainline, no services
            for table in ("environment_commits", "environment_services"):
                db.execute(f"delete from {table} where environment = ?", [name])
            return
        added, rebuilt = self._environment_chain(env)
        if rebuilt:
            db.execute("delete from environment_commits where environment = ?", [name])
        db.conn.executemany(
            "insert or replace into environment_commits (environment, commit_sha, seq) "
            "select ?, sha, seq from commits where sha = ?", ((name, sha) for sha in added))
        only: set[str] | None = None
        if not rebuilt:
            only = set()
            for chunk in _chunks(added, 500):
                marks = ",".join("?" * len(chunk))
                only.update(r[0] for r in db.execute(
                    f"select service_id from history where commit_sha in ({marks}) union "
                    f"select service_id from status where commit_sha in ({marks})",
                    chunk + chunk))
        state = tip_states.get(env.tip.id)
        if state is None:
            state = self._state_at(env.tip)
        self._refresh_environment_services(name, state, only)

    def _environment_chain(self, env: EnvTip) -> tuple[list[str], bool]:
        """The commits to add to an environment's mainline, and whether its stored
        mainline must be replaced (new environment, or its tip left the chain)."""
        def on_chain(sha: str) -> bool:
            return self.db.conn.execute(
                "select 1 from environment_commits where environment = ? and commit_sha = ?",
                [env.name, sha]).fetchone() is not None

        rebuilt = env.recorded is None or not on_chain(env.recorded)
        added: list[str] = []
        sha: str | None = str(env.tip.id)
        while sha is not None and (rebuilt or not on_chain(sha)):
            added.append(sha)
            sha = self._first_parent(sha)
        if not rebuilt and sha != env.recorded:  # moved back, or off its old chain
            return self._environment_chain(EnvTip(env.name, env.branch, env.tip, None))
        return added, rebuilt

    def _first_parent(self, sha: str) -> str | None:
        """A commit's first parent, from its stored row (every commit of an environment
        is stored by now): looking commits up in Git would map the pack's index again,
        which the walk let go of (see ``forget_packs``)."""
        row = self.db.conn.execute("select parents from commits where sha = ?",
                                   [sha]).fetchone()
        if row and row[0] is not None:
            parents = json.loads(row[0])
        else:
            parents = [str(p) for p in self.repo[sha].parent_ids]
        return parents[0] if parents else None

    def _state_at(self, tip: pygit2.Commit) -> TreeState:
        """The services of a commit ingested earlier (an environment that moved onto a
        commit another one brought in, or the tip after a rewrite), from the stored
        checks of its configs."""
        stored = _Stored(self.db, self._config_known)
        stored.preload_current()
        state = TreeState(BlobReader(self.repo, max_bytes=self.max_bytes, fallback=stored))
        state.advance(None, tip.tree)
        return state

    def _refresh_environment_services(self, name: str, state: TreeState,
                                      only: set[str] | None) -> None:
        """``environment_services`` of one environment from the state at its tip (only
        the services in ``only``, when given)."""
        db = self.db
        services = state.services()
        ids = sorted(services) if only is None else sorted(only & services.keys())
        columns = [c.strip() for c in SERVICE_STATE.split(",")]
        rows = []
        for sid in ids:
            row = self._service_row(sid, services[sid], state.verdict_of(sid))
            row["service_id"] = row["id"]
            rows.append((name, *(row.get(c) for c in columns)))
        cleared = _cleared()
        if only is None:
            db.execute(f"update environment_services set {cleared} where environment = ?",
                       [name])
        else:
            db.conn.executemany(
                f"update environment_services set {cleared} "
                "where environment = ? and service_id = ?",
                [(name, sid) for sid in sorted(only - services.keys())])
        db.conn.executemany(
            f"insert or replace into environment_services (environment, {SERVICE_STATE}) "
            f"values ({','.join('?' * (len(columns) + 1))})", rows)
        self._env_first_last(name, only)

    # a service's rows on an environment's mainline, walked along its (service_id, seq)
    # index from one end, stopping at the first on the mainline
    ON_ENV = ("from history h join environment_commits e on e.environment = {env} and "
              "e.commit_sha = h.commit_sha where h.service_id = {sid}")
    ON_ROW = ON_ENV.format(env="environment_services.environment",
                           sid="environment_services.service_id")
    ENV_FIRST_LAST = f"""
            update environment_services set
              first_commit = (select h.commit_sha {ON_ROW} order by h.seq limit 1),
              (last_commit, last_updated) = (select h.commit_sha, h.committed_at {ON_ROW}
                                             order by h.seq desc limit 1)
            where environment = ?"""

    def _env_first_last(self, name: str, only: set[str] | None) -> None:
        """``first_commit``, ``last_commit`` and ``last_updated`` of an environment's
        services (those in ``only``, when given): their first and last history rows on
        its mainline (``environment_commits``), none when it has none; a service with
        rows there but not at its tip gets a removed row. Read from the stored rows, not
        kept from the batch's as :meth:`_first_last` keeps the first environment's: a run
        can add commits ingested earlier to an environment (a promotion onto them, a
        rebuilt mainline after a force-push), and no batch walks them. Per service, an
        index walk that stops at the first row found: a pass over all the environment's
        rows (grouped by service) costs 4-5x more (README "At scale")."""
        chunks = [None] if only is None else list(_chunks(sorted(only), 500))
        for chunk in chunks:
            marks = "" if chunk is None else f" and service_id in ({','.join('?' * len(chunk))})"
            args = chunk or []
            self.db.execute(
                "insert or ignore into environment_services (environment, service_id, "
                "removed) select ?, s.service_id, 1 from (select distinct service_id "
                f"from history where 1{marks}) s where exists (select 1 "
                f"{self.ON_ENV.format(env='?', sid='s.service_id')})", [name, *args, name])
            self.db.execute(self.ENV_FIRST_LAST + marks, [name, *args])

    # -- rewrites -----------------------------------------------------------
    def _reconcile(self, existing: dict, seq_of: dict, main_of: dict,
                   result: IngestResult) -> None:
        """Make rows of earlier runs match the branch as it is now (DESIGN §3)."""
        gone = [sha for sha in existing if sha not in seq_of]
        if existing and len(gone) == len(existing):
            raise SourceError(
                f"{self.db_path} holds another history: none of its {len(existing):,} commits "
                f"is on branch {self.branch} of {public_url(self.source)}; use another --db")
        moved = [sha for sha, (seq, main) in existing.items()
                 if sha in seq_of and (seq_of[sha], main_of[sha]) != (seq, main)]
        if not gone and not moved:
            return
        db = self.db
        with db.atomic():
            for chunk in _chunks(gone, 500):
                marks = ",".join("?" * len(chunk))
                for table in PER_COMMIT:
                    db.execute(f"delete from {table} where commit_sha in ({marks})", chunk)
                db.execute(f"delete from environment_commits where commit_sha in ({marks})",
                           chunk)
                db.execute(f"delete from commits where sha in ({marks})", chunk)
            db.conn.executemany("update commits set seq = ?, mainline = ? where sha = ?",
                                [(seq_of[s], main_of[s], s) for s in moved])
            if moved:
                for table in PER_COMMIT:
                    db.execute(
                        f"update {table} set seq = c.seq, mainline = c.mainline from commits c "
                        f"where c.sha = {table}.commit_sha and ({table}.seq != c.seq "
                        f"or {table}.mainline != c.mainline)")
                db.execute("update environment_commits set seq = c.seq from commits c "
                           "where c.sha = environment_commits.commit_sha "
                           "and environment_commits.seq != c.seq")
            db.execute("delete from configs where id not in (select config_id from history "
                       "where config_id is not null)")
            db.execute("delete from dependencies where not exists (select 1 from history h "
                       "where h.config_id = dependencies.config_id "
                       "and h.service_id = dependencies.service_id)")
            db.execute("delete from services where id not in (select service_id from history)")
            db.execute("delete from environment_services "
                       "where service_id not in (select id from services)")
        self._refresh_all = True
        result.commits_removed = len(gone)
        result.rewrite_detected = bool(gone)

    # -- rows ---------------------------------------------------------------
    def _next_id(self, table: str) -> int:
        self._ids[table] += 1
        return self._ids[table]

    def _add(self, table: str, row: tuple) -> None:
        """Hold one row of ``table`` (its values in the order of ``COLUMNS[table]``)."""
        self._rows.setdefault(table, []).append(row)
        if table == "history" or table == "status":
            self._touched.add(row[1])  # the service id (see COLUMNS)
        if table != "history" and table != "commits":
            self._held(1)

    def _held(self, added: int) -> None:
        """Count rows added to the SPILLED tables; write them ahead past SPILL_ROWS."""
        self._unspilled += added
        if self._unspilled >= SPILL_ROWS:
            self._spill()

    def _spill(self) -> None:
        """Write the batch's rows of the SPILLED tables so far in the batch's transaction,
        begun here and committed by :meth:`_flush` (an interrupted batch still leaves
        nothing)."""
        conn = self.db.conn
        if not conn.in_transaction:
            conn.execute("BEGIN")
        for table in SPILLED:
            rows = self._rows.pop(table, None)
            if rows:
                _insert(self.db, table, rows)
        self._unspilled = 0

    def _record(self, commit: CommitInfo, seq: int, mainline: int, step: Step,
                state: TreeState) -> None:
        sha = commit.id
        committed_at = commit.committed_at
        meta = commit.meta
        author = _Author(meta["author_name"], meta["author_email"])
        self._add("commits", (
            sha, seq, mainline, json.dumps(list(commit.parents)),
            *meta.values(), committed_at, len(step.changes)))
        common = (sha, seq, mainline)
        for change in step.changes:
            self._record_change(change, common, committed_at, author, state)
        for sid, new, old in step.verdicts:
            if new is not None:
                self._record_verdict(sid, new, old, common, committed_at, state)

    def _record_change(self, change: Change, common: tuple, committed_at: str,
                       author: _Author, state: TreeState) -> None:
        sid = change.service_id
        entry = change.entry
        config_id = entry.oid if entry else None
        if entry is not None:
            self._record_config(sid, entry)
        verdict = state.verdict_of(sid)
        history_id = self._next_id("history")
        kind = change.change
        previous_id = change.previous.oid if change.previous else None
        self._add("history", (
            history_id, sid, *common, kind, change.path,
            change.old_path if kind == "renamed" else None, config_id, previous_id,
            verdict.status if verdict else None, committed_at, author.name, author.email))
        self._add("events", (
            KIND_OF_CHANGE[kind], sid, *common, committed_at,
            _change_payload(kind, change.path, change.old_path, config_id, previous_id,
                            entry.check.version if entry else None, author.name)))
        if entry is None or not entry.check.readable:
            return
        before: dict[str, str] = {}
        if kind != "added" and change.baseline is not None:
            before = change.baseline.check.flat
        changes = flat_changes(before, entry.check.flat)
        if not changes:
            return
        last = self._ids["parameter_changes"]
        self._ids["parameter_changes"] += len(changes)
        head = (history_id, sid, *common)
        tail = (committed_at, author.name)
        self._rows.setdefault("parameter_changes", []).extend([  # as _add, many at once
            (last + i, *head, key, old, new, how, *tail)
            for i, (key, how, old, new) in enumerate(changes, 1)])
        self._held(len(changes))

    def _record_config(self, sid: str, entry: Entry) -> None:
        oid = entry.oid
        if oid is None:
            return
        known = self._config_known(oid)  # if not, nor are its dependency rows
        if not known or not self._deps_known(oid, sid):
            self._batch_deps.add((oid, sid))
            self._record_dependencies(sid, entry)  # "insert or replace": repeats are harmless
        if known:
            entry.check.forget_text()  # stored before
            return
        self._batch_configs.add(oid)
        if self._recorded is not None:
            self._recorded.add(oid)
        check = entry.check
        parse = check.parse
        parameters, dependencies = check.columns_json
        self._add("configs", (
            oid, sid, entry.path, parse.format, parse.size, parse.raw, check.content_json,
            check.version, check.schema_version, parameters, dependencies,
            parse.error, parse.line, parse.column,
            (json.dumps([p.as_row() for p in check.problems])
             if check.problems else "[]") if entry.kind == "blob" else None))
        check.forget_text()  # the row holds them

    def _record_dependencies(self, sid: str, entry: Entry) -> None:
        namespace = sid.partition("/")[0]
        deps = entry.check.dependencies
        if not deps:
            return
        self._rows.setdefault("dependencies", []).extend([  # as _add, many at once
            (entry.oid, dep.index, sid, service_ref(dep.service, namespace),
             dep.version_constraint, int(dep.required)) for dep in deps])
        self._held(len(deps))

    def _record_verdict(self, sid: str, new: Verdict, old: Verdict | None, common: tuple,
                        checked_at: str, state: TreeState) -> None:
        status_id = self._next_id("status")
        previous = old.status if old else None
        self._add("status", (status_id, sid, *common, new.status, previous, new.message,
                             checked_at))
        same_status = old is not None and old.status == new.status
        kind = STATUS_MESSAGE_CHANGED if same_status else STATUS_CHANGED
        self._add("events", (kind, sid, *common, checked_at, _payload_json({
            "status": new.status, "previous_status": previous, "message": new.message})))
        entry = state.primary(sid)
        config_id = entry.oid if entry else None
        for problem in new.problems:
            self._add("validation_errors", (
                self._next_id("validation_errors"), status_id, sid, *common, config_id,
                problem.severity, problem.kind, problem.json_path, problem.message,
                problem.schema))

    # -- batches ------------------------------------------------------------
    def _flush(self, last_main: tuple[CommitInfo, TreeState] | None) -> None:
        """Write the batch in one transaction (commits last, so a batch is all or nothing)."""
        rows, self._rows = self._rows, {}
        self._unspilled = 0
        touched, self._touched = self._touched, set()
        self._batch_configs, self._batch_deps = set(), set()
        with self.db.atomic():
            for table in ("configs", "dependencies", "history", "status", "validation_errors",
                          "parameter_changes", "events", "commits"):
                if rows.get(table):
                    _insert(self.db, table, rows[table])
            if last_main is not None:
                only = None if self._refresh_all else touched
                self._refresh_services(last_main[1], last_main[0], only, rows.get("history"))
                self._refresh_all = False
            elif touched:  # no state to refresh from yet: keep first/last commits current
                self._first_last_from_history(sorted(touched))
        if self.db.conn.in_transaction:  # begun by _spill (the block above was a savepoint)
            self.db.conn.commit()

    @staticmethod
    def _service_row(sid: str, entry: Entry, verdict: Verdict | None) -> dict[str, Any]:
        namespace, _, name = sid.partition("/")
        problems = verdict.problems if verdict else ()
        text = {"owner": entry.check.owner, "description": entry.check.description}
        return {
            "id": sid, "namespace": namespace, "name": name, "path": entry.path,
            "config_id": entry.oid, "version": entry.check.version,
            "status": verdict.status if verdict else None,
            "status_message": verdict.message if verdict else None, "removed": 0, **text,
            "error_count": sum(p.severity == "error" for p in problems),
            "warning_count": sum(p.severity == "warning" for p in problems),
        }

    def _refresh_services(self, state: TreeState | None, tip: pygit2.Commit | CommitInfo,
                          only: set[str] | None = None,
                          history: list[tuple] | None = None) -> None:
        """Bring ``services`` to the state at the latest mainline commit (only the
        services named in ``only``, when given: those the batch touched, whose new
        ``history`` rows are given)."""
        db = self.db
        if state is None:
            state = self._state_at(tip)
        services = state.services()
        ids = sorted(services) if only is None else sorted(only & services.keys())
        current = [self._service_row(sid, services[sid], state.verdict_of(sid))
                   for sid in ids]
        cleared = _cleared("owner", "description")
        if only is None:
            db.execute(f"update services set {cleared}")
        else:
            db.conn.executemany(f"update services set {cleared} where id = ?",
                                [(sid,) for sid in sorted(only - services.keys())])
        if current:
            _upsert(db, "services", current, "id")
        db.execute("""
            insert into services (id, namespace, name, removed)
            select distinct h.service_id, substr(h.service_id, 1, instr(h.service_id, '/') - 1),
                   substr(h.service_id, instr(h.service_id, '/') + 1), 1
            from history h where h.service_id not in (select id from services)
        """)
        if only is None:
            self._first_last_from_history(None)
        else:
            self._first_last_from_rows(only, history or [])
        set_meta(db, "tip", str(tip.id))

    FIRST_LAST = """
            update services set
              first_commit = (select commit_sha from history h where h.service_id = services.id
                              order by h.mainline desc, h.seq limit 1),
              last_commit = (select commit_sha from history h where h.service_id = services.id
                             order by h.mainline desc, h.seq desc limit 1),
              last_updated = (select committed_at from history h
                              where h.service_id = services.id
                              order by h.mainline desc, h.seq desc limit 1)
        """

    def _first_last_from_history(self, ids: list[str] | None) -> None:
        """Services' first and last commits read from every history row (of all
        services, when ``ids`` is None)."""
        if ids is None:
            self.db.execute(self.FIRST_LAST)
            return
        for chunk in _chunks(ids, 500):
            self.db.execute(self.FIRST_LAST + f" where id in ({','.join('?' * len(chunk))})",
                            chunk)

    def _first_last_from_rows(self, only: set[str], history: list[tuple]) -> None:
        """Services' first and last commits from their stored values and the batch's
        ``history`` rows: the same as :meth:`_first_last_from_history`, without reading
        every row again. Read from history instead after a run that did not only append
        (stored values may predate a rewrite), and for services without stored values."""
        if not (self._appending or self._indexes_deferred):
            self._first_last_from_history(sorted(only))
            return
        computed, unsure = self._first_last(sorted(only), history)
        self.db.conn.executemany(
            "update services set first_commit = ?, last_commit = ?, last_updated = ? "
            "where id = ?", computed)
        self._first_last_from_history(sorted(unsure))

    def _first_last(self, ids: list[str], history: list[tuple]
                    ) -> tuple[list[tuple], set[str]]:
        """(first_commit, last_commit, last_updated, id) of services: their first and
        last history rows, mainline rows first (as ``first_last`` in
        :meth:`_refresh_services` orders them), among the stored ones and ``history``;
        and the services whose stored commits are not found (read from history)."""
        wanted = set(ids)
        unsure: set[str] = set()
        # candidates: (mainline, seq, commit, committed_at) of a row
        first: dict[str, tuple] = {}
        last: dict[str, tuple] = {}
        for chunk in _chunks(ids, 500):
            for sid, f_sha, f_seq, f_main, l_sha, l_seq, l_main, l_at in self.db.execute(
                    "select s.id, s.first_commit, f.seq, f.mainline, s.last_commit, l.seq, "
                    "l.mainline, s.last_updated from services s "
                    "left join commits f on f.sha = s.first_commit "
                    "left join commits l on l.sha = s.last_commit "
                    f"where s.id in ({','.join('?' * len(chunk))})", chunk):
                if f_seq is None or l_seq is None:  # not refreshed yet, or not found
                    unsure.add(sid)
                if f_sha is not None:
                    first[sid] = (f_main, f_seq, f_sha, None)
                if l_sha is not None:
                    last[sid] = (l_main, l_seq, l_sha, l_at)
        for row in history:  # tuples in the order of COLUMNS["history"]
            sid = _history_service(row)
            if sid not in wanted:
                continue
            key = _history_when(row)
            old = first.get(sid)
            if old is None or (-key[0], key[1]) < (-old[0], old[1]):
                first[sid] = key
            old = last.get(sid)
            if old is None or (key[0], key[1]) > (old[0], old[1]):
                last[sid] = key
        out = []
        for sid in ids:
            if sid in unsure:
                continue
            f, la = first.get(sid), last.get(sid)
            out.append((f[2] if f else None, la[2] if la else None, la[3] if la else None,
                        sid))
        return out, unsure


Plan = tuple[list[pygit2.Oid], array, bytearray]  # commits to do, their seq and mainline


class _Children:
    """How many commits still to do have each commit as first parent, in memory that
    follows the shape of the history, not its length: most commits have exactly one
    such child (the next commit), so only the others are stored."""

    def __init__(self, repo: pygit2.Repository, todo: list[pygit2.Oid]) -> None:
        counts: dict[pygit2.Oid, int] = {}
        for oid in todo:
            parents = repo[oid].parent_ids
            if parents:
                counts[parents[0]] = counts.get(parents[0], 0) + 1
        self._other = {oid: n for oid, n in counts.items() if n != 1}
        self._other.update((oid, 0) for oid in todo if oid not in counts)  # no child
        del counts

    def get(self, oid: pygit2.Oid) -> int:
        return self._other.get(oid, 1)

    def take(self, oid: pygit2.Oid) -> int:
        """One child is being done: the number left."""
        left = self._other.get(oid, 1) - 1
        if left:
            self._other[oid] = left
        else:
            self._other.pop(oid, None)  # never asked again
        return left


@dataclass(frozen=True)
class _Author:
    name: str
    email: str


def shallow_points(repo: pygit2.Repository) -> str:
    """The graft points of a shallow clone (sorted shas, space-separated; "" if none)."""
    if not repo.is_shallow:
        return ""
    try:
        text = (Path(repo.path) / "shallow").read_text()
    except OSError:
        return "unknown"
    return " ".join(sorted(text.split()))


def _insert(db: sqlite_utils.Database, table: str, rows: list[tuple]) -> None:
    """Write rows held by the walk (tuples in the order of ``COLUMNS[table]``)."""
    columns = COLUMNS[table]
    sql = (f"insert or replace into [{table}] ({', '.join(f'[{c}]' for c in columns)}) "
           f"values ({', '.join('?' * len(columns))})")
    db.conn.executemany(sql, rows)


def _upsert(db: sqlite_utils.Database, table: str, rows: list[dict[str, Any]],
            key: str) -> None:
    """Insert ``rows``, or update the columns they have (the others are kept): what
    sqlite-utils' ``upsert_all`` does, as one prepared statement for all of them."""
    columns = list(rows[0])
    updates = ", ".join(f"[{c}] = excluded.[{c}]" for c in columns if c != key)
    sql = (f"insert into [{table}] ({', '.join(f'[{c}]' for c in columns)}) "
           f"values ({', '.join('?' * len(columns))}) "
           f"on conflict([{key}]) do update set {updates}")
    db.conn.executemany(sql, map(itemgetter(*columns), rows))  # one key order, as _insert


def _cleared(*more: str) -> str:
    """SQL ``set`` of a service row that is gone at the tip (``more``: other columns to
    clear than those ``services`` and ``environment_services`` share)."""
    columns = ("path", "config_id", "version", "status", "status_message", *more,
               "error_count", "warning_count")
    return "removed = 1, " + ", ".join(f"{c} = null" for c in columns)


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def ingest(
    source: str | os.PathLike,
    db_path: str | os.PathLike = "registry.db",
    *,
    branch: str | None = None,
    environments: list[tuple[str, str]] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Progress | None = None,
) -> IngestResult:
    """Ingest every new commit of ``source`` into ``db_path``: of ``branch`` (one
    environment named after it), or of each ``(name, branch)`` of ``environments`` (in
    promotion order); by default those the database follows, else ``main``."""
    return Ingest(str(source), db_path, branch=branch, environments=environments,
                  max_bytes=max_bytes, progress=progress).run()

