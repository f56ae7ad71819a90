"""Delivery tasks: one (event, URL) pair waiting for its next attempt, as stored in NATS.

A task carries everything its next attempt needs (the body exactly as signed, the target,
the attempts so far), so any replica can run it and a dead letter can tell the whole story.
Secrets and custom headers are not stored: they are looked up from the configuration of the
process that runs the attempt, so a rotated secret applies to pending retries too.

First attempts deferred together to one saturated URL may be stored as one batch message
(`<tasks stream>.batch.<n>`, n tasks): it is handed back as a unit while the endpoint stays
saturated and split into single tasks, each with its own Nats-Msg-Id, once it has room.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import msgspec

from bridge.policy.routing import Target
from bridge.policy.trace_context import TraceContext


class Attempt(msgspec.Struct, frozen=True):
    """One finished HTTP attempt, as shown in dead letters and the delivery log."""

    attempt: int
    at: str
    status_code: int | None
    error: str | None
    duration_ms: int
    outcome: str


class DeliveryTask(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery of one event to one URL; `attempt` numbers the next try (1 = first)."""

    delivery_id: str
    event_id: str
    event: str
    job_id: str | None
    tenant_id: str | None
    target: Target
    body: bytes
    published_at_s: float
    attempt: int = 1
    not_before_s: float = 0.0
    generation: int = 0
    history: tuple[Attempt, ...] = ()
    handoffs: int = 0
    rate_slot_s: float = 0.0  # the slot booked under its webhook's `rate_limit`, if any
    trace: TraceContext | None = None  # the event's, sent on every attempt
    held_since_s: float = 0.0  # when it began to wait for its endpoint to recover, if it did
    free_attempts: int = 0  # attempts that failed while the endpoint was down: no retry spent
    order_seq: int = 0  # its event's stream sequence when it waits its turn (`ordering`)

    @property
    def charged_attempts(self) -> int:
        """The attempts so far that count against the retry budget."""
        return self.attempt - 1 - self.free_attempts

    @property
    def message_id(self) -> str:
        """Nats-Msg-Id of this task: a redelivered event or a crash-retry adds no copy. A
        task handed on again from a split batch counts its hand-offs: the stream must not
        drop it as a copy of the message that carried it before."""
        base = f"{self.delivery_id}:{self.generation}:{self.attempt}"
        return f"{base}:{self.handoffs}" if self.handoffs else base


def handed_on(task: DeliveryTask) -> DeliveryTask:
    return msgspec.structs.replace(task, handoffs=task.handoffs + 1)


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(DeliveryTask)
_BATCH_DECODER = msgspec.msgpack.Decoder(list[msgspec.Raw])


def encode_task(task: DeliveryTask) -> bytes:
    return _ENCODER.encode(task)


def decode_task(data: bytes | msgspec.Raw) -> DeliveryTask:
    """Raises msgspec.DecodeError for bytes that are not a task."""
    return _DECODER.decode(data)


def encode_batch(payloads: list[bytes]) -> bytes:
    """Tasks for one URL stored as one message: a MessagePack array of encoded tasks."""
    return _ENCODER.encode([msgspec.Raw(payload) for payload in payloads])


def decode_batch(data: bytes) -> list[msgspec.Raw]:
    """The encoded tasks of a batch, each for `decode_task`; raises msgspec.DecodeError for
    bytes that are not an array."""
    return _BATCH_DECODER.decode(data)


def batch_message_id(tasks: list[DeliveryTask]) -> str:
    """Nats-Msg-Id of a batch: the same tasks batched again (a redelivered fetch of the same
    events after a crash) add no copy. A split hands each task on with an id of its own."""
    digest = hashlib.sha256("\n".join(task.message_id for task in tasks).encode())
    return f"batch:{digest.hexdigest()[:40]}"


def timestamp(unix_s: float) -> str:
    """RFC 3339 UTC with milliseconds, the time format of every record the bridge writes."""
    moment = datetime.fromtimestamp(unix_s, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
