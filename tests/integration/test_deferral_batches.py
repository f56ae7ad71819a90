"""Deferrals to a saturated endpoint wait in the tasks stream as batches, not one message per
event, and every one of them arrives once the endpoint answers (bridge in-process)."""

from __future__ import annotations

import dataclasses

import msgspec
import nats.js.errors
import pytest
from harness.inprocess import running_bridge
from harness.publish import job_event, publish_events_async
from harness.receiver import Receiver
from harness.tasks import plain_task
from harness.waiting import wait_for
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from bridge.config.settings import Settings, load_settings
from bridge.jetstream import bus, lag
from bridge.observability.metrics import Metrics
from bridge.policy import ordering
from bridge.policy.tasks import DeliveryTask, decode_batch, decode_task, encode_task

pytestmark = pytest.mark.timeout(120)

EVENTS = 400
CONCURRENCY = 4


async def stored_tasks(js: JetStreamContext, settings: Settings) -> tuple[int, list[DeliveryTask]]:
    """The tasks stream read message by message: (messages, the tasks inside them)."""
    state = (await js.stream_info(settings.tasks_stream)).state
    messages, tasks = 0, []
    for seq in range(state.first_seq, state.last_seq + 1):
        try:
            msg = await js.get_msg(settings.tasks_stream, seq)
        except nats.js.errors.NotFoundError:
            continue  # acked and removed meanwhile
        assert msg.data is not None
        assert msg.subject is not None
        messages += 1
        batch = ".batch." in msg.subject
        items = decode_batch(msg.data) if batch else [msgspec.Raw(msg.data)]
        assert not batch or msg.subject.endswith(f".{len(items)}")
        tasks += [decode_task(item) for item in items]
    return messages, tasks


async def test_a_hanging_endpoints_backlog_waits_in_batches_and_arrives_once_it_answers(
    js: JetStreamContext, bridge_env: dict[str, str], receiver: Receiver
) -> None:
    receiver.hang("/hang")
    urls = [receiver.url("/ok"), receiver.url("/hang")]
    env = bridge_env | {
        "DEFAULT_WEBHOOK_URLS": ",".join(urls),
        "WEBHOOK_TIMEOUT": "60s",  # nothing times out while the test counts
        "WEBHOOK_ENDPOINT_CONCURRENCY": str(CONCURRENCY),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": "0",
        "LOG_LEVEL": "error",
    }
    settings = load_settings(env)
    async with running_bridge(env):
        await publish_events_async(
            js, [(f"e{i}", job_event("job.completed", f"j{i}")) for i in range(EVENTS)]
        )
        await wait_for(lambda: receiver.count("/ok") >= EVENTS, 60, "every event at /ok")

        async def deferred() -> bool:
            return await lag.deliveries_waiting(js, settings) >= EVENTS - 4 * CONCURRENCY

        await wait_for(deferred, 30, "the /hang deliveries deferred to the tasks stream")
        read: list[tuple[int, list[DeliveryTask]]] = []

        async def counted_alike() -> bool:
            # a batch split between the two reads moves tasks between messages: read again
            read[:] = [await stored_tasks(js, settings)]
            return await lag.deliveries_waiting(js, settings) == len(read[0][1])

        await wait_for(counted_alike, 10, "the lag count agrees with the stored tasks")
        ((messages, tasks),) = read
        assert len({t.delivery_id for t in tasks}) == len(tasks), "no task stored twice"
        assert messages * 10 <= len(tasks), f"{len(tasks)} tasks in {messages} messages"

        receiver.reply("/hang", 200)
        answering_from = len(receiver.requests)
        receiver.release()  # the open attempts fail now, and are retried
        jobs = lambda: {r.json()["job_id"] for r in receiver.received("/hang")}  # noqa: E731
        await wait_for(lambda: len(jobs()) == EVENTS, 60, lambda: f"{len(jobs())} at /hang")
        answered = [r.delivery_id for r in receiver.requests[answering_from:] if r.path == "/hang"]
        assert len(answered) == len(set(answered)), "a delivery answered 200 arrived twice"
        await wait_for(lambda: _empty(js, settings), 10, "the tasks stream drained")


async def _empty(js: JetStreamContext, settings: Settings) -> bool:
    return await lag.deliveries_waiting(js, settings) == 0


async def test_retries_pending_counts_every_task_of_a_batch(
    js: JetStreamContext, bridge_env: dict[str, str]
) -> None:
    settings = load_settings(bridge_env)
    await bus.ensure_topology(js, settings)
    for url, count in (("https://a.example.com/h", 5), ("https://b.example.com/h", 1)):
        tasks = [plain_task(url, n) for n in range(count)]
        payloads = [encode_task(task) for task in tasks]
        await bus.publish_tasks(js, settings, tasks, payloads, patience_s=5)
    metrics = Metrics()
    await lag.sample(js, settings, metrics)
    assert metrics.registry.get_sample_value("webhook_bridge_retries_pending") == 6


async def test_a_tasks_stream_made_by_an_older_version_gains_the_batch_subject(
    js: JetStreamContext, bridge_env: dict[str, str]
) -> None:
    settings = load_settings(bridge_env)
    old = StreamConfig(name=settings.tasks_stream, subjects=[bus.tasks_subject(settings)])
    await js.add_stream(old, retention="workqueue")
    await bus.ensure_topology(js, settings)
    subjects = (await js.stream_info(settings.tasks_stream)).config.subjects
    ordered = ordering.wildcard(settings.tasks_stream)  # per-job ordering's, added since
    assert subjects == [bus.tasks_subject(settings), bus.batch_subject(settings), ordered]


async def test_a_task_of_a_kind_from_a_newer_version_is_left_in_the_stream(
    js: JetStreamContext, bridge_env: dict[str, str]
) -> None:
    """A rolling upgrade: a newer replica added a subject; this one must not drop its tasks."""
    settings = load_settings(bridge_env)
    await bus.ensure_topology(js, settings)
    config = (await js.stream_info(settings.tasks_stream)).config
    newer = f"{settings.tasks_stream}.newer"
    await js.update_stream(dataclasses.replace(config, subjects=[*(config.subjects or []), newer]))
    ack = await js.publish(newer, b"\x93\x01\x02\x03")
    env = bridge_env | {"HTTP_HOST": "127.0.0.1", "HTTP_PORT": "0", "LOG_LEVEL": "error"}
    async with running_bridge(env):

        async def handed_back() -> bool:
            info = await js.consumer_info(settings.tasks_stream, settings.nats_durable)
            return info.delivered.stream_seq >= ack.seq and info.num_ack_pending == 1

        await wait_for(handed_back, 20, "the bridge never fetched the task")
    state = (await js.stream_info(settings.tasks_stream)).state
    assert state.messages == 1, "the task is still stored"
