"""Resume a tree state from the database (DESIGN §6): what the stored rows say about the
services of an environment's recorded tip, so an incremental ingest (and a preview) can
continue from that commit without reading every config again."""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import sqlite_utils

from .environments import list_environments
from .names import ERROR
from .tree import Resumed
from .verdicts import CYCLE_TEXT


def resume_state(db: sqlite_utils.Database | sqlite3.Connection, sha: str) -> Resumed | None:
    """The stored state of the commit ``sha`` when it is an environment's recorded tip
    (else None): each current service's file and config from ``environment_services``,
    its dependency targets from ``dependencies``, and which services may be in a
    required-dependency cycle (the stored verdicts of the others say they are not).
    Only sound while every environment's stored rows are as of its recorded tip (an
    ingest that only appends, or a read between runs). ``db`` stays in use: a service's
    last readable config is looked up when :class:`Resumed` is asked for it."""
    conn = db.conn if isinstance(db, sqlite_utils.Database) else db
    env = next((e for e in list_environments(conn) if e.tip == sha), None)
    if env is None:
        return None
    files: dict[str, tuple[str, str]] = {}
    not_in_cycle: set[str] = set()
    maybe: list[str] = []
    for sid, path, config_id, status, message in conn.execute(
            "select service_id, path, config_id, status, status_message "
            "from environment_services where environment = ? and removed = 0",
            [env.name]):
        if path is None or config_id is None:
            continue  # not a readable blob: read from the tree as usual
        files[path] = (sid, config_id)
        # a member of a cycle has an error that says so (unless cut off: see verdict)
        if status != ERROR or (message is not None and CYCLE_TEXT not in message
                               and len(message) < 1000):
            not_in_cycle.add(sid)
        else:
            maybe.append(sid)
    cycles: dict[str, str] = {}
    for sid in maybe:  # the cycle problem of its latest status on that mainline
        latest = conn.execute(
            "select s.id from status s join environment_commits e on e.environment = ? "
            "and e.commit_sha = s.commit_sha where s.service_id = ? "
            "order by s.seq desc limit 1", [env.name, sid]).fetchone()
        if latest is None:
            continue  # unknown: searched for
        found = conn.execute("select message from validation_errors where status_id = ? "
                             "and kind = 'cycle'", latest).fetchone()
        if found is None:
            not_in_cycle.add(sid)
        elif found[0].startswith(CYCLE_TEXT):
            cycles[sid] = found[0][len(CYCLE_TEXT):]
    targets: dict[str, list[tuple[str, bool]]] = {}
    for sid, target, required in conn.execute(
            "select d.service_id, d.depends_on, d.required from environment_services e "
            "join dependencies d on d.config_id = e.config_id "
            "and d.service_id = e.service_id where e.environment = ? and e.removed = 0",
            [env.name]):
        targets.setdefault(sid, []).append((target, bool(required)))

    def last_readable(sid: str) -> tuple[str, str] | None:
        return conn.execute(
            "select h.path, h.config_id from history h join environment_commits e "
            "on e.environment = ? and e.commit_sha = h.commit_sha join configs c "
            "on c.id = h.config_id where h.service_id = ? and c.content is not null "
            "order by h.seq desc limit 1", [env.name, sid]).fetchone()

    return Resumed(files, {sid: tuple(t) for sid, t in targets.items()}, not_in_cycle,
                   cycles, last_readable)


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (building a tree state creates no cycles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
