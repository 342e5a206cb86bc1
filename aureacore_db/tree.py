"""The services of one commit's tree and their verdicts, updated commit by commit.

A :class:`TreeState` knows which files are service files (:mod:`.layout`), which service
id each declares, and each service's verdict (:mod:`.verdicts`). :meth:`TreeState.advance`
moves it from a commit's first parent to the commit, re-validating exactly the services
the change can affect: the services whose files changed, their dependents, services whose
parameter schema changed, and members of dependency cycles that appeared or went away.
Blobs are read and checked by :class:`~aureacore_db.blobs.BlobReader`; version
constraints are :mod:`.versions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

import pygit2

# re-exported: the names other modules import from here
from .blobs import BlobReader, Entry, Updates, tree_updates, walk_tree
from .layout import ROOT_FILES, SERVICES_DIR, Layout
from .parsing import is_config_path
from .validation import ConfigCheck
from .verdicts import Edges, Verdict, cycles_may_change, find_cycles, verdict
from .versions import satisfies, service_ref, version_spec

__all__ = [
    "ROOT_FILES", "SERVICES_DIR", "BlobReader", "Change", "Entry", "LazyEntry", "Layout",
    "Resumed", "Step",
    "TreeState", "Updates", "Verdict", "satisfies", "service_ref", "tree_updates",
    "version_spec", "walk_tree",
]


class LazyEntry(Entry):
    """A service file of a resumed state (:class:`Resumed`): its check is read when
    first used, and its dependency targets come from the stored rows."""

    def __init__(self, path: str, oid: str, reader: BlobReader,
                 targets: tuple[tuple[str, bool], ...]) -> None:
        vars(self).update(path=path, oid=oid, kind="blob", reader=reader, targets=targets,
                          _check=None)  # frozen: not through __setattr__

    @property  # type: ignore[override]
    def check(self) -> ConfigCheck:
        if self._check is None:
            vars(self)["_check"] = self.reader.check(self.oid, self.path)
        return self._check


@dataclass
class Resumed:
    """What the database says about an ingested commit's services (an environment's
    stored tip): each service's primary file, its dependency targets, and which
    services may be in a required-dependency cycle (the others' stored verdicts say
    they are not)."""

    files: dict[str, tuple[str, str]]  # path -> (service id, blob id)
    targets: dict[str, tuple[tuple[str, bool], ...]]  # service id -> (target, required)
    not_in_cycle: set[str]
    cycles: dict[str, str]  # the stored cycle message of the others, when there is one
    # (path, blob id) of a service's last readable config up to that commit
    last_readable: Callable[[str], tuple[str, str] | None] = lambda _sid: None


@dataclass
class Change:
    """A service whose file (path or content) differs from the first parent."""

    service_id: str
    change: str  # added / modified / renamed / removed
    path: str | None
    old_path: str | None
    entry: Entry | None
    previous: Entry | None
    baseline: Entry | None = None  # last readable config before this change


@dataclass
class Step:
    """What :meth:`TreeState.advance` found in one commit."""

    changes: list[Change] = field(default_factory=list)
    verdicts: list[tuple[str, Verdict | None, Verdict | None]] = field(default_factory=list)


class TreeState:
    """Service files, ids and verdicts at one commit."""

    def __init__(self, reader: BlobReader) -> None:
        self.reader = reader
        self.layout = Layout("convention")
        self.entries: dict[str, Entry] = {}
        self.path_id: dict[str, str] = {}
        self.by_id: dict[str, tuple[str, ...]] = {}
        self.param_schemas: dict[str, str] = {}  # service id -> blob id
        self.verdicts: dict[str, Verdict] = {}
        self.deps_of: Edges = {}
        self.dependents: Edges = {}
        self.req_edges: Edges = {}
        self.cycles: dict[str, str] = {}
        self.last_good: dict[str, Entry] = {}  # last readable config per service
        # a state resumed lazily (see :meth:`resume`): services whose verdict is not
        # computed yet, and the state it is computed in when first needed
        self.unjudged: set[str] = set()
        self.judge_in: TreeState | None = None
        # a resumed state's last readable config of a service whose file is unreadable
        self.stored_good: Callable[[str], tuple[str, str] | None] | None = None

    # -- copying ---------------------------------------------------------------
    def copy(self) -> TreeState:
        """An independent state (values are immutable, so shallow dict copies do)."""
        other = TreeState.__new__(TreeState)
        other.reader = self.reader
        other.layout = self.layout
        for name in ("entries", "path_id", "by_id", "param_schemas", "verdicts", "deps_of",
                     "dependents", "req_edges", "cycles", "last_good"):
            setattr(other, name, dict(getattr(self, name)))
        other.unjudged = set(self.unjudged)
        other.judge_in = self.judge_in
        other.stored_good = self.stored_good
        return other

    @classmethod
    def resume(cls, reader: BlobReader, tree: pygit2.Tree,
               known: Resumed | None = None) -> TreeState:
        """The state at a commit ingested earlier, to advance from. Verdicts are left
        out until asked for (:meth:`verdict_of`): a commit's diff re-validates only the
        services it can affect, and the others' verdicts are never needed.

        With ``known`` (the stored state of that commit), the configs are not read
        at all until needed: files, ids and edges come from the stored rows, checked
        against the tree (any disagreement: everything is read, as without it)."""
        state = cls(reader)
        if known is None or not state._resume_known(tree, known):
            state = cls(reader)
            state.advance(None, tree, judge=False)
        state.judge_in = state.copy()  # the verdicts are computed in the state as it is now
        return state

    def _resume_known(self, tree: pygit2.Tree, known: Resumed) -> bool:
        """Rebuild the state from ``known`` and the tree's file list; False when they
        disagree (a stored file not in the tree as stored, or not its service's
        primary file)."""
        touched: dict[str, Entry | None] = {}
        self.layout = self.layout.read(tree, self.reader)
        wanted = self.layout.scan_entries(tree)
        seen = 0
        for path, (oid, kind) in sorted(wanted.items()):
            stored = known.files.get(path)
            if stored is None:  # e.g. the second file of a duplicated service
                self._set(path, self.reader.entry(path, oid, kind), touched)
                continue
            sid, config_id = stored
            if oid != config_id:
                return False
            seen += 1
            if kind != "blob":  # a link or submodule: nothing to read
                self._set(path, self.reader.entry(path, oid, kind), touched)
                continue
            entry = LazyEntry(path, oid, self.reader, known.targets.get(sid, ()))
            self.entries[path] = entry
            self.path_id[path] = sid
            self.by_id[sid] = tuple(sorted(self.by_id.get(sid, ()) + (path,)))
        if seen != len(known.files) or any(
                self.by_id.get(sid, ("",))[0] != path
                for path, (sid, _oid) in known.files.items()):
            return False
        self.param_schemas = self.layout.scan_param_schemas(tree)
        self._build_edges()
        self.cycles = self._known_cycles(known)
        self.verdicts = {}
        self.unjudged = set(self.by_id)
        # readable or not is known when the check is read (see _record_changes)
        self.last_good = {sid: self.entries[paths[0]] for sid, paths in self.by_id.items()}
        self.stored_good = known.last_readable
        return True

    def verdict_of(self, sid: str) -> Verdict | None:
        """A service's verdict (None when it does not exist)."""
        found = self.verdicts.get(sid)
        if found is None and sid in self.unjudged:
            assert self.judge_in is not None
            found = verdict(self.judge_in, sid)
        return found

    # -- reading ---------------------------------------------------------------
    def primary(self, service_id: str) -> Entry | None:
        """The file that defines a service (the first path when duplicated)."""
        paths = self.by_id.get(service_id)
        return self.entries[paths[0]] if paths else None

    def services(self) -> dict[str, Entry]:
        return {sid: self.entries[paths[0]] for sid, paths in self.by_id.items()}

    # -- updating --------------------------------------------------------------
    def _set(self, path: str, entry: Entry | None, touched: dict[str, Entry | None]) -> None:
        """Put or remove the file at ``path``; remember each touched service's old primary."""
        old_id = self.path_id.pop(path, None)
        if old_id is not None:
            touched.setdefault(old_id, self.primary(old_id))
            rest = tuple(p for p in self.by_id[old_id] if p != path)
            if rest:
                self.by_id[old_id] = rest
            else:
                del self.by_id[old_id]
        self.entries.pop(path, None)
        if entry is None:
            return
        new_id = self.layout.identity(entry, old_id)
        touched.setdefault(new_id, self.primary(new_id))
        self.entries[path] = entry
        self.path_id[path] = new_id
        self.by_id[new_id] = tuple(sorted(self.by_id.get(new_id, ()) + (path,)))

    def advance(self, parent_tree: pygit2.Tree | None, tree: pygit2.Tree,
                updates: Updates | None = None, *, judge: bool = True) -> Step:
        """Move from the first parent's tree to ``tree``; return what changed.

        ``updates`` may carry :func:`tree_updates` computed ahead (in a worker process);
        ``judge=False`` leaves the verdicts of the affected services to :meth:`verdict_of`.
        """
        if parent_tree is not None and updates is None:
            updates = tree_updates(parent_tree, tree)
        if parent_tree is None or updates is None:
            touched: dict[str, Entry | None] = {}
            self._rescan(tree, touched)
            return self._revalidate(touched, set(), judge)
        return self.advance_by(updates, lambda: tree, judge=judge)

    def advance_by(self, updates: Updates, tree: Callable[[], pygit2.Tree], *,
                   judge: bool = True) -> Step:
        """:meth:`advance` from the first parent by its diff ``updates`` (computed ahead):
        ``tree()`` (the commit's tree) is read only when a root file changed (a rescan)."""
        touched: dict[str, Entry | None] = {}
        schema_changed: set[str] = set()
        if any(p in updates for p in ROOT_FILES):
            self._rescan(tree(), touched)
        else:
            self._apply_updates(updates, touched, schema_changed)
        return self._revalidate(touched, schema_changed, judge)

    def _rescan(self, tree: pygit2.Tree, touched: dict) -> None:
        """Read the layout and every service file again (a first commit, or a root-file
        change). Every service, old and new, ends up touched, so every verdict is
        recomputed, parameter schemas and root-file problems included."""
        self.layout = self.layout.read(tree, self.reader)
        wanted = self.layout.scan_entries(tree)
        for path in list(self.entries):
            self._set(path, None, touched)
        for path, (oid, kind) in sorted(wanted.items()):
            self._set(path, self.reader.entry(path, oid, kind), touched)
        self.param_schemas = self.layout.scan_param_schemas(tree)

    def _apply_updates(self, updates: dict, touched: dict, schema_changed: set[str]) -> None:
        listed = None
        if self.layout.kind == "root":
            listed = {path for _ns, _name, path in self.layout.listing}
        for path, value in sorted(updates.items()):
            sid = self.layout.param_schema_id(path)
            if sid is not None:
                if value is None or value[1] != "blob":
                    self.param_schemas.pop(sid, None)
                else:
                    self.param_schemas[sid] = value[0]
                schema_changed.add(sid)
                continue
            if listed is not None:
                if path not in listed:
                    continue
                if value is None:
                    value = (None, "missing")
            elif not (path.startswith(SERVICES_DIR + "/") and is_config_path(path)):
                continue
            entry = None if value is None else self.reader.entry(path, value[0], value[1])
            self._set(path, entry, touched)

    # -- validation ------------------------------------------------------------
    def _dependency_targets(self, sid: str) -> tuple[frozenset[str], frozenset[str]]:
        entry = self.primary(sid)
        if entry is None:
            return frozenset(), frozenset()
        every, required = set(), set()
        if isinstance(entry, LazyEntry):
            for target, needed in entry.targets:
                every.add(target)
                if needed and target in self.by_id:
                    required.add(target)
            return frozenset(every), frozenset(required)
        namespace = sid.partition("/")[0]
        for dep in entry.check.dependencies:
            target = service_ref(dep.service, namespace)
            every.add(target)
            if dep.required and target in self.by_id:
                required.add(target)
        return frozenset(every), frozenset(required)

    def _revalidate(self, touched: dict[str, Entry | None], schema_changed: set[str],
                    judge: bool = True) -> Step:
        """The verdicts and changes that follow from the files in ``touched`` and the
        parameter schemas in ``schema_changed``."""
        dirty = self._affected(touched, schema_changed)
        # a service's edges follow its own file and whether its targets exist: those of
        # a dependent of a service that only changed version stay as they are
        added, removed = self._update_edges(set(touched) | self._existence_dependents(touched))
        dirty |= self._update_cycles(added, removed)
        step = Step()
        if not judge:  # resuming: the changes are not recorded either
            self.verdicts = {}
            self.unjudged = set(self.by_id)
            for sid in touched:
                after = self.primary(sid)
                if after is not None and after.check.readable:
                    self.last_good[sid] = after
            return step
        self._record_verdicts(dirty, step, touched.keys() | schema_changed)
        self._record_changes(touched, step)
        return step

    def _existence_dependents(self, touched: dict[str, Entry | None]) -> set[str]:
        """The dependents of the touched services that appeared or went away."""
        found: set[str] = set()
        for sid, before in touched.items():
            if (before is None) != (sid not in self.by_id):
                found |= self.dependents.get(sid, frozenset())
        return found

    def _affected(self, touched: dict[str, Entry | None], schema_changed: set[str]) -> set[str]:
        """Touched services, those whose parameter schema changed, and the dependents of
        services that appeared, went away or changed version (a dependent's verdict only
        sees whether its target exists and its version)."""
        dirty = set(touched)
        dirty.update(sid for sid in schema_changed
                     if sid in self.by_id or sid in self.verdicts or sid in self.unjudged)
        for sid, before in touched.items():
            after = self.primary(sid)
            if (before is None) != (after is None) or (
                    before is not None and after is not None
                    and before.check.version != after.check.version):
                dirty |= self.dependents.get(sid, frozenset())
        return dirty

    def _build_edges(self) -> None:
        """The dependency edges of every service (a new state: as :meth:`_update_edges`
        of every service would make them, quicker)."""
        dependents: dict[str, set[str]] = {}
        for sid in self.by_id:
            every, required = self._dependency_targets(sid)
            _put(self.deps_of, sid, every)
            _put(self.req_edges, sid, required)
            for target in every:
                dependents.setdefault(target, set()).add(sid)
        self.dependents = {target: frozenset(found) for target, found in dependents.items()}

    def _known_cycles(self, known: Resumed) -> dict[str, str]:
        """The cycles of a resumed state: the stored ones when they are cycles of its
        edges and every service that may be in one has a stored answer; else searched
        from the services that may be in one."""
        stored = {sid: loop for sid, loop in known.cycles.items() if sid in self.by_id}
        unknown = {sid for sid in self.req_edges
                   if sid not in known.not_in_cycle and sid not in stored}
        if not unknown and all(_is_loop(sid, loop, stored, self.req_edges)
                               for sid, loop in stored.items()):
            return stored
        seeds = unknown | set(stored)
        return find_cycles(self.req_edges, {}, seeds) if seeds else {}

    def _update_edges(self, dirty: set[str]) -> tuple[list[tuple[str, str]],
                                                       list[tuple[str, str]]]:
        """Refresh the dependency edges of ``dirty`` services; return the required edges
        added and removed."""
        added: list[tuple[str, str]] = []
        removed: list[tuple[str, str]] = []
        gained: dict[str, set[str]] = {}  # target -> new dependents
        lost: dict[str, set[str]] = {}  # target -> former dependents
        for sid in dirty:
            every, required = self._dependency_targets(sid)
            old_every = self.deps_of.get(sid, frozenset())
            if every != old_every:
                for target in old_every - every:
                    lost.setdefault(target, set()).add(sid)
                for target in every - old_every:
                    gained.setdefault(target, set()).add(sid)
                _put(self.deps_of, sid, every)
            old_required = self.req_edges.get(sid, frozenset())
            if required != old_required:
                added.extend((sid, t) for t in required - old_required)
                removed.extend((sid, t) for t in old_required - required)
                _put(self.req_edges, sid, required)
        # the reverse index, one new set per target (not one per edge: a target many
        # services depend on would cost quadratic time when a whole tree is read)
        for target in lost.keys() | gained.keys():
            before = self.dependents.get(target, frozenset())
            _put(self.dependents, target,
                 (before - lost.get(target, set())) | gained.get(target, set()))
        return added, removed

    def _update_cycles(self, added: list[tuple[str, str]],
                       removed: list[tuple[str, str]]) -> set[str]:
        """Recompute the cycles the edge changes can affect; return the services whose
        cycle message changed."""
        if not cycles_may_change(self.req_edges, self.cycles, added, removed):
            return set()
        cycles = find_cycles(self.req_edges, self.cycles, {u for u, _v in added + removed})
        changed = {sid for sid in set(cycles) | set(self.cycles)
                   if cycles.get(sid) != self.cycles.get(sid)}
        self.cycles = cycles
        return changed

    def _record_verdicts(self, dirty: set[str], step: Step, own_changed: set[str]) -> None:
        """Recompute the verdicts of ``dirty`` services; those not in ``own_changed``
        (whose file, paths and parameter schema stayed) keep their own problems."""
        for sid in sorted(dirty):
            old = self.verdict_of(sid)
            if sid not in self.by_id:
                new = None
            elif sid in own_changed or sid not in self.verdicts:
                new = verdict(self, sid)
            else:
                new = verdict(self, sid, same_own=old)
            _put(self.verdicts, sid, new)
            self.unjudged.discard(sid)
            if new != old:
                step.verdicts.append((sid, new, old))

    def _record_changes(self, touched: dict[str, Entry | None], step: Step) -> None:
        for sid, before in sorted(touched.items()):
            after = self.primary(sid)
            change = _classify(before, after)
            if change:
                baseline = self._baseline(sid)
                step.changes.append(Change(sid, change, after.path if after else None,
                                           before.path if before else None, after, before,
                                           baseline))
                if after is not None and after.check.readable:
                    self.last_good[sid] = after

    def _baseline(self, sid: str) -> Entry | None:
        """The last readable config of a service (a resumed state's entries are not
        known to be readable until read: if not, the stored history says which was)."""
        found = self.last_good.get(sid)
        if found is None or found.check.readable:
            return found
        stored = self.stored_good(sid) if self.stored_good is not None else None
        return None if stored is None else self.reader.entry(stored[0], stored[1], "blob")


def _is_loop(sid: str, loop: str, members: dict[str, str], edges: Edges) -> bool:
    """Whether a cycle message ``a -> b -> a`` through ``sid`` follows required edges
    between services that are all known members of cycles."""
    nodes = loop.split(" -> ")
    return (len(nodes) >= 2 and nodes[0] == nodes[-1] and sid in nodes[:-1]
            and all(node in members for node in nodes[:-1])
            and all(b in edges.get(a, ()) for a, b in pairwise(nodes)))


def _put(mapping: dict, key: str, value: object) -> None:
    """Set ``mapping[key]``, or remove the key when ``value`` is empty."""
    if value:
        mapping[key] = value
    else:
        mapping.pop(key, None)


def _classify(before: Entry | None, after: Entry | None) -> str | None:
    if before is None and after is None:
        return None
    if before is None:
        return "added"
    if after is None:
        return "removed"
    if before.path != after.path:
        return "renamed"
    if before.oid != after.oid or before.kind != after.kind:
        return "modified"
    return None
