"""The dead-letter record (SPEC §4): its fields, how each kind is built from what failed, its
subject and message id, and how it is cut to fit the server's `max_payload`. Pure: publishing,
reading and replaying are `bridge.jetstream.dlq`'s."""

from __future__ import annotations

import base64
import re
import time
from typing import Literal, TypedDict

import msgspec

from bridge.policy.entries import ENTRY_MAX_CHARS
from bridge.policy.events import Event, InvalidEvent
from bridge.policy.routing import Source, delivery_id
from bridge.policy.tasks import Attempt, DeliveryTask, timestamp
from bridge.policy.trace_context import TraceContext

Reason = Literal[
    "max_retries_exceeded",
    "gone",
    "invalid_event",
    "blocked_url",
    "unknown_webhook",
    "too_many_webhooks",
    "handler_error",
    "transform_error",
    "endpoint_down",
    "aborted_by_receiver",
]


DLQ_SUBJECT_PREFIX = "greenlight.webhooks.dlq"  # SPEC §4
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
    trace: TraceContext | None = None  # the event's trace context, which a replay keeps


def from_task(task: DeliveryTask, reason: Reason) -> DeadLetter:
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
        trace=task.trace,
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
        trace=invalid.trace,
        **_raw_fields(invalid.raw),
    )


def from_failure(
    event_id: str,
    event: Event | None,
    raw: bytes,
    error: str,
    trace: TraceContext | None = None,
) -> DeadLetter:
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
        trace=trace,
        **_raw_fields(raw),
    )


def from_too_many(event: Event, dropped: tuple[str, ...], max_entries: int) -> DeadLetter:
    """One record per event for every per-job entry it could not keep (SPEC §13)."""
    error = (
        f"{len(dropped)} per-job webhook entries dropped: an event carries and a job "
        f"remembers at most {max_entries}, each at most {ENTRY_MAX_CHARS} chars"
    )
    endpoint = Endpoint(None, None, "job")
    reason: Reason = "too_many_webhooks"
    return _of_event(event, reason, endpoint, reason, error, dropped=dropped)


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
    error = f"no webhook named {webhook_id!r} is configured"
    return _of_event(event, webhook_id, Endpoint(webhook_id, None, "job"), "unknown_webhook", error)


def _of_event(
    event: Event,
    destination: str,
    endpoint: Endpoint,
    reason: Reason,
    error: str,
    *,
    dropped: tuple[str, ...] = (),
) -> DeadLetter:
    """A record of an event that never became a delivery: nothing was attempted."""
    return DeadLetter(
        delivery_id=delivery_id(event.id, destination),
        event_id=event.id,
        event=event.name,
        job_id=event.job_id,
        tenant_id=event.tenant_id,
        endpoint=endpoint,
        reason=reason,
        attempts=(),
        dead_lettered_at=timestamp(time.time()),
        payload=msgspec.Raw(event.body),
        error=error,
        dropped_webhooks=dropped,
        trace=event.trace,
    )


def _raw_text(raw: bytes) -> tuple[str, Literal["utf-8", "base64"]]:
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def subject_for(record: DeadLetter) -> str:
    if record.reason == "invalid_event" or not record.event:
        return f"{DLQ_SUBJECT_PREFIX}.{INVALID_SUBJECT_TOKEN}"
    return f"{DLQ_SUBJECT_PREFIX}.{event_tokens(record.event)}"


def event_tokens(event: str, wildcards: bool = False) -> str:
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


def encode(record: DeadLetter) -> bytes:
    return _ENCODER.encode(record)


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
