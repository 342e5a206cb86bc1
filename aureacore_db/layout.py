"""How a tree declares its services (DESIGN §1): a root file listing them, or the
convention layout (``services/<namespace>/<name>.yaml``); which service id each file
declares, and where parameter schemas live."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

import pygit2

from .blobs import NOT_A_FILE, BlobReader, Entry, kind_of, subtree, walk_tree
from .gitpath import git_path, path_text
from .names import DEFAULT_NAMESPACE
from .parsing import is_config_path
from .validation import Problem

ROOT_FILES = ("aureacore.yaml", "aureacore.yml", "aureacore.json")
SERVICES_DIR = "services"
DEFAULT_SCHEMA_DIR = "schemas"
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")  # use fullmatch: "a\n" is no label


def is_dns_label(value: object) -> bool:
    """True for a DNS label (lowercase, digits, inner '-', at most 63 characters)."""
    return isinstance(value, str) and len(value) <= 63 and DNS_LABEL.fullmatch(value) is not None


def safe_relpath(path: str) -> str | None:
    """Normalised repo-relative path, or None when it escapes the repository."""
    if not path or path.startswith("/") or "\\" in path or "\0" in path:
        return None
    norm = posixpath.normpath(path)
    if norm.startswith("../") or norm == ".." or norm == ".":
        return None
    return norm


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

    def read(self, tree: pygit2.Tree, reader: BlobReader) -> Layout:
        """The layout of ``tree`` (this one is the previous commit's: a broken root file
        keeps its listing)."""
        for name in ROOT_FILES:
            if name in tree:
                obj = tree[name]
                kind = kind_of(obj.filemode)
                break
        else:
            return Layout("convention")
        oid = str(obj.id)
        if kind != "blob":
            return self.broken_root(name, f"{name} {NOT_A_FILE.get(kind, 'is not a file')}")
        check = reader.check(oid, name, kind="root")
        errors = [p for p in check.problems if p.severity == "error"]
        if check.content is None or errors:
            first = errors[0] if errors else Problem("error", "parse", "unreadable")
            where = "" if first.json_path == "$" else f" at {first.json_path}"
            message = f"root file {name} is invalid{where}: {first.message}"
            return self.broken_root(name, message)
        glob = check.content.get("global") or {}
        problems: list[Problem] = []
        folders = {}
        for key, default in (("config_dir", SERVICES_DIR), ("schema_dir", DEFAULT_SCHEMA_DIR)):
            value = glob.get(key) or default
            safe = safe_relpath(value)
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
            path = safe_relpath(posixpath.join(git_path(config_dir), item["config_path"]))
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

    def broken_root(self, name: str, message: str) -> Layout:
        """Keep the previous listing, with the root file's problem on every service."""
        prev = self
        problem = Problem("error", "parse", message, "$", name)
        return Layout(prev.kind, name, prev.config_dir, prev.default_namespace,
                      prev.schema_dir, prev.listing, (problem,), prev.unsafe)

    def scan_entries(self, tree: pygit2.Tree) -> dict[str, tuple[str | None, str]]:
        """Service file path -> (blob id, kind) of every service file in ``tree``."""
        found: dict[str, tuple[str | None, str]] = {}
        if self.kind == "convention":
            sub = subtree(tree, SERVICES_DIR)
            if sub is not None:
                for path, oid, kind in walk_tree(sub, SERVICES_DIR):
                    if is_config_path(path):
                        found[path] = (oid, kind)
        else:
            for _namespace, _name, path in self.listing:
                if path.startswith("<unsafe:"):
                    found[path] = (None, "unsafe")
                    continue
                try:
                    obj = tree[git_path(path)]
                    found[path] = (str(obj.id), kind_of(obj.filemode))
                except KeyError:
                    found[path] = (None, "missing")
        return found

    def scan_param_schemas(self, tree: pygit2.Tree) -> dict[str, str]:
        """Service id -> blob id of every parameter schema in ``tree``."""
        found = {}
        sub = subtree(tree, self.schema_dir)
        if sub is not None:
            for path, oid, kind in walk_tree(sub, self.schema_dir):
                sid = self.param_schema_id(path)
                if sid and kind == "blob":
                    found[sid] = oid
        return found

    def param_schema_id(self, path: str) -> str | None:
        """The service whose parameter schema ``path`` is, if it is one."""
        prefix = self.schema_dir + "/"
        if not path.startswith(prefix) or not path.endswith(".json"):
            return None
        parts = path[len(prefix):-5].split("/")
        return "/".join(parts) if len(parts) == 2 else None

    def identity(self, entry: Entry, previous_id: str | None) -> str:
        """The service id a file declares (``previous_id``: the one its path had)."""
        check = entry.check
        if self.kind == "root":
            for namespace, name, path in self.listing:
                if path == entry.path:
                    if not namespace and not check.readable and previous_id:
                        namespace = previous_id.partition("/")[0]
                    namespace = namespace or check.namespace or self.default_namespace
                    return f"{namespace}/{name}"
        if not check.readable and previous_id is not None:
            return previous_id  # an unreadable file keeps the service it held
        rel = entry.path[len(SERVICES_DIR) + 1:]
        parts = rel.split("/")
        folder = parts[0] if len(parts) > 1 else None
        stem = parts[-1].rsplit(".", 1)[0]
        namespace = check.namespace or folder or self.default_namespace
        return f"{namespace}/{check.name or stem}"

    def identity_problems(self, sid: str, entry: Entry) -> list[Problem]:
        """Problems of the name and namespace a file gets from the layout."""
        problems: list[Problem] = []
        namespace, _, name = sid.partition("/")
        check = entry.check
        if self.kind == "root":
            problems.extend(p for path, p in self.unsafe if path == entry.path)
            if check.name and check.name != name:
                problems.append(Problem(
                    "warning", "schema",
                    f"name {check.name!r} in the file differs from {name!r} in "
                    f"{self.root_path}", "$.name"))
            return problems
        if not check.readable:
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
