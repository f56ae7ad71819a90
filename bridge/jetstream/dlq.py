"""The dead-letter stream: publishing records, listing them and replay.

A dead letter is published on `greenlight.webhooks.dlq.<event>` with `Nats-Msg-Id` = the
delivery id. A replay re-queues the delivery as a task with a fresh retry budget and the same
delivery id; its generation is the dead letter's stream sequence, so a replayed delivery that
fails again is dead-lettered again (as `<delivery id>:<generation>`, outside the duplicate
window of the first) and each replay is marked in the replays bucket.

Every record fits in one NATS message: `fit` cuts the texts copied from producers and
receivers (attempt errors, the error, dropped webhook entries, raw bytes), the largest first
and each only as far as needed, and as a last resort leaves out the payload (a cut body could
not be replayed), until the encoded record is small enough; it names each cut field in
`truncated`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import msgspec
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.kv import KeyValue

from bridge.config.settings import Settings
from bridge.jetstream import bus
from bridge.policy.dead_letter import (
    DLQ_SUBJECT_PREFIX,
    DeadLetter,
    encode,
    event_tokens,
    fit,
    message_id,
    subject_for,
)
from bridge.policy.pacing import Pacer
from bridge.policy.routing import Router, Target, host_of, named_target
from bridge.policy.tasks import DeliveryTask, timestamp


class Stored(msgspec.Struct, frozen=True):
    """A dead letter as read back from the stream, with its sequence."""

    seq: int
    record: DeadLetter
    replayed_at: str | None


_DECODER = msgspec.json.Decoder(DeadLetter)


async def publish(
    js: JetStreamContext, record: DeadLetter, patience_s: float, max_bytes: int
) -> None:
    """Publish the record, cut to fit in `max_bytes`."""
    payload = encode(fit(record, max_bytes))
    await bus.publish(js, subject_for(record), payload, message_id(record), patience_s)


class Filter(msgspec.Struct, frozen=True):
    """Which dead letters a list or replay is about; `tenants`: only these tenants' (None: any,
    a tenant-scoped admin token's own otherwise)."""

    event: str | None = None
    endpoint: str | None = None
    since_s: float | None = None
    include_replayed: bool = False
    tenants: frozenset[str] | None = None

    def subject(self) -> str:
        tokens = event_tokens(self.event, wildcards=True) if self.event else ">"
        return f"{DLQ_SUBJECT_PREFIX}.{tokens}"

    def accepts(self, stored: Stored) -> bool:
        if stored.replayed_at and not self.include_replayed:
            return False
        if self.tenants is not None and stored.record.tenant_id not in self.tenants:
            return False
        endpoint = stored.record.endpoint
        wanted = self.endpoint
        return wanted is None or wanted in (endpoint.id, endpoint.url, _host(endpoint.url))


def _host(url: str | None) -> str | None:
    return host_of(url) if url else None


async def read(js: JetStreamContext, stream: str, marks: KeyValue, wanted: Filter) -> list[Stored]:
    """Every dead letter in the stream that the filter accepts, oldest first."""
    found: list[Stored] = []
    async for msg in bus.read_all(js, stream, wanted.subject(), _reader_config(wanted)):
        stored = await _stored(msg.metadata.sequence.stream, msg.data, marks)
        if wanted.accepts(stored):
            found.append(stored)
    return found


async def stored_count(js: JetStreamContext, stream: str) -> int:
    """How many dead letters the stream holds, replayed ones included."""
    return int((await js.stream_info(stream)).state.messages)


def _reader_config(wanted: Filter) -> ConsumerConfig:
    if wanted.since_s is None:
        return ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    start = datetime.now(UTC) - timedelta(seconds=wanted.since_s)
    return ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=start)


async def _stored(seq: int, data: bytes, marks: KeyValue) -> Stored:
    record = _DECODER.decode(data)
    mark = await bus.found("cannot read the replay marks", marks.get(str(seq)))
    replayed_at = mark.value.decode() if mark is not None and mark.value else None
    return Stored(seq=seq, record=record, replayed_at=replayed_at)


def replay_task(
    stored: Stored, target_of: Callable[[DeadLetter], Target | None]
) -> DeliveryTask | None:
    """The task that re-delivers a dead letter, or None when it names nothing deliverable."""
    record = stored.record
    target = target_of(record)
    if target is None or isinstance(record.payload, msgspec.UnsetType):
        return None
    return DeliveryTask(
        delivery_id=record.delivery_id,
        event_id=record.event_id,
        event=record.event or "",
        job_id=record.job_id,
        tenant_id=record.tenant_id,
        target=target,
        body=bytes(record.payload),
        published_at_s=time.time(),
        generation=stored.seq,
        trace=record.trace,
    )


async def mark_replayed(marks: KeyValue, seq: int) -> None:
    await marks.put(str(seq), timestamp(time.time()).encode())


class Replay(msgspec.Struct, frozen=True):
    """One dead letter and the task that re-delivers it (None: nothing to deliver to)."""

    stored: Stored
    task: DeliveryTask | None


async def plan_replay(
    js: JetStreamContext, settings: Settings, router: Router, wanted: Filter
) -> list[Replay]:
    """What replaying the filter's dead letters would do; reads only (a dry run stops here)."""
    marks = await js.key_value(settings.replays_bucket)
    found = await read(js, settings.dlq_stream, marks, wanted)
    return [Replay(s, replay_task(s, lambda record: replay_target(record, router))) for s in found]


async def requeue(
    js: JetStreamContext,
    settings: Settings,
    plan: list[Replay],
    pacer: Pacer | None = None,
    progress: Callable[[int], None] = lambda _done: None,
) -> tuple[int, int]:
    """Queue the planned tasks (paced) and mark each replayed; (replayed, skipped) counts."""
    marks = await js.key_value(settings.replays_bucket)
    replayed = 0
    for item in plan:
        if item.task is None:
            continue
        if pacer is not None:
            await asyncio.sleep(pacer.book())
        await bus.publish_task(js, settings, item.task, patience_s=0)
        await mark_replayed(marks, item.stored.seq)
        replayed += 1
        progress(replayed)
    return replayed, len(plan) - replayed


async def replay(
    js: JetStreamContext, settings: Settings, router: Router, wanted: Filter
) -> tuple[int, int]:
    """Re-queue the dead letters the filter accepts, unpaced; (replayed, skipped) counts."""
    return await requeue(js, settings, await plan_replay(js, settings, router, wanted))


def replay_target(record: DeadLetter, router: Router) -> Target | None:
    """Where a dead letter goes again: its URL, or a webhook id configured since."""
    endpoint = record.endpoint
    hook = router.named(endpoint.id) if endpoint.id else None
    if endpoint.source == "named" or (hook and record.reason == "unknown_webhook"):
        return named_target(hook) if hook else None
    if endpoint.url is None:
        return None
    source = endpoint.source or "job"
    return Target(endpoint.url, host_of(endpoint.url), source, trusted=source != "job")
