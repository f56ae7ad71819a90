"""Following a KV bucket: a watch of all its keys that hands each entry to a callback, and is
restarted after a pause when it fails.

An entry None marks the end of the bucket's current state: what follows are changes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from nats.js.kv import KeyValue

from bridge.jetstream.bus import NoAnswer, nats_errors
from bridge.observability.logs import log

WATCH_POLL_S = 1.0
WATCH_RETRY_S = 2.0

OnEntry = Callable[[KeyValue.Entry | None], None]


def _always() -> bool:
    return True


def _nothing() -> None:
    return None


async def follow_bucket(
    kv: KeyValue,
    stopping: asyncio.Event,
    on_entry: OnEntry,
    what: str,
    *,
    retry_s: float = WATCH_RETRY_S,
    on_end: Callable[[], None] = _nothing,
) -> None:
    """Watch `kv` until `stopping`; a failed watch is logged (`<what> watch restarting`) and
    restarted after `retry_s`. `what` names the bucket in messages."""
    while not stopping.is_set():
        try:
            await watch_bucket(kv, stopping, on_entry, what, on_end=on_end)
        except Exception as error:
            log.warning(f"{what} watch restarting", error=str(error) or repr(error))
            await pause(stopping, retry_s)


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less when `stopping` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def watch_bucket(
    kv: KeyValue,
    stopping: asyncio.Event,
    on_entry: OnEntry,
    what: str,
    *,
    going: Callable[[], bool] = _always,
    on_end: Callable[[], None] = _nothing,
) -> None:
    """One watch, until `stopping` or `going()` is false; raises BusError when it fails.
    `on_end` runs as the watch ends, however it ends, before its watcher is stopped."""
    async with nats_errors(f"cannot watch the {what}"):
        watcher = await kv.watchall()
    try:
        while not stopping.is_set() and going():
            try:
                async with nats_errors(f"{what} watch"):
                    entry = await watcher.updates(timeout=WATCH_POLL_S)  # type: ignore[no-untyped-call]
            except NoAnswer:
                continue
            on_entry(entry)
    finally:
        on_end()
        with contextlib.suppress(Exception):
            await watcher.stop()  # type: ignore[no-untyped-call]
