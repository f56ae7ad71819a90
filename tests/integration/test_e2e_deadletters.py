"""Dead-letter tooling end to end: `dlq list` and `dlq replay` filters, replay marks, a replay
that fails again, Retry-After, and two replicas sharing the durable consumer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness.bridge import Bridges, run_cli
from harness.publish import (
    has_dead_letters,
    job_event,
    publish_event,
    publish_events_async,
    read_dead_letters,
)
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


async def _listed(env: dict[str, str], *filters: str) -> list[dict[str, Any]]:
    result = await run_cli(["dlq", "list", "--json", *filters], env)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


async def _replay(env: dict[str, str], *filters: str) -> str:
    result = await run_cli(["dlq", "replay", *filters], env)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_list_and_replay_filters_and_marks(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/x", 500)
    receiver.reply("/y", 500)
    env = {
        "DEFAULT_WEBHOOK_URLS": f"{receiver.url('/x')},{receiver.url('/y')}",
        "WEBHOOK_MAX_RETRY": "0",
    }
    bridge = await bridges.start(env)
    await publish_event(js, job_event("job.failed", "j-1"), "evt-failed")
    await publish_event(js, job_event("job.completed", "j-2"), "evt-completed")
    await bridges.wait_for(has_dead_letters(js, 4), 20, "four dead letters")

    assert len(await _listed(bridge.env)) == 4
    failed = await _listed(bridge.env, "--event", "job.failed")
    assert {r["event"] for r in failed} == {"job.failed"}
    assert len(failed) == 2
    at_x = await _listed(bridge.env, "--endpoint", receiver.url("/x"))
    assert {r["endpoint"]["url"] for r in at_x} == {receiver.url("/x")}
    assert await _listed(bridge.env, "--since", "1h") != []

    receiver.reply("/x", 200)
    receiver.reply("/y", 200)
    assert "replayed 2" in await _replay(bridge.env, "--event", "job.failed")
    await bridges.wait_for(lambda: _delivered(receiver, "job.failed") == 2, 15, "replay")
    assert _delivered(receiver, "job.completed") == 0  # the filter held

    remaining = await _listed(bridge.env)
    assert {r["event"] for r in remaining} == {"job.completed"}
    everything = await _listed(bridge.env, "--all")
    assert sum(1 for r in everything if r["replayed_at"]) == 2
    assert "replayed 2" in await _replay(bridge.env)
    await bridges.wait_for(lambda: _delivered(receiver, "job.completed") == 2, 15, "replay")
    assert "replayed 0" in await _replay(bridge.env)  # nothing left that was not replayed


def _delivered(receiver: Receiver, event: str) -> int:
    """Requests for `event` beyond the two failed first attempts (one per endpoint)."""
    return sum(1 for r in receiver.requests if r.json()["event"] == event) - 2


async def test_a_replay_that_fails_again_is_dead_lettered_again(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/down", 500)
    env = {"DEFAULT_WEBHOOK_URLS": receiver.url("/down"), "WEBHOOK_MAX_RETRY": "0"}
    bridge = await bridges.start(env)
    await publish_event(js, job_event("job.completed", "j-again"), "evt-again")
    await bridges.wait_for(has_dead_letters(js, 1), 20, "first dead letter")
    assert "replayed 1" in await _replay(bridge.env)
    # well inside the 2-minute duplicate window of the first dead letter's Nats-Msg-Id
    await bridges.wait_for(has_dead_letters(js, 2), 20, "the failed replay was not dead-lettered")
    first, second = await read_dead_letters(js)
    assert first.body["delivery_id"] == second.body["delivery_id"]
    assert receiver.count("/down") == 2


async def test_retry_after_replaces_the_back_off(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/busy", 429, 200, headers={"Retry-After": "1"})
    env = {
        "DEFAULT_WEBHOOK_URLS": receiver.url("/busy"),
        "WEBHOOK_RETRY_MIN_WAIT": "30s",
        "WEBHOOK_RETRY_MAX_WAIT": "60s",
    }
    await bridges.start(env)
    await publish_event(js, job_event("job.completed", "j-busy"), "evt-busy")
    # the back-off alone would wait at least 24 s; Retry-After asks for 1 s
    await bridges.wait_for(lambda: receiver.count("/busy") == 2, 15, "Retry-After ignored")
    first, second = receiver.received("/busy")
    assert second.at - first.at >= 0.8


async def test_two_replicas_share_the_work(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    total = 600
    env = {"DEFAULT_WEBHOOK_URLS": receiver.url("/shared")}
    replicas = [await bridges.start(env), await bridges.start(env)]
    events = ((f"evt-{i}", job_event("job.progress", f"job-{i}")) for i in range(total))
    await publish_events_async(js, events)
    await bridges.wait_for(
        lambda: len({r.json()["job_id"] for r in receiver.received("/shared")}) == total,
        60,
        "not every event arrived",
    )
    for bridge in replicas:
        attempts = [r for r in bridge.log_records() if r.get("message") == "attempt"]
        assert attempts, f"{bridge.name} did no work"
