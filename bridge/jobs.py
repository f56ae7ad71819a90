"""Per-job webhook memory: the `webhook` entries seen for a job, kept in a KV bucket by job id.

Later events of the same job that lack `webhook` still reach it. A small in-process cache
answers repeated look-ups; it is updated in stream order as events are decoded, so events that
this process handles after the one carrying `webhook` see it without waiting for the bucket.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict

import msgspec
import nats.js.errors
from nats.js.kv import KeyValue

_ENTRIES = msgspec.json.Decoder(list[str])
CACHE_SIZE = 10_000
CACHE_TTL_S = 30.0


def job_key(job_id: str) -> str:
    """KV keys allow few characters; job ids are arbitrary strings."""
    return hashlib.sha256(job_id.encode()).hexdigest()[:40]


class JobWebhooks:
    """Remembers and recalls per-job webhook entries."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self._cache: OrderedDict[str, tuple[float, tuple[str, ...]]] = OrderedDict()

    def note(self, job_id: str, entries: tuple[str, ...]) -> None:
        """Add entries seen now to the cache, before anything awaits (stream order)."""
        known = self._cached(job_id) or ()
        self._store(job_id, tuple(dict.fromkeys((*known, *entries))))

    async def remember(self, job_id: str, entries: tuple[str, ...]) -> tuple[str, ...]:
        """Persist the entries merged with what the bucket holds; returns the merged set."""
        key = job_key(job_id)
        stored = await self._load(key)
        merged = tuple(dict.fromkeys((*stored, *entries)))
        if merged != stored:
            await self._kv.put(key, msgspec.json.encode(list(merged)))
        self._store(job_id, merged)
        return merged

    async def recall(self, job_id: str) -> tuple[str, ...]:
        cached = self._cached(job_id)
        if cached is not None:
            return cached
        entries = await self._load(job_key(job_id))
        if entries:
            self._store(job_id, entries)
        return entries

    async def _load(self, key: str) -> tuple[str, ...]:
        try:
            entry = await self._kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return ()
        if not entry.value:
            return ()
        try:
            return tuple(_ENTRIES.decode(entry.value))
        except msgspec.DecodeError:
            return ()

    def _cached(self, job_id: str) -> tuple[str, ...] | None:
        hit = self._cache.get(job_id)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def _store(self, job_id: str, entries: tuple[str, ...]) -> None:
        self._cache[job_id] = (time.monotonic() + CACHE_TTL_S, entries)
        self._cache.move_to_end(job_id)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
