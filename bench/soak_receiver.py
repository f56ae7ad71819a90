"""A soak receiver: `bench.receiver`'s counting, plus a fault mode switched at run time and a
ledger of what it accepted.

    python -m bench.soak_receiver --ledger FILE [--port 0] [--delay-ms 50] [--fail-ratio 0.02]

Prints `port <n>` on stdout once listening on 127.0.0.1; `--port` lets a restarted receiver
take its predecessor's port, so the bridge's configured URL stays valid. `POST /_mode` with a
body of `ok`, `fail` (answer 500), `hang` (never answer; the handler ends when the client
gives up) or `reset` (reset the connection) changes how hooks are answered from then on.
Each 2xx appends the request's `X-Greenlight-Delivery` id to the ledger before answering,
one line each and flushed, so the record survives the receiver being restarted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import struct
import sys
from typing import Literal, TextIO, get_args

import uvloop
from aiohttp import web

from bench.receiver import STATS_PATH, Counter

MODE_PATH = "/_mode"
DELIVERY_HEADER = "X-Greenlight-Delivery"
Mode = Literal["ok", "fail", "hang", "reset"]
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on with 0 s: close() sends RST, not FIN


class FaultyReceiver(Counter):
    """Answers hooks by the current mode; in `ok`, fails `fail_ratio` of them at random."""

    def __init__(self, delay_s: float, fail_ratio: float, ledger: TextIO) -> None:
        super().__init__(delay_s, hang=False, latency=False)
        self.mode: Mode = "ok"
        self.fail_ratio = fail_ratio
        self.ledger = ledger

    async def handle(self, request: web.Request) -> web.Response:
        if self.mode == "hang":
            await asyncio.Event().wait()  # cancelled by aiohttp when the client disconnects
        if self.mode == "reset":
            return _reset(request)
        if self.mode == "fail" or random.random() < self.fail_ratio:
            return web.Response(status=500)
        response = await super().handle(request)
        self.ledger.write(request.headers.get(DELIVERY_HEADER, "-") + "\n")
        return response

    async def switch(self, request: web.Request) -> web.Response:
        mode = (await request.text()).strip()
        if mode not in get_args(Mode):
            return web.Response(status=400, text=f"mode: one of {get_args(Mode)}")
        self.mode = mode  # type: ignore[assignment]  # checked just above
        return web.Response(text=mode)


def _reset(request: web.Request) -> web.Response:
    transport = request.transport
    if transport is not None:
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        transport.close()
    return web.Response(status=500)  # never reaches the client: the connection is gone


async def serve(receiver: FaultyReceiver, port: int) -> None:
    app = web.Application()
    app.router.add_get(STATS_PATH, receiver.stats)
    app.router.add_post(MODE_PATH, receiver.switch)
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the old one's TIME_WAITs
    sock.bind(("127.0.0.1", port))
    await web.SockSite(runner, sock, backlog=1024).start()
    print(f"port {sock.getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", required=True, help="file the accepted delivery ids go to")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--fail-ratio", type=float, default=0.0, help="500s at random in ok mode")
    args = parser.parse_args()
    with open(args.ledger, "a", buffering=1, encoding="utf-8") as ledger:
        receiver = FaultyReceiver(args.delay_ms / 1000, args.fail_ratio, ledger)
        try:
            uvloop.run(serve(receiver, args.port))
        except KeyboardInterrupt:
            sys.exit(0)


if __name__ == "__main__":
    main()
