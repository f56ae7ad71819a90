"""Dead letters: the record format of SPEC §4, publishing, listing and replay.

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

import base64
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal, TypedDict

import msgspec
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.kv import KeyValue

from bridge import bus
from bridge.bus import DLQ_SUBJECT_PREFIX
from bridge.config import Settings
from bridge.entries import ENTRY_MAX_CHARS
from bridge.events import Event, InvalidEvent
from bridge.pacing import Pacer
from bridge.routing import Router, Source, Target, delivery_id, host_of
from bridge.tasks import Attempt, Task, timestamp

Reason = Literal[
    "max_retries_exceeded",
    "gone",
    "invalid_event",
    "blocked_url",
    "unknown_webhook",
    "too_many_webhooks",
    "handler_error",
]
INVALID_SUBJECT_TOKEN = "invalid"
# how much of a message that is not a routable event is worth keeping; `fit` makes it fit
MAX_RAW_BYTES = 128 * 1024
# what `truncated` adds to a record, at most: its key and every field name
TRUNCATION_NOTE_BYTES = 128
BARE_ERROR_CHARS = 1024
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
    dropped_webhooks: tuple[str, ...] = ()
    truncated: tuple[str, ...] = ()  # fields cut (payload: left out) to fit in one message


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
    """Keeps the raw bytes, at most MAX_RAW_BYTES of them."""
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
        error=invalid.error,
        **_raw_fields(invalid.raw),
    )


def from_failure(event_id: str, event: Event | None, raw: bytes, error: str) -> DeadLetter:
    """An event whose handling kept failing: its raw bytes (at most MAX_RAW_BYTES) and the
    last error; `event` is what it decodes to, when it does."""
    return DeadLetter(
        delivery_id=delivery_id(event_id, "handler_error"),
        event_id=event_id,
        event=event.name if event else None,
        job_id=event.job_id if event else None,
        tenant_id=event.tenant_id if event else None,
        endpoint=Endpoint(None, None, None),
        reason="handler_error",
        attempts=(),
        dead_lettered_at=timestamp(time.time()),
        error=error,
        **_raw_fields(raw),
    )


def from_too_many(event: Event, dropped: tuple[str, ...], max_entries: int) -> DeadLetter:
    """One record per event for every per-job entry it could not keep (SPEC §13)."""
    return DeadLetter(
        delivery_id=delivery_id(event.id, "too_many_webhooks"),
        event_id=event.id,
        event=event.name,
        job_id=event.job_id,
        tenant_id=event.tenant_id,
        endpoint=Endpoint(None, None, "job"),
        reason="too_many_webhooks",
        attempts=(),
        dead_lettered_at=timestamp(time.time()),
        payload=msgspec.Raw(event.body),
        error=f"{len(dropped)} per-job webhook entries dropped: an event carries and a job "
        f"remembers at most {max_entries}, each at most {ENTRY_MAX_CHARS} chars",
        dropped_webhooks=dropped,
    )


class _RawFields(TypedDict):
    raw: str
    raw_encoding: Literal["utf-8", "base64"]
    raw_size: int
    raw_truncated: bool


def _raw_fields(raw: bytes) -> _RawFields:
    text, encoding = _raw_text(raw[:MAX_RAW_BYTES])
    return _RawFields(
        raw=text, raw_encoding=encoding, raw_size=len(raw), raw_truncated=len(raw) > MAX_RAW_BYTES
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


async def publish(
    js: JetStreamContext, record: DeadLetter, patience_s: float, max_bytes: int
) -> None:
    """Publish the record, cut to fit in `max_bytes`."""
    payload = encode(fit(record, max_bytes))
    await bus.publish(js, subject_for(record), payload, message_id(record), patience_s)


CUT_TEXTS = ("attempts", "error", "dropped_webhooks", "raw")


def fit(record: DeadLetter, max_bytes: int) -> DeadLetter:
    """The record with its copied fields cut until it encodes to at most `max_bytes`; each
    cut field is named in `truncated`. Fields the bridge makes itself (ids, names, the
    endpoint) are never cut: an entry or URL in them is already bounded."""
    if len(encode(record)) <= max_bytes:  # nearly always
        return record
    largest_first = sorted(CUT_TEXTS, key=lambda field: -_text_bytes(record, field))
    for field in (*largest_first, "payload"):
        excess = len(encode(record)) - max_bytes
        if excess <= 0:
            break
        record = _cut(record, field, excess + TRUNCATION_NOTE_BYTES)
    return record


def _text_bytes(record: DeadLetter, field: str) -> int:
    if field == "attempts":
        texts = [attempt.error or "" for attempt in record.attempts]
    elif field == "dropped_webhooks":
        texts = list(record.dropped_webhooks)
    else:
        texts = [getattr(record, field) or ""]
    return sum(len(_ENCODER.encode(text)) for text in texts)


def _cut(record: DeadLetter, field: str, excess: int) -> DeadLetter:
    """`field` shrunk by at least `excess` encoded bytes, or as far as it goes."""
    cut = _cut_values(record, field, excess)
    if not cut:
        return record
    noted = (*record.truncated, field)
    return msgspec.structs.replace(record, **cut, truncated=noted)


def _cut_values(record: DeadLetter, field: str, excess: int) -> dict[str, object]:
    if field == "payload":
        present = not isinstance(record.payload, msgspec.UnsetType)
        return {"payload": msgspec.UNSET} if present else {}
    if field == "attempts":
        errors = _cut_texts([a.error or "" for a in record.attempts], excess)
        attempts = [_with_error(a, e) for a, e in zip(record.attempts, errors, strict=True)]
        return {"attempts": tuple(attempts)} if attempts != list(record.attempts) else {}
    if field == "dropped_webhooks":
        entries = tuple(_cut_texts(list(record.dropped_webhooks), excess))
        return {"dropped_webhooks": entries} if entries != record.dropped_webhooks else {}
    return _cut_text_field(record, field, excess)


def _cut_text_field(record: DeadLetter, field: str, excess: int) -> dict[str, object]:
    """`error`, or `raw` (base64 is cut on a whole group of four)."""
    text: str | None = getattr(record, field)
    if not text:
        return {}
    [cut] = _cut_texts([text], excess)
    if field == "raw":
        cut = cut[: len(cut) - len(cut) % 4] if record.raw_encoding == "base64" else cut
        return {"raw": cut, "raw_truncated": True}
    return {field: cut}


def _with_error(attempt: Attempt, error: str) -> Attempt:
    same = error == (attempt.error or "")
    return attempt if same else msgspec.structs.replace(attempt, error=error)


def _cut_texts(texts: list[str], excess: int) -> list[str]:
    """Each text cut to an equal share of what must remain of their encoded total."""
    if not texts:
        return texts
    total = sum(len(_ENCODER.encode(text)) for text in texts)
    share = max(0, total - excess) // len(texts)
    return [_prefix_within(text, share) for text in texts]


def _prefix_within(text: str, max_bytes: int) -> str:
    """The longest prefix found whose JSON encoding (quotes, escapes) is at most max_bytes."""
    keep = min(len(text), max_bytes)
    while keep and (size := len(_ENCODER.encode(text[:keep]))) > max_bytes:
        keep = keep * max_bytes // size  # strictly smaller: size > max_bytes
    return text[:keep]


def bare(record: DeadLetter) -> DeadLetter:
    """The record with nothing copied from the message but a short error: the last resort
    when the whole record cannot be published."""
    copied = ("payload", "raw", "dropped_webhooks", "attempts")
    cut = [f for f in copied if getattr(record, f) not in (msgspec.UNSET, None, ())]
    if len(record.error or "") > BARE_ERROR_CHARS:
        cut.append("error")
    return msgspec.structs.replace(
        record,
        payload=msgspec.UNSET,
        raw=None,
        raw_encoding=None,
        dropped_webhooks=(),
        attempts=(),
        error=(record.error or "")[:BARE_ERROR_CHARS],
        truncated=tuple(dict.fromkeys((*record.truncated, *cut))),
    )


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
