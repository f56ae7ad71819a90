"""Delivery tasks: one (event, URL) pair waiting for its next attempt, as stored in NATS.

A task carries everything its next attempt needs (the body exactly as signed, the target,
the attempts so far), so any replica can run it and a dead letter can tell the whole story.
Secrets and custom headers are not stored: they are looked up from the configuration of the
process that runs the attempt, so a rotated secret applies to pending retries too.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from bridge.routing import Target


class Attempt(msgspec.Struct, frozen=True):
    """One finished HTTP attempt, as shown in dead letters and the delivery log."""

    attempt: int
    at: str
    status_code: int | None
    error: str | None
    duration_ms: int
    outcome: str


class Task(msgspec.Struct, frozen=True, kw_only=True):
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

    @property
    def message_id(self) -> str:
        """Nats-Msg-Id of this task: a redelivered event or a crash-retry adds no copy."""
        return f"{self.delivery_id}:{self.generation}:{self.attempt}"


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Task)


def encode_task(task: Task) -> bytes:
    return _ENCODER.encode(task)


def decode_task(data: bytes) -> Task:
    """Raises msgspec.DecodeError for bytes that are not a task."""
    return _DECODER.decode(data)


def timestamp(unix_s: float) -> str:
    """RFC 3339 UTC with milliseconds, the time format of every record the bridge writes."""
    moment = datetime.fromtimestamp(unix_s, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
