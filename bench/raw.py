"""The raw baseline: the least a NATS → HTTP pipeline can do with the bridge's libraries.

    python -m bench.raw NATS_URL STREAM DURABLE URL [URL ...]

A durable pull consumer, `fetch` in batches, one aiohttp POST per message and URL under a
semaphore, then `ack`. No routing, signing, retries, metrics or logs: the ceiling the bridge
is measured against. Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import aiohttp
import nats
import nats.errors
import uvloop
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

CONCURRENCY = 256
MAX_BATCH = 128
FETCH_TIMEOUT_S = 1.0
HEADERS = {"Content-Type": "application/json"}


async def deliver(
    session: aiohttp.ClientSession, urls: list[str], msg: Msg, slots: asyncio.Semaphore
) -> None:
    try:
        await asyncio.gather(*(post(session, url, msg.data) for url in urls))
        await msg.ack()
    finally:
        slots.release()


async def post(session: aiohttp.ClientSession, url: str, body: bytes) -> None:
    async with session.post(url, data=body, headers=HEADERS) as response:
        await response.read()


async def consume(nats_url: str, stream: str, durable: str, urls: list[str]) -> None:
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
    parser.add_argument("urls", nargs="+")
    args = parser.parse_args()
    uvloop.run(consume(args.nats_url, args.stream, args.durable, args.urls))


if __name__ == "__main__":
    main()
