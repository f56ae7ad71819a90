"""Broker outages end to end: nats-server stopped for more than a minute under a running
bridge with deliveries pending, and SIGTERM while NATS is down (before it ever answered,
after it went away, and with an attempt hanging in flight).

nats-py gives up after `max_reconnect_attempts` (60 by default) and closes the client; the
bridge must reconnect for ever, say 503 on /readyz meanwhile, resume its fetch loops once the
server is back on the same store dir and lose nothing. A shutdown while disconnected must not
hang in nats-py's drain.
"""

from __future__ import annotations

import nats
import pytest
from harness.bridge import BridgeProcess, Bridges
from harness.metrics import metric_total
from harness.nats import NatsServer
from harness.publish import job_event, publish_events_async
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = pytest.mark.e2e

OUTAGE_S = 65.0  # longer than a minute: past any give-up of the client's default settings
EVENTS_BEFORE = 500
EVENTS_AFTER = 200
SHUTDOWN_TIMEOUT = "2s"
# SHUTDOWN_TIMEOUT, plus a request to the absent server timing out (5 s), the hand-back grace
# and closing the client: an exit after this deadline is a hang
EXIT_DEADLINE_S = 20.0
HANG_TIMEOUT = "4s"  # longer than SHUTDOWN_TIMEOUT: the attempt is still running at the deadline


async def readyz_is(bridge: BridgeProcess, status: int) -> bool:
    return await bridge.status("/readyz") == status


async def nats_connected(bridge: BridgeProcess) -> float:
    _status, text = await bridge.get("/metrics")
    return metric_total(text, "webhook_bridge_nats_connected")


def logged(bridge: BridgeProcess, message: str) -> list[dict[str, object]]:
    return [record for record in bridge.log_records() if record.get("message") == message]


def delivery_ids(receiver: Receiver, path: str, since: int = 0) -> set[str | None]:
    return {r.delivery_id for r in receiver.received(path)[since:]}


async def publish_batch(url: str, tag: str, count: int) -> None:
    """Publish from a fresh connection: the fixture's client may not survive the outage."""
    nc = await nats.connect(url)
    try:
        events = (
            (f"{tag}-{i}", job_event("job.completed", f"{tag}-job-{i}")) for i in range(count)
        )
        await publish_events_async(nc.jetstream(), events)
    finally:
        await nc.close()


@pytest.mark.timeout(240)
async def test_outage_longer_than_a_minute_loses_nothing(
    nats_server: NatsServer, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/hook", 503)  # every delivery waits for a retry when NATS goes away
    env = {
        "DEFAULT_WEBHOOK_URLS": receiver.url("/hook"),
        "WEBHOOK_MAX_RETRY": "100",
        "WEBHOOK_RETRY_MIN_WAIT": "500ms",
        "WEBHOOK_RETRY_MAX_WAIT": "2s",
        # every first attempt must reach the receiver: no breaker holding them back
        "WEBHOOK_BREAKER_FAILURES": "1000",
    }
    bridge = await bridges.start(env)
    pid = bridge.pid
    await publish_batch(nats_server.url, "before", EVENTS_BEFORE)
    await bridges.wait_for(
        lambda: len(delivery_ids(receiver, "/hook")) == EVENTS_BEFORE, 60, "first attempts"
    )

    await nats_server.stop()
    await bridges.wait_for(lambda: readyz_is(bridge, 503), 20, "/readyz 503 while NATS is down")
    assert await nats_connected(bridge) == 0
    await bridges.stays_true(
        lambda: readyz_is(bridge, 503), OUTAGE_S, "/readyz left 503 while NATS was down"
    )
    switched_at = receiver.count("/hook")  # nothing is in flight by now: all later ones get 200
    receiver.reply("/hook", 200)

    await nats_server.start()
    await bridges.wait_for(lambda: readyz_is(bridge, 200), 30, "/readyz back to 200")
    assert await nats_connected(bridge) == 1
    await publish_batch(nats_server.url, "after", EVENTS_AFTER)
    expected = EVENTS_BEFORE + EVENTS_AFTER
    await bridges.wait_for(
        lambda: len(delivery_ids(receiver, "/hook", switched_at)) == expected,
        60,
        lambda: f"lost: {expected - len(delivery_ids(receiver, '/hook', switched_at))}",
    )
    assert delivery_ids(receiver, "/hook", switched_at) == delivery_ids(receiver, "/hook")
    assert bridge.running
    assert bridge.pid == pid
    assert len(logged(bridge, "starting")) == 1, "the bridge restarted instead of reconnecting"
    duplicates = receiver.count("/hook") - switched_at - expected
    print(f"{OUTAGE_S:.0f}s NATS outage: {duplicates} duplicate deliveries of {expected}")


@pytest.mark.timeout(120)
async def test_sigterm_while_nats_is_down_exits_promptly(
    nats_server: NatsServer, js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    env = {"DEFAULT_WEBHOOK_URLS": receiver.url("/ok"), "SHUTDOWN_TIMEOUT": SHUTDOWN_TIMEOUT}
    bridge = await bridges.start(env)
    await publish_events_async(js, [("idle-1", job_event("job.completed", "j-idle"))])
    await bridges.wait_for(lambda: receiver.count("/ok") == 1, 20, "delivered")

    await nats_server.stop()
    await bridges.wait_for(lambda: readyz_is(bridge, 503), 20, "/readyz 503 while NATS is down")
    assert await bridge.terminate(EXIT_DEADLINE_S) == 0


@pytest.mark.timeout(60)
async def test_sigterm_before_nats_ever_answered_exits_promptly(
    nats_server: NatsServer, bridges: Bridges
) -> None:
    await nats_server.stop()
    bridge = bridges.new({"SHUTDOWN_TIMEOUT": SHUTDOWN_TIMEOUT})
    await bridge.start()
    await bridges.wait_for(lambda: readyz_is(bridge, 503), 20, "/readyz 503 without NATS")
    assert await bridge.terminate(EXIT_DEADLINE_S) == 0


@pytest.mark.timeout(150)
async def test_sigterm_while_nats_is_down_and_a_delivery_hangs(
    nats_server: NatsServer, js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.hang("/hang")
    env = {
        "DEFAULT_WEBHOOK_URLS": receiver.url("/hang"),
        "SHUTDOWN_TIMEOUT": SHUTDOWN_TIMEOUT,
        "WEBHOOK_TIMEOUT": HANG_TIMEOUT,
        "NATS_ACK_WAIT": "1s",  # raised to 2 x WEBHOOK_TIMEOUT + 5s: the redelivery comes sooner
    }
    bridge = await bridges.start(env)
    await publish_events_async(js, [("hung-1", job_event("job.completed", "j-hung"))])
    await bridges.wait_for(lambda: receiver.count("/hang") == 1, 20, "attempt in flight")

    await nats_server.stop()
    await bridges.wait_for(lambda: readyz_is(bridge, 503), 20, "/readyz 503 while NATS is down")
    assert await bridge.terminate(EXIT_DEADLINE_S) == 0
    assert logged(bridge, "handed back unfinished messages"), "no attempt in flight at the deadline"

    # the hand-back could not reach the server; JetStream redelivers after the ack deadline
    receiver.reply("/hang", 200)
    await nats_server.start()
    await bridges.start(env)
    await bridges.wait_for(
        lambda: receiver.count("/hang") >= 2, 60, "the interrupted delivery was never redone"
    )
    assert delivery_ids(receiver, "/hang") == {receiver.received("/hang")[0].delivery_id}
