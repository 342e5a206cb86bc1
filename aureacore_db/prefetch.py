"""Diff commits and parse their config blobs ahead of the walk, in worker processes.

The walk itself is sequential (each commit builds on its first parent's state), but
finding what a commit changed and parsing the changed files is not: workers do that for
chunks of upcoming commits while the main process validates and writes, so a full
ingest uses every core. Results come back in commit order.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import os
import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import fields
from operator import attrgetter

import pygit2

from .blobs import BlobReader, Updates, tree_updates, walk_tree
from .gitsource import CommitInfo
from .parsing import ParseResult, is_config_path
from .validation import ConfigCheck, Dependency, Problem, SentCheck

CHUNK = 64  # commits per task
MIN_COMMITS = 500  # fewer than this: not worth starting workers
WORKER_CACHE = 256  # checks a worker keeps (see _init)
# libgit2 keeps parsed trees and commits in a cache of up to 256 MB by default, and maps
# pack files in windows of 1 GB up to 8 GB: both fill as a long history is walked. A walk
# reads each object about once, so without the cache and with small windows it runs as
# fast (measured on the 1k x 10k benchmark) and its memory stays flat. The main process
# reads commits and few trees: 8 MB of mappings instead of 32 cut its peak at 10k x 100k
# by 24 MB at the same CPU (the mappings fill as the pack grows, so they were the part of
# its memory that followed history).
GIT_WINDOW_BYTES = 4 * 2**20
GIT_MAPPED_BYTES = 32 * 2**20  # in a worker, which diffs trees
MAIN_MAPPED_BYTES = 8 * 2**20  # in the main process
WORKER_CACHE_BYTES = 8 * 2**20


def bound_git_cache(mapped: int = MAIN_MAPPED_BYTES) -> None:
    """No libgit2 object cache and bounded pack mappings in this process (see above).

    Call it before the process opens any repository: libgit2 keeps a pack file open
    for the whole process once read, with the mapping settings of that time (a check
    of the source before the ingest left the 10k x 100k walk mapping 280 MB more)."""
    pygit2.settings.enable_caching(False)
    pygit2.settings.mwindow_size = GIT_WINDOW_BYTES
    pygit2.settings.mwindow_mapped_limit = mapped


_repo: pygit2.Repository | None = None
_reader: BlobReader | None = None


def _init(repo_path: str, max_bytes: int) -> None:
    global _repo, _reader
    _exit_with_parent()
    bound_git_cache(GIT_MAPPED_BYTES)
    # a worker diffs each commit against its parent, so the trees of one commit are
    # read again for the next: a small object cache saves 8% of its CPU (measured on
    # the 1k x 10k benchmark) and, being bounded, keeps its memory flat
    pygit2.settings.enable_caching(True)
    pygit2.settings.cache_max_size(WORKER_CACHE_BYTES)
    _repo = pygit2.Repository(repo_path)
    # a blob seen again in a worker is mostly a merge's side-branch file of the same
    # chunk: 256 checks find 92% of what 2,048 did (1k x 10k), an eighth of the memory
    _reader = BlobReader(_repo, max_bytes=max_bytes, cache_size=WORKER_CACHE)


def _exit_with_parent() -> None:
    """End this worker when the ingest that started it is gone (killed, say). Waiting on
    a queue only that ingest writes to, it would otherwise live on, and keep the fork
    server alive with it (each worker holds the pipe the server watches)."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="aureacore-parent-watch", daemon=True).start()


Prepared = tuple[CommitInfo, Updates | None, dict[str, ConfigCheck]]
Packed = tuple  # a ConfigCheck as plain values (see _pack)

_parse_fields = attrgetter(*(f.name for f in fields(ParseResult)))
_problem_fields = attrgetter(*(f.name for f in fields(Problem)))
_dependency_fields = attrgetter(*(f.name for f in fields(Dependency)))
# sent as they are; the content travels as its JSON text (content_json) only
_SENT = tuple(f.name for f in fields(ConfigCheck)
              if f.name not in ("parse", "problems", "dependencies", "parameters"))
_sent_fields = attrgetter(*_SENT)
_CONTENT = [f.name for f in fields(ParseResult)].index("content")


def _pack(check: ConfigCheck) -> Packed:
    """A check as tuples and strings, several times quicker to pickle and unpickle
    than the objects: without its content (the main process mostly needs only its JSON
    text, which is sent), with its flattened content and stored columns made here."""
    parse = _parse_fields(check.parse)
    return ((*parse[:_CONTENT], None, *parse[_CONTENT + 1:]),
            tuple(map(_problem_fields, check.problems)),
            tuple(map(_dependency_fields, check.dependencies)),
            _sent_fields(check), check.flat, check.columns_json)


def _unpack(packed: Packed) -> SentCheck:
    """The check :func:`_pack` was given, as a :class:`SentCheck` (equal in every
    field; its content decoded when first read)."""
    parse, problems, dependencies, sent, flat, columns_json = packed
    values = dict(zip(_SENT, sent, strict=True))  # one dict: this runs in the main process
    values["parse"] = ParseResult(*parse)
    values["problems"] = tuple([Problem(*p) for p in problems]) if problems else ()
    values["dependencies"] = (tuple([Dependency(*d) for d in dependencies])
                              if dependencies else ())
    values["flat"] = flat
    values["columns_json"] = columns_json
    return SentCheck.made(values)


def _prepare(shas: list[str]
             ) -> list[tuple[CommitInfo, Updates | None, list[tuple[str, Packed]]]]:
    """Each commit as the walk stores it, its updates against its first parent, and
    checks of changed configs (packed: see :func:`_pack`)."""
    assert _repo is not None and _reader is not None
    out = []
    for sha in shas:
        commit = _repo[sha]
        if commit.parent_ids:
            updates = tree_updates(_repo[commit.parent_ids[0]].tree, commit.tree)
            changed = [(path, value[0]) for path, value in updates.items()
                       if value is not None and value[1] == "blob"]
        else:  # a root commit: every file is new (the walk rescans its tree)
            updates = None
            changed = [(path, oid) for path, oid, kind in walk_tree(commit.tree, "")
                       if kind == "blob"]
        checks = [(_reader.key(oid, path), _pack(_reader.check(oid, path)))
                  for path, oid in changed if is_config_path(path)]
        out.append((CommitInfo.of(commit), updates, checks))
    return out


def worker_count() -> int:
    """Workers to start: one per core, at least two (the main process often waits on
    SQLite writes, and two workers measured 20% faster than one on a 2-core machine)."""
    return max(2, min(4, os.cpu_count() or 2))


_pools = 0  # pools running on the fork server (see _worker_context)
_pools_lock = threading.Lock()


@contextmanager
def _worker_context() -> Iterator[multiprocessing.context.BaseContext]:
    """How workers start: forked from a fork server where the platform has one, else
    spawned. A spawned worker is a new interpreter that imports the program and its
    libraries (about 0.3-0.6 s of CPU each); the fork server imports them once and forks
    every worker from itself. The server is stopped (and waited for) when the last pool
    using it is done, so it does not outlive the ingest, and its CPU time and its
    workers' are counted in this process's children's (as spawned workers' are)."""
    global _pools
    if "forkserver" not in multiprocessing.get_all_start_methods():
        yield multiprocessing.get_context("spawn")
        return
    context = multiprocessing.get_context("forkserver")
    with _pools_lock:
        if _pools == 0:  # the program (as spawn would import it) and the worker code
            context.set_forkserver_preload(["__main__", __name__])
            _start_fork_server()
        _pools += 1
    try:
        yield context
    finally:
        with _pools_lock:
            _pools -= 1
            if _pools == 0:
                _stop_fork_server()


def _start_fork_server() -> None:
    """Start the fork server with this process's module search path. Python 3.11's fork
    server is sent ``sys.path`` but ignores it, and puts the folder it starts in first:
    run from a folder holding another checkout of this program (or a ``yaml.py``), the
    workers would import that instead. So it starts with this ``sys.path`` as its
    ``PYTHONPATH``, and without the folder (``PYTHONSAFEPATH``)."""
    wanted = {"PYTHONPATH": os.pathsep.join(os.path.abspath(p) for p in sys.path),
              "PYTHONSAFEPATH": "1"}
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _stop_fork_server() -> None:
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)  # CPython's own (its tests use it)
    if stop is not None:
        stop()


def prepared(
    repo_path: str, oids: Sequence[pygit2.Oid], max_bytes: int, workers: int | None = None
) -> Iterator[Prepared]:
    """Yield ``(commit info, updates, checks)`` for each commit, in order, computed by
    workers."""
    starts = range(0, len(oids), CHUNK)  # shas made per chunk: no copy of all history
    workers = workers or worker_count()
    with _worker_context() as context, ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init,
            initargs=(repo_path, max_bytes)) as pool:
        window: deque[Future] = deque()
        ahead = workers * 4  # bounded, so memory stays flat
        next_chunk = 0
        while next_chunk < len(starts) or window:
            while next_chunk < len(starts) and len(window) < ahead:
                start = starts[next_chunk]
                chunk = [str(oid) for oid in oids[start:start + CHUNK]]
                window.append(pool.submit(_prepare, chunk))
                next_chunk += 1
            for info, updates, checks in window.popleft().result():
                yield info, updates, {key: _unpack(packed) for key, packed in checks}
