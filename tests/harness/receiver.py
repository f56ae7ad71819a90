"""An HTTP webhook receiver on 127.0.0.1:0 that records every request and replies by policy.

One receiver serves any number of paths, so it can stand in for several endpoints; each path
has its own reply policy, which a test may change at any time:

    receiver.reply("/a", 500, 502, 200)    # scripted: 500, then 502, then 200 for ever
    receiver.reply("/b", 429, headers={"Retry-After": "1"})
    receiver.hang("/c")                     # never answer (until the receiver stops)
    receiver.slow("/d", 0.3)                # 200 after 0.3 s
    receiver.judge("/e", decide)            # the status decide(request) picks, per request

Paths without a policy answer 200.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from harness.ports import LOOPBACK

SHUTDOWN_TIMEOUT_S = 2.0
# Bridges open many connections at once; past a full accept queue (aiohttp's default is 128)
# the kernel drops SYNs, and the client's retransmit a second later reads as a timeout.
LISTEN_BACKLOG = 1024


@dataclass(frozen=True)
class Received:
    """One recorded request; `at` is its arrival time on `time.monotonic()`, `in_flight` the
    requests open at the receiver then, this one included."""

    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: bytes
    at: float
    peer_port: int = 0  # the client's port: tells a proxy's connection from the bridge's
    in_flight: int = 0

    def json(self) -> Any:
        return json.loads(self.body)

    def header_dict(self) -> dict[str, str]:
        return dict(self.headers)

    @property
    def delivery_id(self) -> str | None:
        return self.headers.get("X-Greenlight-Delivery")


@dataclass
class ReplyPolicy:
    """Statuses are served in order, the last one repeating; `hang` never answers."""

    statuses: tuple[int, ...] = (200,)
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    delay_s: float = 0.0
    served: int = 0
    decide: Callable[[Received], int] | None = None

    def next_status(self) -> int:
        status = self.statuses[min(self.served, len(self.statuses) - 1)]
        self.served += 1
        return status


class Receiver:
    """Records requests and replies per path; see the module docstring."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls  # serve HTTPS with this context
        self.requests: list[Received] = []
        self.in_flight = 0
        self.peak_in_flight = 0  # the most requests open at once since start
        self._policies: dict[str, ReplyPolicy] = {}
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S, handle_signals=False
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0, backlog=LISTEN_BACKLOG, ssl_context=self.tls)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def url(self, path: str = "/", host: str = LOOPBACK) -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def reply(self, path: str, *statuses: int, headers: dict[str, str] | None = None) -> None:
        """Answer `path` with `statuses` in order, the last one repeating."""
        self._policies[path] = ReplyPolicy(statuses=statuses or (200,), headers=headers or {})

    def slow(self, path: str, delay_s: float) -> None:
        """Answer `path` with 200 after `delay_s` (a receiver that takes its time)."""
        self._policies[path] = ReplyPolicy(delay_s=delay_s)

    def judge(self, path: str, decide: Callable[[Received], int]) -> None:
        """Answer each request to `path` with the status `decide` picks for it."""
        self._policies[path] = ReplyPolicy(decide=decide)

    def hang(self, path: str) -> None:
        """Never answer requests to `path` (they are still recorded)."""
        self._policies[path] = ReplyPolicy(hang=True)

    def release(self) -> None:
        """Answer the requests hanging now with 503; later ones follow their path's policy."""
        self._release.set()
        self._release = asyncio.Event()

    def received(self, path: str | None = None) -> list[Received]:
        return [r for r in self.requests if path is None or r.path == path]

    def count(self, path: str | None = None) -> int:
        return len(self.received(path))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        arrived_at = time.monotonic()
        body = await request.read()
        headers = CIMultiDictProxy(CIMultiDict(request.headers))
        peer = request.transport.get_extra_info("peername") if request.transport else None
        port = peer[1] if peer else 0
        received = Received(
            request.method, request.path, headers, body, arrived_at, port, self.in_flight
        )
        self.requests.append(received)
        policy = self._policies.setdefault(request.path, ReplyPolicy())
        if policy.decide is not None:
            return web.Response(status=policy.decide(received))
        if policy.hang:
            await self._release.wait()
            return web.Response(status=503)
        if policy.delay_s:
            await asyncio.sleep(policy.delay_s)
        return web.Response(status=policy.next_status(), headers=policy.headers)
