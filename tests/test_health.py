"""Health probes against real HTTP servers on 127.0.0.1 that answer 200, 429, 500, hang
and recover: ``health_checks`` rows, the health views, and ``health_changed`` events."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from conftest import LocalServer, rows, run_ingest
from datasette.app import Datasette

from aureacore_db.cli import cli
from aureacore_db.db import connect
from aureacore_db.health import check_forever, check_once, state_of


class HealthServer:
    """Answers GET /<path> as ``answers[path]`` says: a status code or ``hang``."""

    def __init__(self) -> None:
        self.answers: dict[str, int | str] = {}
        self.hits: dict[str, int] = {}
        self.arrivals: list[float] = []
        self.open = 0  # requests whose client is still connected
        self.most_open = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.lstrip("/")
                with server.lock:
                    server.hits[path] = server.hits.get(path, 0) + 1
                    server.arrivals.append(time.monotonic())
                answer = server.answers.get(path, 404)
                if answer == "hang":
                    with server.lock:
                        server.open += 1
                        server.most_open = max(server.most_open, server.open)
                    try:
                        self._hang()
                    finally:
                        with server.lock:
                            server.open -= 1
                    return
                self.send_response(int(answer))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _hang(self) -> None:
                """Answer nothing until released or until the client hangs up."""
                deadline = time.monotonic() + 10
                while not server.release.is_set() and time.monotonic() < deadline:
                    ready, _, _ = select.select([self.connection], [], [], 0.02)
                    if ready and not self.connection.recv(1, socket.MSG_PEEK):
                        return  # the client gave up (its timeout)

            def log_message(self, *args: object) -> None:
                pass

        self.http = LocalServer(Handler)
        self.base = self.http.base

    def close(self) -> None:
        self.release.set()
        self.http.close()


@pytest.fixture
def server():
    running = HealthServer()
    yield running
    running.close()


def _closed_port_url() -> str:
    probe = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{probe.server_port}/gone"
    probe.server_close()
    return url


@pytest.fixture
def fleet(repo, db_path, server):
    """Services whose health endpoints answer 200, 429, 500, hang, or nothing listens."""
    server.answers = {"ok": 200, "busy": 429, "flaky": 500, "stuck": "hang"}
    for name in ("ok", "busy", "flaky", "stuck"):
        repo.service(name, health_check={"url": f"{server.base}/{name}", "interval_s": 30})
    repo.service("down", health_check={"url": _closed_port_url()})
    repo.service("picky", health_check={"url": f"{server.base}/ok", "expected_status": 204})
    repo.service("quiet")  # no health_check: not probed
    repo.commit("Services with health checks")
    run_ingest(repo, db_path)
    return server


def _health_events(db_path) -> list[dict]:
    found = rows(db_path, "select service_id, payload from events where kind = "
                          "'health_changed' order by id")
    return [{"service": r["service_id"], **json.loads(r["payload"])} for r in found]


def test_states_rows_and_change_events(fleet, db_path):
    started = time.monotonic()
    results = check_once(db_path, timeout=0.4, concurrency=8)
    assert time.monotonic() - started < 3

    by_id = {r.service_id.split("/")[1]: r for r in results}
    assert sorted(by_id) == ["busy", "down", "flaky", "ok", "picky", "stuck"]
    assert {k: (r.state, r.status_code) for k, r in by_id.items()} == {
        "ok": ("passing", 200), "busy": ("warning", 429), "flaky": ("critical", 500),
        "stuck": ("critical", None), "down": ("critical", None), "picky": ("critical", 200)}
    assert by_id["stuck"].error == "no answer within 0.4s" and by_id["stuck"].latency_ms >= 400
    assert by_id["down"].error.startswith("cannot connect")
    assert by_id["flaky"].error == "HTTP 500 Internal Server Error"
    assert by_id["ok"].error is None

    stored = rows(db_path, "select service_id, state, status_code, latency_ms, error, url, "
                           "checked_at from health_checks order by service_id")
    assert len(stored) == 6 and all(r["checked_at"].endswith("Z") for r in stored)
    assert all(r["latency_ms"] is not None for r in stored)
    events = _health_events(db_path)
    assert len(events) == 6 and all(e["previous_state"] is None for e in events)

    # same answers: no new events; then the flaky service recovers and ok starts failing
    check_once(db_path, timeout=0.4)
    assert len(_health_events(db_path)) == 6
    fleet.answers.update({"flaky": 200, "ok": 503})
    check_once(db_path, timeout=0.4)
    changes = {e["service"]: (e["previous_state"], e["state"], e["status_code"])
               for e in _health_events(db_path)[6:]}
    assert changes == {"platform/flaky": ("critical", "passing", 200),  # picky: still critical
                       "platform/ok": ("passing", "critical", 503)}
    assert rows(db_path, "select count(*) as n from health_checks")[0]["n"] == 18


def test_current_health_and_summary_views(fleet, db_path):
    check_once(db_path, timeout=0.3)
    fleet.answers["flaky"] = 200
    check_once(db_path, timeout=0.3)
    current = {r["service_id"]: r for r in rows(db_path, "select * from current_health")}
    assert current["platform/flaky"]["state"] == "passing"
    assert current["platform/flaky"]["since"] == current["platform/flaky"]["checked_at"]
    first = rows(db_path, "select min(checked_at) as t from health_checks "
                          "where service_id = 'platform/ok'")[0]["t"]
    assert current["platform/ok"]["since"] == first
    summary = {r["service_id"]: r for r in rows(db_path, "select * from health_summary")}
    flaky = summary["platform/flaky"]
    assert (flaky["checks"], flaky["passing"], flaky["critical"], flaky["uptime"]) == (
        2, 1, 1, 0.5)
    busy = summary["platform/busy"]
    assert busy["uptime"] == 1.0 and busy["passing_share"] == 0.0
    stuck = summary["platform/stuck"]
    assert stuck["uptime"] == 0.0 and stuck["p50_latency_ms"] is None  # never answered
    assert rows(db_path, "select count(*) as n from health_summary_24h")[0]["n"] == 6


def test_latency_percentiles_and_removed_services(repo, db_path, server):
    server.answers = {"a": 200}
    repo.service("a", health_check={"url": f"{server.base}/a"})
    repo.service("b", health_check={"url": f"{server.base}/a"})
    repo.commit("a and b")
    run_ingest(repo, db_path)
    db = connect(db_path)
    db["health_checks"].insert_all(
        {"service_id": "platform/a", "checked_at": f"2025-01-01T00:00:{i:02d}.000Z",
         "state": "passing" if i % 5 else "critical", "status_code": 200 if i % 5 else None,
         "latency_ms": float(i), "url": "x"} for i in range(1, 21))
    db.close()
    [a] = rows(db_path, "select * from health_summary where service_id = 'platform/a'")
    answered = sorted(float(i) for i in range(1, 21) if i % 5)  # 16 answered checks
    assert a["p50_latency_ms"] == answered[7] and a["p95_latency_ms"] == answered[15]
    assert a["checks"] == 20 and a["critical"] == 4 and a["uptime"] == 0.8

    repo.rm("services/platform/b.yaml")
    repo.commit("b goes")
    run_ingest(repo, db_path)
    results = check_once(db_path, timeout=1)
    assert [r.service_id for r in results] == ["platform/a"]
    assert [r["service_id"] for r in rows(db_path, "select * from current_health")] == [
        "platform/a"]


def test_probes_are_concurrent_with_a_bound(repo, db_path, server):
    for i in range(6):
        server.answers[f"s{i}"] = "hang"
        repo.service(f"s{i}", health_check={"url": f"{server.base}/s{i}"})
    repo.commit("six slow services")
    run_ingest(repo, db_path)
    started = time.monotonic()
    results = check_once(db_path, timeout=0.3, concurrency=2)
    elapsed = time.monotonic() - started
    assert len(results) == 6 and {r.state for r in results} == {"critical"}
    assert len(server.arrivals) == 6
    # never more than two probes open at once, and two do run together (the server counts
    # the connections its clients still hold)
    assert server.most_open == 2
    assert elapsed >= 0.85  # so at least three waves of two, each ended by the 0.3 s timeout


def test_state_rules():
    assert [state_of(c) for c in (200, 204, 299, 301, 404, 429, 500, None)] == [
        "passing", "passing", "passing", "critical", "critical", "warning", "critical",
        "critical"]
    assert state_of(204, expected_status=204) == "passing"
    assert state_of(200, expected_status=204) == "critical"


def test_health_command_once_and_interval(fleet, db_path):
    runner = CliRunner()
    once = runner.invoke(cli, ["health", "--once", "--json", "--timeout", "0.3",
                               "--db", str(db_path)])
    assert once.exit_code == 0, once.output
    assert {r["state"] for r in json.loads(once.output)} == {"passing", "warning", "critical"}
    text = runner.invoke(cli, ["health", "--timeout", "0.3", "--db", str(db_path)])
    assert "WARNING platform/busy 429" in text.output
    assert runner.invoke(cli, ["health", "--once", "--interval", "1",
                               "--db", str(db_path)]).exit_code == 2

    before = fleet.hits.get("flaky", 0)
    rounds = check_forever(db_path, 0.2, timeout=0.3, rounds=2)
    # interval_s 30 in their configs: the services checked just now are not due again
    assert rounds == 2 and fleet.hits.get("flaky", 0) == before
    looped = runner.invoke(cli, ["health", "--interval", "0.2", "--rounds", "2", "--json",
                                 "--timeout", "0.3", "--db", str(db_path)])
    assert looped.exit_code == 0, looped.output
    assert len(looped.output.strip().splitlines()) == 2


def test_datasette_page_shows_health(fleet, db_path):
    check_once(db_path, timeout=0.3)

    async def fetch():
        ds = Datasette(files=[str(db_path)])
        await ds.invoke_startup()
        return (await ds.client.get("/-/aureacore/deps/platform/busy"),
                await ds.client.get("/-/aureacore/deps/platform/busy.json"),
                await ds.client.get("/registry/current_health.json?_shape=array"))

    page, data, view = asyncio.run(fetch())
    assert page.status_code == 200
    assert 'class="health-warning"' in page.text and "uptime 100.0%" in page.text
    assert data.json()["health"]["states"]["platform/busy"]["state"] == "warning"
    assert len(view.json()) == 6
