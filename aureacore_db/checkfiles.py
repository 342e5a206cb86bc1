"""Validate service files or a working tree without a database (``aureacore-db validate``).

A folder is checked exactly as ingest checks a commit: its files are written into a
throwaway in-memory Git tree and walked by :class:`~aureacore_db.tree.TreeState`, so
duplicates, dependencies and cycles are found too. A single file is checked on its own.

Only files that can be configs are read: those with a config suffix, and those a root
file lists. A config over the size limit, or one that is not a regular file (a FIFO,
a device), is never opened: it goes into the tree as a placeholder whose check says why.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pygit2

from .blobs import BlobReader
from .gitpath import path_text
from .layout import ROOT_FILES, SERVICES_DIR
from .parsing import (
    DEFAULT_MAX_BYTES,
    ParseResult,
    file_format,
    is_config_path,
    parse_config,
    too_large,
)
from .tree import TreeState
from .validation import Problem, check_config

SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv", "venv"}


@dataclass(frozen=True)
class Finding:
    """A problem in one file, ready to print as ``path: json_path: message``."""

    path: str
    problem: Problem

    def line(self) -> str:
        prefix = "" if self.problem.severity == "error" else "warning: "
        return f"{self.path}: {self.problem.json_path}: {prefix}{self.problem.message}"


class _FolderReader(BlobReader):
    """A :class:`BlobReader` that knows the placeholders of files it must not read."""

    def __init__(self, repo: pygit2.Repository, max_bytes: int) -> None:
        super().__init__(repo, max_bytes=max_bytes)
        self.notes: dict[str, tuple[str, int | None]] = {}  # placeholder oid -> why, size

    def placeholder(self, rel: str, why: str, size: int | None) -> pygit2.Oid:
        oid = self.repo.create_blob(f"aureacore placeholder: {rel}: {why}".encode())
        self.notes[str(oid)] = (why, size)
        return oid

    def read(self, oid: str, path: str) -> ParseResult:
        note = self.notes.get(oid)
        if note is not None:
            return ParseResult(file_format(path), None, None, note[0], size=note[1])
        return super().read(oid, path)


def _listed_paths(folder: Path, max_bytes: int) -> set[str]:
    """Paths a root file at the top of ``folder`` lists (whatever their suffix)."""
    for name in ROOT_FILES:
        path = folder / name
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= max_bytes:
            content = parse_config(path.read_bytes(), name, max_bytes=max_bytes).content or {}
            glob = content.get("global") if isinstance(content.get("global"), dict) else {}
            base = glob.get("config_dir") if isinstance(glob.get("config_dir"), str) \
                else SERVICES_DIR
            items = content.get("services") if isinstance(content.get("services"), list) else []
            return {posixpath.normpath(posixpath.join(base, item["config_path"]))
                    for item in items if isinstance(item, dict)
                    and isinstance(item.get("config_path"), str)}
    return set()


def _tree_from_folder(reader: _FolderReader, folder: Path, listed: set[str]) -> pygit2.Oid:
    """Write ``folder`` into the reader's repo as a tree: symlinks as links (not
    followed), config files as blobs (placeholders when too big or not regular files);
    other files are left out unread.

    Names are taken as bytes, so a file name that is not UTF-8 is kept as it is
    (an index, unlike a tree builder, takes any bytes)."""
    repo = reader.repo
    index = pygit2.Index()
    for path, rel, is_link in _candidates(os.fsencode(folder), b"", listed):
        if is_link:
            oid = repo.create_blob(os.readlink(path))
            mode = pygit2.GIT_FILEMODE_LINK
        else:
            mode = pygit2.GIT_FILEMODE_BLOB
            info = os.stat(path, follow_symlinks=False)
            shown = path_text(rel)
            if not stat.S_ISREG(info.st_mode):
                oid = reader.placeholder(shown, f"{shown} is not a regular file; not read", None)
            elif info.st_size > reader.max_bytes:
                oid = reader.placeholder(shown, too_large(info.st_size, reader.max_bytes),
                                         info.st_size)
            else:
                oid = repo.create_blob_fromdisk(os.fsdecode(path))
        # how pygit2 takes a path that is not UTF-8
        index.add(pygit2.IndexEntry(rel.decode("utf-8", "surrogateescape"), oid, mode))
    return index.write_tree(repo)


def _candidates(folder: bytes, rel: bytes, listed: set[str]):  # type: ignore[no-untyped-def]
    """(path, path relative to the top, is a symlink) of every symlink and config file
    below ``folder``, as bytes."""
    for item in sorted(os.scandir(folder), key=lambda e: e.name):
        path = rel + b"/" + item.name if rel else item.name
        if item.is_symlink():
            yield item.path, path, True
        elif item.is_dir(follow_symlinks=False):
            if os.fsdecode(item.name) not in SKIP_DIRS:
                yield from _candidates(item.path, path, listed)
        elif is_config_path(os.fsdecode(item.name)) or path_text(path) in listed:
            yield item.path, path, False


def check_folder(folder: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Finding]:
    """Every problem of every service declared by a config repository's working tree."""
    with tempfile.TemporaryDirectory(prefix="aureacore-validate-") as scratch:
        repo = pygit2.init_repository(scratch, bare=True)
        reader = _FolderReader(repo, max_bytes)
        tree = repo[_tree_from_folder(reader, folder, _listed_paths(folder, max_bytes))]
        state = TreeState(reader)
        state.advance(None, tree)
        findings = []
        for sid, verdict in sorted(state.verdicts.items()):
            entry = state.primary(sid)
            path = str(folder / entry.path) if entry else sid
            findings.extend(Finding(path, p) for p in verdict.problems)
        return findings


def check_file(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Finding]:
    """Problems of one service file on its own (no whole-tree checks)."""
    if path.is_symlink():
        return [Finding(str(path), Problem("error", "parse", "is a symbolic link; not followed"))]
    if not path.is_file():
        return [Finding(str(path), Problem("error", "parse", "is not a regular file; not read"))]
    size = path.stat().st_size
    if size > max_bytes:
        return [Finding(str(path), Problem("error", "parse", too_large(size, max_bytes)))]
    check = check_config(parse_config(path.read_bytes(), path.name, max_bytes=max_bytes))
    return [Finding(str(path), p) for p in check.problems]


def check_paths(paths: list[Path], *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Finding]:
    """Check each path: folders as whole config repositories, files one by one."""
    findings: list[Finding] = []
    for path in paths:
        if path.is_dir():
            findings.extend(check_folder(path, max_bytes=max_bytes))
        else:
            findings.extend(check_file(path, max_bytes=max_bytes))
    return findings
