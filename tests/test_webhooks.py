"""Webhooks: signed JSON deliveries of events to a real HTTP server on 127.0.0.1 that
answers, fails, hangs and recovers; retries with backoff; nothing lost while it is down."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest
from click.testing import CliRunner
from conftest import LocalServer, rows, run_ingest

from aureacore_db.cli import cli
from aureacore_db.db import connect
from aureacore_db.webhooks import (
    SIGNATURE_HEADER,
    DeliverBusy,
    Policy,
    WebhookError,
    add_webhook,
    deliver,
    deliver_lock,
    list_webhooks,
    sign,
    sync_config,
    verify_signature,
)

FAST = Policy(max_attempts=3, backoff=0.02, factor=2.0, max_backoff=1.0, timeout=0.5)


class Receiver:
    """A webhook receiver on 127.0.0.1 whose answer the test sets: ``mode`` is ``ok``,
    a status code to answer with, or ``hang``; ``script`` answers the next requests
    first (one item each)."""

    def __init__(self) -> None:
        self.mode: int | str = "ok"
        self.script: list[int | str] = []
        self.requests: list[dict] = []  # every request that arrived, answered or not
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"at": time.monotonic(), "body": body,
                                          "headers": dict(self.headers), "path": self.path})
                action = receiver.script.pop(0) if receiver.script else receiver.mode
                if action == "hang":
                    receiver.release.wait(10)
                    return
                code = 200 if action == "ok" else int(action)
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.http = LocalServer(Handler)
        self.url = f"{self.http.base}/hook"

    @property
    def delivered(self) -> list[dict]:
        """Bodies (parsed) of the requests, in arrival order."""
        return [json.loads(r["body"]) for r in self.requests]

    def close(self) -> None:
        self.release.set()
        self.http.close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def _history(repo, db_path, commits: int = 2) -> None:
    repo.service("user-service", namespace="platform")
    repo.commit("Add user")
    for i in range(1, commits):
        repo.service("auth-service", version=f"1.{i}.0",
                     dependencies=[{"service": "user-service", "required": True}])
        repo.commit(f"Auth 1.{i}")
    run_ingest(repo, db_path)


def _events(db_path, kinds: tuple[str, ...] | None = None) -> list[dict]:
    sql = "select id, kind, service_id, commit_sha from events"
    if kinds:
        sql += f" where kind in ({','.join('?' * len(kinds))})"
    return rows(db_path, sql + " order by id", kinds or ())


def _add(db_path, url, **kwargs):
    db = connect(db_path)
    try:
        return add_webhook(db, url, **kwargs)
    finally:
        db.close()


def test_events_are_posted_signed_in_order_and_only_once(repo, db_path, receiver):
    _history(repo, db_path, commits=3)
    hook = _add(db_path, receiver.url, name="ops", secret="s3cret", from_start=True,
                kinds=["service_added", "status_changed"])

    [result] = deliver(db_path, policy=FAST)

    expected = _events(db_path, ("service_added", "status_changed"))
    assert result.delivered == len(expected) > 2 and result.error is None
    assert [(b["id"], b["kind"], b["service_id"]) for b in receiver.delivered] == [
        (e["id"], e["kind"], e["service_id"]) for e in expected]
    first = receiver.requests[0]
    assert first["headers"]["Content-Type"] == "application/json"
    assert first["headers"]["X-AureaCore-Event"] == expected[0]["kind"]
    for request in receiver.requests:
        header = request["headers"][SIGNATURE_HEADER]
        assert header.startswith("sha256=") and verify_signature("s3cret", request["body"], header)
        assert not verify_signature("other", request["body"], header)
    body = receiver.delivered[0]
    assert isinstance(body["payload"], dict) and body["commit_sha"] == expected[0]["commit_sha"]
    deliveries = rows(db_path, "select event_id, attempts, status, status_code, delivered_at "
                               "from webhook_deliveries where webhook_id = ? order by event_id",
                      (hook.id,))
    assert [d["event_id"] for d in deliveries] == [e["id"] for e in expected]
    assert all(d["attempts"] == 1 and d["status"] == "delivered" and d["status_code"] == 200
               and d["delivered_at"] for d in deliveries)
    assert rows(db_path, "select cursor from webhooks")[0]["cursor"] == max(
        e["id"] for e in _events(db_path))

    [again] = deliver(db_path, policy=FAST)
    assert again.delivered == 0 and len(receiver.requests) == len(expected)


def test_failures_are_retried_with_exponential_backoff(repo, db_path, receiver):
    _history(repo, db_path)
    _add(db_path, receiver.url, secret="k", from_start=True, kinds=["service_added"])
    receiver.script = [500, 503]  # the first event fails twice, then succeeds
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    policy = Policy(max_attempts=4, backoff=0.05, factor=2.0, timeout=1.0)
    [result] = deliver(db_path, policy=policy, sleep=sleep)

    assert result.delivered == 2 and result.attempts == 4
    assert waits == [0.05, 0.1]
    at = [r["at"] for r in receiver.requests]
    gaps = [at[1] - at[0], at[2] - at[1]]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1
    first_id = _events(db_path, ("service_added",))[0]["id"]
    [row] = rows(db_path, "select attempts, status, status_code, error from webhook_deliveries "
                          "where event_id = ?", (first_id,))
    assert row == {"attempts": 3, "status": "delivered", "status_code": 200, "error": None}
    assert Policy(max_attempts=6, backoff=1, factor=2, max_backoff=5).delays() == [1, 2, 4, 5, 5]


def test_a_receiver_that_is_down_loses_nothing(repo, db_path, receiver):
    _history(repo, db_path)
    _add(db_path, receiver.url, name="down", secret="k", from_start=True)
    all_before = _events(db_path)
    receiver.mode = 500

    [result] = deliver(db_path, policy=FAST)

    assert result.delivered == 0 and result.failed_event == all_before[0]["id"]
    assert "HTTP 500" in result.error
    assert len(receiver.requests) == 3  # max_attempts for the first event, then it stops
    [row] = rows(db_path, "select event_id, attempts, status, status_code from "
                          "webhook_deliveries")
    assert row == {"event_id": all_before[0]["id"], "attempts": 3, "status": "failed",
                   "status_code": 500}
    assert rows(db_path, "select cursor, last_error from webhooks")[0] == {
        "cursor": 0, "last_error": "HTTP 500 Internal Server Error"}

    # more history while the receiver is still down
    repo.service("billing", namespace="payments")
    repo.commit("Add billing")
    run_ingest(repo, db_path)
    deliver(db_path, policy=FAST)
    assert rows(db_path, "select attempts from webhook_deliveries")[0]["attempts"] == 6

    receiver.mode = "ok"
    receiver.requests.clear()
    [result] = deliver(db_path, policy=FAST)

    everything = _events(db_path)
    assert len(everything) > len(all_before)
    assert [b["id"] for b in receiver.delivered] == [e["id"] for e in everything]
    assert result.delivered == len(everything) and result.error is None
    summary = rows(db_path, "select status, count(*) as n, max(attempts) as most "
                            "from webhook_deliveries group by status")
    assert summary == [{"status": "delivered", "n": len(everything), "most": 7}]


def test_a_closed_port_and_a_hanging_receiver_are_retried_on_the_next_run(repo, db_path,
                                                                          receiver):
    _history(repo, db_path)
    closed = Receiver()
    closed_url = closed.url
    closed.close()  # nothing listens there any more
    _add(db_path, closed_url, name="gone", from_start=True, kinds=["service_added"])
    _add(db_path, receiver.url, name="slow", from_start=True, kinds=["service_added"])
    receiver.mode = "hang"
    policy = Policy(max_attempts=2, backoff=0.01, timeout=0.3)

    started = time.monotonic()
    gone, slow = deliver(db_path, policy=policy)

    assert time.monotonic() - started < 5
    assert gone.delivered == 0 and "ConnectError" in gone.error
    assert slow.delivered == 0 and slow.error == "no answer within 0.3s"
    assert len(receiver.requests) == 2
    failed = rows(db_path, "select webhook, attempts, status, status_code from "
                           "webhook_deliveries order by webhook")
    assert failed == [
        {"webhook": "gone", "attempts": 2, "status": "failed", "status_code": None},
        {"webhook": "slow", "attempts": 2, "status": "failed", "status_code": None}]

    receiver.mode = "ok"
    gone, slow = deliver(db_path, policy=policy)
    assert slow.delivered == 2 and slow.error is None and gone.delivered == 0
    assert [b["kind"] for b in receiver.delivered[-2:]] == ["service_added"] * 2


def test_a_refusal_is_not_retried_within_the_run(repo, db_path, receiver):
    _history(repo, db_path)
    _add(db_path, receiver.url, from_start=True)
    receiver.mode = 400
    [result] = deliver(db_path, policy=FAST)
    assert len(receiver.requests) == 1 and result.failed_event and "HTTP 400" in result.error
    receiver.mode = "ok"
    [result] = deliver(db_path, policy=FAST)
    assert result.error is None and result.delivered == len(_events(db_path))


def test_a_new_webhook_starts_after_the_latest_event(repo, db_path, receiver):
    _history(repo, db_path)
    hook = _add(db_path, receiver.url)
    assert hook.cursor == _events(db_path)[-1]["id"]
    assert deliver(db_path, policy=FAST)[0].delivered == 0
    repo.service("billing", namespace="payments")
    repo.commit("Add billing")
    run_ingest(repo, db_path)
    [result] = deliver(db_path, policy=FAST)
    assert {b["service_id"] for b in receiver.delivered} == {"payments/billing"}
    assert result.delivered == len(receiver.requests) == 2  # added + status


def test_rewritten_history_reusing_event_ids_is_delivered(repo, db_path, receiver):
    _history(repo, db_path, commits=2)
    base = repo.git("rev-parse", "HEAD~1")
    _add(db_path, receiver.url, from_start=True)
    deliver(db_path, policy=FAST)
    sent = len(receiver.requests)
    repo.git("reset", "-q", "--hard", base)  # force-push: the last commit goes away
    repo.service("billing", namespace="payments")
    new = repo.commit("Add billing instead")
    run_ingest(repo, db_path)

    [result] = deliver(db_path, policy=FAST)

    new_events = [e for e in _events(db_path) if e["commit_sha"] == new]
    assert new_events and result.error is None
    got = [(b["id"], b["commit_sha"]) for b in receiver.delivered[sent:]]
    assert got == [(e["id"], new) for e in new_events]


def test_config_file_webhooks_with_secret_from_the_environment(repo, db_path, receiver,
                                                               tmp_path, monkeypatch):
    _history(repo, db_path)
    config = tmp_path / "webhooks.yml"
    config.write_text(f"""
webhooks:
  - name: file-hook
    url: {receiver.url}
    kinds: [status_changed]
    secret_env: HOOK_SECRET
    from_start: true
""")
    [result] = deliver(db_path, config=config, policy=FAST)
    assert result.error == "webhook file-hook: environment variable HOOK_SECRET is not set"
    assert not receiver.requests

    monkeypatch.setenv("HOOK_SECRET", "from-env")
    [result] = deliver(db_path, config=config, policy=FAST)
    assert result.delivered == len(_events(db_path, ("status_changed",)))
    request = receiver.requests[0]
    assert request["headers"][SIGNATURE_HEADER] == sign("from-env", request["body"])
    assert rows(db_path, "select * from webhook_secrets") == []  # nothing stored

    config.write_text("webhooks: []\n")
    db = connect(db_path)
    try:
        sync_config(db, config)
        assert [(h.name, h.active) for h in list_webhooks(db)] == [("file-hook", False)]
        config.write_text(f"webhooks:\n  - url: {receiver.url}\n    kinds: [nope]\n")
        with pytest.raises(WebhookError, match="unknown event kind"):
            sync_config(db, config)
        config.write_text(f"webhooks:\n  - url: {receiver.url}\n    sekret: x\n")
        with pytest.raises(WebhookError, match="unknown key"):
            sync_config(db, config)
    finally:
        db.close()


def test_one_deliver_run_at_a_time(db_path):
    connect(db_path).close()
    with deliver_lock(db_path), pytest.raises(DeliverBusy):
        deliver(db_path, policy=FAST)


def test_cli_webhooks_and_deliver(repo, db_path, receiver):
    _history(repo, db_path)
    runner = CliRunner()
    db = ["--db", str(db_path)]
    added = runner.invoke(cli, ["webhooks", "add", receiver.url, "--name", "ops", "--kind",
                                "service_added", "--secret", "x", "--from-start", *db])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, ["webhooks", "list", "--json", *db])
    [hook] = json.loads(listed.output)
    assert hook["name"] == "ops" and hook["signed"] and hook["pending"] == 2
    assert "secret" not in hook

    receiver.mode = 500
    failed = runner.invoke(cli, ["deliver", "--backoff", "0.01", "--max-attempts", "2", *db])
    assert failed.exit_code == 1 and "stopped at event" in failed.output

    receiver.mode = "ok"
    ok = runner.invoke(cli, ["deliver", "--json", *db])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)[0]["delivered"] == 2
    removed = runner.invoke(cli, ["webhooks", "remove", "ops", *db])
    assert removed.exit_code == 0 and "removed webhook" in removed.output
    assert runner.invoke(cli, ["webhooks", "remove", "ops", *db]).exit_code == 1
    bad = runner.invoke(cli, ["webhooks", "add", "ftp://x", *db])
    assert bad.exit_code == 1 and "http://" in bad.output


def test_sync_sends_what_a_receiver_missed_while_it_was_down(repo, db_path, receiver):
    _history(repo, db_path)
    _add(db_path, receiver.url, name="ops", from_start=True)
    receiver.mode = 503
    deliver(db_path, policy=FAST)  # down: nothing delivered, nothing lost
    assert rows(db_path, "select cursor from webhooks")[0]["cursor"] == 0

    receiver.mode = "ok"
    receiver.requests.clear()
    repo.service("billing", namespace="payments")
    repo.commit("Add billing")
    result = CliRunner().invoke(cli, ["sync", "--db", str(db_path), "--repo", str(repo.path)])

    assert result.exit_code == 0, result.output
    delivered = [b["id"] for b in receiver.delivered]
    assert delivered == [e["id"] for e in _events(db_path)]
    assert any(b["service_id"] == "payments/billing" for b in receiver.delivered)
