"""Validate service files or a working tree without a database (``aureacore-db validate``).

A folder is checked exactly as ingest checks a commit: its files are written into a
throwaway in-memory Git tree and walked by :class:`~aureacore_db.tree.TreeState`, so
duplicates, dependencies and cycles are found too. A single file is checked on its own.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pygit2

from .parsing import DEFAULT_MAX_BYTES, parse_config, too_large
from .tree import BlobReader, TreeState
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


def _tree_from_folder(repo: pygit2.Repository, folder: Path) -> pygit2.Oid:
    """Write ``folder`` (files and symlinks, not followed) into ``repo`` as a tree.

    Names are taken as bytes, so a file name that is not UTF-8 is kept as it is
    (an index, unlike a tree builder, takes any bytes)."""
    index = pygit2.Index()
    for path, mode in _files(os.fsencode(folder)):
        if mode == pygit2.GIT_FILEMODE_LINK:
            oid = repo.create_blob(os.readlink(path))
        else:
            oid = repo.create_blob_fromdisk(os.fsdecode(path))
        index.add(pygit2.IndexEntry(_rel_of(folder, path), oid, mode))
    return index.write_tree(repo)


def _rel_of(folder: Path, path: bytes) -> str:
    rel = path[len(os.fsencode(folder)) + 1:]
    return rel.decode("utf-8", "surrogateescape")  # how pygit2 takes a non-UTF-8 path


def _files(folder: bytes) -> list[tuple[bytes, int]]:
    found: list[tuple[bytes, int]] = []
    for item in sorted(os.scandir(folder), key=lambda e: e.name):
        if item.is_symlink():
            found.append((item.path, pygit2.GIT_FILEMODE_LINK))
        elif item.is_dir():
            if os.fsdecode(item.name) not in SKIP_DIRS:
                found.extend(_files(item.path))
        elif item.is_file():
            found.append((item.path, pygit2.GIT_FILEMODE_BLOB))
    return found


def check_folder(folder: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Finding]:
    """Every problem of every service declared by a config repository's working tree."""
    with tempfile.TemporaryDirectory(prefix="aureacore-validate-") as scratch:
        repo = pygit2.init_repository(scratch, bare=True)
        tree = repo[_tree_from_folder(repo, folder)]
        state = TreeState(BlobReader(repo, max_bytes=max_bytes))
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
