"""A 3-node NATS cluster, every stream with 3 replicas, the bridge given all three URLs:
kill -9 the leader of a stream under load and nothing is lost.

The producer publishes with Nats-Msg-Id and retries through the election, as a real
producer must; the bridge rides it out with nothing but its reconnect and fetch loops.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from harness.bridge import FAST_ENV, BridgeProcess, Bridges
from harness.cluster import NatsCluster, publish_through_elections
from harness.publish import event_subject, job_event, publish_events_async, read_dead_letters
from harness.receiver import Receiver
from nats.aio.client import Client

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

STREAM = "GREENLIGHT_EVENTS"
TASKS_STREAM = "webhook-bridge-tasks"
DLQ_STREAM = "GREENLIGHT_WEBHOOKS_DLQ"
TOTAL = 1500
BEFORE_KILL = 500  # published before the kill; the rest while the cluster elects a leader
PUBLISH_PATIENCE_S = 60.0
RETRIED_EVENTS = 200
FAILURES = 600  # the first answers of the flaky path are 503, then 200
BRIDGE_STREAMS = (
    *(STREAM, TASKS_STREAM, DLQ_STREAM, "GREENLIGHT_WEBHOOKS_LOG"),
    *("KV_webhook-bridge-jobs", "KV_webhook-bridge-replays"),
)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[NatsCluster]:
    nodes = NatsCluster(tmp_path / "cluster")
    try:
        await nodes.start()
        yield nodes
    finally:
        await nodes.stop()


@pytest.fixture
def bridge_env(cluster: NatsCluster) -> dict[str, str]:
    """Overrides conftest's: the bridges of this module talk to the cluster."""
    return {"NATS_URL": cluster.urls, "NATS_REPLICAS": "3", "NATS_ACK_WAIT": "5s", **FAST_ENV}


@pytest.fixture
async def producer(cluster: NatsCluster) -> AsyncIterator[Client]:
    nc = await nats.connect(
        cluster.urls.split(","), max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )
    yield nc
    await nc.close()


def job_ids(receiver: Receiver, path: str, skip: int = 0) -> set[str]:
    """Jobs of the requests to `path` after the first `skip` (a reply policy answers in
    arrival order, so those after the scripted 503s got a 200)."""
    return {r.json()["job_id"] for r in receiver.received(path)[skip:]}


async def publish_around_a_kill(nc: Client, killed: asyncio.Event) -> int:
    """TOTAL events; after BEFORE_KILL, wait for the kill and go on at once. Returns the
    number of publish tries that failed (the producer's view of the election)."""
    js, failures = nc.jetstream(), 0
    for i in range(TOTAL):
        if i == BEFORE_KILL:
            await killed.wait()
        data = json.dumps(job_event("job.progress", f"job-{i}")).encode()
        subject = event_subject("job.progress")
        failures += await publish_through_elections(
            js, subject, data, f"evt-{i}", PUBLISH_PATIENCE_S
        )
    return failures


async def replicas(cluster: NatsCluster) -> dict[str, int | None]:
    async with cluster.client() as nc:
        js = nc.jetstream()
        return {name: (await js.stream_info(name)).config.num_replicas for name in BRIDGE_STREAMS}


async def tasks_waiting(cluster: NatsCluster) -> bool:
    async with cluster.client() as nc:
        return (await nc.jetstream().stream_info(TASKS_STREAM)).state.messages > 0


async def readyz(bridge: BridgeProcess) -> int:
    return (await bridge.get("/readyz"))[0]


async def test_events_leader_killed_mid_stream_loses_nothing(
    cluster: NatsCluster, producer: Client, receiver: Receiver, bridges: Bridges
) -> None:
    bridge = await bridges.start({"DEFAULT_WEBHOOK_URLS": receiver.url("/events")})
    assert await replicas(cluster) == dict.fromkeys(BRIDGE_STREAMS, 3)
    killed = asyncio.Event()
    publishing = asyncio.create_task(publish_around_a_kill(producer, killed))
    await bridges.wait_for(lambda: receiver.count("/events") >= BEFORE_KILL // 2, 30, "idle")

    leader = await cluster.stream_leader(STREAM)
    await cluster.kill(leader)
    at_kill = receiver.count("/events")
    killed.set()
    await bridges.wait_for(lambda: receiver.count("/events") > at_kill, 60, "stalled after kill")
    failed_tries = await asyncio.wait_for(publishing, PUBLISH_PATIENCE_S)
    await cluster.restart(leader)

    expected = {f"job-{i}" for i in range(TOTAL)}
    await bridges.wait_for(
        lambda: job_ids(receiver, "/events") == expected,
        60,
        lambda: f"lost: {len(expected - job_ids(receiver, '/events'))} events never delivered",
    )
    await cluster.stream_leader(STREAM)  # the restart may have started another election
    async with cluster.client() as nc:
        assert (await nc.jetstream().stream_info(STREAM)).state.messages == TOTAL
    assert await readyz(bridge) == 200
    duplicates = receiver.count("/events") - TOTAL
    print(
        f"events leader {leader.name} killed at {at_kill}/{TOTAL} delivered: "
        f"{duplicates} duplicates, {failed_tries} publish tries failed during the election"
    )


async def test_tasks_leader_killed_with_retries_pending_loses_nothing(
    cluster: NatsCluster, producer: Client, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/flaky", *[503] * FAILURES, 200)
    env = {"DEFAULT_WEBHOOK_URLS": receiver.url("/flaky"), "WEBHOOK_MAX_RETRY": "30"}
    # retries, not a breaker holding them, must be pending when the leader dies
    bridge = await bridges.start(env | {"WEBHOOK_BREAKER_FAILURES": "1000"})
    events = [(f"evt-{i}", job_event("job.failed", f"job-{i}")) for i in range(RETRIED_EVENTS)]
    await publish_events_async(producer.jetstream(), events)
    await bridges.wait_for(lambda: receiver.count("/flaky") >= FAILURES // 2, 60, "no retries")
    await bridges.wait_for(
        lambda: tasks_waiting(cluster), 30, "no retry waiting in the tasks stream"
    )

    leader = await cluster.stream_leader(TASKS_STREAM)
    await cluster.kill(leader)

    expected = {f"job-{i}" for i in range(RETRIED_EVENTS)}
    await bridges.wait_for(
        lambda: job_ids(receiver, "/flaky", skip=FAILURES) == expected,
        90,
        lambda: f"lost: {len(expected - job_ids(receiver, '/flaky', FAILURES))} never got a 200",
    )
    await cluster.stream_leader(DLQ_STREAM)  # it may have lost its leader with the node
    async with cluster.client() as nc:
        assert await read_dead_letters(nc.jetstream()) == []
    assert await readyz(bridge) == 200
    duplicates = receiver.count("/flaky") - FAILURES - RETRIED_EVENTS
    print(f"tasks leader {leader.name} killed with retries pending: {duplicates} duplicates")
