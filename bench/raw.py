"""The raw baseline: the least a NATS → HTTP pipeline can do with the bridge's libraries.

    python -m bench.raw NATS_URL STREAM DURABLE URL [URL ...]
    python -m bench.raw NATS_URL STREAM DURABLE --routes ROUTES.json

A durable pull consumer, `fetch` in batches, one aiohttp POST per message and URL under a
semaphore, then `ack`. No routing, signing, retries, metrics or logs: the ceiling the bridge
is measured against. With `--routes` (a JSON object: event name → URLs) each message goes to
the URLs of its `event` instead, a dictionary lookup: the least routing can cost. Runs until
SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import aiohttp
import msgspec
import nats
import nats.errors
import uvloop
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

CONCURRENCY = 256
MAX_BATCH = 128
FETCH_TIMEOUT_S = 1.0
HEADERS = {"Content-Type": "application/json"}
Urls = Callable[[bytes], list[str]]


class _Named(msgspec.Struct):
    event: str = ""


_NAMED = msgspec.json.Decoder(_Named)


def urls_of(urls: list[str], routes_path: str | None) -> Urls:
    if routes_path is None:
        return lambda _data: urls
    routes = msgspec.json.decode(Path(routes_path).read_bytes(), type=dict[str, list[str]])
    return lambda data: routes.get(_NAMED.decode(data).event, [])


async def deliver(
    session: aiohttp.ClientSession, urls: Urls, msg: Msg, slots: asyncio.Semaphore
) -> None:
    try:
        await asyncio.gather(*(post(session, url, msg.data) for url in urls(msg.data)))
        await msg.ack()
    finally:
        slots.release()


async def post(session: aiohttp.ClientSession, url: str, body: bytes) -> None:
    async with session.post(url, data=body, headers=HEADERS) as response:
        await response.read()


async def consume(nats_url: str, stream: str, durable: str, urls: Urls) -> None:
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    config = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=30,
        max_ack_pending=CONCURRENCY * 4,
    )
    await js.add_consumer(stream, config)
    sub = await js.pull_subscribe_bind(durable, stream)
    slots = asyncio.Semaphore(CONCURRENCY)
    running: set[asyncio.Task[None]] = set()
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        while not stopping.is_set():
            try:
                messages = await sub.fetch(MAX_BATCH, timeout=FETCH_TIMEOUT_S)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            for msg in messages:
                await slots.acquire()
                task = asyncio.create_task(deliver(session, urls, msg, slots))
                running.add(task)
                task.add_done_callback(running.discard)
    await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nats_url")
    parser.add_argument("stream")
    parser.add_argument("durable")
    parser.add_argument("urls", nargs="*")
    parser.add_argument("--routes", help="JSON file: event name → URLs")
    args = parser.parse_args()
    urls = urls_of(args.urls, args.routes)
    uvloop.run(consume(args.nats_url, args.stream, args.durable, urls))


if __name__ == "__main__":
    main()
