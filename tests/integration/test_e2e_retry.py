"""Retries, back-off, dead letters, replay, 410 Gone and sibling isolation, end to end."""

from __future__ import annotations

from typing import Any

import pytest
from harness.bridge import Bridges, run_cli
from harness.publish import (
    DLQ_PREFIX,
    DeadLetter,
    has_dead_letters,
    job_event,
    publish_event,
    read_dead_letters,
)
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

QUIET_S = 1.5  # longer than the fixture's WEBHOOK_RETRY_MAX_WAIT (1s)
JITTER_SLACK = 0.8  # -20% jitter; scheduling only ever adds


async def _steady(
    bridges: Bridges,
    js: JetStreamContext,
    receiver: Receiver,
    path: str,
    *,
    attempts: int,
    letters: int | None,
) -> None:
    """No further attempt (and no further dead letter) during a quiet period."""

    async def unchanged() -> bool:
        if receiver.count(path) != attempts:
            return False
        return letters is None or len(await read_dead_letters(js)) == letters

    def state() -> str:
        return f"{path}: {receiver.count(path)} attempts, want {attempts} (and {letters} letters)"

    await bridges.stays_true(unchanged, QUIET_S, state)


def _assert_attempts(letter: DeadLetter, statuses: list[int]) -> None:
    attempts: list[dict[str, Any]] = letter.body["attempts"]
    assert [a["status_code"] for a in attempts] == statuses
    assert [a["attempt"] for a in attempts] == list(range(1, len(statuses) + 1))
    for attempt in attempts:
        assert {"at", "error", "duration_ms"} <= attempt.keys()


async def test_retry_sequence_keeps_delivery_id_and_backs_off(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    min_wait_s = 0.4
    receiver.reply("/r", 500, 502, 200)
    env = {"DEFAULT_WEBHOOK_URLS": receiver.url("/r"), "WEBHOOK_RETRY_MIN_WAIT": "400ms"}
    await bridges.start(env | {"WEBHOOK_RETRY_MAX_WAIT": "4s"})
    await publish_event(js, job_event("job.completed", "j-retry"), "evt-retry")

    await bridges.wait_for(
        lambda: receiver.count("/r") >= 3, 20, lambda: f"{receiver.count('/r')} < 3"
    )
    await _steady(bridges, js, receiver, "/r", attempts=3, letters=0)
    first, second, third = receiver.received("/r")
    assert first.delivery_id == second.delivery_id == third.delivery_id
    assert first.delivery_id is not None
    assert second.at - first.at >= min_wait_s * JITTER_SLACK
    assert third.at - second.at >= 2 * min_wait_s * JITTER_SLACK, "back-off must double"


async def test_dead_endpoint_is_dead_lettered_then_replayed(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/dead", 500)
    env = {
        "DEFAULT_WEBHOOK_URLS": receiver.url("/dead"),
        "WEBHOOK_MAX_RETRY": "2",
        "ADMIN_TOKEN": "test-admin-token",  # in case the CLI goes through the admin API
    }
    bridge = await bridges.start(env)
    event = job_event("job.failed", "j-dead", status="failed", error="boom")
    await publish_event(js, event, "evt-dead")

    await bridges.wait_for(has_dead_letters(js, 1), 20, "no dead letter")
    await _steady(bridges, js, receiver, "/dead", attempts=3, letters=1)
    [letter] = await read_dead_letters(js)
    delivery_id = receiver.received("/dead")[0].delivery_id
    assert {r.delivery_id for r in receiver.received("/dead")} == {delivery_id}
    _assert_dead_letter(letter, event, "evt-dead", "max_retries_exceeded", delivery_id)
    assert letter.body["endpoint"]["url"] == receiver.url("/dead")
    assert letter.body["endpoint"]["source"] == "default"
    _assert_attempts(letter, [500, 500, 500])

    receiver.reply("/dead", 200)
    replay = await run_cli(["dlq", "replay", "--endpoint", "127.0.0.1"], bridge.env)
    assert replay.returncode == 0, replay.stderr
    assert "Traceback" not in replay.stderr
    await bridges.wait_for(lambda: receiver.count("/dead") >= 4, 15, "replay did not re-deliver")
    # letters=None: replay may mark what it replayed in the stream (SPEC §4).
    await _steady(bridges, js, receiver, "/dead", attempts=4, letters=None)
    assert receiver.received("/dead")[3].delivery_id == delivery_id


def _assert_dead_letter(
    letter: DeadLetter, event: dict[str, Any], event_id: str, reason: str, delivery_id: str | None
) -> None:
    body = letter.body
    assert letter.subject == DLQ_PREFIX + event["event"]
    assert body["reason"] == reason
    assert body["delivery_id"] == delivery_id
    assert letter.msg_id == delivery_id, "Nats-Msg-Id must be the delivery id"
    assert (body["event"], body["job_id"], body["tenant_id"]) == (
        event["event"],
        event["job_id"],
        event["tenant_id"],
    )
    assert body["event_id"] == event_id
    assert body["payload"]["job_id"] == event["job_id"]
    assert body["dead_lettered_at"]
    assert {"id", "url", "source"} <= body["endpoint"].keys()


async def test_gone_stops_at_once(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/gone", 410)
    await bridges.start({"DEFAULT_WEBHOOK_URLS": receiver.url("/gone")})
    event = job_event("job.completed", "j-gone")
    await publish_event(js, event, "evt-gone")

    await bridges.wait_for(has_dead_letters(js, 1), 20, "no dead letter")
    await _steady(bridges, js, receiver, "/gone", attempts=1, letters=1)
    [letter] = await read_dead_letters(js)
    delivery_id = receiver.received("/gone")[0].delivery_id
    _assert_dead_letter(letter, event, "evt-gone", "gone", delivery_id)
    _assert_attempts(letter, [410])


async def test_failing_sibling_never_repeats_healthy_delivery(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/bad", 500)
    env = {
        "DEFAULT_WEBHOOK_URLS": f"{receiver.url('/bad')},{receiver.url('/good')}",
        "WEBHOOK_MAX_RETRY": "3",
        "WEBHOOK_RETRY_MIN_WAIT": "1s",
        "WEBHOOK_RETRY_MAX_WAIT": "2s",
    }
    bridge = await bridges.start(env)
    await publish_event(js, job_event("job.completed", "j-sib"), "evt-sib")
    await bridges.wait_for(
        lambda: receiver.count("/good") >= 1 and receiver.count("/bad") >= 1, 15, "no first tries"
    )

    # Restart while /bad is between retries: its schedule must survive, /good must not repeat.
    assert await bridge.terminate() == 0
    bridge = await bridges.start(env)
    await bridges.wait_for(has_dead_letters(js, 1), 30, "no dead letter")
    assert receiver.count("/good") == 1
    assert receiver.count("/bad") == 4, "retries must neither be lost nor restarted"
    [letter] = await read_dead_letters(js)
    assert letter.body["endpoint"]["url"] == receiver.url("/bad")

    assert await bridge.terminate() == 0
    await bridges.start(env)
    await bridges.stays_true(
        lambda: receiver.count("/good") == 1 and receiver.count("/bad") == 4,
        2.5,
        lambda: f"after restart: good={receiver.count('/good')} bad={receiver.count('/bad')}",
    )
