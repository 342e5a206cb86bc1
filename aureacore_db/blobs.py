"""Reading a commit's tree: its entries, what changed between two trees, and the checks
of blobs (parsed and validated once per blob id, cached)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pygit2

from .gitpath import git_path, path_text
from .parsing import DEFAULT_MAX_BYTES, ParseResult, file_format, parse_config, too_large
from .validation import (
    ConfigCheck,
    Problem,
    check_config,
    compile_parameter_schema,
    parameter_problems,
)

_KIND_BY_MODE = {
    pygit2.GIT_FILEMODE_BLOB: "blob",
    pygit2.GIT_FILEMODE_BLOB_EXECUTABLE: "blob",
    pygit2.GIT_FILEMODE_LINK: "symlink",
    pygit2.GIT_FILEMODE_COMMIT: "submodule",
    pygit2.GIT_FILEMODE_TREE: "tree",
}
NOT_A_FILE = {
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
        self._offered: dict[str, ConfigCheck] = {}  # see offer()
        self._param_validators: dict[str, tuple[Any, str | None]] = {}
        self._param_problems: OrderedDict[tuple[str, str], tuple[Problem, ...]] = OrderedDict()

    def read(self, oid: str, path: str) -> ParseResult:
        """Parse a blob, refusing oversized ones before reading their data."""
        blob = self.repo[oid]
        if blob.size > self.max_bytes:
            return ParseResult(file_format(path), None, None, too_large(blob.size, self.max_bytes),
                               size=blob.size)
        # the bytes through the blob's buffer: ``Blob.data`` reads the object from the
        # pack again (pygit2 1.21: 6-10 us for a 1.2 KB file, more than the lookup)
        return parse_config(bytes(memoryview(blob)), path, max_bytes=self.max_bytes)

    @staticmethod
    def key(oid: str, path: str, kind: str = "service") -> str:
        """Cache key of a check: the blob, its format, and what it is read as."""
        return f"{kind}:{oid}:{file_format(path)}"

    def put(self, key: str, check: ConfigCheck) -> None:
        """Add a check made elsewhere (a prefetch worker)."""
        self._checks[key] = check
        if len(self._checks) > self.cache_size:
            self._checks.popitem(last=False)

    def offer(self, checks: dict[str, ConfigCheck]) -> None:
        """Checks made elsewhere (a prefetch worker) for the commit about to be read,
        by :meth:`key`: taken before reading the blob, until the next offer. (Put into
        the cache instead, a first commit's thousands of checks would mostly be evicted
        before use, and parsed again.)"""
        self._offered = checks

    def check(self, oid: str, path: str, kind: str = "service") -> ConfigCheck:
        key = self.key(oid, path, kind)
        found = self._checks.get(key)
        if found is not None:
            self._checks.move_to_end(key)
            return found
        found = self._offered.get(key)
        if found is None and self.fallback is not None and kind == "service":
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
        message = f"{path} {NOT_A_FILE.get(kind, 'is not a file')}"
        parse = ParseResult("yaml", None, None, message)
        return Entry(path, oid, kind, ConfigCheck(parse, (Problem("error", "parse", message),)))

    def parameter_problems(
        self, check: ConfigCheck, schema_oid: str, schema_path: str
    ) -> tuple[Problem, ...]:
        """Problems of a config's ``parameters`` against a schema kept in the repo."""
        if not check.readable:
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
        old_path = name_text(delta.old_file.raw_path)
        if delta.status == pygit2.GIT_DELTA_DELETED:
            updates[old_path] = None
        else:
            side = delta.new_file
            new_path = name_text(side.raw_path)
            if old_path != new_path:
                updates[old_path] = None
            updates[new_path] = (str(side.id), kind_of(side.mode))
    return updates


def kind_of(mode: int) -> str:
    return _KIND_BY_MODE.get(mode, "blob")


def walk_tree(tree: pygit2.Tree, prefix: str) -> Iterable[tuple[str, str, str]]:
    """(path, oid, kind) of every entry below ``tree``, recursively (``prefix`` and the
    paths in stored form, see :mod:`.gitpath`)."""
    for obj in tree:
        name = name_text(obj.raw_name)
        path = f"{prefix}/{name}" if prefix else name
        kind = kind_of(obj.filemode)
        if kind == "tree":
            yield from walk_tree(obj, path)  # type: ignore[arg-type]
        else:
            yield path, str(obj.id), kind


def name_text(raw: bytes) -> str:
    """:func:`~aureacore_db.gitpath.path_text` of a tree entry's name or a diff's path,
    quicker for the common case (valid UTF-8: :func:`path_text` of the text is checked
    with one regex instead of character by character)."""
    try:
        return path_text(raw.decode("utf-8"))  # the same text: it is valid UTF-8
    except UnicodeDecodeError:
        return path_text(raw)


def subtree(tree: pygit2.Tree, path: str) -> pygit2.Tree | None:
    try:
        obj = tree[git_path(path)]
    except KeyError:
        return None
    return obj if isinstance(obj, pygit2.Tree) else None
