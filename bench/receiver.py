"""A benchmark receiver process: counts arrivals per path and answers by mode.

    python -m bench.receiver [--delay-ms 50] [--hang] [--latency]

Prints `port <n>` on stdout once listening on 127.0.0.1. `GET /_stats` answers
`{"count", "first_s", "last_s", "latencies_ms"}`: arrival times are `time.monotonic()`
(system-wide on Linux, so comparable with the orchestrator's clock); with `--latency` each
body's `sent_at` (Unix seconds, set by the publisher) gives publish → arrival in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time

import msgspec
import uvloop
from aiohttp import web

STATS_PATH = "/_stats"


class _Sent(msgspec.Struct):
    sent_at: float = 0.0


_SENT = msgspec.json.Decoder(_Sent)


class Counter:
    """What arrived, and how each request is answered."""

    def __init__(self, delay_s: float, hang: bool, latency: bool) -> None:
        self.delay_s = delay_s
        self.hang = hang
        self.latency = latency
        self.count = 0
        self.first_s = 0.0
        self.last_s = 0.0
        self.latencies_ms: list[float] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        now_s = time.monotonic()
        if self.latency:
            self.latencies_ms.append((time.time() - _SENT.decode(body).sent_at) * 1000)
        self.count += 1
        self.first_s = self.first_s or now_s
        self.last_s = now_s
        if self.hang:
            await asyncio.Event().wait()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.Response(status=200)

    async def stats(self, _request: web.Request) -> web.Response:
        fields = ("count", "first_s", "last_s", "latencies_ms")
        return web.json_response({name: getattr(self, name) for name in fields})


async def serve(counter: Counter) -> None:
    app = web.Application()
    app.router.add_get(STATS_PATH, counter.stats)
    app.router.add_post("/{tail:.*}", counter.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock, backlog=1024).start()
    print(f"port {sock.getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--hang", action="store_true")
    parser.add_argument("--latency", action="store_true")
    args = parser.parse_args()
    counter = Counter(args.delay_ms / 1000, args.hang, args.latency)
    try:
        uvloop.run(serve(counter))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
