"""Are we keeping up? Samples consumer lag, the oldest unacked event and the retry backlog,
and the event loop's task count (a soak watches it stay flat: a leaked task shows there)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo

from bridge.config.settings import Settings
from bridge.jetstream.bus import BusError, batch_subject, found, nats_errors
from bridge.observability.metrics import Metrics

POLL_S = 5.0


async def watch(
    js: JetStreamContext, settings: Settings, metrics: Metrics, stopping: asyncio.Event
) -> None:
    """Sample every POLL_S until `stopping`. A sample runs beside the wait, so one stuck on a
    lost connection (up to nats-py's 5 s request timeout) never delays shutdown."""
    sampling: asyncio.Task[None] | None = None
    while not stopping.is_set():
        metrics.event_loop_tasks.set(len(asyncio.all_tasks()))
        if sampling is None or sampling.done():
            sampling = asyncio.create_task(_sample_quietly(js, settings, metrics))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), POLL_S)
    if sampling is not None:
        sampling.cancel()


async def _sample_quietly(js: JetStreamContext, settings: Settings, metrics: Metrics) -> None:
    with contextlib.suppress(BusError):
        async with nats_errors("lag sample"):
            await sample(js, settings, metrics)


async def sample(js: JetStreamContext, settings: Settings, metrics: Metrics) -> None:
    durable = settings.nats_durable
    events = await js.consumer_info(settings.nats_stream, durable)
    tasks = await js.consumer_info(settings.tasks_stream, durable)
    for name, info in (("events", events), ("tasks", tasks)):
        metrics.consumer_pending.labels(consumer=name).set(info.num_pending or 0)
        metrics.consumer_ack_pending.labels(consumer=name).set(info.num_ack_pending or 0)
    metrics.oldest_pending_age.set(await oldest_pending_age_s(js, settings.nats_stream, events))
    metrics.retries_pending.set(await deliveries_waiting(js, settings))


async def deliveries_waiting(js: JetStreamContext, settings: Settings) -> int:
    """Tasks in the tasks stream, a batch counting as the n tasks its subject names."""
    info = await js.stream_info(settings.tasks_stream, subjects_filter=batch_subject(settings))
    batches = info.state.subjects or {}
    extra = sum((int(subject.rpartition(".")[2]) - 1) * n for subject, n in batches.items())
    return info.state.messages + extra


async def oldest_pending_age_s(js: JetStreamContext, stream: str, info: ConsumerInfo) -> float:
    """Age of the first message after the ack floor; 0 when the consumer is caught up."""
    if not (info.num_pending or info.num_ack_pending):
        return 0.0
    first = (info.ack_floor.stream_seq if info.ack_floor else 0) + 1
    subject = info.config.filter_subject or ">"
    msg = await found("lag sample", js.get_msg(stream, seq=first, subject=subject, next=True))
    if msg is None or msg.time is None:
        return 0.0
    return max(0.0, (datetime.now(UTC) - msg.time).total_seconds())
