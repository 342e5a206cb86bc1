"""Git push webhooks from GitHub, GitLab and Gitea/Forgejo: verify, log, sync.

The Datasette plugin's route (``plugins/datasette_aureacore/githooks.py``) hands each
request here: :func:`check_delivery` verifies it against the shared secret (the server
process's ``AUREACORE_GIT_HOOK_SECRET``, never stored), every delivery is a row of
``git_hook_deliveries`` (never the secret nor the signature), and accepted pushes go to a
:class:`HookSyncer`, which runs one sync at a time per database in a background thread,
coalescing a burst of pushes into one sync.

Header formats (as documented by each forge):

- GitHub: ``X-GitHub-Event: push``, ``X-GitHub-Delivery: <guid>``,
  ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``.
- GitLab: ``X-Gitlab-Event: Push Hook``, ``X-Gitlab-Token: <the secret>``,
  ``X-Gitlab-Event-UUID: <uuid>``.
- Gitea / Forgejo: ``X-Gitea-Event: push`` / ``X-Forgejo-Event: push``,
  ``X-Gitea-Signature`` / ``X-Forgejo-Signature: <hex HMAC-SHA256 of the body>``,
  ``X-Gitea-Delivery`` / ``X-Forgejo-Delivery: <uuid>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from .db import connect, get_meta
from .environments import list_environments
from .locks import write_transaction
from .timestamps import now_iso

log = logging.getLogger(__name__)

SECRET_ENV = "AUREACORE_GIT_HOOK_SECRET"
MAX_BODY = 1024 * 1024  # 1 MiB: a push payload of a few hundred commits fits
TABLE = "git_hook_deliveries"
# outcomes: refused (not verified, or a replay), ignored (verified, nothing to do),
# accepted (sync queued), then synced or failed once the sync ran
VERIFIED = ("accepted", "ignored", "synced", "failed")
MAX_TEXT = 200  # header values and refs are cut to this length in the log


@dataclass
class Verdict:
    """What to do with one delivery (and the row that logs it)."""

    status: int  # HTTP status to answer
    outcome: str  # refused / ignored / accepted
    reason: str
    forge: str | None = None
    event: str | None = None
    delivery_id: str | None = None
    ref: str | None = None

    def row(self) -> dict[str, Any]:
        return {"received_at": now_iso(), "forge": self.forge, "event": self.event,
                "delivery_id": self.delivery_id, "ref": self.ref, "outcome": self.outcome,
                "reason": self.reason}

    def answer(self, row_id: int | None = None) -> dict[str, Any]:
        return {"outcome": self.outcome, "reason": self.reason, "forge": self.forge,
                "delivery_id": self.delivery_id, "delivery": row_id}


def _cut(value: str | None) -> str | None:
    return None if value is None else value[:MAX_TEXT]


def _hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _forge(headers: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    """(forge, event, delivery id) from the headers; Gitea and Forgejo are checked first
    (they also send GitHub's headers)."""
    for name in ("forgejo", "gitea"):
        if f"x-{name}-event" in headers:
            return name, headers[f"x-{name}-event"], headers.get(f"x-{name}-delivery")
    if "x-gitlab-event" in headers:
        return "gitlab", headers["x-gitlab-event"], headers.get("x-gitlab-event-uuid")
    if "x-github-event" in headers:
        return "github", headers["x-github-event"], headers.get("x-github-delivery")
    return None, None, None


def _signature_ok(forge: str, headers: Mapping[str, str], body: bytes, secret: str) -> str:
    """Empty when the delivery is signed with ``secret``, else why not."""
    if forge == "gitlab":
        token = headers.get("x-gitlab-token")
        if token is None:
            return "no X-Gitlab-Token header"
        ok = hmac.compare_digest(token.encode("utf-8", "surrogateescape"),
                                 secret.encode("utf-8"))
        return "" if ok else "X-Gitlab-Token does not match the secret"
    if forge == "github":
        name, given = "X-Hub-Signature-256", headers.get("x-hub-signature-256")
        if given is not None:
            if not given.startswith("sha256="):
                return "X-Hub-Signature-256 is not sha256=<hex>"
            given = given[len("sha256="):]
    else:
        name = f"X-{forge.capitalize()}-Signature"
        given = headers.get(f"x-{forge}-signature")
    if given is None:
        return f"no {name} header"
    ok = hmac.compare_digest(given.strip().lower().encode("ascii", "replace"),
                             _hmac_hex(secret, body).encode("ascii"))
    return "" if ok else f"{name} does not match the body signed with the secret"


def _payload_ref(body: bytes, content_type: str) -> tuple[str | None, str]:
    """The pushed ref of a payload (JSON, or GitHub's form-encoded ``payload=``)."""
    try:
        text = body.decode("utf-8")
        if content_type.startswith("application/x-www-form-urlencoded"):
            text = (parse_qs(text).get("payload") or [""])[0]
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        return None, "the payload is not JSON"
    if not isinstance(data, dict):
        return None, "the payload is not a JSON object"
    ref = data.get("ref")
    if not isinstance(ref, str):
        return None, "the payload has no ref"
    return ref, ""


def check_delivery(headers: Mapping[str, str], body: bytes, secret: str | None,
                   branch: str | list[str], seen: Callable[[str, str], bool]) -> Verdict:
    """Verify one delivery (``headers`` with lower-case names) and decide what to do:
    a push to ``branch`` (or to any of a list: the environments' branches) is synced.

    ``seen(forge, delivery_id)`` says whether a verified delivery had that id already.
    """
    forge, event, delivery = _forge(headers)
    verdict = Verdict(403, "refused", "", forge, _cut(event), _cut(delivery))
    if not secret:
        verdict.reason = (f"no {SECRET_ENV} is set on the server: every delivery is "
                          "refused")
        return verdict
    if forge is None:
        verdict.status, verdict.reason = 400, ("not a GitHub, GitLab, Gitea or Forgejo "
                                               "webhook (no event header)")
        return verdict
    problem = _signature_ok(forge, headers, body, secret)
    if problem:
        verdict.status, verdict.reason = 401, problem
        return verdict
    if delivery and seen(forge, verdict.delivery_id or ""):
        verdict.status, verdict.reason = 409, f"delivery {delivery[:60]} was received before " \
                                              "(a replay); ignored"
        return verdict
    kind = (event or "").strip().lower()
    if kind not in ("push", "push hook"):
        verdict.status, verdict.outcome = 200, "ignored"
        verdict.reason = f"event {event!r} is not a push"
        return verdict
    ref, problem = _payload_ref(body, headers.get("content-type", ""))
    verdict.ref = _cut(ref)
    if ref is None:
        verdict.status, verdict.reason = 400, problem
        return verdict
    followed = [f"refs/heads/{b}" for b in ([branch] if isinstance(branch, str) else branch)]
    if ref not in followed:
        verdict.status, verdict.outcome = 200, "ignored"
        verdict.reason = f"push to {ref}; this database follows {', '.join(followed)}"
        return verdict
    verdict.status, verdict.outcome = 202, "accepted"
    verdict.reason = "sync queued"
    return verdict


# -- the log --------------------------------------------------------------------------
_LOG_LOCK = threading.Lock()  # replay check and insert, as one step per process


def receive(db_path: str | Path, headers: Mapping[str, str], body: bytes,
            secret: str | None) -> tuple[Verdict, int]:
    """Check a delivery against the database's branch and log it; (verdict, row id)."""
    with _LOG_LOCK:
        db = connect(db_path)
        try:

            def seen(forge: str, delivery: str) -> bool:
                marks = ",".join("?" * len(VERIFIED))
                return db.execute(f"select 1 from {TABLE} where forge = ? and delivery_id = ? "
                                  f"and outcome in ({marks}) limit 1",
                                  [forge, delivery, *VERIFIED]).fetchone() is not None

            with write_transaction(db):  # the replay check and the row, as one step
                branches = [env.branch for env in list_environments(db)] \
                    or [get_meta(db, "branch") or "main"]
                verdict = check_delivery(headers, body, secret, branches, seen)
                row_id = int(db[TABLE].insert(verdict.row()).last_pk)
        finally:
            db.close()
    log.info("git hook delivery %s from %s: %s (%s)", verdict.delivery_id, verdict.forge,
             verdict.outcome, verdict.reason)
    return verdict, row_id


def log_refusal(db_path: str | Path, reason: str, headers: Mapping[str, str]) -> int:
    """Log a delivery refused before it could be checked (e.g. too large)."""
    forge, event, delivery = _forge(headers)
    verdict = Verdict(413, "refused", reason, forge, _cut(event), _cut(delivery))
    db = connect(db_path)
    try:
        with write_transaction(db):
            return int(db[TABLE].insert(verdict.row()).last_pk)
    finally:
        db.close()


def finish(db_path: str | Path, ids: list[int], outcome: str, summary: str) -> None:
    """Mark accepted deliveries synced / failed with the sync's summary."""
    db = connect(db_path)
    try:
        now = now_iso()
        with write_transaction(db):
            db.conn.executemany(f"update {TABLE} set outcome = ?, sync_result = ?, "
                                "finished_at = ? where id = ?",
                                [(outcome, summary[:1000], now, i) for i in ids])
    finally:
        db.close()


# -- syncing ----------------------------------------------------------------------------
def sync_source(db_path: str | Path, repo: str | None = None) -> tuple[str, str]:
    """The repository and branch a sync of this database uses (``repo`` if given, else
    the recorded URL source, else the recorded working clone)."""
    from .gitsource import is_url

    db = connect(db_path)
    try:
        source, repo_path = get_meta(db, "source"), get_meta(db, "repo_path")
        branch = get_meta(db, "branch") or "main"
    finally:
        db.close()
    found = repo or (source if source and is_url(source) else repo_path) or source
    if not found:
        raise LookupError(f"{db_path} records no repository; ingest it first")
    return str(found), branch


def run_sync(db_path: str | Path, repo: str | None = None) -> str:
    """One sync of the database (pull and ingest); its summary. Outgoing webhooks are
    then sent in the background (:func:`deliver_in_background`), so a receiver that is
    slow or down never delays this sync's record or the next push's sync."""
    from .registry import ServiceRegistry

    source, branch = sync_source(db_path, repo)
    result = ServiceRegistry(db_path, source, branch).sync_configurations()
    summary = (f"{len(result.new_commits)} new commit(s), "
               f"{len(result.changed_services)} service change(s), "
               f"{len(result.status_changes)} status change(s); tip "
               f"{(result.new_tip or '-')[:12]}"
               + (" [branch was rewritten]" if result.rewrite_detected else ""))
    deliver_in_background(db_path)
    return summary


_DELIVERING: dict[Path, bool] = {}  # database -> another round is wanted
_DELIVERING_LOCK = threading.Lock()


def deliver_in_background(db_path: str | Path) -> None:
    """Send outgoing webhooks their undelivered events in a background thread, one
    thread per database; a call while one runs asks it for one more round."""
    key = Path(db_path).resolve()
    with _DELIVERING_LOCK:
        if key in _DELIVERING:
            _DELIVERING[key] = True
            return
        _DELIVERING[key] = False

    from .webhooks import deliver_pending

    def rounds() -> None:
        while True:
            try:
                deliver_pending(key)
            except Exception:  # noqa: BLE001 - logged; the events stay undelivered
                log.exception("outgoing webhooks of %s", key)
            with _DELIVERING_LOCK:
                if not _DELIVERING[key]:
                    del _DELIVERING[key]
                    return
                _DELIVERING[key] = False

    threading.Thread(target=rounds, name="aureacore-deliver", daemon=True).start()


class HookSyncer:
    """Runs syncs of one database in a background thread, one at a time: pushes that
    arrive while a sync runs are all served by the next one."""

    def __init__(self, db_path: str | Path, sync: Callable[[], str]) -> None:
        self.db_path = Path(db_path)
        self.sync = sync
        self._lock = threading.Lock()
        self._pending: list[int] = []
        self._thread: threading.Thread | None = None
        self.runs = 0

    def submit(self, delivery: int) -> None:
        """Queue an accepted delivery (its row id); start the worker if idle."""
        with self._lock:
            self._pending.append(delivery)
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._work, daemon=True,
                                            name=f"aureacore-git-hook-sync:{self.db_path.name}")
            self._thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._thread = None
                    return
            self.runs += 1
            try:
                summary = self.sync()
            except Exception as exc:  # noqa: BLE001 - logged on the deliveries
                log.warning("sync after git hook failed: %s", exc)
                outcome, summary = "failed", f"{type(exc).__name__}: {exc}"
            else:
                outcome = "synced"
            try:
                finish(self.db_path, batch, outcome, summary)
            except Exception:  # noqa: BLE001 - a log write must not stop the worker
                log.exception("could not log the sync of git hook deliveries %s", batch)


_SYNCERS: dict[tuple[str, str | None], HookSyncer] = {}
_SYNCERS_LOCK = threading.Lock()


def syncer_for(db_path: str | Path, repo: str | None = None) -> HookSyncer:
    """The one :class:`HookSyncer` of a database in this process."""
    key = (str(Path(db_path).resolve()), repo)
    with _SYNCERS_LOCK:
        if key not in _SYNCERS:
            _SYNCERS[key] = HookSyncer(db_path, lambda: run_sync(db_path, repo))
        return _SYNCERS[key]
