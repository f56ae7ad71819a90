"""Endpoint health end to end (SPEC §11): an outage longer than the whole retry schedule costs
no dead letter and about one request per probe; a recovered endpoint is refilled gradually;
replicas share a breaker; held deliveries survive a restart and end at WEBHOOK_HOLD_MAX.

Time is scaled down: retries 200 ms to 1 s (the whole schedule of WEBHOOK_MAX_RETRY=4 is
about 2.5 s), probes every 1 s growing, outages of a few to 15 s.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest
from harness.bridge import BridgeProcess, Bridges
from harness.publish import has_dead_letters, job_event, publish_events_async, read_dead_letters
from harness.receiver import Received, Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

OUTAGE_S = 15.0
EVENTS = 60
BREAKER_FAILURES = 5
ENDPOINT_CONCURRENCY = 16
HEALTH_ENV = {
    "WEBHOOK_MAX_RETRY": "4",
    "WEBHOOK_PROBE_INTERVAL": "1s",
    "WEBHOOK_BREAKER_FAILURES": str(BREAKER_FAILURES),
    "WEBHOOK_ENDPOINT_CONCURRENCY": str(ENDPOINT_CONCURRENCY),
}
OPS_STREAM = "GREENLIGHT_WEBHOOKS_OPS"
RECOVERED_REPLY_S = 0.5  # slow enough that held deliveries coming back overlap


async def publish_jobs(js: JetStreamContext, tag: str, count: int) -> None:
    events = ((f"{tag}-{n}", job_event("job.completed", f"{tag}-job-{n}")) for n in range(count))
    await publish_events_async(js, events)


def delivered_ids(requests: list[Received]) -> set[str | None]:
    return {r.delivery_id for r in requests}


async def endpoints(bridge: BridgeProcess) -> list[dict[str, Any]]:
    status, text = await bridge.get("/endpoints")
    assert status == 200, text
    found: list[dict[str, Any]] = json.loads(text)["endpoints"]
    return found


async def state_of(bridge: BridgeProcess, origin: str) -> str:
    for entry in await endpoints(bridge):
        if entry["endpoint"] == origin:
            return str(entry["state"])
    return "healthy"


async def ops_events(js: JetStreamContext) -> list[dict[str, Any]]:
    info = await js.stream_info(OPS_STREAM)
    found = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        if info.state.messages:
            found.append(json.loads((await js.get_msg(OPS_STREAM, seq)).data or b"{}"))
    return found


def in_state(bridge: BridgeProcess, origin: str, state: str) -> Callable[[], Awaitable[bool]]:
    async def there() -> bool:
        return await state_of(bridge, origin) == state

    return there


def origin(receiver: Receiver) -> str:
    return receiver.url("").rstrip("/")


async def test_outage_holds_deliveries_and_recovers_gradually(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    """503 for longer than the retry schedule: no dead letter, requests on the order of the
    probes, the healthy endpoint beside it unaffected, every delivery after recovery, and
    the recovered endpoint refilled from one request in flight up."""
    receiver.reply("/down", 503)
    healthy = Receiver()
    await healthy.start()
    env = HEALTH_ENV | {"DEFAULT_WEBHOOK_URLS": f"{receiver.url('/down')},{healthy.url('/ok')}"}
    bridge = await bridges.start(env)
    await publish_jobs(js, "outage", EVENTS)
    await bridges.wait_for(
        lambda: healthy.count("/ok") == EVENTS, 20, lambda: f"{healthy.count('/ok')} healthy"
    )
    await healthy.stop()
    await bridges.wait_for(
        in_state(bridge, origin(receiver), "open"), 10, "the endpoint never opened"
    )
    await asyncio.sleep(OUTAGE_S)  # the outage itself, not a synchronisation
    during = receiver.count("/down")
    receiver.slow("/down", RECOVERED_REPLY_S)
    recovered_at = len(receiver.requests)
    await bridges.wait_for(
        lambda: len(delivered_ids(receiver.received("/down")[during:])) == EVENTS,
        30,
        lambda: f"{len(delivered_ids(receiver.received('/down')[during:]))} of {EVENTS} delivered",
    )
    assert await read_dead_letters(js) == []
    # opening: the failures that open it and the attempts in flight then; then the probes
    assert during <= BREAKER_FAILURES + ENDPOINT_CONCURRENCY + OUTAGE_S, during
    after = [r for r in receiver.requests[recovered_at:] if r.path == "/down"]
    assert max(r.in_flight for r in after[:3]) <= 2, [r.in_flight for r in after[:10]]
    assert 2 < max(r.in_flight for r in after) <= ENDPOINT_CONCURRENCY
    kinds = [event["kind"] for event in await ops_events(js)]
    assert kinds == ["endpoint.down", "endpoint.recovered"], kinds


async def test_a_delivery_held_too_long_is_dead_lettered(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/down", 503)
    env = HEALTH_ENV | {"DEFAULT_WEBHOOK_URLS": receiver.url("/down"), "WEBHOOK_HOLD_MAX": "3s"}
    await bridges.start(env)
    await publish_jobs(js, "hold", BREAKER_FAILURES * 2)
    await bridges.wait_for(has_dead_letters(js, BREAKER_FAILURES * 2), 30, "not dead-lettered")
    reasons = {letter.body["reason"] for letter in await read_dead_letters(js)}
    assert reasons == {"endpoint_down"}


async def test_two_replicas_open_the_same_endpoint_together(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    """The first replica to open it tells the other through the bucket: the other holds its
    deliveries without failures of its own, within one probe interval."""
    receiver.reply("/down", 503)
    env = HEALTH_ENV | {"DEFAULT_WEBHOOK_URLS": receiver.url("/down")}
    first, second = await bridges.start(env), await bridges.start(env)
    await publish_jobs(js, "pair", EVENTS)
    opened: dict[str, float] = {}

    async def both_open() -> bool:
        for bridge in (first, second):
            if bridge.name not in opened and (since := await since_of(bridge, receiver)):
                opened[bridge.name] = datetime.fromisoformat(since).timestamp()
        return len(opened) == 2

    await bridges.wait_for(both_open, 20, lambda: f"open on {sorted(opened)} only")
    # when each replica saw it open, by its own clock: not when this test happened to look
    assert abs(opened[first.name] - opened[second.name]) < 1.0  # WEBHOOK_PROBE_INTERVAL


async def since_of(bridge: BridgeProcess, receiver: Receiver) -> str | None:
    """When `bridge` saw the receiver's endpoint go down; None while it is healthy there."""
    for entry in await endpoints(bridge):
        if entry["endpoint"] == origin(receiver) and entry["state"] != "healthy":
            return str(entry["since"])
    return None


async def test_a_restart_while_open_keeps_holding(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    """Held deliveries survive a restart of the only bridge: none lost, none sent twice once
    the endpoint is back."""
    receiver.reply("/down", 503)
    env = HEALTH_ENV | {"DEFAULT_WEBHOOK_URLS": receiver.url("/down")}
    bridge = await bridges.start(env)
    await publish_jobs(js, "restart", EVENTS)
    await bridges.wait_for(
        in_state(bridge, origin(receiver), "open"), 10, "the endpoint never opened"
    )
    await bridge.terminate()
    bridge = await bridges.start(env)
    assert await state_of(bridge, origin(receiver)) != "healthy"
    during = receiver.count("/down")
    receiver.reply("/down", 200)
    await bridges.wait_for(
        lambda: len(delivered_ids(receiver.received("/down")[during:])) == EVENTS,
        30,
        lambda: f"{len(delivered_ids(receiver.received('/down')[during:]))} of {EVENTS}",
    )
    await bridges.stays_true(
        lambda: receiver.count("/down") - during == EVENTS, 2.0, "a held delivery came twice"
    )
    assert await read_dead_letters(js) == []
