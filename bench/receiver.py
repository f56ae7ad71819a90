"""A benchmark receiver process: counts arrivals and answers by mode.

    python -m bench.receiver [--delay-ms 50] [--hang] [--latency] [--paths] [--aiohttp]

The default server is a bare asyncio protocol that reads Content-Length bodies over
keep-alive connections and answers a fixed 200: about a tenth of the CPU of an aiohttp
server per request, so on 2 cores the receivers do not eat the CPU that bridge and baseline
are measured on (`--aiohttp` serves the same through aiohttp, for comparison).

Prints `port <n>` on stdout once listening on 127.0.0.1. `GET /_stats` answers
`{"count", "first_s", "last_s", "latencies_ms"}`: arrival times are `time.monotonic()`
(system-wide on Linux, so comparable with the orchestrator's clock); with `--latency` each
body's `sent_at` (Unix seconds, set by the publisher) gives publish → arrival in ms. With
`--paths` (lean server only), `GET /_paths` answers the arrivals per request path.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import sys
import time

import msgspec
import uvloop
from aiohttp import web

STATS_PATH = "/_stats"
PATHS_PATH = "/_paths"


class _Sent(msgspec.Struct):
    sent_at: float = 0.0


_SENT = msgspec.json.Decoder(_Sent)


class Counter:
    """What arrived, and how each request is answered."""

    def __init__(self, delay_s: float, hang: bool, latency: bool, paths: bool = False) -> None:
        self.delay_s = delay_s
        self.hang = hang
        self.latency = latency
        self.paths = paths
        self.by_path: dict[str, int] = {}
        self.count = 0
        self.first_s = 0.0
        self.last_s = 0.0
        self.latencies_ms: list[float] = []

    def arrived(self, body: bytes) -> None:
        now_s = time.monotonic()
        if self.latency:
            self.latencies_ms.append((time.time() - _SENT.decode(body).sent_at) * 1000)
        self.count += 1
        self.first_s = self.first_s or now_s
        self.last_s = now_s

    def arrived_at(self, head: bytes) -> None:
        path = head.split(b" ", 2)[1].decode("latin-1")
        self.by_path[path] = self.by_path.get(path, 0) + 1

    def stats_body(self) -> bytes:
        fields = ("count", "first_s", "last_s", "latencies_ms")
        return msgspec.json.encode({name: getattr(self, name) for name in fields})

    async def handle(self, request: web.Request) -> web.Response:
        self.arrived(await request.read())
        if self.hang:
            await asyncio.Event().wait()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.Response(status=200)

    async def stats(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.stats_body(), content_type="application/json")


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


class LeanHttp(asyncio.Protocol):
    """HTTP/1.1 over one connection, requests one after another (no chunked bodies)."""

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (request := self._take()) is not None:
            self._answer(*request)

    def _take(self) -> tuple[bytes, bytes] | None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self._buffer[:end])
        match = _LENGTH.search(head)
        total = end + 4 + (int(match.group(1)) if match else 0)
        if len(self._buffer) < total:
            return None
        body = bytes(self._buffer[end + 4 : total])
        del self._buffer[:total]
        return head, body

    def _answer(self, head: bytes, body: bytes) -> None:
        assert self._transport is not None
        if head.startswith(b"GET /_"):
            self._answer_stats(head)
            return
        self._counter.arrived(body)
        if self._counter.paths:
            self._counter.arrived_at(head)
        if self._counter.hang:
            return
        if self._counter.delay_s:
            loop = asyncio.get_running_loop()
            loop.call_later(self._counter.delay_s, self._transport.write, OK)
        else:
            self._transport.write(OK)

    def _answer_stats(self, head: bytes) -> None:
        assert self._transport is not None
        paths = head.startswith(b"GET " + PATHS_PATH.encode())
        stats = msgspec.json.encode(self._counter.by_path) if paths else self._counter.stats_body()
        length = f"Content-Length: {len(stats)}\r\n".encode()
        self._transport.write(b"HTTP/1.1 200 OK\r\n" + length + b"\r\n" + stats)


async def serve_lean(counter: Counter) -> None:
    sock = _listening_socket()
    server = await asyncio.get_running_loop().create_server(
        lambda: LeanHttp(counter), sock=sock, backlog=1024
    )
    print(f"port {sock.getsockname()[1]}", flush=True)
    async with server:
        await asyncio.Event().wait()


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


async def serve(counter: Counter) -> None:
    app = web.Application()
    app.router.add_get(STATS_PATH, counter.stats)
    app.router.add_post("/{tail:.*}", counter.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = _listening_socket()
    await web.SockSite(runner, sock, backlog=1024).start()
    print(f"port {sock.getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--hang", action="store_true")
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--paths", action="store_true", help="count arrivals per path")
    parser.add_argument("--aiohttp", action="store_true", help="serve through aiohttp")
    args = parser.parse_args()
    counter = Counter(args.delay_ms / 1000, args.hang, args.latency, args.paths)
    try:
        uvloop.run(serve(counter) if args.aiohttp else serve_lean(counter))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
