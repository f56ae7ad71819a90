"""Are we keeping up? Lag, the oldest unacked event and the retry backlog, sampled from a real
nats-server with events waiting and no bridge consuming them."""

from __future__ import annotations

import asyncio

import pytest
from harness.publish import job_event, publish_event
from harness.waiting import wait_for
from nats.js import JetStreamContext

from bridge.config.settings import load_settings
from bridge.jetstream import bus, lag
from bridge.observability.metrics import Metrics

pytestmark = pytest.mark.timeout(60)


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(f"webhook_bridge_{name}", labels)
    assert value is not None, name
    return value


async def test_lag_counts_waiting_events_and_ages_the_oldest(
    js: JetStreamContext, bridge_env: dict[str, str]
) -> None:
    settings = load_settings(bridge_env)
    await bus.ensure_topology(js, settings)
    metrics = Metrics()
    await lag.sample(js, settings, metrics)
    assert _value(metrics, "oldest_pending_event_age_seconds") == 0.0, "caught up"
    for n in range(3):
        await publish_event(js, job_event("job.queued", f"j-{n}"))

    async def aged() -> bool:
        await lag.sample(js, settings, metrics)
        return _value(metrics, "oldest_pending_event_age_seconds") > 0.0

    await wait_for(aged, 10, "the oldest waiting event never aged")
    assert _value(metrics, "consumer_pending", consumer="events") == 3
    assert _value(metrics, "consumer_ack_pending", consumer="events") == 0
    assert _value(metrics, "retries_pending") == 0


async def test_watch_stops_when_asked(js: JetStreamContext, bridge_env: dict[str, str]) -> None:
    settings = load_settings(bridge_env)
    await bus.ensure_topology(js, settings)
    stopping = asyncio.Event()
    watcher = asyncio.create_task(lag.watch(js, settings, Metrics(), stopping))
    stopping.set()
    await asyncio.wait_for(watcher, 10)


async def test_watch_counts_the_event_loops_tasks(
    js: JetStreamContext, bridge_env: dict[str, str]
) -> None:
    settings = load_settings(bridge_env)
    await bus.ensure_topology(js, settings)
    metrics, stopping = Metrics(), asyncio.Event()

    def counted() -> bool:  # at least this test's task and the watcher itself
        return _value(metrics, "event_loop_tasks") >= 2

    watcher = asyncio.create_task(lag.watch(js, settings, metrics, stopping))
    try:
        await wait_for(counted, 10, "the task gauge was never set")
    finally:
        stopping.set()
        await asyncio.wait_for(watcher, 10)
