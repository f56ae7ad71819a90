"""Receiver signals end to end (SPEC §11): 410 Gone, `webhook-delivery: abort-message` and
`webhook-delivery: disable` each act exactly once, however many deliveries carry them: one
audit record, one operational event where the webhook is disabled, the counter up by one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from harness.bridge import TEST_SECRET, BridgeProcess, Bridges
from harness.metrics import metric_total
from harness.publish import has_dead_letters, job_event, publish_events_async, read_dead_letters
from harness.receiver import Receiver
from harness.signatures import greenlight_signature_valid
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

TOKEN = "signals-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENV = {"ADMIN_TOKEN": TOKEN, "WEBHOOK_ALLOW_PRIVATE_URLS": "true"}
OPS_STREAM = "GREENLIGHT_WEBHOOKS_OPS"
BURST = 5  # deliveries that carry the signal at about the same time


async def publish_jobs(js: JetStreamContext, tag: str, count: int, **fields: Any) -> None:
    events = ((f"{tag}-{n}", job_event("job.failed", f"{tag}-{n}", **fields)) for n in range(count))
    await publish_events_async(js, events)


async def audited(bridge: BridgeProcess, action: str) -> list[dict[str, Any]]:
    _status, text = await bridge.get("/audit?limit=100", AUTH)
    return [r for r in json.loads(text)["audit"] if r["action"] == action]


async def ops_kinds(js: JetStreamContext) -> list[str]:
    state = (await js.stream_info(OPS_STREAM)).state
    if not state.messages:
        return []
    messages = [await js.get_msg(OPS_STREAM, s) for s in range(state.first_seq, state.last_seq + 1)]
    return [json.loads(msg.data or b"{}")["kind"] for msg in messages]


async def signals(bridge: BridgeProcess, signal: str) -> float:
    _status, text = await bridge.get("/metrics")
    lines = [line for line in text.splitlines() if f'signal="{signal}"' in line]
    return metric_total("\n".join(lines), "webhook_bridge_receiver_signals_total")


async def webhook(bridge: BridgeProcess, webhook_id: str) -> dict[str, Any]:
    _status, text = await bridge.get("/webhooks", AUTH)
    found: dict[str, Any] = next(w for w in json.loads(text)["webhooks"] if w["id"] == webhook_id)
    return found


async def test_410_disables_an_api_webhook_once(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/gone", 410)
    bridge = await bridges.start(ENV)
    answer = await bridge.call(
        "POST", "/webhooks", {"id": "crm", "url": receiver.url("/gone"), "scope": "global"}, AUTH
    )
    assert answer.status == 201, answer.text
    await publish_jobs(js, "gone", BURST)
    await bridges.wait_for(has_dead_letters(js, receiver.count("/gone") or 1), 20, "no letter")
    await bridges.wait_for(lambda: audited(bridge, "disable"), 10, "not audited")
    detail = (await bridge.call("GET", "/webhooks/crm", None, AUTH)).json()
    assert (detail["active"], detail["disabled_reason"]) == (False, "gone")
    assert len(await audited(bridge, "disable")) == 1
    assert await ops_kinds(js) == ["webhook.disabled"]
    assert await signals(bridge, "gone") == 1
    assert {letter.body["reason"] for letter in await read_dead_letters(js)} == {"gone"}


async def test_abort_message_dead_letters_that_delivery(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/abort", 500, headers={"webhook-delivery": "abort-message"})
    bridge = await bridges.start(ENV | {"DEFAULT_WEBHOOK_URLS": receiver.url("/abort")})
    await publish_jobs(js, "abort", 1)
    await bridges.wait_for(has_dead_letters(js, 1), 20, "not dead-lettered")
    await bridges.wait_for(lambda: audited(bridge, "abort"), 10, "not audited")
    [letter] = await read_dead_letters(js)
    assert letter.body["reason"] == "aborted_by_receiver"
    assert receiver.count("/abort") == 1  # no retry
    assert len(await audited(bridge, "abort")) == 1
    assert await signals(bridge, "abort") == 1


async def test_disable_header_disables_a_yaml_webhook_once(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges, tmp_path: Path
) -> None:
    """A YAML webhook cannot be rewritten: it is disabled at run time, in the router. The
    operational event also goes, signed, to the OPS_WEBHOOKS."""
    receiver.reply("/off", 200, headers={"webhook-delivery": "disable"})
    config = tmp_path / "bridge.yaml"
    hooks = [{"id": "erp", "url": receiver.url("/off")}, {"id": "ops", "url": receiver.url("/ops")}]
    config.write_text(json.dumps({"webhooks": hooks}))  # JSON is YAML
    env = ENV | {"BRIDGE_CONFIG": str(config), "DEFAULT_WEBHOOKS": "erp", "OPS_WEBHOOKS": "ops"}
    bridge = await bridges.start(env)
    await publish_jobs(js, "off", BURST)
    await bridges.wait_for(lambda: audited(bridge, "disable"), 20, "not audited")
    await bridges.wait_for(
        lambda: _inactive(bridge, "erp"), 10, "the router still routes the webhook"
    )
    assert (await webhook(bridge, "erp"))["disabled_reason"] == "receiver"
    assert len(await audited(bridge, "disable")) == 1
    assert await ops_kinds(js) == ["webhook.disabled"]
    assert await signals(bridge, "disable") == 1
    await bridges.wait_for(lambda: receiver.count("/ops") == 1, 10, "no ops event delivered")
    [ops] = receiver.received("/ops")
    assert ops.json()["kind"] == ops.headers["X-Greenlight-Event"] == "webhook.disabled"
    assert (ops.json()["webhook"], ops.json()["reason"]) == ("erp", "receiver")
    assert greenlight_signature_valid(TEST_SECRET, ops.body, ops.headers["X-Greenlight-Signature"])
    before = receiver.count("/off")
    await publish_jobs(js, "after", 3)
    await bridges.stays_true(lambda: receiver.count("/off") == before, 1.5, "still delivered")


async def _inactive(bridge: BridgeProcess, webhook_id: str) -> bool:
    return not (await webhook(bridge, webhook_id))["active"]


async def test_410_forgets_a_per_job_url_for_its_job(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/job", 410)
    bridge = await bridges.start(ENV)
    url = receiver.url("/job")
    first = [("job-1", job_event("job.started", "j-gone", webhook=url))]
    await publish_events_async(js, first)
    await bridges.wait_for(lambda: audited(bridge, "forget"), 20, "not forgotten")
    later = [("job-2", job_event("job.completed", "j-gone"))]  # no `webhook`: recalled
    await publish_events_async(js, later)
    await bridges.stays_true(lambda: receiver.count("/job") == 1, 1.5, "the URL was recalled")
    assert len(await audited(bridge, "forget")) == 1
    assert await signals(bridge, "gone") == 1


async def test_a_webhook_failing_for_disable_after_is_disabled(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/failing", 503)
    env = ENV | {"WEBHOOK_DISABLE_AFTER": "2s", "WEBHOOK_PROBE_INTERVAL": "500ms"}
    bridge = await bridges.start(env)
    body = {"id": "crm", "url": receiver.url("/failing"), "scope": "global"}
    assert (await bridge.call("POST", "/webhooks", body, AUTH)).status == 201
    await publish_jobs(js, "failing", BURST * 2)
    await bridges.wait_for(lambda: audited(bridge, "disable"), 20, "never disabled")
    detail = (await bridge.call("GET", "/webhooks/crm", None, AUTH)).json()
    assert (detail["active"], detail["disabled_reason"]) == (False, "failing")
    assert len(await audited(bridge, "disable")) == 1
    assert await signals(bridge, "failing") == 1
