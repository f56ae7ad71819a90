"""Receivers that abuse the bridge: endless bodies, silence, dripping bytes, redirects, resets.

Every abusive attempt must end by WEBHOOK_TIMEOUT with a clear outcome, read a bounded body
(and a bounded response: endless interim heads, trailers and chunk extensions too), take a
head that is not UTF-8 for what its status says, follow no redirect, and leave every worker
free: healthy deliveries flow afterwards. The per-job URLs go through the SSRF guard, with only
127.0.0.1 allowed (WEBHOOK_ALLOWED_CIDRS), so even a followed redirect to the metadata address
could never leave loopback.

A receiver that closes idle keep-alive connections costs no attempt: a request its close
crossed is sent again on a new connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from harness.abuse import IDLE_CLOSE_S, AbusiveReceiver
from harness.bridge import BridgeProcess, Bridges
from harness.metrics import metric_total
from harness.publish import job_event, publish_event, read_dead_letters
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

ENV = {
    "WEBHOOK_TIMEOUT": "1s",
    "WEBHOOK_MAX_RETRY": "0",
    "WEBHOOK_ALLOWED_CIDRS": "127.0.0.1/32",
    "WEBHOOK_ENDPOINT_CONCURRENCY": "2",
    "WEBHOOK_CONCURRENCY": "8",
}
# path → (reason, status code, outcome) of its dead letter; None: delivered (2xx in time)
EXPECTED: dict[str, tuple[str, int | None, str] | None] = {
    "/endless": None,
    "/drip-body": None,
    "/trailers-forever": None,
    "/extensions-forever": None,
    "/not-utf8": None,
    "/continue-forever": ("max_retries_exceeded", None, "connection_error"),
    "/endless-500": ("max_retries_exceeded", 500, "http_error"),
    "/silent": ("max_retries_exceeded", None, "timeout"),
    "/drip": ("max_retries_exceeded", None, "timeout"),
    "/redirect": ("max_retries_exceeded", 302, "http_error"),
    "/redirect-here": ("max_retries_exceeded", 302, "http_error"),
    "/reset": ("max_retries_exceeded", None, "connection_error"),
}
ROUNDS = 2  # twice each: more abusive attempts than endpoint slots
HEALTHY_EVENTS = 10
STREAMS = [
    "/endless",
    "/endless-500",
    "/continue-forever",
    "/trailers-forever",
    "/extensions-forever",
]
# Far more than the receiver's socket buffers hold, far less than it sends in a timeout.
MAX_SENT_BYTES = 16 * 1024 * 1024
SPACED_DELIVERIES = 12


def _by_path(letters: list[Any], abusive: AbusiveReceiver) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for letter in letters:
        path = letter.body["endpoint"]["url"].removeprefix(abusive.url(""))
        found.setdefault(path, []).append(letter.body)
    return found


async def test_abusive_receivers_cost_one_bounded_attempt_and_no_worker(
    js: JetStreamContext, receiver: Receiver, abusive: AbusiveReceiver, bridges: Bridges
) -> None:
    bridge = await bridges.start(ENV)
    for round_ in range(ROUNDS):
        for path in EXPECTED:
            event = job_event("job.completed", f"j{round_}{path}", webhook=abusive.url(path))
            await publish_event(js, event, f"evt-{round_}{path}")

    failing = [path for path, expected in EXPECTED.items() if expected is not None]
    want = ROUNDS * len(failing)

    async def all_dead_lettered() -> bool:
        return len(await read_dead_letters(js)) >= want

    await bridges.wait_for(all_dead_lettered, 30, f"expected {want} dead letters")
    letters = _by_path(await read_dead_letters(js), abusive)
    assert sorted(letters) == sorted(failing)
    for path in failing:
        reason, status_code, outcome = EXPECTED[path] or ("", None, "")
        assert len(letters[path]) == ROUNDS, path
        for letter in letters[path]:
            assert letter["reason"] == reason, path
            [attempt] = letter["attempts"]
            assert (attempt["status_code"], attempt["outcome"]) == (status_code, outcome), attempt
    assert abusive.hits["/stolen"] == 0, "a redirect was followed"

    # Endless responses: the bridge hung up instead of reading on, after a bounded read.
    await bridges.wait_for(
        lambda: all(abusive.closed_by_client[path] == ROUNDS for path in STREAMS),
        15,
        lambda: f"endless responses still being read: {abusive.closed_by_client}",
    )
    assert all(abusive.sent[path] < ROUNDS * MAX_SENT_BYTES for path in STREAMS), abusive.sent

    # No worker lost: healthy deliveries still flow, and nothing stays in flight.
    for index in range(HEALTHY_EVENTS):
        event = job_event("job.completed", f"j-ok-{index}", webhook=receiver.url("/ok"))
        await publish_event(js, event, f"evt-ok-{index}")
    await bridges.wait_for(
        lambda: receiver.count("/ok") >= HEALTHY_EVENTS,
        20,
        lambda: f"healthy deliveries: {receiver.count('/ok')} of {HEALTHY_EVENTS}",
    )
    await bridges.wait_for(lambda: _zero(bridge), 15, "deliveries still in flight")


async def _zero(bridge: BridgeProcess) -> bool:
    return await _metric(bridge, "inflight_deliveries") == 0


async def _metric(bridge: BridgeProcess, name: str) -> float:
    _status, text = await bridge.get("/metrics")
    return metric_total(text, f"webhook_bridge_{name}")


async def test_a_receiver_closing_idle_connections_costs_no_attempt(
    js: JetStreamContext, abusive: AbusiveReceiver, bridges: Bridges
) -> None:
    bridge = await bridges.start(ENV)
    for index in range(SPACED_DELIVERIES):
        event = job_event("job.completed", f"j-idle-{index}", webhook=abusive.url("/idle-close"))
        await publish_event(js, event, f"evt-idle-{index}")

        async def attempted(done: int = index + 1) -> bool:
            return await _metric(bridge, "delivery_attempts_total") >= done

        await bridges.wait_for(attempted, 10, f"delivery {index} never attempted")
        # The stimulus, not a synchronisation: idle gaps on either side of the receiver's limit.
        await asyncio.sleep(IDLE_CLOSE_S * (2 if index % 2 else 0.5))

    assert abusive.closed_idle > 0, "no request ever met a closed connection"
    assert await read_dead_letters(js) == []
    # one attempt each, none failed: no retry (WEBHOOK_MAX_RETRY=0 would have dead-lettered it)
    assert await _metric(bridge, "delivery_attempts_total") == SPACED_DELIVERIES
    answered = abusive.hits["/idle-close"] - abusive.closed_idle
    assert answered == SPACED_DELIVERIES
