"""Webhooks: ``events`` rows POSTed as JSON to configured URLs, signed, retried, never lost.

A webhook (``webhooks`` table, or a YAML file synced into it by name) has a URL, the
event kinds it wants (none: all), and a secret. :func:`deliver` sends each webhook the
events after its cursor, in id order, one at a time: the body is the event row as JSON
(``payload`` parsed), signed with ``X-AureaCore-Signature: sha256=<HMAC-SHA256 hex of
the body>``. Secrets (and a URL's credentials) live in the ``webhook_secrets`` table,
which no Datasette connection can read (:func:`deny_secret_reads`); ``secret_env`` keeps
the secret out of the database altogether. A failed attempt (no answer within the
timeout, 5xx, 408, 429) is retried with exponential backoff; other 4xx answers are not
retried within the run. When an event cannot be delivered the webhook stops there and
its cursor stays before it, so the next run starts with that event: a receiver that is
down loses nothing. Each (webhook, event) has one ``webhook_deliveries`` row (attempts
across runs, last status code and error, ``delivered_at``).

Config file::

    webhooks:
      - name: ops
        url: https://hooks.example.com/aureacore
        kinds: [status_changed, health_changed]   # optional, default all
        secret_env: OPS_WEBHOOK_SECRET              # or: secret: "..."
        from_start: false                           # true: also every earlier event
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlite_utils
import yaml

from .boundedhttp import DeadlineExceeded, Reply, SyncClient
from .db import connect
from .events import EVENT_KINDS
from .locks import file_lock
from .tables import upgrade
from .timestamps import now_iso
from .urls import public_url, scrub

SIGNATURE_HEADER = "X-AureaCore-Signature"
EVENT_HEADER = "X-AureaCore-Event"
DELIVERY_HEADER = "X-AureaCore-Delivery"
PAGE = 200

SECRETS_TABLE = "webhook_secrets"  # never readable through Datasette: deny_secret_reads

class WebhookError(Exception):
    """Bad webhook configuration."""


class DeliverBusy(Exception):
    """Another ``deliver`` run holds the database's delivery lock."""


@dataclass(frozen=True)
class Policy:
    """Retry policy of one run: ``max_attempts`` per event, waits ``backoff * factor**n``
    (capped at ``max_backoff``) between attempts, ``timeout`` seconds per request."""

    max_attempts: int = 5
    backoff: float = 1.0
    factor: float = 2.0
    max_backoff: float = 60.0
    timeout: float = 10.0

    def delays(self) -> list[float]:
        """The waits before attempts 2, 3, …, ``max_attempts``."""
        return [min(self.max_backoff, self.backoff * self.factor ** n)
                for n in range(max(0, self.max_attempts - 1))]


@dataclass
class Webhook:
    """One configured receiver."""

    id: int
    name: str
    url: str
    kinds: list[str] | None
    secret: str | None
    secret_env: str | None
    active: bool
    source: str
    cursor: int
    target: str | None = None  # the URL with its credentials, when it has some

    @property
    def post_url(self) -> str:
        """Where to POST: the URL as configured (credentials included)."""
        return self.target or self.url

    def resolved_secret(self) -> str | None:
        if self.secret_env:
            value = os.environ.get(self.secret_env)
            if not value:
                raise WebhookError(f"webhook {self.name}: environment variable "
                                   f"{self.secret_env} is not set")
            return value
        return self.secret or None

    def public(self) -> dict[str, Any]:
        """Its settings without the secret."""
        return {"id": self.id, "name": self.name, "url": self.url, "kinds": self.kinds,
                "signed": bool(self.secret or self.secret_env),
                "secret_env": self.secret_env, "active": self.active, "source": self.source,
                "cursor": self.cursor}


@dataclass
class Attempt:
    """Outcome of sending one event (all attempts of this run)."""

    ok: bool
    attempts: int
    status_code: int | None
    error: str | None
    duration_ms: float


@dataclass
class RunResult:
    """What one webhook got in one run."""

    webhook: str
    delivered: int = 0
    failed_event: int | None = None
    error: str | None = None
    cursor: int = 0
    attempts: int = 0
    events: list[int] = field(default_factory=list)


# -- signatures -----------------------------------------------------------------
def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is the signature of ``body`` (constant-time compare)."""
    return bool(header) and hmac.compare_digest(sign(secret, body), header or "")


# -- configuration ----------------------------------------------------------------
def ensure_webhook_schema(db: sqlite_utils.Database) -> None:
    """Bring ``db`` to the current schema (webhook tables; secrets of an older database
    moved out of ``webhooks``, nothing lost): :func:`~aureacore_db.tables.upgrade`."""
    upgrade(db)


def deny_secret_reads(conn: sqlite3.Connection) -> None:
    """Make ``conn`` unable to read webhook secrets, whatever the SQL: any read of
    ``webhook_secrets`` is refused (through a view, and a not-yet-moved
    ``webhooks.secret``, it reads as NULL).
    Datasette installs this on each of its connections (the plugin's
    ``prepare_connection``)."""
    conn.set_authorizer(_authorize)


def _authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None,
               view: str | None) -> int:
    if action == sqlite3.SQLITE_READ:
        if arg1 == SECRETS_TABLE:  # through a view (or no column: a count): NULLs
            return sqlite3.SQLITE_IGNORE if view or not arg2 else sqlite3.SQLITE_DENY
        if arg1 == "webhooks" and arg2 == "secret":
            return sqlite3.SQLITE_IGNORE
    return sqlite3.SQLITE_OK


def _kinds(kinds: Any) -> list[str] | None:
    if kinds in (None, [], ()):
        return None
    if isinstance(kinds, str):
        kinds = [k.strip() for k in kinds.split(",") if k.strip()]
    if not isinstance(kinds, (list, tuple)) or not all(isinstance(k, str) for k in kinds):
        raise WebhookError("kinds must be a list of event kinds")
    unknown = sorted(set(kinds) - set(EVENT_KINDS))
    if unknown:
        raise WebhookError(f"unknown event kind(s) {', '.join(unknown)} "
                           f"(known: {', '.join(EVENT_KINDS)})")
    return sorted(set(kinds))


def _check_url(url: Any) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise WebhookError(f"webhook URL must be http:// or https://, not {url!r}")
    return url


_SELECT = (f"select w.*, s.secret as secret, s.url as target from webhooks w "
           f"left join {SECRETS_TABLE} s on s.webhook_id = w.id")


def _from_row(row: dict[str, Any]) -> Webhook:
    return Webhook(row["id"], row["name"], row["url"],
                   json.loads(row["kinds"]) if row["kinds"] else None, row["secret"],
                   row["secret_env"], bool(row["active"]), row["source"] or "db",
                   row["cursor"] or 0, row["target"])


def _select(db: sqlite_utils.Database, where: str, params: list[Any]) -> list[Webhook]:
    cursor = db.execute(f"{_SELECT} where {where} order by w.id", params)
    names = [d[0] for d in cursor.description]
    return [_from_row(dict(zip(names, r, strict=True))) for r in cursor.fetchall()]


def _max_event(db: sqlite_utils.Database) -> int:
    return db.execute("select coalesce(max(id), 0) from events").fetchone()[0]


def add_webhook(db: sqlite_utils.Database, url: str, *, name: str | None = None,
                kinds: Any = None, secret: str | None = None, secret_env: str | None = None,
                from_start: bool = False, source: str = "db") -> Webhook:
    """Add (or, same name, update) a webhook. A new one starts after the latest event
    unless ``from_start``."""
    ensure_webhook_schema(db)
    url = _check_url(url)
    shown = public_url(url)
    name = name or shown
    kinds_list = _kinds(kinds)
    stamp = now_iso(milliseconds=True)
    with db.atomic():
        found = list(db["webhooks"].rows_where("name = ?", [name]))
        values = {"url": shown, "kinds": json.dumps(kinds_list) if kinds_list else None,
                  "secret_env": secret_env, "active": 1, "source": source,
                  "updated_at": stamp}
        if found:
            db["webhooks"].update(found[0]["id"], values)
            webhook_id = found[0]["id"]
        else:
            webhook_id = db["webhooks"].insert({
                "name": name, **values, "created_at": stamp,
                "cursor": 0 if from_start else _max_event(db)}).last_pk
        db.execute(f"delete from {SECRETS_TABLE} where webhook_id = ?", [webhook_id])
        target = url if url != shown else None
        if secret or target:
            db[SECRETS_TABLE].insert({"webhook_id": webhook_id, "secret": secret or None,
                                      "url": target})
    return get_webhook(db, webhook_id)


def get_webhook(db: sqlite_utils.Database, key: int | str) -> Webhook:
    """A webhook by id or name."""
    ensure_webhook_schema(db)
    found = _select(db, "w.name = ? or cast(w.id as text) = ?", [str(key), str(key)])
    if not found:
        raise WebhookError(f"no webhook {key!r}")
    return found[0]


def list_webhooks(db: sqlite_utils.Database, *, active_only: bool = False) -> list[Webhook]:
    ensure_webhook_schema(db)
    return _select(db, "w.active = 1" if active_only else "1", [])


def remove_webhook(db: sqlite_utils.Database, key: int | str) -> Webhook:
    """Delete a webhook (its delivery rows stay, as history)."""
    webhook = get_webhook(db, key)
    with db.atomic():
        db["webhooks"].delete(webhook.id)
        db.execute(f"delete from {SECRETS_TABLE} where webhook_id = ?", [webhook.id])
    return webhook


def load_config(path: str | Path) -> list[dict[str, Any]]:
    """The webhook entries of a YAML (or JSON) config file, checked."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise WebhookError(f"cannot read webhook config {path}: {exc}") from exc
    entries = doc.get("webhooks") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise WebhookError(f"{path}: expected a 'webhooks:' list")
    allowed = {"name", "url", "kinds", "secret", "secret_env", "from_start", "active"}
    names = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise WebhookError(f"{path}: webhooks[{i}] is not a mapping")
        unknown = sorted(set(entry) - allowed)
        if unknown:
            raise WebhookError(f"{path}: webhooks[{i}]: unknown key(s) {', '.join(unknown)}")
        _check_url(entry.get("url"))
        _kinds(entry.get("kinds"))
        name = entry.get("name") or public_url(entry["url"])
        if name in names:
            raise WebhookError(f"{path}: webhook name {name!r} appears twice")
        names.add(name)
    return entries


def sync_config(db: sqlite_utils.Database, path: str | Path) -> list[Webhook]:
    """Make the file's webhooks the active ``source = 'file'`` rows (matched by name; a
    name no longer in the file is deactivated, keeping its cursor)."""
    entries = load_config(path)
    ensure_webhook_schema(db)
    synced = []
    for entry in entries:
        synced.append(add_webhook(
            db, entry["url"], name=entry.get("name"), kinds=entry.get("kinds"),
            secret=entry.get("secret"), secret_env=entry.get("secret_env"),
            from_start=bool(entry.get("from_start")), source="file"))
        if entry.get("active") is False:
            db["webhooks"].update(synced[-1].id, {"active": 0})
    keep = [w.id for w in synced]
    others = f" and id not in ({','.join('?' * len(keep))})" if keep else ""
    with db.atomic():
        db.execute(f"update webhooks set active = 0 where source = 'file'{others}", keep)
    return synced


# -- delivery ---------------------------------------------------------------------
def event_body(row: dict[str, Any]) -> bytes:
    """The JSON body of one event (stable bytes: the signature covers them)."""
    event = dict(row)
    try:
        event["payload"] = json.loads(event["payload"]) if event.get("payload") else None
    except ValueError:
        pass
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()


_RETRY_STATUS = {408, 429}


def _retry_after(response: Reply) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def send(client: SyncClient, webhook: Webhook, secret: str | None, row: dict[str, Any],
         policy: Policy, sleep: Callable[[float], None] = time.sleep) -> Attempt:
    """POST one event, retrying with backoff; never raises for network trouble. Each
    attempt, connect to last byte, ends within ``policy.timeout``; at most
    :data:`~aureacore_db.boundedhttp.MAX_BODY` bytes of an answer are read."""
    body = event_body(row)
    headers = {"Content-Type": "application/json", EVENT_HEADER: row["kind"],
               DELIVERY_HEADER: f"{webhook.id}:{row['id']}",
               "User-Agent": "aureacore-db-webhooks"}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    delays = policy.delays()
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    attempt = 0
    wait: float | None = None  # a Retry-After the receiver asked for
    while attempt < max(1, policy.max_attempts):
        if attempt:
            sleep(max(delays[attempt - 1], wait or 0.0))
        attempt += 1
        wait = None
        try:
            response = client.fetch("POST", webhook.post_url, content=body, headers=headers,
                                    deadline=policy.timeout, timeout=policy.timeout)
        except DeadlineExceeded as exc:
            status, error = None, str(exc)
            continue
        except httpx.HTTPError as exc:
            status, error = None, scrub(f"{type(exc).__name__}: {exc}", webhook.post_url)
            continue
        status = response.status_code
        if 200 <= status < 300:
            return Attempt(True, attempt, status, None,
                           round((time.perf_counter() - started) * 1000, 1))
        error = f"HTTP {status} {response.reason_phrase}".strip()
        if status < 500 and status not in _RETRY_STATUS:
            break  # the receiver refuses this event: retrying now will not help
        after = _retry_after(response)
        wait = min(after, policy.max_backoff) if after is not None else None
    return Attempt(False, attempt, status, error,
                   round((time.perf_counter() - started) * 1000, 1))


def _record(db: sqlite_utils.Database, webhook: Webhook, row: dict[str, Any],
            outcome: Attempt, started_at: str) -> None:
    """Upsert the (webhook, event) delivery row and move the cursor on success."""
    stamp = now_iso(milliseconds=True)
    key = [webhook.id, row["id"]]
    with db.atomic():
        old = db.execute(
            "select id, attempts, first_attempt_at, event_kind, commit_sha, service_id "
            "from webhook_deliveries where webhook_id = ? and event_id = ?", key).fetchone()
        same = old is not None and (old[3], old[4], old[5]) == (
            row["kind"], row["commit_sha"], row["service_id"])
        values = {
            "webhook_id": webhook.id, "webhook": webhook.name, "event_id": row["id"],
            "event_kind": row["kind"], "service_id": row["service_id"],
            "commit_sha": row["commit_sha"],
            "attempts": (old[1] if same else 0) + outcome.attempts,
            "status": "delivered" if outcome.ok else "failed",
            "status_code": outcome.status_code, "error": outcome.error,
            "first_attempt_at": old[2] if same else started_at, "last_attempt_at": stamp,
            "delivered_at": stamp if outcome.ok else None, "duration_ms": outcome.duration_ms,
        }
        if old is not None:
            db["webhook_deliveries"].update(old[0], values)
        else:
            db["webhook_deliveries"].insert(values)
        update: dict[str, Any] = {"last_run_at": stamp,
                                  "last_error": None if outcome.ok else outcome.error}
        if outcome.ok:
            update["cursor"] = row["id"]
        db["webhooks"].update(webhook.id, update)


def _pending(db: sqlite_utils.Database, webhook: Webhook, after: int,
             horizon: int) -> Iterator[dict[str, Any]]:
    """Events after ``after`` up to ``horizon`` of the webhook's kinds, in id order, paged."""
    kinds = webhook.kinds
    where = "id > ? and id <= ?"
    if kinds:
        where += f" and kind in ({','.join('?' * len(kinds))})"
    names = ("id", "kind", "service_id", "commit_sha", "seq", "mainline", "occurred_at",
             "payload")
    while True:
        params = [after, horizon, *(kinds or [])]
        page = [dict(zip(names, r, strict=True))
                for r in db.execute(f"select {', '.join(names)} from events where {where} "
                                    f"order by id limit {PAGE}", params).fetchall()]
        if not page:
            return
        yield from page
        after = page[-1]["id"]


def deliver_webhook(db: sqlite_utils.Database, webhook: Webhook, client: SyncClient,
                    policy: Policy, sleep: Callable[[float], None] = time.sleep) -> RunResult:
    """Send one webhook its pending events; stop at the first that cannot be delivered."""
    result = RunResult(webhook.name, cursor=webhook.cursor)
    try:
        secret = webhook.resolved_secret()
    except WebhookError as exc:
        result.error = str(exc)
        db["webhooks"].update(webhook.id, {"last_run_at": now_iso(milliseconds=True),
                                           "last_error": str(exc)})
        return result
    horizon = _max_event(db)
    for row in _pending(db, webhook, webhook.cursor, horizon):
        started_at = now_iso(milliseconds=True)
        outcome = send(client, webhook, secret, row, policy, sleep)
        _record(db, webhook, row, outcome, started_at)
        result.attempts += outcome.attempts
        if not outcome.ok:
            result.failed_event, result.error = row["id"], outcome.error
            result.cursor = webhook.cursor
            return result
        result.delivered += 1
        result.events.append(row["id"])
        webhook.cursor = row["id"]
    if horizon > webhook.cursor:  # skip past events of other kinds too
        with db.atomic():
            db["webhooks"].update(webhook.id, {"cursor": horizon,
                                               "last_run_at": now_iso(milliseconds=True),
                                               "last_error": None})
        webhook.cursor = horizon
    result.cursor = webhook.cursor
    return result


def deliver_lock(db_path: Path) -> AbstractContextManager[None]:
    """One ``deliver`` run at a time per database (else events could go out twice)."""
    return file_lock(db_path.with_name(db_path.name + ".deliver.lock"), 0,
                     lambda: DeliverBusy(f"another deliver run is sending events of {db_path}"))


def deliver_pending(db_path: str | Path) -> list[RunResult]:
    """:func:`deliver` when the database has an active webhook (``[]`` when none): what
    ``sync`` and a push-triggered sync run after ingesting."""
    db = connect(Path(db_path))
    try:
        ensure_webhook_schema(db)
        active = list_webhooks(db, active_only=True)
    finally:
        db.close()
    return deliver(db_path) if active else []


def deliver(db_path: str | Path, *, config: str | Path | None = None,
            policy: Policy | None = None, only: list[str] | None = None,
            sleep: Callable[[float], None] = time.sleep,
            transport: httpx.AsyncBaseTransport | None = None) -> list[RunResult]:
    """Send every active webhook (or those named in ``only``) its undelivered events."""
    policy = policy or Policy()
    path = Path(db_path)
    with deliver_lock(path):
        db = connect(path)
        try:
            ensure_webhook_schema(db)
            if config is not None:
                sync_config(db, config)
            hooks = [w for w in list_webhooks(db, active_only=True)
                     if not only or w.name in only or str(w.id) in only]
            with SyncClient(transport=transport) as client:
                return [deliver_webhook(db, w, client, policy, sleep) for w in hooks]
        finally:
            db.close()
