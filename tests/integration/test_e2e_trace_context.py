"""Trace context end to end: the event's traceparent and tracestate (from its NATS headers)
reach the receiver on every attempt, across retries, a restart and a replay; an event
without one starts a trace of its own; log lines name the trace."""

from __future__ import annotations

import json

import pytest
from harness.bridge import Bridges, run_cli
from harness.publish import event_subject, has_dead_letters, job_event, read_dead_letters
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE}-b7ad6b7169203331-01"
TRACESTATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"


async def _publish(js: JetStreamContext, msg_id: str, **headers: str) -> None:
    event = job_event("job.completed", f"j-{msg_id}")
    data = json.dumps(event).encode()
    await js.publish(
        event_subject("job.completed"), data, headers={"Nats-Msg-Id": msg_id, **headers}
    )


def _trace_ids(receiver: Receiver, path: str) -> list[str]:
    return [r.headers["traceparent"].split("-")[1] for r in receiver.received(path)]


async def test_the_event_traceparent_and_tracestate_reach_every_attempt(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/r", 500, 200)
    bridge = await bridges.start({"DEFAULT_WEBHOOK_URLS": receiver.url("/r")})
    await _publish(js, "evt-traced", traceparent=TRACEPARENT, tracestate=TRACESTATE)
    await bridges.wait_for(lambda: receiver.count("/r") == 2, 20, "a retry")

    sent = [(r.headers["traceparent"], r.headers["tracestate"]) for r in receiver.received("/r")]
    assert sent == [(TRACEPARENT, TRACESTATE)] * 2
    attempts = lambda: [r for r in bridge.log_records() if r.get("message") == "attempt"]  # noqa: E731
    # an attempt's line is written once its answer is read: after the receiver counted it
    await bridges.wait_for(lambda: len(attempts()) == 2, 20, "both attempts logged")
    assert [r["trace_id"] for r in attempts()] == [TRACE, TRACE]


async def test_an_event_without_one_starts_a_trace_kept_across_a_restart_and_a_replay(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/n", 500)
    env = {
        "DEFAULT_WEBHOOK_URLS": receiver.url("/n"),
        "WEBHOOK_MAX_RETRY": "1",
        "WEBHOOK_RETRY_MIN_WAIT": "1s",
        "WEBHOOK_RETRY_MAX_WAIT": "1s",
    }
    first = await bridges.start(env)
    await _publish(js, "evt-untraced", traceparent="00-not-a-valid-header-01")
    await bridges.wait_for(lambda: receiver.count("/n") == 1, 20, "a first attempt")
    await first.terminate()  # the retry waits in its task for the next bridge
    second = await bridges.start(env)
    await bridges.wait_for(has_dead_letters(js, 1), 20, "dead-lettered after the retry")
    [letter] = await read_dead_letters(js)
    receiver.reply("/n", 200)
    replayed = await run_cli(["dlq", "replay"], second.env)
    assert replayed.returncode == 0, replayed.stderr
    await bridges.wait_for(lambda: receiver.count("/n") == 3, 20, "the replayed delivery")

    parents = [r.headers["traceparent"] for r in receiver.received("/n")]
    trace_ids = _trace_ids(receiver, "/n")
    assert len(set(trace_ids)) == 1
    assert trace_ids[0] not in (TRACE, "0" * 32)
    assert letter.body["trace"] == {"trace_id": trace_ids[0], "flags": "01"}
    assert all(p.startswith("00-") and p.endswith("-01") and len(p) == 55 for p in parents)
    assert len(set(parents)) == 3, "each attempt names its own span"
    assert all("tracestate" not in r.headers for r in receiver.received("/n"))


async def test_each_event_without_a_traceparent_is_a_trace_of_its_own(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    await bridges.start({"DEFAULT_WEBHOOK_URLS": receiver.url("/e")})
    await _publish(js, "evt-a")
    await _publish(js, "evt-b")
    await bridges.wait_for(lambda: receiver.count("/e") == 2, 20, "both delivered")
    assert len(set(_trace_ids(receiver, "/e"))) == 2
