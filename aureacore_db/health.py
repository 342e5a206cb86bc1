"""Health probes of the current services (their config's ``health_check``).

Each current service of one environment (default: the first; DESIGN §6) whose config
has ``health_check.url`` is probed with an HTTP GET:
2xx (or the configured ``expected_status``) is ``passing``, 429 ``warning``, any other
answer or no answer within the timeout ``critical``. Probes run concurrently (asyncio +
httpx, bounded by a semaphore). Every probe is a ``health_checks`` row; a service whose
state differs from its previous check in that environment gets a ``health_changed``
event. Rows and events name the environment.

Views: ``current_health`` (latest check per current service, with the time its state
began), ``health_summary`` and ``health_summary_24h`` (checks, uptime share = share of
checks not critical, passing share, p50/p95 latency of answered checks per service;
percentiles by nearest rank with window functions).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import sqlite_utils

from .boundedhttp import DeadlineExceeded, client_limits, fetch
from .db import connect
from .environments import Environment, get_environment, list_environments
from .events import HEALTH_CHANGED, record_event
from .timestamps import now_iso
from .urls import public_url, scrub

PASSING, WARNING, CRITICAL = "passing", "warning", "critical"
DEFAULT_TIMEOUT = 5.0
DEFAULT_CONCURRENCY = 16

@dataclass(frozen=True)
class Target:
    """A service to probe."""

    service_id: str
    url: str
    timeout: float | None = None  # the config's health_check.timeout_s
    interval: float | None = None  # the config's health_check.interval_s
    expected_status: int | None = None


@dataclass
class CheckResult:
    """One probe's outcome."""

    service_id: str
    url: str
    checked_at: str
    state: str
    status_code: int | None
    latency_ms: float | None
    error: str | None
    previous_state: str | None = None
    environment: str | None = None

    @property
    def changed(self) -> bool:
        return self.state != self.previous_state


def state_of(status_code: int | None, expected_status: int | None = None) -> str:
    """``passing`` / ``warning`` / ``critical`` of an HTTP answer (None: no answer)."""
    if status_code is None:
        return CRITICAL
    if status_code == 429:
        return WARNING
    if expected_status is not None:
        return PASSING if status_code == expected_status else CRITICAL
    return PASSING if 200 <= status_code < 300 else CRITICAL


def targets(db: Any, environment: Environment | None = None) -> list[Target]:
    """Current services (of ``environment``; default the first) whose config declares
    ``health_check.url``."""
    conn = getattr(db, "conn", db)
    if environment is None:
        rows = conn.execute(
            "select s.id, c.content from services s join configs c on c.id = s.config_id "
            "where s.removed = 0 and c.content is not null order by s.id").fetchall()
    else:
        rows = conn.execute(
            "select s.service_id, c.content from environment_services s join configs c "
            "on c.id = s.config_id where s.environment = ? and s.removed = 0 "
            "and c.content is not null order by s.service_id", [environment.name]).fetchall()
    found = []
    for sid, content in rows:
        try:
            check = json.loads(content).get("health_check")
        except (ValueError, AttributeError):
            continue
        if not isinstance(check, dict) or not isinstance(check.get("url"), str):
            continue

        def number(key: str, check: dict = check) -> float | None:
            value = check.get(key)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
            return float(value) if ok else None

        expected = check.get("expected_status")
        found.append(Target(sid, check["url"], number("timeout_s"), number("interval_s"),
                            expected if isinstance(expected, int) else None))
    return found


def last_checks(db: Any, environment: str | None = None) -> dict[str, tuple[str, str]]:
    """(state, checked_at) of every service's latest check in ``environment`` (None:
    checks that name no environment)."""
    conn = getattr(db, "conn", db)
    rows = conn.execute("""
        select service_id, state, checked_at from (
            select service_id, state, checked_at,
                   row_number() over (partition by service_id
                                      order by checked_at desc, id desc) as rn
            from health_checks where environment is ?) where rn = 1
    """, [environment]).fetchall()
    return {sid: (state, at) for sid, state, at in rows}


def _error_text(exc: BaseException, timeout: float, url: str) -> str:
    if isinstance(exc, (DeadlineExceeded, httpx.TimeoutException, asyncio.TimeoutError)):
        return f"no answer within {timeout:g}s"
    return scrub(_exc_text(exc), url)


def _exc_text(exc: BaseException) -> str:
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {exc}" if str(exc) else "cannot connect"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return f"unsupported URL: {exc}"
    return f"{type(exc).__name__}: {exc}"


async def probe(client: httpx.AsyncClient, target: Target, timeout: float) -> CheckResult:
    """GET the target's URL, connect to last byte within the operator's ``timeout`` (a
    shorter ``health_check.timeout_s`` wins, a longer one does not), reading at most
    :data:`~aureacore_db.boundedhttp.MAX_BODY` bytes; never raises."""
    limit = min(target.timeout or timeout, timeout)
    checked_at = now_iso(milliseconds=True)
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    try:
        response = await fetch(client, "GET", target.url, deadline=limit,
                               timeout=httpx.Timeout(limit))
        status = response.status_code
        if state_of(status, target.expected_status) != PASSING:
            error = f"HTTP {status} {response.reason_phrase}".strip()
    except Exception as exc:  # every failure is a critical check, with its reason
        error = _error_text(exc, limit, target.url)
    latency = round((time.perf_counter() - started) * 1000, 1)
    return CheckResult(target.service_id, public_url(target.url), checked_at,
                       state_of(status, target.expected_status), status, latency, error)


async def probe_all(found: Iterable[Target], *, concurrency: int = DEFAULT_CONCURRENCY,
                    timeout: float = DEFAULT_TIMEOUT) -> list[CheckResult]:
    """Probe every target, at most ``concurrency`` at a time."""
    gate = asyncio.Semaphore(max(1, concurrency))
    limits = client_limits(concurrency)
    async with httpx.AsyncClient(limits=limits, follow_redirects=False,
                                 headers={"User-Agent": "aureacore-db-health"}) as client:

        async def bounded(target: Target) -> CheckResult:
            async with gate:
                return await probe(client, target, timeout)

        return list(await asyncio.gather(*(bounded(t) for t in found)))


def record(db: sqlite_utils.Database, results: list[CheckResult],
           environment: str | None = None) -> None:
    """Write check rows (of ``environment``) and a ``health_changed`` event per state
    change (one transaction)."""
    with db.atomic():
        previous = last_checks(db, environment)
        for result in results:
            result.environment = environment
            result.previous_state = previous.get(result.service_id, (None, None))[0]
            row = asdict(result)
            row.pop("previous_state")
            db["health_checks"].insert(row)
            if result.changed:
                record_event(db, HEALTH_CHANGED, result.service_id, None, {
                    "state": result.state, "previous_state": result.previous_state,
                    "status_code": result.status_code, "latency_ms": result.latency_ms,
                    "error": result.error, "url": result.url, "environment": environment,
                }, occurred_at=result.checked_at)


def _due(target: Target, last: tuple[str, str] | None, now: float) -> bool:
    if target.interval is None or last is None:
        return True
    try:
        at = datetime.strptime(last[1].rstrip("Z")[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return True
    return now - at.replace(tzinfo=timezone.utc).timestamp() >= target.interval - 0.5


def check_once(db_path: str | Path, *, concurrency: int = DEFAULT_CONCURRENCY,
               timeout: float = DEFAULT_TIMEOUT, only_due: bool = False,
               environment: str | None = None) -> list[CheckResult]:
    """Probe every current service of ``environment`` (default: the first; an unknown
    name raises :class:`~aureacore_db.environments.EnvError`) once (``only_due``: skip
    those checked within their own ``interval_s``) and record the results."""
    db = connect(db_path)
    try:
        env = get_environment(db, environment) if environment is not None else None
        first = list_environments(db)[:1]
        name = env.name if env else first[0].name if first else None
        found = targets(db, env)
        if only_due:
            last = last_checks(db, name)
            now = time.time()
            found = [t for t in found if _due(t, last.get(t.service_id), now)]
        results = asyncio.run(probe_all(found, concurrency=concurrency, timeout=timeout))
        record(db, results, name)
        return results
    finally:
        db.close()


def check_forever(db_path: str | Path, interval: float, *, concurrency: int = DEFAULT_CONCURRENCY,
                  timeout: float = DEFAULT_TIMEOUT, rounds: int | None = None,
                  on_round: Callable[[list[CheckResult]], None] | None = None,
                  environment: str | None = None) -> int:
    """Probe every ``interval`` seconds (services with a longer ``interval_s`` when due)
    the services of ``environment`` (default: the first); stops after ``rounds``
    rounds if given. Returns the number of rounds run."""
    done = 0
    while rounds is None or done < rounds:
        started = time.monotonic()
        results = check_once(db_path, concurrency=concurrency, timeout=timeout, only_due=True,
                             environment=environment)
        done += 1
        if on_round is not None:
            on_round(results)
        if rounds is not None and done >= rounds:
            break
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    return done
