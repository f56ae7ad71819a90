"""Replicas end to end: three `webhook-bridge run` processes share the durable consumers and
split the work; one is killed with -9 and one stopped with SIGTERM mid-stream, a fresh one
joins, and every (event, URL) pair still arrives.

What the killed replica had in flight comes back after the ack deadline (duplicates are
allowed and printed); what the stopped one had is finished or handed back while it drains.
"""

from __future__ import annotations

import pytest
from harness.bridge import BridgeProcess, Bridges
from harness.metrics import metric_total
from harness.publish import job_event, publish_events_async
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

EVENTS = 2000
PATHS = ("/a", "/b")
REPLICAS = 3
SHUTDOWN_TIMEOUT_S = 5.0  # FAST_ENV's SHUTDOWN_TIMEOUT
EXIT_DEADLINE_S = SHUTDOWN_TIMEOUT_S + 15.0


def jobs_at(receiver: Receiver, path: str) -> set[str]:
    return {r.json()["job_id"] for r in receiver.received(path)}


def delivered_pairs(receiver: Receiver) -> int:
    """Distinct delivery ids: one per (event, URL) pair, cheap enough to poll."""
    return len({r.delivery_id for r in receiver.requests})


async def deliveries_made(bridge: BridgeProcess) -> float:
    """The replica's own count of deliveries (each replica has its own /metrics)."""
    _status, text = await bridge.get("/metrics")
    return metric_total(text, "webhook_bridge_deliveries_total")


async def test_replicas_split_the_work_and_lose_nothing_when_one_dies(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    urls = ",".join(receiver.url(path) for path in PATHS)
    env = {"DEFAULT_WEBHOOK_URLS": urls, "NATS_ACK_WAIT": "3s"}  # the killed one's come back soon
    replicas = [await bridges.start(env) for _ in range(REPLICAS)]
    events = [(f"evt-{i}", job_event("job.completed", f"job-{i}")) for i in range(EVENTS)]
    await publish_events_async(js, events)
    expected = EVENTS * len(PATHS)
    await bridges.wait_for(lambda: delivered_pairs(receiver) >= expected // 10, 60, "no progress")

    made = {r.name: await deliveries_made(r) for r in replicas}  # read before they go away
    at_kill = delivered_pairs(receiver)
    assert at_kill < expected, "everything arrived before the replicas were stopped"
    await replicas[0].kill()
    assert await replicas[1].terminate(EXIT_DEADLINE_S) == 0
    fresh = await bridges.start(env)

    await bridges.wait_for(
        lambda: delivered_pairs(receiver) == expected,
        90,
        lambda: f"lost: {expected - delivered_pairs(receiver)} (event, URL) pairs never arrived",
    )
    wanted = {f"job-{i}" for i in range(EVENTS)}
    for path in PATHS:
        assert jobs_at(receiver, path) == wanted, f"{path} did not get every event"
    for survivor in (replicas[2], fresh):
        made[survivor.name] = await deliveries_made(survivor)
    working = [name for name, count in made.items() if count > 0]
    assert len(working) >= 2, f"one replica did all the work: {made}"
    duplicates = receiver.count() - expected
    print(f"replicas: {at_kill}/{expected} delivered at the kill; deliveries made {made}")
    print(f"replicas (kill -9 + SIGTERM + new one): {duplicates} duplicates of {expected}")
