"""The services of one commit's tree and their verdicts, updated commit by commit.

A :class:`TreeState` knows which files are service files (root-file or convention
layout, DESIGN §1), which service id each declares, and each service's verdict
(DESIGN §2). :meth:`TreeState.advance` moves it from a commit's first parent to the
commit, re-validating exactly the services the change can affect: the services whose
files changed, their dependents, services whose parameter schema changed, and members
of dependency cycles that appeared or went away.
"""

from __future__ import annotations

import posixpath
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pygit2
import semantic_version

from .gitpath import git_path, path_text
from .names import CONFIGURED, DEFAULT_NAMESPACE, ERROR
from .parsing import (
    DEFAULT_MAX_BYTES,
    ParseResult,
    file_format,
    is_config_path,
    parse_config,
    too_large,
)
from .validation import (
    ConfigCheck,
    Problem,
    check_config,
    compile_parameter_schema,
    parameter_problems,
)

ROOT_FILES = ("aureacore.yaml", "aureacore.yml", "aureacore.json")
SERVICES_DIR = "services"
DEFAULT_SCHEMA_DIR = "schemas"
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")  # use fullmatch: "a\n" is no label


def is_dns_label(value: object) -> bool:
    """True for a DNS label (lowercase, digits, inner '-', at most 63 characters)."""
    return isinstance(value, str) and len(value) <= 63 and DNS_LABEL.fullmatch(value) is not None

_KIND_BY_MODE = {
    pygit2.GIT_FILEMODE_BLOB: "blob",
    pygit2.GIT_FILEMODE_BLOB_EXECUTABLE: "blob",
    pygit2.GIT_FILEMODE_LINK: "symlink",
    pygit2.GIT_FILEMODE_COMMIT: "submodule",
    pygit2.GIT_FILEMODE_TREE: "tree",
}
_NOT_A_FILE = {
    "symlink": "is a symbolic link; links are not followed",
    "submodule": "is a Git submodule, not a file",
    "tree": "is a folder, not a file",
    "missing": "does not exist",
}


@dataclass(frozen=True)
class Entry:
    """A service file in a tree, with its check."""

    path: str
    oid: str | None  # blob id; None when the file is missing
    kind: str  # blob / symlink / submodule / tree / missing
    check: ConfigCheck


@dataclass(frozen=True)
class Verdict:
    """A service's status and the problems behind it."""

    status: str
    message: str
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class Layout:
    """How a tree declares its services."""

    kind: str  # "convention" or "root"
    root_path: str | None = None
    config_dir: str = SERVICES_DIR
    default_namespace: str = DEFAULT_NAMESPACE
    schema_dir: str = DEFAULT_SCHEMA_DIR
    listing: tuple[tuple[str | None, str, str], ...] = ()  # (namespace, name, path)
    problems: tuple[Problem, ...] = ()  # root-file problems, shared by every service
    unsafe: tuple[tuple[str, Problem], ...] = ()  # (path, problem) of unsafe listed paths


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


def service_ref(ref: str, namespace: str) -> str:
    """Service id of a dependency reference (``name`` means the same namespace)."""
    return ref if "/" in ref else f"{namespace}/{ref}"


@lru_cache(maxsize=4096)
def version_spec(constraint: str) -> semantic_version.BaseSpec | None:
    """A version constraint in npm syntax (``^1.2``, ``>=1 <2``, ``1.x || 2.x``) or the
    comma form (``>=1.2.0,<2.0.0``); None when it is neither."""
    kinds = (semantic_version.SimpleSpec, semantic_version.NpmSpec)
    if "," not in constraint:
        kinds = kinds[::-1]
    for kind in kinds:
        try:
            return kind(constraint)
        except ValueError:
            continue
    return None


@lru_cache(maxsize=4096)
def _semver(version: str) -> semantic_version.Version | None:
    try:
        return semantic_version.Version(version)
    except ValueError:
        return None


@lru_cache(maxsize=16384)
def satisfies(constraint: str, version: str) -> bool | None:
    """Whether ``version`` meets ``constraint``; None when either cannot be read."""
    spec, parsed = version_spec(constraint), _semver(version)
    if spec is None or parsed is None:
        return None
    return bool(spec.match(parsed))


def _safe_relpath(path: str) -> str | None:
    """Normalised repo-relative path, or None when it escapes the repository."""
    if not path or path.startswith("/") or "\\" in path or "\0" in path:
        return None
    norm = posixpath.normpath(path)
    if norm.startswith("../") or norm == ".." or norm == ".":
        return None
    return norm


class BlobReader:
    """Reads and checks blobs, caching checks by blob id (bounded LRU).

    ``fallback`` may supply checks stored earlier (the database's ``configs`` rows),
    so an incremental run does not parse the whole tree again.
    """

    def __init__(
        self,
        repo: pygit2.Repository,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        fallback: Callable[[str], ConfigCheck | None] | None = None,
        cache_size: int = 1024,
    ) -> None:
        self.repo = repo
        self.max_bytes = max_bytes
        self.fallback = fallback
        self.cache_size = cache_size
        self._checks: OrderedDict[str, ConfigCheck] = OrderedDict()
        self._param_validators: dict[str, tuple[Any, str | None]] = {}
        self._param_problems: OrderedDict[tuple[str, str], tuple[Problem, ...]] = OrderedDict()

    def read(self, oid: str, path: str) -> ParseResult:
        """Parse a blob, refusing oversized ones before reading their data."""
        blob = self.repo[oid]
        if blob.size > self.max_bytes:
            return ParseResult(file_format(path), None, None, too_large(blob.size, self.max_bytes),
                               size=blob.size)
        return parse_config(blob.data, path, max_bytes=self.max_bytes)

    @staticmethod
    def key(oid: str, path: str, kind: str = "service") -> str:
        """Cache key of a check: the blob, its format, and what it is read as."""
        return f"{kind}:{oid}:{file_format(path)}"

    def put(self, key: str, check: ConfigCheck) -> None:
        """Add a check made elsewhere (a prefetch worker)."""
        self._checks[key] = check
        if len(self._checks) > self.cache_size:
            self._checks.popitem(last=False)

    def check(self, oid: str, path: str, kind: str = "service") -> ConfigCheck:
        key = self.key(oid, path, kind)
        found = self._checks.get(key)
        if found is not None:
            self._checks.move_to_end(key)
            return found
        if self.fallback is not None and kind == "service":
            found = self.fallback(oid)
        if found is None:
            found = check_config(self.read(oid, path), kind)
        self.put(key, found)
        return found

    def entry(self, path: str, oid: str | None, kind: str) -> Entry:
        """An :class:`Entry` for a tree entry of any kind."""
        if kind == "blob" and oid is not None:
            return Entry(path, oid, kind, self.check(oid, path))
        if kind == "unsafe":  # the listing's own problem says why
            parse = ParseResult("yaml", None, None, "not followed")
            return Entry(path, None, kind, ConfigCheck(parse, ()))
        message = f"{path} {_NOT_A_FILE.get(kind, 'is not a file')}"
        parse = ParseResult("yaml", None, None, message)
        return Entry(path, oid, kind, ConfigCheck(parse, (Problem("error", "parse", message),)))

    def parameter_problems(
        self, check: ConfigCheck, schema_oid: str, schema_path: str
    ) -> tuple[Problem, ...]:
        """Problems of a config's ``parameters`` against a schema kept in the repo."""
        if check.content is None:
            return ()
        key = (id(check), schema_oid)
        cached = self._param_problems.get(key)
        if cached is not None and cached[0] is check:  # type: ignore[comparison-overlap]
            return cached[1]  # type: ignore[return-value]
        if schema_oid not in self._param_validators:
            self._param_validators[schema_oid] = compile_parameter_schema(
                self.read(schema_oid, schema_path)
            )
        validator, error = self._param_validators[schema_oid]
        if validator is None:
            problems: tuple[Problem, ...] = (
                Problem("error", "schema", f"parameter schema {schema_path} {error}",
                        "$.parameters", schema_path),
            )
        else:
            params = check.parameters if check.parameters is not None else {}
            problems = tuple(parameter_problems(validator, params, schema_path))
        self._param_problems[key] = (check, problems)  # type: ignore[assignment]
        if len(self._param_problems) > self.cache_size:
            self._param_problems.popitem(last=False)
        return problems


Updates = dict[str, "tuple[str, str] | None"]  # path -> (blob id, kind), None if deleted


def tree_updates(parent_tree: pygit2.Tree, tree: pygit2.Tree) -> Updates:
    """Paths (stored form, see :mod:`.gitpath`) that differ between two trees, with
    their new blob id and kind."""
    updates: Updates = {}
    for delta in parent_tree.diff_to_tree(tree).deltas:
        old_path = path_text(delta.old_file.raw_path)
        if delta.status == pygit2.GIT_DELTA_DELETED:
            updates[old_path] = None
        else:
            side = delta.new_file
            new_path = path_text(side.raw_path)
            if old_path != new_path:
                updates[old_path] = None
            updates[new_path] = (str(side.id), _kind_of(side.mode))
    return updates


def _kind_of(mode: int) -> str:
    return _KIND_BY_MODE.get(mode, "blob")


def walk_tree(tree: pygit2.Tree, prefix: str) -> Iterable[tuple[str, str, str]]:
    """(path, oid, kind) of every entry below ``tree``, recursively (``prefix`` and the
    paths in stored form, see :mod:`.gitpath`)."""
    for obj in tree:
        name = path_text(obj.raw_name)
        path = f"{prefix}/{name}" if prefix else name
        kind = _kind_of(obj.filemode)
        if kind == "tree":
            yield from walk_tree(obj, path)  # type: ignore[arg-type]
        else:
            yield path, str(obj.id), kind


def _subtree(tree: pygit2.Tree, path: str) -> pygit2.Tree | None:
    try:
        obj = tree[git_path(path)]
    except KeyError:
        return None
    return obj if isinstance(obj, pygit2.Tree) else None


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
        self.deps_of: dict[str, frozenset[str]] = {}
        self.dependents: dict[str, frozenset[str]] = {}
        self.req_edges: dict[str, frozenset[str]] = {}
        self.cycles: dict[str, str] = {}
        self.last_good: dict[str, Entry] = {}  # last readable config per service

    # -- copying ---------------------------------------------------------------
    def copy(self) -> TreeState:
        """An independent state (values are immutable, so shallow dict copies do)."""
        other = TreeState.__new__(TreeState)
        other.reader = self.reader
        other.layout = self.layout
        for name in ("entries", "path_id", "by_id", "param_schemas", "verdicts", "deps_of",
                     "dependents", "req_edges", "cycles", "last_good"):
            setattr(other, name, dict(getattr(self, name)))
        return other

    # -- reading ---------------------------------------------------------------
    def primary(self, service_id: str) -> Entry | None:
        """The file that defines a service (the first path when duplicated)."""
        paths = self.by_id.get(service_id)
        return self.entries[paths[0]] if paths else None

    def services(self) -> dict[str, Entry]:
        return {sid: self.entries[paths[0]] for sid, paths in self.by_id.items()}

    # -- layout ----------------------------------------------------------------
    def _read_layout(self, tree: pygit2.Tree) -> Layout:
        for name in ROOT_FILES:
            if name in tree:
                obj = tree[name]
                kind = _kind_of(obj.filemode)
                break
        else:
            return Layout("convention")
        oid = str(obj.id)
        if kind != "blob":
            return self._broken_root(name, f"{name} {_NOT_A_FILE.get(kind, 'is not a file')}")
        check = self.reader.check(oid, name, kind="root")
        errors = [p for p in check.problems if p.severity == "error"]
        if check.content is None or errors:
            first = errors[0] if errors else Problem("error", "parse", "unreadable")
            where = "" if first.json_path == "$" else f" at {first.json_path}"
            message = f"root file {name} is invalid{where}: {first.message}"
            return self._broken_root(name, message)
        glob = check.content.get("global") or {}
        problems: list[Problem] = []
        folders = {}
        for key, default in (("config_dir", SERVICES_DIR), ("schema_dir", DEFAULT_SCHEMA_DIR)):
            value = glob.get(key) or default
            safe = _safe_relpath(value)
            folders[key] = None if safe is None else path_text(safe)
            if folders[key] is None:
                folders[key] = default
                problems.append(Problem(
                    "error", "parse",
                    f"{name}: {key} {value!r} leaves the repository; not followed",
                    f"$.global.{key}", name))
        config_dir = folders["config_dir"]
        default_ns = glob.get("default_namespace") or DEFAULT_NAMESPACE
        listing = []
        unsafe = []
        for index, item in enumerate(check.content.get("services") or []):
            path = _safe_relpath(posixpath.join(git_path(config_dir), item["config_path"]))
            if path is None:
                path = f"<unsafe:{path_text(item['config_path'])}>"
                unsafe.append((path, Problem(
                    "error", "parse",
                    f"config_path {item['config_path']!r} leaves the repository; not followed",
                    f"$.services[{index}].config_path", name)))
            else:
                path = path_text(path)
            listing.append((item.get("namespace"), item["name"], path))
        return Layout("root", name, config_dir, default_ns, folders["schema_dir"],
                      tuple(listing), tuple(problems), tuple(unsafe))

    def _broken_root(self, name: str, message: str) -> Layout:
        """Keep the previous listing, with the root file's problem on every service."""
        prev = self.layout
        problem = Problem("error", "parse", message, "$", name)
        return Layout(prev.kind, name, prev.config_dir, prev.default_namespace,
                      prev.schema_dir, prev.listing, (problem,), prev.unsafe)

    def _scan_entries(self, tree: pygit2.Tree) -> dict[str, tuple[str | None, str]]:
        found: dict[str, tuple[str | None, str]] = {}
        if self.layout.kind == "convention":
            sub = _subtree(tree, SERVICES_DIR)
            if sub is not None:
                for path, oid, kind in walk_tree(sub, SERVICES_DIR):
                    if is_config_path(path):
                        found[path] = (oid, kind)
        else:
            for _namespace, _name, path in self.layout.listing:
                if path.startswith("<unsafe:"):
                    found[path] = (None, "unsafe")
                    continue
                try:
                    obj = tree[git_path(path)]
                    found[path] = (str(obj.id), _kind_of(obj.filemode))
                except KeyError:
                    found[path] = (None, "missing")
        return found

    def _scan_param_schemas(self, tree: pygit2.Tree) -> dict[str, str]:
        found = {}
        sub = _subtree(tree, self.layout.schema_dir)
        if sub is not None:
            for path, oid, kind in walk_tree(sub, self.layout.schema_dir):
                sid = self._param_schema_id(path)
                if sid and kind == "blob":
                    found[sid] = oid
        return found

    def _param_schema_id(self, path: str) -> str | None:
        prefix = self.layout.schema_dir + "/"
        if not path.startswith(prefix) or not path.endswith(".json"):
            return None
        parts = path[len(prefix):-5].split("/")
        return "/".join(parts) if len(parts) == 2 else None

    # -- identity --------------------------------------------------------------
    def _identity(self, entry: Entry, previous_id: str | None) -> str:
        check = entry.check
        if self.layout.kind == "root":
            for namespace, name, path in self.layout.listing:
                if path == entry.path:
                    if not namespace and check.content is None and previous_id:
                        namespace = previous_id.partition("/")[0]
                    namespace = namespace or check.namespace or self.layout.default_namespace
                    return f"{namespace}/{name}"
        if check.content is None and previous_id is not None:
            return previous_id  # an unreadable file keeps the service it held
        rel = entry.path[len(SERVICES_DIR) + 1:]
        parts = rel.split("/")
        folder = parts[0] if len(parts) > 1 else None
        stem = parts[-1].rsplit(".", 1)[0]
        namespace = check.namespace or folder or self.layout.default_namespace
        return f"{namespace}/{check.name or stem}"

    def _identity_problems(self, sid: str, entry: Entry) -> list[Problem]:
        problems: list[Problem] = []
        namespace, _, name = sid.partition("/")
        check = entry.check
        if self.layout.kind == "root":
            problems.extend(p for path, p in self.layout.unsafe if path == entry.path)
            if check.name and check.name != name:
                problems.append(Problem(
                    "warning", "schema",
                    f"name {check.name!r} in the file differs from {name!r} in "
                    f"{self.layout.root_path}", "$.name"))
            return problems
        if check.content is None:
            return problems
        if not check.name and not is_dns_label(name):
            problems.append(Problem(
                "error", "schema", f"service name {name!r} (from the file name) is not a "
                "valid DNS label", "$.name"))
        if not check.namespace and not is_dns_label(namespace):
            problems.append(Problem(
                "error", "schema", f"namespace {namespace!r} (from the folder) is not a "
                "valid DNS label", "$.namespace"))
        return problems

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
        new_id = self._identity(entry, old_id)
        touched.setdefault(new_id, self.primary(new_id))
        self.entries[path] = entry
        self.path_id[path] = new_id
        self.by_id[new_id] = tuple(sorted(self.by_id.get(new_id, ()) + (path,)))

    def advance(self, parent_tree: pygit2.Tree | None, tree: pygit2.Tree,
                updates: Updates | None = None) -> Step:
        """Move from the first parent's tree to ``tree``; return what changed.

        ``updates`` may carry :func:`tree_updates` computed ahead (in a worker process).
        """
        touched: dict[str, Entry | None] = {}
        schema_changed: set[str] = set()
        if parent_tree is not None and updates is None:
            updates = tree_updates(parent_tree, tree)
        if parent_tree is None or updates is None or any(p in updates for p in ROOT_FILES):
            self._rescan(tree, touched)
        else:
            self._apply_updates(updates, touched, schema_changed)
        return self._revalidate(touched, schema_changed)

    def _rescan(self, tree: pygit2.Tree, touched: dict) -> None:
        """Read the layout and every service file again (a first commit, or a root-file
        change). Every service, old and new, ends up touched, so every verdict is
        recomputed, parameter schemas and root-file problems included."""
        self.layout = self._read_layout(tree)
        wanted = self._scan_entries(tree)
        for path in list(self.entries):
            self._set(path, None, touched)
        for path, (oid, kind) in sorted(wanted.items()):
            self._set(path, self.reader.entry(path, oid, kind), touched)
        self.param_schemas = self._scan_param_schemas(tree)

    def _apply_updates(self, updates: dict, touched: dict, schema_changed: set[str]) -> None:
        listed = None
        if self.layout.kind == "root":
            listed = {path for _ns, _name, path in self.layout.listing}
        for path, value in sorted(updates.items()):
            sid = self._param_schema_id(path)
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
        namespace = sid.partition("/")[0]
        every, required = set(), set()
        for dep in entry.check.dependencies:
            target = service_ref(dep.service, namespace)
            every.add(target)
            if dep.required and target in self.by_id:
                required.add(target)
        return frozenset(every), frozenset(required)

    def _revalidate(self, touched: dict[str, Entry | None], schema_changed: set[str]) -> Step:
        dirty = set(touched)
        dirty.update(sid for sid in schema_changed if sid in self.by_id or sid in self.verdicts)
        for sid, before in touched.items():
            after = self.primary(sid)
            # a dependent's verdict only sees whether its target exists and its version
            if (before is None) != (after is None) or (
                    before is not None and after is not None
                    and before.check.version != after.check.version):
                dirty |= self.dependents.get(sid, frozenset())
        added_edges: list[tuple[str, str]] = []
        removed_edges: list[tuple[str, str]] = []
        for sid in dirty:
            every, required = self._dependency_targets(sid)
            old_every = self.deps_of.get(sid, frozenset())
            if every != old_every:
                for target in old_every - every:
                    rest = self.dependents.get(target, frozenset()) - {sid}
                    if rest:
                        self.dependents[target] = rest
                    else:
                        self.dependents.pop(target, None)
                for target in every - old_every:
                    self.dependents[target] = self.dependents.get(target, frozenset()) | {sid}
                if every:
                    self.deps_of[sid] = every
                else:
                    self.deps_of.pop(sid, None)
            old_required = self.req_edges.get(sid, frozenset())
            if required != old_required:
                added_edges.extend((sid, t) for t in required - old_required)
                removed_edges.extend((sid, t) for t in old_required - required)
                if required:
                    self.req_edges[sid] = required
                else:
                    self.req_edges.pop(sid, None)
        if self._cycles_may_change(added_edges, removed_edges):
            cycles = self._find_cycles({u for u, _v in added_edges + removed_edges})
            for sid in set(cycles) | set(self.cycles):
                if cycles.get(sid) != self.cycles.get(sid):
                    dirty.add(sid)
            self.cycles = cycles
        step = Step()
        for sid in sorted(dirty):
            old = self.verdicts.get(sid)
            new = self._verdict(sid) if sid in self.by_id else None
            if new is None:
                self.verdicts.pop(sid, None)
            else:
                self.verdicts[sid] = new
            if new != old:
                step.verdicts.append((sid, new, old))
        for sid, before in sorted(touched.items()):
            after = self.primary(sid)
            change = _classify(before, after)
            if change:
                step.changes.append(Change(sid, change, after.path if after else None,
                                           before.path if before else None, after, before,
                                           self.last_good.get(sid)))
                if after is not None and after.check.content is not None:
                    self.last_good[sid] = after
        return step

    def _cycles_may_change(self, added: list[tuple[str, str]],
                           removed: list[tuple[str, str]]) -> bool:
        """Cheap test before recomputing cycles: a removed edge inside a known cycle, or
        an added edge u -> v where u is reachable from v (it closes a cycle)."""
        if any(u in self.cycles and v in self.cycles for u, v in removed):
            return True
        for u, v in added:
            if u == v or v in self.cycles:
                return True
            seen, stack = {v}, [v]
            while stack:
                for nxt in self.req_edges.get(stack.pop(), ()):
                    if nxt == u:
                        return True
                    if nxt not in seen:
                        seen.add(nxt)
                        stack.append(nxt)
        return False

    def _find_cycles(self, changed: set[str]) -> dict[str, str]:
        """Cycle message per member of a required-dependency cycle.

        Only cycles through ``changed`` nodes (sources of added or removed edges) or
        known cycles can differ, and each lies within the nodes reachable from them, so
        strongly connected components are computed on that forward-closed part.
        """
        import networkx as nx  # imported here: only commits that change edges need it

        seeds = changed | set(self.cycles)  # old cycles may break: recheck their members
        reach, stack = set(seeds), list(seeds)
        while stack:
            for nxt in self.req_edges.get(stack.pop(), ()):
                if nxt not in reach:
                    reach.add(nxt)
                    stack.append(nxt)
        graph = nx.DiGraph()
        for sid in sorted(reach):  # sorted, so cycle messages are deterministic
            graph.add_edges_from((sid, t) for t in sorted(self.req_edges.get(sid, ())))
        members: dict[str, str] = {}
        for component in nx.strongly_connected_components(graph):
            if len(component) == 1:
                (node,) = component
                if not graph.has_edge(node, node):
                    continue
            start = min(component)
            cycle = [u for u, _v in nx.find_cycle(graph.subgraph(component), source=start)]
            for node in component:
                if node in cycle:
                    i = cycle.index(node)
                    loop = cycle[i:] + cycle[:i]
                else:
                    loop = cycle
                members[node] = " -> ".join(loop + [loop[0]])
        return members

    def _verdict(self, sid: str) -> Verdict:
        paths = self.by_id[sid]
        entry = self.entries[paths[0]]
        check = entry.check
        namespace = sid.partition("/")[0]
        problems = list(self.layout.problems) + list(check.problems)
        problems += self._identity_problems(sid, entry)
        if len(paths) > 1:
            problems.append(Problem(
                "error", "duplicate",
                f"service {sid} is declared by {len(paths)} files: {', '.join(paths)}", "$.name"))
        schema_oid = self.param_schemas.get(sid)
        if schema_oid is not None and entry.kind == "blob":
            schema_path = f"{self.layout.schema_dir}/{sid}.json"
            problems += self.reader.parameter_problems(check, schema_oid, schema_path)
        for dep in check.dependencies:
            problems += self._dependency_problems(sid, namespace, dep)
        if sid in self.cycles:
            problems.append(Problem(
                "error", "cycle", f"required dependency cycle: {self.cycles[sid]}",
                "$.dependencies"))
        errors = [_describe(p) for p in problems if p.severity == "error"]
        warnings = [_describe(p) for p in problems if p.severity == "warning"]
        status = ERROR if errors else CONFIGURED
        message = "; ".join(errors + [f"warning: {w}" for w in warnings])
        if len(message) > 1000:
            message = message[:999] + "…"
        return Verdict(status, message, tuple(problems))

    def _dependency_problems(self, sid: str, namespace: str, dep: Any) -> list[Problem]:
        target = service_ref(dep.service, namespace)
        severity = "error" if dep.required else "warning"
        what = "required" if dep.required else "optional"
        base = f"$.dependencies[{dep.index}]"
        if target == sid:
            if dep.required:
                return []  # reported as a cycle
            return [Problem("warning", "dependency", "depends on itself", f"{base}.service")]
        target_entry = self.primary(target)
        if target_entry is None:
            return [Problem(severity, "dependency",
                            f"{what} dependency {target} does not exist", f"{base}.service")]
        if not dep.version_constraint:
            return []
        spec = version_spec(dep.version_constraint)
        if spec is None:
            return [Problem(severity, "dependency",
                            f"invalid version constraint {dep.version_constraint!r} for {target}",
                            f"{base}.version_constraint")]
        version = target_entry.check.version
        ok = satisfies(dep.version_constraint, version) if version else None
        if ok is None:
            return [Problem("warning", "dependency",
                            f"cannot check {target} against {dep.version_constraint}: its "
                            "version is unknown", f"{base}.version_constraint")]
        if not ok:
            return [Problem(severity, "dependency",
                            f"{what} dependency {target} is at {version}, which does not "
                            f"satisfy {dep.version_constraint}", f"{base}.version_constraint")]
        return []


def _describe(problem: Problem) -> str:
    """A problem as one readable phrase; schema errors say where."""
    if problem.kind == "schema" and problem.json_path != "$":
        return f"{problem.json_path}: {problem.message}"
    return problem.message


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
