"""Outbound HTTP with a bound on time and memory (webhooks and health probes).

httpx's timeouts apply to each socket operation, so a server that trickles one byte a
second never trips them. :func:`fetch` puts one deadline over the whole attempt
(connect, send, headers, body) and reads at most ``max_body`` bytes of the reply, then
closes the connection.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

MAX_BODY = 64 * 1024


class DeadlineExceeded(Exception):
    """No complete answer within the attempt's deadline."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer within {seconds:g}s")
        self.seconds = seconds


@dataclass
class Reply:
    """An answer: status, headers and the first ``max_body`` bytes of the body."""

    status_code: int
    reason_phrase: str
    headers: httpx.Headers
    body: bytes
    truncated: bool
    elapsed_ms: float


async def fetch(client: httpx.AsyncClient, method: str, url: str, *, deadline: float,
                max_body: int = MAX_BODY, **kwargs: Any) -> Reply:
    """``method url`` through ``client``, all of it within ``deadline`` seconds.

    Raises :class:`DeadlineExceeded` when time runs out, ``httpx.HTTPError`` for other
    network trouble. A longer body is cut at ``max_body`` bytes (``truncated``).
    """
    started = time.perf_counter()
    try:
        return await asyncio.wait_for(
            _fetch(client, method, url, max_body, started, kwargs), timeout=deadline)
    except (asyncio.TimeoutError, httpx.TimeoutException):
        raise DeadlineExceeded(deadline) from None


async def _fetch(client: httpx.AsyncClient, method: str, url: str, max_body: int,
                 started: float, kwargs: dict[str, Any]) -> Reply:
    body = bytearray()
    truncated = False
    async with client.stream(method, url, **kwargs) as response:
        async for chunk in response.aiter_raw():
            room = max_body - len(body)
            body += chunk[:room]
            if len(chunk) > room:
                truncated = True
                break  # leaving the block closes the connection: the rest is never read
    return Reply(response.status_code, response.reason_phrase, response.headers,
                 bytes(body), truncated, round((time.perf_counter() - started) * 1000, 1))


class SyncClient:
    """:func:`fetch` for synchronous callers: one event loop and one client, reused."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self._runner = asyncio.Runner()
        self._client = httpx.AsyncClient(follow_redirects=False, transport=transport,
                                         limits=client_limits(), headers=headers)

    def fetch(self, method: str, url: str, *, deadline: float, max_body: int = MAX_BODY,
              **kwargs: Any) -> Reply:
        return self._runner.run(fetch(self._client, method, url, deadline=deadline,
                                      max_body=max_body, **kwargs))

    def close(self) -> None:
        try:
            self._runner.run(self._client.aclose())
        finally:
            self._runner.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def client_limits(concurrency: int = 1) -> httpx.Limits:
    """Connection limits of a bounded client: no idle connections kept."""
    return httpx.Limits(max_connections=max(1, concurrency), max_keepalive_connections=0)
