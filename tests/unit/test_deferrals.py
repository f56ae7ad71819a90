"""Coalescing deferrals per URL into batch messages, and the batch format itself."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from bridge.jetstream.deferrals import BATCH_MAX_ITEMS, Deferrals
from bridge.policy.routing import Target
from bridge.policy.tasks import (
    DeliveryTask,
    batch_message_id,
    decode_batch,
    decode_task,
    encode_batch,
    encode_task,
    handed_on,
)

A = "https://a.example.com/h"
B = "https://b.example.com/h"


def task(url: str, n: int) -> DeliveryTask:
    return DeliveryTask(
        delivery_id=f"{url}#{n}",
        event_id=f"e{n}",
        event="job.completed",
        job_id=f"j{n}",
        tenant_id=None,
        target=Target(url, "ep", "named", "ep"),
        body=b"{}",
        published_at_s=1.0,
    )


class Publisher:
    """Records each publish as the list of delivery ids it carried; may fail or stall."""

    def __init__(self) -> None:
        self.published: list[list[str]] = []
        self.error: Exception | None = None
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, tasks: list[DeliveryTask], payloads: list[bytes]) -> None:
        assert [decode_task(p) for p in payloads] == tasks
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        self.published.append([t.delivery_id for t in tasks])


async def test_deferrals_to_one_url_in_one_iteration_share_one_message() -> None:
    publisher = Publisher()
    deferrals = Deferrals(publisher)
    waiters = [deferrals.submit(task(A, n)) for n in range(5)]
    waiters += [deferrals.submit(task(B, n)) for n in range(2)]
    await asyncio.gather(*waiters)
    assert sorted(publisher.published) == [[f"{A}#{n}" for n in range(5)], [f"{B}#0", f"{B}#1"]]


async def test_a_later_iteration_starts_a_new_batch() -> None:
    publisher = Publisher()
    deferrals = Deferrals(publisher)
    first = deferrals.submit(task(A, 0))
    await first
    await deferrals.submit(task(A, 1))
    assert publisher.published == [[f"{A}#0"], [f"{A}#1"]]


@pytest.mark.parametrize(
    ("count", "max_bytes_in_tasks", "sizes"),
    [
        (BATCH_MAX_ITEMS + 3, 10_000, [BATCH_MAX_ITEMS, 3]),
        (10, 3.5, [3, 3, 3, 1]),
        (3, 0.5, [1, 1, 1]),  # a task larger than a batch may be still goes, alone
    ],
)
async def test_a_full_batch_is_sent_and_the_next_one_started(
    count: int, max_bytes_in_tasks: float, sizes: list[int]
) -> None:
    publisher = Publisher()
    one_task_bytes = len(encode_task(task(A, 0)))
    deferrals = Deferrals(publisher, int(max_bytes_in_tasks * one_task_bytes))
    await asyncio.gather(*(deferrals.submit(task(A, n)) for n in range(count)))
    assert [len(ids) for ids in publisher.published] == sizes
    assert [i for ids in publisher.published for i in ids] == [f"{A}#{n}" for n in range(count)]


async def test_a_failed_publish_fails_every_caller_of_that_batch() -> None:
    publisher = Publisher()
    publisher.error = ConnectionError("nats down")
    deferrals = Deferrals(publisher)
    waiters = [deferrals.submit(task(A, n)) for n in range(3)]
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError] * 3


async def test_a_cancelled_caller_leaves_the_others_waiting_for_the_publish() -> None:
    publisher = Publisher()
    publisher.gate.clear()
    deferrals = Deferrals(publisher)
    waiters = [deferrals.submit(task(A, n)) for n in range(3)]
    await asyncio.sleep(0)
    waiters[0].cancel()
    publisher.gate.set()
    await asyncio.gather(*waiters[1:])
    assert publisher.published == [[f"{A}#{n}" for n in range(3)]]  # the task is stored anyway


def test_a_batch_decodes_to_the_tasks_it_was_made_of() -> None:
    tasks = [task(A, n) for n in range(3)]
    items = decode_batch(encode_batch([encode_task(t) for t in tasks]))
    assert [decode_task(item) for item in items] == tasks


@pytest.mark.parametrize("data", [b"", b"\x81\xa1a\x01", encode_task(task(A, 0))])
def test_bytes_that_are_no_batch_are_refused(data: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_batch(data)


def test_a_batch_message_id_depends_on_its_tasks_and_their_order() -> None:
    tasks = [task(A, n) for n in range(3)]
    assert batch_message_id(tasks) == batch_message_id(list(tasks))
    assert batch_message_id(tasks) != batch_message_id(tasks[::-1])
    assert batch_message_id(tasks) != batch_message_id(tasks[:2])


def test_a_task_handed_on_gets_a_message_id_of_its_own() -> None:
    """Republished with the id of the message that carried it before, the stream would drop
    it as a copy within its duplicate window, after that message was consumed."""
    first = task(A, 0)
    assert first.message_id == f"{first.delivery_id}:0:1"  # the id tasks always had
    again = handed_on(first)
    assert again.message_id != first.message_id
    assert handed_on(again).message_id not in {first.message_id, again.message_id}
    assert decode_task(encode_task(again)) == again
