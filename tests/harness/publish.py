"""Producing events with nats-py the way Greenlight services do, and reading the dead letters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NotFoundError

EVENTS_PREFIX = "greenlight.events."
DLQ_STREAM = "GREENLIGHT_WEBHOOKS_DLQ"
DLQ_PREFIX = "greenlight.webhooks.dlq."
PUBLISH_TIMEOUT_S = 30.0

Event = Mapping[str, Any]


def job_event(event: str, job_id: str, **fields: Any) -> dict[str, Any]:
    """A realistic job lifecycle event (SPEC §1); `fields` add to or replace its keys."""
    base: dict[str, Any] = {
        "event": event,
        "job_id": job_id,
        "document_id": "12345",
        "tenant_id": "acme",
        "tasks": ["convert-fdx-to-screenjson", "validate-screenjson"],
        "status": "success",
        "started_at": "2026-01-14T10:30:00Z",
        "finished_at": "2026-01-14T10:30:12Z",
        "outputs": [{"task": "convert-fdx-to-screenjson", "keys": ["script.json"]}],
        "error": None,
    }
    return base | fields


def event_subject(event_name: str) -> str:
    return EVENTS_PREFIX + event_name


def _msg_id_headers(msg_id: str | None) -> dict[str, str] | None:
    return {"Nats-Msg-Id": msg_id} if msg_id else None


async def publish_raw(
    js: JetStreamContext, subject: str, data: bytes, msg_id: str | None = None
) -> PubAck:
    """Publish bytes as they are, with `Nats-Msg-Id` when given."""
    return await js.publish(subject, data, headers=_msg_id_headers(msg_id))


async def publish_event(js: JetStreamContext, event: Event, msg_id: str | None = None) -> PubAck:
    """Publish `event` as JSON on `greenlight.events.<event["event"]>`."""
    data = json.dumps(event).encode()
    return await publish_raw(js, event_subject(event["event"]), data, msg_id)


async def publish_events_async(js: JetStreamContext, events: Iterable[tuple[str, Event]]) -> None:
    """Publish (msg_id, event) pairs with `publish_async` and wait for every PubAck."""
    futures = []
    for msg_id, event in events:
        subject, data = event_subject(event["event"]), json.dumps(event).encode()
        futures.append(await js.publish_async(subject, data, headers=_msg_id_headers(msg_id)))
    acks = await asyncio.wait_for(asyncio.gather(*futures), PUBLISH_TIMEOUT_S)
    assert not any(ack.duplicate for ack in acks), "a Nats-Msg-Id was reused"


@dataclass(frozen=True)
class DeadLetter:
    subject: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def msg_id(self) -> str | None:
        return self.headers.get("Nats-Msg-Id")


async def read_dead_letters(js: JetStreamContext, stream: str = DLQ_STREAM) -> list[DeadLetter]:
    """Every message currently stored in the dead-letter stream (none if it does not exist)."""
    try:
        state = (await js.stream_info(stream)).state
    except NotFoundError:
        return []
    if state.messages == 0:
        return []
    letters = []
    for seq in range(state.first_seq, state.last_seq + 1):
        try:
            msg = await js.get_msg(stream, seq)
        except NotFoundError:  # deleted in between
            continue
        body = json.loads(msg.data or b"null")
        letters.append(DeadLetter(msg.subject or "", dict(msg.headers or {}), body))
    return letters


def has_dead_letters(js: JetStreamContext, count: int) -> Callable[[], Awaitable[bool]]:
    """A predicate for `wait_for`: at least `count` dead letters are stored."""

    async def enough() -> bool:
        return len(await read_dead_letters(js)) >= count

    return enough
