"""`rate_limit` across replicas: slots booked in a KV bucket (real nats-server), and two
bridge replicas that together stay under a webhook's rate with nothing dead-lettered."""

from __future__ import annotations

import asyncio

import pytest
from harness.bridge import BridgeProcess, Bridges
from harness.publish import job_event, publish_events_async, read_dead_letters
from harness.receiver import Receiver
from nats.js import JetStreamContext

from bridge.jetstream.bus import ensure_bucket
from bridge.jetstream.rate_limits import RateLimits

pytestmark = pytest.mark.timeout(120)

TOKEN = "rate-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW_S = 1_800_000_000.0


async def test_two_bookers_share_one_evenly_spaced_schedule(js: JetStreamContext) -> None:
    kv = await ensure_bucket(js, "test-rates", 3600, 1)
    one, two = (RateLimits(kv, clock=lambda: NOW_S) for _ in range(2))
    bookings = [limits.book("crm", 10.0) for _ in range(25) for limits in (one, two)]
    slots = sorted(await asyncio.gather(*bookings))
    expected = [i * 0.1 for i in range(50)]
    assert [slot - NOW_S for slot in slots] == pytest.approx(expected, abs=1e-4)
    assert await one.book("other", 10.0) == NOW_S  # each webhook its own schedule


@pytest.mark.e2e
async def test_two_replicas_stay_under_the_rate_and_dead_letter_nothing(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    env = {"ADMIN_TOKEN": TOKEN, "WEBHOOK_ALLOW_PRIVATE_URLS": "true", "WEBHOOK_CONCURRENCY": "4"}
    one, two = await bridges.start(env), await bridges.start(env)
    hook = {"id": "slow", "url": receiver.url("/slow"), "scope": "global", "rate_limit": 5}
    assert (await one.call("POST", "/webhooks", hook, AUTH)).status == 201
    await bridges.wait_for(lambda: _known(two), 10, "replica two never saw the webhook")
    count = 30
    events = [(f"evt-{i}", job_event("job.completed", f"job-{i}")) for i in range(count)]
    await publish_events_async(js, events)
    await bridges.wait_for(lambda: receiver.count("/slow") >= count, 60, "not all arrived")
    arrivals = [request.at for request in receiver.received("/slow")]
    # noise only delays deliveries: the span can only grow; one replica per rate would halve it
    assert arrivals[-1] - arrivals[0] >= 0.9 * (count - 1) / 5
    assert await read_dead_letters(js) == []


async def _known(bridge: BridgeProcess) -> bool:
    status, text = await bridge.get("/webhooks", AUTH)
    return status == 200 and '"slow"' in text
