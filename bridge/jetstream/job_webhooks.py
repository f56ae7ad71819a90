"""Per-job webhook memory: the `webhook` entries seen for a job, kept in a KV bucket by job id.

Later events of the same job that lack `webhook` still reach it. Each process mirrors the
bucket in memory through a KV watch, so recalling a job is a dictionary look-up and the
common event (a job with no per-job webhook) costs no NATS round trip. Until the mirror has
loaded the bucket, or while its watch is being restarted, look-ups ask the bucket.

Entries are noted in the mirror as events are decoded (stream order), so events that this
process handles after the one carrying `webhook` see it without waiting for the bucket.
Mirrored entries expire with the bucket's TTL; the mirror holds only jobs that have per-job
webhooks, a few hundred bytes each, and at most MIRROR_MAX_JOBS of them: past that the oldest
are dropped and look-ups that miss ask the bucket again, so memory stays bounded.

A job remembers what `bridge.policy.entries.admit` keeps, in the bucket and in the mirror alike: the
entries it already has first, then new ones while there is room (a count, and a KV value that
fits in one NATS message); `remember` reports the entries it could not keep.
"""

from __future__ import annotations

import asyncio
import hashlib

import msgspec
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from bridge.jetstream.bus import Conflict, found, nats_errors
from bridge.jetstream.kv_watch import follow_bucket
from bridge.policy.entries import Admitted
from bridge.policy.job_mirror import Entries, JobMirror

_ENTRIES = msgspec.json.Decoder(list[str])
WATCH_RETRY_S = 5.0
MIRROR_MAX_JOBS = 100_000


def job_key(job_id: str) -> str:
    """KV keys allow few characters; job ids are arbitrary strings."""
    return hashlib.sha256(job_id.encode()).hexdigest()[:40]


class JobWebhooks:
    """Remembers and recalls per-job webhook entries."""

    def __init__(
        self, kv: KeyValue, ttl_s: float, *, max_entries: int, max_value_bytes: int
    ) -> None:
        self._kv = kv
        self._mirror = JobMirror(
            ttl_s,
            max_entries=max_entries,
            max_value_bytes=max_value_bytes,
            max_jobs=MIRROR_MAX_JOBS,
        )
        self._synced = False

    @property
    def synced(self) -> bool:
        """True while the mirror follows the bucket (look-ups then never ask the bucket)."""
        return self._synced

    def note(self, job_id: str, entries: Entries) -> None:
        """Add entries seen now to the mirror, before anything awaits (stream order)."""
        self._mirror.add(job_key(job_id), entries)

    async def remember(self, job_id: str, entries: Entries) -> Admitted:
        """Persist the entries merged with what the bucket holds: the job's entries now, and
        those it could not keep."""
        key = job_key(job_id)
        entry = await found("cannot recall a job's webhooks", self._kv.get(key))
        stored = () if entry is None else _decode(entry.value)
        merged = self._mirror.admit(stored, entries)
        if merged.kept != stored:
            try:
                await self._store(key, merged.kept, None if entry is None else entry.revision)
            except Conflict:  # another event of the job, here or on a replica, came first
                return await self.remember(job_id, entries)
        known = self._mirror.add(key, merged.kept)
        return Admitted(self._mirror.forget(key, known, merged.dropped), merged.dropped)

    async def _store(self, key: str, kept: Entries, revision: int | None) -> None:
        """Compare-and-set: two events of one job never overwrite each other's entries."""
        value = msgspec.json.encode(list(kept))
        async with nats_errors("cannot remember a job's webhooks"):
            if revision is None:
                await self._kv.create(key, value)
            else:
                await self._kv.update(key, value, last=revision)

    async def forget(self, job_id: str, entry: str) -> bool:
        """Drop one of a job's entries (its receiver answered 410 Gone), by compare-and-set;
        False when the job does not hold it (any more: another replica dropped it)."""
        key = job_key(job_id)
        stored = await found("cannot recall a job's webhooks", self._kv.get(key))
        if stored is None or entry not in _decode(stored.value) or stored.revision is None:
            return False
        kept = [known for known in _decode(stored.value) if known != entry]
        try:
            async with nats_errors("cannot forget a job's webhook"):
                await self._kv.update(key, msgspec.json.encode(kept), last=stored.revision)
        except Conflict:
            return await self.forget(job_id, entry)  # changed meanwhile: look again
        self._mirror.forget(key, self._mirror.known(key), (entry,))
        return True

    async def recall(self, job_id: str) -> Entries:
        key = job_key(job_id)
        known = self._mirror.known(key)
        if known or (self._synced and self._mirror.complete):
            return known
        return self._mirror.add(key, await self._load(key))

    async def mirror(self, stopping: asyncio.Event) -> None:
        """Follow the bucket until `stopping`; look-ups fall back to the bucket while a failed
        watch is restarted."""
        await follow_bucket(
            self._kv,
            stopping,
            self._take,
            "job webhooks",
            retry_s=WATCH_RETRY_S,
            on_end=self._unsync,
        )

    def _take(self, entry: KeyValue.Entry | None) -> None:
        if entry is None:  # the bucket's current state has been delivered
            self._synced = True
        elif entry.operation in (KV_DEL, KV_PURGE):
            self._mirror.remove(entry.key)
        else:
            created = entry.created  # nats-py annotates an int, and sets a datetime
            created_s = created.timestamp() if created else None  # type: ignore[attr-defined]
            self._mirror.add(entry.key, _decode(entry.value), created_s)

    def _unsync(self) -> None:
        self._synced = False

    async def _load(self, key: str) -> Entries:
        entry = await found("cannot recall a job's webhooks", self._kv.get(key))
        return () if entry is None else _decode(entry.value)


def _decode(value: bytes | None) -> Entries:
    if not value:
        return ()
    try:
        return tuple(_ENTRIES.decode(value))
    except msgspec.DecodeError:
        return ()
