"""The delivery log end to end: every attempt of a job after retries and a dead letter, read
through `GET /deliveries`, `webhook-bridge deliveries`, `GET /webhooks`, `GET /dlq` and a
replay through `POST /dlq/replay`; and repeated failures that do not flood the log."""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness.bridge import BridgeProcess, Bridges, run_cli
from harness.metrics import metric_total
from harness.publish import has_dead_letters, job_event, publish_event
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

TOKEN = "delivery-log-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ATTEMPT_FIELDS = {
    "event_id",
    "delivery_id",
    "job_id",
    "event",
    "endpoint",
    "attempt",
    "status_code",
    "duration_ms",
    "outcome",
    "error",
}


async def _json(bridge: BridgeProcess, path: str) -> Any:
    status, body = await bridge.get(path, headers=AUTH)
    assert status == 200, body
    return json.loads(body)


async def _attempts(bridge: BridgeProcess, job_id: str) -> list[dict[str, Any]]:
    return list((await _json(bridge, f"/deliveries?job_id={job_id}"))["deliveries"])


async def _bridge_with_flaky_and_dead(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> BridgeProcess:
    """Job j-log goes to /flaky (500 then 200) and /dead (500 for ever, 2 attempts)."""
    receiver.reply("/flaky", 500, 200)
    receiver.reply("/dead", 500)
    urls = f"{receiver.url('/flaky')},{receiver.url('/dead')}"
    env = {"DEFAULT_WEBHOOK_URLS": urls, "ADMIN_TOKEN": TOKEN, "WEBHOOK_MAX_RETRY": "1"}
    bridge = await bridges.start(env)
    await publish_event(js, job_event("job.failed", "j-log"), "evt-log")
    await bridges.wait_for(has_dead_letters(js, 1), 20, "the dead endpoint was not dead-lettered")

    async def four_attempts_logged() -> bool:
        return len(await _attempts(bridge, "j-log")) == 4

    await bridges.wait_for(four_attempts_logged, 10, "the delivery log lacks attempts")
    return bridge


def _story(attempts: list[dict[str, Any]], path: str) -> list[tuple[int, str, str, str | None]]:
    return [
        (a["attempt"], a["message"], a["result"], a.get("reason"))
        for a in attempts
        if a["endpoint"]["url"].endswith(path)
    ]


async def test_delivery_log_tells_why_a_job_did_not_reach_its_webhook(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    bridge = await _bridge_with_flaky_and_dead(js, receiver, bridges)
    attempts = await _attempts(bridge, "j-log")
    assert _story(attempts, "/flaky") == [
        (1, "unexpected status code: 500", "retry", None),
        (2, "status code: 200", "delivered", None),
    ]
    assert _story(attempts, "/dead") == [
        (1, "unexpected status code: 500", "retry", None),
        (2, "unexpected status code: 500", "dead_letter", "max_retries_exceeded"),
    ]
    assert {a["event_id"] for a in attempts} == {"evt-log"}
    by_event = (await _json(bridge, "/deliveries?event_id=evt-log&limit=2"))["deliveries"]
    assert [a["attempt"] for a in by_event] == [2, 2], "limit keeps the latest attempts"
    assert (await _json(bridge, "/deliveries?job_id=no-such-job"))["deliveries"] == []


async def test_the_cli_reads_the_same_log(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges, bridge_env: dict[str, str]
) -> None:
    await _bridge_with_flaky_and_dead(js, receiver, bridges)
    result = await run_cli(["deliveries", "--job-id", "j-log", "--json"], bridge_env)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 4
    table = await run_cli(["deliveries", "--job-id", "j-log"], bridge_env)
    assert "dead_letter (max_retries_exceeded)" in table.stdout
    assert "4 attempt(s)" in table.stderr


async def test_webhooks_status_dlq_and_replay_through_the_api(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    bridge = await _bridge_with_flaky_and_dead(js, receiver, bridges)
    hooks = {h["url"].rsplit("/", 1)[1]: h for h in (await _json(bridge, "/webhooks"))["webhooks"]}
    assert (hooks["flaky"]["status"], hooks["flaky"]["message"]) == ("success", "status code: 200")
    assert (hooks["dead"]["status"], hooks["dead"]["message"]) == (
        "error",
        "unexpected status code: 500",
    )
    dead = (await _json(bridge, "/dlq"))["dead_letters"]
    assert [d["reason"] for d in dead] == ["max_retries_exceeded"]
    receiver.reply("/dead", 200)
    status, body = await bridge.post("/dlq/replay", {"endpoint": "127.0.0.1"}, headers=AUTH)
    assert (status, json.loads(body)["replayed"]) == (200, 1)
    await bridges.wait_for(lambda: receiver.count("/dead") == 3, 15, "the replay never arrived")
    assert (await _json(bridge, "/dlq"))["count"] == 0, "a replayed dead letter is hidden"
    assert (await _json(bridge, "/dlq?all=true"))["dead_letters"][0]["replayed_at"]


async def test_bad_parameters_are_one_line_400s(receiver: Receiver, bridges: Bridges) -> None:
    bridge = await bridges.start({"DEFAULT_WEBHOOK_URLS": receiver.url("/x"), "ADMIN_TOKEN": TOKEN})
    for path in ("/deliveries?limit=0", "/deliveries?limit=x", "/dlq?since=soon", "/dlq?all=2"):
        status, body = await bridge.get(path, headers=AUTH)
        assert status == 400, path
        assert "\n" not in json.loads(body)["error"]
    status, _body = await bridge.post("/dlq/replay", ["not", "an", "object"], headers=AUTH)
    assert status == 400


async def test_a_dead_endpoint_does_not_flood_the_log(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/down", 503)
    env = {"DEFAULT_WEBHOOK_URLS": receiver.url("/down"), "WEBHOOK_MAX_RETRY": "0"}
    # every attempt must fail and be logged: a breaker would hold all but the first five
    bridge = await bridges.start(env | {"WEBHOOK_BREAKER_FAILURES": "1000"})
    for n in range(40):
        await publish_event(js, job_event("job.progress", f"j-{n}"))
    await bridges.wait_for(has_dead_letters(js, 40), 30, "not every failure was dead-lettered")
    failures = [r for r in bridge.log_records() if r.get("outcome") == "http_error"]
    assert 1 <= len(failures) <= 10, f"{len(failures)} failure lines for one endpoint"
    assert set(failures[0]) >= ATTEMPT_FIELDS, "an attempt line lacks a field"
    assert failures[0]["error"] == "unexpected status code: 503"

    async def suppressed_counted() -> bool:
        text = (await bridge.get("/metrics"))[1]
        return metric_total(text, "webhook_bridge_log_lines_suppressed_total") >= 30

    await bridges.wait_for(suppressed_counted, 10, "suppressed lines were not counted")
