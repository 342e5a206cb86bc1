"""The event stream: one ``events`` row per service added, changed, removed, status
change, message change (same status, other problems), rollback and health change.

Ingest writes the service and status events as it walks history, so the table holds
the full stream; other parts (rollback, health checks) add theirs with
:func:`record_event`.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from .timestamps import now_iso

SERVICE_ADDED = "service_added"
SERVICE_CHANGED = "service_changed"
SERVICE_REMOVED = "service_removed"
STATUS_CHANGED = "status_changed"
# the status stayed, its message (warnings, which error) changed: kept apart so an alert
# channel subscribed to status_changed only hears real transitions
STATUS_MESSAGE_CHANGED = "status_message_changed"
ROLLBACK = "rollback"
PROMOTED = "promoted"  # a promotion commit (aureacore_db.promote)
HEALTH_CHANGED = "health_changed"

EVENT_KINDS = (SERVICE_ADDED, SERVICE_CHANGED, SERVICE_REMOVED, STATUS_CHANGED,
               STATUS_MESSAGE_CHANGED, ROLLBACK, HEALTH_CHANGED, PROMOTED)
KIND_OF_CHANGE = {
    "added": SERVICE_ADDED,
    "modified": SERVICE_CHANGED,
    "renamed": SERVICE_CHANGED,
    "removed": SERVICE_REMOVED,
}


def record_event(
    db: sqlite_utils.Database,
    kind: str,
    service_id: str | None,
    commit_sha: str | None,
    payload: dict[str, Any],
    *,
    occurred_at: str | None = None,
) -> int:
    """Append one event (outside ingest); returns its id."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r} (known: {', '.join(EVENT_KINDS)})")
    seq = mainline = None
    if commit_sha:
        found = db.execute("select seq, mainline from commits where sha = ?",
                           [commit_sha]).fetchone()
        if found:
            seq, mainline = found
    cursor = db.execute(
        "insert into events (kind, service_id, commit_sha, seq, mainline, occurred_at, payload) "
        "values (?, ?, ?, ?, ?, ?, ?)",
        [kind, service_id, commit_sha, seq, mainline,
         occurred_at or now_iso(),
         json.dumps(payload, sort_keys=True)],
    )
    return int(cursor.lastrowid or 0)
