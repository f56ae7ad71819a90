"""Dead letters: the record format of SPEC §4, publishing, listing and replay.

A dead letter is published on `greenlight.webhooks.dlq.<event>` with `Nats-Msg-Id` = the
delivery id. A replay re-queues the delivery as a task with a fresh retry budget and the same
delivery id; its generation is the dead letter's stream sequence, so a replayed delivery that
fails again is dead-lettered again (as `<delivery id>:<generation>`, outside the duplicate
window of the first) and each replay is marked in the replays bucket.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.kv import KeyValue

from bridge import bus
from bridge.bus import DLQ_SUBJECT_PREFIX
from bridge.config import Settings
from bridge.events import Event, InvalidEvent
from bridge.pacing import Pacer
from bridge.routing import Router, Source, Target, delivery_id, host_of
from bridge.tasks import Attempt, Task, timestamp

Reason = Literal["max_retries_exceeded", "gone", "invalid_event", "blocked_url", "unknown_webhook"]
INVALID_SUBJECT_TOKEN = "invalid"
# JSON escaping can grow text up to 6x: this keeps a record under a 1 MiB max_payload
MAX_RAW_BYTES = 128 * 1024
_TOKEN_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class Endpoint(msgspec.Struct, frozen=True):
    id: str | None
    url: str | None
    source: Source | None


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The public record of a delivery that will not be retried any more."""

    delivery_id: str
    event_id: str
    event: str | None
    job_id: str | None
    tenant_id: str | None
    endpoint: Endpoint
    reason: Reason
    attempts: tuple[Attempt, ...]
    dead_lettered_at: str
    payload: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    raw: str | None = None
    raw_encoding: Literal["utf-8", "base64"] | None = None
    raw_size: int | None = None
    raw_truncated: bool = False
    error: str | None = None
    generation: int = 0


class Stored(msgspec.Struct, frozen=True):
    """A dead letter as read back from the stream, with its sequence."""

    seq: int
    record: DeadLetter
    replayed_at: str | None


def from_task(task: Task, reason: Reason) -> DeadLetter:
    target = task.target
    return DeadLetter(
        delivery_id=task.delivery_id,
        event_id=task.event_id,
        event=task.event,
        job_id=task.job_id,
        tenant_id=task.tenant_id,
        endpoint=Endpoint(target.webhook_id, target.url, target.source),
        reason=reason,
        attempts=task.history,
        dead_lettered_at=timestamp(time.time()),
        payload=msgspec.Raw(task.body),
        generation=task.generation,
    )


def from_invalid(invalid: InvalidEvent) -> DeadLetter:
    """Keeps the raw bytes, cut to MAX_RAW_BYTES so the record always fits in a message."""
    raw, encoding = _raw_text(invalid.raw[:MAX_RAW_BYTES])
    return DeadLetter(
        delivery_id=delivery_id(invalid.id, "invalid"),
        event_id=invalid.id,
        event=None,
        job_id=None,
        tenant_id=None,
        endpoint=Endpoint(None, None, None),
        reason="invalid_event",
        attempts=(),
        dead_lettered_at=timestamp(time.time()),
        raw=raw,
        raw_encoding=encoding,
        raw_size=len(invalid.raw),
        raw_truncated=len(invalid.raw) > MAX_RAW_BYTES,
        error=invalid.error,
    )


def from_unknown(event: Event, webhook_id: str) -> DeadLetter:
    return DeadLetter(
        delivery_id=delivery_id(event.id, webhook_id),
        event_id=event.id,
        event=event.name,
        job_id=event.job_id,
        tenant_id=event.tenant_id,
        endpoint=Endpoint(webhook_id, None, "job"),
        reason="unknown_webhook",
        attempts=(),
        dead_lettered_at=timestamp(time.time()),
        payload=msgspec.Raw(event.body),
        error=f"no webhook named {webhook_id!r} is configured",
    )


def _raw_text(raw: bytes) -> tuple[str, Literal["utf-8", "base64"]]:
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def subject_for(record: DeadLetter) -> str:
    if record.reason == "invalid_event" or not record.event:
        return f"{DLQ_SUBJECT_PREFIX}.{INVALID_SUBJECT_TOKEN}"
    return f"{DLQ_SUBJECT_PREFIX}.{_event_tokens(record.event)}"


def _event_tokens(event: str, wildcards: bool = False) -> str:
    """An event name as subject tokens; a filter may keep wildcards (`job.*`, `job.>`)."""
    tokens = event.split(".")
    last = len(tokens) - 1
    return ".".join(
        t
        if wildcards and (t == "*" or (t == ">" and n == last))
        else _TOKEN_UNSAFE.sub("_", t) or "_"
        for n, t in enumerate(tokens)
    )


def message_id(record: DeadLetter) -> str:
    if record.generation:
        return f"{record.delivery_id}:{record.generation}"
    return record.delivery_id


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(DeadLetter)


def encode(record: DeadLetter) -> bytes:
    return _ENCODER.encode(record)


async def publish(js: JetStreamContext, record: DeadLetter, patience_s: float) -> None:
    await bus.publish(js, subject_for(record), encode(record), message_id(record), patience_s)


class Filter(msgspec.Struct, frozen=True):
    """Which dead letters a list or replay is about."""

    event: str | None = None
    endpoint: str | None = None
    since_s: float | None = None
    include_replayed: bool = False

    def subject(self) -> str:
        tokens = _event_tokens(self.event, wildcards=True) if self.event else ">"
        return f"{DLQ_SUBJECT_PREFIX}.{tokens}"

    def accepts(self, stored: Stored) -> bool:
        if stored.replayed_at and not self.include_replayed:
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


def _reader_config(wanted: Filter) -> ConsumerConfig:
    if wanted.since_s is None:
        return ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    start = datetime.now(UTC) - timedelta(seconds=wanted.since_s)
    return ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=start)


async def _stored(seq: int, data: bytes, marks: KeyValue) -> Stored:
    record = _DECODER.decode(data)
    try:
        mark = await marks.get(str(seq))
        replayed_at = mark.value.decode() if mark.value else None
    except nats.js.errors.KeyNotFoundError:
        replayed_at = None
    return Stored(seq=seq, record=record, replayed_at=replayed_at)


def replay_task(stored: Stored, target_of: Callable[[DeadLetter], Target | None]) -> Task | None:
    """The task that re-delivers a dead letter, or None when it names nothing deliverable."""
    record = stored.record
    target = target_of(record)
    if target is None or isinstance(record.payload, msgspec.UnsetType):
        return None
    return Task(
        delivery_id=record.delivery_id,
        event_id=record.event_id,
        event=record.event or "",
        job_id=record.job_id,
        tenant_id=record.tenant_id,
        target=target,
        body=bytes(record.payload),
        published_at_s=time.time(),
        generation=stored.seq,
    )


async def mark_replayed(marks: KeyValue, seq: int) -> None:
    await marks.put(str(seq), timestamp(time.time()).encode())


class Replay(msgspec.Struct, frozen=True):
    """One dead letter and the task that re-delivers it (None: nothing to deliver to)."""

    stored: Stored
    task: Task | None


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
            await pacer.wait()
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
        return Target(hook.url, hook.id, "named", webhook_id=hook.id) if hook else None
    if endpoint.url is None:
        return None
    source = endpoint.source or "job"
    return Target(endpoint.url, host_of(endpoint.url), source, trusted=source != "job")
