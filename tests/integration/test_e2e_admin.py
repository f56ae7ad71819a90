"""The HTTP server end to end: health, metrics, admin auth, and secrets kept out of sight."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.bridge import TEST_SECRET, BridgeProcess, Bridges
from harness.metrics import metric_total
from harness.publish import job_event, publish_event
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

ADMIN_TOKEN = "admin-token-for-tests"
NAMED_SECRET = "named-webhook-secret"
SECRETS = (NAMED_SECRET, TEST_SECRET, ADMIN_TOKEN)


async def _bridge_after_one_delivery(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges, tmp_path: Path
) -> BridgeProcess:
    """A bridge with a named webhook `crm` (own secret) and ADMIN_TOKEN, after one delivery."""
    config = tmp_path / "bridge.yaml"
    config.write_text(
        f"webhooks:\n  - id: crm\n    url: {receiver.url('/crm')}\n    secret: {NAMED_SECRET}\n"
    )
    env = {"BRIDGE_CONFIG": str(config), "DEFAULT_WEBHOOKS": "crm", "ADMIN_TOKEN": ADMIN_TOKEN}
    bridge = await bridges.start(env)
    await publish_event(js, job_event("job.completed", "j-admin"), "evt-admin")
    await bridges.wait_for(lambda: receiver.count("/crm") == 1, 15, "no delivery")
    return bridge


async def test_health_metrics_and_logs_keep_secrets(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges, tmp_path: Path
) -> None:
    bridge = await _bridge_after_one_delivery(js, receiver, bridges, tmp_path)
    assert (await bridge.get("/healthz"))[0] == 200
    status, metrics = await bridge.get("/metrics")
    assert status == 200

    async def delivered_counted() -> bool:
        text = (await bridge.get("/metrics"))[1]
        return metric_total(text, "webhook_bridge_deliveries_total") >= 1

    await bridges.wait_for(delivered_counted, 5, "webhook_bridge_deliveries_total never counted it")
    exposed = metrics + bridge.stdout_text() + bridge.stderr_text()
    assert not [s for s in SECRETS if s in exposed], "a secret leaked into metrics or logs"


AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_admin_routes_need_the_token_and_redact_secrets(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges, tmp_path: Path
) -> None:
    bridge = await _bridge_after_one_delivery(js, receiver, bridges, tmp_path)
    for path in ("/webhooks", "/deliveries?job_id=j-admin", "/dlq"):
        assert (await bridge.get(path))[0] == 401, f"{path} without the token"
        wrong = {"Authorization": "Bearer not-the-token"}
        assert (await bridge.get(path, headers=wrong))[0] == 401, f"{path} with a wrong token"
    assert (await bridge.post("/dlq/replay", {}))[0] == 401

    async def webhook_succeeded() -> bool:
        return "status code: 200" in (await bridge.get("/webhooks", headers=AUTH))[1]

    await bridges.wait_for(webhook_succeeded, 10, "no per-webhook status in /webhooks")
    status, webhooks = await bridge.get("/webhooks", headers=AUTH)
    assert status == 200
    assert '"id":"crm"' in webhooks
    assert '"status":"success"' in webhooks
    status, deliveries = await bridge.get("/deliveries?job_id=j-admin", headers=AUTH)
    assert status == 200
    assert "evt-admin" in deliveries
    status, dlq = await bridge.get("/dlq", headers=AUTH)
    assert status == 200
    exposed = webhooks + deliveries + dlq + bridge.stdout_text() + bridge.stderr_text()
    assert not [s for s in SECRETS if s in exposed], "a secret leaked through the admin API"


async def test_without_a_token_reads_are_open_and_replay_is_refused(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    bridge = await bridges.start({"DEFAULT_WEBHOOK_URLS": receiver.url("/open")})
    assert (await bridge.get("/webhooks"))[0] == 200
    assert (await bridge.get("/dlq"))[0] == 200
    status, body = await bridge.post("/dlq/replay", {})
    assert status == 403
    assert "ADMIN_TOKEN" in body
    assert "ADMIN_TOKEN is not set" in bridge.stderr_text() + bridge.stdout_text()
