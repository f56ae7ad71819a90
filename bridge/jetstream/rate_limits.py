"""Per-webhook rate limits shared by every replica: delivery slots booked in a KV bucket.

A webhook's key in `<durable>-rates` holds its next free slot (Unix seconds). Booking one is a
compare-and-set: read the next free slot, take `max(it, now)`, write it plus `1 / rate`; a
replica that lost the race reads again. So the replicas together start at most `rate`
deliveries a second, evenly spaced, whatever their number, and no replica needs to know of
the others. A replica that dies loses only the slots it had booked and not used: the rate is
never exceeded for it, and its queued deliveries keep their slots in the tasks stream.
Within one process, bookings of one webhook take turns (a lock), and the last revision seen
is reused, so a busy webhook costs one KV write per delivery and no read.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable

from nats.js.kv import KeyValue

from bridge.jetstream.bus import BusError, Conflict, found, nats_errors
from bridge.policy.pacing import next_slot

BOOK_TRIES = 20


class RateLimits:
    """Books delivery slots per webhook; `clock` is wall-clock seconds (shared by replicas)."""

    def __init__(self, kv: KeyValue, clock: Callable[[], float] = time.time) -> None:
        self._kv = kv
        self._clock = clock
        self._known: dict[str, tuple[float, int]] = {}  # key → (next free slot, revision)
        self._turns: dict[str, asyncio.Lock] = {}

    async def book(self, webhook_id: str, rate_per_s: float) -> float:
        """The Unix time at which this delivery may start. Raises BusError."""
        key = _key(webhook_id)
        async with self._turns.setdefault(key, asyncio.Lock()):
            for _ in range(BOOK_TRIES):
                next_free_s, revision = self._known.get(key) or await self._read(key)
                slot_s, after_s = next_slot(next_free_s, self._clock(), 1 / rate_per_s)
                try:
                    self._known[key] = (after_s, await self._write(key, after_s, revision))
                except Conflict:
                    self._known.pop(key, None)  # another replica booked: read again
                    continue
                return slot_s
        raise BusError(f"rate limit of webhook {webhook_id}: too many replicas booking at once")

    async def _read(self, key: str) -> tuple[float, int]:
        entry = await found("cannot read a rate limit", self._kv.get(key))
        if entry is None or entry.revision is None:
            return 0.0, 0
        return float(entry.value or b"0"), entry.revision

    async def _write(self, key: str, next_free_s: float, revision: int) -> int:
        value = repr(next_free_s).encode()
        async with nats_errors("cannot book a rate-limited delivery"):
            if revision == 0:
                return await self._kv.create(key, value)
            return await self._kv.update(key, value, last=revision)


def _key(webhook_id: str) -> str:
    return hashlib.sha256(webhook_id.encode()).hexdigest()[:40]
