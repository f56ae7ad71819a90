"""Retry pressure: a dead endpoint with thousands of deliveries waiting for retry must not
stall the healthy endpoint of the same events.

JetStream counts messages waiting after `nak(delay)` against the consumer's max_ack_pending.
The bridge keeps retries in its own tasks stream and consumer, so the events consumer (limit
about a thousand) keeps flowing while far more retries than that wait under nak(delay).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from harness.bridge import Bridges
from harness.publish import job_event, publish_events_async
from harness.receiver import Receiver
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]  # beyond the sum of its deadlines

STREAM = "GREENLIGHT_EVENTS"
DURABLE = "pressure"
TASKS = f"{DURABLE}-tasks"
FIRST_EVENTS = 2500
LATER_EVENTS = 1000
WAITING_RETRIES = 2000
SAMPLE_S = 0.1


@dataclass
class AckPending:
    """The highest num_ack_pending seen on each consumer while the test ran, and the last
    sample of both (for a failure message)."""

    events: int = 0
    tasks: int = 0
    last: str = "no sample yet"


async def _sample(js: JetStreamContext, seen: AckPending) -> None:
    while True:
        events = await js.consumer_info(STREAM, DURABLE)
        tasks = await js.consumer_info(TASKS, DURABLE)
        seen.events = max(seen.events, events.num_ack_pending or 0)
        seen.tasks = max(seen.tasks, tasks.num_ack_pending or 0)
        seen.last = f"events consumer {_counts(events)}; tasks consumer {_counts(tasks)}"
        await asyncio.sleep(SAMPLE_S)


def _counts(info: ConsumerInfo) -> str:
    return f"pending {info.num_pending}, ack pending {info.num_ack_pending}"


@contextlib.asynccontextmanager
async def sampling(js: JetStreamContext) -> AsyncIterator[AckPending]:
    seen = AckPending()
    sampler = asyncio.create_task(_sample(js, seen))
    try:
        yield seen
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler


async def publish(js: JetStreamContext, first: int, count: int) -> None:
    numbers = range(first, first + count)
    await publish_events_async(
        js, ((f"e{i}", job_event("job.completed", f"j{i}")) for i in numbers)
    )


def healthy(receiver: Receiver) -> int:
    return len({r.delivery_id for r in receiver.received("/ok")})


def retries_waiting(js: JetStreamContext, count: int) -> Callable[[], Awaitable[bool]]:
    """At least `count` retries are held by the tasks consumer under nak(delay)."""

    async def enough() -> bool:
        return ((await js.consumer_info(TASKS, DURABLE)).num_ack_pending or 0) >= count

    return enough


async def test_dead_endpoint_retries_do_not_stall_the_healthy_one(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/dead", 500)
    await bridges.start(
        {
            "NATS_DURABLE": DURABLE,
            "DEFAULT_WEBHOOK_URLS": f"{receiver.url('/dead')},{receiver.url('/ok')}",
            "WEBHOOK_MAX_RETRY": "100",
            "WEBHOOK_RETRY_MIN_WAIT": "30s",  # no retry comes due while the test runs
            "WEBHOOK_RETRY_MAX_WAIT": "30s",
            "LOG_LEVEL": "warning",
            # retries pile up as behind an endpoint the breaker does not hold (one that answers
            # now and then): the backlog must not stall the healthy endpoint's deliveries
            "WEBHOOK_BREAKER_FAILURES": "1000",
        }
    )
    limit = (await js.consumer_info(STREAM, DURABLE)).config.max_ack_pending or 0
    async with sampling(js) as seen:
        await publish(js, 0, FIRST_EVENTS)
        await bridges.wait_for(
            lambda: healthy(receiver) == FIRST_EVENTS,
            45,
            lambda: f"first batch: {healthy(receiver)} at /ok; {seen.last}",
        )
        await bridges.wait_for(
            retries_waiting(js, WAITING_RETRIES), 20, lambda: f"retries piling up: {seen.last}"
        )
        # every later event's healthy delivery must get through past that backlog
        await publish(js, FIRST_EVENTS, LATER_EVENTS)
        total = FIRST_EVENTS + LATER_EVENTS
        await bridges.wait_for(
            lambda: healthy(receiver) == total,
            45,
            lambda: f"later batch: {healthy(receiver)} at /ok; {seen.last}",
        )
        waiting = (await js.stream_info(TASKS)).state.messages
    assert waiting >= WAITING_RETRIES
    assert waiting > limit, "the backlog would not have stalled the events consumer"
    assert seen.events <= limit
    assert receiver.count("/ok") == total
    print(
        f"retry pressure: {total} healthy deliveries with {waiting} retries waiting; "
        f"max ack pending: events {seen.events} (limit {limit}), tasks {seen.tasks}"
    )
