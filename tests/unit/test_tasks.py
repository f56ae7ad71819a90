"""DeliveryTask records: what a stored task carries, its message ids, batches and timestamps."""

from __future__ import annotations

import contextlib

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.policy.routing import Target
from bridge.policy.tasks import (
    Attempt,
    DeliveryTask,
    batch_message_id,
    decode_batch,
    decode_task,
    encode_batch,
    encode_task,
    handed_on,
    timestamp,
)

TARGET = Target(url="https://h.example/hook", endpoint="h.example", source="default")
TASK = DeliveryTask(
    delivery_id="dlv_1",
    event_id="e1",
    event="job.completed",
    job_id="j1",
    tenant_id=None,
    target=TARGET,
    body=b'{"event":"job.completed"}',
    published_at_s=1_700_000_000.25,
)
FAILED = Attempt(
    1, "2026-01-14T10:30:00.000Z", 503, "unexpected status code: 503", 12, "http_error"
)


@pytest.mark.parametrize(
    ("changes", "message_id"),
    [
        ({}, "dlv_1:0:1"),
        ({"attempt": 3}, "dlv_1:0:3"),
        ({"generation": 7, "attempt": 2}, "dlv_1:7:2"),
        ({"handoffs": 2}, "dlv_1:0:1:2"),
    ],
)
def test_message_id(changes: dict[str, int], message_id: str) -> None:
    assert msgspec.structs.replace(TASK, **changes).message_id == message_id


def test_a_task_survives_storage_with_its_history() -> None:
    task = msgspec.structs.replace(TASK, attempt=2, not_before_s=5.5, history=(FAILED,))
    assert decode_task(encode_task(task)) == task


def test_handing_on_counts_and_changes_only_the_id() -> None:
    once = handed_on(TASK)
    assert (once.handoffs, handed_on(once).handoffs) == (1, 2)
    assert msgspec.structs.replace(once, handoffs=0) == TASK
    assert once.message_id != TASK.message_id


def test_a_batch_carries_its_tasks_in_order() -> None:
    tasks = [msgspec.structs.replace(TASK, delivery_id=f"dlv_{i}") for i in range(3)]
    items = decode_batch(encode_batch([encode_task(task) for task in tasks]))
    assert [decode_task(item) for item in items] == tasks


def test_batch_ids_name_the_tasks_not_the_moment() -> None:
    tasks = [msgspec.structs.replace(TASK, delivery_id=f"dlv_{i}") for i in range(3)]
    assert batch_message_id(tasks) == batch_message_id(list(tasks))
    assert batch_message_id(tasks) != batch_message_id(tasks[:2])
    assert batch_message_id(tasks) != batch_message_id([handed_on(t) for t in tasks])
    assert batch_message_id(tasks).startswith("batch:")


@pytest.mark.parametrize("data", [b"", b"\xc1", b"not msgpack", encode_batch([])])
def test_bytes_that_are_not_a_task_raise_decode_error(data: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_task(data)


@pytest.mark.parametrize(
    ("unix_s", "text"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1_700_000_000.25, "2023-11-14T22:13:20.250Z"),
        (1_768_386_600.0, "2026-01-14T10:30:00.000Z"),
    ],
)
def test_timestamp(unix_s: float, text: str) -> None:
    assert timestamp(unix_s) == text


@given(st.binary(max_size=64))
def test_any_bytes_decode_to_a_task_or_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(msgspec.DecodeError):
        assert isinstance(decode_task(data), DeliveryTask)
